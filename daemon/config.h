/* The daemon's configuration: one JSON file (docs/config.md), validated strictly. Unknown keys
 * and bad values are refused with the file, the line and what was expected, e.g.
 *   sioc.json:14: channels."/home".driver: unknown driver "fed" (expected main, chat,
 *   notifications or feed)
 * Without a file, config_load_default() gives the embedded default: the StudyConnect chat
 * channel on "/", JWT auth with the secret from $SIOC_JWT_SECRET (or a random one, logged as a
 * warning), SQLite in ./sioc.db, the HTTP API on 127.0.0.1:3001 with key $SIOC_API_KEY. */
#ifndef SIOC_DAEMON_CONFIG_H
#define SIOC_DAEMON_CONFIG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef enum config_auth_mode {
    CONFIG_AUTH_NONE,     /* anyone; no user */
    CONFIG_AUTH_JWT,      /* a valid JWT is required */
    CONFIG_AUTH_SESSION,  /* a valid Express session cookie with a passport user is required */
    CONFIG_AUTH_ANY,      /* JWT or session, whichever the client brings */
    CONFIG_AUTH_OPTIONAL, /* JWT or session when the client brings one, else anonymous; an
                             anonymous socket may bind a user later, with proof */
} config_auth_mode_t;

typedef struct config_listen_s {
    char *host;
    int port;
    /* tls: {cert, key}: PEM files (the chain, leaf first; its key); both NULL: plaintext. */
    char *tls_cert;
    char *tls_key;
} config_listen_t;

typedef struct config_channel_s {
    char *name;   /* the namespace, "/..." */
    char *driver; /* "main", "chat", "notifications", "feed" */
    int enabled;  /* channels can be turned off (seed 004) */
    config_auth_mode_t auth;
    json_t *options; /* driver options, validated by the driver (an object; {} when absent) */
    int line;        /* where it is defined, for the driver's error messages */
} config_channel_t;

typedef struct config_compression_s {
    int enabled;
    uint64_t threshold; /* bytes: smaller messages / answers go as they are */
} config_compression_t;

