/* fanout: R rooms of M members; one more client publishes messages of --size bytes (the
 * Engine.IO packet each member receives, "42[\"fanout\",{...}]") round-robin over the rooms at
 * --rate messages per second (0: as fast as the window allows), through the server's
 * --publish-event handler, which broadcasts [room, "fanout", payload] to the room. Each
 * payload carries its sequence number and the time it was published, so every delivery gives
 * an end-to-end latency; a message counts as delivered once every member of its room got it,
 * and at most --window messages may be short of that at a time, so a server slower than the
 * rate is measured at its own pace instead of buffering without bound. Lost messages are the
 * deliveries still missing when the run ends (after a drain of up to 5 s).
 *
 * cluster: the same over two nodes of a cluster (--port and --second-port): the odd members
 * connect to the second node, the publisher to the first, so half of the deliveries cross the
 * cluster's broker (Redis) and the latency shows what that hop adds. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/run.h"
#include "bench/scenario.h"

#define RING_SIZE 65536u
#define MAX_WINDOW 32768
#define PACER_PERIOD_NS 100000u
#define DRAIN_MS 5000
#define DRAIN_CHECK_MS 50

typedef struct ring_entry_s {
    uint64_t sequence;
    uint32_t remaining;
} ring_entry_t;

typedef struct fanout_state_s {
    bench_histogram_t latency;
    bench_histogram_t latency_first;  /* cluster: members on the publisher's node */
    bench_histogram_t latency_second; /* cluster: members on the other node (through Redis) */
    ring_entry_t *ring;
    size_t members;   /* rooms x members */
    size_t publisher; /* the publisher's slot */
    size_t joined;
    uint64_t published;
    uint64_t published_in_window;
    uint64_t deliveries;
    uint64_t deliveries_in_window;
    uint64_t stray; /* deliveries of a message the ring no longer tracks */
    uint64_t in_flight;
    uint64_t drain_waited_ms;
    int publishing;
    bench_pacer_t pacer;
    uint64_t paced_from;
    char *padding; /* 'x' * (size) to cut from */
    char *args;    /* one publish's arguments */
    size_t args_size;
} fanout_state_t;

static fanout_state_t *state_of(bench_run_t *run)
{
    return run->state;
}

/* ---- publishing ------------------------------------------------------------------------------ */

static size_t digits(uint64_t value)
{
    size_t count = 1;
    while (value >= 10) {
        value /= 10;
        count++;
    }
    return count;
}

/* The arguments of one publish: "room-R","fanout",{"s":S,"t":T,"p":"xx..."} with the padding
 * chosen so that the packet members receive is --size bytes. */
static int publish_args(bench_run_t *run, uint64_t sequence, uint64_t now, char *out, size_t size)
{
    const size_t fixed = strlen("42[\"fanout\",{\"s\":,\"t\":,\"p\":\"\"}]");
    size_t overhead = fixed + digits(sequence) + digits(now);
    size_t wanted = (size_t)run->options->size;
    size_t padding = wanted > overhead ? wanted - overhead : 0;
    int length = snprintf(out, size,
                          "\"room-%" PRIu64 "\",\"fanout\",{\"s\":%" PRIu64 ",\"t\":%" PRIu64
                          ",\"p\":\"%.*s\"}",
                          sequence % (uint64_t)run->options->rooms, sequence, now, (int)padding,
                          state_of(run)->padding);
    return length > 0 && (size_t)length < size ? 0 : -1;
}

static void publish_one(bench_run_t *run, uint64_t now)
{
    fanout_state_t *state = state_of(run);
    uint64_t sequence = state->published;
    if (publish_args(run, sequence, now, state->args, state->args_size) != 0 ||
        bench_client_emit(&run->clients[state->publisher], run->options->publish_event, state->args,
                          0, NULL) != 0) {
        bench_run_fail(run, "the publisher cannot emit");
        return;
    }
    ring_entry_t *entry = &state->ring[sequence % RING_SIZE];
    entry->sequence = sequence;
    entry->remaining = (uint32_t)run->options->members;
    state->published++;
    state->in_flight++;
    if (run->measuring)
        state->published_in_window++;
}

