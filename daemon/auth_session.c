/* Express session cookies and the connect-redis session store; see auth_session.h.
 *
 * Cookie parsing follows npm's cookie 0.7 (what express-session 1.18 parses with) and
 * cookie-signature's unsign, so a cookie Express accepts is accepted here and nothing else.
 * The store keeps one hiredis connection on the daemon's loop; when Redis goes away, requests
 * fail at once ("session store unavailable") while it reconnects with exponential backoff. */
#include "auth_session.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sioc_adapter.h>

#include "log.h"

#define HMAC_SHA256_BYTES 32
#define SIGNATURE_LENGTH 43 /* base64 of 32 bytes, its one '=' removed */

#define MESSAGE_NO_COOKIE "no session cookie"
#define MESSAGE_UNSIGNED "unsigned session cookie"
#define MESSAGE_BAD_SIGNATURE "invalid session cookie signature"
#define MESSAGE_TOO_LONG "session cookie too long"
#define MESSAGE_NOT_FOUND "session not found"
#define MESSAGE_UNAVAILABLE "session store unavailable"
#define MESSAGE_MALFORMED "malformed session"

/* ---- Cookie header ------------------------------------------------------------------------- */

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Narrows [*start, *end) by the spaces and tabs at both ends. */
static void trim(const char **start, const char **end)
{
    while (*start < *end && is_blank(**start))
        (*start)++;
    while (*end > *start && is_blank((*end)[-1]))
        (*end)--;
}

/* The first pair named name, as cookie 0.7's parse finds it: pairs split on ';', pairs without
 * '=' skipped, name and value trimmed of spaces and tabs, a value in double quotes unquoted (a
 * lone '"' counts as both quotes, leaving ""). 0 with the value as a view, or -1. */
static int cookie_find(const char *header, size_t length, const char *name, const char **value,
                       size_t *value_length)
{
    const char *end = header + length;
    size_t name_length = strlen(name);
    for (const char *pair = header; pair < end;) {
        const char *pair_end = memchr(pair, ';', (size_t)(end - pair));
        if (pair_end == NULL)
            pair_end = end;
        const char *equals = memchr(pair, '=', (size_t)(pair_end - pair));
        const char *key = pair, *key_end = equals;
        if (equals != NULL)
            trim(&key, &key_end);
        if (equals != NULL && (size_t)(key_end - key) == name_length &&
            memcmp(key, name, name_length) == 0) {
            const char *start = equals + 1, *stop = pair_end;
            trim(&start, &stop);
            if (stop > start && *start == '"' && stop[-1] == '"') {
                start++;
                stop = stop > start ? stop - 1 : start;
            }
            *value = start;
            *value_length = (size_t)(stop - start);
            return 0;
        }
        pair = pair_end + 1;
    }
    return -1;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The byte of the "%XX" at text, or -1. */
static int escape_byte(const char *text, size_t length)
{
    if (length < 3 || text[0] != '%')
        return -1;
    int high = hex_digit(text[1]), low = hex_digit(text[2]);
    return high < 0 || low < 0 ? -1 : high << 4 | low;
}

/* One UTF-8 character escaped whole ("%C3%A9"), lead being its first byte: as JavaScript's
 * decodeURIComponent, the character must be valid (no overlong form, no surrogate, at most
 * U+10FFFF). Writes its bytes to out; returns the input bytes used, or -1. */
static long escaped_character_decode(const char *text, size_t length, int lead, char *out)
{
    static const uint32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
    int count = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 0;
    if (count == 0 || lead > 0xF4)
        return -1;
    uint32_t code_point = (uint32_t)lead & (0x7Fu >> count);
    out[0] = (char)lead;
    for (int i = 1; i < count; i++) {
        size_t offset = 3 * (size_t)i;
        int byte = offset < length ? escape_byte(text + offset, length - offset) : -1;
        if (byte < 0 || (byte & 0xC0) != 0x80)
            return -1;
        code_point = code_point << 6 | (uint32_t)(byte & 0x3F);
        out[i] = (char)byte;
    }
    if (code_point < smallest[count] || code_point > 0x10FFFF ||
        (code_point >= 0xD800 && code_point <= 0xDFFF))
        return -1;
    return 3 * count;
}

/* decodeURIComponent on bytes; out holds length bytes. Returns the decoded length, or -1 where
 * JavaScript throws (cookie then keeps the raw value). Bytes that are not escaped are copied:
 * Node would read them as Latin-1, browsers never send them (express-session escapes). */
static long percent_decode(const char *text, size_t length, char *out)
{
    size_t written = 0;
    for (size_t i = 0; i < length;) {
        if (text[i] != '%') {
            out[written++] = text[i++];
            continue;
        }
        int byte = escape_byte(text + i, length - i);
        long used = 3;
        if (byte < 0)
            return -1;
        if (byte < 0x80)
            out[written++] = (char)byte;
        else if ((used = escaped_character_decode(text + i, length - i, byte, out + written)) < 0)
            return -1;
        else
            written += (size_t)used / 3;
        i += (size_t)used;
    }
    return (long)written;
}

/* cookie-signature: base64(HMAC-SHA256(secret, value)) with its trailing '=' removed, compared
 * in constant time. */
static int signature_matches(const char *value, size_t value_length, const char *signature,
                             size_t signature_length, const char *secret)
{
    unsigned char mac[HMAC_SHA256_BYTES];
    unsigned char expected[4 * HMAC_SHA256_BYTES / 3 + 4];
    size_t mac_length = 0;
    if (signature_length != SIGNATURE_LENGTH || secret == NULL)
        return 0;
    if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, secret, strlen(secret),
                  (const unsigned char *)value, value_length, mac, sizeof(mac),
                  &mac_length) == NULL ||
        mac_length != sizeof(mac))
        return 0;
    EVP_EncodeBlock(expected, mac, (int)mac_length);
    return CRYPTO_memcmp(expected, signature, SIGNATURE_LENGTH) == 0;
}

