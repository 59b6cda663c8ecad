/* The rejects file (smr-ingest --rejects): rejected records verbatim,
 * appended to a 0600 file, a CSV input's header line before its first
 * reject. A reject is spooled to a temporary file and reaches the file
 * only when the caller says the batch before it has committed, so that a
 * run that fails (exit 3) has written no reject of the batch it rolled
 * back, and running it again writes that batch's rejects once. I/O
 * failures are fatal (exit 3). */
#ifndef SMR_REJECTS_H
#define SMR_REJECTS_H

#include <stddef.h>

struct rejects;

/* Open PATH for appending (created 0600: rejects hold raw personal data). */
struct rejects *rejects_open(const char *path);
/* Spool a record of LEN bytes, after HEADER (HLEN bytes) if not NULL. */
void rejects_add(struct rejects *rj, const char *header, size_t hlen, const char *rec, size_t len);
/* Records spooled and not yet written. */
long rejects_pending(const struct rejects *rj);
/* Write the spooled records: everything read before them has committed. */
void rejects_flush(struct rejects *rj);
/* Flush and close. Returns 0, or -1 if the file could not be written
 * (reported). NULL is nothing to close. */
int rejects_close(struct rejects *rj);

#endif
