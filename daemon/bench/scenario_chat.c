/* chat: the StudyConnect channel (seeds 002 and 003) under load. --users U connect with their
 * own JWT (minted with --jwt-secret as `sioc token` does, subject "bench-user-<i>", or one
 * --token for all), user i joins room "bench-<i mod R>" (room:join with the raw roomId, as the
 * seeds' client sends it, with an ack), and once the presence and join notices have settled,
 * messages go out at --rate per second in all, each from the next user in turn:
 * message:send {roomId, text} with an ack. The text carries the message's number and the time
 * it was sent, so every message:received (the whole room, the sender included) gives the
 * latency from message:send to that delivery. Reported: those latencies, deliveries missing at
 * the end (after a drain of up to 5 s), and the messages acknowledged with {ok:true} — to be
 * compared with the messages the server stored (bench/run.sh counts them in its database). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/run.h"
#include "bench/scenario.h"

#define RING_SIZE 65536u
#define PACER_PERIOD_NS 100000u
#define DRAIN_MS 5000
#define CHECK_MS 50
/* The join and presence notices have settled once no event came for this long. */
#define QUIET_MS 1000
#define TOKEN_TTL_SECONDS 86400

typedef struct chat_ring_entry_s {
    uint64_t sequence;
    uint32_t remaining;
} chat_ring_entry_t;

typedef enum chat_phase {
    PHASE_CONNECTING,
    PHASE_JOINING,
    PHASE_SETTLING,
    PHASE_SENDING,
    PHASE_DRAINING
} chat_phase_t;

typedef struct chat_state_s {
    bench_histogram_t latency;
    chat_ring_entry_t *ring;
    char **auth;          /* per user, or one shared entry */
    size_t *room_members; /* per room */
    chat_phase_t phase;
    size_t joined;
    uint64_t last_event_at;
    uint64_t waited_ms;
    uint64_t sent;
    uint64_t sent_in_window;
    uint64_t acknowledged;
    uint64_t ack_errors;
    char first_ack_error[160];
    uint64_t deliveries;
    uint64_t deliveries_in_window;
    uint64_t expected;
    uint64_t stray;
    uint64_t other_events;
    bench_pacer_t pacer;
    uint64_t paced_from;
    char *padding;
} chat_state_t;

static chat_state_t *state_of(bench_run_t *run)
{
    return run->state;
}

static size_t room_of(const bench_run_t *run, size_t user)
{
    return user % (size_t)run->options->rooms;
}

/* ---- sending ----------------------------------------------------------------------------------
 */

static void send_one(bench_run_t *run, uint64_t now)
{
    chat_state_t *state = state_of(run);
    uint64_t sequence = state->sent;
    size_t user = (size_t)(sequence % run->client_count);
    size_t room = room_of(run, user);
    char text[256];
    int length = snprintf(text, sizeof(text), "bench %" PRIu64 " %" PRIu64 " ", sequence, now);
    size_t padding = (size_t)run->options->size > (size_t)length
                         ? (size_t)run->options->size - (size_t)length
                         : 0;
    if (padding > sizeof(text) - (size_t)length - 1)
        padding = sizeof(text) - (size_t)length - 1;
    char args[512];
    snprintf(args, sizeof(args), "{\"roomId\":\"bench-%zu\",\"text\":\"%s%.*s\"}", room, text,
             (int)padding, state->padding);
    if (bench_client_emit(&run->clients[user], "message:send", args, 1, NULL) != 0) {
        bench_run_fail(run, "user %zu cannot send", user);
        return;
    }
    chat_ring_entry_t *entry = &state->ring[sequence % RING_SIZE];
    entry->sequence = sequence;
    entry->remaining = (uint32_t)state->room_members[room];
    state->expected += state->room_members[room];
    state->sent++;
    if (run->measuring)
        state->sent_in_window++;
}

