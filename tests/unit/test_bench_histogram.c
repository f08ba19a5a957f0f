/* The load generator's latency histogram: bucket arithmetic over the whole uint64_t range,
 * the 1/128 relative precision, percentiles checked against exact sorted samples, merging. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bench/histogram.h"

static bench_histogram_t *histogram_new(void)
{
    bench_histogram_t *histogram = malloc(sizeof(*histogram));
    assert_non_null(histogram);
    bench_histogram_init(histogram);
    return histogram;
}

static void test_small_values_are_exact(void **state)
{
    for (uint64_t value = 0; value < 256; value++) {
        assert_int_equal(bench_histogram_index(value), value);
        assert_int_equal(bench_histogram_bucket_high((unsigned)value), value);
    }
}

/* Every value lands in a bucket whose range holds it and is at most 1/128 of it wide. */
static void check_value(uint64_t value)
{
    unsigned index = bench_histogram_index(value);
    assert_true(index < BENCH_HISTOGRAM_BUCKETS);
    uint64_t high = bench_histogram_bucket_high(index);
    assert_true(high >= value);
    if (value >= 256) {
        assert_true(high - value <= value / 128);
        uint64_t low = index > 0 ? bench_histogram_bucket_high(index - 1) : 0;
        assert_true(low < value);
    }
}

static void test_buckets_hold_their_values(void **state)
{
    for (uint64_t value = 0; value < 100000; value++)
        check_value(value);
    for (int shift = 8; shift < 64; shift++) {
        uint64_t power = UINT64_C(1) << shift;
        check_value(power - 1);
        check_value(power);
        check_value(power + 1);
        check_value(power + power / 3);
    }
    check_value(UINT64_MAX);
    assert_int_equal(bench_histogram_index(UINT64_MAX), BENCH_HISTOGRAM_BUCKETS - 1);
    assert_true(bench_histogram_bucket_high(BENCH_HISTOGRAM_BUCKETS - 1) == UINT64_MAX);
}

static void test_indexes_are_monotonic(void **state)
{
    unsigned previous = 0;
    for (uint64_t value = 1; value < (UINT64_C(1) << 40); value += value / 7 + 1) {
        unsigned index = bench_histogram_index(value);
        assert_true(index >= previous);
        previous = index;
    }
}

static void test_empty_and_single(void **state)
{
    bench_histogram_t *histogram = histogram_new();
    assert_int_equal(bench_histogram_percentile(histogram, 50), 0);
    bench_histogram_record(histogram, 123456);
    assert_int_equal(histogram->total, 1);
    assert_int_equal(histogram->min, 123456);
    assert_int_equal(histogram->max, 123456);
    /* Never above the largest sample, although its bucket reaches further. */
    assert_int_equal(bench_histogram_percentile(histogram, 50), 123456);
    assert_int_equal(bench_histogram_percentile(histogram, 100), 123456);
    free(histogram);
}

static int compare(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Percentiles of log-normal-ish samples against the exact order statistics. */
static void test_percentiles_match_sorted_samples(void **state)
{
    enum { COUNT = 100000 };
    uint64_t *samples = malloc(COUNT * sizeof(*samples));
    bench_histogram_t *histogram = histogram_new();
    uint64_t seed = 88172645463325252ull;
    for (size_t i = 0; i < COUNT; i++) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        samples[i] = 1000 + (seed % 1000000) * (1 + (seed >> 60)); /* 1 µs .. 16 ms */
        bench_histogram_record(histogram, samples[i]);
    }
    qsort(samples, COUNT, sizeof(*samples), compare);
    const double percentiles[] = {1, 50, 90, 99, 99.9, 99.99, 100};
    for (size_t i = 0; i < sizeof(percentiles) / sizeof(percentiles[0]); i++) {
        size_t rank = (size_t)(percentiles[i] / 100.0 * COUNT + 0.999999);
        uint64_t exact = samples[rank - 1];
        uint64_t value = bench_histogram_percentile(histogram, percentiles[i]);
        assert_true(value >= exact);
        assert_true(value - exact <= exact / 128);
    }
    assert_int_equal(histogram->min, samples[0]);
    assert_int_equal(histogram->max, samples[COUNT - 1]);
    free(samples);
    free(histogram);
}

static void test_merge(void **state)
{
    bench_histogram_t *a = histogram_new(), *b = histogram_new(), *both = histogram_new();
    for (uint64_t value = 1; value <= 1000; value++) {
        bench_histogram_record(value % 2 ? a : b, value * 1000);
        bench_histogram_record(both, value * 1000);
    }
    bench_histogram_merge(a, b);
    assert_int_equal(a->total, 1000);
    assert_int_equal(a->min, 1000);
    assert_int_equal(a->max, 1000000);
    assert_memory_equal(a->counts, both->counts, sizeof(a->counts));
    assert_int_equal(bench_histogram_percentile(a, 99), bench_histogram_percentile(both, 99));
    free(a);
    free(b);
    free(both);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_values_are_exact),
        cmocka_unit_test(test_buckets_hold_their_values),
        cmocka_unit_test(test_indexes_are_monotonic),
        cmocka_unit_test(test_empty_and_single),
        cmocka_unit_test(test_percentiles_match_sorted_samples),
        cmocka_unit_test(test_merge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
