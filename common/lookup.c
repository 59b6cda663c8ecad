#include "lookup.h"
#include "db.h"
#include "err.h"
#include "event.h"
#include "ruleexpr.h"
#include "rulebudget.h"
#include "sqlrows.h"
#include "tstamp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- finding the person ------------------------------------------------ */

static void add_pid(int64_t *pids, int *n, int max, int64_t pid)
{
	for (int i = 0; i < *n; i++)
		if (pids[i] == pid)
			return;
	if (*n == max)
		return;
	int i = *n;
	while (i > 0 && pids[i - 1] > pid) { /* keep pid order */
		pids[i] = pids[i - 1];
		i--;
	}
	pids[i] = pid;
	(*n)++;
}

static void find_ident(sqlite3 *db, const char *kind, const char *value, int64_t *pids, int *n, int max)
{
	sqlite3_stmt *st = db_prepare(db, "SELECT pid FROM identity WHERE kind = ?1 AND value = ?2");
	db_bind_text(db, st, 1, kind);
	db_bind_text(db, st, 2, value);
	if (db_row(db, st))
		add_pid(pids, n, max, sqlite3_column_int64(st, 0));
	sqlite3_finalize(st);
}

static int by_pid(sqlite3 *db, const char *num, int64_t *pids, int max, char *err, size_t errlen)
{
	char *end;
	long long v = strtoll(num, &end, 10);
	if (!*num || *end || v <= 0) {
		snprintf(err, errlen, "\"pid:%s\": a pid is a positive integer", num);
		return -1;
	}
	int n = 0;
	sqlite3_stmt *st = db_prepare(db, "SELECT pid FROM person WHERE pid = ?1");
	db_bind_int(db, st, 1, v);
	if (db_row(db, st))
		add_pid(pids, &n, max, v);
	sqlite3_finalize(st);
	return n;
}

int lookup_resolve(sqlite3 *db, const struct rules *r, const char *id, int64_t *pids, int max,
                   char *err, size_t errlen)
{
	char value[72], why[160];
	int n = 0;
	const char *colon = strchr(id, ':');
	if (strncmp(id, "pid:", 4) == 0)
		return by_pid(db, id + 4, pids, max, err, errlen);
	if (colon && (size_t)(colon - id) < IDKIND_NAME_MAX) {
		char kind[IDKIND_NAME_MAX];
		memcpy(kind, id, (size_t)(colon - id));
		kind[colon - id] = '\0';
		const struct idkind *k = rules_idkind(r, kind);
		if (k) {
			if (event_ident_value(k, colon + 1, value, sizeof value, why, sizeof why) != 0) {
				snprintf(err, errlen, "%s", why);
				return -1;
			}
			find_ident(db, k->name, value, pids, &n, max);
			return n;
		}
	}
	for (size_t i = 0; i < r->nkinds; i++) /* a bare value: every kind */
		if (event_ident_value(&r->kinds[i], id, value, sizeof value, why, sizeof why) == 0)
			find_ident(db, r->kinds[i].name, value, pids, &n, max);
	return n;
}

/* ---- the record's sections --------------------------------------------- */

const char *const lookup_section_names[LOOKUP_NSECTIONS] = {
	"identities", "facts", "tags", "tag_log", "enrollments", "touches", "events", "merges", "conflicts",
};

const char *const lookup_section_sql[LOOKUP_NSECTIONS] = {
	"SELECT kind, value, first_seen FROM identity WHERE pid = ?1 ORDER BY kind, value",
	"SELECT * FROM facts WHERE pid = ?1",
	"SELECT tag, since, source FROM tag WHERE pid = ?1 ORDER BY since, tag",
	"SELECT seq, tag, op, at, source, detail FROM tag_log WHERE pid = ?1 ORDER BY seq",
	"SELECT id, sop, trigger_tag, day0, started_at, state, ended_at, exit_reason, next_step, next_due, holdout "
	"FROM enrollment WHERE pid = ?1 ORDER BY day0, id",
	"SELECT id, sop, step, step_key, due_at, channel, content, state, reason, not_before, sent_at "
	"FROM touch WHERE pid = ?1 ORDER BY due_at, id",
	"SELECT * FROM (SELECT eid, id, type, ts, item, amount, channel, text, expires, group_id, staff, props "
	"  FROM event WHERE pid = ?1 ORDER BY ts DESC, eid DESC LIMIT ?2) ORDER BY ts, eid",
	"SELECT at, merged, event_id, kind, value FROM merge_log WHERE survivor = ?1 ORDER BY rowid",
	"SELECT at, event_id, pid, kind, value, other_pid, reason FROM conflict_log "
	"WHERE pid = ?1 OR other_pid = ?1 ORDER BY rowid",
};

sqlite3_stmt *lookup_section(sqlite3 *db, enum lookup_section s, int64_t pid, int events)
{
	sqlite3_stmt *st = db_prepare(db, lookup_section_sql[s]);
	db_bind_int(db, st, 1, pid);
	if (s == LOOKUP_EVENTS)
		db_bind_int(db, st, 2, events);
	return st;
}

