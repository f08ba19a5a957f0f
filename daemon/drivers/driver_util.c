#include "drivers/driver_util.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* ---- options ----------------------------------------------------------------------------------
 */

/* A key written as config.c writes paths: quoted when it holds a separator. */
static const char *quote_of(const char *key)
{
    return strpbrk(key, "/.- ") != NULL ? "\"" : "";
}

int driver_option_error(const config_t *config, const config_channel_t *channel, const char *key,
                        char *error, size_t error_size, const char *format, ...)
{
    const char *keys[] = {"channels", channel->name, key != NULL ? "options" : NULL, key, NULL};
    int line = config_line_of(config, keys);
    char where[512];
    int used = snprintf(where, sizeof(where), "channels.\"%s\"", channel->name);
    if (key != NULL && used > 0 && (size_t)used < sizeof(where))
        snprintf(where + used, sizeof(where) - (size_t)used, ".options.%s%s%s", quote_of(key), key,
                 quote_of(key));
    char message[512];
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(message, sizeof(message), format, arguments);
    va_end(arguments);
    const char *file = config->file != NULL ? config->file : "(default configuration)";
    if (line > 0)
        snprintf(error, error_size, "%s:%d: %s: %s", file, line, where, message);
    else
        snprintf(error, error_size, "%s: %s: %s", file, where, message);
    return -1;
}

static int is_known(const char *key, const char *const *known)
{
    for (size_t i = 0; known[i] != NULL; i++) {
        if (strcmp(known[i], key) == 0)
            return 1;
    }
    return 0;
}

int driver_check_option_keys(const config_t *config, const config_channel_t *channel,
                             const char *const *known, char *error, size_t error_size)
{
    if (channel->options == NULL)
        return 0;
    if (!json_is_object(channel->options))
        return driver_option_error(config, channel, NULL, error, error_size,
                                   "options: expected an object");
    const char *key;
    json_t *value;
    json_object_foreach(channel->options, key, value)
    {
        if (is_known(key, known))
            continue;
        if (known[0] == NULL)
            return driver_option_error(config, channel, key, error, error_size,
                                       "unknown key (the %s driver takes no options)",
                                       channel->driver);
        char list[256] = "";
        for (size_t i = 0; known[i] != NULL; i++)
            snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
                     known[i]);
        return driver_option_error(config, channel, key, error, error_size,
                                   "unknown key (expected one of: %s)", list);
    }
    return 0;
}

int driver_require_authentication(const config_t *config, const config_channel_t *channel,
                                  const char *driver_name, int allow_optional, char *error,
                                  size_t error_size)
{
    if (channel->auth != CONFIG_AUTH_NONE &&
        (channel->auth != CONFIG_AUTH_OPTIONAL || allow_optional))
        return 0;
    const char *keys[] = {"channels", channel->name, "auth", NULL};
    int line = config_line_of(config, keys);
    const char *file = config->file != NULL ? config->file : "(default configuration)";
    const char *message = channel->auth == CONFIG_AUTH_NONE
                              ? "acts for a user: auth must be jwt, session or any, not none"
                              : "acts for a user: auth must be jwt, session or any, not optional";
    if (line > 0)
        snprintf(error, error_size, "%s:%d: channels.\"%s\".auth: the %s driver %s", file, line,
                 channel->name, driver_name, message);
    else
        snprintf(error, error_size, "%s: channels.\"%s\".auth: the %s driver %s", file,
                 channel->name, driver_name, message);
    return -1;
}

/* ---- payloads ---------------------------------------------------------------------------------
 */

json_t *driver_payload(const sioc_event_t *event)
{
    return json_array_get(event->args, 0);
}

json_t *driver_id_argument(json_t *payload, const char *key)
{
    return json_is_object(payload) ? json_object_get(payload, key) : payload;
}

int driver_id_text(json_t *value, char out[DRIVER_MAX_ID_BYTES + 1])
{
    out[0] = '\0';
    if (json_is_integer(value)) {
        snprintf(out, DRIVER_MAX_ID_BYTES + 1, "%" JSON_INTEGER_FORMAT, json_integer_value(value));
        return 0;
    }
    const char *text = json_string_value(value);
    if (text == NULL)
        return -1;
    size_t length = json_string_length(value);
    if (length == 0 || length > DRIVER_MAX_ID_BYTES || strlen(text) != length)
        return -1;
    memcpy(out, text, length + 1);
    return 0;
}

json_t *driver_id_param(json_t *value, const char *text)
{
    if (json_is_integer(value) || json_is_string(value))
        return json_deep_copy(value); /* the store reads params from its own thread */
    return json_string(text);
}

