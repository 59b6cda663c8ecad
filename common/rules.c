#include "rules.h"
#include "err.h"
#include "event.h"
#include "idhash.h"
#include "tstamp.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_RULES "smr.rules"
#define DEFAULT_TIMEZONE "Asia/Shanghai"
#define RULES_LINE_MAX (1 << 20)   /* bytes in a line, newline not counted */
#define RULES_BYTES_MAX (16 << 20) /* bytes in a rules file */

/* Built-in identifier kinds: priority (lower wins), the most values one
 * person may hold (0 = any number) and the most persons one value may
 * link (0 = not shareable: one person). */
static const struct idkind builtin_kinds[] = {
	{.name = "unionid", .priority = 1, .max = 1},
	{.name = "member_id", .priority = 2, .max = 1},
	{.name = "external_userid", .priority = 3, .max = 1},
	{.name = "phone", .priority = 4, .max = 1},
	{.name = "openid", .priority = 5, .max = 0},
	{.name = "cookie_id", .priority = 6, .max = 5, .shared = 5},
	{.name = "anon_id", .priority = 7, .max = 5, .shared = 5},
};

/* Placeholders that exports write for "no value", for every kind (compared
 * in lower case); values made only of zeros are placeholders too. */
static const char *const builtin_blocked[] = {
	"null", "nil", "none", "undefined", "unknown", "nan", "n/a", "-", "-1", "(null)", "[object object]", NULL,
};

void rules_error(const char *file, int line, int col, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: %s:%d:%d: ", smr_progname, file, line, col);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

const struct idkind *rules_idkind(const struct rules *r, const char *name)
{
	for (size_t i = 0; i < r->nkinds; i++)
		if (strcmp(r->kinds[i].name, name) == 0)
			return &r->kinds[i];
	return NULL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* VALUE without surrounding spaces, in ASCII lower case, into OUT (at
 * least EVENT_VALUE_MAX + 1 bytes). Returns its length, or -1 if too long
 * to be a placeholder. */
static int fold_value(const char *value, char *out)
{
	while (isspace((unsigned char)*value))
		value++;
	size_t n = strlen(value);
	while (n > 0 && isspace((unsigned char)value[n - 1]))
		n--;
	if (n > EVENT_VALUE_MAX)
		return -1;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)value[i]);
	out[n] = '\0';
	return (int)n;
}

static int all_one_char(const char *s, char c)
{
	for (; *s; s++)
		if (*s != c)
			return 0;
	return 1;
}

static int in_block_list(const struct idkind *k, const char *folded)
{
	const char *key = folded;
	return k->nblock && bsearch(&key, k->block, k->nblock, sizeof *k->block, cmp_str);
}

int idkind_blocked(const struct idkind *k, const char *value)
{
	char v[EVENT_VALUE_MAX + 1], phone[40];
	int n = fold_value(value, v);
	if (n < 0)
		return 0;
	if (n == 0 || all_one_char(v, '0') || in_block_list(k, v))
		return 1;
	for (const char *const *b = builtin_blocked; *b; b++)
		if (strcmp(*b, v) == 0)
			return 1;
	if (strcmp(k->name, "phone") == 0 && event_phone_normalise(v, phone, sizeof phone) == 0)
		return all_one_char(phone, phone[0]) || in_block_list(k, phone);
	return 0;
}

static struct rules *rules_new(const char *file)
{
	struct rules *r = xcalloc(1, sizeof *r);
	r->file = xstrdup(file);
	r->timezone = xstrdup(DEFAULT_TIMEZONE);
	r->nkinds = sizeof builtin_kinds / sizeof builtin_kinds[0];
	r->kinds = xmalloc(r->nkinds * sizeof *r->kinds);
	memcpy(r->kinds, builtin_kinds, sizeof builtin_kinds);
	return r;
}

void rules_free(struct rules *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nstmts; i++) {
		free(r->stmts[i].keyword);
		free(r->stmts[i].text);
	}
	free(r->stmts);
	for (size_t i = 0; i < r->nkinds; i++) {
		for (size_t j = 0; j < r->kinds[i].nblock; j++)
			free(r->kinds[i].block[j]);
		free(r->kinds[i].block);
	}
	free(r->kinds);
	free(r->timezone);
	free(r->file);
	free(r);
}

