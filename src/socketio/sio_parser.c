/* Socket.IO v5 packet codec (see sio_parser.h), following socket.io-parser 4.2.6
 * (packages/socket.io-parser/lib/index.ts and binary.ts).
 *
 * Where Node's decoder leans on JavaScript coercion, this one is stricter on purpose, because a
 * real client never sends such text and the lenient form would only widen the attack surface:
 * the type and the attachment count must be ASCII digits (Node's Number() also takes " 1",
 * "0x1", "1e0", and reads an empty string as 0), the ack id is a run of ASCII digits (Node also
 * counts whitespace, so "2 [..]" is ack id 0 there and no ack id here), ack ids above 2^53 - 1
 * are refused (Node rounds them), and EVENT, ACK and CONNECT_ERROR need a payload (Node lets
 * "2", "3" and "4" through with none).
 *
 * Binary packets keep their wire type (BINARY_EVENT, BINARY_ACK) and their placeholders; Node
 * turns them into EVENT/ACK with the buffers spliced in. Placeholders are checked as soon as the
 * text arrives rather than after the last attachment, so a bad packet is refused before its
 * attachments are buffered.
 *
 * The encoder writes JSON itself instead of calling json_dumps(), because jansson's output is
 * not JSON.stringify's: jansson writes reals as "%.17g" (0.1 -> 0.10000000000000001,
 * 3.0 -> 3.0, 1e21 -> 1e21, -0.0 -> -0.0) and control characters as upper-case \u001F. */
#include "socketio/sio_parser.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_NSP_LENGTH 256

/* Number.MAX_SAFE_INTEGER: Node's ack ids are JavaScript numbers, so a larger id could not be
 * echoed back unchanged. */
#define MAX_SAFE_INTEGER INT64_C(9007199254740991)

/* jansson refuses to parse JSON nested deeper than this; the encoder uses the same bound, which
 * also stops it on a value that contains itself. */
#define MAX_JSON_DEPTH 2048

/* Error messages: Node's wording where Node has the check. */
/* socket.io-parser reads the type as Number(first character): its message says what it got. */
static const char *const ERROR_UNKNOWN_TYPE[] = {"unknown packet type 7", "unknown packet type 8",
                                                 "unknown packet type 9"};
static const char ERROR_TYPE_NOT_A_NUMBER[] = "unknown packet type NaN";
/* Engine.IO hands socket.io-parser no data at all for an empty message, and its Decoder.add
 * fails on that with a TypeError: the message an application's error handler sees in Node. */
static const char ERROR_EMPTY_MESSAGE[] = "Cannot read properties of undefined (reading 'base64')";
static const char ERROR_ILLEGAL_ATTACHMENTS[] = "Illegal attachments";
static const char ERROR_TOO_MANY_ATTACHMENTS[] = "too many attachments";
static const char ERROR_INVALID_PAYLOAD[] = "invalid payload";
static const char ERROR_ILLEGAL_PLACEHOLDER[] = "illegal attachments";
static const char ERROR_PLAINTEXT_PENDING[] = "got plaintext data when reconstructing a packet";
static const char ERROR_BINARY_NOT_PENDING[] = "got binary data when not reconstructing a packet";
static const char ERROR_INVALID_NAMESPACE[] = "invalid namespace";
static const char ERROR_INVALID_ACK_ID[] = "invalid ack id";
static const char ERROR_OUT_OF_MEMORY[] = "out of memory";

/* With their lengths: every event received is checked against them. */
#define RESERVED(name) name, sizeof(name) - 1
static const struct {
    const char *name;
    size_t length;
} reserved_events[] = {
    {RESERVED("connect")},       {RESERVED("connect_error")}, {RESERVED("disconnect")},
    {RESERVED("disconnecting")}, {RESERVED("newListener")},   {RESERVED("removeListener")},
};
#undef RESERVED

int sioc__sio_is_reserved_event(const char *name, size_t length)
{
    for (size_t i = 0; i < sizeof(reserved_events) / sizeof(reserved_events[0]); i++) {
        if (reserved_events[i].length == length &&
            memcmp(reserved_events[i].name, name, length) == 0)
            return 1;
    }
    return 0;
}

/* The namespace of nearly every packet, not copied for each one: sioc__sio_packet_clear() does
 * not free it. Writable only because packet->nsp is (parse_v3_namespace cuts a query off it in
 * place, which never happens to "/"). */
static char root_namespace[] = "/";

static int is_binary_type(int type)
{
    return type == SIOC_SIO_BINARY_EVENT || type == SIOC_SIO_BINARY_ACK;
}

