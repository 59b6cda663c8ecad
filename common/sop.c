#include "sop.h"
#include "err.h"
#include "utf8.h"
#include "lex.h"
#include "tagrules.h"
#include "tstamp.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_WINDOW (7 * 86400)

/* The next word of *p (letters, digits, _ : - . / and non-ASCII). */
static size_t word(const char **p, char *out, size_t outlen)
{
	*p = lex_skip_space(*p);
	size_t n = 0;
	while ((*p)[n] && !isspace((unsigned char)(*p)[n]))
		n++;
	if (n == 0 || n >= outlen) {
		out[0] = '\0';
		return n ? (size_t)-1 : 0;
	}
	memcpy(out, *p, n);
	out[n] = '\0';
	*p += n;
	return n;
}

static int name_ok(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_-:.", *s) && (unsigned char)*s < 0x80)
			return 0;
	return 1;
}

struct ctx {
	const char *file;
	int line;
	const char *text;   /* the current line, for columns */
	int errors;
};

static void err_at(struct ctx *c, const char *at, const char *fmt, const char *arg)
{
	rules_error(c->file, c->line, at ? utf8_column(c->text, (size_t)(at - c->text)) : 1, fmt, arg);
	c->errors++;
}

void sop_step_key(char *out, size_t outlen, int day, int hour, int minute, const char *channel,
                  const char *content)
{
	snprintf(out, outlen, "%dd %02d:%02d %s %s", day, hour, minute, channel, content);
}

void sop_step_key_after(char *out, size_t outlen, int64_t after, const char *channel, const char *content)
{
	snprintf(out, outlen, "+%llds %s %s", (long long)after, channel, content);
}

/* The relative offset "+DURATION" of a step: 0 when it is one, -1 when
 * bad, 1 when W is not relative. */
static int step_after(const char *w, struct sop_step *st)
{
	if (w[0] != '+')
		return 1;
	if (tstamp_duration(w + 1, &st->after) != 0 || st->after <= 0 || st->after > 3650LL * 86400)
		return -1;
	st->relative = 1;
	return 0;
}

/* Whether two steps come at the same moment for every day 0. */
static int same_time(const struct sop_step *a, const struct sop_step *b)
{
	if (a->relative || b->relative)
		return a->relative && b->relative && a->after == b->after;
	return a->day == b->day && a->hour == b->hour && a->minute == b->minute;
}

/* step OFFSET HH:MM CHANNEL CONTENT [as NAME], or step +DURATION CHANNEL
 * CONTENT [as NAME] */
static void parse_step(struct ctx *c, struct sop *s, const char *p)
{
	struct sop_step st = {0};
	char w[SOP_NAME_MAX];
	const char *at = lex_skip_space(p);
	char *end;
	if (word(&p, w, sizeof w) == 0) {
		err_at(c, at, "step needs OFFSET TIME CHANNEL CONTENT, e.g. %s", "step 1d 12:00 private reminder");
		return;
	}
	int rel = step_after(w, &st);
	if (rel < 0) {
		err_at(c, at, "bad step offset \"%s\" (after day 0: +30m, +2h, +1d12h, up to 3650d)", w);
		return;
	}
	errno = 0;
	long d = rel ? strtol(w, &end, 10) : 0;
	if (rel && (end == w || (*end && strcmp(end, "d") != 0) || d < 0 || d > 3650 || errno)) {
		err_at(c, at, "bad step offset \"%s\" (days: 0d, 1d, 3d ..., or +30m after day 0)", w);
		return;
	}
	st.day = (int)d;
	at = lex_skip_space(p);
	if (rel && (word(&p, w, sizeof w) != 5 || !isdigit((unsigned char)w[0]) || !isdigit((unsigned char)w[1]) || w[2] != ':' ||
	    !isdigit((unsigned char)w[3]) || !isdigit((unsigned char)w[4]) ||
	    (st.hour = (w[0] - '0') * 10 + w[1] - '0') > 23 || (st.minute = (w[3] - '0') * 10 + w[4] - '0') > 59)) {
		err_at(c, at, "bad step time \"%s\" (local HH:MM)", w);
		return;
	}
	at = lex_skip_space(p);
	if (word(&p, st.channel, sizeof st.channel) == 0 || !name_ok(st.channel)) {
		err_at(c, at, "step needs a channel (private, moments, group:ID, ...)%s", "");
		return;
	}
	at = lex_skip_space(p);
	if (word(&p, st.content, sizeof st.content) == 0 || !name_ok(st.content)) {
		err_at(c, at, "step needs a content id%s", "");
		return;
	}
	if (st.relative)
		sop_step_key_after(st.key, sizeof st.key, st.after, st.channel, st.content);
	else
		sop_step_key(st.key, sizeof st.key, st.day, st.hour, st.minute, st.channel, st.content);
	at = lex_skip_space(p);
	if (word(&p, w, sizeof w) != 0) {
		if (strcmp(w, "as") != 0) {
			err_at(c, at, "unexpected \"%s\" after the step (a name is given as: as NAME)", at);
			return;
		}
		at = lex_skip_space(p);
		if (word(&p, st.key, sizeof st.key) == 0 || strlen(st.key) >= SOP_NAME_MAX || !name_ok(st.key) ||
		    *lex_skip_space(p)) {
			err_at(c, at, "step needs one name after \"as\"%s", "");
			return;
		}
	}
	st.line = c->line;
	for (size_t i = 0; i < s->nsteps; i++)
		if (strcmp(s->steps[i].key, st.key) == 0) {
			err_at(c, NULL, "two steps named \"%s\" in one sop", st.key);
			return;
		}
	for (size_t i = 0; i < s->nsteps; i++)
		if (same_time(&s->steps[i], &st) && strcmp(s->steps[i].channel, st.channel) == 0) {
			err_at(c, NULL, "two steps at the same time on the same channel (also line %s)", "above");
			return;
		}
	s->steps = xrealloc(s->steps, (s->nsteps + 1) * sizeof *s->steps);
	s->steps[s->nsteps++] = st;
}

