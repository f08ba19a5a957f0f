/* The SQLite store (store.h).
 *
 * Threading. store_open runs on the loop thread, at startup: it opens the file, migrates the
 * schema and prepares every statement synchronously, so a bad file is refused before the
 * daemon listens. After that one writer thread owns the connection and every request, reads
 * included, goes through it: one thread and one queue keep completions in request order with
 * no bookkeeping, and a read sees every write queued before it. The loop thread only touches
 * the queues (mutex + condition variable); the writer wakes it through a uv_async_t and the
 * done callbacks run there, in order.
 *
 * Batching. The writer takes everything queued (up to BATCH_MAX, which bounds how long the
 * first request of a batch waits for its COMMIT), runs it in one transaction with a SAVEPOINT
 * per request (a failing request rolls back its own changes only), COMMITs, and only then
 * posts the batch back. Under load many requests share one COMMIT and one fsync.
 *
 * Durability. WAL with synchronous=FULL: SQLite fsyncs the WAL at every COMMIT, so a request
 * acknowledged by done survives a power cut. synchronous=NORMAL would only fsync at
 * checkpoints: a committed batch could be lost on power failure after the daemon announced it.
 *
 * Ids. Generated ids are 20 characters of base64url over 15 random bytes (RAND_bytes, 120
 * bits), in every table. Callers choose user ids and may choose room ids ("12"): random ids
 * never collide with those and reveal no counts. Order comes from each table's
 * INTEGER PRIMARY KEY (seq), never from ids or timestamps. */
#include "store_sqlite.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>
#include <sqlite3.h>

#include "log.h"

#define STRINGIFY(x) #x
#define TO_STRING(x) STRINGIFY(x)

#define ID_MAX_BYTES 256
#define TEXT_MAX_BYTES 65536
#define BATCH_MAX 1024
#define LIMIT_DEFAULT 50
#define LIMIT_MAX 100
#define MARK_READ_IDS_MAX 1000
#define BUSY_TIMEOUT_MS 5000
#define APPLICATION_ID 0x73696f63 /* "sioc" in the file header, to refuse other programs' files */
#define GENERATED_ID_BYTES 15     /* 20 base64url characters */
#define TIME_SIZE 32
#define DIGITS_SIZE 24
#define NUMERIC_IDS_MAX 8 /* per request: more id fields than any operation has */

/* ---- Schema ---------------------------------------------------------------------------- */

/* Version 1. Notifications name their user without a foreign key: the HTTP API notifies
 * users the daemon may not have seen yet, and they read them when they connect. */
static const char SCHEMA_V1[] =
    "CREATE TABLE users ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  first_name TEXT, last_name TEXT, role TEXT, avatar TEXT,"
    "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
    "CREATE TABLE presence ("
    "  user_id TEXT PRIMARY KEY NOT NULL REFERENCES users (id),"
    "  status TEXT NOT NULL CHECK (status IN ('online', 'offline')),"
    "  last_activity TEXT NOT NULL);"
    "CREATE TABLE rooms ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  name TEXT NOT NULL,"
    "  is_private INTEGER NOT NULL CHECK (is_private IN (0, 1)),"
    "  owner_id TEXT REFERENCES users (id),"
    "  created_at TEXT NOT NULL);"
    "CREATE TABLE room_members ("
    "  room_id TEXT NOT NULL REFERENCES rooms (id),"
    "  user_id TEXT NOT NULL REFERENCES users (id),"
    "  joined_at TEXT NOT NULL,"
    "  PRIMARY KEY (room_id, user_id));"
    "CREATE INDEX room_members_user ON room_members (user_id);"
    "CREATE TABLE messages ("
    "  seq INTEGER PRIMARY KEY,"
    "  id TEXT NOT NULL UNIQUE,"
    "  room_id TEXT NOT NULL REFERENCES rooms (id),"
    "  sender_id TEXT NOT NULL REFERENCES users (id),"
    "  text TEXT NOT NULL,"
    "  created_at TEXT NOT NULL);"
    "CREATE INDEX messages_room ON messages (room_id, seq);"
    "CREATE TABLE direct_messages ("
    "  seq INTEGER PRIMARY KEY,"
    "  id TEXT NOT NULL UNIQUE,"
    "  sender_id TEXT NOT NULL REFERENCES users (id),"
    "  recipient_id TEXT NOT NULL REFERENCES users (id),"
    "  text TEXT NOT NULL,"
    "  created_at TEXT NOT NULL);"
    /* One conversation, both directions, in one index range. */
    "CREATE INDEX direct_messages_pair ON direct_messages"
    "  (min(sender_id, recipient_id), max(sender_id, recipient_id), seq);"
    "CREATE TABLE notifications ("
    "  seq INTEGER PRIMARY KEY,"
    "  id TEXT NOT NULL UNIQUE,"
    "  user_id TEXT NOT NULL,"
    "  type TEXT NOT NULL,"
    "  payload TEXT NOT NULL,"
    "  read INTEGER NOT NULL DEFAULT 0 CHECK (read IN (0, 1)),"
    "  created_at TEXT NOT NULL);"
    "CREATE INDEX notifications_user ON notifications (user_id, seq);"
    "CREATE INDEX notifications_unread ON notifications (user_id, seq) WHERE read = 0;"
    "CREATE TABLE access_requests ("
    "  seq INTEGER PRIMARY KEY,"
    "  id TEXT NOT NULL UNIQUE,"
    "  room_id TEXT NOT NULL REFERENCES rooms (id),"
    "  user_id TEXT NOT NULL REFERENCES users (id),"
    "  status TEXT NOT NULL CHECK (status IN ('pending', 'granted', 'denied')),"
    "  created_at TEXT NOT NULL,"
    "  resolved_at TEXT);"
    /* At most one pending request per user and room. */
    "CREATE UNIQUE INDEX access_requests_pending ON access_requests (room_id, user_id)"
    "  WHERE status = 'pending';";

/* A new schema version is one more entry here (and never an edit of an old one). */
static const store_sqlite_migration_t builtin_migrations[] = {
    {1, SCHEMA_V1},
};

static const store_sqlite_migration_t *migrations = builtin_migrations;
static size_t migration_count = sizeof(builtin_migrations) / sizeof(builtin_migrations[0]);

/* ---- Statements ------------------------------------------------------------------------ */

typedef enum statement_id {
    SQL_BEGIN,
    SQL_COMMIT,
    SQL_ROLLBACK,
    SQL_SAVEPOINT,
    SQL_RELEASE,
    SQL_ROLLBACK_TO,
    SQL_USER_EXISTS,
    SQL_USER_UPSERT,
    SQL_USER_GET,
    SQL_PRESENCE_SET,
    SQL_PRESENCE_GET,
    SQL_ROOM_EXISTS,
    SQL_ROOM_INSERT,
    SQL_ROOM_GET,
    SQL_MEMBER_INSERT,
    SQL_MEMBER_GET,
    SQL_MEMBER_DELETE,
    SQL_MEMBER_LIST,
    SQL_MESSAGE_INSERT,
    SQL_MESSAGE_SEQ,
    SQL_MESSAGE_HISTORY,
    SQL_DM_INSERT,
    SQL_DM_SEQ,
    SQL_DM_HISTORY,
    SQL_NOTIFICATION_INSERT,
    SQL_NOTIFICATION_LIST,
    SQL_NOTIFICATION_LIST_UNREAD,
    SQL_NOTIFICATION_MARK_ONE,
    SQL_NOTIFICATION_MARK_ALL,
    SQL_ACCESS_INSERT,
    SQL_ACCESS_RESOLVE,
    SQL_ACCESS_GET,
    STATEMENT_COUNT,
} statement_id_t;

_Static_assert(STATEMENT_COUNT <= 64, "used statements are tracked in a 64-bit mask");

#define USER_COLUMNS "id, first_name, last_name, role, avatar"
#define ROOM_COLUMNS "id, name, is_private, owner_id, created_at"
#define MESSAGE_COLUMNS "id, room_id, sender_id, text, created_at"
#define DM_COLUMNS "id, sender_id, recipient_id, text, created_at"
#define NOTIFICATION_COLUMNS "id, user_id, type, payload, read, created_at"
#define ACCESS_COLUMNS "id, room_id, user_id, status, created_at"
#define DM_PAIR                                                                                    \
    "min(sender_id, recipient_id) = min(?1, ?2) AND max(sender_id, recipient_id) = max(?1, ?2)"

