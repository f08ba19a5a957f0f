/* notifications: VMT's live layer (seed 000) on a channel.
 *
 * Every socket of a user joins user:<id>; notifications created from then on (notifications_push,
 * from the HTTP API or the access flow below) come at once as NEW_NOTIFICATION events: what
 * VMT's SocketProvider listens for. options.replayUnread also pushes the unread ones (oldest
 * first, at most 100) on connection. With auth "optional" a socket may connect anonymous (VMT
 * opens it when the page loads) and SYNC_SOCKET binds the user it proves later.
 *
 * Client events (ack {ok:true, ...} or {ok:false, error:{code, message}}; without an ack errors
 * come as the *:error event named):
 *   SYNC_SOCKET userId | {userId} [, location]   accepted for compatibility; only the
 *                          authenticated user. VMT's ack convention (res, err): [{ok:true,
 *                          userId, socketId}, null] or [null, {code, message}]; notifications:error
 *   notifications:list {unreadOnly?, limit?}     ack {notifications: [view, ...]} newest first
 *                                                                          notifications:error
 *   notifications:read {ids: [id, ...] | "all"} (or the ids alone)  ack {updated}
 *                                                                          notifications:error
 *   room:requestAccess roomId | {roomId}   stored; the owner gets a "requestAccess"
 *                          notification; ack {request}                              room:error
 *   room:grantAccess / room:denyAccess requestId | {requestId}   the owner only; stored (a grant
 *                          adds the member); the requester gets "grantedAccess" / "deniedAccess";
 *                          ack {request}                                            room:error */
#include "drivers/notifications.h"

#include <stdlib.h>
#include <string.h>

#include "driver_util.h"
#include "log.h"

#define UNREAD_ON_CONNECT_MAX 100 /* store.h: NOTIFICATION_LIST limit is 1..100 */
#define READ_IDS_MAX 1000         /* store.h: MARK_READ takes at most 1000 ids */
#define EVENT_NAME_MAX 64

typedef struct notifications_s {
    driver_base_t base;
    int replay_unread; /* options.replayUnread: the unread ones are pushed on connection */
    char event[EVENT_NAME_MAX + 1]; /* what a notification is pushed as */
} notifications_t;

/* ---- how clients see notifications ----------------------------------------------------------- */

json_t *notifications_view(json_t *stored)
{
    json_t *view = json_object();
    json_t *payload = json_object_get(stored, "payload");
    const char *key;
    json_t *value;
    json_object_foreach(payload, key, value)
    {
        if (strcmp(key, "room") != 0 && strcmp(key, "course") != 0)
            json_object_set(view, key, value);
    }
    json_object_update(view, stored);
    json_object_set(view, "_id", json_object_get(stored, "id"));
    json_object_set(view, "notificationType", json_object_get(stored, "type"));
    json_object_set(view, "toUser", json_object_get(stored, "userId"));
    json_object_set_new(view, "isTrashed", json_false());
    return view;
}

json_t *notifications_event(json_t *stored)
{
    json_t *event = json_pack("{s:o}", "notification", notifications_view(stored));
    json_t *payload = json_object_get(stored, "payload");
    static const char *const resources[] = {"room", "course", NULL};
    for (size_t i = 0; resources[i] != NULL && event != NULL; i++) {
        json_t *resource = json_object_get(payload, resources[i]);
        if (resource != NULL)
            json_object_set(event, resources[i], resource);
    }
    return event;
}

/* A connected socket's state (sioc_socket_set_user). */
typedef struct notifications_socket_s {
    driver_socket_t order; /* first: its events take effect in arrival order */
    driver_bucket_t bucket;
} notifications_socket_t;

static notifications_t *channel_state(channel_t *channel)
{
    if (channel == NULL || channel->driver != &driver_notifications || channel->state == NULL)
        return NULL;
    notifications_t *notifications = channel->state;
    return driver_base_channel(&notifications->base) != NULL ? notifications : NULL;
}

