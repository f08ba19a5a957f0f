/* The SQLite store on a real libuv loop and a temporary database file: every operation's
 * result shape, completion order, batching, savepoints, persistence, migrations, refused
 * files, and closing with requests in flight. Every test ends with the loop closing cleanly. */
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
#include "store_sqlite.h"

#define BATCH_REQUESTS 1000
#define CLOSE_PENDING 200

/* ---- Fixture: a directory, a loop, a store --------------------------------------------- */

typedef struct fixture_s {
    char directory[64];
    char path[128];
    uv_loop_t loop;
    store_t *store;
    int closed_order; /* completion counter value when closed_cb ran; -1 before */
} fixture_t;

/* Completions are numbered as they happen, to check their order. */
static int completion_counter;

typedef struct outcome_s {
    int called;
    int error;
    const char *message;
    json_t *result;
    int order;
} outcome_t;

static void outcome_clear(outcome_t *outcome)
{
    json_decref(outcome->result);
    memset(outcome, 0, sizeof(*outcome));
}

static void on_done(int error, const char *message, json_t *result, void *data)
{
    outcome_t *outcome = data;
    outcome->called++;
    outcome->error = error;
    outcome->message = message;
    outcome->result = json_incref(result);
    outcome->order = completion_counter++;
    if (error == 0)
        assert_null(message);
    else
        assert_null(result);
}

static void on_closed(void *data)
{
    fixture_t *fixture = data;
    fixture->closed_order = completion_counter++;
    fixture->store = NULL;
}

static int store_open_at(fixture_t *fixture, char *error, size_t error_size)
{
    store_options_t options = {"sqlite", fixture->path};
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

static void fixture_open(fixture_t *fixture)
{
    char error[512] = "";
    int rc = store_open_at(fixture, error, sizeof(error));
    if (rc != 0)
        fail_msg("store_open: %s", error);
    assert_non_null(fixture->store);
}

/* Closes the store and runs the loop until closed_cb. */
static void fixture_close(fixture_t *fixture)
{
    if (fixture->store == NULL)
        return;
    fixture->closed_order = -1;
    store_close(fixture->store, on_closed, fixture);
    while (fixture->closed_order < 0)
        uv_run(&fixture->loop, UV_RUN_ONCE);
    assert_null(fixture->store);
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

/* ---- Requests ------------------------------------------------------------------------------ */

static json_t *parse(const char *text)
{
    json_error_t error;
    json_t *value = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &error);
    if (value == NULL)
        fail_msg("bad JSON in the test: %s: %s", text, error.text);
    return value;
}

static void request(fixture_t *fixture, store_operation_t operation, const char *params,
                    outcome_t *outcome)
{
    memset(outcome, 0, sizeof(*outcome));
    store_request(fixture->store, operation, params != NULL ? parse(params) : NULL, on_done,
                  outcome);
    assert_int_equal(outcome->called, 0); /* never synchronously */
}

static void wait_for(fixture_t *fixture, outcome_t *outcome)
{
    while (!outcome->called)
        uv_run(&fixture->loop, UV_RUN_ONCE);
    assert_int_equal(outcome->called, 1);
}

/* Runs an operation to completion; the result (a reference) on success. */
static json_t *call_ok(fixture_t *fixture, store_operation_t operation, const char *params)
{
    outcome_t outcome;
    request(fixture, operation, params, &outcome);
    wait_for(fixture, &outcome);
    if (outcome.error != 0)
        fail_msg("%s %s: error %d: %s", store_operation_name(operation), params, outcome.error,
                 outcome.message);
    return outcome.result;
}

static void call_fails(fixture_t *fixture, store_operation_t operation, const char *params,
                       int error, const char *message)
{
    outcome_t outcome;
    request(fixture, operation, params, &outcome);
    wait_for(fixture, &outcome);
    if (outcome.error != error || strcmp(outcome.message != NULL ? outcome.message : "", message))
        fail_msg("%s %s: expected %d \"%s\", got %d \"%s\"", store_operation_name(operation),
                 params, error, message, outcome.error, outcome.message ? outcome.message : "");
    outcome_clear(&outcome);
}

/* ---- Comparing results ----------------------------------------------------------------- */

static void assert_generated_id(const json_t *value)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    assert_true(json_is_string(value));
    assert_int_equal(json_string_length(value), 20);
    assert_int_equal(strspn(json_string_value(value), alphabet), 20);
}

/* "2026-11-21T21:00:00.000Z", within a minute of now. */
static void assert_recent_time(const json_t *value)
{
    assert_true(json_is_string(value));
    const char *text = json_string_value(value);
    assert_int_equal(strlen(text), 24);
    struct tm utc;
    memset(&utc, 0, sizeof(utc));
    const char *rest = strptime(text, "%Y-%m-%dT%H:%M:%S", &utc);
    assert_non_null(rest);
    assert_true(rest[0] == '.' && rest[1] >= '0' && rest[1] <= '9' && rest[2] >= '0' &&
                rest[2] <= '9' && rest[3] >= '0' && rest[3] <= '9' && rest[4] == 'Z');
    time_t written = timegm(&utc);
    time_t now = time(NULL);
    assert_true(written <= now + 1 && written >= now - 60);
}

/* expected may hold "<id>" (a generated id) and "<time>" (a fresh timestamp); every other
 * value must be equal, and objects must have exactly the same keys. */
static int json_matches(const json_t *actual, const json_t *expected)
{
    if (json_is_string(expected) && strcmp(json_string_value(expected), "<id>") == 0) {
        assert_generated_id(actual);
        return 1;
    }
    if (json_is_string(expected) && strcmp(json_string_value(expected), "<time>") == 0) {
        assert_recent_time(actual);
        return 1;
    }
    if (json_is_object(expected)) {
        if (!json_is_object(actual) || json_object_size(actual) != json_object_size(expected))
            return 0;
        const char *key;
        json_t *value;
        json_object_foreach((json_t *)expected, key, value)
        {
            if (!json_matches(json_object_get(actual, key), value))
                return 0;
        }
        return 1;
    }
    if (json_is_array(expected)) {
        if (!json_is_array(actual) || json_array_size(actual) != json_array_size(expected))
            return 0;
        for (size_t index = 0; index < json_array_size(expected); index++) {
            if (!json_matches(json_array_get(actual, index), json_array_get(expected, index)))
                return 0;
        }
        return 1;
    }
    return json_equal(actual, expected);
}

