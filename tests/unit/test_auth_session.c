/* Express session cookies and the Redis session store.
 *
 * Cookie values and signatures come from npm's cookie-signature 1.2.2 (sign(id, secret)), the
 * parsing expectations from npm's cookie 0.7.2 parse() (the version express-session 1.18 uses)
 * and express-session's getcookie: both were run in Node on each header below.
 *
 * The store is tested against a real redis-server (Debian's package), started here on a free
 * loopback port with persistence off, stopped and restarted to check reconnection, paused
 * (SIGSTOP) to check the request timeout, and killed at the end. Without redis-server those
 * tests are skipped with a message, not passed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "auth_session.h"

#define COOKIE_NAME "connect.sid"
#define SESSION_ID "yfXWZ5Hk2_LB4VRp7XWvKJ3YQTtJ8sE-"

/* cookie-signature sign(SESSION_ID, secret) for three secrets. */
#define SIGNED_KEYBOARD_CAT SESSION_ID ".SaBsEo65ug4NQm4/6u69k+aEYqdSM7v9PnDgeXg/dlQ"
#define SIGNED_NEW SESSION_ID ".hQZQ7swDzmMFRPtguhGY+WS2i0HZUr3U/X9GGnhDEcs"
#define SIGNED_OLD SESSION_ID ".IIy7k849DJizy76GxUd5In9WqZvfSTCUoblEJ1mUNsU"
/* What express-session puts in Set-Cookie: encodeURIComponent("s:" + signed). */
#define COOKIE_KEYBOARD_CAT                                                                        \
    "s%3AyfXWZ5Hk2_LB4VRp7XWvKJ3YQTtJ8sE-.SaBsEo65ug4NQm4%2F6u69k%2BaEYqdSM7v9PnDgeXg%2FdlQ"
#define COOKIE_NEW                                                                                 \
    "s%3AyfXWZ5Hk2_LB4VRp7XWvKJ3YQTtJ8sE-.hQZQ7swDzmMFRPtguhGY%2BWS2i0HZUr3U%2FX9GGnhDEcs"
#define COOKIE_OLD                                                                                 \
    "s%3AyfXWZ5Hk2_LB4VRp7XWvKJ3YQTtJ8sE-.IIy7k849DJizy76GxUd5In9WqZvfSTCUoblEJ1mUNsU"

static const char *const keyboard_cat[] = {"keyboard cat"};
static const char *const rotated[] = {"new secret", "old secret"}; /* first = current */

typedef struct cookie_result_s {
    int status;
    const char *message;
    char id[256];
} cookie_result_t;

static cookie_result_t parse_with(const char *header, const char *const *secrets, size_t count,
                                  size_t out_size)
{
    cookie_result_t result = {.message = NULL};
    assert_true(out_size <= sizeof(result.id));
    result.status = auth_session_cookie_id(header, header ? strlen(header) : 0, COOKIE_NAME,
                                           secrets, count, result.id, out_size, &result.message);
    return result;
}

static void assert_cookie_id(const char *header, const char *const *secrets, size_t count,
                             const char *expected_id)
{
    cookie_result_t result = parse_with(header, secrets, count, sizeof(result.id));
    if (result.status != 0)
        fail_msg("refused (\"%s\"): %s", result.message, header);
    assert_string_equal(result.id, expected_id);
}

static void assert_cookie_refused(const char *header, const char *const *secrets, size_t count,
                                  const char *expected_message)
{
    cookie_result_t result = parse_with(header, secrets, count, sizeof(result.id));
    if (result.status == 0)
        fail_msg("accepted as \"%s\", expected \"%s\": %s", result.id, expected_message, header);
    assert_int_equal(result.status, -1);
    if (strcmp(result.message, expected_message) != 0)
        fail_msg("\"%s\", expected \"%s\": %s", result.message, expected_message, header);
}

/* ---- Cookie header ------------------------------------------------------------------------- */

static void test_express_cookie_accepted(void **state)
{
    (void)state;
    assert_cookie_id("connect.sid=" COOKIE_KEYBOARD_CAT, keyboard_cat, 1, SESSION_ID);
    /* Not percent-encoded: '+' stays '+' (decodeURIComponent is not form decoding). */
    assert_cookie_id("connect.sid=s:" SIGNED_KEYBOARD_CAT, keyboard_cat, 1, SESSION_ID);
    /* The id is what precedes the last '.'. */
    assert_cookie_id("connect.sid=s%3Ax.y.z.we5NAQPi33eZtMHwFI%2BNWZcaLV0jgIH9KwElbwZ3%2BmY",
                     keyboard_cat, 1, "x.y.z");
    /* A UTF-8 id, percent-encoded by the browser: "café". */
    assert_cookie_id("connect.sid=s%3Acaf%C3%A9.bkut5YDLBAbp5%2BDN3XJ6d6Fv4PESrBWpD1v6T5G07EQ",
                     keyboard_cat, 1, "caf\xc3\xa9");
    /* A four-byte character: "p😀q". */
    assert_cookie_id("connect.sid=s%3Ap%F0%9F%98%80q.BDFiiXwYM6TB%2Bnio41OSmOCvmJBk3dzyvGMm1oHs3N8",
                     keyboard_cat, 1, "p\xf0\x9f\x98\x80q");
}

