/* Connection state recovery (socket.io 4.6+) on a recovery store (sioc_adapter.h): the log of
 * recoverable broadcasts, each delivered here once its append completed and in append order;
 * sessions written while connected (for a store that outlives the process) and at
 * disconnection; a CONNECT carrying {pid, offset} takes the session and the missed packets
 * from the store, asynchronously. */
#ifndef SIOC_SOCKETIO_SIO_RECOVERY_H
#define SIOC_SOCKETIO_SIO_RECOVERY_H

#include "socketio/sio_internal.h"

sioc__sio_recovery_t *sioc__sio_recovery_new(sioc_server_t *server);
/* Stops the timers (before the loop closes); sioc__sio_recovery_free() releases the rest:
 * operations still waiting for the store are left to free themselves when it answers. */
void sioc__sio_recovery_stop(sioc__sio_recovery_t *recovery);
void sioc__sio_recovery_free(sioc__sio_recovery_t *recovery);
sioc_recovery_store_t *sioc__sio_recovery_store(const sioc__sio_recovery_t *recovery);

/* A recoverable broadcast: appended to the log, then written with its offset (through
 * sioc__sio_deliver) once the append and every earlier one completed. Returns how many
 * sockets got it now (0 while it waits for the store). */
size_t sioc__sio_recovery_broadcast(sioc__sio_recovery_t *recovery, sioc_namespace_t *nsp,
                                    const sioc_adapter_packet_t *packet,
                                    const sioc_adapter_opts_t *opts);

/* Broadcasts waiting for the store (sioc_server_stats_t.recovery_pending); 0 if NULL. */
size_t sioc__sio_recovery_pending(const sioc__sio_recovery_t *recovery);

/* Sessions: a socket connected (or was restored), its rooms or data changed (written at the
 * end of the loop iteration), or it leaves with reason (kept if recoverable, else dropped). */
void sioc__sio_recovery_connected(sioc__sio_recovery_t *recovery, sioc_socket_t *socket);
void sioc__sio_recovery_touch(sioc__sio_recovery_t *recovery, sioc_socket_t *socket);
void sioc__sio_recovery_persist(sioc__sio_recovery_t *recovery, sioc_socket_t *socket,
                                const char *reason);

/* What a CONNECT continues with: a restored socket (recovered set, id, pid and data of the
 * session), or NULL for a fresh one. auth is the CONNECT's (a reference is held meanwhile). */
typedef void (*sioc__sio_restore_cb)(sioc__sio_client_t *client, sioc_namespace_t *nsp,
                                     json_t *auth, sioc_socket_t *restored);
/* 1 if auth has {pid, offset} and the store was asked (done runs once, maybe before this
 * returns; not at all if the client closes first), 0 if not (the caller goes on at once). */
int sioc__sio_recovery_restore(sioc__sio_recovery_t *recovery, sioc__sio_client_t *client,
                               sioc_namespace_t *nsp, json_t *auth, sioc__sio_restore_cb done);
/* The client is going away: restores it waits for end without calling back. */
void sioc__sio_recovery_forget_client(sioc__sio_recovery_t *recovery, sioc__sio_client_t *client);
/* Once the restored socket is connected: rejoins its rooms and sends the missed packets. */
void sioc__sio_recovery_replay(sioc_socket_t *socket);
/* A restored socket freed before it connected (refused, or its client left). */
void sioc__sio_recovery_release(sioc_socket_t *socket);

#endif
