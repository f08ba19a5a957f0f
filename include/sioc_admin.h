/* libsioc admin: the server side of the @socket.io/admin-ui dashboard (0.5), as Node's
 * instrument(io, options) provides it, built only on the public API of sioc.h, so that any
 * program using libsioc can be watched by the dashboard at https://admin.socket.io (or the
 * package's own ui/dist files served anywhere).
 *
 * What it does, as @socket.io/admin-ui 0.5.1 does:
 * - an admin namespace ("/admin") with either no authentication or basic authentication: the
 *   username and a bcrypt hash of the password ($2a$, $2b$ or $2y$, as bcryptjs takes it;
 *   checked with libcrypt's crypt_r on libuv's thread pool). A successful login is answered
 *   with a "session" event carrying a session id that later connections may present as
 *   auth.sessionId instead of the password; a failed one with connect_error "invalid
 *   credentials". At most 16 checks run or wait at once: past that, attempts are refused as
 *   failed ones, so that a flood of logins cannot queue bcrypt work without bound.
 * - "config" ({supportedFeatures}) to every admin socket on connection, and "server_stats"
 *   every stats_interval_ms to the admin namespace (through the adapter, so that with a cluster
 *   adapter a dashboard connected to one server hears every server).
 * - development mode: "all_sockets" (fetched from every server) on connection, then
 *   socket_connected / socket_updated / socket_disconnected / room_joined / room_left /
 *   event_received / event_sent as they happen. The admin module puts {"_admin": {clientId,
 *   transport}} in each socket's data (as Node does) so that servers of a cluster can describe
 *   each other's sockets; it is left out of the data the dashboard is shown.
 * - the actions emit, join, leave and _disconnect, applied through the adapter (every server of
 *   a cluster applies them), unless readonly.
 *
 * The admin module takes the server's observer (sioc_server_observe): a program that uses the
 * admin module cannot install an observer of its own. The server's CORS configuration must let
 * the dashboard's origin in with credentials (it connects with withCredentials: true). */
#ifndef SIOC_ADMIN_H
#define SIOC_ADMIN_H

#include "sioc.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sioc_admin_s sioc_admin_t;

typedef enum sioc_admin_mode {
    SIOC_ADMIN_DEVELOPMENT = 0, /* every socket, room and event is reported */
    SIOC_ADMIN_PRODUCTION = 1,  /* only server_stats: nothing per socket or per event */
} sioc_admin_mode_t;

typedef struct sioc_admin_options_s {
    const char *namespace_name; /* "/admin" */
    /* Basic authentication: both set, or both NULL for none (Node's auth: false). */
    const char *username;
    const char *password_hash;  /* a bcrypt hash: "$2b$10$..." */
    int readonly;               /* 0: the dashboard may emit, join, leave, disconnect */
    const char *server_id;      /* NULL: the host name (Node's default outside cluster workers) */
    sioc_admin_mode_t mode;     /* SIOC_ADMIN_DEVELOPMENT, Node's default */
    uint32_t stats_interval_ms; /* 2000 */
    size_t max_sessions;        /* session ids kept (the oldest go first): 1000 */
} sioc_admin_options_t;

SIOC_API void sioc_admin_options_init(sioc_admin_options_t *options);

/* Instruments server. Options are copied. SIOC_EINVAL when only one of username and
 * password_hash is set or the hash is not a bcrypt hash (the message explains: error, may be
 * NULL), SIOC_ENOMEM. */
SIOC_API int sioc_admin_new(sioc_server_t *server, const sioc_admin_options_t *options,
                            sioc_admin_t **out, const char **error);

/* Stops reporting and removes the observer; the admin is freed once its timer and any password
 * check in progress are done (within one bcrypt computation). Call it when closing the server,
 * right before sioc_server_close: the admin namespace (which belongs to the server) keeps its
 * middleware and handlers, which refer to the admin, so the server must not take connections
 * between the two calls. */
SIOC_API void sioc_admin_close(sioc_admin_t *admin);

#ifdef __cplusplus
}
#endif

#endif
