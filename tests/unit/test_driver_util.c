/* The drivers' pure helpers: the token bucket, id and text checks of payloads, user profiles,
 * and option validation with the file:line: path: message of config.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "drivers/driver_util.h"

/* ---- token bucket ------------------------------------------------------------------------- */

static void test_bucket_starts_full_and_empties(void **state)
{
    driver_bucket_t bucket;
    driver_bucket_init(&bucket, 3, 1000);
    assert_int_equal(driver_bucket_take(&bucket, 10, 3, 1000), 1);
    assert_int_equal(driver_bucket_take(&bucket, 10, 3, 1000), 1);
    assert_int_equal(driver_bucket_take(&bucket, 10, 3, 1000), 1);
    assert_int_equal(driver_bucket_take(&bucket, 10, 3, 1000), 0);
    assert_int_equal(driver_bucket_take(&bucket, 10, 3, 1000), 0); /* a refusal takes nothing */
}

static void test_bucket_refills_at_rate(void **state)
{
    driver_bucket_t bucket;
    driver_bucket_init(&bucket, 1, 0);
    assert_int_equal(driver_bucket_take(&bucket, 10, 1, 0), 1);
    assert_int_equal(driver_bucket_take(&bucket, 10, 1, 99), 0); /* 0.99 of a token */
    assert_int_equal(driver_bucket_take(&bucket, 10, 1, 100), 1);
    assert_int_equal(driver_bucket_take(&bucket, 10, 1, 150), 0);
    assert_int_equal(driver_bucket_take(&bucket, 10, 1, 200), 1);
}

static void test_bucket_fractional_rate(void **state)
{
    driver_bucket_t bucket;
    driver_bucket_init(&bucket, 1, 0); /* one token per 400 ms */
    assert_int_equal(driver_bucket_take(&bucket, 2.5, 1, 0), 1);
    assert_int_equal(driver_bucket_take(&bucket, 2.5, 1, 399), 0);
    assert_int_equal(driver_bucket_take(&bucket, 2.5, 1, 400), 1);
}

static void test_bucket_caps_at_burst(void **state)
{
    driver_bucket_t bucket;
    driver_bucket_init(&bucket, 2, 0);
    assert_int_equal(driver_bucket_take(&bucket, 10, 2, 0), 1);
    assert_int_equal(driver_bucket_take(&bucket, 10, 2, 0), 1);
    /* An hour idle gives back the burst, not 36000 tokens. */
    uint64_t later = 3600 * 1000;
    assert_int_equal(driver_bucket_take(&bucket, 10, 2, later), 1);
    assert_int_equal(driver_bucket_take(&bucket, 10, 2, later), 1);
    assert_int_equal(driver_bucket_take(&bucket, 10, 2, later), 0);
}

static void test_bucket_ignores_a_clock_going_back(void **state)
{
    driver_bucket_t bucket;
    driver_bucket_init(&bucket, 1, 5000);
    assert_int_equal(driver_bucket_take(&bucket, 10, 1, 5000), 1);
    assert_int_equal(driver_bucket_take(&bucket, 10, 1, 1000), 0);
    /* Measured from 5000, not 1000. */
    assert_int_equal(driver_bucket_take(&bucket, 10, 1, 5099), 0);
    assert_int_equal(driver_bucket_take(&bucket, 10, 1, 5100), 1);
}

/* ---- ids and texts -------------------------------------------------------------------------- */

static int id_of(json_t *value, char out[DRIVER_MAX_ID_BYTES + 1])
{
    int result = driver_id_text(value, out);
    json_decref(value);
    return result;
}

static void test_id_text_accepts_strings_and_integers(void **state)
{
    char id[DRIVER_MAX_ID_BYTES + 1];
    assert_int_equal(id_of(json_string("room-1"), id), 0);
    assert_string_equal(id, "room-1");
    assert_int_equal(id_of(json_integer(42), id), 0);
    assert_string_equal(id, "42");
    assert_int_equal(id_of(json_integer(-7), id), 0);
    assert_string_equal(id, "-7");
    char longest[DRIVER_MAX_ID_BYTES + 1];
    memset(longest, 'x', DRIVER_MAX_ID_BYTES);
    longest[DRIVER_MAX_ID_BYTES] = '\0';
    assert_int_equal(id_of(json_string(longest), id), 0);
    assert_string_equal(id, longest);
}

