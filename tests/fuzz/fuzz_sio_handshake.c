/* Fuzzes the handshake's compact bytes (sio_handshake.c): a request that the HTTP parser accepts
 * is kept as the handshake's codes and texts, then turned back into socket.handshake. It is never
 * NULL, and the url and every header come back exactly as received, each byte a latin1 character
 * as Node reads them (the codes of the static tables are a shortcut, never a change); a name sent
 * more than once as Node's IncomingMessage joins it (", ", "; " for cookie, set-cookie an array,
 * the first value alone for the names Node keeps once), which this target works out on its own.
 * The query is worked out on its own too, by a second reading of URLSearchParams: every name
 * with its last value, each decoded ('+', "%XX", then UTF-8 with a U+FFFD per maximal subpart,
 * found here by Unicode's table 3-7 rather than a state machine), array indices first. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engineio/eio_internal.h"
#include "socketio/sio_internal.h"
#include "transport/http_request.h"

/* value must be bytes[0..length) decoded as latin1. */
static void check_string(const json_t *value, const char *bytes, size_t length)
{
    if (!json_is_string(value))
        abort();
    const unsigned char *text = (const unsigned char *)json_string_value(value);
    size_t at = 0, text_length = json_string_length(value);
    for (size_t i = 0; i < length; i++) {
        unsigned char byte = (unsigned char)bytes[i];
        if (byte < 0x80) {
            if (at >= text_length || text[at++] != byte)
                abort();
        } else if (at + 1 >= text_length || text[at++] != (0xC0 | (byte >> 6)) ||
                   text[at++] != (0x80 | (byte & 0x3F))) {
            abort();
        }
    }
    if (at != text_length)
        abort();
}

/* node 20's matchKnownFields: the names whose later values are dropped. */
static int keeps_first(const char *name)
{
    static const char *const names[] = {
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
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(name, names[i]) == 0)
            return 1;
    }
    return 0;
}

/* The header h's name is met for the first time: what Node holds for it, from every header of
 * that name (h and those after it). */
static void check_header(const sioc__http_request_t *request, uint32_t h, const json_t *value,
                         const char *name)
{
    if (strcmp(name, "set-cookie") == 0) {
        size_t index = 0;
        for (uint32_t i = h; i < request->header_count; i++) {
            const sioc__http_header_t *header = &request->headers[i];
            if (strcasecmp(header->name, name) == 0)
                check_string(json_array_get(value, index++), header->value, header->value_length);
        }
        if (!json_is_array(value) || json_array_size(value) != index)
            abort();
        return;
    }
    const char *separator = strcmp(name, "cookie") == 0 ? "; " : ", ";
    int first_only = keeps_first(name);
    char joined[8192]; /* the parser's head holds at most 4096 bytes here */
    size_t length = 0;
    for (uint32_t i = h; i < request->header_count; i++) {
        const sioc__http_header_t *header = &request->headers[i];
        if (strcasecmp(header->name, name) != 0)
            continue;
        if (i > h) {
            if (first_only)
                continue;
            memcpy(joined + length, separator, 2);
            length += 2;
        }
        if (length + header->value_length > sizeof(joined))
            abort();
        memcpy(joined + length, header->value, header->value_length);
        length += header->value_length;
    }
    check_string(value, joined, length);
}

/* ---- query: a second reading of URLSearchParams -------------------------------------------- */

