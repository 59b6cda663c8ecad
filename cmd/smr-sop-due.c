/* smr-sop-due: enrol, exit and queue SOP steps; forecast with --simulate. */
#include "../common/db.h"
#include "../common/err.h"
#include "../common/opts.h"
#include "../common/person.h"
#include "../common/policy.h"
#include "../common/rulebudget.h"
#include "../common/rules.h"
#include "../common/simulate.h"
#include "../common/sop.h"
#include "../common/sopdue.h"
#include "../common/tstamp.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct args {
	struct smr_opts o;
	int64_t late, simulate;
	int stats, quiet;
};

static void parse_args(struct args *a, int argc, char **argv)
{
	const char *late = NULL, *simulate = NULL;
	const struct opt table[] = {
		OPT_STRING("late", "DUR", &late, "a step later than this past due is missed (default 2h)"),
		OPT_STRING("simulate", "DUR", &simulate, "forecast touches per person per day; write nothing"),
		OPT_FLAG("stats", &a->stats, "print counts on standard error"),
		OPT_FLAG("quiet", &a->quiet, "no progress on standard error"),
		OPT_END,
	};
	opts_parse(argc, argv, table, NULL, &a->o);
	a->late = 2 * 3600;
	if (late && tstamp_duration(late, &a->late) != 0)
		opts_usage_error(opts_usage(), "--late needs a duration such as 2h");
	if (simulate && (tstamp_duration(simulate, &a->simulate) != 0 || a->simulate < 86400 ||
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

/* Enrol, exit and queue in one transaction; print the queued touches
 * once it has committed. */
static void queue_due(sqlite3 *db, const struct args *a, const struct rules *r, const struct sops *s)
{
	struct sopdue_stats st = {0};
	int64_t *ids = NULL;
	size_t nids = 0;
	db_begin(db);
	sopdue_run(db, s, a->o.now, a->late, &ids, &nids, &st);
	db_commit(db);
	struct person_lookup *pl = person_lookup_open(db, r);
	sopdue_print(db, pl, ids, nids, stdout);
	person_lookup_close(pl);
	free(ids);
	if (a->stats)
		fprintf(stderr, "smr-sop-due: enrolled %ld, exited %ld, completed %ld; touches queued %ld, "
		                "missed %ld, skipped %ld, held out %ld\n",
		        st.enrolled, st.exited, st.completed, st.queued, st.missed, st.skipped, st.held_out);
}

int main(int argc, char **argv)
{
	struct args a = {0};
	struct sops *s = NULL;
	struct policy *pol = NULL;
	struct tagrules *tr = NULL;
	sqlite3 *db = NULL;
	int rc = SMR_USAGE;
	smr_progname = "smr-sop-due";
	parse_args(&a, argc, argv);
	struct rules *r = rules_load(a.o.rules, 1);
	if (!r)
		goto out;
	s = sops_parse(r);
	pol = policy_parse(r); /* --simulate reports its daily cap */
	/* --simulate re-evaluates time-driven tags as its clock walks */
	tr = a.simulate ? tagrules_parse(r) : NULL;
	if (s->errors || pol->errors || (tr && tr->errors))
		goto out;
	opts_resolve_now(&a.o);
	drain_stdin();
	/* a closed stdout is an I/O error (exit 3) after the commit, not a
	 * silent death: the touches stay queued for smr-send --queued */
	signal(SIGPIPE, SIG_IGN);
	db = db_open(a.o.db);
	if (a.simulate) {
		struct simulation sim = {.db = db, .rules = r, .tags = tr, .sops = s, .pol = pol, .now = a.o.now,
		                         .duration = a.simulate, .late = a.late, .rule_steps = RULE_STEPS_DEFAULT,
		                         .quiet = a.quiet || isatty(STDOUT_FILENO)};
		db_begin(db);
		simulate_run(&sim, stdout);
		db_rollback(db);
	} else {
		queue_due(db, &a, r, s);
	}
	rc = SMR_OK;
out:
	db_close(db);
	tagrules_free(tr);
	policy_free(pol);
	sops_free(s);
	rules_free(r);
	return rc;
}
