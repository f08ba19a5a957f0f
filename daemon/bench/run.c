/* One run of the load generator: set-up, connecting clients, the measured window, pacing,
 * usage figures, the end of the run (see run.h). */
#include "bench/run.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

/* Time after the scenario's own phases before the run is cut short. */
#define DEADLINE_MARGIN_SECONDS 30.0
/* The server's memory is sampled this often during the measured window. */
#define MEMORY_SAMPLE_MS 100

static void on_handle_closed_noop(uv_handle_t *handle) {}

/* ---- set-up -----------------------------------------------------------------------------------
 */

/* Only loopback targets: the benchmark never sends traffic off this machine. */
static int parse_server(bench_run_t *run, const bench_options_t *options)
{
    if (uv_ip4_addr(options->host, options->port, &run->server) != 0) {
        snprintf(run->error, sizeof(run->error), "--host %s: not an IPv4 address", options->host);
        return -1;
    }
    if ((ntohl(run->server.sin_addr.s_addr) >> 24) != 127) {
        snprintf(run->error, sizeof(run->error), "--host %s: only 127.0.0.0/8 is allowed",
                 options->host);
        return -1;
    }
    snprintf(run->host_header, sizeof(run->host_header), "%s:%d", options->host, options->port);
    if (options->second_port != 0)
        uv_ip4_addr(options->host, options->second_port, &run->second_server);
    return 0;
}

/* Open files: one per connection plus a few; the soft limit is raised to the hard one. */
static int raise_file_limit(bench_run_t *run, size_t count)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
        return 0;
    if (limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
    if (limit.rlim_cur != RLIM_INFINITY && count + 64 > limit.rlim_cur) {
        snprintf(run->error, sizeof(run->error),
                 "%zu connections need more than this process's %llu open files: run several "
                 "generator processes",
                 count, (unsigned long long)limit.rlim_cur);
        return -1;
    }
    return 0;
}

static void on_signal(uv_signal_t *signal, int number)
{
    bench_run_t *run = signal->data;
    if (run->holding) { /* the end a held run waits for */
        bench_run_finish(run, NULL);
        return;
    }
    run->interrupted = 1;
    bench_run_finish(run, "interrupted");
}

static void on_deadline(uv_timer_t *timer)
{
    bench_run_t *run = timer->data;
    bench_run_fail(run, "the run did not end in time (cut short)");
}

static int start_guards(bench_run_t *run)
{
    const bench_options_t *options = run->options;
    uv_signal_init(&run->loop, &run->sigint);
    uv_signal_init(&run->loop, &run->sigterm);
    run->sigint.data = run->sigterm.data = run;
    uv_signal_start(&run->sigint, on_signal, SIGINT);
    uv_signal_start(&run->sigterm, on_signal, SIGTERM);
    uv_timer_init(&run->loop, &run->deadline);
    uv_timer_init(&run->loop, &run->phase);
    uv_timer_init(&run->loop, &run->memory_timer);
    run->deadline.data = run->phase.data = run->memory_timer.data = run;
    double seconds =
        options->timeout + options->warmup + options->duration + DEADLINE_MARGIN_SECONDS;
    return uv_timer_start(&run->deadline, on_deadline, (uint64_t)(seconds * 1000.0), 0);
}

int bench_run_init(bench_run_t *run, const bench_options_t *options,
                   const bench_scenario_t *scenario, size_t count,
                   const bench_client_callbacks_t *callbacks)
{
    memset(run, 0, sizeof(*run));
    run->rss_before_kib = run->rss_window_start_kib = run->rss_peak_kib = run->rss_end_kib = -1;
    run->options = options;
    run->scenario = scenario;
    if (count > BENCH_MAX_CONNECTIONS) {
        snprintf(run->error, sizeof(run->error),
                 "%zu connections: at most %d per generator process on this machine; run "
                 "several processes and add their figures",
                 count, BENCH_MAX_CONNECTIONS);
        return -1;
    }
    if (parse_server(run, options) != 0 || raise_file_limit(run, count) != 0)
        return -1;
    run->read_buffer = malloc(BENCH_READ_BUFFER_SIZE);
    run->clients = calloc(count > 0 ? count : 1, sizeof(*run->clients));
    run->results = json_object();
    if (run->read_buffer == NULL || run->clients == NULL || run->results == NULL ||
        uv_loop_init(&run->loop) != 0) {
        snprintf(run->error, sizeof(run->error), "out of memory");
        return -1;
    }
    run->client_count = count;
    for (size_t i = 0; i < count; i++)
        bench_client_init(&run->clients[i], run, i, callbacks);
    return start_guards(run) == 0 ? 0 : -1;
}

