/* The transport's write queues on a real loop with real TCP peers on 127.0.0.1: a flushed
 * connection gives its queue back to the loop's slab and the next write takes the same block;
 * a queue grows to a burst's size and doubles through the slabs, past the last into malloc; a
 * slab's empty pages are unmapped once they have stayed empty for SIOC_SLAB_EMPTY_MS. A peer that
 * does not read fills the socket: the rest waits for room (partial writes, EAGAIN), in order, and a
 * graceful close sends it before our FIN. The listener backs off when the process is out of
 * descriptors. The peers check that every byte arrived; the loop must close cleanly at the end (no
 * handle left behind, ASan: nothing leaked). */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "engineio/eio_internal.h"
#include "transport/connection.h"
#include "transport/http.h"

#include <sanitizer/asan_interface.h>

/* Under AddressSanitizer a queue given back must be poisoned, so that a write into it is reported.
 */
#if defined(__SANITIZE_ADDRESS__)
#define ASSERT_POISONED(pointer, expected)                                                         \
    assert_int_equal(__asan_address_is_poisoned(pointer), expected)
#else
#define ASSERT_POISONED(pointer, expected) ((void)(pointer))
#endif

#define MAX_PEERS 68
#define RUN_UNTIL_MS 10000

typedef struct peer_s {
    uv_tcp_t client;
    uv_connect_t connect;
    char received[64];
    size_t received_length;
    struct harness_s *harness;
    /* A sink reads any amount, checking it against pattern_byte(); it stops at our FIN. */
    int sink;
    size_t sunk;
    size_t sunk_wrong;
    int eof;
    int closed_at_eof; /* connections closed when our FIN arrived */
} peer_t;

typedef struct harness_s {
    uv_loop_t loop;
    sioc__io_t *io;     /* large (its read buffer): on the heap */
    uv_poll_t listener; /* on listen_fd, as the HTTP server listens */
    int listen_fd;
    peer_t peers[MAX_PEERS];
    sioc__conn_t *conns[MAX_PEERS];
    int peer_count;
    int accepted;
    int connected;
    int closed;
    int drained;
} harness_t;

static void on_conn_read(sioc__conn_t *conn, uint8_t *data, size_t length) {}

static void on_conn_close(sioc__conn_t *conn)
{
    harness_t *harness = conn->owner;
    for (int i = 0; i < harness->accepted; i++)
        if (harness->conns[i] == conn)
            harness->conns[i] = NULL;
    harness->closed++;
}

static void on_conn_drain(sioc__conn_t *conn)
{
    harness_t *harness = conn->owner;
    harness->drained++;
}

static const sioc__conn_handler_t handler = {on_conn_read, on_conn_close, on_conn_drain};

static void on_listener(uv_poll_t *poll, int status, int events)
{
    harness_t *harness = poll->data;
    assert_int_equal(status, 0);
    int fd;
    while ((fd = accept4(harness->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        sioc__conn_t *conn = sioc__conn_accept(harness->io, fd, &handler, harness, NULL);
        assert_non_null(conn);
        harness->conns[harness->accepted++] = conn;
    }
    assert_int_equal(errno, EAGAIN);
}

/* The bytes the sink tests write: no period that a lost or repeated block would hide. */
static uint8_t pattern_byte(size_t offset)
{
    return (uint8_t)(offset % 251);
}

static char sink_buffer[64 * 1024];

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    peer_t *peer = handle->data;
    if (peer->sink) {
        buf->base = sink_buffer;
        buf->len = sizeof(sink_buffer);
        return;
    }
    buf->base = peer->received + peer->received_length;
    buf->len = sizeof(peer->received) - peer->received_length;
}

static void on_peer_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    peer_t *peer = stream->data;
    if (nread > 0 && peer->sink) {
        for (ssize_t i = 0; i < nread; i++)
            peer->sunk_wrong += (uint8_t)buf->base[i] != pattern_byte(peer->sunk + (size_t)i);
        peer->sunk += (size_t)nread;
    } else if (nread > 0) {
        peer->received_length += (size_t)nread;
    } else if (nread == UV_EOF) {
        peer->eof = 1;
        peer->closed_at_eof = peer->harness->closed;
        uv_read_stop(stream);
    }
}

