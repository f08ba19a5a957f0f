/* The local room index (memory_adapter.c) against a plain model: a room of one is one block
 * (its first member's membership inside the room), members stay in the order joined through any
 * sequence of joins and leaves (the first member's prev is the last), rooms are listed in the
 * order made, and an emptied room goes. White-box: sockets and the namespace are the library's
 * own structures, made here without a network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "socketio/sio_internal.h"

#define SOCKETS 8
#define ROOMS 3
#define STEPS 4000

typedef struct fixture_s {
    sioc_server_t server;
    sioc_namespace_t nsp;
    sioc__adapter_t *adapter;
    sioc_socket_t *sockets[SOCKETS];
    /* The model: each room's members in the order joined, and the rooms in the order made. */
    int members[ROOMS][SOCKETS];
    int member_count[ROOMS];
    int made[ROOMS];
    int made_count;
} fixture_t;

static const char *const room_names[ROOMS] = {"user:1", "algebra", "a room with a longer name"};

static fixture_t *fixture_new(void)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->nsp.server = &f->server;
    f->nsp.name = "/";
    sioc__index_init(&f->nsp.sockets_by_id, offsetof(sioc_socket_t, id));
    f->adapter = sioc__memory_adapter_new(&f->nsp);
    assert_non_null(f->adapter);
    f->nsp.index = f->adapter;
    for (int i = 0; i < SOCKETS; i++) {
        sioc_socket_t *socket = calloc(1, sizeof(*socket) + SIOC_ID_SIZE + 1);
        assert_non_null(socket);
        snprintf(socket->id, SIOC_ID_SIZE, "socket-%013d", i);
        socket->nsp = &f->nsp;
        socket->state = SIO_SOCKET_CONNECTED;
        f->sockets[i] = socket;
    }
    return f;
}

static void fixture_free(fixture_t *f, int leave_first)
{
    for (int i = 0; leave_first && i < SOCKETS; i++)
        sioc__memory_adapter_leave_all(f->adapter, f->sockets[i]);
    /* Otherwise the adapter goes with members in its rooms, as at a namespace's end. */
    sioc__memory_adapter_free(f->adapter);
    for (int i = 0; i < SOCKETS; i++) {
        assert_int_equal(f->sockets[i]->rooms.count, 0);
        sioc__room_set_free(&f->sockets[i]->rooms);
        free(f->sockets[i]);
    }
    sioc__index_clear(&f->nsp.sockets_by_id);
    free(f);
}

static sioc__room_t *room_of(fixture_t *f, int room)
{
    return sioc__index_find(&f->adapter->rooms, room_names[room]);
}

static void model_join(fixture_t *f, int room, int socket)
{
    for (int i = 0; i < f->member_count[room]; i++)
        if (f->members[room][i] == socket)
            return;
    if (f->member_count[room] == 0)
        f->made[f->made_count++] = room;
    f->members[room][f->member_count[room]++] = socket;
}

static void model_leave(fixture_t *f, int room, int socket)
{
    int *members = f->members[room];
    for (int i = 0; i < f->member_count[room]; i++) {
        if (members[i] != socket)
            continue;
        memmove(members + i, members + i + 1,
                (size_t)(f->member_count[room] - i - 1) * sizeof(int));
        if (--f->member_count[room] == 0) {
            for (int j = 0; j < f->made_count; j++)
                if (f->made[j] == room) {
                    memmove(f->made + j, f->made + j + 1,
                            (size_t)(f->made_count - j - 1) * sizeof(int));
                    f->made_count--;
                    break;
                }
        }
        return;
    }
}

typedef struct visits_s {
    fixture_t *fixture;
    int order[SOCKETS];
    int count;
} visits_t;

static void on_visit(sioc_socket_t *socket, void *data)
{
    visits_t *visits = data;
    for (int i = 0; i < SOCKETS; i++)
        if (visits->fixture->sockets[i] == socket)
            visits->order[visits->count++] = i;
}

