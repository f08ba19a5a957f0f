/* Redis adapter messages (see redis_codec.h), after socket.io-redis-adapter 8.3 dist/index.js
 * (onmessage, onrequest, onresponse, broadcast, broadcastWithAck) and socket.io-redis-emitter
 * 5.1 dist/index.js. msgpack goes through the Socket.IO msgpack codec's bounded decoder and
 * notepack-compatible writer, so both ends of the wire share one set of checks. */
#include "adapter/redis_codec.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "core/base64.h"
#include "socketio/sio_msgpack.h"

static const char ERROR_NOT_ARRAY[] = "broadcast is not an array [uid, packet, opts]";
static const char ERROR_UID[] = "uid is not a string";
static const char ERROR_PACKET[] = "packet is not an object";
static const char ERROR_PACKET_TYPE[] = "packet type is not EVENT";
static const char ERROR_NSP[] = "packet nsp is not a string";
static const char ERROR_DATA[] = "packet data is not [event name, ...args]";
static const char ERROR_OPTS[] = "opts is not an object";
static const char ERROR_NAMES[] = "rooms / except is not an array of at most 1024 strings";
static const char ERROR_NOT_OBJECT[] = "request is not an object";
static const char ERROR_JSON[] = "invalid JSON";
static const char ERROR_TYPE[] = "unknown request type";
static const char ERROR_REQUEST_ID[] = "requestId is not a string";
static const char ERROR_FIELD[] = "request field of the wrong type";
static const char ERROR_MEMORY[] = "out of memory";
static const char ERROR_EMPTY[] = "empty message";

/* The C string of a JSON string without NUL (else it would name another room, node or
 * namespace than the one sent), or NULL. */
static const char *c_string(json_t *value)
{
    const char *text = json_string_value(value);
    return text != NULL && strlen(text) == json_string_length(value) ? text : NULL;
}

void sioc__redis_message_clear(sioc__redis_message_t *message)
{
    json_decref(message->value);
    for (size_t i = 0; i < message->attachment_count; i++)
        free(message->attachments[i].data);
    free(message->attachments);
    free((void *)message->opts.rooms);
    free((void *)message->opts.except);
    free(message->rooms);
    memset(message, 0, sizeof(*message));
}

/* A string array (absent = empty) into a malloc'd array of pointers into it. */
static const char *read_names(json_t *array, const char ***names, size_t *count)
{
    *names = NULL;
    *count = 0;
    if (array == NULL || json_is_null(array))
        return NULL;
    if (!json_is_array(array) || json_array_size(array) > SIOC__REDIS_MAX_NAMES)
        return ERROR_NAMES;
    size_t size = json_array_size(array);
    *names = calloc(size + 1, sizeof(char *));
    if (*names == NULL)
        return ERROR_MEMORY;
    for (size_t i = 0; i < size; i++) {
        const char *name = c_string(json_array_get(array, i));
        if (name == NULL)
            return ERROR_NAMES;
        (*names)[i] = name;
    }
    *count = size;
    return NULL;
}

/* {rooms, except, flags} as BroadcastOperator and the emitter write them. */
static const char *read_opts(json_t *opts, sioc__redis_message_t *out)
{
    if (!json_is_object(opts))
        return ERROR_OPTS;
    out->has_opts = 1;
    const char *problem = read_names(json_object_get(opts, "rooms"),
                                     (const char ***)&out->opts.rooms, &out->opts.room_count);
    if (problem == NULL)
        problem = read_names(json_object_get(opts, "except"), (const char ***)&out->opts.except,
                             &out->opts.except_count);
    json_t *flags = json_object_get(opts, "flags");
    if (problem == NULL && flags != NULL && !json_is_null(flags) && !json_is_object(flags))
        problem = ERROR_OPTS;
    if (json_is_true(json_object_get(flags, "volatile")))
        out->opts.flags |= SIOC_BROADCAST_VOLATILE;
    json_t *timeout = json_object_get(flags, "timeout");
    if (json_is_integer(timeout) && json_integer_value(timeout) > 0)
        out->opts.timeout_ms = json_integer_value(timeout) > UINT32_MAX
                                   ? UINT32_MAX
                                   : (uint32_t)json_integer_value(timeout);
    return problem;
}