/* ---- --explain TAG ------------------------------------------------------ */

#define EXPLAIN_MAX_PARTS 128

/* The value of one piece of a condition for PID, as JSON; an error
 * message as {"error": ...} (a piece that is no expression on its own). */
static json_t *part_value(sqlite3 *db, int rule, const char *text, int64_t pid)
{
	struct ruleexpr re;
	char why[200];
	size_t off;
	if (ruleexpr_rewrite(text, &re, why, sizeof why, &off) != 0)
		return json_pack("{s:s}", "error", why);
	/* checked read-only as written, then run wrapped in the rule budget */
	char *sql = xasprintf("SELECT (%s\n) FROM facts WHERE pid = ?1", re.sql);
	sqlite3_stmt *st = NULL;
	json_t *v;
	tagrules_sandbox(db, 1);
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	tagrules_sandbox(db, 0);
	sqlite3_finalize(st);
	st = NULL;
	free(sql);
	char *wrapped = rule_budget_wrap(rule, re.sql);
	sql = xasprintf("SELECT %s FROM facts WHERE pid = ?1", wrapped);
	free(wrapped);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK) {
		v = json_pack("{s:s}", "error", sqlite3_errmsg(db));
	} else {
		db_bind_int(db, st, 1, pid);
		v = db_row(db, st) ? sqlrows_cell(st, 0) : json_null();
	}
	sqlite3_finalize(st);
	free(sql);
	ruleexpr_free(&re);
	return v;
}

static json_t *held_tag(sqlite3 *db, const char *tag, int64_t pid)
{
	sqlite3_stmt *st = db_prepare(db, "SELECT since, source FROM tag WHERE pid = ?1 AND tag = ?2");
	db_bind_int(db, st, 1, pid);
	db_bind_text(db, st, 2, tag);
	json_t *v = db_row(db, st) ? sqlrows_object(st) : json_null();
	sqlite3_finalize(st);
	return v;
}

static const char *explain_note(const struct tagrules *tr, const struct cond *c, json_t *held, json_t *value)
{
	int truth = json_is_integer(value) && json_integer_value(value) != 0;
	if (json_is_real(value))
		truth = json_real_value(value) != 0;
	const char *source = json_string_value(json_object_get(held, "source"));
	if (source && strcmp(source, "rule") != 0)
		return "set by hand or as a segment: rules do not remove it";
	if (truth && json_is_null(held))
		return c->ladder >= 0 ? "the condition holds, but another rung of its ladder may win, or smr-tag has not run since"
		                      : "the condition holds: smr-tag has not evaluated the person since";
	if (!truth && !json_is_null(held))
		return "the condition no longer holds: smr-tag has not evaluated the person since";
	(void)tr;
	return NULL;
}

json_t *lookup_record(sqlite3 *db, int64_t pid, int events)
{
	json_t *o = json_pack("{s:I}", "pid", (json_int_t)pid);
	for (int s = 0; s < LOOKUP_NSECTIONS; s++) {
		sqlite3_stmt *st = lookup_section(db, (enum lookup_section)s, pid, events);
		json_t *rows = sqlrows_array(db, st);
		if (s == LOOKUP_FACTS)
			json_object_set(o, lookup_section_names[s], json_array_size(rows) ? json_array_get(rows, 0) : json_null());
		else
			json_object_set(o, lookup_section_names[s], rows);
		json_decref(rows);
		sqlite3_finalize(st);
	}
	return o;
}

json_t *lookup_explain(sqlite3 *db, const struct tagrules *tr, const struct cond *c, int64_t pid)
{
	struct ruleexpr_part parts[EXPLAIN_MAX_PARTS];
	size_t n = ruleexpr_parts(c->expr, parts, EXPLAIN_MAX_PARTS);
	json_t *arr = json_array(), *value = json_null();
	for (size_t i = 0; i < n; i++) {
		char *text = xstrndup(c->expr + parts[i].start, parts[i].len);
		json_t *v = part_value(db, (int)(c - tr->tags), text, pid);
		if (i == 0)
			value = json_incref(v);
		json_array_append_new(arr, json_pack("{s:s, s:i, s:o}", "expr", text, "depth", parts[i].depth, "value", v));
		free(text);
	}
	json_t *held = held_tag(db, c->name, pid);
	json_t *o = json_pack("{s:I, s:s, s:s, s:O, s:O, s:o}", "pid", (json_int_t)pid, "tag", c->name,
	                      "when", c->expr, "value", value, "held", held, "parts", arr);
	if (c->ladder >= 0)
		json_object_set_new(o, "ladder", json_string(tr->ladders[c->ladder].name));
	const char *note = explain_note(tr, c, held, value);
	if (note)
		json_object_set_new(o, "note", json_string(note));
	json_decref(value);
	json_decref(held);
	return o;
}

/* ---- --why SOP ---------------------------------------------------------- */

