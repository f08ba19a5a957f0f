#include "transport/ws_deflate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/ws_codec.h"

#define EXTENSION_NAME "permessage-deflate"
#define DEFAULT_WINDOW_BITS 15
#define MIN_WINDOW_BITS 8
#define MEMORY_LEVEL 8 /* zlib's and Node's default */
#define INFLATE_CHUNK 16384

/* ---- Sec-WebSocket-Extensions, as ws's lib/extension.js parses it ------------------------ */

typedef struct span_s {
    const char *start;
    size_t length;
} span_t;

/* One parameter of an offer; value.start NULL for a parameter without a value (ws: true). */
typedef struct param_s {
    span_t name;
    span_t value;
    int unescape;
} param_t;

/* The parse result: offers in order, each its name and a run of params. */
typedef struct offer_s {
    span_t name;
    size_t first_param;
    size_t param_count;
} offer_t;

typedef struct parsed_s {
    offer_t *offers;
    size_t offer_count;
    param_t *params;
    size_t param_count;
} parsed_t;

static int is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int span_is(span_t span, const char *text)
{
    return span.length == strlen(text) && memcmp(span.start, text, span.length) == 0;
}

static span_t make_span(const char *value, size_t start, size_t end)
{
    span_t span = {value + start, end - start};
    return span;
}

typedef struct parser_s {
    const char *value;
    parsed_t *out;
    int has_extension; /* extensionName !== undefined */
    int has_param;     /* paramName !== undefined */
    span_t extension;
    span_t param;
    size_t offer_params; /* index of the current offer's first param */
} parser_t;

static void push_param(parser_t *p, span_t name, const span_t *value, int unescape)
{
    param_t *param = &p->out->params[p->out->param_count++];
    param->name = name;
    param->value = value ? *value : (span_t){NULL, 0};
    param->unescape = unescape;
}

static void push_offer(parser_t *p, span_t name)
{
    offer_t *offer = &p->out->offers[p->out->offer_count++];
    offer->name = name;
    offer->first_param = p->offer_params;
    offer->param_count = p->out->param_count - p->offer_params;
    p->offer_params = p->out->param_count;
}

/* The state machine of ws's parse(), state for state, so that what it refuses (400) and what
 * it accepts are the same strings. Returns 0 or -1. */
static int parse_extensions(const char *value, size_t length, parsed_t *out)
{
    parser_t p = {value, out, 0, 0, {NULL, 0}, {NULL, 0}, 0};
    int must_unescape = 0, is_escaping = 0, in_quotes = 0;
    size_t none = SIZE_MAX, start = none, end = none, i = 0;
    int code = -1;
    for (; i < length; i++) {
        code = (unsigned char)value[i];
        if (!p.has_extension) {
            if (end == none && is_tchar((unsigned char)code)) {
                if (start == none)
                    start = i;
            } else if (i != 0 && (code == ' ' || code == '\t')) {
                if (end == none && start != none)
                    end = i;
            } else if (code == ';' || code == ',') {
                if (start == none)
                    return -1;
                if (end == none)
                    end = i;
                if (code == ',') {
                    push_offer(&p, make_span(value, start, end));
                } else {
                    p.has_extension = 1;
                    p.extension = make_span(value, start, end);
                }
                start = end = none;
            } else {
                return -1;
            }
        } else if (!p.has_param) {
            if (end == none && is_tchar((unsigned char)code)) {
                if (start == none)
                    start = i;
            } else if (code == ' ' || code == '\t') {
                if (end == none && start != none)
                    end = i;
            } else if (code == ';' || code == ',') {
                if (start == none)
                    return -1;
                if (end == none)
                    end = i;
                push_param(&p, make_span(value, start, end), NULL, 0);
                if (code == ',') {
                    push_offer(&p, p.extension);
                    p.has_extension = 0;
                }
                start = end = none;
            } else if (code == '=' && start != none && end == none) {
                p.has_param = 1;
                p.param = make_span(value, start, i);
                start = end = none;
            } else {
                return -1;
            }
        } else {
            /* A quoted value must be a token once unescaped (RFC 6455 §9.1). */
            if (is_escaping) {
                if (!is_tchar((unsigned char)code))
                    return -1;
                if (start == none)
                    start = i;
                else if (!must_unescape)
                    must_unescape = 1;
                is_escaping = 0;
            } else if (in_quotes) {
                if (is_tchar((unsigned char)code)) {
                    if (start == none)
                        start = i;
                } else if (code == '"' && start != none) {
                    in_quotes = 0;
                    end = i;
                } else if (code == '\\') {
                    is_escaping = 1;
                } else {
                    return -1;
                }
            } else if (code == '"' && i > 0 && value[i - 1] == '=') {
                in_quotes = 1;
            } else if (end == none && is_tchar((unsigned char)code)) {
                if (start == none)
                    start = i;
            } else if (start != none && (code == ' ' || code == '\t')) {
                if (end == none)
                    end = i;
            } else if (code == ';' || code == ',') {
                if (start == none)
                    return -1;
                if (end == none)
                    end = i;
                span_t param_value = make_span(value, start, end);
                push_param(&p, p.param, &param_value, must_unescape);
                must_unescape = 0;
                if (code == ',') {
                    push_offer(&p, p.extension);
                    p.has_extension = 0;
                }
                p.has_param = 0;
                start = end = none;
            } else {
                return -1;
            }
        }
    }
    if (start == none || in_quotes || code == ' ' || code == '\t')
        return -1;
    if (end == none)
        end = i;
    span_t token = make_span(value, start, end);
    if (!p.has_extension) {
        push_offer(&p, token);
    } else {
        if (!p.has_param)
            push_param(&p, token, NULL, 0);
        else
            push_param(&p, p.param, &token, must_unescape);
        push_offer(&p, p.extension);
    }
    return 0;
}

