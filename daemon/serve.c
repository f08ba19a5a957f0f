#include "serve.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sioc_adapter.h>
#include <sioc_admin.h>
#include <unistd.h>

#include "api.h"
#include "auth_jwt.h"
#include "auth_session.h"
#include "channel.h"
#include "heap_trim.h"
#include "log.h"
#include "metrics.h"
#include "recovery_store.h"
#include "reload.h"

#ifdef SIOC_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
/* systemd's Type=notify: READY=1 once listening, RELOADING=1 / READY=1 around a SIGHUP,
 * STOPPING=1. A no-op outside systemd (no $NOTIFY_SOCKET). */
#define notify(state) sd_notify(0, state)
#else
#define notify(state) ((void)0)
#endif

static daemon_t daemon_state;
#define SIGNAL_COUNT 3
static uv_signal_t signal_handles[SIGNAL_COUNT];
static const int signal_numbers[SIGNAL_COUNT] = {SIGTERM, SIGINT, SIGHUP};
static int signals_started;
static int exit_status;

static char *read_file(const char *path)
{
    FILE *file = fopen(path, "rb");
    if (file == NULL)
        return NULL;
    char *text = calloc(1, 64 * 1024 + 1);
    size_t length = text ? fread(text, 1, 64 * 1024, file) : 0;
    fclose(file);
    if (text != NULL)
        text[length] = '\0';
    return text;
}

/* The JWT verifier the configuration asks for (*out NULL when JWT auth is off). */
static int jwt_from_config(const config_t *config, auth_jwt_t **out, char *error, size_t error_size)
{
    *out = NULL;
    if (!config->jwt.enabled)
        return 0;
    char *key = config->jwt.public_key_file ? read_file(config->jwt.public_key_file) : NULL;
    if (config->jwt.public_key_file != NULL && key == NULL) {
        snprintf(error, error_size, "auth.jwt.publicKeyFile: cannot read %s",
                 config->jwt.public_key_file);
        return -1;
    }
    auth_jwt_options_t options = {
        .algorithm = config->jwt.algorithm,
        .secret = config->jwt.secret,
        .public_key_pem = key,
        .leeway_seconds = config->jwt.leeway_seconds,
    };
    *out = auth_jwt_new(&options, error, error_size);
    free(key);
    return *out != NULL ? 0 : -1;
}

/* ---- TLS on the listeners ------------------------------------------------------------------ */

/* The context listen.tls asks for: 0 with *out NULL for plaintext, or -1 with error
 * ("listen.tls: certificate cert.pem: <OpenSSL's reason>"). */
static int tls_from_config(const config_listen_t *listen, const char *key, struct ssl_ctx_st **out,
                           char *error, size_t error_size)
{
    *out = NULL;
    if (listen->tls_cert == NULL)
        return 0;
    char why[512];
    *out = sioc_tls_context_new(listen->tls_cert, listen->tls_key, why, sizeof(why));
    if (*out == NULL) {
        snprintf(error, error_size, "%s: %s", key, why);
        return -1;
    }
    return 0;
}

static int check_tls(const config_t *config, char *error, size_t error_size)
{
    struct ssl_ctx_st *ctx;
    if (tls_from_config(&config->listen, "listen.tls", &ctx, error, error_size) != 0)
        return -1;
    sioc_tls_context_free(ctx);
    /* Without the API, ctx is not set again: freeing it twice killed a daemon with TLS on
     * the Socket.IO listener and no API at its start. */
    if (!config->api.enabled)
        return 0;
    if (tls_from_config(&config->api.listen, "api.listen.tls", &ctx, error, error_size) != 0)
        return -1;
    sioc_tls_context_free(ctx);
    return 0;
}

/* SIGHUP: the files of each TLS listener are read again (a renewed certificate usually keeps
 * its file name), and the new context serves the connections accepted from now on; open ones
 * keep theirs. Files that do not load keep the running context, and say why. */
