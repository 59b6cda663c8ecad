#include "sopdue.h"
#include "db.h"
#include "err.h"
#include "ndjson.h"
#include "tstamp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Whether PID is in SOP's holdout group (deterministic by pid and sop). */
static int sop_held_out(const struct sop *sp, int64_t pid)
{
	if (sp->holdout_pct <= 0)
		return 0;
	uint64_t h = 1469598103934665603ULL;
	char key[SOP_NAME_MAX + 24];
	int n = snprintf(key, sizeof key, "%s:%lld", sp->name, (long long)pid);
	for (int i = 0; i < n; i++)
		h = (h ^ (unsigned char)key[i]) * 1099511628211ULL;
	return (int)(h % 100) < sp->holdout_pct;
}

struct pass {
	sqlite3 *db;
	const struct sop *sp;
	int64_t now, late;
	int64_t **ids;
	size_t *nids, capids;
	struct sopdue_stats *st;
	sqlite3_stmt *touch, *seen;
};

static void exec_sop(struct pass *p, const char *sql, const char *tag, long *count)
{
	sqlite3_stmt *st = db_prepare(p->db, sql);
	db_bind_text(p->db, st, 1, p->sp->name);
	db_bind_int(p->db, st, 2, p->now);
	if (sqlite3_bind_parameter_count(st) >= 3)
		db_bind_text(p->db, st, 3, tag);
	if (sqlite3_bind_parameter_count(st) >= 4)
		db_bind_int(p->db, st, 4, p->sp->window);
	db_run(p->db, st);
	sqlite3_finalize(st);
	if (count)
		*count += sqlite3_changes(p->db);
}

/* The enrollments exits apply to (as e): active ones, and completed ones
 * with a touch still waiting (its last step queued or deferred, not yet
 * sent). */
static const char *const ACTIVE = "e.state = 'active'";
static const char *const PENDING =
	"e.state = 'completed' AND e.id IN (SELECT enrollment FROM touch WHERE sop = ?1 AND state IN ('queued', 'deferred'))";

/* In one statement, the first that holds: an exit tag (in the rules'
 * order, ?5 on) entered at or after day 0; the trigger left (unless
 * on_leave stay); a newer entry of the trigger (re-entered: a new
 * enrollment); a WeCom contact whose every staff relationship has ended
 * (staff_link; a person who never had one, outside WeCom, is not
 * concerned). */
static void exits(struct pass *p, const char *scope)
{
	const struct sop *sp = p->sp;
	size_t cap = 1024 + strlen(scope) + 160 * sp->nexits, n = 0;
	char *sql = xmalloc(cap);
	n += (size_t)snprintf(sql + n, cap - n,
		"UPDATE enrollment SET state = 'exited', ended_at = ?2, exit_reason = x.reason FROM (SELECT e.id, coalesce(CASE");
	for (size_t k = 0; k < sp->nexits; k++)
		n += (size_t)snprintf(sql + n, cap - n,
			" WHEN EXISTS (SELECT 1 FROM tag t WHERE t.pid = e.pid AND t.tag = ?%zu AND t.since >= e.day0 "
			"AND t.since <= ?2) THEN 'entered ' || ?%zu", k + 5, k + 5);
	snprintf(sql + n, cap - n,
		" WHEN 0 THEN NULL END, "
		"CASE WHEN ?4 AND NOT EXISTS (SELECT 1 FROM tag t WHERE t.pid = e.pid AND t.tag = ?3 AND t.since = e.day0) "
		"  THEN 'left ' || ?3 END, "
		"CASE WHEN EXISTS (SELECT 1 FROM tag t WHERE t.pid = e.pid AND t.tag = ?3 AND t.since > e.day0 AND t.since <= ?2) "
		"  THEN 're-entered ' || ?3 END, "
		"CASE WHEN EXISTS (SELECT 1 FROM staff_link l WHERE l.pid = e.pid AND l.since <= ?2) "
		"  AND NOT EXISTS (SELECT 1 FROM staff_link l WHERE l.pid = e.pid AND l.since <= ?2 "
		"    AND (l.until IS NULL OR l.until > ?2)) THEN '" SOPDUE_NO_STAFF "' END) AS reason "
		"FROM enrollment e WHERE e.sop = ?1 AND %s) AS x WHERE enrollment.id = x.id AND x.reason IS NOT NULL",
		scope);
	sqlite3_stmt *st = db_prepare(p->db, sql);
	free(sql);
	db_bind_text(p->db, st, 1, sp->name);
	db_bind_int(p->db, st, 2, p->now);
	db_bind_text(p->db, st, 3, sp->trigger);
	db_bind_int(p->db, st, 4, sp->exit_on_leave);
	for (size_t k = 0; k < sp->nexits; k++)
		db_bind_text(p->db, st, (int)k + 5, sp->exits[k]);
	db_run(p->db, st);
	sqlite3_finalize(st);
	p->st->exited += sqlite3_changes(p->db);
}

