#include "sender.h"
#include "db.h"
#include "err.h"
#include "render.h"
#include "staff.h"
#include "wecom.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


/* The statements run for every touch. Each names the index it is meant to
 * use where the planner could pick another one without ANALYZE statistics
 * (INDEXED BY: a schema change that loses the index fails loudly instead of
 * turning a look-up into a scan); tests/unit.c holds every plan. */
enum {
	Q_CLAIM, Q_RECORD, Q_RELEASE, Q_ENROLLMENT, Q_ENTERED, Q_TAG, Q_DEDUP, Q_RECENT,
	Q_UNANSWERED, Q_LAST_RESPONSE, Q_ITEM, Q_ATTRS, Q_QUEUE_END, Q_QUEUE_PAGE,
	Q_INPUT_END, Q_INPUT_PAGE, NQ,
	/* WECOM: prepared by staff.c and wecom.c, listed here for their plans */
	Q_STAFF_PICK = NQ, Q_STAFF_EXTUID, Q_WECOM_LIMIT, Q_WECOM_LINK, Q_WECOM_OUTCOME, NHOT
};

/* The states that hold a place in caps, dedup and fatigue, by the time
 * they count from: sent_at (sent; WECOM: task_created holds its place
 * until reconciled, delivered reached the person, published is a moments
 * post the staff member published, staff_notified a task the staff
 * member was reminded to send by hand) or claimed_at (claimed or
 * unknown: they may have gone out). not_friend, over_platform_limit,
 * unconfirmed and cancelled free it.
 *
 * Written as CASE and as filters over the person's touches rather than
 * as IN lists that drive the index: for an IN list of constants SQLite
 * builds an ephemeral table, a page allocated and zeroed, at every
 * execution, which was a fifth of smr-send's instructions. A person has
 * few touches; scanning them under touch_person is cheaper. */
#define HOLDS_PLACE "CASE state WHEN 'sent' THEN 1 WHEN 'task_created' THEN 1 WHEN 'delivered' THEN 1 " \
                    "WHEN 'published' THEN 1 WHEN 'staff_notified' THEN 1 ELSE 0 END"
#define COUNTS_SINCE(t) "((" HOLDS_PLACE " AND sent_at > " t ") " \
                        "OR (state IN ('claimed', 'unknown') AND claimed_at > " t "))"

/* The newest response of one type, a single index seek (see above). */
#define RESPONSE(type) "(SELECT max(ts) FROM event WHERE pid = ?1 AND type = '" type "' AND ts <= ?2)"

#define TOUCH_COLUMNS "t.id, t.pid, t.enrollment, t.step, t.priority, t.due_at, t.sop, t.channel, t.content, " \
                      "coalesce(t.staff, '')"

const struct sender_sql sender_hot_sql[] = {
	[Q_CLAIM] = {"claim",
		"UPDATE touch SET state = 'claimed', claimed_by = ?2, claimed_at = ?3 "
		"WHERE id = ?1 AND state IN ('queued', 'deferred') AND coalesce(not_before, 0) <= ?3"},
	[Q_RECORD] = {"record", /* a touch sent after a deferral keeps why it was deferred */
		"UPDATE touch SET state = ?2, reason = CASE WHEN ?2 = 'sent' AND ?3 IS NULL THEN reason ELSE ?3 END, "
		"not_before = ?4, rendered = coalesce(?5, rendered), "
		"sent_at = CASE WHEN ?2 = 'sent' THEN ?6 ELSE sent_at END WHERE id = ?1"},
	[Q_RELEASE] = {"release",
		"UPDATE touch SET state = 'queued', claimed_by = NULL, claimed_at = NULL, reason = ?2 "
		"WHERE id = ?1 AND state = 'claimed'"},
	[Q_ENROLLMENT] = {"enrollment",
		"SELECT state, coalesce(exit_reason, ''), day0, trigger_tag FROM enrollment WHERE id = ?1"},
	/* an exit tag entered in [day 0, now]: held now, or entered and left */
	[Q_ENTERED] = {"entered",
		"SELECT 1 FROM tag WHERE pid = ?1 AND tag = ?2 AND since BETWEEN ?3 AND ?4 "
		"UNION ALL SELECT 1 FROM tag_log WHERE pid = ?1 AND tag = ?2 AND op = 'add' AND at BETWEEN ?3 AND ?4"},
	[Q_TAG] = {"tag", "SELECT since FROM tag WHERE pid = ?1 AND tag = ?2"},
	/* the same content sent, or claimed or unknown (it may have gone out) */
	[Q_DEDUP] = {"dedup",
		"SELECT 1 FROM touch INDEXED BY touch_person "
		"WHERE pid = ?1 AND content = ?2 AND id <> ?4 AND " COUNTS_SINCE("?3")},
	/* the touches caps count, with the time each counts from */
	[Q_RECENT] = {"recent",
		"SELECT CASE WHEN state IN ('claimed', 'unknown') THEN claimed_at ELSE sent_at END, channel "
		"FROM touch INDEXED BY touch_person WHERE pid = ?1 AND id <> ?3 AND " COUNTS_SINCE("?2")},
	[Q_UNANSWERED] = {"unanswered",
		"SELECT count(*) FROM touch INDEXED BY touch_person WHERE pid = ?1 "
		"AND ((" HOLDS_PLACE " AND sent_at > ?2) OR (state = 'claimed' AND claimed_at > ?2 AND id <> ?3))"},
	/* events that count as a response, for fatigue */
	[Q_LAST_RESPONSE] = {"last_response",
		"SELECT max(coalesce(" RESPONSE("click") ", 0), coalesce(" RESPONSE("message") ", 0), "
		"coalesce(" RESPONSE("order") ", 0), coalesce(" RESPONSE("coupon_use") ", 0), "
		"coalesce(" RESPONSE("add_cart") ", 0), coalesce(" RESPONSE("pay_start") ", 0))"},
	/* the item of the newest event that has one: SQLite takes a bare
	 * column from the row max() chose, so nothing is sorted */
	[Q_ITEM] = {"item",
		"SELECT item, max(ts) FROM event WHERE pid = ?1 AND item IS NOT NULL AND ts <= ?2"},
	[Q_ATTRS] = {"attrs", "SELECT attrs FROM person WHERE pid = ?1"},
	/* the queue, a window at a time: the last person of the next
	 * SENDER_WINDOW due touches, then every due touch up to that person */
	[Q_QUEUE_END] = {"queue_end",
		"SELECT max(pid) FROM (SELECT pid FROM touch INDEXED BY touch_queue "
		"WHERE state IN ('queued', 'deferred') AND pid > ?1 AND due_at <= ?2 AND coalesce(not_before, 0) <= ?2 "
		"ORDER BY pid LIMIT ?3)"},
	[Q_QUEUE_PAGE] = {"queue_page",
		"SELECT " TOUCH_COLUMNS " FROM touch t INDEXED BY touch_queue "
		"WHERE t.state IN ('queued', 'deferred') AND t.pid > ?1 AND t.pid <= ?2 AND t.due_at <= ?3 "
		"AND coalesce(t.not_before, 0) <= ?3 ORDER BY t.pid, t.priority DESC, t.due_at, t.id"},
	[Q_INPUT_END] = {"input_end",
		"SELECT max(pid) FROM (SELECT pid FROM temp.send_input WHERE pid > ?1 AND ?2 = ?2 ORDER BY pid LIMIT ?3)"},
	[Q_INPUT_PAGE] = {"input_page",
		"SELECT " TOUCH_COLUMNS " FROM temp.send_input i JOIN touch t ON t.id = i.id "
		"WHERE i.pid > ?1 AND i.pid <= ?2 AND ?3 = ?3 ORDER BY t.pid, t.priority DESC, t.due_at, t.id"},
	[Q_STAFF_PICK] = {"staff_pick", staff_pick_sql},
	[Q_STAFF_EXTUID] = {"staff_extuid", staff_extuid_sql},
	[Q_WECOM_LIMIT] = {"wecom_limit", wecom_limit_sql},
	[Q_WECOM_LINK] = {"wecom_link", wecom_link_sql},
	[Q_WECOM_OUTCOME] = {"wecom_outcome", wecom_outcome_sql},
	[NHOT] = {NULL, NULL},
};

