/* The PostgreSQL driver of the store (store_driver.h), on libpq.
 *
 * One connection per open, used by one worker thread of the store with libpq's blocking
 * calls (a pool, store.poolSize, is the store opening several: store.c), or, for the chat's
 * one-round-trip batches with store.dispatch "loop", by the loop thread with its non-blocking
 * ones (pg_connected, pg_pipeline_send, pg_pipeline_socket, pg_pipeline_read NOWAIT). What makes it
 * fast is the store's batching: one transaction, one COMMIT (one WAL flush) for everything queued
 * meanwhile. Every data statement is prepared once per connection (PQprepare) and run with
 * PQexecPrepared, parameters as text.
 *
 * sioc's tables live in their own schema, "sioc", so they never meet the application's
 * tables in a shared database; migrations are versioned (sioc.schema_version) and run at
 * start in one transaction, under an advisory lock so that two daemons starting together on
 * one database migrate it once.
 *
 * A lost connection (the server restarted): the statement fails with STORE_EUNAVAILABLE and
 * the store fails the batch. Before each later batch, ready() reconnects (PQreset, then the
 * statements are prepared again), at most once per backoff period (100 ms doubling to 5 s),
 * so that while the server is down requests fail at once instead of queueing. ready() also
 * notices a connection the server closed while it was idle, and reconnects before sending
 * anything: only the requests in flight at the moment the server went fail.
 *
 * TLS is libpq's: sslmode, sslrootcert, ... in the URL. Times are stored as the same ISO-8601
 * text as in SQLite, so that both drivers give byte-identical results. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "log.h"
#include "store_driver.h"

#define CONNECT_TIMEOUT_S "5"
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 5000
#define MIGRATION_LOCK "7587305227069440867" /* an advisory lock key: "sioc" ... */
#define INTEGER_SIZE 24
#define PARAMS_MAX 16
#define CELLS_MAX 8

/* ---- Schema ---------------------------------------------------------------------------- */

static const char SCHEMA_V1[] =
    "CREATE TABLE sioc.users ("
    "  id TEXT PRIMARY KEY,"
    "  first_name TEXT, last_name TEXT, role TEXT, avatar TEXT,"
    "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
    "CREATE TABLE sioc.presence ("
    "  user_id TEXT PRIMARY KEY REFERENCES sioc.users (id),"
    "  status TEXT NOT NULL CHECK (status IN ('online', 'offline')),"
    "  last_activity TEXT NOT NULL);"
    "CREATE TABLE sioc.rooms ("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  is_private BOOLEAN NOT NULL,"
    "  owner_id TEXT REFERENCES sioc.users (id),"
    "  created_at TEXT NOT NULL);"
    "CREATE TABLE sioc.room_members ("
    "  seq BIGSERIAL NOT NULL,"
    "  room_id TEXT NOT NULL REFERENCES sioc.rooms (id),"
    "  user_id TEXT NOT NULL REFERENCES sioc.users (id),"
    "  joined_at TEXT NOT NULL,"
    "  PRIMARY KEY (room_id, user_id));"
    "CREATE INDEX room_members_user ON sioc.room_members (user_id);"
    "CREATE TABLE sioc.messages ("
    "  seq BIGSERIAL PRIMARY KEY,"
    "  id TEXT NOT NULL UNIQUE,"
    "  room_id TEXT NOT NULL REFERENCES sioc.rooms (id),"
    "  sender_id TEXT NOT NULL REFERENCES sioc.users (id),"
    "  text TEXT NOT NULL,"
    "  created_at TEXT NOT NULL);"
    "CREATE INDEX messages_room ON sioc.messages (room_id, seq);"
    "CREATE TABLE sioc.direct_messages ("
    "  seq BIGSERIAL PRIMARY KEY,"
    "  id TEXT NOT NULL UNIQUE,"
    "  sender_id TEXT NOT NULL REFERENCES sioc.users (id),"
    "  recipient_id TEXT NOT NULL REFERENCES sioc.users (id),"
    "  text TEXT NOT NULL,"
    "  created_at TEXT NOT NULL);"
    /* One conversation, both directions, in one index range. */
    "CREATE INDEX direct_messages_pair ON sioc.direct_messages"
    "  (LEAST(sender_id, recipient_id), GREATEST(sender_id, recipient_id), seq);"
    "CREATE TABLE sioc.notifications ("
    "  seq BIGSERIAL PRIMARY KEY,"
    "  id TEXT NOT NULL UNIQUE,"
    "  user_id TEXT NOT NULL,"
    "  type TEXT NOT NULL,"
    "  payload TEXT NOT NULL,"
    "  read BOOLEAN NOT NULL DEFAULT false,"
    "  created_at TEXT NOT NULL);"
    "CREATE INDEX notifications_user ON sioc.notifications (user_id, seq);"
    "CREATE INDEX notifications_unread ON sioc.notifications (user_id, seq) WHERE NOT read;"
    "CREATE TABLE sioc.access_requests ("
    "  seq BIGSERIAL PRIMARY KEY,"
    "  id TEXT NOT NULL UNIQUE,"
    "  room_id TEXT NOT NULL REFERENCES sioc.rooms (id),"
    "  user_id TEXT NOT NULL REFERENCES sioc.users (id),"
    "  status TEXT NOT NULL CHECK (status IN ('pending', 'granted', 'denied')),"
    "  created_at TEXT NOT NULL,"
    "  resolved_at TEXT);"
    "CREATE UNIQUE INDEX access_requests_pending ON sioc.access_requests (room_id, user_id)"
    "  WHERE status = 'pending';";

typedef struct migration_s {
    int version;
    const char *sql;
} migration_t;

