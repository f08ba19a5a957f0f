/* socket.io-msgpack-parser codec (see sio_msgpack.h), following socket.io-msgpack-parser 3.0.2
 * (index.js: Encoder, Decoder.checkPacket) and notepack.io 2.2 (lib/encode.js, lib/decode.js),
 * on msgpack-c.
 *
 * msgpack values become the JSON that JSON.parse(JSON.stringify(value)) would give for what
 * notepack decodes in Node, so both parsers hand the server the same JSON for the same emit:
 *  - nil, booleans, str, arrays, maps: null, booleans, strings, arrays, objects. Strings must be
 *    UTF-8 (Node would put U+FFFD in; notepack itself never writes anything else). Map keys must
 *    be strings without NUL (notepack would make any key a property name; jansson's JSON parser
 *    refuses NUL in keys too) and must not repeat: JavaScript would keep the last value, but no
 *    encoder writes a key twice, and the bins of the dropped value would be attachments without
 *    a placeholder.
 *  - Integers and floats are one JavaScript number: a value without fraction that fits int64 is
 *    a JSON integer (1.0 from a float, -0.0 gives 0), anything else a real (uint64 values above
 *    INT64_MAX included: JavaScript rounds them as well). NaN and the infinities become null, as
 *    JSON.stringify writes them (jansson cannot hold them).
 *  - bin: an attachment and its placeholder. A map of its own with "_placeholder": true is
 *    refused: in this format binaries travel inline, so such an object could only point the
 *    server at attachments it was not sent.
 *  - Extensions, as notepack 2.2/3.0 decode them: type 0 in fixext 1 form (d4 00 xx) is
 *    undefined, which socket.io-client sends as the data of a CONNECT without auth (absent key,
 *    null array element, dropped object member, as JSON.stringify does); type 0 in fixext 8 form
 *    (d7 00) is a Date (int64 milliseconds) and type 0 in ext 8/16/32 form an ArrayBuffer (an
 *    attachment). Type -1, the msgpack timestamp (32, 64 or 96 bits), is a Date too: notepack 2.2
 *    would hand the application [-1, <Buffer>], but notepack 3 and other msgpack libraries write
 *    dates that way and mean a date. A Date becomes the ISO string Date.prototype.toJSON writes
 *    (null outside the Date range). Every other extension is refused (notepack gives
 *    [type, <Buffer>], which no Socket.IO client sends on purpose).
 *
 * msgpack-c's C unpacker has no limits of its own: it allocates a whole array or map as soon as
 * it reads the header, so five bytes (dd ff ff ff ff) would ask for 128 GiB. Every message is
 * therefore walked once without building anything (check_value); it is handed to msgpack-c only
 * when every length and count fits in the bytes that remain, so msgpack-c allocates at most a few
 * dozen bytes per input byte, and when it nests no deeper than msgpack-c's own fixed stack. */
#include "socketio/sio_msgpack.h"

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Number.MAX_SAFE_INTEGER: the JSON decoder's bound on ack ids. */
#define MAX_SAFE_INTEGER INT64_C(9007199254740991)

/* The JSON encoder's bound on nesting; it also stops a value that contains itself. */
#define MAX_ENCODE_DEPTH 2048

/* ECMAScript time values: at most 10^8 days either side of 1970. */
#define MAX_DATE_MILLISECONDS INT64_C(8640000000000000)
#define MILLISECONDS_PER_DAY INT64_C(86400000)

/* The extension type notepack uses for undefined, Date and ArrayBuffer, and the msgpack
 * timestamp type. */
#define EXT_NOTEPACK 0
#define EXT_TIMESTAMP (-1)

/* Error messages: socket.io-msgpack-parser's or the JSON decoder's wording where they have the
 * check. */
static const char ERROR_TRUNCATED[] = "truncated msgpack";
static const char ERROR_INVALID_MSGPACK[] = "invalid msgpack";
static const char ERROR_TRAILING_BYTES[] = "trailing bytes after msgpack value";
static const char ERROR_TOO_DEEP[] = "msgpack nested too deeply";
static const char ERROR_NOT_A_MAP[] = "packet is not a map";
static const char ERROR_KEY_NOT_STRING[] = "map key is not a string";
static const char ERROR_INVALID_KEY[] = "invalid map key";
static const char ERROR_DUPLICATE_KEY[] = "duplicate map key";
static const char ERROR_INVALID_STRING[] = "invalid UTF-8 string";
static const char ERROR_UNSUPPORTED_EXTENSION[] = "unsupported msgpack extension";
static const char ERROR_INVALID_TYPE[] = "invalid packet type";
static const char ERROR_INVALID_NAMESPACE[] = "invalid namespace";
static const char ERROR_INVALID_PAYLOAD[] = "invalid payload";
static const char ERROR_INVALID_ID[] = "invalid packet id";
static const char ERROR_TOO_MANY_ATTACHMENTS[] = "too many attachments";
static const char ERROR_ILLEGAL_PLACEHOLDER[] = "illegal attachments";
static const char ERROR_OUT_OF_MEMORY[] = "out of memory";

