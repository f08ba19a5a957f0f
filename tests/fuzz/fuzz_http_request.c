/* Fuzzes the HTTP request parser: the input is split in two at a position taken from its
 * first byte (so read boundaries are fuzzed too), and every pipelined request is consumed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport/http_request.h"

static void check_request(const sioc__http_request_t *request)
{
    /* Every view must stay inside what the parser owns; touching each byte lets ASan check. */
    volatile char sink = 0;
    for (size_t i = 0; i < request->url_length; i++) {
        /* Only visible ASCII reaches a handler, as with Node's llhttp. */
        if ((unsigned char)request->url[i] <= 0x20 || (unsigned char)request->url[i] >= 0x7f)
            abort();
        sink ^= request->url[i];
    }
    for (uint32_t h = 0; h < request->header_count; h++)
        for (size_t i = 0; i < request->headers[h].value_length; i++)
            sink ^= request->headers[h].value[i];
    for (size_t i = 0; i < request->body_length; i++)
        sink ^= (char)request->body[i];
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    sioc__http_limits_t limits;
    sioc__http_limits_init(&limits);
    limits.max_header_size = 2048;
    limits.max_header_count = 16;
    limits.max_body_size = 4096;
    size_t split = 1 + data[0] % size;
    uint8_t *copy = malloc(size);
    memcpy(copy, data, size);
    sioc__http_request_parser_t parser;
    sioc__http_request_parser_init(&parser, &limits);
    size_t offset = 1;
    int requests = 0;
    while (offset < size && requests < 4096) { /* long pipelines, as one read may hold */
        size_t end = offset < split ? split : size;
        size_t used = 0;
        int rc = sioc__http_request_parser_execute(&parser, copy + offset, end - offset, &used);
        if (used > end - offset)
            abort();
        offset += used;
        if (rc < 0) {
            if (parser.error_status != 400 && parser.error_status != 413 &&
                parser.error_status != 431 && parser.error_status != 500)
                abort();
            break;
        }
        if (rc == 1) {
            check_request(&parser.request);
            requests++;
            if (parser.request.upgrade)
                break;
            sioc__http_request_parser_next(&parser);
        } else if (used == 0 && offset < split) {
            offset = split;
        }
    }
    sioc__http_request_parser_free(&parser);
    free(copy);
    return 0;
}