static void test_multiple_cookies(void **state)
{
    (void)state;
    assert_cookie_id("theme=dark; connect.sid=" COOKIE_KEYBOARD_CAT "; lang=en", keyboard_cat, 1,
                     SESSION_ID);
    assert_cookie_id("xconnect.sid=1;connect.sid2=2;connect.sid=" COOKIE_KEYBOARD_CAT, keyboard_cat,
                     1, SESSION_ID);
    /* Pairs without '=' are skipped, empty pairs too. */
    assert_cookie_id("foo; ;;connect.sid=" COOKIE_KEYBOARD_CAT ";;", keyboard_cat, 1, SESSION_ID);
    /* Only the first pair with the name counts, as cookie.parse assigns once. */
    assert_cookie_id("connect.sid=" COOKIE_KEYBOARD_CAT "; connect.sid=garbage", keyboard_cat, 1,
                     SESSION_ID);
    assert_cookie_refused("connect.sid=garbage; connect.sid=" COOKIE_KEYBOARD_CAT, keyboard_cat, 1,
                          "unsigned session cookie");
    assert_cookie_refused("connect.sid=; connect.sid=" COOKIE_KEYBOARD_CAT, keyboard_cat, 1,
                          "no session cookie");
    /* A value may hold '='; names compare exactly (case included). */
    assert_cookie_refused("x=y=z; connect.sid=q=r", keyboard_cat, 1, "unsigned session cookie");
    assert_cookie_refused("Connect.sid=" COOKIE_KEYBOARD_CAT, keyboard_cat, 1, "no session cookie");
}

static void test_whitespace_and_quotes(void **state)
{
    (void)state;
    assert_cookie_id("  connect.sid \t=\t " COOKIE_KEYBOARD_CAT " \t ; x=1", keyboard_cat, 1,
                     SESSION_ID);
    assert_cookie_id("a=1;connect.sid=\"s:" SIGNED_KEYBOARD_CAT "\"; b=2", keyboard_cat, 1,
                     SESSION_ID);
    assert_cookie_id("connect.sid= \"" COOKIE_KEYBOARD_CAT "\" ", keyboard_cat, 1, SESSION_ID);
    /* Unquoted only when both ends are quotes; a lone '"' counts as both and leaves "". */
    assert_cookie_refused("connect.sid=\"" COOKIE_KEYBOARD_CAT, keyboard_cat, 1,
                          "unsigned session cookie");
    assert_cookie_refused("connect.sid=" COOKIE_KEYBOARD_CAT "\"", keyboard_cat, 1,
                          "invalid session cookie signature");
    assert_cookie_refused("connect.sid=\"\"", keyboard_cat, 1, "no session cookie");
    assert_cookie_refused("connect.sid=\"", keyboard_cat, 1, "no session cookie");
    /* Only spaces and tabs are trimmed. */
    assert_cookie_refused("connect.sid=\n" COOKIE_KEYBOARD_CAT, keyboard_cat, 1,
                          "unsigned session cookie");
}

/* Percent-escapes decodeURIComponent throws on leave the value raw, and the signature is then
 * over the raw text: cookie-signature sign(raw, "keyboard cat") for each. */
static void test_undecodable_values_kept_raw(void **state)
{
    (void)state;
    assert_cookie_id("connect.sid=s:abc%ZZ.tkUULMA85I6qaaKf9yGRei7XTGTPnEdH/Ff33iUtcTM",
                     keyboard_cat, 1, "abc%ZZ");
    assert_cookie_id("connect.sid=s:x%C3%28.C/bHGk+v0lXOerJcbR/nvSk8W0DGHKAn2VSoK8WpfgI",
                     keyboard_cat, 1, "x%C3%28"); /* bad continuation byte */
    assert_cookie_id("connect.sid=s:y%E0%A4%A.rORSScqOu7FjOW4KVVanao7q2HGNcMEQK4tXEwufBB4",
                     keyboard_cat, 1, "y%E0%A4%A"); /* truncated escape */
    assert_cookie_id("connect.sid=s:z%C0%AF.cqZA/U1/yeIV6+n3rfywu4dCfCIim70WmS62kjPa8Yc",
                     keyboard_cat, 1, "z%C0%AF"); /* overlong '/' */
    assert_cookie_id("connect.sid=s:w%ED%A0%80.7qb0qYfpKcg82T3xH2eNL2PmeKwVBxFmLCaqb5EL5CE",
                     keyboard_cat, 1, "w%ED%A0%80"); /* surrogate */
    assert_cookie_id("connect.sid=s:v%F4%90%80%80.M18OUKr+DYeh363/TQms2TtPmFAyw9nQS0gW8HLh/x8",
                     keyboard_cat, 1, "v%F4%90%80%80"); /* beyond U+10FFFF */
    assert_cookie_id("connect.sid=s:u%.4X2vWR4u43rYs7tk0c67fTilUE7uF4T0ANLTg/DuAfI", keyboard_cat,
                     1, "u%");
    /* Decodable, so decoded before the check: the raw form's signature no longer matches. */
    assert_cookie_refused(
        "connect.sid=s:p%F0%9F%98%80q.N4V6dumh8G+/eYmVJ3ge0Ew/TQnG7lcULROMWh79ayo", keyboard_cat, 1,
        "invalid session cookie signature");
    /* "a\0b" is validly signed, but an id with a NUL is not one express-session issues, and
     * would be cut short: refused (Node would look up "sess:a\0b"). */
    assert_cookie_refused("connect.sid=s:a%00b.oTUd4z1Z9Kc4BOdT5U2tVPU4l5Ej09/1YMsocHEOABM",
                          keyboard_cat, 1, "invalid session cookie signature");
}

