/* The server side of @socket.io/admin-ui 0.5.1 (sioc_admin.h), on the public API only: the
 * admin namespace is an ordinary namespace, the reports are broadcasts to it, the actions are
 * broadcast operations, and what happens elsewhere in the server comes from the observer. */
#define _GNU_SOURCE /* crypt_r */
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "sioc_admin.h"

#define SESSION_ID_LENGTH 16 /* Node: randomBytes(8).toString("hex") */
/* Password checks running or queued at once: each costs a bcrypt computation on the thread
 * pool, so a flood of logins must not queue without bound; past this, attempts are refused
 * as if the password were wrong until checks finish. */
#define MAX_PENDING_CHECKS 16

struct sioc_admin_s {
    sioc_server_t *server;
    sioc_namespace_t *nsp;
    char *namespace_name;
    char *username;
    char *password_hash;
    char *server_id;
    char hostname[256];
    int readonly;
    int development;
    size_t max_sessions;
    char (*sessions)[SESSION_ID_LENGTH + 1]; /* a ring: the oldest is overwritten */
    size_t session_count;
    size_t session_next;
    uv_timer_t timer;
    uint64_t started_ms;
    sioc_eio_stats_t last; /* for the aggregated events since the previous report */
    unsigned pending_checks;
    int closed;
    int timer_closed;
};

/* ---- helpers ------------------------------------------------------------------------------------
 */

/* A JavaScript Date as JSON.stringify writes it: "2026-12-02T09:41:20.123Z". */
static json_t *date_now(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    char text[96];
    snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(now.tv_nsec / 1000000) % 1000);
    return json_string(text);
}

static int is_admin_socket(const sioc_admin_t *admin, const sioc_socket_t *socket)
{
    return sioc_socket_namespace(socket) == admin->nsp;
}

/* To every admin socket of every server (args taken). */
static void report(sioc_admin_t *admin, const char *event, json_t *args)
{
    sioc_broadcast_t broadcast;
    sioc_broadcast_init(&broadcast, admin->nsp);
    sioc_broadcast_emit(&broadcast, event, args);
}

static const char *transport_name(sioc_transport_t transport)
{
    return transport == SIOC_TRANSPORT_WEBSOCKET ? "websocket" : "polling";
}

/* The namespace called name if it exists (the dashboard must not create namespaces). */
typedef struct find_context_s {
    const char *name;
    sioc_namespace_t *found;
} find_context_t;

static void find_visit(sioc_namespace_t *nsp, void *data)
{
    find_context_t *context = data;
    if (strcmp(sioc_namespace_name(nsp), context->name) == 0)
        context->found = nsp;
}

static sioc_namespace_t *find_namespace(sioc_admin_t *admin, const char *name)
{
    find_context_t context = {name, NULL};
    sioc_server_for_each_namespace(admin->server, find_visit, &context);
    return context.found;
}

/* ---- serialised sockets (serialize() in admin-ui's index.ts) ----------------------------------
 */

/* data without "_admin" (a new reference). */
static json_t *visible_data(json_t *data)
{
    if (!json_is_object(data))
        return data != NULL ? json_incref(data) : json_null();
    json_t *copy = json_copy(data);
    json_object_del(copy, "_admin");
    return copy;
}

static json_t *serialized_handshake(json_t *handshake)
{
    json_t *headers = json_object_get(handshake, "headers");
    json_t *address = json_object_get(headers, "cf-connecting-ip");
    if (address == NULL)
        address = json_object_get(headers, "x-forwarded-for");
    if (address == NULL)
        address = json_object_get(handshake, "address");
    json_t *out = json_object();
    static const char *const keys[] = {"headers", "query", "issued", "secure",
                                       "time",    "url",   "xdomain"};
    json_object_set(out, "address", address ? address : json_null());
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        json_t *value = json_object_get(handshake, keys[i]);
        json_object_set(out, keys[i], value ? value : json_null());
    }
    return out;
}

/* One fetchSockets entry {id, handshake, rooms, data} of namespace nsp, as the dashboard wants
 * it. clientId and transport come from data._admin: the server that has the socket wrote them. */