/* cookie-signature's unsign against each secret: the id is what precedes the last '.'. Returns
 * the id's length, or -1. */
static long signed_value_check(const char *value, size_t length, const char *const *secrets,
                               size_t secret_count)
{
    const char *dot = NULL;
    for (size_t i = length; i > 0 && dot == NULL; i--)
        if (value[i - 1] == '.')
            dot = value + i - 1;
    if (dot == NULL)
        return -1;
    size_t id_length = (size_t)(dot - value);
    size_t signature_length = length - id_length - 1;
    for (size_t i = 0; i < secret_count; i++)
        if (signature_matches(value, id_length, dot + 1, signature_length, secrets[i]))
            return (long)id_length;
    return -1;
}

int auth_session_cookie_id(const char *cookie_header, size_t header_length, const char *cookie_name,
                           const char *const *secrets, size_t secret_count, char *out,
                           size_t out_size, const char **message)
{
    const char *raw;
    size_t raw_length;
    char value[AUTH_SESSION_COOKIE_MAX_LENGTH];
    if (cookie_header == NULL ||
        cookie_find(cookie_header, header_length, cookie_name, &raw, &raw_length) != 0 ||
        raw_length == 0) {
        *message = MESSAGE_NO_COOKIE; /* express-session treats an empty value as no cookie */
        return -1;
    }
    if (raw_length > sizeof(value)) {
        *message = MESSAGE_TOO_LONG;
        return -1;
    }
    long length = percent_decode(raw, raw_length, value);
    if (length < 0) {
        memcpy(value, raw, raw_length);
        length = (long)raw_length;
    }
    if (length < 2 || memcmp(value, "s:", 2) != 0) {
        *message = MESSAGE_UNSIGNED;
        return -1;
    }
    long id_length = signed_value_check(value + 2, (size_t)length - 2, secrets, secret_count);
    /* A NUL inside would cut the id short; express-session never issues one. */
    if (id_length < 0 || memchr(value + 2, '\0', (size_t)id_length) != NULL) {
        *message = MESSAGE_BAD_SIGNATURE;
        return -1;
    }
    if (id_length == 0) {
        *message = MESSAGE_NO_COOKIE; /* passport.socketio: an empty id is no session */
        return -1;
    }
    if ((size_t)id_length >= out_size) {
        *message = MESSAGE_TOO_LONG;
        return -1;
    }
    memcpy(out, value + 2, (size_t)id_length);
    out[id_length] = '\0';
    return 0;
}

