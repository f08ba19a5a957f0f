/* The HTTP API's routing and key check (daemon/api_routes.c): path shapes, trailing slashes,
 * percent-decoding of ids, 404 / 405 / 400 misses, Bearer and X-API-Key extraction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "api_routes.h"

/* Handlers are only compared by address here. */
static void handler_a(struct api_call_s *call)
{
    (void)call;
}

static const api_route_t routes[] = {
    {"GET", "/health", handler_a, API_ROUTE_PUBLIC},
    {"POST", "/emit", handler_a, API_ROUTE_BODY},
    {"POST", "/users/{userId}/emit", handler_a, API_ROUTE_BODY},
    {"POST", "/rooms", handler_a, API_ROUTE_BODY},
    {"GET", "/rooms/{roomId}", handler_a, 0},
    {"GET", "/rooms/{roomId}/messages", handler_a, 0},
    {"POST", "/rooms/{roomId}/members", handler_a, API_ROUTE_BODY},
    {"DELETE", "/rooms/{roomId}/members/{userId}", handler_a, 0},
    {"GET", "/presence/users/{userId}", handler_a, 0},
};
#define ROUTE_COUNT (sizeof(routes) / sizeof(routes[0]))

/* The index of the route found, or -status of the miss. */
static int find(const char *method, const char *path, api_path_params_t *params,
                api_route_miss_t *miss)
{
    const api_route_t *route = api_route_find(routes, ROUTE_COUNT, method, path, params, miss);
    return route != NULL ? (int)(route - routes) : -miss->status;
}

static void test_literal_paths(void **state)
{
    api_path_params_t params;
    api_route_miss_t miss;
    assert_int_equal(find("GET", "/health", &params, &miss), 0);
    assert_int_equal(params.count, 0);
    assert_int_equal(find("POST", "/emit", &params, &miss), 1);
    assert_int_equal(find("POST", "/rooms", &params, &miss), 3);
    assert_int_equal(find("GET", "/", &params, &miss), -404);
    assert_int_equal(find("GET", "", &params, &miss), -404);
    assert_int_equal(find("GET", "/Health", &params, &miss), -404); /* case-sensitive */
    assert_int_equal(find("GET", "/healthz", &params, &miss), -404);
    assert_int_equal(find("GET", "/health/x", &params, &miss), -404);
    assert_int_equal(find("GET", "health", &params, &miss), -404);
}

static void test_trailing_slash(void **state)
{
    api_path_params_t params;
    api_route_miss_t miss;
    /* One trailing slash is ignored, as Express does; more, or empty segments, match nothing. */
    assert_int_equal(find("GET", "/health/", &params, &miss), 0);
    assert_int_equal(find("GET", "/rooms/12/", &params, &miss), 4);
    assert_string_equal(params.values[0], "12");
    assert_int_equal(find("GET", "/health//", &params, &miss), -404);
    assert_int_equal(find("GET", "//health", &params, &miss), -404);
    assert_int_equal(find("GET", "/rooms//messages", &params, &miss), -404);
    /* "/rooms/" is "/rooms", which takes POST only. */
    assert_int_equal(find("GET", "/rooms/", &params, &miss), -405);
}

static void test_parameters(void **state)
{
    api_path_params_t params;
    api_route_miss_t miss;
    assert_int_equal(find("DELETE", "/rooms/r1/members/u2", &params, &miss), 7);
    assert_int_equal(params.count, 2);
    assert_string_equal(params.values[0], "r1");
    assert_string_equal(params.values[1], "u2");
    assert_int_equal(find("GET", "/rooms/r1/messages", &params, &miss), 5);
    assert_string_equal(params.values[0], "r1");
    /* "messages" is a literal after a parameter, not a room id */
    assert_int_equal(find("GET", "/rooms/messages", &params, &miss), 4);
    assert_string_equal(params.values[0], "messages");
}

