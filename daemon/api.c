/* The HTTP API for back ends (docs/http-api.md), on sioc_web_*: one call object per request,
 * a route table, and handlers that answer at once or after the store made a change durable.
 *
 * Lifetime: every request gets an api_call_t, linked into the API's list until it is answered.
 * A handler answers exactly once (reply*), possibly from a store callback; after a reply the
 * call is gone. api_stop refuses new requests with 503 and closes the web server only once the
 * list is empty: closing it earlier would drop the connections of requests still waiting for
 * the store, whose changes would then be made without the back end ever hearing of them. */
#include "api.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sioc_adapter.h>

#include "api_fields.h"
#include "api_routes.h"
#include "auth_session.h"
#include "drivers/notifications.h"
#include "log.h"
#include "metrics.h"

#define ROOM_NAME_SIZE (API_ID_SIZE + 8) /* "user:" or "room:" and an id */
#define NAMESPACE_SIZE (API_NAME_MAX + 1)
#define STORE_HISTORY_LIMIT_MAX 100 /* store.h: STORE_MESSAGE_HISTORY's limit is 1..100 */
#define API_STORE_RETRY_AFTER "1"   /* seconds, the answer to a lost database connection */

typedef struct api_call_s api_call_t;

/* Where a store answer goes: result is borrowed, as in store_done_cb. */
typedef void (*api_step_cb)(api_call_t *call, int error, const char *message, json_t *result);

struct api_call_s {
    api_t *api;
    sioc_web_request_t *request;
    const api_route_t *route;
    api_path_params_t params;
    json_t *body;         /* the parsed body of API_ROUTE_BODY routes */
    json_t *kept;         /* a value a later step needs (a store result, the next params) */
    api_step_cb step;     /* the next step, when waiting for the store */
    const char *missing;  /* the error code for STORE_ENOTFOUND ("room_not_found") */
    int head_only;        /* HEAD: GET's status and headers without the body */
    api_call_t *previous; /* the API's list of calls in flight */
    api_call_t *next;
};

struct api_s {
    daemon_t *daemon;
    sioc_web_server_t *web;
    api_call_t *calls;
    uint64_t started_ms;
    int stopping;
    int closing;
    void (*closed_cb)(void *data);
    void *closed_data;
};

static const char out_of_memory_body[] =
    "{\"error\":{\"code\":\"internal_error\",\"message\":\"out of memory\"}}";

/* ---- calls and answers --------------------------------------------------------------------- */

static void on_web_closed(void *data)
{
    api_t *api = data;
    void (*closed_cb)(void *) = api->closed_cb;
    void *closed_data = api->closed_data;
    free(api);
    log_info("http api stopped");
    if (closed_cb != NULL)
        closed_cb(closed_data);
}

static void maybe_close(api_t *api)
{
    if (!api->stopping || api->closing || api->calls != NULL)
        return;
    api->closing = 1;
    sioc_web_server_close(api->web, on_web_closed, api);
}

static api_call_t *call_new(api_t *api, sioc_web_request_t *request)
{
    api_call_t *call = calloc(1, sizeof(*call));
    if (call == NULL)
        return NULL;
    call->api = api;
    call->request = request;
    call->next = api->calls;
    if (api->calls != NULL)
        api->calls->previous = call;
    api->calls = call;
    return call;
}

static void call_free(api_call_t *call)
{
    api_t *api = call->api;
    if (call->previous != NULL)
        call->previous->next = call->next;
    else
        api->calls = call->next;
    if (call->next != NULL)
        call->next->previous = call->previous;
    json_decref(call->body);
    json_decref(call->kept);
    free(call);
    maybe_close(api);
}

static void log_answer(const api_call_t *call, int status)
{
    /* 503 is the expected answer while stopping, not a problem worth a warning. */
    log_level_t level = status >= 500 && status != 503 ? LOG_WARN : LOG_DEBUG;
    if (log_enabled(level))
        log_write(level, "api %s %s from %s: %d", sioc_web_request_method(call->request),
                  sioc_web_request_path(call->request),
                  sioc_web_request_remote_address(call->request), status);
}

/* Answers with body (taken; JSON) and headers (NULL, or "Name: value\r\n" lines) and
 * releases the call: nothing may touch it afterwards. */
static void reply_with_headers(api_call_t *call, int status, json_t *body, const char *headers)
{
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    const char *answer = text != NULL ? text : out_of_memory_body;
    if (text == NULL)
        status = 500;
    log_answer(call, status);
    /* sioc_web_respond may run the next pipelined request of the connection: the call stays
     * linked until it returns, so that a stop cannot close the server under it. */
    sioc_web_respond_with_headers(call->request, status, "application/json",
                                  headers != NULL ? headers : "", answer,
                                  call->head_only ? 0 : strlen(answer));
    free(text);
    call_free(call);
}

static void reply(api_call_t *call, int status, json_t *body)
{
    reply_with_headers(call, status, body, NULL);
}

static json_t *error_body(const char *code, const char *message, const char *field)
{
    json_t *error = json_pack("{s:s,s:s}", "code", code, "message", message);
    if (error != NULL && field != NULL)
        json_object_set_new(error, "field", json_string(field));
    return error != NULL ? json_pack("{s:o}", "error", error) : NULL;
}

/* {"error":{"code","message"}} with a printf-style message. */
static void reply_error(api_call_t *call, int status, const char *code, const char *format, ...)
    __attribute__((format(printf, 4, 5)));
static void reply_error(api_call_t *call, int status, const char *code, const char *format, ...)
{
    char message[512];
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(message, sizeof(message), format, arguments);
    va_end(arguments);
    reply(call, status, error_body(code, message, NULL));
}

/* 400 for a body field or path parameter that is not what the route expects. */
static void reply_problem(api_call_t *call, const api_problem_t *problem)
{
    reply(call, 400, error_body("invalid_field", problem->message, problem->field));
}

