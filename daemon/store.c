/* The store (store.h), independent of the database: store_driver.h is the line between them.
 *
 * Validation. store_request reads params on the loop thread into a typed request (ids, texts,
 * flags, the notification payload as JSON text): a bad request completes with
 * STORE_EINVALID without reaching the database, still in request order.
 *
 * Threading. One worker thread owns the driver's connection and every request, reads
 * included, goes through it: one thread and one queue keep completions in request order with
 * no bookkeeping, and a read sees every write queued before it. The loop thread only touches
 * the queues (mutex + condition variable); the worker wakes it through a uv_async_t and the
 * done callbacks run there, in order. With store.dispatch "loop" (PostgreSQL), the idle
 * worker lends the connection to the loop thread, which sends and reads the chat's
 * one-round-trip batches itself until anything else comes, then gives it back with nothing in
 * flight ("The loop's turn with the connection", below): still one thread at a time on the
 * connection, and one order.
 *
 * Batching. The worker takes everything queued (up to BATCH_MAX, which bounds how long the
 * first request of a batch waits for its COMMIT), runs it in one transaction with a SAVEPOINT
 * per request (a failing request rolls back its own changes only), COMMITs, and only then
 * posts the batch back. Under load many requests share one COMMIT (one fsync, one round trip
 * to PostgreSQL for it).
 *
 * A lost connection (PostgreSQL restarted). Every request of the batch not yet committed
 * fails with STORE_EUNAVAILABLE; none is retried, so none is applied twice (a COMMIT whose
 * answer was lost may have been applied: its requests still fail, as the daemon cannot know).
 * The driver reconnects, with a backoff, before a later batch; until then batches fail at
 * once rather than wait.
 *
 * The pool (store.poolSize > 1). What one worker cannot overlap is the COMMIT's wait for the
 * WAL flush: the next batch queues behind it. A pool is that many stores as above ("lanes"),
 * each with its own connection, worker and batches, behind a router: an operation goes to the
 * lane of its ordering key (store.h), so that one room's, one conversation's and one user's
 * operations keep their order while the lanes' COMMITs overlap (PostgreSQL's group commit
 * then shares the flushes). The one dependency between keys is a user's row, which messages,
 * DMs, members and owners name: such an operation waits in the router until the upserts of
 * those users made before it have completed (counted per slot of a hash of the user id; a
 * slot's upserts all go to one lane, so they complete in order). With poolSize 1 there is no
 * router: the store is its one lane.
 *
 * Ids. Generated ids are 20 characters of base64url over 15 random bytes (RAND_bytes, 120
 * bits), in every table. Callers choose user ids and may choose room ids ("12"): random ids
 * never collide with those and reveal no counts. Order comes from each table's sequence
 * (seq), never from ids or timestamps. */
#include "store.h"

#include <pthread.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "log.h"
#include "metrics.h"
#include "store_driver.h"
#include "loop_profile.h"
#include "store_profile.h"
#include "store_shape.h"
#include "store_sql.h"
#include "store_sqlite.h"

#define STRINGIFY(x) #x
#define TO_STRING(x) STRINGIFY(x)

#define ID_MAX_BYTES 256
#define TEXT_MAX_BYTES 65536
#define BATCH_MAX 1024
#define LIMIT_DEFAULT 50
#define LIMIT_MAX 100
#define MARK_READ_IDS_MAX 1000
#define GENERATED_ID_BYTES 15 /* 20 base64url characters */
#define GENERATED_ID_SIZE (GENERATED_ID_BYTES / 3 * 4 + 1)
#define TIME_SIZE SIOC__STORE_TIME_SIZE
#define DIGITS_SIZE 24
#define NUMERIC_IDS_MAX 8 /* per request: more id fields than any operation has */
#define PARAMS_MAX 16
#define PIPELINE_MAX 256 /* requests sent to the database in one pipeline */

/* ---- Requests ---------------------------------------------------------------------------- */

/* A string param: bytes is NULL when absent (or null); present says whether the key was
 * given at all (a null counts), for the fields an upsert may clear. bytes[length] is NUL. */
typedef struct text_s {
    const char *bytes;
    size_t length;
    int present;
} text_t;

/* A request's params, read on the loop thread. Texts point into params (held until done) or
 * into digits (the decimal text of numeric ids). */
typedef struct args_s {
    text_t id, user_id, room_id, sender_id, recipient_id, other_id, owner_id, before;
    text_t name, text, type;
    text_t profile[4]; /* firstName, lastName, role, avatar */
    const char *status;
    int flag; /* isPrivate, unreadOnly, or ids "all" */
    int limit;
    char *payload; /* owned: the notification payload as JSON text */
    text_t *ids;   /* owned: the ids to mark read */
    size_t id_count;
    char (*id_digits)[DIGITS_SIZE]; /* owned: the text of numeric ones */
    char digits[NUMERIC_IDS_MAX][DIGITS_SIZE];
    int digits_used;
} args_t;

typedef struct request_s request_t;

struct request_s {
    request_t *next;
    store_operation_t operation;
    json_t *params; /* released on the loop thread */
    store_done_cb done;
    void *data;
    int error;           /* set before queueing when refused (invalid, closing) */
    const char *message; /* static */
    json_t *result;      /* built by the worker; NULL on error */
    int refused;         /* failed before it was queued: never run */
    uint64_t started_ns; /* for the latency histogram of /metrics */
    uint64_t posted_ns;  /* when the worker handed it back (store_profile.h) */
    args_t args;
};

typedef struct request_queue_s {
    request_t *head;
    request_t *tail;
} request_queue_t;

/* Who has the connection (store.dispatch "loop"; with "threads" always the worker). */
typedef enum owner {
    OWNER_WORKER,
    OWNER_LOOP,      /* lent to the loop thread, which sends the chat's one-trip batches */
    OWNER_RETURNING, /* the loop gives it back once nothing it sent is in flight */
} owner_t;

/* A user of the application's table (user_get statement), cached by the worker. */
typedef struct cached_user_s {
    char *id;
    json_t *user;
    uint64_t expires_ms;
} cached_user_t;

/* An application's statement (store.statements), compiled for the driver. */
typedef struct custom_s {
    int active;
    size_t count;
    int params[SIOC__STORE_SQL_MAX_PARAMS]; /* param_t of each placeholder */
} custom_t;

struct store_s {
    uv_async_t completions_async; /* the worker wakes the loop: completed requests to run */
    const sioc__store_driver_t *driver;
    custom_t custom[STORE_OPERATION_COUNT];
    /* With a user_get statement: user_cache_size slots, direct-mapped (bounded memory), each
     * trusted for user_cache_ttl_ms; worker thread. */
    cached_user_t *users;
    uint32_t user_cache_size;
    uint32_t user_cache_ttl_ms;

    /* The worker thread's, once it runs. */
    void *connection;
    struct staged_s *staged;  /* PIPELINE_MAX, when the driver has pipelines */
    struct flight_s *flights; /* FLIGHTS_MAX, a ring, when it can send while reading */
    size_t first_flight;      /* the oldest */
    size_t flights_sent;      /* taken and not yet posted back */
    const char *operation_name;
    int lost;          /* the connection was lost during this batch */
    uint64_t begun_ns; /* when the open transaction's BEGIN was answered */

    pthread_t worker;
    int wake_fd; /* an eventfd (with flights): wakes the worker while it reads answers */
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    /* Under mutex. */
    request_queue_t pending;
    request_queue_t completed;
    int stopping;
    int held;
    int queue_closed;   /* the worker took its last batch: refused requests complete directly */
    int worker_exited;  /* ... and closed the database: the loop may join it */
    int worker_polling; /* waiting for answers and for wake_fd: a request must write to it */
    int worked;         /* a batch ran since the driver last released its memory */
    owner_t owner;      /* the worker changes it from OWNER_WORKER, the loop from the others */
    int dispatch_loop;  /* store.dispatch "loop" on a driver that can (set at open) */
    store_sqlite_stats_t stats;

    /* Written by both threads (store_profile.h); logged by the loop every profile_period_ns
     * (SIOC_STORE_PROFILE_MS, 0: once, at close). */
    store_profile_t profile;
    uint64_t profile_since_ns;
    uint64_t profile_period_ns;
    size_t lane_index;            /* which connection of the pool, for the profile's log */
    loop_profile_t *loop_profile; /* the store's interface only (lane or router), when profiling */
    size_t lane_count;

    /* Loop thread only. */
    request_queue_t loop_queue; /* lent the connection: requests waiting for a flight */
    uv_poll_t *poll;            /* on the connection's socket while the loop has flights */
    int poll_fd;
    request_queue_t running;     /* taken from completed, run in passes (completions_run) */
    uint64_t cpu_at_pass_end_ns; /* the loop thread's CPU time when the last pass ended */
    struct pool_s *pool; /* store.poolSize > 1: this store only routes to the pool's lanes */
    int closing;
    int async_closing;
    void (*closed_cb)(void *data);
    void *closed_data;
};

static const char MESSAGE_CLOSED[] = "store is closing";
static const char MESSAGE_NO_MEMORY[] = "out of memory";
static const char MESSAGE_NO_RESULT[] = "result not built: out of memory or unreadable data";
static const char MESSAGE_ROLLED_BACK[] = "the database rolled the transaction back";
static const char MESSAGE_UNAVAILABLE[] = "the database is unavailable";

/* ---- Small helpers --------------------------------------------------------------------- */

static void queue_push(request_queue_t *queue, request_t *request)
{
    request->next = NULL;
    if (queue->tail != NULL)
        queue->tail->next = request;
    else
        queue->head = request;
    queue->tail = request;
}

/* Detaches up to max requests from the front; NULL when empty. */
static request_t *queue_take(request_queue_t *queue, size_t max)
{
    request_t *head = queue->head;
    request_t *last = head;
    for (size_t count = 1; last != NULL && last->next != NULL && count < max; count++)
        last = last->next;
    if (last == NULL)
        return NULL;
    queue->head = last->next;
    if (queue->head == NULL)
        queue->tail = NULL;
    last->next = NULL;
    return head;
}

static void queue_append(request_queue_t *queue, request_t *list)
{
    while (list != NULL) {
        request_t *next = list->next;
        queue_push(queue, list);
        list = next;
    }
}

void sioc__store_time_now(char out[TIME_SIZE])
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm utc;
    gmtime_r(&now.tv_sec, &utc);
    size_t length = strftime(out, TIME_SIZE, "%Y-%m-%dT%H:%M:%S", &utc);
    snprintf(out + length, TIME_SIZE - length, ".%03dZ", (int)(now.tv_nsec / 1000000));
}

/* 20 characters of base64url (no padding) over 15 random bytes. 0, or -1. */
static int id_generate(char out[GENERATED_ID_SIZE])
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char bytes[GENERATED_ID_BYTES];
    if (RAND_bytes(bytes, sizeof(bytes)) != 1)
        return -1;
    char *cursor = out;
    for (size_t index = 0; index < sizeof(bytes); index += 3) {
        uint32_t group =
            (uint32_t)bytes[index] << 16 | (uint32_t)bytes[index + 1] << 8 | bytes[index + 2];
        for (int shift = 18; shift >= 0; shift -= 6)
            *cursor++ = alphabet[(group >> shift) & 63];
    }
    *cursor = '\0';
    return 0;
}

/* A JSON number holding a whole value a JavaScript client could have sent exactly: an
 * integer, or a real such as 12.0 within +-2^53. 1 with *out set, or 0. */
static int json_whole_number(const json_t *value, json_int_t *out)
{
    if (json_is_integer(value)) {
        *out = json_integer_value(value);
        return 1;
    }
    if (!json_is_real(value))
        return 0;
    double number = json_real_value(value);
    if (!(number >= -9007199254740992.0 && number <= 9007199254740992.0))
        return 0;
    *out = (json_int_t)number;
    return (double)*out == number;
}

/* ---- Reading params (loop thread) ------------------------------------------------------ */

/* A field's messages are literals built at compile time, so that done's message stays
 * static (store.h) and still names the field. */
typedef struct field_s {
    const char *key;
    size_t max_length;
    int allow_empty;
    const char *missing;
    const char *wrong_type;
    const char *empty;
    const char *too_long;
    const char *has_nul;
} field_t;

#define ID_FIELD(key)                                                                              \
    {                                                                                              \
        key, ID_MAX_BYTES, 0, key " is required", key " must be a string or an integer",           \
            key " must not be empty", key " is longer than " TO_STRING(ID_MAX_BYTES) " bytes",     \
            key " must not contain NUL characters"                                                 \
    }
#define TEXT_FIELD(key, allow_empty)                                                               \
    {                                                                                              \
        key, TEXT_MAX_BYTES, allow_empty, key " is required", key " must be a string",             \
            key " must not be empty", key " is longer than " TO_STRING(TEXT_MAX_BYTES) " bytes",   \
            key " must not contain NUL characters"                                                 \
    }

static const field_t FIELD_ID = ID_FIELD("id");
static const field_t FIELD_USER_ID = ID_FIELD("userId");
static const field_t FIELD_ROOM_ID = ID_FIELD("roomId");
static const field_t FIELD_SENDER_ID = ID_FIELD("senderId");
static const field_t FIELD_RECIPIENT_ID = ID_FIELD("recipientId");
static const field_t FIELD_OTHER_ID = ID_FIELD("otherId");
static const field_t FIELD_OWNER_ID = ID_FIELD("ownerId");
static const field_t FIELD_BEFORE = ID_FIELD("before");
static const field_t FIELD_EACH_ID = ID_FIELD("each of ids");
static const field_t FIELD_FIRST_NAME = TEXT_FIELD("firstName", 1);
static const field_t FIELD_LAST_NAME = TEXT_FIELD("lastName", 1);
static const field_t FIELD_ROLE = TEXT_FIELD("role", 1);
static const field_t FIELD_AVATAR = TEXT_FIELD("avatar", 1);
static const field_t FIELD_NAME = TEXT_FIELD("name", 0);
static const field_t FIELD_TEXT = TEXT_FIELD("text", 1);
static const field_t FIELD_TYPE = TEXT_FIELD("type", 0);

enum { OPTIONAL, REQUIRED };

/* Reads params without modifying them (the caller may share them). The first problem found
 * is kept; later reads still return values, and the operation checks once, at the end. */
typedef struct reader_s {
    const json_t *params;
    const char *message;
    args_t *args;
} reader_t;

static void reader_start(reader_t *reader, request_t *request)
{
    reader->params = request->params;
    reader->message = json_is_object(request->params) ? NULL : "params must be an object";
    reader->args = &request->args;
}

static void reader_reject(reader_t *reader, const char *message)
{
    if (reader->message == NULL)
        reader->message = message;
}

/* The value of an optional key, or NULL when absent or null. */
static const json_t *reader_optional(reader_t *reader, const char *key)
{
    const json_t *value = json_object_get(reader->params, key);
    return json_is_null(value) ? NULL : value;
}

/* The value of a key; NULL (and the missing message when required) when absent. An explicit
 * null is returned as is, to be refused as the wrong type when required. */
static const json_t *reader_value(reader_t *reader, const field_t *field, int required)
{
    const json_t *value = json_object_get(reader->params, field->key);
    if (value == NULL && required)
        reader_reject(reader, field->missing);
    if (json_is_null(value) && !required)
        return NULL;
    return value;
}

/* Checks a string against the field's limits: NULL, or the message. */
static const char *check_string(const json_t *value, const field_t *field, text_t *out)
{
    size_t length = json_string_length(value);
    const char *bytes = json_string_value(value);
    if (length == 0 && !field->allow_empty)
        return field->empty;
    if (length > field->max_length)
        return field->too_long;
    /* PostgreSQL refuses NUL in text: refusing it here keeps the drivers interchangeable. */
    if (memchr(bytes, '\0', length) != NULL)
        return field->has_nul;
    *out = (text_t){bytes, length, 1};
    return NULL;
}

/* An id: a string, or a whole number written as its decimal text ("12" and 12 are the same
 * room). digits holds the text of a number. NULL, or the message. */
static const char *id_from_json(const json_t *value, const field_t *field, char digits[DIGITS_SIZE],
                                text_t *out)
{
    if (json_is_string(value))
        return check_string(value, field, out);
    json_int_t number;
    if (!json_whole_number(value, &number))
        return field->wrong_type;
    int length = snprintf(digits, DIGITS_SIZE, "%" JSON_INTEGER_FORMAT, number);
    *out = (text_t){digits, (size_t)length, 1};
    return NULL;
}

static text_t read_id(reader_t *reader, const field_t *field, int required)
{
    text_t text = {NULL, 0, 0};
    const json_t *value = reader_value(reader, field, required);
    if (value == NULL)
        return text;
    args_t *args = reader->args;
    if (args->digits_used == NUMERIC_IDS_MAX) {
        reader_reject(reader, "too many id params"); /* no operation has that many */
        return text;
    }
    const char *problem = id_from_json(value, field, args->digits[args->digits_used], &text);
    if (problem != NULL)
        reader_reject(reader, problem);
    else if (text.bytes == args->digits[args->digits_used])
        args->digits_used++;
    return text;
}

static text_t read_text(reader_t *reader, const field_t *field, int required)
{
    text_t text = {NULL, 0, 0};
    const json_t *value = reader_value(reader, field, required);
    if (value == NULL)
        return text;
    const char *problem =
        json_is_string(value) ? check_string(value, field, &text) : field->wrong_type;
    if (problem != NULL)
        reader_reject(reader, problem);
    return text;
}

/* An optional string that null clears: present is set for null too. */
static text_t read_nullable_text(reader_t *reader, const field_t *field)
{
    const json_t *value = json_object_get(reader->params, field->key);
    if (json_is_null(value))
        return (text_t){NULL, 0, 1};
    return read_text(reader, field, OPTIONAL);
}

static int read_bool(reader_t *reader, const char *key, const char *wrong_type)
{
    const json_t *value = reader_optional(reader, key);
    if (value != NULL && !json_is_boolean(value))
        reader_reject(reader, wrong_type);
    return json_is_true(value);
}