/* {type: 2, data: [name, ...args], nsp}: what a client could be sent. */
static const char *read_packet(json_t *packet, sioc__redis_message_t *out)
{
    if (!json_is_object(packet))
        return ERROR_PACKET;
    json_t *type = json_object_get(packet, "type");
    if (!json_is_integer(type) || (json_integer_value(type) != SIOC_SIO_EVENT &&
                                   json_integer_value(type) != SIOC_SIO_BINARY_EVENT))
        return ERROR_PACKET_TYPE;
    json_t *nsp = json_object_get(packet, "nsp");
    if (nsp != NULL && c_string(nsp) == NULL)
        return ERROR_NSP;
    out->nsp = nsp != NULL ? c_string(nsp) : "/";
    json_t *data = json_object_get(packet, "data");
    const char *name = c_string(json_array_get(data, 0));
    if (!json_is_array(data) || name == NULL || sioc__sio_is_reserved_event(name, strlen(name)))
        return ERROR_DATA;
    out->data = data;
    return NULL;
}

static const char *decode_msgpack(const uint8_t *bytes, size_t length, sioc__redis_message_t *out)
{
    const char *problem = NULL;
    if (sioc__sio_msgpack_decode_value(bytes, length, SIOC__REDIS_MAX_ATTACHMENTS, &out->value,
                                       &out->attachments, &out->attachment_count, &problem) != 0)
        return problem;
    return NULL;
}

static const char *decode_broadcast(const uint8_t *bytes, size_t length, sioc__redis_message_t *out)
{
    const char *problem = decode_msgpack(bytes, length, out);
    if (problem != NULL)
        return problem;
    if (!json_is_array(out->value) || json_array_size(out->value) != 3)
        return ERROR_NOT_ARRAY;
    out->uid = c_string(json_array_get(out->value, 0));
    if (out->uid == NULL)
        return ERROR_UID;
    problem = read_packet(json_array_get(out->value, 1), out);
    return problem != NULL ? problem : read_opts(json_array_get(out->value, 2), out);
}

static int finish(const char *problem, sioc__redis_message_t *out, const char **error)
{
    if (problem == NULL)
        return 0;
    sioc__redis_message_clear(out);
    if (error != NULL)
        *error = problem;
    return -1;
}

int sioc__redis_decode_broadcast(const uint8_t *bytes, size_t length, sioc__redis_message_t *out,
                                 const char **error)
{
    memset(out, 0, sizeof(*out));
    return finish(length == 0 ? ERROR_EMPTY : decode_broadcast(bytes, length, out), out, error);
}

/* The object of a request or response, JSON or msgpack. */
static const char *decode_object(const uint8_t *bytes, size_t length, sioc__redis_message_t *out)
{
    if (length == 0)
        return ERROR_EMPTY;
    if (bytes[0] == '{') {
        json_error_t json_error;
        out->value = json_loadb((const char *)bytes, length, JSON_REJECT_DUPLICATES, &json_error);
        if (out->value == NULL)
            return ERROR_JSON;
    } else {
        const char *problem = decode_msgpack(bytes, length, out);
        if (problem != NULL)
            return problem;
    }
    if (!json_is_object(out->value))
        return ERROR_NOT_OBJECT;
    json_t *uid = json_object_get(out->value, "uid");
    json_t *request_id = json_object_get(out->value, "requestId");
    if (uid != NULL && c_string(uid) == NULL)
        return ERROR_UID;
    if (request_id != NULL && c_string(request_id) == NULL)
        return ERROR_REQUEST_ID;
    out->uid = c_string(uid);
    out->request_id = c_string(request_id);
    return NULL;
}

static const char *read_join_leave(sioc__redis_message_t *out)
{
    json_t *value = out->value;
    json_t *opts = json_object_get(value, "opts");
    if (opts != NULL) {
        const char *problem = read_opts(opts, out);
        if (problem == NULL && out->type != SIOC__REDIS_REMOTE_DISCONNECT)
            problem = read_names(json_object_get(value, "rooms"), &out->rooms, &out->room_count);
        return problem;
    }
    /* the legacy form, for one socket */
    out->sid = c_string(json_object_get(value, "sid"));
    out->room = c_string(json_object_get(value, "room"));
    if (out->sid == NULL || (out->type != SIOC__REDIS_REMOTE_DISCONNECT && out->room == NULL))
        return ERROR_FIELD;
    return NULL;
}