/* A line split into whitespace-separated words, with each word's column.
 * The arrays grow with the line, which is already in memory: a word takes
 * at least two of its bytes, so there is no limit of its own to enforce. */
struct words {
	char *buf;
	char **w;
	int *col;
	size_t wcap, colcap;
	int n;
};

static void split_words(const char *line, struct words *ws)
{
	*ws = (struct words){.buf = xstrdup(line)};
	char *p = ws->buf;
	while (*p) {
		while (isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		ws->w = xgrow(ws->w, &ws->wcap, (size_t)ws->n + 1, sizeof *ws->w);
		ws->col = xgrow(ws->col, &ws->colcap, (size_t)ws->n + 1, sizeof *ws->col);
		ws->col[ws->n] = (int)(p - ws->buf) + 1;
		ws->w[ws->n++] = p;
		while (*p && !isspace((unsigned char)*p))
			p++;
		if (*p)
			*p++ = '\0';
	}
}

static void free_words(struct words *ws)
{
	free(ws->buf);
	free(ws->w);
	free(ws->col);
}

static int parse_small_int(const char *s, int *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < 0 || v > 1000000)
		return -1;
	*out = (int)v;
	return 0;
}

static int valid_name(const char *s)
{
	if (!*s || strlen(s) >= IDKIND_NAME_MAX || !(islower((unsigned char)*s) || *s == '_'))
		return 0;
	for (; *s; s++)
		if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '_')
			return 0;
	return 1;
}

/* One double-quoted value (a backslash escapes the next character) at *P
 * into OUT; *P moves past it. Returns 0, or -1 if there is none. */
static int quoted_value(const char **p, char *out, size_t outlen)
{
	const char *s = *p;
	size_t n = 0;
	if (*s++ != '"')
		return -1;
	for (; *s && *s != '"'; s++) {
		if (*s == '\\' && s[1])
			s++;
		if (n + 1 >= outlen)
			return -1;
		out[n++] = *s;
	}
	if (*s != '"')
		return -1;
	out[n] = '\0';
	*p = s + 1;
	return 0;
}

/* block "v1" "v2" ...: the rest of line TEXT after the word "block" at
 * column COL. */
