/* Open addressing with linear probing and backward-shift deletion (no tombstones: a table
 * that sees a session come and go for every connection would fill with them). */
#include "core/index.h"

#include <stdlib.h>
#include <string.h>

#include "sioc.h"

/* Below this the slots are not shrunk: a namespace's first sockets come and go without
 * reallocating. */
#define MIN_CAPACITY 16

static const char *key_of(const sioc__index_t *index, const void *entry)
{
    return (const char *)entry + index->key_offset;
}

/* FNV-1a: the keys are random ids already; this only has to spread them. */
static uint32_t hash_of(const char *key)
{
    uint32_t hash = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++)
        hash = (hash ^ *p) * 16777619u;
    return hash;
}

void sioc__index_init(sioc__index_t *index, size_t key_offset)
{
    memset(index, 0, sizeof(*index));
    index->key_offset = (uint32_t)key_offset;
}

void sioc__index_clear(sioc__index_t *index)
{
    free(index->slots);
    index->slots = NULL;
    index->capacity = index->count = 0;
}

void *sioc__index_find(const sioc__index_t *index, const char *key)
{
    if (index->count == 0)
        return NULL;
    uint32_t mask = index->capacity - 1;
    for (uint32_t i = hash_of(key) & mask;; i = (i + 1) & mask) {
        void *entry = index->slots[i];
        if (entry == NULL)
            return NULL;
        if (strcmp(key_of(index, entry), key) == 0)
            return entry;
    }
}

static void place(void **slots, uint32_t mask, const sioc__index_t *index, void *entry)
{
    uint32_t i = hash_of(key_of(index, entry)) & mask;
    while (slots[i] != NULL)
        i = (i + 1) & mask;
    slots[i] = entry;
}

static int resize(sioc__index_t *index, uint32_t capacity)
{
    void **slots = calloc(capacity, sizeof(*slots));
    if (slots == NULL)
        return SIOC_ENOMEM;
    for (uint32_t i = 0; i < index->capacity; i++) {
        if (index->slots[i] != NULL)
            place(slots, capacity - 1, index, index->slots[i]);
    }
    free(index->slots);
    index->slots = slots;
    index->capacity = capacity;
    return 0;
}

int sioc__index_add(sioc__index_t *index, void *entry)
{
    /* At most three quarters full: linear probing's walks stay short. */
    if ((uint64_t)(index->count + 1) * 4 > (uint64_t)index->capacity * 3) {
        if (index->capacity >= (UINT32_C(1) << 31))
            return SIOC_ENOMEM;
        int rc = resize(index, index->capacity ? index->capacity * 2 : MIN_CAPACITY);
        if (rc != 0)
            return rc;
    }
    place(index->slots, index->capacity - 1, index, entry);
    index->count++;
    return 0;
}

/* 1 when home lies cyclically in (hole, i]: the entry at i may not move back to hole. */
static int stays(uint32_t home, uint32_t hole, uint32_t i)
{
    return hole <= i ? (hole < home && home <= i) : (hole < home || home <= i);
}

void sioc__index_remove(sioc__index_t *index, void *entry)
{
    if (index->count == 0)
        return;
    uint32_t mask = index->capacity - 1;
    uint32_t hole = hash_of(key_of(index, entry)) & mask;
    while (index->slots[hole] != entry) {
        if (index->slots[hole] == NULL)
            return;
        hole = (hole + 1) & mask;
    }
    /* Backward shift: later entries of the cluster that may live in the hole move into it. */
    for (uint32_t i = (hole + 1) & mask; index->slots[i] != NULL; i = (i + 1) & mask) {
        uint32_t home = hash_of(key_of(index, index->slots[i])) & mask;
        if (stays(home, hole, i))
            continue;
        index->slots[hole] = index->slots[i];
        hole = i;
    }
    index->slots[hole] = NULL;
    index->count--;
    if (index->count == 0) {
        sioc__index_clear(index);
        return;
    }
    /* An eighth full: half the slots (then a quarter full, so a few adds and removes around
     * the threshold do not reallocate each time). Failing to shrink is harmless. */
    if (index->capacity > MIN_CAPACITY && (uint64_t)index->count * 8 < index->capacity)
        resize(index, index->capacity / 2);
}

void *sioc__index_any(const sioc__index_t *index)
{
    for (uint32_t i = 0; index->count > 0 && i < index->capacity; i++) {
        if (index->slots[i] != NULL)
            return index->slots[i];
    }
    return NULL;
}
