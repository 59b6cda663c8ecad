/* smr-person: one person looked up by any identifier, with --explain TAG
 * and --why SOP to answer "why (not)?". */
#include "../common/db.h"
#include "../common/err.h"
#include "../common/facts.h"
#include "../common/lookup.h"
#include "../common/lookup_table.h"
#include "../common/ndjson.h"
#include "../common/opts.h"
#include "../common/regex.h"
#include "../common/rulebudget.h"
#include "../common/rules.h"
#include "../common/sop.h"
#include "../common/tagrules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MATCHES 20

struct args {
	struct smr_opts o;
	int table, events;
	const char *explain, *why, *id;
};

static void parse_args(struct args *a, int argc, char **argv)
{
	const char *events = NULL;
	const struct opt table[] = {
		OPT_FLAG("table", &a->table, "aligned text for a person at a terminal"),
		OPT_STRING("events", "N", &events, "recent events to show (default 20)"),
		OPT_STRING("explain", "TAG", &a->explain, "the tag's condition, each part with its value"),
		OPT_STRING("why", "SOP", &a->why, "the SOP's enrollments and each step's decision"),
		OPT_END,
	};
	int first = opts_parse(argc, argv, table, "ID", &a->o);
	a->events = events ? (int)opts_int(events) : 20;
	if (a->events < 0 || a->events > 10000)
		opts_usage_error(opts_usage(), "--events needs 0 to 10000");
	if (argc - first != 1)
		opts_usage_error(opts_usage(), "give one ID (kind:value, a bare value or pid:N)");
	a->id = argv[first];
}

static void print_record(sqlite3 *db, const struct args *a, int64_t pid)
{
	if (a->table)
		lookup_table_record(db, pid, a->events, stdout);
	else
		ndjson_put(stdout, lookup_record(db, pid, a->events), JSON_REAL_PRECISION(15));
}

static void emit(const struct args *a, json_t *o, void (*table)(json_t *, FILE *))
{
	if (a->table) {
		table(o, stdout);
		json_decref(o);
	} else {
		ndjson_put(stdout, o, JSON_REAL_PRECISION(15));
	}
}

/* Check --explain and --why against the rules before opening the database. */
static int check_names(const struct args *a, struct tagrules *tr, const struct sops *sp,
                       const struct cond **cond, const struct sop **sop)
{
	if (tr->errors || sp->errors)
		return SMR_USAGE;
	if (a->explain && !(*cond = tagrules_find(tr, a->explain))) {
		smr_warnx(NULL, 0, "--explain: no tag rule \"%s\" in the rules", a->explain);
		return SMR_USAGE;
	}
	if (a->why && !(*sop = sops_find(sp, a->why))) {
		smr_warnx(NULL, 0, "--why: no sop \"%s\" in the rules", a->why);
		return SMR_USAGE;
	}
	return SMR_OK;
}

static int run(sqlite3 *db, const struct args *a, const struct rules *r, const struct tagrules *tr,
               const struct cond *cond, const struct sop *sop)
{
	int64_t pids[MAX_MATCHES];
	char err[256];
	int n = lookup_resolve(db, r, a->id, pids, MAX_MATCHES, err, sizeof err);
	if (n < 0) {
		smr_warnx(NULL, 0, "%s: %s", a->id, err);
		return SMR_USAGE;
	}
	if (n == 0) {
		smr_warnx(NULL, 0, "%s: no such person", a->id);
		return SMR_PARTIAL;
	}
	for (int i = 0; i < n; i++) {
		if (!cond && !sop)
			print_record(db, a, pids[i]);
		if (cond) {
			struct rule_budget *rb = rule_budget_open(db, tr, RULE_STEPS_DEFAULT);
			rule_budget_arm(rb, 1);
			json_t *e = lookup_explain(db, tr, cond, pids[i]);
			rule_budget_arm(rb, 0);
			rule_budget_close(rb);
			emit(a, e, lookup_table_explain);
		}
		if (sop)
			emit(a, lookup_why(db, sop, pids[i], a->o.now), lookup_table_why);
	}
	flush_or_die(stdout, "stdout");
	return SMR_OK;
}

int main(int argc, char **argv)
{
	struct args a = {0};
	struct tagrules *tr = NULL;
	struct sops *sp = NULL;
	struct facts *f = NULL;
	sqlite3 *db = NULL;
	const struct cond *cond = NULL;
	const struct sop *sop = NULL;
	int rc = SMR_USAGE;
	smr_progname = "smr-person";
	parse_args(&a, argc, argv);
	struct rules *r = rules_load(a.o.rules, a.o.rules_required);
	if (!r)
		goto out;
	opts_resolve_now(&a.o);
	tr = tagrules_parse(r);
	sp = sops_parse(r);
	if ((rc = check_names(&a, tr, sp, &cond, &sop)) != SMR_OK)
		goto out;
	db = db_open(a.o.db);
	f = facts_open(db, a.o.now);
	if (tagrules_compile(tr, db) != 0) {
		rc = SMR_USAGE;
		goto out;
	}
	db_exec(db, "BEGIN"); /* one snapshot */
	rc = run(db, &a, r, tr, cond, sop);
	db_exec(db, "COMMIT");
out:
	facts_close(f);
	db_close(db);
	sops_free(sp);
	tagrules_free(tr);
	rules_free(r);
	regex_cache_free();
	return rc;
}