static int64_t last_enrollment(sqlite3 *db)
{
	sqlite3_stmt *st = db_prepare(db, "SELECT coalesce(max(id), 0) FROM enrollment");
	int64_t id = db_row(db, st) ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	return id;
}

/* Everyone holding the trigger whose entry has no enrollment yet, who is
 * not in the SOP already, and whose golden window is still open. */
static void enrol(struct pass *p)
{
	exec_sop(p, "INSERT INTO enrollment(pid, sop, trigger_tag, day0, started_at, state, next_step, next_due) "
	            "SELECT t.pid, ?1, ?3, t.since, ?2, 'active', 0, NULL FROM tag t WHERE t.tag = ?3 AND t.since <= ?2 "
	            "AND t.since + ?4 > ?2 AND NOT EXISTS (SELECT 1 FROM enrollment e WHERE e.pid = t.pid "
	            "AND e.sop = ?1 AND (e.day0 = t.since OR e.state = 'active'))",
	         p->sp->trigger, &p->st->enrolled);
}

static void push_id(struct pass *p, int64_t id)
{
	*p->ids = xgrow(*p->ids, &p->capids, *p->nids + 1, sizeof **p->ids);
	(*p->ids)[(*p->nids)++] = id;
}

/* Whether the enrollment has a touch for step K already (under any state,
 * or brought over from an enrollment merged into it). */
static int recorded(struct pass *p, int64_t enr, size_t k)
{
	db_bind_int(p->db, p->seen, 1, enr);
	db_bind_text(p->db, p->seen, 2, p->sp->steps[k].key);
	int r = db_row(p->db, p->seen);
	sqlite3_reset(p->seen);
	return r;
}

static void add_touch(struct pass *p, int64_t enr, int64_t pid, size_t k, int64_t due, const char *state,
                      const char *reason)
{
	const struct sop_step *s = &p->sp->steps[k];
	sqlite3_stmt *st = p->touch;
	db_bind_int(p->db, st, 1, enr);
	db_bind_int(p->db, st, 2, pid);
	db_bind_text(p->db, st, 3, p->sp->name);
	db_bind_text(p->db, st, 4, s->key);
	db_bind_int(p->db, st, 5, due);
	db_bind_text(p->db, st, 6, s->channel);
	db_bind_text(p->db, st, 7, s->content);
	db_bind_text(p->db, st, 8, p->sp->staff);
	db_bind_int(p->db, st, 9, p->sp->priority);
	db_bind_text(p->db, st, 10, state);
	db_bind_int(p->db, st, 11, p->now);
	db_bind_text(p->db, st, 12, reason);
	db_run(p->db, st);
	if (sqlite3_changes(p->db) == 0)
		return; /* already there: another run queued it */
	if (strcmp(state, "queued") == 0) {
		p->st->queued++;
		push_id(p, sqlite3_last_insert_rowid(p->db));
	} else if (strcmp(state, "missed") == 0) {
		p->st->missed++;
	} else if (strcmp(state, "holdout") == 0) {
		p->st->held_out++;
	} else {
		p->st->skipped++;
	}
}

/* Record every step of one enrollment that is due by now and not recorded
 * yet (a step added to the rules later is judged like any other: missed
 * if too late); returns how many steps are due by now. Every step is
 * looked at: with relative steps (+30m) beside calendar ones (1d 12:00)
 * the due order depends on day 0. */
