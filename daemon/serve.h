/* `sioc serve`: the daemon's life: open the store, start the Socket.IO server and its channels,
 * the HTTP API, and stop cleanly on SIGTERM/SIGINT. */
#ifndef SIOC_DAEMON_SERVE_H
#define SIOC_DAEMON_SERVE_H

#include "config.h"

/* Runs until a signal stops it. The first stdout lines are "listening on <host>:<port>" and,
 * when the API is on, "api listening on <host>:<port>" (tests and scripts read them). Returns
 * the process exit status. */
int serve_run(config_t *config);

/* Every validation serve_run makes before it opens anything (`sioc check-config` runs it): the
 * configuration's own, the drivers' options, the JWT key material. 0, or -1 with error. */
int serve_check(const config_t *config, char *error, size_t error_size);

/* `sioc check-config` with store.statements: connects to the database and prepares each
 * statement, as serve_run will ("<file>:<line>: store.statements.<op>: <why>"). 0, or -1. */
int serve_check_store(const config_t *config, char *error, size_t error_size);

#endif
