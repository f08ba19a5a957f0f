/* sioc: the daemon and its tools.
 *   sioc serve [--config FILE]      run the real-time server (embedded default without a file)
 *   sioc check-config FILE          validate a configuration file and exit
 *   sioc token --secret S --subject ID [...]   mint a development JWT
 *   sioc bench SCENARIO [...]       the load generator (docs/benchmarks.md)
 *   sioc version */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sioc.h>

#include "bench/bench.h"
#include "channel.h"
#include "config.h"
#include "log.h"
#include "serve.h"
#include "token.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: sioc serve [--config FILE]\n"
            "       sioc check-config FILE\n"
            "       sioc token --secret S --subject ID [--claim key=value]... [--expires-in S]\n"
            "       sioc bench SCENARIO [options]   (sioc bench --help)\n"
            "       sioc version\n");
}

static int serve_command(int argc, char **argv)
{
    const char *file = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            file = argv[++i];
        else {
            usage(stderr);
            return 2;
        }
    }
    config_t config;
    char error[1024];
    int rc = file ? config_load_file(file, &config, error, sizeof(error))
                  : config_load_default(&config, error, sizeof(error));
    if (rc != 0) {
        fprintf(stderr, "sioc: %s\n", error);
        config_free(&config);
        return 1;
    }
    if (file == NULL && getenv("SIOC_JWT_SECRET") == NULL)
        log_warn("no SIOC_JWT_SECRET: a random JWT secret is in use; only tokens signed with it "
                 "(none outside this run) will be accepted");
    int status = serve_run(&config);
    config_free(&config);
    return status;
}

static int check_config_command(int argc, char **argv)
{
    if (argc != 2) {
        usage(stderr);
        return 2;
    }
    config_t config;
    char error[1024];
    int rc = config_load_file(argv[1], &config, error, sizeof(error));
    if (rc == 0)
        rc = serve_check(&config, error, sizeof(error));
    if (rc == 0)
        rc = serve_check_store(&config, error, sizeof(error));
    if (rc != 0)
        fprintf(stderr, "%s\n", error);
    else
        printf("%s: ok\n", argv[1]);
    config_free(&config);
    return rc != 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *command = argv[1];
    if (strcmp(command, "serve") == 0)
        return serve_command(argc - 1, argv + 1);
    if (strcmp(command, "check-config") == 0)
        return check_config_command(argc - 1, argv + 1);
    if (strcmp(command, "token") == 0)
        return token_main(argc - 1, argv + 1);
    if (strcmp(command, "bench") == 0)
        return bench_main(argc - 1, argv + 1);
    if (strcmp(command, "version") == 0) {
        printf("sioc %s\n", SIOC_VERSION);
        return 0;
    }
    if (strcmp(command, "help") == 0 || strcmp(command, "--help") == 0) {
        usage(stdout);
        return 0;
    }
    usage(stderr);
    return 2;
}
