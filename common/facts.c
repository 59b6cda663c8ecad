#include "facts.h"
#include "db.h"
#include "err.h"
#include "regex.h"
#include "tstamp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DAY 86400

struct change { int64_t pid, at; };

struct facts {
	sqlite3 *db;
	int64_t now;
	sqlite3_stmt *count_st, *count_item_st, *future_st, *future_item_st, *last_st, *last_item_st,
		*first_st, *first_item_st, *orders_after_st, *said_st, *coupons_st, *attr_st, *tagged_st, *any_future_st;
	int64_t latest_event;       /* the latest event time in the database */
	struct change *changes;     /* open addressing on pid */
	size_t cap, used;
};

const char *const facts_columns[] = {
	"pid", "events", "orders", "spend", "net_spend", "refunds", "refunded", "aov",
	"first_seen", "last_seen", "first_order_at", "last_order_at", "days_since_order",
	"days_since_seen", "days_since_first_seen", "days_since_first_order", "nickname",
	"city", "staff", "attrs", "rev", NULL,
};

/* now(): the run's clock; smr_days(pid, ts): whole days since ts. */
static const char facts_view[] =
	"CREATE TEMP VIEW facts AS SELECT p.pid AS pid, p.events AS events, p.orders AS orders, "
	"p.spend AS spend, p.spend - p.refunded AS net_spend, p.refunds AS refunds, p.refunded AS refunded, "
	"CASE WHEN p.orders > 0 THEN p.spend / p.orders END AS aov, "
	"p.first_seen AS first_seen, p.last_seen AS last_seen, "
	"p.first_order_at AS first_order_at, p.last_order_at AS last_order_at, "
	"smr_days(p.pid, p.last_order_at) AS days_since_order, "
	"smr_days(p.pid, p.last_seen) AS days_since_seen, "
	"smr_days(p.pid, p.first_seen) AS days_since_first_seen, "
	"smr_days(p.pid, p.first_order_at) AS days_since_first_order, "
	"json_extract(p.attrs, '$.nickname') AS nickname, json_extract(p.attrs, '$.city') AS city, "
	"json_extract(p.attrs, '$.staff') AS staff, p.attrs AS attrs, p.rev AS rev "
	"FROM main.person AS p";

/* The per-person look-ups behind the functions, in facts_open's order:
 * each one person's events through event_pid (pid, type, ts), or one row
 * by primary key. */
const char *const facts_lookup_sql[] = {
	"SELECT count(*), min(ts), coalesce(sum(amount), 0) FROM main.event "
	"WHERE pid = ?1 AND type = ?2 AND ts > ?3 AND ts <= ?4",
	"SELECT count(*), min(ts), coalesce(sum(amount), 0) FROM main.event "
	"WHERE pid = ?1 AND type = ?2 AND ts > ?3 AND ts <= ?4 AND item = ?5",
	"SELECT min(ts) FROM main.event WHERE pid = ?1 AND type = ?2 AND ts > ?3",
	"SELECT min(ts) FROM main.event WHERE pid = ?1 AND type = ?2 AND ts > ?3 AND item = ?4",
	"SELECT max(ts) FROM main.event WHERE pid = ?1 AND type = ?2 AND ts <= ?3",
	"SELECT max(ts) FROM main.event WHERE pid = ?1 AND type = ?2 AND ts <= ?3 AND item = ?4",
	"SELECT min(ts) FROM main.event WHERE pid = ?1 AND type = ?2 AND ts <= ?3",
	"SELECT min(ts) FROM main.event WHERE pid = ?1 AND type = ?2 AND ts <= ?3 AND item = ?4",
	"SELECT count(*) FROM main.event WHERE pid = ?1 AND type = 'order' AND ts >= ?2 AND ts <= ?3",
	"SELECT text, ts FROM main.event WHERE pid = ?1 AND type = 'message' AND ts > ?2 AND ts <= ?3 ORDER BY ts DESC",
	"SELECT c.expires FROM main.event AS c WHERE c.pid = ?1 AND c.type = 'coupon_claim' "
	"AND c.expires IS NOT NULL AND c.ts <= ?2 AND NOT EXISTS (SELECT 1 FROM main.event AS u WHERE u.pid = c.pid "
	"AND u.type = 'coupon_use' AND u.item IS c.item AND u.ts >= c.ts AND u.ts <= ?2)",
	"SELECT min(ts) FROM main.event WHERE pid = ?1 AND ts > ?2",
	"SELECT json_extract(attrs, '$.\"' || replace(?2, '\"', '') || '\"') FROM main.person WHERE pid = ?1",
	"SELECT 1 FROM main.tag WHERE pid = ?1 AND tag = ?2",
	NULL,
};