/* The step's offset as an operator writes it: "1d 12:00" or "+30m". */
static json_t *step_text(const struct sop_step *s)
{
	static const struct { int64_t secs; char unit; } units[] = {{86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};
	char buf[32];
	snprintf(buf, sizeof buf, "%dd %02d:%02d", s->day, s->hour, s->minute);
	for (size_t i = 0; s->relative && i < sizeof units / sizeof units[0]; i++)
		if (s->after % units[i].secs == 0) {
			snprintf(buf, sizeof buf, "+%lld%c", (long long)(s->after / units[i].secs), units[i].unit);
			break;
		}
	return json_string(buf);
}

/* Why a step has no touch row. */
static const char *no_touch_reason(const struct sop *sop, int64_t due, int64_t day0, const char *state,
                                   int64_t ended_at, int64_t now)
{
	if (due > day0 + sop->window)
		return "after the golden window: never recorded";
	if (strcmp(state, "active") != 0 && due > ended_at)
		return strcmp(state, "exited") == 0 ? "not recorded: the enrollment exited before it was due"
		                                    : "not recorded: the enrollment ended before it was due";
	if (due > now)
		return "not yet due";
	return "due: smr-sop-due has not run since";
}

static json_t *why_steps(sqlite3 *db, const struct sop *sop, sqlite3_stmt *en, int64_t now)
{
	int64_t id = sqlite3_column_int64(en, 0), day0 = sqlite3_column_int64(en, 3);
	const char *state = (const char *)sqlite3_column_text(en, 5);
	int64_t ended = sqlite3_column_type(en, 6) == SQLITE_NULL ? now : sqlite3_column_int64(en, 6);
	sqlite3_stmt *t = db_prepare(db, "SELECT id AS touch, due_at, state AS decision, reason, not_before, sent_at, "
	                                 "channel, content FROM touch WHERE enrollment = ?1 AND step_key = ?2");
	json_t *arr = json_array();
	for (size_t i = 0; i < sop->nsteps; i++) {
		const struct sop_step *s = &sop->steps[i];
		db_bind_int(db, t, 1, id);
		db_bind_text(db, t, 2, s->key);
		json_t *o;
		if (db_row(db, t)) {
			o = sqlrows_object(t);
		} else {
			int64_t due = sop_step_due(s, day0);
			o = json_pack("{s:n, s:I, s:s, s:s, s:s, s:s}", "touch", "due_at", (json_int_t)due, "decision", "none",
			              "reason", no_touch_reason(sop, due, day0, state, ended, now),
			              "channel", s->channel, "content", s->content);
		}
		sqlite3_reset(t);
		json_object_set_new(o, "step", json_integer((json_int_t)i));
		json_object_set_new(o, "step_key", json_string(s->key));
		json_object_set_new(o, "at", step_text(s));
		json_array_append_new(arr, o);
	}
	sqlite3_finalize(t);
	return arr;
}

/* Why PID has no enrollment in SOP. */
static const char *not_enrolled(const struct sop *sop, json_t *held, int64_t now)
{
	if (json_is_null(held))
		return "does not hold the trigger tag";
	json_int_t since = json_integer_value(json_object_get(held, "since"));
	if (since + sop->window <= now)
		return "holds the trigger tag, but its golden window from then has closed without an enrollment "
		       "(smr-sop-due did not run inside it, or the SOP was added later)";
	return "holds the trigger tag: smr-sop-due has not run since";
}

json_t *lookup_why(sqlite3 *db, const struct sop *sop, int64_t pid, int64_t now)
{
	json_t *held = held_tag(db, sop->trigger, pid);
	sqlite3_stmt *en = db_prepare(db,
		"SELECT id, sop, trigger_tag, day0, started_at, state, ended_at, exit_reason, next_step, next_due, holdout "
		"FROM enrollment WHERE pid = ?1 AND sop = ?2 ORDER BY day0, id");
	db_bind_int(db, en, 1, pid);
	db_bind_text(db, en, 2, sop->name);
	json_t *arr = json_array();
	while (db_row(db, en)) {
		json_t *e = sqlrows_object(en);
		json_object_set_new(e, "steps", why_steps(db, sop, en, now));
		json_array_append_new(arr, e);
	}
	sqlite3_finalize(en);
	json_t *o = json_pack("{s:I, s:s, s:s, s:o}", "pid", (json_int_t)pid, "sop", sop->name,
	                      "trigger", sop->trigger, "trigger_held", held);
	json_t *exits = json_array();
	for (size_t i = 0; i < sop->nexits; i++)
		json_array_append_new(exits, json_pack("{s:s, s:o}", "tag", sop->exits[i],
		                                       "held", held_tag(db, sop->exits[i], pid)));
	json_object_set_new(o, "exits", exits);
	if (json_array_size(arr) == 0)
		json_object_set_new(o, "not_enrolled", json_string(not_enrolled(sop, held, now)));
	json_object_set_new(o, "enrollments", arr);
	return o;
}
