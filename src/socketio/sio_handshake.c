/* The handshake of a client (Node's socket.handshake): what the opening request said, kept as
 * its bytes in one block (a few hundred bytes) and turned into a jansson object only when a
 * program asks for it. Built as an object at once, it cost an idle connection about 2 KB. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "socketio/sio_internal.h"

/* Node lower-cases header names (IncomingMessage.headers); longer names are left out. */
#define MAX_HEADER_NAME 256

struct sioc__sio_handshake_s {
    uint32_t references;
    uint32_t header_count;
    json_t *json; /* everything but auth, built on the first ask and shared by the sockets */
    int64_t seconds;
    int32_t microseconds;
    uint8_t xdomain;
    /* url NUL, address NUL, then per header: its value's length (4 bytes, unaligned), the
     * lower-cased name NUL, the value NUL. */
    char text[];
};

static size_t header_size(const char *name, size_t value_length)
{
    return sizeof(uint32_t) + strlen(name) + 1 + value_length + 1;
}

static char *copy_text(char *cursor, const char *text, size_t length)
{
    memcpy(cursor, text, length);
    cursor[length] = '\0';
    return cursor + length + 1;
}

static char *copy_header(char *cursor, const char *name, const char *value, size_t value_length)
{
    uint32_t length = (uint32_t)value_length;
    memcpy(cursor, &length, sizeof(length));
    cursor += sizeof(length);
    size_t name_length = strlen(name);
    for (size_t i = 0; i < name_length; i++)
        *cursor++ = (char)tolower((unsigned char)name[i]);
    *cursor++ = '\0';
    return copy_text(cursor, value, value_length);
}

sioc__sio_handshake_t *sioc__sio_handshake_new(const sioc_request_t *request)
{
    const char *url = sioc_request_url(request);
    const char *address = sioc_request_remote_address(request);
    size_t count = sioc_request_header_count(request);
    size_t size = sizeof(sioc__sio_handshake_t) + strlen(url) + 1 + strlen(address) + 1;
    const char *name, *value;
    size_t value_length;
    for (size_t i = 0; i < count; i++) {
        sioc_request_header_at(request, i, &name, &value, &value_length);
        if (strlen(name) < MAX_HEADER_NAME)
            size += header_size(name, value_length);
    }
    sioc__sio_handshake_t *handshake = malloc(size);
    if (handshake == NULL)
        return NULL;
    struct timeval now;
    gettimeofday(&now, NULL);
    handshake->references = 1;
    handshake->header_count = 0;
    handshake->json = NULL;
    handshake->seconds = now.tv_sec;
    handshake->microseconds = (int32_t)now.tv_usec;
    handshake->xdomain = sioc_request_header(request, "origin", NULL) != NULL;
    char *cursor = copy_text(handshake->text, url, strlen(url));
    cursor = copy_text(cursor, address, strlen(address));
    for (size_t i = 0; i < count; i++) {
        sioc_request_header_at(request, i, &name, &value, &value_length);
        if (strlen(name) >= MAX_HEADER_NAME)
            continue;
        cursor = copy_header(cursor, name, value, value_length);
        handshake->header_count++;
    }
    return handshake;
}

void sioc__sio_handshake_ref(sioc__sio_handshake_t *handshake)
{
    handshake->references++;
}

void sioc__sio_handshake_unref(sioc__sio_handshake_t *handshake)
{
    if (handshake == NULL || --handshake->references > 0)
        return;
    json_decref(handshake->json);
    free(handshake);
}

static json_t *parse_headers(const sioc__sio_handshake_t *handshake, const char *cursor)
{
    json_t *headers = json_object();
    for (uint32_t i = 0; headers != NULL && i < handshake->header_count; i++) {
        uint32_t length;
        memcpy(&length, cursor, sizeof(length));
        const char *name = cursor + sizeof(length);
        const char *value = name + strlen(name) + 1;
        json_object_set_new(headers, name, json_stringn(value, length));
        cursor = value + length + 1;
    }
    return headers;
}

/* Node's socket.handshake without auth, as a new object. */
static json_t *build(const sioc__sio_handshake_t *handshake)
{
    time_t seconds = (time_t)handshake->seconds;
    char time_text[64];
    struct tm local;
    localtime_r(&seconds, &local);
    strftime(time_text, sizeof(time_text), "%a %b %d %Y %H:%M:%S GMT%z (%Z)", &local);
    const char *url = handshake->text;
    const char *address = url + strlen(url) + 1;
    const char *question = strchr(url, '?');
    json_int_t issued = (json_int_t)handshake->seconds * 1000 + handshake->microseconds / 1000;
    return json_pack("{s:o,s:s,s:s,s:b,s:b,s:I,s:s,s:o}", "headers",
                     parse_headers(handshake, address + strlen(address) + 1), "time", time_text,
                     "address", address, "xdomain", handshake->xdomain, "secure", 0, "issued",
                     issued, "url", url, "query",
                     sioc__sio_parse_query(question ? question + 1 : ""));
}

json_t *sioc__sio_handshake_object(sioc__sio_handshake_t *handshake)
{
    if (handshake->json == NULL)
        handshake->json = build(handshake);
    return handshake->json;
}

json_t *sioc__sio_handshake_with_auth(sioc__sio_handshake_t *handshake, json_t *auth, int keep)
{
    json_t *base = keep ? json_incref(sioc__sio_handshake_object(handshake)) : NULL;
    if (base == NULL)
        base = handshake->json != NULL ? json_incref(handshake->json) : build(handshake);
    /* A shallow copy: headers and query stay shared (they never change); auth is the socket's. */
    json_t *copy = json_copy(base);
    json_decref(base);
    if (copy != NULL)
        json_object_set(copy, "auth", auth);
    return copy;
}
