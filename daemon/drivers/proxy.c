/* proxy: the channel's logic stays in the app's back end, in any language (Centrifugo's proxy;
 * Carolina's custom channel classes, seed 004). Both halves are optional (at least one):
 *
 * - options.connectUrl: each connection, after the channel's authentication, is POSTed as
 *   {namespace, socketId, user, sessionId, handshake: {headers, query, address, ...}, auth};
 *   the back end answers {accept: true, user?, rooms?, data?} (user becomes socket.data.user,
 *   the socket joins rooms, data is merged into socket.data) or {accept: false, message?}
 *   (connect_error "Authentication error: <message>"). Retried once when the back end could not
 *   be reached (the request changes nothing); a failure refuses the connection.
 * - options.eventUrl: each client event is POSTed as {namespace, event, args, socketId, user,
 *   rooms, data, ack}, + attachments (the event's binary parts as base64, that the placeholders
 *   {_placeholder: true, num: i} in args stand for; PROXY_MAX_SIZE bytes at most); the answer
 *   may hold ack (the acknowledgement's arguments), emit [{event, args, rooms?, users?}] (no
 *   rooms and no users: to the socket), join, leave, data and disconnect. Never retried (an
 *   event may not be idempotent); a failure (timeout, status other than 200, not JSON) is a log
 *   line and {ok:false, error:{code:"unavailable"}} in the ack, or a proxy:error event. A
 *   socket's events reach the back end one at a time, in arrival order (driver_util's order):
 *   the next is sent once the previous one is answered.
 * Timeouts (options.timeoutMs) bound every request; libcurl keeps up to options.maxConnections
 * connections alive to the back end. */
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "driver_util.h"
#include "http_client.h"
#include "log.h"
#include "proxy_answer.h"

#define PROXY_ERROR_EVENT "proxy:error"
/* The largest answer, and the most attachment bytes an event may forward. */
#define PROXY_MAX_SIZE (1024 * 1024)
/* Where the rooms of a connect answer wait in socket.data until on_connection joins them: they
 * go with the socket if it never connects. */
#define PROXY_PENDING_ROOMS "sioc:rooms"

typedef struct proxy_s {
    driver_base_t base;
    http_client_t *http;
    char *connect_url;
    char *event_url;
} proxy_t;

typedef struct proxy_socket_s {
    driver_socket_t order; /* first: events reach the back end in arrival order */
} proxy_socket_t;

static proxy_t *proxy_of(const driver_call_t *call)
{
    return (proxy_t *)call->base; /* the base is the first member */
}

/* ---- connect proxy ----------------------------------------------------------------------------
 */

typedef struct connect_request_s {
    proxy_t *proxy; /* a reference on its base */
    sioc_socket_t *socket;
    sioc_next_t *next; /* both valid until sioc_next / sioc_next_error */
    json_t *body;
    int retried;
} connect_request_t;

static void connect_done(connect_request_t *request)
{
    json_decref(request->body);
    driver_base_t *base = &request->proxy->base;
    free(request);
    if (--base->references == 0)
        base->release(base);
}

static void refuse(connect_request_t *request, const char *message)
{
    char text[512];
    snprintf(text, sizeof(text), "Authentication error: %s", message);
    sioc_next_error(request->next, text, NULL);
    connect_done(request);
}

/* A user the back end names: an object with an id (a string or an integer). */
static int valid_user(json_t *user)
{
    json_t *id = json_object_get(user, "id");
    return json_is_object(user) &&
           (json_is_integer(id) || (json_is_string(id) && json_string_length(id) > 0 &&
                                    json_string_length(id) < CHANNEL_ID_SIZE));
}

static void post_connect(connect_request_t *request);

