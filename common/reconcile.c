#include "reconcile.h"
#include "db.h"
#include "err.h"
#include "ndjson.h"

#include <stdlib.h>
#include <string.h>

#define REMIND_EVERY 28800 /* WeCom allows three reminders a task a day */

struct task {
	int64_t id, deadline, reminded, reminded_at;
	char staff[128], msgid[256], kind[16], jobid[256], moment_id[256];
};

struct rec {
	struct wecom *w;
	sqlite3 *db;
	int64_t now;
	FILE *out;
	struct reconcile_stats *st;
	json_t *done; /* the records of the task's transaction, printed once it commits */
	sqlite3_stmt *still_open, *result, *pending, *exited, *finish, *remind, *moment;
};

/* A touch's new state, printed once the transaction commits: a record
 * never describes a change that did not happen. */
static void print(struct rec *r, int64_t touch, int64_t pid, const char *result, const char *reason)
{
	json_t *o = json_pack("{s:I, s:I, s:s}", "touch", (json_int_t)touch, "pid", (json_int_t)pid, "result", result);
	if (!o)
		smr_die(SMR_FATAL, "out of memory");
	if (reason && *reason)
		json_object_set_new(o, "reason", json_string(reason));
	if (json_array_append_new(r->done, o) != 0)
		smr_die(SMR_FATAL, "out of memory");
}

/* After the commit: the task's records, counted and printed. */
static void print_done(struct rec *r)
{
	size_t i;
	json_t *o;
	json_array_foreach(r->done, i, o) {
		const char *result = json_string_value(json_object_get(o, "result"));
		if (!strcmp(result, "delivered")) r->st->delivered++;
		else if (!strcmp(result, "not_friend")) r->st->not_friend++;
		else if (!strcmp(result, "over_platform_limit")) r->st->over_limit++;
		else if (!strcmp(result, "unconfirmed")) r->st->unconfirmed++;
		else if (!strcmp(result, "cancelled")) r->st->cancelled++;
		else if (!strcmp(result, "published")) r->st->published++;
		else if (!strcmp(result, "failed")) r->st->failed++;
		ndjson_put(r->out, json_incref(o), 0);
	}
	json_array_clear(r->done);
	flush_or_die(r->out, "stdout");
}

/* Move the task's pending touches (those addressed to TO, or all when TO
 * is NULL) to STATE; print each. */
static void settle(struct rec *r, const struct task *t, const char *to, const char *state, const char *reason)
{
	db_bind_int(r->db, r->result, 1, t->id);
	db_bind_text(r->db, r->result, 2, to);
	db_bind_text(r->db, r->result, 3, state);
	db_bind_text(r->db, r->result, 4, reason);
	while (db_row(r->db, r->result))
		print(r, sqlite3_column_int64(r->result, 0), sqlite3_column_int64(r->result, 1), state, reason);
	sqlite3_reset(r->result);
}

static int64_t one_int(struct rec *r, sqlite3_stmt *st, int64_t task)
{
	db_bind_int(r->db, st, 1, task);
	int64_t v = db_row(r->db, st) ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	return v;
}

struct rowctx { struct rec *r; const struct task *t; int status; };

static int task_row(json_t *v, void *arg)
{
	struct rowctx *c = arg;
	const char *u = json_string_value(json_object_get(v, "userid"));
	if (u && strcmp(u, c->t->staff) == 0)
		c->status = (int)json_integer_value(json_object_get(v, "status"));
	return 0;
}

static int result_row(json_t *v, void *arg)
{
	struct rowctx *c = arg;
	const char *e = json_string_value(json_object_get(v, "external_userid"));
	int status = (int)json_integer_value(json_object_get(v, "status"));
	static const char *const states[] = {NULL, "delivered", "not_friend", "over_platform_limit"};
	static const char *const why[] = {NULL, "", "not a friend of the sender when it was sent",
	                                  "over WeCom's per-customer limit of mass messages"};
	if (e && status >= 1 && status <= 3)
		settle(c->r, c->t, e, states[status], why[status]);
	return 0;
}

static int64_t remind_every(void)
{
	const char *v = getenv("SMR_WECOM_REMIND_EVERY");
	return v && atol(v) > 0 ? atol(v) : REMIND_EVERY;
}

/* API with {KEY: VALUE}, its failure named on stderr. */
static long simple(struct rec *r, const char *api, const char *key, const char *value)
{
	char reason[256];
	json_t *body = json_pack("{s:s}", key, value);
	long rc = wecom_call(r->w, api, body, NULL, reason, sizeof reason);
	json_decref(body);
	if (rc != 0)
		smr_warnx(NULL, 0, "%s %s: %s: %s", key, value, api, reason);
	return rc;
}

static void finish(struct rec *r, const struct task *t, const char *state)
{
	db_bind_int(r->db, r->finish, 1, t->id);
	db_bind_text(r->db, r->finish, 2, state);
	db_run(r->db, r->finish);
}