static void reply_store_error(api_call_t *call, int error, const char *message)
{
    switch (error) {
    case STORE_ENOTFOUND:
        reply_error(call, 404, call->missing ? call->missing : "not_found", "%s", message);
        break;
    case STORE_EINVALID:
        reply_error(call, 400, "invalid_params", "%s", message);
        break;
    case STORE_ECONFLICT:
        reply_error(call, 409, "conflict", "%s", message);
        break;
    case STORE_ECLOSED:
        reply_error(call, 503, "shutting_down", "the daemon is stopping");
        break;
    case STORE_EUNAVAILABLE:
        /* The connection is lost (PostgreSQL restarting) and the store reconnects by itself
         * (backoff up to 5 s): a client may try again soon. The change was not applied, or
         * its COMMIT's answer was lost: only idempotent requests should be retried blindly. */
        log_warn("api: store unavailable: %s", message);
        reply_with_headers(
            call, 503,
            error_body("store_unavailable", "the database is unavailable, try again", NULL),
            "Retry-After: " API_STORE_RETRY_AFTER "\r\n");
        break;
    default:
        log_error("api: store failed: %s", message);
        reply_error(call, 500, "store_error", "the store failed: %s", message);
        break;
    }
}

/* ---- the store ----------------------------------------------------------------------------- */

static void on_store_done(int error, const char *message, json_t *result, void *data)
{
    api_call_t *call = data;
    call->step(call, error, message, result);
}

/* Runs operation with params (taken; NULL after an allocation failure answers 500), then
 * step. missing is the error code a STORE_ENOTFOUND answer gets. */
static void store_call(api_call_t *call, store_operation_t operation, json_t *params,
                       const char *missing, api_step_cb step)
{
    if (params == NULL) {
        reply(call, 500, NULL);
        return;
    }
    call->step = step;
    call->missing = missing;
    store_request(call->api->daemon->store, operation, params, on_store_done, call);
}

/* A step that answers the store's result as it is. */
static void reply_result(api_call_t *call, int status, int error, const char *message,
                         json_t *result)
{
    if (error != 0)
        reply_store_error(call, error, message);
    else
        reply(call, status, json_incref(result));
}

static void reply_result_200(api_call_t *call, int error, const char *message, json_t *result)
{
    reply_result(call, 200, error, message, result);
}

static void on_user_recorded(int error, const char *message, json_t *result, void *data)
{
    if (error != 0)
        log_warn("api: recording a user failed: %s", message);
}

/* Records user_id as a user when the store has not seen it yet (a profile's fields are left as
 * they are): the back end owns its users, and may name one that never connected as a room's
 * owner or member. Queued before the operation that needs it, which the store runs after it. */
static void record_user(api_t *api, const char *user_id)
{
    json_t *params = json_pack("{s:s}", "id", user_id);
    if (params != NULL)
        store_request(api->daemon->store, STORE_USER_UPSERT, params, on_user_recorded, NULL);
}

/* ---- channels and broadcasts --------------------------------------------------------------- */

/* The enabled channel serving namespace name, or NULL (disabled channels have no namespace). */
static channel_t *usable_channel(api_t *api, const char *name)
{
    channel_t *channel = channel_find(api->daemon, name);
    return channel != NULL && channel->nsp != NULL ? channel : NULL;
}

static void reply_no_channel(api_call_t *call, const char *name)
{
    daemon_t *daemon = call->api->daemon;
    char enabled[256] = "";
    size_t used = 0;
    for (size_t i = 0; i < daemon->channel_count && used < sizeof(enabled); i++)
        if (!daemon->channels[i].disabled)
            used += (size_t)snprintf(enabled + used, sizeof(enabled) - used, "%s\"%s\"",
                                     used == 0 ? "" : ", ", daemon->channels[i].config->name);
    reply_error(call, 404, "channel_not_found", "no enabled channel \"%s\" (enabled: %s)", name,
                used == 0 ? "none" : enabled);
}

/* The answer to an emit: sioc_broadcast_emit refuses reserved names with SIOC_EINVAL. */
static void reply_emitted(api_call_t *call, int rc, const char *event)
{
    if (rc == 0)
        reply(call, 200, json_pack("{s:b}", "ok", 1));
    else if (rc == SIOC_EINVAL)
        reply(call, 400,
              error_body("reserved_event",
                         "event: this name is reserved by Socket.IO (connect, connect_error, "
                         "disconnect, disconnecting, newListener, removeListener)",
                         "event"));
    else
        reply_error(call, 500, "emit_failed", "emitting \"%s\" failed: %s", event, uv_strerror(rc));
}

/* Narrows broadcast to the personal rooms of user_id: user:{id} (chat driver) and user.{id}
 * (main driver, seed 004). The names live in storage (2 x ROOM_NAME_SIZE). */
static void broadcast_to_user(sioc_broadcast_t *broadcast, const char *user_id, char *storage)
{
    snprintf(storage, ROOM_NAME_SIZE, "user:%s", user_id);
    snprintf(storage + ROOM_NAME_SIZE, ROOM_NAME_SIZE, "user.%s", user_id);
    sioc_broadcast_to(broadcast, storage);
    sioc_broadcast_to(broadcast, storage + ROOM_NAME_SIZE);
}

/* Emits event with args (borrowed) to every socket of user_id in channel. */
static int emit_to_user(channel_t *channel, const char *user_id, const char *event, json_t *args)
{
    char rooms[2 * ROOM_NAME_SIZE];
    sioc_broadcast_t broadcast;
    sioc_broadcast_init(&broadcast, channel->nsp);
    broadcast_to_user(&broadcast, user_id, rooms);
    return sioc_broadcast_emit(&broadcast, event, json_incref(args));
}

/* 1 if a socket of user_id is connected to any channel of this daemon. */
static int user_online(api_t *api, const char *user_id)
{
    char room[ROOM_NAME_SIZE];
    for (size_t i = 0; i < api->daemon->channel_count; i++) {
        sioc_namespace_t *nsp = api->daemon->channels[i].nsp;
        snprintf(room, sizeof(room), "user:%s", user_id);
        if (nsp != NULL && sioc_namespace_room_size(nsp, room) > 0)
            return 1;
        snprintf(room, sizeof(room), "user.%s", user_id);
        if (nsp != NULL && sioc_namespace_room_size(nsp, room) > 0)
            return 1;
    }
    return 0;
}

/* ---- GET /health --------------------------------------------------------------------------- */