/* Version 2 (as store_sqlite.c's): id_numeric says which of the row's ids were JSON
 * numbers (bit 0 the first id, bit 1 the second). Rows written before stay 0: strings. */
static const char SCHEMA_V2[] =
    "ALTER TABLE sioc.users ADD COLUMN id_numeric INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE sioc.messages ADD COLUMN id_numeric INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE sioc.direct_messages ADD COLUMN id_numeric INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE sioc.notifications ADD COLUMN id_numeric INTEGER NOT NULL DEFAULT 0;";

/* Version 3: the same bits for rooms (bit 0 id, bit 1 owner_id), room members and access
 * requests (bit 0 room_id, bit 1 user_id). */
static const char SCHEMA_V3[] =
    "ALTER TABLE sioc.rooms ADD COLUMN id_numeric INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE sioc.room_members ADD COLUMN id_numeric INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE sioc.access_requests ADD COLUMN id_numeric INTEGER NOT NULL DEFAULT 0;";

/* A new schema version is one more entry here (and never an edit of an old one). */
static const migration_t migrations[] = {
    {1, SCHEMA_V1},
    {2, SCHEMA_V2},
    {3, SCHEMA_V3},
};

/* ---- Statements ------------------------------------------------------------------------ */

#define USER_COLUMNS "id, first_name, last_name, role, avatar, id_numeric"
#define ROOM_COLUMNS "id, name, is_private, owner_id, created_at, id_numeric"
#define MESSAGE_COLUMNS "id, room_id, sender_id, text, created_at, id_numeric"
#define DM_COLUMNS "id, sender_id, recipient_id, text, created_at, id_numeric"
#define NOTIFICATION_COLUMNS "id, user_id, type, payload, read, created_at, id_numeric"
#define ACCESS_COLUMNS "id, room_id, user_id, status, created_at, id_numeric"
/* A member's or access request's room id has the room's own type (a path's "12" names room 12). */
#define ROOM_ID_BIT(id)                                                                            \
    "coalesce((SELECT id_numeric & 1 FROM sioc.rooms WHERE id = " id "::text), 0)"
#define DM_PAIR                                                                                    \
    "LEAST(sender_id, recipient_id) = LEAST($1::text, $2::text)"                                   \
    " AND GREATEST(sender_id, recipient_id) = GREATEST($1::text, $2::text)"
#define PROFILE_FIELD(column, flag)                                                                \
    " " column " = CASE WHEN " flag "::int <> 0 THEN excluded." column " ELSE u." column " END,"

