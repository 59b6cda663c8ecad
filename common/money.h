/* Money: yuan in, integer fen stored; exact, no floating-point rounding. */
#ifndef SMR_MONEY_H
#define SMR_MONEY_H

#include <stdint.h>

/* "199.00", "199", "199.5", "-5" (yuan, at most two decimals) to fen. */
int money_parse(const char *s, int64_t *fen);
/* A JSON number in yuan (an integer, or a real with at most two decimals). */
int money_from_double(double yuan, int64_t *fen);

#endif
