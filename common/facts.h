/* The per-person facts rules are written against: the TEMP view `facts`
 * and the functions the toolkit registers (count, amount, days_since,
 * orders_since, said, coupon_expiring, attr, tagged, now, REGEXP).
 *
 * Time-dependent functions note, per person, the earliest future moment
 * their result can change (an event leaving a window, a coupon entering its
 * expiry window, a day passing); smr-tag stores it as person.check_at so
 * windows that close are noticed without scanning everyone. */
#ifndef SMR_FACTS_H
#define SMR_FACTS_H

#include <sqlite3.h>
#include <stdint.h>

struct facts;

/* Register functions and create the view on DB, with the clock at NOW. */
struct facts *facts_open(sqlite3 *db, int64_t now);
void facts_close(struct facts *f);
/* Move the clock (a simulation walking forward). */
void facts_set_now(struct facts *f, int64_t now);

/* Forget noted change moments (call before evaluating a chunk). */
void facts_reset_changes(struct facts *f);
/* In a backfill (events dated after now exist), note the person's next
 * such event: whatever a condition reads may change when it comes. */
void facts_note_future_events(struct facts *f, int64_t pid);
/* The earliest noted change moment for PID, or 0 if none. */
int64_t facts_next_change(const struct facts *f, int64_t pid);

/* The documented fact columns, NULL-terminated (for smr-segment --fields). */
extern const char *const facts_columns[];
/* The per-person look-ups the functions run, NULL-terminated: the first
 * twelve read event through event_pid, then person and tag by primary key
 * (held to those plans by the unit tests). */
extern const char *const facts_lookup_sql[];

#endif
