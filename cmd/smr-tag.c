/* smr-tag: keep rule tags current; manual and batch tags; check rules. */
#include "../common/db.h"
#include "../common/err.h"
#include "../common/facts.h"
#include "../common/mapping.h"
#include "../common/opts.h"
#include "../common/person.h"
#include "../common/policy.h"
#include "../common/progress.h"
#include "../common/regex.h"
#include "../common/rulebudget.h"
#include "../common/rules.h"
#include "../common/sop.h"
#include "../common/source.h"
#include "../common/tagger.h"
#include "../common/tagrules.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct args {
	struct smr_opts o;
	int full, check, set, unset, stats, quiet;
	long long steps;
};

static void parse_args(struct args *a, int argc, char **argv)
{
	const char *steps = NULL;
	const struct opt table[] = {
		OPT_FLAG("full", &a->full, "evaluate every person, not only those whose facts changed"),
		OPT_FLAG("check", &a->check, "check the rules file and exit"),
		OPT_FLAG("set", &a->set, "add the tags named by the records on stdin"),
		OPT_FLAG("unset", &a->unset, "remove the tags named by the records on stdin"),
		OPT_FLAG("stats", &a->stats, "print counts on standard error"),
		OPT_STRING("rule-steps", "N", &steps, "SQLite steps a rule may take per person"),
		OPT_FLAG("quiet", &a->quiet, "no progress on standard error"),
		OPT_END,
	};
	opts_parse(argc, argv, table, NULL, &a->o);
	if (steps)
		a->steps = rule_steps_option(steps, opts_usage());
	if (a->set + a->unset + a->check > 1)
		opts_usage_error(opts_usage(), "--set, --unset and --check exclude each other");
}

static long count_persons(sqlite3 *db)
{
	sqlite3_stmt *st = db_prepare(db, "SELECT count(*) FROM person");
	long n = db_row(db, st) ? (long)sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	return n;
}

/* --set / --unset: one record per line on stdin naming a person and a tag. */
static int manual_tags(sqlite3 *db, const struct rules *r, int add, int64_t now)
{
	enum { BATCH = 1000 };
	char err[256];
	struct source *src = source_open("-", FORMAT_NDJSON, NULL, err, sizeof err);
	if (!src)
		smr_die(SMR_FATAL, "<stdin>: %s", err);
	struct person_lookup *pl = person_lookup_open(db, r);
	struct tag_batch *b = tag_batch_open(db, pl, "manual", now, stdout);
	struct record rec;
	long rejected = 0;
	int rc;
	while ((rc = source_next(src, &rec)) == 1) {
		char *detail = xasprintf("%s:%ld", source_name(src), rec.line);
		if (!rec.obj || tag_batch_record(b, rec.obj, add, detail, err, sizeof err) != 0) {
			smr_warnx(source_name(src), rec.line, "%s", rec.obj ? err : rec.err);
			rejected++;
		} else if (tag_batch_pending(b) == BATCH) {
			tag_batch_commit(b);
		}
		free(detail);
		record_clear(&rec);
	}
	if (rc < 0)
		smr_die(SMR_FATAL, "<stdin>: %s", rec.err);
	tag_batch_close(b);
	person_lookup_close(pl);
	source_close(src);
	return rejected ? SMR_PARTIAL : SMR_OK;
}

/* Every statement of the rules file, checked; the conditions compiled
 * against an empty database. Returns the number of errors (reported). */
static int check_rules(const struct rules *r, struct tagrules *tr, int64_t now)
{
	int errors = tagrules_check(tr, now);
	struct sops *sops = sops_parse(r); /* one file, checked whole */
	errors += sops->errors;
	struct policy *pol = policy_parse(r);
	errors += pol->errors;
	mapping_parse(r, NULL, &errors);
	policy_free(pol);
	sops_free(sops);
	return errors;
}

/* Evaluate the tag rules (everyone with --full, else who changed). */
static int rule_tags(sqlite3 *db, const struct args *a, const struct rules *r, const struct tagrules *tr,
                     struct facts *f)
{
	struct person_lookup *pl = person_lookup_open(db, r);
	struct tagger_stats st = {0};
	struct progress *pg = progress_start(a->full ? "full evaluation" : "evaluation", PROGRESS_COUNT,
	                                     a->full ? count_persons(db) : 0, "persons",
	                                     a->quiet || isatty(STDOUT_FILENO)); /* else the records show it */
	progress_watch(pg, db, &st.evaluated);
	tagger_run(db, tr, f, pl, a->o.now, a->full, a->steps, stdout, &st);
	progress_end(pg);
	if (a->stats)
		fprintf(stderr, "smr-tag: evaluated %ld persons (%s), %ld tags added, %ld removed\n",
		        st.evaluated, st.full ? "full" : "incremental", st.added, st.removed);
	person_lookup_close(pl);
	return SMR_OK;
}

int main(int argc, char **argv)
{
	struct args a = {.steps = RULE_STEPS_DEFAULT};
	struct tagrules *tr = NULL;
	struct facts *f = NULL;
	sqlite3 *db = NULL;
	int load_errors, rc = SMR_USAGE;
	smr_progname = "smr-tag";
	parse_args(&a, argc, argv);
	struct rules *r = rules_load_all(a.o.rules, 1, &load_errors);
	if (!r)
		goto out;
	tr = tagrules_parse(r);
	opts_resolve_now(&a.o);
	/* Check against an empty database first: a bad rule stops the run
	 * before the real database is opened (or created). */
	int errors = check_rules(r, tr, a.o.now) + load_errors;
	if (errors || a.check) {
		rc = errors ? SMR_USAGE : SMR_OK;
		goto out;
	}
	db = db_open(a.o.db);
	f = facts_open(db, a.o.now);
	if (a.set || a.unset)
		rc = manual_tags(db, r, a.set, a.o.now);
	else
		rc = rule_tags(db, &a, r, tr, f);
out:
	facts_close(f);
	db_close(db);
	tagrules_free(tr);
	rules_free(r);
	regex_cache_free();
	return rc;
}