static void note_change(struct facts *f, int64_t pid, int64_t at)
{
	if (at <= f->now)
		return;
	if ((f->used + 1) * 2 > f->cap) {
		size_t ncap = f->cap ? f->cap * 2 : 1024;
		struct change *n = xcalloc(ncap, sizeof *n);
		for (size_t i = 0; i < f->cap; i++)
			if (f->changes[i].pid) {
				size_t h = (size_t)f->changes[i].pid * 2654435761u % ncap;
				while (n[h].pid)
					h = (h + 1) % ncap;
				n[h] = f->changes[i];
			}
		free(f->changes);
		f->changes = n;
		f->cap = ncap;
	}
	size_t h = (size_t)pid * 2654435761u % f->cap;
	while (f->changes[h].pid && f->changes[h].pid != pid)
		h = (h + 1) % f->cap;
	if (!f->changes[h].pid) {
		f->changes[h].pid = pid;
		f->changes[h].at = at;
		f->used++;
	} else if (at < f->changes[h].at) {
		f->changes[h].at = at;
	}
}

void facts_note_future_events(struct facts *f, int64_t pid)
{
	if (f->latest_event <= f->now)
		return;
	sqlite3_bind_int64(f->any_future_st, 1, pid);
	sqlite3_bind_int64(f->any_future_st, 2, f->now);
	if (db_row(f->db, f->any_future_st) && sqlite3_column_type(f->any_future_st, 0) != SQLITE_NULL)
		note_change(f, pid, sqlite3_column_int64(f->any_future_st, 0));
	sqlite3_reset(f->any_future_st);
}

void facts_reset_changes(struct facts *f)
{
	if (f->cap)
		memset(f->changes, 0, f->cap * sizeof *f->changes);
	f->used = 0;
}

int64_t facts_next_change(const struct facts *f, int64_t pid)
{
	if (!f->cap)
		return 0;
	size_t h = (size_t)pid * 2654435761u % f->cap;
	while (f->changes[h].pid) {
		if (f->changes[h].pid == pid)
			return f->changes[h].at;
		h = (h + 1) % f->cap;
	}
	return 0;
}

static struct facts *ctx(sqlite3_context *c) { return sqlite3_user_data(c); }

/* A pattern that is not a literal in the rules (checked at --check) but
 * comes from data: it matches nothing; say so once per run. */
static void bad_pattern(const char *pat, const char *why)
{
	static int warned;
	if (!warned++)
		smr_warnx(NULL, 0, "pattern \"%.60s\" from data: %s (treated as no match)", pat, why);
}

/* A window argument: seconds, or -1 for 'all'; reports bad ones. */
static int64_t window_arg(sqlite3_context *c, sqlite3_value *v)
{
	const char *s = (const char *)sqlite3_value_text(v);
	int64_t secs;
	if (s && strcmp(s, "all") == 0)
		return -1;
	if (!s || tstamp_duration(s, &secs) != 0) {
		sqlite3_result_error(c, "bad window (use e.g. '7d', '12h' or 'all')", -1);
		return -2;
	}
	return secs;
}

static void bind_text_value(sqlite3_stmt *st, int i, sqlite3_value *v)
{
	sqlite3_bind_value(st, i, v);
}

/* count(pid, type, window[, item]) and amount(...): events of a type in
 * the window ending now. Notes when the oldest leaves the window and when
 * a later-dated event enters it. */