static const char *read_request(sioc__redis_message_t *out)
{
    json_t *value = out->value;
    json_t *type = json_object_get(value, "type");
    if (!json_is_integer(type) || json_integer_value(type) < SIOC__REDIS_SOCKETS ||
        json_integer_value(type) > SIOC__REDIS_BROADCAST)
        return ERROR_TYPE;
    out->type = (int)json_integer_value(type);
    switch (out->type) {
    case SIOC__REDIS_SOCKETS:
        return read_names(json_object_get(value, "rooms"), (const char ***)&out->opts.rooms,
                          &out->opts.room_count);
    case SIOC__REDIS_ALL_ROOMS:
        return NULL;
    case SIOC__REDIS_REMOTE_DISCONNECT:
        out->close = json_is_true(json_object_get(value, "close"));
        return read_join_leave(out);
    case SIOC__REDIS_REMOTE_JOIN:
    case SIOC__REDIS_REMOTE_LEAVE:
        return read_join_leave(out);
    case SIOC__REDIS_REMOTE_FETCH:
        return read_opts(json_object_get(value, "opts"), out);
    case SIOC__REDIS_SERVER_SIDE_EMIT: {
        json_t *data = json_object_get(value, "data");
        if (c_string(json_array_get(data, 0)) == NULL)
            return ERROR_DATA;
        out->payload = data;
        return NULL;
    }
    default: { /* SIOC__REDIS_BROADCAST */
        const char *problem = read_packet(json_object_get(value, "packet"), out);
        if (problem == NULL)
            problem = read_opts(json_object_get(value, "opts"), out);
        if (problem == NULL && out->request_id == NULL)
            problem = ERROR_REQUEST_ID;
        return problem;
    }
    }
}

int sioc__redis_decode_request(const uint8_t *bytes, size_t length, sioc__redis_message_t *out,
                               const char **error)
{
    memset(out, 0, sizeof(*out));
    const char *problem = decode_object(bytes, length, out);
    if (problem == NULL)
        problem = read_request(out);
    return finish(problem, out, error);
}

static const char *read_response(sioc__redis_message_t *out)
{
    json_t *value = out->value;
    json_t *type = json_object_get(value, "type");
    json_t *count = json_object_get(value, "clientCount");
    json_t *sockets = json_object_get(value, "sockets");
    if (out->request_id == NULL)
        return ERROR_REQUEST_ID;
    if (type != NULL && !json_is_integer(type))
        return ERROR_TYPE;
    out->type = type != NULL ? (int)json_integer_value(type) : -1;
    if (out->type == SIOC__REDIS_BROADCAST_CLIENT_COUNT &&
        (!json_is_integer(count) || json_integer_value(count) < 0))
        return ERROR_FIELD;
    out->client_count = json_is_integer(count) ? json_integer_value(count) : 0;
    if (sockets != NULL && !json_is_array(sockets))
        return ERROR_FIELD;
    out->sockets = sockets;
    json_t *rooms = json_object_get(value, "rooms");
    out->room_names = json_is_array(rooms) ? rooms : NULL;
    out->payload = out->type == SIOC__REDIS_BROADCAST_ACK ? json_object_get(value, "packet")
                                                          : json_object_get(value, "data");
    return NULL;
}

int sioc__redis_decode_response(const uint8_t *bytes, size_t length, sioc__redis_message_t *out,
                                const char **error)
{
    memset(out, 0, sizeof(*out));
    const char *problem = decode_object(bytes, length, out);
    if (problem == NULL)
        problem = read_response(out);
    return finish(problem, out, error);
}

/* ---- encoding -------------------------------------------------------------------------------- */

typedef struct writer_s {
    msgpack_sbuffer buffer;
    msgpack_packer packer;
    const sioc__sio_attachment_t *attachments;
    size_t attachment_count;
    sioc__sio_attachment_t storage[SIOC__REDIS_MAX_ATTACHMENTS];
    int failed;
} writer_t;

