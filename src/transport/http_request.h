/* HTTP/1.1 request parser: http-parser driven with sioc's limits, pure (no I/O), so that the
 * request head can be unit-tested byte by byte and fuzzed.
 *
 * Contract: feed bytes with sioc__http_request_parser_execute(); it stops right after a
 * complete request (returning 1, the bytes after it are left unparsed for the next request
 * or, for an upgrade, for the new protocol) and refuses input past the limits (returning -1
 * with error_status = 400 malformed, 413 body too large, 431 head too large or too many
 * headers). http-parser 2.9 as Debian builds it is lenient where a proxy in front may not be
 * (request smuggling): a second, strict check of the framing refuses with 400 what Node's
 * llhttp refuses (a request target with a byte outside visible ASCII, bare LF, obs-fold, header
 * names that are not tokens, a second Transfer-Encoding, anything but CRLF after chunk data, a
 * chunk size that is not hex digits with an optional extension). After a complete request,
 * sioc__http_request_parser_next() readies it for the next one; the request's memory belongs to the
 * parser until then. */
#ifndef SIOC_TRANSPORT_HTTP_REQUEST_H
#define SIOC_TRANSPORT_HTTP_REQUEST_H

#include <http_parser.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sioc__http_header_s {
    const char *name; /* NUL-terminated, as received */
    const char *value;
    size_t value_length;
} sioc__http_header_t;

typedef struct sioc__http_request_s {
    int method; /* enum http_method */
    const char *url;
    size_t url_length;
    const char *path; /* view into url, up to '?' */
    size_t path_length;
    const char *query; /* view after the first '?' up to any '#', or "" (not NUL-terminated) */
    size_t query_length;
    sioc__http_header_t *headers;
    uint32_t header_count;
    uint8_t *body; /* owned by the request; mutable; NULL when empty */
    size_t body_length;
    uint8_t keep_alive;
    uint8_t upgrade;
    char remote_address[64];
} sioc__http_request_t;

typedef struct sioc__http_limits_s {
    size_t max_header_size;      /* request line + headers, bytes (16 KiB) */
    uint32_t max_header_count;   /* (100) */
    size_t max_body_size;        /* (1,000,000) */
    uint64_t request_timeout_ms; /* head and body must arrive within this (10 s) */
    size_t max_buffered_bytes;   /* unsent answers per connection before reading stops (8 MiB) */
} sioc__http_limits_t;

typedef struct header_offsets_s header_offsets_t;

/* The strict framing check (http_request.c) run over every byte http-parser accepted. */
typedef struct sioc__http_framing_s {
    uint8_t state;
    uint8_t digits;      /* of the chunk size */
    uint64_t chunk_left; /* data bytes of the current chunk */
} sioc__http_framing_t;

typedef struct sioc__http_request_parser_s {
    http_parser parser;
    const sioc__http_limits_t *limits;
    sioc__http_request_t request;
    char *head; /* arena: url, then name\0value\0 pairs */
    size_t head_length;
    size_t head_capacity;
    header_offsets_t *offsets; /* offsets into the arena while it may still move */
    uint32_t offsets_capacity;
    uint32_t url_end;
    size_t body_capacity;
    int error_status;
    sioc__http_framing_t framing;
    uint8_t chunked; /* the body is chunked (known once the head is complete) */
    uint8_t message_started;
    uint8_t message_complete;
    uint8_t head_complete;
    uint8_t last_was_value;
} sioc__http_request_parser_t;

void sioc__http_limits_init(sioc__http_limits_t *limits);

/* limits must outlive the parser. */
void sioc__http_request_parser_init(sioc__http_request_parser_t *parser_state,
                                    const sioc__http_limits_t *limits);

/* Returns 1 when a request is complete, 0 when more input is needed, -1 on an error (see
 * error_status). *consumed gets the bytes used. */
int sioc__http_request_parser_execute(sioc__http_request_parser_t *parser_state,
                                      const uint8_t *data, size_t length, size_t *consumed);

/* Forgets the current request (keeping remote_address) and resumes parsing. */
void sioc__http_request_parser_next(sioc__http_request_parser_t *parser_state);

void sioc__http_request_parser_free(sioc__http_request_parser_t *parser_state);

/* Header value by case-insensitive name, or NULL. */
const sioc__http_header_t *sioc__http_request_header(const sioc__http_request_t *request,
                                                     const char *name);

/* 1 if a comma-separated header contains token (case-insensitive), e.g. Connection: upgrade. */
int sioc__http_header_has_token(const sioc__http_header_t *header, const char *token);

/* 1 when name is a non-empty RFC 7230 token (header and cookie names), else 0. */
int sioc__http_is_token(const char *name);

/* One name or value of an application/x-www-form-urlencoded text as WHATWG URLSearchParams
 * decodes it (Node's url.searchParams): '+' is a space, '%' and two hex digits one byte, any
 * other '%' kept as it is, and the bytes then read as UTF-8 with one U+FFFD for each maximal
 * invalid subpart (the WHATWG UTF-8 decoder; overlong forms, surrogates and code points past
 * U+10FFFF are invalid). Writes the UTF-8 text NUL-terminated into out; it may hold U+0000, so
 * use the returned length. 3 * length + 1 bytes of out always suffice. Returns the length
 * written, or -2 when out_size is too small. */
long sioc__http_form_decode(const char *in, size_t length, char *out, size_t out_size);

/* Query parameter name as engine.io reads it (Object.fromEntries(url.searchParams)): every
 * pair's name and value decoded as sioc__http_form_decode does, the last value of a name given
 * more than once, "" for a name without '='. Writes the value NUL-terminated into out (it may
 * hold U+0000: use the length). Returns its length, -1 when absent, -2 when out_size is too
 * small. */
long sioc__http_query_get(const char *query, size_t query_length, const char *name, char *out,
                          size_t out_size);

#endif
