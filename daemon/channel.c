/* Channels: namespaces from the configuration, each served by a driver, behind the
 * authentication the channel asks for. */
#include "channel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth_jwt.h"
#include "auth_session.h"
#include "log.h"

static const driver_t *const drivers[] = {
    &driver_main, &driver_chat, &driver_notifications, &driver_feed, &driver_bench, &driver_proxy,
};

const driver_t *driver_find(const char *name)
{
    for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++) {
        if (strcmp(drivers[i]->name, name) == 0)
            return drivers[i];
    }
    return NULL;
}

/* ---- who is connecting -------------------------------------------------------------------------
 */

/* A user id as the token or session gave it: a string of 1..128 bytes without NUL, or an
 * integer. Its type is kept (seed 002 compares msg.sender.id === currentUser.id). */
static json_t *id_value(json_t *value)
{
    size_t length = json_string_length(value);
    if (json_is_string(value) && length > 0 && length < CHANNEL_ID_SIZE &&
        strlen(json_string_value(value)) == length)
        return json_incref(value);
    if (json_is_integer(value))
        return json_incref(value);
    return NULL;
}

/* The profile the seeds attach to socket.user, from token claims or a session's user. */
static json_t *user_from_claims(json_t *claims)
{
    json_t *id = id_value(json_object_get(claims, "id"));
    if (id == NULL)
        id = id_value(json_object_get(claims, "sub"));
    if (id == NULL)
        return NULL;
    json_t *user = json_pack("{s:o}", "id", id);
    static const char *const profile[] = {"firstName", "lastName", "role", "avatar"};
    for (size_t i = 0; i < sizeof(profile) / sizeof(profile[0]); i++) {
        json_t *value = json_object_get(claims, profile[i]);
        json_object_set(user, profile[i], json_is_string(value) ? value : json_null());
    }
    return user;
}

static void accept_user(sioc_socket_t *socket, sioc_next_t *next, json_t *user)
{
    json_object_set_new(sioc_socket_data(socket), "user", user);
    sioc_next(next);
}

static void refuse(sioc_next_t *next, const char *reason)
{
    char message[256];
    snprintf(message, sizeof(message), "Authentication error: %s", reason);
    sioc_next_error(next, message, NULL);
}

static char *copy_bytes(const char *bytes, size_t length)
{
    char *copy = malloc(length + 1);
    if (copy != NULL) {
        memcpy(copy, bytes, length);
        copy[length] = '\0';
    }
    return copy;
}

/* The socket's handshake for one middleware call: a copy built on the first ask into *handshake
 * (NULL before; the caller json_decref()s it when the call is done), which the socket does not
 * keep: sioc_socket_handshake() would hold it for the socket's life (about 4 KB of heap per
 * session-cookie client, bench/session-idle.sh) while the daemon reads a header or the query
 * once. One copy serves every reader of the call. */
static json_t *handshake_once(sioc_socket_t *socket, json_t **handshake)
{
    if (*handshake == NULL)
        *handshake = sioc_socket_handshake_copy(socket);
    return *handshake;
}

/* handshake.headers[name] (borrowed from *handshake), or NULL. */
static json_t *handshake_header(sioc_socket_t *socket, json_t **handshake, const char *name)
{
    return json_object_get(json_object_get(handshake_once(socket, handshake), "headers"), name);
}

/* The token from auth.token (seeds 002/003), an Authorization: Bearer header, or ?token=, as a
 * copy to free(); NULL when there is none (or out of memory). handshake: as handshake_once. */
static char *find_token(sioc_socket_t *socket, json_t **handshake, size_t *length)
{
    /* Read without the auth object, which the socket would keep (about 470 bytes). */
    char *copy = sioc_socket_auth_string(socket, "token", length);
    if (copy != NULL)
        return copy;
    /* Only now: a client with auth.token never needs the handshake built. */
    const char *header = json_string_value(handshake_header(socket, handshake, "authorization"));
    if (header != NULL && strncasecmp(header, "Bearer ", 7) == 0) {
        *length = strlen(header + 7);
        return copy_bytes(header + 7, *length);
    }
    json_t *token = json_object_get(json_object_get(*handshake, "query"), "token");
    if (json_is_string(token)) {
        *length = json_string_length(token);
        return copy_bytes(json_string_value(token), *length);
    }
    return NULL;
}

