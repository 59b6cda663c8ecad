#include "segquery.h"
#include "db.h"
#include "err.h"
#include "facts.h"
#include "rfm.h"
#include "tagrules.h"

#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int same(const char *p, size_t n, const char *name)
{
	return strlen(name) == n && strncmp(p, name, n) == 0;
}

static int is_fact_column(const char *name, size_t n)
{
	for (const char *const *c = facts_columns; *c; c++)
		if (same(name, n, *c))
			return 1;
	return 0;
}

/* attr.KEY: letters, digits, _ and non-ASCII. */
static int attr_key_ok(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)p[i]) && p[i] != '_' && (unsigned char)p[i] < 0x80)
			return 0;
	return n > 0;
}

/* One --fields name as a column over q (the layer's rows) and f (facts),
 * or NULL if there is no such field. */
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
static int layer_column(enum segquery_layer l, const char *p, size_t n)
{
	switch (l) {
	case SEGQUERY_RFM: return same(p, n, "r") || same(p, n, "f") || same(p, n, "m") || same(p, n, "rfm");
	case SEGQUERY_STAGES: return same(p, n, "stage");
	case SEGQUERY_TIERS: return same(p, n, "tier");
	default: return 0;
	}
}

char *segquery_fields(const char *list, enum segquery_layer l, const struct layers *ly, char *err,
                      size_t errlen)
{
	char *sql = xstrdup("");
	for (const char *p = list; list && *p;) {
		size_t n = strcspn(p, ",");
		int printed = same(p, n, "pid") || layer_column(l, p, n);
		char *item = printed ? NULL : field_item(p, n, ly);
		if (!item && !printed) {
			snprintf(err, errlen, "no field \"%.*s\" (facts, attr.KEY, r, f, m, rfm, stage, tier)", (int)n, p);
			free(sql);
			return NULL;
		}
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

char *segquery_base(enum segquery_layer l, const struct layers *ly, const char *cond)
{
	char *c, *s;
	switch (l) {
	case SEGQUERY_RFM:
		return xstrdup("SELECT pid, r, f, m, segment AS rfm FROM main.rfm");
	case SEGQUERY_STAGES:
		c = layers_stage_sql(ly);
		s = xasprintf("SELECT pid, %s AS stage FROM facts", c);
		break;
	case SEGQUERY_TIERS:
		c = layers_tier_sql(ly);
		s = xasprintf("SELECT pid, tier FROM (SELECT pid, %s AS tier FROM facts) WHERE tier IS NOT NULL", c);
		break;
	default:
		assert(cond);
		return xasprintf("SELECT facts.pid AS pid FROM facts WHERE %s", cond);
	}
	free(c);
	return s;
}

char *segquery_members(const char *base, const char *fields)
{
	return xasprintf("SELECT q.*%s FROM (%s) AS q%s ORDER BY q.pid", fields, base,
	                 *fields ? " JOIN facts AS f ON f.pid = q.pid" : "");
}

/* Rule-derived SQL (checked by tagrules_compile, wrapped in the budget
 * markers) is prepared read-only. */
sqlite3_stmt *segquery_prepare(sqlite3 *db, const char *sql)
{
	tagrules_sandbox(db, RULES_MARKED);
	sqlite3_stmt *st = db_prepare(db, sql);
	tagrules_sandbox(db, 0);
	return st;
}

const char *segquery_key(enum segquery_layer l)
{
	static const char *const keys[] = {NULL, "rfm", "stage", "tier"};
	assert((size_t)l < sizeof keys / sizeof *keys);
	return keys[l];
}

/* The layer's names in display order; returns how many. */
static size_t layer_names(enum segquery_layer l, const struct layers *ly, const char **names)
{
	size_t n = 0;
	if (l == SEGQUERY_RFM)
		for (; rfm_segment_names[n]; n++)
			names[n] = rfm_segment_names[n];
	else if (l == SEGQUERY_STAGES)
		for (; stage_names[n]; n++)
			names[n] = stage_names[n];
	else if (l == SEGQUERY_TIERS)
		for (; n < ly->ntiers; n++)
			names[n] = ly->tiers[n].name;
	return n;
}

size_t segquery_count(sqlite3 *db, enum segquery_layer l, const struct layers *ly, const char *base,
                      const char ***names, long **counts)
{
	const char *key = segquery_key(l);
	*names = xcalloc(ly->ntiers + RFM_NSEGMENTS + NSTAGES + 1, sizeof **names);
	size_t n = layer_names(l, ly, *names);
	assert(n <= ly->ntiers + RFM_NSEGMENTS + NSTAGES);
	*counts = xcalloc(n + 1, sizeof **counts);
	char *sql = key ? xasprintf("SELECT %s, count(*) FROM (%s) GROUP BY 1", key, base)
	                : xasprintf("SELECT NULL, count(*) FROM (%s)", base);
	sqlite3_stmt *st = segquery_prepare(db, sql);
	while (db_row(db, st)) {
		const char *v = (const char *)sqlite3_column_text(st, 0);
		for (size_t i = 0; i < n; i++)
			if (v && strcmp(v, (*names)[i]) == 0)
				(*counts)[i] = sqlite3_column_int64(st, 1);
		if (!key)
			(*counts)[0] = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	free(sql);
	return key ? n : 1;
}
