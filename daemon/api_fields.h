/* Validation of the HTTP API's inputs (api.c): each helper reads one field of a JSON body, or
 * checks one id, and on a problem fills an api_problem_t that names the field and says what is
 * expected, e.g. {field "rooms", message "rooms[2]: expected a non-empty string of at most 256
 * bytes"}. Pure: no I/O and no daemon state, so that they are unit-tested alone.
 *
 * Conventions: a field set to null is treated as absent (JavaScript back ends send null for
 * "none"); every helper returns 0, or -1 with problem filled. Strings handed out are borrowed
 * from the JSON object. */
#ifndef SIOC_DAEMON_API_FIELDS_H
#define SIOC_DAEMON_API_FIELDS_H

#include <jansson.h>
#include <stddef.h>

#define API_ID_MAX 128   /* bytes of a user, room or message id */
#define API_NAME_MAX 256 /* bytes of an event, room or namespace name */
#define API_ID_SIZE (API_ID_MAX + 1)

typedef struct api_problem_s {
    char field[64];    /* "rooms", "userId", ... */
    char message[320]; /* "rooms[2]: expected ..." */
} api_problem_t;

typedef enum api_presence { API_OPTIONAL = 0, API_REQUIRED = 1 } api_presence_t;

/* Fills problem (message formatted like printf) and returns -1. */
int api_problem_set(api_problem_t *problem, const char *field, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/* Refuses keys of object that are not in names (NULL-terminated): a typo such as "room" for
 * "rooms" would otherwise silently widen a broadcast to everyone. */
int api_fields_allowed(const json_t *object, const char *const *names, api_problem_t *problem);

/* A string of 1..max_length bytes; *out is NULL when absent and optional. */
int api_field_string(const json_t *object, const char *name, api_presence_t presence,
                     size_t max_length, const char **out, api_problem_t *problem);

/* An id: a string, or an integer (written in decimal, as Sequelize and MongoDB ids reach the
 * back end), checked with api_id_check, copied into out (API_ID_SIZE bytes; "" when absent). */
int api_field_id(const json_t *object, const char *name, api_presence_t presence, char *out,
                 api_problem_t *problem);

/* A boolean; *out = fallback when absent. */
int api_field_bool(const json_t *object, const char *name, int fallback, int *out,
                   api_problem_t *problem);

/* An array (*out borrowed; NULL when absent). */
int api_field_array(const json_t *object, const char *name, json_t **out, api_problem_t *problem);

/* An object (*out borrowed; NULL when absent). */
int api_field_object(const json_t *object, const char *name, json_t **out, api_problem_t *problem);

/* Room names: one string or an array of at most max_count strings of 1..API_NAME_MAX bytes,
 * borrowed into out[0..*count). Absent: *count = 0. */
int api_field_rooms(const json_t *object, const char *name, const char **out, size_t max_count,
                    size_t *count, api_problem_t *problem);

/* A namespace: "/" when absent, else a string starting with '/' of at most API_NAME_MAX bytes. */
int api_field_namespace(const json_t *object, const char *name, const char **out,
                        api_problem_t *problem);

/* Checks an id already extracted (a decoded path segment or a JSON string): 1..API_ID_MAX
 * bytes of valid UTF-8 without control characters. field names it in the problem. */
int api_id_check(const char *id, size_t length, const char *field, api_problem_t *problem);

/* 1 if bytes[0..length) is valid UTF-8 (RFC 3629: no overlongs, no surrogates). */
int api_utf8_valid(const char *bytes, size_t length);

/* A decimal integer in [min, max] with nothing around it (query parameters such as limit). */
int api_parse_count(const char *text, unsigned long min, unsigned long max, unsigned long *out);

#endif
