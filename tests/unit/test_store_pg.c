/* The PostgreSQL store on a real libuv loop and a real PostgreSQL 15: the conformance suite
 * (store_conformance.inc, the same as for SQLite), then what is PostgreSQL's own: migrations
 * run once, a server that is not there, a server restarted under the store (the idle
 * connection is replaced before the next batch), a connection lost under a running statement
 * (the request fails with STORE_EUNAVAILABLE and is not applied, the store reconnects), a
 * failing request rolled back alone. main runs the conformance suite with poolSize 1 and 4,
 * the second with the pool's own tests (per-key order, independent lanes, user upserts).
 *
 * The server: SIOC_TEST_PG_URL (and SIOC_TEST_PG_DIR for the restart test). Without it the
 * test starts its own through tests/lib/postgres.sh, which exits 77 (skipped) when
 * PostgreSQL is not installed. Every test starts from an empty "sioc" schema. */
#define _GNU_SOURCE /* strptime, timegm */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "store.h"
#include "store_sqlite.h"

#define BATCH_REQUESTS 1000

#include "store_conformance.inc"

static const char *pg_url(void)
{
    return getenv("SIOC_TEST_PG_URL");
}

/* store.poolSize of the group running (main runs the conformance suite with 1 and 4). */
static unsigned test_pool_size = 1;

/* store.dispatch of the group running: main runs every group with "threads" and "loop"
 * (SIOC_TEST_PG_DISPATCH=threads or loop: only that one). */
static int test_dispatch_loop = 0;

static int store_open_at(fixture_t *fixture, char *error, size_t error_size)
{
    store_options_t options = {"postgres",         fixture->path,     NULL, NULL, 0, 0,
                               fixture->pool_size, test_dispatch_loop};
    return store_open(&fixture->loop, &options, &fixture->store, error, error_size);
}

static void ignore_notice(void *data, const char *message)
{
    (void)data, (void)message;
}

/* Runs sql on a connection of the test's own. */
static void raw_exec(const char *sql)
{
    PGconn *conn = PQconnectdb(pg_url());
    assert_int_equal(PQstatus(conn), CONNECTION_OK);
    PQsetNoticeProcessor(conn, ignore_notice, NULL);
    PGresult *result = PQexec(conn, sql);
    ExecStatusType status = PQresultStatus(result);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(result));
    PQclear(result);
    PQfinish(conn);
}

static long long raw_integer(const char *sql)
{
    PGconn *conn = PQconnectdb(pg_url());
    assert_int_equal(PQstatus(conn), CONNECTION_OK);
    PGresult *result = PQexec(conn, sql);
    if (PQresultStatus(result) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(result));
    long long value = strtoll(PQgetvalue(result, 0, 0), NULL, 10);
    PQclear(result);
    PQfinish(conn);
    return value;
}

static void reset_schema(void)
{
    PGconn *conn = PQconnectdb(pg_url());
    assert_int_equal(PQstatus(conn), CONNECTION_OK);
    PQsetNoticeProcessor(conn, ignore_notice, NULL);
    PQclear(PQexec(conn, "DROP SCHEMA IF EXISTS sioc CASCADE"));
    PQfinish(conn);
}

static int setup(void **state)
{
    fixture_t *fixture = calloc(1, sizeof(*fixture));
    assert_non_null(fixture);
    snprintf(fixture->path, sizeof(fixture->path), "%s", pg_url());
    fixture->pool_size = test_pool_size;
    reset_schema();
    assert_int_equal(uv_loop_init(&fixture->loop), 0);
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
    free(fixture);
    return 0;
}

/* ---- PostgreSQL's own ---------------------------------------------------------------------- */

static void test_pg_migrations_run_once(void **state)
{
    fixture_t *fixture = *state;
    add_user(fixture, "a");
    fixture_close(fixture);
    fixture_open(fixture); /* a second daemon, or a restart: nothing to migrate */
    assert_int_equal(raw_integer("SELECT count(*) FROM sioc.schema_version"), 3);
    assert_int_equal(raw_integer("SELECT max(version) FROM sioc.schema_version"), 3);
    assert_json(call_ok(fixture, STORE_USER_GET, "{\"id\": \"a\"}"),
                "{\"id\": \"a\", \"firstName\": \"a\", \"lastName\": null, \"role\": null,"
                " \"avatar\": null}");
}

/* A database at schema 1 (version 2's columns taken away again): its rows keep reading back
 * with string ids after the migration, new rows keep their JSON type. */
static void test_pg_v1_rows_keep_string_ids(void **state)
{
    fixture_t *fixture = *state;
    add_user(fixture, "1");
    add_room(fixture, "r", "1");
    json_decref(call_ok(fixture, STORE_MESSAGE_ADD,
                        "{\"roomId\": \"r\", \"senderId\": \"1\", \"text\": \"old\"}"));
    fixture_close(fixture);
    raw_exec("ALTER TABLE sioc.users DROP COLUMN id_numeric;"
             "ALTER TABLE sioc.messages DROP COLUMN id_numeric;"
             "ALTER TABLE sioc.direct_messages DROP COLUMN id_numeric;"
             "ALTER TABLE sioc.notifications DROP COLUMN id_numeric;"
             "ALTER TABLE sioc.rooms DROP COLUMN id_numeric;"
             "ALTER TABLE sioc.room_members DROP COLUMN id_numeric;"
             "ALTER TABLE sioc.access_requests DROP COLUMN id_numeric;"
             "DELETE FROM sioc.schema_version WHERE version >= 2");
    fixture_open(fixture);
    assert_int_equal(raw_integer("SELECT max(version) FROM sioc.schema_version"), 3);
    json_decref(call_ok(fixture, STORE_MESSAGE_ADD,
                        "{\"roomId\": \"r\", \"senderId\": 1, \"text\": \"new\"}"));
    json_t *page = call_ok(fixture, STORE_MESSAGE_HISTORY, "{\"roomId\": \"r\"}");
    assert_int_equal(json_array_size(page), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(page, 0), "senderId")),
                        "1");
    assert_true(json_is_integer(json_object_get(json_array_get(page, 1), "senderId")));
    assert_int_equal(json_integer_value(json_object_get(json_array_get(page, 1), "senderId")), 1);
    json_decref(page);
}

/* A database at schema 2 (version 3's columns taken away again): its rooms, members and access
 * requests keep reading back with string ids after the migration, new rows keep their type. */
static void test_pg_v2_rooms_keep_string_ids(void **state)
{
    fixture_t *fixture = *state;
    add_user(fixture, "1");
    json_decref(call_ok(fixture, STORE_USER_UPSERT, "{\"id\": 2}"));
    json_decref(
        call_ok(fixture, STORE_ROOM_CREATE,
                "{\"id\": \"12\", \"name\": \"R\", \"isPrivate\": true, \"ownerId\": \"1\"}"));
    fixture_close(fixture);
    raw_exec("ALTER TABLE sioc.rooms DROP COLUMN id_numeric;"
             "ALTER TABLE sioc.room_members DROP COLUMN id_numeric;"
             "ALTER TABLE sioc.access_requests DROP COLUMN id_numeric;"
             "DELETE FROM sioc.schema_version WHERE version = 3");
    fixture_open(fixture);
    assert_int_equal(raw_integer("SELECT max(version) FROM sioc.schema_version"), 3);
    assert_json(call_ok(fixture, STORE_ROOM_GET, "{\"id\": 12}"),
                "{\"id\": \"12\", \"name\": \"R\", \"isPrivate\": true, \"ownerId\": \"1\","
                " \"createdAt\": \"<time>\"}");
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
}

