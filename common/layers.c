#include "layers.h"
#include "err.h"
#include "lex.h"
#include "money.h"
#include "opts.h"
#include "ruleexpr.h"
#include "utf8.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

const char *const stage_names[NSTAGES + 1] = {"new", "active", "silent", "churned", "paying", NULL};

/* Defaults: new for 7 days after first seen, active while seen within 30,
 * silent until 90, paying while the last order is under 30 days old. */
static const int default_days[NSTAGES] = {7, 30, 90, 0, 30};

static size_t word_len(const char *p)
{
	size_t n = 0;
	while (p[n] && !isspace((unsigned char)p[n]))
		n++;
	return n;
}

int layers_stage_index(const char *name)
{
	for (int i = 0; i < NSTAGES; i++)
		if (strcmp(stage_names[i], name) == 0)
			return i;
	return -1;
}

const struct tier *layers_tier_find(const struct layers *ly, const char *name)
{
	for (size_t i = 0; i < ly->ntiers; i++)
		if (strcmp(ly->tiers[i].name, name) == 0)
			return &ly->tiers[i];
	return NULL;
}

/* Reads "KEYWORD NAME VALUE": NAME into name, VALUE's offset into *val. */
static int name_and_value(const char *file, const struct rule_stmt *st, char *name, const char **val)
{
	const char *text = st->text, *p = lex_skip_space(text + strlen(st->keyword));
	size_t n = lex_name_len(p);
	if (n == 0 || n >= LAYER_NAME_MAX || (p[n] && !isspace((unsigned char)p[n]))) {
		rules_error(file, st->line, utf8_column(text, (size_t)(p - text)), "%s needs a name (letters, digits, _)", st->keyword);
		return -1;
	}
	memcpy(name, p, n);
	name[n] = '\0';
	p = lex_skip_space(p + n);
	size_t w = word_len(p);
	if (w == 0 || *lex_skip_space(p + w)) {
		rules_error(file, st->line, utf8_column(text, (size_t)(p - text)), "expected \"%s %s %s\"", st->keyword, name,
		            strcmp(st->keyword, "tier") == 0 ? "SPEND_YUAN" : "DAYS");
		return -1;
	}
	*val = p;
	return 0;
}

/* "stage new|active|silent|paying DAYS" */
static int parse_stage(struct layers *ly, const char *file, const struct rule_stmt *st)
{
	char name[LAYER_NAME_MAX];
	const char *v;
	if (name_and_value(file, st, name, &v) != 0)
		return -1;
	int col = utf8_column(st->text, (size_t)(v - st->text));
	int i = layers_stage_index(name);
	if (i < 0 || i == STAGE_CHURNED) {
		rules_error(file, st->line, 7, "stage \"%s\": thresholds are set for new, active, silent and paying "
		            "(churned is who is left)", name);
		return -1;
	}
	long days = opts_int(v);
	if (days < 1 || days > 36500) {
		rules_error(file, st->line, col, "stage %s: DAYS must be a whole number from 1 to 36500", name);
		return -1;
	}
	ly->stage_days[i] = (int)days;
	ly->stage_line[i] = st->line;
	return 0;
}

/* Silent must reach further back than active, or no one is ever silent. */
static int check_stages(const struct layers *ly, const char *file)
{
	const int *d = ly->stage_days;
	if (d[STAGE_SILENT] > d[STAGE_ACTIVE])
		return 0;
	int line = ly->stage_line[STAGE_SILENT] > ly->stage_line[STAGE_ACTIVE] ? ly->stage_line[STAGE_SILENT]
	                                                                        : ly->stage_line[STAGE_ACTIVE];
	rules_error(file, line, 1, "stage silent (%d days) must be more than stage active (%d days)",
	            d[STAGE_SILENT], d[STAGE_ACTIVE]);
	return -1;
}

/* "tier NAME SPEND_YUAN" */
static int parse_tier(struct layers *ly, const char *file, const struct rule_stmt *st)
{
	struct tier t = {.line = st->line};
	const char *v;
	if (name_and_value(file, st, t.name, &v) != 0)
		return -1;
	int col = utf8_column(st->text, (size_t)(v - st->text));
	if (money_parse(v, &t.min_fen) != 0 || t.min_fen < 0) {
		rules_error(file, st->line, col, "tier %s: SPEND_YUAN must be an amount in yuan (at most two decimals)", t.name);
		return -1;
	}
	for (size_t i = 0; i < ly->ntiers; i++) {
		const char *why = strcmp(ly->tiers[i].name, t.name) == 0 ? "is defined twice"
			: ly->tiers[i].min_fen == t.min_fen ? "has the same threshold as another tier" : NULL;
		if (why) {
			rules_error(file, st->line, 1, "tier \"%s\" %s (line %d)", t.name, why, ly->tiers[i].line);
			return -1;
		}
	}
	size_t at = ly->ntiers;
	ly->tiers = xrealloc(ly->tiers, (ly->ntiers + 1) * sizeof *ly->tiers);
	while (at > 0 && ly->tiers[at - 1].min_fen > t.min_fen) {
		ly->tiers[at] = ly->tiers[at - 1];
		at--;
	}
	ly->tiers[at] = t;
	ly->ntiers++;
	return 0;
}

struct layers *layers_parse(const struct rules *r)
{
	struct layers *ly = xcalloc(1, sizeof *ly);
	memcpy(ly->stage_days, default_days, sizeof ly->stage_days);
	for (size_t i = 0; i < r->nstmts; i++) {
		const struct rule_stmt *st = &r->stmts[i];
		if (strcmp(st->keyword, "stage") == 0)
			ly->errors += parse_stage(ly, r->file, st) != 0;
		else if (strcmp(st->keyword, "tier") == 0)
			ly->errors += parse_tier(ly, r->file, st) != 0;
	}
	ly->errors += check_stages(ly, r->file) != 0;
	return ly;
}

void layers_free(struct layers *ly)
{
	if (!ly)
		return;
	free(ly->tiers);
	free(ly);
}

/* First match wins: paying, new, active, silent, else churned. */
char *layers_stage_sql(const struct layers *ly)
{
	const int *d = ly->stage_days;
	return xasprintf("CASE WHEN days_since_order < %d THEN 'paying' "
	                 "WHEN days_since_first_seen < %d THEN 'new' "
	                 "WHEN days_since_seen < %d THEN 'active' "
	                 "WHEN days_since_seen < %d THEN 'silent' ELSE 'churned' END",
	                 d[STAGE_PAYING], d[STAGE_NEW], d[STAGE_ACTIVE], d[STAGE_SILENT]);
}

/* The highest tier whose threshold the net spend reaches. Tier names hold
 * no quotes (letters, digits, _ and non-ASCII only). */
char *layers_tier_sql(const struct layers *ly)
{
	char *sql = xstrdup("CASE");
	for (size_t i = ly->ntiers; i-- > 0;) {
		char *n = xasprintf("%s WHEN net_spend >= %lld THEN '%s'", sql, (long long)ly->tiers[i].min_fen,
		                    ly->tiers[i].name);
		free(sql);
		sql = n;
	}
	char *n = xasprintf("%s ELSE NULL END", sql);
	free(sql);
	return n;
}
