/* chat: StudyConnect's live layer (seeds 002 and 003) on a channel. The events, their payloads
 * and their answers are listed in docs/drivers.md; in short:
 * - room:join / room:leave (a raw roomId or {roomId}): stored membership, then room:userJoined
 *   {roomId, user} / room:userLeft {roomId, userId} to the others in room:<roomId>.
 * - message:send {roomId, text}: stored, then message:received {id, roomId, sender, text,
 *   createdAt} to the whole room, the sender included.
 * - dm:send {recipientId, text}: stored, then dm:received to both users' rooms; dm:error
 *   {message:"Recipient not found"} for unknown users.
 * - typing:start / typing:stop {roomId}: typing:update {roomId, userId, firstName, isTyping} to
 *   the others; a start without a stop expires.
 * - room:history and dm:history (ack required): stored pages, oldest first.
 * - user:status {userId, status} when a user's first socket connects or the last one leaves.
 * Every event may ask for an ack ({ok:true, ...} or {ok:false, error:{code, message}}); without
 * one, errors come as room:error, message:error, dm:error or typing:error. The user is always
 * the socket's: ids in payloads never name the sender.
 *
 * Per-user rather than per-socket: a user with several tabs is announced online, joined or
 * typing once; presence goes offline, and a public room's stored membership ends, only when the
 * user's last socket leaves.
 *
 * Presence grace (options.presenceGraceMs): a user whose last socket drops for any reason but
 * the client's own disconnect() goes offline only if no socket of the user comes back within the
 * grace; one that does (recovered or not) was never offline, so neither offline nor online goes
 * out. With the embedded recovery store (and no cluster) the users held online are also kept in
 * its file: a restarted daemon (SIGTERM or SIGKILL) gives each of them the grace again, from its
 * start, and takes offline once those who do not come back. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

/* The library's index by a key held in each entry (src/core: no layer state), so that a user
 * record carries no 56-byte UT_hash_handle (issue 12: one record per connected user). */
#include "core/index.h"
#include "driver_util.h"
#include "log.h"
#include "presence.h"
#include "recovery_store.h"

/* 5 s: socket.io-client's first two reconnection attempts (0.5-1.5 s, then 1-3 s) and a
 * daemon restart fit in it; a user who closed the tab (a "transport close" too) shows online
 * that much longer. Tying it to the 2-minute window would keep a departed user online for
 * minutes. */
#define PRESENCE_GRACE_DEFAULT_MS 5000
#define PRESENCE_GRACE_MAX_MS 600000

#define STORE_HISTORY_LIMIT_MAX 100 /* store.h: STORE_MESSAGE_HISTORY limit is 1..100 */
#define HISTORY_LIMIT_DEFAULT 50

typedef struct leaving_s leaving_t;
typedef struct chat_user_s chat_user_t;

typedef struct chat_s {
    driver_base_t base;
    int auto_create_rooms;
    int presence_rooms;   /* options.presence "rooms": user:status only to those sharing a room */
    presence_t *presence; /* cluster-wide presence (NULL without a cluster) */
    uint32_t grace_ms;    /* options.presenceGraceMs */
    leaving_t *leaving;   /* users within their grace, by id text */
    recovery_store_t *online_rows; /* where the users held online are kept, or NULL */
    sioc__index_t users;           /* the shared user records (chat_user_t), by key */
    sioc__index_t rares;           /* the sockets' rare blocks (chat_socket_rare_t), by id */
} chat_t;

/* A user with sockets here, and what socket.data.user says for them (issue 12: one record per
 * user, not a JSON object and a data object per socket). The sockets of a user share the record
 * when their tokens (or sessions) said the same; a socket whose claims differ, or whose data
 * holds more than the user, has a record of its own, outside chat->users. */
struct chat_user_s {
    unsigned references; /* sockets holding it */
    uint8_t filled;      /* fields the store filled in (driver_profile_fields bits) */
    uint8_t shared : 1;  /* in chat->users */
    uint8_t form : 2;    /* USER_ID_STRING, USER_ID_INTEGER or USER_WHOLE */
    uint8_t nulls;       /* profile fields present as null (driver_profile_fields bits) */
    uint8_t strings;     /* profile fields whose text follows the key (bits, in their order) */
    /* {id, firstName, lastName, role, avatar}, the user of every payload, kept as what says
     * something: the id is the key (its type in form), the fields present as null are bits,
     * those with text at the record's creation are that text after the key, and the rest is
     * compact JSON text, NULL when nothing is left (the bench's tokens: id, two names and a
     * role, 60 bytes in one block where the JSON text of it all took 102 and the record 30
     * besides, and the jansson object 700; one per user with a JWT each). A user in another
     * shape (the id not first, the fields out of their order) is its whole JSON text
     * (USER_WHOLE). Made again when a call, a payload or socket.data needs it. */
    char *profile;
    char key[]; /* the id as text (the room is "user:<key>"), then the strings */
};

enum { USER_ID_STRING, USER_ID_INTEGER, USER_WHOLE };

/* A user whose last socket left, offline when the timer fires unless a socket comes back. */
struct leaving_s {
    uv_timer_t timer;
    chat_t *chat;
    char key[DRIVER_MAX_ID_BYTES + 1];
    json_t *id;
    json_t *rooms; /* presence "rooms": where the offline goes */
    UT_hash_handle hh;
};

typedef struct typing_s typing_t;

/* What few sockets need, made on first use and freed once empty: typing entries, and the study
 * rooms as the socket disconnects. Found by the socket's id in chat->rares rather than through
 * a pointer in every socket's state. */
typedef struct chat_socket_rare_s {
    typing_t *typing;   /* the rooms this socket is typing in */
    json_t *rooms_left; /* presence "rooms": its study rooms as it disconnects */
    char socket_id[];
} chat_socket_rare_t;

/* A connected socket's state, from on_connection until on_disconnect (sioc_socket_set_user).
 * 40 bytes, a 48-byte chunk (issue 12: one per socket): the channel and the socket come with
 * every callback, a typing entry keeps its own, and what is rare is a block of its own, found
 * by the socket's id. */
typedef struct chat_socket_s {
    driver_socket_t order; /* first: its events take effect in arrival order */
    chat_user_t *user;     /* a reference */
    driver_bucket_t bucket;
} chat_socket_t;

struct typing_s {
    uv_timer_t timer; /* expires a typing:start whose typing:stop never came */
    typing_t *next;
    chat_t *chat;
    sioc_socket_t *socket;
    chat_socket_t *owner; /* the socket's state */
    json_t *room_id;      /* as the client wrote it, echoed in typing:update */
    char room[DRIVER_ROOM_NAME_SIZE];
};

static const config_t *chat_config(const chat_t *chat)
{
    return chat->base.channel->daemon->config;
}

static chat_socket_t *socket_state(sioc_socket_t *socket)
{
    return sioc_socket_get_user(socket);
}

/* One token of the socket's message budget (the channel's limits): 1, or 0 when spent. */
static int take_token(chat_t *chat, chat_socket_t *state)
{
    const config_t *config = chat_config(chat);
    return driver_bucket_take(&state->bucket, config->limits.messages_per_second,
                              config->limits.message_burst,
                              uv_now(chat->base.channel->daemon->loop));
}

/* ---- users ------------------------------------------------------------------------------------
 */

static void user_room_name(const chat_user_t *user, char room[DRIVER_ROOM_NAME_SIZE])
{
    driver_room_name(room, DRIVER_ROOM_NAME_SIZE, "user:", user->key);
}

/* The id the record's key stands for (a new reference). */
static json_t *user_id_of(const chat_user_t *record)
{
    if (record->form == USER_ID_INTEGER)
        return json_integer((json_int_t)strtoll(record->key, NULL, 10));
    return json_string(record->key);
}

/* The text of profile field i kept after the key (a bit of record->strings). */
static const char *user_string(const chat_user_t *record, unsigned i)
{
    const char *text = record->key + strlen(record->key) + 1;
    for (unsigned field = 1; field < i; field++) {
        if ((record->strings & 1u << field) != 0)
            text += strlen(text) + 1;
    }
    return text;
}

/* The record's profile as a new object (NULL when out of memory): the id, the profile fields in
 * their order, then any other member, as they were. */
static json_t *user_profile(const chat_user_t *record)
{
    if (record->form == USER_WHOLE)
        return json_loads(record->profile, JSON_ALLOW_NUL, NULL);
    json_t *rest =
        record->profile != NULL ? json_loads(record->profile, JSON_ALLOW_NUL, NULL) : json_object();
    json_t *user = rest != NULL ? json_pack("{s:o}", "id", user_id_of(record)) : NULL;
    int failed = user == NULL;
    for (unsigned i = 1; !failed && i < DRIVER_PROFILE_FIELDS; i++) {
        const char *field = driver_profile_fields[i];
        if ((record->strings & 1u << i) != 0) {
            failed = json_object_set_new(user, field, json_string(user_string(record, i))) != 0;
            continue;
        }
        json_t *value = (record->nulls & 1u << i) != 0 ? json_null() : json_object_get(rest, field);
        failed = value != NULL && json_object_set(user, field, value) != 0;
    }
    const char *key;
    json_t *value;
    json_object_foreach(rest, key, value)
    {
        if (!failed && json_object_get(user, key) == NULL)
            failed = json_object_set(user, key, value) != 0;
    }
    json_decref(rest);
    if (failed) {
        json_decref(user);
        return NULL;
    }
    return user;
}