static void on_connected(uv_connect_t *request, int status)
{
    peer_t *peer = request->data;
    assert_int_equal(status, 0);
    peer->harness->connected++;
    assert_int_equal(uv_read_start((uv_stream_t *)&peer->client, on_alloc, on_peer_read), 0);
}

static void on_tick(uv_timer_t *timer) {}

/* Runs the loop until done(harness), for RUN_UNTIL_MS at most: a timer wakes it while nothing
 * else does. */
static int run_until(harness_t *harness, int (*done)(const harness_t *harness))
{
    uv_timer_t tick;
    assert_int_equal(uv_timer_init(&harness->loop, &tick), 0);
    assert_int_equal(uv_timer_start(&tick, on_tick, 10, 10), 0);
    uv_update_time(&harness->loop);
    uint64_t end = uv_now(&harness->loop) + RUN_UNTIL_MS;
    while (!done(harness) && uv_now(&harness->loop) < end)
        uv_run(&harness->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&harness->loop, UV_RUN_NOWAIT); /* lets go of the timer */
    return done(harness);
}

static int all_connected(const harness_t *harness)
{
    return harness->accepted == harness->peer_count && harness->connected == harness->peer_count;
}

/* room: the io's conn_room, the bytes after every connection it accepts. */
static harness_t *start_with_room(int peer_count, size_t room)
{
    harness_t *harness = calloc(1, sizeof(*harness));
    assert_non_null(harness);
    harness->io = malloc(sizeof(*harness->io));
    assert_non_null(harness->io);
    harness->peer_count = peer_count;
    assert_int_equal(uv_loop_init(&harness->loop), 0);
    assert_int_equal(sioc__io_init(harness->io, &harness->loop), 0);
    assert_int_equal(harness->io->conn_room, 0); /* none unless asked for */
    harness->io->conn_room = room;
    struct sockaddr_in address;
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &address), 0);
    harness->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(harness->listen_fd >= 0);
    assert_int_equal(bind(harness->listen_fd, (struct sockaddr *)&address, sizeof(address)), 0);
    assert_int_equal(listen(harness->listen_fd, MAX_PEERS), 0);
    socklen_t length = sizeof(address);
    assert_int_equal(getsockname(harness->listen_fd, (struct sockaddr *)&address, &length), 0);
    assert_int_equal(uv_poll_init(&harness->loop, &harness->listener, harness->listen_fd), 0);
    harness->listener.data = harness;
    assert_int_equal(uv_poll_start(&harness->listener, UV_READABLE, on_listener), 0);
    for (int i = 0; i < peer_count; i++) {
        peer_t *peer = &harness->peers[i];
        peer->harness = harness;
        assert_int_equal(uv_tcp_init(&harness->loop, &peer->client), 0);
        peer->client.data = peer->connect.data = peer;
        assert_int_equal(uv_tcp_connect(&peer->connect, &peer->client, (struct sockaddr *)&address,
                                        on_connected),
                         0);
    }
    assert_true(run_until(harness, all_connected));
    return harness;
}

static harness_t *start(int peer_count)
{
    return start_with_room(peer_count, 0);
}

static int all_closed(const harness_t *harness)
{
    return harness->closed == harness->peer_count;
}

static void on_io_closed(sioc__io_t *io)
{
    free(io);
}

/* Closes everything and checks that the loop has nothing left. */
static void finish(harness_t *harness)
{
    for (int i = 0; i < harness->peer_count; i++) {
        if (harness->conns[i] != NULL)
            sioc__conn_close(harness->conns[i], 0);
        if (!uv_is_closing((uv_handle_t *)&harness->peers[i].client))
            uv_close((uv_handle_t *)&harness->peers[i].client, NULL);
    }
    assert_true(run_until(harness, all_closed));
    uv_close((uv_handle_t *)&harness->listener, NULL);
    sioc__io_close(harness->io, on_io_closed);
    uv_run(&harness->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&harness->loop), 0);
    close(harness->listen_fd);
    free(harness);
}

