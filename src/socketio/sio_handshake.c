/* The handshake of a client (Node's socket.handshake): what the opening request said, kept as
 * its bytes in one block, the usual header names, values and url prefixes as one-byte codes, and
 * turned into a jansson object only when a program asks for it. Built as an object at once, it
 * cost an idle connection about 2 KB; as the request's bytes, 225 bytes for a bench client's. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include "socketio/sio_internal.h"

/* Node lower-cases header names (IncomingMessage.headers); longer names are left out. */
#define MAX_HEADER_NAME 256

struct sioc__sio_handshake_s {
    json_t *json;      /* everything but auth, built on the first ask and shared by the sockets */
    int64_t issued_ms; /* when the request came, in ms since the epoch */
    uint32_t references;
    uint32_t header_count : 31;
    uint32_t xdomain : 1;
    /* The url (a prefix code, then the rest NUL-terminated), the address NUL, then per header
     * its name (a name code, or the lower-cased name NUL-terminated) and its value (a varint
     * v: a value code when v is odd, else v / 2 bytes follow, without NUL). */
    char text[];
};

/* What almost every Socket.IO handshake says, as HPACK's static table does for HTTP/2: one byte
 * in place of each. Codes run from 1; a header name is a token and a url starts with '/' or a
 * letter, so a byte under 32 cannot begin one. The url's code 0 means no prefix. */
typedef struct {
    const char *text;
    size_t length;
} entry_t;
#define ENTRY(text)                                                                                \
    {                                                                                              \
        text, sizeof(text) - 1                                                                     \
    }
static const entry_t url_prefixes[] = {
    ENTRY(""),
    ENTRY("/socket.io/?EIO=4&transport=websocket"),
    ENTRY("/socket.io/?EIO=4&transport=polling"),
    ENTRY("/socket.io/?EIO=3&transport=websocket"),
    ENTRY("/socket.io/?EIO=3&transport=polling"),
    ENTRY("/socket.io/"),
};
static const entry_t header_names[] = {
    ENTRY(""),
    ENTRY("host"),
    ENTRY("connection"),
    ENTRY("upgrade"),
    ENTRY("sec-websocket-key"),
    ENTRY("sec-websocket-version"),
    ENTRY("sec-websocket-extensions"),
    ENTRY("sec-websocket-protocol"),
    ENTRY("origin"),
    ENTRY("user-agent"),
    ENTRY("accept"),
    ENTRY("accept-encoding"),
    ENTRY("accept-language"),
    ENTRY("cache-control"),
    ENTRY("pragma"),
    ENTRY("cookie"),
    ENTRY("authorization"),
    ENTRY("referer"),
    ENTRY("x-forwarded-for"),
    ENTRY("x-forwarded-proto"),
    ENTRY("x-forwarded-host"),
    ENTRY("x-real-ip"),
    ENTRY("content-type"),
    ENTRY("content-length"),
    ENTRY("sec-fetch-dest"),
    ENTRY("sec-fetch-mode"),
    ENTRY("sec-fetch-site"),
};
/* Matched exactly (Node keeps a value's case). */
static const entry_t header_values[] = {
    ENTRY("websocket"),
    ENTRY("Upgrade"),
    ENTRY("13"),
    ENTRY("keep-alive"),
    ENTRY("upgrade"),
    ENTRY("Keep-Alive, Upgrade"),
    ENTRY("keep-alive, Upgrade"),
    ENTRY("permessage-deflate; client_max_window_bits"),
    ENTRY("no-cache"),
    ENTRY("gzip, deflate, br"),
    ENTRY("gzip, deflate"),
    ENTRY("*/*"),
    ENTRY("cors"),
    ENTRY("same-origin"),
    ENTRY("same-site"),
    ENTRY("cross-site"),
    ENTRY("empty"),
};

#define COUNT(table) (sizeof(table) / sizeof((table)[0]))

static size_t url_prefix(const char *url)
{
    size_t best = 0;
    for (size_t i = 1; i < COUNT(url_prefixes); i++) {
        if (url_prefixes[i].length > url_prefixes[best].length &&
            strncmp(url, url_prefixes[i].text, url_prefixes[i].length) == 0)
            best = i;
    }
    return best;
}

/* The name's code, or 0 when it has none. Lengths first: a connection is a few of these. */
static size_t name_code(const char *name, size_t length)
{
    for (size_t i = 1; i < COUNT(header_names); i++) {
        if (header_names[i].length == length && strcasecmp(name, header_names[i].text) == 0)
            return i;
    }
    return 0;
}

/* The value's index + 1, or 0 when it has none. */
static size_t value_code(const char *value, size_t length)
{
    for (size_t i = 0; i < COUNT(header_values); i++) {
        if (header_values[i].length == length && memcmp(value, header_values[i].text, length) == 0)
            return i + 1;
    }
    return 0;
}

static size_t varint_size(size_t value)
{
    size_t size = 1;
    while (value >= 0x80) {
        value >>= 7;
        size++;
    }
    return size;
}

