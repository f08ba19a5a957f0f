/* Cluster presence gossip (drivers/presence.h): the decoder of another node's messages, which
 * are untrusted, and the rule that says a node is gone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <sioc_adapter.h>

#include "drivers/driver_util.h"
#include "drivers/presence.h"

static json_t *parse(const char *text)
{
    json_error_t error;
    json_t *value = json_loads(text, JSON_ALLOW_NUL, &error);
    assert_non_null(value);
    return value;
}

static void assert_refused(const char *text, const char *why)
{
    json_t *args = parse(text);
    presence_message_t message;
    memset(&message, 0x5A, sizeof(message));
    const char *error = NULL;
    assert_int_equal(presence_decode(args, &message, &error), -1);
    assert_string_equal(error, why);
    assert_null(message.node);
    assert_null(message.users);
    json_decref(args);
}

static void test_decodes_each_op(void **state)
{
    static const struct {
        const char *text;
        presence_op_t op;
        size_t users;
    } cases[] = {
        {"[{\"node\":\"n1\",\"op\":\"up\",\"users\":[\"alice\"]}]", PRESENCE_UP, 1},
        {"[{\"node\":\"n1\",\"op\":\"down\",\"users\":[42]}]", PRESENCE_DOWN, 1},
        {"[{\"node\":\"n1\",\"op\":\"sync\",\"users\":[]}]", PRESENCE_SYNC, 0},
        {"[{\"node\":\"n1\",\"op\":\"sync\",\"users\":[\"a\",7,\"b\"],\"extra\":true}]",
         PRESENCE_SYNC, 3},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *args = parse(cases[i].text);
        presence_message_t message;
        const char *error = NULL;
        assert_int_equal(presence_decode(args, &message, &error), 0);
        assert_string_equal(message.node, "n1");
        assert_int_equal(message.op, cases[i].op);
        assert_int_equal(json_array_size(message.users), cases[i].users);
        json_decref(args);
    }
}

static void test_refuses_wrong_shapes(void **state)
{
    assert_refused("{\"node\":\"n1\",\"op\":\"up\",\"users\":[]}", "not one object");
    assert_refused("[]", "not one object");
    assert_refused("[\"n1\"]", "not one object");
    assert_refused("[{\"node\":\"n1\",\"op\":\"up\",\"users\":[]}, 1]", "not one object");
}

static void test_refuses_missing_fields(void **state)
{
    assert_refused("[{\"op\":\"up\",\"users\":[]}]", "bad node");
    assert_refused("[{\"node\":\"n1\",\"users\":[]}]", "bad op");
    assert_refused("[{\"node\":\"n1\",\"op\":\"up\"}]", "bad users");
    assert_refused("[{}]", "bad node");
}

static void test_refuses_wrong_types(void **state)
{
    assert_refused("[{\"node\":7,\"op\":\"up\",\"users\":[]}]", "bad node");
    assert_refused("[{\"node\":\"\",\"op\":\"up\",\"users\":[]}]", "bad node");
    assert_refused("[{\"node\":\"n1\",\"op\":1,\"users\":[]}]", "bad op");
    assert_refused("[{\"node\":\"n1\",\"op\":\"join\",\"users\":[]}]", "bad op");
    assert_refused("[{\"node\":\"n1\",\"op\":\"UP\",\"users\":[]}]", "bad op");
    assert_refused("[{\"node\":\"n1\",\"op\":\"up\",\"users\":{}}]", "bad users");
    assert_refused("[{\"node\":\"n1\",\"op\":\"up\",\"users\":\"alice\"}]", "bad users");
    assert_refused("[{\"node\":\"n1\",\"op\":\"up\",\"users\":[null]}]", "bad user id");
    assert_refused("[{\"node\":\"n1\",\"op\":\"up\",\"users\":[\"a\",1.5]}]", "bad user id");
    assert_refused("[{\"node\":\"n1\",\"op\":\"up\",\"users\":[[\"a\"]]}]", "bad user id");
    assert_refused("[{\"node\":\"n1\",\"op\":\"up\",\"users\":[\"\"]}]", "bad user id");
}

static void test_refuses_nul_bytes(void **state)
{
    /* cut at the NUL, these would name node n1 or user alice */
    assert_refused("[{\"node\":\"n1\\u0000x\",\"op\":\"up\",\"users\":[]}]", "bad node");
    assert_refused("[{\"node\":\"n1\",\"op\":\"up\\u0000\",\"users\":[]}]", "bad op");
    assert_refused("[{\"node\":\"n1\",\"op\":\"up\",\"users\":[\"alice\\u0000x\"]}]",
                   "bad user id");
}