static const char *const statement_sql[STATEMENT_COUNT] = {
    [SQL_BEGIN] = "BEGIN IMMEDIATE",
    [SQL_COMMIT] = "COMMIT",
    [SQL_ROLLBACK] = "ROLLBACK",
    [SQL_SAVEPOINT] = "SAVEPOINT request",
    [SQL_RELEASE] = "RELEASE request",
    [SQL_ROLLBACK_TO] = "ROLLBACK TO request",
    [SQL_USER_EXISTS] = "SELECT 1 FROM users WHERE id = ?1",
    /* ?3, ?5, ?7, ?9 say whether the field was given: an absent field keeps its value. */
    [SQL_USER_UPSERT] =
        "INSERT INTO users (id, first_name, last_name, role, avatar, created_at, updated_at)"
        " VALUES (?1, ?2, ?4, ?6, ?8, ?10, ?10) ON CONFLICT (id) DO UPDATE SET"
        " first_name = CASE WHEN ?3 THEN excluded.first_name ELSE first_name END,"
        " last_name = CASE WHEN ?5 THEN excluded.last_name ELSE last_name END,"
        " role = CASE WHEN ?7 THEN excluded.role ELSE role END,"
        " avatar = CASE WHEN ?9 THEN excluded.avatar ELSE avatar END,"
        " updated_at = excluded.updated_at RETURNING " USER_COLUMNS,
    [SQL_USER_GET] = "SELECT " USER_COLUMNS " FROM users WHERE id = ?1",
    [SQL_PRESENCE_SET] = "INSERT INTO presence (user_id, status, last_activity) VALUES (?1, ?2, ?3)"
                         " ON CONFLICT (user_id) DO UPDATE SET status = excluded.status,"
                         " last_activity = excluded.last_activity"
                         " RETURNING user_id, status, last_activity",
    [SQL_PRESENCE_GET] = "SELECT user_id, status, last_activity FROM presence WHERE user_id = ?1",
    [SQL_ROOM_EXISTS] = "SELECT 1 FROM rooms WHERE id = ?1",
    [SQL_ROOM_INSERT] = "INSERT INTO rooms (" ROOM_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5)"
                        " RETURNING " ROOM_COLUMNS,
    [SQL_ROOM_GET] = "SELECT " ROOM_COLUMNS " FROM rooms WHERE id = ?1",
    [SQL_MEMBER_INSERT] = "INSERT INTO room_members (room_id, user_id, joined_at)"
                          " VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
    [SQL_MEMBER_GET] = "SELECT room_id, user_id, joined_at FROM room_members"
                       " WHERE room_id = ?1 AND user_id = ?2",
    [SQL_MEMBER_DELETE] = "DELETE FROM room_members WHERE room_id = ?1 AND user_id = ?2",
    [SQL_MEMBER_LIST] = "SELECT user_id FROM room_members WHERE room_id = ?1 ORDER BY rowid",
    [SQL_MESSAGE_INSERT] = "INSERT INTO messages (" MESSAGE_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5)"
                           " RETURNING " MESSAGE_COLUMNS,
    [SQL_MESSAGE_SEQ] = "SELECT seq FROM messages WHERE id = ?1 AND room_id = ?2",
    /* The newest ?3 before seq ?2, returned oldest first. */
    [SQL_MESSAGE_HISTORY] = "SELECT " MESSAGE_COLUMNS " FROM (SELECT seq, " MESSAGE_COLUMNS
                            " FROM messages WHERE room_id = ?1 AND seq < ?2"
                            " ORDER BY seq DESC LIMIT ?3) ORDER BY seq",
    [SQL_DM_INSERT] = "INSERT INTO direct_messages (" DM_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5)"
                      " RETURNING " DM_COLUMNS,
    [SQL_DM_SEQ] = "SELECT seq FROM direct_messages WHERE " DM_PAIR " AND id = ?3",
    [SQL_DM_HISTORY] = "SELECT " DM_COLUMNS " FROM (SELECT seq, " DM_COLUMNS
                       " FROM direct_messages WHERE " DM_PAIR " AND seq < ?3"
                       " ORDER BY seq DESC LIMIT ?4) ORDER BY seq",
    [SQL_NOTIFICATION_INSERT] = "INSERT INTO notifications (id, user_id, type, payload, read,"
                                " created_at) VALUES (?1, ?2, ?3, ?4, 0, ?5)"
                                " RETURNING " NOTIFICATION_COLUMNS,
    [SQL_NOTIFICATION_LIST] = "SELECT " NOTIFICATION_COLUMNS " FROM notifications"
                              " WHERE user_id = ?1 ORDER BY seq DESC LIMIT ?2",
    [SQL_NOTIFICATION_LIST_UNREAD] = "SELECT " NOTIFICATION_COLUMNS " FROM notifications"
                                     " WHERE user_id = ?1 AND read = 0 ORDER BY seq DESC LIMIT ?2",
    [SQL_NOTIFICATION_MARK_ONE] = "UPDATE notifications SET read = 1"
                                  " WHERE id = ?1 AND user_id = ?2 AND read = 0",
    [SQL_NOTIFICATION_MARK_ALL] = "UPDATE notifications SET read = 1"
                                  " WHERE user_id = ?1 AND read = 0",
    [SQL_ACCESS_INSERT] = "INSERT INTO access_requests (id, room_id, user_id, status, created_at)"
                          " VALUES (?1, ?2, ?3, 'pending', ?4) RETURNING " ACCESS_COLUMNS,
    [SQL_ACCESS_RESOLVE] = "UPDATE access_requests SET status = ?2, resolved_at = ?3"
                           " WHERE id = ?1 AND status = 'pending' RETURNING " ACCESS_COLUMNS,
    [SQL_ACCESS_GET] = "SELECT " ACCESS_COLUMNS " FROM access_requests WHERE id = ?1",
};

/* ---- Store ----------------------------------------------------------------------------- */

typedef struct request_s request_t;

struct request_s {
    request_t *next;
    store_operation_t operation;
    json_t *params; /* read by the writer, released on the loop thread */
    store_done_cb done;
    void *data;
    int error;           /* set before queueing when refused (closing, unknown operation) */
    const char *message; /* static */
    json_t *result;      /* built by the writer; NULL on error */
};

typedef struct request_queue_s {
    request_t *head;
    request_t *tail;
} request_queue_t;

struct store_s {
    uv_async_t completions_async; /* the writer wakes the loop: completed requests to run */
    char *path;

    /* The writer thread's, once it runs. */
    sqlite3 *db;
    sqlite3_stmt *statements[STATEMENT_COUNT];
    uint64_t used_statements; /* reset after each request */
    const char *operation_name;

    pthread_t writer;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    /* Under mutex. */
    request_queue_t pending;
    request_queue_t completed;
    int stopping;
    int held;
    int queue_closed;  /* the writer took its last batch: refused requests complete directly */
    int writer_exited; /* ... and closed the database: the loop may join it */
    store_sqlite_stats_t stats;

    /* Loop thread only. */
    int closing;
    int async_closing;
    void (*closed_cb)(void *data);
    void *closed_data;
};

static const char MESSAGE_CLOSED[] = "store is closing";
static const char MESSAGE_NO_MEMORY[] = "out of memory";
static const char MESSAGE_NO_RESULT[] = "result not built: out of memory or unreadable data";
static const char MESSAGE_ROLLED_BACK[] = "the database rolled the transaction back";

/* ---- Small helpers --------------------------------------------------------------------- */

static void queue_push(request_queue_t *queue, request_t *request)
{
    request->next = NULL;
    if (queue->tail != NULL)
        queue->tail->next = request;
    else
        queue->head = request;
    queue->tail = request;
}

/* Detaches up to max requests from the front; NULL when empty. */
static request_t *queue_take(request_queue_t *queue, size_t max)
{
    request_t *head = queue->head;
    request_t *last = head;
    for (size_t count = 1; last != NULL && last->next != NULL && count < max; count++)
        last = last->next;
    if (last == NULL)
        return NULL;
    queue->head = last->next;
    if (queue->head == NULL)
        queue->tail = NULL;
    last->next = NULL;
    return head;
}

static void queue_append(request_queue_t *queue, request_t *list)
{
    while (list != NULL) {
        request_t *next = list->next;
        queue_push(queue, list);
        list = next;
    }
}

/* "2026-11-21T21:00:00.000Z", as JSON.stringify(new Date()) writes it. */
static void time_now(char out[TIME_SIZE])
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm utc;
    gmtime_r(&now.tv_sec, &utc);
    size_t length = strftime(out, TIME_SIZE, "%Y-%m-%dT%H:%M:%S", &utc);
    snprintf(out + length, TIME_SIZE - length, ".%03dZ", (int)(now.tv_nsec / 1000000));
}

/* 20 characters of base64url (no padding) over 15 random bytes. 0, or -1. */
static int id_generate(char out[GENERATED_ID_BYTES / 3 * 4 + 1])
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char bytes[GENERATED_ID_BYTES];
    if (RAND_bytes(bytes, sizeof(bytes)) != 1)
        return -1;
    char *cursor = out;
    for (size_t index = 0; index < sizeof(bytes); index += 3) {
        uint32_t group =
            (uint32_t)bytes[index] << 16 | (uint32_t)bytes[index + 1] << 8 | bytes[index + 2];
        for (int shift = 18; shift >= 0; shift -= 6)
            *cursor++ = alphabet[(group >> shift) & 63];
    }
    *cursor = '\0';
    return 0;
}

/* A JSON number holding a whole value a JavaScript client could have sent exactly: an
 * integer, or a real such as 12.0 within +-2^53. 1 with *out set, or 0. */
static int json_whole_number(const json_t *value, json_int_t *out)
{
    if (json_is_integer(value)) {
        *out = json_integer_value(value);
        return 1;
    }
    if (!json_is_real(value))
        return 0;
    double number = json_real_value(value);
    if (!(number >= -9007199254740992.0 && number <= 9007199254740992.0))
        return 0;
    *out = (json_int_t)number;
    return (double)*out == number;
}

/* ---- Reading params -------------------------------------------------------------------- */

/* A string param: bytes is NULL when absent (or null); present says whether the key was
 * given at all (a null counts), for the fields an upsert may clear. */
typedef struct text_s {
    const char *bytes;
    size_t length;
    int present;
} text_t;

/* A field's messages are literals built at compile time, so that done's message stays
 * static (store.h) and still names the field. */
typedef struct field_s {
    const char *key;
    size_t max_length;
    int allow_empty;
    const char *missing;
    const char *wrong_type;
    const char *empty;
    const char *too_long;
    const char *has_nul;
} field_t;

#define ID_FIELD(key)                                                                              \
    {                                                                                              \
        key, ID_MAX_BYTES, 0, key " is required", key " must be a string or an integer",           \
            key " must not be empty", key " is longer than " TO_STRING(ID_MAX_BYTES) " bytes",     \
            key " must not contain NUL characters"                                                 \
    }
#define TEXT_FIELD(key, allow_empty)                                                               \
    {                                                                                              \
        key, TEXT_MAX_BYTES, allow_empty, key " is required", key " must be a string",             \
            key " must not be empty", key " is longer than " TO_STRING(TEXT_MAX_BYTES) " bytes",   \
            key " must not contain NUL characters"                                                 \
    }