static void test_pg_newer_schema_refused(void **state)
{
    fixture_t *fixture = *state;
    fixture_close(fixture);
    raw_exec("INSERT INTO sioc.schema_version VALUES (99, 'later')");
    char error[512] = "";
    assert_int_equal(store_open_at(fixture, error, sizeof(error)), STORE_EIO);
    assert_null(fixture->store);
    assert_non_null(strstr(error, "schema version 99 is newer than this sioc knows (3)"));
}

/* A port nobody listens on: a clear error, STORE_EUNAVAILABLE, and never the password. */
static void test_pg_server_down_at_open(void **state)
{
    fixture_t *fixture = *state;
    fixture_close(fixture);
    snprintf(fixture->path, sizeof(fixture->path),
             "postgresql://sioc:secret-word@127.0.0.1:1/sioc_test?connect_timeout=2");
    char error[512] = "";
    assert_int_equal(store_open_at(fixture, error, sizeof(error)), STORE_EUNAVAILABLE);
    assert_null(fixture->store);
    const char *prefix = "store: postgres sioc@127.0.0.1:1/sioc_test: cannot connect: ";
    if (strncmp(error, prefix, strlen(prefix)) != 0)
        fail_msg("unexpected error: %s", error);
    assert_null(strstr(error, "secret-word"));
    store_options_t no_url = {"postgres", "", NULL, NULL, 0, 0, 1, 0};
    assert_int_equal(store_open(&fixture->loop, &no_url, &fixture->store, error, sizeof(error)),
                     STORE_EINVALID);
    assert_string_equal(error, "store: a PostgreSQL connection URL is required (store.url)");
}

/* A trigger refuses one request: it alone is rolled back, the batch goes on (after the
 * batch's first run, without savepoints, was rolled back at the failure). */
static void test_pg_failing_request_rolls_back_alone(void **state)
{
    fixture_t *fixture = *state;
    add_user(fixture, "a");
    add_user(fixture, "evil");
    add_room(fixture, "r1", "a");
    raw_exec("CREATE FUNCTION sioc.refuse_evil() RETURNS trigger LANGUAGE plpgsql AS $$"
             " BEGIN IF NEW.user_id = 'evil' THEN RAISE EXCEPTION 'evil'; END IF; RETURN NEW;"
             " END $$;"
             "CREATE TRIGGER refuse_evil BEFORE INSERT ON sioc.room_members"
             " FOR EACH ROW EXECUTE FUNCTION sioc.refuse_evil()");
    outcome_t first, failing, last;
    store_sqlite_stats_t before, after;
    store_sqlite_stats(fixture->store, &before);
    store_sqlite_hold(fixture->store, 1);
    request(fixture, STORE_MESSAGE_ADD,
            "{\"roomId\": \"r1\", \"senderId\": \"a\", \"text\": \"1\"}", &first);
    request(fixture, STORE_ROOM_ADD_MEMBER, "{\"roomId\": \"r1\", \"userId\": \"evil\"}", &failing);
    request(fixture, STORE_MESSAGE_ADD,
            "{\"roomId\": \"r1\", \"senderId\": \"a\", \"text\": \"3\"}", &last);
    store_sqlite_hold(fixture->store, 0);
    wait_for(fixture, &last);
    assert_int_equal(first.error, 0);
    assert_int_equal(failing.error, STORE_EIO);
    assert_string_equal(failing.message, "the database failed");
    assert_int_equal(last.error, 0);
    /* Run without savepoints first, rolled back at the failure, run again with them. */
    store_sqlite_stats(fixture->store, &after);
    assert_int_equal(after.transactions - before.transactions, 2);
    assert_int_equal(after.requests - before.requests, 3);
    assert_texts(call_ok(fixture, STORE_MESSAGE_HISTORY, "{\"roomId\": \"r1\"}"), "1 3");
    assert_json(call_ok(fixture, STORE_ROOM_MEMBERS, "{\"roomId\": \"r1\"}"), "[\"a\"]");
    outcome_clear(&first);
    outcome_clear(&failing);
    outcome_clear(&last);
}

/* Message and DM inserts of a batch go to the server as one pipeline (one round trip for
 * all of them; with nothing else in the batch, its BEGIN and COMMIT too). A statement that
 * fails sends the batch back to the one-by-one way: every request gets the outcome it would
 * have had alone, in order, and nothing of the rolled-back pipeline stays. */