static void test_secret_rotation(void **state)
{
    (void)state;
    assert_cookie_id("connect.sid=" COOKIE_NEW, rotated, 2, SESSION_ID);
    assert_cookie_id("connect.sid=" COOKIE_OLD, rotated, 2, SESSION_ID);
    assert_cookie_refused("connect.sid=" COOKIE_KEYBOARD_CAT, rotated, 2,
                          "invalid session cookie signature");
    /* Once the old secret is retired, its cookies stop working. */
    assert_cookie_refused("connect.sid=" COOKIE_OLD, rotated, 1,
                          "invalid session cookie signature");
    assert_cookie_refused("connect.sid=" COOKIE_NEW, rotated, 0,
                          "invalid session cookie signature");
}

static void test_tampered_cookies_refused(void **state)
{
    (void)state;
    const char *bad = "invalid session cookie signature";
    /* One character of the id changed ('y' -> 'z'), then of the signature ('S' -> 'T'). */
    assert_cookie_refused("connect.sid=s:zfXWZ5Hk2_LB4VRp7XWvKJ3YQTtJ8sE-.SaBsEo65ug4NQm4/"
                          "6u69k+aEYqdSM7v9PnDgeXg/dlQ",
                          keyboard_cat, 1, bad);
    assert_cookie_refused("connect.sid=s:" SESSION_ID
                          ".TaBsEo65ug4NQm4/6u69k+aEYqdSM7v9PnDgeXg/dlQ",
                          keyboard_cat, 1, bad);
    /* Only the last character changed ('Q' -> 'R'): every byte is compared. */
    assert_cookie_refused("connect.sid=s:" SESSION_ID
                          ".SaBsEo65ug4NQm4/6u69k+aEYqdSM7v9PnDgeXg/dlR",
                          keyboard_cat, 1, bad);
    /* Truncated, padded with the '=' cookie-signature strips, empty, absent. */
    assert_cookie_refused("connect.sid=s:" SESSION_ID ".SaBsEo65ug4NQm4/6u69k+aEYqdSM7v9PnDgeXg/dl",
                          keyboard_cat, 1, bad);
    assert_cookie_refused("connect.sid=s:" SIGNED_KEYBOARD_CAT "=", keyboard_cat, 1, bad);
    assert_cookie_refused("connect.sid=s:" SESSION_ID ".", keyboard_cat, 1, bad);
    assert_cookie_refused("connect.sid=s:" SESSION_ID, keyboard_cat, 1, bad);
    /* Another id's signature; an id with a '.' added (the signature then covers "id.sig"). */
    assert_cookie_refused("connect.sid=s:abc.SaBsEo65ug4NQm4/6u69k+aEYqdSM7v9PnDgeXg/dlQ",
                          keyboard_cat, 1, bad);
    assert_cookie_refused("connect.sid=s:" SIGNED_KEYBOARD_CAT ".x", keyboard_cat, 1, bad);
}

static void test_missing_and_unsigned(void **state)
{
    (void)state;
    cookie_result_t result = parse_with(NULL, keyboard_cat, 1, sizeof(result.id));
    assert_int_equal(result.status, -1);
    assert_string_equal(result.message, "no session cookie");
    assert_cookie_refused("", keyboard_cat, 1, "no session cookie");
    assert_cookie_refused("theme=dark; lang=en", keyboard_cat, 1, "no session cookie");
    assert_cookie_refused("connect.sid", keyboard_cat, 1, "no session cookie");
    assert_cookie_refused("connect.sid=", keyboard_cat, 1, "no session cookie");
    assert_cookie_refused("connect.sid=" SESSION_ID, keyboard_cat, 1, "unsigned session cookie");
    assert_cookie_refused("connect.sid=S:" SIGNED_KEYBOARD_CAT, keyboard_cat, 1,
                          "unsigned session cookie");
    assert_cookie_refused("connect.sid=s", keyboard_cat, 1, "unsigned session cookie");
    assert_cookie_refused("connect.sid=s%3", keyboard_cat, 1, "unsigned session cookie");
    /* An empty id, validly signed ("s:" + sign("", secret)): no session, as passport.socketio. */
    assert_cookie_refused("connect.sid=s%3A.aJcKKTu8Uv0mRiw7LTI435t%2BpOa%2BgiU%2FWLAuLCKGEFc",
                          keyboard_cat, 1, "no session cookie");
}

