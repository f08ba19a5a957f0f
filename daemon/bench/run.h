/* One run of `sioc bench`: the options, the loop, the clients, the measured window, and what
 * is shared between scenarios (connecting many clients, pacing, reading the server's CPU and
 * memory from /proc, the generator's own CPU from getrusage, the result). */
#ifndef SIOC_BENCH_RUN_H
#define SIOC_BENCH_RUN_H

#include <jansson.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <uv.h>

#include "loop_profile.h"

#include "bench/client.h"
#include "bench/histogram.h"

/* One generator process keeps under the machine's 20,000 open files. */
#define BENCH_MAX_CONNECTIONS 19000
#define BENCH_READ_BUFFER_SIZE (256 * 1024)

typedef struct bench_options_s {
    const char *scenario;
    const char *host; /* an IPv4 address in 127.0.0.0/8 */
    int port;
    int second_port;        /* fanout / cluster: odd member slots connect here (0: none) */
    const char *path;       /* "/socket.io/" */
    const char *nsp;        /* "/" */
    const char *label;      /* the server's name in the output ("sioc", "node") */
    int sources;            /* source addresses 127.0.0.1 .. 127.0.0.<sources> */
    double duration;        /* measured seconds */
    double warmup;          /* seconds before the measured window */
    double timeout;         /* seconds allowed for connecting every client and setting up */
    const char *json_file;  /* NULL: no JSON */
    long server_pid;        /* 0: unknown */
    const char *token;      /* JWT sent as auth.token (every client) */
    const char *jwt_secret; /* chat: mint one HS256 token per user */
    long clients;           /* idle, echo: clients; connect: attempts in flight */
    long concurrency;       /* connection attempts in flight while connecting clients */
    double rate;            /* echo: emits/s (0: closed loop); fanout, chat: messages/s */
    long size;              /* bytes: echo payload, fanout message */
    long rooms;
    long members;              /* fanout: members per room */
    long users;                /* chat */
    long window;               /* fanout: messages not yet delivered to every member */
    int polling;               /* connect, idle: over HTTP long-polling */
    int hold;                  /* idle: hold the clients until a signal (or --duration) */
    long first_index;          /* idle: this generator's first client number (several combined) */
    const char *event;         /* echo: the event acknowledged by the server */
    const char *join_event;    /* fanout: the event that joins a room */
    const char *publish_event; /* fanout: [room, event, payload] broadcast to room */
} bench_options_t;

typedef struct bench_usage_s {
    uint64_t wall_ns;
    double cpu_seconds;           /* the generator's user + system time */
    double server_cpu_seconds;    /* -1 when unknown */
    double machine_busy_seconds;  /* every core, every process (/proc/stat), -1 when unknown */
    double machine_steal_seconds; /* taken by the hypervisor */
} bench_usage_t;

typedef struct bench_scenario_s bench_scenario_t;

typedef struct bench_run_s {
    uv_loop_t loop;
    const bench_options_t *options;
    const bench_scenario_t *scenario;
    struct sockaddr_in server;
    struct sockaddr_in second_server; /* options->second_port */
    char host_header[64];
    uint8_t *read_buffer;
    uint64_t read_at; /* uv_hrtime() of the read being handled: the time of its deliveries */
    bench_client_t *clients;
    size_t client_count;
    /* Connecting every client: next slot, attempts in flight, outcomes. */
    size_t ramp_next;
    size_t ramp_in_flight;
    size_t ramp_ready;
    size_t ramp_target;
    int ramping;
    const char *(*ramp_auth)(struct bench_run_s *run, size_t index);
    void (*ramp_done)(struct bench_run_s *run);
    uint64_t ramp_started_at;
    uint64_t ramp_finished_at;
    /* The measured window. */
    bench_usage_t window_start;
    bench_usage_t window_end;
    int measuring;
    /* The generator's own loop in the window (loop_profile.h): how long a read waited behind
     * its callbacks, which a latency measured here includes. */
    loop_profile_t *loop_profile;
    store_histogram_t loop_held;
    store_histogram_t loop_ran;
    void (*window_over)(struct bench_run_s *run); /* bench_measure()'s (scenario.h) */
    uv_signal_t sigint;
    uv_signal_t sigterm;
    uv_timer_t deadline; /* the whole run's bound */
    uv_timer_t phase;    /* the scenario's own timer */
    /* The server's VmRSS (KiB, -1 unknown): before the first connection, and sampled through
     * the measured window (its peak and its last value). */
    uv_timer_t memory_timer;
    long rss_before_kib;
    long rss_window_start_kib;
    long rss_peak_kib;
    long rss_end_kib;
    int holding; /* idle --hold: a signal now ends the run as a success */
    int stopping;
    int interrupted;
    char error[256]; /* first error; non-empty means the run failed */
    const char *first_failure;
    char first_connect_error[160]; /* the payload of the first CONNECT_ERROR */
    uint64_t failures;
    json_t *results; /* the scenario's figures */
    char summary[512];
    void *state; /* the scenario's */
} bench_run_t;

