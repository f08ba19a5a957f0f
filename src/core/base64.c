/* Strict RFC 4648 base64 (standard alphabet, '=' padding).
 *
 * Only canonical encodings decode: the length is a multiple of 4, every character is in the
 * alphabet, '=' appears only as one or two pad characters at the very end, and the bits a pad
 * leaves over are zero (so "Zh==" is refused; only "Zg==" means "f"). Every byte string therefore
 * has exactly one accepted encoding, and decode(x) re-encodes to x. */
#include "core/base64.h"

#include <limits.h>

static const char encode_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Six-bit value of each byte, or XX (invalid). '=' is invalid too: padding is handled apart, in
 * the last group only. Every XX has bit 7 set and no valid entry has, which the decoder relies on
 * to check a whole run of lookups with one test. */
#define XX 0xff
// clang-format off
static const uint8_t decode_table[256] = {
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, 62, XX, XX, XX, 63,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, XX, XX, XX, XX, XX, XX,
    XX,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, XX, XX, XX, XX, XX,
    XX, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, XX, XX, XX, XX, XX,
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
    XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
};
// clang-format on
#undef XX

size_t sioc__base64_encoded_length(size_t length)
{
    /* Written without (length + 2) so that the rounding itself cannot overflow. */
    return length / 3 * 4 + (length % 3 != 0 ? 4 : 0);
}

size_t sioc__base64_encode(const uint8_t *data, size_t length, char *out)
{
    char *start = out;
    size_t full_groups_end = length - length % 3;
    size_t i = 0;
    for (; i < full_groups_end; i += 3) {
        uint32_t group = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        out[0] = encode_alphabet[group >> 18];
        out[1] = encode_alphabet[(group >> 12) & 0x3f];
        out[2] = encode_alphabet[(group >> 6) & 0x3f];
        out[3] = encode_alphabet[group & 0x3f];
        out += 4;
    }
    size_t remaining = length - i;
    if (remaining == 1) {
        out[0] = encode_alphabet[data[i] >> 2];
        out[1] = encode_alphabet[(data[i] & 0x03) << 4];
        out[2] = '=';
        out[3] = '=';
        out += 4;
    } else if (remaining == 2) {
        out[0] = encode_alphabet[data[i] >> 2];
        out[1] = encode_alphabet[(data[i] & 0x03) << 4 | data[i + 1] >> 4];
        out[2] = encode_alphabet[(data[i + 1] & 0x0f) << 2];
        out[3] = '=';
        out += 4;
    }
    return (size_t)(out - start);
}

size_t sioc__base64_decoded_max_length(size_t length)
{
    return length / 4 * 3;
}

/* Decodes the last group, the only one that may carry padding. Returns the number of bytes
 * written (1..3) or -1. */
static int decode_last_group(const uint8_t *in, uint8_t *out)
{
    uint8_t a = decode_table[in[0]];
    uint8_t b = decode_table[in[1]];
    if (((a | b) & 0x80) != 0)
        return -1;
    if (in[3] != '=') {
        uint8_t c = decode_table[in[2]];
        uint8_t d = decode_table[in[3]];
        if (((c | d) & 0x80) != 0)
            return -1;
        out[0] = (uint8_t)(a << 2 | b >> 4);
        out[1] = (uint8_t)(b << 4 | c >> 2);
        out[2] = (uint8_t)(c << 6 | d);
        return 3;
    }
    if (in[2] == '=') {
        /* "xy==": 12 bits carry 8; the 4 left over must be zero. */
        if ((b & 0x0f) != 0)
            return -1;
        out[0] = (uint8_t)(a << 2 | b >> 4);
        return 1;
    }
    uint8_t c = decode_table[in[2]];
    /* "xyz=": 18 bits carry 16; the 2 left over must be zero. */
    if ((c & 0x80) != 0 || (c & 0x03) != 0)
        return -1;
    out[0] = (uint8_t)(a << 2 | b >> 4);
    out[1] = (uint8_t)(b << 4 | c >> 2);
    return 2;
}

long sioc__base64_decode(const char *in, size_t length, uint8_t *out)
{
    if (length % 4 != 0 || length / 4 * 3 > (size_t)LONG_MAX)
        return -1;
    if (length == 0)
        return 0;
    const uint8_t *input = (const uint8_t *)in;
    const uint8_t *last_group = input + length - 4;
    uint8_t *start = out;
    /* OR-ing all lookups and testing bit 7 once after the loop keeps the loop free of branches.
     * Each group is read before it is written and 4 characters become 3 bytes, so out stays
     * behind in: decoding in place is safe. On failure out holds garbage (the input too, when in
     * place), which the caller discards along with the -1. */
    unsigned invalid = 0;
    for (; input < last_group; input += 4) {
        uint8_t a = decode_table[input[0]];
        uint8_t b = decode_table[input[1]];
        uint8_t c = decode_table[input[2]];
        uint8_t d = decode_table[input[3]];
        invalid |= a | b | c | d;
        out[0] = (uint8_t)(a << 2 | b >> 4);
        out[1] = (uint8_t)(b << 4 | c >> 2);
        out[2] = (uint8_t)(c << 6 | d);
        out += 3;
    }
    if ((invalid & 0x80) != 0)
        return -1;
    int tail = decode_last_group(input, out);
    if (tail < 0)
        return -1;
    return (long)(out - start) + tail;
}
