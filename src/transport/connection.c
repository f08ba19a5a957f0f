#include "transport/connection.h"

#include <stdlib.h>
#include <string.h>

#include <sanitizer/asan_interface.h>

/* Slices handed to libuv in one uv_write; released together when it completes. */
typedef struct write_request_s {
    uv_write_t request;
    sioc__conn_t *conn;
    size_t bytes;
    uint32_t slice_count;
    sioc__conn_slice_t slices[];
} write_request_t;

static void flush_connection(sioc__conn_t *conn);
static void finish_close(sioc__conn_t *conn);
static void shut_down(sioc__conn_t *conn);
static void update_reading(sioc__conn_t *conn);
static void mark_dirty(sioc__conn_t *conn);
static void tls_deliver(sioc__conn_t *conn);

/* What only a lingering close needs, apart from the connection (an idle one holds none); freed
 * with the connection, after libuv let go of the shutdown request. */
struct sioc__conn_closing_s {
    uv_shutdown_t shutdown;
    sioc__deadline_t linger;
    sioc__conn_t *conn;
    size_t discarded_bytes; /* read and dropped while closing */
    uint8_t shutdown_started;
};

static void on_linger_expired(sioc__deadline_list_t *list, sioc__deadline_t *deadline)
{
    struct sioc__conn_closing_s *closing =
        (struct sioc__conn_closing_s *)((char *)deadline -
                                        offsetof(struct sioc__conn_closing_s, linger));
    finish_close(closing->conn);
}

static void flush_all(sioc__io_t *io)
{
    for (int i = 0; i < io->hook_count; i++)
        io->hooks[i].callback(io->hooks[i].data);
    /* Detach the list first: flushing may close a connection or mark another dirty. */
    while (io->dirty_head != NULL) {
        sioc__conn_t *conn = io->dirty_head;
        io->dirty_head = conn->next_dirty;
        conn->next_dirty = NULL;
        conn->dirty = 0;
        if (!conn->closing || conn->close_after_flush)
            flush_connection(conn);
    }
}

static void on_prepare(uv_prepare_t *handle)
{
    flush_all(handle->data);
}

static void on_check(uv_check_t *handle)
{
    flush_all(handle->data);
}

/* Hands kept TLS input to the connections whose handlers resumed reading (update_reading). */
static void on_tls_idle(uv_idle_t *idle)
{
    sioc__io_t *io = idle->data;
    sioc__conn_t *list = io->tls_ready_head;
    io->tls_ready_head = NULL;
    /* A connection closed meanwhile is freed only in a later close callback. */
    while (list != NULL) {
        sioc__conn_t *conn = list;
        list = conn->next_tls_ready;
        conn->next_tls_ready = NULL;
        conn->tls_ready = 0;
        if (!conn->closing && !conn->paused) {
            tls_deliver(conn);
            update_reading(conn);
        }
    }
    if (io->tls_ready_head == NULL)
        uv_idle_stop(idle);
}

static void schedule_tls_input(sioc__conn_t *conn)
{
    if (conn->tls_ready)
        return;
    conn->tls_ready = 1;
    conn->next_tls_ready = conn->io->tls_ready_head;
    conn->io->tls_ready_head = conn;
    uv_idle_start(&conn->io->tls_idle, on_tls_idle);
}

int sioc__io_init(sioc__io_t *io, uv_loop_t *loop)
{
    memset(io, 0, offsetof(sioc__io_t, read_buffer));
    io->loop = loop;
    int rc = uv_prepare_init(loop, &io->prepare);
    if (rc != 0)
        return rc;
    rc = uv_check_init(loop, &io->check);
    if (rc != 0)
        return rc;
    rc = uv_idle_init(loop, &io->tls_idle);
    if (rc != 0)
        return rc;
    io->tls_idle.data = io;
    rc = sioc__deadline_list_init(loop, &io->linger, SIOC_LINGER_MS, on_linger_expired);
    if (rc != 0)
        return rc;
    uv_unref((uv_handle_t *)&io->linger.timer);
    io->prepare.data = io->check.data = io;
    uv_prepare_start(&io->prepare, on_prepare);
    uv_check_start(&io->check, on_check);
    /* These handles must not keep the loop alive on their own. */
    uv_unref((uv_handle_t *)&io->prepare);
    uv_unref((uv_handle_t *)&io->check);
    return 0;
}

