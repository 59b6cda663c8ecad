/* Tag, ladder and segment rules: parsed from the rules file, each condition
 * compiled against the facts view under a read-only authorizer. */
#ifndef SMR_TAGRULES_H
#define SMR_TAGRULES_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "rules.h"
#include "ruleexpr.h"

#define TAG_NAME_MAX 64

struct cond {
	char name[TAG_NAME_MAX];
	char *expr;             /* as written */
	struct ruleexpr re;     /* rewritten for SQLite */
	int line, col;          /* where the expression starts */
	int ladder;             /* index into ladders, -1 if none */
	int rung;               /* position in its ladder */
};

struct ladder {
	char name[TAG_NAME_MAX];
	char **tags;
	size_t ntags;
	int line;
};

struct tagrules {
	const char *file;
	struct cond *tags;
	size_t ntags;
	struct cond *segments;
	size_t nsegments;
	struct ladder *ladders;
	size_t nladders;
	int errors;             /* reported while parsing */
};

/* Parse the tag, ladder and segment statements of R, reporting errors
 * (file:line:col) and counting them in ->errors; the statements that
 * parsed are kept so that compiling can report theirs too. */
struct tagrules *tagrules_parse(const struct rules *r);
void tagrules_free(struct tagrules *tr);

/* Prepare each condition on DB (which has the facts view): unknown columns
 * or functions, syntax errors and anything but reads are reported at their
 * file:line:col. Returns the number of errors. */
int tagrules_compile(struct tagrules *tr, sqlite3 *db);
/* Compile TR against an empty in-memory database with the facts view as
 * of NOW, so that a bad rule stops a run before the real database is
 * opened (or created). Returns the errors, those of parsing included. */
int tagrules_check(struct tagrules *tr, int64_t now);

/* Refuse everything but reads while preparing rule SQL (ON 1), and also
 * allow the budget markers smr wraps rules in (ON RULES_MARKED); 0 is off. */
#define RULES_MARKED 2
void tagrules_sandbox(sqlite3 *db, int on);

/* One ladder statement into OUT (free with tagrules_ladder_free); errors
 * reported at FILE:line:col, or not at all when FILE is NULL. */
int tagrules_ladder_parse(const struct rule_stmt *st, const char *file, struct ladder *out);
void tagrules_ladder_free(struct ladder *l);
const struct cond *tagrules_find(const struct tagrules *tr, const char *name);
int tagrules_name_valid(const char *s);

#endif