/* ---------------------------------------------------------------------------------------------
 * Bounds check of the raw message */

struct reader {
    const uint8_t *data;
    size_t length;
    size_t position;
};

static size_t reader_remaining(const struct reader *reader)
{
    return reader->length - reader->position;
}

static uint64_t big_endian(const uint8_t *bytes, size_t width)
{
    uint64_t value = 0;
    for (size_t i = 0; i < width; i++)
        value = value << 8 | bytes[i];
    return value;
}

/* A big-endian length or count field of width bytes. */
static const char *read_length(struct reader *reader, size_t width, uint64_t *value)
{
    if (reader_remaining(reader) < width)
        return ERROR_TRUNCATED;
    *value = big_endian(reader->data + reader->position, width);
    reader->position += width;
    return NULL;
}

/* What follows one value's prefix byte: payload bytes, or child values for a container. */
struct value_shape {
    uint64_t payload;
    uint64_t children; /* two per map entry */
    int is_container;
};

/* Prefixes 0xc4..0xdf with a length or count field after them: that field's width (0: fixed
 * size, see fixed_payload). */
static const uint8_t length_widths[] = {
    1, 2, 4,       /* c4..c6 bin */
    1, 2, 4,       /* c7..c9 ext (+1 type byte) */
    0, 0,          /* ca, cb float */
    0, 0, 0, 0,    /* cc..cf uint */
    0, 0, 0, 0,    /* d0..d3 int */
    0, 0, 0, 0, 0, /* d4..d8 fixext */
    1, 2, 4,       /* d9..db str */
    2, 4,          /* dc, dd array */
    2, 4,          /* de, df map */
};

/* Payload bytes of the fixed-size prefixes 0xca..0xd8 (fixext: type byte + data). */
static const uint8_t fixed_payload[] = {4, 8, 1, 2, 4, 8, 1, 2, 4, 8, 2, 3, 5, 9, 17};

static const char *read_variable_shape(struct reader *reader, uint8_t prefix,
                                       struct value_shape *shape)
{
    uint64_t field;
    const char *problem = read_length(reader, length_widths[prefix - 0xc4], &field);
    if (problem != NULL)
        return problem;
    if (prefix >= 0xdc) {
        shape->is_container = 1;
        shape->children = prefix >= 0xde ? 2 * field : field;
    } else {
        shape->payload = prefix >= 0xc7 && prefix <= 0xc9 ? field + 1 : field;
    }
    return NULL;
}

/* Reads one value's prefix and length field; the caller made sure the prefix is there. */
static const char *read_shape(struct reader *reader, struct value_shape *shape)
{
    uint8_t prefix = reader->data[reader->position++];
    memset(shape, 0, sizeof(*shape));
    if (prefix <= 0x7f || prefix >= 0xe0 || prefix == 0xc0 || prefix == 0xc2 || prefix == 0xc3)
        return NULL; /* fixint, nil, false, true */
    if (prefix <= 0x9f) {
        shape->is_container = 1; /* fixmap, fixarray */
        shape->children = prefix <= 0x8f ? 2u * (prefix & 0x0f) : prefix & 0x0f;
        return NULL;
    }
    if (prefix <= 0xbf) {
        shape->payload = prefix & 0x1f; /* fixstr */
        return NULL;
    }
    if (prefix == 0xc1)
        return ERROR_INVALID_MSGPACK; /* never used */
    if (prefix >= 0xca && prefix <= 0xd8) {
        shape->payload = fixed_payload[prefix - 0xca];
        return NULL;
    }
    return read_variable_shape(reader, prefix, shape);
}

/* Walks one value. Every value takes at least one byte, so a count above the bytes left is
 * refused before anything is allocated for it; depth counts the containers around the value. */
static const char *check_value(struct reader *reader, int depth)
{
    if (reader_remaining(reader) == 0)
        return ERROR_TRUNCATED;
    struct value_shape shape;
    const char *problem = read_shape(reader, &shape);
    if (problem != NULL)
        return problem;
    if (shape.payload > reader_remaining(reader))
        return ERROR_TRUNCATED;
    reader->position += (size_t)shape.payload;
    if (!shape.is_container)
        return NULL;
    if (depth >= SIOC_SIO_MSGPACK_MAX_DEPTH)
        return ERROR_TOO_DEEP;
    if (shape.children > reader_remaining(reader))
        return ERROR_TRUNCATED;
    for (uint64_t i = 0; i < shape.children && problem == NULL; i++)
        problem = check_value(reader, depth + 1);
    return problem;
}

/* ---------------------------------------------------------------------------------------------
 * msgpack values to JSON */

struct conversion {
    size_t max_attachments;
    sioc__sio_attachment_t *attachments;
    size_t attachment_count;
    size_t attachment_capacity;
};

/* msgpack-c reports fixext and ext 8/16/32 alike, but notepack gives type 0 a meaning per form.
 * msgpack_unpack_next() leaves the payload in the caller's buffer, so the header is right
 * before it: fixext is <prefix> <type> <data>, the others end their header with
 * <last length byte> <type>. The length byte equals the size, which no fixext prefix
 * (0xd4..0xd8) does for the sizes asked about. */
