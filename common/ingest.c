#include "ingest.h"
#include "db.h"
#include "delta.h"
#include "err.h"
#include "identity.h"
#include "mapping.h"
#include "source.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ingest {
	sqlite3 *db;
	const struct rules *rules;
	struct identity *ir;
	struct delta *delta;        /* this batch's facts, added at commit */
	int64_t now;
	int batch, in_batch;
	int64_t batch_start;        /* max eid before this batch */
	long inserted, duplicates;
	sqlite3_stmt *seen, *insert, *attrs, *max_eid;
};

const char ingest_seen_sql[] = "SELECT 1 FROM event WHERE id = ?1";
/* each attribute only if this event (ts ?3) is not older than the one
 * that set it last */
const char ingest_attrs_sql[] =
	"UPDATE person SET "
	"attrs = json_patch(attrs, (SELECT json_group_object(j.key, ?2 -> j.key) FROM json_each(?2) AS j "
	"  WHERE ?3 >= coalesce(person.attrs_at ->> j.key, -1))), "
	"attrs_at = json_patch(coalesce(attrs_at, '{}'), (SELECT json_group_object(j.key, ?3) FROM json_each(?2) AS j "
	"  WHERE ?3 >= coalesce(person.attrs_at ->> j.key, -1))) "
	"WHERE pid = ?1";

static void on_merge(void *delta, int64_t to, int64_t from) { delta_merge(delta, to, from); }

struct ingest *ingest_open(sqlite3 *db, const struct rules *r, int64_t now, int batch)
{
	struct ingest *in = xcalloc(1, sizeof *in);
	in->db = db;
	in->rules = r;
	in->now = now;
	in->batch = batch > 0 ? batch : INGEST_BATCH;
	in->ir = identity_open(db, r);
	in->delta = delta_open(db);
	identity_on_merge(in->ir, on_merge, in->delta);
	in->seen = db_prepare(db, ingest_seen_sql);
	in->insert = db_prepare(db,
		"INSERT INTO event(id, pid, type, ts, item, amount, channel, text, expires, group_id, staff, props, ingested_at) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)");
	/* each attribute only if this event (ts ?3) is not older than the one
	 * that set it last */
	in->attrs = db_prepare(db, ingest_attrs_sql);
	in->max_eid = db_prepare(db, "SELECT coalesce(max(eid), 0) FROM event");
	return in;
}

static void begin_batch(struct ingest *in)
{
	db_begin(in->db);
	in->batch_start = db_row(in->db, in->max_eid) ? sqlite3_column_int64(in->max_eid, 0) : 0;
	sqlite3_reset(in->max_eid);
	in->in_batch = 0;
}

void ingest_commit(struct ingest *in)
{
	if (sqlite3_get_autocommit(in->db))
		return; /* no batch in flight */
	delta_flush(in->delta);
	db_commit(in->db);
	in->in_batch = 0;
}

static int seen_before(struct ingest *in, const char *id)
{
	db_bind_static(in->db, in->seen, 1, id);
	int seen = db_row(in->db, in->seen);
	sqlite3_reset(in->seen);
	return seen;
}

/* Profile attributes (and the owning staff member from profile and
 * friend_add) are merged into person.attrs, each unless a later profile
 * event (by ts) already set it. */
static void update_attrs(struct ingest *in, const struct event *ev, int64_t pid)
{
	int profile = strcmp(ev->type, "profile") == 0;
	int owner = ev->staff && (profile || strcmp(ev->type, "friend_add") == 0);
	if (!(profile && ev->props) && !owner)
		return;
	json_t *patch = profile && ev->props ? json_deep_copy(ev->props) : json_object();
	if (!patch)
		smr_die(SMR_FATAL, "out of memory");
	if (owner)
		json_object_set_new(patch, "staff", json_string(ev->staff));
	char *text = json_dumps(patch, JSON_COMPACT);
	json_decref(patch);
	if (!text)
		smr_die(SMR_FATAL, "out of memory");
	db_bind_int(in->db, in->attrs, 1, pid);
	db_bind_text(in->db, in->attrs, 2, text);
	db_bind_int(in->db, in->attrs, 3, ev->ts);
	db_run(in->db, in->attrs);
	free(text);
}