static void test_pg_pipelined_inserts(void **state)
{
    fixture_t *fixture = *state;
    add_user(fixture, "a");
    add_user(fixture, "b");
    add_room(fixture, "r1", "a");
    enum { COUNT = 200 };
    outcome_t outcomes[COUNT];
    store_sqlite_stats_t before, after;
    store_sqlite_stats(fixture->store, &before);
    store_sqlite_hold(fixture->store, 1);
    for (int index = 0; index < COUNT; index++) {
        char params[128];
        if (index % 2)
            snprintf(params, sizeof(params),
                     "{\"senderId\": \"a\", \"recipientId\": \"b\", \"text\": \"%d\"}", index);
        else
            snprintf(params, sizeof(params),
                     "{\"roomId\": \"r1\", \"senderId\": \"a\", \"text\": \"%d\"}", index);
        request(fixture, index % 2 ? STORE_DM_ADD : STORE_MESSAGE_ADD, params, &outcomes[index]);
    }
    store_sqlite_hold(fixture->store, 0);
    wait_for(fixture, &outcomes[COUNT - 1]);
    for (int index = 0; index < COUNT; index++) {
        assert_int_equal(outcomes[index].error, 0);
        outcome_clear(&outcomes[index]);
    }
    store_sqlite_stats(fixture->store, &after);
    assert_int_equal(after.transactions - before.transactions, 1);
    assert_int_equal(after.pipelines - before.pipelines, 1);
    assert_int_equal(after.pipelined - before.pipelined, COUNT);
    assert_texts(call_ok(fixture, STORE_MESSAGE_HISTORY, "{\"roomId\": \"r1\", \"limit\": 2}"),
                 "196 198");

    raw_exec("CREATE FUNCTION sioc.refuse_evil() RETURNS trigger LANGUAGE plpgsql AS $$"
             " BEGIN IF NEW.text = 'evil' THEN RAISE EXCEPTION 'evil'; END IF; RETURN NEW;"
             " END $$;"
             "CREATE TRIGGER refuse_evil BEFORE INSERT ON sioc.messages"
             " FOR EACH ROW EXECUTE FUNCTION sioc.refuse_evil()");
    static const struct {
        store_operation_t operation;
        const char *params;
        int error;
        const char *message;
    } steps[] = {
        {STORE_MESSAGE_ADD, "{\"roomId\": \"r1\", \"senderId\": \"a\", \"text\": \"1\"}", 0, NULL},
        {STORE_MESSAGE_ADD, "{\"roomId\": \"r9\", \"senderId\": \"a\", \"text\": \"x\"}",
         STORE_ENOTFOUND, "room not found"},
        {STORE_MESSAGE_ADD, "{\"roomId\": \"r1\", \"senderId\": \"a\", \"text\": \"2\"}", 0, NULL},
        {STORE_DM_ADD, "{\"senderId\": \"a\", \"recipientId\": \"z\", \"text\": \"x\"}",
         STORE_ENOTFOUND, "recipient not found"},
        {STORE_MESSAGE_ADD, "{\"roomId\": \"r1\", \"senderId\": \"a\", \"text\": \"evil\"}",
         STORE_EIO, "the database failed"},
        {STORE_MESSAGE_ADD, "{\"roomId\": \"r1\", \"senderId\": \"z\", \"text\": \"x\"}",
         STORE_ENOTFOUND, "sender not found"},
        {STORE_MESSAGE_ADD, "{\"roomId\": \"r1\", \"senderId\": \"a\", \"text\": \"3\"}", 0, NULL},
    };
    enum { STEP_COUNT = sizeof(steps) / sizeof(steps[0]) };
    outcome_t mixed[STEP_COUNT];
    store_sqlite_stats(fixture->store, &before);
    store_sqlite_hold(fixture->store, 1);
    for (int index = 0; index < STEP_COUNT; index++)
        request(fixture, steps[index].operation, steps[index].params, &mixed[index]);
    store_sqlite_hold(fixture->store, 0);
    wait_for(fixture, &mixed[STEP_COUNT - 1]);
    for (int index = 0; index < STEP_COUNT; index++) {
        assert_int_equal(mixed[index].error, steps[index].error);
        if (steps[index].message != NULL)
            assert_string_equal(mixed[index].message, steps[index].message);
        outcome_clear(&mixed[index]);
    }
    store_sqlite_stats(fixture->store, &after);
    assert_int_equal(after.transactions - before.transactions, 2); /* pipelined, then one by one */
    assert_texts(call_ok(fixture, STORE_MESSAGE_HISTORY, "{\"roomId\": \"r1\", \"limit\": 3}"),
                 "1 2 3");
    assert_int_equal(raw_integer("SELECT count(*) FROM sioc.messages"), COUNT / 2 + 3);
}

/* A batch of nothing but message and DM inserts is one round trip, BEGIN to COMMIT. An insert
 * whose room, sender or recipient is missing adds nothing and says which (the precedence of
 * the one-by-one checks) while the others commit; a COMMIT that fails (a deferred trigger
 * here) fails every request of the batch and keeps none of them. */
static void test_pg_batch_in_one_round_trip(void **state)
{
    fixture_t *fixture = *state;
    add_user(fixture, "a");
    add_user(fixture, "b");
    add_room(fixture, "r1", "a");
    static const struct {
        store_operation_t operation;
        const char *params;
        int error;
        const char *message;
    } steps[] = {
        {STORE_MESSAGE_ADD, "{\"roomId\": \"r1\", \"senderId\": \"a\", \"text\": \"1\"}", 0, NULL},
        {STORE_MESSAGE_ADD, "{\"roomId\": \"r9\", \"senderId\": \"z\", \"text\": \"x\"}",
         STORE_ENOTFOUND, "room not found"},
        {STORE_MESSAGE_ADD, "{\"roomId\": \"r1\", \"senderId\": \"z\", \"text\": \"x\"}",
         STORE_ENOTFOUND, "sender not found"},
        {STORE_DM_ADD, "{\"senderId\": \"z\", \"recipientId\": \"y\", \"text\": \"x\"}",
         STORE_ENOTFOUND, "sender not found"},
        {STORE_DM_ADD, "{\"senderId\": \"a\", \"recipientId\": \"y\", \"text\": \"x\"}",
         STORE_ENOTFOUND, "recipient not found"},
        {STORE_DM_ADD, "{\"senderId\": \"a\", \"recipientId\": \"b\", \"text\": \"d\"}", 0, NULL},
        {STORE_MESSAGE_ADD, "{\"roomId\": \"r1\", \"senderId\": \"a\", \"text\": \"2\"}", 0, NULL},
    };
    enum { STEP_COUNT = sizeof(steps) / sizeof(steps[0]) };
    outcome_t outcomes[STEP_COUNT];
    store_sqlite_stats_t before, after;
    store_sqlite_stats(fixture->store, &before);
    store_sqlite_hold(fixture->store, 1);
    for (int index = 0; index < STEP_COUNT; index++)
        request(fixture, steps[index].operation, steps[index].params, &outcomes[index]);
    store_sqlite_hold(fixture->store, 0);
    wait_for(fixture, &outcomes[STEP_COUNT - 1]);
    for (int index = 0; index < STEP_COUNT; index++) {
        assert_int_equal(outcomes[index].error, steps[index].error);
        if (steps[index].message != NULL)
            assert_string_equal(outcomes[index].message, steps[index].message);
        outcome_clear(&outcomes[index]);
    }
    store_sqlite_stats(fixture->store, &after);
    assert_int_equal(after.transactions - before.transactions, 1);
    assert_int_equal(after.pipelines - before.pipelines, 1);
    assert_int_equal(after.pipelined - before.pipelined, STEP_COUNT);
    assert_texts(call_ok(fixture, STORE_MESSAGE_HISTORY, "{\"roomId\": \"r1\"}"), "1 2");
    assert_int_equal(raw_integer("SELECT count(*) FROM sioc.direct_messages"), 1);

    raw_exec("CREATE FUNCTION sioc.refuse_late() RETURNS trigger LANGUAGE plpgsql AS $$"
             " BEGIN IF NEW.text = 'late' THEN RAISE EXCEPTION 'late'; END IF; RETURN NEW;"
             " END $$;"
             "CREATE CONSTRAINT TRIGGER refuse_late AFTER INSERT ON sioc.messages"
             " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION sioc.refuse_late()");
    static const char *const texts[] = {"3", "late", "4"};
    outcome_t late[3];
    store_sqlite_stats(fixture->store, &before);
    store_sqlite_hold(fixture->store, 1);
    for (int index = 0; index < 3; index++) {
        char params[128];
        snprintf(params, sizeof(params),
                 "{\"roomId\": \"r1\", \"senderId\": \"a\", \"text\": \"%s\"}", texts[index]);
        request(fixture, STORE_MESSAGE_ADD, params, &late[index]);
    }
    store_sqlite_hold(fixture->store, 0);
    wait_for(fixture, &late[2]);
    for (int index = 0; index < 3; index++) {
        assert_int_equal(late[index].error, STORE_EIO);
        assert_string_equal(late[index].message, "the database rolled the transaction back");
        outcome_clear(&late[index]);
    }
    store_sqlite_stats(fixture->store, &after);
    assert_int_equal(after.failed_commits - before.failed_commits, 1);
    assert_texts(call_ok(fixture, STORE_MESSAGE_HISTORY, "{\"roomId\": \"r1\"}"), "1 2");
    json_decref(call_ok(fixture, STORE_MESSAGE_ADD,
                        "{\"roomId\": \"r1\", \"senderId\": \"a\", \"text\": \"5\"}"));
    assert_texts(call_ok(fixture, STORE_MESSAGE_HISTORY, "{\"roomId\": \"r1\"}"), "1 2 5");
}