/* The index, the lists and what the adapter answers, against the model. */
static void assert_matches_model(fixture_t *f)
{
    for (int r = 0; r < ROOMS; r++) {
        sioc__room_t *room = room_of(f, r);
        assert_int_equal(sioc__memory_adapter_room_size(f->adapter, room_names[r]),
                         f->member_count[r]);
        assert_int_equal(sioc__memory_adapter_has_room(f->adapter, room_names[r]),
                         f->member_count[r] > 0);
        if (f->member_count[r] == 0) {
            assert_null(room);
            continue;
        }
        assert_non_null(room);
        assert_int_equal(room->member_count, f->member_count[r]);
        const sioc__membership_t *member = room->members;
        assert_ptr_equal(member->prev->next, NULL); /* the first's prev is the last */
        int inline_used = 0;
        for (int i = 0; i < f->member_count[r]; i++, member = member->next) {
            assert_non_null(member);
            assert_ptr_equal(member->socket, f->sockets[f->members[r][i]]);
            assert_ptr_equal(member->room, room);
            if (i > 0)
                assert_ptr_equal(member->prev->next, member);
            if (member->next == NULL)
                assert_ptr_equal(room->members->prev, member);
            inline_used += member == &room->inline_member;
            assert_true(sioc__memory_adapter_in_room(member->socket, room_names[r]));
        }
        assert_null(member);
        /* Nobody uses the inline membership unless it is in the list. */
        assert_int_equal(inline_used, room->inline_member.socket != NULL);
        visits_t visits = {.fixture = f};
        sioc_adapter_opts_t opts = {.rooms = &room_names[r], .room_count = 1};
        assert_int_equal(sioc__memory_adapter_select(f->adapter, &opts, on_visit, &visits),
                         f->member_count[r]);
        assert_memory_equal(visits.order, f->members[r], (size_t)visits.count * sizeof(int));
    }
    assert_int_equal(sioc__memory_adapter_room_count(f->adapter), f->made_count);
    json_t *names = sioc__memory_adapter_rooms(f->adapter);
    assert_int_equal(json_array_size(names), f->made_count);
    for (int i = 0; i < f->made_count; i++)
        assert_string_equal(json_string_value(json_array_get(names, i)), room_names[f->made[i]]);
    json_decref(names);
}

static void test_room_of_one_is_one_block(void **state)
{
    fixture_t *f = fixture_new();
    assert_int_equal(sioc__memory_adapter_join(f->adapter, f->sockets[0], "user:1"), 0);
    sioc__room_t *room = room_of(f, 0);
    assert_non_null(room);
    assert_ptr_equal(room->members, &room->inline_member);
    assert_ptr_equal(room->inline_member.socket, f->sockets[0]);
    /* A second member has a membership of its own; the first leaving frees the inline one for
     * the next to join. */
    assert_int_equal(sioc__memory_adapter_join(f->adapter, f->sockets[1], "user:1"), 0);
    assert_true(room->members->next != &room->inline_member);
    sioc__memory_adapter_leave(f->adapter, f->sockets[0], "user:1");
    assert_null(room->inline_member.socket);
    assert_int_equal(sioc__memory_adapter_join(f->adapter, f->sockets[2], "user:1"), 0);
    assert_ptr_equal(room->members->next, &room->inline_member);
    assert_ptr_equal(room->inline_member.socket, f->sockets[2]);
    sioc__memory_adapter_leave(f->adapter, f->sockets[1], "user:1");
    sioc__memory_adapter_leave(f->adapter, f->sockets[2], "user:1");
    assert_null(room_of(f, 0)); /* emptied: gone */
    assert_int_equal(sioc__memory_adapter_room_count(f->adapter), 0);
    fixture_free(f, 1);
}