static void window_agg(sqlite3_context *c, int argc, sqlite3_value **argv, int want_amount)
{
	struct facts *f = ctx(c);
	int64_t w = window_arg(c, argv[2]);
	if (w == -2)
		return;
	/* latest_event: events dated after now exist only in backfills */
	int64_t pid = sqlite3_value_int64(argv[0]);
	int item = argc == 4;
	sqlite3_stmt *st = item ? f->count_item_st : f->count_st;
	sqlite3_bind_int64(st, 1, pid);
	bind_text_value(st, 2, argv[1]);
	sqlite3_bind_int64(st, 3, w < 0 ? INT64_MIN : f->now - w);
	sqlite3_bind_int64(st, 4, f->now);
	if (item)
		bind_text_value(st, 5, argv[3]);
	if (!db_row(f->db, st)) {
		sqlite3_reset(st);
		return;
	}
	int64_t n = sqlite3_column_int64(st, 0), total = sqlite3_column_int64(st, 2);
	if (n > 0 && w >= 0)
		note_change(f, pid, sqlite3_column_int64(st, 1) + w); /* out once now >= ts + w */
	sqlite3_reset(st);
	if (f->latest_event <= f->now) {
		sqlite3_result_int64(c, want_amount ? total : n);
		return;
	}
	st = item ? f->future_item_st : f->future_st;
	sqlite3_bind_int64(st, 1, pid);
	bind_text_value(st, 2, argv[1]);
	sqlite3_bind_int64(st, 3, f->now);
	if (item)
		bind_text_value(st, 4, argv[3]);
	if (db_row(f->db, st) && sqlite3_column_type(st, 0) != SQLITE_NULL)
		note_change(f, pid, sqlite3_column_int64(st, 0));
	sqlite3_reset(st);
	sqlite3_result_int64(c, want_amount ? total : n);
}

static void fn_count(sqlite3_context *c, int argc, sqlite3_value **argv) { window_agg(c, argc, argv, 0); }
static void fn_amount(sqlite3_context *c, int argc, sqlite3_value **argv) { window_agg(c, argc, argv, 1); }

/* The latest (or earliest) time of an event type up to now, or 0. */
static int64_t edge_ts(struct facts *f, int argc, sqlite3_value **argv, int latest)
{
	int item = argc == 3;
	sqlite3_stmt *st = latest ? (item ? f->last_item_st : f->last_st) : (item ? f->first_item_st : f->first_st);
	sqlite3_bind_int64(st, 1, sqlite3_value_int64(argv[0]));
	bind_text_value(st, 2, argv[1]);
	sqlite3_bind_int64(st, 3, f->now);
	if (item)
		bind_text_value(st, 4, argv[2]);
	int64_t ts = 0;
	if (db_row(f->db, st) && sqlite3_column_type(st, 0) != SQLITE_NULL)
		ts = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return ts;
}

/* Whole days from TS to now; notes the next day boundary. */
static int64_t days_from(struct facts *f, int64_t pid, int64_t ts)
{
	int64_t d = (f->now - ts) / DAY;
	if (f->now < ts)
		d = -((ts - f->now + DAY - 1) / DAY);
	note_change(f, pid, ts + (d + 1) * DAY);
	return d;
}

static void fn_days_since(sqlite3_context *c, int argc, sqlite3_value **argv)
{
	struct facts *f = ctx(c);
	int64_t ts = edge_ts(f, argc, argv, 1);
	if (ts)
		sqlite3_result_int64(c, days_from(f, sqlite3_value_int64(argv[0]), ts));
}

static void fn_last_ts(sqlite3_context *c, int argc, sqlite3_value **argv)
{
	int64_t ts = edge_ts(ctx(c), argc, argv, 1);
	if (ts)
		sqlite3_result_int64(c, ts);
}

static void fn_first_ts(sqlite3_context *c, int argc, sqlite3_value **argv)
{
	int64_t ts = edge_ts(ctx(c), argc, argv, 0);
	if (ts)
		sqlite3_result_int64(c, ts);
}

/* smr_days(pid, ts): whole days since a fact's time, NULL if none. */
static void fn_smr_days(sqlite3_context *c, int argc, sqlite3_value **argv)
{
	(void)argc;
	if (sqlite3_value_type(argv[1]) == SQLITE_NULL)
		return;
	sqlite3_result_int64(c, days_from(ctx(c), sqlite3_value_int64(argv[0]), sqlite3_value_int64(argv[1])));
}

