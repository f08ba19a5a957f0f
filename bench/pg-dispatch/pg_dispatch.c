/* pg-dispatch: PostgreSQL on the loop or on threads (issue 10), one design per invocation.
 *
 * The question is who waits for the database: the daemon's store (daemon/store.c) gives each
 * pool connection a worker thread that waits on it and hands completions back to the loop with
 * a uv_async_t, so one chat message is a chain of wake-ups loop -> worker -> backend -> worker
 * -> loop. The alternative drives the same connections from the loop itself (libpq's
 * non-blocking mode under a uv_poll_t): loop -> backend -> loop. This program runs either with
 * one workload and prints the latency and the CPU and context switches it cost, so that the
 * choice rests on a measurement (docs/store.md, "Loop or threads: measured").
 *
 *   --design loop     K connections non-blocking, in pipeline mode, polled by the loop
 *   --design threads  K worker threads, each waiting on its connection (poll(2) on the socket
 *                     and an eventfd, as the store's worker does), requests handed over under a
 *                     mutex + condition variable, completions posted back with uv_async_send
 *
 * The workload is the chat's: requests fall due at --rate per second on a fixed schedule (each
 * one's latency counts from when it was due, so a held loop is counted, not hidden), each an
 * INSERT of a message with sioc's own statement (store_pg.c's MESSAGE_INSERT_DIAGNOSED) into
 * tables of sioc's shape, sent to the connection of its room (FNV-1a of the room id modulo K,
 * the store's ordering key). A connection sends at once when it has fewer than two batches in
 * flight, else batches what queues meanwhile: BEGIN, the inserts, COMMIT and a sync point in one
 * pipeline (the store's FLIGHTS_MAX and one-trip batch). A request is complete when the loop
 * learns of its COMMIT. With --fanout N the loop then writes a 120-byte frame to N of --sockets
 * loopback TCP connections (drained by a reader process), the deliveries that take 41 % of the
 * daemon's samples in the profile, so that the loop's own busyness is part of the comparison.
 *
 * The schema is made by --setup (idempotent; it empties the messages), so that a run starts
 * from the same table and the caller can recycle the WAL in between (bench/pg-dispatch.sh). */
#define _GNU_SOURCE /* sched_setaffinity, for the reader process */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <uv.h>

#define PIPELINE_MAX 256 /* requests per batch, as the store's one-trip batch */
#define FLIGHTS_MAX 2    /* batches in flight per connection, as the store's */
#define FRAME_BYTES 120
#define DRAIN_MS 5000 /* after the last request is due: what has not completed by then is lost */
#define STATEMENT "message_insert"

/* store_pg.c's SIOC__SQL_MESSAGE_INSERT_DIAGNOSED, MESSAGE_COLUMNS expanded. */
static const char INSERT_SQL[] =
    "WITH found AS (SELECT EXISTS (SELECT 1 FROM sioc.rooms WHERE id = $2) AS first,"
    " EXISTS (SELECT 1 FROM sioc.users WHERE id = $3) AS second),"
    " added AS (INSERT INTO sioc.messages (id, room_id, sender_id, text, created_at, id_numeric)"
    " SELECT $1, $2::text, $3::text, $4, $5, $6::int FROM found WHERE first AND second"
    " RETURNING id, room_id, sender_id, text, created_at, id_numeric)"
    " SELECT added.*, found.first, found.second FROM found LEFT JOIN added ON true";

/* The tables the insert touches, in sioc's shape (store_pg.c's schema, versions 1 to 3). */
static const char SCHEMA_SQL[] =
    "SET client_min_messages = warning;"
    "CREATE SCHEMA IF NOT EXISTS sioc;"
    "CREATE TABLE IF NOT EXISTS sioc.users ("
    "  id TEXT PRIMARY KEY, first_name TEXT, last_name TEXT, role TEXT, avatar TEXT,"
    "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL,"
    "  id_numeric INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS sioc.rooms ("
    "  id TEXT PRIMARY KEY, name TEXT NOT NULL, is_private BOOLEAN NOT NULL,"
    "  owner_id TEXT REFERENCES sioc.users (id), created_at TEXT NOT NULL,"
    "  id_numeric INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS sioc.messages ("
    "  seq BIGSERIAL PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
    "  room_id TEXT NOT NULL REFERENCES sioc.rooms (id),"
    "  sender_id TEXT NOT NULL REFERENCES sioc.users (id),"
    "  text TEXT NOT NULL, created_at TEXT NOT NULL, id_numeric INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS messages_room ON sioc.messages (room_id, seq);"
    "TRUNCATE sioc.messages;";

typedef enum { DESIGN_LOOP, DESIGN_THREADS } design_t;

typedef struct options_s {
    const char *url;
    design_t design;
    int connections;
    double rate;
    int rooms;
    int users;
    double duration_s;
    double warmup_s;
    int fanout;
    int sockets;
    int reader_cpu;
    int setup;
} options_t;

typedef struct request_s {
    struct request_s *next;
    uint64_t due_ns;
    uint32_t serial;
    uint32_t room;
    uint32_t sender;
    int counted; /* due in the measured window */
} request_t;

typedef struct list_s {
    request_t *head;
    request_t *tail;
    size_t length;
} list_t;