/* Publishes what the rate allows now, within the window. */
static void pump(bench_run_t *run, uint64_t now)
{
    fanout_state_t *state = state_of(run);
    uint64_t allowed = UINT64_MAX;
    if (run->options->rate > 0)
        allowed = (uint64_t)((double)(now - state->paced_from) / 1e9 * run->options->rate);
    while (state->publishing && !run->stopping &&
           state->in_flight < (uint64_t)run->options->window && state->published < allowed)
        publish_one(run, now);
}

static void on_tick(bench_pacer_t *pacer, uint64_t now)
{
    pump(pacer->data, now);
}

/* ---- receiving ------------------------------------------------------------------------------- */

static void delivered(bench_run_t *run, uint64_t sequence, uint64_t sent_at, uint64_t now,
                      int on_second)
{
    fanout_state_t *state = state_of(run);
    ring_entry_t *entry = &state->ring[sequence % RING_SIZE];
    if (entry->sequence != sequence || entry->remaining == 0) {
        state->stray++;
        return;
    }
    state->deliveries++;
    if (run->measuring) {
        state->deliveries_in_window++;
        bench_histogram_record(&state->latency, now - sent_at);
        if (run->options->second_port != 0)
            bench_histogram_record(on_second ? &state->latency_second : &state->latency_first,
                                   now - sent_at);
    }
    if (--entry->remaining == 0) {
        state->in_flight--;
        pump(run, now);
    }
}

/* Digits at *cursor (advanced past them); -1 when there are none. */
static int64_t read_digits(const char **cursor, const char *end)
{
    const char *at = *cursor;
    int64_t value = 0;
    while (at < end && *at >= '0' && *at <= '9' && value < INT64_MAX / 10 - 9)
        value = value * 10 + (*at++ - '0');
    if (at == *cursor)
        return -1;
    *cursor = at;
    return value;
}

/* The payload as both servers write it back, ["fanout",{"s":S,"t":T,...: read in one pass
 * (a delivery costs the generator about as much as it costs the server, so this matters). */
static int read_stamp(const bench_packet_t *packet, int64_t *sequence, int64_t *sent_at)
{
    static const char prefix[] = "[\"fanout\",{\"s\":";
    static const char middle[] = ",\"t\":";
    const char *at = packet->data, *end = packet->data + packet->data_length;
    if (packet->data_length < sizeof(prefix) + sizeof(middle) ||
        memcmp(at, prefix, sizeof(prefix) - 1) != 0)
        return -1;
    at += sizeof(prefix) - 1;
    *sequence = read_digits(&at, end);
    if (*sequence < 0 || end - at < (long)sizeof(middle) ||
        memcmp(at, middle, sizeof(middle) - 1) != 0)
        return -1;
    at += sizeof(middle) - 1;
    *sent_at = read_digits(&at, end);
    return *sent_at < 0 ? -1 : 0;
}

/* Any other shape (a server that reorders keys) is read the slow way. */
static int read_stamp_anyhow(const bench_packet_t *packet, int64_t *sequence, int64_t *sent_at)
{
    if (read_stamp(packet, sequence, sent_at) == 0)
        return 0;
    if (!bench_event_is(packet, "fanout") ||
        bench_json_integer(packet->data, packet->data_length, "s", sequence) != 0 ||
        bench_json_integer(packet->data, packet->data_length, "t", sent_at) != 0)
        return -1;
    return *sequence >= 0 && *sent_at >= 0 ? 0 : -1;
}

static void on_event(bench_client_t *client, const bench_packet_t *packet)
{
    int64_t sequence, sent_at;
    if (read_stamp_anyhow(packet, &sequence, &sent_at) == 0)
        delivered(client->run, (uint64_t)sequence, (uint64_t)sent_at, client->run->read_at,
                  client->index % 2 == 1);
}

