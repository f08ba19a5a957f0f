/* Logging: one line per event worth knowing, to stderr, with a level filter.
 *   2026-11-21T21:00:00.000Z info  listening on 127.0.0.1:3000 (/socket.io/) */
#ifndef SIOC_DAEMON_LOG_H
#define SIOC_DAEMON_LOG_H

typedef enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG } log_level_t;

/* "error" "warn" "info" "debug"; 0, or -1 for an unknown name. */
int log_set_level_name(const char *name);
void log_set_level(log_level_t level);
int log_enabled(log_level_t level);
void log_write(log_level_t level, const char *format, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_write(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_write(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_write(LOG_DEBUG, __VA_ARGS__)

#endif