typedef struct flight_s {
    list_t batch;
    size_t results; /* of BEGIN, the inserts and COMMIT read so far */
} flight_t;

typedef struct bench_s bench_t;

typedef struct lane_s {
    bench_t *bench;
    int index;
    PGconn *conn;
    int backend_pid;
    flight_t flights[FLIGHTS_MAX]; /* a ring: the oldest at first */
    int first;
    int sent;
    int flushing; /* PQflush left data in libpq's buffer: wait for writable */
    /* loop design */
    uv_poll_t poll;
    int poll_events;
    /* threads design: queue, idle, polling, stopping and done under mutex */
    list_t queue;
    pthread_t thread;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    int idle;    /* waiting on wake (nothing in flight) */
    int polling; /* in poll(2) with room for another batch: wake_fd wakes it */
    int wake_fd;
    int stopping;
    list_t done;
    uv_async_t async;
    /* counters (the worker's in the threads design, read after join) */
    uint64_t batches;
    uint64_t batched;
    uint64_t behind; /* batches sent while another was in flight */
} lane_t;

/* A connection of the fan-out: the loop's end of one loopback TCP socket. */
typedef struct sink_s {
    uv_tcp_t tcp;
    int fd; /* accepted before the loop exists */
} sink_t;

typedef struct write_s {
    uv_write_t request;
    char bytes[FRAME_BYTES];
} write_t;

struct bench_s {
    options_t options;
    uv_loop_t *loop;
    lane_t *lanes;
    request_t *requests;
    size_t total;  /* requests, warm-up included */
    size_t issued; /* made due so far */
    size_t first_counted;
    size_t counted;   /* due in the measured window */
    size_t completed; /* of those */
    uint64_t *latencies_ns;
    uint64_t start_ns;
    uv_timer_t pace;
    uv_timer_t drain;
    int draining;
    int window_open;
    int window_closed;
    struct rusage usage_start, usage_end;
    uint64_t window_start_ns, window_end_ns;
    uint64_t backend_ticks_start, backend_ticks_end;
    uint64_t loop_cpu_start_ns, loop_cpu_end_ns; /* the loop thread's own share */
    sink_t *sinks;
    int sink_count;
    pid_t reader;
    char frame[FRAME_BYTES];
    uint64_t partial_writes;
    uint64_t frames;
    char nonce[9];
};

static void die(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    fprintf(stderr, "pg-dispatch: ");
    vfprintf(stderr, format, args);
    fputc('\n', stderr);
    va_end(args);
    fflush(stderr);
    /* From any thread, with connections and the reader process still up: the kernel closes
     * the sockets, and the reader dies with us (PR_SET_PDEATHSIG). */
    _exit(1);
}

static void list_push(list_t *list, request_t *request)
{
    request->next = NULL;
    if (list->tail != NULL)
        list->tail->next = request;
    else
        list->head = request;
    list->tail = request;
    list->length++;
}

/* Takes up to max requests from the front of the list. */
static list_t list_take(list_t *list, size_t max)
{
    list_t taken = {list->head, NULL, 0};
    request_t *last = NULL;
    request_t *cursor = list->head;
    while (cursor != NULL && taken.length < max) {
        last = cursor;
        cursor = cursor->next;
        taken.length++;
    }
    if (last != NULL)
        last->next = NULL;
    taken.tail = last;
    if (taken.length == 0)
        taken.head = NULL;
    list->head = cursor;
    list->length -= taken.length;
    if (cursor == NULL)
        list->tail = NULL;
    return taken;
}

static void list_append(list_t *list, list_t *more)
{
    if (more->head == NULL)
        return;
    if (list->tail != NULL)
        list->tail->next = more->head;
    else
        list->head = more->head;
    list->tail = more->tail;
    list->length += more->length;
    *more = (list_t){NULL, NULL, 0};
}

/* The store's ordering key for a room (FNV-1a, 64 bits, of its id's text). */
static int lane_of_room(const char *room_id, int connections)
{
    uint64_t hash = 14695981039346656037ull;
    for (const char *cursor = room_id; *cursor != '\0'; cursor++) {
        hash ^= (unsigned char)*cursor;
        hash *= 1099511628211ull;
    }
    return (int)(hash % (uint64_t)connections);
}

/* ---- PostgreSQL, both designs ------------------------------------------------------------ */

static PGconn *connect_or_die(const char *url)
{
    PGconn *conn = PQconnectdb(url);
    if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
        die("cannot connect to %s: %s", url, conn != NULL ? PQerrorMessage(conn) : "out of memory");
    return conn;
}

static void exec_or_die(PGconn *conn, const char *sql, const char *what)
{
    PGresult *result = PQexec(conn, sql);
    ExecStatusType status = PQresultStatus(result);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
        die("%s failed: %s", what, PQerrorMessage(conn));
    PQclear(result);
}

