/* The loop thread's busy stretches (loop_profile.h). */
#include "loop_profile.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

struct loop_profile_s {
    uv_loop_t *loop;
    uv_check_t check; /* runs right after each poll: one iteration ends there */
    uv_timer_t timer; /* the period's log, when asked for */
    uint64_t iteration_started_ns;
    uint64_t idle_at_start_ns; /* uv_metrics_idle_time then */
    uint64_t cpu_at_start_ns;  /* the loop thread's CPU time then */
    uint64_t period_ms;
    store_histogram_t held;
    store_histogram_t ran; /* of held, the time on a CPU: the rest is the scheduler's */
    int handles_open;
};

uint64_t loop_thread_cpu_ns(void)
{
    struct timespec now;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now) != 0)
        return 0;
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static void on_check(uv_check_t *check)
{
    loop_profile_t *profile = check->data;
    uint64_t now = uv_hrtime();
    uint64_t idle = uv_metrics_idle_time(profile->loop);
    uint64_t cpu = loop_thread_cpu_ns();
    uint64_t wall = now - profile->iteration_started_ns;
    uint64_t waited = idle - profile->idle_at_start_ns;
    store_histogram_add(&profile->held, (wall > waited ? wall - waited : 0) / 1000);
    store_histogram_add(&profile->ran, (cpu - profile->cpu_at_start_ns) / 1000);
    profile->iteration_started_ns = now;
    profile->idle_at_start_ns = idle;
    profile->cpu_at_start_ns = cpu;
}

static void log_held(loop_profile_t *profile)
{
    store_histogram_t held, ran;
    loop_profile_take(profile, &held, &ran);
    if (held.count == 0)
        return;
    log_info("loop: held %" PRIu64 " times between polls; mean/p50/p99/max in us: %" PRIu64
             "/%" PRIu64 "/%" PRIu64 "/%" PRIu64 ", on a CPU %" PRIu64 "/%" PRIu64 "/%" PRIu64
             "/%" PRIu64,
             held.count, held.sum_us / held.count, store_histogram_quantile(&held, 0.5),
             store_histogram_quantile(&held, 0.99), held.max_us, ran.sum_us / ran.count,
             store_histogram_quantile(&ran, 0.5), store_histogram_quantile(&ran, 0.99), ran.max_us);
}

static void on_timer(uv_timer_t *timer)
{
    log_held(timer->data);
}

loop_profile_t *loop_profile_start(uv_loop_t *loop, uint64_t period_ms)
{
    /* Idle time is counted only once asked for; asking again is harmless. */
    if (uv_loop_configure(loop, UV_METRICS_IDLE_TIME) != 0)
        return NULL;
    loop_profile_t *profile = calloc(1, sizeof(*profile));
    if (profile == NULL)
        return NULL;
    profile->loop = loop;
    profile->period_ms = period_ms;
    profile->iteration_started_ns = uv_hrtime();
    profile->idle_at_start_ns = uv_metrics_idle_time(loop);
    profile->cpu_at_start_ns = loop_thread_cpu_ns();
    uv_check_init(loop, &profile->check);
    profile->check.data = profile;
    uv_check_start(&profile->check, on_check);
    uv_unref((uv_handle_t *)&profile->check);
    uv_timer_init(loop, &profile->timer);
    profile->timer.data = profile;
    if (period_ms > 0) {
        uv_timer_start(&profile->timer, on_timer, period_ms, period_ms);
        uv_unref((uv_handle_t *)&profile->timer);
    }
    profile->handles_open = 2;
    return profile;
}

void loop_profile_take(loop_profile_t *profile, store_histogram_t *held, store_histogram_t *ran)
{
    *held = profile->held;
    *ran = profile->ran;
    memset(&profile->held, 0, sizeof(profile->held));
    memset(&profile->ran, 0, sizeof(profile->ran));
}

static void on_closed(uv_handle_t *handle)
{
    loop_profile_t *profile = handle->data;
    if (--profile->handles_open == 0)
        free(profile);
}

void loop_profile_stop(loop_profile_t *profile)
{
    if (profile == NULL)
        return;
    if (profile->period_ms > 0)
        log_held(profile);
    uv_close((uv_handle_t *)&profile->check, on_closed);
    uv_close((uv_handle_t *)&profile->timer, on_closed);
}
