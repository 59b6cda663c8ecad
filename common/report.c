#include "report.h"
#include "db.h"
#include "err.h"
#include "ndjson.h"
#include "sqlrows.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

const char *const report_names[NREPORTS] = {"sops", "fatigue", "groups"};

/* Per SOP step, from the step's first touch recorded by :now on:
 * touched persons against the holdout, each measured from the touch
 * (sent_at) or from when the held-out touch was due, over :win seconds;
 * only touches whose window has ended by :now count, so the measured
 * fields are NULL until one has. Uplift is the difference of conversion
 * rates with a 95% normal confidence interval.
 * A step is its touch.step_key (touch.step is a count that an SOP edit or
 * a merge makes two steps share); a touch whose key is not filled in yet
 * falls back to its step, an integer k that never equals a text key. */
#define SOPS_STEP "coalesce(step_key, step)"
static const char sops_sql[] =
	"WITH t AS (SELECT sop, " SOPS_STEP " AS k, pid, CASE WHEN state = 'holdout' THEN state ELSE 'sent' END AS state, "
	"  CASE WHEN state = 'holdout' THEN due_at ELSE sent_at END AS at "
	"  FROM touch WHERE state IN ('sent', 'delivered', 'holdout')), "
	"m AS (SELECT t.*, EXISTS (SELECT 1 FROM event o WHERE o.pid = t.pid AND o.type = 'order' "
	"    AND o.ts > t.at AND o.ts <= t.at + :win) AS conv, "
	"  (SELECT coalesce(sum(o.amount), 0) FROM event o WHERE o.pid = t.pid AND o.type = 'order' "
	"    AND o.ts > t.at AND o.ts <= t.at + :win) AS rev "
	"  FROM t WHERE t.at + :win <= :now), "
	"g AS (SELECT sop, k, sum(state = 'sent') AS n1, sum(state = 'sent' AND conv) AS c1, "
	"  sum(CASE WHEN state = 'sent' THEN rev END) AS r1, sum(state = 'holdout') AS n2, "
	"  sum(state = 'holdout' AND conv) AS c2, sum(CASE WHEN state = 'holdout' THEN rev END) AS r2 "
	"  FROM m GROUP BY sop, k), "
	"p AS (SELECT *, CASE WHEN n1 > 0 THEN 1.0 * c1 / n1 END AS p1, CASE WHEN n2 > 0 THEN 1.0 * c2 / n2 END AS p2 FROM g), "
	"st AS (SELECT sop, " SOPS_STEP " AS k, min(step) AS step, max(step_key) AS step_key, min(created_at) AS first_touch "
	"  FROM touch WHERE state IN ('queued', 'claimed', 'sent', "
	"  'deferred', 'suppressed', 'failed', 'unknown', 'missed', 'skipped', 'holdout', 'task_created', 'delivered', "
	"  'not_friend', 'over_platform_limit', 'unconfirmed', 'cancelled', 'published', 'staff_notified') "
	"  AND created_at <= :now "
	"  GROUP BY sop, k) "
	"SELECT st.sop, st.step, st.step_key, "
	"  (SELECT count(*) FROM enrollment e WHERE e.sop = st.sop) AS enrolled, "
	"  (SELECT count(*) FROM enrollment e WHERE e.sop = st.sop AND e.exit_reason LIKE 'entered %') AS exited_converted, "
	"  (SELECT count(*) FROM touch x WHERE x.sop = st.sop AND coalesce(x.step_key, x.step) = st.k "
	"    AND x.state IN ('sent', 'delivered')) AS sent, "
	"  (SELECT count(*) FROM touch x WHERE x.sop = st.sop AND coalesce(x.step_key, x.step) = st.k "
	"    AND x.state IN ('suppressed', 'missed', 'skipped', "
	"    'not_friend', 'over_platform_limit', 'unconfirmed', 'cancelled')) AS not_sent, "
	"  n1 AS touched, c1 AS touched_orders, round(p1, 4) AS touched_rate, "
	"  round(coalesce(r1, 0) / 100.0 / nullif(n1, 0), 2) AS touched_revenue_per_person, "
	"  n2 AS holdout, c2 AS holdout_orders, round(p2, 4) AS holdout_rate, "
	"  round(coalesce(r2, 0) / 100.0 / nullif(n2, 0), 2) AS holdout_revenue_per_person, "
	"  round(p1 - p2, 4) AS uplift, "
	"  round(p1 - p2 - 1.96 * sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2), 4) AS uplift_ci_low, "
	"  round(p1 - p2 + 1.96 * sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2), 4) AS uplift_ci_high "
	"FROM st LEFT JOIN p USING (sop, k) ORDER BY st.sop, st.step, st.step_key";

