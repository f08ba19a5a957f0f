/* The load generator's client side of the protocols, pure: bytes in, values out, no I/O.
 *
 * Only what a Socket.IO client needs to talk to a server: the HTTP/1.1 requests that open a
 * session (WebSocket upgrade, long-polling GET and POST) and the head of their responses,
 * client WebSocket frames (masked) out and server frames (unmasked) in, and the Engine.IO /
 * Socket.IO packets of the JSON parser. Parsers return the number of bytes consumed, 0 when
 * more input is needed, or -1 when the input is malformed (picohttpparser's convention, with 0
 * for "need more" since a complete item is never empty). Builders write into a caller's buffer
 * and return the length written, or 0 when it does not fit; they never write past size. */
#ifndef SIOC_BENCH_CODEC_H
#define SIOC_BENCH_CODEC_H

#include <stddef.h>
#include <stdint.h>

/* ---- HTTP/1.1 ---------------------------------------------------------------------------- */

/* GET <path>?EIO=4&transport=websocket with the upgrade headers; key is the 24-character
 * base64 Sec-WebSocket-Key. */
size_t bench_http_upgrade_request(char *out, size_t size, const char *host, const char *path,
                                  const char *key);
/* GET <path>?EIO=4&transport=polling[&sid=<sid>]; sid may be NULL (the handshake). */
size_t bench_http_poll_get(char *out, size_t size, const char *host, const char *path,
                           const char *sid);
/* POST <path>?EIO=4&transport=polling&sid=<sid> carrying body (text/plain). */
size_t bench_http_poll_post(char *out, size_t size, const char *host, const char *path,
                            const char *sid, const char *body, size_t body_length);

typedef struct bench_http_response_s {
    int status;
    long content_length; /* -1 when absent */
    int chunked;         /* Transfer-Encoding: chunked (not supported by the generator) */
} bench_http_response_t;

/* Parses a response head ("HTTP/1.1 200 OK\r\n...\r\n\r\n"): the head's length, 0 when more
 * is needed (no more than max_head bytes are awaited: beyond, -1), or -1 when malformed. */
long bench_http_response_parse(const char *data, size_t length, size_t max_head,
                               bench_http_response_t *response);

/* ---- WebSocket (RFC 6455) ------------------------------------------------------------------ */

#define BENCH_WS_OPCODE_CONTINUATION 0x0
#define BENCH_WS_OPCODE_TEXT 0x1
#define BENCH_WS_OPCODE_BINARY 0x2
#define BENCH_WS_OPCODE_CLOSE 0x8
#define BENCH_WS_OPCODE_PING 0x9
#define BENCH_WS_OPCODE_PONG 0xa
/* A client frame's header is at most 14 bytes (2 + 8 length + 4 mask). */
#define BENCH_WS_MAX_CLIENT_HEADER 14

/* One final, masked client frame of opcode with payload (masked with mask) into out. */
size_t bench_ws_encode(uint8_t *out, size_t size, int opcode, const void *payload, size_t length,
                       uint32_t mask);

typedef struct bench_ws_frame_s {
    int fin;
    int opcode;
    const uint8_t *payload; /* points into the input */
    uint64_t length;
} bench_ws_frame_t;

/* Decodes one server frame. Bytes consumed (header and payload), 0 when the frame is not
 * whole yet, -1 when it is malformed: masked, reserved bits set, a control frame over 125
 * bytes or fragmented, a length over max_payload. */
long bench_ws_decode(const uint8_t *data, size_t length, uint64_t max_payload,
                     bench_ws_frame_t *frame);

/* ---- Engine.IO v4 / Socket.IO v5 ------------------------------------------------------------ */

#define BENCH_EIO_OPEN '0'
#define BENCH_EIO_CLOSE '1'
#define BENCH_EIO_PING '2'
#define BENCH_EIO_PONG '3'
#define BENCH_EIO_MESSAGE '4'
#define BENCH_EIO_NOOP '6'

#define BENCH_SIO_CONNECT '0'
#define BENCH_SIO_DISCONNECT '1'
#define BENCH_SIO_EVENT '2'
#define BENCH_SIO_ACK '3'
#define BENCH_SIO_CONNECT_ERROR '4'

/* A view of one text Engine.IO packet and, for a message, the Socket.IO packet inside it. */
typedef struct bench_packet_s {
    char eio_type;   /* BENCH_EIO_* */
    char sio_type;   /* BENCH_SIO_* for a message, else 0 */
    const char *nsp; /* "/" or the namespace in the packet (not NUL-terminated) */
    size_t nsp_length;
    int64_t ack_id;   /* -1 when absent */
    const char *data; /* the JSON payload (or the open packet's JSON), may be empty */
    size_t data_length;
    const char *event; /* EVENT: the name (first array element, a plain string) */
    size_t event_length;
} bench_packet_t;

/* Parses one text Engine.IO packet. 0, or -1 when it is not a packet this client understands
 * (binary attachments included: the benchmark never asks for them). */
int bench_packet_parse(const char *text, size_t length, bench_packet_t *packet);

/* 1 when the packet's namespace is nsp ("/" matches a packet without one). */
int bench_packet_in_namespace(const bench_packet_t *packet, const char *nsp);

/* "40[/nsp,][auth]": a CONNECT, auth a JSON object text or NULL. */
size_t bench_sio_connect(char *out, size_t size, const char *nsp, const char *auth);
/* "42[/nsp,][ack_id][\"event\",<args>]": args is the JSON text of the arguments after the name
 * without brackets ("" for none); ack_id < 0 asks for no acknowledgement. */
size_t bench_sio_event(char *out, size_t size, const char *nsp, int64_t ack_id, const char *event,
                       const char *args);

/* The value of "key":<integer> in JSON text, found by scanning (the benchmark's own payloads
 * only: no escapes in keys). 0, or -1 when absent. */
int bench_json_integer(const char *json, size_t length, const char *key, int64_t *value);
/* The value of "key":"<string>" (the view between the quotes, escapes left as they are).
 * 0, or -1 when absent. */
int bench_json_string(const char *json, size_t length, const char *key, const char **value,
                      size_t *value_length);

#endif
