/* The options every tool shares: --db, --rules, --now, --help, --version. */
#ifndef SMR_OPTS_H
#define SMR_OPTS_H

#include <getopt.h>
#include <stdint.h>

#define SMR_VERSION "0.1.0"

enum { OPT_DB = 1000, OPT_RULES, OPT_NOW, OPT_HELP, OPT_VERSION };

#define SMR_COMMON_OPTIONS                                  \
	{"db", required_argument, NULL, OPT_DB},            \
	{"rules", required_argument, NULL, OPT_RULES},      \
	{"now", required_argument, NULL, OPT_NOW},          \
	{"help", no_argument, NULL, OPT_HELP},              \
	{"version", no_argument, NULL, OPT_VERSION}

struct smr_opts {
	const char *db;        /* --db, else $SMR_DB, else ./smr.db */
	const char *rules;     /* --rules, else $SMR_RULES, else NULL (./smr.rules if present) */
	int rules_required;    /* given explicitly: must exist */
	const char *now_arg;   /* parsed after the rules set the time zone */
	int64_t now;
};

/* The next tool-specific option (getopt_long with LONGOPTS): the common
 * ones are handled here, an unknown option or a missing argument is a
 * usage error (exit 2). -1 when the options end. */
int opts_next(int argc, char **argv, const struct option *longopts, struct smr_opts *o, const char *usage);
/* Handle a common option. Returns 1 if C was one, 0 if not; prints usage
 * and exits for --help, --version. */
int opts_common(int c, const char *arg, struct smr_opts *o, const char *usage);
/* Fill defaults from the environment. */
void opts_defaults(struct smr_opts *o);
/* Parse --now (in the rules' time zone) or take the clock; exits 2 if bad. */
void opts_resolve_now(struct smr_opts *o);
/* After getopt_long returned '?' (with opterr = 0): name the option. */
_Noreturn void opts_bad_option(const char *usage, char **argv);
/* A whole decimal integer, or -1. */
long opts_int(const char *s);
_Noreturn void opts_usage_error(const char *usage, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