static void setup(const options_t *options)
{
    PGconn *conn = connect_or_die(options->url);
    exec_or_die(conn, SCHEMA_SQL, "creating the tables");
    char sql[512];
    snprintf(
        sql, sizeof(sql),
        "INSERT INTO sioc.users (id, first_name, created_at, updated_at)"
        " SELECT 'u' || n, 'User ' || n, '2026-12-07T00:00:00.000Z', '2026-12-07T00:00:00.000Z'"
        " FROM generate_series(0, %d) AS n ON CONFLICT DO NOTHING",
        options->users - 1);
    exec_or_die(conn, sql, "adding the users");
    snprintf(sql, sizeof(sql),
             "INSERT INTO sioc.rooms (id, name, is_private, owner_id, created_at)"
             " SELECT 'r' || n, 'Room ' || n, false, 'u0', '2026-12-07T00:00:00.000Z'"
             " FROM generate_series(0, %d) AS n ON CONFLICT DO NOTHING",
             options->rooms - 1);
    exec_or_die(conn, sql, "adding the rooms");
    exec_or_die(conn, "VACUUM ANALYZE sioc.users, sioc.rooms, sioc.messages", "vacuum");
    PQfinish(conn);
}

/* Connects, prepares the insert (blocking, before the run), and leaves the connection in
 * pipeline mode, non-blocking: both designs send and read the same way; what differs is who
 * waits for the socket. */
static void lane_open(lane_t *lane, const options_t *options)
{
    lane->conn = connect_or_die(options->url);
    PGresult *result = PQprepare(lane->conn, STATEMENT, INSERT_SQL, 0, NULL);
    if (PQresultStatus(result) != PGRES_COMMAND_OK)
        die("connection %d: cannot prepare the insert (run --setup first?): %s", lane->index,
            PQerrorMessage(lane->conn));
    PQclear(result);
    lane->backend_pid = PQbackendPID(lane->conn);
    if (PQsetnonblocking(lane->conn, 1) != 0 || PQenterPipelineMode(lane->conn) != 1)
        die("connection %d: cannot enter pipeline mode: %s", lane->index,
            PQerrorMessage(lane->conn));
}

static void iso_now(char out[32])
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    size_t length = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + length, 32 - length, ".%03ldZ", now.tv_nsec / 1000000L);
}

/* Queues BEGIN, the batch's inserts, COMMIT and a sync point behind what is in flight, and
 * flushes what the socket takes (lane->flushing when it did not take it all). */
static void lane_send(lane_t *lane, list_t batch)
{
    const bench_t *bench = lane->bench;
    PGconn *conn = lane->conn;
    flight_t *flight = &lane->flights[(lane->first + lane->sent) % FLIGHTS_MAX];
    *flight = (flight_t){batch, 0};
    lane->behind += lane->sent > 0;
    lane->sent++;
    lane->batches++;
    lane->batched += batch.length;
    char created_at[32];
    iso_now(created_at);
    int sent = PQsendQueryParams(conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0);
    for (request_t *request = batch.head; request != NULL && sent; request = request->next) {
        char id[32], room[16], sender[16], text[96];
        snprintf(id, sizeof(id), "%s%011" PRIu32, bench->nonce, request->serial);
        snprintf(room, sizeof(room), "r%" PRIu32, request->room);
        snprintf(sender, sizeof(sender), "u%" PRIu32, request->sender);
        snprintf(text, sizeof(text),
                 "message %" PRIu32 " to the room, about as long as a chat line", request->serial);
        const char *values[6] = {id, room, sender, text, created_at, "0"};
        sent = PQsendQueryPrepared(conn, STATEMENT, 6, values, NULL, NULL, 0);
    }
    if (!sent || PQsendQueryParams(conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) != 1 ||
        PQpipelineSync(conn) != 1)
        die("connection %d: cannot send: %s", lane->index, PQerrorMessage(conn));
    int flushed = PQflush(conn);
    if (flushed < 0)
        die("connection %d: cannot send: %s", lane->index, PQerrorMessage(conn));
    lane->flushing = flushed == 1;
}

/* Reads what has arrived; every batch whose sync point came is moved to done, in order.
 * A failed statement ends the run: the workload has none (every room and user exists), so one
 * means the setup or the server is wrong, and the figures would not be the chat's. */
static void lane_read(lane_t *lane, list_t *done)
{
    PGconn *conn = lane->conn;
    if (PQconsumeInput(conn) == 0)
        die("connection %d: lost: %s", lane->index, PQerrorMessage(conn));
    /* Only while a sync point is due: with nothing in flight PQgetResult answers NULL forever. */
    while (lane->sent > 0 && !PQisBusy(conn)) {
        PGresult *result = PQgetResult(conn);
        if (result == NULL)
            continue; /* the end of one statement's results */
        flight_t *flight = &lane->flights[lane->first];
        ExecStatusType status = PQresultStatus(result);
        if (status == PGRES_PIPELINE_SYNC) {
            if (flight->results != flight->batch.length + 2)
                die("connection %d: a batch of %zu answered %zu results", lane->index,
                    flight->batch.length, flight->results);
            list_append(done, &flight->batch);
            lane->first = (lane->first + 1) % FLIGHTS_MAX;
            lane->sent--;
        } else if (status == PGRES_COMMAND_OK ||
                   (status == PGRES_TUPLES_OK && PQntuples(result) == 1 &&
                    !PQgetisnull(result, 0, 0))) {
            flight->results++;
        } else if (status == PGRES_TUPLES_OK) {
            die("connection %d: an insert added nothing (room or sender missing: --setup with "
                "these --rooms and --users?)",
                lane->index);
        } else {
            die("connection %d: statement failed: %s", lane->index,
                status == PGRES_PIPELINE_ABORTED ? "pipeline aborted"
                                                 : PQresultErrorMessage(result));
        }
        PQclear(result);
    }
}

