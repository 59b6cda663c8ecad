#include "tagger.h"
#include "db.h"
#include "err.h"
#include "ndjson.h"
#include "rulebudget.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 2000

struct change {
	int64_t pid;
	char *tag;
	int add;
	const char *detail;
};

struct run {
	sqlite3 *db;
	const struct tagrules *tr;
	struct facts *facts;
	struct person_lookup *pl;
	int64_t now;
	FILE *out;
	char **details;                 /* "file:line" per tag rule */
	sqlite3_stmt *eval, *chunk, *current, *add, *del, *log, *check;
	struct change *changes;
	size_t nchanges, capchanges;
	unsigned char *want;            /* ntags per person */
	struct tagger_stats *st;
	struct rule_budget *budget;
	long long steps;
};

void tag_print_change(struct person_lookup *pl, FILE *out, int64_t pid, const char *tag, int add,
                      int64_t at, const char *source, const char *detail)
{
	json_t *o = json_object();
	json_object_set_new(o, "pid", json_integer(pid));
	json_object_set_new(o, "tag", json_string(tag));
	json_object_set_new(o, "op", json_string(add ? "add" : "remove"));
	json_object_set_new(o, "at", json_integer(at));
	json_object_set_new(o, "source", json_string(source));
	if (detail)
		json_object_set_new(o, "rule", json_string(detail));
	person_add_ids(pl, pid, o);
	ndjson_put(out, o, 0);
}

static void log_change(sqlite3 *db, sqlite3_stmt *log, int64_t pid, const char *tag, int add, int64_t at,
                       const char *source, const char *detail)
{
	db_bind_int(db, log, 1, pid);
	db_bind_text(db, log, 2, tag);
	db_bind_text(db, log, 3, add ? "add" : "remove");
	db_bind_int(db, log, 4, at);
	db_bind_text(db, log, 5, source);
	db_bind_text(db, log, 6, detail);
	db_run(db, log);
}

struct tag_writer {
	sqlite3 *db;
	const char *source;
	int64_t now;
	sqlite3_stmt *exists, *add, *del, *recheck, *log;
};