static void route_health(api_call_t *call)
{
    daemon_t *daemon = call->api->daemon;
    json_t *channels = json_array();
    for (size_t i = 0; channels != NULL && i < daemon->channel_count; i++) {
        const channel_t *channel = &daemon->channels[i];
        if (channel->disabled)
            continue; /* turned off by a SIGHUP: as if it were not configured */
        json_array_append_new(channels,
                              json_pack("{s:s,s:s,s:I}", "name", channel->config->name, "driver",
                                        channel->driver->name, "sockets",
                                        (json_int_t)sioc_namespace_socket_count(channel->nsp)));
    }
    uint64_t uptime_ms = uv_now(daemon->loop) - call->api->started_ms;
    reply(call, 200,
          json_pack("{s:s,s:I,s:o}", "status", "ok", "uptimeSeconds",
                    (json_int_t)(uptime_ms / 1000), "channels", channels));
}

/* ---- GET /healthz and GET /readyz: probes for systemd, load balancers and orchestrators ------ */

/* The process runs and its loop answers: nothing else is checked, so that a slow store never
 * gets a live daemon restarted. */
static void route_healthz(api_call_t *call)
{
    reply(call, 200, json_pack("{s:s}", "status", "ok"));
}

/* The store must answer the readiness read within this, or the daemon is not ready. */
#define READY_STORE_TIMEOUT_MS 2000

/* One readiness read: it outlives its call when the timer answers first, and goes once both the
 * timer handle is closed and the store has answered (it always does, at the latest on close). */
typedef struct ready_probe_s {
    api_call_t *call; /* NULL once answered */
    uv_timer_t timer;
    int references;
} ready_probe_t;

static void ready_probe_release(ready_probe_t *probe)
{
    if (--probe->references == 0)
        free(probe);
}

static void on_ready_timer_closed(uv_handle_t *handle)
{
    ready_probe_release(handle->data);
}

static void ready_answer(ready_probe_t *probe, int status, const char *store)
{
    api_call_t *call = probe->call;
    probe->call = NULL;
    uv_timer_stop(&probe->timer);
    uv_close((uv_handle_t *)&probe->timer, on_ready_timer_closed);
    json_t *checks = json_pack("{s:s,s:s}", "listening", "ok", "store", store);
    /* Session auth reads every connection's session from Redis: without it, nobody gets in. */
    const struct auth_session_store_s *sessions = call->api->daemon->sessions;
    if (sessions != NULL) {
        int up = auth_session_store_connected(sessions);
        json_object_set_new(checks, "sessions", json_string(up ? "ok" : "redis unavailable"));
        if (!up)
            status = 503;
    }
    /* A node cut off from the cluster's Redis would serve its clients half the traffic (no
     * broadcast from or to the other nodes): not ready until both connections are back. */
    if (call->api->daemon->cluster != NULL) {
        int up = sioc_redis_connected(call->api->daemon->cluster);
        json_object_set_new(checks, "cluster", json_string(up ? "ok" : "redis unavailable"));
        if (!up)
            status = 503;
    }
    reply(call, status,
          json_pack("{s:s,s:o}", "status", status == 200 ? "ok" : "unavailable", "checks", checks));
}

static void on_ready_timeout(uv_timer_t *timer)
{
    ready_answer(timer->data, 503, "no answer within 2000 ms");
}

static void on_ready_read(int error, const char *message, json_t *result, void *data)
{
    ready_probe_t *probe = data;
    /* The probe reads a user that never exists: "not found" is the store answering. */
    if (probe->call != NULL) {
        if (error != 0 && error != STORE_ENOTFOUND)
            ready_answer(probe, 503, message != NULL ? message : "failed");
        else
            ready_answer(probe, 200, "ok");
    }
    ready_probe_release(probe);
}

/* Listening (the Socket.IO server is up) and the store answers a read through its queue within
 * READY_STORE_TIMEOUT_MS, so a store stuck behind a full disk or a database that is down is
 * "not ready" rather than a probe that hangs. */
static void route_readyz(api_call_t *call)
{
    daemon_t *daemon = call->api->daemon;
    if (daemon->io == NULL || daemon->store == NULL || daemon->stopping) {
        reply(call, 503,
              json_pack("{s:s,s:{s:s}}", "status", "unavailable", "checks", "listening",
                        "not listening"));
        return;
    }
    ready_probe_t *probe = calloc(1, sizeof(*probe));
    if (probe == NULL) {
        reply(call, 500, NULL);
        return;
    }
    probe->call = call;
    probe->references = 2;
    uv_timer_init(daemon->loop, &probe->timer);
    probe->timer.data = probe;
    uv_timer_start(&probe->timer, on_ready_timeout, READY_STORE_TIMEOUT_MS, 0);
    store_ping(daemon->store, on_ready_read, probe); /* every connection of the pool */
}

/* ---- POST /emit ---------------------------------------------------------------------------- */

static void route_emit(api_call_t *call)
{
    static const char *const fields[] = {"namespace", "event",    "args", "rooms",
                                         "except",    "volatile", NULL};
    const char *name, *event, *rooms[SIOC_BROADCAST_MAX_ROOMS], *except[SIOC_BROADCAST_MAX_ROOMS];
    size_t room_count, except_count;
    json_t *args;
    int is_volatile;
    api_problem_t problem;
    json_t *body = call->body;
    if (api_fields_allowed(body, fields, &problem) != 0 ||
        api_field_namespace(body, "namespace", &name, &problem) != 0 ||
        api_field_string(body, "event", API_REQUIRED, API_NAME_MAX, &event, &problem) != 0 ||
        api_field_array(body, "args", &args, &problem) != 0 ||
        api_field_rooms(body, "rooms", rooms, SIOC_BROADCAST_MAX_ROOMS, &room_count, &problem) !=
            0 ||
        api_field_rooms(body, "except", except, SIOC_BROADCAST_MAX_ROOMS, &except_count,
                        &problem) != 0 ||
        api_field_bool(body, "volatile", 0, &is_volatile, &problem) != 0) {
        reply_problem(call, &problem);
        return;
    }
    channel_t *channel = usable_channel(call->api, name);
    if (channel == NULL) {
        reply_no_channel(call, name);
        return;
    }
    sioc_broadcast_t broadcast;
    sioc_broadcast_init(&broadcast, channel->nsp);
    for (size_t i = 0; i < room_count; i++)
        sioc_broadcast_to(&broadcast, rooms[i]);
    for (size_t i = 0; i < except_count; i++)
        sioc_broadcast_except(&broadcast, except[i]);
    if (is_volatile)
        broadcast.flags |= SIOC_BROADCAST_VOLATILE;
    reply_emitted(call, sioc_broadcast_emit(&broadcast, event, json_incref(args)), event);
}

