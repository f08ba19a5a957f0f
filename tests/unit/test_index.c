/* The open-addressing index (core/index.c) against a plain array as the reference: random adds
 * and removes in small tables (long clusters that wrap around the end), growth to 20,000
 * entries and shrinking back, and removal of everything through sioc__index_any(). After every
 * change each entry must still be found and each removed one not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/index.h"
#include "sioc.h"

#define MAX_ENTRIES 20000

typedef struct entry_s {
    int present;
    char key[24];
} entry_t;

static entry_t entries[MAX_ENTRIES];

static uint32_t next_random(uint32_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    return *state;
}

/* Keys shaped like the ids the index holds: 20 random base64url characters, unique by their
 * prefix. */
static void make_entries_seeded(uint32_t seed)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint32_t state = seed;
    for (int i = 0; i < MAX_ENTRIES; i++) {
        entries[i].present = 0;
        int used = snprintf(entries[i].key, sizeof(entries[i].key), "%05d", i);
        for (int c = used; c < 20; c++)
            entries[i].key[c] = alphabet[next_random(&state) % 64];
        entries[i].key[20] = '\0';
    }
}

static void make_entries(void)
{
    make_entries_seeded(2463534242u);
}

/* Every present entry found (and itself), every absent one not, count right. */
static void check_all(const sioc__index_t *index, int limit)
{
    uint32_t count = 0;
    for (int i = 0; i < limit; i++) {
        entry_t *found = sioc__index_find(index, entries[i].key);
        if (entries[i].present) {
            assert_ptr_equal(found, &entries[i]);
            count++;
        } else {
            assert_null(found);
        }
    }
    assert_int_equal(index->count, count);
    uint32_t used = 0;
    for (uint32_t i = 0; i < index->capacity; i++)
        used += sioc__index_at(index, i) != NULL;
    assert_int_equal(used, count);
}

static void test_empty(void **unused)
{
    sioc__index_t index;
    sioc__index_init(&index, offsetof(entry_t, key));
    assert_null(sioc__index_find(&index, "nothing"));
    assert_null(sioc__index_any(&index));
    sioc__index_remove(&index, &entries[0]); /* absent: nothing happens */
    assert_int_equal(index.count, 0);
    assert_null(index.slots);
}

static void test_add_find_remove(void **unused)
{
    make_entries();
    sioc__index_t index;
    sioc__index_init(&index, offsetof(entry_t, key));
    for (int i = 0; i < 5; i++) {
        assert_int_equal(sioc__index_add(&index, &entries[i]), 0);
        entries[i].present = 1;
    }
    check_all(&index, 10);
    assert_int_equal(index.capacity, 16);
    sioc__index_remove(&index, &entries[2]);
    entries[2].present = 0;
    check_all(&index, 10);
    sioc__index_remove(&index, &entries[2]); /* twice: a no-op */
    check_all(&index, 10);
    char prefix[8];
    memcpy(prefix, entries[0].key, 7);
    prefix[7] = '\0';
    assert_null(sioc__index_find(&index, prefix)); /* a prefix of a key is another key */
    for (int i = 0; i < 5; i++) {
        sioc__index_remove(&index, &entries[i]);
        entries[i].present = 0;
    }
    check_all(&index, 10);
    assert_null(index.slots); /* empty again: the slots are gone */
}

/* Small tables, many operations: clusters form, wrap past the last slot and are cut by
 * removals at every position; a wrong backward shift loses an entry here. */
static void random_steps(uint32_t seed, int pool, int steps)
{
    make_entries_seeded(seed);
    sioc__index_t index;
    sioc__index_init(&index, offsetof(entry_t, key));
    uint32_t state = seed;
    for (int step = 0; step < steps; step++) {
        int i = (int)(next_random(&state) % (uint32_t)pool);
        if (entries[i].present) {
            sioc__index_remove(&index, &entries[i]);
            entries[i].present = 0;
        } else {
            assert_int_equal(sioc__index_add(&index, &entries[i]), 0);
            entries[i].present = 1;
        }
        check_all(&index, pool);
        assert_true(index.count * 4 <= index.capacity * 3);
    }
    sioc__index_clear(&index);
}

static void test_random_small(void **unused)
{
    for (uint32_t seed = 1; seed <= 50; seed++) {
        random_steps(seed, 12, 400); /* 16 slots up to three quarters full */
        random_steps(seed, 40, 400); /* 16 to 64 slots */
    }
}

static void test_grow_and_shrink(void **unused)
{
    make_entries();
    sioc__index_t index;
    sioc__index_init(&index, offsetof(entry_t, key));
    for (int i = 0; i < MAX_ENTRIES; i++) {
        assert_int_equal(sioc__index_add(&index, &entries[i]), 0);
        entries[i].present = 1;
        assert_true(index.count * 4 <= index.capacity * 3);
    }
    check_all(&index, MAX_ENTRIES);
    assert_int_equal(index.capacity, 32768); /* 20,000 fit under 3/4 of 32,768 */
    /* Down to 100: the slots shrink by halves while under an eighth full. */
    for (int i = 100; i < MAX_ENTRIES; i++) {
        sioc__index_remove(&index, &entries[i]);
        entries[i].present = 0;
        assert_true(index.capacity <= 16 || (uint64_t)index.count * 8 >= index.capacity);
    }
    check_all(&index, MAX_ENTRIES);
    assert_int_equal(index.capacity, 512); /* 100 * 8 < 1024, not < 512 */
    /* Around a threshold, adds and removes do not reallocate each time (hysteresis). */
    void **slots = index.slots;
    for (int round = 0; round < 100; round++) {
        sioc__index_remove(&index, &entries[99]);
        assert_int_equal(sioc__index_add(&index, &entries[99]), 0);
    }
    assert_ptr_equal(index.slots, slots);
    sioc__index_clear(&index);
}

/* Removing everything by taking any entry: each is returned once, the index ends empty. */
static void test_remove_all_through_any(void **unused)
{
    make_entries();
    sioc__index_t index;
    sioc__index_init(&index, offsetof(entry_t, key));
    for (int i = 0; i < 3000; i++) {
        assert_int_equal(sioc__index_add(&index, &entries[i]), 0);
        entries[i].present = 1;
    }
    int removed = 0;
    entry_t *entry;
    while ((entry = sioc__index_any(&index)) != NULL) {
        assert_true(entry->present);
        entry->present = 0;
        sioc__index_remove(&index, entry);
        removed++;
        if (removed % 500 == 0)
            check_all(&index, 3000);
    }
    assert_int_equal(removed, 3000);
    check_all(&index, 3000);
    assert_null(index.slots);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_add_find_remove),
        cmocka_unit_test(test_random_small),
        cmocka_unit_test(test_grow_and_shrink),
        cmocka_unit_test(test_remove_all_through_any),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