static void test_percent_decoding(void **state)
{
    api_path_params_t params;
    api_route_miss_t miss;
    assert_int_equal(find("GET", "/rooms/a%2Fb", &params, &miss), 4); /* %2F is in the id */
    assert_string_equal(params.values[0], "a/b");
    assert_int_equal(find("GET", "/rooms/caf%C3%a9", &params, &miss), 4);
    assert_string_equal(params.values[0], "caf\xC3\xA9");
    assert_int_equal(find("GET", "/rooms/a+b%20c", &params, &miss), 4); /* '+' stays '+' */
    assert_string_equal(params.values[0], "a+b c");
}

static void test_bad_parameters(void **state)
{
    api_path_params_t params;
    api_route_miss_t miss;
    const char *bad[] = {
        "/rooms/%zz",       /* not hex */
        "/rooms/abc%4",     /* truncated escape */
        "/rooms/a%00b",     /* NUL */
        "/rooms/%C3%28",    /* invalid UTF-8 */
        "/rooms/%ED%A0%80", /* a surrogate */
        "/rooms/a%0Ab",     /* a control character */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(find("GET", bad[i], &params, &miss), -400);
        assert_string_equal(miss.problem.field, "roomId");
    }
    /* The second parameter is named in the problem. */
    assert_int_equal(find("DELETE", "/rooms/ok/members/%G0", &params, &miss), -400);
    assert_string_equal(miss.problem.field, "userId");
    assert_non_null(strstr(miss.problem.message, "userId"));
    /* A bad escape in a path no route has is a 404, not a 400. */
    assert_int_equal(find("GET", "/nothing/%zz", &params, &miss), -404);
    /* A bad escape under a method the path does not take is a 405. */
    assert_int_equal(find("PUT", "/rooms/%zz", &params, &miss), -405);
}

static void test_id_length(void **state)
{
    api_path_params_t params;
    api_route_miss_t miss;
    char path[512] = "/rooms/";
    memset(path + 7, 'a', API_ID_MAX);
    assert_int_equal(find("GET", path, &params, &miss), 4);
    assert_int_equal(strlen(params.values[0]), API_ID_MAX);
    path[7 + API_ID_MAX] = 'a';
    assert_int_equal(find("GET", path, &params, &miss), -400);
    /* The limit is on the decoded id: 128 escapes decode to 128 bytes. */
    char encoded[512] = "/rooms/";
    for (int i = 0; i < API_ID_MAX; i++)
        strcat(encoded, "%41");
    assert_int_equal(find("GET", encoded, &params, &miss), 4);
    strcat(encoded, "%41");
    assert_int_equal(find("GET", encoded, &params, &miss), -400);
}

static void test_method_not_allowed(void **state)
{
    api_path_params_t params;
    api_route_miss_t miss;
    assert_int_equal(find("POST", "/health", &params, &miss), -405);
    assert_string_equal(miss.allow, "GET");
    assert_int_equal(find("GET", "/rooms/r1/members", &params, &miss), -405);
    assert_string_equal(miss.allow, "POST");
    assert_int_equal(find("PATCH", "/rooms/r1", &params, &miss), -405);
    assert_string_equal(miss.allow, "GET");
    assert_int_equal(find("GET", "/rooms/r1/members/u1", &params, &miss), -405);
    assert_string_equal(miss.allow, "DELETE");
}

static void test_method_list(void **state)
{
    static const api_route_t both[] = {
        {"GET", "/things", handler_a, 0},
        {"POST", "/things", handler_a, 0},
        {"GET", "/things", handler_a, 0},
    };
    api_path_params_t params;
    api_route_miss_t miss;
    assert_null(api_route_find(both, 3, "DELETE", "/things", &params, &miss));
    assert_int_equal(miss.status, 405);
    assert_string_equal(miss.allow, "GET, POST");
}

