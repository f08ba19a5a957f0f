#include "core/buffer.h"

#include <stdlib.h>
#include <string.h>

sioc__buffer_t *sioc__buffer_new(size_t length, int binary)
{
    if (length > SIZE_MAX - sizeof(sioc__buffer_t) - SIOC_BUFFER_HEADROOM)
        return NULL;
    sioc__buffer_t *buffer = malloc(sizeof(sioc__buffer_t) + SIOC_BUFFER_HEADROOM + length);
    if (buffer == NULL)
        return NULL;
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
        free(buffer);
    }
}
