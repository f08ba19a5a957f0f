/* The daemon's store: users, presence, rooms and membership, messages, direct messages,
 * notifications and access requests. One small asynchronous interface (store.c), so that
 * SQLite (the embedded default, store_sqlite.c) and PostgreSQL (store_pg.c) are
 * interchangeable drivers behind it (store_driver.h).
 *
 * Contract
 * - Every call is made on the loop thread. store_open works synchronously (startup: it opens
 *   and migrates the database); the other calls return at once and the work runs off the loop
 *   (one worker thread, requests batched in transactions). done runs later, on the
 *   loop thread, exactly once, and only after the change is durable (COMMIT returned): the
 *   daemon acknowledges or broadcasts only then. done may be NULL (fire and forget).
 * - params is a JSON object (taken: the store releases it, on the loop thread, after done).
 *   The store reads it from its own thread until then and never modifies it: do not modify
 *   it (or anything inside it) meanwhile. Keys other than those listed are ignored.
 * - done gets error 0, message NULL and result (a borrowed JSON value, valid during the call;
 *   json_incref to keep it), or a negative error, a static message and result NULL:
 *     STORE_ENOTFOUND  the target, or a row it names, does not exist: "room not found",
 *                      "user not found", "sender not found", "recipient not found", "owner not
 *                      found", "before: message not found", "access request not found", ...
 *     STORE_EINVALID   bad params, naming the field: "roomId must be a string or an integer",
 *                      "text is required", "limit must be an integer from 1 to 100", ...
 *     STORE_ECONFLICT  the data already says otherwise: "room already exists", "user is
 *                      already a member", "access request already pending", "access request
 *                      already resolved"
 *     STORE_EIO        the database failed (the details are logged); when the database rolls
 *                      a whole transaction back (disk full, I/O error) every request of the
 *                      batch not yet committed fails with it
 *     STORE_EUNAVAILABLE the database connection is lost (PostgreSQL restarting): the
 *                      request was not applied, or its COMMIT's answer was lost; never retried
 *     STORE_ECLOSED    the store is closing
 * - Operations complete in the order they were made, failures included, and a read sees
 *   every write made before it, among the operations of one ordering key (below); with one
 *   connection (store.poolSize 1, and always on SQLite) among all operations of the store.
 *   With a pool, operations of different keys run on different connections and may complete
 *   in any order, except that an operation naming a user (a sender, a recipient, a member,
 *   an owner) waits for the USER_UPSERTs of that user made before it. Whatever the pool, an
 *   operation made after another one's done sees its writes (done follows the COMMIT).
 *   The keys: the room (roomId; id for ROOM_GET and ROOM_CREATE) for rooms, members,
 *   messages and ACCESS_REQUEST_ADD; the pair of users for DM_ADD and DM_HISTORY; the user
 *   (id or userId) for users, presence and notifications; the request's id for
 *   ACCESS_REQUEST_RESOLVE and _GET.
 * - Ids are strings. Id params (id, userId, roomId, senderId, recipientId, otherId, ownerId,
 *   before, the entries of ids) also accept a whole JSON number, taken as its decimal text:
 *   roomId 12 and "12" are the same room. A user's id, a message's roomId and senderId, a
 *   DM's senderId and recipientId and a notification's userId read back with the JSON type
 *   they were written with (a number stays a number; rows from schema 1 are strings); other
 *   ids read back as strings. Ids are 1..256 bytes. Ids the store generates
 *   (rooms without an id, messages, DMs, notifications, access requests) are 20 random
 *   base64url characters. Other strings are at most 64 KiB (the callers enforce their own,
 *   smaller limits first); no string may contain NUL (PostgreSQL refuses it).
 * - Optional params: absent and null mean the same (default), except in USER_UPSERT.
 * - References must exist: users (USER_UPSERT) before presence, membership, messages, DMs,
 *   owners and access requests; rooms (ROOM_CREATE) before anything naming a roomId. Every
 *   operation with a roomId fails with STORE_ENOTFOUND "room not found" when there is no such
 *   room. Notifications are the exception: their userId need not exist (the HTTP API may
 *   notify a user the daemon has not seen yet).
 * - Times are ISO-8601 UTC strings with milliseconds ("2026-11-21T21:00:00.000Z"), as
 *   JSON.stringify(new Date()) writes them, so payloads match the seeds' createdAt; taken from
 *   the clock when the row is written. Lists are ordered by insertion, not by time.
 *
 * Operations (params → result)
 *   STORE_USER_UPSERT     {id, firstName?, lastName?, role?, avatar?} → the user; an absent
 *                         field keeps its stored value (null on a new user), null clears it
 *   STORE_USER_GET        {id} → {id, firstName, lastName, role, avatar} (null when unset)
 *                         | ENOTFOUND
 *   STORE_PRESENCE_SET    {userId, status:"online"|"offline"} → {userId, status, lastActivity}
 *   STORE_PRESENCE_GET    {userId} → {userId, status, lastActivity} | ENOTFOUND
 *   STORE_ROOM_CREATE     {name, isPrivate?, ownerId?, id?} → {id, name, isPrivate, ownerId,
 *                         createdAt}; the owner becomes a member; ECONFLICT when id is taken
 *   STORE_ROOM_GET        {id} → the room | ENOTFOUND
 *   STORE_ROOM_ADD_MEMBER {roomId, userId} → {roomId, userId, joinedAt} (idempotent: a
 *                         member keeps the first joinedAt)
 *   STORE_ROOM_REMOVE_MEMBER {roomId, userId} → {roomId, userId, removed: bool}
 *   STORE_ROOM_MEMBERS    {roomId} → [userId, ...] in joining order
 *   STORE_ROOM_IS_MEMBER  {roomId, userId} → true | false
 *   STORE_MESSAGE_ADD     {roomId, senderId, text} → {id, roomId, senderId, text, createdAt}
 *                         (membership is the caller's policy, not checked here)
 *   STORE_MESSAGE_HISTORY {roomId, before?: id, limit?: 1..100 (50)} → [message, ...] oldest
 *                         first, the newest `limit` messages older than `before` (a message
 *                         of that room, else ENOTFOUND)
 *   STORE_DM_ADD          {senderId, recipientId, text} → {id, senderId, recipientId, text,
 *                         createdAt}
 *   STORE_DM_HISTORY      {userId, otherId, before?, limit?} → [dm, ...] oldest first, both
 *                         directions; [] for users without messages
 *   STORE_NOTIFICATION_ADD {userId, type, payload: object} → {id, userId, type, payload, read:
 *                         false, createdAt}; payload at most 64 KiB as JSON
 *   STORE_NOTIFICATION_LIST {userId, unreadOnly?: bool, limit?: 1..100 (50)} → [notification,
 *                         ...] newest first
 *   STORE_NOTIFICATION_MARK_READ {userId, ids: [id, ...] (at most 1000) | "all"} → {updated:
 *                         n}, n the user's notifications that were unread; other ids ignored
 *   STORE_ACCESS_REQUEST_ADD {roomId, userId} → {id, roomId, userId, status:"pending",
 *                         createdAt}; ECONFLICT when already a member or already pending
 *   STORE_ACCESS_REQUEST_RESOLVE {id, status:"granted"|"denied"} → the request (granting also
 *                         adds the member); ECONFLICT when no longer pending
 *   STORE_ACCESS_REQUEST_GET {id} → {id, roomId, userId, status, createdAt} | ENOTFOUND
 */
