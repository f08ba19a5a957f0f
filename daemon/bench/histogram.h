/* A latency histogram in the manner of HdrHistogram: every sample is counted (no sampling, no
 * averages), in log-linear buckets with a relative error below 1/128 (0.8%).
 *
 * Values below 256 have a bucket each; above, each power of two [2^m, 2^(m+1)) is split into
 * 128 equal buckets. 7,424 counters cover the whole uint64_t range in 58 KiB, so recording is
 * one clz, a shift and an increment. A percentile is the highest value its bucket holds (as
 * HdrHistogram's highestEquivalentValue), never above the largest sample seen. */
#ifndef SIOC_BENCH_HISTOGRAM_H
#define SIOC_BENCH_HISTOGRAM_H

#include <stdint.h>

#define BENCH_HISTOGRAM_LINEAR 256
#define BENCH_HISTOGRAM_SUB_BUCKETS 128
#define BENCH_HISTOGRAM_BUCKETS (BENCH_HISTOGRAM_LINEAR + (64 - 8) * BENCH_HISTOGRAM_SUB_BUCKETS)

typedef struct bench_histogram_s {
    uint64_t counts[BENCH_HISTOGRAM_BUCKETS];
    uint64_t total;
    uint64_t min;
    uint64_t max;
} bench_histogram_t;

void bench_histogram_init(bench_histogram_t *histogram);
void bench_histogram_record(bench_histogram_t *histogram, uint64_t value);
/* Adds every sample of source to histogram. */
void bench_histogram_merge(bench_histogram_t *histogram, const bench_histogram_t *source);
/* The value at or below which percentile % of the samples fall (0 < percentile <= 100);
 * 0 for an empty histogram. */
uint64_t bench_histogram_percentile(const bench_histogram_t *histogram, double percentile);

/* Bucket arithmetic, exposed for the unit tests. */
unsigned bench_histogram_index(uint64_t value);
uint64_t bench_histogram_bucket_high(unsigned index);

#endif
