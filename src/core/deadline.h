/* Deadline lists: many timeouts that all have the same delay (every session's ping interval,
 * every pong wait, every HTTP header timeout) expire in the order they were armed, so a FIFO
 * list with one libuv timer serves them all in O(1). A session then carries a 32-byte entry
 * instead of a 150-byte uv_timer_t, which matters at 10,000+ idle connections. */
#ifndef SIOC_CORE_DEADLINE_H
#define SIOC_CORE_DEADLINE_H

#include <stdint.h>
#include <uv.h>

typedef struct sioc__deadline_list_s sioc__deadline_list_t;

typedef struct sioc__deadline_s {
    uint64_t due_ms;             /* loop time at which it expires */
    sioc__deadline_list_t *list; /* the list it is armed on; NULL when not armed */
    struct sioc__deadline_s *previous;
    struct sioc__deadline_s *next;
} sioc__deadline_t;
typedef void (*sioc__deadline_expired_cb)(sioc__deadline_list_t *list, sioc__deadline_t *deadline);

struct sioc__deadline_list_s {
    uv_timer_t timer;
    uint64_t delay_ms;
    sioc__deadline_t *head;
    sioc__deadline_t *tail;
    sioc__deadline_expired_cb expired;
    int grace_given; /* the timer fired late and waits one poll before expiring (deadline.c) */
    void *data;      /* for the owner */
};

/* Initialises the list's timer on loop. Every entry armed on it expires delay_ms later. */
int sioc__deadline_list_init(uv_loop_t *loop, sioc__deadline_list_t *list, uint64_t delay_ms,
                             sioc__deadline_expired_cb expired);

/* Closes the timer; close_cb (may be NULL) runs once libuv released it. Entries still armed
 * are dropped without expiring. */
void sioc__deadline_list_close(sioc__deadline_list_t *list, uv_close_cb close_cb);

/* Arms (or re-arms) deadline to now + the list's delay, taking it off whichever list it was
 * on (an entry may move between lists: a session's heartbeat goes from the ping-interval list
 * to the pong-wait list and back). The entry must be zeroed before first use. */
void sioc__deadline_arm(sioc__deadline_list_t *list, sioc__deadline_t *deadline);

/* Entries armed from now on expire delay_ms after their arming; armed ones keep their time.
 * For lists whose entries are short-lived (a connect or upgrade wait): until the entries
 * armed with a longer delay are gone, each arm walks over those that expire after it. */
void sioc__deadline_list_set_delay(sioc__deadline_list_t *list, uint64_t delay_ms);

/* Disarms; a no-op if not armed. */
void sioc__deadline_disarm(sioc__deadline_t *deadline);

static inline int sioc__deadline_is_armed(const sioc__deadline_t *deadline)
{
    return deadline->list != NULL;
}

#endif
