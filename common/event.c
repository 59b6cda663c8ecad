#include "event.h"
#include "idhash.h"
#include "money.h"
#include "tstamp.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Top-level fields with a meaning of their own; every other field that is
 * not an identifier is kept in props. */
static const char *const core_fields[] = {
	"id", "type", "ts", "item", "amount", "channel", "text", "expires",
	"group_id", "staff", "props", "ids", NULL,
};

int event_field_reserved(const char *key)
{
	for (const char *const *f = core_fields; *f; f++)
		if (strcmp(*f, key) == 0)
			return 1;
	return 0;
}

static int bad(char *err, size_t errlen, const char *fmt, const char *arg)
{
	snprintf(err, errlen, fmt, arg);
	return -1;
}

static int valid_type(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 32 || !islower((unsigned char)s[0]))
		return 0;
	for (; *s; s++)
		if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '_')
			return 0;
	return 1;
}

/* An optional string field: absent or null is fine, anything else but a
 * string is a wrong type. */
static int opt_string(json_t *obj, const char *key, const char **out, char *err, size_t errlen)
{
	json_t *v = json_object_get(obj, key);
	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return bad(err, errlen, "field \"%s\" must be a string", key);
	if (json_string_length(v) > 65536)
		return bad(err, errlen, "field \"%s\" is too long", key);
	*out = json_string_value(v);
	if (!**out)
		*out = NULL; /* empty = absent */
	return 0;
}

static int get_time(json_t *v, const char *key, int64_t *out, char *err, size_t errlen)
{
	char why[128];
	if (json_is_integer(v)) {
		json_int_t t = json_integer_value(v);
		if (t < 0 || t > TIME_MAX)
			return bad(err, errlen, "field \"%s\": epoch seconds out of range", key);
		*out = t;
		return 0;
	}
	if (!json_is_string(v))
		return bad(err, errlen, "field \"%s\" must be an ISO 8601 string or epoch seconds", key);
	if (tstamp_parse(json_string_value(v), out, why, sizeof why) != 0) {
		snprintf(err, errlen, "field \"%s\": %s", key, why);
		return -1;
	}
	return 0;
}

/* An event's time: 0 (1970-01-01T00:00:00Z) is what facts use for "no
 * event", and what broken exports write for a missing date. */
static int get_ts(json_t *v, int64_t *out, char *err, size_t errlen)
{
	if (get_time(v, "ts", out, err, errlen) != 0)
		return -1;
	if (*out < EVENT_TS_MIN)
		return bad(err, errlen, "field \"%s\" is 0 (1970-01-01T00:00:00Z), which means no time; the earliest is 1", "ts");
	return 0;
}

static int get_money(json_t *v, int64_t *fen, char *err, size_t errlen)
{
	int rc;
	if (json_is_integer(v) || json_is_real(v))
		rc = money_from_double(json_number_value(v), fen);
	else if (json_is_string(v))
		rc = money_parse(json_string_value(v), fen);
	else
		return bad(err, errlen, "field \"%s\" must be a number or a decimal string", "amount");
	if (rc != 0 || *fen < 0)
		return bad(err, errlen, "bad money in \"%s\" (yuan, at most two decimals, not negative)", "amount");
	return 0;
}

/* Phones: spaces and dashes dropped, a +86/0086 country prefix removed,
 * digits only; 13 digits starting 86 are the country code written
 * without + or 00 before an 11-digit mobile number. */
int event_phone_normalise(const char *in, char *out, size_t outlen)
{
	size_t n = 0;
	const char *p = in;
	if (strncmp(p, "+86", 3) == 0)
		p += 3;
	else if (strncmp(p, "0086", 4) == 0)
		p += 4;
	int prefixed = p != in;
	for (; *p; p++) {
		if (*p == ' ' || *p == '-')
			continue;
		if (!isdigit((unsigned char)*p) || n + 1 >= outlen)
			return -1;
		out[n++] = *p;
	}
	out[n] = '\0';
	if (!prefixed && n == 13 && strncmp(out, "86", 2) == 0) {
		memmove(out, out + 2, 12); /* 11 digits and the NUL */
		n = 11;
	}
	return n >= 5 ? 0 : -1;
}