static int writer_init(writer_t *writer, const sioc_binary_t *attachments, size_t count)
{
    memset(writer, 0, sizeof(*writer));
    if (count > SIOC__REDIS_MAX_ATTACHMENTS)
        return -1;
    for (size_t i = 0; i < count; i++) {
        writer->storage[i].data = (uint8_t *)attachments[i].data;
        writer->storage[i].length = attachments[i].length;
    }
    writer->attachments = writer->storage;
    writer->attachment_count = count;
    msgpack_sbuffer_init(&writer->buffer);
    msgpack_packer_init(&writer->packer, &writer->buffer, msgpack_sbuffer_write);
    return 0;
}

static void write_string(writer_t *writer, const char *text)
{
    if (msgpack_pack_str_with_body(&writer->packer, text, strlen(text)) != 0)
        writer->failed = 1;
}

static void write_json(writer_t *writer, json_t *value)
{
    if (sioc__sio_msgpack_pack_value(&writer->packer, value, writer->attachments,
                                     writer->attachment_count) != 0)
        writer->failed = 1;
}

static void write_integer(writer_t *writer, int64_t value)
{
    if (msgpack_pack_int64(&writer->packer, value) != 0)
        writer->failed = 1;
}

static void write_names(writer_t *writer, const char *const *names, size_t count)
{
    if (msgpack_pack_array(&writer->packer, count) != 0)
        writer->failed = 1;
    for (size_t i = 0; i < count; i++)
        write_string(writer, names[i]);
}

/* {type: 2, data, nsp}: the order BroadcastOperator.emit and adapter.broadcast build it in. */
static void write_packet(writer_t *writer, const char *nsp, json_t *data)
{
    msgpack_pack_map(&writer->packer, 3);
    write_string(writer, "type");
    write_integer(writer, SIOC_SIO_EVENT);
    write_string(writer, "data");
    write_json(writer, data);
    write_string(writer, "nsp");
    write_string(writer, nsp);
}

/* {rooms, except, flags}; flags hold what a receiver acts on. */
static void write_opts(writer_t *writer, const sioc_adapter_opts_t *opts)
{
    msgpack_pack_map(&writer->packer, 3);
    write_string(writer, "rooms");
    write_names(writer, opts->rooms, opts->room_count);
    write_string(writer, "except");
    write_names(writer, opts->except, opts->except_count);
    write_string(writer, "flags");
    int is_volatile = (opts->flags & SIOC_BROADCAST_VOLATILE) != 0;
    int has_timeout = opts->timeout_ms > 0;
    msgpack_pack_map(&writer->packer, (size_t)(is_volatile + has_timeout));
    if (is_volatile) {
        write_string(writer, "volatile");
        msgpack_pack_true(&writer->packer);
    }
    if (has_timeout) {
        write_string(writer, "timeout");
        write_integer(writer, opts->timeout_ms);
    }
}

static uint8_t *writer_finish(writer_t *writer, size_t *length)
{
    if (writer->failed) {
        msgpack_sbuffer_destroy(&writer->buffer);
        return NULL;
    }
    *length = writer->buffer.size;
    return (uint8_t *)msgpack_sbuffer_release(&writer->buffer);
}

uint8_t *sioc__redis_encode_broadcast(const char *uid, const char *nsp, json_t *data,
                                      const sioc_binary_t *attachments, size_t attachment_count,
                                      const sioc_adapter_opts_t *opts, size_t *length)
{
    writer_t writer;
    if (writer_init(&writer, attachments, attachment_count) != 0)
        return NULL;
    msgpack_pack_array(&writer.packer, 3);
    write_string(&writer, uid);
    write_packet(&writer, nsp, data);
    write_opts(&writer, opts);
    return writer_finish(&writer, length);
}