static int publish_row(json_t *v, void *arg)
{
	struct rowctx *c = arg;
	const char *u = json_string_value(json_object_get(v, "userid"));
	if (u && strcmp(u, c->t->staff) == 0)
		c->status = (int)json_integer_value(json_object_get(v, "publish_status"));
	return 0;
}

/* A moments job's result (get_moment_task_result: status 1 and 2 still
 * creating, 3 done, with the moment_id or why not). 1: the moment exists
 * (its id in T), 0: not yet, -1: the touches were settled or the call
 * failed. */
static int moment_created(struct rec *r, struct task *t)
{
	if (t->moment_id[0])
		return 1;
	char reason[256];
	json_t *a = NULL;
	long rc = wecom_get(r->w, "get_moment_task_result", "jobid", t->jobid, &a, reason, sizeof reason);
	if (rc != 0) {
		smr_warnx(NULL, 0, "moments job %s: get_moment_task_result: %s", t->jobid, reason);
		r->st->errors++;
		return -1;
	}
	json_t *res = json_object_get(a, "result");
	long ec = (long)json_integer_value(json_object_get(res, "errcode"));
	const char *mid = json_string_value(json_object_get(res, "moment_id"));
	int status = (int)json_integer_value(json_object_get(a, "status"));
	int invalid = wecom_in_list(json_object_get(json_object_get(res, "invalid_sender_list"), "user_list"), t->staff);
	int ret = 1;
	if (status != 3) {
		ret = 0;
	} else if (ec != 0 || invalid || !mid || !*mid) {
		const char *m = json_string_value(json_object_get(res, "errmsg"));
		if (ec != 0)
			snprintf(reason, sizeof reason, "the moments job failed: errcode %ld: %.120s", ec, m ? m : "");
		else if (invalid)
			snprintf(reason, sizeof reason, "WeCom cannot post to %s's moments (invalid_sender_list)", t->staff);
		else
			snprintf(reason, sizeof reason, "the moments job finished without a moment");
		settle(r, t, NULL, "failed", reason);
		finish(r, t, "failed");
		ret = -1;
	} else {
		snprintf(t->moment_id, sizeof t->moment_id, "%s", mid);
		db_bind_int(r->db, r->moment, 1, t->id);
		db_bind_text(r->db, r->moment, 2, mid);
		db_run(r->db, r->moment);
	}
	json_decref(a);
	return ret;
}

/* A moments job, inside its transaction: once created, the staff
 * member's publish status (get_moment_task); published settles its
 * touches as published (visible to that member's customers: whether one
 * saw it is not known). Unpublished, it is stopped (cancel_moment_task)
 * when every person it is pending for has exited, or at its deadline. */
static void one_moment(struct rec *r, struct task *t)
{
	if (moment_created(r, t) != 1)
		return;
	struct rowctx c = {r, t, -1};
	long rc = wecom_pages(r->w, "get_moment_task", json_pack("{s:s, s:i}", "moment_id", t->moment_id, "limit", 1000),
	                      "task_list", publish_row, &c);
	if (rc != 0) {
		r->st->errors++;
		return;
	}
	int exited = one_int(r, r->pending, t->id) > 0 && one_int(r, r->pending, t->id) == one_int(r, r->exited, t->id);
	if (c.status == 1) {
		settle(r, t, NULL, "published", "published to the staff member's moments; whether the customer saw it is not known");
		finish(r, t, "done");
	} else if (exited || r->now >= t->deadline) {
		if (simple(r, "cancel_moment_task", "moment_id", t->moment_id) != 0) {
			r->st->errors++;
			return;
		}
		settle(r, t, NULL, exited ? "cancelled" : "unconfirmed",
		       exited ? "the person exited the SOP before the staff member published it"
		              : "the staff member did not publish it before the deadline");
		finish(r, t, exited ? "cancelled" : "done");
	}
}

