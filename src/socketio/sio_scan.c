/* JSON scanner for pass-through events (see sio_scan.h). It follows jansson 2.14's load.c rule
 * for rule (lex_scan_string, lex_scan_number, parse_value/array/object, stream_get's UTF-8
 * check) rather than RFC 8259 alone, because the bytes it passes must be the ones the jansson
 * path would have accepted, no more and no fewer. Every read goes through peek(), which gives
 * -1 past the end. */
#include "socketio/sio_scan.h"

#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* jansson's JSON_PARSER_MAX_DEPTH: every value counts, scalars included. */
#define MAX_DEPTH 2048

/* Keys remembered for the duplicate test of `canonical`, across the objects open at once;
 * past this the text is simply not called canonical. */
#define MAX_KEYS 64

struct key {
    size_t start;
    size_t length;
};

struct scanner {
    const unsigned char *text;
    size_t length;
    size_t position;
    int canonical;
    struct key keys[MAX_KEYS];
    size_t key_count;
};

static int peek(const struct scanner *scanner)
{
    return scanner->position < scanner->length ? scanner->text[scanner->position] : -1;
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int is_hex(int c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int is_letter(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* jansson skips these four between tokens; JSON.stringify writes none of them. */
static void skip_space(struct scanner *scanner)
{
    for (;;) {
        int c = peek(scanner);
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            return;
        scanner->canonical = 0;
        scanner->position++;
    }
}

/* One UTF-8 sequence starting with a byte >= 0x80 (jansson's utf8_check_first/full). */
static int scan_utf8(struct scanner *scanner)
{
    unsigned first = scanner->text[scanner->position];
    size_t count;
    uint32_t value;
    if (first >= 0xC2 && first <= 0xDF) {
        count = 2;
        value = first & 0x1F;
    } else if (first >= 0xE0 && first <= 0xEF) {
        count = 3;
        value = first & 0x0F;
    } else if (first >= 0xF0 && first <= 0xF4) {
        count = 4;
        value = first & 0x07;
    } else {
        return -1;
    }
    if (scanner->length - scanner->position < count)
        return -1;
    for (size_t i = 1; i < count; i++) {
        unsigned byte = scanner->text[scanner->position + i];
        if (byte < 0x80 || byte > 0xBF)
            return -1;
        value = (value << 6) | (byte & 0x3F);
    }
    if (value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF) || (count == 3 && value < 0x800) ||
        (count == 4 && value < 0x10000))
        return -1;
    scanner->position += count;
    return 0;
}

static uint32_t hex_value(const unsigned char *hex)
{
    uint32_t value = 0;
    for (int i = 0; i < 4; i++) {
        int c = hex[i];
        value = value * 16 + (uint32_t)(is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return value;
}

/* The control characters JSON.stringify writes as \u00xx (the others have a short form). */
static int is_canonical_u_escape(uint32_t value, const unsigned char *hex)
{
    if (value >= 0x20 || value == '\b' || value == '\f' || value == '\n' || value == '\r' ||
        value == '\t')
        return 0;
    for (int i = 0; i < 4; i++) {
        if (hex[i] >= 'A' && hex[i] <= 'F')
            return 0;
    }
    return 1;
}

/* "\uXXXX" at position (after the backslash and 'u' were seen): its value, or -1. */
static int64_t read_u_escape(struct scanner *scanner)
{
    if (scanner->length - scanner->position < 4)
        return -1;
    const unsigned char *hex = scanner->text + scanner->position;
    for (int i = 0; i < 4; i++) {
        if (!is_hex(hex[i]))
            return -1;
    }
    scanner->position += 4;
    uint32_t value = hex_value(hex);
    if (!is_canonical_u_escape(value, hex))
        scanner->canonical = 0;
    return value;
}

/* The value of the \uXXXX escape at text[at], or -1 when there is none there. */
static int64_t u_escape_at(const char *text, size_t length, size_t at)
{
    if (length < 6 || at > length - 6 || text[at] != '\\' || text[at + 1] != 'u')
        return -1;
    const unsigned char *hex = (const unsigned char *)text + at + 2;
    for (int i = 0; i < 4; i++) {
        if (!is_hex(hex[i]))
            return -1;
    }
    return hex_value(hex);
}

char *sioc__sio_scan_without_lone_surrogates(const char *text, size_t length)
{
    char *copy = NULL;
    for (size_t at = 0; at < length; at++) {
        if (text[at] != '\\')
            continue;
        int64_t value = u_escape_at(text, length, at);
        if (value < 0xD800 || value > 0xDFFF) {
            at++; /* the escaped character, or the u of an escape without surrogates */
            continue;
        }
        int64_t low = u_escape_at(text, length, at + 6);
        if (value <= 0xDBFF && low >= 0xDC00 && low <= 0xDFFF) {
            at += 11; /* a pair */
            continue;
        }
        if (copy == NULL && (copy = malloc(length)) != NULL)
            memcpy(copy, text, length);
        if (copy == NULL)
            return NULL;
        memcpy(copy + at + 2, "FFFD", 4);
        at += 5;
    }
    return copy;
}

/* A backslash escape (position after the backslash). *has_nul is set by "\u0000". */
static int scan_escape(struct scanner *scanner, int *has_nul)
{
    int c = peek(scanner);
    scanner->position++;
    switch (c) {
    case '"':
    case '\\':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
        return 0;
    case '/':
        scanner->canonical = 0;
        return 0;
    case 'u':
        break;
    default:
        return -1;
    }
    int64_t value = read_u_escape(scanner);
    if (value < 0)
        return -1;
    if (value == 0)
        *has_nul = 1;
    if (value < 0xD800 || value > 0xDFFF)
        return 0;
    /* A high surrogate and an escaped low one are a pair; anything else is a lone surrogate,
     * which the decoder reads as U+FFFD: its value then differs from the bytes. */
    size_t after = scanner->position;
    if (value <= 0xDBFF && peek(scanner) == '\\' && after + 1 < scanner->length &&
        scanner->text[after + 1] == 'u') {
        scanner->position += 2;
        int64_t low = read_u_escape(scanner);
        if (low >= 0xDC00 && low <= 0xDFFF)
            return 0;
        scanner->position = after; /* the next escape is read on its own */
    }
    scanner->canonical = 0;
    return 0;
}

/* The top bit of each byte of word that may not be plain ASCII inside a string (a control
 * character, a quote, a backslash, a byte >= 0x80), and exactly that for the first one: a byte
 * below k borrows into its top bit when k is subtracted from every byte, a plain byte does not,
 * and a borrow only reaches the bytes above the one it came from. */
static uint64_t special_bytes(uint64_t word)
{
    const uint64_t ones = 0x0101010101010101u, tops = 0x8080808080808080u;
    uint64_t quote = word ^ (ones * '"'), backslash = word ^ (ones * '\\');
    return (word | (word - ones * 0x20) | (quote - ones) | (backslash - ones)) & tops;
}

/* The end of the run of plain ASCII at position: most strings are nothing else, and this is
 * every byte of every event's arguments, so eight at a time, in locals. */
static size_t skip_plain(const unsigned char *text, size_t position, size_t length)
{
    for (; position + sizeof(uint64_t) <= length; position += sizeof(uint64_t)) {
        uint64_t word;
        memcpy(&word, text + position, sizeof(word));
        uint64_t special = special_bytes(word);
        if (special == 0)
            continue;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        return position + (size_t)__builtin_ctzll(special) / 8; /* the first byte in memory */
#else
        break;
#endif
    }
    while (position < length && text[position] >= 0x20 && text[position] < 0x80 &&
           text[position] != '"' && text[position] != '\\')
        position++;
    return position;
}

/* A string (position at its opening quote); *escaped and *has_nul as the name says. */
static int scan_string(struct scanner *scanner, int *escaped, int *has_nul)
{
    scanner->position++;
    for (;;) {
        scanner->position = skip_plain(scanner->text, scanner->position, scanner->length);
        int c = peek(scanner);
        if (c == '"') {
            scanner->position++;
            return 0;
        }
        if (c < 0x20) /* the end (-1), or a control character */
            return -1;
        if (c == '\\') {
            *escaped = 1;
            scanner->position++;
            if (scan_escape(scanner, has_nul) != 0)
                return -1;
        } else if (c >= 0x80) {
            if (scan_utf8(scanner) != 0)
                return -1;
        } else {
            scanner->position++;
        }
    }
}

/* jansson's strtod refuses (as "real number overflow") what rounds to infinity, which is what
 * an integer beyond int64 becomes too once the decoder parses it again as a real. Only numbers
 * of about 1e308 need the real conversion; strtod needs a NUL-terminated copy in the locale's
 * decimal point, as jansson makes one. */
static int overflows_double(const unsigned char *text, size_t length)
{
    char *copy = malloc(length + 1);
    if (copy == NULL)
        return 1;
    memcpy(copy, text, length);
    copy[length] = '\0';
    char *point = memchr(copy, '.', length);
    if (point != NULL)
        *point = localeconv()->decimal_point[0];
    double value = strtod(copy, NULL);
    free(copy);
    return value == HUGE_VAL || value == -HUGE_VAL;
}

/* JSON.stringify's form of a number: no exponent, an integer of at most 15 digits (below
 * 2^53, so printed as written) other than -0, or a decimal fraction of at most 15 significant
 * digits without a trailing zero, at least 1e-6 (15 digits are read back and printed as written:
 * DBL_DIG). Anything else may print otherwise and is not called canonical. */
static int is_canonical_number(int negative, size_t integer_digits, int integer_zero,
                               size_t fraction_digits, size_t fraction_zeros, int has_exponent,
                               int trailing_zero)
{
    if (has_exponent)
        return 0;
    if (fraction_digits == 0)
        return integer_digits <= 15 && !(negative && integer_zero);
    if (trailing_zero)
        return 0;
    if (!integer_zero)
        return integer_digits + fraction_digits <= 15;
    return fraction_zeros < 6 && fraction_digits - fraction_zeros <= 15;
}

/* lex_scan_number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int scan_number(struct scanner *scanner)
{
    size_t start = scanner->position;
    int negative = peek(scanner) == '-';
    if (negative)
        scanner->position++;
    if (!is_digit(peek(scanner)))
        return -1;
    int integer_zero = peek(scanner) == '0';
    size_t integer_digits = 0;
    if (integer_zero) {
        scanner->position++;
        integer_digits = 1;
        if (is_digit(peek(scanner)))
            return -1;
    } else {
        while (is_digit(peek(scanner))) {
            scanner->position++;
            integer_digits++;
        }
    }
    /* The decimal exponent of the first significant digit (value in [10^e, 10^(e+1))), or
     * "zero" when every digit is 0. */
    int zero = integer_zero;
    int64_t exponent = integer_zero ? 0 : (int64_t)integer_digits - 1;
    size_t fraction_digits = 0, fraction_zeros = 0;
    int trailing_zero = 0;
    if (peek(scanner) == '.') {
        scanner->position++;
        if (!is_digit(peek(scanner)))
            return -1;
        while (is_digit(peek(scanner))) {
            int digit = peek(scanner);
            if (zero && digit != '0') {
                zero = 0;
                exponent = -(int64_t)fraction_digits - 1;
            }
            if (zero)
                fraction_zeros++;
            trailing_zero = digit == '0';
            fraction_digits++;
            scanner->position++;
        }
    }
    int has_exponent = peek(scanner) == 'e' || peek(scanner) == 'E';
    if (has_exponent) {
        scanner->position++;
        int exponent_negative = peek(scanner) == '-';
        if (peek(scanner) == '+' || peek(scanner) == '-')
            scanner->position++;
        if (!is_digit(peek(scanner)))
            return -1;
        int64_t written = 0;
        while (is_digit(peek(scanner))) {
            if (written < INT64_C(100000000000000)) /* saturates, far past any double */
                written = written * 10 + (peek(scanner) - '0');
            scanner->position++;
        }
        exponent += exponent_negative ? -written : written;
    }
    if (!is_canonical_number(negative, integer_digits, integer_zero, fraction_digits,
                             fraction_zeros, has_exponent, trailing_zero))
        scanner->canonical = 0;
    /* DBL_MAX is about 1.8e308: below 10^308 every value is finite, from 10^309 none is. */
    if (zero || exponent < 308)
        return 0;
    if (exponent > 308)
        return -1;
    return overflows_double(scanner->text + start, scanner->position - start) ? -1 : 0;
}

/* true, false, null: jansson reads a whole run of letters, then compares it. */
static int scan_literal(struct scanner *scanner)
{
    size_t start = scanner->position;
    while (is_letter(peek(scanner)))
        scanner->position++;
    size_t length = scanner->position - start;
    const char *word = (const char *)scanner->text + start;
    if ((length == 4 && memcmp(word, "true", 4) == 0) ||
        (length == 5 && memcmp(word, "false", 5) == 0) ||
        (length == 4 && memcmp(word, "null", 4) == 0))
        return 0;
    return -1;
}

static int scan_value(struct scanner *scanner, int depth);

static int scan_array(struct scanner *scanner, int depth)
{
    scanner->position++;
    skip_space(scanner);
    if (peek(scanner) == ']') {
        scanner->position++;
        return 0;
    }
    for (;;) {
        if (scan_value(scanner, depth + 1) != 0)
            return -1;
        skip_space(scanner);
        int c = peek(scanner);
        scanner->position++;
        if (c == ']')
            return 0;
        if (c != ',')
            return -1;
        skip_space(scanner);
    }
}

/* A key as JavaScript orders it first: a canonical array index ("0", "17"; below 2^32 - 1).
 * Any run of digits is treated so, which errs on the side of "not canonical". */
static int is_index_like(const unsigned char *key, size_t length)
{
    if (length == 0 || length > 10)
        return 0;
    for (size_t i = 0; i < length; i++) {
        if (!is_digit(key[i]))
            return 0;
    }
    return 1;
}

/* Canonical keys are equal exactly when their bytes are: JSON.stringify's escaping is unique. */
static void note_key(struct scanner *scanner, size_t first_key, size_t start, size_t length)
{
    if (!scanner->canonical)
        return;
    const unsigned char *key = scanner->text + start;
    if (is_index_like(key, length) || scanner->key_count == MAX_KEYS) {
        scanner->canonical = 0;
        return;
    }
    for (size_t i = first_key; i < scanner->key_count; i++) {
        const struct key *seen = &scanner->keys[i];
        if (seen->length == length && memcmp(scanner->text + seen->start, key, length) == 0) {
            scanner->canonical = 0;
            return;
        }
    }
    scanner->keys[scanner->key_count++] = (struct key){start, length};
}

static int scan_object(struct scanner *scanner, int depth)
{
    size_t first_key = scanner->key_count;
    scanner->position++;
    skip_space(scanner);
    if (peek(scanner) == '}') {
        scanner->position++;
        return 0;
    }
    for (;;) {
        if (peek(scanner) != '"')
            return -1;
        size_t key_start = scanner->position + 1;
        int escaped = 0, has_nul = 0;
        if (scan_string(scanner, &escaped, &has_nul) != 0 || has_nul)
            return -1; /* jansson: "NUL byte in object key not supported" */
        note_key(scanner, first_key, key_start, scanner->position - 1 - key_start);
        skip_space(scanner);
        if (peek(scanner) != ':')
            return -1;
        scanner->position++;
        skip_space(scanner);
        if (scan_value(scanner, depth + 1) != 0)
            return -1;
        skip_space(scanner);
        int c = peek(scanner);
        scanner->position++;
        if (c == '}') {
            if (scanner->key_count > first_key)
                scanner->key_count = first_key;
            return 0;
        }
        if (c != ',')
            return -1;
        skip_space(scanner);
    }
}

/* One value at position (white space before it already skipped). */
static int scan_value(struct scanner *scanner, int depth)
{
    if (depth > MAX_DEPTH)
        return -1;
    int c = peek(scanner);
    int escaped = 0, has_nul = 0;
    switch (c) {
    case '[':
        return scan_array(scanner, depth);
    case '{':
        return scan_object(scanner, depth);
    case '"':
        return scan_string(scanner, &escaped, &has_nul);
    case '-':
        return scan_number(scanner);
    default:
        if (is_digit(c))
            return scan_number(scanner);
        if (is_letter(c))
            return scan_literal(scanner);
        return -1;
    }
}

/* A raw NUL byte is refused anywhere: no JSON text holds one (sio_parser.c refuses it before
 * jansson sees it, as jansson would skip one after a number). */
static int scanner_init(struct scanner *scanner, const char *text, size_t length)
{
    scanner->text = (const unsigned char *)text;
    scanner->length = length;
    scanner->position = 0;
    scanner->canonical = 1;
    scanner->key_count = 0;
    return memchr(text, '\0', length) != NULL ? -1 : 0;
}

int sioc__sio_scan_json(const char *text, size_t length, int *canonical)
{
    struct scanner scanner;
    if (scanner_init(&scanner, text, length) != 0)
        return -1;
    skip_space(&scanner);
    if (scan_value(&scanner, 1) != 0)
        return -1;
    skip_space(&scanner);
    if (scanner.position != length)
        return -1;
    if (canonical != NULL)
        *canonical = scanner.canonical;
    return 0;
}

int sioc__sio_scan_event(const char *text, size_t length, sioc__sio_scan_t *out)
{
    struct scanner scanner;
    if (scanner_init(&scanner, text, length) != 0)
        return -1;
    memset(out, 0, sizeof(*out));
    skip_space(&scanner);
    if (peek(&scanner) != '[')
        return -1;
    scanner.position++;
    skip_space(&scanner);
    int c = peek(&scanner);
    out->name_is_string = c == '"';
    if (!out->name_is_string && c != '-' && !is_digit(c))
        return -1; /* no name, or one that is neither a string nor a number */
    size_t start = scanner.position;
    int has_nul = 0;
    int rc = out->name_is_string ? scan_string(&scanner, &out->name_escaped, &has_nul)
                                 : scan_number(&scanner);
    if (rc != 0)
        return -1;
    out->name_start = out->name_is_string ? start + 1 : start;
    out->name_length = scanner.position - start - (out->name_is_string ? 2 : 0);
    skip_space(&scanner);
    c = peek(&scanner);
    scanner.position++;
    out->args_start = c == ']' ? scanner.position - 1 : scanner.position;
    while (c == ',') {
        skip_space(&scanner);
        if (scan_value(&scanner, 2) != 0)
            return -1;
        skip_space(&scanner);
        c = peek(&scanner);
        scanner.position++;
    }
    if (c != ']')
        return -1;
    out->args_length = scanner.position - 1 - out->args_start;
    skip_space(&scanner);
    if (scanner.position != length)
        return -1;
    out->canonical = scanner.canonical;
    return 0;
}
