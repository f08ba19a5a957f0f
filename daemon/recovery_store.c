/* The embedded recovery store (recovery_store.h). Tables:
 *   meta(key, value)                       'epoch': the offsets' prefix, drawn at creation
 *   log(seq AUTOINCREMENT, time_ms, nsp, rooms, except_rooms, data, attachments)
 *   attachment(seq, idx, data)             binary arguments of log rows
 *   session(pid, sid, nsp, rooms, data, expires_ms)
 *   presence(nsp, user_key, user_id, rooms)
 * Times are wall-clock milliseconds (they must mean the same to the next process). Everything
 * read back is checked (recovery_codec.h): a row with garbage in it is deleted and the client
 * asking for it gets a fresh session, never a partial one. */
#include "recovery_store.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>
#include <uthash.h>

#include "log.h"
#include "recovery_codec.h"

#define BATCH_MAX 1024           /* operations per transaction: bounds the first one's wait */
#define EXPIRY_PERIOD_MS 1000    /* expired rows are deleted this often */
#define BUSY_TIMEOUT_MS 5000     /* another process holding the file (sqlite3 shell) */
#define PRESENCE_LOAD_MAX 100000 /* rows read at open */
#define SCHEMA_VERSION "1"
#define CLAIM_MS 10000 /* as the Redis store's SET sio:restore:<pid>:<offset> NX PX 10000 */

typedef enum { OP_APPEND, OP_SAVE, OP_DROP, OP_RESTORE, OP_PRESENCE } op_kind_t;

typedef struct missed_s {
    char offset[SIOC_RECOVERY_OFFSET_MAX + 1];
    json_t *data;
    sioc_binary_t *attachments;
    size_t attachment_count;
} missed_t;

/* The last (pid, nsp, offset) a client presented, for CLAIM_MS or until the session's socket
 * leaves again: a second client presenting the same offset gets a fresh session even though
 * the first one's socket has written the session back meanwhile (its client presents a later
 * offset, or, having got nothing since, the same one once the socket is gone).
 * key: "<length of pid>:<pid><nsp>". */
typedef struct claim_s {
    UT_hash_handle hh;
    int64_t expires_ms;
    char *offset;
    struct claim_s *prev, *next; /* from the oldest */
    char key[];
} claim_t;

/* One queued operation: what the loop thread copied in, and the worker's answer. */
typedef struct op_s {
    struct op_s *next;
    op_kind_t kind;
    int error;    /* the worker's: 0 or SIOC_E* */
    char *nsp;    /* append, save, restore, presence */
    char *pid;    /* save, drop, restore */
    char *sid;    /* save; restore: the answer */
    char *offset; /* restore: the client's */
    char *data;   /* append: [name, ...args]; save: socket.data; presence: the user id */
    char *rooms;  /* append, save; presence: NULL = delete the row */
    char *except; /* append */
    char *key;    /* presence */
    int64_t expires_ms;
    sioc_binary_t *attachments; /* append: copies */
    size_t attachment_count;
    sioc_recovery_append_cb append_cb;
    sioc_recovery_restore_cb restore_cb;
    void *cb_data;
    char result_offset[SIOC_RECOVERY_OFFSET_MAX + 1]; /* append */
    int found;                                        /* restore: the session was taken */
    int garbage;                                      /* restore: a row was garbage */
    json_t *session_rooms, *session_data;             /* restore */
    missed_t *missed;
    size_t missed_count;
} op_t;

enum {
    S_INSERT_LOG,
    S_INSERT_ATTACHMENT,
    S_SAVE,
    S_DROP,
    S_TAKE,
    S_OFFSET_HELD,
    S_MISSED,
    S_ATTACHMENTS,
    S_EXPIRE_LOG,
    S_EXPIRE_ATTACHMENTS,
    S_TRIM_LOG,
    S_EXPIRE_SESSIONS,
    S_COUNT_SESSIONS,
    S_TRIM_SESSIONS,
    S_PRESENCE_SET,
    S_PRESENCE_DELETE,
    S_COUNT
};

