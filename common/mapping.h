/* Source mappings (smr-rules(5) "source NAME ... end"): how the columns of
 * an operator's export (a WeCom customer list, a Youzan order export, ...)
 * become smr events, so that exports are ingested as they are. */
#ifndef SMR_MAPPING_H
#define SMR_MAPPING_H

#include <jansson.h>
#include <stddef.h>

#include "event.h"
#include "rules.h"

#define MAPPING_EVENTS_MAX 2    /* a row yields its event and perhaps one more */

struct mapping;

/* Parse every source block of R; errors are reported (file:line:col) and
 * counted in *errors. Returns the mapping named NAME, or NULL (NAME NULL:
 * only check, always NULL). */
struct mapping *mapping_parse(const struct rules *r, const char *name, int *errors);
void mapping_free(struct mapping *m);

/* The first column the mapping names that HAS_COLUMN says the input lacks,
 * or NULL when every one is there. */
const char *mapping_missing_column(const struct mapping *m, int (*has_column)(const void *, const char *),
                                   const void *ctx);

/* The events of ROW (an object of column name to text; an absent or empty
 * cell is no value): fills OUT with up to MAPPING_EVENTS_MAX new objects
 * and returns how many, or -1 with the reason in ERR (the row is rejected
 * whole). */
int mapping_apply(const struct mapping *m, json_t *row, json_t **out, char *err, size_t errlen);

/* A row's events, checked, with the objects they borrow strings from. */
struct mapping_events {
	json_t *objs[MAPPING_EVENTS_MAX];
	struct event evs[MAPPING_EVENTS_MAX];
	int n;
};
/* mapping_apply, then every event checked against R (event_from_json):
 * a row is stored whole or rejected whole. Returns 0 with the events in
 * OUT (mapping_events_clear them), or -1 with the reason in ERR and
 * nothing to clear. */
int mapping_events(const struct mapping *m, json_t *row, const struct rules *r, struct mapping_events *out,
                   char *err, size_t errlen);
void mapping_events_clear(struct mapping_events *me);

/* An export's time: ISO 8601, "2026/11/20 19:35[:00]" or "2026-11-20
 * 19:35", a date alone, epoch seconds, or Excel's serial days (a number
 * below 100000, days since 1899-12-30 in local time). */
int mapping_time(const char *s, int64_t *out, char *err, size_t errlen);
/* An export's money: "¥1,299.00", "1 299 元" -> "1299.00" in OUT. */
int mapping_money(const char *s, char *out, size_t outlen);

#endif