static void reload_tls_listener(config_listen_t *running, config_listen_t *next, const char *key,
                                void (*set)(daemon_t *, struct ssl_ctx_st *), daemon_t *daemon)
{
    if (running->tls_cert == NULL || next->tls_cert == NULL)
        return; /* turning TLS on or off takes a restart (reload.c names it) */
    char error[640];
    struct ssl_ctx_st *ctx;
    if (tls_from_config(next, key, &ctx, error, sizeof(error)) != 0) {
        log_error("SIGHUP: %s; the running certificate stays", error);
        return;
    }
    set(daemon, ctx);
    sioc_tls_context_free(ctx);
    log_info("SIGHUP: %s: %s loaded (for new connections)", key, next->tls_cert);
    char *kept = running->tls_cert;
    running->tls_cert = next->tls_cert;
    next->tls_cert = kept;
    kept = running->tls_key;
    running->tls_key = next->tls_key;
    next->tls_key = kept;
}

static void set_io_tls(daemon_t *daemon, struct ssl_ctx_st *ctx)
{
    sioc_server_set_tls(daemon->io, ctx);
}

static void set_api_tls(daemon_t *daemon, struct ssl_ctx_st *ctx)
{
    api_set_tls(daemon->api, ctx);
}

int serve_check(const config_t *config, char *error, size_t error_size)
{
    auth_jwt_t *jwt;
    if (jwt_from_config(config, &jwt, error, error_size) != 0)
        return -1;
    auth_jwt_free(jwt);
    if (check_tls(config, error, error_size) != 0)
        return -1;
    return channel_check_all(config, error, error_size);
}

static store_options_t store_options_of(const config_t *config)
{
    int postgres = strcmp(config->store.driver, "postgres") == 0;
    store_options_t options = {config->store.driver,
                               postgres ? config->store.url : config->store.path,
                               (const char *const *)config->store.statements,
                               (const char *const *)config->store.statement_where,
                               config->store.user_cache_size,
                               config->store.user_cache_ttl_ms,
                               config->store.pool_size,
                               config->store.dispatch_loop};
    return options;
}

int serve_check_store(const config_t *config, char *error, size_t error_size)
{
    if (config->store.statements == NULL)
        return 0;
    store_options_t options = store_options_of(config);
    return store_check(&options, error, error_size) == 0 ? 0 : -1;
}

static int start_auth(daemon_t *daemon, char *error, size_t error_size)
{
    const config_t *config = daemon->config;
    if (jwt_from_config(config, &daemon->jwt, error, error_size) != 0)
        return -1;
    if (config->session.enabled) {
        auth_session_options_t options = {
            .redis_host = config->session.redis_host,
            .redis_port = config->session.redis_port,
            .redis_prefix = config->session.redis_prefix,
            .redis_password = config->session.redis_password,
        };
        daemon->sessions = auth_session_store_new(daemon->loop, &options, error, error_size);
        if (daemon->sessions == NULL)
            return -1;
    }
    return 0;
}

/* The cluster's Redis connections (NULL without a cluster section); freed after the Socket.IO
 * server, whose namespaces hold its adapters. */
static sioc_redis_t *cluster_redis;

static void on_cluster_log(const char *line, void *data)
{
    size_t length = strlen(line);
    if (length >= 3 && strcmp(line + length - 3, " up") == 0)
        log_info("cluster: %s", line);
    else
        log_warn("cluster: %s", line);
}

static int start_cluster(const config_t *config, uv_loop_t *loop, char *error, size_t error_size)
{
    if (!config->cluster.enabled)
        return 0;
    sioc_redis_options_t options;
    sioc_redis_options_init(&options);
    options.url = config->cluster.redis_url;
    options.key = config->cluster.key;
    options.mode = strcmp(config->cluster.mode, "sharded") == 0   ? SIOC_REDIS_SHARDED
                   : strcmp(config->cluster.mode, "streams") == 0 ? SIOC_REDIS_STREAMS
                                                                  : SIOC_REDIS_CLASSIC;
    options.requests_timeout_ms = config->cluster.requests_timeout_ms;
    options.log = on_cluster_log;
    options.on_latency = metrics_redis_observe;
    int rc = sioc_redis_new(loop, &options, &cluster_redis);
    daemon_state.cluster = cluster_redis;
    if (rc != 0) {
        snprintf(error, error_size, "cluster: redis %s: %s", config->cluster.redis_url,
                 uv_strerror(rc));
        return -1;
    }
    return 0;
}

