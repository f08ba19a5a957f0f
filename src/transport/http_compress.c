#include "transport/http_compress.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- Accept-Encoding (negotiator 0.6 lib/encoding.js) ------------------------------------- */

/* JavaScript's \s, for the bytes a header holds (Node reads header bytes as latin1). */
static int js_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r') || c == 0xa0;
}

/* parseFloat: the longest prefix that is a decimal number, after white space; NaN if none. */
static double js_parse_float(const char *text, size_t length)
{
    size_t i = 0;
    while (i < length && js_space((unsigned char)text[i]))
        i++;
    char number[64];
    size_t used = 0;
    if (i < length && (text[i] == '+' || text[i] == '-'))
        number[used++] = text[i++];
    if (length - i >= 8 && memcmp(text + i, "Infinity", 8) == 0)
        return used > 0 && number[0] == '-' ? -INFINITY : INFINITY;
    size_t digits = 0;
    while (i < length && used < sizeof(number) - 8 && text[i] >= '0' && text[i] <= '9') {
        number[used++] = text[i++];
        digits++;
    }
    if (i < length && text[i] == '.') {
        number[used++] = text[i++];
        while (i < length && used < sizeof(number) - 8 && text[i] >= '0' && text[i] <= '9') {
            number[used++] = text[i++];
            digits++;
        }
    }
    if (digits == 0)
        return NAN;
    /* An exponent counts only with digits after it ("1e" is 1). */
    if (i + 1 < length && (text[i] == 'e' || text[i] == 'E')) {
        size_t j = i + 1;
        if (j < length && (text[j] == '+' || text[j] == '-'))
            j++;
        if (j < length && text[j] >= '0' && text[j] <= '9') {
            while (i < j)
                number[used++] = text[i++];
            while (i < length && used < sizeof(number) - 1 && text[i] >= '0' && text[i] <= '9')
                number[used++] = text[i++];
        }
    }
    number[used] = '\0';
    return strtod(number, NULL);
}

typedef struct accept_item_s {
    const char *encoding;
    size_t encoding_length;
    double q;
    int index; /* position in the comma-separated list, empty items counted */
} accept_item_t;

static void trim(const char **start, const char **end)
{
    while (*start < *end && js_space((unsigned char)**start))
        (*start)++;
    while (*end > *start && js_space((unsigned char)(*end)[-1]))
        (*end)--;
}

/* /^\s*([^\s;]+)\s*(?:;(.*))?$/ on a trimmed item, then its first "q" parameter. */
static int parse_item(const char *start, const char *end, int index, accept_item_t *item)
{
    const char *cursor = start;
    while (cursor < end && !js_space((unsigned char)*cursor) && *cursor != ';')
        cursor++;
    if (cursor == start)
        return 0;
    item->encoding = start;
    item->encoding_length = (size_t)(cursor - start);
    item->q = 1;
    item->index = index;
    while (cursor < end && js_space((unsigned char)*cursor))
        cursor++;
    if (cursor == end)
        return 1;
    if (*cursor != ';')
        return 0;
    cursor++;
    while (cursor <= end) {
        const char *semicolon = memchr(cursor, ';', (size_t)(end - cursor));
        const char *param_end = semicolon ? semicolon : end;
        const char *name = cursor, *name_end = param_end;
        trim(&name, &name_end);
        const char *equals = memchr(name, '=', (size_t)(name_end - name));
        const char *key_end = equals ? equals : name_end;
        if (key_end - name == 1 && name[0] == 'q') {
            if (equals == NULL) {
                item->q = NAN;
            } else {
                /* split('=')[1]: up to the next '='. */
                const char *value = equals + 1;
                const char *value_end = memchr(value, '=', (size_t)(name_end - value));
                item->q =
                    js_parse_float(value, (size_t)((value_end ? value_end : name_end) - value));
            }
            break;
        }
        if (semicolon == NULL)
            break;
        cursor = semicolon + 1;
    }
    return 1;
}

typedef struct priority_s {
    int o; /* the accept item's index, -1 for none */
    double q;
    int s; /* 1: named exactly, 0: "*" */
} priority_t;

/* (a.s - b.s || a.q - b.q || a.o - b.o) < 0, with JavaScript's falsy 0 and NaN. */
static int worse(const priority_t *a, const priority_t *b)
{
    if (a->s != b->s)
        return a->s - b->s < 0;
    double dq = a->q - b->q;
    if (dq != 0 && !isnan(dq))
        return dq < 0;
    return a->o - b->o < 0;
}

static void consider(const accept_item_t *item, const char *encoding, priority_t *priority)
{
    priority_t spec = {item->index, item->q, 0};
    if (item->encoding_length == strlen(encoding) &&
        strncasecmp(item->encoding, encoding, item->encoding_length) == 0)
        spec.s = 1;
    else if (!(item->encoding_length == 1 && item->encoding[0] == '*'))
        return;
    if (worse(priority, &spec))
        *priority = spec;
}

typedef struct negotiation_s {
    priority_t gzip;
    priority_t deflate;
    int index;
} negotiation_t;

