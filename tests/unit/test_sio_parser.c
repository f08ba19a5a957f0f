/* Socket.IO packet codec: the protocol's examples byte for byte, every refusal of
 * socket.io-parser 4.2.6 with its message, binary reconstruction one attachment at a time, the
 * decoder's state after errors, JSON.stringify-exact output, and round trips. The expected
 * strings for JSON.stringify were produced by Node 20. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "socketio/sio_parser.h"

#define NO_ID SIOC_SIO_NO_ACK_ID

static json_t *parse_json(const char *text)
{
    json_error_t error;
    json_t *value = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &error);
    assert_non_null(value);
    return value;
}

static int add_text(sioc__sio_decoder_t *decoder, const char *text, sioc__sio_packet_t *packet,
                    const char **error)
{
    *error = NULL;
    return sioc__sio_decoder_add_text(decoder, text, strlen(text), packet, error);
}

static int add_binary(sioc__sio_decoder_t *decoder, const char *bytes, sioc__sio_packet_t *packet,
                      const char **error)
{
    *error = NULL;
    return sioc__sio_decoder_add_binary(decoder, (const uint8_t *)bytes, strlen(bytes), packet,
                                        error);
}

/* data_json NULL: the packet must have no payload. */
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
    assert_true(json_equal(packet->data, expected));
    json_decref(expected);
}

static void assert_decodes(const char *text, int type, const char *nsp, int64_t id,
                           const char *data_json)
{
    sioc__sio_decoder_t decoder;
    sioc__sio_packet_t packet = {0};
    const char *error;
    sioc__sio_decoder_init(&decoder, SIOC_SIO_DEFAULT_MAX_ATTACHMENTS);
    assert_int_equal(add_text(&decoder, text, &packet, &error), SIOC_SIO_DECODE_COMPLETE);
    assert_null(error);
    assert_packet(&packet, type, nsp, id, data_json);
    assert_int_equal(decoder.has_pending, 0);
    sioc__sio_packet_clear(&packet);
    sioc__sio_decoder_free(&decoder);
}

/* The refusal must name the reason and leave the decoder ready for the next packet. */
static void assert_refused_bytes(const char *text, size_t length, const char *message)
{
    sioc__sio_decoder_t decoder;
    sioc__sio_packet_t packet = {0};
    const char *error = NULL;
    sioc__sio_decoder_init(&decoder, SIOC_SIO_DEFAULT_MAX_ATTACHMENTS);
    int result = sioc__sio_decoder_add_text(&decoder, text, length, &packet, &error);
    if (result != SIOC_SIO_DECODE_ERROR)
        fail_msg("accepted: %.*s", (int)length, text);
    assert_non_null(error);
    assert_string_equal(error, message);
    assert_int_equal(decoder.has_pending, 0);
    assert_null(packet.nsp);
    assert_null(packet.data);

    assert_int_equal(add_text(&decoder, "2[\"next\"]", &packet, &error), SIOC_SIO_DECODE_COMPLETE);
    assert_packet(&packet, SIOC_SIO_EVENT, "/", NO_ID, "[\"next\"]");
    sioc__sio_packet_clear(&packet);
    sioc__sio_decoder_free(&decoder);
}

static void assert_refused(const char *text, const char *message)
{
    assert_refused_bytes(text, strlen(text), message);
}

static char *encode_packet(int type, const char *nsp, int64_t id, const char *data_json,
                           size_t attachment_count)
{
    sioc__sio_packet_t packet = {0};
    packet.type = type;
    packet.nsp = (char *)nsp;
    packet.id = id;
    packet.data = data_json != NULL ? parse_json(data_json) : NULL;
    packet.attachment_count = attachment_count;
    size_t length = 0;
    char *text = sioc__sio_encode(&packet, &length);
    if (text != NULL)
        assert_int_equal(length, strlen(text));
    json_decref(packet.data);
    return text;
}

static void assert_encodes(int type, const char *nsp, int64_t id, const char *data_json,
                           size_t attachment_count, const char *expected)
{
    char *text = encode_packet(type, nsp, id, data_json, attachment_count);
    assert_non_null(text);
    assert_string_equal(text, expected);
    free(text);
}

/* Encodes one JSON value as an ACK's only argument and returns what stands between "3[" and
 * "]". */
static void assert_value_encodes(json_t *value, const char *expected)
{
    sioc__sio_packet_t packet = {0};
    packet.type = SIOC_SIO_ACK;
    packet.id = NO_ID;
    packet.data = json_array();
    assert_int_equal(json_array_append_new(packet.data, value), 0);
    char *text = sioc__sio_encode(&packet, NULL);
    assert_non_null(text);
    size_t length = strlen(text);
    assert_true(length >= 3);
    text[length - 1] = '\0';
    assert_string_equal(text + 2, expected);
    free(text);
    json_decref(packet.data);
}

static char *repeated(char character, size_t count)
{
    char *text = malloc(count + 1);
    assert_non_null(text);
    memset(text, character, count);
    text[count] = '\0';
    return text;
}

static char *concat3(const char *a, const char *b, const char *c)
{
    size_t length = strlen(a) + strlen(b) + strlen(c);
    char *text = malloc(length + 1);
    assert_non_null(text);
    strcpy(text, a);
    strcat(text, b);
    strcat(text, c);
    return text;
}

/* ---------------------------------------------------------------------------------------------
 * Decoding */