/* ---- POST /users/{userId}/emit ------------------------------------------------------------- */

static void route_user_emit(api_call_t *call)
{
    static const char *const fields[] = {"namespace", "event", "args", NULL};
    const char *user_id = call->params.values[0], *name = NULL, *event;
    json_t *args;
    api_problem_t problem;
    json_t *body = call->body;
    int has_namespace = json_object_get(body, "namespace") != NULL &&
                        !json_is_null(json_object_get(body, "namespace"));
    if (api_fields_allowed(body, fields, &problem) != 0 ||
        (has_namespace && api_field_namespace(body, "namespace", &name, &problem) != 0) ||
        api_field_string(body, "event", API_REQUIRED, API_NAME_MAX, &event, &problem) != 0 ||
        api_field_array(body, "args", &args, &problem) != 0) {
        reply_problem(call, &problem);
        return;
    }
    if (name != NULL) {
        channel_t *channel = usable_channel(call->api, name);
        if (channel == NULL)
            reply_no_channel(call, name);
        else
            reply_emitted(call, emit_to_user(channel, user_id, event, args), event);
        return;
    }
    int rc = 0;
    daemon_t *daemon = call->api->daemon;
    for (size_t i = 0; rc == 0 && i < daemon->channel_count; i++)
        if (!daemon->channels[i].disabled)
            rc = emit_to_user(&daemon->channels[i], user_id, event, args);
    reply_emitted(call, rc, event);
}

/* ---- POST /sockets/join, /sockets/leave, /sockets/disconnect ----------------------------------
 */

/* The sockets a control request names: exactly one of socketId, userId (every socket of the
 * user: user:{id} and user.{id}) or room, in namespace. 0 with broadcast set up, or -1 with
 * the reply sent. storage: 2 x ROOM_NAME_SIZE. */
static int control_target(api_call_t *call, const char *const *fields, sioc_broadcast_t *broadcast,
                          char *storage)
{
    const char *name, *socket_id, *room;
    char user_id[API_ID_SIZE];
    api_problem_t problem;
    json_t *body = call->body;
    if (api_fields_allowed(body, fields, &problem) != 0 ||
        api_field_namespace(body, "namespace", &name, &problem) != 0 ||
        api_field_string(body, "socketId", API_OPTIONAL, API_NAME_MAX, &socket_id, &problem) != 0 ||
        api_field_id(body, "userId", API_OPTIONAL, user_id, &problem) != 0 ||
        api_field_string(body, "room", API_OPTIONAL, API_NAME_MAX, &room, &problem) != 0) {
        reply_problem(call, &problem);
        return -1;
    }
    int given = (socket_id != NULL) + (user_id[0] != '\0') + (room != NULL);
    if (given != 1) {
        reply(call, 400,
              error_body("invalid_field",
                         "name the sockets with exactly one of socketId, userId "
                         "or room",
                         "socketId"));
        return -1;
    }
    channel_t *channel = usable_channel(call->api, name);
    if (channel == NULL) {
        reply_no_channel(call, name);
        return -1;
    }
    sioc_broadcast_init(broadcast, channel->nsp);
    if (user_id[0] != '\0') {
        broadcast_to_user(broadcast, user_id, storage);
    } else {
        /* Every socket is in the room of its own id. */
        snprintf(storage, ROOM_NAME_SIZE, "%s", socket_id != NULL ? socket_id : room);
        sioc_broadcast_to(broadcast, storage);
    }
    return 0;
}

static void route_sockets_rooms(api_call_t *call, int join)
{
    static const char *const fields[] = {"namespace", "socketId", "userId", "room", "rooms", NULL};
    char storage[2 * ROOM_NAME_SIZE];
    sioc_broadcast_t broadcast;
    const char *rooms[SIOC_BROADCAST_MAX_ROOMS];
    size_t count;
    api_problem_t problem;
    if (control_target(call, fields, &broadcast, storage) != 0)
        return;
    if (api_field_rooms(call->body, "rooms", rooms, SIOC_BROADCAST_MAX_ROOMS, &count, &problem) !=
            0 ||
        (count == 0 && api_problem_set(&problem, "rooms", "missing: the rooms to %s",
                                       join ? "join" : "leave") != 0)) {
        reply_problem(call, &problem);
        return;
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < count; i++)
        rc = join ? sioc_broadcast_join(&broadcast, rooms[i])
                  : sioc_broadcast_leave(&broadcast, rooms[i]);
    if (rc != 0)
        reply_error(call, 500, "failed", "%s failed: %s", join ? "join" : "leave", uv_strerror(rc));
    else
        reply(call, 200, json_pack("{s:b}", "ok", 1));
}

static void route_sockets_join(api_call_t *call)
{
    route_sockets_rooms(call, 1);
}

static void route_sockets_leave(api_call_t *call)
{
    route_sockets_rooms(call, 0);
}

static void route_sockets_disconnect(api_call_t *call)
{
    static const char *const fields[] = {"namespace", "socketId", "userId", "room", "close", NULL};
    char storage[2 * ROOM_NAME_SIZE];
    sioc_broadcast_t broadcast;
    int close;
    api_problem_t problem;
    if (control_target(call, fields, &broadcast, storage) != 0)
        return;
    if (api_field_bool(call->body, "close", 0, &close, &problem) != 0) {
        reply_problem(call, &problem);
        return;
    }
    sioc_broadcast_disconnect(&broadcast, close);
    reply(call, 200, json_pack("{s:b}", "ok", 1));
}

/* The id field key of body as a store param keeping its JSON type (api_field_id took a number
 * or a string; text is its text). A new reference: the store reads params from its thread. */
static json_t *typed_id(json_t *body, const char *key, const char *text)
{
    json_t *value = json_object_get(body, key);
    return json_is_integer(value) ? json_deep_copy(value) : json_string(text);
}

/* ---- POST /rooms --------------------------------------------------------------------------- */