void notifications_push(channel_t *channel, json_t *notification)
{
    notifications_t *notifications = channel_state(channel);
    char user_id[DRIVER_MAX_ID_BYTES + 1];
    char room[DRIVER_ROOM_NAME_SIZE];
    if (notifications == NULL ||
        driver_id_text(json_object_get(notification, "userId"), user_id) != 0 ||
        driver_room_name(room, sizeof(room), "user:", user_id) != 0)
        return;
    driver_emit_to_room(channel->nsp, room, NULL, notifications->event,
                        notifications_event(notification));
}

static notifications_t *call_state(const driver_call_t *call)
{
    return (notifications_t *)call->base; /* the base is the first member */
}

/* ---- connecting ---------------------------------------------------------------------------- */

/* Oldest first, as they would have come had the user been online. */
static void on_unread_listed(int error, const char *message, json_t *list, void *data)
{
    driver_call_t *call = data;
    if (driver_call_abandoned(call))
        return;
    sioc_socket_t *socket = driver_call_socket(call);
    if (error != 0)
        log_error("notifications: unread of user %s not listed: %s", driver_call_user_id_text(call),
                  message);
    for (size_t i = json_array_size(list); socket != NULL && error == 0 && i > 0; i--) {
        if (sioc_socket_emit(socket, call_state(call)->event,
                             json_pack("[o]", notifications_event(json_array_get(list, i - 1)))) !=
            0)
            break; /* the socket is closing (a slow reader): the rest would go nowhere */
    }
    call->next(call);
}

static void on_user_upserted(int error, const char *message, json_t *result, void *data)
{
    driver_call_t *call = data;
    if (driver_call_abandoned(call))
        return;
    if (error != 0) /* notifications need no user row: go on, the list still works */
        log_error("notifications: user %s not stored: %s", driver_call_user_id_text(call), message);
    else
        driver_user_complete(call->user, result);
    if (!call_state(call)->replay_unread) {
        call->next(call);
        return;
    }
    driver_call_request(call, STORE_NOTIFICATION_LIST,
                        json_pack("{s:s,s:b,s:i}", "userId", driver_call_user_id_text(call),
                                  "unreadOnly", 1, "limit", UNREAD_ON_CONNECT_MAX),
                        on_unread_listed);
}

static void connected_free(driver_call_t *call)
{
    driver_call_free(call);
}

/* The socket of a user: in user:<id>, where new notifications reach it; the user stored
 * (access requests name users; the profile names them to owners); the unread ones replayed
 * when options.replayUnread asks for it. Then call->next. -1 when the id makes no room. */
static int attach_user(sioc_socket_t *socket, driver_call_t *call)
{
    char user_id[CHANNEL_ID_SIZE];
    char room[DRIVER_ROOM_NAME_SIZE];
    if (channel_user_id_text(socket, user_id) != 0 ||
        driver_room_name(room, sizeof(room), "user:", user_id) != 0)
        return -1;
    sioc_socket_join(socket, room);
    driver_call_request(call, STORE_USER_UPSERT, driver_user_profile(call->user), on_user_upserted);
    return 0;
}

static void on_connection(sioc_socket_t *socket, void *data)
{
    notifications_t *notifications = data;
    channel_t *channel = notifications->base.channel;
    notifications_socket_t *state = malloc(sizeof(*state));
    int anonymous = channel_user(socket) == NULL;
    if (state == NULL || (anonymous && channel->config->auth != CONFIG_AUTH_OPTIONAL)) {
        log_warn("notifications %s: socket %s has no user (or out of memory): disconnected",
                 sioc_namespace_name(sioc_socket_namespace(socket)), sioc_socket_id(socket));
        free(state);
        sioc_socket_disconnect(socket, 0);
        return;
    }
    /* Access requests notify another user: rate limited like chat messages. */
    const config_t *config = channel->daemon->config;
    driver_socket_init(&state->order);
    driver_bucket_init(&state->bucket, config->limits.message_burst, uv_now(channel->daemon->loop));
    sioc_socket_set_user(socket, state);
    if (anonymous)
        return; /* VMT's page before login: SYNC_SOCKET binds the user later, with proof */
    driver_call_t *call = driver_call_new(&notifications->base, socket, NULL, NULL);
    if (call == NULL)
        return;
    call->next = connected_free;
    if (attach_user(socket, call) != 0) {
        log_warn("notifications: socket %s has an unusable user id: disconnected",
                 sioc_socket_id(socket));
        driver_call_free(call);
        sioc_socket_disconnect(socket, 0);
    }
}