static void on_connect_answer(int status, json_t *body, const char *error, int connect_failed,
                              void *data)
{
    connect_request_t *request = data;
    proxy_t *proxy = request->proxy;
    if (driver_base_channel(&proxy->base) == NULL) {
        refuse(request, "the server is stopping"); /* sioc_next would use the namespace */
        return;
    }
    if (error != NULL && connect_failed && !request->retried) {
        request->retried = 1; /* nothing reached the back end: sending again is safe */
        post_connect(request);
        return;
    }
    if (error != NULL || status != 200 || !json_is_object(body)) {
        log_warn("proxy %s: connect of socket %s: back end failed: %s (status %d)",
                 proxy->connect_url, sioc_socket_id(request->socket),
                 error != NULL ? error : "not a JSON object", status);
        refuse(request, "the back end did not answer");
        return;
    }
    if (!json_is_true(json_object_get(body, "accept"))) {
        const char *message = json_string_value(json_object_get(body, "message"));
        refuse(request, message != NULL ? message : "refused by the back end");
        return;
    }
    json_t *user = json_object_get(body, "user");
    json_t *data_in = json_object_get(body, "data");
    json_t *rooms = json_object_get(body, "rooms");
    if ((user != NULL && !json_is_null(user) && !valid_user(user)) ||
        (data_in != NULL && !json_is_object(data_in)) || (rooms != NULL && !json_is_array(rooms))) {
        log_warn("proxy %s: connect answer for socket %s is malformed (user, data or rooms)",
                 proxy->connect_url, sioc_socket_id(request->socket));
        refuse(request, "the back end's answer is malformed");
        return;
    }
    json_t *socket_data = sioc_socket_data(request->socket);
    if (json_is_object(data_in))
        json_object_update(socket_data, data_in);
    if (valid_user(user))
        json_object_set(socket_data, "user", user);
    if (json_is_array(rooms))
        json_object_set_new(socket_data, PROXY_PENDING_ROOMS, proxy_room_names(rooms));
    sioc_next(request->next);
    connect_done(request);
}

static void post_connect(connect_request_t *request)
{
    http_client_post(request->proxy->http, request->proxy->connect_url, request->body,
                     on_connect_answer, request);
}

static void proxy_connect(sioc_socket_t *socket, sioc_next_t *next, void *data)
{
    proxy_t *proxy = data;
    channel_t *channel = driver_base_channel(&proxy->base);
    connect_request_t *request = calloc(1, sizeof(*request));
    if (channel == NULL || request == NULL) {
        free(request);
        sioc_next_error(next, "Authentication error: the server is stopping", NULL);
        return;
    }
    json_t *socket_data = sioc_socket_data(socket);
    /* A copy: the socket keeps neither the handshake (about 4 KB) nor an auth object, which
     * release_auth would only empty. The auth sent is the copy's own: the CONNECT's parsed once. */
    json_t *handshake = sioc_socket_handshake_copy(socket);
    request->body =
        json_pack("{s:s,s:s,s:O?,s:O?,s:O?,s:O?}", "namespace", channel->config->name, "socketId",
                  sioc_socket_id(socket), "user", json_object_get(socket_data, "user"), "sessionId",
                  json_object_get(socket_data, "sessionId"), "handshake", handshake, "auth",
                  json_object_get(handshake, "auth"));
    json_decref(handshake);
    request->proxy = proxy;
    request->socket = socket;
    request->next = next;
    proxy->base.references++;
    post_connect(request);
}

/* ---- event proxy ------------------------------------------------------------------------------
 */

/* rooms: names as proxy_room_names keeps them. */
static void join_each(json_t *rooms, sioc_socket_t *socket, int join)
{
    size_t index;
    json_t *room;
    json_array_foreach(rooms, index, room) join
        ? sioc_socket_join(socket, json_string_value(room))
        : sioc_socket_leave(socket, json_string_value(room));
}

static void emit_one(sioc_socket_t *socket, sioc_namespace_t *nsp, proxy_emit_t *emit)
{
    if (emit->to_socket) {
        sioc_socket_emit(socket, emit->event, json_incref(emit->args));
        return;
    }
    sioc_broadcast_t broadcast;
    sioc_broadcast_init(&broadcast, nsp);
    size_t count = 0;
    for (size_t i = 0; i < emit->room_count; i++)
        count += sioc_broadcast_to(&broadcast, emit->rooms[i]) == 0;
    if (count > 0)
        sioc_broadcast_emit(&broadcast, emit->event, json_incref(emit->args));
}

/* Applies what the answer asks for; -1 when memory ran out reading it (nothing applied). */
static int apply_answer(driver_call_t *call, sioc_socket_t *socket, json_t *body)
{
    proxy_answer_t answer;
    if (proxy_answer_read(body, &answer) != 0)
        return -1;
    if (answer.data != NULL) {
        json_t *user = json_incref(json_object_get(sioc_socket_data(socket), "user"));
        json_object_update(sioc_socket_data(socket), answer.data);
        if (user != NULL) /* the user is what authentication proved: the answer cannot change it */
            json_object_set(sioc_socket_data(socket), "user", user);
        json_decref(user);
    }
    join_each(answer.join, socket, 1);
    join_each(answer.leave, socket, 0);
    size_t index;
    json_t *value;
    json_array_foreach(answer.emit, index, value)
    {
        proxy_emit_t emit;
        if (proxy_emit_read(value, &emit) > 0)
            emit_one(socket, call->nsp, &emit);
        proxy_emit_release(&emit);
    }
    if (answer.ack != NULL && call->ack_id >= 0) {
        sioc_socket_ack(socket, call->ack_id, json_incref(answer.ack));
        call->ack_id = -1; /* answered */
    }
    proxy_answer_free(&answer);
    return 0;
}

