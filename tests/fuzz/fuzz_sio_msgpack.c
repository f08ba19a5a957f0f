/* socket.io-msgpack-parser decoder and encoder.
 *
 * Input: one Engine.IO binary message. A refusal must name its reason and leave the packet
 * zeroed. A decoded packet is checked for the promises of sio_msgpack.h, encoded, decoded again
 * and compared, then encoded once more, which must give the same bytes. The comparison follows
 * placeholders to the bytes they stand for: the encoder writes object members in JavaScript's
 * order (index keys first), so the bins of the second decoding may be numbered differently. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "socketio/sio_msgpack.h"

#define MAX_SAFE_INTEGER INT64_C(9007199254740991)

struct side {
    const json_t *value;
    const sioc__sio_packet_t *packet;
};

/* The attachment a placeholder of the decoder stands for, or NULL. */
static const sioc__sio_attachment_t *attachment_of(const json_t *value,
                                                   const sioc__sio_packet_t *packet)
{
    if (!json_is_true(json_object_get(value, "_placeholder")))
        return NULL;
    json_int_t num = json_integer_value(json_object_get(value, "num"));
    if (json_object_size(value) != 2 || num < 0 || (size_t)num >= packet->attachment_count)
        abort(); /* the decoder writes no other placeholder */
    return &packet->attachments[num];
}

static int values_equal(struct side a, struct side b);

static int arrays_equal(struct side a, struct side b)
{
    if (json_array_size(a.value) != json_array_size(b.value))
        return 0;
    for (size_t i = 0; i < json_array_size(a.value); i++) {
        struct side element_a = {json_array_get(a.value, i), a.packet};
        struct side element_b = {json_array_get(b.value, i), b.packet};
        if (!values_equal(element_a, element_b))
            return 0;
    }
    return 1;
}

static int objects_equal(struct side a, struct side b)
{
    const sioc__sio_attachment_t *attachment_a = attachment_of(a.value, a.packet);
    const sioc__sio_attachment_t *attachment_b = attachment_of(b.value, b.packet);
    if (attachment_a != NULL || attachment_b != NULL)
        return attachment_a != NULL && attachment_b != NULL &&
               attachment_a->length == attachment_b->length &&
               memcmp(attachment_a->data, attachment_b->data, attachment_a->length) == 0;
    if (json_object_size(a.value) != json_object_size(b.value))
        return 0;
    json_t *object = (json_t *)a.value;
    for (void *it = json_object_iter(object); it != NULL; it = json_object_iter_next(object, it)) {
        struct side member_a = {json_object_iter_value(it), a.packet};
        struct side member_b = {
            json_object_getn(b.value, json_object_iter_key(it), json_object_iter_key_len(it)),
            b.packet};
        if (member_b.value == NULL || !values_equal(member_a, member_b))
            return 0;
    }
    return 1;
}

/* json_equal(), with placeholders compared by their attachments. Integers and reals stay apart:
 * the decoder turns every integral number into an integer, so a round trip keeps the kind. */
static int values_equal(struct side a, struct side b)
{
    if (a.value == NULL || b.value == NULL)
        return a.value == b.value;
    if (json_typeof(a.value) != json_typeof(b.value))
        return 0;
    if (json_is_array(a.value))
        return arrays_equal(a, b);
    if (json_is_object(a.value))
        return objects_equal(a, b);
    return json_equal((json_t *)a.value, (json_t *)b.value);
}

static void check_packet_shape(const sioc__sio_packet_t *packet)
{
    if (packet->type < SIOC_SIO_CONNECT || packet->type > SIOC_SIO_BINARY_ACK)
        abort();
    int is_binary = packet->type == SIOC_SIO_BINARY_EVENT || packet->type == SIOC_SIO_BINARY_ACK;
    int may_carry_bins = packet->type == SIOC_SIO_CONNECT || packet->type == SIOC_SIO_CONNECT_ERROR;
    if (is_binary != (packet->attachment_count > 0) && !may_carry_bins)
        abort();
    if (packet->nsp == NULL || strlen(packet->nsp) > SIOC_SIO_MSGPACK_MAX_NSP_LENGTH)
        abort();
    if (packet->id != SIOC_SIO_NO_ACK_ID && (packet->id < 0 || packet->id > MAX_SAFE_INTEGER))
        abort();
    if (packet->attachment_count > SIOC_SIO_DEFAULT_MAX_ATTACHMENTS)
        abort();
    for (size_t i = 0; i < packet->attachment_count; i++) {
        if (packet->attachments[i].data == NULL)
            abort();
    }
    if ((packet->type == SIOC_SIO_EVENT || packet->type == SIOC_SIO_BINARY_EVENT) &&
        json_array_size(packet->data) == 0)
        abort();
}

static void check_refusal(const sioc__sio_packet_t *packet, const char *error)
{
    sioc__sio_packet_t zero;
    memset(&zero, 0, sizeof(zero));
    if (error == NULL || memcmp(packet, &zero, sizeof(zero)) != 0)
        abort();
}

static void check_round_trip(const sioc__sio_packet_t *first)
{
    size_t length;
    uint8_t *encoded = sioc__sio_msgpack_encode(first, &length);
    if (encoded == NULL)
        abort();
    sioc__sio_packet_t second;
    const char *error = NULL;
    if (sioc__sio_msgpack_decode(encoded, length, SIOC_SIO_DEFAULT_MAX_ATTACHMENTS, &second,
                                 &error) != 0)
        abort();
    struct side data_first = {first->data, first};
    struct side data_second = {second.data, &second};
    if (second.type != first->type || strcmp(second.nsp, first->nsp) != 0 ||
        second.id != first->id || second.attachment_count != first->attachment_count ||
        !values_equal(data_first, data_second))
        abort();
    size_t again_length;
    uint8_t *again = sioc__sio_msgpack_encode(&second, &again_length);
    if (again == NULL || again_length != length || memcmp(again, encoded, length) != 0)
        abort();
    free(again);
    free(encoded);
    sioc__sio_packet_clear(&second);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sioc__sio_packet_t packet;
    const char *error = NULL;
    if (sioc__sio_msgpack_decode(data, size, SIOC_SIO_DEFAULT_MAX_ATTACHMENTS, &packet, &error) !=
        0) {
        check_refusal(&packet, error);
        return 0;
    }
    check_packet_shape(&packet);
    check_round_trip(&packet);
    sioc__sio_packet_clear(&packet);
    return 0;
}