/* ---- running and ending ---------------------------------------------------------------------- */

static void close_everything(uv_handle_t *handle, void *data)
{
    if (!uv_is_closing(handle))
        uv_close(handle, on_handle_closed_noop);
}

int bench_run_execute(bench_run_t *run)
{
    if (run->options->server_pid > 0)
        run->rss_before_kib = bench_proc_rss_kib(run->options->server_pid);
    if (run->scenario->start(run) != 0 && run->error[0] == '\0')
        snprintf(run->error, sizeof(run->error), "the scenario could not start");
    if (run->error[0] != '\0')
        bench_run_finish(run, run->error);
    uv_run(&run->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&run->loop) == UV_EBUSY) {
        /* A handle a scenario forgot: close it rather than hang. */
        uv_walk(&run->loop, close_everything, NULL);
        uv_run(&run->loop, UV_RUN_DEFAULT);
        uv_loop_close(&run->loop);
    }
    run->scenario->report(run);
    return run->error[0] == '\0' ? 0 : -1;
}

void bench_run_free(bench_run_t *run)
{
    if (run->scenario != NULL && run->scenario->release != NULL)
        run->scenario->release(run);
    free(run->clients);
    run->clients = NULL;
    free(run->read_buffer);
    run->read_buffer = NULL;
    json_decref(run->results);
    run->results = NULL;
}

static void close_handle(uv_handle_t *handle)
{
    if (handle->loop != NULL && !uv_is_closing(handle))
        uv_close(handle, on_handle_closed_noop);
}

void bench_run_finish(bench_run_t *run, const char *reason)
{
    if (run->stopping)
        return;
    run->stopping = 1;
    if (reason != NULL && run->error[0] == '\0')
        snprintf(run->error, sizeof(run->error), "%s", reason);
    if (run->measuring)
        bench_run_window_end(run);
    if (run->scenario->stop != NULL)
        run->scenario->stop(run);
    close_handle((uv_handle_t *)&run->sigint);
    close_handle((uv_handle_t *)&run->sigterm);
    close_handle((uv_handle_t *)&run->deadline);
    close_handle((uv_handle_t *)&run->phase);
    close_handle((uv_handle_t *)&run->memory_timer);
    for (size_t i = 0; i < run->client_count; i++)
        bench_client_close(&run->clients[i]);
}

void bench_run_fail(bench_run_t *run, const char *format, ...)
{
    if (run->error[0] == '\0') {
        va_list arguments;
        va_start(arguments, format);
        vsnprintf(run->error, sizeof(run->error), format, arguments);
        va_end(arguments);
    }
    bench_run_finish(run, run->error);
}

/* ---- connecting every client ----------------------------------------------------------------- */

static void ramp_pump(bench_run_t *run)
{
    size_t concurrency = run->options->concurrency > 0 ? (size_t)run->options->concurrency : 1;
    while (run->ramping && !run->stopping && run->ramp_in_flight < concurrency &&
           run->ramp_next < run->ramp_target) {
        size_t index = run->ramp_next++;
        run->ramp_in_flight++;
        int rc = bench_client_connect(&run->clients[index], run->ramp_auth(run, index),
                                      run->options->polling);
        if (rc != 0)
            bench_run_fail(run, "client %zu: cannot create a socket: %s", index, uv_strerror(rc));
    }
}

void bench_run_connect_all(bench_run_t *run, size_t count,
                           const char *(*auth)(bench_run_t *run, size_t index),
                           void (*done)(bench_run_t *run))
{
    run->ramping = 1;
    run->ramp_next = run->ramp_in_flight = run->ramp_ready = 0;
    run->ramp_target = count < run->client_count ? count : run->client_count;
    run->ramp_auth = auth;
    run->ramp_done = done;
    run->ramp_started_at = uv_hrtime();
    ramp_pump(run);
}

void bench_run_client_ready(bench_run_t *run, bench_client_t *client)
{
    if (!run->ramping)
        return;
    run->ramp_in_flight--;
    run->ramp_ready++;
    if (run->ramp_ready < run->ramp_target) {
        ramp_pump(run);
        return;
    }
    run->ramping = 0;
    run->ramp_finished_at = uv_hrtime();
    run->ramp_done(run);
}

