/* Engine.IO sessions keep no server or data pointer of their own: the server is their limits
 * set's, and the data pointer of the public API is kept in the bytes after the session unless a
 * layer above asked for those bytes (the Socket.IO client lives there). These check, on a real
 * loop, that both still give back what they were given, and that the loop closes cleanly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engineio/eio_internal.h"
#include "engineio/eio_send.h"

static void on_closed(void *data)
{
    *(int *)data = 1;
}

static sioc_eio_server_t *server_new(uv_loop_t *loop)
{
    sioc_eio_options_t options;
    sioc_eio_options_init(&options);
    sioc_eio_callbacks_t callbacks = {0};
    sioc_eio_server_t *server = NULL;
    assert_int_equal(uv_loop_init(loop), 0);
    assert_int_equal(sioc_eio_server_new(loop, &options, &callbacks, NULL, &server), 0);
    return server;
}

static void server_close(uv_loop_t *loop, sioc_eio_server_t *server)
{
    int closed = 0;
    sioc_eio_server_close(server, on_closed, &closed);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(closed, 1);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void test_data_and_server_without_extra(void **state)
{
    uv_loop_t loop;
    sioc_eio_server_t *server = server_new(&loop);
    sioc_eio_socket_t *first = sioc__eio_socket_new(server, SIOC_TRANSPORT_WEBSOCKET);
    sioc_eio_socket_t *second = sioc__eio_socket_new(server, SIOC_TRANSPORT_POLLING);
    assert_non_null(first);
    assert_non_null(second);
    assert_null(sioc_eio_socket_get_data(first)); /* none until set */
    assert_null(sioc__eio_socket_extra(first));
    int a, b;
    sioc_eio_socket_set_data(first, &a);
    sioc_eio_socket_set_data(second, &b);
    assert_ptr_equal(sioc_eio_socket_get_data(first), &a);
    assert_ptr_equal(sioc_eio_socket_get_data(second), &b);
    assert_ptr_equal(sioc_eio_socket_server(first), server);
    assert_ptr_equal(sioc_eio_socket_server(second), server);
    sioc_eio_socket_set_data(first, NULL);
    assert_null(sioc_eio_socket_get_data(first));
    assert_ptr_equal(sioc_eio_socket_get_data(second), &b);
    server_close(&loop, server);
}

static void test_extra_bytes_are_the_layer_above(void **state)
{
    enum { EXTRA = 72 };
    uv_loop_t loop;
    sioc_eio_server_t *server = server_new(&loop);
    sioc__eio_server_set_session_extra(server, EXTRA);
    sioc_eio_socket_t *socket = sioc__eio_socket_new(server, SIOC_TRANSPORT_WEBSOCKET);
    assert_non_null(socket);
    uint8_t *extra = sioc__eio_socket_extra(socket);
    assert_non_null(extra);
    uint8_t zeros[EXTRA] = {0};
    assert_memory_equal(extra, zeros, EXTRA);
    /* Every byte is the layer's (AddressSanitizer reports a short block); there is no data
     * pointer to clobber them. */
    memset(extra, 0x5a, EXTRA);
    assert_null(sioc_eio_socket_get_data(socket));
    sioc_eio_socket_set_data(socket, &extra);
    uint8_t expected[EXTRA];
    memset(expected, 0x5a, EXTRA);
    assert_memory_equal(extra, expected, EXTRA);
    assert_ptr_equal(sioc_eio_socket_server(socket), server);
    server_close(&loop, server);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_data_and_server_without_extra),
        cmocka_unit_test(test_extra_bytes_are_the_layer_above),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
