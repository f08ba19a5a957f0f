/* Socket.IO server: options, the Engine.IO callbacks, one client per Engine.IO connection
 * (packet decoding, CONNECT routing, connect timeout) and packet encoding. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engineio/eio_send.h"
#include "socketio/sio_internal.h"
#include "socketio/sio_msgpack.h"
#include "socketio/sio_recovery.h"
#include "transport/http_request.h"

#define V3_MAX_NSP_WITH_QUERY_LENGTH 8192

void sioc_server_options_init(sioc_server_options_t *options)
{
    memset(options, 0, sizeof(*options));
    sioc_eio_options_init(&options->engine);
    options->engine.path = "/socket.io/";
    options->connect_timeout_ms = 45000;
    options->parser = SIOC_PARSER_JSON;
    options->max_attachments = SIOC_SIO_DEFAULT_MAX_ATTACHMENTS;
    options->max_disconnection_duration_ms = 120000;
    options->recovery_skip_middlewares = 1;
    options->recovery_max_pending = 10000;
    options->recovery_max_pending_bytes = 64 * 1024 * 1024;
}

/* ---- encoding -------------------------------------------------------------------------------- */

void sioc__sio_encoded_release(sioc__sio_encoded_t *encoded)
{
    for (size_t i = 0; i < encoded->count; i++)
        sioc__buffer_unref(encoded->parts[i]);
    encoded->count = 0;
}

/* The scratch text is given back when a packet made it grow past this, so that one large
 * packet does not pin its size for the server's life. */
#define SCRATCH_KEEP_BYTES (64 * 1024)

/* Encoded into the server's scratch text, then copied once into the buffer the connection
 * writes: one allocation per packet instead of a growing string and its copy. */
static int encode_json(sioc_server_t *server, const sioc__sio_packet_t *packet,
                       sioc__sio_encoded_t *out)
{
    sioc__sio_text_t *text = &server->encode_scratch;
    int failed = sioc__sio_encode_into(packet, text) != 0;
    if (!failed)
        out->parts[0] = sioc__buffer_new_prefixed('4', text->data, text->length, 0);
    if (text->capacity > SCRATCH_KEEP_BYTES)
        sioc__sio_text_free(text);
    if (failed)
        return SIOC_EINVAL;
    if (out->parts[0] == NULL)
        return SIOC_ENOMEM;
    out->count = 1;
    for (size_t i = 0; i < packet->attachment_count; i++) {
        const sioc__sio_attachment_t *attachment = &packet->attachments[i];
        out->parts[out->count] = sioc__buffer_new_copy(attachment->data, attachment->length, 1);
        if (out->parts[out->count] == NULL) {
            sioc__sio_encoded_release(out);
            return SIOC_ENOMEM;
        }
        out->count++;
    }
    return 0;
}

/* Decimal digits of value at the end of buf (20 bytes); returns where they start. */
static char *digits_of(uint64_t value, char *end)
{
    do {
        *--end = (char)('0' + value % 10);
        value /= 10;
    } while (value != 0);
    return end;
}

int sioc__sio_encode_ack_bytes(const char *nsp, int64_t id, const char *args, size_t length,
                               sioc__sio_encoded_t *out)
{
    out->count = 0;
    int has_nsp = nsp != NULL && nsp[0] != '\0' && strcmp(nsp, "/") != 0;
    if (id < 0 || (has_nsp && strchr(nsp, ',') != NULL))
        return SIOC_EINVAL; /* as sioc__sio_encode */
    char id_text[20];
    char *id_start = digits_of((uint64_t)id, id_text + sizeof(id_text));
    size_t id_length = (size_t)(id_text + sizeof(id_text) - id_start);
    size_t nsp_length = has_nsp ? strlen(nsp) + 1 : 0;
    /* "4" (Engine.IO message) "3" (ACK) [nsp ","] id "[" args "]" */
    sioc__buffer_t *buffer = sioc__buffer_new(2 + nsp_length + id_length + 1 + length + 1, 0);
    if (buffer == NULL)
        return SIOC_ENOMEM;
    uint8_t *cursor = buffer->data;
    *cursor++ = '4';
    *cursor++ = '3';
    if (has_nsp) {
        memcpy(cursor, nsp, nsp_length - 1);
        cursor += nsp_length - 1;
        *cursor++ = ',';
    }
    memcpy(cursor, id_start, id_length);
    cursor += id_length;
    *cursor++ = '[';
    if (length > 0)
        memcpy(cursor, args, length);
    cursor[length] = ']';
    out->parts[0] = buffer;
    out->count = 1;
    return 0;
}

