/* `sioc bench`: the load generator that measures a Socket.IO server (issue 5; the scenarios,
 * options and output are described in docs/benchmarks.md and by `sioc bench --help`).
 *
 * bench_main takes the command line from the subcommand on: argv[0] is "bench" (or any name),
 * argv[1] the scenario. It returns the process exit code: 0 when the run completed, 1 when it
 * failed (the reason is printed and kept in the JSON), 2 for a bad command line, 130 when
 * interrupted by SIGINT or SIGTERM (what was measured so far is still printed). */
#ifndef SIOC_BENCH_H
#define SIOC_BENCH_H

int bench_main(int argc, char **argv);

#endif