driver_text_check_t driver_check_text(json_t *value, size_t max_bytes)
{
    const char *text = json_string_value(value);
    if (text == NULL || json_string_length(value) == 0)
        return DRIVER_TEXT_MISSING;
    if (json_string_length(value) > max_bytes)
        return DRIVER_TEXT_TOO_LONG;
    /* The store and the logs see C strings: a NUL inside would cut the text silently. */
    if (strlen(text) != json_string_length(value))
        return DRIVER_TEXT_INVALID;
    return DRIVER_TEXT_OK;
}

/* ---- rate limiting ----------------------------------------------------------------------------
 */

void driver_bucket_init(driver_bucket_t *bucket, uint32_t burst, uint64_t now_ms)
{
    bucket->tokens = burst;
    bucket->last_ms = now_ms;
}

int driver_bucket_take(driver_bucket_t *bucket, double rate, uint32_t burst, uint64_t now_ms)
{
    if (now_ms > bucket->last_ms) {
        bucket->tokens += (double)(now_ms - bucket->last_ms) * rate / 1000.0;
        if (bucket->tokens > burst)
            bucket->tokens = burst;
        bucket->last_ms = now_ms;
    }
    if (bucket->tokens < 1.0)
        return 0;
    bucket->tokens -= 1.0;
    return 1;
}

/* ---- driver state -----------------------------------------------------------------------------
 */

void driver_base_init(driver_base_t *base, channel_t *channel, void (*release)(driver_base_t *))
{
    base->channel = channel;
    base->references = 1;
    base->release = release;
}

static void base_unref(driver_base_t *base)
{
    if (--base->references == 0)
        base->release(base);
}

void driver_base_detach(driver_base_t *base)
{
    if (base == NULL)
        return;
    base->channel = NULL;
    base_unref(base);
}

channel_t *driver_base_channel(const driver_base_t *base)
{
    channel_t *channel = base->channel;
    /* Once the daemon stops, the server (and its namespaces) may be freed before the store has
     * answered everything: from then on results are stored but nobody is told. */
    if (channel == NULL || channel->daemon->stopping)
        return NULL;
    return channel;
}

/* ---- per-socket order -------------------------------------------------------------------------
 */

typedef struct driver_queued_s driver_queued_t;

/* An event that arrived while an earlier one of its socket was in flight: a copy. */
struct driver_queued_s {
    driver_queued_t *next;
    const driver_handler_t *handler;
    char *name;
    json_t *args; /* a reference */
    sioc_binary_t *attachments;
    size_t attachment_count;
    int64_t ack_id;
};

/* A socket's waiting events, in arrival order. */
struct driver_queue_s {
    driver_queued_t *head, *tail;
    uint32_t count; /* at most limits.maxQueuedEvents */
};

static uint32_t order_serials;

void driver_socket_init(driver_socket_t *order)
{
    memset(order, 0, sizeof(*order));
    if (++order_serials == 0) /* 0 is a call's "no socket waits" */
        order_serials = 1;
    order->serial = order_serials;
}

static void queued_free(driver_queued_t *queued)
{
    for (size_t i = 0; i < queued->attachment_count; i++)
        free((void *)queued->attachments[i].data);
    free(queued->attachments);
    json_decref(queued->args);
    free(queued->name);
    free(queued);
}

void driver_socket_cleanup(driver_socket_t *order)
{
    driver_queue_t *queue = order->queue;
    order->queue = NULL;
    while (queue != NULL && queue->head != NULL) {
        driver_queued_t *queued = queue->head;
        queue->head = queued->next;
        queued_free(queued);
    }
    free(queue);
}

/* The oldest waiting event, unlinked (the queue freed with its last); NULL when none. */
static driver_queued_t *order_pop(driver_socket_t *order)
{
    driver_queue_t *queue = order->queue;
    if (queue == NULL)
        return NULL;
    driver_queued_t *queued = queue->head;
    queue->head = queued->next;
    queue->count--;
    if (queue->head == NULL) {
        free(queue);
        order->queue = NULL;
    }
    return queued;
}

/* queued to the end of the socket's queue; 0, or -1 when out of memory (queued not taken). */
static int order_push(driver_socket_t *order, driver_queued_t *queued)
{
    if (order->queue == NULL && (order->queue = calloc(1, sizeof(*order->queue))) == NULL)
        return -1;
    driver_queue_t *queue = order->queue;
    if (queue->tail != NULL) /* a queue is freed with its last event: tail is that of head's */
        queue->tail->next = queued;
    else
        queue->head = queued;
    queue->tail = queued;
    queue->count++;
    return 0;
}