uint8_t *sioc__redis_encode_broadcast_request(const char *uid, const char *request_id,
                                              const char *nsp, json_t *data,
                                              const sioc_binary_t *attachments,
                                              size_t attachment_count,
                                              const sioc_adapter_opts_t *opts, size_t *length)
{
    writer_t writer;
    if (writer_init(&writer, attachments, attachment_count) != 0)
        return NULL;
    msgpack_pack_map(&writer.packer, 5);
    write_string(&writer, "uid");
    write_string(&writer, uid);
    write_string(&writer, "requestId");
    write_string(&writer, request_id);
    write_string(&writer, "type");
    write_integer(&writer, SIOC__REDIS_BROADCAST);
    write_string(&writer, "packet");
    write_packet(&writer, nsp, data);
    write_string(&writer, "opts");
    write_opts(&writer, opts);
    return writer_finish(&writer, length);
}

uint8_t *sioc__redis_encode_broadcast_ack(const char *request_id, json_t *packet,
                                          const sioc_binary_t *attachments, size_t attachment_count,
                                          size_t *length)
{
    writer_t writer;
    if (writer_init(&writer, attachments, attachment_count) != 0)
        return NULL;
    msgpack_pack_map(&writer.packer, 3);
    write_string(&writer, "type");
    write_integer(&writer, SIOC__REDIS_BROADCAST_ACK);
    write_string(&writer, "requestId");
    write_string(&writer, request_id);
    write_string(&writer, "packet");
    if (packet != NULL)
        write_json(&writer, packet);
    else
        msgpack_pack_nil(&writer.packer);
    return writer_finish(&writer, length);
}

static json_t *names_json(const char *const *names, size_t count)
{
    json_t *array = json_array();
    for (size_t i = 0; array != NULL && i < count; i++)
        json_array_append_new(array, json_string(names[i]));
    return array;
}

json_t *sioc__redis_opts_json(const sioc_adapter_opts_t *opts)
{
    return json_pack("{s:o,s:o}", "rooms", names_json(opts->rooms, opts->room_count), "except",
                     names_json(opts->except, opts->except_count));
}

/* ---- sharded mode -----------------------------------------------------------------------------
 */

static const char *read_sharded_data(sioc__redis_message_t *out, json_t *data)
{
    json_t *request_id = json_object_get(data, "requestId");
    if (request_id != NULL && c_string(request_id) == NULL)
        return ERROR_REQUEST_ID;
    out->request_id = c_string(request_id);
    const char *envelope_nsp = out->nsp;
    const char *problem = NULL;
    switch (out->type) {
    case SIOC__SHARDED_BROADCAST:
        problem = read_packet(json_object_get(data, "packet"), out);
        out->nsp = envelope_nsp;
        return problem != NULL ? problem : read_opts(json_object_get(data, "opts"), out);
    case SIOC__SHARDED_SOCKETS_JOIN:
    case SIOC__SHARDED_SOCKETS_LEAVE:
        problem = read_opts(json_object_get(data, "opts"), out);
        if (problem == NULL && !json_is_array(json_object_get(data, "rooms")))
            problem = ERROR_NAMES;
        return problem != NULL
                   ? problem
                   : read_names(json_object_get(data, "rooms"), &out->rooms, &out->room_count);
    case SIOC__SHARDED_DISCONNECT_SOCKETS:
        out->close = json_is_true(json_object_get(data, "close"));
        return read_opts(json_object_get(data, "opts"), out);
    case SIOC__SHARDED_FETCH_SOCKETS:
        problem = read_opts(json_object_get(data, "opts"), out);
        return problem != NULL || out->request_id != NULL ? problem : ERROR_REQUEST_ID;
    case SIOC__SHARDED_FETCH_SOCKETS_RESPONSE:
        out->sockets = json_object_get(data, "sockets");
        if (!json_is_array(out->sockets))
            return ERROR_FIELD;
        return out->request_id != NULL ? NULL : ERROR_REQUEST_ID;
    case SIOC__SHARDED_SERVER_SIDE_EMIT:
        out->payload = json_object_get(data, "packet");
        return c_string(json_array_get(out->payload, 0)) != NULL ? NULL : ERROR_DATA;
    case SIOC__SHARDED_BROADCAST_CLIENT_COUNT: {
        json_t *count = json_object_get(data, "clientCount");
        if (!json_is_integer(count) || json_integer_value(count) < 0)
            return ERROR_FIELD;
        out->client_count = json_integer_value(count);
        return out->request_id != NULL ? NULL : ERROR_REQUEST_ID;
    }
    case SIOC__SHARDED_SERVER_SIDE_EMIT_RESPONSE:
    case SIOC__SHARDED_BROADCAST_ACK:
        out->payload = json_object_get(data, "packet");
        return out->request_id != NULL ? NULL : ERROR_REQUEST_ID;
    default: /* heartbeats, ADAPTER_CLOSE: nothing to read */
        return NULL;
    }
}