/* How many bytes all_received waits for at every peer. */
static size_t waiting_length;

static int all_received(const harness_t *harness)
{
    for (int i = 0; i < harness->peer_count; i++)
        if (harness->peers[i].received_length < waiting_length)
            return 0;
    return 1;
}

static void expect_received(harness_t *harness, const char *text)
{
    waiting_length = strlen(text);
    assert_true(run_until(harness, all_received));
    for (int i = 0; i < harness->peer_count; i++) {
        assert_int_equal(harness->peers[i].received_length, strlen(text));
        assert_memory_equal(harness->peers[i].received, text, strlen(text));
    }
}

static uint32_t queues_in_use(const sioc__io_t *io)
{
    uint32_t count = 0;
    for (int k = 0; k < SIOC_QUEUE_SLABS; k++)
        count += io->queue_slabs[k].blocks_in_use;
    return count;
}

static void test_flushed_queue_is_reused(void **state)
{
    harness_t *harness = start(1);
    sioc__io_t *io = harness->io;
    sioc__conn_t *conn = harness->conns[0];
    assert_null(conn->queue); /* an idle connection holds none */
    assert_int_equal(queues_in_use(io), 0);

    assert_int_equal(sioc__conn_write_copy(conn, "ab", 2), 0);
    sioc__conn_slice_t *queue = conn->queue;
    assert_non_null(queue);
    assert_int_equal(conn->queue_capacity, SIOC_QUEUE_INITIAL);
    assert_int_equal(io->queue_slabs[0].blocks_in_use, 1);
    expect_received(harness, "ab");
    assert_null(conn->queue);
    assert_int_equal(queues_in_use(io), 0);
    ASSERT_POISONED(queue, 1);

    /* The next write takes the same block back. */
    assert_int_equal(sioc__conn_write_copy(conn, "cd", 2), 0);
    assert_ptr_equal(conn->queue, queue);
    ASSERT_POISONED(&queue[SIOC_QUEUE_INITIAL - 1], 0);
    expect_received(harness, "abcd");
    assert_int_equal(queues_in_use(io), 0);
    finish(harness);
}

static int empty_pages_released(const harness_t *harness)
{
    for (int k = 0; k < SIOC_QUEUE_SLABS; k++)
        if (harness->io->queue_slabs[k].pages_mapped != 0)
            return 0;
    return 1;
}

/* Many queues at once, all given back: the slab keeps the empty page for the next burst, and
 * unmaps it once it has stayed empty for SIOC_SLAB_EMPTY_MS. */
static void test_empty_page_is_unmapped_later(void **state)
{
    harness_t *harness = start(MAX_PEERS);
    sioc__io_t *io = harness->io;
    for (int i = 0; i < MAX_PEERS; i++)
        assert_int_equal(sioc__conn_write_copy(harness->conns[i], "x", 1), 0);
    assert_int_equal(io->queue_slabs[0].blocks_in_use, MAX_PEERS);
    assert_int_equal(io->queue_slabs[0].pages_mapped, 1);
    uv_update_time(&harness->loop);
    uint64_t given_back = uv_now(&harness->loop);
    expect_received(harness, "x");
    assert_int_equal(queues_in_use(io), 0);
    assert_int_equal(io->queue_slabs[0].pages_empty, 1); /* kept for now */
    assert_true(run_until(harness, empty_pages_released));
    uv_update_time(&harness->loop);
    assert_true(uv_now(&harness->loop) - given_back >= SIOC_SLAB_EMPTY_MS);

    /* And a later write maps a page again. */
    for (int i = 0; i < MAX_PEERS; i++)
        assert_int_equal(sioc__conn_write_copy(harness->conns[i], "y", 1), 0);
    assert_int_equal(io->queue_slabs[0].pages_mapped, 1);
    expect_received(harness, "xy");
    finish(harness);
}

/* The room is the connection's own block (one malloc chunk, freed with it): zeroed, its own
 * for every connection, and usable to its last byte (AddressSanitizer reports a short block)
 * while the connection writes on. */