static void on_tick(bench_pacer_t *pacer, uint64_t now)
{
    bench_run_t *run = pacer->data;
    chat_state_t *state = state_of(run);
    uint64_t due = (uint64_t)((double)(now - state->paced_from) / 1e9 * run->options->rate);
    while (state->phase == PHASE_SENDING && !run->stopping && state->sent < due)
        send_one(run, now);
}

/* ---- receiving --------------------------------------------------------------------------------
 */

static void on_message_received(bench_run_t *run, const bench_packet_t *packet)
{
    chat_state_t *state = state_of(run);
    const char *text;
    size_t length;
    uint64_t sequence, sent_at;
    char copy[64];
    if (bench_json_string(packet->data, packet->data_length, "text", &text, &length) != 0)
        return;
    snprintf(copy, sizeof(copy), "%.*s",
             (int)(length < sizeof(copy) - 1 ? length : sizeof(copy) - 1), text);
    if (sscanf(copy, "bench %" SCNu64 " %" SCNu64, &sequence, &sent_at) != 2)
        return;
    chat_ring_entry_t *entry = &state->ring[sequence % RING_SIZE];
    if (entry->sequence != sequence || entry->remaining == 0) {
        state->stray++;
        return;
    }
    entry->remaining--;
    state->deliveries++;
    if (run->measuring) {
        state->deliveries_in_window++;
        bench_histogram_record(&state->latency, run->read_at - sent_at);
    }
}

static void on_event(bench_client_t *client, const bench_packet_t *packet)
{
    bench_run_t *run = client->run;
    chat_state_t *state = state_of(run);
    if (bench_event_is(packet, "message:received")) {
        on_message_received(run, packet);
        return;
    }
    state->other_events++; /* user:status, room:userJoined: only their timing matters */
    state->last_event_at = run->read_at;
}

static void ack_error(chat_state_t *state, const bench_packet_t *packet)
{
    state->ack_errors++;
    if (state->first_ack_error[0] == '\0')
        snprintf(state->first_ack_error, sizeof(state->first_ack_error), "%.*s",
                 (int)(packet->data_length < 150 ? packet->data_length : 150), packet->data);
}

/* {"ok":true,...} as the chat driver (and the Node server) acknowledge. */
static int ack_ok(const bench_packet_t *packet)
{
    static const char needle[] = "\"ok\":true";
    size_t length = sizeof(needle) - 1;
    for (size_t i = 0; i + length <= packet->data_length; i++)
        if (memcmp(packet->data + i, needle, length) == 0)
            return 1;
    return 0;
}

static void on_ack(bench_client_t *client, const bench_packet_t *packet)
{
    bench_run_t *run = client->run;
    chat_state_t *state = state_of(run);
    if (state->phase == PHASE_JOINING) {
        if (!ack_ok(packet)) {
            ack_error(state, packet);
            bench_run_fail(run, "room:join refused: %s", state->first_ack_error);
            return;
        }
        if (++state->joined == run->client_count) {
            state->phase = PHASE_SETTLING;
            state->last_event_at = uv_hrtime();
        }
        return;
    }
    if (ack_ok(packet))
        state->acknowledged++;
    else
        ack_error(state, packet);
}

static void on_failure(bench_client_t *client, const char *reason)
{
    if (!client->run->stopping)
        bench_run_fail(client->run, "user %zu lost: %s", client->index, reason);
}

static const bench_client_callbacks_t callbacks = {
    .on_event = on_event,
    .on_ack = on_ack,
    .on_failure = on_failure,
};

/* ---- phases ------------------------------------------------------------------------------------
 */

static uint64_t missing(const chat_state_t *state)
{
    return state->expected > state->deliveries ? state->expected - state->deliveries : 0;
}

static void on_drain_check(uv_timer_t *timer)
{
    bench_run_t *run = timer->data;
    chat_state_t *state = state_of(run);
    state->waited_ms += CHECK_MS;
    int acks_done = state->acknowledged + state->ack_errors >= state->sent;
    if ((missing(state) == 0 && acks_done) || state->waited_ms >= DRAIN_MS)
        bench_run_finish(run, NULL);
}

