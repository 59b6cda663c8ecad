/* SOP and content statements of the rules file (smr-rules(5)):
 *
 *   sop cart_A_followup
 *     trigger cart_A
 *     exit first_purchase repeat_buyer
 *     on_leave exit              # or stay
 *     window 7d
 *     staff owner                # or a staff account id
 *     priority 0
 *     step 0d 20:00 private cart_reminder_A
 *     step 1d 12:00 moments reviews_A
 *     step 3d 20:00 private coupon_A as coupon   # a named step
 *     step +30m private nudge_A                   # relative to day 0
 *   end
 *   content cart_reminder_A private "{{nickname|亲}}，你购物车里的{{item}}还在等你"
 */
#ifndef SMR_SOP_H
#define SMR_SOP_H

#include <stddef.h>
#include <stdint.h>

#include "rules.h"

#define SOP_NAME_MAX 64
#define SOP_KEY_MAX (2 * SOP_NAME_MAX + 16)

struct sop_step {
	int relative;             /* "+30m": AFTER seconds after day 0 */
	int64_t after;
	int day;                  /* else: offset from day 0 in local days ... */
	int hour, minute;         /* ... at this local wall time */
	char channel[SOP_NAME_MAX];
	char content[SOP_NAME_MAX];
	char key[SOP_KEY_MAX];    /* the step's identity: its name, else sop_step_key() */
	int line;
};

struct sop {
	char name[SOP_NAME_MAX];
	char trigger[SOP_NAME_MAX];
	char **exits;
	size_t nexits;
	int exit_on_leave;        /* default 1 */
	int64_t window;           /* seconds; default 7 days */
	char staff[SOP_NAME_MAX]; /* "owner" (attrs.staff) or an account id */
	int priority;
	int holdout_pct;          /* persons held out, 0-100 */
	struct sop_step *steps;   /* by due order */
	size_t nsteps;
	int line;
};

struct content {
	char id[SOP_NAME_MAX];
	char channel[SOP_NAME_MAX];
	char *text;
	int line;
};

struct sops {
	struct sop *sops;
	size_t nsops;
	struct content *contents;
	size_t ncontents;
	int errors;
};

/* Parse every sop block and content line of R, reporting errors at
 * file:line:col (counted in ->errors). */
struct sops *sops_parse(const struct rules *r);
void sops_free(struct sops *s);
const struct content *sops_content(const struct sops *s, const char *id);
/* The sop named NAME, or NULL. */
const struct sop *sops_find(const struct sops *s, const char *name);

/* The identity of an unnamed step, as stored in touch.step_key:
 * "1d 12:00 moments reviews_A" (offset, local time, channel, content). */
void sop_step_key(char *out, size_t outlen, int day, int hour, int minute, const char *channel,
                  const char *content);
/* The same for a relative step: "+1800s private nudge_A" (seconds after
 * day 0, however the offset was written). */
void sop_step_key_after(char *out, size_t outlen, int64_t after, const char *channel, const char *content);

/* The UTC due time of STEP for an enrollment whose day 0 is DAY0. */
int64_t sop_step_due(const struct sop_step *step, int64_t day0);

#endif
