#include "members.h"
#include "db.h"
#include "err.h"
#include "ndjson.h"

#include <csv.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static _Noreturn void out_fail(void)
{
	smr_die(SMR_FATAL, "stdout: %s", strerror(errno ? errno : EIO));
}

static void put(FILE *out, const char *s)
{
	if (fputs(s, out) == EOF)
		out_fail();
}

/* A plain decimal number: [+-]digits[.digits]. */
static int plain_number(const char *s)
{
	s += *s == '+' || *s == '-';
	size_t n = strspn(s, "0123456789");
	if (n == 0)
		return 0;
	s += n;
	if (*s == '.') {
		n = strspn(++s, "0123456789");
		if (n == 0)
			return 0;
		s += n;
	}
	return *s == '\0';
}

int csv_formula_risk(const char *s)
{
	return s && *s && strchr("=+-@\t\r", *s) && !plain_number(s);
}

static void csv_field(FILE *out, int first, const char *s)
{
	if (!first)
		put(out, ",");
	if (!s)
		return;
	/* libcsv quotes the field; the apostrophe goes inside the quotes */
	char *safe = csv_formula_risk(s) ? xasprintf("'%s", s) : NULL;
	const char *v = safe ? safe : s;
	int rc = csv_fwrite(out, v, strlen(v));
	free(safe);
	if (rc != 0)
		out_fail();
}

static void csv_end(FILE *out) { put(out, "\r\n"); }

static int main_kind(const struct idkind *k) { return k->max == 1; }

static void csv_header(const struct members_fmt *fmt, sqlite3_stmt *st, const struct rules *r)
{
	if (fmt->bom)
		put(fmt->out, "\xEF\xBB\xBF");
	csv_field(fmt->out, 1, "pid");
	for (size_t i = 0; i < r->nkinds; i++)
		if (main_kind(&r->kinds[i]))
			csv_field(fmt->out, 0, r->kinds[i].name);
	for (int c = 1; c < sqlite3_column_count(st); c++)
		csv_field(fmt->out, 0, sqlite3_column_name(st, c));
	csv_end(fmt->out);
}

static json_t *column_json(sqlite3_stmt *st, int c)
{
	switch (sqlite3_column_type(st, c)) {
	case SQLITE_INTEGER:
		return json_integer(sqlite3_column_int64(st, c));
	case SQLITE_FLOAT:
		return json_real(sqlite3_column_double(st, c));
	case SQLITE_NULL:
		return json_null();
	default: {
		const char *s = (const char *)sqlite3_column_text(st, c);
		if (strcmp(sqlite3_column_name(st, c), "attrs") == 0) {
			json_t *o = json_loads(s, 0, NULL);
			if (o)
				return o;
		}
		return json_string(s);
	}
	}
}

static void print_json(const struct members_fmt *fmt, sqlite3_stmt *st, struct person_lookup *pl, int64_t pid)
{
	json_t *o = json_object();
	json_object_set_new(o, "pid", json_integer(pid));
	person_add_ids(pl, pid, o);
	for (int c = 1; c < sqlite3_column_count(st); c++)
		json_object_set_new(o, sqlite3_column_name(st, c), column_json(st, c));
	ndjson_put(fmt->out, o, 0);
}

static void print_csv(const struct members_fmt *fmt, sqlite3_stmt *st, struct person_lookup *pl,
                      const struct rules *r, int64_t pid)
{
	char buf[32];
	json_t *ids = json_object();
	person_add_ids(pl, pid, ids);
	snprintf(buf, sizeof buf, "%lld", (long long)pid);
	csv_field(fmt->out, 1, buf);
	for (size_t i = 0; i < r->nkinds; i++)
		if (main_kind(&r->kinds[i]))
			csv_field(fmt->out, 0, json_string_value(json_object_get(ids, r->kinds[i].name)));
	for (int c = 1; c < sqlite3_column_count(st); c++)
		csv_field(fmt->out, 0, (const char *)sqlite3_column_text(st, c));
	csv_end(fmt->out);
	json_decref(ids);
}

long members_print(sqlite3 *db, sqlite3_stmt *st, struct person_lookup *pl, const struct rules *r,
                   const struct members_fmt *fmt)
{
	long n = 0;
	if (fmt->csv)
		csv_header(fmt, st, r);
	while (db_row(db, st)) {
		int64_t pid = sqlite3_column_int64(st, 0);
		if (fmt->csv)
			print_csv(fmt, st, pl, r, pid);
		else
			print_json(fmt, st, pl, pid);
		n++;
	}
	if (fflush(fmt->out) != 0)
		out_fail();
	return n;
}

void members_print_counts(const struct members_fmt *fmt, const char *key, const char *const *names,
                          const long *counts, size_t n)
{
	char buf[32];
	if (fmt->csv) {
		if (fmt->bom)
			put(fmt->out, "\xEF\xBB\xBF");
		if (key)
			csv_field(fmt->out, 1, key);
		csv_field(fmt->out, !key, "count");
		csv_end(fmt->out);
	}
	for (size_t i = 0; i < n; i++) {
		snprintf(buf, sizeof buf, "%ld", counts[i]);
		if (fmt->csv) {
			if (key)
				csv_field(fmt->out, 1, names[i]);
			csv_field(fmt->out, !key, buf);
			csv_end(fmt->out);
			continue;
		}
		json_t *o = json_object();
		if (key)
			json_object_set_new(o, key, json_string(names[i]));
		json_object_set_new(o, "count", json_integer(counts[i]));
		ndjson_put(fmt->out, o, 0);
	}
	if (fflush(fmt->out) != 0)
		out_fail();
}
