/* Deadline lists: many timeouts that all have the same delay (every session's ping interval,
 * every pong wait, every HTTP header timeout) expire in the order they were armed, so a FIFO
 * list with one libuv timer serves them all in O(1). A session then carries a 32-byte entry
 * instead of a 150-byte uv_timer_t, which matters at 10,000+ idle connections. */
#ifndef SIOC_CORE_DEADLINE_H
#define SIOC_CORE_DEADLINE_H

#include <stdint.h>
#include <uv.h>

typedef struct sioc_deadline_list_s sioc_deadline_list_t;

typedef struct sioc_deadline_s {
    uint64_t due_ms;            /* loop time at which it expires */
    sioc_deadline_list_t *list; /* the list it is armed on; NULL when not armed */
    struct sioc_deadline_s *previous;
    struct sioc_deadline_s *next;
} sioc_deadline_t;
typedef void (*sioc_deadline_expired_cb)(sioc_deadline_list_t *list, sioc_deadline_t *deadline);

struct sioc_deadline_list_s {
    uv_timer_t timer;
    uint64_t delay_ms;
    sioc_deadline_t *head;
    sioc_deadline_t *tail;
    sioc_deadline_expired_cb expired;
    void *data; /* for the owner */
};

/* Initialises the list's timer on loop. Every entry armed on it expires delay_ms later. */
int sioc_deadline_list_init(uv_loop_t *loop, sioc_deadline_list_t *list, uint64_t delay_ms,
                            sioc_deadline_expired_cb expired);

/* Closes the timer; close_cb (may be NULL) runs once libuv released it. Entries still armed
 * are dropped without expiring. */
void sioc_deadline_list_close(sioc_deadline_list_t *list, uv_close_cb close_cb);

/* Arms (or re-arms) deadline to now + the list's delay, taking it off whichever list it was
 * on (an entry may move between lists: a session's heartbeat goes from the ping-interval list
 * to the pong-wait list and back). The entry must be zeroed before first use. */
void sioc_deadline_arm(sioc_deadline_list_t *list, sioc_deadline_t *deadline);

/* Disarms; a no-op if not armed. */
void sioc_deadline_disarm(sioc_deadline_t *deadline);

static inline int sioc_deadline_is_armed(const sioc_deadline_t *deadline)
{
    return deadline->list != NULL;
}

#endif