int event_ident_value(const struct idkind *k, const char *raw, char *out, size_t outlen, char *err, size_t errlen)
{
	char norm[40];
	const char *v = raw;
	if (strcmp(k->name, "phone") == 0) {
		if (event_phone_normalise(raw, norm, sizeof norm) != 0)
			return bad(err, errlen, "bad phone number \"%.40s\"", raw);
		v = norm;
	}
	if (k->hash) {
		const char *key = idhash_key();
		if (!key || idhash(key, v, out, outlen) != 0)
			return bad(err, errlen, "cannot hash identifier \"%s\" (is $SMR_HASH_KEY set?)", k->name);
		return 0;
	}
	if (strlen(v) >= outlen)
		return bad(err, errlen, "identifier \"%s\" is too long", k->name);
	memcpy(out, v, strlen(v) + 1);
	return 0;
}

/* A placeholder value: kept aside (in its stored form, so a hashed kind is
 * never logged in clear) for conflict_log, never linked. */
static int add_blocked(struct event *ev, const struct idkind *k, const char *value, char *err, size_t errlen)
{
	char stored[72];
	if (k->hash) {
		if (event_ident_value(k, value, stored, sizeof stored, err, errlen) != 0)
			snprintf(stored, sizeof stored, "(hashed)"); /* a blank phone cannot be normalised */
		value = stored;
	}
	if (ev->nblocked == EVENT_MAX_IDS)
		return 0;
	struct blocked_ident *b = &ev->blocked[ev->nblocked++];
	b->kind = k;
	snprintf(b->value, sizeof b->value, "%s", value);
	return 0;
}

