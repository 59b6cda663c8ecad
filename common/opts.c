#include "opts.h"
#include "err.h"
#include "tstamp.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

void opts_usage_error(const char *usage, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", smr_progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: %s\n", usage);
	exit(SMR_USAGE);
}

int opts_common(int c, const char *arg, struct smr_opts *o, const char *usage)
{
	switch (c) {
	case OPT_DB:
		o->db = arg;
		return 1;
	case OPT_RULES:
		o->rules = arg;
		o->rules_required = 1;
		return 1;
	case OPT_NOW:
		o->now_arg = arg;
		return 1;
	case OPT_HELP:
		printf("usage: %s\nSee %s(1).\n", usage, smr_progname);
		exit(SMR_OK);
	case OPT_VERSION:
		printf("%s %s\n", smr_progname, SMR_VERSION);
		exit(SMR_OK);
	default:
		return 0;
	}
}

void opts_defaults(struct smr_opts *o)
{
	if (!o->db)
		o->db = getenv("SMR_DB");
	if (!o->db || !*o->db)
		o->db = "smr.db";
	if (!o->rules) {
		const char *env = getenv("SMR_RULES");
		if (env && *env) {
			o->rules = env;
			o->rules_required = 1;
		}
	}
}

void opts_resolve_now(struct smr_opts *o)
{
	char err[128];
	if (!o->now_arg) {
		o->now = (int64_t)time(NULL);
		return;
	}
	if (time_parse(o->now_arg, &o->now, err, sizeof err) != 0)
		smr_die(SMR_USAGE, "--now: %s", err);
}

void opts_bad_option(const char *usage, char **argv)
{
	const char *opt = optind > 0 ? argv[optind - 1] : "?";
	if (optopt)
		opts_usage_error(usage, "option %s needs an argument", opt);
	opts_usage_error(usage, "unknown option %s", opt);
}

long opts_int(const char *s)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	return errno || end == s || *end ? -1 : v;
}

int opts_next(int argc, char **argv, const struct option *longopts, struct smr_opts *o, const char *usage)
{
	opterr = 0; /* we name the bad option ourselves */
	for (;;) {
		int c = getopt_long(argc, argv, "", longopts, NULL);
		if (c == '?' || c == ':')
			opts_bad_option(usage, argv);
		if (c == -1 || !opts_common(c, optarg, o, usage))
			return c;
	}
}
