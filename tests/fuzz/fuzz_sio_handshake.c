/* Fuzzes the handshake's compact bytes (sio_handshake.c): a request that the HTTP parser accepts
 * is kept as the handshake's codes and texts, then turned back into socket.handshake. It is never
 * NULL, and the url and every header come back exactly as received, each byte a latin1 character
 * as Node reads them (the codes of the static tables are a shortcut, never a change); a name sent
 * more than once as Node's IncomingMessage joins it (", ", "; " for cookie, set-cookie an array,
 * the first value alone for the names Node keeps once), which this target works out on its own. */
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
