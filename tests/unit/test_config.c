/* Daemon configuration: defaults, every section, and refusals with file:line: path: message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "store.h"

static char error[1024];

static int load(const char *text, config_t *config)
{
    error[0] = '\0';
    return config_load_text("sioc.json", text, strlen(text), config, error, sizeof(error));
}

static void assert_refused(const char *text, const char *expected_error)
{
    config_t config;
    assert_int_equal(load(text, &config), -1);
    assert_string_equal(error, expected_error);
    config_free(&config);
}

static void test_minimal_file_gets_defaults(void **state)
{
    config_t config;
    assert_int_equal(
        load("{\"channels\":{\"/home\":{\"driver\":\"feed\",\"auth\":\"none\"}}}", &config), 0);
    assert_string_equal(config.listen.host, "127.0.0.1");
    assert_int_equal(config.listen.port, 3000);
    assert_string_equal(config.path, "/socket.io/");
    assert_int_equal(config.limits.ping_interval_ms, 25000);
    assert_int_equal(config.limits.max_payload, 1000000);
    assert_string_equal(config.store.path, "sioc.db");
    assert_int_equal(config.store.user_cache_size, 4096);
    assert_int_equal(config.store.user_cache_ttl_ms, 60000);
    assert_int_equal(config.store.pool_size, STORE_POOL_DEFAULT);
    assert_int_equal(config.store.dispatch_loop, 0);
    assert_int_equal(config.channel_count, 1);
    assert_string_equal(config.channels[0].name, "/home");
    assert_string_equal(config.channels[0].driver, "feed");
    assert_int_equal(config.channels[0].auth, CONFIG_AUTH_NONE);
    assert_true(config.channels[0].enabled);
    assert_true(json_is_object(config.channels[0].options));
    assert_int_equal(config.channels[0].line, 1);
    assert_false(config.api.enabled);
    assert_false(config.jwt.enabled);
    assert_false(config.keep_handshake_auth); /* the daemon reads the auth once: given back */
    assert_string_equal(config.log_format, "text");
    config_free(&config);
}

static const char full[] =
    "{\n"
    "  \"listen\": {\"host\": \"127.0.0.2\", \"port\": 0},\n"
    "  \"path\": \"/io/\",\n"
    "  \"cors\": {\"origins\": [\"http://a.example\"], \"credentials\": false},\n"
    "  \"limits\": {\"maxTextLength\": 10, \"messagesPerSecond\": 2.5},\n"
    "  \"store\": {\"driver\": \"sqlite\", \"path\": \"/tmp/x.db\", \"userCache\": {\"size\": 0, "
    "\"ttlMs\": 500}, \"poolSize\": 2, \"dispatch\": \"loop\"},\n"
    "  \"auth\": {\n"
    "    \"jwt\": {\"algorithm\": \"HS384\", \"secret\": \"0123456789abcdef\"},\n"
    "    \"session\": {\"secrets\": [\"new\", \"old\"], \"redis\": {\"port\": 7000}}, "
    "\"keepHandshakeAuth\": true\n"
    "  },\n"
    "  \"api\": {\"listen\": {\"port\": 0}, \"key\": \"0123456789abcdef\"},\n"
    "  \"recovery\": true, \"cluster\": {\"redis\": {\"url\": \"redis://10.0.0.5:7001\"}, \"key\": "
    "\"k\"},\n"
    "  \"log\": {\"level\": \"debug\", \"format\": \"json\"},\n"
    "  \"channels\": {\n"
    "    \"/\": {\"driver\": \"chat\", \"options\": {\"autoCreateRooms\": false}},\n"
    "    \"/carolina\": {\"driver\": \"main\", \"auth\": \"session\", \"enabled\": false}\n"
    "  }\n"
    "}\n";

