/* Helpers shared by the scenarios (see scenario.h). */
#include "bench/scenario.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t bench_milliseconds(double seconds)
{
    if (seconds <= 0)
        return 0;
    uint64_t milliseconds = (uint64_t)(seconds * 1000.0 + 0.5);
    return milliseconds > 0 ? milliseconds : 1;
}

int bench_check_range(long value, long min, long max, const char *name, char *error, size_t size)
{
    if (value >= min && value <= max)
        return 0;
    snprintf(error, size, "%s: %ld is not in %ld..%ld", name, value, min, max);
    return -1;
}

char *bench_padding_string(size_t length)
{
    char *text = malloc(length + 3);
    if (text == NULL)
        return NULL;
    text[0] = '"';
    memset(text + 1, 'x', length);
    text[length + 1] = '"';
    text[length + 2] = '\0';
    return text;
}

char *bench_auth_json(const char *token)
{
    if (token == NULL)
        return NULL;
    json_t *auth = json_pack("{s:s}", "token", token);
    char *text = auth != NULL ? json_dumps(auth, JSON_COMPACT) : NULL;
    json_decref(auth);
    return text;
}

int bench_event_is(const bench_packet_t *packet, const char *name)
{
    if (packet->event == NULL)
        return 0;
    size_t i = 0;
    for (; i < packet->event_length; i++)
        if (name[i] != packet->event[i]) /* also stops at name's NUL */
            return 0;
    return name[i] == '\0';
}

/* ---- HS256 tokens --------------------------------------------------------------------------- */

/* base64url without padding of length bytes into out (4/3 length + 4 bytes); its length. */
static size_t base64url(const unsigned char *bytes, size_t length, char *out)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t written = 0;
    for (size_t i = 0; i < length; i += 3) {
        uint32_t group = (uint32_t)bytes[i] << 16;
        if (i + 1 < length)
            group |= (uint32_t)bytes[i + 1] << 8;
        if (i + 2 < length)
            group |= bytes[i + 2];
        out[written++] = alphabet[(group >> 18) & 63];
        out[written++] = alphabet[(group >> 12) & 63];
        if (i + 1 < length)
            out[written++] = alphabet[(group >> 6) & 63];
        if (i + 2 < length)
            out[written++] = alphabet[group & 63];
    }
    out[written] = '\0';
    return written;
}

static char *base64url_text(const char *text)
{
    size_t length = strlen(text);
    char *out = malloc(length / 3 * 4 + 8);
    if (out != NULL)
        base64url((const unsigned char *)text, length, out);
    return out;
}

static char *claims_text(const char *subject, int64_t now, int64_t ttl)
{
    json_t *claims = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I}", "sub", subject, "id", subject,
                               "firstName", "Bench", "lastName", subject, "role", "student", "iat",
                               (json_int_t)now, "exp", (json_int_t)(now + ttl));
    char *text = claims != NULL ? json_dumps(claims, JSON_COMPACT) : NULL;
    json_decref(claims);
    return text;
}

char *bench_token_hs256(const char *secret, const char *subject, int64_t now, int64_t ttl)
{
    char *claims = claims_text(subject, now, ttl);
    char *header = base64url_text("{\"alg\":\"HS256\",\"typ\":\"JWT\"}");
    char *payload = claims != NULL ? base64url_text(claims) : NULL;
    char *token = NULL;
    if (header != NULL && payload != NULL) {
        size_t signing_length = strlen(header) + 1 + strlen(payload);
        token = malloc(signing_length + 1 + 64);
        if (token != NULL) {
            snprintf(token, signing_length + 1, "%s.%s", header, payload);
            unsigned char mac[EVP_MAX_MD_SIZE];
            unsigned mac_length = 0;
            HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)token,
                 signing_length, mac, &mac_length);
            token[signing_length] = '.';
            base64url(mac, mac_length, token + signing_length + 1);
        }
    }
    free(claims);
    free(header);
    free(payload);
    return token;
}

static void on_window_over(uv_timer_t *timer)
{
    bench_run_t *run = timer->data;
    bench_run_window_end(run);
    run->window_over(run);
}

static void on_warm(uv_timer_t *timer)
{
    bench_run_t *run = timer->data;
    bench_run_window_begin(run);
    uv_timer_start(&run->phase, on_window_over, bench_milliseconds(run->options->duration), 0);
}

void bench_measure(bench_run_t *run, void (*over)(bench_run_t *run))
{
    run->window_over = over;
    uv_timer_start(&run->phase, on_warm, bench_milliseconds(run->options->warmup), 0);
}