static int is_fixext(const msgpack_object_ext *ext, uint8_t prefix)
{
    return (uint8_t)ext->ptr[-2] == prefix;
}

static int is_undefined(const msgpack_object *object)
{
    return object->type == MSGPACK_OBJECT_EXT && object->via.ext.type == EXT_NOTEPACK &&
           object->via.ext.size == 1 && is_fixext(&object->via.ext, 0xd4);
}

static int64_t floor_divide(int64_t value, int64_t divisor)
{
    int64_t quotient = value / divisor;
    return quotient * divisor > value ? quotient - 1 : quotient;
}

/* Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's civil_from_days). */
static void civil_from_days(int64_t days, int64_t *year, int *month, int *day)
{
    days += 719468;
    int64_t era = floor_divide(days, 146097);
    int64_t day_of_era = days - era * 146097;
    int64_t year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
    int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    int64_t shifted_month = (5 * day_of_year + 2) / 153; /* 0 = March */
    *day = (int)(day_of_year - (153 * shifted_month + 2) / 5 + 1);
    *month = (int)(shifted_month < 10 ? shifted_month + 3 : shifted_month - 9);
    *year = year_of_era + era * 400 + (*month <= 2);
}

/* Date.prototype.toJSON: "YYYY-MM-DDTHH:mm:ss.sssZ", years outside 0..9999 as "+YYYYYY" or
 * "-YYYYYY"; null for an invalid date. */
static json_t *date_to_json(int64_t milliseconds)
{
    if (milliseconds > MAX_DATE_MILLISECONDS || milliseconds < -MAX_DATE_MILLISECONDS)
        return json_null();
    int64_t days = floor_divide(milliseconds, MILLISECONDS_PER_DAY);
    int64_t time_of_day = milliseconds - days * MILLISECONDS_PER_DAY;
    int64_t year;
    int month, day;
    civil_from_days(days, &year, &month, &day);
    char year_text[16];
    if (year >= 0 && year <= 9999)
        snprintf(year_text, sizeof(year_text), "%04d", (int)year);
    else
        snprintf(year_text, sizeof(year_text), "%+07d", (int)year);
    char text[64]; /* what gcc works out for the widest arguments */
    snprintf(text, sizeof(text), "%s-%02d-%02dT%02d:%02d:%02d.%03dZ", year_text, month, day,
             (int)(time_of_day / 3600000), (int)(time_of_day / 60000 % 60),
             (int)(time_of_day / 1000 % 60), (int)(time_of_day % 1000));
    return json_string(text);
}

/* new Date(seconds * 1e3 + nanoseconds / 1e6): the time value is truncated toward zero. */
static json_t *timestamp_to_json(int64_t seconds, uint32_t nanoseconds)
{
    int64_t limit = MAX_DATE_MILLISECONDS / 1000 + 5; /* the nanoseconds add less than 5 s */
    if (seconds > limit || seconds < -limit)
        return json_null();
    int64_t milliseconds = seconds * 1000 + nanoseconds / 1000000;
    if (milliseconds < 0 && nanoseconds % 1000000 != 0)
        milliseconds++;
    return date_to_json(milliseconds);
}

/* The msgpack timestamp extension: 32-bit seconds; 30-bit nanoseconds and 34-bit seconds;
 * 32-bit nanoseconds and signed 64-bit seconds. */
static const char *convert_timestamp(const msgpack_object_ext *ext, json_t **value)
{
    const uint8_t *bytes = (const uint8_t *)ext->ptr;
    if (ext->size == 4) {
        *value = timestamp_to_json((int64_t)big_endian(bytes, 4), 0);
    } else if (ext->size == 8) {
        uint64_t packed = big_endian(bytes, 8);
        *value =
            timestamp_to_json((int64_t)(packed & UINT64_C(0x3ffffffff)), (uint32_t)(packed >> 34));
    } else if (ext->size == 12) {
        *value =
            timestamp_to_json((int64_t)big_endian(bytes + 4, 8), (uint32_t)big_endian(bytes, 4));
    } else {
        return ERROR_UNSUPPORTED_EXTENSION;
    }
    return *value != NULL ? NULL : ERROR_OUT_OF_MEMORY;
}

/* Copies a binary value into the next attachment and stands a placeholder in for it. */
static const char *add_attachment(struct conversion *conversion, const void *bytes, size_t length,
                                  json_t **value)
{
    if (conversion->attachment_count >= conversion->max_attachments)
        return ERROR_TOO_MANY_ATTACHMENTS;
    if (conversion->attachment_count == conversion->attachment_capacity) {
        size_t capacity = conversion->attachment_capacity ? conversion->attachment_capacity * 2 : 4;
        sioc__sio_attachment_t *grown = realloc(conversion->attachments, capacity * sizeof(*grown));
        if (grown == NULL)
            return ERROR_OUT_OF_MEMORY;
        conversion->attachments = grown;
        conversion->attachment_capacity = capacity;
    }
    uint8_t *copy = malloc(length > 0 ? length : 1);
    if (copy == NULL)
        return ERROR_OUT_OF_MEMORY;
    if (length > 0)
        memcpy(copy, bytes, length);
    size_t num = conversion->attachment_count++;
    conversion->attachments[num] = (sioc__sio_attachment_t){copy, length};
    *value = json_pack("{sbsI}", "_placeholder", 1, "num", (json_int_t)num);
    return *value != NULL ? NULL : ERROR_OUT_OF_MEMORY;
}