/* The user a JWT proves (claims checked), or NULL with message. */
static json_t *jwt_user(channel_t *channel, const char *token, size_t length, const char **message)
{
    if (channel->daemon->jwt == NULL) {
        *message = "Token not provided"; /* no JWT configured: a session is the only proof */
        return NULL;
    }
    json_t *claims =
        auth_jwt_verify(channel->daemon->jwt, token, length, (int64_t)time(NULL), message);
    if (claims == NULL)
        return NULL;
    json_t *user = user_from_claims(claims);
    json_decref(claims);
    if (user == NULL)
        *message = "token has no user id (id or sub)";
    return user;
}

static void authenticate_jwt(channel_t *channel, sioc_socket_t *socket, json_t **handshake,
                             sioc_next_t *next)
{
    size_t length;
    char *token = find_token(socket, handshake, &length);
    const char *message = "Token not provided";
    json_t *user = token != NULL ? jwt_user(channel, token, length, &message) : NULL;
    free(token);
    if (user == NULL)
        refuse(next, message);
    else
        accept_user(socket, next, user);
}

/* The user of a passport session, or NULL. */
static json_t *session_user(json_t *session)
{
    json_t *passport_user = json_object_get(json_object_get(session, "passport"), "user");
    if (passport_user == NULL)
        return NULL;
    /* passport serializes a user as an id or as an object holding one. */
    json_t *wrapped = json_is_object(passport_user) ? json_incref(passport_user)
                                                    : json_pack("{s:O}", "id", passport_user);
    json_t *user = user_from_claims(wrapped);
    json_decref(wrapped);
    return user;
}

/* A session lookup in flight. A connection's (next != NULL) keeps the socket and next, valid
 * until sioc_next / sioc_next_error (the middleware contract); a later binding's (bound !=
 * NULL) finds the socket again by id, since it may go away meanwhile. */
typedef struct session_lookup_s {
    daemon_t *daemon;      /* outlives the channels: stopping tells whether nsp is still there */
    sioc_namespace_t *nsp; /* a binding's */
    sioc_socket_t *socket;
    sioc_next_t *next;
    int optional; /* a connection without a user is admitted, anonymous */
    channel_bound_cb bound;
    void *data;
    char session_id[256];
    char socket_id[]; /* empty without bound; an EIO3 client's id outside "/" is long */
} session_lookup_t;

static void on_session(json_t *session, const char *message, void *data)
{
    session_lookup_t *lookup = data;
    json_t *user = session != NULL ? session_user(session) : NULL;
    const char *problem = session == NULL ? message : "no user in this session";
    sioc_socket_t *socket = lookup->socket;
    if (lookup->bound != NULL)
        socket =
            lookup->daemon->stopping ? NULL : sioc_namespace_socket(lookup->nsp, lookup->socket_id);
    if (socket != NULL && session != NULL)
        json_object_set_new(sioc_socket_data(socket), "sessionId", json_string(lookup->session_id));
    if (lookup->bound != NULL) {
        if (socket != NULL && user != NULL)
            json_object_set_new(sioc_socket_data(socket), "user", user);
        else
            json_decref(user);
        lookup->bound(socket, user != NULL ? NULL : problem, lookup->data);
    } else if (user != NULL) {
        accept_user(socket, lookup->next, user);
    } else if (lookup->optional) {
        sioc_next(lookup->next); /* anonymous, session known when it exists */
    } else {
        refuse(lookup->next, problem);
    }
    free(lookup);
}

/* The session id of the socket's handshake cookie (signature checked) into lookup, or -1
 * with message. handshake: as handshake_once. */
