/* Helpers shared by the scenarios (scenario_*.c). */
#ifndef SIOC_BENCH_SCENARIO_H
#define SIOC_BENCH_SCENARIO_H

#include <stddef.h>
#include <stdint.h>

#include "bench/run.h"

/* Seconds as a libuv timer delay (at least 1 ms for a positive value). */
uint64_t bench_milliseconds(double seconds);

/* 0 when min <= value <= max; else -1 with error filled ("--clients: 0 is not in 1..19000"). */
int bench_check_range(long value, long min, long max, const char *name, char *error, size_t size);

/* A JSON string literal of length bytes of 'x' ("\"xxxx\""), malloc'd. */
char *bench_padding_string(size_t length);

/* The CONNECT payload {"token":"<token>"} (JSON-escaped), malloc'd; NULL when token is NULL. */
char *bench_auth_json(const char *token);

/* An HS256 JWT for a benchmark user, as `sioc token --secret S --subject ID` mints them:
 * {"sub":id,"id":id,"firstName":"Bench","lastName":id,"role":"student","iat":now,
 * "exp":now+ttl}. malloc'd, NULL on failure. */
char *bench_token_hs256(const char *secret, const char *subject, int64_t now, int64_t ttl);

/* The measured window, on run->phase: --warmup, then bench_run_window_begin(), --duration
 * later bench_run_window_end() and over(run) (which may reuse run->phase, e.g. to drain). */
void bench_measure(bench_run_t *run, void (*over)(bench_run_t *run));

/* Whether an event's name is name. */
int bench_event_is(const bench_packet_t *packet, const char *name);

#endif