/* The event's parts outlive the callback: the name, the attachments' bytes, a reference on
 * the arguments (sioc does not change them once delivered). */
static driver_queued_t *queued_new(const driver_handler_t *handler, const sioc_event_t *event)
{
    driver_queued_t *queued = calloc(1, sizeof(*queued));
    if (queued == NULL || (queued->name = strdup(event->name)) == NULL)
        goto err;
    if (event->attachment_count > 0) {
        queued->attachments = calloc(event->attachment_count, sizeof(sioc_binary_t));
        if (queued->attachments == NULL)
            goto err;
        for (size_t i = 0; i < event->attachment_count; i++) {
            size_t length = event->attachments[i].length;
            uint8_t *copy = malloc(length > 0 ? length : 1);
            if (copy == NULL)
                goto err;
            memcpy(copy, event->attachments[i].data, length);
            queued->attachments[i].data = copy;
            queued->attachments[i].length = length;
            queued->attachment_count++;
        }
    }
    queued->handler = handler;
    queued->args = json_incref(event->args);
    queued->ack_id = event->ack_id;
    return queued;
err:
    if (queued != NULL)
        queued_free(queued);
    return NULL;
}

/* Runs the waiting events of the socket with id while none of its calls is in flight. A
 * handler may end the socket: it is looked up again after each one. */
static void order_drain(sioc_namespace_t *nsp, const char *id, uint32_t serial)
{
    /* A copy: the call that owns id may be freed by a handler below. */
    char *socket_id = strdup(id);
    sioc_socket_t *socket = socket_id != NULL ? sioc_namespace_socket(nsp, socket_id) : NULL;
    driver_socket_t *order = socket != NULL ? sioc_socket_get_user(socket) : NULL;
    if (order == NULL || order->serial != serial || order->draining) {
        free(socket_id);
        return;
    }
    order->draining = 1;
    while (order->busy == 0 && order->queue != NULL) {
        driver_queued_t *queued = order_pop(order);
        sioc_event_t event = {
            .name = queued->name,
            .args = queued->args,
            .attachments = queued->attachments,
            .attachment_count = queued->attachment_count,
            .ack_id = queued->ack_id,
        };
        queued->handler->callback(socket, &event, queued->handler->data);
        queued_free(queued);
        socket = sioc_namespace_socket(nsp, socket_id);
        if (socket == NULL || sioc_socket_get_user(socket) != order) {
            free(socket_id);
            return; /* disconnected by the handler: the queue went with it */
        }
    }
    order->draining = 0;
    free(socket_id);
}

static void on_ordered_event(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    const driver_handler_t *handler = data;
    driver_socket_t *order = sioc_socket_get_user(socket);
    if (order == NULL || (order->busy == 0 && order->queue == NULL)) {
        handler->callback(socket, event, handler->data);
        return;
    }
    channel_t *channel = driver_base_channel(handler->base);
    uint32_t most = channel != NULL ? channel->daemon->config->limits.max_queued_events : 0;
    uint32_t waiting = order->queue != NULL ? order->queue->count : 0;
    driver_queued_t *queued = waiting < most ? queued_new(handler, event) : NULL;
    if (queued != NULL && order_push(order, queued) == 0)
        return;
    if (queued != NULL)
        queued_free(queued);
    log_warn("socket %s: %s refused, %" PRIu32 " events already wait for earlier ones",
             sioc_socket_id(socket), event->name, waiting);
    channel_reply_error(socket, event, handler->error_event, DRIVER_ERATELIMIT,
                        "Too many events waiting for earlier ones");
}

static driver_handler_t *handler_new(driver_base_t *base, const char *error_event,
                                     sioc_event_cb callback, void *data)
{
    if (base->handler_count == DRIVER_MAX_HANDLERS)
        return NULL;
    driver_handler_t *handler = &base->handlers[base->handler_count++];
    handler->base = base;
    handler->error_event = error_event;
    handler->callback = callback;
    handler->data = data;
    return handler;
}

int driver_on(driver_base_t *base, const char *event, const char *error_event,
              sioc_event_cb callback, void *data)
{
    driver_handler_t *handler = handler_new(base, error_event, callback, data);
    if (handler == NULL)
        return -1;
    return sioc_namespace_on(base->channel->nsp, event, on_ordered_event, handler);
}

