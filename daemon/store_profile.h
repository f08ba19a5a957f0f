/* Where a store request's time goes (docs/store.md, "Where the time goes"): each connection
 * ("lane") keeps histograms of the wait in its queue, the phases of its batches (BEGIN, the
 * statements, COMMIT) and the hand-back to the loop thread, and logs them (info) when the
 * store closes. A few clock reads per batch and per request; always on.
 *
 * Threading: the worker's histograms are written by the worker only, the loop's by the loop
 * only; the close log reads both after the worker has been joined. */
#ifndef SIOC_DAEMON_STORE_PROFILE_H
#define SIOC_DAEMON_STORE_PROFILE_H

#include <stddef.h>
#include <stdint.h>

/* Log-linear buckets of microseconds: exact below 16, then 8 per power of two (12.5 %). */
#define STORE_HISTOGRAM_BUCKETS 240

typedef struct store_histogram_s {
    uint64_t count;
    uint64_t sum_us;
    uint64_t max_us;
    uint32_t buckets[STORE_HISTOGRAM_BUCKETS];
} store_histogram_t;

typedef enum store_phase {
    STORE_PHASE_WAIT,       /* request made -> its batch taken by the worker (per request) */
    STORE_PHASE_BEGIN,      /* BEGIN's round trip (per batch) */
    STORE_PHASE_STATEMENTS, /* after BEGIN up to COMMIT: the requests' statements (per batch) */
    STORE_PHASE_COMMIT,     /* COMMIT's round trip, the WAL flush included (per batch) */
    STORE_PHASE_TRIP,       /* a batch sent as one pipeline, BEGIN to COMMIT (per batch) */
    STORE_PHASE_BATCH,      /* the worker's whole batch, ready check included (per batch) */
    STORE_PHASE_HANDBACK,   /* batch posted -> its request completed on the loop (per request) */
    STORE_PHASE_TOTAL,      /* request made -> completed on the loop (per request) */
    STORE_PHASE_CALLBACKS,  /* the loop in the done callbacks of what it took at once: what a
                             * batch's completions (their broadcasts) hold the loop up for */
    STORE_PHASE_SIZE,       /* requests per batch (a count, not microseconds) */
    STORE_PHASE_DEPTH,      /* batches in flight on the connection once this one is sent, itself
                             * included (a count): 2 when it went out behind another */
    STORE_PHASE_COUNT,
} store_phase_t;

typedef struct store_profile_s {
    store_histogram_t phases[STORE_PHASE_COUNT];
} store_profile_t;

void store_histogram_add(store_histogram_t *histogram, uint64_t value);
/* The value under which a fraction q (0..1) of the samples lie (a bucket's upper end); 0 when
 * empty. */
uint64_t store_histogram_quantile(const store_histogram_t *histogram, double q);

/* Logs profile at info level as one line, headed by who ("store: postgres connection 2 of
 * 4"). */
void store_profile_log(const store_profile_t *profile, const char *who);

#endif
