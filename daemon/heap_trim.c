/* The once-a-second trim check of heap_trim.h. */
#include "heap_trim.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "log.h"

uint64_t heap_trim_work(const sioc_server_stats_t *stats)
{
    const sioc_eio_stats_t *engine = &stats->engine;
    return engine->message_bytes_in + engine->message_bytes_out +
           (engine->sessions_opened + engine->sessions_closed) * HEAP_TRIM_SESSION_WORK;
}

int heap_trim_due(heap_trim_rule_t *rule, uint64_t total)
{
    uint64_t last = rule->started ? rule->last_total : total;
    uint64_t tick = total > last ? total - last : 0;
    rule->last_total = total;
    rule->started = 1;
    rule->since_burst += tick;
    if (tick > HEAP_TRIM_QUIET_WORK) {
        rule->quiet_ticks = 0;
        return 0;
    }
    rule->quiet_ticks++;
    if (rule->since_burst >= HEAP_TRIM_BURST_WORK) { /* a burst just ended: count afresh */
        rule->since_burst = 0;
        rule->quiet_ticks = 1;
        rule->next_trim = 1;
        rule->trims_left = HEAP_TRIM_AFTER_BURST;
    }
    if (rule->trims_left == 0 || rule->quiet_ticks != rule->next_trim)
        return 0;
    rule->trims_left--;
    rule->next_trim *= 2;
    return 1;
}

#ifdef __GLIBC__

static uv_timer_t timer;
static int started;
static heap_trim_rule_t rule;

static void on_tick(uv_timer_t *handle)
{
    sioc_server_stats_t stats;
    sioc_server_stats(handle->data, &stats);
    if (!heap_trim_due(&rule, heap_trim_work(&stats)))
        return;
    uint64_t began = uv_hrtime();
    int returned = malloc_trim(0);
    log_debug("heap trimmed after a burst in %.1f ms%s", (double)(uv_hrtime() - began) / 1e6,
              returned ? "" : " (nothing to return)");
}

int heap_trim_start(uv_loop_t *loop, sioc_server_t *io)
{
    int rc = uv_timer_init(loop, &timer);
    if (rc != 0)
        return rc;
    timer.data = io;
    started = 1;
    uv_unref((uv_handle_t *)&timer);
    return uv_timer_start(&timer, on_tick, HEAP_TRIM_INTERVAL_MS, HEAP_TRIM_INTERVAL_MS);
}

void heap_trim_stop(void)
{
    if (!started)
        return;
    started = 0;
    uv_close((uv_handle_t *)&timer, NULL);
}

#else

int heap_trim_start(uv_loop_t *loop, sioc_server_t *io)
{
    (void)loop;
    (void)io;
    return 0;
}

void heap_trim_stop(void) {}

#endif
