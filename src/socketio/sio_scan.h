/* A bounds-checked JSON scanner for pass-through events (issue 12): it tells whether a text is
 * one JSON value exactly as the Socket.IO decoder accepts it, without building a tree, and where
 * an EVENT payload's name and arguments are, so that arguments passed through (an ack of what a
 * client sent) can travel as their bytes.
 *
 * "Accepts" is sioc__sio_json_load's (sio_parser.h): jansson's json_loadb(JSON_DECODE_ANY |
 * JSON_ALLOW_NUL), integers beyond int64 read again as reals, a lone surrogate escape as U+FFFD:
 * RFC 8259 syntax, no raw NUL byte, strings of valid UTF-8 (no overlong form, no surrogate,
 * nothing past U+10FFFF) (an escape of a lone surrogate makes the text not canonical),
 * no "\u0000" in an object key, no number that overflows a double, at most 2048 nested values
 * (jansson counts the innermost scalar too). tests/fuzz/fuzz_sio_scan.c checks the verdict
 * against jansson's. */
#ifndef SIOC_SOCKETIO_SIO_SCAN_H
#define SIOC_SOCKETIO_SIO_SCAN_H

#include <stddef.h>

typedef struct sioc__sio_scan_s {
    /* The first element: a string's bytes between its quotes as written, or a number's text. */
    size_t name_start;
    size_t name_length;
    int name_is_string;
    int name_escaped; /* a string with a backslash in it: its value differs from its bytes */
    /* The elements after the name as written, separators included ("" with none): "[" + these
     * + "]" is the JSON text of the event's arguments. */
    size_t args_start;
    size_t args_length;
    /* 1 when the whole text is exactly what sio_parser.c's encoder (JSON.stringify) writes for
     * the value it holds, so its bytes can be sent again as they are; 0 when it may not be (the
     * test is conservative: white space, an escape JSON.stringify would not write, a number not
     * in its shortest form or written with an exponent, an object with a key twice or an
     * array-index key, more keys open at once than the scanner tracks). */
    int canonical;
} sioc__sio_scan_t;

/* A copy of text (malloc'd, length bytes, the caller frees it) with every lone surrogate escape
 * turned into "\uFFFD", the same length, or NULL when it has none (or out of memory). Every
 * backslash in a JSON text starts an escape, so walking escape by escape keeps "\\uD800" (a
 * backslash, then text) apart from "\uD800". sioc__sio_json_load's second try. */
char *sioc__sio_scan_without_lone_surrogates(const char *text, size_t length);

/* 0 if text[0..length) is one JSON value the decoder accepts, else -1. *canonical (may be NULL)
 * as in sioc__sio_scan_t. */
int sioc__sio_scan_json(const char *text, size_t length, int *canonical);

/* 0 if text is a JSON value the decoder accepts that is an array whose first element is a
 * number or a string (an EVENT payload; reserved names are the caller's check, since an escaped
 * name must be decoded first), with *out filled; -1 otherwise. */
int sioc__sio_scan_event(const char *text, size_t length, sioc__sio_scan_t *out);

#endif