static void test_room_after_each_connection(void **state)
{
    enum { ROOM = 56 };
    harness_t *harness = start_with_room(2, ROOM);
    for (int i = 0; i < 2; i++) {
        sioc__conn_t *conn = harness->conns[i];
        uint8_t *room = sioc__conn_room(conn);
        uint8_t zeros[ROOM] = {0};
        assert_memory_equal(room, zeros, ROOM);
        assert_ptr_equal(sioc__conn_of_room(room), conn);
        memset(room, 0xa5 + i, ROOM);
    }
    assert_ptr_not_equal(sioc__conn_room(harness->conns[0]), sioc__conn_room(harness->conns[1]));
    for (int i = 0; i < 2; i++)
        assert_int_equal(sioc__conn_write_copy(harness->conns[i], "room", 4), 0);
    expect_received(harness, "room");
    for (int i = 0; i < 2; i++) {
        uint8_t expected[ROOM];
        memset(expected, 0xa5 + i, ROOM);
        assert_memory_equal(sioc__conn_room(harness->conns[i]), expected, ROOM);
    }
    finish(harness);
}

/* Small copies queued back to back share one slice (the copy tail); a slice of another buffer
 * ends the tail, and the copies after it start a new one. */
static void test_small_copies_share_a_slice(void **state)
{
    harness_t *harness = start(1);
    sioc__conn_t *conn = harness->conns[0];
    assert_int_equal(sioc__conn_write_copy(conn, "ab", 2), 0);
    assert_int_equal(sioc__conn_write_copy(conn, "cd", 2), 0);
    assert_int_equal(conn->queue_length, 1);
    assert_int_equal(conn->queued_bytes, 4);
    assert_true(conn->copy_tail);
    assert_int_equal(conn->copy_room, SIOC_COALESCE_SIZE - 4);
    sioc__buffer_t *buffer = sioc__buffer_new_copy("ef", 2, 0);
    assert_non_null(buffer);
    assert_int_equal(sioc__conn_write(conn, buffer, buffer->data, 2), 0);
    sioc__buffer_unref(buffer);
    assert_false(conn->copy_tail);
    assert_int_equal(sioc__conn_write_copy(conn, "gh", 2), 0);
    assert_int_equal(conn->queue_length, 3);
    assert_int_equal(conn->queued_bytes, 8);
    expect_received(harness, "abcdefgh");
    finish(harness);
}

/* Whatever the cap (none here), a write that would take the unsent bytes past
 * SIOC_CONN_MAX_UNSENT closes the connection: the counts are 32 bits. The slice is refused
 * before anything reads it. */
static void test_unsent_bytes_are_bounded(void **state)
{
    harness_t *harness = start(1);
    sioc__conn_t *conn = harness->conns[0];
    assert_int_equal(conn->max_buffered_bytes, 0);
    sioc__buffer_t *buffer = sioc__buffer_new_copy("x", 1, 0);
    assert_non_null(buffer);
    assert_int_equal(sioc__conn_write(conn, buffer, buffer->data, 1), 0);
    assert_int_equal(sioc__conn_write(conn, buffer, buffer->data, SIOC_CONN_MAX_UNSENT), -1);
    sioc__buffer_unref(buffer);
    assert_true(conn->closing);
    assert_true(run_until(harness, all_closed));
    finish(harness);
}

static void test_closed_connection_gives_its_queue(void **state)
{
    harness_t *harness = start(1);
    sioc__io_t *io = harness->io;
    sioc__conn_t *conn = harness->conns[0];
    assert_int_equal(sioc__conn_write_copy(conn, "lost", 4), 0);
    sioc__conn_slice_t *queue = conn->queue;
    assert_int_equal(queues_in_use(io), 1);
    sioc__conn_close(conn, 0); /* an abort drops what was queued */
    assert_true(run_until(harness, all_closed));
    assert_int_equal(queues_in_use(io), 0);
    ASSERT_POISONED(queue, 1);
    finish(harness);
}

/* A WebSocket is one malloc chunk: the connection with the Engine.IO state in its room. On a
 * poll handle instead of a uv_tcp_t (160 bytes, not 248) that is a 320-byte chunk, 312 bytes
 * usable on 64-bit glibc (it was 400). */