static int read_limit(reader_t *reader)
{
    const json_t *value = reader_optional(reader, "limit");
    json_int_t limit = LIMIT_DEFAULT;
    if (value != NULL && (!json_whole_number(value, &limit) || limit < 1 || limit > LIMIT_MAX))
        reader_reject(reader, "limit must be an integer from 1 to " TO_STRING(LIMIT_MAX));
    return (int)limit;
}

/* One of a NULL-terminated list of words; NULL when absent or wrong (message kept). */
static const char *read_word(reader_t *reader, const char *key, const char *const *words,
                             const char *missing, const char *wrong)
{
    const json_t *value = json_object_get(reader->params, key);
    if (value == NULL) {
        reader_reject(reader, missing);
        return NULL;
    }
    for (const char *const *word = words; *word != NULL; word++) {
        if (json_is_string(value) && strcmp(json_string_value(value), *word) == 0 &&
            json_string_length(value) == strlen(*word))
            return *word;
    }
    reader_reject(reader, wrong);
    return NULL;
}

static const char *const presence_words[] = {"online", "offline", NULL};
static const char *const resolution_words[] = {"granted", "denied", NULL};

/* Each parse_ function reads one operation's params into request->args: NULL, or the
 * message of the first problem. */

static const char *parse_id(reader_t *r)
{
    r->args->id = read_id(r, &FIELD_ID, REQUIRED);
    return r->message;
}

static const char *parse_user_id(reader_t *r)
{
    r->args->user_id = read_id(r, &FIELD_USER_ID, REQUIRED);
    return r->message;
}

static const char *parse_room_id(reader_t *r)
{
    r->args->room_id = read_id(r, &FIELD_ROOM_ID, REQUIRED);
    return r->message;
}

static const char *parse_user_upsert(reader_t *r)
{
    args_t *a = r->args;
    a->id = read_id(r, &FIELD_ID, REQUIRED);
    a->profile[0] = read_nullable_text(r, &FIELD_FIRST_NAME);
    a->profile[1] = read_nullable_text(r, &FIELD_LAST_NAME);
    a->profile[2] = read_nullable_text(r, &FIELD_ROLE);
    a->profile[3] = read_nullable_text(r, &FIELD_AVATAR);
    return r->message;
}

static const char *parse_presence_set(reader_t *r)
{
    r->args->user_id = read_id(r, &FIELD_USER_ID, REQUIRED);
    r->args->status = read_word(r, "status", presence_words, "status is required",
                                "status must be \"online\" or \"offline\"");
    return r->message;
}

static const char *parse_room_create(reader_t *r)
{
    args_t *a = r->args;
    a->name = read_text(r, &FIELD_NAME, REQUIRED);
    a->flag = read_bool(r, "isPrivate", "isPrivate must be a boolean");
    a->owner_id = read_id(r, &FIELD_OWNER_ID, OPTIONAL);
    a->id = read_id(r, &FIELD_ID, OPTIONAL);
    return r->message;
}

static const char *parse_membership(reader_t *r)
{
    r->args->room_id = read_id(r, &FIELD_ROOM_ID, REQUIRED);
    r->args->user_id = read_id(r, &FIELD_USER_ID, REQUIRED);
    return r->message;
}

static const char *parse_message_add(reader_t *r)
{
    args_t *a = r->args;
    a->room_id = read_id(r, &FIELD_ROOM_ID, REQUIRED);
    a->sender_id = read_id(r, &FIELD_SENDER_ID, REQUIRED);
    a->text = read_text(r, &FIELD_TEXT, REQUIRED);
    return r->message;
}

static const char *parse_message_history(reader_t *r)
{
    args_t *a = r->args;
    a->room_id = read_id(r, &FIELD_ROOM_ID, REQUIRED);
    a->before = read_id(r, &FIELD_BEFORE, OPTIONAL);
    a->limit = read_limit(r);
    return r->message;
}

static const char *parse_dm_add(reader_t *r)
{
    args_t *a = r->args;
    a->sender_id = read_id(r, &FIELD_SENDER_ID, REQUIRED);
    a->recipient_id = read_id(r, &FIELD_RECIPIENT_ID, REQUIRED);
    a->text = read_text(r, &FIELD_TEXT, REQUIRED);
    return r->message;
}

static const char *parse_dm_history(reader_t *r)
{
    args_t *a = r->args;
    a->user_id = read_id(r, &FIELD_USER_ID, REQUIRED);
    a->other_id = read_id(r, &FIELD_OTHER_ID, REQUIRED);
    a->before = read_id(r, &FIELD_BEFORE, OPTIONAL);
    a->limit = read_limit(r);
    return r->message;
}

static const char *parse_notification_add(reader_t *r)
{
    args_t *a = r->args;
    a->user_id = read_id(r, &FIELD_USER_ID, REQUIRED);
    a->type = read_text(r, &FIELD_TYPE, REQUIRED);
    const json_t *payload = json_object_get(r->params, "payload");
    if (payload == NULL)
        reader_reject(r, "payload is required");
    else if (!json_is_object(payload))
        reader_reject(r, "payload must be an object");
    if (r->message != NULL)
        return r->message;
    a->payload = json_dumps(payload, JSON_COMPACT);
    if (a->payload == NULL)
        return MESSAGE_NO_MEMORY;
    if (strlen(a->payload) > TEXT_MAX_BYTES)
        return "payload is larger than " TO_STRING(TEXT_MAX_BYTES) " bytes";
    return NULL;
}

static const char *parse_notification_list(reader_t *r)
{
    args_t *a = r->args;
    a->user_id = read_id(r, &FIELD_USER_ID, REQUIRED);
    a->flag = read_bool(r, "unreadOnly", "unreadOnly must be a boolean");
    a->limit = read_limit(r);
    return r->message;
}

static const char *parse_listed_ids(args_t *a, const json_t *ids)
{
    if (json_array_size(ids) > MARK_READ_IDS_MAX)
        return "ids has more than " TO_STRING(MARK_READ_IDS_MAX) " entries";
    size_t count = json_array_size(ids);
    a->ids = calloc(count + 1, sizeof(*a->ids));
    a->id_digits = calloc(count + 1, sizeof(*a->id_digits));
    if (a->ids == NULL || a->id_digits == NULL)
        return MESSAGE_NO_MEMORY;
    for (size_t index = 0; index < count; index++) {
        const char *problem = id_from_json(json_array_get(ids, index), &FIELD_EACH_ID,
                                           a->id_digits[index], &a->ids[index]);
        if (problem != NULL)
            return problem;
    }
    a->id_count = count;
    return NULL;
}

static const char *parse_mark_read(reader_t *r)
{
    args_t *a = r->args;
    a->user_id = read_id(r, &FIELD_USER_ID, REQUIRED);
    const json_t *ids = json_object_get(r->params, "ids");
    a->flag = json_is_string(ids) && strcmp(json_string_value(ids), "all") == 0;
    if (ids == NULL)
        reader_reject(r, "ids is required");
    else if (!a->flag && !json_is_array(ids))
        reader_reject(r, "ids must be an array of ids or \"all\"");
    if (r->message != NULL || a->flag)
        return r->message;
    return parse_listed_ids(a, ids);
}

static const char *parse_access_resolve(reader_t *r)
{
    r->args->id = read_id(r, &FIELD_ID, REQUIRED);
    r->args->status = read_word(r, "status", resolution_words, "status is required",
                                "status must be \"granted\" or \"denied\"");
    return r->message;
}

/* ---- Results (the shapes of sioc's rows; store_shape.c applies them) ------------------- */

static const sioc__store_column_t user_columns[] = {{"id", SIOC__STORE_COLUMN_ID0},
                                                    {"firstName", SIOC__STORE_COLUMN_TEXT},
                                                    {"lastName", SIOC__STORE_COLUMN_TEXT},
                                                    {"role", SIOC__STORE_COLUMN_TEXT},
                                                    {"avatar", SIOC__STORE_COLUMN_TEXT}};
static const sioc__store_column_t presence_columns[] = {{"userId", SIOC__STORE_COLUMN_TEXT},
                                                        {"status", SIOC__STORE_COLUMN_TEXT},
                                                        {"lastActivity", SIOC__STORE_COLUMN_TEXT}};
static const sioc__store_column_t room_columns[] = {{"id", SIOC__STORE_COLUMN_ID0},
                                                    {"name", SIOC__STORE_COLUMN_TEXT},
                                                    {"isPrivate", SIOC__STORE_COLUMN_BOOL},
                                                    {"ownerId", SIOC__STORE_COLUMN_ID1},
                                                    {"createdAt", SIOC__STORE_COLUMN_TEXT}};
static const sioc__store_column_t member_columns[] = {{"roomId", SIOC__STORE_COLUMN_ID0},
                                                      {"userId", SIOC__STORE_COLUMN_ID1},
                                                      {"joinedAt", SIOC__STORE_COLUMN_TEXT}};
static const sioc__store_column_t user_id_column[] = {{NULL, SIOC__STORE_COLUMN_TEXT}};
static const sioc__store_column_t member_id_column[] = {
    {NULL, SIOC__STORE_COLUMN_ID1}}; /* a member's user_id */
static const sioc__store_column_t message_columns[] = {{"id", SIOC__STORE_COLUMN_TEXT},
                                                       {"roomId", SIOC__STORE_COLUMN_ID0},
                                                       {"senderId", SIOC__STORE_COLUMN_ID1},
                                                       {"text", SIOC__STORE_COLUMN_TEXT},
                                                       {"createdAt", SIOC__STORE_COLUMN_TEXT}};
static const sioc__store_column_t dm_columns[] = {{"id", SIOC__STORE_COLUMN_TEXT},
                                                  {"senderId", SIOC__STORE_COLUMN_ID0},
                                                  {"recipientId", SIOC__STORE_COLUMN_ID1},
                                                  {"text", SIOC__STORE_COLUMN_TEXT},
                                                  {"createdAt", SIOC__STORE_COLUMN_TEXT}};
static const sioc__store_column_t notification_columns[] = {
    {"id", SIOC__STORE_COLUMN_TEXT},   {"userId", SIOC__STORE_COLUMN_ID0},
    {"type", SIOC__STORE_COLUMN_TEXT}, {"payload", SIOC__STORE_COLUMN_JSON},
    {"read", SIOC__STORE_COLUMN_BOOL}, {"createdAt", SIOC__STORE_COLUMN_TEXT}};
static const sioc__store_column_t access_columns[] = {{"id", SIOC__STORE_COLUMN_TEXT},
                                                      {"roomId", SIOC__STORE_COLUMN_ID0},
                                                      {"userId", SIOC__STORE_COLUMN_ID1},
                                                      {"status", SIOC__STORE_COLUMN_TEXT},
                                                      {"createdAt", SIOC__STORE_COLUMN_TEXT}};

static const sioc__store_shape_t USER_SHAPE = SIOC__STORE_SHAPE(user_columns);
static const sioc__store_shape_t PRESENCE_SHAPE = SIOC__STORE_SHAPE(presence_columns);
static const sioc__store_shape_t ROOM_SHAPE = SIOC__STORE_SHAPE(room_columns);
static const sioc__store_shape_t MEMBER_SHAPE = SIOC__STORE_SHAPE(member_columns);
static const sioc__store_shape_t USER_ID_SHAPE = SIOC__STORE_SHAPE(user_id_column);
static const sioc__store_shape_t MEMBER_ID_SHAPE = SIOC__STORE_SHAPE(member_id_column);
static const sioc__store_shape_t MESSAGE_SHAPE = SIOC__STORE_SHAPE(message_columns);
static const sioc__store_shape_t DM_SHAPE = SIOC__STORE_SHAPE(dm_columns);
static const sioc__store_shape_t NOTIFICATION_SHAPE = SIOC__STORE_SHAPE(notification_columns);
static const sioc__store_shape_t ACCESS_SHAPE = SIOC__STORE_SHAPE(access_columns);

/* ---- Request outcomes -------------------------------------------------------------------- */

static int request_fail(request_t *request, int error, const char *message)
{
    json_decref(request->result);
    request->result = NULL;
    request->error = error;
    request->message = message;
    return error;
}

/* Takes result (NULL: out of memory, or text in the database that is not UTF-8 or JSON). */
static int request_succeed(request_t *request, json_t *result)
{
    if (result == NULL)
        return request_fail(request, STORE_EIO, MESSAGE_NO_RESULT);
    request->result = result;
    return 0;
}

/* ---- Statements on the worker thread ----------------------------------------------------- */

typedef struct call_s {
    sioc__store_param_t params[PARAMS_MAX];
    size_t count;
} call_t;

static void call_text(call_t *call, text_t text)
{
    call->params[call->count++] = (sioc__store_param_t){text.bytes, text.length, 0, 0};
}

static void call_string(call_t *call, const char *string)
{
    call->params[call->count++] = (sioc__store_param_t){string, strlen(string), 0, 0};
}

static void call_int(call_t *call, int64_t value)
{
    call->params[call->count++] = (sioc__store_param_t){NULL, 0, 1, value};
}

static text_t text_of(const char *string)
{
    return (text_t){string, strlen(string), 1};
}

/* Runs a statement. 0, SIOC__STORE_DB_CONFLICT (the caller decides), or a negative error
 * with the request failed: STORE_EIO or STORE_EUNAVAILABLE (and the batch notes the loss). */
static int execute(store_t *store, request_t *request, sioc__store_statement_t statement,
                   const call_t *call, sioc__store_rows_t *rows, int64_t *changes)
{
    const char *message = NULL;
    int rc = store->driver->execute(store->connection, statement, call ? call->params : NULL,
                                    call ? call->count : 0, rows ? sioc__store_on_row : NULL, rows,
                                    changes, &message);
    if (rc == 0 || rc == SIOC__STORE_DB_CONFLICT)
        return rc;
    if (rc == SIOC__STORE_ROWS_UNREADABLE)
        return request_fail(request, STORE_EIO, MESSAGE_NO_RESULT);
    if (rc == STORE_EUNAVAILABLE) {
        store->lost = 1;
        return request_fail(request, STORE_EUNAVAILABLE, MESSAGE_UNAVAILABLE);
    }
    return request_fail(request, STORE_EIO, message != NULL ? message : "the database failed");
}

/* Runs a statement expected to give one row, and makes it the result. A unique violation
 * gives STORE_ECONFLICT with conflict (when not NULL; else STORE_EIO); no row gives
 * STORE_ENOTFOUND with not_found. */
static int result_row(store_t *store, request_t *request, sioc__store_statement_t statement,
                      const call_t *call, const sioc__store_shape_t *shape, const char *not_found,
                      const char *conflict)
{
    sioc__store_rows_t rows = {shape, NULL, NULL, 0, 0};
    int rc = execute(store, request, statement, call, &rows, NULL);
    if (rc == SIOC__STORE_DB_CONFLICT)
        return request_fail(request, conflict ? STORE_ECONFLICT : STORE_EIO,
                            conflict ? conflict : "constraint failed");
    if (rc != 0) {
        json_decref(rows.one);
        return rc;
    }
    if (rows.count == 0)
        return request_fail(request, STORE_ENOTFOUND, not_found);
    return request_succeed(request, rows.one);
}

/* Every row, as an array. */
static int result_rows(store_t *store, request_t *request, sioc__store_statement_t statement,
                       const call_t *call, const sioc__store_shape_t *shape)
{
    sioc__store_rows_t rows = {shape, NULL, json_array(), 0, 0};
    if (rows.array == NULL)
        return request_fail(request, STORE_EIO, MESSAGE_NO_MEMORY);
    int rc = execute(store, request, statement, call, &rows, NULL);
    if (rc == SIOC__STORE_DB_CONFLICT)
        rc = request_fail(request, STORE_EIO, "constraint failed");
    if (rc != 0) {
        json_decref(rows.array);
        return rc;
    }
    return request_succeed(request, rows.array);
}

/* A statement whose rows are not needed (rows and changes may be NULL). 0, or an error. */
static int execute_plain(store_t *store, request_t *request, sioc__store_statement_t statement,
                         const call_t *call, sioc__store_rows_t *rows, int64_t *changes)
{
    int rc = execute(store, request, statement, call, rows, changes);
    if (rc == SIOC__STORE_DB_CONFLICT)
        return request_fail(request, STORE_EIO, "constraint failed");
    return rc;
}

/* 1 when the statement gives a row, 0 when not, or a negative store error. */
static int row_exists(store_t *store, request_t *request, sioc__store_statement_t statement,
                      const call_t *call)
{
    sioc__store_rows_t rows = {NULL, NULL, NULL, 0, 0};
    int rc = execute_plain(store, request, statement, call, &rows, NULL);
    return rc != 0 ? rc : rows.count > 0;
}

/* 0 when the row keyed by key exists; STORE_ENOTFOUND with not_found, or another error. */
static int require_row(store_t *store, request_t *request, sioc__store_statement_t statement,
                       text_t key, const char *not_found)
{
    call_t call = {.count = 0};
    call_text(&call, key);
    int found = row_exists(store, request, statement, &call);
    if (found < 0)
        return found;
    return found ? 0 : request_fail(request, STORE_ENOTFOUND, not_found);
}

static int generate_id(request_t *request, char out[GENERATED_ID_SIZE])
{
    if (id_generate(out) != 0)
        return request_fail(request, STORE_EIO, "random generator failed");
    return 0;
}

/* The seq of message `before` in a conversation (call has the statement's params): in *seq,
 * or an error. Without an id, INT64_MAX: every message is before it. */
static int before_seq(store_t *store, request_t *request, sioc__store_statement_t statement,
                      const call_t *call, text_t before, int64_t *seq)
{
    *seq = INT64_MAX;
    if (before.bytes == NULL)
        return 0;
    sioc__store_rows_t rows = {NULL, NULL, NULL, 0, 0};
    int rc = execute_plain(store, request, statement, call, &rows, NULL);
    if (rc != 0)
        return rc;
    if (rows.count == 0)
        return request_fail(request, STORE_ENOTFOUND, "before: message not found");
    *seq = rows.number;
    return 0;
}

/* ---- Operations (worker thread) ---------------------------------------------------------- */

