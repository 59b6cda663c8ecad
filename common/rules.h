/* The rules file (smr-rules(5)): one text file read by every tool. */
#ifndef SMR_RULES_H
#define SMR_RULES_H

#include <stddef.h>

#define IDKIND_NAME_MAX 32

#define IDKIND_BLOCK_MAX 10000   /* block values per kind */

struct idkind {
	char name[IDKIND_NAME_MAX];
	int priority;   /* lower wins when identifiers conflict */
	int max;        /* most distinct values one person may hold; 0 = no limit */
	int hash;       /* stored as a keyed hash (identity KIND hash) */
	int shared;     /* most persons one value may link; 0 = not shareable */
	char **block;   /* the kind's own placeholder values, lower case, sorted */
	size_t nblock;
};

/* A statement kept for the tool that interprets it (tag, ladder, sop, ...). */
struct rule_stmt {
	char *keyword;   /* "tag", "ladder", "sop", ... */
	char *text;      /* the whole statement (a block includes its lines) */
	int line;        /* first line */
};

struct rules {
	char *file;
	char *timezone;
	struct idkind *kinds;
	size_t nkinds;
	struct rule_stmt *stmts;
	size_t nstmts;
};

/* Load PATH. When PATH is NULL the default ./smr.rules is used if present,
 * else built-in defaults. Errors are reported as file:line:col and return
 * NULL (the caller exits 2). */
struct rules *rules_load(const char *path, int required);
/* As rules_load, but a file with errors (reported) still gives the
 * statements that parsed, with *errors set: for --check, which reports
 * every error in one pass. */
struct rules *rules_load_all(const char *path, int required, int *errors);
void rules_free(struct rules *r);

/* Report a rules error at file:line:col. */
void rules_error(const char *file, int line, int col, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

const struct idkind *rules_idkind(const struct rules *r, const char *name);
/* Whether VALUE of kind K is a placeholder that must never link anyone:
 * a built-in one (empty, null, undefined, 0, ...; for phones, one digit
 * repeated) or one of the kind's block values; without case, without
 * surrounding spaces. Phones are checked both as given and normalised. */
int idkind_blocked(const struct idkind *k, const char *value);

#endif
