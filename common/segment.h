/* Segment expressions (smr-segment EXPR): tags, named segments of the
 * rules file and layers (stage:NAME, tier:NAME, rfm:NAME) combined with
 * not, and, or (that precedence) and parentheses, turned into one SQL
 * condition over the facts view. */
#ifndef SMR_SEGMENT_H
#define SMR_SEGMENT_H

#include <sqlite3.h>
#include <stddef.h>

#include "layers.h"
#include "tagrules.h"

/* A tag the expression names, for warnings about names no one holds. */
struct segment_ref {
	char name[TAG_NAME_MAX];
	int col;
};

struct segment_expr {
	char *sql;                  /* the condition */
	struct segment_ref *tags;   /* plain tag names used */
	size_t ntags;
};

/* Translate EXPR. Returns 0, or -1 with a reason in ERR and the 1-based
 * column (in characters) of the problem in *COL. */
int segment_compile(const char *expr, const struct tagrules *tr, const struct layers *ly,
                    struct segment_expr *out, char *err, size_t errlen, int *col);
void segment_expr_free(struct segment_expr *se);

/* The plain tags SE names that no rule of TR gives and no one holds in
 * DB (most likely typos), into UNKNOWN (room for se->ntags), in the
 * expression's order. Returns how many. */
size_t segment_unknown_tags(sqlite3 *db, const struct tagrules *tr, const struct segment_expr *se,
                            const struct segment_ref **unknown);

#endif