#ifndef SIOC_DAEMON_STORE_H
#define SIOC_DAEMON_STORE_H

#include <stdint.h>

#include <jansson.h>
#include <uv.h>

typedef struct store_s store_t;

typedef enum store_operation {
    STORE_USER_UPSERT,
    STORE_USER_GET,
    STORE_PRESENCE_SET,
    STORE_PRESENCE_GET,
    STORE_ROOM_CREATE,
    STORE_ROOM_GET,
    STORE_ROOM_ADD_MEMBER,
    STORE_ROOM_REMOVE_MEMBER,
    STORE_ROOM_MEMBERS,
    STORE_ROOM_IS_MEMBER,
    STORE_MESSAGE_ADD,
    STORE_MESSAGE_HISTORY,
    STORE_DM_ADD,
    STORE_DM_HISTORY,
    STORE_NOTIFICATION_ADD,
    STORE_NOTIFICATION_LIST,
    STORE_NOTIFICATION_MARK_READ,
    STORE_ACCESS_REQUEST_ADD,
    STORE_ACCESS_REQUEST_RESOLVE,
    STORE_ACCESS_REQUEST_GET,
    STORE_OPERATION_COUNT,
} store_operation_t;

#define STORE_ENOTFOUND (-2)
#define STORE_EINVALID (-22)
#define STORE_EIO (-5)
#define STORE_ECONFLICT (-17)
#define STORE_ECLOSED (-32)
#define STORE_EUNAVAILABLE (-11)

