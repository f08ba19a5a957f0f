/* TCP connections on a libuv poll handle with a corked write path.
 *
 * The socket is the connection's own: libuv only says when it is readable or writable
 * (uv_poll_t, 160 bytes), and the connection reads and writes it itself, as uSockets does. A
 * uv_tcp_t would be 248 bytes of stream state (write queue, request pointers, callbacks) that
 * the connection keeps anyway.
 *
 * Reading: every connection of a loop reads into one shared buffer (sioc__io_t.read_buffer);
 * the protocol handler must consume or copy what it needs during on_read. An idle connection
 * therefore holds no read buffer at all. A readable socket is read until it has no more, at
 * most SIOC_READS_PER_WAKEUP times (then the other connections get their turn).
 *
 * Writing: sioc__conn_write() queues a reference to a refcounted buffer slice; nothing is sent
 * until the end of the loop iteration, when every connection with queued data is flushed with
 * one writev (uWebSockets' "corking"; SIOC_WRITE_IOVECS slices per call). What the kernel took
 * is released at once; the rest stays in flight, and goes when the socket is writable again.
 *
 * Backpressure: every byte queued or in flight counts against one cap per connection
 * (max_buffered_bytes, 0 = none). Above the cap, reading stops (TCP flow control then holds
 * the peer back) and droppable writes (WebSocket pongs) are dropped; reading resumes, and
 * on_drain runs, once the unsent bytes fell to half the cap. A write to a connection already
 * holding more than twice its cap closes it: the layers above check the cap before they
 * write, so only a layer that does not is cut off there.
 *
 * Closing: sioc__conn_close() either drops queued bytes (abort) or closes gracefully: queued
 * bytes leave, then our side is shut down (FIN) and whatever the peer still sends is read and
 * discarded until its FIN or SIOC_LINGER_MS. Closing a socket with unread input makes the
 * kernel send a reset that can destroy the response before the peer reads it (a 413 answered
 * to a client still uploading): nginx calls this lingering close. The connection is freed from
 * libuv's close callback, never inside a callback of its own; on_close runs exactly once, after
 * which the connection pointer is invalid.
 *
 * TLS (transport/tls.h): a connection accepted with an SSL_CTX decrypts what it reads before
 * on_read and encrypts its queue at flush time, all of it into one slice of records, so that
 * everything above sees plaintext and the cap counts plaintext queued plus ciphertext in flight.
 * Writes are refused until the handshake is done (nothing above writes before it read); a
 * graceful close sends close_notify after the queued bytes; a fatal TLS error sends OpenSSL's
 * alert, then closes gracefully. */
#ifndef SIOC_TRANSPORT_CONNECTION_H
#define SIOC_TRANSPORT_CONNECTION_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <uv.h>

#include "core/buffer.h"
#include "core/deadline.h"
#include "core/slab.h"
#include "transport/tls.h"

#define SIOC_READ_BUFFER_SIZE (64 * 1024)
/* Reads of a readable socket per wakeup of the loop, as libuv's streams read (32). */
#define SIOC_READS_PER_WAKEUP 32
/* Slices handed to one writev: IOV_MAX on Linux. */
#define SIOC_WRITE_IOVECS 1024
#define SIOC_LINGER_MS 5000
/* Small copies (pongs, HTTP heads and short answers) queued back to back share buffers of this
 * size: one allocation for many writes, so the memory a connection holds stays close to the
 * bytes it counts against its cap. */
#define SIOC_COALESCE_SIZE 4096
/* While closing, at most this much input is read and discarded; then reading stops and TCP flow
 * control holds the peer back until the linger time is over (a client uploading 100 MB after
 * its 413 is not read to the end, and still gets to read the 413). */
#define SIOC_LINGER_MAX_BYTES (1024u * 1024)
/* The bytes a connection may hold unsent, queued and in flight together, whatever its cap: a
 * write past it closes the connection (the counts are 32 bits; half their range leaves room
 * for what TLS adds to the queue when it encrypts it). */
#define SIOC_CONN_MAX_UNSENT (UINT32_MAX / 2)
/* A write queue starts with this many slices; when full it takes SIOC_QUEUE_BURST, then
 * doubles. */
#define SIOC_QUEUE_INITIAL 4
#define SIOC_QUEUE_BURST 64
/* Queues of SIOC_QUEUE_INITIAL slices, and of SIOC_QUEUE_BURST << k for k below this less one
 * (64, 128 and 256 slices, up to 6 KiB), come from the loop's slabs (core/slab.h), larger ones
 * from malloc. A connection gives its queue back when it is empty (an idle connection holds
 * none); a broadcast takes one per recipient and grows it as a burst queues up, so from malloc
 * thousands of them would be made, grown and freed among the long-lived blocks of the clients
 * arriving meanwhile, and leave holes there. */
