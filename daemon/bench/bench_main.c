/* `sioc bench SCENARIO [options]`: the command line, the run, the one-line summary and the
 * JSON output. */
#include "bench/bench.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/run.h"
#include "bench/scenario.h"

/* The generator counts as saturated above this share of its core: its figures then measure
 * itself as much as the server. */
#define SATURATED_PERCENT 90.0

static const bench_scenario_t *const scenarios[] = {
    &bench_scenario_idle,    &bench_scenario_echo,    &bench_scenario_fanout,
    &bench_scenario_cluster, &bench_scenario_connect, &bench_scenario_chat,
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: sioc bench SCENARIO [options]\n"
            "scenarios:\n"
            "  idle     --clients N [--transport polling] [--token JWT | --jwt-secret S]\n"
            "                                      server RSS per connection (--server-pid)\n"
            "           --hold: once connected, print \"holding N clients\" and keep them until\n"
            "           SIGTERM/SIGINT (or --duration); with --first-index I, generators that\n"
            "           hold clients I.. side by side add up (the caller reads the server's RSS)\n"
            "  echo     --clients C [--rate R]     emits with ack; round trips/s, latency\n"
            "  fanout   --rooms R --members M --rate MSG/S --size BYTES [--window W]\n"
            "                                      deliveries/s, end-to-end latency, loss\n"
            "  cluster  fanout with --second-port P: the odd members on the second server of a\n"
            "           cluster, the publisher on the first\n"
            "  connect  --clients K [--transport websocket|polling] [--token JWT]\n"
            "                                      new connections/s (K attempts in flight)\n"
            "  chat     --users U --rooms R --rate MSG/S (--jwt-secret S | --token JWT)\n"
            "                                      StudyConnect message:send to message:received\n"
            "common options:\n"
            "  --host 127.0.0.1 --port 3000 --path /socket.io/ --namespace /\n"
            "  --duration SECONDS (10) --warmup SECONDS (2) --timeout SECONDS (60)\n"
            "  --sources N (8: source addresses 127.0.0.1..127.0.0.N)\n"
            "  --concurrency N (200: connection attempts in flight while connecting)\n"
            "  --server-pid PID (server CPU and memory from /proc) --label NAME\n"
            "  --json FILE (the figures as JSON)\n"
            "  --event NAME (echo: echo) --join-event NAME (join) --publish-event NAME (publish)\n"
            "every scenario with --server-pid reports the server's RSS during its window\n"
            "(peak, end) per client. At most %d connections per process; SIGINT stops a run\n"
            "cleanly.\n",
            BENCH_MAX_CONNECTIONS);
}

static void options_init(bench_options_t *options)
{
    memset(options, 0, sizeof(*options));
    options->host = "127.0.0.1";
    options->port = 3000;
    options->path = "/socket.io/";
    options->nsp = "/";
    options->label = "server";
    options->sources = 8;
    options->duration = 10;
    options->warmup = 2;
    options->timeout = 60;
    options->clients = 100;
    options->concurrency = 200;
    options->size = -1;
    options->rooms = 1;
    options->members = 1000;
    options->users = 1000;
    options->window = 64;
    options->event = "echo";
    options->join_event = "join";
    options->publish_event = "publish";
}

enum {
    OPTION_HOST = 256,
    OPTION_PORT,
    OPTION_PATH,
    OPTION_NAMESPACE,
    OPTION_LABEL,
    OPTION_SOURCES,
    OPTION_DURATION,
    OPTION_WARMUP,
    OPTION_TIMEOUT,
    OPTION_JSON,
    OPTION_SERVER_PID,
    OPTION_TOKEN,
    OPTION_JWT_SECRET,
    OPTION_CLIENTS,
    OPTION_CONCURRENCY,
    OPTION_RATE,
    OPTION_SIZE,
    OPTION_ROOMS,
    OPTION_MEMBERS,
    OPTION_USERS,
    OPTION_WINDOW,
    OPTION_TRANSPORT,
    OPTION_EVENT,
    OPTION_JOIN_EVENT,
    OPTION_PUBLISH_EVENT,
    OPTION_SECOND_PORT,
    OPTION_FIRST_INDEX,
    OPTION_HOLD,
    OPTION_HELP,
};

