/* Logging: one line per event worth knowing, to stderr, with a level filter. Two formats:
 *   text (default)  2026-11-21T21:00:00.000Z info  listening on 127.0.0.1:3000 (/socket.io/)
 *   json            {"time":"2026-11-21T21:00:00.000Z","level":"info","message":"listening on ..."}
 * A JSON line is always one valid JSON object, whatever bytes the message holds: control
 * characters are escaped and bytes that are not UTF-8 become U+FFFD. */
#ifndef SIOC_DAEMON_LOG_H
#define SIOC_DAEMON_LOG_H

#include <stddef.h>

typedef enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG } log_level_t;
typedef enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON } log_format_t;

/* Longest message kept, in bytes; longer ones are cut (in JSON a character cut in two shows as
 * U+FFFD). */
#define LOG_MESSAGE_MAX 2047
/* A formatted line never exceeds this, newline and NUL included. */
#define LOG_LINE_MAX (6 * LOG_MESSAGE_MAX + 96)

/* "error" "warn" "info" "debug"; 0, or -1 for an unknown name. */
int log_set_level_name(const char *name);
void log_set_level(log_level_t level);
int log_enabled(log_level_t level);
/* "text" "json"; 0, or -1 for an unknown name. */
int log_set_format_name(const char *name);
void log_set_format(log_format_t format);
void log_write(log_level_t level, const char *format, ...) __attribute__((format(printf, 2, 3)));

/* Formats one line (newline included) into out (size >= LOG_LINE_MAX): the message's first
 * message_length bytes (at most LOG_MESSAGE_MAX are used), stamp the ISO-8601 time. Returns the
 * line's length. Pure, for the tests. */
size_t log_format_line(char *out, size_t size, log_format_t format, log_level_t level,
                       const char *stamp, const char *message, size_t message_length);

#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_write(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_write(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_write(LOG_DEBUG, __VA_ARGS__)

#endif