const char sender_input_schema[] =
	"CREATE TEMP TABLE IF NOT EXISTS send_input(id INTEGER PRIMARY KEY, pid INTEGER);\n"
	"CREATE INDEX IF NOT EXISTS temp.send_input_pid ON send_input(pid);\n";

struct touch {
	int64_t id, pid, enrollment, due_at;
	int step, priority;
	char sop[64], channel[64], content[64], staff[128];
	char to[128];         /* WECOM: the external_userid it goes to */
	int64_t window_end;   /* the end of its SOP window, once decided */
};

/* One touch of a batch and what became of it. */
struct entry {
	struct touch t;
	json_t *ids;          /* the person's identifiers, for message and result */
	const char *result;   /* NULL while it waits for delivery, or skipped */
	char reason[256];
	int64_t not_before, at;
	char *text;
	int deliver;          /* claimed, to be delivered */
	int delivered;        /* delivered: its outcome waits to be recorded */
};

struct sender {
	sqlite3 *db;
	const struct sops *sops;
	const struct policy *pol;
	struct person_lookup *pl;
	struct transport *t;
	struct wecom *wc;      /* WECOM: private touches go through WeCom */
	int64_t now;
	int fixed_now, dry_run;
	FILE *out;
	char me[160];
	struct send_stats st;
	int64_t cap_horizon;   /* the longest cap window */
	/* Touches are claimed a batch at a time (one for a remote transport,
	 * SENDER_BATCH for file:) in one transaction, then delivered; their
	 * outcomes are recorded in the transaction that claims the next
	 * batch (or a last one), before it is delivered, and printed after
	 * that commit, in queue order. */
	size_t batch;
	struct batch {
		struct entry *e;
		size_t n;
	} cur, prev;
	sqlite3_stmt *q[NQ];
};

/* What the policy says about one touch. */
struct verdict {
	const char *result;       /* "sent", "deferred", "suppressed", "failed" or NULL to send */
	char reason[256];
	int64_t not_before;
};

static const char *col_text(sqlite3_stmt *st, int i)
{
	const char *s = (const char *)sqlite3_column_text(st, i);
	return s ? s : "";
}

/* The start of process PID as "ticks-boot": its start time in clock ticks
 * since boot (/proc/PID/stat, field 22) and the first group of the boot
 * id, so that a pid reused later, even after a reboot, does not match.
 * 0, or -1 if /proc cannot say. */
static int proc_start(pid_t pid, char *buf, size_t len)
{
	char path[64], line[1024], boot[64] = "", *save = NULL;
	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	size_t n = fread(line, 1, sizeof line - 1, f);
	fclose(f);
	line[n] = '\0';
	char *p = strrchr(line, ')'); /* the command name may hold spaces and parentheses */
	if (!p)
		return -1;
	int field = 2;
	const char *start = NULL;
	for (char *tok = strtok_r(p + 1, " ", &save); tok && !start; tok = strtok_r(NULL, " ", &save))
		if (++field == 22)
			start = tok;
	if (!start)
		return -1;
	if ((f = fopen("/proc/sys/kernel/random/boot_id", "re"))) {
		if (!fgets(boot, sizeof boot, f))
			boot[0] = '\0';
		fclose(f);
	}
	boot[strcspn(boot, "-\n")] = '\0';
	snprintf(buf, len, "%s-%s", start, boot);
	return 0;
}