static void test_id_text_refuses_the_rest(void **state)
{
    char id[DRIVER_MAX_ID_BYTES + 1];
    char too_long[DRIVER_MAX_ID_BYTES + 2];
    memset(too_long, 'x', sizeof(too_long) - 1);
    too_long[sizeof(too_long) - 1] = '\0';
    assert_int_equal(id_of(json_string(too_long), id), -1);
    assert_string_equal(id, "");
    assert_int_equal(id_of(json_string(""), id), -1);
    assert_int_equal(id_of(json_stringn("a\0b", 3), id), -1);
    assert_int_equal(id_of(json_real(1.5), id), -1);
    assert_int_equal(id_of(json_true(), id), -1);
    assert_int_equal(id_of(json_null(), id), -1);
    assert_int_equal(id_of(json_pack("{s:s}", "roomId", "1"), id), -1);
    assert_int_equal(driver_id_text(NULL, id), -1);
}

static void test_id_argument_raw_or_member(void **state)
{
    json_t *raw = json_string("7");
    json_t *object = json_pack("{s:i}", "roomId", 7);
    assert_ptr_equal(driver_id_argument(raw, "roomId"), raw);
    assert_ptr_equal(driver_id_argument(object, "roomId"), json_object_get(object, "roomId"));
    assert_null(driver_id_argument(object, "requestId"));
    assert_null(driver_id_argument(NULL, "roomId"));
    json_decref(raw);
    json_decref(object);
}

static driver_text_check_t text_check(json_t *value, size_t max)
{
    driver_text_check_t result = driver_check_text(value, max);
    json_decref(value);
    return result;
}

static void test_check_text(void **state)
{
    assert_int_equal(text_check(json_string("hello"), 5), DRIVER_TEXT_OK);
    assert_int_equal(text_check(json_string("hello!"), 5), DRIVER_TEXT_TOO_LONG);
    assert_int_equal(text_check(json_string("\xc3\xa9t\xc3\xa9"), 4), DRIVER_TEXT_TOO_LONG);
    assert_int_equal(text_check(json_string(""), 5), DRIVER_TEXT_MISSING);
    assert_int_equal(text_check(json_integer(5), 5), DRIVER_TEXT_MISSING);
    assert_int_equal(text_check(NULL, 5), DRIVER_TEXT_MISSING);
    assert_int_equal(text_check(json_stringn("a\0b", 3), 5), DRIVER_TEXT_INVALID);
}

static void test_room_name_bounds(void **state)
{
    char room[12];
    assert_int_equal(driver_room_name(room, sizeof(room), "room:", "123456"), 0);
    assert_string_equal(room, "room:123456");
    assert_int_equal(driver_room_name(room, sizeof(room), "room:", "1234567"), -1);
}

/* ---- user profiles -------------------------------------------------------------------------- */

static void test_user_profile_keeps_the_five_fields(void **state)
{
    json_t *user = json_pack("{s:s,s:s,s:n,s:s,s:s}", "id", "u1", "firstName", "Ada", "lastName",
                             "role", "student", "password", "secret");
    json_t *profile = driver_user_profile(user);
    json_t *expected =
        json_pack("{s:s,s:s,s:s}", "id", "u1", "firstName", "Ada", "role", "student");
    assert_true(json_equal(profile, expected));
    /* Copies, never shared with the socket's user (the store reads them from its thread). */
    assert_ptr_not_equal(json_object_get(profile, "id"), json_object_get(user, "id"));
    json_decref(expected);
    json_decref(profile);
    json_decref(user);
}

static void test_user_complete_fills_only_gaps(void **state)
{
    json_t *user = json_pack("{s:s,s:n,s:s}", "id", "u1", "firstName", "lastName", "Token");
    json_t *stored = json_pack("{s:s,s:s,s:s,s:s,s:n}", "id", "u1", "firstName", "Ada", "lastName",
                               "Stored", "role", "teacher", "avatar");
    driver_user_complete(user, stored);
    json_t *expected = json_pack("{s:s,s:s,s:s,s:s}", "id", "u1", "firstName", "Ada", "lastName",
                                 "Token", "role", "teacher");
    assert_true(json_equal(user, expected));
    json_decref(expected);
    json_decref(stored);
    json_decref(user);
}

/* ---- options -------------------------------------------------------------------------------- */

static const char config_text[] =
    "{\n"
    "  \"auth\": {\"jwt\": {\"secret\": \"0123456789abcdef\"}},\n"
    "  \"channels\": {\n"
    "    \"/\": {\n"
    "      \"driver\": \"chat\",\n"
    "      \"options\": {\n"
    "        \"autoCreateRoom\": true\n"
    "      }\n"
    "    },\n"
    "    \"/home\": {\"driver\": \"feed\", \"auth\": \"none\", \"options\": {\"x\": 1}},\n"
    "    \"/ok\": {\"driver\": \"chat\",\n"
    "      \"options\": {\"autoCreateRooms\": false}}\n"
    "  }\n"
    "}\n";

