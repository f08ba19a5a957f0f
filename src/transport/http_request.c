/* HTTP/1.1 request parsing on http-parser, with sioc's limits. Pure: bytes in, requests out.
 * Header names and values are copied into one arena per connection (the read buffer they came
 * from is shared and reused), bounded by max_header_size. */
#include "transport/http_request.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct header_offsets_s {
    uint32_t name;
    uint32_t value;
    uint32_t value_length;
} header_offsets_t;

void sioc__http_limits_init(sioc__http_limits_t *limits)
{
    limits->max_header_size = 16 * 1024;
    limits->max_header_count = 100;
    limits->max_body_size = 1000000;
    limits->request_timeout_ms = 10000;
}

/* ---- head arena ------------------------------------------------------------------------ */

static int arena_append(sioc__http_request_parser_t *parser_state, const char *bytes, size_t length)
{
    if (parser_state->head_length + length + 1 > parser_state->limits->max_header_size) {
        parser_state->error_status = 431;
        return -1;
    }
    if (parser_state->head_length + length + 1 > parser_state->head_capacity) {
        size_t capacity = parser_state->head_capacity ? parser_state->head_capacity : 512;
        while (capacity < parser_state->head_length + length + 1)
            capacity *= 2;
        char *head = realloc(parser_state->head, capacity);
        if (head == NULL) {
            parser_state->error_status = 500;
            return -1;
        }
        parser_state->head = head;
        parser_state->head_capacity = capacity;
    }
    memcpy(parser_state->head + parser_state->head_length, bytes, length);
    parser_state->head_length += length;
    return 0;
}

static int arena_terminate(sioc__http_request_parser_t *parser_state)
{
    return arena_append(parser_state, "", 1);
}

static void reset_request(sioc__http_request_parser_t *parser_state)
{
    free(parser_state->request.body);
    free(parser_state->request.headers);
    char address[sizeof(parser_state->request.remote_address)];
    memcpy(address, parser_state->request.remote_address, sizeof(address));
    memset(&parser_state->request, 0, sizeof(parser_state->request));
    memcpy(parser_state->request.remote_address, address, sizeof(address));
    parser_state->head_length = 0;
    parser_state->url_end = 0;
    parser_state->body_capacity = 0;
    parser_state->message_started = parser_state->message_complete = 0;
    parser_state->head_complete = 0;
    parser_state->last_was_value = 0;
}

/* ---- http-parser callbacks -------------------------------------------------------------- */

static int on_message_begin(http_parser *parser)
{
    sioc__http_request_parser_t *parser_state = parser->data;
    parser_state->message_started = 1;
    return 0;
}

static int on_url(http_parser *parser, const char *at, size_t length)
{
    return arena_append(parser->data, at, length);
}

static int on_header_field(http_parser *parser, const char *at, size_t length)
{
    sioc__http_request_parser_t *parser_state = parser->data;
    /* Chunked trailers come after the head was finalised: dropping them keeps the arena, and
     * every pointer into it, fixed (a fuzzer found the overflow otherwise). */
    if (parser_state->head_complete)
        return 0;
    uint32_t count = parser_state->request.header_count;
    if (count == 0 && parser_state->url_end == 0) {
        if (arena_terminate(parser_state) != 0)
            return -1;
        parser_state->url_end = (uint32_t)parser_state->head_length;
    }
    if (count == 0 || parser_state->last_was_value) {
        if (count > 0 && arena_terminate(parser_state) != 0)
            return -1;
        if (count == parser_state->limits->max_header_count) {
            parser_state->error_status = 431;
            return -1;
        }
        if (count == parser_state->offsets_capacity) {
            uint32_t capacity = count ? count * 2 : 16;
            header_offsets_t *offsets = realloc(parser_state->offsets, capacity * sizeof(*offsets));
            if (offsets == NULL)
                return -1;
            parser_state->offsets = offsets;
            parser_state->offsets_capacity = capacity;
        }
        parser_state->offsets[count].name = (uint32_t)parser_state->head_length;
        parser_state->request.header_count = ++count;
        parser_state->last_was_value = 0;
    }
    return arena_append(parser_state, at, length);
}