typedef struct config_s {
    char *file;             /* NULL for the embedded default */
    config_listen_t listen; /* 127.0.0.1:3000 */
    char *path;             /* "/socket.io/" */
    char **cors_origins;    /* NULL-terminated; NULL = no CORS */
    int cors_credentials;
    struct {
        uint32_t ping_interval_ms, ping_timeout_ms, connect_timeout_ms, upgrade_timeout_ms;
        uint64_t max_payload;         /* bytes per message/POST (1,000,000) */
        uint64_t max_buffered_bytes;  /* per socket (8 MiB) */
        uint32_t max_text_length;     /* chat text, bytes (2000) */
        double messages_per_second;   /* per socket, token bucket rate (10) */
        uint32_t message_burst;       /* bucket size (20) */
        uint32_t typing_timeout_ms;   /* a typing:start without stop expires (5000) */
        uint32_t history_limit;       /* max messages per history request (100) */
        uint32_t max_queued_events;   /* per socket, waiting behind an earlier one (100) */
        uint32_t shutdown_timeout_ms; /* SIGTERM: bound on the last bytes leaving (5000) */
    } limits;
    struct {
        char *driver; /* "sqlite" | "postgres" */
        char *path;   /* sqlite: "sioc.db" */
        char *url;    /* postgres: libpq connection URL (required) */
        /* store.statements: per operation (store.h order), the application's SQL or NULL,
         * and "<file>:<line>: store.statements.<operation>" for errors; NULL when none. */
        char **statements;
        char **statement_where;
        uint32_t user_cache_size;   /* store.userCache.size: users cached (4096; 0: none) */
        uint32_t user_cache_ttl_ms; /* store.userCache.ttlMs: trusted for (60000; 0: none) */
        uint32_t pool_size;         /* store.poolSize: postgres connections (STORE_POOL_DEFAULT) */
        int dispatch_loop;          /* store.dispatch: "loop" 1, "threads" 0 (the default) */
    } store;
    struct {
        int enabled;
        char *algorithm;       /* HS256 HS384 HS512 RS256 ES256 */
        char *secret;          /* HS* */
        char *public_key_file; /* RS256/ES256 */
        uint32_t leeway_seconds;
    } jwt;
    struct {
        int enabled;
        char *cookie_name; /* "connect.sid" */
        char **secrets;    /* NULL-terminated, first = current */
        char *redis_host;
        int redis_port;
        char *redis_prefix; /* "sess:" */
        char *redis_password;
    } session;
    /* auth.keepHandshakeAuth: a socket keeps the CONNECT's auth (socket.handshake.auth, a JWT's
     * text) after the channel's middlewares admitted it, as Node does (0: given back). */
    int keep_handshake_auth;
    struct {
        int enabled;
        config_listen_t listen; /* 127.0.0.1:3001 */
        char *key;              /* required when enabled */
        uint64_t max_body;      /* 1,000,000 */
    } api;
    struct {
        int enabled;
        char *redis_url; /* "redis://host:port" (required when enabled) */
        char *mode; /* "classic" | "sharded" (SPUBLISH, subscriptionMode dynamic) | "streams" */
        char *key;  /* channel prefix, as @socket.io/redis-adapter's key: "socket.io" */
        uint32_t requests_timeout_ms;  /* 5000 */
        uint32_t presence_interval_ms; /* chat presence heartbeat: 2000 (a dead node: 3x) */
    } cluster;
    struct {
        int enabled;                            /* connection state recovery (off) */
        uint32_t max_disconnection_duration_ms; /* the window: 120000 */
        int skip_middlewares;                   /* a recovered socket skips them (1) */
        char *store;           /* "embedded" (a SQLite file, survives restarts) | "memory" | "redis"
                                * (streams mode: the default there) */
        int store_given;       /* store set in the file (else streams mode picks redis) */
        char *path;            /* embedded: NULL = next to store.path (recovery_path_of) */
        uint64_t max_packets;  /* log bound: 100000 */
        uint64_t max_sessions; /* session bound: 100000 */
        uint64_t max_pending;  /* broadcasts waiting for the store: 10000 */
        uint64_t max_pending_bytes; /* their bytes: 64 MiB */
    } recovery;
    struct {
        int enabled;          /* an "admin" section is present */
        char *namespace_name; /* "/admin" */
        char *username;       /* NULL with "auth": false */
        char *password_hash;  /* bcrypt */
        int production;       /* "mode": "production" (default "development") */
        int readonly;
        char *server_id; /* NULL: the host name, or host#pid with a cluster */
    } admin;             /* the @socket.io/admin-ui dashboard (include/sioc_admin.h) */
    /* httpCompression (on) and perMessageDeflate (off), each with a threshold (1024 bytes). */
    config_compression_t http_compression, per_message_deflate;
    int allow_eio3;   /* allowEIO3: socket.io-client 2.x (Engine.IO v3) clients too; off */
    char *log_level;  /* "error" "warn" "info" "debug" */
    char *log_format; /* "text" "json" */
    config_channel_t *channels;
    size_t channel_count;
    char *source; /* the file's text, for config_line_of */
    size_t source_length;
} config_t;

/* Parses and validates text (name is used in messages). 0, or -1 with error filled. */
int config_load_text(const char *name, const char *text, size_t length, config_t *out, char *error,
                     size_t error_size);
int config_load_file(const char *path, config_t *out, char *error, size_t error_size);
int config_load_default(config_t *out, char *error, size_t error_size);
void config_free(config_t *config);

/* The line of the value at a path of object keys (NULL-terminated), for later messages
 * (drivers validating their options); 0 when unknown. */
int config_line_of(const config_t *config, const char *const *keys);

#endif