static void test_websocket_fits_a_320_byte_chunk(void **state)
{
    harness_t *harness = start_with_room(1, sizeof(sioc__eio_websocket_t));
    sioc__conn_t *conn = harness->conns[0];
    size_t block = sizeof(sioc__conn_t) + sizeof(sioc__eio_websocket_t);
    print_message("sioc__conn_t %zu + room %zu = %zu bytes, %zu usable\n", sizeof(sioc__conn_t),
                  sizeof(sioc__eio_websocket_t), block, malloc_usable_size(conn));
    assert_true(malloc_usable_size(conn) >= block);
    if (sizeof(void *) == 8)
        assert_true(malloc_usable_size(conn) <= 320 - sizeof(size_t));
    finish(harness);
}

enum { BIG = 4 * 1024 * 1024 };

static sioc__buffer_t *pattern_buffer(size_t offset, size_t length)
{
    sioc__buffer_t *buffer = sioc__buffer_new(length, 1);
    assert_non_null(buffer);
    for (size_t i = 0; i < length; i++)
        buffer->data[i] = pattern_byte(offset + i);
    return buffer;
}

/* Peer i stops reading (from now on a sink), and the connection's send buffer is small: the
 * peer's receive buffer and a few kilobytes fill the socket. */
static void stall_peer(harness_t *harness, int i)
{
    peer_t *peer = &harness->peers[i];
    peer->sink = 1;
    assert_int_equal(uv_read_stop((uv_stream_t *)&peer->client), 0);
    int size = 4096;
    assert_int_equal(setsockopt(harness->conns[i]->fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size)),
                     0);
}

/* The peer reads again, and the send buffer grows back (a 4 KiB one would take seconds for
 * megabytes, one window at a time). */
static void resume_peer(harness_t *harness, int i)
{
    int size = 1024 * 1024;
    assert_int_equal(setsockopt(harness->conns[i]->fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size)),
                     0);
    assert_int_equal(
        uv_read_start((uv_stream_t *)&harness->peers[i].client, on_alloc, on_peer_read), 0);
}

static int first_writing(const harness_t *harness)
{
    return harness->conns[0]->writing;
}

/* How many bytes all_sunk waits for at the first peer. */
static size_t sink_length;

static int all_sunk(const harness_t *harness)
{
    return harness->peers[0].sunk >= sink_length;
}

static int drained(const harness_t *harness)
{
    return harness->drained > 0;
}

static int first_peer_eof(const harness_t *harness)
{
    return harness->peers[0].eof;
}

static void expect_sunk(harness_t *harness, size_t length)
{
    sink_length = length;
    assert_true(run_until(harness, all_sunk));
    assert_int_equal(harness->peers[0].sunk, length);
    assert_int_equal(harness->peers[0].sunk_wrong, 0);
}

/* Slices of a shared buffer are not coalesced: each write is a slice, and the queue grows from
 * 4 slices to 64, doubles through the slabs to 256, then past them with realloc; the bytes leave
 * in order. */
static void test_queue_grows_through_the_slabs(void **state)
{
    enum { WRITES = 600 };
    harness_t *harness = start(1);
    sioc__io_t *io = harness->io;
    sioc__conn_t *conn = harness->conns[0];
    harness->peers[0].sink = 1;
    sioc__buffer_t *buffer = pattern_buffer(0, WRITES);
    for (int i = 0; i < WRITES; i++) {
        assert_int_equal(sioc__conn_write(conn, buffer, buffer->data + i, 1), 0);
        if (i == 9) { /* ten slices: grown once, to a burst's size (the second slab) */
            assert_int_equal(conn->queue_capacity, SIOC_QUEUE_BURST);
            assert_int_equal(io->queue_slabs[1].blocks_in_use, 1);
            assert_int_equal(queues_in_use(io), 1);
        }
        if (i == 200) { /* 64, 128, then 256: the last slab */
            assert_int_equal(conn->queue_capacity, 256);
            assert_int_equal(io->queue_slabs[SIOC_QUEUE_SLABS - 1].blocks_in_use, 1);
            assert_int_equal(queues_in_use(io), 1);
        }
    }
    sioc__buffer_unref(buffer);
    assert_int_equal(conn->queue_capacity, 1024); /* past the slabs: from malloc */
    assert_int_equal(queues_in_use(io), 0);
    expect_sunk(harness, WRITES);
    assert_null(conn->queue);
    assert_int_equal(queues_in_use(io), 0);
    finish(harness);
}

