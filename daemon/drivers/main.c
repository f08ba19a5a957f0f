/* main: Carolina's BaseChannel (seed 004) on a channel.
 *
 * A `session_id` event (the frontend WebSocketsSvc sends it after connecting: the session id
 * as a string, or {sessionId}) puts the socket in the room session.<sessionId> and, when the
 * socket has a user, in user.<userId>, where the back end's emitToUser reaches every socket of
 * the user. With session auth the connection's own session is known: another id is refused.
 * A later session_id (a new session after logging in) moves the socket to the new session's
 * room. Ack {rooms: [...]}; errors as session:error (or through the ack). Nothing else: other
 * events are for custom channels. */
#include <string.h>

#include "driver_util.h"
#include "log.h"

#define SESSION_ID_MAX 256
#define SESSION_PREFIX "session."
#define SESSION_ROOM_SIZE (sizeof(SESSION_PREFIX) + SESSION_ID_MAX)

/* The session id of the event, or NULL when it is not a string of 1..SESSION_ID_MAX bytes. */
static const char *session_argument(const sioc_event_t *event)
{
    json_t *value = driver_id_argument(driver_payload(event), "sessionId");
    const char *text = json_string_value(value);
    size_t length = json_string_length(value);
    if (text == NULL || length == 0 || length > SESSION_ID_MAX || strlen(text) != length)
        return NULL;
    return text;
}

/* Leaves the rooms of other sessions: a socket belongs to one session at a time. */
static void leave_other_sessions(sioc_socket_t *socket, const char *session_room)
{
    json_t *rooms = sioc_socket_rooms(socket);
    size_t index;
    json_t *room;
    json_array_foreach(rooms, index, room)
    {
        const char *name = json_string_value(room);
        if (name != NULL && strncmp(name, SESSION_PREFIX, strlen(SESSION_PREFIX)) == 0 &&
            strcmp(name, session_room) != 0)
            sioc_socket_leave(socket, name);
    }
    json_decref(rooms);
}

static void on_session_id(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    const char *session_id = session_argument(event);
    const char *own = json_string_value(json_object_get(sioc_socket_data(socket), "sessionId"));
    char user_id[CHANNEL_ID_SIZE];
    int has_user = channel_user_id_text(socket, user_id) == 0;
    char session_room[SESSION_ROOM_SIZE];
    char user_room[DRIVER_ROOM_NAME_SIZE];
    if (session_id == NULL) {
        channel_reply_error(socket, event, "session:error", DRIVER_EINVALID,
                            "sessionId must be a string of 1 to 256 bytes");
        return;
    }
    if (own != NULL && strcmp(own, session_id) != 0) {
        log_warn("main: socket %s sent a session_id that is not its session's",
                 sioc_socket_id(socket));
        channel_reply_error(socket, event, "session:error", DRIVER_EFORBIDDEN,
                            "sessionId is not the session of this connection");
        return;
    }
    snprintf(session_room, sizeof(session_room), SESSION_PREFIX "%s", session_id);
    leave_other_sessions(socket, session_room);
    json_t *rooms = json_pack("[s]", session_room);
    sioc_socket_join(socket, session_room);
    if (has_user && driver_room_name(user_room, sizeof(user_room), "user.", user_id) == 0) {
        sioc_socket_join(socket, user_room);
        json_array_append_new(rooms, json_string(user_room));
    }
    channel_reply_ok(socket, event, json_pack("{s:o}", "rooms", rooms));
}

static int main_setup(channel_t *channel, char *error, size_t error_size)
{
    static const char *const known[] = {NULL};
    if (driver_check_option_keys(channel->daemon->config, channel->config, known, error,
                                 error_size) != 0)
        return -1;
    sioc_namespace_on(channel->nsp, "session_id", on_session_id, channel);
    return 0;
}

const driver_t driver_main = {.name = "main", .setup = main_setup};