/* This run, unique on this host across pid reuse and reboots:
 * "host:pid:start", start being the process start time in clock ticks
 * since boot and the boot id ("0" when /proc cannot say). */
static void run_id(char *buf, size_t len)
{
	char host[64] = "localhost", start[48] = "0";
	gethostname(host, sizeof host - 1);
	host[strcspn(host, ":")] = '\0';
	if (proc_start(getpid(), start, sizeof start) != 0)
		snprintf(start, sizeof start, "0");
	snprintf(buf, len, "%s:%ld:%s", host, (long)getpid(), start);
}

struct sender *sender_open(sqlite3 *db, const struct sops *sops, const struct policy *pol,
                           struct person_lookup *pl, struct transport *t, int64_t now, int fixed_now,
                           int dry_run, FILE *out)
{
	struct sender *s = xcalloc(1, sizeof *s);
	*s = (struct sender){.db = db, .sops = sops, .pol = pol, .pl = pl, .t = t, .now = now,
	                     .fixed_now = fixed_now, .dry_run = dry_run, .out = out};
	run_id(s->me, sizeof s->me);
	db_exec(db, sender_input_schema);
	for (int i = 0; i < NQ; i++) /* the WECOM ones are prepared where they are used */
		s->q[i] = db_prepare(db, sender_hot_sql[i].sql);
	for (size_t i = 0; i < pol->ncaps; i++)
		if (pol->caps[i].period > s->cap_horizon)
			s->cap_horizon = pol->caps[i].period;
	if (pol->fatigue_n && pol->fatigue_window > s->cap_horizon)
		s->cap_horizon = pol->fatigue_window;
	s->batch = t && transport_local(t) ? SENDER_BATCH : 1;
	s->cur.e = xcalloc(s->batch, sizeof *s->cur.e);
	s->prev.e = xcalloc(s->batch, sizeof *s->prev.e);
	return s;
}

void sender_close(struct sender *s, struct send_stats *st)
{
	*st = s->st;
	for (int i = 0; i < NQ; i++)
		sqlite3_finalize(s->q[i]);
	free(s->cur.e);
	free(s->prev.e);
	free(s);
}

void sender_input(struct sender *s, int64_t id)
{
	sqlite3_stmt *ins = db_prepare(s->db, "INSERT OR IGNORE INTO temp.send_input(id) VALUES (?1)");
	db_bind_int(s->db, ins, 1, id);
	db_run(s->db, ins);
	sqlite3_finalize(ins);
}

/* Without --now, each touch is judged and recorded at the real time. */
static void tick(struct sender *s)
{
	if (!s->fixed_now)
		s->now = (int64_t)time(NULL);
}

static void release(struct sender *s, int64_t id, const char *why)
{
	db_bind_int(s->db, s->q[Q_RELEASE], 1, id);
	db_bind_text(s->db, s->q[Q_RELEASE], 2, why);
	db_run(s->db, s->q[Q_RELEASE]);
}

/* Standard output failed: the outcomes are in the database; the touches
 * of CLAIMED (a batch claimed and not delivered yet, or NULL) are queued
 * again so that a later run sends them. Exit 3. */
static void release_held(void *ctx, int64_t id)
{
	release(ctx, id, "standard output failed before delivery");
}

static _Noreturn void stdout_failed(struct sender *s, const struct batch *claimed, int err)
{
	if ((claimed || s->wc) && !s->dry_run) {
		db_begin(s->db);
		for (size_t i = 0; claimed && i < claimed->n; i++)
			if (claimed->e[i].deliver)
				release(s, claimed->e[i].t.id, "standard output failed before delivery");
		if (s->wc) /* WECOM: held touches not yet handed to WeCom */
			wecom_release(s->wc, release_held, s);
		db_commit(s->db);
	}
	smr_die(SMR_FATAL, "stdout: %s (outcomes so far are recorded in the database)", strerror(err ? err : EIO));
}

/* The person's identifiers (kinds with max 1) into O. */
static void add_ids(struct sender *s, int64_t pid, json_t *ids, json_t *o)
{
	if (ids)
		json_object_update(o, ids);
	else
		person_add_ids(s->pl, pid, o);
}

/* Print one result record; a failure of standard output ends the run. */
static void print_result(struct sender *s, const struct touch *t, json_t *ids, const char *result,
                         const char *reason, int64_t not_before, const char *text, const struct batch *claimed)
{
	json_t *o = json_object();
	json_object_set_new(o, "touch", json_integer(t->id));
	json_object_set_new(o, "pid", json_integer(t->pid));
	add_ids(s, t->pid, ids, o);
	json_object_set_new(o, "sop", json_string(t->sop));
	json_object_set_new(o, "step", json_integer(t->step));
	json_object_set_new(o, "channel", json_string(t->channel));
	json_object_set_new(o, "result", json_string(result));
	if (reason && *reason)
		json_object_set_new(o, "reason", json_string(reason));
	if (not_before)
		json_object_set_new(o, "not_before", json_integer(not_before));
	if (text)
		json_object_set_new(o, "text", json_string(text));
	if (s->dry_run)
		json_object_set_new(o, "dry_run", json_true());
	char *line = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!line)
		smr_die(SMR_FATAL, "out of memory");
	errno = 0;
	int bad = fputs(line, s->out) == EOF || fputc('\n', s->out) == EOF || fflush(s->out) != 0;
	free(line);
	if (bad)
		stdout_failed(s, claimed, errno);
}