static void test_length_limits(void **state)
{
    (void)state;
    cookie_result_t result =
        parse_with("connect.sid=" COOKIE_KEYBOARD_CAT, keyboard_cat, 1, sizeof(SESSION_ID));
    assert_int_equal(result.status, 0); /* exactly fits with its NUL */
    assert_string_equal(result.id, SESSION_ID);
    result =
        parse_with("connect.sid=" COOKIE_KEYBOARD_CAT, keyboard_cat, 1, sizeof(SESSION_ID) - 1);
    assert_int_equal(result.status, -1);
    assert_string_equal(result.message, "session cookie too long");
    result = parse_with("connect.sid=" COOKIE_KEYBOARD_CAT, keyboard_cat, 1, 0);
    assert_int_equal(result.status, -1);

    size_t prefix = strlen("connect.sid=");
    char *header = malloc(prefix + AUTH_SESSION_COOKIE_MAX_LENGTH + 2);
    assert_non_null(header);
    memcpy(header, "connect.sid=s:", prefix + 2);
    memset(header + prefix + 2, 'a', AUTH_SESSION_COOKIE_MAX_LENGTH - 2);
    header[prefix + AUTH_SESSION_COOKIE_MAX_LENGTH] = '\0';
    assert_cookie_refused(header, keyboard_cat, 1, "invalid session cookie signature");
    strcpy(header + prefix + AUTH_SESSION_COOKIE_MAX_LENGTH, "a");
    assert_cookie_refused(header, keyboard_cat, 1, "session cookie too long");
    free(header);
}

/* Every truncation of a header whose session cookie ends it is refused, but the whole one: the
 * parser reads no byte past header_length (ASan checks with the copy sized exactly). */
static void test_every_truncation(void **state)
{
    (void)state;
    static const char full[] = "a=1; connect.sid=" COOKIE_KEYBOARD_CAT;
    for (size_t length = 0; length <= sizeof(full) - 1; length++) {
        char *copy = malloc(length > 0 ? length : 1);
        assert_non_null(copy);
        memcpy(copy, full, length);
        char id[64];
        const char *message = NULL;
        int status = auth_session_cookie_id(copy, length, COOKIE_NAME, keyboard_cat, 1, id,
                                            sizeof(id), &message);
        free(copy);
        if (length < sizeof(full) - 1 && status == 0)
            fail_msg("truncation at %zu accepted as \"%s\"", length, id);
        if (length == sizeof(full) - 1 && status != 0)
            fail_msg("whole header refused: %s", message);
    }
}

/* ---- redis-server, started and stopped by the tests ---------------------------------------- */

typedef struct redis_server_s {
    pid_t pid;
    int port;
    const char *password; /* NULL: none */
} redis_server_t;

static char redis_path[512]; /* "" when redis-server is not installed */

static int find_in_path(const char *name, char *out, size_t size)
{
    const char *path = getenv("PATH");
    char directories[4096];
    snprintf(directories, sizeof(directories), "%s", path ? path : "/usr/bin:/bin");
    for (char *saved, *dir = strtok_r(directories, ":", &saved); dir;
         dir = strtok_r(NULL, ":", &saved)) {
        snprintf(out, size, "%s/%s", dir, name);
        if (access(out, X_OK) == 0)
            return 0;
    }
    out[0] = '\0';
    return -1;
}

static void require_redis(void)
{
    if (redis_path[0] == '\0') {
        print_message("redis-server is not installed (apt-get install redis-server): skipped\n");
        skip();
    }
}

/* A loopback port nobody listens on right now. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t length = sizeof(address);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&address, sizeof(address)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&address, &length), 0);
    close(fd);
    return ntohs(address.sin_port);
}

static redisContext *redis_connect_sync(const redis_server_t *server)
{
    struct timeval timeout = {1, 0};
    redisContext *context = redisConnectWithTimeout("127.0.0.1", server->port, timeout);
    if (context != NULL && context->err == 0 && server->password != NULL) {
        redisReply *reply = redisCommand(context, "AUTH %s", server->password);
        freeReplyObject(reply);
    }
    return context;
}

static int redis_ready(const redis_server_t *server)
{
    redisContext *context = redis_connect_sync(server);
    redisReply *reply = NULL;
    if (context != NULL && context->err == 0)
        reply = redisCommand(context, "PING");
    int ready = reply != NULL && reply->type == REDIS_REPLY_STATUS;
    freeReplyObject(reply);
    redisFree(context);
    return ready;
}

static void sleep_ms(long milliseconds)
{
    struct timespec delay = {milliseconds / 1000, (milliseconds % 1000) * 1000000L};
    nanosleep(&delay, NULL);
}

/* Every redis-server still running, so that a failed test (cmocka longjmps out of it) does not
 * leave one behind: the group teardown kills them. */
static pid_t running[8];

static void running_set(pid_t old_pid, pid_t new_pid)
{
    for (size_t i = 0; i < sizeof(running) / sizeof(running[0]); i++)
        if (running[i] == old_pid) {
            running[i] = new_pid;
            return;
        }
    fail_msg("too many redis-server processes");
}

