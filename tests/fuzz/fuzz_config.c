/* Fuzzes configuration loading: any text is parsed and validated without crashing, and either
 * loads or refuses with a message naming the file. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    config_t config;
    char error[1024] = "";
    int rc = config_load_text("fuzz.json", (const char *)data, size, &config, error, sizeof(error));
    if (rc != 0 && strncmp(error, "fuzz.json", 9) != 0)
        abort();
    if (rc == 0) {
        const char *path[] = {"channels", NULL};
        (void)config_line_of(&config, path);
    }
    config_free(&config);
    return 0;
}
