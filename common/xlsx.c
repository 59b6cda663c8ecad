#include "xlsx.h"
#include "db.h"
#include "err.h"
#include "tstamp.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xlsxwriter.h>

#define XLSX_MAX_ROWS 1048576   /* a sheet's rows, the header included */
#define XLSX_EXACT_INT 999999999999999LL  /* 15 digits: a spreadsheet keeps them */

enum cell_kind { CELL_AUTO, CELL_TEXT, CELL_MONEY, CELL_TIME };

/* How a column is written, by its documented name. */
static enum cell_kind column_kind(const char *name)
{
	static const char *const money[] = {"spend", "net_spend", "refunded", "aov", "amount", NULL};
	static const char *const times[] = {"first_seen", "last_seen", "first_order_at", "last_order_at",
	                                    "since", "computed_at", "ts", "expires", NULL};
	static const char *const text[] = {"attrs", "nickname", "city", "staff", NULL};
	for (int i = 0; money[i]; i++)
		if (strcmp(name, money[i]) == 0)
			return CELL_MONEY;
	for (int i = 0; times[i]; i++)
		if (strcmp(name, times[i]) == 0)
			return CELL_TIME;
	for (int i = 0; text[i]; i++)
		if (strcmp(name, text[i]) == 0)
			return CELL_TEXT;
	return CELL_AUTO;
}

struct book {
	lxw_workbook *wb;
	lxw_worksheet *ws;
	lxw_format *head, *money, *time;
	int sheets;
	lxw_row_t row;
	sqlite3_stmt *st;
	const struct rules *r;
};

static int main_kind(const struct idkind *k) { return k->max == 1; }

static lxw_error new_sheet(struct book *b)
{
	char name[32];
	snprintf(name, sizeof name, b->sheets ? "members %d" : "members", b->sheets + 1);
	b->ws = workbook_add_worksheet(b->wb, name);
	if (!b->ws)
		return LXW_ERROR_MEMORY_MALLOC_FAILED;
	b->sheets++;
	b->row = 0;
	lxw_col_t c = 0;
	lxw_error e = worksheet_write_string(b->ws, 0, c++, "pid", b->head);
	for (size_t i = 0; !e && i < b->r->nkinds; i++)
		if (main_kind(&b->r->kinds[i]))
			e = worksheet_write_string(b->ws, 0, c++, b->r->kinds[i].name, b->head);
	for (int k = 1; !e && k < sqlite3_column_count(b->st); k++)
		e = worksheet_write_string(b->ws, 0, c++, sqlite3_column_name(b->st, k), b->head);
	worksheet_freeze_panes(b->ws, 1, 0);
	b->row = 1;
	return e;
}

static lxw_error put_time(struct book *b, lxw_col_t c, int64_t t)
{
	struct tm tm;
	tstamp_utc_to_local(t, &tm);
	if (tm.tm_year + 1900 < 1900 || tm.tm_year + 1900 > 9999) { /* outside Excel's dates: as text */
		char buf[40];
		tstamp_format(t, buf, sizeof buf);
		return worksheet_write_string(b->ws, b->row, c, buf, NULL);
	}
	lxw_datetime dt = {tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec};
	return worksheet_write_datetime(b->ws, b->row, c, &dt, b->time);
}

static lxw_error put_cell(struct book *b, lxw_col_t c, int k)
{
	sqlite3_stmt *st = b->st;
	int type = sqlite3_column_type(st, k);
	enum cell_kind kind = column_kind(sqlite3_column_name(st, k));
	if (type == SQLITE_NULL)
		return LXW_NO_ERROR;
	const char *s = (const char *)sqlite3_column_text(st, k);
	if (kind == CELL_TEXT || type == SQLITE_TEXT || type == SQLITE_BLOB)
		return worksheet_write_string(b->ws, b->row, c, s, NULL);
	if (kind == CELL_MONEY) /* fen to yuan */
		return worksheet_write_number(b->ws, b->row, c, sqlite3_column_double(st, k) / 100.0, b->money);
	if (kind == CELL_TIME && type == SQLITE_INTEGER)
		return put_time(b, c, sqlite3_column_int64(st, k));
	if (type == SQLITE_INTEGER && llabs(sqlite3_column_int64(st, k)) > XLSX_EXACT_INT)
		return worksheet_write_string(b->ws, b->row, c, s, NULL); /* would lose digits */
	return worksheet_write_number(b->ws, b->row, c, sqlite3_column_double(st, k), NULL);
}

static lxw_error put_row(struct book *b, struct person_lookup *pl, int64_t pid)
{
	lxw_error e = LXW_NO_ERROR;
	if (b->row == XLSX_MAX_ROWS)
		e = new_sheet(b);
	char buf[32];
	snprintf(buf, sizeof buf, "%lld", (long long)pid);
	lxw_col_t c = 0;
	if (!e)
		e = worksheet_write_string(b->ws, b->row, c++, buf, NULL);
	json_t *ids = json_object();
	person_add_ids(pl, pid, ids);
	for (size_t i = 0; !e && i < b->r->nkinds; i++) {
		if (!main_kind(&b->r->kinds[i]))
			continue;
		const char *v = json_string_value(json_object_get(ids, b->r->kinds[i].name));
		if (v)
			e = worksheet_write_string(b->ws, b->row, c, v, NULL);
		c++;
	}
	json_decref(ids);
	for (int k = 1; !e && k < sqlite3_column_count(b->st); k++)
		e = put_cell(b, c++, k);
	b->row++;
	return e;
}

static int fail(char *err, size_t errlen, const char *path, const char *why)
{
	snprintf(err, errlen, "%s: %s", path, why);
	return -1;
}

long xlsx_members(sqlite3 *db, sqlite3_stmt *st, struct person_lookup *pl, const struct rules *r,
                  const char *path, char *err, size_t errlen)
{
	char *tmp = xasprintf("%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600); /* 0600 before any byte */
	if (fd < 0 || close(fd) != 0) {
		fail(err, errlen, tmp, strerror(errno));
		free(tmp);
		return -1;
	}
	lxw_workbook_options opt = {.constant_memory = LXW_TRUE, .use_zip64 = LXW_TRUE};
	struct book b = {.wb = workbook_new_opt(tmp, &opt), .st = st, .r = r};
	long n = 0;
	lxw_error e = b.wb ? LXW_NO_ERROR : LXW_ERROR_CREATING_TMPFILE;
	if (!e) {
		b.head = workbook_add_format(b.wb);
		format_set_bold(b.head);
		b.money = workbook_add_format(b.wb);
		format_set_num_format(b.money, "0.00");
		b.time = workbook_add_format(b.wb);
		format_set_num_format(b.time, "yyyy-mm-dd hh:mm:ss");
		e = new_sheet(&b);
	}
	while (!e && db_row(db, st)) {
		e = put_row(&b, pl, sqlite3_column_int64(st, 0));
		n++;
	}
	if (b.wb) {
		lxw_error ce = workbook_close(b.wb);
		if (!e)
			e = ce;
	}
	if (!e && rename(tmp, path) != 0)
		n = fail(err, errlen, path, strerror(errno));
	else if (e)
		n = fail(err, errlen, tmp, lxw_strerror(e));
	if (n < 0)
		unlink(tmp);
	free(tmp);
	return n;
}