static int cookie_session(channel_t *channel, sioc_socket_t *socket, json_t **handshake,
                          session_lookup_t *lookup, const char **message)
{
    const config_t *config = channel->daemon->config;
    const char *cookie = json_string_value(handshake_header(socket, handshake, "cookie"));
    *message = "no session cookie";
    if (cookie == NULL || channel->daemon->sessions == NULL)
        return -1;
    size_t secret_count = 0;
    while (config->session.secrets[secret_count] != NULL)
        secret_count++;
    return auth_session_cookie_id(cookie, strlen(cookie), config->session.cookie_name,
                                  (const char *const *)config->session.secrets, secret_count,
                                  lookup->session_id, sizeof(lookup->session_id), message);
}

static void authenticate_session(channel_t *channel, sioc_socket_t *socket, json_t **handshake,
                                 sioc_next_t *next, int optional)
{
    session_lookup_t *lookup = calloc(1, sizeof(*lookup));
    const char *message = "out of memory";
    if (lookup == NULL || cookie_session(channel, socket, handshake, lookup, &message) != 0) {
        free(lookup);
        if (optional)
            sioc_next(next);
        else
            refuse(next, message);
        return;
    }
    lookup->daemon = channel->daemon;
    lookup->socket = socket;
    lookup->next = next;
    lookup->optional = optional;
    auth_session_store_get(channel->daemon->sessions, lookup->session_id, on_session, lookup);
}

/* The middleware of a channel with auth. Its readers share one handshake copy (handshake_once),
 * given back when it returns. */
static void authenticate(sioc_socket_t *socket, sioc_next_t *next, void *data)
{
    channel_t *channel = data;
    json_t *handshake = NULL;
    size_t length;
    int token = 0, cookie = 0;
    if (channel->config->auth == CONFIG_AUTH_ANY || channel->config->auth == CONFIG_AUTH_OPTIONAL) {
        char *found = find_token(socket, &handshake, &length);
        token = found != NULL;
        free(found);
    }
    if (channel->config->auth == CONFIG_AUTH_ANY && !token)
        cookie = handshake_header(socket, &handshake, "cookie") != NULL &&
                 channel->daemon->sessions != NULL;
    switch (channel->config->auth) {
    case CONFIG_AUTH_NONE:
        sioc_next(next);
        break;
    case CONFIG_AUTH_JWT:
        authenticate_jwt(channel, socket, &handshake, next);
        break;
    case CONFIG_AUTH_SESSION:
        authenticate_session(channel, socket, &handshake, next, 0);
        break;
    case CONFIG_AUTH_ANY:
        if (!token && (cookie || channel->daemon->jwt == NULL))
            authenticate_session(channel, socket, &handshake, next, 0);
        else
            authenticate_jwt(channel, socket, &handshake, next);
        break;
    case CONFIG_AUTH_OPTIONAL:
        /* A proof the client brings is checked (a bad token is refused); none is anonymous. */
        if (token)
            authenticate_jwt(channel, socket, &handshake, next);
        else
            authenticate_session(channel, socket, &handshake, next, 1);
        break;
    }
    /* The socket may be gone after sioc_next: the copy is the caller's own, not the socket's. */
    json_decref(handshake);
}

void channel_bind_user(channel_t *channel, sioc_socket_t *socket, json_t *token,
                       channel_bound_cb done, void *data)
{
    const char *message = "no session cookie";
    if (json_is_string(token)) {
        json_t *user =
            jwt_user(channel, json_string_value(token), json_string_length(token), &message);
        if (user != NULL)
            json_object_set_new(sioc_socket_data(socket), "user", user);
        done(socket, user != NULL ? NULL : message, data);
        return;
    }
    session_lookup_t *lookup = calloc(1, sizeof(*lookup) + strlen(sioc_socket_id(socket)) + 1);
    json_t *handshake = NULL;
    int found =
        lookup != NULL && cookie_session(channel, socket, &handshake, lookup, &message) == 0;
    json_decref(handshake); /* the session id is in lookup now */
    if (!found) {
        free(lookup);
        done(socket, lookup == NULL ? "out of memory" : message, data);
        return;
    }
    lookup->daemon = channel->daemon;
    lookup->nsp = channel->nsp;
    lookup->bound = done;
    lookup->data = data;
    strcpy(lookup->socket_id, sioc_socket_id(socket));
    auth_session_store_get(channel->daemon->sessions, lookup->session_id, on_session, lookup);
}

