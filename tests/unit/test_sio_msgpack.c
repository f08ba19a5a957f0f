/* socket.io-msgpack-parser codec: packets byte for byte as the npm package (3.0.2, notepack.io
 * 2.2.0) encodes them under Node 20, what real clients send (undefined data, "options"),
 * notepack's and msgpack's dates, other encodings of the same values, every refusal with its
 * message, the limits, and the JSON parser's binary packets written in this format. The hex
 * strings marked "Node" were produced by Encoder.prototype.encode (or notepack.io 3.0.1 for the
 * msgpack timestamps) and the date strings by JSON.stringify. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "socketio/sio_msgpack.h"
#include "socketio/sio_parser.h"

#define NO_ID SIOC_SIO_NO_ACK_ID
#define MAX_ATTACHMENTS SIOC_SIO_DEFAULT_MAX_ATTACHMENTS

/* "83 a4..." to bytes; spaces are skipped. */
static uint8_t *from_hex(const char *hex, size_t *length)
{
    uint8_t *bytes = malloc(strlen(hex) / 2 + 1);
    assert_non_null(bytes);
    size_t count = 0;
    int high = -1;
    for (const char *c = hex; *c != '\0'; c++) {
        if (*c == ' ')
            continue;
        int nibble = *c <= '9' ? *c - '0' : (*c | 0x20) - 'a' + 10;
        assert_true(nibble >= 0 && nibble < 16);
        if (high < 0) {
            high = nibble;
        } else {
            bytes[count++] = (uint8_t)(high << 4 | nibble);
            high = -1;
        }
    }
    assert_int_equal(high, -1);
    *length = count;
    return bytes;
}

static char *to_hex(const uint8_t *bytes, size_t length)
{
    char *hex = malloc(length * 2 + 1);
    assert_non_null(hex);
    for (size_t i = 0; i < length; i++) {
        static const char digits[] = "0123456789abcdef";
        hex[2 * i] = digits[bytes[i] >> 4];
        hex[2 * i + 1] = digits[bytes[i] & 0x0f];
    }
    hex[length * 2] = '\0';
    return hex;
}

static char *without_spaces(const char *hex)
{
    size_t length;
    uint8_t *bytes = from_hex(hex, &length);
    char *clean = to_hex(bytes, length);
    free(bytes);
    return clean;
}

static json_t *parse_json(const char *text)
{
    json_error_t error;
    json_t *value = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &error);
    assert_non_null(value);
    return value;
}

static int decode_hex(const char *hex, size_t max_attachments, sioc__sio_packet_t *packet,
                      const char **error)
{
    size_t length;
    uint8_t *bytes = from_hex(hex, &length);
    *error = NULL;
    int result = sioc__sio_msgpack_decode(bytes, length, max_attachments, packet, error);
    free(bytes);
    return result;
}

/* data_json NULL: the packet must have no data. */
static void assert_packet(const sioc__sio_packet_t *packet, int type, const char *nsp, int64_t id,
                          const char *data_json)
{
    assert_int_equal(packet->type, type);
    assert_string_equal(packet->nsp, nsp);
    assert_true(packet->id == id);
    if (data_json == NULL) {
        assert_null(packet->data);
        return;
    }
    json_t *expected = parse_json(data_json);
    assert_non_null(packet->data);
    if (!json_equal(packet->data, expected)) {
        char *actual = json_dumps(packet->data, JSON_ENCODE_ANY);
        print_error("data %s, expected %s\n", actual, data_json);
        free(actual);
        fail();
    }
    json_decref(expected);
}

static void assert_decodes(const char *hex, int type, const char *nsp, int64_t id,
                           const char *data_json)
{
    sioc__sio_packet_t packet;
    const char *error;
    assert_int_equal(decode_hex(hex, MAX_ATTACHMENTS, &packet, &error), 0);
    assert_null(error);
    assert_packet(&packet, type, nsp, id, data_json);
    assert_int_equal(packet.attachment_count, 0);
    sioc__sio_packet_clear(&packet);
}

/* The refusal names the reason and leaves the packet zeroed. */
static void assert_refused_with(const char *hex, size_t max_attachments, const char *message)
{
    sioc__sio_packet_t packet;
    const char *error;
    if (decode_hex(hex, max_attachments, &packet, &error) != -1) {
        print_error("accepted %s\n", hex);
        fail();
    }
    assert_non_null(error);
    assert_string_equal(error, message);
    sioc__sio_packet_t zero;
    memset(&zero, 0, sizeof(zero));
    assert_memory_equal(&packet, &zero, sizeof(packet));
}

static void assert_refused(const char *hex, const char *message)
{
    assert_refused_with(hex, MAX_ATTACHMENTS, message);
}

static void assert_encodes(const sioc__sio_packet_t *packet, const char *hex)
{
    size_t length = 0;
    uint8_t *bytes = sioc__sio_msgpack_encode(packet, &length);
    assert_non_null(bytes);
    char *actual = to_hex(bytes, length);
    char *expected = without_spaces(hex);
    assert_string_equal(actual, expected);
    free(expected);
    free(actual);
    free(bytes);
}

/* ---------------------------------------------------------------------------------------------
 * What Node writes */

struct node_vector {
    const char *name;
    int type;
    const char *nsp;
    int64_t id;
    const char *data_json;    /* what the server hands the encoder */
    const char *decoded_json; /* what decoding the bytes gives, if other than data_json */
    const char *hex;          /* Node */
};

