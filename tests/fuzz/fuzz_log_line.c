/* Fuzzes the JSON log line (log_format_line): whatever bytes a message holds, the line is one
 * JSON object whose message is valid UTF-8, within LOG_LINE_MAX, and ends with its only
 * newline; the text line has the message's bytes as they are. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static void require(int condition)
{
    if (!condition)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char line[LOG_LINE_MAX];
    char *message = malloc(size ? size : 1); /* exact size: a read past it is caught */
    require(message != NULL);
    memcpy(message, data, size);
    size_t n = log_format_line(line, sizeof(line), LOG_FORMAT_JSON, LOG_INFO,
                               "2026-11-21T21:00:00.000Z", message, size);
    require(n > 0 && n < sizeof(line) && line[n - 1] == '\n' && line[n] == '\0');
    require(memchr(line, '\n', n - 1) == NULL);
    json_error_t error;
    json_t *object = json_loadb(line, n, JSON_ALLOW_NUL, &error);
    require(object != NULL && json_is_string(json_object_get(object, "message")));
    json_decref(object);
    n = log_format_line(line, sizeof(line), LOG_FORMAT_TEXT, LOG_INFO, "2026-11-21T21:00:00.000Z",
                        message, size);
    size_t kept = size < LOG_MESSAGE_MAX ? size : LOG_MESSAGE_MAX;
    require(n == strlen("2026-11-21T21:00:00.000Z info  ") + kept + 1);
    require(memcmp(line + n - 1 - kept, message, kept) == 0);
    free(message);
    return 0;
}