static const char *convert_extension(struct conversion *conversion, const msgpack_object_ext *ext,
                                     json_t **value)
{
    if (ext->type == EXT_TIMESTAMP)
        return convert_timestamp(ext, value);
    if (ext->type != EXT_NOTEPACK)
        return ERROR_UNSUPPORTED_EXTENSION;
    if (ext->size == 1 && is_fixext(ext, 0xd4))
        return NULL; /* undefined: *value stays NULL */
    if (ext->size == 8 && is_fixext(ext, 0xd7)) {
        *value = date_to_json((int64_t)big_endian((const uint8_t *)ext->ptr, 8));
        return *value != NULL ? NULL : ERROR_OUT_OF_MEMORY;
    }
    int fixext_form = (ext->size == 2 && is_fixext(ext, 0xd5)) ||
                      (ext->size == 4 && is_fixext(ext, 0xd6)) ||
                      (ext->size == 16 && is_fixext(ext, 0xd8));
    if (fixext_form)
        return ERROR_UNSUPPORTED_EXTENSION;
    return add_attachment(conversion, ext->ptr, ext->size, value);
}

/* One JavaScript number type: integral values that fit int64 become JSON integers. */
static json_t *number_to_json(double value)
{
    if (value != value || value - value != 0.0)
        return json_null(); /* NaN, Infinity */
    if (value >= -9223372036854775808.0 && value < 9223372036854775808.0 &&
        (double)(int64_t)value == value)
        return json_integer((json_int_t)(int64_t)value);
    return json_real(value);
}

static json_t *unsigned_to_json(uint64_t value)
{
    if (value <= INT64_MAX)
        return json_integer((json_int_t)value);
    return json_real((double)value);
}

static const char *convert_value(struct conversion *conversion, const msgpack_object *object,
                                 json_t **value);

/* undefined elements become null, as JSON.stringify writes them. */
static const char *convert_array(struct conversion *conversion, const msgpack_object_array *array,
                                 json_t **value)
{
    *value = json_array();
    if (*value == NULL)
        return ERROR_OUT_OF_MEMORY;
    for (uint32_t i = 0; i < array->size; i++) {
        json_t *element;
        const char *problem = convert_value(conversion, &array->ptr[i], &element);
        if (problem != NULL)
            return problem;
        if (element == NULL)
            element = json_null();
        if (json_array_append_new(*value, element) != 0)
            return ERROR_OUT_OF_MEMORY;
    }
    return NULL;
}

/* One member; one with an undefined value is left out, as JSON.stringify does. */
static const char *convert_member(struct conversion *conversion, const msgpack_object_kv *member,
                                  json_t *object)
{
    if (member->key.type != MSGPACK_OBJECT_STR)
        return ERROR_KEY_NOT_STRING;
    const char *key = member->key.via.str.ptr;
    size_t key_length = member->key.via.str.size;
    if (memchr(key, '\0', key_length) != NULL)
        return ERROR_INVALID_KEY;
    if (json_object_getn(object, key, key_length) != NULL)
        return ERROR_DUPLICATE_KEY;
    json_t *value;
    const char *problem = convert_value(conversion, &member->val, &value);
    if (problem != NULL || value == NULL)
        return problem;
    /* fails on a key that is not UTF-8, or without memory */
    if (json_object_setn_new(object, key, key_length, value) != 0)
        return ERROR_INVALID_KEY;
    return NULL;
}

static const char *convert_map(struct conversion *conversion, const msgpack_object_map *map,
                               json_t **value)
{
    *value = json_object();
    if (*value == NULL)
        return ERROR_OUT_OF_MEMORY;
    for (uint32_t i = 0; i < map->size; i++) {
        const char *problem = convert_member(conversion, &map->ptr[i], *value);
        if (problem != NULL)
            return problem;
    }
    if (json_is_true(json_object_get(*value, "_placeholder")))
        return ERROR_ILLEGAL_PLACEHOLDER;
    return NULL;
}

