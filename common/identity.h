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

struct identity;

struct identity *identity_open(sqlite3 *db, const struct rules *r);
void identity_close(struct identity *ir);

/* The person EV belongs to, creating, attaching and merging as above.
 * Events with eid > BATCH_START are this batch's, whose facts the caller
 * adds at commit; a merge adds the merged person's facts to the survivor's. */
int64_t identity_resolve(struct identity *ir, const struct event *ev, int64_t batch_start, int64_t now);

/* Call FN(CTX, to, from) after each merge (the caller's batch sums follow
 * the merged person). */
void identity_on_merge(struct identity *ir, void (*fn)(void *ctx, int64_t to, int64_t from), void *ctx);

/* The look-ups and merge steps resolution runs (merge steps
 * NULL-terminated; each finds the merged person's rows by an index on
 * pid), held to their plans by the unit tests. */
extern const char identity_lookup_sql[], identity_kinds_of_sql[];
extern const char *const identity_merge_sql[];

struct identity_stats { long new_persons, merges, conflicts; };
const struct identity_stats *identity_stats(const struct identity *ir);

#endif