/* The parameters are those of store_sqlite.c's statements, in the same order. */
static const char *const statement_sql[SIOC__SQL_STATEMENT_COUNT] = {
    [SIOC__SQL_BEGIN] = "BEGIN",
    [SIOC__SQL_COMMIT] = "COMMIT",
    [SIOC__SQL_ROLLBACK] = "ROLLBACK",
    [SIOC__SQL_SAVEPOINT] = "SAVEPOINT request",
    [SIOC__SQL_RELEASE] = "RELEASE request",
    [SIOC__SQL_ROLLBACK_TO] = "ROLLBACK TO request",
    [SIOC__SQL_USER_EXISTS] = "SELECT 1 FROM sioc.users WHERE id = $1",
    [SIOC__SQL_USER_UPSERT] =
        "INSERT INTO sioc.users AS u (id, first_name, last_name, role, avatar, created_at,"
        " updated_at, id_numeric) VALUES ($1, $2, $4, $6, $8, $10, $10, $11::int)"
        " ON CONFLICT (id) DO UPDATE SET" //
    PROFILE_FIELD("first_name", "$3") PROFILE_FIELD("last_name", "$5") PROFILE_FIELD("role", "$7")
        PROFILE_FIELD("avatar", "$9") " id_numeric = excluded.id_numeric,"
                                      " updated_at = excluded.updated_at RETURNING " USER_COLUMNS,
    [SIOC__SQL_USER_GET] = "SELECT " USER_COLUMNS " FROM sioc.users WHERE id = $1",
    [SIOC__SQL_PRESENCE_SET] =
        "INSERT INTO sioc.presence (user_id, status, last_activity) VALUES ($1, $2, $3)"
        " ON CONFLICT (user_id) DO UPDATE SET status = excluded.status,"
        " last_activity = excluded.last_activity RETURNING user_id, status, last_activity",
    [SIOC__SQL_PRESENCE_GET] =
        "SELECT user_id, status, last_activity FROM sioc.presence WHERE user_id = $1",
    [SIOC__SQL_ROOM_EXISTS] = "SELECT 1 FROM sioc.rooms WHERE id = $1",
    [SIOC__SQL_ROOM_INSERT] =
        "INSERT INTO sioc.rooms (" ROOM_COLUMNS ")"
        " VALUES ($1, $2, $3::int <> 0, $4, $5, $6::int) RETURNING " ROOM_COLUMNS,
    [SIOC__SQL_ROOM_GET] = "SELECT " ROOM_COLUMNS " FROM sioc.rooms WHERE id = $1",
    [SIOC__SQL_MEMBER_INSERT] = "INSERT INTO sioc.room_members (room_id, user_id, joined_at,"
                                " id_numeric) VALUES ($1, $2, $3, ($4::int & 2) | " ROOM_ID_BIT(
                                    "$1") ")"
                                          " ON CONFLICT DO NOTHING",
    [SIOC__SQL_MEMBER_GET] = "SELECT room_id, user_id, joined_at, id_numeric FROM sioc.room_members"
                             " WHERE room_id = $1 AND user_id = $2",
    [SIOC__SQL_MEMBER_DELETE] = "DELETE FROM sioc.room_members WHERE room_id = $1 AND user_id = $2",
    [SIOC__SQL_MEMBER_LIST] = "SELECT user_id, id_numeric FROM sioc.room_members WHERE room_id = $1"
                              " ORDER BY seq",
    [SIOC__SQL_MESSAGE_INSERT] = "INSERT INTO sioc.messages (" MESSAGE_COLUMNS ")"
                                 " VALUES ($1, $2, $3, $4, $5, $6::int) RETURNING " MESSAGE_COLUMNS,
    [SIOC__SQL_MESSAGE_SEQ] = "SELECT seq FROM sioc.messages WHERE id = $1 AND room_id = $2",
    [SIOC__SQL_MESSAGE_HISTORY] = "SELECT " MESSAGE_COLUMNS " FROM (SELECT seq, " MESSAGE_COLUMNS
                                  " FROM sioc.messages WHERE room_id = $1 AND seq < $2"
                                  " ORDER BY seq DESC LIMIT $3) AS page ORDER BY seq",
    [SIOC__SQL_DM_INSERT] = "INSERT INTO sioc.direct_messages (" DM_COLUMNS ")"
                            " VALUES ($1, $2, $3, $4, $5, $6::int) RETURNING " DM_COLUMNS,
    [SIOC__SQL_MESSAGE_INSERT_CHECKED] =
        "INSERT INTO sioc.messages (" MESSAGE_COLUMNS
        ") SELECT $1, $2::text, $3::text, $4, $5, $6::int"
        " WHERE EXISTS (SELECT 1 FROM sioc.rooms WHERE id = $2)"
        " AND EXISTS (SELECT 1 FROM sioc.users WHERE id = $3) RETURNING " MESSAGE_COLUMNS,
    [SIOC__SQL_DM_INSERT_CHECKED] =
        "INSERT INTO sioc.direct_messages (" DM_COLUMNS
        ") SELECT $1, $2::text, $3::text, $4, $5, $6::int"
        " WHERE EXISTS (SELECT 1 FROM sioc.users WHERE id = $2)"
        " AND EXISTS (SELECT 1 FROM sioc.users WHERE id = $3) RETURNING " DM_COLUMNS,
    /* found is read in the INSERT's snapshot: what it says missing is why nothing was added. */
    [SIOC__SQL_MESSAGE_INSERT_DIAGNOSED] =
        "WITH found AS (SELECT EXISTS (SELECT 1 FROM sioc.rooms WHERE id = $2) AS first,"
        " EXISTS (SELECT 1 FROM sioc.users WHERE id = $3) AS second),"
        " added AS (INSERT INTO sioc.messages (" MESSAGE_COLUMNS
        ") SELECT $1, $2::text, $3::text, $4, $5, $6::int FROM found WHERE first AND second"
        " RETURNING " MESSAGE_COLUMNS ")"
        " SELECT added.*, found.first, found.second FROM found LEFT JOIN added ON true",
    [SIOC__SQL_DM_INSERT_DIAGNOSED] =
        "WITH found AS (SELECT EXISTS (SELECT 1 FROM sioc.users WHERE id = $2) AS first,"
        " EXISTS (SELECT 1 FROM sioc.users WHERE id = $3) AS second),"
        " added AS (INSERT INTO sioc.direct_messages (" DM_COLUMNS
        ") SELECT $1, $2::text, $3::text, $4, $5, $6::int FROM found WHERE first AND second"
        " RETURNING " DM_COLUMNS ")"
        " SELECT added.*, found.first, found.second FROM found LEFT JOIN added ON true",
    [SIOC__SQL_DM_SEQ] = "SELECT seq FROM sioc.direct_messages WHERE " DM_PAIR " AND id = $3",
    [SIOC__SQL_DM_HISTORY] = "SELECT " DM_COLUMNS " FROM (SELECT seq, " DM_COLUMNS
                             " FROM sioc.direct_messages WHERE " DM_PAIR " AND seq < $3"
                             " ORDER BY seq DESC LIMIT $4) AS page ORDER BY seq",
    [SIOC__SQL_NOTIFICATION_INSERT] =
        "INSERT INTO sioc.notifications (id, user_id, type, payload, read, created_at,"
        " id_numeric) VALUES ($1, $2, $3, $4, false, $5, $6::int) RETURNING " NOTIFICATION_COLUMNS,
    [SIOC__SQL_NOTIFICATION_LIST] = "SELECT " NOTIFICATION_COLUMNS " FROM sioc.notifications"
                                    " WHERE user_id = $1 ORDER BY seq DESC LIMIT $2",
    [SIOC__SQL_NOTIFICATION_LIST_UNREAD] =
        "SELECT " NOTIFICATION_COLUMNS " FROM sioc.notifications"
        " WHERE user_id = $1 AND NOT read ORDER BY seq DESC LIMIT $2",
    [SIOC__SQL_NOTIFICATION_MARK_ONE] = "UPDATE sioc.notifications SET read = true"
                                        " WHERE id = $1 AND user_id = $2 AND NOT read",
    [SIOC__SQL_NOTIFICATION_MARK_ALL] = "UPDATE sioc.notifications SET read = true"
                                        " WHERE user_id = $1 AND NOT read",
    [SIOC__SQL_ACCESS_INSERT] = "INSERT INTO sioc.access_requests (" ACCESS_COLUMNS ")"
                                " VALUES ($1, $2, $3, 'pending', $4, ($5::int & 2) | " ROOM_ID_BIT(
                                    "$2") ")"
                                          " RETURNING " ACCESS_COLUMNS,
    [SIOC__SQL_ACCESS_RESOLVE] = "UPDATE sioc.access_requests SET status = $2, resolved_at = $3"
                                 " WHERE id = $1 AND status = 'pending' RETURNING " ACCESS_COLUMNS,
    [SIOC__SQL_ACCESS_GET] = "SELECT " ACCESS_COLUMNS " FROM sioc.access_requests WHERE id = $1",
};

