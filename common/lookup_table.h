/* smr-person --table: a person's record, --explain and --why as aligned
 * text for a terminal (times in local ISO 8601, NULL as -). */
#ifndef SMR_LOOKUP_TABLE_H
#define SMR_LOOKUP_TABLE_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>

/* Every section of PID's record (EVENTS recent events), headed. */
void lookup_table_record(sqlite3 *db, int64_t pid, int events, FILE *out);
/* An --explain object (lookup_explain): each part indented by depth. */
void lookup_table_explain(json_t *e, FILE *out);
/* A --why object (lookup_why): each enrollment and each step. */
void lookup_table_why(json_t *w, FILE *out);

#endif