struct tag_writer *tag_writer_open(sqlite3 *db, const char *source, int64_t now)
{
	struct tag_writer *w = xcalloc(1, sizeof *w);
	w->db = db;
	w->source = source;
	w->now = now;
	w->exists = db_prepare(db, "SELECT 1 FROM tag WHERE pid = ?1 AND tag = ?2");
	w->add = db_prepare(db, "INSERT INTO tag(pid, tag, since, source) VALUES (?1, ?2, ?3, ?4) "
	                        "ON CONFLICT(pid, tag) DO UPDATE SET source = excluded.source WHERE source <> excluded.source");
	w->del = db_prepare(db, "DELETE FROM tag WHERE pid = ?1 AND tag = ?2");
	w->recheck = db_prepare(db, "UPDATE person SET check_at = ?2 WHERE pid = ?1");
	w->log = db_prepare(db, "INSERT INTO tag_log(pid, tag, op, at, source, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
	return w;
}

void tag_writer_close(struct tag_writer *w)
{
	if (!w)
		return;
	sqlite3_stmt *all[] = {w->exists, w->add, w->del, w->recheck, w->log};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		sqlite3_finalize(all[i]);
	free(w);
}

int tag_writer_apply(struct tag_writer *w, int64_t pid, const char *tag, int add, const char *detail)
{
	sqlite3 *db = w->db;
	db_bind_int(db, w->exists, 1, pid);
	db_bind_text(db, w->exists, 2, tag);
	int had = db_row(db, w->exists);
	sqlite3_reset(w->exists);
	sqlite3_stmt *st = add ? w->add : w->del;
	db_bind_int(db, st, 1, pid);
	db_bind_text(db, st, 2, tag);
	if (add) {
		db_bind_int(db, st, 3, w->now);
		db_bind_text(db, st, 4, w->source);
	}
	db_run(db, st);
	if (had == add)
		return 0; /* already in (now owned by this source), or already out */
	/* rules look at this person again on the next run (a rule tag unset by
	 * hand comes back while its condition holds; ladders, tagged()) */
	db_bind_int(db, w->recheck, 1, pid);
	db_bind_int(db, w->recheck, 2, w->now);
	db_run(db, w->recheck);
	log_change(db, w->log, pid, tag, add, w->now, w->source, detail);
	return 1;
}

static void push_change(struct run *r, int64_t pid, const char *tag, int add, const char *detail)
{
	assert(add == 0 || add == 1);
	r->changes = xgrow(r->changes, &r->capchanges, r->nchanges + 1, sizeof *r->changes);
	r->changes[r->nchanges++] = (struct change){pid, xstrdup(tag), add, detail};
}

/* SELECT pid, (cond1), (cond2), ... over the chunk, prepared read-only. */
static sqlite3_stmt *prepare_eval(sqlite3 *db, const struct tagrules *tr)
{
	size_t len = 64;
	char **cols = xcalloc(tr->ntags + 1, sizeof *cols);
	for (size_t i = 0; i < tr->ntags; i++) {
		cols[i] = rule_budget_wrap((int)i, tr->tags[i].re.sql);
		len += strlen(cols[i]) + 2;
	}
	char *sql = xmalloc(len + 128);
	size_t n = (size_t)sprintf(sql, "SELECT pid");
	for (size_t i = 0; i < tr->ntags; i++) {
		n += (size_t)sprintf(sql + n, ", %s", cols[i]);
		free(cols[i]);
	}
	free(cols);
	sprintf(sql + n, " FROM facts WHERE pid IN (SELECT pid FROM temp.tag_chunk)");
	tagrules_sandbox(db, RULES_MARKED);
	sqlite3_stmt *st = db_prepare(db, sql);
	tagrules_sandbox(db, 0);
	free(sql);
	return st;
}

/* Within each ladder keep only the highest rung that holds. */
static void apply_ladders(const struct tagrules *tr, unsigned char *want)
{
	for (size_t l = 0; l < tr->nladders; l++) {
		int top = -1;
		for (size_t i = 0; i < tr->ntags; i++)
			if (want[i] && tr->tags[i].ladder == (int)l && tr->tags[i].rung > top)
				top = tr->tags[i].rung;
		for (size_t i = 0; i < tr->ntags; i++)
			if (tr->tags[i].ladder == (int)l && tr->tags[i].rung != top)
				want[i] = 0;
	}
}

static int rule_index(const struct tagrules *tr, const char *tag)
{
	for (size_t i = 0; i < tr->ntags; i++)
		if (strcmp(tr->tags[i].name, tag) == 0)
			return (int)i;
	return -1;
}

static void set_tag(struct run *r, int64_t pid, const char *tag, int add, const char *detail)
{
	sqlite3_stmt *st = add ? r->add : r->del;
	db_bind_int(r->db, st, 1, pid);
	db_bind_text(r->db, st, 2, tag);
	if (add)
		db_bind_int(r->db, st, 3, r->now);
	db_run(r->db, st);
	log_change(r->db, r->log, pid, tag, add, r->now, "rule", detail);
	push_change(r, pid, tag, add, detail);
	if (add)
		r->st->added++;
	else
		r->st->removed++;
}

/* Bring one person's rule tags in line with WANT. Tags owned by another
 * source (manual, segment) are never touched by rules; rule tags whose rule
 * left the file are removed. */
static void reconcile(struct run *r, int64_t pid, const unsigned char *want)
{
	const struct tagrules *tr = r->tr;
	unsigned char *has = r->want + tr->ntags; /* 0 none, 1 by rule, 2 other */
	char *vanished[64];
	int nvanished = 0;
	memset(has, 0, tr->ntags);
	db_bind_int(r->db, r->current, 1, pid);
	while (db_row(r->db, r->current)) {
		const char *tag = (const char *)sqlite3_column_text(r->current, 0);
		const char *src = (const char *)sqlite3_column_text(r->current, 1);
		int by_rule = src && strcmp(src, "rule") == 0;
		int i = rule_index(tr, tag);
		if (i >= 0)
			has[i] = by_rule ? 1 : 2;
		else if (by_rule && nvanished < 64)
			vanished[nvanished++] = xstrdup(tag);
	}
	sqlite3_reset(r->current);
	for (int k = 0; k < nvanished; k++) {
		set_tag(r, pid, vanished[k], 0, "removed from rules");
		free(vanished[k]);
	}
	for (size_t i = 0; i < tr->ntags; i++) /* leave before entering */
		if (!want[i] && has[i] == 1)
			set_tag(r, pid, tr->tags[i].name, 0, r->details[i]);
	for (size_t i = 0; i < tr->ntags; i++)
		if (want[i] && !has[i])
			set_tag(r, pid, tr->tags[i].name, 1, r->details[i]);
}

struct row { int64_t pid, next; };

/* Evaluate the chunk in temp.tag_chunk, then apply. Inside a transaction,
 * so a concurrent run sees either all of a chunk or none of it. */
static void run_chunk(struct run *r)
{
	const struct tagrules *tr = r->tr;
	size_t n = 0, cap = 256;
	struct row *rows = xmalloc(cap * sizeof *rows);
	unsigned char *bits = xmalloc(cap * (tr->ntags + 1));
	facts_reset_changes(r->facts);
	rule_budget_arm(r->budget, 1);
	while (db_row(r->db, r->eval)) {
		if (n == cap) {
			cap *= 2;
			rows = xrealloc(rows, cap * sizeof *rows);
			bits = xrealloc(bits, cap * (tr->ntags + 1));
		}
		rows[n].pid = sqlite3_column_int64(r->eval, 0);
		for (size_t i = 0; i < tr->ntags; i++)
			bits[n * (tr->ntags + 1) + i] = sqlite3_column_type(r->eval, (int)i + 1) != SQLITE_NULL &&
			                                sqlite3_column_double(r->eval, (int)i + 1) != 0.0;
		n++;
	}
	rule_budget_arm(r->budget, 0);
	sqlite3_reset(r->eval);
	for (size_t k = 0; k < n; k++) {
		unsigned char *want = bits + k * (tr->ntags + 1);
		apply_ladders(tr, want);
		reconcile(r, rows[k].pid, want);
		facts_note_future_events(r->facts, rows[k].pid);
		int64_t next = facts_next_change(r->facts, rows[k].pid);
		db_bind_int(r->db, r->check, 1, rows[k].pid);
		db_bind_opt_int(r->db, r->check, 2, next != 0, next);
		db_run(r->db, r->check);
	}
	r->st->evaluated += (long)n;
	free(rows);
	free(bits);
}

static void flush_changes(struct run *r)
{
	for (size_t k = 0; k < r->nchanges; k++) {
		struct change *c = &r->changes[k];
		if (r->out)
			tag_print_change(r->pl, r->out, c->pid, c->tag, c->add, r->now, "rule", c->detail);
		free(c->tag);
	}
	r->nchanges = 0;
	if (r->out)
		flush_or_die(r->out, "stdout");
}

/* FNV-1a over what decides rule tags: a changed file means a full run. */
static int64_t rules_hash(const struct tagrules *tr)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < tr->ntags; i++) {
		const char *parts[] = {tr->tags[i].name, "\x1f", tr->tags[i].expr, "\x1e"};
		for (size_t p = 0; p < 4; p++)
			for (const char *c = parts[p]; *c; c++)
				h = (h ^ (unsigned char)*c) * 1099511628211ULL;
	}
	for (size_t l = 0; l < tr->nladders; l++) {
		h = (h ^ 0x1d) * 1099511628211ULL; /* a new ladder starts here */
		for (size_t k = 0; k < tr->ladders[l].ntags; k++) {
			for (const char *c = tr->ladders[l].tags[k]; *c; c++)
				h = (h ^ (unsigned char)*c) * 1099511628211ULL;
			h = (h ^ 0x1f) * 1099511628211ULL;
		}
	}
	return (int64_t)(h >> 1);
}

