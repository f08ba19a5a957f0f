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
    limits->max_buffered_bytes = 8 * 1024 * 1024;
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
    parser_state->chunked = 0;
    memset(&parser_state->framing, 0, sizeof(parser_state->framing));
}

/* ---- strict framing --------------------------------------------------------------------- */

/* A second pass over the bytes http-parser accepted, which refuses what Node's llhttp refuses
 * and http-parser 2.9 (built non-strict) lets through: each is a way for two HTTP parsers on
 * one path (a proxy and this server) to disagree on where a request ends. Only the framing is
 * checked (line ends, header line starts, chunk lines); everything else is http-parser's. */
enum framing_state {
    FRAMING_START,         /* empty lines before the request line are skipped */
    FRAMING_LINE,          /* inside a head line */
    FRAMING_LINE_CR,       /* a head line's CR: LF must follow */
    FRAMING_LINE_START,    /* after a head line: a header, or the empty line */
    FRAMING_HEAD_END_CR,   /* the empty line's CR */
    FRAMING_CHUNK_SIZE,    /* hex digits, at least one */
    FRAMING_CHUNK_EXT,     /* ";..." up to CR */
    FRAMING_CHUNK_SIZE_CR, /* the size line's CR */
    FRAMING_CHUNK_DATA,    /* chunk_left bytes of data */
    FRAMING_CHUNK_DATA_CR, /* CRLF must follow the data */
    FRAMING_CHUNK_DATA_LF,
    FRAMING_TRAILER_START, /* after the last chunk: trailer lines, then the empty line */
    FRAMING_TRAILER_LINE,
    FRAMING_TRAILER_CR,
    FRAMING_END_CR, /* the final empty line's CR */
    FRAMING_DONE,   /* the rest of this message is a body http-parser counts */
};