/* Transaction control goes through the simple protocol; everything else is prepared. */
static int is_control(sioc__store_statement_t statement)
{
    return statement <= SIOC__SQL_ROLLBACK_TO;
}

/* ---- Connection ------------------------------------------------------------------------ */

/* A batch sent as one pipeline (up to its sync point) and being read: the next call to be
 * answered, the first failure. */
typedef struct pipeline_s {
    struct connection_s *connection;
    const sioc__store_call_t *calls;
    size_t count;
    size_t next;
    int rc;
    size_t failed;
    const char *message;
    int synced; /* read up to its sync point, or failed for good: rc is its outcome */
} pipeline_t;

/* Pipelines sent and not yet read, oldest first: more than the store ever has in flight. */
#define PIPELINES_MAX 4

typedef struct connection_s {
    char *conninfo;
    char shown[256]; /* where, without the password, for messages */
    PGconn *conn;
    char *custom[STORE_OPERATION_COUNT]; /* the application's statements, compiled */
    uint64_t next_attempt_ms;
    unsigned backoff_ms;
    /* Connected but not usable (statements half prepared, a pipeline half read): the next
     * ready() starts from a new connection. */
    int broken;
    pipeline_t pipelines[PIPELINES_MAX]; /* a ring: the oldest at first_pipeline */
    size_t first_pipeline;
    size_t pipelines_sent;
} connection_t;

static uint64_t now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

/* libpq's messages end with a newline; one line for logs and errors. */
static const char *one_line(char *text)
{
    size_t length = strlen(text);
    while (length > 0 && (text[length - 1] == '\n' || text[length - 1] == ' '))
        text[--length] = '\0';
    for (char *cursor = text; *cursor != '\0'; cursor++) {
        if (*cursor == '\n')
            *cursor = ' ';
    }
    return text;
}

/* "user@host:port/dbname" from the connection string, never the password. */
static void describe(connection_t *connection)
{
    char *problem = NULL;
    PQconninfoOption *options = PQconninfoParse(connection->conninfo, &problem);
    PQfreemem(problem);
    const char *user = "", *host = "", *port = "", *dbname = "";
    for (PQconninfoOption *option = options; option != NULL && option->keyword != NULL; option++) {
        const char *value = option->val != NULL ? option->val : "";
        if (strcmp(option->keyword, "user") == 0)
            user = value;
        else if (strcmp(option->keyword, "host") == 0)
            host = value;
        else if (strcmp(option->keyword, "port") == 0)
            port = value;
        else if (strcmp(option->keyword, "dbname") == 0)
            dbname = value;
    }
    snprintf(connection->shown, sizeof(connection->shown), "postgres %s%s%s%s%s/%s", user,
             user[0] ? "@" : "", host[0] ? host : "localhost", port[0] ? ":" : "", port, dbname);
    PQconninfoFree(options);
}

static void ignore_notice(void *data, const char *message)
{
    (void)data, (void)message; /* "schema already exists, skipping" and the like */
}

static PGconn *connect_now(const char *conninfo)
{
    /* Our defaults first: the URL's own connect_timeout or application_name override them. */
    const char *keywords[] = {"connect_timeout", "application_name", "options", "dbname", NULL};
    /* Timestamps of the application's tables come back as UTC ISO text, which the store
     * turns into "2026-11-21T21:00:00.000Z" (the seeds' createdAt). */
    const char *values[] = {CONNECT_TIMEOUT_S, "sioc", "-c DateStyle=ISO -c TimeZone=UTC", conninfo,
                            NULL};
    PGconn *conn = PQconnectdbParams(keywords, values, 1);
    PQsetNoticeProcessor(conn, ignore_notice, NULL);
    return conn;
}

/* Prepares every data statement on the connection. 0, or the failing statement's index + 1
 * with the server's message in error. */
static int prepare_one(PGconn *conn, const char *name, const char *sql, char *error,
                       size_t error_size)
{
    PGresult *result = PQprepare(conn, name, sql, 0, NULL);
    int ok = PQresultStatus(result) == PGRES_COMMAND_OK;
    if (!ok)
        snprintf(error, error_size, "%s", PQresultErrorMessage(result));
    PQclear(result);
    return ok ? 0 : -1;
}

/* The application's statements, again after a reconnection. 0, or -1 with error. */
static int prepare_custom(connection_t *connection, char *error, size_t error_size)
{
    for (int slot = 0; slot < STORE_OPERATION_COUNT; slot++) {
        char name[16];
        snprintf(name, sizeof(name), "c%d", slot);
        if (connection->custom[slot] != NULL &&
            prepare_one(connection->conn, name, connection->custom[slot], error, error_size) != 0)
            return -1;
    }
    return 0;
}

static int prepare_all(PGconn *conn, char *error, size_t error_size)
{
    for (int id = 0; id < SIOC__SQL_STATEMENT_COUNT; id++) {
        if (is_control((sioc__store_statement_t)id))
            continue;
        char name[16];
        snprintf(name, sizeof(name), "s%d", id);
        PGresult *result = PQprepare(conn, name, statement_sql[id], 0, NULL);
        int ok = PQresultStatus(result) == PGRES_COMMAND_OK;
        if (!ok)
            snprintf(error, error_size, "%s", PQresultErrorMessage(result));
        PQclear(result);
        if (!ok)
            return id + 1;
    }
    return 0;
}

static void pg_close(void *opaque)
{
    connection_t *connection = opaque;
    if (connection == NULL)
        return;
    PQfinish(connection->conn);
    for (int slot = 0; slot < STORE_OPERATION_COUNT; slot++)
        free(connection->custom[slot]);
    free(connection->conninfo);
    free(connection);
}

