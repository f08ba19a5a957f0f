/* Prometheus text exposition 0.0.4 of the daemon's numbers. Names follow the Prometheus
 * conventions: a sioc_ prefix and the layer (engineio, socketio, store, cluster), base units
 * (_seconds, _bytes), _total for counters, process_* as the official client libraries write them
 * (so that dashboards made for them work). The library's numbers are read when scraped (no
 * bookkeeping of ours in its paths); only the store's and the cluster Redis's latencies are
 * observed here. */
#define _GNU_SOURCE /* open_memstream */
#include "metrics.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <sioc_adapter.h>

#include "auth_session.h"
#include "channel.h"

/* ---- histograms ---------------------------------------------------------------------------- */

/* Latency buckets, in seconds: from a cached read to a database that stalls. */
static const double latency_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                        0.1,    0.25,  0.5,    1,     2.5,  5,     10};
#define LATENCY_BUCKETS (sizeof(latency_bounds) / sizeof(latency_bounds[0]))

typedef struct histogram_s {
    uint64_t buckets[LATENCY_BUCKETS]; /* observations <= bound (cumulative when written) */
    uint64_t count;
    double sum;
} histogram_t;

static void histogram_observe(histogram_t *histogram, double value)
{
    for (size_t i = 0; i < LATENCY_BUCKETS; i++) {
        if (value <= latency_bounds[i]) {
            histogram->buckets[i]++;
            break;
        }
    }
    histogram->count++;
    histogram->sum += value;
}

static histogram_t redis_latency;
static histogram_t store_latency[STORE_OPERATION_COUNT];
static uint64_t store_failures[STORE_OPERATION_COUNT];

void metrics_store_observe(store_operation_t operation, int failed, double seconds)
{
    if ((int)operation < 0 || operation >= STORE_OPERATION_COUNT)
        return;
    histogram_observe(&store_latency[operation], seconds);
    if (failed)
        store_failures[operation]++;
}

void metrics_redis_observe(double seconds, void *data)
{
    (void)data;
    histogram_observe(&redis_latency, seconds);
}

/* ---- writing ------------------------------------------------------------------------------- */