void bench_run_client_failed(bench_run_t *run, bench_client_t *client, const char *reason,
                             int was_ready)
{
    run->failures++;
    if (run->first_failure == NULL)
        run->first_failure = reason;
    if (run->ramping && !was_ready && !run->stopping)
        bench_run_fail(run, "client %zu could not connect: %s%s%s (%zu of %zu connected)",
                       client->index, reason, run->first_connect_error[0] != '\0' ? " " : "",
                       run->first_connect_error, run->ramp_ready, run->ramp_target);
}

/* ---- addresses, buffers ---------------------------------------------------------------------- */

void bench_run_source_address(const bench_run_t *run, size_t index, struct sockaddr_in *address)
{
    size_t sources = run->options->sources > 0 ? (size_t)run->options->sources : 1;
    memset(address, 0, sizeof(*address));
    address->sin_family = AF_INET;
    address->sin_port = 0;
    size_t number = (size_t)run->options->first_index + index;
    address->sin_addr.s_addr = htonl((127u << 24) | (uint32_t)(1 + number % sources));
}

uint8_t *bench_run_read_buffer(bench_run_t *run, size_t *size)
{
    *size = BENCH_READ_BUFFER_SIZE;
    return run->read_buffer;
}

/* ---- usage ---------------------------------------------------------------------------------- */

long bench_proc_rss_kib(long pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    FILE *file = fopen(path, "r");
    if (file == NULL)
        return -1;
    char line[256];
    long rss = -1;
    while (fgets(line, sizeof(line), file) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &rss) == 1)
            break;
    fclose(file);
    return rss;
}

/* utime + stime of pid in seconds (fields 14 and 15 of /proc/<pid>/stat), -1 if unknown. */
static double proc_cpu_seconds(long pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *file = fopen(path, "r");
    if (file == NULL)
        return -1;
    char line[1024];
    size_t length = fread(line, 1, sizeof(line) - 1, file);
    fclose(file);
    line[length] = '\0';
    const char *after_name = strrchr(line, ')'); /* the command name may hold spaces */
    unsigned long long user_ticks, system_ticks;
    if (after_name == NULL ||
        sscanf(after_name + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &user_ticks,
               &system_ticks) != 2)
        return -1;
    return (double)(user_ticks + system_ticks) / (double)sysconf(_SC_CLK_TCK);
}

/* Busy and stolen time of the whole machine from the first line of /proc/stat, so that a
 * run can tell how much of the CPU other processes took while it measured. */
static void machine_cpu_seconds(double *busy, double *steal)
{
    *busy = *steal = -1;
    FILE *file = fopen("/proc/stat", "r");
    if (file == NULL)
        return;
    unsigned long long user, nice, system, idle, iowait, irq, softirq, stolen;
    int fields = fscanf(file, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &system,
                        &idle, &iowait, &irq, &softirq, &stolen);
    fclose(file);
    if (fields != 8)
        return;
    double ticks = (double)sysconf(_SC_CLK_TCK);
    *busy = (double)(user + nice + system + irq + softirq) / ticks;
    *steal = (double)stolen / ticks;
}

void bench_usage_now(const bench_run_t *run, bench_usage_t *usage)
{
    machine_cpu_seconds(&usage->machine_busy_seconds, &usage->machine_steal_seconds);
    struct rusage self;
    getrusage(RUSAGE_SELF, &self);
    usage->wall_ns = uv_hrtime();
    usage->cpu_seconds = (double)self.ru_utime.tv_sec + (double)self.ru_utime.tv_usec / 1e6 +
                         (double)self.ru_stime.tv_sec + (double)self.ru_stime.tv_usec / 1e6;
    usage->server_cpu_seconds =
        run->options->server_pid > 0 ? proc_cpu_seconds(run->options->server_pid) : -1;
}

static void sample_memory(bench_run_t *run)
{
    long rss = bench_proc_rss_kib(run->options->server_pid);
    if (rss < 0)
        return;
    run->rss_end_kib = rss;
    if (rss > run->rss_peak_kib)
        run->rss_peak_kib = rss;
}

static void on_memory_sample(uv_timer_t *timer)
{
    sample_memory(timer->data);
}