int sioc__redis_decode_sharded(const uint8_t *bytes, size_t length, sioc__redis_message_t *out,
                               const char **error)
{
    memset(out, 0, sizeof(*out));
    const char *problem = decode_object(bytes, length, out);
    json_t *type = problem == NULL ? json_object_get(out->value, "type") : NULL;
    json_t *data = problem == NULL ? json_object_get(out->value, "data") : NULL;
    if (problem == NULL &&
        (out->uid == NULL || c_string(json_object_get(out->value, "nsp")) == NULL))
        problem = out->uid == NULL ? ERROR_UID : ERROR_NSP;
    if (problem == NULL && (!json_is_integer(type) || json_integer_value(type) < 1 ||
                            json_integer_value(type) > SIOC__SHARDED_ADAPTER_CLOSE))
        problem = ERROR_TYPE;
    if (problem == NULL && data != NULL && !json_is_object(data))
        problem = ERROR_FIELD;
    if (problem == NULL) {
        out->type = (int)json_integer_value(type);
        out->nsp = c_string(json_object_get(out->value, "nsp"));
        /* decode_object took requestId from the envelope: here it lives in data */
        problem = read_sharded_data(out, data);
    }
    return finish(problem, out, error);
}

uint8_t *sioc__redis_encode_sharded(const char *uid, const char *nsp, int type, json_t *data,
                                    const sioc_binary_t *attachments, size_t attachment_count,
                                    size_t *length)
{
    json_t *message =
        json_pack("{s:i,s:O?,s:s,s:s}", "type", type, "data", data, "uid", uid, "nsp", nsp);
    if (message == NULL)
        return NULL;
    uint8_t *bytes = NULL;
    if (attachment_count == 0) {
        char *text = json_dumps(message, JSON_COMPACT);
        if (text != NULL) {
            *length = strlen(text);
            bytes = (uint8_t *)text;
        }
    } else {
        writer_t writer;
        if (writer_init(&writer, attachments, attachment_count) == 0) {
            write_json(&writer, message);
            bytes = writer_finish(&writer, length);
        }
    }
    json_decref(message);
    return bytes;
}

/* ---- streams mode (@socket.io/redis-streams-adapter 0.3) -------------------------------------
 */

static const char ERROR_STREAM_TYPE[] = "stream entry type is not a message type";
static const char ERROR_BASE64[] = "invalid base64";
static const char ERROR_SESSION[] = "session is not {sid, pid, rooms, data}";
static const char ERROR_SESSION_BINARY[] = "session data holds binary";

uint8_t *sioc__redis_encode_cluster_msgpack(const char *uid, const char *nsp, int type,
                                            json_t *data, const sioc_binary_t *attachments,
                                            size_t attachment_count, size_t *length)
{
    json_t *message =
        json_pack("{s:s,s:s,s:i,s:O?}", "uid", uid, "nsp", nsp, "type", type, "data", data);
    uint8_t *bytes = NULL;
    writer_t writer;
    if (message != NULL && writer_init(&writer, attachments, attachment_count) == 0) {
        write_json(&writer, message);
        bytes = writer_finish(&writer, length);
    }
    json_decref(message);
    return bytes;
}

static char *base64_text(const uint8_t *bytes, size_t length)
{
    char *text = malloc(sioc__base64_encoded_length(length) + 1);
    if (text != NULL)
        text[sioc__base64_encode(bytes, length, text)] = '\0';
    return text;
}