/* The room:created payload: the room as stored, with seed 003's isPublic and createdBy. */
static json_t *room_created_payload(json_t *room, json_t *owner)
{
    json_t *payload = json_copy(room);
    if (payload == NULL)
        return NULL;
    json_object_set_new(payload, "isPublic",
                        json_boolean(!json_is_true(json_object_get(room, "isPrivate"))));
    json_t *owner_id = json_object_get(room, "ownerId");
    if (json_is_string(owner_id) || json_is_integer(owner_id)) {
        json_t *first = json_object_get(owner, "firstName");
        json_t *last = json_object_get(owner, "lastName");
        json_object_set_new(payload, "createdBy",
                            json_pack("{s:O,s:O,s:O}", "id", owner_id, "firstName",
                                      first ? first : json_null(), "lastName",
                                      last ? last : json_null()));
    }
    return payload;
}

/* Seed 003: room:created to the whole channel for a public room, only to the owner's sockets
 * for a private one (nobody else may see it). */
static void announce_room(api_call_t *call, json_t *owner)
{
    json_t *room = call->kept;
    const char *name;
    api_problem_t problem;
    api_field_namespace(call->body, "namespace", &name, &problem); /* checked before storing */
    channel_t *channel = usable_channel(call->api, name);
    /* The app's own statements may give the owner as an integer column. */
    char owner_id[API_ID_SIZE];
    int has_owner = api_field_id(room, "ownerId", API_REQUIRED, owner_id, &problem) == 0;
    int is_private = json_is_true(json_object_get(room, "isPrivate"));
    if (channel == NULL || (is_private && !has_owner))
        return;
    char rooms[2 * ROOM_NAME_SIZE];
    sioc_broadcast_t broadcast;
    sioc_broadcast_init(&broadcast, channel->nsp);
    if (is_private)
        broadcast_to_user(&broadcast, owner_id, rooms);
    json_t *args = json_pack("[o]", room_created_payload(room, owner));
    int rc = args != NULL ? sioc_broadcast_emit(&broadcast, "room:created", args) : SIOC_ENOMEM;
    if (rc != 0)
        log_warn("api: room:created for a room not sent: %s", uv_strerror(rc));
}

static void on_room_owner(api_call_t *call, int error, const char *message, json_t *owner)
{
    /* The room is stored: a missing profile only leaves createdBy's names null. */
    if (error != 0 && error != STORE_ENOTFOUND)
        log_warn("api: owner of the new room not read: %s", message);
    announce_room(call, error == 0 ? owner : NULL);
    reply(call, 201, json_incref(call->kept));
}

static void on_room_created(api_call_t *call, int error, const char *message, json_t *room)
{
    if (error != 0) {
        reply_store_error(call, error, message);
        return;
    }
    call->kept = json_incref(room);
    char owner_id[API_ID_SIZE];
    api_problem_t problem;
    if (api_field_id(room, "ownerId", API_REQUIRED, owner_id, &problem) != 0) {
        on_room_owner(call, STORE_ENOTFOUND, "no owner", NULL);
        return;
    }
    store_call(call, STORE_USER_GET, json_pack("{s:s}", "id", owner_id), NULL, on_room_owner);
}

static void route_room_create(api_call_t *call)
{
    static const char *const fields[] = {"name", "isPrivate", "ownerId", "id", "namespace", NULL};
    const char *room_name, *name;
    char owner_id[API_ID_SIZE], room_id[API_ID_SIZE];
    int is_private;
    api_problem_t problem;
    json_t *body = call->body;
    if (api_fields_allowed(body, fields, &problem) != 0 ||
        api_field_string(body, "name", API_REQUIRED, API_NAME_MAX, &room_name, &problem) != 0 ||
        api_field_bool(body, "isPrivate", 0, &is_private, &problem) != 0 ||
        api_field_id(body, "ownerId", API_OPTIONAL, owner_id, &problem) != 0 ||
        api_field_id(body, "id", API_OPTIONAL, room_id, &problem) != 0 ||
        api_field_namespace(body, "namespace", &name, &problem) != 0) {
        reply_problem(call, &problem);
        return;
    }
    if (usable_channel(call->api, name) == NULL) {
        reply_no_channel(call, name);
        return;
    }
    json_t *params = json_pack("{s:s,s:b}", "name", room_name, "isPrivate", is_private);
    if (params != NULL && owner_id[0] != '\0') {
        record_user(call->api, owner_id);
        json_object_set_new(params, "ownerId", typed_id(body, "ownerId", owner_id));
    }
    if (params != NULL && room_id[0] != '\0')
        json_object_set_new(params, "id", typed_id(body, "id", room_id));
    store_call(call, STORE_ROOM_CREATE, params, "not_found", on_room_created);
}

/* ---- users: the back end registers them ------------------------------------------------------ */

#define PROFILE_MAX 2048 /* bytes of a profile field (an avatar URL) */

/* PUT /users/{userId} {firstName?, lastName?, role?, avatar?}: a user who may never have
 * connected (a DM recipient) and the profile an {id}-only token gets. An absent field keeps its
 * value, null clears it (store.h USER_UPSERT). */
static void route_user_put(api_call_t *call)
{
    static const char *const fields[] = {"firstName", "lastName", "role", "avatar", NULL};
    api_problem_t problem;
    json_t *body = call->body;
    if (api_fields_allowed(body, fields, &problem) != 0) {
        reply_problem(call, &problem);
        return;
    }
    json_t *params = json_pack("{s:s}", "id", call->params.values[0]);
    for (size_t i = 0; fields[i] != NULL && params != NULL; i++) {
        json_t *value = json_object_get(body, fields[i]);
        const char *text;
        if (json_is_null(value)) {
            json_object_set_new(params, fields[i], json_null());
            continue;
        }
        if (api_field_string(body, fields[i], API_OPTIONAL, PROFILE_MAX, &text, &problem) != 0) {
            json_decref(params);
            reply_problem(call, &problem);
            return;
        }
        if (text != NULL)
            json_object_set_new(params, fields[i], json_string(text));
    }
    store_call(call, STORE_USER_UPSERT, params, "not_found", reply_result_200);
}

/* ---- rooms: read, history, members --------------------------------------------------------- */

static void route_room_get(api_call_t *call)
{
    store_call(call, STORE_ROOM_GET, json_pack("{s:s}", "id", call->params.values[0]),
               "room_not_found", reply_result_200);
}

