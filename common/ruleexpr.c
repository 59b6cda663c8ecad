#include "ruleexpr.h"
#include "err.h"
#include "regex.h"
#include "tstamp.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Per-person functions, their argument counts as the rule author writes
 * them, and which argument is a window or a pattern (1-based, 0 = none). */
struct pfunc {
	const char *name;
	int min_args, max_args;
	int window_arg, pattern_arg;
};

static const struct pfunc pfuncs[] = {
	{"count", 2, 3, 2, 0},
	{"amount", 2, 3, 2, 0},
	{"days_since", 1, 2, 0, 0},
	{"days_since_item", 2, 2, 0, 0},
	{"orders_since", 1, 2, 0, 0},
	{"first_ts", 1, 2, 0, 0},
	{"last_ts", 1, 2, 0, 0},
	{"said", 1, 2, 2, 1},
	{"coupon_expiring", 1, 1, 1, 0},
	{"attr", 1, 1, 0, 0},
	{"tagged", 1, 1, 0, 0},
};

static const struct pfunc *find_pfunc(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof pfuncs / sizeof pfuncs[0]; i++)
		if (strlen(pfuncs[i].name) == len && strncasecmp(pfuncs[i].name, name, len) == 0)
			return &pfuncs[i];
	return NULL;
}

enum tok_kind { T_END, T_IDENT, T_STRING, T_NUMBER, T_LPAREN, T_RPAREN, T_COMMA, T_OTHER, T_BAD };

struct tok {
	enum tok_kind kind;
	size_t start, len;
};

/* The next SQL token at *pos (comments and spaces skipped). */
static struct tok next_tok(const char *s, size_t *pos)
{
	size_t i = *pos;
	for (;;) {
		while (isspace((unsigned char)s[i]))
			i++;
		if (s[i] == '-' && s[i + 1] == '-') {
			while (s[i] && s[i] != '\n')
				i++;
		} else if (s[i] == '/' && s[i + 1] == '*') {
			const char *e = strstr(s + i + 2, "*/");
			i = e ? (size_t)(e - s) + 2 : strlen(s);
		} else {
			break;
		}
	}
	struct tok t = {T_OTHER, i, 1};
	char c = s[i];
	if (!c) {
		t.kind = T_END;
		t.len = 0;
	} else if (c == '\'' || c == '"' || c == '`' || c == '[') {
		char close = c == '[' ? ']' : c;
		size_t j = i + 1;
		for (;;) {
			if (!s[j]) {
				t.kind = T_BAD;
				break;
			}
			if (s[j] == close) {
				if (close != ']' && s[j + 1] == close) {
					j += 2;
					continue;
				}
				j++;
				break;
			}
			j++;
		}
		if (t.kind != T_BAD)
			t.kind = c == '\'' ? T_STRING : T_IDENT;
		t.len = j - i;
	} else if (isalpha((unsigned char)c) || c == '_' || (unsigned char)c >= 0x80) {
		size_t j = i;
		while (isalnum((unsigned char)s[j]) || s[j] == '_' || s[j] == '$' || (unsigned char)s[j] >= 0x80)
			j++;
		t.kind = T_IDENT;
		t.len = j - i;
	} else if (isdigit((unsigned char)c) || (c == '.' && isdigit((unsigned char)s[i + 1]))) {
		size_t j = i;
		while (isalnum((unsigned char)s[j]) || s[j] == '.')
			j++;
		t.kind = T_NUMBER;
		t.len = j - i;
	} else if (c == '(') {
		t.kind = T_LPAREN;
	} else if (c == ')') {
		t.kind = T_RPAREN;
	} else if (c == ',') {
		t.kind = T_COMMA;
	}
	*pos = i + t.len;
	return t;
}

/* The unquoted value of a '...' literal. */
static char *string_value(const char *s, struct tok t)
{
	char *out = xmalloc(t.len);
	size_t n = 0;
	for (size_t i = t.start + 1; i < t.start + t.len - 1; i++) {
		out[n++] = s[i];
		if (s[i] == '\'')
			i++;
	}
	out[n] = '\0';
	return out;
}

struct args {
	int n;                  /* arguments (0 for "()") */
	int star;               /* count(*) */
	struct tok first[8];    /* first token of each argument */
	int single[8];          /* the argument is that one token */
};

/* Scan the arguments of a call whose "(" ends at *pos. */
static int scan_args(const char *s, size_t *pos, struct args *a)
{
	memset(a, 0, sizeof *a);
	int depth = 0, toks_in_arg = 0;
	for (;;) {
		struct tok t = next_tok(s, pos);
		if (t.kind == T_END || t.kind == T_BAD)
			return -1;
		if (depth == 0 && t.kind == T_RPAREN) {
			if (toks_in_arg && a->n < 8)
				a->single[a->n] = toks_in_arg == 1;
			if (toks_in_arg)
				a->n++;
			return 0;
		}
		if (depth == 0 && t.kind == T_COMMA) {
			if (a->n < 8)
				a->single[a->n] = toks_in_arg == 1;
			a->n++;
			toks_in_arg = 0;
			continue;
		}
		if (toks_in_arg == 0 && a->n < 8)
			a->first[a->n] = t;
		if (depth == 0 && toks_in_arg == 0 && s[t.start] == '*')
			a->star = 1;
		toks_in_arg++;
		if (t.kind == T_LPAREN)
			depth++;
		else if (t.kind == T_RPAREN)
			depth--;
	}
}