static void record(struct sender *s, int64_t id, const char *state, const char *reason, int64_t not_before,
                   const char *text, int64_t at)
{
	sqlite3_stmt *st = s->q[Q_RECORD];
	db_bind_int(s->db, st, 1, id);
	db_bind_text(s->db, st, 2, state);
	db_bind_text(s->db, st, 3, reason && *reason ? reason : NULL);
	db_bind_opt_int(s->db, st, 4, not_before != 0, not_before);
	db_bind_text(s->db, st, 5, text);
	db_bind_int(s->db, st, 6, at);
	db_run(s->db, st);
}

static const struct sop *find_sop(const struct sops *all, const char *name)
{
	for (size_t i = 0; i < all->nsops; i++)
		if (strcmp(all->sops[i].name, name) == 0)
			return &all->sops[i];
	return NULL;
}

static int64_t one_int(struct sender *s, sqlite3_stmt *st)
{
	int64_t v = db_row(s->db, st) ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	return v;
}

/* The person's tag TAG: 1 and its since in *since, or 0. */
static int tag_since(struct sender *s, int64_t pid, const char *tag, int64_t *since)
{
	sqlite3_stmt *st = s->q[Q_TAG];
	db_bind_int(s->db, st, 1, pid);
	db_bind_text(s->db, st, 2, tag);
	int hit = db_row(s->db, st);
	if (hit && since)
		*since = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return hit;
}

static int dnd_tag(struct sender *s, const struct touch *t, char *which, size_t len)
{
	for (size_t i = 0; i < s->pol->ndnd; i++)
		if (tag_since(s, t->pid, s->pol->dnd[i], NULL)) {
			snprintf(which, len, "%s", s->pol->dnd[i]);
			return 1;
		}
	return 0;
}

/* Whether the person entered TAG at or after DAY0 and by now. */
static int entered(struct sender *s, int64_t pid, const char *tag, int64_t day0)
{
	sqlite3_stmt *st = s->q[Q_ENTERED];
	db_bind_int(s->db, st, 1, pid);
	db_bind_text(s->db, st, 2, tag);
	db_bind_int(s->db, st, 3, day0);
	db_bind_int(s->db, st, 4, s->now);
	return one_int(s, st) != 0;
}

/* The enrollment as it is now: the person converted (an exit tag entered
 * since day 0), left the trigger (on_leave exit) or re-entered it, or the
 * enrollment exited: then *V says suppressed. Sets *day0. */
static int converted(struct sender *s, const struct touch *t, const struct sop *sp, int64_t *day0,
                     struct verdict *v)
{
	sqlite3_stmt *st = s->q[Q_ENROLLMENT];
	char state[16] = "", why[128] = "", trigger[64] = "";
	db_bind_int(s->db, st, 1, t->enrollment);
	int found = db_row(s->db, st);
	if (found) {
		snprintf(state, sizeof state, "%s", col_text(st, 0));
		snprintf(why, sizeof why, "%s", col_text(st, 1));
		*day0 = sqlite3_column_int64(st, 2);
		snprintf(trigger, sizeof trigger, "%s", col_text(st, 3));
	}
	sqlite3_reset(st);
	v->result = "suppressed";
	if (!found) {
		snprintf(v->reason, sizeof v->reason, "enrollment %lld no longer exists", (long long)t->enrollment);
		return 1;
	}
	if (strcmp(state, "exited") == 0) {
		snprintf(v->reason, sizeof v->reason, "enrollment exited (%s)", why);
		return 1;
	}
	for (size_t k = 0; k < sp->nexits; k++)
		if (entered(s, t->pid, sp->exits[k], *day0)) {
			snprintf(v->reason, sizeof v->reason, "converted: entered %s after day 0", sp->exits[k]);
			return 1;
		}
	int64_t since = 0;
	int holds = tag_since(s, t->pid, trigger, &since);
	if (holds && since > *day0 && since <= s->now) {
		snprintf(v->reason, sizeof v->reason, "re-entered %s (a new enrollment follows)", trigger);
		return 1;
	}
	if (sp->exit_on_leave && (!holds || since != *day0)) {
		snprintf(v->reason, sizeof v->reason, "left %s", trigger);
		return 1;
	}
	v->result = NULL;
	return 0;
}

static int fatigued(struct sender *s, const struct touch *t)
{
	if (!s->pol->fatigue_n)
		return 0;
	sqlite3_stmt *lr = s->q[Q_LAST_RESPONSE], *un = s->q[Q_UNANSWERED];
	db_bind_int(s->db, lr, 1, t->pid);
	db_bind_int(s->db, lr, 2, s->now);
	int64_t last = one_int(s, lr);
	db_bind_int(s->db, un, 1, t->pid);
	db_bind_int(s->db, un, 2, last);
	db_bind_int(s->db, un, 3, t->id);
	return one_int(s, un) >= s->pol->fatigue_n;
}

/* The earliest time at or after now that every cap allows this touch,
 * with the cap that binds last in *why; now if none binds. The touches
 * counted are read once, over the longest cap window. */