static void on_disconnect(sioc_socket_t *socket, const char *reason, void *data)
{
    notifications_socket_t *state = sioc_socket_get_user(socket);
    sioc_socket_set_user(socket, NULL);
    if (state != NULL)
        driver_socket_cleanup(&state->order);
    free(state);
}

/* Events other than SYNC_SOCKET act for the user: an anonymous socket is told to log in. */
static int has_user(sioc_socket_t *socket, const sioc_event_t *event, const char *error_event)
{
    if (channel_user(socket) != NULL)
        return 1;
    channel_reply_error(socket, event, error_event, DRIVER_EFORBIDDEN,
                        "Log in first: this socket has no user yet (SYNC_SOCKET binds it)");
    return 0;
}

/* ---- SYNC_SOCKET ----------------------------------------------------------------------------- */

/* Answers in VMT's (res, err) convention: socket.emit('SYNC_SOCKET', _id, location, (res, err)
 * => { if (err) ... }). */
static void sync_reply(sioc_socket_t *socket, const sioc_event_t *event, json_t *result,
                       const char *code, const char *message)
{
    if (event->ack_id < 0) {
        json_decref(result);
        if (code != NULL)
            channel_reply_error(socket, event, "notifications:error", code, message);
        return;
    }
    if (code == NULL)
        sioc_socket_ack(socket, event->ack_id, json_pack("[o,n]", result));
    else
        sioc_socket_ack(socket, event->ack_id,
                        json_pack("[n,{s:s,s:s}]", "code", code, "message", message));
}

/* The id a SYNC_SOCKET payload claims (VMT sends user._id, raw or in an object), or NULL. */
static json_t *claimed_id(const sioc_event_t *event)
{
    json_t *claimed = driver_payload(event);
    if (json_is_object(claimed))
        claimed = json_object_get(claimed, json_object_get(claimed, "userId") ? "userId" : "_id");
    return claimed != NULL && !json_is_null(claimed) ? claimed : NULL;
}

/* 1 when claimed (may be NULL: no claim) names the socket's user. */
static int claim_matches(sioc_socket_t *socket, json_t *claimed)
{
    char user_id[CHANNEL_ID_SIZE];
    char claimed_text[DRIVER_MAX_ID_BYTES + 1];
    if (channel_user_id_text(socket, user_id) != 0)
        return 0;
    return claimed == NULL ||
           (driver_id_text(claimed, claimed_text) == 0 && strcmp(claimed_text, user_id) == 0);
}

static json_t *sync_result(sioc_socket_t *socket)
{
    return json_pack("{s:b,s:O,s:s}", "ok", 1, "userId",
                     json_object_get(channel_user(socket), "id"), "socketId",
                     sioc_socket_id(socket));
}

/* The answer of a binding SYNC_SOCKET, once the user is stored (and replayed to). */
static void bound_reply(driver_call_t *call)
{
    sioc_socket_t *socket = driver_call_socket(call);
    if (socket != NULL) {
        sioc_event_t event = {.name = call->event_name, .ack_id = call->ack_id};
        sync_reply(socket, &event, sync_result(socket), NULL, NULL);
    }
    driver_call_free(call);
}

static void bound_fail(driver_call_t *call, sioc_socket_t *socket, const char *message)
{
    if (socket != NULL) {
        sioc_event_t event = {.name = call->event_name, .ack_id = call->ack_id};
        sync_reply(socket, &event, NULL, DRIVER_EFORBIDDEN, message);
    }
    driver_call_free(call);
}

