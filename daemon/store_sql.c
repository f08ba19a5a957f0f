/* Named parameters in application statements (store_sql.h). */
#include "store_sql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct compiler_s {
    const char *sql;
    size_t length;
    size_t at;
    char *out;
    size_t used;
    size_t size;
    char style;
    const char *const *names;
    size_t name_count;
    sioc__store_sql_t *result;
    char *error;
    size_t error_size;
} compiler_t;

static int is_name_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int is_name_char(char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

static int refuse(compiler_t *c, const char *message)
{
    snprintf(c->error, c->error_size, "%s", message);
    return -1;
}

/* Appends bytes; the output buffer was sized for the worst case up front. */
static void emit(compiler_t *c, const char *bytes, size_t count)
{
    memcpy(c->out + c->used, bytes, count);
    c->used += count;
}

/* Copies up to and including the closing quote; a doubled quote (or, in E'', a backslash)
 * escapes. 0, or -1 when the string never ends. */
static int copy_quoted(compiler_t *c, char quote, int backslashes)
{
    size_t start = c->at++;
    while (c->at < c->length) {
        char ch = c->sql[c->at++];
        if (backslashes && ch == '\\' && c->at < c->length) {
            c->at++;
        } else if (ch == quote) {
            if (c->at < c->length && c->sql[c->at] == quote) {
                c->at++;
                continue;
            }
            emit(c, c->sql + start, c->at - start);
            return 0;
        }
    }
    return refuse(c,
                  quote == '"' ? "unterminated quoted identifier" : "unterminated quoted string");
}

static int copy_line_comment(compiler_t *c)
{
    size_t start = c->at;
    while (c->at < c->length && c->sql[c->at] != '\n')
        c->at++;
    emit(c, c->sql + start, c->at - start);
    return 0;
}

/* Block comments nest, as in PostgreSQL. */
static int copy_block_comment(compiler_t *c)
{
    size_t start = c->at;
    int depth = 0;
    while (c->at + 1 < c->length) {
        if (c->sql[c->at] == '/' && c->sql[c->at + 1] == '*') {
            depth++;
            c->at += 2;
        } else if (c->sql[c->at] == '*' && c->sql[c->at + 1] == '/') {
            depth--;
            c->at += 2;
            if (depth == 0) {
                emit(c, c->sql + start, c->at - start);
                return 0;
            }
        } else {
            c->at++;
        }
    }
    return refuse(c, "unterminated comment");
}

/* At "$": a $tag$...$tag$ string is copied whole; any other "$" is an ordinary byte. */
static int copy_dollar(compiler_t *c)
{
    size_t tag_end = c->at + 1;
    while (tag_end < c->length && is_name_char(c->sql[tag_end]) &&
           !(tag_end == c->at + 1 && c->sql[tag_end] >= '0' && c->sql[tag_end] <= '9'))
        tag_end++;
    if (tag_end >= c->length || c->sql[tag_end] != '$') {
        emit(c, c->sql + c->at++, 1);
        return 0;
    }
    size_t tag_length = tag_end + 1 - c->at;
    const char *tag = c->sql + c->at;
    for (size_t end = tag_end + 1; end + tag_length <= c->length; end++) {
        if (memcmp(c->sql + end, tag, tag_length) == 0) {
            emit(c, tag, end + tag_length - c->at);
            c->at = end + tag_length;
            return 0;
        }
    }
    return refuse(c, "unterminated $tag$ string");
}

/* The number (1-based) of name, given a new one if it is the first use; -1 when unknown or
 * one too many. */
static int placeholder_number(compiler_t *c, const char *name, size_t name_length)
{
    size_t index = 0;
    while (index < c->name_count && !(strlen(c->names[index]) == name_length &&
                                      memcmp(c->names[index], name, name_length) == 0))
        index++;
    if (index == c->name_count) {
        snprintf(c->error, c->error_size, "unknown parameter :%.*s", (int)name_length, name);
        return -1;
    }
    for (size_t n = 0; n < c->result->count; n++) {
        if (c->result->params[n] == (int)index)
            return (int)n + 1;
    }
    if (c->result->count == SIOC__STORE_SQL_MAX_PARAMS)
        return refuse(c, "too many parameters (at most 16)");
    c->result->params[c->result->count++] = (int)index;
    return (int)c->result->count;
}

/* At ":": "::" is copied, ":name" becomes a placeholder, a lone ":" stays. */
static int copy_colon(compiler_t *c)
{
    if (c->at + 1 < c->length && c->sql[c->at + 1] == ':') {
        emit(c, "::", 2);
        c->at += 2;
        return 0;
    }
    if (c->at + 1 >= c->length || !is_name_start(c->sql[c->at + 1])) {
        emit(c, ":", 1);
        c->at++;
        return 0;
    }
    size_t start = ++c->at;
    while (c->at < c->length && is_name_char(c->sql[c->at]))
        c->at++;
    int number = placeholder_number(c, c->sql + start, c->at - start);
    if (number < 0)
        return -1;
    char text[8];
    int count = snprintf(text, sizeof(text), "%c%d", c->style, number);
    emit(c, text, (size_t)count);
    return 0;
}

static int compile_step(compiler_t *c)
{
    char ch = c->sql[c->at];
    char next = c->at + 1 < c->length ? c->sql[c->at + 1] : '\0';
    if (ch == '\'') {
        int escaped = c->at > 0 && (c->sql[c->at - 1] == 'E' || c->sql[c->at - 1] == 'e') &&
                      (c->at < 2 || !is_name_char(c->sql[c->at - 2]));
        return copy_quoted(c, '\'', escaped);
    }
    if (ch == '"')
        return copy_quoted(c, '"', 0);
    if (ch == '-' && next == '-')
        return copy_line_comment(c);
    if (ch == '/' && next == '*')
        return copy_block_comment(c);
    if (ch == '$')
        return copy_dollar(c);
    if (ch == ':')
        return copy_colon(c);
    emit(c, &ch, 1);
    c->at++;
    return 0;
}

static int has_content(const char *sql, size_t length)
{
    for (size_t index = 0; index < length; index++) {
        if (sql[index] != ' ' && sql[index] != '\t' && sql[index] != '\n' && sql[index] != '\r')
            return 1;
    }
    return 0;
}

int sioc__store_sql_compile(const char *sql, size_t length, char style, const char *const *names,
                            size_t name_count, sioc__store_sql_t *out, char *error,
                            size_t error_size)
{
    memset(out, 0, sizeof(*out));
    compiler_t c = {sql, length, 0, NULL, 0, 0, style, names, name_count, out, error, error_size};
    if (length > SIOC__STORE_SQL_MAX_BYTES)
        return refuse(&c, "the statement is longer than 65536 bytes");
    if (memchr(sql, '\0', length) != NULL)
        return refuse(&c, "NUL character in the statement");
    if (!has_content(sql, length))
        return refuse(&c, "empty statement");
    /* ":a" (2 bytes) becomes at most "$16" (3): twice the input is always enough. */
    c.size = 2 * length + 1;
    if ((c.out = malloc(c.size)) == NULL)
        return refuse(&c, "out of memory");
    while (c.at < c.length) {
        if (compile_step(&c) != 0) {
            free(c.out);
            out->count = 0;
            return -1;
        }
    }
    c.out[c.used] = '\0';
    out->text = c.out;
    return 0;
}

void sioc__store_sql_free(sioc__store_sql_t *sql)
{
    if (sql == NULL)
        return;
    free(sql->text);
    sql->text = NULL;
    sql->count = 0;
}

/* "2026-11-21 21:00:00.123456+00" (PostgreSQL's ISO output in UTC) as
 * "2026-11-21T21:00:00.123Z". 1 when converted, 0 when the text is not that (left as is). */
int sioc__store_sql_iso_time(const char *text, size_t length, char out[SIOC__STORE_SQL_TIME_SIZE])
{
    static const char pattern[] = "dddd-dd-dd dd:dd:dd";
    if (length < sizeof(pattern) - 1)
        return 0;
    for (size_t index = 0; index < sizeof(pattern) - 1; index++) {
        char want = pattern[index], ch = text[index];
        if (want == 'd' ? !(ch >= '0' && ch <= '9')
                        : (index == 10 ? ch != ' ' && ch != 'T' : ch != want))
            return 0;
    }
    char fraction[4] = "000";
    size_t at = sizeof(pattern) - 1;
    if (at < length && text[at] == '.') {
        for (at++; at < length && text[at] >= '0' && text[at] <= '9'; at++) {
            size_t digit = at - (sizeof(pattern) - 1) - 1;
            if (digit < 3)
                fraction[digit] = text[at];
        }
    }
    size_t rest = length - at;
    int utc = rest == 0 || (rest == 1 && text[at] == 'Z') ||
              (rest == 3 && memcmp(text + at, "+00", 3) == 0) ||
              (rest == 6 && memcmp(text + at, "+00:00", 6) == 0);
    if (!utc)
        return 0;
    snprintf(out, SIOC__STORE_SQL_TIME_SIZE, "%.10sT%.8s.%sZ", text, text + 11, fraction);
    return 1;
}