static const field_t FIELD_ID = ID_FIELD("id");
static const field_t FIELD_USER_ID = ID_FIELD("userId");
static const field_t FIELD_ROOM_ID = ID_FIELD("roomId");
static const field_t FIELD_SENDER_ID = ID_FIELD("senderId");
static const field_t FIELD_RECIPIENT_ID = ID_FIELD("recipientId");
static const field_t FIELD_OTHER_ID = ID_FIELD("otherId");
static const field_t FIELD_OWNER_ID = ID_FIELD("ownerId");
static const field_t FIELD_BEFORE = ID_FIELD("before");
static const field_t FIELD_EACH_ID = ID_FIELD("each of ids");
static const field_t FIELD_FIRST_NAME = TEXT_FIELD("firstName", 1);
static const field_t FIELD_LAST_NAME = TEXT_FIELD("lastName", 1);
static const field_t FIELD_ROLE = TEXT_FIELD("role", 1);
static const field_t FIELD_AVATAR = TEXT_FIELD("avatar", 1);
static const field_t FIELD_NAME = TEXT_FIELD("name", 0);
static const field_t FIELD_TEXT = TEXT_FIELD("text", 1);
static const field_t FIELD_TYPE = TEXT_FIELD("type", 0);

enum { OPTIONAL, REQUIRED };

/* Reads params without modifying them (the caller may share them). The first problem found
 * is kept; later reads still return values, and the operation checks once, at the end. */
typedef struct reader_s {
    const json_t *params;
    const char *message;
    char digits[NUMERIC_IDS_MAX][DIGITS_SIZE];
    int digits_used;
} reader_t;

static void reader_start(reader_t *reader, const json_t *params)
{
    reader->params = params;
    reader->message = json_is_object(params) ? NULL : "params must be an object";
    reader->digits_used = 0;
}

static void reader_reject(reader_t *reader, const char *message)
{
    if (reader->message == NULL)
        reader->message = message;
}

/* The value of an optional key, or NULL when absent or null. */
static const json_t *reader_optional(reader_t *reader, const char *key)
{
    const json_t *value = json_object_get(reader->params, key);
    return json_is_null(value) ? NULL : value;
}

/* The value of a key; NULL (and the missing message when required) when absent. An explicit
 * null is returned as is, to be refused as the wrong type when required. */
static const json_t *reader_value(reader_t *reader, const field_t *field, int required)
{
    const json_t *value = json_object_get(reader->params, field->key);
    if (value == NULL && required)
        reader_reject(reader, field->missing);
    if (json_is_null(value) && !required)
        return NULL;
    return value;
}

/* Checks a string against the field's limits: NULL, or the message. */
static const char *check_string(const json_t *value, const field_t *field, text_t *out)
{
    size_t length = json_string_length(value);
    const char *bytes = json_string_value(value);
    if (length == 0 && !field->allow_empty)
        return field->empty;
    if (length > field->max_length)
        return field->too_long;
    /* PostgreSQL refuses NUL in text: refusing it here keeps the drivers interchangeable. */
    if (memchr(bytes, '\0', length) != NULL)
        return field->has_nul;
    *out = (text_t){bytes, length, 1};
    return NULL;
}

/* An id: a string, or a whole number written as its decimal text ("12" and 12 are the same
 * room). digits holds the text of a number. NULL, or the message. */
static const char *id_from_json(const json_t *value, const field_t *field, char digits[DIGITS_SIZE],
                                text_t *out)
{
    if (json_is_string(value))
        return check_string(value, field, out);
    json_int_t number;
    if (!json_whole_number(value, &number))
        return field->wrong_type;
    int length = snprintf(digits, DIGITS_SIZE, "%" JSON_INTEGER_FORMAT, number);
    *out = (text_t){digits, (size_t)length, 1};
    return NULL;
}

static text_t read_id(reader_t *reader, const field_t *field, int required)
{
    text_t text = {NULL, 0, 0};
    const json_t *value = reader_value(reader, field, required);
    if (value == NULL)
        return text;
    if (reader->digits_used == NUMERIC_IDS_MAX) {
        reader_reject(reader, "too many id params"); /* no operation has that many */
        return text;
    }
    const char *problem = id_from_json(value, field, reader->digits[reader->digits_used], &text);
    if (problem != NULL)
        reader_reject(reader, problem);
    else if (text.bytes == reader->digits[reader->digits_used])
        reader->digits_used++;
    return text;
}

static text_t read_text(reader_t *reader, const field_t *field, int required)
{
    text_t text = {NULL, 0, 0};
    const json_t *value = reader_value(reader, field, required);
    if (value == NULL)
        return text;
    const char *problem =
        json_is_string(value) ? check_string(value, field, &text) : field->wrong_type;
    if (problem != NULL)
        reader_reject(reader, problem);
    return text;
}

/* An optional string that null clears: present is set for null too. */
static text_t read_nullable_text(reader_t *reader, const field_t *field)
{
    const json_t *value = json_object_get(reader->params, field->key);
    if (json_is_null(value))
        return (text_t){NULL, 0, 1};
    return read_text(reader, field, OPTIONAL);
}

static int read_bool(reader_t *reader, const char *key, const char *wrong_type)
{
    const json_t *value = reader_optional(reader, key);
    if (value != NULL && !json_is_boolean(value))
        reader_reject(reader, wrong_type);
    return json_is_true(value);
}

static int read_limit(reader_t *reader)
{
    const json_t *value = reader_optional(reader, "limit");
    json_int_t limit = LIMIT_DEFAULT;
    if (value != NULL && (!json_whole_number(value, &limit) || limit < 1 || limit > LIMIT_MAX))
        reader_reject(reader, "limit must be an integer from 1 to " TO_STRING(LIMIT_MAX));
    return (int)limit;
}

/* One of a NULL-terminated list of words; NULL when absent or wrong (message kept). */
static const char *read_word(reader_t *reader, const char *key, const char *const *words,
                             const char *missing, const char *wrong)
{
    const json_t *value = json_object_get(reader->params, key);
    if (value == NULL) {
        reader_reject(reader, missing);
        return NULL;
    }
    for (const char *const *word = words; *word != NULL; word++) {
        if (json_is_string(value) && strcmp(json_string_value(value), *word) == 0 &&
            json_string_length(value) == strlen(*word))
            return *word;
    }
    reader_reject(reader, wrong);
    return NULL;
}

/* ---- Statements on the writer thread --------------------------------------------------- */

/* The cached statement, marked for reset when the request ends. */
static sqlite3_stmt *statement(store_t *store, statement_id_t id)
{
    store->used_statements |= UINT64_C(1) << id;
    return store->statements[id];
}

/* Bindings can only fail on a bad index or a value over SQLITE_MAX_LENGTH: the indexes are
 * fixed here and strings are limited to 64 KiB, so the return codes carry no information.
 * Text from params is bound without a copy (SQLITE_STATIC: params outlive the request, and
 * bindings are cleared when it ends); the store's own strings (ids, times, a payload) live on
 * the stack of the operation and are copied. */
static void bind_text(sqlite3_stmt *stmt, int index, text_t text)
{
    if (text.bytes == NULL)
        sqlite3_bind_null(stmt, index);
    else
        sqlite3_bind_text(stmt, index, text.bytes, (int)text.length, SQLITE_STATIC);
}

static void bind_string(sqlite3_stmt *stmt, int index, const char *string)
{
    sqlite3_bind_text(stmt, index, string, -1, SQLITE_TRANSIENT);
}

static void bind_int(sqlite3_stmt *stmt, int index, sqlite3_int64 value)
{
    sqlite3_bind_int64(stmt, index, value);
}

static text_t text_of(const char *string)
{
    return (text_t){string, strlen(string), 1};
}

static void statements_reset_used(store_t *store)
{
    for (int id = 0; id < STATEMENT_COUNT; id++) {
        if (store->used_statements & (UINT64_C(1) << id)) {
            sqlite3_reset(store->statements[id]);
            sqlite3_clear_bindings(store->statements[id]);
        }
    }
    store->used_statements = 0;
}

/* Runs a statement that returns no rows (or whose rows are not needed) and resets it. */
static int statement_execute(store_t *store, statement_id_t id)
{
    sqlite3_stmt *stmt = store->statements[id];
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    return rc == SQLITE_ROW ? SQLITE_DONE : rc;
}

/* ---- Results ----------------------------------------------------------------------------- */

typedef enum column_kind { COLUMN_TEXT, COLUMN_BOOL, COLUMN_JSON } column_kind_t;

/* Result column i is JSON key columns[i].key; a shape with one column and a NULL key gives the
 * value itself (a list of user ids). */
typedef struct column_s {
    const char *key;
    column_kind_t kind;
} column_t;

typedef struct shape_s {
    const column_t *columns;
    size_t count;
} shape_t;

#define SHAPE(columns)                                                                             \
    {                                                                                              \
        columns, sizeof(columns) / sizeof(columns[0])                                              \
    }

static const column_t user_columns[] = {{"id", COLUMN_TEXT},
                                        {"firstName", COLUMN_TEXT},
                                        {"lastName", COLUMN_TEXT},
                                        {"role", COLUMN_TEXT},
                                        {"avatar", COLUMN_TEXT}};
static const column_t presence_columns[] = {
    {"userId", COLUMN_TEXT}, {"status", COLUMN_TEXT}, {"lastActivity", COLUMN_TEXT}};
static const column_t room_columns[] = {{"id", COLUMN_TEXT},
                                        {"name", COLUMN_TEXT},
                                        {"isPrivate", COLUMN_BOOL},
                                        {"ownerId", COLUMN_TEXT},
                                        {"createdAt", COLUMN_TEXT}};
static const column_t member_columns[] = {
    {"roomId", COLUMN_TEXT}, {"userId", COLUMN_TEXT}, {"joinedAt", COLUMN_TEXT}};
static const column_t user_id_column[] = {{NULL, COLUMN_TEXT}};
static const column_t message_columns[] = {{"id", COLUMN_TEXT},
                                           {"roomId", COLUMN_TEXT},
                                           {"senderId", COLUMN_TEXT},
                                           {"text", COLUMN_TEXT},
                                           {"createdAt", COLUMN_TEXT}};
