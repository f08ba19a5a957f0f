/* Engine.IO v3 polling payloads (see eio3_parser.h).
 *
 * Node decodes a text payload as a JavaScript string, so its record lengths count UTF-16 code
 * units; walking the UTF-8 body, a code point of four bytes is two units and one of one to
 * three bytes is one. A length that ends between the two halves of a surrogate pair cuts a code
 * point in two: Node hands out the first half as a lone surrogate and fails on the rest; here
 * the record is refused at once. Where Node is lenient with malformed input (base64, a length
 * past the end of a binary payload, a record of unknown type it ignores), this reader refuses,
 * which closes the session with "parse error": nothing a real client sends is refused. */
#include "engineio/eio3_parser.h"

#include "core/base64.h"
#include "core/utf8.h"

#include <string.h>

enum { READER_RUNNING = 0, READER_FINISHED = 1, READER_FAILED = -1 };

#define TEXT_LENGTH_END ':'
#define BINARY_LENGTH_END 0xff
#define BINARY_RECORD_MARKER 'b'

void sioc__eio3_payload_reader_init(sioc__eio3_payload_reader_t *reader, uint8_t *data,
                                    size_t length, int binary_framing)
{
    reader->data = data;
    reader->length = length;
    reader->offset = 0;
    reader->binary_framing = binary_framing;
    reader->done = READER_RUNNING;
    /* Text payloads are checked whole, so that the record walk below may trust lead bytes. */
    if (!binary_framing && length > 0 && !sioc__utf8_is_valid(data, length))
        reader->done = READER_FAILED;
}

/* A length: decimal digits (ASCII in text payloads, byte values 0-9 in binary ones) up to the
 * terminator. Returns 0 with *value and *used (digits + terminator), or -1. */
static int read_length(const uint8_t *p, size_t available, int binary, size_t *value, size_t *used)
{
    uint8_t end = binary ? BINARY_LENGTH_END : TEXT_LENGTH_END;
    size_t n = 0;
    size_t i = 0;
    for (; i < available && p[i] != end; i++) {
        int digit = binary ? p[i] : p[i] - '0';
        if (digit < 0 || digit > 9 || i == SIOC_EIO3_MAX_LENGTH_DIGITS)
            return -1;
        n = n * 10 + (size_t)digit;
    }
    if (i == 0 || i == available)
        return -1;
    *value = n;
    *used = i + 1;
    return 0;
}

static size_t sequence_length(uint8_t lead)
{
    if (lead < 0x80)
        return 1;
    if (lead < 0xe0)
        return 2;
    return lead < 0xf0 ? 3 : 4;
}

/* Bytes of valid UTF-8 at p that make units UTF-16 code units, or -1 past the end or inside a
 * surrogate pair. */
static int utf16_span(const uint8_t *p, size_t available, size_t units, size_t *bytes)
{
    size_t i = 0;
    while (units > 0) {
        if (i >= available)
            return -1;
        size_t sequence = sequence_length(p[i]);
        size_t width = sequence == 4 ? 2 : 1;
        if (sequence > available - i || width > units)
            return -1;
        i += sequence;
        units -= width;
    }
    *bytes = i;
    return 0;
}

int sioc__eio3_packet_decode_binary(const uint8_t *data, size_t length, sioc__eio_packet_t *out)
{
    if (length == 0 || data[0] > SIOC_EIO_NOOP)
        return -1;
    out->type = data[0];
    out->binary = data[0] == SIOC_EIO_MESSAGE;
    out->data = data + 1;
    out->length = length - 1;
    return 0;
}

/* "b4" + base64, decoded over itself. */
static int decode_base64_record(uint8_t *record, size_t length, sioc__eio_packet_t *out)
{
    if (length < 2 || record[1] != '0' + SIOC_EIO_MESSAGE)
        return -1;
    long decoded = sioc__base64_decode((const char *)record + 2, length - 2, record + 2);
    if (decoded < 0)
        return -1;
    out->type = SIOC_EIO_MESSAGE;
    out->binary = 1;
    out->data = record + 2;
    out->length = (size_t)decoded;
    return 0;
}

/* Returns 1 with a packet, 0 for an empty record ("0:"), -1 on error. */
static int next_text_record(sioc__eio3_payload_reader_t *reader, sioc__eio_packet_t *out)
{
    uint8_t *p = reader->data + reader->offset;
    size_t available = reader->length - reader->offset;
    size_t units, used, bytes;
    if (read_length(p, available, 0, &units, &used) != 0 ||
        utf16_span(p + used, available - used, units, &bytes) != 0)
        return -1;
    reader->offset += used + bytes;
    if (bytes == 0)
        return 0;
    uint8_t *record = p + used;
    if (record[0] == BINARY_RECORD_MARKER)
        return decode_base64_record(record, bytes, out) == 0 ? 1 : -1;
    return sioc__eio_packet_decode_text(record, bytes, out) == 0 ? 1 : -1;
}

