/* Configuration loading: jansson parses, a table per JSON object validates (unknown keys are
 * refused), and a small scanner over the source text finds the line of any key for messages. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "store.h"

#define MAX_PATH_DEPTH 8

/* ---- where is a key? --------------------------------------------------------------------- */

typedef struct scanner_s {
    const char *text;
    size_t length;
    size_t position;
    int line;
} scanner_t;

static void skip_string(scanner_t *scanner, const char **start, size_t *length)
{
    scanner->position++; /* opening quote */
    *start = scanner->text + scanner->position;
    while (scanner->position < scanner->length && scanner->text[scanner->position] != '"') {
        if (scanner->text[scanner->position] == '\\')
            scanner->position++;
        scanner->position++;
    }
    *length = (size_t)(scanner->text + scanner->position - *start);
    scanner->position++; /* closing quote */
}

/* The line where the key path (object keys only; array elements are not addressed) is written,
 * or 0. Keys are compared as written in the file, escapes included (config keys are ASCII). */
static int line_of_path(const char *text, size_t length, const char *const *keys)
{
    size_t wanted = 0;
    while (keys[wanted] != NULL)
        wanted++;
    scanner_t scanner = {text, length, 0, 1};
    char containers[64]; /* '{' or '[' per depth */
    int matched[64];     /* 1 when every key from the root to this depth matched */
    int expecting_key[64];
    int depth = 0;
    matched[0] = 1;
    while (scanner.position < scanner.length) {
        char c = text[scanner.position];
        if (c == '\n')
            scanner.line++;
        if (c == '{' || c == '[') {
            if (depth + 1 >= (int)sizeof(containers))
                return 0;
            depth++;
            containers[depth] = c;
            expecting_key[depth] = c == '{';
            matched[depth] = 0;
        } else if (c == '}' || c == ']') {
            if (depth > 0)
                depth--;
        } else if (c == ',' && depth > 0 && containers[depth] == '{') {
            expecting_key[depth] = 1;
        } else if (c == '"') {
            const char *start;
            size_t key_length;
            int line = scanner.line;
            skip_string(&scanner, &start, &key_length);
            if (depth > 0 && containers[depth] == '{' && expecting_key[depth]) {
                expecting_key[depth] = 0;
                int parent_matched = depth == 1 || (depth >= 2 && matched[depth - 1]);
                int key_matches = (size_t)depth <= wanted &&
                                  strlen(keys[depth - 1]) == key_length &&
                                  memcmp(keys[depth - 1], start, key_length) == 0;
                matched[depth] = parent_matched && key_matches;
                if (matched[depth] && (size_t)depth == wanted)
                    return line;
                /* Nested containers under this key inherit matched[depth]. */
            }
            continue;
        }
        scanner.position++;
    }
    return 0;
}

int config_line_of(const config_t *config, const char *const *keys)
{
    if (config->source == NULL)
        return 0;
    return line_of_path(config->source, config->source_length, keys);
}

/* ---- validation context ------------------------------------------------------------------------
 */

typedef struct context_s {
    config_t *config;
    const char *name;
    const char *path[MAX_PATH_DEPTH + 1];
    int depth;
    char *error;
    size_t error_size;
    config_listen_t *listen; /* the listener whose keys are being read */
} context_t;

static void describe_path(const context_t *context, char *out, size_t size)
{
    out[0] = '\0';
    for (int i = 0; i < context->depth; i++) {
        size_t used = strlen(out);
        const char *key = context->path[i];
        int quote = strpbrk(key, "/.- ") != NULL;
        snprintf(out + used, size - used, "%s%s%s%s", i ? "." : "", quote ? "\"" : "", key,
                 quote ? "\"" : "");
    }
}

/* Fills the error as "<file>:<line>: <path>: <message>" and returns -1. */
static int fail(context_t *context, const char *format, ...) __attribute__((format(printf, 2, 3)));
static int fail(context_t *context, const char *format, ...)
{
    char where[512];
    describe_path(context, where, sizeof(where));
    context->path[context->depth] = NULL;
    int line = line_of_path(context->config->source, context->config->source_length, context->path);
    char message[512];
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(message, sizeof(message), format, arguments);
    va_end(arguments);
    if (context->depth == 0)
        snprintf(context->error, context->error_size, "%s: %s", context->name, message);
    else if (line > 0)
        snprintf(context->error, context->error_size, "%s:%d: %s: %s", context->name, line, where,
                 message);
    else
        snprintf(context->error, context->error_size, "%s: %s: %s", context->name, where, message);
    return -1;
}

static void enter(context_t *context, const char *key)
{
    if (context->depth < MAX_PATH_DEPTH)
        context->path[context->depth] = key;
    context->depth++;
}

static void leave(context_t *context)
{
    context->depth--;
}

/* ---- typed fields -----------------------------------------------------------------------------
 */

static int set_string(context_t *context, json_t *value, char **out)
{
    if (!json_is_string(value))
        return fail(context, "expected a string");
    free(*out);
    *out = strdup(json_string_value(value));
    return *out ? 0 : fail(context, "out of memory");
}

static int set_bool(context_t *context, json_t *value, int *out)
{
    if (!json_is_boolean(value))
        return fail(context, "expected true or false");
    *out = json_is_true(value);
    return 0;
}

static int set_integer(context_t *context, json_t *value, int64_t minimum, int64_t maximum,
                       int64_t *out)
{
    if (!json_is_integer(value) || json_integer_value(value) < minimum ||
        json_integer_value(value) > maximum)
        return fail(context, "expected an integer from %lld to %lld", (long long)minimum,
                    (long long)maximum);
    *out = json_integer_value(value);
    return 0;
}

static int set_u32(context_t *context, json_t *value, int64_t minimum, int64_t maximum,
                   uint32_t *out)
{
    int64_t number = 0;
    if (set_integer(context, value, minimum, maximum, &number) != 0)
        return -1;
    *out = (uint32_t)number;
    return 0;
}

static int set_u64(context_t *context, json_t *value, int64_t minimum, int64_t maximum,
                   uint64_t *out)
{
    int64_t number = 0;
    if (set_integer(context, value, minimum, maximum, &number) != 0)
        return -1;
    *out = (uint64_t)number;
    return 0;
}