static const column_t dm_columns[] = {{"id", COLUMN_TEXT},
                                      {"senderId", COLUMN_TEXT},
                                      {"recipientId", COLUMN_TEXT},
                                      {"text", COLUMN_TEXT},
                                      {"createdAt", COLUMN_TEXT}};
static const column_t notification_columns[] = {{"id", COLUMN_TEXT},   {"userId", COLUMN_TEXT},
                                                {"type", COLUMN_TEXT}, {"payload", COLUMN_JSON},
                                                {"read", COLUMN_BOOL}, {"createdAt", COLUMN_TEXT}};
static const column_t access_columns[] = {{"id", COLUMN_TEXT},
                                          {"roomId", COLUMN_TEXT},
                                          {"userId", COLUMN_TEXT},
                                          {"status", COLUMN_TEXT},
                                          {"createdAt", COLUMN_TEXT}};

static const shape_t USER_SHAPE = SHAPE(user_columns);
static const shape_t PRESENCE_SHAPE = SHAPE(presence_columns);
static const shape_t ROOM_SHAPE = SHAPE(room_columns);
static const shape_t MEMBER_SHAPE = SHAPE(member_columns);
static const shape_t USER_ID_SHAPE = SHAPE(user_id_column);
static const shape_t MESSAGE_SHAPE = SHAPE(message_columns);
static const shape_t DM_SHAPE = SHAPE(dm_columns);
static const shape_t NOTIFICATION_SHAPE = SHAPE(notification_columns);
static const shape_t ACCESS_SHAPE = SHAPE(access_columns);

/* A new reference, or NULL (out of memory, or text in the file that is not UTF-8 or JSON). */
static json_t *column_value(sqlite3_stmt *stmt, int index, column_kind_t kind)
{
    if (sqlite3_column_type(stmt, index) == SQLITE_NULL)
        return json_null();
    if (kind == COLUMN_BOOL)
        return json_boolean(sqlite3_column_int64(stmt, index) != 0);
    const char *text = (const char *)sqlite3_column_text(stmt, index);
    size_t length = (size_t)sqlite3_column_bytes(stmt, index);
    if (text == NULL)
        return NULL;
    if (kind == COLUMN_JSON)
        return json_loadb(text, length, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    return json_stringn(text, length);
}

static json_t *row_value(sqlite3_stmt *stmt, const shape_t *shape)
{
    if (shape->columns[0].key == NULL)
        return column_value(stmt, 0, shape->columns[0].kind);
    json_t *object = json_object();
    for (size_t index = 0; object != NULL && index < shape->count; index++) {
        json_t *value = column_value(stmt, (int)index, shape->columns[index].kind);
        if (json_object_set_new(object, shape->columns[index].key, value) != 0) {
            json_decref(object);
            object = NULL;
        }
    }
    return object;
}

/* ---- Request outcomes -------------------------------------------------------------------- */

static int request_fail(request_t *request, int error, const char *message)
{
    json_decref(request->result);
    request->result = NULL;
    request->error = error;
    request->message = message;
    return error;
}

/* Takes result (NULL: out of memory, or text in the file that is not UTF-8 or JSON). */
static int request_succeed(request_t *request, json_t *result)
{
    if (result == NULL)
        return request_fail(request, STORE_EIO, MESSAGE_NO_RESULT);
    request->result = result;
    return 0;
}

/* The database failed: the details go to the log, the caller gets SQLite's static text. */
static int database_error(store_t *store, request_t *request, int rc)
{
    log_error("store: %s: %s (%s)", store->operation_name, sqlite3_errmsg(store->db),
              sqlite3_errstr(rc));
    return request_fail(request, STORE_EIO, sqlite3_errstr(rc));
}

static int is_unique_violation(int rc)
{
    return rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE;
}

/* Steps a statement expected to give one row, and makes it the result. A unique violation
 * gives STORE_ECONFLICT with conflict (when not NULL); no row gives STORE_ENOTFOUND. */
static int result_row(store_t *store, request_t *request, sqlite3_stmt *stmt, const shape_t *shape,
                      const char *not_found, const char *conflict)
{
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        return request_succeed(request, row_value(stmt, shape));
    if (rc == SQLITE_DONE)
        return request_fail(request, STORE_ENOTFOUND, not_found);
    if (conflict != NULL && is_unique_violation(rc))
        return request_fail(request, STORE_ECONFLICT, conflict);
    return database_error(store, request, rc);
}

/* Every row, as an array. */
static int result_rows(store_t *store, request_t *request, sqlite3_stmt *stmt, const shape_t *shape)
{
    json_t *rows = json_array();
    if (rows == NULL)
        return request_fail(request, STORE_EIO, MESSAGE_NO_MEMORY);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (json_array_append_new(rows, row_value(stmt, shape)) != 0) {
            json_decref(rows);
            return request_fail(request, STORE_EIO, MESSAGE_NO_MEMORY);
        }
    }
    if (rc != SQLITE_DONE) {
        json_decref(rows);
        return database_error(store, request, rc);
    }
    return request_succeed(request, rows);
}

/* 1 when the row keyed by key exists, 0 when not, or a negative store error. */
static int row_exists(store_t *store, request_t *request, statement_id_t id, text_t key)
{
    sqlite3_stmt *stmt = statement(store, id);
    bind_text(stmt, 1, key);
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    if (rc == SQLITE_ROW)
        return 1;
    return rc == SQLITE_DONE ? 0 : database_error(store, request, rc);
}

/* 0 when the row exists; STORE_ENOTFOUND with not_found, or STORE_EIO. */
static int require_row(store_t *store, request_t *request, statement_id_t id, text_t key,
                       const char *not_found)
{
    int found = row_exists(store, request, id, key);
    if (found < 0)
        return found;
    return found ? 0 : request_fail(request, STORE_ENOTFOUND, not_found);
}

static int invalid(request_t *request, const char *message)
{
    return request_fail(request, STORE_EINVALID, message);
}

static int generate_id(request_t *request, char out[GENERATED_ID_BYTES / 3 * 4 + 1])
{
    if (id_generate(out) != 0)
        return request_fail(request, STORE_EIO, "random generator failed");
    return 0;
}

/* The seq of message id in a conversation (for "before"): in *seq, or an error. Without an id,
 * INT64_MAX: every message is before it. */
static int before_seq(store_t *store, request_t *request, sqlite3_stmt *stmt, int id_index,
                      text_t before, sqlite3_int64 *seq)
{
    *seq = INT64_MAX;
    if (before.bytes == NULL)
        return 0;
    bind_text(stmt, id_index, before);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        *seq = sqlite3_column_int64(stmt, 0);
    sqlite3_reset(stmt);
    if (rc == SQLITE_DONE)
        return request_fail(request, STORE_ENOTFOUND, "before: message not found");
    return rc == SQLITE_ROW ? 0 : database_error(store, request, rc);
}

/* ---- Operations (writer thread) ---------------------------------------------------------- */

static int run_user_upsert(store_t *store, request_t *request)
{
    reader_t reader;
    reader_start(&reader, request->params);
    text_t id = read_id(&reader, &FIELD_ID, REQUIRED);
    text_t fields[4] = {read_nullable_text(&reader, &FIELD_FIRST_NAME),
                        read_nullable_text(&reader, &FIELD_LAST_NAME),
                        read_nullable_text(&reader, &FIELD_ROLE),
                        read_nullable_text(&reader, &FIELD_AVATAR)};
    if (reader.message != NULL)
        return invalid(request, reader.message);
    char now[TIME_SIZE];
    time_now(now);
    sqlite3_stmt *stmt = statement(store, SQL_USER_UPSERT);
    bind_text(stmt, 1, id);
    for (int index = 0; index < 4; index++) {
        bind_text(stmt, 2 + 2 * index, fields[index]);
        bind_int(stmt, 3 + 2 * index, fields[index].present);
    }
    bind_string(stmt, 10, now);
    return result_row(store, request, stmt, &USER_SHAPE, "user not found", NULL);
}

static int run_user_get(store_t *store, request_t *request)
{
    reader_t reader;
    reader_start(&reader, request->params);
    text_t id = read_id(&reader, &FIELD_ID, REQUIRED);
    if (reader.message != NULL)
        return invalid(request, reader.message);
    sqlite3_stmt *stmt = statement(store, SQL_USER_GET);
    bind_text(stmt, 1, id);
    return result_row(store, request, stmt, &USER_SHAPE, "user not found", NULL);
}

static const char *const presence_words[] = {"online", "offline", NULL};

static int run_presence_set(store_t *store, request_t *request)
{
    reader_t reader;
    reader_start(&reader, request->params);
    text_t user_id = read_id(&reader, &FIELD_USER_ID, REQUIRED);
    const char *status = read_word(&reader, "status", presence_words, "status is required",
                                   "status must be \"online\" or \"offline\"");
    if (reader.message != NULL)
        return invalid(request, reader.message);
    int error = require_row(store, request, SQL_USER_EXISTS, user_id, "user not found");
    if (error != 0)
        return error;
    char now[TIME_SIZE];
    time_now(now);
    sqlite3_stmt *stmt = statement(store, SQL_PRESENCE_SET);
    bind_text(stmt, 1, user_id);
    bind_string(stmt, 2, status);
    bind_string(stmt, 3, now);
    return result_row(store, request, stmt, &PRESENCE_SHAPE, "user not found", NULL);
}

static int run_presence_get(store_t *store, request_t *request)
{
    reader_t reader;
    reader_start(&reader, request->params);
    text_t user_id = read_id(&reader, &FIELD_USER_ID, REQUIRED);
    if (reader.message != NULL)
        return invalid(request, reader.message);
    sqlite3_stmt *stmt = statement(store, SQL_PRESENCE_GET);
    bind_text(stmt, 1, user_id);
    return result_row(store, request, stmt, &PRESENCE_SHAPE, "presence not found", NULL);
}