static void on_joined(bench_run_t *run);

static void on_ack(bench_client_t *client, const bench_packet_t *packet)
{
    fanout_state_t *state = state_of(client->run);
    if (packet->ack_id != client->waiting_ack)
        return;
    client->waiting_ack = -1;
    if (++state->joined == state->members)
        on_joined(client->run);
}

static void on_failure(bench_client_t *client, const char *reason)
{
    if (!client->run->stopping)
        bench_run_fail(client->run, "client %zu lost: %s", client->index, reason);
}

static const bench_client_callbacks_t callbacks = {
    .on_event = on_event,
    .on_ack = on_ack,
    .on_failure = on_failure,
};

/* ---- phases ---------------------------------------------------------------------------------- */

static void on_drain_check(uv_timer_t *timer)
{
    bench_run_t *run = timer->data;
    fanout_state_t *state = state_of(run);
    state->drain_waited_ms += DRAIN_CHECK_MS;
    if (state->in_flight == 0 || state->drain_waited_ms >= DRAIN_MS)
        bench_run_finish(run, NULL);
}

static void on_window_over(bench_run_t *run)
{
    state_of(run)->publishing = 0;
    bench_pacer_stop(&state_of(run)->pacer);
    uv_timer_start(&run->phase, on_drain_check, DRAIN_CHECK_MS, DRAIN_CHECK_MS);
}

static void on_joined(bench_run_t *run)
{
    fanout_state_t *state = state_of(run);
    state->publishing = 1;
    state->paced_from = uv_hrtime();
    if (run->options->rate > 0 &&
        bench_pacer_start(&state->pacer, &run->loop, PACER_PERIOD_NS, on_tick, run) != 0) {
        bench_run_fail(run, "cannot start the pacer");
        return;
    }
    pump(run, uv_hrtime());
    bench_measure(run, on_window_over);
}

static void on_connected(bench_run_t *run)
{
    fanout_state_t *state = state_of(run);
    for (size_t i = 0; i < state->members; i++) {
        bench_client_t *client = &run->clients[i];
        char room[64];
        snprintf(room, sizeof(room), "\"room-%zu\"", i % (size_t)run->options->rooms);
        if (bench_client_emit(client, run->options->join_event, room, 1, &client->waiting_ack) !=
            0) {
            bench_run_fail(run, "client %zu cannot join its room", i);
            return;
        }
    }
}

static const char *auth_of(bench_run_t *run, size_t index)
{
    return NULL;
}

/* ---- the scenario ---------------------------------------------------------------------------- */

static size_t client_count(const bench_options_t *options)
{
    return (size_t)(options->rooms * options->members) + 1;
}

static int check(const bench_options_t *options, char *error, size_t size)
{
    if (bench_check_range(options->rooms, 1, BENCH_MAX_CONNECTIONS, "--rooms", error, size) ||
        bench_check_range(options->members, 1, BENCH_MAX_CONNECTIONS, "--members", error, size) ||
        bench_check_range(options->window, 1, MAX_WINDOW, "--window", error, size) ||
        bench_check_range(options->size, 0, 1000000, "--size", error, size))
        return -1;
    if (options->rooms * options->members + 1 > BENCH_MAX_CONNECTIONS) {
        snprintf(error, size,
                 "%ld x %ld members and a publisher exceed %d connections per generator "
                 "process: run several processes and add their figures",
                 options->rooms, options->members, BENCH_MAX_CONNECTIONS);
        return -1;
    }
    return 0;
}

