/* Standard base64 (RFC 4648 §4, with '=' padding), as Engine.IO polling carries binary packets
 * ("b" + base64). Decoding is strict: characters outside the alphabet, bad padding or a length
 * that is not a multiple of 4 are refused (Node's Buffer.from(x, "base64") is lenient, but a
 * strict decoder never loses bytes silently; the official clients always send canonical base64). */
#ifndef SIOC_CORE_BASE64_H
#define SIOC_CORE_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Bytes needed to encode length bytes (no terminating NUL). */
size_t sioc__base64_encoded_length(size_t length);

/* Writes sioc__base64_encoded_length(length) bytes to out; returns that count. No NUL is added. */
size_t sioc__base64_encode(const uint8_t *data, size_t length, char *out);

/* Upper bound of the decoded size of an input of this length. */
size_t sioc__base64_decoded_max_length(size_t length);

/* Decodes into out (at least sioc__base64_decoded_max_length(length) bytes). out may equal
 * (const uint8_t *)in: decoding in place is supported because output never overtakes input.
 * Returns the decoded byte count, or -1 for malformed input. */
long sioc__base64_decode(const char *in, size_t length, uint8_t *out);

#endif