/* ---- Statements on the worker thread --------------------------------------------------- */

/* A static text for the store's caller; the server's own words go to the log. */
static const char *failure_text(const char *sqlstate)
{
    if (sqlstate == NULL)
        return "the database failed";
    if (strncmp(sqlstate, "23", 2) == 0)
        return "the database refused the change (a constraint)";
    if (strncmp(sqlstate, "40", 2) == 0)
        return "the database rolled the transaction back";
    if (strncmp(sqlstate, "53", 2) == 0)
        return "the database is out of resources";
    return "the database failed";
}

/* The connection is gone, or the server says it is going (shutdown, connection errors). */
static int is_lost(PGconn *conn, const char *sqlstate)
{
    if (PQstatus(conn) != CONNECTION_OK)
        return 1;
    return sqlstate != NULL &&
           (strncmp(sqlstate, "08", 2) == 0 || strncmp(sqlstate, "57P", 3) == 0);
}

/* From the column's type (pg_type OIDs, fixed since PostgreSQL 7). */
static sioc__store_cell_kind_t cell_kind(Oid type)
{
    switch (type) {
    case 16: /* bool */
        return SIOC__STORE_CELL_BOOL;
    case 20: /* int8 */
    case 21: /* int2 */
    case 23: /* int4 */
        return SIOC__STORE_CELL_INTEGER;
    case 114:  /* json */
    case 3802: /* jsonb */
        return SIOC__STORE_CELL_JSON;
    case 1114: /* timestamp */
    case 1184: /* timestamptz */
        return SIOC__STORE_CELL_TIME;
    default:
        return SIOC__STORE_CELL_TEXT;
    }
}

static int deliver_rows(PGresult *result, sioc__store_row_cb row, void *row_data)
{
    int rows = PQntuples(result);
    int columns = PQnfields(result);
    if (columns > CELLS_MAX)
        columns = CELLS_MAX;
    for (int index = 0; row != NULL && index < rows; index++) {
        sioc__store_cell_t cells[CELLS_MAX];
        for (int column = 0; column < columns; column++) {
            int null = PQgetisnull(result, index, column);
            cells[column].bytes = null ? NULL : PQgetvalue(result, index, column);
            cells[column].length = (size_t)PQgetlength(result, index, column);
            cells[column].name = PQfname(result, column);
            cells[column].kind = cell_kind(PQftype(result, column));
        }
        int rc = row(row_data, cells, (size_t)columns);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static const char *sql_of(const connection_t *connection, int statement)
{
    return statement < SIOC__SQL_STATEMENT_COUNT
               ? statement_sql[statement]
               : connection->custom[statement - SIOC__SQL_STATEMENT_COUNT];
}

/* A prepared statement's parameters as libpq's text values (integers written in integers). */
typedef struct values_s {
    const char *texts[PARAMS_MAX];
    char integers[PARAMS_MAX][INTEGER_SIZE];
    int count;
    char name[16]; /* the prepared statement's */
} values_t;

static void values_of(values_t *values, sioc__store_statement_t statement,
                      const sioc__store_param_t *params, size_t count)
{
    if (count > PARAMS_MAX)
        count = PARAMS_MAX; /* the store never passes more than its statements take */
    for (size_t index = 0; index < count; index++) {
        values->texts[index] = params[index].bytes;
        if (params[index].is_integer) {
            snprintf(values->integers[index], INTEGER_SIZE, "%lld",
                     (long long)params[index].integer);
            values->texts[index] = values->integers[index];
        }
    }
    values->count = (int)count;
    if (statement >= SIOC__SQL_STATEMENT_COUNT)
        snprintf(values->name, sizeof(values->name), "c%d",
                 (int)statement - SIOC__SQL_STATEMENT_COUNT);
    else
        snprintf(values->name, sizeof(values->name), "s%d", (int)statement);
}

static PGresult *run(connection_t *connection, sioc__store_statement_t statement,
                     const sioc__store_param_t *params, size_t count)
{
    if (is_control(statement))
        return PQexec(connection->conn, statement_sql[statement]);
    values_t values;
    values_of(&values, statement, params, count);
    return PQexecPrepared(connection->conn, values.name, values.count, values.texts, NULL, NULL, 0);
}

/* A failed statement's outcome: SIOC__STORE_DB_CONFLICT, or STORE_EUNAVAILABLE / STORE_EIO
 * with *message set and the server's words logged. */
static int failure(connection_t *connection, sioc__store_statement_t statement,
                   const PGresult *result, const char **message)
{
    const char *sqlstate = PQresultErrorField(result, PG_DIAG_SQLSTATE);
    if (sqlstate != NULL && strcmp(sqlstate, "23505") == 0)
        return SIOC__STORE_DB_CONFLICT;
    if (sqlstate != NULL && strcmp(sqlstate, "25P02") == 0) {
        *message = failure_text(sqlstate); /* a pipeline behind one that failed, logged */
        return STORE_EIO;
    }
    char detail[512];
    snprintf(detail, sizeof(detail), "%s",
             result != NULL ? PQresultErrorMessage(result) : PQerrorMessage(connection->conn));
    log_error("store: %s: %s: %s", connection->shown, sql_of(connection, statement),
              one_line(detail));
    *message = failure_text(sqlstate);
    return is_lost(connection->conn, sqlstate) ? STORE_EUNAVAILABLE : STORE_EIO;
}

static int pg_execute(void *opaque, sioc__store_statement_t statement,
                      const sioc__store_param_t *params, size_t count, sioc__store_row_cb row,
                      void *row_data, int64_t *changes, const char **message)
{
    connection_t *connection = opaque;
    PGresult *result = run(connection, statement, params, count);
    ExecStatusType status = PQresultStatus(result);
    int rc = 0;
    if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) {
        if (changes != NULL)
            *changes = strtoll(PQcmdTuples(result), NULL, 10);
        rc = deliver_rows(result, row, row_data);
    } else {
        rc = failure(connection, statement, result, message);
    }
    PQclear(result);
    return rc;
}

/* ---- Pipelines ------------------------------------------------------------------------- */

/* One result of the pipeline (libpq gives each statement's result, a NULL after it, and
 * PGRES_PIPELINE_SYNC at the end). */
static void pipeline_result(pipeline_t *pipeline, PGresult *result)
{
    ExecStatusType status = PQresultStatus(result);
    if (status == PGRES_PIPELINE_SYNC) {
        pipeline->synced = 1;
        return;
    }
    if (pipeline->next >= pipeline->count)
        return; /* not ours: cannot happen with the calls sent */
    const sioc__store_call_t *call = &pipeline->calls[pipeline->next];
    int rc = 0;
    if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK)
        rc = pipeline->rc == 0 ? deliver_rows(result, call->row, call->row_data) : 0;
    else if (status != PGRES_PIPELINE_ABORTED)
        rc = failure(pipeline->connection, call->statement, result, &pipeline->message);
    if (rc != 0 && pipeline->rc == 0) {
        pipeline->rc = rc;
        pipeline->failed = pipeline->next;
    }
    pipeline->next++;
}