/* Adds a member (nothing when already one); the caller has checked room and user. */
static int member_insert(store_t *store, request_t *request, text_t room_id, text_t user_id)
{
    char now[TIME_SIZE];
    time_now(now);
    sqlite3_stmt *stmt = statement(store, SQL_MEMBER_INSERT);
    bind_text(stmt, 1, room_id);
    bind_text(stmt, 2, user_id);
    bind_string(stmt, 3, now);
    int rc = statement_execute(store, SQL_MEMBER_INSERT);
    return rc == SQLITE_DONE ? 0 : database_error(store, request, rc);
}

static int run_room_create(store_t *store, request_t *request)
{
    reader_t reader;
    reader_start(&reader, request->params);
    text_t name = read_text(&reader, &FIELD_NAME, REQUIRED);
    int is_private = read_bool(&reader, "isPrivate", "isPrivate must be a boolean");
    text_t owner_id = read_id(&reader, &FIELD_OWNER_ID, OPTIONAL);
    text_t id = read_id(&reader, &FIELD_ID, OPTIONAL);
    if (reader.message != NULL)
        return invalid(request, reader.message);
    int error = 0;
    if (owner_id.bytes != NULL)
        error = require_row(store, request, SQL_USER_EXISTS, owner_id, "owner not found");
    char generated[GENERATED_ID_BYTES / 3 * 4 + 1];
    if (error == 0 && id.bytes == NULL && (error = generate_id(request, generated)) == 0)
        id = text_of(generated);
    if (error != 0)
        return error;
    char now[TIME_SIZE];
    time_now(now);
    sqlite3_stmt *stmt = statement(store, SQL_ROOM_INSERT);
    bind_text(stmt, 1, id);
    bind_text(stmt, 2, name);
    bind_int(stmt, 3, is_private);
    bind_text(stmt, 4, owner_id);
    bind_string(stmt, 5, now);
    error = result_row(store, request, stmt, &ROOM_SHAPE, "room not found", "room already exists");
    if (error == 0 && owner_id.bytes != NULL)
        error = member_insert(store, request, id, owner_id);
    return error;
}

static int run_room_get(store_t *store, request_t *request)
{
    reader_t reader;
    reader_start(&reader, request->params);
    text_t id = read_id(&reader, &FIELD_ID, REQUIRED);
    if (reader.message != NULL)
        return invalid(request, reader.message);
    sqlite3_stmt *stmt = statement(store, SQL_ROOM_GET);
    bind_text(stmt, 1, id);
    return result_row(store, request, stmt, &ROOM_SHAPE, "room not found", NULL);
}

/* Reads {roomId, userId} and checks that the room exists (and the user, when asked). */
static int read_membership(store_t *store, request_t *request, int user_must_exist,
                           reader_t *reader, text_t *room_id, text_t *user_id)
{
    reader_start(reader, request->params);
    *room_id = read_id(reader, &FIELD_ROOM_ID, REQUIRED);
    *user_id = read_id(reader, &FIELD_USER_ID, REQUIRED);
    if (reader->message != NULL)
        return invalid(request, reader->message);
    int error = require_row(store, request, SQL_ROOM_EXISTS, *room_id, "room not found");
    if (error == 0 && user_must_exist)
        error = require_row(store, request, SQL_USER_EXISTS, *user_id, "user not found");
    return error;
}

static int run_room_add_member(store_t *store, request_t *request)
{
    reader_t reader;
    text_t room_id, user_id;
    int error = read_membership(store, request, 1, &reader, &room_id, &user_id);
    if (error == 0)
        error = member_insert(store, request, room_id, user_id);
    if (error != 0)
        return error;
    sqlite3_stmt *stmt = statement(store, SQL_MEMBER_GET);
    bind_text(stmt, 1, room_id);
    bind_text(stmt, 2, user_id);
    return result_row(store, request, stmt, &MEMBER_SHAPE, "member not found", NULL);
}

static int run_room_remove_member(store_t *store, request_t *request)
{
    reader_t reader;
    text_t room_id, user_id;
    int error = read_membership(store, request, 0, &reader, &room_id, &user_id);
    if (error != 0)
        return error;
    sqlite3_stmt *stmt = statement(store, SQL_MEMBER_DELETE);
    bind_text(stmt, 1, room_id);
    bind_text(stmt, 2, user_id);
    int rc = statement_execute(store, SQL_MEMBER_DELETE);
    if (rc != SQLITE_DONE)
        return database_error(store, request, rc);
    return request_succeed(request,
                           json_pack("{s:s%, s:s%, s:b}", "roomId", room_id.bytes, room_id.length,
                                     "userId", user_id.bytes, user_id.length, "removed",
                                     sqlite3_changes(store->db) > 0));
}

static int run_room_members(store_t *store, request_t *request)
{
    reader_t reader;
    reader_start(&reader, request->params);
    text_t room_id = read_id(&reader, &FIELD_ROOM_ID, REQUIRED);
    if (reader.message != NULL)
        return invalid(request, reader.message);
    int error = require_row(store, request, SQL_ROOM_EXISTS, room_id, "room not found");
    if (error != 0)
        return error;
    sqlite3_stmt *stmt = statement(store, SQL_MEMBER_LIST);
    bind_text(stmt, 1, room_id);
    return result_rows(store, request, stmt, &USER_ID_SHAPE);
}

/* 1 when user_id is a member of room_id, 0 when not, or a negative store error. */
static int member_exists(store_t *store, request_t *request, text_t room_id, text_t user_id)
{
    sqlite3_stmt *stmt = statement(store, SQL_MEMBER_GET);
    bind_text(stmt, 1, room_id);
    bind_text(stmt, 2, user_id);
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    if (rc == SQLITE_ROW)
        return 1;
    return rc == SQLITE_DONE ? 0 : database_error(store, request, rc);
}

static int run_room_is_member(store_t *store, request_t *request)
{
    reader_t reader;
    text_t room_id, user_id;
    int error = read_membership(store, request, 0, &reader, &room_id, &user_id);
    int member = error == 0 ? member_exists(store, request, room_id, user_id) : error;
    if (member < 0)
        return member;
    return request_succeed(request, json_boolean(member));
}

static int run_message_add(store_t *store, request_t *request)
{
    reader_t reader;
    reader_start(&reader, request->params);
    text_t room_id = read_id(&reader, &FIELD_ROOM_ID, REQUIRED);
    text_t sender_id = read_id(&reader, &FIELD_SENDER_ID, REQUIRED);
    text_t text = read_text(&reader, &FIELD_TEXT, REQUIRED);
    if (reader.message != NULL)
        return invalid(request, reader.message);
    char id[GENERATED_ID_BYTES / 3 * 4 + 1];
    int error = require_row(store, request, SQL_ROOM_EXISTS, room_id, "room not found");
    if (error == 0)
        error = require_row(store, request, SQL_USER_EXISTS, sender_id, "sender not found");
    if (error == 0)
        error = generate_id(request, id);
    if (error != 0)
        return error;
    char now[TIME_SIZE];
    time_now(now);
    sqlite3_stmt *stmt = statement(store, SQL_MESSAGE_INSERT);
    bind_string(stmt, 1, id);
    bind_text(stmt, 2, room_id);
    bind_text(stmt, 3, sender_id);
    bind_text(stmt, 4, text);
    bind_string(stmt, 5, now);
    return result_row(store, request, stmt, &MESSAGE_SHAPE, "message not found", NULL);
}

static int run_message_history(store_t *store, request_t *request)
{
    reader_t reader;
    reader_start(&reader, request->params);
    text_t room_id = read_id(&reader, &FIELD_ROOM_ID, REQUIRED);
    text_t before = read_id(&reader, &FIELD_BEFORE, OPTIONAL);
    int limit = read_limit(&reader);
    if (reader.message != NULL)
        return invalid(request, reader.message);
    int error = require_row(store, request, SQL_ROOM_EXISTS, room_id, "room not found");
    sqlite3_int64 seq = INT64_MAX;
    sqlite3_stmt *seq_stmt = statement(store, SQL_MESSAGE_SEQ);
    bind_text(seq_stmt, 2, room_id);
    if (error == 0)
        error = before_seq(store, request, seq_stmt, 1, before, &seq);
    if (error != 0)
        return error;
    sqlite3_stmt *stmt = statement(store, SQL_MESSAGE_HISTORY);
    bind_text(stmt, 1, room_id);
    bind_int(stmt, 2, seq);
    bind_int(stmt, 3, limit);
    return result_rows(store, request, stmt, &MESSAGE_SHAPE);
}

static int run_dm_add(store_t *store, request_t *request)
{
    reader_t reader;
    reader_start(&reader, request->params);
    text_t sender_id = read_id(&reader, &FIELD_SENDER_ID, REQUIRED);
    text_t recipient_id = read_id(&reader, &FIELD_RECIPIENT_ID, REQUIRED);
    text_t text = read_text(&reader, &FIELD_TEXT, REQUIRED);
    if (reader.message != NULL)
        return invalid(request, reader.message);
    char id[GENERATED_ID_BYTES / 3 * 4 + 1];
    int error = require_row(store, request, SQL_USER_EXISTS, sender_id, "sender not found");
    if (error == 0)
        error = require_row(store, request, SQL_USER_EXISTS, recipient_id, "recipient not found");
    if (error == 0)
        error = generate_id(request, id);
    if (error != 0)
        return error;
    char now[TIME_SIZE];
    time_now(now);
    sqlite3_stmt *stmt = statement(store, SQL_DM_INSERT);
    bind_string(stmt, 1, id);
    bind_text(stmt, 2, sender_id);
    bind_text(stmt, 3, recipient_id);
    bind_text(stmt, 4, text);
    bind_string(stmt, 5, now);
    return result_row(store, request, stmt, &DM_SHAPE, "message not found", NULL);
}