static int set_port(context_t *context, json_t *value, int *out)
{
    int64_t number = 0;
    if (set_integer(context, value, 0, 65535, &number) != 0)
        return -1;
    *out = (int)number;
    return 0;
}

static int set_string_list(context_t *context, json_t *value, char ***out)
{
    if (!json_is_array(value))
        return fail(context, "expected an array of strings");
    size_t count = json_array_size(value);
    char **list = calloc(count + 1, sizeof(char *));
    if (list == NULL)
        return fail(context, "out of memory");
    for (size_t i = 0; i < count; i++) {
        json_t *item = json_array_get(value, i);
        if (!json_is_string(item)) {
            for (size_t j = 0; j < i; j++)
                free(list[j]);
            free(list);
            return fail(context, "item %zu: expected a string", i);
        }
        list[i] = strdup(json_string_value(item));
    }
    if (*out != NULL) {
        for (char **item = *out; *item != NULL; item++)
            free(*item);
        free(*out);
    }
    *out = list;
    return 0;
}

/* ---- objects ------------------------------------------------------------------------------------
 */

typedef int (*field_cb)(context_t *context, json_t *value);

typedef struct field_s {
    const char *key;
    field_cb parse;
} field_t;

static int parse_object(context_t *context, json_t *object, const field_t *fields)
{
    if (!json_is_object(object))
        return fail(context, "expected an object");
    const char *key;
    json_t *value;
    json_object_foreach(object, key, value)
    {
        const field_t *field = fields;
        while (field->key != NULL && strcmp(field->key, key) != 0)
            field++;
        enter(context, key);
        if (field->key == NULL) {
            char known[512] = "";
            for (const field_t *each = fields; each->key != NULL; each++)
                snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s%s",
                         each == fields ? "" : ", ", each->key);
            return fail(context, "unknown key (expected one of: %s)", known);
        }
        if (field->parse(context, value) != 0)
            return -1;
        leave(context);
    }
    return 0;
}

#define CONFIG(context) ((context)->config)

static int parse_host(context_t *c, json_t *v)
{
    return set_string(c, v, &CONFIG(c)->listen.host);
}
static int parse_port(context_t *c, json_t *v)
{
    return set_port(c, v, &CONFIG(c)->listen.port);
}
static int parse_tls_cert(context_t *c, json_t *v)
{
    return set_string(c, v, &c->listen->tls_cert);
}
static int parse_tls_key(context_t *c, json_t *v)
{
    return set_string(c, v, &c->listen->tls_key);
}
/* The files are read when the listener starts and on every SIGHUP (serve.c), not here:
 * check-config and a reload say then what is wrong with them. */
static int parse_tls(context_t *c, json_t *v)
{
    static const field_t fields[] = {
        {"cert", parse_tls_cert}, {"key", parse_tls_key}, {NULL, NULL}};
    if (parse_object(c, v, fields) != 0)
        return -1;
    if (c->listen->tls_cert == NULL || c->listen->tls_key == NULL)
        return fail(c, "expected both \"cert\" and \"key\" (PEM files)");
    return 0;
}
static int parse_listen(context_t *c, json_t *v)
{
    static const field_t fields[] = {
        {"host", parse_host}, {"port", parse_port}, {"tls", parse_tls}, {NULL, NULL}};
    c->listen = &CONFIG(c)->listen;
    return parse_object(c, v, fields);
}

static int parse_api_host(context_t *c, json_t *v)
{
    return set_string(c, v, &CONFIG(c)->api.listen.host);
}
static int parse_api_port(context_t *c, json_t *v)
{
    return set_port(c, v, &CONFIG(c)->api.listen.port);
}
static int parse_api_listen(context_t *c, json_t *v)
{
    static const field_t fields[] = {
        {"host", parse_api_host}, {"port", parse_api_port}, {"tls", parse_tls}, {NULL, NULL}};
    c->listen = &CONFIG(c)->api.listen;
    return parse_object(c, v, fields);
}

static int parse_path(context_t *c, json_t *v)
{
    if (set_string(c, v, &CONFIG(c)->path) != 0)
        return -1;
    return CONFIG(c)->path[0] == '/' ? 0 : fail(c, "expected a path starting with /");
}

static int parse_cors_origins(context_t *c, json_t *v)
{
    return set_string_list(c, v, &CONFIG(c)->cors_origins);
}
static int parse_cors_credentials(context_t *c, json_t *v)
{
    return set_bool(c, v, &CONFIG(c)->cors_credentials);
}
static int parse_cors(context_t *c, json_t *v)
{
    static const field_t fields[] = {
        {"origins", parse_cors_origins}, {"credentials", parse_cors_credentials}, {NULL, NULL}};
    return parse_object(c, v, fields);
}

#define LIMIT_U32(name, field, minimum, maximum)                                                   \
    static int name(context_t *c, json_t *v)                                                       \
    {                                                                                              \
        return set_u32(c, v, minimum, maximum, &CONFIG(c)->limits.field);                          \
    }
LIMIT_U32(parse_ping_interval, ping_interval_ms, 100, 3600000)
LIMIT_U32(parse_ping_timeout, ping_timeout_ms, 100, 3600000)
LIMIT_U32(parse_connect_timeout, connect_timeout_ms, 100, 3600000)
LIMIT_U32(parse_upgrade_timeout, upgrade_timeout_ms, 100, 3600000)
LIMIT_U32(parse_max_text_length, max_text_length, 1, 1000000)
LIMIT_U32(parse_message_burst, message_burst, 1, 1000000)
LIMIT_U32(parse_typing_timeout, typing_timeout_ms, 100, 3600000)
LIMIT_U32(parse_history_limit, history_limit, 1, 1000)
LIMIT_U32(parse_max_queued_events, max_queued_events, 1, 100000)
LIMIT_U32(parse_shutdown_timeout, shutdown_timeout_ms, 0, 3600000)

