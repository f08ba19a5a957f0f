/* Strict base64: RFC 4648 §10 vectors, the whole alphabet, round trips, in-place decoding and
 * every class of malformed input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/base64.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Decodes a NUL-terminated string; the expected result -1 means "refused". */
static long decode_string(const char *text, uint8_t *out)
{
    return sioc__base64_decode(text, strlen(text), out);
}

/* Deterministic pseudo-random bytes (xorshift32) so a failure can be reproduced. */
static uint32_t next_random(uint32_t *state)
{
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

static void test_lengths(void **state)
{
    (void)state;
    assert_int_equal(sioc__base64_encoded_length(0), 0);
    assert_int_equal(sioc__base64_encoded_length(1), 4);
    assert_int_equal(sioc__base64_encoded_length(2), 4);
    assert_int_equal(sioc__base64_encoded_length(3), 4);
    assert_int_equal(sioc__base64_encoded_length(4), 8);
    assert_int_equal(sioc__base64_encoded_length(6), 8);
    assert_int_equal(sioc__base64_encoded_length(7), 12);
    assert_int_equal(sioc__base64_decoded_max_length(0), 0);
    assert_int_equal(sioc__base64_decoded_max_length(4), 3);
    assert_int_equal(sioc__base64_decoded_max_length(8), 6);
    assert_int_equal(sioc__base64_decoded_max_length(12), 9);
}

struct vector {
    const char *plain;
    const char *encoded;
};

/* RFC 4648 §10. */
static const struct vector rfc_vectors[] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

static void test_rfc4648_encode(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rfc_vectors) / sizeof(rfc_vectors[0]); i++) {
        const struct vector *vector = &rfc_vectors[i];
        char out[16];
        memset(out, '#', sizeof(out));
        size_t written =
            sioc__base64_encode((const uint8_t *)vector->plain, strlen(vector->plain), out);
        assert_int_equal(written, strlen(vector->encoded));
        assert_memory_equal(out, vector->encoded, written);
        assert_int_equal(out[written], '#'); /* nothing written past the end, no NUL */
    }
}

static void test_rfc4648_decode(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rfc_vectors) / sizeof(rfc_vectors[0]); i++) {
        const struct vector *vector = &rfc_vectors[i];
        uint8_t out[16];
        memset(out, '#', sizeof(out));
        long decoded = decode_string(vector->encoded, out);
        assert_int_equal(decoded, (long)strlen(vector->plain));
        assert_memory_equal(out, vector->plain, (size_t)decoded);
        assert_int_equal(out[decoded], '#');
    }
}

/* Each character of the alphabet at each position of a group decodes to its own six bits. */
static void test_every_alphabet_character(void **state)
{
    (void)state;
    for (int value = 0; value < 64; value++) {
        char group[5] = "AAAA";
        uint8_t out[3];
        group[0] = alphabet[value];
        assert_int_equal(decode_string(group, out), 3);
        assert_int_equal(out[0], value << 2);
        assert_int_equal(out[1], 0);
        assert_int_equal(out[2], 0);

        memcpy(group, "AAAA", 4);
        group[3] = alphabet[value];
        assert_int_equal(decode_string(group, out), 3);
        assert_int_equal(out[0], 0);
        assert_int_equal(out[1], 0);
        assert_int_equal(out[2], value);
    }
}

static void test_all_byte_values(void **state)
{
    (void)state;
    uint8_t data[256];
    for (int i = 0; i < 256; i++)
        data[i] = (uint8_t)i;
    char encoded[344];
    assert_int_equal(sioc__base64_encode(data, sizeof(data), encoded), sizeof(encoded));
    /* Known prefix and suffix (from Python's base64.b64encode(bytes(range(256)))). */
    assert_memory_equal(encoded, "AAECAwQFBgcICQoL", 16);
    assert_memory_equal(encoded + sizeof(encoded) - 8, "/P3+/w==", 8);
    uint8_t decoded[258];
    assert_int_equal(sioc__base64_decode(encoded, sizeof(encoded), decoded), 256);
    assert_memory_equal(decoded, data, 256);
}

static void test_random_round_trips(void **state)
{
    (void)state;
    uint32_t random_state = 0x5eed1234u;
    uint8_t data[1030];
    char encoded[1376 + 1];
    uint8_t decoded[1032];
    for (size_t length = 0; length <= sizeof(data); length++) {
        for (size_t i = 0; i < length; i++)
            data[i] = (uint8_t)next_random(&random_state);
        size_t encoded_length = sioc__base64_encode(data, length, encoded);
        assert_int_equal(encoded_length, sioc__base64_encoded_length(length));
        assert_true(sioc__base64_decoded_max_length(encoded_length) >= length);
        long decoded_length = sioc__base64_decode(encoded, encoded_length, decoded);
        assert_int_equal(decoded_length, (long)length);
        assert_memory_equal(decoded, data, length);
    }
}

static void test_in_place_decode(void **state)
{
    (void)state;
    uint32_t random_state = 42;
    uint8_t data[300];
    char buffer[400];
    for (size_t length = 0; length <= sizeof(data); length++) {
        for (size_t i = 0; i < length; i++)
            data[i] = (uint8_t)next_random(&random_state);
        size_t encoded_length = sioc__base64_encode(data, length, buffer);
        long decoded_length =
            sioc__base64_decode(buffer, encoded_length, (uint8_t *)buffer); /* out == in */
        assert_int_equal(decoded_length, (long)length);
        assert_memory_equal(buffer, data, length);
    }
}

