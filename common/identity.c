#include "identity.h"
#include "db.h"
#include "err.h"
#include "sopdue.h"
#include "tagrules.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

const char identity_lookup_sql[] = "SELECT pid, max(rowid) FROM identity WHERE kind = ?1 AND value = ?2";
const char identity_kinds_of_sql[] = "SELECT kind, count(*) FROM identity WHERE pid = ?1 GROUP BY kind";

#define NMERGE 11
const char *const identity_merge_sql[NMERGE + 1] = {
	"UPDATE event SET pid = ?1 WHERE pid = ?2",
	"UPDATE OR IGNORE identity SET pid = ?1 WHERE pid = ?2",
	"DELETE FROM identity WHERE pid = ?2", /* values both persons were linked to */
	"INSERT INTO tag(pid, tag, since, source) SELECT ?1, tag, since, source FROM tag WHERE pid = ?2 "
	"ON CONFLICT(pid, tag) DO UPDATE SET since = min(since, excluded.since)",
	"DELETE FROM tag WHERE pid = ?2",
	"UPDATE tag_log SET pid = ?1 WHERE pid = ?2",
	/* per attribute, the one set by the later profile event wins; an
	 * attribute without a time (from before attrs_at) loses to one with */
	"WITH s AS (SELECT attrs, coalesce(attrs_at, '{}') AS at FROM person WHERE pid = ?1), "
	"m AS (SELECT attrs, coalesce(attrs_at, '{}') AS at FROM person WHERE pid = ?2), "
	"k(key) AS (SELECT key FROM s, json_each(s.attrs) UNION SELECT key FROM m, json_each(m.attrs) "
	"  UNION SELECT key FROM m, json_each(m.at)), "
	"pick AS (SELECT k.key, coalesce(m.at ->> k.key, -1) > coalesce(s.at ->> k.key, -1) "
	"  OR (s.attrs -> k.key IS NULL AND s.at ->> k.key IS NULL) AS from_m FROM k, s, m) "
	"UPDATE person SET "
	"attrs = (SELECT json_group_object(p.key, iif(from_m, m.attrs -> p.key, s.attrs -> p.key)) FROM pick AS p, s, m "
	"  WHERE iif(from_m, m.attrs -> p.key, s.attrs -> p.key) IS NOT NULL), "
	"attrs_at = (SELECT json_group_object(p.key, iif(from_m, m.at ->> p.key, s.at ->> p.key)) FROM pick AS p, s, m "
	"  WHERE iif(from_m, m.at ->> p.key, s.at ->> p.key) IS NOT NULL), "
	"created_at = min(created_at, (SELECT created_at FROM person WHERE pid = ?2)) WHERE pid = ?1",
	/* both rows hold the facts of their events before the batch: sums
	 * and extremes of disjoint sets add up without reading the events */
	"UPDATE person AS p SET events = p.events + m.events, orders = p.orders + m.orders, spend = p.spend + m.spend, "
	"refunds = p.refunds + m.refunds, refunded = p.refunded + m.refunded, "
	"first_order_at = coalesce(min(p.first_order_at, m.first_order_at), p.first_order_at, m.first_order_at), "
	"last_order_at = coalesce(max(p.last_order_at, m.last_order_at), p.last_order_at, m.last_order_at), "
	"first_seen = coalesce(min(p.first_seen, m.first_seen), p.first_seen, m.first_seen), "
	"last_seen = coalesce(max(p.last_seen, m.last_seen), p.last_seen, m.last_seen) "
	"FROM person AS m WHERE p.pid = ?1 AND m.pid = ?2",
	"UPDATE touch SET pid = ?1 WHERE pid = ?2",
	"DELETE FROM rfm WHERE pid = ?2",
	"DELETE FROM person WHERE pid = ?2",
	NULL,
};

