/* Money: yuan in, integer fen stored; exact, no floating-point rounding. */
#ifndef SMR_MONEY_H
#define SMR_MONEY_H

#include <stdint.h>

/* "199.00", "199", "199.5", "-5" (yuan, at most two decimals) to fen. */
int money_parse(const char *s, int64_t *fen);
/* A JSON number in yuan: the decimal of at most 15 significant digits it
 * stands for, which must have at most two decimals (never rounded). */
int money_from_double(double yuan, int64_t *fen);

#endif