static void test_every_section(void **state)
{
    config_t config;
    assert_int_equal(load(full, &config), 0);
    assert_string_equal(config.listen.host, "127.0.0.2");
    assert_int_equal(config.listen.port, 0);
    assert_string_equal(config.path, "/io/");
    assert_string_equal(config.cors_origins[0], "http://a.example");
    assert_null(config.cors_origins[1]);
    assert_false(config.cors_credentials);
    assert_int_equal(config.limits.max_text_length, 10);
    assert_true(config.limits.messages_per_second == 2.5);
    assert_string_equal(config.store.path, "/tmp/x.db");
    assert_int_equal(config.store.user_cache_size, 0);
    assert_int_equal(config.store.user_cache_ttl_ms, 500);
    assert_int_equal(config.store.pool_size, 2);
    assert_int_equal(config.store.dispatch_loop, 1);
    assert_true(config.jwt.enabled);
    assert_string_equal(config.jwt.algorithm, "HS384");
    assert_true(config.session.enabled);
    assert_string_equal(config.session.secrets[1], "old");
    assert_int_equal(config.session.redis_port, 7000);
    assert_true(config.keep_handshake_auth);
    assert_string_equal(config.session.cookie_name, "connect.sid");
    assert_true(config.api.enabled);
    assert_int_equal(config.api.listen.port, 0);
    assert_true(config.recovery.enabled);
    assert_true(config.cluster.enabled);
    assert_string_equal(config.cluster.redis_url, "redis://10.0.0.5:7001");
    assert_string_equal(config.cluster.key, "k");
    assert_string_equal(config.cluster.mode, "classic");
    assert_int_equal(config.cluster.requests_timeout_ms, 5000);
    assert_string_equal(config.log_level, "debug");
    assert_string_equal(config.log_format, "json");
    assert_int_equal(config.channel_count, 2);
    assert_int_equal(config.channels[0].auth, CONFIG_AUTH_JWT);
    assert_true(json_is_false(json_object_get(config.channels[0].options, "autoCreateRooms")));
    assert_int_equal(config.channels[0].line, 15);
    assert_false(config.channels[1].enabled);
    assert_int_equal(config.channels[1].line, 16);
    const char *path[] = {"channels", "/", "options", "autoCreateRooms", NULL};
    assert_int_equal(config_line_of(&config, path), 15);
    const char *missing[] = {"channels", "/nope", NULL};
    assert_int_equal(config_line_of(&config, missing), 0);
    config_free(&config);
}

#define ONE_CHANNEL "\"channels\": {\"/home\": {\"driver\": \"feed\", \"auth\": \"none\"}}"

/* httpCompression / perMessageDeflate take engine.io's shapes: a boolean or {threshold}. */
static void test_compression_keys(void **state)
{
    config_t config;
    assert_int_equal(load("{" ONE_CHANNEL "}", &config), 0);
    assert_true(config.http_compression.enabled);
    assert_int_equal(config.http_compression.threshold, 1024);
    assert_false(config.per_message_deflate.enabled);
    assert_int_equal(config.per_message_deflate.threshold, 1024);
    config_free(&config);
    assert_int_equal(
        load("{" ONE_CHANNEL
             ", \"httpCompression\": false, \"perMessageDeflate\": {\"threshold\": 2048}}",
             &config),
        0);
    assert_false(config.http_compression.enabled);
    assert_true(config.per_message_deflate.enabled);
    assert_int_equal(config.per_message_deflate.threshold, 2048);
    config_free(&config);
    assert_int_equal(
        load("{" ONE_CHANNEL ", \"perMessageDeflate\": true, \"httpCompression\": {}}", &config),
        0);
    assert_true(config.per_message_deflate.enabled);
    assert_true(config.http_compression.enabled);
    assert_int_equal(config.http_compression.threshold, 1024);
    config_free(&config);
    assert_refused(
        "{\"perMessageDeflate\": \"yes\"}",
        "sioc.json:1: perMessageDeflate: expected true, false or {\"threshold\": bytes}");
    assert_refused(
        "{\"httpCompression\": {\"threshold\": -1}}",
        "sioc.json:1: httpCompression.threshold: expected an integer from 0 to 100000000");
}

