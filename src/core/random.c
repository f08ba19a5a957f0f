#include "core/random.h"

#include <openssl/rand.h>

int sioc__random_bytes(void *out, size_t length)
{
    return RAND_bytes(out, (int)length) == 1 ? 0 : -1;
}

int sioc__random_id(char out[SIOC_ID_LENGTH + 1])
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char bytes[15];
    if (sioc__random_bytes(bytes, sizeof(bytes)) != 0)
        return -1;
    /* 15 bytes = 120 bits = exactly 20 six-bit groups: no padding. */
    for (int group = 0; group < 5; group++) {
        const unsigned char *in = bytes + group * 3;
        char *o = out + group * 4;
        o[0] = alphabet[in[0] >> 2];
        o[1] = alphabet[((in[0] & 0x03) << 4) | (in[1] >> 4)];
        o[2] = alphabet[((in[1] & 0x0f) << 2) | (in[2] >> 6)];
        o[3] = alphabet[in[2] & 0x3f];
    }
    out[SIOC_ID_LENGTH] = '\0';
    return 0;
}