void bench_run_window_begin(bench_run_t *run)
{
    bench_usage_now(run, &run->window_start);
    run->window_end = run->window_start;
    run->measuring = 1;
    /* Opt-in: three clock reads per iteration would be the generator's own load in echo. */
    const char *loop_profile = getenv("SIOC_BENCH_LOOP_PROFILE");
    if (run->loop_profile == NULL && loop_profile != NULL && strcmp(loop_profile, "1") == 0)
        run->loop_profile = loop_profile_start(&run->loop, 0);
    if (run->options->server_pid <= 0 || run->stopping)
        return;
    sample_memory(run);
    run->rss_window_start_kib = run->rss_end_kib;
    uv_timer_start(&run->memory_timer, on_memory_sample, MEMORY_SAMPLE_MS, MEMORY_SAMPLE_MS);
}

void bench_run_window_end(bench_run_t *run)
{
    if (!run->measuring)
        return;
    bench_usage_now(run, &run->window_end);
    run->measuring = 0;
    if (run->loop_profile != NULL) {
        loop_profile_take(run->loop_profile, &run->loop_held, &run->loop_ran);
        loop_profile_stop(run->loop_profile);
        run->loop_profile = NULL;
    }
    if (run->options->server_pid <= 0)
        return;
    sample_memory(run);
    if (!uv_is_closing((uv_handle_t *)&run->memory_timer))
        uv_timer_stop(&run->memory_timer);
}

double bench_run_window_seconds(const bench_run_t *run)
{
    return (double)(run->window_end.wall_ns - run->window_start.wall_ns) / 1e9;
}

/* ---- results ----------------------------------------------------------------------------------
 */

static json_t *microseconds(uint64_t nanoseconds)
{
    return json_real(round((double)nanoseconds / 10.0) / 100.0);
}

double bench_json_latency(json_t *object, const char *key, const bench_histogram_t *histogram)
{
    json_t *latency = json_object();
    json_object_set_new(latency, "count", json_integer((json_int_t)histogram->total));
    json_object_set_new(latency, "min_us", microseconds(histogram->total > 0 ? histogram->min : 0));
    json_object_set_new(latency, "p50_us", microseconds(bench_histogram_percentile(histogram, 50)));
    json_object_set_new(latency, "p90_us", microseconds(bench_histogram_percentile(histogram, 90)));
    json_object_set_new(latency, "p99_us", microseconds(bench_histogram_percentile(histogram, 99)));
    json_object_set_new(latency, "p99_9_us",
                        microseconds(bench_histogram_percentile(histogram, 99.9)));
    json_object_set_new(latency, "max_us", microseconds(histogram->max));
    json_object_set_new(object, key, latency);
    return (double)bench_histogram_percentile(histogram, 99) / 1000.0;
}

/* ---- pacing --------------------------------------------------------------------------------- */

static void on_pacer_ready(uv_poll_t *poll, int status, int events)
{
    bench_pacer_t *pacer = poll->data;
    uint64_t expirations;
    if (read(pacer->fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
        return;
    if (pacer->active)
        pacer->tick(pacer, uv_hrtime());
}

int bench_pacer_start(bench_pacer_t *pacer, uv_loop_t *loop, uint64_t period_ns,
                      void (*tick)(bench_pacer_t *pacer, uint64_t now), void *data)
{
    pacer->fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (pacer->fd < 0)
        return -errno;
    struct itimerspec spec = {
        .it_interval = {(time_t)(period_ns / 1000000000u), (long)(period_ns % 1000000000u)},
        .it_value = {(time_t)(period_ns / 1000000000u), (long)(period_ns % 1000000000u)},
    };
    int rc = timerfd_settime(pacer->fd, 0, &spec, NULL) == 0 ? 0 : -errno;
    if (rc == 0)
        rc = uv_poll_init(loop, &pacer->poll, pacer->fd);
    if (rc != 0) {
        close(pacer->fd);
        pacer->fd = -1;
        return rc;
    }
    pacer->poll.data = pacer;
    pacer->tick = tick;
    pacer->data = data;
    pacer->active = 1;
    return uv_poll_start(&pacer->poll, UV_READABLE, on_pacer_ready);
}

static void on_pacer_closed(uv_handle_t *handle)
{
    bench_pacer_t *pacer = handle->data;
    close(pacer->fd);
    pacer->fd = -1;
}

void bench_pacer_stop(bench_pacer_t *pacer)
{
    if (!pacer->active)
        return;
    pacer->active = 0;
    uv_close((uv_handle_t *)&pacer->poll, on_pacer_closed);
}
