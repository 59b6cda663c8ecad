/* Rows of an SQL statement as JSON values or as an aligned text table:
 * what smr-report and smr-person print. */
#ifndef SMR_SQLROWS_H
#define SMR_SQLROWS_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>

/* Column C of the current row as a JSON integer, real, string or null. */
json_t *sqlrows_cell(sqlite3_stmt *st, int c);
/* The current row as an object keyed by column name. */
json_t *sqlrows_object(sqlite3_stmt *st);
/* Every remaining row as an array of objects (the statement is reset). */
json_t *sqlrows_array(sqlite3 *db, sqlite3_stmt *st);

/* Step ST to the end, printing a header and its rows in aligned columns
 * ("-" for NULL). With LOCAL_TIMES, integer columns named as times (*_at,
 * since, ts, day0, first_seen, last_seen, next_due, not_before) are shown
 * as local ISO 8601. */
void sqlrows_table(sqlite3 *db, sqlite3_stmt *st, FILE *out, int local_times);

/* The first row of ST as "name  value" lines (for a single wide row). */
void sqlrows_fields(sqlite3 *db, sqlite3_stmt *st, FILE *out, int local_times);

#endif
