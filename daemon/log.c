#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static log_level_t current_level = LOG_INFO;
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

void log_write(log_level_t level, const char *format, ...)
{
    if (!log_enabled(level))
        return;
    struct timeval now;
    gettimeofday(&now, NULL);
    struct tm utc;
    gmtime_r(&now.tv_sec, &utc);
    char stamp[32];
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &utc);
    /* One fprintf per line, so lines from a crash handler or a helper thread never interleave. */
    char line[2048];
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(line, sizeof(line), format, arguments);
    va_end(arguments);
    fprintf(stderr, "%s.%03ldZ %-5s %s\n", stamp, (long)(now.tv_usec / 1000), level_names[level],
            line);
}
