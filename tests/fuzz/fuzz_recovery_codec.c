/* Fuzzes what the embedded recovery store reads back (recovery_codec.h): a client's offset and
 * the rows of its file. The input is an attachment count (first byte) and three texts split at
 * '\n' (a log row's data, rooms and except, also read as a session's rooms and data); the whole
 * input is also parsed as an offset. Beyond memory errors it checks the contract: a refusal
 * gives NULLs; a decoded entry is an array starting with a name whose rooms and except are
 * arrays of strings; an accepted offset formats back to itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "recovery_codec.h"

#define EPOCH "0123456789abcdef"

static void require(int condition)
{
    if (!condition)
        abort();
}

static void check_offset(const char *text, size_t size)
{
    int64_t seq = -1;
    if (recovery_offset_parse(text, size, EPOCH, &seq) != 0)
        return;
    require(seq > 0);
    char again[64];
    recovery_offset_format(again, sizeof(again), EPOCH, seq);
    require(strlen(again) == size && memcmp(again, text, size) == 0);
}

static const char *part(const char **cursor, const char *end, size_t *length)
{
    const char *start = *cursor;
    const char *stop = memchr(start, '\n', (size_t)(end - start));
    if (stop == NULL)
        stop = end;
    *length = (size_t)(stop - start);
    *cursor = stop < end ? stop + 1 : end;
    return start;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_offset((const char *)data, size);
    if (size == 0)
        return 0;
    int64_t count = (int64_t)(int8_t)data[0];
    const char *cursor = (const char *)data + 1, *end = (const char *)data + size;
    size_t lengths[3];
    const char *texts[3];
    for (int i = 0; i < 3; i++)
        texts[i] = part(&cursor, end, &lengths[i]);
    json_t *packet, *rooms, *except;
    if (recovery_entry_decode(texts[0], lengths[0], texts[1], lengths[1], texts[2], lengths[2],
                              count, &packet, &rooms, &except) == 0) {
        require(json_is_array(packet) && json_is_string(json_array_get(packet, 0)));
        require(json_is_array(rooms) && json_is_array(except));
        require(count >= 0 && count <= RECOVERY_MAX_ATTACHMENTS);
        recovery_entry_selects(rooms, rooms, except);
        json_decref(packet);
        json_decref(rooms);
        json_decref(except);
    } else {
        require(packet == NULL && rooms == NULL && except == NULL);
    }
    json_t *session_rooms, *value;
    if (recovery_session_decode(texts[1], lengths[1], texts[0], lengths[0], &session_rooms,
                                &value) == 0) {
        require(json_is_array(session_rooms) && value != NULL);
        json_decref(session_rooms);
        json_decref(value);
    } else {
        require(session_rooms == NULL && value == NULL);
    }
    return 0;
}
