/* The SQL surface (documented in smr(7)); stable across versions. */
#include "db.h"

#include <stddef.h>

const char *const smr_schema_v1 =
"CREATE TABLE meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;\n"
"CREATE TABLE person(\n"
"  pid INTEGER PRIMARY KEY AUTOINCREMENT,\n"
"  created_at INTEGER NOT NULL,\n"
"  first_seen INTEGER,\n"
"  last_seen INTEGER,\n"
"  events INTEGER NOT NULL DEFAULT 0,\n"
"  orders INTEGER NOT NULL DEFAULT 0,\n"
"  spend INTEGER NOT NULL DEFAULT 0,\n"
"  refunds INTEGER NOT NULL DEFAULT 0,\n"
"  refunded INTEGER NOT NULL DEFAULT 0,\n"
"  first_order_at INTEGER,\n"
"  last_order_at INTEGER,\n"
"  attrs TEXT NOT NULL DEFAULT '{}',\n"
"  rev INTEGER NOT NULL DEFAULT 0,\n"
"  check_at INTEGER\n"
");\n"

"CREATE INDEX person_check ON person(check_at) WHERE check_at IS NOT NULL;\n"
"CREATE TABLE identity(\n"
"  kind TEXT NOT NULL,\n"
"  value TEXT NOT NULL,\n"
"  pid INTEGER NOT NULL,\n"
"  first_seen INTEGER NOT NULL,\n"
"  PRIMARY KEY(kind, value)\n"
") WITHOUT ROWID;\n"
"CREATE INDEX identity_pid ON identity(pid);\n"
"CREATE TABLE event(\n"
"  eid INTEGER PRIMARY KEY,\n"
"  id TEXT NOT NULL UNIQUE,\n"
"  pid INTEGER NOT NULL,\n"
"  type TEXT NOT NULL,\n"
"  ts INTEGER NOT NULL,\n"
"  item TEXT,\n"
"  amount INTEGER,\n"
"  channel TEXT,\n"
"  text TEXT,\n"
"  expires INTEGER,\n"
"  group_id TEXT,\n"
"  staff TEXT,\n"
"  props TEXT,\n"
"  ingested_at INTEGER NOT NULL\n"
");\n"
"CREATE INDEX event_pid ON event(pid, type, ts);\n"
"CREATE VIEW person_type AS\n"
"  SELECT pid, type, count(*) AS n, min(ts) AS first_ts, max(ts) AS last_ts\n"
"  FROM event GROUP BY pid, type;\n"
"CREATE TABLE merge_log(\n"
"  at INTEGER NOT NULL,\n"
"  survivor INTEGER NOT NULL,\n"
"  merged INTEGER NOT NULL,\n"
"  event_id TEXT,\n"
"  kind TEXT,\n"
"  value TEXT\n"
");\n"
"CREATE TABLE conflict_log(\n"
"  at INTEGER NOT NULL,\n"
"  event_id TEXT,\n"
"  pid INTEGER,\n"
"  kind TEXT,\n"
"  value TEXT,\n"
"  other_pid INTEGER,\n"
"  reason TEXT NOT NULL\n"
");\n"
"CREATE TABLE tag(\n"
"  pid INTEGER NOT NULL,\n"
"  tag TEXT NOT NULL,\n"
"  since INTEGER NOT NULL,\n"
"  source TEXT NOT NULL,\n"
"  PRIMARY KEY(pid, tag)\n"
") WITHOUT ROWID;\n"
"CREATE INDEX tag_tag ON tag(tag, since);\n"
"CREATE TABLE tag_log(\n"
"  seq INTEGER PRIMARY KEY,\n"
"  pid INTEGER NOT NULL,\n"
"  tag TEXT NOT NULL,\n"
"  op TEXT NOT NULL CHECK (op IN ('add', 'remove')),\n"
"  at INTEGER NOT NULL,\n"
"  source TEXT NOT NULL,\n"
"  detail TEXT\n"
");\n"
"CREATE INDEX tag_log_pid ON tag_log(pid, tag);\n"
"CREATE TABLE rfm(\n"
"  pid INTEGER PRIMARY KEY,\n"
"  r INTEGER NOT NULL,\n"
"  f INTEGER NOT NULL,\n"
"  m INTEGER NOT NULL,\n"
"  segment TEXT NOT NULL,\n"
"  computed_at INTEGER NOT NULL\n"
");\n"
"CREATE INDEX rfm_segment ON rfm(segment);\n"
"CREATE TABLE enrollment(\n"
"  id INTEGER PRIMARY KEY,\n"
"  pid INTEGER NOT NULL,\n"
"  sop TEXT NOT NULL,\n"
"  trigger_tag TEXT NOT NULL,\n"
"  day0 INTEGER NOT NULL,\n"
"  started_at INTEGER NOT NULL,\n"
"  state TEXT NOT NULL CHECK (state IN ('active', 'exited', 'completed')),\n"
"  ended_at INTEGER,\n"
"  exit_reason TEXT,\n"
"  next_step INTEGER NOT NULL DEFAULT 0,\n"
"  next_due INTEGER\n"
");\n"
"CREATE INDEX enrollment_pid ON enrollment(pid, sop, day0);\n"
"CREATE INDEX enrollment_due ON enrollment(next_due) WHERE state = 'active';\n"
"CREATE INDEX enrollment_active ON enrollment(sop, pid) WHERE state = 'active';\n"
"CREATE TABLE touch(\n"
"  id INTEGER PRIMARY KEY,\n"
"  enrollment INTEGER NOT NULL,\n"
"  pid INTEGER NOT NULL,\n"
"  sop TEXT NOT NULL,\n"
"  step INTEGER NOT NULL,\n"
"  due_at INTEGER NOT NULL,\n"
"  channel TEXT NOT NULL,\n"
"  content TEXT NOT NULL,\n"
"  staff TEXT,\n"
"  priority INTEGER NOT NULL DEFAULT 0,\n"
"  state TEXT NOT NULL,\n"
"  created_at INTEGER NOT NULL,\n"
"  not_before INTEGER,\n"
"  claimed_by TEXT,\n"
"  claimed_at INTEGER,\n"
"  sent_at INTEGER,\n"
"  reason TEXT,\n"
"  rendered TEXT,\n"
"  UNIQUE(enrollment, step)\n"
");\n"
"CREATE INDEX touch_pid ON touch(pid, due_at);\n"
"CREATE INDEX touch_state ON touch(state, due_at);\n";