/* 1 when the id param was a JSON number (its text is in the request's digits). */
static int id_was_number(const args_t *a, text_t id)
{
    const char *first = a->digits[0];
    return id.bytes >= first && id.bytes < first + sizeof(a->digits);
}

/* The id_numeric bits of a row naming first and second (schema 2). */
static int64_t id_numeric(const args_t *a, text_t first, text_t second)
{
    return id_was_number(a, first) | (id_was_number(a, second) << 1);
}

static int run_user_upsert(store_t *store, request_t *request)
{
    const args_t *a = &request->args;
    char now[TIME_SIZE];
    sioc__store_time_now(now);
    call_t call = {.count = 0};
    call_text(&call, a->id);
    for (int index = 0; index < 4; index++) {
        call_text(&call, a->profile[index]);
        call_int(&call, a->profile[index].present);
    }
    call_string(&call, now);
    call_int(&call, id_numeric(a, a->id, (text_t){NULL, 0, 0}));
    return result_row(store, request, SIOC__SQL_USER_UPSERT, &call, &USER_SHAPE, "user not found",
                      NULL);
}

/* A lookup by one key that gives one row of shape. */
static int lookup(store_t *store, request_t *request, sioc__store_statement_t statement, text_t key,
                  const sioc__store_shape_t *shape, const char *not_found)
{
    call_t call = {.count = 0};
    call_text(&call, key);
    return result_row(store, request, statement, &call, shape, not_found, NULL);
}

static int run_user_get(store_t *store, request_t *request)
{
    return lookup(store, request, SIOC__SQL_USER_GET, request->args.id, &USER_SHAPE,
                  "user not found");
}

static int run_presence_set(store_t *store, request_t *request)
{
    const args_t *a = &request->args;
    int error = require_row(store, request, SIOC__SQL_USER_EXISTS, a->user_id, "user not found");
    if (error != 0)
        return error;
    char now[TIME_SIZE];
    sioc__store_time_now(now);
    call_t call = {.count = 0};
    call_text(&call, a->user_id);
    call_string(&call, a->status);
    call_string(&call, now);
    return result_row(store, request, SIOC__SQL_PRESENCE_SET, &call, &PRESENCE_SHAPE,
                      "user not found", NULL);
}

static int run_presence_get(store_t *store, request_t *request)
{
    return lookup(store, request, SIOC__SQL_PRESENCE_GET, request->args.user_id, &PRESENCE_SHAPE,
                  "presence not found");
}

/* An id param as JSON: a number when it was one. A new reference. */
static json_t *id_json(const args_t *a, text_t id)
{
    if (id_was_number(a, id))
        return json_integer((json_int_t)strtoll(id.bytes, NULL, 10));
    return json_stringn(id.bytes, id.length);
}

/* Adds a member (nothing when already one); the caller has checked room and user. numeric is
 * the row's id_numeric bits (room_id, user_id). */
static int member_insert(store_t *store, request_t *request, text_t room_id, text_t user_id,
                         int64_t numeric)
{
    char now[TIME_SIZE];
    sioc__store_time_now(now);
    call_t call = {.count = 0};
    call_text(&call, room_id);
    call_text(&call, user_id);
    call_string(&call, now);
    call_int(&call, numeric);
    return execute_plain(store, request, SIOC__SQL_MEMBER_INSERT, &call, NULL, NULL);
}

static int run_room_create(store_t *store, request_t *request)
{
    const args_t *a = &request->args;
    text_t id = a->id;
    int error = 0;
    if (a->owner_id.bytes != NULL)
        error = require_row(store, request, SIOC__SQL_USER_EXISTS, a->owner_id, "owner not found");
    char generated[GENERATED_ID_SIZE];
    if (error == 0 && id.bytes == NULL && (error = generate_id(request, generated)) == 0)
        id = text_of(generated);
    if (error != 0)
        return error;
    char now[TIME_SIZE];
    sioc__store_time_now(now);
    call_t call = {.count = 0};
    call_text(&call, id);
    call_text(&call, a->name);
    call_int(&call, a->flag);
    call_text(&call, a->owner_id);
    call_string(&call, now);
    int64_t numeric = id_numeric(a, id, a->owner_id); /* the owner's member row: the same bits */
    call_int(&call, numeric);
    error = result_row(store, request, SIOC__SQL_ROOM_INSERT, &call, &ROOM_SHAPE, "room not found",
                       "room already exists");
    if (error == 0 && a->owner_id.bytes != NULL)
        error = member_insert(store, request, id, a->owner_id, numeric);
    return error;
}

static int run_room_get(store_t *store, request_t *request)
{
    return lookup(store, request, SIOC__SQL_ROOM_GET, request->args.id, &ROOM_SHAPE,
                  "room not found");
}

/* Checks that the room of {roomId, userId} exists (and the user, when asked). */
static int check_membership(store_t *store, request_t *request, int user_must_exist)
{
    const args_t *a = &request->args;
    int error = require_row(store, request, SIOC__SQL_ROOM_EXISTS, a->room_id, "room not found");
    if (error == 0 && user_must_exist)
        error = require_row(store, request, SIOC__SQL_USER_EXISTS, a->user_id, "user not found");
    return error;
}

static void call_membership(call_t *call, const args_t *a)
{
    call->count = 0;
    call_text(call, a->room_id);
    call_text(call, a->user_id);
}

static int run_room_add_member(store_t *store, request_t *request)
{
    const args_t *a = &request->args;
    int error = check_membership(store, request, 1);
    if (error == 0)
        error = member_insert(store, request, a->room_id, a->user_id,
                              id_numeric(a, a->room_id, a->user_id));
    if (error != 0)
        return error;
    call_t call;
    call_membership(&call, a);
    return result_row(store, request, SIOC__SQL_MEMBER_GET, &call, &MEMBER_SHAPE,
                      "member not found", NULL);
}

static int run_room_remove_member(store_t *store, request_t *request)
{
    const args_t *a = &request->args;
    int error = check_membership(store, request, 0);
    if (error != 0)
        return error;
    call_t call;
    call_membership(&call, a);
    /* The member's row says which ids were numbers: the path of DELETE /rooms/{id}/members/{userId}
     * cannot. */
    sioc__store_rows_t member = {&MEMBER_SHAPE, NULL, NULL, 0, 0};
    error = execute_plain(store, request, SIOC__SQL_MEMBER_GET, &call, &member, NULL);
    if (error != 0) {
        json_decref(member.one);
        return error;
    }
    int64_t changes = 0;
    error = execute_plain(store, request, SIOC__SQL_MEMBER_DELETE, &call, NULL, &changes);
    if (error != 0) {
        json_decref(member.one);
        return error;
    }
    json_t *room_id = json_object_get(member.one, "roomId");
    json_t *user_id = json_object_get(member.one, "userId");
    json_t *result = json_pack(
        "{s:o, s:o, s:b}", "roomId",
        room_id != NULL ? json_incref(room_id) : id_json(a, a->room_id), "userId",
        user_id != NULL ? json_incref(user_id) : id_json(a, a->user_id), "removed", changes > 0);
    json_decref(member.one);
    return request_succeed(request, result);
}

static int run_room_members(store_t *store, request_t *request)
{
    text_t room_id = request->args.room_id;
    int error = require_row(store, request, SIOC__SQL_ROOM_EXISTS, room_id, "room not found");
    if (error != 0)
        return error;
    call_t call = {.count = 0};
    call_text(&call, room_id);
    return result_rows(store, request, SIOC__SQL_MEMBER_LIST, &call, &MEMBER_ID_SHAPE);
}

/* 1 when the user of args is a member of its room, 0 when not, or a negative store error. */
static int member_exists(store_t *store, request_t *request)
{
    call_t call;
    call_membership(&call, &request->args);
    return row_exists(store, request, SIOC__SQL_MEMBER_GET, &call);
}

static int run_room_is_member(store_t *store, request_t *request)
{
    int error = check_membership(store, request, 0);
    int member = error == 0 ? member_exists(store, request) : error;
    if (member < 0)
        return member;
    return request_succeed(request, json_boolean(member));
}

/* A message's or DM's insert: id, two ids, the text, the time. */
static void message_call(call_t *call, const args_t *a, text_t first, text_t second, const char *id,
                         const char *now)
{
    call->count = 0;
    call_string(call, id);
    call_text(call, first);
    call_text(call, second);
    call_text(call, a->text);
    call_string(call, now);
    call_int(call, id_numeric(a, first, second));
}

/* Inserts a message or DM. */
static int insert_message(store_t *store, request_t *request, sioc__store_statement_t statement,
                          text_t first, text_t second, const sioc__store_shape_t *shape)
{
    char id[GENERATED_ID_SIZE];
    int error = generate_id(request, id);
    if (error != 0)
        return error;
    char now[TIME_SIZE];
    sioc__store_time_now(now);
    call_t call;
    message_call(&call, &request->args, first, second, id, now);
    return result_row(store, request, statement, &call, shape, "message not found", NULL);
}

/* The request as if it had not run yet (after an attempt that may fail for a known reason). */
static void request_clear(request_t *request)
{
    json_decref(request->result);
    request->result = NULL;
    request->error = 0;
    request->message = NULL;
}

/* One round trip when the room (or recipient) and the sender exist; else the checks one by
 * one, to name what is missing. */
static int run_message_add(store_t *store, request_t *request)
{
    const args_t *a = &request->args;
    int error = insert_message(store, request, SIOC__SQL_MESSAGE_INSERT_CHECKED, a->room_id,
                               a->sender_id, &MESSAGE_SHAPE);
    if (error != STORE_ENOTFOUND)
        return error;
    request_clear(request);
    error = require_row(store, request, SIOC__SQL_ROOM_EXISTS, a->room_id, "room not found");
    if (error == 0)
        error =
            require_row(store, request, SIOC__SQL_USER_EXISTS, a->sender_id, "sender not found");
    if (error != 0)
        return error;
    return insert_message(store, request, SIOC__SQL_MESSAGE_INSERT, a->room_id, a->sender_id,
                          &MESSAGE_SHAPE);
}

static int run_message_history(store_t *store, request_t *request)
{
    const args_t *a = &request->args;
    int error = require_row(store, request, SIOC__SQL_ROOM_EXISTS, a->room_id, "room not found");
    int64_t seq = INT64_MAX;
    call_t call = {.count = 0};
    call_text(&call, a->before);
    call_text(&call, a->room_id);
    if (error == 0)
        error = before_seq(store, request, SIOC__SQL_MESSAGE_SEQ, &call, a->before, &seq);
    if (error != 0)
        return error;
    call.count = 0;
    call_text(&call, a->room_id);
    call_int(&call, seq);
    call_int(&call, a->limit);
    return result_rows(store, request, SIOC__SQL_MESSAGE_HISTORY, &call, &MESSAGE_SHAPE);
}

static int run_dm_add(store_t *store, request_t *request)
{
    const args_t *a = &request->args;
    int error = insert_message(store, request, SIOC__SQL_DM_INSERT_CHECKED, a->sender_id,
                               a->recipient_id, &DM_SHAPE);
    if (error != STORE_ENOTFOUND)
        return error;
    request_clear(request);
    error = require_row(store, request, SIOC__SQL_USER_EXISTS, a->sender_id, "sender not found");
    if (error == 0)
        error = require_row(store, request, SIOC__SQL_USER_EXISTS, a->recipient_id,
                            "recipient not found");
    if (error != 0)
        return error;
    return insert_message(store, request, SIOC__SQL_DM_INSERT, a->sender_id, a->recipient_id,
                          &DM_SHAPE);
}

static int run_dm_history(store_t *store, request_t *request)
{
    const args_t *a = &request->args;
    int64_t seq;
    call_t call = {.count = 0};
    call_text(&call, a->user_id);
    call_text(&call, a->other_id);
    call_text(&call, a->before);
    int error = before_seq(store, request, SIOC__SQL_DM_SEQ, &call, a->before, &seq);
    if (error != 0)
        return error;
    call.count = 2;
    call_int(&call, seq);
    call_int(&call, a->limit);
    return result_rows(store, request, SIOC__SQL_DM_HISTORY, &call, &DM_SHAPE);
}

static int run_notification_add(store_t *store, request_t *request)
{
    const args_t *a = &request->args;
    char id[GENERATED_ID_SIZE];
    int error = generate_id(request, id);
    if (error != 0)
        return error;
    char now[TIME_SIZE];
    sioc__store_time_now(now);
    call_t call = {.count = 0};
    call_string(&call, id);
    call_text(&call, a->user_id);
    call_text(&call, a->type);
    call_string(&call, a->payload);
    call_string(&call, now);
    call_int(&call, id_numeric(a, a->user_id, (text_t){NULL, 0, 0}));
    return result_row(store, request, SIOC__SQL_NOTIFICATION_INSERT, &call, &NOTIFICATION_SHAPE,
                      "notification not found", NULL);
}

static int run_notification_list(store_t *store, request_t *request)
{
    const args_t *a = &request->args;
    call_t call = {.count = 0};
    call_text(&call, a->user_id);
    call_int(&call, a->limit);
    return result_rows(store, request,
                       a->flag ? SIOC__SQL_NOTIFICATION_LIST_UNREAD : SIOC__SQL_NOTIFICATION_LIST,
                       &call, &NOTIFICATION_SHAPE);
}

static int run_notification_mark_read(store_t *store, request_t *request)
{
    const args_t *a = &request->args;
    int64_t updated = 0, changes = 0;
    call_t call = {.count = 0};
    if (a->flag) {
        call_text(&call, a->user_id);
        int error =
            execute_plain(store, request, SIOC__SQL_NOTIFICATION_MARK_ALL, &call, NULL, &updated);
        if (error != 0)
            return error;
    }
    for (size_t index = 0; !a->flag && index < a->id_count; index++) {
        call.count = 0;
        call_text(&call, a->ids[index]);
        call_text(&call, a->user_id);
        int error =
            execute_plain(store, request, SIOC__SQL_NOTIFICATION_MARK_ONE, &call, NULL, &changes);
        if (error != 0)
            return error;
        updated += changes;
    }
    return request_succeed(request, json_pack("{s:I}", "updated", (json_int_t)updated));
}

static int run_access_request_add(store_t *store, request_t *request)
{
    const args_t *a = &request->args;
    int error = check_membership(store, request, 1);
    int member = error == 0 ? member_exists(store, request) : error;
    if (member < 0)
        return member;
    if (member)
        return request_fail(request, STORE_ECONFLICT, "user is already a member");
    char id[GENERATED_ID_SIZE];
    if ((error = generate_id(request, id)) != 0)
        return error;
    char now[TIME_SIZE];
    sioc__store_time_now(now);
    call_t call = {.count = 0};
    call_string(&call, id);
    call_text(&call, a->room_id);
    call_text(&call, a->user_id);
    call_string(&call, now);
    call_int(&call, id_numeric(a, a->room_id, a->user_id));
    return result_row(store, request, SIOC__SQL_ACCESS_INSERT, &call, &ACCESS_SHAPE,
                      "access request not found", "access request already pending");
}

/* No pending request had the id: tell a resolved one from a missing one. */
static int access_request_not_pending(store_t *store, request_t *request, text_t id)
{
    call_t call = {.count = 0};
    call_text(&call, id);
    int found = row_exists(store, request, SIOC__SQL_ACCESS_GET, &call);
    if (found < 0)
        return found;
    return found ? request_fail(request, STORE_ECONFLICT, "access request already resolved")
                 : request_fail(request, STORE_ENOTFOUND, "access request not found");
}

/* The text of an id read back from a row (a number's decimal text goes into digits). */
static text_t result_id(const json_t *value, char digits[DIGITS_SIZE])
{
    if (!json_is_integer(value))
        return (text_t){json_string_value(value), json_string_length(value), 1};
    int length = snprintf(digits, DIGITS_SIZE, "%" JSON_INTEGER_FORMAT, json_integer_value(value));
    return (text_t){digits, (size_t)length, 1};
}

static int run_access_request_resolve(store_t *store, request_t *request)
{
    const args_t *a = &request->args;
    char now[TIME_SIZE];
    sioc__store_time_now(now);
    call_t call = {.count = 0};
    call_text(&call, a->id);
    call_string(&call, a->status);
    call_string(&call, now);
    int error =
        result_row(store, request, SIOC__SQL_ACCESS_RESOLVE, &call, &ACCESS_SHAPE, NULL, NULL);
    if (error == STORE_ENOTFOUND)
        return access_request_not_pending(store, request, a->id);
    if (error != 0 || strcmp(a->status, "granted") != 0)
        return error;
    json_t *room_id = json_object_get(request->result, "roomId");
    json_t *user_id = json_object_get(request->result, "userId");
    char room_digits[DIGITS_SIZE], user_digits[DIGITS_SIZE];
    return member_insert(store, request, result_id(room_id, room_digits),
                         result_id(user_id, user_digits),
                         json_is_integer(room_id) | json_is_integer(user_id) << 1);
}

static int run_access_request_get(store_t *store, request_t *request)
{
    return lookup(store, request, SIOC__SQL_ACCESS_GET, request->args.id, &ACCESS_SHAPE,
                  "access request not found");
}

/* ---- The application's statements (worker thread) ---------------------------------------- */

/* The named parameters an application's statement can use; each operation takes some. */
typedef enum param {
    P_ID,
    P_USER_ID,
    P_ROOM_ID,
    P_SENDER_ID,
    P_RECIPIENT_ID,
    P_OTHER_ID,
    P_OWNER_ID,
    P_BEFORE,
    P_NAME,
    P_TEXT,
    P_TYPE,
    P_FIRST_NAME,
    P_LAST_NAME,
    P_ROLE,
    P_AVATAR,
    P_STATUS,
    P_IS_PRIVATE,
    P_UNREAD_ONLY,
    P_LIMIT,
    P_PAYLOAD,
    P_NOW,
    P_NEW_ID,
    P_COUNT,
} param_t;

static const char *const param_names[P_COUNT] = {
    "id",        "userId",     "roomId", "senderId",  "recipientId", "otherId", "ownerId", "before",
    "name",      "text",       "type",   "firstName", "lastName",    "role",    "avatar",  "status",
    "isPrivate", "unreadOnly", "limit",  "payload",   "now",         "newId",
};

