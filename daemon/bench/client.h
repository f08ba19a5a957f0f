/* One simulated Socket.IO client of the load generator: the libuv glue around codec.h.
 *
 * A client connects from one of the run's loopback source addresses, opens an Engine.IO
 * session over WebSocket (or long-polling, for the connect scenario), answers pings, sends the
 * namespace CONNECT with its auth and then emits events and receives events and acks, handed to
 * the scenario through bench_client_callbacks_t. Reads go into the run's one shared buffer; a
 * client only keeps the bytes of an incomplete frame, so ten thousand idle clients hold little
 * more than their uv_tcp_t. */
#ifndef SIOC_BENCH_CLIENT_H
#define SIOC_BENCH_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "bench/codec.h"

typedef struct bench_run_s bench_run_t;
typedef struct bench_client_s bench_client_t;

typedef struct bench_client_callbacks_s {
    /* The namespace CONNECT was answered: the client may emit. */
    void (*on_ready)(bench_client_t *client);
    /* An EVENT or an ACK for the client's namespace (the packet is a view into the read
     * buffer, valid during the call). */
    void (*on_event)(bench_client_t *client, const bench_packet_t *packet);
    void (*on_ack)(bench_client_t *client, const bench_packet_t *packet);
    /* The client failed (reason is static text) and is closing: before on_ready this is a
     * failed connection, after it a lost one. Not called for bench_client_close(). */
    void (*on_failure)(bench_client_t *client, const char *reason);
    /* The handle is closed: the slot may be connected again. May be NULL. */
    void (*on_closed)(bench_client_t *client);
} bench_client_callbacks_t;

typedef enum bench_client_state {
    BENCH_CLIENT_IDLE,       /* never connected, or closed */
    BENCH_CLIENT_CONNECTING, /* TCP */
    BENCH_CLIENT_UPGRADING,  /* HTTP upgrade sent, waiting for 101 */
    BENCH_CLIENT_OPENING,    /* waiting for the Engine.IO open packet */
    BENCH_CLIENT_JOINING,    /* namespace CONNECT sent */
    BENCH_CLIENT_READY,
    BENCH_CLIENT_POLL_OPEN,    /* polling: handshake GET sent */
    BENCH_CLIENT_POLL_POST,    /* polling: CONNECT POST sent */
    BENCH_CLIENT_POLL_GET,     /* polling: GET waiting for the CONNECT answer */
    BENCH_CLIENT_POLL_LEAVING, /* polling: Engine.IO close POST sent */
    BENCH_CLIENT_CLOSING,
} bench_client_state_t;

struct bench_client_s {
    uv_tcp_t tcp;
    uv_connect_t connect_request;
    bench_run_t *run;
    const bench_client_callbacks_t *callbacks;
    const char *auth; /* JSON text of the CONNECT payload, borrowed (NULL: none) */
    size_t index;     /* the slot; also picks the source address */
    bench_client_state_t state;
    int polling;
    uint32_t mask_seed;      /* xorshift state for frame masks */
    uint32_t pending_writes; /* uv_write requests in flight */
    uint8_t *carry;          /* bytes of an incomplete frame or response, malloc'd */
    size_t carry_length;
    size_t carry_capacity;
    char *sid;        /* polling session id, malloc'd */
    int poll_holding; /* polling, ready: 1 a GET pending, 2 a pong POST pending */
    int64_t next_ack_id;
    uint64_t started_at; /* uv_hrtime() when the connection began */
    /* For the scenarios' own use. */
    uint64_t sent_at;
    int64_t waiting_ack;
    uint64_t counter;
    void *user;
};

/* Prepares a slot (once; the client is IDLE after). */
void bench_client_init(bench_client_t *client, bench_run_t *run, size_t index,
                       const bench_client_callbacks_t *callbacks);

/* Starts a connection; auth (borrowed, may be NULL) is sent with the namespace CONNECT.
 * 0 (a failure to start is reported through on_failure like any failed connection), or a
 * negative libuv error when no handle could be made (the client stays IDLE). */
int bench_client_connect(bench_client_t *client, const char *auth, int polling);

/* Emits event with args (JSON text of the arguments, without brackets) to the run's
 * namespace; with_ack asks for an acknowledgement and returns its id in *ack_id. 0, or a
 * negative error (SIOC-style: -22 when not ready or too long). */
int bench_client_emit(bench_client_t *client, const char *event, const char *args, int with_ack,
                      int64_t *ack_id);

/* Keeps a ready polling session open as an idle client of a browser does: a GET always
 * pending, each ping answered with a pong POST and the GET sent again. */
int bench_client_poll_hold(bench_client_t *client);

/* Leaves a ready polling session with the Engine.IO close packet, so that the server does not
 * keep it until its ping timeout; the connection closes once the POST is answered. */
int bench_client_poll_leave(bench_client_t *client);

/* Closes the connection (no on_failure); on_closed follows. Safe to call in any state and
 * from inside the client's own callbacks (the handle is released by libuv later). */
void bench_client_close(bench_client_t *client);

int bench_client_is_open(const bench_client_t *client);

#endif