#define SPARE_QUEUE_BYTES (SIOC_QUEUE_INITIAL * sizeof(sioc__conn_slice_t))

/* A spare queue is poisoned under AddressSanitizer (the macros are empty otherwise), so that a
 * write into a queue given back is still reported, as it was when the queue went to free(). */
static sioc__conn_slice_t *take_spare_queue(sioc__io_t *io)
{
    sioc__conn_slice_t *queue = io->spare_queues[--io->spare_queue_count];
    ASAN_UNPOISON_MEMORY_REGION(queue, SPARE_QUEUE_BYTES);
    return queue;
}

static void on_io_handle_closed(uv_handle_t *handle)
{
    sioc__io_t *io = handle->data;
    if (--io->handles_closing > 0)
        return;
    while (io->spare_queue_count > 0)
        free(take_spare_queue(io));
    if (io->closed_cb != NULL)
        io->closed_cb(io);
}

void sioc__io_close(sioc__io_t *io, void (*closed_cb)(sioc__io_t *io))
{
    io->closed_cb = closed_cb;
    io->handles_closing = 4;
    io->linger.timer.data = io;
    uv_close((uv_handle_t *)&io->prepare, on_io_handle_closed);
    uv_close((uv_handle_t *)&io->tls_idle, on_io_handle_closed);
    uv_close((uv_handle_t *)&io->check, on_io_handle_closed);
    sioc__deadline_list_close(&io->linger, on_io_handle_closed);
}

int sioc__io_add_flush_hook(sioc__io_t *io, sioc__io_flush_hook_cb callback, void *data)
{
    if (io->hook_count == (int)(sizeof(io->hooks) / sizeof(io->hooks[0])))
        return UV_ENOBUFS;
    io->hooks[io->hook_count].callback = callback;
    io->hooks[io->hook_count].data = data;
    io->hook_count++;
    return 0;
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    sioc__conn_t *conn = handle->data;
    /* One read is handled completely before libuv asks for the next buffer, so one buffer per
     * loop serves every connection. */
    buf->base = (char *)conn->io->read_buffer;
    buf->len = sizeof(conn->io->read_buffer);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    sioc__conn_t *conn = stream->data;
    if (nread > 0) {
        if (!conn->closing && conn->tls != NULL) {
            if (sioc__tls_set_input(conn->tls, (uint8_t *)buf->base, (size_t)nread) != 0)
                sioc__conn_close(conn, 0);
            else
                tls_deliver(conn);
            return;
        }
        if (!conn->closing) {
            conn->handler->on_read(conn, (uint8_t *)buf->base, (size_t)nread);
            /* The answers to what was read are not read away: stop until they leave. */
            if (!conn->closing && sioc__conn_over_cap(conn))
                sioc__conn_wait_drain(conn);
            return;
        }
        /* Lingering close: input is read only to be discarded, and not for ever. */
        if (conn->lingering == NULL)
            return; /* an abort: libuv has stopped reading */
        conn->lingering->discarded_bytes += (size_t)nread;
        if (conn->lingering->discarded_bytes > SIOC_LINGER_MAX_BYTES)
            sioc__conn_pause_reading(conn);
        return;
    }
    if (nread == 0)
        return;
    conn->peer_closed = 1;
    if (conn->closing && conn->close_after_flush && sioc__conn_buffered_bytes(conn) > 0)
        return; /* our answer is still leaving; the flush finishes the close */
    sioc__conn_close(conn, nread == UV_EOF);
    if (conn->closing && sioc__conn_buffered_bytes(conn) == 0)
        finish_close(conn);
}