static int hex_digit(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Returns the next state for byte c, or -1 when the framing is refused. */
static int framing_step(sioc__http_framing_t *framing, int chunked, uint8_t c)
{
    switch (framing->state) {
    case FRAMING_START:
        return c == '\r' || c == '\n' ? FRAMING_START : FRAMING_LINE;
    case FRAMING_LINE:
        return c == '\r' ? FRAMING_LINE_CR : c == '\n' ? -1 : FRAMING_LINE;
    case FRAMING_LINE_CR:
        return c == '\n' ? FRAMING_LINE_START : -1;
    case FRAMING_LINE_START: /* a line starting with white space is obs-fold */
        if (c == '\r')
            return FRAMING_HEAD_END_CR;
        return c == ' ' || c == '\t' || c == '\n' ? -1 : FRAMING_LINE;
    case FRAMING_HEAD_END_CR:
        if (c != '\n')
            return -1;
        framing->digits = 0;
        framing->chunk_left = 0;
        return chunked ? FRAMING_CHUNK_SIZE : FRAMING_DONE;
    case FRAMING_CHUNK_SIZE:
        if (hex_digit(c)) {
            /* 16 digits hold any size; http-parser refuses sizes that overflow. */
            if (++framing->digits > 16)
                return -1;
            framing->chunk_left =
                framing->chunk_left * 16 + (uint64_t)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
            return FRAMING_CHUNK_SIZE;
        }
        if (framing->digits == 0)
            return -1;
        return c == ';' ? FRAMING_CHUNK_EXT : c == '\r' ? FRAMING_CHUNK_SIZE_CR : -1;
    case FRAMING_CHUNK_EXT:
        if (c == '\r')
            return FRAMING_CHUNK_SIZE_CR;
        return (c < 0x20 && c != '\t') || c == 0x7f ? -1 : FRAMING_CHUNK_EXT;
    case FRAMING_CHUNK_SIZE_CR:
        if (c != '\n')
            return -1;
        return framing->chunk_left == 0 ? FRAMING_TRAILER_START : FRAMING_CHUNK_DATA;
    case FRAMING_CHUNK_DATA_CR:
        return c == '\r' ? FRAMING_CHUNK_DATA_LF : -1;
    case FRAMING_CHUNK_DATA_LF:
        framing->digits = 0;
        return c == '\n' ? FRAMING_CHUNK_SIZE : -1;
    case FRAMING_TRAILER_START:
        if (c == '\r')
            return FRAMING_END_CR;
        return c == ' ' || c == '\t' || c == '\n' ? -1 : FRAMING_TRAILER_LINE;
    case FRAMING_TRAILER_LINE:
        return c == '\r' ? FRAMING_TRAILER_CR : c == '\n' ? -1 : FRAMING_TRAILER_LINE;
    case FRAMING_TRAILER_CR:
        return c == '\n' ? FRAMING_TRAILER_START : -1;
    case FRAMING_END_CR:
        return c == '\n' ? FRAMING_DONE : -1;
    default:
        return FRAMING_DONE;
    }
}

/* Checks bytes, which http-parser accepted as the continuation of the current message. */
static int framing_check(sioc__http_request_parser_t *parser_state, const uint8_t *bytes,
                         size_t length)
{
    sioc__http_framing_t *framing = &parser_state->framing;
    size_t i = 0;
    while (i < length && framing->state != FRAMING_DONE) {
        if (framing->state == FRAMING_CHUNK_DATA) {
            size_t take = length - i;
            if (take > framing->chunk_left)
                take = (size_t)framing->chunk_left;
            framing->chunk_left -= take;
            i += take;
            if (framing->chunk_left == 0)
                framing->state = FRAMING_CHUNK_DATA_CR;
            continue;
        }
        int next = framing_step(framing, parser_state->chunked, bytes[i++]);
        if (next < 0)
            return -1;
        framing->state = (uint8_t)next;
    }
    return 0;
}

/* RFC 7230 tchar: http-parser built non-strict also takes a space ("Transfer-Encoding :"). */
int sioc__http_is_token(const char *name)
{
    if (*name == '\0')
        return 0;
    for (; *name != '\0'; name++) {
        unsigned char c = (unsigned char)*name;
        if (!((c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ||
              strchr("!#$%&'*+-.^_`|~", c) != NULL))
            return 0;
    }
    return 1;
}

/* ---- http-parser callbacks -------------------------------------------------------------- */

static int on_message_begin(http_parser *parser)
{
    sioc__http_request_parser_t *parser_state = parser->data;
    parser_state->message_started = 1;
    return 0;
}

/* Node's llhttp takes only visible ASCII in a request target; http-parser 2.9 built non-strict
 * also takes a tab, a form feed and every byte of 0x80 or more, which Node answers with 400
 * (and an Engine.IO session would have read as latin1). Refused here, before any handler. */
static int url_bytes_allowed(const char *at, size_t length)
{
    for (size_t i = 0; i < length; i++) {
        unsigned char c = (unsigned char)at[i];
        if (c <= 0x20 || c >= 0x7f)
            return 0;
    }
    return 1;
}

static int on_url(http_parser *parser, const char *at, size_t length)
{
    sioc__http_request_parser_t *parser_state = parser->data;
    if (!url_bytes_allowed(at, length)) {
        parser_state->error_status = 400;
        return -1;
    }
    return arena_append(parser_state, at, length);
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

/* The query is what WHATWG's URL parser (Node's new URL(req.url, base)) takes: after the first
 * '?', up to the first '#' (the fragment); a '?' after a '#' is in the fragment, no query. The
 * path stays up to the first '?' (engine.io compares req.url's start with its path). */
static void split_url(sioc__http_request_t *request)
{
    const char *question = memchr(request->url, '?', request->url_length);
    const char *hash = memchr(request->url, '#', request->url_length);
    request->path = request->url;
    request->path_length = question ? (size_t)(question - request->url) : request->url_length;
    if (question == NULL || (hash != NULL && hash < question)) {
        request->query = "";
        request->query_length = 0;
        return;
    }
    const char *end = hash != NULL ? hash : request->url + request->url_length;
    request->query = question + 1;
    request->query_length = (size_t)(end - request->query);
}

/* Names that are not tokens, and a second Transfer-Encoding (which a proxy may read otherwise),
 * are refused as Node refuses them. */
static int check_header_names(sioc__http_request_parser_t *parser_state)
{
    const sioc__http_request_t *request = &parser_state->request;
    int transfer_encodings = 0;
    for (uint32_t i = 0; i < request->header_count; i++) {
        const char *name = request->headers[i].name;
        if (!sioc__http_is_token(name) ||
            (strcasecmp(name, "transfer-encoding") == 0 && ++transfer_encodings > 1)) {
            parser_state->error_status = 400;
            return -1;
        }
    }
    return 0;
}

/* The head is complete and nothing is appended to it any more (trailers are dropped): give back
 * what the doubling left over, which a held request would keep. Before any view points into
 * it, since realloc may move it. */
static void shrink_arena(sioc__http_request_parser_t *parser_state)
{
    if (parser_state->head_capacity <= parser_state->head_length)
        return;
    char *head = realloc(parser_state->head, parser_state->head_length);
    if (head == NULL)
        return;
    parser_state->head = head;
    parser_state->head_capacity = parser_state->head_length;
}

static int finalize_head(sioc__http_request_parser_t *parser_state)
{
    if (arena_terminate(parser_state) != 0)
        return -1;
    if (parser_state->url_end == 0)
        parser_state->url_end = (uint32_t)parser_state->head_length;
    shrink_arena(parser_state);
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
    /* The views are built: a held request (a polling GET) keeps no offsets. */
    free(parser_state->offsets);
    parser_state->offsets = NULL;
    parser_state->offsets_capacity = 0;
    return check_header_names(parser_state);
}

static int on_headers_complete(http_parser *parser)
{
    sioc__http_request_parser_t *parser_state = parser->data;
    if (finalize_head(parser_state) != 0)
        return -1;
    parser_state->head_complete = 1;
    parser_state->request.method = parser->method;
    parser_state->request.keep_alive = http_should_keep_alive(parser) ? 1 : 0;
    parser_state->chunked = (parser->flags & F_CHUNKED) && !parser->upgrade ? 1 : 0;
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
    /* RFC 7230 §5.4: an HTTP/1.1 request without Host is a 400 (Node's requireHostHeader, on by
     * default); HTTP/1.0 has no Host to require. */
    if (parser->http_major == 1 && parser->http_minor >= 1 &&
        sioc__http_request_header(&parser_state->request, "host") == NULL) {
        parser_state->error_status = 400;
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
    if (framing_check(parser_state, data, *consumed) != 0) {
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

/* ---- application/x-www-form-urlencoded (WHATWG URLSearchParams) -------------------------- */

/* The next byte of in after percent-decoding ('+' a space, "%XX" one byte, any other '%' kept),
 * or -1 at the end. */
static int form_next_byte(const char *in, size_t length, size_t *at)
{
    if (*at >= length)
        return -1;
    unsigned char c = (unsigned char)in[(*at)++];
    if (c == '+')
        return ' ';
    if (c == '%' && length - *at >= 2) {
        int high = hex_value(in[*at]);
        int low = hex_value(in[*at + 1]);
        if (high >= 0 && low >= 0) {
            *at += 2;
            return high * 16 + low;
        }
    }
    return c;
}

/* How many continuation bytes lead byte b announces (0 for ASCII and for a byte that starts
 * no sequence: 0x80-0xc1, 0xf5-0xff). */
static size_t utf8_continuations(int b)
{
    if (b >= 0xc2 && b <= 0xdf)
        return 1;
    if (b >= 0xe0 && b <= 0xef)
        return 2;
    return b >= 0xf0 && b <= 0xf4 ? 3 : 0;
}

static int form_put(char *out, size_t out_size, size_t *written, const void *bytes, size_t n)
{
    if (out_size - *written < n + 1)
        return -1;
    memcpy(out + *written, bytes, n);
    *written += n;
    return 0;
}

#define FORM_PUT(bytes, n)                                                                         \
    do {                                                                                           \
        if (form_put(out, out_size, &written, (bytes), (n)) != 0)                                  \
            return -2;                                                                             \
    } while (0)

long sioc__http_form_decode(const char *in, size_t length, char *out, size_t out_size)
{
    static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD */
    unsigned char sequence[4];
    size_t written = 0, at = 0, have = 0, needed = 0;
    int lower = 0x80, upper = 0xbf, pending = -1;
    if (out_size == 0)
        return -2;
    for (;;) {
        int b = pending >= 0 ? pending : form_next_byte(in, length, &at);
        pending = -1;
        if (b < 0)
            break;
        if (needed == 0) {
            lower = b == 0xe0 ? 0xa0 : b == 0xf0 ? 0x90 : 0x80;
            upper = b == 0xed ? 0x9f : b == 0xf4 ? 0x8f : 0xbf;
            needed = utf8_continuations(b);
            if (needed > 0) {
                sequence[0] = (unsigned char)b;
                have = 1;
            } else if (b < 0x80) {
                FORM_PUT(&(char){(char)b}, 1);
            } else {
                FORM_PUT(replacement, 3);
            }
            continue;
        }
        if (b < lower || b > upper) {
            /* The maximal subpart so far is one error; b starts afresh. */
            needed = 0;
            pending = b;
            FORM_PUT(replacement, 3);
            continue;
        }
        lower = 0x80;
        upper = 0xbf;
        sequence[have++] = (unsigned char)b;
        if (have == needed + 1) {
            needed = 0;
            FORM_PUT(sequence, have);
        }
    }
    if (needed > 0)
        FORM_PUT(replacement, 3);
    out[written] = '\0';
    return (long)written;
}

#undef FORM_PUT

/* 1 when the pair's name, decoded as URLSearchParams decodes it, is name. */
static int query_name_is(const char *key, size_t key_length, const char *name, size_t name_length)
{
    if (memchr(key, '%', key_length) == NULL && memchr(key, '+', key_length) == NULL)
        return key_length == name_length && memcmp(key, name, name_length) == 0;
    char small[64];
    char *decoded = name_length < sizeof(small) ? small : malloc(name_length + 1);
    if (decoded == NULL)
        return 0;
    long length = sioc__http_form_decode(key, key_length, decoded, name_length + 1);
    int same = length == (long)name_length && memcmp(decoded, name, name_length) == 0;
    if (decoded != small)
        free(decoded);
    return same;
}

long sioc__http_query_get(const char *query, size_t query_length, const char *name, char *out,
                          size_t out_size)
{
    size_t name_length = strlen(name);
    const char *cursor = query;
    const char *end = query + query_length;
    const char *value = NULL, *value_end = NULL;
    while (cursor < end) {
        const char *amp = memchr(cursor, '&', (size_t)(end - cursor));
        const char *pair_end = amp ? amp : end;
        const char *equals = memchr(cursor, '=', (size_t)(pair_end - cursor));
        const char *key_end = equals ? equals : pair_end;
        /* Object.fromEntries keeps the last value of a name given twice. */
        if (pair_end > cursor &&
            query_name_is(cursor, (size_t)(key_end - cursor), name, name_length)) {
            value = equals ? equals + 1 : pair_end;
            value_end = pair_end;
        }
        cursor = amp ? amp + 1 : end;
    }
    if (value == NULL)
        return -1;
    return sioc__http_form_decode(value, (size_t)(value_end - value), out, out_size);
}
