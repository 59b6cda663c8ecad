#include "mapping.h"
#include "err.h"
#include "regex.h"
#include "ruleexpr.h"
#include "utf8.h"
#include "tstamp.h"

#include <assert.h>
#include <ctype.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WORDS_MAX 16

struct column_map {
	char *column;
	char *field;            /* an event field, an identifier kind, or props.KEY */
};

struct constant {
	char *field;
	char *value;
};

struct mapping {
	char *name;
	struct column_map *cols;
	size_t ncols, capcols;
	struct constant *consts;
	size_t nconsts, capconsts;
	char **id_cols;         /* the event id derived from these columns */
	size_t nid;
	char *also_type;        /* a second event of this type ... */
	char *also_column;      /* ... when this column ... */
	const struct regex *also_re;    /* ... matches */
};

/* Event fields a column may fill, beside identifier kinds and props.KEY. */
static const char *const event_fields[] = {
	"id", "type", "ts", "item", "amount", "channel", "text", "expires",
	"group_id", "staff", NULL,
};

static int is_event_field(const char *f)
{
	for (const char *const *p = event_fields; *p; p++)
		if (strcmp(*p, f) == 0)
			return 1;
	return 0;
}

struct words {
	char *w[WORDS_MAX];
	int col[WORDS_MAX];
	int quoted[WORDS_MAX];
	int n;
};

/* Split LINE in place into words; a word in double quotes may hold spaces
 * (a column such as "实付金额 (元)"). Columns count characters of ORIG,
 * LINE as it was. Returns the column of an unclosed quote, else 0. */
static int split(char *line, const char *orig, struct words *ws)
{
	char *p = line;
	ws->n = 0;
	while (*p && ws->n < WORDS_MAX) {
		while (isspace((unsigned char)*p))
			p++;
		if (!*p || *p == '#')
			break;
		ws->col[ws->n] = utf8_column(orig, (size_t)(p - line));
		if (*p == '"') {
			char *end = strchr(p + 1, '"');
			if (!end)
				return ws->col[ws->n];
			*end = '\0';
			ws->quoted[ws->n] = 1;
			ws->w[ws->n++] = p + 1;
			p = end + 1;
			continue;
		}
		ws->quoted[ws->n] = 0;
		ws->w[ws->n++] = p;
		while (*p && !isspace((unsigned char)*p))
			p++;
		if (*p)
			*p++ = '\0';
	}
	return 0;
}

struct parse {
	const struct rules *r;
	struct mapping *m;
	int line;
	int *errors;
};

static void bad(struct parse *ps, const struct words *ws, int i, const char *fmt, const char *arg)
{
	rules_error(ps->r->file, ps->line, i < ws->n ? ws->col[i] : 1, fmt, arg);
	(*ps->errors)++;
}

static int field_ok(const struct rules *r, const char *f)
{
	if (strncmp(f, "props.", 6) == 0)
		return f[6] != '\0';
	return is_event_field(f) || rules_idkind(r, f) != NULL;
}

