#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/utf8.h"

#define BYTES(literal) ((const uint8_t *)(literal)), (sizeof(literal) - 1)

/* Reference decoder written from the RFC 3629 definition (decode, then reject what the
 * encoding forbids), independent of the validator's range table. Returns 1 when valid. */
static int reference_is_valid(const uint8_t *data, size_t length)
{
    size_t index = 0;
    while (index < length) {
        uint8_t lead = data[index];
        size_t count;
        uint32_t codepoint;
        if (lead < 0x80) {
            index++;
            continue;
        } else if ((lead & 0xE0) == 0xC0) {
            count = 2;
            codepoint = lead & 0x1F;
        } else if ((lead & 0xF0) == 0xE0) {
            count = 3;
            codepoint = lead & 0x0F;
        } else if ((lead & 0xF8) == 0xF0) {
            count = 4;
            codepoint = lead & 0x07;
        } else {
            return 0;
        }
        if (index + count > length)
            return 0;
        for (size_t i = 1; i < count; i++) {
            if ((data[index + i] & 0xC0) != 0x80)
                return 0;
            codepoint = (codepoint << 6) | (data[index + i] & 0x3F);
        }
        static const uint32_t smallest[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (codepoint < smallest[count] || codepoint > 0x10FFFF ||
            (codepoint >= 0xD800 && codepoint <= 0xDFFF))
            return 0;
        index += count;
    }
    return 1;
}

/* Feeds one byte at a time; returns the index of the byte refused, or -1 if none was. */
static long first_refused_byte(const uint8_t *data, size_t length)
{
    sioc__utf8_validator_t validator;
    sioc__utf8_validator_init(&validator);
    for (size_t i = 0; i < length; i++) {
        if (sioc__utf8_validator_feed(&validator, data + i, 1) != 0)
            return (long)i;
    }
    return -1;
}

static void test_valid_strings(void **state)
{
    (void)state;
    assert_int_equal(sioc__utf8_is_valid(NULL, 0), 1);
    assert_int_equal(sioc__utf8_is_valid(BYTES("hello, world")), 1);
    assert_int_equal(sioc__utf8_is_valid(BYTES("\x00")), 1);
    assert_int_equal(sioc__utf8_is_valid(BYTES("\x7F")), 1);
    assert_int_equal(sioc__utf8_is_valid(BYTES("\xC2\x80")), 1);         /* U+0080 */
    assert_int_equal(sioc__utf8_is_valid(BYTES("\xDF\xBF")), 1);         /* U+07FF */
    assert_int_equal(sioc__utf8_is_valid(BYTES("\xE0\xA0\x80")), 1);     /* U+0800 */
    assert_int_equal(sioc__utf8_is_valid(BYTES("\xED\x9F\xBF")), 1);     /* U+D7FF */
    assert_int_equal(sioc__utf8_is_valid(BYTES("\xEE\x80\x80")), 1);     /* U+E000 */
    assert_int_equal(sioc__utf8_is_valid(BYTES("\xEF\xBB\xBF")), 1);     /* U+FEFF */
    assert_int_equal(sioc__utf8_is_valid(BYTES("\xEF\xBF\xBD")), 1);     /* U+FFFD */
    assert_int_equal(sioc__utf8_is_valid(BYTES("\xEF\xBF\xBF")), 1);     /* U+FFFF */
    assert_int_equal(sioc__utf8_is_valid(BYTES("\xF0\x90\x80\x80")), 1); /* U+10000 */
    assert_int_equal(sioc__utf8_is_valid(BYTES("\xF4\x8F\xBF\xBF")), 1); /* U+10FFFF */
    assert_int_equal(sioc__utf8_is_valid(BYTES("\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5")),
                     1); /* "κόσμε" */
    assert_int_equal(sioc__utf8_is_valid(BYTES("Hello-\xC2\xB5@\xC3\x9F\xC3\xB6\xC3\xA4\xC3\xBC"
                                               "\xC3\xA0\xC3\xA1-UTF-8!!")),
                     1);
}

static void test_invalid_strings(void **state)
{
    (void)state;
    assert_int_equal(sioc__utf8_is_valid(BYTES("\x80")), 0);             /* lone continuation */
    assert_int_equal(sioc__utf8_is_valid(BYTES("\xBF")), 0);             /* lone continuation */
    assert_int_equal(sioc__utf8_is_valid(BYTES("\xC0\x80")), 0);         /* overlong NUL */
    assert_int_equal(sioc__utf8_is_valid(BYTES("\xC1\xBF")), 0);         /* overlong U+007F */
    assert_int_equal(sioc__utf8_is_valid(BYTES("\xE0\x80\x80")), 0);     /* overlong NUL */
    assert_int_equal(sioc__utf8_is_valid(BYTES("\xE0\x9F\xBF")), 0);     /* overlong U+07FF */
    assert_int_equal(sioc__utf8_is_valid(BYTES("\xF0\x80\x80\x80")), 0); /* overlong NUL */
    assert_int_equal(sioc__utf8_is_valid(BYTES("\xF0\x8F\xBF\xBF")), 0); /* overlong U+FFFF */
    assert_int_equal(sioc__utf8_is_valid(BYTES("\xED\xA0\x80")), 0);     /* U+D800 */
    assert_int_equal(sioc__utf8_is_valid(BYTES("\xED\xBF\xBF")), 0);     /* U+DFFF */
    assert_int_equal(sioc__utf8_is_valid(BYTES("\xED\xA0\x80\xED\xB0\x80")), 0); /* pair */
    assert_int_equal(sioc__utf8_is_valid(BYTES("\xF4\x90\x80\x80")), 0);         /* U+110000 */
    assert_int_equal(sioc__utf8_is_valid(BYTES("\xF5\x80\x80\x80")), 0);
    assert_int_equal(sioc__utf8_is_valid(BYTES("\xF8\x88\x80\x80\x80")), 0); /* 5-byte form */
    assert_int_equal(sioc__utf8_is_valid(BYTES("\xFC\x84\x80\x80\x80\x80")), 0);
    assert_int_equal(sioc__utf8_is_valid(BYTES("\xFE")), 0);
    assert_int_equal(sioc__utf8_is_valid(BYTES("\xFF")), 0);
    assert_int_equal(sioc__utf8_is_valid(BYTES("\xC2")), 0);             /* truncated */
    assert_int_equal(sioc__utf8_is_valid(BYTES("\xE2\x82")), 0);         /* truncated */
    assert_int_equal(sioc__utf8_is_valid(BYTES("\xF0\x9F\x98")), 0);     /* truncated */
    assert_int_equal(sioc__utf8_is_valid(BYTES("\xC2\x41")), 0);         /* ASCII too soon */
    assert_int_equal(sioc__utf8_is_valid(BYTES("\xE2\x82\xAC\x80")), 0); /* extra continuation */
    assert_int_equal(sioc__utf8_is_valid(BYTES("abc\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5"
                                               "\xED\xA0\x80"
                                               "edited")),
                     0);
}

static void test_fails_at_first_bad_byte(void **state)
{
    (void)state;
    assert_int_equal(first_refused_byte(BYTES("\xE0\x80\x80")), 1);
    assert_int_equal(first_refused_byte(BYTES("\xED\xA0\x80")), 1);
    assert_int_equal(first_refused_byte(BYTES("\xF0\x8F\xBF\xBF")), 1);
    assert_int_equal(first_refused_byte(BYTES("\xF4\x90\x80\x80")), 1);
    assert_int_equal(first_refused_byte(BYTES("ab\xC0\x80")), 2);
    assert_int_equal(first_refused_byte(BYTES("ab\xF5")), 2);
    assert_int_equal(first_refused_byte(BYTES("\xE2\x82\x41")), 2);
    assert_int_equal(first_refused_byte(BYTES("\xF0\x9F\x98\x80\xFF")), 4);
    assert_int_equal(first_refused_byte(BYTES("\xF0\x9F\x98")), -1); /* truncated, not bad */
}

static void test_stays_failed(void **state)
{
    (void)state;
    sioc__utf8_validator_t validator;
    sioc__utf8_validator_init(&validator);
    assert_int_equal(sioc__utf8_validator_feed(&validator, BYTES("ok\xFF")), -1);
    assert_int_equal(sioc__utf8_validator_feed(&validator, BYTES("plain ascii")), -1);
    assert_int_equal(sioc__utf8_validator_feed(&validator, NULL, 0), -1);
    assert_int_equal(sioc__utf8_validator_is_complete(&validator), 0);
    sioc__utf8_validator_init(&validator);
    assert_int_equal(sioc__utf8_validator_feed(&validator, BYTES("fine")), 0);
    assert_int_equal(sioc__utf8_validator_is_complete(&validator), 1);
}

static void test_is_complete_tracks_boundaries(void **state)
{
    (void)state;
    static const uint8_t text[] = "a\xC2\xB5\xE2\x82\xAC\xF0\x9F\x98\x80z";
    /* 1 where a code point ends after that many bytes. */
    static const int boundary[] = {1, 1, 0, 1, 0, 0, 1, 0, 0, 0, 1, 1};
    sioc__utf8_validator_t validator;
    sioc__utf8_validator_init(&validator);
    assert_int_equal(sioc__utf8_validator_is_complete(&validator), 1);
    for (size_t i = 0; i < sizeof(text) - 1; i++) {
        assert_int_equal(sioc__utf8_validator_feed(&validator, text + i, 1), 0);
        assert_int_equal(sioc__utf8_validator_is_complete(&validator), boundary[i + 1]);
        if (i == 9) /* the last byte of U+1F600 */
            assert_int_equal(validator.codepoint, 0x1F600);
    }
}

static void test_every_split_of_valid_text(void **state)
{
    (void)state;
    static const uint8_t text[] = "x\xC2\xB5\xE2\x82\xAC\xF0\x9F\x98\x80\xF4\x8F\xBF\xBF"
                                  "ascii-run-longer-than-eight-bytes\xED\x9F\xBF!";
    size_t length = sizeof(text) - 1;
    for (size_t first = 0; first <= length; first++) {
        for (size_t second = first; second <= length; second++) {
            sioc__utf8_validator_t validator;
            sioc__utf8_validator_init(&validator);
            assert_int_equal(sioc__utf8_validator_feed(&validator, text, first), 0);
            assert_int_equal(sioc__utf8_validator_feed(&validator, text + first, second - first),
                             0);
            assert_int_equal(sioc__utf8_validator_feed(&validator, text + second, length - second),
                             0);
            assert_int_equal(sioc__utf8_validator_is_complete(&validator), 1);
        }
    }
}

/* The ASCII fast path reads eight bytes at a time: a bad byte must be seen at any offset. */
static void test_bad_byte_at_every_offset_of_ascii(void **state)
{
    (void)state;
    uint8_t text[40];
    for (size_t bad = 0; bad < sizeof(text); bad++) {
        memset(text, 'a', sizeof(text));
        text[bad] = 0x80;
        assert_int_equal(sioc__utf8_is_valid(text, sizeof(text)), 0);
        assert_int_equal(first_refused_byte(text, sizeof(text)), (long)bad);
        text[bad] = 0xC3;
        /* A lead byte at the very end is truncated, wherever the word boundary falls... */
        assert_int_equal(sioc__utf8_is_valid(text, bad + 1), 0);
        /* ...and one followed by ASCII fails on that ASCII byte. */
        if (bad + 1 < sizeof(text))
            assert_int_equal(first_refused_byte(text, sizeof(text)), (long)bad + 1);
        text[bad] = 'a';
        assert_int_equal(sioc__utf8_is_valid(text, sizeof(text)), 1);
    }
}

static void test_matches_reference_for_all_short_sequences(void **state)
{
    (void)state;
    uint8_t bytes[4];
    for (uint32_t a = 0; a < 256; a++) {
        bytes[0] = (uint8_t)a;
        assert_int_equal(sioc__utf8_is_valid(bytes, 1), reference_is_valid(bytes, 1));
        for (uint32_t b = 0; b < 256; b++) {
            bytes[1] = (uint8_t)b;
            assert_int_equal(sioc__utf8_is_valid(bytes, 2), reference_is_valid(bytes, 2));
            if (a < 0xE0 || a > 0xF4)
                continue; /* only 3- and 4-byte leads have interesting third bytes */
            for (uint32_t c = 0; c < 256; c++) {
                bytes[2] = (uint8_t)c;
                int expected = reference_is_valid(bytes, 3);
                if (sioc__utf8_is_valid(bytes, 3) != expected)
                    fail_msg("%02x %02x %02x: expected %d", a, b, c, expected);
            }
        }
    }
}

static void test_matches_reference_for_four_byte_sequences(void **state)
{
    (void)state;
    /* Every boundary value of a continuation byte, and values outside the range. */
    static const uint8_t interesting[] = {0x00, 0x41, 0x7F, 0x80, 0x81, 0x8F, 0x90,
                                          0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xF4, 0xFF};
    size_t count = sizeof(interesting);
    uint8_t bytes[4];
    for (uint32_t lead = 0xF0; lead <= 0xFF; lead++) {
        bytes[0] = (uint8_t)lead;
        for (size_t b = 0; b < count; b++) {
            for (size_t c = 0; c < count; c++) {
                for (size_t d = 0; d < count; d++) {
                    bytes[1] = interesting[b];
                    bytes[2] = interesting[c];
                    bytes[3] = interesting[d];
                    assert_int_equal(sioc__utf8_is_valid(bytes, 4), reference_is_valid(bytes, 4));
                }
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_strings),
        cmocka_unit_test(test_invalid_strings),
        cmocka_unit_test(test_fails_at_first_bad_byte),
        cmocka_unit_test(test_stays_failed),
        cmocka_unit_test(test_is_complete_tracks_boundaries),
        cmocka_unit_test(test_every_split_of_valid_text),
        cmocka_unit_test(test_bad_byte_at_every_offset_of_ascii),
        cmocka_unit_test(test_matches_reference_for_all_short_sequences),
        cmocka_unit_test(test_matches_reference_for_four_byte_sequences),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
