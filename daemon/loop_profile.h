/* How long the loop thread is held between two waits for I/O (docs/store.md, "Where the time
 * goes"): a message that arrives while the loop runs callbacks waits in the socket until they
 * end, so the longest such stretches bound what a busy loop adds to a delivery's latency.
 *
 * One sample per loop iteration: the iteration's wall time less the time libuv spent waiting
 * in epoll (uv_metrics_idle_time), and the loop thread's CPU time in it. A diagnostic, started
 * only on request (SIOC_STORE_PROFILE_MS in the daemon, every `sioc bench` run for its own
 * loop): three clock reads per iteration. */
#ifndef SIOC_DAEMON_LOOP_PROFILE_H
#define SIOC_DAEMON_LOOP_PROFILE_H

#include <stdint.h>
#include <uv.h>

#include "store_profile.h"

typedef struct loop_profile_s loop_profile_t;

/* Starts measuring loop's iterations; with period_ms > 0 it also logs them (info) every
 * period_ms as "loop: held ...". The probe's handles do not keep the loop alive. NULL when out
 * of memory or when the loop cannot measure its idle time. */
loop_profile_t *loop_profile_start(uv_loop_t *loop, uint64_t period_ms);

/* Copies the iterations measured since the last take (or the start) and starts afresh: held,
 * each iteration's time less its wait for I/O; ran, the loop thread's CPU time in it (held less
 * ran is the time the scheduler kept it off a CPU). Values in microseconds. */
void loop_profile_take(loop_profile_t *profile, store_histogram_t *held, store_histogram_t *ran);

/* The calling thread's CPU time in nanoseconds (CLOCK_THREAD_CPUTIME_ID; 0 if unknown): a
 * system call, so per loop iteration at most, never per packet. */
uint64_t loop_thread_cpu_ns(void);

/* Logs what is left (with a period), stops, and frees the probe once its handles closed. */
void loop_profile_stop(loop_profile_t *profile);

#endif