static void test_percent_decode(void **state)
{
    char out[8];
    assert_int_equal(api_percent_decode("abc", 3, out, sizeof(out)), 3);
    assert_string_equal(out, "abc");
    assert_int_equal(api_percent_decode("%41%62", 6, out, sizeof(out)), 2);
    assert_string_equal(out, "Ab");
    assert_int_equal(api_percent_decode("", 0, out, sizeof(out)), 0);
    assert_int_equal(api_percent_decode("%", 1, out, sizeof(out)), -1);
    assert_int_equal(api_percent_decode("%4", 2, out, sizeof(out)), -1);
    assert_int_equal(api_percent_decode("%4g", 3, out, sizeof(out)), -1);
    assert_int_equal(api_percent_decode("%00", 3, out, sizeof(out)), -1);
    assert_int_equal(api_percent_decode("1234567", 7, out, sizeof(out)), 7);
    assert_int_equal(api_percent_decode("12345678", 8, out, sizeof(out)), -1); /* no room */
    /* Only length bytes are read. */
    assert_int_equal(api_percent_decode("ab%41", 2, out, sizeof(out)), 2);
    assert_string_equal(out, "ab");
}

#define KEY "0123456789abcdef-key"

/* Header values as received; NULL for a header that is absent. */
static api_key_result_t check(const char *authorization, const char *x_api_key)
{
    return api_key_check(authorization, authorization ? strlen(authorization) : 0, x_api_key,
                         x_api_key ? strlen(x_api_key) : 0, KEY);
}

static void test_key_bearer(void **state)
{
    assert_int_equal(check("Bearer " KEY, NULL), API_KEY_OK);
    assert_int_equal(check("bearer " KEY, NULL), API_KEY_OK); /* the scheme is case-insensitive */
    assert_int_equal(check("BEARER\t " KEY "  ", NULL), API_KEY_OK);
    assert_int_equal(check("Bearer " KEY "x", NULL), API_KEY_WRONG);
    assert_int_equal(check("Bearer "
                           "0123456789abcdef-kez",
                           NULL),
                     API_KEY_WRONG);
    assert_int_equal(check("Bearer x", NULL), API_KEY_WRONG);
    assert_int_equal(check("Bearer ", NULL), API_KEY_MISSING);
    assert_int_equal(check("Bearer", NULL), API_KEY_MISSING);
    assert_int_equal(check("Bearer" KEY, NULL), API_KEY_MISSING); /* no space: not Bearer */
    assert_int_equal(check("Basic " KEY, NULL), API_KEY_MISSING);
    assert_int_equal(check("", NULL), API_KEY_MISSING);
}

static void test_key_header(void **state)
{
    assert_int_equal(check(NULL, KEY), API_KEY_OK);
    assert_int_equal(check(NULL, " " KEY " "), API_KEY_OK);
    assert_int_equal(check(NULL, "nope"), API_KEY_WRONG);
    assert_int_equal(check(NULL, ""), API_KEY_MISSING);
    assert_int_equal(check(NULL, NULL), API_KEY_MISSING);
    /* A non-Bearer Authorization (a proxy's Basic) leaves X-API-Key in charge. */
    assert_int_equal(check("Basic abc", KEY), API_KEY_OK);
    /* A Bearer Authorization is the one that counts. */
    assert_int_equal(check("Bearer wrong", KEY), API_KEY_WRONG);
    assert_int_equal(check("Bearer " KEY, "wrong"), API_KEY_OK);
}

static void test_key_equal(void **state)
{
    assert_true(api_key_equal("abc", 3, "abc", 3));
    assert_false(api_key_equal("abc", 3, "abd", 3));
    assert_false(api_key_equal("abc", 3, "abcd", 4));
    assert_false(api_key_equal("abcd", 4, "abc", 3));
    /* Lengths, not NULs, decide: a key with an embedded NUL is compared in full. */
    assert_false(api_key_equal("ab\0d", 4, "ab\0c", 4));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal_paths),      cmocka_unit_test(test_trailing_slash),
        cmocka_unit_test(test_parameters),         cmocka_unit_test(test_percent_decoding),
        cmocka_unit_test(test_bad_parameters),     cmocka_unit_test(test_id_length),
        cmocka_unit_test(test_method_not_allowed), cmocka_unit_test(test_method_list),
        cmocka_unit_test(test_percent_decode),     cmocka_unit_test(test_key_bearer),
        cmocka_unit_test(test_key_header),         cmocka_unit_test(test_key_equal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
