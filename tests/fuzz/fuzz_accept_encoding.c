/* Fuzzes Accept-Encoding negotiation: any bytes give one of the three answers, the same for
 * the value alone and as the only header of a request, and a compressed copy of the input
 * inflates back. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "transport/http_compress.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sioc__http_encoding_t encoding = sioc__http_negotiate_encoding((const char *)data, size);
    if (encoding != SIOC_HTTP_IDENTITY && encoding != SIOC_HTTP_GZIP &&
        encoding != SIOC_HTTP_DEFLATE)
        abort();
    sioc__http_header_t header = {"accept-encoding", (const char *)data, size};
    sioc__http_request_t request = {.headers = &header, .header_count = 1};
    if (sioc__http_accepted_encoding(&request) != encoding)
        abort();
    if (encoding == SIOC_HTTP_IDENTITY)
        return 0;
    sioc__http_compressor_t compressor;
    sioc__http_compressor_init(&compressor);
    sioc__buffer_t *compressed = sioc__http_compress(&compressor, encoding, data, size);
    if (compressed == NULL)
        abort();
    uint8_t *out = malloc(size + 1);
    uLongf out_length = (uLongf)size + 1;
    z_stream stream;
    memset(&stream, 0, sizeof(stream));
    if (inflateInit2(&stream, encoding == SIOC_HTTP_GZIP ? 15 + 16 : 15) != Z_OK)
        abort();
    stream.next_in = compressed->data;
    stream.avail_in = (uInt)compressed->length;
    stream.next_out = out;
    stream.avail_out = (uInt)out_length;
    if (inflate(&stream, Z_FINISH) != Z_STREAM_END || stream.total_out != size ||
        memcmp(out, data, size) != 0)
        abort();
    inflateEnd(&stream);
    free(out);
    sioc__buffer_unref(compressed);
    sioc__http_compressor_free(&compressor);
    return 0;
}