static uint64_t backend_ticks(const bench_t *bench)
{
    uint64_t ticks = 0;
    for (int index = 0; index < bench->options.connections; index++) {
        char path[64], line[1024];
        snprintf(path, sizeof(path), "/proc/%d/stat", bench->lanes[index].backend_pid);
        FILE *file = fopen(path, "r");
        if (file == NULL)
            continue; /* a server on another host: no backend figures */
        size_t length = fread(line, 1, sizeof(line) - 1, file);
        fclose(file);
        line[length] = '\0';
        /* Fields 14 and 15 (utime, stime), counted after the command's closing parenthesis. */
        char *cursor = strrchr(line, ')');
        unsigned long utime = 0, stime = 0;
        if (cursor != NULL &&
            sscanf(cursor + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime,
                   &stime) == 2)
            ticks += utime + stime;
    }
    return ticks;
}

/* ---- The loop's side: completions and the fan-out ----------------------------------------- */

static uint64_t thread_cpu_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    return (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
}

/* On the loop thread, as is window opening (on_pace). */
static void window_close(bench_t *bench)
{
    if (bench->window_closed)
        return;
    bench->window_closed = 1;
    getrusage(RUSAGE_SELF, &bench->usage_end);
    bench->window_end_ns = uv_hrtime();
    bench->loop_cpu_end_ns = thread_cpu_ns();
    bench->backend_ticks_end = backend_ticks(bench);
}

static void on_frame_written(uv_write_t *request, int status)
{
    if (status != 0)
        die("fan-out: write failed: %s", uv_strerror(status));
    free(request);
}

/* What the daemon does per delivery: try the socket at once, hand libuv the rest. */
static void deliver(bench_t *bench, sink_t *sink)
{
    uv_buf_t buf = uv_buf_init(bench->frame, FRAME_BYTES);
    int written = uv_try_write((uv_stream_t *)&sink->tcp, &buf, 1);
    if (written == UV_EAGAIN)
        written = 0;
    if (written < 0)
        die("fan-out: write failed: %s", uv_strerror(written));
    bench->frames++;
    if (written == FRAME_BYTES)
        return;
    bench->partial_writes++;
    write_t *write = malloc(sizeof(*write));
    if (write == NULL)
        die("out of memory");
    size_t left = FRAME_BYTES - (size_t)written;
    memcpy(write->bytes, bench->frame + written, left);
    buf = uv_buf_init(write->bytes, (unsigned)left);
    int rc = uv_write(&write->request, (uv_stream_t *)&sink->tcp, &buf, 1, on_frame_written);
    if (rc != 0)
        die("fan-out: write failed: %s", uv_strerror(rc));
}

static void stop_all(bench_t *bench);

/* The loop learns of a batch's COMMIT: each request completes in order, its deliveries
 * written before the next one's (the daemon's done callbacks), so a request's latency includes
 * the fan-out of those before it in its batch. */
static void complete(bench_t *bench, list_t *done)
{
    for (request_t *request = done->head; request != NULL; request = request->next) {
        if (request->counted) {
            bench->latencies_ns[bench->completed++] = uv_hrtime() - request->due_ns;
            if (bench->completed == bench->counted)
                window_close(bench);
        }
        for (int index = 0; index < bench->options.fanout; index++) {
            /* The room's members: fanout sockets spread over the set, the same for a room. */
            size_t member =
                ((size_t)request->room * 7919u + (size_t)index * 101u) % (size_t)bench->sink_count;
            deliver(bench, &bench->sinks[member]);
        }
    }
    *done = (list_t){NULL, NULL, 0};
    if (bench->draining && bench->completed == bench->counted)
        stop_all(bench);
}

/* ---- Design loop: the connections under uv_poll_t ---------------------------------------- */

static void on_lane_io(uv_poll_t *handle, int status, int events);

static void lane_watch(bench_t *bench, lane_t *lane)
{
    int events = UV_READABLE | (lane->flushing ? UV_WRITABLE : 0);
    if (events == lane->poll_events)
        return;
    lane->poll_events = events;
    int rc = uv_poll_start(&lane->poll, events, on_lane_io);
    if (rc != 0)
        die("connection %d: uv_poll_start: %s", lane->index, uv_strerror(rc));
}

/* Sends what queued, when there is room in flight. */
static void loop_lane_send(bench_t *bench, lane_t *lane)
{
    if (lane->queue.head != NULL && lane->sent < FLIGHTS_MAX)
        lane_send(lane, list_take(&lane->queue, PIPELINE_MAX));
    lane_watch(bench, lane);
}

static void on_lane_io(uv_poll_t *handle, int status, int events)
{
    lane_t *lane = handle->data;
    bench_t *bench = handle->loop->data;
    if (status < 0)
        die("connection %d: poll: %s", lane->index, uv_strerror(status));
    if (events & UV_WRITABLE) {
        int flushed = PQflush(lane->conn);
        if (flushed < 0)
            die("connection %d: cannot send: %s", lane->index, PQerrorMessage(lane->conn));
        lane->flushing = flushed == 1;
    }
    list_t done = {NULL, NULL, 0};
    if (events & UV_READABLE)
        lane_read(lane, &done);
    if (done.head != NULL)
        complete(bench, &done);
    loop_lane_send(bench, lane);
}