/* ---- Redis session store ------------------------------------------------------------------- */

#define RECONNECT_FIRST_MS 100
#define RECONNECT_MAX_MS 5000
#define DEFAULT_REQUEST_TIMEOUT_MS 5000 /* a GET this late means Redis is stuck: reconnect */

typedef struct session_request_s session_request_t;

typedef struct request_list_s {
    session_request_t *head, *tail;
} request_list_t;

struct session_request_s {
    auth_session_store_t *store;
    auth_session_cb callback;
    void *data;
    uint64_t sent_at; /* uv_now() */
    session_request_t *previous, *next;
    size_t key_length;
    char key[]; /* prefix + session id */
};

struct auth_session_store_s {
    uv_loop_t *loop;
    char *host, *prefix, *password;
    int port;
    redisAsyncContext *redis; /* NULL while waiting to reconnect */
    int connected;            /* redis has finished connecting (for /readyz) */
    uv_timer_t reconnect_timer;
    uv_timer_t request_timer; /* calls back refused requests; watches the oldest in flight */
    uint64_t backoff_ms;
    uint64_t request_timeout_ms;
    request_list_t in_flight; /* sent to Redis, oldest first (Redis answers in order) */
    request_list_t refused;   /* to be called back from the loop, never from inside get() */
    int closing;
    int in_request_timer; /* on_request_timer is running: it re-arms itself when done */
    int open_handles;
};

static void list_push(request_list_t *list, session_request_t *request)
{
    request->previous = list->tail;
    request->next = NULL;
    if (list->tail != NULL)
        list->tail->next = request;
    else
        list->head = request;
    list->tail = request;
}

static void list_remove(request_list_t *list, session_request_t *request)
{
    if (request->previous != NULL)
        request->previous->next = request->next;
    else
        list->head = request->next;
    if (request->next != NULL)
        request->next->previous = request->previous;
    else
        list->tail = request->previous;
    request->previous = request->next = NULL;
}

/* The one place a request ends: its callback runs, then it is freed. */
static void request_finish(session_request_t *request, json_t *session, const char *message)
{
    request->callback(session, message, request->data);
    free(request);
}

/* Calls back every request of list with message, emptying it first: callbacks may add more. */
static void list_fail(request_list_t *list, const char *message)
{
    session_request_t *request = list->head;
    list->head = list->tail = NULL;
    while (request != NULL) {
        session_request_t *next = request->next;
        request_finish(request, NULL, message);
        request = next;
    }
}

/* Refused requests are called back on the next loop iteration; otherwise the timer fires when
 * the oldest request in flight reaches its timeout. */
static void request_timer_arm(auth_session_store_t *store, uint64_t minimum_ms);
static void reconnect_schedule(auth_session_store_t *store);

static void connection_drop(auth_session_store_t *store)
{
    redisAsyncContext *redis = store->redis;
    store->redis = NULL;
    store->connected = 0;
    redis->data = NULL; /* its connect/disconnect callbacks are ours no more */
    /* Every command still queued gets its reply callback with NULL, once; inside a hiredis
     * callback the free is deferred until it returns. */
    redisAsyncFree(redis);
}

