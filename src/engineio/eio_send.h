/* The part of the Engine.IO server that the Socket.IO layer uses directly, beyond the public
 * header: sending a shared buffer (encoded once for a whole broadcast) without a copy. */
#ifndef SIOC_ENGINEIO_EIO_SEND_H
#define SIOC_ENGINEIO_EIO_SEND_H

#include "core/buffer.h"
#include "sioc.h"

/* Queues an Engine.IO packet held in a shared buffer (a new reference is taken): a text packet
 * starts with its type character ("4..."), a binary buffer is a binary message. Returns 0,
 * SIOC_ECLOSED, or SIOC_ENOBUFS (the socket was closed as a slow reader). */
int sioc__eio_socket_send_buffer(sioc_eio_socket_t *socket, sioc__buffer_t *packet);

/* 1 when a volatile packet would leave now (Node's "transport writable"). */
int sioc__eio_socket_writable(const sioc_eio_socket_t *socket);

/* Every session of server opened from now on carries size zeroed bytes after it in its own
 * block, for the layer above (the Socket.IO client): one allocation per connection instead of
 * two. They live as long as the session (freed at the end of the loop iteration of its
 * on_close) and are aligned for pointers and 64-bit integers. */
void sioc__eio_server_set_session_extra(sioc_eio_server_t *server, size_t size);
/* Those bytes, or NULL when the session was opened without them. */
void *sioc__eio_socket_extra(sioc_eio_socket_t *socket);

/* Closes the session with an explicit reason (Socket.IO's "forced server close"). */
void sioc__eio_socket_close_with_reason(sioc_eio_socket_t *socket, const char *reason);

#endif