static json_t *serialize_fetched(json_t *fetched, const char *nsp)
{
    json_t *data = json_object_get(fetched, "data");
    json_t *meta = json_object_get(data, "_admin");
    json_t *client_id = json_object_get(meta, "clientId");
    json_t *transport = json_object_get(meta, "transport");
    json_t *rooms = json_object_get(fetched, "rooms");
    return json_pack("{s:O,s:O,s:O,s:s,s:o,s:o,s:O}", "id", json_object_get(fetched, "id"),
                     "clientId", client_id ? client_id : json_null(), "transport",
                     transport ? transport : json_null(), "nsp", nsp, "data", visible_data(data),
                     "handshake", serialized_handshake(json_object_get(fetched, "handshake")),
                     "rooms", rooms ? rooms : json_null());
}

/* Through a copy of the handshake ("o" takes it), as fetchSockets reads one: a development
 * server's reports kept every connected socket's (about 4 KB each) for its life. */
static json_t *serialize_socket(sioc_socket_t *socket)
{
    json_t *fetched = json_pack("{s:s,s:o,s:o,s:O}", "id", sioc_socket_id(socket), "handshake",
                                sioc_socket_handshake_copy(socket), "rooms",
                                sioc_socket_rooms(socket), "data", sioc_socket_data(socket));
    json_t *out = serialize_fetched(fetched, sioc_namespace_name(sioc_socket_namespace(socket)));
    json_decref(fetched);
    return out;
}

/* ---- observer: development-mode reports --------------------------------------------------------
 */

static void on_socket_connection(sioc_socket_t *socket, void *data)
{
    sioc_admin_t *admin = data;
    char client_id[13];
    snprintf(client_id, sizeof(client_id), "%s", sioc_socket_client_id(socket));
    json_t *socket_data = sioc_socket_data(socket);
    if (json_is_object(socket_data))
        json_object_set_new(socket_data, "_admin",
                            json_pack("{s:s,s:s}", "clientId", client_id, "transport",
                                      transport_name(sioc_socket_transport(socket))));
    report(admin, "socket_connected", json_pack("[o,o]", serialize_socket(socket), date_now()));
}

static void on_socket_upgrade(sioc_socket_t *socket, void *data)
{
    sioc_admin_t *admin = data;
    json_t *meta = json_object_get(sioc_socket_data(socket), "_admin");
    if (json_is_object(meta))
        json_object_set_new(meta, "transport", json_string("websocket"));
    const char *nsp = sioc_namespace_name(sioc_socket_namespace(socket));
    report(admin, "socket_updated",
           json_pack("[{s:s,s:s,s:s}]", "id", sioc_socket_id(socket), "nsp", nsp, "transport",
                     "websocket"));
}

static void on_socket_disconnect(sioc_socket_t *socket, const char *reason, void *data)
{
    sioc_admin_t *admin = data;
    const char *nsp = sioc_namespace_name(sioc_socket_namespace(socket));
    report(admin, "socket_disconnected",
           json_pack("[s,s,s,o]", nsp, sioc_socket_id(socket), reason, date_now()));
}

static void report_room(sioc_admin_t *admin, const char *event, sioc_socket_t *socket,
                        const char *room)
{
    const char *nsp = sioc_namespace_name(sioc_socket_namespace(socket));
    report(admin, event, json_pack("[s,s,s,o]", nsp, room, sioc_socket_id(socket), date_now()));
}

static void on_socket_join(sioc_socket_t *socket, const char *room, void *data)
{
    report_room(data, "room_joined", socket, room);
}

static void on_socket_leave(sioc_socket_t *socket, const char *room, void *data)
{
    report_room(data, "room_left", socket, room);
}

/* [name, ...args], as socket.onAny hands them. */
static void report_event(sioc_admin_t *admin, const char *event_name, sioc_socket_t *socket,
                         const sioc_event_t *event)
{
    if (is_admin_socket(admin, socket))
        return;
    json_t *args = json_pack("[s]", event->name);
    json_array_extend(args, event->args);
    const char *nsp = sioc_namespace_name(sioc_socket_namespace(socket));
    report(admin, event_name,
           json_pack("[s,s,o,o]", nsp, sioc_socket_id(socket), args, date_now()));
}