/* Decrypts the input and hands it to the handler, record by record, while it takes more; what
 * it paused on is kept for update_reading. */
static void tls_deliver(sioc__conn_t *conn)
{
    sioc__tls_t *tls = conn->tls;
    while (!conn->closing && !conn->paused) {
        int length = sioc__tls_read(tls, conn->io->tls_plaintext, sizeof(conn->io->tls_plaintext));
        if (length > 0) {
            conn->handler->on_read(conn, conn->io->tls_plaintext, (size_t)length);
            if (!conn->closing && sioc__conn_over_cap(conn))
                sioc__conn_wait_drain(conn);
            continue;
        }
        /* The peer's close_notify is answered with ours; a failure sends OpenSSL's alert. */
        if (length != SIOC__TLS_WANT_INPUT)
            sioc__conn_close(conn, 1);
        break;
    }
    if (sioc__tls_keep_input(tls) != 0)
        sioc__conn_close(conn, 0);
    if (sioc__tls_has_output(tls))
        mark_dirty(conn); /* handshake records, tickets, an alert */
}

sioc__conn_t *sioc__conn_accept(sioc__io_t *io, uv_stream_t *server,
                                const sioc__conn_handler_t *handler, void *owner,
                                SSL_CTX *tls_context)
{
    sioc__conn_t *conn = calloc(1, sizeof(*conn) + io->conn_room);
    if (conn == NULL)
        return NULL;
    if (tls_context != NULL && (conn->tls = sioc__tls_new(tls_context)) == NULL) {
        free(conn);
        return NULL;
    }
    if (uv_tcp_init(io->loop, &conn->tcp) != 0) {
        sioc__tls_free(conn->tls);
        free(conn);
        return NULL;
    }
    conn->io = io;
    conn->handler = handler;
    conn->owner = owner;
    conn->tcp.data = conn;
    if (uv_accept(server, (uv_stream_t *)&conn->tcp) != 0) {
        conn->closing = 1;
        sioc__tls_free(conn->tls);
        uv_close((uv_handle_t *)&conn->tcp, (uv_close_cb)free);
        return NULL;
    }
    uv_tcp_nodelay(&conn->tcp, 1);
    sioc__conn_resume_reading(conn);
    return conn;
}

static void mark_dirty(sioc__conn_t *conn)
{
    if (conn->dirty)
        return;
    conn->dirty = 1;
    conn->next_dirty = conn->io->dirty_head;
    conn->io->dirty_head = conn;
}

/* Gives conn an empty queue of SIOC_QUEUE_INITIAL slices, a spare one if the loop has it.
 * Returns 0 or -1. */
static int take_queue(sioc__conn_t *conn)
{
    sioc__io_t *io = conn->io;
    conn->queue = io->spare_queue_count > 0 ? take_spare_queue(io)
                                            : malloc(SIOC_QUEUE_INITIAL * sizeof(*conn->queue));
    if (conn->queue == NULL)
        return -1;
    conn->queue_capacity = SIOC_QUEUE_INITIAL;
    return 0;
}

/* Takes conn's empty queue away: kept as a spare if it has the initial size and the loop has
 * room, else freed (a grown queue was a burst, and would hold its size for every later use). */
static void give_queue(sioc__conn_t *conn)
{
    sioc__io_t *io = conn->io;
    if (conn->queue_capacity == SIOC_QUEUE_INITIAL && io->spare_queue_count < SIOC_SPARE_QUEUES) {
        ASAN_POISON_MEMORY_REGION(conn->queue, SPARE_QUEUE_BYTES);
        io->spare_queues[io->spare_queue_count++] = conn->queue;
    } else
        free(conn->queue);
    conn->queue = NULL;
    conn->queue_capacity = 0;
}

