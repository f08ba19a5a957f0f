#include "reload.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

/* The limits the daemon reads at use time, by their key in the file. */
#define LIVE_LIMITS(X)                                                                             \
    X("maxTextLength", max_text_length)                                                            \
    X("historyLimit", history_limit)                                                               \
    X("typingTimeoutMs", typing_timeout_ms)                                                        \
    X("maxQueuedEvents", max_queued_events)                                                        \
    X("messageBurst", message_burst)

/* The Engine.IO limits, handed to the library (sioc_server_set_limits) by serve.c: for the
 * sessions that open from then on, since an open one keeps those of its handshake. */
#define ENGINE_LIMITS(X)                                                                           \
    X("pingIntervalMs", ping_interval_ms)                                                          \
    X("pingTimeoutMs", ping_timeout_ms)                                                            \
    X("connectTimeoutMs", connect_timeout_ms)                                                      \
    X("upgradeTimeoutMs", upgrade_timeout_ms)                                                      \
    X("maxPayload", max_payload)                                                                   \
    X("maxBufferedBytes", max_buffered_bytes)

static int swap_string(const char *name, char **running, char **next)
{
    int changed =
        (*running == NULL) != (*next == NULL) || (*running != NULL && strcmp(*running, *next) != 0);
    char *kept = *running;
    *running = *next;
    *next = kept;
    if (changed)
        log_info("SIGHUP: %s changed", name);
    return changed;
}

static int apply_limits(config_t *running, const config_t *next)
{
    int changed = 0;
#define APPLY(key, field)                                                                          \
    if (running->limits.field != next->limits.field) {                                             \
        log_info("SIGHUP: limits.%s %lu -> %lu", key, (unsigned long)running->limits.field,        \
                 (unsigned long)next->limits.field);                                               \
        running->limits.field = next->limits.field;                                                \
        changed++;                                                                                 \
    }
    LIVE_LIMITS(APPLY)
#undef APPLY
#define APPLY_ENGINE(key, field)                                                                   \
    if (running->limits.field != next->limits.field) {                                             \
        log_info("SIGHUP: limits.%s %llu -> %llu (sessions that open from now on)", key,           \
                 (unsigned long long)running->limits.field,                                        \
                 (unsigned long long)next->limits.field);                                          \
        running->limits.field = next->limits.field;                                                \
        changed++;                                                                                 \
    }
    ENGINE_LIMITS(APPLY_ENGINE)
#undef APPLY_ENGINE
    if (running->limits.messages_per_second != next->limits.messages_per_second) {
        log_info("SIGHUP: limits.messagesPerSecond %g -> %g", running->limits.messages_per_second,
                 next->limits.messages_per_second);
        running->limits.messages_per_second = next->limits.messages_per_second;
        changed++;
    }
    return changed;
}

static int same_origins(char **a, char **b)
{
    size_t i = 0;
    for (; a != NULL && b != NULL && a[i] != NULL && b[i] != NULL; i++)
        if (strcmp(a[i], b[i]) != 0)
            return 0;
    return (a == NULL) == (b == NULL) && (a == NULL || (a[i] == NULL && b[i] == NULL));
}

static int apply_cors(config_t *running, config_t *next)
{
    if (same_origins(running->cors_origins, next->cors_origins) &&
        running->cors_credentials == next->cors_credentials)
        return 0;
    char **kept = running->cors_origins;
    running->cors_origins = next->cors_origins;
    next->cors_origins = kept;
    running->cors_credentials = next->cors_credentials;
    log_info("SIGHUP: cors changed");
    return 1;
}

/* The file without what a reload applies: what is left must be equal, or needs a restart. */
static json_t *restart_part(const config_t *config)
{
    json_t *root = json_loadb(config->source, config->source_length, 0, NULL);
    json_object_del(root, "log");
    json_object_del(root, "cors");
    /* TLS files are read again on every reload (serve.c); only turning TLS on or off needs a
     * restart, so what stays is whether the listener has it. */
    /* A channel is turned on or off by serve.c; the rest of its definition needs a restart. */
    const char *name;
    json_t *channel;
    json_object_foreach(json_object_get(root, "channels"), name, channel)
        json_object_del(channel, "enabled");
    json_t *api_listen = json_object_get(json_object_get(root, "api"), "listen");
    json_t *listeners[] = {json_object_get(root, "listen"), api_listen};
    for (size_t i = 0; i < 2; i++)
        if (json_object_get(listeners[i], "tls") != NULL)
            json_object_set_new(listeners[i], "tls", json_true());
    json_object_del(json_object_get(root, "api"), "key");
    json_t *limits = json_object_get(root, "limits");
#define DROP(key, field) json_object_del(limits, key);
    LIVE_LIMITS(DROP)
    ENGINE_LIMITS(DROP)
#undef DROP
    json_object_del(limits, "messagesPerSecond");
    /* No limits is the same as only live ones; and an object on both sides names each key. */
    if (root != NULL && limits == NULL)
        json_object_set_new(root, "limits", json_object());
    return root;
}

static void append(char *out, size_t size, const char *prefix, const char *key)
{
    size_t used = strlen(out);
    if (used + 1 < size)
        snprintf(out + used, size - used, "%s%s%s", used > 0 ? ", " : "", prefix, key);
}

/* Keys of object a or b whose values differ, prefixed ("limits."). */
static void list_differences(const json_t *a, const json_t *b, const char *prefix, char *out,
                             size_t size)
{
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)a, key, value)
    {
        json_t *other = json_object_get(b, key);
        if (strcmp(prefix, "") == 0 && strcmp(key, "limits") == 0 && json_is_object(value) &&
            json_is_object(other))
            list_differences(value, other, "limits.", out, size);
        else if (!json_equal(value, other))
            append(out, size, prefix, key);
    }
    json_object_foreach((json_t *)b, key, value)
    {
        if (json_object_get(a, key) == NULL)
            append(out, size, prefix, key);
    }
}

int reload_apply(config_t *running, config_t *next, int *cors_changed, char *restart,
                 size_t restart_size)
{
    int changed = 0;
    *cors_changed = apply_cors(running, next);
    changed += *cors_changed;
    changed += swap_string("log.level", &running->log_level, &next->log_level);
    changed += swap_string("log.format", &running->log_format, &next->log_format);
    log_set_level_name(running->log_level);
    log_set_format_name(running->log_format);
    if (running->api.enabled && next->api.enabled && next->api.key != NULL)
        changed += swap_string("api.key", &running->api.key, &next->api.key);
    changed += apply_limits(running, next);
    restart[0] = '\0';
    json_t *was = restart_part(running);
    json_t *now = restart_part(next);
    if (was == NULL || now == NULL)
        append(restart, restart_size, "", "(the file)");
    else
        list_differences(was, now, "", restart, restart_size);
    json_decref(was);
    json_decref(now);
    return changed;
}
