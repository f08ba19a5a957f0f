/* Redis adapter messages: the bytes @socket.io/redis-adapter 8.3 and @socket.io/redis-emitter 5.1
 * write (hex marked "Node" produced by notepack.io's encode under Node 20 from the objects the
 * packages build), what the decoders take from them, and every refusal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "adapter/redis_codec.h"

/* Node: ["abc123", {type: 2, data: ["ev", "x", Buffer [1, 2]], nsp: "/"},
 *        {rooms: ["r"], except: [], flags: {}}] */
static const char BROADCAST[] = "93a661626331323383a47479706502a46461746193a26576a178c4020102a36e73"
                                "70a12f83a5726f6f6d7391a172a665786365707490a5666c61677380";
/* Node: {uid, requestId: "q1", type: 7, packet: {type: 2, data: ["ev", 7], nsp: "/chat"},
 *        opts: {rooms: [], except: ["x"], flags: {timeout: 1000}}} */
static const char BROADCAST_REQUEST[] =
    "85a3756964a6616263313233a9726571756573744964a27131a47479706507a67061636b657483a47479706502"
    "a46461746192a2657607a36e7370a52f63686174a46f70747383a5726f6f6d7390a665786365707491a178a566"
    "6c61677381a774696d656f7574cd03e8";
/* Node: {type: 9, requestId: "q1", packet: "answer"} */
static const char BROADCAST_ACK[] = "83a47479706509a9726571756573744964a27131a67061636b6574a6616e"
                                    "73776572";
/* Node (emitter): ["emitter", {type: 2, data: ["e", 1], nsp: "/"},
 *                  {rooms: ["a", "b"], flags: {volatile: true}, except: ["c"]}] */
static const char EMITTER[] = "93a7656d697474657283a47479706502a46461746192a16501a36e7370a12f83a5"
                              "726f6f6d7392a161a162a5666c61677381a8766f6c6174696c65c3a66578636570"
                              "7491a163";

static uint8_t *from_hex(const char *hex, size_t *length)
{
    uint8_t *bytes = malloc(strlen(hex) / 2 + 1);
    assert_non_null(bytes);
    size_t count = 0;
    char pair[3] = {0, 0, 0};
    size_t filled = 0;
    for (size_t i = 0; hex[i] != '\0'; i++) {
        if (hex[i] == ' ')
            continue;
        pair[filled++] = hex[i];
        if (filled == 2) {
            bytes[count++] = (uint8_t)strtoul(pair, NULL, 16);
            filled = 0;
        }
    }
    *length = count;
    return bytes;
}

static void assert_bytes(const uint8_t *bytes, size_t length, const char *hex)
{
    size_t expected_length;
    uint8_t *expected = from_hex(hex, &expected_length);
    assert_non_null(bytes);
    assert_int_equal(length, expected_length);
    assert_memory_equal(bytes, expected, length);
    free(expected);
}

static void test_encode_broadcast_as_node(void **state)
{
    const char *rooms[] = {"r"};
    sioc_adapter_opts_t opts = {rooms, 1, NULL, 0, 0, 0};
    json_t *data = json_pack("[s,s,{s:b,s:i}]", "ev", "x", "_placeholder", 1, "num", 0);
    const uint8_t bin[] = {1, 2};
    sioc_binary_t attachments[] = {{bin, 2}};
    size_t length;
    uint8_t *bytes =
        sioc__redis_encode_broadcast("abc123", "/", data, attachments, 1, &opts, &length);
    assert_bytes(bytes, length, BROADCAST);
    free(bytes);
    json_decref(data);
}

static void test_encode_broadcast_request_as_node(void **state)
{
    const char *except[] = {"x"};
    sioc_adapter_opts_t opts = {NULL, 0, except, 1, 0, 1000};
    json_t *data = json_pack("[s,i]", "ev", 7);
    size_t length;
    uint8_t *bytes = sioc__redis_encode_broadcast_request("abc123", "q1", "/chat", data, NULL, 0,
                                                          &opts, &length);
    assert_bytes(bytes, length, BROADCAST_REQUEST);
    free(bytes);
    json_decref(data);
}

