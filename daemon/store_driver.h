/* The store's database drivers (store.c is the store; store_sqlite.c and store_pg.c are the
 * drivers). The store validates params on the loop thread into typed requests, queues them,
 * runs each batch on its worker thread as a sequence of numbered statements, shapes the rows
 * into JSON and completes the requests in order on the loop thread. A driver only knows SQL:
 * it opens (and migrates) its database, executes one of the statements below with text or
 * integer parameters, reports rows as text cells, and closes.
 *
 * Threading: open runs on the loop thread (startup); every other call runs on the store's
 * worker thread, one at a time, or (store.dispatch "loop": connected, pipeline_send,
 * pipeline_socket, pipeline_read) on the loop thread while the store has lent it the
 * connection; never on both at once. */
#ifndef SIOC_DAEMON_STORE_DRIVER_H
#define SIOC_DAEMON_STORE_DRIVER_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* The statements the store runs. Each driver has the SQL text for every one, in its dialect;
 * the parameters are numbered as in the comments of store_sqlite.c's table. */
typedef enum sioc__store_statement {
    SIOC__SQL_BEGIN,
    SIOC__SQL_COMMIT,
    SIOC__SQL_ROLLBACK,
    SIOC__SQL_SAVEPOINT,
    SIOC__SQL_RELEASE,
    SIOC__SQL_ROLLBACK_TO,
    SIOC__SQL_USER_EXISTS,
    SIOC__SQL_USER_UPSERT,
    SIOC__SQL_USER_GET,
    SIOC__SQL_PRESENCE_SET,
    SIOC__SQL_PRESENCE_GET,
    SIOC__SQL_ROOM_EXISTS,
    SIOC__SQL_ROOM_INSERT,
    SIOC__SQL_ROOM_GET,
    SIOC__SQL_MEMBER_INSERT,
    SIOC__SQL_MEMBER_GET,
    SIOC__SQL_MEMBER_DELETE,
    SIOC__SQL_MEMBER_LIST,
    SIOC__SQL_MESSAGE_INSERT,
    SIOC__SQL_MESSAGE_SEQ,
    SIOC__SQL_MESSAGE_HISTORY,
    SIOC__SQL_DM_INSERT,
    SIOC__SQL_DM_SEQ,
    SIOC__SQL_DM_HISTORY,
    SIOC__SQL_NOTIFICATION_INSERT,
    SIOC__SQL_NOTIFICATION_LIST,
    SIOC__SQL_NOTIFICATION_LIST_UNREAD,
    SIOC__SQL_NOTIFICATION_MARK_ONE,
    SIOC__SQL_NOTIFICATION_MARK_ALL,
    SIOC__SQL_ACCESS_INSERT,
    SIOC__SQL_ACCESS_RESOLVE,
    SIOC__SQL_ACCESS_GET,
    /* MESSAGE_INSERT / DM_INSERT that insert only when the room and the users exist (no row
     * otherwise): one round trip for the common case. */
    SIOC__SQL_MESSAGE_INSERT_CHECKED,
    SIOC__SQL_DM_INSERT_CHECKED,
    /* The same, answering one row whatever happens: the inserted row's columns (NULL when
     * nothing was inserted), then whether the room (sender) and the sender (recipient)
     * exist, so that a pipeline committed with them names what is missing without asking
     * again. Drivers with execute_pipeline only (SQLite has no SQL text for them). */
    SIOC__SQL_MESSAGE_INSERT_DIAGNOSED,
    SIOC__SQL_DM_INSERT_DIAGNOSED,
    SIOC__SQL_STATEMENT_COUNT,
} sioc__store_statement_t;

/* A parameter: text (bytes NULL: SQL NULL) or an integer. Text is NUL-terminated at
 * bytes[length] (libpq's text format needs it) and valid during the call. */
typedef struct sioc__store_param_s {
    const char *bytes;
    size_t length;
    int is_integer;
    int64_t integer;
} sioc__store_param_t;

/* A result cell as text (bytes NULL: SQL NULL), valid during the row callback. Booleans are
 * "1"/"0" (SQLite) or "t"/"f" (PostgreSQL); the store reads both. */
typedef enum sioc__store_cell_kind {
    SIOC__STORE_CELL_TEXT,
    SIOC__STORE_CELL_INTEGER,
    SIOC__STORE_CELL_BOOL,
    SIOC__STORE_CELL_JSON,
    SIOC__STORE_CELL_TIME, /* PostgreSQL timestamp text, "2026-11-21 21:00:00.123+00" */
} sioc__store_cell_kind_t;

typedef struct sioc__store_cell_s {
    const char *bytes;
    size_t length;
    const char *name;             /* the column's name */
    sioc__store_cell_kind_t kind; /* from the column's type, for the application's statements */
} sioc__store_cell_t;

/* Called for each row; a non-zero return stops the rows (out of memory) and is returned by
 * execute. */
typedef int (*sioc__store_row_cb)(void *data, const sioc__store_cell_t *cells, size_t count);

/* One statement of a pipeline (execute_pipeline): execute's arguments. */
typedef struct sioc__store_call_s {
    sioc__store_statement_t statement;
    const sioc__store_param_t *params;
    size_t count;
    sioc__store_row_cb row; /* may be NULL */
    void *row_data;
} sioc__store_call_t;

/* What execute returns besides 0. */
#define SIOC__STORE_DB_CONFLICT 1 /* a unique or primary key violation */