static size_t due_steps(struct pass *p, int64_t enr, int64_t pid, int64_t day0, int held, int64_t *next_due)
{
	const struct sop *sp = p->sp;
	size_t ndue = 0;
	*next_due = 0;
	for (size_t k = 0; k < sp->nsteps; k++) {
		int64_t due = sop_step_due(&sp->steps[k], day0);
		if (due >= day0 + sp->window)
			continue; /* outside the golden window */
		if (due > p->now) {
			if (!*next_due || due < *next_due)
				*next_due = due;
			continue;
		}
		ndue++;
		if (recorded(p, enr, k))
			continue;
		if (due < day0)
			add_touch(p, enr, pid, k, due, "skipped", "due before day 0 (the tag was entered after the step time)");
		else if (held)
			add_touch(p, enr, pid, k, due, "holdout", "holdout group");
		else if (p->now - due > p->late)
			add_touch(p, enr, pid, k, due, "missed", "later than --late when first seen");
		else
			add_touch(p, enr, pid, k, due, "queued", NULL);
	}
	return ndue;
}

/* Enrollments that are new (next_due unset) or have a step due. Holdout
 * membership is decided once, on the first pass, and kept on the row. */
static void queue(struct pass *p)
{
	sqlite3_stmt *sel = db_prepare(p->db,
		"SELECT id, pid, day0, holdout FROM enrollment WHERE state = 'active' AND sop = ?1 "
		"AND (next_due IS NULL OR next_due <= ?2)");
	sqlite3_stmt *upd = db_prepare(p->db,
		"UPDATE enrollment SET next_step = ?2, next_due = ?3, holdout = ?5, "
		"state = CASE WHEN ?3 IS NULL THEN 'completed' ELSE state END, "
		"ended_at = CASE WHEN ?3 IS NULL THEN ?4 END, exit_reason = CASE WHEN ?3 IS NULL THEN 'all steps done' END WHERE id = ?1");
	db_bind_text(p->db, sel, 1, p->sp->name);
	db_bind_int(p->db, sel, 2, p->now);
	/* collect first: the updates below change the rows being read */
	size_t n = 0, cap = 64;
	int64_t (*rows)[4] = xmalloc(cap * sizeof *rows);
	while (db_row(p->db, sel)) {
		if (n == cap)
			rows = xrealloc(rows, (cap *= 2) * sizeof *rows);
		for (int c = 0; c < 3; c++)
			rows[n][c] = sqlite3_column_int64(sel, c);
		rows[n][3] = sqlite3_column_type(sel, 3) == SQLITE_NULL ? sop_held_out(p->sp, rows[n][1])
		                                                         : sqlite3_column_int64(sel, 3);
		n++;
	}
	sqlite3_finalize(sel);
	for (size_t i = 0; i < n; i++) {
		int64_t next_due;
		size_t next = due_steps(p, rows[i][0], rows[i][1], rows[i][2], (int)rows[i][3], &next_due);
		db_bind_int(p->db, upd, 1, rows[i][0]);
		db_bind_int(p->db, upd, 2, (int64_t)next);
		db_bind_opt_int(p->db, upd, 3, next_due != 0, next_due);
		db_bind_int(p->db, upd, 4, p->now);
		db_bind_int(p->db, upd, 5, rows[i][3]);
		db_run(p->db, upd);
		if (!next_due)
			p->st->completed++;
	}
	free(rows);
	sqlite3_finalize(upd);
}

/* When the SOP's steps or window changed since the last run (or this is
 * the first), every active enrollment is looked at again: a step added
 * before its next_due is judged now, not when that comes. */