static const char *const statements[S_COUNT] = {
    [S_INSERT_LOG] = "INSERT INTO log(time_ms, nsp, rooms, except_rooms, data, attachments) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [S_INSERT_ATTACHMENT] = "INSERT INTO attachment(seq, idx, data) VALUES (?1, ?2, ?3)",
    [S_SAVE] = "INSERT OR REPLACE INTO session(pid, sid, nsp, rooms, data, expires_ms) "
               "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [S_DROP] = "DELETE FROM session WHERE pid = ?1",
    [S_TAKE] = "SELECT sid, nsp, rooms, data FROM session WHERE pid = ?1 AND expires_ms >= ?2",
    [S_OFFSET_HELD] = "SELECT 1 FROM log WHERE seq = ?1 AND time_ms >= ?2",
    [S_MISSED] = "SELECT seq, rooms, except_rooms, data, attachments FROM log "
                 "WHERE seq > ?1 AND nsp = ?2 AND time_ms >= ?3 ORDER BY seq",
    [S_ATTACHMENTS] = "SELECT idx, data FROM attachment WHERE seq = ?1 ORDER BY idx",
    /* Rows are in time order by seq (up to clock steps): from the oldest to the first one
     * still in the window, which costs what is deleted, not the whole table. */
    [S_EXPIRE_LOG] = "DELETE FROM log WHERE seq < coalesce((SELECT seq FROM log WHERE time_ms >= "
                     "?1 ORDER BY seq LIMIT 1), (SELECT max(seq) + 1 FROM log))",
    [S_EXPIRE_ATTACHMENTS] = "DELETE FROM attachment WHERE seq < coalesce((SELECT min(seq) FROM "
                             "log), 9223372036854775807)",
    [S_TRIM_LOG] = "DELETE FROM log WHERE seq <= ?1",
    [S_EXPIRE_SESSIONS] = "DELETE FROM session WHERE expires_ms < ?1",
    [S_COUNT_SESSIONS] = "SELECT count(*) FROM session",
    [S_TRIM_SESSIONS] = "DELETE FROM session WHERE pid IN (SELECT pid FROM session ORDER BY "
                        "expires_ms LIMIT ?1)",
    [S_PRESENCE_SET] = "INSERT OR REPLACE INTO presence(nsp, user_key, user_id, rooms) "
                       "VALUES (?1, ?2, ?3, ?4)",
    [S_PRESENCE_DELETE] = "DELETE FROM presence WHERE nsp = ?1 AND user_key = ?2",
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS log(seq INTEGER PRIMARY KEY AUTOINCREMENT, time_ms INTEGER NOT "
    "NULL, nsp TEXT NOT NULL, rooms TEXT NOT NULL, except_rooms TEXT NOT NULL, data TEXT NOT "
    "NULL, attachments INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS attachment(seq INTEGER NOT NULL, idx INTEGER NOT NULL, data BLOB "
    "NOT NULL, PRIMARY KEY(seq, idx)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS session(pid TEXT PRIMARY KEY, sid TEXT NOT NULL, nsp TEXT NOT "
    "NULL, rooms TEXT NOT NULL, data TEXT NOT NULL, expires_ms INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS session_expiry ON session(expires_ms);"
    "CREATE TABLE IF NOT EXISTS presence(nsp TEXT NOT NULL, user_key TEXT NOT NULL, user_id TEXT "
    "NOT NULL, rooms TEXT NOT NULL, PRIMARY KEY(nsp, user_key));";

struct recovery_store_s {
    sioc_recovery_store_t base; /* first: the library sees only this */
    uv_loop_t *loop;
    char *path;
    uint32_t window_ms;
    uint64_t max_packets;
    uint64_t max_sessions;
    char epoch[RECOVERY_EPOCH_LENGTH + 1];
    json_t *presence; /* nsp -> rows read at open */
    int closing;      /* loop thread: no more operations */
    claim_t *claims;  /* loop thread: by key, and a list from the oldest */
    claim_t *claims_head, *claims_tail;
    void (*closed_cb)(void *data);
    void *closed_data;
    /* The worker's own (no lock: only it touches them once it runs). */
    sqlite3 *db;
    sqlite3_stmt *stmt[S_COUNT];
    int64_t next_expiry_ms;
    int64_t trimmed_to; /* log rows up to this seq are gone */
    /* Shared, under mutex. */
    pthread_t worker;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    op_t *queue, *queue_tail;
    op_t *done, *done_tail;
    int stopping; /* the worker finishes the queue, then exits */
    /* Queued operations other than appends (the Socket.IO layer bounds those: its
     * recovery_max_pending): at most max_sessions, so that a stalled worker (the file locked, a
     * disk that hangs) does not pile up session writes without end. */
    uint64_t queued_others;
    int refusing; /* a refusal was logged since the queue last had room */
    int exited;   /* it did: its last batch is in done */
    uv_async_t async;
};

static int64_t now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static void free_missed(missed_t *missed, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        json_decref(missed[i].data);
        for (size_t j = 0; j < missed[i].attachment_count; j++)
            free((void *)missed[i].attachments[j].data);
        free(missed[i].attachments);
    }
    free(missed);
}

static void free_op(op_t *op)
{
    free(op->nsp);
    free(op->pid);
    free(op->sid);
    free(op->offset);
    free(op->data);
    free(op->rooms);
    free(op->except);
    free(op->key);
    for (size_t i = 0; i < op->attachment_count; i++)
        free((void *)op->attachments[i].data);
    free(op->attachments);
    json_decref(op->session_rooms);
    json_decref(op->session_data);
    free_missed(op->missed, op->missed_count);
    free(op);
}

/* ---- the worker -------------------------------------------------------------------------- */

static sqlite3_stmt *prepared(recovery_store_t *store, int which)
{
    sqlite3_stmt *stmt = store->stmt[which];
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return stmt;
}

static int bind_text(sqlite3_stmt *stmt, int index, const char *text)
{
    return sqlite3_bind_text(stmt, index, text, -1, SQLITE_STATIC);
}

/* Runs a statement that returns no row: 0 or SIOC_EINVAL (the error is the worker's to keep). */
static int run(sqlite3_stmt *stmt)
{
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE ? 0 : SIOC_EINVAL;
}

static void run_append(recovery_store_t *store, op_t *op, int64_t now)
{
    sqlite3_stmt *stmt = prepared(store, S_INSERT_LOG);
    sqlite3_bind_int64(stmt, 1, now);
    bind_text(stmt, 2, op->nsp);
    bind_text(stmt, 3, op->rooms);
    bind_text(stmt, 4, op->except);
    bind_text(stmt, 5, op->data);
    sqlite3_bind_int64(stmt, 6, (sqlite3_int64)op->attachment_count);
    if ((op->error = run(stmt)) != 0)
        return;
    int64_t seq = sqlite3_last_insert_rowid(store->db);
    for (size_t i = 0; i < op->attachment_count && op->error == 0; i++) {
        stmt = prepared(store, S_INSERT_ATTACHMENT);
        sqlite3_bind_int64(stmt, 1, seq);
        sqlite3_bind_int64(stmt, 2, (sqlite3_int64)i);
        const void *bytes = op->attachments[i].length ? (const void *)op->attachments[i].data : "";
        sqlite3_bind_blob64(stmt, 3, bytes, op->attachments[i].length, SQLITE_STATIC);
        op->error = run(stmt);
    }
    recovery_offset_format(op->result_offset, sizeof(op->result_offset), store->epoch, seq);
}

static void run_save(recovery_store_t *store, op_t *op)
{
    sqlite3_stmt *stmt = prepared(store, S_SAVE);
    bind_text(stmt, 1, op->pid);
    bind_text(stmt, 2, op->sid);
    bind_text(stmt, 3, op->nsp);
    bind_text(stmt, 4, op->rooms);
    bind_text(stmt, 5, op->data);
    sqlite3_bind_int64(stmt, 6, op->expires_ms);
    op->error = run(stmt);
}

static void run_drop(recovery_store_t *store, const char *pid)
{
    sqlite3_stmt *stmt = prepared(store, S_DROP);
    bind_text(stmt, 1, pid);
    run(stmt);
}

static const char *column_text(sqlite3_stmt *stmt, int column, size_t *length)
{
    const char *text = (const char *)sqlite3_column_text(stmt, column);
    *length = (size_t)sqlite3_column_bytes(stmt, column);
    return text;
}

/* The attachments of log row seq into missed (exactly count, indexes 0..count-1): 0 or -1. */
static int load_attachments(recovery_store_t *store, int64_t seq, int64_t count, missed_t *missed)
{
    if (count == 0)
        return 0;
    missed->attachments = calloc((size_t)count, sizeof(*missed->attachments));
    if (missed->attachments == NULL)
        return -1;
    sqlite3_stmt *stmt = prepared(store, S_ATTACHMENTS);
    sqlite3_bind_int64(stmt, 1, seq);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (sqlite3_column_int64(stmt, 0) != (int64_t)missed->attachment_count ||
            (int64_t)missed->attachment_count == count)
            break;
        size_t length = (size_t)sqlite3_column_bytes(stmt, 1);
        uint8_t *copy = malloc(length ? length : 1);
        if (copy == NULL)
            break;
        if (length > 0)
            memcpy(copy, sqlite3_column_blob(stmt, 1), length);
        missed->attachments[missed->attachment_count].data = copy;
        missed->attachments[missed->attachment_count++].length = length;
    }
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE && (int64_t)missed->attachment_count == count ? 0 : -1;
}