static char *write_varint(char *cursor, size_t value)
{
    while (value >= 0x80) {
        *cursor++ = (char)(0x80 | (value & 0x7f));
        value >>= 7;
    }
    *cursor++ = (char)value;
    return cursor;
}

static const char *read_varint(const char *cursor, size_t *value)
{
    size_t result = 0;
    for (unsigned shift = 0;; shift += 7) {
        unsigned char byte = (unsigned char)*cursor++;
        result |= (size_t)(byte & 0x7f) << shift;
        if (byte < 0x80)
            break;
    }
    *value = result;
    return cursor;
}

/* The varint that stands for a value: its code (odd) or its length (even). */
static size_t value_varint(const char *value, size_t length)
{
    size_t code = value_code(value, length);
    return code != 0 ? 2 * (code - 1) + 1 : 2 * length;
}

static size_t header_size(const char *name, const char *value, size_t value_length)
{
    size_t v = value_varint(value, value_length);
    size_t name_length = strlen(name);
    return (name_code(name, name_length) != 0 ? 1 : name_length + 1) + varint_size(v) +
           (v % 2 == 1 ? 0 : value_length);
}

static char *copy_text(char *cursor, const char *text, size_t length)
{
    memcpy(cursor, text, length);
    cursor[length] = '\0';
    return cursor + length + 1;
}

static char *copy_header(char *cursor, const char *name, const char *value, size_t value_length)
{
    size_t code = name_code(name, strlen(name));
    if (code != 0) {
        *cursor++ = (char)code;
    } else {
        for (size_t i = 0; name[i] != '\0'; i++)
            *cursor++ = (char)tolower((unsigned char)name[i]);
        *cursor++ = '\0';
    }
    size_t v = value_varint(value, value_length);
    cursor = write_varint(cursor, v);
    if (v % 2 == 0) {
        memcpy(cursor, value, value_length);
        cursor += value_length;
    }
    return cursor;
}

sioc__sio_handshake_t *sioc__sio_handshake_new(const sioc_request_t *request)
{
    const char *url = sioc_request_url(request);
    const char *address = sioc_request_remote_address(request);
    size_t prefix = url_prefix(url);
    const char *url_rest = url + url_prefixes[prefix].length;
    size_t count = sioc_request_header_count(request);
    size_t size = sizeof(sioc__sio_handshake_t) + 1 + strlen(url_rest) + 1 + strlen(address) + 1;
    const char *name, *value;
    size_t value_length;
    for (size_t i = 0; i < count; i++) {
        sioc_request_header_at(request, i, &name, &value, &value_length);
        if (strlen(name) < MAX_HEADER_NAME)
            size += header_size(name, value, value_length);
    }
    sioc__sio_handshake_t *handshake = malloc(size);
    if (handshake == NULL)
        return NULL;
    struct timeval now;
    gettimeofday(&now, NULL);
    handshake->references = 1;
    handshake->header_count = 0;
    handshake->json = NULL;
    handshake->issued_ms = (int64_t)now.tv_sec * 1000 + now.tv_usec / 1000;
    handshake->xdomain = sioc_request_header(request, "origin", NULL) != NULL;
    handshake->text[0] = (char)prefix;
    char *cursor = copy_text(handshake->text + 1, url_rest, strlen(url_rest));
    cursor = copy_text(cursor, address, strlen(address));
    for (size_t i = 0; i < count; i++) {
        sioc_request_header_at(request, i, &name, &value, &value_length);
        if (strlen(name) >= MAX_HEADER_NAME)
            continue;
        cursor = copy_header(cursor, name, value, value_length);
        handshake->header_count++;
    }
    return handshake;
}

void sioc__sio_handshake_ref(sioc__sio_handshake_t *handshake)
{
    handshake->references++;
}

void sioc__sio_handshake_unref(sioc__sio_handshake_t *handshake)
{
    if (handshake == NULL || --handshake->references > 0)
        return;
    json_decref(handshake->json);
    free(handshake);
}

/* A header value or the url as Node reads them: every byte one latin1 character, so a byte of
 * 0x80 or more is two bytes of UTF-8 here, and no request makes a string that JSON cannot hold
 * (as raw bytes, one that is not UTF-8 left the header out and socket.handshake NULL). */
static json_t *latin1_string(const char *bytes, size_t length)
{
    size_t high = 0;
    for (size_t i = 0; i < length; i++)
        high += (unsigned char)bytes[i] >= 0x80;
    if (high == 0)
        return json_stringn(bytes, length);
    char *text = malloc(length + high);
    if (text == NULL)
        return NULL;
    size_t out = 0;
    for (size_t i = 0; i < length; i++) {
        unsigned char byte = (unsigned char)bytes[i];
        if (byte < 0x80) {
            text[out++] = (char)byte;
        } else {
            text[out++] = (char)(0xC0 | (byte >> 6));
            text[out++] = (char)(0x80 | (byte & 0x3F));
        }
    }
    json_t *string = json_stringn(text, out);
    free(text);
    return string;
}

/* Node's IncomingMessage._addHeaderLine (node 20) for a name sent more than once: these keep the
 * first value and drop the others (matchKnownFields' names without a join flag), cookie joins
 * with "; ", set-cookie is an array even when sent once, and every other name joins with ", ". */
