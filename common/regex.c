#define PCRE2_CODE_UNIT_WIDTH 8
#include "regex.h"
#include "err.h"

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct regex {
	char *pattern;
	pcre2_code *code;
	pcre2_match_data *md;
	struct regex *next;
};

static struct regex *cache;

const struct regex *regex_get(const char *pattern, char *err, size_t errlen)
{
	for (struct regex *r = cache; r; r = r->next)
		if (strcmp(r->pattern, pattern) == 0)
			return r;
	int code;
	PCRE2_SIZE off;
	pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
	                               PCRE2_UTF | PCRE2_UCP, &code, &off, NULL);
	if (!re) {
		PCRE2_UCHAR msg[160];
		pcre2_get_error_message(code, msg, sizeof msg);
		snprintf(err, errlen, "invalid regular expression at offset %zu: %s", (size_t)off + 1, (char *)msg);
		return NULL;
	}
	pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter if JIT is unavailable */
	struct regex *r = xcalloc(1, sizeof *r);
	r->pattern = xstrdup(pattern);
	r->code = re;
	r->md = pcre2_match_data_create_from_pattern(re, NULL);
	if (!r->md)
		smr_die(SMR_FATAL, "out of memory");
	r->next = cache;
	cache = r;
	return r;
}

int regex_match(const struct regex *re, const char *subject, size_t len)
{
	int rc = pcre2_match(re->code, (PCRE2_SPTR)subject, len, 0, 0, re->md, NULL);
	return rc >= 0;
}

void regex_cache_free(void)
{
	while (cache) {
		struct regex *r = cache;
		cache = r->next;
		pcre2_match_data_free(r->md);
		pcre2_code_free(r->code);
		free(r->pattern);
		free(r);
	}
}