#define SIOC_QUEUE_SLABS 4
_Static_assert(SIOC_QUEUE_BURST > SIOC_QUEUE_INITIAL, "a queue grows into a burst's size");

typedef struct sioc__conn_s sioc__conn_t;
typedef struct sioc__io_s sioc__io_t;
typedef struct sioc__conn_slice_s sioc__conn_slice_t;

/* Called once per loop iteration before connections are flushed, so that higher layers can
 * turn what they batched during the iteration (polling responses) into writes. */
typedef void (*sioc__io_flush_hook_cb)(void *data);

struct sioc__io_s {
    uv_loop_t *loop;
    uv_prepare_t prepare;
    uv_check_t check;
    sioc__conn_t *dirty_head; /* connections with queued, unflushed writes */
    /* A connection closing gracefully whose peer stops reading is aborted after this. */
    sioc__deadline_list_t linger;
    struct {
        sioc__io_flush_hook_cb callback;
        void *data;
    } hooks[4];
    int hook_count;
    int handles_closing;
    void (*closed_cb)(sioc__io_t *io);
    /* TLS connections holding input their handler paused on, and became ready for again:
     * the idle handle hands it in (the poll would not report it: it is no longer in the socket). */
    uv_idle_t tls_idle;
    sioc__conn_t *tls_ready_head;
    /* Write queues (SIOC_QUEUE_SLABS); the timer unmaps pages left empty for SIOC_SLAB_EMPTY_MS. */
    sioc__slab_t queue_slabs[SIOC_QUEUE_SLABS];
    uv_timer_t slab_timer;
    /* Bytes made after every connection's own, for the protocol that may take it over
     * (uSockets' socket extension): an upgraded connection's state then shares its block, one
     * malloc chunk less per WebSocket. Zeroed; set before the first accept; 0 = none. */
    size_t conn_room;
    uint8_t read_buffer[SIOC_READ_BUFFER_SIZE];
    uint8_t tls_plaintext[SIOC_TLS_RECORD_SIZE];
    struct iovec write_iov[SIOC_WRITE_IOVECS]; /* one flush at a time uses it */
};

typedef struct sioc__conn_handler_s {
    /* data is mutable and valid only during the call. */
    void (*on_read)(sioc__conn_t *conn, uint8_t *data, size_t length);
    /* The peer closed, a read or write failed, or sioc__conn_close() finished. */
    void (*on_close)(sioc__conn_t *conn);
    /* Reading resumed after backpressure (see above). May be NULL. */
    void (*on_drain)(sioc__conn_t *conn);
} sioc__conn_handler_t;

/* Why reading is stopped (sioc__conn_t.paused). */
enum { SIOC__CONN_PAUSED_BY_OWNER = 1, SIOC__CONN_PAUSED_FOR_DRAIN = 2 };

struct sioc__conn_slice_s {
    sioc__buffer_t *buffer; /* one reference owned by the queue */
    uv_buf_t bytes;
};

struct sioc__conn_s {
    uv_poll_t poll; /* on fd */
    sioc__io_t *io;
    const sioc__conn_handler_t *handler;
    void *owner;               /* the protocol state that handler works on */
    sioc__conn_slice_t *queue; /* queued, not yet flushed; freed when empty */
    uint32_t queue_length;
    uint32_t queue_capacity;
    /* 32 bits each: the unsent bytes are bounded by SIOC_CONN_MAX_UNSENT. */
    /* The queue starts with the slices in flight (flushed, and with TLS encrypted, but not yet
     * taken by the kernel; the first may be partly written), and queued_bytes follow them. */
    uint32_t queued_bytes;    /* in queue, after those in flight */
    uint32_t in_flight_bytes; /* flushed, not yet taken by the kernel */
    sioc__conn_t *next_dirty;
    struct sioc__conn_closing_s *lingering; /* allocated only while closing gracefully */
    /* The flags in bits and copy_room in 16 bits fill 4 bytes beside the cap, and with the
     * byte counts in 32 bits, the copy tail a bit and a poll handle instead of a uv_tcp_t the
     * connection is 256 bytes: with a WebSocket's state in its room (56) it fits a 320-byte
     * malloc chunk (312 usable: no byte to spare). */
    uint8_t dirty : 1;
    uint8_t closing : 1;
    uint8_t reading : 1; /* the poll waits for input */
    uint8_t writing : 1; /* the poll waits for room: the kernel did not take all in flight */
    uint8_t close_after_flush : 1;
    uint8_t peer_closed : 1; /* the peer's FIN arrived */
    uint8_t tls_ready : 1;   /* in io->tls_ready_head */
    /* The last queued slice is a buffer of small copies that only this connection holds (the
     * room left at its end is copy_room); cleared as soon as anything else is queued or the
     * queue is flushed. */
    uint8_t copy_tail : 1;
    uint8_t paused;     /* SIOC__CONN_PAUSED_* */
    uint16_t copy_room; /* room left at the end of the copy tail (< SIOC_COALESCE_SIZE) */
    /* The cap on queued and in-flight bytes together; 0 = none. 32 bits (a cap past 4 GiB is
     * taken as 4 GiB, sioc__conn_set_cap). */
    uint32_t max_buffered_bytes;
    sioc__tls_t *tls; /* NULL: plaintext */
    sioc__conn_t *next_tls_ready;
    int fd; /* the connection's socket, closed once libuv let go of the poll */
};

