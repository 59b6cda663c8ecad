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

/* A claim older than this is stale whoever holds it: no delivery takes an
 * hour (the exec: timeout is 30 s, the webhook's tries about a minute). */
#define SENDER_CLAIM_STALE 3600

/* How many persons' due touches are read into memory at a time: memory
 * does not grow with the queue. */
#define SENDER_WINDOW 512

/* How many touches a local transport (file:) claims in one transaction;
 * remote ones claim one at a time. */
#define SENDER_BATCH 64

struct sender;

/* With FIXED_NOW (--now given) every decision and record uses NOW; else
 * the clock is read again for each touch. */
struct sender *sender_open(sqlite3 *db, const struct sops *sops, const struct policy *pol,
                           struct person_lookup *pl, struct transport *t, int64_t now, int fixed_now,
                           int dry_run, FILE *out);
void sender_close(struct sender *s, struct send_stats *st);

/* Deliver private touches through WeCom (wecom.h) instead of a transport:
 * claims are taken SENDER_BATCH to a transaction (they are local; the
 * tasks are created later), held, and handed to WeCom one task per sender
 * and text (wecom_flush) when enough are held, when the oldest has waited
 * WECOM_HOLD seconds, and at the end of the run. */
struct wecom;
void sender_use_wecom(struct sender *s, struct wecom *wc);

/* Add a touch id read from standard input (see sender_run). */
void sender_input(struct sender *s, int64_t id);

/* Touches claimed by a process that died before recording the outcome:
 * reported as `unknown` and never resent, unless the transport honours
 * idempotency keys, in which case they are queued again. With WeCom, the
 * attempt is looked up instead (wecom_recover_touch), and a claim of a
 * run still alive on this host is never taken over, however old. */
void sender_recover(struct sender *s);

/* Send the touches given to sender_input (or, with ALL, every queued or
 * deferred touch due by now), at most LIMIT (0 = no limit). */
void sender_run(struct sender *s, int all, long limit);

/* The statements smr-send runs for every touch, by name, exactly as it
 * prepares them: tests hold each one's query plan to its index. The list
 * ends with a NULL name. */
struct sender_sql {
	const char *name;
	const char *sql;
};
extern const struct sender_sql sender_hot_sql[];
/* The temporary table the input_* statements read (sender_open makes it). */
extern const char sender_input_schema[];

#endif