static int64_t cap_fit(struct sender *s, const struct touch *t, char *why, size_t len)
{
	struct cap caps[POLICY_MAX + 1];
	size_t n = s->pol->ncaps;
	memcpy(caps, s->pol->caps, n * sizeof *caps);
	if (fatigued(s, t)) /* unanswered touches: one per fatigue window */
		caps[n++] = (struct cap){"any", "1/fatigue", 1, s->pol->fatigue_window};
	if (n == 0)
		return s->now;
	long count[POLICY_MAX + 1] = {0};
	int64_t oldest[POLICY_MAX + 1] = {0};
	sqlite3_stmt *st = s->q[Q_RECENT];
	db_bind_int(s->db, st, 1, t->pid);
	db_bind_int(s->db, st, 2, s->now - s->cap_horizon);
	db_bind_int(s->db, st, 3, t->id);
	while (db_row(s->db, st)) {
		int64_t at = sqlite3_column_int64(st, 0);
		const char *ch = col_text(st, 1);
		for (size_t i = 0; i < n; i++) {
			int any = strcmp(caps[i].channel, "any") == 0;
			if ((!any && strcmp(caps[i].channel, ch) != 0) || at <= s->now - caps[i].period)
				continue;
			if (count[i]++ == 0 || at < oldest[i])
				oldest[i] = at;
		}
	}
	sqlite3_reset(st);
	int64_t fit = s->now;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(caps[i].channel, "any") != 0 && strcmp(caps[i].channel, t->channel) != 0)
			continue;
		if (count[i] < caps[i].n || oldest[i] + caps[i].period <= fit)
			continue;
		fit = oldest[i] + caps[i].period;
		snprintf(why, len, "cap %.60s %s%s", caps[i].channel, caps[i].spec,
		         i >= s->pol->ncaps ? " (fatigue: no response to recent touches)" : "");
	}
	return fit;
}

/* Defer to AT unless that falls outside the SOP window: then suppress. */
static void defer_or_suppress(struct verdict *v, int64_t at, int64_t window_end, const char *why)
{
	if (at >= window_end) {
		v->result = "suppressed";
		snprintf(v->reason, sizeof v->reason, "%s; the next allowed time is outside the SOP window", why);
	} else {
		v->result = "deferred";
		v->not_before = at;
		snprintf(v->reason, sizeof v->reason, "%s", why);
	}
}

/* WECOM: the touch's sender (staff member) and external_userid, and
 * WeCom's per-customer limit, which defers to its next period. */
static void wecom_decide(struct sender *s, struct touch *t, struct verdict *v)
{
	int64_t next = 0;
	v->result = wecom_check(s->wc, s->now, t->id, t->pid, t->channel, t->staff, sizeof t->staff, t->to,
	                        sizeof t->to, v->reason, sizeof v->reason, &next);
	if (v->result && strcmp(v->result, "deferred") == 0) {
		char why[sizeof v->reason];
		memcpy(why, v->reason, sizeof why);
		defer_or_suppress(v, policy_quiet_end(s->pol, next), t->window_end, why);
	}
}

/* The policy, on the database as it is inside the claim's transaction. */
static void decide(struct sender *s, struct touch *t, struct verdict *v)
{
	char why[200] = "";
	memset(v, 0, sizeof *v);
	const struct sop *sp = find_sop(s->sops, t->sop);
	if (!sp) {
		v->result = "suppressed";
		snprintf(v->reason, sizeof v->reason, "sop %s is no longer in the rules", t->sop);
		return;
	}
	int64_t day0 = 0;
	if (converted(s, t, sp, &day0, v))
		return;
	int64_t window_end = t->window_end = day0 + sp->window;
	if (s->now >= window_end) {
		v->result = "suppressed";
		snprintf(v->reason, sizeof v->reason, "outside the SOP window");
		return;
	}
	if (dnd_tag(s, t, why, sizeof why)) {
		v->result = "suppressed";
		snprintf(v->reason, sizeof v->reason, "do not disturb: tag %s", why);
		return;
	}
	if (s->pol->dedup) {
		sqlite3_stmt *st = s->q[Q_DEDUP];
		db_bind_int(s->db, st, 1, t->pid);
		db_bind_text(s->db, st, 2, t->content);
		db_bind_int(s->db, st, 3, s->now - s->pol->dedup);
		db_bind_int(s->db, st, 4, t->id);
		if (one_int(s, st)) {
			v->result = "suppressed";
			snprintf(v->reason, sizeof v->reason, "dedup: content %s already sent within the dedup window", t->content);
			return;
		}
	}
	int64_t quiet = policy_quiet_end(s->pol, s->now);
	if (quiet > s->now) {
		defer_or_suppress(v, quiet, window_end, "quiet hours");
		return;
	}
	int64_t fit = cap_fit(s, t, why, sizeof why);
	if (fit > s->now) {
		int64_t q = policy_quiet_end(s->pol, fit);
		defer_or_suppress(v, q, window_end, why);
		return;
	}
	if (s->wc)
		wecom_decide(s, t, v);
}

/* Variables: the person's attributes, the item of their latest event that
 * names one, the staff account, pid and sop. */
static json_t *variables(struct sender *s, const struct touch *t)
{
	json_t *vars = NULL;
	sqlite3_stmt *at = s->q[Q_ATTRS], *it = s->q[Q_ITEM];
	db_bind_int(s->db, at, 1, t->pid);
	if (db_row(s->db, at))
		vars = json_loads(col_text(at, 0), 0, NULL);
	sqlite3_reset(at);
	if (!json_is_object(vars)) {
		json_decref(vars);
		vars = json_object();
	}
	db_bind_int(s->db, it, 1, t->pid);
	db_bind_int(s->db, it, 2, s->now);
	if (db_row(s->db, it) && sqlite3_column_type(it, 0) != SQLITE_NULL) /* max() of no rows: one NULL row */
		json_object_set_new(vars, "item", json_string(col_text(it, 0)));
	sqlite3_reset(it);
	if (t->staff[0])
		json_object_set_new(vars, "staff", json_string(t->staff));
	json_object_set_new(vars, "pid", json_integer(t->pid));
	json_object_set_new(vars, "sop", json_string(t->sop));
	return vars;
}