static void steps_changed(struct pass *p)
{
	uint64_t h = 1469598103934665603ULL;
	char buf[SOP_KEY_MAX + 64], key[SOP_NAME_MAX + 16];
	for (size_t k = 0; k <= p->sp->nsteps; k++) {
		const struct sop_step *st = &p->sp->steps[k < p->sp->nsteps ? k : 0];
		int n = k < p->sp->nsteps ? snprintf(buf, sizeof buf, "%s|%d|%d|%d|%lld;", st->key, st->day, st->hour,
		                                     st->minute, (long long)st->after)
		                          : snprintf(buf, sizeof buf, "window %lld", (long long)p->sp->window);
		for (int i = 0; i < n && i < (int)sizeof buf; i++)
			h = (h ^ (unsigned char)buf[i]) * 1099511628211ULL;
	}
	snprintf(key, sizeof key, "sop.steps:%s", p->sp->name);
	int64_t v = (int64_t)(h >> 1);
	if (db_meta_get(p->db, key, -1) == v)
		return;
	sqlite3_stmt *st = db_prepare(p->db, "UPDATE enrollment SET next_due = NULL WHERE state = 'active' AND sop = ?1");
	db_bind_text(p->db, st, 1, p->sp->name);
	db_run(p->db, st);
	sqlite3_finalize(st);
	db_meta_set(p->db, key, v);
}

/* Local whole days from day 0 to T (the inverse of sop_step_due's date). */
static int local_days(int64_t day0, int64_t t, struct tm *at)
{
	struct tm d0;
	tstamp_utc_to_local(day0, &d0);
	tstamp_utc_to_local(t, at);
	return (int)(tstamp_days_from_civil(at->tm_year + 1900, (unsigned)at->tm_mon + 1, (unsigned)at->tm_mday) -
	             tstamp_days_from_civil(d0.tm_year + 1900, (unsigned)d0.tm_mon + 1, (unsigned)d0.tm_mday));
}

/* Once per database after the migration that added step_key and holdout:
 * older touches get the key of an unnamed step, rebuilt from their local
 * due time, channel and content; older active enrollments of the SOPs in
 * the rules get their holdout membership from the pid, as before. */
static void upgrade(sqlite3 *db, const struct sops *s)
{
	if (db_meta_get(db, "sop.upgrade", 1) != 0)
		return;
	sqlite3_stmt *sel = db_prepare(db,
		"SELECT t.id, t.due_at, e.day0, t.channel, t.content FROM touch t JOIN enrollment e ON e.id = t.enrollment "
		"WHERE t.step_key IS NULL");
	sqlite3_stmt *set = db_prepare(db, "UPDATE OR IGNORE touch SET step_key = ?2 WHERE id = ?1");
	while (db_row(db, sel)) {
		struct tm at;
		char key[SOP_KEY_MAX];
		int days = local_days(sqlite3_column_int64(sel, 2), sqlite3_column_int64(sel, 1), &at);
		sop_step_key(key, sizeof key, days, at.tm_hour, at.tm_min, (const char *)sqlite3_column_text(sel, 3),
		             (const char *)sqlite3_column_text(sel, 4));
		db_bind_int(db, set, 1, sqlite3_column_int64(sel, 0));
		db_bind_text(db, set, 2, key);
		db_run(db, set);
	}
	sqlite3_finalize(sel);
	sqlite3_finalize(set);
	sel = db_prepare(db, "SELECT id, pid, sop FROM enrollment WHERE state = 'active' AND holdout IS NULL");
	set = db_prepare(db, "UPDATE enrollment SET holdout = ?2 WHERE id = ?1");
	while (db_row(db, sel))
		for (size_t i = 0; i < s->nsops; i++)
			if (strcmp(s->sops[i].name, (const char *)sqlite3_column_text(sel, 2)) == 0) {
				db_bind_int(db, set, 1, sqlite3_column_int64(sel, 0));
				db_bind_int(db, set, 2, sop_held_out(&s->sops[i], sqlite3_column_int64(sel, 1)));
				db_run(db, set);
			}
	sqlite3_finalize(sel);
	sqlite3_finalize(set);
	db_meta_set(db, "sop.upgrade", 1);
}