static void insert_event(struct ingest *in, const struct event *ev, int64_t pid)
{
	sqlite3_stmt *st = in->insert;
	char *props = ev->props ? json_dumps(ev->props, JSON_COMPACT) : NULL;
	db_bind_static(in->db, st, 1, ev->id);
	db_bind_int(in->db, st, 2, pid);
	db_bind_static(in->db, st, 3, ev->type);
	db_bind_int(in->db, st, 4, ev->ts);
	db_bind_static(in->db, st, 5, ev->item);
	db_bind_opt_int(in->db, st, 6, ev->has_amount, ev->amount);
	db_bind_static(in->db, st, 7, ev->channel);
	db_bind_static(in->db, st, 8, ev->text);
	db_bind_opt_int(in->db, st, 9, ev->has_expires, ev->expires);
	db_bind_static(in->db, st, 10, ev->group_id);
	db_bind_static(in->db, st, 11, ev->staff);
	db_bind_static(in->db, st, 12, props);
	db_bind_int(in->db, st, 13, in->now);
	db_run(in->db, st);
	free(props);
	delta_add(in->delta, pid, sqlite3_last_insert_rowid(in->db), ev->type, ev->ts, ev->has_amount, ev->amount);
}

int ingest_event(struct ingest *in, const struct event *ev)
{
	if (sqlite3_get_autocommit(in->db))
		begin_batch(in);
	/* the delta's sums are written at the commit of the batch: an event
	 * stored outside it would never reach its person's facts */
	assert(!sqlite3_get_autocommit(in->db));
	int inserted = 0;
	if (seen_before(in, ev->id)) {
		in->duplicates++;
	} else {
		int64_t pid = identity_resolve(in->ir, ev, in->batch_start, in->now);
		insert_event(in, ev, pid);
		update_attrs(in, ev, pid);
		in->inserted++;
		inserted = 1;
	}
	if (++in->in_batch >= in->batch)
		ingest_commit(in);
	return inserted;
}

static int has_column(const void *src, const char *name)
{
	return source_has_column(src, name);
}

/* A row of an export through a source mapping. */
static int ingest_mapped(struct ingest *in, const struct source *src, json_t *row, const struct mapping *m,
                         const char *mname, char *why, size_t whylen)
{
	struct mapping_events me;
	const char *missing = mapping_missing_column(m, has_column, src);
	if (missing) {
		snprintf(why, whylen, "no column \"%s\" in the header (source %s)", missing, mname);
		return -1;
	}
	if (mapping_events(m, row, in->rules, &me, why, whylen) != 0)
		return -1;
	for (int i = 0; i < me.n; i++)
		ingest_event(in, &me.evs[i]);
	mapping_events_clear(&me);
	return 0;
}

int ingest_record(struct ingest *in, const struct source *src, const struct record *rec,
                  const struct mapping *m, const char *mname, char *why, size_t whylen)
{
	struct event ev;
	if (!rec->obj) {
		snprintf(why, whylen, "%s", rec->err);
		return -1;
	}
	if (m)
		return ingest_mapped(in, src, rec->obj, m, mname, why, whylen);
	if (event_from_json(rec->obj, in->rules, &ev, why, whylen) != 0)
		return -1;
	ingest_event(in, &ev);
	event_clear(&ev);
	return 0;
}

void ingest_close(struct ingest *in, struct ingest_stats *stats)
{
	ingest_commit(in);
	const struct identity_stats *is = identity_stats(in->ir);
	stats->inserted = in->inserted;
	stats->duplicates = in->duplicates;
	stats->new_persons = is->new_persons;
	stats->merges = is->merges;
	stats->conflicts = is->conflicts;
	identity_close(in->ir);
	sqlite3_finalize(in->seen);
	sqlite3_finalize(in->insert);
	sqlite3_finalize(in->attrs);
	sqlite3_finalize(in->max_eid);
	delta_close(in->delta);
	free(in);
}
