/* The load generator's client codec (see codec.h). */
#include "bench/codec.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ---- bounded text building ------------------------------------------------------------------ */

/* Appends into out[0..size); once something did not fit, the writer stays failed. */
typedef struct writer_s {
    char *out;
    size_t size;
    size_t length;
    int failed;
} writer_t;

static void write_bytes(writer_t *writer, const void *bytes, size_t length)
{
    if (writer->failed || length > writer->size - writer->length) {
        writer->failed = 1;
        return;
    }
    memcpy(writer->out + writer->length, bytes, length);
    writer->length += length;
}

static void write_text(writer_t *writer, const char *text)
{
    write_bytes(writer, text, strlen(text));
}

static void write_integer(writer_t *writer, int64_t value)
{
    char digits[24];
    int length = snprintf(digits, sizeof(digits), "%" PRId64, value);
    write_bytes(writer, digits, (size_t)length);
}

static size_t writer_finish(const writer_t *writer)
{
    return writer->failed ? 0 : writer->length;
}

/* ---- HTTP ------------------------------------------------------------------------------------ */

static void write_request_line(writer_t *writer, const char *method, const char *path,
                               const char *transport, const char *sid)
{
    write_text(writer, method);
    write_text(writer, " ");
    write_text(writer, path);
    write_text(writer, "?EIO=4&transport=");
    write_text(writer, transport);
    if (sid != NULL) {
        write_text(writer, "&sid=");
        write_text(writer, sid);
    }
    write_text(writer, " HTTP/1.1\r\n");
}

