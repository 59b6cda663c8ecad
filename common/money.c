#include "money.h"

#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define MONEY_MAX_YUAN 100000000000LL /* 1e11 yuan: far beyond any order */

int money_parse(const char *s, int64_t *fen)
{
	const char *p = s;
	int neg = 0;
	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	if (!isdigit((unsigned char)*p))
		return -1;
	int64_t yuan = 0;
	while (isdigit((unsigned char)*p)) {
		yuan = yuan * 10 + (*p++ - '0');
		if (yuan > MONEY_MAX_YUAN)
			return -1;
	}
	int64_t cents = 0;
	if (*p == '.') {
		p++;
		int nd = 0;
		while (isdigit((unsigned char)*p)) {
			if (nd == 2) {
				if (*p != '0') /* "1.000" is fine, "1.005" is not */
					return -1;
			} else {
				cents = cents * 10 + (*p - '0');
				nd++;
			}
			p++;
		}
		if (nd == 0)
			return -1;
		if (nd == 1)
			cents *= 10;
	}
	if (*p)
		return -1;
	*fen = (neg ? -1 : 1) * (yuan * 100 + cents);
	return 0;
}

/* A JSON number arrives as a double. Every valid amount (at most 13
 * significant digits) is, within a few ulps (as after 0.1 + 0.2 in the
 * program that wrote it), the double of a decimal of at most 15
 * significant digits, which "%.15g" gives back exactly; that decimal is
 * then held to the rules for strings, so three decimals are rejected at
 * any size instead of being rounded. */
int money_from_double(double yuan, int64_t *fen)
{
	char buf[64];
	if (!isfinite(yuan) || fabs(yuan) > (double)MONEY_MAX_YUAN)
		return -1;
	snprintf(buf, sizeof buf, "%.15g", yuan);
	if (fabs(strtod(buf, NULL) - yuan) > 4 * DBL_EPSILON * fabs(yuan))
		return -1;
	return money_parse(buf, fen);
}
