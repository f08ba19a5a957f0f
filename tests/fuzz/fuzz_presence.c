/* Fuzzes the decoder of another node's presence gossip (presence_decode). The input is the
 * JSON text of the event's arguments (NULs allowed, as Redis carries them). Beyond memory errors
 * it checks the contract: a refusal names its reason and leaves the message zeroed; a decoded
 * message has a node uid that fits without a NUL, a known op, and a bounded array of user ids
 * that driver_id_text accepts. */
#include <sioc_adapter.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/driver_util.h"
#include "drivers/presence.h"

static void require(int condition)
{
    if (!condition)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t json_error;
    json_t *args =
        json_loadb((const char *)data, size, JSON_ALLOW_NUL | JSON_DECODE_ANY, &json_error);
    if (args == NULL)
        return 0;
    presence_message_t message;
    const char *error = NULL;
    if (presence_decode(args, &message, &error) != 0) {
        require(error != NULL && message.node == NULL && message.users == NULL);
    } else {
        size_t length = strlen(message.node);
        require(length > 0 && length < SIOC_ADAPTER_UID_SIZE);
        require(message.op == PRESENCE_UP || message.op == PRESENCE_DOWN ||
                message.op == PRESENCE_SYNC);
        require(json_is_array(message.users) &&
                json_array_size(message.users) <= PRESENCE_MAX_USERS);
        size_t index;
        json_t *id;
        json_array_foreach(message.users, index, id)
        {
            char key[DRIVER_MAX_ID_BYTES + 1];
            require(driver_id_text(id, key) == 0);
        }
    }
    json_decref(args);
    return 0;
}
