#include "api_fields.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int api_problem_set(api_problem_t *problem, const char *field, const char *format, ...)
{
    snprintf(problem->field, sizeof(problem->field), "%s", field);
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(problem->message, sizeof(problem->message), format, arguments);
    va_end(arguments);
    return -1;
}

int api_fields_allowed(const json_t *object, const char *const *names, api_problem_t *problem)
{
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)object, key, value)
    {
        size_t i = 0;
        while (names[i] != NULL && strcmp(names[i], key) != 0)
            i++;
        if (names[i] != NULL)
            continue;
        char expected[256] = "";
        size_t used = 0;
        for (i = 0; names[i] != NULL && used < sizeof(expected); i++)
            used += (size_t)snprintf(expected + used, sizeof(expected) - used, "%s%s",
                                     i == 0 ? "" : ", ", names[i]);
        return api_problem_set(problem, key, "unknown field \"%.64s\" (expected %s)", key,
                               expected);
    }
    return 0;
}

/* The value of name, NULL when absent or null. */
static json_t *field_value(const json_t *object, const char *name)
{
    json_t *value = json_object_get(object, name);
    return json_is_null(value) ? NULL : value;
}

int api_field_string(const json_t *object, const char *name, api_presence_t presence,
                     size_t max_length, const char **out, api_problem_t *problem)
{
    json_t *value = field_value(object, name);
    *out = NULL;
    if (value == NULL && presence == API_OPTIONAL)
        return 0;
    if (!json_is_string(value) || json_string_length(value) == 0 ||
        json_string_length(value) > max_length)
        return api_problem_set(problem, name,
                               "%s: expected a non-empty string of at most %zu bytes%s", name,
                               max_length, value == NULL ? " (missing)" : "");
    *out = json_string_value(value);
    return 0;
}

int api_field_id(const json_t *object, const char *name, api_presence_t presence, char *out,
                 api_problem_t *problem)
{
    json_t *value = field_value(object, name);
    out[0] = '\0';
    if (value == NULL && presence == API_OPTIONAL)
        return 0;
    if (json_is_integer(value)) {
        snprintf(out, API_ID_SIZE, "%" JSON_INTEGER_FORMAT, json_integer_value(value));
        return 0;
    }
    if (!json_is_string(value))
        return api_problem_set(problem, name,
                               "%s: expected an id (a string of 1 to %d bytes, or an integer)%s",
                               name, API_ID_MAX, value == NULL ? " (missing)" : "");
    if (api_id_check(json_string_value(value), json_string_length(value), name, problem) != 0)
        return -1;
    memcpy(out, json_string_value(value), json_string_length(value) + 1);
    return 0;
}

int api_field_bool(const json_t *object, const char *name, int fallback, int *out,
                   api_problem_t *problem)
{
    json_t *value = field_value(object, name);
    *out = fallback;
    if (value == NULL)
        return 0;
    if (!json_is_boolean(value))
        return api_problem_set(problem, name, "%s: expected true or false", name);
    *out = json_is_true(value);
    return 0;
}

int api_field_array(const json_t *object, const char *name, json_t **out, api_problem_t *problem)
{
    json_t *value = field_value(object, name);
    *out = NULL;
    if (value != NULL && !json_is_array(value))
        return api_problem_set(problem, name, "%s: expected an array", name);
    *out = value;
    return 0;
}

int api_field_object(const json_t *object, const char *name, json_t **out, api_problem_t *problem)
{
    json_t *value = field_value(object, name);
    *out = NULL;
    if (value != NULL && !json_is_object(value))
        return api_problem_set(problem, name, "%s: expected an object", name);
    *out = value;
    return 0;
}

static int room_name(json_t *value, const char *name, size_t index, const char **out,
                     api_problem_t *problem)
{
    if (!json_is_string(value) || json_string_length(value) == 0 ||
        json_string_length(value) > API_NAME_MAX)
        return api_problem_set(problem, name,
                               "%s[%zu]: expected a non-empty string of at most %d bytes", name,
                               index, API_NAME_MAX);
    *out = json_string_value(value);
    return 0;
}

