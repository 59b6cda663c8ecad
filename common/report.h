/* smr-report: the numbers that show whether restraint works. Each section
 * is one SQL query over the documented surface, printed as NDJSON or as a
 * table. */
#ifndef SMR_REPORT_H
#define SMR_REPORT_H

#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>

struct report_opts {
	int64_t now;
	int64_t window;        /* conversion window after a touch, seconds */
	int weeks;             /* fatigue: weeks back */
	int table;             /* aligned text instead of NDJSON */
};

enum report_section { REPORT_SOPS, REPORT_FATIGUE, REPORT_GROUPS, NREPORTS };

extern const char *const report_names[NREPORTS];
/* Each section's query (for the plan tests). */
extern const char *const report_sql[NREPORTS];

/* The section's statement, bound to O (the caller finalizes it). */
sqlite3_stmt *report_stmt(sqlite3 *db, enum report_section which, const struct report_opts *o);
void report_print(sqlite3 *db, enum report_section which, const struct report_opts *o, FILE *out);

/* Every section as one self-contained XHTML page (inline SVG, no script,
 * nothing fetched): uplift per step with its interval, the fatigue
 * histogram, and the groups with their flags. Its tables carry the same
 * values as the NDJSON records. Returns 0, or -1 on a write error. */
int report_html(sqlite3 *db, const struct report_opts *o, FILE *out);

#endif
