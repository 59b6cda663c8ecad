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

/* The exit reason of an enrollment whose person has had WeCom staff
 * relationships (staff_link) and has none active any more. */
#define SOPDUE_NO_STAFF "no staff contact left"

struct sopdue_stats { long enrolled, exited, completed, queued, missed, skipped, held_out; };

/* One pass at NOW inside the caller's transaction. Steps later than LATE
 * past due are recorded as missed. Newly queued touch ids are appended to
 * *ids (for printing after commit). */
void sopdue_run(sqlite3 *db, const struct sops *s, int64_t now, int64_t late,
                int64_t **ids, size_t *nids, struct sopdue_stats *st);

/* Print the touch records of IDS. */
void sopdue_print(sqlite3 *db, struct person_lookup *pl, const int64_t *ids, size_t n, FILE *out);

/* Merging person FROM into TO (smr-ingest): FROM's enrollments move to TO.
 * Where both have a live enrollment in one SOP (active, or completed with
 * a touch still waiting), the earlier day 0 survives and the other exits
 * with reason "merged"; the touches of steps the survivor has not
 * recorded move to it (the other's waiting ones are left to smr-send to
 * suppress).
 * Holdout membership stays as each enrollment recorded it. */
struct sopdue_merge;
struct sopdue_merge *sopdue_merge_open(sqlite3 *db);
void sopdue_merge_run(struct sopdue_merge *m, int64_t to, int64_t from, int64_t now);
void sopdue_merge_close(struct sopdue_merge *m);

#endif
