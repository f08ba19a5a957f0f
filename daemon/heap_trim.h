/* Giving the heap back after a burst. glibc keeps the memory a burst freed (the write queues of
 * a broadcast to every socket, the transient allocations of thousands of handshakes) when it
 * lies between chunks still in use: only the top of the heap shrinks by itself. Idle RSS then
 * depends on how the ramp went, not on what the connections hold: on /chat with a JWT per
 * client (each arrival a user:status to every socket already there), 5.6 KB per idle client
 * before a malloc_trim(0), 4.1 KB after.
 *
 * Once a second the daemon adds up what the server did (sioc_server_stats: message bytes in
 * and out, sessions opened and closed). Once the work since the last burst is a burst itself
 * and a second was quiet, it trims, and again after 2, 4, 8 ... 256 quiet seconds: the queues
 * of a burst drain after it at the pace of the peers that read them (a generator starved of
 * CPU took minutes), and the library has no gauge of what is still queued. A trim with little
 * to return walks the free lists (milliseconds); a server under steady load reuses what it
 * frees and is never trimmed; an idle one costs one stats read a second. */
#ifndef SIOC_DAEMON_HEAP_TRIM_H
#define SIOC_DAEMON_HEAP_TRIM_H

#include <sioc.h>
#include <stdint.h>

/* Work since the last trim that makes a burst, and at most this much in the last second for
 * it to be over (message bytes; a session opened or closed counts HEAP_TRIM_SESSION_WORK). */
#define HEAP_TRIM_BURST_WORK (8u << 20)
#define HEAP_TRIM_QUIET_WORK (256u << 10)
#define HEAP_TRIM_SESSION_WORK 4096u
#define HEAP_TRIM_INTERVAL_MS 1000
/* Trims after a burst: at 1, 2, 4 ... 2^(n-1) quiet seconds. */
#define HEAP_TRIM_AFTER_BURST 9

/* The decision, apart from the timer and the stats (pure, for tests). Zeroed to start. */
typedef struct heap_trim_rule_s {
    uint64_t last_total;  /* the work counter at the previous tick */
    uint64_t since_burst; /* work since the last burst was counted */
    unsigned quiet_ticks; /* quiet ticks in a row */
    unsigned next_trim;   /* the quiet tick of the next trim */
    unsigned trims_left;  /* of the last burst */
    int started;          /* last_total is set */
} heap_trim_rule_t;

/* The server's work counter: only its growth matters. */
uint64_t heap_trim_work(const sioc_server_stats_t *stats);
/* One tick with the work counter at total: 1 when the heap should be trimmed now, else 0. A
 * counter that went back counts as no work. */
int heap_trim_due(heap_trim_rule_t *rule, uint64_t total);

/* Starts the once-a-second check of io on loop (it does not keep the loop alive). 0, or a
 * libuv error. A no-op without glibc's malloc_trim. */
int heap_trim_start(uv_loop_t *loop, sioc_server_t *io);
/* Stops and closes the timer (when started). */
void heap_trim_stop(void);

#endif
