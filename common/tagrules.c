#include "tagrules.h"
#include "db.h"
#include "err.h"
#include "facts.h"
#include "utf8.h"
#include "lex.h"
#include "rulebudget.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tagrules_name_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= TAG_NAME_MAX || isdigit((unsigned char)s[0]))
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && (unsigned char)*s < 0x80)
			return 0;
	return 1;
}

/* A name at p: letters, digits, _ and non-ASCII. */
/* "tag NAME when EXPR" / "segment NAME when EXPR" */
static int parse_cond(struct tagrules *tr, const struct rule_stmt *st, struct cond *c)
{
	const char *text = st->text;
	const char *p = lex_skip_space(lex_skip_space(text) + strlen(st->keyword));
	size_t n = lex_name_len(p);
	memset(c, 0, sizeof *c);
	c->ladder = -1;
	if (n == 0 || n >= TAG_NAME_MAX || !isspace((unsigned char)p[n])) {
		rules_error(tr->file, st->line, (int)(p - text) + 1, "%s needs a name (letters, digits, _)", st->keyword);
		return -1;
	}
	memcpy(c->name, p, n);
	if (!tagrules_name_valid(c->name)) {
		rules_error(tr->file, st->line, (int)(p - text) + 1, "invalid %s name \"%s\"", st->keyword, c->name);
		return -1;
	}
	p = lex_skip_space(p + n);
	if (strncmp(p, "when", 4) != 0 || !isspace((unsigned char)p[4])) {
		rules_error(tr->file, st->line, (int)(p - text) + 1, "expected \"when CONDITION\" after %s %s", st->keyword, c->name);
		return -1;
	}
	p = lex_skip_space(p + 4);
	if (!*p) {
		rules_error(tr->file, st->line, (int)(p - text) + 1, "empty condition");
		return -1;
	}
	c->expr = xstrdup(p);
	c->line = st->line;
	c->col = utf8_column(text, (size_t)(p - text));
	char why[256];
	size_t off = 0;
	if (ruleexpr_rewrite(c->expr, &c->re, why, sizeof why, &off) != 0) {
		rules_error(tr->file, c->line, c->col + utf8_column(c->expr, off) - 1, "%s", why);
		return -1;
	}
	return 0;
}

static void ladder_error(const char *file, int line, int col, const char *msg)
{
	if (file)
		rules_error(file, line, col, "%s", msg);
}

void tagrules_ladder_free(struct ladder *l)
{
	for (size_t i = 0; i < l->ntags; i++)
		free(l->tags[i]);
	free(l->tags);
}

/* "ladder NAME: TAG TAG ..." (lowest rung first) */
int tagrules_ladder_parse(const struct rule_stmt *st, const char *file, struct ladder *out)
{
	const char *text = st->text, *p = lex_skip_space(lex_skip_space(text) + strlen("ladder"));
	size_t n = lex_name_len(p);
	if (n == 0 || n >= TAG_NAME_MAX) {
		ladder_error(file, st->line, (int)(p - text) + 1, "ladder needs a name");
		return -1;
	}
	struct ladder l = {0};
	memcpy(l.name, p, n);
	l.line = st->line;
	p = lex_skip_space(p + n);
	if (*p != ':') {
		ladder_error(file, st->line, (int)(p - text) + 1, "expected \":\" after the ladder name");
		return -1;
	}
	p = lex_skip_space(p + 1);
	while (*p) {
		n = lex_name_len(p);
		if (n == 0 || n >= TAG_NAME_MAX) {
			ladder_error(file, st->line, (int)(p - text) + 1, "expected a tag name");
			tagrules_ladder_free(&l);
			return -1;
		}
		l.tags = xrealloc(l.tags, (l.ntags + 1) * sizeof *l.tags);
		l.tags[l.ntags++] = xstrndup(p, n);
		p = lex_skip_space(p + n);
	}
	if (l.ntags < 2) {
		ladder_error(file, st->line, 1, "a ladder needs at least two tags");
		tagrules_ladder_free(&l);
		return -1;
	}
	*out = l;
	return 0;
}