static void on_window_over(bench_run_t *run)
{
    chat_state_t *state = state_of(run);
    state->phase = PHASE_DRAINING;
    bench_pacer_stop(&state->pacer);
    state->waited_ms = 0;
    uv_timer_start(&run->phase, on_drain_check, CHECK_MS, CHECK_MS);
}

static void start_sending(bench_run_t *run)
{
    chat_state_t *state = state_of(run);
    state->phase = PHASE_SENDING;
    state->paced_from = uv_hrtime();
    if (bench_pacer_start(&state->pacer, &run->loop, PACER_PERIOD_NS, on_tick, run) != 0) {
        bench_run_fail(run, "cannot start the pacer");
        return;
    }
    bench_measure(run, on_window_over);
}

/* Joining, then settling: polled until every join is acknowledged and the notices stopped. */
static void on_setup_check(uv_timer_t *timer)
{
    bench_run_t *run = timer->data;
    chat_state_t *state = state_of(run);
    state->waited_ms += CHECK_MS;
    if (state->waited_ms > (uint64_t)(run->options->timeout * 1000.0)) {
        bench_run_fail(run, "joining rooms took over %.0f s (%zu of %zu joined)",
                       run->options->timeout, state->joined, run->client_count);
        return;
    }
    if (state->phase == PHASE_SETTLING &&
        uv_hrtime() - state->last_event_at >= (uint64_t)QUIET_MS * 1000000u) {
        uv_timer_stop(&run->phase);
        start_sending(run);
    }
}

static void on_connected(bench_run_t *run)
{
    chat_state_t *state = state_of(run);
    state->phase = PHASE_JOINING;
    for (size_t i = 0; i < run->client_count; i++) {
        char room[64];
        snprintf(room, sizeof(room), "\"bench-%zu\"", room_of(run, i));
        if (bench_client_emit(&run->clients[i], "room:join", room, 1, NULL) != 0) {
            bench_run_fail(run, "user %zu cannot join", i);
            return;
        }
    }
    state->waited_ms = 0;
    uv_timer_start(&run->phase, on_setup_check, CHECK_MS, CHECK_MS);
}

static const char *auth_of(bench_run_t *run, size_t index)
{
    return run->options->jwt_secret != NULL ? state_of(run)->auth[index] : state_of(run)->auth[0];
}

/* ---- the scenario ------------------------------------------------------------------------------
 */

static int mint_tokens(bench_run_t *run)
{
    chat_state_t *state = state_of(run);
    size_t count = run->options->jwt_secret != NULL ? run->client_count : 1;
    state->auth = calloc(count, sizeof(*state->auth));
    if (state->auth == NULL)
        return -1;
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < count; i++) {
        char subject[48];
        snprintf(subject, sizeof(subject), "bench-user-%zu", i);
        char *token =
            run->options->jwt_secret != NULL
                ? bench_token_hs256(run->options->jwt_secret, subject, now, TOKEN_TTL_SECONDS)
                : strdup(run->options->token);
        state->auth[i] = token != NULL ? bench_auth_json(token) : NULL;
        free(token);
        if (state->auth[i] == NULL)
            return -1;
    }
    return 0;
}

static size_t client_count(const bench_options_t *options)
{
    return (size_t)options->users;
}

static int check(const bench_options_t *options, char *error, size_t size)
{
    if (options->jwt_secret == NULL && options->token == NULL) {
        snprintf(error, size, "--jwt-secret or --token is required (the channel needs a user)");
        return -1;
    }
    return bench_check_range(options->users, 1, BENCH_MAX_CONNECTIONS, "--users", error, size) ||
           bench_check_range(options->rooms, 1, options->users, "--rooms", error, size) ||
           bench_check_range(options->size, 24, 200, "--size (text bytes)", error, size);
}

