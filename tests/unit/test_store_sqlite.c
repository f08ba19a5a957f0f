/* The SQLite store on a real libuv loop and a temporary database file: the conformance suite
 * (store_conformance.inc: every operation's result shape, completion order, batching), then
 * what is SQLite's own: savepoints against triggers, persistence, migrations, refused files,
 * and closing with requests in flight. Every test ends with the loop closing cleanly. */
#define _GNU_SOURCE /* strptime, timegm */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store.h"
#include "store_driver.h"
#include "store_sqlite.h"

#define BATCH_REQUESTS 1000
#define CLOSE_PENDING 200

#include "store_conformance.inc"

static int store_open_at(fixture_t *fixture, char *error, size_t error_size)
{
    store_options_t options = {"sqlite", fixture->path, NULL, NULL, 0, 0, 1, 0};
    return store_open(&fixture->loop, &options, &fixture->store, error, error_size);
}

/* store_open must refuse the file with "<path>: <reason>". */
static void assert_open_refused(fixture_t *fixture, const char *reason)
{
    char error[512] = "", expected[512];
    assert_int_equal(store_open_at(fixture, error, sizeof(error)), STORE_EIO);
    assert_null(fixture->store);
    snprintf(expected, sizeof(expected), "%s: %s", fixture->path, reason);
    assert_string_equal(error, expected);
}

static void remove_directory(const char *directory)
{
    DIR *dir = opendir(directory);
    if (dir == NULL)
        return;
    struct dirent *entry;
    char path[512];
    while ((entry = readdir(dir)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", directory, entry->d_name);
        unlink(path);
    }
    closedir(dir);
    rmdir(directory);
}

static int setup(void **state)
{
    fixture_t *fixture = calloc(1, sizeof(*fixture));
    assert_non_null(fixture);
    strcpy(fixture->directory, "/tmp/sioc-store-XXXXXX");
    assert_non_null(mkdtemp(fixture->directory));
    snprintf(fixture->path, sizeof(fixture->path), "%s/sioc.db", fixture->directory);
    assert_int_equal(uv_loop_init(&fixture->loop), 0);
    store_sqlite_use_migrations(NULL, 0);
    fixture_open(fixture);
    *state = fixture;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fixture = *state;
    fixture_close(fixture);
    uv_run(&fixture->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&fixture->loop), 0);
    store_sqlite_use_migrations(NULL, 0);
    remove_directory(fixture->directory);
    free(fixture);
    return 0;
}

/* ---- Raw access to the file (the store closed, or for reading) ----------------------------- */

static sqlite3 *raw_open(const fixture_t *fixture)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(fixture->path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static void raw_exec(sqlite3 *db, const char *sql)
{
    char *error = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &error) != SQLITE_OK)
        fail_msg("%s: %s", sql, error);
}

static long long raw_integer(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    long long value = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return value;
}

static void raw_text(sqlite3 *db, const char *sql, char *out, size_t size)
{
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    snprintf(out, size, "%s", (const char *)sqlite3_column_text(stmt, 0));
    sqlite3_finalize(stmt);
}

/* Closes the store, runs sql on the file, reopens. */
static void alter_file(fixture_t *fixture, const char *sql)
{
    fixture_close(fixture);
    sqlite3 *db = raw_open(fixture);
    raw_exec(db, sql);
    sqlite3_close(db);
    fixture_open(fixture);
}

/* A statement failing half-way through a request rolls back that request's changes only:
 * the room inserted before its owner's membership failed is gone, its neighbours stay. */