static void on_bound(sioc_socket_t *socket, const char *problem, void *data)
{
    driver_call_t *call = data;
    if (driver_call_abandoned(call))
        return;
    if (socket == NULL || problem != NULL) {
        char message[256];
        snprintf(message, sizeof(message), "Authentication error: %s",
                 problem != NULL ? problem : "gone");
        bound_fail(call, socket, message);
        return;
    }
    json_t *claimed = json_object_get(call->context, "claimed");
    if (!claim_matches(socket, claimed)) {
        json_object_del(sioc_socket_data(socket), "user");
        log_warn("notifications: socket %s proved another user than the SYNC_SOCKET claim",
                 sioc_socket_id(socket));
        bound_fail(call, socket, "SYNC_SOCKET names another user than the authenticated one");
        return;
    }
    /* The call was made anonymous: it now acts for the user it proved. */
    json_decref(call->user);
    call->user = json_incref(channel_user(socket));
    char user_id[CHANNEL_ID_SIZE];
    channel_user_id_text(socket, user_id);
    free(call->user_id);
    call->user_id = strdup(user_id);
    log_info("notifications: socket %s bound to user %s", sioc_socket_id(socket), user_id);
    call->next = bound_reply;
    if (call->user_id == NULL || attach_user(socket, call) != 0)
        bound_fail(call, socket, "This user id cannot be served");
}

/* A socket with a user: SYNC_SOCKET confirms it, and refuses a payload naming someone else.
 * An anonymous one (auth "optional": VMT connects before login) binds the user it proves now:
 * a token in the payload ({userId, token}) or the session of its cookie, read again. VMT's own
 * server believed the claimed id; sioc never binds on a claim alone. */
static void on_sync_socket(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    notifications_t *notifications = data;
    json_t *claimed = claimed_id(event);
    if (channel_user(socket) == NULL) {
        driver_call_t *call =
            driver_call_new(&notifications->base, socket, event, "notifications:error");
        if (call == NULL)
            return;
        if (claimed != NULL)
            json_object_set(call->context, "claimed", claimed);
        json_t *payload = driver_payload(event);
        channel_bind_user(notifications->base.channel, socket,
                          json_is_object(payload) ? json_object_get(payload, "token") : NULL,
                          on_bound, call);
        return;
    }
    if (!claim_matches(socket, claimed)) {
        log_warn("notifications: socket %s tried SYNC_SOCKET for another user",
                 sioc_socket_id(socket));
        sync_reply(socket, event, NULL, DRIVER_EFORBIDDEN,
                   "SYNC_SOCKET names another user than the authenticated one");
        return;
    }
    sync_reply(socket, event, sync_result(socket), NULL, NULL);
}

/* ---- notifications:list and notifications:read --------------------------------------------- */

static void on_listed(int error, const char *message, json_t *list, void *data)
{
    driver_call_t *call = data;
    if (driver_call_abandoned(call))
        return;
    if (error != 0) {
        driver_call_store_failed(call, STORE_NOTIFICATION_LIST, error, message);
        return;
    }
    json_t *views = json_array();
    size_t index;
    json_t *stored;
    json_array_foreach(list, index, stored)
    {
        json_array_append_new(views, notifications_view(stored));
    }
    driver_call_finish(call, json_pack("{s:o}", "notifications", views));
}

static void on_notifications_list(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    if (!has_user(socket, event, "notifications:error"))
        return;
    notifications_t *notifications = data;
    json_t *payload = driver_payload(event);
    json_t *unread_only = json_object_get(payload, "unreadOnly");
    json_t *limit = json_object_get(payload, "limit");
    if ((payload != NULL && !json_is_object(payload) && !json_is_null(payload)) ||
        (unread_only != NULL && !json_is_boolean(unread_only)) ||
        (limit != NULL && (!json_is_integer(limit) || json_integer_value(limit) < 1 ||
                           json_integer_value(limit) > 100))) {
        channel_reply_error(socket, event, "notifications:error", DRIVER_EINVALID,
                            "expected {unreadOnly?: boolean, limit?: 1 to 100}");
        return;
    }
    driver_call_t *call =
        driver_call_new(&notifications->base, socket, event, "notifications:error");
    if (call == NULL)
        return;
    json_t *params = json_pack("{s:s,s:b}", "userId", driver_call_user_id_text(call), "unreadOnly",
                               json_is_true(unread_only));
    if (limit != NULL)
        json_object_set_new(params, "limit", json_integer(json_integer_value(limit)));
    driver_call_request(call, STORE_NOTIFICATION_LIST, params, on_listed);
}

