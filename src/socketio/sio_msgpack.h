/* Socket.IO packets in the socket.io-msgpack-parser format (npm socket.io-msgpack-parser 3.0.x,
 * which encodes each packet object with notepack.io 2.2). Pure: no I/O.
 *
 * One Engine.IO binary message holds one whole packet: a msgpack map with the string keys
 * "type", "data", "nsp" and, for acknowledgements, "id". Binary arguments travel inline as
 * msgpack bin values, so there are no BINARY_EVENT/BINARY_ACK types on the wire.
 *
 * Decoding gives the same representation as the JSON parser (sio_parser.h), so the server above
 * treats both alike: every bin value inside data becomes {"_placeholder":true,"num":i} plus a
 * copy in attachments[i] (i in document order), and an EVENT or ACK that carried bins is
 * reported as BINARY_EVENT or BINARY_ACK with attachment_count bins (0 and EVENT/ACK otherwise).
 *
 * Validation follows the parser's Decoder.checkPacket: type an integer 0..4 (the wire has no 5
 * or 6), nsp a string, id absent or an integer. On top of that, as the JSON decoder does: id
 * only on EVENT/ACK and within 0..2^53-1, nsp without NUL and at most
 * SIOC_SIO_MSGPACK_MAX_NSP_LENGTH bytes, data shaped per type (CONNECT object or absent,
 * DISCONNECT absent, CONNECT_ERROR string or object, EVENT a non-empty array whose first element
 * is a number or a string that is not reserved, ACK an array), at most max_attachments bins.
 * Other keys of the packet map are ignored (socket.io-client sends "options"). The msgpack text
 * itself must be exactly one value, nested at most SIOC_SIO_MSGPACK_MAX_DEPTH containers deep,
 * with string map keys that do not repeat and UTF-8 strings; see sio_msgpack.c for how msgpack
 * values map to JSON (extension types, numbers). */
#ifndef SIOC_SOCKETIO_SIO_MSGPACK_H
#define SIOC_SOCKETIO_SIO_MSGPACK_H

#include <stddef.h>
#include <stdint.h>

#include "socketio/sio_parser.h"

/* msgpack-c's C unpacker keeps open containers on a fixed stack of 32 entries
 * (MSGPACK_EMBED_STACK_SIZE, compiled into libmsgpackc), the packet map included. */
#define SIOC_SIO_MSGPACK_MAX_DEPTH 32

/* The JSON decoder's default limit on namespace names. */
#define SIOC_SIO_MSGPACK_MAX_NSP_LENGTH 256

/* Decodes one Engine.IO binary message. Returns 0 with *out filled (the caller owns it:
 * sioc__sio_packet_clear), or -1 with *error set to a static message and *out zeroed. */
int sioc__sio_msgpack_decode(const uint8_t *data, size_t length, size_t max_attachments,
                             sioc__sio_packet_t *out, const char **error);

/* Encodes a packet the way the Node server writes it: keys in the order socket.io builds its
 * packet objects, values as notepack.io writes them. type, nsp (NULL = "/"), id, data (NULL or
 * JSON null = no "data" key) and the attachments are read. Placeholders in data whose num is
 * below attachment_count become bin values holding attachments[num]; BINARY_EVENT/BINARY_ACK are
 * written as EVENT/ACK. Returns malloc'd bytes (caller frees) and *length, or NULL when the type
 * is unknown, an id is set on another type than (BINARY_)EVENT/ACK or is outside 0..2^53-1, data
 * nests deeper than the JSON encoder allows, or memory runs out. */
uint8_t *sioc__sio_msgpack_encode(const sioc__sio_packet_t *packet, size_t *length);

/* Any one msgpack value with the same bounds checks and the same msgpack-to-JSON mapping as a
 * packet's data (for the Redis adapter's channel messages): bin values become placeholders and
 * copies in *attachments (caller frees each data and the array). Returns 0, or -1 with *error
 * set to a static message and nothing to free. */
int sioc__sio_msgpack_decode_value(const uint8_t *data, size_t length, size_t max_attachments,
                                   json_t **out, sioc__sio_attachment_t **attachments,
                                   size_t *attachment_count, const char **error);
/* Writes value as notepack.io does onto packer; placeholders whose num is below
 * attachment_count become bin values. 0, or -1 when it nests too deep or a write failed. */
struct msgpack_packer;
int sioc__sio_msgpack_pack_value(struct msgpack_packer *packer, json_t *value,
                                 const sioc__sio_attachment_t *attachments,
                                 size_t attachment_count);

#endif
