/* Small lexical helpers shared by the rules-file parsers. */
#ifndef SMR_LEX_H
#define SMR_LEX_H

#include <stddef.h>

/* Past spaces and tabs (and newlines). */
const char *lex_skip_space(const char *p);
/* The length of the name at P: ASCII letters, digits, _ and any non-ASCII
 * byte (so 首购 is a name). */
size_t lex_name_len(const char *p);

#endif
