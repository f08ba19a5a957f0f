#include "log.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static log_level_t current_level = LOG_INFO;
static log_format_t current_format = LOG_FORMAT_TEXT;
static const char *const level_names[] = {"error", "warn", "info", "debug"};

int log_set_level_name(const char *name)
{
    for (int level = LOG_ERROR; level <= LOG_DEBUG; level++) {
        if (strcmp(name, level_names[level]) == 0) {
            current_level = (log_level_t)level;
            return 0;
        }
    }
    return -1;
}

void log_set_level(log_level_t level)
{
    current_level = level;
}

int log_enabled(log_level_t level)
{
    return level <= current_level;
}

int log_set_format_name(const char *name)
{
    if (strcmp(name, "text") == 0)
        current_format = LOG_FORMAT_TEXT;
    else if (strcmp(name, "json") == 0)
        current_format = LOG_FORMAT_JSON;
    else
        return -1;
    return 0;
}

void log_set_format(log_format_t format)
{
    current_format = format;
}

/* Length of the well-formed UTF-8 sequence at s[0..length) (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), or 0 when the bytes there are not one. */
static size_t utf8_sequence(const uint8_t *s, size_t length)
{
    uint8_t lead = s[0];
    size_t count;
    uint8_t low = 0x80, high = 0xBF; /* the range of the second byte */
    if (lead >= 0xC2 && lead <= 0xDF)
        count = 2;
    else if (lead >= 0xE0 && lead <= 0xEF) {
        count = 3;
        if (lead == 0xE0)
            low = 0xA0;
        else if (lead == 0xED)
            high = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        count = 4;
        if (lead == 0xF0)
            low = 0x90;
        else if (lead == 0xF4)
            high = 0x8F;
    } else
        return 0;
    if (count > length || s[1] < low || s[1] > high)
        return 0;
    for (size_t i = 2; i < count; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return count;
}

/* Appends message as the body of a JSON string; out has room for 6 bytes per input byte. */
static size_t json_escape(char *out, const uint8_t *message, size_t length)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (size_t i = 0; i < length;) {
        uint8_t byte = message[i];
        if (byte == '"' || byte == '\\') {
            out[n++] = '\\';
            out[n++] = (char)byte;
            i++;
        } else if (byte < 0x20 || byte == 0x7F) {
            n += (size_t)sprintf(out + n, "\\u00%c%c", hex[byte >> 4], hex[byte & 15]);
            i++;
        } else if (byte < 0x80) {
            out[n++] = (char)byte;
            i++;
        } else {
            size_t sequence = utf8_sequence(message + i, length - i);
            if (sequence == 0) {
                memcpy(out + n, "\\ufffd", 6);
                n += 6;
                i++;
            } else {
                memcpy(out + n, message + i, sequence);
                n += sequence;
                i += sequence;
            }
        }
    }
    return n;
}

size_t log_format_line(char *out, size_t size, log_format_t format, log_level_t level,
                       const char *stamp, const char *message, size_t message_length)
{
    if (message_length > LOG_MESSAGE_MAX)
        message_length = LOG_MESSAGE_MAX;
    if (size < LOG_LINE_MAX)
        return 0;
    int head;
    if (format == LOG_FORMAT_JSON) {
        head = snprintf(out, size, "{\"time\":\"%.32s\",\"level\":\"%s\",\"message\":\"", stamp,
                        level_names[level]);
        size_t n = (size_t)head + json_escape(out + head, (const uint8_t *)message, message_length);
        memcpy(out + n, "\"}\n", 4);
        return n + 3;
    }
    head = snprintf(out, size, "%.32s %-5s ", stamp, level_names[level]);
    memcpy(out + head, message, message_length);
    size_t n = (size_t)head + message_length;
    memcpy(out + n, "\n", 2);
    return n + 1;
}

void log_write(log_level_t level, const char *format, ...)
{
    if (!log_enabled(level))
        return;
    struct timeval now;
    gettimeofday(&now, NULL);
    struct tm utc;
    gmtime_r(&now.tv_sec, &utc);
    char seconds[24];
    strftime(seconds, sizeof(seconds), "%Y-%m-%dT%H:%M:%S", &utc);
    char stamp[48];
    snprintf(stamp, sizeof(stamp), "%s.%03dZ", seconds, (int)(now.tv_usec / 1000) % 1000);
    char message[LOG_MESSAGE_MAX + 1];
    va_list arguments;
    va_start(arguments, format);
    int length = vsnprintf(message, sizeof(message), format, arguments);
    va_end(arguments);
    if (length < 0)
        return;
    size_t kept = (size_t)length < sizeof(message) ? (size_t)length : sizeof(message) - 1;
    /* One write per line, so lines from a crash handler or a helper thread never interleave. */
    char line[LOG_LINE_MAX];
    size_t line_length =
        log_format_line(line, sizeof(line), current_format, level, stamp, message, kept);
    fwrite(line, 1, line_length, stderr);
}