/* Render the touch's content, or set *V (content gone, or the template
 * failed). */
static char *render_touch(struct sender *s, const struct touch *t, struct verdict *v)
{
	const struct content *ct = sops_content(s->sops, t->content);
	if (!ct) {
		v->result = "suppressed";
		snprintf(v->reason, sizeof v->reason, "content %s is no longer in the rules", t->content);
		return NULL;
	}
	json_t *vars = variables(s, t);
	char *text = render(ct->text, vars, v->reason, sizeof v->reason);
	json_decref(vars);
	if (!text)
		v->result = "failed";
	return text;
}

static char *message(struct sender *s, const struct entry *e, const char *key)
{
	const struct touch *t = &e->t;
	json_t *o = json_object();
	json_object_set_new(o, "touch", json_integer(t->id));
	json_object_set_new(o, "idempotency_key", json_string(key));
	json_object_set_new(o, "pid", json_integer(t->pid));
	add_ids(s, t->pid, e->ids, o);
	json_object_set_new(o, "channel", json_string(t->channel));
	if (t->staff[0])
		json_object_set_new(o, "staff", json_string(t->staff));
	json_object_set_new(o, "sop", json_string(t->sop));
	json_object_set_new(o, "step", json_integer(t->step));
	json_object_set_new(o, "content", json_string(t->content));
	json_object_set_new(o, "text", json_string(e->text));
	char *m = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!m)
		smr_die(SMR_FATAL, "out of memory");
	return m;
}

static void tally(struct sender *s, const char *result)
{
	if (strcmp(result, "sent") == 0 || strcmp(result, "task_created") == 0 || strcmp(result, "staff_notified") == 0)
		s->st.sent++;
	else if (strcmp(result, "deferred") == 0) s->st.deferred++;
	else if (strcmp(result, "suppressed") == 0) s->st.suppressed++;
	else if (strcmp(result, "failed") == 0) s->st.failed++;
	else if (strcmp(result, "unknown") == 0) s->st.unknown++;
}

static void entry_clear(struct entry *e)
{
	free(e->text);
	json_decref(e->ids);
	memset(e, 0, sizeof *e);
}

/* Record the outcomes of B's deliveries (inside a transaction). */
static void record_delivered(struct sender *s, const struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		const struct entry *e = &b->e[i];
		if (e->delivered)
			record(s, e->t.id, e->result, e->reason, e->not_before, e->text, e->at);
	}
}

/* Print B's results in queue order once they are all recorded, then
 * empty it; CLAIMED is a batch claimed and not yet delivered (or NULL). */
static void print_batch(struct sender *s, struct batch *b, const struct batch *claimed)
{
	for (size_t i = 0; i < b->n; i++) {
		struct entry *e = &b->e[i];
		if (e->result) {
			int sent = strcmp(e->result, "sent") == 0;
			tally(s, e->result);
			print_result(s, &e->t, e->ids, e->result, e->reason, e->not_before, sent ? e->text : NULL, claimed);
		}
		entry_clear(e);
	}
	b->n = 0;
}

/* Claim E's touch, decide and render, inside the batch's transaction;
 * a touch another sender took or finished meanwhile is skipped. */
static void claim_one(struct sender *s, struct entry *e)
{
	struct verdict v;
	tick(s);
	sqlite3_stmt *cl = s->q[Q_CLAIM];
	db_bind_int(s->db, cl, 1, e->t.id);
	db_bind_text(s->db, cl, 2, s->me);
	db_bind_int(s->db, cl, 3, s->now);
	db_run(s->db, cl);
	if (sqlite3_changes(s->db) == 0) {
		s->st.skipped++;
		return;
	}
	e->ids = json_object();
	person_add_ids(s->pl, e->t.pid, e->ids);
	decide(s, &e->t, &v);
	if (!v.result)
		e->text = render_touch(s, &e->t, &v);
	e->at = s->now;
	if (s->dry_run && !v.result) /* as if delivered, so caps later in the run see it */
		v.result = "sent";
	if (!v.result) {
		e->deliver = 1;
		return;
	}
	e->result = v.result;
	snprintf(e->reason, sizeof e->reason, "%s", v.reason);
	e->not_before = v.not_before;
	if (!s->dry_run) {
		free(e->text);
		e->text = NULL;
	}
	record(s, e->t.id, e->result, e->reason, e->not_before, e->text, e->at);
}

/* The transport broke at entry J of the current batch (a file: write
 * error): record what was delivered before it, queue it and the rest
 * again, print what is done, exit 3. */
static _Noreturn void transport_broke(struct sender *s, size_t j, const char *why)
{
	struct batch *b = &s->cur;
	int64_t id = b->e[j].t.id;
	db_begin(s->db);
	record_delivered(s, b);
	for (size_t k = j; k < b->n; k++)
		if (b->e[k].deliver && !b->e[k].delivered)
			release(s, b->e[k].t.id, why);
	db_commit(s->db);
	for (size_t k = j; k < b->n; k++)
		if (b->e[k].deliver && !b->e[k].delivered)
			b->e[k].result = NULL; /* not done: not reported */
	print_batch(s, b, NULL);
	smr_die(SMR_FATAL, "%s (touch %lld and the rest of its batch left queued for the next run)", why,
	        (long long)id);
}