static void test_decode_protocol_examples(void **state)
{
    (void)state;
    assert_decodes("0", SIOC_SIO_CONNECT, "/", NO_ID, NULL);
    assert_decodes("0/admin,{\"token\":\"123\"}", SIOC_SIO_CONNECT, "/admin", NO_ID,
                   "{\"token\":\"123\"}");
    assert_decodes("0/admin,{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}", SIOC_SIO_CONNECT, "/admin", NO_ID,
                   "{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}");
    assert_decodes("0{}", SIOC_SIO_CONNECT, "/", NO_ID, "{}");
    assert_decodes("0/custom", SIOC_SIO_CONNECT, "/custom", NO_ID, NULL);
    assert_decodes("1", SIOC_SIO_DISCONNECT, "/", NO_ID, NULL);
    assert_decodes("1/admin,", SIOC_SIO_DISCONNECT, "/admin", NO_ID, NULL);
    assert_decodes("1/admin", SIOC_SIO_DISCONNECT, "/admin", NO_ID, NULL);
    assert_decodes("2[\"foo\"]", SIOC_SIO_EVENT, "/", NO_ID, "[\"foo\"]");
    assert_decodes("2[\"hello\",1]", SIOC_SIO_EVENT, "/", NO_ID, "[\"hello\",1]");
    assert_decodes("2/admin,[\"bar\"]", SIOC_SIO_EVENT, "/admin", NO_ID, "[\"bar\"]");
    assert_decodes("212[\"foo\"]", SIOC_SIO_EVENT, "/", 12, "[\"foo\"]");
    assert_decodes("3/admin,13[\"bar\"]", SIOC_SIO_ACK, "/admin", 13, "[\"bar\"]");
    assert_decodes("31[]", SIOC_SIO_ACK, "/", 1, "[]");
    assert_decodes("4{\"message\":\"Not authorized\"}", SIOC_SIO_CONNECT_ERROR, "/", NO_ID,
                   "{\"message\":\"Not authorized\"}");
    assert_decodes("4\"Not authorized\"", SIOC_SIO_CONNECT_ERROR, "/", NO_ID, "\"Not authorized\"");
}

static void test_decode_event_names(void **state)
{
    (void)state;
    /* "error" is not reserved: a client may emit it, and the server must survive it. */
    assert_decodes("2[\"error\"]", SIOC_SIO_EVENT, "/", NO_ID, "[\"error\"]");
    assert_decodes("2[1,\"a\"]", SIOC_SIO_EVENT, "/", NO_ID, "[1,\"a\"]");
    assert_decodes("2[1.5]", SIOC_SIO_EVENT, "/", NO_ID, "[1.5]");
    assert_decodes("2[\"connect\\u0000\"]", SIOC_SIO_EVENT, "/", NO_ID, "[\"connect\\u0000\"]");
    assert_decodes("2[\"Connect\"]", SIOC_SIO_EVENT, "/", NO_ID, "[\"Connect\"]");
}

static void test_decode_ids_and_namespaces(void **state)
{
    (void)state;
    assert_decodes("2/,[\"a\"]", SIOC_SIO_EVENT, "/", NO_ID, "[\"a\"]");
    assert_decodes("2/a,1[\"x\"]", SIOC_SIO_EVENT, "/a", 1, "[\"x\"]");
    assert_decodes("2/a/b.c,[\"x\"]", SIOC_SIO_EVENT, "/a/b.c", NO_ID, "[\"x\"]");
    /* The namespace runs to the first ',' even inside what looks like JSON, as in Node. */
    assert_refused("2/a[\"x\",1]", "invalid payload");
    /* Without a leading '/', there is no namespace: the rest must be the JSON. */
    assert_refused("2admin,[\"x\"]", "invalid payload");
}

static void test_decode_ack_ids(void **state)
{
    (void)state;
    assert_decodes("20[\"a\"]", SIOC_SIO_EVENT, "/", 0, "[\"a\"]");
    assert_decodes("2007[\"a\"]", SIOC_SIO_EVENT, "/", 7, "[\"a\"]");
    assert_decodes("29007199254740991[\"a\"]", SIOC_SIO_EVENT, "/", INT64_C(9007199254740991),
                   "[\"a\"]");
    assert_decodes("2/chat,42[\"a\"]", SIOC_SIO_EVENT, "/chat", 42, "[\"a\"]");
    /* Node reads whitespace as part of the id ("2 [..]" is id 0); here it is JSON whitespace. */
    assert_decodes("2 [\"a\"]", SIOC_SIO_EVENT, "/", NO_ID, "[\"a\"]");
    assert_decodes("2[\"a\"] \n", SIOC_SIO_EVENT, "/", NO_ID, "[\"a\"]");

    char *zeros = repeated('0', 5000);
    char *text = concat3("2", zeros, "7[\"a\"]");
    assert_decodes(text, SIOC_SIO_EVENT, "/", 7, "[\"a\"]");
    free(text);
    free(zeros);
}

static void test_decode_refuses_bad_payloads(void **state)
{
    (void)state;
    static const char *const invalid[] = {
        /* socket.io-parser test/parser.js "throw an error upon parsing error" */
        "442[\"some\",\"data\"",
        "0/admin,\"invalid\"",
        "0[]",
        "1/admin,{}",
        "2/admin,\"invalid",
        "2/admin,{}",
        "2[{\"toString\":\"foo\"}]",
        "2[true,\"foo\"]",
        "2[null,\"bar\"]",
        "2[\"connect\"]",
        "2[\"disconnect\",\"123\"]",
        /* more of the same rules */
        "2[\"connect_error\"]",
        "2[\"disconnecting\"]",
        "2[\"newListener\"]",
        "2[\"removeListener\"]",
        "2[[\"a\"]]",
        "2[]",
        "2{}",
        "2\"foo\"",
        "4abc",
        "4[]",
        "4 ",
        "3{}",
        "3\"a\"",
        "0\"x\"",
        "0null",
        "1{}",
        "1[]",
        "2[\"a\"]x",
        "2[\"a\"][\"b\"]",
        "0{}x",
        /* absent payloads: Node lets these through, the header promises a payload */
        "2",
        "3",
        "4",
        "212",
        "2/admin,",
        "51-",
        /* JSON that JSON.parse takes but jansson cannot represent */
        "2[1e400]",
        "0{\"a\\u0000b\":1}",
    };
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
        assert_refused(invalid[i], "invalid payload");

    /* Integers beyond int64 are doubles, as JSON.parse makes them. */
    sioc__sio_decoder_t decoder;
    sioc__sio_packet_t packet = {0};
    const char *error = NULL;
    sioc__sio_decoder_init(&decoder, SIOC_SIO_DEFAULT_MAX_ATTACHMENTS);
    assert_int_equal(
        add_text(&decoder, "2[\"a\",123456789012345678901234567890,7]", &packet, &error),
        SIOC_SIO_DECODE_COMPLETE);
    size_t length;
    char *encoded = sioc__sio_encode(&packet, &length);
    assert_string_equal(encoded, "2[\"a\",1.2345678901234568e+29,7]");
    free(encoded);
    sioc__sio_packet_clear(&packet);
    sioc__sio_decoder_free(&decoder);

    /* A lone surrogate escape (a client that cut an emoji in two) is U+FFFD, pairs stay
     * characters, an escaped backslash before "ud800" is text; the connection stays. */
    assert_decodes(
        "2[\"\\ud800\",\"\\udc00x\",\"a\\uDBFF\",\"\\ud83d\\ude00\\ud83d\",\"\\\\ud800\"]",
        SIOC_SIO_EVENT, "/", NO_ID,
        "[\"\\ufffd\",\"\\ufffdx\",\"a\\ufffd\",\"\\ud83d\\ude00\\ufffd\",\"\\\\ud800\"]");
    assert_decodes("21[\"\\udc00\\ud800\\u0041\",{\"\\ud800\":1}]", SIOC_SIO_EVENT, "/", 1,
                   "[\"\\ufffd\\ufffdA\",{\"\\ufffd\":1}]");

    /* Invalid UTF-8 inside a string. */
    assert_refused("2[\"\xff\"]", "invalid payload");
    /* Raw NUL bytes, which jansson would skip after a number or a literal. */
    static const char after_number[] = "2[\"a\",1\0,2]";
    assert_refused_bytes(after_number, sizeof(after_number) - 1, "invalid payload");
    static const char after_literal[] = "2[\"a\",true\0]";
    assert_refused_bytes(after_literal, sizeof(after_literal) - 1, "invalid payload");
    static const char trailing[] = "2[\"a\"]\0";
    assert_refused_bytes(trailing, sizeof(trailing) - 1, "invalid payload");
}

