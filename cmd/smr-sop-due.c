/* smr-sop-due: enrol, exit and queue SOP steps; forecast with --simulate. */
#include "../common/db.h"
#include "../common/err.h"
#include "../common/opts.h"
#include "../common/person.h"
#include "../common/policy.h"
#include "../common/rules.h"
#include "../common/sop.h"
#include "../common/sopdue.h"
#include "../common/tstamp.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct args {
	struct smr_opts o;
	int64_t late, simulate;
	int stats;
};

static void parse_args(struct args *a, int argc, char **argv)
{
	const char *late = NULL, *simulate = NULL;
	const struct opt table[] = {
		OPT_STRING("late", "DUR", &late, "a step later than this past due is missed (default 2h)"),
		OPT_STRING("simulate", "DUR", &simulate, "forecast touches per person per day; write nothing"),
		OPT_FLAG("stats", &a->stats, "print counts on standard error"),
		OPT_END,
	};
	opts_parse(argc, argv, table, NULL, &a->o);
	a->late = 2 * 3600;
	if (late && duration_parse(late, &a->late) != 0)
		opts_usage_error(opts_usage(), "--late needs a duration such as 2h");
	if (simulate && (duration_parse(simulate, &a->simulate) != 0 || a->simulate < 86400 ||
	                 a->simulate > 366 * 86400))
		opts_usage_error(opts_usage(), "--simulate needs a duration from 1d to 366d, such as 14d");
}

/* Tag changes piped in from smr-tag are already in the database: read
 * them so the writer does not block or see EPIPE, and decide from the
 * database alone, as a cron run would. */
static void drain_stdin(void)
{
	struct stat sb;
	if (fstat(STDIN_FILENO, &sb) != 0 || !(S_ISFIFO(sb.st_mode) || S_ISREG(sb.st_mode)))
		return;
	char buf[65536];
	while (fread(buf, 1, sizeof buf, stdin) > 0)
		;
}

/* The most touches per person per day the policy allows (its tightest
 * "cap any N/day"), or 0 if none is set. */
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

/* --simulate: walk the clock a day at a time with the current tags and
 * SOPs, inside a savepoint that is rolled back: nothing is written. */
static void simulate(sqlite3 *db, const struct sops *s, const struct policy *pol, int64_t now, int64_t dur)
{
	int cap = daily_cap(pol);
	struct sopdue_stats st = {0};
	int64_t *ids = NULL;
	size_t nids = 0;
	sqlite3_stmt *per = db_prepare(db,
		"SELECT count(*) FROM touch WHERE state = 'queued' AND created_at = ?1 GROUP BY pid ORDER BY 1");
	db_exec(db, "SAVEPOINT simulate");
	struct tm start;
	utc_to_local(now, &start);
	int days = (int)(dur / 86400);
	for (int k = 1; k <= days; k++) {
		/* a local day later: 23 or 25 hours across a DST change */
		int64_t t = local_to_utc(start.tm_year + 1900, start.tm_mon + 1, start.tm_mday + k,
		                         start.tm_hour, start.tm_min, start.tm_sec);
		sopdue_run(db, s, t, INT64_MAX / 4, &ids, &nids, &st);
		long *counts = NULL, n = 0, total = 0, over = 0;
		size_t capn = 0;
		db_bind_int(db, per, 1, t);
		while (db_row(db, per)) {
			if ((size_t)n == capn)
				counts = xrealloc(counts, (capn = capn ? capn * 2 : 256) * sizeof *counts);
			counts[n] = sqlite3_column_int(per, 0);
			total += counts[n];
			over += cap > 0 && counts[n] > cap;
			n++;
		}
		sqlite3_reset(per);
		if (n)
			qsort(counts, (size_t)n, sizeof *counts, cmp_long);
		char day[32];
		time_format(t - 1, day, sizeof day);
		day[10] = '\0';
		printf("{\"day\":\"%s\",\"touches\":%ld,\"persons\":%ld,\"max\":%ld,\"p99\":%ld,\"mean\":%.2f,"
		       "\"cap\":%d,\"over_cap\":%ld}\n",
		       day, total, n, n ? counts[n - 1] : 0, n ? counts[(size_t)ceil(0.99 * (double)n) - 1] : 0,
		       n ? (double)total / (double)n : 0.0, cap, over);
		free(counts);
	}
	db_exec(db, "ROLLBACK TO simulate");
	db_exec(db, "RELEASE simulate");
	sqlite3_finalize(per);
	free(ids);
}

int main(int argc, char **argv)
{
	struct args a = {0};
	smr_progname = "smr-sop-due";
	parse_args(&a, argc, argv);
	struct rules *r = rules_load(a.o.rules, 1);
	if (!r)
		return SMR_USAGE;
	struct sops *s = sops_parse(r);
	struct policy *pol = policy_parse(r); /* --simulate reports its daily cap */
	if (s->errors || pol->errors) {
		policy_free(pol);
		sops_free(s);
		rules_free(r);
		return SMR_USAGE;
	}
	opts_resolve_now(&a.o);
	drain_stdin();
	/* a closed stdout is an I/O error (exit 3) after the commit, not a
	 * silent death: the touches stay queued for smr-send --queued */
	signal(SIGPIPE, SIG_IGN);
	sqlite3 *db = db_open(a.o.db);
	struct sopdue_stats st = {0};
	db_begin(db);
	if (a.simulate) {
		simulate(db, s, pol, a.o.now, a.simulate);
		db_rollback(db);
	} else {
		int64_t *ids = NULL;
		size_t nids = 0;
		sopdue_run(db, s, a.o.now, a.late, &ids, &nids, &st);
		db_commit(db);
		struct person_lookup *pl = person_lookup_open(db, r);
		sopdue_print(db, pl, ids, nids, stdout);
		person_lookup_close(pl);
		free(ids);
		if (a.stats)
			fprintf(stderr, "smr-sop-due: enrolled %ld, exited %ld, completed %ld; touches queued %ld, "
			                "missed %ld, skipped %ld, held out %ld\n",
			        st.enrolled, st.exited, st.completed, st.queued, st.missed, st.skipped, st.held_out);
	}
	db_close(db);
	policy_free(pol);
	sops_free(s);
	rules_free(r);
	return SMR_OK;
}