static void on_marked_read(int error, const char *message, json_t *result, void *data)
{
    driver_call_t *call = data;
    if (driver_call_abandoned(call))
        return;
    if (error != 0) {
        driver_call_store_failed(call, STORE_NOTIFICATION_MARK_READ, error, message);
        return;
    }
    driver_call_finish(call, json_pack("{s:O?}", "updated", json_object_get(result, "updated")));
}

/* ids as the store takes them: "all", or an array of 1..1000 ids made text; NULL if invalid. */
static json_t *read_ids(json_t *ids)
{
    char id[DRIVER_MAX_ID_BYTES + 1];
    if (json_is_string(ids) && strcmp(json_string_value(ids), "all") == 0)
        return json_string("all");
    size_t count = json_array_size(ids);
    if (count == 0 || count > READ_IDS_MAX)
        return NULL;
    json_t *texts = json_array();
    for (size_t i = 0; i < count && texts != NULL; i++) {
        if (driver_id_text(json_array_get(ids, i), id) != 0) {
            json_decref(texts);
            return NULL;
        }
        json_array_append_new(texts, json_string(id));
    }
    return texts;
}

static void on_notifications_read(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    if (!has_user(socket, event, "notifications:error"))
        return;
    notifications_t *notifications = data;
    json_t *payload = driver_payload(event);
    json_t *ids = read_ids(json_is_object(payload) ? json_object_get(payload, "ids") : payload);
    if (ids == NULL) {
        channel_reply_error(socket, event, "notifications:error", DRIVER_EINVALID,
                            "ids must be \"all\" or an array of 1 to 1000 notification ids");
        return;
    }
    driver_call_t *call =
        driver_call_new(&notifications->base, socket, event, "notifications:error");
    if (call == NULL) {
        json_decref(ids);
        return;
    }
    driver_call_request(
        call, STORE_NOTIFICATION_MARK_READ,
        json_pack("{s:s,s:o}", "userId", driver_call_user_id_text(call), "ids", ids),
        on_marked_read);
}

/* ---- the room access flow -------------------------------------------------------------------- */

/* The user as VMT's notifications name them (fromUser._id, fromUser.username). */
static json_t *from_user(json_t *user)
{
    json_t *profile = driver_user_profile(user);
    const char *first = json_string_value(json_object_get(user, "firstName"));
    const char *last = json_string_value(json_object_get(user, "lastName"));
    char username[256];
    snprintf(username, sizeof(username), "%s%s%s", first != NULL ? first : "",
             first != NULL && last != NULL ? " " : "", last != NULL ? last : "");
    json_object_set(profile, "_id", json_object_get(user, "id"));
    json_object_set_new(profile, "username",
                        username[0] != '\0' ? json_string(username)
                                            : json_deep_copy(json_object_get(user, "id")));
    return profile;
}

static void on_notified(int error, const char *message, json_t *notification, void *data)
{
    driver_call_t *call = data;
    if (driver_call_abandoned(call))
        return;
    json_t *request = json_object_get(call->context, "request");
    if (error != 0) /* the request itself is stored: say so, and log the lost notification */
        log_error("notifications: %s notification for request %s not stored: %s",
                  driver_call_string(call, "notificationType"),
                  json_string_value(json_object_get(request, "id")), message);
    else
        notifications_push(call->base->channel, notification);
    driver_call_finish(call, json_pack("{s:O}", "request", request));
}

/* Stores the notification of this step of the flow for user (an id as stored: toUser keeps its
 * type), then answers {request}. */
