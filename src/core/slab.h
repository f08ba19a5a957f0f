/* Blocks of one size in pages of their own, apart from malloc's heap.
 *
 * For blocks that live for a loop iteration and come by the thousand at once (a broadcast's
 * write queues, one per recipient): from malloc they would sit between the blocks that arrive
 * meanwhile and live for hours (a connecting client's), and once freed leave holes that keep
 * those pages in RSS. Here they take pages no long-lived block shares, and a page whose last
 * block is freed goes back to the kernel (munmap) once it has stayed empty for
 * SIOC_SLAB_EMPTY_MS (sioc__slab_release_empty): a broadcast per loop iteration to a thousand
 * sockets empties and refills the same pages every time, and must not map them anew.
 *
 * One thread: a slab belongs to one loop. Blocks are aligned to 16 bytes. */
#ifndef SIOC_CORE_SLAB_H
#define SIOC_CORE_SLAB_H

#include <stddef.h>
#include <stdint.h>

/* 64 KiB, aligned to its size, so that a block finds its page by masking its address. */
#define SIOC_SLAB_PAGE_SIZE ((size_t)64 * 1024)
#define SIOC_SLAB_EMPTY_MS 1000

typedef struct sioc__slab_page_s sioc__slab_page_t;

typedef struct sioc__slab_s {
    sioc__slab_page_t *pages; /* in use, with a free block; full ones are in no list */
    sioc__slab_page_t *empty; /* mapped, no block in use; the most recently emptied first */
    uint32_t block_size;
    uint32_t pages_mapped; /* empty ones included */
    uint32_t pages_empty;
    uint32_t blocks_in_use;
} sioc__slab_t;

/* An empty slab of blocks of block_size bytes (rounded up to 16; at most a page's worth less its
 * header: SIOC_SLAB_PAGE_SIZE / 4 is a sane bound). Maps nothing yet. */
void sioc__slab_init(sioc__slab_t *slab, size_t block_size);

/* A block of the slab's size (uninitialized), or NULL when no page could be mapped. */
void *sioc__slab_alloc(sioc__slab_t *slab);

/* Gives block (from this slab's sioc__slab_alloc; not NULL) back. A page left empty is kept
 * for the next allocations (now_ms, on the caller's clock, is when it emptied). */
void sioc__slab_free(sioc__slab_t *slab, void *block, uint64_t now_ms);

/* Unmaps the pages that have been empty since SIOC_SLAB_EMPTY_MS before now_ms, or every empty
 * one when force is set. Returns 1 when empty pages are left (so a caller knows to come
 * back). */
int sioc__slab_release_empty(sioc__slab_t *slab, uint64_t now_ms, int force);

/* Unmaps every page. Blocks still in use are lost with them: call it when none is. */
void sioc__slab_destroy(sioc__slab_t *slab);

#endif