static void on_request_timer(uv_timer_t *timer)
{
    auth_session_store_t *store = timer->data;
    store->in_request_timer = 1;
    list_fail(&store->refused, MESSAGE_UNAVAILABLE);
    session_request_t *oldest = store->in_flight.head;
    if (oldest != NULL && store->redis != NULL &&
        uv_now(store->loop) - oldest->sent_at >= store->request_timeout_ms) {
        log_warn("session store: redis %s:%d gave no reply in %llu ms; reconnecting", store->host,
                 store->port, (unsigned long long)store->request_timeout_ms);
        connection_drop(store);
        reconnect_schedule(store);
    }
    store->in_request_timer = 0;
    /* libuv 1.44 runs a timer re-armed with 0 from its own callback again at once, before any
     * I/O: a caller retrying on each refusal would spin. 1 ms lets the loop poll first. */
    request_timer_arm(store, 1);
}

static void request_timer_arm(auth_session_store_t *store, uint64_t minimum_ms)
{
    if (store->closing || store->in_request_timer)
        return; /* on_request_timer re-arms when it is done */
    uint64_t timeout;
    if (store->refused.head != NULL) {
        timeout = 0;
    } else if (store->in_flight.head != NULL) {
        uint64_t age = uv_now(store->loop) - store->in_flight.head->sent_at;
        timeout = age >= store->request_timeout_ms ? 0 : store->request_timeout_ms - age;
    } else {
        uv_timer_stop(&store->request_timer);
        return;
    }
    uv_timer_start(&store->request_timer, on_request_timer,
                   timeout > minimum_ms ? timeout : minimum_ms, 0);
}

/* What connect-redis stored: a JSON object as a string. On success *session is a new reference. */
static const char *session_from_reply(const redisReply *reply, json_t **session)
{
    *session = NULL;
    if (reply == NULL)
        return MESSAGE_UNAVAILABLE; /* connection lost or store freed */
    if (reply->type == REDIS_REPLY_NIL)
        return MESSAGE_NOT_FOUND;
    if (reply->type == REDIS_REPLY_ERROR)
        return strncmp(reply->str, "WRONGTYPE", 9) == 0 ? MESSAGE_MALFORMED : MESSAGE_UNAVAILABLE;
    if (reply->type != REDIS_REPLY_STRING)
        return MESSAGE_MALFORMED;
    *session = json_loadb(reply->str, reply->len, 0, NULL);
    if (*session != NULL && json_is_object(*session))
        return NULL;
    json_decref(*session);
    *session = NULL;
    return MESSAGE_MALFORMED;
}

static void on_get_reply(redisAsyncContext *redis, void *reply, void *data)
{
    session_request_t *request = data;
    auth_session_store_t *store = request->store;
    json_t *session;
    const char *message = session_from_reply(reply, &session);
    list_remove(&store->in_flight, request);
    request_finish(request, session, message);
    json_decref(session);
    request_timer_arm(store, 0);
}

/* A refused AUTH (WRONGPASS) or PING (NOAUTH: requirepass and no password in the URL) drops
 * the connection: the GETs behind it would all fail, and retrying later may meet a fixed
 * password. Logged once per outage (the first retry is the shortest), then at debug level. */
static int refused(auth_session_store_t *store, redisAsyncContext *redis, const redisReply *reply,
                   const char *command)
{
    if (reply == NULL || store->redis != redis)
        return 1;
    if (reply->type != REDIS_REPLY_ERROR)
        return 0;
    log_write(store->backoff_ms == RECONNECT_FIRST_MS ? LOG_ERROR : LOG_DEBUG,
              "session store: redis %s:%d refused %s: %s; retrying in %llu ms", store->host,
              store->port, command, reply->str, (unsigned long long)store->backoff_ms);
    connection_drop(store);
    reconnect_schedule(store);
    return 1;
}

static void on_auth_reply(redisAsyncContext *redis, void *reply, void *data)
{
    refused(data, redis, reply, "AUTH");
}

