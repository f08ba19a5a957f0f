/* Socket.IO packet decoder and encoder.
 *
 * Input: the text message, then optionally a 0xFF byte and attachments separated by 0xFF (a byte
 * that valid UTF-8 text never holds). While the decoder waits for attachments it gets the
 * slices; if they run out, a text message must be refused and must reset it.
 *
 * Every decoded packet is checked against the header's promises, encoded, decoded again with the
 * same attachments and compared (numbers by value: the real 3.0 comes back as the integer 3, as
 * in JavaScript), and encoded once more, which must give the same bytes. The text is also decoded
 * by a decoder that keeps plain events as bytes, which must agree. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "socketio/sio_parser.h"

#define SEPARATOR 0xFF
#define MAX_SAFE_INTEGER INT64_C(9007199254740991)

struct slices {
    const uint8_t *data;
    size_t length;
    size_t position; /* start of the next slice; length + 1 when none is left */
};

static const uint8_t *next_slice(struct slices *slices, size_t *length)
{
    if (slices->position > slices->length)
        return NULL;
    const uint8_t *start = slices->data + slices->position;
    size_t remaining = slices->length - slices->position;
    const uint8_t *end = memchr(start, SEPARATOR, remaining);
    *length = end != NULL ? (size_t)(end - start) : remaining;
    slices->position += *length + 1;
    return start;
}

/* Integers past 2^53 are written as the double a JavaScript peer holds, so they come back
 * rounded: compare those as doubles, the others exactly. */
static int is_safe_integer(const json_t *value)
{
    return json_is_integer(value) && json_integer_value(value) >= -MAX_SAFE_INTEGER &&
           json_integer_value(value) <= MAX_SAFE_INTEGER;
}

static int numbers_equal(const json_t *a, const json_t *b)
{
    if (is_safe_integer(a) && is_safe_integer(b))
        return json_integer_value(a) == json_integer_value(b);
    return json_number_value(a) == json_number_value(b);
}

static int values_equal(const json_t *a, const json_t *b);

static int objects_equal(const json_t *a, const json_t *b)
{
    if (json_object_size(a) != json_object_size(b))
        return 0;
    json_t *object = (json_t *)a;
    for (void *it = json_object_iter(object); it != NULL; it = json_object_iter_next(object, it)) {
        const json_t *other =
            json_object_getn(b, json_object_iter_key(it), json_object_iter_key_len(it));
        if (other == NULL || !values_equal(json_object_iter_value(it), other))
            return 0;
    }
    return 1;
}

/* json_equal(), except that numbers compare by value whatever their jansson type. */
static int values_equal(const json_t *a, const json_t *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    if (json_is_number(a) && json_is_number(b))
        return numbers_equal(a, b);
    if (json_typeof(a) != json_typeof(b))
        return 0;
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b))
            return 0;
        for (size_t i = 0; i < json_array_size(a); i++) {
            if (!values_equal(json_array_get(a, i), json_array_get(b, i)))
                return 0;
        }
        return 1;
    }
    if (json_is_object(a))
        return objects_equal(a, b);
    if (json_is_string(a))
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    return 1; /* true, false, null */
}

static void check_packet_shape(const sioc__sio_packet_t *packet)
{
    if (packet->type < SIOC_SIO_CONNECT || packet->type > SIOC_SIO_BINARY_ACK)
        abort();
    if (packet->nsp == NULL || packet->nsp[0] != '/')
        abort();
    if (packet->id != SIOC_SIO_NO_ACK_ID && (packet->id < 0 || packet->id > MAX_SAFE_INTEGER))
        abort();
    if (packet->attachment_count > SIOC_SIO_DEFAULT_MAX_ATTACHMENTS)
        abort();
    if (packet->attachment_count > 0 && packet->attachments == NULL)
        abort();
    for (size_t i = 0; i < packet->attachment_count; i++) {
        if (packet->attachments[i].data == NULL)
            abort();
    }
    if ((packet->type == SIOC_SIO_EVENT || packet->type == SIOC_SIO_BINARY_EVENT) &&
        json_array_size(packet->data) == 0)
        abort();
}