/* orders_since(pid, type[, item]): orders at or after the latest such
 * event; NULL if there was none. */
static void fn_orders_since(sqlite3_context *c, int argc, sqlite3_value **argv)
{
	struct facts *f = ctx(c);
	int64_t ts = edge_ts(f, argc, argv, 1);
	if (!ts)
		return;
	sqlite3_stmt *st = f->orders_after_st;
	sqlite3_bind_int64(st, 1, sqlite3_value_int64(argv[0]));
	sqlite3_bind_int64(st, 2, ts);
	sqlite3_bind_int64(st, 3, f->now);
	int64_t n = db_row(f->db, st) ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	sqlite3_result_int64(c, n);
}

/* said(pid, pattern[, window]): a message in the window matches. */
static void fn_said(sqlite3_context *c, int argc, sqlite3_value **argv)
{
	struct facts *f = ctx(c);
	char why[200];
	const char *pat = (const char *)sqlite3_value_text(argv[1]);
	const struct regex *re = pat ? regex_get(pat, why, sizeof why) : NULL;
	if (!re) {
		if (pat)
			bad_pattern(pat, why);
		return;
	}
	int64_t w = argc == 3 ? window_arg(c, argv[2]) : -1;
	if (w == -2)
		return;
	int64_t pid = sqlite3_value_int64(argv[0]), latest = 0;
	sqlite3_stmt *st = f->said_st;
	sqlite3_bind_int64(st, 1, pid);
	sqlite3_bind_int64(st, 2, w < 0 ? INT64_MIN : f->now - w);
	sqlite3_bind_int64(st, 3, f->now);
	while (db_row(f->db, st)) {
		const char *text = (const char *)sqlite3_column_text(st, 0);
		if (text && regex_match(re, text, (size_t)sqlite3_column_bytes(st, 0))) {
			latest = sqlite3_column_int64(st, 1);
			break; /* newest first */
		}
	}
	sqlite3_reset(st);
	if (latest && w >= 0)
		note_change(f, pid, latest + w);
	sqlite3_result_int(c, latest != 0);
}

/* coupon_expiring(pid, window): coupons claimed and not used whose expiry
 * falls within the window from now. A coupon_use with the same item after
 * the claim uses it. */
static void fn_coupon_expiring(sqlite3_context *c, int argc, sqlite3_value **argv)
{
	(void)argc;
	struct facts *f = ctx(c);
	int64_t w = window_arg(c, argv[1]);
	if (w == -2)
		return;
	if (w < 0)
		w = INT64_MAX / 4;
	int64_t pid = sqlite3_value_int64(argv[0]), n = 0;
	sqlite3_stmt *st = f->coupons_st;
	sqlite3_bind_int64(st, 1, pid);
	sqlite3_bind_int64(st, 2, f->now);
	while (db_row(f->db, st)) {
		int64_t exp = sqlite3_column_int64(st, 0);
		if (exp <= f->now)
			continue;
		if (exp - w <= f->now) {
			n++;
			note_change(f, pid, exp);          /* leaves when it expires */
		} else {
			note_change(f, pid, exp - w);      /* enters the window */
		}
	}
	sqlite3_reset(st);
	sqlite3_result_int64(c, n);
}

static void fn_attr(sqlite3_context *c, int argc, sqlite3_value **argv)
{
	(void)argc;
	struct facts *f = ctx(c);
	sqlite3_stmt *st = f->attr_st;
	sqlite3_bind_int64(st, 1, sqlite3_value_int64(argv[0]));
	bind_text_value(st, 2, argv[1]);
	if (db_row(f->db, st))
		sqlite3_result_value(c, sqlite3_column_value(st, 0));
	sqlite3_reset(st);
}

static void fn_tagged(sqlite3_context *c, int argc, sqlite3_value **argv)
{
	(void)argc;
	struct facts *f = ctx(c);
	sqlite3_stmt *st = f->tagged_st;
	sqlite3_bind_int64(st, 1, sqlite3_value_int64(argv[0]));
	bind_text_value(st, 2, argv[1]);
	sqlite3_result_int(c, db_row(f->db, st));
	sqlite3_reset(st);
}