static void test_decode_refuses_deep_nesting(void **state)
{
    (void)state;
    /* jansson stops at 2048 levels; JSON.parse would go deeper. */
    char *open = repeated('[', 2049);
    char *close = repeated(']', 2049);
    char *text = concat3("3", open + 1, close + 1);
    assert_decodes(text, SIOC_SIO_ACK, "/", NO_ID, text + 1);
    free(text);
    text = concat3("3", open, close);
    assert_refused(text, "invalid payload");
    free(text);
    free(open);
    free(close);
}

static void test_decode_refuses_unknown_types(void **state)
{
    (void)state;
    /* socket.io-parser's messages: the type is Number() of the first character. */
    assert_refused("7", "unknown packet type 7");
    assert_refused("8", "unknown packet type 8");
    assert_refused("9[\"a\"]", "unknown packet type 9");
    assert_refused("a", "unknown packet type NaN");
    assert_refused("/", "unknown packet type NaN");
    assert_refused("\xc2", "unknown packet type NaN");
    assert_refused("\xe2\x80", "unknown packet type NaN");
    assert_refused("\xc2\xa1{}", "unknown packet type NaN");
    assert_refused_bytes("\0", 1, "unknown packet type NaN");
    assert_refused("", "Cannot read properties of undefined (reading 'base64')");
}

/* Number(" ") is 0 in JavaScript: a white-space type is a CONNECT, as socket.io-parser reads it. */
static void test_decode_reads_white_space_type_as_connect(void **state)
{
    (void)state;
    static const char *const blanks[] = {
        " ",        "\t",           "\n",           "\v",           "\f",          "\r",
        "\xc2\xa0", "\xe2\x80\x80", "\xe2\x80\xa8", "\xe3\x80\x80", "\xef\xbb\xbf"};
    for (size_t i = 0; i < sizeof(blanks) / sizeof(blanks[0]); i++) {
        char text[32];
        snprintf(text, sizeof(text), "%s/custom,{\"a\":1}", blanks[i]);
        assert_decodes(text, SIOC_SIO_CONNECT, "/custom", NO_ID, "{\"a\":1}");
        snprintf(text, sizeof(text), "%s", blanks[i]);
        assert_decodes(text, SIOC_SIO_CONNECT, "/", NO_ID, NULL);
    }
    assert_refused(" 2[\"a\"]", "invalid payload");
}

static void test_decode_refuses_bad_attachment_counts(void **state)
{
    (void)state;
    assert_refused("5", "Illegal attachments");
    assert_refused("51", "Illegal attachments");
    assert_refused("51[\"a\"]", "Illegal attachments");
    assert_refused("5a-", "Illegal attachments");
    assert_refused("51.23-", "Illegal attachments");
    assert_refused("5-[\"a\"]", "Illegal attachments");
    assert_refused("5 1-[\"a\"]", "Illegal attachments");
    assert_refused("5+1-[\"a\"]", "Illegal attachments");
    assert_refused("6-1-[\"a\"]", "Illegal attachments");
    assert_refused("511-[\"a\"]", "too many attachments");
    assert_refused("599999999999999999999999-[\"a\"]", "too many attachments");

    /* Long digit runs are scanned, never turned into a number (CVE-2020-36049). */
    char *nines = repeated('9', 100000);
    char *text = concat3("5", nines, "-[\"a\"]");
    assert_refused(text, "too many attachments");
    free(text);
    text = concat3("5", nines, "[\"a\"]");
    assert_refused(text, "Illegal attachments");
    free(text);
    free(nines);
}

