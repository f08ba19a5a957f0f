/* SIGHUP (reload_apply): which values move into the running configuration, and which changes
 * are named as needing a restart. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "log.h"
#include "reload.h"

#define BASE_HEAD                                                                                  \
    "{\"auth\": {\"jwt\": {\"secret\": \"0123456789abcdef\"}},"                                    \
    " \"channels\": {\"/\": {\"driver\": \"chat\"}},"

static void load(const char *text, config_t *config)
{
    char error[512];
    if (config_load_text("sioc.json", text, strlen(text), config, error, sizeof(error)) != 0)
        fail_msg("%s", error);
}

static void test_nothing_changed(void **state)
{
    const char *text = BASE_HEAD " \"api\": {\"key\": \"key-0123456789abcdef\"}}";
    config_t running, next;
    load(text, &running);
    load(text, &next);
    char restart[256];
    int cors;
    assert_int_equal(reload_apply(&running, &next, &cors, restart, sizeof(restart)), 0);
    assert_string_equal(restart, "");
    config_free(&next);
    config_free(&running);
}

static void test_live_values_move_in(void **state)
{
    config_t running, next;
    load(BASE_HEAD " \"api\": {\"key\": \"key-0123456789abcdef\"}}", &running);
    load(BASE_HEAD
         " \"api\": {\"key\": \"new-0123456789abcdef\"},"
         " \"log\": {\"level\": \"error\", \"format\": \"json\"},"
         " \"limits\": {\"maxTextLength\": 5, \"historyLimit\": 7, \"typingTimeoutMs\": 900,"
         " \"maxQueuedEvents\": 3, \"messagesPerSecond\": 2.5, \"messageBurst\": 4,"
         " \"pingIntervalMs\": 1000, \"pingTimeoutMs\": 2000, \"connectTimeoutMs\": 3000,"
         " \"upgradeTimeoutMs\": 4000, \"maxPayload\": 5000, \"maxBufferedBytes\": 70000}}",
         &next);
    char restart[256];
    int cors;
    assert_int_equal(reload_apply(&running, &next, &cors, restart, sizeof(restart)), 15);
    assert_string_equal(restart, "");
    assert_string_equal(running.api.key, "new-0123456789abcdef");
    assert_string_equal(next.api.key, "key-0123456789abcdef"); /* freed with next */
    assert_string_equal(running.log_level, "error");
    assert_string_equal(running.log_format, "json");
    assert_false(log_enabled(LOG_WARN));
    assert_int_equal(running.limits.max_text_length, 5);
    assert_int_equal(running.limits.history_limit, 7);
    assert_int_equal(running.limits.typing_timeout_ms, 900);
    assert_int_equal(running.limits.max_queued_events, 3);
    assert_true(running.limits.messages_per_second == 2.5);
    assert_int_equal(running.limits.message_burst, 4);
    assert_int_equal(running.limits.ping_interval_ms, 1000);
    assert_int_equal(running.limits.ping_timeout_ms, 2000);
    assert_int_equal(running.limits.connect_timeout_ms, 3000);
    assert_int_equal(running.limits.upgrade_timeout_ms, 4000);
    assert_int_equal(running.limits.max_payload, 5000);
    assert_int_equal(running.limits.max_buffered_bytes, 70000);
    config_free(&next);
    config_free(&running);
    log_set_level(LOG_INFO);
    log_set_format(LOG_FORMAT_TEXT);
}

static void test_restart_changes_are_named_and_not_applied(void **state)
{
    config_t running, next;
    load(BASE_HEAD " \"listen\": {\"port\": 3000}, \"limits\": {\"shutdownTimeoutMs\": 5000}}",
         &running);
    load(BASE_HEAD " \"listen\": {\"port\": 4000}, \"limits\": {\"shutdownTimeoutMs\": 1000,"
                   " \"maxTextLength\": 9}, \"cors\": {\"origins\": [\"*\"]}}",
         &next);
    char restart[256];
    int cors;
    assert_int_equal(reload_apply(&running, &next, &cors, restart, sizeof(restart)), 2);
    assert_string_equal(restart, "listen, limits.shutdownTimeoutMs");
    assert_true(cors);
    assert_string_equal(running.cors_origins[0], "*");
    assert_null(next.cors_origins);
    assert_int_equal(running.listen.port, 3000);
    assert_int_equal(running.limits.shutdown_timeout_ms, 5000);
    assert_int_equal(running.limits.max_text_length, 9);
    /* A list that does not fit is cut, never overrun. */
    char small[10];
    assert_int_equal(reload_apply(&running, &next, &cors, small, sizeof(small)), 1); /* cors back */
    assert_true(strlen(small) < sizeof(small));
    config_free(&next);
    config_free(&running);
}

static void test_api_key_needs_the_api_on_both_sides(void **state)
{
    config_t running, next;
    load(BASE_HEAD " \"log\": {\"level\": \"info\"}}", &running);
    load(BASE_HEAD " \"api\": {\"key\": \"key-0123456789abcdef\"}}", &next);
    char restart[256];
    int cors;
    assert_int_equal(reload_apply(&running, &next, &cors, restart, sizeof(restart)), 0);
    assert_null(running.api.key);
    assert_string_equal(restart, "api"); /* turning the API on takes a restart */
    config_free(&next);
    config_free(&running);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nothing_changed),
        cmocka_unit_test(test_live_values_move_in),
        cmocka_unit_test(test_restart_changes_are_named_and_not_applied),
        cmocka_unit_test(test_api_key_needs_the_api_on_both_sides),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
