#include "render.h"
#include "err.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct buf {
	char *s;
	size_t len, cap;
};

static void put(struct buf *b, const char *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->s = xrealloc(b->s, b->cap);
	}
	memcpy(b->s + b->len, p, n);
	b->len += n;
	b->s[b->len] = '\0';
}

/* The value of variable NAME as text, or NULL if missing or empty. */
static const char *lookup(json_t *vars, const char *name, char *num, size_t numlen)
{
	json_t *v = json_object_get(vars, name);
	if (json_is_string(v))
		return *json_string_value(v) ? json_string_value(v) : NULL;
	if (json_is_integer(v)) {
		snprintf(num, numlen, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return num;
	}
	if (json_is_real(v)) {
		snprintf(num, numlen, "%g", json_real_value(v));
		return num;
	}
	return NULL;
}

char *render(const char *tmpl, json_t *vars, char *err, size_t errlen)
{
	struct buf b = {0};
	put(&b, "", 0);
	const char *p = tmpl;
	for (;;) {
		const char *open = strstr(p, "{{");
		if (!open) {
			put(&b, p, strlen(p));
			return b.s;
		}
		put(&b, p, (size_t)(open - p));
		const char *close = strstr(open + 2, "}}");
		if (!close) {
			snprintf(err, errlen, "template has \"{{\" without \"}}\"");
			free(b.s);
			return NULL;
		}
		char spec[256];
		size_t n = (size_t)(close - open - 2);
		if (n >= sizeof spec)
			n = sizeof spec - 1;
		memcpy(spec, open + 2, n);
		spec[n] = '\0';
		char *bar = strchr(spec, '|');
		if (bar)
			*bar = '\0';
		char *name = spec;
		while (*name == ' ')
			name++;
		for (char *e = name + strlen(name); e > name && e[-1] == ' ';)
			*--e = '\0';
		char *fallback = bar ? bar + 1 : NULL;
		if (fallback) { /* "{{ nickname | 亲 }}" reads as "亲" */
			while (*fallback == ' ')
				fallback++;
			for (char *e = fallback + strlen(fallback); e > fallback && e[-1] == ' ';)
				*--e = '\0';
		}
		char num[32];
		const char *val = lookup(vars, name, num, sizeof num);
		if (val && strlen(val) > RENDER_VAR_MAX) {
			snprintf(err, errlen, "variable \"%.60s\" is %zu bytes, over the limit of %d", name, strlen(val),
			         RENDER_VAR_MAX);
			free(b.s);
			return NULL;
		}
		if (!val && !bar) {
			snprintf(err, errlen, "missing variable \"%.60s\" (no value, no fallback)", name);
			free(b.s);
			return NULL;
		}
		put(&b, val ? val : fallback, strlen(val ? val : fallback));
		p = close + 2;
	}
}