static void header(FILE *out, const char *name, const char *type, const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample(FILE *out, const char *name, const char *type, const char *help, double value)
{
    header(out, name, type, help);
    fprintf(out, "%s %.17g\n", name, value);
}

/* Buckets as Prometheus wants them: cumulative, then +Inf, _sum and _count. labels:
 * "operation=\"x\"," (with the trailing comma), or "". */
static void histogram_write(FILE *out, const char *name, const char *labels,
                            const histogram_t *histogram)
{
    uint64_t cumulative = 0;
    for (size_t i = 0; i < LATENCY_BUCKETS; i++) {
        cumulative += histogram->buckets[i];
        fprintf(out, "%s_bucket{%sle=\"%g\"} %llu\n", name, labels, latency_bounds[i],
                (unsigned long long)cumulative);
    }
    fprintf(out, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, labels,
            (unsigned long long)histogram->count);
    /* The same labels without the trailing comma, or no braces without labels. */
    int length = labels[0] != '\0' ? (int)strlen(labels) - 1 : 0;
    const char *open = length > 0 ? "{" : "", *close = length > 0 ? "}" : "";
    fprintf(out, "%s_sum%s%.*s%s %.17g\n", name, open, length, labels, close, histogram->sum);
    fprintf(out, "%s_count%s%.*s%s %llu\n", name, open, length, labels, close,
            (unsigned long long)histogram->count);
}

/* Engine.IO's texts as label values: "Session ID unknown" -> "session_id_unknown". */
static void label_of(const char *message, char *out, size_t size)
{
    size_t i = 0;
    for (; message[i] != '\0' && i + 1 < size; i++)
        out[i] = message[i] == ' ' ? '_' : (char)(message[i] | 0x20);
    out[i] = '\0';
}

static void write_engineio(FILE *out, const sioc_eio_stats_t *engine)
{
    header(out, "sioc_engineio_connections", "gauge",
           "Open Engine.IO connections by current transport.");
    fprintf(out, "sioc_engineio_connections{transport=\"polling\"} %zu\n",
            engine->polling_sessions);
    fprintf(out, "sioc_engineio_connections{transport=\"websocket\"} %zu\n",
            engine->websocket_sessions);
    sample(out, "sioc_engineio_connections_opened_total", "counter",
           "Engine.IO connections opened (handshakes accepted).", (double)engine->sessions_opened);
    sample(out, "sioc_engineio_connections_closed_total", "counter",
           "Engine.IO connections closed.", (double)engine->sessions_closed);
    header(out, "sioc_engineio_connections_closed_by_reason_total", "counter",
           "Engine.IO connections closed, by engine.io's close reason.");
    for (int i = 0; i < SIOC_EIO_CLOSE_REASON_COUNT; i++) {
        char reason[64];
        label_of(sioc_eio_close_reason(i), reason, sizeof(reason));
        fprintf(out, "sioc_engineio_connections_closed_by_reason_total{reason=\"%s\"} %llu\n",
                reason, (unsigned long long)engine->sessions_closed_by_reason[i]);
    }
    header(out, "sioc_engineio_requests_refused_total", "counter",
           "Requests answered with an Engine.IO error (handshakes refused included), by reason.");
    for (int code = 0; code < SIOC_EIO_ERROR_COUNT; code++) {
        char reason[64];
        label_of(sioc_eio_error_message(code), reason, sizeof(reason));
        fprintf(out, "sioc_engineio_requests_refused_total{code=\"%d\",reason=\"%s\"} %llu\n", code,
                reason, (unsigned long long)engine->refused[code]);
    }
    sample(out, "sioc_engineio_slow_reader_disconnections_total", "counter",
           "Connections closed because the client did not read (past maxBufferedBytes).",
           (double)engine->slow_reader_closes);
    sample(out, "sioc_engineio_packets_received_total", "counter",
           "Engine.IO message packets received.", (double)engine->messages_in);
    sample(out, "sioc_engineio_packets_sent_total", "counter", "Engine.IO message packets sent.",
           (double)engine->messages_out);
    sample(out, "sioc_engineio_received_bytes_total", "counter",
           "Payload bytes of the message packets received.", (double)engine->message_bytes_in);
    sample(out, "sioc_engineio_sent_bytes_total", "counter",
           "Payload bytes of the message packets sent.", (double)engine->message_bytes_out);
}

static void write_socketio(FILE *out, const sioc_server_stats_t *stats)
{
    sample(out, "sioc_socketio_namespaces", "gauge", "Namespaces.", (double)stats->namespaces);
    sample(out, "sioc_socketio_sockets", "gauge", "Connected sockets, all namespaces.",
           (double)stats->sockets);
    sample(out, "sioc_socketio_rooms", "gauge",
           "Rooms of this server, each socket's own room included.", (double)stats->rooms);
    sample(out, "sioc_socketio_sockets_connected_total", "counter", "Sockets connected.",
           (double)stats->sockets_connected);
    sample(out, "sioc_socketio_sockets_disconnected_total", "counter", "Sockets disconnected.",
           (double)stats->sockets_disconnected);
    sample(out, "sioc_socketio_connects_refused_total", "counter",
           "Namespace connections refused (middleware, unknown namespace).",
           (double)stats->connects_refused);
    sample(out, "sioc_socketio_broadcasts_total", "counter",
           "Broadcasts delivered by this server (per namespace).", (double)stats->broadcasts);
    sample(out, "sioc_socketio_broadcast_deliveries_total", "counter",
           "Sockets a broadcast was queued for.", (double)stats->deliveries);
    sample(out, "sioc_socketio_volatile_dropped_total", "counter",
           "Volatile packets not sent to a client that could not take them at once.",
           (double)stats->volatile_dropped);
    sample(out, "sioc_socketio_recovery_unlogged_total", "counter",
           "Recoverable broadcasts written without an offset: the recovery store was past its cap.",
           (double)stats->recovery_unlogged);
    sample(out, "sioc_socketio_recovery_pending", "gauge",
           "Recoverable broadcasts waiting for the recovery store.",
           (double)stats->recovery_pending);
}

static void write_store(FILE *out)
{
    header(out, "sioc_store_request_duration_seconds", "histogram",
           "Store requests, from the request to its answer (queueing included), by operation.");
    for (int op = 0; op < STORE_OPERATION_COUNT; op++) {
        char labels[96];
        snprintf(labels, sizeof(labels), "operation=\"%s\",", store_operation_name(op));
        histogram_write(out, "sioc_store_request_duration_seconds", labels, &store_latency[op]);
    }
    header(out, "sioc_store_request_failures_total", "counter",
           "Store requests that failed (not found and conflicts included), by operation.");
    for (int op = 0; op < STORE_OPERATION_COUNT; op++)
        fprintf(out, "sioc_store_request_failures_total{operation=\"%s\"} %llu\n",
                store_operation_name(op), (unsigned long long)store_failures[op]);
}

/* With a cluster, the state readyz checks and the round trips of what this node publishes; with
 * session auth, the session store's connection. */
static void write_redis(FILE *out, const daemon_t *daemon)
{
    if (daemon->cluster != NULL) {
        sample(out, "sioc_cluster_redis_up", "gauge",
               "1 while both connections to the cluster's Redis are up, 0 while reconnecting.",
               sioc_redis_connected(daemon->cluster));
        header(out, "sioc_cluster_redis_publish_duration_seconds", "histogram",
               "Round trip of each PUBLISH to the cluster's Redis, from the write to the answer.");
        histogram_write(out, "sioc_cluster_redis_publish_duration_seconds", "", &redis_latency);
    }
    if (daemon->sessions != NULL)
        sample(out, "sioc_session_redis_up", "gauge",
               "1 while the session store's Redis connection is up, 0 while reconnecting.",
               auth_session_store_connected(daemon->sessions));
}

/* ---- process_* (as prometheus/client_golang and prom-client name them) ---------------------- */

static double boot_time_seconds(void)
{
    FILE *stat = fopen("/proc/stat", "r");
    char line[256];
    double boot = 0;
    while (stat != NULL && fgets(line, sizeof(line), stat) != NULL)
        if (sscanf(line, "btime %lf", &boot) == 1)
            break;
    if (stat != NULL)
        fclose(stat);
    return boot;
}

/* Field 22 of /proc/self/stat (start time in clock ticks since boot); the command name (field
 * 2) may hold spaces and parentheses, so fields are counted from its last ')'. */
static double start_time_seconds(void)
{
    FILE *stat = fopen("/proc/self/stat", "r");
    char line[1024];
    double start = 0;
    if (stat != NULL && fgets(line, sizeof(line), stat) != NULL) {
        const char *cursor = strrchr(line, ')');
        unsigned long long ticks = 0;
        /* After ')': field 3 (state) ... field 22 (starttime) = the 20th value. */
        for (int field = 3; cursor != NULL && field <= 22; field++) {
            cursor = strchr(cursor + 1, ' ');
            if (cursor != NULL && field == 22)
                ticks = strtoull(cursor + 1, NULL, 10);
        }
        long hz = sysconf(_SC_CLK_TCK);
        if (ticks > 0 && hz > 0)
            start = boot_time_seconds() + (double)ticks / (double)hz;
    }
    if (stat != NULL)
        fclose(stat);
    return start;
}

static size_t open_fds(void)
{
    DIR *directory = opendir("/proc/self/fd");
    size_t count = 0;
    for (struct dirent *entry; directory != NULL && (entry = readdir(directory)) != NULL;)
        if (entry->d_name[0] != '.')
            count++;
    if (directory != NULL)
        closedir(directory);
    return count > 0 ? count - 1 : 0; /* the directory's own descriptor */
}

static void write_process(FILE *out)
{
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    double cpu = (double)usage.ru_utime.tv_sec + (double)usage.ru_utime.tv_usec / 1e6 +
                 (double)usage.ru_stime.tv_sec + (double)usage.ru_stime.tv_usec / 1e6;
    sample(out, "process_cpu_seconds_total", "counter",
           "Total user and system CPU time spent in "
           "seconds.",
           cpu);
    unsigned long long pages_virtual = 0, pages_resident = 0;
    FILE *statm = fopen("/proc/self/statm", "r");
    if (statm != NULL) {
        if (fscanf(statm, "%llu %llu", &pages_virtual, &pages_resident) != 2)
            pages_virtual = pages_resident = 0;
        fclose(statm);
    }
    double page = (double)sysconf(_SC_PAGESIZE);
    sample(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
           (double)pages_resident * page);
    sample(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
           (double)pages_virtual * page);
    sample(out, "process_start_time_seconds", "gauge",
           "Start time of the process since unix epoch in seconds.", start_time_seconds());
    sample(out, "process_open_fds", "gauge", "Number of open file descriptors.",
           (double)open_fds());
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0)
        sample(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
               (double)limit.rlim_cur);
}

char *metrics_render(const daemon_t *daemon, size_t *length)
{
    char *text = NULL;
    FILE *out = open_memstream(&text, length);
    if (out == NULL)
        return NULL;
    header(out, "sioc_build_info", "gauge", "The sioc version that runs (always 1).");
    fprintf(out, "sioc_build_info{version=\"%s\"} 1\n", SIOC_VERSION);
    if (daemon->io != NULL) {
        sioc_server_stats_t stats;
        sioc_server_stats(daemon->io, &stats);
        write_engineio(out, &stats.engine);
        write_socketio(out, &stats);
    }
    write_store(out);
    write_redis(out, daemon);
    write_process(out);
    if (fclose(out) != 0) {
        free(text);
        return NULL;
    }
    return text;
}
