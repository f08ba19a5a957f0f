/* Fuzzes the Engine.IO v3 payload readers (text and XHR2 binary framing) and the writers.
 *
 * The first byte picks the framing, the rest is the body. Besides memory errors it checks that
 * every packet the reader hands out lies inside the body and has a known type, that the reader
 * stays where it stopped, and that the accepted packets, written back with the binary writer,
 * are read back the same. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"
#include "engineio/eio3_parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PACKETS 64

typedef struct {
    int type;
    int binary;
    uint8_t *bytes; /* type character + data for text packets, data for binary ones */
    size_t length;
} kept_t;

static void keep(kept_t *kept, const sioc__eio_packet_t *packet)
{
    kept->type = packet->type;
    kept->binary = packet->binary;
    kept->length = packet->length + (packet->binary ? 0 : 1);
    kept->bytes = malloc(kept->length + 1);
    if (kept->bytes == NULL)
        abort();
    if (packet->binary) {
        if (packet->length > 0)
            memcpy(kept->bytes, packet->data, packet->length);
    } else {
        kept->bytes[0] = (uint8_t)('0' + packet->type);
        if (packet->length > 0)
            memcpy(kept->bytes + 1, packet->data, packet->length);
    }
}

/* Writes the kept packets with the binary writer and reads them back. */
static void check_round_trip(const kept_t *kept, size_t count)
{
    size_t total = 0;
    for (size_t i = 0; i < count; i++)
        total += sioc__eio3_binary_record_length(kept[i].length, kept[i].binary);
    uint8_t *body = malloc(total + 1);
    if (body == NULL)
        abort();
    size_t used = 0;
    for (size_t i = 0; i < count; i++)
        used += sioc__eio3_write_binary_record(body + used, kept[i].bytes, kept[i].length,
                                               kept[i].binary);
    if (used != total)
        abort();
    sioc__eio3_payload_reader_t reader;
    sioc__eio3_payload_reader_init(&reader, body, used, 1);
    sioc__eio_packet_t packet;
    for (size_t i = 0; i < count; i++) {
        if (sioc__eio3_payload_reader_next(&reader, &packet) != 1 || packet.type != kept[i].type ||
            packet.binary != kept[i].binary)
            abort();
        size_t skip = kept[i].binary ? 0 : 1;
        if (packet.length != kept[i].length - skip ||
            (packet.length > 0 && memcmp(packet.data, kept[i].bytes + skip, packet.length) != 0))
            abort();
    }
    if (sioc__eio3_payload_reader_next(&reader, &packet) != 0)
        abort();
    free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    int binary_framing = data[0] & 1;
    size_t length = size - 1;
    uint8_t *body = malloc(length + 1);
    if (body == NULL)
        abort();
    memcpy(body, data + 1, length);
    sioc__eio3_payload_reader_t reader;
    sioc__eio3_payload_reader_init(&reader, body, length, binary_framing);
    kept_t kept[MAX_PACKETS];
    size_t count = 0;
    sioc__eio_packet_t packet;
    int result;
    while ((result = sioc__eio3_payload_reader_next(&reader, &packet)) == 1) {
        if (packet.data < body || packet.length > length ||
            (size_t)(packet.data - body) > length - packet.length)
            abort();
        if (packet.type < SIOC_EIO_OPEN || packet.type > SIOC_EIO_NOOP ||
            (packet.binary && packet.type != SIOC_EIO_MESSAGE))
            abort();
        /* Text packets go back as text records, which must be UTF-8. */
        if (count < MAX_PACKETS &&
            (packet.binary || sioc__utf8_is_valid(packet.data, packet.length)))
            keep(&kept[count++], &packet);
    }
    if (sioc__eio3_payload_reader_next(&reader, &packet) != result)
        abort();
    check_round_trip(kept, count);
    for (size_t i = 0; i < count; i++)
        free(kept[i].bytes);
    free(body);
    return 0;
}