/* ---- Design threads: a worker per connection -------------------------------------------- */

/* The worker: with nothing in flight it sleeps on the condition variable; with batches in
 * flight it waits in poll(2) on the connection's socket and, while there is room for another
 * batch, on its eventfd, which the loop writes when it queues a request then (store.c's
 * worker_take, worker_poll and pipeline_read). */
static void *worker_main(void *argument)
{
    lane_t *lane = argument;
    for (;;) {
        list_t batch = {NULL, NULL, 0};
        pthread_mutex_lock(&lane->mutex);
        if (lane->sent == 0) {
            while (!lane->stopping && lane->queue.head == NULL) {
                lane->idle = 1;
                pthread_cond_wait(&lane->wake, &lane->mutex);
            }
            lane->idle = 0;
            if (lane->queue.head == NULL) {
                pthread_mutex_unlock(&lane->mutex);
                break; /* stopping */
            }
        }
        if (lane->sent < FLIGHTS_MAX)
            batch = list_take(&lane->queue, PIPELINE_MAX);
        lane->polling = batch.head == NULL && lane->sent < FLIGHTS_MAX;
        pthread_mutex_unlock(&lane->mutex);
        if (batch.head != NULL) {
            lane_send(lane, batch);
            continue;
        }
        struct pollfd wait[2] = {{PQsocket(lane->conn), POLLIN | (lane->flushing ? POLLOUT : 0), 0},
                                 {lane->wake_fd, POLLIN, 0}};
        int ready = poll(wait, lane->sent < FLIGHTS_MAX ? 2 : 1, -1);
        if (ready < 0 && errno != EINTR)
            die("connection %d: poll: %s", lane->index, strerror(errno));
        if (ready > 0 && (wait[1].revents & POLLIN)) {
            uint64_t count;
            ssize_t drained = read(lane->wake_fd, &count, sizeof(count));
            (void)drained; /* the queue is looked at next time round */
        }
        if (ready > 0 && (wait[0].revents & POLLOUT)) {
            int flushed = PQflush(lane->conn);
            if (flushed < 0)
                die("connection %d: cannot send: %s", lane->index, PQerrorMessage(lane->conn));
            lane->flushing = flushed == 1;
        }
        if (ready > 0 && (wait[0].revents & (POLLIN | POLLERR | POLLHUP))) {
            list_t done = {NULL, NULL, 0};
            lane_read(lane, &done);
            if (done.head != NULL) {
                pthread_mutex_lock(&lane->mutex);
                list_append(&lane->done, &done);
                pthread_mutex_unlock(&lane->mutex);
                uv_async_send(&lane->async);
            }
        }
    }
    return NULL;
}

static void on_lane_done(uv_async_t *handle)
{
    lane_t *lane = handle->data;
    bench_t *bench = handle->loop->data;
    pthread_mutex_lock(&lane->mutex);
    list_t done = lane->done;
    lane->done = (list_t){NULL, NULL, 0};
    pthread_mutex_unlock(&lane->mutex);
    if (done.head != NULL)
        complete(bench, &done);
}

/* From the loop: hands a request to its worker, waking it the way it waits. */
static void threads_queue(lane_t *lane, request_t *request)
{
    pthread_mutex_lock(&lane->mutex);
    list_push(&lane->queue, request);
    int idle = lane->idle;
    int polling = lane->polling;
    lane->polling = 0;
    if (idle)
        pthread_cond_signal(&lane->wake);
    pthread_mutex_unlock(&lane->mutex);
    if (polling) {
        uint64_t one = 1;
        ssize_t written = write(lane->wake_fd, &one, sizeof(one));
        (void)written; /* EAGAIN only when the counter is full: readable then anyway */
    }
}

static void on_drained(uv_timer_t *timer)
{
    stop_all(timer->loop->data);
}

/* ---- Pacing ---------------------------------------------------------------------------- */

static void on_pace(uv_timer_t *timer)
{
    bench_t *bench = timer->loop->data;
    uint64_t now = uv_hrtime();
    int connections = bench->options.connections;
    int touched[connections];
    memset(touched, 0, sizeof(touched));
    while (bench->issued < bench->total && bench->requests[bench->issued].due_ns <= now) {
        request_t *request = &bench->requests[bench->issued++];
        if (request->counted && !bench->window_open) {
            bench->window_open = 1;
            getrusage(RUSAGE_SELF, &bench->usage_start);
            bench->window_start_ns = now;
            bench->loop_cpu_start_ns = thread_cpu_ns();
            bench->backend_ticks_start = backend_ticks(bench);
        }
        char room[16];
        snprintf(room, sizeof(room), "r%" PRIu32, request->room);
        lane_t *lane = &bench->lanes[lane_of_room(room, connections)];
        if (bench->options.design == DESIGN_THREADS) {
            threads_queue(lane, request);
        } else {
            list_push(&lane->queue, request);
            touched[lane->index] = 1;
        }
    }
    /* The loop design sends once per tick and lane: what fell due together is one batch. */
    for (int index = 0; index < connections; index++)
        if (touched[index])
            loop_lane_send(bench, &bench->lanes[index]);
    if (bench->issued == bench->total && !bench->draining) {
        bench->draining = 1;
        uv_timer_stop(&bench->pace);
        uv_timer_start(&bench->drain, on_drained, DRAIN_MS, 0);
        if (bench->completed == bench->counted)
            stop_all(bench);
    }
}

