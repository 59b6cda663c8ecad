/* Identity resolution: one person per human across identifier kinds.
 *
 * Each event's identifiers are looked up. None known: a new person.
 * Known ones of one or more persons: if the union of those persons and the
 * new identifiers keeps every kind within its limit, the persons merge into
 * the lowest pid and the new identifiers attach. Otherwise nothing merges:
 * the event goes to the person of its highest-priority identifier (a new
 * person if that identifier is new), new identifiers attach to that person
 * only where its limits allow, and each identifier left out is logged in
 * conflict_log. */
#ifndef SMR_IDENTITY_H
#define SMR_IDENTITY_H

#include <sqlite3.h>
#include <stdint.h>

#include "event.h"
#include "rules.h"

struct idres;

struct idres *idres_open(sqlite3 *db, const struct rules *r);
void idres_close(struct idres *ir);

/* The person EV belongs to, creating, attaching and merging as above.
 * Events with eid > BATCH_START are this batch's, whose facts the caller
 * adds at commit; a merge adds the merged person's facts to the survivor's. */
int64_t idres_resolve(struct idres *ir, const struct event *ev, int64_t batch_start, int64_t now);

/* Call FN(CTX, to, from) after each merge (the caller's batch sums follow
 * the merged person). */
void idres_on_merge(struct idres *ir, void (*fn)(void *ctx, int64_t to, int64_t from), void *ctx);

/* The look-ups and merge steps resolution runs (merge steps
 * NULL-terminated; each finds the merged person's rows by an index on
 * pid), held to their plans by the unit tests. */
extern const char idres_lookup_sql[], idres_kinds_of_sql[];
extern const char *const idres_merge_sql[];

struct idres_stats { long new_persons, merges, conflicts; };
const struct idres_stats *idres_stats(const struct idres *ir);

#endif