/* The index of field in driver_profile_fields, or DRIVER_PROFILE_FIELDS. */
static unsigned profile_field(const char *field)
{
    unsigned i = 0;
    while (i < DRIVER_PROFILE_FIELDS && strcmp(driver_profile_fields[i], field) != 0)
        i++;
    return i;
}

/* Whether profile's id, as the form says, is the record's key. */
static int id_is_key(const char *key, json_t *id, uint8_t *form)
{
    char text[DRIVER_MAX_ID_BYTES + 1];
    if (driver_id_text(id, text) != 0 || strcmp(text, key) != 0)
        return 0;
    *form = json_is_integer(id) ? USER_ID_INTEGER : USER_ID_STRING;
    return 1;
}

/* A profile in the parts a record keeps (see chat_user_s). */
typedef struct profile_parts_s {
    json_t *rest;    /* the members kept as JSON text (a new object) */
    uint8_t nulls;   /* the profile fields present as null */
    uint8_t strings; /* with strings_allowed: those whose text can follow the key */
    uint8_t form;
    size_t string_bytes; /* their texts with their NULs */
} profile_parts_t;

/* What user_profile makes profile again from, for the user with key: the members after the id,
 * the profile fields in their order and first. 0, or -1 when the profile has another shape. */
static int profile_split(const char *key, json_t *profile, int strings_allowed,
                         profile_parts_t *parts)
{
    void *member = json_object_iter(profile);
    if (member == NULL || strcmp(json_object_iter_key(member), "id") != 0 ||
        !id_is_key(key, json_object_iter_value(member), &parts->form))
        return -1;
    unsigned next = 1; /* the profile fields come first, in driver_profile_fields' order */
    while ((member = json_object_iter_next(profile, member)) != NULL) {
        const char *name = json_object_iter_key(member);
        json_t *value = json_object_iter_value(member);
        unsigned field = profile_field(name);
        if (field < DRIVER_PROFILE_FIELDS && (field < next || next == DRIVER_PROFILE_FIELDS + 1))
            return -1;
        next = field < DRIVER_PROFILE_FIELDS ? field + 1 : DRIVER_PROFILE_FIELDS + 1;
        size_t length = json_string_length(value);
        if (field < DRIVER_PROFILE_FIELDS && json_is_null(value)) {
            parts->nulls |= (uint8_t)(1u << field);
        } else if (field < DRIVER_PROFILE_FIELDS && strings_allowed && json_is_string(value) &&
                   strlen(json_string_value(value)) == length) {
            parts->strings |= (uint8_t)(1u << field);
            parts->string_bytes += length + 1;
        } else if (json_object_set(parts->rest, name, value) != 0) {
            return -1;
        }
    }
    return 0;
}

/* profile in parts (strings_allowed: texts may follow the key) and the text of its rest (NULL:
 * none). 0, or -1 when out of memory. */
static int profile_parts(const char *key, json_t *profile, int strings_allowed,
                         profile_parts_t *parts, char **text)
{
    memset(parts, 0, sizeof(*parts));
    if ((parts->rest = json_object()) == NULL)
        return -1;
    json_t *kept = parts->rest;
    if (profile_split(key, profile, strings_allowed, parts) != 0) {
        json_decref(parts->rest);
        memset(parts, 0, sizeof(*parts));
        parts->form = USER_WHOLE;
        kept = profile;
    }
    int needed = parts->form == USER_WHOLE || json_object_size(parts->rest) > 0;
    *text = needed ? json_dumps(kept, JSON_COMPACT) : NULL;
    json_decref(parts->rest);
    parts->rest = NULL;
    return needed && *text == NULL ? -1 : 0;
}

/* A later profile (the store filled fields in): its texts go to the JSON text, as the record
 * cannot grow. */
static int user_set_profile(chat_user_t *record, json_t *profile)
{
    profile_parts_t parts;
    char *text;
    if (profile_parts(record->key, profile, 0, &parts, &text) != 0)
        return -1;
    free(record->profile);
    record->profile = text;
    record->nulls = parts.nulls;
    record->strings = 0;
    record->form = parts.form;
    return 0;
}

/* Whether a socket whose claims gave user (borrowed) is the record's user: the same fields,
 * those the store filled in matching a claim that had none. */
static int user_matches(const chat_user_t *record, json_t *user)
{
    json_t *profile = user_profile(record);
    int same = profile != NULL && json_object_size(user) == json_object_size(profile);
    for (unsigned i = 0; same && i < DRIVER_PROFILE_FIELDS; i++) {
        json_t *mine = json_object_get(user, driver_profile_fields[i]);
        json_t *theirs = json_object_get(profile, driver_profile_fields[i]);
        if ((record->filled & 1u << i) != 0 && json_is_null(mine))
            continue;
        same = mine == theirs || (mine != NULL && theirs != NULL && json_equal(mine, theirs));
    }
    json_decref(profile);
    return same;
}

static chat_user_t *user_new(chat_t *chat, const char *key, json_t *profile, int shared)
{
    profile_parts_t parts;
    char *text;
    if (profile_parts(key, profile, 1, &parts, &text) != 0)
        return NULL;
    size_t size = strlen(key) + 1;
    chat_user_t *record = calloc(1, sizeof(*record) + size + parts.string_bytes);
    if (record == NULL) {
        free(text);
        return NULL;
    }
    memcpy(record->key, key, size);
    char *next = record->key + size;
    for (unsigned i = 1; i < DRIVER_PROFILE_FIELDS; i++) {
        if ((parts.strings & 1u << i) == 0)
            continue;
        json_t *value = json_object_get(profile, driver_profile_fields[i]);
        memcpy(next, json_string_value(value), json_string_length(value) + 1);
        next += json_string_length(value) + 1;
    }
    record->profile = text;
    record->nulls = parts.nulls;
    record->strings = parts.strings;
    record->form = parts.form;
    record->references = 1;
    record->shared = shared && sioc__index_add(&chat->users, record) == 0;
    return record;
}

/* The record of a socket whose user is profile (borrowed); shareable: the socket's data held
 * nothing else (it was taken). NULL when out of memory. */
static chat_user_t *user_acquire(chat_t *chat, const char *key, json_t *profile, int shareable)
{
    chat_user_t *record = NULL;
    if (shareable)
        record = sioc__index_find(&chat->users, key);
    if (record != NULL && user_matches(record, profile)) {
        record->references++;
        return record;
    }
    return user_new(chat, key, profile, shareable && record == NULL);
}

static void user_release(chat_t *chat, chat_user_t *record)
{
    if (record == NULL || --record->references > 0)
        return;
    if (record->shared)
        sioc__index_remove(&chat->users, record);
    free(record->profile);
    free(record);
}

/* The driver's socket_user: call->user of every call (driver_call_new), a new object. {id}
 * alone, made from the key: most calls need no more, and each connection's call lives through
 * two store requests while thousands of others arrive (a whole profile was 700 bytes of jansson
 * objects per call in flight). Those that send the user take it with call_take_profile. */
static json_t *socket_user(sioc_socket_t *socket)
{
    chat_socket_t *state = socket_state(socket);
    if (state == NULL)
        return json_incref(channel_user(socket));
    return json_pack("{s:o}", "id", user_id_of(state->user));
}

/* call->user becomes the socket's whole profile as it is now (the event's sender or joiner,
 * as payloads show it even if the socket is gone by the answer). 0, or -1 when out of memory:
 * the call was answered "unavailable" and freed. */
static int call_take_profile(driver_call_t *call, const chat_socket_t *state)
{
    json_t *profile = user_profile(state->user);
    if (profile == NULL) {
        driver_call_fail(call, DRIVER_EUNAVAILABLE, "Out of memory");
        return -1;
    }
    json_decref(call->user);
    call->user = profile;
    return 0;
}

/* socket.data for the library when something reads it (fetchSockets, a recovery session, the
 * admin UI): {"user": ...}, made from the record each time. */
static json_t *socket_data(sioc_socket_t *socket, void *data)
{
    chat_socket_t *state = socket_state(socket);
    json_t *user = state != NULL ? user_profile(state->user) : NULL;
    return user != NULL ? json_pack("{s:o}", "user", user) : NULL;
}

/* The socket's user as the middleware (or a recovered session) put it in socket.data: a new
 * reference, or NULL. Data holding the user alone is taken (socket_data makes it again);
 * with more in it (a session id, a program's keys), it stays as it is. */
static json_t *take_user(sioc_socket_t *socket, int *taken)
{
    json_t *user = json_incref(channel_user(socket));
    *taken = user != NULL && json_object_size(sioc_socket_data(socket)) == 1;
    if (*taken)
        json_decref(sioc_socket_take_data(socket));
    return user;
}