/* ---- The fan-out's sockets and their reader ---------------------------------------------- */

/* The reader process: connects count sockets to port and reads them until each ends. A process
 * of its own, as the daemon's clients are, so that its CPU is not counted as ours. */
static void reader_main(int port, int count, int cpu)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        sched_setaffinity(0, sizeof(set), &set);
    }
    int epoll = epoll_create1(0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int index = 0; index < count; index++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&address, sizeof(address)) != 0) {
            fprintf(stderr, "pg-dispatch: reader: connect: %s\n", strerror(errno));
            _exit(1);
        }
        struct epoll_event event = {.events = EPOLLIN, .data.fd = fd};
        epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event);
    }
    int open = count;
    char buffer[65536];
    struct epoll_event events[64];
    while (open > 0) {
        int ready = epoll_wait(epoll, events, 64, -1);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready < 0)
            _exit(1);
        for (int index = 0; index < ready; index++) {
            ssize_t got = read(events[index].data.fd, buffer, sizeof(buffer));
            if (got <= 0 && !(got < 0 && errno == EAGAIN)) {
                close(events[index].data.fd);
                open--;
            }
        }
    }
    _exit(0);
}

/* Before the loop and any thread exist: the reader forks from a process of one thread. */
static void sinks_connect(bench_t *bench)
{
    int count = bench->options.sockets;
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = 0};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (listener < 0 || bind(listener, (struct sockaddr *)&address, sizeof(address)) != 0 ||
        listen(listener, count) != 0 ||
        getsockname(listener, (struct sockaddr *)&address, &length) != 0)
        die("fan-out: cannot listen on the loopback: %s", strerror(errno));
    fflush(NULL);
    bench->reader = fork();
    if (bench->reader < 0)
        die("fork: %s", strerror(errno));
    if (bench->reader == 0) {
        close(listener);
        reader_main(ntohs(address.sin_port), count, bench->options.reader_cpu);
    }
    bench->sinks = calloc((size_t)count, sizeof(sink_t));
    if (bench->sinks == NULL)
        die("out of memory");
    for (int index = 0; index < count; index++) {
        struct pollfd wait = {listener, POLLIN, 0};
        if (poll(&wait, 1, 10000) != 1)
            die("fan-out: the reader connected %d of %d sockets in 10 s", index, count);
        int fd = accept(listener, NULL, NULL);
        if (fd < 0)
            die("fan-out: accept: %s", strerror(errno));
        bench->sinks[index].fd = fd; /* opened into the loop by sinks_open */
    }
    close(listener);
    bench->sink_count = count;
}

static void sinks_open(bench_t *bench)
{
    for (int index = 0; index < bench->sink_count; index++) {
        int fd = bench->sinks[index].fd;
        uv_tcp_t *tcp = &bench->sinks[index].tcp;
        if (uv_tcp_init(bench->loop, tcp) != 0 || uv_tcp_open(tcp, fd) != 0 ||
            uv_tcp_nodelay(tcp, 1) != 0)
            die("fan-out: cannot open socket %d", index);
    }
}

/* ---- Run and report ------------------------------------------------------------------------ */

