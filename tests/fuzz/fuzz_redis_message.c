/* Redis adapter channel messages (adapter/redis_codec.h): the same bytes as a broadcast, a
 * request, a sharded-mode message and a response. A refusal must name its reason and leave the
 * message zeroed; a decoded broadcast must keep the promises of the header (uid, nsp, a named
 * event, bounded rooms) and survive a round trip through the encoder with the same selection. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/redis_codec.h"

static void check_refused(const sioc__redis_message_t *message, const char *error)
{
    sioc__redis_message_t zero;
    memset(&zero, 0, sizeof(zero));
    if (error == NULL || memcmp(message, &zero, sizeof(zero)) != 0)
        abort();
}

static void check_broadcast(const sioc__redis_message_t *message)
{
    if (message->uid == NULL || message->nsp == NULL || json_array_size(message->data) == 0 ||
        !json_is_string(json_array_get(message->data, 0)) ||
        message->opts.room_count > SIOC__REDIS_MAX_NAMES ||
        message->opts.except_count > SIOC__REDIS_MAX_NAMES ||
        message->attachment_count > SIOC__REDIS_MAX_ATTACHMENTS)
        abort();
    sioc_binary_t binaries[SIOC__REDIS_MAX_ATTACHMENTS + 1];
    for (size_t i = 0; i < message->attachment_count; i++) {
        binaries[i].data = message->attachments[i].data;
        binaries[i].length = message->attachments[i].length;
    }
    size_t length;
    uint8_t *bytes =
        sioc__redis_encode_broadcast(message->uid, message->nsp, message->data, binaries,
                                     message->attachment_count, &message->opts, &length);
    if (bytes == NULL)
        return; /* nested deeper than the encoder writes */
    sioc__redis_message_t again;
    const char *error = NULL;
    if (sioc__redis_decode_broadcast(bytes, length, &again, &error) != 0 ||
        strcmp(again.uid, message->uid) != 0 || strcmp(again.nsp, message->nsp) != 0 ||
        again.opts.room_count != message->opts.room_count ||
        again.opts.except_count != message->opts.except_count ||
        /* bins outside the packet's data (an unknown key) are not written again */
        again.attachment_count > message->attachment_count ||
        json_array_size(again.data) != json_array_size(message->data))
        abort();
    sioc__redis_message_clear(&again);
    free(bytes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sioc__redis_message_t message;
    const char *error = NULL;
    if (sioc__redis_decode_broadcast(data, size, &message, &error) == 0) {
        check_broadcast(&message);
        sioc__redis_message_clear(&message);
    } else {
        check_refused(&message, error);
    }
    error = NULL;
    if (sioc__redis_decode_request(data, size, &message, &error) == 0) {
        if (message.type < SIOC__REDIS_SOCKETS || message.type > SIOC__REDIS_BROADCAST)
            abort();
        sioc__redis_message_clear(&message);
    } else {
        check_refused(&message, error);
    }
    error = NULL;
    if (sioc__redis_decode_sharded(data, size, &message, &error) == 0) {
        if (message.uid == NULL || message.nsp == NULL || message.type < 1 || message.type > 13)
            abort();
        sioc__redis_message_clear(&message);
    } else {
        check_refused(&message, error);
    }
    error = NULL;
    if (sioc__redis_decode_response(data, size, &message, &error) == 0) {
        if (message.request_id == NULL)
            abort();
        sioc__redis_message_clear(&message);
    } else {
        check_refused(&message, error);
    }
    return 0;
}
