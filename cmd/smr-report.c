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

int main(int argc, char **argv)
{
	struct smr_opts o = {0};
	struct report_opts ro = {.window = 7 * 86400, .weeks = 4};
	const char *window = NULL, *weeks = NULL;
	const struct opt table[] = {
		OPT_STRING("window", "DUR", &window, "conversion window after a touch (default 7d)"),
		OPT_STRING("weeks", "N", &weeks, "weeks of history (default 4)"),
		OPT_FLAG("table", &ro.table, "aligned text tables instead of NDJSON"),
		OPT_END,
	};
	smr_progname = "smr-report";
	int first = opts_parse(argc, argv, table, "[sops|fatigue|groups ...]", &o);
	if (window && (duration_parse(window, &ro.window) != 0 || ro.window <= 0))
		opts_usage_error(opts_usage(), "--window needs a duration such as 7d");
	long nweeks = weeks ? opts_int(weeks) : ro.weeks;
	if (nweeks < 1 || nweeks > 520)
		opts_usage_error(opts_usage(), "--weeks needs 1 to 520");
	ro.weeks = (int)nweeks;
	int want[NREPORTS] = {0}, any = 0;
	for (int i = first; i < argc; i++) {
		int k = 0;
		while (k < NREPORTS && strcmp(argv[i], report_names[k]) != 0)
			k++;
		if (k == NREPORTS)
			opts_usage_error(opts_usage(), "unknown report \"%s\" (sops, fatigue or groups)", argv[i]);
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