void sopdue_run(sqlite3 *db, const struct sops *s, int64_t now, int64_t late,
                int64_t **ids, size_t *nids, struct sopdue_stats *st)
{
	struct pass p = {.db = db, .now = now, .late = late, .ids = ids, .nids = nids, .st = st, .capids = *nids};
	upgrade(db, s);
	p.touch = db_prepare(db,
		"INSERT OR IGNORE INTO touch(enrollment, pid, sop, step_key, step, due_at, channel, content, staff, priority, "
		"state, created_at, reason) VALUES (?1, ?2, ?3, ?4, "
		"(SELECT coalesce(max(step), -1) + 1 FROM touch WHERE enrollment = ?1), ?5, ?6, ?7, "
		"CASE WHEN ?8 = 'owner' THEN (SELECT json_extract(attrs, '$.staff') FROM person WHERE pid = ?2) ELSE ?8 END, "
		"?9, ?10, ?11, ?12)");
	p.seen = db_prepare(db, "SELECT 1 FROM touch WHERE enrollment = ?1 AND step_key = ?2");
	for (size_t i = 0; i < s->nsops; i++) {
		p.sp = &s->sops[i];
		/* exits first: an entry of the trigger newer than an active
		 * enrollment ends it (re-entered), so that the entry can enrol */
		exits(&p, ACTIVE);
		int64_t last = last_enrollment(db);
		enrol(&p);
		/* an exit since entering applies to the new enrollments too */
		char fresh[64];
		snprintf(fresh, sizeof fresh, "e.state = 'active' AND e.id > %lld", (long long)last);
		exits(&p, fresh);
		exits(&p, PENDING);
		steps_changed(&p);
		queue(&p);
		/* the golden window closed with steps never reached */
		exec_sop(&p, "UPDATE enrollment SET state = 'completed', ended_at = ?2, exit_reason = 'window ended' "
		             "WHERE state = 'active' AND sop = ?1 AND day0 + ?4 <= ?2",
		         NULL, &st->completed);
	}
	sqlite3_finalize(p.touch);
	sqlite3_finalize(p.seen);
}

void sopdue_print(sqlite3 *db, struct person_lookup *pl, const int64_t *ids, size_t n, FILE *out)
{
	sqlite3_stmt *st = db_prepare(db,
		"SELECT t.pid, t.sop, t.step, t.channel, t.content, t.staff, t.due_at, e.trigger_tag, e.day0, t.priority "
		"FROM touch t JOIN enrollment e ON e.id = t.enrollment WHERE t.id = ?1");
	for (size_t i = 0; i < n; i++) {
		db_bind_int(db, st, 1, ids[i]);
		if (!db_row(db, st)) {
			sqlite3_reset(st);
			continue;
		}
		json_t *o = json_object();
		int64_t pid = sqlite3_column_int64(st, 0);
		json_object_set_new(o, "touch", json_integer(ids[i]));
		json_object_set_new(o, "pid", json_integer(pid));
		person_add_ids(pl, pid, o);
		json_object_set_new(o, "sop", json_string((const char *)sqlite3_column_text(st, 1)));
		json_object_set_new(o, "step", json_integer(sqlite3_column_int64(st, 2)));
		json_object_set_new(o, "channel", json_string((const char *)sqlite3_column_text(st, 3)));
		json_object_set_new(o, "content", json_string((const char *)sqlite3_column_text(st, 4)));
		if (sqlite3_column_type(st, 5) != SQLITE_NULL)
			json_object_set_new(o, "staff", json_string((const char *)sqlite3_column_text(st, 5)));
		json_object_set_new(o, "due_at", json_integer(sqlite3_column_int64(st, 6)));
		json_object_set_new(o, "trigger", json_string((const char *)sqlite3_column_text(st, 7)));
		json_object_set_new(o, "day0", json_integer(sqlite3_column_int64(st, 8)));
		json_object_set_new(o, "priority", json_integer(sqlite3_column_int64(st, 9)));
		sqlite3_reset(st);
		ndjson_put(out, o, 0);
	}
	sqlite3_finalize(st);
	flush_or_die(out, "stdout");
}

/* Merging persons: one live enrollment per SOP survives (see sopdue.h). */
#define LIVE(e) "(" e ".state = 'active' OR (" e ".state = 'completed' AND EXISTS (SELECT 1 FROM touch w " \
	"WHERE w.enrollment = " e ".id AND w.state IN ('queued', 'deferred'))))"

struct sopdue_merge {
	sqlite3 *db;
	sqlite3_stmt *pairs, *end, *movable, *move, *repid;
};

