/* An input record, checked against the input-record contract. */
#ifndef SMR_EVENT_H
#define SMR_EVENT_H

#include <jansson.h>
#include <stdint.h>

#include "rules.h"

#define EVENT_MAX_IDS 16
#define EVENT_ID_MAX 256
#define EVENT_VALUE_MAX 256
#define EVENT_TS_MIN 1               /* 0 is "no event" in the facts */

struct ident {
	const struct idkind *kind;
	const char *value;              /* points into the record or valbuf */
	char valbuf[72];                /* numbers, normalised phones, hashes */
};

/* An identifier left out because its value is a placeholder. */
struct blocked_ident {
	const struct idkind *kind;
	char value[72];                 /* as stored (hashed for hash kinds), cut */
};

struct event {
	const char *id;
	char idbuf[24];
	const char *type;
	int64_t ts;
	struct ident ids[EVENT_MAX_IDS];
	int nids;
	struct blocked_ident blocked[EVENT_MAX_IDS];
	int nblocked;
	const char *item, *channel, *text, *group_id, *staff;
	int has_amount, has_expires;
	int64_t amount, expires;        /* fen; Unix seconds */
	json_t *props;                  /* owned; NULL when empty */
};

/* Check OBJ and fill EV (which borrows strings from OBJ: keep OBJ alive).
 * Returns 0, or -1 with the reason in err. */
int event_from_json(json_t *obj, const struct rules *r, struct event *ev,
                    char *err, size_t errlen);
void event_clear(struct event *ev);

/* The stored form of an identifier's value: phones normalised, kinds
 * declared `hash` replaced by their keyed hash. OUT has at least 72 bytes.
 * Returns 0, or -1 with the reason in err. */
int event_ident_value(const struct idkind *k, const char *raw, char *out, size_t outlen, char *err, size_t errlen);

/* Whether KEY is a top-level field with a meaning of its own (id, type,
 * ts, item, ...), which no identifier kind may be named. */
int event_field_reserved(const char *key);
/* Phones: spaces and dashes dropped, a +86/0086 prefix removed, digits
 * only (at least 5). Returns 0, or -1 if not a phone number. */
int event_phone_normalise(const char *in, char *out, size_t outlen);


#endif