struct identity {
	sqlite3 *db;
	const struct rules *rules;
	sqlite3_stmt *lookup, *holders, *attach, *kinds_of, *new_person, *log_merge, *log_conflict;
	sqlite3_stmt *merge[NMERGE];    /* prepared once: merges are a few percent of events */
	sqlite3_stmt *rung_log, *rung_drop; /* one rung per ladder after a merge */
	struct sopdue_merge *sops;      /* enrollments: sopdue_merge_run */
	struct identity_stats stats;
	int conflicted;                 /* the event being resolved hit a limit */
	void (*on_merge)(void *ctx, int64_t to, int64_t from);
	void *on_merge_ctx;
};

static void merge_run(sqlite3 *db, sqlite3_stmt *const *st, int64_t to, int64_t from, int64_t upto);

/* The ladders of the rules as temp.ladder_rung(tag, ladder, rung), for
 * keeping one rung per ladder through a merge. A statement that does not
 * parse is skipped here: smr-tag --check reports it. */
static void load_ladders(sqlite3 *db, const struct rules *r)
{
	db_exec(db, "CREATE TEMP TABLE IF NOT EXISTS ladder_rung("
	            "tag TEXT PRIMARY KEY, ladder TEXT NOT NULL, rung INTEGER NOT NULL) WITHOUT ROWID;"
	            "DELETE FROM temp.ladder_rung;");
	sqlite3_stmt *ins = db_prepare(db, "INSERT OR IGNORE INTO temp.ladder_rung(tag, ladder, rung) VALUES (?1, ?2, ?3)");
	for (size_t i = 0; i < r->nstmts; i++) {
		struct ladder l;
		if (strcmp(r->stmts[i].keyword, "ladder") != 0 || tagrules_ladder_parse(&r->stmts[i], NULL, &l) != 0)
			continue;
		for (size_t rung = 0; rung < l.ntags; rung++) {
			db_bind_text(db, ins, 1, l.tags[rung]);
			db_bind_text(db, ins, 2, l.name);
			db_bind_int(db, ins, 3, (int64_t)rung);
			db_run(db, ins);
		}
		tagrules_ladder_free(&l);
	}
	sqlite3_finalize(ins);
}

/* Rule tags of person ?1 below another rule tag of theirs on one ladder:
 * a merge brought both persons' rungs together. */
#define LOWER_RUNGS                                                             \
	"FROM tag t JOIN temp.ladder_rung r ON r.tag = t.tag "                  \
	"WHERE t.pid = ?1 AND t.source = 'rule' AND EXISTS (SELECT 1 FROM tag u " \
	"JOIN temp.ladder_rung q ON q.tag = u.tag WHERE u.pid = ?1 AND u.source = 'rule' " \
	"AND q.ladder = r.ladder AND q.rung > r.rung)"