/* ---- set-up -------------------------------------------------------------------------------------
 */

int channel_check_all(const config_t *config, char *error, size_t error_size)
{
    for (size_t i = 0; i < config->channel_count; i++) {
        const config_channel_t *channel = &config->channels[i];
        const driver_t *driver = driver_find(channel->driver);
        if (driver == NULL) {
            snprintf(error, error_size, "%s:%d: channels.\"%s\".driver: no driver \"%s\"",
                     config->file, channel->line, channel->name, channel->driver);
            return -1;
        }
        if (driver->check != NULL && driver->check(config, channel, error, error_size) != 0)
            return -1;
    }
    return 0;
}

/* First middleware of every channel: a channel turned off by a SIGHUP answers as a namespace
 * that does not exist would (Node's CONNECT_ERROR {"message":"Invalid namespace"}). */
static void refuse_when_disabled(sioc_socket_t *socket, sioc_next_t *next, void *data)
{
    channel_t *channel = data;
    if (channel->disabled)
        sioc_next_error(next, "Invalid namespace", NULL);
    else
        sioc_next(next);
}

/* Last middleware of every channel unless auth.keepHandshakeAuth: once the authentication and
 * the driver's own middlewares (the proxy's connect request sends the auth to the back end)
 * have read the CONNECT's auth, no part of the daemon reads it again (drivers take the user
 * from socket.data), so the socket gives back its text: a JWT's 200 to 300 bytes per socket.
 * fetchSockets (a cluster's other nodes, Node ones too) then finds handshake.auth {}. */
static void release_auth(sioc_socket_t *socket, sioc_next_t *next, void *data)
{
    sioc_socket_auth_release(socket);
    sioc_next(next);
}

/* Creates the namespace of one enabled channel, behind its authentication, and starts its
 * driver. daemon->channels has room for every configured channel. */
static int setup_channel(daemon_t *daemon, const config_channel_t *channel_config, char *error,
                         size_t error_size)
{
    const config_t *config = daemon->config;
    channel_t *channel = &daemon->channels[daemon->channel_count++];
    channel->daemon = daemon;
    channel->config = channel_config;
    channel->driver = driver_find(channel_config->driver);
    channel->nsp = sioc_server_of(daemon->io, channel_config->name);
    if (channel->driver == NULL || channel->nsp == NULL) {
        snprintf(error, error_size, "%s:%d: channel %s: no driver \"%s\"", config->file,
                 channel_config->line, channel_config->name, channel_config->driver);
        return -1;
    }
    sioc_namespace_use(channel->nsp, refuse_when_disabled, channel);
    if (channel_config->auth != CONFIG_AUTH_NONE)
        sioc_namespace_use(channel->nsp, authenticate, channel);
    if (channel->driver->setup(channel, error, error_size) != 0)
        return -1;
    if (!config->keep_handshake_auth)
        sioc_namespace_use(channel->nsp, release_auth, NULL);
    log_info("channel %s: driver %s, auth %s", channel_config->name, channel_config->driver,
             (const char *[]){"none", "jwt", "session", "any", "optional"}[channel_config->auth]);
    return 0;
}