static int add_ident(struct event *ev, const struct idkind *k, json_t *v, char *err, size_t errlen)
{
	if (!v || json_is_null(v))
		return 0;
	if (ev->nids == EVENT_MAX_IDS)
		return bad(err, errlen, "too many identifiers%s", "");
	struct ident *id = &ev->ids[ev->nids];
	id->kind = k;
	if (json_is_integer(v)) {
		snprintf(id->valbuf, sizeof id->valbuf, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		id->value = id->valbuf;
	} else if (json_is_string(v)) {
		id->value = json_string_value(v);
		if (!*id->value)
			return 0; /* empty = absent */
		if (json_string_length(v) > EVENT_VALUE_MAX)
			return bad(err, errlen, "identifier \"%s\" is too long", k->name);
	} else {
		return bad(err, errlen, "identifier \"%s\" must be a string", k->name);
	}
	if (idkind_blocked(k, id->value))
		return add_blocked(ev, k, id->value, err, errlen);
	if (strcmp(k->name, "phone") == 0 || k->hash) {
		char tmp[sizeof id->valbuf];
		if (event_ident_value(k, id->value, tmp, sizeof tmp, err, errlen) != 0)
			return -1;
		memcpy(id->valbuf, tmp, sizeof tmp);
		id->value = id->valbuf;
	}
	for (int i = 0; i < ev->nids; i++)
		if (ev->ids[i].kind == k && strcmp(ev->ids[i].value, id->value) == 0)
			return 0; /* the same identifier twice */
	ev->nids++;
	return 0;
}

static int bad_blocked(const struct event *ev, char *err, size_t errlen)
{
	const struct blocked_ident *b = &ev->blocked[0];
	snprintf(err, errlen, "no usable identifier: %s \"%.60s\" is a placeholder (blocked value)%s", b->kind->name,
	         b->value, ev->nblocked > 1 ? ", and so are the others" : "");
	return -1;
}

static int get_identifiers(json_t *obj, const struct rules *r, struct event *ev, char *err, size_t errlen)
{
	for (size_t i = 0; i < r->nkinds; i++)
		if (add_ident(ev, &r->kinds[i], json_object_get(obj, r->kinds[i].name), err, errlen) != 0)
			return -1;
	json_t *ids = json_object_get(obj, "ids");
	if (ids && !json_is_null(ids)) {
		const char *key;
		json_t *v;
		if (!json_is_object(ids))
			return bad(err, errlen, "field \"%s\" must be an object of kind: value", "ids");
		json_object_foreach(ids, key, v) {
			const struct idkind *k = rules_idkind(r, key);
			if (!k)
				return bad(err, errlen, "unknown identifier kind \"%s\" (declare it with an identity line in the rules)", key);
			if (add_ident(ev, k, v, err, errlen) != 0)
				return -1;
		}
	}
	if (ev->nids == 0 && ev->nblocked > 0)
		return bad_blocked(ev, err, errlen);
	if (ev->nids == 0)
		return bad(err, errlen, "no identifier (need one of unionid, openid, external_userid, phone, member_id, cookie_id, anon_id%s)", r->nkinds > 7 ? ", ..." : "");
	return 0;
}

static int get_id(json_t *obj, struct event *ev, char *err, size_t errlen)
{
	json_t *v = json_object_get(obj, "id");
	if (!v || json_is_null(v))
		return bad(err, errlen, "missing field \"%s\"", "id");
	if (json_is_integer(v)) {
		snprintf(ev->idbuf, sizeof ev->idbuf, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		ev->id = ev->idbuf;
		return 0;
	}
	if (!json_is_string(v))
		return bad(err, errlen, "field \"%s\" must be a string", "id");
	ev->id = json_string_value(v);
	if (!*ev->id)
		return bad(err, errlen, "missing field \"%s\"", "id");
	if (json_string_length(v) > EVENT_ID_MAX)
		return bad(err, errlen, "field \"%s\" is too long", "id");
	return 0;
}

/* props: the "props" object plus every top-level field that is neither
 * core nor an identifier. */
static int get_props(json_t *obj, const struct rules *r, struct event *ev, char *err, size_t errlen)
{
	json_t *p = json_object_get(obj, "props");
	if (p && !json_is_null(p) && !json_is_object(p))
		return bad(err, errlen, "field \"%s\" must be an object", "props");
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v) {
		if (event_field_reserved(key) || rules_idkind(r, key) || json_is_null(v))
			continue;
		if (!ev->props)
			ev->props = p && json_is_object(p) ? json_deep_copy(p) : json_object();
		json_object_set(ev->props, key, v);
	}
	if (!ev->props && p && json_is_object(p) && json_object_size(p) > 0)
		ev->props = json_incref(p);
	/* Property names become attribute names, which SQLite's JSON operators
	 * would read as paths: "" or "$..." could make the whole batch fail
	 * (found by fuzzing). */
	json_object_foreach(ev->props, key, v) {
		if (!*key || *key == '$')
			return bad(err, errlen, "property name \"%s\" is empty or starts with $", key);
	}
	return 0;
}

int event_from_json(json_t *obj, const struct rules *r, struct event *ev, char *err, size_t errlen)
{
	memset(ev, 0, sizeof *ev);
	if (!json_is_object(obj))
		return bad(err, errlen, "record is not a JSON object%s", "");
	if (get_id(obj, ev, err, errlen) != 0)
		return -1;
	json_t *v = json_object_get(obj, "type");
	if (!v || json_is_null(v) || (json_is_string(v) && !*json_string_value(v)))
		return bad(err, errlen, "missing field \"%s\"", "type");
	if (!json_is_string(v) || !valid_type(json_string_value(v)))
		return bad(err, errlen, "field \"%s\" must be a lower-case name like add_cart", "type");
	ev->type = json_string_value(v);
	v = json_object_get(obj, "ts");
	if (!v || json_is_null(v) || (json_is_string(v) && !*json_string_value(v)))
		return bad(err, errlen, "missing field \"%s\"", "ts");
	if (get_ts(v, &ev->ts, err, errlen) != 0)
		return -1;
	if (opt_string(obj, "item", &ev->item, err, errlen) || opt_string(obj, "channel", &ev->channel, err, errlen) ||
	    opt_string(obj, "text", &ev->text, err, errlen) || opt_string(obj, "group_id", &ev->group_id, err, errlen) ||
	    opt_string(obj, "staff", &ev->staff, err, errlen))
		return -1;
	v = json_object_get(obj, "amount");
	if (v && !json_is_null(v) && !(json_is_string(v) && !*json_string_value(v))) {
		if (get_money(v, &ev->amount, err, errlen) != 0)
			return -1;
		ev->has_amount = 1;
	}
	v = json_object_get(obj, "expires");
	if (v && !json_is_null(v) && !(json_is_string(v) && !*json_string_value(v))) {
		if (get_time(v, "expires", &ev->expires, err, errlen) != 0)
			return -1;
		ev->has_expires = 1;
	}
	if ((strcmp(ev->type, "order") == 0 || strcmp(ev->type, "refund") == 0) && !ev->has_amount)
		return bad(err, errlen, "%s needs \"amount\"", ev->type);
	if (strcmp(ev->type, "message") == 0 && !ev->text)
		return bad(err, errlen, "%s needs \"text\"", ev->type);
	if (get_identifiers(obj, r, ev, err, errlen) != 0 || get_props(obj, r, ev, err, errlen) != 0) {
		event_clear(ev);
		return -1;
	}
	return 0;
}

void event_clear(struct event *ev)
{
	if (ev->props)
		json_decref(ev->props);
	ev->props = NULL;
}