static void on_event_answer(int status, json_t *body, const char *error, int connect_failed,
                            void *data)
{
    driver_call_t *call = data;
    if (driver_call_abandoned(call))
        return;
    sioc_socket_t *socket = driver_call_socket(call);
    if (error != NULL || status != 200 || !json_is_object(body)) {
        log_warn("proxy %s: event %s of socket %s: back end failed: %s (status %d)",
                 proxy_of(call)->event_url, call->event_name, call->socket_id,
                 error != NULL ? error : "not a JSON object", status);
        driver_call_fail(call, DRIVER_EUNAVAILABLE, "The back end did not answer");
        return;
    }
    if (socket == NULL) {
        driver_call_free(call);
        return;
    }
    if (apply_answer(call, socket, body) != 0) {
        driver_call_fail(call, DRIVER_EUNAVAILABLE, "Out of memory");
        return;
    }
    int disconnect = json_is_true(json_object_get(body, "disconnect"));
    if (call->ack_id >= 0)
        driver_call_finish(call, NULL);
    else
        driver_call_free(call);
    if (disconnect)
        sioc_socket_disconnect(socket, 0);
}

/* One attachment as a base64 string (new reference), NULL when memory runs out. */
static json_t *base64_of(const sioc_binary_t *part)
{
    char *text = malloc(4 * ((part->length + 2) / 3) + 1);
    if (text == NULL)
        return NULL;
    int length = EVP_EncodeBlock((unsigned char *)text, part->data, (int)part->length);
    json_t *string = json_stringn(text, (size_t)length);
    free(text);
    return string;
}

/* The event's binary attachments as an array of base64 strings (new reference); NULL when they
 * exceed PROXY_MAX_SIZE bytes in all (the int of EVP_EncodeBlock is far) or memory runs out. */