static void test_failing_request_rolls_back_alone(void **state)
{
    fixture_t *fixture = *state;
    add_user(fixture, "a");
    add_user(fixture, "evil");
    add_room(fixture, "r1", "a");
    alter_file(fixture, "CREATE TRIGGER refuse_evil BEFORE INSERT ON room_members"
                        " WHEN NEW.user_id = 'evil' BEGIN SELECT RAISE(ABORT, 'evil'); END");
    store_sqlite_stats_t before, after;
    store_sqlite_stats(fixture->store, &before);
    outcome_t first, failing, last, room;
    store_sqlite_hold(fixture->store, 1);
    request(fixture, STORE_MESSAGE_ADD,
            "{\"roomId\": \"r1\", \"senderId\": \"a\", \"text\": \"1\"}", &first);
    request(fixture, STORE_ROOM_CREATE, "{\"id\": \"r2\", \"name\": \"R2\", \"ownerId\": \"evil\"}",
            &failing);
    request(fixture, STORE_MESSAGE_ADD,
            "{\"roomId\": \"r1\", \"senderId\": \"a\", \"text\": \"2\"}", &last);
    request(fixture, STORE_ROOM_GET, "{\"id\": \"r2\"}", &room);
    store_sqlite_hold(fixture->store, 0);
    wait_for(fixture, &room);
    assert_int_equal(first.error, 0);
    assert_int_equal(failing.error, STORE_EIO);
    assert_string_equal(failing.message, "constraint failed");
    assert_int_equal(last.error, 0);
    assert_int_equal(room.error, STORE_ENOTFOUND);
    store_sqlite_stats(fixture->store, &after);
    assert_int_equal(after.transactions - before.transactions, 1);
    assert_texts(call_ok(fixture, STORE_MESSAGE_HISTORY, "{\"roomId\": \"r1\"}"), "1 2");
    outcome_t *all[] = {&first, &failing, &last, &room};
    for (size_t index = 0; index < 4; index++)
        outcome_clear(all[index]);
}

/* When the database rolls the whole transaction back, the requests before fail too (they
 * were never committed) and the rest of the batch goes on in a new transaction. */
static void test_transaction_rolled_back_by_database(void **state)
{
    fixture_t *fixture = *state;
    add_user(fixture, "a");
    add_user(fixture, "doom");
    add_room(fixture, "r1", "a");
    alter_file(fixture, "CREATE TRIGGER doom BEFORE INSERT ON room_members"
                        " WHEN NEW.user_id = 'doom' BEGIN SELECT RAISE(ROLLBACK, 'doom'); END");
    store_sqlite_stats_t before, after;
    store_sqlite_stats(fixture->store, &before);
    outcome_t first, failing, last;
    store_sqlite_hold(fixture->store, 1);
    request(fixture, STORE_MESSAGE_ADD,
            "{\"roomId\": \"r1\", \"senderId\": \"a\", \"text\": \"1\"}", &first);
    request(fixture, STORE_ROOM_ADD_MEMBER, "{\"roomId\": \"r1\", \"userId\": \"doom\"}", &failing);
    request(fixture, STORE_MESSAGE_ADD,
            "{\"roomId\": \"r1\", \"senderId\": \"a\", \"text\": \"3\"}", &last);
    store_sqlite_hold(fixture->store, 0);
    wait_for(fixture, &last);
    assert_int_equal(first.error, STORE_EIO);
    assert_string_equal(first.message, "the database rolled the transaction back");
    assert_int_equal(failing.error, STORE_EIO);
    assert_int_equal(last.error, 0);
    store_sqlite_stats(fixture->store, &after);
    assert_int_equal(after.transactions - before.transactions, 2);
    assert_texts(call_ok(fixture, STORE_MESSAGE_HISTORY, "{\"roomId\": \"r1\"}"), "3");
    outcome_clear(&first);
    outcome_clear(&failing);
    outcome_clear(&last);
}

/* The caller may share params (store.h): the store reads them and leaves them as they were. */
static void test_params_are_not_modified(void **state)
{
    fixture_t *fixture = *state;
    add_user(fixture, "7");
    json_t *params = parse("{\"id\": 12, \"name\": \"N\", \"ownerId\": 7.0, \"x\": [1]}");
    json_t *copy = json_deep_copy(params);
    outcome_t outcome;
    memset(&outcome, 0, sizeof(outcome));
    store_request(fixture->store, STORE_ROOM_CREATE, json_incref(params), on_done, &outcome);
    wait_for(fixture, &outcome);
    assert_int_equal(outcome.error, 0);
    assert_true(json_equal(params, copy));
    assert_int_equal(params->refcount, 1); /* the store released its reference */
    json_decref(params);
    json_decref(copy);
    outcome_clear(&outcome);
}