/* The packets after seq of op's namespace that the session's rooms select. 0, or -1 (garbage
 * or out of memory: the client gets a fresh session). */
static int collect_missed(recovery_store_t *store, op_t *op, int64_t seq, int64_t since)
{
    size_t capacity = 0;
    sqlite3_stmt *stmt = prepared(store, S_MISSED);
    sqlite3_bind_int64(stmt, 1, seq);
    bind_text(stmt, 2, op->nsp);
    sqlite3_bind_int64(stmt, 3, since);
    int rc = SQLITE_DONE, failed = 0;
    while (!failed && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        size_t rooms_length, except_length, data_length;
        const char *rooms = column_text(stmt, 1, &rooms_length);
        const char *except = column_text(stmt, 2, &except_length);
        const char *data = column_text(stmt, 3, &data_length);
        json_t *packet, *to, *not_to;
        if (recovery_entry_decode(data, data_length, rooms, rooms_length, except, except_length,
                                  sqlite3_column_int64(stmt, 4), &packet, &to, &not_to) != 0) {
            op->garbage = failed = 1;
            break;
        }
        int selected = recovery_entry_selects(op->session_rooms, to, not_to);
        json_decref(to);
        json_decref(not_to);
        if (!selected) {
            json_decref(packet);
            continue;
        }
        if (op->missed_count == capacity) {
            size_t grown_capacity = capacity ? capacity * 2 : 16;
            missed_t *grown = realloc(op->missed, grown_capacity * sizeof(*grown));
            if (grown == NULL) {
                json_decref(packet);
                failed = 1;
                break;
            }
            op->missed = grown;
            capacity = grown_capacity;
        }
        missed_t *missed = &op->missed[op->missed_count++];
        memset(missed, 0, sizeof(*missed));
        missed->data = packet;
        int64_t row = sqlite3_column_int64(stmt, 0);
        recovery_offset_format(missed->offset, sizeof(missed->offset), store->epoch, row);
        /* S_ATTACHMENTS is another statement: this one's row stays where it is. */
        if (load_attachments(store, row, sqlite3_column_int64(stmt, 4), missed) != 0)
            op->garbage = failed = 1;
    }
    sqlite3_reset(stmt);
    return failed || rc != SQLITE_DONE ? -1 : 0;
}

