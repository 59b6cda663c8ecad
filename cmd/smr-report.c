/* smr-report: conversion against the holdout, fatigue, group health. */
#include "../common/db.h"
#include "../common/err.h"
#include "../common/opts.h"
#include "../common/report.h"
#include "../common/rules.h"
#include "../common/tstamp.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The page goes to PATH.tmp (0600, as it may name groups and staff) and
 * is renamed over PATH once complete: a reader never sees half a page. */
static void write_html(sqlite3 *db, const struct report_opts *ro, const char *path)
{
	char *tmp = xasprintf("%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FILE *out = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!out)
		smr_die_errno(SMR_FATAL, "%s", tmp);
	if (report_html(db, ro, out) != 0 || fflush(out) != 0 || fsync(fileno(out)) != 0) {
		int e = errno;
		fclose(out);
		unlink(tmp);
		errno = e;
		smr_die_errno(SMR_FATAL, "%s", tmp);
	}
	if (fclose(out) != 0 || rename(tmp, path) != 0) {
		int e = errno;
		unlink(tmp);
		errno = e;
		smr_die_errno(SMR_FATAL, "%s", path);
	}
	free(tmp);
}

int main(int argc, char **argv)
{
	struct smr_opts o = {0};
	struct report_opts ro = {.window = 7 * 86400, .weeks = 4};
	const char *window = NULL, *weeks = NULL, *html = NULL;
	const struct opt table[] = {
		OPT_STRING("window", "DUR", &window, "conversion window after a touch (default 7d)"),
		OPT_STRING("weeks", "N", &weeks, "weeks of history (default 4)"),
		OPT_FLAG("table", &ro.table, "aligned text tables instead of NDJSON"),
		OPT_STRING("html", "FILE", &html, "write every section as one self-contained page to FILE"),
		OPT_END,
	};
	smr_progname = "smr-report";
	int first = opts_parse(argc, argv, table, "[sops|fatigue|groups ...]", &o);
	if (window && (tstamp_duration(window, &ro.window) != 0 || ro.window <= 0))
		opts_usage_error(opts_usage(), "--window needs a duration such as 7d");
	long nweeks = weeks ? opts_int(weeks) : ro.weeks;
	if (nweeks < 1 || nweeks > 520)
		opts_usage_error(opts_usage(), "--weeks needs 1 to 520");
	ro.weeks = (int)nweeks;
	if (html && (ro.table || first < argc))
		opts_usage_error(opts_usage(), "--html writes every section: no --table or section names");
	int want[NREPORTS] = {0}, any = 0;
	for (int i = first; i < argc; i++) {
		int k = 0;
		while (k < NREPORTS && strcmp(argv[i], report_names[k]) != 0)
			k++;
		if (k == NREPORTS)
			opts_usage_error(opts_usage(), "unknown report \"%s\" (sops, fatigue or groups)", argv[i]);
		want[k] = any = 1;
	}
	int rc = SMR_USAGE;
	sqlite3 *db = NULL;
	struct rules *r = rules_load(o.rules, o.rules_required); /* the time zone */
	if (!r)
		goto out;
	opts_resolve_now(&o);
	ro.now = o.now;
	db = db_open(o.db);
	db_exec(db, "BEGIN"); /* one snapshot for every section */
	if (html)
		write_html(db, &ro, html);
	for (int k = 0; !html && k < NREPORTS; k++)
		if (!any || want[k])
			report_print(db, (enum report_section)k, &ro, stdout);
	db_exec(db, "COMMIT");
	rc = SMR_OK;
out:
	db_close(db);
	rules_free(r);
	return rc;
}