/* ---- connection state recovery: the embedded store (recovery_store.h) ---------------------- */

/* The daemon's recovery store (NULL unless recovery is on with store "embedded"); closed after
 * the Socket.IO server, which writes the last sessions as it closes. */
static recovery_store_t *recovery_store;

/* recovery.path, or next to the SQLite store's file ("sioc.db" -> "sioc.db-recovery", beside
 * SQLite's own -wal and -shm), or ./sioc-recovery.db with PostgreSQL. */
static void recovery_path_of(const config_t *config, char *out, size_t size)
{
    if (config->recovery.path != NULL)
        snprintf(out, size, "%s", config->recovery.path);
    else if (strcmp(config->store.driver, "sqlite") == 0)
        snprintf(out, size, "%s-recovery", config->store.path);
    else
        snprintf(out, size, "sioc-recovery.db");
}

static int start_recovery(daemon_t *daemon, char *error, size_t error_size)
{
    const config_t *config = daemon->config;
    if (!config->recovery.enabled || strcmp(config->recovery.store, "embedded") != 0)
        return 0;
    char path[4096];
    recovery_path_of(config, path, sizeof(path));
    recovery_store_options_t options = {path, config->recovery.max_disconnection_duration_ms,
                                        config->recovery.max_packets,
                                        config->recovery.max_sessions};
    if (recovery_store_open(daemon->loop, &options, &recovery_store, error, error_size) != 0)
        return -1;
    daemon->recovery = recovery_store;
    log_info("recovery: embedded store %s, window %u ms", path,
             config->recovery.max_disconnection_duration_ms);
    return 0;
}

static void server_options(const config_t *config, sioc_server_options_t *options)
{
    sioc_server_options_init(options);
    options->engine.path = config->path;
    options->engine.ping_interval_ms = config->limits.ping_interval_ms;
    options->engine.ping_timeout_ms = config->limits.ping_timeout_ms;
    options->engine.upgrade_timeout_ms = config->limits.upgrade_timeout_ms;
    options->engine.max_payload = config->limits.max_payload;
    options->engine.max_buffered_bytes = config->limits.max_buffered_bytes;
    options->engine.shutdown_timeout_ms = config->limits.shutdown_timeout_ms;
    options->connect_timeout_ms = config->limits.connect_timeout_ms;
    options->engine.http_compression = config->http_compression.enabled;
    options->engine.http_compression_threshold = config->http_compression.threshold;
    options->engine.per_message_deflate = config->per_message_deflate.enabled;
    options->engine.per_message_deflate_threshold = config->per_message_deflate.threshold;
    options->engine.allow_eio3 = config->allow_eio3;
    options->recovery = config->recovery.enabled;
    options->max_disconnection_duration_ms = config->recovery.max_disconnection_duration_ms;
    options->recovery_skip_middlewares = config->recovery.skip_middlewares;
    options->recovery_max_pending = (size_t)config->recovery.max_pending;
    options->recovery_max_pending_bytes = (size_t)config->recovery.max_pending_bytes;
    if (recovery_store != NULL)
        options->recovery_store = recovery_store_base(recovery_store);
    else if (config->recovery.enabled && cluster_redis != NULL &&
             strcmp(config->recovery.store, "redis") == 0)
        options->recovery_store = sioc_redis_recovery_store(cluster_redis);
    if (cluster_redis != NULL) {
        options->adapter = sioc_redis_adapter_factory;
        options->adapter_data = cluster_redis;
    }
    size_t origins = 0;
    while (config->cors_origins != NULL && config->cors_origins[origins] != NULL)
        origins++;
    if (origins > 0) {
        options->engine.cors_origins = (const char *const *)config->cors_origins;
        options->engine.cors_origin_count = origins;
        options->engine.cors_credentials = config->cors_credentials;
    }
}