/* Minutes from day 0's local midnight, a relative step as if day 0 were
 * midnight: an order for listing; the due order of an enrollment's steps
 * depends on its day 0 (see sopdue.c). */
static int64_t step_minutes(const struct sop_step *s)
{
	return s->relative ? s->after / 60 : ((int64_t)s->day * 24 + s->hour) * 60 + s->minute;
}

static int step_cmp(const void *a, const void *b)
{
	int64_t kx = step_minutes(a), ky = step_minutes(b);
	return (kx > ky) - (kx < ky);
}

static void parse_sop_line(struct ctx *c, struct sop *s, const char *line)
{
	char kw[32], w[SOP_NAME_MAX];
	const char *p = line, *at = lex_skip_space(line);
	if (word(&p, kw, sizeof kw) == 0)
		return;
	if (strcmp(kw, "trigger") == 0) {
		at = lex_skip_space(p);
		if (word(&p, s->trigger, sizeof s->trigger) == 0 || !tagrules_name_valid(s->trigger) || *lex_skip_space(p))
			err_at(c, at, "trigger needs one tag name%s", "");
	} else if (strcmp(kw, "exit") == 0) {
		for (;;) {
			at = lex_skip_space(p);
			size_t n = word(&p, w, sizeof w);
			if (n == 0)
				break;
			if (n == (size_t)-1 || !tagrules_name_valid(w)) {
				err_at(c, at, "bad tag name in exit%s", "");
				break;
			}
			s->exits = xrealloc(s->exits, (s->nexits + 1) * sizeof *s->exits);
			s->exits[s->nexits++] = xstrdup(w);
		}
	} else if (strcmp(kw, "on_leave") == 0) {
		at = lex_skip_space(p);
		word(&p, w, sizeof w);
		if (strcmp(w, "exit") == 0)
			s->exit_on_leave = 1;
		else if (strcmp(w, "stay") == 0)
			s->exit_on_leave = 0;
		else
			err_at(c, at, "on_leave is exit or stay%s", "");
	} else if (strcmp(kw, "window") == 0) {
		at = lex_skip_space(p);
		word(&p, w, sizeof w);
		if (tstamp_duration(w, &s->window) != 0 || s->window <= 0)
			err_at(c, at, "bad window \"%s\" (e.g. 7d)", w);
	} else if (strcmp(kw, "staff") == 0) {
		at = lex_skip_space(p);
		if (word(&p, s->staff, sizeof s->staff) == 0 || !name_ok(s->staff))
			err_at(c, at, "staff is owner or a staff account id%s", "");
	} else if (strcmp(kw, "priority") == 0 || strcmp(kw, "holdout") == 0) {
		int hold = kw[0] == 'h';
		at = lex_skip_space(p);
		word(&p, w, sizeof w);
		char *end;
		long v = strtol(w, &end, 10);
		if (end == w || (hold ? strcmp(end, "%") != 0 || v < 0 || v > 100 : *end || v < -1000 || v > 1000))
			err_at(c, at, hold ? "holdout is a percentage, e.g. 10%%%s" : "priority is an integer%s", "");
		else if (hold)
			s->holdout_pct = (int)v;
		else
			s->priority = (int)v;
	} else if (strcmp(kw, "step") == 0) {
		parse_step(c, s, p);
	} else {
		err_at(c, at, "unknown sop statement \"%s\"", kw);
	}
}

static void parse_sop(struct ctx *c, struct sops *all, const struct rule_stmt *st)
{
	struct sop s = {0};
	s.exit_on_leave = 1;
	s.window = DEFAULT_WINDOW;
	snprintf(s.staff, sizeof s.staff, "owner");
	s.line = st->line;
	char *text = xstrdup(st->text), *next;
	int lineno = st->line;
	for (char *line = text; line; line = next, lineno++) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		c->line = lineno;
		c->text = line;
		if (lineno == st->line) {
			const char *p = lex_skip_space(line) + 3;
			const char *at = lex_skip_space(p);
			if (word(&p, s.name, sizeof s.name) == 0 || !name_ok(s.name) || *lex_skip_space(p))
				err_at(c, at, "sop needs one name%s", "");
			continue;
		}
		if (strcmp(lex_skip_space(line), "end") == 0)
			break;
		parse_sop_line(c, &s, line);
	}
	free(text);
	c->line = st->line;
	c->text = st->text;
	if (!s.trigger[0])
		err_at(c, NULL, "sop %s has no trigger", s.name);
	if (s.nsteps == 0)
		err_at(c, NULL, "sop %s has no step", s.name);
	if (s.nsteps)
		qsort(s.steps, s.nsteps, sizeof *s.steps, step_cmp);
	for (size_t i = 0; i < all->nsops; i++)
		if (strcmp(all->sops[i].name, s.name) == 0)
			err_at(c, NULL, "sop %s is defined twice", s.name);
	all->sops = xrealloc(all->sops, (all->nsops + 1) * sizeof *all->sops);
	all->sops[all->nsops++] = s;
}

