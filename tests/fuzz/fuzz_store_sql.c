/* Fuzzes the named-parameter compiler of application statements (any bytes compile or are
 * refused with a message, and a compiled statement has only known placeholders) and the
 * timestamp conversion of their results (a converted time is always 24 characters). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store_sql.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"id", "roomId", "text", "now"};
    sioc__store_sql_t out;
    char error[128] = "";
    int rc = sioc__store_sql_compile((const char *)data, size, size % 2 ? '$' : '?', names, 4, &out,
                                     error, sizeof(error));
    if (rc != 0 && (error[0] == '\0' || out.text != NULL))
        abort();
    if (rc == 0) {
        for (size_t index = 0; index < out.count; index++) {
            if (out.params[index] < 0 || out.params[index] >= 4)
                abort();
        }
        if (strlen(out.text) > 2 * size)
            abort();
    }
    sioc__store_sql_free(&out);
    char time[SIOC__STORE_SQL_TIME_SIZE];
    if (sioc__store_sql_iso_time((const char *)data, size, time) && strlen(time) != 24)
        abort();
    return 0;
}
