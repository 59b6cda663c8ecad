#include "utf8.h"

#include <string.h>

int utf8_valid(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str, *end = s + n;
	while (s < end) {
		unsigned c = *s;
		if (c < 0x80) {
			s++;
			continue;
		}
		int len;
		unsigned min;
		if ((c & 0xE0) == 0xC0) { len = 2; min = 0x80; c &= 0x1F; }
		else if ((c & 0xF0) == 0xE0) { len = 3; min = 0x800; c &= 0x0F; }
		else if ((c & 0xF8) == 0xF0) { len = 4; min = 0x10000; c &= 0x07; }
		else return 0;
		if (end - s < len)
			return 0;
		for (int i = 1; i < len; i++) {
			if ((s[i] & 0xC0) != 0x80)
				return 0;
			c = (c << 6) | (s[i] & 0x3F);
		}
		if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
			return 0;
		s += len;
	}
	return 1;
}

int utf8_column(const char *s, size_t off)
{
	int col = 1;
	for (size_t i = 0; i < off && s[i]; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			col++;
	return col;
}

size_t utf8_cut(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n <= max)
		return n;
	while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
		max--; /* s[max] continues a character: cut before that character */
	return max;
}
