/* Cluster-wide presence for the chat driver: which users have a socket on some node.
 *
 * Each node tells the others (serverSideEmit "sioc:presence" on the channel's namespace) when a
 * user's first local socket comes ("up") and the last one leaves ("down"), and every interval
 * the whole set it has ("sync", also its heartbeat). A node not heard of for three intervals is
 * gone: its users who are on no other node go offline, announced by one node only (the live
 * node with the smallest uid). The driver announces a user online when its first local socket
 * comes and no other node has the user, and offline when its last local socket leaves and no
 * other node has it, so user:status goes out once per user in the cluster as long as the nodes
 * agree; two first sockets on two nodes within one message's flight may both announce. */
#ifndef SIOC_DAEMON_PRESENCE_H
#define SIOC_DAEMON_PRESENCE_H

#include <jansson.h>
#include <sioc.h>
#include <stdint.h>

typedef struct presence_s presence_t;

/* Users in one message: a bound on what one node may make the others hold. */
#define PRESENCE_MAX_USERS 100000
/* A node not heard of for this many intervals is gone. */
#define PRESENCE_MISSED_INTERVALS 3

typedef enum { PRESENCE_UP, PRESENCE_DOWN, PRESENCE_SYNC } presence_op_t;

/* One gossip message, decoded. Everything is borrowed from the event's arguments. */
typedef struct {
    const char *node; /* the sender's adapter uid: 1 to SIOC_ADAPTER_UID_SIZE - 1 bytes, no NUL */
    presence_op_t op;
    json_t *users; /* an array of at most PRESENCE_MAX_USERS valid user ids (driver_id_text) */
} presence_message_t;

/* Decodes the arguments of one "sioc:presence" event (another node's, so untrusted): 0, or -1
 * with *error saying why (a static string) and *out zeroed. Extra keys are ignored. Pure. */
int presence_decode(json_t *args, presence_message_t *out, const char **error);
/* 1 when a node last heard of at seen_ms is gone at now_ms (intervals of interval_ms). Pure. */
int presence_node_gone(uint64_t now_ms, uint64_t seen_ms, uint32_t interval_ms);

/* A user (its id as the token carries it, borrowed) who was only on a node that is gone. */
typedef void (*presence_gone_cb)(json_t *user_id, void *data);

/* Starts the exchange on nsp every interval_ms; NULL when out of memory. */
presence_t *presence_new(sioc_namespace_t *nsp, uv_loop_t *loop, uint32_t interval_ms,
                         presence_gone_cb gone, void *data);
/* Stops it (the memory goes once the timer is closed). Accepts NULL. */
void presence_free(presence_t *presence);
/* The user's first socket on this node came: 1 when no other node has the user (announce it
 * online), 0 when one has. */
int presence_up(presence_t *presence, json_t *user_id);
/* The user's last socket on this node left: 1 when no other node has the user (announce it
 * offline), 0 when one has. */
int presence_down(presence_t *presence, json_t *user_id);

#endif