static void notify(driver_call_t *call, json_t *user, const char *type, int with_room)
{
    char user_id[DRIVER_MAX_ID_BYTES + 1];
    if (driver_id_text(user, user_id) != 0) { /* the store gives every request and room a user */
        on_notified(STORE_EINVALID, "no user to notify", NULL, call);
        return;
    }
    json_t *request = json_object_get(call->context, "request");
    json_t *room = json_object_get(call->context, "room");
    json_t *room_id = json_object_get(room, "id");
    json_t *payload =
        json_pack("{s:O,s:O,s:s,s:O,s:o,s:O?}", "requestId", json_object_get(request, "id"),
                  "roomId", room_id, "resourceType", "room", "resourceId", room_id, "fromUser",
                  from_user(call->user), "roomName", json_object_get(room, "name"));
    if (with_room) { /* VMT adds the room to the user's store from data.room._id */
        json_t *copy = json_pack("{s:O}", "_id", room_id);
        json_object_update(copy, room);
        json_object_set_new(payload, "room", copy);
    }
    json_object_set_new(call->context, "notificationType", json_string(type));
    /* Copies: store params are read from the store's thread until done. */
    json_t *params = json_pack("{s:o,s:s,s:o}", "userId", driver_id_param(user, user_id), "type",
                               type, "payload", json_deep_copy(payload));
    json_decref(payload);
    driver_call_request(call, STORE_NOTIFICATION_ADD, params, on_notified);
}

static void on_access_requested(int error, const char *message, json_t *request, void *data)
{
    driver_call_t *call = data;
    if (driver_call_abandoned(call))
        return;
    if (error != 0) {
        driver_call_store_failed(call, STORE_ACCESS_REQUEST_ADD, error, message);
        return;
    }
    json_object_set(call->context, "request", request);
    notify(call, json_object_get(json_object_get(call->context, "room"), "ownerId"),
           "requestAccess", 0);
}

static void on_requested_room(int error, const char *message, json_t *room, void *data)
{
    driver_call_t *call = data;
    if (driver_call_abandoned(call))
        return;
    if (error == STORE_ENOTFOUND) {
        driver_call_fail(call, DRIVER_ENOTFOUND, "Room not found");
        return;
    }
    if (error != 0) {
        driver_call_store_failed(call, STORE_ROOM_GET, error, message);
        return;
    }
    char owner_id[DRIVER_MAX_ID_BYTES + 1];
    if (driver_id_text(json_object_get(room, "ownerId"), owner_id) != 0) {
        driver_call_fail(call, DRIVER_ECONFLICT, "This room has no owner to grant access");
        return;
    }
    json_object_set(call->context, "room", room);
    driver_call_request(
        call, STORE_ACCESS_REQUEST_ADD,
        json_pack("{s:s,s:o}", "roomId", driver_call_string(call, "roomIdText"), "userId",
                  driver_id_param(driver_call_user_id(call), driver_call_user_id_text(call))),
        on_access_requested);
}

static void on_request_access(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    if (!has_user(socket, event, "room:error"))
        return;
    notifications_t *notifications = data;
    notifications_socket_t *state = sioc_socket_get_user(socket);
    driver_bucket_t *bucket = state != NULL ? &state->bucket : NULL;
    char id[DRIVER_MAX_ID_BYTES + 1];
    if (bucket == NULL)
        return;
    const config_t *config = notifications->base.channel->daemon->config;
    if (!driver_bucket_take(bucket, config->limits.messages_per_second,
                            config->limits.message_burst,
                            uv_now(notifications->base.channel->daemon->loop))) {
        channel_reply_error(socket, event, "room:error", DRIVER_ERATELIMIT, "Rate limit exceeded");
        return;
    }
    if (driver_id_text(driver_id_argument(driver_payload(event), "roomId"), id) != 0) {
        channel_reply_error(socket, event, "room:error", DRIVER_EINVALID,
                            "roomId must be a string of 1 to 128 bytes or an integer");
        return;
    }
    driver_call_t *call = driver_call_new(&notifications->base, socket, event, "room:error");
    if (call == NULL)
        return;
    json_object_set_new(call->context, "roomIdText", json_string(id));
    driver_call_request(call, STORE_ROOM_GET, json_pack("{s:s}", "id", id), on_requested_room);
}

