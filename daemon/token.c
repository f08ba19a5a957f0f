/* `sioc token`: see token.h. */
#include "token.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "auth_jwt.h"

#define DEFAULT_EXPIRES_IN 3600
#define MAX_EXPIRES_IN (10LL * 366 * 24 * 3600) /* ten years: beyond that it is a typo */

typedef struct token_options_s {
    const char *secret;
    const char *subject;
    const char *algorithm;
    long long expires_in;
    json_t *extra_claims; /* from --claims-json and --claim, later ones replacing earlier */
} token_options_t;

static void usage(FILE *out)
{
    fprintf(out, "usage: sioc token --secret S --subject ID [--algorithm HS256|HS384|HS512]\n"
                 "                  [--claim key=value]... [--claims-json '{...}']\n"
                 "                  [--expires-in SECONDS (3600)]\n"
                 "The secret may come from $SIOC_JWT_SECRET instead of --secret.\n");
}

__attribute__((format(printf, 1, 2))) static int usage_error(const char *format, ...)
{
    va_list arguments;
    va_start(arguments, format);
    fprintf(stderr, "sioc token: ");
    vfprintf(stderr, format, arguments);
    fprintf(stderr, "\n");
    va_end(arguments);
    usage(stderr);
    return 2;
}

/* JSON when it parses as JSON (any value), otherwise the text as a string; NULL if the text is
 * not UTF-8. */
static json_t *claim_value(const char *text)
{
    json_t *value = json_loads(text, JSON_DECODE_ANY, NULL);
    return value != NULL ? value : json_string(text);
}

static int add_claim(token_options_t *options, const char *pair)
{
    const char *equals = strchr(pair, '=');
    if (equals == NULL || equals == pair)
        return usage_error("--claim expects key=value, not \"%s\"", pair);
    char *key = strndup(pair, (size_t)(equals - pair));
    json_t *value = claim_value(equals + 1);
    if (key == NULL || value == NULL) {
        free(key);
        json_decref(value);
        return usage_error("--claim %s: the value is not UTF-8", pair);
    }
    /* set_new takes value even when it fails (a key that is not UTF-8). */
    int failed = json_object_set_new(options->extra_claims, key, value) != 0;
    free(key);
    return failed ? usage_error("--claim %s: the key is not UTF-8", pair) : 0;
}

static int add_claims_json(token_options_t *options, const char *text)
{
    json_error_t error;
    json_t *claims = json_loads(text, 0, &error);
    if (claims == NULL || !json_is_object(claims)) {
        json_decref(claims);
        return usage_error("--claims-json expects a JSON object: %s",
                           claims == NULL ? error.text : "not an object");
    }
    json_object_update(options->extra_claims, claims);
    json_decref(claims);
    return 0;
}

static int parse_expires_in(token_options_t *options, const char *text)
{
    char *end = NULL;
    errno = 0;
    long long seconds = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || seconds <= 0 || seconds > MAX_EXPIRES_IN)
        return usage_error("--expires-in expects seconds between 1 and ten years, not \"%s\"",
                           text);
    options->expires_in = seconds;
    return 0;
}

/* One option and its value; 0, or the exit status for bad usage. */
static int parse_option(token_options_t *options, const char *name, const char *value)
{
    if (strcmp(name, "--secret") == 0)
        options->secret = value;
    else if (strcmp(name, "--subject") == 0)
        options->subject = value;
    else if (strcmp(name, "--algorithm") == 0)
        options->algorithm = value;
    else if (strcmp(name, "--claim") == 0)
        return add_claim(options, value);
    else if (strcmp(name, "--claims-json") == 0)
        return add_claims_json(options, value);
    else if (strcmp(name, "--expires-in") == 0)
        return parse_expires_in(options, value);
    else
        return usage_error("unknown option %s", name);
    return 0;
}

static int parse_arguments(token_options_t *options, int argc, char **argv)
{
    for (int i = 1; i < argc; i += 2) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return -1;
        }
        if (i + 1 >= argc)
            return usage_error("%s needs a value", argv[i]);
        int status = parse_option(options, argv[i], argv[i + 1]);
        if (status != 0)
            return status;
    }
    if (options->secret == NULL)
        options->secret = getenv("SIOC_JWT_SECRET");
    if (options->secret == NULL || options->secret[0] == '\0')
        return usage_error("--secret is required (or set SIOC_JWT_SECRET)");
    if (options->subject == NULL || options->subject[0] == '\0')
        return usage_error("--subject is required");
    if (strcmp(options->algorithm, "HS256") != 0 && strcmp(options->algorithm, "HS384") != 0 &&
        strcmp(options->algorithm, "HS512") != 0)
        return usage_error("--algorithm %s: only HS256, HS384 and HS512 tokens can be minted",
                           options->algorithm);
    return 0;
}

/* sub, id, iat, exp, then the extra claims over them. A new object, or NULL. */
static json_t *claims_build(const token_options_t *options, long long now)
{
    json_t *claims =
        json_pack("{s:s, s:s, s:I, s:I}", "sub", options->subject, "id", options->subject, "iat",
                  (json_int_t)now, "exp", (json_int_t)(now + options->expires_in));
    if (claims != NULL)
        json_object_update(claims, options->extra_claims);
    return claims;
}

int token_main(int argc, char **argv)
{
    token_options_t options = {.algorithm = "HS256", .expires_in = DEFAULT_EXPIRES_IN};
    options.extra_claims = json_object();
    if (options.extra_claims == NULL)
        return 1;
    int status = parse_arguments(&options, argc, argv);
    if (status != 0) {
        json_decref(options.extra_claims);
        return status < 0 ? 0 : status; /* -1: --help */
    }
    json_t *claims = claims_build(&options, (long long)time(NULL));
    char *token =
        claims != NULL ? auth_jwt_sign_hmac(options.algorithm, options.secret, claims) : NULL;
    if (token == NULL) {
        fprintf(stderr, "sioc token: %s\n",
                claims == NULL ? "subject is not UTF-8" : "signing failed");
        status = 1;
    } else {
        printf("%s\n", token);
        status = fflush(stdout) == 0 ? 0 : 1;
    }
    free(token);
    json_decref(claims);
    json_decref(options.extra_claims);
    return status;
}
