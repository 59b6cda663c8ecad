#include "opts.h"
#include "err.h"
#include "tstamp.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static int opts_common(int c, const char *arg, struct smr_opts *o, const char *usage)
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
	if (tstamp_parse(o->now_arg, &o->now, err, sizeof err) != 0)
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


static const struct opt common_table[] = {
	OPT_STRING("db", "PATH", NULL, "the database (else $SMR_DB, else ./smr.db)"),
	OPT_STRING("rules", "PATH", NULL, "the rules file (else $SMR_RULES, else ./smr.rules)"),
	OPT_STRING("now", "TIME", NULL, "the time to run at (ISO 8601 or epoch seconds)"),
	OPT_FLAG("help", NULL, "print this help and exit"),
	OPT_FLAG("version", NULL, "print the version and exit"),
};
enum { N_COMMON = sizeof common_table / sizeof common_table[0], MAX_OPTS = 64 };

static char usage_line[1024];

const char *opts_usage(void) { return usage_line; }

/* "smr-x [--db PATH] ... OPERANDS", wrapped before 80 columns under the
 * first option. */
static void make_usage(const struct opt *const *all, size_t n, const char *operands)
{
	size_t len = 0, col = 0, indent = strlen("usage: ") + strlen(smr_progname) + 1;
	len += (size_t)snprintf(usage_line, sizeof usage_line, "%s", smr_progname);
	col = indent - 1;
	for (size_t i = 0; i <= n && len < sizeof usage_line; i++) {
		char word[128];
		if (i < n && all[i]->arg)
			snprintf(word, sizeof word, "[--%s %s]", all[i]->name, all[i]->arg);
		else if (i < n)
			snprintf(word, sizeof word, "[--%s]", all[i]->name);
		else if (operands)
			snprintf(word, sizeof word, "%s", operands);
		else
			break;
		if (col + 1 + strlen(word) > 79) {
			len += (size_t)snprintf(usage_line + len, sizeof usage_line - len, "\n%*s", (int)indent, "");
			col = indent;
		} else {
			len += (size_t)snprintf(usage_line + len, sizeof usage_line - len, " ");
			col++;
		}
		if (len < sizeof usage_line)
			len += (size_t)snprintf(usage_line + len, sizeof usage_line - len, "%s", word);
		col += strlen(word);
	}
}

static _Noreturn void print_help(const struct opt *const *all, size_t n)
{
	printf("usage: %s\n\n", usage_line);
	for (size_t i = 0; i < n; i++) {
		char left[64];
		snprintf(left, sizeof left, "--%s%s%s", all[i]->name, all[i]->arg ? " " : "",
		         all[i]->arg ? all[i]->arg : "");
		printf("  %-22s %s\n", left, all[i]->help);
	}
	printf("\nSee %s(1).\n", smr_progname);
	if (fflush(stdout) != 0 || ferror(stdout))
		exit(SMR_FATAL);
	exit(SMR_OK);
}

/* getopt_long takes any unambiguous prefix ("--lim" for "--limit"); a cron
 * line written that way would break the day another option shares the
 * prefix, so only the whole name is accepted. */
static int whole_name(const char *tok, const char *name)
{
	size_t n = strlen(name);
	return strncmp(tok, "--", 2) == 0 && strncmp(tok + 2, name, n) == 0 &&
	       (tok[2 + n] == '\0' || tok[2 + n] == '=');
}

int opts_parse(int argc, char **argv, const struct opt *table, const char *operands,
               struct smr_opts *o)
{
	const struct opt *all[MAX_OPTS];
	struct option longopts[MAX_OPTS + 1];
	size_t n = 0;
	for (size_t i = 0; i < N_COMMON; i++)
		all[n++] = &common_table[i];
	for (const struct opt *t = table; t && t->name; t++) {
		assert(n < MAX_OPTS);
		all[n++] = t;
	}
	for (size_t i = 0; i < n; i++)
		longopts[i] = (struct option){ all[i]->name, all[i]->arg ? required_argument : no_argument,
		                               NULL, (int)i + 1 };
	longopts[n] = (struct option){ NULL, 0, NULL, 0 };
	make_usage(all, n, operands);

	opterr = 0; /* we name the bad option ourselves */
	int c;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == '?' || c == ':')
			opts_bad_option(usage_line, argv);
		const struct opt *op = all[c - 1];
		const char *tok = optarg && optarg == argv[optind - 1] ? argv[optind - 2] : argv[optind - 1];
		if (!whole_name(tok, op->name))
			opts_usage_error(usage_line, "option %s is abbreviated: write --%s", tok, op->name);
		if (strcmp(op->name, "help") == 0)
			print_help(all, n);
		if (op->str)
			*op->str = optarg;
		else if (op->flag)
			*op->flag = op->value;
		else if (c <= (int)N_COMMON)
			opts_common((int)OPT_DB + c - 1, optarg, o, usage_line);
	}
	if (!operands && optind < argc)
		opts_usage_error(usage_line, "unexpected argument \"%s\"", argv[optind]);
	opts_defaults(o);
	return optind;
}