static void test_decode_refuses_bad_placeholders(void **state)
{
    (void)state;
    static const char *const invalid[] = {
        "51-[\"hello\",{\"_placeholder\":true,\"num\":\"splice\"}]", /* CVE-2022-2421 */
        "51-[\"a\",{\"_placeholder\":true,\"num\":-1}]",
        "51-[\"a\",{\"_placeholder\":true,\"num\":1.5}]",
        "51-[\"a\",{\"_placeholder\":true,\"num\":0.5}]",
        "51-[\"a\",{\"_placeholder\":true,\"num\":1}]",
        "52-[\"a\",{\"_placeholder\":true,\"num\":2}]",
        "51-[\"a\",{\"_placeholder\":true,\"num\":1e300}]",
        "51-[\"a\",{\"_placeholder\":true,\"num\":9223372036854775807}]",
        "51-[\"a\",{\"_placeholder\":true}]",
        "51-[\"a\",{\"_placeholder\":true,\"num\":null}]",
        "51-[\"a\",{\"_placeholder\":true,\"num\":[0]}]",
        "51-[\"a\",{\"_placeholder\":true,\"num\":true}]",
        "51-[\"a\",{\"deep\":[1,{\"x\":{\"_placeholder\":true,\"num\":1}}]}]",
        "61-[{\"_placeholder\":true,\"num\":\"0\"}]",
    };
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
        assert_refused(invalid[i], "illegal attachments");
    /* A placeholder as the event name is no event name. */
    assert_refused("51-[{\"_placeholder\":true,\"num\":0}]", "invalid payload");
}

static void test_decode_refuses_bad_ack_ids(void **state)
{
    (void)state;
    assert_refused("29007199254740992[\"a\"]", "invalid ack id");
    assert_refused("2123456789012345678901234567890[\"a\"]", "invalid ack id");
    char *nines = repeated('9', 100000);
    char *text = concat3("3", nines, "[]");
    assert_refused(text, "invalid ack id");
    free(text);
    free(nines);
}

static void test_decode_namespace_limits(void **state)
{
    (void)state;
    char *name = repeated('n', 255);
    name[0] = '/';
    char *text = concat3("2", name, ",[\"a\"]");
    assert_decodes(text, SIOC_SIO_EVENT, name, NO_ID, "[\"a\"]");
    free(text);
    text = concat3("1", name, "");
    assert_decodes(text, SIOC_SIO_DISCONNECT, name, NO_ID, NULL);
    free(text);
    free(name);

    name = repeated('n', 257);
    name[0] = '/';
    text = concat3("2", name, ",[\"a\"]");
    assert_refused(text, "invalid namespace");
    free(text);
    text = concat3("1", name, "");
    assert_refused(text, "invalid namespace");
    free(text);
    free(name);

    /* A NUL byte would cut the C string short and name another namespace. */
    static const char with_nul[] = "2/admin\0x,[\"a\"]";
    assert_refused_bytes(with_nul, sizeof(with_nul) - 1, "invalid namespace");
}

static void test_decode_custom_namespace_limit(void **state)
{
    (void)state;
    sioc__sio_decoder_t decoder;
    sioc__sio_packet_t packet = {0};
    const char *error;
    sioc__sio_decoder_init(&decoder, SIOC_SIO_DEFAULT_MAX_ATTACHMENTS);
    decoder.max_nsp_length = 4;
    assert_int_equal(add_text(&decoder, "1/abc,", &packet, &error), SIOC_SIO_DECODE_COMPLETE);
    assert_string_equal(packet.nsp, "/abc");
    sioc__sio_packet_clear(&packet);
    assert_int_equal(add_text(&decoder, "1/abcd,", &packet, &error), SIOC_SIO_DECODE_ERROR);
    assert_string_equal(error, "invalid namespace");
    sioc__sio_decoder_free(&decoder);
}

static void test_decode_binary_one_attachment_at_a_time(void **state)
{
    (void)state;
    sioc__sio_decoder_t decoder;
    sioc__sio_packet_t packet = {0};
    const char *error;
    const char *text = "52-/admin,[\"upload\",{\"_placeholder\":true,\"num\":0},"
                       "{\"nested\":[{\"_placeholder\":true,\"num\":1}]}]";
    sioc__sio_decoder_init(&decoder, SIOC_SIO_DEFAULT_MAX_ATTACHMENTS);

    assert_int_equal(add_text(&decoder, text, &packet, &error), SIOC_SIO_DECODE_PENDING);
    assert_int_equal(decoder.has_pending, 1);
    assert_null(packet.nsp);

    char first[] = "\x01\x02\x03";
    assert_int_equal(add_binary(&decoder, first, &packet, &error), SIOC_SIO_DECODE_PENDING);
    assert_null(packet.nsp);
    first[0] = 'X'; /* the decoder must have copied it */
    assert_int_equal(sioc__sio_decoder_add_binary(&decoder, NULL, 0, &packet, &error),
                     SIOC_SIO_DECODE_COMPLETE);
    assert_int_equal(decoder.has_pending, 0);
    assert_int_equal(decoder.received, 0);

    assert_packet(&packet, SIOC_SIO_BINARY_EVENT, "/admin", NO_ID,
                  "[\"upload\",{\"_placeholder\":true,\"num\":0},"
                  "{\"nested\":[{\"_placeholder\":true,\"num\":1}]}]");
    assert_int_equal(packet.attachment_count, 2);
    assert_non_null(packet.attachments);
    assert_int_equal(packet.attachments[0].length, 3);
    assert_memory_equal(packet.attachments[0].data, "\x01\x02\x03", 3);
    assert_int_equal(packet.attachments[1].length, 0);
    assert_non_null(packet.attachments[1].data);
    sioc__sio_packet_clear(&packet);
    assert_null(packet.attachments);
    assert_int_equal(packet.attachment_count, 0);

    /* The decoder goes on with the next packet. */
    assert_int_equal(add_text(&decoder, "61-/admin,15[\"bar\",{\"_placeholder\":true,\"num\":0}]",
                              &packet, &error),
                     SIOC_SIO_DECODE_PENDING);
    assert_int_equal(add_binary(&decoder, "xyz", &packet, &error), SIOC_SIO_DECODE_COMPLETE);
    assert_packet(&packet, SIOC_SIO_BINARY_ACK, "/admin", 15,
                  "[\"bar\",{\"_placeholder\":true,\"num\":0}]");
    assert_int_equal(packet.attachment_count, 1);
    assert_memory_equal(packet.attachments[0].data, "xyz", 3);
    sioc__sio_packet_clear(&packet);
    sioc__sio_decoder_free(&decoder);
}

