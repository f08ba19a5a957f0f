/* The pass-through JSON scanner against jansson (differential).
 *
 * Input: any bytes, taken as a JSON text. The scanner must accept exactly what the Socket.IO
 * decoder accepts (sioc__sio_json_load: no raw NUL, json_loadb with JSON_DECODE_ANY |
 * JSON_ALLOW_NUL, again with integers as reals on an overflow, lone surrogates as U+FFFD); a text
 * it calls canonical must be byte for byte what the encoder writes for jansson's value; as an
 * event, the name's bytes and the arguments' range must give jansson's name and arguments. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "socketio/sio_parser.h"
#include "socketio/sio_scan.h"

static void check_canonical(const char *text, size_t length, json_t *value)
{
    if (json_is_null(value))
        return; /* the encoder writes no payload for null */
    sioc__sio_packet_t packet = {
        .type = SIOC_SIO_CONNECT_ERROR, .id = SIOC_SIO_NO_ACK_ID, .data = value};
    size_t encoded_length;
    char *encoded = sioc__sio_encode(&packet, &encoded_length);
    if (encoded == NULL || encoded_length != length + 1 || memcmp(encoded + 1, text, length) != 0)
        abort();
    free(encoded);
}

static void check_event(const char *text, size_t length, json_t *value, int as_real, int canonical)
{
    sioc__sio_scan_t scan;
    int accepted = sioc__sio_scan_event(text, length, &scan) == 0;
    json_t *name = json_array_get(value, 0);
    int expected = json_is_array(value) && (json_is_string(name) || json_is_number(name));
    if (accepted != expected)
        abort();
    if (!accepted)
        return;
    if (scan.canonical != canonical || scan.name_is_string != json_is_string(name))
        abort();
    if (scan.name_is_string && !scan.name_escaped &&
        (json_string_length(name) != scan.name_length ||
         memcmp(json_string_value(name), text + scan.name_start, scan.name_length) != 0))
        abort();
    char *args_text = malloc(scan.args_length + 2);
    if (args_text == NULL)
        return;
    args_text[0] = '[';
    memcpy(args_text + 1, text + scan.args_start, scan.args_length);
    args_text[scan.args_length + 1] = ']';
    json_t *args = sioc__sio_json_load(args_text, scan.args_length + 2,
                                       as_real ? JSON_DECODE_INT_AS_REAL : 0, NULL);
    json_t *expected_args = json_array();
    for (size_t i = 1; i < json_array_size(value); i++)
        json_array_append(expected_args, json_array_get(value, i));
    if (!json_equal(args, expected_args))
        abort();
    json_decref(args);
    json_decref(expected_args);
    free(args_text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    int as_real;
    json_t *value = sioc__sio_json_load(text, size, 0, &as_real);
    int canonical = -1;
    int accepted = sioc__sio_scan_json(text, size, &canonical) == 0;
    if (accepted != (value != NULL))
        abort();
    if (accepted && canonical)
        check_canonical(text, size, value);
    check_event(text, size, value, as_real, accepted ? canonical : 0);
    json_decref(value);
    return 0;
}
