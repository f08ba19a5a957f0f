/* How the notifications driver shows a stored notification: VMT's field names, the payload's
 * fields lifted for VMT's SocketProvider, room and course beside the notification. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "drivers/notifications.h"

static json_t *stored_notification(void)
{
    return json_pack("{s:s,s:s,s:s,s:{s:s,s:s,s:s,s:{s:s,s:s},s:{s:s,s:s}},s:b,s:s}", "id", "n1",
                     "userId", "owner", "type", "grantedAccess", "payload", "resourceType", "room",
                     "resourceId", "r1", "id", "spoofed", "fromUser", "_id", "u2", "username",
                     "Ada Lovelace", "room", "_id", "r1", "name", "Algebra", "read", 0, "createdAt",
                     "2026-11-21T21:00:00.000Z");
}

static void test_view_has_vmt_names(void **state)
{
    json_t *stored = stored_notification();
    json_t *view = notifications_view(stored);
    assert_string_equal(json_string_value(json_object_get(view, "_id")), "n1");
    assert_string_equal(json_string_value(json_object_get(view, "notificationType")),
                        "grantedAccess");
    assert_string_equal(json_string_value(json_object_get(view, "toUser")), "owner");
    assert_true(json_is_false(json_object_get(view, "isTrashed")));
    assert_true(json_is_false(json_object_get(view, "read")));
    /* What VMT's createNtfMessage reads, lifted from the payload. */
    assert_string_equal(json_string_value(json_object_get(view, "resourceType")), "room");
    assert_string_equal(json_string_value(json_object_get(view, "resourceId")), "r1");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(view, "fromUser"), "username")),
        "Ada Lovelace");
    assert_true(json_equal(json_object_get(view, "payload"), json_object_get(stored, "payload")));
    json_decref(view);
    json_decref(stored);
}

static void test_view_stored_fields_win(void **state)
{
    json_t *stored = stored_notification();
    json_t *view = notifications_view(stored);
    assert_string_equal(json_string_value(json_object_get(view, "id")), "n1");
    assert_null(json_object_get(view, "room")); /* it goes beside the notification */
    json_decref(view);
    json_decref(stored);
}

static void test_event_puts_room_beside(void **state)
{
    json_t *stored = stored_notification();
    json_t *event = notifications_event(stored);
    json_t *view = notifications_view(stored);
    assert_true(json_equal(json_object_get(event, "notification"), view));
    assert_string_equal(json_string_value(json_object_get(json_object_get(event, "room"), "name")),
                        "Algebra");
    assert_null(json_object_get(event, "course"));
    assert_int_equal(json_object_size(event), 2);
    json_decref(view);
    json_decref(event);
    json_decref(stored);
}

static void test_event_without_payload(void **state)
{
    json_t *stored = json_pack("{s:s,s:s,s:s}", "id", "n2", "userId", "u", "type", "custom");
    json_t *event = notifications_event(stored);
    assert_int_equal(json_object_size(event), 1);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(event, "notification"), "_id")), "n2");
    json_decref(event);
    json_decref(stored);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_view_has_vmt_names),
        cmocka_unit_test(test_view_stored_fields_win),
        cmocka_unit_test(test_event_puts_room_beside),
        cmocka_unit_test(test_event_without_payload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