static int parse_max_payload(context_t *c, json_t *v)
{
    return set_u64(c, v, 1024, 100000000, &CONFIG(c)->limits.max_payload);
}
static int parse_max_buffered(context_t *c, json_t *v)
{
    return set_u64(c, v, 65536, INT64_C(1) << 32, &CONFIG(c)->limits.max_buffered_bytes);
}
static int parse_messages_per_second(context_t *c, json_t *v)
{
    if (!json_is_number(v) || json_number_value(v) <= 0 || json_number_value(v) > 1e6)
        return fail(c, "expected a number above 0 and at most 1000000");
    CONFIG(c)->limits.messages_per_second = json_number_value(v);
    return 0;
}
static int parse_limits(context_t *c, json_t *v)
{
    static const field_t fields[] = {
        {"maxPayload", parse_max_payload},
        {"maxBufferedBytes", parse_max_buffered},
        {"pingIntervalMs", parse_ping_interval},
        {"pingTimeoutMs", parse_ping_timeout},
        {"connectTimeoutMs", parse_connect_timeout},
        {"upgradeTimeoutMs", parse_upgrade_timeout},
        {"maxTextLength", parse_max_text_length},
        {"messagesPerSecond", parse_messages_per_second},
        {"messageBurst", parse_message_burst},
        {"typingTimeoutMs", parse_typing_timeout},
        {"historyLimit", parse_history_limit},
        {"maxQueuedEvents", parse_max_queued_events},
        {"shutdownTimeoutMs", parse_shutdown_timeout},
        {NULL, NULL},
    };
    return parse_object(c, v, fields);
}

static int parse_store_driver(context_t *c, json_t *v)
{
    if (set_string(c, v, &CONFIG(c)->store.driver) != 0)
        return -1;
    const char *driver = CONFIG(c)->store.driver;
    return strcmp(driver, "sqlite") == 0 || strcmp(driver, "postgres") == 0
               ? 0
               : fail(c, "unknown store \"%s\" (expected sqlite or postgres)", driver);
}
static int parse_store_path(context_t *c, json_t *v)
{
    return set_string(c, v, &CONFIG(c)->store.path);
}
static int parse_store_url(context_t *c, json_t *v)
{
    return set_string(c, v, &CONFIG(c)->store.url);
}
/* "<file>:<line>: store.statements.<operation>", for the store's errors about it. */
static char *statement_where(context_t *c, const char *key)
{
    c->path[c->depth] = NULL;
    int line = line_of_path(c->config->source, c->config->source_length, c->path);
    char where[512];
    if (line > 0)
        snprintf(where, sizeof(where), "%s:%d: store.statements.%s", c->name, line, key);
    else
        snprintf(where, sizeof(where), "%s: store.statements.%s", c->name, key);
    return strdup(where);
}

/* {operation: SQL with :named parameters}, the application's own statements (docs/store.md);
 * the store compiles and prepares them at start. */
static int parse_store_statements(context_t *c, json_t *v)
{
    config_t *config = CONFIG(c);
    if (!json_is_object(v))
        return fail(c, "expected an object of operation: SQL statement");
    if (config->store.statements == NULL) {
        config->store.statements = calloc(STORE_OPERATION_COUNT + 1, sizeof(char *));
        config->store.statement_where = calloc(STORE_OPERATION_COUNT + 1, sizeof(char *));
        if (config->store.statements == NULL || config->store.statement_where == NULL)
            return fail(c, "out of memory");
    }
    const char *key;
    json_t *value;
    json_object_foreach(v, key, value)
    {
        enter(c, key);
        int operation = store_operation_find(key);
        if (operation < 0)
            return fail(c, "unknown store operation (docs/store.md lists them: message_add, "
                           "message_history, dm_add, user_get, ...)");
        if (!json_is_string(value) || json_string_length(value) == 0)
            return fail(c, "expected an SQL statement (a non-empty string)");
        free(config->store.statements[operation]);
        free(config->store.statement_where[operation]);
        config->store.statements[operation] = strdup(json_string_value(value));
        config->store.statement_where[operation] = statement_where(c, key);
        leave(c);
    }
    return 0;
}
/* The users read through the application's user_get statement (docs/store.md). */
static int parse_user_cache_size(context_t *c, json_t *v)
{
    return set_u32(c, v, 0, 1000000, &CONFIG(c)->store.user_cache_size);
}
static int parse_user_cache_ttl(context_t *c, json_t *v)
{
    return set_u32(c, v, 0, 86400000, &CONFIG(c)->store.user_cache_ttl_ms);
}
static int parse_user_cache(context_t *c, json_t *v)
{
    static const field_t fields[] = {
        {"size", parse_user_cache_size}, {"ttlMs", parse_user_cache_ttl}, {NULL, NULL}};
    return parse_object(c, v, fields);
}
/* PostgreSQL connections, each with its own worker and transactions (docs/store.md). */
static int parse_store_pool_size(context_t *c, json_t *v)
{
    return set_u32(c, v, 1, STORE_POOL_MAX, &CONFIG(c)->store.pool_size);
}
/* Who sends the chat's one-round-trip batches on PostgreSQL: each connection's worker thread
 * ("threads") or the loop thread ("loop"; docs/store.md). */
static int parse_store_dispatch(context_t *c, json_t *v)
{
    const char *text = json_string_value(v);
    if (text != NULL && strcmp(text, "threads") == 0)
        CONFIG(c)->store.dispatch_loop = 0;
    else if (text != NULL && strcmp(text, "loop") == 0)
        CONFIG(c)->store.dispatch_loop = 1;
    else
        return fail(c, "expected \"threads\" or \"loop\"");
    return 0;
}
static int parse_store(context_t *c, json_t *v)
{
    static const field_t fields[] = {
        {"driver", parse_store_driver},     {"path", parse_store_path},
        {"url", parse_store_url},           {"statements", parse_store_statements},
        {"userCache", parse_user_cache},    {"poolSize", parse_store_pool_size},
        {"dispatch", parse_store_dispatch}, {NULL, NULL}};
    if (parse_object(c, v, fields) != 0)
        return -1;
    if (strcmp(CONFIG(c)->store.driver, "postgres") == 0 && CONFIG(c)->store.url == NULL)
        return fail(c, "the postgres store needs \"url\" (a libpq connection URL)");
    return 0;
}

