/* A person as other tools see them: pid plus main identifiers. */
#ifndef SMR_PERSON_H
#define SMR_PERSON_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdint.h>

#include "rules.h"

struct person_lookup;

struct person_lookup *person_lookup_open(sqlite3 *db, const struct rules *r);
void person_lookup_close(struct person_lookup *pl);

/* Add the person's main identifiers (one value of each kind that allows a
 * single value per person, e.g. unionid, external_userid, phone) to OBJ as
 * flat fields. */
void person_add_ids(struct person_lookup *pl, int64_t pid, json_t *obj);

/* The pid a record names: "pid", or its identifiers tried in priority
 * order. 0 when none is known; -1 when the record names none (err says). */
int64_t person_find(struct person_lookup *pl, json_t *rec, char *err, size_t errlen);

#endif
