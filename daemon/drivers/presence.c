/* Cluster-wide presence (see presence.h). The messages, one argument each:
 *   {"node": <adapter uid>, "op": "up" | "down" | "sync", "users": [<user id>, ...]}
 * Ids travel as the tokens carry them (strings or integers) and are compared by their text, as
 * the driver's user rooms do. A node that hears a sync from a node it did not know answers with
 * its own at once, so a node that starts learns the others' users within one round trip. */
#include "presence.h"

#include <sioc_adapter.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "driver_util.h"
#include "log.h"

#define EVENT "sioc:presence"

typedef struct member_s {
    char key[DRIVER_MAX_ID_BYTES + 1];
    json_t *id;
    UT_hash_handle hh;
} member_t;

typedef struct node_s {
    char uid[SIOC_ADAPTER_UID_SIZE];
    uint64_t seen_ms;
    member_t *users;
    UT_hash_handle hh;
} node_t;

struct presence_s {
    sioc_namespace_t *nsp;
    uv_loop_t *loop;
    uv_timer_t timer;
    uint32_t interval_ms;
    member_t *local; /* users with a socket on this node */
    node_t *nodes;   /* the other nodes, by uid */
    presence_gone_cb gone;
    void *data;
};

/* ---- sets of users -------------------------------------------------------------------------- */

static member_t *find_member(member_t *set, const char *key)
{
    member_t *member = NULL;
    HASH_FIND_STR(set, key, member);
    return member;
}

static void add_member(member_t **set, const char *key, json_t *id)
{
    if (find_member(*set, key) != NULL)
        return;
    member_t *member = calloc(1, sizeof(*member));
    if (member == NULL)
        return;
    snprintf(member->key, sizeof(member->key), "%s", key);
    member->id = json_incref(id);
    HASH_ADD_STR(*set, key, member);
}

static void remove_member(member_t **set, const char *key)
{
    member_t *member = find_member(*set, key);
    if (member == NULL)
        return;
    HASH_DEL(*set, member);
    json_decref(member->id);
    free(member);
}

static void clear_members(member_t **set)
{
    member_t *member, *next;
    HASH_ITER(hh, *set, member, next)
    {
        HASH_DEL(*set, member);
        json_decref(member->id);
        free(member);
    }
}

static json_t *members_json(member_t *set)
{
    json_t *ids = json_array();
    for (member_t *member = set; ids != NULL && member != NULL; member = member->hh.next)
        json_array_append(ids, member->id);
    return ids;
}

/* 1 when a node other than except (NULL: any) has the user. */
static int elsewhere(const presence_t *presence, const char *key, const node_t *except)
{
    for (node_t *node = presence->nodes; node != NULL; node = node->hh.next) {
        if (node != except && find_member(node->users, key) != NULL)
            return 1;
    }
    return 0;
}

/* ---- messages ------------------------------------------------------------------------------- */

static void tell(presence_t *presence, const char *op, json_t *users)
{
    json_t *message = json_pack("{s:s,s:s,s:o}", "node", sioc_namespace_adapter_uid(presence->nsp),
                                "op", op, "users", users);
    if (message != NULL)
        sioc_namespace_server_side_emit(presence->nsp, EVENT, json_pack("[o]", message));
}

static void send_one(presence_t *presence, const char *op, json_t *user_id)
{
    tell(presence, op, json_pack("[O]", user_id));
}

static node_t *node_of(presence_t *presence, const char *uid, int *created)
{
    node_t *node = NULL;
    HASH_FIND_STR(presence->nodes, uid, node);
    *created = 0;
    if (node != NULL || strlen(uid) >= SIOC_ADAPTER_UID_SIZE)
        return node;
    node = calloc(1, sizeof(*node));
    if (node == NULL)
        return NULL;
    snprintf(node->uid, sizeof(node->uid), "%s", uid);
    HASH_ADD_STR(presence->nodes, uid, node);
    *created = 1;
    return node;
}

static const char *text_of(json_t *value)
{
    const char *text = json_string_value(value);
    /* A NUL inside would name another node once it is a C string. */
    return text != NULL && strlen(text) == json_string_length(value) ? text : NULL;
}

static int refuse(presence_message_t *out, const char **error, const char *why)
{
    memset(out, 0, sizeof(*out));
    *error = why;
    return -1;
}

int presence_decode(json_t *args, presence_message_t *out, const char **error)
{
    memset(out, 0, sizeof(*out));
    json_t *message = json_array_get(args, 0);
    if (!json_is_array(args) || json_array_size(args) != 1 || !json_is_object(message))
        return refuse(out, error, "not one object");
    const char *node = text_of(json_object_get(message, "node"));
    if (node == NULL || node[0] == '\0' || strlen(node) >= SIOC_ADAPTER_UID_SIZE)
        return refuse(out, error, "bad node");
    const char *op = text_of(json_object_get(message, "op"));
    if (op != NULL && strcmp(op, "up") == 0)
        out->op = PRESENCE_UP;
    else if (op != NULL && strcmp(op, "down") == 0)
        out->op = PRESENCE_DOWN;
    else if (op != NULL && strcmp(op, "sync") == 0)
        out->op = PRESENCE_SYNC;
    else
        return refuse(out, error, "bad op");
    json_t *users = json_object_get(message, "users");
    if (!json_is_array(users) || json_array_size(users) > PRESENCE_MAX_USERS)
        return refuse(out, error, "bad users");
    size_t index;
    json_t *id;
    json_array_foreach(users, index, id)
    {
        char key[DRIVER_MAX_ID_BYTES + 1];
        if (driver_id_text(id, key) != 0)
            return refuse(out, error, "bad user id");
    }
    out->node = node;
    out->users = users;
    return 0;
}