static int parse_jwt_algorithm(context_t *c, json_t *v)
{
    static const char *const known[] = {"HS256", "HS384", "HS512", "RS256", "ES256", NULL};
    if (set_string(c, v, &CONFIG(c)->jwt.algorithm) != 0)
        return -1;
    for (const char *const *each = known; *each != NULL; each++) {
        if (strcmp(*each, CONFIG(c)->jwt.algorithm) == 0)
            return 0;
    }
    return fail(c, "unknown algorithm \"%s\" (expected HS256, HS384, HS512, RS256 or ES256)",
                CONFIG(c)->jwt.algorithm);
}
static int parse_jwt_secret(context_t *c, json_t *v)
{
    return set_string(c, v, &CONFIG(c)->jwt.secret);
}
static int parse_jwt_key_file(context_t *c, json_t *v)
{
    return set_string(c, v, &CONFIG(c)->jwt.public_key_file);
}
static int parse_jwt_leeway(context_t *c, json_t *v)
{
    return set_u32(c, v, 0, 3600, &CONFIG(c)->jwt.leeway_seconds);
}
static int parse_jwt(context_t *c, json_t *v)
{
    static const field_t fields[] = {{"algorithm", parse_jwt_algorithm},
                                     {"secret", parse_jwt_secret},
                                     {"publicKeyFile", parse_jwt_key_file},
                                     {"leewaySeconds", parse_jwt_leeway},
                                     {NULL, NULL}};
    CONFIG(c)->jwt.enabled = 1;
    return parse_object(c, v, fields);
}

static int parse_redis_host(context_t *c, json_t *v)
{
    return set_string(c, v, &CONFIG(c)->session.redis_host);
}
static int parse_redis_port(context_t *c, json_t *v)
{
    return set_port(c, v, &CONFIG(c)->session.redis_port);
}
static int parse_redis_prefix(context_t *c, json_t *v)
{
    return set_string(c, v, &CONFIG(c)->session.redis_prefix);
}
static int parse_redis_password(context_t *c, json_t *v)
{
    return set_string(c, v, &CONFIG(c)->session.redis_password);
}
static int parse_redis(context_t *c, json_t *v)
{
    static const field_t fields[] = {{"host", parse_redis_host},
                                     {"port", parse_redis_port},
                                     {"prefix", parse_redis_prefix},
                                     {"password", parse_redis_password},
                                     {NULL, NULL}};
    return parse_object(c, v, fields);
}
static int parse_cookie_name(context_t *c, json_t *v)
{
    return set_string(c, v, &CONFIG(c)->session.cookie_name);
}
static int parse_session_secrets(context_t *c, json_t *v)
{
    if (set_string_list(c, v, &CONFIG(c)->session.secrets) != 0)
        return -1;
    return CONFIG(c)->session.secrets[0] != NULL ? 0 : fail(c, "expected at least one secret");
}
static int parse_session(context_t *c, json_t *v)
{
    static const field_t fields[] = {{"cookieName", parse_cookie_name},
                                     {"secrets", parse_session_secrets},
                                     {"redis", parse_redis},
                                     {NULL, NULL}};
    CONFIG(c)->session.enabled = 1;
    return parse_object(c, v, fields);
}
static int parse_keep_handshake_auth(context_t *c, json_t *v)
{
    return set_bool(c, v, &CONFIG(c)->keep_handshake_auth);
}
static int parse_auth(context_t *c, json_t *v)
{
    static const field_t fields[] = {{"jwt", parse_jwt},
                                     {"session", parse_session},
                                     {"keepHandshakeAuth", parse_keep_handshake_auth},
                                     {NULL, NULL}};
    return parse_object(c, v, fields);
}

static int parse_api_key(context_t *c, json_t *v)
{
    if (set_string(c, v, &CONFIG(c)->api.key) != 0)
        return -1;
    return strlen(CONFIG(c)->api.key) >= 16 ? 0
                                            : fail(c, "expected a key of 16 characters or more");
}
static int parse_api_max_body(context_t *c, json_t *v)
{
    return set_u64(c, v, 1024, 100000000, &CONFIG(c)->api.max_body);
}
static int parse_api(context_t *c, json_t *v)
{
    static const field_t fields[] = {{"listen", parse_api_listen},
                                     {"key", parse_api_key},
                                     {"maxBody", parse_api_max_body},
                                     {NULL, NULL}};
    CONFIG(c)->api.enabled = 1;
    return parse_object(c, v, fields);
}

static int parse_cluster_redis_url(context_t *c, json_t *v)
{
    if (set_string(c, v, &CONFIG(c)->cluster.redis_url) != 0)
        return -1;
    return strncmp(CONFIG(c)->cluster.redis_url, "redis://", 8) == 0
               ? 0
               : fail(c, "expected a redis://[:password@]host[:port] URL");
}
static int parse_cluster_redis(context_t *c, json_t *v)
{
    static const field_t fields[] = {{"url", parse_cluster_redis_url}, {NULL, NULL}};
    return parse_object(c, v, fields);
}
static int parse_cluster_mode(context_t *c, json_t *v)
{
    if (set_string(c, v, &CONFIG(c)->cluster.mode) != 0)
        return -1;
    if (strcmp(CONFIG(c)->cluster.mode, "classic") == 0 ||
        strcmp(CONFIG(c)->cluster.mode, "sharded") == 0 ||
        strcmp(CONFIG(c)->cluster.mode, "streams") == 0)
        return 0;
    return fail(c, "unknown mode \"%s\" (expected classic, sharded or streams)",
                CONFIG(c)->cluster.mode);
}
static int parse_cluster_key(context_t *c, json_t *v)
{
    if (set_string(c, v, &CONFIG(c)->cluster.key) != 0)
        return -1;
    return CONFIG(c)->cluster.key[0] != '\0' ? 0 : fail(c, "expected a non-empty prefix");
}
static int parse_cluster_requests_timeout(context_t *c, json_t *v)
{
    return set_u32(c, v, 1, 600000, &CONFIG(c)->cluster.requests_timeout_ms);
}
static int parse_cluster_presence_interval(context_t *c, json_t *v)
{
    return set_u32(c, v, 50, 600000, &CONFIG(c)->cluster.presence_interval_ms);
}
static int parse_cluster(context_t *c, json_t *v)
{
    static const field_t fields[] = {{"redis", parse_cluster_redis},
                                     {"mode", parse_cluster_mode},
                                     {"key", parse_cluster_key},
                                     {"requestsTimeoutMs", parse_cluster_requests_timeout},
                                     {"presenceIntervalMs", parse_cluster_presence_interval},
                                     {NULL, NULL}};
    CONFIG(c)->cluster.enabled = 1;
    if (parse_object(c, v, fields) != 0)
        return -1;
    return CONFIG(c)->cluster.redis_url != NULL ? 0 : fail(c, "redis.url is required");
}