static int check_literal(const char *s, const struct args *a, int argno, int is_pattern,
                         char *err, size_t errlen, size_t *erroff)
{
	if (argno == 0 || argno > a->n || !a->single[argno - 1] || a->first[argno - 1].kind != T_STRING)
		return 0; /* not a literal: checked when evaluated */
	struct tok t = a->first[argno - 1];
	char *v = string_value(s, t);
	int rc = 0;
	if (is_pattern) {
		char why[200];
		if (!regex_get(v, why, sizeof why)) {
			snprintf(err, errlen, "%s", why);
			rc = -1;
		}
	} else {
		int64_t secs;
		if (strcmp(v, "all") != 0 && tstamp_duration(v, &secs) != 0) {
			snprintf(err, errlen, "bad window '%s' (use e.g. '30m', '12h', '7d', '2w' or 'all')", v);
			rc = -1;
		}
	}
	free(v);
	if (rc)
		*erroff = t.start;
	return rc;
}

static void append(char **buf, size_t *len, size_t *cap, const char *p, size_t n)
{
	if (*len + n + 1 > *cap) {
		*cap = (*len + n + 1) * 2;
		*buf = xrealloc(*buf, *cap);
	}
	memcpy(*buf + *len, p, n);
	*len += n;
	(*buf)[*len] = '\0';
}

int ruleexpr_rewrite(const char *expr, struct ruleexpr *out, char *err, size_t errlen, size_t *erroff)
{
	memset(out, 0, sizeof *out);
	size_t cap = strlen(expr) + 64, len = 0, copied = 0, pos = 0;
	char *buf = xmalloc(cap);
	buf[0] = '\0';
	struct tok prev = {T_END, 0, 0};
	int depth = 0;
	for (;;) {
		struct tok t = next_tok(expr, &pos);
		if (t.kind == T_END)
			break;
		depth += (t.kind == T_LPAREN) - (t.kind == T_RPAREN);
		if (depth < 0 || (t.kind == T_OTHER && expr[t.start] == ';')) {
			snprintf(err, errlen, depth < 0 ? "unbalanced \")\"" : "a condition must be a single expression");
			*erroff = t.start;
			free(buf);
			return -1;
		}
		if (t.kind == T_BAD) {
			snprintf(err, errlen, "unterminated quoted string or identifier");
			*erroff = t.start;
			free(buf);
			return -1;
		}
		/* x REGEXP 'literal': check the pattern now */
		if (t.kind == T_STRING && prev.kind == T_IDENT && prev.len == 6 &&
		    strncasecmp(expr + prev.start, "regexp", 6) == 0) {
			struct args a = {.n = 1, .single = {1}, .first = {t}};
			if (check_literal(expr, &a, 1, 1, err, errlen, erroff) != 0) {
				free(buf);
				return -1;
			}
		}
		prev = t;
		if (t.kind != T_IDENT)
			continue;
		const struct pfunc *f = find_pfunc(expr + t.start, t.len);
		size_t after = pos;
		struct tok lp = next_tok(expr, &after);
		if (!f || lp.kind != T_LPAREN)
			continue;
		size_t argpos = after;
		struct args a;
		if (scan_args(expr, &argpos, &a) != 0) {
			snprintf(err, errlen, "unbalanced parentheses in call to %.*s", (int)t.len, expr + t.start);
			*erroff = t.start;
			free(buf);
			return -1;
		}
		if (a.star || (strcasecmp(f->name, "count") == 0 && a.n < 2))
			continue; /* SQLite's own count(*) / count(x) */
		if (a.n < f->min_args || a.n > f->max_args) {
			snprintf(err, errlen, "%s() takes %d%s%d arguments, not %d", f->name, f->min_args,
			         f->max_args > f->min_args ? " to " : "", f->max_args, a.n);
			if (f->max_args == f->min_args)
				snprintf(err, errlen, "%s() takes %d argument%s, not %d", f->name, f->min_args,
				         f->min_args == 1 ? "" : "s", a.n);
			*erroff = t.start;
			free(buf);
			return -1;
		}
		if (check_literal(expr, &a, f->window_arg, 0, err, errlen, erroff) != 0 ||
		    check_literal(expr, &a, f->pattern_arg, 1, err, errlen, erroff) != 0) {
			free(buf);
			return -1;
		}
		if (out->nins == 64) {
			snprintf(err, errlen, "too many function calls in one condition");
			*erroff = t.start;
			free(buf);
			return -1;
		}
		/* copy through "(" and insert the person */
		append(&buf, &len, &cap, expr + copied, lp.start + 1 - copied);
		copied = lp.start + 1;
		const char *ins = a.n ? "facts.pid, " : "facts.pid";
		out->ins_at[out->nins] = len;
		out->ins_len[out->nins++] = strlen(ins);
		append(&buf, &len, &cap, ins, strlen(ins));
	}
	if (depth != 0) {
		snprintf(err, errlen, "unbalanced \"(\"");
		*erroff = strlen(expr);
		free(buf);
		return -1;
	}
	append(&buf, &len, &cap, expr + copied, strlen(expr + copied));
	out->sql = buf;
	return 0;
}

