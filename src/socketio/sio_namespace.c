/* Namespaces: the registry (static, and dynamic children created through a parent's filter),
 * event handlers, and the middleware chain that may finish asynchronously. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "socketio/sio_internal.h"

static char *normalized_name(const char *name)
{
    size_t length = strlen(name);
    int add_slash = name[0] != '/';
    char *copy = malloc(length + 1 + (size_t)add_slash);
    if (copy == NULL)
        return NULL;
    copy[0] = '/';
    memcpy(copy + add_slash, name, length + 1);
    return copy;
}

/* A dynamic parent is no namespace on the wire: it keeps the in-memory adapter, its children
 * get the configured one. */
static int create_adapter(sioc_namespace_t *nsp, int is_parent)
{
    sioc_adapter_factory_cb factory = nsp->server->options.adapter;
    void *data = nsp->server->options.adapter_data;
    if (factory == NULL || is_parent) {
        factory = sioc_memory_adapter_factory;
        data = NULL;
    }
    return factory(nsp, &sioc__sio_adapter_local, data, &nsp->adapter);
}

sioc_namespace_t *sioc__sio_namespace_new(sioc_server_t *server, const char *name,
                                          sioc_namespace_t *parent, int is_parent)
{
    sioc_namespace_t *nsp = calloc(1, sizeof(*nsp));
    if (nsp == NULL)
        return NULL;
    nsp->server = server;
    nsp->parent = parent;
    sioc__index_init(&nsp->sockets_by_id, offsetof(sioc_socket_t, id));
    nsp->name = normalized_name(name);
    nsp->index = nsp->name ? sioc__memory_adapter_new(nsp) : NULL;
    if (nsp->index == NULL || create_adapter(nsp, is_parent) != 0) {
        sioc__memory_adapter_free(nsp->index);
        free(nsp->name);
        free(nsp);
        return NULL;
    }
    return nsp;
}

void sioc__sio_namespace_free(sioc_namespace_t *nsp)
{
    if (nsp == NULL)
        return;
    sioc__sio_handler_t *handler, *next;
    HASH_ITER(hh, nsp->handlers, handler, next)
    {
        HASH_DEL(nsp->handlers, handler);
        free(handler->event);
        free(handler);
    }
    /* Rooms first: the adapter hears of each room that goes. */
    sioc__memory_adapter_free(nsp->index);
    nsp->adapter->ops->destroy(nsp->adapter);
    free(nsp->middlewares);
    free(nsp->name);
    sioc__index_clear(&nsp->sockets_by_id);
    free(nsp);
}

static sioc_namespace_t *find_namespace(sioc_server_t *server, const char *name)
{
    sioc_namespace_t *nsp = NULL;
    HASH_FIND_STR(server->namespaces, name, nsp);
    return nsp;
}

static sioc_namespace_t *register_namespace(sioc_server_t *server, const char *name,
                                            sioc_namespace_t *parent)
{
    sioc_namespace_t *nsp = sioc__sio_namespace_new(server, name, parent, 0);
    if (nsp == NULL)
        return NULL;
    HASH_ADD_KEYPTR(hh, server->namespaces, nsp->name, strlen(nsp->name), nsp);
    SIOC__SIO_OBSERVE(server, on_namespace, nsp);
    return nsp;
}

sioc_namespace_t *sioc_server_of(sioc_server_t *server, const char *name)
{
    char *normalized = normalized_name(name);
    if (normalized == NULL)
        return NULL;
    sioc_namespace_t *nsp = find_namespace(server, normalized);
    if (nsp == NULL)
        nsp = register_namespace(server, normalized, NULL);
    free(normalized);
    return nsp;
}

sioc_namespace_t *sioc_server_of_dynamic(sioc_server_t *server, sioc_namespace_filter_cb filter,
                                         void *data)
{
    char name[64];
    snprintf(name, sizeof(name), "/_dynamic_parent_%p", (void *)filter);
    sioc_namespace_t *parent = sioc__sio_namespace_new(server, name, NULL, 1);
    if (parent == NULL)
        return NULL;
    parent->filter = filter;
    parent->filter_data = data;
    parent->next_dynamic = server->dynamic_parents;
    server->dynamic_parents = parent;
    return parent;
}

