/* Connection state recovery (socket.io 4.6+): every broadcast EVENT without an ack gets an
 * offset as its last argument and is kept for max_disconnection_duration_ms; a socket that
 * drops for a recoverable reason leaves a session (id, rooms, data); a CONNECT carrying
 * {pid, offset} within the window gets the same socket id, rooms and data back, and the packets
 * it missed. Kept packets are the encoded buffers that were sent, so a replay costs no
 * encoding. */
#ifndef SIOC_SOCKETIO_SIO_RECOVERY_H
#define SIOC_SOCKETIO_SIO_RECOVERY_H

#include "socketio/sio_internal.h"

sioc__sio_recovery_t *sioc__sio_recovery_new(sioc_server_t *server);
/* Stops the expiry timer (before the loop closes); sioc__sio_recovery_free() releases the rest. */
void sioc__sio_recovery_stop(sioc__sio_recovery_t *recovery);
void sioc__sio_recovery_free(sioc__sio_recovery_t *recovery);

/* Appends a fresh offset to an EVENT packet's arguments and remembers it for _store(). */
int sioc__sio_recovery_add_offset(sioc__sio_recovery_t *recovery, sioc__sio_packet_t *packet);
/* Keeps the encoded packet (new references) with the broadcast's rooms, under the offset the
 * last _add_offset() gave. */
void sioc__sio_recovery_store(sioc__sio_recovery_t *recovery, sioc_namespace_t *nsp,
                              const sioc_adapter_opts_t *opts, const sioc__sio_encoded_t *encoded);
/* Keeps a session for a socket leaving for a recoverable reason. */
void sioc__sio_recovery_persist(sioc__sio_recovery_t *recovery, sioc_socket_t *socket,
                                const char *reason);
/* A socket restored from auth {pid, offset}, or NULL (a fresh socket is then created). */
sioc_socket_t *sioc__sio_recovery_restore(sioc__sio_recovery_t *recovery,
                                          sioc__sio_client_t *client, sioc_namespace_t *nsp,
                                          json_t *auth);
/* After the CONNECT reply: rejoins the rooms and sends the missed packets. */
void sioc__sio_recovery_replay(sioc__sio_recovery_t *recovery, sioc_socket_t *socket);

#endif
