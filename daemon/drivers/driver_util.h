/* What the built-in drivers share: option validation, payload checks, a token bucket, and
 * "calls": an event whose answer comes after one or more store requests.
 *
 * Async lifetimes. A store callback may run after the socket that asked went away, after the
 * daemon began stopping (the server and its namespaces may be freed by then) or after the
 * channel was torn down. A call therefore keeps the socket's id (never the pointer) and a
 * reference on the driver's state (driver_base_t); driver_call_live() tells whether sioc may
 * still be used, and the state is freed only when the channel is gone and no call is left. */
#ifndef SIOC_DAEMON_DRIVER_UTIL_H
#define SIOC_DAEMON_DRIVER_UTIL_H

#include <stdint.h>

#include "channel.h"

/* Ids of users, rooms, messages, requests and notifications coming from clients: a string of 1
 * to this many bytes or an integer (seed 002 sends a raw roomId, whatever type the app uses). */
#define DRIVER_MAX_ID_BYTES 128
/* "<prefix>:<id>" room names. */
#define DRIVER_ROOM_NAME_SIZE (DRIVER_MAX_ID_BYTES + 16)

/* The codes of the errors drivers send ({code, message}, see channel_reply_error). */
#define DRIVER_EINVALID "invalid_payload"
#define DRIVER_ENOTFOUND "not_found"
#define DRIVER_EFORBIDDEN "forbidden"
#define DRIVER_ECONFLICT "conflict"
#define DRIVER_ETOOLONG "too_long"
#define DRIVER_ERATELIMIT "rate_limited"
#define DRIVER_EUNAVAILABLE "unavailable"
#define DRIVER_ERECEIVEONLY "receive_only"

/* ---- options ----------------------------------------------------------------------------------
 */

/* Refuses any key of the channel's options that is not in known (NULL-terminated; may be just
 * {NULL}). 0, or -1 with error "<file>:<line>: channels."/x".options.key: unknown key (...)". */
int driver_check_option_keys(const config_t *config, const config_channel_t *channel,
                             const char *const *known, char *error, size_t error_size);
/* Fills error for options.key (key NULL: the channel itself) as config.c does; returns -1. */
int driver_option_error(const config_t *config, const config_channel_t *channel, const char *key,
                        char *error, size_t error_size, const char *format, ...)
    __attribute__((format(printf, 6, 7)));
/* Drivers that act for a user refuse channels with auth "none", and "optional" unless they
 * can bind an anonymous socket later (allow_optional: notifications' SYNC_SOCKET). 0 or -1
 * with error. */
int driver_require_authentication(const config_t *config, const config_channel_t *channel,
                                  const char *driver_name, int allow_optional, char *error,
                                  size_t error_size);

/* ---- payloads (pure) ------------------------------------------------------------------------- */

/* The event's first argument (borrowed) or NULL. */
json_t *driver_payload(const sioc_event_t *event);
/* payload[key] when payload is an object, else payload itself (a raw id, as seed 002 sends). */
json_t *driver_id_argument(json_t *payload, const char *key);
/* Writes the id value (a string of 1..DRIVER_MAX_ID_BYTES bytes without NUL, or an integer) as
 * text into out. 0, or -1 when value is no such id (out is then ""). */
int driver_id_text(json_t *value, char out[DRIVER_MAX_ID_BYTES + 1]);
/* An id as a store param, keeping its JSON type: a copy of value when it is an integer or a
 * string, else text as a string. A new reference. */
json_t *driver_id_param(json_t *value, const char *text);

typedef enum driver_text_check {
    DRIVER_TEXT_OK,
    DRIVER_TEXT_MISSING,  /* absent, not a string, or empty */
    DRIVER_TEXT_INVALID,  /* contains a NUL character */
    DRIVER_TEXT_TOO_LONG, /* more than max_bytes bytes */
} driver_text_check_t;
driver_text_check_t driver_check_text(json_t *value, size_t max_bytes);

/* ---- rate limiting (pure) -------------------------------------------------------------------- */

/* A token bucket: burst tokens at most, rate tokens added per second. The rate and the burst are
 * the channel's (the caller passes them), not a copy in every socket's state (issue 12). */