/* Inside the task's transaction. */
static void one_task(struct rec *r, struct task *t)
{
	if (strcmp(t->kind, "moment") == 0) {
		one_moment(r, t);
		return;
	}
	struct rowctx c = {r, t, -1};
	long rc = wecom_pages(r->w, "get_groupmsg_task", json_pack("{s:s, s:i}", "msgid", t->msgid, "limit", 1000),
	                      "task_list", task_row, &c);
	if (rc == 41063)
		return; /* too early to ask */
	if (rc != 0) {
		r->st->errors++;
		return;
	}
	if (c.status == 2) {
		rc = wecom_pages(r->w, "get_groupmsg_send_result",
		                 json_pack("{s:s, s:s, s:i}", "msgid", t->msgid, "userid", t->staff, "limit", 1000),
		                 "send_list", result_row, &c);
		if (rc != 0 && rc != 41063) {
			r->st->errors++;
			return;
		}
		if (r->now >= t->deadline)
			settle(r, t, NULL, "unconfirmed", "sent by the staff member, but no result for this customer by the deadline");
	} else if (one_int(r, r->pending, t->id) > 0 && one_int(r, r->pending, t->id) == one_int(r, r->exited, t->id)) {
		if (simple(r, "cancel_groupmsg_send", "msgid", t->msgid) != 0) {
			r->st->errors++;
			return;
		}
		settle(r, t, NULL, "cancelled", "the person exited the SOP before the staff member sent it");
		finish(r, t, "cancelled");
		return;
	} else if (r->now >= t->deadline) {
		if (simple(r, "cancel_groupmsg_send", "msgid", t->msgid) != 0) {
			r->st->errors++;
			return;
		}
		settle(r, t, NULL, "unconfirmed", "the staff member did not send it before the deadline");
	} else if (t->reminded < 3 && r->now - t->reminded_at >= remind_every()) {
		if (simple(r, "remind_groupmsg_send", "msgid", t->msgid) == 0) {
			db_bind_int(r->db, r->remind, 1, t->id);
			db_bind_int(r->db, r->remind, 2, r->now);
			db_run(r->db, r->remind);
			r->st->reminded++;
		}
	}
	if (one_int(r, r->pending, t->id) == 0)
		finish(r, t, "done");
}

void reconcile_run(struct wecom *w, sqlite3 *db, int64_t now, FILE *out, struct reconcile_stats *st)
{
	struct rec r = {.w = w, .db = db, .now = now, .out = out, .st = st, .done = json_array()};
	if (!r.done)
		smr_die(SMR_FATAL, "out of memory");
	memset(st, 0, sizeof *st);
	r.still_open = db_prepare(db, "SELECT 1 FROM wecom_task WHERE id = ?1 AND state = 'created'");
	r.result = db_prepare(db, "UPDATE touch SET state = ?3, reason = nullif(?4, '') WHERE wecom_task = ?1 "
	                          "AND state = 'task_created' AND (?2 IS NULL OR wecom_to = ?2) RETURNING id, pid");
	r.pending = db_prepare(db, "SELECT count(*) FROM touch WHERE wecom_task = ?1 AND state = 'task_created'");
	r.exited = db_prepare(db, "SELECT count(*) FROM touch t JOIN enrollment e ON e.id = t.enrollment "
	                          "WHERE t.wecom_task = ?1 AND t.state = 'task_created' AND e.state = 'exited'");
	r.finish = db_prepare(db, "UPDATE wecom_task SET state = ?2 WHERE id = ?1");
	r.remind = db_prepare(db, "UPDATE wecom_task SET reminded = reminded + 1, reminded_at = ?2 WHERE id = ?1");
	r.moment = db_prepare(db, "UPDATE wecom_task SET moment_id = ?2 WHERE id = ?1");
	sqlite3_stmt *open = db_prepare(db, "SELECT id, staff, coalesce(msgid, ''), deadline, reminded, "
	                                    "coalesce(reminded_at, created_at), kind, coalesce(jobid, ''), coalesce(moment_id, '') "
	                                    "FROM wecom_task WHERE state = 'created' ORDER BY id");
	size_t n = 0, cap = 0;
	struct task *ts = NULL;
	while (db_row(db, open)) {
		ts = xgrow(ts, &cap, n + 1, sizeof *ts);
		struct task *t = &ts[n++];
		t->id = sqlite3_column_int64(open, 0);
		snprintf(t->staff, sizeof t->staff, "%s", (const char *)sqlite3_column_text(open, 1));
		snprintf(t->msgid, sizeof t->msgid, "%s", (const char *)sqlite3_column_text(open, 2));
		t->deadline = sqlite3_column_int64(open, 3);
		t->reminded = sqlite3_column_int64(open, 4);
		t->reminded_at = sqlite3_column_int64(open, 5);
		snprintf(t->kind, sizeof t->kind, "%s", (const char *)sqlite3_column_text(open, 6));
		snprintf(t->jobid, sizeof t->jobid, "%s", (const char *)sqlite3_column_text(open, 7));
		snprintf(t->moment_id, sizeof t->moment_id, "%s", (const char *)sqlite3_column_text(open, 8));
	}
	sqlite3_finalize(open);
	for (size_t i = 0; i < n; i++) {
		db_begin(db); /* one task at a time, under the write lock */
		if (one_int(&r, r.still_open, ts[i].id)) {
			st->tasks++;
			one_task(&r, &ts[i]);
		}
		db_commit(db);
		print_done(&r);
	}
	free(ts);
	json_decref(r.done);
	sqlite3_stmt *all[] = {r.still_open, r.result, r.pending, r.exited, r.finish, r.remind, r.moment};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		sqlite3_finalize(all[i]);
}
