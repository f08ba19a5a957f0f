/* What the embedded recovery store (recovery_store.h) reads back from its file and from clients,
 * checked before use: the offsets clients present, and the rows of its tables (which anyone
 * with the file may have written). Pure functions: no I/O, no globals; every input is bounded
 * by its length (texts may hold NULs).
 *
 * An offset is "<epoch>-<seq>": epoch, RECOVERY_EPOCH_LENGTH lowercase hex digits drawn when the
 * file was created, and seq, the log row's id in decimal (1..INT64_MAX, no sign, no leading
 * zero). Row ids never repeat within a file (AUTOINCREMENT) and the epoch changes with the file,
 * so an offset names one packet of one file: an offset of a deleted file, of another daemon or
 * made up finds nothing and gives a fresh session. */
#ifndef SIOC_DAEMON_RECOVERY_CODEC_H
#define SIOC_DAEMON_RECOVERY_CODEC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define RECOVERY_EPOCH_LENGTH 16
/* Attachments of one logged packet (the library's max_attachments is far lower). */
#define RECOVERY_MAX_ATTACHMENTS 1000

/* out must hold RECOVERY_EPOCH_LENGTH + 21 bytes (at most 36, within SIOC_RECOVERY_OFFSET_MAX). */
void recovery_offset_format(char *out, size_t size, const char *epoch, int64_t seq);
/* 0 and *seq when text[0..length) is an offset of epoch; -1 otherwise. */
int recovery_offset_parse(const char *text, size_t length, const char *epoch, int64_t *seq);
/* 1 when text is RECOVERY_EPOCH_LENGTH lowercase hex digits. */
int recovery_epoch_valid(const char *text, size_t length);

/* A stored session's rooms (a JSON array of strings) and data (any JSON value): 0 with both
 * (new references), or -1 (garbage) with both NULL. */
int recovery_session_decode(const char *rooms, size_t rooms_length, const char *data,
                            size_t data_length, json_t **rooms_out, json_t **data_out);

/* A stored log entry: data, a JSON array [name, ...args] whose name is a string and whose
 * binary placeholders ({"_placeholder":true,"num":n}) all name one of attachment_count
 * attachments (0..RECOVERY_MAX_ATTACHMENTS); rooms and except, arrays of strings. 0 with the
 * three (new references), or -1 with all NULL. */
int recovery_entry_decode(const char *data, size_t data_length, const char *rooms,
                          size_t rooms_length, const char *except, size_t except_length,
                          int64_t attachment_count, json_t **data_out, json_t **rooms_out,
                          json_t **except_out);

/* socket.io-adapter's shouldIncludePacket on name arrays: 1 when a socket in session_rooms gets
 * a packet sent to rooms (every socket when empty) except those in except. */
int recovery_entry_selects(json_t *session_rooms, json_t *rooms, json_t *except);

#endif