size_t ruleexpr_origin(const struct ruleexpr *re, size_t off)
{
	size_t shift = 0;
	for (int i = 0; i < re->nins; i++) {
		if (off >= re->ins_at[i] + re->ins_len[i])
			shift += re->ins_len[i];
		else if (off >= re->ins_at[i])
			return re->ins_at[i] - shift;
	}
	return off - shift;
}

void ruleexpr_free(struct ruleexpr *re)
{
	free(re->sql);
	re->sql = NULL;
}

/* --- parts, for smr-person --explain --------------------------------- */

struct parts_ctx {
	const char *s;
	struct tok *t;
	struct ruleexpr_part *out;
	size_t n, max;
};

static int tok_is(const struct parts_ctx *p, size_t i, const char *word)
{
	const struct tok *t = &p->t[i];
	return t->kind == T_IDENT && t->len == strlen(word) && strncasecmp(p->s + t->start, word, t->len) == 0;
}

/* The token closing the "(" at I (or the range end when unbalanced). */
static size_t closing(const struct parts_ctx *p, size_t i, size_t b)
{
	int depth = 0;
	for (size_t j = i; j < b; j++) {
		depth += (p->t[j].kind == T_LPAREN) - (p->t[j].kind == T_RPAREN);
		if (depth == 0)
			return j;
	}
	return b - 1;
}

static void add_part(struct parts_ctx *p, size_t a, size_t b, int depth)
{
	if (p->n == p->max || a >= b)
		return;
	p->out[p->n].start = p->t[a].start;
	p->out[p->n].len = p->t[b - 1].start + p->t[b - 1].len - p->t[a].start;
	p->out[p->n++].depth = depth;
}

/* Calls inside a comparison: an identifier followed by "(" that is not
 * an SQL keyword (x IN (...), EXISTS (...)). */
static void add_calls(struct parts_ctx *p, size_t a, size_t b, int depth)
{
	static const char *const keywords[] = {"in", "exists", "not", "and", "or", "select", "where",
	                                       "when", "then", "else", "as", "between", "is", NULL};
	for (size_t i = a; i + 1 < b; i++) {
		if (p->t[i].kind != T_IDENT || p->t[i + 1].kind != T_LPAREN)
			continue;
		int kw = 0;
		for (int k = 0; keywords[k]; k++)
			kw |= tok_is(p, i, keywords[k]);
		size_t end = closing(p, i + 1, b) + 1;
		if (!kw && !(i == a && end == b))
			add_part(p, i, end, depth);
	}
}

static void split(struct parts_ctx *p, size_t a, size_t b, int depth)
{
	while (b - a >= 2 && p->t[a].kind == T_LPAREN && closing(p, a, b) == b - 1)
		a++, b--;  /* (x) is x */
	if (a >= b)
		return;
	size_t cut[64];
	int ncut = 0, level = 0, between = 0;
	for (size_t i = a; i < b; i++) {
		level += (p->t[i].kind == T_LPAREN) - (p->t[i].kind == T_RPAREN);
		if (level != 0)
			continue;
		if (tok_is(p, i, "between"))
			between = 1;
		else if (tok_is(p, i, "and") && between)
			between = 0;
		else if ((tok_is(p, i, "and") || tok_is(p, i, "or")) && ncut < 64)
			cut[ncut++] = i;
	}
	add_part(p, a, b, depth);
	if (ncut) {
		size_t from = a;
		for (int k = 0; k < ncut; k++) {
			split(p, from, cut[k], depth + 1);
			from = cut[k] + 1;
		}
		split(p, from, b, depth + 1);
	} else if (tok_is(p, a, "not") && !(a + 1 < b && tok_is(p, a + 1, "exists"))) {
		split(p, a + 1, b, depth + 1);
	} else {
		add_calls(p, a, b, depth + 1);
	}
}

size_t ruleexpr_parts(const char *expr, struct ruleexpr_part *parts, size_t max)
{
	size_t cap = 16, n = 0, pos = 0;
	struct tok *t = xmalloc(cap * sizeof *t);
	for (;;) {
		struct tok k = next_tok(expr, &pos);
		if (k.kind == T_END || k.kind == T_BAD)
			break;
		if (n == cap)
			t = xrealloc(t, (cap *= 2) * sizeof *t);
		t[n++] = k;
	}
	struct parts_ctx p = {expr, t, parts, 0, max};
	if (n)
		split(&p, 0, n, 0);
	free(t);
	return p.n;
}
