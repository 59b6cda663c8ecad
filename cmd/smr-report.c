/* smr-report: conversion against the holdout, fatigue, group health. */
#include "../common/db.h"
#include "../common/err.h"
#include "../common/opts.h"
#include "../common/report.h"
#include "../common/rules.h"
#include "../common/tstamp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
	"smr-report [--db PATH] [--rules PATH] [--now TIME] [--window DUR] [--weeks N] [--table] [sops|fatigue|groups ...]";

enum { OPT_WINDOW = 1, OPT_WEEKS, OPT_TABLE };

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		SMR_COMMON_OPTIONS,
		{"window", required_argument, NULL, OPT_WINDOW},
		{"weeks", required_argument, NULL, OPT_WEEKS},
		{"table", no_argument, NULL, OPT_TABLE},
		{NULL, 0, NULL, 0},
	};
	struct smr_opts o = {0};
	struct report_opts ro = {.window = 7 * 86400, .weeks = 4};
	int c;
	smr_progname = "smr-report";
	while ((c = opts_next(argc, argv, longopts, &o, usage)) != -1) {
		switch (c) {
		case OPT_WINDOW:
			if (duration_parse(optarg, &ro.window) != 0 || ro.window <= 0)
				opts_usage_error(usage, "--window needs a duration such as 7d");
			break;
		case OPT_WEEKS:
			if ((ro.weeks = (int)opts_int(optarg)) < 1 || ro.weeks > 520)
				opts_usage_error(usage, "--weeks needs 1 to 520");
			break;
		case OPT_TABLE:
			ro.table = 1;
			break;
		}
	}
	opts_defaults(&o);
	int want[NREPORTS] = {0}, any = 0;
	for (int i = optind; i < argc; i++) {
		int k = 0;
		while (k < NREPORTS && strcmp(argv[i], report_names[k]) != 0)
			k++;
		if (k == NREPORTS)
			opts_usage_error(usage, "unknown report \"%s\" (sops, fatigue or groups)", argv[i]);
		want[k] = any = 1;
	}
	struct rules *r = rules_load(o.rules, o.rules_required); /* the time zone */
	if (!r)
		return SMR_USAGE;
	opts_resolve_now(&o);
	ro.now = o.now;
	sqlite3 *db = db_open(o.db);
	db_exec(db, "BEGIN"); /* one snapshot for every section */
	for (int k = 0; k < NREPORTS; k++)
		if (!any || want[k])
			report_print(db, (enum report_section)k, &ro, stdout);
	db_exec(db, "COMMIT");
	db_close(db);
	rules_free(r);
	return SMR_OK;
}
