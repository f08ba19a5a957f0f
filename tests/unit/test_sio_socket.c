/* sioc_socket_auth_release and sioc_socket_handshake_copy on a real server: a peer on 127.0.0.1
 * opens an Engine.IO polling session and sends a CONNECT (with auth, or without), as
 * socket.io-client does, and the namespace's middleware and connection handler check what each
 * reader of the auth or the handshake gives, and what the socket keeps. Then a decoding
 * error on a client with two sockets, whose error handler disconnects one or closes the
 * connection while the others are still to be told (and, on the way, allRooms with the
 * in-memory adapter). The loop must close cleanly at the end
 * (ASan: nothing leaked, the text freed, no socket used after it went). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "socketio/sio_internal.h"

#define MAX_ITERATIONS 200000
#define TOKEN "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJl"

enum mode {
    RELEASE_IN_MIDDLEWARE,
    LEND_THEN_RELEASE, /* the connection handler lends the auth, then releases it */
    COPY_HANDSHAKE,    /* the connection handler copies the handshake */
};

typedef struct harness_s {
    uv_loop_t loop;
    sioc_server_t *server;
    int port;
    enum mode mode;
    int with_auth; /* the CONNECT's auth: {"token":TOKEN,"n":7}, else none */
    int middleware_ran;
    int connected;
    int closed;
} harness_t;

static int is_empty_object(const json_t *value)
{
    return json_is_object(value) && json_object_size(value) == 0;
}

static void assert_token(json_t *auth)
{
    assert_string_equal(json_string_value(json_object_get(auth, "token")), TOKEN);
    assert_int_equal(json_integer_value(json_object_get(auth, "n")), 7);
}

/* Every reader after a release: an empty auth, as for a CONNECT without one. */
static void assert_released(sioc_socket_t *socket)
{
    assert_null(sioc_socket_auth_string(socket, "token", NULL));
    json_t *copy = sioc_socket_auth_copy(socket);
    assert_true(is_empty_object(copy));
    json_decref(copy);
    json_t *fetched = sioc_socket_handshake_copy(socket);
    assert_true(is_empty_object(json_object_get(fetched, "auth")));
    json_decref(fetched);
    assert_true(is_empty_object(json_object_get(sioc_socket_handshake(socket), "auth")));
    assert_true(is_empty_object(sioc_socket_auth(socket)));
}

static void middleware(sioc_socket_t *socket, sioc_next_t *next, void *data)
{
    harness_t *harness = data;
    harness->middleware_ran = 1;
    size_t length = 0;
    char *token = sioc_socket_auth_string(socket, "token", &length);
    if (!harness->with_auth) {
        assert_null(token);
        sioc_next(next);
        return;
    }
    assert_non_null(token);
    assert_string_equal(token, TOKEN);
    assert_int_equal(length, strlen(TOKEN));
    free(token);
    if (harness->mode == RELEASE_IN_MIDDLEWARE) {
        sioc_socket_auth_release(socket);
        /* The text was the rare block's only member: both are given back. */
        assert_null(socket->rare);
        sioc_socket_auth_release(socket); /* again: nothing left to give */
        assert_null(socket->rare);
    }
    sioc_next(next);
}

/* What the opening request said (run_connect's GET), as Node's socket.handshake has it. */
static void assert_opening_request(json_t *handshake)
{
    json_t *headers = json_object_get(handshake, "headers");
    assert_string_equal(json_string_value(json_object_get(headers, "cookie")), "sid=s1; b=2");
    assert_string_equal(json_string_value(json_object_get(headers, "authorization")), "Bearer one");
    assert_string_equal(json_string_value(json_object_get(headers, "host")), "127.0.0.1");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(handshake, "query"), "token")), "q");
    assert_string_equal(json_string_value(json_object_get(handshake, "address")), "127.0.0.1");
}

/* A copy leaves the socket as it was: no handshake kept, the auth still its text (no object),
 * no rare block made for a socket without auth. Then it equals what sioc_socket_handshake()
 * keeps, and once that is kept, a copy is that object. */