struct bench_scenario_s {
    const char *name;
    /* The client slots the run needs. */
    size_t (*client_count)(const bench_options_t *options);
    const bench_client_callbacks_t *callbacks;
    /* Validates the options (error filled, -1) before anything starts. */
    int (*check)(const bench_options_t *options, char *error, size_t size);
    /* Starts the scenario on run->loop; it calls bench_run_finish() when done. */
    int (*start)(bench_run_t *run);
    /* Stops the scenario's own handles (the run is ending: finished, interrupted or out of
     * time). Called once. May be NULL. */
    void (*stop)(bench_run_t *run);
    /* Fills run->results and run->summary; called once, whatever the outcome. */
    void (*report)(bench_run_t *run);
    /* Releases run->state (clients are closed by then). May be NULL. */
    void (*release)(bench_run_t *run);
};

extern const bench_scenario_t bench_scenario_idle;
extern const bench_scenario_t bench_scenario_echo;
extern const bench_scenario_t bench_scenario_fanout;
extern const bench_scenario_t bench_scenario_cluster; /* fanout over two nodes */
extern const bench_scenario_t bench_scenario_connect;
extern const bench_scenario_t bench_scenario_chat;

/* Sets up run (loop, clients array of count slots, signals, deadline); 0 or -1 with
 * run->error. */
int bench_run_init(bench_run_t *run, const bench_options_t *options,
                   const bench_scenario_t *scenario, size_t count,
                   const bench_client_callbacks_t *callbacks);
/* Runs the loop until the scenario finished and every handle closed; then reports. */
int bench_run_execute(bench_run_t *run);
void bench_run_free(bench_run_t *run);

/* Ends the scenario (reason NULL for success, else the error); closes every client. */
void bench_run_finish(bench_run_t *run, const char *reason);
void bench_run_fail(bench_run_t *run, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/* Connects clients [0, count) with at most options->concurrency attempts in flight; done runs
 * once all are ready (a failure ends the run). auth gives each client's CONNECT payload. */
void bench_run_connect_all(bench_run_t *run, size_t count,
                           const char *(*auth)(bench_run_t *run, size_t index),
                           void (*done)(bench_run_t *run));
/* Hooks the clients call (client.c): the ramp counts outcomes. */
void bench_run_client_ready(bench_run_t *run, bench_client_t *client);
void bench_run_client_failed(bench_run_t *run, bench_client_t *client, const char *reason,
                             int was_ready);

/* The measured window: usage snapshots. */
void bench_run_window_begin(bench_run_t *run);
void bench_run_window_end(bench_run_t *run);
double bench_run_window_seconds(const bench_run_t *run);

/* The source address of slot index (127.0.0.1 + (first_index + index) % sources). */
void bench_run_source_address(const bench_run_t *run, size_t index, struct sockaddr_in *address);

/* The shared read buffer (one per loop: reads are handled before the next one). */
uint8_t *bench_run_read_buffer(bench_run_t *run, size_t *size);

/* Usage now (server figures need options->server_pid). */
void bench_usage_now(const bench_run_t *run, bench_usage_t *usage);
/* VmRSS of pid in KiB, -1 when unreadable. */
long bench_proc_rss_kib(long pid);

/* Adds {count, min, p50, p90, p99, p99_9, max} in microseconds to object under key, and
 * returns p99 in microseconds. */
double bench_json_latency(json_t *object, const char *key, const bench_histogram_t *histogram);

/* A periodic tick (timerfd under a uv_poll_t) finer than libuv's millisecond timers, so that a
 * rate is paced in 100 µs steps instead of 1 ms bursts. */
typedef struct bench_pacer_s {
    uv_poll_t poll;
    int fd;
    void (*tick)(struct bench_pacer_s *pacer, uint64_t now);
    void *data;
    int active;
} bench_pacer_t;
int bench_pacer_start(bench_pacer_t *pacer, uv_loop_t *loop, uint64_t period_ns,
                      void (*tick)(bench_pacer_t *pacer, uint64_t now), void *data);
void bench_pacer_stop(bench_pacer_t *pacer);

#endif