static void test_done_may_be_null(void **state)
{
    fixture_t *fixture = *state;
    store_request(fixture->store, STORE_USER_UPSERT, parse("{\"id\": \"quiet\"}"), NULL, NULL);
    store_request(fixture->store, STORE_USER_GET, parse("{}"), NULL, NULL);
    json_decref(call_ok(fixture, STORE_USER_GET, "{\"id\": \"quiet\"}"));
}

static void test_operation_names(void **state)
{
    for (int first = 0; first < STORE_OPERATION_COUNT; first++) {
        const char *name = store_operation_name((store_operation_t)first);
        assert_string_not_equal(name, "unknown");
        for (int second = 0; second < first; second++)
            assert_string_not_equal(name, store_operation_name((store_operation_t)second));
    }
    assert_string_equal(store_operation_name(STORE_MESSAGE_ADD), "message_add");
    assert_string_equal(store_operation_name(STORE_OPERATION_COUNT), "unknown");
    assert_string_equal(store_operation_name((store_operation_t)-1), "unknown");
}

/* ---- Closing --------------------------------------------------------------------------------- */

typedef struct late_request_s {
    fixture_t *fixture;
    outcome_t own;
    outcome_t late; /* made from own's callback, while closing */
} late_request_t;

static void on_done_then_request(int error, const char *message, json_t *result, void *data)
{
    late_request_t *late = data;
    on_done(error, message, result, &late->own);
    memset(&late->late, 0, sizeof(late->late));
    store_request(late->fixture->store, STORE_USER_GET, parse("{\"id\": \"a\"}"), on_done,
                  &late->late);
    assert_int_equal(late->late.called, 0);
}

static void test_close_with_requests_pending(void **state)
{
    fixture_t *fixture = *state;
    add_user(fixture, "a");
    add_room(fixture, "r1", "a");
    outcome_t *outcomes = calloc(CLOSE_PENDING, sizeof(*outcomes));
    assert_non_null(outcomes);
    late_request_t late = {fixture, {0}, {0}};
    int start = completion_counter;
    store_sqlite_hold(fixture->store, 1); /* all still queued when store_close is called */
    for (int index = 0; index < CLOSE_PENDING; index++)
        request(fixture, STORE_MESSAGE_ADD,
                "{\"roomId\": \"r1\", \"senderId\": \"a\", \"text\": \"t\"}", &outcomes[index]);
    store_request(fixture->store, STORE_USER_GET, parse("{\"id\": \"a\"}"), on_done_then_request,
                  &late);
    fixture->closed_order = -1;
    store_close(fixture->store, on_closed, fixture);
    outcome_t refused;
    request(fixture, STORE_USER_GET, "{\"id\": \"a\"}", &refused);
    while (fixture->closed_order < 0)
        uv_run(&fixture->loop, UV_RUN_ONCE);
    for (int index = 0; index < CLOSE_PENDING; index++) {
        assert_int_equal(outcomes[index].called, 1);
        assert_int_equal(outcomes[index].error, 0);
        assert_int_equal(outcomes[index].order, start + index);
        outcome_clear(&outcomes[index]);
    }
    free(outcomes);
    assert_int_equal(late.own.error, 0);
    assert_int_equal(late.own.order, start + CLOSE_PENDING);
    assert_int_equal(refused.error, STORE_ECLOSED);
    assert_string_equal(refused.message, "store is closing");
    assert_int_equal(refused.order, start + CLOSE_PENDING + 1);
    assert_int_equal(late.late.called, 1);
    assert_int_equal(late.late.error, STORE_ECLOSED);
    assert_int_equal(late.late.order, start + CLOSE_PENDING + 2);
    assert_int_equal(fixture->closed_order, start + CLOSE_PENDING + 3);
    outcome_clear(&late.own);
    outcome_clear(&late.late);
    outcome_clear(&refused);
    /* Everything acknowledged is in the file. */
    sqlite3 *db = raw_open(fixture);
    assert_int_equal(raw_integer(db, "SELECT count(*) FROM messages"), CLOSE_PENDING);
    sqlite3_close(db);
}