static void on_request_resolved(int error, const char *message, json_t *request, void *data)
{
    driver_call_t *call = data;
    if (driver_call_abandoned(call))
        return;
    if (error != 0) {
        driver_call_store_failed(call, STORE_ACCESS_REQUEST_RESOLVE, error, message);
        return;
    }
    json_object_set(call->context, "request", request);
    int granted = strcmp(driver_call_string(call, "status"), "granted") == 0;
    notify(call, json_object_get(request, "userId"), granted ? "grantedAccess" : "deniedAccess",
           granted);
}

/* Only the room's owner resolves its requests, and only pending ones. */
static void on_resolved_room(int error, const char *message, json_t *room, void *data)
{
    driver_call_t *call = data;
    if (driver_call_abandoned(call))
        return;
    if (error != 0) {
        driver_call_store_failed(call, STORE_ROOM_GET, error, message);
        return;
    }
    char owner_buffer[DRIVER_MAX_ID_BYTES + 1];
    const char *owner_id =
        driver_id_text(json_object_get(room, "ownerId"), owner_buffer) == 0 ? owner_buffer : NULL;
    const char *status =
        json_string_value(json_object_get(json_object_get(call->context, "request"), "status"));
    const char *verb =
        strcmp(driver_call_string(call, "status"), "granted") == 0 ? "grant" : "deny";
    char problem[128];
    if (owner_id == NULL || strcmp(owner_id, driver_call_user_id_text(call)) != 0) {
        snprintf(problem, sizeof(problem), "Only the room owner can %s access", verb);
        driver_call_fail(call, DRIVER_EFORBIDDEN, problem);
        return;
    }
    if (status == NULL || strcmp(status, "pending") != 0) {
        snprintf(problem, sizeof(problem), "This request was already %s",
                 status != NULL ? status : "resolved");
        driver_call_fail(call, DRIVER_ECONFLICT, problem);
        return;
    }
    json_object_set(call->context, "room", room);
    driver_call_request(call, STORE_ACCESS_REQUEST_RESOLVE,
                        json_pack("{s:s,s:s}", "id", driver_call_string(call, "requestIdText"),
                                  "status", driver_call_string(call, "status")),
                        on_request_resolved);
}

static void on_request_found(int error, const char *message, json_t *request, void *data)
{
    driver_call_t *call = data;
    if (driver_call_abandoned(call))
        return;
    if (error == STORE_ENOTFOUND) {
        driver_call_fail(call, DRIVER_ENOTFOUND, "Access request not found");
        return;
    }
    if (error != 0) {
        driver_call_store_failed(call, STORE_ACCESS_REQUEST_GET, error, message);
        return;
    }
    json_object_set(call->context, "request", request);
    json_t *room_id = json_object_get(request, "roomId");
    driver_call_request(call, STORE_ROOM_GET,
                        json_pack("{s:o?}", "id",
                                  json_is_integer(room_id) || json_is_string(room_id)
                                      ? json_deep_copy(room_id)
                                      : NULL),
                        on_resolved_room);
}

static void resolve_access(notifications_t *notifications, sioc_socket_t *socket,
                           const sioc_event_t *event, const char *status)
{
    char id[DRIVER_MAX_ID_BYTES + 1];
    if (driver_id_text(driver_id_argument(driver_payload(event), "requestId"), id) != 0) {
        channel_reply_error(socket, event, "room:error", DRIVER_EINVALID,
                            "requestId must be a string of 1 to 128 bytes or an integer");
        return;
    }
    driver_call_t *call = driver_call_new(&notifications->base, socket, event, "room:error");
    if (call == NULL)
        return;
    json_object_set_new(call->context, "requestIdText", json_string(id));
    json_object_set_new(call->context, "status", json_string(status));
    driver_call_request(call, STORE_ACCESS_REQUEST_GET, json_pack("{s:s}", "id", id),
                        on_request_found);
}