static void test_encode_broadcast_ack_as_node(void **state)
{
    json_t *answer = json_string("answer");
    size_t length;
    uint8_t *bytes = sioc__redis_encode_broadcast_ack("q1", answer, NULL, 0, &length);
    assert_bytes(bytes, length, BROADCAST_ACK);
    free(bytes);
    json_decref(answer);
}

static void test_decode_node_broadcast(void **state)
{
    size_t length;
    uint8_t *bytes = from_hex(BROADCAST, &length);
    sioc__redis_message_t message;
    const char *error = NULL;
    assert_int_equal(sioc__redis_decode_broadcast(bytes, length, &message, &error), 0);
    assert_string_equal(message.uid, "abc123");
    assert_string_equal(message.nsp, "/");
    assert_int_equal(message.opts.room_count, 1);
    assert_string_equal(message.opts.rooms[0], "r");
    assert_int_equal(message.opts.except_count, 0);
    assert_int_equal(message.attachment_count, 1);
    assert_int_equal(message.attachments[0].length, 2);
    json_t *expected = json_pack("[s,s,{s:b,s:i}]", "ev", "x", "_placeholder", 1, "num", 0);
    assert_true(json_equal(message.data, expected));
    json_decref(expected);
    sioc__redis_message_clear(&message);
    free(bytes);
}

static void test_decode_emitter_broadcast(void **state)
{
    size_t length;
    uint8_t *bytes = from_hex(EMITTER, &length);
    sioc__redis_message_t message;
    assert_int_equal(sioc__redis_decode_broadcast(bytes, length, &message, NULL), 0);
    assert_string_equal(message.uid, "emitter");
    assert_int_equal(message.opts.room_count, 2);
    assert_string_equal(message.opts.rooms[1], "b");
    assert_int_equal(message.opts.except_count, 1);
    assert_string_equal(message.opts.except[0], "c");
    assert_true(message.opts.flags & SIOC_BROADCAST_VOLATILE);
    sioc__redis_message_clear(&message);
    free(bytes);
}

static void test_decode_broadcast_request(void **state)
{
    size_t length;
    uint8_t *bytes = from_hex(BROADCAST_REQUEST, &length);
    sioc__redis_message_t message;
    assert_int_equal(sioc__redis_decode_request(bytes, length, &message, NULL), 0);
    assert_int_equal(message.type, SIOC__REDIS_BROADCAST);
    assert_string_equal(message.request_id, "q1");
    assert_string_equal(message.nsp, "/chat");
    assert_int_equal(message.opts.timeout_ms, 1000);
    sioc__redis_message_clear(&message);
    free(bytes);
}

static void test_decode_json_requests(void **state)
{
    static const char *const good[] = {
        "{\"uid\":\"u\",\"requestId\":\"q\",\"type\":5,\"opts\":{\"rooms\":[\"r\"],\"except\":[]}}",
        "{\"type\":2,\"opts\":{\"rooms\":[],\"except\":[]},\"rooms\":[\"x\"]}",
        "{\"sid\":\"abc\",\"room\":\"x\",\"requestId\":\"q\",\"type\":3}",
        "{\"type\":4,\"opts\":{\"rooms\":[\"r\"]},\"close\":true}",
        "{\"uid\":\"emitter\",\"type\":6,\"data\":[\"hello\",1]}",
        "{\"uid\":\"u\",\"requestId\":\"q\",\"type\":1}",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        sioc__redis_message_t message;
        const char *error = NULL;
        int rc =
            sioc__redis_decode_request((const uint8_t *)good[i], strlen(good[i]), &message, &error);
        if (rc != 0)
            fail_msg("%s: %s", good[i], error);
        sioc__redis_message_clear(&message);
    }
    sioc__redis_message_t message;
    const char *text = "{\"type\":4,\"opts\":{\"rooms\":[\"r\"]},\"close\":true}";
    assert_int_equal(
        sioc__redis_decode_request((const uint8_t *)text, strlen(text), &message, NULL), 0);
    assert_true(message.close);
    assert_int_equal(message.opts.room_count, 1);
    sioc__redis_message_clear(&message);
}

static void expect_refused(int (*decode)(const uint8_t *, size_t, sioc__redis_message_t *,
                                         const char **),
                           const uint8_t *bytes, size_t length, const char *reason)
{
    sioc__redis_message_t message;
    memset(&message, 0x5a, sizeof(message));
    const char *error = NULL;
    assert_int_equal(decode(bytes, length, &message, &error), -1);
    assert_non_null(error);
    if (reason != NULL && strstr(error, reason) == NULL)
        fail_msg("refused with \"%s\", expected \"%s\"", error, reason);
    sioc__redis_message_t zero;
    memset(&zero, 0, sizeof(zero));
    assert_memory_equal(&message, &zero, sizeof(zero));
}

