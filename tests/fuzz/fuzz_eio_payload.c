/* Fuzzes the Engine.IO polling payload reader and the text packet decoder.
 *
 * Besides memory errors, it checks that the codec is exact: base64 is strict, so every payload
 * the reader accepts must come out byte for byte the same when its packets are written back with
 * the payload writer; when the reader stops on an error, what it accepted before must be a prefix
 * of the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engineio/eio_parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text_decoder(const uint8_t *data, size_t size)
{
    sioc__eio_packet_t packet;
    int result = sioc__eio_packet_decode_text(data, size, &packet);
    int valid = size > 0 && data[0] >= '0' && data[0] <= '6';
    if (result != (valid ? 0 : -1))
        abort();
    if (valid && (packet.type != data[0] - '0' || packet.binary != 0 || packet.data != data + 1 ||
                  packet.length != size - 1))
        abort();
}

/* Appends the record for packet (with a separator before all but the first) to rewritten. */
static void rewrite_packet(const sioc__eio_packet_t *packet, uint8_t *rewritten,
                           size_t *rewritten_length, size_t capacity)
{
    size_t needed = sioc__eio_payload_packet_length(packet->type, packet->binary, packet->length);
    size_t separator = *rewritten_length > 0 ? 1 : 0;
    /* Accepted records never grow when written back, so the input size is always enough. */
    if (separator + needed > capacity - *rewritten_length)
        abort();
    if (separator)
        rewritten[(*rewritten_length)++] = SIOC_EIO_RECORD_SEPARATOR;
    *rewritten_length += sioc__eio_payload_write_packet(
        rewritten + *rewritten_length, packet->type, packet->binary, packet->data, packet->length);
}

static void check_payload_reader(const uint8_t *data, size_t size)
{
    /* The reader decodes binary records in place, so it gets its own mutable copy. */
    uint8_t *body = malloc(size > 0 ? size : 1);
    uint8_t *rewritten = malloc(size > 0 ? size : 1);
    if (body == NULL || rewritten == NULL)
        abort();
    memcpy(body, data, size);
    sioc__eio_payload_reader_t reader;
    sioc__eio_payload_reader_init(&reader, body, size);
    sioc__eio_packet_t packet;
    size_t rewritten_length = 0;
    int result;
    while ((result = sioc__eio_payload_reader_next(&reader, &packet)) == 1) {
        if (packet.data < body || packet.length > size ||
            (size_t)(packet.data - body) > size - packet.length)
            abort();
        if (packet.type < SIOC_EIO_OPEN || packet.type > SIOC_EIO_NOOP)
            abort();
        rewrite_packet(&packet, rewritten, &rewritten_length, size);
    }
    /* The reader stays where it stopped. */
    if (sioc__eio_payload_reader_next(&reader, &packet) != result)
        abort();
    if (result == 0 && (rewritten_length != size || memcmp(rewritten, data, size) != 0))
        abort();
    if (result == -1 && memcmp(rewritten, data, rewritten_length) != 0)
        abort();
    free(rewritten);
    free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_text_decoder(data, size);
    check_payload_reader(data, size);
    return 0;
}
