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
#include "../common/tagger.h"
#include "../common/tagrules.h"
#include "../common/xlsx.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum mode { MODE_EXPR, MODE_RFM, MODE_STAGES, MODE_TIERS };

struct args {
	struct smr_opts o;
	int count, csv, bom, rfm, stages, tiers;
	const char *fields, *as_tag;
	long long steps;
	const char *xlsx;       /* --xlsx FILE */
	int quiet;              /* no progress */
	char *expr;             /* the remaining arguments joined by spaces */
	enum mode mode;
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
	a->mode = a->rfm ? MODE_RFM : a->stages ? MODE_STAGES : a->tiers ? MODE_TIERS : MODE_EXPR;
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

static int is_fact_column(const char *name, size_t n)
{
	for (const char *const *c = facts_columns; *c; c++)
		if (strlen(*c) == n && strncmp(*c, name, n) == 0)
			return 1;
	return 0;
}

static int same(const char *p, size_t n, const char *name)
{
	return strlen(name) == n && strncmp(p, name, n) == 0;
}

/* attr.KEY: letters, digits, _ and non-ASCII. */
static int attr_key_ok(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)p[i]) && p[i] != '_' && (unsigned char)p[i] < 0x80)
			return 0;
	return n > 0;
}

/* One --fields name as a column over q (the layer's rows) and f (facts). */
static char *field_item(const char *p, size_t n, const struct layers *ly)
{
	static const char *const score[][2] = {{"r", "r"}, {"f", "f"}, {"m", "m"}, {"rfm", "segment"}};
	if (is_fact_column(p, n))
		return xasprintf("f.%.*s AS %.*s", (int)n, p, (int)n, p);
	if (n > 5 && strncmp(p, "attr.", 5) == 0 && attr_key_ok(p + 5, n - 5))
		return xasprintf("json_extract(f.attrs, '$.\"%.*s\"') AS \"%.*s\"", (int)n - 5, p + 5, (int)n, p);
	for (size_t i = 0; i < sizeof score / sizeof *score; i++)
		if (same(p, n, score[i][0]))
			return xasprintf("(SELECT %s FROM main.rfm WHERE rfm.pid = q.pid) AS %s", score[i][1], score[i][0]);
	char *c = same(p, n, "stage") ? layers_stage_sql(ly)
	        : same(p, n, "tier") && ly->ntiers ? layers_tier_sql(ly) : NULL;
	if (!c)
		return NULL;
	char *s = xasprintf("(%s) AS %.*s", c, (int)n, p);
	free(c);
	return s;
}

/* The layer's own columns, which --fields need not repeat. */
static int layer_column(enum mode m, const char *p, size_t n)
{
	switch (m) {
	case MODE_RFM: return same(p, n, "r") || same(p, n, "f") || same(p, n, "m") || same(p, n, "rfm");
	case MODE_STAGES: return same(p, n, "stage");
	case MODE_TIERS: return same(p, n, "tier");
	default: return 0;
	}
}

/* --fields a,b,c: ", ITEM, ..." (pid is always printed). */
static char *fields_sql(const char *list, enum mode m, const struct layers *ly)
{
	char *sql = xstrdup("");
	for (const char *p = list; list && *p;) {
		size_t n = strcspn(p, ",");
		char *item = same(p, n, "pid") || layer_column(m, p, n) ? NULL : field_item(p, n, ly);
		if (!item && !same(p, n, "pid") && !layer_column(m, p, n))
			smr_die(SMR_USAGE, "--fields: no field \"%.*s\" (facts, attr.KEY, r, f, m, rfm, stage, tier)",
			        (int)n, p);
		if (item) {
			char *s = xasprintf("%s, %s", sql, item);
			free(sql);
			free(item);
			sql = s;
		}
		p += n + (p[n] == ',');
	}
	return sql;
}

/* The layer's rows: pid first, then the layer's own columns. */
static char *base_sql(const struct args *a, const struct layers *ly, const struct segment_expr *se)
{
	char *c, *s;
	switch (a->mode) {
	case MODE_RFM:
		return xstrdup("SELECT pid, r, f, m, segment AS rfm FROM main.rfm");
	case MODE_STAGES:
		c = layers_stage_sql(ly);
		s = xasprintf("SELECT pid, %s AS stage FROM facts", c);
		break;
	case MODE_TIERS:
		c = layers_tier_sql(ly);
		s = xasprintf("SELECT pid, tier FROM (SELECT pid, %s AS tier FROM facts) WHERE tier IS NOT NULL", c);
		break;
	default:
		return xasprintf("SELECT facts.pid AS pid FROM facts WHERE %s", se->sql);
	}
	free(c);
	return s;
}

/* Rule-derived SQL (checked by tagrules_compile, wrapped in the budget
 * markers) is prepared read-only. */
static sqlite3_stmt *prepare_read(sqlite3 *db, const char *sql)
{
	tagrules_sandbox(db, RULES_MARKED);
	sqlite3_stmt *st = db_prepare(db, sql);
	tagrules_sandbox(db, 0);
	return st;
}

static void write_xlsx(sqlite3 *db, sqlite3_stmt *st, struct person_lookup *pl, const struct rules *r,
                       const char *path)
{
	char err[512];
	if (xlsx_members(db, st, pl, r, path, err, sizeof err) < 0)
		smr_die(SMR_FATAL, "%s", err);
}

