/* Progress of long work on standard error, for a person at a terminal:
 * done of total (bytes or records), items per second and the time left,
 * redrawn on one line a few times a second. Nothing is shown when stderr
 * is not a terminal, when quiet, or in the first second (short runs stay
 * silent); the line is erased when the work ends. */
#ifndef SMR_PROGRESS_H
#define SMR_PROGRESS_H

#include <sqlite3.h>
#include <stdint.h>

enum progress_unit { PROGRESS_BYTES, PROGRESS_COUNT };

struct progress;

/* WHAT names the work ("ingest"); TOTAL in UNIT, 0 when unknown (no
 * share or ETA); ITEMS names what is counted per second ("events").
 * ITEMS NULL: only the time elapsed is shown (work of unknown size).
 * Returns NULL when nothing is to be shown: every call takes NULL. */
struct progress *progress_start(const char *what, enum progress_unit unit, int64_t total,
                                const char *items, int quiet);
/* DONE of the total so far, and ITEMS handled so far. Cheap: it draws
 * at most every 250 ms. */
void progress_update(struct progress *p, int64_t done, int64_t items);
/* While set-based SQL runs on DB, update P from *DONE (done and items
 * alike) every few thousand SQLite instructions; DONE NULL shows the time
 * elapsed only. Undone by progress_end. */
void progress_watch(struct progress *p, sqlite3 *db, const long *done);
/* SQLite has one progress handler per connection: code that installs its
 * own (the rule budget) calls progress_poll() from it, and
 * progress_rewatch() when it removes it, so the line keeps moving. */
void progress_poll(void);
void progress_rewatch(sqlite3 *db);
/* Erase the line, stop watching, and free P. */
void progress_end(struct progress *p);

#endif