/* Takes the session (deleted in this transaction: a second restore of the pid finds nothing). */
static void run_restore(recovery_store_t *store, op_t *op, int64_t now)
{
    int64_t seq;
    if (recovery_offset_parse(op->offset, strlen(op->offset), store->epoch, &seq) != 0)
        return;
    sqlite3_stmt *stmt = prepared(store, S_TAKE);
    bind_text(stmt, 1, op->pid);
    sqlite3_bind_int64(stmt, 2, now);
    if (sqlite3_step(stmt) != SQLITE_ROW) {
        sqlite3_reset(stmt);
        return;
    }
    const char *nsp = (const char *)sqlite3_column_text(stmt, 1);
    if (nsp == NULL || strcmp(nsp, op->nsp) != 0) {
        sqlite3_reset(stmt); /* another namespace's: left to its own socket */
        return;
    }
    const char *sid = (const char *)sqlite3_column_text(stmt, 0);
    size_t rooms_length, data_length;
    const char *rooms = column_text(stmt, 2, &rooms_length);
    const char *data = column_text(stmt, 3, &data_length);
    op->sid = sid != NULL ? strdup(sid) : NULL;
    int decoded = recovery_session_decode(rooms, rooms_length, data, data_length,
                                          &op->session_rooms, &op->session_data) == 0;
    sqlite3_reset(stmt);
    if (op->sid == NULL || op->sid[0] == '\0' || !decoded) {
        op->garbage = 1;
        run_drop(store, op->pid);
        return;
    }
    int64_t since = now - (int64_t)store->window_ms;
    stmt = prepared(store, S_OFFSET_HELD);
    sqlite3_bind_int64(stmt, 1, seq);
    sqlite3_bind_int64(stmt, 2, since);
    int held = sqlite3_step(stmt) == SQLITE_ROW;
    sqlite3_reset(stmt);
    if (!held)
        return; /* an offset this log no longer (or never) held: fresh, as Node */
    if (collect_missed(store, op, seq, since) != 0) {
        if (op->garbage)
            run_drop(store, op->pid); /* it could never be restored whole */
        return;
    }
    run_drop(store, op->pid);
    op->found = 1;
}

static void run_presence(recovery_store_t *store, op_t *op)
{
    sqlite3_stmt *stmt = prepared(store, op->rooms != NULL ? S_PRESENCE_SET : S_PRESENCE_DELETE);
    bind_text(stmt, 1, op->nsp);
    bind_text(stmt, 2, op->key);
    if (op->rooms != NULL) {
        bind_text(stmt, 3, op->data);
        bind_text(stmt, 4, op->rooms);
    }
    op->error = run(stmt);
}

static void expire(recovery_store_t *store, int64_t now)
{
    sqlite3_stmt *stmt = prepared(store, S_EXPIRE_LOG);
    sqlite3_bind_int64(stmt, 1, now - (int64_t)store->window_ms);
    run(stmt);
    run(prepared(store, S_EXPIRE_ATTACHMENTS));
    stmt = prepared(store, S_EXPIRE_SESSIONS);
    sqlite3_bind_int64(stmt, 1, now);
    run(stmt);
    stmt = prepared(store, S_COUNT_SESSIONS);
    int64_t sessions = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
    sqlite3_reset(stmt);
    if ((uint64_t)sessions > store->max_sessions) {
        stmt = prepared(store, S_TRIM_SESSIONS);
        sqlite3_bind_int64(stmt, 1, sessions - (int64_t)store->max_sessions);
        run(stmt);
    }
}

/* At most max_packets rows: the last seq given minus max_packets and below go. */
static void trim(recovery_store_t *store, int64_t last_seq)
{
    int64_t to = last_seq - (int64_t)store->max_packets;
    if (to <= store->trimmed_to)
        return;
    sqlite3_stmt *stmt = prepared(store, S_TRIM_LOG);
    sqlite3_bind_int64(stmt, 1, to);
    if (run(stmt) == 0 && run(prepared(store, S_EXPIRE_ATTACHMENTS)) == 0)
        store->trimmed_to = to;
}

static void fail_batch(op_t *batch)
{
    for (op_t *op = batch; op != NULL; op = op->next) {
        op->error = SIOC_EINVAL;
        op->found = 0;
    }
}