static const struct option long_options[] = {
    {"host", required_argument, 0, OPTION_HOST},
    {"port", required_argument, 0, OPTION_PORT},
    {"path", required_argument, 0, OPTION_PATH},
    {"namespace", required_argument, 0, OPTION_NAMESPACE},
    {"label", required_argument, 0, OPTION_LABEL},
    {"sources", required_argument, 0, OPTION_SOURCES},
    {"duration", required_argument, 0, OPTION_DURATION},
    {"warmup", required_argument, 0, OPTION_WARMUP},
    {"timeout", required_argument, 0, OPTION_TIMEOUT},
    {"json", required_argument, 0, OPTION_JSON},
    {"server-pid", required_argument, 0, OPTION_SERVER_PID},
    {"token", required_argument, 0, OPTION_TOKEN},
    {"jwt-secret", required_argument, 0, OPTION_JWT_SECRET},
    {"clients", required_argument, 0, OPTION_CLIENTS},
    {"concurrency", required_argument, 0, OPTION_CONCURRENCY},
    {"rate", required_argument, 0, OPTION_RATE},
    {"size", required_argument, 0, OPTION_SIZE},
    {"rooms", required_argument, 0, OPTION_ROOMS},
    {"members", required_argument, 0, OPTION_MEMBERS},
    {"users", required_argument, 0, OPTION_USERS},
    {"window", required_argument, 0, OPTION_WINDOW},
    {"transport", required_argument, 0, OPTION_TRANSPORT},
    {"event", required_argument, 0, OPTION_EVENT},
    {"join-event", required_argument, 0, OPTION_JOIN_EVENT},
    {"publish-event", required_argument, 0, OPTION_PUBLISH_EVENT},
    {"second-port", required_argument, 0, OPTION_SECOND_PORT},
    {"first-index", required_argument, 0, OPTION_FIRST_INDEX},
    {"hold", no_argument, 0, OPTION_HOLD},
    {"help", no_argument, 0, OPTION_HELP},
    {0, 0, 0, 0},
};

/* A whole number or a decimal; -1 when the text is not one. */
static int parse_number(const char *text, double *value)
{
    char *end;
    *value = strtod(text, &end);
    return end != text && *end == '\0' ? 0 : -1;
}

static int set_number(int option, double value, bench_options_t *options)
{
    switch (option) {
    case OPTION_PORT:
        options->port = (int)value;
        return value >= 1 && value <= 65535 ? 0 : -1;
    case OPTION_SECOND_PORT:
        options->second_port = (int)value;
        return value >= 1 && value <= 65535 ? 0 : -1;
    case OPTION_FIRST_INDEX:
        options->first_index = (long)value;
        return value >= 0 && value <= 1e9 ? 0 : -1;
    case OPTION_SOURCES:
        options->sources = (int)value;
        return value >= 1 && value <= 254 ? 0 : -1;
    case OPTION_DURATION:
        options->duration = value;
        return value > 0 && value <= 3600 ? 0 : -1;
    case OPTION_WARMUP:
        options->warmup = value;
        return value >= 0 && value <= 600 ? 0 : -1;
    case OPTION_TIMEOUT:
        options->timeout = value;
        return value > 0 && value <= 3600 ? 0 : -1;
    case OPTION_SERVER_PID:
        options->server_pid = (long)value;
        return value > 0 ? 0 : -1;
    case OPTION_CLIENTS:
        options->clients = (long)value;
        return 0;
    case OPTION_CONCURRENCY:
        options->concurrency = (long)value;
        return value >= 1 ? 0 : -1;
    case OPTION_RATE:
        options->rate = value;
        return value >= 0 ? 0 : -1;
    case OPTION_SIZE:
        options->size = (long)value;
        return 0;
    case OPTION_ROOMS:
        options->rooms = (long)value;
        return 0;
    case OPTION_MEMBERS:
        options->members = (long)value;
        return 0;
    case OPTION_USERS:
        options->users = (long)value;
        return 0;
    case OPTION_WINDOW:
        options->window = (long)value;
        return 0;
    default:
        return -1;
    }
}

