/* smr-sop-due --simulate: a forecast of touches per person per day,
 * written nowhere. The clock walks forward an hour at a time inside a
 * savepoint that is rolled back: at each hour smr-tag's incremental pass
 * re-evaluates the persons whose time-driven tags may change then (a
 * coupon entering its expiry window, a refill falling due, a customer going
 * silent), and smr-sop-due's pass enrols, exits and queues, as hourly cron
 * runs of both would; no new events are assumed. */
#ifndef SMR_SIMULATE_H
#define SMR_SIMULATE_H

#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>

#include "policy.h"
#include "rules.h"
#include "sop.h"
#include "tagrules.h"

struct simulation {
	sqlite3 *db;
	const struct rules *rules;
	const struct tagrules *tags;    /* NULL: tags as they are now */
	const struct sops *sops;
	const struct policy *pol;
	int64_t now, duration, late;
	long long rule_steps;
	int quiet;                      /* no progress on standard error */
};

/* One record per local day to OUT: touches, persons, max, p99, mean, the
 * policy's daily cap and how many persons go over it, and new_tags: per
 * SOP, the day's touches of enrollments started during the simulation. */
void simulate_run(const struct simulation *sim, FILE *out);

#endif