static void run_batch(recovery_store_t *store, op_t *batch)
{
    int64_t now = now_ms();
    int expiring = now >= store->next_expiry_ms;
    if (batch == NULL && !expiring)
        return;
    if (sqlite3_exec(store->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        fail_batch(batch);
        return;
    }
    int64_t last_seq = 0;
    for (op_t *op = batch; op != NULL; op = op->next) {
        switch (op->kind) {
        case OP_APPEND:
            run_append(store, op, now);
            if (op->error == 0)
                last_seq = sqlite3_last_insert_rowid(store->db);
            break;
        case OP_SAVE:
            run_save(store, op);
            break;
        case OP_DROP:
            run_drop(store, op->pid);
            break;
        case OP_RESTORE:
            run_restore(store, op, now);
            break;
        case OP_PRESENCE:
            run_presence(store, op);
            break;
        }
    }
    if (last_seq > 0)
        trim(store, last_seq);
    if (expiring) {
        expire(store, now);
        store->next_expiry_ms = now + EXPIRY_PERIOD_MS;
    }
    /* Autocommit back on: SQLite rolled the transaction back itself (disk full, I/O error). */
    if (sqlite3_get_autocommit(store->db) ||
        sqlite3_exec(store->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        if (!sqlite3_get_autocommit(store->db))
            sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL);
        fail_batch(batch);
    }
}

/* Waits for work or the next expiry; the queue taken (at most BATCH_MAX). Under the mutex. */
static op_t *take_batch(recovery_store_t *store)
{
    while (store->queue == NULL && !store->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += EXPIRY_PERIOD_MS / 1000;
        if (pthread_cond_timedwait(&store->wake, &store->mutex, &until) == ETIMEDOUT)
            break;
    }
    op_t *batch = store->queue, *last = NULL;
    size_t count = 0;
    for (op_t *op = batch; op != NULL && count < BATCH_MAX; op = op->next, count++) {
        last = op;
        if (op->kind != OP_APPEND)
            store->queued_others--;
    }
    if (last != NULL) {
        store->queue = last->next;
        if (store->queue == NULL)
            store->queue_tail = NULL;
        last->next = NULL;
    }
    return batch;
}

static void *worker_main(void *arg)
{
    recovery_store_t *store = arg;
    pthread_mutex_lock(&store->mutex);
    for (;;) {
        op_t *batch = take_batch(store);
        int last = store->stopping && store->queue == NULL;
        pthread_mutex_unlock(&store->mutex);
        run_batch(store, batch);
        pthread_mutex_lock(&store->mutex);
        if (batch != NULL) {
            if (store->done_tail != NULL)
                store->done_tail->next = batch;
            else
                store->done = batch;
            while (batch->next != NULL)
                batch = batch->next;
            store->done_tail = batch;
        }
        if (last)
            store->exited = 1;
        if (batch != NULL || last)
            uv_async_send(&store->async);
        if (last)
            break;
    }
    pthread_mutex_unlock(&store->mutex);
    return NULL;
}

/* ---- the loop thread ----------------------------------------------------------------------- */

static void complete(op_t *op)
{
    if (op->kind == OP_APPEND) {
        op->append_cb(op->error, op->error == 0 ? op->result_offset : NULL, op->cb_data);
        return;
    }
    if (op->kind != OP_RESTORE) {
        if (op->error != 0)
            log_warn("recovery store: a %s was not written", op->kind == OP_PRESENCE ? "presence"
                                                             : op->kind == OP_SAVE   ? "session"
                                                                                     : "drop");
        return;
    }
    if (op->garbage)
        log_warn("recovery store: session %s had unreadable rows: a fresh session", op->pid);
    if (op->error != 0 || !op->found) {
        op->restore_cb(op->error, NULL, NULL, 0, op->cb_data);
        return;
    }
    sioc_recovery_session_t session = {op->pid,          op->sid, op->nsp, op->session_rooms,
                                       op->session_data, 0,       0};
    sioc_recovery_missed_t *views = calloc(op->missed_count + 1, sizeof(*views));
    if (views == NULL) {
        op->restore_cb(SIOC_ENOMEM, NULL, NULL, 0, op->cb_data);
        return;
    }
    for (size_t i = 0; i < op->missed_count; i++) {
        sioc_recovery_missed_t view = {op->missed[i].offset, op->missed[i].data,
                                       op->missed[i].attachments, op->missed[i].attachment_count};
        views[i] = view;
    }
    op->restore_cb(0, &session, views, op->missed_count, op->cb_data);
    free(views);
}

static void unclaim(recovery_store_t *store, claim_t *claim)
{
    if (claim->prev != NULL)
        claim->prev->next = claim->next;
    else
        store->claims_head = claim->next;
    if (claim->next != NULL)
        claim->next->prev = claim->prev;
    else
        store->claims_tail = claim->prev;
    HASH_DEL(store->claims, claim);
    free(claim->offset);
    free(claim);
}

static void free_claims(recovery_store_t *store, int64_t now)
{
    while (store->claims_head != NULL && store->claims_head->expires_ms <= now)
        unclaim(store, store->claims_head);
}

/* "<length of pid>:<pid><nsp>" in key (of size), or -1 if it does not fit. */
static int claim_key(char *key, size_t size, const char *pid, const char *nsp)
{
    int length = snprintf(key, size, "%zu:%s%s", strlen(pid), pid, nsp);
    return length >= 0 && (size_t)length < size ? length : -1;
}

static claim_t *find_claim(recovery_store_t *store, const char *pid, const char *nsp)
{
    char key[512];
    int length = claim_key(key, sizeof(key), pid, nsp);
    claim_t *found = NULL;
    if (length >= 0)
        HASH_FIND(hh, store->claims, key, (size_t)length, found);
    return found;
}

static void finish_close(uv_handle_t *handle)
{
    recovery_store_t *store = handle->data;
    free_claims(store, INT64_MAX);
    void (*closed_cb)(void *) = store->closed_cb;
    void *closed_data = store->closed_data;
    for (int i = 0; i < S_COUNT; i++)
        sqlite3_finalize(store->stmt[i]);
    sqlite3_close(store->db);
    pthread_mutex_destroy(&store->mutex);
    pthread_cond_destroy(&store->wake);
    json_decref(store->presence);
    free(store->path);
    free(store);
    if (closed_cb != NULL)
        closed_cb(closed_data);
}

static void on_async(uv_async_t *handle)
{
    recovery_store_t *store = handle->data;
    pthread_mutex_lock(&store->mutex);
    op_t *done = store->done;
    store->done = store->done_tail = NULL;
    int exited = store->exited;
    pthread_mutex_unlock(&store->mutex);
    while (done != NULL) {
        op_t *next = done->next;
        complete(done);
        free_op(done);
        done = next;
    }
    if (exited && !uv_is_closing((uv_handle_t *)handle)) {
        pthread_join(store->worker, NULL);
        uv_close((uv_handle_t *)handle, finish_close);
    }
}

static int enqueue(recovery_store_t *store, op_t *op)
{
    if (store->closing) {
        free_op(op);
        return SIOC_ECLOSED;
    }
    pthread_mutex_lock(&store->mutex);
    if (op->kind != OP_APPEND && store->queued_others >= store->max_sessions) {
        int first = !store->refusing;
        store->refusing = 1;
        pthread_mutex_unlock(&store->mutex);
        if (first)
            log_warn("recovery store: %" PRIu64 " operations wait for the file; session writes and "
                     "restores are refused until it answers",
                     store->max_sessions);
        free_op(op);
        return SIOC_ENOBUFS;
    }
    if (op->kind != OP_APPEND && ++store->queued_others < store->max_sessions / 2)
        store->refusing = 0;
    if (store->queue_tail != NULL)
        store->queue_tail->next = op;
    else
        store->queue = op;
    store->queue_tail = op;
    pthread_cond_signal(&store->wake);
    pthread_mutex_unlock(&store->mutex);
    return 0;
}

static char *dump(json_t *value)
{
    return json_dumps(value != NULL ? value : json_null(),
                      JSON_COMPACT | JSON_ENCODE_ANY | JSON_ALLOW_NUL);
}

static char *names(const char *const *list, size_t count)
{
    json_t *array = json_array();
    for (size_t i = 0; array != NULL && i < count; i++)
        json_array_append_new(array, json_string(list[i]));
    char *text = array != NULL && json_array_size(array) == count ? dump(array) : NULL;
    json_decref(array);
    return text;
}

static int copy_attachments(op_t *op, const sioc_recovery_packet_t *packet)
{
    if (packet->attachment_count == 0)
        return 0;
    op->attachments = calloc(packet->attachment_count, sizeof(*op->attachments));
    if (op->attachments == NULL)
        return -1;
    for (size_t i = 0; i < packet->attachment_count; i++) {
        size_t length = packet->attachments[i].length;
        uint8_t *copy = malloc(length ? length : 1);
        if (copy == NULL)
            return -1;
        if (length > 0)
            memcpy(copy, packet->attachments[i].data, length);
        op->attachments[i].data = copy;
        op->attachments[i].length = length;
        op->attachment_count++;
    }
    return 0;
}

static int store_append(sioc_recovery_store_t *base, const sioc_recovery_packet_t *packet,
                        sioc_recovery_append_cb callback, void *data)
{
    recovery_store_t *store = (recovery_store_t *)base;
    op_t *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return SIOC_ENOMEM;
    op->kind = OP_APPEND;
    op->append_cb = callback;
    op->cb_data = data;
    op->nsp = strdup(packet->nsp);
    /* Text now, on the loop: the application may change its arguments after the broadcast. */
    op->data = dump(packet->data);
    op->rooms = names(packet->opts->rooms, packet->opts->room_count);
    op->except = names(packet->opts->except, packet->opts->except_count);
    if (op->nsp == NULL || op->data == NULL || op->rooms == NULL || op->except == NULL ||
        copy_attachments(op, packet) != 0) {
        free_op(op);
        return SIOC_ENOMEM;
    }
    return enqueue(store, op);
}

static void store_save(sioc_recovery_store_t *base, const sioc_recovery_session_t *session)
{
    recovery_store_t *store = (recovery_store_t *)base;
    claim_t *claim = session->connected ? NULL : find_claim(store, session->pid, session->nsp);
    if (claim != NULL)
        unclaim(store, claim); /* its socket left: its client may present the offset again */
    op_t *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return;
    op->kind = OP_SAVE;
    op->pid = strdup(session->pid);
    op->sid = strdup(session->sid);
    op->nsp = strdup(session->nsp);
    op->rooms = dump(session->rooms);
    op->data = dump(session->data);
    op->expires_ms = now_ms() + session->ttl_ms;
    if (op->pid == NULL || op->sid == NULL || op->nsp == NULL || op->rooms == NULL ||
        op->data == NULL) {
        free_op(op);
        return;
    }
    enqueue(store, op);
}

static void store_drop(sioc_recovery_store_t *base, const char *pid)
{
    recovery_store_t *store = (recovery_store_t *)base;
    op_t *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return;
    op->kind = OP_DROP;
    if ((op->pid = strdup(pid)) == NULL) {
        free_op(op);
        return;
    }
    enqueue(store, op);
}

/* 1 if (pid, nsp, offset) is not claimed (it is now), 0 if it is, -1 without memory. */
static int claim_first(recovery_store_t *store, const char *pid, const char *nsp,
                       const char *offset)
{
    if (strlen(pid) + strlen(nsp) > 400)
        return 1; /* no session's (its pid would be SIOC_ID_LENGTH long): nothing to claim */
    int64_t now = now_ms();
    free_claims(store, now);
    claim_t *found = find_claim(store, pid, nsp);
    if (found != NULL && strcmp(found->offset, offset) == 0)
        return 0;
    if (found != NULL)
        unclaim(store, found);
    size_t size = strlen(pid) + strlen(nsp) + 24;
    claim_t *claim = calloc(1, sizeof(*claim) + size);
    if (claim == NULL || (claim->offset = strdup(offset)) == NULL) {
        free(claim);
        return -1;
    }
    int length = claim_key(claim->key, size, pid, nsp);
    claim->expires_ms = now + CLAIM_MS;
    HASH_ADD_KEYPTR(hh, store->claims, claim->key, (size_t)length, claim);
    claim->prev = store->claims_tail;
    if (store->claims_tail != NULL)
        store->claims_tail->next = claim;
    else
        store->claims_head = claim;
    store->claims_tail = claim;
    return 1;
}

static int store_restore(sioc_recovery_store_t *base, const char *pid, const char *offset,
                         const char *nsp, sioc_recovery_restore_cb callback, void *data)
{
    recovery_store_t *store = (recovery_store_t *)base;
    if (store->closing)
        return SIOC_ECLOSED;
    int first = claim_first(store, pid, nsp, offset);
    if (first < 0)
        return SIOC_ENOMEM;
    if (first == 0) {
        callback(0, NULL, NULL, 0, data); /* presented already: a fresh session */
        return 0;
    }
    op_t *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        claim_t *claim = find_claim(store, pid, nsp);
        if (claim != NULL)
            unclaim(store, claim);
        return SIOC_ENOMEM;
    }
    op->kind = OP_RESTORE;
    op->restore_cb = callback;
    op->cb_data = data;
    op->pid = strdup(pid);
    op->offset = strdup(offset);
    op->nsp = strdup(nsp);
    int rc = op->pid == NULL || op->offset == NULL || op->nsp == NULL ? SIOC_ENOMEM : 0;
    if (rc != 0)
        free_op(op);
    else
        rc = enqueue(store, op);
    claim_t *claim = rc != 0 ? find_claim(store, pid, nsp) : NULL;
    if (claim != NULL)
        unclaim(store, claim); /* not asked: the client may try again with the same offset */
    return rc;
}

