/* smr-send's work: claim each touch, apply the policy, render, deliver,
 * record the outcome, report it. */
#ifndef SMR_SENDER_H
#define SMR_SENDER_H

#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>

#include "person.h"
#include "policy.h"
#include "sop.h"
#include "transport.h"

struct send_stats { long sent, deferred, suppressed, failed, unknown, skipped; };

struct sender;

struct sender *sender_open(sqlite3 *db, const struct sops *sops, const struct policy *pol,
                           struct person_lookup *pl, struct transport *t, int64_t now, int dry_run, FILE *out);
void sender_close(struct sender *s, struct send_stats *st);

/* Touches claimed by a process that died before recording the outcome:
 * reported as `unknown` and never resent, unless the transport honours
 * idempotency keys, in which case they are queued again. */
void sender_recover(struct sender *s);

/* Send the touches in temp.send_input (or, with ALL, every queued or
 * deferred touch due by now), at most LIMIT (0 = no limit). */
void sender_run(struct sender *s, int all, long limit);

#endif