static int parse_block_values(struct rules *r, struct idkind *k, const char *text, int line, int col)
{
	const char *p = text + col - 1 + strlen("block");
	int nvalues = 0;
	for (;;) {
		while (isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		char raw[EVENT_VALUE_MAX + 1], v[EVENT_VALUE_MAX + 1], phone[40];
		int at = (int)(p - text) + 1;
		if (quoted_value(&p, raw, sizeof raw) != 0 || (*p && !isspace((unsigned char)*p))) {
			rules_error(r->file, line, at, "block values are double-quoted strings of at most %d bytes",
			            EVENT_VALUE_MAX);
			return -1;
		}
		if (k->nblock >= IDKIND_BLOCK_MAX) {
			rules_error(r->file, line, at, "more than %d block values for %s", IDKIND_BLOCK_MAX, k->name);
			return -1;
		}
		fold_value(raw, v);
		if (strcmp(k->name, "phone") == 0 && event_phone_normalise(v, phone, sizeof phone) == 0)
			snprintf(v, sizeof v, "%s", phone);
		k->block = xrealloc(k->block, (k->nblock + 1) * sizeof *k->block);
		k->block[k->nblock++] = xstrdup(v);
		nvalues++;
	}
	if (!nvalues) {
		rules_error(r->file, line, col, "block needs at least one double-quoted value");
		return -1;
	}
	qsort(k->block, k->nblock, sizeof *k->block, cmp_str);
	return 0;
}

/* identity KIND [priority N] [max N] [shared N] [hash] [block "v" ...] */
static int parse_identity(struct rules *r, struct words *ws, const char *text, int line)
{
	if (ws->n < 2) {
		rules_error(r->file, line, ws->col[0], "identity needs a kind name");
		return -1;
	}
	const char *name = ws->w[1];
	if (!valid_name(name) || event_field_reserved(name) || strcmp(name, "pid") == 0) {
		rules_error(r->file, line, ws->col[1], "invalid identifier kind \"%s\"", name);
		return -1;
	}
	struct idkind *k = (struct idkind *)rules_idkind(r, name);
	if (!k) {
		r->kinds = xrealloc(r->kinds, (r->nkinds + 1) * sizeof *r->kinds);
		k = &r->kinds[r->nkinds++];
		memset(k, 0, sizeof *k);
		snprintf(k->name, sizeof k->name, "%s", name);
		k->priority = 100;
	}
	for (int i = 2; i < ws->n; i += 2) {
		if (strcmp(ws->w[i], "block") == 0)
			return parse_block_values(r, k, text, line, ws->col[i]);
		if (strcmp(ws->w[i], "hash") == 0) {
			if (!idhash_key()) {
				rules_error(r->file, line, ws->col[i], "identity %s hash needs a key of at least %d bytes in $SMR_HASH_KEY",
				            name, IDHASH_KEY_MIN);
				return -1;
			}
			k->hash = 1;
			i--; /* a flag: no value follows */
			continue;
		}
		int *field = strcmp(ws->w[i], "priority") == 0 ? &k->priority
		           : strcmp(ws->w[i], "max") == 0 ? &k->max
		           : strcmp(ws->w[i], "shared") == 0 ? &k->shared : NULL;
		if (!field) {
			rules_error(r->file, line, ws->col[i], "expected \"priority\", \"max\", \"shared\", \"hash\" or \"block\", got \"%s\"",
			            ws->w[i]);
			return -1;
		}
		if (i + 1 >= ws->n || parse_small_int(ws->w[i + 1], field) != 0) {
			rules_error(r->file, line, i + 1 < ws->n ? ws->col[i + 1] : ws->col[i],
			            "%s needs a non-negative integer", ws->w[i]);
			return -1;
		}
	}
	return 0;
}

static int parse_timezone(struct rules *r, struct words *ws, int line)
{
	char err[256];
	if (ws->n != 2) {
		rules_error(r->file, line, ws->col[0], "timezone needs one zone name, e.g. Asia/Shanghai");
		return -1;
	}
	if (tstamp_tz_set(ws->w[1], err, sizeof err) != 0) {
		rules_error(r->file, line, ws->col[1], "%s", err);
		return -1;
	}
	free(r->timezone);
	r->timezone = xstrdup(ws->w[1]);
	return 0;
}

static void keep_stmt(struct rules *r, const char *keyword, const char *text, int line)
{
	r->stmts = xrealloc(r->stmts, (r->nstmts + 1) * sizeof *r->stmts);
	struct rule_stmt *s = &r->stmts[r->nstmts++];
	s->keyword = xstrdup(keyword);
	s->text = xstrdup(text);
	s->line = line;
}

/* Cut a trailing "# comment" that is outside quotes. */
static void strip_comment(char *line)
{
	char quote = 0;
	for (char *p = line; *p; p++) {
		if (quote) {
			if (*p == '\\' && p[1])
				p++;
			else if (*p == quote)
				quote = 0;
		} else if (*p == '"' || *p == '\'') {
			quote = *p;
		} else if (*p == '#') {
			*p = '\0';
			break;
		}
	}
	size_t n = strlen(line);
	while (n > 0 && isspace((unsigned char)line[n - 1]))
		line[--n] = '\0';
}

static const char *const line_keywords[] = {"tag", "ladder", "segment", "content", "tier", "stage", "rfm", NULL};
static const char *const block_keywords[] = {"sop", "policy", "source", NULL};

static int in_list(const char *const *list, const char *w)
{
	for (; *list; list++)
		if (strcmp(*list, w) == 0)
			return 1;
	return 0;
}

/* The next line of F into LINE (RULES_LINE_MAX + 2 bytes), adding the
 * bytes read to *TOTAL: 1, 0 at the end, -1 when the line is longer than
 * RULES_LINE_MAX (the rest of it is read and dropped). What a rules file
 * can make smr allocate stays bounded, whatever is on the other end. */
static int next_line(FILE *f, char *line, size_t *total)
{
	if (!fgets(line, RULES_LINE_MAX + 2, f))
		return 0;
	size_t n = strlen(line);
	*total += n;
	if (n <= RULES_LINE_MAX || line[n - 1] == '\n')
		return 1;
	for (int c; (c = getc(f)) != EOF && c != '\n';)
		++*total;
	return -1;
}

static int parse_stream(struct rules *r, FILE *f)
{
	char *line = xmalloc(RULES_LINE_MAX + 2), *block = NULL;
	size_t blen = 0, total = 0;
	int lineno = 0, errors = 0, block_line = 0, got;
	char block_kw[16] = "";
	while ((got = next_line(f, line, &total)) != 0) {
		lineno++;
		if (total > RULES_BYTES_MAX) {
			rules_error(r->file, lineno, 1, "the rules file is larger than %d bytes", RULES_BYTES_MAX);
			errors++;
			break;
		}
		if (got < 0) {
			rules_error(r->file, lineno, 1, "line is longer than %d bytes", RULES_LINE_MAX);
			errors++;
			continue;
		}
		strip_comment(line);
		struct words ws;
		split_words(line, &ws);
		if (ws.n == 0) {
			if (block) { /* keep the block's line numbering */
				block = xrealloc(block, blen + 2);
				block[blen++] = '\n';
				block[blen] = '\0';
			}
			free_words(&ws);
			continue;
		}
		const char *kw = ws.w[0];
		if (block) {
			size_t n = strlen(line);
			block = xrealloc(block, blen + n + 2);
			memcpy(block + blen, line, n);
			blen += n;
			block[blen++] = '\n';
			block[blen] = '\0';
			if (strcmp(kw, "end") == 0 && ws.n == 1) {
				keep_stmt(r, block_kw, block, block_line);
				free(block);
				block = NULL;
			}
		} else if (strcmp(kw, "timezone") == 0) {
			errors += parse_timezone(r, &ws, lineno) != 0;
		} else if (strcmp(kw, "identity") == 0) {
			errors += parse_identity(r, &ws, line, lineno) != 0;
		} else if (in_list(line_keywords, kw)) {
			keep_stmt(r, kw, line, lineno);
		} else if (in_list(block_keywords, kw)) {
			snprintf(block_kw, sizeof block_kw, "%s", kw);
			block_line = lineno;
			blen = strlen(line);
			block = xmalloc(blen + 2);
			memcpy(block, line, blen);
			block[blen++] = '\n';
			block[blen] = '\0';
		} else {
			rules_error(r->file, lineno, ws.col[0], "unknown keyword \"%s\"", kw);
			errors++;
		}
		free_words(&ws);
	}
	if (ferror(f)) {
		smr_warn(r->file, 0, "read error");
		errors++;
	}
	if (block) {
		rules_error(r->file, block_line, 1, "\"%s\" block has no \"end\"", block_kw);
		free(block);
		errors++;
	}
	free(line);
	return errors ? -1 : 0;
}

struct rules *rules_load_all(const char *path, int required, int *errors)
{
	char err[256];
	const char *file = path ? path : DEFAULT_RULES;
	*errors = 0;
	FILE *f = fopen(file, "r");
	if (!f && (required || errno != ENOENT)) {
		smr_warn(file, 0, "cannot read rules");
		return NULL;
	}
	struct rules *r = rules_new(file);
	if (tstamp_tz_set(r->timezone, err, sizeof err) != 0)
		smr_die(SMR_FATAL, "default time zone: %s", err); /* tzdata missing */
	if (!f)
		return r; /* no rules file: built-in defaults */
	*errors = parse_stream(r, f) != 0;
	fclose(f);
	return r;
}

struct rules *rules_load(const char *path, int required)
{
	int errors;
	struct rules *r = rules_load_all(path, required, &errors);
	if (r && errors) {
		rules_free(r);
		return NULL;
	}
	return r;
}