static char *copy_text(const char *text, size_t length)
{
    char *copy = malloc(length + 1);
    if (copy == NULL)
        return NULL;
    memcpy(copy, text, length);
    copy[length] = '\0';
    return copy;
}

void sioc__sio_packet_clear(sioc__sio_packet_t *packet)
{
    if (packet->nsp != root_namespace)
        free(packet->nsp);
    json_decref(packet->data);
    json_decref(packet->name);
    if (packet->attachments != NULL) {
        for (size_t i = 0; i < packet->attachment_count; i++)
            free(packet->attachments[i].data);
        free(packet->attachments);
    }
    memset(packet, 0, sizeof(*packet));
}

/* ---------------------------------------------------------------------------------------------
 * Decoding one text message */

struct cursor {
    const char *text;
    size_t length;
    size_t position;
};

/* The next byte, or -1 at the end. */
static int cursor_peek(const struct cursor *cursor)
{
    if (cursor->position >= cursor->length)
        return -1;
    return (unsigned char)cursor->text[cursor->position];
}

static int is_digit(int character)
{
    return character >= '0' && character <= '9';
}

/* The bytes of a character that JavaScript's Number() reads as 0 (white space and line
 * terminators: Number(" ") === 0) at the cursor, or 0 when there is none. */
static size_t white_space_length(const struct cursor *cursor)
{
    static const char *const multibyte[] = {
        "\xc2\xa0",     "\xe1\x9a\x80", "\xe2\x80\x80", "\xe2\x80\x81", "\xe2\x80\x82",
        "\xe2\x80\x83", "\xe2\x80\x84", "\xe2\x80\x85", "\xe2\x80\x86", "\xe2\x80\x87",
        "\xe2\x80\x88", "\xe2\x80\x89", "\xe2\x80\x8a", "\xe2\x80\xa8", "\xe2\x80\xa9",
        "\xe2\x80\xaf", "\xe2\x81\x9f", "\xe3\x80\x80", "\xef\xbb\xbf"};
    int character = cursor_peek(cursor);
    if (character == ' ' || (character >= '\t' && character <= '\r'))
        return 1;
    size_t left = cursor->length - cursor->position;
    for (size_t i = 0; character >= 0x80 && i < sizeof(multibyte) / sizeof(multibyte[0]); i++) {
        size_t length = strlen(multibyte[i]);
        if (left >= length && memcmp(cursor->text + cursor->position, multibyte[i], length) == 0)
            return length;
    }
    return 0;
}

static const char *read_type(struct cursor *cursor, int *type)
{
    int character = cursor_peek(cursor);
    if (character >= '0' && character <= '0' + SIOC_SIO_BINARY_ACK) { /* every valid packet */
        *type = character - '0';
        cursor->position++;
        return NULL;
    }
    if (character < 0)
        return ERROR_EMPTY_MESSAGE;
    size_t blank = white_space_length(cursor);
    if (blank > 0) {
        *type = SIOC_SIO_CONNECT;
        cursor->position += blank;
        return NULL;
    }
    if (!is_digit(character))
        return ERROR_TYPE_NOT_A_NUMBER;
    return ERROR_UNKNOWN_TYPE[character - '0' - SIOC_SIO_BINARY_ACK - 1];
}

/* "<digits>-". The value saturates just above the limit instead of growing with the number of
 * digits, so no run of digits can overflow it or make us allocate for it (CVE-2020-36049,
 * CVE-2026-33151). Leading zeros are fine, as with Node's Number(). */
static const char *read_attachment_count(struct cursor *cursor, size_t max_attachments,
                                         size_t *count)
{
    size_t value = 0;
    size_t digit_count = 0;
    int too_many = 0;
    while (is_digit(cursor_peek(cursor))) {
        size_t digit = (size_t)(cursor_peek(cursor) - '0');
        if (!too_many && value > (SIZE_MAX - digit) / 10) {
            too_many = 1;
        } else if (!too_many) {
            value = value * 10 + digit;
            too_many = value > max_attachments;
        }
        digit_count++;
        cursor->position++;
    }
    if (digit_count == 0 || cursor_peek(cursor) != '-')
        return ERROR_ILLEGAL_ATTACHMENTS;
    cursor->position++;
    if (too_many)
        return ERROR_TOO_MANY_ATTACHMENTS;
    /* socket.io-parser 4.2.7 refuses "0-": a binary packet announces at least one attachment. */
    if (value == 0)
        return ERROR_ILLEGAL_ATTACHMENTS;
    *count = value;
    return NULL;
}

/* "/name," or "/name" up to the end of the text; "/" when the text has no namespace. The name
 * is copied into a C string, so a NUL byte in it would silently name another namespace: refused,
 * like names longer than max_length (the search for ',' stops there too). */