static int parse_ladder(struct tagrules *tr, const struct rule_stmt *st)
{
	struct ladder l;
	if (tagrules_ladder_parse(st, tr->file, &l) != 0)
		return -1;
	tr->ladders = xrealloc(tr->ladders, (tr->nladders + 1) * sizeof *tr->ladders);
	tr->ladders[tr->nladders++] = l;
	return 0;
}

const struct cond *tagrules_find(const struct tagrules *tr, const char *name)
{
	for (size_t i = 0; i < tr->ntags; i++)
		if (strcmp(tr->tags[i].name, name) == 0)
			return &tr->tags[i];
	return NULL;
}

static int link_ladders(struct tagrules *tr)
{
	int errors = 0;
	for (size_t l = 0; l < tr->nladders; l++) {
		for (size_t k = 0; k < tr->ladders[l].ntags; k++) {
			struct cond *c = (struct cond *)tagrules_find(tr, tr->ladders[l].tags[k]);
			if (!c) {
				rules_error(tr->file, tr->ladders[l].line, 1, "ladder %s: no tag rule defines \"%s\"",
				            tr->ladders[l].name, tr->ladders[l].tags[k]);
				errors++;
			} else if (c->ladder >= 0) {
				rules_error(tr->file, tr->ladders[l].line, 1, "tag \"%s\" is in two ladders (%s and %s)",
				            c->name, tr->ladders[c->ladder].name, tr->ladders[l].name);
				errors++;
			} else {
				c->ladder = (int)l;
				c->rung = (int)k;
			}
		}
	}
	return errors;
}

static int add_cond(struct tagrules *tr, const struct rule_stmt *st, struct cond **list, size_t *n)
{
	struct cond c;
	if (parse_cond(tr, st, &c) != 0) {
		free(c.expr);
		return -1;
	}
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*list)[i].name, c.name) == 0) {
			rules_error(tr->file, st->line, 1, "%s \"%s\" is defined twice (first on line %d)",
			            st->keyword, c.name, (*list)[i].line);
			free(c.expr);
			ruleexpr_free(&c.re);
			return -1;
		}
	*list = xrealloc(*list, (*n + 1) * sizeof **list);
	(*list)[(*n)++] = c;
	return 0;
}

struct tagrules *tagrules_parse(const struct rules *r)
{
	struct tagrules *tr = xcalloc(1, sizeof *tr);
	tr->file = r->file;
	int errors = 0;
	for (size_t i = 0; i < r->nstmts; i++) {
		const struct rule_stmt *st = &r->stmts[i];
		if (strcmp(st->keyword, "tag") == 0)
			errors += add_cond(tr, st, &tr->tags, &tr->ntags) != 0;
		else if (strcmp(st->keyword, "segment") == 0)
			errors += add_cond(tr, st, &tr->segments, &tr->nsegments) != 0;
		else if (strcmp(st->keyword, "ladder") == 0)
			errors += parse_ladder(tr, st) != 0;
	}
	errors += link_ladders(tr);
	tr->errors = errors;
	return tr;
}

static void free_conds(struct cond *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(c[i].expr);
		ruleexpr_free(&c[i].re);
	}
	free(c);
}

void tagrules_free(struct tagrules *tr)
{
	if (!tr)
		return;
	free_conds(tr->tags, tr->ntags);
	free_conds(tr->segments, tr->nsegments);
	for (size_t l = 0; l < tr->nladders; l++)
		tagrules_ladder_free(&tr->ladders[l]);
	free(tr->ladders);
	free(tr);
}

/* Reads of the documented surface, functions and SELECT only. No
 * recursive common table expression: it can loop without end. The budget
 * markers (rulebudget.h) are smr's own, never a rule's. */
static int denied; /* the action refused last, for the message */
static char denied_fn[64];

static int read_only(void *arg, int action, const char *a, const char *b, const char *dbname, const char *trigger)
{
	(void)a;
	(void)dbname;
	(void)trigger;
	switch (action) {
	case SQLITE_SELECT:
	case SQLITE_READ:
		return SQLITE_OK;
	case SQLITE_FUNCTION:
		/* printf('%.*c', 200000000, 'x') runs for seconds past the
		 * length limit inside one step, where no budget can stop it */
		if (b && (strcasecmp(b, "load_extension") == 0 || strcasecmp(b, "printf") == 0 ||
		          strcasecmp(b, "format") == 0 || (strncasecmp(b, "smr_rule_", 9) == 0 && !arg)))
			break;
		return SQLITE_OK;
	default:
		break;
	}
	denied = action;
	snprintf(denied_fn, sizeof denied_fn, "%s", action == SQLITE_FUNCTION && b ? b : "");
	return SQLITE_DENY;
}

