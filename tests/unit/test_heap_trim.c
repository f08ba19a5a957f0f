/* The rule that decides when the daemon gives freed heap back (heap_trim.h): a burst of work,
 * then a quiet second. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "heap_trim.h"

static void test_quiet_server_is_not_trimmed(void **state)
{
    heap_trim_rule_t rule;
    memset(&rule, 0, sizeof(rule));
    /* A large counter at the first tick is history, not a burst. */
    assert_int_equal(heap_trim_due(&rule, 10ull * HEAP_TRIM_BURST_WORK), 0);
    for (uint64_t i = 1; i <= 100; i++)
        assert_int_equal(heap_trim_due(&rule, 10ull * HEAP_TRIM_BURST_WORK + i * 1000), 0);
}

/* The quiet ticks after a burst at which the rule trims, in the first count ticks. */
static unsigned trims_in(heap_trim_rule_t *rule, uint64_t total, unsigned count, unsigned *at)
{
    unsigned trims = 0;
    for (unsigned tick = 1; tick <= count; tick++)
        if (heap_trim_due(rule, total))
            at[trims++] = tick;
    return trims;
}

static void test_trimmed_after_a_burst_then_less_and_less_often(void **state)
{
    heap_trim_rule_t rule;
    memset(&rule, 0, sizeof(rule));
    uint64_t total = 0;
    assert_int_equal(heap_trim_due(&rule, total), 0);
    total += HEAP_TRIM_BURST_WORK; /* the burst's second: not quiet yet */
    assert_int_equal(heap_trim_due(&rule, total), 0);
    total += HEAP_TRIM_QUIET_WORK; /* at most the quiet figure: over */
    assert_int_equal(heap_trim_due(&rule, total), 1);
    /* Then at 2, 4 ... 256 quiet seconds (the queues drain at the readers' pace), no more. */
    unsigned at[16];
    assert_int_equal(trims_in(&rule, total, 1000, at), HEAP_TRIM_AFTER_BURST - 1);
    for (unsigned i = 0; i < HEAP_TRIM_AFTER_BURST - 1; i++)
        assert_int_equal(at[i] + 1, 1u << (i + 1)); /* the first quiet second was before */
}

static void test_work_between_trims_delays_them(void **state)
{
    heap_trim_rule_t rule;
    memset(&rule, 0, sizeof(rule));
    uint64_t total = 0;
    heap_trim_due(&rule, total);
    assert_int_equal(heap_trim_due(&rule, total += HEAP_TRIM_BURST_WORK), 0);
    assert_int_equal(heap_trim_due(&rule, total), 1); /* quiet tick 1 */
    assert_int_equal(heap_trim_due(&rule, total), 1); /* 2 */
    /* Some traffic (less than a burst): the count of quiet seconds starts again. */
    assert_int_equal(heap_trim_due(&rule, total += HEAP_TRIM_QUIET_WORK + 1), 0);
    unsigned at[16];
    assert_int_equal(trims_in(&rule, total, 4, at), 1);
    assert_int_equal(at[0], 4);
}

static void test_steady_load_is_not_trimmed(void **state)
{
    heap_trim_rule_t rule;
    memset(&rule, 0, sizeof(rule));
    uint64_t total = 0;
    heap_trim_due(&rule, total);
    for (int i = 0; i < 100; i++) {
        total += HEAP_TRIM_QUIET_WORK + 1;
        assert_int_equal(heap_trim_due(&rule, total), 0);
    }
    assert_int_equal(heap_trim_due(&rule, total), 1); /* it stops: a burst after all */
}

static void test_a_new_burst_starts_the_trims_again(void **state)
{
    heap_trim_rule_t rule;
    memset(&rule, 0, sizeof(rule));
    uint64_t total = 0;
    heap_trim_due(&rule, total);
    heap_trim_due(&rule, total += HEAP_TRIM_BURST_WORK);
    unsigned at[16];
    assert_int_equal(trims_in(&rule, total, 1000, at), HEAP_TRIM_AFTER_BURST);
    assert_int_equal(heap_trim_due(&rule, total += HEAP_TRIM_BURST_WORK), 0);
    assert_int_equal(heap_trim_due(&rule, total), 1);
}

static void test_small_work_adds_up(void **state)
{
    heap_trim_rule_t rule;
    memset(&rule, 0, sizeof(rule));
    uint64_t total = 0, step = HEAP_TRIM_BURST_WORK / 4;
    heap_trim_due(&rule, total);
    for (int i = 0; i < 3; i++)
        assert_int_equal(heap_trim_due(&rule, total += step), 0);
    /* The fourth quarter is more than a quiet second, the one after it is quiet. */
    assert_int_equal(heap_trim_due(&rule, total += step), 0);
    assert_int_equal(heap_trim_due(&rule, total), 1);
}

static void test_counter_going_back_is_no_work(void **state)
{
    heap_trim_rule_t rule;
    memset(&rule, 0, sizeof(rule));
    heap_trim_due(&rule, 5ull * HEAP_TRIM_BURST_WORK);
    assert_int_equal(heap_trim_due(&rule, 0), 0);
    assert_int_equal(heap_trim_due(&rule, 0), 0);
}

static void test_work_of_stats(void **state)
{
    sioc_server_stats_t stats;
    memset(&stats, 0, sizeof(stats));
    stats.engine.message_bytes_in = 10;
    stats.engine.message_bytes_out = 20;
    stats.engine.sessions_opened = 2;
    stats.engine.sessions_closed = 1;
    assert_int_equal(heap_trim_work(&stats), 30 + 3 * HEAP_TRIM_SESSION_WORK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quiet_server_is_not_trimmed),
        cmocka_unit_test(test_trimmed_after_a_burst_then_less_and_less_often),
        cmocka_unit_test(test_work_between_trims_delays_them),
        cmocka_unit_test(test_a_new_burst_starts_the_trims_again),
        cmocka_unit_test(test_steady_load_is_not_trimmed),
        cmocka_unit_test(test_small_work_adds_up),
        cmocka_unit_test(test_counter_going_back_is_no_work),
        cmocka_unit_test(test_work_of_stats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
