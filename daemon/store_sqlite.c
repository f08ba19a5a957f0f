/* The SQLite driver of the store (store_driver.h): the embedded default.
 *
 * store_open runs on the loop thread, at startup: it opens the file, migrates the schema and
 * prepares every statement synchronously, so a bad file is refused before the daemon listens.
 * After that the store's worker thread owns the connection.
 *
 * Durability. WAL with synchronous=FULL: SQLite fsyncs the WAL at every COMMIT, so a request
 * acknowledged by done survives a power cut. synchronous=NORMAL would only fsync at
 * checkpoints: a committed batch could be lost on power failure after the daemon announced it.
 *
 * Order. Each table's INTEGER PRIMARY KEY (seq) orders its rows, never ids or timestamps. */
#include "store_sqlite.h"

#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "log.h"
#include "store_driver.h"

#define STRINGIFY(x) #x
#define TO_STRING(x) STRINGIFY(x)

#define BUSY_TIMEOUT_MS 5000
#define APPLICATION_ID 0x73696f63 /* "sioc" in the file header, to refuse other programs' files */

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

/* Version 2. Ids keep the JSON type they were written with: id_numeric has bit 0 for the
 * row's first id (users.id, messages.room_id, direct_messages.sender_id,
 * notifications.user_id) and bit 1 for its second (sender_id, recipient_id) when it was a
 * JSON number. Rows written before stay 0: their ids read back as strings. */
static const char SCHEMA_V2[] =
    "ALTER TABLE users ADD COLUMN id_numeric INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN id_numeric INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE direct_messages ADD COLUMN id_numeric INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE notifications ADD COLUMN id_numeric INTEGER NOT NULL DEFAULT 0;";

/* Version 3: the same bits for rooms (bit 0 id, bit 1 owner_id), room members and access
 * requests (bit 0 room_id, bit 1 user_id). */
static const char SCHEMA_V3[] =
    "ALTER TABLE rooms ADD COLUMN id_numeric INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE room_members ADD COLUMN id_numeric INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE access_requests ADD COLUMN id_numeric INTEGER NOT NULL DEFAULT 0;";

/* A new schema version is one more entry here (and never an edit of an old one). */
static const store_sqlite_migration_t builtin_migrations[] = {
    {1, SCHEMA_V1},
    {2, SCHEMA_V2},
    {3, SCHEMA_V3},
};

static const store_sqlite_migration_t *migrations = builtin_migrations;
static size_t migration_count = sizeof(builtin_migrations) / sizeof(builtin_migrations[0]);

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

/* ---- Statements ------------------------------------------------------------------------ */

#define USER_COLUMNS "id, first_name, last_name, role, avatar, id_numeric"
#define ROOM_COLUMNS "id, name, is_private, owner_id, created_at, id_numeric"
#define MESSAGE_COLUMNS "id, room_id, sender_id, text, created_at, id_numeric"
#define DM_COLUMNS "id, sender_id, recipient_id, text, created_at, id_numeric"
#define NOTIFICATION_COLUMNS "id, user_id, type, payload, read, created_at, id_numeric"
#define ACCESS_COLUMNS "id, room_id, user_id, status, created_at, id_numeric"
/* A member's or access request's room id has the room's own type (a path's "12" names room 12). */
#define ROOM_ID_BIT(id) "coalesce((SELECT id_numeric & 1 FROM rooms WHERE id = " id "), 0)"
#define DM_PAIR                                                                                    \
    "min(sender_id, recipient_id) = min(?1, ?2) AND max(sender_id, recipient_id) = max(?1, ?2)"