/* ---- rooms and users
 * ----------------------------------------------------------------------------- */

/* The roomId of the event (raw, as seed 002 sends it, or {roomId}) as text and as its
 * "room:<id>" name; NULL, the client told through error_event, when it is no id. */
static json_t *room_argument(sioc_socket_t *socket, const sioc_event_t *event,
                             const char *error_event, char id[DRIVER_MAX_ID_BYTES + 1],
                             char room[DRIVER_ROOM_NAME_SIZE])
{
    json_t *value = driver_id_argument(driver_payload(event), "roomId");
    if (driver_id_text(value, id) != 0) {
        channel_reply_error(socket, event, error_event, DRIVER_EINVALID,
                            "roomId must be a string of 1 to 128 bytes or an integer");
        return NULL;
    }
    driver_room_name(room, DRIVER_ROOM_NAME_SIZE, "room:", id);
    return value;
}

/* Sockets of the user (in user_room) other than the one with except_id. */
static size_t other_user_sockets(sioc_namespace_t *nsp, const char *user_room,
                                 sioc_socket_t *except)
{
    size_t size = sioc_namespace_room_size(nsp, user_room);
    if (except != NULL && size > 0 && sioc_socket_in_room(except, user_room))
        size--;
    return size;
}

typedef struct room_search_s {
    const char *room;
    const char *except_id;
    int found;
} room_search_t;

static void on_user_sockets(int error, json_t *sockets, void *data)
{
    room_search_t *search = data;
    size_t index;
    json_t *each;
    json_array_foreach(sockets, index, each)
    {
        const char *id = json_string_value(json_object_get(each, "id"));
        if (error != 0 || id == NULL || strcmp(id, search->except_id) == 0)
            continue;
        size_t room_index;
        json_t *room;
        json_array_foreach(json_object_get(each, "rooms"), room_index, room)
        {
            if (json_is_string(room) && strcmp(json_string_value(room), search->room) == 0)
                search->found = 1;
        }
    }
}

/* Whether another socket of the user on this server is in room. A local fetch (also with a
 * cluster adapter) answers before it returns. */
static int user_elsewhere_in_room(sioc_namespace_t *nsp, const char *user_room, const char *room,
                                  const char *except_id)
{
    room_search_t search = {room, except_id, 0};
    sioc_broadcast_t broadcast;
    sioc_broadcast_init(&broadcast, nsp);
    sioc_broadcast_to(&broadcast, user_room);
    broadcast.flags |= SIOC_BROADCAST_LOCAL;
    sioc_broadcast_fetch_sockets(&broadcast, on_user_sockets, &search);
    return search.found;
}

static void user_room_of(const driver_call_t *call, char room[DRIVER_ROOM_NAME_SIZE])
{
    driver_room_name(room, DRIVER_ROOM_NAME_SIZE, "user:", driver_call_user_id_text(call));
}

/* ---- typing ---------------------------------------------------------------------------------- */

static chat_socket_rare_t *rare_find(chat_t *chat, sioc_socket_t *socket)
{
    return sioc__index_find(&chat->rares, sioc_socket_id(socket));
}

/* The socket's rare block, made if need be; NULL when out of memory. */
static chat_socket_rare_t *socket_rare(chat_t *chat, sioc_socket_t *socket)
{
    chat_socket_rare_t *rare = rare_find(chat, socket);
    if (rare != NULL)
        return rare;
    size_t size = strlen(sioc_socket_id(socket)) + 1;
    rare = calloc(1, sizeof(*rare) + size);
    if (rare == NULL)
        return NULL;
    memcpy(rare->socket_id, sioc_socket_id(socket), size);
    if (sioc__index_add(&chat->rares, rare) != 0) {
        free(rare);
        return NULL;
    }
    return rare;
}

/* Frees the rare block (may be NULL) once it holds nothing. */
static void rare_trim(chat_t *chat, chat_socket_rare_t *rare)
{
    if (rare != NULL && rare->typing == NULL && rare->rooms_left == NULL) {
        sioc__index_remove(&chat->rares, rare);
        free(rare);
    }
}

/* Where the entry for room is (or would be linked) in the socket's list. */
static typing_t **typing_link(chat_socket_rare_t *rare, const char *room)
{
    typing_t **link = &rare->typing;
    while (*link != NULL && strcmp((*link)->room, room) != 0)
        link = &(*link)->next;
    return link;
}

static void typing_announce(typing_t *typing, int is_typing)
{
    json_t *user = user_profile(typing->owner->user);
    driver_emit_to_room(typing->chat->base.channel->nsp, typing->room,
                        sioc_socket_id(typing->socket), "typing:update",
                        json_pack("{s:O,s:O?,s:O?,s:b}", "roomId", typing->room_id, "userId",
                                  json_object_get(user, "id"), "firstName",
                                  json_object_get(user, "firstName"), "isTyping", is_typing));
    json_decref(user);
}

static void typing_closed(uv_handle_t *handle)
{
    typing_t *typing = handle->data;
    json_decref(typing->room_id);
    free(typing);
}

/* Unlinks the entry at link (in rare's list); with announce, the others learn the user stopped
 * typing. */
static void typing_end(chat_socket_rare_t *rare, typing_t **link, int announce)
{
    typing_t *typing = *link;
    *link = typing->next;
    if (announce)
        typing_announce(typing, 0);
    uv_close((uv_handle_t *)&typing->timer, typing_closed);
    rare_trim(typing->chat, rare); /* link may point into the block: not used after this */
}

static void typing_expired(uv_timer_t *timer)
{
    typing_t *typing = timer->data;
    chat_socket_rare_t *rare = rare_find(typing->chat, typing->socket);
    typing_end(rare, typing_link(rare, typing->room), 1);
}

/* A start refreshes the expiry; only a change of state is announced, so a client sending
 * typing:start on every key press costs the room nothing. */
static int typing_start(chat_t *chat, sioc_socket_t *socket, chat_socket_t *state, const char *room,
                        json_t *room_id)
{
    const config_t *config = chat_config(chat);
    chat_socket_rare_t *rare = socket_rare(chat, socket);
    if (rare == NULL)
        return SIOC_ENOMEM;
    typing_t **link = typing_link(rare, room);
    if (*link != NULL)
        return uv_timer_start(&(*link)->timer, typing_expired, config->limits.typing_timeout_ms, 0);
    typing_t *typing = calloc(1, sizeof(*typing));
    if (typing == NULL) {
        rare_trim(chat, rare);
        return SIOC_ENOMEM;
    }
    uv_timer_init(chat->base.channel->daemon->loop, &typing->timer);
    typing->timer.data = typing;
    typing->chat = chat;
    typing->socket = socket;
    typing->owner = state;
    typing->room_id = json_incref(room_id);
    snprintf(typing->room, sizeof(typing->room), "%s", room);
    *link = typing;
    uv_timer_start(&typing->timer, typing_expired, config->limits.typing_timeout_ms, 0);
    typing_announce(typing, 1);
    return 0;
}

static void typing_stop(chat_t *chat, sioc_socket_t *socket, const char *room)
{
    chat_socket_rare_t *rare = rare_find(chat, socket);
    typing_t **link = rare != NULL ? typing_link(rare, room) : NULL;
    if (link != NULL && *link != NULL)
        typing_end(rare, link, 1);
}

static void on_typing(chat_t *chat, sioc_socket_t *socket, const sioc_event_t *event, int is_typing)
{
    chat_socket_t *state = socket_state(socket);
    char id[DRIVER_MAX_ID_BYTES + 1];
    char room[DRIVER_ROOM_NAME_SIZE];
    json_t *room_id = room_argument(socket, event, "typing:error", id, room);
    if (state == NULL || room_id == NULL)
        return;
    if (!sioc_socket_in_room(socket, room)) {
        channel_reply_error(socket, event, "typing:error", DRIVER_EFORBIDDEN,
                            "Not a member of this room");
        return;
    }
    if (!is_typing) {
        typing_stop(chat, socket, room);
    } else if (typing_start(chat, socket, state, room, room_id) != 0) {
        channel_reply_error(socket, event, "typing:error", DRIVER_EUNAVAILABLE, "Out of memory");
        return;
    }
    channel_reply_ok(socket, event, NULL);
}

static void on_typing_start(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    on_typing(data, socket, event, 1);
}

static void on_typing_stop(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    on_typing(data, socket, event, 0);
}

/* ---- presence -------------------------------------------------------------------------------- */