/* ---- permessage-deflate parameters, as ws's normalizeParams and acceptAsServer ----------- */

/* JavaScript's Number(text) for a token, when it is an integer in 8..15; else -1. Tokens hold
 * no white space, so only the literal forms matter: decimal with sign, fraction and exponent
 * ("+10", "1e1", "10.0"), 0x / 0o / 0b integers, and Infinity (never an integer). */
static int window_bits_value(const char *text)
{
    size_t length = strlen(text);
    double number;
    if (length > 2 && text[0] == '0' && strchr("xXoObB", text[1]) != NULL) {
        int base = (text[1] == 'x' || text[1] == 'X')   ? 16
                   : (text[1] == 'o' || text[1] == 'O') ? 8
                                                        : 2;
        number = 0;
        for (size_t i = 2; i < length; i++) {
            char c = text[i];
            int digit = c >= '0' && c <= '9'   ? c - '0'
                        : c >= 'a' && c <= 'f' ? c - 'a' + 10
                        : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                               : 99;
            if (digit >= base)
                return -1;
            number = number * base + digit;
        }
    } else {
        size_t i = 0, digits = 0;
        if (text[i] == '+' || text[i] == '-')
            i++;
        for (; text[i] >= '0' && text[i] <= '9'; i++)
            digits++;
        if (text[i] == '.') {
            for (i++; text[i] >= '0' && text[i] <= '9'; i++)
                digits++;
        }
        if (digits == 0)
            return -1; /* also "Infinity": not an integer anyway */
        if (text[i] == 'e' || text[i] == 'E') {
            i++;
            if (text[i] == '+' || text[i] == '-')
                i++;
            if (!(text[i] >= '0' && text[i] <= '9'))
                return -1;
            while (text[i] >= '0' && text[i] <= '9')
                i++;
        }
        if (i != length)
            return -1;
        number = strtod(text, NULL);
    }
    if (!isfinite(number) || number != floor(number) || number < MIN_WINDOW_BITS ||
        number > DEFAULT_WINDOW_BITS)
        return -1;
    return (int)number;
}

/* A parameter's value with the escapes of a quoted string removed, NUL-terminated; or NULL
 * when too long to be a window size anyway (which then fails as not an integer). */
static const char *param_text(const param_t *param, char *buffer, size_t size)
{
    size_t length = 0;
    for (size_t i = 0; i < param->value.length; i++) {
        char c = param->value.start[i];
        if (param->unescape && c == '\\')
            continue;
        if (length + 1 >= size)
            return NULL;
        buffer[length++] = c;
    }
    buffer[length] = '\0';
    return buffer;
}

/* The normalised value of one parameter: 0 for a flag, 8..15 for a window; -1 when invalid. */
static int normalize_param(const param_t *param)
{
    char buffer[32];
    int has_value = param->value.start != NULL;
    if (span_is(param->name, "client_no_context_takeover") ||
        span_is(param->name, "server_no_context_takeover"))
        return has_value ? -1 : 0;
    if (span_is(param->name, "client_max_window_bits") && !has_value)
        return 0; /* "supported, any size": the server may answer a size (ws does not) */
    if (span_is(param->name, "client_max_window_bits") ||
        span_is(param->name, "server_max_window_bits")) {
        const char *text = has_value ? param_text(param, buffer, sizeof(buffer)) : NULL;
        return text != NULL ? window_bits_value(text) : -1;
    }
    return -1; /* ws: Unknown parameter */
}