int presence_node_gone(uint64_t now_ms, uint64_t seen_ms, uint32_t interval_ms)
{
    /* seen_ms after now_ms (a clock read earlier) is not an absence */
    return now_ms > seen_ms && now_ms - seen_ms > (uint64_t)interval_ms * PRESENCE_MISSED_INTERVALS;
}

static void apply(node_t *node, const presence_message_t *message)
{
    if (message->op == PRESENCE_SYNC)
        clear_members(&node->users);
    size_t index;
    json_t *id;
    json_array_foreach(message->users, index, id)
    {
        char key[DRIVER_MAX_ID_BYTES + 1];
        if (driver_id_text(id, key) != 0)
            continue; /* presence_decode refused those */
        if (message->op == PRESENCE_DOWN)
            remove_member(&node->users, key);
        else
            add_member(&node->users, key, id);
    }
}

static void on_message(sioc_namespace_t *nsp, const sioc_event_t *event,
                       sioc_adapter_reply_t *reply, void *data)
{
    presence_t *presence = data;
    if (reply != NULL)
        sioc_adapter_reply(reply, NULL); /* nobody should wait for these; do not keep them */
    if (strcmp(event->name, EVENT) != 0) {
        log_warn("chat %s: ignored a server-side event from another node that is not presence",
                 sioc_namespace_name(nsp));
        return;
    }
    presence_message_t message;
    const char *error;
    if (presence_decode(event->args, &message, &error) != 0) {
        log_warn("chat %s: ignored a malformed presence message from another node (%s)",
                 sioc_namespace_name(nsp), error);
        return;
    }
    if (strcmp(message.node, sioc_namespace_adapter_uid(nsp)) == 0)
        return;
    int created;
    node_t *node = node_of(presence, message.node, &created);
    if (node == NULL)
        return;
    node->seen_ms = uv_now(presence->loop);
    apply(node, &message);
    if (created && message.op == PRESENCE_SYNC)
        tell(presence, "sync", members_json(presence->local));
}

/* ---- nodes that went away ------------------------------------------------------------------- */

/* The live node (this one included) with the smallest uid says that a dead node's users left,
 * so that it is said once. */
static int is_announcer(const presence_t *presence)
{
    const char *self = sioc_namespace_adapter_uid(presence->nsp);
    for (node_t *node = presence->nodes; node != NULL; node = node->hh.next) {
        if (strcmp(node->uid, self) < 0)
            return 0;
    }
    return 1;
}

static void forget_node(presence_t *presence, node_t *node)
{
    HASH_DEL(presence->nodes, node);
    int announce = is_announcer(presence);
    log_warn("chat %s: node %s not heard of for %u ms: its users are offline",
             sioc_namespace_name(presence->nsp), node->uid,
             presence->interval_ms * PRESENCE_MISSED_INTERVALS);
    for (member_t *member = node->users; member != NULL; member = member->hh.next) {
        if (announce && find_member(presence->local, member->key) == NULL &&
            !elsewhere(presence, member->key, NULL))
            presence->gone(member->id, presence->data);
    }
    clear_members(&node->users);
    free(node);
}

static void on_tick(uv_timer_t *timer)
{
    presence_t *presence = timer->data;
    uint64_t now = uv_now(presence->loop);
    node_t *node, *next;
    HASH_ITER(hh, presence->nodes, node, next)
    {
        if (presence_node_gone(now, node->seen_ms, presence->interval_ms))
            forget_node(presence, node);
    }
    tell(presence, "sync", members_json(presence->local));
}

/* ---- the driver's side ---------------------------------------------------------------------- */

presence_t *presence_new(sioc_namespace_t *nsp, uv_loop_t *loop, uint32_t interval_ms,
                         presence_gone_cb gone, void *data)
{
    presence_t *presence = calloc(1, sizeof(*presence));
    if (presence == NULL)
        return NULL;
    presence->nsp = nsp;
    presence->loop = loop;
    presence->interval_ms = interval_ms > 0 ? interval_ms : 1;
    presence->gone = gone;
    presence->data = data;
    uv_timer_init(loop, &presence->timer);
    presence->timer.data = presence;
    uv_timer_start(&presence->timer, on_tick, presence->interval_ms, presence->interval_ms);
    sioc_namespace_on_server_side_emit(nsp, on_message, presence);
    tell(presence, "sync", json_array()); /* who is there? (they answer with their syncs) */
    return presence;
}

static void on_timer_closed(uv_handle_t *handle)
{
    presence_t *presence = handle->data;
    clear_members(&presence->local);
    node_t *node, *next;
    HASH_ITER(hh, presence->nodes, node, next)
    {
        HASH_DEL(presence->nodes, node);
        clear_members(&node->users);
        free(node);
    }
    free(presence);
}

void presence_free(presence_t *presence)
{
    if (presence == NULL)
        return;
    uv_timer_stop(&presence->timer);
    uv_close((uv_handle_t *)&presence->timer, on_timer_closed);
}

int presence_up(presence_t *presence, json_t *user_id)
{
    char key[DRIVER_MAX_ID_BYTES + 1];
    if (driver_id_text(user_id, key) != 0)
        return 1;
    add_member(&presence->local, key, user_id);
    send_one(presence, "up", user_id);
    return !elsewhere(presence, key, NULL);
}

int presence_down(presence_t *presence, json_t *user_id)
{
    char key[DRIVER_MAX_ID_BYTES + 1];
    if (driver_id_text(user_id, key) != 0)
        return 1;
    remove_member(&presence->local, key);
    send_one(presence, "down", user_id);
    return !elsewhere(presence, key, NULL);
}