static int start(bench_run_t *run)
{
    fanout_state_t *state = calloc(1, sizeof(*state));
    run->state = state;
    if (state == NULL)
        return -1;
    bench_histogram_init(&state->latency);
    bench_histogram_init(&state->latency_first);
    bench_histogram_init(&state->latency_second);
    state->members = run->client_count - 1;
    state->publisher = run->client_count - 1;
    state->ring = calloc(RING_SIZE, sizeof(*state->ring));
    state->padding = malloc((size_t)run->options->size + 1);
    state->args_size = (size_t)run->options->size + 256;
    state->args = malloc(state->args_size);
    if (state->ring == NULL || state->padding == NULL || state->args == NULL)
        return -1;
    memset(state->padding, 'x', (size_t)run->options->size);
    state->padding[run->options->size] = '\0';
    for (size_t i = 0; i < RING_SIZE; i++)
        state->ring[i].sequence = UINT64_MAX;
    bench_run_connect_all(run, run->client_count, auth_of, on_connected);
    return 0;
}

static void stop(bench_run_t *run)
{
    fanout_state_t *state = state_of(run);
    if (state != NULL) {
        state->publishing = 0;
        bench_pacer_stop(&state->pacer);
    }
}

static void report(bench_run_t *run)
{
    fanout_state_t *state = state_of(run);
    if (state == NULL)
        return;
    double seconds = bench_run_window_seconds(run);
    double rate = seconds > 0 ? (double)state->deliveries_in_window / seconds : 0;
    uint64_t expected = state->published * (uint64_t)run->options->members;
    uint64_t lost = expected > state->deliveries ? expected - state->deliveries : 0;
    json_t *results = run->results;
    json_object_set_new(results, "rooms", json_integer(run->options->rooms));
    json_object_set_new(results, "members", json_integer(run->options->members));
    json_object_set_new(results, "message_bytes", json_integer(run->options->size));
    json_object_set_new(results, "target_rate", json_real(run->options->rate));
    json_object_set_new(results, "published", json_integer((json_int_t)state->published));
    json_object_set_new(results, "messages_per_second",
                        json_real(seconds > 0 ? (double)state->published_in_window / seconds : 0));
    json_object_set_new(results, "deliveries", json_integer((json_int_t)state->deliveries));
    json_object_set_new(results, "deliveries_per_second", json_real(rate));
    json_object_set_new(results, "lost", json_integer((json_int_t)lost));
    json_object_set_new(results, "stray", json_integer((json_int_t)state->stray));
    bench_json_latency(results, "latency", &state->latency);
    if (run->options->second_port != 0) {
        bench_json_latency(results, "latency_same_node", &state->latency_first);
        bench_json_latency(results, "latency_other_node", &state->latency_second);
    }
    snprintf(run->summary, sizeof(run->summary),
             "%ld rooms x %ld members, %ld-byte messages: %.0f deliveries/s, latency p50 %.3f p99 "
             "%.3f p99.9 %.3f ms, %" PRIu64 " lost",
             run->options->rooms, run->options->members, run->options->size, rate,
             bench_histogram_percentile(&state->latency, 50) / 1e6,
             bench_histogram_percentile(&state->latency, 99) / 1e6,
             bench_histogram_percentile(&state->latency, 99.9) / 1e6, lost);
}

static void release(bench_run_t *run)
{
    fanout_state_t *state = state_of(run);
    if (state == NULL)
        return;
    free(state->ring);
    free(state->padding);
    free(state->args);
    free(state);
    run->state = NULL;
}

const bench_scenario_t bench_scenario_fanout = {
    .name = "fanout",
    .client_count = client_count,
    .callbacks = &callbacks,
    .check = check,
    .start = start,
    .stop = stop,
    .report = report,
    .release = release,
};

static int check_cluster(const bench_options_t *options, char *error, size_t size)
{
    if (options->second_port == 0) {
        snprintf(error, size, "cluster: --second-port (the second node) is required");
        return -1;
    }
    return check(options, error, size);
}

const bench_scenario_t bench_scenario_cluster = {
    .name = "cluster",
    .client_count = client_count,
    .callbacks = &callbacks,
    .check = check_cluster,
    .start = start,
    .stop = stop,
    .report = report,
    .release = release,
};
