/* libcurl multi on libuv: libcurl says which sockets to watch (socket_cb) and when to wake it
 * (timer_cb); the loop tells it what happened (curl_multi_socket_action). Finished transfers are
 * collected after every action (collect). */
#include "http_client.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct http_client_s {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    http_client_options_t options;
    struct request_s *requests; /* in flight, for http_client_free */
    int closing;
    unsigned open_handles; /* the timer and the polls, closed before the client is freed */
};

typedef struct request_s {
    struct request_s *next, **link;
    http_client_t *client;
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    char *answer;
    size_t answer_length;
    int too_large;
    http_client_cb callback;
    void *data;
    uv_timer_t later; /* failures found before libcurl runs are reported from the loop */
    const char *early_error;
} request_t;

typedef struct poll_s {
    uv_poll_t poll;
    http_client_t *client;
    curl_socket_t fd;
} poll_t;

static void handle_closed(uv_handle_t *handle)
{
    http_client_t *client = handle->data;
    if (handle->type == UV_POLL)
        free(handle);
    if (--client->open_handles == 0 && client->closing)
        free(client);
}

static void request_unlink(request_t *request)
{
    *request->link = request->next;
    if (request->next != NULL)
        request->next->link = request->link;
}

static void request_free(request_t *request)
{
    curl_slist_free_all(request->headers);
    free(request->body);
    free(request->answer);
    free(request);
}

/* Reports the end of a transfer and frees it. */
static void finish(request_t *request, CURLcode code)
{
    http_client_t *client = request->client;
    request_unlink(request);
    curl_multi_remove_handle(client->multi, request->easy);
    long status = 0;
    curl_easy_getinfo(request->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(request->easy);
    const char *error = NULL;
    int connect_failed = 0;
    if (request->too_large) {
        error = "answer too large";
    } else if (code != CURLE_OK) {
        error = curl_easy_strerror(code);
        connect_failed = code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST;
    }
    json_t *body = NULL;
    if (error == NULL && request->answer_length > 0)
        body = json_loadb(request->answer, request->answer_length, 0, NULL);
    request->callback(error == NULL ? (int)status : 0, body, error, connect_failed, request->data);
    json_decref(body);
    request_free(request);
}

static void collect(http_client_t *client)
{
    CURLMsg *message;
    int left;
    while ((message = curl_multi_info_read(client->multi, &left)) != NULL) {
        if (message->msg != CURLMSG_DONE)
            continue;
        request_t *request;
        curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, (char **)&request);
        finish(request, message->data.result);
    }
}