/* recovery: true / false as before, or an object with its defaults. */
static void test_recovery_forms(void **state)
{
    static const char channels[] =
        "\"channels\":{\"/home\":{\"driver\":\"feed\",\"auth\":\"none\"}}";
    char text[512];
    config_t config;
    snprintf(text, sizeof(text), "{%s}", channels);
    assert_int_equal(load(text, &config), 0);
    assert_false(config.recovery.enabled);
    assert_int_equal(config.recovery.max_disconnection_duration_ms, 120000);
    assert_true(config.recovery.skip_middlewares);
    assert_string_equal(config.recovery.store, "embedded");
    assert_null(config.recovery.path);
    assert_int_equal(config.recovery.max_packets, 100000);
    assert_int_equal(config.recovery.max_sessions, 100000);
    assert_int_equal(config.recovery.max_pending, 10000);
    assert_int_equal(config.recovery.max_pending_bytes, 64 * 1024 * 1024);
    config_free(&config);
    snprintf(text, sizeof(text),
             "{\"recovery\": {\"maxDisconnectionDurationMs\": 5000, \"skipMiddlewares\": false, "
             "\"store\": \"memory\", \"path\": \"/tmp/r.db\", \"maxPackets\": 10, "
             "\"maxSessions\": 20, \"maxPending\": 30, \"maxPendingBytes\": 4096}, %s}",
             channels);
    assert_int_equal(load(text, &config), 0);
    assert_true(config.recovery.enabled);
    assert_int_equal(config.recovery.max_disconnection_duration_ms, 5000);
    assert_false(config.recovery.skip_middlewares);
    assert_string_equal(config.recovery.store, "memory");
    assert_string_equal(config.recovery.path, "/tmp/r.db");
    assert_int_equal(config.recovery.max_packets, 10);
    assert_int_equal(config.recovery.max_sessions, 20);
    assert_int_equal(config.recovery.max_pending, 30);
    assert_int_equal(config.recovery.max_pending_bytes, 4096);
    config_free(&config);
    /* Streams mode: the stream is the log, the Redis store the default; embedded if asked. */
    snprintf(text, sizeof(text),
             "{\"recovery\": true, \"cluster\": {\"redis\": {\"url\": \"redis://h:1\"}, "
             "\"mode\": \"streams\"}, %s}",
             channels);
    assert_int_equal(load(text, &config), 0);
    assert_string_equal(config.cluster.mode, "streams");
    assert_string_equal(config.recovery.store, "redis");
    config_free(&config);
    snprintf(text, sizeof(text),
             "{\"recovery\": {\"store\": \"embedded\"}, \"cluster\": {\"redis\": {\"url\": "
             "\"redis://h:1\"}, \"mode\": \"streams\"}, %s}",
             channels);
    assert_int_equal(load(text, &config), 0);
    assert_string_equal(config.recovery.store, "embedded");
    config_free(&config);
    snprintf(text, sizeof(text), "{\"recovery\": {\"enabled\": false}, %s}", channels);
    assert_int_equal(load(text, &config), 0);
    assert_false(config.recovery.enabled);
    config_free(&config);
    assert_refused(
        "{\"recovery\": {\"store\": \"disk\"}}",
        "sioc.json:1: recovery.store: unknown store \"disk\" (expected embedded, memory or redis)");
    snprintf(text, sizeof(text), "{\"recovery\": {\"store\": \"redis\"}, %s}", channels);
    assert_refused(text, "sioc.json:1: recovery.store: redis needs cluster.mode \"streams\"");
    assert_refused("{\"recovery\": {\"maxPackets\": 0}}",
                   "sioc.json:1: recovery.maxPackets: expected an integer from 1 to 100000000");
    assert_refused("{\"recovery\": {\"path\": \"\"}}",
                   "sioc.json:1: recovery.path: expected a file path");
    assert_refused("{\"recovery\": {\"window\": 1}}",
                   "sioc.json:1: recovery.window: unknown key (expected one of: enabled, "
                   "maxDisconnectionDurationMs, skipMiddlewares, store, path, maxPackets, "
                   "maxSessions, maxPending, maxPendingBytes)");
    assert_refused("{\"recovery\": {\"maxPendingBytes\": 10}}",
                   "sioc.json:1: recovery.maxPendingBytes: expected an integer from 1024 to "
                   "1099511627776");
    assert_refused("{\"recovery\": 1}", "sioc.json:1: recovery: expected true, false or an object");
}

