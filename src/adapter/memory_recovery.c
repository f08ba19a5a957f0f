/* The in-memory recovery store (sioc_adapter.h): the default when recovery is on and no store
 * is given, as socket.io-adapter's SessionAwareAdapter. The log keeps each packet's data and
 * attachments for max_disconnection_duration_ms; sessions are kept from the disconnection for
 * their time to live. Offsets are random ids (Node: yeast). Every completion runs before the
 * operation returns: nothing here waits. */
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "adapter/adapter.h"
#include "core/random.h"

typedef struct entry_s {
    char offset[SIOC_ID_LENGTH + 1];
    uint64_t time_ms;
    char *nsp;
    json_t *data;
    json_t *rooms;
    json_t *except;
    sioc_binary_t *attachments;
    size_t attachment_count;
    struct entry_s *next;
    UT_hash_handle hh;
} entry_t;

typedef struct session_s {
    char *pid;
    char *sid;
    char *nsp;
    json_t *rooms;
    json_t *data;
    uint64_t expires_ms;
    UT_hash_handle hh;
} session_t;

typedef struct memory_store_s {
    sioc_recovery_store_t base;
    uv_loop_t *loop;
    uint32_t window_ms;
    uv_timer_t expiry;
    entry_t *oldest;
    entry_t *newest;
    entry_t *by_offset;
    session_t *sessions;
} memory_store_t;

static void free_entry(entry_t *entry)
{
    for (size_t i = 0; i < entry->attachment_count; i++)
        free((void *)entry->attachments[i].data);
    free(entry->attachments);
    free(entry->nsp);
    json_decref(entry->data);
    json_decref(entry->rooms);
    json_decref(entry->except);
    free(entry);
}

static void free_session(session_t *session)
{
    free(session->pid);
    free(session->sid);
    free(session->nsp);
    json_decref(session->rooms);
    json_decref(session->data);
    free(session);
}

static void drop_oldest(memory_store_t *store)
{
    entry_t *entry = store->oldest;
    store->oldest = entry->next;
    if (store->oldest == NULL)
        store->newest = NULL;
    HASH_DEL(store->by_offset, entry);
    free_entry(entry);
}

static void expire(memory_store_t *store)
{
    uint64_t now = uv_now(store->loop);
    while (store->oldest != NULL && store->oldest->time_ms + store->window_ms < now)
        drop_oldest(store);
    session_t *session, *next;
    HASH_ITER(hh, store->sessions, session, next)
    {
        if (session->expires_ms < now) {
            HASH_DEL(store->sessions, session);
            free_session(session);
        }
    }
}

static void on_expiry(uv_timer_t *timer)
{
    expire(timer->data);
}

static json_t *names_array(const char *const *names, size_t count)
{
    json_t *array = json_array();
    for (size_t i = 0; array != NULL && i < count; i++) {
        if (json_array_append_new(array, json_string(names[i])) != 0) {
            json_decref(array);
            return NULL;
        }
    }
    return array;
}

static int copy_attachments(entry_t *entry, const sioc_recovery_packet_t *packet)
{
    if (packet->attachment_count == 0)
        return 0;
    entry->attachments = calloc(packet->attachment_count, sizeof(*entry->attachments));
    if (entry->attachments == NULL)
        return SIOC_ENOMEM;
    for (size_t i = 0; i < packet->attachment_count; i++) {
        size_t length = packet->attachments[i].length;
        uint8_t *copy = malloc(length ? length : 1);
        if (copy == NULL)
            return SIOC_ENOMEM;
        memcpy(copy, packet->attachments[i].data, length);
        entry->attachments[i].data = copy;
        entry->attachments[i].length = length;
        entry->attachment_count++;
    }
    return 0;
}

static int memory_append(sioc_recovery_store_t *base, const sioc_recovery_packet_t *packet,
                         sioc_recovery_append_cb callback, void *data)
{
    memory_store_t *store = (memory_store_t *)base;
    entry_t *entry = calloc(1, sizeof(*entry));
    if (entry == NULL)
        return SIOC_ENOMEM;
    entry->time_ms = uv_now(store->loop);
    entry->nsp = strdup(packet->nsp);
    /* A deep copy: the application may change its arguments after the broadcast. */
    entry->data = json_deep_copy(packet->data);
    entry->rooms = names_array(packet->opts->rooms, packet->opts->room_count);
    entry->except = names_array(packet->opts->except, packet->opts->except_count);
    if (sioc__random_id(entry->offset) != 0 || entry->nsp == NULL || entry->data == NULL ||
        entry->rooms == NULL || entry->except == NULL || copy_attachments(entry, packet) != 0) {
        free_entry(entry);
        return SIOC_ENOMEM;
    }
    if (store->newest != NULL)
        store->newest->next = entry;
    else
        store->oldest = entry;
    store->newest = entry;
    HASH_ADD_STR(store->by_offset, offset, entry);
    expire(store);
    callback(0, entry->offset, data);
    return 0;
}

static void memory_save(sioc_recovery_store_t *base, const sioc_recovery_session_t *in)
{
    memory_store_t *store = (memory_store_t *)base;
    if (in->connected)
        return; /* the socket lives in this process, as this store does */
    session_t *session = calloc(1, sizeof(*session));
    if (session == NULL)
        return;
    session->pid = strdup(in->pid);
    session->sid = strdup(in->sid);
    session->nsp = strdup(in->nsp);
    session->rooms = json_deep_copy(in->rooms);
    session->data = json_deep_copy(in->data);
    session->expires_ms = uv_now(store->loop) + in->ttl_ms;
    if (session->pid == NULL || session->sid == NULL || session->nsp == NULL ||
        session->rooms == NULL || (in->data != NULL && session->data == NULL)) {
        free_session(session);
        return;
    }
    session_t *previous = NULL;
    HASH_FIND_STR(store->sessions, session->pid, previous);
    if (previous != NULL) {
        HASH_DEL(store->sessions, previous);
        free_session(previous);
    }
    HASH_ADD_KEYPTR(hh, store->sessions, session->pid, strlen(session->pid), session);
}