static void negotiate_value(negotiation_t *negotiation, const char *value, size_t length)
{
    const char *cursor = value;
    const char *end = value + length;
    for (;;) {
        const char *comma = memchr(cursor, ',', (size_t)(end - cursor));
        const char *item_end = comma ? comma : end;
        const char *start = cursor;
        trim(&start, &item_end);
        accept_item_t item;
        if (parse_item(start, item_end, negotiation->index, &item)) {
            consider(&item, "gzip", &negotiation->gzip);
            consider(&item, "deflate", &negotiation->deflate);
        }
        negotiation->index++;
        if (comma == NULL)
            break;
        cursor = comma + 1;
    }
}

/* compareSpecs (b.q - a.q || b.s - a.s || a.o - b.o || a.i - b.i) over the acceptable ones. */
static sioc__http_encoding_t choose(const negotiation_t *negotiation)
{
    const priority_t *g = &negotiation->gzip;
    const priority_t *d = &negotiation->deflate;
    int gzip_ok = g->q > 0, deflate_ok = d->q > 0;
    if (!gzip_ok || !deflate_ok)
        return gzip_ok ? SIOC_HTTP_GZIP : deflate_ok ? SIOC_HTTP_DEFLATE : SIOC_HTTP_IDENTITY;
    if (d->q != g->q)
        return d->q > g->q ? SIOC_HTTP_DEFLATE : SIOC_HTTP_GZIP;
    if (d->s != g->s)
        return d->s > g->s ? SIOC_HTTP_DEFLATE : SIOC_HTTP_GZIP;
    return d->o < g->o ? SIOC_HTTP_DEFLATE : SIOC_HTTP_GZIP;
}

static void negotiation_init(negotiation_t *negotiation)
{
    negotiation->gzip = (priority_t){-1, 0, 0};
    negotiation->deflate = (priority_t){-1, 0, 0};
    negotiation->index = 0;
}

sioc__http_encoding_t sioc__http_negotiate_encoding(const char *value, size_t length)
{
    negotiation_t negotiation;
    negotiation_init(&negotiation);
    negotiate_value(&negotiation, value, length);
    return choose(&negotiation);
}

sioc__http_encoding_t sioc__http_accepted_encoding(const sioc__http_request_t *request)
{
    negotiation_t negotiation;
    negotiation_init(&negotiation);
    for (uint32_t i = 0; i < request->header_count; i++) {
        if (strcasecmp(request->headers[i].name, "accept-encoding") == 0)
            negotiate_value(&negotiation, request->headers[i].value,
                            request->headers[i].value_length);
    }
    return choose(&negotiation);
}

const char *sioc__http_encoding_name(sioc__http_encoding_t encoding)
{
    return encoding == SIOC_HTTP_GZIP ? "gzip" : encoding == SIOC_HTTP_DEFLATE ? "deflate" : "";
}

/* ---- zlib ------------------------------------------------------------------------------------ */

void sioc__http_compressor_init(sioc__http_compressor_t *compressor)
{
    memset(compressor, 0, sizeof(*compressor));
}

void sioc__http_compressor_free(sioc__http_compressor_t *compressor)
{
    for (int i = 0; i < 2; i++) {
        if (compressor->ready[i])
            deflateEnd(&compressor->streams[i]);
        compressor->ready[i] = 0;
    }
}

static z_stream *stream_for(sioc__http_compressor_t *compressor, sioc__http_encoding_t encoding)
{
    int slot = encoding == SIOC_HTTP_GZIP ? 0 : 1;
    z_stream *stream = &compressor->streams[slot];
    if (compressor->ready[slot])
        return deflateReset(stream) == Z_OK ? stream : NULL;
    memset(stream, 0, sizeof(*stream));
    /* Node's defaults: level 6, 32 KiB window (+16: the gzip wrapper), memLevel 8. */
    int window_bits = encoding == SIOC_HTTP_GZIP ? 15 + 16 : 15;
    if (deflateInit2(stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, window_bits, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    compressor->ready[slot] = 1;
    return stream;
}

sioc__buffer_t *sioc__http_compress(sioc__http_compressor_t *compressor,
                                    sioc__http_encoding_t encoding, const uint8_t *data,
                                    size_t length)
{
    if ((encoding != SIOC_HTTP_GZIP && encoding != SIOC_HTTP_DEFLATE) || length > UINT32_MAX)
        return NULL;
    z_stream *stream = stream_for(compressor, encoding);
    if (stream == NULL)
        return NULL;
    size_t bound = deflateBound(stream, (uLong)length);
    sioc__buffer_t *buffer = sioc__buffer_new(bound, 0);
    if (buffer == NULL)
        return NULL;
    stream->next_in = (Bytef *)data;
    stream->avail_in = (uInt)length;
    stream->next_out = buffer->data;
    stream->avail_out = (uInt)bound;
    if (deflate(stream, Z_FINISH) != Z_STREAM_END) {
        sioc__buffer_unref(buffer);
        return NULL;
    }
    buffer->length = bound - stream->avail_out;
    return buffer;
}