static void stop_all(bench_t *bench)
{
    if (bench->draining == 2)
        return;
    bench->draining = 2;
    window_close(bench);
    uv_timer_stop(&bench->drain);
    uv_stop(bench->loop);
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double percentile_us(const uint64_t *sorted, size_t count, double fraction)
{
    if (count == 0)
        return 0;
    size_t index = (size_t)(fraction * (double)count);
    if (index >= count)
        index = count - 1;
    return (double)sorted[index] / 1000.0;
}

static double timeval_ms(struct timeval end, struct timeval start)
{
    return (double)(end.tv_sec - start.tv_sec) * 1000.0 +
           (double)(end.tv_usec - start.tv_usec) / 1000.0;
}

static void report(bench_t *bench)
{
    const options_t *o = &bench->options;
    size_t count = bench->completed;
    qsort(bench->latencies_ns, count, sizeof(uint64_t), compare_u64);
    double requests = count > 0 ? (double)count : 1;
    double user_ms = timeval_ms(bench->usage_end.ru_utime, bench->usage_start.ru_utime);
    double sys_ms = timeval_ms(bench->usage_end.ru_stime, bench->usage_start.ru_stime);
    double window_s = (double)(bench->window_end_ns - bench->window_start_ns) / 1e9;
    long voluntary = bench->usage_end.ru_nvcsw - bench->usage_start.ru_nvcsw;
    long involuntary = bench->usage_end.ru_nivcsw - bench->usage_start.ru_nivcsw;
    double backend_ms = (double)(bench->backend_ticks_end - bench->backend_ticks_start) * 1000.0 /
                        (double)sysconf(_SC_CLK_TCK);
    uint64_t batches = 0, batched = 0, behind = 0;
    for (int index = 0; index < o->connections; index++) {
        batches += bench->lanes[index].batches;
        batched += bench->lanes[index].batched;
        behind += bench->lanes[index].behind;
    }
    printf("design=%s connections=%d rate=%.0f fanout=%d count=%zu lost=%zu"
           " p50_us=%.0f p90_us=%.0f p99_us=%.0f p999_us=%.0f max_us=%.0f"
           " cpu_pct=%.1f user_us_per_req=%.1f sys_us_per_req=%.1f loop_us_per_req=%.1f"
           " vcsw_per_req=%.2f ivcsw_per_req=%.3f backend_cpu_us_per_req=%.1f"
           " batch_mean=%.2f behind_pct=%.1f partial_writes=%" PRIu64 "\n",
           o->design == DESIGN_LOOP ? "loop" : "threads", o->connections, o->rate, o->fanout, count,
           bench->counted - count, percentile_us(bench->latencies_ns, count, 0.50),
           percentile_us(bench->latencies_ns, count, 0.90),
           percentile_us(bench->latencies_ns, count, 0.99),
           percentile_us(bench->latencies_ns, count, 0.999),
           count > 0 ? (double)bench->latencies_ns[count - 1] / 1000.0 : 0,
           window_s > 0 ? (user_ms + sys_ms) / 10.0 / window_s : 0, user_ms * 1000.0 / requests,
           sys_ms * 1000.0 / requests,
           (double)(bench->loop_cpu_end_ns - bench->loop_cpu_start_ns) / 1000.0 / requests,
           (double)voluntary / requests, (double)involuntary / requests,
           backend_ms * 1000.0 / requests, batches > 0 ? (double)batched / (double)batches : 0,
           batches > 0 ? 100.0 * (double)behind / (double)batches : 0, bench->partial_writes);
}

static void on_closed(uv_handle_t *handle)
{
    (void)handle;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: pg-dispatch --url URL --setup [--rooms R] [--users U]\n"
            "       pg-dispatch --url URL --design loop|threads [--connections K (4)]\n"
            "         [--rate MSG/S (2000)] [--rooms R (1000)] [--users U (10000)]\n"
            "         [--duration S (10)] [--warmup S (3)] [--fanout N (0)] [--sockets S (1000)]\n"
            "         [--reader-cpu C]\n"
            "Prints one line: latency from when each request was due to when the loop learned\n"
            "of its COMMIT (us), lost, and this process's CPU and context switches per request.\n");
}