static const sioc_recovery_store_ops_t store_ops = {store_append, store_save, store_drop,
                                                    store_restore};

sioc_recovery_store_t *recovery_store_base(recovery_store_t *store)
{
    return &store->base;
}

void recovery_store_presence_set(recovery_store_t *store, const char *nsp, const char *key,
                                 json_t *user_id, json_t *rooms)
{
    op_t *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return;
    op->kind = OP_PRESENCE;
    op->nsp = strdup(nsp);
    op->key = strdup(key);
    op->data = dump(user_id);
    op->rooms = rooms != NULL ? dump(rooms) : NULL;
    if (op->nsp == NULL || op->key == NULL || op->data == NULL ||
        (rooms != NULL && op->rooms == NULL)) {
        free_op(op);
        return;
    }
    enqueue(store, op);
}

json_t *recovery_store_presence_take(recovery_store_t *store, const char *nsp)
{
    json_t *rows = json_incref(json_object_get(store->presence, nsp));
    json_object_del(store->presence, nsp);
    return rows != NULL ? rows : json_array();
}

void recovery_store_close(recovery_store_t *store, void (*closed_cb)(void *data), void *data)
{
    store->closing = 1;
    store->closed_cb = closed_cb;
    store->closed_data = data;
    pthread_mutex_lock(&store->mutex);
    store->stopping = 1;
    pthread_cond_signal(&store->wake);
    pthread_mutex_unlock(&store->mutex);
}