/* Sends what libpq holds and reads every result up to the pipeline's sync point (those of a
 * later pipeline stay in libpq's buffer), waiting on the socket (non-blocking mode: a
 * blocking send of a long pipeline could wait for a server that waits for us to read its
 * answers) and on wake_fd (-1: none; SIOC__STORE_PIPELINE_NOWAIT: not at all). 0 when read, 1
 * when wake_fd became readable first (or the rest has not come in, NOWAIT), -1 when the
 * connection is lost. */
static int pipeline_read(pipeline_t *pipeline, int wake_fd)
{
    PGconn *conn = pipeline->connection->conn;
    while (!pipeline->synced) {
        int flushing = PQflush(conn);
        if (flushing < 0 || PQconsumeInput(conn) == 0)
            return -1;
        while (!pipeline->synced && !PQisBusy(conn)) {
            PGresult *result = PQgetResult(conn);
            if (result == NULL)
                continue; /* the end of one statement's results */
            pipeline_result(pipeline, result);
            PQclear(result);
        }
        if (pipeline->synced)
            break;
        if (wake_fd == SIOC__STORE_PIPELINE_NOWAIT)
            return 1; /* the caller waits on the socket itself (pg_pipeline_socket) */
        struct pollfd wait[2] = {{PQsocket(conn), POLLIN | (flushing ? POLLOUT : 0), 0},
                                 {wake_fd, POLLIN, 0}};
        int ready = wait[0].fd < 0 ? -1 : poll(wait, wake_fd >= 0 ? 2 : 1, -1);
        if (ready < 0 && (wait[0].fd < 0 || errno != EINTR))
            return -1;
        if (ready > 0 && wake_fd >= 0 && (wait[1].revents & POLLIN) && !wait[0].revents)
            return 1;
    }
    return 0;
}

/* The connection cannot be used on (a pipeline half sent or half read): every pipeline not
 * yet read fails as unavailable, and the next ready() reconnects. */
static void pipelines_lost(connection_t *connection, const char *what)
{
    char detail[512];
    snprintf(detail, sizeof(detail), "%s", PQerrorMessage(connection->conn));
    log_error("store: %s: pipeline: %s: %s", connection->shown, what, one_line(detail));
    connection->broken = 1;
    for (size_t index = 0; index < connection->pipelines_sent; index++) {
        pipeline_t *pipeline =
            &connection->pipelines[(connection->first_pipeline + index) % PIPELINES_MAX];
        if (pipeline->synced)
            continue;
        pipeline->synced = 1;
        pipeline->rc = STORE_EUNAVAILABLE;
        pipeline->failed = pipeline->next;
        pipeline->message = "the database is unavailable";
    }
}

static int send_call(PGconn *conn, const sioc__store_call_t *call)
{
    if (is_control(call->statement))
        return PQsendQueryParams(conn, statement_sql[call->statement], 0, NULL, NULL, NULL, NULL,
                                 0);
    values_t values;
    values_of(&values, call->statement, call->params, call->count);
    return PQsendQueryPrepared(conn, values.name, values.count, values.texts, NULL, NULL, 0);
}

/* Queues the calls and a sync point behind the pipelines already sent and flushes what the
 * socket takes; the outcome, a lost connection included, is pg_pipeline_read's. */
static void pg_pipeline_send(void *opaque, const sioc__store_call_t *calls, size_t count)
{
    connection_t *connection = opaque;
    PGconn *conn = connection->conn;
    if (connection->pipelines_sent == PIPELINES_MAX)
        abort(); /* the store has fewer in flight */
    pipeline_t *pipeline =
        &connection
             ->pipelines[(connection->first_pipeline + connection->pipelines_sent) % PIPELINES_MAX];
    *pipeline = (pipeline_t){connection, calls, count, 0, 0, 0, NULL, 0};
    connection->pipelines_sent++;
    if (connection->broken) {
        pipelines_lost(connection, "sent on a lost connection");
        return;
    }
    if (connection->pipelines_sent == 1 &&
        (PQenterPipelineMode(conn) != 1 || PQsetnonblocking(conn, 1) != 0)) {
        pipelines_lost(connection, "cannot start");
        return;
    }
    int sent = 1;
    for (size_t index = 0; index < count && sent; index++)
        sent = send_call(conn, &calls[index]);
    if (!sent || PQpipelineSync(conn) != 1 || PQflush(conn) < 0)
        pipelines_lost(connection, "cannot send");
}

