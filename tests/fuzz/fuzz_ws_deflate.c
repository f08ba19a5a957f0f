/* Fuzzes permessage-deflate: the Sec-WebSocket-Extensions negotiation and the bounded inflate.
 *
 * Input layout: 1 mode byte, then the bytes.
 *   mode % 3 == 0: a Sec-WebSocket-Extensions value (in a buffer of its exact size, no NUL);
 *                  an accepted offer must give a NUL-terminated answer that starts with
 *                  "permessage-deflate" and names both no_context_takeover flags, and a window
 *                  of 8..15.
 *   mode % 3 == 1: a compressed message from a client, inflated with a limit of
 *                  (mode >> 2) * 256 bytes: on success the output is within the limit; on
 *                  failure the code is 1007, 1009 or 1011 and nothing is returned.
 *   mode % 3 == 2: the bytes deflated with window 9 + (mode >> 2) % 7 and inflated back must be
 *                  the same bytes (the shared streams are reused across runs, as on a loop). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport/ws_codec.h"
#include "transport/ws_deflate.h"

static sioc__ws_zlib_t zlib; /* one per process, as one per loop */

static void require(int condition)
{
    if (!condition)
        abort();
}

static void negotiate(const uint8_t *data, size_t size)
{
    char *value = malloc(size > 0 ? size : 1);
    require(value != NULL);
    memcpy(value, data, size);
    sioc__ws_deflate_agreement_t agreement;
    int rc = sioc__ws_deflate_negotiate(value, size, &agreement);
    require(rc >= -1 && rc <= 1);
    if (rc == 1) {
        require(memchr(agreement.answer, '\0', sizeof(agreement.answer)) != NULL);
        require(strncmp(agreement.answer, "permessage-deflate", 18) == 0);
        require(strstr(agreement.answer, "server_no_context_takeover") != NULL);
        require(strstr(agreement.answer, "client_no_context_takeover") != NULL);
        require(agreement.server_window_bits >= 8 && agreement.server_window_bits <= 15);
    }
    free(value);
}

static void inflate_message(const uint8_t *data, size_t size, size_t limit)
{
    uint8_t *out;
    size_t length;
    int rc = sioc__ws_zlib_inflate(&zlib, data, size, limit, &out, &length);
    if (rc == 0) {
        require(length <= limit);
        free(out);
    } else {
        require(rc == SIOC_WS_CLOSE_INVALID_PAYLOAD || rc == SIOC_WS_CLOSE_MESSAGE_TOO_BIG ||
                rc == SIOC_WS_CLOSE_INTERNAL_ERROR);
        require(out == NULL && length == 0);
    }
}

static void round_trip(const uint8_t *data, size_t size, int window_bits)
{
    sioc__buffer_t *deflated = sioc__ws_zlib_deflate(&zlib, window_bits, data, size, 0);
    require(deflated != NULL);
    uint8_t *out;
    size_t length;
    require(sioc__ws_zlib_inflate(&zlib, deflated->data, deflated->length, size, &out, &length) ==
            0);
    require(length == size && (size == 0 || memcmp(out, data, size) == 0));
    free(out);
    sioc__buffer_unref(deflated);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    if (mode % 3 == 0)
        negotiate(data, size);
    else if (mode % 3 == 1)
        inflate_message(data, size, (size_t)(mode >> 2) * 256);
    else
        round_trip(data, size, 9 + (mode >> 2) % 7);
    return 0;
}
