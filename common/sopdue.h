/* Running SOPs: enrol persons who entered a trigger tag (day 0 is the
 * tag's since), exit those who met an exit condition, and queue each step
 * whose local due time has come into the touch outbox, exactly once. */
#ifndef SMR_SOPDUE_H
#define SMR_SOPDUE_H

#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>

#include "person.h"
#include "sop.h"

struct sopdue_stats { long enrolled, exited, completed, queued, missed, skipped, held_out; };

/* One pass at NOW inside the caller's transaction. Steps later than LATE
 * past due are recorded as missed. Newly queued touch ids are appended to
 * *ids (for printing after commit). */
void sopdue_run(sqlite3 *db, const struct sops *s, int64_t now, int64_t late,
                int64_t **ids, size_t *nids, struct sopdue_stats *st);

/* Print the touch records of IDS. */
void sopdue_print(sqlite3 *db, struct person_lookup *pl, const int64_t *ids, size_t n, FILE *out);


#endif