/* The kernel takes part of a flush: what it took is released at once (a slice written whole
 * drops its reference), the rest waits in flight for the socket to have room, and a write
 * meanwhile queues behind it; when the peer reads, all of it arrives in order. */
static void test_partial_write_waits_for_room(void **state)
{
    harness_t *harness = start(1);
    sioc__conn_t *conn = harness->conns[0];
    stall_peer(harness, 0);
    sioc__buffer_t *head = pattern_buffer(0, 1000);
    sioc__buffer_t *body = pattern_buffer(1000, BIG);
    assert_int_equal(sioc__conn_write(conn, head, head->data, 1000), 0);
    assert_int_equal(sioc__conn_write(conn, body, body->data, BIG), 0);
    assert_int_equal(head->refcount, 2);
    assert_true(run_until(harness, first_writing));
    assert_int_equal(head->refcount, 1);
    assert_int_equal(body->refcount, 2);
    assert_int_equal(conn->queue_length, 1);
    assert_int_equal(conn->queued_bytes, 0);
    size_t in_flight = conn->in_flight_bytes;
    print_message("the kernel took %zu of %d bytes\n", 1000 + BIG - in_flight, 1000 + BIG);
    assert_true(in_flight > 0 && in_flight < BIG);
    assert_int_equal(conn->queue[0].bytes.len, in_flight);
    assert_ptr_equal(conn->queue[0].bytes.base, body->data + BIG - in_flight);

    uint8_t tail[100];
    for (size_t i = 0; i < sizeof(tail); i++)
        tail[i] = pattern_byte(1000 + BIG + i);
    assert_int_equal(sioc__conn_write_copy(conn, tail, sizeof(tail)), 0);
    assert_int_equal(conn->queued_bytes, sizeof(tail));
    assert_int_equal(sioc__conn_buffered_bytes(conn), in_flight + sizeof(tail));
    uv_run(&harness->loop, UV_RUN_NOWAIT); /* the flush: in flight, behind the body's rest */
    assert_int_equal(conn->queued_bytes, 0);
    assert_int_equal(conn->queue_length, 2);
    assert_true(conn->in_flight_bytes <= in_flight + sizeof(tail));
    sioc__buffer_unref(head);
    sioc__buffer_unref(body);

    resume_peer(harness, 0);
    expect_sunk(harness, 1000 + BIG + sizeof(tail));
    assert_int_equal(sioc__conn_buffered_bytes(conn), 0);
    assert_false(conn->writing);
    assert_null(conn->queue);
    finish(harness);
}

/* Over its cap, a connection stops reading until the peer took all but half the cap; then it
 * reads again and on_drain runs. */
static void test_drain_after_backpressure(void **state)
{
    enum { CAP = 64 * 1024 };
    harness_t *harness = start(1);
    sioc__conn_t *conn = harness->conns[0];
    stall_peer(harness, 0);
    sioc__conn_set_cap(conn, CAP);
    sioc__buffer_t *body = pattern_buffer(0, BIG);
    assert_int_equal(sioc__conn_write(conn, body, body->data, BIG), 0);
    sioc__buffer_unref(body);
    sioc__conn_wait_drain(conn);
    assert_false(conn->reading);
    assert_true(run_until(harness, first_writing));
    assert_true(sioc__conn_over_cap(conn));
    assert_int_equal(harness->drained, 0);

    resume_peer(harness, 0);
    assert_true(run_until(harness, drained));
    assert_int_equal(harness->drained, 1);
    assert_true(sioc__conn_buffered_bytes(conn) <= CAP / 2);
    assert_int_equal(conn->paused, 0);
    assert_true(conn->reading);
    expect_sunk(harness, BIG);
    finish(harness);
}

