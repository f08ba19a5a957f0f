#include "recovery_codec.h"

#include <stdio.h>
#include <string.h>

/* jansson refuses deeper documents itself (2048); this bounds the placeholder walk's stack. */
#define PLACEHOLDER_DEPTH_MAX 2048

void recovery_offset_format(char *out, size_t size, const char *epoch, int64_t seq)
{
    snprintf(out, size, "%.*s-%lld", RECOVERY_EPOCH_LENGTH, epoch, (long long)seq);
}

int recovery_epoch_valid(const char *text, size_t length)
{
    if (length != RECOVERY_EPOCH_LENGTH)
        return 0;
    for (size_t i = 0; i < length; i++) {
        char c = text[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
    }
    return 1;
}

int recovery_offset_parse(const char *text, size_t length, const char *epoch, int64_t *seq)
{
    *seq = 0;
    if (length < RECOVERY_EPOCH_LENGTH + 2 || length > RECOVERY_EPOCH_LENGTH + 20 ||
        memcmp(text, epoch, RECOVERY_EPOCH_LENGTH) != 0 || text[RECOVERY_EPOCH_LENGTH] != '-')
        return -1;
    const char *digits = text + RECOVERY_EPOCH_LENGTH + 1;
    size_t count = length - RECOVERY_EPOCH_LENGTH - 1;
    if (digits[0] == '0')
        return -1; /* "0", "01": never given out */
    uint64_t value = 0;
    for (size_t i = 0; i < count; i++) {
        if (digits[i] < '0' || digits[i] > '9')
            return -1;
        uint64_t digit = (uint64_t)(digits[i] - '0');
        if (value > ((uint64_t)INT64_MAX - digit) / 10)
            return -1;
        value = value * 10 + digit;
    }
    *seq = (int64_t)value;
    return 0;
}

static json_t *load(const char *text, size_t length)
{
    /* No NUL inside a stored text: a name with one could not have been written by the daemon. */
    return text != NULL ? json_loadb(text, length, JSON_DECODE_ANY, NULL) : NULL;
}

static int string_array(json_t *value)
{
    if (!json_is_array(value))
        return 0;
    size_t index;
    json_t *each;
    json_array_foreach(value, index, each)
    {
        if (!json_is_string(each))
            return 0;
    }
    return 1;
}

int recovery_session_decode(const char *rooms, size_t rooms_length, const char *data,
                            size_t data_length, json_t **rooms_out, json_t **data_out)
{
    json_t *room_list = load(rooms, rooms_length);
    json_t *value = load(data, data_length);
    if (!string_array(room_list) || value == NULL) {
        json_decref(room_list);
        json_decref(value);
        *rooms_out = *data_out = NULL;
        return -1;
    }
    *rooms_out = room_list;
    *data_out = value;
    return 0;
}

/* 0 when every placeholder in value names an attachment below count (and is well formed). */
static int check_placeholders(json_t *value, int64_t count, int depth)
{
    if (depth > PLACEHOLDER_DEPTH_MAX)
        return -1;
    size_t index;
    json_t *each;
    if (json_is_array(value)) {
        json_array_foreach(value, index, each)
        {
            if (check_placeholders(each, count, depth + 1) != 0)
                return -1;
        }
        return 0;
    }
    if (!json_is_object(value))
        return 0;
    if (json_is_true(json_object_get(value, "_placeholder"))) {
        json_t *num = json_object_get(value, "num");
        return json_is_integer(num) && json_integer_value(num) >= 0 &&
                       json_integer_value(num) < count
                   ? 0
                   : -1;
    }
    const char *key;
    json_object_foreach(value, key, each)
    {
        if (check_placeholders(each, count, depth + 1) != 0)
            return -1;
    }
    return 0;
}

int recovery_entry_decode(const char *data, size_t data_length, const char *rooms,
                          size_t rooms_length, const char *except, size_t except_length,
                          int64_t attachment_count, json_t **data_out, json_t **rooms_out,
                          json_t **except_out)
{
    json_t *packet = load(data, data_length);
    json_t *to = load(rooms, rooms_length);
    json_t *not_to = load(except, except_length);
    int valid = json_is_array(packet) && json_array_size(packet) >= 1 &&
                json_is_string(json_array_get(packet, 0)) && string_array(to) &&
                string_array(not_to) && attachment_count >= 0 &&
                attachment_count <= RECOVERY_MAX_ATTACHMENTS &&
                check_placeholders(packet, attachment_count, 0) == 0;
    if (!valid) {
        json_decref(packet);
        json_decref(to);
        json_decref(not_to);
        *data_out = *rooms_out = *except_out = NULL;
        return -1;
    }
    *data_out = packet;
    *rooms_out = to;
    *except_out = not_to;
    return 0;
}

static int has(json_t *array, const char *name)
{
    size_t index;
    json_t *each;
    json_array_foreach(array, index, each)
    {
        const char *text = json_string_value(each);
        if (text != NULL && strcmp(text, name) == 0)
            return 1;
    }
    return 0;
}

int recovery_entry_selects(json_t *session_rooms, json_t *rooms, json_t *except)
{
    int included = json_array_size(rooms) == 0;
    size_t index;
    json_t *room;
    json_array_foreach(session_rooms, index, room)
    {
        const char *name = json_string_value(room);
        if (name == NULL)
            continue;
        if (has(except, name))
            return 0;
        if (!included && has(rooms, name))
            included = 1;
    }
    return included;
}