static void restart_server(void)
{
    const char *dir = getenv("SIOC_TEST_PG_DIR");
    if (dir == NULL)
        skip();
    char command[512];
    snprintf(command, sizeof(command), "%s/tests/lib/postgres.sh restart %s", SIOC_SOURCE_DIR, dir);
    assert_int_equal(system(command), 0);
}

/* The server restarts between two messages: the first request after it fails with
 * STORE_EUNAVAILABLE (not applied), the store reconnects by itself, and the table holds
 * exactly the acknowledged messages. */
static void test_pg_reconnects_after_restart(void **state)
{
    fixture_t *fixture = *state;
    add_user(fixture, "a");
    add_room(fixture, "r1", "a");
    json_decref(call_ok(fixture, STORE_MESSAGE_ADD,
                        "{\"roomId\": \"r1\", \"senderId\": \"a\", \"text\": \"before\"}"));
    restart_server();
    /* The server closed the idle connection on its way down (FATAL, then the end of the
     * stream): the store reads that before the batch and reconnects, so nothing fails. */
    json_decref(call_ok(fixture, STORE_MESSAGE_ADD,
                        "{\"roomId\": \"r1\", \"senderId\": \"a\", \"text\": \"after\"}"));
    assert_texts(call_ok(fixture, STORE_MESSAGE_HISTORY, "{\"roomId\": \"r1\"}"), "before after");
    assert_int_equal(raw_integer("SELECT count(*) FROM sioc.messages"), 2);
}

/* ---- The application's statements ------------------------------------------------------ */

static int open_cached(fixture_t *fixture, const char *const *statements, uint32_t cache_size,
                       uint32_t cache_ttl_ms, char *error, size_t error_size)
{
    fixture_close(fixture);
    store_options_t options = {"postgres", fixture->path, statements,         NULL,
                               cache_size, cache_ttl_ms,  fixture->pool_size, test_dispatch_loop};
    return store_open(&fixture->loop, &options, &fixture->store, error, error_size);
}

/* With the daemon's default user cache (store.userCache: 4096 users, 60 s). */
static int open_with(fixture_t *fixture, const char *const *statements, char *error,
                     size_t error_size)
{
    return open_cached(fixture, statements, 4096, 60000, error, error_size);
}

static void app_tables(void)
{
    raw_exec("DROP TABLE IF EXISTS \"Messages\", \"Users\";"
             "CREATE TABLE \"Users\" (id SERIAL PRIMARY KEY, \"firstName\" TEXT, role TEXT);"
             "CREATE TABLE \"Messages\" (id SERIAL PRIMARY KEY, \"roomId\" INTEGER,"
             " \"senderId\" INTEGER REFERENCES \"Users\" (id), text TEXT,"
             " \"createdAt\" TIMESTAMPTZ NOT NULL);"
             "INSERT INTO \"Users\" (\"firstName\", role) VALUES ('Ann', 'student')");
}

/* The app's rows by column name: ids and references keep their columns' types (INTEGER: a
 * number, whatever the param's JSON type was),
 * timestamps come back in the seeds' ISO form, and what sioc writes is in the app's table. */
static void test_pg_app_statements(void **state)
{
    fixture_t *fixture = *state;
    app_tables();
    const char *statements[STORE_OPERATION_COUNT] = {
        [STORE_USER_GET] = "SELECT id, \"firstName\", role FROM \"Users\" WHERE id = :id::int",
        [STORE_MESSAGE_ADD] =
            "INSERT INTO \"Messages\" (\"roomId\", \"senderId\", text, \"createdAt\")"
            " VALUES (:roomId::int, :senderId::int, :text, :now) RETURNING id,"
            " \"roomId\", \"senderId\", text, \"createdAt\"",
    };
    char error[512] = "";
    if (open_with(fixture, statements, error, sizeof(error)) != 0)
        fail_msg("%s", error);
    assert_json(call_ok(fixture, STORE_USER_GET, "{\"id\": 1}"),
                "{\"id\": 1, \"firstName\": \"Ann\", \"role\": \"student\"}");
    call_fails(fixture, STORE_USER_GET, "{\"id\": 2}", STORE_ENOTFOUND, "user not found");
    assert_json(call_ok(fixture, STORE_MESSAGE_ADD,
                        "{\"roomId\": 7, \"senderId\": \"1\", \"text\": \"hi\"}"),
                "{\"id\": 1, \"roomId\": 7, \"senderId\": 1, \"text\": \"hi\","
                " \"createdAt\": \"<time>\"}");
    assert_int_equal(raw_integer("SELECT count(*) FROM \"Messages\" WHERE text = 'hi'"), 1);
    /* The cached user: a change in the app's table shows after the cache's time only. */
    raw_exec("UPDATE \"Users\" SET \"firstName\" = 'Anne'");
    assert_json(call_ok(fixture, STORE_USER_GET, "{\"id\": 1}"),
                "{\"id\": 1, \"firstName\": \"Ann\", \"role\": \"student\"}");
    /* An upsert of the user (whichever table it writes) forgets the cached one. */
    json_decref(call_ok(fixture, STORE_USER_UPSERT, "{\"id\": 1}"));
    assert_json(call_ok(fixture, STORE_USER_GET, "{\"id\": 1}"),
                "{\"id\": 1, \"firstName\": \"Anne\", \"role\": \"student\"}");
}

static uint64_t monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

/* store.userCache.ttlMs: a change in the app's users table is seen once the cached user's
 * time is over (and not before, when the check comes early enough to tell); with size 0
 * every read asks the table. */
static void test_pg_user_cache_limits(void **state)
{
    fixture_t *fixture = *state;
    app_tables();
    const char *statements[STORE_OPERATION_COUNT] = {
        [STORE_USER_GET] = "SELECT id, \"firstName\" FROM \"Users\" WHERE id = :id::int",
    };
    char error[512] = "";
    if (open_cached(fixture, statements, 16, 300, error, sizeof(error)) != 0)
        fail_msg("%s", error);
    uint64_t cached_at = monotonic_ms();
    assert_json(call_ok(fixture, STORE_USER_GET, "{\"id\": 1}"),
                "{\"id\": 1, \"firstName\": \"Ann\"}");
    raw_exec("UPDATE \"Users\" SET \"firstName\" = 'Anne'");
    json_t *early = call_ok(fixture, STORE_USER_GET, "{\"id\": 1}");
    if (monotonic_ms() - cached_at < 250) /* else the machine was too slow to tell */
        assert_json(early, "{\"id\": 1, \"firstName\": \"Ann\"}");
    else
        json_decref(early);
    usleep(350 * 1000);
    assert_json(call_ok(fixture, STORE_USER_GET, "{\"id\": 1}"),
                "{\"id\": 1, \"firstName\": \"Anne\"}");

    if (open_cached(fixture, statements, 0, 60000, error, sizeof(error)) != 0)
        fail_msg("%s", error);
    assert_json(call_ok(fixture, STORE_USER_GET, "{\"id\": 1}"),
                "{\"id\": 1, \"firstName\": \"Anne\"}");
    raw_exec("UPDATE \"Users\" SET \"firstName\" = 'Annie'");
    assert_json(call_ok(fixture, STORE_USER_GET, "{\"id\": 1}"),
                "{\"id\": 1, \"firstName\": \"Annie\"}");
}