/* A graceful close with bytes still in flight sends them, then our FIN; the connection stays
 * until the peer's FIN answers it. */
static void test_graceful_close_sends_the_rest(void **state)
{
    harness_t *harness = start(1);
    sioc__conn_t *conn = harness->conns[0];
    stall_peer(harness, 0);
    sioc__buffer_t *body = pattern_buffer(0, BIG);
    assert_int_equal(sioc__conn_write(conn, body, body->data, BIG), 0);
    sioc__buffer_unref(body);
    assert_true(run_until(harness, first_writing));
    sioc__conn_close(conn, 1);
    assert_int_equal(sioc__conn_write_copy(conn, "late", 4), -1); /* closing: refused */
    for (int i = 0; i < 10; i++)
        uv_run(&harness->loop, UV_RUN_NOWAIT);
    assert_int_equal(harness->closed, 0);

    resume_peer(harness, 0);
    assert_true(run_until(harness, first_peer_eof));
    assert_int_equal(harness->peers[0].sunk, BIG);
    assert_int_equal(harness->peers[0].sunk_wrong, 0);
    assert_int_equal(harness->peers[0].closed_at_eof, 0); /* lingering for the peer's FIN */
    uv_close((uv_handle_t *)&harness->peers[0].client, NULL);
    assert_true(run_until(harness, all_closed));
    finish(harness);
}

/* An abort drops what is in flight at once: the buffer's reference goes with the connection. */
static void test_abort_drops_what_is_in_flight(void **state)
{
    harness_t *harness = start(1);
    sioc__conn_t *conn = harness->conns[0];
    stall_peer(harness, 0);
    sioc__buffer_t *body = pattern_buffer(0, BIG);
    assert_int_equal(sioc__conn_write(conn, body, body->data, BIG), 0);
    assert_true(run_until(harness, first_writing));
    assert_int_equal(body->refcount, 2);
    sioc__conn_close(conn, 0);
    assert_true(run_until(harness, all_closed));
    assert_int_equal(body->refcount, 1);
    sioc__buffer_unref(body);
    finish(harness);
}

/* The peer's FIN closes the connection (read() returned 0: UV_EOF to the layers above). */
static void test_peer_fin_closes(void **state)
{
    harness_t *harness = start(1);
    uv_shutdown_t request;
    assert_int_equal(uv_shutdown(&request, (uv_stream_t *)&harness->peers[0].client, NULL), 0);
    assert_true(run_until(harness, all_closed));
    assert_null(harness->conns[0]);
    finish(harness);
}

/* A reset from the peer (SO_LINGER 0) is an error the poll reports (POLLERR): the read that
 * follows says ECONNRESET and the connection closes, without spinning on the error. */
static void test_peer_reset_closes(void **state)
{
    harness_t *harness = start(1);
    uv_os_fd_t fd;
    assert_int_equal(uv_fileno((uv_handle_t *)&harness->peers[0].client, &fd), 0);
    struct linger linger = {.l_onoff = 1, .l_linger = 0};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, sizeof(linger)), 0);
    uv_close((uv_handle_t *)&harness->peers[0].client, NULL);
    assert_true(run_until(harness, all_closed));
    finish(harness);
}

static void on_http_request(sioc__http_conn_t *http, sioc__http_request_t *request,
                            uint8_t *leftover, size_t leftover_length)
{
}

static const sioc__http_handler_t http_handler = {on_http_request, NULL};

static int has_connection(const sioc__http_server_t *server)
{
    return server->connections != NULL;
}

static int backoff_over(const sioc__http_server_t *server)
{
    return !server->accept_backoff;
}

/* Runs the loop for about ms milliseconds, or until done(server); returns how many times the
 * loop woke up. */
static int run_for(uv_loop_t *loop, sioc__http_server_t *server, uint64_t ms,
                   int (*done)(const sioc__http_server_t *server))
{
    uv_update_time(loop);
    uint64_t end = uv_now(loop) + ms;
    int wakeups = 0;
    while (uv_now(loop) < end && !done(server)) {
        uv_run(loop, UV_RUN_ONCE);
        uv_update_time(loop);
        wakeups++;
    }
    return wakeups;
}