static void print_members(sqlite3 *db, const struct args *a, const struct rules *r, const struct layers *ly,
                          const char *base, const struct members_fmt *fmt)
{
	char *fields = fields_sql(a->fields, a->mode, ly);
	char *sql = xasprintf("SELECT q.*%s FROM (%s) AS q%s ORDER BY q.pid", fields, base,
	                      *fields ? " JOIN facts AS f ON f.pid = q.pid" : "");
	sqlite3_stmt *st = prepare_read(db, sql);
	struct person_lookup *pl = person_lookup_open(db, r);
	if (a->xlsx)
		write_xlsx(db, st, pl, r, a->xlsx);
	else
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
	static const char *const keys[] = {NULL, "rfm", "stage", "tier"};
	const char *key = keys[a->mode];
	const char **names = xcalloc(ly->ntiers + RFM_NSEGMENTS + NSTAGES + 1, sizeof *names);
	size_t n = 0;
	if (a->mode == MODE_RFM)
		for (; rfm_segment_names[n]; n++)
			names[n] = rfm_segment_names[n];
	else if (a->mode == MODE_STAGES)
		for (; stage_names[n]; n++)
			names[n] = stage_names[n];
	else if (a->mode == MODE_TIERS)
		for (; n < ly->ntiers; n++)
			names[n] = ly->tiers[n].name;
	long *counts = xcalloc(n + 1, sizeof *counts);
	char *sql = key ? xasprintf("SELECT %s, count(*) FROM (%s) GROUP BY 1", key, base)
	                : xasprintf("SELECT NULL, count(*) FROM (%s)", base);
	sqlite3_stmt *st = prepare_read(db, sql);
	while (db_row(db, st)) {
		const char *v = (const char *)sqlite3_column_text(st, 0);
		for (size_t i = 0; i < n; i++)
			if (v && strcmp(v, names[i]) == 0)
				counts[i] = sqlite3_column_int64(st, 1);
		if (!key)
			counts[0] = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	members_print_counts(fmt, key, names, counts, key ? n : 1);
	free(sql);
	free(counts);
	free(names);
}

/* Apply to every pid SQL gives (bound to TAG) one direction of TAG. */
static void apply_all(sqlite3 *db, struct tag_batch *b, const char *sql, const char *tag, int add, const char *detail)
{
	sqlite3_stmt *st = db_prepare(db, sql);
	db_bind_text(db, st, 1, tag);
	int64_t *v = NULL;
	size_t n = 0, cap = 0;
	while (db_row(db, st)) { /* collect first: applying changes the rows read */
		v = xgrow(v, &cap, n + 1, sizeof *v);
		v[n++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	for (size_t i = 0; i < n; i++)
		tag_batch_apply(b, v[i], tag, add, detail);
	free(v);
}

/* --as-tag: members not holding TAG enter it, holders no longer members
 * leave it, in one transaction; the changes print once committed. */
static void as_tag(sqlite3 *db, const struct rules *r, const char *base, const char *tag, const char *detail,
                   int64_t now)
{
	struct person_lookup *pl = person_lookup_open(db, r);
	db_exec(db, "CREATE TEMP TABLE seg_members(pid INTEGER PRIMARY KEY)");
	struct tag_batch *b = tag_batch_open(db, pl, "segment", now, stdout);
	char *sql = xasprintf("INSERT INTO temp.seg_members %s", base);
	db_exec(db, sql);
	free(sql);
	apply_all(db, b, "SELECT pid FROM temp.seg_members WHERE pid NOT IN "
	          "(SELECT pid FROM main.tag WHERE tag = ?1) ORDER BY pid", tag, 1, detail);
	apply_all(db, b, "SELECT pid FROM main.tag WHERE tag = ?1 AND pid NOT IN "
	          "(SELECT pid FROM temp.seg_members) ORDER BY pid", tag, 0, detail);
	tag_batch_close(b);
	person_lookup_close(pl);
}

/* A tag no rule gives and no one holds is most likely a typo. */
static void warn_unknown_tags(sqlite3 *db, const struct tagrules *tr, const struct segment_expr *se)
{
	sqlite3_stmt *st = db_prepare(db, "SELECT 1 FROM main.tag WHERE tag = ?1 LIMIT 1");
	for (size_t i = 0; i < se->ntags; i++) {
		if (tagrules_find(tr, se->tags[i].name))
			continue;
		db_bind_text(db, st, 1, se->tags[i].name);
		if (!db_row(db, st))
			rules_error("<expr>", 1, se->tags[i].col,
			            "warning: no rule gives tag \"%s\" and no one holds it", se->tags[i].name);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
}

static int run(sqlite3 *db, const struct args *a, const struct rules *r, const struct tagrules *tr,
               const struct layers *ly, const struct segment_expr *se)
{
	if (a->mode == MODE_EXPR)
		warn_unknown_tags(db, tr, se);
	if (a->mode == MODE_RFM) {
		struct progress *pg = progress_start("rfm", PROGRESS_COUNT, 0, NULL, a->quiet);
		progress_watch(pg, db, NULL);
		rfm_compute(db, a->o.now);
		progress_end(pg);
	}
	char *base = base_sql(a, ly, se);
	struct members_fmt fmt = {a->csv, a->bom, stdout};
	struct rule_budget *b = rule_budget_open(db, tr, a->steps);
	rule_budget_arm(b, 1);
	if (a->as_tag)
		as_tag(db, r, base, a->as_tag, a->expr, a->o.now);
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
	if (a->mode == MODE_TIERS && ly->ntiers == 0) {
		smr_warnx(r->file, 0, "no tier statements (tier NAME SPEND_YUAN)");
		return SMR_USAGE;
	}
	free(fields_sql(a->fields, a->mode, ly)); /* exits 2 on a bad name */
	opts_resolve_now(&a->o);
	sqlite3 *db = db_open(":memory:");
	struct facts *f = facts_open(db, a->o.now);
	int errors = tagrules_compile(tr, db) + tr->errors + ly->errors;
	facts_close(f);
	db_close(db);
	return errors ? SMR_USAGE : SMR_OK;
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