static void test_refusals_name_the_line(void **state)
{
    assert_refused("{\n  \"channels\": {\n    \"/home\": {\"driver\": \"fed\"}\n  }\n}",
                   "sioc.json:3: channels.\"/home\".driver: unknown driver \"fed\" (expected main, "
                   "chat, notifications, feed, bench or proxy)");
    assert_refused("{\n\n  \"listn\": {}\n}",
                   "sioc.json:3: listn: unknown key (expected one of: listen, path, cors, limits, "
                   "store, auth, api, cluster, recovery, log, channels, httpCompression, "
                   "perMessageDeflate, admin, allowEIO3)");
    assert_refused("{\"listen\": {\"port\": 70000}}",
                   "sioc.json:1: listen.port: expected an integer from 0 to 65535");
    assert_refused("{\"limits\": {\"pingIntervalMs\": \"fast\"}}",
                   "sioc.json:1: limits.pingIntervalMs: expected an integer from 100 to 3600000");
    assert_refused("{\"channels\": {\"home\": {\"driver\": \"feed\"}}}",
                   "sioc.json:1: channels.home: a channel name is a namespace and starts with /");
    assert_refused("{\"auth\": {\"keepHandshakeAuth\": 1}}",
                   "sioc.json:1: auth.keepHandshakeAuth: expected true or false");
    assert_refused("{\"channels\": {\"/\": {\"auth\": \"jwt\"}}}",
                   "sioc.json:1: channels.\"/\": missing key \"driver\"");
    assert_refused("{\"channels\": {\"/\": {\"driver\": \"chat\"}}}",
                   "sioc.json:1: channels.\"/\": jwt auth needs auth.jwt.secret (16 characters or "
                   "more)");
    assert_refused("{\"store\": {\"userCache\": {\"ttlMs\": -1}}}",
                   "sioc.json:1: store.userCache.ttlMs: expected an integer from 0 to 86400000");
    assert_refused(
        "{\"store\": {\"userCache\": {\"entries\": 5}}}",
        "sioc.json:1: store.userCache.entries: unknown key (expected one of: size, ttlMs)");
    assert_refused("{\"store\": {\"poolSize\": 0}}",
                   "sioc.json:1: store.poolSize: expected an integer from 1 to 64");
    assert_refused("{\"store\": {\"poolSize\": 65}}",
                   "sioc.json:1: store.poolSize: expected an integer from 1 to 64");
    assert_refused("{\"store\": {\"dispatch\": \"fibers\"}}",
                   "sioc.json:1: store.dispatch: expected \"threads\" or \"loop\"");
    assert_refused("{\"log\": {\"format\": \"xml\"}}",
                   "sioc.json:1: log.format: unknown format \"xml\" (expected text or json)");
    assert_refused("{\"channels\": {}}", "sioc.json:1: channels: at least one channel is needed");
    assert_refused("{\"api\": {\"key\": \"short\"}}",
                   "sioc.json:1: api.key: expected a key of 16 characters or more");
    assert_refused("{\"listen\": {}, \"listen\": {}}",
                   "sioc.json:1:23: duplicate object key near '\"listen\"'");
    assert_refused("{\"channels\": ", "sioc.json:1:13: unexpected token near end of file");
    assert_refused("[]", "sioc.json: expected an object");
}

static void test_default_uses_environment(void **state)
{
    config_t config;
    setenv("SIOC_JWT_SECRET", "a-secret-of-enough-length", 1);
    unsetenv("SIOC_API_KEY");
    assert_int_equal(config_load_default(&config, error, sizeof(error)), 0);
    assert_string_equal(config.jwt.secret, "a-secret-of-enough-length");
    assert_false(config.api.enabled);
    assert_int_equal(config.channel_count, 1);
    assert_string_equal(config.channels[0].name, "/");
    assert_string_equal(config.channels[0].driver, "chat");
    config_free(&config);
    setenv("SIOC_JWT_SECRET", "short", 1);
    assert_int_equal(config_load_default(&config, error, sizeof(error)), -1);
    config_free(&config);
    unsetenv("SIOC_JWT_SECRET");
    assert_int_equal(config_load_default(&config, error, sizeof(error)), 0);
    assert_int_equal(strlen(config.jwt.secret), 48); /* random, 24 bytes in hex */
    config_free(&config);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_file_gets_defaults),
        cmocka_unit_test(test_every_section),
        cmocka_unit_test(test_compression_keys),
        cmocka_unit_test(test_recovery_forms),
        cmocka_unit_test(test_refusals_name_the_line),
        cmocka_unit_test(test_default_uses_environment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
