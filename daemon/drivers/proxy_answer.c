#include "proxy_answer.h"

#include <stdlib.h>
#include <string.h>

json_t *proxy_room_names(json_t *value)
{
    json_t *names = json_array();
    size_t index;
    json_t *room;
    json_array_foreach(value, index, room)
    {
        if (names != NULL && json_is_string(room) && json_string_length(room) > 0 &&
            strlen(json_string_value(room)) == json_string_length(room) && /* no NUL inside */
            json_array_append(names, room) != 0) {
            json_decref(names);
            names = NULL;
        }
    }
    return names;
}

/* The rooms of an emit: the names of rooms, then two per user id, while they fit. */
static void emit_targets(proxy_emit_t *emit, json_t *rooms, json_t *users)
{
    size_t index;
    json_t *each;
    json_array_foreach(rooms, index, each)
    {
        const char *name = json_string_value(each);
        if (name != NULL && emit->room_count < SIOC_BROADCAST_MAX_ROOMS && name[0] != '\0' &&
            strlen(name) == json_string_length(each))
            emit->rooms[emit->room_count++] = name;
    }
    json_array_foreach(users, index, each)
    {
        char id[DRIVER_MAX_ID_BYTES + 1];
        if (emit->room_count + 2 > SIOC_BROADCAST_MAX_ROOMS || driver_id_text(each, id) != 0)
            continue;
        static const char *const prefixes[] = {"user:", "user."};
        for (size_t i = 0; i < 2; i++) {
            char *room = emit->user_rooms[emit->room_count];
            if (driver_room_name(room, DRIVER_ROOM_NAME_SIZE, prefixes[i], id) == 0)
                emit->rooms[emit->room_count++] = room;
        }
    }
}

int proxy_emit_read(json_t *value, proxy_emit_t *emit)
{
    memset(emit, 0, sizeof(*emit));
    json_t *name = json_object_get(value, "event");
    const char *event = json_string_value(name);
    if (event == NULL || strlen(event) != json_string_length(name)) /* a NUL would cut it */
        return 0;
    json_t *args = json_object_get(value, "args");
    json_t *rooms = json_object_get(value, "rooms");
    json_t *users = json_object_get(value, "users");
    emit->event = event;
    emit->args = json_is_array(args) ? json_incref(args) : json_array();
    emit->to_socket = !json_is_array(rooms) && !json_is_array(users);
    if (!emit->to_socket)
        emit_targets(emit, rooms, users);
    return emit->args != NULL ? 1 : -1;
}

void proxy_emit_release(proxy_emit_t *emit)
{
    json_decref(emit->args);
    emit->args = NULL;
}

int proxy_answer_read(json_t *answer, proxy_answer_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!json_is_object(answer))
        answer = NULL; /* reads as empty: every json_object_get below gives NULL */
    json_t *data = json_object_get(answer, "data");
    json_t *ack = json_object_get(answer, "ack");
    json_t *emit = json_object_get(answer, "emit");
    out->data = json_is_object(data) ? data : NULL;
    out->ack = json_is_array(ack) ? ack : NULL;
    out->emit = json_is_array(emit) ? emit : NULL;
    out->disconnect = json_is_true(json_object_get(answer, "disconnect"));
    out->join = proxy_room_names(json_object_get(answer, "join"));
    out->leave = proxy_room_names(json_object_get(answer, "leave"));
    if (out->join == NULL || out->leave == NULL) {
        proxy_answer_free(out);
        return -1;
    }
    return 0;
}

void proxy_answer_free(proxy_answer_t *answer)
{
    json_decref(answer->join);
    json_decref(answer->leave);
    memset(answer, 0, sizeof(*answer));
}