static int hex_digit(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Unicode table 3-7: how long the well-formed sequence that starts with lead is (0: none), and
 * the range its second byte must be in. */
static size_t sequence_length(unsigned char lead, unsigned char *low, unsigned char *high)
{
    *low = 0x80;
    *high = 0xbf;
    if (lead >= 0xc2 && lead <= 0xdf)
        return 2;
    if (lead >= 0xe0 && lead <= 0xef) {
        if (lead == 0xe0)
            *low = 0xa0;
        if (lead == 0xed)
            *high = 0x9f;
        return 3;
    }
    if (lead >= 0xf0 && lead <= 0xf4) {
        if (lead == 0xf0)
            *low = 0x90;
        if (lead == 0xf4)
            *high = 0x8f;
        return 4;
    }
    return 0;
}

/* text[0..length) decoded into out (room for 3 * length); returns the length written. */
static size_t form_decode(const char *text, size_t length, char *out)
{
    unsigned char *bytes = malloc(length + 1);
    size_t count = 0, written = 0;
    if (bytes == NULL)
        abort();
    for (size_t i = 0; i < length; i++) {
        unsigned char c = (unsigned char)text[i];
        int high = i + 2 < length ? hex_digit((unsigned char)text[i + 1]) : -1;
        int low = i + 2 < length ? hex_digit((unsigned char)text[i + 2]) : -1;
        if (c == '%' && high >= 0 && low >= 0) {
            bytes[count++] = (unsigned char)(high * 16 + low);
            i += 2;
        } else {
            bytes[count++] = c == '+' ? ' ' : c;
        }
    }
    for (size_t i = 0; i < count;) {
        unsigned char low, high;
        size_t need = sequence_length(bytes[i], &low, &high), good = 1;
        if (bytes[i] < 0x80) {
            out[written++] = (char)bytes[i++];
            continue;
        }
        if (need > 0 && i + 1 < count && bytes[i + 1] >= low && bytes[i + 1] <= high) {
            good = 2;
            while (good < need && i + good < count && bytes[i + good] >= 0x80 &&
                   bytes[i + good] <= 0xbf)
                good++;
        }
        if (need > 0 && good == need) {
            memcpy(out + written, bytes + i, need);
            written += need;
        } else {
            memcpy(out + written, "\xef\xbf\xbd", 3);
            written += 3;
        }
        i += good;
    }
    free(bytes);
    return written;
}

typedef struct pair_s {
    const char *name;
    size_t name_length;
    const char *value;
    size_t value_length;
    int index; /* an array index (its value in index_value) */
    unsigned long long index_value;
} pair_t;

static int is_array_index(const char *name, size_t length, unsigned long long *value)
{
    *value = 0;
    if (length == 0 || length > 10 || (name[0] == '0' && length > 1))
        return 0;
    for (size_t i = 0; i < length; i++) {
        if (!isdigit((unsigned char)name[i]))
            return 0;
        *value = *value * 10 + (unsigned long long)(name[i] - '0');
    }
    return *value < 4294967295ULL;
}

static int same_name(const pair_t *a, const pair_t *b)
{
    return a->name_length == b->name_length && memcmp(a->name, b->name, a->name_length) == 0;
}

/* The query object holds each distinct name once, with its last value, in a JS object's order. */
static void check_query(const sioc__http_request_t *request, const json_t *query)
{
    const char *url = request->url, *end = url + request->url_length;
    const char *question = memchr(url, '?', request->url_length);
    const char *hash = memchr(url, '#', request->url_length);
    if (question == NULL || (hash != NULL && hash < question)) {
        if (!json_is_object(query) || json_object_size(query) != 0)
            abort();
        return;
    }
    const char *cursor = question + 1, *stop = hash != NULL ? hash : end;
    size_t length = (size_t)(stop - cursor);
    pair_t *pairs = malloc((length + 1) * sizeof(*pairs));
    char *text = malloc(3 * length + 1);
    size_t count = 0, used = 0;
    if (pairs == NULL || text == NULL)
        abort();
    while (cursor < stop) {
        const char *amp = memchr(cursor, '&', (size_t)(stop - cursor));
        const char *pair_end = amp != NULL ? amp : stop;
        const char *equals = memchr(cursor, '=', (size_t)(pair_end - cursor));
        const char *name_end = equals != NULL ? equals : pair_end;
        const char *value = equals != NULL ? equals + 1 : pair_end;
        if (pair_end > cursor) {
            pair_t *pair = &pairs[count++];
            pair->name = text + used;
            pair->name_length = form_decode(cursor, (size_t)(name_end - cursor), text + used);
            used += pair->name_length;
            pair->value = text + used;
            pair->value_length = form_decode(value, (size_t)(pair_end - value), text + used);
            used += pair->value_length;
            pair->index = is_array_index(pair->name, pair->name_length, &pair->index_value);
        }
        cursor = amp != NULL ? amp + 1 : stop;
    }
    /* The expected keys in order: array indices ascending, then the others as they first came. */
    const pair_t **order = malloc((count + 1) * sizeof(*order));
    size_t distinct = 0;
    if (order == NULL)
        abort();
    for (int pass = 1; pass >= 0; pass--) {
        size_t start = distinct;
        for (size_t i = 0; i < count; i++) {
            int seen = 0;
            for (size_t j = 0; j < i && !seen; j++)
                seen = same_name(&pairs[j], &pairs[i]);
            if (seen || pairs[i].index != pass)
                continue;
            size_t at = distinct++;
            while (pass == 1 && at > start && order[at - 1]->index_value > pairs[i].index_value) {
                order[at] = order[at - 1];
                at--;
            }
            order[at] = &pairs[i];
        }
    }
    if (!json_is_object(query) || json_object_size(query) != distinct)
        abort();
    size_t k = 0;
    for (void *it = json_object_iter((json_t *)query); it != NULL;
         it = json_object_iter_next((json_t *)query, it), k++) {
        const pair_t *first = order[k], *last = first;
        for (size_t i = 0; i < count; i++) {
            if (same_name(&pairs[i], first))
                last = &pairs[i];
        }
        const json_t *value = json_object_iter_value(it);
        if (json_object_iter_key_len(it) != first->name_length ||
            memcmp(json_object_iter_key(it), first->name, first->name_length) != 0 ||
            !json_is_string(value) || json_string_length(value) != last->value_length ||
            memcmp(json_string_value(value), last->value, last->value_length) != 0)
            abort();
    }
    free(order);
    free(pairs);
    free(text);
}

static void check_handshake(const sioc__http_request_t *request)
{
    struct sioc_request_s view = {request};
    sioc__sio_handshake_t *handshake = sioc__sio_handshake_new(&view);
    if (handshake == NULL)
        abort(); /* no allocation fails here */
    json_t *object = sioc__sio_handshake_object(handshake);
    if (object == NULL)
        abort();
    check_string(json_object_get(object, "url"), request->url, request->url_length);
    const json_t *headers = json_object_get(object, "headers");
    size_t names = 0;
    for (uint32_t h = 0; h < request->header_count; h++) {
        const sioc__http_header_t *header = &request->headers[h];
        char name[256];
        size_t length = strlen(header->name);
        if (length >= sizeof(name))
            continue; /* left out, as the handshake's limit says */
        for (size_t i = 0; i <= length; i++)
            name[i] = (char)tolower((unsigned char)header->name[i]);
        int seen = 0;
        for (uint32_t i = 0; i < h && !seen; i++)
            seen = strcasecmp(request->headers[i].name, name) == 0;
        if (seen)
            continue;
        names++;
        check_header(request, h, json_object_get(headers, name), name);
    }
    if (json_object_size(headers) != names)
        abort();
    check_query(request, json_object_get(object, "query"));
    sioc__sio_handshake_unref(handshake);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sioc__http_limits_t limits;
    sioc__http_limits_init(&limits);
    limits.max_header_size = 4096;
    limits.max_header_count = 32;
    sioc__http_request_parser_t parser;
    sioc__http_request_parser_init(&parser, &limits);
    strcpy(parser.request.remote_address, "127.0.0.1");
    size_t used = 0;
    if (sioc__http_request_parser_execute(&parser, data, size, &used) == 1)
        check_handshake(&parser.request);
    sioc__http_request_parser_free(&parser);
    return 0;
}