static int run_dm_history(store_t *store, request_t *request)
{
    reader_t reader;
    reader_start(&reader, request->params);
    text_t user_id = read_id(&reader, &FIELD_USER_ID, REQUIRED);
    text_t other_id = read_id(&reader, &FIELD_OTHER_ID, REQUIRED);
    text_t before = read_id(&reader, &FIELD_BEFORE, OPTIONAL);
    int limit = read_limit(&reader);
    if (reader.message != NULL)
        return invalid(request, reader.message);
    sqlite3_int64 seq;
    sqlite3_stmt *seq_stmt = statement(store, SQL_DM_SEQ);
    bind_text(seq_stmt, 1, user_id);
    bind_text(seq_stmt, 2, other_id);
    int error = before_seq(store, request, seq_stmt, 3, before, &seq);
    if (error != 0)
        return error;
    sqlite3_stmt *stmt = statement(store, SQL_DM_HISTORY);
    bind_text(stmt, 1, user_id);
    bind_text(stmt, 2, other_id);
    bind_int(stmt, 3, seq);
    bind_int(stmt, 4, limit);
    return result_rows(store, request, stmt, &DM_SHAPE);
}

static int run_notification_add(store_t *store, request_t *request)
{
    reader_t reader;
    reader_start(&reader, request->params);
    text_t user_id = read_id(&reader, &FIELD_USER_ID, REQUIRED);
    text_t type = read_text(&reader, &FIELD_TYPE, REQUIRED);
    const json_t *payload = json_object_get(request->params, "payload");
    if (payload == NULL)
        reader_reject(&reader, "payload is required");
    else if (!json_is_object(payload))
        reader_reject(&reader, "payload must be an object");
    if (reader.message != NULL)
        return invalid(request, reader.message);
    char id[GENERATED_ID_BYTES / 3 * 4 + 1];
    int error = generate_id(request, id);
    if (error != 0)
        return error;
    char *payload_text = json_dumps(payload, JSON_COMPACT);
    if (payload_text == NULL)
        return request_fail(request, STORE_EIO, MESSAGE_NO_MEMORY);
    if (strlen(payload_text) > TEXT_MAX_BYTES) {
        free(payload_text);
        return invalid(request, "payload is larger than " TO_STRING(TEXT_MAX_BYTES) " bytes");
    }
    char now[TIME_SIZE];
    time_now(now);
    sqlite3_stmt *stmt = statement(store, SQL_NOTIFICATION_INSERT);
    bind_string(stmt, 1, id);
    bind_text(stmt, 2, user_id);
    bind_text(stmt, 3, type);
    bind_string(stmt, 4, payload_text);
    bind_string(stmt, 5, now);
    free(payload_text);
    return result_row(store, request, stmt, &NOTIFICATION_SHAPE, "notification not found", NULL);
}

static int run_notification_list(store_t *store, request_t *request)
{
    reader_t reader;
    reader_start(&reader, request->params);
    text_t user_id = read_id(&reader, &FIELD_USER_ID, REQUIRED);
    int unread_only = read_bool(&reader, "unreadOnly", "unreadOnly must be a boolean");
    int limit = read_limit(&reader);
    if (reader.message != NULL)
        return invalid(request, reader.message);
    sqlite3_stmt *stmt =
        statement(store, unread_only ? SQL_NOTIFICATION_LIST_UNREAD : SQL_NOTIFICATION_LIST);
    bind_text(stmt, 1, user_id);
    bind_int(stmt, 2, limit);
    return result_rows(store, request, stmt, &NOTIFICATION_SHAPE);
}

/* Marks each listed notification of user_id read; *updated counts those that were unread. */
static int mark_listed_read(store_t *store, request_t *request, text_t user_id, const json_t *ids,
                            sqlite3_int64 *updated)
{
    if (json_array_size(ids) > MARK_READ_IDS_MAX)
        return invalid(request, "ids has more than " TO_STRING(MARK_READ_IDS_MAX) " entries");
    sqlite3_stmt *stmt = statement(store, SQL_NOTIFICATION_MARK_ONE);
    bind_text(stmt, 2, user_id);
    size_t index;
    const json_t *value;
    json_array_foreach(ids, index, value)
    {
        char digits[DIGITS_SIZE];
        text_t id;
        const char *problem = id_from_json(value, &FIELD_EACH_ID, digits, &id);
        if (problem != NULL)
            return invalid(request, problem);
        bind_text(stmt, 1, id);
        int rc = statement_execute(store, SQL_NOTIFICATION_MARK_ONE);
        if (rc != SQLITE_DONE)
            return database_error(store, request, rc);
        *updated += sqlite3_changes(store->db);
    }
    return 0;
}

static int mark_all_read(store_t *store, request_t *request, text_t user_id, sqlite3_int64 *updated)
{
    sqlite3_stmt *stmt = statement(store, SQL_NOTIFICATION_MARK_ALL);
    bind_text(stmt, 1, user_id);
    int rc = statement_execute(store, SQL_NOTIFICATION_MARK_ALL);
    if (rc != SQLITE_DONE)
        return database_error(store, request, rc);
    *updated = sqlite3_changes(store->db);
    return 0;
}

static int run_notification_mark_read(store_t *store, request_t *request)
{
    reader_t reader;
    reader_start(&reader, request->params);
    text_t user_id = read_id(&reader, &FIELD_USER_ID, REQUIRED);
    const json_t *ids = json_object_get(request->params, "ids");
    int all = json_is_string(ids) && strcmp(json_string_value(ids), "all") == 0;
    if (ids == NULL)
        reader_reject(&reader, "ids is required");
    else if (!all && !json_is_array(ids))
        reader_reject(&reader, "ids must be an array of ids or \"all\"");
    if (reader.message != NULL)
        return invalid(request, reader.message);
    sqlite3_int64 updated = 0;
    int error = all ? mark_all_read(store, request, user_id, &updated)
                    : mark_listed_read(store, request, user_id, ids, &updated);
    if (error != 0)
        return error;
    return request_succeed(request, json_pack("{s:I}", "updated", (json_int_t)updated));
}

static int run_access_request_add(store_t *store, request_t *request)
{
    reader_t reader;
    text_t room_id, user_id;
    int error = read_membership(store, request, 1, &reader, &room_id, &user_id);
    int member = error == 0 ? member_exists(store, request, room_id, user_id) : error;
    if (member < 0)
        return member;
    if (member)
        return request_fail(request, STORE_ECONFLICT, "user is already a member");
    char id[GENERATED_ID_BYTES / 3 * 4 + 1];
    if ((error = generate_id(request, id)) != 0)
        return error;
    char now[TIME_SIZE];
    time_now(now);
    sqlite3_stmt *stmt = statement(store, SQL_ACCESS_INSERT);
    bind_string(stmt, 1, id);
    bind_text(stmt, 2, room_id);
    bind_text(stmt, 3, user_id);
    bind_string(stmt, 4, now);
    return result_row(store, request, stmt, &ACCESS_SHAPE, "access request not found",
                      "access request already pending");
}

static const char *const resolution_words[] = {"granted", "denied", NULL};

/* No pending request had the id: tell a resolved one from a missing one. */
static int access_request_not_pending(store_t *store, request_t *request, text_t id)
{
    int found = row_exists(store, request, SQL_ACCESS_GET, id);
    if (found < 0)
        return found;
    return found ? request_fail(request, STORE_ECONFLICT, "access request already resolved")
                 : request_fail(request, STORE_ENOTFOUND, "access request not found");
}

static int run_access_request_resolve(store_t *store, request_t *request)
{
    reader_t reader;
    reader_start(&reader, request->params);
    text_t id = read_id(&reader, &FIELD_ID, REQUIRED);
    const char *status = read_word(&reader, "status", resolution_words, "status is required",
                                   "status must be \"granted\" or \"denied\"");
    if (reader.message != NULL)
        return invalid(request, reader.message);
    char now[TIME_SIZE];
    time_now(now);
    sqlite3_stmt *stmt = statement(store, SQL_ACCESS_RESOLVE);
    bind_text(stmt, 1, id);
    bind_string(stmt, 2, status);
    bind_string(stmt, 3, now);
    int error = result_row(store, request, stmt, &ACCESS_SHAPE, NULL, NULL);
    if (error == STORE_ENOTFOUND)
        return access_request_not_pending(store, request, id);
    if (error != 0 || strcmp(status, "granted") != 0)
        return error;
    json_t *room_id = json_object_get(request->result, "roomId");
    json_t *user_id = json_object_get(request->result, "userId");
    return member_insert(store, request,
                         (text_t){json_string_value(room_id), json_string_length(room_id), 1},
                         (text_t){json_string_value(user_id), json_string_length(user_id), 1});
}

static int run_access_request_get(store_t *store, request_t *request)
{
    reader_t reader;
    reader_start(&reader, request->params);
    text_t id = read_id(&reader, &FIELD_ID, REQUIRED);
    if (reader.message != NULL)
        return invalid(request, reader.message);
    sqlite3_stmt *stmt = statement(store, SQL_ACCESS_GET);
    bind_text(stmt, 1, id);
    return result_row(store, request, stmt, &ACCESS_SHAPE, "access request not found", NULL);
}

typedef struct operation_s {
    const char *name;
    int (*run)(store_t *store, request_t *request); /* 0, or the request's error */
} operation_t;

static const operation_t operations[STORE_OPERATION_COUNT] = {
    [STORE_USER_UPSERT] = {"user_upsert", run_user_upsert},
    [STORE_USER_GET] = {"user_get", run_user_get},
    [STORE_PRESENCE_SET] = {"presence_set", run_presence_set},
    [STORE_PRESENCE_GET] = {"presence_get", run_presence_get},
    [STORE_ROOM_CREATE] = {"room_create", run_room_create},
    [STORE_ROOM_GET] = {"room_get", run_room_get},
    [STORE_ROOM_ADD_MEMBER] = {"room_add_member", run_room_add_member},
    [STORE_ROOM_REMOVE_MEMBER] = {"room_remove_member", run_room_remove_member},
    [STORE_ROOM_MEMBERS] = {"room_members", run_room_members},
    [STORE_ROOM_IS_MEMBER] = {"room_is_member", run_room_is_member},
    [STORE_MESSAGE_ADD] = {"message_add", run_message_add},
    [STORE_MESSAGE_HISTORY] = {"message_history", run_message_history},
    [STORE_DM_ADD] = {"dm_add", run_dm_add},
    [STORE_DM_HISTORY] = {"dm_history", run_dm_history},
    [STORE_NOTIFICATION_ADD] = {"notification_add", run_notification_add},
    [STORE_NOTIFICATION_LIST] = {"notification_list", run_notification_list},
    [STORE_NOTIFICATION_MARK_READ] = {"notification_mark_read", run_notification_mark_read},
    [STORE_ACCESS_REQUEST_ADD] = {"access_request_add", run_access_request_add},
    [STORE_ACCESS_REQUEST_RESOLVE] = {"access_request_resolve", run_access_request_resolve},
    [STORE_ACCESS_REQUEST_GET] = {"access_request_get", run_access_request_get},
};

