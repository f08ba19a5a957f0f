/* The HTTP API's input validation (daemon/api_fields.c): each field's type, bounds, defaults,
 * null as absent, unknown fields, and messages that name the field and what is expected. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "api_fields.h"

static json_t *parse(const char *text)
{
    json_error_t error;
    json_t *value = json_loads(text, 0, &error);
    assert_non_null(value);
    return value;
}

static void assert_problem(const api_problem_t *problem, const char *field, const char *part)
{
    assert_string_equal(problem->field, field);
    if (strstr(problem->message, part) == NULL)
        fail_msg("\"%s\" does not contain \"%s\"", problem->message, part);
}

static void test_allowed(void **state)
{
    static const char *const names[] = {"event", "rooms", NULL};
    api_problem_t problem;
    json_t *good = parse("{\"event\":\"x\",\"rooms\":[]}");
    assert_int_equal(api_fields_allowed(good, names, &problem), 0);
    json_t *typo = parse("{\"event\":\"x\",\"room\":\"a\"}");
    assert_int_equal(api_fields_allowed(typo, names, &problem), -1);
    assert_problem(&problem, "room", "unknown field \"room\" (expected event, rooms)");
    json_t *empty = parse("{}");
    assert_int_equal(api_fields_allowed(empty, names, &problem), 0);
    json_decref(good);
    json_decref(typo);
    json_decref(empty);
}

static void test_string(void **state)
{
    api_problem_t problem;
    const char *out;
    json_t *body = parse("{\"a\":\"hi\",\"e\":\"\",\"n\":3,\"z\":null,\"long\":\"abcdef\"}");
    assert_int_equal(api_field_string(body, "a", API_REQUIRED, 10, &out, &problem), 0);
    assert_string_equal(out, "hi");
    assert_int_equal(api_field_string(body, "missing", API_OPTIONAL, 10, &out, &problem), 0);
    assert_null(out);
    assert_int_equal(api_field_string(body, "z", API_OPTIONAL, 10, &out, &problem), 0);
    assert_null(out); /* null is absent */
    assert_int_equal(api_field_string(body, "missing", API_REQUIRED, 10, &out, &problem), -1);
    assert_problem(&problem, "missing", "missing: expected a non-empty string of at most 10 bytes");
    assert_non_null(strstr(problem.message, "(missing)"));
    assert_int_equal(api_field_string(body, "z", API_REQUIRED, 10, &out, &problem), -1);
    assert_int_equal(api_field_string(body, "e", API_REQUIRED, 10, &out, &problem), -1);
    assert_problem(&problem, "e", "non-empty");
    assert_int_equal(api_field_string(body, "n", API_OPTIONAL, 10, &out, &problem), -1);
    assert_problem(&problem, "n", "expected a non-empty string");
    assert_int_equal(api_field_string(body, "long", API_REQUIRED, 6, &out, &problem), 0);
    assert_int_equal(api_field_string(body, "long", API_REQUIRED, 5, &out, &problem), -1);
    assert_problem(&problem, "long", "at most 5 bytes");
    json_decref(body);
}

static void test_id(void **state)
{
    api_problem_t problem;
    char out[API_ID_SIZE];
    json_t *body = parse("{\"s\":\"u-1\",\"i\":42,\"neg\":-7,\"f\":1.5,\"b\":true,\"e\":\"\","
                         "\"c\":\"a\\nb\",\"z\":null}");
    assert_int_equal(api_field_id(body, "s", API_REQUIRED, out, &problem), 0);
    assert_string_equal(out, "u-1");
    assert_int_equal(api_field_id(body, "i", API_REQUIRED, out, &problem), 0);
    assert_string_equal(out, "42"); /* integer ids become their decimal text */
    assert_int_equal(api_field_id(body, "neg", API_REQUIRED, out, &problem), 0);
    assert_string_equal(out, "-7");
    assert_int_equal(api_field_id(body, "f", API_REQUIRED, out, &problem), -1);
    assert_problem(&problem, "f", "f: expected an id (a string of 1 to 128 bytes, or an integer)");
    assert_int_equal(api_field_id(body, "b", API_REQUIRED, out, &problem), -1);
    assert_int_equal(api_field_id(body, "e", API_REQUIRED, out, &problem), -1);
    assert_problem(&problem, "e", "1 to 128 bytes");
    assert_int_equal(api_field_id(body, "c", API_REQUIRED, out, &problem), -1);
    assert_problem(&problem, "c", "control characters");
    assert_int_equal(api_field_id(body, "z", API_OPTIONAL, out, &problem), 0);
    assert_string_equal(out, "");
    assert_int_equal(api_field_id(body, "none", API_REQUIRED, out, &problem), -1);
    assert_problem(&problem, "none", "(missing)");
    json_decref(body);

    char text[512];
    char id[API_ID_MAX + 2];
    memset(id, 'x', sizeof(id) - 1);
    id[API_ID_MAX] = '\0';
    snprintf(text, sizeof(text), "{\"max\":\"%s\"}", id);
    body = parse(text);
    assert_int_equal(api_field_id(body, "max", API_REQUIRED, out, &problem), 0);
    assert_int_equal(strlen(out), API_ID_MAX);
    json_decref(body);
    id[API_ID_MAX] = 'x';
    id[API_ID_MAX + 1] = '\0';
    snprintf(text, sizeof(text), "{\"over\":\"%s\"}", id);
    body = parse(text);
    assert_int_equal(api_field_id(body, "over", API_REQUIRED, out, &problem), -1);
    json_decref(body);
}

