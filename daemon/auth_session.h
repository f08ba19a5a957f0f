/* Express session cookies, as passport.socketio reads them (seed 001): the signed cookie
 * "s:<sessionId>.<signature>" (cookie-signature: base64 HMAC-SHA256 of the id, '=' stripped,
 * compared in constant time, any of several secrets for rotation, the first one current), and
 * the session JSON that connect-redis stored under "<prefix><sessionId>" (default prefix
 * "sess:"); the user is session.passport.user.
 *
 * Cookie parsing and signature checking are pure (auth_session_cookie_id) and follow npm's
 * cookie 0.7 and cookie-signature, as express-session uses them; the Redis lookup runs on
 * hiredis' libuv adapter, asynchronously. */
#ifndef SIOC_DAEMON_AUTH_SESSION_H
#define SIOC_DAEMON_AUTH_SESSION_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* A cookie value longer than this (raw, before percent-decoding) is refused: browsers keep
 * cookies to 4096 bytes. */
#define AUTH_SESSION_COOKIE_MAX_LENGTH 4096

/* Finds cookie_name in a Cookie header (the first pair with that name; value trimmed, unquoted,
 * percent-decoded like decodeURIComponent unless that would throw), checks the "s:" signature
 * against each secret. Writes the session id (NUL-terminated) into out and returns 0, or
 * returns -1 with *message: "no session cookie" (absent, or empty value or id), "unsigned
 * session cookie", "invalid session cookie signature", "session cookie too long" (value over
 * AUTH_SESSION_COOKIE_MAX_LENGTH, or an id that does not fit out). */
int auth_session_cookie_id(const char *cookie_header, size_t header_length, const char *cookie_name,
                           const char *const *secrets, size_t secret_count, char *out,
                           size_t out_size, const char **message);

typedef struct auth_session_store_s auth_session_store_t;

typedef struct auth_session_options_s {
    const char *redis_host;      /* "127.0.0.1" */
    int redis_port;              /* 6379 */
    const char *redis_prefix;    /* "sess:" */
    const char *redis_password;  /* NULL: no AUTH */
    uint32_t request_timeout_ms; /* a GET unanswered this long drops the connection (0: 5000) */
} auth_session_options_t;

/* session: the parsed session object (borrowed, during the call) or NULL with message
 * ("session not found", "session store unavailable", "malformed session"). */
typedef void (*auth_session_cb)(json_t *session, const char *message, void *data);

/* Connects at once; Redis being down is not an error (it keeps retrying). NULL only when out
 * of memory. hiredis writes with write(2): the process must ignore SIGPIPE. The host should be
 * an address: hiredis 0.14 resolves names synchronously, on the loop thread. */
auth_session_store_t *auth_session_store_new(uv_loop_t *loop, const auth_session_options_t *options,
                                             char *error, size_t error_size);
/* GET <prefix><session_id>; callback exactly once, from the loop (from inside this call only
 * when out of memory, or when called from a callback that auth_session_store_free is making).
 * "session store unavailable" when Redis is away (requests are not queued while it is: the store
 * reconnects by itself, 100 ms backoff doubling to 5 s), when it has not answered within
 * request_timeout_ms (the connection is then dropped and reopened), or when the store is freed
 * meanwhile. */
void auth_session_store_get(auth_session_store_t *store, const char *session_id,
                            auth_session_cb callback, void *data);
/* 1 while connected to Redis (a GET would be sent), 0 while connecting or reconnecting. */
int auth_session_store_connected(const auth_session_store_t *store);
/* Calls back the pending requests ("session store unavailable") and closes; the memory goes
 * once the loop has run the handles' close callbacks. Accepts NULL. */
void auth_session_store_free(auth_session_store_t *store);

#endif
