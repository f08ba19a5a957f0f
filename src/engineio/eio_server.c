/* Engine.IO server: options, listening, request routing and verification in the order Node's
 * engine.io uses (server.ts verify()), error answers, CORS. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "engineio/eio_internal.h"

enum eio_error_code {
    EIO_UNKNOWN_TRANSPORT = 0,
    EIO_UNKNOWN_SID = 1,
    EIO_BAD_HANDSHAKE_METHOD = 2,
    EIO_BAD_REQUEST = 3,
    EIO_FORBIDDEN = 4,
    EIO_UNSUPPORTED_PROTOCOL_VERSION = 5,
};

static const char *const eio_error_messages[] = {
    "Transport unknown", "Session ID unknown", "Bad handshake method",
    "Bad request",       "Forbidden",          "Unsupported protocol version",
};

void sioc_eio_options_init(sioc_eio_options_t *options)
{
    memset(options, 0, sizeof(*options));
    options->path = "/engine.io/";
    options->ping_interval_ms = 25000;
    options->ping_timeout_ms = 20000;
    options->upgrade_timeout_ms = 10000;
    options->max_payload = 1000000;
    options->max_buffered_bytes = 8 * 1024 * 1024;
    options->transports = SIOC_TRANSPORT_POLLING | SIOC_TRANSPORT_WEBSOCKET;
    options->allow_upgrades = 1;
    options->request_timeout_ms = 10000;
    options->max_header_size = 16 * 1024;
    options->max_header_count = 100;
    options->max_websocket_fragments = 1024;
    options->shutdown_timeout_ms = 5000;
    options->http_compression = 1;
    options->http_compression_threshold = 1024;
    options->per_message_deflate_threshold = 1024;
    options->cookie.path = "/";
    options->cookie.same_site = "lax";
    options->cookie.max_age_s = -1;
    options->cookie.http_only = 1;
}

/* ---- the cookie option (the cookie npm module's serialize()) ------------------------------- */

/* Path and Domain: printable ASCII without ';' (they end at the next attribute). */
static int is_attribute_value(const char *value)
{
    for (; *value != '\0'; value++) {
        unsigned char c = (unsigned char)*value;
        if (c < 0x20 || c > 0x7e || c == ';')
            return 0;
    }
    return 1;
}

static const char *same_site_attribute(const char *same_site)
{
    static const char *const values[][2] = {
        {"lax", "; SameSite=Lax"}, {"strict", "; SameSite=Strict"}, {"none", "; SameSite=None"}};
    if (same_site == NULL)
        return "";
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        if (strcasecmp(same_site, values[i][0]) == 0)
            return values[i][1];
    }
    return NULL;
}

/* Builds the Set-Cookie line around the session id once, in the cookie module's attribute
 * order: Max-Age, Domain, Path, HttpOnly, Secure, SameSite. */
static int build_cookie(sioc_eio_server_t *server, const sioc_eio_options_t *options)
{
    if (options->cookie.name == NULL)
        return 0;
    const char *same_site = same_site_attribute(options->cookie.same_site);
    const char *domain = options->cookie.domain;
    const char *path = options->cookie.path;
    if (!sioc__http_is_token(options->cookie.name) || same_site == NULL ||
        (domain != NULL && !is_attribute_value(domain)) ||
        (path != NULL && !is_attribute_value(path)))
        return SIOC_EINVAL;
    char max_age[32] = "";
    if (options->cookie.max_age_s >= 0)
        snprintf(max_age, sizeof(max_age), "; Max-Age=%ld", options->cookie.max_age_s);
    size_t length = strlen(max_age) + (domain ? strlen(domain) + 9 : 0) +
                    (path ? strlen(path) + 7 : 0) + strlen(same_site) + 32;
    server->cookie_suffix = malloc(length);
    server->cookie_prefix = malloc(strlen(options->cookie.name) + 16);
    if (server->cookie_suffix == NULL || server->cookie_prefix == NULL)
        return SIOC_ENOMEM;
    snprintf(server->cookie_prefix, strlen(options->cookie.name) + 16,
             "Set-Cookie: %s=", options->cookie.name);
    snprintf(server->cookie_suffix, length, "%s%s%s%s%s%s%s%s\r\n", max_age,
             domain ? "; Domain=" : "", domain ? domain : "", path ? "; Path=" : "",
             path ? path : "", options->cookie.http_only ? "; HttpOnly" : "",
             options->cookie.secure ? "; Secure" : "", same_site);
    return 0;
}

