/* connect: new Socket.IO connections per second. --clients K slots each run, over and over:
 * TCP connect, the WebSocket upgrade (or the long-polling handshake), the Engine.IO open
 * packet, the namespace CONNECT with {"token": --token} (the server checks the JWT) and its
 * answer; then the connection is closed (a polling session is first left with the Engine.IO
 * close packet) and the slot starts again. A connection counts once the CONNECT is answered;
 * its latency runs from the TCP connect to that answer. Failures are counted, not fatal. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench/run.h"
#include "bench/scenario.h"

/* A server that refuses everything would make the slots spin: stop after this many failures
 * without a single success. */
#define MAX_FAILURES_WITHOUT_SUCCESS 1000

typedef struct connect_state_s {
    bench_histogram_t latency;
    uint64_t connected;
    uint64_t connected_in_window;
    uint64_t failed;
    uint64_t failed_in_window;
    char *auth;
    int running;
} connect_state_t;

static connect_state_t *state_of(bench_run_t *run)
{
    return run->state;
}

static void connect_slot(bench_client_t *client)
{
    bench_run_t *run = client->run;
    connect_state_t *state = state_of(run);
    if (!state->running || run->stopping)
        return;
    int rc = bench_client_connect(client, state->auth, run->options->polling);
    if (rc != 0)
        bench_run_fail(run, "cannot create a socket: %s", uv_strerror(rc));
}

static void on_ready(bench_client_t *client)
{
    bench_run_t *run = client->run;
    connect_state_t *state = state_of(run);
    state->connected++;
    if (run->measuring) {
        state->connected_in_window++;
        bench_histogram_record(&state->latency, uv_hrtime() - client->started_at);
    }
    if (!client->polling || bench_client_poll_leave(client) != 0)
        bench_client_close(client);
}

static void on_failure(bench_client_t *client, const char *reason)
{
    bench_run_t *run = client->run;
    connect_state_t *state = state_of(run);
    state->failed++;
    if (run->measuring)
        state->failed_in_window++;
    if (state->connected == 0 && state->failed >= MAX_FAILURES_WITHOUT_SUCCESS)
        bench_run_fail(run, "%" PRIu64 " failed connections and none succeeded: %s", state->failed,
                       reason);
}

static void on_closed(bench_client_t *client)
{
    connect_slot(client);
}

static const bench_client_callbacks_t callbacks = {
    .on_ready = on_ready,
    .on_failure = on_failure,
    .on_closed = on_closed,
};

static void on_window_over(bench_run_t *run)
{
    state_of(run)->running = 0;
    bench_run_finish(run, NULL);
}

static size_t client_count(const bench_options_t *options)
{
    return (size_t)options->clients;
}

static int check(const bench_options_t *options, char *error, size_t size)
{
    return bench_check_range(options->clients, 1, 4096, "--clients (attempts in flight)", error,
                             size);
}

static int start(bench_run_t *run)
{
    connect_state_t *state = calloc(1, sizeof(*state));
    run->state = state;
    if (state == NULL)
        return -1;
    bench_histogram_init(&state->latency);
    state->auth = bench_auth_json(run->options->token);
    state->running = 1;
    for (size_t i = 0; i < run->client_count && !run->stopping; i++)
        connect_slot(&run->clients[i]);
    bench_measure(run, on_window_over);
    return 0;
}

static void stop(bench_run_t *run)
{
    if (state_of(run) != NULL)
        state_of(run)->running = 0;
}

static void report(bench_run_t *run)
{
    connect_state_t *state = state_of(run);
    if (state == NULL)
        return;
    double seconds = bench_run_window_seconds(run);
    double rate = seconds > 0 ? (double)state->connected_in_window / seconds : 0;
    json_t *results = run->results;
    json_object_set_new(results, "transport",
                        json_string(run->options->polling ? "polling" : "websocket"));
    json_object_set_new(results, "in_flight", json_integer(run->options->clients));
    json_object_set_new(results, "with_token", json_boolean(run->options->token != NULL));
    json_object_set_new(results, "connections",
                        json_integer((json_int_t)state->connected_in_window));
    json_object_set_new(results, "connections_per_second", json_real(rate));
    json_object_set_new(results, "failures", json_integer((json_int_t)state->failed_in_window));
    if (run->first_failure != NULL)
        json_object_set_new(results, "first_failure", json_string(run->first_failure));
    bench_json_latency(results, "latency", &state->latency);
    snprintf(run->summary, sizeof(run->summary),
             "%s%s, %ld in flight: %.0f connections/s, latency p50 %.3f p99 %.3f ms, %" PRIu64
             " failed",
             run->options->polling ? "polling" : "websocket",
             run->options->token != NULL ? " + JWT" : "", run->options->clients, rate,
             bench_histogram_percentile(&state->latency, 50) / 1e6,
             bench_histogram_percentile(&state->latency, 99) / 1e6, state->failed_in_window);
}

static void release(bench_run_t *run)
{
    connect_state_t *state = state_of(run);
    if (state == NULL)
        return;
    free(state->auth);
    free(state);
    run->state = NULL;
}

const bench_scenario_t bench_scenario_connect = {
    .name = "connect",
    .client_count = client_count,
    .callbacks = &callbacks,
    .check = check,
    .start = start,
    .stop = stop,
    .report = report,
    .release = release,
};