static void on_socket_event(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    report_event(data, "event_received", socket, event);
}

static void on_socket_event_sent(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    report_event(data, "event_sent", socket, event);
}

/* ---- server_stats -----------------------------------------------------------------------------
 */

static void add_event(json_t *events, json_int_t timestamp, const char *type, uint64_t count)
{
    if (count > 0)
        json_array_append_new(events, json_pack("{s:I,s:s,s:I}", "timestamp", timestamp, "type",
                                                type, "count", (json_int_t)count));
}

/* Node's EventBuffer keys rawDisconnection by the close reason (subType); closes for a reason
 * sioc does not name keep no subType, as Node's other types. */
static void add_disconnections(json_t *events, json_int_t timestamp, const sioc_eio_stats_t *now,
                               const sioc_eio_stats_t *last)
{
    uint64_t named = 0;
    for (int i = 0; i < SIOC_EIO_CLOSE_REASON_COUNT; i++) {
        uint64_t count = now->sessions_closed_by_reason[i] - last->sessions_closed_by_reason[i];
        named += count;
        if (count > 0)
            json_array_append_new(events,
                                  json_pack("{s:I,s:s,s:s,s:I}", "timestamp", timestamp, "type",
                                            "rawDisconnection", "subType", sioc_eio_close_reason(i),
                                            "count", (json_int_t)count));
    }
    add_event(events, timestamp, "rawDisconnection",
              now->sessions_closed - last->sessions_closed - named);
}

/* What Node's EventBuffer collects between two reports, from the counter deltas: one entry per
 * type, stamped with the current second. */
static json_t *aggregated_events(sioc_admin_t *admin, const sioc_eio_stats_t *now)
{
    json_t *events = json_array();
    struct timespec clock;
    clock_gettime(CLOCK_REALTIME, &clock);
    json_int_t timestamp = (json_int_t)clock.tv_sec * 1000;
    const sioc_eio_stats_t *last = &admin->last;
    add_event(events, timestamp, "rawConnection", now->sessions_opened - last->sessions_opened);
    add_disconnections(events, timestamp, now, last);
    add_event(events, timestamp, "packetsIn", now->messages_in - last->messages_in);
    add_event(events, timestamp, "packetsOut", now->messages_out - last->messages_out);
    add_event(events, timestamp, "bytesIn", now->message_bytes_in - last->message_bytes_in);
    add_event(events, timestamp, "bytesOut", now->message_bytes_out - last->message_bytes_out);
    admin->last = *now;
    return events;
}

static void add_namespace(sioc_namespace_t *nsp, void *data)
{
    json_array_append_new(data,
                          json_pack("{s:s,s:I}", "name", sioc_namespace_name(nsp), "socketsCount",
                                    (json_int_t)sioc_namespace_socket_count(nsp)));
}

static void emit_stats(sioc_admin_t *admin)
{
    sioc_server_stats_t stats;
    sioc_server_stats(admin->server, &stats);
    json_t *namespaces = json_array();
    sioc_server_for_each_namespace(admin->server, add_namespace, namespaces);
    double uptime = (double)(uv_now(sioc_server_loop(admin->server)) - admin->started_ms) / 1000.0;
    json_t *body = json_pack(
        "{s:s,s:s,s:I,s:f,s:I,s:I,s:o,s:o}", "serverId", admin->server_id, "hostname",
        admin->hostname, "pid", (json_int_t)getpid(), "uptime", uptime, "clientsCount",
        (json_int_t)(stats.engine.polling_sessions + stats.engine.websocket_sessions),
        "pollingClientsCount", (json_int_t)stats.engine.polling_sessions, "aggregatedEvents",
        aggregated_events(admin, &stats.engine), "namespaces", namespaces);
    report(admin, "server_stats", json_pack("[o]", body));
}

static void on_timer(uv_timer_t *timer)
{
    emit_stats(timer->data);
}

/* ---- authentication ----------------------------------------------------------------------------
 */

static int session_exists(const sioc_admin_t *admin, const char *id)
{
    for (size_t i = 0; i < admin->session_count; i++)
        if (strcmp(admin->sessions[i], id) == 0)
            return 1;
    return 0;
}

