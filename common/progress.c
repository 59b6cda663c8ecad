#include "progress.h"
#include "err.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define SHOW_AFTER 1.0     /* seconds before anything is shown */
#define REDRAW 0.25        /* seconds between redraws */

struct progress {
	const char *what, *items;
	enum progress_unit unit;
	int64_t total;
	double start, last;
	int shown;
	sqlite3 *db;            /* watched, or NULL */
	const long *done;
};

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

struct progress *progress_start(const char *what, enum progress_unit unit, int64_t total,
                                const char *items, int quiet)
{
	if (quiet || !isatty(STDERR_FILENO))
		return NULL;
	struct progress *p = xcalloc(1, sizeof *p);
	p->what = what;
	p->items = items;
	p->unit = unit;
	p->total = total;
	p->start = p->last = mono();
	return p;
}

static void amount(char *buf, size_t len, enum progress_unit unit, int64_t v)
{
	if (unit == PROGRESS_COUNT)
		snprintf(buf, len, "%lld", (long long)v);
	else if (v >= 1 << 30)
		snprintf(buf, len, "%.1f GB", v / 1073741824.0);
	else
		snprintf(buf, len, "%.1f MB", v / 1048576.0);
}

static void draw(struct progress *p, int64_t done, int64_t items, double now)
{
	char d[32], t[32], eta[32] = "";
	double secs = now - p->start, rate = items / secs;
	amount(d, sizeof d, p->unit, done);
	if (!p->items) {
		long e = (long)secs;
		fprintf(stderr, "\r%s: %s: working, %ld:%02ld:%02ld elapsed\033[K", smr_progname, p->what,
		        e / 3600, e / 60 % 60, e % 60);
	} else if (p->total > 0 && done <= p->total) {
		amount(t, sizeof t, p->unit, p->total);
		if (done > 0) {
			long left = (long)((p->total - done) * (secs / done) + 0.5);
			snprintf(eta, sizeof eta, ", ETA %ld:%02ld:%02ld", left / 3600, left / 60 % 60, left % 60);
		}
		fprintf(stderr, "\r%s: %s: %s of %s (%.0f%%), %.0f %s/s%s\033[K", smr_progname, p->what, d, t,
		        100.0 * done / p->total, rate, p->items, eta);
	} else {
		fprintf(stderr, "\r%s: %s: %s, %.0f %s/s\033[K", smr_progname, p->what, d, rate, p->items);
	}
	fflush(stderr);
	p->shown = 1;
}

void progress_update(struct progress *p, int64_t done, int64_t items)
{
	if (!p)
		return;
	double now = mono();
	if (now - p->start < SHOW_AFTER || now - p->last < REDRAW)
		return;
	p->last = now;
	draw(p, done, items, now);
}

static int on_sqlite(void *arg)
{
	struct progress *p = arg;
	long n = p->done ? *p->done : 0;
	progress_update(p, n, n);
	return 0; /* carry on */
}

static struct progress *watching; /* the one progress_watch set */

void progress_watch(struct progress *p, sqlite3 *db, const long *done)
{
	if (!p)
		return;
	p->db = db;
	p->done = done;
	watching = p;
	sqlite3_progress_handler(db, 4096, on_sqlite, p);
}

void progress_poll(void)
{
	if (watching)
		on_sqlite(watching);
}

void progress_rewatch(sqlite3 *db)
{
	if (watching && watching->db == db)
		sqlite3_progress_handler(db, 4096, on_sqlite, watching);
}

void progress_end(struct progress *p)
{
	if (!p)
		return;
	if (p->db)
		sqlite3_progress_handler(p->db, 0, NULL, NULL);
	if (watching == p)
		watching = NULL;
	if (p->shown) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
	}
	free(p);
}