static int start_io(daemon_t *daemon, char *error, size_t error_size)
{
    const config_t *config = daemon->config;
    if (start_cluster(config, daemon->loop, error, error_size) != 0 ||
        start_recovery(daemon, error, error_size) != 0)
        return -1;
    sioc_server_options_t options;
    server_options(config, &options);
    if (tls_from_config(&config->listen, "listen.tls", &options.engine.tls.context, error,
                        error_size) != 0)
        return -1;
    int rc = sioc_server_new(daemon->loop, &options, &daemon->io);
    sioc_tls_context_free(options.engine.tls.context); /* the server holds its own reference */
    if (rc == 0)
        rc = sioc_server_listen(daemon->io, config->listen.host, config->listen.port);
    if (rc != 0) {
        snprintf(error, error_size, "listen on %s:%d: %s", config->listen.host, config->listen.port,
                 uv_strerror(rc));
        return -1;
    }
    return 0;
}

/* The admin UI's server side (NULL without an "admin" section); closed right before the
 * Socket.IO server. */
static sioc_admin_t *admin_ui;

static int start_admin(const config_t *config, sioc_server_t *io, char *error, size_t error_size)
{
    if (!config->admin.enabled)
        return 0;
    sioc_admin_options_t options;
    sioc_admin_options_init(&options);
    options.namespace_name = config->admin.namespace_name;
    options.username = config->admin.username;
    options.password_hash = config->admin.password_hash;
    options.mode = config->admin.production ? SIOC_ADMIN_PRODUCTION : SIOC_ADMIN_DEVELOPMENT;
    options.readonly = config->admin.readonly;
    /* Nodes of a cluster on one host must not share an id: the dashboard tells servers apart
     * by it (Node's admin UI uses host#pid in cluster workers for the same reason). */
    char server_id[300];
    if (config->admin.server_id == NULL && config->cluster.enabled) {
        char host[256] = "localhost";
        gethostname(host, sizeof(host) - 1);
        snprintf(server_id, sizeof(server_id), "%s#%ld", host, (long)getpid());
        options.server_id = server_id;
    } else {
        options.server_id = config->admin.server_id;
    }
    const char *problem = NULL;
    int rc = sioc_admin_new(io, &options, &admin_ui, &problem);
    if (rc != 0) {
        snprintf(error, error_size, "admin: %s", problem != NULL ? problem : uv_strerror(rc));
        return -1;
    }
    log_info("admin ui on namespace %s (%s mode, %s)", config->admin.namespace_name,
             config->admin.production ? "production" : "development",
             config->admin.username != NULL ? "basic authentication" : "no authentication");
    return 0;
}

/* ---- stopping: stop accepting, close every socket, finish the store's writes, exit ----------- */

static void on_store_closed(void *data)
{
    daemon_t *daemon = data;
    daemon->store = NULL;
    if (daemon->sessions != NULL)
        auth_session_store_free(daemon->sessions);
    daemon->sessions = NULL;
    log_info("stopped");
}

/* Disconnect handlers may have queued last writes (presence): the store finishes them. */
static void close_store(void *data)
{
    daemon_t *daemon = data;
    daemon->recovery = NULL;
    recovery_store = NULL;
    if (daemon->store != NULL)
        store_close(daemon->store, on_store_closed, daemon);
    else
        on_store_closed(daemon);
}

static void on_io_closed(void *data)
{
    daemon_t *daemon = data;
    daemon->io = NULL;
    sioc_redis_free(cluster_redis);
    cluster_redis = NULL;
    daemon->cluster = NULL;
    channel_teardown_all(daemon);
    /* The sessions of the sockets just closed, and the chat driver's presence rows, are
     * written before the process goes: they are what the next start recovers. */
    if (recovery_store != NULL)
        recovery_store_close(recovery_store, close_store, daemon);
    else
        close_store(daemon);
}