typedef struct driver_bucket_s {
    double tokens;
    uint64_t last_ms;
} driver_bucket_t;

/* Starts full. */
void driver_bucket_init(driver_bucket_t *bucket, uint32_t burst, uint64_t now_ms);
/* Takes one token: 1, or 0 when the bucket is empty (nothing taken). A clock that went back
 * adds nothing. */
int driver_bucket_take(driver_bucket_t *bucket, double rate, uint32_t burst, uint64_t now_ms);

/* ---- driver state and calls ------------------------------------------------------------------ */

#define DRIVER_MAX_HANDLERS 24

/* An event handler registered with driver_on. */
typedef struct driver_handler_s {
    struct driver_base_s *base;
    const char *error_event; /* static: where a refusal of a full queue goes */
    sioc_event_cb callback;
    void *data;
} driver_handler_t;

typedef struct driver_base_s driver_base_t;
struct driver_base_s {
    channel_t *channel;                   /* NULL once the channel was torn down */
    unsigned references;                  /* one for the channel, one per call in flight */
    void (*release)(driver_base_t *base); /* frees the driver's state (base is inside it) */
    driver_handler_t handlers[DRIVER_MAX_HANDLERS]; /* the namespace points at them */
    size_t handler_count;
    /* The socket's user (a new reference) for a driver that keeps it in its own state instead
     * of socket.data (chat); NULL: channel_user(). */
    json_t *(*socket_user)(sioc_socket_t *socket);
};

/* Sets up base with the channel's reference. */
void driver_base_init(driver_base_t *base, channel_t *channel, void (*release)(driver_base_t *));
/* For teardown: forgets the channel and drops its reference. */
void driver_base_detach(driver_base_t *base);
/* The channel while sioc may be used: not torn down and the daemon not stopping. */
channel_t *driver_base_channel(const driver_base_t *base);

/* ---- per-socket order ------------------------------------------------------------------------
 *
 * Node runs a socket's handlers in arrival order, and the seeds rely on it (seed 002's client
 * emits room:join and message:send back to back). A handler registered with driver_on runs at
 * once when its socket has no call in flight; otherwise the event waits in the socket's queue
 * (at most limits.maxQueuedEvents, then refused with "rate_limited") and runs when the calls
 * of the events before it have answered. Other sockets are not held up. A driver whose sockets
 * are ordered keeps a driver_socket_t as the FIRST member of its sioc_socket_set_user state. */

typedef struct driver_queue_s driver_queue_t;
/* 16 bytes (issue 12: one per socket on every ordered channel): the events waiting are a block
 * of their own, made for the first and freed with the last, as most sockets never have one. */
typedef struct driver_socket_s {
    /* Tells a recovered socket (same id) from the one a call began on; never 0. 32 bits: two
     * sockets of one id would have to be 2^32 connections apart with a call of the first still
     * out for them to be taken one for the other. */
    uint32_t serial;
    uint32_t busy : 31;    /* calls of this socket in flight */
    uint32_t draining : 1; /* the queue is being run (no re-entry) */
    driver_queue_t *queue; /* the events waiting, NULL when none */
} driver_socket_t;

void driver_socket_init(driver_socket_t *order);
/* Drops the waiting events (the socket is gone). */
void driver_socket_cleanup(driver_socket_t *order);
/* Registers callback for event on the channel's namespace, in per-socket order. error_event
 * names the event a refusal goes to when the client asked for no ack. 0 or -1 (too many). */
int driver_on(driver_base_t *base, const char *event, const char *error_event,
              sioc_event_cb callback, void *data);
/* The same for every event of the namespace (sioc_namespace_on_any). */
int driver_on_any(driver_base_t *base, const char *error_event, sioc_event_cb callback, void *data);

#define DRIVER_EVENT_NAME_SIZE 64

