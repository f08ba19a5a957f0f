/* Deadline lists on a real libuv loop: expiry order, re-arming, disarming, and a callback that
 * re-arms its own entry; the loop must close cleanly at the end (no handle left behind). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/deadline.h"

#define MAX_EVENTS 16

typedef struct recorder_s {
    sioc__deadline_list_t list;
    sioc__deadline_t entries[4];
    int order[MAX_EVENTS];
    int count;
    int rearm_first_times;
} recorder_t;

static void on_expired(sioc__deadline_list_t *list, sioc__deadline_t *deadline)
{
    recorder_t *recorder = list->data;
    int index = (int)(deadline - recorder->entries);
    if (recorder->count < MAX_EVENTS)
        recorder->order[recorder->count++] = index;
    if (index == 0 && recorder->rearm_first_times > 0) {
        recorder->rearm_first_times--;
        sioc__deadline_arm(list, deadline);
    }
}

static void run_until_idle(uv_loop_t *loop, recorder_t *recorder)
{
    uv_run(loop, UV_RUN_DEFAULT);
    sioc__deadline_list_close(&recorder->list, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void start(uv_loop_t *loop, recorder_t *recorder, uint64_t delay)
{
    memset(recorder, 0, sizeof(*recorder));
    assert_int_equal(uv_loop_init(loop), 0);
    assert_int_equal(sioc__deadline_list_init(loop, &recorder->list, delay, on_expired), 0);
    recorder->list.data = recorder;
}

static void test_expire_in_arming_order(void **state)
{
    uv_loop_t loop;
    recorder_t recorder;
    start(&loop, &recorder, 5);
    sioc__deadline_arm(&recorder.list, &recorder.entries[2]);
    sioc__deadline_arm(&recorder.list, &recorder.entries[0]);
    sioc__deadline_arm(&recorder.list, &recorder.entries[1]);
    run_until_idle(&loop, &recorder);
    assert_int_equal(recorder.count, 3);
    assert_int_equal(recorder.order[0], 2);
    assert_int_equal(recorder.order[1], 0);
    assert_int_equal(recorder.order[2], 1);
}

static void test_rearm_moves_to_the_back_and_disarm_removes(void **state)
{
    uv_loop_t loop;
    recorder_t recorder;
    start(&loop, &recorder, 5);
    sioc__deadline_arm(&recorder.list, &recorder.entries[0]);
    sioc__deadline_arm(&recorder.list, &recorder.entries[1]);
    sioc__deadline_arm(&recorder.list, &recorder.entries[2]);
    sioc__deadline_arm(&recorder.list, &recorder.entries[0]); /* head moves to the tail */
    sioc__deadline_disarm(&recorder.entries[2]);
    sioc__deadline_disarm(&recorder.entries[2]); /* twice is harmless */
    assert_false(sioc__deadline_is_armed(&recorder.entries[2]));
    run_until_idle(&loop, &recorder);
    assert_int_equal(recorder.count, 2);
    assert_int_equal(recorder.order[0], 1);
    assert_int_equal(recorder.order[1], 0);
}

static void test_callback_may_rearm_itself(void **state)
{
    uv_loop_t loop;
    recorder_t recorder;
    start(&loop, &recorder, 2);
    recorder.rearm_first_times = 3;
    sioc__deadline_arm(&recorder.list, &recorder.entries[0]);
    run_until_idle(&loop, &recorder);
    assert_int_equal(recorder.count, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(recorder.order[i], 0);
}

static void test_close_drops_armed_entries(void **state)
{
    uv_loop_t loop;
    recorder_t recorder;
    start(&loop, &recorder, 100000);
    sioc__deadline_arm(&recorder.list, &recorder.entries[0]);
    sioc__deadline_list_close(&recorder.list, NULL);
    assert_false(sioc__deadline_is_armed(&recorder.entries[0]));
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(recorder.count, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* After a shorter delay, an entry armed later may expire first: it is put before the longer
 * ones; the entry armed with the same delay after it keeps arming order. */
static void test_shorter_delay_expires_first(void **state)
{
    uv_loop_t loop;
    recorder_t recorder;
    start(&loop, &recorder, 200);
    sioc__deadline_arm(&recorder.list, &recorder.entries[0]);
    sioc__deadline_arm(&recorder.list, &recorder.entries[1]);
    sioc__deadline_list_set_delay(&recorder.list, 5);
    sioc__deadline_arm(&recorder.list, &recorder.entries[2]);
    sioc__deadline_arm(&recorder.list, &recorder.entries[3]);
    assert_ptr_equal(recorder.list.head, &recorder.entries[2]);
    assert_ptr_equal(recorder.list.tail, &recorder.entries[1]);
    run_until_idle(&loop, &recorder);
    assert_int_equal(recorder.count, 4);
    int expected[] = {2, 3, 0, 1};
    assert_memory_equal(recorder.order, expected, sizeof(expected));
}

/* A loop held past an entry's due time, while the byte that disarms it already waits on a
 * socket: the poll reads it before the entry could expire (libuv runs timers first). */
typedef struct stall_s {
    recorder_t recorder;
    uv_check_t staller;
    uv_poll_t reader;
    int fds[2];
    int read_first;
} stall_t;

static void on_readable(uv_poll_t *poll, int status, int events)
{
    stall_t *stall = poll->data;
    char byte;
    assert_int_equal(read(stall->fds[0], &byte, 1), 1);
    stall->read_first = stall->recorder.count == 0;
    sioc__deadline_disarm(&stall->recorder.entries[0]);
    uv_poll_stop(poll);
    uv_close((uv_handle_t *)poll, NULL);
}

/* Runs after a poll: the byte is written, then the loop is held past the due time, so that
 * the next turn starts with the entry overdue and the byte unread. */
static void on_check(uv_check_t *check)
{
    stall_t *stall = check->data;
    assert_int_equal(write(stall->fds[1], "x", 1), 1);
    struct timespec held = {0, 300 * 1000 * 1000};
    nanosleep(&held, NULL);
    uv_check_stop(check);
    uv_close((uv_handle_t *)check, NULL);
}

static void test_held_loop_reads_before_expiring(void **state)
{
    uv_loop_t loop;
    stall_t stall;
    memset(&stall, 0, sizeof(stall));
    start(&loop, &stall.recorder, 20);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, stall.fds), 0);
    assert_int_equal(uv_poll_init(&loop, &stall.reader, stall.fds[0]), 0);
    stall.reader.data = &stall;
    assert_int_equal(uv_poll_start(&stall.reader, UV_READABLE, on_readable), 0);
    assert_int_equal(uv_check_init(&loop, &stall.staller), 0);
    stall.staller.data = &stall;
    assert_int_equal(uv_check_start(&stall.staller, on_check), 0);
    sioc__deadline_arm(&stall.recorder.list, &stall.recorder.entries[0]);
    /* Another entry with nothing to read still expires, one turn later. */
    sioc__deadline_arm(&stall.recorder.list, &stall.recorder.entries[1]);
    run_until_idle(&loop, &stall.recorder);
    close(stall.fds[0]);
    close(stall.fds[1]);
    assert_true(stall.read_first);
    assert_int_equal(stall.recorder.count, 1);
    assert_int_equal(stall.recorder.order[0], 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expire_in_arming_order),
        cmocka_unit_test(test_rearm_moves_to_the_back_and_disarm_removes),
        cmocka_unit_test(test_callback_may_rearm_itself),
        cmocka_unit_test(test_close_drops_armed_entries),
        cmocka_unit_test(test_shorter_delay_expires_first),
        cmocka_unit_test(test_held_loop_reads_before_expiring),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