typedef struct sioc__store_driver_s {
    const char *name;
    /* Opens, migrates and prepares, synchronously. 0 with *connection set, or STORE_EINVALID
     * (bad options) / STORE_EIO / STORE_EUNAVAILABLE with error filled. */
    int (*open)(const store_options_t *options, void **connection, char *error, size_t error_size);
    /* Runs a statement: 0 (rows went to row, may be NULL; *changes, may be NULL, counts the
     * rows an INSERT/UPDATE/DELETE touched), SIOC__STORE_DB_CONFLICT, the row callback's
     * return, STORE_EUNAVAILABLE (the connection is lost) or STORE_EIO. On failure *message
     * is a static text for the caller (details are logged by the driver). */
    int (*execute)(void *connection, sioc__store_statement_t statement,
                   const sioc__store_param_t *params, size_t count, sioc__store_row_cb row,
                   void *row_data, int64_t *changes, const char **message);
    /* 1 while a transaction is open (also when a failed statement left it to be rolled back
     * to a savepoint), 0 when the database has ended it. */
    int (*in_transaction)(void *connection);
    /* Before each batch: 0 when the connection is usable, else STORE_EUNAVAILABLE (the
     * driver reconnects, with a backoff, from here). */
    int (*ready)(void *connection);
    void (*close)(void *connection); /* NULL-safe */
    /* The placeholder style of compiled application statements: '$' ($1) or '?' (?1). */
    char placeholder;
    /* Loop thread, after open: prepares the application's statement for slot (an operation;
     * run later as statement SIOC__SQL_STATEMENT_COUNT + slot) and lists the columns it
     * returns in columns ("a,b,c"). 0, or -1 with the database's message in error. */
    int (*prepare)(void *connection, int slot, const char *sql, char *columns, size_t columns_size,
                   char *error, size_t error_size);
    /* 1 when a failed statement has aborted the open transaction (PostgreSQL: only a ROLLBACK
     * or ROLLBACK TO helps). NULL for databases where a failed statement leaves the
     * transaction usable (SQLite): the store then always runs requests in savepoints. */
    int (*aborted)(void *connection);
    /* Optional (NULL: the store runs the statements one execute at a time). Runs count
     * statements, sent together and answered together (one round trip instead of count), in
     * order; they may open and end the transaction themselves (BEGIN ... COMMIT: a whole batch
     * in one round trip). 0 when every one succeeded (the rows went to each call's callback);
     * else execute's error for the first that failed, its index in *failed: the ones after it
     * did not run and the transaction is aborted (aborted() is 1), or the connection lost. */
    int (*execute_pipeline)(void *connection, const sioc__store_call_t *calls, size_t count,
                            size_t *failed, const char **message);
    /* Optional, both or neither (NULL: one batch at a time). execute_pipeline in two halves,
     * so that the next batch can be sent while the answers to the one before are still on
     * their way. pipeline_send queues the calls (valid until they are read) as a pipeline of
     * their own, behind those sent before, and sends what the socket takes; its outcome, a
     * lost connection included, is pipeline_read's. pipeline_read reads the answers to the
     * oldest pipeline sent and returns execute_pipeline's outcome for it, or
     * SIOC__STORE_PIPELINE_WOKEN when wake_fd (-1: none) became readable before they were all
     * in: call it again to go on. Sent pipelines are each their own transaction (BEGIN ...
     * COMMIT): one that fails leaves the transaction aborted, so those after it fail too (at
     * their BEGIN) and must be run again. execute and the others only once every pipeline
     * sent has been read. */
    void (*pipeline_send)(void *connection, const sioc__store_call_t *calls, size_t count);
    int (*pipeline_read)(void *connection, int wake_fd, size_t *failed, const char **message);
    /* Optional: gives back the memory the connection keeps for speed (SQLite's page cache),
     * called once the store has had nothing to do for SIOC__STORE_IDLE_RELEASE_MS after some
     * work. Worker thread. */
    void (*release_memory)(void *connection);
    /* Optional, with pipeline_send (NULL: pipelines are only read on the worker, waiting in
     * pipeline_read). For a caller that waits on its own event loop instead (store.dispatch
     * "loop"), with no call that blocks:
     * - connected: 1 when the connection can be used as it is (no reconnection needed: what
     *   ready() would say without reconnecting), 0 when only ready() can make it usable;
     * - pipeline_socket, while pipelines sent are not all read: sends what the socket takes
     *   and gives the socket to wait on (readable, and writable too when *writable is set:
     *   the rest of the pipelines waits to go out), or -1 when the connection is lost (the
     *   next pipeline_read says so);
     * - pipeline_read with wake_fd SIOC__STORE_PIPELINE_NOWAIT reads what has come in and
     *   returns SIOC__STORE_PIPELINE_WOKEN instead of waiting for the rest. */
    int (*connected)(void *connection);
    int (*pipeline_socket)(void *connection, int *writable);
} sioc__store_driver_t;

/* A store idle this long after work lets its driver release_memory (the daemon's heap trim
 * gives the pages back: daemon/heap_trim.h). */
#define SIOC__STORE_IDLE_RELEASE_MS 1000

/* What pipeline_read returns when woken before the pipeline's answers were in. */
#define SIOC__STORE_PIPELINE_WOKEN 2

/* pipeline_read's wake_fd for a caller that waits itself (pipeline_socket): never wait. */
#define SIOC__STORE_PIPELINE_NOWAIT (-2)

extern const sioc__store_driver_t sioc__store_sqlite_driver;
extern const sioc__store_driver_t sioc__store_pg_driver;

/* "2026-11-21T21:00:00.000Z": the store's clock, for drivers' own rows (schema_version). */
#define SIOC__STORE_TIME_SIZE 32
void sioc__store_time_now(char out[SIOC__STORE_TIME_SIZE]);

#endif