static void test_decode_binary_without_attachments_is_refused(void **state)
{
    (void)state;
    sioc__sio_decoder_t decoder;
    sioc__sio_packet_t packet = {0};
    const char *error;
    sioc__sio_decoder_init(&decoder, SIOC_SIO_DEFAULT_MAX_ATTACHMENTS);
    /* socket.io-parser 4.2.7: a binary packet announces at least one attachment. */
    assert_int_equal(add_text(&decoder, "50-[\"a\",1]", &packet, &error), SIOC_SIO_DECODE_ERROR);
    assert_string_equal(error, "Illegal attachments");
    assert_int_equal(add_text(&decoder, "60-0[]", &packet, &error), SIOC_SIO_DECODE_ERROR);
    assert_string_equal(error, "Illegal attachments");
    assert_int_equal(
        add_text(&decoder, "50-[\"a\",{\"_placeholder\":true,\"num\":0}]", &packet, &error),
        SIOC_SIO_DECODE_ERROR);
    assert_int_equal(decoder.has_pending, 0);
    /* Nothing is left waiting: text goes on, a stray binary is refused. */
    assert_int_equal(add_text(&decoder, "2[\"a\"]", &packet, &error), SIOC_SIO_DECODE_COMPLETE);
    sioc__sio_packet_clear(&packet);
    assert_int_equal(add_binary(&decoder, "x", &packet, &error), SIOC_SIO_DECODE_ERROR);
    assert_string_equal(error, "got binary data when not reconstructing a packet");
    sioc__sio_decoder_free(&decoder);
}

static void test_decode_plaintext_while_pending_resets(void **state)
{
    (void)state;
    sioc__sio_decoder_t decoder;
    sioc__sio_packet_t packet = {0};
    const char *error;
    sioc__sio_decoder_init(&decoder, SIOC_SIO_DEFAULT_MAX_ATTACHMENTS);
    assert_int_equal(
        add_text(&decoder, "52-[\"a\",{\"_placeholder\":true,\"num\":1}]", &packet, &error),
        SIOC_SIO_DECODE_PENDING);
    assert_int_equal(add_binary(&decoder, "first", &packet, &error), SIOC_SIO_DECODE_PENDING);

    assert_int_equal(add_text(&decoder, "2[\"a\"]", &packet, &error), SIOC_SIO_DECODE_ERROR);
    assert_string_equal(error, "got plaintext data when reconstructing a packet");
    assert_int_equal(decoder.has_pending, 0);
    assert_int_equal(decoder.received, 0);
    assert_null(decoder.pending); /* and with it its attachments */
    assert_null(packet.nsp);

    /* The half-built packet is gone: a binary message is now out of place... */
    assert_int_equal(add_binary(&decoder, "second", &packet, &error), SIOC_SIO_DECODE_ERROR);
    assert_string_equal(error, "got binary data when not reconstructing a packet");
    /* ...and text decodes again. */
    assert_int_equal(add_text(&decoder, "2[\"a\"]", &packet, &error), SIOC_SIO_DECODE_COMPLETE);
    assert_packet(&packet, SIOC_SIO_EVENT, "/", NO_ID, "[\"a\"]");
    sioc__sio_packet_clear(&packet);
    sioc__sio_decoder_free(&decoder);
}

static void test_decoder_free_drops_pending_packet(void **state)
{
    (void)state;
    sioc__sio_decoder_t decoder;
    sioc__sio_packet_t packet = {0};
    const char *error;
    sioc__sio_decoder_init(&decoder, SIOC_SIO_DEFAULT_MAX_ATTACHMENTS);
    assert_int_equal(add_text(&decoder, "53-/x,[\"a\"]", &packet, &error), SIOC_SIO_DECODE_PENDING);
    assert_int_equal(add_binary(&decoder, "one", &packet, &error), SIOC_SIO_DECODE_PENDING);
    sioc__sio_decoder_free(&decoder); /* LeakSanitizer checks that nothing is left */
    assert_int_equal(decoder.has_pending, 0);
    assert_null(decoder.pending);
    assert_int_equal(add_text(&decoder, "1", &packet, &error), SIOC_SIO_DECODE_COMPLETE);
    sioc__sio_packet_clear(&packet);
    sioc__sio_decoder_free(&decoder);
}

static void test_decode_max_attachments_setting(void **state)
{
    (void)state;
    sioc__sio_decoder_t decoder;
    sioc__sio_packet_t packet = {0};
    const char *error;
    sioc__sio_decoder_init(&decoder, 2);
    assert_int_equal(
        add_text(&decoder,
                 "53-[\"hello\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":"
                 "1},{\"_placeholder\":true,\"num\":2}]",
                 &packet, &error),
        SIOC_SIO_DECODE_ERROR);
    assert_string_equal(error, "too many attachments");
    assert_int_equal(add_text(&decoder, "52-[\"a\"]", &packet, &error), SIOC_SIO_DECODE_PENDING);
    sioc__sio_decoder_free(&decoder);

    sioc__sio_decoder_init(&decoder, 0);
    assert_int_equal(add_text(&decoder, "51-[\"a\"]", &packet, &error), SIOC_SIO_DECODE_ERROR);
    assert_string_equal(error, "too many attachments");
    assert_int_equal(add_text(&decoder, "50-[\"a\"]", &packet, &error), SIOC_SIO_DECODE_ERROR);
    sioc__sio_decoder_free(&decoder);

    /* Leading zeros are allowed, as Number("0001") is 1; the count does not grow with them. */
    sioc__sio_decoder_init(&decoder, SIOC_SIO_DEFAULT_MAX_ATTACHMENTS);
    char *zeros = repeated('0', 100000);
    char *text = concat3("5", zeros, "1-[\"a\"]");
    assert_int_equal(add_text(&decoder, text, &packet, &error), SIOC_SIO_DECODE_PENDING);
    assert_int_equal(decoder.pending->attachment_count, 1);
    assert_int_equal(add_binary(&decoder, "b", &packet, &error), SIOC_SIO_DECODE_COMPLETE);
    assert_int_equal(packet.attachment_count, 1);
    sioc__sio_packet_clear(&packet);
    free(text);
    free(zeros);
    sioc__sio_decoder_free(&decoder);
}