/* How far the last run got: events and merges are append-only, so the
 * persons with new facts are those of later events (a rowid range) and the
 * survivors of later merges. */
struct marks { int64_t eid, merge; };

static int64_t scalar(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = db_prepare(db, sql);
	int64_t v = db_row(db, st) ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	return v;
}

const char tagger_changed_sql[] =
	"INSERT INTO temp.tag_cand "
	"SELECT pid FROM main.event WHERE eid > ?1 AND eid <= ?2 "
	"UNION SELECT survivor FROM main.merge_log WHERE rowid > ?3 AND rowid <= ?4 "
	"UNION SELECT pid FROM main.person WHERE check_at <= ?5";
const char tagger_temp_sql[] =
	"CREATE TEMP TABLE IF NOT EXISTS tag_cand(pid INTEGER PRIMARY KEY);"
	"CREATE TEMP TABLE IF NOT EXISTS tag_chunk(pid INTEGER PRIMARY KEY)";
const char *const tagger_chunk_sql[] = {
	"INSERT INTO temp.tag_chunk SELECT pid FROM temp.tag_cand WHERE pid > ?1 ORDER BY pid LIMIT ?2",
	"SELECT tag, source FROM main.tag WHERE pid = ?1",
	"DELETE FROM main.tag WHERE pid = ?1 AND tag = ?2",
	"UPDATE main.person SET check_at = ?2 WHERE pid = ?1",
	NULL,
};

