#include "api_routes.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* A raw (still encoded) parameter segment of a path. */
typedef struct segment_s {
    const char *start;
    size_t length;
} segment_t;

/* 1 if path has the shape of pattern (same segment count, same literals), with the raw
 * parameter segments in spans[0..*span_count). Decoding comes after, so that a bad escape in
 * a path that matches no route is a 404, not a 400. */
static int match_shape(const char *pattern, const char *path, segment_t *spans, size_t *span_count)
{
    *span_count = 0;
    while (*pattern != '\0') {
        if (*pattern != '/' || *path != '/')
            return 0;
        pattern++;
        path++;
        size_t pattern_length = strcspn(pattern, "/");
        size_t path_length = strcspn(path, "/");
        if (pattern[0] == '{') {
            if (path_length == 0 || *span_count == API_PATH_PARAMS_MAX)
                return 0;
            spans[(*span_count)++] = (segment_t){path, path_length};
        } else if (pattern_length != path_length || memcmp(pattern, path, path_length) != 0) {
            return 0;
        }
        pattern += pattern_length;
        path += path_length;
    }
    return path[0] == '\0' || (path[0] == '/' && path[1] == '\0');
}

/* The name of the index-th {parameter} of pattern, into out. */
static void parameter_name(const char *pattern, size_t index, char *out, size_t size)
{
    const char *brace = pattern;
    for (size_t i = 0; (brace = strchr(brace, '{')) != NULL; i++, brace++) {
        if (i == index) {
            size_t length = strcspn(brace + 1, "}");
            snprintf(out, size, "%.*s", (int)length, brace + 1);
            return;
        }
    }
    snprintf(out, size, "parameter");
}

static int decode_parameters(const api_route_t *route, const segment_t *spans, size_t count,
                             api_path_params_t *params, api_problem_t *problem)
{
    params->count = 0;
    for (size_t i = 0; i < count; i++) {
        char name[32];
        parameter_name(route->pattern, i, name, sizeof(name));
        long length = api_percent_decode(spans[i].start, spans[i].length, params->values[i],
                                         sizeof(params->values[i]));
        if (length < 0)
            return api_problem_set(problem, name,
                                   "%s (in the path): expected a percent-encoded id of 1 to %d "
                                   "bytes",
                                   name, API_ID_MAX);
        if (api_id_check(params->values[i], (size_t)length, name, problem) != 0)
            return -1;
        params->count++;
    }
    return 0;
}

static void allow_add(char *allow, size_t size, const char *method)
{
    if (strstr(allow, method) != NULL)
        return;
    size_t used = strlen(allow);
    snprintf(allow + used, size - used, "%s%s", used == 0 ? "" : ", ", method);
}

const api_route_t *api_route_find(const api_route_t *routes, size_t count, const char *method,
                                  const char *path, api_path_params_t *params,
                                  api_route_miss_t *miss)
{
    memset(miss, 0, sizeof(*miss));
    for (size_t i = 0; i < count; i++) {
        segment_t spans[API_PATH_PARAMS_MAX];
        size_t span_count;
        if (!match_shape(routes[i].pattern, path, spans, &span_count))
            continue;
        if (strcmp(routes[i].method, method) != 0) {
            allow_add(miss->allow, sizeof(miss->allow), routes[i].method);
            continue;
        }
        if (decode_parameters(&routes[i], spans, span_count, params, &miss->problem) != 0) {
            miss->status = 400;
            return NULL;
        }
        return &routes[i];
    }
    miss->status = miss->allow[0] != '\0' ? 405 : 404;
    return NULL;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long api_percent_decode(const char *src, size_t length, char *out, size_t out_size)
{
    size_t used = 0;
    for (size_t i = 0; i < length; i++) {
        char byte = src[i];
        if (byte == '%') {
            if (length - i < 3 || hex_digit(src[i + 1]) < 0 || hex_digit(src[i + 2]) < 0)
                return -1;
            byte = (char)(hex_digit(src[i + 1]) * 16 + hex_digit(src[i + 2]));
            i += 2;
        }
        if (byte == '\0' || used + 1 >= out_size)
            return -1;
        out[used++] = byte;
    }
    out[used] = '\0';
    return (long)used;
}

/* value[0..length) without surrounding spaces and tabs. */
static const char *trim(const char *value, size_t *length)
{
    while (*length > 0 && (value[0] == ' ' || value[0] == '\t')) {
        value++;
        (*length)--;
    }
    while (*length > 0 && (value[*length - 1] == ' ' || value[*length - 1] == '\t'))
        (*length)--;
    return value;
}

/* The token of "Bearer <token>" (scheme case-insensitive, RFC 7235), or NULL. */
static const char *bearer_token(const char *value, size_t length, size_t *token_length)
{
    value = trim(value, &length);
    if (length < 7 || strncasecmp(value, "Bearer", 6) != 0 || (value[6] != ' ' && value[6] != '\t'))
        return NULL;
    *token_length = length - 6;
    return trim(value + 6, token_length);
}

int api_key_equal(const char *given, size_t given_length, const char *key, size_t key_length)
{
    if (given_length != key_length)
        return 0;
    return CRYPTO_memcmp(given, key, key_length) == 0;
}

api_key_result_t api_key_check(const char *authorization, size_t authorization_length,
                               const char *x_api_key, size_t x_api_key_length, const char *key)
{
    const char *given = NULL;
    size_t given_length = 0;
    if (authorization != NULL)
        given = bearer_token(authorization, authorization_length, &given_length);
    if (given == NULL && x_api_key != NULL) {
        given_length = x_api_key_length;
        given = trim(x_api_key, &given_length);
    }
    if (given == NULL || given_length == 0)
        return API_KEY_MISSING;
    return api_key_equal(given, given_length, key, strlen(key)) ? API_KEY_OK : API_KEY_WRONG;
}
