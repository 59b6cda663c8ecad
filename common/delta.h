/* The facts a batch of events adds to each person (events, orders, spend,
 * refunds, first and last times, rev), summed in memory as events are
 * stored and written to person at commit, one row per person in pid
 * order: no re-read of the batch's events, no sort. Memory is bounded by
 * the batch. */
#ifndef SMR_DELTA_H
#define SMR_DELTA_H

#include <sqlite3.h>
#include <stdint.h>

struct delta;

struct delta *delta_open(sqlite3 *db);
void delta_close(struct delta *d);

/* Event EID of person PID, of TYPE at TS, AMOUNT (fen) when HAS_AMOUNT. */
void delta_add(struct delta *d, int64_t pid, int64_t eid, const char *type, int64_t ts, int has_amount,
               int64_t amount);
/* Person FROM merged into TO: FROM's sums become TO's. */
void delta_merge(struct delta *d, int64_t to, int64_t from);
/* Add every person's sums to its row and the latest event time to meta
 * ('event.max_ts'); then start empty. Inside the batch's transaction. */
void delta_flush(struct delta *d);

/* The statements delta_flush runs (for the plan test). */
extern const char delta_person_sql[];
extern const char delta_max_ts_sql[];

#endif
