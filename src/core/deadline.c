#include "core/deadline.h"

static void on_timer(uv_timer_t *timer);

static void schedule(sioc__deadline_list_t *list)
{
    if (list->head == NULL) {
        uv_timer_stop(&list->timer);
        return;
    }
    uint64_t now = uv_now(list->timer.loop);
    uint64_t wait = list->head->due_ms > now ? list->head->due_ms - now : 0;
    uv_timer_start(&list->timer, on_timer, wait, 0);
}

static void unlink_entry(sioc__deadline_t *deadline)
{
    sioc__deadline_list_t *list = deadline->list;
    if (deadline->previous != NULL)
        deadline->previous->next = deadline->next;
    else
        list->head = deadline->next;
    if (deadline->next != NULL)
        deadline->next->previous = deadline->previous;
    else
        list->tail = deadline->previous;
    deadline->previous = deadline->next = NULL;
    deadline->list = NULL;
}

/* How late a timer must fire for the loop to count as having been held. */
#define STALL_MS 100

static void on_timer(uv_timer_t *timer)
{
    sioc__deadline_list_t *list = timer->data;
    uint64_t now = uv_now(timer->loop);
    /* libuv runs timers before it polls. After the loop was held (a long callback: the presence
     * notices of thousands of connections, a stopped process), entries come due while the bytes
     * that would have disarmed them (a request's head, a pong) already wait in the kernel, and
     * expiring them would drop connections that did nothing wrong. One turn of grace lets the
     * poll read those bytes first; the entries still armed after it expire. */
    if (!list->grace_given && list->head != NULL && list->head->due_ms + STALL_MS <= now) {
        list->grace_given = 1;
        uv_timer_start(&list->timer, on_timer, 1, 0);
        return;
    }
    list->grace_given = 0;
    /* Each callback may arm or disarm entries (itself included), so re-read the head. */
    while (list->head != NULL && list->head->due_ms <= now) {
        sioc__deadline_t *expired = list->head;
        unlink_entry(expired);
        list->expired(list, expired);
    }
    schedule(list);
}

int sioc__deadline_list_init(uv_loop_t *loop, sioc__deadline_list_t *list, uint64_t delay_ms,
                             sioc__deadline_expired_cb expired)
{
    int rc = uv_timer_init(loop, &list->timer);
    if (rc != 0)
        return rc;
    list->timer.data = list;
    list->delay_ms = delay_ms;
    list->head = list->tail = NULL;
    list->expired = expired;
    list->grace_given = 0;
    return 0;
}

void sioc__deadline_list_close(sioc__deadline_list_t *list, uv_close_cb close_cb)
{
    while (list->head != NULL)
        unlink_entry(list->head);
    uv_close((uv_handle_t *)&list->timer, close_cb);
}

void sioc__deadline_arm(sioc__deadline_list_t *list, sioc__deadline_t *deadline)
{
    if (sioc__deadline_is_armed(deadline))
        sioc__deadline_disarm(deadline);
    /* uv_now() only moves forward, so with a constant delay appending keeps the list sorted;
     * after a shorter delay was set, the new entry goes before those armed with the longer one
     * that expire later (a walk from the tail over those only). */
    deadline->due_ms = uv_now(list->timer.loop) + list->delay_ms;
    deadline->list = list;
    sioc__deadline_t *before = list->tail;
    while (before != NULL && before->due_ms > deadline->due_ms)
        before = before->previous;
    deadline->previous = before;
    deadline->next = before != NULL ? before->next : list->head;
    if (deadline->next != NULL)
        deadline->next->previous = deadline;
    else
        list->tail = deadline;
    if (before != NULL)
        before->next = deadline;
    else
        list->head = deadline;
    if (list->head == deadline)
        schedule(list);
}

void sioc__deadline_list_set_delay(sioc__deadline_list_t *list, uint64_t delay_ms)
{
    list->delay_ms = delay_ms;
}

void sioc__deadline_disarm(sioc__deadline_t *deadline)
{
    sioc__deadline_list_t *list = deadline->list;
    if (list == NULL)
        return;
    int was_head = list->head == deadline;
    unlink_entry(deadline);
    if (was_head)
        schedule(list);
}