static void test_bool_array_object(void **state)
{
    api_problem_t problem;
    int flag;
    json_t *value;
    json_t *body = parse("{\"t\":true,\"f\":false,\"s\":\"true\",\"z\":null,\"a\":[1],\"o\":{}}");
    assert_int_equal(api_field_bool(body, "t", 0, &flag, &problem), 0);
    assert_int_equal(flag, 1);
    assert_int_equal(api_field_bool(body, "f", 1, &flag, &problem), 0);
    assert_int_equal(flag, 0);
    assert_int_equal(api_field_bool(body, "none", 1, &flag, &problem), 0);
    assert_int_equal(flag, 1);
    assert_int_equal(api_field_bool(body, "z", 0, &flag, &problem), 0);
    assert_int_equal(flag, 0);
    assert_int_equal(api_field_bool(body, "s", 0, &flag, &problem), -1);
    assert_problem(&problem, "s", "s: expected true or false");

    assert_int_equal(api_field_array(body, "a", &value, &problem), 0);
    assert_true(json_is_array(value));
    assert_int_equal(api_field_array(body, "none", &value, &problem), 0);
    assert_null(value);
    assert_int_equal(api_field_array(body, "o", &value, &problem), -1);
    assert_problem(&problem, "o", "o: expected an array");

    assert_int_equal(api_field_object(body, "o", &value, &problem), 0);
    assert_true(json_is_object(value));
    assert_int_equal(api_field_object(body, "z", &value, &problem), 0);
    assert_null(value);
    assert_int_equal(api_field_object(body, "a", &value, &problem), -1);
    assert_problem(&problem, "a", "a: expected an object");
    json_decref(body);
}

static void test_rooms(void **state)
{
    api_problem_t problem;
    const char *rooms[3];
    size_t count;
    json_t *body = parse("{\"one\":\"room:1\",\"list\":[\"a\",\"b\"],\"empty\":[],"
                         "\"bad\":[\"a\",2],\"blank\":[\"\"],\"many\":[\"a\",\"b\",\"c\",\"d\"],"
                         "\"obj\":{}}");
    assert_int_equal(api_field_rooms(body, "one", rooms, 3, &count, &problem), 0);
    assert_int_equal(count, 1);
    assert_string_equal(rooms[0], "room:1");
    assert_int_equal(api_field_rooms(body, "list", rooms, 3, &count, &problem), 0);
    assert_int_equal(count, 2);
    assert_string_equal(rooms[1], "b");
    assert_int_equal(api_field_rooms(body, "empty", rooms, 3, &count, &problem), 0);
    assert_int_equal(count, 0);
    assert_int_equal(api_field_rooms(body, "none", rooms, 3, &count, &problem), 0);
    assert_int_equal(count, 0);
    assert_int_equal(api_field_rooms(body, "bad", rooms, 3, &count, &problem), -1);
    assert_problem(&problem, "bad", "bad[1]: expected a non-empty string");
    assert_int_equal(api_field_rooms(body, "blank", rooms, 3, &count, &problem), -1);
    assert_problem(&problem, "blank", "blank[0]");
    assert_int_equal(api_field_rooms(body, "many", rooms, 3, &count, &problem), -1);
    assert_problem(&problem, "many", "at most 3 room names");
    assert_int_equal(api_field_rooms(body, "obj", rooms, 3, &count, &problem), -1);
    json_decref(body);
}

