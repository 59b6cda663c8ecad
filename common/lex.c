#include "lex.h"

#include <ctype.h>

const char *lex_skip_space(const char *p)
{
	while (isspace((unsigned char)*p))
		p++;
	return p;
}

size_t lex_name_len(const char *p)
{
	size_t n = 0;
	while (isalnum((unsigned char)p[n]) || p[n] == '_' || (unsigned char)p[n] >= 0x80)
		n++;
	return n;
}
