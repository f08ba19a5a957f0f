/* Named parameters in application statements, and the timestamps of their results: placeholders
 * numbered by first use, quotes, comments, casts and $tag$ strings left alone, and every malformed
 * input refused with its message (including every truncation of a valid statement). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_sql.h"

static const char *const names[] = {"roomId", "senderId", "text", "now", "a", "b", "c", "d", "e",
                                    "f",      "g",        "h",    "i",   "j", "k", "l", "m"};
#define NAME_COUNT (sizeof(names) / sizeof(names[0]))

static void assert_compiles(const char *sql, char style, const char *expected,
                            const char *expected_params)
{
    sioc__store_sql_t out;
    char error[128] = "";
    if (sioc__store_sql_compile(sql, strlen(sql), style, names, NAME_COUNT, &out, error,
                                sizeof(error)) != 0)
        fail_msg("%s: %s", sql, error);
    assert_string_equal(out.text, expected);
    char params[256] = "";
    for (size_t index = 0; index < out.count; index++) {
        strcat(params, index ? "," : "");
        strcat(params, names[out.params[index]]);
    }
    assert_string_equal(params, expected_params);
    sioc__store_sql_free(&out);
    assert_null(out.text);
}

static void assert_refused(const char *sql, size_t length, const char *message)
{
    sioc__store_sql_t out;
    char error[128] = "";
    assert_int_equal(
        sioc__store_sql_compile(sql, length, '$', names, NAME_COUNT, &out, error, sizeof(error)),
        -1);
    assert_null(out.text);
    assert_string_equal(error, message);
}

static void test_placeholders(void **state)
{
    (void)state;
    assert_compiles("INSERT INTO \"Messages\" (\"roomId\", \"senderId\", text) VALUES (:roomId, "
                    ":senderId, :text)",
                    '$',
                    "INSERT INTO \"Messages\" (\"roomId\", \"senderId\", text) VALUES ($1, $2, $3)",
                    "roomId,senderId,text");
    assert_compiles("SELECT :text, :roomId, :text", '?', "SELECT ?1, ?2, ?1", "text,roomId");
    assert_compiles("SELECT 1", '$', "SELECT 1", "");
    assert_compiles("SELECT :a", '$', "SELECT $1", "a");
}

static void test_left_alone(void **state)
{
    (void)state;
    assert_compiles("SELECT :roomId::int, ':text', \":text\", $$ :text $$, $q$ :a $q$ -- :b\n, "
                    "/* :c /* :d */ */ :a",
                    '$',
                    "SELECT $1::int, ':text', \":text\", $$ :text $$, $q$ :a $q$ -- :b\n, "
                    "/* :c /* :d */ */ $2",
                    "roomId,a");
    assert_compiles("SELECT 'it''s :a', E'\\' :b', a[1:2], $1, x: , :", '$',
                    "SELECT 'it''s :a', E'\\' :b', a[1:2], $1, x: , :", "");
}

static void test_refused(void **state)
{
    (void)state;
    assert_refused("SELECT :nope", 12, "unknown parameter :nope");
    assert_refused("SELECT 'x", 9, "unterminated quoted string");
    assert_refused("SELECT \"x", 9, "unterminated quoted identifier");
    assert_refused("SELECT /* /* */", 15, "unterminated comment");
    assert_refused("SELECT $a$ x", 12, "unterminated $tag$ string");
    assert_refused("  \n\t", 4, "empty statement");
    assert_refused("SELECT \0 1", 10, "NUL character in the statement");
    const char *seventeen =
        "SELECT :a,:b,:c,:d,:e,:f,:g,:h,:i,:j,:k,:l,:m,:roomId,:senderId,:text,:now";
    assert_refused(seventeen, strlen(seventeen), "too many parameters (at most 16)");
    char *huge = malloc(SIOC__STORE_SQL_MAX_BYTES + 2);
    memset(huge, ' ', SIOC__STORE_SQL_MAX_BYTES + 1);
    assert_refused(huge, SIOC__STORE_SQL_MAX_BYTES + 1, "the statement is longer than 65536 bytes");
    free(huge);
}

/* Every prefix either compiles or is refused with a message; nothing reads past length. */
static void test_every_truncation(void **state)
{
    (void)state;
    const char sql[] = "SELECT 'a:b', \"c\", $t$x$t$, /* c */ :roomId::int -- x\n, E'\\'', :text";
    for (size_t length = 0; length < sizeof(sql) - 1; length++) {
        char *copy = malloc(length + 1);
        memcpy(copy, sql, length); /* exact size: ASan catches a read past it */
        sioc__store_sql_t out;
        char error[128] = "";
        int rc = sioc__store_sql_compile(copy, length, '$', names, NAME_COUNT, &out, error,
                                         sizeof(error));
        if (rc == 0)
            sioc__store_sql_free(&out);
        else
            assert_true(error[0] != '\0');
        free(copy);
    }
}

static void assert_time(const char *text, const char *expected)
{
    char out[SIOC__STORE_SQL_TIME_SIZE] = "untouched";
    size_t length = strlen(text);
    char *copy = malloc(length + 1);
    memcpy(copy, text, length); /* no NUL: the parser must stop at length */
    int converted = sioc__store_sql_iso_time(copy, length, out);
    free(copy);
    assert_int_equal(converted, expected != NULL);
    assert_string_equal(out, expected != NULL ? expected : "untouched");
}

static void test_iso_time(void **state)
{
    (void)state;
    assert_time("2026-11-21 21:00:00.123456+00", "2026-11-21T21:00:00.123Z");
    assert_time("2026-11-21 21:00:00.1+00", "2026-11-21T21:00:00.100Z");
    assert_time("2026-11-21 21:00:00+00", "2026-11-21T21:00:00.000Z");
    assert_time("2026-11-21 21:00:00+00:00", "2026-11-21T21:00:00.000Z");
    assert_time("2026-11-21T21:00:00.5Z", "2026-11-21T21:00:00.500Z");
    assert_time("2026-11-21 21:00:00.123", "2026-11-21T21:00:00.123Z");
    assert_time("2026-11-21 21:00:00.123+02", NULL); /* not UTC: left as the database wrote it */
    assert_time("2026-11-21 21:00:00.12x", NULL);
    assert_time("2026-11-21 21:00:0", NULL);
    assert_time("2026-11-21_21:00:00", NULL);
    assert_time("20x6-11-21 21:00:00", NULL);
    assert_time("", NULL);
    assert_time("tomorrow", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_placeholders), cmocka_unit_test(test_left_alone),
        cmocka_unit_test(test_refused),      cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_iso_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