static void on_api_stopped(void *data)
{
    daemon_t *daemon = data;
    daemon->api = NULL;
    sioc_admin_close(admin_ui);
    admin_ui = NULL;
    if (daemon->io != NULL)
        sioc_server_close(daemon->io, on_io_closed, daemon);
    else
        on_io_closed(daemon);
}

static void stop(daemon_t *daemon)
{
    if (daemon->stopping)
        return;
    daemon->stopping = 1;
    notify("STOPPING=1");
    log_info("stopping");
    for (int i = 0; signals_started && i < SIGNAL_COUNT; i++)
        uv_close((uv_handle_t *)&signal_handles[i], NULL);
    heap_trim_stop();
    if (daemon->api != NULL)
        api_stop(daemon->api, on_api_stopped, daemon);
    else
        on_api_stopped(daemon);
}

/* ---- SIGHUP: re-read the file, apply what changes without a restart ------------------------- */

static int apply_cors(daemon_t *daemon)
{
    const config_t *config = daemon->config;
    size_t count = 0;
    while (config->cors_origins != NULL && config->cors_origins[count] != NULL)
        count++;
    /* An empty list is no CORS at all, as at start. */
    return sioc_server_set_cors(daemon->io,
                                count > 0 ? (const char *const *)config->cors_origins : NULL, count,
                                config->cors_credentials);
}

/* SIGHUP: the Engine.IO limits, when reload_apply changed one, for the sessions that open from
 * now on (an open one keeps those of its handshake). */
static int apply_engine_limits(daemon_t *daemon, const sioc_server_options_t *before)
{
    sioc_server_options_t now;
    server_options(daemon->config, &now);
    if (now.engine.ping_interval_ms == before->engine.ping_interval_ms &&
        now.engine.ping_timeout_ms == before->engine.ping_timeout_ms &&
        now.engine.upgrade_timeout_ms == before->engine.upgrade_timeout_ms &&
        now.engine.max_payload == before->engine.max_payload &&
        now.engine.max_buffered_bytes == before->engine.max_buffered_bytes &&
        now.connect_timeout_ms == before->connect_timeout_ms)
        return 0;
    return sioc_server_set_limits(daemon->io, &now);
}

/* SIGHUP: channels whose `enabled` changed are turned on or off (channel_set_enabled). A
 * channel added or removed, or changed otherwise, is named by reload_apply as a restart. */
static int reload_channels(daemon_t *daemon, const config_t *next)
{
    config_t *running = daemon->config;
    int changed = 0;
    for (size_t i = 0; i < next->channel_count; i++) {
        for (size_t j = 0; j < running->channel_count; j++) {
            config_channel_t *channel = &running->channels[j];
            int enabled = next->channels[i].enabled;
            if (strcmp(channel->name, next->channels[i].name) != 0 || channel->enabled == enabled)
                continue;
            char error[512];
            int disconnected = channel_set_enabled(daemon, channel, enabled, error, sizeof(error));
            if (disconnected < 0)
                log_error("SIGHUP: channel %s cannot be enabled: %s", channel->name, error);
            else if (enabled)
                log_info("SIGHUP: channel %s enabled", channel->name);
            else
                log_info("SIGHUP: channel %s disabled: %d socket%s disconnected, new ones refused",
                         channel->name, disconnected, disconnected == 1 ? "" : "s");
            changed += disconnected >= 0;
        }
    }
    return changed;
}

