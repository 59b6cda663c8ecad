#include "sopdue.h"
#include "db.h"
#include "err.h"
#include "ndjson.h"

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
	sqlite3_stmt *touch;
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

/* Exit tags entered at or after day 0; the trigger left (unless on_leave
 * stay); a newer entry of the trigger (re-entered: a new enrollment). */
static void exits(struct pass *p)
{
	for (size_t k = 0; k < p->sp->nexits; k++)
		exec_sop(p, "UPDATE enrollment SET state = 'exited', ended_at = ?2, exit_reason = 'entered ' || ?3 "
		            "WHERE state = 'active' AND sop = ?1 AND EXISTS (SELECT 1 FROM tag t WHERE t.pid = enrollment.pid "
		            "AND t.tag = ?3 AND t.since >= enrollment.day0 AND t.since <= ?2)",
		         p->sp->exits[k], &p->st->exited);
	if (p->sp->exit_on_leave)
		exec_sop(p, "UPDATE enrollment SET state = 'exited', ended_at = ?2, exit_reason = 'left ' || ?3 "
		            "WHERE state = 'active' AND sop = ?1 AND NOT EXISTS (SELECT 1 FROM tag t WHERE t.pid = enrollment.pid "
		            "AND t.tag = ?3 AND t.since = enrollment.day0)",
		         p->sp->trigger, &p->st->exited);
	exec_sop(p, "UPDATE enrollment SET state = 'exited', ended_at = ?2, exit_reason = 're-entered ' || ?3 "
	            "WHERE state = 'active' AND sop = ?1 AND EXISTS (SELECT 1 FROM tag t WHERE t.pid = enrollment.pid "
	            "AND t.tag = ?3 AND t.since > enrollment.day0 AND t.since <= ?2)",
	         p->sp->trigger, &p->st->exited);
}

/* Everyone holding the trigger whose entry has no enrollment yet and whose
 * golden window is still open. */
static void enrol(struct pass *p)
{
	exec_sop(p, "INSERT INTO enrollment(pid, sop, trigger_tag, day0, started_at, state, next_step, next_due) "
	            "SELECT t.pid, ?1, ?3, t.since, ?2, 'active', 0, NULL FROM tag t WHERE t.tag = ?3 AND t.since <= ?2 "
	            "AND t.since + ?4 > ?2 AND NOT EXISTS (SELECT 1 FROM enrollment e WHERE e.pid = t.pid "
	            "AND e.sop = ?1 AND e.day0 = t.since)",
	         p->sp->trigger, &p->st->enrolled);
}

static void push_id(struct pass *p, int64_t id)
{
	if (*p->nids == p->capids) {
		p->capids = p->capids ? p->capids * 2 : 256;
		*p->ids = xrealloc(*p->ids, p->capids * sizeof **p->ids);
	}
	(*p->ids)[(*p->nids)++] = id;
}