/* Joins and leaves in a fixed pseudo-random order, checked against the model after each. */
static void run_steps(fixture_t *f, uint32_t seed)
{
    for (int step = 0; step < STEPS; step++) {
        seed = seed * 1103515245u + 12345u;
        int socket = (int)(seed >> 16) % SOCKETS;
        int room = (int)(seed >> 8) % ROOMS;
        int join = (seed >> 4) % 2; /* each room fills and empties many times */
        sioc_socket_t *s = f->sockets[socket];
        if ((seed >> 24) % 97 == 0) {
            sioc__memory_adapter_leave_all(f->adapter, s);
            for (int r = 0; r < ROOMS; r++)
                model_leave(f, r, socket);
        } else if (join) {
            assert_int_equal(sioc__memory_adapter_join(f->adapter, s, room_names[room]), 0);
            model_join(f, room, socket);
        } else {
            sioc__memory_adapter_leave(f->adapter, s, room_names[room]);
            model_leave(f, room, socket);
        }
        assert_matches_model(f);
    }
}

static void test_members_keep_the_order_joined(void **state)
{
    fixture_t *f = fixture_new();
    run_steps(f, 1);
    fixture_free(f, 1);
}

static void test_adapter_freed_with_members(void **state)
{
    fixture_t *f = fixture_new();
    run_steps(f, 7);
    for (int i = 0; i < SOCKETS; i++)
        for (int r = 0; r < ROOMS; r++)
            assert_int_equal(sioc__memory_adapter_join(f->adapter, f->sockets[i], room_names[r]),
                             0);
    fixture_free(f, 0);
}

/* Which sockets a select of rooms a and b except room c visits, as a bit set (each once). */
static unsigned select_bits(fixture_t *f, int a, int b, int c)
{
    const char *rooms[] = {room_names[a], room_names[b]};
    const char *except[] = {room_names[c]};
    sioc_adapter_opts_t opts = {
        .rooms = rooms, .room_count = 2, .except = except, .except_count = 1};
    visits_t visits = {.fixture = f};
    size_t count = sioc__memory_adapter_select(f->adapter, &opts, on_visit, &visits);
    assert_int_equal(count, visits.count);
    unsigned bits = 0;
    for (int i = 0; i < visits.count; i++) {
        assert_false(bits & (1u << visits.order[i])); /* once */
        bits |= 1u << visits.order[i];
    }
    return bits;
}

/* The marks are 32 bits: across the point where they are cleared, a select still visits each
 * selected socket once, skips the excepted ones, and a mark left from long before (equal to a
 * later select's) does not hide a socket. */
static void test_marks_cleared_before_they_come_round(void **state)
{
    (void)state;
    fixture_t *f = fixture_new();
    HASH_ADD_KEYPTR(hh, f->server.namespaces, f->nsp.name, strlen(f->nsp.name), &f->nsp);
    for (int i = 0; i < SOCKETS - 1; i++) /* the namespace's list, for a select of everyone */
        f->sockets[i]->next_in_nsp = f->sockets[i + 1];
    f->nsp.sockets = f->sockets[0];
    for (int i = 0; i < 4; i++) /* room 0: sockets 0-3, room 1: 2-5, room 2: 4 */
        assert_int_equal(sioc__memory_adapter_join(f->adapter, f->sockets[i], room_names[0]), 0);
    for (int i = 2; i < 6; i++)
        assert_int_equal(sioc__memory_adapter_join(f->adapter, f->sockets[i], room_names[1]), 0);
    assert_int_equal(sioc__memory_adapter_join(f->adapter, f->sockets[4], room_names[2]), 0);

    f->server.broadcast_generation = UINT32_MAX - 65536u - 3;
    f->sockets[1]->seen_mark = 1; /* what the first select after the clearing will use */
    f->sockets[7]->except_mark = 2;
    for (int round = 0; round < 8; round++) {
        assert_int_equal(select_bits(f, 0, 1, 2), 0x2f); /* 0, 1, 2, 3, 5 */
        visits_t visits = {.fixture = f};
        sioc_adapter_opts_t everyone = {0};
        assert_int_equal(sioc__memory_adapter_select(f->adapter, &everyone, on_visit, &visits),
                         SOCKETS);
    }
    assert_true(f->server.broadcast_generation < 100);
    HASH_CLEAR(hh, f->server.namespaces);
    fixture_free(f, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_room_of_one_is_one_block),
        cmocka_unit_test(test_members_keep_the_order_joined),
        cmocka_unit_test(test_adapter_freed_with_members),
        cmocka_unit_test(test_marks_cleared_before_they_come_round),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
