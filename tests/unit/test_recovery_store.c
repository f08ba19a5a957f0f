/* The embedded recovery store (recovery_store.h) on a real SQLite file, and its codec
 * (recovery_codec.h): offsets survive a reopen (a restart) and name one packet of one file;
 * a session is taken once; forged, truncated, foreign and expired offsets and pids give no
 * session; rows with garbage in them give no session and are deleted; the bounds hold. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <sqlite3.h>

#include "recovery_codec.h"
#include "recovery_store.h"

#define EPOCH "0123456789abcdef"

/* ---- codec --------------------------------------------------------------------------------- */

static int parse_offset(const char *text, int64_t *seq)
{
    return recovery_offset_parse(text, strlen(text), EPOCH, seq);
}

static void test_offsets(void **state)
{
    (void)state;
    char text[64];
    recovery_offset_format(text, sizeof(text), EPOCH, 42);
    assert_string_equal(text, EPOCH "-42");
    int64_t seq = 0;
    assert_int_equal(parse_offset(text, &seq), 0);
    assert_int_equal(seq, 42);
    assert_int_equal(parse_offset(EPOCH "-9223372036854775807", &seq), 0);
    assert_int_equal(seq, INT64_MAX);
    static const char *const refused[] = {
        "",
        "42",
        EPOCH,
        EPOCH "-",
        EPOCH "-0",
        EPOCH "-042",
        EPOCH "--1",
        EPOCH "-+1",
        EPOCH "-1x",
        EPOCH "-9223372036854775808",
        EPOCH "-99999999999999999999",
        "fedcba9876543210-1", /* another file's */
        "0123456789ABCDEF-1",
        EPOCH "_1",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        assert_int_equal(parse_offset(refused[i], &seq), -1);
    /* A NUL inside, and a truncated one: the length counts, not the terminator. */
    assert_int_equal(recovery_offset_parse(EPOCH "-1\0"
                                                 "2",
                                           19, EPOCH, &seq),
                     -1);
    assert_int_equal(recovery_offset_parse(EPOCH "-12", 17, EPOCH, &seq), -1);
    assert_true(recovery_epoch_valid(EPOCH, 16));
    assert_false(recovery_epoch_valid("0123456789abcdeg", 16));
    assert_false(recovery_epoch_valid(EPOCH, 15));
}

static int decode_entry(const char *data, const char *rooms, const char *except, int64_t count)
{
    json_t *a, *b, *c;
    int rc = recovery_entry_decode(data, strlen(data), rooms, strlen(rooms), except, strlen(except),
                                   count, &a, &b, &c);
    if (rc == 0) {
        assert_non_null(a);
        json_decref(a);
        json_decref(b);
        json_decref(c);
    } else {
        assert_null(a);
        assert_null(b);
        assert_null(c);
    }
    return rc;
}

static void test_entries_and_sessions(void **state)
{
    (void)state;
    assert_int_equal(decode_entry("[\"tick\",1]", "[\"r\"]", "[]", 0), 0);
    assert_int_equal(decode_entry("[\"bin\",{\"_placeholder\":true,\"num\":0}]", "[]", "[]", 1), 0);
    assert_int_equal(decode_entry("[\"bin\",{\"_placeholder\":true,\"num\":1}]", "[]", "[]", 1),
                     -1);
    assert_int_equal(decode_entry("[\"bin\",{\"_placeholder\":true,\"num\":-1}]", "[]", "[]", 1),
                     -1);
    assert_int_equal(decode_entry("[\"bin\",[{\"_placeholder\":true}]]", "[]", "[]", 1), -1);
    assert_int_equal(decode_entry("[1]", "[]", "[]", 0), -1);
    assert_int_equal(decode_entry("[]", "[]", "[]", 0), -1);
    assert_int_equal(decode_entry("{}", "[]", "[]", 0), -1);
    assert_int_equal(decode_entry("[\"tick\"", "[]", "[]", 0), -1);
    assert_int_equal(decode_entry("[\"tick\"]", "[1]", "[]", 0), -1);
    assert_int_equal(decode_entry("[\"tick\"]", "[]", "\"x\"", 0), -1);
    assert_int_equal(decode_entry("[\"tick\"]", "[]", "[]", -1), -1);
    assert_int_equal(decode_entry("[\"tick\"]", "[]", "[]", RECOVERY_MAX_ATTACHMENTS + 1), -1);
    json_t *rooms, *data;
    assert_int_equal(recovery_session_decode("[\"a\"]", 5, "{\"k\":1}", 7, &rooms, &data), 0);
    json_decref(rooms);
    json_decref(data);
    assert_int_equal(recovery_session_decode("[\"a\",2]", 7, "{}", 2, &rooms, &data), -1);
    assert_null(rooms);
    assert_null(data);
    assert_int_equal(recovery_session_decode("[]", 2, "{", 1, &rooms, &data), -1);
    assert_int_equal(recovery_session_decode(NULL, 0, "{}", 2, &rooms, &data), -1);
    /* shouldIncludePacket */
    json_t *in = json_pack("[s,s]", "sid", "room:1");
    json_t *none = json_array(), *room1 = json_pack("[s]", "room:1"),
           *room2 = json_pack("[s]", "room:2"), *sid = json_pack("[s]", "sid");
    assert_true(recovery_entry_selects(in, none, none));
    assert_true(recovery_entry_selects(in, room1, none));
    assert_false(recovery_entry_selects(in, room2, none));
    assert_false(recovery_entry_selects(in, room1, sid));
    assert_false(recovery_entry_selects(in, none, sid));
    json_decref(in);
    json_decref(none);
    json_decref(room1);
    json_decref(room2);
    json_decref(sid);
}

/* ---- the store, on a loop ------------------------------------------------------------------ */

typedef struct fixture_s {
    uv_loop_t loop;
    char path[256];
    recovery_store_t *store;
    sioc_recovery_store_t *base;
} fixture_t;

typedef struct answer_s {
    int done;
    int error;
    char offset[SIOC_RECOVERY_OFFSET_MAX + 1];
    int found;
    char sid[64];
    char *rooms;
    char *data;
    size_t count;
    char missed[16][SIOC_RECOVERY_OFFSET_MAX + 1];
    char *missed_data[16];
    size_t attachment_bytes[16];
} answer_t;

static void free_answer(answer_t *answer)
{
    free(answer->rooms);
    free(answer->data);
    for (size_t i = 0; i < answer->count && i < 16; i++)
        free(answer->missed_data[i]);
    memset(answer, 0, sizeof(*answer));
}

static void wait_for(fixture_t *f, const int *done)
{
    for (int i = 0; i < 2000 && !*done; i++)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_true(*done);
}

static void open_store(fixture_t *f, uint32_t window_ms, uint64_t max_packets)
{
    char error[512] = "";
    recovery_store_options_t options = {f->path, window_ms, max_packets, 1000};
    assert_int_equal(recovery_store_open(&f->loop, &options, &f->store, error, sizeof(error)), 0);
    f->base = recovery_store_base(f->store);
    assert_int_equal(f->base->keeps_connected, 1);
}

static void on_closed(void *data)
{
    *(int *)data = 1;
}

static void close_store(fixture_t *f)
{
    int closed = 0;
    recovery_store_close(f->store, on_closed, &closed);
    wait_for(f, &closed);
    f->store = NULL;
    f->base = NULL;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    uv_loop_init(&f->loop);
    snprintf(f->path, sizeof(f->path), "/tmp/sioc-test-recovery-%d-XXXXXX", (int)getpid());
    int fd = mkstemp(f->path);
    assert_true(fd >= 0);
    close(fd);
    unlink(f->path); /* a new file: the store creates it */
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    if (f->store != NULL)
        close_store(f);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_loop_close(&f->loop);
    char name[300];
    unlink(f->path);
    snprintf(name, sizeof(name), "%s-wal", f->path);
    unlink(name);
    snprintf(name, sizeof(name), "%s-shm", f->path);
    unlink(name);
    free(f);
    return 0;
}

static void on_appended(int error, const char *offset, void *data)
{
    answer_t *answer = data;
    answer->error = error;
    if (offset != NULL)
        snprintf(answer->offset, sizeof(answer->offset), "%s", offset);
    answer->done = 1;
}

/* Appends [name, n] to rooms (NULL: everyone) with attachments bytes of binary, waits. */
static void append(fixture_t *f, const char *room, int n, size_t binary, answer_t *answer)
{
    const char *rooms[1] = {room};
    sioc_adapter_opts_t opts;
    memset(&opts, 0, sizeof(opts));
    opts.rooms = rooms;
    opts.room_count = room != NULL;
    uint8_t bytes[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    sioc_binary_t attachment = {bytes, binary};
    json_t *data = binary ? json_pack("[s,i,{s:b,s:i}]", "tick", n, "_placeholder", 1, "num", 0)
                          : json_pack("[s,i]", "tick", n);
    sioc_recovery_packet_t packet = {"/", data, &attachment, binary ? 1 : 0, &opts};
    memset(answer, 0, sizeof(*answer));
    assert_int_equal(f->base->ops->append(f->base, &packet, on_appended, answer), 0);
    json_decref(data);
    wait_for(f, &answer->done);
    assert_int_equal(answer->error, 0);
}

static void save_as(fixture_t *f, const char *pid, const char *sid, const char *nsp,
                    const char *room, uint32_t ttl_ms, int connected)
{
    json_t *rooms = json_pack("[s,s]", sid, room);
    json_t *data = json_pack("{s:s}", "name", "ann");
    sioc_recovery_session_t session = {pid, sid, nsp, rooms, data, ttl_ms, connected};
    f->base->ops->save(f->base, &session);
    json_decref(rooms);
    json_decref(data);
}

/* A disconnected socket's session. */
static void save(fixture_t *f, const char *pid, const char *sid, const char *nsp, const char *room,
                 uint32_t ttl_ms)
{
    save_as(f, pid, sid, nsp, room, ttl_ms, 0);
}

static void on_restored(int error, const sioc_recovery_session_t *session,
                        const sioc_recovery_missed_t *missed, size_t count, void *data)
{
    answer_t *answer = data;
    answer->error = error;
    answer->found = session != NULL;
    if (session != NULL) {
        snprintf(answer->sid, sizeof(answer->sid), "%s", session->sid);
        answer->rooms = json_dumps(session->rooms, JSON_COMPACT);
        answer->data = json_dumps(session->data, JSON_COMPACT);
    }
    answer->count = count;
    for (size_t i = 0; i < count && i < 16; i++) {
        snprintf(answer->missed[i], sizeof(answer->missed[i]), "%s", missed[i].offset);
        answer->missed_data[i] = json_dumps(missed[i].data, JSON_COMPACT);
        answer->attachment_bytes[i] =
            missed[i].attachment_count ? missed[i].attachments[0].length : 0;
    }
    answer->done = 1;
}

static void restore(fixture_t *f, const char *pid, const char *offset, const char *nsp,
                    answer_t *answer)
{
    memset(answer, 0, sizeof(*answer));
    assert_int_equal(f->base->ops->restore(f->base, pid, offset, nsp, on_restored, answer), 0);
    wait_for(f, &answer->done);
}

static void test_restart_keeps_log_and_sessions(void **state)
{
    fixture_t *f = *state;
    open_store(f, 60000, 1000);
    answer_t first, second, third, other, got;
    append(f, "room:1", 1, 0, &first);
    append(f, "room:1", 2, 3, &second);
    append(f, "room:2", 3, 0, &other); /* not the session's room */
    append(f, NULL, 4, 0, &third);     /* everyone */
    assert_string_not_equal(first.offset, second.offset);
    save(f, "pid-a", "sid-a", "/", "room:1", 60000);
    close_store(f); /* a restart */
    open_store(f, 60000, 1000);
    restore(f, "pid-a", first.offset, "/", &got);
    assert_int_equal(got.error, 0);
    assert_true(got.found);
    assert_string_equal(got.sid, "sid-a");
    assert_string_equal(got.rooms, "[\"sid-a\",\"room:1\"]");
    assert_string_equal(got.data, "{\"name\":\"ann\"}");
    assert_int_equal(got.count, 2);
    assert_string_equal(got.missed[0], second.offset);
    assert_string_equal(got.missed_data[0], "[\"tick\",2,{\"_placeholder\":true,\"num\":0}]");
    assert_int_equal(got.attachment_bytes[0], 3);
    assert_string_equal(got.missed[1], third.offset);
    free_answer(&got);
    /* Taken: a second client with the same pid gets nothing. */
    restore(f, "pid-a", first.offset, "/", &got);
    assert_false(got.found);
    /* New offsets after the restart still come after the old ones. */
    answer_t later;
    append(f, "room:1", 5, 0, &later);
    save(f, "pid-b", "sid-b", "/", "room:1", 60000);
    restore(f, "pid-b", third.offset, "/", &got);
    assert_true(got.found);
    assert_int_equal(got.count, 1);
    assert_string_equal(got.missed[0], later.offset);
    free_answer(&got);
}

static void test_one_of_two_wins(void **state)
{
    fixture_t *f = *state;
    open_store(f, 60000, 1000);
    answer_t packet, a, b;
    append(f, "room:1", 1, 0, &packet);
    save(f, "pid-a", "sid-a", "/", "room:1", 60000);
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    /* Both asked before either answer: the worker runs them in one transaction, in order. */
    assert_int_equal(f->base->ops->restore(f->base, "pid-a", packet.offset, "/", on_restored, &a),
                     0);
    assert_int_equal(f->base->ops->restore(f->base, "pid-a", packet.offset, "/", on_restored, &b),
                     0);
    wait_for(f, &a.done);
    wait_for(f, &b.done);
    assert_int_equal(a.found + b.found, 1);
    free_answer(&a);
    free_answer(&b);
}

/* Another process holding the file's write lock stalls the worker: at most max_sessions (1000
 * here) operations other than appends wait, the next are refused; all is well once it lets go. */
static void test_stalled_worker_is_bounded(void **state)
{
    fixture_t *f = *state;
    open_store(f, 60000, 1000);
    sqlite3 *other = NULL;
    assert_int_equal(sqlite3_open(f->path, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
    save(f, "pid-0", "sid-0", "/", "room:1", 60000);
    usleep(200 * 1000); /* the worker took it and waits for the lock */
    char pid[32];
    for (int i = 1; i <= 1000; i++) {
        snprintf(pid, sizeof(pid), "pid-%d", i);
        save(f, pid, "sid-x", "/", "room:1", 60000);
    }
    answer_t got;
    memset(&got, 0, sizeof(got));
    assert_int_equal(f->base->ops->restore(f->base, "pid-1", "x-1", "/", on_restored, &got),
                     SIOC_ENOBUFS);
    assert_false(got.done);
    assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    /* Drained: an append and a restore go through again, the queued sessions were written. */
    answer_t packet;
    append(f, "room:1", 1, 0, &packet);
    restore(f, "pid-1000", packet.offset, "/", &got);
    assert_true(got.found);
    free_answer(&got);
}

/* The first client presenting (pid, offset) is the only one restored from it, even once its
 * socket has written the session back (as the Redis store's sio:restore claim). */
static void test_first_presenter_wins(void **state)
{
    fixture_t *f = *state;
    open_store(f, 60000, 1000);
    answer_t first, second, got;
    append(f, "room:1", 1, 0, &first);
    append(f, "room:1", 2, 0, &second);
    save(f, "pid-a", "sid-a", "/", "room:1", 60000);
    restore(f, "pid-a", first.offset, "/", &got);
    assert_true(got.found);
    free_answer(&got);
    save_as(f, "pid-a", "sid-a", "/", "room:1", 60000, 1); /* the restored socket, connected */
    restore(f, "pid-a", first.offset, "/", &got);
    assert_int_equal(got.error, 0);
    assert_false(got.found);
    /* The session is still there: its own client, later, with a later offset, gets it. */
    restore(f, "pid-a", second.offset, "/", &got);
    assert_true(got.found);
    assert_int_equal(got.count, 0);
    free_answer(&got);
    /* Its socket left again before any new packet: the same offset is its client's again. */
    save(f, "pid-a", "sid-a", "/", "room:1", 60000);
    restore(f, "pid-a", second.offset, "/", &got);
    assert_true(got.found);
    free_answer(&got);
}

static void test_forged_and_foreign(void **state)
{
    fixture_t *f = *state;
    open_store(f, 60000, 1000);
    answer_t packet, got;
    append(f, "room:1", 1, 0, &packet);
    save(f, "pid-a", "sid-a", "/", "room:1", 60000);
    char forged[80];
    const char *dash = strchr(packet.offset, '-');
    snprintf(forged, sizeof(forged), "%.*s-999999", (int)(dash - packet.offset), packet.offset);
    const char *offsets[] = {forged, "ffffffffffffffff-1", "1", "", packet.offset + 1};
    for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
        restore(f, "pid-a", offsets[i], "/", &got);
        assert_int_equal(got.error, 0);
        assert_false(got.found);
    }
    restore(f, "pid-unknown", packet.offset, "/", &got);
    assert_false(got.found);
    restore(f, "pid-a", packet.offset, "/chat", &got); /* another namespace's socket */
    assert_false(got.found);
    /* None of those took it. */
    restore(f, "pid-a", packet.offset, "/", &got);
    assert_true(got.found);
    free_answer(&got);
}

static void test_expiry(void **state)
{
    fixture_t *f = *state;
    open_store(f, 60000, 1000);
    answer_t packet, got;
    append(f, "room:1", 1, 0, &packet);
    save(f, "pid-a", "sid-a", "/", "room:1", 1); /* expires 1 ms from now */
    usleep(20 * 1000);
    restore(f, "pid-a", packet.offset, "/", &got);
    assert_false(got.found);
    close_store(f);
    /* A packet older than the window is never given back (offset expired). */
    open_store(f, 1000, 1000);
    append(f, "room:1", 2, 0, &packet);
    save(f, "pid-b", "sid-b", "/", "room:1", 60000);
    usleep(1100 * 1000);
    restore(f, "pid-b", packet.offset, "/", &got);
    assert_false(got.found);
}

static void test_max_packets(void **state)
{
    fixture_t *f = *state;
    open_store(f, 60000, 3);
    answer_t offsets[5], got;
    for (int i = 0; i < 5; i++)
        append(f, "room:1", i, 1, &offsets[i]);
    save(f, "pid-a", "sid-a", "/", "room:1", 60000);
    restore(f, "pid-a", offsets[0].offset, "/", &got); /* trimmed: only the last 3 are kept */
    assert_false(got.found);
    restore(f, "pid-a", offsets[2].offset, "/", &got);
    assert_true(got.found);
    assert_int_equal(got.count, 2);
    free_answer(&got);
    close_store(f);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_stmt *stmt;
    sqlite3_prepare_v2(db, "SELECT (SELECT count(*) FROM log), (SELECT count(*) FROM attachment)",
                       -1, &stmt, NULL);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(stmt, 0), 3);
    assert_int_equal(sqlite3_column_int(stmt, 1), 3);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
}

static void exec_sql(const char *path, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *message = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &message);
    if (rc != SQLITE_OK)
        fprintf(stderr, "%s: %s\n", sql, message);
    assert_int_equal(rc, SQLITE_OK);
    sqlite3_free(message);
    sqlite3_close(db);
}

static void test_garbage_rows(void **state)
{
    fixture_t *f = *state;
    open_store(f, 60000, 1000);
    answer_t first, second, got;
    append(f, "room:1", 1, 0, &first);
    append(f, "room:1", 2, 0, &second);
    static const char *const pids[] = {"rooms", "data", "sid", "log", "attachments", "placeholder"};
    for (size_t i = 0; i < sizeof(pids) / sizeof(pids[0]); i++)
        save(f, pids[i], "sid-x", "/", "room:1", 60000);
    close_store(f);
    /* What another program, or a torn edit, may have left. */
    exec_sql(f->path, "UPDATE session SET rooms = '[\"room:1\", 7' WHERE pid = 'rooms';"
                      "UPDATE session SET data = x'00ff' WHERE pid = 'data';"
                      "UPDATE session SET sid = '' WHERE pid = 'sid';");
    open_store(f, 60000, 1000);
    for (size_t i = 0; i < 3; i++) {
        restore(f, pids[i], first.offset, "/", &got);
        assert_int_equal(got.error, 0);
        assert_false(got.found);
    }
    close_store(f);
    /* A log row after the offset with garbage: no partial session. */
    exec_sql(f->path,
             "UPDATE log SET data = '[\"tick\", {' WHERE seq = (SELECT max(seq) FROM log)");
    open_store(f, 60000, 1000);
    restore(f, "log", first.offset, "/", &got);
    assert_false(got.found);
    restore(f, "log", second.offset, "/", &got); /* the garbage row is before: nothing missed */
    assert_false(got.found);                     /* ... but the session was deleted with it */
    close_store(f);
    exec_sql(f->path, "UPDATE log SET data = '[\"tick\",{\"_placeholder\":true,\"num\":0}]', "
                      "attachments = 2 WHERE seq = (SELECT max(seq) FROM log)");
    open_store(f, 60000, 1000);
    restore(f, "attachments", first.offset, "/", &got); /* 2 announced, none stored */
    assert_false(got.found);
    close_store(f);
    exec_sql(f->path, "UPDATE log SET attachments = 0 WHERE seq = (SELECT max(seq) FROM log)");
    open_store(f, 60000, 1000);
    restore(f, "placeholder", first.offset, "/", &got); /* a placeholder without attachment */
    assert_false(got.found);
    /* The store still works. */
    answer_t third;
    append(f, "room:1", 3, 0, &third);
    save(f, "fresh", "sid-f", "/", "room:1", 60000);
    restore(f, "fresh", third.offset, "/", &got);
    assert_true(got.found);
    free_answer(&got);
}

static void test_not_a_database(void **state)
{
    fixture_t *f = *state;
    FILE *file = fopen(f->path, "w");
    assert_non_null(file);
    fputs("this is not a SQLite file, but long enough to look like a header to it.........", file);
    fclose(file);
    char error[512] = "";
    recovery_store_options_t options = {f->path, 60000, 1000, 1000};
    recovery_store_t *store = NULL;
    assert_int_equal(recovery_store_open(&f->loop, &options, &store, error, sizeof(error)), -1);
    assert_null(store);
    assert_non_null(strstr(error, "recovery.path"));
}

static void test_presence_rows(void **state)
{
    fixture_t *f = *state;
    open_store(f, 60000, 1000);
    json_t *id = json_integer(7), *rooms = json_pack("[s]", "room:1"), *name = json_string("ann");
    recovery_store_presence_set(f->store, "/", "7", id, rooms);
    recovery_store_presence_set(f->store, "/", "ann", name, rooms);
    recovery_store_presence_set(f->store, "/", "ann", name, NULL); /* offline: deleted */
    recovery_store_presence_set(f->store, "/other", "7", id, rooms);
    json_decref(id);
    json_decref(rooms);
    json_decref(name);
    close_store(f);
    exec_sql(f->path, "INSERT INTO presence VALUES ('/', 'bad', '{', '[]')");
    open_store(f, 60000, 1000);
    json_t *rows = recovery_store_presence_take(f->store, "/");
    char *text = json_dumps(rows, JSON_COMPACT);
    assert_string_equal(text, "[{\"id\":7,\"rooms\":[\"room:1\"]}]");
    free(text);
    json_decref(rows);
    rows = recovery_store_presence_take(f->store, "/");
    assert_int_equal(json_array_size(rows), 0);
    json_decref(rows);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offsets),
        cmocka_unit_test(test_entries_and_sessions),
        cmocka_unit_test_setup_teardown(test_restart_keeps_log_and_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_presenter_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stalled_worker_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_of_two_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forged_and_foreign, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_packets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_presence_rows, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
