/* Routing and authentication of the HTTP API (api.c), pure so that they are unit-tested alone.
 *
 * Paths: a pattern is literal segments and {name} parameters ("/rooms/{roomId}/members").
 * Literal segments match exactly (case-sensitive); a parameter matches one non-empty segment,
 * which is percent-decoded ('+' stays '+': it means a space only in query strings) and must then
 * be a valid id (api_id_check). One trailing slash is ignored ("/rooms/" is "/rooms", as Express
 * does by default); empty segments ("/rooms//members") match nothing.
 *
 * Keys: a request presents its key as "Authorization: Bearer <key>" or, when there is no Bearer
 * Authorization header, as "X-API-Key: <key>"; it is compared in constant time. */
#ifndef SIOC_DAEMON_API_ROUTES_H
#define SIOC_DAEMON_API_ROUTES_H

#include <stddef.h>

#include "api_fields.h"

#define API_PATH_PARAMS_MAX 2

#define API_ROUTE_PUBLIC 1u /* no API key needed (GET /health) */
#define API_ROUTE_BODY 2u   /* takes a JSON object body */

struct api_call_s;

typedef struct api_route_s {
    const char *method;  /* "GET", "POST", "DELETE" */
    const char *pattern; /* "/rooms/{roomId}/members/{userId}" */
    void (*handler)(struct api_call_s *call);
    unsigned flags; /* API_ROUTE_* */
} api_route_t;

/* The decoded parameters of a matched path, in pattern order. */
typedef struct api_path_params_s {
    char values[API_PATH_PARAMS_MAX][API_ID_SIZE];
    size_t count;
} api_path_params_t;

/* Why no route was found. */
typedef struct api_route_miss_s {
    int status;            /* 404 no such path, 405 path known but not with this method, 400 a
                              parameter that is not a valid id */
    char allow[64];        /* 405: the methods the path takes, "GET, POST" */
    api_problem_t problem; /* 400: which parameter, and why */
} api_route_miss_t;

/* The route of routes[0..count) for method and path, with its parameters decoded into params;
 * NULL with miss filled when there is none. */
const api_route_t *api_route_find(const api_route_t *routes, size_t count, const char *method,
                                  const char *path, api_path_params_t *params,
                                  api_route_miss_t *miss);

/* Percent-decodes src[0..length) into out (out_size bytes, NUL-terminated): the decoded
 * length, or -1 for a bad escape, a decoded NUL, or a result that does not fit. */
long api_percent_decode(const char *src, size_t length, char *out, size_t out_size);

typedef enum api_key_result {
    API_KEY_OK = 0,
    API_KEY_MISSING = 1, /* neither header carries a key */
    API_KEY_WRONG = 2,
} api_key_result_t;

/* Checks the key a request presents against key (NUL-terminated, non-empty). authorization and
 * x_api_key are the header values (NULL when absent) and their lengths. */
api_key_result_t api_key_check(const char *authorization, size_t authorization_length,
                               const char *x_api_key, size_t x_api_key_length, const char *key);

/* 1 if the two byte strings are equal. Only their lengths may show in the timing: the content
 * is compared with CRYPTO_memcmp, which has no early exit. */
int api_key_equal(const char *given, size_t given_length, const char *key, size_t key_length);

#endif