/* On failure *value may hold a partial result; convert_value() releases it. */
static const char *convert_any(struct conversion *conversion, const msgpack_object *object,
                               json_t **value)
{
    *value = NULL;
    switch (object->type) {
    case MSGPACK_OBJECT_NIL:
        *value = json_null();
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        *value = json_boolean(object->via.boolean);
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        *value = unsigned_to_json(object->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        *value = json_integer((json_int_t)object->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        *value = number_to_json(object->via.f64);
        break;
    case MSGPACK_OBJECT_STR:
        /* json_stringn() checks the UTF-8 */
        *value = json_stringn(object->via.str.ptr, object->via.str.size);
        return *value != NULL ? NULL : ERROR_INVALID_STRING;
    case MSGPACK_OBJECT_BIN:
        return add_attachment(conversion, object->via.bin.ptr, object->via.bin.size, value);
    case MSGPACK_OBJECT_EXT:
        return convert_extension(conversion, &object->via.ext, value);
    case MSGPACK_OBJECT_ARRAY:
        return convert_array(conversion, &object->via.array, value);
    case MSGPACK_OBJECT_MAP:
        return convert_map(conversion, &object->via.map, value);
    default:
        return ERROR_INVALID_MSGPACK;
    }
    return *value != NULL ? NULL : ERROR_OUT_OF_MEMORY;
}

/* *value is NULL afterwards for undefined, and on failure. The bounds check limits the recursion
 * to SIOC_SIO_MSGPACK_MAX_DEPTH. */
static const char *convert_value(struct conversion *conversion, const msgpack_object *object,
                                 json_t **value)
{
    const char *problem = convert_any(conversion, object, value);
    if (problem != NULL) {
        json_decref(*value);
        *value = NULL;
    }
    return problem;
}

/* ---------------------------------------------------------------------------------------------
 * The packet map */

/* The values of the keys the packet is read from, in this order. */
enum packet_field { FIELD_TYPE, FIELD_NSP, FIELD_DATA, FIELD_ID, FIELD_COUNT };

static const char *const field_names[FIELD_COUNT] = {"type", "nsp", "data", "id"};

/* NULL for an absent or undefined field. */
struct packet_fields {
    const msgpack_object *values[FIELD_COUNT];
    int seen[FIELD_COUNT];
};

/* The field a key names, or FIELD_COUNT for a key of no interest ("options"). */
static enum packet_field field_of(const msgpack_object_str *key)
{
    for (int field = 0; field < FIELD_COUNT; field++) {
        size_t length = strlen(field_names[field]);
        if (key->size == length && memcmp(key->ptr, field_names[field], length) == 0)
            return (enum packet_field)field;
    }
    return FIELD_COUNT;
}

static const char *find_fields(const msgpack_object *packet, struct packet_fields *fields)
{
    memset(fields, 0, sizeof(*fields));
    if (packet->type != MSGPACK_OBJECT_MAP)
        return ERROR_NOT_A_MAP;
    for (uint32_t i = 0; i < packet->via.map.size; i++) {
        const msgpack_object_kv *member = &packet->via.map.ptr[i];
        if (member->key.type != MSGPACK_OBJECT_STR)
            return ERROR_KEY_NOT_STRING;
        enum packet_field field = field_of(&member->key.via.str);
        if (field == FIELD_COUNT)
            continue;
        if (fields->seen[field])
            return ERROR_DUPLICATE_KEY;
        fields->seen[field] = 1;
        fields->values[field] = is_undefined(&member->val) ? NULL : &member->val;
    }
    return NULL;
}

/* Number.isInteger() within [minimum, maximum]: an integer, or a float without fraction. */
static int read_integer(const msgpack_object *object, int64_t minimum, int64_t maximum,
                        int64_t *value)
{
    if (object == NULL)
        return 0;
    if (object->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (object->via.u64 > (uint64_t)maximum)
            return 0;
        *value = (int64_t)object->via.u64;
    } else if (object->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *value = object->via.i64;
    } else if (object->type == MSGPACK_OBJECT_FLOAT32 || object->type == MSGPACK_OBJECT_FLOAT64) {
        double number = object->via.f64;
        if (!(number >= (double)minimum && number <= (double)maximum))
            return 0;
        *value = (int64_t)number;
        if ((double)*value != number)
            return 0;
    } else {
        return 0;
    }
    return *value >= minimum && *value <= maximum;
}

static const char *read_type(const msgpack_object *object, int *type)
{
    int64_t value;
    if (!read_integer(object, SIOC_SIO_CONNECT, SIOC_SIO_CONNECT_ERROR, &value))
        return ERROR_INVALID_TYPE;
    *type = (int)value;
    return NULL;
}

/* A C string, so a NUL in it would name another namespace. */
static const char *read_nsp(const msgpack_object *object, char **nsp)
{
    if (object == NULL || object->type != MSGPACK_OBJECT_STR)
        return ERROR_INVALID_NAMESPACE;
    const char *name = object->via.str.ptr;
    size_t length = object->via.str.size;
    if (length > SIOC_SIO_MSGPACK_MAX_NSP_LENGTH || memchr(name, '\0', length) != NULL)
        return ERROR_INVALID_NAMESPACE;
    json_t *checked = json_stringn(name, length); /* checks the UTF-8 */
    if (checked == NULL)
        return ERROR_INVALID_NAMESPACE;
    json_decref(checked);
    *nsp = malloc(length + 1);
    if (*nsp == NULL)
        return ERROR_OUT_OF_MEMORY;
    memcpy(*nsp, name, length);
    (*nsp)[length] = '\0';
    return NULL;
}

/* The attachments move into the packet, even on failure, so that clearing it frees them. */
static const char *read_data(const msgpack_object *object, size_t max_attachments,
                             sioc__sio_packet_t *packet)
{
    if (object == NULL)
        return NULL;
    struct conversion conversion = {.max_attachments = max_attachments};
    const char *problem = convert_value(&conversion, object, &packet->data);
    packet->attachments = conversion.attachments;
    packet->attachment_count = conversion.attachment_count;
    return problem;
}

static int is_event_name(const json_t *value)
{
    if (json_is_number(value))
        return 1;
    return json_is_string(value) &&
           !sioc__sio_is_reserved_event(json_string_value(value), json_string_length(value));
}

/* isDataValid, with the JSON decoder's check of EVENT's first element on top. */
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
        /* json_array_get() gives NULL, no event name, for an empty array */
        return json_is_array(data) && is_event_name(json_array_get(data, 0));
    case SIOC_SIO_ACK:
        return json_is_array(data);
    default:
        return 0;
    }
}