static void check_handshake_copy(harness_t *harness, sioc_socket_t *socket)
{
    json_t *copy = sioc_socket_handshake_copy(socket);
    assert_non_null(copy);
    assert_opening_request(copy);
    if (harness->with_auth) {
        assert_token(json_object_get(copy, "auth"));
        assert_non_null(socket->rare);
        assert_null(socket->rare->handshake);
        assert_true(socket->rare->auth_is_text);
    } else {
        assert_true(is_empty_object(json_object_get(copy, "auth")));
        assert_null(socket->rare);
    }
    json_t *again = sioc_socket_handshake_copy(socket);
    assert_ptr_not_equal(again, copy); /* built again: nothing was kept to share */
    assert_true(json_equal(again, copy));
    json_decref(again);

    json_t *kept = sioc_socket_handshake(socket);
    assert_non_null(kept);
    assert_ptr_equal(socket->rare->handshake, kept);
    assert_true(json_equal(copy, kept));
    json_t *shared = sioc_socket_handshake_copy(socket);
    assert_ptr_equal(shared, kept);
    json_decref(shared);
    assert_ptr_equal(sioc_socket_handshake(socket), kept); /* still the socket's */
    json_decref(copy);
}

static void on_connection(sioc_socket_t *socket, void *data)
{
    harness_t *harness = data;
    harness->connected = 1;
    if (harness->mode == COPY_HANDSHAKE) {
        check_handshake_copy(harness, socket);
        return;
    }
    if (harness->mode == RELEASE_IN_MIDDLEWARE) {
        assert_released(socket);
        return;
    }
    /* Not released: kept for the socket's life, as Node keeps socket.handshake.auth. */
    json_t *copy = sioc_socket_auth_copy(socket);
    assert_token(copy);
    json_decref(copy);
    json_t *lent = sioc_socket_auth(socket);
    json_t *handshake = sioc_socket_handshake(socket);
    assert_token(lent);
    assert_token(json_object_get(handshake, "auth"));
    sioc_socket_auth_release(socket);
    /* What was lent stays valid and reads {} (ASan would catch a freed object here). */
    assert_true(is_empty_object(lent));
    assert_true(is_empty_object(json_object_get(handshake, "auth")));
    assert_ptr_equal(sioc_socket_auth(socket), lent);
    assert_released(socket);
}

static void on_server_closed(void *data)
{
    ((harness_t *)data)->closed = 1;
}

/* One HTTP/1.1 request on a connection of its own; the answer's body into body (NUL-ended).
 * The loop runs while the peer waits, a bounded number of iterations. */
static void exchange(harness_t *harness, const char *request, char *body, size_t body_size)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(harness->port)};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* The kernel completes a loopback connect from the listen backlog, without the loop. */
    assert_int_equal(connect(fd, (struct sockaddr *)&address, sizeof(address)), 0);
    size_t length = strlen(request);
    assert_int_equal(send(fd, request, length, 0), (ssize_t)length);
    char answer[4096];
    size_t received = 0;
    int done = 0;
    for (int i = 0; i < MAX_ITERATIONS && !done; i++) {
        uv_run(&harness->loop, UV_RUN_NOWAIT);
        ssize_t n = recv(fd, answer + received, sizeof(answer) - 1 - received, MSG_DONTWAIT);
        if (n == 0)
            done = 1;
        if (n > 0)
            received += (size_t)n;
        answer[received] = '\0';
        const char *end = strstr(answer, "\r\n\r\n");
        const char *field = strstr(answer, "Content-Length: ");
        if (end != NULL && field != NULL &&
            received >= (size_t)(end + 4 - answer) + strtoul(field + 16, NULL, 10))
            done = 1;
    }
    close(fd);
    assert_true(done);
    assert_non_null(strstr(answer, "HTTP/1.1 200"));
    const char *start = strstr(answer, "\r\n\r\n") + 4;
    snprintf(body, body_size, "%s", start);
}