static void on_presence_stored(int error, const char *message, json_t *result, void *data)
{
    driver_call_t *call = data;
    if (driver_call_abandoned(call))
        return;
    const char *status = driver_call_string(call, "status");
    if (error != 0) {
        log_error("chat: presence %s of user %s not stored: %s", status,
                  driver_call_user_id_text(call), message);
        driver_call_free(call);
        return;
    }
    json_t *payload =
        json_pack("{s:O?,s:s}", "userId", driver_call_user_id(call), "status", status);
    json_t *rooms = json_object_get(call->context, "rooms");
    if (rooms == NULL) {
        /* socket.broadcast as in seed 002: everyone but the socket that came or went. */
        driver_emit_to_room(call->nsp, NULL, call->socket_id, "user:status", payload);
        driver_call_free(call);
        return;
    }
    /* presence "rooms": those in the user's study rooms (each socket once), if any. */
    sioc_broadcast_t broadcast;
    sioc_broadcast_init(&broadcast, call->nsp);
    size_t index, count = 0;
    json_t *room;
    json_array_foreach(rooms, index, room)
    {
        if (count < SIOC_BROADCAST_MAX_ROOMS &&
            sioc_broadcast_to(&broadcast, json_string_value(room)) == 0)
            count++;
    }
    sioc_broadcast_except(&broadcast, call->socket_id);
    if (count > 0)
        sioc_broadcast_emit(&broadcast, "user:status", json_pack("[o]", payload));
    else
        json_decref(payload);
    driver_call_free(call);
}

/* The study rooms ("room:...") of a socket, as a new array. */
static json_t *study_rooms(sioc_socket_t *socket)
{
    json_t *all = sioc_socket_rooms(socket);
    json_t *rooms = json_array();
    size_t index;
    json_t *room;
    json_array_foreach(all, index, room)
    {
        const char *name = json_string_value(room);
        if (name != NULL && strncmp(name, "room:", 5) == 0)
            json_array_append(rooms, room);
    }
    json_decref(all);
    return rooms;
}

/* rooms (taken; NULL with presence "all"): where presence "rooms" announces the status. */
static void store_presence(driver_call_t *call, const char *status, json_t *rooms)
{
    if (rooms != NULL)
        json_object_set_new(call->context, "rooms", rooms);
    json_object_set_new(call->context, "status", json_string(status));
    driver_call_request(
        call, STORE_PRESENCE_SET,
        json_pack("{s:s,s:s}", "userId", driver_call_user_id_text(call), "status", status),
        on_presence_stored);
}

/* The socket's record takes the fields its claims lacked from the stored user. Fields filled
 * before are taken again: a user's later socket sees them as they are now, as its own object
 * would have. */
static void complete_user(driver_call_t *call, json_t *stored)
{
    sioc_socket_t *socket = driver_call_socket(call);
    chat_socket_t *state = socket != NULL ? socket_state(socket) : NULL;
    if (state != NULL && strcmp(state->user->key, driver_call_user_id_text(call)) != 0)
        state = NULL; /* another user's socket has the id now */
    json_t *profile = state != NULL ? user_profile(state->user) : NULL;
    unsigned filled = driver_user_complete_fields(profile, stored, state ? state->user->filled : 0);
    if (filled != 0 && user_set_profile(state->user, profile) == 0)
        state->user->filled |= filled;
    json_decref(profile);
}

static void on_user_upserted(int error, const char *message, json_t *result, void *data)
{
    driver_call_t *call = data;
    if (driver_call_abandoned(call))
        return;
    if (error != 0) {
        log_error("chat: user %s not stored: %s", driver_call_user_id_text(call), message);
        driver_call_free(call);
        return;
    }
    complete_user(call, result); /* senders show the names */
    if (json_is_true(json_object_get(call->context, "first"))) {
        store_presence(call, "online", json_incref(json_object_get(call->context, "rooms")));
    } else {
        driver_call_free(call);
    }
}

/* A user who was only on a node that went away: offline (presence "rooms": stored only, the
 * rooms it was in are not known here). */
static void on_user_gone(json_t *user_id, void *data)
{
    chat_t *chat = data;
    driver_call_t *call = driver_call_new_for_user(&chat->base, chat->base.channel->nsp, user_id);
    if (call != NULL)
        store_presence(call, "offline", chat->presence_rooms ? json_array() : NULL);
}

/* ---- presence grace ---------------------------------------------------------------------- */

static void leaving_closed(uv_handle_t *handle)
{
    leaving_t *leaving = handle->data;
    json_decref(leaving->id);
    json_decref(leaving->rooms);
    free(leaving);
}

static void leaving_end(chat_t *chat, leaving_t *leaving)
{
    HASH_DEL(chat->leaving, leaving);
    uv_close((uv_handle_t *)&leaving->timer, leaving_closed);
}

/* The user is online (held by a row kept for the next start), or no longer (row deleted). */
static void keep_online_row(chat_t *chat, const char *key, json_t *id, json_t *rooms)
{
    if (chat->online_rows != NULL)
        recovery_store_presence_set(chat->online_rows, sioc_namespace_name(chat->base.channel->nsp),
                                    key, id, rooms);
}

static void announce_offline(chat_t *chat, json_t *id, const char *key, json_t *rooms)
{
    keep_online_row(chat, key, id, NULL);
    driver_call_t *call = driver_call_new_for_user(&chat->base, chat->base.channel->nsp, id);
    if (call != NULL)
        store_presence(call, "offline",
                       chat->presence_rooms ? (rooms ? json_incref(rooms) : json_array()) : NULL);
}

static void on_grace_over(uv_timer_t *timer)
{
    leaving_t *leaving = timer->data;
    chat_t *chat = leaving->chat;
    char user_room[DRIVER_ROOM_NAME_SIZE];
    driver_room_name(user_room, sizeof(user_room), "user:", leaving->key);
    /* A socket that came back ended the grace; this is only a safety net. */
    if (other_user_sockets(chat->base.channel->nsp, user_room, NULL) == 0 &&
        (chat->presence == NULL || presence_down(chat->presence, leaving->id)))
        announce_offline(chat, leaving->id, leaving->key, leaving->rooms);
    leaving_end(chat, leaving);
}

/* Starts the grace of a user (rooms taken, NULL = none known). */
static void grace_start(chat_t *chat, const char *key, json_t *id, json_t *rooms)
{
    leaving_t *leaving = NULL;
    HASH_FIND_STR(chat->leaving, key, leaving);
    if (leaving != NULL)
        leaving_end(chat, leaving);
    leaving = calloc(1, sizeof(*leaving));
    if (leaving == NULL) {
        announce_offline(chat, id, key, rooms);
        json_decref(rooms);
        return;
    }
    leaving->chat = chat;
    snprintf(leaving->key, sizeof(leaving->key), "%s", key);
    leaving->id = json_incref(id);
    leaving->rooms = rooms != NULL ? rooms : json_array();
    uv_timer_init(chat->base.channel->daemon->loop, &leaving->timer);
    leaving->timer.data = leaving;
    uv_timer_start(&leaving->timer, on_grace_over, chat->grace_ms, 0);
    HASH_ADD_STR(chat->leaving, key, leaving);
    /* The rooms as the user left them: a restart within the grace announces there. */
    keep_online_row(chat, key, id, leaving->rooms);
}

/* A socket of the user came: 1 if the user was within its grace (still online: nothing to
 * announce), which ends. */
static int grace_cancel(chat_t *chat, const char *key)
{
    leaving_t *leaving = NULL;
    HASH_FIND_STR(chat->leaving, key, leaving);
    if (leaving == NULL)
        return 0;
    leaving_end(chat, leaving);
    return 1;
}

/* The users the previous run held online (embedded recovery store): each gets the grace from
 * this start; with none, they go offline now. */
static void grace_resume(chat_t *chat)
{
    json_t *rows = recovery_store_presence_take(chat->online_rows,
                                                sioc_namespace_name(chat->base.channel->nsp));
    size_t index;
    json_t *row;
    json_array_foreach(rows, index, row)
    {
        char key[DRIVER_MAX_ID_BYTES + 1];
        json_t *id = json_object_get(row, "id");
        json_t *rooms = json_object_get(row, "rooms");
        if (driver_id_text(id, key) != 0)
            continue;
        if (chat->grace_ms > 0)
            grace_start(chat, key, id, json_incref(rooms));
        else
            announce_offline(chat, id, key, rooms);
    }
    json_decref(rows);
}

static void grace_free_all(chat_t *chat)
{
    leaving_t *leaving, *next;
    HASH_ITER(hh, chat->leaving, leaving, next)
    {
        leaving_end(chat, leaving); /* no announcement: the next start resumes from the rows */
    }
}

/* The profile is refreshed on every connection; presence only for the user's first socket. */
static void announce_connection(chat_t *chat, sioc_socket_t *socket, int first)
{
    driver_call_t *call = driver_call_new(&chat->base, socket, NULL, NULL);
    if (call == NULL)
        return;
    json_object_set_new(call->context, "first", json_boolean(first));
    if (chat->presence_rooms) /* a recovered socket is back in its rooms; a new one in none */
        json_object_set_new(call->context, "rooms", study_rooms(socket));
    json_t *profile = user_profile(socket_state(socket)->user);
    json_t *params = profile != NULL ? driver_user_profile(profile) : NULL;
    json_decref(profile);
    if (params == NULL) {
        log_error("chat: user %s not stored: out of memory", driver_call_user_id_text(call));
        driver_call_free(call);
        return;
    }
    driver_call_request(call, STORE_USER_UPSERT, params, on_user_upserted);
}