static const char *read_id(const msgpack_object *object, int type, int64_t *id)
{
    *id = SIOC_SIO_NO_ACK_ID;
    if (object == NULL)
        return NULL;
    if (type != SIOC_SIO_EVENT && type != SIOC_SIO_ACK)
        return ERROR_INVALID_ID;
    return read_integer(object, 0, MAX_SAFE_INTEGER, id) ? NULL : ERROR_INVALID_ID;
}

/* Decoder.checkPacket's order: type, namespace, payload, id. */
static const char *decode_packet(const msgpack_object *object, size_t max_attachments,
                                 sioc__sio_packet_t *packet)
{
    struct packet_fields fields;
    const char *problem = find_fields(object, &fields);
    if (problem == NULL)
        problem = read_type(fields.values[FIELD_TYPE], &packet->type);
    if (problem == NULL)
        problem = read_nsp(fields.values[FIELD_NSP], &packet->nsp);
    if (problem == NULL)
        problem = read_data(fields.values[FIELD_DATA], max_attachments, packet);
    if (problem == NULL && !is_payload_valid(packet->type, packet->data))
        problem = ERROR_INVALID_PAYLOAD;
    if (problem == NULL)
        problem = read_id(fields.values[FIELD_ID], packet->type, &packet->id);
    if (problem != NULL || packet->attachment_count == 0)
        return problem;
    /* what the JSON decoder reports for the same emit */
    if (packet->type == SIOC_SIO_EVENT)
        packet->type = SIOC_SIO_BINARY_EVENT;
    else if (packet->type == SIOC_SIO_ACK)
        packet->type = SIOC_SIO_BINARY_ACK;
    return NULL;
}

int sioc__sio_msgpack_decode(const uint8_t *data, size_t length, size_t max_attachments,
                             sioc__sio_packet_t *out, const char **error)
{
    memset(out, 0, sizeof(*out));
    struct reader reader = {data, length, 0};
    const char *problem = check_value(&reader, 0);
    if (problem == NULL && reader.position != length)
        problem = ERROR_TRAILING_BYTES;
    if (problem == NULL) {
        msgpack_unpacked unpacked;
        msgpack_unpacked_init(&unpacked);
        size_t offset = 0;
        msgpack_unpack_return result =
            msgpack_unpack_next(&unpacked, (const char *)data, length, &offset);
        if (result == MSGPACK_UNPACK_SUCCESS && offset == length)
            problem = decode_packet(&unpacked.data, max_attachments, out);
        else
            problem =
                result == MSGPACK_UNPACK_NOMEM_ERROR ? ERROR_OUT_OF_MEMORY : ERROR_INVALID_MSGPACK;
        msgpack_unpacked_destroy(&unpacked);
    }
    if (problem == NULL)
        return 0;
    sioc__sio_packet_clear(out);
    if (error != NULL)
        *error = problem;
    return -1;
}

int sioc__sio_msgpack_decode_value(const uint8_t *data, size_t length, size_t max_attachments,
                                   json_t **out, sioc__sio_attachment_t **attachments,
                                   size_t *attachment_count, const char **error)
{
    *out = NULL;
    *attachments = NULL;
    *attachment_count = 0;
    struct reader reader = {data, length, 0};
    const char *problem = check_value(&reader, 0);
    if (problem == NULL && reader.position != length)
        problem = ERROR_TRAILING_BYTES;
    struct conversion conversion = {.max_attachments = max_attachments};
    if (problem == NULL) {
        msgpack_unpacked unpacked;
        msgpack_unpacked_init(&unpacked);
        size_t offset = 0;
        msgpack_unpack_return result =
            msgpack_unpack_next(&unpacked, (const char *)data, length, &offset);
        if (result == MSGPACK_UNPACK_SUCCESS && offset == length)
            problem = convert_value(&conversion, &unpacked.data, out);
        else
            problem =
                result == MSGPACK_UNPACK_NOMEM_ERROR ? ERROR_OUT_OF_MEMORY : ERROR_INVALID_MSGPACK;
        msgpack_unpacked_destroy(&unpacked);
    }
    if (problem == NULL && *out == NULL)
        problem = ERROR_INVALID_PAYLOAD; /* undefined at the top */
    if (problem == NULL) {
        *attachments = conversion.attachments;
        *attachment_count = conversion.attachment_count;
        return 0;
    }
    for (size_t i = 0; i < conversion.attachment_count; i++)
        free(conversion.attachments[i].data);
    free(conversion.attachments);
    json_decref(*out);
    *out = NULL;
    if (error != NULL)
        *error = problem;
    return -1;
}

