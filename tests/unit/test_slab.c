/* The slab (core/slab.c) against a model: random allocations and frees of blocks over many
 * pages, each block filled with its own byte pattern that must survive until it is freed
 * (blocks never overlap), aligned to 16, inside a page of the slab's; a page is unmapped when
 * its last block goes and has stayed empty for SIOC_SLAB_EMPTY_MS. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sanitizer/asan_interface.h>

#include "core/slab.h"

#define MAX_BLOCKS 6000

static void *blocks[MAX_BLOCKS];

static uint32_t next_random(uint32_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    return *state;
}

static void fill(void *block, size_t size, size_t index)
{
    memset(block, (int)(index % 251), size);
}

static void check(const void *block, size_t size, size_t index)
{
    const uint8_t *bytes = block;
    for (size_t i = 0; i < size; i++)
        assert_int_equal(bytes[i], index % 251);
}

static void run_model(size_t requested_size, uint32_t seed)
{
    sioc__slab_t slab;
    sioc__slab_init(&slab, requested_size);
    size_t size = slab.block_size;
    assert_true(size >= requested_size && size % 16 == 0);
    memset(blocks, 0, sizeof(blocks));
    uint32_t state = seed, live = 0;
    for (int step = 0; step < 60000; step++) {
        size_t i = next_random(&state) % MAX_BLOCKS;
        if (blocks[i] == NULL) {
            blocks[i] = sioc__slab_alloc(&slab);
            assert_non_null(blocks[i]);
            assert_int_equal((uintptr_t)blocks[i] % 16, 0);
            fill(blocks[i], size, i);
            live++;
        } else {
            check(blocks[i], size, i);
            sioc__slab_free(&slab, blocks[i], 0);
            blocks[i] = NULL;
            live--;
        }
        assert_int_equal(slab.blocks_in_use, live);
    }
    uint32_t per_page = (uint32_t)((SIOC_SLAB_PAGE_SIZE - 64) / size);
    assert_true(slab.pages_mapped >= (live + per_page - 1) / per_page);
    for (size_t i = 0; i < MAX_BLOCKS; i++) {
        if (blocks[i] != NULL) {
            check(blocks[i], size, i);
            sioc__slab_free(&slab, blocks[i], 0);
        }
    }
    assert_int_equal(slab.blocks_in_use, 0);
    assert_true(slab.pages_mapped > 0);
    assert_int_equal(slab.pages_empty, slab.pages_mapped); /* kept, for the next burst */
    assert_int_equal(sioc__slab_release_empty(&slab, SIOC_SLAB_EMPTY_MS - 1, 0), 1);
    assert_int_equal(sioc__slab_release_empty(&slab, SIOC_SLAB_EMPTY_MS, 0), 0);
    assert_int_equal(slab.pages_mapped, 0);
    sioc__slab_destroy(&slab);
    assert_int_equal(slab.pages_mapped, 0);
}

static void test_small_blocks(void **state)
{
    run_model(96, 1);
}

static void test_odd_size_is_rounded(void **state)
{
    run_model(100, 7);
}

static void test_large_blocks(void **state)
{
    run_model(6144, 3); /* 10 to a page: many pages, often full */
}

/* Empty pages: each kept until it has been empty for SIOC_SLAB_EMPTY_MS (or when forced), and
 * the one emptied last taken before mapping another. */
static void test_empty_pages(void **state)
{
    sioc__slab_t slab;
    sioc__slab_init(&slab, 6144);
    uint32_t per_page = (uint32_t)((SIOC_SLAB_PAGE_SIZE - 64) / slab.block_size);
    void *first[16], *second[16];
    assert_true(per_page <= 16);
    for (uint32_t i = 0; i < per_page; i++)
        first[i] = sioc__slab_alloc(&slab);
    for (uint32_t i = 0; i < per_page; i++)
        second[i] = sioc__slab_alloc(&slab);
    assert_int_equal(slab.pages_mapped, 2);
    for (uint32_t i = 0; i < per_page; i++)
        sioc__slab_free(&slab, first[i], 5000);
    for (uint32_t i = 0; i < per_page; i++)
        sioc__slab_free(&slab, second[i], 5500);
    assert_int_equal(slab.pages_empty, 2);
    assert_int_equal(sioc__slab_release_empty(&slab, 5000 + SIOC_SLAB_EMPTY_MS - 1, 0), 1);
    assert_int_equal(slab.pages_mapped, 2);
    assert_int_equal(sioc__slab_release_empty(&slab, 5000 + SIOC_SLAB_EMPTY_MS, 0), 1);
    assert_int_equal(slab.pages_mapped, 1); /* the first page went, the second is younger */

    void *again = sioc__slab_alloc(&slab); /* the second page's, no new page */
    assert_ptr_equal(again, second[0]);
    assert_int_equal(slab.pages_empty, 0);
    assert_int_equal(slab.pages_mapped, 1);
    sioc__slab_free(&slab, again, 9000);
    assert_int_equal(sioc__slab_release_empty(&slab, 9000 + SIOC_SLAB_EMPTY_MS, 0), 0);
    assert_int_equal(slab.pages_mapped, 0);
    assert_int_equal(sioc__slab_release_empty(&slab, 0, 1), 0); /* nothing to release */

    void *block = sioc__slab_alloc(&slab);
    sioc__slab_free(&slab, block, 100);
    assert_int_equal(sioc__slab_release_empty(&slab, 100, 1), 0); /* forced: whatever its age */
    assert_int_equal(slab.pages_mapped, 0);
    sioc__slab_destroy(&slab);
}

/* A freed block is poisoned under AddressSanitizer, as free() would leave it; its first 8 bytes
 * hold the free list. */
static void test_freed_block_is_poisoned(void **state)
{
#if defined(__SANITIZE_ADDRESS__)
    sioc__slab_t slab;
    sioc__slab_init(&slab, 48);
    char *block = sioc__slab_alloc(&slab);
    char *other = sioc__slab_alloc(&slab);
    sioc__slab_free(&slab, block, 0);
    assert_true(__asan_address_is_poisoned(block + 8));
    assert_true(__asan_address_is_poisoned(block + 47));
    assert_false(__asan_address_is_poisoned(other));
    block = sioc__slab_alloc(&slab);
    assert_false(__asan_address_is_poisoned(block + 47));
    sioc__slab_free(&slab, block, 0);
    sioc__slab_free(&slab, other, 0);
    sioc__slab_destroy(&slab);
#else
    skip();
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_blocks),
        cmocka_unit_test(test_odd_size_is_rounded),
        cmocka_unit_test(test_large_blocks),
        cmocka_unit_test(test_empty_pages),
        cmocka_unit_test(test_freed_block_is_poisoned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