static void test_decode_placeholder_forms(void **state)
{
    (void)state;
    sioc__sio_decoder_t decoder;
    sioc__sio_packet_t packet = {0};
    const char *error;
    sioc__sio_decoder_init(&decoder, SIOC_SIO_DEFAULT_MAX_ATTACHMENTS);

    /* 0.0 and 1e0 are the JavaScript numbers 0 and 1: kept, rewritten as integers. */
    assert_int_equal(add_text(&decoder,
                              "52-[\"a\",{\"_placeholder\":true,\"num\":0.0},"
                              "{\"_placeholder\":true,\"num\":1e0,\"extra\":\"kept\"}]",
                              &packet, &error),
                     SIOC_SIO_DECODE_PENDING);
    assert_int_equal(add_binary(&decoder, "x", &packet, &error), SIOC_SIO_DECODE_PENDING);
    assert_int_equal(add_binary(&decoder, "y", &packet, &error), SIOC_SIO_DECODE_COMPLETE);
    json_t *num = json_object_get(json_array_get(packet.data, 1), "num");
    assert_true(json_is_integer(num));
    assert_int_equal(json_integer_value(num), 0);
    num = json_object_get(json_array_get(packet.data, 2), "num");
    assert_true(json_is_integer(num));
    assert_int_equal(json_integer_value(num), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(packet.data, 2), "extra")),
                        "kept");
    sioc__sio_packet_clear(&packet);

    /* Only _placeholder === true makes a placeholder. */
    assert_int_equal(add_text(&decoder,
                              "51-[\"a\",{\"_placeholder\":false,\"num\":\"splice\"},"
                              "{\"_placeholder\":\"true\",\"num\":-1},{\"_placeholder\":1},"
                              "{\"_placeholder\":true,\"num\":0}]",
                              &packet, &error),
                     SIOC_SIO_DECODE_PENDING);
    assert_int_equal(add_binary(&decoder, "x", &packet, &error), SIOC_SIO_DECODE_COMPLETE);
    sioc__sio_packet_clear(&packet);

    /* Plain EVENT/ACK packets have no attachments; Node never looks at placeholders there. */
    assert_int_equal(
        add_text(&decoder, "2[\"a\",{\"_placeholder\":true,\"num\":\"splice\"}]", &packet, &error),
        SIOC_SIO_DECODE_COMPLETE);
    assert_int_equal(packet.attachment_count, 0);
    sioc__sio_packet_clear(&packet);
    sioc__sio_decoder_free(&decoder);
}

/* ---------------------------------------------------------------------------------------------
 * Encoding */

static void test_encode_protocol_examples(void **state)
{
    (void)state;
    assert_encodes(SIOC_SIO_EVENT, "/", NO_ID, "[\"hello\",1]", 0, "2[\"hello\",1]");
    assert_encodes(SIOC_SIO_EVENT, "/admin", NO_ID, "[\"bar\"]", 0, "2/admin,[\"bar\"]");
    assert_encodes(SIOC_SIO_EVENT, NULL, 12, "[\"foo\"]", 0, "212[\"foo\"]");
    assert_encodes(SIOC_SIO_ACK, "/admin", 13, "[\"bar\"]", 0, "3/admin,13[\"bar\"]");
    assert_encodes(SIOC_SIO_BINARY_EVENT, "/", NO_ID, "[\"baz\",{\"_placeholder\":true,\"num\":0}]",
                   1, "51-[\"baz\",{\"_placeholder\":true,\"num\":0}]");
    assert_encodes(SIOC_SIO_BINARY_ACK, "/admin", 15, "[\"bar\",{\"_placeholder\":true,\"num\":0}]",
                   1, "61-/admin,15[\"bar\",{\"_placeholder\":true,\"num\":0}]");
    assert_encodes(SIOC_SIO_BINARY_EVENT, "/", NO_ID, "[\"a\"]", 0, "50-[\"a\"]");
    assert_encodes(SIOC_SIO_BINARY_EVENT, "/", NO_ID, "[\"a\"]", 12, "512-[\"a\"]");
    assert_encodes(SIOC_SIO_CONNECT, "/admin", NO_ID, "{\"sid\":\"x\"}", 0,
                   "0/admin,{\"sid\":\"x\"}");
    assert_encodes(SIOC_SIO_CONNECT, "/", NO_ID, "{\"sid\":\"x\",\"pid\":\"y\"}", 0,
                   "0{\"sid\":\"x\",\"pid\":\"y\"}");
    assert_encodes(SIOC_SIO_CONNECT, NULL, NO_ID, NULL, 0, "0");
    assert_encodes(SIOC_SIO_DISCONNECT, "/admin", NO_ID, NULL, 0, "1/admin,");
    assert_encodes(SIOC_SIO_DISCONNECT, "/", NO_ID, NULL, 0, "1");
    assert_encodes(SIOC_SIO_CONNECT_ERROR, "/", NO_ID, "{\"message\":\"Not authorized\"}", 0,
                   "4{\"message\":\"Not authorized\"}");
    assert_encodes(SIOC_SIO_CONNECT_ERROR, "/random", NO_ID, "{\"message\":\"Invalid namespace\"}",
                   0, "4/random,{\"message\":\"Invalid namespace\"}");
    assert_encodes(SIOC_SIO_ACK, "/", 0, "[]", 0, "30[]");
    assert_encodes(SIOC_SIO_ACK, "/", INT64_C(9007199254740991), "[]", 0, "39007199254740991[]");
    /* Node skips the namespace when it is empty and the data when it is null. */
    assert_encodes(SIOC_SIO_EVENT, "", NO_ID, "[\"a\"]", 0, "2[\"a\"]");
    assert_encodes(SIOC_SIO_CONNECT, "/", NO_ID, "null", 0, "0");
}