/* ---------------------------------------------------------------------------------------------
 * Encoding */

struct encoder {
    msgpack_sbuffer buffer;
    msgpack_packer packer;
    const sioc__sio_packet_t *packet;
    int failed;
};

static void check_written(struct encoder *encoder, int result)
{
    if (result != 0)
        encoder->failed = 1;
}

static void write_string(struct encoder *encoder, const char *text, size_t length)
{
    check_written(encoder, msgpack_pack_str_with_body(&encoder->packer, text, length));
}

static void write_integer(struct encoder *encoder, int64_t value)
{
    /* msgpack-c picks the shortest form and the unsigned ones for positive values, as notepack */
    check_written(encoder, msgpack_pack_int64(&encoder->packer, value));
}

/* notepack writes any integral number as an integer (-0 as 0) and the rest as float64. */
static void write_real(struct encoder *encoder, double value)
{
    if (value >= -9223372036854775808.0 && value < 9223372036854775808.0 &&
        (double)(int64_t)value == value)
        write_integer(encoder, (int64_t)value);
    else if (value >= 0.0 && value < 18446744073709551616.0 && (double)(uint64_t)value == value)
        check_written(encoder, msgpack_pack_uint64(&encoder->packer, (uint64_t)value));
    else
        check_written(encoder, msgpack_pack_double(&encoder->packer, value));
}

/* The attachment a placeholder stands for, or NULL if value is no placeholder of this packet. */
static const sioc__sio_attachment_t *placeholder_attachment(const struct encoder *encoder,
                                                            json_t *value)
{
    if (!json_is_true(json_object_get(value, "_placeholder")))
        return NULL;
    json_t *num = json_object_get(value, "num");
    if (!json_is_integer(num) || json_integer_value(num) < 0 ||
        (uint64_t)json_integer_value(num) >= encoder->packet->attachment_count)
        return NULL;
    return &encoder->packet->attachments[json_integer_value(num)];
}

static void write_value(struct encoder *encoder, json_t *value, int depth);

static void write_array(struct encoder *encoder, json_t *array, int depth)
{
    check_written(encoder, msgpack_pack_array(&encoder->packer, json_array_size(array)));
    for (size_t i = 0; i < json_array_size(array) && !encoder->failed; i++)
        write_value(encoder, json_array_get(array, i), depth);
}

/* A canonical array index ("0", "42": no sign, no leading zero, below 2^32 - 1): JavaScript's
 * Object.keys(), which notepack follows, lists such keys first, ascending, then the others in
 * insertion order (jansson's iteration order). */
static int is_array_index(const char *key, size_t length, uint32_t *index)
{
    if (length == 0 || length > 10 || (key[0] == '0' && length > 1))
        return 0;
    uint64_t value = 0;
    for (size_t i = 0; i < length; i++) {
        if (key[i] < '0' || key[i] > '9')
            return 0;
        value = value * 10 + (uint64_t)(key[i] - '0');
    }
    if (value >= UINT32_MAX)
        return 0;
    *index = (uint32_t)value;
    return 1;
}

struct member_order {
    int is_index;
    uint32_t index;
    size_t position; /* insertion order */
    void *iterator;
};

static int compare_members(const void *left, const void *right)
{
    const struct member_order *a = left, *b = right;
    if (a->is_index != b->is_index)
        return b->is_index - a->is_index;
    if (a->is_index)
        return (a->index > b->index) - (a->index < b->index);
    return (a->position > b->position) - (a->position < b->position);
}

static void write_member(struct encoder *encoder, void *iterator, int depth)
{
    write_string(encoder, json_object_iter_key(iterator), json_object_iter_key_len(iterator));
    write_value(encoder, json_object_iter_value(iterator), depth);
}

static void write_object(struct encoder *encoder, json_t *object, int depth)
{
    size_t count = json_object_size(object);
    check_written(encoder, msgpack_pack_map(&encoder->packer, count));
    if (count == 0)
        return;
    struct member_order *members = malloc(count * sizeof(*members));
    if (members == NULL) {
        encoder->failed = 1;
        return;
    }
    size_t position = 0;
    for (void *it = json_object_iter(object); it != NULL && position < count;
         it = json_object_iter_next(object, it), position++) {
        members[position] = (struct member_order){0, 0, position, it};
        members[position].is_index = is_array_index(
            json_object_iter_key(it), json_object_iter_key_len(it), &members[position].index);
    }
    qsort(members, position, sizeof(*members), compare_members);
    for (size_t i = 0; i < position && !encoder->failed; i++)
        write_member(encoder, members[i].iterator, depth);
    free(members);
}

