/* smr-report --html: one page an operator can open and keep. XHTML (it
 * parses as XML), inline SVG and CSS, no script, nothing fetched. */
#include "report.h"
#include "db.h"
#include "err.h"
#include "sqlrows.h"
#include "tstamp.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void esc(FILE *out, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': fputs("&amp;", out); break;
		case '<': fputs("&lt;", out); break;
		case '>': fputs("&gt;", out); break;
		case '"': fputs("&quot;", out); break;
		case '\'': fputs("&#39;", out); break;
		default: fputc(*s, out);
		}
	}
}

static double num(json_t *o, const char *key)
{
	return json_number_value(json_object_get(o, key));
}

/* The section as a table whose header is the NDJSON keys and whose cells
 * are their values ("-" for null); returns its rows for the chart. */
static json_t *section_table(sqlite3 *db, enum report_section which, const struct report_opts *o, FILE *out)
{
	sqlite3_stmt *st = report_stmt(db, which, o);
	int nc = sqlite3_column_count(st);
	fprintf(out, "<table id=\"%s\">\n<tr>", report_names[which]);
	for (int c = 0; c < nc; c++) {
		fputs("<th>", out);
		esc(out, sqlite3_column_name(st, c));
		fputs("</th>", out);
	}
	fputs("</tr>\n", out);
	json_t *rows = json_array();
	while (db_row(db, st)) {
		json_t *row = sqlrows_object(st);
		int flagged = which == REPORT_GROUPS && json_is_string(json_object_get(row, "flag"));
		fputs(flagged ? "<tr class=\"flag\">" : "<tr>", out);
		for (int c = 0; c < nc; c++) {
			const char *v = (const char *)sqlite3_column_text(st, c);
			fputs("<td>", out);
			esc(out, v ? v : "-");
			fputs("</td>", out);
		}
		fputs("</tr>\n", out);
		json_array_append_new(rows, row);
	}
	fputs("</table>\n", out);
	sqlite3_finalize(st);
	return rows;
}

/* Uplift per step as a forest plot: the 95% interval as a line, the
 * estimate as a dot, zero as a vertical rule. */
static void uplift_chart(json_t *rows, FILE *out)
{
	const int w = 720, left = 220, right = 20, rowh = 26, top = 24;
	double lo = -0.1, hi = 0.1;
	size_t i, n = json_array_size(rows);
	json_t *r;
	json_array_foreach(rows, i, r) {
		if (json_is_number(json_object_get(r, "uplift_ci_low")))
			lo = fmin(lo, num(r, "uplift_ci_low"));
		if (json_is_number(json_object_get(r, "uplift_ci_high")))
			hi = fmax(hi, num(r, "uplift_ci_high"));
	}
	int h = top + rowh * (int)(n ? n : 1) + 24;
#define X(v) (left + ((v) - lo) / (hi - lo) * (w - left - right))
	fprintf(out, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" role=\"img\">\n", w, h);
	fprintf(out, "<text x=\"%d\" y=\"16\" class=\"axis\">uplift (touched rate - holdout rate), 95%% interval</text>\n", left);
	fprintf(out, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" class=\"zero\"/>\n", X(0.0), top, X(0.0), h - 20);
	fprintf(out, "<text x=\"%.1f\" y=\"%d\" class=\"axis\">%.2f</text><text x=\"%.1f\" y=\"%d\" class=\"axis\">0</text>"
	             "<text x=\"%.1f\" y=\"%d\" class=\"axis\" text-anchor=\"end\">%.2f</text>\n",
	        X(lo), h - 6, lo, X(0.0), h - 6, X(hi), h - 6, hi);
	json_array_foreach(rows, i, r) {
		int y = top + rowh * (int)i + rowh / 2;
		fprintf(out, "<text x=\"4\" y=\"%d\">", y + 4);
		esc(out, json_string_value(json_object_get(r, "sop")));
		fprintf(out, " step %lld", (long long)json_integer_value(json_object_get(r, "step")));
		const char *key = json_string_value(json_object_get(r, "step_key"));
		if (key) { /* two steps may share a step number after an SOP edit */
			fputs(" (", out);
			esc(out, key);
			fputc(')', out);
		}
		fputs("</text>\n", out);
		if (!json_is_number(json_object_get(r, "uplift_ci_low"))) {
			fprintf(out, "<text x=\"%.1f\" y=\"%d\" class=\"axis\">no holdout or no ended window yet</text>\n",
			        X(lo), y + 4);
			continue;
		}
		fprintf(out, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" class=\"ci\"/>"
		             "<circle cx=\"%.1f\" cy=\"%d\" r=\"4\" class=\"est\"/>\n",
		        X(num(r, "uplift_ci_low")), y, X(num(r, "uplift_ci_high")), y, X(num(r, "uplift")), y);
	}
#undef X
	fputs("</svg>\n", out);
}