/* Closing while the writer is in the middle of the queue: everything queued still commits. */
static void test_close_while_writing(void **state)
{
    fixture_t *fixture = *state;
    add_user(fixture, "a");
    add_room(fixture, "r1", "a");
    enum { COUNT = 500 };
    outcome_t *outcomes = calloc(COUNT, sizeof(*outcomes));
    assert_non_null(outcomes);
    for (int index = 0; index < COUNT; index++) {
        request(fixture, STORE_MESSAGE_ADD,
                "{\"roomId\": \"r1\", \"senderId\": \"a\", \"text\": \"t\"}", &outcomes[index]);
        if (index == COUNT / 2)
            usleep(1000); /* let the writer start on the first half */
    }
    fixture_close(fixture);
    for (int index = 0; index < COUNT; index++) {
        assert_int_equal(outcomes[index].error, 0);
        assert_true(outcomes[index].order < fixture->closed_order);
        outcome_clear(&outcomes[index]);
    }
    free(outcomes);
    sqlite3 *db = raw_open(fixture);
    assert_int_equal(raw_integer(db, "SELECT count(*) FROM messages"), COUNT);
    sqlite3_close(db);
}

/* An idle store closes too: closed_cb runs with nothing queued. */
static void test_close_without_requests(void **state)
{
    fixture_t *fixture = *state;
    fixture_close(fixture);
    assert_true(fixture->closed_order >= 0);
}

/* ---- Files: persistence, migrations, refusals ------------------------------------------------ */

static void test_persistence_across_reopen(void **state)
{
    fixture_t *fixture = *state;
    add_user(fixture, "a");
    add_room(fixture, "r1", "a");
    char ids[3][32];
    add_messages(fixture, "r1", 3, ids);
    json_decref(
        call_ok(fixture, STORE_PRESENCE_SET, "{\"userId\": \"a\", \"status\": \"online\"}"));
    fixture_close(fixture);
    fixture_open(fixture);
    assert_json(call_ok(fixture, STORE_USER_GET, "{\"id\": \"a\"}"),
                "{\"id\": \"a\", \"firstName\": \"a\", \"lastName\": null, \"role\": null,"
                " \"avatar\": null}");
    assert_json(call_ok(fixture, STORE_ROOM_MEMBERS, "{\"roomId\": \"r1\"}"), "[\"a\"]");
    assert_texts(call_ok(fixture, STORE_MESSAGE_HISTORY, "{\"roomId\": \"r1\"}"), "m0 m1 m2");
    json_decref(call_ok(fixture, STORE_PRESENCE_GET, "{\"userId\": \"a\"}"));
    fixture_close(fixture);
    /* The file is a WAL database at schema version 3 with sioc's application id. */
    sqlite3 *db = raw_open(fixture);
    char mode[16];
    raw_text(db, "PRAGMA journal_mode", mode, sizeof(mode));
    assert_string_equal(mode, "wal");
    assert_int_equal(raw_integer(db, "SELECT max(version) FROM schema_version"), 3);
    assert_int_equal(raw_integer(db, "SELECT count(*) FROM schema_version"), 3);
    assert_int_equal(raw_integer(db, "PRAGMA application_id"), 0x73696f63);
    sqlite3_close(db);
    fixture_open(fixture);
}

static store_sqlite_migration_t test_migrations[4];

/* The built-in list plus one more step. */
static void use_migrations_plus(const char *next_sql)
{
    size_t count;
    const store_sqlite_migration_t *builtin = store_sqlite_builtin_migrations(&count);
    assert_true(count + 1 <= sizeof(test_migrations) / sizeof(test_migrations[0]));
    memcpy(test_migrations, builtin, count * sizeof(*builtin));
    test_migrations[count].version = builtin[count - 1].version + 1;
    test_migrations[count].sql = next_sql;
    store_sqlite_use_migrations(test_migrations, count + 1);
}