#define BIT(p) (1u << (p))
#define MEMBERSHIP (BIT(P_ROOM_ID) | BIT(P_USER_ID) | BIT(P_NOW))

/* How an operation's result is built from the statement's rows. */
typedef enum custom_result {
    CUSTOM_ROW,     /* the first row, as an object by column name; none: not_found */
    CUSTOM_ROWS,    /* every row, as objects */
    CUSTOM_VALUES,  /* every row's first column (room members: user ids) */
    CUSTOM_EXISTS,  /* true when there is a row */
    CUSTOM_REMOVED, /* {roomId, userId, removed: rows changed > 0} */
    CUSTOM_UPDATED, /* {updated: rows changed}, run once per listed id (:id), or once for all */
} custom_result_t;

typedef struct custom_spec_s {
    unsigned params; /* BIT(param) of those the statement may use */
    custom_result_t result;
    const char *columns; /* the result columns it must return, comma-separated */
    const char *not_found;
} custom_spec_t;

#define PROFILE (BIT(P_FIRST_NAME) | BIT(P_LAST_NAME) | BIT(P_ROLE) | BIT(P_AVATAR))
#define MESSAGE_KEYS "id,roomId,senderId,text,createdAt"
#define DM_KEYS "id,senderId,recipientId,text,createdAt"
#define NOTIFICATION_KEYS "id,userId,type,payload,read,createdAt"
#define ACCESS_KEYS "id,roomId,userId,status,createdAt"

static const custom_spec_t custom_specs[STORE_OPERATION_COUNT] = {
    [STORE_USER_UPSERT] = {BIT(P_ID) | PROFILE | BIT(P_NOW), CUSTOM_ROW, "id", "user not found"},
    [STORE_USER_GET] = {BIT(P_ID), CUSTOM_ROW, "id", "user not found"},
    [STORE_PRESENCE_SET] = {BIT(P_USER_ID) | BIT(P_STATUS) | BIT(P_NOW), CUSTOM_ROW,
                            "userId,status", "user not found"},
    [STORE_PRESENCE_GET] = {BIT(P_USER_ID), CUSTOM_ROW, "userId,status", "presence not found"},
    [STORE_ROOM_CREATE] = {BIT(P_ID) | BIT(P_NAME) | BIT(P_IS_PRIVATE) | BIT(P_OWNER_ID) |
                               BIT(P_NOW) | BIT(P_NEW_ID),
                           CUSTOM_ROW, "id,name", "owner not found"},
    [STORE_ROOM_GET] = {BIT(P_ID), CUSTOM_ROW, "id,name", "room not found"},
    [STORE_ROOM_ADD_MEMBER] = {MEMBERSHIP, CUSTOM_ROW, "roomId,userId", "room not found"},
    [STORE_ROOM_REMOVE_MEMBER] = {MEMBERSHIP, CUSTOM_REMOVED, "", NULL},
    [STORE_ROOM_MEMBERS] = {BIT(P_ROOM_ID), CUSTOM_VALUES, "", NULL},
    [STORE_ROOM_IS_MEMBER] = {MEMBERSHIP, CUSTOM_EXISTS, "", NULL},
    [STORE_MESSAGE_ADD] = {BIT(P_ROOM_ID) | BIT(P_SENDER_ID) | BIT(P_TEXT) | BIT(P_NOW) |
                               BIT(P_NEW_ID),
                           CUSTOM_ROW, MESSAGE_KEYS, "room not found"},
    [STORE_MESSAGE_HISTORY] = {BIT(P_ROOM_ID) | BIT(P_BEFORE) | BIT(P_LIMIT), CUSTOM_ROWS,
                               MESSAGE_KEYS, NULL},
    [STORE_DM_ADD] = {BIT(P_SENDER_ID) | BIT(P_RECIPIENT_ID) | BIT(P_TEXT) | BIT(P_NOW) |
                          BIT(P_NEW_ID),
                      CUSTOM_ROW, DM_KEYS, "recipient not found"},
    [STORE_DM_HISTORY] = {BIT(P_USER_ID) | BIT(P_OTHER_ID) | BIT(P_BEFORE) | BIT(P_LIMIT),
                          CUSTOM_ROWS, DM_KEYS, NULL},
    [STORE_NOTIFICATION_ADD] = {BIT(P_USER_ID) | BIT(P_TYPE) | BIT(P_PAYLOAD) | BIT(P_NOW) |
                                    BIT(P_NEW_ID),
                                CUSTOM_ROW, NOTIFICATION_KEYS, "user not found"},
    [STORE_NOTIFICATION_LIST] = {BIT(P_USER_ID) | BIT(P_UNREAD_ONLY) | BIT(P_LIMIT), CUSTOM_ROWS,
                                 NOTIFICATION_KEYS, NULL},
    [STORE_NOTIFICATION_MARK_READ] = {BIT(P_USER_ID) | BIT(P_ID), CUSTOM_UPDATED, "", NULL},
    [STORE_ACCESS_REQUEST_ADD] = {MEMBERSHIP | BIT(P_NEW_ID), CUSTOM_ROW, ACCESS_KEYS,
                                  "room not found"},
    [STORE_ACCESS_REQUEST_RESOLVE] = {BIT(P_ID) | BIT(P_STATUS) | BIT(P_NOW), CUSTOM_ROW,
                                      ACCESS_KEYS, "access request not found"},
    [STORE_ACCESS_REQUEST_GET] = {BIT(P_ID), CUSTOM_ROW, ACCESS_KEYS, "access request not found"},
};

static void call_param(call_t *call, const args_t *a, param_t param, const char *now,
                       const char *new_id)
{
    const text_t *texts[] = {[P_ID] = &a->id,
                             [P_USER_ID] = &a->user_id,
                             [P_ROOM_ID] = &a->room_id,
                             [P_SENDER_ID] = &a->sender_id,
                             [P_RECIPIENT_ID] = &a->recipient_id,
                             [P_OTHER_ID] = &a->other_id,
                             [P_OWNER_ID] = &a->owner_id,
                             [P_BEFORE] = &a->before,
                             [P_NAME] = &a->name,
                             [P_TEXT] = &a->text,
                             [P_TYPE] = &a->type,
                             [P_FIRST_NAME] = &a->profile[0],
                             [P_LAST_NAME] = &a->profile[1],
                             [P_ROLE] = &a->profile[2],
                             [P_AVATAR] = &a->profile[3]};
    if (param <= P_AVATAR)
        call_text(call, *texts[param]);
    else if (param == P_STATUS)
        call_text(call, a->status != NULL ? text_of(a->status) : (text_t){NULL, 0, 0});
    else if (param == P_IS_PRIVATE || param == P_UNREAD_ONLY)
        call_int(call, a->flag);
    else if (param == P_LIMIT)
        call_int(call, a->limit);
    else if (param == P_PAYLOAD)
        call_text(call, a->payload != NULL ? text_of(a->payload) : (text_t){NULL, 0, 0});
    else
        call_string(call, param == P_NOW ? now : new_id);
}

static uint64_t clock_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

static cached_user_t *user_slot(store_t *store, text_t id)
{
    uint32_t hash = 2166136261u; /* FNV-1a */
    for (size_t index = 0; index < id.length; index++)
        hash = (hash ^ (unsigned char)id.bytes[index]) * 16777619u;
    return &store->users[hash % store->user_cache_size];
}

static int user_slot_holds(const cached_user_t *slot, text_t id)
{
    return slot->id != NULL && strlen(slot->id) == id.length &&
           memcmp(slot->id, id.bytes, id.length) == 0;
}

static void user_slot_clear(cached_user_t *slot)
{
    free(slot->id);
    json_decref(slot->user);
    *slot = (cached_user_t){NULL, NULL, 0};
}

/* A fresh cached copy of the user, or NULL. */
static json_t *user_cache_get(store_t *store, text_t id)
{
    if (store->users == NULL)
        return NULL;
    cached_user_t *slot = user_slot(store, id);
    if (!user_slot_holds(slot, id) || clock_ms() >= slot->expires_ms)
        return NULL;
    return json_deep_copy(slot->user);
}

static void user_cache_put(store_t *store, text_t id, const json_t *user)
{
    if (store->users == NULL)
        return;
    cached_user_t *slot = user_slot(store, id);
    user_slot_clear(slot);
    slot->id = strndup(id.bytes, id.length);
    slot->user = json_deep_copy(user);
    slot->expires_ms = clock_ms() + store->user_cache_ttl_ms;
    if (slot->id == NULL || slot->user == NULL)
        user_slot_clear(slot);
}

static void user_cache_forget(store_t *store, text_t id)
{
    if (store->users != NULL && user_slot_holds(user_slot(store, id), id))
        user_slot_clear(user_slot(store, id));
}

static void user_cache_free(store_t *store)
{
    for (size_t index = 0; store->users != NULL && index < store->user_cache_size; index++)
        user_slot_clear(&store->users[index]);
    free(store->users);
    store->users = NULL;
}

/* Runs the application's statement once; rows go to rows (may be NULL). */
static int custom_execute(store_t *store, request_t *request, sioc__store_rows_t *rows,
                          int64_t *changes)
{
    const custom_t *custom = &store->custom[request->operation];
    char now[TIME_SIZE], new_id[GENERATED_ID_SIZE];
    sioc__store_time_now(now);
    int error = generate_id(request, new_id);
    if (error != 0)
        return error;
    call_t call = {.count = 0};
    for (size_t index = 0; index < custom->count; index++)
        call_param(&call, &request->args, (param_t)custom->params[index], now, new_id);
    int rc = execute(store, request, SIOC__SQL_STATEMENT_COUNT + (int)request->operation, &call,
                     rows, changes);
    if (rc == SIOC__STORE_DB_CONFLICT)
        return request_fail(request, STORE_ECONFLICT, "already exists");
    return rc;
}

/* mark_read: once for "all" (:id NULL), else once per listed id. */
static int custom_updated(store_t *store, request_t *request)
{
    args_t *a = &request->args;
    int64_t updated = 0, changes = 0;
    size_t runs = a->flag ? 1 : a->id_count;
    for (size_t index = 0; index < runs; index++) {
        a->id = a->flag ? (text_t){NULL, 0, 0} : a->ids[index];
        int error = custom_execute(store, request, NULL, &changes);
        if (error != 0)
            return error;
        updated += changes;
    }
    return request_succeed(request, json_pack("{s:I}", "updated", (json_int_t)updated));
}

static int run_custom(store_t *store, request_t *request)
{
    const custom_spec_t *spec = &custom_specs[request->operation];
    const args_t *a = &request->args;
    if (request->operation == STORE_USER_GET) {
        json_t *cached = user_cache_get(store, a->id);
        if (cached != NULL)
            return request_succeed(request, cached);
    }
    if (spec->result == CUSTOM_UPDATED)
        return custom_updated(store, request);
    int many = spec->result == CUSTOM_ROWS || spec->result == CUSTOM_VALUES;
    sioc__store_rows_t rows = {spec->result == CUSTOM_VALUES ? &USER_ID_SHAPE
                                                             : &sioc__store_named_shape,
                               NULL, many ? json_array() : NULL, 0, 0};
    if (many && rows.array == NULL)
        return request_fail(request, STORE_EIO, MESSAGE_NO_MEMORY);
    int64_t changes = 0;
    int error = custom_execute(store, request, &rows, &changes);
    if (error != 0) {
        json_decref(rows.one);
        json_decref(rows.array);
        return error;
    }
    switch (spec->result) {
    case CUSTOM_ROWS:
    case CUSTOM_VALUES:
        return request_succeed(request, rows.array);
    case CUSTOM_EXISTS:
        json_decref(rows.one);
        return request_succeed(request, json_boolean(rows.count > 0));
    case CUSTOM_REMOVED:
        json_decref(rows.one);
        return request_succeed(request, json_pack("{s:s%, s:s%, s:b}", "roomId", a->room_id.bytes,
                                                  a->room_id.length, "userId", a->user_id.bytes,
                                                  a->user_id.length, "removed", changes > 0));
    default:
        break;
    }
    if (rows.count == 0)
        return request_fail(request, STORE_ENOTFOUND, spec->not_found);
    if (request->operation == STORE_USER_GET && rows.one != NULL)
        user_cache_put(store, a->id, rows.one);
    return request_succeed(request, rows.one);
}

typedef struct operation_s {
    const char *name;
    const char *(*parse)(reader_t *reader);         /* loop thread: NULL, or the problem */
    int (*run)(store_t *store, request_t *request); /* worker: 0, or the request's error */
} operation_t;

static const operation_t operations[STORE_OPERATION_COUNT] = {
    [STORE_USER_UPSERT] = {"user_upsert", parse_user_upsert, run_user_upsert},
    [STORE_USER_GET] = {"user_get", parse_id, run_user_get},
    [STORE_PRESENCE_SET] = {"presence_set", parse_presence_set, run_presence_set},
    [STORE_PRESENCE_GET] = {"presence_get", parse_user_id, run_presence_get},
    [STORE_ROOM_CREATE] = {"room_create", parse_room_create, run_room_create},
    [STORE_ROOM_GET] = {"room_get", parse_id, run_room_get},
    [STORE_ROOM_ADD_MEMBER] = {"room_add_member", parse_membership, run_room_add_member},
    [STORE_ROOM_REMOVE_MEMBER] = {"room_remove_member", parse_membership, run_room_remove_member},
    [STORE_ROOM_MEMBERS] = {"room_members", parse_room_id, run_room_members},
    [STORE_ROOM_IS_MEMBER] = {"room_is_member", parse_membership, run_room_is_member},
    [STORE_MESSAGE_ADD] = {"message_add", parse_message_add, run_message_add},
    [STORE_MESSAGE_HISTORY] = {"message_history", parse_message_history, run_message_history},
    [STORE_DM_ADD] = {"dm_add", parse_dm_add, run_dm_add},
    [STORE_DM_HISTORY] = {"dm_history", parse_dm_history, run_dm_history},
    [STORE_NOTIFICATION_ADD] = {"notification_add", parse_notification_add, run_notification_add},
    [STORE_NOTIFICATION_LIST] = {"notification_list", parse_notification_list,
                                 run_notification_list},
    [STORE_NOTIFICATION_MARK_READ] = {"notification_mark_read", parse_mark_read,
                                      run_notification_mark_read},
    [STORE_ACCESS_REQUEST_ADD] = {"access_request_add", parse_membership, run_access_request_add},
    [STORE_ACCESS_REQUEST_RESOLVE] = {"access_request_resolve", parse_access_resolve,
                                      run_access_request_resolve},
    [STORE_ACCESS_REQUEST_GET] = {"access_request_get", parse_id, run_access_request_get},
};

/* An operation of store.h this file has no entry for (the header grew): refused, not run. */
static int operation_known(store_operation_t operation)
{
    return (unsigned)operation < STORE_OPERATION_COUNT && operations[operation].run != NULL;
}

const char *store_operation_name(store_operation_t operation)
{
    return operation_known(operation) ? operations[operation].name : "unknown";
}

int store_operation_find(const char *name)
{
    for (int operation = 0; operation < STORE_OPERATION_COUNT; operation++) {
        if (strcmp(operations[operation].name, name) == 0)
            return operation;
    }
    return -1;
}

/* ---- The worker thread ------------------------------------------------------------------- */

/* A control statement (BEGIN, SAVEPOINT, ...) on behalf of request: 0, or the request's error. */
static int control(store_t *store, request_t *request, sioc__store_statement_t statement)
{
    return execute_plain(store, request, statement, NULL, NULL, NULL);
}

/* A control statement whose failure is only logged (the request already has its outcome). */
static void control_quiet(store_t *store, sioc__store_statement_t statement)
{
    const char *message = NULL;
    int rc =
        store->driver->execute(store->connection, statement, NULL, 0, NULL, NULL, NULL, &message);
    if (rc == STORE_EUNAVAILABLE)
        store->lost = 1;
}

/* Runs the request's operation: sioc's, or the application's statement. 0, or its error. */
static int request_operate(store_t *store, request_t *request)
{
    if (request->operation == STORE_USER_UPSERT)
        user_cache_forget(store, request->args.id); /* whichever table it writes */
    return store->custom[request->operation].active
               ? run_custom(store, request)
               : operations[request->operation].run(store, request);
}

/* Runs one request inside the open transaction, in its own savepoint: if it fails, its
 * changes are rolled back and the rest of the batch goes on. */
static void request_run(store_t *store, request_t *request)
{
    store->operation_name = operations[request->operation].name;
    if (control(store, request, SIOC__SQL_SAVEPOINT) != 0)
        return;
    int error = request_operate(store, request);
    /* Some errors (I/O, disk full, RAISE(ROLLBACK), a lost connection) end the whole
     * transaction: no savepoint is left to release; the batch notices. */
    if (store->lost || !store->driver->in_transaction(store->connection))
        return;
    if (error != 0)
        control_quiet(store, SIOC__SQL_ROLLBACK_TO);
    const char *message = NULL;
    int rc = store->driver->execute(store->connection, SIOC__SQL_RELEASE, NULL, 0, NULL, NULL, NULL,
                                    &message);
    if (rc != 0 && error == 0) {
        /* Its changes must not be committed with the batch if it reports a failure. */
        request_fail(request, rc == STORE_EUNAVAILABLE ? STORE_EUNAVAILABLE : STORE_EIO,
                     rc == STORE_EUNAVAILABLE ? MESSAGE_UNAVAILABLE : message);
        control_quiet(store, SIOC__SQL_ROLLBACK_TO);
        control_quiet(store, SIOC__SQL_RELEASE);
    }
}

/* Requests from first up to (not including) end that had succeeded lose their result: their
 * transaction did not commit. */
static void batch_fail_uncommitted(request_t *first, request_t *end, int error, const char *message)
{
    for (request_t *request = first; request != end; request = request->next) {
        if (request->error == 0)
            request_fail(request, error, message);
    }
}