static int parse_admin_namespace(context_t *c, json_t *v)
{
    if (set_string(c, v, &CONFIG(c)->admin.namespace_name) != 0)
        return -1;
    return CONFIG(c)->admin.namespace_name[0] == '/' ? 0
                                                     : fail(c, "expected a name starting with /");
}
static int parse_admin_username(context_t *c, json_t *v)
{
    if (set_string(c, v, &CONFIG(c)->admin.username) != 0)
        return -1;
    return CONFIG(c)->admin.username[0] != '\0' ? 0 : fail(c, "expected a non-empty username");
}
/* The shape of a bcrypt hash ($2a$, $2b$ or $2y$, cost, 53 characters); sioc_admin_new checks
 * the rest. A plain password here would be a mistake worth refusing. */
static int parse_admin_password_hash(context_t *c, json_t *v)
{
    if (set_string(c, v, &CONFIG(c)->admin.password_hash) != 0)
        return -1;
    const char *hash = CONFIG(c)->admin.password_hash;
    if (strlen(hash) == 60 && strncmp(hash, "$2", 2) == 0 && strchr("aby", hash[2]) != NULL &&
        hash[3] == '$' && hash[6] == '$')
        return 0;
    return fail(c, "expected a bcrypt hash (\"$2b$10$...\", 60 characters; htpasswd -nbBC 10 "
                   "'' password | cut -c2- makes one)");
}
static int parse_admin_auth(context_t *c, json_t *v)
{
    static const field_t fields[] = {{"username", parse_admin_username},
                                     {"passwordHash", parse_admin_password_hash},
                                     {NULL, NULL}};
    if (json_is_false(v))
        return 0;
    if (!json_is_object(v))
        return fail(c, "expected false (no authentication) or {\"username\", \"passwordHash\"}");
    if (parse_object(c, v, fields) != 0)
        return -1;
    if (CONFIG(c)->admin.username == NULL || CONFIG(c)->admin.password_hash == NULL)
        return fail(c, "both username and passwordHash are required");
    return 0;
}
static int parse_admin_mode(context_t *c, json_t *v)
{
    const char *mode = json_string_value(v);
    if (mode != NULL && strcmp(mode, "development") == 0)
        CONFIG(c)->admin.production = 0;
    else if (mode != NULL && strcmp(mode, "production") == 0)
        CONFIG(c)->admin.production = 1;
    else
        return fail(c, "expected \"development\" or \"production\"");
    return 0;
}
static int parse_admin_readonly(context_t *c, json_t *v)
{
    return set_bool(c, v, &CONFIG(c)->admin.readonly);
}
static int parse_admin_server_id(context_t *c, json_t *v)
{
    return set_string(c, v, &CONFIG(c)->admin.server_id);
}
static int parse_admin(context_t *c, json_t *v)
{
    static const field_t fields[] = {
        {"namespace", parse_admin_namespace}, {"auth", parse_admin_auth},
        {"mode", parse_admin_mode},           {"readonly", parse_admin_readonly},
        {"serverId", parse_admin_server_id},  {NULL, NULL}};
    CONFIG(c)->admin.enabled = 1;
    if (parse_object(c, v, fields) != 0)
        return -1;
    /* As instrument(): authentication is never off by omission. */
    return json_object_get(v, "auth") != NULL
               ? 0
               : fail(c, "missing key \"auth\" (false, or {\"username\", \"passwordHash\"})");
}

static int parse_recovery_enabled(context_t *c, json_t *v)
{
    return set_bool(c, v, &CONFIG(c)->recovery.enabled);
}
static int parse_recovery_window(context_t *c, json_t *v)
{
    return set_u32(c, v, 1000, 86400000, &CONFIG(c)->recovery.max_disconnection_duration_ms);
}
static int parse_recovery_skip_middlewares(context_t *c, json_t *v)
{
    return set_bool(c, v, &CONFIG(c)->recovery.skip_middlewares);
}
static int parse_recovery_store(context_t *c, json_t *v)
{
    if (set_string(c, v, &CONFIG(c)->recovery.store) != 0)
        return -1;
    CONFIG(c)->recovery.store_given = 1;
    if (strcmp(CONFIG(c)->recovery.store, "embedded") == 0 ||
        strcmp(CONFIG(c)->recovery.store, "memory") == 0 ||
        strcmp(CONFIG(c)->recovery.store, "redis") == 0)
        return 0;
    return fail(c, "unknown store \"%s\" (expected embedded, memory or redis)",
                CONFIG(c)->recovery.store);
}
static int parse_recovery_path(context_t *c, json_t *v)
{
    if (set_string(c, v, &CONFIG(c)->recovery.path) != 0)
        return -1;
    return CONFIG(c)->recovery.path[0] != '\0' ? 0 : fail(c, "expected a file path");
}
static int parse_recovery_max_packets(context_t *c, json_t *v)
{
    return set_u64(c, v, 1, 100000000, &CONFIG(c)->recovery.max_packets);
}
static int parse_recovery_max_sessions(context_t *c, json_t *v)
{
    return set_u64(c, v, 1, 100000000, &CONFIG(c)->recovery.max_sessions);
}
/* true / false (as before), or an object: present = on unless "enabled": false. */
static int parse_recovery_max_pending(context_t *c, json_t *v)
{
    return set_u64(c, v, 1, 100000000, &CONFIG(c)->recovery.max_pending);
}

static int parse_recovery_max_pending_bytes(context_t *c, json_t *v)
{
    return set_u64(c, v, 1024, INT64_C(1) << 40, &CONFIG(c)->recovery.max_pending_bytes);
}

