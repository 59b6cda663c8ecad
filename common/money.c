#include "money.h"

#include <ctype.h>
#include <math.h>

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

int money_from_double(double yuan, int64_t *fen)
{
	if (!isfinite(yuan) || fabs(yuan) > (double)MONEY_MAX_YUAN)
		return -1;
	double f = yuan * 100.0;
	double r = nearbyint(f);
	/* A decimal with at most two places, read into a double and scaled,
	 * lands within a few ulps of an integer; anything else is further. */
	if (fabs(f - r) > 1e-9 * (fabs(f) > 1 ? fabs(f) : 1))
		return -1;
	*fen = (int64_t)r;
	return 0;
}