/* Reads the answers to the oldest pipeline sent: see store_driver.h. */
static int pg_pipeline_read(void *opaque, int wake_fd, size_t *failed, const char **message)
{
    connection_t *connection = opaque;
    pipeline_t *pipeline = &connection->pipelines[connection->first_pipeline];
    if (!pipeline->synced) {
        int read = pipeline_read(pipeline, wake_fd);
        if (read > 0)
            return SIOC__STORE_PIPELINE_WOKEN;
        if (read < 0)
            pipelines_lost(connection, "cannot read");
    }
    connection->first_pipeline = (connection->first_pipeline + 1) % PIPELINES_MAX;
    connection->pipelines_sent--;
    if (connection->pipelines_sent == 0 && !connection->broken) {
        PQsetnonblocking(connection->conn, 0);
        PQexitPipelineMode(connection->conn);
    }
    *failed = pipeline->failed;
    if (pipeline->message != NULL)
        *message = pipeline->message;
    return pipeline->rc;
}

static int pg_execute_pipeline(void *opaque, const sioc__store_call_t *calls, size_t count,
                               size_t *failed, const char **message)
{
    pg_pipeline_send(opaque, calls, count);
    return pg_pipeline_read(opaque, -1, failed, message);
}

static int pg_in_transaction(void *opaque)
{
    connection_t *connection = opaque;
    PGTransactionStatusType status = PQtransactionStatus(connection->conn);
    return status == PQTRANS_INTRANS || status == PQTRANS_INERROR;
}

/* 1 when the server has ended an idle connection (a restart, pg_terminate_backend): it says
 * so (FATAL) and closes, which libpq only notices when it reads. Reading here, before a batch
 * is sent, lets ready() reconnect instead of failing the batch: with a pool, connections
 * that were idle during a restart would otherwise each fail their next batch. */
static int idle_lost(PGconn *conn)
{
    for (int reads = 0; reads < 2; reads++) {
        struct pollfd wait = {PQsocket(conn), POLLIN, 0};
        if (wait.fd < 0)
            return 1;
        if (poll(&wait, 1, 0) <= 0)
            return 0; /* nothing to read: alive as far as anyone can tell */
        if (PQconsumeInput(conn) == 0 || PQstatus(conn) != CONNECTION_OK)
            return 1;
    }
    return 0;
}

/* Usable as it is, without reconnecting (store_driver.h); never blocks. */
static int pg_connected(void *opaque)
{
    connection_t *connection = opaque;
    return PQstatus(connection->conn) == CONNECTION_OK && !connection->broken &&
           !idle_lost(connection->conn);
}

/* While pipelines are sent and unread (pipeline mode, non-blocking): see store_driver.h. */
static int pg_pipeline_socket(void *opaque, int *writable)
{
    connection_t *connection = opaque;
    int flushing = connection->broken ? -1 : PQflush(connection->conn);
    *writable = flushing == 1;
    return flushing < 0 ? -1 : PQsocket(connection->conn);
}

/* Reconnects when the connection is lost, at most once per backoff period. */
static int pg_ready(void *opaque)
{
    connection_t *connection = opaque;
    if (PQstatus(connection->conn) == CONNECTION_OK && !connection->broken) {
        if (!idle_lost(connection->conn))
            return 0;
        log_info("store: %s: the server closed the idle connection", connection->shown);
    }
    uint64_t now = now_ms();
    if (now < connection->next_attempt_ms)
        return STORE_EUNAVAILABLE;
    PQreset(connection->conn);
    char error[512] = "";
    if (PQstatus(connection->conn) == CONNECTION_OK &&
        prepare_all(connection->conn, error, sizeof(error)) == 0 &&
        prepare_custom(connection, error, sizeof(error)) == 0) {
        log_info("store: %s: reconnected", connection->shown);
        connection->backoff_ms = 0;
        connection->broken = 0;
        return 0;
    }
    if (error[0] == '\0')
        snprintf(error, sizeof(error), "%s", PQerrorMessage(connection->conn));
    connection->backoff_ms = connection->backoff_ms == 0 ? BACKOFF_FIRST_MS
                             : connection->backoff_ms * 2 > BACKOFF_MAX_MS
                                 ? BACKOFF_MAX_MS
                                 : connection->backoff_ms * 2;
    connection->next_attempt_ms = now + connection->backoff_ms;
    log_error("store: %s: reconnecting failed (next try in %u ms): %s", connection->shown,
              connection->backoff_ms, one_line(error));
    connection->broken = 1; /* prepared half, if connected: start from scratch next time */
    return STORE_EUNAVAILABLE;
}

/* ---- Opening --------------------------------------------------------------------------- */

/* Runs sql (simple protocol, several statements allowed); 0, or STORE_EIO with error filled:
 * "store: <where>: <what>: <server message>". */
static int open_exec(connection_t *connection, const char *sql, const char *what, char *error,
                     size_t error_size, PGresult **keep)
{
    PGresult *result = PQexec(connection->conn, sql);
    ExecStatusType status = PQresultStatus(result);
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
        if (keep != NULL)
            *keep = result;
        else
            PQclear(result);
        return 0;
    }
    char detail[512];
    snprintf(detail, sizeof(detail), "%s", PQresultErrorMessage(result));
    snprintf(error, error_size, "store: %s: %s: %s", connection->shown, what, one_line(detail));
    PQclear(result);
    return STORE_EIO;
}