static void kill_and_wait(pid_t pid)
{
    kill(pid, SIGCONT); /* in case a test left it paused */
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static void exec_redis(const redis_server_t *server)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", server->port);
    const char *argv[] = {
        redis_path,       "--port", port,    "--bind", "127.0.0.1",  "--save",  "",
        "--appendonly",   "no",     "--dir", "/tmp",   "--loglevel", "warning", "--requirepass",
        server->password, NULL};
    if (server->password == NULL)
        argv[13] = NULL;
    /* Dies with the test process, whatever way that ends. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int null_fd = open("/dev/null", O_WRONLY);
    dup2(null_fd, STDOUT_FILENO);
    execv(redis_path, (char **)argv);
    _exit(127);
}

/* Starts redis-server on server->port (loopback, no persistence) and waits until it answers. */
static void redis_start(redis_server_t *server)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (getppid() != parent) /* the parent died before prctl: PDEATHSIG would not fire */
            _exit(1);
        exec_redis(server);
    }
    server->pid = pid;
    running_set(0, pid);
    int status;
    for (int attempt = 0; attempt < 250 && !redis_ready(server); attempt++) {
        if (waitpid(server->pid, &status, WNOHANG) == server->pid) {
            running_set(server->pid, 0);
            fail_msg("redis-server exited at start (port %d)", server->port);
        }
        sleep_ms(20);
    }
    if (!redis_ready(server))
        fail_msg("redis-server did not answer on port %d", server->port);
}

static void redis_stop(redis_server_t *server)
{
    if (server->pid <= 0)
        return;
    kill_and_wait(server->pid);
    running_set(server->pid, 0);
    server->pid = 0;
}

static int kill_leftovers(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(running) / sizeof(running[0]); i++)
        if (running[i] > 0) {
            kill_and_wait(running[i]);
            running[i] = 0;
        }
    return 0;
}

/* A Redis command (format as redisCommand, string arguments only) that must succeed. */
static void redis_run(const redis_server_t *server, const char *format, const char *key,
                      const char *value)
{
    redisContext *context = redis_connect_sync(server);
    assert_true(context != NULL && context->err == 0);
    redisReply *reply = redisCommand(context, format, key, value);
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
        fail_msg("redis %s %s: %s", format, key, reply ? reply->str : context->errstr);
    freeReplyObject(reply);
    redisFree(context);
}

/* ---- the store on a loop ------------------------------------------------------------------- */

typedef struct answer_s {
    int calls;
    json_t *session; /* a reference of ours */
    char message[64];
} answer_t;

static void on_answer(json_t *session, const char *message, void *data)
{
    answer_t *answer = data;
    answer->calls++;
    json_decref(answer->session);
    answer->session = json_incref(session);
    snprintf(answer->message, sizeof(answer->message), "%s", message ? message : "");
}

static void answer_clear(answer_t *answer)
{
    json_decref(answer->session);
    *answer = (answer_t){.calls = 0};
}

static void on_tick(uv_timer_t *timer)
{
    (void)timer; /* only wakes uv_run up */
}

/* Runs the loop until *done is non-zero or timeout_ms have passed; returns *done. */
static int run_until(uv_loop_t *loop, const int *done, uint64_t timeout_ms)
{
    uv_timer_t tick;
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, on_tick, 5, 5);
    uv_update_time(loop);
    uint64_t deadline = uv_now(loop) + timeout_ms;
    while (!*done && uv_now(loop) < deadline)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return *done;
}

/* Asks for session_id and waits for the one answer. */
static void lookup(uv_loop_t *loop, auth_session_store_t *store, const char *session_id,
                   answer_t *answer)
{
    answer_clear(answer);
    auth_session_store_get(store, session_id, on_answer, answer);
    assert_int_equal(answer->calls, 0); /* never called back from inside get() */
    if (!run_until(loop, &answer->calls, 3000))
        fail_msg("no answer for %s", session_id);
    assert_int_equal(answer->calls, 1);
}

/* Looks session_id up every 50 ms until it is found; returns how many answers it took. */
static int lookup_until_found(uv_loop_t *loop, auth_session_store_t *store, const char *session_id,
                              answer_t *answer)
{
    for (int attempts = 1; attempts <= 200; attempts++) {
        lookup(loop, store, session_id, answer);
        if (answer->session != NULL)
            return attempts;
        assert_string_equal(answer->message, "session store unavailable");
        int never = 0;
        run_until(loop, &never, 50);
    }
    fail_msg("%s never found", session_id);
    return 0;
}

static auth_session_store_t *store_new(uv_loop_t *loop, const redis_server_t *server,
                                       const char *prefix, const char *password,
                                       uint32_t timeout_ms)
{
    char error[128] = "";
    auth_session_options_t options = {"127.0.0.1", server->port, prefix, password, timeout_ms};
    auth_session_store_t *store = auth_session_store_new(loop, &options, error, sizeof(error));
    if (store == NULL)
        fail_msg("auth_session_store_new: %s", error);
    return store;
}

