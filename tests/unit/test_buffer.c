/* Refcounted buffers: a small buffer's block is kept by its thread when freed and given to the
 * next small buffer, at most SPARE_MAX (64) of them; large ones are not kept; a thread's kept
 * blocks are freed when it exits (the ASan build's leak check fails otherwise). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/buffer.h"

#include <sanitizer/asan_interface.h>

/* Under AddressSanitizer a kept block must be poisoned, so that a use after unref is reported. */
#if defined(__SANITIZE_ADDRESS__)
#define ASSERT_POISONED(pointer, expected)                                                         \
    assert_int_equal(__asan_address_is_poisoned(pointer), expected)
#else
#define ASSERT_POISONED(pointer, expected) ((void)(pointer))
#endif

static void drain_spares(void)
{
    /* Takes every kept block, then frees them past the cap: none is kept afterwards. */
    sioc__buffer_t *taken[64];
    size_t count = sioc__buffer_spare_count();
    for (size_t i = 0; i < count; i++)
        taken[i] = sioc__buffer_new(1, 0);
    assert_int_equal(sioc__buffer_spare_count(), 0);
    for (size_t i = 0; i < count; i++) {
        taken[i]->small = 0; /* freed, not kept */
        sioc__buffer_unref(taken[i]);
    }
}

static void test_small_block_is_reused(void **state)
{
    drain_spares();
    sioc__buffer_t *first = sioc__buffer_new_copy("43[\"ok\"]", 8, 0);
    assert_non_null(first);
    assert_memory_equal(first->data, "43[\"ok\"]", 8);
    sioc__buffer_unref(first);
    assert_int_equal(sioc__buffer_spare_count(), 1);
    ASSERT_POISONED(first, 1);
    ASSERT_POISONED((const char *)first + 119, 1);
    sioc__buffer_t *second = sioc__buffer_new(SIOC_BUFFER_SPARE_LENGTH, 1);
    assert_ptr_equal(second, first);
    ASSERT_POISONED(second, 0);
    ASSERT_POISONED(second->data + SIOC_BUFFER_SPARE_LENGTH - 1, 0);
    assert_int_equal(sioc__buffer_spare_count(), 0);
    /* A kept block comes back as a fresh buffer. */
    assert_int_equal(second->refcount, 1);
    assert_int_equal(second->binary, 1);
    assert_int_equal(second->length, SIOC_BUFFER_SPARE_LENGTH);
    assert_null(second->deflated);
    assert_ptr_equal(second->data, second->storage + SIOC_BUFFER_HEADROOM);
    memset(second->data, 'x', SIOC_BUFFER_SPARE_LENGTH); /* the whole length is usable */
    sioc__buffer_unref(second);
}

static void test_large_buffer_is_not_kept(void **state)
{
    drain_spares();
    sioc__buffer_t *large = sioc__buffer_new(SIOC_BUFFER_SPARE_LENGTH + 1, 0);
    assert_non_null(large);
    sioc__buffer_unref(large);
    assert_int_equal(sioc__buffer_spare_count(), 0);
}

static void test_spares_are_capped(void **state)
{
    drain_spares();
    sioc__buffer_t *buffers[70];
    for (int i = 0; i < 70; i++)
        assert_non_null(buffers[i] = sioc__buffer_new(8, 0));
    for (int i = 0; i < 70; i++)
        sioc__buffer_unref(buffers[i]);
    assert_int_equal(sioc__buffer_spare_count(), 64);
}

static void *make_and_free(void *unused)
{
    for (int i = 0; i < 3; i++)
        sioc__buffer_unref(sioc__buffer_new(8, 0));
    return sioc__buffer_spare_count() == 1 ? (void *)1 : NULL;
}

static void test_thread_exit_frees_its_spares(void **state)
{
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, make_and_free, NULL), 0);
    void *result;
    assert_int_equal(pthread_join(thread, &result), 0);
    assert_non_null(result); /* it kept one; LeakSanitizer checks it was freed at its exit */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_block_is_reused),
        cmocka_unit_test(test_large_buffer_is_not_kept),
        cmocka_unit_test(test_spares_are_capped),
        cmocka_unit_test(test_thread_exit_frees_its_spares),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