static const char *new_session(sioc_admin_t *admin)
{
    unsigned char bytes[SESSION_ID_LENGTH / 2];
    if (getrandom(bytes, sizeof(bytes), 0) != (ssize_t)sizeof(bytes))
        return NULL;
    char *slot = admin->sessions[admin->session_next];
    for (size_t i = 0; i < sizeof(bytes); i++)
        snprintf(slot + 2 * i, 3, "%02x", bytes[i]);
    admin->session_next = (admin->session_next + 1) % admin->max_sessions;
    if (admin->session_count < admin->max_sessions)
        admin->session_count++;
    return slot;
}

/* The bcrypt hash shape bcryptjs accepts: $2a$ / $2b$ / $2y$, two cost digits (4 to 31), '$',
 * then 53 characters of bcrypt's base64. */
static int is_bcrypt_hash(const char *hash)
{
    static const char alphabet[] =
        "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    if (strlen(hash) != 60 || hash[0] != '$' || hash[1] != '2' || strchr("aby", hash[2]) == NULL ||
        hash[3] != '$' || hash[6] != '$')
        return 0;
    int cost = (hash[4] - '0') * 10 + (hash[5] - '0');
    if (hash[4] < '0' || hash[4] > '9' || hash[5] < '0' || hash[5] > '9' || cost < 4 || cost > 31)
        return 0;
    return strspn(hash + 7, alphabet) == 53;
}

typedef struct check_s {
    uv_work_t work;
    sioc_admin_t *admin;
    sioc_next_t *next;
    char *password;
    int matches;
} check_t;

static int equal_in_constant_time(const char *a, const char *b, size_t length)
{
    unsigned char difference = 0;
    for (size_t i = 0; i < length; i++)
        difference |= (unsigned char)(a[i] ^ b[i]);
    return difference == 0;
}

/* On the thread pool: bcrypt at cost 10 takes tens of milliseconds. */
static void check_password(uv_work_t *work)
{
    check_t *check = work->data;
    struct crypt_data *scratch = calloc(1, sizeof(*scratch));
    const char *hash =
        scratch ? crypt_r(check->password, check->admin->password_hash, scratch) : NULL;
    check->matches = hash != NULL && strlen(hash) == 60 &&
                     equal_in_constant_time(hash, check->admin->password_hash, 60);
    free(scratch);
}

static void maybe_free(sioc_admin_t *admin);

static void after_check(uv_work_t *work, int status)
{
    check_t *check = work->data;
    sioc_admin_t *admin = check->admin;
    admin->pending_checks--;
    if (status == 0 && check->matches)
        sioc_next(check->next);
    else
        sioc_next_error(check->next, "invalid credentials", NULL);
    free(check->password);
    free(check);
    maybe_free(admin);
}

static void authenticate(sioc_socket_t *socket, sioc_next_t *next, void *data)
{
    sioc_admin_t *admin = data;
    if (admin->username == NULL || admin->closed) {
        if (admin->closed)
            sioc_next_error(next, "server shutting down", NULL);
        else
            sioc_next(next);
        return;
    }
    json_t *auth = sioc_socket_auth(socket);
    const char *session = json_string_value(json_object_get(auth, "sessionId"));
    if (session != NULL && session_exists(admin, session)) {
        sioc_next(next);
        return;
    }
    const char *username = json_string_value(json_object_get(auth, "username"));
    const char *password = json_string_value(json_object_get(auth, "password"));
    check_t *check = NULL;
    if (username == NULL || password == NULL || strcmp(username, admin->username) != 0 ||
        admin->pending_checks >= MAX_PENDING_CHECKS ||
        (check = calloc(1, sizeof(*check))) == NULL ||
        (check->password = strdup(password)) == NULL) {
        free(check);
        sioc_next_error(next, "invalid credentials", NULL);
        return;
    }
    check->admin = admin;
    check->next = next;
    check->work.data = check;
    if (uv_queue_work(sioc_server_loop(admin->server), &check->work, check_password, after_check) !=
        0) {
        free(check->password);
        free(check);
        sioc_next_error(next, "invalid credentials", NULL);
        return;
    }
    admin->pending_checks++;
}