static int check_offer(const parsed_t *parsed, const offer_t *offer)
{
    for (size_t i = 0; i < offer->param_count; i++) {
        const param_t *param = &parsed->params[offer->first_param + i];
        if (normalize_param(param) < 0)
            return -1;
        for (size_t j = 0; j < i; j++) {
            if (parsed->params[offer->first_param + j].name.length == param->name.length &&
                memcmp(parsed->params[offer->first_param + j].name.start, param->name.start,
                       param->name.length) == 0)
                return -1; /* ws: must have only a single value */
        }
    }
    return 0;
}

static int offer_has(const parsed_t *parsed, const offer_t *offer, const char *name)
{
    for (size_t i = 0; i < offer->param_count; i++) {
        if (span_is(parsed->params[offer->first_param + i].name, name))
            return 1;
    }
    return 0;
}

/* acceptAsServer with { serverNoContextTakeover: true, clientNoContextTakeover: true }: every
 * offer is acceptable, so the first is taken; its parameters are answered in their order with
 * their normalised values, the two no_context_takeover flags appended when missing, and a
 * valueless client_max_window_bits dropped (the client then keeps its default of 15). */
static void build_answer(const parsed_t *parsed, const offer_t *offer,
                         sioc__ws_deflate_agreement_t *out)
{
    size_t used = (size_t)snprintf(out->answer, sizeof(out->answer), "%s", EXTENSION_NAME);
    out->server_window_bits = DEFAULT_WINDOW_BITS;
    /* At most four distinct known names: the answer always fits. */
    for (size_t i = 0; i < offer->param_count; i++) {
        const param_t *param = &parsed->params[offer->first_param + i];
        int value = normalize_param(param);
        if (value == 0 && span_is(param->name, "client_max_window_bits"))
            continue;
        used += (size_t)snprintf(out->answer + used, sizeof(out->answer) - used, "; %.*s",
                                 (int)param->name.length, param->name.start);
        if (value > 0) {
            used += (size_t)snprintf(out->answer + used, sizeof(out->answer) - used, "=%d", value);
            if (span_is(param->name, "server_max_window_bits"))
                out->server_window_bits = (uint8_t)value;
        }
    }
    if (!offer_has(parsed, offer, "server_no_context_takeover"))
        used += (size_t)snprintf(out->answer + used, sizeof(out->answer) - used,
                                 "; server_no_context_takeover");
    if (!offer_has(parsed, offer, "client_no_context_takeover"))
        snprintf(out->answer + used, sizeof(out->answer) - used, "; client_no_context_takeover");
}

int sioc__ws_deflate_negotiate(const char *value, size_t length, sioc__ws_deflate_agreement_t *out)
{
    /* Each offer and each parameter takes at least one byte. */
    parsed_t parsed = {calloc(length + 1, sizeof(offer_t)), 0, calloc(length + 1, sizeof(param_t)),
                       0};
    int result = -1;
    if (parsed.offers == NULL || parsed.params == NULL || parse_extensions(value, length, &parsed))
        goto done;
    const offer_t *accepted = NULL;
    for (size_t i = 0; i < parsed.offer_count; i++) {
        const offer_t *offer = &parsed.offers[i];
        if (!span_is(offer->name, EXTENSION_NAME))
            continue;
        if (check_offer(&parsed, offer) != 0)
            goto done;
        if (accepted == NULL)
            accepted = offer;
    }
    result = 0;
    if (accepted != NULL) {
        build_answer(&parsed, accepted, out);
        result = 1;
    }
done:
    free(parsed.offers);
    free(parsed.params);
    return result;
}

/* ---- zlib ---------------------------------------------------------------------------------- */

static const uint8_t tail[4] = {0x00, 0x00, 0xff, 0xff};

void sioc__ws_zlib_init(sioc__ws_zlib_t *zlib)
{
    memset(zlib, 0, sizeof(*zlib));
}

void sioc__ws_zlib_free(sioc__ws_zlib_t *zlib)
{
    for (size_t i = 0; i < sizeof(zlib->deflate_ready); i++) {
        if (zlib->deflate_ready[i])
            deflateEnd(&zlib->deflate[i]);
    }
    if (zlib->inflate_ready)
        inflateEnd(&zlib->inflate);
    sioc__ws_zlib_init(zlib);
}

