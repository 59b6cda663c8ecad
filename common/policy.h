/* The contact policy (`policy ... end` in the rules file):
 *
 *   policy
 *     quiet 22:00-08:00          # local; touches inside wait for the end
 *     cap any 2/day 5/week       # sliding windows per person
 *     cap private 1/day          # per channel
 *     dedup 30d                  # same content to the same person
 *     dnd tag unsubscribed complained
 *     fatigue 3 7d               # 3 unanswered touches: 1 per 7d until a response
 *   end
 */
#ifndef SMR_POLICY_H
#define SMR_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "rules.h"

/* Caps per policy (each is one query per touch in smr-send); more is a
 * rules error. DND tags are not limited. */
#define POLICY_MAX 32
#define POLICY_MAX_TEXT "32"

struct cap {
	char channel[64];        /* "any" or a channel name */
	char spec[32];           /* as written: "2/day" */
	int n;
	int64_t period;          /* seconds */
};

struct policy {
	int has_quiet;
	int quiet_start, quiet_end;  /* minutes after local midnight */
	struct cap caps[POLICY_MAX];
	size_t ncaps;
	int64_t dedup;               /* 0 = off */
	char **dnd;                  /* every dnd tag, in order */
	size_t ndnd;
	int fatigue_n;               /* 0 = off */
	int64_t fatigue_window;
	int errors;
};

/* Parse the policy block of R (at most one); errors at file:line:col. */
struct policy *policy_parse(const struct rules *r);
void policy_free(struct policy *p);

/* If T (UTC) falls in quiet hours, the end of that quiet period; else T. */
int64_t policy_quiet_end(const struct policy *p, int64_t t);

#endif