static void parse_line(struct parse *ps, struct words *ws)
{
	struct mapping *m = ps->m;
	const char *kw = ws->w[0];
	if (strcmp(kw, "column") == 0) {
		if (ws->n != 3) {
			bad(ps, ws, 0, "column needs: column \"NAME\" FIELD%s", "");
		} else if (!field_ok(ps->r, ws->w[2])) {
			bad(ps, ws, 2, "\"%s\" is not an event field, an identifier kind or props.KEY", ws->w[2]);
		} else {
			m->cols = xgrow(m->cols, &m->capcols, m->ncols + 1, sizeof *m->cols);
			m->cols[m->ncols++] = (struct column_map){ xstrdup(ws->w[1]), xstrdup(ws->w[2]) };
		}
	} else if (strcmp(kw, "set") == 0) {
		if (ws->n != 3) {
			bad(ps, ws, 0, "set needs: set FIELD VALUE%s", "");
		} else if (!field_ok(ps->r, ws->w[1])) {
			bad(ps, ws, 1, "\"%s\" is not an event field, an identifier kind or props.KEY", ws->w[1]);
		} else {
			m->consts = xgrow(m->consts, &m->capconsts, m->nconsts + 1, sizeof *m->consts);
			m->consts[m->nconsts++] = (struct constant){ xstrdup(ws->w[1]), xstrdup(ws->w[2]) };
		}
	} else if (strcmp(kw, "id") == 0) {
		if (ws->n < 2 || m->nid) {
			bad(ps, ws, 0, m->nid ? "one id line per source%s" : "id needs the columns it is made of%s", "");
			return;
		}
		m->id_cols = xcalloc((size_t)ws->n - 1, sizeof *m->id_cols);
		for (int i = 1; i < ws->n; i++)
			m->id_cols[m->nid++] = xstrdup(ws->w[i]);
	} else if (strcmp(kw, "also") == 0) {
		char err[200];
		if (ws->n != 6 || strcmp(ws->w[2], "when") != 0 || strcmp(ws->w[4], "~") != 0) {
			bad(ps, ws, 0, "also needs: also TYPE when \"COLUMN\" ~ \"REGEX\"%s", "");
		} else if (m->also_type) {
			bad(ps, ws, 0, "one also line per source%s", "");
		} else if (!(m->also_re = regex_get(ws->w[5], err, sizeof err))) {
			bad(ps, ws, 5, "%s", err);
		} else {
			m->also_type = xstrdup(ws->w[1]);
			m->also_column = xstrdup(ws->w[3]);
		}
	} else {
		bad(ps, ws, 0, "unknown source statement \"%s\" (column, set, id, also)", kw);
	}
}

static struct mapping *parse_block(const struct rules *r, const struct rule_stmt *st, int *errors)
{
	struct mapping *m = xcalloc(1, sizeof *m);
	struct parse ps = { .r = r, .m = m, .line = st->line, .errors = errors };
	char *text = xstrdup(st->text), *next;
	for (char *ln = text; ln; ln = next, ps.line++) {
		next = strchr(ln, '\n');
		if (next)
			*next++ = '\0';
		struct words ws;
		char *orig = xstrdup(ln);
		int open = split(ln, orig, &ws);
		free(orig);
		if (open) {
			rules_error(r->file, ps.line, open, "a quoted name has no closing quote%s", "");
			(*errors)++;
			continue;
		}
		if (ws.n == 0)
			continue;
		if (ps.line == st->line) {     /* "source NAME" */
			if (ws.n != 2 || ws.quoted[1])
				bad(&ps, &ws, 1, "source needs a name: source NAME%s", "");
			else
				m->name = xstrdup(ws.w[1]);
			continue;
		}
		if (ws.n == 1 && strcmp(ws.w[0], "end") == 0)
			break;
		parse_line(&ps, &ws);
	}
	free(text);
	if (!m->name)
		m->name = xstrdup("");
	return m;
}

struct mapping *mapping_parse(const struct rules *r, const char *name, int *errors)
{
	struct mapping *found = NULL;
	char **names = xcalloc(r->nstmts + 1, sizeof *names);
	size_t nnames = 0;
	for (size_t i = 0; i < r->nstmts; i++) {
		if (strcmp(r->stmts[i].keyword, "source") != 0)
			continue;
		struct mapping *m = parse_block(r, &r->stmts[i], errors);
		for (size_t k = 0; k < nnames; k++)
			if (m->name[0] && strcmp(names[k], m->name) == 0) {
				rules_error(r->file, r->stmts[i].line, 1, "source \"%s\" is defined twice", m->name);
				(*errors)++;
			}
		names[nnames++] = xstrdup(m->name);
		if (name && !found && strcmp(m->name, name) == 0)
			found = m;
		else
			mapping_free(m);
	}
	for (size_t k = 0; k < nnames; k++)
		free(names[k]);
	free(names);
	return found;
}

void mapping_free(struct mapping *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->ncols; i++) {
		free(m->cols[i].column);
		free(m->cols[i].field);
	}
	for (size_t i = 0; i < m->nconsts; i++) {
		free(m->consts[i].field);
		free(m->consts[i].value);
	}
	for (size_t i = 0; i < m->nid; i++)
		free(m->id_cols[i]);
	free(m->cols);
	free(m->consts);
	free(m->id_cols);
	free(m->also_type);
	free(m->also_column);
	free(m->name);
	free(m);
}

/* ---- values ------------------------------------------------------------ */

