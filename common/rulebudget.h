/* What rule SQL may spend. Each condition runs between smr_rule_enter(I,
 * PID) and smr_rule_leave(VALUE) (rule_budget_wrap); inside, a progress
 * handler counts SQLite virtual machine steps, and one condition for one
 * person may take at most the budget. While armed, no string or blob may
 * grow past RULE_MAX_LENGTH bytes. Going over either ends the run with exit
 * 2, naming the rule (file:line) and the person; the open transaction is
 * never committed and the write lock goes with the process. */
#ifndef SMR_RULEBUDGET_H
#define SMR_RULEBUDGET_H

#include <sqlite3.h>

#include "tagrules.h"

#define RULE_STEPS_DEFAULT 50000000LL   /* per condition and person */
#define RULE_STEPS_MAX 1000000000000LL
#define RULE_MAX_LENGTH 10000000        /* bytes, any string or blob */

struct rule_budget;

/* Register the markers on DB. Marker I names tag I of TR, or segment
 * I - TR->ntags. */
struct rule_budget *rule_budget_open(sqlite3 *db, const struct tagrules *tr, long long steps);
void rule_budget_close(struct rule_budget *b);
/* Count steps and cap lengths while ON (only around rule statements). */
void rule_budget_arm(struct rule_budget *b, int on);
/* SQL evaluating SQL (over the facts view) as marked rule I. */
char *rule_budget_wrap(int i, const char *sql);

/* The value of --rule-steps (1..RULE_STEPS_MAX), else a usage error. */
long long rule_steps_option(const char *s, const char *usage);

/* The length cap on DB while ON; returns the previous limit. */
int rule_length_limit(sqlite3 *db, int on, int previous);

#endif
