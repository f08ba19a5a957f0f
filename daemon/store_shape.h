/* Result shaping: the store's rows (store_driver.h's text cells) into the JSON its operations
 * answer, by a shape (sioc's own statements: columns by position) or by column name (the
 * application's statements, store.statements). Pure functions, any thread. */
#ifndef SIOC_DAEMON_STORE_SHAPE_H
#define SIOC_DAEMON_STORE_SHAPE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "store_driver.h"

/* SIOC__STORE_COLUMN_ID0/1: an id that is a JSON number when bit 0/1 of the row's id_numeric cell
 * (the one after the shape's columns) is set, else a string (rows from before schema 2). */
typedef enum sioc__store_column_kind {
    SIOC__STORE_COLUMN_TEXT,
    SIOC__STORE_COLUMN_BOOL,
    SIOC__STORE_COLUMN_JSON,
    SIOC__STORE_COLUMN_ID0,
    SIOC__STORE_COLUMN_ID1
} sioc__store_column_kind_t;

/* Result column i is JSON key columns[i].key; a shape with one column and a NULL key gives the
 * value itself (a list of user ids). */
typedef struct sioc__store_column_s {
    const char *key;
    sioc__store_column_kind_t kind;
} sioc__store_column_t;

typedef struct sioc__store_shape_s {
    const sioc__store_column_t *columns;
    size_t count;
} sioc__store_shape_t;

#define SIOC__STORE_SHAPE(columns)                                                                 \
    {                                                                                              \
        columns, sizeof(columns) / sizeof(columns[0])                                              \
    }

/* Rows by column name (the application's statements). */
extern const sioc__store_shape_t sioc__store_named_shape;

/* A row callback's return (store_driver.h's row_cb): the row could not be shaped. */
#define SIOC__STORE_ROWS_UNREADABLE 2

/* Gathers rows: the first one (one), all of them (array), or only their count and the first
 * cell as an integer (shape NULL: existence checks and seq lookups). */
typedef struct sioc__store_rows_s {
    const sioc__store_shape_t *shape;
    json_t *one;
    json_t *array;
    size_t count;
    int64_t number;
} sioc__store_rows_t;

/* A row as shape says (a new reference), or NULL: out of memory, too few cells, text that is
 * not UTF-8 or JSON. The cell after the shape's columns, when there is one, is the row's
 * id_numeric. */
json_t *sioc__store_row_value(const sioc__store_cell_t *cells, size_t count,
                              const sioc__store_shape_t *shape);

/* The application's row by column name, typed from each column (a new reference, or NULL). */
json_t *sioc__store_named_row(const sioc__store_cell_t *cells, size_t count);

/* store_driver.h's row callback for data, a sioc__store_rows_t. */
int sioc__store_on_row(void *data, const sioc__store_cell_t *cells, size_t count);

#endif