/* What one batch did, added to the store's counters when it is posted back. */
typedef struct batch_counts_s {
    size_t size;
    uint64_t requests;
    uint64_t transactions;
    uint64_t failed_commits;
    uint64_t pipelines;
    uint64_t pipelined;
    uint64_t started_ns; /* taken from the queue */
} batch_counts_t;

static void profile_add(store_t *store, store_phase_t phase, uint64_t start_ns, uint64_t end_ns)
{
    pthread_mutex_lock(&store->mutex);
    store_histogram_add(&store->profile.phases[phase], (end_ns - start_ns) / 1000);
    pthread_mutex_unlock(&store->mutex);
}

/* Opens a transaction for request; 0, or -1 with the request failed. */
static int batch_begin(store_t *store, request_t *request, batch_counts_t *counts)
{
    store->operation_name = "begin";
    uint64_t start = uv_hrtime();
    int rc = control(store, request, SIOC__SQL_BEGIN);
    store->begun_ns = uv_hrtime();
    profile_add(store, STORE_PHASE_BEGIN, start, store->begun_ns);
    if (rc != 0)
        return -1;
    counts->transactions++;
    return 0;
}

/* Commits the transaction that first opened; on failure every request since fails. */
static void batch_commit(store_t *store, request_t *first, batch_counts_t *counts)
{
    store->operation_name = "commit";
    const char *message = NULL;
    uint64_t start = uv_hrtime();
    profile_add(store, STORE_PHASE_STATEMENTS, store->begun_ns, start);
    int rc = store->driver->execute(store->connection, SIOC__SQL_COMMIT, NULL, 0, NULL, NULL, NULL,
                                    &message);
    profile_add(store, STORE_PHASE_COMMIT, start, uv_hrtime());
    if (rc == 0)
        return;
    log_error("store: commit failed: %s", message != NULL ? message : "?");
    if (rc == STORE_EUNAVAILABLE)
        store->lost = 1;
    else if (store->driver->in_transaction(store->connection))
        control_quiet(store, SIOC__SQL_ROLLBACK);
    if (store->lost)
        batch_fail_uncommitted(first, NULL, STORE_EUNAVAILABLE, MESSAGE_UNAVAILABLE);
    else
        batch_fail_uncommitted(first, NULL, STORE_EIO, MESSAGE_ROLLED_BACK);
    counts->failed_commits++;
}

/* The connection was lost: the open transaction's requests and the rest of the batch fail. */
static void batch_lost(request_t *first, request_t *request)
{
    log_error("store: the database connection was lost");
    batch_fail_uncommitted(first != NULL ? first : request, NULL, STORE_EUNAVAILABLE,
                           MESSAGE_UNAVAILABLE);
}

/* Every request of the batch as it was queued (a rolled-back run is forgotten). */
static void batch_reset(request_t *batch, batch_counts_t *counts)
{
    for (request_t *request = batch; request != NULL; request = request->next) {
        if (request->refused)
            continue;
        json_decref(request->result);
        request->result = NULL;
        request->error = 0;
        request->message = NULL;
    }
    counts->size = 0;
    counts->requests = 0;
}

/* The optimistic run ended early (see below): every request as queued again, for the careful
 * run (1), or, when the connection went meanwhile, every one failed as unavailable (0). */
static int batch_restart(store_t *store, request_t *batch, batch_counts_t *counts)
{
    batch_reset(batch, counts);
    if (!store->lost)
        return 1;
    batch_lost(NULL, batch);
    return 0;
}

/* ---- Pipelines (drivers with execute_pipeline: PostgreSQL) ---- */

/* A request of a pipeline: its statement's call, with the id and time it points to, and
 * where its row goes. */
typedef struct staged_s {
    request_t *request;
    call_t call;
    sioc__store_rows_t rows;
    int unreadable;
    const char *missing; /* sioc's insert added nothing: the "not found" it gave the reason for */
    char id[GENERATED_ID_SIZE];
    char now[TIME_SIZE];
} staged_t;

/* Message and DM inserts, the bulk of a chat's batches, are one statement each; nothing later
 * in the batch depends on their outcome. */
static int pipelinable(const request_t *request)
{
    return !request->refused &&
           (request->operation == STORE_MESSAGE_ADD || request->operation == STORE_DM_ADD);
}

/* The diagnosed insert's row (store_driver.h): the row's columns, then whether the first and
 * second ids exist. */
#define DIAGNOSED_COLUMNS 8
#define DIAGNOSED_FIRST 6

static int on_staged_row(void *data, const sioc__store_cell_t *cells, size_t count)
{
    staged_t *staged = data;
    int message = staged->request->operation == STORE_MESSAGE_ADD;
    if (staged->rows.shape != &sioc__store_named_shape && count == DIAGNOSED_COLUMNS &&
        cells[0].bytes == NULL) {
        /* The names and their precedence of run_message_add's and run_dm_add's checks. */
        const sioc__store_cell_t *first = &cells[DIAGNOSED_FIRST];
        if (first->bytes == NULL || first->bytes[0] != 't')
            staged->missing = message ? "room not found" : "sender not found";
        else
            staged->missing = message ? "sender not found" : "recipient not found";
        return 0;
    }
    if (sioc__store_on_row(&staged->rows, cells, count) != 0)
        staged->unreadable = 1; /* the request fails alone, as when run by itself */
    return 0;
}

/* The request's statement, as run_message_add / run_dm_add / run_custom would run it first;
 * -1 when it failed before reaching the database. */
static int stage(store_t *store, staged_t *staged, sioc__store_call_t *out)
{
    request_t *request = staged->request;
    const args_t *a = &request->args;
    int message = request->operation == STORE_MESSAGE_ADD;
    if (generate_id(request, staged->id) != 0)
        return -1;
    sioc__store_time_now(staged->now);
    staged->unreadable = 0;
    staged->missing = NULL;
    int statement;
    const custom_t *custom = &store->custom[request->operation];
    if (custom->active) {
        staged->call.count = 0;
        for (size_t index = 0; index < custom->count; index++)
            call_param(&staged->call, a, (param_t)custom->params[index], staged->now, staged->id);
        staged->rows = (sioc__store_rows_t){&sioc__store_named_shape, NULL, NULL, 0, 0};
        statement = SIOC__SQL_STATEMENT_COUNT + (int)request->operation;
    } else {
        text_t first = message ? a->room_id : a->sender_id;
        text_t second = message ? a->sender_id : a->recipient_id;
        message_call(&staged->call, a, first, second, staged->id, staged->now);
        staged->rows = (sioc__store_rows_t){message ? &MESSAGE_SHAPE : &DM_SHAPE, NULL, NULL, 0, 0};
        statement = message ? SIOC__SQL_MESSAGE_INSERT_DIAGNOSED : SIOC__SQL_DM_INSERT_DIAGNOSED;
    }
    *out = (sioc__store_call_t){(sioc__store_statement_t)statement, staged->call.params,
                                staged->call.count, on_staged_row, staged};
    return 0;
}

/* A staged request's outcome from its row (sioc's diagnosed insert always gives one; an
 * application's statement gives none for "not found"). */
static void staged_outcome(store_t *store, staged_t *staged)
{
    request_t *request = staged->request;
    if (staged->unreadable) {
        json_decref(staged->rows.one);
        request_fail(request, STORE_EIO, MESSAGE_NO_RESULT);
    } else if (staged->missing != NULL) {
        request_fail(request, STORE_ENOTFOUND, staged->missing);
    } else if (staged->rows.count > 0) {
        request_succeed(request, staged->rows.one);
    } else if (store->custom[request->operation].active) {
        request_fail(request, STORE_ENOTFOUND, custom_specs[request->operation].not_found);
    } else {
        request_fail(request, STORE_EIO, MESSAGE_NO_RESULT); /* a row the driver did not give */
    }
}

/* Stages the pipelinable requests from *cursor on into staged[from...] and calls[...], up to
 * PIPELINE_MAX staged in all; *cursor moves past them. The number staged (a request that
 * failed to stage has no call). */
static size_t stage_run(store_t *store, staged_t *staged_all, request_t **cursor, size_t from,
                        sioc__store_call_t *calls, batch_counts_t *counts)
{
    size_t count = 0;
    request_t *request = *cursor;
    for (; request != NULL && from + count < PIPELINE_MAX && pipelinable(request);
         request = request->next) {
        staged_t *staged = &staged_all[from + count];
        counts->size++;
        counts->requests++;
        staged->request = request;
        if (stage(store, staged, &calls[count]) == 0)
            count++;
    }
    *cursor = request;
    counts->pipelines += count > 0;
    counts->pipelined += count;
    return count;
}

/* What a pipeline's run leaves to do. */
typedef enum pipeline_outcome {
    PIPELINE_DONE,  /* every request has its outcome; the transaction goes on */
    PIPELINE_AGAIN, /* a statement failed: the batch runs again the careful way */
    PIPELINE_LOST,  /* the connection was lost */
} pipeline_outcome_t;

/* The outcome of count staged requests whose pipeline returned rc: theirs when it succeeded,
 * else none (their rows are dropped). */
static pipeline_outcome_t pipeline_outcome(store_t *store, staged_t *staged, size_t count, int rc)
{
    for (size_t index = 0; index < count; index++) {
        if (rc == 0)
            staged_outcome(store, &staged[index]);
        else
            json_decref(staged[index].rows.one);
    }
    if (rc == STORE_EUNAVAILABLE) {
        store->lost = 1;
        return PIPELINE_LOST;
    }
    return rc != 0 ? PIPELINE_AGAIN : PIPELINE_DONE;
}

/* Runs the pipelinable requests from *cursor on (at most PIPELINE_MAX) as one pipeline,
 * inside the open transaction; *cursor moves past them. */
static pipeline_outcome_t pipeline_run(store_t *store, request_t **cursor, batch_counts_t *counts)
{
    sioc__store_call_t calls[PIPELINE_MAX];
    size_t count = stage_run(store, store->staged, cursor, 0, calls, counts);
    size_t failed = count;
    const char *message = NULL;
    int rc = count > 0 ? store->driver->execute_pipeline(store->connection, calls, count, &failed,
                                                         &message)
                       : 0;
    (void)failed; /* the whole batch runs again, the careful way */
    return pipeline_outcome(store, store->staged, count, rc);
}

/* A batch of nothing but pipelinable requests (the chat's): BEGIN, their statements and
 * COMMIT go out as one pipeline, one round trip for the whole batch. */
static int batch_one_trip(const request_t *batch)
{
    size_t count = 0;
    for (const request_t *request = batch; request != NULL; request = request->next) {
        if (request->refused)
            continue;
        if (!pipelinable(request) || ++count > PIPELINE_MAX)
            return 0;
    }
    return count > 0;
}

/* ---- Batches in flight (drivers with pipeline_send: PostgreSQL) ---- */

/* A one-trip batch goes out as soon as it is taken, also while the answers to the batch
 * before it are still on their way: a request then no longer waits for the worker's
 * turnaround (reading the answers, handing the batch back, waking up, building the next) on
 * top of the database's own time. Two, not more: the backend runs them one after the other
 * (the second behind the first's COMMIT and its WAL flush), so a third would only wait there,
 * and leave smaller batches. Completion order stays the order sent. */
#define FLIGHTS_MAX 2

typedef struct flight_s {
    request_t *batch;
    batch_counts_t counts;
    staged_t *staged;                           /* PIPELINE_MAX, in one block for all flights */
    sioc__store_call_t calls[PIPELINE_MAX + 2]; /* BEGIN, the staged requests', COMMIT */
    size_t count;                               /* requests staged (with a call) */
    uint64_t sent_ns;
    uint64_t answered_ns;
    int answered; /* rc, failed and message are the pipeline's outcome */
    int rc;
    size_t failed;
    const char *message;
} flight_t;

static void flights_free(store_t *store)
{
    if (store->flights != NULL)
        free(store->flights[0].staged);
    free(store->flights);
    store->flights = NULL;
    if (store->wake_fd >= 0)
        close(store->wake_fd);
    store->wake_fd = -1;
}

/* Stages a one-trip batch's requests into the flight; how many have a call. */
static size_t flight_stage(store_t *store, flight_t *flight)
{
    request_t *cursor = flight->batch;
    batch_counts_t *counts = &flight->counts;
    size_t count = 0;
    while (cursor != NULL && cursor->refused) {
        counts->size++;
        cursor = cursor->next;
    }
    while (cursor != NULL) {
        count +=
            stage_run(store, flight->staged, &cursor, count, flight->calls + 1 + count, counts);
        for (; cursor != NULL && cursor->refused; cursor = cursor->next)
            counts->size++;
    }
    return count;
}

/* Batches sent on the connection and not yet answered. */
static size_t flights_unanswered(const store_t *store)
{
    size_t count = 0;
    for (size_t index = 0; index < store->flights_sent; index++) {
        const flight_t *flight = &store->flights[(store->first_flight + index) % FLIGHTS_MAX];
        count += flight->count > 0 && !flight->answered;
    }
    return count;
}

/* Sends a one-trip batch (batch_one_trip) as one pipeline, BEGIN to COMMIT, behind those in
 * flight. */
static void flight_send(store_t *store, request_t *batch, const batch_counts_t *counts)
{
    flight_t *flight = &store->flights[(store->first_flight + store->flights_sent) % FLIGHTS_MAX];
    flight->batch = batch;
    flight->counts = *counts;
    flight->answered = 0;
    flight->rc = 0;
    flight->failed = 0;
    flight->message = NULL;
    store->flights_sent++;
    size_t count = flight->count = flight_stage(store, flight);
    if (count == 0) {
        flight->answered = 1; /* every one failed before reaching the database */
        return;
    }
    flight->calls[0] = (sioc__store_call_t){SIOC__SQL_BEGIN, NULL, 0, NULL, NULL};
    flight->calls[count + 1] = (sioc__store_call_t){SIOC__SQL_COMMIT, NULL, 0, NULL, NULL};
    store->operation_name = "pipeline";
    flight->sent_ns = uv_hrtime();
    store->driver->pipeline_send(store->connection, flight->calls, count + 2);
    flight->counts.transactions++;
    size_t depth = flights_unanswered(store);
    pthread_mutex_lock(&store->mutex);
    store_histogram_add(&store->profile.phases[STORE_PHASE_DEPTH], depth);
    if (depth > store->stats.most_in_flight)
        store->stats.most_in_flight = depth;
    pthread_mutex_unlock(&store->mutex);
}

/* Reads the flight's answers (it must be the oldest unanswered); 1 when wake_fd (-1: none)
 * woke the worker first. */
static int flight_answer(store_t *store, flight_t *flight, int wake_fd)
{
    if (flight->answered)
        return 0;
    size_t failed = 0;
    const char *message = NULL;
    int rc = store->driver->pipeline_read(store->connection, wake_fd, &failed, &message);
    if (rc == SIOC__STORE_PIPELINE_WOKEN)
        return 1;
    flight->answered = 1;
    flight->answered_ns = uv_hrtime();
    flight->rc = rc;
    flight->failed = failed;
    flight->message = message;
    return 0;
}

/* An answered flight's outcome (batch_run_optimistic's contract: 1 when the batch must run
 * again the careful way). The rows read are only taken once COMMIT has succeeded; when a
 * statement failed, the transaction is rolled back and nothing of it is kept. Uses the
 * connection: nothing else may be in flight. */
static int flight_outcome(store_t *store, flight_t *flight)
{
    request_t *batch = flight->batch;
    batch_counts_t *counts = &flight->counts;
    size_t count = flight->count;
    int rc = flight->rc;
    if (rc != 0 && rc != STORE_EUNAVAILABLE && flight->failed == count + 1) {
        log_error("store: commit failed: %s", flight->message != NULL ? flight->message : "?");
        if (store->driver->in_transaction(store->connection))
            control_quiet(store, SIOC__SQL_ROLLBACK);
        pipeline_outcome(store, flight->staged, count, rc);
        if (store->lost) {
            batch_lost(NULL, batch);
            return 0;
        }
        batch_fail_uncommitted(batch, NULL, STORE_EIO, MESSAGE_ROLLED_BACK);
        counts->failed_commits++;
        return 0;
    }
    pipeline_outcome_t outcome = pipeline_outcome(store, flight->staged, count, rc);
    if (outcome == PIPELINE_LOST) {
        batch_lost(NULL, batch);
        return 0;
    }
    if (outcome == PIPELINE_DONE)
        return 0;
    if (store->driver->in_transaction(store->connection))
        control_quiet(store, SIOC__SQL_ROLLBACK);
    return batch_restart(store, batch, counts);
}

/* Drivers whose failed statements abort the whole transaction (PostgreSQL): a SAVEPOINT and a
 * RELEASE per request would be two more round trips per request for a rare failure. The batch
 * runs without them first; at the first failed statement it is rolled back and run again the
 * careful way. Safe because a request that fails without a failed statement (a "not found")
 * has changed nothing (every operation checks before it writes), and nothing of a rolled-back
 * run is kept or announced. 1 when the batch must run again, 0 when it is done. */
static int batch_run_optimistic(store_t *store, request_t *batch, batch_counts_t *counts)
{
    request_t *first = NULL;
    for (request_t *request = batch; request != NULL;) {
        if (request->refused) {
            counts->size++;
            request = request->next;
            continue;
        }
        if (first == NULL && batch_begin(store, request, counts) != 0)
            return batch_restart(store, batch, counts);
        first = first != NULL ? first : request;
        store->operation_name = operations[request->operation].name;
        if (store->staged != NULL && pipelinable(request)) {
            pipeline_outcome_t outcome = pipeline_run(store, &request, counts);
            if (outcome == PIPELINE_LOST) {
                batch_lost(first, first);
                return 0;
            }
            if (outcome == PIPELINE_AGAIN || store->driver->aborted(store->connection)) {
                control_quiet(store, SIOC__SQL_ROLLBACK);
                return batch_restart(store, batch, counts);
            }
            continue;
        }
        counts->size++;
        request_operate(store, request);
        counts->requests++;
        if (store->lost) {
            batch_lost(first, request);
            return 0;
        }
        if (store->driver->aborted(store->connection)) {
            control_quiet(store, SIOC__SQL_ROLLBACK);
            return batch_restart(store, batch, counts);
        }
        request = request->next;
    }
    if (first != NULL)
        batch_commit(store, first, counts);
    return 0;
}

