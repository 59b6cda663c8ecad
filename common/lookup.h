/* smr-person: one person looked up by any identifier, with everything the
 * database knows about them, and the explanations of --explain and --why. */
#ifndef SMR_LOOKUP_H
#define SMR_LOOKUP_H

#include <jansson.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "rules.h"
#include "sop.h"
#include "tagrules.h"

/* The persons ID names: "pid:N", "KIND:VALUE" for a kind of the rules, or
 * a bare value tried as every kind (stored as each kind stores it: phones
 * normalised, hashed kinds hashed). Fills PIDS (at most MAX, distinct, in
 * pid order) and returns how many; -1 with a reason in ERR when ID cannot
 * name anyone (a kind's value invalid, a hashed kind without its key). */
int lookup_resolve(sqlite3 *db, const struct rules *r, const char *id, int64_t *pids, int max,
                   char *err, size_t errlen);

/* The sections of a person's record, in print order. */
enum lookup_section {
	LOOKUP_IDENTITIES, LOOKUP_FACTS, LOOKUP_TAGS, LOOKUP_TAG_LOG, LOOKUP_ENROLLMENTS,
	LOOKUP_TOUCHES, LOOKUP_EVENTS, LOOKUP_MERGES, LOOKUP_CONFLICTS, LOOKUP_NSECTIONS
};
extern const char *const lookup_section_names[LOOKUP_NSECTIONS];
/* Each section's query, ?1 the pid (for the plan tests). */
extern const char *const lookup_section_sql[LOOKUP_NSECTIONS];
/* The statement of a section for PID (facts needs the facts view);
 * EVENTS limits the recent events. The caller finalizes it. */
sqlite3_stmt *lookup_section(sqlite3 *db, enum lookup_section s, int64_t pid, int events);

/* PID's whole record: {"pid":N, SECTION: rows, ...} in section order,
 * facts as one object (null if none). */
json_t *lookup_record(sqlite3 *db, int64_t pid, int events);

/* The tag's condition for PID now: the whole and each part (see
 * ruleexpr_parts) with its value, whether and since when PID holds it,
 * and a note on why the two may differ. */
json_t *lookup_explain(sqlite3 *db, const struct tagrules *tr, const struct cond *c, int64_t pid);

/* PID's runs through SOP: the trigger tag now, each enrollment and each
 * step's decision (from its touch row and reason, or why there is none). */
json_t *lookup_why(sqlite3 *db, const struct sop *sop, int64_t pid, int64_t now);

#endif
