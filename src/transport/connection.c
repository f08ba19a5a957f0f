#include "transport/connection.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifdef IOV_MAX
_Static_assert(SIOC_WRITE_IOVECS <= IOV_MAX, "one writev takes at most IOV_MAX slices");
#endif

static void flush_connection(sioc__conn_t *conn);
static void finish_close(sioc__conn_t *conn);
static void shut_down(sioc__conn_t *conn);
static void update_reading(sioc__conn_t *conn);
static void mark_dirty(sioc__conn_t *conn);
static void tls_deliver(sioc__conn_t *conn);
static void on_poll(uv_poll_t *poll, int status, int events);

/* What only a lingering close needs, apart from the connection (an idle one holds none); freed
 * with the connection. */
struct sioc__conn_closing_s {
    sioc__deadline_t linger;
    sioc__conn_t *conn;
    size_t discarded_bytes; /* read and dropped while closing */
    uint8_t shut_down;      /* our FIN is out */
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
    rc = uv_timer_init(loop, &io->slab_timer);
    if (rc != 0)
        return rc;
    io->slab_timer.data = io;
    uv_unref((uv_handle_t *)&io->slab_timer);
    sioc__slab_init(&io->queue_slabs[0], SIOC_QUEUE_INITIAL * sizeof(sioc__conn_slice_t));
    for (int k = 1; k < SIOC_QUEUE_SLABS; k++)
        sioc__slab_init(&io->queue_slabs[k],
                        ((size_t)SIOC_QUEUE_BURST << (k - 1)) * sizeof(sioc__conn_slice_t));
    io->prepare.data = io->check.data = io;
    uv_prepare_start(&io->prepare, on_prepare);
    uv_check_start(&io->check, on_check);
    /* These handles must not keep the loop alive on their own. */
    uv_unref((uv_handle_t *)&io->prepare);
    uv_unref((uv_handle_t *)&io->check);
    return 0;
}

static void on_io_handle_closed(uv_handle_t *handle)
{
    sioc__io_t *io = handle->data;
    if (--io->handles_closing > 0)
        return;
    for (int k = 0; k < SIOC_QUEUE_SLABS; k++)
        sioc__slab_destroy(&io->queue_slabs[k]);
    if (io->closed_cb != NULL)
        io->closed_cb(io);
}