/* Frees the store and checks that it leaves nothing on the loop (libuv's own test ending). */
static void store_free_and_close_loop(uv_loop_t *loop, auth_session_store_t *store)
{
    auth_session_store_free(store);
    for (int i = 0; i < 10; i++)
        uv_run(loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(loop), 0);
}

#define SESSION_JSON                                                                               \
    "{\"cookie\":{\"originalMaxAge\":86400000,\"expires\":\"2030-01-01T00:00:00.000Z\","           \
    "\"httpOnly\":true,\"path\":\"/\"},\"passport\":{\"user\":\"42\"}}"

static void test_store_lookups(void **state)
{
    (void)state;
    require_redis();
    redis_server_t server = {.port = free_port()};
    redis_start(&server);
    redis_run(&server, "SET %s %s", "sess:" SESSION_ID, SESSION_JSON);
    redis_run(&server, "SET %s %s", "sess:not-json", "{\"passport\":");
    redis_run(&server, "SET %s %s", "sess:array", "[1,2]");
    redis_run(&server, "SET %s %s", "sess:empty", "");
    redis_run(&server, "HSET %s field %s", "sess:hash", "value");
    redis_run(&server, "SET %s %s", "myapp:" SESSION_ID, "{\"passport\":{\"user\":7}}");

    uv_loop_t loop;
    uv_loop_init(&loop);
    auth_session_store_t *store = store_new(&loop, &server, NULL, NULL, 0);
    answer_t answer = {0};
    lookup(&loop, store, SESSION_ID, &answer);
    assert_non_null(answer.session);
    assert_string_equal(answer.message, "");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(answer.session, "passport"), "user")),
        "42");
    lookup(&loop, store, "unknown", &answer);
    assert_null(answer.session);
    assert_string_equal(answer.message, "session not found");
    static const char *const malformed[] = {"not-json", "array", "empty", "hash"};
    for (size_t i = 0; i < 4; i++) {
        lookup(&loop, store, malformed[i], &answer);
        assert_null(answer.session);
        assert_string_equal(answer.message, "malformed session");
    }
    /* A key with a space and binary-looking bytes is one argument, not split. */
    lookup(&loop, store, "a b\r\nc", &answer);
    assert_string_equal(answer.message, "session not found");
    store_free_and_close_loop(&loop, store);

    uv_loop_init(&loop);
    store = store_new(&loop, &server, "myapp:", NULL, 0);
    lookup(&loop, store, SESSION_ID, &answer);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(answer.session, "passport"), "user")),
        7);
    answer_clear(&answer);
    store_free_and_close_loop(&loop, store);
    redis_stop(&server);
}

static void test_store_reconnects_after_restart(void **state)
{
    (void)state;
    require_redis();
    redis_server_t server = {.port = free_port()};
    redis_start(&server);
    redis_run(&server, "SET %s %s", "sess:" SESSION_ID, SESSION_JSON);
    uv_loop_t loop;
    uv_loop_init(&loop);
    auth_session_store_t *store = store_new(&loop, &server, NULL, NULL, 0);
    answer_t answer = {0};
    lookup(&loop, store, SESSION_ID, &answer);
    assert_non_null(answer.session);

    redis_stop(&server);
    lookup(&loop, store, SESSION_ID, &answer);
    assert_null(answer.session);
    assert_string_equal(answer.message, "session store unavailable");
    int never = 0;
    run_until(&loop, &never, 300); /* a few failed reconnection attempts */
    lookup(&loop, store, SESSION_ID, &answer);
    assert_string_equal(answer.message, "session store unavailable");

    redis_start(&server); /* same port, empty: persistence is off */
    redis_run(&server, "SET %s %s", "sess:" SESSION_ID, SESSION_JSON);
    lookup_until_found(&loop, store, SESSION_ID, &answer);
    lookup(&loop, store, "unknown", &answer);
    assert_string_equal(answer.message, "session not found");
    answer_clear(&answer);
    store_free_and_close_loop(&loop, store);
    redis_stop(&server);
}

static void test_store_starts_while_redis_is_down(void **state)
{
    (void)state;
    require_redis();
    redis_server_t server = {.port = free_port()};
    uv_loop_t loop;
    uv_loop_init(&loop);
    auth_session_store_t *store = store_new(&loop, &server, NULL, NULL, 0);
    answer_t answer = {0};
    lookup(&loop, store, SESSION_ID, &answer);
    assert_string_equal(answer.message, "session store unavailable");

    redis_start(&server);
    redis_run(&server, "SET %s %s", "sess:" SESSION_ID, SESSION_JSON);
    lookup_until_found(&loop, store, SESSION_ID, &answer);
    answer_clear(&answer);
    store_free_and_close_loop(&loop, store);
    redis_stop(&server);
}

/* A paused Redis accepts nothing and answers nothing: after the timeout the store gives up on
 * the request, drops the connection and reconnects once Redis is back. */