static void assert_statement_refused(fixture_t *fixture, store_operation_t operation,
                                     const char *sql, const char *expected)
{
    const char *statements[STORE_OPERATION_COUNT] = {NULL};
    statements[operation] = sql;
    char error[512] = "";
    assert_int_equal(open_with(fixture, statements, error, sizeof(error)), STORE_EINVALID);
    assert_null(fixture->store);
    if (strstr(error, expected) == NULL)
        fail_msg("expected \"%s\" in: %s", expected, error);
}

static void test_pg_bad_app_statements(void **state)
{
    fixture_t *fixture = *state;
    app_tables();
    assert_statement_refused(fixture, STORE_USER_GET, "SELECT id FROM \"Users\" WHERE id = :idd",
                             "store.statements.user_get: unknown parameter :idd");
    assert_statement_refused(fixture, STORE_USER_GET, "SELEC id FROM \"Users\"",
                             "store.statements.user_get: ERROR:  syntax error at or near");
    assert_statement_refused(fixture, STORE_MESSAGE_ADD,
                             "SELECT id, text FROM \"Messages\" WHERE text = :text",
                             "store.statements.message_add: the statement returns no column"
                             " \"roomId\" (it returns: id,text)");
    assert_statement_refused(fixture, STORE_USER_GET, "SELECT id FROM \"Users\" WHERE id = 'x:id",
                             "store.statements.user_get: unterminated quoted string");
    fixture_open(fixture);
}

/* ---- The pool (store.poolSize > 1) ---------------------------------------------------------- */

/* The lane the store gives a key (store.c: FNV-1a 64 of the key's text, modulo the pool). */
static unsigned lane_of(const char *key, unsigned pool_size)
{
    uint64_t hash = 14695981039346656037ull;
    for (const char *cursor = key; *cursor != '\0'; cursor++) {
        hash ^= (unsigned char)*cursor;
        hash *= 1099511628211ull;
    }
    return (unsigned)(hash % pool_size);
}

/* A key on lane (of pool_size) other than those in avoid (NULL-terminated): prefix0, prefix1, ...
 */
static void key_on_lane(char out[32], const char *prefix, unsigned lane, unsigned pool_size)
{
    for (int index = 0; index < 1000; index++) {
        snprintf(out, 32, "%s%d", prefix, index);
        if (lane_of(out, pool_size) == lane)
            return;
    }
    fail_msg("no key on lane %u", lane);
}

/* A connection of the test's own holds a room's row FOR UPDATE: the inserts of that room's
 * messages (their foreign key takes KEY SHARE on it) wait until it commits. */
static PGconn *lock_room(const char *room)
{
    PGconn *conn = PQconnectdb(pg_url());
    assert_int_equal(PQstatus(conn), CONNECTION_OK);
    char sql[128];
    snprintf(sql, sizeof(sql), "BEGIN; SELECT 1 FROM sioc.rooms WHERE id = '%s' FOR UPDATE", room);
    PGresult *result = PQexec(conn, sql);
    assert_int_equal(PQresultStatus(result), PGRES_TUPLES_OK);
    PQclear(result);
    return conn;
}

static void unlock_room(PGconn *conn)
{
    PQclear(PQexec(conn, "COMMIT"));
    PQfinish(conn);
}

/* One room's messages keep their order (completions and stored sequence) while a room on
 * another connection goes on without waiting for it; a room on the same connection waits. */
static void test_pool_rooms_ordered_and_independent(void **state)
{
    fixture_t *fixture = *state;
    enum { COUNT = 40 };
    char slow[32], other[32], same[32];
    key_on_lane(slow, "slow", 0, 4);
    key_on_lane(other, "other", 1, 4);
    key_on_lane(same, "same", 0, 4);
    add_user(fixture, "a");
    add_room(fixture, slow, "a");
    add_room(fixture, other, "a");
    add_room(fixture, same, "a");
    PGconn *lock = lock_room(slow);
    outcome_t slow_sent[COUNT], other_sent, same_sent;
    char params[160];
    for (int index = 0; index < COUNT; index++) {
        snprintf(params, sizeof(params),
                 "{\"roomId\": \"%s\", \"senderId\": \"a\", \"text\": \"%d\"}", slow, index);
        request(fixture, STORE_MESSAGE_ADD, params, &slow_sent[index]);
    }
    snprintf(params, sizeof(params), "{\"roomId\": \"%s\", \"senderId\": \"a\", \"text\": \"x\"}",
             same);
    request(fixture, STORE_MESSAGE_ADD, params, &same_sent);
    snprintf(params, sizeof(params), "{\"roomId\": \"%s\", \"senderId\": \"a\", \"text\": \"x\"}",
             other);
    request(fixture, STORE_MESSAGE_ADD, params, &other_sent);
    wait_for(fixture, &other_sent); /* while the slow room's lane waits for the lock */
    assert_int_equal(other_sent.error, 0);
    assert_int_equal(same_sent.called, 0);
    for (int index = 0; index < COUNT; index++)
        assert_int_equal(slow_sent[index].called, 0);
    unlock_room(lock);
    wait_for(fixture, &same_sent);
    for (int index = 0; index < COUNT; index++) {
        wait_for(fixture, &slow_sent[index]);
        assert_int_equal(slow_sent[index].error, 0);
        if (index > 0)
            assert_true(slow_sent[index - 1].order < slow_sent[index].order);
    }
    assert_true(slow_sent[COUNT - 1].order < same_sent.order);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM (SELECT text::int - (row_number() OVER (ORDER BY seq))::int AS d"
             " FROM sioc.messages WHERE room_id = '%s') AS t WHERE d <> -1",
             slow);
    assert_int_equal(raw_integer(sql), 0); /* stored in the order sent: text 0 has seq rank 1 */
    for (int index = 0; index < COUNT; index++)
        outcome_clear(&slow_sent[index]);
    outcome_clear(&same_sent);
    outcome_clear(&other_sent);
}

/* A message whose sender's upsert is still running on another connection waits for it
 * instead of failing with "sender not found" (the HTTP API and the chat queue a user's upsert
 * just before what names them). */