static int parse_options(int argc, char **argv, options_t *o)
{
    *o = (options_t){NULL, DESIGN_LOOP, 4, 2000, 1000, 10000, 10, 3, 0, 1000, -1, 0};
    int design_given = 0;
    static const struct option long_options[] = {
        {"url", required_argument, NULL, 'u'},
        {"design", required_argument, NULL, 'd'},
        {"connections", required_argument, NULL, 'k'},
        {"rate", required_argument, NULL, 'r'},
        {"rooms", required_argument, NULL, 'R'},
        {"users", required_argument, NULL, 'U'},
        {"duration", required_argument, NULL, 't'},
        {"warmup", required_argument, NULL, 'w'},
        {"fanout", required_argument, NULL, 'f'},
        {"sockets", required_argument, NULL, 's'},
        {"reader-cpu", required_argument, NULL, 'c'},
        {"setup", no_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int option;
    while ((option = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
        switch (option) {
        case 'u':
            o->url = optarg;
            break;
        case 'd':
            design_given = 1;
            if (strcmp(optarg, "loop") == 0)
                o->design = DESIGN_LOOP;
            else if (strcmp(optarg, "threads") == 0)
                o->design = DESIGN_THREADS;
            else
                return -1;
            break;
        case 'k':
            o->connections = atoi(optarg);
            break;
        case 'r':
            o->rate = atof(optarg);
            break;
        case 'R':
            o->rooms = atoi(optarg);
            break;
        case 'U':
            o->users = atoi(optarg);
            break;
        case 't':
            o->duration_s = atof(optarg);
            break;
        case 'w':
            o->warmup_s = atof(optarg);
            break;
        case 'f':
            o->fanout = atoi(optarg);
            break;
        case 's':
            o->sockets = atoi(optarg);
            break;
        case 'c':
            o->reader_cpu = atoi(optarg);
            break;
        case 'S':
            o->setup = 1;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            return -1;
        }
    }
    if (optind != argc || o->url == NULL || (!o->setup && !design_given))
        return -1;
    if (o->connections < 1 || o->connections > 64 || o->rate <= 0 || o->rate > 1e6 ||
        o->rooms < 1 || o->users < 1 || o->duration_s <= 0 || o->warmup_s < 0 || o->fanout < 0 ||
        o->sockets < 1 || o->fanout > o->sockets || (o->duration_s + o->warmup_s) * o->rate > 1e8)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    bench_t *bench = calloc(1, sizeof(*bench));
    if (bench == NULL)
        die("out of memory");
    if (parse_options(argc, argv, &bench->options) != 0) {
        usage(stderr);
        free(bench);
        return 2;
    }
    options_t *o = &bench->options;
    signal(SIGPIPE, SIG_IGN);
    if (o->setup) {
        setup(o);
        free(bench);
        return 0;
    }

    /* The schedule, fixed in advance: request i is due at start + i / rate, to a room and from
     * a sender drawn from a fixed sequence, the same for both designs. */
    bench->total = (size_t)((o->warmup_s + o->duration_s) * o->rate);
    bench->first_counted = (size_t)(o->warmup_s * o->rate);
    bench->counted = bench->total - bench->first_counted;
    bench->requests = calloc(bench->total, sizeof(request_t));
    bench->latencies_ns = calloc(bench->counted + 1, sizeof(uint64_t));
    bench->lanes = calloc((size_t)o->connections, sizeof(lane_t));
    if (bench->requests == NULL || bench->latencies_ns == NULL || bench->lanes == NULL)
        die("out of memory");
    uint64_t state = 0x9e3779b97f4a7c15ull;
    for (size_t index = 0; index < bench->total; index++) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        request_t *request = &bench->requests[index];
        request->serial = (uint32_t)index;
        request->room = (uint32_t)(state % (uint64_t)o->rooms);
        request->sender = (uint32_t)((state >> 32) % (uint64_t)o->users);
        request->counted = index >= bench->first_counted;
    }
    /* Message ids unique across runs on one table (a UNIQUE column, as sioc's). */
    snprintf(bench->nonce, sizeof(bench->nonce), "%08lx",
             (unsigned long)((uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16)) & 0xffffffffUL);
    memset(bench->frame, 'x', FRAME_BYTES);
    bench->frame[0] = (char)0x81; /* a WebSocket text frame of 118 bytes, as a delivery is */
    bench->frame[1] = 118;

    if (o->fanout > 0)
        sinks_connect(bench);
    for (int index = 0; index < o->connections; index++) {
        lane_t *lane = &bench->lanes[index];
        lane->bench = bench;
        lane->index = index;
        lane->wake_fd = -1;
        lane_open(lane, o);
    }

    bench->loop = uv_default_loop();
    bench->loop->data = bench;
    if (o->fanout > 0)
        sinks_open(bench);
    for (int index = 0; index < o->connections; index++) {
        lane_t *lane = &bench->lanes[index];
        if (o->design == DESIGN_LOOP) {
            if (uv_poll_init_socket(bench->loop, &lane->poll, PQsocket(lane->conn)) != 0)
                die("connection %d: cannot poll its socket", index);
            lane->poll.data = lane;
            lane_watch(bench, lane);
            continue;
        }
        lane->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (lane->wake_fd < 0 || pthread_mutex_init(&lane->mutex, NULL) != 0 ||
            pthread_cond_init(&lane->wake, NULL) != 0 ||
            uv_async_init(bench->loop, &lane->async, on_lane_done) != 0)
            die("connection %d: cannot set up its worker", index);
        lane->async.data = lane;
        if (pthread_create(&lane->thread, NULL, worker_main, lane) != 0)
            die("connection %d: cannot start its worker", index);
    }
    uv_timer_init(bench->loop, &bench->pace);
    uv_timer_init(bench->loop, &bench->drain);
    bench->start_ns = uv_hrtime() + 10 * 1000000ull;
    for (size_t index = 0; index < bench->total; index++)
        bench->requests[index].due_ns = bench->start_ns + (uint64_t)((double)index * 1e9 / o->rate);
    /* Every millisecond, libuv's finest: what fell due meanwhile goes out, late by up to 1 ms
     * in both designs alike. */
    uv_timer_start(&bench->pace, on_pace, 10, 1);
    uv_run(bench->loop, UV_RUN_DEFAULT);

    /* Stopped: the workers finish what is in flight and exit; the handles close. */
    for (int index = 0; index < o->connections; index++) {
        lane_t *lane = &bench->lanes[index];
        if (o->design == DESIGN_THREADS) {
            pthread_mutex_lock(&lane->mutex);
            lane->stopping = 1;
            pthread_cond_signal(&lane->wake);
            pthread_mutex_unlock(&lane->mutex);
            uint64_t one = 1;
            ssize_t written = write(lane->wake_fd, &one, sizeof(one));
            (void)written;
        }
    }
    report(bench);
    fflush(stdout);
    size_t lost = bench->counted - bench->completed;
    if (lost > 0) {
        /* A worker may still wait on a backend that never answers: do not join it. */
        fprintf(stderr, "pg-dispatch: %zu requests not completed %d ms after the last was due\n",
                lost, DRAIN_MS);
        _exit(3);
    }
    for (int index = 0; index < o->connections; index++) {
        lane_t *lane = &bench->lanes[index];
        if (o->design == DESIGN_THREADS) {
            pthread_join(lane->thread, NULL);
            uv_close((uv_handle_t *)&lane->async, on_closed);
            close(lane->wake_fd);
        } else {
            uv_close((uv_handle_t *)&lane->poll, on_closed);
        }
    }
    for (int index = 0; index < bench->sink_count; index++)
        uv_close((uv_handle_t *)&bench->sinks[index].tcp, on_closed);
    uv_close((uv_handle_t *)&bench->pace, on_closed);
    uv_close((uv_handle_t *)&bench->drain, on_closed);
    uv_run(bench->loop, UV_RUN_DEFAULT);
    uv_loop_close(bench->loop);
    for (int index = 0; index < o->connections; index++)
        PQfinish(bench->lanes[index].conn);
    if (bench->reader > 0)
        waitpid(bench->reader, NULL, 0);
    free(bench->sinks);
    free(bench->lanes);
    free(bench->latencies_ns);
    free(bench->requests);
    free(bench);
    return 0;
}