static void chat_socket_free(chat_t *chat, sioc_socket_t *socket, chat_socket_t *state)
{
    chat_socket_rare_t *rare = rare_find(chat, socket);
    if (rare != NULL) {
        json_decref(rare->rooms_left);
        rare->rooms_left = NULL; /* the last typing entry's end frees the block */
        while (rare != NULL && rare->typing != NULL) {
            typing_end(rare, &rare->typing, 1);
            rare = rare_find(chat, socket);
        }
        rare_trim(chat, rare);
    }
    driver_socket_cleanup(&state->order);
    user_release(chat, state->user);
    free(state);
}

/* The socket's state with its user record (the user taken from socket.data when it holds
 * nothing else) and *user_out, the user (a new reference); or NULL with the data left as it
 * was. */
static chat_socket_t *chat_socket_new(chat_t *chat, sioc_socket_t *socket,
                                      char user_room[DRIVER_ROOM_NAME_SIZE], json_t **user_out)
{
    char user_id[CHANNEL_ID_SIZE];
    json_t *data = json_incref(sioc_socket_data(socket));
    int taken;
    json_t *user = take_user(socket, &taken);
    *user_out = NULL;
    chat_socket_t *state = calloc(1, sizeof(*state));
    if (state == NULL || user == NULL || channel_id_text_of(user, user_id) != 0 ||
        driver_room_name(user_room, DRIVER_ROOM_NAME_SIZE, "user:", user_id) != 0 ||
        (state->user = user_acquire(chat, user_id, user, taken)) == NULL) {
        /* Left as it was: the socket is disconnected with its data. */
        if (taken)
            sioc_socket_set_data(socket, json_incref(data));
        free(state);
        state = NULL;
    } else {
        *user_out = json_incref(user);
    }
    json_decref(user);
    json_decref(data);
    return state;
}

static void on_connection(sioc_socket_t *socket, void *data)
{
    chat_t *chat = data;
    char user_room[DRIVER_ROOM_NAME_SIZE];
    json_t *user;
    chat_socket_t *state = chat_socket_new(chat, socket, user_room, &user);
    if (state == NULL) {
        log_warn("chat %s: socket %s has no usable user (or out of memory): disconnected",
                 sioc_namespace_name(sioc_socket_namespace(socket)), sioc_socket_id(socket));
        sioc_socket_disconnect(socket, 0);
        return;
    }
    const char *user_id = state->user->key;
    /* A recovered socket is back in its rooms already: it does not count as another tab. */
    int first = other_user_sockets(chat->base.channel->nsp, user_room, socket) == 0;
    if (first && grace_cancel(chat, user_id))
        first = 0;                            /* back within the grace: never went offline */
    else if (first && chat->presence != NULL) /* ... and the first in the cluster */
        first = presence_up(chat->presence, json_object_get(user, "id"));
    if (first && chat->online_rows != NULL) {
        json_t *no_rooms = json_array(); /* none yet: a new socket is in no study room */
        keep_online_row(chat, user_id, json_object_get(user, "id"), no_rooms);
        json_decref(no_rooms);
    }
    driver_socket_init(&state->order);
    const config_t *config = chat_config(chat);
    driver_bucket_init(&state->bucket, config->limits.message_burst,
                       uv_now(chat->base.channel->daemon->loop));
    sioc_socket_set_user(socket, state);
    sioc_socket_join(socket, user_room); /* direct messages reach every tab */
    announce_connection(chat, socket, first);
    json_decref(user);
}

/* The rooms are left before on_disconnect: presence "rooms" notes them while they are there. */
static void on_disconnecting(sioc_socket_t *socket, const char *reason, void *data)
{
    chat_t *chat = data;
    chat_socket_t *state = socket_state(socket);
    if (state == NULL || !chat->presence_rooms)
        return;
    chat_socket_rare_t *rare = socket_rare(chat, socket);
    if (rare == NULL)
        return; /* out of memory: the offline goes to no room */
    if (rare->rooms_left == NULL)
        rare->rooms_left = study_rooms(socket);
}

/* Whether the user's last socket leaving for reason waits for the grace: not when the client
 * said goodbye (disconnect()), nor at a shutdown that no row will outlive. */
static int uses_grace(const chat_t *chat, const char *reason)
{
    if (chat->grace_ms == 0 || strcmp(reason, "client namespace disconnect") == 0)
        return 0;
    return strcmp(reason, "server shutting down") != 0 || chat->online_rows != NULL;
}

static void on_disconnect(sioc_socket_t *socket, const char *reason, void *data)
{
    chat_t *chat = data;
    chat_socket_t *state = socket_state(socket);
    if (state == NULL)
        return;
    char user_room[DRIVER_ROOM_NAME_SIZE];
    user_room_name(state->user, user_room);
    int last = other_user_sockets(chat->base.channel->nsp, user_room, socket) == 0;
    json_t *profile = user_profile(state->user);
    json_t *id = json_object_get(profile, "id");
    chat_socket_rare_t *rare = rare_find(chat, socket);
    json_t *rooms_left = rare != NULL ? rare->rooms_left : NULL;
    char key[DRIVER_MAX_ID_BYTES + 1];
    if (last && uses_grace(chat, reason) && driver_id_text(id, key) == 0) {
        grace_start(chat, key, id, json_incref(rooms_left));
    } else if (last && (chat->presence == NULL || presence_down(chat->presence, id))) {
        /* The last socket here, and (with a cluster) on every node. */
        if (driver_id_text(id, key) == 0)
            keep_online_row(chat, key, id, NULL);
        /* Made while the state is there: its user is the call's (socket_user). */
        driver_call_t *call = driver_call_new(&chat->base, socket, NULL, NULL);
        if (call != NULL) {
            call->order_serial = 0; /* nothing of this socket waits for it */
            store_presence(call, "offline", json_incref(rooms_left));
        }
    }
    json_decref(profile);
    sioc_socket_set_user(socket, NULL);
    chat_socket_free(chat, socket, state); /* stops its typing: the others see isTyping false */
}

/* ---- access to a room (shared by room:join and room:history) ------------------------------- */

/* A call about the room the client named: context roomId (as sent) and roomIdText. */
static driver_call_t *room_call(chat_t *chat, sioc_socket_t *socket, const sioc_event_t *event,
                                const char *error_event, json_t *room_id, const char *id)
{
    driver_call_t *call = driver_call_new(&chat->base, socket, event, error_event);
    if (call == NULL)
        return NULL;
    json_object_set(call->context, "roomId", room_id);
    json_object_set_new(call->context, "roomIdText", json_string(id));
    return call;
}

static void request_room(driver_call_t *call);

static void on_membership_checked(int error, const char *message, json_t *result, void *data)
{
    driver_call_t *call = data;
    if (driver_call_abandoned(call))
        return;
    if (error != 0)
        driver_call_store_failed(call, STORE_ROOM_IS_MEMBER, error, message);
    else if (!json_is_true(result))
        driver_call_fail(call, DRIVER_EFORBIDDEN, "Not a member of this private room");
    else
        call->next(call);
}

/* Continues with call->next when the user may enter the room (context "room"). */
static void check_room_access(driver_call_t *call, json_t *room)
{
    json_object_set(call->context, "room", room);
    if (!json_is_true(json_object_get(room, "isPrivate"))) {
        call->next(call);
        return;
    }
    driver_call_request(call, STORE_ROOM_IS_MEMBER,
                        json_pack("{s:s,s:s}", "roomId", driver_call_string(call, "roomIdText"),
                                  "userId", driver_call_user_id_text(call)),
                        on_membership_checked);
}

static void on_room_created(int error, const char *message, json_t *room, void *data)
{
    driver_call_t *call = data;
    if (driver_call_abandoned(call))
        return;
    if (error == 0) {
        log_info("chat: room %s created by user %s", driver_call_string(call, "roomIdText"),
                 driver_call_user_id_text(call));
        check_room_access(call, room);
        return;
    }
    /* Most likely another socket created it meanwhile: look again, once. That race is normal
     * (a storm of joins to a new room hits it once per socket): a debug line, not a warning. */
    log_write(error == STORE_ECONFLICT ? LOG_DEBUG : LOG_WARN,
              "chat: room %s not created (%s): looking it up again",
              driver_call_string(call, "roomIdText"), message);
    json_object_set_new(call->context, "autoCreate", json_false());
    request_room(call);
}

static void on_room_found(int error, const char *message, json_t *room, void *data)
{
    driver_call_t *call = data;
    if (driver_call_abandoned(call))
        return;
    const char *id = driver_call_string(call, "roomIdText");
    if (error == STORE_ENOTFOUND && json_is_true(json_object_get(call->context, "autoCreate")))
        driver_call_request(call, STORE_ROOM_CREATE,
                            json_pack("{s:o,s:s,s:b}", "id",
                                      driver_id_param(json_object_get(call->context, "roomId"), id),
                                      "name", id, "isPrivate", 0),
                            on_room_created);
    else if (error == STORE_ENOTFOUND)
        driver_call_fail(call, DRIVER_ENOTFOUND, "Room not found");
    else if (error != 0)
        driver_call_store_failed(call, STORE_ROOM_GET, error, message);
    else
        check_room_access(call, room);
}

