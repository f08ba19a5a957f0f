/* An index of entries by a string key kept inside each entry (a session by its sid, a socket
 * by its id): open addressing with linear probing over one array of pointers, growing and
 * shrinking by halves. An entry costs 8 bytes over 0.375 to 0.75 of a slot (11 to 21 bytes)
 * instead of uthash's 56-byte handle plus its buckets, and the entry does not change.
 *
 * The keys it holds are the server's own random ids, or (the daemon's chat driver) user ids
 * from tokens the app's back end signed, so no seed is needed against collisions chosen by a
 * peer: a lookup of any string only walks one cluster. An app whose users pick their own ids
 * (usernames as ids) gives them that choice; uthash, which this replaced, had no seed either.
 *
 * The order of the slots is that of the hashes, not of insertion; a caller that needs
 * insertion order keeps a list. */
#ifndef SIOC_CORE_INDEX_H
#define SIOC_CORE_INDEX_H

#include <stddef.h>
#include <stdint.h>

typedef struct sioc__index_s {
    void **slots;      /* capacity pointers, NULL = empty; NULL until the first entry */
    uint32_t capacity; /* 0 or a power of two */
    uint32_t count;
    uint32_t key_offset; /* where each entry's NUL-terminated key starts */
} sioc__index_t;

/* An empty index of entries whose key is at key_offset (offsetof(entry type, key member)). */
void sioc__index_init(sioc__index_t *index, size_t key_offset);

/* Frees the slots (not the entries); the index is empty and usable again. */
void sioc__index_clear(sioc__index_t *index);

void *sioc__index_find(const sioc__index_t *index, const char *key);

/* Adds entry, whose key must not be in the index yet. 0, or SIOC_ENOMEM (nothing changed). */
int sioc__index_add(sioc__index_t *index, void *entry);

/* Removes entry (by pointer) if present; may move other entries and shrink the slots, so a
 * walk over the slots must not remove: to remove every entry, take sioc__index_any() until
 * none is left. */
void sioc__index_remove(sioc__index_t *index, void *entry);

/* Some entry (the one in the first used slot), or NULL when empty. The index is at least an
 * eighth full above its smallest size, so this looks at a few slots on average. */
void *sioc__index_any(const sioc__index_t *index);

/* The entry in slot i (i < capacity), or NULL: for a walk that changes nothing. */
static inline void *sioc__index_at(const sioc__index_t *index, uint32_t i)
{
    return index->slots[i];
}

#endif
