/* The options every tool shares: --db, --rules, --now, --help, --version. */
#ifndef SMR_OPTS_H
#define SMR_OPTS_H

#include <getopt.h>
#include <stdint.h>

#define SMR_VERSION "0.1.0"

enum { OPT_DB = 1000, OPT_RULES, OPT_NOW, OPT_HELP, OPT_VERSION };

struct smr_opts {
	const char *db;        /* --db, else $SMR_DB, else ./smr.db */
	const char *rules;     /* --rules, else $SMR_RULES, else NULL (./smr.rules if present) */
	int rules_required;    /* given explicitly: must exist */
	const char *now_arg;   /* parsed after the rules set the time zone */
	int64_t now;
};

/* One option of a tool, in its option table: the table generates the
 * getopt_long table, the usage line and --help, so they cannot drift. */
struct opt {
	const char *name;   /* long name, without the dashes */
	const char *arg;    /* the argument's name in usage; NULL for a flag */
	const char *help;   /* one line for --help */
	int *flag;          /* a flag: set to value */
	int value;
	const char **str;   /* an argument: kept as given, checked by the tool */
};
#define OPT_FLAG(name, var, help)        { name, NULL, help, var, 1, NULL }
#define OPT_SET(name, var, val, help)    { name, NULL, help, var, val, NULL }
#define OPT_STRING(name, arg, var, help) { name, arg, help, NULL, 0, var }
#define OPT_END                          { NULL, NULL, NULL, NULL, 0, NULL }

/* Parse the common options and the tool's TABLE (ended by OPT_END);
 * OPERANDS is the rest of the usage line ("[FILE ...]"), or NULL when the
 * tool takes none (then an operand is a usage error). An
 * unknown, abbreviated or incomplete option is a usage error (exit 2);
 * --help and --version print and exit 0. Defaults are filled from the
 * environment. Returns the index of the first operand (operands are
 * moved after the options, as getopt_long does). */
int opts_parse(int argc, char **argv, const struct opt *table, const char *operands,
               struct smr_opts *o);
/* The usage line opts_parse generated ("smr-x [--db PATH] ..."). */
const char *opts_usage(void);

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