static void select_candidates(struct run *r, int full, const struct marks *upto)
{
	db_exec(r->db, tagger_temp_sql);
	db_exec(r->db, "DELETE FROM temp.tag_cand");
	sqlite3_stmt *st;
	if (full) {
		st = db_prepare(r->db, "INSERT INTO temp.tag_cand SELECT pid FROM main.person");
	} else {
		st = db_prepare(r->db, tagger_changed_sql);
		db_bind_int(r->db, st, 1, db_meta_get(r->db, "tag.eid", 0));
		db_bind_int(r->db, st, 2, upto->eid);
		db_bind_int(r->db, st, 3, db_meta_get(r->db, "tag.merge", 0));
		db_bind_int(r->db, st, 4, upto->merge);
		db_bind_int(r->db, st, 5, r->now);
	}
	db_run(r->db, st);
	sqlite3_finalize(st);
}

static void prepare_run(struct run *r)
{
	r->budget = rule_budget_open(r->db, r->tr, r->steps);
	r->eval = prepare_eval(r->db, r->tr);
	r->chunk = db_prepare(r->db, tagger_chunk_sql[0]);
	r->current = db_prepare(r->db, tagger_chunk_sql[1]);
	r->add = db_prepare(r->db, "INSERT INTO main.tag(pid, tag, since, source) VALUES (?1, ?2, ?3, 'rule')");
	r->del = db_prepare(r->db, tagger_chunk_sql[2]);
	r->log = db_prepare(r->db, "INSERT INTO main.tag_log(pid, tag, op, at, source, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
	r->check = db_prepare(r->db, tagger_chunk_sql[3]);
	r->want = xmalloc(r->tr->ntags * 2 + 1);
	r->details = xcalloc(r->tr->ntags + 1, sizeof *r->details);
	for (size_t i = 0; i < r->tr->ntags; i++)
		r->details[i] = xasprintf("%s:%d", r->tr->file, r->tr->tags[i].line);
}

static void finish_run(struct run *r)
{
	sqlite3_stmt *all[] = {r->eval, r->chunk, r->current, r->add, r->del, r->log, r->check};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		sqlite3_finalize(all[i]);
	for (size_t i = 0; i < r->tr->ntags; i++)
		free(r->details[i]);
	free(r->details);
	free(r->want);
	free(r->changes);
	rule_budget_close(r->budget);
}

void tagger_run(sqlite3 *db, const struct tagrules *tr, struct facts *f,
                struct person_lookup *pl, int64_t now, int full, long long steps, FILE *out,
                struct tagger_stats *st)
{
	struct run r = {.db = db, .tr = tr, .facts = f, .pl = pl, .now = now, .out = out, .st = st, .steps = steps};
	memset(st, 0, sizeof *st);
	int64_t hash = rules_hash(tr);
	if (db_meta_get(db, "tag.rules_hash", 0) != hash)
		full = 1;
	st->full = full;
	struct marks upto = {scalar(db, "SELECT coalesce(max(eid), 0) FROM event"),
	                     scalar(db, "SELECT coalesce(max(rowid), 0) FROM merge_log")};
	select_candidates(&r, full, &upto);
	prepare_run(&r);
	int64_t last = 0;
	for (;;) {
		db_begin(db);
		db_exec(db, "DELETE FROM temp.tag_chunk");
		db_bind_int(db, r.chunk, 1, last);
		db_bind_int(db, r.chunk, 2, CHUNK);
		db_run(db, r.chunk);
		int got = sqlite3_changes(db);
		if (got > 0) {
			sqlite3_stmt *mx = db_prepare(db, "SELECT max(pid) FROM temp.tag_chunk");
			last = db_row(db, mx) ? sqlite3_column_int64(mx, 0) : last;
			sqlite3_finalize(mx);
			run_chunk(&r);
		}
		if (got < CHUNK) {
			if (upto.eid > db_meta_get(db, "tag.eid", 0))
				db_meta_set(db, "tag.eid", upto.eid);
			if (upto.merge > db_meta_get(db, "tag.merge", 0))
				db_meta_set(db, "tag.merge", upto.merge);
			db_meta_set(db, "tag.rules_hash", hash);
		}
		db_commit(db);
		flush_changes(&r);
		if (got < CHUNK)
			break;
	}
	finish_run(&r);
}

struct tag_batch {
	sqlite3 *db;
	struct person_lookup *pl;
	struct tag_writer *w;
	const char *source;
	int64_t now;
	FILE *out;
	struct batched {
		int64_t pid;
		char *tag, *detail;
		int add;
	} *v;
	size_t n, cap;
};

struct tag_batch *tag_batch_open(sqlite3 *db, struct person_lookup *pl, const char *source, int64_t now,
                                 FILE *out)
{
	struct tag_batch *b = xcalloc(1, sizeof *b);
	*b = (struct tag_batch){.db = db, .pl = pl, .source = source, .now = now, .out = out};
	b->w = tag_writer_open(db, source, now);
	db_begin(db);
	return b;
}

int tag_batch_apply(struct tag_batch *b, int64_t pid, const char *tag, int add, const char *detail)
{
	/* a change outside the batch's transaction would be committed
	 * before it is printed, and lost from the output by a crash */
	assert(!sqlite3_get_autocommit(b->db));
	if (!tag_writer_apply(b->w, pid, tag, add, detail))
		return 0;
	b->v = xgrow(b->v, &b->cap, b->n + 1, sizeof *b->v);
	b->v[b->n++] = (struct batched){pid, xstrdup(tag), detail ? xstrdup(detail) : NULL, add};
	return 1;
}

/* Apply to every pid SQL gives (bound to TAG) one direction of TAG. */
static void apply_all(struct tag_batch *b, const char *sql, const char *tag, int add, const char *detail)
{
	sqlite3_stmt *st = db_prepare(b->db, sql);
	db_bind_text(b->db, st, 1, tag);
	int64_t *v = NULL;
	size_t n = 0, cap = 0;
	while (db_row(b->db, st)) { /* collect first: applying changes the rows read */
		v = xgrow(v, &cap, n + 1, sizeof *v);
		v[n++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	for (size_t i = 0; i < n; i++)
		tag_batch_apply(b, v[i], tag, add, detail);
	free(v);
}

void tag_batch_sync(struct tag_batch *b, const char *members, const char *tag, const char *detail)
{
	db_exec(b->db, "CREATE TEMP TABLE IF NOT EXISTS tag_sync(pid INTEGER PRIMARY KEY)");
	db_exec(b->db, "DELETE FROM temp.tag_sync");
	char *sql = xasprintf("INSERT INTO temp.tag_sync %s", members);
	db_exec(b->db, sql);
	free(sql);
	apply_all(b, "SELECT pid FROM temp.tag_sync WHERE pid NOT IN "
	          "(SELECT pid FROM main.tag WHERE tag = ?1) ORDER BY pid", tag, 1, detail);
	apply_all(b, "SELECT pid FROM main.tag WHERE tag = ?1 AND pid NOT IN "
	          "(SELECT pid FROM temp.tag_sync) ORDER BY pid", tag, 0, detail);
}

int tag_batch_record(struct tag_batch *b, json_t *rec, int add, const char *detail, char *err, size_t errlen)
{
	json_t *t = json_object_get(rec, "tag");
	if (!json_is_string(t) || !tagrules_name_valid(json_string_value(t))) {
		snprintf(err, errlen, "field \"tag\" must be a tag name (letters, digits, _)");
		return -1;
	}
	int64_t pid = person_find(b->pl, rec, err, errlen);
	if (pid == 0)
		snprintf(err, errlen, "no such person");
	if (pid <= 0)
		return -1;
	tag_batch_apply(b, pid, json_string_value(t), add, detail);
	return 0;
}

size_t tag_batch_pending(const struct tag_batch *b) { return b->n; }

static void batch_flush(struct tag_batch *b)
{
	db_commit(b->db);
	for (size_t i = 0; i < b->n; i++) {
		tag_print_change(b->pl, b->out, b->v[i].pid, b->v[i].tag, b->v[i].add, b->now, b->source, b->v[i].detail);
		free(b->v[i].tag);
		free(b->v[i].detail);
	}
	b->n = 0;
	flush_or_die(b->out, "stdout");
}

void tag_batch_commit(struct tag_batch *b)
{
	batch_flush(b);
	db_begin(b->db);
}

void tag_batch_close(struct tag_batch *b)
{
	batch_flush(b);
	tag_writer_close(b->w);
	free(b->v);
	free(b);
}