static int encode_msgpack(const sioc__sio_packet_t *packet, sioc__sio_encoded_t *out)
{
    size_t length;
    uint8_t *bytes = sioc__sio_msgpack_encode(packet, &length);
    if (bytes == NULL)
        return SIOC_EINVAL;
    out->parts[0] = sioc__buffer_new_copy(bytes, length, 1);
    free(bytes);
    if (out->parts[0] == NULL)
        return SIOC_ENOMEM;
    out->count = 1;
    return 0;
}

static int encode_packet(sioc_server_t *server, const sioc__sio_packet_t *packet,
                         sioc__sio_encoded_t *out);

static int is_placeholder(const json_t *value, size_t attachment_count)
{
    json_t *num = json_object_get(value, "num");
    return json_is_true(json_object_get(value, "_placeholder")) && json_is_integer(num) &&
           json_integer_value(num) >= 0 && (size_t)json_integer_value(num) < attachment_count;
}

/* Node deconstructs binary arguments again on every emit: placeholders are numbered in the
 * order a depth-first walk meets them, and an attachment used twice is sent twice. Returns a
 * new value (placeholders renumbered, attachments reordered into out), or NULL when more
 * placeholders than SIO_MAX_PARTS - 1 are met or memory runs out. */
static json_t *renumber(json_t *value, const sioc__sio_packet_t *packet,
                        sioc__sio_attachment_t *out, size_t *count)
{
    if (json_is_object(value) && is_placeholder(value, packet->attachment_count)) {
        if (*count + 1 >= SIO_MAX_PARTS)
            return NULL;
        out[*count] = packet->attachments[json_integer_value(json_object_get(value, "num"))];
        return json_pack("{s:b,s:I}", "_placeholder", 1, "num", (json_int_t)(*count)++);
    }
    json_t *copy = NULL;
    if (json_is_array(value)) {
        copy = json_array();
        for (size_t i = 0; copy != NULL && i < json_array_size(value); i++) {
            json_t *item = renumber(json_array_get(value, i), packet, out, count);
            if (item == NULL || json_array_append_new(copy, item) != 0) {
                json_decref(copy);
                copy = NULL;
            }
        }
    } else if (json_is_object(value)) {
        copy = json_object();
        const char *key;
        json_t *item;
        json_object_foreach(value, key, item)
        {
            json_t *renumbered = copy ? renumber(item, packet, out, count) : NULL;
            if (renumbered == NULL || json_object_set_new(copy, key, renumbered) != 0) {
                json_decref(copy);
                copy = NULL;
                break;
            }
        }
    } else {
        copy = json_incref(value);
    }
    return copy;
}

int sioc__sio_encode_for_server(sioc_server_t *server, const sioc__sio_packet_t *packet,
                                sioc__sio_encoded_t *out)
{
    out->count = 0;
    if (packet->attachment_count + 1 > SIO_MAX_PARTS)
        return SIOC_EINVAL;
    sioc__sio_packet_t adjusted = *packet;
    sioc__sio_attachment_t attachments[SIO_MAX_PARTS];
    json_t *renumbered = NULL;
    if (packet->attachment_count > 0 && server->options.parser == SIOC_PARSER_JSON) {
        size_t count = 0;
        renumbered = renumber(packet->data, packet, attachments, &count);
        if (renumbered == NULL)
            return SIOC_EINVAL;
        adjusted.data = renumbered;
        adjusted.attachments = attachments;
        adjusted.attachment_count = count;
    }
    int rc = encode_packet(server, &adjusted, out);
    json_decref(renumbered);
    return rc;
}

