/* Fuzzes the handshake's compact bytes (sio_handshake.c): a request that the HTTP parser accepts
 * is kept as the handshake's codes and texts, then turned back into socket.handshake. It is never
 * NULL, and the url and every header whose name the request has only once come back exactly as
 * received, each byte a latin1 character as Node reads them (the codes of the static tables are
 * a shortcut, never a change). */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engineio/eio_internal.h"
#include "socketio/sio_internal.h"
#include "transport/http_request.h"

static int name_count(const sioc__http_request_t *request, const char *name)
{
    int count = 0;
    for (uint32_t h = 0; h < request->header_count; h++)
        count += strcasecmp(request->headers[h].name, name) == 0;
    return count;
}

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
    for (uint32_t h = 0; h < request->header_count; h++) {
        const sioc__http_header_t *header = &request->headers[h];
        if (name_count(request, header->name) != 1)
            continue;
        char name[256];
        size_t length = strlen(header->name);
        if (length >= sizeof(name))
            continue;
        for (size_t i = 0; i <= length; i++)
            name[i] = (char)tolower((unsigned char)header->name[i]);
        check_string(json_object_get(headers, name), header->value, header->value_length);
    }
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