/* The EMFILE test's child: a connection waits in the backlog of a process out of descriptors.
 * The listener must not spin (level-triggered, the socket stays readable): it backs off, says
 * so once on stderr, and accepts the connection when a descriptor is free again. Returns 0,
 * or the number of the check that failed. */
static int emfile_child(void)
{
    uv_loop_t loop;
    sioc__io_t *io = malloc(sizeof(*io));
    sioc__http_server_t server;
    sioc__http_limits_t limits = {16384, 100, 1000000, 10000, 8 << 20};
    if (io == NULL || uv_loop_init(&loop) != 0 || sioc__io_init(io, &loop) != 0 ||
        sioc__http_server_init(&server, io, &limits, &http_handler, NULL) != 0 ||
        sioc__http_server_listen(&server, "127.0.0.1", 0) != 0)
        return 1;
    struct sockaddr_in address;
    uv_ip4_addr("127.0.0.1", sioc__http_server_port(&server), &address);
    int client = socket(AF_INET, SOCK_STREAM, 0);
    if (client < 0 || connect(client, (struct sockaddr *)&address, sizeof(address)) != 0)
        return 2;
    FILE *log = tmpfile();
    if (log == NULL || dup2(fileno(log), STDERR_FILENO) < 0)
        return 3;
    struct rlimit limit = {.rlim_cur = 64, .rlim_max = 64};
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0)
        return 4;
    int spare = -1;
    for (int fd; (fd = dup(client)) >= 0;)
        spare = fd;
    if (errno != EMFILE || spare < 0)
        return 5;

    int wakeups = run_for(&loop, &server, 350, has_connection);
    printf("out of descriptors: %d wakeups in 350 ms\n", wakeups);
    if (server.connections != NULL || !server.accept_backoff || wakeups > 10)
        return 6;
    close(spare--);
    wakeups = run_for(&loop, &server, 1000, has_connection);
    printf("a descriptor free: accepted after %d wakeup(s)\n", wakeups);
    if (server.connections == NULL)
        return 7;
    /* At the limit again (the connection took the descriptor): the episode goes on until
     * accept4 has a descriptor to spare. */
    close(spare--);
    close(spare--);
    wakeups = run_for(&loop, &server, 1000, backoff_over);
    printf("two descriptors free: the back-off ended after %d wakeup(s)\n", wakeups);
    if (server.accept_backoff)
        return 8;

    char line[256];
    int lines = 0;
    rewind(log);
    while (fgets(line, sizeof(line), log) != NULL)
        lines += strstr(line, "sioc http: accept: Too many open files") != NULL;
    printf("%d line(s) logged\n", lines);
    return lines == 1 ? 0 : 9;
}

static void test_listener_backs_off_without_descriptors(void **state)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int rc = emfile_child();
        fflush(stdout);
        _exit(rc); /* nothing of the parent's cleanup (cmocka, LeakSanitizer) in the child */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flushed_queue_is_reused),
        cmocka_unit_test(test_empty_page_is_unmapped_later),
        cmocka_unit_test(test_queue_grows_through_the_slabs),
        cmocka_unit_test(test_room_after_each_connection),
        cmocka_unit_test(test_small_copies_share_a_slice),
        cmocka_unit_test(test_unsent_bytes_are_bounded),
        cmocka_unit_test(test_closed_connection_gives_its_queue),
        cmocka_unit_test(test_websocket_fits_a_320_byte_chunk),
        cmocka_unit_test(test_partial_write_waits_for_room),
        cmocka_unit_test(test_drain_after_backpressure),
        cmocka_unit_test(test_graceful_close_sends_the_rest),
        cmocka_unit_test(test_abort_drops_what_is_in_flight),
        cmocka_unit_test(test_peer_fin_closes),
        cmocka_unit_test(test_peer_reset_closes),
        cmocka_unit_test(test_listener_backs_off_without_descriptors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
