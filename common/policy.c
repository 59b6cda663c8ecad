#include "policy.h"
#include "err.h"
#include "tagrules.h"
#include "tstamp.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hhmm(const char *s, int *minutes)
{
	int h, m;
	char tail;
	if (sscanf(s, "%2d:%2d%c", &h, &m, &tail) != 2 || strlen(s) != 5 || h > 23 || m > 59 || h < 0 || m < 0)
		return -1;
	*minutes = h * 60 + m;
	return 0;
}

/* "2/day", "5/week", "1/hour", "3/48h" */
static int cap_spec(const char *s, struct cap *c)
{
	char *slash;
	long n = strtol(s, &slash, 10);
	if (slash == s || *slash != '/' || n < 1 || n > 1000)
		return -1;
	const char *per = slash + 1;
	c->n = (int)n;
	snprintf(c->spec, sizeof c->spec, "%.31s", s);
	if (strcmp(per, "hour") == 0)
		c->period = 3600;
	else if (strcmp(per, "day") == 0)
		c->period = 86400;
	else if (strcmp(per, "week") == 0)
		c->period = 7 * 86400;
	else if (tstamp_duration(per, &c->period) != 0 || c->period <= 0)
		return -1;
	return 0;
}

struct line {
	const char *file;
	int lineno;
	char *text;
	char **w;               /* every word of the line */
	int *col;
	int n, cap;
};

static void split(struct line *l)
{
	l->n = 0;
	char *p = l->text;
	while (*p) {
		while (isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		if (l->n == l->cap) {
			l->cap = l->cap ? l->cap * 2 : 16;
			l->w = xrealloc(l->w, (size_t)l->cap * sizeof *l->w);
			l->col = xrealloc(l->col, (size_t)l->cap * sizeof *l->col);
		}
		l->col[l->n] = (int)(p - l->text) + 1;
		l->w[l->n++] = p;
		while (*p && !isspace((unsigned char)*p))
			p++;
		if (*p)
			*p++ = '\0';
	}
}

static void bad(struct policy *p, struct line *l, int i, const char *fmt, const char *arg)
{
	rules_error(l->file, l->lineno, i < l->n ? l->col[i] : 1, fmt, arg);
	p->errors++;
}

static void parse_line(struct policy *p, struct line *l)
{
	const char *kw = l->w[0];
	if (strcmp(kw, "quiet") == 0) {
		char a[8], b[8];
		if (l->n != 2 || sscanf(l->w[1], "%7[0-9:]-%7[0-9:]", a, b) != 2 || hhmm(a, &p->quiet_start) ||
		    hhmm(b, &p->quiet_end) || p->quiet_start == p->quiet_end)
			bad(p, l, 1, "quiet needs local HH:MM-HH:MM, e.g. 22:00-08:00%s", "");
		else
			p->has_quiet = 1;
	} else if (strcmp(kw, "cap") == 0) {
		if (l->n < 3) {
			bad(p, l, 0, "cap needs a channel (or any) and limits like 2/day%s", "");
			return;
		}
		for (int i = 2; i < l->n; i++) {
			struct cap c = {0};
			snprintf(c.channel, sizeof c.channel, "%s", l->w[1]);
			if (cap_spec(l->w[i], &c) != 0)
				bad(p, l, i, "bad cap \"%s\" (N/hour, N/day, N/week or N/DURATION)", l->w[i]);
			else if (p->ncaps == POLICY_MAX)
				bad(p, l, i, "too many caps: at most %s in a policy", POLICY_MAX_TEXT);
			else
				p->caps[p->ncaps++] = c;
		}
	} else if (strcmp(kw, "dedup") == 0) {
		if (l->n != 2 || tstamp_duration(l->w[1], &p->dedup) != 0)
			bad(p, l, 1, "dedup needs a duration, e.g. 30d%s", "");
	} else if (strcmp(kw, "dnd") == 0) {
		if (l->n < 3 || strcmp(l->w[1], "tag") != 0) {
			bad(p, l, 1, "dnd needs: tag TAG ...%s", "");
			return;
		}
		for (int i = 2; i < l->n; i++) {
			if (!tagrules_name_valid(l->w[i])) {
				bad(p, l, i, "bad tag name \"%s\"", l->w[i]);
				continue;
			}
			if (p->ndnd % 16 == 0)
				p->dnd = xrealloc(p->dnd, (p->ndnd + 16) * sizeof *p->dnd);
			p->dnd[p->ndnd++] = xstrdup(l->w[i]);
		}
	} else if (strcmp(kw, "fatigue") == 0) {
		char *end;
		long n = l->n == 3 ? strtol(l->w[1], &end, 10) : 0;
		if (l->n != 3 || *end || n < 1 || n > 100 || tstamp_duration(l->w[2], &p->fatigue_window) != 0)
			bad(p, l, 1, "fatigue needs N DURATION, e.g. fatigue 3 7d%s", "");
		else
			p->fatigue_n = (int)n;
	} else {
		bad(p, l, 0, "unknown policy statement \"%s\"", kw);
	}
}

struct policy *policy_parse(const struct rules *r)
{
	struct policy *p = xcalloc(1, sizeof *p);
	int seen = 0;
	for (size_t i = 0; i < r->nstmts; i++) {
		if (strcmp(r->stmts[i].keyword, "policy") != 0)
			continue;
		if (seen++) {
			rules_error(r->file, r->stmts[i].line, 1, "only one policy block is allowed%s", "");
			p->errors++;
		}
		char *text = xstrdup(r->stmts[i].text), *next;
		int lineno = r->stmts[i].line;
		for (char *ln = text; ln; ln = next, lineno++) {
			next = strchr(ln, '\n');
			if (next)
				*next++ = '\0';
			if (lineno == r->stmts[i].line)
				continue; /* "policy" */
			struct line l = {.file = r->file, .lineno = lineno, .text = ln};
			split(&l);
			int end = l.n == 1 && strcmp(l.w[0], "end") == 0;
			if (l.n > 0 && !end)
				parse_line(p, &l);
			free(l.w);
			free(l.col);
			if (end)
				break;
		}
		free(text);
	}
	return p;
}

void policy_free(struct policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->ndnd; i++)
		free(p->dnd[i]);
	free(p->dnd);
	free(p);
}

int64_t policy_quiet_end(const struct policy *p, int64_t t)
{
	if (!p->has_quiet)
		return t;
	struct tm tm;
	tstamp_utc_to_local(t, &tm);
	int m = tm.tm_hour * 60 + tm.tm_min;
	int in = p->quiet_start < p->quiet_end ? m >= p->quiet_start && m < p->quiet_end
	                                       : m >= p->quiet_start || m < p->quiet_end;
	if (!in)
		return t;
	int day = tm.tm_mday + (p->quiet_start > p->quiet_end && m >= p->quiet_start ? 1 : 0);
	return tstamp_local_to_utc(tm.tm_year + 1900, tm.tm_mon + 1, day, p->quiet_end / 60, p->quiet_end % 60, 0);
}