static void deliver(struct sender *s, size_t j)
{
	struct entry *e = &s->cur.e[j];
	char key[64], why[256];
	snprintf(key, sizeof key, "smr-touch-%lld", (long long)e->t.id);
	char *msg = message(s, e, key);
	enum delivery d = transport_send(s->t, msg, key, why, sizeof why);
	free(msg);
	if (d == TRANSPORT_BROKEN)
		transport_broke(s, j, why);
	tick(s);
	if (d == DELIVERED)
		why[0] = '\0'; /* an earlier attempt's error is history */
	e->delivered = 1;
	e->result = d == DELIVERED ? "sent" : d == RETRY_LATER ? "deferred" : "failed";
	snprintf(e->reason, sizeof e->reason, "%s", why);
	e->not_before = d == RETRY_LATER ? s->now + 600 : 0; /* try again in ten minutes */
	e->at = s->now;
}

/* WECOM: a touch held for WeCom, as it is reported. */
struct held {
	struct touch t;
	json_t *ids;
};

/* WECOM: an outcome of wecom_flush, already recorded. */
static void wecom_report(void *ctx, void *tag, const char *result, const char *reason, int64_t not_before)
{
	struct sender *s = ctx;
	struct held *h = tag;
	if (!result) /* its claim was taken over */
		s->st.skipped++;
	else {
		tally(s, result);
		print_result(s, &h->t, h->ids, result, reason, not_before, NULL, NULL);
	}
	json_decref(h->ids);
	free(h);
}

/* WECOM: the person's nickname, to name the customer in a staff digest. */
static void nickname(struct sender *s, int64_t pid, char *out, size_t len)
{
	sqlite3_stmt *at = s->q[Q_ATTRS];
	db_bind_int(s->db, at, 1, pid);
	if (db_row(s->db, at)) {
		json_t *a = json_loads(col_text(at, 0), 0, NULL);
		const char *n = json_string_value(json_object_get(a, "nickname"));
		snprintf(out, len, "%s", n ? n : "");
		json_decref(a);
	}
	sqlite3_reset(at);
}

/* WECOM: hand E's claimed touch to WeCom, which creates its task later. */
static void hold(struct sender *s, struct entry *e)
{
	struct held *h = xcalloc(1, sizeof *h);
	h->t = e->t;
	h->ids = e->ids;
	e->ids = NULL;
	char name[128] = "";
	if (strcmp(e->t.channel, WECOM_STAFF_CHANNEL) == 0)
		nickname(s, e->t.pid, name, sizeof name);
	wecom_queue(s->wc, e->t.id, e->t.channel, e->t.staff, e->t.to, name, e->text, e->t.window_end, h);
}

void sender_use_wecom(struct sender *s, struct wecom *wc)
{
	s->wc = wc;
	s->batch = SENDER_BATCH; /* claims are local: the tasks come later */
	s->cur.e = xrealloc(s->cur.e, s->batch * sizeof *s->cur.e);
	s->prev.e = xrealloc(s->prev.e, s->batch * sizeof *s->prev.e);
	memset(s->cur.e, 0, s->batch * sizeof *s->cur.e);
	memset(s->prev.e, 0, s->batch * sizeof *s->prev.e);
	wecom_claimer(wc, s->me);
}

/* Claim, decide and render the current batch in one write transaction
 * (with the last batch's outcomes), so that two senders never both count
 * a cap as free or both send one touch, and every decision reads the
 * database as it is at the claim; then deliver it. */
static void send_batch(struct sender *s)
{
	db_begin(s->db);
	record_delivered(s, &s->prev);
	for (size_t i = 0; i < s->cur.n; i++)
		claim_one(s, &s->cur.e[i]);
	db_commit(s->db); /* claimed: from here a crash leaves them 'claimed' */
	print_batch(s, &s->prev, &s->cur);
	for (size_t i = 0; i < s->cur.n; i++)
		if (s->cur.e[i].deliver) {
			if (s->wc)
				hold(s, &s->cur.e[i]);
			else
				deliver(s, i);
		}
	struct batch done = s->prev;
	s->prev = s->cur;
	s->cur = done;
	tick(s);
	if (s->wc && wecom_due(s->wc))
		wecom_flush(s->wc, s->now, wecom_report, s);
}

/* The last outcomes, when no claim follows them. */
static void flush_batch(struct sender *s)
{
	if (!s->prev.n)
		return;
	db_begin(s->db);
	record_delivered(s, &s->prev);
	db_commit(s->db);
	print_batch(s, &s->prev, NULL);
}

/* A dry run: one transaction, rolled back at the end; each result is
 * printed at once. */
static void dry_one(struct sender *s, const struct touch *t)
{
	struct entry *e = &s->cur.e[0];
	e->t = *t;
	s->cur.n = 1;
	claim_one(s, e);
	print_batch(s, &s->cur, NULL);
}

/* Whether the run CLAIMED_BY ("host:pid:start", or "host:pid" from older
 * versions) is still at work: 1 yes, 0 gone, -1 another host. */
static int alive(const char *claimed_by, const char *me)
{
	size_t hl = strcspn(claimed_by, ":");
	if (claimed_by[hl] != ':' || hl != strcspn(me, ":") || strncmp(claimed_by, me, hl) != 0)
		return -1; /* another host: cannot tell */
	char *end;
	long pid = strtol(claimed_by + hl + 1, &end, 10);
	if (pid <= 0 || (kill((pid_t)pid, 0) != 0 && errno != EPERM))
		return 0;
	if (*end != ':')
		return 1; /* an older claim without the start time */
	char start[96];
	if (proc_start((pid_t)pid, start, sizeof start) != 0)
		return 0;
	return strcmp(end + 1, start) == 0; /* else the pid was reused */
}