struct identity *identity_open(sqlite3 *db, const struct rules *r)
{
	struct identity *ir = xcalloc(1, sizeof *ir);
	ir->db = db;
	ir->rules = r;
	/* the person a value was linked to most recently (pid comes from the
	 * row of max(rowid); NULL, read as 0, when the value is unknown): no
	 * sort, unlike ORDER BY rowid DESC LIMIT 1 */
	ir->lookup = db_prepare(db, identity_lookup_sql);
	ir->holders = db_prepare(db,
		"SELECT count(*), coalesce(max(pid = ?3), 0) FROM identity WHERE kind = ?1 AND value = ?2");
	ir->attach = db_prepare(db, "INSERT OR IGNORE INTO identity(kind, value, pid, first_seen) VALUES (?1, ?2, ?3, ?4)");
	ir->kinds_of = db_prepare(db, identity_kinds_of_sql);
	ir->new_person = db_prepare(db, "INSERT INTO person(created_at) VALUES (?1)");
	ir->log_merge = db_prepare(db,
		"INSERT INTO merge_log(at, survivor, merged, event_id, kind, value) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
	ir->log_conflict = db_prepare(db,
		"INSERT INTO conflict_log(at, event_id, pid, kind, value, other_pid, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
	for (int i = 0; i < NMERGE; i++)
		ir->merge[i] = db_prepare(db, identity_merge_sql[i]);
	ir->sops = sopdue_merge_open(db);
	load_ladders(db, r);
	ir->rung_log = db_prepare(db,
		"INSERT INTO tag_log(pid, tag, op, at, source, detail) SELECT ?1, t.tag, 'remove', ?2, 'merge', "
		"'a merge brought a higher rung of ladder ' || r.ladder " LOWER_RUNGS);
	ir->rung_drop = db_prepare(db, "DELETE FROM tag WHERE pid = ?1 AND tag IN (SELECT t.tag " LOWER_RUNGS ")");
	return ir;
}

void identity_close(struct identity *ir)
{
	if (!ir)
		return;
	sqlite3_finalize(ir->lookup);
	sqlite3_finalize(ir->rung_log);
	sqlite3_finalize(ir->rung_drop);
	sqlite3_finalize(ir->holders);
	sqlite3_finalize(ir->attach);
	sqlite3_finalize(ir->kinds_of);
	sqlite3_finalize(ir->new_person);
	sqlite3_finalize(ir->log_merge);
	sqlite3_finalize(ir->log_conflict);
	for (int i = 0; i < NMERGE; i++)
		sqlite3_finalize(ir->merge[i]);
	sopdue_merge_close(ir->sops);
	free(ir);
}

const struct identity_stats *identity_stats(const struct identity *ir) { return &ir->stats; }

void identity_on_merge(struct identity *ir, void (*fn)(void *ctx, int64_t to, int64_t from), void *ctx)
{
	ir->on_merge = fn;
	ir->on_merge_ctx = ctx;
}

static int64_t lookup(struct identity *ir, const struct ident *id)
{
	db_bind_static(ir->db, ir->lookup, 1, id->kind->name);
	db_bind_static(ir->db, ir->lookup, 2, id->value);
	int64_t pid = db_row(ir->db, ir->lookup) ? sqlite3_column_int64(ir->lookup, 0) : 0;
	sqlite3_reset(ir->lookup);
	return pid;
}

static void attach(struct identity *ir, const struct ident *id, int64_t pid, int64_t ts)
{
	db_bind_static(ir->db, ir->attach, 1, id->kind->name);
	db_bind_static(ir->db, ir->attach, 2, id->value);
	db_bind_int(ir->db, ir->attach, 3, pid);
	db_bind_int(ir->db, ir->attach, 4, ts);
	db_run(ir->db, ir->attach);
}

static int64_t new_person(struct identity *ir, int64_t now)
{
	db_bind_int(ir->db, ir->new_person, 1, now);
	db_run(ir->db, ir->new_person);
	ir->stats.new_persons++;
	return sqlite3_last_insert_rowid(ir->db);
}

static void log_conflict(struct identity *ir, const struct event *ev, int64_t pid, const struct ident *id,
                         int64_t other, const char *reason, int64_t now)
{
	sqlite3_stmt *st = ir->log_conflict;
	db_bind_int(ir->db, st, 1, now);
	db_bind_text(ir->db, st, 2, ev->id);
	db_bind_int(ir->db, st, 3, pid);
	db_bind_text(ir->db, st, 4, id->kind->name);
	db_bind_text(ir->db, st, 5, id->value);
	db_bind_opt_int(ir->db, st, 6, other != 0, other);
	db_bind_text(ir->db, st, 7, reason);
	db_run(ir->db, st);
}

/* Per-kind identifier counts, indexed like rules->kinds. */
static void add_counts_of(struct identity *ir, int64_t pid, int *counts)
{
	db_bind_int(ir->db, ir->kinds_of, 1, pid);
	while (db_row(ir->db, ir->kinds_of)) {
		const char *kind = (const char *)sqlite3_column_text(ir->kinds_of, 0);
		const struct idkind *k = rules_idkind(ir->rules, kind ? kind : "");
		if (k)
			counts[k - ir->rules->kinds] += sqlite3_column_int(ir->kinds_of, 1);
	}
	sqlite3_reset(ir->kinds_of);
}

static int within_limits(const struct rules *r, const int *counts)
{
	for (size_t k = 0; k < r->nkinds; k++)
		if (r->kinds[k].max > 0 && counts[k] > r->kinds[k].max)
			return 0;
	return 1;
}

static int kind_index(const struct rules *r, const struct ident *id)
{
	return (int)(id->kind - r->kinds);
}

/* The identifier that decides a conflict: lowest priority number, a known
 * identifier before a new one, then the event's order. */
static int decisive_ident(const struct event *ev, const int64_t *pids)
{
	int best = 0;
	for (int i = 1; i < ev->nids; i++) {
		int pb = ev->ids[best].kind->priority, pi = ev->ids[i].kind->priority;
		if (pi < pb || (pi == pb && pids[i] && !pids[best]))
			best = i;
	}
	return best;
}

static void log_merge(struct identity *ir, const struct event *ev, const int64_t *pids, int64_t to, int64_t from,
                      int64_t now)
{
	sqlite3_stmt *st = ir->log_merge;
	const struct ident *via = NULL;
	for (int i = 0; i < ev->nids && !via; i++)
		if (pids[i] == from) /* looked up before any merge; FROM's identities have not moved */
			via = &ev->ids[i];
	db_bind_int(ir->db, st, 1, now);
	db_bind_int(ir->db, st, 2, to);
	db_bind_int(ir->db, st, 3, from);
	db_bind_text(ir->db, st, 4, ev->id);
	db_bind_text(ir->db, st, 5, via ? via->kind->name : NULL);
	db_bind_text(ir->db, st, 6, via ? via->value : NULL);
	db_run(ir->db, st);
}

/* A merge unites both persons' tags; each ladder keeps its highest rung
 * (ladders hold one), as smr-tag would leave it, until smr-tag evaluates
 * the merged person again. */
static void keep_top_rungs(struct identity *ir, int64_t pid, int64_t now)
{
	db_bind_int(ir->db, ir->rung_log, 1, pid);
	db_bind_int(ir->db, ir->rung_log, 2, now);
	db_run(ir->db, ir->rung_log);
	db_bind_int(ir->db, ir->rung_drop, 1, pid);
	db_run(ir->db, ir->rung_drop);
}

static int64_t resolve_merge(struct identity *ir, const struct event *ev, const int64_t *pids,
                             const int64_t *found, int nfound, int64_t batch_start, int64_t now)
{
	int64_t pid = found[0];
	for (int i = 1; i < nfound; i++) {
		log_merge(ir, ev, pids, pid, found[i], now);
		merge_run(ir->db, ir->merge, pid, found[i], batch_start);
		sopdue_merge_run(ir->sops, pid, found[i], now);
		keep_top_rungs(ir, pid, now);
		if (ir->on_merge)
			ir->on_merge(ir->on_merge_ctx, pid, found[i]);
		ir->stats.merges++;
	}
	for (int i = 0; i < ev->nids; i++)
		if (!pids[i])
			attach(ir, &ev->ids[i], pid, ev->ts);
	return pid;
}

static int64_t resolve_conflict(struct identity *ir, const struct event *ev, const int64_t *pids, int64_t now)
{
	const struct rules *r = ir->rules;
	int d = decisive_ident(ev, pids);
	int64_t pid = pids[d];
	if (!pid) {
		pid = new_person(ir, now);
		attach(ir, &ev->ids[d], pid, ev->ts);
	}
	int *counts = xcalloc(r->nkinds, sizeof *counts);
	add_counts_of(ir, pid, counts);
	for (int i = 0; i < ev->nids; i++) {
		const struct ident *id = &ev->ids[i];
		if (i == d || pids[i] == pid)
			continue;
		int k = kind_index(r, id);
		if (pids[i]) {
			log_conflict(ir, ev, pid, id, pids[i], "held by another person; merge would exceed a limit", now);
		} else if (id->kind->max > 0 && counts[k] >= id->kind->max) {
			log_conflict(ir, ev, pid, id, 0, "not attached: person already has the most of this kind", now);
		} else {
			attach(ir, id, pid, ev->ts);
			counts[k]++;
		}
	}
	free(counts);
	ir->conflicted = 1;
	return pid;
}

static int cmp_pid(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* Resolution over identifiers of kinds that are not shareable, already
 * looked up into PIDS: merge, attach or decide a conflict. */
static int64_t resolve_linked(struct identity *ir, const struct event *ev, const int64_t *pids, int64_t batch_start,
                              int64_t now)
{
	const struct rules *r = ir->rules;
	int64_t found[EVENT_MAX_IDS];
	int nfound = 0, nnew = 0;
	assert(ev->nids > 0 && ev->nids <= EVENT_MAX_IDS);
	for (int i = 0; i < ev->nids; i++) {
		if (!pids[i])
			nnew++;
		int seen = 0;
		for (int j = 0; j < nfound; j++)
			seen |= found[j] == pids[i];
		if (pids[i] && !seen)
			found[nfound++] = pids[i];
	}
	if (nfound == 1 && nnew == 0)
		return found[0]; /* the common case: a known person, nothing new */
	qsort(found, (size_t)nfound, sizeof *found, cmp_pid);

	int *counts = xcalloc(r->nkinds, sizeof *counts);
	for (int j = 0; j < nfound; j++)
		add_counts_of(ir, found[j], counts);
	for (int i = 0; i < ev->nids; i++)
		if (!pids[i])
			counts[kind_index(r, &ev->ids[i])]++;
	int ok = within_limits(r, counts);
	free(counts);

	if (ok && nfound == 0) {
		int64_t pid = new_person(ir, now);
		for (int i = 0; i < ev->nids; i++)
			attach(ir, &ev->ids[i], pid, ev->ts);
		return pid;
	}
	if (ok)
		return resolve_merge(ir, ev, pids, found, nfound, batch_start, now);
	return resolve_conflict(ir, ev, pids, now);
}

/* Whether EV's identifiers (all new) may join person PID through a
 * shareable value. Only a person known by shareable values alone (the
 * person of an anonymous device) takes a first real identifier that way:
 * one who already has an identifier of another kind is somebody, and a
 * newcomer on their device may well be somebody else. */
static int joins_weak_holder(struct identity *ir, int64_t pid, const struct event *ev)
{
	const struct rules *r = ir->rules;
	int *counts = xcalloc(r->nkinds, sizeof *counts);
	add_counts_of(ir, pid, counts);
	int ok = 1;
	for (size_t k = 0; k < r->nkinds; k++)
		ok &= r->kinds[k].shared > 0 || counts[k] == 0;
	for (int i = 0; i < ev->nids; i++)
		counts[kind_index(r, &ev->ids[i])]++;
	ok &= within_limits(r, counts);
	free(counts);
	return ok;
}

/* Link shareable value ID to PID too, unless it already links the most
 * persons its kind allows or PID holds the most values of the kind.
 * KNOWN: the value was linked to someone when the event was looked up. */
static void link_shared(struct identity *ir, const struct event *ev, const struct ident *id, int known, int64_t pid,
                        int64_t now)
{
	int holders = 0, held = 0;
	if (known) {
		sqlite3_stmt *st = ir->holders;
		db_bind_text(ir->db, st, 1, id->kind->name);
		db_bind_text(ir->db, st, 2, id->value);
		db_bind_int(ir->db, st, 3, pid);
		holders = db_row(ir->db, st) ? sqlite3_column_int(st, 0) : 0;
		held = holders && sqlite3_column_int(st, 1);
		sqlite3_reset(st);
	}
	if (held)
		return;
	int *counts = xcalloc(ir->rules->nkinds, sizeof *counts);
	add_counts_of(ir, pid, counts);
	int full = id->kind->max > 0 && counts[kind_index(ir->rules, id)] >= id->kind->max;
	free(counts);
	if (holders >= id->kind->shared)
		log_conflict(ir, ev, pid, id, 0, "not linked: value already links the most persons its kind may share", now);
	else if (full)
		log_conflict(ir, ev, pid, id, 0, "not attached: person already has the most of this kind", now);
	else
		attach(ir, id, pid, ev->ts);
	ir->conflicted |= holders >= id->kind->shared || full;
}

/* Shareable kinds (a device, a cookie) are weak evidence: their values
 * never merge persons and never bring an identifier to a person who
 * already has one of its kind. The other identifiers decide the person;
 * failing those, the person a shareable value was linked to most
 * recently (by the decisive such value). Each shareable value is then
 * linked to that person as well, within its kind's limits. */
static int64_t resolve(struct identity *ir, const struct event *ev, int64_t batch_start, int64_t now)
{
	/* event_from_json rejects a record without an identifier: a person
	 * made from none would hold no identity and never be found again */
	assert(ev->nids > 0 && ev->nids <= EVENT_MAX_IDS);
	int64_t pids[EVENT_MAX_IDS], sub_pids[EVENT_MAX_IDS];
	struct event sub = {.id = ev->id, .ts = ev->ts}; /* EV's identifiers of kinds not shareable */
	int weak = -1, nweak = 0, sub_known = 0;
	for (int i = 0; i < ev->nids; i++) {
		pids[i] = lookup(ir, &ev->ids[i]);
		if (ev->ids[i].kind->shared > 0) {
			nweak++;
			if (pids[i] && (weak < 0 || ev->ids[i].kind->priority < ev->ids[weak].kind->priority))
				weak = i;
			continue;
		}
		sub_known |= pids[i] != 0;
		sub_pids[sub.nids] = pids[i];
		sub.ids[sub.nids++] = ev->ids[i];
	}
	if (nweak == 0 || (weak < 0 && !sub_known))
		return resolve_linked(ir, ev, pids, batch_start, now); /* nothing shared is known: as before */

	int64_t pid;
	if (!sub_known && (sub.nids == 0 || joins_weak_holder(ir, pids[weak], &sub))) {
		pid = pids[weak]; /* WEAK is known here */
		for (int i = 0; i < sub.nids; i++)
			attach(ir, &sub.ids[i], pid, ev->ts);
	} else {
		pid = resolve_linked(ir, &sub, sub_pids, batch_start, now); /* a new person if none is known */
	}
	for (int i = 0; i < ev->nids; i++)
		if (ev->ids[i].kind->shared > 0 && pids[i] != pid)
			link_shared(ir, ev, &ev->ids[i], pids[i] != 0, pid, now);
	return pid;
}

int64_t identity_resolve(struct identity *ir, const struct event *ev, int64_t batch_start, int64_t now)
{
	ir->conflicted = 0;
	int64_t pid = resolve(ir, ev, batch_start, now);
	ir->stats.conflicts += ir->conflicted;
	for (int i = 0; i < ev->nblocked; i++) {
		struct ident id = {.kind = ev->blocked[i].kind, .value = ev->blocked[i].value};
		log_conflict(ir, ev, pid, &id, 0, "blocked value", now);
	}
	return pid;
}

/* Move everything of person FROM to person TO and delete FROM; TO's facts
 * become the sum of both rows', which hold the events with eid <= UPTO
 * (the batch in flight adds its own at commit). */
static void merge_run(sqlite3 *db, sqlite3_stmt *const *st, int64_t to, int64_t from, int64_t upto)
{
	for (int i = 0; i < NMERGE; i++) {
		db_bind_int(db, st[i], 1, to);
		db_bind_int(db, st[i], 2, from);
		if (sqlite3_bind_parameter_count(st[i]) >= 3)
			db_bind_int(db, st[i], 3, upto);
		db_run(db, st[i]);
	}
}
