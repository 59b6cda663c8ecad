/* The SQL of a smr-segment request: the rows a layer gives (a segment
 * expression's members, RFM scores, lifecycle stages, value tiers), the
 * --fields columns joined to them, and the count of rows per name of the
 * layer. The statements read the facts view and the rfm table. */
#ifndef SMR_SEGQUERY_H
#define SMR_SEGQUERY_H

#include <sqlite3.h>
#include <stddef.h>

#include "layers.h"

enum segquery_layer { SEGQUERY_EXPR, SEGQUERY_RFM, SEGQUERY_STAGES, SEGQUERY_TIERS };

/* The layer's rows (a fresh string): pid first, then the layer's own
 * columns (rfm: r, f, m, rfm; stages: stage; tiers: tier, persons below
 * the lowest tier left out). COND is segment_compile's condition, used by
 * SEGQUERY_EXPR only. */
char *segquery_base(enum segquery_layer l, const struct layers *ly, const char *cond);

/* --fields LIST as ", ITEM AS name, ..." over q (the layer's rows) and f
 * (the facts view); pid and the layer's own columns are left out, as
 * they are printed anyway. LIST NULL gives "". An unknown name gives NULL
 * with the reason in ERR. */
char *segquery_fields(const char *list, enum segquery_layer l, const struct layers *ly, char *err,
                      size_t errlen);

/* The members query over BASE with FIELDS (segquery_fields), by pid. */
char *segquery_members(const char *base, const char *fields);

/* Rule-derived SQL, prepared read-only (tagrules_sandbox). */
sqlite3_stmt *segquery_prepare(sqlite3 *db, const char *sql);

/* The key of the layer's counts ("rfm", "stage", "tier"; NULL for an
 * expression, counted whole). */
const char *segquery_key(enum segquery_layer l);

/* Count BASE's rows per name of the layer. *NAMES gets the names in the
 * layer's order (borrowed strings, a fresh array), *COUNTS their counts,
 * zeros included; for an expression one unnamed total. Returns the
 * number of counts. */
size_t segquery_count(sqlite3 *db, enum segquery_layer l, const struct layers *ly, const char *base,
                      const char ***names, long **counts);

#endif