/* Runs a batch in as few transactions as possible, each request in a savepoint: one, unless
 * the database rolls one back on its own, in which case the requests run so far fail and the
 * rest start another. With store->lost set, every request fails as unavailable. */
static void batch_run_careful(store_t *store, request_t *batch, batch_counts_t *counts)
{
    request_t *first = NULL; /* the first request of the open transaction */
    for (request_t *request = batch; request != NULL; request = request->next) {
        counts->size++;
        if (request->refused)
            continue;
        if (store->lost) {
            batch_lost(first, request);
            return;
        }
        if (first == NULL && batch_begin(store, request, counts) != 0)
            continue;
        if (first == NULL)
            first = request;
        request_run(store, request);
        counts->requests++;
        if (store->lost) {
            batch_lost(first, request);
            return;
        }
        if (!store->driver->in_transaction(store->connection)) {
            log_error("store: %s: the database rolled the transaction back",
                      operations[request->operation].name);
            batch_fail_uncommitted(first, request, STORE_EIO, MESSAGE_ROLLED_BACK);
            if (request->error == 0)
                request_fail(request, STORE_EIO, MESSAGE_ROLLED_BACK);
            first = NULL;
        }
    }
    if (first != NULL)
        batch_commit(store, first, counts);
}

/* Runs a batch, one at a time on the connection: the optimistic way first when the driver
 * has one. */
static void batch_run(store_t *store, request_t *batch, batch_counts_t *counts)
{
    store->lost = store->driver->ready(store->connection) != 0;
    if (!store->lost && store->driver->aborted != NULL &&
        !batch_run_optimistic(store, batch, counts))
        return;
    batch_run_careful(store, batch, counts);
}

/* Under mutex: the wait phase of a batch's requests ends when the worker takes it. */
static void profile_waited(store_t *store, const request_t *batch)
{
    uint64_t now = uv_hrtime();
    for (const request_t *request = batch; request != NULL; request = request->next)
        store_histogram_add(&store->profile.phases[STORE_PHASE_WAIT],
                            (now - request->started_ns) / 1000);
}

/* Under mutex: waits for a request (or stop). After work, at most SIOC__STORE_IDLE_RELEASE_MS:
 * if nothing came by then, the driver releases its memory (the lock let go meanwhile). */