size_t bench_http_upgrade_request(char *out, size_t size, const char *host, const char *path,
                                  const char *key)
{
    writer_t writer = {out, size, 0, 0};
    write_request_line(&writer, "GET", path, "websocket", NULL);
    write_text(&writer, "Host: ");
    write_text(&writer, host);
    write_text(&writer, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ");
    write_text(&writer, key);
    write_text(&writer, "\r\nSec-WebSocket-Version: 13\r\n\r\n");
    return writer_finish(&writer);
}

size_t bench_http_poll_get(char *out, size_t size, const char *host, const char *path,
                           const char *sid)
{
    writer_t writer = {out, size, 0, 0};
    write_request_line(&writer, "GET", path, "polling", sid);
    write_text(&writer, "Host: ");
    write_text(&writer, host);
    write_text(&writer, "\r\n\r\n");
    return writer_finish(&writer);
}

size_t bench_http_poll_post(char *out, size_t size, const char *host, const char *path,
                            const char *sid, const char *body, size_t body_length)
{
    writer_t writer = {out, size, 0, 0};
    write_request_line(&writer, "POST", path, "polling", sid);
    write_text(&writer, "Host: ");
    write_text(&writer, host);
    write_text(&writer, "\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: ");
    write_integer(&writer, (int64_t)body_length);
    write_text(&writer, "\r\n\r\n");
    write_bytes(&writer, body, body_length);
    return writer_finish(&writer);
}

/* The end of the head ("\r\n\r\n" included) or NULL. */
static const char *find_head_end(const char *data, size_t length)
{
    for (size_t i = 3; i < length; i++)
        if (data[i] == '\n' && data[i - 1] == '\r' && data[i - 2] == '\n' && data[i - 3] == '\r')
            return data + i + 1;
    return NULL;
}

static int parse_status_line(const char *line, size_t length, int *status)
{
    if (length < 12 || memcmp(line, "HTTP/1.", 7) != 0 || line[8] != ' ')
        return -1;
    int value = 0;
    for (size_t i = 9; i < 12; i++) {
        if (line[i] < '0' || line[i] > '9')
            return -1;
        value = value * 10 + (line[i] - '0');
    }
    *status = value;
    return 0;
}

static int header_is(const char *line, size_t length, const char *name)
{
    size_t name_length = strlen(name);
    return length > name_length && line[name_length] == ':' &&
           strncasecmp(line, name, name_length) == 0;
}

/* The header's value with the spaces around it skipped. */
static const char *header_value(const char *line, size_t length, const char *name,
                                size_t *value_length)
{
    const char *value = line + strlen(name) + 1;
    const char *end = line + length;
    while (value < end && (*value == ' ' || *value == '\t'))
        value++;
    while (end > value && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *value_length = (size_t)(end - value);
    return value;
}

static int parse_header(const char *line, size_t length, bench_http_response_t *response)
{
    size_t value_length;
    if (header_is(line, length, "Content-Length")) {
        const char *value = header_value(line, length, "Content-Length", &value_length);
        if (value_length == 0 || value_length > 12)
            return -1;
        long number = 0;
        for (size_t i = 0; i < value_length; i++) {
            if (value[i] < '0' || value[i] > '9')
                return -1;
            number = number * 10 + (value[i] - '0');
        }
        response->content_length = number;
    } else if (header_is(line, length, "Transfer-Encoding")) {
        const char *value = header_value(line, length, "Transfer-Encoding", &value_length);
        response->chunked = value_length >= 7 && strncasecmp(value, "chunked", 7) == 0;
    }
    return 0;
}

long bench_http_response_parse(const char *data, size_t length, size_t max_head,
                               bench_http_response_t *response)
{
    const char *end = find_head_end(data, length < max_head ? length : max_head);
    if (end == NULL)
        return length >= max_head ? -1 : 0;
    response->status = 0;
    response->content_length = -1;
    response->chunked = 0;
    const char *line = data;
    int first = 1;
    while (line < end - 2) {
        const char *line_end = memchr(line, '\n', (size_t)(end - line));
        size_t line_length = (size_t)(line_end - line);
        if (line_length == 0 || line[line_length - 1] != '\r')
            return -1;
        line_length--;
        int rc = first ? parse_status_line(line, line_length, &response->status)
                       : parse_header(line, line_length, response);
        if (rc != 0)
            return -1;
        first = 0;
        line = line_end + 1;
    }
    return first ? -1 : (long)(end - data);
}

/* ---- WebSocket ------------------------------------------------------------------------------ */

size_t bench_ws_encode(uint8_t *out, size_t size, int opcode, const void *payload, size_t length,
                       uint32_t mask)
{
    size_t header = length < 126 ? 6 : length <= 0xffff ? 8 : 14;
    if (length > size || header > size - length)
        return 0;
    out[0] = (uint8_t)(0x80 | (opcode & 0x0f));
    if (length < 126) {
        out[1] = (uint8_t)(0x80 | length);
    } else if (length <= 0xffff) {
        out[1] = 0x80 | 126;
        out[2] = (uint8_t)(length >> 8);
        out[3] = (uint8_t)length;
    } else {
        out[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)((uint64_t)length >> (56 - 8 * i));
    }
    uint8_t key[4] = {(uint8_t)(mask >> 24), (uint8_t)(mask >> 16), (uint8_t)(mask >> 8),
                      (uint8_t)mask};
    memcpy(out + header - 4, key, 4);
    const uint8_t *bytes = payload;
    for (size_t i = 0; i < length; i++)
        out[header + i] = bytes[i] ^ key[i & 3];
    return header + length;
}

long bench_ws_decode(const uint8_t *data, size_t length, uint64_t max_payload,
                     bench_ws_frame_t *frame)
{
    if (length < 2)
        return 0;
    if ((data[0] & 0x70) != 0 || (data[1] & 0x80) != 0)
        return -1; /* reserved bits (no extension was negotiated) or a masked server frame */
    frame->fin = (data[0] & 0x80) != 0;
    frame->opcode = data[0] & 0x0f;
    uint64_t payload_length = data[1] & 0x7f;
    size_t header = 2;
    if (payload_length == 126) {
        if (length < 4)
            return 0;
        payload_length = ((uint64_t)data[2] << 8) | data[3];
        header = 4;
    } else if (payload_length == 127) {
        if (length < 10)
            return 0;
        payload_length = 0;
        for (int i = 0; i < 8; i++)
            payload_length = (payload_length << 8) | data[2 + i];
        header = 10;
    }
    if (frame->opcode >= 0x8 && (payload_length > 125 || !frame->fin))
        return -1;
    if (payload_length > max_payload)
        return -1;
    if (length - header < payload_length)
        return 0;
    frame->payload = data + header;
    frame->length = payload_length;
    return (long)(header + payload_length);
}

/* ---- Engine.IO / Socket.IO ------------------------------------------------------------------ */

/* The event name when data is ["name"...]: a plain string (escapes are left in the view). */
static void parse_event_name(bench_packet_t *packet)
{
    const char *data = packet->data;
    size_t length = packet->data_length;
    if (length < 3 || data[0] != '[' || data[1] != '"')
        return;
    for (size_t i = 2; i < length; i++) {
        if (data[i] == '\\') {
            i++;
        } else if (data[i] == '"') {
            packet->event = data + 2;
            packet->event_length = i - 2;
            return;
        }
    }
}

/* The Socket.IO part after the Engine.IO '4': type, [/nsp,], [ack id], payload. */
static int parse_socketio(const char *text, size_t length, bench_packet_t *packet)
{
    if (length == 0 || text[0] < '0' || text[0] > '4')
        return -1; /* binary packets (5, 6) are never asked for */
    packet->sio_type = text[0];
    size_t position = 1;
    if (position < length && text[position] == '/') {
        const char *comma = memchr(text + position, ',', length - position);
        size_t end = comma != NULL ? (size_t)(comma - text) : length;
        packet->nsp = text + position;
        packet->nsp_length = end - position;
        position = comma != NULL ? end + 1 : end;
    }
    if (position < length && text[position] >= '0' && text[position] <= '9') {
        int64_t id = 0;
        while (position < length && text[position] >= '0' && text[position] <= '9') {
            if (id > (INT64_MAX - 9) / 10)
                return -1;
            id = id * 10 + (text[position++] - '0');
        }
        packet->ack_id = id;
    }
    packet->data = text + position;
    packet->data_length = length - position;
    if (packet->sio_type == BENCH_SIO_EVENT)
        parse_event_name(packet);
    return 0;
}

int bench_packet_parse(const char *text, size_t length, bench_packet_t *packet)
{
    memset(packet, 0, sizeof(*packet));
    packet->nsp = "/";
    packet->nsp_length = 1;
    packet->ack_id = -1;
    packet->data = "";
    if (length == 0 || text[0] < '0' || text[0] > '6')
        return -1;
    packet->eio_type = text[0];
    if (packet->eio_type != BENCH_EIO_MESSAGE) {
        packet->data = text + 1;
        packet->data_length = length - 1;
        return 0;
    }
    return parse_socketio(text + 1, length - 1, packet);
}

int bench_packet_in_namespace(const bench_packet_t *packet, const char *nsp)
{
    if (packet->nsp_length == 1 && packet->nsp[0] == '/')
        return nsp[0] == '/' && nsp[1] == '\0';
    size_t length = strlen(nsp);
    return packet->nsp_length == length && memcmp(packet->nsp, nsp, length) == 0;
}

static void write_namespace(writer_t *writer, const char *nsp)
{
    if (nsp != NULL && strcmp(nsp, "/") != 0) {
        write_text(writer, nsp);
        write_text(writer, ",");
    }
}

size_t bench_sio_connect(char *out, size_t size, const char *nsp, const char *auth)
{
    writer_t writer = {out, size, 0, 0};
    write_text(&writer, "40");
    write_namespace(&writer, nsp);
    if (auth != NULL)
        write_text(&writer, auth);
    return writer_finish(&writer);
}

size_t bench_sio_event(char *out, size_t size, const char *nsp, int64_t ack_id, const char *event,
                       const char *args)
{
    writer_t writer = {out, size, 0, 0};
    write_text(&writer, "42");
    write_namespace(&writer, nsp);
    if (ack_id >= 0)
        write_integer(&writer, ack_id);
    write_text(&writer, "[\"");
    write_text(&writer, event);
    write_text(&writer, "\"");
    if (args != NULL && args[0] != '\0') {
        write_text(&writer, ",");
        write_text(&writer, args);
    }
    write_text(&writer, "]");
    return writer_finish(&writer);
}

/* Whether the length bytes at text are key's (a plain loop: keys are a few bytes, where a
 * call to memcmp costs more than the comparison; the generator runs this per delivery). */
static int same_bytes(const char *text, const char *key, size_t length)
{
    for (size_t i = 0; i < length; i++)
        if (text[i] != key[i])
            return 0;
    return 1;
}

/* Where the value of "key": starts (spaces skipped), or NULL. */
static const char *find_value(const char *json, size_t length, const char *key)
{
    size_t key_length = strlen(key);
    const char *end = json + length;
    for (const char *at = json; at + key_length + 3 <= end; at++) {
        if (*at != '"' || at[key_length + 1] != '"' || !same_bytes(at + 1, key, key_length))
            continue;
        const char *value = at + key_length + 2;
        while (value < end && *value == ' ')
            value++;
        if (value >= end || *value != ':')
            continue;
        value++;
        while (value < end && *value == ' ')
            value++;
        return value;
    }
    return NULL;
}

int bench_json_integer(const char *json, size_t length, const char *key, int64_t *value)
{
    const char *at = find_value(json, length, key);
    const char *end = json + length;
    if (at == NULL)
        return -1;
    int negative = at < end && *at == '-';
    if (negative)
        at++;
    if (at >= end || *at < '0' || *at > '9')
        return -1;
    int64_t number = 0;
    while (at < end && *at >= '0' && *at <= '9') {
        if (number > (INT64_MAX - 9) / 10)
            return -1;
        number = number * 10 + (*at++ - '0');
    }
    *value = negative ? -number : number;
    return 0;
}

int bench_json_string(const char *json, size_t length, const char *key, const char **value,
                      size_t *value_length)
{
    const char *at = find_value(json, length, key);
    const char *end = json + length;
    if (at == NULL || at >= end || *at != '"')
        return -1;
    for (const char *cursor = at + 1; cursor < end; cursor++) {
        if (*cursor == '\\') {
            cursor++;
        } else if (*cursor == '"') {
            *value = at + 1;
            *value_length = (size_t)(cursor - at - 1);
            return 0;
        }
    }
    return -1;
}