sioc_namespace_t *sioc__sio_namespace_lookup(sioc_server_t *server, const char *name, json_t *auth)
{
    sioc_namespace_t *nsp = find_namespace(server, name);
    if (nsp != NULL)
        return nsp;
    for (sioc_namespace_t *parent = server->dynamic_parents; parent != NULL;
         parent = parent->next_dynamic) {
        if (parent->filter(name, auth, parent->filter_data))
            return register_namespace(server, name, parent);
    }
    return NULL;
}

void sioc__sio_namespace_for_each_target(sioc_namespace_t *nsp, sioc__sio_namespace_visit_cb visit,
                                         void *data)
{
    if (nsp->filter == NULL) {
        visit(nsp, data);
        return;
    }
    sioc_namespace_t *child, *next;
    HASH_ITER(hh, nsp->server->namespaces, child, next)
    {
        if (child->parent == nsp)
            visit(child, data);
    }
}

/* ---- handlers ------------------------------------------------------------------------------- */

static int add_handler(sioc_namespace_t *nsp, const char *event, sioc_event_cb callback, void *data,
                       int passthrough)
{
    sioc__sio_handler_t *handler = NULL;
    HASH_FIND_STR(nsp->handlers, event, handler);
    if (handler == NULL) {
        handler = calloc(1, sizeof(*handler));
        if (handler == NULL || (handler->event = strdup(event)) == NULL) {
            free(handler);
            return SIOC_ENOMEM;
        }
        HASH_ADD_KEYPTR(hh, nsp->handlers, handler->event, strlen(handler->event), handler);
    }
    handler->callback = callback;
    handler->data = data;
    handler->passthrough = (uint8_t)passthrough;
    return 0;
}

int sioc_namespace_on(sioc_namespace_t *nsp, const char *event, sioc_event_cb callback, void *data)
{
    return add_handler(nsp, event, callback, data, 0);
}

int sioc_namespace_on_passthrough(sioc_namespace_t *nsp, const char *event, sioc_event_cb callback,
                                  void *data)
{
    int rc = add_handler(nsp, event, callback, data, 1);
    /* From now on the decoders of this server keep plain events as their bytes. */
    if (rc == 0)
        nsp->server->keep_event_bytes = 1;
    return rc;
}

int sioc_namespace_use(sioc_namespace_t *nsp, sioc_middleware_cb middleware, void *data)
{
    sioc__sio_middleware_t *middlewares =
        realloc(nsp->middlewares, (nsp->middleware_count + 1) * sizeof(*middlewares));
    if (middlewares == NULL)
        return SIOC_ENOMEM;
    middlewares[nsp->middleware_count].callback = middleware;
    middlewares[nsp->middleware_count].data = data;
    nsp->middlewares = middlewares;
    nsp->middleware_count++;
    return 0;
}

#define SET_CALLBACK(field)                                                                        \
    do {                                                                                           \
        nsp->field.callback = (void *)callback;                                                    \
        nsp->field.data = data;                                                                    \
    } while (0)

void sioc_namespace_on_connection(sioc_namespace_t *nsp, sioc_connection_cb callback, void *data)
{
    SET_CALLBACK(on_connection);
}

void sioc_namespace_on_disconnecting(sioc_namespace_t *nsp, sioc_disconnect_cb callback, void *data)
{
    SET_CALLBACK(on_disconnecting);
}

void sioc_namespace_on_disconnect(sioc_namespace_t *nsp, sioc_disconnect_cb callback, void *data)
{
    SET_CALLBACK(on_disconnect);
}

void sioc_namespace_on_socket_data(sioc_namespace_t *nsp, sioc_socket_data_cb callback, void *data)
{
    SET_CALLBACK(on_socket_data);
}

void sioc_namespace_on_socket_error(sioc_namespace_t *nsp, sioc_socket_error_cb callback,
                                    void *data)
{
    SET_CALLBACK(on_socket_error);
}

