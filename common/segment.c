#include "segment.h"
#include "db.h"
#include "err.h"
#include "utf8.h"
#include "lex.h"
#include "rfm.h"
#include "rulebudget.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct parser {
	const char *expr, *p;
	const struct tagrules *tr;
	const struct layers *ly;
	struct segment_expr *out;
	char *err;
	size_t errlen;
	size_t erroff;
	int failed;
	int depth;              /* open "(" and "not" around the cursor */
	int operands;
};

static int fail(struct parser *ps, const char *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct parser *ps, const char *at, const char *fmt, ...)
{
	if (ps->failed)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ps->err, ps->errlen, fmt, ap);
	va_end(ap);
	ps->erroff = (size_t)(at - ps->expr);
	ps->failed = 1;
	return -1;
}

/* Deeper would only be a way to exhaust the stack, or SQLite's parser
 * stack: each level can nest the SQL once more, and 40 nested NOTs or
 * ANDs already overflow it (found by fuzzing; exit 3 at 64); more
 * operands, to exhaust SQLite's expression depth and memory. */
#define SEGMENT_DEPTH_MAX 16
#define SEGMENT_OPERANDS_MAX 256

static int deeper(struct parser *ps, const char *at)
{
	if (++ps->depth <= SEGMENT_DEPTH_MAX)
		return 0;
	return fail(ps, at, "nested too deeply (more than %d levels of \"(\" and \"not\")", SEGMENT_DEPTH_MAX);
}

static void skip(struct parser *ps)
{
	while (isspace((unsigned char)*ps->p))
		ps->p++;
}

/* The keyword KW (case-insensitive) as a whole word at the cursor. */
static int at_word(struct parser *ps, const char *kw)
{
	size_t n = strlen(kw);
	return strncasecmp(ps->p, kw, n) == 0 && lex_name_len(ps->p) == n;
}

static int is_keyword(const char *p, size_t n)
{
	return (n == 3 && (strncasecmp(p, "and", 3) == 0 || strncasecmp(p, "not", 3) == 0)) ||
	       (n == 2 && strncasecmp(p, "or", 2) == 0);
}

static char *parse_or(struct parser *ps);

/* stage:NAME, tier:NAME, rfm:NAME */
static char *layer_atom(struct parser *ps, const char *kind, size_t klen, const char *name, const char *at)
{
	if (klen == 5 && strncmp(kind, "stage", 5) == 0) {
		if (layers_stage_index(name) < 0)
			return fail(ps, at, "no stage \"%s\" (new, active, silent, churned, paying)", name), NULL;
		char *c = layers_stage_sql(ps->ly), *s = xasprintf("((%s) = '%s')", c, name);
		free(c);
		return s;
	}
	if (klen == 4 && strncmp(kind, "tier", 4) == 0) {
		if (!layers_tier_find(ps->ly, name))
			return fail(ps, at, "no tier \"%s\" in the rules file", name), NULL;
		char *c = layers_tier_sql(ps->ly), *s = xasprintf("((%s) = '%s')", c, name);
		free(c);
		return s;
	}
	if (klen == 3 && strncmp(kind, "rfm", 3) == 0) {
		const char *seg = rfm_segment_lookup(name);
		if (!seg)
			return fail(ps, at, "no RFM segment \"%s\" (e.g. rfm:at_risk)", name), NULL;
		return xasprintf("(facts.pid IN (SELECT pid FROM main.rfm WHERE segment = '%s'))", seg);
	}
	return fail(ps, kind, "unknown layer \"%.*s\" (stage, tier or rfm)", (int)klen, kind), NULL;
}

/* A named segment of the rules (its condition under the rule budget, as
 * marker ntags + index), else a tag. */
static char *name_atom(struct parser *ps, const char *name, const char *at)
{
	for (size_t i = 0; i < ps->tr->nsegments; i++)
		if (strcmp(ps->tr->segments[i].name, name) == 0)
			return rule_budget_wrap((int)(ps->tr->ntags + i), ps->tr->segments[i].re.sql);
	if (!tagrules_name_valid(name))
		return fail(ps, at, "\"%s\" is not a tag name", name), NULL;
	struct segment_expr *o = ps->out;
	o->tags = xrealloc(o->tags, (o->ntags + 1) * sizeof *o->tags);
	snprintf(o->tags[o->ntags].name, TAG_NAME_MAX, "%s", name);
	o->tags[o->ntags++].col = utf8_column(ps->expr, (size_t)(at - ps->expr));
	return xasprintf("(facts.pid IN (SELECT pid FROM main.tag WHERE tag = '%s'))", name);
}