/* ---- the admin namespace: config, all_sockets, actions ------------------------------------------
 */

static json_t *supported_features(const sioc_admin_t *admin)
{
    json_t *features = json_array();
    if (!admin->readonly) {
        static const char *const actions[] = {"EMIT",  "JOIN",   "LEAVE",      "DISCONNECT",
                                              "MJOIN", "MLEAVE", "MDISCONNECT"};
        for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
            json_array_append_new(features, json_string(actions[i]));
    }
    json_array_append_new(features, json_string("AGGREGATED_EVENTS"));
    if (admin->development)
        json_array_append_new(features, json_string("ALL_EVENTS"));
    return features;
}

/* all_sockets collects fetchSockets from every namespace (every server of a cluster), then goes
 * to the admin socket, found again by id: it may have left meanwhile. */
typedef struct all_sockets_s {
    sioc_admin_t *admin;
    char socket_id[SIOC_ID_SIZE];
    json_t *sockets;
    size_t pending;
} all_sockets_t;

typedef struct fetch_s {
    all_sockets_t *all;
    char *nsp;
} fetch_t;

static void all_sockets_done(all_sockets_t *all)
{
    sioc_socket_t *socket =
        all->admin->closed ? NULL : sioc_namespace_socket(all->admin->nsp, all->socket_id);
    if (socket != NULL)
        sioc_socket_emit(socket, "all_sockets", json_pack("[O]", all->sockets));
    json_decref(all->sockets);
    free(all);
}

static void on_fetched(int error, json_t *sockets, void *data)
{
    (void)error; /* a cluster timeout still gives the sockets that came */
    fetch_t *fetch = data;
    size_t index;
    json_t *entry;
    json_array_foreach(sockets, index, entry)
        json_array_append_new(fetch->all->sockets, serialize_fetched(entry, fetch->nsp));
    all_sockets_t *all = fetch->all;
    free(fetch->nsp);
    free(fetch);
    if (--all->pending == 0)
        all_sockets_done(all);
}

static void fetch_namespace(sioc_namespace_t *nsp, void *data)
{
    all_sockets_t *all = data;
    fetch_t *fetch = calloc(1, sizeof(*fetch));
    if (fetch == NULL || (fetch->nsp = strdup(sioc_namespace_name(nsp))) == NULL) {
        free(fetch);
        return;
    }
    fetch->all = all;
    all->pending++;
    sioc_broadcast_t broadcast;
    sioc_broadcast_init(&broadcast, nsp);
    if (sioc_broadcast_fetch_sockets(&broadcast, on_fetched, fetch) != 0) {
        all->pending--;
        free(fetch->nsp);
        free(fetch);
    }
}

static void send_all_sockets(sioc_admin_t *admin, sioc_socket_t *socket)
{
    all_sockets_t *all = calloc(1, sizeof(*all));
    if (all == NULL)
        return;
    all->admin = admin;
    snprintf(all->socket_id, sizeof(all->socket_id), "%s", sioc_socket_id(socket));
    all->sockets = json_array();
    /* The extra count keeps the collection open while fetches answer synchronously. */
    all->pending = 1;
    sioc_server_for_each_namespace(admin->server, fetch_namespace, all);
    if (--all->pending == 0)
        all_sockets_done(all);
}

/* JavaScript's falsiness, for Node's `if (filter)`. */
static int is_falsy(const json_t *value)
{
    return value == NULL || json_is_null(value) || json_is_false(value) ||
           (json_is_string(value) && json_string_length(value) == 0) ||
           (json_is_number(value) && json_number_value(value) == 0);
}

/* The target of an action: every socket of nsp when filter is falsy (absent, null, "", ...),
 * the room filter names when it is a string. 0, or -1 (the action is ignored) when the
 * namespace is not a string or does not exist, or the filter is neither: Node would look for
 * a room keyed by a number or an object and find nobody. */
static int action_target(sioc_admin_t *admin, json_t *nsp_name, json_t *filter,
                         sioc_broadcast_t *broadcast)
{
    const char *name = json_string_value(nsp_name);
    sioc_namespace_t *nsp = name != NULL ? find_namespace(admin, name) : NULL;
    if (nsp == NULL || (!is_falsy(filter) && !json_is_string(filter)))
        return -1;
    sioc_broadcast_init(broadcast, nsp);
    if (!is_falsy(filter))
        sioc_broadcast_to(broadcast, json_string_value(filter));
    return 0;
}