static int parse_recovery(context_t *c, json_t *v)
{
    static const field_t fields[] = {{"enabled", parse_recovery_enabled},
                                     {"maxDisconnectionDurationMs", parse_recovery_window},
                                     {"skipMiddlewares", parse_recovery_skip_middlewares},
                                     {"store", parse_recovery_store},
                                     {"path", parse_recovery_path},
                                     {"maxPackets", parse_recovery_max_packets},
                                     {"maxSessions", parse_recovery_max_sessions},
                                     {"maxPending", parse_recovery_max_pending},
                                     {"maxPendingBytes", parse_recovery_max_pending_bytes},
                                     {NULL, NULL}};
    if (json_is_boolean(v))
        return set_bool(c, v, &CONFIG(c)->recovery.enabled);
    if (!json_is_object(v))
        return fail(c, "expected true, false or an object");
    CONFIG(c)->recovery.enabled = 1;
    return parse_object(c, v, fields);
}

/* httpCompression / perMessageDeflate as engine.io takes them: false, true, or an object of
 * options (only threshold here), which turns it on. */
static int parse_http_threshold(context_t *c, json_t *v)
{
    return set_u64(c, v, 0, 100000000, &CONFIG(c)->http_compression.threshold);
}
static int parse_deflate_threshold(context_t *c, json_t *v)
{
    return set_u64(c, v, 0, 100000000, &CONFIG(c)->per_message_deflate.threshold);
}
static int parse_compression(context_t *c, json_t *v, config_compression_t *target,
                             const field_t *fields)
{
    if (json_is_boolean(v))
        return set_bool(c, v, &target->enabled);
    if (!json_is_object(v))
        return fail(c, "expected true, false or {\"threshold\": bytes}");
    target->enabled = 1;
    return parse_object(c, v, fields);
}
static int parse_http_compression(context_t *c, json_t *v)
{
    static const field_t fields[] = {{"threshold", parse_http_threshold}, {NULL, NULL}};
    return parse_compression(c, v, &CONFIG(c)->http_compression, fields);
}
static int parse_allow_eio3(context_t *c, json_t *v)
{
    return set_bool(c, v, &CONFIG(c)->allow_eio3);
}

static int parse_per_message_deflate(context_t *c, json_t *v)
{
    static const field_t fields[] = {{"threshold", parse_deflate_threshold}, {NULL, NULL}};
    return parse_compression(c, v, &CONFIG(c)->per_message_deflate, fields);
}

static int parse_log_level(context_t *c, json_t *v)
{
    if (set_string(c, v, &CONFIG(c)->log_level) != 0)
        return -1;
    static const char *const levels[] = {"error", "warn", "info", "debug", NULL};
    for (const char *const *each = levels; *each != NULL; each++) {
        if (strcmp(*each, CONFIG(c)->log_level) == 0)
            return 0;
    }
    return fail(c, "unknown level \"%s\" (expected error, warn, info or debug)",
                CONFIG(c)->log_level);
}
static int parse_log_format(context_t *c, json_t *v)
{
    if (set_string(c, v, &CONFIG(c)->log_format) != 0)
        return -1;
    if (strcmp(CONFIG(c)->log_format, "text") == 0 || strcmp(CONFIG(c)->log_format, "json") == 0)
        return 0;
    return fail(c, "unknown format \"%s\" (expected text or json)", CONFIG(c)->log_format);
}
static int parse_log(context_t *c, json_t *v)
{
    static const field_t fields[] = {
        {"level", parse_log_level}, {"format", parse_log_format}, {NULL, NULL}};
    return parse_object(c, v, fields);
}

/* ---- channels
 * ------------------------------------------------------------------------------------ */

static config_channel_t *current_channel(context_t *c)
{
    return &CONFIG(c)->channels[CONFIG(c)->channel_count - 1];
}

static int parse_channel_driver(context_t *c, json_t *v)
{
    static const char *const drivers[] = {"main",  "chat", "notifications", "feed", "bench",
                                          "proxy", NULL};
    if (set_string(c, v, &current_channel(c)->driver) != 0)
        return -1;
    for (const char *const *each = drivers; *each != NULL; each++) {
        if (strcmp(*each, current_channel(c)->driver) == 0)
            return 0;
    }
    return fail(c,
                "unknown driver \"%s\" (expected main, chat, notifications, feed, bench or proxy)",
                current_channel(c)->driver);
}
static int parse_channel_enabled(context_t *c, json_t *v)
{
    return set_bool(c, v, &current_channel(c)->enabled);
}
static int parse_channel_auth(context_t *c, json_t *v)
{
    static const char *const modes[] = {"none", "jwt", "session", "any", "optional", NULL};
    if (!json_is_string(v))
        return fail(c, "expected a string");
    for (int mode = 0; modes[mode] != NULL; mode++) {
        if (strcmp(modes[mode], json_string_value(v)) == 0) {
            current_channel(c)->auth = (config_auth_mode_t)mode;
            return 0;
        }
    }
    return fail(c, "unknown auth \"%s\" (expected none, jwt, session, any or optional)",
                json_string_value(v));
}
static int parse_channel_options(context_t *c, json_t *v)
{
    if (!json_is_object(v))
        return fail(c, "expected an object");
    json_decref(current_channel(c)->options);
    current_channel(c)->options = json_incref(v);
    return 0;
}

static int parse_channel(context_t *c, const char *name, json_t *v)
{
    static const field_t fields[] = {{"driver", parse_channel_driver},
                                     {"enabled", parse_channel_enabled},
                                     {"auth", parse_channel_auth},
                                     {"options", parse_channel_options},
                                     {NULL, NULL}};
    config_t *config = CONFIG(c);
    if (name[0] != '/')
        return fail(c, "a channel name is a namespace and starts with /");
    config_channel_t *channels =
        realloc(config->channels, (config->channel_count + 1) * sizeof(*channels));
    if (channels == NULL)
        return fail(c, "out of memory");
    config->channels = channels;
    config_channel_t *channel = &channels[config->channel_count++];
    memset(channel, 0, sizeof(*channel));
    channel->name = strdup(name);
    channel->enabled = 1;
    channel->auth = CONFIG_AUTH_JWT;
    channel->options = json_object();
    c->path[c->depth] = NULL;
    channel->line = line_of_path(config->source, config->source_length, c->path);
    if (parse_object(c, v, fields) != 0)
        return -1;
    return channel->driver != NULL ? 0 : fail(c, "missing key \"driver\"");
}