static void fn_now(sqlite3_context *c, int argc, sqlite3_value **argv)
{
	(void)argc;
	(void)argv;
	sqlite3_result_int64(c, ctx(c)->now);
}

/* X REGEXP Y calls regexp(Y, X). */
static void fn_regexp(sqlite3_context *c, int argc, sqlite3_value **argv)
{
	(void)argc;
	char why[200];
	const char *pat = (const char *)sqlite3_value_text(argv[0]);
	const char *subj = (const char *)sqlite3_value_text(argv[1]);
	if (!pat || !subj)
		return;
	const struct regex *re = regex_get(pat, why, sizeof why);
	if (!re) {
		bad_pattern(pat, why); /* from data, not a literal: no match */
		return;
	}
	sqlite3_result_int(c, regex_match(re, subj, (size_t)sqlite3_value_bytes(argv[1])));
}

struct fndef {
	const char *name;
	int nargs;
	void (*fn)(sqlite3_context *, int, sqlite3_value **);
};

static const struct fndef fndefs[] = {
	{"count", 3, fn_count}, {"count", 4, fn_count},
	{"amount", 3, fn_amount}, {"amount", 4, fn_amount},
	{"days_since", 2, fn_days_since}, {"days_since", 3, fn_days_since},
	{"days_since_item", 3, fn_days_since},
	{"last_ts", 2, fn_last_ts}, {"last_ts", 3, fn_last_ts},
	{"first_ts", 2, fn_first_ts}, {"first_ts", 3, fn_first_ts},
	{"orders_since", 2, fn_orders_since}, {"orders_since", 3, fn_orders_since},
	{"said", 2, fn_said}, {"said", 3, fn_said},
	{"coupon_expiring", 2, fn_coupon_expiring},
	{"attr", 2, fn_attr},
	{"tagged", 2, fn_tagged},
	{"smr_days", 2, fn_smr_days},
	{"now", 0, fn_now},
	{"regexp", 2, fn_regexp},
};

void facts_set_now(struct facts *f, int64_t now) { f->now = now; }

struct facts *facts_open(sqlite3 *db, int64_t now)
{
	struct facts *f = xcalloc(1, sizeof *f);
	f->db = db;
	f->now = now;
	for (size_t i = 0; i < sizeof fndefs / sizeof fndefs[0]; i++)
		if (sqlite3_create_function(db, fndefs[i].name, fndefs[i].nargs, SQLITE_UTF8 | SQLITE_DIRECTONLY,
		                            f, fndefs[i].fn, NULL, NULL) != SQLITE_OK)
			db_fail(db, "register function");
	db_exec(db, "DROP VIEW IF EXISTS temp.facts");
	db_exec(db, facts_view);
	sqlite3_stmt **st[] = {&f->count_st, &f->count_item_st, &f->future_st, &f->future_item_st, &f->last_st,
		&f->last_item_st, &f->first_st, &f->first_item_st, &f->orders_after_st, &f->said_st, &f->coupons_st,
		&f->any_future_st, &f->attr_st, &f->tagged_st};
	for (size_t i = 0; i < sizeof st / sizeof st[0]; i++)
		*st[i] = db_prepare(db, facts_lookup_sql[i]);
	/* kept by smr-ingest at each commit; a scan only for a database that
	 * has not been written since this was added */
	sqlite3_stmt *latest = db_prepare(db, "SELECT coalesce((SELECT value FROM main.meta WHERE key = 'event.max_ts'), "
	                                      "(SELECT max(last_seen) FROM main.person), 0)");
	f->latest_event = db_row(db, latest) ? sqlite3_column_int64(latest, 0) : 0;
	sqlite3_finalize(latest);
	return f;
}

void facts_close(struct facts *f)
{
	if (!f)
		return;
	sqlite3_stmt *all[] = {f->count_st, f->count_item_st, f->future_st, f->future_item_st, f->last_st,
		f->last_item_st, f->first_st, f->first_item_st, f->orders_after_st, f->said_st, f->coupons_st,
		f->attr_st, f->tagged_st, f->any_future_st};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		sqlite3_finalize(all[i]);
	free(f->changes);
	free(f);
}
