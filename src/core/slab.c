#include "core/slab.h"

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include <sanitizer/asan_interface.h>

/* At the start of every page; the blocks follow. A full page is in no list: a block's free
 * finds it by its address and puts it back in the slab's list. */
struct sioc__slab_page_s {
    sioc__slab_page_t *next;
    sioc__slab_page_t *prev;
    void *free_blocks;       /* a list through each free block's first 8 bytes */
    uint64_t empty_since_ms; /* in the empty list: since when */
    uint32_t carved; /* blocks handed out at least once; the rest of the page is untouched */
    uint32_t in_use;
};

#define HEADER_SIZE 64
_Static_assert(sizeof(sioc__slab_page_t) <= HEADER_SIZE, "the page header fits its room");

static uint32_t capacity_of(const sioc__slab_t *slab)
{
    return (uint32_t)((SIOC_SLAB_PAGE_SIZE - HEADER_SIZE) / slab->block_size);
}

static sioc__slab_page_t *page_of(void *block)
{
    return (sioc__slab_page_t *)((uintptr_t)block & ~(uintptr_t)(SIOC_SLAB_PAGE_SIZE - 1));
}

void sioc__slab_init(sioc__slab_t *slab, size_t block_size)
{
    memset(slab, 0, sizeof(*slab));
    slab->block_size = (uint32_t)((block_size + 15) & ~(size_t)15);
}

/* mmap gives no alignment beyond 4 KiB: map twice the size and unmap what lies outside the
 * aligned page. */
static sioc__slab_page_t *map_page(void)
{
    size_t size = SIOC_SLAB_PAGE_SIZE;
    char *area = mmap(NULL, 2 * size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (area == MAP_FAILED)
        return NULL;
    char *page = (char *)(((uintptr_t)area + size - 1) & ~(uintptr_t)(size - 1));
    if (page > area)
        munmap(area, (size_t)(page - area));
    munmap(page + size, (size_t)(area + size - page));
    return (sioc__slab_page_t *)page;
}

static void unlink_page(sioc__slab_t *slab, sioc__slab_page_t *page)
{
    if (page->prev != NULL)
        page->prev->next = page->next;
    else
        slab->pages = page->next;
    if (page->next != NULL)
        page->next->prev = page->prev;
    page->next = page->prev = NULL;
}

static void push_page(sioc__slab_t *slab, sioc__slab_page_t *page)
{
    page->prev = NULL;
    page->next = slab->pages;
    if (slab->pages != NULL)
        slab->pages->prev = page;
    slab->pages = page;
}

/* An empty page at the head of the list: the one emptied last, or a new one. */
static sioc__slab_page_t *fresh_page(sioc__slab_t *slab)
{
    sioc__slab_page_t *page = slab->empty;
    if (page != NULL) {
        slab->empty = page->next;
        slab->pages_empty--;
        /* Its blocks were poisoned as they were freed; carving starts afresh. */
        ASAN_UNPOISON_MEMORY_REGION(page, SIOC_SLAB_PAGE_SIZE);
    } else {
        page = map_page();
        if (page == NULL)
            return NULL;
        slab->pages_mapped++;
    }
    memset(page, 0, sizeof(*page));
    push_page(slab, page);
    return page;
}

void *sioc__slab_alloc(sioc__slab_t *slab)
{
    sioc__slab_page_t *page = slab->pages != NULL ? slab->pages : fresh_page(slab);
    if (page == NULL)
        return NULL;
    void *block = page->free_blocks;
    if (block != NULL) {
        ASAN_UNPOISON_MEMORY_REGION(block, slab->block_size);
        memcpy(&page->free_blocks, block, sizeof(void *));
    } else {
        block = (char *)page + HEADER_SIZE + (size_t)page->carved++ * slab->block_size;
    }
    page->in_use++;
    slab->blocks_in_use++;
    if (page->in_use == capacity_of(slab))
        unlink_page(slab, page);
    return block;
}

static void unmap_page(sioc__slab_t *slab, sioc__slab_page_t *page)
{
    ASAN_UNPOISON_MEMORY_REGION(page, SIOC_SLAB_PAGE_SIZE);
    munmap(page, SIOC_SLAB_PAGE_SIZE);
    slab->pages_mapped--;
}

void sioc__slab_free(sioc__slab_t *slab, void *block, uint64_t now_ms)
{
    sioc__slab_page_t *page = page_of(block);
    if (page->in_use == capacity_of(slab))
        push_page(slab, page); /* full until now: it has room again */
    memcpy(block, &page->free_blocks, sizeof(void *));
    page->free_blocks = block;
    /* A write into a freed block is still reported, as free() would have it. */
    ASAN_POISON_MEMORY_REGION(block, slab->block_size);
    page->in_use--;
    slab->blocks_in_use--;
    if (page->in_use > 0)
        return;
    unlink_page(slab, page);
    page->empty_since_ms = now_ms;
    page->next = slab->empty;
    slab->empty = page;
    slab->pages_empty++;
}

int sioc__slab_release_empty(sioc__slab_t *slab, uint64_t now_ms, int force)
{
    sioc__slab_page_t **link = &slab->empty;
    while (*link != NULL) {
        sioc__slab_page_t *page = *link;
        if (force || now_ms - page->empty_since_ms >= SIOC_SLAB_EMPTY_MS) {
            *link = page->next;
            slab->pages_empty--;
            unmap_page(slab, page);
        } else {
            link = &page->next;
        }
    }
    return slab->empty != NULL;
}

void sioc__slab_destroy(sioc__slab_t *slab)
{
    sioc__slab_release_empty(slab, 0, 1);
    while (slab->pages != NULL) {
        sioc__slab_page_t *page = slab->pages;
        unlink_page(slab, page);
        unmap_page(slab, page);
    }
    /* Full pages are in no list: with blocks in use they are lost, as the header says. */
}