static void reload(daemon_t *daemon)
{
    config_t *running = daemon->config;
    if (running->file == NULL) {
        log_warn("SIGHUP: the embedded default has no file to read again; nothing changed");
        return;
    }
    notify("RELOADING=1");
    config_t next;
    char error[1024];
    if (config_load_file(running->file, &next, error, sizeof(error)) != 0) {
        log_error("SIGHUP: %s; the running configuration stays", error);
    } else {
        char restart[512];
        int cors_changed;
        sioc_server_options_t before;
        server_options(running, &before);
        int changed = reload_apply(running, &next, &cors_changed, restart, sizeof(restart));
        if (apply_engine_limits(daemon, &before) != 0)
            log_error("SIGHUP: the new Engine.IO limits are not applied: out of memory");
        changed += reload_channels(daemon, &next);
        if (cors_changed && apply_cors(daemon) != 0)
            log_error("SIGHUP: the new cors list is not applied: out of memory");
        log_info("SIGHUP: %s read again: log level %s, format %s; %d value%s changed",
                 running->file, running->log_level, running->log_format, changed,
                 changed == 1 ? "" : "s");
        reload_tls_listener(&running->listen, &next.listen, "listen.tls", set_io_tls, daemon);
        if (daemon->api != NULL)
            reload_tls_listener(&running->api.listen, &next.api.listen, "api.listen.tls",
                                set_api_tls, daemon);
        if (restart[0] != '\0')
            log_warn("SIGHUP: %s changed in %s: that takes a restart (systemctl restart sioc); "
                     "it runs as read at start",
                     restart, running->file);
    }
    config_free(&next);
    notify("READY=1");
}

static void on_signal(uv_signal_t *handle, int signal_number)
{
    if (signal_number == SIGHUP)
        reload(handle->data);
    else
        stop(handle->data);
}

static int start(daemon_t *daemon, char *error, size_t error_size)
{
    const config_t *config = daemon->config;
    int postgres = strcmp(config->store.driver, "postgres") == 0;
    store_options_t store_options = store_options_of(config);
    /* What check-config checks, first: both refuse a configuration in the same words. */
    if (serve_check(config, error, error_size) != 0)
        return -1;
    if (store_open(daemon->loop, &store_options, &daemon->store, error, error_size) != 0)
        return -1;
    if (start_auth(daemon, error, error_size) != 0 || start_io(daemon, error, error_size) != 0 ||
        channel_setup_all(daemon, error, error_size) != 0 ||
        start_admin(config, daemon->io, error, error_size) != 0)
        return -1;
    int rc = heap_trim_start(daemon->loop, daemon->io);
    if (rc != 0) {
        snprintf(error, error_size, "heap trim timer: %s", uv_strerror(rc));
        return -1;
    }
    printf("listening on %s:%d\n", config->listen.host, sioc_server_port(daemon->io));
    if (config->api.enabled) {
        struct ssl_ctx_st *tls;
        if (tls_from_config(&config->api.listen, "api.listen.tls", &tls, error, error_size) != 0 ||
            api_start(daemon, &daemon->api, error, error_size) != 0) {
            sioc_tls_context_free(tls);
            return -1;
        }
        /* Before the loop runs again, so before the first connection is accepted. */
        api_set_tls(daemon->api, tls);
        sioc_tls_context_free(tls);
        printf("api listening on %s:%d\n", config->api.listen.host, api_port(daemon->api));
    }
    fflush(stdout);
    log_info("listening on %s:%d%s, store %s", config->listen.host, sioc_server_port(daemon->io),
             config->path, postgres ? "postgres" : config->store.path);
    notify("READY=1");
    return 0;
}

int serve_run(config_t *config)
{
    daemon_t *daemon = &daemon_state;
    memset(daemon, 0, sizeof(*daemon));
    daemon->loop = uv_default_loop();
    daemon->config = config;
    log_set_level_name(config->log_level);
    log_set_format_name(config->log_format);
    signal(SIGPIPE, SIG_IGN);
    /* Signals first: a supervisor may send SIGTERM as soon as it reads the listening line. */
    for (int i = 0; i < SIGNAL_COUNT; i++) {
        uv_signal_init(daemon->loop, &signal_handles[i]);
        signal_handles[i].data = daemon;
        uv_signal_start(&signal_handles[i], on_signal, signal_numbers[i]);
    }
    signals_started = 1;
    char error[1024] = "";
    if (start(daemon, error, sizeof(error)) != 0) {
        log_error("%s", error);
        fprintf(stderr, "sioc: %s\n", error);
        exit_status = 1;
        stop(daemon);
    }
    uv_run(daemon->loop, UV_RUN_DEFAULT);
    uv_loop_close(daemon->loop);
    return exit_status;
}
