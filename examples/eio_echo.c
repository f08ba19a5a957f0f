/* eio-echo: an Engine.IO v4 server that sends every message back as it came (text or binary).
 * It uses only the public header, as any program linking libsioc would. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sioc.h>

static uv_signal_t sigterm_handle;
static uv_signal_t sigint_handle;
static sioc_eio_server_t *server;

static void on_message(sioc_eio_socket_t *socket, const uint8_t *bytes, size_t length, int binary,
                       void *data)
{
    sioc_eio_socket_send(socket, bytes, length, binary);
}

static const char *rejected_header;

static int allow_request(const sioc_request_t *request, void *data, const char **message)
{
    if (rejected_header != NULL && sioc_request_header(request, rejected_header, NULL) != NULL) {
        *message = "Forbidden";
        return -1;
    }
    return 0;
}

static void on_signal(uv_signal_t *handle, int signum)
{
    uv_close((uv_handle_t *)&sigterm_handle, NULL);
    uv_close((uv_handle_t *)&sigint_handle, NULL);
    sioc_eio_server_close(server, NULL, NULL);
}

static void usage(const char *program)
{
    fprintf(stderr,
            "usage: %s [--host H] [--port P] [--path /engine.io/] [--ping-interval MS]\n"
            "          [--ping-timeout MS] [--upgrade-timeout MS] [--max-payload BYTES]\n"
            "          [--cors ORIGIN]... [--transports polling,websocket] [--reject-header NAME]\n"
            "          [--max-buffered-bytes BYTES] [--shutdown-timeout MS]\n"
            "          [--http-compression true|false] [--http-compression-threshold BYTES]\n"
            "          [--per-message-deflate true|false] [--per-message-deflate-threshold BYTES]\n"
            "          [--cookie NAME [--cookie-path P|false] [--cookie-domain D]\n"
            "           [--cookie-same-site lax|strict|none|false] [--cookie-max-age S]\n"
            "           [--cookie-http-only true|false] [--cookie-secure true|false]]\n"
            "          [--allow-eio3]\n",
            program);
}

static unsigned parse_transports(const char *list)
{
    unsigned transports = 0;
    if (strstr(list, "polling") != NULL)
        transports |= SIOC_TRANSPORT_POLLING;
    if (strstr(list, "websocket") != NULL)
        transports |= SIOC_TRANSPORT_WEBSOCKET;
    return transports;
}

int main(int argc, char **argv)
{
    static const struct option long_options[] = {
        {"host", required_argument, 0, 'h'},
        {"port", required_argument, 0, 'p'},
        {"path", required_argument, 0, 'P'},
        {"ping-interval", required_argument, 0, 'i'},
        {"ping-timeout", required_argument, 0, 't'},
        {"upgrade-timeout", required_argument, 0, 'u'},
        {"max-payload", required_argument, 0, 'm'},
        {"cors", required_argument, 0, 'c'},
        {"transports", required_argument, 0, 'T'},
        {"reject-header", required_argument, 0, 'r'},
        {"max-buffered-bytes", required_argument, 0, 'b'},
        {"shutdown-timeout", required_argument, 0, 's'},
        {"http-compression", required_argument, 0, 'z'},
        {"http-compression-threshold", required_argument, 0, 'Z'},
        {"per-message-deflate", required_argument, 0, 'w'},
        {"per-message-deflate-threshold", required_argument, 0, 'W'},
        {"cookie", required_argument, 0, 'C'},
        {"cookie-path", required_argument, 0, 'Q'},
        {"cookie-domain", required_argument, 0, 'D'},
        {"cookie-same-site", required_argument, 0, 'S'},
        {"cookie-max-age", required_argument, 0, 'A'},
        {"cookie-http-only", required_argument, 0, 'H'},
        {"cookie-secure", required_argument, 0, 'E'},
        {"allow-eio3", no_argument, 0, 256},
        {"help", no_argument, 0, '?'},
        {0, 0, 0, 0},
    };
    const char *host = "127.0.0.1";
    int port = 3000;
    const char *cors[64];
    size_t cors_count = 0;
    sioc_eio_options_t options;
    sioc_eio_options_init(&options);
    int option;
    while ((option = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
        switch (option) {
        case 'h':
            host = optarg;
            break;
        case 'p':
            port = atoi(optarg);
            break;
        case 'P':
            options.path = optarg;
            break;
        case 'i':
            options.ping_interval_ms = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 't':
            options.ping_timeout_ms = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'u':
            options.upgrade_timeout_ms = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'm':
            options.max_payload = strtoull(optarg, NULL, 10);
            break;
        case 'c':
            if (cors_count < sizeof(cors) / sizeof(cors[0]))
                cors[cors_count++] = optarg;
            break;
        case 'T':
            options.transports = parse_transports(optarg);
            break;
        case 256:
            options.allow_eio3 = 1;
            break;
        case 'r':
            rejected_header = optarg;
            break;
        case 'b':
            options.max_buffered_bytes = strtoull(optarg, NULL, 10);
            break;
        case 's':
            options.shutdown_timeout_ms = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'z':
            options.http_compression = strcmp(optarg, "true") == 0;
            break;
        case 'Z':
            options.http_compression_threshold = strtoull(optarg, NULL, 10);
            break;
        case 'w':
            options.per_message_deflate = strcmp(optarg, "true") == 0;
            break;
        case 'W':
            options.per_message_deflate_threshold = strtoull(optarg, NULL, 10);
            break;
        case 'C':
            options.cookie.name = optarg;
            break;
        case 'Q':
            options.cookie.path = strcmp(optarg, "false") == 0 ? NULL : optarg;
            break;
        case 'D':
            options.cookie.domain = optarg;
            break;
        case 'S':
            options.cookie.same_site = strcmp(optarg, "false") == 0 ? NULL : optarg;
            break;
        case 'A':
            options.cookie.max_age_s = strtol(optarg, NULL, 10);
            break;
        case 'H':
            options.cookie.http_only = strcmp(optarg, "true") == 0;
            break;
        case 'E':
            options.cookie.secure = strcmp(optarg, "true") == 0;
            break;
        default:
            usage(argv[0]);
            return 2;
        }
    }
    if (cors_count > 0) {
        options.cors_origins = cors;
        options.cors_origin_count = cors_count;
        options.cors_credentials = strcmp(cors[0], "*") != 0;
    }
    if (rejected_header != NULL)
        options.allow_request = allow_request;
    if (options.transports == 0) {
        fprintf(stderr, "eio-echo: --transports needs polling and/or websocket\n");
        return 2;
    }

    uv_loop_t *loop = uv_default_loop();
    sioc_eio_callbacks_t callbacks = {.on_message = on_message};
    int rc = sioc_eio_server_new(loop, &options, &callbacks, NULL, &server);
    if (rc == 0)
        rc = sioc_eio_server_listen(server, host, port);
    if (rc != 0) {
        fprintf(stderr, "eio-echo: cannot listen on %s:%d: %s\n", host, port, uv_strerror(rc));
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    uv_signal_init(loop, &sigterm_handle);
    uv_signal_init(loop, &sigint_handle);
    uv_signal_start(&sigterm_handle, on_signal, SIGTERM);
    uv_signal_start(&sigint_handle, on_signal, SIGINT);
    /* Only once SIGTERM is ours: a test that stops the server right after this line must not
     * find the default action (death by the signal) still in place. */
    printf("listening on %s:%d\n", host, sioc_eio_server_port(server));
    fflush(stdout);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    return 0;
}
