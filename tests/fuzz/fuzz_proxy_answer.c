/* Fuzzes how the proxy driver reads a back end's answer to an event (proxy_answer_read,
 * proxy_emit_read). The input is the answer's JSON text (NULs allowed, as JSON carries them as
 * \u0000). Beyond memory errors it checks the contract: only non-empty names without a NUL to
 * join or leave, at most SIOC_BROADCAST_MAX_ROOMS rooms per emit, each a NUL-terminated name,
 * an emit to the socket alone only when it named neither rooms nor users. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/proxy_answer.h"

static void require(int condition)
{
    if (!condition)
        abort();
}

static void check_names(json_t *names)
{
    size_t index;
    json_t *name;
    require(json_is_array(names));
    json_array_foreach(names, index, name)
    {
        require(json_is_string(name) && json_string_length(name) > 0);
        require(strlen(json_string_value(name)) == json_string_length(name));
    }
}

static void check_emit(json_t *value, const proxy_emit_t *emit)
{
    json_t *name = json_object_get(value, "event");
    require(emit->event == json_string_value(name));
    require(strlen(emit->event) == json_string_length(name));
    require(json_is_array(emit->args));
    int named = json_is_array(json_object_get(value, "rooms")) ||
                json_is_array(json_object_get(value, "users"));
    require(emit->to_socket == !named);
    require(emit->room_count <= SIOC_BROADCAST_MAX_ROOMS);
    require(!emit->to_socket || emit->room_count == 0);
    for (size_t i = 0; i < emit->room_count; i++)
        require(emit->rooms[i] != NULL && emit->rooms[i][0] != '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t json_error;
    json_t *body =
        json_loadb((const char *)data, size, JSON_ALLOW_NUL | JSON_DECODE_ANY, &json_error);
    if (body == NULL)
        return 0;
    proxy_answer_t answer;
    if (proxy_answer_read(body, &answer) == 0) {
        check_names(answer.join);
        check_names(answer.leave);
        require(answer.data == NULL || json_is_object(answer.data));
        require(answer.ack == NULL || json_is_array(answer.ack));
        size_t index;
        json_t *value;
        json_array_foreach(answer.emit, index, value)
        {
            proxy_emit_t emit;
            int read = proxy_emit_read(value, &emit);
            if (read > 0)
                check_emit(value, &emit);
            else
                require(read < 0 || emit.args == NULL);
            proxy_emit_release(&emit);
        }
        proxy_answer_free(&answer);
    }
    json_decref(body);
    return 0;
}
