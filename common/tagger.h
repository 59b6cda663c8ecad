/* Applying tag rules: evaluate persons, enter and leave tags atomically,
 * log every change, report each one as an NDJSON record.
 *
 * Who is evaluated: with `full`, everyone. Otherwise the persons with an
 * event or a merge since the last run (above the watermarks kept in meta
 * as tag.eid and tag.merge) and those whose time-dependent conditions may
 * have changed by now (person.check_at <= now). A changed rules file
 * forces a full run. */
#ifndef SMR_TAGGER_H
#define SMR_TAGGER_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>

#include "facts.h"
#include "person.h"
#include "rules.h"
#include "tagrules.h"

/* The run's statements (for the plan tests): the temp tables; the persons
 * changed since the last run (rowid ranges, person_check); per chunk: the
 * next pids, a person's tags, a removal, the recheck time (primary keys),
 * NULL-terminated. */
extern const char tagger_temp_sql[], tagger_changed_sql[];
extern const char *const tagger_chunk_sql[];

struct tagger_stats { long evaluated, added, removed; int full; };

/* Evaluate and apply; change records go to OUT after each chunk commits.
 * STEPS bounds each condition for each person (rulebudget.h). */
void tagger_run(sqlite3 *db, const struct tagrules *tr, struct facts *f,
                struct person_lookup *pl, int64_t now, int full, long long steps, FILE *out,
                struct tagger_stats *st);

/* Entering (add=1) and leaving tags outside the rules (source "manual"
 * or "segment"), logged; the person is queued for re-evaluation. */
struct tag_writer;
struct tag_writer *tag_writer_open(sqlite3 *db, const char *source, int64_t now);
/* Returns 1 if something changed, 0 if not. */
int tag_writer_apply(struct tag_writer *w, int64_t pid, const char *tag, int add, const char *detail);
void tag_writer_close(struct tag_writer *w);

/* Changes from outside the rules (smr-tag --set/--unset, smr-segment
 * --as-tag) in one shape: applied through a tag_writer inside a
 * transaction the batch opens, and printed to OUT only once that
 * transaction has committed, so what is printed has happened. */
struct tag_batch;
struct tag_batch *tag_batch_open(sqlite3 *db, struct person_lookup *pl, const char *source, int64_t now,
                                 FILE *out);
/* Apply one change; 1 if it changed something (printed at the commit). */
int tag_batch_apply(struct tag_batch *b, int64_t pid, const char *tag, int add, const char *detail);
/* Make the persons MEMBERS selects (a SELECT of pids) hold TAG, and only
 * them: members not holding it enter, holders not among them leave, each
 * change with DETAIL (smr-segment --as-tag). */
void tag_batch_sync(struct tag_batch *b, const char *members, const char *tag, const char *detail);
/* A change record ({"tag":NAME} and a pid or identifiers, as smr-tag
 * --set reads them) applied with DETAIL. Returns 0, or -1 with the
 * reason in ERR (not a tag name, names no one, no such person). */
int tag_batch_record(struct tag_batch *b, json_t *rec, int add, const char *detail, char *err, size_t errlen);
/* Changes applied and not yet committed. */
size_t tag_batch_pending(const struct tag_batch *b);
/* Commit, print, and begin the next transaction. */
void tag_batch_commit(struct tag_batch *b);
/* Commit, print and free. */
void tag_batch_close(struct tag_batch *b);

/* Print one change record. */
void tag_print_change(struct person_lookup *pl, FILE *out, int64_t pid, const char *tag, int add,
                      int64_t at, const char *source, const char *detail);

#endif