typedef struct loaded_s {
    config_t config;
    char error[512];
} loaded_t;

static int setup_config(void **state)
{
    loaded_t *loaded = calloc(1, sizeof(*loaded));
    if (loaded == NULL ||
        config_load_text("sioc.json", config_text, strlen(config_text), &loaded->config,
                         loaded->error, sizeof(loaded->error)) != 0) {
        print_error("config: %s\n", loaded != NULL ? loaded->error : "out of memory");
        free(loaded);
        return -1;
    }
    *state = loaded;
    return 0;
}

static int teardown_config(void **state)
{
    loaded_t *loaded = *state;
    config_free(&loaded->config);
    free(loaded);
    return 0;
}

static void test_unknown_option_named_with_its_line(void **state)
{
    loaded_t *loaded = *state;
    static const char *const known[] = {"autoCreateRooms", NULL};
    assert_int_equal(driver_check_option_keys(&loaded->config, &loaded->config.channels[0], known,
                                              loaded->error, sizeof(loaded->error)),
                     -1);
    assert_string_equal(loaded->error, "sioc.json:7: channels.\"/\".options.autoCreateRoom: "
                                       "unknown key (expected one of: autoCreateRooms)");
    assert_int_equal(driver_check_option_keys(&loaded->config, &loaded->config.channels[2], known,
                                              loaded->error, sizeof(loaded->error)),
                     0);
}

static void test_driver_without_options(void **state)
{
    loaded_t *loaded = *state;
    static const char *const none[] = {NULL};
    assert_int_equal(driver_check_option_keys(&loaded->config, &loaded->config.channels[1], none,
                                              loaded->error, sizeof(loaded->error)),
                     -1);
    assert_string_equal(loaded->error, "sioc.json:10: channels.\"/home\".options.x: unknown key "
                                       "(the feed driver takes no options)");
}

static void test_option_error_format(void **state)
{
    loaded_t *loaded = *state;
    assert_int_equal(driver_option_error(&loaded->config, &loaded->config.channels[2],
                                         "autoCreateRooms", loaded->error, sizeof(loaded->error),
                                         "expected %s", "true or false"),
                     -1);
    assert_string_equal(loaded->error, "sioc.json:12: channels.\"/ok\".options.autoCreateRooms: "
                                       "expected true or false");
}

static void test_require_authentication(void **state)
{
    loaded_t *loaded = *state;
    assert_int_equal(driver_require_authentication(&loaded->config, &loaded->config.channels[0],
                                                   "chat", 0, loaded->error, sizeof(loaded->error)),
                     0);
    assert_int_equal(driver_require_authentication(&loaded->config, &loaded->config.channels[1],
                                                   "chat", 0, loaded->error, sizeof(loaded->error)),
                     -1);
    assert_string_equal(loaded->error,
                        "sioc.json:10: channels.\"/home\".auth: the chat driver acts for a user: "
                        "auth must be jwt, session or any, not none");
    /* optional: refused unless the driver binds users later (notifications). */
    config_channel_t optional = loaded->config.channels[0];
    optional.auth = CONFIG_AUTH_OPTIONAL;
    assert_int_equal(driver_require_authentication(&loaded->config, &optional, "notifications", 1,
                                                   loaded->error, sizeof(loaded->error)),
                     0);
    assert_int_equal(driver_require_authentication(&loaded->config, &optional, "chat", 0,
                                                   loaded->error, sizeof(loaded->error)),
                     -1);
    assert_non_null(strstr(loaded->error, "not optional"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_starts_full_and_empties),
        cmocka_unit_test(test_bucket_refills_at_rate),
        cmocka_unit_test(test_bucket_fractional_rate),
        cmocka_unit_test(test_bucket_caps_at_burst),
        cmocka_unit_test(test_bucket_ignores_a_clock_going_back),
        cmocka_unit_test(test_id_text_accepts_strings_and_integers),
        cmocka_unit_test(test_id_text_refuses_the_rest),
        cmocka_unit_test(test_id_argument_raw_or_member),
        cmocka_unit_test(test_check_text),
        cmocka_unit_test(test_room_name_bounds),
        cmocka_unit_test(test_user_profile_keeps_the_five_fields),
        cmocka_unit_test(test_user_complete_fills_only_gaps),
        cmocka_unit_test_setup_teardown(test_unknown_option_named_with_its_line, setup_config,
                                        teardown_config),
        cmocka_unit_test_setup_teardown(test_driver_without_options, setup_config, teardown_config),
        cmocka_unit_test_setup_teardown(test_option_error_format, setup_config, teardown_config),
        cmocka_unit_test_setup_teardown(test_require_authentication, setup_config, teardown_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
