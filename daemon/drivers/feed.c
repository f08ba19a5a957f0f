/* feed: a receive-only channel, as the Notes app's /home namespace (seed 001): clients only
 * listen (notetitles {notelist}), the back end publishes through the HTTP API. Any event a
 * client sends is refused: feed:error {code:"receive_only", message} or through its ack. */
#include "driver_util.h"

static void on_any_event(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    channel_reply_error(socket, event, "feed:error", DRIVER_ERECEIVEONLY,
                        "This channel is receive-only");
}

static int feed_setup(channel_t *channel, char *error, size_t error_size)
{
    static const char *const known[] = {NULL};
    if (driver_check_option_keys(channel->daemon->config, channel->config, known, error,
                                 error_size) != 0)
        return -1;
    sioc_namespace_on_any(channel->nsp, on_any_event, channel);
    return 0;
}

const driver_t driver_feed = {.name = "feed", .setup = feed_setup};
