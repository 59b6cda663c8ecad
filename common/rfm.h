/* RFM scoring (smr-segment --rfm): recency, frequency and monetary
 * scores 1-5 by quintile over the persons with orders, and the named
 * segment of each score, stored in the rfm table. */
#ifndef SMR_RFM_H
#define SMR_RFM_H

#include <sqlite3.h>
#include <stdint.h>

#define RFM_NSEGMENTS 11

/* In display order, best first. */
extern const char *const rfm_segment_names[RFM_NSEGMENTS + 1];

/* Replace the rfm table with scores as of NOW, in one transaction.
 * Returns the number of persons scored. */
long rfm_compute(sqlite3 *db, int64_t now);

/* The segment whose name matches NAME with '_' for ' ', case-insensitive
 * ("at_risk" is "At Risk"), or NULL. */
const char *rfm_segment_lookup(const char *name);

#endif
