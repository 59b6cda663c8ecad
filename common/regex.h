/* PCRE2 patterns (UTF mode, JIT), each compiled once per process. */
#ifndef SMR_REGEX_H
#define SMR_REGEX_H

#include <stddef.h>

struct regex;

/* The compiled pattern, from the cache or compiled now. NULL with a reason
 * (and the 1-based offset in the pattern) in err when invalid. */
const struct regex *regex_get(const char *pattern, char *err, size_t errlen);
/* 1 match, 0 no match. */
int regex_match(const struct regex *re, const char *subject, size_t len);
void regex_cache_free(void);

#endif