/* ---- opening ------------------------------------------------------------------------------- */

static int open_failed(recovery_store_t *store, char *error, size_t error_size, const char *what)
{
    snprintf(error, error_size, "recovery.path %s: %s: %s", store->path, what,
             store->db != NULL ? sqlite3_errmsg(store->db) : "out of memory");
    return -1;
}

/* The epoch of the file, drawn and written the first time. */
static int open_epoch(recovery_store_t *store, char *error, size_t error_size)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(store->db, "SELECT value FROM meta WHERE key = 'epoch'", -1, &stmt,
                           NULL) != SQLITE_OK)
        return open_failed(store, error, error_size, "cannot read the epoch");
    int rc = sqlite3_step(stmt);
    const char *value = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(stmt, 0) : NULL;
    int valid = value != NULL && recovery_epoch_valid(value, strlen(value));
    if (valid)
        memcpy(store->epoch, value, RECOVERY_EPOCH_LENGTH + 1);
    sqlite3_finalize(stmt);
    if (rc == SQLITE_ROW && !valid) {
        snprintf(error, error_size,
                 "recovery.path %s: meta.epoch is not %d hex digits (delete "
                 "the file: it only holds recovery state)",
                 store->path, RECOVERY_EPOCH_LENGTH);
        return -1;
    }
    if (valid)
        return 0;
    unsigned char bytes[RECOVERY_EPOCH_LENGTH / 2];
    if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
        snprintf(error, error_size, "recovery.path %s: no random bytes for the epoch", store->path);
        return -1;
    }
    for (size_t i = 0; i < sizeof(bytes); i++)
        snprintf(store->epoch + 2 * i, 3, "%02x", bytes[i]);
    char sql[128];
    snprintf(sql, sizeof(sql),
             "INSERT INTO meta(key, value) VALUES ('epoch', '%s'), ('version', '" SCHEMA_VERSION
             "')",
             store->epoch);
    if (sqlite3_exec(store->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return open_failed(store, error, error_size, "cannot write the epoch");
    return 0;
}

/* The presence rows, by namespace (garbage skipped: a user id that is not one is no user). */
static int open_presence(recovery_store_t *store, char *error, size_t error_size)
{
    store->presence = json_object();
    sqlite3_stmt *stmt = NULL;
    if (store->presence == NULL ||
        sqlite3_prepare_v2(store->db, "SELECT nsp, user_id, rooms FROM presence LIMIT ?1", -1,
                           &stmt, NULL) != SQLITE_OK)
        return open_failed(store, error, error_size, "cannot read the presence table");
    sqlite3_bind_int(stmt, 1, PRESENCE_LOAD_MAX);
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        const char *nsp = (const char *)sqlite3_column_text(stmt, 0);
        size_t id_length, rooms_length;
        const char *id = column_text(stmt, 1, &id_length);
        const char *rooms = column_text(stmt, 2, &rooms_length);
        json_t *id_value, *room_list;
        if (nsp == NULL ||
            recovery_session_decode(rooms, rooms_length, id, id_length, &room_list, &id_value) != 0)
            continue;
        json_t *list = json_object_get(store->presence, nsp);
        if (list == NULL) {
            list = json_array();
            json_object_set_new(store->presence, nsp, list);
        }
        json_array_append_new(list, json_pack("{s:o,s:o}", "id", id_value, "rooms", room_list));
    }
    sqlite3_finalize(stmt);
    return 0;
}