static void test_encode_refusals(void **state)
{
    (void)state;
    assert_null(encode_packet(7, "/", NO_ID, "[\"a\"]", 0));
    assert_null(encode_packet(-1, "/", NO_ID, "[\"a\"]", 0));
    assert_null(encode_packet(SIOC_SIO_EVENT, "/a,b", NO_ID, "[\"a\"]", 0));
    assert_null(encode_packet(SIOC_SIO_EVENT, "/", -2, "[\"a\"]", 0));
    assert_null(encode_packet(SIOC_SIO_EVENT, "/", INT64_C(9007199254740992), "[\"a\"]", 0));

    /* Nesting: what jansson can parse is writable; one level more (or a cycle) is not. */
    char *open = repeated('[', 2048);
    char *close = repeated(']', 2048);
    char *json = concat3(open, close, "");
    sioc__sio_packet_t packet = {0};
    packet.type = SIOC_SIO_ACK;
    packet.id = NO_ID;
    packet.data = parse_json(json);
    char *text = sioc__sio_encode(&packet, NULL);
    assert_non_null(text);
    assert_string_equal(text + 1, json);
    free(text);
    json_t *outer = json_array();
    json_array_append_new(outer, packet.data);
    packet.data = outer;
    assert_null(sioc__sio_encode(&packet, NULL));
    json_decref(outer);
    free(json);
    free(open);
    free(close);
}

static void test_encode_strings_like_json_stringify(void **state)
{
    (void)state;
    /* JSON.stringify("a/b\u001f\u007f\u00e9\u2028 \b\f\n\r\t\"\\\u0000\u000b") */
    static const char source[] = "a/b\x1f\x7f\xc3\xa9\xe2\x80\xa8 \b\f\n\r\t\"\\\0\x0b";
    assert_value_encodes(json_stringn(source, sizeof(source) - 1),
                         "\"a/b\\u001f\x7f\xc3\xa9\xe2\x80\xa8 \\b\\f\\n\\r\\t\\\"\\\\\\u0000"
                         "\\u000b\"");
    assert_value_encodes(json_string(""), "\"\"");
    assert_value_encodes(json_string("\xf0\x9f\x98\x80"), "\"\xf0\x9f\x98\x80\"");

    json_t *object = json_object();
    json_object_setn_new(object, "k\0ey", 4, json_string("</script>"));
    assert_value_encodes(object, "{\"k\\u0000ey\":\"</script>\"}");
}

struct number_case {
    double value;
    const char *json_stringify;
};