static const char *read_namespace(struct cursor *cursor, size_t max_length, char **nsp)
{
    if (cursor_peek(cursor) != '/') {
        *nsp = root_namespace;
        return NULL;
    }
    const char *start = cursor->text + cursor->position;
    size_t remaining = cursor->length - cursor->position;
    size_t window = remaining <= max_length ? remaining : max_length + 1;
    const char *comma = memchr(start, ',', window);
    size_t name_length = comma != NULL ? (size_t)(comma - start) : remaining;
    if (name_length > max_length || memchr(start, '\0', name_length) != NULL)
        return ERROR_INVALID_NAMESPACE;
    *nsp = copy_text(start, name_length);
    if (*nsp == NULL)
        return ERROR_OUT_OF_MEMORY;
    cursor->position += name_length + (comma != NULL ? 1 : 0);
    return NULL;
}

/* An optional run of digits. The check inside the loop keeps the value below 2^57, so it cannot
 * overflow however long the run is. */
static const char *read_ack_id(struct cursor *cursor, int64_t *id)
{
    if (!is_digit(cursor_peek(cursor))) {
        *id = SIOC_SIO_NO_ACK_ID;
        return NULL;
    }
    int64_t value = 0;
    while (is_digit(cursor_peek(cursor))) {
        value = value * 10 + (cursor_peek(cursor) - '0');
        if (value > MAX_SAFE_INTEGER)
            return ERROR_INVALID_ACK_ID;
        cursor->position++;
    }
    *id = value;
    return NULL;
}

static json_t *json_load_once(const char *text, size_t length, size_t flags, int *as_real)
{
    json_error_t json_error;
    flags |= JSON_DECODE_ANY | JSON_ALLOW_NUL;
    json_t *value = json_loadb(text, length, flags, &json_error);
    /* An integer beyond int64 is a double to JSON.parse: parse the text again with every
     * integer as a real, which is exactly what JavaScript holds (and prints) for all of them. */
    if (value == NULL && json_error_code(&json_error) == json_error_numeric_overflow &&
        !(flags & JSON_DECODE_INT_AS_REAL)) {
        value = json_loadb(text, length, flags | JSON_DECODE_INT_AS_REAL, &json_error);
        if (value != NULL && as_real != NULL)
            *as_real = 1;
    }
    return value;
}

json_t *sioc__sio_json_load(const char *text, size_t length, size_t flags, int *as_real)
{
    if (as_real != NULL)
        *as_real = 0;
    /* jansson skips a raw NUL byte right after a number or a literal ("[1\0,2]"); no JSON text
     * holds one (a string's NUL is "\u0000"), so it is refused first, as JSON.parse does. */
    if (memchr(text, '\0', length) != NULL)
        return NULL;
    json_t *value = json_load_once(text, length, flags, as_real);
    if (value != NULL)
        return value;
    char *copy = sioc__sio_scan_without_lone_surrogates(text, length);
    if (copy == NULL)
        return NULL;
    value = json_load_once(copy, length, flags, as_real);
    free(copy);
    return value;
}

/* The rest of the text, if any, is one JSON value. jansson refuses trailing garbage by itself
 * (only whitespace may follow, as with JSON.parse). */
static const char *read_payload(struct cursor *cursor, json_t **data)
{
    const char *payload = cursor->text + cursor->position;
    size_t length = cursor->length - cursor->position;
    if (length == 0)
        return NULL;
    *data = sioc__sio_json_load(payload, length, 0, NULL);
    return *data != NULL ? NULL : ERROR_INVALID_PAYLOAD;
}

int sioc__sio_packet_parse(sioc__sio_packet_t *packet)
{
    if (packet->data != NULL || packet->raw == NULL)
        return 0;
    struct cursor cursor = {packet->raw, packet->raw_length, 0};
    return read_payload(&cursor, &packet->data) == NULL ? 0 : -1;
}

/* The scanner's verdict stands for jansson's (fuzz_sio_scan checks that they agree); only a
 * name that is a plain string is kept as bytes, since a number or an escaped name must be
 * decoded to be looked up and checked against the reserved names. */
static const char *keep_event_bytes(struct cursor *cursor, sioc__sio_packet_t *packet, int *kept)
{
    const char *payload = cursor->text + cursor->position;
    size_t length = cursor->length - cursor->position;
    sioc__sio_scan_t scan;
    *kept = 0;
    if (length == 0)
        return NULL; /* no payload: refused by is_payload_valid */
    if (sioc__sio_scan_event(payload, length, &scan) != 0)
        return ERROR_INVALID_PAYLOAD;
    if (!scan.name_is_string || scan.name_escaped)
        return NULL;
    if (sioc__sio_is_reserved_event(payload + scan.name_start, scan.name_length))
        return ERROR_INVALID_PAYLOAD;
    packet->raw = payload;
    packet->raw_length = length;
    packet->scan = scan;
    *kept = 1;
    return NULL;
}