static void test_pool_waits_for_a_users_upsert(void **state)
{
    fixture_t *fixture = *state;
    char busy[32], room[32], third[32], user[32];
    key_on_lane(user, "newcomer", 2, 4);
    key_on_lane(busy, "busy", 2, 4);
    key_on_lane(room, "room", 1, 4);
    key_on_lane(third, "third", 3, 4);
    add_user(fixture, "a");
    add_room(fixture, busy, "a");
    add_room(fixture, room, "a");
    PGconn *lock = lock_room(busy);
    outcome_t blocked, upsert, member, message, elsewhere;
    char params[160];
    snprintf(params, sizeof(params), "{\"roomId\": \"%s\", \"senderId\": \"a\", \"text\": \"x\"}",
             busy);
    request(fixture, STORE_MESSAGE_ADD, params, &blocked); /* the user's lane is busy */
    snprintf(params, sizeof(params), "{\"id\": \"%s\"}", user);
    request(fixture, STORE_USER_UPSERT, params, &upsert);
    snprintf(params, sizeof(params), "{\"roomId\": \"%s\", \"userId\": \"%s\"}", room, user);
    request(fixture, STORE_ROOM_ADD_MEMBER, params, &member);
    snprintf(params, sizeof(params), "{\"roomId\": \"%s\", \"senderId\": \"%s\", \"text\": \"hi\"}",
             room, user);
    request(fixture, STORE_MESSAGE_ADD, params, &message);
    snprintf(params, sizeof(params), "{\"id\": \"%s\"}", third);
    request(fixture, STORE_ROOM_GET, params, &elsewhere);
    wait_for(fixture, &elsewhere); /* a third lane answers; the room's lane had its chance too */
    assert_int_equal(elsewhere.error, STORE_ENOTFOUND);
    assert_int_equal(member.called + message.called + upsert.called, 0);
    unlock_room(lock);
    wait_for(fixture, &message);
    assert_int_equal(blocked.error, 0);
    assert_int_equal(upsert.error, 0);
    assert_int_equal(member.error, 0);
    assert_int_equal(message.error, 0);
    assert_true(upsert.order < member.order && member.order < message.order);
    outcome_t *all[] = {&blocked, &upsert, &member, &message, &elsewhere};
    for (size_t index = 0; index < 5; index++)
        outcome_clear(all[index]);
}

/* A connection lost while its statement runs: the request fails as unavailable and is not
 * applied; the next one reconnects. The statement is held by a row lock of the test's own
 * while the store's backends are ended. */
/* With store.dispatch "loop": runs the loop until the idle workers have lent their
 * connections to it (bounded: 5 s), so that the messages after are the loop's to send. */
static void settle(fixture_t *fixture)
{
    for (int attempt = 0; test_dispatch_loop && attempt < 500; attempt++) {
        if (store_sqlite_lent(fixture->store))
            return;
        uv_run(&fixture->loop, UV_RUN_NOWAIT);
        usleep(10 * 1000);
    }
    if (test_dispatch_loop)
        fail_msg("the connections were never lent to the loop");
}

/* The batches the loop thread sent since before: some with store.dispatch "loop", none
 * with "threads". */
static void expect_loop_batches(const store_sqlite_stats_t *before,
                                const store_sqlite_stats_t *after, uint64_t count)
{
    assert_int_equal(after->loop_batches - before->loop_batches, test_dispatch_loop ? count : 0);
}

static void test_pg_lost_in_flight(void **state)
{
    fixture_t *fixture = *state;
    add_user(fixture, "a");
    add_room(fixture, "r1", "a");
    settle(fixture);
    store_sqlite_stats_t before, after;
    store_sqlite_stats(fixture->store, &before);
    PGconn *lock = lock_room("r1");
    outcome_t outcome;
    request(fixture, STORE_MESSAGE_ADD,
            "{\"roomId\": \"r1\", \"senderId\": \"a\", \"text\": \"lost\"}", &outcome);
    for (int attempt = 0; attempt < 500; attempt++) {
        if (raw_integer("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND datname = current_database()") > 0)
            break;
        usleep(10 * 1000);
    }
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname ="
             " current_database() AND pid <> pg_backend_pid() AND pid <> %d",
             PQbackendPID(lock));
    assert_true(raw_integer(sql) >= 1);
    wait_for(fixture, &outcome);
    assert_int_equal(outcome.error, STORE_EUNAVAILABLE);
    assert_string_equal(outcome.message, "the database is unavailable");
    outcome_clear(&outcome);
    store_sqlite_stats(fixture->store, &after);
    expect_loop_batches(&before, &after, 1);
    unlock_room(lock);
    json_decref(call_ok(fixture, STORE_MESSAGE_ADD,
                        "{\"roomId\": \"r1\", \"senderId\": \"a\", \"text\": \"after\"}"));
    assert_texts(call_ok(fixture, STORE_MESSAGE_HISTORY, "{\"roomId\": \"r1\"}"), "after");
}

/* ---- Two batches in flight on one connection ---- */

enum { TWO_MAX = 8 };

/* Runs the loop until a backend of the store waits for a lock (bounded: 30 s). */
static void wait_for_lock_wait(fixture_t *fixture)
{
    for (int attempt = 0; attempt < 3000; attempt++) {
        if (raw_integer("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND datname = current_database()") > 0)
            return;
        uv_run(&fixture->loop, UV_RUN_NOWAIT);
        usleep(10 * 1000);
    }
    fail_msg("no backend ever waited for the test's lock");
}

/* Runs the loop until one connection has had two batches sent and not yet answered at once
 * (bounded: 30 s; a store that keeps one in flight never gets there). */
static void wait_for_two_in_flight(fixture_t *fixture)
{
    store_sqlite_stats_t stats;
    for (int attempt = 0; attempt < 3000; attempt++) {
        store_sqlite_stats(fixture->store, &stats);
        if (stats.most_in_flight >= 2)
            return;
        uv_run(&fixture->loop, UV_RUN_NOWAIT);
        usleep(10 * 1000);
    }
    fail_msg("never two batches in flight (most %zu)", stats.most_in_flight);
}

/* Queues the messages texts (space-separated) to room r1 from a as one batch, into
 * outcomes[from...]; the number queued in all. */
static size_t queue_batch(fixture_t *fixture, const char *texts, outcome_t *outcomes, size_t from)
{
    char copy[128];
    snprintf(copy, sizeof(copy), "%s", texts);
    store_sqlite_hold(fixture->store, 1);
    char *saved = NULL;
    for (char *text = strtok_r(copy, " ", &saved); text != NULL;
         text = strtok_r(NULL, " ", &saved)) {
        assert_true(from < TWO_MAX);
        char params[128];
        snprintf(params, sizeof(params),
                 "{\"roomId\": \"r1\", \"senderId\": \"a\", \"text\": \"%s\"}", text);
        request(fixture, STORE_MESSAGE_ADD, params, &outcomes[from++]);
    }
    store_sqlite_hold(fixture->store, 0);
    return from;
}

/* Sends first as one batch while the test holds room r1's row, so that it waits there in
 * the backend, then second as another: both must be in flight at once on the connection
 * before the row is let go (or the connection ended: lose). third (NULL: none) is queued
 * behind them meanwhile. Every request completes, in the order made; the number of them. */