static void test_store_request_timeout(void **state)
{
    (void)state;
    require_redis();
    redis_server_t server = {.port = free_port()};
    redis_start(&server);
    redis_run(&server, "SET %s %s", "sess:" SESSION_ID, SESSION_JSON);
    uv_loop_t loop;
    uv_loop_init(&loop);
    auth_session_store_t *store = store_new(&loop, &server, NULL, NULL, 200);
    answer_t answer = {0};
    lookup(&loop, store, SESSION_ID, &answer);
    assert_non_null(answer.session);

    kill(server.pid, SIGSTOP);
    uv_update_time(&loop);
    uint64_t asked_at = uv_now(&loop);
    lookup(&loop, store, SESSION_ID, &answer);
    assert_string_equal(answer.message, "session store unavailable");
    assert_true(uv_now(&loop) - asked_at >= 200);
    kill(server.pid, SIGCONT);
    lookup_until_found(&loop, store, SESSION_ID, &answer);
    answer_clear(&answer);
    store_free_and_close_loop(&loop, store);
    redis_stop(&server);
}

static void test_store_password(void **state)
{
    (void)state;
    require_redis();
    redis_server_t server = {.port = free_port(), .password = "hunter2 with spaces"};
    redis_start(&server);
    redis_run(&server, "SET %s %s", "sess:" SESSION_ID, SESSION_JSON);
    uv_loop_t loop;
    uv_loop_init(&loop);
    answer_t answer = {0};
    auth_session_store_t *store = store_new(&loop, &server, NULL, server.password, 0);
    lookup(&loop, store, SESSION_ID, &answer);
    assert_non_null(answer.session);
    store_free_and_close_loop(&loop, store);

    uv_loop_init(&loop);
    store = store_new(&loop, &server, NULL, "wrong", 0);
    lookup(&loop, store, SESSION_ID, &answer);
    assert_null(answer.session);
    assert_string_equal(answer.message, "session store unavailable");
    store_free_and_close_loop(&loop, store);

    uv_loop_init(&loop);
    store = store_new(&loop, &server, NULL, NULL, 0); /* no password at all: NOAUTH */
    lookup(&loop, store, SESSION_ID, &answer);
    assert_string_equal(answer.message, "session store unavailable");
    answer_clear(&answer);
    store_free_and_close_loop(&loop, store);
    redis_stop(&server);
}

/* Requests in flight (sent, or queued on a connection still opening) and requests refused while
 * Redis is away are all called back exactly once when the store is freed. */
static void test_store_free_calls_back_once(void **state)
{
    (void)state;
    require_redis();
    redis_server_t server = {.port = free_port()};
    redis_start(&server);
    uv_loop_t loop;
    uv_loop_init(&loop);
    answer_t answers[8] = {{0}};
    auth_session_store_t *store = store_new(&loop, &server, NULL, NULL, 0);
    for (int i = 0; i < 4; i++)
        auth_session_store_get(store, SESSION_ID, on_answer, &answers[i]);
    store_free_and_close_loop(&loop, store);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(answers[i].calls, 1);
        assert_string_equal(answers[i].message, "session store unavailable");
    }

    redis_server_t nobody = {.port = free_port()};
    uv_loop_init(&loop);
    store = store_new(&loop, &nobody, NULL, NULL, 0);
    int never = 0;
    run_until(&loop, &never, 50); /* the first attempt fails: requests are refused now */
    for (int i = 4; i < 8; i++)
        auth_session_store_get(store, SESSION_ID, on_answer, &answers[i]);
    store_free_and_close_loop(&loop, store);
    for (int i = 4; i < 8; i++) {
        assert_int_equal(answers[i].calls, 1);
        assert_string_equal(answers[i].message, "session store unavailable");
    }
    redis_stop(&server);
}

typedef struct retrying_during_free_s {
    auth_session_store_t *store;
    int calls;
    int retries_left;
} retrying_during_free_t;

static void on_answer_retry_during_free(json_t *session, const char *message, void *data)
{
    retrying_during_free_t *retrying = data;
    retrying->calls++;
    if (retrying->retries_left-- > 0)
        auth_session_store_get(retrying->store, SESSION_ID, on_answer_retry_during_free, retrying);
}

/* A caller asking again from the answers the free makes still gets each answer, once: for a
 * request in flight at the free, and for one refused because Redis is away. */
static void test_store_asked_again_while_freeing(void **state)
{
    (void)state;
    require_redis();
    redis_server_t server = {.port = free_port()};
    redis_start(&server);
    uv_loop_t loop;
    uv_loop_init(&loop);
    answer_t answer = {0};
    retrying_during_free_t in_flight = {.retries_left = 2};
    in_flight.store = store_new(&loop, &server, NULL, NULL, 0);
    lookup(&loop, in_flight.store, SESSION_ID, &answer); /* connected */
    auth_session_store_get(in_flight.store, SESSION_ID, on_answer_retry_during_free, &in_flight);
    store_free_and_close_loop(&loop, in_flight.store);
    assert_int_equal(in_flight.calls, 3);

    redis_stop(&server);
    uv_loop_init(&loop);
    retrying_during_free_t refused = {.retries_left = 2};
    refused.store = store_new(&loop, &server, NULL, NULL, 0);
    lookup(&loop, refused.store, SESSION_ID, &answer); /* Redis is known to be away */
    assert_string_equal(answer.message, "session store unavailable");
    auth_session_store_get(refused.store, SESSION_ID, on_answer_retry_during_free, &refused);
    assert_int_equal(refused.calls, 0);
    store_free_and_close_loop(&loop, refused.store);
    assert_int_equal(refused.calls, 3);
    answer_clear(&answer);
}