typedef struct driver_call_s {
    driver_base_t *base;
    sioc_namespace_t *nsp;
    /* Owned; "" for calls no socket waits for. Not a fixed SIOC_ID_SIZE: an EIO3 client's id
     * outside "/" is "<namespace>#<engine id>", longer. */
    char *socket_id;
    char event_name[DRIVER_EVENT_NAME_SIZE];
    const char *error_event; /* static */
    int64_t ack_id;          /* < 0: the client asked for no acknowledgement */
    json_t *user;            /* the asking user (a reference) or NULL */
    char *user_id;           /* its id as text (NULL with no user) */
    json_t *context;         /* what the flow carries from step to step (an object) */
    size_t pending;          /* store requests still out, for fan-outs */
    void (*next)(struct driver_call_s *call); /* the step after a shared one */
    uint32_t order_serial; /* != 0: counted in its socket's driver_socket_t busy */
} driver_call_t;

/* A call answering event of socket, carrying the socket's user. With event NULL nothing is
 * answered (work a connection or a disconnection started). While the socket has its
 * driver_socket_t state, the call holds the socket's later events back until it is freed.
 * NULL when out of memory. */
driver_call_t *driver_call_new(driver_base_t *base, sioc_socket_t *socket,
                               const sioc_event_t *event, const char *error_event);
/* A call for a user without a socket (a user who was on a node that is gone): user is
 * {"id": user_id}. NULL when out of memory or the id is not one. */
driver_call_t *driver_call_new_for_user(driver_base_t *base, sioc_namespace_t *nsp,
                                        json_t *user_id);
void driver_call_free(driver_call_t *call);
/* 1 while sioc may be used for this call (see driver_base_channel). */
int driver_call_live(const driver_call_t *call);
/* For the first line of a store callback: when the call is no longer live, frees it and
 * returns 1. */
int driver_call_abandoned(driver_call_t *call);
/* The asking socket if it is still connected (and the call live), else NULL. */
sioc_socket_t *driver_call_socket(const driver_call_t *call);
/* The store request of the next step (params taken). */
void driver_call_request(driver_call_t *call, store_operation_t operation, json_t *params,
                         store_done_cb done);
/* Answers {ok:true, ...result} (taken, may be NULL) if asked, and frees the call. */
void driver_call_finish(driver_call_t *call, json_t *result);
/* Answers the error (ack or error_event) and frees the call. */
void driver_call_fail(driver_call_t *call, const char *code, const char *message);
/* A store error answered and the call freed: ENOTFOUND, ECONFLICT and EINVALID in the store's
 * words (not_found, conflict, invalid_payload); the others logged and answered "unavailable". */
void driver_call_store_failed(driver_call_t *call, store_operation_t operation, int error,
                              const char *message);
/* context[key] as a string ("" when absent). */
const char *driver_call_string(const driver_call_t *call, const char *key);
/* The user's id as JSON (borrowed) and as text. */
json_t *driver_call_user_id(const driver_call_t *call);
const char *driver_call_user_id_text(const driver_call_t *call);

/* ---- emitting -------------------------------------------------------------------------------- */

/* "<prefix><id>" into out; 0, or -1 when it does not fit. */
int driver_room_name(char *out, size_t size, const char *prefix, const char *id);
/* event with one argument (taken) to everyone in room (NULL: the whole namespace) but the
 * socket with except_id (NULL: no one is left out). */
void driver_emit_to_room(sioc_namespace_t *nsp, const char *room, const char *except_id,
                         const char *event, json_t *argument);
/* {id, firstName, lastName, role, avatar} of a user object, null and absent fields left out
 * (a new object of copies, fit for store params). */
json_t *driver_user_profile(json_t *user);
/* The fields of a user object, "id" first (bit i of a field mask is driver_profile_fields[i]). */
#define DRIVER_PROFILE_FIELDS 5
extern const char *const driver_profile_fields[DRIVER_PROFILE_FIELDS + 1];
/* Fills the profile fields user lacks (absent or null) from stored, the user the store
 * keeps: a passport session often carries only an id, while the back end stored names. */
void driver_user_complete(json_t *user, json_t *stored);
/* The same, also taking stored's value for the fields in the mask refresh (filled earlier from
 * an older answer); returns the mask of the fields set. */
unsigned driver_user_complete_fields(json_t *user, json_t *stored, unsigned refresh);

#endif