static void refuse_hex(const char *hex, const char *reason)
{
    size_t length;
    uint8_t *bytes = from_hex(hex, &length);
    expect_refused(sioc__redis_decode_broadcast, bytes, length, reason);
    free(bytes);
}

static void test_broadcast_refusals(void **state)
{
    expect_refused(sioc__redis_decode_broadcast, (const uint8_t *)"", 0, "empty");
    refuse_hex("c1", NULL);                       /* never-used byte */
    refuse_hex("ddffffffff", "truncated");        /* 4 G elements announced */
    refuse_hex("93010203", "uid");                /* wrong types */
    refuse_hex("92a17880", "array");              /* two elements */
    refuse_hex("93a17881a4747970650180", "type"); /* type 1 (DISCONNECT) */
    refuse_hex("93a1780180", "packet");           /* packet not an object */
    /* data ["connect"]: a reserved name would make the client fire its own connect */
    refuse_hex("93a17882a474797065 02a46461746191a7636f6e6e656374 80", NULL);
    refuse_hex("93a17882a47479706502a46461746190 80", "data"); /* data [] */
    refuse_hex("93a17882a47479706502a46461746191a165 81a5726f6f6d739101", "rooms");
    refuse_hex("93a17882a47479706502a46461746191a165 c0", "opts");
    refuse_hex("93a17883a47479706502a46461746191a165a36e737001 80", "nsp");
    /* an explicit placeholder object (no bin behind it) */
    refuse_hex("93a17882a47479706502a46461746192a16581ac5f706c616365686f6c646572c3 80", NULL);
    /* NUL inside the uid, a room, the namespace: the C strings would say something else */
    refuse_hex("93a300787883a47479706502a46461746191a165a36e7370a12f 80", "uid");
    refuse_hex("93a17883a47479706502a46461746191a165a36e7370a22f00 80", "nsp");
    refuse_hex("93a17882a47479706502a46461746191a165 81a5726f6f6d7391a3610062", "rooms");
    /* trailing byte */
    size_t length;
    uint8_t *bytes = from_hex(BROADCAST, &length);
    uint8_t *longer = malloc(length + 1);
    memcpy(longer, bytes, length);
    longer[length] = 0xc0;
    expect_refused(sioc__redis_decode_broadcast, longer, length + 1, "trailing");
    /* every truncation */
    for (size_t cut = 0; cut < length; cut++)
        expect_refused(sioc__redis_decode_broadcast, bytes, cut, NULL);
    free(longer);
    free(bytes);
}

static void test_too_many_rooms(void **state)
{
    /* [uid, packet, {rooms: [1025 x "a"]}] */
    size_t header = 0;
    uint8_t *prefix = from_hex("93a17882a47479706502a46461746191a16581a5726f6f6d73dc0401", &header);
    size_t length = header + 1025 * 2;
    uint8_t *bytes = malloc(length);
    memcpy(bytes, prefix, header);
    for (size_t i = 0; i < 1025; i++) {
        bytes[header + 2 * i] = 0xa1;
        bytes[header + 2 * i + 1] = 'a';
    }
    expect_refused(sioc__redis_decode_broadcast, bytes, length, "rooms");
    /* 1024 is the limit, and fine */
    bytes[header - 1] = 0x00;
    sioc__redis_message_t message;
    assert_int_equal(sioc__redis_decode_broadcast(bytes, length - 2, &message, NULL), 0);
    assert_int_equal(message.opts.room_count, 1024);
    sioc__redis_message_clear(&message);
    free(bytes);
    free(prefix);
}

