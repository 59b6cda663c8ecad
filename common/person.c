#include "person.h"
#include "db.h"
#include "err.h"
#include "event.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct person_lookup {
	sqlite3 *db;
	const struct rules *rules;
	sqlite3_stmt *ids, *by_pid, *by_ident;
	int *order;   /* kinds by priority */
};

struct person_lookup *person_lookup_open(sqlite3 *db, const struct rules *r)
{
	struct person_lookup *pl = xcalloc(1, sizeof *pl);
	pl->db = db;
	pl->rules = r;
	pl->ids = db_prepare(db, "SELECT kind, min(value) FROM identity WHERE pid = ?1 GROUP BY kind");
	pl->by_pid = db_prepare(db, "SELECT pid FROM person WHERE pid = ?1");
	pl->by_ident = db_prepare(db, "SELECT pid FROM identity WHERE kind = ?1 AND value = ?2");
	pl->order = xcalloc(r->nkinds, sizeof *pl->order);
	for (size_t i = 0; i < r->nkinds; i++)
		pl->order[i] = (int)i;
	for (size_t i = 1; i < r->nkinds; i++) /* insertion sort by priority */
		for (size_t j = i; j > 0 && r->kinds[pl->order[j]].priority < r->kinds[pl->order[j - 1]].priority; j--) {
			int t = pl->order[j];
			pl->order[j] = pl->order[j - 1];
			pl->order[j - 1] = t;
		}
	return pl;
}

void person_lookup_close(struct person_lookup *pl)
{
	if (!pl)
		return;
	sqlite3_finalize(pl->ids);
	sqlite3_finalize(pl->by_pid);
	sqlite3_finalize(pl->by_ident);
	free(pl->order);
	free(pl);
}

void person_add_ids(struct person_lookup *pl, int64_t pid, json_t *obj)
{
	db_bind_int(pl->db, pl->ids, 1, pid);
	while (db_row(pl->db, pl->ids)) {
		const char *kind = (const char *)sqlite3_column_text(pl->ids, 0);
		const struct idkind *k = kind ? rules_idkind(pl->rules, kind) : NULL;
		if (k && k->max == 1)
			json_object_set_new(obj, kind, json_string((const char *)sqlite3_column_text(pl->ids, 1)));
	}
	sqlite3_reset(pl->ids);
}

static int64_t one_pid(struct person_lookup *pl, sqlite3_stmt *st)
{
	int64_t pid = db_row(pl->db, st) ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	return pid;
}

int64_t person_find(struct person_lookup *pl, json_t *rec, char *err, size_t errlen)
{
	json_t *v = json_object_get(rec, "pid");
	if (v) {
		if (!json_is_integer(v) || json_integer_value(v) <= 0) {
			snprintf(err, errlen, "field \"pid\" must be a positive integer");
			return -1;
		}
		db_bind_int(pl->db, pl->by_pid, 1, json_integer_value(v));
		return one_pid(pl, pl->by_pid);
	}
	int named = 0;
	for (size_t i = 0; i < pl->rules->nkinds; i++) {
		const char *kind = pl->rules->kinds[pl->order[i]].name;
		char num[32], value[72], why[128];
		const char *raw;
		v = json_object_get(rec, kind);
		if (json_is_integer(v))
			snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		if (json_is_integer(v))
			raw = num;
		else if (json_is_string(v) && *json_string_value(v))
			raw = json_string_value(v);
		else
			continue;
		named = 1;
		if (event_ident_value(&pl->rules->kinds[pl->order[i]], raw, value, sizeof value, why, sizeof why) != 0)
			continue;
		db_bind_text(pl->db, pl->by_ident, 1, kind);
		db_bind_text(pl->db, pl->by_ident, 2, value);
		int64_t pid = one_pid(pl, pl->by_ident);
		if (pid)
			return pid;
	}
	if (!named) {
		snprintf(err, errlen, "record names no person (need \"pid\" or an identifier)");
		return -1;
	}
	return 0;
}