struct sopdue_merge *sopdue_merge_open(sqlite3 *db)
{
	struct sopdue_merge *m = xcalloc(1, sizeof *m);
	m->db = db;
	/* FROM's live enrollments, each with TO's latest live one in the SOP */
	m->pairs = db_prepare(db,
		"SELECT e.id, e.day0, o.id, o.day0 FROM enrollment e JOIN enrollment o ON o.id = (SELECT x.id FROM enrollment x "
		"WHERE x.pid = ?1 AND x.sop = e.sop AND " LIVE("x") " ORDER BY x.day0 DESC, x.id DESC LIMIT 1) "
		"WHERE e.pid = ?2 AND " LIVE("e"));
	m->end = db_prepare(db,
		"UPDATE enrollment SET state = 'exited', ended_at = ?2, exit_reason = 'merged' WHERE id = ?1");
	m->movable = db_prepare(db,
		"SELECT id FROM touch WHERE enrollment = ?1 AND step_key NOT IN (SELECT step_key FROM touch "
		"WHERE enrollment = ?2 AND step_key IS NOT NULL) ORDER BY due_at, id");
	m->move = db_prepare(db,
		"UPDATE touch SET enrollment = ?2, step = (SELECT coalesce(max(step), -1) + 1 FROM touch WHERE enrollment = ?2) "
		"WHERE id = ?1");
	m->repid = db_prepare(db, "UPDATE enrollment SET pid = ?1 WHERE pid = ?2");
	return m;
}

void sopdue_merge_close(struct sopdue_merge *m)
{
	if (!m)
		return;
	sqlite3_finalize(m->pairs);
	sqlite3_finalize(m->end);
	sqlite3_finalize(m->movable);
	sqlite3_finalize(m->move);
	sqlite3_finalize(m->repid);
	free(m);
}

/* End enrollment OTHER as merged into KEEP: every touch of OTHER for a
 * step KEEP has not recorded moves to KEEP (numbered after KEEP's own), so
 * that what either received counts once and what is on its way still
 * goes; the rest stay with OTHER, whose waiting ones smr-send suppresses
 * (enrollment exited). */
static void merge_pair(struct sopdue_merge *m, int64_t keep, int64_t other, int64_t now)
{
	sqlite3 *db = m->db;
	db_bind_int(db, m->end, 1, other);
	db_bind_int(db, m->end, 2, now);
	db_run(db, m->end);
	size_t n = 0, cap = 16;
	int64_t *ids = xmalloc(cap * sizeof *ids);
	db_bind_int(db, m->movable, 1, other);
	db_bind_int(db, m->movable, 2, keep);
	while (db_row(db, m->movable)) {
		if (n == cap)
			ids = xrealloc(ids, (cap *= 2) * sizeof *ids);
		ids[n++] = sqlite3_column_int64(m->movable, 0);
	}
	sqlite3_reset(m->movable);
	for (size_t i = 0; i < n; i++) {
		db_bind_int(db, m->move, 1, ids[i]);
		db_bind_int(db, m->move, 2, keep);
		db_run(db, m->move);
	}
	free(ids);
}

void sopdue_merge_run(struct sopdue_merge *m, int64_t to, int64_t from, int64_t now)
{
	sqlite3 *db = m->db;
	size_t n = 0, cap = 8;
	int64_t (*rows)[4] = xmalloc(cap * sizeof *rows);
	db_bind_int(db, m->pairs, 1, to);
	db_bind_int(db, m->pairs, 2, from);
	while (db_row(db, m->pairs)) {
		if (n == cap)
			rows = xrealloc(rows, (cap *= 2) * sizeof *rows);
		for (int c = 0; c < 4; c++)
			rows[n][c] = sqlite3_column_int64(m->pairs, c);
		n++;
	}
	sqlite3_reset(m->pairs);
	for (size_t i = 0; i < n; i++) {
		/* the earlier day 0 survives (the merged tag's since is the earlier too) */
		int from_first = rows[i][1] < rows[i][3] || (rows[i][1] == rows[i][3] && rows[i][0] < rows[i][2]);
		if (from_first)
			merge_pair(m, rows[i][0], rows[i][2], now);
		else
			merge_pair(m, rows[i][2], rows[i][0], now);
	}
	free(rows);
	db_bind_int(db, m->repid, 1, to);
	db_bind_int(db, m->repid, 2, from);
	db_run(db, m->repid);
}