static int open_file(recovery_store_t *store, char *error, size_t error_size)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(store->path, &store->db, flags, NULL) != SQLITE_OK)
        return open_failed(store, error, error_size, "cannot open");
    sqlite3_busy_timeout(store->db, BUSY_TIMEOUT_MS);
    sqlite3_stmt *stmt = NULL;
    int wal = 0;
    if (sqlite3_prepare_v2(store->db, "PRAGMA journal_mode = WAL", -1, &stmt, NULL) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
        const char *mode = (const char *)sqlite3_column_text(stmt, 0);
        wal = mode != NULL && strcmp(mode, "wal") == 0;
    }
    sqlite3_finalize(stmt);
    if (!wal)
        return open_failed(store, error, error_size, "not a database, or no WAL mode");
    if (sqlite3_exec(store->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(store->db, schema, NULL, NULL, NULL) != SQLITE_OK)
        return open_failed(store, error, error_size, "cannot create the tables");
    if (open_epoch(store, error, error_size) != 0 || open_presence(store, error, error_size) != 0)
        return -1;
    for (int i = 0; i < S_COUNT; i++) {
        if (sqlite3_prepare_v3(store->db, statements[i], -1, SQLITE_PREPARE_PERSISTENT,
                               &store->stmt[i], NULL) != SQLITE_OK)
            return open_failed(store, error, error_size, "unexpected tables (not sioc's?)");
    }
    return 0;
}

static void free_unstarted(recovery_store_t *store)
{
    for (int i = 0; i < S_COUNT; i++)
        sqlite3_finalize(store->stmt[i]);
    sqlite3_close(store->db);
    json_decref(store->presence);
    free(store->path);
    free(store);
}

static void on_unstarted_closed(uv_handle_t *handle)
{
    free_unstarted(handle->data);
}

int recovery_store_open(uv_loop_t *loop, const recovery_store_options_t *options,
                        recovery_store_t **out, char *error, size_t error_size)
{
    *out = NULL;
    recovery_store_t *store = calloc(1, sizeof(*store));
    if (store == NULL || (store->path = strdup(options->path)) == NULL) {
        free(store);
        snprintf(error, error_size, "recovery: out of memory");
        return -1;
    }
    store->base.ops = &store_ops;
    store->base.keeps_connected = 1;
    store->loop = loop;
    store->window_ms = options->window_ms;
    store->max_packets = options->max_packets;
    store->max_sessions = options->max_sessions;
    if (open_file(store, error, error_size) != 0) {
        free_unstarted(store);
        return -1;
    }
    pthread_mutex_init(&store->mutex, NULL);
    pthread_cond_init(&store->wake, NULL);
    if (uv_async_init(loop, &store->async, on_async) != 0) {
        snprintf(error, error_size, "recovery: cannot create the worker's wake-up handle");
        free_unstarted(store);
        return -1;
    }
    store->async.data = store;
    /* Every signal blocked in the worker: they reach the loop thread. */
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    int rc = pthread_create(&store->worker, NULL, worker_main, store);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    if (rc != 0) {
        snprintf(error, error_size, "recovery: cannot start the worker thread: %s", strerror(rc));
        uv_close((uv_handle_t *)&store->async, on_unstarted_closed);
        return -1;
    }
    *out = store;
    return 0;
}