static int is_event_name(const json_t *value)
{
    if (json_is_number(value))
        return 1;
    return json_is_string(value) &&
           !sioc__sio_is_reserved_event(json_string_value(value), json_string_length(value));
}

/* Decoder.isPayloadValid, with an absent payload refused wherever the header promises one. */
static int is_payload_valid(int type, const json_t *data)
{
    switch (type) {
    case SIOC_SIO_CONNECT:
        return data == NULL || json_is_object(data);
    case SIOC_SIO_DISCONNECT:
        return data == NULL;
    case SIOC_SIO_CONNECT_ERROR:
        return json_is_string(data) || json_is_object(data);
    case SIOC_SIO_EVENT:
    case SIOC_SIO_BINARY_EVENT:
        /* json_array_get() gives NULL, no event name, for an empty array */
        return json_is_array(data) && is_event_name(json_array_get(data, 0));
    case SIOC_SIO_ACK:
    case SIOC_SIO_BINARY_ACK:
        return json_is_array(data);
    default:
        return 0;
    }
}

/* Node accepts any number num with 0 <= num < attachments and indexes its buffers with it
 * (CVE-2022-2421 was a string num). We keep the placeholder for the application to look up, so
 * num must be an integer; an integral real such as 0.0 (the same JavaScript number) is rewritten
 * as an integer so that json_integer_value() reads it right. */
static const char *check_placeholder(json_t *placeholder, size_t attachment_count)
{
    json_t *num = json_object_get(placeholder, "num");
    if (json_is_integer(num)) {
        json_int_t index = json_integer_value(num);
        if (index < 0 || (uint64_t)index >= attachment_count)
            return ERROR_ILLEGAL_PLACEHOLDER;
        return NULL;
    }
    if (!json_is_real(num))
        return ERROR_ILLEGAL_PLACEHOLDER;
    double value = json_real_value(num);
    if (!(value >= 0.0 && value < (double)attachment_count && value < 1e18))
        return ERROR_ILLEGAL_PLACEHOLDER;
    json_int_t index = (json_int_t)value;
    if ((double)index != value)
        return ERROR_ILLEGAL_PLACEHOLDER;
    if (json_object_set_new(placeholder, "num", json_integer(index)) != 0)
        return ERROR_OUT_OF_MEMORY;
    return NULL;
}

/* binary.ts _reconstructPacket: every object whose "_placeholder" is true, at any depth, is a
 * placeholder (and is not searched further). jansson's depth limit bounds the recursion. */
static const char *check_placeholders(json_t *value, size_t attachment_count)
{
    const char *problem = NULL;
    if (json_is_array(value)) {
        for (size_t i = 0; i < json_array_size(value) && problem == NULL; i++)
            problem = check_placeholders(json_array_get(value, i), attachment_count);
    } else if (json_is_object(value)) {
        if (json_is_true(json_object_get(value, "_placeholder")))
            return check_placeholder(value, attachment_count);
        for (void *it = json_object_iter(value); it != NULL && problem == NULL;
             it = json_object_iter_next(value, it))
            problem = check_placeholders(json_object_iter_value(it), attachment_count);
    }
    return problem;
}

/* Decoder.decodeString. On failure the caller clears the partly filled packet. */
static const char *decode_text(const sioc__sio_decoder_t *decoder, const char *text, size_t length,
                               sioc__sio_packet_t *packet)
{
    struct cursor cursor = {text, length, 0};
    const char *problem = read_type(&cursor, &packet->type);
    if (problem == NULL && is_binary_type(packet->type))
        problem =
            read_attachment_count(&cursor, decoder->max_attachments, &packet->attachment_count);
    if (problem == NULL)
        problem = read_namespace(&cursor, decoder->max_nsp_length, &packet->nsp);
    if (problem == NULL)
        problem = read_ack_id(&cursor, &packet->id);
    int kept = 0;
    if (problem == NULL && decoder->keep_event_bytes && packet->type == SIOC_SIO_EVENT)
        problem = keep_event_bytes(&cursor, packet, &kept);
    if (kept)
        return problem;
    if (problem == NULL)
        problem = read_payload(&cursor, &packet->data);
    if (problem == NULL && !is_payload_valid(packet->type, packet->data))
        problem = ERROR_INVALID_PAYLOAD;
    if (problem == NULL && is_binary_type(packet->type))
        problem = check_placeholders(packet->data, packet->attachment_count);
    return problem;
}