/* Migrations: entry N-2 moves a database from version N-1 to N; the list
 * ends with NULL. Append only; never edit a step that has shipped. */
const char *const smr_migrations[] = {
	/* 2: SOP trust (smr(7) enrollment, touch): at most one active enrollment
	 * per person and SOP (a merge used to leave two, each queuing every
	 * step: the later day 0 of each pair exits, reason "merged", and
	 * smr-send suppresses its waiting touches); holdout membership
	 * recorded on the enrollment (known from its touches, else decided by
	 * the next smr-sop-due); steps identified by step_key, filled in for
	 * older touches by the next smr-sop-due, which knows the time zone. */
	"UPDATE enrollment SET state = 'exited', exit_reason = 'merged', ended_at = CAST(strftime('%s', 'now') AS INTEGER) "
	"WHERE state = 'active' AND EXISTS (SELECT 1 FROM enrollment o WHERE o.pid = enrollment.pid AND o.sop = enrollment.sop "
	"AND o.state = 'active' AND (o.day0 < enrollment.day0 OR (o.day0 = enrollment.day0 AND o.id < enrollment.id)));\n"
	"DROP INDEX enrollment_active;\n"
	"CREATE UNIQUE INDEX enrollment_active ON enrollment(sop, pid) WHERE state = 'active';\n"
	"ALTER TABLE enrollment ADD COLUMN holdout INTEGER CHECK (holdout IN (0, 1));\n"
	"UPDATE enrollment SET holdout = CASE WHEN EXISTS (SELECT 1 FROM touch t WHERE t.enrollment = enrollment.id "
	"AND t.state = 'holdout') THEN 1 WHEN EXISTS (SELECT 1 FROM touch t WHERE t.enrollment = enrollment.id "
	"AND t.state NOT IN ('holdout', 'skipped')) THEN 0 END;\n"
	"ALTER TABLE touch ADD COLUMN step_key TEXT;\n"
	"CREATE UNIQUE INDEX touch_step_key ON touch(enrollment, step_key);\n"
	"CREATE INDEX touch_waiting ON touch(sop, enrollment) WHERE state IN ('queued', 'deferred');\n"
	"INSERT OR REPLACE INTO meta(key, value) VALUES ('sop.upgrade', 0);\n",
	/* 3: a value of a shareable kind may link several persons, so an
	 * identity row is unique per (kind, value, pid); rowid order is the
	 * order values were linked. */
	"CREATE TABLE identity_v2(\n"
	"  kind TEXT NOT NULL,\n"
	"  value TEXT NOT NULL,\n"
	"  pid INTEGER NOT NULL,\n"
	"  first_seen INTEGER NOT NULL,\n"
	"  UNIQUE(kind, value, pid)\n"
	");\n"
	"INSERT INTO identity_v2(kind, value, pid, first_seen)\n"
	"  SELECT kind, value, pid, first_seen FROM identity ORDER BY first_seen, kind, value;\n"
	"DROP TABLE identity;\n"
	"ALTER TABLE identity_v2 RENAME TO identity;\n"
	"CREATE INDEX identity_pid ON identity(pid);\n",
	/* 4: per attribute, the ts of the profile event that set it, so the
	 * newest wins in any ingest order and through merges. */
	"ALTER TABLE person ADD COLUMN attrs_at TEXT;\n",
	/* 5: smr-send's per-person look-ups (caps, dedup, fatigue) and its
	 * queue, walked by person, each with an index of its own so that no
	 * plan depends on ANALYZE statistics (issue 14's quadratic send) */
	"CREATE INDEX touch_person ON touch(pid, state, sent_at);\n"
	"CREATE INDEX touch_queue ON touch(pid, priority DESC, due_at) WHERE state IN ('queued', 'deferred');\n",
	/* 6: WeCom delivery. staff_link is derived from friend_add /
	 * friend_delete events (and WeCom's callback names), so merges and
	 * late events need no upkeep; wecom_task is one add_msg_template
	 * attempt, recorded before the call; a touch names its task and the
	 * external_userid it was addressed to. */
	"CREATE VIEW staff_link AS\n"
	"  SELECT a.staff AS staff, a.pid AS pid, a.ts AS since,\n"
	"    (SELECT min(d.ts) FROM event d WHERE d.pid = a.pid AND d.staff = a.staff AND d.ts >= a.ts\n"
	"       AND d.type IN ('friend_delete', 'del_external_contact', 'del_follow_user')) AS until\n"
	"  FROM event a WHERE a.type IN ('friend_add', 'add_external_contact') AND a.staff IS NOT NULL;\n"
	"CREATE TABLE wecom_task(\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  staff TEXT NOT NULL,\n"
	"  text TEXT NOT NULL,\n"
	"  state TEXT NOT NULL CHECK (state IN ('attempting', 'created', 'failed', 'done', 'cancelled')),\n"
	"  msgid TEXT UNIQUE,\n"
	"  started_at INTEGER NOT NULL,\n"
	"  created_at INTEGER,\n"
	"  deadline INTEGER NOT NULL,\n"
	"  reminded INTEGER NOT NULL DEFAULT 0,\n"
	"  reminded_at INTEGER,\n"
	"  claimed_by TEXT,\n"
	"  reason TEXT\n"
	");\n"
	"CREATE INDEX wecom_task_open ON wecom_task(state) WHERE state IN ('attempting', 'created');\n"
	"ALTER TABLE touch ADD COLUMN wecom_task INTEGER;\n"
	"ALTER TABLE touch ADD COLUMN wecom_to TEXT;\n"
	"CREATE INDEX touch_wecom_task ON touch(wecom_task) WHERE wecom_task IS NOT NULL;\n",
	/* 7: WeCom moments and staff reminders. A wecom_task row is now one
	 * attempt of any kind: an add_msg_template task, an add_moment_task
	 * job (its jobid, then the moment_id its result names) or one
	 * message/send to a staff member (counted per member and minute). */
	"ALTER TABLE wecom_task ADD COLUMN kind TEXT NOT NULL DEFAULT 'template' "
	"CHECK (kind IN ('template', 'moment', 'digest'));\n"
	"ALTER TABLE wecom_task ADD COLUMN jobid TEXT;\n"
	"ALTER TABLE wecom_task ADD COLUMN moment_id TEXT;\n"
	"CREATE INDEX wecom_task_digest ON wecom_task(staff, started_at) WHERE kind = 'digest';\n",
	/* 8: smr-person reads one person's merges (by survivor) and conflicts
	 * (as pid or as other_pid); without indexes each look-up scanned the
	 * whole log. merged finds the survivor of a pid that was merged away. */
	"CREATE INDEX merge_log_survivor ON merge_log(survivor);\n"
	"CREATE INDEX merge_log_merged ON merge_log(merged);\n"
	"CREATE INDEX conflict_log_pid ON conflict_log(pid);\n"
	"CREATE INDEX conflict_log_other_pid ON conflict_log(other_pid);\n",
	NULL
};
