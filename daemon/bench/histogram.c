/* Log-linear latency histogram (see histogram.h). */
#include "bench/histogram.h"

#include <math.h>
#include <string.h>

void bench_histogram_init(bench_histogram_t *histogram)
{
    memset(histogram, 0, sizeof(*histogram));
    histogram->min = UINT64_MAX;
}

unsigned bench_histogram_index(uint64_t value)
{
    if (value < BENCH_HISTOGRAM_LINEAR)
        return (unsigned)value;
    unsigned magnitude = 63u - (unsigned)__builtin_clzll(value); /* 8..63 */
    unsigned shift = magnitude - 7u;                             /* keeps 8 significant bits */
    unsigned sub = (unsigned)(value >> shift) - BENCH_HISTOGRAM_SUB_BUCKETS;
    return BENCH_HISTOGRAM_LINEAR + (magnitude - 8u) * BENCH_HISTOGRAM_SUB_BUCKETS + sub;
}

uint64_t bench_histogram_bucket_high(unsigned index)
{
    if (index < BENCH_HISTOGRAM_LINEAR)
        return index;
    unsigned above = index - BENCH_HISTOGRAM_LINEAR;
    unsigned magnitude = 8u + above / BENCH_HISTOGRAM_SUB_BUCKETS;
    uint64_t sub = BENCH_HISTOGRAM_SUB_BUCKETS + above % BENCH_HISTOGRAM_SUB_BUCKETS;
    unsigned shift = magnitude - 7u;
    /* The last value of the bucket; written so that the top bucket does not overflow. */
    return (sub << shift) + ((UINT64_C(1) << shift) - 1);
}

void bench_histogram_record(bench_histogram_t *histogram, uint64_t value)
{
    histogram->counts[bench_histogram_index(value)]++;
    histogram->total++;
    if (value < histogram->min)
        histogram->min = value;
    if (value > histogram->max)
        histogram->max = value;
}

void bench_histogram_merge(bench_histogram_t *histogram, const bench_histogram_t *source)
{
    for (unsigned i = 0; i < BENCH_HISTOGRAM_BUCKETS; i++)
        histogram->counts[i] += source->counts[i];
    histogram->total += source->total;
    if (source->min < histogram->min)
        histogram->min = source->min;
    if (source->max > histogram->max)
        histogram->max = source->max;
}

uint64_t bench_histogram_percentile(const bench_histogram_t *histogram, double percentile)
{
    if (histogram->total == 0)
        return 0;
    if (percentile > 100.0)
        percentile = 100.0;
    /* The rank of the sample that percentile names, counting from 1. */
    uint64_t rank = (uint64_t)ceil(percentile / 100.0 * (double)histogram->total);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < BENCH_HISTOGRAM_BUCKETS; i++) {
        seen += histogram->counts[i];
        if (seen >= rank) {
            uint64_t high = bench_histogram_bucket_high(i);
            return high < histogram->max ? high : histogram->max;
        }
    }
    return histogram->max;
}