static void worker_wait(store_t *store)
{
    if (!store->worked || store->driver->release_memory == NULL) {
        pthread_cond_wait(&store->wake, &store->mutex);
        return;
    }
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += SIOC__STORE_IDLE_RELEASE_MS / 1000;
    until.tv_nsec += (long)(SIOC__STORE_IDLE_RELEASE_MS % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    if (pthread_cond_timedwait(&store->wake, &store->mutex, &until) != ETIMEDOUT)
        return;
    store->worked = 0;
    store->stats.releases++;
    pthread_mutex_unlock(&store->mutex);
    store->driver->release_memory(store->connection);
    pthread_mutex_lock(&store->mutex);
}

/* Under mutex: the worker has the connection and something to do with it (requests, stop, or
 * batches the loop sent and handed back answered, one of them failed: flight_finish). */
static int worker_has_work(const store_t *store)
{
    return store->owner == OWNER_WORKER && (store->stopping || store->flights_sent > 0 ||
                                            (!store->held && store->pending.head != NULL));
}

/* Under mutex, with nothing to do: with store.dispatch "loop", the idle worker lends the
 * connection to the loop thread (nothing in flight, nothing queued). Every request then goes
 * to the loop first, which gives it back for anything but the chat's batches. */
static void worker_lend(store_t *store)
{
    if (store->dispatch_loop && store->owner == OWNER_WORKER && !store->stopping && !store->held &&
        store->pending.head == NULL && store->flights_sent == 0)
        store->owner = OWNER_LOOP;
}

/* Waits for work; the requests to run (up to BATCH_MAX), or NULL once closing with nothing
 * left to do, or when the loop handed back batches to finish (flights_sent > 0). */
static request_t *worker_take(store_t *store)
{
    pthread_mutex_lock(&store->mutex);
    while (!worker_has_work(store)) {
        worker_lend(store);
        if (store->owner != OWNER_WORKER)
            pthread_cond_wait(&store->wake, &store->mutex); /* until the loop gives it back */
        else
            worker_wait(store);
    }
    request_t *batch = store->flights_sent > 0 ? NULL : queue_take(&store->pending, BATCH_MAX);
    if (batch != NULL)
        store->worked = 1;
    /* Decided under the same lock as the queue was seen empty, so that no request can be
     * queued for a worker that no longer looks. */
    if (batch == NULL && store->flights_sent == 0)
        store->queue_closed = 1;
    profile_waited(store, batch);
    pthread_mutex_unlock(&store->mutex);
    return batch;
}

/* With batches in flight: the requests queued (up to BATCH_MAX), or NULL when there are none
 * or the flights are full; when there is room for one more, the worker is then polling: the
 * next request queued wakes it through wake_fd. */
static request_t *worker_poll(store_t *store)
{
    uint64_t stale;
    ssize_t drained = read(store->wake_fd, &stale, sizeof(stale)); /* non-blocking */
    (void)drained; /* written after the worker last looked: the queue is looked at below */
    request_t *batch = NULL;
    pthread_mutex_lock(&store->mutex);
    if (store->flights_sent < FLIGHTS_MAX) {
        if (!store->held && store->pending.head != NULL)
            batch = queue_take(&store->pending, BATCH_MAX);
        store->worker_polling = batch == NULL;
        profile_waited(store, batch);
    }
    pthread_mutex_unlock(&store->mutex);
    return batch;
}

/* Under mutex, when a request is queued or the hold released: 1 when the worker polls, and
 * the caller must then call wake_worker (after unlocking). */
static int worker_wanted(store_t *store)
{
    int polling = store->worker_polling;
    store->worker_polling = 0;
    return polling;
}

static void wake_worker(store_t *store)
{
    uint64_t one = 1;
    ssize_t written = write(store->wake_fd, &one, sizeof(one));
    (void)written; /* EAGAIN only when the counter is full: it is readable then anyway */
}

/* Hands a committed batch back to the loop thread. */
static void worker_post(store_t *store, request_t *batch, const batch_counts_t *counts)
{
    uint64_t now = uv_hrtime();
    for (request_t *request = batch; request != NULL; request = request->next)
        request->posted_ns = now;
    pthread_mutex_lock(&store->mutex);
    store_histogram_add(&store->profile.phases[STORE_PHASE_BATCH],
                        (now - counts->started_ns) / 1000);
    store_histogram_add(&store->profile.phases[STORE_PHASE_SIZE], counts->size);
    queue_append(&store->completed, batch);
    store->stats.batches++;
    store->stats.requests += counts->requests;
    store->stats.transactions += counts->transactions;
    store->stats.failed_commits += counts->failed_commits;
    store->stats.pipelines += counts->pipelines;
    store->stats.pipelined += counts->pipelined;
    if (counts->size > store->stats.largest_batch)
        store->stats.largest_batch = counts->size;
    pthread_mutex_unlock(&store->mutex);
    uv_async_send(&store->completions_async);
}

/* Posts the oldest flight back once answered. A failed one's outcome needs the connection
 * (ROLLBACK, the careful run), so the flights behind it are read first: they were run by the
 * server after it, and fail too (at their BEGIN, 25P02) when it left the transaction aborted.
 * They are then finished here too, in order, before anything more is sent: one that must run
 * again the careful way does so right behind the failed one, as if it had been sent alone
 * after it (a batch sent meanwhile would be applied before it). */
static void flight_finish(store_t *store)
{
    flight_t *flight = &store->flights[store->first_flight];
    int failed = flight->rc != 0;
    if (failed) {
        for (size_t index = 1; index < store->flights_sent; index++)
            flight_answer(store, &store->flights[(store->first_flight + index) % FLIGHTS_MAX], -1);
    }
    store->first_flight = (store->first_flight + 1) % FLIGHTS_MAX;
    store->flights_sent--;
    if (flight->count > 0) {
        profile_add(store, STORE_PHASE_TRIP, flight->sent_ns, flight->answered_ns);
        store->lost = 0;
        if (flight_outcome(store, flight))
            batch_run_careful(store, flight->batch, &flight->counts);
    }
    worker_post(store, flight->batch, &flight->counts);
    while (failed && store->flights_sent > 0)
        flight_finish(store); /* all answered: nothing is read or sent in between */
}

static void flights_finish_all(store_t *store)
{
    while (store->flights_sent > 0) {
        flight_answer(store, &store->flights[store->first_flight], -1);
        flight_finish(store);
    }
}

/* Runs or sends a batch taken from the queue: one that can go out as one pipeline is sent
 * (also behind another in flight); any other runs once nothing is in flight. */
static void worker_start(store_t *store, request_t *batch)
{
    batch_counts_t counts = {0, 0, 0, 0, 0, 0, uv_hrtime()};
    if (store->flights != NULL && batch_one_trip(batch)) {
        if (store->flights_sent == 0)
            store->lost = store->driver->ready(store->connection) != 0;
        if (store->flights_sent > 0 || !store->lost) {
            flight_send(store, batch, &counts);
            return;
        }
        batch_run_careful(store, batch, &counts); /* lost: every one fails as unavailable */
    } else {
        flights_finish_all(store);
        batch_run(store, batch, &counts);
    }
    worker_post(store, batch, &counts);
}

/* With flights: reads the oldest one's answers, polling for more requests when there is room
 * for another flight, and posts it back once answered. */
static void worker_read(store_t *store)
{
    int wake_fd = store->flights_sent < FLIGHTS_MAX ? store->wake_fd : -1;
    if (!flight_answer(store, &store->flights[store->first_flight], wake_fd))
        flight_finish(store);
}

static void *worker_main(void *argument)
{
    store_t *store = argument;
    for (;;) {
        request_t *batch = store->flights_sent > 0 ? worker_poll(store) : worker_take(store);
        if (batch != NULL)
            worker_start(store, batch);
        else if (store->flights_sent > 0)
            worker_read(store);
        else
            break;
    }

    /* Closing the connection is disk work (a WAL checkpoint) kept off the loop thread. */
    store->driver->close(store->connection);
    user_cache_free(store);
    free(store->staged);
    store->staged = NULL;
    store->connection = NULL;
    pthread_mutex_lock(&store->mutex);
    store->worker_exited = 1;
    pthread_mutex_unlock(&store->mutex);
    /* The loop joins this thread before it closes the handle, so it is still valid here. */
    uv_async_send(&store->completions_async);
    return NULL;
}

/* ---- The loop thread ----------------------------------------------------------------------- */

static void request_free(request_t *request)
{
    json_decref(request->result);
    json_decref(request->params);
    free(request->args.payload);
    free(request->args.ids);
    free(request->args.id_digits);
    free(request);
}

static void request_complete(request_t *request)
{
    if (!request->refused)
        metrics_store_observe(request->operation, request->error != 0,
                              (double)(uv_hrtime() - request->started_ns) / 1e9);
    if (request->done != NULL)
        request->done(request->error, request->error != 0 ? request->message : NULL,
                      request->error != 0 ? NULL : request->result, request->data);
    request_free(request);
}

/* Logs the profile gathered since the last time, and starts a new one. */
static void profile_flush(store_t *store, uint64_t now)
{
    static store_profile_t profile; /* loop thread only; too large for the stack */
    pthread_mutex_lock(&store->mutex);
    profile = store->profile;
    memset(&store->profile, 0, sizeof(store->profile));
    pthread_mutex_unlock(&store->mutex);
    char who[96];
    snprintf(who, sizeof(who), "%s connection %zu of %zu, %.1f s", store->driver->name,
             store->lane_index + 1, store->lane_count,
             (double)(now - store->profile_since_ns) / 1e9);
    store->profile_since_ns = now;
    store_profile_log(&profile, who);
}

/* How long one pass of done callbacks (each may broadcast to every socket) may hold the loop
 * before it polls again: as long as the loop thread worked on everything else since the
 * previous pass (its CPU time: reads, handshakes, timers; not its wait in epoll nor the time
 * the scheduler kept it off a CPU), so that neither starves the other, within these bounds.
 * All at once, a batch of 1,024 presence notices held the loop for seconds, long enough for
 * HTTP request deadlines to expire with the requests unread; a fixed 2 ms pass let 10,000
 * connecting clients' reads take the loop while their completions waited for minutes. */
#define COMPLETIONS_PASS_MIN_NS (2u * 1000000u)
#define COMPLETIONS_PASS_MAX_NS (250u * 1000000u)

/* Loop-thread phases (store_profile.h): written and flushed by the loop thread only, so no
 * lock per request. */
static void profile_completion(store_t *store, const request_t *request, uint64_t now)
{
    if (request->refused)
        return;
    store_histogram_add(&store->profile.phases[STORE_PHASE_HANDBACK],
                        (now - request->posted_ns) / 1000);
    store_histogram_add(&store->profile.phases[STORE_PHASE_TOTAL],
                        (now - request->started_ns) / 1000);
}

/* What the next pass may take: the loop thread's CPU time since the previous pass, within the
 * bounds. */
static uint64_t pass_budget(const store_t *store, uint64_t cpu)
{
    uint64_t others = cpu > store->cpu_at_pass_end_ns ? cpu - store->cpu_at_pass_end_ns : 0;
    if (others < COMPLETIONS_PASS_MIN_NS)
        return COMPLETIONS_PASS_MIN_NS;
    return others > COMPLETIONS_PASS_MAX_NS ? COMPLETIONS_PASS_MAX_NS : others;
}

/* Runs the completed requests in order, including those that done callbacks refuse on the way
 * (requests made while the store closes). Bounded (pass_budget), it stops when its time is up
 * and wakes itself to go on after the loop's next poll; unbounded, it runs everything. */
static void completions_run(store_t *store, int bounded)
{
    uint64_t started = uv_hrtime(), now = started;
    uint64_t budget_ns = bounded ? pass_budget(store, loop_thread_cpu_ns()) : 0;
    int ran = 0;
    for (;;) {
        if (store->running.head == NULL) {
            pthread_mutex_lock(&store->mutex);
            store->running = store->completed; /* the whole queue, in order */
            store->completed.head = store->completed.tail = NULL;
            pthread_mutex_unlock(&store->mutex);
            if (store->running.head == NULL)
                break;
            /* Requests posted since now was read: their hand-back must not come out negative
             * (it wrapped to 2^64 microseconds in the profile). */
            now = uv_hrtime();
        }
        if (budget_ns != 0 && now - started >= budget_ns) {
            if (!store->async_closing) /* else its close callback runs the rest */
                uv_async_send(&store->completions_async);
            break;
        }
        request_t *request = queue_take(&store->running, 1);
        profile_completion(store, request, now);
        request_complete(request);
        ran = 1;
        now = uv_hrtime();
    }
    store->cpu_at_pass_end_ns = loop_thread_cpu_ns();
    if (ran)
        profile_add(store, STORE_PHASE_CALLBACKS, started, now);
    if (store->profile_period_ns != 0 && now - store->profile_since_ns >= store->profile_period_ns)
        profile_flush(store, now);
}

/* The loop's handle on the connection's socket (store.dispatch "loop", below). */
static void on_poll_closed(uv_handle_t *handle)
{
    free(handle);
}

static void loop_poll_close(store_t *store)
{
    if (store->poll == NULL)
        return;
    uv_close((uv_handle_t *)store->poll, on_poll_closed);
    store->poll = NULL;
}

static void store_free(store_t *store)
{
    free(store->staged);
    flights_free(store);
    pthread_mutex_destroy(&store->mutex);
    pthread_cond_destroy(&store->wake);
    free(store);
}

static void on_async_closed(uv_handle_t *handle)
{
    store_t *store = handle->data;
    completions_run(store, 0); /* the rest, and requests made after the handle started closing */
    void (*closed_cb)(void *data) = store->closed_cb;
    void *closed_data = store->closed_data;
    store_free(store);
    if (closed_cb != NULL)
        closed_cb(closed_data);
}

static void on_completions(uv_async_t *handle)
{
    store_t *store = handle->data;
    completions_run(store, 1);
    if (!store->closing || store->async_closing)
        return;
    pthread_mutex_lock(&store->mutex);
    int exited = store->worker_exited;
    pthread_mutex_unlock(&store->mutex);
    if (!exited)
        return;
    completions_run(store, 1);         /* posted between the first run and the exit */
    pthread_join(store->worker, NULL); /* immediate: the thread is returning */
    loop_poll_close(store);            /* closed before the store is freed */
    profile_flush(store, uv_hrtime());
    store->async_closing = 1;
    uv_close((uv_handle_t *)&store->completions_async, on_async_closed);
}

/* ---- The loop's turn with the connection (store.dispatch "loop") ----------------------------
 *
 * The chat's batches (nothing but messages and DMs: one round trip, BEGIN to COMMIT, sent
 * with libpq's non-blocking calls) can be sent and read by the loop thread itself, which
 * saves the two wake-ups of the worker in the chain loop → worker → backend → worker → loop.
 * Everything else (reads, upserts, the ROLLBACK and careful re-run of a failed batch, the
 * reconnection with its backoff) stays on the worker, whose statements block. The connection
 * is used by one thread at a time, and changes hands only when nothing is in flight on it:
 * - the idle worker lends it (worker_lend: nothing queued, nothing in flight);
 * - while lent, a request of a one-trip batch (or a refused one) waits in loop_queue for a
 *   flight (at most FLIGHTS_MAX, as on the worker; none while a test holds the queue); any
 *   other request, a connection that needs reconnecting, a batch that failed or store_close
 *   make the loop return it (loop_return): from then on every request, those still in
 *   loop_queue first, waits in pending, which the worker takes once it has the connection
 *   back, so the order is kept;
 * - once every flight is answered, the loop posts back those that succeeded (in order, as
 *   flight_finish does) and gives the connection back (loop_give_back) with the failed one
 *   and those behind it, which the worker finishes first (worker_take returns no batch):
 *   their ROLLBACK and careful re-run come right behind them, before anything else is sent.
 * Completions still go through the completed queue, in order, so a loop's batch completes
 * after every batch the worker posted before it lent the connection. */

/* The requests the loop runs itself: those of a one-trip batch, and refused ones (which
 * complete in their place). */
static int loop_runs(const request_t *request)
{
    return request->refused || pipelinable(request);
}

static void loop_unwatch(store_t *store)
{
    if (store->poll != NULL)
        uv_poll_stop(store->poll);
}

static void on_loop_poll(uv_poll_t *handle, int status, int events);

/* Waits (in the loop's poll) for the connection's socket: readable, and writable while a
 * pipeline waits to go out. 0, or -1 when the connection has no socket left: the next read
 * then fails what is in flight. A new socket (the worker reconnected) gets a new handle. */
static int loop_watch(store_t *store)
{
    int writable = 0;
    int fd = store->driver->pipeline_socket(store->connection, &writable);
    if (fd < 0)
        return -1;
    if (store->poll != NULL && store->poll_fd != fd)
        loop_poll_close(store);
    if (store->poll == NULL) {
        store->poll = malloc(sizeof(*store->poll));
        if (store->poll == NULL ||
            uv_poll_init(store->completions_async.loop, store->poll, fd) != 0) {
            /* As lane_request: nothing could complete the requests in flight then. */
            log_error("store: cannot watch the database connection");
            abort();
        }
        store->poll->data = store;
        store->poll_fd = fd;
    }
    if (uv_poll_start(store->poll, UV_READABLE | (writable ? UV_WRITABLE : 0), on_loop_poll) != 0)
        abort(); /* only on a closing handle or bad events */
    return 0;
}

/* Under mutex: the loop will give the connection back as soon as nothing is in flight. What
 * it had queued goes to pending (empty while the connection is lent), where every later
 * request joins it. */
static void loop_return_locked(store_t *store)
{
    if (store->owner != OWNER_LOOP)
        return;
    store->owner = OWNER_RETURNING;
    queue_append(&store->pending, store->loop_queue.head);
    store->loop_queue.head = store->loop_queue.tail = NULL;
}

static void loop_return(store_t *store)
{
    pthread_mutex_lock(&store->mutex);
    loop_return_locked(store);
    pthread_mutex_unlock(&store->mutex);
}

/* Nothing in flight: the worker has the connection again (and the failed flights, if any). */
static void loop_give_back(store_t *store)
{
    loop_unwatch(store);
    pthread_mutex_lock(&store->mutex);
    store->owner = OWNER_WORKER;
    pthread_cond_signal(&store->wake);
    pthread_mutex_unlock(&store->mutex);
}

/* Reads the answers that have come in, oldest flight first, without waiting. */
static void loop_read(store_t *store)
{
    for (size_t index = 0; index < store->flights_sent; index++) {
        flight_t *flight = &store->flights[(store->first_flight + index) % FLIGHTS_MAX];
        if (flight_answer(store, flight, SIOC__STORE_PIPELINE_NOWAIT))
            return; /* the rest has not come in */
    }
}

/* Posts back the answered flights, oldest first, while they succeeded: flight_finish then
 * needs no statement. At one that failed the loop returns the connection: its outcome (a
 * ROLLBACK, the careful re-run) is the worker's. */
static void loop_finish(store_t *store)
{
    while (store->flights_sent > 0 && store->flights[store->first_flight].answered) {
        if (store->flights[store->first_flight].rc != 0) {
            loop_return(store);
            return;
        }
        flight_finish(store);
    }
}

/* Sends queued requests as batches while fewer than FLIGHTS_MAX are in flight (none while a
 * test holds the queue: store_sqlite_hold, written by this thread only). The first one
 * after a pause needs a connection usable as it is: reconnecting (ready(): blocking, with its
 * backoff) is the worker's, so the loop returns the connection for it. */
static void loop_send(store_t *store)
{
    while (!store->held && store->loop_queue.head != NULL && store->flights_sent < FLIGHTS_MAX) {
        if (store->flights_sent == 0 && !store->driver->connected(store->connection)) {
            loop_return(store);
            return;
        }
        batch_counts_t counts = {0, 0, 0, 0, 0, 0, uv_hrtime()};
        request_t *batch = queue_take(&store->loop_queue, PIPELINE_MAX);
        pthread_mutex_lock(&store->mutex);
        profile_waited(store, batch);
        store->stats.loop_batches++;
        pthread_mutex_unlock(&store->mutex);
        flight_send(store, batch, &counts);
    }
}

/* The loop's turn, while it has the connection (lent or returning): answers read, batches
 * posted back, queued requests sent; then it waits on the socket while anything is in
 * flight, or, with nothing in flight, gives the connection back if it is returning it. */
static void loop_turn(store_t *store)
{
    for (;;) {
        loop_read(store);
        loop_finish(store);
        if (store->owner == OWNER_LOOP) { /* the loop's own to read: only it changes it now */
            loop_send(store);
            loop_finish(store); /* batches of refused requests only: answered when sent */
        }
        if (flights_unanswered(store) == 0)
            break;
        if (loop_watch(store) == 0)
            return;
    }
    loop_unwatch(store);
    if (store->owner == OWNER_RETURNING)
        loop_give_back(store);
}

static void on_loop_poll(uv_poll_t *handle, int status, int events)
{
    (void)status; /* an error shows in the read */
    (void)events;
    loop_turn(handle->data);
}

/* Queues a request for the worker, or straight for completion once the worker has taken its
 * last batch (refused requests only, made while closing): every earlier request has been
 * posted by then, so either way it completes after them. A refused request goes through the
 * worker too while it runs, so that it completes after the requests made before it. While
 * the connection is lent to the loop, the loop takes the request first (above). */
static void request_queue(store_t *store, request_t *request)
{
    int wake_loop = 0, wake = 0, turn = 0;
    pthread_mutex_lock(&store->mutex);
    if (store->queue_closed) {
        queue_push(&store->completed, request);
        wake_loop = !store->async_closing; /* else the close callback runs it */
    } else if (store->owner == OWNER_LOOP) {
        turn = 1;
        if (loop_runs(request)) {
            queue_push(&store->loop_queue, request);
        } else {
            loop_return_locked(store);
            queue_push(&store->pending, request);
        }
    } else {
        queue_push(&store->pending, request);
        pthread_cond_signal(&store->wake);
        wake = worker_wanted(store);
    }
    pthread_mutex_unlock(&store->mutex);
    if (wake_loop)
        uv_async_send(&store->completions_async);
    if (wake)
        wake_worker(store);
    if (turn)
        loop_turn(store);
}

/* Reads params into request->args; a problem fails the request (STORE_EINVALID). */
static void request_parse(request_t *request)
{
    reader_t reader;
    reader_start(&reader, request);
    const char *problem = operations[request->operation].parse(&reader);
    if (problem == NULL)
        return;
    request_fail(request, problem == MESSAGE_NO_MEMORY ? STORE_EIO : STORE_EINVALID, problem);
}

static void lane_request(store_t *store, store_operation_t operation, json_t *params,
                         store_done_cb done, void *data)
{
    request_t *request = calloc(1, sizeof(*request));
    if (request == NULL) {
        /* done must not run synchronously, and there is nothing to queue it with. */
        log_error("store: out of memory");
        abort();
    }
    request->operation = operation;
    request->started_ns = uv_hrtime();
    request->params = params;
    request->done = done;
    request->data = data;
    if (store->closing)
        request_fail(request, STORE_ECLOSED, MESSAGE_CLOSED);
    else if (!operation_known(operation))
        request_fail(request, STORE_EINVALID, "unknown operation");
    else
        request_parse(request);
    request->refused = request->error != 0;
    request_queue(store, request);
}

static void lane_close(store_t *store, void (*closed_cb)(void *data), void *data)
{
    store->closing = 1;
    store->closed_cb = closed_cb;
    store->closed_data = data;
    pthread_mutex_lock(&store->mutex);
    store->stopping = 1;
    store->held = 0;
    pthread_cond_signal(&store->wake);
    int wake = worker_wanted(store);
    int lent = store->owner == OWNER_LOOP;
    loop_return_locked(store); /* the worker finishes and closes */
    pthread_mutex_unlock(&store->mutex);
    if (wake)
        wake_worker(store);
    if (lent)
        loop_turn(store);
}

static void lane_stats(store_t *store, store_sqlite_stats_t *out)
{
    pthread_mutex_lock(&store->mutex);
    *out = store->stats;
    pthread_mutex_unlock(&store->mutex);
}

static void lane_hold(store_t *store, int hold)
{
    pthread_mutex_lock(&store->mutex);
    store->held = hold && !store->stopping;
    pthread_cond_signal(&store->wake);
    int wake = !store->held && worker_wanted(store);
    int lent = !store->held && store->owner == OWNER_LOOP; /* the loop sends what it held */
    pthread_mutex_unlock(&store->mutex);
    if (wake)
        wake_worker(store);
    if (lent)
        loop_turn(store);
}

static int lane_lent(store_t *store)
{
    pthread_mutex_lock(&store->mutex);
    int lent = store->owner == OWNER_LOOP;
    pthread_mutex_unlock(&store->mutex);
    return lent;
}

/* ---- Opening ------------------------------------------------------------------------------- */

/* The worker thread, with every signal blocked so that they reach the loop thread. */
static int start_worker(store_t *store)
{
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    int rc = pthread_create(&store->worker, NULL, worker_main, store);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    return rc;
}

static void on_failed_start_closed(uv_handle_t *handle)
{
    store_t *store = handle->data;
    store_free(store);
}

/* Starts the worker and the completion handle; on failure the store is released (after the
 * handle's close callback when it had been initialized). */
static int start_threads(store_t *store, uv_loop_t *loop, char *error, size_t error_size)
{
    pthread_mutex_init(&store->mutex, NULL);
    /* The worker's idle wait (worker_wait) counts on the monotonic clock. */
    pthread_condattr_t wake_attributes;
    pthread_condattr_init(&wake_attributes);
    pthread_condattr_setclock(&wake_attributes, CLOCK_MONOTONIC);
    pthread_cond_init(&store->wake, &wake_attributes);
    pthread_condattr_destroy(&wake_attributes);
    int rc = uv_async_init(loop, &store->completions_async, on_completions);
    if (rc != 0) {
        snprintf(error, error_size, "store: %s", uv_strerror(rc));
        store->driver->close(store->connection);
        store_free(store);
        return STORE_EIO;
    }
    store->completions_async.data = store;
    store->cpu_at_pass_end_ns = loop_thread_cpu_ns();
    rc = start_worker(store);
    if (rc != 0) {
        snprintf(error, error_size, "store: cannot start the worker thread: %s", strerror(rc));
        store->driver->close(store->connection);
        uv_close((uv_handle_t *)&store->completions_async, on_failed_start_closed);
        return STORE_EIO;
    }
    return 0;
}

/* The names operation's statement may use, and their param_t. */
static size_t custom_names(store_operation_t operation, const char **names, int *which)
{
    size_t count = 0;
    for (int param = 0; param < P_COUNT; param++) {
        if (custom_specs[operation].params & BIT(param)) {
            names[count] = param_names[param];
            which[count++] = param;
        }
    }
    return count;
}

/* Every column the operation needs is in columns ("a,b,c"): NULL, or the first missing one
 * (in missing). */
static const char *custom_missing_column(store_operation_t operation, const char *columns,
                                         char missing[64])
{
    const char *need = custom_specs[operation].columns;
    while (*need != '\0') {
        size_t length = strcspn(need, ",");
        snprintf(missing, 64, "%.*s", (int)length, need);
        int found = 0;
        for (const char *have = columns; *have != '\0' && !found;) {
            size_t have_length = strcspn(have, ",");
            found = have_length == length && memcmp(have, need, length) == 0;
            have += have_length + (have[have_length] == ',');
        }
        if (!found)
            return missing;
        need += length + (need[length] == ',');
    }
    return NULL;
}

/* Compiles, prepares and checks one application statement. 0, or STORE_EINVALID with error:
 * "<where>: <what is wrong>". */
static int custom_prepare(store_t *store, store_operation_t operation, const char *sql,
                          const char *where, char *error, size_t error_size)
{
    const char *names[P_COUNT];
    int which[P_COUNT];
    size_t name_count = custom_names(operation, names, which);
    sioc__store_sql_t compiled;
    char why[1024] = "", columns[1024] = "", missing[64];
    custom_t *custom = &store->custom[operation];
    int rc = sioc__store_sql_compile(sql, strlen(sql), store->driver->placeholder, names,
                                     name_count, &compiled, why, sizeof(why));
    if (rc == 0) {
        rc = store->driver->prepare(store->connection, operation, compiled.text, columns,
                                    sizeof(columns), why, sizeof(why));
        custom->count = compiled.count;
        for (size_t index = 0; index < compiled.count; index++)
            custom->params[index] = which[compiled.params[index]];
        sioc__store_sql_free(&compiled);
    }
    const char *absent = rc == 0 ? custom_missing_column(operation, columns, missing) : NULL;
    if (absent != NULL) {
        snprintf(why, sizeof(why), "the statement returns no column \"%s\" (it returns: %.400s)",
                 absent, columns[0] ? columns : "no columns");
        rc = -1;
    }
    if (rc != 0) {
        snprintf(error, error_size, "%s: %s", where, why);
        return STORE_EINVALID;
    }
    custom->active = 1;
    return 0;
}

static int customs_prepare(store_t *store, const store_options_t *options, char *error,
                           size_t error_size)
{
    for (int operation = 0; options->statements != NULL && operation < STORE_OPERATION_COUNT;
         operation++) {
        const char *sql = options->statements[operation];
        if (sql == NULL)
            continue;
        char where[256];
        const char *given = options->statement_where ? options->statement_where[operation] : NULL;
        if (given == NULL)
            snprintf(where, sizeof(where), "store.statements.%s", operations[operation].name);
        int rc = custom_prepare(store, (store_operation_t)operation, sql,
                                given != NULL ? given : where, error, error_size);
        if (rc != 0)
            return rc;
    }
    store->user_cache_size = options->user_cache_size;
    store->user_cache_ttl_ms = options->user_cache_ttl_ms;
    if (store->custom[STORE_USER_GET].active && store->user_cache_size > 0 &&
        store->user_cache_ttl_ms > 0 &&
        (store->users = calloc(store->user_cache_size, sizeof(*store->users))) == NULL) {
        snprintf(error, error_size, "store: out of memory");
        return STORE_EIO;
    }
    return 0;
}

/* The driver named by options (NULL: sqlite), or NULL. */
static const sioc__store_driver_t *driver_find(const char *name)
{
    if (name == NULL || strcmp(name, "sqlite") == 0)
        return &sioc__store_sqlite_driver;
    if (strcmp(name, "postgres") == 0 || strcmp(name, "postgresql") == 0)
        return &sioc__store_pg_driver;
    return NULL;
}

int store_check(const store_options_t *options, char *error, size_t error_size)
{
    const sioc__store_driver_t *driver = driver_find(options->driver);
    if (driver == NULL) {
        snprintf(error, error_size, "store: unknown driver \"%s\" (expected sqlite or postgres)",
                 options->driver);
        return STORE_EINVALID;
    }
    store_t *store = calloc(1, sizeof(*store));
    if (store == NULL) {
        snprintf(error, error_size, "store: out of memory");
        return STORE_EIO;
    }
    store->driver = driver;
    store->lane_count = 1;
    int rc = driver->open(options, &store->connection, error, error_size);
    if (rc == 0)
        rc = customs_prepare(store, options, error, error_size);
    driver->close(store->connection);
    user_cache_free(store);
    free(store);
    return rc;
}

/* SIOC_STORE_PROFILE_MS (a diagnostic, docs/store.md): how often the profile is logged. */
static uint64_t profile_period_ns(void)
{
    const char *text = getenv("SIOC_STORE_PROFILE_MS");
    long ms = text != NULL ? strtol(text, NULL, 10) : 0;
    return ms > 0 ? (uint64_t)ms * 1000000u : 0;
}

/* The flights (their staged requests in one block) and the worker's wake_fd. */
static int flights_open(store_t *store, char *error, size_t error_size)
{
    store->flights = calloc(FLIGHTS_MAX, sizeof(*store->flights));
    staged_t *staged = calloc((size_t)FLIGHTS_MAX * PIPELINE_MAX, sizeof(*staged));
    if (store->flights == NULL || staged == NULL) {
        free(staged);
        snprintf(error, error_size, "store: out of memory");
        return STORE_EIO;
    }
    for (size_t index = 0; index < FLIGHTS_MAX; index++)
        store->flights[index].staged = staged + index * PIPELINE_MAX;
    store->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (store->wake_fd < 0) {
        snprintf(error, error_size, "store: eventfd: %s", strerror(errno));
        return STORE_EIO;
    }
    return 0;
}

static int lane_open(uv_loop_t *loop, const sioc__store_driver_t *driver,
                     const store_options_t *options, store_t **out, char *error, size_t error_size)
{
    store_t *store = calloc(1, sizeof(*store));
    if (store == NULL) {
        snprintf(error, error_size, "store: out of memory");
        return STORE_EIO;
    }
    store->driver = driver;
    store->wake_fd = -1;
    store->lane_count = 1;
    store->profile_since_ns = uv_hrtime();
    store->profile_period_ns = profile_period_ns();
    int rc = driver->open(options, &store->connection, error, error_size);
    if (rc == 0)
        rc = customs_prepare(store, options, error, error_size);
    if (rc == 0 && driver->execute_pipeline != NULL &&
        (store->staged = calloc(PIPELINE_MAX, sizeof(*store->staged))) == NULL) {
        snprintf(error, error_size, "store: out of memory");
        rc = STORE_EIO;
    }
    if (rc == 0 && driver->pipeline_send != NULL)
        rc = flights_open(store, error, error_size);
    store->dispatch_loop = options->dispatch_loop && store->flights != NULL &&
                           driver->connected != NULL && driver->pipeline_socket != NULL;
    if (rc != 0) {
        driver->close(store->connection);
        user_cache_free(store);
        free(store->staged);
        flights_free(store);
        free(store);
        return rc;
    }
    rc = start_threads(store, loop, error, error_size);
    if (rc != 0)
        return rc;
    *out = store;
    return 0;
}

/* ---- The pool (store.poolSize > 1) ----------------------------------------------------------- */

#define POOL_SLOTS_PER_LANE 256 /* user slots (upsert counters) per lane */
#define HASH_START 14695981039346656037ull
#define HASH_PRIME 1099511628211ull

/* A request held in the router until the user upserts it depends on have completed. */
typedef struct pool_wait_s pool_wait_t;
struct pool_wait_s {
    pool_wait_t *next;
    store_operation_t operation;
    json_t *params;
    store_done_cb done;
    void *data;
    int need_count;
    size_t slots[2];
    uint64_t needs[2]; /* upserts_done[slots[i]] must reach needs[i] */
};

typedef struct pool_lane_s {
    store_t *store;    /* NULL once closed */
    store_t *router;   /* the pool's store */
    pool_wait_t *head; /* held requests, in the order they were made */
    pool_wait_t *tail;
} pool_lane_t;

typedef struct pool_s {
    pool_lane_t *lanes;
    size_t count;
    size_t open; /* lanes not closed yet */
    /* Per slot: the user upserts made (routed) and completed. */
    uint64_t *upserts_made;
    uint64_t *upserts_done;
    size_t slot_count; /* count * POOL_SLOTS_PER_LANE: slot % count is the user's lane */
} pool_t;

/* An upsert on its way: its completion counts for the requests that wait for it. */
typedef struct pool_upsert_s {
    store_t *router;
    size_t slot;
    store_done_cb done;
    void *data;
} pool_upsert_t;

/* Which params make an operation's ordering key (second: the other user of a pair), and the
 * users whose rows it needs. */
typedef struct pool_key_s {
    const char *first;
    const char *second;
    const char *users[2];
} pool_key_t;

static const pool_key_t pool_keys[STORE_OPERATION_COUNT] = {
    [STORE_USER_UPSERT] = {"id", NULL, {NULL, NULL}},
    [STORE_USER_GET] = {"id", NULL, {NULL, NULL}},
    [STORE_PRESENCE_SET] = {"userId", NULL, {NULL, NULL}},
    [STORE_PRESENCE_GET] = {"userId", NULL, {NULL, NULL}},
    [STORE_ROOM_CREATE] = {"id", NULL, {"ownerId", NULL}},
    [STORE_ROOM_GET] = {"id", NULL, {NULL, NULL}},
    [STORE_ROOM_ADD_MEMBER] = {"roomId", NULL, {"userId", NULL}},
    [STORE_ROOM_REMOVE_MEMBER] = {"roomId", NULL, {NULL, NULL}},
    [STORE_ROOM_MEMBERS] = {"roomId", NULL, {NULL, NULL}},
    [STORE_ROOM_IS_MEMBER] = {"roomId", NULL, {NULL, NULL}},
    [STORE_MESSAGE_ADD] = {"roomId", NULL, {"senderId", NULL}},
    [STORE_MESSAGE_HISTORY] = {"roomId", NULL, {NULL, NULL}},
    [STORE_DM_ADD] = {"senderId", "recipientId", {"senderId", "recipientId"}},
    [STORE_DM_HISTORY] = {"userId", "otherId", {NULL, NULL}},
    [STORE_NOTIFICATION_ADD] = {"userId", NULL, {NULL, NULL}},
    [STORE_NOTIFICATION_LIST] = {"userId", NULL, {NULL, NULL}},
    [STORE_NOTIFICATION_MARK_READ] = {"userId", NULL, {NULL, NULL}},
    [STORE_ACCESS_REQUEST_ADD] = {"roomId", NULL, {"userId", NULL}},
    [STORE_ACCESS_REQUEST_RESOLVE] = {"id", NULL, {NULL, NULL}},
    [STORE_ACCESS_REQUEST_GET] = {"id", NULL, {NULL, NULL}},
};

static uint64_t hash_bytes(uint64_t hash, const char *bytes, size_t length)
{
    for (size_t index = 0; index < length; index++) {
        hash ^= (unsigned char)bytes[index];
        hash *= HASH_PRIME; /* FNV-1a */
    }
    return hash;
}

/* The id at key in params as the store reads it (a string, or a whole number's decimal
 * text, so that 12 and "12" share a lane); 0 when there is none (the request will be refused
 * anyway, wherever it goes). */
static int pool_key_text(const json_t *params, const char *key, char digits[DIGITS_SIZE],
                         text_t *out)
{
    const json_t *value = key != NULL ? json_object_get(params, key) : NULL;
    json_int_t number;
    if (json_is_string(value)) {
        *out = (text_t){json_string_value(value), json_string_length(value), 1};
        return 1;
    }
    if (value == NULL || !json_whole_number(value, &number))
        return 0;
    int length = snprintf(digits, DIGITS_SIZE, "%" JSON_INTEGER_FORMAT, number);
    *out = (text_t){digits, (size_t)length, 1};
    return 1;
}

static int text_less(text_t a, text_t b)
{
    int order = memcmp(a.bytes, b.bytes, a.length < b.length ? a.length : b.length);
    return order < 0 || (order == 0 && a.length < b.length);
}

/* The hash of the operation's ordering key; 0 without one (lane 0). A pair is hashed in a
 * fixed order: both directions of a conversation share a lane. */
static uint64_t pool_key_hash(store_operation_t operation, const json_t *params)
{
    char digits[2][DIGITS_SIZE];
    text_t first, second;
    const pool_key_t *key = &pool_keys[operation];
    if (!pool_key_text(params, key->first, digits[0], &first))
        return 0;
    if (key->second == NULL)
        return hash_bytes(HASH_START, first.bytes, first.length);
    if (!pool_key_text(params, key->second, digits[1], &second))
        return 0;
    if (text_less(second, first)) {
        text_t swap = first;
        first = second;
        second = swap;
    }
    uint64_t hash = hash_bytes(HASH_START, first.bytes, first.length);
    return hash_bytes(hash_bytes(hash, "", 1), second.bytes, second.length);
}

/* The slot of the user named at key in params; 0 when none is named. */
static int pool_user_slot(const pool_t *pool, const json_t *params, const char *key, size_t *slot)
{
    char digits[DIGITS_SIZE];
    text_t id;
    if (!pool_key_text(params, key, digits, &id))
        return 0;
    *slot = (size_t)(hash_bytes(HASH_START, id.bytes, id.length) % pool->slot_count);
    return 1;
}

/* What wait must see completed before it runs on lane: the upserts made so far of each user
 * it names that another lane runs. */
static void pool_wait_needs(const pool_t *pool, size_t lane, pool_wait_t *wait)
{
    wait->need_count = 0;
    if (!operation_known(wait->operation))
        return;
    for (int index = 0; index < 2; index++) {
        size_t slot;
        const char *key = pool_keys[wait->operation].users[index];
        if (key == NULL || !pool_user_slot(pool, wait->params, key, &slot) ||
            slot % pool->count == lane || pool->upserts_done[slot] >= pool->upserts_made[slot])
            continue;
        wait->slots[wait->need_count] = slot;
        wait->needs[wait->need_count++] = pool->upserts_made[slot];
    }
}

static int pool_wait_ready(const pool_t *pool, const pool_wait_t *wait)
{
    for (int index = 0; index < wait->need_count; index++) {
        if (pool->upserts_done[wait->slots[index]] < wait->needs[index])
            return 0;
    }
    return 1;
}

static void pool_send(pool_lane_t *lane, pool_wait_t *wait)
{
    lane_request(lane->store, wait->operation, wait->params, wait->done, wait->data);
}

/* Sends every held request that may go now, each lane's in order. */
static void pool_drain(pool_t *pool, int all)
{
    for (size_t index = 0; index < pool->count; index++) {
        pool_lane_t *lane = &pool->lanes[index];
        while (lane->head != NULL && (all || pool_wait_ready(pool, lane->head))) {
            pool_wait_t *wait = lane->head;
            lane->head = wait->next;
            if (lane->head == NULL)
                lane->tail = NULL;
            pool_send(lane, wait);
            free(wait);
        }
    }
}

static void on_pool_upsert_done(int error, const char *message, json_t *result, void *data)
{
    pool_upsert_t *upsert = data;
    store_t *router = upsert->router;
    router->pool->upserts_done[upsert->slot]++;
    if (upsert->done != NULL)
        upsert->done(error, message, result, upsert->data);
    free(upsert);
    pool_drain(router->pool, 0);
}

static void *pool_alloc(size_t size)
{
    void *memory = calloc(1, size);
    if (memory == NULL) {
        /* As store_request: done must not run synchronously. */
        log_error("store: out of memory");
        abort();
    }
    return memory;
}

/* Counts an upsert of a user: wait's done goes through on_pool_upsert_done. */
static void pool_upsert_track(store_t *router, pool_wait_t *wait)
{
    pool_t *pool = router->pool;
    size_t slot;
    if (!pool_user_slot(pool, wait->params, "id", &slot))
        return;
    pool_upsert_t *upsert = pool_alloc(sizeof(*upsert));
    *upsert = (pool_upsert_t){router, slot, wait->done, wait->data};
    pool->upserts_made[slot]++;
    wait->done = on_pool_upsert_done;
    wait->data = upsert;
}

static void pool_request(store_t *router, store_operation_t operation, json_t *params,
                         store_done_cb done, void *data)
{
    pool_t *pool = router->pool;
    pool_wait_t wait = {NULL, operation, params, done, data, 0, {0, 0}, {0, 0}};
    if (router->closing) {
        /* Refused by any lane still open (there is one until the router's closed_cb). */
        for (size_t index = 0; index < pool->count; index++) {
            if (pool->lanes[index].store != NULL) {
                pool_send(&pool->lanes[index], &wait);
                return;
            }
        }
    }
    size_t lane =
        operation_known(operation) ? (size_t)(pool_key_hash(operation, params) % pool->count) : 0;
    if (operation == STORE_USER_UPSERT)
        pool_upsert_track(router, &wait);
    pool_wait_needs(pool, lane, &wait);
    pool_lane_t *target = &pool->lanes[lane];
    if (target->head == NULL && wait.need_count == 0) {
        pool_send(target, &wait);
        return;
    }
    pool_wait_t *held = pool_alloc(sizeof(*held));
    *held = wait;
    if (target->tail != NULL)
        target->tail->next = held;
    else
        target->head = held;
    target->tail = held;
}

static void pool_free(store_t *router)
{
    pool_t *pool = router->pool;
    free(pool->lanes);
    free(pool->upserts_made);
    free(pool->upserts_done);
    free(pool);
    free(router);
}

static void on_lane_closed(void *data)
{
    pool_lane_t *lane = data;
    store_t *router = lane->router;
    lane->store = NULL;
    if (--router->pool->open > 0)
        return;
    void (*closed_cb)(void *data) = router->closed_cb;
    void *closed_data = router->closed_data;
    pool_free(router);
    if (closed_cb != NULL)
        closed_cb(closed_data);
}

/* The requests still held run, in order, on their lanes (which then finish them before
 * closing); a dependency on another lane's upsert is not waited for any more. */
static void pool_close(store_t *router)
{
    pool_t *pool = router->pool;
    pool_drain(pool, 1);
    for (size_t index = 0; index < pool->count; index++)
        lane_close(pool->lanes[index].store, on_lane_closed, &pool->lanes[index]);
}

/* Opens count lanes on driver; each gets a share of the user cache. */
static int pool_open(uv_loop_t *loop, const sioc__store_driver_t *driver,
                     const store_options_t *options, store_t **out, char *error, size_t error_size)
{
    size_t count = options->pool_size;
    store_t *router = calloc(1, sizeof(*router));
    pool_t *pool = calloc(1, sizeof(*pool));
    if (router == NULL || pool == NULL ||
        (pool->lanes = calloc(count, sizeof(*pool->lanes))) == NULL ||
        (pool->upserts_made = calloc(count * POOL_SLOTS_PER_LANE, sizeof(uint64_t))) == NULL ||
        (pool->upserts_done = calloc(count * POOL_SLOTS_PER_LANE, sizeof(uint64_t))) == NULL) {
        if (pool != NULL) {
            free(pool->lanes);
            free(pool->upserts_made);
        }
        free(pool);
        free(router);
        snprintf(error, error_size, "store: out of memory");
        return STORE_EIO;
    }
    router->pool = pool;
    router->driver = driver;
    pool->count = count;
    pool->slot_count = count * POOL_SLOTS_PER_LANE;
    store_options_t lane_options = *options;
    lane_options.user_cache_size = (uint32_t)((options->user_cache_size + count - 1) / count);
    for (; pool->open < count; pool->open++) {
        pool_lane_t *lane = &pool->lanes[pool->open];
        lane->router = router;
        int rc = lane_open(loop, driver, &lane_options, &lane->store, error, error_size);
        if (rc == 0) {
            lane->store->lane_index = pool->open;
            lane->store->lane_count = count;
        }
        if (rc != 0) {
            /* The lanes opened go when the loop runs again; the router is not theirs. */
            for (size_t index = 0; index < pool->open; index++)
                lane_close(pool->lanes[index].store, NULL, NULL);
            free(pool->lanes);
            free(pool->upserts_made);
            free(pool->upserts_done);
            free(pool);
            free(router);
            return rc;
        }
    }
    *out = router;
    return 0;
}

/* ---- The store's interface: one lane, or the pool's router ---------------------------------- */

int store_open(uv_loop_t *loop, const store_options_t *options, store_t **out, char *error,
               size_t error_size)
{
    *out = NULL;
    const sioc__store_driver_t *driver = driver_find(options != NULL ? options->driver : NULL);
    if (driver == NULL) {
        snprintf(error, error_size, "store: unknown driver \"%s\" (expected sqlite or postgres)",
                 options->driver);
        return STORE_EINVALID;
    }
    /* SQLite has one writer at a time: more connections would only wait for each other. */
    int rc = options->pool_size > 1 && driver != &sioc__store_sqlite_driver
                 ? pool_open(loop, driver, options, out, error, error_size)
                 : lane_open(loop, driver, options, out, error, error_size);
    if (rc == 0 && options->dispatch_loop && driver->pipeline_socket != NULL)
        log_info("store: %s: the loop thread sends the chat's batches (store.dispatch \"loop\")",
                 driver->name);
    /* A profiled store also says how long the loop is held: what its hand-back waits behind. */
    if (rc == 0 && profile_period_ns() != 0)
        (*out)->loop_profile = loop_profile_start(loop, profile_period_ns() / 1000000u);
    return rc;
}

void store_request(store_t *store, store_operation_t operation, json_t *params, store_done_cb done,
                   void *data)
{
    if (store->pool != NULL)
        pool_request(store, operation, params, done, data);
    else
        lane_request(store, operation, params, done, data);
}

void store_close(store_t *store, void (*closed_cb)(void *data), void *data)
{
    if (store == NULL || store->closing)
        return;
    loop_profile_stop(store->loop_profile);
    store->loop_profile = NULL;
    if (store->pool == NULL) {
        lane_close(store, closed_cb, data);
        return;
    }
    store->closing = 1;
    store->closed_cb = closed_cb;
    store->closed_data = data;
    pool_close(store);
}

/* One readiness read per lane, answered together. */
typedef struct ping_s {
    size_t remaining;
    int error;
    const char *message;
    store_done_cb done;
    void *data;
} ping_t;

static void on_ping_read(int error, const char *message, json_t *result, void *data)
{
    ping_t *ping = data;
    (void)result;
    /* The probe reads a user that never exists: "not found" is the store answering. */
    if (error != 0 && error != STORE_ENOTFOUND && ping->error == 0) {
        ping->error = error;
        ping->message = message;
    }
    if (--ping->remaining > 0)
        return;
    ping->done(ping->error, ping->error != 0 ? ping->message : NULL, NULL, ping->data);
    free(ping);
}

static json_t *ping_params(void)
{
    return json_pack("{s:s}", "id", "sioc-readiness-probe");
}

void store_ping(store_t *store, store_done_cb done, void *data)
{
    ping_t *ping = pool_alloc(sizeof(*ping));
    ping->done = done;
    ping->data = data;
    if (store->pool == NULL || store->closing) {
        ping->remaining = 1;
        store_request(store, STORE_USER_GET, ping_params(), on_ping_read, ping);
        return;
    }
    ping->remaining = store->pool->count;
    for (size_t index = 0; index < store->pool->count; index++)
        lane_request(store->pool->lanes[index].store, STORE_USER_GET, ping_params(), on_ping_read,
                     ping);
}

void store_sqlite_stats(store_t *store, store_sqlite_stats_t *out)
{
    if (store->pool == NULL) {
        lane_stats(store, out);
        return;
    }
    memset(out, 0, sizeof(*out));
    for (size_t index = 0; index < store->pool->count; index++) {
        store_sqlite_stats_t lane;
        lane_stats(store->pool->lanes[index].store, &lane);
        out->requests += lane.requests;
        out->batches += lane.batches;
        out->transactions += lane.transactions;
        out->failed_commits += lane.failed_commits;
        out->pipelines += lane.pipelines;
        out->pipelined += lane.pipelined;
        out->releases += lane.releases;
        out->loop_batches += lane.loop_batches;
        if (lane.largest_batch > out->largest_batch)
            out->largest_batch = lane.largest_batch;
        if (lane.most_in_flight > out->most_in_flight)
            out->most_in_flight = lane.most_in_flight;
    }
}

void store_sqlite_hold(store_t *store, int hold)
{
    if (store->pool == NULL) {
        lane_hold(store, hold);
        return;
    }
    for (size_t index = 0; index < store->pool->count; index++)
        lane_hold(store->pool->lanes[index].store, hold);
}

int store_sqlite_lent(store_t *store)
{
    if (store->pool == NULL)
        return lane_lent(store);
    for (size_t index = 0; index < store->pool->count; index++) {
        if (!lane_lent(store->pool->lanes[index].store))
            return 0;
    }
    return 1;
}