/* The room exists (read just before): a STORE_ENOTFOUND now is about ?before=. */
static void on_history(api_call_t *call, int error, const char *message, json_t *messages)
{
    if (error == STORE_ENOTFOUND)
        reply(call, 400,
              error_body("invalid_field", "before: no message with this id in the room", "before"));
    else
        reply_result_200(call, error, message, messages);
}

static void on_history_room(api_call_t *call, int error, const char *message, json_t *room)
{
    if (error != 0) {
        reply_store_error(call, error, message);
        return;
    }
    json_t *params = call->kept;
    call->kept = NULL;
    store_call(call, STORE_MESSAGE_HISTORY, params, NULL, on_history);
}

/* The history's params from ?before=&limit=, or NULL with problem filled. */
static json_t *history_params(api_call_t *call, api_problem_t *problem)
{
    char before[API_ID_SIZE], limit_text[16];
    unsigned long limit = 0, max = call->api->daemon->config->limits.history_limit;
    if (max > STORE_HISTORY_LIMIT_MAX)
        max = STORE_HISTORY_LIMIT_MAX;
    long before_length = sioc_web_request_query(call->request, "before", before, sizeof(before));
    long limit_length =
        sioc_web_request_query(call->request, "limit", limit_text, sizeof(limit_text));
    if (before_length == -2 ||
        (before_length >= 0 && api_id_check(before, (size_t)before_length, "before", problem))) {
        api_problem_set(problem, "before", "before: expected a message id of 1 to %d bytes",
                        API_ID_MAX);
        return NULL;
    }
    if (limit_length == -2 ||
        (limit_length >= 0 && api_parse_count(limit_text, 1, max, &limit) != 0)) {
        api_problem_set(problem, "limit", "limit: expected an integer from 1 to %lu", max);
        return NULL;
    }
    json_t *params = json_pack("{s:s}", "roomId", call->params.values[0]);
    if (params != NULL && before_length >= 0)
        json_object_set_new(params, "before", json_string(before));
    if (params != NULL && limit_length >= 0)
        json_object_set_new(params, "limit", json_integer((json_int_t)limit));
    return params;
}

/* The room is read first so that an unknown room is a 404, not an empty history. */
static void route_room_messages(api_call_t *call)
{
    api_problem_t problem = {{0}, {0}};
    call->kept = history_params(call, &problem);
    if (call->kept == NULL) {
        if (problem.message[0] != '\0')
            reply_problem(call, &problem);
        else
            reply(call, 500, NULL);
        return;
    }
    store_call(call, STORE_ROOM_GET, json_pack("{s:s}", "id", call->params.values[0]),
               "room_not_found", on_history_room);
}

static void route_member_add(api_call_t *call)
{
    static const char *const fields[] = {"userId", NULL};
    char user_id[API_ID_SIZE];
    api_problem_t problem;
    if (api_fields_allowed(call->body, fields, &problem) != 0 ||
        api_field_id(call->body, "userId", API_REQUIRED, user_id, &problem) != 0) {
        reply_problem(call, &problem);
        return;
    }
    record_user(call->api, user_id);
    store_call(call, STORE_ROOM_ADD_MEMBER,
               json_pack("{s:s,s:o}", "roomId", call->params.values[0], "userId",
                         typed_id(call->body, "userId", user_id)),
               "room_not_found", reply_result_200);
}

/* A removed member's sockets leave room:{roomId} on every channel; where the chat driver runs,
 * the room first hears room:userLeft (the seeds' event for a user leaving), so that the other
 * members and the removed user's own tabs see it. */
static void evict_member(api_t *api, const char *room_id, const char *user_id, json_t *result)
{
    int removed = json_is_true(json_object_get(result, "removed"));
    char room[ROOM_NAME_SIZE], user_rooms[2 * ROOM_NAME_SIZE];
    snprintf(room, sizeof(room), "room:%s", room_id);
    for (size_t i = 0; i < api->daemon->channel_count; i++) {
        channel_t *channel = &api->daemon->channels[i];
        if (channel->disabled)
            continue;
        if (removed && strcmp(channel->driver->name, "chat") == 0) {
            sioc_broadcast_t everyone;
            sioc_broadcast_init(&everyone, channel->nsp);
            sioc_broadcast_to(&everyone, room);
            /* The ids as the store holds them: a number stays a number (not the path's text). */
            sioc_broadcast_emit(&everyone, "room:userLeft",
                                json_pack("[{s:O,s:O}]", "roomId",
                                          json_object_get(result, "roomId"), "userId",
                                          json_object_get(result, "userId")));
        }
        sioc_broadcast_t broadcast;
        sioc_broadcast_init(&broadcast, channel->nsp);
        broadcast_to_user(&broadcast, user_id, user_rooms);
        sioc_broadcast_leave(&broadcast, room);
    }
}

static void on_member_removed(api_call_t *call, int error, const char *message, json_t *result)
{
    if (error == 0)
        evict_member(call->api, call->params.values[0], call->params.values[1], result);
    reply_result_200(call, error, message, result);
}

static void route_member_remove(api_call_t *call)
{
    store_call(
        call, STORE_ROOM_REMOVE_MEMBER,
        json_pack("{s:s,s:s}", "roomId", call->params.values[0], "userId", call->params.values[1]),
        "room_not_found", on_member_removed);
}

/* ---- POST /notifications ------------------------------------------------------------------- */

static void on_notification_added(api_call_t *call, int error, const char *message,
                                  json_t *notification)
{
    if (error != 0) {
        reply_store_error(call, error, message);
        return;
    }
    daemon_t *daemon = call->api->daemon;
    for (size_t i = 0; i < daemon->channel_count; i++) {
        if (!daemon->channels[i].disabled &&
            strcmp(daemon->channels[i].driver->name, "notifications") == 0)
            notifications_push(&daemon->channels[i], notification);
    }
    reply(call, 201, json_incref(notification));
}