int api_field_rooms(const json_t *object, const char *name, const char **out, size_t max_count,
                    size_t *count, api_problem_t *problem)
{
    json_t *value = field_value(object, name);
    *count = 0;
    if (value == NULL)
        return 0;
    if (json_is_string(value)) {
        if (room_name(value, name, 0, &out[0], problem) != 0)
            return -1;
        *count = 1;
        return 0;
    }
    if (!json_is_array(value) || json_array_size(value) > max_count)
        return api_problem_set(problem, name,
                               "%s: expected a room name or an array of at most %zu room names",
                               name, max_count);
    for (size_t i = 0; i < json_array_size(value); i++) {
        if (room_name(json_array_get(value, i), name, i, &out[i], problem) != 0)
            return -1;
    }
    *count = json_array_size(value);
    return 0;
}

int api_field_namespace(const json_t *object, const char *name, const char **out,
                        api_problem_t *problem)
{
    json_t *value = field_value(object, name);
    *out = "/";
    if (value == NULL)
        return 0;
    if (!json_is_string(value) || json_string_value(value)[0] != '/' ||
        json_string_length(value) > API_NAME_MAX)
        return api_problem_set(
            problem, name, "%s: expected a namespace such as \"/\" or \"/home\" (at most %d bytes)",
            name, API_NAME_MAX);
    *out = json_string_value(value);
    return 0;
}

int api_id_check(const char *id, size_t length, const char *field, api_problem_t *problem)
{
    if (length == 0 || length > API_ID_MAX)
        return api_problem_set(problem, field, "%s: expected an id of 1 to %d bytes", field,
                               API_ID_MAX);
    if (!api_utf8_valid(id, length))
        return api_problem_set(problem, field, "%s: expected an id in UTF-8", field);
    for (size_t i = 0; i < length; i++) {
        unsigned char byte = (unsigned char)id[i];
        if (byte < 0x20 || byte == 0x7F)
            return api_problem_set(problem, field, "%s: control characters are not allowed in ids",
                                   field);
    }
    return 0;
}

/* Length of the sequence that starts with lead and the bounds of its second byte (which is
 * where overlongs and surrogates are excluded), or 0 for a byte that cannot start one. */
static size_t utf8_sequence(unsigned char lead, unsigned char *low, unsigned char *high)
{
    *low = 0x80;
    *high = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF)
        return 2;
    if (lead >= 0xE0 && lead <= 0xEF) {
        *low = lead == 0xE0 ? 0xA0 : 0x80;
        *high = lead == 0xED ? 0x9F : 0xBF;
        return 3;
    }
    if (lead >= 0xF0 && lead <= 0xF4) {
        *low = lead == 0xF0 ? 0x90 : 0x80;
        *high = lead == 0xF4 ? 0x8F : 0xBF;
        return 4;
    }
    return 0;
}

int api_utf8_valid(const char *bytes, size_t length)
{
    const unsigned char *data = (const unsigned char *)bytes;
    size_t index = 0;
    while (index < length) {
        if (data[index] < 0x80) {
            index++;
            continue;
        }
        unsigned char low, high;
        size_t count = utf8_sequence(data[index], &low, &high);
        if (count == 0 || length - index < count || data[index + 1] < low || data[index + 1] > high)
            return 0;
        for (size_t i = 2; i < count; i++) {
            if ((data[index + i] & 0xC0) != 0x80)
                return 0;
        }
        index += count;
    }
    return 1;
}

int api_parse_count(const char *text, unsigned long min, unsigned long max, unsigned long *out)
{
    if (text[0] == '\0' || strlen(text) > 10)
        return -1;
    for (const char *cursor = text; *cursor != '\0'; cursor++) {
        if (!isdigit((unsigned char)*cursor))
            return -1;
    }
    unsigned long value = strtoul(text, NULL, 10);
    if (value < min || value > max)
        return -1;
    *out = value;
    return 0;
}