static int parse_channels(context_t *c, json_t *v)
{
    if (!json_is_object(v))
        return fail(c, "expected an object of namespace: {driver, ...}");
    const char *name;
    json_t *channel;
    json_object_foreach(v, name, channel)
    {
        enter(c, name);
        if (parse_channel(c, name, channel) != 0)
            return -1;
        leave(c);
    }
    return 0;
}

/* ---- defaults and checks across fields --------------------------------------------------------
 */

static void set_defaults(config_t *config)
{
    memset(config, 0, sizeof(*config));
    config->listen.host = strdup("127.0.0.1");
    config->listen.port = 3000;
    config->path = strdup("/socket.io/");
    config->cors_credentials = 1;
    config->limits.ping_interval_ms = 25000;
    config->limits.ping_timeout_ms = 20000;
    config->limits.connect_timeout_ms = 45000;
    config->limits.upgrade_timeout_ms = 10000;
    config->limits.max_payload = 1000000;
    config->limits.max_buffered_bytes = 8u * 1024 * 1024;
    config->limits.max_text_length = 2000;
    config->limits.messages_per_second = 10;
    config->limits.message_burst = 20;
    config->limits.typing_timeout_ms = 5000;
    config->limits.history_limit = 100;
    config->limits.max_queued_events = 100;
    config->limits.shutdown_timeout_ms = 5000;
    config->http_compression.enabled = 1;
    config->http_compression.threshold = 1024;
    config->per_message_deflate.threshold = 1024;
    config->store.driver = strdup("sqlite");
    config->store.path = strdup("sioc.db");
    config->store.user_cache_size = 4096;
    config->store.user_cache_ttl_ms = 60000;
    config->store.pool_size = STORE_POOL_DEFAULT;
    config->jwt.algorithm = strdup("HS256");
    config->session.cookie_name = strdup("connect.sid");
    config->session.redis_host = strdup("127.0.0.1");
    config->session.redis_port = 6379;
    config->session.redis_prefix = strdup("sess:");
    config->api.listen.host = strdup("127.0.0.1");
    config->api.listen.port = 3001;
    config->api.max_body = 1000000;
    config->log_level = strdup("info");
    config->log_format = strdup("text");
    config->cluster.mode = strdup("classic");
    config->cluster.key = strdup("socket.io");
    config->cluster.requests_timeout_ms = 5000;
    config->cluster.presence_interval_ms = 2000;
    config->recovery.max_disconnection_duration_ms = 120000;
    config->recovery.skip_middlewares = 1;
    config->recovery.store = strdup("embedded");
    config->recovery.max_packets = 100000;
    config->recovery.max_sessions = 100000;
    config->recovery.max_pending = 10000;
    config->recovery.max_pending_bytes = 64 * 1024 * 1024;
    config->admin.namespace_name = strdup("/admin");
}

/* The first enabled channel with auth mode, or NULL. */
static const config_channel_t *channel_using(const config_t *config, config_auth_mode_t mode)
{
    for (size_t i = 0; i < config->channel_count; i++) {
        const config_channel_t *channel = &config->channels[i];
        if (channel->enabled && channel->auth == mode)
            return channel;
    }
    return NULL;
}

/* The first enabled channel taking whichever proof is configured (any, optional), or NULL. */
static const config_channel_t *channel_either(const config_t *config)
{
    const config_channel_t *any = channel_using(config, CONFIG_AUTH_ANY);
    return any != NULL ? any : channel_using(config, CONFIG_AUTH_OPTIONAL);
}

/* Points a message at the channel that needs what is missing. */
static int fail_at_channel(context_t *c, const config_channel_t *channel, const char *message)
{
    c->depth = 0;
    enter(c, "channels");
    enter(c, channel->name);
    return fail(c, "%s", message);
}

/* In streams mode the stream is the log every node reads: the Redis store is the default. */
static int check_recovery_store(context_t *c)
{
    config_t *config = CONFIG(c);
    int streams = config->cluster.enabled && strcmp(config->cluster.mode, "streams") == 0;
    if (streams && !config->recovery.store_given) {
        char *redis = strdup("redis");
        if (redis == NULL)
            return fail(c, "out of memory");
        free(config->recovery.store);
        config->recovery.store = redis;
    }
    if (!streams && strcmp(config->recovery.store, "redis") == 0) {
        enter(c, "recovery");
        enter(c, "store");
        return fail(c, "redis needs cluster.mode \"streams\"");
    }
    return 0;
}

static int check_consistency(context_t *c)
{
    config_t *config = CONFIG(c);
    c->depth = 0;
    if (config->channel_count == 0) {
        enter(c, "channels");
        return fail(c, "at least one channel is needed");
    }
    /* any and optional use the kinds of proof that are configured: a session-only setup needs
     * no JWT secret. */
    const config_channel_t *either = channel_either(config);
    if (either != NULL && !config->jwt.enabled && !config->session.enabled)
        return fail_at_channel(c, either,
                               "auth any and optional need auth.jwt or auth.session (or both)");
    const config_channel_t *jwt_channel = channel_using(config, CONFIG_AUTH_JWT);
    if (jwt_channel == NULL && config->jwt.enabled)
        jwt_channel = either;
    if (jwt_channel != NULL) {
        int hmac = config->jwt.algorithm[0] == 'H';
        if (hmac && (config->jwt.secret == NULL || strlen(config->jwt.secret) < 16))
            return fail_at_channel(c, jwt_channel,
                                   "jwt auth needs auth.jwt.secret (16 characters or more)");
        if (!hmac && config->jwt.public_key_file == NULL)
            return fail_at_channel(c, jwt_channel, "jwt auth needs auth.jwt.publicKeyFile");
        config->jwt.enabled = 1;
    }
    const config_channel_t *session_channel = channel_using(config, CONFIG_AUTH_SESSION);
    if (session_channel == NULL && config->session.enabled)
        session_channel = either;
    if (session_channel != NULL && config->session.secrets == NULL)
        return fail_at_channel(c, session_channel, "session auth needs auth.session.secrets");
    for (size_t i = 0; config->admin.enabled && i < config->channel_count; i++) {
        if (strcmp(config->channels[i].name, config->admin.namespace_name) == 0) {
            enter(c, "admin");
            enter(c, "namespace");
            return fail(c, "\"%s\" is a channel's namespace too", config->admin.namespace_name);
        }
    }
    if (config->api.enabled && config->api.key == NULL) {
        enter(c, "api");
        return fail(c, "missing key \"key\" (the API key back ends send)");
    }
    return check_recovery_store(c);
}