void sioc_namespace_on_any(sioc_namespace_t *nsp, sioc_event_cb callback, void *data)
{
    SET_CALLBACK(on_any);
}

void sioc_namespace_on_any_outgoing(sioc_namespace_t *nsp, sioc_event_cb callback, void *data)
{
    SET_CALLBACK(on_any_outgoing);
}

void sioc_namespace_on_server_side_emit(sioc_namespace_t *nsp, sioc_server_side_cb callback,
                                        void *data)
{
    SET_CALLBACK(on_server_side_emit);
}

const char *sioc_namespace_adapter_uid(const sioc_namespace_t *nsp)
{
    return nsp->adapter->uid;
}

const char *sioc_namespace_name(const sioc_namespace_t *nsp)
{
    return nsp->name;
}

sioc_server_t *sioc_namespace_server(const sioc_namespace_t *nsp)
{
    return nsp->server;
}

size_t sioc_namespace_socket_count(const sioc_namespace_t *nsp)
{
    return nsp->socket_count;
}

size_t sioc_namespace_room_size(const sioc_namespace_t *nsp, const char *room_name)
{
    return sioc__memory_adapter_room_size(nsp->index, room_name);
}

sioc_socket_t *sioc_namespace_socket(sioc_namespace_t *nsp, const char *id)
{
    return sioc__index_find(&nsp->sockets_by_id, id);
}

/* ---- middleware -------------------------------------------------------------------------------
 */

static void run_current(sioc_next_t *next)
{
    sioc_namespace_t *root = sioc__sio_namespace_root(next->socket->nsp);
    sioc__sio_middleware_t *middleware = &root->middlewares[next->index];
    middleware->callback(next->socket, next, middleware->data);
}

static void finish_chain(sioc_next_t *next)
{
    sioc__sio_socket_unref(next->socket);
    json_decref(next->auth);
    free(next);
}

void sioc__sio_namespace_run_middlewares(sioc_socket_t *socket, json_t *auth)
{
    sioc_namespace_t *root = sioc__sio_namespace_root(socket->nsp);
    if (root->middleware_count == 0) {
        sioc__sio_socket_connected(socket);
        return;
    }
    sioc_next_t *next = calloc(1, sizeof(*next));
    if (next == NULL) {
        sioc__sio_socket_refuse(socket, "Server out of memory", NULL);
        return;
    }
    next->socket = socket;
    next->auth = json_incref(auth);
    sioc__sio_socket_ref(socket);
    run_current(next);
}

void sioc_next(sioc_next_t *next)
{
    sioc_socket_t *socket = next->socket;
    sioc_namespace_t *root = sioc__sio_namespace_root(socket->nsp);
    /* The client may have left while a middleware was waiting on a database. */
    if (socket->state != SIO_SOCKET_CONNECTING) {
        finish_chain(next);
        return;
    }
    if (++next->index < root->middleware_count) {
        run_current(next);
        return;
    }
    sioc__sio_socket_connected(socket);
    finish_chain(next);
}

void sioc_next_error(sioc_next_t *next, const char *message, json_t *data)
{
    if (next->socket->state == SIO_SOCKET_CONNECTING)
        sioc__sio_socket_refuse(next->socket, message, data);
    else
        json_decref(data);
    finish_chain(next);
}

/* ---- packets ------------------------------------------------------------------------------------
 */

void sioc__sio_namespace_dispatch(sioc_socket_t *socket, sioc__sio_packet_t *packet)
{
    switch (packet->type) {
    case SIOC_SIO_EVENT:
    case SIOC_SIO_BINARY_EVENT:
        sioc__sio_socket_on_event(socket, packet);
        break;
    case SIOC_SIO_ACK:
    case SIOC_SIO_BINARY_ACK:
        sioc__sio_socket_on_ack(socket, packet);
        break;
    case SIOC_SIO_DISCONNECT:
        sioc__sio_client_forget_socket(socket->client, socket);
        sioc__sio_socket_close(socket, "client namespace disconnect", 0);
        break;
    default:
        /* CONNECT_ERROR is for servers to send: Node closes a client that sends one. */
        sioc__sio_client_close(socket->client, "forced close");
        break;
    }
}