/* Node tests the sid's truth (`if (sid)`): "sid=" is no sid, so a handshake. */
static int request_has_sid(const sioc__http_request_t *request)
{
    char sid[8];
    long length =
        sioc__http_query_get(request->query, request->query_length, "sid", sid, sizeof(sid));
    return length > 0 || length == -2;
}

void sioc__eio_cookie_header(sioc_eio_server_t *server, const sioc_eio_socket_t *socket,
                             const sioc__http_request_t *request, char *out, size_t size)
{
    out[0] = '\0';
    /* Only the handshake (Node: the "initial_headers" of a request without sid). */
    if (server->cookie_prefix == NULL || request_has_sid(request))
        return;
    snprintf(out, size, "%s%s%s", server->cookie_prefix, socket->id, server->cookie_suffix);
}

/* ---- CORS (the behaviour of the cors npm module, minus headers for refused origins) ---- */

static int origin_allowed(sioc_eio_server_t *server, const sioc__http_header_t *origin,
                          int *wildcard)
{
    *wildcard = 0;
    for (size_t i = 0; i < server->options.cors_origin_count; i++) {
        const char *allowed = server->cors_origins[i];
        if (strcmp(allowed, "*") == 0) {
            *wildcard = 1;
            return 1;
        }
        if (origin != NULL && strlen(allowed) == origin->value_length &&
            memcmp(allowed, origin->value, origin->value_length) == 0)
            return 1;
    }
    return 0;
}

void sioc__eio_cors_headers(sioc_eio_server_t *server, const sioc__http_request_t *request,
                            char *out, size_t size)
{
    out[0] = '\0';
    if (server->cors_origins == NULL)
        return;
    const sioc__http_header_t *origin = sioc__http_request_header(request, "origin");
    int wildcard;
    if (!origin_allowed(server, origin, &wildcard)) {
        snprintf(out, size, "Vary: Origin\r\n");
        return;
    }
    if (wildcard) {
        snprintf(out, size, "Access-Control-Allow-Origin: *\r\n");
        return;
    }
    snprintf(out, size, "Access-Control-Allow-Origin: %.*s\r\nVary: Origin\r\n%s",
             (int)origin->value_length, origin->value,
             server->options.cors_credentials ? "Access-Control-Allow-Credentials: true\r\n" : "");
}

static void answer_preflight(sioc_eio_server_t *server, sioc__http_conn_t *http,
                             const sioc__http_request_t *request)
{
    char headers[4096];
    sioc__eio_cors_headers(server, request, headers, sizeof(headers));
    size_t used = strlen(headers);
    if (strstr(headers, "Access-Control-Allow-Origin") != NULL) {
        const sioc__http_header_t *asked =
            sioc__http_request_header(request, "access-control-request-headers");
        used +=
            (size_t)snprintf(headers + used, sizeof(headers) - used,
                             "Access-Control-Allow-Methods: GET,HEAD,PUT,PATCH,POST,DELETE\r\n");
        if (asked != NULL && asked->value_length < 2048)
            snprintf(headers + used, sizeof(headers) - used,
                     "Access-Control-Allow-Headers: %.*s\r\n"
                     "Vary: Access-Control-Request-Headers\r\n",
                     (int)asked->value_length, asked->value);
    }
    sioc__http_respond(http, 204, headers, NULL, 0);
}

/* ---- errors ---------------------------------------------------------------------------- */