char *sioc__redis_encode_stream_data(json_t *data, const sioc_binary_t *attachments,
                                     size_t attachment_count)
{
    if (attachment_count == 0)
        return json_dumps(data, JSON_COMPACT);
    writer_t writer;
    if (writer_init(&writer, attachments, attachment_count) != 0)
        return NULL;
    write_json(&writer, data);
    size_t length = 0;
    uint8_t *bytes = writer_finish(&writer, &length);
    char *text = bytes != NULL ? base64_text(bytes, length) : NULL;
    free(bytes);
    return text;
}

/* "1".."13" without sign, leading zeros or spaces (parseInt would take more; nothing writes
 * more). */
static int stream_type(const char *text, size_t length)
{
    if (length == 0 || length > 2 || text[0] < '1' || text[0] > '9')
        return -1;
    int value = text[0] - '0';
    if (length == 2) {
        if (text[1] < '0' || text[1] > '9')
            return -1;
        value = value * 10 + (text[1] - '0');
    }
    return value <= SIOC__SHARDED_ADAPTER_CLOSE ? value : -1;
}

static void pack_raw_string(msgpack_packer *packer, const char *text, size_t length)
{
    msgpack_pack_str(packer, length);
    msgpack_pack_str_body(packer, text, length);
}

/* The envelope {uid, nsp, type, data} around the entry's data, in the data's own encoding,
 * so that the sharded-mode decoder checks all of it. */