/* Names Node's emit() refuses (it throws): the clients would take them for their own events. */
static int is_reserved(const char *name)
{
    static const char *const reserved[] = {"connect",       "connect_error", "disconnect",
                                           "disconnecting", "newListener",   "removeListener"};
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (strcmp(name, reserved[i]) == 0)
            return 1;
    return 0;
}

/* emit(nsp, filter, ev, ...args) */
static void on_emit(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    (void)socket;
    sioc_broadcast_t broadcast;
    const char *name = json_string_value(json_array_get(event->args, 2));
    if (name == NULL || is_reserved(name) ||
        action_target(data, json_array_get(event->args, 0), json_array_get(event->args, 1),
                      &broadcast) != 0)
        return;
    json_t *args = json_array();
    for (size_t i = 3; i < json_array_size(event->args); i++)
        json_array_append(args, json_array_get(event->args, i));
    sioc_broadcast_emit(&broadcast, name, args);
}

/* join(nsp, room, filter) and leave(nsp, room, filter) */
static void join_or_leave(sioc_admin_t *admin, const sioc_event_t *event, int join)
{
    sioc_broadcast_t broadcast;
    const char *room = json_string_value(json_array_get(event->args, 1));
    if (room == NULL || action_target(admin, json_array_get(event->args, 0),
                                      json_array_get(event->args, 2), &broadcast) != 0)
        return;
    if (join)
        sioc_broadcast_join(&broadcast, room);
    else
        sioc_broadcast_leave(&broadcast, room);
}

static void on_join(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    (void)socket;
    join_or_leave(data, event, 1);
}

static void on_leave(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    (void)socket;
    join_or_leave(data, event, 0);
}

/* _disconnect(nsp, close, filter) */
static void on_disconnect_action(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    (void)socket;
    sioc_broadcast_t broadcast;
    if (action_target(data, json_array_get(event->args, 0), json_array_get(event->args, 2),
                      &broadcast) != 0)
        return;
    sioc_broadcast_disconnect(&broadcast, json_is_true(json_array_get(event->args, 1)));
}

static void on_admin_connection(sioc_socket_t *socket, void *data)
{
    sioc_admin_t *admin = data;
    if (admin->closed)
        return;
    json_t *auth = sioc_socket_auth(socket);
    const char *session = json_string_value(json_object_get(auth, "sessionId"));
    /* Only a login with the password gets a (new) session id, as in Node. */
    if (admin->username != NULL && (session == NULL || !session_exists(admin, session))) {
        const char *created = new_session(admin);
        if (created != NULL)
            sioc_socket_emit(socket, "session", json_pack("[s]", created));
    }
    sioc_socket_emit(socket, "config",
                     json_pack("[{s:o}]", "supportedFeatures", supported_features(admin)));
    if (admin->development)
        send_all_sockets(admin, socket);
}

/* ---- life cycle ---------------------------------------------------------------------------------
 */

void sioc_admin_options_init(sioc_admin_options_t *options)
{
    memset(options, 0, sizeof(*options));
    options->namespace_name = "/admin";
    options->mode = SIOC_ADMIN_DEVELOPMENT;
    options->stats_interval_ms = 2000;
    options->max_sessions = 1000;
}

static void free_admin(sioc_admin_t *admin)
{
    free(admin->namespace_name);
    free(admin->username);
    free(admin->password_hash);
    free(admin->server_id);
    free(admin->sessions);
    free(admin);
}

static void maybe_free(sioc_admin_t *admin)
{
    if (admin->closed && admin->timer_closed && admin->pending_checks == 0)
        free_admin(admin);
}

static void on_timer_closed(uv_handle_t *handle)
{
    sioc_admin_t *admin = handle->data;
    admin->timer_closed = 1;
    maybe_free(admin);
}

static char *copy_or_null(const char *text, int *failed)
{
    if (text == NULL)
        return NULL;
    char *copy = strdup(text);
    if (copy == NULL)
        *failed = 1;
    return copy;
}

