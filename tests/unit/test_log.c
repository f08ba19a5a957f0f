/* Log lines: the text format as before, and the JSON format, which must be one valid JSON
 * object per line whatever the message holds (quotes, control characters, bytes that are not
 * UTF-8, messages longer than the limit). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "log.h"

#define STAMP "2026-11-21T21:00:00.000Z"

static char line[LOG_LINE_MAX];

static size_t format(log_format_t format, log_level_t level, const char *message, size_t length)
{
    memset(line, 0x5A, sizeof(line));
    size_t n = log_format_line(line, sizeof(line), format, level, STAMP, message, length);
    assert_true(n > 0 && n < sizeof(line));
    assert_int_equal(line[n - 1], '\n');
    assert_int_equal(line[n], '\0');
    assert_null(memchr(line, '\n', n - 1)); /* one line, always */
    return n;
}

/* The JSON line parsed (strictly: one object, nothing after it); its message must be want. */
static void assert_json_message(const char *message, const char *want)
{
    size_t n = format(LOG_FORMAT_JSON, LOG_WARN, message, strlen(message));
    json_error_t error;
    json_t *object = json_loadb(line, n, 0, &error);
    if (object == NULL)
        fail_msg("not JSON: %s (%s)", line, error.text);
    assert_int_equal(json_object_size(object), 3);
    assert_string_equal(json_string_value(json_object_get(object, "time")), STAMP);
    assert_string_equal(json_string_value(json_object_get(object, "level")), "warn");
    assert_string_equal(json_string_value(json_object_get(object, "message")), want);
    json_decref(object);
}

static void test_text_line(void **state)
{
    format(LOG_FORMAT_TEXT, LOG_INFO, "listening on 127.0.0.1:3000", 27);
    assert_string_equal(line, STAMP " info  listening on 127.0.0.1:3000\n");
}

static void test_json_line(void **state)
{
    format(LOG_FORMAT_JSON, LOG_ERROR, "store: disk full", 16);
    assert_string_equal(line, "{\"time\":\"" STAMP
                              "\",\"level\":\"error\",\"message\":\"store: disk full\"}\n");
}

static void test_json_escapes(void **state)
{
    assert_json_message("say \"hi\" \\ o/", "say \"hi\" \\ o/");
    assert_json_message("a\nb\rc\td\x01\x1f\x7f", "a\nb\rc\td\x01\x1f\x7f");
    format(LOG_FORMAT_JSON, LOG_INFO, "a\nb", 3);
    assert_non_null(strstr(line, "a\\u000ab"));
}

static void test_json_keeps_utf8_and_replaces_the_rest(void **state)
{
    assert_json_message("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
                        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    /* A lone continuation byte, a truncated sequence, an overlong '/', a surrogate, above
     * U+10FFFF: each byte that is not part of a character becomes U+FFFD. */
    assert_json_message("\x80", "\xef\xbf\xbd");
    assert_json_message("\xe2\x82", "\xef\xbf\xbd\xef\xbf\xbd");
    assert_json_message("\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd");
    assert_json_message("\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    assert_json_message("\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
}

static void test_embedded_nul_is_escaped(void **state)
{
    size_t n = format(LOG_FORMAT_JSON, LOG_INFO, "a\0b", 3);
    assert_non_null(strstr(line, "a\\u0000b"));
    json_t *object = json_loadb(line, n, JSON_ALLOW_NUL, NULL);
    assert_non_null(object);
    json_t *message = json_object_get(object, "message");
    assert_int_equal(json_string_length(message), 3);
    assert_memory_equal(json_string_value(message), "a\0b", 3);
    json_decref(object);
}

static void test_long_messages_are_cut_within_bounds(void **state)
{
    /* The worst case: every byte escaped to six. */
    char *message = malloc(3 * LOG_MESSAGE_MAX);
    assert_non_null(message);
    memset(message, 0x01, 3 * LOG_MESSAGE_MAX);
    size_t n = format(LOG_FORMAT_JSON, LOG_DEBUG, message, 3 * LOG_MESSAGE_MAX);
    assert_true(n < LOG_LINE_MAX);
    json_t *object = json_loadb(line, n, 0, NULL);
    assert_non_null(object);
    json_decref(object);
    memset(message, 'x', 3 * LOG_MESSAGE_MAX);
    n = format(LOG_FORMAT_TEXT, LOG_DEBUG, message, 3 * LOG_MESSAGE_MAX);
    assert_int_equal(n, strlen(STAMP " debug ") + LOG_MESSAGE_MAX + 1);
    free(message);
}

static void test_small_buffer_is_refused(void **state)
{
    char small[64];
    assert_int_equal(
        log_format_line(small, sizeof(small), LOG_FORMAT_JSON, LOG_INFO, STAMP, "x", 1), 0);
}

static void test_format_names(void **state)
{
    assert_int_equal(log_set_format_name("json"), 0);
    assert_int_equal(log_set_format_name("text"), 0);
    assert_int_equal(log_set_format_name("xml"), -1);
    assert_int_equal(log_set_level_name("debug"), 0);
    assert_int_equal(log_set_level_name("loud"), -1);
    log_set_level(LOG_INFO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_line),
        cmocka_unit_test(test_json_line),
        cmocka_unit_test(test_json_escapes),
        cmocka_unit_test(test_json_keeps_utf8_and_replaces_the_rest),
        cmocka_unit_test(test_embedded_nul_is_escaped),
        cmocka_unit_test(test_long_messages_are_cut_within_bounds),
        cmocka_unit_test(test_small_buffer_is_refused),
        cmocka_unit_test(test_format_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
