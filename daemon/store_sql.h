/* An application's SQL statement with named parameters (":roomId"), as the config gives it
 * (store.statements), turned into the numbered placeholders of a driver ("$1" for PostgreSQL,
 * "?1" for SQLite). Pure: no I/O, no database; the store prepares the result.
 *
 * Placeholders are ":" followed by a name ([A-Za-z_][A-Za-z0-9_]*). Left alone: "::" casts,
 * anything inside '...' (E'...' with backslash escapes), "..." identifiers, $tag$...$tag$
 * strings, -- and nested block comments. Each distinct name gets the next number, in order
 * of first appearance; a name used twice keeps its number. */
#ifndef SIOC_DAEMON_STORE_SQL_H
#define SIOC_DAEMON_STORE_SQL_H

#include <stddef.h>

#define SIOC__STORE_SQL_MAX_BYTES 65536
#define SIOC__STORE_SQL_MAX_PARAMS 16

typedef struct sioc__store_sql_s {
    char *text;                             /* owned, NUL-terminated */
    int params[SIOC__STORE_SQL_MAX_PARAMS]; /* placeholder N+1 is names[params[N]] */
    size_t count;
} sioc__store_sql_t;

/* Compiles sql (length bytes, no NUL inside) for style '$' or '?', with the names a statement
 * may use. 0 with out filled (sioc__store_sql_free releases it), or -1 with error filled:
 * "unknown parameter :x", "too many parameters (at most 16)", "unterminated quoted string",
 * "unterminated comment", "unterminated $tag$ string", "empty statement", "the statement is
 * longer than 65536 bytes", "NUL character in the statement". */
int sioc__store_sql_compile(const char *sql, size_t length, char style, const char *const *names,
                            size_t name_count, sioc__store_sql_t *out, char *error,
                            size_t error_size);

void sioc__store_sql_free(
    sioc__store_sql_t *sql); /* NULL-safe; the struct itself is the caller's */

#define SIOC__STORE_SQL_TIME_SIZE 32

/* A timestamp of the application's tables as PostgreSQL writes it in UTC ("2026-11-21
 * 21:00:00.123456+00", fraction and offset optional, "T" accepted) into the seeds' form
 * ("2026-11-21T21:00:00.123Z"). 1 when converted; 0 (out untouched) for anything else,
 * another offset included. Reads exactly length bytes. */
int sioc__store_sql_iso_time(const char *text, size_t length, char out[SIOC__STORE_SQL_TIME_SIZE]);

#endif
