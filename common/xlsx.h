/* smr-segment --xlsx: members as a spreadsheet that opens right
 * (libxlsxwriter): identifiers and text as text cells, so 11-digit phones
 * and 18-digit ids keep every digit and "=1+1" stays text; money as
 * numbers in yuan with two decimals; times as dates in the rules' time
 * zone; a bold header row, frozen. */
#ifndef SMR_XLSX_H
#define SMR_XLSX_H

#include <sqlite3.h>
#include <stddef.h>

#include "person.h"
#include "rules.h"

/* Write every row of ST (column 0 the pid, as for members_print) to PATH,
 * via PATH.tmp (mode 0600) renamed when complete. Returns the number of
 * rows, or -1 with a reason in ERR (nothing left at PATH.tmp). */
long xlsx_members(sqlite3 *db, sqlite3_stmt *st, struct person_lookup *pl, const struct rules *r,
                  const char *path, char *err, size_t errlen);

#endif