static int set_text(int option, const char *text, bench_options_t *options)
{
    switch (option) {
    case OPTION_HOST:
        options->host = text;
        return 0;
    case OPTION_PATH:
        options->path = text;
        return text[0] == '/' ? 0 : -1;
    case OPTION_NAMESPACE:
        options->nsp = text;
        return text[0] == '/' ? 0 : -1;
    case OPTION_LABEL:
        options->label = text;
        return 0;
    case OPTION_JSON:
        options->json_file = text;
        return 0;
    case OPTION_TOKEN:
        options->token = text;
        return 0;
    case OPTION_JWT_SECRET:
        options->jwt_secret = text;
        return 0;
    case OPTION_EVENT:
        options->event = text;
        return 0;
    case OPTION_JOIN_EVENT:
        options->join_event = text;
        return 0;
    case OPTION_PUBLISH_EVENT:
        options->publish_event = text;
        return 0;
    case OPTION_TRANSPORT:
        options->polling = strcmp(text, "polling") == 0;
        return options->polling || strcmp(text, "websocket") == 0 ? 0 : -1;
    default:
        return 1; /* not a text option */
    }
}

/* 0, 1 for --help, -1 for a bad command line (reported). */
static int parse_options(int argc, char **argv, bench_options_t *options)
{
    int option;
    optind = 1;
    while ((option = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
        if (option == OPTION_HELP)
            return 1;
        if (option == OPTION_HOLD) {
            options->hold = 1;
            continue;
        }
        if (option == '?')
            return -1;
        int rc = set_text(option, optarg, options);
        double value;
        if (rc == 1)
            rc = parse_number(optarg, &value) == 0 ? set_number(option, value, options) : -1;
        if (rc != 0) {
            fprintf(stderr, "sioc bench: bad value for --%s: %s\n",
                    long_options[option - OPTION_HOST].name, optarg);
            return -1;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "sioc bench: unexpected argument %s\n", argv[optind]);
        return -1;
    }
    return 0;
}

static const bench_scenario_t *find_scenario(const char *name)
{
    for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
        if (strcmp(scenarios[i]->name, name) == 0)
            return scenarios[i];
    return NULL;
}

/* ---- output ---------------------------------------------------------------------------------- */

static double percent(double seconds, double wall)
{
    return wall > 0 && seconds >= 0 ? 100.0 * seconds / wall : -1;
}

static json_t *options_json(const bench_options_t *options)
{
    return json_pack(
        "{s:s,s:i,s:i,s:s,s:s,s:i,s:f,s:f,s:I,s:I,s:f,s:I,s:I,s:I,s:I,s:I,s:s}", "host",
        options->host, "port", options->port, "second_port", options->second_port, "path",
        options->path, "namespace", options->nsp, "sources", options->sources, "duration",
        options->duration, "warmup", options->warmup, "clients", (json_int_t)options->clients,
        "concurrency", (json_int_t)options->concurrency, "rate", options->rate, "size",
        (json_int_t)options->size, "rooms", (json_int_t)options->rooms, "members",
        (json_int_t)options->members, "users", (json_int_t)options->users, "window",
        (json_int_t)options->window, "transport", options->polling ? "polling" : "websocket");
}

/* What the rest of the machine (other processes, the hypervisor) took during the window, in
 * percent of one core: a busy machine makes every figure of the run doubtful. */
static void add_machine_load(json_t *output, const bench_run_t *run, double generator_percent,
                             double server_percent)
{
    const bench_usage_t *start = &run->window_start, *end = &run->window_end;
    double wall = (double)(end->wall_ns - start->wall_ns) / 1e9;
    if (wall <= 0 || start->machine_busy_seconds < 0 || end->machine_busy_seconds < 0)
        return;
    double busy = percent(end->machine_busy_seconds - start->machine_busy_seconds, wall);
    double others = busy - generator_percent - (server_percent > 0 ? server_percent : 0);
    json_object_set_new(output, "machine_busy_percent", json_real(busy));
    json_object_set_new(output, "other_processes_percent", json_real(others > 0 ? others : 0));
    json_object_set_new(
        output, "steal_percent",
        json_real(percent(end->machine_steal_seconds - start->machine_steal_seconds, wall)));
}

/* The server's RSS before the first connection and during the window, per client slot: what
 * the clients cost it under the scenario's traffic. */
static void add_server_memory(json_t *output, const bench_run_t *run)
{
    if (run->rss_before_kib < 0 || run->rss_end_kib < 0 || run->client_count == 0)
        return;
    double clients = (double)run->client_count;
    json_t *memory = json_object();
    json_object_set_new(memory, "clients", json_integer((json_int_t)run->client_count));
    json_object_set_new(memory, "rss_before_kib", json_integer(run->rss_before_kib));
    json_object_set_new(memory, "rss_window_start_kib", json_integer(run->rss_window_start_kib));
    json_object_set_new(memory, "rss_peak_kib", json_integer(run->rss_peak_kib));
    json_object_set_new(memory, "rss_end_kib", json_integer(run->rss_end_kib));
    json_object_set_new(
        memory, "peak_per_client_bytes",
        json_real((double)(run->rss_peak_kib - run->rss_before_kib) * 1024.0 / clients));
    json_object_set_new(
        memory, "end_per_client_bytes",
        json_real((double)(run->rss_end_kib - run->rss_before_kib) * 1024.0 / clients));
    json_object_set_new(output, "server_memory", memory);
}

/* How long the generator's loop ran between polls in the window (microseconds). */
static void add_loop_held(json_t *output, const bench_run_t *run)
{
    const store_histogram_t *held = &run->loop_held;
    if (held->count == 0)
        return;
    json_t *loop = json_object();
    json_object_set_new(loop, "iterations", json_integer((json_int_t)held->count));
    json_object_set_new(loop, "p50_us",
                        json_integer((json_int_t)store_histogram_quantile(held, 0.5)));
    json_object_set_new(loop, "p99_us",
                        json_integer((json_int_t)store_histogram_quantile(held, 0.99)));
    json_object_set_new(loop, "max_us", json_integer((json_int_t)held->max_us));
    json_object_set_new(loop, "on_cpu_p99_us",
                        json_integer((json_int_t)store_histogram_quantile(&run->loop_ran, 0.99)));
    json_object_set_new(loop, "on_cpu_max_us", json_integer((json_int_t)run->loop_ran.max_us));
    json_object_set_new(output, "generator_loop_held", loop);
}

static json_t *output_json(const bench_run_t *run, double generator_percent, double server_percent)
{
    const bench_options_t *options = run->options;
    json_t *output = json_object();
    json_object_set_new(output, "scenario", json_string(run->scenario->name));
    json_object_set_new(output, "server", json_string(options->label));
    json_object_set_new(output, "ok", json_boolean(run->error[0] == '\0'));
    if (run->error[0] != '\0')
        json_object_set_new(output, "error", json_string(run->error));
    json_object_set_new(output, "options", options_json(options));
    json_object_set_new(output, "window_seconds", json_real(bench_run_window_seconds(run)));
    json_object_set_new(output, "generator_cpu_percent", json_real(generator_percent));
    json_object_set_new(output, "generator_saturated",
                        json_boolean(generator_percent >= SATURATED_PERCENT));
    if (options->server_pid > 0) {
        json_object_set_new(output, "server_pid", json_integer(options->server_pid));
        json_object_set_new(output, "server_cpu_percent", json_real(server_percent));
    }
    add_machine_load(output, run, generator_percent, server_percent);
    add_loop_held(output, run);
    add_server_memory(output, run);
    if (run->first_connect_error[0] != '\0')
        json_object_set_new(output, "first_connect_error", json_string(run->first_connect_error));
    json_object_set_new(output, "connection_failures", json_integer((json_int_t)run->failures));
    json_object_set(output, "results", run->results);
    return output;
}

static void write_output(const bench_run_t *run)
{
    const bench_usage_t *start = &run->window_start, *end = &run->window_end;
    double wall = (double)(end->wall_ns - start->wall_ns) / 1e9;
    double generator = percent(end->cpu_seconds - start->cpu_seconds, wall);
    double server = start->server_cpu_seconds < 0 || end->server_cpu_seconds < 0
                        ? -1
                        : percent(end->server_cpu_seconds - start->server_cpu_seconds, wall);
    printf("%s %s: ", run->scenario->name, run->options->label);
    if (run->error[0] == '\0')
        printf("%s", run->summary);
    else if (wall > 0)
        printf("FAILED: %s; measured until then: %s", run->error, run->summary);
    else
        printf("FAILED: %s", run->error);
    if (wall > 0) {
        printf("; generator CPU %.0f%%%s", generator,
               generator >= SATURATED_PERCENT ? " (SATURATED: figures are a lower bound)" : "");
        if (run->options->server_pid > 0)
            printf(", server CPU %.0f%%", server);
        if (run->loop_held.count > 0)
            printf(", generator loop held p99 %.1f max %.1f ms (on a CPU max %.1f ms)",
                   (double)store_histogram_quantile(&run->loop_held, 0.99) / 1e3,
                   (double)run->loop_held.max_us / 1e3, (double)run->loop_ran.max_us / 1e3);
        double steal = percent(end->machine_steal_seconds - start->machine_steal_seconds, wall);
        if (start->machine_steal_seconds >= 0 && steal >= 5)
            printf(", hypervisor steal %.0f%% (latency tails are suspect)", steal);
    }
    printf("\n");
    fflush(stdout);
    if (run->options->json_file == NULL)
        return;
    json_t *output = output_json(run, generator, server);
    if (json_dump_file(output, run->options->json_file, JSON_INDENT(2) | JSON_REAL_PRECISION(10)) !=
        0)
        fprintf(stderr, "sioc bench: cannot write %s\n", run->options->json_file);
    json_decref(output);
}

int bench_main(int argc, char **argv)
{
    /* argv[0] is the command's own name ("bench"); a leading "bench" is skipped as well so
     * that both bench_main(argc, argv) and bench_main(argc - 1, argv + 1) work. */
    if (argc > 1 && strcmp(argv[1], "bench") == 0) {
        argc--;
        argv++;
    }
    if (argc < 2 || argv[1][0] == '-') {
        usage(argc >= 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
        return argc >= 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
    }
    const bench_scenario_t *scenario = find_scenario(argv[1]);
    if (scenario == NULL) {
        fprintf(stderr, "sioc bench: unknown scenario %s\n", argv[1]);
        usage(stderr);
        return 2;
    }
    bench_options_t options;
    options_init(&options);
    options.scenario = scenario->name;
    int rc = parse_options(argc - 1, argv + 1, &options);
    if (rc != 0) {
        usage(rc > 0 ? stdout : stderr);
        return rc > 0 ? 0 : 2;
    }
    if (options.size < 0) /* fanout's target is 100-byte messages; chat's texts are short */
        options.size = strcmp(scenario->name, "fanout") == 0 ? 100
                       : strcmp(scenario->name, "chat") == 0 ? 64
                                                             : 16;
    char error[256];
    if (scenario->check(&options, error, sizeof(error)) != 0) {
        fprintf(stderr, "sioc bench %s: %s\n", scenario->name, error);
        return 2;
    }
    bench_run_t run;
    if (bench_run_init(&run, &options, scenario, scenario->client_count(&options),
                       scenario->callbacks) != 0) {
        fprintf(stderr, "sioc bench %s: %s\n", scenario->name, run.error);
        bench_run_free(&run);
        return 1;
    }
    rc = bench_run_execute(&run);
    write_output(&run);
    int interrupted = run.interrupted;
    bench_run_free(&run);
    return interrupted ? 130 : rc == 0 ? 0 : 1;
}
