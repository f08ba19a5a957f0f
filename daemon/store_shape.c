/* Result shaping (store_shape.h). */
#include "store_shape.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store_sql.h"

const sioc__store_shape_t sioc__store_named_shape = {NULL, 0};

/* A numeric id's decimal text as the JSON number it was written as. */
static json_t *id_number(const sioc__store_cell_t *cell)
{
    char *end = NULL;
    errno = 0;
    long long number = strtoll(cell->bytes, &end, 10);
    if (cell->length == 0 || errno != 0 || end != cell->bytes + cell->length)
        return json_stringn(cell->bytes, cell->length); /* edited by hand: keep the text */
    return json_integer((json_int_t)number);
}

/* A new reference, or NULL (out of memory, or text that is not UTF-8 or JSON). id_numeric
 * is the row's id_numeric bits. */
static json_t *column_value(const sioc__store_cell_t *cell, sioc__store_column_kind_t kind,
                            int64_t id_numeric)
{
    if (cell->bytes == NULL)
        return json_null();
    if (kind == SIOC__STORE_COLUMN_ID0 || kind == SIOC__STORE_COLUMN_ID1)
        return (id_numeric & (kind == SIOC__STORE_COLUMN_ID0 ? 1 : 2)) != 0
                   ? id_number(cell)
                   : json_stringn(cell->bytes, cell->length);
    if (kind == SIOC__STORE_COLUMN_BOOL)
        return json_boolean(cell->length > 0 && (cell->bytes[0] == 't' || cell->bytes[0] == '1'));
    if (kind == SIOC__STORE_COLUMN_JSON)
        return json_loadb(cell->bytes, cell->length, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    return json_stringn(cell->bytes, cell->length);
}

json_t *sioc__store_row_value(const sioc__store_cell_t *cells, size_t count,
                              const sioc__store_shape_t *shape)
{
    if (count < shape->count)
        return NULL; /* a driver bug, or a statement returning too few columns */
    int64_t id_numeric = 0;
    if (count > shape->count && cells[shape->count].bytes != NULL)
        id_numeric = strtoll(cells[shape->count].bytes, NULL, 10);
    if (shape->columns[0].key == NULL)
        return column_value(&cells[0], shape->columns[0].kind, id_numeric);
    json_t *object = json_object();
    for (size_t index = 0; object != NULL && index < shape->count; index++) {
        json_t *value = column_value(&cells[index], shape->columns[index].kind, id_numeric);
        if (json_object_set_new(object, shape->columns[index].key, value) != 0) {
            json_decref(object);
            object = NULL;
        }
    }
    return object;
}

int sioc__store_on_row(void *data, const sioc__store_cell_t *cells, size_t count)
{
    sioc__store_rows_t *rows = data;
    rows->count++;
    if (rows->shape == NULL) {
        if (rows->count == 1 && count > 0 && cells[0].bytes != NULL)
            rows->number = strtoll(cells[0].bytes, NULL, 10);
        return 0;
    }
    if (rows->array == NULL && rows->count > 1)
        return 0;
    json_t *value = rows->shape == &sioc__store_named_shape
                        ? sioc__store_named_row(cells, count)
                        : sioc__store_row_value(cells, count, rows->shape);
    if (value == NULL)
        return SIOC__STORE_ROWS_UNREADABLE;
    if (rows->array == NULL) {
        rows->one = value;
        return 0;
    }
    return json_array_append_new(rows->array, value) == 0 ? 0 : SIOC__STORE_ROWS_UNREADABLE;
}

static json_t *integer_value(const sioc__store_cell_t *cell)
{
    return json_integer((json_int_t)strtoll(cell->bytes, NULL, 10));
}

/* A cell of the application's row, typed from its column (and, for the keys whose type the
 * daemon relies on, from the key). A new reference, or NULL. */
static json_t *named_value(const sioc__store_cell_t *cell)
{
    if (cell->bytes == NULL)
        return json_null();
    const char *name = cell->name != NULL ? cell->name : "";
    if (strcmp(name, "isPrivate") == 0 || strcmp(name, "read") == 0)
        return column_value(cell, SIOC__STORE_COLUMN_BOOL, 0);
    if (strcmp(name, "payload") == 0 || cell->kind == SIOC__STORE_CELL_JSON)
        return column_value(cell, SIOC__STORE_COLUMN_JSON, 0);
    /* Ids and references (senderId, roomId, ...) keep their column's type too: the app's
     * integer ids stay numbers, as Sequelize returns them (the drivers take both). */
    char time[SIOC__STORE_SQL_TIME_SIZE];
    switch (cell->kind) {
    case SIOC__STORE_CELL_INTEGER:
        return integer_value(cell);
    case SIOC__STORE_CELL_BOOL:
        return column_value(cell, SIOC__STORE_COLUMN_BOOL, 0);
    case SIOC__STORE_CELL_TIME:
        if (sioc__store_sql_iso_time(cell->bytes, cell->length, time))
            return json_string(time);
        return column_value(cell, SIOC__STORE_COLUMN_TEXT, 0);
    default:
        return column_value(cell, SIOC__STORE_COLUMN_TEXT, 0);
    }
}

json_t *sioc__store_named_row(const sioc__store_cell_t *cells, size_t count)
{
    json_t *object = json_object();
    for (size_t index = 0; object != NULL && index < count; index++) {
        if (cells[index].name == NULL ||
            json_object_set_new(object, cells[index].name, named_value(&cells[index])) != 0) {
            json_decref(object);
            object = NULL;
        }
    }
    return object;
}