static void test_refuses_long_node(void **state)
{
    char uid[SIOC_ADAPTER_UID_SIZE + 1];
    memset(uid, 'u', sizeof(uid) - 1);
    uid[sizeof(uid) - 1] = '\0';
    json_t *args = json_pack("[{s:s,s:s,s:[]}]", "node", uid, "op", "up", "users");
    presence_message_t message;
    const char *error = NULL;
    assert_int_equal(presence_decode(args, &message, &error), -1);
    assert_string_equal(error, "bad node");
    json_decref(args);

    uid[SIOC_ADAPTER_UID_SIZE - 1] = '\0'; /* the longest that fits */
    args = json_pack("[{s:s,s:s,s:[]}]", "node", uid, "op", "up", "users");
    assert_int_equal(presence_decode(args, &message, &error), 0);
    assert_string_equal(message.node, uid);
    json_decref(args);
}

static void test_huge_arrays(void **state)
{
    json_t *users = json_array();
    for (int i = 0; i < PRESENCE_MAX_USERS; i++)
        json_array_append_new(users, json_integer(i));
    json_t *args = json_pack("[{s:s,s:s,s:O}]", "node", "n1", "op", "sync", "users", users);
    presence_message_t message;
    const char *error = NULL;
    assert_int_equal(presence_decode(args, &message, &error), 0);
    assert_int_equal(json_array_size(message.users), PRESENCE_MAX_USERS);
    json_decref(args);

    json_array_append_new(users, json_integer(-1)); /* one more than the bound */
    args = json_pack("[{s:s,s:s,s:O}]", "node", "n1", "op", "sync", "users", users);
    assert_int_equal(presence_decode(args, &message, &error), -1);
    assert_string_equal(error, "bad users");
    json_decref(args);
    json_decref(users);
}

static void test_user_id_too_long(void **state)
{
    char id[DRIVER_MAX_ID_BYTES + 2];
    memset(id, 'i', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    json_t *args = json_pack("[{s:s,s:s,s:[s]}]", "node", "n1", "op", "up", "users", id);
    presence_message_t message;
    const char *error = NULL;
    assert_int_equal(presence_decode(args, &message, &error), -1);
    assert_string_equal(error, "bad user id");
    json_decref(args);
}

static void test_unknown_node_is_decoded(void **state)
{
    /* a node never heard of before is how every node starts: its message is accepted (the
     * driver creates its entry), only its shape is checked */
    json_t *args = parse("[{\"node\":\"never-seen\",\"op\":\"down\",\"users\":[\"bob\"]}]");
    presence_message_t message;
    const char *error = NULL;
    assert_int_equal(presence_decode(args, &message, &error), 0);
    assert_string_equal(message.node, "never-seen");
    json_decref(args);
}

static void test_node_gone_after_three_intervals(void **state)
{
    assert_int_equal(presence_node_gone(1000, 1000, 100), 0);
    assert_int_equal(presence_node_gone(1300, 1000, 100), 0); /* exactly three: not yet */
    assert_int_equal(presence_node_gone(1301, 1000, 100), 1);
    assert_int_equal(presence_node_gone(999, 1000, 100), 0); /* heard after the clock read */
    assert_int_equal(presence_node_gone(UINT64_MAX, 0, UINT32_MAX), 1);
    assert_int_equal(presence_node_gone((uint64_t)UINT32_MAX * 3, 0, UINT32_MAX), 0);
    assert_int_equal(presence_node_gone(4, 0, 1), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decodes_each_op),
        cmocka_unit_test(test_refuses_wrong_shapes),
        cmocka_unit_test(test_refuses_missing_fields),
        cmocka_unit_test(test_refuses_wrong_types),
        cmocka_unit_test(test_refuses_nul_bytes),
        cmocka_unit_test(test_refuses_long_node),
        cmocka_unit_test(test_huge_arrays),
        cmocka_unit_test(test_user_id_too_long),
        cmocka_unit_test(test_unknown_node_is_decoded),
        cmocka_unit_test(test_node_gone_after_three_intervals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