/* A "..." text with \" \\ \n escapes. */
static char *quoted(const char **pp)
{
	const char *p = *pp;
	if (*p != '"')
		return NULL;
	size_t cap = strlen(p), n = 0;
	char *out = xmalloc(cap + 1);
	for (p++; *p && *p != '"'; p++) {
		if (*p == '\\' && p[1]) {
			p++;
			out[n++] = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
		} else {
			out[n++] = *p;
		}
	}
	if (*p != '"') {
		free(out);
		return NULL;
	}
	out[n] = '\0';
	*pp = p + 1;
	return out;
}

/* content ID CHANNEL "TEXT" */
static void parse_content(struct ctx *c, struct sops *all, const struct rule_stmt *st)
{
	struct content ct = {0};
	c->line = st->line;
	c->text = st->text;
	const char *p = lex_skip_space(st->text) + 7, *at = lex_skip_space(p);
	if (word(&p, ct.id, sizeof ct.id) == 0 || !name_ok(ct.id)) {
		err_at(c, at, "content needs an id%s", "");
		return;
	}
	at = lex_skip_space(p);
	if (word(&p, ct.channel, sizeof ct.channel) == 0 || !name_ok(ct.channel)) {
		err_at(c, at, "content needs a channel%s", "");
		return;
	}
	p = lex_skip_space(p);
	at = p;
	ct.text = quoted(&p);
	if (!ct.text || *lex_skip_space(p)) {
		err_at(c, at, "content text must be one \"quoted string\"%s", "");
		free(ct.text);
		return;
	}
	ct.line = st->line;
	for (size_t i = 0; i < all->ncontents; i++)
		if (strcmp(all->contents[i].id, ct.id) == 0) {
			err_at(c, NULL, "content %s is defined twice", ct.id);
			free(ct.text);
			return;
		}
	all->contents = xrealloc(all->contents, (all->ncontents + 1) * sizeof *all->contents);
	all->contents[all->ncontents++] = ct;
}

const struct content *sops_content(const struct sops *s, const char *id)
{
	for (size_t i = 0; i < s->ncontents; i++)
		if (strcmp(s->contents[i].id, id) == 0)
			return &s->contents[i];
	return NULL;
}

const struct sop *sops_find(const struct sops *s, const char *name)
{
	for (size_t i = 0; i < s->nsops; i++)
		if (strcmp(s->sops[i].name, name) == 0)
			return &s->sops[i];
	return NULL;
}

struct sops *sops_parse(const struct rules *r)
{
	struct sops *all = xcalloc(1, sizeof *all);
	struct ctx c = {.file = r->file};
	for (size_t i = 0; i < r->nstmts; i++) {
		if (strcmp(r->stmts[i].keyword, "sop") == 0)
			parse_sop(&c, all, &r->stmts[i]);
		else if (strcmp(r->stmts[i].keyword, "content") == 0)
			parse_content(&c, all, &r->stmts[i]);
	}
	for (size_t i = 0; i < all->nsops; i++)
		for (size_t k = 0; k < all->sops[i].nsteps; k++) {
			const struct sop_step *st = &all->sops[i].steps[k];
			const struct content *ct = sops_content(all, st->content);
			c.line = st->line;
			c.text = "";
			if (!ct)
				err_at(&c, NULL, "step names unknown content \"%s\"", st->content);
			else if (strcmp(ct->channel, st->channel) != 0 && strcmp(ct->channel, "any") != 0)
				err_at(&c, NULL, "content \"%s\" is for another channel", ct->id);
		}
	all->errors = c.errors;
	return all;
}

void sops_free(struct sops *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nsops; i++) {
		for (size_t k = 0; k < s->sops[i].nexits; k++)
			free(s->sops[i].exits[k]);
		free(s->sops[i].exits);
		free(s->sops[i].steps);
	}
	free(s->sops);
	for (size_t i = 0; i < s->ncontents; i++)
		free(s->contents[i].text);
	free(s->contents);
	free(s);
}

int64_t sop_step_due(const struct sop_step *step, int64_t day0)
{
	if (step->relative)
		return day0 + step->after;
	struct tm tm;
	tstamp_utc_to_local(day0, &tm);
	/* mktime normalises tm_mday past the month's end */
	return tstamp_local_to_utc(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday + step->day, step->hour, step->minute, 0);
}