static int start(bench_run_t *run)
{
    chat_state_t *state = calloc(1, sizeof(*state));
    run->state = state;
    if (state == NULL)
        return -1;
    bench_histogram_init(&state->latency);
    state->ring = calloc(RING_SIZE, sizeof(*state->ring));
    state->room_members = calloc((size_t)run->options->rooms, sizeof(*state->room_members));
    state->padding = malloc(256);
    if (state->ring == NULL || state->room_members == NULL || state->padding == NULL ||
        mint_tokens(run) != 0)
        return -1;
    memset(state->padding, 'x', 256);
    for (size_t i = 0; i < RING_SIZE; i++)
        state->ring[i].sequence = UINT64_MAX;
    for (size_t i = 0; i < run->client_count; i++)
        state->room_members[room_of(run, i)]++;
    bench_run_connect_all(run, run->client_count, auth_of, on_connected);
    return 0;
}

static void stop(bench_run_t *run)
{
    chat_state_t *state = state_of(run);
    if (state != NULL)
        bench_pacer_stop(&state->pacer);
}

static void report(bench_run_t *run)
{
    chat_state_t *state = state_of(run);
    if (state == NULL)
        return;
    double seconds = bench_run_window_seconds(run);
    json_t *results = run->results;
    json_object_set_new(results, "users", json_integer(run->options->users));
    json_object_set_new(results, "rooms", json_integer(run->options->rooms));
    json_object_set_new(results, "target_rate", json_real(run->options->rate));
    json_object_set_new(results, "sent", json_integer((json_int_t)state->sent));
    json_object_set_new(results, "messages_per_second",
                        json_real(seconds > 0 ? (double)state->sent_in_window / seconds : 0));
    json_object_set_new(results, "acknowledged", json_integer((json_int_t)state->acknowledged));
    json_object_set_new(results, "ack_errors", json_integer((json_int_t)state->ack_errors));
    if (state->first_ack_error[0] != '\0')
        json_object_set_new(results, "first_ack_error", json_string(state->first_ack_error));
    json_object_set_new(results, "deliveries", json_integer((json_int_t)state->deliveries));
    json_object_set_new(results, "deliveries_per_second",
                        json_real(seconds > 0 ? (double)state->deliveries_in_window / seconds : 0));
    json_object_set_new(results, "lost", json_integer((json_int_t)missing(state)));
    json_object_set_new(results, "stray", json_integer((json_int_t)state->stray));
    json_object_set_new(results, "other_events", json_integer((json_int_t)state->other_events));
    json_object_set_new(results, "setup_seconds",
                        json_real((double)(state->paced_from - run->ramp_started_at) / 1e9));
    bench_json_latency(results, "latency", &state->latency);
    snprintf(run->summary, sizeof(run->summary),
             "%ld users in %ld rooms, %.0f messages/s: delivery p50 %.3f p99 %.3f p99.9 %.3f ms, "
             "%" PRIu64 " sent, %" PRIu64 " acknowledged, %" PRIu64 " ack errors, %" PRIu64
             " deliveries lost",
             run->options->users, run->options->rooms, run->options->rate,
             bench_histogram_percentile(&state->latency, 50) / 1e6,
             bench_histogram_percentile(&state->latency, 99) / 1e6,
             bench_histogram_percentile(&state->latency, 99.9) / 1e6, state->sent,
             state->acknowledged, state->ack_errors, missing(state));
}

static void release(bench_run_t *run)
{
    chat_state_t *state = state_of(run);
    if (state == NULL)
        return;
    size_t count = run->options->jwt_secret != NULL ? run->client_count : 1;
    for (size_t i = 0; state->auth != NULL && i < count; i++)
        free(state->auth[i]);
    free(state->auth);
    free(state->ring);
    free(state->room_members);
    free(state->padding);
    free(state);
    run->state = NULL;
}

const bench_scenario_t bench_scenario_chat = {
    .name = "chat",
    .client_count = client_count,
    .callbacks = &callbacks,
    .check = check,
    .start = start,
    .stop = stop,
    .report = report,
    .release = release,
};