static void write_container(struct encoder *encoder, json_t *value, int depth)
{
    const sioc__sio_attachment_t *attachment = placeholder_attachment(encoder, value);
    if (attachment != NULL)
        check_written(encoder, msgpack_pack_bin_with_body(&encoder->packer, attachment->data,
                                                          attachment->length));
    else if (depth >= MAX_ENCODE_DEPTH)
        encoder->failed = 1;
    else if (json_is_object(value))
        write_object(encoder, value, depth + 1);
    else
        write_array(encoder, value, depth + 1);
}

static void write_value(struct encoder *encoder, json_t *value, int depth)
{
    switch (json_typeof(value)) {
    case JSON_OBJECT:
    case JSON_ARRAY:
        write_container(encoder, value, depth);
        break;
    case JSON_STRING:
        write_string(encoder, json_string_value(value), json_string_length(value));
        break;
    case JSON_INTEGER:
        write_integer(encoder, json_integer_value(value));
        break;
    case JSON_REAL:
        write_real(encoder, json_real_value(value));
        break;
    case JSON_TRUE:
        check_written(encoder, msgpack_pack_true(&encoder->packer));
        break;
    case JSON_FALSE:
        check_written(encoder, msgpack_pack_false(&encoder->packer));
        break;
    case JSON_NULL:
        check_written(encoder, msgpack_pack_nil(&encoder->packer));
        break;
    }
}

static int is_encodable(const sioc__sio_packet_t *packet)
{
    if (packet->type < SIOC_SIO_CONNECT || packet->type > SIOC_SIO_BINARY_ACK)
        return 0;
    if (packet->id == SIOC_SIO_NO_ACK_ID)
        return 1;
    int takes_id = packet->type == SIOC_SIO_EVENT || packet->type == SIOC_SIO_ACK ||
                   packet->type == SIOC_SIO_BINARY_EVENT || packet->type == SIOC_SIO_BINARY_ACK;
    return takes_id && packet->id >= 0 && packet->id <= MAX_SAFE_INTEGER;
}

static void write_id(struct encoder *encoder)
{
    write_string(encoder, "id", 2);
    write_integer(encoder, encoder->packet->id);
}

/* Key order as socket.io 4.8 builds its packet objects: socket.emit() {type, data, id} and
 * ack() {id, type, data}, then Socket.packet() adds nsp; the other packets {type, data?}. */
static void write_packet(struct encoder *encoder)
{
    const sioc__sio_packet_t *packet = encoder->packet;
    int type = packet->type == SIOC_SIO_BINARY_EVENT ? SIOC_SIO_EVENT
               : packet->type == SIOC_SIO_BINARY_ACK ? SIOC_SIO_ACK
                                                     : packet->type;
    int has_data = packet->data != NULL && !json_is_null(packet->data);
    int has_id = packet->id != SIOC_SIO_NO_ACK_ID;
    const char *nsp = packet->nsp != NULL ? packet->nsp : "/";

    check_written(encoder, msgpack_pack_map(&encoder->packer, 2 + has_data + has_id));
    if (has_id && type == SIOC_SIO_ACK)
        write_id(encoder);
    write_string(encoder, "type", 4);
    write_integer(encoder, type);
    if (has_data) {
        write_string(encoder, "data", 4);
        write_value(encoder, packet->data, 0);
    }
    if (has_id && type == SIOC_SIO_EVENT)
        write_id(encoder);
    write_string(encoder, "nsp", 3);
    write_string(encoder, nsp, strlen(nsp));
}

int sioc__sio_msgpack_pack_value(msgpack_packer *packer, json_t *value,
                                 const sioc__sio_attachment_t *attachments, size_t attachment_count)
{
    /* The encoder reads placeholders through its packet. */
    sioc__sio_packet_t packet = {.attachments = (sioc__sio_attachment_t *)attachments,
                                 .attachment_count = attachment_count};
    struct encoder encoder = {.packet = &packet};
    encoder.packer = *packer;
    write_value(&encoder, value, 0);
    return encoder.failed ? -1 : 0;
}

uint8_t *sioc__sio_msgpack_encode(const sioc__sio_packet_t *packet, size_t *length)
{
    if (!is_encodable(packet))
        return NULL;
    struct encoder encoder = {.packet = packet};
    msgpack_sbuffer_init(&encoder.buffer);
    msgpack_packer_init(&encoder.packer, &encoder.buffer, msgpack_sbuffer_write);
    write_packet(&encoder);
    if (encoder.failed) {
        msgpack_sbuffer_destroy(&encoder.buffer);
        return NULL;
    }
    if (length != NULL)
        *length = encoder.buffer.size;
    return (uint8_t *)msgpack_sbuffer_release(&encoder.buffer);
}
