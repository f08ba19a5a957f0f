/* The transport's write queues on a real loop with real TCP peers on 127.0.0.1: a flushed
 * connection gives its queue to the loop's spares and the next write takes it back; the loop
 * keeps at most SIOC_SPARE_QUEUES of them, and no grown one. The peers check that every byte
 * arrived; the loop must close cleanly at the end (no handle left behind, ASan: nothing leaked). */
#define _GNU_SOURCE /* accept4 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "transport/connection.h"

#include <sanitizer/asan_interface.h>

/* Under AddressSanitizer a spare queue must be poisoned, so that a write into it is reported. */
#if defined(__SANITIZE_ADDRESS__)
#define ASSERT_POISONED(pointer, expected)                                                         \
    assert_int_equal(__asan_address_is_poisoned(pointer), expected)
#else
#define ASSERT_POISONED(pointer, expected) ((void)(pointer))
#endif

#define MAX_PEERS (SIOC_SPARE_QUEUES + 4)
#define MAX_ITERATIONS 100000

typedef struct peer_s {
    uv_tcp_t client;
    uv_connect_t connect;
    char received[64];
    size_t received_length;
    struct harness_s *harness;
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

static const sioc__conn_handler_t handler = {on_conn_read, on_conn_close, NULL};

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

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    peer_t *peer = handle->data;
    buf->base = peer->received + peer->received_length;
    buf->len = sizeof(peer->received) - peer->received_length;
}

static void on_peer_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    peer_t *peer = stream->data;
    if (nread > 0)
        peer->received_length += (size_t)nread;
}

static void on_connected(uv_connect_t *request, int status)
{
    peer_t *peer = request->data;
    assert_int_equal(status, 0);
    peer->harness->connected++;
    assert_int_equal(uv_read_start((uv_stream_t *)&peer->client, on_alloc, on_peer_read), 0);
}

/* Runs the loop until done(harness) or a bound on the iterations is reached. */
static int run_until(harness_t *harness, int (*done)(const harness_t *harness))
{
    for (int i = 0; i < MAX_ITERATIONS && !done(harness); i++)
        uv_run(&harness->loop, UV_RUN_NOWAIT);
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

static void test_flushed_queue_is_reused(void **state)
{
    harness_t *harness = start(1);
    sioc__io_t *io = harness->io;
    sioc__conn_t *conn = harness->conns[0];
    assert_null(conn->queue); /* an idle connection holds none */
    assert_int_equal(io->spare_queue_count, 0);

    assert_int_equal(sioc__conn_write_copy(conn, "ab", 2), 0);
    sioc__conn_slice_t *queue = conn->queue;
    assert_non_null(queue);
    assert_int_equal(conn->queue_capacity, SIOC_QUEUE_INITIAL);
    expect_received(harness, "ab");
    assert_null(conn->queue);
    assert_int_equal(io->spare_queue_count, 1);
    assert_ptr_equal(io->spare_queues[0], queue);
    ASSERT_POISONED(queue, 1);

    /* The next write takes the same queue back instead of allocating one. */
    assert_int_equal(sioc__conn_write_copy(conn, "cd", 2), 0);
    assert_ptr_equal(conn->queue, queue);
    ASSERT_POISONED(&queue[SIOC_QUEUE_INITIAL - 1], 0);
    assert_int_equal(io->spare_queue_count, 0);
    expect_received(harness, "abcd");
    assert_int_equal(io->spare_queue_count, 1);
    finish(harness);
}

static void test_spares_are_capped(void **state)
{
    harness_t *harness = start(MAX_PEERS);
    sioc__io_t *io = harness->io;
    for (int i = 0; i < MAX_PEERS; i++)
        assert_int_equal(sioc__conn_write_copy(harness->conns[i], "x", 1), 0);
    expect_received(harness, "x");
    assert_int_equal(io->spare_queue_count, SIOC_SPARE_QUEUES); /* the rest was freed */
    for (int i = 0; i < MAX_PEERS; i++)
        assert_null(harness->conns[i]->queue);

    /* Every connection writes again: the spares serve the first ones, malloc the others. */
    for (int i = 0; i < MAX_PEERS; i++)
        assert_int_equal(sioc__conn_write_copy(harness->conns[i], "y", 1), 0);
    assert_int_equal(io->spare_queue_count, 0);
    expect_received(harness, "xy");
    assert_int_equal(io->spare_queue_count, SIOC_SPARE_QUEUES);
    finish(harness);
}

static void test_grown_queue_is_not_kept(void **state)
{
    harness_t *harness = start(1);
    sioc__io_t *io = harness->io;
    sioc__conn_t *conn = harness->conns[0];
    sioc__buffer_t *buffer = sioc__buffer_new_copy("0123456789", 10, 0);
    assert_non_null(buffer);
    /* Slices of a shared buffer are not coalesced: ten slices grow the queue twice. */
    for (int i = 0; i < 10; i++)
        assert_int_equal(sioc__conn_write(conn, buffer, buffer->data + i, 1), 0);
    sioc__buffer_unref(buffer);
    assert_true(conn->queue_capacity > SIOC_QUEUE_INITIAL);
    expect_received(harness, "0123456789");
    assert_null(conn->queue);
    assert_int_equal(io->spare_queue_count, 0);
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
    sioc__conn_close(conn, 0); /* an abort drops what was queued */
    assert_true(run_until(harness, all_closed));
    assert_int_equal(io->spare_queue_count, 1);
    assert_ptr_equal(io->spare_queues[0], queue);
    finish(harness);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flushed_queue_is_reused),
        cmocka_unit_test(test_spares_are_capped),
        cmocka_unit_test(test_grown_queue_is_not_kept),
        cmocka_unit_test(test_room_after_each_connection),
        cmocka_unit_test(test_small_copies_share_a_slice),
        cmocka_unit_test(test_unsent_bytes_are_bounded),
        cmocka_unit_test(test_closed_connection_gives_its_queue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