static void route_notification_create(api_call_t *call)
{
    static const char *const fields[] = {"userId", "type", "payload", NULL};
    char user_id[API_ID_SIZE];
    const char *type;
    json_t *payload;
    api_problem_t problem;
    json_t *body = call->body;
    if (api_fields_allowed(body, fields, &problem) != 0 ||
        api_field_id(body, "userId", API_REQUIRED, user_id, &problem) != 0 ||
        api_field_string(body, "type", API_REQUIRED, API_NAME_MAX, &type, &problem) != 0 ||
        api_field_object(body, "payload", &payload, &problem) != 0) {
        reply_problem(call, &problem);
        return;
    }
    /* A copy: the store reads params from its thread, the body stays the loop thread's. */
    /* userId keeps its JSON type (api_field_id took a number or a string): toUser reads back
     * as it was sent. */
    json_t *user = json_object_get(body, "userId");
    json_t *params =
        json_pack("{s:o,s:s,s:o}", "userId",
                  json_is_integer(user) ? json_deep_copy(user) : json_string(user_id), "type", type,
                  "payload", payload != NULL ? json_deep_copy(payload) : json_object());
    store_call(call, STORE_NOTIFICATION_ADD, params, "not_found", on_notification_added);
}

/* ---- presence ------------------------------------------------------------------------------ */

/* A user never seen is offline rather than unknown: back ends ask "is X online?". The status
 * comes from the sockets connected now, which the store can only lag behind (a daemon that
 * crashed leaves "online" rows); lastActivity comes from the store. */
static void on_presence(api_call_t *call, int error, const char *message, json_t *presence)
{
    if (error != 0 && error != STORE_ENOTFOUND) {
        reply_store_error(call, error, message);
        return;
    }
    const char *user_id = call->params.values[0];
    json_t *last = error == 0 ? json_object_get(presence, "lastActivity") : NULL;
    reply(call, 200,
          json_pack("{s:s,s:s,s:O}", "userId", user_id, "status",
                    user_online(call->api, user_id) ? "online" : "offline", "lastActivity",
                    last != NULL ? last : json_null()));
}

static void route_presence_user(api_call_t *call)
{
    store_call(call, STORE_PRESENCE_GET, json_pack("{s:s}", "userId", call->params.values[0]), NULL,
               on_presence);
}

/* The distinct user ids (data.user.id) of sockets, in order of appearance. */
static json_t *online_users(json_t *sockets)
{
    json_t *online = json_array(), *seen = json_object();
    size_t index;
    json_t *socket;
    json_array_foreach(sockets, index, socket)
    {
        json_t *id =
            json_object_get(json_object_get(json_object_get(socket, "data"), "user"), "id");
        char text[API_ID_SIZE];
        if (json_is_integer(id))
            snprintf(text, sizeof(text), "%" JSON_INTEGER_FORMAT, json_integer_value(id));
        else if (json_is_string(id))
            snprintf(text, sizeof(text), "%s", json_string_value(id));
        else
            continue; /* an anonymous socket */
        if (online != NULL && seen != NULL && json_object_get(seen, text) == NULL) {
            json_object_set_new(seen, text, json_true());
            json_array_append(online, id); /* as the token gave it: 1 stays a number */
        }
    }
    json_decref(seen);
    return online;
}

static void on_room_sockets(int error, json_t *sockets, void *data)
{
    api_call_t *call = data;
    if (error != 0) {
        reply_error(call, 500, "fetch_failed", "listing the room's sockets failed: %s",
                    uv_strerror(error));
        return;
    }
    reply(
        call, 200,
        json_pack("{s:s,s:o}", "roomId", call->params.values[0], "online", online_users(sockets)));
}

static void route_presence_room(api_call_t *call)
{
    char name[NAMESPACE_SIZE], room[ROOM_NAME_SIZE];
    long length = sioc_web_request_query(call->request, "namespace", name, sizeof(name));
    if (length == -1)
        snprintf(name, sizeof(name), "/");
    else if (length < 0 || name[0] != '/' || strlen(name) != (size_t)length) {
        /* A %00 would cut the name as a C string: "/chat%00junk" must not mean "/chat". */
        reply(call, 400,
              error_body("invalid_field",
                         "namespace: expected a namespace such as \"/\" or \"/home\"",
                         "namespace"));
        return;
    }
    channel_t *channel = usable_channel(call->api, name);
    if (channel == NULL) {
        reply_no_channel(call, name);
        return;
    }
    snprintf(room, sizeof(room), "room:%s", call->params.values[0]);
    sioc_broadcast_t broadcast;
    sioc_broadcast_init(&broadcast, channel->nsp);
    sioc_broadcast_to(&broadcast, room);
    /* The callback answers (now with the in-memory adapter); an error return means it will not
     * run. */
    int rc = sioc_broadcast_fetch_sockets(&broadcast, on_room_sockets, call);
    if (rc != 0)
        on_room_sockets(rc, NULL, call);
}

/* ---- GET /metrics: Prometheus text format (daemon/metrics.c) -------------------------------- */

/* Public like the probes: counts and latencies, no ids or data (docs/operations.md). */
static void route_metrics(api_call_t *call)
{
    size_t length = 0;
    char *text = metrics_render(call->api->daemon, &length);
    if (text == NULL) {
        reply_error(call, 500, "internal_error", "out of memory");
        return;
    }
    log_answer(call, 200);
    sioc_web_respond(call->request, 200, METRICS_CONTENT_TYPE, text, call->head_only ? 0 : length);
    free(text);
    call_free(call);
}

/* ---- routing ------------------------------------------------------------------------------- */

static const api_route_t routes[] = {
    {"GET", "/health", route_health, API_ROUTE_PUBLIC},
    {"GET", "/healthz", route_healthz, API_ROUTE_PUBLIC},
    {"GET", "/readyz", route_readyz, API_ROUTE_PUBLIC},
    {"GET", "/metrics", route_metrics, API_ROUTE_PUBLIC},
    {"POST", "/emit", route_emit, API_ROUTE_BODY},
    {"POST", "/users/{userId}/emit", route_user_emit, API_ROUTE_BODY},
    {"POST", "/sockets/join", route_sockets_join, API_ROUTE_BODY},
    {"POST", "/sockets/leave", route_sockets_leave, API_ROUTE_BODY},
    {"POST", "/sockets/disconnect", route_sockets_disconnect, API_ROUTE_BODY},
    {"PUT", "/users/{userId}", route_user_put, API_ROUTE_BODY},
    {"POST", "/rooms", route_room_create, API_ROUTE_BODY},
    {"GET", "/rooms/{roomId}", route_room_get, 0},
    {"GET", "/rooms/{roomId}/messages", route_room_messages, 0},
    {"POST", "/rooms/{roomId}/members", route_member_add, API_ROUTE_BODY},
    {"DELETE", "/rooms/{roomId}/members/{userId}", route_member_remove, 0},
    {"POST", "/notifications", route_notification_create, API_ROUTE_BODY},
    {"GET", "/presence/users/{userId}", route_presence_user, 0},
    {"GET", "/presence/rooms/{roomId}", route_presence_room, 0},
};