/* An operation of store.h this file has no entry for (the header grew): refused, not run. */
static int operation_known(store_operation_t operation)
{
    return (unsigned)operation < STORE_OPERATION_COUNT && operations[operation].run != NULL;
}

const char *store_operation_name(store_operation_t operation)
{
    return operation_known(operation) ? operations[operation].name : "unknown";
}

/* ---- The writer thread ------------------------------------------------------------------- */

/* Runs one request inside the open transaction, in its own savepoint: if it fails, its
 * changes are rolled back and the rest of the batch goes on. */
static void request_run(store_t *store, request_t *request)
{
    store->operation_name = operations[request->operation].name;
    int rc = statement_execute(store, SQL_SAVEPOINT);
    if (rc != SQLITE_DONE) {
        database_error(store, request, rc);
        return;
    }
    int error = operations[request->operation].run(store, request);
    statements_reset_used(store);
    /* Some errors (I/O, disk full, RAISE(ROLLBACK)) end the whole transaction: no savepoint
     * is left to release; the batch notices through sqlite3_get_autocommit(). */
    if (sqlite3_get_autocommit(store->db))
        return;
    if (error != 0)
        statement_execute(store, SQL_ROLLBACK_TO);
    rc = statement_execute(store, SQL_RELEASE);
    if (rc != SQLITE_DONE && error == 0) {
        /* Its changes must not be committed with the batch if it reports a failure. */
        database_error(store, request, rc);
        statement_execute(store, SQL_ROLLBACK_TO);
        statement_execute(store, SQL_RELEASE);
    }
}

/* Requests from first up to (not including) end that had succeeded lose their result: their
 * transaction did not commit. */
static void batch_fail_uncommitted(request_t *first, request_t *end)
{
    for (request_t *request = first; request != end; request = request->next) {
        if (request->error == 0)
            request_fail(request, STORE_EIO, MESSAGE_ROLLED_BACK);
    }
}

/* What one batch did, added to the store's counters when it is posted back. */
typedef struct batch_counts_s {
    size_t size;
    uint64_t requests;
    uint64_t transactions;
    uint64_t failed_commits;
} batch_counts_t;

/* Opens a transaction for request; 0, or -1 with the request failed. */
static int batch_begin(store_t *store, request_t *request, batch_counts_t *counts)
{
    store->operation_name = "begin";
    int rc = statement_execute(store, SQL_BEGIN);
    if (rc != SQLITE_DONE) {
        database_error(store, request, rc);
        return -1;
    }
    counts->transactions++;
    return 0;
}

/* Commits the transaction that first opened; on failure every request since fails. */
static void batch_commit(store_t *store, request_t *first, batch_counts_t *counts)
{
    store->operation_name = "commit";
    int rc = statement_execute(store, SQL_COMMIT);
    if (rc == SQLITE_DONE)
        return;
    log_error("store: commit: %s (%s)", sqlite3_errmsg(store->db), sqlite3_errstr(rc));
    if (!sqlite3_get_autocommit(store->db))
        statement_execute(store, SQL_ROLLBACK);
    batch_fail_uncommitted(first, NULL);
    counts->failed_commits++;
}

/* Runs a batch in as few transactions as possible: one, unless the database rolls one back
 * on its own, in which case the requests run so far fail and the rest start another. */
static void batch_run(store_t *store, request_t *batch, batch_counts_t *counts)
{
    request_t *first = NULL; /* the first request of the open transaction */
    for (request_t *request = batch; request != NULL; request = request->next) {
        counts->size++;
        if (request->error != 0)
            continue; /* refused before it was queued */
        if (first == NULL && batch_begin(store, request, counts) != 0)
            continue;
        if (first == NULL)
            first = request;
        request_run(store, request);
        counts->requests++;
        if (sqlite3_get_autocommit(store->db)) {
            log_error("store: %s: the database rolled the transaction back",
                      operations[request->operation].name);
            batch_fail_uncommitted(first, request);
            if (request->error == 0)
                request_fail(request, STORE_EIO, MESSAGE_ROLLED_BACK);
            first = NULL;
        }
    }
    if (first != NULL)
        batch_commit(store, first, counts);
}

/* Waits for work; the requests to run (up to BATCH_MAX), or NULL once closing with nothing
 * left to do. */
static request_t *writer_take(store_t *store)
{
    pthread_mutex_lock(&store->mutex);
    while (!store->stopping && (store->held || store->pending.head == NULL))
        pthread_cond_wait(&store->wake, &store->mutex);
    request_t *batch = queue_take(&store->pending, BATCH_MAX);
    /* Decided under the same lock as the queue was seen empty, so that no request can be
     * queued for a writer that no longer looks. */
    if (batch == NULL)
        store->queue_closed = 1;
    pthread_mutex_unlock(&store->mutex);
    return batch;
}

/* Hands a committed batch back to the loop thread. */
static void writer_post(store_t *store, request_t *batch, const batch_counts_t *counts)
{
    pthread_mutex_lock(&store->mutex);
    queue_append(&store->completed, batch);
    store->stats.batches++;
    store->stats.requests += counts->requests;
    store->stats.transactions += counts->transactions;
    store->stats.failed_commits += counts->failed_commits;
    if (counts->size > store->stats.largest_batch)
        store->stats.largest_batch = counts->size;
    pthread_mutex_unlock(&store->mutex);
    uv_async_send(&store->completions_async);
}

/* Finalizes the statements and closes the connection (a WAL checkpoint: disk work that stays
 * off the loop thread, except when store_open fails). NULL-safe. */
static void database_close(store_t *store)
{
    for (int id = 0; id < STATEMENT_COUNT; id++) {
        sqlite3_finalize(store->statements[id]);
        store->statements[id] = NULL;
    }
    if (store->db != NULL && sqlite3_close(store->db) != SQLITE_OK)
        log_error("store: closing %s: %s", store->path, sqlite3_errmsg(store->db));
    store->db = NULL;
}

static void *writer_main(void *argument)
{
    store_t *store = argument;
    request_t *batch;
    while ((batch = writer_take(store)) != NULL) {
        batch_counts_t counts = {0, 0, 0, 0};
        batch_run(store, batch, &counts);
        writer_post(store, batch, &counts);
    }
    database_close(store);
    pthread_mutex_lock(&store->mutex);
    store->writer_exited = 1;
    pthread_mutex_unlock(&store->mutex);
    /* The loop joins this thread before it closes the handle, so it is still valid here. */
    uv_async_send(&store->completions_async);
    return NULL;
}

/* ---- The loop thread ----------------------------------------------------------------------- */

static void request_complete(request_t *request)
{
    if (request->done != NULL)
        request->done(request->error, request->error != 0 ? request->message : NULL,
                      request->error != 0 ? NULL : request->result, request->data);
    json_decref(request->result);
    json_decref(request->params);
    free(request);
}

/* Runs every completed request, in order, including those that done callbacks refuse on the
 * way (requests made while the store closes). */
static void completions_run(store_t *store)
{
    for (;;) {
        pthread_mutex_lock(&store->mutex);
        request_t *list = queue_take(&store->completed, SIZE_MAX);
        pthread_mutex_unlock(&store->mutex);
        if (list == NULL)
            return;
        while (list != NULL) {
            request_t *next = list->next;
            request_complete(list);
            list = next;
        }
    }
}

static void store_free(store_t *store)
{
    pthread_mutex_destroy(&store->mutex);
    pthread_cond_destroy(&store->wake);
    free(store->path);
    free(store);
}

static void on_async_closed(uv_handle_t *handle)
{
    store_t *store = handle->data;
    completions_run(store); /* requests made after the handle started closing */
    void (*closed_cb)(void *data) = store->closed_cb;
    void *closed_data = store->closed_data;
    store_free(store);
    if (closed_cb != NULL)
        closed_cb(closed_data);
}

static void on_completions(uv_async_t *handle)
{
    store_t *store = handle->data;
    completions_run(store);
    if (!store->closing || store->async_closing)
        return;
    pthread_mutex_lock(&store->mutex);
    int exited = store->writer_exited;
    pthread_mutex_unlock(&store->mutex);
    if (!exited)
        return;
    completions_run(store);            /* posted between the first run and the exit */
    pthread_join(store->writer, NULL); /* immediate: the thread is returning */
    store->async_closing = 1;
    uv_close((uv_handle_t *)&store->completions_async, on_async_closed);
}

/* Queues a request for the writer, or straight for completion once the writer has taken its
 * last batch (refused requests only, made while closing): every earlier request has been
 * posted by then, so either way it completes after them. */
static void request_queue(store_t *store, request_t *request)
{
    int wake_loop = 0;
    pthread_mutex_lock(&store->mutex);
    if (store->queue_closed) {
        queue_push(&store->completed, request);
        wake_loop = !store->async_closing; /* else the close callback runs it */
    } else {
        queue_push(&store->pending, request);
        pthread_cond_signal(&store->wake);
    }
    pthread_mutex_unlock(&store->mutex);
    if (wake_loop)
        uv_async_send(&store->completions_async);
}