static uint8_t *stream_envelope(const char *uid, size_t uid_length, const char *nsp,
                                size_t nsp_length, int type, const char *data, size_t data_length,
                                size_t *length, const char **problem)
{
    if (data_length > 0 && data[0] == '{') {
        json_t *head = json_pack("{s:s%,s:s%,s:i}", "uid", uid, uid_length, "nsp", nsp, nsp_length,
                                 "type", type);
        if (head == NULL) {
            *problem = ERROR_UID; /* not UTF-8 */
            return NULL;
        }
        char *text = json_dumps(head, JSON_COMPACT);
        json_decref(head);
        if (text == NULL) {
            *problem = ERROR_MEMORY;
            return NULL;
        }
        size_t head_length = strlen(text); /* ends with '}' */
        uint8_t *bytes = malloc(head_length + data_length + 16);
        if (bytes != NULL) {
            memcpy(bytes, text, head_length - 1);
            memcpy(bytes + head_length - 1, ",\"data\":", 8);
            memcpy(bytes + head_length + 7, data, data_length);
            bytes[head_length + 7 + data_length] = '}';
            *length = head_length + 8 + data_length;
        }
        free(text);
        *problem = bytes != NULL ? NULL : ERROR_MEMORY;
        return bytes;
    }
    uint8_t *raw = malloc(sioc__base64_decoded_max_length(data_length) + 1);
    long raw_length = raw != NULL ? sioc__base64_decode(data, data_length, raw) : -1;
    if (raw_length <= 0) {
        free(raw);
        *problem = raw == NULL ? ERROR_MEMORY : ERROR_BASE64;
        return NULL;
    }
    msgpack_sbuffer buffer;
    msgpack_packer packer;
    msgpack_sbuffer_init(&buffer);
    msgpack_packer_init(&packer, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map(&packer, 4);
    pack_raw_string(&packer, "uid", 3);
    pack_raw_string(&packer, uid, uid_length);
    pack_raw_string(&packer, "nsp", 3);
    pack_raw_string(&packer, nsp, nsp_length);
    pack_raw_string(&packer, "type", 4);
    msgpack_pack_int(&packer, type);
    pack_raw_string(&packer, "data", 4);
    msgpack_sbuffer_write(&buffer, (const char *)raw, (size_t)raw_length);
    free(raw);
    *length = buffer.size;
    *problem = NULL;
    return (uint8_t *)msgpack_sbuffer_release(&buffer);
}

int sioc__redis_decode_stream_entry(const char *uid, size_t uid_length, const char *nsp,
                                    size_t nsp_length, const char *type, size_t type_length,
                                    const char *data, size_t data_length,
                                    sioc__redis_message_t *out, const char **error)
{
    memset(out, 0, sizeof(*out));
    int type_value = stream_type(type, type_length);
    if (type_value < 0)
        return finish(ERROR_STREAM_TYPE, out, error);
    if (uid == NULL || nsp == NULL)
        return finish(uid == NULL ? ERROR_UID : ERROR_NSP, out, error);
    const char *problem = NULL;
    size_t length = 0;
    uint8_t *bytes = NULL;
    if (data == NULL || data_length == 0) {
        json_t *message = json_pack("{s:s%,s:s%,s:i}", "uid", uid, uid_length, "nsp", nsp,
                                    nsp_length, "type", type_value);
        char *text = message != NULL ? json_dumps(message, JSON_COMPACT) : NULL;
        json_decref(message);
        bytes = (uint8_t *)text;
        length = text != NULL ? strlen(text) : 0;
        problem = text != NULL ? NULL : ERROR_UID;
    } else {
        bytes = stream_envelope(uid, uid_length, nsp, nsp_length, type_value, data, data_length,
                                &length, &problem);
    }
    if (bytes == NULL)
        return finish(problem, out, error);
    int rc = sioc__redis_decode_sharded(bytes, length, out, error);
    free(bytes);
    return rc;
}

char *sioc__redis_encode_session(const sioc_recovery_session_t *session)
{
    /* The keys of Node's socket._onclose() session, and nsp, which Node ignores. */
    json_t *value = json_pack("{s:s,s:s,s:O,s:O?,s:s}", "sid", session->sid, "pid", session->pid,
                              "rooms", session->rooms, "data", session->data, "nsp", session->nsp);
    if (value == NULL)
        return NULL;
    if (json_object_get(value, "data") == NULL)
        json_object_set_new(value, "data", json_null());
    writer_t writer;
    uint8_t *bytes = NULL;
    size_t length = 0;
    if (writer_init(&writer, NULL, 0) == 0) {
        write_json(&writer, value);
        bytes = writer_finish(&writer, &length);
    }
    json_decref(value);
    char *text = bytes != NULL ? base64_text(bytes, length) : NULL;
    free(bytes);
    return text;
}

void sioc__redis_session_clear(sioc__redis_session_t *session)
{
    json_decref(session->value);
    memset(session, 0, sizeof(*session));
}

static const char *read_session(sioc__redis_session_t *out)
{
    json_t *value = out->value;
    if (!json_is_object(value))
        return ERROR_SESSION;
    out->sid = c_string(json_object_get(value, "sid"));
    out->pid = c_string(json_object_get(value, "pid"));
    out->rooms = json_object_get(value, "rooms");
    out->data = json_object_get(value, "data");
    json_t *nsp = json_object_get(value, "nsp");
    out->nsp = c_string(nsp);
    if (out->sid == NULL || out->pid == NULL || !json_is_array(out->rooms) ||
        json_array_size(out->rooms) > SIOC__REDIS_MAX_NAMES || (nsp != NULL && out->nsp == NULL))
        return ERROR_SESSION;
    size_t index;
    json_t *room;
    json_array_foreach(out->rooms, index, room)
    {
        if (c_string(room) == NULL)
            return ERROR_SESSION;
    }
    return NULL;
}

int sioc__redis_decode_session(const char *text, size_t length, sioc__redis_session_t *out,
                               const char **error)
{
    memset(out, 0, sizeof(*out));
    uint8_t *raw = malloc(sioc__base64_decoded_max_length(length) + 1);
    long raw_length = raw != NULL ? sioc__base64_decode(text, length, raw) : -1;
    const char *problem = raw == NULL ? ERROR_MEMORY : raw_length <= 0 ? ERROR_BASE64 : NULL;
    sioc__sio_attachment_t *attachments = NULL;
    size_t attachment_count = 0;
    if (problem == NULL && sioc__sio_msgpack_decode_value(
                               raw, (size_t)raw_length, SIOC__REDIS_MAX_ATTACHMENTS, &out->value,
                               &attachments, &attachment_count, &problem) == 0) {
        problem = attachment_count > 0 ? ERROR_SESSION_BINARY : read_session(out);
    }
    for (size_t i = 0; i < attachment_count; i++)
        free(attachments[i].data);
    free(attachments);
    free(raw);
    if (problem != NULL) {
        sioc__redis_session_clear(out);
        if (error != NULL)
            *error = problem;
        return -1;
    }
    return 0;
}