static void test_migration_on_existing_v1_file(void **state)
{
    fixture_t *fixture = *state;
    add_user(fixture, "a");
    add_room(fixture, "r1", "a");
    fixture_close(fixture);
    use_migrations_plus("ALTER TABLE rooms ADD COLUMN topic TEXT;"
                        "UPDATE rooms SET topic = 'migrated';");
    fixture_open(fixture);
    json_decref(call_ok(fixture, STORE_ROOM_GET, "{\"id\": \"r1\"}"));
    fixture_close(fixture);
    fixture_open(fixture); /* already at version 4: nothing runs twice */
    fixture_close(fixture);
    sqlite3 *db = raw_open(fixture);
    assert_int_equal(raw_integer(db, "SELECT count(*) FROM schema_version"), 4);
    assert_int_equal(raw_integer(db, "SELECT max(version) FROM schema_version"), 4);
    char topic[32];
    raw_text(db, "SELECT topic FROM rooms WHERE id = 'r1'", topic, sizeof(topic));
    assert_string_equal(topic, "migrated");
    sqlite3_close(db);
    /* A sioc that knows only version 3 refuses the file rather than guess. */
    store_sqlite_use_migrations(NULL, 0);
    assert_open_refused(fixture,
                        "schema version 4 is newer than this sioc knows (3): upgrade sioc");
}