/* ---------------------------------------------------------------------------------------------
 * Decoder */

void sioc__sio_decoder_init(sioc__sio_decoder_t *decoder, size_t max_attachments)
{
    memset(decoder, 0, sizeof(*decoder));
    decoder->max_attachments =
        max_attachments > UINT32_MAX ? UINT32_MAX : (uint32_t)max_attachments;
    decoder->max_nsp_length = DEFAULT_MAX_NSP_LENGTH;
}

/* Drops a pending packet; the limits stay. */
static void decoder_reset(sioc__sio_decoder_t *decoder)
{
    if (decoder->pending != NULL)
        sioc__sio_packet_clear(decoder->pending);
    free(decoder->pending);
    decoder->pending = NULL;
    decoder->received = 0;
    decoder->has_pending = 0;
}

void sioc__sio_decoder_free(sioc__sio_decoder_t *decoder)
{
    decoder_reset(decoder);
}

static int decode_failed(sioc__sio_decoder_t *decoder, const char *message, const char **error)
{
    decoder_reset(decoder);
    if (error != NULL)
        *error = message;
    return SIOC_SIO_DECODE_ERROR;
}

/* Hands the pending packet to the caller and starts afresh. */
static int decode_completed(sioc__sio_decoder_t *decoder, sioc__sio_packet_t *out)
{
    *out = *decoder->pending;
    free(decoder->pending);
    decoder->pending = NULL;
    decoder->received = 0;
    decoder->has_pending = 0;
    return SIOC_SIO_DECODE_COMPLETE;
}

int sioc__sio_decoder_add_text(sioc__sio_decoder_t *decoder, const char *data, size_t length,
                               sioc__sio_packet_t *out, const char **error)
{
    if (decoder->has_pending)
        return decode_failed(decoder, ERROR_PLAINTEXT_PENDING, error);

    /* Decoded on the stack: only a packet that waits for attachments is kept (an idle client's
     * decoder holds no packet). */
    sioc__sio_packet_t packet = {.id = SIOC_SIO_NO_ACK_ID};
    const char *problem = decode_text(decoder, data, length, &packet);
    if (problem == NULL && is_binary_type(packet.type) && packet.attachment_count > 0) {
        packet.attachments = calloc(packet.attachment_count, sizeof(*packet.attachments));
        decoder->pending = packet.attachments ? malloc(sizeof(*decoder->pending)) : NULL;
        if (decoder->pending == NULL)
            problem = ERROR_OUT_OF_MEMORY;
    }
    if (problem != NULL) {
        sioc__sio_packet_clear(&packet);
        return decode_failed(decoder, problem, error);
    }
    if (decoder->pending == NULL) {
        *out = packet;
        return SIOC_SIO_DECODE_COMPLETE;
    }
    *decoder->pending = packet;
    decoder->has_pending = 1;
    return SIOC_SIO_DECODE_PENDING;
}

int sioc__sio_decoder_add_binary(sioc__sio_decoder_t *decoder, const uint8_t *data, size_t length,
                                 sioc__sio_packet_t *out, const char **error)
{
    if (!decoder->has_pending)
        return decode_failed(decoder, ERROR_BINARY_NOT_PENDING, error);

    sioc__sio_attachment_t *attachment = &decoder->pending->attachments[decoder->received];
    attachment->data = malloc(length > 0 ? length : 1);
    if (attachment->data == NULL)
        return decode_failed(decoder, ERROR_OUT_OF_MEMORY, error);
    if (length > 0)
        memcpy(attachment->data, data, length);
    attachment->length = length;
    decoder->received++;
    if (decoder->received < decoder->pending->attachment_count)
        return SIOC_SIO_DECODE_PENDING;
    return decode_completed(decoder, out);
}

/* ---------------------------------------------------------------------------------------------
 * Encoding: JSON written byte for byte as JSON.stringify writes it */

/* Appends bytes, keeping room for a final NUL; after a failure it does nothing. */
static void buffer_append(sioc__sio_text_t *buffer, const char *bytes, size_t count)
{
    if (buffer->failed)
        return;
    if (count >= SIZE_MAX - buffer->length) {
        buffer->failed = 1;
        return;
    }
    size_t needed = buffer->length + count + 1;
    if (needed > buffer->capacity) {
        size_t capacity = buffer->capacity > 0 ? buffer->capacity : 64;
        while (capacity < needed)
            capacity = capacity <= SIZE_MAX / 2 ? capacity * 2 : needed;
        char *grown = realloc(buffer->data, capacity);
        if (grown == NULL) {
            buffer->failed = 1;
            return;
        }
        buffer->data = grown;
        buffer->capacity = capacity;
    }
    memcpy(buffer->data + buffer->length, bytes, count);
    buffer->length += count;
}

