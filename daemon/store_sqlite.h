/* The store's private interface: counters and hooks for tests and diagnostics (named for
 * SQLite, where they started; they count the store's batches whatever the driver), and the
 * SQLite driver's migrations. The daemon itself uses store.h only. */
#ifndef SIOC_DAEMON_STORE_SQLITE_H
#define SIOC_DAEMON_STORE_SQLITE_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

typedef struct store_sqlite_stats_s {
    uint64_t requests;       /* requests the worker thread ran (refused ones not counted) */
    uint64_t batches;        /* times the worker took the queue */
    uint64_t transactions;   /* BEGIN ... COMMIT (or ROLLBACK) on the worker thread */
    uint64_t failed_commits; /* COMMITs that failed: their requests got STORE_EIO */
    size_t largest_batch;    /* most requests taken from the queue at once */
    uint64_t pipelines;      /* statements sent together (PostgreSQL's pipeline mode) */
    uint64_t pipelined;      /* the requests those pipelines ran */
    size_t most_in_flight;   /* most batches sent on one connection and not yet answered */
    uint64_t releases;       /* times the driver gave its cache back, the store idle */
    uint64_t loop_batches;   /* one-trip batches the loop thread sent (store.dispatch "loop") */
} store_sqlite_stats_t;

/* A copy of the counters, as of the last batch the worker finished. Loop thread. */
void store_sqlite_stats(store_t *store, store_sqlite_stats_t *out);

/* Tests: while held, the worker leaves queued requests alone, so that a test can queue a known
 * set and have it taken as one batch. store_close releases the hold. Loop thread. */
void store_sqlite_hold(store_t *store, int hold);

/* Tests: 1 when every connection is lent to the loop thread (store.dispatch "loop": its
 * idle worker lends it soon after its last batch). Loop thread. */
int store_sqlite_lent(store_t *store);

/* A numbered migration: SQL run in the open transaction that moves the schema from version - 1
 * to version. */
typedef struct store_sqlite_migration_s {
    int version;
    const char *sql;
} store_sqlite_migration_t;

/* Tests: replaces the built-in migration list for later store_open calls (versions 1, 2, ...
 * in order); NULL restores the built-in list. Not thread-safe; call before opening. */
void store_sqlite_use_migrations(const store_sqlite_migration_t *migrations, size_t count);

/* The built-in migrations (the last one is the current schema version). */
const store_sqlite_migration_t *store_sqlite_builtin_migrations(size_t *count);

#endif