static void test_namespace(void **state)
{
    api_problem_t problem;
    const char *name;
    json_t *body = parse("{\"root\":\"/\",\"home\":\"/home\",\"bare\":\"home\",\"n\":1,"
                         "\"e\":\"\",\"z\":null}");
    assert_int_equal(api_field_namespace(body, "none", &name, &problem), 0);
    assert_string_equal(name, "/");
    assert_int_equal(api_field_namespace(body, "z", &name, &problem), 0);
    assert_string_equal(name, "/");
    assert_int_equal(api_field_namespace(body, "home", &name, &problem), 0);
    assert_string_equal(name, "/home");
    assert_int_equal(api_field_namespace(body, "root", &name, &problem), 0);
    assert_int_equal(api_field_namespace(body, "bare", &name, &problem), -1);
    assert_problem(&problem, "bare", "expected a namespace such as \"/\"");
    assert_int_equal(api_field_namespace(body, "n", &name, &problem), -1);
    assert_int_equal(api_field_namespace(body, "e", &name, &problem), -1);
    json_decref(body);
}

static void test_utf8(void **state)
{
    assert_true(api_utf8_valid("", 0));
    assert_true(api_utf8_valid("abc", 3));
    assert_true(api_utf8_valid("\xC3\xA9", 2));
    assert_true(api_utf8_valid("\xE2\x82\xAC", 3));
    assert_true(api_utf8_valid("\xF0\x9F\x98\x80", 4));
    assert_true(api_utf8_valid("\xF4\x8F\xBF\xBF", 4));  /* U+10FFFF */
    assert_false(api_utf8_valid("\xC3", 1));             /* truncated */
    assert_false(api_utf8_valid("\xC0\xAF", 2));         /* overlong */
    assert_false(api_utf8_valid("\xE0\x80\xAF", 3));     /* overlong */
    assert_false(api_utf8_valid("\xED\xA0\x80", 3));     /* surrogate */
    assert_false(api_utf8_valid("\xF4\x90\x80\x80", 4)); /* past U+10FFFF */
    assert_false(api_utf8_valid("\xE2\x82", 2));         /* truncated */
    assert_false(api_utf8_valid("\xE2\x28\xAC", 3));     /* bad continuation */
    assert_false(api_utf8_valid("\xF0\x9F\x98\x28", 4)); /* bad last continuation */
    assert_false(api_utf8_valid("\x80", 1));             /* stray continuation */
    assert_false(api_utf8_valid("\xFF", 1));
}

static void test_id_check(void **state)
{
    api_problem_t problem;
    assert_int_equal(api_id_check("r1", 2, "roomId", &problem), 0);
    assert_int_equal(api_id_check("", 0, "roomId", &problem), -1);
    assert_problem(&problem, "roomId", "roomId: expected an id of 1 to 128 bytes");
    assert_int_equal(api_id_check("a\x7f", 2, "roomId", &problem), -1);
    assert_int_equal(api_id_check("a\tb", 3, "roomId", &problem), -1);
    assert_int_equal(api_id_check("\xC3", 1, "roomId", &problem), -1);
    assert_problem(&problem, "roomId", "UTF-8");
}

static void test_parse_count(void **state)
{
    unsigned long value = 0;
    assert_int_equal(api_parse_count("1", 1, 100, &value), 0);
    assert_int_equal(value, 1);
    assert_int_equal(api_parse_count("100", 1, 100, &value), 0);
    assert_int_equal(value, 100);
    assert_int_equal(api_parse_count("0", 1, 100, &value), -1);
    assert_int_equal(api_parse_count("101", 1, 100, &value), -1);
    assert_int_equal(api_parse_count("", 1, 100, &value), -1);
    assert_int_equal(api_parse_count("-1", 1, 100, &value), -1);
    assert_int_equal(api_parse_count("+5", 1, 100, &value), -1);
    assert_int_equal(api_parse_count(" 5", 1, 100, &value), -1);
    assert_int_equal(api_parse_count("5x", 1, 100, &value), -1);
    assert_int_equal(api_parse_count("99999999999999999999", 1, 100, &value), -1);
    assert_int_equal(api_parse_count("0050", 1, 100, &value), 0);
    assert_int_equal(value, 50);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allowed),     cmocka_unit_test(test_string),
        cmocka_unit_test(test_id),          cmocka_unit_test(test_bool_array_object),
        cmocka_unit_test(test_rooms),       cmocka_unit_test(test_namespace),
        cmocka_unit_test(test_utf8),        cmocka_unit_test(test_id_check),
        cmocka_unit_test(test_parse_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
