/* hiredis's async API on libuv (sioc_redis_attach in sioc_adapter.h), for the Redis adapter and
 * for any program on the same loop (the daemon's session store).
 *
 * Not hiredis's adapters/libuv.h: libuv reports POLLERR (a refused connect, a reset) as an error
 * status and stops the handle, which that adapter (Debian's hiredis 0.14) ignores, so the
 * connection would hang there for ever. Here an error lets hiredis read the socket, find the
 * error and disconnect. */
#include <hiredis/async.h>
#include <stdlib.h>

#include "sioc_adapter.h"

typedef struct poll_s {
    redisAsyncContext *context;
    uv_poll_t handle;
    int events;
} poll_t;

static void on_poll(uv_poll_t *handle, int status, int events)
{
    poll_t *poll = handle->data;
    if (poll->context != NULL && (status < 0 || (events & UV_READABLE)))
        redisAsyncHandleRead(poll->context);
    if (poll->context != NULL && status == 0 && (events & UV_WRITABLE))
        redisAsyncHandleWrite(poll->context);
}

static void poll_update(poll_t *poll, int add, int remove)
{
    poll->events = (poll->events | add) & ~remove;
    if (poll->events != 0)
        uv_poll_start(&poll->handle, poll->events, on_poll);
    else
        uv_poll_stop(&poll->handle);
}

static void poll_add_read(void *data)
{
    poll_update(data, UV_READABLE, 0);
}

static void poll_del_read(void *data)
{
    poll_update(data, 0, UV_READABLE);
}

static void poll_add_write(void *data)
{
    poll_update(data, UV_WRITABLE, 0);
}

static void poll_del_write(void *data)
{
    poll_update(data, 0, UV_WRITABLE);
}

static void on_poll_closed(uv_handle_t *handle)
{
    free(handle->data);
}

static void poll_cleanup(void *data)
{
    poll_t *poll = data;
    poll->context = NULL; /* hiredis frees it */
    uv_close((uv_handle_t *)&poll->handle, on_poll_closed);
}

int sioc_redis_attach(redisAsyncContext *context, uv_loop_t *loop)
{
    if (context == NULL || loop == NULL || context->ev.data != NULL)
        return SIOC_EINVAL;
    poll_t *poll = calloc(1, sizeof(*poll));
    if (poll == NULL)
        return SIOC_ENOMEM;
    if (uv_poll_init(loop, &poll->handle, context->c.fd) != 0) {
        free(poll);
        return SIOC_EINVAL;
    }
    poll->handle.data = poll;
    poll->context = context;
    context->ev.data = poll;
    context->ev.addRead = poll_add_read;
    context->ev.delRead = poll_del_read;
    context->ev.addWrite = poll_add_write;
    context->ev.delWrite = poll_del_write;
    context->ev.cleanup = poll_cleanup;
    return 0;
}