static json_t *attachments_base64(const sioc_event_t *event)
{
    size_t total = 0;
    for (size_t i = 0; i < event->attachment_count; i++) {
        total += event->attachments[i].length;
        if (total > PROXY_MAX_SIZE)
            return NULL;
    }
    json_t *list = json_array();
    for (size_t i = 0; list != NULL && i < event->attachment_count; i++) {
        if (json_array_append_new(list, base64_of(&event->attachments[i])) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    return list;
}

static void proxy_event(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    proxy_t *proxy = data;
    if (proxy->event_url == NULL)
        return; /* connect proxy only: events have no handler, as in Node */
    driver_call_t *call = driver_call_new(&proxy->base, socket, event, PROXY_ERROR_EVENT);
    if (call == NULL)
        return;
    json_t *rooms = sioc_socket_rooms(socket);
    json_t *body =
        json_pack("{s:s,s:s,s:O,s:s,s:O?,s:o,s:O,s:b}", "namespace",
                  proxy->base.channel->config->name, "event", event->name, "args", event->args,
                  "socketId", sioc_socket_id(socket), "user", channel_user(socket), "rooms", rooms,
                  "data", sioc_socket_data(socket), "ack", event->ack_id >= 0);
    if (body == NULL) {
        driver_call_fail(call, DRIVER_EUNAVAILABLE, "Out of memory");
        return;
    }
    if (event->attachment_count > 0) {
        json_t *attachments = attachments_base64(event);
        if (attachments == NULL) {
            json_decref(body);
            driver_call_fail(call, DRIVER_ETOOLONG, "Binary attachments over 1 MiB in all");
            return;
        }
        json_object_set_new(body, "attachments", attachments);
    }
    http_client_post(proxy->http, proxy->event_url, body, on_event_answer, call);
    json_decref(body);
}

/* ---- sockets --------------------------------------------------------------------------------- */

static void on_connection(sioc_socket_t *socket, void *data)
{
    proxy_socket_t *state = calloc(1, sizeof(*state));
    if (state == NULL) {
        sioc_socket_disconnect(socket, 0);
        return;
    }
    driver_socket_init(&state->order);
    sioc_socket_set_user(socket, state);
    json_t *socket_data = sioc_socket_data(socket);
    join_each(json_object_get(socket_data, PROXY_PENDING_ROOMS), socket, 1);
    json_object_del(socket_data, PROXY_PENDING_ROOMS);
}

static void on_disconnect(sioc_socket_t *socket, const char *reason, void *data)
{
    proxy_socket_t *state = sioc_socket_get_user(socket);
    sioc_socket_set_user(socket, NULL);
    if (state != NULL)
        driver_socket_cleanup(&state->order);
    free(state);
}

/* ---- the driver ------------------------------------------------------------------------------ */

static int check_url(const config_t *config, const config_channel_t *channel, const char *key,
                     char *error, size_t error_size)
{
    json_t *value = json_object_get(channel->options, key);
    const char *url = json_string_value(value);
    if (value == NULL)
        return 0;
    if (url == NULL || strlen(url) != json_string_length(value) ||
        (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0))
        return driver_option_error(config, channel, key, error, error_size,
                                   "expected an http:// or https:// URL");
    return 0;
}

static int check_range(const config_t *config, const config_channel_t *channel, const char *key,
                       json_int_t min, json_int_t max, char *error, size_t error_size)
{
    json_t *value = json_object_get(channel->options, key);
    if (value != NULL && (!json_is_integer(value) || json_integer_value(value) < min ||
                          json_integer_value(value) > max))
        return driver_option_error(
            config, channel, key, error, error_size,
            "expected an integer from %" JSON_INTEGER_FORMAT " to %" JSON_INTEGER_FORMAT, min, max);
    return 0;
}

static int proxy_check(const config_t *config, const config_channel_t *channel, char *error,
                       size_t error_size)
{
    static const char *const known[] = {"connectUrl", "eventUrl", "timeoutMs", "maxConnections",
                                        NULL};
    if (driver_check_option_keys(config, channel, known, error, error_size) != 0 ||
        check_url(config, channel, "connectUrl", error, error_size) != 0 ||
        check_url(config, channel, "eventUrl", error, error_size) != 0 ||
        check_range(config, channel, "timeoutMs", 100, 60000, error, error_size) != 0 ||
        check_range(config, channel, "maxConnections", 1, 1000, error, error_size) != 0)
        return -1;
    if (json_object_get(channel->options, "connectUrl") == NULL &&
        json_object_get(channel->options, "eventUrl") == NULL)
        return driver_option_error(config, channel, NULL, error, error_size,
                                   "the proxy driver needs options.connectUrl, options.eventUrl "
                                   "or both");
    return 0;
}

static void proxy_release(driver_base_t *base)
{
    proxy_t *proxy = (proxy_t *)base;
    free(proxy->connect_url);
    free(proxy->event_url);
    free(proxy);
}

static char *option_string(const config_channel_t *channel, const char *key)
{
    const char *text = json_string_value(json_object_get(channel->options, key));
    return text != NULL ? strdup(text) : NULL;
}

static json_int_t option_integer(const config_channel_t *channel, const char *key,
                                 json_int_t fallback)
{
    json_t *value = json_object_get(channel->options, key);
    return value != NULL ? json_integer_value(value) : fallback;
}

static int proxy_setup(channel_t *channel, char *error, size_t error_size)
{
    if (proxy_check(channel->daemon->config, channel->config, error, error_size) != 0)
        return -1;
    proxy_t *proxy = calloc(1, sizeof(*proxy));
    http_client_options_t options = {
        .timeout_ms = (long)option_integer(channel->config, "timeoutMs", 5000),
        .max_connections = (long)option_integer(channel->config, "maxConnections", 16),
        .max_response_size = PROXY_MAX_SIZE,
    };
    if (proxy != NULL) {
        driver_base_init(&proxy->base, channel, proxy_release);
        proxy->connect_url = option_string(channel->config, "connectUrl");
        proxy->event_url = option_string(channel->config, "eventUrl");
        proxy->http = http_client_new(channel->daemon->loop, &options);
    }
    if (proxy == NULL || proxy->http == NULL) {
        if (proxy != NULL)
            driver_base_detach(&proxy->base);
        snprintf(error, error_size, "channels.\"%s\": cannot start the proxy's HTTP client",
                 channel->config->name);
        return -1;
    }
    channel->state = proxy;
    sioc_namespace_t *nsp = channel->nsp;
    if (proxy->connect_url != NULL)
        sioc_namespace_use(nsp, proxy_connect, proxy);
    sioc_namespace_on_connection(nsp, on_connection, proxy);
    sioc_namespace_on_disconnect(nsp, on_disconnect, proxy);
    driver_on_any(&proxy->base, PROXY_ERROR_EVENT, proxy_event, proxy);
    return 0;
}

static void proxy_teardown(channel_t *channel)
{
    proxy_t *proxy = channel->state;
    channel->state = NULL;
    if (proxy == NULL)
        return;
    http_client_t *http = proxy->http;
    proxy->http = NULL;
    driver_base_detach(&proxy->base); /* the calls in flight see it gone */
    http_client_free(http);           /* calls them back ("closed") */
}

const driver_t driver_proxy = {
    .name = "proxy",
    .check = proxy_check,
    .setup = proxy_setup,
    .teardown = proxy_teardown,
};