static void on_timer(uv_timer_t *timer)
{
    http_client_t *client = timer->data;
    int running;
    curl_multi_socket_action(client->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    collect(client);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *data)
{
    http_client_t *client = data;
    if (client->closing)
        return 0;
    if (timeout_ms < 0)
        uv_timer_stop(&client->timer);
    else
        uv_timer_start(&client->timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

static void on_poll(uv_poll_t *handle, int status, int events)
{
    poll_t *poll = (poll_t *)handle;
    http_client_t *client = poll->client;
    int flags = status < 0 ? CURL_CSELECT_ERR : 0;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running;
    curl_multi_socket_action(client->multi, poll->fd, flags, &running);
    collect(client);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *data, void *socket_data)
{
    http_client_t *client = data;
    poll_t *poll = socket_data;
    if (what == CURL_POLL_REMOVE) {
        if (poll != NULL) {
            uv_poll_stop(&poll->poll);
            if (!client->closing)
                curl_multi_assign(client->multi, fd, NULL);
            uv_close((uv_handle_t *)&poll->poll, handle_closed);
        }
        return 0;
    }
    if (client->closing)
        return 0;
    if (poll == NULL) {
        poll = calloc(1, sizeof(*poll));
        if (poll == NULL || uv_poll_init_socket(client->loop, &poll->poll, fd) != 0) {
            free(poll);
            return -1;
        }
        poll->poll.data = client;
        poll->client = client;
        poll->fd = fd;
        client->open_handles++;
        curl_multi_assign(client->multi, fd, poll);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    uv_poll_start(&poll->poll, events, on_poll);
    return 0;
}

static size_t on_data(char *bytes, size_t size, size_t count, void *data)
{
    request_t *request = data;
    size_t length = size * count;
    size_t most = request->client->options.max_response_size;
    if (request->answer_length + length > most) {
        request->too_large = 1;
        return 0; /* libcurl aborts the transfer */
    }
    char *grown = realloc(request->answer, request->answer_length + length + 1);
    if (grown == NULL)
        return 0;
    memcpy(grown + request->answer_length, bytes, length);
    request->answer = grown;
    request->answer_length += length;
    return length;
}

http_client_t *http_client_new(uv_loop_t *loop, const http_client_options_t *options)
{
    static int initialized;
    if (!initialized && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return NULL;
    initialized = 1;
    http_client_t *client = calloc(1, sizeof(*client));
    if (client == NULL || (client->multi = curl_multi_init()) == NULL) {
        free(client);
        return NULL;
    }
    client->loop = loop;
    client->options = *options;
    uv_timer_init(loop, &client->timer);
    client->timer.data = client;
    client->open_handles = 1;
    curl_multi_setopt(client->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(client->multi, CURLMOPT_SOCKETDATA, client);
    curl_multi_setopt(client->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(client->multi, CURLMOPT_TIMERDATA, client);
    curl_multi_setopt(client->multi, CURLMOPT_MAX_HOST_CONNECTIONS, options->max_connections);
    curl_multi_setopt(client->multi, CURLMOPT_MAXCONNECTS, options->max_connections);
    return client;
}

static void on_later_closed(uv_handle_t *handle)
{
    request_t *request = handle->data;
    http_client_t *client = request->client;
    request->callback(0, NULL, request->early_error, 0, request->data);
    request_free(request);
    if (--client->open_handles == 0 && client->closing)
        free(client);
}

static void on_later(uv_timer_t *timer)
{
    uv_close((uv_handle_t *)timer, on_later_closed);
}

/* A request that could not start: its callback runs from the loop, not from the caller. */
static void fail_later(request_t *request, const char *error)
{
    request->early_error = error;
    request->later.data = request;
    request->client->open_handles++;
    uv_timer_init(request->client->loop, &request->later);
    uv_timer_start(&request->later, on_later, 0, 0);
}

void http_client_post(http_client_t *client, const char *url, const json_t *body,
                      http_client_cb callback, void *data)
{
    request_t *request = calloc(1, sizeof(*request));
    if (request == NULL) {
        log_error("http client: out of memory posting to %s", url);
        callback(0, NULL, "out of memory", 0, data); /* nothing else can be done */
        return;
    }
    request->client = client;
    request->callback = callback;
    request->data = data;
    request->body = json_dumps(body, JSON_COMPACT);
    request->easy = curl_easy_init();
    request->headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (request->body == NULL || request->easy == NULL || request->headers == NULL ||
        client->closing) {
        if (request->easy != NULL)
            curl_easy_cleanup(request->easy);
        fail_later(request, client->closing ? "closed" : "out of memory");
        return;
    }
    CURL *easy = request->easy;
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, request->body);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, request->headers);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, client->options.timeout_ms);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, request);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, request);
    request->next = client->requests;
    if (request->next != NULL)
        request->next->link = &request->next;
    request->link = &client->requests;
    client->requests = request;
    if (curl_multi_add_handle(client->multi, easy) != CURLM_OK) {
        request_unlink(request);
        curl_easy_cleanup(easy);
        request->easy = NULL;
        fail_later(request, "cannot start the request");
    }
}

void http_client_free(http_client_t *client)
{
    if (client == NULL)
        return;
    client->closing = 1;
    while (client->requests != NULL) {
        request_t *request = client->requests;
        request_unlink(request);
        curl_multi_remove_handle(client->multi, request->easy);
        curl_easy_cleanup(request->easy);
        request->callback(0, NULL, "closed", 0, request->data);
        request_free(request);
    }
    /* Closes the kept-alive connections too: libcurl removes their sockets (socket_cb). */
    curl_multi_cleanup(client->multi);
    client->multi = NULL;
    uv_timer_stop(&client->timer);
    uv_close((uv_handle_t *)&client->timer, handle_closed);
}
