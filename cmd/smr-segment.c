/* smr-segment: who is in a layer right now, and how many. */
#include "../common/db.h"
#include "../common/err.h"
#include "../common/facts.h"
#include "../common/layers.h"
#include "../common/members.h"
#include "../common/opts.h"
#include "../common/person.h"
#include "../common/progress.h"
#include "../common/regex.h"
#include "../common/rfm.h"
#include "../common/rulebudget.h"
#include "../common/rules.h"
#include "../common/segment.h"
#include "../common/segquery.h"
#include "../common/tagger.h"
#include "../common/tagrules.h"
#include "../common/xlsx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct args {
	struct smr_opts o;
	int count, csv, bom, rfm, stages, tiers;
	const char *fields, *as_tag;
	long long steps;
	const char *xlsx;       /* --xlsx FILE */
	int quiet;              /* no progress */
	char *expr;             /* the remaining arguments joined by spaces */
	enum segquery_layer layer;
};

static char *join_args(int argc, char **argv)
{
	char *s = xstrdup(argv[0]);
	for (int i = 1; i < argc; i++) {
		char *n = xasprintf("%s %s", s, argv[i]);
		free(s);
		s = n;
	}
	return s;
}

static void check_args(struct args *a)
{
	int layers = a->rfm + a->stages + a->tiers;
	if (layers + (a->expr != NULL) != 1)
		opts_usage_error(opts_usage(), "give one of EXPR, --rfm, --stages and --tiers");
	if (a->bom && !a->csv)
		opts_usage_error(opts_usage(), "--bom goes with --csv");
	if (a->as_tag && layers)
		opts_usage_error(opts_usage(), "--as-tag takes an EXPR (e.g. rfm:at_risk), not --rfm, --stages or --tiers");
	if (a->as_tag && (a->count || a->csv || a->fields))
		opts_usage_error(opts_usage(), "--as-tag prints tag changes: no --count, --csv or --fields");
	if (a->xlsx && (a->csv || a->count || a->as_tag))
		opts_usage_error(opts_usage(), "--xlsx writes members: no --csv, --count or --as-tag");
	if (a->as_tag && !tagrules_name_valid(a->as_tag))
		opts_usage_error(opts_usage(), "--as-tag: \"%s\" is not a tag name (letters, digits, _)", a->as_tag);
	a->layer = a->rfm ? SEGQUERY_RFM : a->stages ? SEGQUERY_STAGES : a->tiers ? SEGQUERY_TIERS : SEGQUERY_EXPR;
}

static void parse_args(struct args *a, int argc, char **argv)
{
	const char *steps = NULL;
	const struct opt table[] = {
		OPT_FLAG("count", &a->count, "print the number of members only"),
		OPT_FLAG("csv", &a->csv, "print members as CSV, not NDJSON"),
		OPT_FLAG("bom", &a->bom, "begin the CSV with a UTF-8 byte order mark (for Excel)"),
		OPT_STRING("xlsx", "FILE", &a->xlsx, "write members to FILE as an Excel workbook"),
		OPT_STRING("fields", "LIST", &a->fields, "the columns to print, comma-separated"),
		OPT_STRING("as-tag", "NAME", &a->as_tag, "make the members hold tag NAME, and only them"),
		OPT_FLAG("rfm", &a->rfm, "score everyone 1-5 on recency, frequency, money"),
		OPT_FLAG("stages", &a->stages, "everyone's lifecycle stage"),
		OPT_FLAG("tiers", &a->tiers, "everyone's value tier"),
		OPT_STRING("rule-steps", "N", &steps, "SQLite steps a segment may take per person"),
		OPT_FLAG("quiet", &a->quiet, "no progress on standard error"),
		OPT_END,
	};
	int first = opts_parse(argc, argv, table, "[EXPR]", &a->o);
	if (steps)
		a->steps = rule_steps_option(steps, opts_usage());
	if (first < argc)
		a->expr = join_args(argc - first, argv + first);
	check_args(a);
}

/* --fields as SQL; a name that is no field is a usage error. */
static char *fields_or_die(const struct args *a, const struct layers *ly)
{
	char err[256];
	char *sql = segquery_fields(a->fields, a->layer, ly, err, sizeof err);
	if (!sql)
		smr_die(SMR_USAGE, "--fields: %s", err);
	return sql;
}

static void print_members(sqlite3 *db, const struct args *a, const struct rules *r, const struct layers *ly,
                          const char *base, const struct members_fmt *fmt)
{
	char *fields = fields_or_die(a, ly);
	char *sql = segquery_members(base, fields);
	sqlite3_stmt *st = segquery_prepare(db, sql);
	struct person_lookup *pl = person_lookup_open(db, r);
	char err[512];
	if (a->xlsx && xlsx_members(db, st, pl, r, a->xlsx, err, sizeof err) < 0)
		smr_die(SMR_FATAL, "%s", err);
	if (!a->xlsx)
		members_print(db, st, pl, r, fmt);
	person_lookup_close(pl);
	sqlite3_finalize(st);
	free(sql);
	free(fields);
}