static void buffer_append_text(sioc__sio_text_t *buffer, const char *text)
{
    buffer_append(buffer, text, strlen(text));
}

/* Decimal digits of value: the encoder writes a packet type and an ack id for every packet, and
 * snprintf's format interpretation showed in the echo profile (about 1 % of the server's time). */
static void buffer_append_unsigned(sioc__sio_text_t *buffer, uint64_t value)
{
    char digits[20];
    size_t start = sizeof(digits);
    do {
        digits[--start] = (char)('0' + value % 10);
        value /= 10;
    } while (value != 0);
    buffer_append(buffer, digits + start, sizeof(digits) - start);
}

static void buffer_append_repeated(sioc__sio_text_t *buffer, char character, int count)
{
    for (int i = 0; i < count; i++)
        buffer_append(buffer, &character, 1);
}

/* JSON.stringify's QuoteJSONString: only '"', '\\' and control characters are escaped, with
 * lower-case hex; '/', DEL, U+2028 and all other UTF-8 pass through unchanged. (A JavaScript
 * string may also hold lone surrogates, which JSON.stringify escapes; a jansson string is valid
 * UTF-8 and cannot.) */
static void write_string(sioc__sio_text_t *buffer, const char *text, size_t length)
{
    static const char hex[] = "0123456789abcdef";
    buffer_append(buffer, "\"", 1);
    size_t run_start = 0;
    for (size_t i = 0; i < length; i++) {
        unsigned char byte = (unsigned char)text[i];
        if (byte >= 0x20 && byte != '"' && byte != '\\')
            continue;
        buffer_append(buffer, text + run_start, i - run_start);
        run_start = i + 1;
        switch (byte) {
        case '"':
            buffer_append(buffer, "\\\"", 2);
            break;
        case '\\':
            buffer_append(buffer, "\\\\", 2);
            break;
        case '\b':
            buffer_append(buffer, "\\b", 2);
            break;
        case '\f':
            buffer_append(buffer, "\\f", 2);
            break;
        case '\n':
            buffer_append(buffer, "\\n", 2);
            break;
        case '\r':
            buffer_append(buffer, "\\r", 2);
            break;
        case '\t':
            buffer_append(buffer, "\\t", 2);
            break;
        default: {
            char escape[6] = {'\\', 'u', '0', '0', hex[byte >> 4], hex[byte & 0xf]};
            buffer_append(buffer, escape, sizeof(escape));
        }
        }
    }
    buffer_append(buffer, text + run_start, length - run_start);
    buffer_append(buffer, "\"", 1);
}

/* The shortest digits that read back as value (> 0, finite), with the decimal exponent of the
 * first digit: value = 0.d1d2d3... * 10^(exponent + 1). */
struct decimal {
    char digits[24];
    int count;
    int exponent;
};

/* Parses snprintf's "%e" output "d[.ddd]e[+-]xx". Any byte that is not a digit is skipped before
 * the 'e', so a locale's decimal comma does no harm. */
static void parse_scientific(const char *text, struct decimal *decimal)
{
    decimal->count = 0;
    while (*text != '\0' && *text != 'e') {
        if (is_digit(*text) && decimal->count < (int)sizeof(decimal->digits) - 1)
            decimal->digits[decimal->count++] = *text;
        text++;
    }
    decimal->exponent = *text == 'e' ? atoi(text + 1) : 0;
    while (decimal->count > 1 && decimal->digits[decimal->count - 1] == '0')
        decimal->count--;
    decimal->digits[decimal->count] = '\0';
}

/* Tries 1 to 17 significant digits (17 always reads back exactly); glibc's printf rounds
 * correctly, so the first that reads back is the shortest, and the closest of that length. */
static void shortest_decimal(double value, struct decimal *decimal)
{
    char text[40];
    for (int precision = 1; precision <= 17; precision++) {
        snprintf(text, sizeof(text), "%.*e", precision - 1, value);
        if (strtod(text, NULL) == value)
            break;
    }
    parse_scientific(text, decimal);
}

static void write_exponent_form(sioc__sio_text_t *buffer, const struct decimal *decimal)
{
    char exponent[16];
    buffer_append(buffer, decimal->digits, 1);
    if (decimal->count > 1) {
        buffer_append(buffer, ".", 1);
        buffer_append(buffer, decimal->digits + 1, (size_t)decimal->count - 1);
    }
    snprintf(exponent, sizeof(exponent), "e%c%d", decimal->exponent < 0 ? '-' : '+',
             decimal->exponent < 0 ? -decimal->exponent : decimal->exponent);
    buffer_append_text(buffer, exponent);
}