static void run_connect(enum mode mode, int with_auth)
{
    harness_t harness = {.mode = mode, .with_auth = with_auth};
    assert_int_equal(uv_loop_init(&harness.loop), 0);
    sioc_server_options_t options;
    sioc_server_options_init(&options);
    assert_int_equal(sioc_server_new(&harness.loop, &options, &harness.server), 0);
    assert_int_equal(sioc_server_listen(harness.server, "127.0.0.1", 0), 0);
    harness.port = sioc_server_port(harness.server);
    sioc_namespace_t *root = sioc_server_of(harness.server, "/");
    assert_int_equal(sioc_namespace_use(root, middleware, &harness), 0);
    sioc_namespace_on_connection(root, on_connection, &harness);

    char body[4096], request[1024];
    exchange(&harness,
             "GET /socket.io/?EIO=4&transport=polling&token=q HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             "Cookie: sid=s1\r\nAuthorization: Bearer one\r\nCookie: b=2\r\n"
             "Authorization: Bearer two\r\nConnection: close\r\n\r\n",
             body, sizeof(body));
    char sid[SIOC_ID_SIZE] = "";
    assert_int_equal(sscanf(body, "0{\"sid\":\"%20[^\"]\"", sid), 1);
    const char *packet = with_auth ? "40{\"token\":\"" TOKEN "\",\"n\":7}" : "40";
    snprintf(request, sizeof(request),
             "POST /socket.io/?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: %zu\r\n"
             "Connection: close\r\n\r\n%s",
             sid, strlen(packet), packet);
    exchange(&harness, request, body, sizeof(body));
    assert_string_equal(body, "ok");
    for (int i = 0; i < MAX_ITERATIONS && !harness.connected; i++)
        uv_run(&harness.loop, UV_RUN_NOWAIT);
    assert_true(harness.middleware_ran);
    assert_true(harness.connected);

    sioc_server_close(harness.server, on_server_closed, &harness);
    uv_run(&harness.loop, UV_RUN_DEFAULT);
    assert_true(harness.closed);
    assert_int_equal(uv_loop_close(&harness.loop), 0);
}

static void test_release_after_reading_the_token(void **state)
{
    run_connect(RELEASE_IN_MIDDLEWARE, 1);
}

static void test_release_after_lending_the_object(void **state)
{
    run_connect(LEND_THEN_RELEASE, 1);
}

static void test_handshake_copy_with_auth(void **state)
{
    run_connect(COPY_HANDSHAKE, 1);
}

static void test_handshake_copy_without_auth(void **state)
{
    run_connect(COPY_HANDSHAKE, 0);
}

/* ---- a decoding error told to every socket of the client (Node's Client.onerror) ---------- */

enum error_mode {
    ERROR_ONLY_RECORDED,         /* both sockets hear it */
    ERROR_DISCONNECTS_ITSELF,    /* "/"'s handler leaves; "/a" still hears it */
    ERROR_DISCONNECTS_OTHER,     /* "/"'s handler makes "/a" leave: "/a" hears nothing */
    ERROR_CLOSES_THE_CONNECTION, /* "/"'s handler closes the whole client: "/a" hears nothing */
};

typedef struct error_harness_s {
    harness_t base;
    enum error_mode mode;
    sioc_socket_t *sockets[2]; /* "/" and "/a", once connected */
    int heard[2];
    int disconnected;
} error_harness_t;

static int namespace_index(sioc_socket_t *socket)
{
    return strcmp(sioc_namespace_name(sioc_socket_namespace(socket)), "/") == 0 ? 0 : 1;
}

static void on_error_connection(sioc_socket_t *socket, void *data)
{
    error_harness_t *harness = data;
    harness->sockets[namespace_index(socket)] = socket;
    harness->base.connected++;
}

static void on_error_disconnect(sioc_socket_t *socket, const char *reason, void *data)
{
    error_harness_t *harness = data;
    harness->sockets[namespace_index(socket)] = NULL;
    harness->disconnected++;
}

static void on_decode_error(sioc_socket_t *socket, const char *message, void *data)
{
    error_harness_t *harness = data;
    int index = namespace_index(socket);
    assert_string_equal(message, "unknown packet type 7");
    harness->heard[index]++;
    if (index != 0)
        return;
    if (harness->mode == ERROR_DISCONNECTS_ITSELF)
        sioc_socket_disconnect(socket, 0);
    else if (harness->mode == ERROR_DISCONNECTS_OTHER && harness->sockets[1] != NULL)
        sioc_socket_disconnect(harness->sockets[1], 0);
    else if (harness->mode == ERROR_CLOSES_THE_CONNECTION)
        sioc_socket_disconnect(socket, 1);
}

static void on_all_rooms(int error, json_t *rooms, void *data)
{
    json_t **out = data;
    assert_int_equal(error, 0);
    *out = json_deep_copy(rooms);
}

/* With the in-memory adapter the answer is this server's rooms, at once: "/"'s socket's own id
 * and the room it joined, nothing of "/a". */