static int on_header_value(http_parser *parser, const char *at, size_t length)
{
    sioc__http_request_parser_t *parser_state = parser->data;
    if (parser_state->head_complete)
        return 0;
    header_offsets_t *header = &parser_state->offsets[parser_state->request.header_count - 1];
    if (!parser_state->last_was_value) {
        if (arena_terminate(parser_state) != 0)
            return -1;
        header->value = (uint32_t)parser_state->head_length;
        header->value_length = 0;
        parser_state->last_was_value = 1;
    }
    header->value_length += (uint32_t)length;
    return arena_append(parser_state, at, length);
}

static void split_url(sioc__http_request_t *request)
{
    const char *question = memchr(request->url, '?', request->url_length);
    request->path = request->url;
    request->path_length = question ? (size_t)(question - request->url) : request->url_length;
    request->query = question ? question + 1 : "";
    request->query_length = question ? request->url_length - request->path_length - 1 : 0;
}

static int finalize_head(sioc__http_request_parser_t *parser_state)
{
    if (arena_terminate(parser_state) != 0)
        return -1;
    if (parser_state->url_end == 0)
        parser_state->url_end = (uint32_t)parser_state->head_length;
    sioc__http_request_t *request = &parser_state->request;
    request->url = parser_state->head;
    request->url_length = strlen(parser_state->head);
    split_url(request);
    if (request->header_count > 0) {
        request->headers = calloc(request->header_count, sizeof(sioc__http_header_t));
        if (request->headers == NULL)
            return -1;
    }
    for (uint32_t i = 0; i < request->header_count; i++) {
        request->headers[i].name = parser_state->head + parser_state->offsets[i].name;
        request->headers[i].value = parser_state->offsets[i].value
                                        ? parser_state->head + parser_state->offsets[i].value
                                        : "";
        request->headers[i].value_length = parser_state->offsets[i].value_length;
    }
    return 0;
}

static int on_headers_complete(http_parser *parser)
{
    sioc__http_request_parser_t *parser_state = parser->data;
    if (finalize_head(parser_state) != 0)
        return -1;
    parser_state->head_complete = 1;
    parser_state->request.method = parser->method;
    parser_state->request.keep_alive = http_should_keep_alive(parser) ? 1 : 0;
    uint64_t max_body = parser_state->limits->max_body_size;
    if (parser->content_length != ULLONG_MAX && parser->content_length > 0 && !parser->upgrade) {
        if (parser->content_length > max_body) {
            parser_state->error_status = 413;
            return -1;
        }
        parser_state->body_capacity = (size_t)parser->content_length;
        parser_state->request.body = malloc(parser_state->body_capacity);
        if (parser_state->request.body == NULL)
            return -1;
    }
    return 0;
}

static int on_body(http_parser *parser, const char *at, size_t length)
{
    sioc__http_request_parser_t *parser_state = parser->data;
    sioc__http_request_t *request = &parser_state->request;
    if (request->body_length + length > parser_state->limits->max_body_size) {
        parser_state->error_status = 413;
        return -1;
    }
    if (request->body_length + length > parser_state->body_capacity) {
        size_t capacity = parser_state->body_capacity ? parser_state->body_capacity * 2 : 4096;
        while (capacity < request->body_length + length)
            capacity *= 2;
        uint8_t *body = realloc(request->body, capacity);
        if (body == NULL)
            return -1;
        request->body = body;
        parser_state->body_capacity = capacity;
    }
    memcpy(request->body + request->body_length, at, length);
    request->body_length += length;
    return 0;
}