static void test_failing_migration_leaves_file_unchanged(void **state)
{
    fixture_t *fixture = *state;
    add_user(fixture, "a");
    fixture_close(fixture);
    use_migrations_plus("CREATE TABLE partial (x); INSERT INTO nowhere VALUES (1);");
    assert_open_refused(fixture, "migration to schema version 4 failed: no such table: nowhere");
    sqlite3 *db = raw_open(fixture);
    assert_int_equal(raw_integer(db, "SELECT max(version) FROM schema_version"), 3);
    assert_int_equal(raw_integer(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'partial'"),
                     0);
    assert_int_equal(raw_integer(db, "SELECT count(*) FROM users"), 1);
    sqlite3_close(db);
    store_sqlite_use_migrations(NULL, 0);
    fixture_open(fixture);
}

static void write_file(const char *path, const void *bytes, size_t length)
{
    FILE *file = fopen(path, "wb");
    assert_non_null(file);
    assert_int_equal(fwrite(bytes, 1, length, file), length);
    fclose(file);
}

/* Schema 2 remembers which ids were JSON numbers; rows of a version 1 file, written before it,
 * keep reading back as strings, and new rows keep their type. */
static void test_v1_rows_keep_string_ids(void **state)
{
    fixture_t *fixture = *state;
    fixture_close(fixture);
    unlink(fixture->path);
    size_t count;
    const store_sqlite_migration_t *builtin = store_sqlite_builtin_migrations(&count);
    assert_int_equal(builtin[0].version, 1);
    sqlite3 *db = raw_open(fixture);
    raw_exec(db, "PRAGMA application_id = 1936289635"); /* 0x73696f63 */
    raw_exec(db, "CREATE TABLE schema_version (version INTEGER PRIMARY KEY,"
                 " applied_at TEXT NOT NULL)");
    raw_exec(db, builtin[0].sql);
    raw_exec(db, "INSERT INTO schema_version VALUES (1, '2026-11-21T21:00:00.000Z');"
                 "INSERT INTO users (id, created_at, updated_at) VALUES ('1', 't', 't');"
                 "INSERT INTO rooms (id, name, is_private, created_at) VALUES ('r', 'R', 0, 't');"
                 "INSERT INTO messages (id, room_id, sender_id, text, created_at)"
                 " VALUES ('m', 'r', '1', 'old', 't')");
    sqlite3_close(db);
    fixture_open(fixture);
    assert_json(call_ok(fixture, STORE_MESSAGE_HISTORY, "{\"roomId\": \"r\"}"),
                "[{\"id\": \"m\", \"roomId\": \"r\", \"senderId\": \"1\", \"text\": \"old\","
                " \"createdAt\": \"t\"}]");
    json_decref(call_ok(fixture, STORE_MESSAGE_ADD,
                        "{\"roomId\": \"r\", \"senderId\": 1, \"text\": \"new\"}"));
    json_t *page = call_ok(fixture, STORE_MESSAGE_HISTORY, "{\"roomId\": \"r\"}");
    assert_int_equal(json_array_size(page), 2);
    assert_true(json_is_string(json_object_get(json_array_get(page, 0), "senderId")));
    assert_int_equal(json_integer_value(json_object_get(json_array_get(page, 1), "senderId")), 1);
    json_decref(page);
}

/* Schema 3 adds the bits to rooms, members and access requests; rows of a version 2 file keep
 * reading back with string ids, and new rows keep their type. */
static void test_v2_rooms_keep_string_ids(void **state)
{
    fixture_t *fixture = *state;
    fixture_close(fixture);
    unlink(fixture->path);
    size_t count;
    const store_sqlite_migration_t *builtin = store_sqlite_builtin_migrations(&count);
    assert_true(count >= 3);
    assert_int_equal(builtin[1].version, 2);
    sqlite3 *db = raw_open(fixture);
    raw_exec(db, "PRAGMA application_id = 1936289635"); /* 0x73696f63 */
    raw_exec(db, "CREATE TABLE schema_version (version INTEGER PRIMARY KEY,"
                 " applied_at TEXT NOT NULL)");
    raw_exec(db, builtin[0].sql);
    raw_exec(db, builtin[1].sql);
    raw_exec(db, "INSERT INTO schema_version VALUES (1, '2026-11-21T21:00:00.000Z');"
                 "INSERT INTO schema_version VALUES (2, '2026-12-02T07:00:00.000Z');"
                 "INSERT INTO users (id, created_at, updated_at) VALUES ('1', 't', 't');"
                 "INSERT INTO users (id, created_at, updated_at) VALUES ('2', 't', 't');"
                 "INSERT INTO rooms (id, name, is_private, owner_id, created_at)"
                 " VALUES ('12', 'R', 1, '1', 't');"
                 "INSERT INTO room_members (room_id, user_id, joined_at) VALUES ('12', '1', 't')");
    sqlite3_close(db);
    fixture_open(fixture);
    assert_json(call_ok(fixture, STORE_ROOM_GET, "{\"id\": 12}"),
                "{\"id\": \"12\", \"name\": \"R\", \"isPrivate\": true, \"ownerId\": \"1\","
                " \"createdAt\": \"t\"}");
    json_t *pending = call_ok(fixture, STORE_ACCESS_REQUEST_ADD, "{\"roomId\": 12, \"userId\": 2}");
    assert_string_equal(string_of(pending, "roomId"), "12"); /* the room's type: a string */
    assert_int_equal(json_integer_value(json_object_get(pending, "userId")), 2);
    json_decref(pending);
    json_decref(
        call_ok(fixture, STORE_ROOM_CREATE, "{\"id\": 13, \"name\": \"N\", \"ownerId\": 2}"));
    assert_json(call_ok(fixture, STORE_ROOM_MEMBERS, "{\"roomId\": 12}"), "[\"1\"]");
    assert_json(call_ok(fixture, STORE_ROOM_MEMBERS, "{\"roomId\": 13}"), "[2]");
    assert_json(call_ok(fixture, STORE_ROOM_GET, "{\"id\": \"13\"}"),
                "{\"id\": 13, \"name\": \"N\", \"isPrivate\": false, \"ownerId\": 2,"
                " \"createdAt\": \"<time>\"}");
    fixture_close(fixture);
    db = raw_open(fixture);
    assert_int_equal(raw_integer(db, "SELECT max(version) FROM schema_version"), 3);
    sqlite3_close(db);
    fixture_open(fixture);
}

static void test_open_refuses_garbage(void **state)
{
    fixture_t *fixture = *state;
    fixture_close(fixture);
    char garbage[8192];
    memset(garbage, 'g', sizeof(garbage));
    write_file(fixture->path, garbage, sizeof(garbage));
    assert_open_refused(fixture, "cannot read the database: file is not a database");
}

/* A real database whose schema page is damaged. */
static void test_open_refuses_corrupt_database(void **state)
{
    fixture_t *fixture = *state;
    add_user(fixture, "a");
    fixture_close(fixture);
    FILE *file = fopen(fixture->path, "r+b");
    assert_non_null(file);
    char junk[1024];
    memset(junk, 0xa5, sizeof(junk));
    assert_int_equal(fseek(file, 100, SEEK_SET), 0); /* past the header: page 1's b-tree */
    assert_int_equal(fwrite(junk, 1, sizeof(junk), file), sizeof(junk));
    fclose(file);
    assert_open_refused(fixture, "cannot read the database: database disk image is malformed");
}

static void test_open_refuses_foreign_database(void **state)
{
    fixture_t *fixture = *state;
    fixture_close(fixture);
    unlink(fixture->path);
    sqlite3 *db = raw_open(fixture);
    raw_exec(db, "CREATE TABLE users (name TEXT)");
    sqlite3_close(db);
    assert_open_refused(fixture, "not a sioc database (another program's file?)");
}

/* Expects store_open to refuse the file as read-only: 0, or 1 with the error printed. */
static int open_expecting_read_only(const char *path)
{
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0)
        return 1;
    store_options_t options = {"sqlite", path, NULL, NULL, 0, 0, 1, 0};
    store_t *store = NULL;
    char error[512] = "";
    int rc = store_open(&loop, &options, &store, error, sizeof(error));
    char expected[512];
    snprintf(expected, sizeof(expected),
             "%s: the database file is read-only (the store must write it)", path);
    if (rc != STORE_EIO || store != NULL || strcmp(error, expected) != 0) {
        fprintf(stderr, "store_open gave %d: %s\n", rc, error);
        return 1;
    }
    return uv_loop_close(&loop) != 0;
}

