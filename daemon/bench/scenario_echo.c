/* echo: C clients emit an event with an acknowledgement and the server acknowledges with the
 * same arguments. Closed loop (--rate 0): each client emits again as soon as its ack arrives,
 * which gives the server's maximum round trips per second. Paced (--rate R): R emits per
 * second in all, each from a client with no ack pending; latency then counts from the moment
 * the emit was due, not when it went out, so a backlog in the generator or the server shows in
 * the percentiles instead of hiding (coordinated omission). */
#include <stdlib.h>
#include <string.h>

#include "bench/run.h"
#include "bench/scenario.h"

#define PACER_PERIOD_NS 100000u
#define DRAIN_MS 2000

typedef struct echo_state_s {
    bench_histogram_t latency;
    uint64_t round_trips; /* acks received in the window */
    uint64_t emitted;
    uint64_t late; /* paced emits that found no idle client when due */
    char *args;
    char *auth;
    int sending;
    bench_pacer_t pacer;
    uint64_t paced_from;
    uint64_t issued;
    size_t *idle;
    size_t idle_count;
} echo_state_t;

static echo_state_t *state_of(bench_run_t *run)
{
    return run->state;
}

static void emit(bench_client_t *client, uint64_t due)
{
    echo_state_t *state = state_of(client->run);
    client->sent_at = due;
    if (bench_client_emit(client, client->run->options->event, state->args, 1,
                          &client->waiting_ack) != 0) {
        bench_run_fail(client->run, "client %zu cannot emit", client->index);
        return;
    }
    state->emitted++;
}

/* Paced mode: every emit that is due goes out from an idle client. */
static void pace(bench_run_t *run, uint64_t now)
{
    echo_state_t *state = state_of(run);
    double elapsed = (double)(now - state->paced_from) / 1e9;
    uint64_t due_count = (uint64_t)(elapsed * run->options->rate);
    while (state->sending && state->issued < due_count && state->idle_count > 0) {
        size_t index = state->idle[--state->idle_count];
        uint64_t due =
            state->paced_from + (uint64_t)((double)state->issued * 1e9 / run->options->rate);
        state->issued++;
        emit(&run->clients[index], due);
    }
    if (state->issued < due_count && state->idle_count == 0)
        state->late++;
}

static void on_tick(bench_pacer_t *pacer, uint64_t now)
{
    pace(pacer->data, now);
}

static void on_ack(bench_client_t *client, const bench_packet_t *packet)
{
    bench_run_t *run = client->run;
    echo_state_t *state = state_of(run);
    if (packet->ack_id != client->waiting_ack)
        return;
    uint64_t now = run->read_at;
    client->waiting_ack = -1;
    if (run->measuring) {
        state->round_trips++;
        bench_histogram_record(&state->latency, now - client->sent_at);
    }
    if (!state->sending)
        return;
    if (run->options->rate <= 0) {
        emit(client, now);
        return;
    }
    state->idle[state->idle_count++] = client->index;
    pace(run, now);
}

static void on_failure(bench_client_t *client, const char *reason)
{
    if (!client->run->stopping)
        bench_run_fail(client->run, "client %zu lost: %s", client->index, reason);
}

static const bench_client_callbacks_t callbacks = {
    .on_ack = on_ack,
    .on_failure = on_failure,
};

static void on_drained(uv_timer_t *timer)
{
    bench_run_finish(timer->data, NULL);
}

static void on_window_over(bench_run_t *run)
{
    state_of(run)->sending = 0;
    bench_pacer_stop(&state_of(run)->pacer);
    uv_timer_start(&run->phase, on_drained, DRAIN_MS, 0);
}

static void on_connected(bench_run_t *run)
{
    echo_state_t *state = state_of(run);
    state->sending = 1;
    for (size_t i = 0; i < run->client_count; i++)
        run->clients[i].waiting_ack = -1;
    if (run->options->rate <= 0) {
        for (size_t i = 0; i < run->client_count; i++)
            emit(&run->clients[i], uv_hrtime());
    } else {
        for (size_t i = run->client_count; i > 0; i--)
            state->idle[state->idle_count++] = i - 1;
        state->paced_from = uv_hrtime();
        if (bench_pacer_start(&state->pacer, &run->loop, PACER_PERIOD_NS, on_tick, run) != 0) {
            bench_run_fail(run, "cannot start the pacer");
            return;
        }
    }
    bench_measure(run, on_window_over);
}

static const char *auth_of(bench_run_t *run, size_t index)
{
    return state_of(run)->auth;
}

static size_t client_count(const bench_options_t *options)
{
    return (size_t)options->clients;
}

static int check(const bench_options_t *options, char *error, size_t size)
{
    return bench_check_range(options->clients, 1, BENCH_MAX_CONNECTIONS, "--clients", error,
                             size) ||
           bench_check_range(options->size, 0, 1000000, "--size", error, size);
}

static int start(bench_run_t *run)
{
    echo_state_t *state = calloc(1, sizeof(*state));
    run->state = state;
    if (state == NULL)
        return -1;
    bench_histogram_init(&state->latency);
    state->args = bench_padding_string((size_t)run->options->size);
    state->auth = bench_auth_json(run->options->token);
    state->idle = calloc(run->client_count, sizeof(*state->idle));
    if (state->args == NULL || state->idle == NULL)
        return -1;
    bench_run_connect_all(run, run->client_count, auth_of, on_connected);
    return 0;
}

static void stop(bench_run_t *run)
{
    echo_state_t *state = state_of(run);
    if (state != NULL) {
        state->sending = 0;
        bench_pacer_stop(&state->pacer);
    }
}

static void report(bench_run_t *run)
{
    echo_state_t *state = state_of(run);
    if (state == NULL)
        return;
    double seconds = bench_run_window_seconds(run);
    double rate = seconds > 0 ? (double)state->round_trips / seconds : 0;
    json_object_set_new(run->results, "clients", json_integer((json_int_t)run->client_count));
    json_object_set_new(run->results, "target_rate", json_real(run->options->rate));
    json_object_set_new(run->results, "round_trips", json_integer((json_int_t)state->round_trips));
    json_object_set_new(run->results, "round_trips_per_second", json_real(rate));
    json_object_set_new(run->results, "late_ticks", json_integer((json_int_t)state->late));
    bench_json_latency(run->results, "latency", &state->latency);
    snprintf(run->summary, sizeof(run->summary),
             "%ld clients%s: %.0f round trips/s, latency p50 %.3f p90 %.3f p99 %.3f p99.9 %.3f ms",
             (long)run->client_count, run->options->rate > 0 ? " (paced)" : "", rate,
             bench_histogram_percentile(&state->latency, 50) / 1e6,
             bench_histogram_percentile(&state->latency, 90) / 1e6,
             bench_histogram_percentile(&state->latency, 99) / 1e6,
             bench_histogram_percentile(&state->latency, 99.9) / 1e6);
}

static void release(bench_run_t *run)
{
    echo_state_t *state = state_of(run);
    if (state == NULL)
        return;
    free(state->args);
    free(state->auth);
    free(state->idle);
    free(state);
    run->state = NULL;
}

const bench_scenario_t bench_scenario_echo = {
    .name = "echo",
    .client_count = client_count,
    .check = check,
    .start = start,
    .stop = stop,
    .report = report,
    .release = release,
    .callbacks = &callbacks,
};