static int on_message_complete(http_parser *parser)
{
    sioc__http_request_parser_t *parser_state = parser->data;
    parser_state->message_complete = 1;
    parser_state->request.upgrade = parser->upgrade ? 1 : 0;
    /* Stop here: the next pipelined request waits until this one is answered. */
    http_parser_pause(parser, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- driving the parser ------------------------------------------------------------------ */

void sioc__http_request_parser_init(sioc__http_request_parser_t *parser_state,
                                    const sioc__http_limits_t *limits)
{
    memset(parser_state, 0, sizeof(*parser_state));
    parser_state->limits = limits;
    http_parser_init(&parser_state->parser, HTTP_REQUEST);
    parser_state->parser.data = parser_state;
}

int sioc__http_request_parser_execute(sioc__http_request_parser_t *parser_state,
                                      const uint8_t *data, size_t length, size_t *consumed)
{
    *consumed =
        http_parser_execute(&parser_state->parser, &parser_settings, (const char *)data, length);
    enum http_errno error = HTTP_PARSER_ERRNO(&parser_state->parser);
    if (error != HPE_OK && error != HPE_PAUSED) {
        if (parser_state->error_status == 0)
            parser_state->error_status = 400;
        return -1;
    }
    return parser_state->message_complete ? 1 : 0;
}

void sioc__http_request_parser_next(sioc__http_request_parser_t *parser_state)
{
    reset_request(parser_state);
    http_parser_pause(&parser_state->parser, 0);
}

void sioc__http_request_parser_free(sioc__http_request_parser_t *parser_state)
{
    free(parser_state->request.body);
    free(parser_state->request.headers);
    free(parser_state->head);
    free(parser_state->offsets);
    parser_state->request.body = NULL;
    parser_state->request.headers = NULL;
    parser_state->head = NULL;
    parser_state->offsets = NULL;
}

/* ---- request helpers ------------------------------------------------------------------------ */

const sioc__http_header_t *sioc__http_request_header(const sioc__http_request_t *request,
                                                     const char *name)
{
    for (uint32_t i = 0; i < request->header_count; i++) {
        if (strcasecmp(request->headers[i].name, name) == 0)
            return &request->headers[i];
    }
    return NULL;
}

int sioc__http_header_has_token(const sioc__http_header_t *header, const char *token)
{
    size_t token_length = strlen(token);
    const char *cursor = header->value;
    const char *end = header->value + header->value_length;
    while (cursor < end) {
        while (cursor < end && (*cursor == ' ' || *cursor == '\t' || *cursor == ','))
            cursor++;
        const char *start = cursor;
        while (cursor < end && *cursor != ',')
            cursor++;
        const char *stop = cursor;
        while (stop > start && (stop[-1] == ' ' || stop[-1] == '\t'))
            stop--;
        if ((size_t)(stop - start) == token_length && strncasecmp(start, token, token_length) == 0)
            return 1;
    }
    return 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static long percent_decode(const char *in, size_t length, char *out, size_t out_size)
{
    size_t written = 0;
    for (size_t i = 0; i < length; i++) {
        char c = in[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (i + 2 >= length)
                return -2;
            int high = hex_value(in[i + 1]);
            int low = hex_value(in[i + 2]);
            if (high < 0 || low < 0)
                return -2;
            c = (char)(high * 16 + low);
            i += 2;
        }
        if (written + 1 >= out_size)
            return -2;
        out[written++] = c;
    }
    out[written] = '\0';
    return (long)written;
}

long sioc__http_query_get(const char *query, size_t query_length, const char *name, char *out,
                          size_t out_size)
{
    size_t name_length = strlen(name);
    const char *cursor = query;
    const char *end = query + query_length;
    while (cursor < end) {
        const char *amp = memchr(cursor, '&', (size_t)(end - cursor));
        const char *pair_end = amp ? amp : end;
        const char *equals = memchr(cursor, '=', (size_t)(pair_end - cursor));
        const char *key_end = equals ? equals : pair_end;
        if ((size_t)(key_end - cursor) == name_length && memcmp(cursor, name, name_length) == 0) {
            const char *value = equals ? equals + 1 : pair_end;
            return percent_decode(value, (size_t)(pair_end - value), out, out_size);
        }
        cursor = amp ? amp + 1 : end;
    }
    return -1;
}
