/* The store's time profile (store_profile.h). */
#include "store_profile.h"

#include <inttypes.h>
#include <stdio.h>

#include "log.h"

#define EXACT_BELOW 16
#define SUB_BUCKETS 8
#define SUB_BITS 3
#define FIRST_POWER 4 /* 2^4 == EXACT_BELOW */
#define VALUE_MAX UINT32_MAX

static size_t bucket_of(uint64_t value)
{
    if (value < EXACT_BELOW)
        return (size_t)value;
    if (value > VALUE_MAX)
        value = VALUE_MAX;
    int power = 63 - __builtin_clzll(value);
    size_t sub = (size_t)(value >> (power - SUB_BITS)) & (SUB_BUCKETS - 1);
    return EXACT_BELOW + (size_t)(power - FIRST_POWER) * SUB_BUCKETS + sub;
}

static uint64_t bucket_top(size_t bucket)
{
    if (bucket < EXACT_BELOW)
        return bucket;
    int power = FIRST_POWER + (int)((bucket - EXACT_BELOW) / SUB_BUCKETS);
    uint64_t sub = (bucket - EXACT_BELOW) % SUB_BUCKETS;
    uint64_t width = 1ull << (power - SUB_BITS);
    return ((SUB_BUCKETS + sub) << (power - SUB_BITS)) + width - 1;
}

void store_histogram_add(store_histogram_t *histogram, uint64_t value)
{
    histogram->count++;
    histogram->sum_us += value;
    if (value > histogram->max_us)
        histogram->max_us = value;
    histogram->buckets[bucket_of(value)]++;
}

uint64_t store_histogram_quantile(const store_histogram_t *histogram, double q)
{
    if (histogram->count == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)histogram->count);
    if (rank >= histogram->count)
        rank = histogram->count - 1;
    uint64_t seen = 0;
    for (size_t bucket = 0; bucket < STORE_HISTOGRAM_BUCKETS; bucket++) {
        seen += histogram->buckets[bucket];
        if (seen > rank) {
            uint64_t top = bucket_top(bucket);
            return top < histogram->max_us ? top : histogram->max_us;
        }
    }
    return histogram->max_us;
}

static const char *const phase_names[STORE_PHASE_COUNT] = {
    "wait",     "begin", "statements", "commit", "trip",  "batch",
    "handback", "total", "callbacks",  "size",   "depth",
};

/* " wait 12/340/900/1200" (mean/p50/p99/max; microseconds, or requests for size and batches for
 * depth). */
static int phase_text(char *out, size_t size, const char *name, const store_histogram_t *h)
{
    uint64_t mean = h->count > 0 ? h->sum_us / h->count : 0;
    return snprintf(out, size, " %s %" PRIu64 "/%" PRIu64 "/%" PRIu64 "/%" PRIu64, name, mean,
                    store_histogram_quantile(h, 0.5), store_histogram_quantile(h, 0.99), h->max_us);
}

void store_profile_log(const store_profile_t *profile, const char *who)
{
    if (!log_enabled(LOG_INFO) || profile->phases[STORE_PHASE_SIZE].count == 0)
        return; /* no batch: nothing to say */
    char line[1024];
    size_t used = 0;
    for (int phase = 0; phase < STORE_PHASE_COUNT && used < sizeof(line); phase++) {
        int n = phase_text(line + used, sizeof(line) - used, phase_names[phase],
                           &profile->phases[phase]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    log_info("store: profile of %s: %" PRIu64 " requests in %" PRIu64
             " batches; mean/p50/p99/max in us:%s",
             who, profile->phases[STORE_PHASE_TOTAL].count, profile->phases[STORE_PHASE_SIZE].count,
             line);
}
