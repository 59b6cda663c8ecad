#include "sender.h"
#include "db.h"
#include "err.h"
#include "ndjson.h"
#include "render.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Events that count as a response, for fatigue. */
#define RESPONSE_TYPES "('click', 'message', 'order', 'coupon_use', 'add_cart', 'pay_start')"

struct touch {
	int64_t id, pid, enrollment, due_at, day0;
	int step, priority;
	char sop[64], channel[64], content[64], staff[128], enr_state[16], exit_reason[128];
};

struct sender {
	sqlite3 *db;
	const struct sops *sops;
	const struct policy *pol;
	struct person_lookup *pl;
	struct transport *t;
	int64_t now;
	int dry_run;
	FILE *out;
	char me[128];
	struct send_stats st;
	/* The outcome of the last delivery, recorded in the same transaction
	 * as the next claim: one commit per touch, and the outcome is durable
	 * before the next delivery starts. */
	struct pending {
		int has;
		struct touch *t;
		const char *result;
		char reason[256];
		int64_t not_before;
		char *text;
	} out_pending;
	sqlite3_stmt *claim, *record, *dnd, *dedup, *cap, *last_response, *unanswered, *item, *attrs;
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

struct sender *sender_open(sqlite3 *db, const struct sops *sops, const struct policy *pol,
                           struct person_lookup *pl, struct transport *t, int64_t now, int dry_run, FILE *out)
{
	struct sender *s = xcalloc(1, sizeof *s);
	*s = (struct sender){.db = db, .sops = sops, .pol = pol, .pl = pl, .t = t, .now = now, .dry_run = dry_run, .out = out};
	char host[64] = "localhost";
	gethostname(host, sizeof host - 1);
	snprintf(s->me, sizeof s->me, "%s:%ld", host, (long)getpid());
	s->claim = db_prepare(db, "UPDATE touch SET state = 'claimed', claimed_by = ?2, claimed_at = ?3 "
	                          "WHERE id = ?1 AND state IN ('queued', 'deferred') AND coalesce(not_before, 0) <= ?3");
	s->record = db_prepare(db, "UPDATE touch SET state = ?2, reason = ?3, not_before = ?4, rendered = coalesce(?5, rendered), "
	                           "sent_at = CASE WHEN ?2 = 'sent' THEN ?6 ELSE sent_at END WHERE id = ?1");
	s->dnd = db_prepare(db, "SELECT tag FROM tag WHERE pid = ?1 AND tag = ?2");
	s->dedup = db_prepare(db, "SELECT 1 FROM touch WHERE pid = ?1 AND content = ?2 AND state = 'sent' AND sent_at > ?3 AND id <> ?4");
	s->cap = db_prepare(db, "SELECT count(*), min(coalesce(sent_at, claimed_at)) FROM touch WHERE pid = ?1 AND id <> ?2 "
	                        "AND state IN ('sent', 'claimed', 'unknown') AND (?3 = 'any' OR channel = ?3) "
	                        "AND coalesce(sent_at, claimed_at) > ?4");
	s->last_response = db_prepare(db, "SELECT coalesce(max(ts), 0) FROM event WHERE pid = ?1 AND ts <= ?2 AND type IN " RESPONSE_TYPES);
	s->unanswered = db_prepare(db, "SELECT count(*) FROM touch WHERE pid = ?1 AND state = 'sent' AND sent_at > ?2");
	s->item = db_prepare(db, "SELECT item FROM event WHERE pid = ?1 AND item IS NOT NULL AND ts <= ?2 ORDER BY ts DESC LIMIT 1");
	s->attrs = db_prepare(db, "SELECT attrs FROM person WHERE pid = ?1");
	return s;
}

void sender_close(struct sender *s, struct send_stats *st)
{
	*st = s->st;
	sqlite3_stmt *all[] = {s->claim, s->record, s->dnd, s->dedup, s->cap, s->last_response, s->unanswered, s->item, s->attrs};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		sqlite3_finalize(all[i]);
	free(s);
}

static void print_result(struct sender *s, const struct touch *t, const char *result, const char *reason,
                         int64_t not_before, const char *text)
{
	json_t *o = json_object();
	json_object_set_new(o, "touch", json_integer(t->id));
	json_object_set_new(o, "pid", json_integer(t->pid));
	person_add_ids(s->pl, t->pid, o);
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
	ndjson_put(s->out, o, 0);
	if (fflush(s->out) != 0)
		smr_die(SMR_FATAL, "stdout: %s", strerror(errno));
}

static void record(struct sender *s, int64_t id, const char *state, const char *reason, int64_t not_before, const char *text)
{
	db_bind_int(s->db, s->record, 1, id);
	db_bind_text(s->db, s->record, 2, state);
	db_bind_text(s->db, s->record, 3, reason && *reason ? reason : NULL);
	db_bind_opt_int(s->db, s->record, 4, not_before != 0, not_before);
	db_bind_text(s->db, s->record, 5, text);
	db_bind_int(s->db, s->record, 6, s->now);
	db_run(s->db, s->record);
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

static int dnd_tag(struct sender *s, const struct touch *t, char *which, size_t len)
{
	for (size_t i = 0; i < s->pol->ndnd; i++) {
		db_bind_int(s->db, s->dnd, 1, t->pid);
		db_bind_text(s->db, s->dnd, 2, s->pol->dnd[i]);
		int hit = db_row(s->db, s->dnd);
		sqlite3_reset(s->dnd);
		if (hit) {
			snprintf(which, len, "%s", s->pol->dnd[i]);
			return 1;
		}
	}
	return 0;
}

static int fatigued(struct sender *s, const struct touch *t)
{
	if (!s->pol->fatigue_n)
		return 0;
	db_bind_int(s->db, s->last_response, 1, t->pid);
	db_bind_int(s->db, s->last_response, 2, s->now);
	int64_t last = one_int(s, s->last_response);
	db_bind_int(s->db, s->unanswered, 1, t->pid);
	db_bind_int(s->db, s->unanswered, 2, last);
	return one_int(s, s->unanswered) >= s->pol->fatigue_n;
}

/* The earliest time at or after now that every cap allows this touch,
 * with the cap that binds last in *why; now if none binds. */
static int64_t cap_fit(struct sender *s, const struct touch *t, char *why, size_t len)
{
	struct cap caps[POLICY_MAX + 1];
	size_t n = s->pol->ncaps;
	memcpy(caps, s->pol->caps, n * sizeof *caps);
	if (fatigued(s, t)) /* unanswered touches: one per fatigue window */
		caps[n++] = (struct cap){"any", "1/fatigue", 1, s->pol->fatigue_window};
	int64_t fit = s->now;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(caps[i].channel, "any") != 0 && strcmp(caps[i].channel, t->channel) != 0)
			continue;
		db_bind_int(s->db, s->cap, 1, t->pid);
		db_bind_int(s->db, s->cap, 2, t->id);
		db_bind_text(s->db, s->cap, 3, caps[i].channel);
		db_bind_int(s->db, s->cap, 4, s->now - caps[i].period);
		if (db_row(s->db, s->cap) && sqlite3_column_int(s->cap, 0) >= caps[i].n) {
			int64_t at = sqlite3_column_int64(s->cap, 1) + caps[i].period;
			if (at > fit) {
				fit = at;
				snprintf(why, len, "cap %.60s %s%s", caps[i].channel, caps[i].spec,
				         i >= s->pol->ncaps ? " (fatigue: no response to recent touches)" : "");
			}
		}
		sqlite3_reset(s->cap);
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

static void decide(struct sender *s, const struct touch *t, struct verdict *v)
{
	char why[200] = "";
	memset(v, 0, sizeof *v);
	const struct sop *sp = find_sop(s->sops, t->sop);
	if (!sp) {
		v->result = "suppressed";
		snprintf(v->reason, sizeof v->reason, "sop %s is no longer in the rules", t->sop);
		return;
	}
	if (strcmp(t->enr_state, "exited") == 0) {
		v->result = "suppressed";
		snprintf(v->reason, sizeof v->reason, "enrollment exited (%s)", t->exit_reason);
		return;
	}
	int64_t window_end = t->day0 + sp->window;
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
		db_bind_int(s->db, s->dedup, 1, t->pid);
		db_bind_text(s->db, s->dedup, 2, t->content);
		db_bind_int(s->db, s->dedup, 3, s->now - s->pol->dedup);
		db_bind_int(s->db, s->dedup, 4, t->id);
		if (one_int(s, s->dedup)) {
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
	}
}

/* Variables: the person's attributes, the item of their latest event that
 * names one, the staff account, pid and sop. */
static json_t *variables(struct sender *s, const struct touch *t)
{
	json_t *vars = NULL;
	db_bind_int(s->db, s->attrs, 1, t->pid);
	if (db_row(s->db, s->attrs))
		vars = json_loads(col_text(s->attrs, 0), 0, NULL);
	sqlite3_reset(s->attrs);
	if (!json_is_object(vars)) {
		json_decref(vars);
		vars = json_object();
	}
	db_bind_int(s->db, s->item, 1, t->pid);
	db_bind_int(s->db, s->item, 2, s->now);
	if (db_row(s->db, s->item))
		json_object_set_new(vars, "item", json_string(col_text(s->item, 0)));
	sqlite3_reset(s->item);
	if (t->staff[0])
		json_object_set_new(vars, "staff", json_string(t->staff));
	json_object_set_new(vars, "pid", json_integer(t->pid));
	json_object_set_new(vars, "sop", json_string(t->sop));
	return vars;
}

static char *message(struct sender *s, const struct touch *t, const char *text, const char *key)
{
	json_t *o = json_object();
	json_object_set_new(o, "touch", json_integer(t->id));
	json_object_set_new(o, "idempotency_key", json_string(key));
	json_object_set_new(o, "pid", json_integer(t->pid));
	person_add_ids(s->pl, t->pid, o);
	json_object_set_new(o, "channel", json_string(t->channel));
	if (t->staff[0])
		json_object_set_new(o, "staff", json_string(t->staff));
	json_object_set_new(o, "sop", json_string(t->sop));
	json_object_set_new(o, "step", json_integer(t->step));
	json_object_set_new(o, "content", json_string(t->content));
	json_object_set_new(o, "text", json_string(text));
	char *m = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!m)
		smr_die(SMR_FATAL, "out of memory");
	return m;
}

static void tally(struct sender *s, const char *result)
{
	if (strcmp(result, "sent") == 0) s->st.sent++;
	else if (strcmp(result, "deferred") == 0) s->st.deferred++;
	else if (strcmp(result, "suppressed") == 0) s->st.suppressed++;
	else if (strcmp(result, "failed") == 0) s->st.failed++;
}

/* Record the last delivery's outcome (inside a transaction). */
static void record_pending(struct sender *s)
{
	struct pending *p = &s->out_pending;
	if (p->has)
		record(s, p->t->id, p->result, p->reason, p->not_before, p->text);
}

/* Print it once its transaction has committed. */
static void print_pending(struct sender *s)
{
	struct pending *p = &s->out_pending;
	if (!p->has)
		return;
	int sent = strcmp(p->result, "sent") == 0;
	print_result(s, p->t, p->result, p->reason, p->not_before, sent ? p->text : NULL);
	tally(s, p->result);
	free(p->text);
	memset(p, 0, sizeof *p);
}

/* Claim, decide and render in one write transaction, so that two senders
 * never both count a cap as free or both send one touch. */
static void send_one(struct sender *s, struct touch *t)
{
	struct verdict v;
	char *text = NULL;
	if (!s->dry_run) /* a dry run is one transaction, rolled back at the end */
		db_begin(s->db);
	record_pending(s);
	db_bind_int(s->db, s->claim, 1, t->id);
	db_bind_text(s->db, s->claim, 2, s->me);
	db_bind_int(s->db, s->claim, 3, s->now);
	db_run(s->db, s->claim);
	if (sqlite3_changes(s->db) == 0) {
		if (!s->dry_run)
			db_commit(s->db); /* the pending outcome */
		print_pending(s);
		s->st.skipped++;
		return; /* sent, claimed or deferred elsewhere */
	}
	decide(s, t, &v);
	if (!v.result) {
		const struct content *ct = sops_content(s->sops, t->content);
		json_t *vars = ct ? variables(s, t) : NULL;
		text = ct ? render(ct->text, vars, v.reason, sizeof v.reason) : NULL;
		json_decref(vars);
		if (!ct) {
			v.result = "suppressed";
			snprintf(v.reason, sizeof v.reason, "content %s is no longer in the rules", t->content);
		} else if (!text) {
			v.result = "failed";
		}
	}
	if (s->dry_run) {
		/* record as if delivered, so caps later in the run see it */
		record(s, t->id, v.result ? v.result : "sent", v.reason, v.not_before, text);
		print_result(s, t, v.result ? v.result : "sent", v.reason, v.not_before, text);
		tally(s, v.result ? v.result : "sent");
		free(text);
		return;
	}
	if (v.result) {
		record(s, t->id, v.result, v.reason, v.not_before, NULL);
		db_commit(s->db);
		print_pending(s);
		print_result(s, t, v.result, v.reason, v.not_before, NULL);
		tally(s, v.result);
		return;
	}
	db_commit(s->db); /* claimed: from here a crash leaves it 'claimed' */
	print_pending(s);
	char key[64], why[256];
	snprintf(key, sizeof key, "smr-touch-%lld", (long long)t->id);
	char *msg = message(s, t, text, key);
	enum delivery d = transport_send(s->t, msg, key, why, sizeof why);
	free(msg);
	const char *result = d == DELIVERED ? "sent" : d == RETRY_LATER ? "deferred" : "failed";
	if (d == DELIVERED)
		why[0] = '\0'; /* an earlier attempt's error is history */
	struct pending *p = &s->out_pending;
	p->has = 1;
	p->t = t;
	p->result = result;
	snprintf(p->reason, sizeof p->reason, "%s", why);
	p->not_before = d == RETRY_LATER ? s->now + 600 : 0; /* try again in ten minutes */
	p->text = text;
}

/* The last outcome, when no claim follows it. */
static void flush_pending(struct sender *s)
{
	if (!s->out_pending.has)
		return;
	db_begin(s->db);
	record_pending(s);
	db_commit(s->db);
	print_pending(s);
}

static int alive(const char *claimed_by, const char *me)
{
	const char *colon = strrchr(claimed_by, ':');
	const char *mine = strrchr(me, ':');
	if (!colon || !mine || (size_t)(colon - claimed_by) != (size_t)(mine - me) ||
	    strncmp(claimed_by, me, (size_t)(colon - claimed_by)) != 0)
		return -1; /* another host: cannot tell */
	long pid = atol(colon + 1);
	return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

void sender_recover(struct sender *s)
{
	sqlite3_stmt *st = db_prepare(s->db,
		"SELECT t.id, t.pid, t.sop, t.step, t.channel, t.claimed_by, t.claimed_at FROM touch t WHERE t.state = 'claimed'");
	db_begin(s->db);
	while (db_row(s->db, st)) {
		struct touch t = {0};
		t.id = sqlite3_column_int64(st, 0);
		t.pid = sqlite3_column_int64(st, 1);
		snprintf(t.sop, sizeof t.sop, "%s", col_text(st, 2));
		t.step = sqlite3_column_int(st, 3);
		snprintf(t.channel, sizeof t.channel, "%s", col_text(st, 4));
		int a = alive(col_text(st, 5), s->me);
		if (a == 1 || (a == -1 && sqlite3_column_int64(st, 6) > s->now - 3600))
			continue; /* its sender is still at work */
		if (s->dry_run)
			continue;
		if (transport_idempotent(s->t)) {
			record(s, t.id, "queued", "claimed by a sender that died; resent with the same idempotency key", 0, NULL);
			continue;
		}
		record(s, t.id, "unknown", "claimed by a sender that died before recording the outcome; not resent", 0, NULL);
		print_result(s, &t, "unknown", "claimed by a sender that died before recording the outcome; not resent", 0, NULL);
		s->st.unknown++;
	}
	sqlite3_finalize(st);
	db_commit(s->db);
}

void sender_run(struct sender *s, int all, long limit)
{
	char sql[1024];
	snprintf(sql, sizeof sql,
		"SELECT t.id, t.pid, t.enrollment, t.due_at, e.day0, t.step, t.priority, t.sop, t.channel, t.content, "
		"coalesce(t.staff, ''), e.state, coalesce(e.exit_reason, '') FROM touch t JOIN enrollment e ON e.id = t.enrollment "
		"WHERE %s ORDER BY t.pid, t.priority DESC, t.due_at, t.id",
		all ? "t.state IN ('queued', 'deferred') AND t.due_at <= ?1 AND coalesce(t.not_before, 0) <= ?1"
		    : "t.id IN (SELECT id FROM temp.send_input) AND ?1 = ?1");
	sqlite3_stmt *st = db_prepare(s->db, sql);
	db_bind_int(s->db, st, 1, s->now);
	/* read the batch first: sending writes to the rows being read */
	size_t n = 0, cap = 256;
	struct touch *ts = xmalloc(cap * sizeof *ts);
	while ((limit <= 0 || (long)n < limit) && db_row(s->db, st)) {
		if (n == cap)
			ts = xrealloc(ts, (cap *= 2) * sizeof *ts);
		struct touch *t = &ts[n++];
		memset(t, 0, sizeof *t);
		t->id = sqlite3_column_int64(st, 0);
		t->pid = sqlite3_column_int64(st, 1);
		t->enrollment = sqlite3_column_int64(st, 2);
		t->due_at = sqlite3_column_int64(st, 3);
		t->day0 = sqlite3_column_int64(st, 4);
		t->step = sqlite3_column_int(st, 5);
		t->priority = sqlite3_column_int(st, 6);
		snprintf(t->sop, sizeof t->sop, "%s", col_text(st, 7));
		snprintf(t->channel, sizeof t->channel, "%s", col_text(st, 8));
		snprintf(t->content, sizeof t->content, "%s", col_text(st, 9));
		snprintf(t->staff, sizeof t->staff, "%s", col_text(st, 10));
		snprintf(t->enr_state, sizeof t->enr_state, "%s", col_text(st, 11));
		snprintf(t->exit_reason, sizeof t->exit_reason, "%s", col_text(st, 12));
	}
	sqlite3_finalize(st);
	if (s->dry_run)
		db_begin(s->db);
	for (size_t i = 0; i < n; i++)
		send_one(s, &ts[i]);
	if (!s->dry_run)
		flush_pending(s);
	if (s->dry_run)
		db_rollback(s->db);
	free(ts);
}