int channel_setup_all(daemon_t *daemon, char *error, size_t error_size)
{
    const config_t *config = daemon->config;
    if (channel_check_all(config, error, error_size) != 0)
        return -1;
    daemon->channels = calloc(config->channel_count + 1, sizeof(channel_t));
    if (daemon->channels == NULL)
        return -1;
    for (size_t i = 0; i < config->channel_count; i++) {
        /* A disabled channel's namespace does not exist: "Invalid namespace". */
        if (config->channels[i].enabled &&
            setup_channel(daemon, &config->channels[i], error, error_size) != 0)
            return -1;
    }
    return 0;
}

int channel_set_enabled(daemon_t *daemon, config_channel_t *config, int enabled, char *error,
                        size_t error_size)
{
    channel_t *channel = NULL;
    for (size_t i = 0; i < daemon->channel_count; i++)
        if (daemon->channels[i].config == config)
            channel = &daemon->channels[i];
    config->enabled = enabled;
    if (channel == NULL) {
        if (!enabled)
            return 0;
        if (setup_channel(daemon, config, error, error_size) == 0)
            return 0;
        /* Its namespace may exist by now: it refuses connections, as the file said before. */
        daemon->channels[daemon->channel_count - 1].disabled = 1;
        config->enabled = 0;
        return -1;
    }
    channel->disabled = !enabled;
    if (enabled)
        return 0;
    int count = (int)sioc_namespace_socket_count(channel->nsp);
    sioc_broadcast_t everyone;
    sioc_broadcast_init(&everyone, channel->nsp);
    everyone.flags |= SIOC_BROADCAST_LOCAL; /* each node applies its own file */
    sioc_broadcast_disconnect(&everyone, 0);
    return count;
}

void channel_teardown_all(daemon_t *daemon)
{
    for (size_t i = 0; i < daemon->channel_count; i++) {
        channel_t *channel = &daemon->channels[i];
        if (channel->driver->teardown != NULL)
            channel->driver->teardown(channel);
    }
    free(daemon->channels);
    daemon->channels = NULL;
    daemon->channel_count = 0;
}

channel_t *channel_find(daemon_t *daemon, const char *name)
{
    for (size_t i = 0; i < daemon->channel_count; i++) {
        if (!daemon->channels[i].disabled && strcmp(daemon->channels[i].config->name, name) == 0)
            return &daemon->channels[i];
    }
    return NULL;
}

json_t *channel_user(sioc_socket_t *socket)
{
    json_t *user = json_object_get(sioc_socket_data(socket), "user");
    return json_is_object(user) ? user : NULL;
}

int channel_user_id_text(sioc_socket_t *socket, char out[CHANNEL_ID_SIZE])
{
    return channel_id_text_of(channel_user(socket), out);
}

int channel_id_text_of(json_t *user, char out[CHANNEL_ID_SIZE])
{
    json_t *id = json_object_get(user, "id");
    out[0] = '\0';
    if (json_is_integer(id))
        snprintf(out, CHANNEL_ID_SIZE, "%" JSON_INTEGER_FORMAT, json_integer_value(id));
    else if (json_is_string(id))
        snprintf(out, CHANNEL_ID_SIZE, "%s", json_string_value(id));
    return out[0] != '\0' ? 0 : -1;
}

void channel_reply_error(sioc_socket_t *socket, const sioc_event_t *event, const char *error_event,
                         const char *code, const char *message)
{
    if (event != NULL && event->ack_id >= 0) {
        sioc_socket_ack(
            socket, event->ack_id,
            json_pack("[{s:b,s:{s:s,s:s}}]", "ok", 0, "error", "code", code, "message", message));
        return;
    }
    sioc_socket_emit(socket, error_event,
                     json_pack("[{s:s,s:s}]", "code", code, "message", message));
}

void channel_reply_ok(sioc_socket_t *socket, const sioc_event_t *event, json_t *result)
{
    if (event == NULL || event->ack_id < 0) {
        json_decref(result);
        return;
    }
    json_t *answer = json_pack("{s:b}", "ok", 1);
    if (json_is_object(result))
        json_object_update(answer, result);
    json_decref(result);
    sioc_socket_ack(socket, event->ack_id, json_pack("[o]", answer));
}