int driver_on_any(driver_base_t *base, const char *error_event, sioc_event_cb callback, void *data)
{
    driver_handler_t *handler = handler_new(base, error_event, callback, data);
    if (handler == NULL)
        return -1;
    sioc_namespace_on_any(base->channel->nsp, on_ordered_event, handler);
    return 0;
}

/* ---- calls ------------------------------------------------------------------------------------
 */

static void copy_text(char *out, size_t size, const char *text)
{
    snprintf(out, size, "%s", text != NULL ? text : "");
}

driver_call_t *driver_call_new(driver_base_t *base, sioc_socket_t *socket,
                               const sioc_event_t *event, const char *error_event)
{
    driver_call_t *call = calloc(1, sizeof(*call));
    if (call == NULL || (call->context = json_object()) == NULL)
        goto err;
    char user_id[CHANNEL_ID_SIZE];
    call->user =
        base->socket_user != NULL ? base->socket_user(socket) : json_incref(channel_user(socket));
    if (channel_id_text_of(call->user, user_id) == 0 && (call->user_id = strdup(user_id)) == NULL)
        goto err;
    call->base = base;
    base->references++;
    call->nsp = sioc_socket_namespace(socket);
    if ((call->socket_id = strdup(sioc_socket_id(socket))) == NULL)
        goto err;
    copy_text(call->event_name, sizeof(call->event_name), event != NULL ? event->name : NULL);
    call->error_event = error_event;
    call->ack_id = event != NULL ? event->ack_id : -1;
    driver_socket_t *order = sioc_socket_get_user(socket);
    if (order != NULL) {
        order->busy++;
        call->order_serial = order->serial;
    }
    return call;
err:
    if (call != NULL) {
        if (call->base != NULL)
            base_unref(call->base);
        json_decref(call->user);
        json_decref(call->context);
        free(call->user_id);
    }
    free(call);
    log_error("out of memory answering %s", event != NULL ? event->name : "a connection");
    return NULL;
}

driver_call_t *driver_call_new_for_user(driver_base_t *base, sioc_namespace_t *nsp, json_t *user_id)
{
    char text[DRIVER_MAX_ID_BYTES + 1];
    driver_call_t *call = calloc(1, sizeof(*call));
    if (call == NULL || driver_id_text(user_id, text) != 0 ||
        (call->context = json_object()) == NULL || (call->user_id = strdup(text)) == NULL ||
        (call->socket_id = strdup("")) == NULL ||
        (call->user = json_pack("{s:O}", "id", user_id)) == NULL) {
        if (call != NULL) {
            json_decref(call->context);
            free(call->user_id);
            free(call->socket_id);
        }
        free(call);
        return NULL;
    }
    call->base = base;
    base->references++;
    call->nsp = nsp;
    call->ack_id = -1;
    return call;
}

/* The call's socket may go on with its next events. */
static void call_unorder(driver_call_t *call)
{
    sioc_socket_t *socket = driver_call_socket(call);
    driver_socket_t *order = socket != NULL ? sioc_socket_get_user(socket) : NULL;
    if (order == NULL || order->serial != call->order_serial || order->busy == 0)
        return;
    if (--order->busy == 0 && order->queue != NULL)
        order_drain(call->nsp, call->socket_id, call->order_serial);
}

void driver_call_free(driver_call_t *call)
{
    if (call == NULL)
        return;
    if (call->order_serial != 0)
        call_unorder(call);
    json_decref(call->user);
    json_decref(call->context);
    free(call->user_id);
    free(call->socket_id);
    base_unref(call->base);
    free(call);
}

int driver_call_live(const driver_call_t *call)
{
    return driver_base_channel(call->base) != NULL;
}

int driver_call_abandoned(driver_call_t *call)
{
    if (driver_call_live(call))
        return 0;
    driver_call_free(call);
    return 1;
}

sioc_socket_t *driver_call_socket(const driver_call_t *call)
{
    if (!driver_call_live(call) || call->socket_id[0] == '\0')
        return NULL;
    return sioc_namespace_socket(call->nsp, call->socket_id);
}

void driver_call_request(driver_call_t *call, store_operation_t operation, json_t *params,
                         store_done_cb done)
{
    /* The channel is there: requests are made from handlers or from live callbacks. */
    store_request(call->base->channel->daemon->store, operation, params, done, call);
}

/* The event the call answers, as channel_reply_* expect it (its arguments are long gone). */
static void call_event(const driver_call_t *call, sioc_event_t *event)
{
    memset(event, 0, sizeof(*event));
    event->name = call->event_name;
    event->ack_id = call->ack_id;
}

