/* HTTP response compression as engine.io's httpCompression does it: the encoding chosen from
 * Accept-Encoding by the negotiator npm module's rules (q values, "*", order), gzip or deflate
 * with zlib's defaults (Node's zlib.createGzip / createDeflate). */
#ifndef SIOC_TRANSPORT_HTTP_COMPRESS_H
#define SIOC_TRANSPORT_HTTP_COMPRESS_H

#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#include "core/buffer.h"
#include "transport/http_request.h"

typedef enum sioc__http_encoding_e {
    SIOC_HTTP_IDENTITY = 0,
    SIOC_HTTP_GZIP = 1,
    SIOC_HTTP_DEFLATE = 2,
} sioc__http_encoding_t;

/* The encoding negotiator picks among ["gzip", "deflate"] for these Accept-Encoding values
 * (every header of that name, in order, as Node joins them): SIOC_HTTP_IDENTITY when neither
 * is acceptable. */
sioc__http_encoding_t sioc__http_accepted_encoding(const sioc__http_request_t *request);

/* Same, for one header value (unit tests and fuzzing). */
sioc__http_encoding_t sioc__http_negotiate_encoding(const char *value, size_t length);

/* "gzip" or "deflate". */
const char *sioc__http_encoding_name(sioc__http_encoding_t encoding);

/* One zlib stream per encoding, made on first use and reset for each response: a loop
 * compresses one response at a time, so two streams serve every connection. */
typedef struct sioc__http_compressor_s {
    z_stream streams[2];
    uint8_t ready[2];
} sioc__http_compressor_t;

void sioc__http_compressor_init(sioc__http_compressor_t *compressor);
void sioc__http_compressor_free(sioc__http_compressor_t *compressor);

/* A new buffer with data compressed as encoding (gzip or deflate), or NULL. */
sioc__buffer_t *sioc__http_compress(sioc__http_compressor_t *compressor,
                                    sioc__http_encoding_t encoding, const uint8_t *data,
                                    size_t length);

#endif