/* Closing, or TLS before its handshake finished: no application bytes can go out. */
static int refuses_writes(const sioc__conn_t *conn)
{
    return conn->closing || (conn->tls != NULL && !sioc__tls_ready(conn->tls));
}

/* The backstop of connection.h: a layer that writes on past twice the cap is cut off, as is a
 * write that would take the unsent bytes past SIOC_CONN_MAX_UNSENT. */
static int over_hard_cap(sioc__conn_t *conn, size_t length)
{
    size_t buffered = sioc__conn_buffered_bytes(conn);
    if (length <= SIOC_CONN_MAX_UNSENT - buffered &&
        (conn->max_buffered_bytes == 0 || buffered <= 2 * (size_t)conn->max_buffered_bytes))
        return 0;
    sioc__conn_close(conn, 0);
    return 1;
}

/* Appends to the buffer of small copies at the end of the queue; 0, or -1 if it has no room. */
static int append_copy(sioc__conn_t *conn, const void *bytes, size_t length)
{
    if (!conn->copy_tail || length > conn->copy_room)
        return -1;
    sioc__conn_slice_t *slice = &conn->queue[conn->queue_length - 1];
    memcpy(slice->bytes.base + slice->bytes.len, bytes, length);
    slice->bytes.len += (unsigned)length;
    conn->copy_room -= (uint16_t)length;
    conn->queued_bytes += (uint32_t)length;
    mark_dirty(conn);
    return 0;
}

int sioc__conn_write(sioc__conn_t *conn, sioc__buffer_t *buffer, const uint8_t *bytes,
                     size_t length)
{
    if (refuses_writes(conn))
        return -1;
    if (length == 0)
        return 0;
    if (over_hard_cap(conn, length))
        return -1;
    conn->copy_tail = 0;
    if (conn->queue_capacity == 0) {
        if (take_queue(conn) != 0)
            return -1;
    } else if (conn->queue_length == conn->queue_capacity) {
        uint32_t capacity = conn->queue_capacity * 2;
        sioc__conn_slice_t *queue = realloc(conn->queue, capacity * sizeof(*queue));
        if (queue == NULL)
            return -1;
        conn->queue = queue;
        conn->queue_capacity = capacity;
    }
    sioc__conn_slice_t *slice = &conn->queue[conn->queue_length++];
    slice->buffer = sioc__buffer_ref(buffer);
    slice->bytes = uv_buf_init((char *)bytes, (unsigned)length);
    conn->queued_bytes += (uint32_t)length;
    mark_dirty(conn);
    return 0;
}

int sioc__conn_write_copy(sioc__conn_t *conn, const void *bytes, size_t length)
{
    if (refuses_writes(conn))
        return -1;
    if (length == 0)
        return 0;
    if (over_hard_cap(conn, length))
        return -1;
    if (append_copy(conn, bytes, length) == 0)
        return 0;
    int small = length <= SIOC_COALESCE_SIZE / 2;
    sioc__buffer_t *buffer = sioc__buffer_new(small ? SIOC_COALESCE_SIZE : length, 0);
    if (buffer == NULL)
        return -1;
    memcpy(buffer->data, bytes, length);
    int rc = sioc__conn_write(conn, buffer, buffer->data, length);
    if (rc == 0 && small) {
        conn->copy_tail = 1; /* the queue holds the only other reference */
        conn->copy_room = (uint16_t)(SIOC_COALESCE_SIZE - length);
    }
    sioc__buffer_unref(buffer);
    return rc;
}

int sioc__conn_write_droppable(sioc__conn_t *conn, const void *bytes, size_t length)
{
    if (refuses_writes(conn))
        return -1;
    if (conn->max_buffered_bytes > 0 &&
        sioc__conn_buffered_bytes(conn) + length > conn->max_buffered_bytes)
        return 1;
    return sioc__conn_write_copy(conn, bytes, length);
}

