#include "delta.h"
#include "db.h"
#include "err.h"

#include <stdlib.h>
#include <string.h>

struct sums {
	int64_t pid;               /* 0: a free slot */
	int64_t n, orders, spend, refunds, refunded;
	int64_t first_order, last_order;   /* valid when orders > 0 */
	int64_t first_seen, last_seen, rev;
};

struct delta {
	sqlite3 *db;
	sqlite3_stmt *person, *put_max_ts;
	struct sums *slot;         /* open addressing on pid */
	size_t cap, used;
	int64_t max_ts;            /* 0: no event this batch */
	int has_ts;
};

const char delta_person_sql[] =
	"UPDATE person SET events = events + ?2, orders = orders + ?3, spend = spend + ?4, "
	"refunds = refunds + ?5, refunded = refunded + ?6, "
	"first_order_at = coalesce(min(first_order_at, ?7), first_order_at, ?7), "
	"last_order_at = coalesce(max(last_order_at, ?8), last_order_at, ?8), "
	"first_seen = coalesce(min(first_seen, ?9), ?9), last_seen = coalesce(max(last_seen, ?10), ?10), "
	"rev = ?11 WHERE pid = ?1";
const char delta_max_ts_sql[] =
	"INSERT INTO meta(key, value) VALUES ('event.max_ts', ?1) "
	"ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)";

struct delta *delta_open(sqlite3 *db)
{
	struct delta *d = xcalloc(1, sizeof *d);
	d->db = db;
	d->person = db_prepare(db, delta_person_sql);
	d->put_max_ts = db_prepare(db, delta_max_ts_sql);
	return d;
}

void delta_close(struct delta *d)
{
	if (!d)
		return;
	sqlite3_finalize(d->person);
	sqlite3_finalize(d->put_max_ts);
	free(d->slot);
	free(d);
}

static size_t home(int64_t pid, size_t cap) { return (size_t)((uint64_t)pid * 0x9E3779B97F4A7C15ULL >> 17) & (cap - 1); }

static struct sums *find(struct delta *d, int64_t pid)
{
	if (!d->cap)
		return NULL;
	for (size_t h = home(pid, d->cap);; h = (h + 1) & (d->cap - 1)) {
		if (d->slot[h].pid == pid)
			return &d->slot[h];
		if (!d->slot[h].pid)
			return NULL;
	}
}

static void grow(struct delta *d)
{
	size_t ncap = d->cap ? d->cap * 2 : 4096;
	struct sums *n = xcalloc(ncap, sizeof *n);
	for (size_t i = 0; i < d->cap; i++) {
		if (!d->slot[i].pid)
			continue;
		size_t h = home(d->slot[i].pid, ncap);
		while (n[h].pid)
			h = (h + 1) & (ncap - 1);
		n[h] = d->slot[i];
	}
	free(d->slot);
	d->slot = n;
	d->cap = ncap;
}

static struct sums *get(struct delta *d, int64_t pid)
{
	struct sums *s = find(d, pid);
	if (s)
		return s;
	if ((d->used + 1) * 2 > d->cap)
		grow(d);
	size_t h = home(pid, d->cap);
	while (d->slot[h].pid)
		h = (h + 1) & (d->cap - 1);
	d->slot[h] = (struct sums){.pid = pid}; /* a freed slot keeps old sums */
	d->used++;
	return &d->slot[h];
}

static int64_t min(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max(int64_t a, int64_t b) { return a > b ? a : b; }

void delta_add(struct delta *d, int64_t pid, int64_t eid, const char *type, int64_t ts, int has_amount,
               int64_t amount)
{
	struct sums *s = get(d, pid);
	int order = strcmp(type, "order") == 0, refund = !order && strcmp(type, "refund") == 0;
	s->n++;
	if (order) {
		s->orders++;
		s->spend += has_amount ? amount : 0;
		s->first_order = s->orders > 1 && s->first_order < ts ? s->first_order : ts;
		s->last_order = s->orders > 1 && s->last_order > ts ? s->last_order : ts;
	} else if (refund) {
		s->refunds++;
		s->refunded += has_amount ? amount : 0;
	}
	s->first_seen = s->n > 1 && s->first_seen < ts ? s->first_seen : ts;
	s->last_seen = s->n > 1 && s->last_seen > ts ? s->last_seen : ts;
	s->rev = eid > s->rev ? eid : s->rev;
	if (!d->has_ts || ts > d->max_ts)
		d->max_ts = ts;
	d->has_ts = 1;
}

/* Remove slot S, re-placing the run after it (linear probing). */
static void drop(struct delta *d, struct sums *s)
{
	size_t i = (size_t)(s - d->slot);
	d->slot[i].pid = 0;
	d->used--;
	for (size_t j = (i + 1) & (d->cap - 1); d->slot[j].pid; j = (j + 1) & (d->cap - 1)) {
		struct sums moved = d->slot[j];
		d->slot[j].pid = 0;
		size_t h = home(moved.pid, d->cap);
		while (d->slot[h].pid)
			h = (h + 1) & (d->cap - 1);
		d->slot[h] = moved;
	}
}

void delta_merge(struct delta *d, int64_t to, int64_t from)
{
	struct sums *f = find(d, from);
	if (!f)
		return;
	struct sums m = *f;
	drop(d, f);
	struct sums *t = get(d, to);
	if (m.orders) {
		t->first_order = t->orders ? min(t->first_order, m.first_order) : m.first_order;
		t->last_order = t->orders ? max(t->last_order, m.last_order) : m.last_order;
	}
	t->first_seen = t->n ? min(t->first_seen, m.first_seen) : m.first_seen;
	t->last_seen = t->n ? max(t->last_seen, m.last_seen) : m.last_seen;
	t->rev = max(t->rev, m.rev);
	t->n += m.n;
	t->orders += m.orders;
	t->spend += m.spend;
	t->refunds += m.refunds;
	t->refunded += m.refunded;
}

static int by_pid(const void *a, const void *b)
{
	int64_t x = ((const struct sums *)a)->pid, y = ((const struct sums *)b)->pid;
	return (x > y) - (x < y);
}

void delta_flush(struct delta *d)
{
	size_t n = 0;
	for (size_t i = 0; i < d->cap; i++)
		if (d->slot[i].pid)
			d->slot[n++] = d->slot[i];
	if (n) /* d->slot is NULL before the first event */
		qsort(d->slot, n, sizeof *d->slot, by_pid); /* pid order: neighbouring pages */
	sqlite3_stmt *st = d->person;
	for (size_t i = 0; i < n; i++) {
		const struct sums *s = &d->slot[i];
		db_bind_int(d->db, st, 1, s->pid);
		db_bind_int(d->db, st, 2, s->n);
		db_bind_int(d->db, st, 3, s->orders);
		db_bind_int(d->db, st, 4, s->spend);
		db_bind_int(d->db, st, 5, s->refunds);
		db_bind_int(d->db, st, 6, s->refunded);
		db_bind_opt_int(d->db, st, 7, s->orders > 0, s->first_order);
		db_bind_opt_int(d->db, st, 8, s->orders > 0, s->last_order);
		db_bind_int(d->db, st, 9, s->first_seen);
		db_bind_int(d->db, st, 10, s->last_seen);
		db_bind_int(d->db, st, 11, s->rev);
		db_run(d->db, st);
	}
	if (d->has_ts) {
		db_bind_int(d->db, d->put_max_ts, 1, d->max_ts);
		db_run(d->db, d->put_max_ts);
	}
	if (d->cap)
		memset(d->slot, 0, d->cap * sizeof *d->slot);
	d->used = 0;
	d->has_ts = 0;
}
