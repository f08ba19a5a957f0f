#include "core/buffer.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sanitizer/asan_interface.h>

#define SPARE_MAX 64
#define SMALL_BLOCK (sizeof(sioc__buffer_t) + SIOC_BUFFER_HEADROOM + SIOC_BUFFER_SPARE_LENGTH)

/* Per thread, as a program may run loops on several; a key's destructor frees them at the
 * thread's exit (set once the thread kept one). An array rather than a list through the blocks:
 * a kept block is poisoned under AddressSanitizer (the macros are empty otherwise), so that a use
 * after sioc__buffer_unref is still reported as it was when the block went back to free(), and
 * LeakSanitizer does not follow pointers stored in poisoned memory. */
static _Thread_local struct {
    sioc__buffer_t *blocks[SPARE_MAX];
    uint32_t count;
    uint8_t registered;
} spares;
static pthread_key_t spares_key;
static pthread_once_t spares_once = PTHREAD_ONCE_INIT;

static sioc__buffer_t *take_spare(void)
{
    sioc__buffer_t *buffer = spares.blocks[--spares.count];
    ASAN_UNPOISON_MEMORY_REGION(buffer, SMALL_BLOCK);
    return buffer;
}

static void free_spares(void *unused)
{
    (void)unused;
    while (spares.count > 0)
        free(take_spare());
}

static void create_key(void)
{
    pthread_key_create(&spares_key, free_spares);
}

/* Keeps a small buffer's block for the next one; 0 when there is no room (free it then). */
static int keep_spare(sioc__buffer_t *buffer)
{
    if (spares.count == SPARE_MAX)
        return 0;
    if (!spares.registered) {
        pthread_once(&spares_once, create_key);
        if (pthread_setspecific(spares_key, &spares) != 0)
            return 0;
        spares.registered = 1;
    }
    spares.blocks[spares.count++] = buffer;
    ASAN_POISON_MEMORY_REGION(buffer, SMALL_BLOCK);
    return 1;
}

sioc__buffer_t *sioc__buffer_new(size_t length, int binary)
{
    if (length > SIZE_MAX - sizeof(sioc__buffer_t) - SIOC_BUFFER_HEADROOM)
        return NULL;
    int small = length <= SIOC_BUFFER_SPARE_LENGTH;
    sioc__buffer_t *buffer;
    if (small && spares.count > 0) {
        buffer = take_spare();
    } else {
        buffer =
            malloc(small ? SMALL_BLOCK : sizeof(sioc__buffer_t) + SIOC_BUFFER_HEADROOM + length);
        if (buffer == NULL)
            return NULL;
    }
    buffer->small = (uint8_t)small;
    buffer->refcount = 1;
    buffer->binary = binary != 0;
    buffer->websocket_header_length = 0;
    buffer->no_compress = 0;
    buffer->length = length;
    buffer->deflated = NULL;
    buffer->data = buffer->storage + SIOC_BUFFER_HEADROOM;
    return buffer;
}

sioc__buffer_t *sioc__buffer_new_copy(const void *data, size_t length, int binary)
{
    sioc__buffer_t *buffer = sioc__buffer_new(length, binary);
    if (buffer != NULL && length > 0)
        memcpy(buffer->data, data, length);
    return buffer;
}

sioc__buffer_t *sioc__buffer_new_prefixed(uint8_t prefix, const void *data, size_t length,
                                          int binary)
{
    sioc__buffer_t *buffer = sioc__buffer_new(length + 1, binary);
    if (buffer == NULL)
        return NULL;
    buffer->data[0] = prefix;
    if (length > 0)
        memcpy(buffer->data + 1, data, length);
    return buffer;
}

void sioc__buffer_unref(sioc__buffer_t *buffer)
{
    if (buffer == NULL)
        return;
    if (--buffer->refcount == 0) {
        sioc__buffer_unref(buffer->deflated);
        if (!buffer->small || !keep_spare(buffer))
            free(buffer);
    }
}

size_t sioc__buffer_spare_count(void)
{
    return spares.count;
}
