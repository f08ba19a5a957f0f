/* Incremental UTF-8 validation (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF).
 * A text WebSocket message may be split over fragments at any byte, so the validator keeps the
 * state of a partly seen code point between calls. Pure: no allocation. */
#ifndef SIOC_CORE_UTF8_H
#define SIOC_CORE_UTF8_H

#include <stddef.h>
#include <stdint.h>

typedef struct sioc__utf8_validator_s {
    uint32_t state; /* 0 = between code points; anything else = inside one */
    uint32_t codepoint;
} sioc__utf8_validator_t;

void sioc__utf8_validator_init(sioc__utf8_validator_t *validator);

/* Feeds bytes. Returns 0 while the text so far is valid (possibly ending inside a code point),
 * -1 as soon as it cannot be valid UTF-8; after -1 the validator stays failed. */
int sioc__utf8_validator_feed(sioc__utf8_validator_t *validator, const uint8_t *data,
                              size_t length);

/* 1 when the text ended on a code point boundary (a complete message may end here). */
int sioc__utf8_validator_is_complete(const sioc__utf8_validator_t *validator);

/* One-shot: 1 when data is entirely valid UTF-8, else 0. */
int sioc__utf8_is_valid(const uint8_t *data, size_t length);

#endif