/* ---- entry points ------------------------------------------------------------------------------
 */

static int parse_root(context_t *c, json_t *root)
{
    static const field_t fields[] = {
        {"listen", parse_listen},
        {"path", parse_path},
        {"cors", parse_cors},
        {"limits", parse_limits},
        {"store", parse_store},
        {"auth", parse_auth},
        {"api", parse_api},
        {"cluster", parse_cluster},
        {"recovery", parse_recovery},
        {"log", parse_log},
        {"channels", parse_channels},
        {"httpCompression", parse_http_compression},
        {"perMessageDeflate", parse_per_message_deflate},
        {"admin", parse_admin},
        {"allowEIO3", parse_allow_eio3},
        {NULL, NULL},
    };
    if (parse_object(c, root, fields) != 0)
        return -1;
    return check_consistency(c);
}

int config_load_text(const char *name, const char *text, size_t length, config_t *out, char *error,
                     size_t error_size)
{
    set_defaults(out);
    out->file = strdup(name);
    out->source = malloc(length + 1);
    if (out->source == NULL) {
        snprintf(error, error_size, "%s: out of memory", name);
        return -1;
    }
    memcpy(out->source, text, length);
    out->source[length] = '\0';
    out->source_length = length;
    json_error_t json_error;
    json_t *root = json_loadb(text, length, JSON_REJECT_DUPLICATES, &json_error);
    if (root == NULL) {
        snprintf(error, error_size, "%s:%d:%d: %s", name, json_error.line, json_error.column,
                 json_error.text);
        return -1;
    }
    context_t context = {.config = out, .name = name, .error = error, .error_size = error_size};
    int rc = parse_root(&context, root);
    json_decref(root);
    return rc;
}

int config_load_file(const char *path, config_t *out, char *error, size_t error_size)
{
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        set_defaults(out);
        snprintf(error, error_size, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *text = NULL;
    size_t length = 0;
    size_t capacity = 0;
    while (!feof(file) && !ferror(file) && length < 16 * 1024 * 1024) {
        if (length == capacity) {
            capacity = capacity ? capacity * 2 : 8192;
            char *grown = realloc(text, capacity);
            if (grown == NULL)
                break;
            text = grown;
        }
        length += fread(text + length, 1, capacity - length, file);
    }
    fclose(file);
    int rc = config_load_text(path, text ? text : "", length, out, error, error_size);
    free(text);
    return rc;
}

static char *random_secret(void)
{
    unsigned char bytes[24];
    char *secret = malloc(sizeof(bytes) * 2 + 1);
    if (secret == NULL || RAND_bytes(bytes, sizeof(bytes)) != 1) {
        free(secret);
        return NULL;
    }
    for (size_t i = 0; i < sizeof(bytes); i++)
        snprintf(secret + i * 2, 3, "%02x", bytes[i]);
    return secret;
}

int config_load_default(config_t *out, char *error, size_t error_size)
{
    set_defaults(out);
    const char *cors[] = {"http://localhost:3000", "http://localhost:5173", NULL};
    out->cors_origins = calloc(3, sizeof(char *));
    for (int i = 0; cors[i] != NULL; i++)
        out->cors_origins[i] = strdup(cors[i]);
    const char *secret = getenv("SIOC_JWT_SECRET");
    out->jwt.enabled = 1;
    out->jwt.secret = secret != NULL ? strdup(secret) : random_secret();
    const char *key = getenv("SIOC_API_KEY");
    out->api.enabled = key != NULL;
    out->api.key = key != NULL ? strdup(key) : NULL;
    out->channels = calloc(1, sizeof(config_channel_t));
    out->channel_count = 1;
    out->channels[0].name = strdup("/");
    out->channels[0].driver = strdup("chat");
    out->channels[0].enabled = 1;
    out->channels[0].auth = CONFIG_AUTH_JWT;
    out->channels[0].options = json_object();
    if (out->jwt.secret == NULL || strlen(out->jwt.secret) < 16) {
        snprintf(error, error_size, "SIOC_JWT_SECRET: 16 characters or more are needed");
        return -1;
    }
    if (out->api.key != NULL && strlen(out->api.key) < 16) {
        snprintf(error, error_size, "SIOC_API_KEY: 16 characters or more are needed");
        return -1;
    }
    return 0;
}

static void free_list(char **list)
{
    for (char **item = list; item != NULL && *item != NULL; item++)
        free(*item);
    free(list);
}

void config_free(config_t *config)
{
    if (config == NULL)
        return;
    free(config->file);
    free(config->listen.host);
    free(config->listen.tls_cert);
    free(config->listen.tls_key);
    free(config->path);
    free_list(config->cors_origins);
    free(config->store.driver);
    free(config->store.path);
    free(config->store.url);
    for (int i = 0; config->store.statements != NULL && i < STORE_OPERATION_COUNT; i++) {
        free(config->store.statements[i]);
        free(config->store.statement_where[i]);
    }
    free(config->store.statements);
    free(config->store.statement_where);
    free(config->jwt.algorithm);
    free(config->jwt.secret);
    free(config->jwt.public_key_file);
    free(config->session.cookie_name);
    free_list(config->session.secrets);
    free(config->session.redis_host);
    free(config->session.redis_prefix);
    free(config->session.redis_password);
    free(config->api.listen.host);
    free(config->api.listen.tls_cert);
    free(config->api.listen.tls_key);
    free(config->api.key);
    free(config->log_level);
    free(config->log_format);
    free(config->cluster.redis_url);
    free(config->cluster.mode);
    free(config->cluster.key);
    free(config->recovery.store);
    free(config->recovery.path);
    free(config->admin.namespace_name);
    free(config->admin.username);
    free(config->admin.password_hash);
    free(config->admin.server_id);
    for (size_t i = 0; i < config->channel_count; i++) {
        free(config->channels[i].name);
        free(config->channels[i].driver);
        json_decref(config->channels[i].options);
    }
    free(config->channels);
    free(config->source);
    memset(config, 0, sizeof(*config));
}