static size_t two_batches(fixture_t *fixture, const char *first, const char *second,
                          const char *third, outcome_t outcomes[TWO_MAX], int lose)
{
    settle(fixture);
    PGconn *lock = lock_room("r1");
    size_t count = queue_batch(fixture, first, outcomes, 0);
    wait_for_lock_wait(fixture);
    count = queue_batch(fixture, second, outcomes, count);
    wait_for_two_in_flight(fixture);
    if (third != NULL)
        count = queue_batch(fixture, third, outcomes, count);
    if (lose) {
        assert_true(raw_integer("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                                " WHERE wait_event_type = 'Lock'"
                                " AND datname = current_database()") == 1);
    }
    unlock_room(lock);
    for (size_t index = 0; index < count; index++) {
        wait_for(fixture, &outcomes[index]);
        if (index > 0)
            assert_true(outcomes[index - 1].order < outcomes[index].order);
    }
    return count;
}

static void expect(outcome_t *outcome, int error, const char *message)
{
    assert_int_equal(outcome->error, error);
    if (message != NULL)
        assert_string_equal(outcome->message, message);
    outcome_clear(outcome);
}

static void two_batches_setup(fixture_t *fixture)
{
    add_user(fixture, "a");
    add_room(fixture, "r1", "a");
    raw_exec("CREATE FUNCTION sioc.refuse_evil() RETURNS trigger LANGUAGE plpgsql AS $$"
             " BEGIN IF NEW.text = 'evil' THEN RAISE EXCEPTION 'evil'; END IF; RETURN NEW;"
             " END $$;"
             "CREATE TRIGGER refuse_evil BEFORE INSERT ON sioc.messages"
             " FOR EACH ROW EXECUTE FUNCTION sioc.refuse_evil();"
             "CREATE FUNCTION sioc.refuse_late() RETURNS trigger LANGUAGE plpgsql AS $$"
             " BEGIN IF NEW.text = 'late' THEN RAISE EXCEPTION 'late'; END IF; RETURN NEW;"
             " END $$;"
             "CREATE CONSTRAINT TRIGGER refuse_late AFTER INSERT ON sioc.messages"
             " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION sioc.refuse_late()");
}

/* A one-trip batch goes out while the one before it still waits in the backend: two
 * transactions in one pipeline, each committed, completed and stored in the order made. */
static void test_pg_two_batches_in_flight(void **state)
{
    fixture_t *fixture = *state;
    two_batches_setup(fixture);
    store_sqlite_stats_t before, after;
    store_sqlite_stats(fixture->store, &before);
    outcome_t outcomes[TWO_MAX];
    assert_int_equal(two_batches(fixture, "1 2", "3 4", NULL, outcomes, 0), 4);
    for (size_t index = 0; index < 4; index++)
        expect(&outcomes[index], 0, NULL);
    store_sqlite_stats(fixture->store, &after);
    assert_int_equal(after.transactions - before.transactions, 2);
    assert_int_equal(after.batches - before.batches, 2);
    expect_loop_batches(&before, &after, 2);
    assert_texts(call_ok(fixture, STORE_MESSAGE_HISTORY, "{\"roomId\": \"r1\"}"), "1 2 3 4");
}

/* The first of two in flight fails at a statement: PostgreSQL refuses the second at its
 * BEGIN (the transaction is aborted up to a ROLLBACK). The first runs again one request at
 * a time, then the second, and only then the third batch, queued meanwhile: each request's
 * outcome is the one it has alone, and the rows are stored in the order made. */
static void test_pg_first_in_flight_fails(void **state)
{
    fixture_t *fixture = *state;
    two_batches_setup(fixture);
    outcome_t outcomes[TWO_MAX];
    store_sqlite_stats_t before, after;
    store_sqlite_stats(fixture->store, &before);
    assert_int_equal(two_batches(fixture, "1 evil 2", "3", "4", outcomes, 0), 5);
    store_sqlite_stats(fixture->store, &after);
    expect_loop_batches(&before, &after, 2); /* the third waits for the worker's re-runs */
    expect(&outcomes[0], 0, NULL);
    expect(&outcomes[1], STORE_EIO, "the database failed");
    expect(&outcomes[2], 0, NULL);
    expect(&outcomes[3], 0, NULL);
    expect(&outcomes[4], 0, NULL);
    assert_texts(call_ok(fixture, STORE_MESSAGE_HISTORY, "{\"roomId\": \"r1\"}"), "1 2 3 4");
    assert_int_equal(raw_integer("SELECT count(*) FROM sioc.messages"), 4);
}

/* The second of two in flight fails at a statement: the first is committed as it was, the
 * second runs again one request at a time. */
static void test_pg_second_in_flight_fails(void **state)
{
    fixture_t *fixture = *state;
    two_batches_setup(fixture);
    outcome_t outcomes[TWO_MAX];
    assert_int_equal(two_batches(fixture, "1", "2 evil 3", NULL, outcomes, 0), 4);
    expect(&outcomes[0], 0, NULL);
    expect(&outcomes[1], 0, NULL);
    expect(&outcomes[2], STORE_EIO, "the database failed");
    expect(&outcomes[3], 0, NULL);
    assert_texts(call_ok(fixture, STORE_MESSAGE_HISTORY, "{\"roomId\": \"r1\"}"), "1 2 3");
    assert_int_equal(raw_integer("SELECT count(*) FROM sioc.messages"), 3);
}

/* The first's COMMIT fails (a deferred trigger): its requests fail and none is kept; the
 * second, already sent, commits on its own. Then the reverse. */
static void test_pg_commit_in_flight_fails(void **state)
{
    fixture_t *fixture = *state;
    two_batches_setup(fixture);
    store_sqlite_stats_t before, after;
    store_sqlite_stats(fixture->store, &before);
    outcome_t outcomes[TWO_MAX];
    assert_int_equal(two_batches(fixture, "1 late", "2", NULL, outcomes, 0), 3);
    expect(&outcomes[0], STORE_EIO, "the database rolled the transaction back");
    expect(&outcomes[1], STORE_EIO, "the database rolled the transaction back");
    expect(&outcomes[2], 0, NULL);
    store_sqlite_stats(fixture->store, &after);
    assert_int_equal(after.failed_commits - before.failed_commits, 1);
    assert_texts(call_ok(fixture, STORE_MESSAGE_HISTORY, "{\"roomId\": \"r1\"}"), "2");
}

/* The connection is lost with two batches in flight, neither committed: every request of
 * both fails as unavailable, none is stored, and the store reconnects for the next. */
static void test_pg_lost_with_two_in_flight(void **state)
{
    fixture_t *fixture = *state;
    two_batches_setup(fixture);
    outcome_t outcomes[TWO_MAX];
    assert_int_equal(two_batches(fixture, "1 2", "3", NULL, outcomes, 1), 3);
    for (size_t index = 0; index < 3; index++)
        expect(&outcomes[index], STORE_EUNAVAILABLE, "the database is unavailable");
    assert_int_equal(raw_integer("SELECT count(*) FROM sioc.messages"), 0);
    json_decref(call_ok(fixture, STORE_MESSAGE_ADD,
                        "{\"roomId\": \"r1\", \"senderId\": \"a\", \"text\": \"after\"}"));
    assert_texts(call_ok(fixture, STORE_MESSAGE_HISTORY, "{\"roomId\": \"r1\"}"), "after");
}