static void test_request_refusals(void **state)
{
    static const struct {
        const char *text;
        const char *reason;
    } bad[] = {
        {"{\"type\":99}", "type"},
        {"{\"type\":\"5\"}", "type"},
        {"{}", "type"},
        {"[1]", NULL}, /* not JSON by its first byte: msgpack 0x5b, then trailing bytes */
        {"{broken", "JSON"},
        {"{\"type\":5,\"uid\":\"x\",\"requestId\":\"q\"}", "opts"},
        {"{\"type\":2,\"opts\":{\"rooms\":[1]},\"rooms\":[\"z\"]}", "rooms"},
        {"{\"type\":2,\"opts\":{\"rooms\":[]},\"rooms\":\"z\"}", "rooms"},
        {"{\"type\":3}", "field"},
        {"{\"type\":6,\"data\":[]}", "data"},
        {"{\"type\":6,\"data\":[1]}", "data"},
        {"{\"type\":1,\"requestId\":5}", "requestId"},
        {"{\"type\":1,\"uid\":[]}", "uid"},
        {"{\"type\":1,\"type\":2}", "JSON"}, /* duplicate key */
        {"{\"type\":7,\"requestId\":\"q\"}", "packet"},
        {"{\"type\":7,\"packet\":{\"type\":2,\"data\":[\"e\"]},\"opts\":{}}", "requestId"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_refused(sioc__redis_decode_request, (const uint8_t *)bad[i].text,
                       strlen(bad[i].text), bad[i].reason);
    expect_refused(sioc__redis_decode_request, (const uint8_t *)"", 0, "empty");
    const uint8_t msgpack_array[] = {0x91, 0x01};
    expect_refused(sioc__redis_decode_request, msgpack_array, sizeof(msgpack_array), "object");
}

static void test_responses(void **state)
{
    const char *fetch = "{\"requestId\":\"q\",\"sockets\":[{\"id\":\"a\"}]}";
    sioc__redis_message_t message;
    assert_int_equal(
        sioc__redis_decode_response((const uint8_t *)fetch, strlen(fetch), &message, NULL), 0);
    assert_int_equal(message.type, -1);
    assert_int_equal(json_array_size(message.sockets), 1);
    sioc__redis_message_clear(&message);
    const char *count = "{\"type\":8,\"requestId\":\"q\",\"clientCount\":3}";
    assert_int_equal(
        sioc__redis_decode_response((const uint8_t *)count, strlen(count), &message, NULL), 0);
    assert_int_equal(message.client_count, 3);
    sioc__redis_message_clear(&message);
    /* allRooms answers (RedisAdapter.onrequest: {requestId, rooms}); "rooms" not an array is
     * ignored as Node ignores it, the answer still counted. */
    const char *rooms = "{\"requestId\":\"q\",\"rooms\":[\"r\",\"abc\"]}";
    assert_int_equal(
        sioc__redis_decode_response((const uint8_t *)rooms, strlen(rooms), &message, NULL), 0);
    assert_int_equal(json_array_size(message.room_names), 2);
    assert_string_equal(json_string_value(json_array_get(message.room_names, 1)), "abc");
    sioc__redis_message_clear(&message);
    const char *not_rooms = "{\"requestId\":\"q\",\"rooms\":{\"r\":1}}";
    assert_int_equal(
        sioc__redis_decode_response((const uint8_t *)not_rooms, strlen(not_rooms), &message, NULL),
        0);
    assert_null(message.room_names);
    sioc__redis_message_clear(&message);
    size_t length;
    uint8_t *ack = from_hex(BROADCAST_ACK, &length);
    assert_int_equal(sioc__redis_decode_response(ack, length, &message, NULL), 0);
    assert_int_equal(message.type, SIOC__REDIS_BROADCAST_ACK);
    assert_string_equal(json_string_value(message.payload), "answer");
    sioc__redis_message_clear(&message);
    free(ack);
    static const char *const bad[] = {
        "{\"sockets\":[]}",
        "{\"requestId\":5}",
        "{\"requestId\":\"q\",\"sockets\":{}}",
        "{\"type\":8,\"requestId\":\"q\",\"clientCount\":-1}",
        "{\"type\":8,\"requestId\":\"q\"}",
        "{\"type\":\"8\",\"requestId\":\"q\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_refused(sioc__redis_decode_response, (const uint8_t *)bad[i], strlen(bad[i]), NULL);
}

/* Node (ClusterAdapter.encode with a binary argument, notepack.io 3.0.1):
 * {type: 3, data: {packet: {type: 2, data: ["e", Buffer [1]]}, opts: {rooms: [], except: [],
 *  flags: {}}}, uid: "abc", nsp: "/"} */
static const char SHARDED_BINARY[] =
    "84a47479706503a46461746182a67061636b657482a47479706502a46461746192a165c40101a46f70747383a572"
    "6f6f6d7390a665786365707490a5666c61677380a3756964a3616263a36e7370a12f";

static void test_sharded_messages(void **state)
{
    size_t length;
    uint8_t *bytes = from_hex(SHARDED_BINARY, &length);
    sioc__redis_message_t message;
    const char *error = NULL;
    assert_int_equal(sioc__redis_decode_sharded(bytes, length, &message, &error), 0);
    assert_int_equal(message.type, SIOC__SHARDED_BROADCAST);
    assert_string_equal(message.uid, "abc");
    assert_string_equal(message.nsp, "/");
    assert_null(message.request_id);
    assert_int_equal(message.attachment_count, 1);
    sioc__redis_message_clear(&message);
    free(bytes);

    const char *fetch = "{\"type\":7,\"data\":{\"opts\":{\"rooms\":[\"r\"],\"except\":[]},"
                        "\"requestId\":\"q\"},\"uid\":\"u\",\"nsp\":\"/chat\"}";
    assert_int_equal(
        sioc__redis_decode_sharded((const uint8_t *)fetch, strlen(fetch), &message, &error), 0);
    assert_string_equal(message.request_id, "q");
    assert_string_equal(message.nsp, "/chat");
    assert_int_equal(message.opts.room_count, 1);
    sioc__redis_message_clear(&message);

    /* the encoder: JSON without binaries, in ClusterAdapter's key order */
    json_t *data = json_pack("{s:s,s:i}", "requestId", "q", "clientCount", 2);
    uint8_t *encoded = sioc__redis_encode_sharded("u", "/", 11, data, NULL, 0, &length);
    const char *expected = "{\"type\":11,\"data\":{\"requestId\":\"q\",\"clientCount\":2},\"uid\":"
                           "\"u\",\"nsp\":\"/\"}";
    assert_int_equal(length, strlen(expected));
    assert_memory_equal(encoded, expected, length);
    free(encoded);
    json_decref(data);
    /* with a binary: msgpack, decoded back to the same */
    const uint8_t bin[] = {1};
    sioc_binary_t attachments[] = {{bin, 1}};
    data = json_pack("{s:{s:i,s:[s,{s:b,s:i}]},s:{s:[],s:[],s:{}}}", "packet", "type", 2, "data",
                     "e", "_placeholder", 1, "num", 0, "opts", "rooms", "except", "flags");
    encoded = sioc__redis_encode_sharded("abc", "/", 3, data, attachments, 1, &length);
    assert_int_equal(sioc__redis_decode_sharded(encoded, length, &message, &error), 0);
    assert_int_equal(message.attachment_count, 1);
    assert_int_equal(message.attachments[0].data[0], 1);
    sioc__redis_message_clear(&message);
    free(encoded);
    json_decref(data);

    static const struct {
        const char *text;
        const char *reason;
    } bad[] = {
        {"{\"type\":3,\"nsp\":\"/\"}", "uid"},
        {"{\"type\":3,\"uid\":\"u\"}", "nsp"},
        {"{\"type\":0,\"uid\":\"u\",\"nsp\":\"/\"}", "type"},
        {"{\"type\":14,\"uid\":\"u\",\"nsp\":\"/\"}", "type"},
        {"{\"type\":3,\"uid\":\"u\",\"nsp\":\"/\",\"data\":[]}", "field"},
        {"{\"type\":3,\"uid\":\"u\",\"nsp\":\"/\",\"data\":{\"opts\":{}}}", "packet"},
        {"{\"type\":7,\"uid\":\"u\",\"nsp\":\"/\",\"data\":{\"opts\":{}}}", "requestId"},
        {"{\"type\":4,\"uid\":\"u\",\"nsp\":\"/\",\"data\":{\"opts\":{}}}", "rooms"},
        {"{\"type\":8,\"uid\":\"u\",\"nsp\":\"/\",\"data\":{\"requestId\":\"q\"}}", "field"},
        {"{\"type\":9,\"uid\":\"u\",\"nsp\":\"/\",\"data\":{\"packet\":[]}}", "data"},
        {"{\"type\":11,\"uid\":\"u\",\"nsp\":\"/"
         "\",\"data\":{\"requestId\":\"q\",\"clientCount\":-1}}",
         "field"},
        {"{\"type\":12,\"uid\":\"u\",\"nsp\":\"/\",\"data\":{\"requestId\":1}}", "requestId"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_refused(sioc__redis_decode_sharded, (const uint8_t *)bad[i].text,
                       strlen(bad[i].text), bad[i].reason);
    bytes = from_hex(SHARDED_BINARY, &length);
    for (size_t cut = 0; cut < length; cut++)
        expect_refused(sioc__redis_decode_sharded, bytes, cut, NULL);
    free(bytes);
}

/* ---- streams mode ---------------------------------------------------------------------------- */

/* Node (@msgpack/msgpack, as redis-streams-adapter 0.3.1 persistSession writes it):
 * {sid: "A"*20, pid: "B"*20, rooms: ["A"*20, "news"], data: {n: 1}} */
static const char NODE_SESSION[] =
    "hKNzaWS0QUFBQUFBQUFBQUFBQUFBQUFBQUGjcGlktEJCQkJCQkJCQkJCQkJCQkJCQkJCpXJvb21zkrRBQUFBQUFBQUFBQU"
    "FBQUFBQUFBQaRuZXdzpGRhdGGBoW4B";
/* Node: an entry's data with a Buffer (base64 msgpack) */
static const char NODE_BINARY_DATA[] =
    "gqZwYWNrZXSDpHR5cGUCpGRhdGGSomV2xAIBAqNuc3ChL6RvcHRzg6Vyb29tc5"
    "GhcqZleGNlcHSQpWZsYWdzgA==";
static const char NODE_JSON_DATA[] =
    "{\"packet\":{\"type\":2,\"data\":[\"ev\",1],\"nsp\":\"/\"},\"opts\":{\"rooms\":[\"r\"],"
    "\"except\":[\"x\"],\"flags\":{}}}";

static void test_session_from_node(void **state)
{
    (void)state;
    sioc__redis_session_t session;
    const char *error = NULL;
    assert_int_equal(
        sioc__redis_decode_session(NODE_SESSION, strlen(NODE_SESSION), &session, &error), 0);
    assert_string_equal(session.sid, "AAAAAAAAAAAAAAAAAAAA");
    assert_string_equal(session.pid, "BBBBBBBBBBBBBBBBBBBB");
    assert_null(session.nsp);
    assert_int_equal(json_array_size(session.rooms), 2);
    assert_string_equal(json_string_value(json_array_get(session.rooms, 1)), "news");
    assert_int_equal(json_integer_value(json_object_get(session.data, "n")), 1);
    sioc__redis_session_clear(&session);
}

static void test_session_round_trip(void **state)
{
    (void)state;
    json_t *rooms = json_pack("[s,s]", "AAAAAAAAAAAAAAAAAAAA", "r");
    json_t *data = json_pack("{s:[i,s]}", "k", 1, "v");
    sioc_recovery_session_t in = {
        "BBBBBBBBBBBBBBBBBBBB", "AAAAAAAAAAAAAAAAAAAA", "/chat", rooms, data, 1000, 1};
    char *text = sioc__redis_encode_session(&in);
    assert_non_null(text);
    sioc__redis_session_t out;
    const char *error = NULL;
    assert_int_equal(sioc__redis_decode_session(text, strlen(text), &out, &error), 0);
    assert_string_equal(out.pid, in.pid);
    assert_string_equal(out.sid, in.sid);
    assert_string_equal(out.nsp, "/chat");
    assert_true(json_equal(out.rooms, rooms));
    assert_true(json_equal(out.data, data));
    sioc__redis_session_clear(&out);
    free(text);
    json_decref(rooms);
    json_decref(data);
}

static void test_session_refusals(void **state)
{
    (void)state;
    /* not base64; base64 of a never-used msgpack byte; a JSON text; {sid: 1}; rooms not strings;
     * a session holding binary; truncated */
    const char *bad[] = {"!!!",
                         "wQ==",
                         "eyJzaWQiOjF9",
                         "gaNzaWQB",
                         "g6NzaWShYaNwaWShYqVyb29tc5EB",
                         "hKNzaWShYaNwaWShYqVyb29tc5CkZGF0YcQBAQ==",
                         "hKNzaWS0QUFB",
                         ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sioc__redis_session_t session;
        const char *error = NULL;
        assert_int_equal(sioc__redis_decode_session(bad[i], strlen(bad[i]), &session, &error), -1);
        assert_non_null(error);
        assert_null(session.value);
    }
}

static void test_stream_entries(void **state)
{
    (void)state;
    sioc__redis_message_t message;
    const char *error = NULL;
    assert_int_equal(sioc__redis_decode_stream_entry("u1", 2, "/", 1, "3", 1, NODE_JSON_DATA,
                                                     strlen(NODE_JSON_DATA), &message, &error),
                     0);
    assert_int_equal(message.type, SIOC__SHARDED_BROADCAST);
    assert_string_equal(message.uid, "u1");
    assert_string_equal(message.nsp, "/");
    assert_int_equal(message.opts.room_count, 1);
    assert_string_equal(message.opts.except[0], "x");
    assert_int_equal(json_integer_value(json_array_get(message.data, 1)), 1);
    sioc__redis_message_clear(&message);

    assert_int_equal(sioc__redis_decode_stream_entry("u2", 2, "/", 1, "3", 1, NODE_BINARY_DATA,
                                                     strlen(NODE_BINARY_DATA), &message, &error),
                     0);
    assert_int_equal(message.attachment_count, 1);
    assert_int_equal(message.attachments[0].length, 2);
    assert_int_equal(message.attachments[0].data[1], 2);
    /* written back as Node writes it: the same base64 */
    sioc_binary_t binary = {message.attachments[0].data, message.attachments[0].length};
    json_t *data = json_pack("{s:{s:i,s:O,s:s},s:{s:[s],s:[],s:{}}}", "packet", "type", 2, "data",
                             message.data, "nsp", "/", "opts", "rooms", "r", "except", "flags");
    char *text = sioc__redis_encode_stream_data(data, &binary, 1);
    assert_string_equal(text, NODE_BINARY_DATA);
    free(text);
    json_decref(data);
    sioc__redis_message_clear(&message);

    /* a join (type 4) without binary, as JSON */
    const char join[] = "{\"opts\":{\"rooms\":[\"a\"],\"except\":[]},\"rooms\":[\"b\"]}";
    assert_int_equal(sioc__redis_decode_stream_entry("u", 1, "/x", 2, "4", 1, join, strlen(join),
                                                     &message, &error),
                     0);
    assert_int_equal(message.type, SIOC__SHARDED_SOCKETS_JOIN);
    assert_string_equal(message.rooms[0], "b");
    sioc__redis_message_clear(&message);
}

static void test_stream_entry_refusals(void **state)
{
    (void)state;
    const struct {
        const char *type, *data;
    } bad[] = {
        {"0", "{}"},
        {"14", "{}"},
        {"3x", "{}"},
        {"", "{}"},
        {"+3", "{}"},
        {"3", "{broken"},
        {"3", "!!!!"},
        {"3", "wQ=="},
        {"3", "{\"packet\":1}"},
        {"4", "{\"opts\":{}}"},
        {"3", "kw=="},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sioc__redis_message_t message;
        const char *error = NULL;
        assert_int_equal(sioc__redis_decode_stream_entry("u", 1, "/", 1, bad[i].type,
                                                         strlen(bad[i].type), bad[i].data,
                                                         strlen(bad[i].data), &message, &error),
                         -1);
        assert_non_null(error);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_broadcast_as_node),
        cmocka_unit_test(test_encode_broadcast_request_as_node),
        cmocka_unit_test(test_encode_broadcast_ack_as_node),
        cmocka_unit_test(test_decode_node_broadcast),
        cmocka_unit_test(test_decode_emitter_broadcast),
        cmocka_unit_test(test_decode_broadcast_request),
        cmocka_unit_test(test_decode_json_requests),
        cmocka_unit_test(test_broadcast_refusals),
        cmocka_unit_test(test_too_many_rooms),
        cmocka_unit_test(test_request_refusals),
        cmocka_unit_test(test_responses),
        cmocka_unit_test(test_sharded_messages),
        cmocka_unit_test(test_session_from_node),
        cmocka_unit_test(test_session_round_trip),
        cmocka_unit_test(test_session_refusals),
        cmocka_unit_test(test_stream_entries),
        cmocka_unit_test(test_stream_entry_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