void driver_call_finish(driver_call_t *call, json_t *result)
{
    sioc_socket_t *socket = driver_call_socket(call);
    if (socket != NULL && call->event_name[0] != '\0') {
        sioc_event_t event;
        call_event(call, &event);
        channel_reply_ok(socket, &event, result);
    } else {
        json_decref(result);
    }
    driver_call_free(call);
}

void driver_call_fail(driver_call_t *call, const char *code, const char *message)
{
    sioc_socket_t *socket = driver_call_socket(call);
    if (socket != NULL && call->event_name[0] != '\0') {
        sioc_event_t event;
        call_event(call, &event);
        channel_reply_error(socket, &event, call->error_event, code, message);
    }
    driver_call_free(call);
}

void driver_call_store_failed(driver_call_t *call, store_operation_t operation, int error,
                              const char *message)
{
    const char *what = message != NULL ? message : "?";
    /* Refusals that follow from the data (a race with another client, an id that names
     * nothing) reach the client in the store's words; failures of the store itself do not. */
    if (error == STORE_ENOTFOUND || error == STORE_ECONFLICT || error == STORE_EINVALID) {
        log_debug("%s for %s: store %s refused: %s", call->event_name,
                  driver_call_user_id_text(call), store_operation_name(operation), what);
        driver_call_fail(call,
                         error == STORE_ENOTFOUND   ? DRIVER_ENOTFOUND
                         : error == STORE_ECONFLICT ? DRIVER_ECONFLICT
                                                    : DRIVER_EINVALID,
                         what);
        return;
    }
    log_error("%s for user %s: store %s failed: %s (%d)",
              call->event_name[0] ? call->event_name : "connection", driver_call_user_id_text(call),
              store_operation_name(operation), what, error);
    driver_call_fail(call, DRIVER_EUNAVAILABLE,
                     error == STORE_ECLOSED ? "The server is shutting down"
                                            : "The server could not save this, try again");
}

const char *driver_call_string(const driver_call_t *call, const char *key)
{
    const char *text = json_string_value(json_object_get(call->context, key));
    return text != NULL ? text : "";
}

json_t *driver_call_user_id(const driver_call_t *call)
{
    return json_object_get(call->user, "id");
}

const char *driver_call_user_id_text(const driver_call_t *call)
{
    return call->user_id != NULL ? call->user_id : "";
}

/* ---- emitting ---------------------------------------------------------------------------------
 */

int driver_room_name(char *out, size_t size, const char *prefix, const char *id)
{
    int length = snprintf(out, size, "%s%s", prefix, id);
    return length >= 0 && (size_t)length < size ? 0 : -1;
}

void driver_emit_to_room(sioc_namespace_t *nsp, const char *room, const char *except_id,
                         const char *event, json_t *argument)
{
    sioc_broadcast_t broadcast;
    sioc_broadcast_init(&broadcast, nsp);
    if (room != NULL)
        sioc_broadcast_to(&broadcast, room);
    if (except_id != NULL)
        sioc_broadcast_except(&broadcast, except_id); /* every socket is in a room of its id */
    sioc_broadcast_emit(&broadcast, event, json_pack("[o]", argument));
}

json_t *driver_user_profile(json_t *user)
{
    json_t *profile = json_object();
    for (size_t i = 0; i < DRIVER_PROFILE_FIELDS && profile != NULL; i++) {
        json_t *value = json_object_get(user, driver_profile_fields[i]);
        /* A copy: store params are read from the store's thread until done. */
        if (value != NULL && !json_is_null(value))
            json_object_set_new(profile, driver_profile_fields[i], json_deep_copy(value));
    }
    return profile;
}

const char *const driver_profile_fields[DRIVER_PROFILE_FIELDS + 1] = {
    "id", "firstName", "lastName", "role", "avatar", NULL,
};

void driver_user_complete(json_t *user, json_t *stored)
{
    driver_user_complete_fields(user, stored, 0);
}

unsigned driver_user_complete_fields(json_t *user, json_t *stored, unsigned refresh)
{
    unsigned set = 0;
    for (unsigned i = 1; i < DRIVER_PROFILE_FIELDS && json_is_object(user); i++) {
        json_t *mine = json_object_get(user, driver_profile_fields[i]);
        json_t *theirs = json_object_get(stored, driver_profile_fields[i]);
        if ((mine == NULL || json_is_null(mine) || (refresh & 1u << i) != 0) && theirs != NULL &&
            !json_is_null(theirs)) {
            json_object_set_new(user, driver_profile_fields[i], json_deep_copy(theirs));
            set |= 1u << i;
        }
    }
    return set;
}
