/* The daemon's embedded recovery store: sioc_recovery_store_t (sioc_adapter.h) on a SQLite file
 * of its own, so that `sioc serve` restarted (SIGTERM or SIGKILL) recovers the sessions of the
 * clients that come back within the recovery window. docs/recovery.md ("The daemon") says what
 * it guarantees and what it costs.
 *
 * Threading, as daemon/store.c: one worker thread owns the connection; the loop thread queues
 * operations (copies of what it was given) and the worker runs everything queued in one
 * transaction (one COMMIT per batch: under load many appends share it), then posts the batch
 * back through a uv_async_t; completions run on the loop, in queue order. An append completes
 * (with its offset) only after its COMMIT: a packet counts as sent only once it is in the file.
 *
 * Durability: WAL with synchronous=NORMAL. A COMMIT is in the WAL file, in the kernel's page
 * cache, when it returns: it survives the process being killed (SIGKILL, a crash, the OOM
 * killer), not a power cut or a kernel crash (the last commits before it may be lost; the file
 * stays consistent). The store's own file (not the application's database) because its writes
 * (one per broadcast batch) would otherwise compete for SQLite's single writer lock with the
 * application's, and its content is disposable: deleting the file (daemon stopped) only means
 * the clients of the moment get fresh sessions.
 *
 * Of two clients presenting one (pid, offset), the first is the only one restored (a claim
 * kept on the loop thread for 10 s or until the session is saved disconnected again).
 *
 * Expiry and bounds: packets older than the window and sessions past their time to live are
 * never given out and are deleted once a second; at most max_packets packets and max_sessions
 * sessions are kept (the oldest go first). While the worker waits (the file locked, a disk that
 * hangs), at most max_sessions operations other than appends are queued; the next are refused
 * (save and drop skipped, restore SIOC_ENOBUFS). Appends are bounded by the Socket.IO layer
 * (sioc_server_options_t.recovery_max_pending).
 *
 * The chat driver's presence (drivers/chat.c) also keeps, per namespace, the users it holds
 * online here, so that a restarted daemon knows whom to take offline when they do not come
 * back. */
#ifndef SIOC_DAEMON_RECOVERY_STORE_H
#define SIOC_DAEMON_RECOVERY_STORE_H

#include <jansson.h>
#include <sioc_adapter.h>
#include <stdint.h>
#include <uv.h>

typedef struct recovery_store_s recovery_store_t;

typedef struct recovery_store_options_s {
    const char *path;      /* the SQLite file (created if missing) */
    uint32_t window_ms;    /* max_disconnection_duration_ms: how long a packet is kept */
    uint64_t max_packets;  /* log rows kept at most */
    uint64_t max_sessions; /* session rows kept at most */
} recovery_store_options_t;

/* Opens (creating the tables of a new file) synchronously, then starts the worker. 0, or -1
 * with error filled (a file that is not ours, or unreadable). */
int recovery_store_open(uv_loop_t *loop, const recovery_store_options_t *options,
                        recovery_store_t **out, char *error, size_t error_size);
/* What sioc_server_options_t.recovery_store takes (keeps_connected 1). */
sioc_recovery_store_t *recovery_store_base(recovery_store_t *store);
/* Finishes every queued operation (their callbacks run), stops the worker, closes the file,
 * frees the store, then calls closed_cb. Operations after this fail with SIOC_ECLOSED. */
void recovery_store_close(recovery_store_t *store, void (*closed_cb)(void *data), void *data);

/* Presence rows: users the chat driver of namespace nsp holds online (key: the id's text).
 * rooms NULL deletes the row; otherwise rooms is a JSON array (the study rooms to announce the
 * offline to). Written in queue order with the other operations; no answer. */
void recovery_store_presence_set(recovery_store_t *store, const char *nsp, const char *key,
                                 json_t *user_id, json_t *rooms);
/* The rows of nsp read at open: [{"id": <user id>, "rooms": [...]}, ...] (a new reference;
 * garbage rows are skipped). Each call after the first returns an empty array. */
json_t *recovery_store_presence_take(recovery_store_t *store, const char *nsp);

#endif
