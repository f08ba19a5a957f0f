/* The back end's answer to a proxied event, read and bounded before any of it is applied: the
 * back end is another program, so its answer is input like a client's packet. A part of the
 * wrong shape is skipped (the rest still applies). A room or event name with a NUL inside is
 * one such part: C would cut it at the NUL and act on another name (the HTTP client's JSON
 * reader refuses \u0000 already; this holds should it ever allow them). */
#ifndef SIOC_DAEMON_PROXY_ANSWER_H
#define SIOC_DAEMON_PROXY_ANSWER_H

#include <jansson.h>
#include <sioc.h>

#include "driver_util.h"

/* One {event, args, rooms?, users?}: to the socket alone, or to up to SIOC_BROADCAST_MAX_ROOMS
 * rooms (a user counts two: "user:<id>" and "user.<id>", the rooms the drivers put a user's
 * sockets in). */
typedef struct proxy_emit_s {
    const char *event; /* borrowed from the answer */
    json_t *args;      /* a new reference to an array */
    int to_socket;     /* neither rooms nor users were given */
    size_t room_count; /* 0 and !to_socket: nobody (the lists named no valid room) */
    const char *rooms[SIOC_BROADCAST_MAX_ROOMS]; /* into the answer, or into user_rooms */
    char user_rooms[SIOC_BROADCAST_MAX_ROOMS][DRIVER_ROOM_NAME_SIZE];
} proxy_emit_t;

typedef struct proxy_answer_s {
    json_t *data; /* an object to merge into socket.data (borrowed), or NULL */
    json_t *join; /* new arrays of non-empty room names (strings) */
    json_t *leave;
    json_t *emit; /* the emits (borrowed array, or NULL): read one at a time with
                   * proxy_emit_read, so a big answer never costs a plan per emit */
    json_t *ack;  /* the acknowledgement's arguments, an array (borrowed), or NULL */
    int disconnect;
} proxy_answer_t;

/* The room names of value (an array; anything else has none): its non-empty strings without a
 * NUL, as a new array; NULL when memory runs out. Also for the rooms of a connect answer. */
json_t *proxy_room_names(json_t *value);

/* Reads answer (a JSON object; anything else reads as an empty answer). 0, or -1 when memory
 * runs out (then *out holds nothing to free). The answer must outlive *out. */
int proxy_answer_read(json_t *answer, proxy_answer_t *out);
void proxy_answer_free(proxy_answer_t *answer);

/* Reads one element of answer->emit: 1 (release it with proxy_emit_release), 0 when it names
 * no event or one with a NUL (skipped), -1 when memory runs out. */
int proxy_emit_read(json_t *value, proxy_emit_t *emit);
void proxy_emit_release(proxy_emit_t *emit);

#endif
