/* GET /metrics: the daemon's and the library's numbers in the Prometheus text exposition format
 * 0.0.4 (docs/operations.md lists every metric). The library's counters come from
 * sioc_server_stats(); the store's and the cluster Redis's latencies are observed here as
 * requests complete. */
#ifndef SIOC_DAEMON_METRICS_H
#define SIOC_DAEMON_METRICS_H

#include <stddef.h>

#include "store.h"

struct daemon_s;

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* A store request took seconds from store_request to its callback (queueing included). Loop
 * thread only. */
void metrics_store_observe(store_operation_t operation, int failed, double seconds);

/* A PUBLISH to the cluster's Redis was answered after seconds (sioc_redis_options_t.on_latency;
 * data unused). Loop thread only. */
void metrics_redis_observe(double seconds, void *data);

/* The whole exposition (malloc'd, *length bytes), or NULL when out of memory. */
char *metrics_render(const struct daemon_s *daemon, size_t *length);

#endif