/* Backpressure ends at half the cap, so that reading does not flap around the cap. */
static void check_drained(sioc__conn_t *conn)
{
    if (!(conn->paused & SIOC__CONN_PAUSED_FOR_DRAIN) || conn->closing ||
        sioc__conn_buffered_bytes(conn) > conn->max_buffered_bytes / 2)
        return;
    conn->paused &= (uint8_t)~SIOC__CONN_PAUSED_FOR_DRAIN;
    update_reading(conn);
    if (conn->handler->on_drain != NULL)
        conn->handler->on_drain(conn);
}

static void release_queue(sioc__conn_t *conn)
{
    conn->copy_tail = 0;
    for (uint32_t i = 0; i < conn->queue_length; i++)
        sioc__buffer_unref(conn->queue[i].buffer);
    conn->queue_length = 0;
    conn->queued_bytes = 0;
    if (conn->queue != NULL)
        give_queue(conn);
}

static void on_write(uv_write_t *request, int status)
{
    write_request_t *write = (write_request_t *)request;
    sioc__conn_t *conn = write->conn;
    for (uint32_t i = 0; i < write->slice_count; i++)
        sioc__buffer_unref(write->slices[i].buffer);
    conn->in_flight_bytes -= (uint32_t)write->bytes;
    free(write);
    if (status < 0) {
        sioc__conn_close(conn, 0);
        return;
    }
    /* Dirty: a close (and with TLS its close_notify) still waits for the next flush. */
    if (conn->close_after_flush && sioc__conn_buffered_bytes(conn) == 0 && !conn->dirty)
        shut_down(conn);
    else
        check_drained(conn);
}

/* Hands the rest of the queue, from slice first on, to uv_write. */
static int write_remaining(sioc__conn_t *conn, uint32_t first)
{
    conn->copy_tail = 0; /* libuv may read it from now on: nothing is appended any more */
    uint32_t count = conn->queue_length - first;
    write_request_t *write = malloc(sizeof(*write) + count * sizeof(sioc__conn_slice_t));
    uv_buf_t small[16] = {{0}};
    uv_buf_t *bufs = count <= 16 ? small : malloc(count * sizeof(uv_buf_t));
    if (write == NULL || bufs == NULL) {
        free(write);
        if (bufs != small)
            free(bufs);
        return -1;
    }
    write->conn = conn;
    write->slice_count = count;
    write->bytes = 0;
    for (uint32_t i = 0; i < count; i++) {
        write->slices[i] = conn->queue[first + i];
        bufs[i] = write->slices[i].bytes;
        write->bytes += bufs[i].len;
    }
    int rc = uv_write(&write->request, (uv_stream_t *)&conn->tcp, bufs, count, on_write);
    if (bufs != small)
        free(bufs);
    if (rc != 0) {
        /* The slices stay owned by the queue, which release_queue() drops. */
        free(write);
        return -1;
    }
    conn->in_flight_bytes += (uint32_t)write->bytes;
    conn->queue_length = first; /* the request owns those references now */
    return 0;
}

/* Tries to write synchronously; what the kernel does not take goes to one uv_write. */
static int try_write(sioc__conn_t *conn)
{
    conn->copy_tail = 0;
    uv_buf_t small[16];
    uint32_t count = conn->queue_length;
    uv_buf_t *bufs = count <= 16 ? small : malloc(count * sizeof(uv_buf_t));
    if (bufs == NULL)
        return -1;
    for (uint32_t i = 0; i < count; i++)
        bufs[i] = conn->queue[i].bytes;
    int written = uv_try_write((uv_stream_t *)&conn->tcp, bufs, count);
    if (bufs != small)
        free(bufs);
    if (written == UV_EAGAIN)
        written = 0;
    if (written < 0)
        return -1;
    size_t left = (size_t)written;
    uint32_t done = 0;
    while (done < count && left >= conn->queue[done].bytes.len) {
        left -= conn->queue[done].bytes.len;
        sioc__buffer_unref(conn->queue[done].buffer);
        done++;
    }
    if (done < count) {
        conn->queue[done].bytes.base += left;
        conn->queue[done].bytes.len -= left;
    }
    conn->queued_bytes -= (uint32_t)written;
    memmove(conn->queue, conn->queue + done, (count - done) * sizeof(sioc__conn_slice_t));
    conn->queue_length = count - done;
    if (conn->queue_length > 0 && write_remaining(conn, 0) != 0)
        return -1;
    conn->queue_length = 0;
    conn->queued_bytes = 0;
    return 0;
}