void sender_recover(struct sender *s)
{
	sqlite3_stmt *st = db_prepare(s->db,
		"SELECT t.id, t.pid, t.sop, t.step, t.channel, t.claimed_by, t.claimed_at FROM touch t WHERE t.state = 'claimed'");
	static const char lost[] = "claimed by a sender that died before recording the outcome; not resent";
	struct touch *gone = NULL;
	size_t n = 0, cap = 0;
	tick(s);
	db_begin(s->db);
	while (db_row(s->db, st)) {
		struct touch t = {0};
		t.id = sqlite3_column_int64(st, 0);
		t.pid = sqlite3_column_int64(st, 1);
		snprintf(t.sop, sizeof t.sop, "%s", col_text(st, 2));
		t.step = sqlite3_column_int(st, 3);
		snprintf(t.channel, sizeof t.channel, "%s", col_text(st, 4));
		int stale = sqlite3_column_int64(st, 6) <= s->now - SENDER_CLAIM_STALE;
		int live = alive(col_text(st, 5), s->me);
		if ((!stale && live != 0) || s->dry_run)
			continue; /* its sender is still at work */
		if (s->wc) { /* WECOM: never a live run's; look up the attempt, or queue again */
			if (live != 1)
				wecom_recover_touch(s->wc, s->now, t.id);
			continue;
		}
		if (transport_idempotent(s->t)) {
			record(s, t.id, "queued", "claimed by a sender that died; resent with the same idempotency key", 0, NULL, 0);
			continue;
		}
		record(s, t.id, "unknown", lost, 0, NULL, 0);
		if (n == cap)
			gone = xrealloc(gone, (cap = cap ? cap * 2 : 16) * sizeof *gone);
		gone[n++] = t;
	}
	sqlite3_finalize(st);
	db_commit(s->db);
	for (size_t i = 0; i < n; i++) { /* reported once recorded */
		s->st.unknown++;
		print_result(s, &gone[i], NULL, "unknown", lost, 0, NULL, NULL);
	}
	free(gone);
}

static void read_touch(sqlite3_stmt *st, struct touch *t)
{
	memset(t, 0, sizeof *t);
	t->id = sqlite3_column_int64(st, 0);
	t->pid = sqlite3_column_int64(st, 1);
	t->enrollment = sqlite3_column_int64(st, 2);
	t->step = sqlite3_column_int(st, 3);
	t->priority = sqlite3_column_int(st, 4);
	t->due_at = sqlite3_column_int64(st, 5);
	snprintf(t->sop, sizeof t->sop, "%s", col_text(st, 6));
	snprintf(t->channel, sizeof t->channel, "%s", col_text(st, 7));
	snprintf(t->content, sizeof t->content, "%s", col_text(st, 8));
	snprintf(t->staff, sizeof t->staff, "%s", col_text(st, 9));
}

/* The next window of touches: those of the persons after *LAST up to the
 * one SENDER_WINDOW due touches on (all of that person's), in order of
 * person, priority, due time. Read whole, then sent: sending writes to the
 * rows a read would still be walking. */
static size_t next_window(struct sender *s, int all, int64_t *last, int64_t due, struct touch **buf, size_t *cap)
{
	sqlite3_stmt *end = s->q[all ? Q_QUEUE_END : Q_INPUT_END];
	sqlite3_stmt *page = s->q[all ? Q_QUEUE_PAGE : Q_INPUT_PAGE];
	db_bind_int(s->db, end, 1, *last);
	db_bind_int(s->db, end, 2, due);
	db_bind_int(s->db, end, 3, SENDER_WINDOW);
	int has = db_row(s->db, end) && sqlite3_column_type(end, 0) != SQLITE_NULL;
	int64_t hi = has ? sqlite3_column_int64(end, 0) : 0;
	sqlite3_reset(end);
	if (!has)
		return 0;
	size_t n = 0;
	db_bind_int(s->db, page, 1, *last);
	db_bind_int(s->db, page, 2, hi);
	db_bind_int(s->db, page, 3, due);
	while (db_row(s->db, page)) {
		if (n == *cap)
			*buf = xrealloc(*buf, (*cap = *cap ? *cap * 2 : SENDER_WINDOW) * sizeof **buf);
		read_touch(page, &(*buf)[n++]);
	}
	sqlite3_reset(page);
	*last = hi;
	return n;
}

void sender_run(struct sender *s, int all, long limit)
{
	if (!all) /* the input's persons, to walk them in order a window at a time */
		db_exec(s->db, "UPDATE temp.send_input SET pid = (SELECT pid FROM main.touch t WHERE t.id = send_input.id)");
	if (s->dry_run)
		db_begin(s->db);
	tick(s);
	int64_t due = s->now, last = 0;
	long done = 0;
	size_t cap = 0, n;
	struct touch *ts = NULL;
	while ((limit <= 0 || done < limit) && (n = next_window(s, all, &last, due, &ts, &cap)) > 0)
		for (size_t i = 0; i < n && (limit <= 0 || done < limit); i++, done++) {
			if (s->dry_run) {
				dry_one(s, &ts[i]);
				continue;
			}
			s->cur.e[s->cur.n++].t = ts[i];
			if (s->cur.n == s->batch || i + 1 == n || (limit > 0 && done + 1 == limit))
				send_batch(s);
		}
	free(ts);
	if (s->dry_run) {
		db_rollback(s->db);
		return;
	}
	flush_batch(s);
	if (s->wc) {
		tick(s);
		wecom_flush(s->wc, s->now, wecom_report, s);
	}
}