static z_stream *deflate_stream(sioc__ws_zlib_t *zlib, int window_bits)
{
    size_t index = (size_t)(window_bits - MIN_WINDOW_BITS);
    z_stream *stream = &zlib->deflate[index];
    if (zlib->deflate_ready[index])
        return deflateReset(stream) == Z_OK ? stream : NULL;
    memset(stream, 0, sizeof(*stream));
    if (deflateInit2(stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -window_bits, MEMORY_LEVEL,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    zlib->deflate_ready[index] = 1;
    return stream;
}

sioc__buffer_t *sioc__ws_zlib_deflate(sioc__ws_zlib_t *zlib, int window_bits, const uint8_t *data,
                                      size_t length, int binary)
{
    if (window_bits <= MIN_WINDOW_BITS || window_bits > DEFAULT_WINDOW_BITS || length > UINT32_MAX)
        return NULL;
    z_stream *stream = deflate_stream(zlib, window_bits);
    if (stream == NULL)
        return NULL;
    /* deflateBound covers a finished stream; a sync flush adds at most an empty stored block
     * (5 bytes) and a few bits more. */
    size_t capacity = deflateBound(stream, (uLong)length) + 16;
    sioc__buffer_t *out = sioc__buffer_new(capacity, binary);
    if (out == NULL)
        return NULL;
    stream->next_in = (Bytef *)data;
    stream->avail_in = (uInt)length;
    stream->next_out = out->data;
    stream->avail_out = (uInt)capacity;
    int rc = deflate(stream, Z_SYNC_FLUSH);
    size_t produced = capacity - stream->avail_out;
    if (rc != Z_OK || stream->avail_in != 0 || stream->avail_out == 0 || produced < sizeof(tail) ||
        memcmp(out->data + produced - sizeof(tail), tail, sizeof(tail)) != 0) {
        sioc__buffer_unref(out);
        return NULL;
    }
    out->length = produced - sizeof(tail);
    return out;
}

static z_stream *inflate_stream(sioc__ws_zlib_t *zlib)
{
    z_stream *stream = &zlib->inflate;
    if (zlib->inflate_ready)
        return inflateReset(stream) == Z_OK ? stream : NULL;
    memset(stream, 0, sizeof(*stream));
    /* The largest window decodes whatever window the client used. */
    if (inflateInit2(stream, -DEFAULT_WINDOW_BITS) != Z_OK)
        return NULL;
    zlib->inflate_ready = 1;
    return stream;
}

/* Feeds one input run; returns 0 (input used up, or the deflate stream ended), or a close code. */
static int inflate_run(z_stream *stream, const uint8_t *data, size_t length, size_t max_length,
                       uint8_t **out, size_t *capacity, size_t *produced, int *ended)
{
    stream->next_in = (Bytef *)data;
    stream->avail_in = (uInt)length;
    while (!*ended && (stream->avail_in > 0 || stream->avail_out == 0)) {
        if (*produced == *capacity) {
            if (*produced > max_length)
                return SIOC_WS_CLOSE_MESSAGE_TOO_BIG;
            /* Grow by chunks up to one past the limit: enough to tell "too big". */
            size_t grow = *capacity < INFLATE_CHUNK ? INFLATE_CHUNK : *capacity;
            size_t next = *capacity + grow;
            if (next > max_length + 1)
                next = max_length + 1;
            uint8_t *bigger = realloc(*out, next);
            if (bigger == NULL)
                return SIOC_WS_CLOSE_INTERNAL_ERROR;
            *out = bigger;
            *capacity = next;
        }
        stream->next_out = *out + *produced;
        stream->avail_out = (uInt)(*capacity - *produced);
        int rc = inflate(stream, Z_SYNC_FLUSH);
        *produced = *capacity - stream->avail_out;
        if (rc == Z_STREAM_END)
            *ended = 1; /* a final block: what follows is ignored, as ws ends the stream */
        else if (rc == Z_BUF_ERROR && stream->avail_in == 0 && stream->avail_out > 0)
            break; /* needs input that is not there yet */
        else if (rc != Z_OK && rc != Z_BUF_ERROR)
            return rc == Z_MEM_ERROR ? SIOC_WS_CLOSE_INTERNAL_ERROR : SIOC_WS_CLOSE_INVALID_PAYLOAD;
    }
    if (*produced > max_length)
        return SIOC_WS_CLOSE_MESSAGE_TOO_BIG;
    return 0;
}

int sioc__ws_zlib_inflate(sioc__ws_zlib_t *zlib, const uint8_t *data, size_t length,
                          size_t max_length, uint8_t **out, size_t *out_length)
{
    *out = NULL;
    *out_length = 0;
    if (length > UINT32_MAX || max_length >= SIZE_MAX - INFLATE_CHUNK)
        return SIOC_WS_CLOSE_MESSAGE_TOO_BIG;
    z_stream *stream = inflate_stream(zlib);
    if (stream == NULL)
        return SIOC_WS_CLOSE_INTERNAL_ERROR;
    size_t capacity = 0, produced = 0;
    int ended = 0;
    uint8_t *buffer = NULL;
    int rc = inflate_run(stream, data, length, max_length, &buffer, &capacity, &produced, &ended);
    if (rc == 0)
        rc = inflate_run(stream, tail, sizeof(tail), max_length, &buffer, &capacity, &produced,
                         &ended);
    if (rc != 0) {
        free(buffer);
        return rc;
    }
    *out = buffer;
    *out_length = produced;
    return 0;
}