/* A Redis with requirepass accepts the connection and refuses every command: the store is
 * connected once the PING queued behind the AUTH is answered. */
static void on_ready_reply(redisAsyncContext *redis, void *reply_data, void *data)
{
    auth_session_store_t *store = data;
    if (refused(store, redis, reply_data, "PING"))
        return;
    store->connected = 1;
    if (store->backoff_ms > RECONNECT_FIRST_MS)
        log_info("session store: connected to redis %s:%d", store->host, store->port);
    store->backoff_ms = RECONNECT_FIRST_MS;
}

/* Warns once per outage (the first retry is the shortest), then only at debug level. */
static void connect_failure_log(const auth_session_store_t *store, const char *reason)
{
    log_write(store->backoff_ms == RECONNECT_FIRST_MS ? LOG_WARN : LOG_DEBUG,
              "session store: cannot connect to redis %s:%d: %s; retrying in %llu ms", store->host,
              store->port, reason, (unsigned long long)store->backoff_ms);
}

static void on_connect(const redisAsyncContext *redis, int status)
{
    auth_session_store_t *store = redis->data;
    if (store == NULL)
        return;
    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback. */
        connect_failure_log(store, redis->errstr);
        store->redis = NULL;
        store->connected = 0;
        reconnect_schedule(store);
        return;
    }
    /* connected once the PING queued in connection_open is answered */
}

static void on_disconnect(const redisAsyncContext *redis, int status)
{
    auth_session_store_t *store = redis->data;
    if (store == NULL)
        return;
    log_warn("session store: lost redis %s:%d: %s; reconnecting", store->host, store->port,
             status == REDIS_OK ? "closed" : redis->errstr);
    store->redis = NULL; /* hiredis frees the context after this callback */
    store->connected = 0;
    reconnect_schedule(store);
}

/* Starts a connection; commands may be queued on it at once (hiredis sends them once
 * connected, or fails them). 0, or -1 when it could not even start. */
static int connection_open(auth_session_store_t *store)
{
    redisAsyncContext *redis = redisAsyncConnect(store->host, store->port);
    if (redis == NULL)
        return -1;
    /* libsioc's glue, not hiredis 0.14's adapters/libuv.h: that one drops libuv's error status,
     * so a refused connect or a reset would leave the store connecting for ever. */
    if (redis->err != 0 || sioc_redis_attach(redis, store->loop) != 0) {
        connect_failure_log(store, redis->err != 0 ? redis->errstr : "libuv attach failed");
        redisAsyncFree(redis);
        return -1;
    }
    redis->data = store;
    /* After the attach: hiredis 0.14 asks for the first write event here, which is how it
     * learns that connect(2) finished. */
    redisAsyncSetConnectCallback(redis, on_connect);
    redisAsyncSetDisconnectCallback(redis, on_disconnect);
    if (store->password != NULL)
        redisAsyncCommand(redis, on_auth_reply, store, "AUTH %s", store->password);
    redisAsyncCommand(redis, on_ready_reply, store, "PING");
    store->redis = redis;
    store->connected = 0;
    return 0;
}

static void on_reconnect_timer(uv_timer_t *timer)
{
    auth_session_store_t *store = timer->data;
    if (store->closing || store->redis != NULL)
        return;
    if (connection_open(store) != 0)
        reconnect_schedule(store);
}

/* Exponential backoff from RECONNECT_FIRST_MS to RECONNECT_MAX_MS; reset once connected. */
static void reconnect_schedule(auth_session_store_t *store)
{
    if (store->closing)
        return;
    uv_timer_start(&store->reconnect_timer, on_reconnect_timer, store->backoff_ms, 0);
    store->backoff_ms =
        store->backoff_ms * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS : store->backoff_ms * 2;
}

static char *copy_or_null(const char *text)
{
    return text != NULL ? strdup(text) : NULL;
}