static void request_room(driver_call_t *call)
{
    driver_call_request(call, STORE_ROOM_GET,
                        json_pack("{s:s}", "id", driver_call_string(call, "roomIdText")),
                        on_room_found);
}

/* ---- room:join ------------------------------------------------------------------------------- */

static void join_complete(driver_call_t *call)
{
    sioc_socket_t *socket = driver_call_socket(call);
    char room[DRIVER_ROOM_NAME_SIZE];
    char user_room[DRIVER_ROOM_NAME_SIZE];
    driver_room_name(room, sizeof(room), "room:", driver_call_string(call, "roomIdText"));
    user_room_of(call, user_room);
    if (socket == NULL) {
        driver_call_free(call);
        return;
    }
    json_t *room_id = json_object_get(call->context, "roomId");
    int announce = !sioc_socket_in_room(socket, room) &&
                   !user_elsewhere_in_room(call->nsp, user_room, room, call->socket_id);
    if (sioc_socket_join(socket, room) != 0) {
        driver_call_fail(call, DRIVER_EUNAVAILABLE, "Out of memory");
        return;
    }
    if (announce)
        driver_emit_to_room(call->nsp, room, call->socket_id, "room:userJoined",
                            json_pack("{s:O,s:O}", "roomId", room_id, "user", call->user));
    driver_call_finish(call, json_pack("{s:O,s:O}", "roomId", room_id, "room",
                                       json_object_get(call->context, "room")));
}

static void on_member_added(int error, const char *message, json_t *result, void *data)
{
    driver_call_t *call = data;
    if (driver_call_abandoned(call))
        return;
    if (error != 0)
        driver_call_store_failed(call, STORE_ROOM_ADD_MEMBER, error, message);
    else
        join_complete(call);
}

/* Public rooms record who joined; a private room's members are already recorded. */
static void join_store_membership(driver_call_t *call)
{
    if (json_is_true(json_object_get(json_object_get(call->context, "room"), "isPrivate"))) {
        join_complete(call);
        return;
    }
    driver_call_request(
        call, STORE_ROOM_ADD_MEMBER,
        json_pack("{s:s,s:o}", "roomId", driver_call_string(call, "roomIdText"), "userId",
                  driver_id_param(driver_call_user_id(call), driver_call_user_id_text(call))),
        on_member_added);
}

static void on_room_join(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    chat_t *chat = data;
    chat_socket_t *state = socket_state(socket);
    char id[DRIVER_MAX_ID_BYTES + 1];
    char room[DRIVER_ROOM_NAME_SIZE];
    /* Joins share the message budget: with autoCreateRooms each one may write a new room. */
    if (state != NULL && !take_token(chat, state)) {
        channel_reply_error(socket, event, "room:error", DRIVER_ERATELIMIT, "Rate limit exceeded");
        return;
    }
    json_t *room_id = room_argument(socket, event, "room:error", id, room);
    if (state == NULL || room_id == NULL)
        return;
    driver_call_t *call = room_call(chat, socket, event, "room:error", room_id, id);
    if (call == NULL || call_take_profile(call, state) != 0)
        return; /* room:userJoined shows the user */
    json_object_set_new(call->context, "autoCreate", json_boolean(chat->auto_create_rooms));
    call->next = join_store_membership;
    request_room(call);
}

/* ---- room:leave ------------------------------------------------------------------------------ */

static void leave_complete(driver_call_t *call)
{
    char room[DRIVER_ROOM_NAME_SIZE];
    driver_room_name(room, sizeof(room), "room:", driver_call_string(call, "roomIdText"));
    json_t *room_id = json_object_get(call->context, "roomId");
    if (json_is_true(json_object_get(call->context, "announce")))
        driver_emit_to_room(
            call->nsp, room, NULL, "room:userLeft",
            json_pack("{s:O,s:O?}", "roomId", room_id, "userId", driver_call_user_id(call)));
    driver_call_finish(call, json_pack("{s:O}", "roomId", room_id));
}

static void on_member_removed(int error, const char *message, json_t *result, void *data)
{
    driver_call_t *call = data;
    if (driver_call_abandoned(call))
        return;
    if (error != 0)
        driver_call_store_failed(call, STORE_ROOM_REMOVE_MEMBER, error, message);
    else
        leave_complete(call);
}

/* Seed 003 removes the member on leave. Only for public rooms: a private room's membership is
 * an access right (granted by its owner), not presence, and seed 002's client leaves a room
 * whenever it switches to another. */
static void on_leave_room_found(int error, const char *message, json_t *room, void *data)
{
    driver_call_t *call = data;
    if (driver_call_abandoned(call))
        return;
    if (error != 0 && error != STORE_ENOTFOUND) {
        driver_call_store_failed(call, STORE_ROOM_GET, error, message);
        return;
    }
    if (error != 0 || json_is_true(json_object_get(room, "isPrivate")) ||
        !json_is_true(json_object_get(call->context, "announce"))) {
        leave_complete(call);
        return;
    }
    driver_call_request(call, STORE_ROOM_REMOVE_MEMBER,
                        json_pack("{s:s,s:s}", "roomId", driver_call_string(call, "roomIdText"),
                                  "userId", driver_call_user_id_text(call)),
                        on_member_removed);
}

static void on_room_leave(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    chat_t *chat = data;
    chat_socket_t *state = socket_state(socket);
    char id[DRIVER_MAX_ID_BYTES + 1];
    char room[DRIVER_ROOM_NAME_SIZE];
    json_t *room_id = room_argument(socket, event, "room:error", id, room);
    if (state == NULL || room_id == NULL)
        return;
    if (!sioc_socket_in_room(socket, room)) {
        channel_reply_ok(socket, event, json_pack("{s:O}", "roomId", room_id));
        return;
    }
    typing_stop(chat, socket, room);
    sioc_socket_leave(socket, room);
    driver_call_t *call = room_call(chat, socket, event, "room:error", room_id, id);
    if (call == NULL)
        return;
    /* The user stays in the room while another of their sockets is there. */
    char user_room[DRIVER_ROOM_NAME_SIZE];
    user_room_name(state->user, user_room);
    int last = !user_elsewhere_in_room(call->nsp, user_room, room, call->socket_id);
    json_object_set_new(call->context, "announce", json_boolean(last));
    driver_call_request(call, STORE_ROOM_GET, json_pack("{s:s}", "id", id), on_leave_room_found);
}

/* ---- message:send and dm:send ---------------------------------------------------------------- */

/* Checks the rate limit and the text of a message event; 0, or -1 with the client told. */
static int check_message(chat_t *chat, chat_socket_t *state, sioc_socket_t *socket,
                         const sioc_event_t *event, const char *error_event)
{
    const config_t *config = chat_config(chat);
    if (!take_token(chat, state)) {
        channel_reply_error(socket, event, error_event, DRIVER_ERATELIMIT, "Rate limit exceeded");
        return -1;
    }
    switch (driver_check_text(json_object_get(driver_payload(event), "text"),
                              config->limits.max_text_length)) {
    case DRIVER_TEXT_OK:
        return 0;
    case DRIVER_TEXT_TOO_LONG:
        channel_reply_error(socket, event, error_event, DRIVER_ETOOLONG, "Message too long");
        return -1;
    case DRIVER_TEXT_INVALID:
        channel_reply_error(socket, event, error_event, DRIVER_EINVALID,
                            "Message text must not contain NUL characters");
        return -1;
    default:
        channel_reply_error(socket, event, error_event, DRIVER_EINVALID,
                            "Message text is required");
        return -1;
    }
}

static void on_message_stored(int error, const char *message, json_t *stored, void *data)
{
    driver_call_t *call = data;
    if (driver_call_abandoned(call))
        return;
    if (error != 0) {
        driver_call_store_failed(call, STORE_MESSAGE_ADD, error, message);
        return;
    }
    char room[DRIVER_ROOM_NAME_SIZE];
    driver_room_name(room, sizeof(room), "room:", driver_call_string(call, "roomIdText"));
    json_t *received = json_pack("{s:O?,s:O,s:O,s:O?,s:O?}", "id", json_object_get(stored, "id"),
                                 "roomId", json_object_get(call->context, "roomId"), "sender",
                                 call->user, "text", json_object_get(stored, "text"), "createdAt",
                                 json_object_get(stored, "createdAt"));
    /* io.to(room): the whole room, the sender's sockets included. */
    driver_emit_to_room(call->nsp, room, NULL, "message:received", json_incref(received));
    driver_call_finish(call, json_pack("{s:o}", "message", received));
}