static int encode_packet(sioc_server_t *server, const sioc__sio_packet_t *packet,
                         sioc__sio_encoded_t *out)
{
    /* The binary packet types exist only to announce attachments, as Node's hasBinary(). */
    sioc__sio_packet_t adjusted = *packet;
    int has_attachments = packet->attachment_count > 0;
    if (adjusted.type == SIOC_SIO_EVENT || adjusted.type == SIOC_SIO_BINARY_EVENT)
        adjusted.type = has_attachments ? SIOC_SIO_BINARY_EVENT : SIOC_SIO_EVENT;
    else if (adjusted.type == SIOC_SIO_ACK || adjusted.type == SIOC_SIO_BINARY_ACK)
        adjusted.type = has_attachments ? SIOC_SIO_BINARY_ACK : SIOC_SIO_ACK;
    if (server->options.parser == SIOC_PARSER_MSGPACK)
        return encode_msgpack(&adjusted, out);
    return encode_json(server, &adjusted, out);
}

int sioc__sio_client_send(sioc__sio_client_t *client, const sioc__sio_encoded_t *encoded,
                          int is_volatile)
{
    if (client->closed)
        return SIOC_ECLOSED;
    /* All parts or none: a volatile packet is judged once, before its first part. */
    if (is_volatile && !sioc__eio_socket_writable(client->eio)) {
        client->server->stats.volatile_dropped++;
        return 0;
    }
    for (size_t i = 0; i < encoded->count; i++) {
        int rc = sioc__eio_socket_send_buffer(client->eio, encoded->parts[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- clients ----------------------------------------------------------------------------------
 */

/* A JS array index ("0", "42", at most 4294967294): V8 lists such keys first, ascending. */
static int array_index_of(const char *key, size_t length, unsigned long long *index)
{
    if (length == 0 || length > 10 || (key[0] == '0' && length > 1))
        return 0;
    unsigned long long value = 0;
    for (size_t i = 0; i < length; i++) {
        if (key[i] < '0' || key[i] > '9')
            return 0;
        value = value * 10 + (unsigned long long)(key[i] - '0');
    }
    *index = value;
    return value <= 4294967294ULL;
}

typedef struct index_key_s {
    unsigned long long index;
    void *iter;
} index_key_t;

static int compare_index_keys(const void *a, const void *b)
{
    unsigned long long x = ((const index_key_t *)a)->index, y = ((const index_key_t *)b)->index;
    return x < y ? -1 : x > y;
}

/* object's keys in a JS object's order (array indices first, ascending, then the others as they
 * came), as a new object; object is released. NULL when out of memory. */
static json_t *in_js_key_order(json_t *object)
{
    size_t count = 0, total = json_object_size(object);
    index_key_t *keys = NULL;
    json_t *ordered = NULL;
    for (void *it = json_object_iter(object); it != NULL; it = json_object_iter_next(object, it)) {
        unsigned long long index;
        if (array_index_of(json_object_iter_key(it), json_object_iter_key_len(it), &index)) {
            if (keys == NULL && (keys = malloc(total * sizeof(*keys))) == NULL)
                goto done;
            keys[count++] = (index_key_t){index, it};
        }
    }
    if (count == 0)
        return object;
    qsort(keys, count, sizeof(*keys), compare_index_keys);
    if ((ordered = json_object()) == NULL)
        goto done;
    for (size_t i = 0; i < count; i++) {
        void *it = keys[i].iter;
        if (json_object_setn(ordered, json_object_iter_key(it), json_object_iter_key_len(it),
                             json_object_iter_value(it)) != 0)
            goto fail;
    }
    for (void *it = json_object_iter(object); it != NULL; it = json_object_iter_next(object, it)) {
        unsigned long long index;
        if (!array_index_of(json_object_iter_key(it), json_object_iter_key_len(it), &index) &&
            json_object_setn(ordered, json_object_iter_key(it), json_object_iter_key_len(it),
                             json_object_iter_value(it)) != 0)
            goto fail;
    }
    goto done;
fail:
    json_decref(ordered);
    ordered = NULL;
done:
    free(keys);
    json_decref(object);
    return ordered;
}

json_t *sioc__sio_parse_query(const char *url)
{
    size_t start = strcspn(url, "?#");
    json_t *object = json_object();
    if (object == NULL || url[start] != '?')
        return object;
    const char *cursor = url + start + 1;
    const char *end = cursor + strcspn(cursor, "#");
    /* A name or value decodes to at most 3 bytes per byte (a U+FFFD for each). */
    size_t longest = (size_t)(end - cursor);
    char *key = longest < SIZE_MAX / 3 - 1 ? malloc(3 * longest + 1) : NULL;
    char *value = key != NULL ? malloc(3 * longest + 1) : NULL;
    if (value == NULL)
        goto fail;
    while (cursor < end) {
        const char *amp = memchr(cursor, '&', (size_t)(end - cursor));
        const char *pair_end = amp != NULL ? amp : end;
        const char *equals = memchr(cursor, '=', (size_t)(pair_end - cursor));
        const char *key_end = equals != NULL ? equals : pair_end;
        const char *value_start = equals != NULL ? equals + 1 : pair_end;
        if (pair_end > cursor) { /* "&&" is no pair */
            long key_length =
                sioc__http_form_decode(cursor, (size_t)(key_end - cursor), key, 3 * longest + 1);
            long value_length = sioc__http_form_decode(
                value_start, (size_t)(pair_end - value_start), value, 3 * longest + 1);
            /* A repeated name: the last value, where the name came first (Object.fromEntries). */
            if (key_length < 0 || value_length < 0 ||
                json_object_setn_new(object, key, (size_t)key_length,
                                     json_stringn(value, (size_t)value_length)) != 0)
                goto fail;
        }
        cursor = pair_end + (amp != NULL);
    }
    free(key);
    free(value);
    return in_js_key_order(object);
fail:
    free(key);
    free(value);
    json_decref(object);
    return NULL;
}

static void connect_namespace(sioc__sio_client_t *client, sioc__sio_packet_t *packet);

/* text as WHATWG's URL parser reads it: without the C0 controls and spaces at either end, and
 * without any tab, LF or CR (node 20: "/custom?room=a\tb " gives room "ab"). A new string, or
 * NULL. */
static char *url_input_of(const char *text)
{
    size_t start = 0, end = strlen(text), used = 0;
    while (start < end && (unsigned char)text[start] <= 0x20)
        start++;
    while (end > start && (unsigned char)text[end - 1] <= 0x20)
        end--;
    char *input = malloc(end - start + 1);
    if (input == NULL)
        return NULL;
    for (size_t i = start; i < end; i++) {
        if (text[i] != '\t' && text[i] != '\n' && text[i] != '\r')
            input[used++] = text[i];
    }
    input[used] = '\0';
    return input;
}

/* Node's _parseNamespace for protocol 3: the namespace is the path of the packet's nsp taken as
 * a URL, and a CONNECT's query string ("/admin?token=abc", socket.io-client 2's query option)
 * is its auth, every value a string. Cuts the query off packet->nsp. */
static void parse_v3_namespace(sioc__sio_packet_t *packet)
{
    if (packet->type == SIOC_SIO_CONNECT) {
        char *input = url_input_of(packet->nsp);
        json_decref(packet->data);
        packet->data = input != NULL ? sioc__sio_parse_query(input) : NULL;
        free(input);
    }
    packet->nsp[strcspn(packet->nsp, "?#")] = '\0';
}

/* An EIO3 client is in "/" from the start: Node connects it without a CONNECT packet. */
static void connect_v3_root(sioc__sio_client_t *client)
{
    sioc__sio_packet_t packet = {
        .type = SIOC_SIO_CONNECT, .nsp = strdup("/"), .id = SIOC_SIO_NO_ACK_ID};
    if (packet.nsp == NULL) {
        sioc__sio_client_close(client, "forced close");
        return;
    }
    parse_v3_namespace(&packet);
    connect_namespace(client, &packet);
    sioc__sio_packet_clear(&packet);
}

static void on_connect_timeout(sioc__deadline_list_t *list, sioc__deadline_t *deadline)
{
    sioc__sio_connect_wait_t *wait =
        (sioc__sio_connect_wait_t *)((char *)deadline -
                                     offsetof(sioc__sio_connect_wait_t, deadline));
    sioc__sio_client_close(wait->client, "forced close"); /* frees wait (on_engine_close) */
}

static void end_connect_wait(sioc__sio_client_t *client)
{
    if (client->connect_wait == NULL)
        return;
    sioc__deadline_disarm(&client->connect_wait->deadline);
    free(client->connect_wait);
    client->connect_wait = NULL;
}

/* The client in its session's block, once on_engine_connection made it (else NULL). */
static sioc__sio_client_t *client_of(sioc_eio_socket_t *eio)
{
    sioc__sio_client_t *client = sioc__eio_socket_extra(eio);
    return client != NULL && client->eio != NULL ? client : NULL;
}

static void on_engine_connection(sioc_eio_socket_t *eio, const sioc_request_t *request, void *data)
{
    sioc_server_t *server = data;
    sioc__sio_client_t *client = sioc__eio_socket_extra(eio); /* zeroed */
    if (client == NULL ||
        (client->connect_wait = calloc(1, sizeof(*client->connect_wait))) == NULL ||
        (client->handshake = sioc__sio_handshake_new(request)) == NULL) {
        if (client != NULL) {
            free(client->connect_wait);
            client->connect_wait = NULL;
        }
        sioc_eio_socket_close(eio);
        return;
    }
    client->connect_wait->client = client;
    client->server = server;
    client->eio = eio;
    sioc__sio_decoder_init(&client->decoder, server->options.max_attachments);
    /* A v2 client's CONNECT names "/nsp?query": front ends put their token (a JWT of several
     * hundred bytes) in that query, so the name's bound must leave room for it. */
    if (sioc_eio_socket_protocol(eio) == 3)
        client->decoder.max_nsp_length = V3_MAX_NSP_WITH_QUERY_LENGTH;
    sioc__deadline_arm(&server->connect_timeouts, &client->connect_wait->deadline);
    if (sioc_eio_socket_protocol(eio) == 3)
        connect_v3_root(client);
}

void sioc__sio_client_on_socket_connected(sioc__sio_client_t *client)
{
    end_connect_wait(client);
}

static sioc_socket_t *client_socket(const sioc__sio_client_t *client, const char *nsp)
{
    sioc_socket_t *socket = client->sockets;
    while (socket != NULL && strcmp(socket->nsp->name, nsp) != 0)
        socket = socket->next_in_client;
    return socket;
}

/* Appended: the sockets are visited in the order they connected. */
static void add_client_socket(sioc__sio_client_t *client, sioc_socket_t *socket)
{
    sioc_socket_t **link = &client->sockets;
    while (*link != NULL)
        link = &(*link)->next_in_client;
    socket->next_in_client = NULL;
    *link = socket;
}

void sioc__sio_client_forget_socket(sioc__sio_client_t *client, sioc_socket_t *socket)
{
    for (sioc_socket_t **link = &client->sockets; *link != NULL; link = &(*link)->next_in_client) {
        if (*link == socket) {
            *link = socket->next_in_client;
            socket->next_in_client = NULL;
            return;
        }
    }
}

sioc_socket_t *sioc__sio_client_pop_socket(sioc__sio_client_t *client)
{
    sioc_socket_t *socket = client->sockets;
    if (socket != NULL) {
        client->sockets = socket->next_in_client;
        socket->next_in_client = NULL;
    }
    return socket;
}

static void send_connect_error(sioc__sio_client_t *client, const char *nsp, const char *message)
{
    sioc__sio_packet_t packet = {
        .type = SIOC_SIO_CONNECT_ERROR, .nsp = (char *)nsp, .id = SIOC_SIO_NO_ACK_ID};
    packet.data = json_pack("{s:s}", "message", message);
    sioc__sio_encoded_t encoded;
    if (sioc__sio_encode_for_server(client->server, &packet, &encoded) == 0) {
        sioc__sio_client_send(client, &encoded, 0);
        sioc__sio_encoded_release(&encoded);
    }
    json_decref(packet.data);
}

/* The second half of a CONNECT, once any restore is known: restored or a fresh socket. */
static void finish_connect(sioc__sio_client_t *client, sioc_namespace_t *nsp, json_t *auth,
                           sioc_socket_t *socket)
{
    sioc_server_t *server = client->server;
    sioc_socket_t *existing = client_socket(client, nsp->name);
    if (client->closed || existing != NULL) {
        /* A second CONNECT to the namespace came while the store answered. */
        if (socket != NULL)
            sioc__sio_socket_unref(socket);
        if (existing != NULL)
            sioc__sio_client_close(client, "forced close");
        return;
    }
    if (socket == NULL)
        socket = sioc__sio_socket_new(client, nsp, auth, NULL, NULL);
    if (socket == NULL) {
        sioc__sio_client_close(client, "forced close");
        return;
    }
    add_client_socket(client, socket);
    if (socket->recovered && server->options.recovery_skip_middlewares)
        sioc__sio_socket_connected(socket);
    else
        sioc__sio_namespace_run_middlewares(socket, auth);
}

static void connect_namespace(sioc__sio_client_t *client, sioc__sio_packet_t *packet)
{
    sioc_server_t *server = client->server;
    sioc_socket_t *existing = client_socket(client, packet->nsp);
    if (existing != NULL) {
        /* A second CONNECT to a namespace in use: Node closes the connection. */
        sioc__sio_client_close(client, "forced close");
        return;
    }
    json_t *auth = packet->data != NULL ? json_incref(packet->data) : json_object();
    sioc_namespace_t *nsp = sioc__sio_namespace_lookup(server, packet->nsp, auth);
    if (nsp == NULL) {
        /* The connection stays: other namespaces may be in use on it. */
        server->stats.connects_refused++;
        send_connect_error(client, packet->nsp, "Invalid namespace");
        json_decref(auth);
        return;
    }
    if (server->recovery == NULL ||
        !sioc__sio_recovery_restore(server->recovery, client, nsp, auth, finish_connect))
        finish_connect(client, nsp, auth, NULL);
    json_decref(auth);
}

static void on_packet(sioc__sio_client_t *client, sioc__sio_packet_t *packet)
{
    if (sioc_eio_socket_protocol(client->eio) == 3)
        parse_v3_namespace(packet);
    if (packet->type == SIOC_SIO_CONNECT) {
        connect_namespace(client, packet);
        return;
    }
    sioc_socket_t *socket = client_socket(client, packet->nsp);
    if (socket == NULL || socket->state != SIO_SOCKET_CONNECTED) {
        /* A packet for a namespace the client has not joined: Node closes ("invalid state"). */
        sioc__sio_client_close(client, "forced close");
        return;
    }
    sioc__sio_namespace_dispatch(socket, packet);
}

static int decode(sioc__sio_client_t *client, const uint8_t *bytes, size_t length, int binary,
                  sioc__sio_packet_t *packet, const char **error)
{
    if (client->server->options.parser == SIOC_PARSER_MSGPACK) {
        if (!binary) {
            *error = "msgpack parser: text message";
            return SIOC_SIO_DECODE_ERROR;
        }
        return sioc__sio_msgpack_decode(bytes, length, client->server->options.max_attachments,
                                        packet, error) == 0
                   ? SIOC_SIO_DECODE_COMPLETE
                   : SIOC_SIO_DECODE_ERROR;
    }
    if (binary)
        return sioc__sio_decoder_add_binary(&client->decoder, bytes, length, packet, error);
    client->decoder.keep_event_bytes = client->server->keep_event_bytes;
    /* Engine.IO hands the message without its '4'; text starts at the Socket.IO type. */
    return sioc__sio_decoder_add_text(&client->decoder, (const char *)bytes, length, packet, error);
}

/* Node's Client.onerror: every socket of the client hears a decoding error before the whole
 * connection closes. A handler may disconnect its socket or another one, or close the client:
 * the sockets are taken (and held) first, so the list changing under the handlers does not
 * matter. A client is in few namespaces; past the array's size the rest hear nothing. */
static void tell_sockets_error(sioc__sio_client_t *client, const char *error)
{
    sioc_socket_t *sockets[16];
    size_t count = 0;
    for (sioc_socket_t *socket = client->sockets; socket != NULL && count < 16;
         socket = socket->next_in_client) {
        sioc__sio_socket_ref(socket);
        sockets[count++] = socket;
    }
    for (size_t i = 0; i < count; i++) {
        if (sockets[i]->state == SIO_SOCKET_CONNECTED)
            sioc__sio_socket_error(sockets[i], error);
        sioc__sio_socket_unref(sockets[i]);
    }
}

static void on_engine_message(sioc_eio_socket_t *eio, const uint8_t *bytes, size_t length,
                              int binary, void *data)
{
    sioc__sio_client_t *client = client_of(eio);
    if (client == NULL || client->closed)
        return;
    sioc__sio_packet_t packet;
    memset(&packet, 0, sizeof(packet));
    const char *error = NULL;
    int rc = decode(client, bytes, length, binary, &packet, &error);
    if (rc == SIOC_SIO_DECODE_ERROR) {
        tell_sockets_error(client, error);
        sioc__sio_client_close(client, "forced close");
        return;
    }
    if (rc == SIOC_SIO_DECODE_COMPLETE) {
        on_packet(client, &packet);
        sioc__sio_packet_clear(&packet);
    }
}

/* Every socket of the client leaves with reason; the client itself is freed by the Engine.IO
 * close callback. */
static void close_sockets(sioc__sio_client_t *client, const char *reason)
{
    sioc_socket_t *socket;
    while ((socket = sioc__sio_client_pop_socket(client)) != NULL)
        sioc__sio_socket_close(socket, reason, 0);
}

void sioc__sio_client_close(sioc__sio_client_t *client, const char *reason)
{
    if (client->closed)
        return;
    close_sockets(client, reason);
    client->closed = 1;
    sioc__eio_socket_close_with_reason(client->eio, reason);
}

static void on_engine_upgrade(sioc_eio_socket_t *eio, void *data)
{
    sioc__sio_client_t *client = client_of(eio);
    sioc_server_t *server = data;
    if (client == NULL || server->observer.on_upgrade == NULL)
        return;
    sioc_socket_t *socket, *next;
    for (socket = client->sockets; socket != NULL; socket = next) {
        next = socket->next_in_client;
        if (socket->state == SIO_SOCKET_CONNECTED)
            server->observer.on_upgrade(socket, server->observer.data);
    }
}

static void on_engine_close(sioc_eio_socket_t *eio, const char *reason, void *data)
{
    sioc__sio_client_t *client = client_of(eio);
    if (client == NULL)
        return;
    close_sockets(client, reason);
    client->closed = 1;
    if (client->server->recovery != NULL)
        sioc__sio_recovery_forget_client(client->server->recovery, client);
    end_connect_wait(client);
    sioc__sio_decoder_free(&client->decoder);
    sioc__sio_handshake_unref(client->handshake);
    /* The client's bytes go with the session's block, at the end of this loop iteration. */
}

/* ---- server -----------------------------------------------------------------------------------
 */

int sioc_server_new(uv_loop_t *loop, const sioc_server_options_t *options, sioc_server_t **out)
{
    sioc_server_t *server = calloc(1, sizeof(*server));
    if (server == NULL)
        return SIOC_ENOMEM;
    server->loop = loop;
    server->options = *options;
    sioc_eio_callbacks_t callbacks = {on_engine_connection, on_engine_message, on_engine_close,
                                      on_engine_upgrade};
    int rc = sioc_eio_server_new(loop, &options->engine, &callbacks, server, &server->engine);
    if (rc != 0) {
        free(server);
        return rc;
    }
    sioc__eio_server_set_session_extra(server->engine, sizeof(sioc__sio_client_t));
    /* Strings in the options were copied by the engine; keep its copies. */
    server->options.engine.path = NULL;
    server->options.engine.cors_origins = NULL;
    sioc__deadline_list_init(loop, &server->connect_timeouts, options->connect_timeout_ms,
                             on_connect_timeout);
    uv_unref((uv_handle_t *)&server->connect_timeouts.timer);
    if (options->recovery)
        server->recovery = sioc__sio_recovery_new(server);
    if (sioc_server_of(server, "/") == NULL || (options->recovery && server->recovery == NULL)) {
        sioc_server_close(server, NULL, NULL);
        return SIOC_ENOMEM;
    }
    *out = server;
    return 0;
}

int sioc_server_listen(sioc_server_t *server, const char *host, int port)
{
    return sioc_eio_server_listen(server->engine, host, port);
}

sioc_recovery_store_t *sioc_server_recovery_store(const sioc_server_t *server)
{
    return sioc__sio_recovery_store(server->recovery);
}

uv_loop_t *sioc_server_loop(const sioc_server_t *server)
{
    return server->loop;
}

int sioc_server_port(sioc_server_t *server)
{
    return sioc_eio_server_port(server->engine);
}

int sioc_server_set_cors(sioc_server_t *server, const char *const *origins, size_t count,
                         int credentials)
{
    return sioc_eio_server_set_cors(server->engine, origins, count, credentials);
}

int sioc_server_set_limits(sioc_server_t *server, const sioc_server_options_t *options)
{
    int rc = sioc_eio_server_set_limits(server->engine, &options->engine);
    if (rc != 0)
        return rc;
    server->options.connect_timeout_ms = options->connect_timeout_ms;
    sioc__deadline_list_set_delay(&server->connect_timeouts, options->connect_timeout_ms);
    return 0;
}

void sioc_server_set_tls(sioc_server_t *server, struct ssl_ctx_st *ctx)
{
    sioc_eio_server_set_tls(server->engine, ctx);
}

void sioc_server_stats(const sioc_server_t *server, sioc_server_stats_t *out)
{
    *out = server->stats;
    sioc_eio_server_stats(server->engine, &out->engine);
    out->recovery_pending = sioc__sio_recovery_pending(server->recovery);
    out->namespaces = out->sockets = out->rooms = 0;
    for (const sioc_namespace_t *nsp = server->namespaces; nsp != NULL; nsp = nsp->hh.next) {
        out->namespaces++;
        out->sockets += nsp->socket_count;
        out->rooms += sioc__memory_adapter_room_count(nsp->index);
    }
}

void sioc_server_for_each_namespace(sioc_server_t *server,
                                    void (*visit)(sioc_namespace_t *nsp, void *data), void *data)
{
    sioc_namespace_t *nsp, *next;
    HASH_ITER(hh, server->namespaces, nsp, next)
    visit(nsp, data);
}

void sioc_server_observe(sioc_server_t *server, const sioc_server_observer_t *observer)
{
    if (observer != NULL)
        server->observer = *observer;
    else
        memset(&server->observer, 0, sizeof(server->observer));
}

static void free_server(sioc_server_t *server)
{
    void (*closed_cb)(void *) = server->closed_cb;
    void *closed_data = server->closed_data;
    sioc_namespace_t *nsp, *next;
    HASH_ITER(hh, server->namespaces, nsp, next)
    {
        HASH_DEL(server->namespaces, nsp);
        sioc__sio_namespace_free(nsp);
    }
    while (server->dynamic_parents != NULL) {
        nsp = server->dynamic_parents;
        server->dynamic_parents = nsp->next_dynamic;
        sioc__sio_namespace_free(nsp);
    }
    sioc__sio_recovery_free(server->recovery);
    sioc__sio_text_free(&server->encode_scratch);
    free(server);
    if (closed_cb != NULL)
        closed_cb(closed_data);
}

static void on_timer_closed(uv_handle_t *handle)
{
    free_server(((sioc__deadline_list_t *)handle)->data);
}

static void on_engine_closed(void *data)
{
    sioc_server_t *server = data;
    server->connect_timeouts.data = server;
    sioc__sio_recovery_stop(server->recovery);
    sioc__deadline_list_close(&server->connect_timeouts, on_timer_closed);
}

void sioc_server_close(sioc_server_t *server, void (*closed_cb)(void *data), void *data)
{
    if (server->closing)
        return;
    server->closing = 1;
    server->closed_cb = closed_cb;
    server->closed_data = data;
    sioc_eio_server_close(server->engine, on_engine_closed, server);
}