static void test_encode_numbers_like_json_stringify(void **state)
{
    (void)state;
    static const struct number_case cases[] = {
        {1.5, "1.5"},
        {0.1, "0.1"},
        {0.3, "0.3"},
        {4.35, "4.35"},
        {3.0, "3"},
        {-0.0, "0"},
        {100.0, "100"},
        {1e6, "1000000"},
        {123456.789, "123456.789"},
        {-2.5, "-2.5"},
        {0.000001, "0.000001"},
        {0.0000012, "0.0000012"},
        {1e-7, "1e-7"},
        {123e-20, "1.23e-18"},
        {5e-324, "5e-324"},
        {9007199254740992.0, "9007199254740992"},
        {9.2e18, "9200000000000000000"},
        {1e21, "1e+21"},
        {1e300, "1e+300"},
        {-1e-300, "-1e-300"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_value_encodes(json_real(cases[i].value), cases[i].json_stringify);

    assert_value_encodes(json_integer(0), "0");
    assert_value_encodes(json_integer(-42), "-42");
    /* Beyond 2^53 an integer is written as the double a JavaScript peer would hold. */
    assert_value_encodes(json_integer(INT64_MAX), "9223372036854776000");
    assert_value_encodes(json_integer(9007199254740993), "9007199254740992");
    assert_value_encodes(json_integer(9007199254740991), "9007199254740991");
    assert_value_encodes(json_integer(INT64_MIN), "-9223372036854776000");
    assert_value_encodes(json_integer(-9007199254740991), "-9007199254740991");
    assert_value_encodes(json_integer(-9007199254740993), "-9007199254740992");
    assert_value_encodes(json_integer(1234567890), "1234567890");
    assert_value_encodes(json_true(), "true");
    assert_value_encodes(json_false(), "false");
    assert_value_encodes(json_null(), "null");
}

/* JSON.stringify writes integral doubles below 1e21 in plain digits (shortest digits, then
 * zeros); the decoder reads such literals back as doubles. */
static void test_encode_huge_integral_reals_as_javascript(void **state)
{
    (void)state;
    assert_value_encodes(json_real(1e20), "100000000000000000000");
    assert_value_encodes(json_real(-1e19), "-10000000000000000000");
    assert_value_encodes(json_real(9223372036854775808.0), "9223372036854776000");
    assert_value_encodes(json_real(18446744073709551616.0), "18446744073709552000");
    assert_value_encodes(json_real(123456789012345678901.0), "123456789012345680000");
    assert_value_encodes(json_real(1e21), "1e+21");
}

static void test_encode_key_order_like_javascript(void **state)
{
    (void)state;
    /* JSON.stringify(JSON.parse(same)): array-index keys first, ascending; then insertion order */
    json_t *object = parse_json("{\"b\":1,\"2\":2,\"1\":3,\"01\":4,\"4294967295\":5,"
                                "\"4294967294\":6,\"-1\":7,\"a\":{\"10\":0,\"9\":0}}");
    assert_value_encodes(object, "{\"1\":3,\"2\":2,\"4294967294\":6,\"b\":1,\"01\":4,"
                                 "\"4294967295\":5,\"-1\":7,\"a\":{\"9\":0,\"10\":0}}");
    /* Duplicate keys: first position, last value, as JSON.parse. */
    assert_value_encodes(parse_json("{\"b\":1,\"a\":2,\"b\":3}"), "{\"b\":3,\"a\":2}");
    assert_value_encodes(json_object(), "{}");
    assert_value_encodes(json_array(), "[]");
}

/* ---------------------------------------------------------------------------------------------
 * Round trips */

/* Decodes text (feeding attachment_count one-byte attachments), encodes the packet again and
 * expects the very same text. */
static void assert_round_trip(const char *text)
{
    sioc__sio_decoder_t decoder;
    sioc__sio_packet_t packet = {0};
    const char *error;
    sioc__sio_decoder_init(&decoder, SIOC_SIO_DEFAULT_MAX_ATTACHMENTS);
    int result = add_text(&decoder, text, &packet, &error);
    while (result == SIOC_SIO_DECODE_PENDING)
        result = add_binary(&decoder, "z", &packet, &error);
    if (result != SIOC_SIO_DECODE_COMPLETE)
        fail_msg("%s: %s", text, error);
    size_t length;
    char *encoded = sioc__sio_encode(&packet, &length);
    assert_non_null(encoded);
    assert_string_equal(encoded, text);
    assert_int_equal(length, strlen(text));
    free(encoded);
    sioc__sio_packet_clear(&packet);
    sioc__sio_decoder_free(&decoder);
}

static void test_round_trips(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "0",
        "0/admin,{\"token\":\"123\"}",
        "1",
        "1/admin,",
        "2[\"hello\",1]",
        "2/admin,[\"bar\"]",
        "212[\"foo\"]",
        "3/admin,13[\"bar\"]",
        "30[]",
        "4{\"message\":\"Not authorized\"}",
        "4/x,\"refused\"",
        "51-[\"baz\",{\"_placeholder\":true,\"num\":0}]",
        "61-/admin,15[\"bar\",{\"_placeholder\":true,\"num\":0}]",
        ("53-[\"a\",{\"_placeholder\":true,\"num\":2},[{\"_placeholder\":true,\"num\":0}],"
         "{\"k\":{\"_placeholder\":true,\"num\":1}}]"),
        "2[\"types\",null,true,false,-1,0.5,1e-7,1e+21,\"\\u0000\\n\\u001f/\",{},[]]",
        "2[\"order\",{\"1\":3,\"z\":1,\"a\":2}]",
        "2[\"\xc3\xa9\xe2\x80\xa8\xf0\x9f\x98\x80\"]",
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        assert_round_trip(texts[i]);
}

/* Built in C, encoded, decoded: the same packet comes back. */
static void test_encode_then_decode(void **state)
{
    (void)state;
    sioc__sio_packet_t packet = {0};
    packet.type = SIOC_SIO_EVENT;
    packet.nsp = "/chat";
    packet.id = 99;
    packet.data = json_pack("[s, {s: f, s: I, s: s#}]", "message", "ratio", 0.25, "big",
                            (json_int_t)9007199254740991, "bytes", "a\0b", (int)3);
    assert_non_null(packet.data);
    char *text = sioc__sio_encode(&packet, NULL);
    assert_non_null(text);

    sioc__sio_decoder_t decoder;
    sioc__sio_packet_t decoded = {0};
    const char *error;
    sioc__sio_decoder_init(&decoder, SIOC_SIO_DEFAULT_MAX_ATTACHMENTS);
    assert_int_equal(add_text(&decoder, text, &decoded, &error), SIOC_SIO_DECODE_COMPLETE);
    assert_int_equal(decoded.type, SIOC_SIO_EVENT);
    assert_string_equal(decoded.nsp, "/chat");
    assert_true(decoded.id == 99);
    assert_true(json_equal(decoded.data, packet.data));
    sioc__sio_packet_clear(&decoded);
    sioc__sio_decoder_free(&decoder);
    free(text);
    json_decref(packet.data);
}

/* ---------------------------------------------------------------------------------------------
 * Small pieces */

static void test_reserved_event_names(void **state)
{
    (void)state;
    assert_true(sioc__sio_is_reserved_event("connect", 7));
    assert_true(sioc__sio_is_reserved_event("connect_error", 13));
    assert_true(sioc__sio_is_reserved_event("disconnect", 10));
    assert_true(sioc__sio_is_reserved_event("disconnecting", 13));
    assert_true(sioc__sio_is_reserved_event("newListener", 11));
    assert_true(sioc__sio_is_reserved_event("removeListener", 14));
    assert_false(sioc__sio_is_reserved_event("error", 5));
    assert_false(sioc__sio_is_reserved_event("connec", 6));
    assert_false(sioc__sio_is_reserved_event("connect\0", 8));
    assert_false(sioc__sio_is_reserved_event("connected", 9));
    assert_false(sioc__sio_is_reserved_event("", 0));
}

static void test_packet_clear_on_zeroed_packet(void **state)
{
    (void)state;
    sioc__sio_packet_t packet;
    memset(&packet, 0, sizeof(packet));
    sioc__sio_packet_clear(&packet);
    sioc__sio_packet_clear(&packet);
    assert_null(packet.nsp);
    assert_null(packet.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_protocol_examples),
        cmocka_unit_test(test_decode_event_names),
        cmocka_unit_test(test_decode_ids_and_namespaces),
        cmocka_unit_test(test_decode_ack_ids),
        cmocka_unit_test(test_decode_refuses_bad_payloads),
        cmocka_unit_test(test_decode_refuses_deep_nesting),
        cmocka_unit_test(test_decode_reads_white_space_type_as_connect),
        cmocka_unit_test(test_decode_refuses_unknown_types),
        cmocka_unit_test(test_decode_refuses_bad_attachment_counts),
        cmocka_unit_test(test_decode_refuses_bad_placeholders),
        cmocka_unit_test(test_decode_refuses_bad_ack_ids),
        cmocka_unit_test(test_decode_namespace_limits),
        cmocka_unit_test(test_decode_custom_namespace_limit),
        cmocka_unit_test(test_decode_binary_one_attachment_at_a_time),
        cmocka_unit_test(test_decode_binary_without_attachments_is_refused),
        cmocka_unit_test(test_decode_plaintext_while_pending_resets),
        cmocka_unit_test(test_decoder_free_drops_pending_packet),
        cmocka_unit_test(test_decode_max_attachments_setting),
        cmocka_unit_test(test_decode_placeholder_forms),
        cmocka_unit_test(test_encode_protocol_examples),
        cmocka_unit_test(test_encode_refusals),
        cmocka_unit_test(test_encode_strings_like_json_stringify),
        cmocka_unit_test(test_encode_numbers_like_json_stringify),
        cmocka_unit_test(test_encode_huge_integral_reals_as_javascript),
        cmocka_unit_test(test_encode_key_order_like_javascript),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_encode_then_decode),
        cmocka_unit_test(test_reserved_event_names),
        cmocka_unit_test(test_packet_clear_on_zeroed_packet),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