static void on_message_send(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    chat_t *chat = data;
    chat_socket_t *state = socket_state(socket);
    char id[DRIVER_MAX_ID_BYTES + 1];
    char room[DRIVER_ROOM_NAME_SIZE];
    json_t *room_id = json_object_get(driver_payload(event), "roomId");
    if (state == NULL || check_message(chat, state, socket, event, "message:error") != 0)
        return;
    if (driver_id_text(room_id, id) != 0) {
        channel_reply_error(socket, event, "message:error", DRIVER_EINVALID,
                            "roomId must be a string of 1 to 128 bytes or an integer");
        return;
    }
    driver_room_name(room, sizeof(room), "room:", id);
    if (!sioc_socket_in_room(socket, room)) {
        channel_reply_error(socket, event, "message:error", DRIVER_EFORBIDDEN,
                            "Join the room before sending messages to it");
        return;
    }
    driver_call_t *call = room_call(chat, socket, event, "message:error", room_id, id);
    if (call == NULL || call_take_profile(call, state) != 0)
        return; /* the sender of message:received */
    const char *text = json_string_value(json_object_get(driver_payload(event), "text"));
    driver_call_request(
        call, STORE_MESSAGE_ADD,
        json_pack("{s:o,s:o,s:s}", "roomId", driver_id_param(room_id, id), "senderId",
                  driver_id_param(driver_call_user_id(call), driver_call_user_id_text(call)),
                  "text", text),
        on_message_stored);
}

static void on_dm_stored(int error, const char *message, json_t *stored, void *data)
{
    driver_call_t *call = data;
    if (driver_call_abandoned(call))
        return;
    if (error != 0) {
        driver_call_store_failed(call, STORE_DM_ADD, error, message);
        return;
    }
    char recipient_room[DRIVER_ROOM_NAME_SIZE];
    char sender_room[DRIVER_ROOM_NAME_SIZE];
    driver_room_name(recipient_room, sizeof(recipient_room),
                     "user:", driver_call_string(call, "recipientIdText"));
    user_room_of(call, sender_room);
    json_t *received = json_pack(
        "{s:O?,s:O?,s:O,s:O?,s:O?,s:O}", "id", json_object_get(stored, "id"), "senderId",
        driver_call_user_id(call), "recipientId", json_object_get(call->context, "recipientId"),
        "text", json_object_get(stored, "text"), "createdAt", json_object_get(stored, "createdAt"),
        "sender", call->user);
    /* Both users' rooms in one broadcast: each tab gets it once, even for a note to oneself. */
    sioc_broadcast_t broadcast;
    sioc_broadcast_init(&broadcast, call->nsp);
    sioc_broadcast_to(&broadcast, recipient_room);
    sioc_broadcast_to(&broadcast, sender_room);
    sioc_broadcast_emit(&broadcast, "dm:received", json_pack("[O]", received));
    driver_call_finish(call, json_pack("{s:o}", "message", received));
}

static void on_recipient_found(int error, const char *message, json_t *recipient, void *data)
{
    driver_call_t *call = data;
    if (driver_call_abandoned(call))
        return;
    if (error == STORE_ENOTFOUND) {
        driver_call_fail(call, DRIVER_ENOTFOUND, "Recipient not found"); /* seed 003's words */
        return;
    }
    if (error != 0) {
        driver_call_store_failed(call, STORE_USER_GET, error, message);
        return;
    }
    driver_call_request(
        call, STORE_DM_ADD,
        json_pack("{s:o,s:o,s:s}", "senderId",
                  driver_id_param(driver_call_user_id(call), driver_call_user_id_text(call)),
                  "recipientId",
                  driver_id_param(json_object_get(call->context, "recipientId"),
                                  driver_call_string(call, "recipientIdText")),
                  "text", driver_call_string(call, "text")),
        on_dm_stored);
}

static void on_dm_send(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    chat_t *chat = data;
    chat_socket_t *state = socket_state(socket);
    char id[DRIVER_MAX_ID_BYTES + 1];
    json_t *payload = driver_payload(event);
    json_t *recipient_id = json_object_get(payload, "recipientId");
    if (state == NULL || check_message(chat, state, socket, event, "dm:error") != 0)
        return;
    if (driver_id_text(recipient_id, id) != 0) {
        channel_reply_error(socket, event, "dm:error", DRIVER_EINVALID,
                            "recipientId must be a string of 1 to 128 bytes or an integer");
        return;
    }
    driver_call_t *call = driver_call_new(&chat->base, socket, event, "dm:error");
    if (call == NULL || call_take_profile(call, state) != 0)
        return; /* the sender of dm:received */
    json_object_set(call->context, "recipientId", recipient_id);
    json_object_set_new(call->context, "recipientIdText", json_string(id));
    json_object_set(call->context, "text", json_object_get(payload, "text"));
    driver_call_request(call, STORE_USER_GET, json_pack("{s:s}", "id", id), on_recipient_found);
}

/* ---- room:history ---------------------------------------------------------------------------- */

/* A lookup of one sender of a history page. */
typedef struct sender_lookup_s {
    driver_call_t *call;
    char id[];
} sender_lookup_t;

/* The page as the live events show messages: {id, roomId, sender, text, createdAt}. */
static void history_answer(driver_call_t *call)
{
    json_t *senders = json_object_get(call->context, "senders");
    json_t *room_id = json_object_get(call->context, "roomId");
    json_t *messages = json_array();
    size_t index;
    json_t *stored;
    json_array_foreach(json_object_get(call->context, "messages"), index, stored)
    {
        char sender_id[DRIVER_MAX_ID_BYTES + 1];
        json_t *sender = driver_id_text(json_object_get(stored, "senderId"), sender_id) == 0
                             ? json_object_get(senders, sender_id)
                             : NULL;
        json_array_append_new(messages,
                              json_pack("{s:O?,s:O,s:O?,s:O?,s:O?}", "id",
                                        json_object_get(stored, "id"), "roomId", room_id, "sender",
                                        sender, "text", json_object_get(stored, "text"),
                                        "createdAt", json_object_get(stored, "createdAt")));
    }
    driver_call_finish(call, json_pack("{s:o}", "messages", messages));
}

static void on_sender_found(int error, const char *message, json_t *user, void *data)
{
    sender_lookup_t *lookup = data;
    driver_call_t *call = lookup->call;
    if (error == 0)
        json_object_set_new(json_object_get(call->context, "senders"), lookup->id,
                            driver_user_profile(user));
    else if (error != STORE_ENOTFOUND)
        log_warn("chat: sender %s of a history page not read: %s", lookup->id, message);
    free(lookup);
    if (--call->pending > 0 || driver_call_abandoned(call))
        return;
    history_answer(call);
}

/* Every distinct sender of the page is read once (the page has at most 100 messages). */
static void on_history_loaded(int error, const char *message, json_t *page, void *data)
{
    driver_call_t *call = data;
    if (driver_call_abandoned(call))
        return;
    if (error != 0) {
        driver_call_store_failed(call, STORE_MESSAGE_HISTORY, error, message);
        return;
    }
    json_t *senders = json_object();
    json_object_set(call->context, "messages", page);
    json_object_set_new(call->context, "senders", senders);
    size_t index;
    json_t *stored;
    json_array_foreach(page, index, stored)
    {
        json_t *sender_value = json_object_get(stored, "senderId");
        char sender_id[DRIVER_MAX_ID_BYTES + 1];
        if (driver_id_text(sender_value, sender_id) != 0 ||
            json_object_get(senders, sender_id) != NULL)
            continue;
        /* Until the profile is read: the id as stored (a number stays a number). */
        json_object_set_new(senders, sender_id, json_pack("{s:O}", "id", sender_value));
        size_t size = strlen(sender_id) + 1;
        sender_lookup_t *lookup = malloc(sizeof(*lookup) + size);
        if (lookup == NULL)
            continue; /* the message keeps {id} as its sender */
        lookup->call = call;
        memcpy(lookup->id, sender_id, size);
        call->pending++;
        store_request(call->base->channel->daemon->store, STORE_USER_GET,
                      json_pack("{s:s}", "id", sender_id), on_sender_found, lookup);
    }
    if (call->pending == 0)
        history_answer(call);
}

static void history_load(driver_call_t *call)
{
    /* Fresh values: store params are read from the store's thread until done. */
    json_t *params =
        json_pack("{s:s,s:I}", "roomId", driver_call_string(call, "roomIdText"), "limit",
                  json_integer_value(json_object_get(call->context, "limit")));
    if (json_object_get(call->context, "before") != NULL)
        json_object_set_new(params, "before", json_string(driver_call_string(call, "before")));
    driver_call_request(call, STORE_MESSAGE_HISTORY, params, on_history_loaded);
}

/* limit: 1.. (clamped to limits.historyLimit and to what the store serves), default 50. */
static int history_limit(const chat_t *chat, json_t *value, json_int_t *limit)
{
    json_int_t most = chat_config(chat)->limits.history_limit;
    if (most > STORE_HISTORY_LIMIT_MAX)
        most = STORE_HISTORY_LIMIT_MAX;
    *limit = value == NULL ? HISTORY_LIMIT_DEFAULT : json_integer_value(value);
    if (value != NULL && (!json_is_integer(value) || *limit < 1))
        return -1;
    if (*limit > most)
        *limit = most;
    return 0;
}