/* Replaces the queued plaintext by the records it encrypts to, after what the handshake made,
 * and before our close_notify when closing: one slice, which the cap counts from now on. */
static int encrypt_queue(sioc__conn_t *conn)
{
    sioc__tls_t *tls = conn->tls;
    int rc = 0;
    for (uint32_t i = 0; i < conn->queue_length; i++) {
        /* After a failure (only an alert leaves) what was queued is dropped. */
        if (rc == 0 && sioc__tls_ready(tls))
            rc = sioc__tls_write(tls, conn->queue[i].bytes.base, conn->queue[i].bytes.len);
        sioc__buffer_unref(conn->queue[i].buffer);
    }
    conn->queue_length = 0;
    conn->queued_bytes = 0;
    conn->copy_tail = 0;
    if (conn->close_after_flush)
        sioc__tls_shutdown(tls);
    size_t length;
    sioc__buffer_t *records = sioc__tls_take_output(tls, &length);
    if (records == NULL)
        return rc;
    if (conn->queue_capacity == 0 && take_queue(conn) != 0) {
        sioc__buffer_unref(records);
        return -1;
    }
    conn->queue[0].buffer = records; /* the queue takes take_output's reference */
    conn->queue[0].bytes = uv_buf_init((char *)records->data, (unsigned)length);
    conn->queue_length = 1;
    conn->queued_bytes = (uint32_t)length;
    return rc;
}

static void flush_connection(sioc__conn_t *conn)
{
    if (conn->tls != NULL && encrypt_queue(conn) != 0) {
        sioc__conn_close(conn, 0);
        return;
    }
    if (conn->queue_length > 0) {
        /* libuv keeps write order: while earlier writes are in flight, queue behind them. */
        int rc = conn->in_flight_bytes > 0 ? write_remaining(conn, 0) : try_write(conn);
        if (rc != 0) {
            sioc__conn_close(conn, 0);
            return;
        }
        conn->queue_length = 0;
        conn->queued_bytes = 0;
    }
    if (conn->queue != NULL)
        give_queue(conn);
    if (conn->close_after_flush && conn->in_flight_bytes == 0)
        shut_down(conn);
    else
        check_drained(conn);
}

static void stop_reading(sioc__conn_t *conn)
{
    if (conn->reading) {
        uv_read_stop((uv_stream_t *)&conn->tcp);
        conn->reading = 0;
    }
}

static void start_reading(sioc__conn_t *conn)
{
    if (!conn->reading && !conn->peer_closed &&
        uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read) == 0)
        conn->reading = 1;
}

/* While closing, reading is the lingering close's business (sioc__conn_close, on_read). TLS
 * input kept while paused goes in first; libuv reads again once it is consumed. */
static void update_reading(sioc__conn_t *conn)
{
    if (conn->closing)
        return;
    if (conn->paused)
        stop_reading(conn);
    else if (conn->tls != NULL && sioc__tls_has_input(conn->tls))
        schedule_tls_input(conn);
    else
        start_reading(conn);
}

void sioc__conn_pause_reading(sioc__conn_t *conn)
{
    if (conn->closing) {
        stop_reading(conn);
        return;
    }
    conn->paused |= SIOC__CONN_PAUSED_BY_OWNER;
    update_reading(conn);
}

