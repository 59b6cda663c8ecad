#ifndef SMR_UTF8_H
#define SMR_UTF8_H

#include <stddef.h>

/* 1 if s[0..n) is well-formed UTF-8 (no overlongs, surrogates, > U+10FFFF). */
int utf8_valid(const char *s, size_t n);
/* Display column (1-based, in characters) of byte offset OFF in S. */
int utf8_column(const char *s, size_t off);

/* The length of the longest prefix of the string S of at most MAX bytes
 * that ends on a character boundary: a character is never cut. */
size_t utf8_cut(const char *s, size_t max);

#endif