static const char *const statement_sql[SIOC__SQL_STATEMENT_COUNT] = {
    [SIOC__SQL_BEGIN] = "BEGIN IMMEDIATE",
    [SIOC__SQL_COMMIT] = "COMMIT",
    [SIOC__SQL_ROLLBACK] = "ROLLBACK",
    [SIOC__SQL_SAVEPOINT] = "SAVEPOINT request",
    [SIOC__SQL_RELEASE] = "RELEASE request",
    [SIOC__SQL_ROLLBACK_TO] = "ROLLBACK TO request",
    [SIOC__SQL_USER_EXISTS] = "SELECT 1 FROM users WHERE id = ?1",
    /* ?3, ?5, ?7, ?9 say whether the field was given: an absent field keeps its value. */
    [SIOC__SQL_USER_UPSERT] =
        "INSERT INTO users (id, first_name, last_name, role, avatar, created_at, updated_at,"
        " id_numeric) VALUES (?1, ?2, ?4, ?6, ?8, ?10, ?10, ?11) ON CONFLICT (id) DO UPDATE SET"
        " first_name = CASE WHEN ?3 THEN excluded.first_name ELSE first_name END,"
        " last_name = CASE WHEN ?5 THEN excluded.last_name ELSE last_name END,"
        " role = CASE WHEN ?7 THEN excluded.role ELSE role END,"
        " avatar = CASE WHEN ?9 THEN excluded.avatar ELSE avatar END,"
        " id_numeric = excluded.id_numeric, updated_at = excluded.updated_at "
        "RETURNING " USER_COLUMNS,
    [SIOC__SQL_USER_GET] = "SELECT " USER_COLUMNS " FROM users WHERE id = ?1",
    [SIOC__SQL_PRESENCE_SET] =
        "INSERT INTO presence (user_id, status, last_activity) VALUES (?1, ?2, ?3)"
        " ON CONFLICT (user_id) DO UPDATE SET status = excluded.status,"
        " last_activity = excluded.last_activity"
        " RETURNING user_id, status, last_activity",
    [SIOC__SQL_PRESENCE_GET] =
        "SELECT user_id, status, last_activity FROM presence WHERE user_id = ?1",
    [SIOC__SQL_ROOM_EXISTS] = "SELECT 1 FROM rooms WHERE id = ?1",
    [SIOC__SQL_ROOM_INSERT] = "INSERT INTO rooms (" ROOM_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
                              " RETURNING " ROOM_COLUMNS,
    [SIOC__SQL_ROOM_GET] = "SELECT " ROOM_COLUMNS " FROM rooms WHERE id = ?1",
    [SIOC__SQL_MEMBER_INSERT] =
        "INSERT INTO room_members (room_id, user_id, joined_at,"
        " id_numeric) VALUES (?1, ?2, ?3, (?4 & 2) | " ROOM_ID_BIT("?1") ")"
                                                                         " ON CONFLICT DO NOTHING",
    [SIOC__SQL_MEMBER_GET] = "SELECT room_id, user_id, joined_at, id_numeric FROM room_members"
                             " WHERE room_id = ?1 AND user_id = ?2",
    [SIOC__SQL_MEMBER_DELETE] = "DELETE FROM room_members WHERE room_id = ?1 AND user_id = ?2",
    [SIOC__SQL_MEMBER_LIST] = "SELECT user_id, id_numeric FROM room_members"
                              " WHERE room_id = ?1 ORDER BY rowid",
    [SIOC__SQL_MESSAGE_INSERT] =
        "INSERT INTO messages (" MESSAGE_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
        " RETURNING " MESSAGE_COLUMNS,
    [SIOC__SQL_MESSAGE_SEQ] = "SELECT seq FROM messages WHERE id = ?1 AND room_id = ?2",
    /* The newest ?3 before seq ?2, returned oldest first. */
    [SIOC__SQL_MESSAGE_HISTORY] = "SELECT " MESSAGE_COLUMNS " FROM (SELECT seq, " MESSAGE_COLUMNS
                                  " FROM messages WHERE room_id = ?1 AND seq < ?2"
                                  " ORDER BY seq DESC LIMIT ?3) ORDER BY seq",
    [SIOC__SQL_DM_INSERT] =
        "INSERT INTO direct_messages (" DM_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
        " RETURNING " DM_COLUMNS,
    [SIOC__SQL_MESSAGE_INSERT_CHECKED] =
        "INSERT INTO messages (" MESSAGE_COLUMNS ") SELECT ?1, ?2, ?3, ?4, ?5, ?6"
        " WHERE EXISTS (SELECT 1 FROM rooms WHERE id = ?2)"
        " AND EXISTS (SELECT 1 FROM users WHERE id = ?3) RETURNING " MESSAGE_COLUMNS,
    [SIOC__SQL_DM_INSERT_CHECKED] =
        "INSERT INTO direct_messages (" DM_COLUMNS ") SELECT ?1, ?2, ?3, ?4, ?5, ?6"
        " WHERE EXISTS (SELECT 1 FROM users WHERE id = ?2)"
        " AND EXISTS (SELECT 1 FROM users WHERE id = ?3) RETURNING " DM_COLUMNS,
    [SIOC__SQL_DM_SEQ] = "SELECT seq FROM direct_messages WHERE " DM_PAIR " AND id = ?3",
    [SIOC__SQL_DM_HISTORY] = "SELECT " DM_COLUMNS " FROM (SELECT seq, " DM_COLUMNS
                             " FROM direct_messages WHERE " DM_PAIR " AND seq < ?3"
                             " ORDER BY seq DESC LIMIT ?4) ORDER BY seq",
    [SIOC__SQL_NOTIFICATION_INSERT] = "INSERT INTO notifications (id, user_id, type, payload, read,"
                                      " created_at, id_numeric) VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6)"
                                      " RETURNING " NOTIFICATION_COLUMNS,
    [SIOC__SQL_NOTIFICATION_LIST] = "SELECT " NOTIFICATION_COLUMNS " FROM notifications"
                                    " WHERE user_id = ?1 ORDER BY seq DESC LIMIT ?2",
    [SIOC__SQL_NOTIFICATION_LIST_UNREAD] =
        "SELECT " NOTIFICATION_COLUMNS " FROM notifications"
        " WHERE user_id = ?1 AND read = 0 ORDER BY seq DESC LIMIT ?2",
    [SIOC__SQL_NOTIFICATION_MARK_ONE] = "UPDATE notifications SET read = 1"
                                        " WHERE id = ?1 AND user_id = ?2 AND read = 0",
    [SIOC__SQL_NOTIFICATION_MARK_ALL] = "UPDATE notifications SET read = 1"
                                        " WHERE user_id = ?1 AND read = 0",
    [SIOC__SQL_ACCESS_INSERT] = "INSERT INTO access_requests (" ACCESS_COLUMNS ")"
                                " VALUES (?1, ?2, ?3, 'pending', ?4, (?5 & 2) | " ROOM_ID_BIT(
                                    "?2") ")"
                                          " RETURNING " ACCESS_COLUMNS,
    [SIOC__SQL_ACCESS_RESOLVE] = "UPDATE access_requests SET status = ?2, resolved_at = ?3"
                                 " WHERE id = ?1 AND status = 'pending' RETURNING " ACCESS_COLUMNS,
    [SIOC__SQL_ACCESS_GET] = "SELECT " ACCESS_COLUMNS " FROM access_requests WHERE id = ?1",
};