static void memory_drop(sioc_recovery_store_t *base, const char *pid)
{
    memory_store_t *store = (memory_store_t *)base;
    session_t *session = NULL;
    HASH_FIND_STR(store->sessions, pid, session);
    if (session != NULL) {
        HASH_DEL(store->sessions, session);
        free_session(session);
    }
}

static int array_has(json_t *array, const char *name)
{
    size_t index;
    json_t *value;
    json_array_foreach(array, index, value)
    {
        if (strcmp(json_string_value(value), name) == 0)
            return 1;
    }
    return 0;
}

/* sioc_recovery_should_include on the entry's own name arrays (a packet from another server
 * may name more rooms than a sioc_broadcast_t holds). */
static int entry_selects(const entry_t *entry, const session_t *session)
{
    if (strcmp(entry->nsp, session->nsp) != 0)
        return 0;
    int included = json_array_size(entry->rooms) == 0;
    size_t index;
    json_t *room;
    json_array_foreach(session->rooms, index, room)
    {
        const char *name = json_string_value(room);
        if (name == NULL)
            continue;
        if (array_has(entry->except, name))
            return 0;
        if (!included && array_has(entry->rooms, name))
            included = 1;
    }
    return included;
}

/* The packets after from that session's rooms select, as views into the entries. */
static sioc_recovery_missed_t *collect_missed(const entry_t *from, const session_t *session,
                                              size_t *count)
{
    size_t capacity = 0;
    sioc_recovery_missed_t *missed = NULL;
    *count = 0;
    for (const entry_t *entry = from->next; entry != NULL; entry = entry->next) {
        if (!entry_selects(entry, session))
            continue;
        if (*count == capacity) {
            capacity = capacity ? capacity * 2 : 16;
            sioc_recovery_missed_t *grown = realloc(missed, capacity * sizeof(*missed));
            if (grown == NULL) {
                free(missed);
                return NULL;
            }
            missed = grown;
        }
        sioc_recovery_missed_t view = {entry->offset, entry->data, entry->attachments,
                                       entry->attachment_count};
        missed[(*count)++] = view;
    }
    return missed != NULL ? missed : calloc(1, sizeof(*missed));
}

static int memory_restore(sioc_recovery_store_t *base, const char *pid, const char *offset,
                          const char *nsp, sioc_recovery_restore_cb callback, void *data)
{
    memory_store_t *store = (memory_store_t *)base;
    expire(store);
    session_t *session = NULL;
    HASH_FIND_STR(store->sessions, pid, session);
    entry_t *from = NULL;
    HASH_FIND_STR(store->by_offset, offset, from);
    if (session == NULL || from == NULL || strcmp(session->nsp, nsp) != 0) {
        callback(0, NULL, NULL, 0, data);
        return 0;
    }
    size_t count;
    sioc_recovery_missed_t *missed = collect_missed(from, session, &count);
    if (missed == NULL)
        return SIOC_ENOMEM;
    /* Taken before the callback runs: a second client with the same pid finds nothing. */
    HASH_DEL(store->sessions, session);
    sioc_recovery_session_t view = {
        session->pid, session->sid, session->nsp, session->rooms, session->data, 0, 0};
    callback(0, &view, missed, count, data);
    free(missed);
    free_session(session);
    return 0;
}

static const sioc_recovery_store_ops_t memory_store_ops = {memory_append, memory_save, memory_drop,
                                                           memory_restore};

sioc_recovery_store_t *sioc__memory_recovery_new(uv_loop_t *loop, uint32_t window_ms)
{
    memory_store_t *store = calloc(1, sizeof(*store));
    if (store == NULL)
        return NULL;
    store->base.ops = &memory_store_ops;
    store->loop = loop;
    store->window_ms = window_ms;
    uv_timer_init(loop, &store->expiry);
    store->expiry.data = store;
    uint64_t period = window_ms / 4 + 1;
    uv_timer_start(&store->expiry, on_expiry, period, period);
    uv_unref((uv_handle_t *)&store->expiry);
    return &store->base;
}

static void on_expiry_closed(uv_handle_t *handle)
{
    free(handle->data);
}

void sioc__memory_recovery_free(sioc_recovery_store_t *base)
{
    memory_store_t *store = (memory_store_t *)base;
    if (store == NULL)
        return;
    while (store->oldest != NULL)
        drop_oldest(store);
    session_t *session, *next;
    HASH_ITER(hh, store->sessions, session, next)
    {
        HASH_DEL(store->sessions, session);
        free_session(session);
    }
    uv_close((uv_handle_t *)&store->expiry, on_expiry_closed);
}

static int has_name(const char *const *names, size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++) {
        if (strcmp(names[i], name) == 0)
            return 1;
    }
    return 0;
}

int sioc_recovery_should_include(json_t *session_rooms, const sioc_adapter_opts_t *opts)
{
    int included = opts->room_count == 0;
    size_t index;
    json_t *room;
    json_array_foreach(session_rooms, index, room)
    {
        const char *name = json_string_value(room);
        if (name == NULL)
            continue;
        if (has_name(opts->except, opts->except_count, name))
            return 0;
        if (!included && has_name(opts->rooms, opts->room_count, name))
            included = 1;
    }
    return included;
}