static const struct node_vector node_vectors[] = {
    {"socket.emit('hello')", SIOC_SIO_EVENT, "/", NO_ID, "[\"hello\"]", NULL,
     "83a47479706502a46461746191a568656c6c6fa36e7370a12f"},
    {"emit with ack: every integer width, float64, literals", SIOC_SIO_EVENT, "/admin", 12,
     "[\"ev\",0,127,128,255,256,65535,65536,4294967295,4294967296,-1,-32,-33,-128,-129,-32768,"
     "-32769,-2147483648,-2147483649,1.5,-0.25,true,false,null]",
     NULL,
     "84a47479706502a464617461dc0018a26576007fcc80ccffcd0100cdffffce00010000ceffffffffcf0000"
     "000100000000ffe0d0dfd080d1ff7fd18000d2ffff7fffd280000000d3ffffffff7fffffffcb3ff8000000"
     "000000cbbfd0000000000000c3c2c0a269640ca36e7370a62f61646d696e"},
    {"ack(): id first", SIOC_SIO_ACK, "/", 7, "[{\"x\":[1,2],\"y\":\"z\"}]", NULL,
     "84a2696407a47479706503a4646174619182a178920102a179a17aa36e7370a12f"},
    {"CONNECT reply", SIOC_SIO_CONNECT, "/", NO_ID, "{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}", NULL,
     "83a47479706500a46461746181a3736964b46f534f304f70616b4d565f336a6e696c41414141a36e7370a1"
     "2f"},
    {"CONNECT_ERROR object", SIOC_SIO_CONNECT_ERROR, "/", NO_ID, "{\"message\":\"Not authorized\"}",
     NULL, "83a47479706504a46461746181a76d657373616765ae4e6f7420617574686f72697a6564a36e7370a12f"},
    {"DISCONNECT", SIOC_SIO_DISCONNECT, "/admin", NO_ID, NULL, NULL,
     "82a47479706501a36e7370a62f61646d696e"},
    {"fixstr, UTF-8, str8", SIOC_SIO_EVENT, "/", NO_ID,
     "[\"s\",\"h\\u00e9llo \\u20ac\\ud834\\udd1e\",\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
     "\"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\"]",
     NULL,
     "83a47479706502a46461746194a173ae68c3a96c6c6f20e282acf09d849ebf616161616161616161616161"
     "61616161616161616161616161616161616161d92062626262626262626262626262626262626262626262"
     "62626262626262626262a36e7370a12f"},
    {"array16, ack() with id 0", SIOC_SIO_ACK, "/", 0, "[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]",
     NULL, "84a2696400a47479706503a464617461dc0010000102030405060708090a0b0c0d0e0fa36e7370a12f"},
    {"map16", SIOC_SIO_CONNECT_ERROR, "/", NO_ID,
     "{\"k0\":0,\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,\"k9\":9,"
     "\"k10\":10,\"k11\":11,\"k12\":12,\"k13\":13,\"k14\":14,\"k15\":15}",
     NULL,
     "83a47479706504a464617461de0010a26b3000a26b3101a26b3202a26b3303a26b3404a26b3505a26b3606"
     "a26b3707a26b3808a26b3909a36b31300aa36b31310ba36b31320ca36b31330da36b31340ea36b31350fa3"
     "6e7370a12f"},
    {"-0 and 2^53 are integers", SIOC_SIO_EVENT, "/", NO_ID, "[\"z\",-0.0,9007199254740992.0]",
     "[\"z\",0,9007199254740992]",
     "83a47479706502a46461746193a17a00cf0020000000000000a36e7370a12f"},
    {"index keys first, as Object.keys()", SIOC_SIO_EVENT, "/", NO_ID,
     "[\"o\",{\"b\":1,\"2\":2,\"1\":3,\"a\":4}]", NULL,
     "83a47479706502a46461746192a16f84a13103a13202a16201a16104a36e7370a12f"},
    {"empty auth object", SIOC_SIO_CONNECT, "/", NO_ID, "{}", NULL,
     "83a47479706500a46461746180a36e7370a12f"},
    {"CONNECT_ERROR string", SIOC_SIO_CONNECT_ERROR, "/x", NO_ID, "\"nope\"", NULL,
     "83a47479706504a464617461a46e6f7065a36e7370a22f78"},
    {"safe integers, 2^63, 0.1", SIOC_SIO_EVENT, "/", NO_ID,
     "[\"i\",9007199254740991,-9007199254740991,9.223372036854775808e18,0.1]", NULL,
     "83a47479706502a46461746195a169cf001fffffffffffffd3ffe0000000000001cf8000000000000000cb"
     "3fb999999999999aa36e7370a12f"},
};

static void test_encode_matches_node(void **state)
{
    for (size_t i = 0; i < sizeof(node_vectors) / sizeof(node_vectors[0]); i++) {
        const struct node_vector *vector = &node_vectors[i];
        print_message("%s\n", vector->name);
        sioc__sio_packet_t packet = {.type = vector->type, .id = vector->id};
        packet.nsp = strdup(vector->nsp);
        packet.data = vector->data_json != NULL ? parse_json(vector->data_json) : NULL;
        assert_encodes(&packet, vector->hex);
        sioc__sio_packet_clear(&packet);
    }
}

static void test_decode_node_packets(void **state)
{
    for (size_t i = 0; i < sizeof(node_vectors) / sizeof(node_vectors[0]); i++) {
        const struct node_vector *vector = &node_vectors[i];
        print_message("%s\n", vector->name);
        const char *expected = vector->decoded_json ? vector->decoded_json : vector->data_json;
        assert_decodes(vector->hex, vector->type, vector->nsp, vector->id, expected);
    }
}