static void answer_error(sioc_eio_server_t *server, sioc__http_conn_t *http,
                         const sioc__http_request_t *request, int code, const char *message)
{
    server->stats.refused[code]++;
    if (message == NULL)
        message = eio_error_messages[code];
    if (request->upgrade) {
        /* Node's abortUpgrade(): a bare 400 with the message, then the socket is destroyed. */
        sioc__http_set_close(http);
        sioc__http_respond(http, 400, "Content-Type: text/html\r\n", message, strlen(message));
        return;
    }
    json_t *body_json = json_pack("{s:i,s:s}", "code", code, "message", message);
    char *body = body_json ? json_dumps(body_json, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(body_json);
    char headers[4096];
    sioc__eio_cors_headers(server, request, headers, sizeof(headers));
    size_t used = strlen(headers);
    snprintf(headers + used, sizeof(headers) - used, "Content-Type: application/json\r\n");
    sioc__http_respond(http, code == EIO_FORBIDDEN ? 403 : 400, headers, body,
                       body ? strlen(body) : 0);
    free(body);
}

/* ---- verification ------------------------------------------------------------------------ */

/* Decoded query values are compared with their length: "websocket%00junk" is no transport
 * and "<sid>%00junk" no session id, as in Node, where they are JavaScript strings. */
static int value_is(const char *value, long length, const char *expected)
{
    return length >= 0 && (size_t)length == strlen(expected) &&
           memcmp(value, expected, (size_t)length) == 0;
}

static int parse_transport(const char *name, long length)
{
    if (value_is(name, length, "polling"))
        return SIOC_TRANSPORT_POLLING;
    if (value_is(name, length, "websocket"))
        return SIOC_TRANSPORT_WEBSOCKET;
    return 0;
}

static sioc_eio_socket_t *find_socket(sioc_eio_server_t *server, const char *id, long length)
{
    if (length != SIOC_ID_LENGTH || memchr(id, '\0', (size_t)length) != NULL)
        return NULL;
    return sioc__eio_socket_find(server, id);
}

static int is_websocket_upgrade(const sioc__http_request_t *request)
{
    const sioc__http_header_t *upgrade = sioc__http_request_header(request, "upgrade");
    return request->upgrade && upgrade != NULL && upgrade->value_length == 9 &&
           strncasecmp(upgrade->value, "websocket", 9) == 0;
}

/* Node's check for characters a header may not hold (RFC 7230 field-value). */
static int has_invalid_header_chars(const sioc__http_header_t *header)
{
    for (size_t i = 0; i < header->value_length; i++) {
        unsigned char c = (unsigned char)header->value[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 1;
    }
    return 0;
}

static int allow_request(sioc_eio_server_t *server, const sioc__http_request_t *request,
                         const char **message)
{
    if (server->options.allow_request == NULL)
        return 0;
    struct sioc_request_s view = {request};
    return server->options.allow_request(&view, server->options.allow_request_data, message);
}

typedef struct eio_route_s {
    int transport;
    sioc_eio_socket_t *socket; /* NULL for a handshake */
} eio_route_t;

/* Returns -1, with the error code and message set, when the request must be refused. */
static int verify(sioc_eio_server_t *server, const sioc__http_request_t *request,
                  eio_route_t *route, int *code, const char **message)
{
    char value[64];
    *message = NULL;
    long length = sioc__http_query_get(request->query, request->query_length, "transport", value,
                                       sizeof(value));
    route->transport = parse_transport(value, length);
    if (!(route->transport & server->options.transports)) {
        *code = EIO_UNKNOWN_TRANSPORT;
        return -1;
    }
    const sioc__http_header_t *origin = sioc__http_request_header(request, "origin");
    if (origin != NULL && has_invalid_header_chars(origin)) {
        *code = EIO_BAD_REQUEST;
        return -1;
    }
    int upgrade = is_websocket_upgrade(request);
    length =
        sioc__http_query_get(request->query, request->query_length, "sid", value, sizeof(value));
    if (length > 0 || length == -2) { /* "sid=" is none (Node: `if (sid)`) */
        route->socket = find_socket(server, value, length);
        if (route->socket == NULL) {
            *code = EIO_UNKNOWN_SID;
            return -1;
        }
        if (!upgrade && route->socket->transport != route->transport) {
            *code = EIO_BAD_REQUEST;
            return -1;
        }
        if (route->socket->protocol != sioc__eio_request_protocol(request)) {
            *code = EIO_BAD_REQUEST; /* Node's PROTOCOL_MISMATCH */
            return -1;
        }
    } else {
        route->socket = NULL;
        if (request->method != HTTP_GET) {
            *code = EIO_BAD_HANDSHAKE_METHOD;
            return -1;
        }
        if (route->transport == SIOC_TRANSPORT_WEBSOCKET && !upgrade) {
            *code = EIO_BAD_REQUEST;
            return -1;
        }
    }
    if (allow_request(server, request, message) != 0) {
        *code = EIO_FORBIDDEN;
        return -1;
    }
    return 0;
}

int sioc__eio_request_protocol(const sioc__http_request_t *request)
{
    char version[8];
    long length = sioc__http_query_get(request->query, request->query_length, "EIO", version,
                                       sizeof(version));
    return value_is(version, length, "4") ? 4 : 3;
}

int sioc__eio_request_b64(const sioc__http_request_t *request)
{
    char value[8];
    /* Node tests the value's truth: "b64=" is no b64, any other value is. */
    long length =
        sioc__http_query_get(request->query, request->query_length, "b64", value, sizeof(value));
    return length > 0 || length == -2;
}

static int protocol_supported(sioc_eio_server_t *server, const sioc__http_request_t *request)
{
    return sioc__eio_request_protocol(request) == 4 || server->options.allow_eio3;
}

/* ---- routing ----------------------------------------------------------------------------- */

static int path_matches(sioc_eio_server_t *server, const sioc__http_request_t *request)
{
    size_t path_length = strlen(server->path);
    return request->path_length >= path_length &&
           memcmp(request->path, server->path, path_length) == 0;
}

static void open_polling_session(sioc_eio_server_t *server, sioc__http_conn_t *http,
                                 sioc__http_request_t *request)
{
    sioc_eio_socket_t *socket = sioc__eio_socket_new(server, SIOC_TRANSPORT_POLLING);
    if (socket == NULL) {
        sioc__http_respond(http, 500, NULL, NULL, 0);
        return;
    }
    int offer_upgrade =
        server->options.allow_upgrades && (server->options.transports & SIOC_TRANSPORT_WEBSOCKET);
    size_t length;
    char *open = sioc__eio_encode_open(socket->id, offer_upgrade, socket->limits->ping_interval_ms,
                                       socket->limits->ping_timeout_ms, socket->limits->max_payload,
                                       &length);
    sioc__buffer_t *packet = open ? sioc__buffer_new_copy(open, length, 0) : NULL;
    free(open);
    if (packet == NULL) {
        sioc__eio_socket_close(socket, "transport error");
        sioc__http_respond(http, 500, NULL, NULL, 0);
        return;
    }
    socket->protocol = (uint8_t)sioc__eio_request_protocol(request);
    socket->polling_b64 = (uint8_t)sioc__eio_request_b64(request);
    socket->open_alone = socket->protocol == 3;
    sioc__eio_socket_send_packet(socket, packet, 0);
    sioc__buffer_unref(packet);
    sioc__eio_socket_start_heartbeat(socket);
    sioc__eio_server_notify_connection(server, socket, request);
    /* The open packet (and, in v4, anything on_connection sent) answers this GET. */
    sioc__eio_polling_handle(server, http, request, socket);
}

static void on_request(sioc__http_conn_t *http, sioc__http_request_t *request, uint8_t *leftover,
                       size_t leftover_length)
{
    sioc_eio_server_t *server = sioc__http_get_server(http)->data;
    if (!path_matches(server, request)) {
        sioc__http_set_close(http);
        sioc__http_respond(http, 404, "Content-Type: text/plain; charset=UTF-8\r\n", "Not Found",
                           9);
        return;
    }
    if (request->method == HTTP_OPTIONS && server->cors_origins != NULL && !request->upgrade) {
        answer_preflight(server, http, request);
        return;
    }
    eio_route_t route;
    int code;
    const char *message;
    if (verify(server, request, &route, &code, &message) != 0) {
        answer_error(server, http, request, code, message);
        return;
    }
    if (route.socket == NULL && !protocol_supported(server, request)) {
        answer_error(server, http, request, EIO_UNSUPPORTED_PROTOCOL_VERSION, NULL);
        return;
    }
    if (request->upgrade) {
        sioc__eio_websocket_accept(server, http, request, route.socket, leftover, leftover_length);
        return;
    }
    if (route.socket == NULL)
        open_polling_session(server, http, request);
    else
        sioc__eio_polling_handle(server, http, request, route.socket);
}

static void on_abort(sioc__http_conn_t *http, sioc__http_request_t *request)
{
    sioc__eio_polling_abort(http);
}

static const sioc__http_handler_t http_handler = {on_request, on_abort};

void sioc__eio_server_notify_connection(sioc_eio_server_t *server, sioc_eio_socket_t *socket,
                                        const sioc__http_request_t *request)
{
    struct sioc_request_s view = {request};
    server->stats.sessions_opened++;
    if (server->callbacks.on_connection != NULL)
        server->callbacks.on_connection(socket, &view, server->data);
}

/* ---- public request view ----------------------------------------------------------------- */

const char *sioc_request_method(const sioc_request_t *request)
{
    return http_method_str((enum http_method)request->http->method);
}

const char *sioc_request_url(const sioc_request_t *request)
{
    return request->http->url;
}

const char *sioc_request_header(const sioc_request_t *request, const char *name, size_t *length)
{
    const sioc__http_header_t *header = sioc__http_request_header(request->http, name);
    if (header == NULL)
        return NULL;
    if (length != NULL)
        *length = header->value_length;
    return header->value;
}

const char *sioc_request_remote_address(const sioc_request_t *request)
{
    return request->http->remote_address;
}

size_t sioc_request_header_count(const sioc_request_t *request)
{
    return request->http->header_count;
}

int sioc_request_header_at(const sioc_request_t *request, size_t index, const char **name,
                           const char **value, size_t *length)
{
    if (index >= request->http->header_count)
        return -1;
    *name = request->http->headers[index].name;
    *value = request->http->headers[index].value;
    *length = request->http->headers[index].value_length;
    return 0;
}

/* ---- life cycle ---------------------------------------------------------------------------- */

static void flush_hook(void *data)
{
    sioc_eio_server_t *server = data;
    sioc__eio_polling_flush_all(server);
    sioc__eio_socket_reap(server);
}

static int copy_options(sioc_eio_server_t *server, const sioc_eio_options_t *options)
{
    server->options = *options;
    const char *path = options->path ? options->path : "/engine.io/";
    size_t length = strlen(path);
    server->path = malloc(length + 2);
    if (server->path == NULL)
        return SIOC_ENOMEM;
    /* addTrailingSlash: "/socket.io" serves "/socket.io/" and below, like Node. */
    memcpy(server->path, path, length + 1);
    if (length == 0 || path[length - 1] != '/')
        memcpy(server->path + length, "/", 2);
    server->options.path = server->path;
    server->options.cors_origins = NULL;
    server->options.cors_origin_count = 0;
    int rc = sioc_eio_server_set_cors(server, options->cors_origins, options->cors_origin_count,
                                      options->cors_credentials);
    if (rc == 0)
        rc = build_cookie(server, options);
    /* Only the built header is kept: the caller's strings may go. */
    memset(&server->options.cookie, 0, sizeof(server->options.cookie));
    memset(&server->options.tls, 0, sizeof(server->options.tls)); /* the http server holds it */
    return rc;
}

/* The context options.tls asks for (a new reference), NULL for plaintext; SIOC_EINVAL when the
 * files do not make one (sioc_tls_context_new says why). */
static int tls_context_of(const sioc_eio_options_t *options, SSL_CTX **out)
{
    *out = NULL;
    if (options->tls.context != NULL) {
        SSL_CTX_up_ref(options->tls.context);
        *out = options->tls.context;
        return 0;
    }
    if (options->tls.cert_file == NULL && options->tls.key_file == NULL)
        return 0;
    char error[256];
    *out =
        sioc__tls_context_new(options->tls.cert_file, options->tls.key_file, error, sizeof(error));
    return *out != NULL ? 0 : SIOC_EINVAL;
}

void sioc_eio_server_set_tls(sioc_eio_server_t *server, SSL_CTX *ctx)
{
    sioc__http_server_set_tls(&server->http, ctx);
}

static void free_origins(char **origins)
{
    for (size_t i = 0; origins != NULL && origins[i] != NULL; i++)
        free(origins[i]);
    free(origins);
}

/* The list is copied first and swapped in whole, so a failure leaves the previous one. */
int sioc_eio_server_set_cors(sioc_eio_server_t *server, const char *const *origins, size_t count,
                             int credentials)
{
    char **copy = NULL;
    if (origins != NULL) {
        copy = calloc(count + 1, sizeof(char *));
        for (size_t i = 0; copy != NULL && i < count; i++) {
            copy[i] = strdup(origins[i]);
            if (copy[i] == NULL) {
                free_origins(copy);
                copy = NULL;
            }
        }
        if (copy == NULL)
            return SIOC_ENOMEM;
    }
    free_origins(server->cors_origins);
    server->cors_origins = copy;
    server->options.cors_origins = (const char *const *)copy;
    server->options.cors_origin_count = copy != NULL ? count : 0;
    server->options.cors_credentials = credentials;
    return 0;
}

static sioc__buffer_t *static_packet(const char *text)
{
    return sioc__buffer_new_copy(text, strlen(text), 0);
}

static int create_packets(sioc_eio_server_t *server)
{
    server->ping_packet = static_packet("2");
    server->pong_packet = static_packet("3");
    server->noop_packet = static_packet("6");
    server->close_packet = static_packet("1");
    server->probe_packet = static_packet("3probe");
    server->separator = static_packet("\x1e");
    return server->ping_packet && server->pong_packet && server->noop_packet &&
                   server->close_packet && server->probe_packet && server->separator
               ? 0
               : SIOC_ENOMEM;
}

static void free_server(sioc_eio_server_t *server)
{
    sioc__buffer_unref(server->ping_packet);
    sioc__buffer_unref(server->pong_packet);
    sioc__buffer_unref(server->noop_packet);
    sioc__buffer_unref(server->close_packet);
    sioc__buffer_unref(server->probe_packet);
    sioc__buffer_unref(server->separator);
    free_origins(server->cors_origins);
    free(server->cookie_prefix);
    free(server->cookie_suffix);
    sioc__http_compressor_free(&server->compressor);
    sioc__ws_zlib_free(&server->ws_zlib);
    free(server->path);
    sioc__index_clear(&server->sessions);
    free(server);
}

/* ---- limits sets (eio_internal.h) ---------------------------------------------------------- */

static sioc__eio_limits_t *limits_new(sioc_eio_server_t *server, const sioc_eio_options_t *options)
{
    sioc__eio_limits_t *limits = calloc(1, sizeof(*limits));
    if (limits == NULL)
        return NULL;
    limits->server = server;
    limits->ping_interval_ms = options->ping_interval_ms;
    limits->ping_timeout_ms = options->ping_timeout_ms;
    limits->max_payload = options->max_payload;
    limits->max_buffered_bytes = options->max_buffered_bytes;
    /* uv_timer_init only fails on a broken loop (as in init_timers) */
    if (sioc__deadline_list_init(server->loop, &limits->ping_interval, options->ping_interval_ms,
                                 sioc__eio_on_ping_interval) != 0 ||
        sioc__deadline_list_init(server->loop, &limits->ping_timeout, options->ping_timeout_ms,
                                 sioc__eio_on_ping_timeout) != 0 ||
        sioc__deadline_list_init(server->loop, &limits->ping_timeout_v3,
                                 (uint64_t)options->ping_interval_ms + options->ping_timeout_ms,
                                 sioc__eio_on_ping_timeout) != 0)
        abort();
    limits->ping_interval.data = limits->ping_timeout.data = limits->ping_timeout_v3.data = limits;
    limits->next = server->limit_sets;
    server->limit_sets = limits;
    return limits;
}

static void on_limits_handle_closed(uv_handle_t *handle)
{
    sioc__eio_limits_t *limits = ((sioc__deadline_list_t *)handle)->data;
    if (--limits->handles_open > 0)
        return;
    sioc_eio_server_t *server = limits->server;
    sioc__eio_limits_t **link = &server->limit_sets;
    while (*link != limits)
        link = &(*link)->next;
    *link = limits->next;
    free(limits);
    if (server->closing) {
        server->handles_open--;
        sioc__eio_server_maybe_finished(server);
    }
}

/* The largest max_payload of the sets in use: the HTTP layer's cap on every POST body (each
 * session's own is checked when its POST arrives). */
static size_t largest_payload(const sioc_eio_server_t *server)
{
    size_t largest = 0;
    for (const sioc__eio_limits_t *limits = server->limit_sets; limits != NULL;
         limits = limits->next)
        if (limits->handles_open == 0 && limits->max_payload > largest)
            largest = limits->max_payload;
    return largest;
}

static void limits_close(sioc__eio_limits_t *limits)
{
    if (limits->handles_open > 0)
        return; /* closing already */
    limits->handles_open = 3;
    sioc__deadline_list_close(&limits->ping_interval, on_limits_handle_closed);
    sioc__deadline_list_close(&limits->ping_timeout, on_limits_handle_closed);
    sioc__deadline_list_close(&limits->ping_timeout_v3, on_limits_handle_closed);
    limits->server->http.limits.max_body_size = largest_payload(limits->server);
}

void sioc__eio_limits_release(sioc__eio_limits_t *limits)
{
    if (--limits->sessions == 0 && limits != limits->server->limits && !limits->server->closing)
        limits_close(limits);
}

int sioc_eio_server_set_limits(sioc_eio_server_t *server, const sioc_eio_options_t *options)
{
    if (server->closing)
        return SIOC_ECLOSED;
    sioc__eio_limits_t *previous = server->limits;
    sioc__eio_limits_t *limits = limits_new(server, options);
    if (limits == NULL)
        return SIOC_ENOMEM;
    server->limits = limits;
    if (previous->sessions == 0)
        limits_close(previous);
    server->options.ping_interval_ms = options->ping_interval_ms;
    server->options.ping_timeout_ms = options->ping_timeout_ms;
    server->options.max_payload = options->max_payload;
    server->options.max_buffered_bytes = options->max_buffered_bytes;
    server->options.upgrade_timeout_ms = options->upgrade_timeout_ms;
    /* Upgrades that start from now on; one in progress keeps its deadline. */
    sioc__deadline_list_set_delay(&server->upgrade_timeout, options->upgrade_timeout_ms);
    server->http.limits.max_body_size = largest_payload(server);
    server->http.limits.max_buffered_bytes = options->max_buffered_bytes; /* new connections */
    return 0;
}

static int init_timers(sioc_eio_server_t *server)
{
    const sioc_eio_options_t *options = &server->options;
    server->limits = limits_new(server, options);
    int rc = server->limits != NULL ? 0 : SIOC_ENOMEM;
    if (rc == 0)
        rc = sioc__deadline_list_init(server->loop, &server->upgrade_timeout,
                                      options->upgrade_timeout_ms, sioc__eio_on_upgrade_timeout);
    server->upgrade_timeout.data = server;
    if (rc == 0)
        rc = uv_timer_init(server->loop, &server->shutdown_timer);
    server->shutdown_timer.data = server;
    return rc;
}

int sioc_eio_server_new(uv_loop_t *loop, const sioc_eio_options_t *options,
                        const sioc_eio_callbacks_t *callbacks, void *data, sioc_eio_server_t **out)
{
    sioc_eio_server_t *server = calloc(1, sizeof(*server));
    if (server == NULL)
        return SIOC_ENOMEM;
    server->loop = loop;
    server->data = data;
    sioc__index_init(&server->sessions, offsetof(sioc_eio_socket_t, id));
    if (callbacks != NULL)
        server->callbacks = *callbacks;
    SSL_CTX *tls = NULL;
    int rc = tls_context_of(options, &tls);
    if (rc == 0)
        rc = copy_options(server, options);
    if (rc == 0)
        rc = create_packets(server);
    if (rc != 0)
        goto error;
    sioc__http_limits_t limits = {
        .max_header_size = options->max_header_size,
        .max_header_count = options->max_header_count,
        .max_body_size = options->max_payload,
        .request_timeout_ms = options->request_timeout_ms,
        .max_buffered_bytes = options->max_buffered_bytes,
    };
    /* From here on libuv handles exist: they are released through sioc_eio_server_close. */
    if ((rc = sioc__io_init(&server->io, loop)) != 0 || (rc = init_timers(server)) != 0 ||
        (rc = sioc__http_server_init(&server->http, &server->io, &limits, &http_handler, server)) !=
            0 ||
        (rc = sioc__io_add_flush_hook(&server->io, flush_hook, server)) != 0)
        abort(); /* only on out-of-memory or a broken loop; a half-built loop can't be unwound */
    server->io.conn_room = sizeof(sioc__eio_websocket_t);
    sioc__http_server_set_tls(&server->http, tls);
    SSL_CTX_free(tls);
    *out = server;
    return 0;
error:
    SSL_CTX_free(tls);
    free_server(server);
    return rc;
}

int sioc_eio_server_listen(sioc_eio_server_t *server, const char *host, int port)
{
    return sioc__http_server_listen(&server->http, host, port);
}

int sioc_eio_server_port(sioc_eio_server_t *server)
{
    return sioc__http_server_port(&server->http);
}

const char *sioc_eio_error_message(int code)
{
    return code >= 0 && code < SIOC_EIO_ERROR_COUNT ? eio_error_messages[code] : NULL;
}

void sioc_eio_server_stats(const sioc_eio_server_t *server, sioc_eio_stats_t *out)
{
    *out = server->stats;
    out->polling_sessions = out->websocket_sessions = 0;
    /* Counted when asked (a scrape every few seconds) rather than kept on every upgrade. */
    for (uint32_t i = 0; i < server->sessions.capacity; i++) {
        const sioc_eio_socket_t *socket = sioc__index_at(&server->sessions, i);
        if (socket == NULL)
            continue;
        if (socket->transport == SIOC_TRANSPORT_WEBSOCKET)
            out->websocket_sessions++;
        else
            out->polling_sessions++;
    }
}

size_t sioc_eio_server_socket_count(const sioc_eio_server_t *server)
{
    return server->socket_count;
}

static void on_io_closed(sioc__io_t *io)
{
    sioc_eio_server_t *server = (sioc_eio_server_t *)((char *)io - offsetof(sioc_eio_server_t, io));
    void (*closed_cb)(void *) = server->closed_cb;
    void *closed_data = server->closed_data;
    free_server(server);
    if (closed_cb != NULL)
        closed_cb(closed_data);
}

static void on_shutdown_timer_closed(uv_handle_t *handle)
{
    sioc_eio_server_t *server = handle->data;
    sioc__io_close(&server->io, on_io_closed);
}

void sioc__eio_server_maybe_finished(sioc_eio_server_t *server)
{
    if (server->closing != 1 || server->handles_open > 0 || server->websockets != NULL ||
        server->http.connections != NULL)
        return;
    server->closing = 2; /* sessions, connections and timers are gone; now the loop hooks */
    uv_close((uv_handle_t *)&server->shutdown_timer, on_shutdown_timer_closed);
}

/* Peers that neither read nor close would hold a graceful close for the whole lingering time,
 * each: past the deadline every connection left is dropped. */
static void on_shutdown_deadline(uv_timer_t *timer)
{
    sioc_eio_server_t *server = timer->data;
    for (sioc__eio_websocket_t *websocket = server->websockets; websocket != NULL;
         websocket = websocket->next)
        sioc__conn_close(sioc__eio_websocket_conn(websocket), 0);
    sioc__http_server_abort_connections(&server->http);
}

static void on_handle_closed(uv_handle_t *handle)
{
    sioc__deadline_list_t *list = (sioc__deadline_list_t *)handle;
    sioc_eio_server_t *server = list->data;
    server->handles_open--;
    sioc__eio_server_maybe_finished(server);
}

static void on_http_closed(sioc__http_server_t *http)
{
    sioc_eio_server_t *server = http->data;
    server->handles_open--;
    sioc__eio_server_maybe_finished(server);
}

void sioc_eio_server_close(sioc_eio_server_t *server, void (*closed_cb)(void *data), void *data)
{
    if (server->closing)
        return;
    server->closing = 1;
    server->closed_cb = closed_cb;
    server->closed_data = data;
    if (server->options.shutdown_timeout_ms > 0) {
        uv_timer_start(&server->shutdown_timer, on_shutdown_deadline,
                       server->options.shutdown_timeout_ms, 0);
        /* A bound, not a reason to wait: connections idle in their lingering close do not
         * keep the loop running, and neither does this timer. */
        uv_unref((uv_handle_t *)&server->shutdown_timer);
    }
    /* Closing takes a session out of the index (finalize), so this ends. */
    sioc_eio_socket_t *socket;
    while ((socket = sioc__index_any(&server->sessions)) != NULL)
        sioc__eio_socket_close(socket, "server shutting down");
    sioc__eio_socket_reap(server);
    sioc__eio_websocket_close_all(server);
    /* The upgrade timer, the HTTP server and one per limits set (closing ones too). */
    server->handles_open = 2;
    for (sioc__eio_limits_t *limits = server->limit_sets; limits != NULL; limits = limits->next)
        server->handles_open++;
    for (sioc__eio_limits_t *limits = server->limit_sets; limits != NULL; limits = limits->next)
        limits_close(limits);
    sioc__deadline_list_close(&server->upgrade_timeout, on_handle_closed);
    sioc__http_server_close(&server->http, on_http_closed);
}