void store_request(store_t *store, store_operation_t operation, json_t *params, store_done_cb done,
                   void *data)
{
    request_t *request = calloc(1, sizeof(*request));
    if (request == NULL) {
        /* done must not run synchronously, and there is nothing to queue it with. */
        log_error("store: out of memory");
        abort();
    }
    request->operation = operation;
    request->params = params;
    request->done = done;
    request->data = data;
    if (!operation_known(operation))
        request_fail(request, STORE_EINVALID, "unknown operation");
    if (store->closing)
        request_fail(request, STORE_ECLOSED, MESSAGE_CLOSED);
    request_queue(store, request);
}

void store_close(store_t *store, void (*closed_cb)(void *data), void *data)
{
    if (store == NULL || store->closing)
        return;
    store->closing = 1;
    store->closed_cb = closed_cb;
    store->closed_data = data;
    pthread_mutex_lock(&store->mutex);
    store->stopping = 1;
    store->held = 0;
    pthread_cond_signal(&store->wake);
    pthread_mutex_unlock(&store->mutex);
}

void store_sqlite_stats(store_t *store, store_sqlite_stats_t *out)
{
    pthread_mutex_lock(&store->mutex);
    *out = store->stats;
    pthread_mutex_unlock(&store->mutex);
}

void store_sqlite_hold(store_t *store, int hold)
{
    pthread_mutex_lock(&store->mutex);
    store->held = hold && !store->stopping;
    pthread_cond_signal(&store->wake);
    pthread_mutex_unlock(&store->mutex);
}

void store_sqlite_use_migrations(const store_sqlite_migration_t *list, size_t count)
{
    migrations = list != NULL ? list : builtin_migrations;
    migration_count =
        list != NULL ? count : sizeof(builtin_migrations) / sizeof(builtin_migrations[0]);
}

const store_sqlite_migration_t *store_sqlite_builtin_migrations(size_t *count)
{
    *count = sizeof(builtin_migrations) / sizeof(builtin_migrations[0]);
    return builtin_migrations;
}

/* ---- Opening ------------------------------------------------------------------------------- */

typedef struct open_context_s {
    store_t *store;
    char *error;
    size_t error_size;
} open_context_t;

/* Fills the error with the path and why the file is refused; STORE_EIO. */
static int open_refused(open_context_t *context, const char *why)
{
    snprintf(context->error, context->error_size, "%s: %s", context->store->path, why);
    return STORE_EIO;
}

/* Fills the error with the path, what failed and SQLite's message; STORE_EIO. */
static int open_failed(open_context_t *context, const char *what)
{
    const char *detail = context->store->db != NULL ? sqlite3_errmsg(context->store->db) : "";
    snprintf(context->error, context->error_size, "%s: %s: %s", context->store->path, what, detail);
    return STORE_EIO;
}

static int open_exec(open_context_t *context, const char *sql, const char *what)
{
    if (sqlite3_exec(context->store->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return open_failed(context, what);
    return 0;
}

/* The first column of the single row of sql, as an integer, or as text into text. */
static int open_query(open_context_t *context, const char *sql, const char *what,
                      sqlite3_int64 *number, char *text, size_t text_size)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(context->store->db, sql, -1, &stmt, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW && number != NULL)
        *number = sqlite3_column_int64(stmt, 0);
    if (rc == SQLITE_ROW && text != NULL)
        snprintf(text, text_size, "%s", (const char *)sqlite3_column_text(stmt, 0));
    int error = rc == SQLITE_ROW ? 0 : open_failed(context, what);
    sqlite3_finalize(stmt);
    return error;
}

/* WAL, synchronous=FULL (see the top of the file), foreign keys. Also where a file that is
 * not a database shows: the first read of it. */
static int open_configure(open_context_t *context)
{
    char mode[16] = "";
    int error = open_query(context, "PRAGMA journal_mode = WAL", "cannot read the database", NULL,
                           mode, sizeof(mode));
    if (error != 0)
        return error;
    if (strcmp(mode, "wal") != 0)
        return open_refused(context, "WAL journal mode unavailable");
    if ((error = open_exec(context, "PRAGMA synchronous = FULL", "PRAGMA synchronous")) != 0)
        return error;
    return open_exec(context, "PRAGMA foreign_keys = ON", "PRAGMA foreign_keys");
}

/* A new file gets sioc's application id; a file with another program's id, or tables
 * without ours, is refused rather than written into. In the migration transaction. */
static int open_check_application(open_context_t *context)
{
    sqlite3_int64 id = 0, objects = 0;
    int error =
        open_query(context, "PRAGMA application_id", "cannot read the database", &id, NULL, 0);
    if (error == 0 && id == 0)
        error = open_query(context, "SELECT count(*) FROM sqlite_schema", "cannot read the schema",
                           &objects, NULL, 0);
    if (error != 0 || id == APPLICATION_ID)
        return error;
    if (id != 0 || objects != 0)
        return open_refused(context, "not a sioc database (another program's file?)");
    return open_exec(context, "PRAGMA application_id = " TO_STRING(APPLICATION_ID),
                     "PRAGMA application_id");
}

static int open_apply_migration(open_context_t *context, const store_sqlite_migration_t *step)
{
    char what[64];
    snprintf(what, sizeof(what), "migration to schema version %d failed", step->version);
    int error = open_exec(context, step->sql, what);
    if (error != 0)
        return error;
    char now[TIME_SIZE], sql[128];
    time_now(now);
    snprintf(sql, sizeof(sql), "INSERT INTO schema_version (version, applied_at) VALUES (%d, '%s')",
             step->version, now);
    return open_exec(context, sql, what);
}

/* Brings the schema to the latest version, in one transaction: a failing migration leaves
 * the file as it was. */
static int open_migrate(open_context_t *context)
{
    int error = open_exec(context, "BEGIN IMMEDIATE", "cannot start the migration");
    if (error != 0)
        return error;
    sqlite3_int64 current = 0;
    int latest = migrations[migration_count - 1].version;
    error = open_check_application(context);
    if (error == 0)
        error = open_exec(context,
                          "CREATE TABLE IF NOT EXISTS schema_version ("
                          " version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
                          "cannot create schema_version");
    if (error == 0)
        error = open_query(context, "SELECT coalesce(max(version), 0) FROM schema_version",
                           "cannot read schema_version", &current, NULL, 0);
    if (error == 0 && current > latest) {
        char what[128];
        snprintf(what, sizeof(what),
                 "schema version %lld is newer than this sioc knows (%d): upgrade sioc",
                 (long long)current, latest);
        error = open_refused(context, what);
    }
    for (size_t index = 0; error == 0 && index < migration_count; index++) {
        if (migrations[index].version > current)
            error = open_apply_migration(context, &migrations[index]);
    }
    if (error == 0)
        error = open_exec(context, "COMMIT", "cannot commit the migration");
    if (error != 0)
        sqlite3_exec(context->store->db, "ROLLBACK", NULL, NULL, NULL);
    return error;
}

static int open_prepare(open_context_t *context)
{
    for (int id = 0; id < STATEMENT_COUNT; id++) {
        if (sqlite3_prepare_v3(context->store->db, statement_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                               &context->store->statements[id], NULL) != SQLITE_OK)
            return open_failed(context, statement_sql[id]);
    }
    return 0;
}

static int open_database(open_context_t *context)
{
    store_t *store = context->store;
    /* NOMUTEX: one thread at a time uses the connection (this one, then the writer). */
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(store->path, &store->db, flags, NULL) != SQLITE_OK)
        return open_failed(context, "cannot open the database");
    sqlite3_extended_result_codes(store->db, 1);
    sqlite3_busy_timeout(store->db, BUSY_TIMEOUT_MS);
    /* SQLite falls back to read-only when it cannot write the file; the store must write. */
    if (sqlite3_db_readonly(store->db, "main") == 1)
        return open_refused(context, "the database file is read-only (the store must write it)");
    int error = open_configure(context);
    if (error == 0)
        error = open_migrate(context);
    if (error == 0)
        error = open_prepare(context);
    return error;
}

/* The writer thread, with every signal blocked so that they reach the loop thread. */
static int start_writer(store_t *store)
{
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    int rc = pthread_create(&store->writer, NULL, writer_main, store);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    return rc;
}

static void on_failed_start_closed(uv_handle_t *handle)
{
    store_t *store = handle->data;
    store_free(store);
}

/* Starts the writer and the completion handle; on failure the store is released (after the
 * handle's close callback when it had been initialized). */
static int start_threads(store_t *store, uv_loop_t *loop, char *error, size_t error_size)
{
    pthread_mutex_init(&store->mutex, NULL);
    pthread_cond_init(&store->wake, NULL);
    int rc = uv_async_init(loop, &store->completions_async, on_completions);
    if (rc != 0) {
        snprintf(error, error_size, "store: %s", uv_strerror(rc));
        database_close(store);
        store_free(store);
        return STORE_EIO;
    }
    store->completions_async.data = store;
    rc = start_writer(store);
    if (rc != 0) {
        snprintf(error, error_size, "store: cannot start the writer thread: %s", strerror(rc));
        database_close(store);
        uv_close((uv_handle_t *)&store->completions_async, on_failed_start_closed);
        return STORE_EIO;
    }
    return 0;
}

int store_open(uv_loop_t *loop, const store_options_t *options, store_t **out, char *error,
               size_t error_size)
{
    *out = NULL;
    if (options == NULL || options->path == NULL || options->path[0] == '\0') {
        snprintf(error, error_size, "store: a database path is required");
        return STORE_EINVALID;
    }
    if (options->driver != NULL && strcmp(options->driver, "sqlite") != 0) {
        snprintf(error, error_size, "store: unknown driver \"%s\" (expected sqlite)",
                 options->driver);
        return STORE_EINVALID;
    }
    store_t *store = calloc(1, sizeof(*store));
    if (store == NULL || (store->path = strdup(options->path)) == NULL) {
        free(store);
        snprintf(error, error_size, "store: out of memory");
        return STORE_EIO;
    }
    open_context_t context = {store, error, error_size};
    int rc = open_database(&context);
    if (rc != 0) {
        database_close(store);
        free(store->path);
        free(store);
        return rc;
    }
    rc = start_threads(store, loop, error, error_size);
    if (rc != 0)
        return rc;
    *out = store;
    return 0;
}