/* Number::toString (ECMA-262 6.1.6.1.20) for a finite double: plain digits for decimal exponents
 * from -7 to 20, otherwise d.ddde+x. Integral values beyond int64 come out as plain digits
 * ("100000000000000000000") exactly as in JavaScript; our decoder reads them back as doubles. */
static void write_real(sioc__sio_text_t *buffer, double value)
{
    if (value != value || value - value != 0) { /* NaN, Infinity: as JSON.stringify */
        buffer_append_text(buffer, "null");
        return;
    }
    if (value == 0) { /* -0 too */
        buffer_append(buffer, "0", 1);
        return;
    }
    if (value < 0) {
        buffer_append(buffer, "-", 1);
        value = -value;
    }
    struct decimal decimal;
    shortest_decimal(value, &decimal);
    int digits = decimal.count;
    int point = decimal.exponent + 1; /* digits before the decimal point */
    if (point > 21 || point <= -6) {
        write_exponent_form(buffer, &decimal);
    } else if (digits <= point) {
        buffer_append(buffer, decimal.digits, (size_t)digits);
        buffer_append_repeated(buffer, '0', point - digits);
    } else if (point > 0) {
        buffer_append(buffer, decimal.digits, (size_t)point);
        buffer_append(buffer, ".", 1);
        buffer_append(buffer, decimal.digits + point, (size_t)(digits - point));
    } else {
        buffer_append(buffer, "0.", 2);
        buffer_append_repeated(buffer, '0', -point);
        buffer_append(buffer, decimal.digits, (size_t)digits);
    }
}

static void write_integer(sioc__sio_text_t *buffer, json_int_t value)
{
    /* Past 2^53 a JavaScript peer holds (and JSON.stringify prints) the nearest double. */
    if (value > INT64_C(9007199254740991) || value < -INT64_C(9007199254740991)) {
        write_real(buffer, (double)value);
        return;
    }
    if (value < 0) {
        buffer_append(buffer, "-", 1);
        value = -value; /* |value| <= 2^53 - 1 here: no overflow */
    }
    buffer_append_unsigned(buffer, (uint64_t)value);
}

static void write_value(sioc__sio_text_t *buffer, json_t *value, int depth);

static void write_array(sioc__sio_text_t *buffer, json_t *array, int depth)
{
    buffer_append(buffer, "[", 1);
    for (size_t i = 0; i < json_array_size(array) && !buffer->failed; i++) {
        if (i > 0)
            buffer_append(buffer, ",", 1);
        write_value(buffer, json_array_get(array, i), depth);
    }
    buffer_append(buffer, "]", 1);
}

/* An own property key that is a canonical array index ("0", "42"; no sign, no leading zero,
 * below 2^32 - 1). JavaScript orders such keys first, ascending, whatever the insertion order;
 * other keys follow in insertion order, which is jansson's iteration order. */
static int is_array_index(const char *key, size_t length, uint32_t *index)
{
    if (length == 0 || length > 10 || (key[0] == '0' && length > 1))
        return 0;
    uint64_t value = 0;
    for (size_t i = 0; i < length; i++) {
        if (!is_digit(key[i]))
            return 0;
        value = value * 10 + (uint64_t)(key[i] - '0');
    }
    if (value >= UINT32_MAX)
        return 0;
    *index = (uint32_t)value;
    return 1;
}

struct indexed_member {
    uint32_t index;
    void *iterator;
};

static int compare_indexed_members(const void *left, const void *right)
{
    uint32_t a = ((const struct indexed_member *)left)->index;
    uint32_t b = ((const struct indexed_member *)right)->index;
    return (a > b) - (a < b);
}

static void write_member(sioc__sio_text_t *buffer, void *iterator, int depth, int *first)
{
    if (!*first)
        buffer_append(buffer, ",", 1);
    *first = 0;
    write_string(buffer, json_object_iter_key(iterator), json_object_iter_key_len(iterator));
    buffer_append(buffer, ":", 1);
    write_value(buffer, json_object_iter_value(iterator), depth);
}