/* Counts per name of the layer, in the layer's order, zeros included. */
static void print_counts(sqlite3 *db, const struct args *a, const struct layers *ly, const char *base,
                         const struct members_fmt *fmt)
{
	const char **names;
	long *counts;
	size_t n = segquery_count(db, a->layer, ly, base, &names, &counts);
	members_print_counts(fmt, segquery_key(a->layer), names, counts, n);
	free(counts);
	free(names);
}

/* --as-tag: members not holding TAG enter it, holders no longer members
 * leave it, in one transaction; the changes print once committed. */
static void as_tag(sqlite3 *db, const struct args *a, const struct rules *r, const char *base)
{
	struct person_lookup *pl = person_lookup_open(db, r);
	struct tag_batch *b = tag_batch_open(db, pl, "segment", a->o.now, stdout);
	tag_batch_sync(b, base, a->as_tag, a->expr);
	tag_batch_close(b);
	person_lookup_close(pl);
}

/* A tag no rule gives and no one holds is most likely a typo. */
static void warn_unknown_tags(sqlite3 *db, const struct tagrules *tr, const struct segment_expr *se)
{
	const struct segment_ref **unknown = xcalloc(se->ntags, sizeof *unknown);
	size_t n = segment_unknown_tags(db, tr, se, unknown);
	for (size_t i = 0; i < n; i++)
		rules_error("<expr>", 1, unknown[i]->col, "warning: no rule gives tag \"%s\" and no one holds it",
		            unknown[i]->name);
	free(unknown);
}

static int run(sqlite3 *db, const struct args *a, const struct rules *r, const struct tagrules *tr,
               const struct layers *ly, const struct segment_expr *se)
{
	if (a->layer == SEGQUERY_EXPR)
		warn_unknown_tags(db, tr, se);
	if (a->layer == SEGQUERY_RFM) {
		struct progress *pg = progress_start("rfm", PROGRESS_COUNT, 0, NULL, a->quiet);
		progress_watch(pg, db, NULL);
		rfm_compute(db, a->o.now);
		progress_end(pg);
	}
	char *base = segquery_base(a->layer, ly, se->sql);
	struct members_fmt fmt = {a->csv, a->bom, stdout};
	struct rule_budget *b = rule_budget_open(db, tr, a->steps);
	rule_budget_arm(b, 1);
	if (a->as_tag)
		as_tag(db, a, r, base);
	else if (a->count)
		print_counts(db, a, ly, base, &fmt);
	else
		print_members(db, a, r, ly, base, &fmt);
	rule_budget_close(b);
	free(base);
	return SMR_OK;
}

/* Everything that can be wrong with the request or the rules, checked
 * against an empty database: a bad one stops before the real database is
 * opened (or created). */
static int check_first(struct args *a, const struct rules *r, struct tagrules *tr, const struct layers *ly,
                       struct segment_expr *se)
{
	char err[256];
	int col = 0;
	if (a->expr && segment_compile(a->expr, tr, ly, se, err, sizeof err, &col) != 0) {
		rules_error("<expr>", 1, col, "%s", err);
		return SMR_USAGE;
	}
	if (a->as_tag && tagrules_find(tr, a->as_tag)) {
		smr_warnx(NULL, 0, "--as-tag: \"%s\" is given by a tag rule; pick another name", a->as_tag);
		return SMR_USAGE;
	}
	if (a->layer == SEGQUERY_TIERS && ly->ntiers == 0) {
		smr_warnx(r->file, 0, "no tier statements (tier NAME SPEND_YUAN)");
		return SMR_USAGE;
	}
	free(fields_or_die(a, ly));
	opts_resolve_now(&a->o);
	return tagrules_check(tr, a->o.now) + ly->errors ? SMR_USAGE : SMR_OK;
}

int main(int argc, char **argv)
{
	struct args a = {.steps = RULE_STEPS_DEFAULT};
	struct tagrules *tr = NULL;
	struct layers *ly = NULL;
	struct segment_expr se = {0};
	struct facts *f = NULL;
	sqlite3 *db = NULL;
	int rc = SMR_USAGE;
	smr_progname = "smr-segment";
	parse_args(&a, argc, argv);
	struct rules *r = rules_load(a.o.rules, a.o.rules_required);
	if (!r)
		goto out;
	tr = tagrules_parse(r);
	ly = layers_parse(r);
	if ((rc = check_first(&a, r, tr, ly, &se)) != SMR_OK)
		goto out;
	db = db_open(a.o.db);
	f = facts_open(db, a.o.now);
	rc = run(db, &a, r, tr, ly, &se);
out:
	facts_close(f);
	db_close(db);
	segment_expr_free(&se);
	free(a.expr);
	layers_free(ly);
	tagrules_free(tr);
	rules_free(r);
	regex_cache_free();
	return rc;
}