/* store.poolSize: the default (docs/store.md has the measurement) and the most allowed. */
#define STORE_POOL_DEFAULT 4
#define STORE_POOL_MAX 64

typedef void (*store_done_cb)(int error, const char *message, json_t *result, void *data);

typedef struct store_options_s {
    const char *driver; /* "sqlite" (NULL: sqlite) or "postgres" */
    /* sqlite: the database file (created, WAL mode, migrated); postgres: a libpq connection
     * URI ("postgresql://user@host:port/db?sslmode=require") or "key=value ..." string. */
    const char *path;
    /* The application's own statements (docs/store.md), indexed by operation; NULL (or a NULL
     * entry) keeps sioc's. Named parameters (":roomId"); where[op] (may be NULL) is what an
     * error names, e.g. "sioc.json:12: store.statements.message_add". */
    const char *const *statements;
    const char *const *statement_where;
    /* The users read through the application's user_get statement are cached by the store:
     * at most user_cache_size of them (a direct-mapped table), each for user_cache_ttl_ms.
     * Either 0: no cache (every user_get asks the database). */
    uint32_t user_cache_size;
    uint32_t user_cache_ttl_ms;
    /* Connections to the database, each with its own worker thread and batches (0 or 1:
     * one); operations are assigned to them by their ordering key. The user cache is shared
     * out among them. SQLite: 1. */
    uint32_t pool_size;
    /* store.dispatch "loop" (PostgreSQL; docs/store.md): the chat's one-round-trip batches
     * are sent and read by the loop thread (store.c, "The loop's turn"); 0: by the worker. */
    int dispatch_loop;
} store_options_t;

/* Opens (creating and migrating the schema as needed), synchronously. 0, or STORE_EINVALID
 * (bad options), STORE_EIO (the database cannot be used: sqlite: unreadable, read-only,
 * corrupt, not sioc's, from a newer sioc: "<path>: <what>: <SQLite's message>") or
 * STORE_EUNAVAILABLE (postgres: cannot connect: "store: <url without password>: <why>"), with
 * error filled. */
int store_open(uv_loop_t *loop, const store_options_t *options, store_t **out, char *error,
               size_t error_size);

/* Opens the database, prepares the application's statements and closes it again, with no
 * loop (`sioc check-config`). 0, or store_open's errors. */
int store_check(const store_options_t *options, char *error, size_t error_size);

/* Queues an operation (see above). Never fails synchronously: errors come through done. */
void store_request(store_t *store, store_operation_t operation, json_t *params, store_done_cb done,
                   void *data);

/* Reads from every connection of the store (the readiness probe): done runs once, with 0
 * when each has answered, else the first failure's error and message; result is NULL. */
void store_ping(store_t *store, store_done_cb done, void *data);

/* Call once. Finishes every queued operation (their done callbacks run), then releases the
 * store; closed_cb (may be NULL) runs last, on the loop thread. Requests made after this
 * (until closed_cb) fail with STORE_ECLOSED through done, never synchronously. The loop must
 * keep running until closed_cb; the store is gone after it. */
void store_close(store_t *store, void (*closed_cb)(void *data), void *data);

/* "message_add", ...; "unknown" out of range. For logs and store.statements keys. */
const char *store_operation_name(store_operation_t operation);

/* The operation named (store.statements keys), or -1. */
int store_operation_find(const char *name);

#endif
