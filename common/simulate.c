#include "simulate.h"
#include "db.h"
#include "err.h"
#include "facts.h"
#include "ndjson.h"
#include "person.h"
#include "progress.h"
#include "sopdue.h"
#include "tagger.h"
#include "tstamp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The tightest "cap any N/day" of the policy, or 0. */
static int daily_cap(const struct policy *pol)
{
	int cap = 0;
	for (size_t i = 0; i < pol->ncaps; i++)
		if (strcmp(pol->caps[i].channel, "any") == 0 && pol->caps[i].period == 86400 &&
		    (cap == 0 || pol->caps[i].n < cap))
			cap = pol->caps[i].n;
	return cap;
}

static int cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;
	return (x > y) - (x < y);
}

/* The touches queued in (FROM, TO], per person, as one day's record. */
static json_t *day_record(sqlite3 *db, int64_t from, int64_t to, int64_t start, int cap)
{
	sqlite3_stmt *per = db_prepare(db,
		"SELECT count(*) FROM touch WHERE state = 'queued' AND created_at > ?1 AND created_at <= ?2 "
		"GROUP BY pid ORDER BY 1");
	sqlite3_stmt *fresh = db_prepare(db,
		"SELECT e.sop, count(*) FROM touch t JOIN enrollment e ON e.id = t.enrollment "
		"WHERE t.state = 'queued' AND t.created_at > ?1 AND t.created_at <= ?2 AND e.started_at > ?3 "
		"GROUP BY e.sop ORDER BY e.sop");
	long *counts = NULL, total = 0, over = 0;
	size_t n = 0, capn = 0;
	db_bind_int(db, per, 1, from);
	db_bind_int(db, per, 2, to);
	while (db_row(db, per)) {
		counts = xgrow(counts, &capn, n + 1, sizeof *counts);
		counts[n] = sqlite3_column_int(per, 0);
		total += counts[n];
		over += cap > 0 && counts[n] > cap;
		n++;
	}
	if (n)
		qsort(counts, n, sizeof *counts, cmp_long);
	json_t *news = json_object();
	db_bind_int(db, fresh, 1, from);
	db_bind_int(db, fresh, 2, to);
	db_bind_int(db, fresh, 3, start);
	while (db_row(db, fresh))
		json_object_set_new(news, (const char *)sqlite3_column_text(fresh, 0),
		                    json_integer(sqlite3_column_int64(fresh, 1)));
	char day[32];
	tstamp_format(to - 1, day, sizeof day);
	day[10] = '\0';
	json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:f, s:i, s:I, s:o}", "day", day,
	                      "touches", (json_int_t)total, "persons", (json_int_t)n,
	                      "max", (json_int_t)(n ? counts[n - 1] : 0),
	                      "p99", (json_int_t)(n ? counts[(size_t)ceil(0.99 * (double)n) - 1] : 0),
	                      "mean", n ? round((double)total / (double)n * 100) / 100 : 0.0, "cap", cap,
	                      "over_cap", (json_int_t)over, "new_tags", news);
	if (!o)
		smr_die(SMR_FATAL, "out of memory");
	free(counts);
	sqlite3_finalize(per);
	sqlite3_finalize(fresh);
	return o;
}

void simulate_run(const struct simulation *sim, FILE *out)
{
	sqlite3 *db = sim->db;
	int cap = daily_cap(sim->pol);
	struct sopdue_stats st = {0};
	int64_t *ids = NULL;
	size_t nids = 0;
	FILE *devnull = fopen("/dev/null", "w");
	if (!devnull)
		smr_die_errno(SMR_FATAL, "/dev/null");
	struct facts *f = sim->tags ? facts_open(db, sim->now) : NULL;
	struct person_lookup *pl = sim->tags ? person_lookup_open(db, sim->rules) : NULL;
	db_exec(db, "SAVEPOINT simulate");
	struct tm start;
	tstamp_utc_to_local(sim->now, &start);
	int64_t prev = sim->now;
	int days = (int)(sim->duration / 86400);
	long done = 0;
	struct progress *pg = progress_start("simulate", PROGRESS_COUNT, days, "days", sim->quiet);
	progress_watch(pg, db, &done);
	for (int k = 1; k <= days; k++, done++) {
		/* a local day later: 23 or 25 hours across a DST change */
		int64_t end = tstamp_local_to_utc(start.tm_year + 1900, start.tm_mon + 1, start.tm_mday + k,
		                           start.tm_hour, start.tm_min, start.tm_sec);
		for (int64_t t = prev + 3600; t - 3600 < end; t += 3600) {
			int64_t at = t < end ? t : end;
			if (sim->tags) {
				struct tagger_stats ts;
				facts_set_now(f, at);
				tagger_run(db, sim->tags, f, pl, at, 0, sim->rule_steps, devnull, &ts);
			}
			sopdue_run(db, sim->sops, at, sim->late, &ids, &nids, &st);
		}
		ndjson_put(out, day_record(db, prev, end, sim->now, cap), JSON_REAL_PRECISION(10));
		prev = end;
	}
	progress_end(pg);
	db_exec(db, "ROLLBACK TO simulate");
	db_exec(db, "RELEASE simulate");
	free(ids);
	person_lookup_close(pl);
	if (f)
		facts_close(f);
	fclose(devnull);
}