/* The schema version recorded in the database (0: none yet), or -1 with error filled. */
static int current_version(connection_t *connection, char *error, size_t error_size)
{
    PGresult *result = NULL;
    if (open_exec(connection, "SELECT coalesce(max(version), 0) FROM sioc.schema_version",
                  "cannot read sioc.schema_version", error, error_size, &result) != 0)
        return -1;
    int version = atoi(PQgetvalue(result, 0, 0));
    PQclear(result);
    return version;
}

static int apply_migration(connection_t *connection, const migration_t *step, char *error,
                           size_t error_size)
{
    char what[64];
    snprintf(what, sizeof(what), "migration to schema version %d failed", step->version);
    if (open_exec(connection, step->sql, what, error, error_size, NULL) != 0)
        return STORE_EIO;
    char now[SIOC__STORE_TIME_SIZE], sql[160];
    sioc__store_time_now(now);
    snprintf(sql, sizeof(sql),
             "INSERT INTO sioc.schema_version (version, applied_at) VALUES (%d, '%s')",
             step->version, now);
    return open_exec(connection, sql, what, error, error_size, NULL);
}

static int migrate_locked(connection_t *connection, char *error, size_t error_size)
{
    int rc = open_exec(connection,
                       "CREATE SCHEMA IF NOT EXISTS sioc;"
                       "CREATE TABLE IF NOT EXISTS sioc.schema_version ("
                       " version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
                       "cannot create sioc.schema_version", error, error_size, NULL);
    int current = rc == 0 ? current_version(connection, error, error_size) : -1;
    if (current < 0)
        return STORE_EIO;
    size_t count = sizeof(migrations) / sizeof(migrations[0]);
    int latest = migrations[count - 1].version;
    if (current > latest) {
        snprintf(error, error_size,
                 "store: %s: schema version %d is newer than this sioc knows (%d): upgrade sioc",
                 connection->shown, current, latest);
        return STORE_EIO;
    }
    for (size_t index = 0; index < count; index++) {
        if (migrations[index].version > current &&
            apply_migration(connection, &migrations[index], error, error_size) != 0)
            return STORE_EIO;
    }
    return 0;
}

/* Brings sioc's schema to the latest version in one transaction, under an advisory lock that
 * the COMMIT releases. */
static int migrate(connection_t *connection, char *error, size_t error_size)
{
    int rc = open_exec(connection, "BEGIN; SELECT pg_advisory_xact_lock(" MIGRATION_LOCK ")",
                       "cannot start the migration", error, error_size, NULL);
    if (rc == 0)
        rc = migrate_locked(connection, error, error_size);
    if (rc == 0)
        rc =
            open_exec(connection, "COMMIT", "cannot commit the migration", error, error_size, NULL);
    if (rc != 0)
        PQclear(PQexec(connection->conn, "ROLLBACK"));
    return rc;
}

static int pg_open(const store_options_t *options, void **out, char *error, size_t error_size)
{
    *out = NULL;
    if (options == NULL || options->path == NULL || options->path[0] == '\0') {
        snprintf(error, error_size, "store: a PostgreSQL connection URL is required (store.url)");
        return STORE_EINVALID;
    }
    connection_t *connection = calloc(1, sizeof(*connection));
    if (connection == NULL || (connection->conninfo = strdup(options->path)) == NULL) {
        free(connection);
        snprintf(error, error_size, "store: out of memory");
        return STORE_EIO;
    }
    describe(connection);
    connection->conn = connect_now(connection->conninfo);
    if (PQstatus(connection->conn) != CONNECTION_OK) {
        char detail[512];
        snprintf(detail, sizeof(detail), "%s", PQerrorMessage(connection->conn));
        snprintf(error, error_size, "store: %s: cannot connect: %s", connection->shown,
                 one_line(detail));
        pg_close(connection);
        return STORE_EUNAVAILABLE;
    }
    int rc = migrate(connection, error, error_size);
    char detail[512] = "";
    int failed = rc == 0 ? prepare_all(connection->conn, detail, sizeof(detail)) : 0;
    if (failed != 0) {
        snprintf(error, error_size, "store: %s: %s: %s", connection->shown,
                 statement_sql[failed - 1], one_line(detail));
        rc = STORE_EIO;
    }
    if (rc != 0) {
        pg_close(connection);
        return rc;
    }
    *out = connection;
    return 0;
}

/* Prepares and describes the application's statement: its result columns are checked by the
 * store before the daemon starts. */
static int pg_prepare(void *opaque, int slot, const char *sql, char *columns, size_t columns_size,
                      char *error, size_t error_size)
{
    connection_t *connection = opaque;
    char name[16];
    snprintf(name, sizeof(name), "c%d", slot);
    if (prepare_one(connection->conn, name, sql, error, error_size) != 0) {
        one_line(error);
        return -1;
    }
    PGresult *description = PQdescribePrepared(connection->conn, name);
    columns[0] = '\0';
    for (int index = 0; index < PQnfields(description); index++) {
        size_t used = strlen(columns);
        snprintf(columns + used, columns_size - used, "%s%s", index ? "," : "",
                 PQfname(description, index));
    }
    PQclear(description);
    free(connection->custom[slot]);
    connection->custom[slot] = strdup(sql);
    if (connection->custom[slot] == NULL) {
        snprintf(error, error_size, "out of memory");
        return -1;
    }
    return 0;
}

static int pg_aborted(void *opaque)
{
    connection_t *connection = opaque;
    return PQtransactionStatus(connection->conn) == PQTRANS_INERROR;
}

const sioc__store_driver_t sioc__store_pg_driver = {
    "postgres",
    pg_open,
    pg_execute,
    pg_in_transaction,
    pg_ready,
    pg_close,
    '$',
    pg_prepare,
    pg_aborted,
    pg_execute_pipeline,
    pg_pipeline_send,
    pg_pipeline_read,
    NULL,
    pg_connected,
    pg_pipeline_socket,
};