/* Person-weeks by touches sent in the week, over the fatigue weeks. */
static void fatigue_chart(json_t *rows, FILE *out)
{
	static const char *const keys[] = {"one", "two", "three", "four", "five_plus"};
	static const char *const labels[] = {"1", "2", "3", "4", "5+"};
	double count[5] = {0}, max = 1;
	size_t i;
	json_t *r;
	json_array_foreach(rows, i, r)
		for (int k = 0; k < 5; k++)
			count[k] += num(r, keys[k]);
	for (int k = 0; k < 5; k++)
		max = fmax(max, count[k]);
	const int w = 420, h = 200, base = 170, barw = 60;
	fprintf(out, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" role=\"img\">\n", w, h);
	for (int k = 0; k < 5; k++) {
		double bh = count[k] / max * 140;
		int x = 20 + k * (barw + 16);
		fprintf(out, "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%.1f\" class=\"%s\"/>"
		             "<text x=\"%d\" y=\"%.1f\" class=\"axis\">%.0f</text>"
		             "<text x=\"%d\" y=\"%d\">%s</text>\n",
		        x, base - bh, barw, bh, k == 4 ? "bar hot" : "bar", x + 4, base - bh - 4, count[k],
		        x + barw / 2 - 6, base + 18, labels[k]);
	}
	fputs("</svg>\n", out);
}

static const char css[] =
	"body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
	"td,th{border:1px solid #ccc;padding:2px 6px;text-align:right;font-size:90%}"
	"th{background:#f3f3f3}tr.flag td{background:#fde2e2}"
	".zero{stroke:#999;stroke-dasharray:3}.ci{stroke:#246;stroke-width:2}.est{fill:#246}"
	".bar{fill:#7a9cc6}.hot{fill:#c0504d}.axis{fill:#666;font-size:11px}svg text{font-size:12px}";

int report_html(sqlite3 *db, const struct report_opts *o, FILE *out)
{
	char now[40];
	tstamp_format(o->now, now, sizeof now);
	fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE html>\n"
	      "<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head><meta charset=\"UTF-8\"/>\n", out);
	fprintf(out, "<title>smr report, %s</title>\n<style>%s</style>\n</head>\n<body>\n", now, css);
	fprintf(out, "<h1>smr report</h1>\n<p>As of %s; conversion window %lld s; fatigue over %d weeks.</p>\n",
	        now, (long long)o->window, o->weeks);
	fputs("<h2>Uplift per SOP step against the holdout</h2>\n", out);
	json_t *rows = section_table(db, REPORT_SOPS, o, out);
	uplift_chart(rows, out);
	json_decref(rows);
	fputs("<h2>Touches per person per week (fatigue)</h2>\n"
	      "<p>Person-weeks by the number of touches sent in the week.</p>\n", out);
	rows = section_table(db, REPORT_FATIGUE, o, out);
	fatigue_chart(rows, out);
	json_decref(rows);
	fputs("<h2>Groups: members and weekly messages</h2>\n"
	      "<p>Flagged rows: messages fell by half (likely muted or folded), or members leave after pushes.</p>\n", out);
	json_decref(section_table(db, REPORT_GROUPS, o, out));
	fputs("</body>\n</html>\n", out);
	return ferror(out) ? -1 : 0;
}