_Static_assert(SIOC_COALESCE_SIZE <= UINT16_MAX, "copy_room is 16 bits");
/* A byte more and a WebSocket (the connection and 56 bytes of room) takes a 336-byte chunk:
 * test_connection checks the sum against malloc_usable_size. */
_Static_assert(sizeof(void *) != 8 || sizeof(sioc__conn_t) <= 256,
               "a connection and a WebSocket's state fit a 320-byte malloc chunk");

/* The io's conn_room bytes after the connection, aligned as the connection is. */
static inline void *sioc__conn_room(sioc__conn_t *conn)
{
    return conn + 1;
}

/* The connection whose room holds room. */
static inline sioc__conn_t *sioc__conn_of_room(const void *room)
{
    return (sioc__conn_t *)room - 1;
}

int sioc__io_init(sioc__io_t *io, uv_loop_t *loop);
/* Releases the loop handles; closed_cb (may be NULL) runs once libuv let go of them. Every
 * connection of this io must be closed already. */
void sioc__io_close(sioc__io_t *io, void (*closed_cb)(sioc__io_t *io));
int sioc__io_add_flush_hook(sioc__io_t *io, sioc__io_flush_hook_cb callback, void *data);

/* Takes over fd, a connected non-blocking TCP socket (accept4's), with TLS on tls_context
 * (NULL: plaintext). Returns NULL on failure, fd then closed. Reading starts at once. */
sioc__conn_t *sioc__conn_accept(sioc__io_t *io, int fd, const sioc__conn_handler_t *handler,
                                void *owner, SSL_CTX *tls_context);

/* Queues a slice of buffer (takes a new reference). Returns 0, or -1 when closing. */
int sioc__conn_write(sioc__conn_t *conn, sioc__buffer_t *buffer, const uint8_t *bytes,
                     size_t length);

/* Queues a copy of bytes. Returns 0 or -1. */
int sioc__conn_write_copy(sioc__conn_t *conn, const void *bytes, size_t length);

/* Queues a copy of bytes that may be dropped: refused (returns 1) when they would take the
 * connection past its cap. Returns 0 when queued, 1 when dropped, -1 when closing. */
int sioc__conn_write_droppable(sioc__conn_t *conn, const void *bytes, size_t length);

/* Sets the cap on the unsent bytes (see above; 0 = none). */
static inline void sioc__conn_set_cap(sioc__conn_t *conn, size_t max_buffered_bytes)
{
    conn->max_buffered_bytes =
        max_buffered_bytes > UINT32_MAX ? UINT32_MAX : (uint32_t)max_buffered_bytes;
}

/* Bytes queued or handed to the kernel but not yet written: the slow-reader measure. */
static inline size_t sioc__conn_buffered_bytes(const sioc__conn_t *conn)
{
    return (size_t)conn->queued_bytes + conn->in_flight_bytes;
}

/* 1 when the unsent bytes are over the connection's cap. */
static inline int sioc__conn_over_cap(const sioc__conn_t *conn)
{
    return conn->max_buffered_bytes > 0 &&
           sioc__conn_buffered_bytes(conn) > conn->max_buffered_bytes;
}

/* The owner's own pause (one request at a time, say); independent of backpressure. */
void sioc__conn_pause_reading(sioc__conn_t *conn);
void sioc__conn_resume_reading(sioc__conn_t *conn);

/* Stops reading until the unsent bytes fell to half the cap; on_drain runs then. */
void sioc__conn_wait_drain(sioc__conn_t *conn);

/* graceful: queued bytes are sent first, then the socket closes. Otherwise they are dropped.
 * Idempotent. */
void sioc__conn_close(sioc__conn_t *conn, int graceful);

/* Remote address as text ("127.0.0.1" or "::1"), into out; returns 0 or -1. */
int sioc__conn_remote_address(sioc__conn_t *conn, char *out, size_t size);

#endif