/* ---- Connection ------------------------------------------------------------------------ */

typedef struct connection_s {
    char *path;
    sqlite3 *db;
    sqlite3_stmt *statements[SIOC__SQL_STATEMENT_COUNT];
    sqlite3_stmt *custom[STORE_OPERATION_COUNT]; /* the application's statements */
} connection_t;

static sqlite3_stmt *statement_of(connection_t *connection, int statement)
{
    return statement < SIOC__SQL_STATEMENT_COUNT
               ? connection->statements[statement]
               : connection->custom[statement - SIOC__SQL_STATEMENT_COUNT];
}

/* Finalizes the statements and closes the connection (a WAL checkpoint). NULL-safe. */
static void sqlite_close(void *opaque)
{
    connection_t *connection = opaque;
    if (connection == NULL)
        return;
    for (int id = 0; id < SIOC__SQL_STATEMENT_COUNT; id++)
        sqlite3_finalize(connection->statements[id]);
    for (int id = 0; id < STORE_OPERATION_COUNT; id++)
        sqlite3_finalize(connection->custom[id]);
    if (connection->db != NULL && sqlite3_close(connection->db) != SQLITE_OK)
        log_error("store: closing %s: %s", connection->path, sqlite3_errmsg(connection->db));
    free(connection->path);
    free(connection);
}

/* Bindings can only fail on a bad index or a value over SQLITE_MAX_LENGTH: the indexes are
 * fixed by the store and strings are limited to 64 KiB, so the return codes carry no
 * information. Text is bound without a copy: it outlives the statement's run, and bindings
 * are cleared at the end of it. */
static void bind_params(sqlite3_stmt *stmt, const sioc__store_param_t *params, size_t count)
{
    for (size_t index = 0; index < count; index++) {
        int position = (int)index + 1;
        if (params[index].is_integer)
            sqlite3_bind_int64(stmt, position, params[index].integer);
        else if (params[index].bytes == NULL)
            sqlite3_bind_null(stmt, position);
        else
            sqlite3_bind_text(stmt, position, params[index].bytes, (int)params[index].length,
                              SQLITE_STATIC);
    }
}

static int is_unique_violation(int rc)
{
    return rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE;
}

/* Steps through the rows; SQLITE_DONE, the row callback's return (as a negative number), or
 * SQLite's error. */
static int step_rows(sqlite3_stmt *stmt, sioc__store_row_cb row, void *row_data, int *row_error)
{
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (row == NULL)
            continue;
        sioc__store_cell_t cells[8];
        int count = sqlite3_column_count(stmt);
        if (count > 8)
            count = 8;
        for (int index = 0; index < count; index++) {
            int type = sqlite3_column_type(stmt, index);
            cells[index].kind =
                type == SQLITE_INTEGER ? SIOC__STORE_CELL_INTEGER : SIOC__STORE_CELL_TEXT;
            cells[index].bytes = (const char *)sqlite3_column_text(stmt, index);
            cells[index].length = (size_t)sqlite3_column_bytes(stmt, index);
            cells[index].name = sqlite3_column_name(stmt, index);
        }
        *row_error = row(row_data, cells, (size_t)count);
        if (*row_error != 0)
            return SQLITE_DONE;
    }
    return rc;
}

