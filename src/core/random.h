/* Identifiers from the CSPRNG (OpenSSL RAND_bytes): predictable ids were CVE-2017-16031. */
#ifndef SIOC_CORE_RANDOM_H
#define SIOC_CORE_RANDOM_H

#include <stddef.h>

#define SIOC_ID_LENGTH 20

/* Writes a 20-character id (15 random bytes as base64url: A-Z a-z 0-9 - _) and a NUL to out,
 * the same shape as Node's base64id, so tools that key on 20-character ids (the sharded Redis
 * adapter) keep working. Returns 0, or -1 if the CSPRNG failed (nothing usable was written). */
int sioc__random_id(char out[SIOC_ID_LENGTH + 1]);

/* Fills out with length random bytes from the CSPRNG; 0 or -1. */
int sioc__random_bytes(void *out, size_t length);

#endif