static const char *const first_value_names[] = {
    "age",
    "authorization",
    "content-length",
    "content-type",
    "etag",
    "expires",
    "from",
    "host",
    "if-modified-since",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "proxy-authorization",
    "referer",
    "retry-after",
    "server",
    "user-agent",
};

static int keeps_first_value(const char *name)
{
    for (size_t i = 0; i < COUNT(first_value_names); i++) {
        if (strcmp(name, first_value_names[i]) == 0)
            return 1;
    }
    return 0;
}

/* value joined to the string already there, after separator. */
static json_t *joined_string(const json_t *before, const char *separator, const json_t *value)
{
    size_t before_length = json_string_length(before), value_length = json_string_length(value);
    size_t separator_length = strlen(separator);
    char *text = malloc(before_length + separator_length + value_length);
    if (text == NULL)
        return NULL;
    memcpy(text, json_string_value(before), before_length);
    memcpy(text + before_length, separator, separator_length);
    memcpy(text + before_length + separator_length, json_string_value(value), value_length);
    json_t *joined = json_stringn(text, before_length + separator_length + value_length);
    free(text);
    return joined;
}

/* Adds a header's value (a new reference, may be NULL) under its lower-cased name, as Node does
 * (above). */
static void add_header(json_t *headers, const char *name, json_t *value)
{
    if (value == NULL)
        return;
    json_t *before = json_object_get(headers, name);
    if (strcmp(name, "set-cookie") == 0) {
        if (before == NULL) {
            before = json_array();
            if (json_object_set_new(headers, name, before) != 0)
                before = NULL;
        }
        if (before == NULL)
            json_decref(value);
        else
            json_array_append_new(before, value);
    } else if (before == NULL) {
        json_object_set_new(headers, name, value);
    } else {
        if (!keeps_first_value(name))
            json_object_set_new(
                headers, name,
                joined_string(before, strcmp(name, "cookie") == 0 ? "; " : ", ", value));
        json_decref(value);
    }
}

static json_t *parse_headers(const sioc__sio_handshake_t *handshake, const char *cursor)
{
    json_t *headers = json_object();
    for (uint32_t i = 0; headers != NULL && i < handshake->header_count; i++) {
        const char *name;
        if (*cursor > 0 && (size_t)*cursor < COUNT(header_names)) {
            name = header_names[(size_t)*cursor].text;
            cursor++;
        } else {
            name = cursor;
            cursor += strlen(cursor) + 1;
        }
        size_t v;
        cursor = read_varint(cursor, &v);
        if (v % 2 == 1) {
            const entry_t *known = &header_values[v / 2];
            add_header(headers, name, json_stringn(known->text, known->length));
        } else {
            add_header(headers, name, latin1_string(cursor, v / 2));
            cursor += v / 2;
        }
    }
    return headers;
}

/* Node's socket.handshake without auth, as a new object. */
static json_t *build(const sioc__sio_handshake_t *handshake)
{
    time_t seconds = (time_t)(handshake->issued_ms / 1000);
    char time_text[64];
    struct tm local;
    localtime_r(&seconds, &local);
    strftime(time_text, sizeof(time_text), "%a %b %d %Y %H:%M:%S GMT%z (%Z)", &local);
    const char *rest = handshake->text + 1;
    const char *address = rest + strlen(rest) + 1;
    const char *prefix = url_prefixes[(size_t)handshake->text[0]].text;
    size_t prefix_length = strlen(prefix), rest_length = strlen(rest);
    char small[256];
    char *url = prefix_length + rest_length < sizeof(small)
                    ? small
                    : malloc(prefix_length + rest_length + 1);
    if (url == NULL)
        return NULL;
    memcpy(url, prefix, prefix_length);
    memcpy(url + prefix_length, rest, rest_length + 1);
    json_t *object =
        json_pack("{s:o,s:s,s:s,s:b,s:b,s:I,s:o,s:o}", "headers",
                  parse_headers(handshake, address + strlen(address) + 1), "time", time_text,
                  "address", address, "xdomain", handshake->xdomain, "secure", 0, "issued",
                  (json_int_t)handshake->issued_ms, "url", latin1_string(url, strlen(url)), "query",
                  sioc__sio_parse_query(url));
    if (url != small)
        free(url);
    return object;
}

json_t *sioc__sio_handshake_object(sioc__sio_handshake_t *handshake)
{
    if (handshake->json == NULL)
        handshake->json = build(handshake);
    return handshake->json;
}

json_t *sioc__sio_handshake_with_auth(sioc__sio_handshake_t *handshake, json_t *auth, int keep)
{
    json_t *base = keep ? json_incref(sioc__sio_handshake_object(handshake)) : NULL;
    if (base == NULL)
        base = handshake->json != NULL ? json_incref(handshake->json) : build(handshake);
    /* A shallow copy: headers and query stay shared (they never change); auth is the socket's. */
    json_t *copy = json_copy(base);
    json_decref(base);
    if (copy != NULL)
        json_object_set(copy, "auth", auth);
    return copy;
}
