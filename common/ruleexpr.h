/* Rule conditions: SQLite expressions over the facts view. Before SQLite
 * sees one, calls of the toolkit's per-person functions get the person
 * passed in (count('add_cart','7d') becomes count(facts.pid,'add_cart','7d')),
 * and literal regular expressions and windows are checked. */
#ifndef SMR_RULEEXPR_H
#define SMR_RULEEXPR_H

#include <stddef.h>

struct ruleexpr {
	char *sql;          /* rewritten expression */
	/* offsets where text was inserted, to map SQLite error offsets back */
	size_t ins_at[64], ins_len[64];
	int nins;
};

/* Rewrite EXPR. Returns 0, or -1 with a reason and the 0-based byte offset
 * in EXPR of the problem. */
int ruleexpr_rewrite(const char *expr, struct ruleexpr *out, char *err, size_t errlen, size_t *erroff);
/* Map an offset in out->sql back to one in the original expression. */
size_t ruleexpr_origin(const struct ruleexpr *re, size_t off);
void ruleexpr_free(struct ruleexpr *re);

/* A piece of a condition worth showing on its own (smr-person --explain):
 * the whole, each operand of AND, OR and NOT, and each function call in a
 * comparison; DEPTH is its nesting, 0 for the whole. */
struct ruleexpr_part {
	size_t start, len;      /* bytes of the original expression */
	int depth;
};

/* The parts of EXPR in reading order, at most MAX; returns how many. */
size_t ruleexpr_parts(const char *expr, struct ruleexpr_part *parts, size_t max);


#endif
