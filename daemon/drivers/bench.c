/* bench: the server side of `sioc bench` (issue 5; bench/node/server.js has the same handlers
 * on Node's socket.io), and nothing else:
 *   echo ...args        acknowledged with the same arguments (the echo scenario), passed
 *                       through as bytes
 *   join room           the socket joins room; acknowledged with no arguments (fanout)
 *   publish room, event, ...args
 *                       event(...args) broadcast to room, encoded once (fanout)
 * A bad payload is answered like the other drivers' (bench:error, or through the ack). Works
 * with any auth mode: the connect scenario measures the channel's JWT check. No options. */
#include "driver_util.h"

static const char *string_argument(const sioc_event_t *event, size_t index)
{
    return json_string_value(json_array_get(event->args, index));
}

/* A pass-through handler: the arguments go back as the bytes they came in, neither parsed nor
 * encoded again (issue 12). */
static void on_echo(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    if (event->ack_id >= 0)
        sioc_socket_ack_args(socket, event);
}

static void on_join(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    const char *room = string_argument(event, 0);
    if (room == NULL) {
        channel_reply_error(socket, event, "bench:error", DRIVER_EINVALID,
                            "join takes a room name");
        return;
    }
    sioc_socket_join(socket, room);
    if (event->ack_id >= 0)
        sioc_socket_ack(socket, event->ack_id, NULL);
}

static void on_publish(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    const char *room = string_argument(event, 0);
    const char *name = string_argument(event, 1);
    if (room == NULL || name == NULL) {
        channel_reply_error(socket, event, "bench:error", DRIVER_EINVALID,
                            "publish takes a room, an event name and its arguments");
        return;
    }
    json_t *args = json_array();
    for (size_t i = 2; i < json_array_size(event->args); i++)
        json_array_append(args, json_array_get(event->args, i));
    sioc_broadcast_t broadcast;
    sioc_broadcast_init(&broadcast, sioc_socket_namespace(socket));
    sioc_broadcast_to(&broadcast, room);
    sioc_broadcast_emit(&broadcast, name, args);
}

static int bench_setup(channel_t *channel, char *error, size_t error_size)
{
    static const char *const known[] = {NULL};
    if (driver_check_option_keys(channel->daemon->config, channel->config, known, error,
                                 error_size) != 0)
        return -1;
    sioc_namespace_on_passthrough(channel->nsp, "echo", on_echo, NULL);
    sioc_namespace_on(channel->nsp, "join", on_join, NULL);
    sioc_namespace_on(channel->nsp, "publish", on_publish, NULL);
    return 0;
}

const driver_t driver_bench = {.name = "bench", .setup = bench_setup};