static void check_all_rooms(error_harness_t *harness)
{
    sioc_socket_t *socket = harness->sockets[0];
    assert_int_equal(sioc_socket_join(socket, "r"), 0);
    json_t *rooms = NULL;
    assert_int_equal(sioc_namespace_all_rooms(sioc_socket_namespace(socket), on_all_rooms, &rooms),
                     0);
    assert_non_null(rooms);
    assert_int_equal(json_array_size(rooms), 2);
    int saw_id = 0, saw_room = 0;
    size_t index;
    json_t *name;
    json_array_foreach(rooms, index, name)
    {
        saw_id += strcmp(json_string_value(name), sioc_socket_id(socket)) == 0;
        saw_room += strcmp(json_string_value(name), "r") == 0;
    }
    assert_int_equal(saw_id + saw_room, 2);
    json_decref(rooms);
}

static void post(harness_t *harness, const char *sid, const char *payload)
{
    char request[1024], body[4096];
    snprintf(request, sizeof(request),
             "POST /socket.io/?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: %zu\r\n"
             "Connection: close\r\n\r\n%s",
             sid, strlen(payload), payload);
    exchange(harness, request, body, sizeof(body));
    assert_string_equal(body, "ok");
}

static void run_decode_error(enum error_mode mode, int first_heard, int second_heard)
{
    error_harness_t harness = {.mode = mode};
    harness_t *base = &harness.base;
    assert_int_equal(uv_loop_init(&base->loop), 0);
    sioc_server_options_t options;
    sioc_server_options_init(&options);
    assert_int_equal(sioc_server_new(&base->loop, &options, &base->server), 0);
    assert_int_equal(sioc_server_listen(base->server, "127.0.0.1", 0), 0);
    base->port = sioc_server_port(base->server);
    const char *names[] = {"/", "/a"};
    for (int i = 0; i < 2; i++) {
        sioc_namespace_t *nsp = sioc_server_of(base->server, names[i]);
        sioc_namespace_on_connection(nsp, on_error_connection, &harness);
        sioc_namespace_on_disconnect(nsp, on_error_disconnect, &harness);
        sioc_namespace_on_socket_error(nsp, on_decode_error, &harness);
    }
    char body[4096], sid[SIOC_ID_SIZE] = "";
    exchange(base,
             "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             "Connection: close\r\n\r\n",
             body, sizeof(body));
    assert_int_equal(sscanf(body, "0{\"sid\":\"%20[^\"]\"", sid), 1);
    post(base, sid,
         "40\x1e"
         "40/a,");
    for (int i = 0; i < MAX_ITERATIONS && base->connected < 2; i++)
        uv_run(&base->loop, UV_RUN_NOWAIT);
    assert_int_equal(base->connected, 2);
    if (mode == ERROR_ONLY_RECORDED)
        check_all_rooms(&harness);
    post(base, sid, "47"); /* an Engine.IO message holding Socket.IO packet type 7 */
    for (int i = 0; i < MAX_ITERATIONS && harness.disconnected < 2; i++)
        uv_run(&base->loop, UV_RUN_NOWAIT);
    assert_int_equal(harness.heard[0], first_heard);
    assert_int_equal(harness.heard[1], second_heard);
    assert_int_equal(harness.disconnected, 2); /* the forced close took what was left */

    sioc_server_close(base->server, on_server_closed, base);
    uv_run(&base->loop, UV_RUN_DEFAULT);
    assert_true(base->closed);
    assert_int_equal(uv_loop_close(&base->loop), 0);
}

static void test_decode_error_to_every_socket(void **state)
{
    run_decode_error(ERROR_ONLY_RECORDED, 1, 1);
}

static void test_decode_error_handler_disconnects_itself(void **state)
{
    run_decode_error(ERROR_DISCONNECTS_ITSELF, 1, 1);
}

static void test_decode_error_handler_disconnects_the_other(void **state)
{
    run_decode_error(ERROR_DISCONNECTS_OTHER, 1, 0);
}

static void test_decode_error_handler_closes_the_connection(void **state)
{
    run_decode_error(ERROR_CLOSES_THE_CONNECTION, 1, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_release_after_reading_the_token),
        cmocka_unit_test(test_release_after_lending_the_object),
        cmocka_unit_test(test_handshake_copy_with_auth),
        cmocka_unit_test(test_handshake_copy_without_auth),
        cmocka_unit_test(test_decode_error_to_every_socket),
        cmocka_unit_test(test_decode_error_handler_disconnects_itself),
        cmocka_unit_test(test_decode_error_handler_disconnects_the_other),
        cmocka_unit_test(test_decode_error_handler_closes_the_connection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
