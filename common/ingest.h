/* Storing checked events: dedup by source id, identity resolution, and the
 * per-person facts later tools read, in batches that commit atomically. */
#ifndef SMR_INGEST_H
#define SMR_INGEST_H

#include <sqlite3.h>
#include <stdint.h>

#include "event.h"
#include "rules.h"

#define INGEST_BATCH 5000          /* streaming input (stdin, a pipe) */
#define INGEST_FILE_BATCH 100000   /* every input a regular file */

struct ingest_stats {
	long read, inserted, duplicates, rejected, new_persons, merges, conflicts;
};

struct ingest;

/* Per-event statements (for the plan tests): dedup by id, attributes. */
extern const char ingest_seen_sql[], ingest_attrs_sql[];

struct ingest *ingest_open(sqlite3 *db, const struct rules *r, int64_t now, int batch);
/* Store EV; returns 1 when inserted, 0 when its id was seen before. */
int ingest_event(struct ingest *in, const struct event *ev);
struct mapping;
struct record;
struct source;
/* Store the events of REC, a record SRC gave: the record itself checked
 * against the rules or, with a source mapping M (named MNAME), the events
 * M makes of the row, all checked first so that a row is stored whole or
 * rejected whole. Returns 0, or -1 with the reason in WHY. */
int ingest_record(struct ingest *in, const struct source *src, const struct record *rec,
                  const struct mapping *m, const char *mname, char *why, size_t whylen);
/* Commit the batch in flight (also done every `batch` events). */
void ingest_commit(struct ingest *in);
/* Commit and free; fills stats (read and rejected are the caller's). */
void ingest_close(struct ingest *in, struct ingest_stats *stats);

#endif