typedef struct freeing_answer_s {
    answer_t answer;
    auth_session_store_t *store;
} freeing_answer_t;

static void on_answer_free_store(json_t *session, const char *message, void *data)
{
    freeing_answer_t *freeing = data;
    on_answer(session, message, &freeing->answer);
    auth_session_store_free(freeing->store);
}

/* The first answer frees the store from inside hiredis' reply callback; the requests behind it
 * still get their one answer. */
static void test_store_freed_from_its_callback(void **state)
{
    (void)state;
    require_redis();
    redis_server_t server = {.port = free_port()};
    redis_start(&server);
    redis_run(&server, "SET %s %s", "sess:" SESSION_ID, SESSION_JSON);
    uv_loop_t loop;
    uv_loop_init(&loop);
    auth_session_store_t *store = store_new(&loop, &server, NULL, NULL, 0);
    answer_t warm = {0};
    lookup(&loop, store, SESSION_ID, &warm); /* connected: the next requests go out together */
    freeing_answer_t first = {.store = store};
    answer_t rest[3] = {{0}};
    auth_session_store_get(store, SESSION_ID, on_answer_free_store, &first);
    for (int i = 0; i < 3; i++)
        auth_session_store_get(store, SESSION_ID, on_answer, &rest[i]);
    run_until(&loop, &rest[2].calls, 3000);
    assert_int_equal(first.answer.calls, 1);
    assert_non_null(first.answer.session);
    for (int i = 0; i < 3; i++)
        assert_int_equal(rest[i].calls, 1);
    for (int i = 0; i < 10; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&loop), 0);
    answer_clear(&warm);
    answer_clear(&first.answer);
    for (int i = 0; i < 3; i++)
        answer_clear(&rest[i]);
    redis_stop(&server);
}

typedef struct retrying_s {
    auth_session_store_t *store;
    redis_server_t *server;
    int refusals;
    int found;
} retrying_t;

static void on_answer_retry(json_t *session, const char *message, void *data)
{
    retrying_t *retrying = data;
    if (session != NULL) {
        retrying->found = 1;
        return;
    }
    retrying->refusals++;
    auth_session_store_get(retrying->store, SESSION_ID, on_answer_retry, retrying);
}

static void on_start_redis(uv_timer_t *timer)
{
    retrying_t *retrying = timer->data;
    redis_start(retrying->server);
    redis_run(retrying->server, "SET %s %s", "sess:" SESSION_ID, SESSION_JSON);
}

/* A caller retrying at once on every refusal must not keep the loop from polling: Redis is
 * brought back by a timer, which only runs if the loop moves on. */
static void test_store_caller_retrying_on_refusal(void **state)
{
    (void)state;
    require_redis();
    redis_server_t server = {.port = free_port()};
    uv_loop_t loop;
    uv_loop_init(&loop);
    retrying_t retrying = {.server = &server};
    retrying.store = store_new(&loop, &server, NULL, NULL, 0);
    uv_timer_t start_timer;
    uv_timer_init(&loop, &start_timer);
    start_timer.data = &retrying;
    uv_timer_start(&start_timer, on_start_redis, 200, 0);
    auth_session_store_get(retrying.store, SESSION_ID, on_answer_retry, &retrying);
    if (!run_until(&loop, &retrying.found, 5000))
        fail_msg("not found after %d refusals", retrying.refusals);
    assert_true(retrying.refusals > 0);
    uv_close((uv_handle_t *)&start_timer, NULL);
    store_free_and_close_loop(&loop, retrying.store);
    redis_stop(&server);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* hiredis writes with write(2), as the daemon's main does */
    find_in_path("redis-server", redis_path, sizeof(redis_path));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_express_cookie_accepted),
        cmocka_unit_test(test_multiple_cookies),
        cmocka_unit_test(test_whitespace_and_quotes),
        cmocka_unit_test(test_undecodable_values_kept_raw),
        cmocka_unit_test(test_secret_rotation),
        cmocka_unit_test(test_tampered_cookies_refused),
        cmocka_unit_test(test_missing_and_unsigned),
        cmocka_unit_test(test_length_limits),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_store_lookups),
        cmocka_unit_test(test_store_reconnects_after_restart),
        cmocka_unit_test(test_store_starts_while_redis_is_down),
        cmocka_unit_test(test_store_request_timeout),
        cmocka_unit_test(test_store_password),
        cmocka_unit_test(test_store_free_calls_back_once),
        cmocka_unit_test(test_store_freed_from_its_callback),
        cmocka_unit_test(test_store_asked_again_while_freeing),
        cmocka_unit_test(test_store_caller_retrying_on_refusal),
    };
    return cmocka_run_group_tests(tests, NULL, kill_leftovers);
}