static int sqlite_execute(void *opaque, sioc__store_statement_t statement,
                          const sioc__store_param_t *params, size_t count, sioc__store_row_cb row,
                          void *row_data, int64_t *changes, const char **message)
{
    connection_t *connection = opaque;
    sqlite3_stmt *stmt = statement_of(connection, statement);
    if (stmt == NULL) {
        log_error("store: statement %d has no SQL in SQLite", (int)statement);
        *message = "the database failed";
        return STORE_EIO;
    }
    bind_params(stmt, params, count);
    int row_error = 0;
    int rc = step_rows(stmt, row, row_data, &row_error);
    if (changes != NULL)
        *changes = sqlite3_changes64(connection->db);
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    if (row_error != 0)
        return row_error;
    if (rc == SQLITE_DONE)
        return 0;
    if (is_unique_violation(rc))
        return SIOC__STORE_DB_CONFLICT;
    log_error("store: %s: %s (%s)", sqlite3_sql(stmt), sqlite3_errmsg(connection->db),
              sqlite3_errstr(rc));
    *message = sqlite3_errstr(rc);
    return STORE_EIO;
}

static int sqlite_in_transaction(void *opaque)
{
    connection_t *connection = opaque;
    return !sqlite3_get_autocommit(connection->db);
}

static int sqlite_ready(void *opaque)
{
    (void)opaque;
    return 0; /* a file does not go away */
}

/* ---- Opening ------------------------------------------------------------------------------- */

typedef struct open_context_s {
    connection_t *store;
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
    char now[SIOC__STORE_TIME_SIZE], sql[128];
    sioc__store_time_now(now);
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
    for (int id = 0; id < SIOC__SQL_STATEMENT_COUNT; id++) {
        if (statement_sql[id] == NULL)
            continue; /* the pipelines' statements (store_driver.h): SQLite has none */
        if (sqlite3_prepare_v3(context->store->db, statement_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                               &context->store->statements[id], NULL) != SQLITE_OK)
            return open_failed(context, statement_sql[id]);
    }
    return 0;
}

static int open_database(open_context_t *context)
{
    connection_t *store = context->store;
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

static int sqlite_open(const store_options_t *options, void **out, char *error, size_t error_size)
{
    *out = NULL;
    if (options == NULL || options->path == NULL || options->path[0] == '\0') {
        snprintf(error, error_size, "store: a database path is required");
        return STORE_EINVALID;
    }
    connection_t *store = calloc(1, sizeof(*store));
    if (store == NULL || (store->path = strdup(options->path)) == NULL) {
        free(store);
        snprintf(error, error_size, "store: out of memory");
        return STORE_EIO;
    }
    open_context_t context = {store, error, error_size};
    int rc = open_database(&context);
    if (rc != 0) {
        sqlite_close(store);
        return rc;
    }
    *out = store;
    return 0;
}

static int sqlite_prepare(void *opaque, int slot, const char *sql, char *columns,
                          size_t columns_size, char *error, size_t error_size)
{
    connection_t *connection = opaque;
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v3(connection->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL) !=
        SQLITE_OK) {
        snprintf(error, error_size, "%s", sqlite3_errmsg(connection->db));
        return -1;
    }
    if (stmt == NULL) {
        snprintf(error, error_size, "empty statement");
        return -1;
    }
    columns[0] = '\0';
    for (int index = 0; index < sqlite3_column_count(stmt); index++) {
        size_t used = strlen(columns);
        snprintf(columns + used, columns_size - used, "%s%s", index ? "," : "",
                 sqlite3_column_name(stmt, index));
    }
    sqlite3_finalize(connection->custom[slot]);
    connection->custom[slot] = stmt;
    return 0;
}

/* The page cache (up to cache_size, 2,000 KiB by default: about 210 bytes per user of the chat
 * at 10,000 users, each upsert and presence row having been through it) once the store is idle;
 * the next statements read their pages again from the file, which the OS keeps cached. */
static void sqlite_release_memory(void *connection)
{
    sqlite3_db_release_memory(((connection_t *)connection)->db);
}

const sioc__store_driver_t sioc__store_sqlite_driver = {
    "sqlite",
    sqlite_open,
    sqlite_execute,
    sqlite_in_transaction,
    sqlite_ready,
    sqlite_close,
    '?',
    sqlite_prepare,
    NULL,
    NULL,
    NULL,
    NULL,
    sqlite_release_memory,
    NULL,
    NULL,
};
