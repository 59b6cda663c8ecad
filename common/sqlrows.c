#include "sqlrows.h"
#include "db.h"
#include "err.h"
#include "tstamp.h"

#include <stdlib.h>
#include <string.h>

json_t *sqlrows_cell(sqlite3_stmt *st, int c)
{
	switch (sqlite3_column_type(st, c)) {
	case SQLITE_INTEGER: return json_integer(sqlite3_column_int64(st, c));
	case SQLITE_FLOAT: return json_real(sqlite3_column_double(st, c));
	case SQLITE_NULL: return json_null();
	default: return json_string((const char *)sqlite3_column_text(st, c));
	}
}

json_t *sqlrows_object(sqlite3_stmt *st)
{
	json_t *obj = json_object();
	int nc = sqlite3_column_count(st);
	for (int c = 0; c < nc; c++)
		json_object_set_new(obj, sqlite3_column_name(st, c), sqlrows_cell(st, c));
	return obj;
}

json_t *sqlrows_array(sqlite3 *db, sqlite3_stmt *st)
{
	json_t *a = json_array();
	while (db_row(db, st))
		json_array_append_new(a, sqlrows_object(st));
	sqlite3_reset(st);
	return a;
}

static int is_time_column(const char *name)
{
	static const char *const names[] = {"at", "since", "ts", "day0", "first_seen", "last_seen",
	                                    "next_due", "not_before", "expires", NULL};
	size_t n = strlen(name);
	if (n > 3 && strcmp(name + n - 3, "_at") == 0)
		return 1;
	for (int i = 0; names[i]; i++)
		if (strcmp(name, names[i]) == 0)
			return 1;
	return 0;
}

static char *cell_text(sqlite3_stmt *st, int c, int local_times)
{
	if (sqlite3_column_type(st, c) == SQLITE_NULL)
		return xstrdup("-");
	if (local_times && sqlite3_column_type(st, c) == SQLITE_INTEGER && is_time_column(sqlite3_column_name(st, c))) {
		char buf[40];
		tstamp_format(sqlite3_column_int64(st, c), buf, sizeof buf);
		return xstrdup(buf);
	}
	char *s = xstrdup((const char *)sqlite3_column_text(st, c));
	for (char *p = s; *p; p++)
		if (*p == '\n' || *p == '\t' || *p == '\r')
			*p = ' ';  /* one row, one line */
	return s;
}

static int display_width(const char *s)
{
	int w = 0;
	for (const char *p = s; *p; p++)
		w += ((unsigned char)*p & 0xC0) != 0x80;
	return w;
}

void sqlrows_table(sqlite3 *db, sqlite3_stmt *st, FILE *out, int local_times)
{
	int nc = sqlite3_column_count(st);
	size_t rows = 0, cap = 64;
	char **cells = xmalloc(cap * (size_t)nc * sizeof *cells);
	int *width = xcalloc((size_t)nc, sizeof *width);
	for (int c = 0; c < nc; c++)
		width[c] = display_width(sqlite3_column_name(st, c));
	while (db_row(db, st)) {
		if (rows == cap)
			cells = xrealloc(cells, (cap *= 2) * (size_t)nc * sizeof *cells);
		for (int c = 0; c < nc; c++) {
			char *s = cell_text(st, c, local_times);
			cells[rows * (size_t)nc + (size_t)c] = s;
			if (display_width(s) > width[c])
				width[c] = display_width(s);
		}
		rows++;
	}
	sqlite3_reset(st);
	for (int c = 0; c < nc; c++)
		fprintf(out, "%s%-*s", c ? "  " : "", width[c], sqlite3_column_name(st, c));
	fputc('\n', out);
	for (size_t r = 0; r < rows; r++) {
		for (int c = 0; c < nc; c++) {
			char *s = cells[r * (size_t)nc + (size_t)c];
			fprintf(out, "%s%s%*s", c ? "  " : "", s, width[c] - display_width(s), "");
			free(s);
		}
		fputc('\n', out);
	}
	free(cells);
	free(width);
}

void sqlrows_fields(sqlite3 *db, sqlite3_stmt *st, FILE *out, int local_times)
{
	if (db_row(db, st)) {
		int nc = sqlite3_column_count(st), w = 0;
		for (int c = 0; c < nc; c++)
			if (display_width(sqlite3_column_name(st, c)) > w)
				w = display_width(sqlite3_column_name(st, c));
		for (int c = 0; c < nc; c++) {
			char *s = cell_text(st, c, local_times);
			fprintf(out, "%-*s  %s\n", w, sqlite3_column_name(st, c), s);
			free(s);
		}
	}
	sqlite3_reset(st);
}