/* root writes any file: as root, the open runs in a child that became nobody. */
static void test_open_refuses_read_only_file(void **state)
{
    fixture_t *fixture = *state;
    add_user(fixture, "a");
    fixture_close(fixture);
    assert_int_equal(chmod(fixture->path, 0444), 0);
    if (geteuid() != 0) {
        assert_int_equal(open_expecting_read_only(fixture->path), 0);
        return;
    }
    assert_int_equal(chmod(fixture->directory, 0755), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(2);
        _exit(open_expecting_read_only(fixture->path));
    }
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_open_refuses_bad_options(void **state)
{
    fixture_t *fixture = *state;
    store_t *store = (store_t *)1;
    char error[256];
    store_options_t no_path = {"sqlite", NULL, NULL, NULL, 0, 0, 1, 0};
    assert_int_equal(store_open(&fixture->loop, &no_path, &store, error, sizeof(error)),
                     STORE_EINVALID);
    assert_null(store);
    assert_string_equal(error, "store: a database path is required");
    store_options_t mysql = {"mysql", fixture->path, NULL, NULL, 0, 0, 1, 0};
    assert_int_equal(store_open(&fixture->loop, &mysql, &store, error, sizeof(error)),
                     STORE_EINVALID);
    assert_string_equal(error, "store: unknown driver \"mysql\" (expected sqlite or postgres)");
    char missing[192];
    snprintf(missing, sizeof(missing), "%s/no/such/dir/x.db", fixture->directory);
    store_options_t nowhere = {NULL, missing, NULL, NULL, 0, 0, 1, 0};
    assert_int_equal(store_open(&fixture->loop, &nowhere, &store, error, sizeof(error)), STORE_EIO);
    char expected[256];
    snprintf(expected, sizeof(expected),
             "%s: cannot open the database: unable to open database file", missing);
    assert_string_equal(error, expected);
}

/* The application's statements on SQLite ("?N" placeholders): its rows by column name. */
static void test_app_statements(void **state)
{
    fixture_t *fixture = *state;
    alter_file(fixture, "CREATE TABLE app_users (id INTEGER PRIMARY KEY, first TEXT);"
                        "INSERT INTO app_users VALUES (5, 'Ann')");
    fixture_close(fixture);
    const char *statements[STORE_OPERATION_COUNT] = {
        [STORE_USER_GET] = "SELECT id, first AS firstName, :id AS asked FROM app_users"
                           " WHERE id = CAST(:id AS INTEGER)"};
    store_options_t options = {"sqlite", fixture->path, statements, NULL, 0, 0, 1, 0};
    char error[512] = "";
    if (store_open(&fixture->loop, &options, &fixture->store, error, sizeof(error)) != 0)
        fail_msg("%s", error);
    assert_json(call_ok(fixture, STORE_USER_GET, "{\"id\": \"5\"}"),
                "{\"id\": 5, \"firstName\": \"Ann\", \"asked\": \"5\"}");
    call_fails(fixture, STORE_USER_GET, "{\"id\": 6}", STORE_ENOTFOUND, "user not found");
    fixture_close(fixture);
    statements[STORE_USER_GET] = "SELECT first FROM app_users WHERE id = :id";
    assert_int_equal(store_open(&fixture->loop, &options, &fixture->store, error, sizeof(error)),
                     STORE_EINVALID);
    assert_string_equal(error, "store.statements.user_get: the statement returns no column \"id\""
                               " (it returns: first)");
    fixture_open(fixture);
}

/* Once the store has been idle for SIOC__STORE_IDLE_RELEASE_MS after work, SQLite's page
 * cache is given back (sqlite3_memory_used counts what SQLite holds in this process), once. */
static void test_idle_store_releases_its_cache(void **state)
{
    fixture_t *fixture = *state;
    enum { USERS = 3000, ROWS_PER_BATCH = 100 };
    outcome_t outcomes[ROWS_PER_BATCH];
    for (int user = 0; user < USERS; user += ROWS_PER_BATCH) {
        for (int index = 0; index < ROWS_PER_BATCH; index++) {
            char params[160];
            snprintf(params, sizeof(params), "{\"id\": \"u%d\", \"firstName\": \"User number %d\"}",
                     user + index, user + index);
            request(fixture, STORE_USER_UPSERT, params, &outcomes[index]);
        }
        for (int index = 0; index < ROWS_PER_BATCH; index++) {
            wait_for(fixture, &outcomes[index]);
            assert_int_equal(outcomes[index].error, 0);
            outcome_clear(&outcomes[index]);
        }
    }
    sqlite3_int64 busy = sqlite3_memory_used();
    store_sqlite_stats_t stats;
    store_sqlite_stats(fixture->store, &stats);
    uint64_t releases = stats.releases;
    /* Bounded: ten times the idle delay. */
    for (int waited = 0; stats.releases == releases && waited < 10 * SIOC__STORE_IDLE_RELEASE_MS;
         waited += 20) {
        usleep(20 * 1000);
        store_sqlite_stats(fixture->store, &stats);
    }
    assert_int_equal(stats.releases, releases + 1);
    sqlite3_int64 idle = sqlite3_memory_used();
    if (busy - idle < 256 * 1024)
        fail_msg("SQLite held %lld bytes busy, %lld idle", (long long)busy, (long long)idle);
    usleep(3 * SIOC__STORE_IDLE_RELEASE_MS * 1000); /* nothing new to release: no second one */
    store_sqlite_stats(fixture->store, &stats);
    assert_int_equal(stats.releases, releases + 1);
    assert_json(call_ok(fixture, STORE_USER_GET, "{\"id\": \"u7\"}"),
                "{\"id\": \"u7\", \"firstName\": \"User number 7\", \"lastName\": null,"
                " \"role\": null, \"avatar\": null}");
}

#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        CONFORMANCE_TESTS(TEST),
        TEST(test_failing_request_rolls_back_alone),
        TEST(test_transaction_rolled_back_by_database),
        TEST(test_done_may_be_null),
        TEST(test_operation_names),
        TEST(test_close_with_requests_pending),
        TEST(test_close_while_writing),
        TEST(test_close_without_requests),
        TEST(test_params_are_not_modified),
        TEST(test_persistence_across_reopen),
        TEST(test_migration_on_existing_v1_file),
        TEST(test_v1_rows_keep_string_ids),
        TEST(test_v2_rooms_keep_string_ids),
        TEST(test_failing_migration_leaves_file_unchanged),
        TEST(test_open_refuses_garbage),
        TEST(test_open_refuses_corrupt_database),
        TEST(test_open_refuses_foreign_database),
        TEST(test_open_refuses_read_only_file),
        TEST(test_open_refuses_bad_options),
        TEST(test_app_statements),
        TEST(test_idle_store_releases_its_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