/* Every connection reconnects on its own after a restart; a ping reads from each. */
static void test_pool_ping(void **state)
{
    fixture_t *fixture = *state;
    outcome_t ping;
    memset(&ping, 0, sizeof(ping));
    store_ping(fixture->store, on_done, &ping);
    wait_for(fixture, &ping);
    assert_int_equal(ping.error, 0);
    assert_null(ping.result);
}

#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

static int pool_group(void **state)
{
    (void)state;
    test_pool_size = 4;
    return 0;
}

static int loop_group(void **state)
{
    (void)state;
    test_pool_size = 1;
    test_dispatch_loop = 1;
    return 0;
}

static int loop_pool_group(void **state)
{
    (void)state;
    test_pool_size = 4;
    test_dispatch_loop = 1;
    return 0;
}

static int ping(fixture_t *fixture)
{
    outcome_t outcome;
    memset(&outcome, 0, sizeof(outcome));
    store_ping(fixture->store, on_done, &outcome);
    wait_for(fixture, &outcome);
    assert_null(outcome.result);
    return outcome.error;
}

static void admin_exec(PGconn *conn, const char *sql)
{
    PGresult *result = PQexec(conn, sql);
    ExecStatusType status = PQresultStatus(result);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(result));
    PQclear(result);
}

/* The readiness probe (GET /readyz) reads through every connection of the pool: with one of
 * them lost and the server refusing new connections, it fails (that connection cannot
 * reconnect) although the other three answer; once the server takes connections again, that
 * connection comes back by itself (its backoff starts at 100 ms) and the probe passes. */
static void test_pool_ping_one_connection_down(void **state)
{
    fixture_t *fixture = *state;
    assert_int_equal(ping(fixture), 0);
    /* A database refuses connections only when set so from another one. */
    PGconn *conn = PQconnectdb(pg_url());
    assert_int_equal(PQstatus(conn), CONNECTION_OK);
    char database[128];
    snprintf(database, sizeof(database), "%s", PQdb(conn));
    PQfinish(conn);
    const char *keywords[] = {"dbname", "dbname", NULL};
    const char *values[] = {pg_url(), "postgres", NULL};
    PGconn *admin = PQconnectdbParams(keywords, values, 1);
    assert_int_equal(PQstatus(admin), CONNECTION_OK);
    PQsetNoticeProcessor(admin, ignore_notice, NULL);
    char sql[512];
    snprintf(sql, sizeof(sql), "ALTER DATABASE \"%s\" ALLOW_CONNECTIONS false", database);
    admin_exec(admin, sql);
    snprintf(sql, sizeof(sql),
             "SELECT count(pg_terminate_backend(pid)) FROM (SELECT pid FROM pg_stat_activity"
             " WHERE datname = '%s' AND application_name = 'sioc' ORDER BY pid LIMIT 1) AS one",
             database);
    PGresult *result = PQexec(admin, sql);
    assert_int_equal(PQresultStatus(result), PGRES_TUPLES_OK);
    assert_string_equal(PQgetvalue(result, 0, 0), "1");
    PQclear(result);
    /* The terminated backend is gone once pg_stat_activity no longer lists it. */
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM pg_stat_activity WHERE datname = '%s' AND application_name"
             " = 'sioc'",
             database);
    long long left = 4;
    for (int attempt = 0; attempt < 500 && left == 4; attempt++) {
        result = PQexec(admin, sql);
        left = strtoll(PQgetvalue(result, 0, 0), NULL, 10);
        PQclear(result);
        if (left == 4)
            usleep(10 * 1000);
    }
    assert_int_equal(left, 3);
    assert_int_equal(ping(fixture), STORE_EUNAVAILABLE);
    snprintf(sql, sizeof(sql), "ALTER DATABASE \"%s\" ALLOW_CONNECTIONS true", database);
    admin_exec(admin, sql);
    PQfinish(admin);
    int error = STORE_EUNAVAILABLE;
    for (int attempt = 0; attempt < 100 && error != 0; attempt++) { /* backoff: 5 s at most */
        usleep(100 * 1000);
        error = ping(fixture);
    }
    assert_int_equal(error, 0);
}

int main(int argc, char **argv)
{
    (void)argc;
    if (pg_url() == NULL) {
        /* Start a server of our own and run again under it. */
        char script[512];
        snprintf(script, sizeof(script), "%s/tests/lib/postgres.sh", SIOC_SOURCE_DIR);
        execl(script, script, "run", argv[0], (char *)NULL);
        perror(script);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        CONFORMANCE_TESTS(TEST),
        TEST(test_pg_migrations_run_once),
        TEST(test_pg_newer_schema_refused),
        TEST(test_pg_v1_rows_keep_string_ids),
        TEST(test_pg_v2_rooms_keep_string_ids),
        TEST(test_pg_server_down_at_open),
        TEST(test_pg_failing_request_rolls_back_alone),
        TEST(test_pg_pipelined_inserts),
        TEST(test_pg_batch_in_one_round_trip),
        TEST(test_pg_reconnects_after_restart),
        TEST(test_pg_lost_in_flight),
        TEST(test_pg_two_batches_in_flight),
        TEST(test_pg_first_in_flight_fails),
        TEST(test_pg_second_in_flight_fails),
        TEST(test_pg_commit_in_flight_fails),
        TEST(test_pg_lost_with_two_in_flight),
        TEST(test_pg_app_statements),
        TEST(test_pg_user_cache_limits),
        TEST(test_pg_bad_app_statements),
    };
    const struct CMUnitTest pool_tests[] = {
        CONFORMANCE_TESTS(TEST),
        TEST(test_pool_rooms_ordered_and_independent),
        TEST(test_pool_waits_for_a_users_upsert),
        TEST(test_pool_ping),
        TEST(test_pool_ping_one_connection_down),
        TEST(test_pg_reconnects_after_restart),
        TEST(test_pg_lost_in_flight),
        TEST(test_pg_failing_request_rolls_back_alone),
        TEST(test_pg_two_batches_in_flight),
        TEST(test_pg_first_in_flight_fails),
        TEST(test_pg_lost_with_two_in_flight),
        TEST(test_pg_app_statements),
    };
    const char *dispatch = getenv("SIOC_TEST_PG_DISPATCH");
    int failed = 0;
    if (dispatch == NULL || strcmp(dispatch, "loop") != 0) {
        failed += cmocka_run_group_tests_name("store_pg poolSize 1", tests, NULL, NULL);
        failed += cmocka_run_group_tests_name("store_pg poolSize 4", pool_tests, pool_group, NULL);
    }
    if (dispatch == NULL || strcmp(dispatch, "threads") != 0) {
        failed += cmocka_run_group_tests_name("store_pg poolSize 1, dispatch loop", tests,
                                              loop_group, NULL);
        failed += cmocka_run_group_tests_name("store_pg poolSize 4, dispatch loop", pool_tests,
                                              loop_pool_group, NULL);
    }
    return failed;
}
