/* idle: N connected Socket.IO clients doing nothing but answer pings, and what they cost the
 * server: the growth of its resident memory (VmRSS of --server-pid, read before the first
 * connection and again after holding all of them for --duration seconds) divided by N. Kernel
 * socket buffers are not in RSS: this is the user-space memory per connection.
 *
 * Over polling, each client keeps a GET pending (and answers pings with a POST), as a browser
 * does. With --jwt-secret, client i connects with its own token (subject "idle-user-<i>"), so
 * that a channel keeps a user, its room and its presence per client.
 *
 * One process holds at most BENCH_MAX_CONNECTIONS; --hold and --first-index let several
 * generators hold their share side by side: each prints "holding N clients" once connected and
 * keeps them until SIGTERM, and the caller reads the server's RSS (bench/run.sh). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench/run.h"
#include "bench/scenario.h"

#define TOKEN_TTL_SECONDS (24 * 3600)

typedef struct idle_state_s {
    long rss_before_kib;
    long rss_connected_kib; /* right after the last client connected */
    long rss_after_kib;     /* after the hold */
    char **auth;            /* one CONNECT payload per client (--jwt-secret), else one for all */
    size_t auth_count;
} idle_state_t;

static idle_state_t *state_of(bench_run_t *run)
{
    return run->state;
}

static void on_ready(bench_client_t *client)
{
    if (client->polling && bench_client_poll_hold(client) != 0)
        bench_run_fail(client->run, "client %zu: cannot poll", client->index);
}

static void on_failure(bench_client_t *client, const char *reason)
{
    if (!client->run->stopping)
        bench_run_fail(client->run, "client %zu lost: %s", client->index, reason);
}

static const bench_client_callbacks_t callbacks = {
    .on_ready = on_ready,
    .on_failure = on_failure,
};

static void on_held(uv_timer_t *timer)
{
    bench_run_t *run = timer->data;
    if (run->options->server_pid > 0)
        state_of(run)->rss_after_kib = bench_proc_rss_kib(run->options->server_pid);
    bench_run_window_end(run);
    bench_run_finish(run, NULL);
}

static void on_connected(bench_run_t *run)
{
    if (run->options->server_pid > 0)
        state_of(run)->rss_connected_kib = bench_proc_rss_kib(run->options->server_pid);
    bench_run_window_begin(run);
    if (run->options->hold) {
        printf("idle %s: holding %zu clients\n", run->options->label, run->client_count);
        fflush(stdout);
        run->holding = 1;
    }
    uv_timer_start(&run->phase, on_held, bench_milliseconds(run->options->duration), 0);
}

static const char *auth_of(bench_run_t *run, size_t index)
{
    idle_state_t *state = state_of(run);
    return state->auth_count > 1 ? state->auth[index] : state->auth[0];
}

static size_t client_count(const bench_options_t *options)
{
    return (size_t)options->clients;
}

static int check(const bench_options_t *options, char *error, size_t size)
{
    if (options->server_pid <= 0 && !options->hold) {
        snprintf(error, size, "--server-pid is required (the server's memory is the figure)");
        return -1;
    }
    return bench_check_range(options->clients, 1, BENCH_MAX_CONNECTIONS, "--clients", error, size);
}

/* The CONNECT payloads: one per client with --jwt-secret, else the one of --token (or none). */
static int make_auth(bench_run_t *run, idle_state_t *state)
{
    const bench_options_t *options = run->options;
    state->auth_count = options->jwt_secret != NULL ? run->client_count : 1;
    state->auth = calloc(state->auth_count, sizeof(*state->auth));
    if (state->auth == NULL)
        return -1;
    if (options->jwt_secret == NULL) {
        state->auth[0] = bench_auth_json(options->token);
        return 0;
    }
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < state->auth_count; i++) {
        char subject[48];
        snprintf(subject, sizeof(subject), "idle-user-%" PRIu64,
                 (uint64_t)options->first_index + (uint64_t)i);
        char *token = bench_token_hs256(options->jwt_secret, subject, now, TOKEN_TTL_SECONDS);
        state->auth[i] = token != NULL ? bench_auth_json(token) : NULL;
        free(token);
        if (state->auth[i] == NULL)
            return -1;
    }
    return 0;
}

static int start(bench_run_t *run)
{
    idle_state_t *state = calloc(1, sizeof(*state));
    run->state = state;
    if (state == NULL)
        return -1;
    state->rss_before_kib = state->rss_connected_kib = state->rss_after_kib = -1;
    if (make_auth(run, state) != 0) {
        bench_run_fail(run, "cannot make the clients' tokens");
        return -1;
    }
    if (run->options->server_pid > 0) {
        state->rss_before_kib = bench_proc_rss_kib(run->options->server_pid);
        if (state->rss_before_kib < 0) {
            bench_run_fail(run, "cannot read /proc/%ld/status", run->options->server_pid);
            return -1;
        }
    }
    bench_run_connect_all(run, run->client_count, auth_of, on_connected);
    return 0;
}

static void report(bench_run_t *run)
{
    idle_state_t *state = state_of(run);
    if (state == NULL)
        return;
    double clients = (double)run->client_count;
    double per_connection =
        state->rss_after_kib >= 0 && state->rss_before_kib >= 0
            ? (double)(state->rss_after_kib - state->rss_before_kib) * 1024.0 / clients
            : -1;
    double ramp_seconds = (double)(run->ramp_finished_at - run->ramp_started_at) / 1e9;
    json_t *results = run->results;
    json_object_set_new(results, "clients", json_integer((json_int_t)run->client_count));
    json_object_set_new(results, "first_index",
                        json_integer((json_int_t)run->options->first_index));
    json_object_set_new(results, "transport",
                        json_string(run->options->polling ? "polling" : "websocket"));
    json_object_set_new(results, "rss_before_kib", json_integer(state->rss_before_kib));
    json_object_set_new(results, "rss_connected_kib", json_integer(state->rss_connected_kib));
    json_object_set_new(results, "rss_after_kib", json_integer(state->rss_after_kib));
    if (per_connection >= 0)
        json_object_set_new(results, "rss_per_connection_bytes", json_real(per_connection));
    json_object_set_new(results, "ramp_seconds",
                        json_real(run->ramp_finished_at ? ramp_seconds : 0));
    snprintf(run->summary, sizeof(run->summary),
             "%ld clients held %.0f s: server RSS %ld -> %ld KiB, %.0f bytes per connection",
             (long)run->client_count, bench_run_window_seconds(run), state->rss_before_kib,
             state->rss_after_kib, per_connection);
}

static void release(bench_run_t *run)
{
    idle_state_t *state = state_of(run);
    if (state == NULL)
        return;
    for (size_t i = 0; state->auth != NULL && i < state->auth_count; i++)
        free(state->auth[i]);
    free(state->auth);
    free(state);
    run->state = NULL;
}

const bench_scenario_t bench_scenario_idle = {
    .name = "idle",
    .client_count = client_count,
    .callbacks = &callbacks,
    .check = check,
    .start = start,
    .report = report,
    .release = release,
};