void sioc__io_close(sioc__io_t *io, void (*closed_cb)(sioc__io_t *io))
{
    io->closed_cb = closed_cb;
    io->handles_closing = 5;
    io->linger.timer.data = io;
    uv_close((uv_handle_t *)&io->slab_timer, on_io_handle_closed);
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

/* Starts or stops the poll for what the connection waits for (reading, writing). libuv does
 * not keep the events apart: a change costs epoll_ctl calls, so callers change a flag only
 * when it changes. */
static void update_poll(sioc__conn_t *conn)
{
    if (uv_is_closing((uv_handle_t *)&conn->poll))
        return;
    int events = (conn->reading ? UV_READABLE : 0) | (conn->writing ? UV_WRITABLE : 0);
    if (events == 0)
        uv_poll_stop(&conn->poll);
    else if (uv_poll_start(&conn->poll, events, on_poll) != 0)
        sioc__conn_close(conn, 0);
}

/* What read() made of a read into the io's buffer (bytes, or -errno as libuv's streams
 * report them, UV_EOF for the peer's FIN), as on_read of a uv_tcp_t had it. */
static void handle_input(sioc__conn_t *conn, ssize_t nread)
{
    uint8_t *data = conn->io->read_buffer;
    if (nread > 0) {
        if (!conn->closing && conn->tls != NULL) {
            if (sioc__tls_set_input(conn->tls, data, (size_t)nread) != 0)
                sioc__conn_close(conn, 0);
            else
                tls_deliver(conn);
            return;
        }
        if (!conn->closing) {
            conn->handler->on_read(conn, data, (size_t)nread);
            /* The answers to what was read are not read away: stop until they leave. */
            if (!conn->closing && sioc__conn_over_cap(conn))
                sioc__conn_wait_drain(conn);
            return;
        }
        /* Lingering close: input is read only to be discarded, and not for ever. */
        if (conn->lingering == NULL)
            return; /* an abort: the poll is closing */
        conn->lingering->discarded_bytes += (size_t)nread;
        if (conn->lingering->discarded_bytes > SIOC_LINGER_MAX_BYTES)
            sioc__conn_pause_reading(conn);
        return;
    }
    /* The socket stays readable after a FIN or an error (the poll is level-triggered): no more
     * reading. */
    conn->peer_closed = 1;
    if (conn->reading) {
        conn->reading = 0;
        update_poll(conn);
    }
    if (conn->closing && conn->close_after_flush && sioc__conn_buffered_bytes(conn) > 0)
        return; /* our answer is still leaving; the flush finishes the close */
    sioc__conn_close(conn, nread == UV_EOF);
    if (conn->closing && sioc__conn_buffered_bytes(conn) == 0)
        finish_close(conn);
}

/* Reads the readable socket into the io's buffer (one read is handled completely before the
 * next, so one buffer per loop serves every connection) while the connection reads, the
 * kernel has more and the reads of this wakeup last. A short read means the socket is
 * drained, as libuv takes it: no read only to hear EAGAIN. */
static void read_input(sioc__conn_t *conn)
{
    for (int i = 0; i < SIOC_READS_PER_WAKEUP; i++) {
        if (!conn->reading || uv_is_closing((uv_handle_t *)&conn->poll))
            return;
        ssize_t nread = read(conn->fd, conn->io->read_buffer, sizeof(conn->io->read_buffer));
        if (nread < 0 && errno == EINTR)
            continue;
        if (nread < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        handle_input(conn, nread > 0 ? nread : nread == 0 ? UV_EOF : -errno);
        if (nread < (ssize_t)sizeof(conn->io->read_buffer))
            return;
    }
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

sioc__conn_t *sioc__conn_accept(sioc__io_t *io, int fd, const sioc__conn_handler_t *handler,
                                void *owner, SSL_CTX *tls_context)
{
    sioc__conn_t *conn = calloc(1, sizeof(*conn) + io->conn_room);
    if (conn == NULL)
        goto err;
    if (tls_context != NULL && (conn->tls = sioc__tls_new(tls_context)) == NULL)
        goto err;
    if (uv_poll_init(io->loop, &conn->poll, fd) != 0)
        goto err;
    conn->fd = fd;
    conn->io = io;
    conn->handler = handler;
    conn->owner = owner;
    conn->poll.data = conn;
    /* Answers leave when they are written, not when the peer's ACK of the last one came. */
    int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    sioc__conn_resume_reading(conn);
    return conn;
err:
    if (conn != NULL)
        sioc__tls_free(conn->tls);
    free(conn);
    close(fd);
    return NULL;
}

static void mark_dirty(sioc__conn_t *conn)
{
    if (conn->dirty)
        return;
    conn->dirty = 1;
    conn->next_dirty = conn->io->dirty_head;
    conn->io->dirty_head = conn;
}

static void on_slab_timer(uv_timer_t *timer)
{
    sioc__io_t *io = timer->data;
    int empty_left = 0;
    for (int k = 0; k < SIOC_QUEUE_SLABS; k++)
        empty_left |= sioc__slab_release_empty(&io->queue_slabs[k], uv_now(io->loop), 0);
    if (empty_left)
        uv_timer_start(timer, on_slab_timer, SIOC_SLAB_EMPTY_MS, 0);
}

/* The slab of queues of capacity slices (SIOC_QUEUE_INITIAL, or SIOC_QUEUE_BURST times a power
 * of two: grow_queue's sizes), or NULL when they come from malloc. */
static sioc__slab_t *queue_slab(sioc__io_t *io, uint32_t capacity)
{
    if (capacity == SIOC_QUEUE_INITIAL)
        return &io->queue_slabs[0];
    int k = 1 + __builtin_ctz(capacity / SIOC_QUEUE_BURST);
    return k < SIOC_QUEUE_SLABS ? &io->queue_slabs[k] : NULL;
}

static sioc__conn_slice_t *queue_alloc(sioc__io_t *io, uint32_t capacity)
{
    sioc__slab_t *slab = queue_slab(io, capacity);
    return slab != NULL ? sioc__slab_alloc(slab) : malloc(capacity * sizeof(sioc__conn_slice_t));
}

static void queue_free(sioc__io_t *io, sioc__conn_slice_t *queue, uint32_t capacity)
{
    sioc__slab_t *slab = queue_slab(io, capacity);
    if (slab == NULL) {
        free(queue);
        return;
    }
    sioc__slab_free(slab, queue, uv_now(io->loop));
    if (slab->empty != NULL && !uv_is_active((uv_handle_t *)&io->slab_timer))
        uv_timer_start(&io->slab_timer, on_slab_timer, SIOC_SLAB_EMPTY_MS, 0);
}

/* Gives conn an empty queue of SIOC_QUEUE_INITIAL slices. Returns 0 or -1. */
static int take_queue(sioc__conn_t *conn)
{
    conn->queue = queue_alloc(conn->io, SIOC_QUEUE_INITIAL);
    if (conn->queue == NULL)
        return -1;
    conn->queue_capacity = SIOC_QUEUE_INITIAL;
    return 0;
}

/* Takes conn's empty queue away. */
static void give_queue(sioc__conn_t *conn)
{
    queue_free(conn->io, conn->queue, conn->queue_capacity);
    conn->queue = NULL;
    conn->queue_capacity = 0;
}

/* Grows conn's queue: from the initial size straight to SIOC_QUEUE_BURST slices, then doubling;
 * into a larger slab block while there is one, then with realloc. A queue that outgrows its
 * first block is a burst (a broadcast per loop iteration), and each size it passed through
 * would keep a slab's pages in use for every socket of the burst. */
static int grow_queue(sioc__conn_t *conn)
{
    sioc__io_t *io = conn->io;
    uint32_t capacity =
        conn->queue_capacity < SIOC_QUEUE_BURST ? SIOC_QUEUE_BURST : conn->queue_capacity * 2;
    sioc__conn_slice_t *queue;
    if (queue_slab(io, conn->queue_capacity) == NULL) {
        queue = realloc(conn->queue, capacity * sizeof(*queue));
        if (queue == NULL)
            return -1;
    } else {
        queue = queue_alloc(io, capacity);
        if (queue == NULL)
            return -1;
        memcpy(queue, conn->queue, conn->queue_length * sizeof(*queue));
        queue_free(io, conn->queue, conn->queue_capacity);
    }
    conn->queue = queue;
    conn->queue_capacity = capacity;
    return 0;
}

/* A new slice at the end of the queue, which takes one or grows; NULL when out of memory. */
static sioc__conn_slice_t *push_slice(sioc__conn_t *conn)
{
    if (conn->queue_capacity == 0) {
        if (take_queue(conn) != 0)
            return NULL;
    } else if (conn->queue_length == conn->queue_capacity && grow_queue(conn) != 0) {
        return NULL;
    }
    return &conn->queue[conn->queue_length++];
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
    sioc__conn_slice_t *slice = push_slice(conn);
    if (slice == NULL)
        return -1;
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
    conn->in_flight_bytes = 0;
    if (conn->queue != NULL)
        give_queue(conn);
}

static void set_writing(sioc__conn_t *conn, int writing)
{
    if (conn->writing == (writing != 0))
        return;
    conn->writing = writing != 0;
    update_poll(conn);
}

/* The number of slices in flight: the first ones, whose lengths add up to in_flight_bytes
 * (none is empty). */
static uint32_t in_flight_slices(const sioc__conn_t *conn)
{
    size_t bytes = 0;
    uint32_t count = 0;
    while (bytes < conn->in_flight_bytes)
        bytes += conn->queue[count++].bytes.len;
    return count;
}

/* Drops the first sent bytes of the queue, which the kernel took: whole slices lose their
 * reference, a slice partly written keeps its rest. */
static void release_sent(sioc__conn_t *conn, size_t sent)
{
    conn->in_flight_bytes -= (uint32_t)sent;
    uint32_t done = 0;
    while (sent > 0 && sent >= conn->queue[done].bytes.len) {
        sent -= conn->queue[done].bytes.len;
        sioc__buffer_unref(conn->queue[done].buffer);
        done++;
    }
    if (sent > 0) {
        conn->queue[done].bytes.base += sent;
        conn->queue[done].bytes.len -= sent;
    }
    conn->queue_length -= done;
    memmove(conn->queue, conn->queue + done, conn->queue_length * sizeof(sioc__conn_slice_t));
}

/* Hands the slices in flight to the kernel, SIOC_WRITE_IOVECS per writev, until it took them
 * all or has no room (then the poll waits until it has). MSG_NOSIGNAL: a peer gone is an
 * error code, not a SIGPIPE the host may not ignore. Returns 0, or -errno when the socket
 * failed. */
static int send_in_flight(sioc__conn_t *conn)
{
    struct iovec *iov = conn->io->write_iov;
    while (conn->in_flight_bytes > 0) {
        size_t bytes = 0;
        int count = 0;
        for (; count < SIOC_WRITE_IOVECS && bytes < conn->in_flight_bytes; count++) {
            iov[count].iov_base = conn->queue[count].bytes.base;
            iov[count].iov_len = conn->queue[count].bytes.len;
            bytes += iov[count].iov_len;
        }
        struct msghdr message = {.msg_iov = iov, .msg_iovlen = (size_t)count};
        ssize_t sent = sendmsg(conn->fd, &message, MSG_NOSIGNAL);
        if (sent < 0 && errno == EINTR)
            continue;
        if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (sent < 0)
            return -errno;
        release_sent(conn, (size_t)sent);
        if ((size_t)sent < bytes)
            break; /* the socket's buffer is full: another writev would only hear EAGAIN */
    }
    set_writing(conn, conn->in_flight_bytes > 0);
    return 0;
}

/* After a write: an empty queue goes back to the loop, a graceful close goes on once all is
 * out (dirty: a close, and with TLS its close_notify, still waits for the next flush), and
 * reading resumes if the unsent bytes drained. */
static void after_send(sioc__conn_t *conn)
{
    if (conn->queue_length == 0 && conn->queue != NULL)
        give_queue(conn);
    if (conn->close_after_flush && sioc__conn_buffered_bytes(conn) == 0 && !conn->dirty)
        shut_down(conn);
    else
        check_drained(conn);
}

/* Replaces the queued plaintext by the records it encrypts to, after what the handshake made,
 * and before our close_notify when closing: one slice behind those in flight, which the cap
 * counts from now on. */
static int encrypt_queue(sioc__conn_t *conn)
{
    sioc__tls_t *tls = conn->tls;
    int rc = 0;
    uint32_t first = in_flight_slices(conn);
    for (uint32_t i = first; i < conn->queue_length; i++) {
        /* After a failure (only an alert leaves) what was queued is dropped. */
        if (rc == 0 && sioc__tls_ready(tls))
            rc = sioc__tls_write(tls, conn->queue[i].bytes.base, conn->queue[i].bytes.len);
        sioc__buffer_unref(conn->queue[i].buffer);
    }
    conn->queue_length = first;
    conn->queued_bytes = 0;
    conn->copy_tail = 0;
    if (conn->close_after_flush)
        sioc__tls_shutdown(tls);
    size_t length;
    sioc__buffer_t *records = sioc__tls_take_output(tls, &length);
    if (records == NULL)
        return rc;
    sioc__conn_slice_t *slice = push_slice(conn);
    if (slice == NULL) {
        sioc__buffer_unref(records);
        return -1;
    }
    slice->buffer = records; /* the queue takes take_output's reference */
    slice->bytes = uv_buf_init((char *)records->data, (unsigned)length);
    conn->queued_bytes = (uint32_t)length;
    return rc;
}

/* The queued bytes join those in flight, behind them, and go now unless the socket is still
 * full (its poll then sends them in order when it has room). */
static void flush_connection(sioc__conn_t *conn)
{
    if (conn->tls != NULL && encrypt_queue(conn) != 0) {
        sioc__conn_close(conn, 0);
        return;
    }
    conn->copy_tail = 0; /* flushed slices are not appended to any more */
    conn->in_flight_bytes += conn->queued_bytes;
    conn->queued_bytes = 0;
    if (!conn->writing && send_in_flight(conn) != 0) {
        sioc__conn_close(conn, 0);
        return;
    }
    after_send(conn);
}

static void on_writable(sioc__conn_t *conn)
{
    if (send_in_flight(conn) != 0) {
        sioc__conn_close(conn, 0);
        return;
    }
    after_send(conn);
}

/* libuv stops the poll when the socket reports an error (POLLERR) and says UV_EBADF: the read
 * or the write that the connection waited for then tells which error it is, as libuv's
 * streams learn it, and the poll starts again if the connection goes on. */
static void on_poll(uv_poll_t *poll, int status, int events)
{
    sioc__conn_t *conn = poll->data;
    if (status < 0)
        events = UV_READABLE | UV_WRITABLE;
    if ((events & UV_READABLE) && conn->reading)
        read_input(conn);
    if ((events & UV_WRITABLE) && conn->writing && !uv_is_closing((uv_handle_t *)poll))
        on_writable(conn);
    if (status < 0)
        update_poll(conn);
}

static void stop_reading(sioc__conn_t *conn)
{
    if (conn->reading) {
        conn->reading = 0;
        update_poll(conn);
    }
}

static void start_reading(sioc__conn_t *conn)
{
    if (!conn->reading && !conn->peer_closed) {
        conn->reading = 1;
        update_poll(conn);
    }
}

/* While closing, reading is the lingering close's business (sioc__conn_close, handle_input).
 * TLS input kept while paused goes in first; the socket is read again once it is consumed. */
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

/* Our FIN, once all is out: then the peer's answers it (handle_input), or the linger time
 * ends the close. If the peer's came already, or shutdown fails, the close is done. */
static void shut_down(sioc__conn_t *conn)
{
    struct sioc__conn_closing_s *closing = conn->lingering;
    if (uv_is_closing((uv_handle_t *)&conn->poll) || (closing && closing->shut_down))
        return;
    if (closing == NULL || conn->peer_closed || shutdown(conn->fd, SHUT_WR) != 0) {
        finish_close(conn);
        return;
    }
    closing->shut_down = 1;
}

static void on_closed(uv_handle_t *handle)
{
    sioc__conn_t *conn = handle->data;
    close(conn->fd); /* libuv has let go of it: the number may be reused now */
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
    if (uv_is_closing((uv_handle_t *)&conn->poll))
        return;
    uv_close((uv_handle_t *)&conn->poll, on_closed);
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
    socklen_t length = sizeof(address);
    if (getpeername(conn->fd, (struct sockaddr *)&address, &length) != 0)
        return -1;
    if (address.ss_family == AF_INET6)
        return uv_ip6_name((struct sockaddr_in6 *)&address, out, size) == 0 ? 0 : -1;
    return uv_ip4_name((struct sockaddr_in *)&address, out, size) == 0 ? 0 : -1;
}