static char *parse_atom(struct parser *ps)
{
	skip(ps);
	const char *at = ps->p;
	if (*at == '(') {
		ps->p++;
		if (deeper(ps, at) != 0)
			return NULL;
		char *in = parse_or(ps);
		ps->depth--;
		if (!in)
			return NULL;
		skip(ps);
		if (*ps->p != ')') {
			free(in);
			return fail(ps, ps->p, "expected \")\" to close the \"(\" at column %d",
			            utf8_column(ps->expr, (size_t)(at - ps->expr))), NULL;
		}
		ps->p++;
		return in;
	}
	size_t n = lex_name_len(at);
	if (n > 0 && ++ps->operands > SEGMENT_OPERANDS_MAX)
		return fail(ps, at, "too many operands (more than %d)", SEGMENT_OPERANDS_MAX), NULL;
	if (n == 0 && !*at)
		return fail(ps, at, "expected a tag or segment name at the end"), NULL;
	if (n == 0)
		return fail(ps, at, "unexpected \"%c\"", *at), NULL;
	if (is_keyword(at, n))
		return fail(ps, at, "expected a tag or segment name, not \"%.*s\"", (int)n, at), NULL;
	if (n >= TAG_NAME_MAX)
		return fail(ps, at, "name too long"), NULL;
	char name[TAG_NAME_MAX];
	ps->p = at + n;
	if (*ps->p == ':') {
		const char *nat = ++ps->p;
		size_t m = lex_name_len(nat);
		if (m == 0 || m >= TAG_NAME_MAX)
			return fail(ps, nat, "expected a name after \"%.*s:\"", (int)n, at), NULL;
		memcpy(name, nat, m);
		name[m] = '\0';
		ps->p = nat + m;
		return layer_atom(ps, at, n, name, nat);
	}
	memcpy(name, at, n);
	name[n] = '\0';
	return name_atom(ps, name, at);
}

static char *parse_not(struct parser *ps)
{
	skip(ps);
	if (at_word(ps, "not")) {
		const char *at = ps->p;
		ps->p += 3;
		if (deeper(ps, at) != 0)
			return NULL;
		char *in = parse_not(ps);
		ps->depth--;
		if (!in)
			return NULL;
		char *s = xasprintf("(NOT %s)", in);
		free(in);
		return s;
	}
	return parse_atom(ps);
}

/* OPERAND (KW OPERAND)... as one flat "(a OP b OP c)": SQLite's parser
 * would overflow on a left-deep nesting of parentheses. */
static char *parse_chain(struct parser *ps, const char *kw, const char *op, char *(*operand)(struct parser *))
{
	char *l = operand(ps);
	int n = 1;
	while (l) {
		skip(ps);
		if (!at_word(ps, kw))
			break;
		ps->p += strlen(kw);
		char *r = operand(ps);
		if (!r) {
			free(l);
			return NULL;
		}
		char *s = xasprintf("%s %s %s", l, op, r);
		free(l);
		free(r);
		l = s;
		n++;
	}
	if (!l || n == 1)
		return l;
	char *s = xasprintf("(%s)", l);
	free(l);
	return s;
}

static char *parse_and(struct parser *ps) { return parse_chain(ps, "and", "AND", parse_not); }

static char *parse_or(struct parser *ps) { return parse_chain(ps, "or", "OR", parse_and); }

int segment_compile(const char *expr, const struct tagrules *tr, const struct layers *ly,
                    struct segment_expr *out, char *err, size_t errlen, int *col)
{
	struct parser ps = {.expr = expr, .p = expr, .tr = tr, .ly = ly, .out = out, .err = err, .errlen = errlen};
	memset(out, 0, sizeof *out);
	char *sql = parse_or(&ps);
	if (sql) {
		skip(&ps);
		if (*ps.p) {
			int n = (int)lex_name_len(ps.p);
			fail(&ps, ps.p, "expected \"and\", \"or\" or the end, not \"%.*s\"", n ? n : 1, ps.p);
			free(sql);
			sql = NULL;
		}
	}
	if (!sql) {
		*col = utf8_column(expr, ps.erroff);
		segment_expr_free(out);
		return -1;
	}
	out->sql = sql;
	return 0;
}

void segment_expr_free(struct segment_expr *se)
{
	free(se->sql);
	free(se->tags);
	se->sql = NULL;
	se->tags = NULL;
	se->ntags = 0;
}

size_t segment_unknown_tags(sqlite3 *db, const struct tagrules *tr, const struct segment_expr *se,
                            const struct segment_ref **unknown)
{
	sqlite3_stmt *st = db_prepare(db, "SELECT 1 FROM main.tag WHERE tag = ?1 LIMIT 1");
	size_t n = 0;
	for (size_t i = 0; i < se->ntags; i++) {
		if (tagrules_find(tr, se->tags[i].name))
			continue;
		db_bind_text(db, st, 1, se->tags[i].name);
		if (!db_row(db, st))
			unknown[n++] = &se->tags[i];
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	return n;
}