/* Decoding and encoding again gives Node's bytes back. */
static void test_reencode_node_packets(void **state)
{
    for (size_t i = 0; i < sizeof(node_vectors) / sizeof(node_vectors[0]); i++) {
        sioc__sio_packet_t packet;
        const char *error;
        assert_int_equal(decode_hex(node_vectors[i].hex, MAX_ATTACHMENTS, &packet, &error), 0);
        assert_encodes(&packet, node_vectors[i].hex);
        sioc__sio_packet_clear(&packet);
    }
}

/* Node: {type: 2, data: ["bin", Buffer.from([1, 2, 3]), {nested: [Buffer.alloc(0)]}], nsp: "/"} */
static const char BINARY_EVENT_HEX[] =
    "83a47479706502a46461746193a362696ec40301020381a66e657374656491c400a36e7370a12f";
static const char BINARY_EVENT_JSON[] =
    "[\"bin\",{\"_placeholder\":true,\"num\":0},{\"nested\":[{\"_placeholder\":true,\"num\":1}]}]";

static void test_encode_binary_matches_node(void **state)
{
    uint8_t bytes[] = {1, 2, 3};
    sioc__sio_attachment_t attachments[] = {{bytes, 3}, {NULL, 0}};
    sioc__sio_packet_t packet = {.type = SIOC_SIO_BINARY_EVENT, .nsp = "/", .id = NO_ID};
    packet.data = parse_json(BINARY_EVENT_JSON);
    packet.attachment_count = 2;
    packet.attachments = attachments;
    assert_encodes(&packet, BINARY_EVENT_HEX);
    json_decref(packet.data);
}

static void test_decode_binary(void **state)
{
    sioc__sio_packet_t packet;
    const char *error;
    assert_int_equal(decode_hex(BINARY_EVENT_HEX, MAX_ATTACHMENTS, &packet, &error), 0);
    assert_packet(&packet, SIOC_SIO_BINARY_EVENT, "/", NO_ID, BINARY_EVENT_JSON);
    assert_int_equal(packet.attachment_count, 2);
    assert_int_equal(packet.attachments[0].length, 3);
    assert_memory_equal(packet.attachments[0].data, "\x01\x02\x03", 3);
    assert_int_equal(packet.attachments[1].length, 0);
    assert_non_null(packet.attachments[1].data);
    sioc__sio_packet_clear(&packet);

    /* ack with bins: BINARY_ACK; bin 16 and bin 32 forms */
    assert_int_equal(decode_hex("84 a474797065 03 a464617461 92 c50002 abcd c600000001 ef"
                                " a26964 05 a36e7370 a12f",
                                MAX_ATTACHMENTS, &packet, &error),
                     0);
    assert_packet(&packet, SIOC_SIO_BINARY_ACK, "/", 5,
                  "[{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]");
    assert_int_equal(packet.attachment_count, 2);
    assert_memory_equal(packet.attachments[0].data, "\xab\xcd", 2);
    assert_memory_equal(packet.attachments[1].data, "\xef", 1);
    sioc__sio_packet_clear(&packet);
}

/* A packet from the JSON parser goes out in this format unchanged: Node writes
 * {type: 2, data: ["baz", Buffer.from([0xde, 0xad])], nsp: "/"} as below. */
static void test_json_parser_packet_to_msgpack(void **state)
{
    sioc__sio_decoder_t decoder;
    sioc__sio_packet_t packet = {0};
    const char *error = NULL;
    const char text[] = "51-[\"baz\",{\"_placeholder\":true,\"num\":0}]";
    sioc__sio_decoder_init(&decoder, MAX_ATTACHMENTS);
    assert_int_equal(sioc__sio_decoder_add_text(&decoder, text, strlen(text), &packet, &error),
                     SIOC_SIO_DECODE_PENDING);
    assert_int_equal(
        sioc__sio_decoder_add_binary(&decoder, (const uint8_t *)"\xde\xad", 2, &packet, &error),
        SIOC_SIO_DECODE_COMPLETE);
    assert_encodes(&packet, "83a47479706502a46461746192a362617ac402deada36e7370a12f");
    sioc__sio_packet_clear(&packet);
    sioc__sio_decoder_free(&decoder);
}

/* ---------------------------------------------------------------------------------------------
 * What clients send */

static void test_decode_client_packets(void **state)
{
    /* socket.io-client: {type: 0, data: undefined, nsp: "/"} without auth (Node) */
    assert_decodes("83a47479706500a464617461d40000a36e7370a12f", SIOC_SIO_CONNECT, "/", NO_ID,
                   NULL);
    /* emit with ack: {type, data, options: {compress: true}, id, nsp} (Node) */
    assert_decodes("85a47479706502a46461746192a568656c6c6f01a76f7074696f6e7381a8636f6d7072657373"
                   "c3a2696403a36e7370a12f",
                   SIOC_SIO_EVENT, "/", 3, "[\"hello\",1]");
    /* {sid: "abc", pid: undefined}: the member is dropped (Node) */
    assert_decodes("83a47479706500a46461746182a3736964a3616263a3706964d40000a36e7370a12f",
                   SIOC_SIO_CONNECT, "/", NO_ID, "{\"sid\":\"abc\"}");
    /* [undefined] element: null; id: undefined is no id */
    assert_decodes("84 a474797065 02 a464617461 92 a161 d40000 a26964 d40000 a36e7370 a12f",
                   SIOC_SIO_EVENT, "/", NO_ID, "[\"a\",null]");
    /* an undefined member is left out */
    assert_decodes("83 a474797065 00 a464617461 82 a178 d40000 a179 02 a36e7370 a12f",
                   SIOC_SIO_CONNECT, "/", NO_ID, "{\"y\":2}");
}