void sioc__conn_resume_reading(sioc__conn_t *conn)
{
    conn->paused &= (uint8_t)~SIOC__CONN_PAUSED_BY_OWNER;
    update_reading(conn);
}

void sioc__conn_wait_drain(sioc__conn_t *conn)
{
    if (conn->max_buffered_bytes == 0)
        return;
    conn->paused |= SIOC__CONN_PAUSED_FOR_DRAIN;
    update_reading(conn);
}

static void unlink_tls_ready(sioc__conn_t *conn)
{
    sioc__conn_t **link = &conn->io->tls_ready_head;
    while (*link != NULL && *link != conn)
        link = &(*link)->next_tls_ready;
    if (*link == conn)
        *link = conn->next_tls_ready;
    conn->tls_ready = 0;
}

static void unlink_dirty(sioc__conn_t *conn)
{
    sioc__conn_t **link = &conn->io->dirty_head;
    while (*link != NULL && *link != conn)
        link = &(*link)->next_dirty;
    if (*link == conn)
        *link = conn->next_dirty;
    conn->dirty = 0;
}

static void on_shutdown(uv_shutdown_t *request, int status)
{
    sioc__conn_t *conn = request->data;
    conn->lingering->shutdown_started = 0;
    /* Our FIN is out; the peer's answers it. If it already came, or shutdown failed, done. */
    if (status < 0 || conn->peer_closed)
        finish_close(conn);
}

static void shut_down(sioc__conn_t *conn)
{
    struct sioc__conn_closing_s *closing = conn->lingering;
    if (uv_is_closing((uv_handle_t *)&conn->tcp) || (closing && closing->shutdown_started))
        return;
    if (closing == NULL || conn->peer_closed) {
        finish_close(conn);
        return;
    }
    closing->shutdown_started = 1;
    closing->shutdown.data = conn;
    if (uv_shutdown(&closing->shutdown, (uv_stream_t *)&conn->tcp, on_shutdown) != 0)
        finish_close(conn);
}

static void on_closed(uv_handle_t *handle)
{
    sioc__conn_t *conn = handle->data;
    if (conn->dirty)
        unlink_dirty(conn);
    if (conn->tls_ready)
        unlink_tls_ready(conn);
    if (conn->lingering != NULL)
        sioc__deadline_disarm(&conn->lingering->linger);
    free(conn->lingering);
    conn->lingering = NULL;
    release_queue(conn);
    sioc__tls_free(conn->tls);
    conn->tls = NULL;
    conn->handler->on_close(conn);
    free(conn);
}

static void finish_close(sioc__conn_t *conn)
{
    if (uv_is_closing((uv_handle_t *)&conn->tcp))
        return;
    uv_close((uv_handle_t *)&conn->tcp, on_closed);
}

void sioc__conn_close(sioc__conn_t *conn, int graceful)
{
    if (conn->closing) {
        if (!graceful)
            finish_close(conn);
        return;
    }
    conn->closing = 1;
    if (!graceful) {
        finish_close(conn);
        return;
    }
    conn->lingering = calloc(1, sizeof(*conn->lingering));
    if (conn->lingering == NULL) {
        finish_close(conn);
        return;
    }
    conn->lingering->conn = conn;
    conn->close_after_flush = 1;
    start_reading(conn);
    sioc__deadline_arm(&conn->io->linger, &conn->lingering->linger);
    mark_dirty(conn);
}

int sioc__conn_remote_address(sioc__conn_t *conn, char *out, size_t size)
{
    struct sockaddr_storage address;
    int length = sizeof(address);
    if (uv_tcp_getpeername(&conn->tcp, (struct sockaddr *)&address, &length) != 0)
        return -1;
    if (address.ss_family == AF_INET6)
        return uv_ip6_name((struct sockaddr_in6 *)&address, out, size) == 0 ? 0 : -1;
    return uv_ip4_name((struct sockaddr_in *)&address, out, size) == 0 ? 0 : -1;
}
