/* Fuzzes Cookie header parsing and cookie-signature checking (auth_session_cookie_id).
 *
 * Input layout: 1 byte for the size of the output buffer (0 to 255, so "too long" is reached),
 * then the header. The header is handed over in a buffer of its exact size (no NUL), so a read
 * past header_length is caught. Beyond memory errors it checks the contract: 0 with a
 * NUL-terminated id that fits and is no longer than the header, or -1 with a documented
 * message; out is never written past out_size. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth_session.h"

#define CANARY 0x5A

static const char *const secrets[] = {"keyboard cat", "old secret"};

static const char *const messages[] = {
    "no session cookie",
    "unsigned session cookie",
    "invalid session cookie signature",
    "session cookie too long",
};

static void require(int condition)
{
    if (!condition)
        abort();
}

static int known_message(const char *message)
{
    for (size_t i = 0; message != NULL && i < sizeof(messages) / sizeof(messages[0]); i++)
        if (strcmp(message, messages[i]) == 0)
            return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t out_size = data[0];
    size_t header_length = size - 1;
    char *header = malloc(header_length > 0 ? header_length : 1);
    char out[256 + 1];
    require(header != NULL);
    memcpy(header, data + 1, header_length);
    memset(out, CANARY, sizeof(out));

    const char *message = NULL;
    int status = auth_session_cookie_id(header, header_length, "connect.sid", secrets, 2, out,
                                        out_size, &message);
    if (status == 0) {
        size_t id_length = strnlen(out, out_size);
        require(id_length > 0 && id_length < out_size && id_length <= header_length);
        require(message == NULL || known_message(message));
    } else {
        require(status == -1 && known_message(message));
    }
    require((unsigned char)out[out_size] == CANARY);
    free(header);
    return 0;
}