static void on_room_history(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    chat_t *chat = data;
    json_t *payload = driver_payload(event);
    json_t *before = json_object_get(payload, "before");
    char id[DRIVER_MAX_ID_BYTES + 1];
    char room[DRIVER_ROOM_NAME_SIZE];
    char before_id[DRIVER_MAX_ID_BYTES + 1];
    json_int_t limit;
    if (event->ack_id < 0) {
        channel_reply_error(socket, event, "room:error", DRIVER_EINVALID,
                            "room:history answers through an acknowledgement: pass a callback");
        return;
    }
    json_t *room_id = room_argument(socket, event, "room:error", id, room);
    if (room_id == NULL)
        return;
    if ((before != NULL && driver_id_text(before, before_id) != 0) ||
        history_limit(chat, json_object_get(payload, "limit"), &limit) != 0) {
        channel_reply_error(socket, event, "room:error", DRIVER_EINVALID,
                            "before must be a message id and limit a positive integer");
        return;
    }
    driver_call_t *call = room_call(chat, socket, event, "room:error", room_id, id);
    if (call == NULL)
        return;
    if (before != NULL)
        json_object_set_new(call->context, "before", json_string(before_id));
    json_object_set_new(call->context, "limit", json_integer(limit));
    call->next = history_load;
    request_room(call);
}

/* ---- dm:history -------------------------------------------------------------------------------
 */

static void on_dm_history_loaded(int error, const char *message, json_t *page, void *data)
{
    driver_call_t *call = data;
    if (driver_call_abandoned(call))
        return;
    if (error != 0) {
        driver_call_store_failed(call, STORE_DM_HISTORY, error, message);
        return;
    }
    driver_call_finish(call, json_pack("{s:O}", "messages", page));
}

/* dm:history {userId, before?, limit?} with an ack → {ok, messages} (oldest first): the
 * conversation between the socket's user and userId, so a client that was offline catches up
 * on direct messages as room:history does for rooms. */
static void on_dm_history(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    chat_t *chat = data;
    json_t *payload = driver_payload(event);
    json_t *before = json_object_get(payload, "before");
    char other[DRIVER_MAX_ID_BYTES + 1];
    char before_id[DRIVER_MAX_ID_BYTES + 1];
    json_int_t limit;
    if (event->ack_id < 0) {
        channel_reply_error(socket, event, "dm:error", DRIVER_EINVALID,
                            "dm:history answers through an acknowledgement: pass a callback");
        return;
    }
    if (driver_id_text(json_object_get(payload, "userId"), other) != 0 ||
        (before != NULL && driver_id_text(before, before_id) != 0) ||
        history_limit(chat, json_object_get(payload, "limit"), &limit) != 0) {
        channel_reply_error(socket, event, "dm:error", DRIVER_EINVALID,
                            "userId must be a user id, before a message id and limit a positive "
                            "integer");
        return;
    }
    driver_call_t *call = driver_call_new(&chat->base, socket, event, "dm:error");
    if (call == NULL)
        return;
    json_t *params = json_pack("{s:s,s:s,s:I}", "userId", driver_call_user_id_text(call), "otherId",
                               other, "limit", limit);
    if (before != NULL)
        json_object_set_new(params, "before", json_string(before_id));
    driver_call_request(call, STORE_DM_HISTORY, params, on_dm_history_loaded);
}

/* ---- the driver ------------------------------------------------------------------------------ */

static void chat_release(driver_base_t *base)
{
    sioc__index_clear(&((chat_t *)base)->users); /* the base is the first member of chat_t */
    sioc__index_clear(&((chat_t *)base)->rares);
    free(base);
}

static int chat_check_options(const config_t *config, const config_channel_t *channel, char *error,
                              size_t error_size)
{
    static const char *const known[] = {"autoCreateRooms", "presence", "presenceGraceMs", NULL};
    if (driver_require_authentication(config, channel, "chat", 0, error, error_size) != 0 ||
        driver_check_option_keys(config, channel, known, error, error_size) != 0)
        return -1;
    json_t *auto_create = json_object_get(channel->options, "autoCreateRooms");
    if (auto_create != NULL && !json_is_boolean(auto_create))
        return driver_option_error(config, channel, "autoCreateRooms", error, error_size,
                                   "expected true or false");
    const char *presence = json_string_value(json_object_get(channel->options, "presence"));
    if (json_object_get(channel->options, "presence") != NULL &&
        (presence == NULL || (strcmp(presence, "all") != 0 && strcmp(presence, "rooms") != 0)))
        return driver_option_error(config, channel, "presence", error, error_size,
                                   "expected \"all\" (the default) or \"rooms\"");
    json_t *grace = json_object_get(channel->options, "presenceGraceMs");
    if (grace != NULL && (!json_is_integer(grace) || json_integer_value(grace) < 0 ||
                          json_integer_value(grace) > PRESENCE_GRACE_MAX_MS))
        return driver_option_error(config, channel, "presenceGraceMs", error, error_size,
                                   "expected an integer from 0 to 600000 (milliseconds)");
    return 0;
}

/* presenceGraceMs, or with recovery on 5 s (at most the window: a client back later gets a
 * fresh session anyway), or 0 (offline at once, as without recovery before). */
static uint32_t grace_of(const config_t *config, const config_channel_t *channel)
{
    json_t *grace = json_object_get(channel->options, "presenceGraceMs");
    if (grace != NULL)
        return (uint32_t)json_integer_value(grace);
    if (!config->recovery.enabled)
        return 0;
    uint32_t window = config->recovery.max_disconnection_duration_ms;
    return window < PRESENCE_GRACE_DEFAULT_MS ? window : PRESENCE_GRACE_DEFAULT_MS;
}

static int chat_setup(channel_t *channel, char *error, size_t error_size)
{
    if (chat_check_options(channel->daemon->config, channel->config, error, error_size) != 0)
        return -1;
    chat_t *chat = calloc(1, sizeof(*chat));
    if (chat == NULL) {
        snprintf(error, error_size, "channels.\"%s\": out of memory", channel->config->name);
        return -1;
    }
    driver_base_init(&chat->base, channel, chat_release);
    sioc__index_init(&chat->users, offsetof(chat_user_t, key));
    sioc__index_init(&chat->rares, offsetof(chat_socket_rare_t, socket_id));
    json_t *auto_create = json_object_get(channel->config->options, "autoCreateRooms");
    chat->auto_create_rooms = auto_create == NULL || json_is_true(auto_create);
    const char *presence = json_string_value(json_object_get(channel->config->options, "presence"));
    chat->presence_rooms = presence != NULL && strcmp(presence, "rooms") == 0;
    const config_t *config = channel->daemon->config;
    if (config->cluster.enabled) {
        chat->presence = presence_new(channel->nsp, channel->daemon->loop,
                                      config->cluster.presence_interval_ms, on_user_gone, chat);
        if (chat->presence == NULL) {
            free(chat);
            snprintf(error, error_size, "channels.\"%s\": out of memory", channel->config->name);
            return -1;
        }
    }
    chat->grace_ms = grace_of(config, channel->config);
    /* One node only: a cluster's nodes learn of each other's users by their gossip. */
    chat->online_rows = chat->presence == NULL ? channel->daemon->recovery : NULL;
    if (chat->online_rows != NULL)
        grace_resume(chat);
    channel->state = chat;
    chat->base.socket_user = socket_user;
    sioc_namespace_t *nsp = channel->nsp;
    sioc_namespace_on_socket_data(nsp, socket_data, chat);
    sioc_namespace_on_connection(nsp, on_connection, chat);
    sioc_namespace_on_disconnecting(nsp, on_disconnecting, chat);
    sioc_namespace_on_disconnect(nsp, on_disconnect, chat);
    driver_base_t *base = &chat->base;
    driver_on(base, "room:join", "room:error", on_room_join, chat);
    driver_on(base, "room:leave", "room:error", on_room_leave, chat);
    driver_on(base, "room:history", "room:error", on_room_history, chat);
    driver_on(base, "message:send", "message:error", on_message_send, chat);
    driver_on(base, "dm:send", "dm:error", on_dm_send, chat);
    driver_on(base, "dm:history", "dm:error", on_dm_history, chat);
    driver_on(base, "typing:start", "typing:error", on_typing_start, chat);
    driver_on(base, "typing:stop", "typing:error", on_typing_stop, chat);
    return 0;
}

static void chat_teardown(channel_t *channel)
{
    chat_t *chat = channel->state;
    channel->state = NULL;
    if (chat != NULL) {
        grace_free_all(chat);
        presence_free(chat->presence);
        chat->presence = NULL;
        driver_base_detach(&chat->base); /* freed when the last store answer is in */
    }
}

const driver_t driver_chat = {
    .name = "chat",
    .check = chat_check_options,
    .setup = chat_setup,
    .teardown = chat_teardown,
};