/* Collects the array-index members, sorted; returns how many (0 without any, or on failure). */
static size_t sorted_indexed_members(sioc__sio_text_t *buffer, json_t *object,
                                     struct indexed_member **members)
{
    size_t count = 0;
    uint32_t index;
    *members = NULL;
    for (void *it = json_object_iter(object); it != NULL; it = json_object_iter_next(object, it))
        count += is_array_index(json_object_iter_key(it), json_object_iter_key_len(it), &index);
    if (count == 0)
        return 0;
    *members = malloc(count * sizeof(**members));
    if (*members == NULL) {
        buffer->failed = 1;
        return 0;
    }
    size_t filled = 0;
    for (void *it = json_object_iter(object); it != NULL; it = json_object_iter_next(object, it)) {
        if (is_array_index(json_object_iter_key(it), json_object_iter_key_len(it), &index))
            (*members)[filled++] = (struct indexed_member){index, it};
    }
    qsort(*members, count, sizeof(**members), compare_indexed_members);
    return count;
}

static void write_object(sioc__sio_text_t *buffer, json_t *object, int depth)
{
    struct indexed_member *members;
    size_t indexed_count = sorted_indexed_members(buffer, object, &members);
    int first = 1;
    uint32_t index;
    buffer_append(buffer, "{", 1);
    for (size_t i = 0; i < indexed_count && !buffer->failed; i++)
        write_member(buffer, members[i].iterator, depth, &first);
    for (void *it = json_object_iter(object); it != NULL && !buffer->failed;
         it = json_object_iter_next(object, it)) {
        if (indexed_count == 0 ||
            !is_array_index(json_object_iter_key(it), json_object_iter_key_len(it), &index))
            write_member(buffer, it, depth, &first);
    }
    buffer_append(buffer, "}", 1);
    free(members);
}

static void write_value(sioc__sio_text_t *buffer, json_t *value, int depth)
{
    switch (json_typeof(value)) {
    case JSON_OBJECT:
    case JSON_ARRAY:
        if (depth >= MAX_JSON_DEPTH) {
            buffer->failed = 1;
            return;
        }
        if (json_is_object(value))
            write_object(buffer, value, depth + 1);
        else
            write_array(buffer, value, depth + 1);
        break;
    case JSON_STRING:
        write_string(buffer, json_string_value(value), json_string_length(value));
        break;
    case JSON_INTEGER:
        write_integer(buffer, json_integer_value(value));
        break;
    case JSON_REAL:
        write_real(buffer, json_real_value(value));
        break;
    case JSON_TRUE:
        buffer_append_text(buffer, "true");
        break;
    case JSON_FALSE:
        buffer_append_text(buffer, "false");
        break;
    case JSON_NULL:
        buffer_append_text(buffer, "null");
        break;
    }
}

/* Encoder.encodeAsString: type, "<n>-" for binary types, "<nsp>," unless the namespace is "/"
 * (or empty), the ack id, the JSON (skipped when absent or null, as "null != obj.data"). A comma
 * in the namespace would end it early on the wire; socket.io-parser 4.2.7 throws there too. */
int sioc__sio_encode_into(const sioc__sio_packet_t *packet, sioc__sio_text_t *text)
{
    text->length = 0;
    text->failed = 0;
    if (packet->type < SIOC_SIO_CONNECT || packet->type > SIOC_SIO_BINARY_ACK)
        return -1;
    if (packet->id != SIOC_SIO_NO_ACK_ID && (packet->id < 0 || packet->id > MAX_SAFE_INTEGER))
        return -1;
    const char *nsp = packet->nsp;
    int has_nsp = nsp != NULL && nsp[0] != '\0' && strcmp(nsp, "/") != 0;
    if (has_nsp && strchr(nsp, ',') != NULL)
        return -1;

    buffer_append_unsigned(text, (uint64_t)packet->type);
    if (is_binary_type(packet->type)) {
        buffer_append_unsigned(text, packet->attachment_count);
        buffer_append(text, "-", 1);
    }
    if (has_nsp) {
        buffer_append_text(text, nsp);
        buffer_append(text, ",", 1);
    }
    if (packet->id != SIOC_SIO_NO_ACK_ID)
        buffer_append_unsigned(text, (uint64_t)packet->id); /* 0 <= id, checked above */
    if (packet->data != NULL && !json_is_null(packet->data))
        write_value(text, packet->data, 0);
    if (text->failed)
        return -1;
    text->data[text->length] = '\0';
    return 0;
}

void sioc__sio_text_free(sioc__sio_text_t *text)
{
    free(text->data);
    memset(text, 0, sizeof(*text));
}

char *sioc__sio_encode(const sioc__sio_packet_t *packet, size_t *length)
{
    sioc__sio_text_t text = {0};
    if (sioc__sio_encode_into(packet, &text) != 0) {
        free(text.data);
        return NULL;
    }
    if (length != NULL)
        *length = text.length;
    return text.data;
}