/* Node-side notepack writes typed arrays as ext type 0: an attachment like bin. */
static void test_decode_array_buffer(void **state)
{
    sioc__sio_packet_t packet;
    const char *error;
    /* Node: {type: 2, data: ["ab", new Uint8Array([9, 8, 7]).buffer], nsp: "/"} */
    assert_int_equal(decode_hex("83a47479706502a46461746192a26162c70300090807a36e7370a12f",
                                MAX_ATTACHMENTS, &packet, &error),
                     0);
    assert_packet(&packet, SIOC_SIO_BINARY_EVENT, "/", NO_ID,
                  "[\"ab\",{\"_placeholder\":true,\"num\":0}]");
    assert_int_equal(packet.attachment_count, 1);
    assert_int_equal(packet.attachments[0].length, 3);
    assert_memory_equal(packet.attachments[0].data, "\x09\x08\x07", 3);
    sioc__sio_packet_clear(&packet);

    /* ext 8 with 1 and 8 bytes is an ArrayBuffer, unlike fixext 1 (undefined) and fixext 8
     * (Date) */
    assert_int_equal(decode_hex("83 a474797065 02 a464617461 93 a161 c7010041 c7080001020304050"
                                "60708 a36e7370 a12f",
                                MAX_ATTACHMENTS, &packet, &error),
                     0);
    assert_int_equal(packet.attachment_count, 2);
    assert_int_equal(packet.attachments[0].length, 1);
    assert_int_equal(packet.attachments[1].length, 8);
    assert_memory_equal(packet.attachments[1].data, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
    sioc__sio_packet_clear(&packet);
}

/* ---------------------------------------------------------------------------------------------
 * Dates, numbers, other encodings */

/* EVENT "d" with one extension value (hex) as the second element. */
static void assert_date(const char *extension_hex, const char *expected_json)
{
    char hex[256];
    snprintf(hex, sizeof(hex), "83 a474797065 02 a464617461 92 a164 %s a36e7370 a12f",
             extension_hex);
    char expected[128];
    snprintf(expected, sizeof(expected), "[\"d\",%s]", expected_json);
    print_message("%s\n", extension_hex);
    assert_decodes(hex, SIOC_SIO_EVENT, "/", NO_ID, expected);
}

static void test_decode_dates(void **state)
{
    /* notepack 2 Dates (Node) */
    assert_date("d7000000000000000000", "\"1970-01-01T00:00:00.000Z\"");
    assert_date("d7000000018bcfe5687b", "\"2023-11-14T22:13:20.123Z\"");
    assert_date("d700ffffffffffffffff", "\"1969-12-31T23:59:59.999Z\"");
    assert_date("d700001eb208c2dc0000", "\"+275760-09-13T00:00:00.000Z\"");
    assert_date("d700ffe14df73d240000", "\"-271821-04-20T00:00:00.000Z\"");
    assert_date("d7000000e677d21fdc00", "\"+010000-01-01T00:00:00.000Z\"");
    assert_date("d700ffffc76e394a7400", "\"-000001-01-01T00:00:00.000Z\"");
    assert_date("d700ffffc77590fba000", "\"0000-01-01T00:00:00.000Z\"");
    assert_date("d700000000dd9aa6e000", "\"2000-02-29T00:00:00.000Z\"");
    /* one millisecond past the Date range: Invalid Date, toJSON() null */
    assert_date("d700001eb208c2dc0001", "null");
    assert_date("d7008000000000000000", "null");
    /* msgpack timestamps (notepack 3, Node) */
    assert_date("d6ff00000000", "\"1970-01-01T00:00:00.000Z\"");
    assert_date("d6ff6553f100", "\"2023-11-14T22:13:20.000Z\"");
    assert_date("d7ff1d5353006553f100", "\"2023-11-14T22:13:20.123Z\"");
    assert_date("c70cff3b8b87c0ffffffffffffffff", "\"1969-12-31T23:59:59.999Z\"");
    assert_date("c70cff00000000fffffff184aa5080", "\"-000001-01-01T00:00:00.000Z\"");
    /* -1 s + 1 ns and -1 s + 999999999 ns: truncated toward zero, as new Date() does (Node) */
    assert_date("c70cff00000001ffffffffffffffff", "\"1969-12-31T23:59:59.001Z\"");
    assert_date("c70cff3b9ac9ffffffffffffffffff", "\"1970-01-01T00:00:00.000Z\"");
    assert_date("c70cff000000007fffffffffffffff", "null");
}

static void test_decode_numbers(void **state)
{
    /* NaN, Infinity, -Infinity as JSON.stringify writes them (Node) */
    assert_decodes("83a47479706502a46461746195a16ecb7ff8000000000000cb7ff0000000000000cbfff0000000"
                   "000000d40000a36e7370a12f",
                   SIOC_SIO_EVENT, "/", NO_ID, "[\"n\",null,null,null,null]");
    /* float64 2.0 and -0.0, float32 1.5 and 3.0 */
    assert_decodes("83 a474797065 02 a464617461 95 a16e cb4000000000000000 cb8000000000000000"
                   " ca3fc00000 ca40400000 a36e7370 a12f",
                   SIOC_SIO_EVENT, "/", NO_ID, "[\"n\",2,0,1.5,3]");
    /* uint64 max (a real, as in JavaScript), int64 min, 2^63 as float64 stays real */
    assert_decodes("83 a474797065 02 a464617461 94 a16e cfffffffffffffffff d38000000000000000"
                   " cb43e0000000000000 a36e7370 a12f",
                   SIOC_SIO_EVENT, "/", NO_ID,
                   "[\"n\",1.8446744073709552e19,-9223372036854775808,9.223372036854775808e18]");
    /* positive values in signed forms, small values in wide forms */
    assert_decodes("83 a474797065 02 a464617461 95 a16e d005 d10100 d3000000000000002a cf0000000000"
                   "000007 a36e7370 a12f",
                   SIOC_SIO_EVENT, "/", NO_ID, "[\"n\",5,256,42,7]");
}

/* Another msgpack library may pick other forms for the same values. */
static void test_decode_other_encodings(void **state)
{
    /* map 16, str 8 keys, type as int 8, nsp as str 16, data as array 32 */
    assert_decodes("de0003 d904 74797065 d002 d903 6e7370 da0001 2f d904 64617461 dd00000001 a161",
                   SIOC_SIO_EVENT, "/", NO_ID, "[\"a\"]");
    /* map 32, type as uint 64, nsp as str 32, id as float64 3.0; type as float64 and float32 */
    assert_decodes("df00000004 a474797065 cf0000000000000002 a36e7370 db00000002 2f61"
                   " a464617461 91 a161 a26964 cb4008000000000000",
                   SIOC_SIO_EVENT, "/a", 3, "[\"a\"]");
    assert_decodes("83 a474797065 cb4008000000000000 a36e7370 a12f a464617461 90", SIOC_SIO_ACK,
                   "/", NO_ID, "[]");
    assert_decodes("83 a474797065 ca40000000 a36e7370 a12f a464617461 91 01", SIOC_SIO_EVENT, "/",
                   NO_ID, "[1]");
    /* the namespace may be any string, as in Node: the server decides whether it exists */
    assert_decodes("82 a474797065 01 a36e7370 a0", SIOC_SIO_DISCONNECT, "", NO_ID, NULL);
    /* the largest ack id */
    assert_decodes("84 a474797065 03 a464617461 90 a26964 cf001fffffffffffff a36e7370 a12f",
                   SIOC_SIO_ACK, "/", INT64_C(9007199254740991), "[]");
    /* an event name may be a number; NUL inside strings is kept */
    assert_decodes("83 a474797065 02 a464617461 92 07 a3610062 a36e7370 a12f", SIOC_SIO_EVENT, "/",
                   NO_ID, "[7,\"a\\u0000b\"]");
}

/* ---------------------------------------------------------------------------------------------
 * Refusals */

static void test_refuses_bad_msgpack(void **state)
{
    assert_refused("", "truncated msgpack");
    assert_refused("83 a474797065 02 a464617461 91 a5 68656c6c", "truncated msgpack");
    /* counts and lengths beyond the input are refused before anything is allocated (ASan would
     * abort on msgpack-c's 128 GiB request otherwise) */
    assert_refused("dd ffffffff", "truncated msgpack");
    assert_refused("df ffffffff a474797065", "truncated msgpack");
    assert_refused("83 a474797065 02 a36e7370 a12f a464617461 91 c6 ffffffff 00",
                   "truncated msgpack");
    assert_refused("83 a474797065 02 a36e7370 a12f a464617461 91 db fffffff0 00",
                   "truncated msgpack");
    assert_refused("83 a474797065 02 a36e7370 a12f a464617461 91 c9 ffffffff 00 00",
                   "truncated msgpack");
    assert_refused("83 a474797065 02 a36e7370 a12f a464617461 91 d8 00 0102", "truncated msgpack");
    assert_refused("82 a474797065 01 a36e7370 a12f 00", "trailing bytes after msgpack value");
    assert_refused("82 a474797065 01 a36e7370 a12f 82", "trailing bytes after msgpack value");
    assert_refused("c1", "invalid msgpack");
    assert_refused("82 a474797065 01 a36e7370 c1", "invalid msgpack");
}

static void test_refuses_bad_values(void **state)
{
    assert_refused("92 02 a12f", "packet is not a map");
    assert_refused("c0", "packet is not a map");
    assert_refused("a474797065", "packet is not a map");
    assert_refused("83 a474797065 02 01 02 a36e7370 a12f", "map key is not a string");
    assert_refused("83 a474797065 02 a36e7370 a12f a464617461 92 a161 81 01 02",
                   "map key is not a string");
    assert_refused("83 a474797065 02 a36e7370 a12f a464617461 92 a161 81 a3610062 02",
                   "invalid map key");
    assert_refused("83 a474797065 02 a36e7370 a12f a464617461 92 a161 81 a2c328 02",
                   "invalid map key");
    /* a repeated key, even when one of the values is undefined */
    assert_refused("84 a474797065 00 a474797065 02 a36e7370 a12f a464617461 91 a161",
                   "duplicate map key");
    assert_refused("84 a474797065 02 a36e7370 a12f a464617461 91 a161 a36e7370 d40000",
                   "duplicate map key");
    assert_refused("83 a474797065 02 a36e7370 a12f a464617461 92 a161 82 a178 c40101 a178 01",
                   "duplicate map key");
    assert_refused("83 a474797065 02 a36e7370 a12f a464617461 92 a161 82 a178 01 a178 d40000",
                   "duplicate map key");
    assert_refused("83 a474797065 02 a36e7370 a12f a464617461 92 a161 a2c328",
                   "invalid UTF-8 string");
    assert_refused("83 a474797065 02 a36e7370 a12f a464617461 92 a161 a3eda080",
                   "invalid UTF-8 string");
    /* extensions other than notepack's and timestamps */
    assert_refused("83 a474797065 02 a36e7370 a12f a464617461 92 a161 d40500",
                   "unsupported msgpack extension");
    assert_refused("83 a474797065 02 a36e7370 a12f a464617461 92 a161 d5000102",
                   "unsupported msgpack extension");
    assert_refused("83 a474797065 02 a36e7370 a12f a464617461 92 a161 d60001020304",
                   "unsupported msgpack extension");
    assert_refused("83 a474797065 02 a36e7370 a12f a464617461 92 a161 d800"
                   "0102030405060708090a0b0c0d0e0f10",
                   "unsupported msgpack extension");
    assert_refused("83 a474797065 02 a36e7370 a12f a464617461 92 a161 d5ff0102",
                   "unsupported msgpack extension");
    assert_refused("83 a474797065 02 a36e7370 a12f a464617461 92 a161 c7 05 7f 0102030405",
                   "unsupported msgpack extension");
    /* a placeholder can only come from a bin here */
    assert_refused("83 a474797065 02 a36e7370 a12f a464617461 93 a161 c40101"
                   " 82 ac5f706c616365686f6c646572 c3 a36e756d 00",
                   "illegal attachments");
}

static void test_refuses_bad_packets(void **state)
{
    /* type */
    assert_refused("82 a36e7370 a12f a464617461 91 a161", "invalid packet type");
    assert_refused("83 a474797065 05 a36e7370 a12f a464617461 91 a161", "invalid packet type");
    assert_refused("83 a474797065 06 a36e7370 a12f a464617461 90", "invalid packet type");
    assert_refused("83 a474797065 ff a36e7370 a12f a464617461 91 a161", "invalid packet type");
    assert_refused("83 a474797065 cb4004000000000000 a36e7370 a12f a464617461 91 a161",
                   "invalid packet type");
    assert_refused("83 a474797065 a132 a36e7370 a12f a464617461 91 a161", "invalid packet type");
    assert_refused("83 a474797065 cb7ff8000000000000 a36e7370 a12f a464617461 91 a161",
                   "invalid packet type");
    assert_refused("83 a474797065 d40000 a36e7370 a12f a464617461 91 a161", "invalid packet type");
    /* namespace */
    assert_refused("81 a474797065 01", "invalid namespace");
    assert_refused("82 a474797065 01 a36e7370 01", "invalid namespace");
    assert_refused("82 a474797065 01 a36e7370 c0", "invalid namespace");
    assert_refused("82 a474797065 01 a36e7370 a32f6100", "invalid namespace");
    assert_refused("82 a474797065 01 a36e7370 a22fff", "invalid namespace");
    assert_refused("82 a474797065 01 a36e7370 c4012f", "invalid namespace");
    /* payload shapes */
    assert_refused("83 a474797065 00 a36e7370 a12f a464617461 90", "invalid payload");
    assert_refused("83 a474797065 00 a36e7370 a12f a464617461 c0", "invalid payload");
    assert_refused("83 a474797065 01 a36e7370 a12f a464617461 80", "invalid payload");
    assert_refused("82 a474797065 04 a36e7370 a12f", "invalid payload");
    assert_refused("83 a474797065 04 a36e7370 a12f a464617461 01", "invalid payload");
    assert_refused("82 a474797065 02 a36e7370 a12f", "invalid payload");
    assert_refused("83 a474797065 02 a36e7370 a12f a464617461 90", "invalid payload");
    assert_refused("83 a474797065 02 a36e7370 a12f a464617461 81 a161 01", "invalid payload");
    assert_refused("83 a474797065 02 a36e7370 a12f a464617461 92 c3 a161", "invalid payload");
    assert_refused("83 a474797065 02 a36e7370 a12f a464617461 91 c0", "invalid payload");
    assert_refused("83 a474797065 02 a36e7370 a12f a464617461 91 c40101", "invalid payload");
    assert_refused("83 a474797065 02 a36e7370 a12f a464617461 91 a7636f6e6e656374",
                   "invalid payload");
    assert_refused("83 a474797065 02 a36e7370 a12f a464617461 91 ae72656d6f76654c697374656e6572",
                   "invalid payload");
    assert_refused("83 a474797065 03 a36e7370 a12f a464617461 80", "invalid payload");
    assert_refused("82 a474797065 03 a36e7370 a12f", "invalid payload");
    /* ack id */
    assert_refused("84 a474797065 02 a36e7370 a12f a464617461 91 a161 a26964 a131",
                   "invalid packet id");
    assert_refused("84 a474797065 02 a36e7370 a12f a464617461 91 a161 a26964 ff",
                   "invalid packet id");
    assert_refused("84 a474797065 02 a36e7370 a12f a464617461 91 a161 a26964 c0",
                   "invalid packet id");
    assert_refused("84 a474797065 02 a36e7370 a12f a464617461 91 a161 a26964 cb3ff8000000000000",
                   "invalid packet id");
    assert_refused("84 a474797065 02 a36e7370 a12f a464617461 91 a161 a26964 cf0020000000000000",
                   "invalid packet id");
    assert_refused("84 a474797065 02 a36e7370 a12f a464617461 91 a161 a26964 cb4340000000000000",
                   "invalid packet id");
    assert_refused("83 a474797065 00 a36e7370 a12f a26964 01", "invalid packet id");
    assert_refused("83 a474797065 01 a36e7370 a12f a26964 01", "invalid packet id");
    assert_refused("84 a474797065 04 a36e7370 a12f a464617461 a178 a26964 01", "invalid packet id");
}

/* {type: 2, nsp: "/", data: ["e", <arrays nested inner_depth deep>]}: 2 + inner_depth levels */
static char *nested_event_hex(int inner_depth)
{
    const char head[] = "83 a474797065 02 a36e7370 a12f a464617461 92 a165 ";
    char *hex = malloc(sizeof(head) + (size_t)inner_depth * 2 + 1);
    assert_non_null(hex);
    strcpy(hex, head);
    for (int i = 0; i < inner_depth; i++)
        strcat(hex, i + 1 < inner_depth ? "91" : "90");
    return hex;
}

static void test_depth_limit(void **state)
{
    char *hex = nested_event_hex(SIOC_SIO_MSGPACK_MAX_DEPTH - 2);
    sioc__sio_packet_t packet;
    const char *error;
    assert_int_equal(decode_hex(hex, MAX_ATTACHMENTS, &packet, &error), 0);
    json_t *innermost = json_array_get(packet.data, 1);
    for (int i = 1; i < SIOC_SIO_MSGPACK_MAX_DEPTH - 2; i++)
        innermost = json_array_get(innermost, 0);
    assert_true(json_is_array(innermost));
    assert_int_equal(json_array_size(innermost), 0);
    sioc__sio_packet_clear(&packet);
    free(hex);

    hex = nested_event_hex(SIOC_SIO_MSGPACK_MAX_DEPTH - 1);
    assert_refused(hex, "msgpack nested too deeply");
    free(hex);
    /* an empty map counts too */
    assert_refused("83 a474797065 02 a36e7370 a12f a464617461 92 a165 "
                   "91919191919191919191919191919191919191919191919191919191919180",
                   "msgpack nested too deeply");
}

static void test_attachment_limits(void **state)
{
    const char two[] = "83 a474797065 02 a36e7370 a12f a464617461 93 a161 c40101 c7010002";
    const char three[] = "83 a474797065 02 a36e7370 a12f a464617461 94 a161 c40101 c40102 c40103";
    sioc__sio_packet_t packet;
    const char *error;
    assert_int_equal(decode_hex(two, 2, &packet, &error), 0);
    assert_int_equal(packet.attachment_count, 2);
    sioc__sio_packet_clear(&packet);
    assert_refused_with(three, 2, "too many attachments");
    assert_refused_with(two, 1, "too many attachments");
    assert_refused_with(two, 0, "too many attachments");
    /* bins outside data are not attachments: "options" is ignored */
    assert_int_equal(decode_hex("84 a474797065 02 a36e7370 a12f a464617461 91 a161 a16f c40101", 0,
                                &packet, &error),
                     0);
    assert_int_equal(packet.type, SIOC_SIO_EVENT);
    assert_int_equal(packet.attachment_count, 0);
    assert_null(packet.attachments);
    sioc__sio_packet_clear(&packet);
    /* a connect's auth object may carry a bin (the type stays CONNECT) */
    assert_int_equal(decode_hex("83 a474797065 00 a36e7370 a12f a464617461 81 a174 c4020102",
                                MAX_ATTACHMENTS, &packet, &error),
                     0);
    assert_packet(&packet, SIOC_SIO_CONNECT, "/", NO_ID,
                  "{\"t\":{\"_placeholder\":true,\"num\":0}}");
    assert_int_equal(packet.attachment_count, 1);
    sioc__sio_packet_clear(&packet);
}

static void test_nsp_length_limit(void **state)
{
    char hex[1024] = "82 a474797065 01 a36e7370 da0100 ";
    for (int i = 0; i < SIOC_SIO_MSGPACK_MAX_NSP_LENGTH; i++)
        strcat(hex, "61");
    sioc__sio_packet_t packet;
    const char *error;
    assert_int_equal(decode_hex(hex, MAX_ATTACHMENTS, &packet, &error), 0);
    assert_int_equal(strlen(packet.nsp), SIOC_SIO_MSGPACK_MAX_NSP_LENGTH);
    sioc__sio_packet_clear(&packet);
    strcpy(hex, "82 a474797065 01 a36e7370 da0101 ");
    for (int i = 0; i <= SIOC_SIO_MSGPACK_MAX_NSP_LENGTH; i++)
        strcat(hex, "61");
    assert_refused(hex, "invalid namespace");
}

/* ---------------------------------------------------------------------------------------------
 * Encoder details */

static void test_encode_defaults_and_types(void **state)
{
    /* no nsp: "/"; JSON null data: no data key, as the JSON encoder leaves it out */
    sioc__sio_packet_t packet = {.type = SIOC_SIO_CONNECT, .id = NO_ID};
    packet.data = json_null();
    assert_encodes(&packet, "82 a474797065 00 a36e7370 a12f");
    /* BINARY_ACK is written as ACK, id first */
    sioc__sio_packet_t ack = {.type = SIOC_SIO_BINARY_ACK, .nsp = "/", .id = 9};
    ack.data = parse_json("[]");
    assert_encodes(&ack, "84 a26964 09 a474797065 03 a464617461 90 a36e7370 a12f");
    json_decref(ack.data);
    /* an ACK without id keeps type, data, nsp */
    ack.id = NO_ID;
    ack.type = SIOC_SIO_ACK;
    ack.data = parse_json("[1]");
    assert_encodes(&ack, "83 a474797065 03 a464617461 91 01 a36e7370 a12f");
    json_decref(ack.data);
}

static void test_encode_placeholders(void **state)
{
    uint8_t large[256];
    memset(large, 7, sizeof(large));
    sioc__sio_attachment_t attachments[] = {{large, sizeof(large)}};
    sioc__sio_packet_t packet = {.type = SIOC_SIO_BINARY_EVENT, .nsp = "/", .id = NO_ID};
    packet.attachments = attachments;
    packet.attachment_count = 1;
    /* num out of range, not an integer, _placeholder not true: plain objects */
    packet.data = parse_json("[\"p\",{\"_placeholder\":true,\"num\":1},"
                             "{\"_placeholder\":true,\"num\":\"0\"},"
                             "{\"_placeholder\":1,\"num\":0}]");
    assert_encodes(&packet, "83 a474797065 02 a464617461 94 a170"
                            " 82 ac5f706c616365686f6c646572 c3 a36e756d 01"
                            " 82 ac5f706c616365686f6c646572 c3 a36e756d a130"
                            " 82 ac5f706c616365686f6c646572 01 a36e756d 00"
                            " a36e7370 a12f");
    json_decref(packet.data);
    /* bin 16 (Node writes c5 0100 for 256 bytes); the same attachment twice */
    packet.data =
        parse_json("[{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":0}]");
    size_t length;
    uint8_t *bytes = sioc__sio_msgpack_encode(&packet, &length);
    assert_non_null(bytes);
    assert_int_equal(length, 13 + 2 * (3 + 256) + 6);
    assert_memory_equal(bytes + 12, "\x92\xc5\x01\x00", 4);
    assert_memory_equal(bytes + 16, large, sizeof(large));
    assert_memory_equal(bytes + 16 + 256, "\xc5\x01\x00", 3);
    assert_memory_equal(bytes + 16 + 256 + 3, large, sizeof(large));
    free(bytes);
    json_decref(packet.data);
}

