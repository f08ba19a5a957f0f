/* Streams mode's Redis-held recovery state (adapter/redis_codec.h): the input as a session key's
 * value (base64 msgpack) and as a stream entry's data field (JSON or base64 msgpack) of every
 * message type. A refusal must name its reason and leave nothing behind; a decoded session must
 * keep the header's promises (sid, pid, bounded rooms of strings, no binary) and survive a round
 * trip through the encoder. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/redis_codec.h"

static void check_session(const sioc__redis_session_t *session)
{
    if (session->sid == NULL || session->pid == NULL || !json_is_array(session->rooms) ||
        json_array_size(session->rooms) > SIOC__REDIS_MAX_NAMES)
        abort();
    sioc_recovery_session_t view = {session->pid,
                                    session->sid,
                                    session->nsp ? session->nsp : "/",
                                    session->rooms,
                                    session->data,
                                    1,
                                    0};
    char *text = sioc__redis_encode_session(&view);
    if (text == NULL)
        return; /* nested deeper than the encoder writes */
    sioc__redis_session_t again;
    const char *error = NULL;
    if (sioc__redis_decode_session(text, strlen(text), &again, &error) != 0 ||
        strcmp(again.sid, session->sid) != 0 || strcmp(again.pid, session->pid) != 0 ||
        !json_equal(again.rooms, session->rooms))
        abort();
    sioc__redis_session_clear(&again);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sioc__redis_session_t session;
    const char *error = NULL;
    if (sioc__redis_decode_session((const char *)data, size, &session, &error) == 0) {
        check_session(&session);
        sioc__redis_session_clear(&session);
    } else if (error == NULL || session.value != NULL) {
        abort();
    }
    static const char *const types[] = {"1", "3", "4", "5", "6", "7", "9", "12"};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        sioc__redis_message_t message;
        error = NULL;
        if (sioc__redis_decode_stream_entry("uid", 3, "/", 1, types[i], strlen(types[i]),
                                            (const char *)data, size, &message, &error) == 0) {
            if (message.uid == NULL || message.nsp == NULL ||
                message.attachment_count > SIOC__REDIS_MAX_ATTACHMENTS)
                abort();
            sioc__redis_message_clear(&message);
        } else if (error == NULL || message.value != NULL) {
            abort();
        }
    }
    return 0;
}