static void test_refuses_bad_length(void **state)
{
    (void)state;
    uint8_t out[8];
    const char *inputs[] = {"Z", "Zg", "Zg=", "Zm9", "Zm9vY", "Zm9vYg", "Zm9vYg="};
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++)
        assert_int_equal(decode_string(inputs[i], out), -1);
}

/* Every byte outside the alphabet (NUL and '=' included), at every position of a first group
 * and of a last group. */
static void test_refuses_every_foreign_byte(void **state)
{
    (void)state;
    for (int byte = 0; byte < 256; byte++) {
        if (byte != 0 && strchr(alphabet, byte) != NULL)
            continue;
        for (size_t position = 0; position < 8; position++) {
            char input[8];
            memcpy(input, "Zm9vYmFy", 8);
            input[position] = (char)byte;
            uint8_t out[6];
            /* '=' at 6 or 7 is refused too: "Zm9vYm=y" has data after a pad, and "Zm9vYmF="
             * leaves non-zero bits ('F' = 000101). */
            assert_int_equal(sioc__base64_decode(input, 8, out), -1);
        }
    }
}

static void test_refuses_misplaced_padding(void **state)
{
    (void)state;
    uint8_t out[16];
    const char *inputs[] = {
        "====",         /* only padding */
        "Z===",         /* three pad characters */
        "=Zm9",         /* padding first */
        "Z=m9",         /* padding second */
        "Zm=v",         /* padding third, data after it */
        "Zg==Zm9v",     /* padding in a group that is not the last */
        "Zm8=Zm9v",     /* same with one pad character */
        "Zm9vZg==Zm9v", /* padding in a middle group */
        "Zg= ",         /* space instead of the second pad */
        "Zg=\n",        /* newline instead of the second pad */
    };
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++)
        assert_int_equal(decode_string(inputs[i], out), -1);
}

/* In "xy==" the low 4 bits of y are left over, so of the 64 characters for y only the 4 with
 * them zero (A, Q, g, w) are accepted ("Zh==" is a non-canonical "f"). In "xyz=" the low 2 bits
 * of z are left over: 16 of 64 are accepted. */
static void test_refuses_non_zero_leftover_bits(void **state)
{
    (void)state;
    uint8_t out[4];
    int accepted = 0;
    for (int value = 0; value < 64; value++) {
        char input[5] = "Zg==";
        input[1] = alphabet[value];
        long result = decode_string(input, out);
        if ((value & 0x0f) != 0) {
            assert_int_equal(result, -1);
        } else {
            assert_int_equal(result, 1);
            assert_int_equal(out[0], (0x19 << 2) | (value >> 4));
            accepted++;
        }
    }
    assert_int_equal(accepted, 4);
    accepted = 0;
    for (int value = 0; value < 64; value++) {
        char input[5] = "Zm8=";
        input[2] = alphabet[value];
        long result = decode_string(input, out);
        if ((value & 0x03) != 0) {
            assert_int_equal(result, -1);
        } else {
            assert_int_equal(result, 2);
            accepted++;
        }
    }
    assert_int_equal(accepted, 16);
    assert_int_equal(decode_string("Zh==", out), -1);
    assert_int_equal(decode_string("Zm9=", out), -1);
}

static void test_refuses_other_alphabets_and_whitespace(void **state)
{
    (void)state;
    uint8_t out[16];
    const char *inputs[] = {
        "-_-_",       /* base64url */
        "Zm9vYm\r\n", /* line break (MIME) */
        "Zm 9",       /* embedded space */
        " Zm9",       /* leading space */
        "Zm9\t",      /* tab */
        "Zm9v====",   /* a whole group of padding */
    };
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++)
        assert_int_equal(decode_string(inputs[i], out), -1);
    /* An embedded NUL counts as a foreign byte, not as the end. */
    assert_int_equal(sioc__base64_decode("Zm9\0Zm9v", 8, out), -1);
}

/* A bad character early in a long input is still caught (the loop defers the check). */
static void test_refuses_bad_character_far_from_end(void **state)
{
    (void)state;
    char input[400];
    memset(input, 'A', sizeof(input));
    input[5] = '*';
    uint8_t out[300];
    assert_int_equal(sioc__base64_decode(input, sizeof(input), out), -1);
    input[5] = 'A';
    assert_int_equal(sioc__base64_decode(input, sizeof(input), out), 300);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_rfc4648_encode),
        cmocka_unit_test(test_rfc4648_decode),
        cmocka_unit_test(test_every_alphabet_character),
        cmocka_unit_test(test_all_byte_values),
        cmocka_unit_test(test_random_round_trips),
        cmocka_unit_test(test_in_place_decode),
        cmocka_unit_test(test_refuses_bad_length),
        cmocka_unit_test(test_refuses_every_foreign_byte),
        cmocka_unit_test(test_refuses_misplaced_padding),
        cmocka_unit_test(test_refuses_non_zero_leftover_bits),
        cmocka_unit_test(test_refuses_other_alphabets_and_whitespace),
        cmocka_unit_test(test_refuses_bad_character_far_from_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
