/* SIGHUP: what a configuration read again changes in the running daemon.
 *
 * Applied at once, connections kept: log.level, log.format, api.key (read on every request),
 * cors (the caller hands the new list to the server: sioc_server_set_cors),
 * the limits the daemon's drivers and API read when they use them: maxTextLength,
 * historyLimit, typingTimeoutMs, maxQueuedEvents, and messagesPerSecond / messageBurst (for
 * sockets that connect from then on; a connected socket keeps its bucket), and the Engine.IO
 * limits pingIntervalMs, pingTimeoutMs, connectTimeoutMs, upgradeTimeoutMs, maxPayload,
 * maxBufferedBytes (the caller hands them to the server, sioc_server_set_limits, for the
 * sessions that open from then on). Everything else (listeners, path, shutdownTimeoutMs, store,
 * auth, channels, cluster) is copied into the library or opened at start, so it needs a
 * restart: reload_apply names what differs. */
#ifndef SIOC_DAEMON_RELOAD_H
#define SIOC_DAEMON_RELOAD_H

#include <stddef.h>

#include "config.h"

/* Moves the reloadable values of next into running (next keeps the old ones, to be freed with
 * it) and logs each change; *cors_changed says whether running's CORS list is new. restart gets the
 * keys that differ and need a restart, separated by
 * ", " ("path, limits.pingIntervalMs"; "" when none; cut to restart_size). Both configs come from
 * files (their source text is compared). Returns the number of values changed. */
int reload_apply(config_t *running, config_t *next, int *cors_changed, char *restart,
                 size_t restart_size);

#endif