static int copy_options(sioc_admin_t *admin, const sioc_admin_options_t *options)
{
    int failed = 0;
    admin->namespace_name = copy_or_null(options->namespace_name, &failed);
    admin->username = copy_or_null(options->username, &failed);
    admin->password_hash = copy_or_null(options->password_hash, &failed);
    if (gethostname(admin->hostname, sizeof(admin->hostname) - 1) != 0)
        snprintf(admin->hostname, sizeof(admin->hostname), "localhost");
    admin->server_id =
        copy_or_null(options->server_id ? options->server_id : admin->hostname, &failed);
    admin->readonly = options->readonly;
    admin->development = options->mode == SIOC_ADMIN_DEVELOPMENT;
    admin->max_sessions = options->max_sessions > 0 ? options->max_sessions : 1;
    admin->sessions = calloc(admin->max_sessions, sizeof(*admin->sessions));
    return failed || admin->namespace_name == NULL || admin->sessions == NULL ? SIOC_ENOMEM : 0;
}

static const char *check_options(const sioc_admin_options_t *options)
{
    if ((options->username == NULL) != (options->password_hash == NULL))
        return "basic authentication needs both a username and a password hash";
    if (options->password_hash != NULL && !is_bcrypt_hash(options->password_hash))
        return "the password hash must be a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters)";
    if (options->namespace_name == NULL || options->namespace_name[0] != '/')
        return "the admin namespace must start with '/'";
    if (options->stats_interval_ms == 0)
        return "the stats interval must be at least 1 ms";
    return NULL;
}

static void register_handlers(sioc_admin_t *admin)
{
    sioc_namespace_use(admin->nsp, authenticate, admin);
    sioc_namespace_on_connection(admin->nsp, on_admin_connection, admin);
    if (!admin->readonly) {
        sioc_namespace_on(admin->nsp, "emit", on_emit, admin);
        sioc_namespace_on(admin->nsp, "join", on_join, admin);
        sioc_namespace_on(admin->nsp, "leave", on_leave, admin);
        sioc_namespace_on(admin->nsp, "_disconnect", on_disconnect_action, admin);
    }
    if (admin->development) {
        sioc_server_observer_t observer = {.on_connection = on_socket_connection,
                                           .on_disconnect = on_socket_disconnect,
                                           .on_join = on_socket_join,
                                           .on_leave = on_socket_leave,
                                           .on_event = on_socket_event,
                                           .on_event_sent = on_socket_event_sent,
                                           .on_upgrade = on_socket_upgrade,
                                           .data = admin};
        sioc_server_observe(admin->server, &observer);
    }
}

int sioc_admin_new(sioc_server_t *server, const sioc_admin_options_t *options, sioc_admin_t **out,
                   const char **error)
{
    const char *problem = check_options(options);
    if (error != NULL)
        *error = problem;
    if (problem != NULL)
        return SIOC_EINVAL;
    sioc_admin_t *admin = calloc(1, sizeof(*admin));
    if (admin == NULL)
        return SIOC_ENOMEM;
    admin->server = server;
    admin->timer_closed = 1;
    if (copy_options(admin, options) != 0 ||
        (admin->nsp = sioc_server_of(server, admin->namespace_name)) == NULL) {
        free_admin(admin);
        return SIOC_ENOMEM;
    }
    uv_loop_t *loop = sioc_server_loop(server);
    uv_timer_init(loop, &admin->timer);
    admin->timer.data = admin;
    admin->timer_closed = 0;
    admin->started_ms = uv_now(loop);
    sioc_server_stats_t stats;
    sioc_server_stats(server, &stats);
    admin->last = stats.engine;
    register_handlers(admin);
    uv_timer_start(&admin->timer, on_timer, options->stats_interval_ms, options->stats_interval_ms);
    *out = admin;
    return 0;
}

void sioc_admin_close(sioc_admin_t *admin)
{
    if (admin == NULL || admin->closed)
        return;
    admin->closed = 1;
    if (admin->development)
        sioc_server_observe(admin->server, NULL);
    uv_close((uv_handle_t *)&admin->timer, on_timer_closed);
}