/* 1 if the request carries the API key; otherwise answers 401 and returns 0. */
static int authorized(api_call_t *call)
{
    size_t authorization_length = 0, x_api_key_length = 0;
    const char *authorization =
        sioc_web_request_header(call->request, "Authorization", &authorization_length);
    const char *x_api_key = sioc_web_request_header(call->request, "X-API-Key", &x_api_key_length);
    api_key_result_t result = api_key_check(authorization, authorization_length, x_api_key,
                                            x_api_key_length, call->api->daemon->config->api.key);
    if (result == API_KEY_OK)
        return 1;
    log_warn("api: %s %s from %s refused: %s API key", sioc_web_request_method(call->request),
             sioc_web_request_path(call->request), sioc_web_request_remote_address(call->request),
             result == API_KEY_MISSING ? "no" : "wrong");
    if (result == API_KEY_MISSING)
        reply_error(call, 401, "missing_api_key",
                    "send the API key as \"Authorization: Bearer <key>\" or \"X-API-Key: <key>\"");
    else
        reply_error(call, 401, "invalid_api_key", "the API key is not valid");
    return 0;
}

/* Parses the body into call->body (a JSON object) or answers 400 and returns -1. */
static int parse_body(api_call_t *call)
{
    size_t length;
    const uint8_t *bytes = sioc_web_request_body(call->request, &length);
    if (length == 0) {
        reply_error(call, 400, "invalid_body", "expected a JSON object in the request body");
        return -1;
    }
    json_error_t error;
    call->body = json_loadb((const char *)bytes, length, JSON_REJECT_DUPLICATES, &error);
    if (call->body == NULL) {
        reply_error(call, 400, "invalid_json",
                    "the body is not valid JSON: %s (line %d, column %d)", error.text, error.line,
                    error.column);
        return -1;
    }
    if (!json_is_object(call->body)) {
        reply_error(call, 400, "invalid_body", "the body must be a JSON object");
        return -1;
    }
    return 0;
}

static void reply_miss(api_call_t *call, const api_route_miss_t *miss, const char *method,
                       const char *path)
{
    if (miss->status == 400) {
        reply_problem(call, &miss->problem);
        return;
    }
    if (miss->status == 404) {
        reply_error(call, 404, "not_found", "no route %s %s", method, path);
        return;
    }
    /* sioc_web_respond takes no extra headers, so Allow travels in the body. */
    char message[512];
    snprintf(message, sizeof(message), "%s is not allowed on %s (allowed: %s)", method, path,
             miss->allow);
    json_t *body = error_body("method_not_allowed", message, NULL);
    json_object_set_new(json_object_get(body, "error"), "allow", json_string(miss->allow));
    reply(call, 405, body);
}

static void on_request(sioc_web_request_t *request, void *data)
{
    api_t *api = data;
    api_call_t *call = call_new(api, request);
    if (call == NULL) {
        sioc_web_respond(request, 500, "application/json", out_of_memory_body,
                         strlen(out_of_memory_body));
        return;
    }
    const char *method = sioc_web_request_method(request);
    const char *path = sioc_web_request_path(request);
    call->head_only = strcmp(method, "HEAD") == 0;
    if (api->stopping) {
        reply_error(call, 503, "shutting_down", "the daemon is stopping");
        return;
    }
    api_route_miss_t miss;
    call->route = api_route_find(routes, sizeof(routes) / sizeof(routes[0]),
                                 call->head_only ? "GET" : method, path, &call->params, &miss);
    /* Everything but the probes (GET /health, /healthz, /readyz) and /metrics needs the key,
     * unknown paths too: no probing of the routes. */
    int public_route = call->route != NULL && (call->route->flags & API_ROUTE_PUBLIC);
    if (!public_route && !authorized(call))
        return;
    if (call->route == NULL) {
        reply_miss(call, &miss, method, path);
        return;
    }
    if ((call->route->flags & API_ROUTE_BODY) && parse_body(call) != 0)
        return;
    call->route->handler(call);
}

/* ---- start and stop ------------------------------------------------------------------------ */

int api_start(daemon_t *daemon, api_t **out, char *error, size_t error_size)
{
    const config_t *config = daemon->config;
    if (config->api.key == NULL || config->api.key[0] == '\0') {
        snprintf(error, error_size, "api.key: a key is required when the HTTP API is on");
        return -1;
    }
    api_t *api = calloc(1, sizeof(*api));
    if (api == NULL) {
        snprintf(error, error_size, "http api: out of memory");
        return -1;
    }
    api->daemon = daemon;
    api->started_ms = uv_now(daemon->loop);
    int rc =
        sioc_web_server_new(daemon->loop, (size_t)config->api.max_body, on_request, api, &api->web);
    if (rc != 0) {
        free(api);
        snprintf(error, error_size, "http api: %s", uv_strerror(rc));
        return -1;
    }
    rc = sioc_web_server_listen(api->web, config->api.listen.host, config->api.listen.port);
    if (rc != 0) {
        snprintf(error, error_size, "api.listen: cannot listen on %s:%d: %s",
                 config->api.listen.host, config->api.listen.port, uv_strerror(rc));
        /* The server's handles close asynchronously; api goes with them. */
        api->stopping = 1;
        maybe_close(api);
        return -1;
    }
    log_info("http api listening on %s:%d", config->api.listen.host, api_port(api));
    *out = api;
    return 0;
}

void api_stop(api_t *api, void (*closed_cb)(void *data), void *data)
{
    if (api->stopping)
        return;
    api->stopping = 1;
    api->closed_cb = closed_cb;
    api->closed_data = data;
    if (api->calls != NULL)
        log_info("http api: answering the requests in flight before closing");
    maybe_close(api);
}

void api_set_tls(api_t *api, struct ssl_ctx_st *ctx)
{
    sioc_web_server_set_tls(api->web, ctx);
}

int api_port(const api_t *api)
{
    return sioc_web_server_port(api->web);
}