auth_session_store_t *auth_session_store_new(uv_loop_t *loop, const auth_session_options_t *options,
                                             char *error, size_t error_size)
{
    auth_session_store_t *store = calloc(1, sizeof(*store));
    if (store == NULL)
        goto err;
    store->loop = loop;
    store->host = strdup(options->redis_host != NULL ? options->redis_host : "127.0.0.1");
    store->port = options->redis_port > 0 ? options->redis_port : 6379;
    store->prefix = strdup(options->redis_prefix != NULL ? options->redis_prefix : "sess:");
    store->password = copy_or_null(options->redis_password);
    store->backoff_ms = RECONNECT_FIRST_MS;
    store->request_timeout_ms =
        options->request_timeout_ms > 0 ? options->request_timeout_ms : DEFAULT_REQUEST_TIMEOUT_MS;
    if (store->host == NULL || store->prefix == NULL ||
        (options->redis_password != NULL && store->password == NULL))
        goto err;
    uv_timer_init(loop, &store->reconnect_timer);
    uv_timer_init(loop, &store->request_timer);
    store->reconnect_timer.data = store->request_timer.data = store;
    store->open_handles = 2;
    /* Redis being down at start is not fatal: the daemon serves JWT users and retries. */
    if (connection_open(store) != 0)
        reconnect_schedule(store);
    return store;
err:
    snprintf(error, error_size, "out of memory");
    if (store != NULL) {
        free(store->host);
        free(store->prefix);
        free(store->password);
    }
    free(store);
    return NULL;
}

static session_request_t *request_new(auth_session_store_t *store, const char *session_id,
                                      auth_session_cb callback, void *data)
{
    size_t prefix_length = strlen(store->prefix), id_length = strlen(session_id);
    session_request_t *request = malloc(sizeof(*request) + prefix_length + id_length + 1);
    if (request == NULL)
        return NULL;
    *request = (session_request_t){.store = store, .callback = callback, .data = data};
    request->sent_at = uv_now(store->loop);
    request->key_length = prefix_length + id_length;
    memcpy(request->key, store->prefix, prefix_length);
    memcpy(request->key + prefix_length, session_id, id_length + 1);
    return request;
}

void auth_session_store_get(auth_session_store_t *store, const char *session_id,
                            auth_session_cb callback, void *data)
{
    /* Asked from a callback the store's free is making: no loop iteration is left to defer to. */
    session_request_t *request =
        store->closing ? NULL : request_new(store, session_id, callback, data);
    if (request == NULL) {
        callback(NULL, MESSAGE_UNAVAILABLE, data); /* closing, or out of memory */
        return;
    }
    const char *argv[] = {"GET", request->key};
    const size_t lengths[] = {3, request->key_length};
    if (store->redis != NULL &&
        redisAsyncCommandArgv(store->redis, on_get_reply, request, 2, argv, lengths) == REDIS_OK)
        list_push(&store->in_flight, request);
    else
        list_push(&store->refused, request);
    request_timer_arm(store, 0);
}

static void on_timer_closed(uv_handle_t *handle)
{
    auth_session_store_t *store = handle->data;
    if (--store->open_handles > 0)
        return;
    free(store->host);
    free(store->prefix);
    if (store->password != NULL)
        OPENSSL_cleanse(store->password, strlen(store->password));
    free(store->password);
    free(store);
}

void auth_session_store_free(auth_session_store_t *store)
{
    if (store == NULL || store->closing)
        return;
    store->closing = 1;
    if (store->redis != NULL)
        connection_drop(store);
    list_fail(&store->refused, MESSAGE_UNAVAILABLE);
    uv_close((uv_handle_t *)&store->reconnect_timer, on_timer_closed);
    uv_close((uv_handle_t *)&store->request_timer, on_timer_closed);
}

int auth_session_store_connected(const auth_session_store_t *store)
{
    return store->redis != NULL && store->connected;
}
