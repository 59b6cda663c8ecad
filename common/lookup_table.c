#include "lookup_table.h"
#include "lookup.h"
#include "sqlrows.h"
#include "tstamp.h"

#include <stdlib.h>

static void put_time(FILE *out, const char *label, json_t *v)
{
	char buf[40] = "-";
	if (json_is_integer(v))
		tstamp_format(json_integer_value(v), buf, sizeof buf);
	fprintf(out, "%s%s", label, buf);
}

static void put_value(FILE *out, json_t *v)
{
	char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(15));
	fputs(s ? s : "?", out);
	free(s);
}

void lookup_table_record(sqlite3 *db, int64_t pid, int events, FILE *out)
{
	fprintf(out, "== person %lld\n", (long long)pid);
	for (int s = 0; s < LOOKUP_NSECTIONS; s++) {
		sqlite3_stmt *st = lookup_section(db, (enum lookup_section)s, pid, events);
		fprintf(out, "-- %s\n", lookup_section_names[s]);
		if (s == LOOKUP_FACTS)
			sqlrows_fields(db, st, out, 1);
		else
			sqlrows_table(db, st, out, 1);
		sqlite3_finalize(st);
	}
	fputc('\n', out);
}

void lookup_table_explain(json_t *e, FILE *out)
{
	fprintf(out, "== person %lld: tag %s when %s\n", (long long)json_integer_value(json_object_get(e, "pid")),
	       json_string_value(json_object_get(e, "tag")), json_string_value(json_object_get(e, "when")));
	json_t *held = json_object_get(e, "held");
	if (json_is_null(held)) {
		fprintf(out, "held: no\n");
	} else {
		put_time(out, "held: since ", json_object_get(held, "since"));
		fprintf(out, " (%s)\n", json_string_value(json_object_get(held, "source")));
	}
	if (json_object_get(e, "note"))
		fprintf(out, "note: %s\n", json_string_value(json_object_get(e, "note")));
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(e, "parts"), i, p) {
		fprintf(out, "%*s", 2 * (int)json_integer_value(json_object_get(p, "depth")), "");
		put_value(out, json_object_get(p, "value"));
		fprintf(out, "  <-  %s\n", json_string_value(json_object_get(p, "expr")));
	}
	fputc('\n', out);
}

void lookup_table_why(json_t *w, FILE *out)
{
	fprintf(out, "== person %lld: sop %s, trigger %s", (long long)json_integer_value(json_object_get(w, "pid")),
	       json_string_value(json_object_get(w, "sop")), json_string_value(json_object_get(w, "trigger")));
	json_t *held = json_object_get(w, "trigger_held");
	if (json_is_null(held))
		fprintf(out, " (not held)\n");
	else
		put_time(out, " (held since ", json_object_get(held, "since")), fprintf(out, ")\n");
	if (json_object_get(w, "not_enrolled"))
		fprintf(out, "not enrolled: %s\n", json_string_value(json_object_get(w, "not_enrolled")));
	size_t i, j;
	json_t *e, *s;
	json_array_foreach(json_object_get(w, "enrollments"), i, e) {
		fprintf(out, "enrollment %lld: ", (long long)json_integer_value(json_object_get(e, "id")));
		put_time(out, "day 0 ", json_object_get(e, "day0"));
		fprintf(out, ", %s", json_string_value(json_object_get(e, "state")));
		if (json_is_string(json_object_get(e, "exit_reason")))
			fprintf(out, ": %s", json_string_value(json_object_get(e, "exit_reason")));
		fputc('\n', out);
		json_array_foreach(json_object_get(e, "steps"), j, s) {
			fprintf(out, "  step %lld  %s  %s %s  ", (long long)json_integer_value(json_object_get(s, "step")),
			       json_string_value(json_object_get(s, "at")), json_string_value(json_object_get(s, "channel")),
			       json_string_value(json_object_get(s, "content")));
			put_time(out, "due ", json_object_get(s, "due_at"));
			fprintf(out, "  %s", json_string_value(json_object_get(s, "decision")));
			if (json_is_string(json_object_get(s, "reason")))
				fprintf(out, ": %s", json_string_value(json_object_get(s, "reason")));
			fputc('\n', out);
		}
	}
	fputc('\n', out);
}
