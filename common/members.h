/* Printing a layer's members (smr-segment): one NDJSON record per row,
 * or CSV with a header (every field quoted by libcsv, CRLF line ends,
 * optionally a UTF-8 byte order mark for Excel). */
#ifndef SMR_MEMBERS_H
#define SMR_MEMBERS_H

#include <sqlite3.h>
#include <stdio.h>

#include "person.h"
#include "rules.h"

struct members_fmt {
	int csv, bom;
	FILE *out;
};

/* Print every row of ST: column 0 is the pid, followed by the person's
 * main identifiers, then the remaining columns under their names (a
 * column named attrs is printed as the JSON object it holds). Returns
 * the number of rows. */
long members_print(sqlite3 *db, sqlite3_stmt *st, struct person_lookup *pl, const struct rules *r,
                   const struct members_fmt *fmt);

/* A CSV cell a spreadsheet would run as a formula: text starting with =,
 * +, -, @, tab or CR that is not a plain decimal number ([+-]digits
 * [.digits], such as -5 or +8613800138000). Such a cell is written with a
 * leading apostrophe (OWASP's advice), so Excel shows it as text. */
int csv_formula_risk(const char *s);

/* Print counts: {"KEY":NAME,"count":N} per name (KEY NULL: {"count":N}
 * once), or the same as CSV with a header. */
void members_print_counts(const struct members_fmt *fmt, const char *key, const char *const *names,
                          const long *counts, size_t n);

#endif