int mapping_time(const char *s, int64_t *out, char *err, size_t errlen)
{
	int y, mo, d, h = 0, mi = 0, sec = 0, n = 0;
	char iso[32];
	while (isspace((unsigned char)*s))
		s++;
	char *end;
	double serial = strtod(s, &end);
	if (end != s && *end == '\0' && strchr(s, '.') && serial >= 1 && serial < 100000) {
		/* Excel: days since 1899-12-30, local time; to the second */
		long days = (long)serial;
		long secs = (long)((serial - (double)days) * 86400 + 0.5);
		*out = tstamp_local_to_utc(1899, 12, 30 + (int)days, 0, 0, (int)secs);
		return 0;
	}
	if (end != s && *end == '\0' && strspn(s, "0123456789") == strlen(s) && strlen(s) < 6) {
		*out = tstamp_local_to_utc(1899, 12, 30 + atoi(s), 0, 0, 0);
		return 0;
	}
	if (sscanf(s, "%4d/%2d/%2d%n", &y, &mo, &d, &n) == 3 ||
	    (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) == 3 && (s[n] == ' ' || s[n] == '\0'))) {
		const char *t = s + n;
		int m2 = 0;
		if (*t == ' ' && sscanf(t, " %2d:%2d%n", &h, &mi, &m2) == 2) {
			t += m2;
			if (*t == ':' && sscanf(t, ":%2d%n", &sec, &m2) == 1)
				t += m2;
		}
		if (*t != '\0') {
			snprintf(err, errlen, "not a time: \"%.60s\"", s);
			return -1;
		}
		snprintf(iso, sizeof iso, "%04d-%02d-%02d %02d:%02d:%02d", y, mo, d, h, mi, sec);
		return tstamp_parse(iso, out, err, errlen);
	}
	return tstamp_parse(s, out, err, errlen);
}

int mapping_money(const char *s, char *out, size_t outlen)
{
	static const char *const noise[] = {",", " ", "\t", "¥", "￥", "元", "RMB", "CNY", NULL};
	size_t n = 0;
	while (*s) {
		const char *const *w = noise;
		while (*w && strncmp(s, *w, strlen(*w)) != 0)
			w++;
		if (*w) {
			s += strlen(*w);
			continue;
		}
		if (n + 1 >= outlen)
			return -1;
		out[n++] = *s++;
	}
	out[n] = '\0';
	return n ? 0 : -1;
}

/* "NAME:" + the first 32 hex digits of SHA-256 over the columns' values,
 * each followed by a unit separator (0x1f): stable across runs and
 * versions, so that re-ingesting an export finds its duplicates. */
static void derived_id(const struct mapping *m, json_t *row, char *out, size_t outlen)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	for (size_t i = 0; ok && i < m->nid; i++) {
		json_t *v = json_object_get(row, m->id_cols[i]);
		const char *s = json_is_string(v) ? json_string_value(v) : "";
		ok = EVP_DigestUpdate(ctx, s, strlen(s)) && EVP_DigestUpdate(ctx, "\x1f", 1);
	}
	ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	if (!ok)
		smr_die(SMR_FATAL, "SHA-256 failed");
	size_t n = (size_t)snprintf(out, outlen, "%s:", m->name);
	for (unsigned i = 0; i < 16 && n + 2 < outlen; i++, n += 2)
		snprintf(out + n, outlen - n, "%02x", md[i]);
}

/* Set FIELD of EV from the text S, converted as the field needs. */
static int set_field(json_t *ev, const char *field, const char *s, char *err, size_t errlen)
{
	if (strcmp(field, "ts") == 0 || strcmp(field, "expires") == 0) {
		int64_t t;
		char why[160];
		if (mapping_time(s, &t, why, sizeof why) != 0) {
			snprintf(err, errlen, "%s: %s", field, why);
			return -1;
		}
		json_object_set_new(ev, field, json_integer(t));
	} else if (strcmp(field, "amount") == 0) {
		char money[64];
		if (mapping_money(s, money, sizeof money) != 0) {
			snprintf(err, errlen, "amount: not money: \"%.60s\"", s);
			return -1;
		}
		json_object_set_new(ev, field, json_string(money));
	} else if (strncmp(field, "props.", 6) == 0) {
		json_t *props = json_object_get(ev, "props");
		if (!props) {
			props = json_object();
			json_object_set_new(ev, "props", props);
		}
		json_object_set_new(props, field + 6, json_string(s));
	} else {
		json_object_set_new(ev, field, json_string(s));
	}
	return 0;
}

