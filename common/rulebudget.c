#include "rulebudget.h"
#include "db.h"
#include "err.h"
#include "opts.h"
#include "progress.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define GRAIN 1000 /* steps between progress calls */

struct rule_budget {
	sqlite3 *db;
	const struct tagrules *tr;
	long long steps, used;
	int inside, rule, armed, tripped, old_length;
	int64_t pid;
};

static struct rule_budget *active; /* for the db_fail hook */

static int progress(void *arg)
{
	struct rule_budget *b = arg;
	progress_poll(); /* the one handler per connection serves both */
	if (!b->inside)
		return 0;
	b->used += GRAIN;
	if (b->used <= b->steps)
		return 0;
	b->tripped = 1;
	return 1; /* SQLITE_INTERRUPT: the statement stops, the failure ends the run */
}

static void enter(sqlite3_context *c, int argc, sqlite3_value **argv)
{
	(void)argc;
	struct rule_budget *b = sqlite3_user_data(c);
	b->rule = sqlite3_value_int(argv[0]);
	b->pid = sqlite3_value_int64(argv[1]);
	b->used = 0;
	b->inside = 1;
	sqlite3_result_int(c, 1);
}

static void leave(sqlite3_context *c, int argc, sqlite3_value **argv)
{
	(void)argc;
	struct rule_budget *b = sqlite3_user_data(c);
	b->inside = 0;
	sqlite3_result_value(c, argv[0]);
}

/* A statement failed while rules ran: say which rule and person if the
 * budget or the length cap stopped it. */
static void on_fail(sqlite3 *db)
{
	struct rule_budget *b = active;
	int rc = sqlite3_errcode(db);
	if (!b || db != b->db || !b->armed || !(b->tripped || rc == SQLITE_TOOBIG))
		return;
	const struct tagrules *tr = b->tr;
	const struct cond *c = NULL;
	const char *what = "tag";
	if (b->rule >= 0 && (size_t)b->rule < tr->ntags) {
		c = &tr->tags[b->rule];
	} else if (b->rule >= 0 && (size_t)b->rule < tr->ntags + tr->nsegments) {
		c = &tr->segments[b->rule - tr->ntags];
		what = "segment";
	}
	char *why = b->tripped ? xasprintf("over the step budget (%lld steps for one person)", b->steps)
	                       : xasprintf("a string or blob over the length limit (%d bytes)", RULE_MAX_LENGTH);
	if (c)
		smr_warnx(tr->file, c->line, "%s %s: %s for person %lld; stopped, its uncommitted work rolled back", what,
		          c->name, why, (long long)b->pid);
	else
		smr_warnx(tr->file, 0, "a rule condition: %s; stopped, its uncommitted work rolled back", why);
	free(why);
	exit(SMR_USAGE);
}

struct rule_budget *rule_budget_open(sqlite3 *db, const struct tagrules *tr, long long steps)
{
	struct rule_budget *b = xcalloc(1, sizeof *b);
	b->db = db;
	b->tr = tr;
	b->steps = steps;
	b->rule = -1;
	if (sqlite3_create_function(db, "smr_rule_enter", 2, SQLITE_UTF8 | SQLITE_DIRECTONLY, b, enter, NULL,
	                            NULL) != SQLITE_OK ||
	    sqlite3_create_function(db, "smr_rule_leave", 1, SQLITE_UTF8 | SQLITE_DIRECTONLY, b, leave, NULL,
	                            NULL) != SQLITE_OK)
		db_fail(db, "register rule budget");
	active = b;
	db_fail_hook = on_fail;
	return b;
}

void rule_budget_close(struct rule_budget *b)
{
	if (!b)
		return;
	rule_budget_arm(b, 0);
	if (active == b)
		active = NULL;
	free(b);
}

int rule_length_limit(sqlite3 *db, int on, int previous)
{
	return sqlite3_limit(db, SQLITE_LIMIT_LENGTH, on ? RULE_MAX_LENGTH : previous);
}

void rule_budget_arm(struct rule_budget *b, int on)
{
	if (on == b->armed)
		return;
	b->armed = on;
	b->inside = 0;
	b->tripped = 0;
	sqlite3_progress_handler(b->db, on ? GRAIN : 0, on ? progress : NULL, b);
	if (!on)
		progress_rewatch(b->db);
	if (on)
		b->old_length = rule_length_limit(b->db, 1, 0);
	else
		rule_length_limit(b->db, 0, b->old_length);
}

char *rule_budget_wrap(int i, const char *sql)
{
	return xasprintf("(CASE WHEN smr_rule_enter(%d, facts.pid) THEN smr_rule_leave((%s\n)) END)", i, sql);
}

long long rule_steps_option(const char *s, const char *usage)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > RULE_STEPS_MAX)
		opts_usage_error(usage, "--rule-steps: \"%s\" is not a count from 1 to %lld", s, RULE_STEPS_MAX);
	return v;
}