/* Decodes text plus the same attachments as original; the result must equal original. */
static void check_decodes_back(const char *text, size_t length, const sioc__sio_packet_t *original)
{
    sioc__sio_decoder_t decoder;
    sioc__sio_packet_t packet = {0};
    const char *error = NULL;
    sioc__sio_decoder_init(&decoder, SIOC_SIO_DEFAULT_MAX_ATTACHMENTS);
    int result = sioc__sio_decoder_add_text(&decoder, text, length, &packet, &error);
    for (size_t i = 0; result == SIOC_SIO_DECODE_PENDING; i++) {
        if (i >= original->attachment_count)
            abort();
        result = sioc__sio_decoder_add_binary(&decoder, original->attachments[i].data,
                                              original->attachments[i].length, &packet, &error);
    }
    if (result != SIOC_SIO_DECODE_COMPLETE)
        abort();
    if (packet.type != original->type || strcmp(packet.nsp, original->nsp) != 0 ||
        packet.id != original->id || packet.attachment_count != original->attachment_count ||
        !values_equal(packet.data, original->data))
        abort();
    for (size_t i = 0; i < packet.attachment_count; i++) {
        if (packet.attachments[i].length != original->attachments[i].length ||
            memcmp(packet.attachments[i].data, original->attachments[i].data,
                   packet.attachments[i].length) != 0)
            abort();
    }
    size_t again_length;
    char *again = sioc__sio_encode(&packet, &again_length);
    if (again == NULL || again_length != length || memcmp(again, text, length) != 0)
        abort();
    free(again);
    sioc__sio_packet_clear(&packet);
    sioc__sio_decoder_free(&decoder);
}

static void check_round_trip(const sioc__sio_packet_t *packet)
{
    check_packet_shape(packet);
    size_t length;
    char *text = sioc__sio_encode(packet, &length);
    if (text == NULL || strlen(text) != length)
        abort();
    check_decodes_back(text, length, packet);
    free(text);
}

/* Feeds slices while the decoder waits; returns the last result. */
static int feed_attachments(sioc__sio_decoder_t *decoder, struct slices *slices,
                            sioc__sio_packet_t *packet)
{
    const char *error;
    size_t length;
    int result = SIOC_SIO_DECODE_PENDING;
    while (result == SIOC_SIO_DECODE_PENDING) {
        const uint8_t *slice = next_slice(slices, &length);
        if (slice == NULL)
            break;
        result = sioc__sio_decoder_add_binary(decoder, slice, length, packet, &error);
    }
    return result;
}

/* A decoder that keeps plain events as bytes (pass-through handlers, sio_scan.c) must accept and
 * refuse exactly what the parsing one does, and its bytes must parse to the same packet. */
static void check_kept_bytes(const char *text, size_t length)
{
    sioc__sio_decoder_t parsing, keeping;
    sioc__sio_packet_t parsed = {0}, kept = {0};
    const char *error = NULL;
    sioc__sio_decoder_init(&parsing, SIOC_SIO_DEFAULT_MAX_ATTACHMENTS);
    sioc__sio_decoder_init(&keeping, SIOC_SIO_DEFAULT_MAX_ATTACHMENTS);
    keeping.keep_event_bytes = 1;
    int expected = sioc__sio_decoder_add_text(&parsing, text, length, &parsed, &error);
    if (sioc__sio_decoder_add_text(&keeping, text, length, &kept, &error) != expected)
        abort();
    if (expected == SIOC_SIO_DECODE_COMPLETE) {
        if (kept.raw != NULL && (kept.type != SIOC_SIO_EVENT || kept.data != NULL ||
                                 sioc__sio_packet_parse(&kept) != 0))
            abort();
        if (kept.type != parsed.type || strcmp(kept.nsp, parsed.nsp) != 0 || kept.id != parsed.id ||
            !values_equal(kept.data, parsed.data))
            abort();
        sioc__sio_packet_clear(&parsed);
        sioc__sio_packet_clear(&kept);
    }
    sioc__sio_decoder_free(&parsing);
    sioc__sio_decoder_free(&keeping);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *separator = memchr(data, SEPARATOR, size);
    size_t text_length = separator != NULL ? (size_t)(separator - data) : size;
    struct slices slices = {data, size, separator != NULL ? text_length + 1 : size + 1};
    check_kept_bytes((const char *)data, text_length);

    sioc__sio_decoder_t decoder;
    sioc__sio_packet_t packet = {0};
    const char *error = NULL;
    sioc__sio_decoder_init(&decoder, SIOC_SIO_DEFAULT_MAX_ATTACHMENTS);
    int result =
        sioc__sio_decoder_add_text(&decoder, (const char *)data, text_length, &packet, &error);
    if (result == SIOC_SIO_DECODE_ERROR && (error == NULL || decoder.has_pending))
        abort();
    if (result == SIOC_SIO_DECODE_PENDING)
        result = feed_attachments(&decoder, &slices, &packet);

    if (result == SIOC_SIO_DECODE_PENDING) {
        /* Out of attachments: text now is a protocol error that drops the pending packet. */
        if (sioc__sio_decoder_add_text(&decoder, "1", 1, &packet, &error) !=
                SIOC_SIO_DECODE_ERROR ||
            decoder.has_pending)
            abort();
    } else if (result == SIOC_SIO_DECODE_COMPLETE) {
        check_round_trip(&packet);
        sioc__sio_packet_clear(&packet);
    }
    sioc__sio_decoder_free(&decoder);
    return 0;
}