static int is_mapped(const struct mapping *m, const char *column)
{
	for (size_t i = 0; i < m->ncols; i++)
		if (strcmp(m->cols[i].column, column) == 0)
			return 1;
	return 0;
}

const char *mapping_missing_column(const struct mapping *m, int (*has_column)(const void *, const char *),
                                   const void *ctx)
{
	for (size_t i = 0; i < m->ncols; i++)
		if (!has_column(ctx, m->cols[i].column))
			return m->cols[i].column;
	for (size_t i = 0; i < m->nid; i++)
		if (!has_column(ctx, m->id_cols[i]))
			return m->id_cols[i];
	if (m->also_column && !has_column(ctx, m->also_column))
		return m->also_column;
	return NULL;
}

static int build(const struct mapping *m, json_t *row, json_t *ev, char *err, size_t errlen)
{
	for (size_t i = 0; i < m->nconsts; i++)
		if (set_field(ev, m->consts[i].field, m->consts[i].value, err, errlen) != 0)
			return -1;
	for (size_t i = 0; i < m->ncols; i++) {
		json_t *v = json_object_get(row, m->cols[i].column);
		if (json_is_string(v) && *json_string_value(v) &&
		    set_field(ev, m->cols[i].field, json_string_value(v), err, errlen) != 0)
			return -1;
	}
	/* what no line names is kept, not lost: in props under its column */
	const char *key;
	json_t *v;
	json_object_foreach(row, key, v) {
		if (!is_mapped(m, key) && json_is_string(v) && *json_string_value(v)) {
			char field[300];
			snprintf(field, sizeof field, "props.%s", key);
			if (!json_object_get(json_object_get(ev, "props"), key))
				set_field(ev, field, json_string_value(v), err, errlen);
		}
	}
	if (m->nid && !json_object_get(ev, "id")) {
		char id[256];
		derived_id(m, row, id, sizeof id);
		json_object_set_new(ev, "id", json_string(id));
	}
	return 0;
}

int mapping_apply(const struct mapping *m, json_t *row, json_t **out, char *err, size_t errlen)
{
	if (!json_is_object(row)) {
		snprintf(err, errlen, "a source mapping needs records with named columns");
		return -1;
	}
	json_t *ev = json_object();
	if (build(m, row, ev, err, errlen) != 0) {
		json_decref(ev);
		return -1;
	}
	out[0] = ev;
	if (!m->also_type)
		return 1;
	json_t *cell = json_object_get(row, m->also_column);
	const char *s = json_is_string(cell) ? json_string_value(cell) : "";
	if (regex_match(m->also_re, s, strlen(s)) <= 0)
		return 1;
	json_t *second = json_deep_copy(ev);
	json_t *id = json_object_get(ev, "id");
	if (!second)
		smr_die(SMR_FATAL, "out of memory");
	json_object_set_new(second, "type", json_string(m->also_type));
	if (json_is_string(id)) {
		char *sid = xasprintf("%s#%s", json_string_value(id), m->also_type);
		json_object_set_new(second, "id", json_string(sid));
		free(sid);
	}
	static_assert(MAPPING_EVENTS_MAX >= 2, "a row yields its event and one more");
	out[1] = second;
	return 2;
}

int mapping_events(const struct mapping *m, json_t *row, const struct rules *r, struct mapping_events *out,
                   char *err, size_t errlen)
{
	*out = (struct mapping_events){0};
	int n = mapping_apply(m, row, out->objs, err, errlen), ok = 0;
	assert(n <= MAPPING_EVENTS_MAX);
	while (n > 0 && ok < n && event_from_json(out->objs[ok], r, &out->evs[ok], err, errlen) == 0)
		ok++;
	if (n >= 0 && ok == n) {
		out->n = n;
		return 0;
	}
	for (int i = 0; i < ok; i++)
		event_clear(&out->evs[i]);
	for (int i = 0; i < n; i++)
		json_decref(out->objs[i]);
	*out = (struct mapping_events){0};
	return -1;
}

void mapping_events_clear(struct mapping_events *me)
{
	for (int i = 0; i < me->n; i++) {
		event_clear(&me->evs[i]);
		json_decref(me->objs[i]);
	}
	me->n = 0;
}