static void add_touch(struct pass *p, int64_t enr, int64_t pid, size_t k, int64_t due, const char *state,
                      const char *reason)
{
	const struct sop_step *s = &p->sp->steps[k];
	sqlite3_stmt *st = p->touch;
	db_bind_int(p->db, st, 1, enr);
	db_bind_int(p->db, st, 2, pid);
	db_bind_text(p->db, st, 3, p->sp->name);
	db_bind_int(p->db, st, 4, (int64_t)k);
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

/* Record the steps of one enrollment that are due by now, from NEXT on;
 * returns the index of the first step not yet due. */
static size_t due_steps(struct pass *p, int64_t enr, int64_t pid, int64_t day0, size_t next, int64_t *next_due)
{
	const struct sop *sp = p->sp;
	int held = sop_held_out(sp, pid);
	for (; next < sp->nsteps; next++) {
		int64_t due = sop_step_due(&sp->steps[next], day0);
		if (due >= day0 + sp->window) {
			next = sp->nsteps; /* the rest fall outside the golden window */
			break;
		}
		if (due > p->now) {
			*next_due = due;
			return next;
		}
		if (due < day0)
			add_touch(p, enr, pid, next, due, "skipped", "due before day 0 (the tag was entered after the step time)");
		else if (held)
			add_touch(p, enr, pid, next, due, "holdout", "holdout group");
		else if (p->now - due > p->late)
			add_touch(p, enr, pid, next, due, "missed", "later than --late when first seen");
		else
			add_touch(p, enr, pid, next, due, "queued", NULL);
	}
	*next_due = 0;
	return next;
}

/* Enrollments that are new (next_due unset) or have a step due. */
static void queue(struct pass *p)
{
	sqlite3_stmt *sel = db_prepare(p->db,
		"SELECT id, pid, day0, next_step FROM enrollment WHERE state = 'active' AND sop = ?1 "
		"AND (next_due IS NULL OR next_due <= ?2)");
	sqlite3_stmt *upd = db_prepare(p->db,
		"UPDATE enrollment SET next_step = ?2, next_due = ?3, state = CASE WHEN ?3 IS NULL THEN 'completed' ELSE state END, "
		"ended_at = CASE WHEN ?3 IS NULL THEN ?4 END, exit_reason = CASE WHEN ?3 IS NULL THEN 'all steps done' END WHERE id = ?1");
	db_bind_text(p->db, sel, 1, p->sp->name);
	db_bind_int(p->db, sel, 2, p->now);
	/* collect first: the updates below change the rows being read */
	size_t n = 0, cap = 64;
	int64_t (*rows)[4] = xmalloc(cap * sizeof *rows);
	while (db_row(p->db, sel)) {
		if (n == cap)
			rows = xrealloc(rows, (cap *= 2) * sizeof *rows);
		for (int c = 0; c < 4; c++)
			rows[n][c] = sqlite3_column_int64(sel, c);
		n++;
	}
	sqlite3_finalize(sel);
	for (size_t i = 0; i < n; i++) {
		int64_t next_due;
		size_t next = due_steps(p, rows[i][0], rows[i][1], rows[i][2], (size_t)rows[i][3], &next_due);
		db_bind_int(p->db, upd, 1, rows[i][0]);
		db_bind_int(p->db, upd, 2, (int64_t)next);
		db_bind_opt_int(p->db, upd, 3, next_due != 0, next_due);
		db_bind_int(p->db, upd, 4, p->now);
		db_run(p->db, upd);
		if (!next_due)
			p->st->completed++;
	}
	free(rows);
	sqlite3_finalize(upd);
}

void sopdue_run(sqlite3 *db, const struct sops *s, int64_t now, int64_t late,
                int64_t **ids, size_t *nids, struct sopdue_stats *st)
{
	struct pass p = {.db = db, .now = now, .late = late, .ids = ids, .nids = nids, .st = st, .capids = *nids};
	p.touch = db_prepare(db,
		"INSERT OR IGNORE INTO touch(enrollment, pid, sop, step, due_at, channel, content, staff, priority, state, "
		"created_at, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
		"CASE WHEN ?8 = 'owner' THEN (SELECT json_extract(attrs, '$.staff') FROM person WHERE pid = ?2) ELSE ?8 END, "
		"?9, ?10, ?11, ?12)");
	for (size_t i = 0; i < s->nsops; i++) {
		p.sp = &s->sops[i];
		enrol(&p);  /* first, so that an exit since entering applies to it too */
		exits(&p);
		queue(&p);
		/* the golden window closed with steps never reached */
		exec_sop(&p, "UPDATE enrollment SET state = 'completed', ended_at = ?2, exit_reason = 'window ended' "
		             "WHERE state = 'active' AND sop = ?1 AND day0 + ?4 <= ?2",
		         NULL, &st->completed);
	}
	sqlite3_finalize(p.touch);
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
	if (fflush(out) != 0)
		smr_die(SMR_FATAL, "stdout: %s", strerror(errno));
}
