/* Channels: a namespace from the configuration, served by a driver. The framework (channel.c)
 * creates the namespace, installs the authentication middleware the channel asks for, and
 * hands the namespace to the driver; a driver registers its event handlers and keeps its own
 * state. A new driver is one file in daemon/drivers/ plus one line in the driver table.
 *
 * After authentication, a socket's data holds {"user": {id, firstName, lastName, role,
 * avatar}} (absent for anonymous sockets) and, with session auth, "sessionId". The user is
 * never taken from an event payload. The chat driver takes data that holds the user alone
 * into a record per user and has the library make it again when something reads it
 * (sioc_namespace_on_socket_data): seen from outside, data is the same. */
#ifndef SIOC_DAEMON_CHANNEL_H
#define SIOC_DAEMON_CHANNEL_H

#include <sioc.h>

#include "config.h"
#include "store.h"

typedef struct daemon_s daemon_t;
typedef struct channel_s channel_t;

typedef struct driver_s {
    const char *name;
    /* Validates the channel's options without starting anything (`sioc check-config` runs it
     * too). 0, or -1 with error filled ("<file>:<line>: channels.\"/x\".options.y: ...").
     * May be NULL when the driver takes no options. */
    int (*check)(const config_t *config, const config_channel_t *channel, char *error,
                 size_t error_size);
    /* Registers handlers on channel->nsp (check already passed). 0, or -1 with error filled. */
    int (*setup)(channel_t *channel, char *error, size_t error_size);
    /* Releases channel->state (sockets are gone by then). May be NULL. */
    void (*teardown)(channel_t *channel);
} driver_t;

struct channel_s {
    daemon_t *daemon;
    const config_channel_t *config;
    const driver_t *driver;
    sioc_namespace_t *nsp;
    void *state;  /* the driver's */
    int disabled; /* turned off by a SIGHUP: refuses connections, not found by channel_find */
};

struct daemon_s {
    uv_loop_t *loop;
    config_t *config;
    sioc_server_t *io;
    store_t *store;
    struct auth_jwt_s *jwt;                /* NULL when JWT auth is off */
    struct auth_session_store_s *sessions; /* NULL when session auth is off */
    struct sioc_redis_s *cluster;          /* the cluster's Redis; NULL without a cluster */
    struct api_s *api;                     /* NULL when the HTTP API is off */
    struct recovery_store_s *recovery;     /* the embedded recovery store, or NULL */
    channel_t *channels;
    size_t channel_count;
    int stopping;
};

/* The driver table. */
const driver_t *driver_find(const char *name);
extern const driver_t driver_main;
extern const driver_t driver_chat;
extern const driver_t driver_notifications;
extern const driver_t driver_feed;
extern const driver_t driver_bench;
extern const driver_t driver_proxy;

/* Runs every channel's driver check (unknown drivers too). 0, or -1 with error filled. */
int channel_check_all(const config_t *config, char *error, size_t error_size);
/* Creates every enabled channel. 0, or -1 with error filled. */
int channel_setup_all(daemon_t *daemon, char *error, size_t error_size);
void channel_teardown_all(daemon_t *daemon);
/* The enabled channel on namespace name, or NULL. */
channel_t *channel_find(daemon_t *daemon, const char *name);
/* SIGHUP: turns the channel of the running configuration on (enabled 1) or off. Off: its sockets
 * here are disconnected as by Node's nsp.disconnectSockets() (the client's reason is "io server
 * disconnect", after which it does not reconnect by itself) and new ones are refused as for a
 * namespace that does not exist ("Invalid namespace"); the namespace and the driver's state stay,
 * so that turning it on again lifts the refusal. On: a channel disabled since the start is set up
 * as at start. Returns how many sockets were disconnected (0 when turned on), or -1 with error. */
int channel_set_enabled(daemon_t *daemon, config_channel_t *config, int enabled, char *error,
                        size_t error_size);

/* Ids (users, rooms) keep the JSON type they came with (a token's `id: 1` stays the number 1 in
 * every payload); their text, for room names and the store, fits in this many bytes. */
#define CHANNEL_ID_SIZE 129

/* The authenticated user of a socket ({id, firstName, ...}, borrowed) or NULL. */
json_t *channel_user(sioc_socket_t *socket);
/* The user's id as text into out: 0, or -1 (out "") for a socket without a user. */
int channel_user_id_text(sioc_socket_t *socket, char out[CHANNEL_ID_SIZE]);
/* The same for a user object ({id, ...}, borrowed). */
int channel_id_text_of(json_t *user, char out[CHANNEL_ID_SIZE]);

/* Binds a socket of an optional-auth channel to the user it proves now: token (a JSON string
 * holding a JWT; NULL or not a string: none) or else the session of its handshake's cookie,
 * read again (the user may have logged in since the socket opened). done runs exactly once,
 * now or later, with the socket (NULL when it went away meanwhile) and NULL or the refusal;
 * on success socket.data.user is set. A claim without proof binds nothing. */
typedef void (*channel_bound_cb)(sioc_socket_t *socket, const char *problem, void *data);
void channel_bind_user(channel_t *channel, sioc_socket_t *socket, json_t *token,
                       channel_bound_cb done, void *data);

/* Answers an event's problem the way the seeds' clients can see it: through the ack when the
 * client asked for one ({ok:false, error:{code, message}}), otherwise as an event error_event
 * with {code, message}. */
void channel_reply_error(sioc_socket_t *socket, const sioc_event_t *event, const char *error_event,
                         const char *code, const char *message);
/* Acknowledges with {ok:true, ...fields of result (taken, may be NULL)} when asked for. */
void channel_reply_ok(sioc_socket_t *socket, const sioc_event_t *event, json_t *result);

#endif