/* Takes actual. */
static void assert_json(json_t *actual, const char *expected_text)
{
    json_t *expected = parse(expected_text);
    if (!json_matches(actual, expected)) {
        char *text = json_dumps(actual, JSON_COMPACT | JSON_ENCODE_ANY);
        fail_msg("expected %s\n     got %s", expected_text, text);
    }
    json_decref(expected);
    json_decref(actual);
}

static const char *string_of(const json_t *object, const char *key)
{
    const char *value = json_string_value(json_object_get(object, key));
    assert_non_null(value);
    return value;
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

/* ---- Common data --------------------------------------------------------------------------- */

static void add_user(fixture_t *fixture, const char *id)
{
    char params[128];
    snprintf(params, sizeof(params), "{\"id\": \"%s\", \"firstName\": \"%s\"}", id, id);
    json_decref(call_ok(fixture, STORE_USER_UPSERT, params));
}

static void add_room(fixture_t *fixture, const char *id, const char *owner)
{
    char params[160];
    snprintf(params, sizeof(params), "{\"id\": \"%s\", \"name\": \"Room %s\", \"ownerId\": \"%s\"}",
             id, id, owner);
    json_decref(call_ok(fixture, STORE_ROOM_CREATE, params));
}

/* ---- Users and presence ------------------------------------------------------------------ */

static void test_user_upsert_and_get(void **state)
{
    fixture_t *fixture = *state;
    assert_json(call_ok(fixture, STORE_USER_UPSERT,
                        "{\"id\": \"u1\", \"firstName\": \"Ada\", \"lastName\": \"Lovelace\","
                        " \"role\": \"student\", \"avatar\": \"/a.png\", \"extra\": 1}"),
                "{\"id\": \"u1\", \"firstName\": \"Ada\", \"lastName\": \"Lovelace\","
                " \"role\": \"student\", \"avatar\": \"/a.png\"}");
    /* Absent fields keep their value, null clears one. */
    assert_json(call_ok(fixture, STORE_USER_UPSERT,
                        "{\"id\": \"u1\", \"firstName\": \"Augusta\", \"avatar\": null}"),
                "{\"id\": \"u1\", \"firstName\": \"Augusta\", \"lastName\": \"Lovelace\","
                " \"role\": \"student\", \"avatar\": null}");
    assert_json(call_ok(fixture, STORE_USER_GET, "{\"id\": \"u1\"}"),
                "{\"id\": \"u1\", \"firstName\": \"Augusta\", \"lastName\": \"Lovelace\","
                " \"role\": \"student\", \"avatar\": null}");
    /* A new user without profile fields has nulls. */
    assert_json(call_ok(fixture, STORE_USER_UPSERT, "{\"id\": 42}"),
                "{\"id\": \"42\", \"firstName\": null, \"lastName\": null, \"role\": null,"
                " \"avatar\": null}");
    assert_json(call_ok(fixture, STORE_USER_GET, "{\"id\": \"42\"}"),
                "{\"id\": \"42\", \"firstName\": null, \"lastName\": null, \"role\": null,"
                " \"avatar\": null}");
    call_fails(fixture, STORE_USER_GET, "{\"id\": \"nobody\"}", STORE_ENOTFOUND, "user not found");
}

static void test_presence(void **state)
{
    fixture_t *fixture = *state;
    add_user(fixture, "u1");
    call_fails(fixture, STORE_PRESENCE_GET, "{\"userId\": \"u1\"}", STORE_ENOTFOUND,
               "presence not found");
    assert_json(
        call_ok(fixture, STORE_PRESENCE_SET, "{\"userId\": \"u1\", \"status\": \"online\"}"),
        "{\"userId\": \"u1\", \"status\": \"online\", \"lastActivity\": \"<time>\"}");
    assert_json(
        call_ok(fixture, STORE_PRESENCE_SET, "{\"userId\": \"u1\", \"status\": \"offline\"}"),
        "{\"userId\": \"u1\", \"status\": \"offline\", \"lastActivity\": \"<time>\"}");
    assert_json(call_ok(fixture, STORE_PRESENCE_GET, "{\"userId\": \"u1\"}"),
                "{\"userId\": \"u1\", \"status\": \"offline\", \"lastActivity\": \"<time>\"}");
    call_fails(fixture, STORE_PRESENCE_SET, "{\"userId\": \"ghost\", \"status\": \"online\"}",
               STORE_ENOTFOUND, "user not found");
    call_fails(fixture, STORE_PRESENCE_SET, "{\"userId\": \"u1\", \"status\": \"away\"}",
               STORE_EINVALID, "status must be \"online\" or \"offline\"");
}

/* ---- Rooms and members ------------------------------------------------------------------- */

static void test_room_create_and_get(void **state)
{
    fixture_t *fixture = *state;
    add_user(fixture, "owner");
    json_t *room = call_ok(fixture, STORE_ROOM_CREATE, "{\"name\": \"Algebra\"}");
    char id[32];
    snprintf(id, sizeof(id), "%s", string_of(room, "id"));
    assert_json(room, "{\"id\": \"<id>\", \"name\": \"Algebra\", \"isPrivate\": false,"
                      " \"ownerId\": null, \"createdAt\": \"<time>\"}");
    char params[64];
    snprintf(params, sizeof(params), "{\"id\": \"%s\"}", id);
    assert_json(call_ok(fixture, STORE_ROOM_GET, params),
                "{\"id\": \"<id>\", \"name\": \"Algebra\", \"isPrivate\": false,"
                " \"ownerId\": null, \"createdAt\": \"<time>\"}");
    assert_json(call_ok(fixture, STORE_ROOM_CREATE,
                        "{\"id\": \"r1\", \"name\": \"Private\", \"isPrivate\": true,"
                        " \"ownerId\": \"owner\"}"),
                "{\"id\": \"r1\", \"name\": \"Private\", \"isPrivate\": true,"
                " \"ownerId\": \"owner\", \"createdAt\": \"<time>\"}");
    /* The owner is a member. */
    assert_json(call_ok(fixture, STORE_ROOM_MEMBERS, "{\"roomId\": \"r1\"}"), "[\"owner\"]");
    call_fails(fixture, STORE_ROOM_CREATE, "{\"id\": \"r1\", \"name\": \"Again\"}", STORE_ECONFLICT,
               "room already exists");
    call_fails(fixture, STORE_ROOM_CREATE, "{\"name\": \"X\", \"ownerId\": \"ghost\"}",
               STORE_ENOTFOUND, "owner not found");
    call_fails(fixture, STORE_ROOM_GET, "{\"id\": \"r2\"}", STORE_ENOTFOUND, "room not found");
}

static void test_room_members(void **state)
{
    fixture_t *fixture = *state;
    add_user(fixture, "a");
    add_user(fixture, "b");
    add_user(fixture, "c");
    add_room(fixture, "r1", "a");
    json_t *first =
        call_ok(fixture, STORE_ROOM_ADD_MEMBER, "{\"roomId\": \"r1\", \"userId\": \"c\"}");
    char joined_at[32];
    snprintf(joined_at, sizeof(joined_at), "%s", string_of(first, "joinedAt"));
    assert_json(first, "{\"roomId\": \"r1\", \"userId\": \"c\", \"joinedAt\": \"<time>\"}");
    json_decref(call_ok(fixture, STORE_ROOM_ADD_MEMBER, "{\"roomId\": \"r1\", \"userId\": \"b\"}"));
    /* Idempotent: the first joinedAt stays. */
    usleep(2000);
    json_t *again =
        call_ok(fixture, STORE_ROOM_ADD_MEMBER, "{\"roomId\": \"r1\", \"userId\": \"c\"}");
    assert_string_equal(string_of(again, "joinedAt"), joined_at);
    json_decref(again);
    assert_json(call_ok(fixture, STORE_ROOM_MEMBERS, "{\"roomId\": \"r1\"}"),
                "[\"a\", \"c\", \"b\"]");
    assert_json(call_ok(fixture, STORE_ROOM_IS_MEMBER, "{\"roomId\": \"r1\", \"userId\": \"b\"}"),
                "true");
    assert_json(
        call_ok(fixture, STORE_ROOM_REMOVE_MEMBER, "{\"roomId\": \"r1\", \"userId\": \"b\"}"),
        "{\"roomId\": \"r1\", \"userId\": \"b\", \"removed\": true}");
    assert_json(
        call_ok(fixture, STORE_ROOM_REMOVE_MEMBER, "{\"roomId\": \"r1\", \"userId\": \"b\"}"),
        "{\"roomId\": \"r1\", \"userId\": \"b\", \"removed\": false}");
    assert_json(call_ok(fixture, STORE_ROOM_IS_MEMBER, "{\"roomId\": \"r1\", \"userId\": \"b\"}"),
                "false");
    assert_json(call_ok(fixture, STORE_ROOM_MEMBERS, "{\"roomId\": \"r1\"}"), "[\"a\", \"c\"]");
    static const store_operation_t room_operations[] = {
        STORE_ROOM_ADD_MEMBER, STORE_ROOM_REMOVE_MEMBER, STORE_ROOM_MEMBERS, STORE_ROOM_IS_MEMBER};
    for (size_t index = 0; index < 4; index++)
        call_fails(fixture, room_operations[index], "{\"roomId\": \"nope\", \"userId\": \"a\"}",
                   STORE_ENOTFOUND, "room not found");
    call_fails(fixture, STORE_ROOM_ADD_MEMBER, "{\"roomId\": \"r1\", \"userId\": \"ghost\"}",
               STORE_ENOTFOUND, "user not found");
}

/* A client's roomId 12 and "12" are the same room. */
static void test_numeric_ids(void **state)
{
    fixture_t *fixture = *state;
    add_user(fixture, "7");
    assert_json(call_ok(fixture, STORE_ROOM_CREATE, "{\"id\": 12, \"name\": \"Twelve\"}"),
                "{\"id\": \"12\", \"name\": \"Twelve\", \"isPrivate\": false, \"ownerId\": null,"
                " \"createdAt\": \"<time>\"}");
    json_decref(call_ok(fixture, STORE_ROOM_GET, "{\"id\": \"12\"}"));
    json_decref(call_ok(fixture, STORE_ROOM_GET, "{\"id\": 12.0}"));
    json_decref(call_ok(fixture, STORE_ROOM_GET, "{\"id\": 12}"));
    assert_json(call_ok(fixture, STORE_ROOM_ADD_MEMBER, "{\"roomId\": 12, \"userId\": 7}"),
                "{\"roomId\": \"12\", \"userId\": \"7\", \"joinedAt\": \"<time>\"}");
    assert_json(call_ok(fixture, STORE_ROOM_IS_MEMBER, "{\"roomId\": \"12\", \"userId\": \"7\"}"),
                "true");
    assert_json(
        call_ok(fixture, STORE_MESSAGE_ADD, "{\"roomId\": 12, \"senderId\": 7, \"text\": \"hi\"}"),
        "{\"id\": \"<id>\", \"roomId\": \"12\", \"senderId\": \"7\", \"text\": \"hi\","
        " \"createdAt\": \"<time>\"}");
    json_decref(call_ok(fixture, STORE_USER_UPSERT, "{\"id\": -3}"));
    json_decref(call_ok(fixture, STORE_USER_GET, "{\"id\": \"-3\"}"));
    call_fails(fixture, STORE_ROOM_GET, "{\"id\": 12.5}", STORE_EINVALID,
               "id must be a string or an integer");
    call_fails(fixture, STORE_ROOM_GET, "{\"id\": 1e300}", STORE_EINVALID,
               "id must be a string or an integer");
    call_fails(fixture, STORE_ROOM_GET, "{\"id\": true}", STORE_EINVALID,
               "id must be a string or an integer");
}

/* ---- Messages ------------------------------------------------------------------------------ */

static void add_messages(fixture_t *fixture, const char *room, int count, char ids[][32])
{
    for (int index = 0; index < count; index++) {
        char params[128];
        snprintf(params, sizeof(params),
                 "{\"roomId\": \"%s\", \"senderId\": \"a\", \"text\": \"m%d\"}", room, index);
        json_t *message = call_ok(fixture, STORE_MESSAGE_ADD, params);
        snprintf(ids[index], 32, "%s", string_of(message, "id"));
        json_decref(message);
    }
}

static void assert_texts(json_t *messages, const char *expected)
{
    char texts[256] = "";
    size_t index;
    json_t *message;
    json_array_foreach(messages, index, message)
    {
        strcat(texts, index ? " " : "");
        strcat(texts, string_of(message, "text"));
    }
    assert_string_equal(texts, expected);
    json_decref(messages);
}

static void test_messages_and_history(void **state)
{
    fixture_t *fixture = *state;
    add_user(fixture, "a");
    add_room(fixture, "r1", "a");
    add_room(fixture, "r2", "a");
    assert_json(call_ok(fixture, STORE_MESSAGE_ADD,
                        "{\"roomId\": \"r2\", \"senderId\": \"a\", \"text\": \"elsewhere\"}"),
                "{\"id\": \"<id>\", \"roomId\": \"r2\", \"senderId\": \"a\","
                " \"text\": \"elsewhere\", \"createdAt\": \"<time>\"}");
    char ids[5][32];
    add_messages(fixture, "r1", 5, ids);
    json_t *history = call_ok(fixture, STORE_MESSAGE_HISTORY, "{\"roomId\": \"r1\"}");
    assert_true(json_is_array(history));
    json_t *oldest = json_array_get(history, 0);
    assert_json(json_incref(oldest), "{\"id\": \"<id>\", \"roomId\": \"r1\", \"senderId\": \"a\","
                                     " \"text\": \"m0\", \"createdAt\": \"<time>\"}");
    assert_string_equal(string_of(oldest, "id"), ids[0]);
    assert_texts(history, "m0 m1 m2 m3 m4");
    assert_texts(call_ok(fixture, STORE_MESSAGE_HISTORY, "{\"roomId\": \"r1\", \"limit\": 2}"),
                 "m3 m4");
    char params[128];
    snprintf(params, sizeof(params), "{\"roomId\": \"r1\", \"before\": \"%s\", \"limit\": 2}",
             ids[3]);
    assert_texts(call_ok(fixture, STORE_MESSAGE_HISTORY, params), "m1 m2");
    snprintf(params, sizeof(params), "{\"roomId\": \"r1\", \"before\": \"%s\"}", ids[0]);
    assert_texts(call_ok(fixture, STORE_MESSAGE_HISTORY, params), "");
    snprintf(params, sizeof(params), "{\"roomId\": \"r2\", \"before\": \"%s\"}", ids[3]);
    call_fails(fixture, STORE_MESSAGE_HISTORY, params, STORE_ENOTFOUND,
               "before: message not found");
    call_fails(fixture, STORE_MESSAGE_HISTORY, "{\"roomId\": \"r9\"}", STORE_ENOTFOUND,
               "room not found");
    call_fails(fixture, STORE_MESSAGE_ADD,
               "{\"roomId\": \"r9\", \"senderId\": \"a\", \"text\": \"x\"}", STORE_ENOTFOUND,
               "room not found");
    call_fails(fixture, STORE_MESSAGE_ADD,
               "{\"roomId\": \"r1\", \"senderId\": \"z\", \"text\": \"x\"}", STORE_ENOTFOUND,
               "sender not found");
    assert_texts(call_ok(fixture, STORE_MESSAGE_HISTORY,
                         "{\"roomId\": \"r1\", \"before\": null, \"limit\": 100}"),
                 "m0 m1 m2 m3 m4");
}

static void test_direct_messages(void **state)
{
    fixture_t *fixture = *state;
    add_user(fixture, "a");
    add_user(fixture, "b");
    add_user(fixture, "c");
    assert_json(call_ok(fixture, STORE_DM_ADD,
                        "{\"senderId\": \"a\", \"recipientId\": \"b\", \"text\": \"d0\"}"),
                "{\"id\": \"<id>\", \"senderId\": \"a\", \"recipientId\": \"b\", \"text\": \"d0\","
                " \"createdAt\": \"<time>\"}");
    json_t *reply = call_ok(fixture, STORE_DM_ADD,
                            "{\"senderId\": \"b\", \"recipientId\": \"a\", \"text\": \"d1\"}");
    json_decref(call_ok(fixture, STORE_DM_ADD,
                        "{\"senderId\": \"a\", \"recipientId\": \"c\", \"text\": \"other\"}"));
    json_decref(call_ok(fixture, STORE_DM_ADD,
                        "{\"senderId\": \"a\", \"recipientId\": \"b\", \"text\": \"d2\"}"));
    assert_texts(call_ok(fixture, STORE_DM_HISTORY, "{\"userId\": \"a\", \"otherId\": \"b\"}"),
                 "d0 d1 d2");
    assert_texts(call_ok(fixture, STORE_DM_HISTORY, "{\"userId\": \"b\", \"otherId\": \"a\"}"),
                 "d0 d1 d2");
    char params[128];
    snprintf(params, sizeof(params),
             "{\"userId\": \"b\", \"otherId\": \"a\", \"before\": \"%s\", \"limit\": 5}",
             string_of(reply, "id"));
    json_decref(reply);
    assert_texts(call_ok(fixture, STORE_DM_HISTORY, params), "d0");
    json_t *history =
        call_ok(fixture, STORE_DM_HISTORY, "{\"userId\": \"a\", \"otherId\": \"c\", \"limit\": 1}");
    assert_json(history, "[{\"id\": \"<id>\", \"senderId\": \"a\", \"recipientId\": \"c\","
                         " \"text\": \"other\", \"createdAt\": \"<time>\"}]");
    assert_texts(call_ok(fixture, STORE_DM_HISTORY, "{\"userId\": \"x\", \"otherId\": \"y\"}"), "");
    call_fails(fixture, STORE_DM_HISTORY,
               "{\"userId\": \"a\", \"otherId\": \"c\", \"before\": \"nope\"}", STORE_ENOTFOUND,
               "before: message not found");
    call_fails(fixture, STORE_DM_ADD,
               "{\"senderId\": \"a\", \"recipientId\": \"z\", \"text\": \"x\"}", STORE_ENOTFOUND,
               "recipient not found");
    call_fails(fixture, STORE_DM_ADD,
               "{\"senderId\": \"z\", \"recipientId\": \"a\", \"text\": \"x\"}", STORE_ENOTFOUND,
               "sender not found");
}

/* ---- Notifications ------------------------------------------------------------------------- */

static void test_notifications(void **state)
{
    fixture_t *fixture = *state;
    /* The user need not exist. */
    assert_json(call_ok(fixture, STORE_NOTIFICATION_ADD,
                        "{\"userId\": \"u1\", \"type\": \"access:requested\","
                        " \"payload\": {\"roomId\": \"r1\", \"n\": [1, 2.5, null]}}"),
                "{\"id\": \"<id>\", \"userId\": \"u1\", \"type\": \"access:requested\","
                " \"payload\": {\"roomId\": \"r1\", \"n\": [1, 2.5, null]}, \"read\": false,"
                " \"createdAt\": \"<time>\"}");
    char ids[3][32];
    for (int index = 0; index < 3; index++) {
        char params[128];
        snprintf(params, sizeof(params), "{\"userId\": \"u1\", \"type\": \"t%d\", \"payload\": {}}",
                 index);
        json_t *notification = call_ok(fixture, STORE_NOTIFICATION_ADD, params);
        snprintf(ids[index], sizeof(ids[index]), "%s", string_of(notification, "id"));
        json_decref(notification);
    }
    json_decref(call_ok(fixture, STORE_NOTIFICATION_ADD,
                        "{\"userId\": \"u2\", \"type\": \"other\", \"payload\": {}}"));
    json_t *list = call_ok(fixture, STORE_NOTIFICATION_LIST, "{\"userId\": \"u1\", \"limit\": 2}");
    assert_json(list, "[{\"id\": \"<id>\", \"userId\": \"u1\", \"type\": \"t2\", \"payload\": {},"
                      " \"read\": false, \"createdAt\": \"<time>\"},"
                      " {\"id\": \"<id>\", \"userId\": \"u1\", \"type\": \"t1\", \"payload\": {},"
                      " \"read\": false, \"createdAt\": \"<time>\"}]");
    /* Another user's id is not theirs to mark; an unknown id is ignored. */
    char params[256];
    snprintf(params, sizeof(params), "{\"userId\": \"u2\", \"ids\": [\"%s\"]}", ids[0]);
    assert_json(call_ok(fixture, STORE_NOTIFICATION_MARK_READ, params), "{\"updated\": 0}");
    snprintf(params, sizeof(params), "{\"userId\": \"u1\", \"ids\": [\"%s\", \"%s\", \"nope\", 5]}",
             ids[0], ids[2]);
    assert_json(call_ok(fixture, STORE_NOTIFICATION_MARK_READ, params), "{\"updated\": 2}");
    assert_json(call_ok(fixture, STORE_NOTIFICATION_MARK_READ, params), "{\"updated\": 0}");
    json_t *unread =
        call_ok(fixture, STORE_NOTIFICATION_LIST, "{\"userId\": \"u1\", \"unreadOnly\": true}");
    assert_int_equal(json_array_size(unread), 2);
    assert_string_equal(string_of(json_array_get(unread, 0), "type"), "t1");
    assert_string_equal(string_of(json_array_get(unread, 1), "type"), "access:requested");
    json_decref(unread);
    json_t *all = call_ok(fixture, STORE_NOTIFICATION_LIST, "{\"userId\": \"u1\"}");
    assert_int_equal(json_array_size(all), 4);
    assert_true(json_is_true(json_object_get(json_array_get(all, 0), "read")));
    json_decref(all);
    assert_json(
        call_ok(fixture, STORE_NOTIFICATION_MARK_READ, "{\"userId\": \"u1\", \"ids\": \"all\"}"),
        "{\"updated\": 2}");
    assert_json(
        call_ok(fixture, STORE_NOTIFICATION_LIST, "{\"userId\": \"u1\", \"unreadOnly\": true}"),
        "[]");
    assert_json(call_ok(fixture, STORE_NOTIFICATION_MARK_READ, "{\"userId\": \"u2\", \"ids\": []}"),
                "{\"updated\": 0}");
    assert_json(
        call_ok(fixture, STORE_NOTIFICATION_LIST, "{\"userId\": \"u2\", \"unreadOnly\": true}"),
        "[{\"id\": \"<id>\", \"userId\": \"u2\", \"type\": \"other\", \"payload\": {},"
        " \"read\": false, \"createdAt\": \"<time>\"}]");
}

/* ---- Access requests ----------------------------------------------------------------------- */

static void test_access_requests(void **state)
{
    fixture_t *fixture = *state;
    add_user(fixture, "owner");
    add_user(fixture, "guest");
    add_user(fixture, "other");
    json_decref(call_ok(fixture, STORE_ROOM_CREATE,
                        "{\"id\": \"r1\", \"name\": \"P\", \"isPrivate\": true,"
                        " \"ownerId\": \"owner\"}"));
    json_t *pending =
        call_ok(fixture, STORE_ACCESS_REQUEST_ADD, "{\"roomId\": \"r1\", \"userId\": \"guest\"}");
    char id[32], params[128];
    snprintf(id, sizeof(id), "%s", string_of(pending, "id"));
    assert_json(pending, "{\"id\": \"<id>\", \"roomId\": \"r1\", \"userId\": \"guest\","
                         " \"status\": \"pending\", \"createdAt\": \"<time>\"}");
    call_fails(fixture, STORE_ACCESS_REQUEST_ADD, "{\"roomId\": \"r1\", \"userId\": \"guest\"}",
               STORE_ECONFLICT, "access request already pending");
    call_fails(fixture, STORE_ACCESS_REQUEST_ADD, "{\"roomId\": \"r1\", \"userId\": \"owner\"}",
               STORE_ECONFLICT, "user is already a member");
    call_fails(fixture, STORE_ACCESS_REQUEST_ADD, "{\"roomId\": \"r9\", \"userId\": \"guest\"}",
               STORE_ENOTFOUND, "room not found");
    call_fails(fixture, STORE_ACCESS_REQUEST_ADD, "{\"roomId\": \"r1\", \"userId\": \"ghost\"}",
               STORE_ENOTFOUND, "user not found");
    snprintf(params, sizeof(params), "{\"id\": \"%s\", \"status\": \"granted\"}", id);
    assert_json(call_ok(fixture, STORE_ACCESS_REQUEST_RESOLVE, params),
                "{\"id\": \"<id>\", \"roomId\": \"r1\", \"userId\": \"guest\","
                " \"status\": \"granted\", \"createdAt\": \"<time>\"}");
    assert_json(
        call_ok(fixture, STORE_ROOM_IS_MEMBER, "{\"roomId\": \"r1\", \"userId\": \"guest\"}"),
        "true");
    call_fails(fixture, STORE_ACCESS_REQUEST_RESOLVE, params, STORE_ECONFLICT,
               "access request already resolved");
    /* Denied: no membership; a new request may follow. */
    json_t *second =
        call_ok(fixture, STORE_ACCESS_REQUEST_ADD, "{\"roomId\": \"r1\", \"userId\": \"other\"}");
    snprintf(params, sizeof(params), "{\"id\": \"%s\", \"status\": \"denied\"}",
             string_of(second, "id"));
    json_decref(second);
    assert_json(call_ok(fixture, STORE_ACCESS_REQUEST_RESOLVE, params),
                "{\"id\": \"<id>\", \"roomId\": \"r1\", \"userId\": \"other\","
                " \"status\": \"denied\", \"createdAt\": \"<time>\"}");
    assert_json(
        call_ok(fixture, STORE_ROOM_IS_MEMBER, "{\"roomId\": \"r1\", \"userId\": \"other\"}"),
        "false");
    json_decref(
        call_ok(fixture, STORE_ACCESS_REQUEST_ADD, "{\"roomId\": \"r1\", \"userId\": \"other\"}"));
    snprintf(params, sizeof(params), "{\"id\": \"%s\"}", id);
    assert_json(call_ok(fixture, STORE_ACCESS_REQUEST_GET, params),
                "{\"id\": \"<id>\", \"roomId\": \"r1\", \"userId\": \"guest\","
                " \"status\": \"granted\", \"createdAt\": \"<time>\"}");
    call_fails(fixture, STORE_ACCESS_REQUEST_GET, "{\"id\": \"nope\"}", STORE_ENOTFOUND,
               "access request not found");
    call_fails(fixture, STORE_ACCESS_REQUEST_RESOLVE, "{\"id\": \"nope\", \"status\": \"denied\"}",
               STORE_ENOTFOUND, "access request not found");
}

/* ---- Params validation --------------------------------------------------------------------- */

typedef struct invalid_case_s {
    store_operation_t operation;
    const char *params; /* NULL: no params at all */
    const char *message;
} invalid_case_t;

static const invalid_case_t invalid_cases[] = {
    {STORE_USER_GET, NULL, "params must be an object"},
    {STORE_USER_GET, "[\"u1\"]", "params must be an object"},
    {STORE_USER_GET, "{}", "id is required"},
    {STORE_USER_GET, "{\"id\": null}", "id must be a string or an integer"},
    {STORE_USER_GET, "{\"id\": \"\"}", "id must not be empty"},
    {STORE_USER_GET, "{\"id\": {}}", "id must be a string or an integer"},
    {STORE_USER_GET, "{\"id\": \"a\\u0000b\"}", "id must not contain NUL characters"},
    {STORE_USER_UPSERT, "{\"id\": \"u\", \"firstName\": 3}", "firstName must be a string"},
    {STORE_USER_UPSERT, "{\"id\": \"u\", \"avatar\": []}", "avatar must be a string"},
    {STORE_PRESENCE_SET, "{\"userId\": \"u\"}", "status is required"},
    {STORE_PRESENCE_SET, "{\"status\": \"online\"}", "userId is required"},
    {STORE_PRESENCE_SET, "{\"userId\": \"u\", \"status\": 1}",
     "status must be \"online\" or \"offline\""},
    {STORE_ROOM_CREATE, "{}", "name is required"},
    {STORE_ROOM_CREATE, "{\"name\": \"\"}", "name must not be empty"},
    {STORE_ROOM_CREATE, "{\"name\": 5}", "name must be a string"},
    {STORE_ROOM_CREATE, "{\"name\": \"n\", \"isPrivate\": \"yes\"}", "isPrivate must be a boolean"},
    {STORE_ROOM_CREATE, "{\"name\": \"n\", \"ownerId\": false}",
     "ownerId must be a string or an integer"},
    {STORE_ROOM_ADD_MEMBER, "{\"roomId\": \"r\"}", "userId is required"},
    {STORE_ROOM_ADD_MEMBER, "{\"roomId\": [1], \"userId\": \"u\"}",
     "roomId must be a string or an integer"},
    {STORE_MESSAGE_ADD, "{\"roomId\": \"r\", \"senderId\": \"u\"}", "text is required"},
    {STORE_MESSAGE_ADD, "{\"roomId\": \"r\", \"senderId\": \"u\", \"text\": 5}",
     "text must be a string"},
    {STORE_MESSAGE_ADD, "{\"roomId\": \"r\", \"senderId\": \"u\", \"text\": \"a\\u0000\"}",
     "text must not contain NUL characters"},
    {STORE_MESSAGE_HISTORY, "{\"roomId\": \"r\", \"limit\": 0}",
     "limit must be an integer from 1 to 100"},
    {STORE_MESSAGE_HISTORY, "{\"roomId\": \"r\", \"limit\": 101}",
     "limit must be an integer from 1 to 100"},
    {STORE_MESSAGE_HISTORY, "{\"roomId\": \"r\", \"limit\": 2.5}",
     "limit must be an integer from 1 to 100"},
    {STORE_MESSAGE_HISTORY, "{\"roomId\": \"r\", \"limit\": \"5\"}",
     "limit must be an integer from 1 to 100"},
    {STORE_MESSAGE_HISTORY, "{\"roomId\": \"r\", \"before\": true}",
     "before must be a string or an integer"},
    {STORE_DM_ADD, "{\"senderId\": \"a\", \"text\": \"x\"}", "recipientId is required"},
    {STORE_DM_HISTORY, "{\"userId\": \"a\"}", "otherId is required"},
    {STORE_NOTIFICATION_ADD, "{\"userId\": \"u\", \"type\": \"t\"}", "payload is required"},
    {STORE_NOTIFICATION_ADD, "{\"userId\": \"u\", \"type\": \"t\", \"payload\": [1]}",
     "payload must be an object"},
    {STORE_NOTIFICATION_ADD, "{\"userId\": \"u\", \"payload\": {}}", "type is required"},
    {STORE_NOTIFICATION_LIST, "{\"userId\": \"u\", \"unreadOnly\": 1}",
     "unreadOnly must be a boolean"},
    {STORE_NOTIFICATION_MARK_READ, "{\"userId\": \"u\"}", "ids is required"},
    {STORE_NOTIFICATION_MARK_READ, "{\"userId\": \"u\", \"ids\": \"some\"}",
     "ids must be an array of ids or \"all\""},
    {STORE_NOTIFICATION_MARK_READ, "{\"userId\": \"u\", \"ids\": [\"a\", {}]}",
     "each of ids must be a string or an integer"},
    {STORE_ACCESS_REQUEST_RESOLVE, "{\"id\": \"x\", \"status\": \"pending\"}",
     "status must be \"granted\" or \"denied\""},
    {STORE_ACCESS_REQUEST_RESOLVE, "{\"status\": \"granted\"}", "id is required"},
};

static void test_invalid_params(void **state)
{
    fixture_t *fixture = *state;
    for (size_t index = 0; index < sizeof(invalid_cases) / sizeof(invalid_cases[0]); index++)
        call_fails(fixture, invalid_cases[index].operation, invalid_cases[index].params,
                   STORE_EINVALID, invalid_cases[index].message);
    call_fails(fixture, STORE_OPERATION_COUNT, "{}", STORE_EINVALID, "unknown operation");
    call_fails(fixture, (store_operation_t)-1, "{}", STORE_EINVALID, "unknown operation");
}

static char *repeat(char byte, size_t count)
{
    char *text = malloc(count + 1);
    assert_non_null(text);
    memset(text, byte, count);
    text[count] = '\0';
    return text;
}

/* 64 KiB of text is the last line; ids stop at 256 bytes. */
static void test_length_limits(void **state)
{
    fixture_t *fixture = *state;
    add_user(fixture, "a");
    add_room(fixture, "r1", "a");
    char *text = repeat('x', 65536);
    json_t *params = json_pack("{s:s, s:s, s:s}", "roomId", "r1", "senderId", "a", "text", text);
    outcome_t outcome;
    memset(&outcome, 0, sizeof(outcome));
    store_request(fixture->store, STORE_MESSAGE_ADD, params, on_done, &outcome);
    wait_for(fixture, &outcome);
    assert_int_equal(outcome.error, 0);
    assert_int_equal(json_string_length(json_object_get(outcome.result, "text")), 65536);
    outcome_clear(&outcome);
    text = realloc(text, 65538);
    strcat(text, "x");
    params = json_pack("{s:s, s:s, s:s}", "roomId", "r1", "senderId", "a", "text", text);
    store_request(fixture->store, STORE_MESSAGE_ADD, params, on_done, &outcome);
    wait_for(fixture, &outcome);
    assert_int_equal(outcome.error, STORE_EINVALID);
    assert_string_equal(outcome.message, "text is longer than 65536 bytes");
    outcome_clear(&outcome);
    free(text);

    char *payload_text = repeat('p', 65536);
    params =
        json_pack("{s:s, s:s, s:{s:s}}", "userId", "u", "type", "t", "payload", "k", payload_text);
    store_request(fixture->store, STORE_NOTIFICATION_ADD, params, on_done, &outcome);
    wait_for(fixture, &outcome);
    assert_int_equal(outcome.error, STORE_EINVALID);
    assert_string_equal(outcome.message, "payload is larger than 65536 bytes");
    outcome_clear(&outcome);
    free(payload_text);

    char *id = repeat('i', 256);
    store_request(fixture->store, STORE_USER_UPSERT, json_pack("{s:s}", "id", id), on_done,
                  &outcome);
    wait_for(fixture, &outcome);
    assert_int_equal(outcome.error, 0);
    outcome_clear(&outcome);
    id = realloc(id, 258);
    strcat(id, "i");
    store_request(fixture->store, STORE_USER_UPSERT, json_pack("{s:s}", "id", id), on_done,
                  &outcome);
    wait_for(fixture, &outcome);
    assert_int_equal(outcome.error, STORE_EINVALID);
    assert_string_equal(outcome.message, "id is longer than 256 bytes");
    outcome_clear(&outcome);
    free(id);
}

/* ---- Ordering, batching, savepoints -------------------------------------------------------- */

static void test_completions_in_request_order(void **state)
{
    fixture_t *fixture = *state;
    add_user(fixture, "a");
    add_room(fixture, "r1", "a");
    static const struct {
        store_operation_t operation;
        const char *params;
        int error;
    } steps[] = {
        {STORE_MESSAGE_ADD, "{\"roomId\": \"r1\", \"senderId\": \"a\", \"text\": \"1\"}", 0},
        {STORE_USER_GET, "{}", STORE_EINVALID},
        {STORE_ROOM_GET, "{\"id\": \"missing\"}", STORE_ENOTFOUND},
        {STORE_MESSAGE_HISTORY, "{\"roomId\": \"r1\"}", 0},
        {STORE_OPERATION_COUNT, "{}", STORE_EINVALID},
        {STORE_ROOM_CREATE, "{\"id\": \"r1\", \"name\": \"dup\"}", STORE_ECONFLICT},
        {STORE_NOTIFICATION_ADD, "{\"userId\": \"a\", \"type\": \"t\", \"payload\": {}}", 0},
        {STORE_PRESENCE_SET, "{\"userId\": \"a\", \"status\": \"online\"}", 0},
    };
    enum { STEP_COUNT = sizeof(steps) / sizeof(steps[0]) };
    outcome_t outcomes[STEP_COUNT];
    int start = completion_counter;
    for (int index = 0; index < STEP_COUNT; index++)
        request(fixture, steps[index].operation, steps[index].params, &outcomes[index]);
    wait_for(fixture, &outcomes[STEP_COUNT - 1]);
    for (int index = 0; index < STEP_COUNT; index++) {
        assert_int_equal(outcomes[index].called, 1);
        assert_int_equal(outcomes[index].order, start + index);
        assert_int_equal(outcomes[index].error, steps[index].error);
        outcome_clear(&outcomes[index]);
    }
}

/* A read sees the writes queued before it, even in the same batch. */
static void test_reads_see_earlier_writes(void **state)
{
    fixture_t *fixture = *state;
    outcome_t user, room, member, is_member, members;
    store_sqlite_hold(fixture->store, 1);
    request(fixture, STORE_USER_UPSERT, "{\"id\": \"a\"}", &user);
    request(fixture, STORE_ROOM_CREATE, "{\"id\": \"r\", \"name\": \"R\"}", &room);
    request(fixture, STORE_ROOM_ADD_MEMBER, "{\"roomId\": \"r\", \"userId\": \"a\"}", &member);
    request(fixture, STORE_ROOM_IS_MEMBER, "{\"roomId\": \"r\", \"userId\": \"a\"}", &is_member);
    request(fixture, STORE_ROOM_MEMBERS, "{\"roomId\": \"r\"}", &members);
    store_sqlite_hold(fixture->store, 0);
    wait_for(fixture, &members);
    assert_int_equal(member.error, 0);
    assert_true(json_is_true(is_member.result));
    assert_json(json_incref(members.result), "[\"a\"]");
    outcome_t *all[] = {&user, &room, &member, &is_member, &members};
    for (size_t index = 0; index < 5; index++)
        outcome_clear(all[index]);
}

static void test_batching_thousand_requests(void **state)
{
    fixture_t *fixture = *state;
    add_user(fixture, "a");
    add_room(fixture, "r1", "a");
    store_sqlite_stats_t before, after;
    store_sqlite_stats(fixture->store, &before);
    outcome_t *outcomes = calloc(BATCH_REQUESTS, sizeof(*outcomes));
    assert_non_null(outcomes);
    int start = completion_counter;
    for (int index = 0; index < BATCH_REQUESTS; index++) {
        char params[128];
        snprintf(params, sizeof(params),
                 "{\"roomId\": \"r1\", \"senderId\": \"a\", \"text\": \"%d\"}", index);
        request(fixture, STORE_MESSAGE_ADD, params, &outcomes[index]);
    }
    wait_for(fixture, &outcomes[BATCH_REQUESTS - 1]);
    for (int index = 0; index < BATCH_REQUESTS; index++) {
        assert_int_equal(outcomes[index].error, 0);
        assert_int_equal(outcomes[index].order, start + index);
        char text[16];
        snprintf(text, sizeof(text), "%d", index);
        assert_string_equal(string_of(outcomes[index].result, "text"), text);
        outcome_clear(&outcomes[index]);
    }
    free(outcomes);
    store_sqlite_stats(fixture->store, &after);
    assert_int_equal(after.requests - before.requests, BATCH_REQUESTS);
    print_message("      %d requests in %llu transactions (largest batch %zu)\n", BATCH_REQUESTS,
                  (unsigned long long)(after.transactions - before.transactions),
                  after.largest_batch);
    assert_true(after.transactions - before.transactions <= BATCH_REQUESTS / 20);
    assert_true(after.largest_batch >= 50);
    assert_texts(call_ok(fixture, STORE_MESSAGE_HISTORY, "{\"roomId\": \"r1\", \"limit\": 3}"),
                 "997 998 999");
}

/* Held, the queue is taken as one batch: one transaction for all of it. */
static void test_held_queue_is_one_transaction(void **state)
{
    fixture_t *fixture = *state;
    add_user(fixture, "a");
    add_room(fixture, "r1", "a");
    store_sqlite_stats_t before, after;
    store_sqlite_stats(fixture->store, &before);
    enum { COUNT = 300 };
    outcome_t outcomes[COUNT];
    store_sqlite_hold(fixture->store, 1);
    for (int index = 0; index < COUNT; index++)
        request(fixture, STORE_MESSAGE_ADD,
                "{\"roomId\": \"r1\", \"senderId\": \"a\", \"text\": \"t\"}", &outcomes[index]);
    store_sqlite_hold(fixture->store, 0);
    wait_for(fixture, &outcomes[COUNT - 1]);
    for (int index = 0; index < COUNT; index++) {
        assert_int_equal(outcomes[index].error, 0);
        outcome_clear(&outcomes[index]);
    }
    store_sqlite_stats(fixture->store, &after);
    assert_int_equal(after.transactions - before.transactions, 1);
    assert_int_equal(after.batches - before.batches, 1);
    assert_int_equal(after.largest_batch, COUNT);
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
    /* The file is a WAL database at schema version 1 with sioc's application id. */
    sqlite3 *db = raw_open(fixture);
    char mode[16];
    raw_text(db, "PRAGMA journal_mode", mode, sizeof(mode));
    assert_string_equal(mode, "wal");
    assert_int_equal(raw_integer(db, "SELECT max(version) FROM schema_version"), 1);
    assert_int_equal(raw_integer(db, "SELECT count(*) FROM schema_version"), 1);
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
    fixture_open(fixture); /* already at version 2: nothing runs twice */
    fixture_close(fixture);
    sqlite3 *db = raw_open(fixture);
    assert_int_equal(raw_integer(db, "SELECT count(*) FROM schema_version"), 2);
    assert_int_equal(raw_integer(db, "SELECT max(version) FROM schema_version"), 2);
    char topic[32];
    raw_text(db, "SELECT topic FROM rooms WHERE id = 'r1'", topic, sizeof(topic));
    assert_string_equal(topic, "migrated");
    sqlite3_close(db);
    /* A sioc that knows only version 1 refuses the file rather than guess. */
    store_sqlite_use_migrations(NULL, 0);
    assert_open_refused(fixture,
                        "schema version 2 is newer than this sioc knows (1): upgrade sioc");
}

static void test_failing_migration_leaves_file_unchanged(void **state)
{
    fixture_t *fixture = *state;
    add_user(fixture, "a");
    fixture_close(fixture);
    use_migrations_plus("CREATE TABLE partial (x); INSERT INTO nowhere VALUES (1);");
    assert_open_refused(fixture, "migration to schema version 2 failed: no such table: nowhere");
    sqlite3 *db = raw_open(fixture);
    assert_int_equal(raw_integer(db, "SELECT max(version) FROM schema_version"), 1);
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
    store_options_t options = {"sqlite", path};
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
    store_options_t no_path = {"sqlite", NULL};
    assert_int_equal(store_open(&fixture->loop, &no_path, &store, error, sizeof(error)),
                     STORE_EINVALID);
    assert_null(store);
    assert_string_equal(error, "store: a database path is required");
    store_options_t postgres = {"postgres", fixture->path};
    assert_int_equal(store_open(&fixture->loop, &postgres, &store, error, sizeof(error)),
                     STORE_EINVALID);
    assert_string_equal(error, "store: unknown driver \"postgres\" (expected sqlite)");
    char missing[192];
    snprintf(missing, sizeof(missing), "%s/no/such/dir/x.db", fixture->directory);
    store_options_t nowhere = {NULL, missing};
    assert_int_equal(store_open(&fixture->loop, &nowhere, &store, error, sizeof(error)), STORE_EIO);
    char expected[256];
    snprintf(expected, sizeof(expected),
             "%s: cannot open the database: unable to open database file", missing);
    assert_string_equal(error, expected);
}

#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_user_upsert_and_get),
        TEST(test_presence),
        TEST(test_room_create_and_get),
        TEST(test_room_members),
        TEST(test_numeric_ids),
        TEST(test_messages_and_history),
        TEST(test_direct_messages),
        TEST(test_notifications),
        TEST(test_access_requests),
        TEST(test_invalid_params),
        TEST(test_length_limits),
        TEST(test_completions_in_request_order),
        TEST(test_reads_see_earlier_writes),
        TEST(test_batching_thousand_requests),
        TEST(test_held_queue_is_one_transaction),
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
        TEST(test_failing_migration_leaves_file_unchanged),
        TEST(test_open_refuses_garbage),
        TEST(test_open_refuses_corrupt_database),
        TEST(test_open_refuses_foreign_database),
        TEST(test_open_refuses_read_only_file),
        TEST(test_open_refuses_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