/* Touches sent per person per week, the last :weeks weeks. */
static const char fatigue_sql[] =
	"WITH pw AS (SELECT pid, (:now - sent_at) / 604800 AS wk, count(*) AS n FROM touch "
	"  WHERE state IN ('sent', 'delivered') AND sent_at <= :now AND sent_at > :now - :weeks * 604800 GROUP BY pid, wk) "
	"SELECT wk AS weeks_ago, count(*) AS persons, sum(n) AS touches, round(avg(n), 2) AS mean, max(n) AS max, "
	"  sum(n = 1) AS one, sum(n = 2) AS two, sum(n = 3) AS three, sum(n = 4) AS four, sum(n >= 5) AS five_plus "
	"FROM pw GROUP BY wk ORDER BY wk";

/* Per WeChat group: members now, joins and leaves this week, leaves within
 * a day of a push to the group, and the message trend week on week. A group
 * whose messages fell by half or more (from at least 5), or that loses
 * members after pushes, is flagged. */
static const char groups_sql[] =
	"WITH g AS (SELECT group_id, pid, type, ts FROM event WHERE group_id IS NOT NULL AND ts <= :now), "
	"lastev AS (SELECT group_id, pid, max(ts) AS ts FROM g WHERE type IN ('group_join', 'group_leave') GROUP BY group_id, pid), "
	"mem AS (SELECT l.group_id, count(*) AS members FROM lastev l WHERE EXISTS (SELECT 1 FROM g "
	"  WHERE g.group_id = l.group_id AND g.pid = l.pid AND g.ts = l.ts AND g.type = 'group_join') GROUP BY l.group_id), "
	"pushes AS (SELECT substr(channel, 7) AS group_id, sent_at FROM touch WHERE state = 'sent' AND channel LIKE 'group:%'), "
	"s AS (SELECT group_id, sum(type = 'group_join' AND ts > :now - 604800) AS joins_7d, "
	"  sum(type = 'group_leave' AND ts > :now - 604800) AS leaves_7d, "
	"  sum(type = 'message' AND ts > :now - 604800) AS messages_7d, "
	"  sum(type = 'message' AND ts <= :now - 604800 AND ts > :now - 1209600) AS messages_prev_7d, "
	"  sum(type = 'group_leave' AND EXISTS (SELECT 1 FROM pushes p WHERE p.group_id = g.group_id "
	"    AND g.ts >= p.sent_at AND g.ts < p.sent_at + 86400)) AS leaves_after_push "
	"  FROM g GROUP BY group_id) "
	"SELECT s.group_id, coalesce(mem.members, 0) AS members, joins_7d, leaves_7d, leaves_after_push, "
	"  messages_prev_7d, messages_7d, "
	"  CASE WHEN messages_prev_7d >= 5 AND messages_7d * 2 <= messages_prev_7d THEN 'engagement collapsed: likely muted or folded' "
	"       WHEN leaves_after_push >= 3 THEN 'members leave after pushes' END AS flag "
	"FROM s LEFT JOIN mem USING (group_id) ORDER BY flag IS NULL, s.group_id";

const char *const report_sql[NREPORTS] = {sops_sql, fatigue_sql, groups_sql};

static void bind_named(sqlite3 *db, sqlite3_stmt *st, const char *name, int64_t v)
{
	int i = sqlite3_bind_parameter_index(st, name);
	if (i > 0)
		db_bind_int(db, st, i, v);
}

sqlite3_stmt *report_stmt(sqlite3 *db, enum report_section which, const struct report_opts *o)
{
	sqlite3_stmt *st = db_prepare(db, report_sql[which]);
	bind_named(db, st, ":now", o->now);
	bind_named(db, st, ":win", o->window);
	bind_named(db, st, ":weeks", o->weeks);
	return st;
}

void report_print(sqlite3 *db, enum report_section which, const struct report_opts *o, FILE *out)
{
	sqlite3_stmt *st = report_stmt(db, which, o);
	if (o->table) {
		fprintf(out, "== %s\n", report_names[which]);
		sqlrows_table(db, st, out, 0);
		fputc('\n', out);
	} else {
		int nc = sqlite3_column_count(st);
		while (db_row(db, st)) {
			json_t *obj = json_object();
			json_object_set_new(obj, "report", json_string(report_names[which]));
			for (int c = 0; c < nc; c++)
				json_object_set_new(obj, sqlite3_column_name(st, c), sqlrows_cell(st, c));
			ndjson_put(out, obj, JSON_REAL_PRECISION(15)); /* money to the fen */
		}
	}
	sqlite3_finalize(st);
	if (fflush(out) != 0)
		smr_die(SMR_FATAL, "stdout: %s", strerror(errno));
}