static int next_binary_record(sioc__eio3_payload_reader_t *reader, sioc__eio_packet_t *out)
{
    uint8_t *p = reader->data + reader->offset;
    size_t available = reader->length - reader->offset;
    size_t length, used;
    int is_text = p[0] == 0;
    if (p[0] > 1 || read_length(p + 1, available - 1, 1, &length, &used) != 0)
        return -1;
    uint8_t *record = p + 1 + used;
    if (length == 0 || length > available - 1 - used)
        return -1;
    reader->offset += 1 + used + length;
    if (is_text)
        return sioc__utf8_is_valid(record, length) &&
                       sioc__eio_packet_decode_text(record, length, out) == 0
                   ? 1
                   : -1;
    return sioc__eio3_packet_decode_binary(record, length, out) == 0 ? 1 : -1;
}

int sioc__eio3_payload_reader_next(sioc__eio3_payload_reader_t *reader, sioc__eio_packet_t *out)
{
    for (;;) {
        if (reader->done != READER_RUNNING)
            return reader->done == READER_FINISHED ? 0 : -1;
        if (reader->offset == reader->length) {
            /* Node: an empty text body is a parser error; an empty binary one holds nothing. */
            reader->done =
                reader->length == 0 && !reader->binary_framing ? READER_FAILED : READER_FINISHED;
            continue;
        }
        int rc = reader->binary_framing ? next_binary_record(reader, out)
                                        : next_text_record(reader, out);
        if (rc < 0) {
            reader->offset = reader->length;
            reader->done = READER_FAILED;
        } else if (rc == 1) {
            return 1;
        }
    }
}

size_t sioc__eio3_utf16_length(const uint8_t *text, size_t length)
{
    size_t units = 0;
    for (size_t i = 0; i < length; i++) {
        if ((text[i] & 0xc0) != 0x80)
            units += text[i] >= 0xf0 ? 2 : 1;
    }
    return units;
}

static size_t decimal_digits(size_t value)
{
    size_t digits = 1;
    while (value >= 10) {
        value /= 10;
        digits++;
    }
    return digits;
}

/* Writes value in decimal: ASCII digits, or (binary) one byte 0-9 per digit. */
static size_t write_decimal(uint8_t *out, size_t value, int binary)
{
    size_t digits = decimal_digits(value);
    for (size_t i = digits; i > 0; i--) {
        out[i - 1] = (uint8_t)((binary ? 0 : '0') + value % 10);
        value /= 10;
    }
    return digits;
}

/* The packet's length as Node counts it in a text payload. */
static size_t text_units(const uint8_t *packet, size_t length, int binary)
{
    return binary ? 2 + sioc__base64_encoded_length(length)
                  : sioc__eio3_utf16_length(packet, length);
}

size_t sioc__eio3_text_record_length(const uint8_t *packet, size_t length, int binary)
{
    size_t bytes = binary ? 2 + sioc__base64_encoded_length(length) : length;
    return decimal_digits(text_units(packet, length, binary)) + 1 + bytes;
}

size_t sioc__eio3_write_text_record(uint8_t *out, const uint8_t *packet, size_t length, int binary)
{
    size_t used = write_decimal(out, text_units(packet, length, binary), 0);
    out[used++] = TEXT_LENGTH_END;
    if (binary) {
        out[used++] = BINARY_RECORD_MARKER;
        out[used++] = '0' + SIOC_EIO_MESSAGE;
        return used + sioc__base64_encode(packet, length, (char *)out + used);
    }
    if (length > 0)
        memcpy(out + used, packet, length);
    return used + length;
}

size_t sioc__eio3_binary_record_length(size_t length, int binary)
{
    size_t bytes = binary ? length + 1 : length;
    return 1 + decimal_digits(bytes) + 1 + bytes;
}

size_t sioc__eio3_write_binary_record(uint8_t *out, const uint8_t *packet, size_t length,
                                      int binary)
{
    size_t used = 0;
    out[used++] = binary ? 1 : 0;
    used += write_decimal(out + used, binary ? length + 1 : length, 1);
    out[used++] = BINARY_LENGTH_END;
    if (binary)
        out[used++] = SIOC_EIO_MESSAGE;
    if (length > 0)
        memcpy(out + used, packet, length);
    return used + length;
}