void tagrules_sandbox(sqlite3 *db, int on)
{
	static int marked;
	sqlite3_set_authorizer(db, on ? read_only : NULL, on == RULES_MARKED ? &marked : NULL);
}

/* Evaluate once against the empty check database, under the length cap and
 * the step budget: what SQLite computes once per statement (constant
 * expressions such as zeroblob(1e9)) fails here, at the rule. */
static int progress_stop(void *arg)
{
	long long *left = arg;
	return (*left -= 1000) < 0;
}

static int try_once(sqlite3 *db, sqlite3_stmt *st)
{
	long long left = RULE_STEPS_DEFAULT;
	int old = rule_length_limit(db, 1, 0);
	sqlite3_progress_handler(db, 1000, progress_stop, &left);
	int rc = sqlite3_step(st);
	sqlite3_progress_handler(db, 0, NULL, NULL);
	rule_length_limit(db, 0, old);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int compile_one(const struct tagrules *tr, sqlite3 *db, const struct cond *c)
{
	/* In WHERE, SQLite refuses aggregates (count(*) would fold everyone
	 * into one row) and window functions, as a condition must. */
	static const char prefix[] = "SELECT 1 FROM facts WHERE (";
	char *sql = xasprintf("%s%s\n)", prefix, c->re.sql);
	sqlite3_stmt *st = NULL;
	const char *tail = NULL;
	denied = 0;
	tagrules_sandbox(db, 1);
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, &tail);
	tagrules_sandbox(db, 0);
	int err = 0;
	if (rc != SQLITE_OK) {
		char *denied_msg = NULL;
		int off = sqlite3_error_offset(db);
		const char *msg = sqlite3_errmsg(db);
		size_t eoff = 0;
		const char *name = strstr(msg, ": ");
		if (off >= (int)sizeof prefix - 1)
			eoff = ruleexpr_origin(&c->re, (size_t)off - (sizeof prefix - 1));
		else if (name && strstr(c->expr, name + 2)) /* "no such column: x" */
			eoff = (size_t)(strstr(c->expr, name + 2) - c->expr);
		if (eoff > strlen(c->expr))
			eoff = strlen(c->expr);
		if (denied == SQLITE_RECURSIVE)
			msg = "not allowed: a recursive WITH (it can run without end)";
		else if (denied == SQLITE_FUNCTION)
			msg = denied_msg = xasprintf("not allowed: %s() is not for rules", denied_fn);
		else if (rc == SQLITE_AUTH || strcmp(msg, "not authorized") == 0)
			msg = "not allowed: rules are read-only (no writes, ATTACH, PRAGMA or schema changes)";
		rules_error(tr->file, c->line, c->col + utf8_column(c->expr, eoff) - 1, "%s", msg);
		free(denied_msg);
		err = 1;
	} else if ((rc = try_once(db, st)) == SQLITE_TOOBIG || rc == SQLITE_INTERRUPT) {
		rules_error(tr->file, c->line, c->col, "%s", rc == SQLITE_TOOBIG ?
		            "a string or blob over the length limit for rules" : "over the step budget for rules");
		err = 1;
	} else if (tail && *tail) {
		rules_error(tr->file, c->line, c->col, "a condition must be a single expression");
		err = 1;
	}
	sqlite3_finalize(st);
	free(sql);
	return err;
}

int tagrules_compile(struct tagrules *tr, sqlite3 *db)
{
	int errors = 0;
	for (size_t i = 0; i < tr->ntags; i++)
		errors += compile_one(tr, db, &tr->tags[i]);
	for (size_t i = 0; i < tr->nsegments; i++)
		errors += compile_one(tr, db, &tr->segments[i]);
	return errors;
}

int tagrules_check(struct tagrules *tr, int64_t now)
{
	sqlite3 *db = db_open(":memory:");
	struct facts *f = facts_open(db, now);
	int errors = tagrules_compile(tr, db) + tr->errors;
	facts_close(f);
	db_close(db);
	return errors;
}