static void test_encode_long_string(void **state)
{
    char text[257];
    memset(text, 'x', 256);
    text[256] = '\0';
    sioc__sio_packet_t packet = {.type = SIOC_SIO_EVENT, .nsp = "/", .id = NO_ID};
    packet.data = json_pack("[s]", text);
    size_t length;
    uint8_t *bytes = sioc__sio_msgpack_encode(&packet, &length);
    assert_non_null(bytes);
    /* Node: 83a47479706502a46461746191da0100 7878... */
    assert_memory_equal(bytes,
                        "\x83\xa4type\x02\xa4"
                        "data\x91\xda\x01\x00xx",
                        18);
    assert_int_equal(length, 16 + 256 + 6);
    free(bytes);
    json_decref(packet.data);
}

static void test_encode_refusals(void **state)
{
    size_t length = 12345;
    sioc__sio_packet_t packet = {.type = 7, .nsp = "/", .id = NO_ID};
    assert_null(sioc__sio_msgpack_encode(&packet, &length));
    packet.type = -1;
    assert_null(sioc__sio_msgpack_encode(&packet, &length));
    /* ids only on (BINARY_)EVENT/ACK, within 0..2^53-1 */
    packet.type = SIOC_SIO_CONNECT;
    packet.id = 1;
    assert_null(sioc__sio_msgpack_encode(&packet, &length));
    packet.type = SIOC_SIO_CONNECT_ERROR;
    assert_null(sioc__sio_msgpack_encode(&packet, &length));
    packet.type = SIOC_SIO_EVENT;
    packet.id = -2;
    assert_null(sioc__sio_msgpack_encode(&packet, &length));
    packet.id = INT64_C(9007199254740992);
    assert_null(sioc__sio_msgpack_encode(&packet, &length));
    assert_int_equal(length, 12345);
    /* data nested deeper than the JSON encoder writes */
    packet.id = NO_ID;
    packet.data = json_array();
    json_t *inner = packet.data;
    for (int i = 0; i < 2048; i++) {
        json_t *next = json_array();
        json_array_append_new(inner, next);
        inner = next;
    }
    assert_null(sioc__sio_msgpack_encode(&packet, &length));
    json_decref(packet.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_matches_node),
        cmocka_unit_test(test_decode_node_packets),
        cmocka_unit_test(test_reencode_node_packets),
        cmocka_unit_test(test_encode_binary_matches_node),
        cmocka_unit_test(test_decode_binary),
        cmocka_unit_test(test_json_parser_packet_to_msgpack),
        cmocka_unit_test(test_decode_client_packets),
        cmocka_unit_test(test_decode_array_buffer),
        cmocka_unit_test(test_decode_dates),
        cmocka_unit_test(test_decode_numbers),
        cmocka_unit_test(test_decode_other_encodings),
        cmocka_unit_test(test_refuses_bad_msgpack),
        cmocka_unit_test(test_refuses_bad_values),
        cmocka_unit_test(test_refuses_bad_packets),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_attachment_limits),
        cmocka_unit_test(test_nsp_length_limit),
        cmocka_unit_test(test_encode_defaults_and_types),
        cmocka_unit_test(test_encode_placeholders),
        cmocka_unit_test(test_encode_long_string),
        cmocka_unit_test(test_encode_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