static void on_grant_access(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    if (!has_user(socket, event, "room:error"))
        return;
    resolve_access(data, socket, event, "granted");
}

static void on_deny_access(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    if (!has_user(socket, event, "room:error"))
        return;
    resolve_access(data, socket, event, "denied");
}

/* ---- the driver ------------------------------------------------------------------------------ */

static int is_reserved_event(const char *name)
{
    static const char *const reserved[] = {
        "connect",     "connect_error",  "disconnect", "disconnecting",
        "newListener", "removeListener", NULL};
    for (size_t i = 0; reserved[i] != NULL; i++) {
        if (strcmp(reserved[i], name) == 0)
            return 1;
    }
    return 0;
}

static int notifications_check_options(const config_t *config, const config_channel_t *channel,
                                       char *error, size_t error_size)
{
    static const char *const known[] = {"event", "replayUnread", NULL};
    if (driver_require_authentication(config, channel, "notifications", 1, error, error_size) !=
            0 ||
        driver_check_option_keys(config, channel, known, error, error_size) != 0)
        return -1;
    json_t *event = json_object_get(channel->options, "event");
    if (event != NULL && (!json_is_string(event) || json_string_length(event) == 0 ||
                          json_string_length(event) > EVENT_NAME_MAX ||
                          strlen(json_string_value(event)) != json_string_length(event) ||
                          is_reserved_event(json_string_value(event))))
        return driver_option_error(config, channel, "event", error, error_size,
                                   "expected an event name of 1 to %d bytes, not one Socket.IO "
                                   "reserves (default \"%s\")",
                                   EVENT_NAME_MAX, NOTIFICATIONS_DEFAULT_EVENT);
    json_t *replay = json_object_get(channel->options, "replayUnread");
    if (replay != NULL && !json_is_boolean(replay))
        return driver_option_error(config, channel, "replayUnread", error, error_size,
                                   "expected true or false");
    return 0;
}

static void notifications_release(driver_base_t *base)
{
    free(base); /* the base is the first member of notifications_t */
}

static int notifications_setup(channel_t *channel, char *error, size_t error_size)
{
    if (notifications_check_options(channel->daemon->config, channel->config, error, error_size) !=
        0)
        return -1;
    notifications_t *notifications = calloc(1, sizeof(*notifications));
    if (notifications == NULL) {
        snprintf(error, error_size, "channels.\"%s\": out of memory", channel->config->name);
        return -1;
    }
    driver_base_init(&notifications->base, channel, notifications_release);
    const char *event = json_string_value(json_object_get(channel->config->options, "event"));
    snprintf(notifications->event, sizeof(notifications->event), "%s",
             event != NULL ? event : NOTIFICATIONS_DEFAULT_EVENT);
    notifications->replay_unread =
        json_is_true(json_object_get(channel->config->options, "replayUnread"));
    channel->state = notifications;
    sioc_namespace_t *nsp = channel->nsp;
    sioc_namespace_on_connection(nsp, on_connection, notifications);
    sioc_namespace_on_disconnect(nsp, on_disconnect, notifications);
    driver_base_t *base = &notifications->base;
    driver_on(base, "SYNC_SOCKET", "notifications:error", on_sync_socket, notifications);
    driver_on(base, "notifications:list", "notifications:error", on_notifications_list,
              notifications);
    driver_on(base, "notifications:read", "notifications:error", on_notifications_read,
              notifications);
    driver_on(base, "room:requestAccess", "room:error", on_request_access, notifications);
    driver_on(base, "room:grantAccess", "room:error", on_grant_access, notifications);
    driver_on(base, "room:denyAccess", "room:error", on_deny_access, notifications);
    return 0;
}

static void notifications_teardown(channel_t *channel)
{
    notifications_t *notifications = channel->state;
    channel->state = NULL;
    if (notifications != NULL)
        driver_base_detach(&notifications->base);
}

const driver_t driver_notifications = {
    .name = "notifications",
    .check = notifications_check_options,
    .setup = notifications_setup,
    .teardown = notifications_teardown,
};
