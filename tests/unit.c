/* Unit tests of common/: time, durations, money, UTF-8, event checking,
 * identity resolution (attach, merge, limits, conflicts, facts), templates,
 * quiet hours, SOP step times across DST and rule-expression rewriting.
 *
 * Output: one line per check, "ok - name" or "FAIL - name (details)", then
 * a final line "N passed, N failed". Exit status 1 if anything failed.
 * Run it in an empty directory: rules_load(NULL, 0) reads ./smr.rules. */
#include "../common/db.h"
#include "../common/delta.h"
#include "../common/err.h"
#include "../common/facts.h"
#include "../common/event.h"
#include "../common/identity.h"
#include "../common/ingest.h"
#include "../common/layers.h"
#include "../common/lookup.h"
#include "../common/mapping.h"
#include "../common/members.h"
#include "../common/money.h"
#include "../common/policy.h"
#include "../common/rejects.h"
#include "../common/render.h"
#include "../common/report.h"
#include "../common/rules.h"
#include "../common/sender.h"
#include "../common/ruleexpr.h"
#include "../common/segment.h"
#include "../common/segquery.h"
#include "../common/sop.h"
#include "../common/source.h"
#include "../common/tagger.h"
#include "../common/tagrules.h"
#include "../common/tstamp.h"
#include "../common/utf8.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int npass, nfail;

static void report(int pass, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void report(int pass, const char *name, const char *fmt, ...)
{
	if (pass) {
		printf("ok - %s\n", name);
		npass++;
		return;
	}
	char detail[512] = "";
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(detail, sizeof detail, fmt, ap);
		va_end(ap);
	}
	printf("FAIL - %s (%s)\n", name, detail);
	nfail++;
}

static void expect_int(const char *name, int64_t want, int64_t got)
{
	report(want == got, name, "expected %" PRId64 ", got %" PRId64, want, got);
}

static void expect_str(const char *name, const char *want, const char *got)
{
	int same = (want == NULL && got == NULL) || (want && got && strcmp(want, got) == 0);
	report(same, name, "expected %s%s%s, got %s%s%s", want ? "\"" : "", want ? want : "NULL", want ? "\"" : "",
	       got ? "\"" : "", got ? got : "NULL", got ? "\"" : "");
}

/* ---------------------------------------------------------------- time */

static void tp_ok(const char *s, int64_t want)
{
	char name[160], err[256] = "";
	int64_t got = -12345;
	snprintf(name, sizeof name, "tstamp_parse(\"%s\") = %" PRId64, s, want);
	int rc = tstamp_parse(s, &got, err, sizeof err);
	if (rc != 0)
		report(0, name, "rejected: %s", err);
	else
		expect_int(name, want, got);
}

static void tp_bad(const char *s, const char *why)
{
	char name[200], err[256] = "";
	int64_t got = 0;
	snprintf(name, sizeof name, "tstamp_parse rejects \"%s\" (%s)", s, why);
	int rc = tstamp_parse(s, &got, err, sizeof err);
	if (rc == 0)
		report(0, name, "accepted as %" PRId64, got);
	else
		report(err[0] != '\0', name, "rejected without a reason");
}

static void test_time(void)
{
	char err[256];
	report(tstamp_tz_set("Asia/Shanghai", err, sizeof err) == 0, "tstamp_tz_set(\"Asia/Shanghai\")", "%s", err);
	expect_str("tstamp_tz_name() after tstamp_tz_set", "Asia/Shanghai", tstamp_tz_name());
	report(tstamp_tz_set("Nowhere/Atlantis", err, sizeof err) != 0, "tstamp_tz_set rejects an unknown zone", NULL);
	report(tstamp_tz_set("../../etc/passwd", err, sizeof err) != 0, "tstamp_tz_set rejects a path as zone", NULL);
	expect_str("tstamp_tz_name() unchanged by a failed tstamp_tz_set", "Asia/Shanghai", tstamp_tz_name());

	/* Offsets and Z */
	tp_ok("2026-11-20T20:15:00+08:00", 1795176900);
	tp_ok("2026-11-20T12:15:00Z", 1795176900);
	tp_ok("2026-11-20T12:15:00z", 1795176900);
	tp_ok("2026-11-20T07:15:00-05:00", 1795176900);
	tp_ok("2026-11-20T20:15:00+0800", 1795176900);
	tp_ok("2026-11-20T20:15:00+08", 1795176900);
	tp_ok("2026-11-20T20:15:00+08:30", 1795175100);
	tp_ok("2026-11-20T12:15Z", 1795176900);
	tp_ok("2026-11-20T12:15:00.987Z", 1795176900);
	tp_ok("2026-11-20 12:15:00Z", 1795176900);
	tp_ok("1970-01-01T00:00:00Z", 0);
	tp_ok("2026-12-31T23:59:59Z", 1798761599);
	/* Leap years */
	tp_ok("2024-02-29T00:00:00Z", 1709164800);
	tp_ok("2000-02-29T12:00:00Z", 951825600);
	/* Naive local time in the configured zone (Asia/Shanghai, +08:00) */
	tp_ok("2026-11-20 20:15", 1795176900);
	tp_ok("2026-11-20T20:15:00", 1795176900);
	tp_ok("2026-11-20", 1795132800 - 8 * 3600);
	tp_ok("2026-06-15", 1781452800);
	/* Epoch seconds */
	tp_ok("1795176900", 1795176900);
	tp_ok("0", 0);

	/* Impossible dates */
	tp_bad("2026-02-30T00:00:00Z", "Feb 30");
	tp_bad("2025-02-29T00:00:00Z", "not a leap year");
	tp_bad("2100-02-29T00:00:00Z", "century not a leap year");
	tp_bad("2026-04-31", "April 31");
	tp_bad("2026-13-01T00:00:00Z", "month 13");
	tp_bad("2026-00-10T00:00:00Z", "month 0");
	tp_bad("2026-01-00T00:00:00Z", "day 0");
	tp_bad("2026-01-01T24:00:00Z", "hour 24");
	tp_bad("2026-01-01T23:60:00Z", "minute 60");
	tp_bad("2026-01-01T23:59:61Z", "second 61");
	/* Bad offsets */
	tp_bad("2026-11-20T20:15:00+25:00", "offset hour 25");
	tp_bad("2026-11-20T20:15:00+08:60", "offset minute 60");
	tp_bad("2026-11-20T20:15:00+8", "one-digit offset");
	tp_bad("2026-11-20T20:15:00+08:0", "three-digit offset");
	tp_bad("2026-11-20T20:15:00+08:", "offset with a dangling colon");
	tp_bad("2026-11-20T20:15:00+", "sign without offset");
	tp_bad("2026-11-20T20:15:00 +08:00", "space before offset");
	tp_bad("2026-11-20+08:00", "offset without a time");
	tp_bad("2026-11-20Z", "Z without a time");
	/* Trailing junk and garbage */
	tp_bad("2026-11-20T20:15:00+08:00x", "junk after offset");
	tp_bad("2026-11-20T20:15:00Zjunk", "junk after Z");
	tp_bad("2026-11-20T20:15:00 ", "trailing space");
	tp_bad("2026-11-20x", "junk after date");
	tp_bad("2026-11-20T", "T without time");
	tp_bad("2026-11-20T20", "hour only");
	tp_bad("2026-11-20T20:15:00.Z", "fraction without digits");
	tp_bad("2026/11/20", "slashes");
	tp_bad("", "empty");
	tp_bad("yesterday", "words");
	tp_bad("-5", "negative epoch");
	tp_bad("1795176900.5", "fractional epoch");
	tp_bad("9999999999999", "epoch out of range");
	tp_bad("999999999999", "epoch past year 9999");
	tp_ok("253402300799", 253402300799LL);
	tp_bad("1969-12-31T23:59:59Z", "before 1970");
	/* the range is of instants, whatever the offset (found by fuzz-scalars:
	 * these parsed, then formatted as years 1969 and 10000) */
	tp_bad("1970-01-01T00:00:00+14:00", "before 1970 in UTC");
	tp_bad("1970-01-01", "local midnight before 1970 in UTC");
	tp_bad("9999-12-31T23:59:59-07:00", "past 9999 in UTC");
	tp_ok("9999-12-31T23:59:59Z", 253402300799LL);
}

static void test_time_format(void)
{
	char buf[64], err[256];
	if (tstamp_tz_set("Asia/Shanghai", err, sizeof err) != 0)
		return;
	tstamp_format(1795176900, buf, sizeof buf);
	expect_str("tstamp_format(1795176900) in Asia/Shanghai", "2026-11-20T20:15:00+08:00", buf);
	/* past 9999 in the local zone: written in UTC, which parses back */
	tstamp_format(253402300799LL, buf, sizeof buf);
	expect_str("tstamp_format(last second) in Asia/Shanghai", "9999-12-31T23:59:59+00:00", buf);
	tstamp_format(253402271999LL, buf, sizeof buf);
	expect_str("tstamp_format(last local second of 9999)", "9999-12-31T23:59:59+08:00", buf);
	expect_int("tstamp_days_in_month(2024, 2)", 29, tstamp_days_in_month(2024, 2));
	expect_int("tstamp_days_in_month(2025, 2)", 28, tstamp_days_in_month(2025, 2));
	expect_int("tstamp_days_in_month(1900, 2)", 28, tstamp_days_in_month(1900, 2));
	expect_int("tstamp_days_in_month(2000, 2)", 29, tstamp_days_in_month(2000, 2));
	expect_int("tstamp_days_from_civil(1970, 1, 1)", 0, tstamp_days_from_civil(1970, 1, 1));
	expect_int("tstamp_days_from_civil(2024, 2, 29)", 1709164800 / 86400, tstamp_days_from_civil(2024, 2, 29));

	/* Naive times follow the configured zone. */
	report(tstamp_tz_set("UTC", err, sizeof err) == 0, "tstamp_tz_set(\"UTC\")", "%s", err);
	tp_ok("2026-11-20 12:15", 1795176900);
	tp_ok("2026-11-20", 1795132800);
	tp_ok("2026-11-20T20:15:00+08:00", 1795176900);
	report(tstamp_tz_set("Asia/Shanghai", err, sizeof err) == 0, "tstamp_tz_set back to Asia/Shanghai", "%s", err);
}

/* ------------------------------------------------------------ duration */

static void dur_ok(const char *s, int64_t want)
{
	char name[128];
	int64_t got = -1;
	snprintf(name, sizeof name, "tstamp_duration(\"%s\") = %" PRId64, s, want);
	if (tstamp_duration(s, &got) != 0)
		report(0, name, "rejected");
	else
		expect_int(name, want, got);
}

static void dur_bad(const char *s)
{
	char name[128];
	int64_t got = 0;
	snprintf(name, sizeof name, "tstamp_duration rejects \"%s\"", s);
	int rc = tstamp_duration(s, &got);
	report(rc != 0, name, "accepted as %" PRId64, got);
}

static void test_duration(void)
{
	dur_ok("30s", 30);
	dur_ok("30m", 1800);
	dur_ok("2h", 7200);
	dur_ok("7d", 604800);
	dur_ok("2w", 1209600);
	dur_ok("1d12h", 129600);
	dur_ok("1h30m15s", 5415);
	dur_bad("");
	dur_bad("5");
	dur_bad("d");
	dur_bad("5x");
	dur_bad("-5d");
	dur_bad("1.5h");
	dur_bad("7d ");
	dur_bad(" 7d");
	dur_bad("7D");
	dur_bad("1d12");
	dur_bad("99999999999999999999d");
	dur_ok("36600d", 36600LL * 86400);
	dur_bad("36601d");
	dur_bad("5300w"); /* over 100 years */
	/* many parts, each in range: the sum must not overflow (UBSan) */
	size_t n = 200000;
	char *big = malloc(n * 9 + 1);
	for (size_t i = 0; i < n; i++)
		memcpy(big + i * 9, "99999999w", 9);
	big[n * 9] = '\0';
	int64_t secs;
	report(tstamp_duration(big, &secs) != 0, "tstamp_duration rejects 200000 x 99999999w (no overflow)",
	       "accepted as %" PRId64, secs);
	free(big);
}

/* --------------------------------------------------------------- money */

static void mp_ok(const char *s, int64_t want)
{
	char name[128];
	int64_t got = -999;
	snprintf(name, sizeof name, "money_parse(\"%s\") = %" PRId64 " fen", s, want);
	if (money_parse(s, &got) != 0)
		report(0, name, "rejected");
	else
		expect_int(name, want, got);
}

static void mp_bad(const char *s)
{
	char name[128];
	int64_t got = 0;
	snprintf(name, sizeof name, "money_parse rejects \"%s\"", s);
	int rc = money_parse(s, &got);
	report(rc != 0, name, "accepted as %" PRId64 " fen", got);
}

static void md_ok(const char *label, double v, int64_t want)
{
	char name[128];
	int64_t got = -999;
	snprintf(name, sizeof name, "money_from_double(%s) = %" PRId64 " fen", label, want);
	if (money_from_double(v, &got) != 0)
		report(0, name, "rejected");
	else
		expect_int(name, want, got);
}

static void md_bad(const char *label, double v)
{
	char name[128];
	int64_t got = 0;
	snprintf(name, sizeof name, "money_from_double rejects %s", label);
	int rc = money_from_double(v, &got);
	report(rc != 0, name, "accepted as %" PRId64 " fen", got);
}

static void test_money(void)
{
	mp_ok("199.00", 19900);
	mp_ok("199", 19900);
	mp_ok("199.5", 19950);
	mp_ok("0.01", 1);
	mp_ok("0.1", 10);
	mp_ok("0.30", 30);
	mp_ok("19.99", 1999);
	mp_ok("4.35", 435);
	mp_ok("1.000", 100);
	mp_ok("0", 0);
	mp_ok("99999999999.99", 9999999999999LL);
	mp_ok("-5", -500);
	mp_ok("-0.5", -50);
	mp_bad("1.005");
	mp_bad("0.001");
	mp_bad("199.");
	mp_bad(".5");
	mp_bad("");
	mp_bad("abc");
	mp_bad("1e2");
	mp_bad("1,000");
	mp_bad("1 000");
	mp_bad(" 199");
	mp_bad("199 ");
	mp_bad("¥199");
	mp_bad("199元");
	mp_bad("--5");
	mp_bad("-");
	mp_bad("0x10");
	mp_bad("1.2.3");
	mp_bad("100000000001");
	mp_bad("99999999999999999999999");

	md_ok("199.0", 199.0, 19900);
	md_ok("199", 199, 19900);
	md_ok("199.5", 199.5, 19950);
	md_ok("19.99", 19.99, 1999);
	md_ok("4.35", 4.35, 435);
	md_ok("1.15", 1.15, 115);
	md_ok("0.07", 0.07, 7);
	md_ok("0.1+0.2", 0.1 + 0.2, 30);
	md_ok("0.3", 0.3, 30);
	md_ok("0.7+0.1", 0.7 + 0.1, 80);
	md_ok("1.1*3", 1.1 * 3, 330);
	md_ok("12345678.91", 12345678.91, 1234567891);
	md_ok("0", 0.0, 0);
	md_ok("-5.5", -5.5, -550);
	md_bad("1.005", 1.005);
	md_bad("0.001", 0.001);
	md_bad("19.999", 19.999);
	md_bad("12345.678 (three decimals on a larger amount)", 12345.678);
	md_bad("10000.005 (half a fen on a larger amount)", 10000.005);
	md_bad("NaN", NAN);
	md_bad("infinity", INFINITY);
	md_bad("1e15", 1e15);
	md_ok("99999999999.99 (the largest)", 99999999999.99, 9999999999999LL);
	md_ok("1e11 (the limit)", 1e11, 10000000000000LL);
	md_bad("12345678901.235 (three decimals on a large amount)", 12345678901.235);
	md_bad("99999999999.999", 99999999999.999);
	md_bad("1234567.891", 1234567.891);
	md_bad("123456789.125 (an exact binary fraction)", 123456789.125);
	md_bad("1e-5", 1e-5);
}

/* ---------------------------------------------------------------- utf8 */

static void u8(const char *label, const char *s, size_t n, int want)
{
	char name[160];
	snprintf(name, sizeof name, "utf8_valid %s %s", want ? "accepts" : "rejects", label);
	int got = utf8_valid(s, n);
	report(got == want, name, "got %d", got);
}

static void cut(const char *label, const char *s, size_t max, size_t want)
{
	char name[160];
	snprintf(name, sizeof name, "utf8_cut %s", label);
	size_t got = utf8_cut(s, max);
	report(got == want, name, "got %zu", got);
}

static void test_utf8(void)
{
	cut("short string whole", "价格", 10, 6);
	cut("at a boundary", "价格", 3, 3);
	cut("inside a 3-byte character backs up", "价格", 4, 3);
	cut("inside the first character: nothing", "价格", 2, 0);
	cut("ASCII exact", "abcdef", 4, 4);
	cut("inside a 4-byte emoji", "a\xF0\x9F\x98\x80" "b", 3, 1);
	cut("after a 2-byte character", "\xC3\xA9\xC3\xA9", 2, 2);
	u8("empty", "", 0, 1);
	u8("ASCII", "hello", 5, 1);
	u8("Chinese 价格多少", "价格多少", strlen("价格多少"), 1);
	u8("emoji U+1F600", "\xF0\x9F\x98\x80", 4, 1);
	u8("U+0080", "\xC2\x80", 2, 1);
	u8("U+07FF", "\xDF\xBF", 2, 1);
	u8("U+0800", "\xE0\xA0\x80", 3, 1);
	u8("U+D7FF", "\xED\x9F\xBF", 3, 1);
	u8("U+E000", "\xEE\x80\x80", 3, 1);
	u8("U+FFFF", "\xEF\xBF\xBF", 3, 1);
	u8("U+10000", "\xF0\x90\x80\x80", 4, 1);
	u8("U+10FFFF", "\xF4\x8F\xBF\xBF", 4, 1);
	u8("embedded NUL counted by length", "a\0b", 3, 1);
	u8("overlong NUL C0 80", "\xC0\x80", 2, 0);
	u8("overlong C1 BF", "\xC1\xBF", 2, 0);
	u8("overlong 3-byte E0 80 80", "\xE0\x80\x80", 3, 0);
	u8("overlong 3-byte E0 9F BF", "\xE0\x9F\xBF", 3, 0);
	u8("overlong 4-byte F0 80 80 80", "\xF0\x80\x80\x80", 4, 0);
	u8("overlong 4-byte F0 8F BF BF", "\xF0\x8F\xBF\xBF", 4, 0);
	u8("surrogate U+D800", "\xED\xA0\x80", 3, 0);
	u8("surrogate U+DFFF", "\xED\xBF\xBF", 3, 0);
	u8("surrogate pair as CESU-8", "\xED\xA0\xBD\xED\xB8\x80", 6, 0);
	u8("U+110000 (F4 90 80 80)", "\xF4\x90\x80\x80", 4, 0);
	u8("F5 lead byte", "\xF5\x80\x80\x80", 4, 0);
	u8("F8 5-byte lead", "\xF8\x88\x80\x80\x80", 5, 0);
	u8("FF byte", "\xFF", 1, 0);
	u8("FE byte", "a\xFE", 2, 0);
	u8("lone continuation 80", "\x80", 1, 0);
	u8("continuation after ASCII", "ab\xBF", 3, 0);
	u8("truncated 3-byte at end", "\xE4\xB8", 2, 0);
	u8("truncated 4-byte at end", "\xF0\x9F\x98", 3, 0);
	u8("truncated 3-byte before ASCII", "\xE4\xB8" "A", 3, 0);
	u8("truncated 2-byte before a lead", "\xC3\xE4\xB8\xAD", 4, 0);
	u8("Chinese cut by length", "中", 2, 0);
	u8("GBK bytes of 价格", "\xBC\xDB\xB8\xF1", 4, 0);
	u8("Latin-1 e-acute", "caf\xE9", 4, 0);
}

/* -------------------------------------------------------------- events */

static struct rules *default_rules(void)
{
	struct rules *r = rules_load(NULL, 0);
	if (!r) {
		printf("FAIL - rules_load(NULL, 0) (returned NULL)\n");
		nfail++;
	}
	return r;
}

/* Parse JSON and check it; returns event_from_json's result. */
static int check_json(const struct rules *r, const char *json, struct event *ev, json_t **objp, char *err, size_t errlen)
{
	json_error_t je;
	*objp = json_loads(json, 0, &je);
	if (!*objp) {
		snprintf(err, errlen, "test JSON does not parse: %s", je.text);
		memset(ev, 0, sizeof *ev);
		return -2;
	}
	return event_from_json(*objp, r, ev, err, errlen);
}

static void ev_bad(const struct rules *r, const char *label, const char *json, const char *want_in_err)
{
	struct event ev;
	json_t *obj;
	char err[256] = "", name[200];
	snprintf(name, sizeof name, "event_from_json rejects %s", label);
	int rc = check_json(r, json, &ev, &obj, err, sizeof err);
	if (rc == -2)
		report(0, name, "%s", err);
	else if (rc == 0)
		report(0, name, "accepted: %s", json);
	else if (want_in_err && !strstr(err, want_in_err))
		report(0, name, "reason \"%s\" does not mention %s", err, want_in_err);
	else if (!err[0])
		report(0, name, "no reason given");
	else
		report(1, name, NULL);
	event_clear(&ev);
	json_decref(obj);
}

static void ev_good(const struct rules *r, const char *label, const char *json)
{
	struct event ev;
	json_t *obj;
	char err[256] = "", name[200];
	snprintf(name, sizeof name, "event_from_json accepts %s", label);
	int rc = check_json(r, json, &ev, &obj, err, sizeof err);
	report(rc == 0, name, "%s", err);
	event_clear(&ev);
	json_decref(obj);
}

#define BASE "\"id\":\"e1\",\"type\":\"view\",\"ts\":\"2026-11-20T20:15:00+08:00\""

static void test_event(void)
{
	struct rules *r = default_rules();
	if (!r)
		return;

	/* The full example record of the design. */
	struct event ev;
	json_t *obj;
	char err[256] = "";
	int rc = check_json(r,
		"{\"id\":\"ord-9001\",\"type\":\"order\",\"ts\":\"2026-11-20T20:15:00+08:00\","
		"\"unionid\":\"oUn1\",\"external_userid\":\"wmA1\",\"phone\":\"+86 138-0013-8000\","
		"\"item\":\"SKU-A\",\"amount\":\"199.00\",\"channel\":\"miniprogram\",\"props\":{\"qty\":2},"
		"\"color\":\"red\",\"staff\":\"\"}",
		&ev, &obj, err, sizeof err);
	report(rc == 0, "event_from_json accepts the design's order record", "%s", err);
	if (rc == 0) {
		expect_str("event id", "ord-9001", ev.id);
		expect_str("event type", "order", ev.type);
		expect_int("event ts", 1795176900, ev.ts);
		expect_str("event item", "SKU-A", ev.item);
		expect_str("event channel", "miniprogram", ev.channel);
		expect_str("empty staff is absent", NULL, ev.staff);
		expect_int("event has_amount", 1, ev.has_amount);
		expect_int("event amount in fen", 19900, ev.amount);
		expect_int("event has three identifiers", 3, ev.nids);
		const char *phone = NULL, *unionid = NULL;
		for (int i = 0; i < ev.nids; i++) {
			if (strcmp(ev.ids[i].kind->name, "phone") == 0)
				phone = ev.ids[i].value;
			if (strcmp(ev.ids[i].kind->name, "unionid") == 0)
				unionid = ev.ids[i].value;
		}
		expect_str("phone normalised (+86, spaces, dashes dropped)", "13800138000", phone);
		expect_str("unionid identifier", "oUn1", unionid);
		report(ev.props && json_integer_value(json_object_get(ev.props, "qty")) == 2,
		       "props keeps the props object", NULL);
		report(ev.props && json_is_string(json_object_get(ev.props, "color")),
		       "props keeps an unknown top-level field", NULL);
		report(ev.props && !json_object_get(ev.props, "unionid") && !json_object_get(ev.props, "amount"),
		       "props leaves out identifiers and core fields", NULL);
	}
	event_clear(&ev);
	json_decref(obj);

	rc = check_json(r, "{\"id\":42,\"type\":\"order\",\"ts\":1795176900,\"member_id\":7,\"amount\":199.5,"
	                   "\"ids\":{\"member_id\":\"7\",\"openid\":\"o1\"},\"expires\":\"2026-12-01T00:00:00Z\"}",
	                &ev, &obj, err, sizeof err);
	report(rc == 0, "event_from_json accepts numeric id, epoch ts, numeric identifier, number amount", "%s", err);
	if (rc == 0) {
		expect_str("numeric id as text", "42", ev.id);
		expect_int("epoch ts", 1795176900, ev.ts);
		expect_int("amount 199.5 as number", 19950, ev.amount);
		expect_int("same identifier at top level and in ids counted once", 2, ev.nids);
		expect_str("numeric member_id as text", "7", ev.nids > 0 ? ev.ids[0].value : NULL);
		expect_int("expires parsed", 1796083200, ev.expires);
		expect_int("has_expires", 1, ev.has_expires);
		report(ev.props == NULL, "no props when nothing extra", NULL);
	}
	event_clear(&ev);
	json_decref(obj);

	ev_good(r, "a message with text", "{\"id\":\"m\",\"type\":\"message\",\"ts\":1,\"unionid\":\"u\",\"text\":\"多少钱\"}");
	ev_good(r, "an unknown type (kept as given)", "{\"id\":\"x\",\"type\":\"live_watch\",\"ts\":1,\"cookie_id\":\"c\"}");
	ev_good(r, "an identifier only in ids", "{" BASE ",\"ids\":{\"anon_id\":\"a1\"}}");
	ev_good(r, "a null optional field", "{" BASE ",\"unionid\":\"u\",\"item\":null,\"props\":null}");
	ev_good(r, "a refund with amount", "{\"id\":\"r\",\"type\":\"refund\",\"ts\":1,\"unionid\":\"u\",\"amount\":\"5\"}");

	/* Not an object */
	ev_bad(r, "a JSON array", "[1,2]", NULL);
	/* id */
	ev_bad(r, "a missing id", "{\"type\":\"view\",\"ts\":1,\"unionid\":\"u\"}", "id");
	ev_bad(r, "a null id", "{\"id\":null,\"type\":\"view\",\"ts\":1,\"unionid\":\"u\"}", "id");
	ev_bad(r, "an empty id", "{\"id\":\"\",\"type\":\"view\",\"ts\":1,\"unionid\":\"u\"}", "id");
	ev_bad(r, "a boolean id", "{\"id\":true,\"type\":\"view\",\"ts\":1,\"unionid\":\"u\"}", "id");
	ev_bad(r, "a real-number id", "{\"id\":1.5,\"type\":\"view\",\"ts\":1,\"unionid\":\"u\"}", "id");
	ev_bad(r, "an object id", "{\"id\":{},\"type\":\"view\",\"ts\":1,\"unionid\":\"u\"}", "id");
	{
		char big[600];
		memset(big, 'i', 300);
		big[300] = '\0';
		char json[800];
		snprintf(json, sizeof json, "{\"id\":\"%s\",\"type\":\"view\",\"ts\":1,\"unionid\":\"u\"}", big);
		ev_bad(r, "an id of 300 bytes", json, "id");
	}
	/* type */
	ev_bad(r, "a missing type", "{\"id\":\"e\",\"ts\":1,\"unionid\":\"u\"}", "type");
	ev_bad(r, "an empty type", "{\"id\":\"e\",\"type\":\"\",\"ts\":1,\"unionid\":\"u\"}", "type");
	ev_bad(r, "a numeric type", "{\"id\":\"e\",\"type\":5,\"ts\":1,\"unionid\":\"u\"}", "type");
	ev_bad(r, "an upper-case type", "{\"id\":\"e\",\"type\":\"Order\",\"ts\":1,\"unionid\":\"u\"}", "type");
	ev_bad(r, "a type with a dash", "{\"id\":\"e\",\"type\":\"add-cart\",\"ts\":1,\"unionid\":\"u\"}", "type");
	/* ts */
	ev_bad(r, "a missing ts", "{\"id\":\"e\",\"type\":\"view\",\"unionid\":\"u\"}", "ts");
	ev_bad(r, "an empty ts", "{\"id\":\"e\",\"type\":\"view\",\"ts\":\"\",\"unionid\":\"u\"}", "ts");
	ev_bad(r, "a boolean ts", "{\"id\":\"e\",\"type\":\"view\",\"ts\":true,\"unionid\":\"u\"}", "ts");
	ev_bad(r, "a real-number ts", "{\"id\":\"e\",\"type\":\"view\",\"ts\":1.5,\"unionid\":\"u\"}", "ts");
	ev_bad(r, "a negative epoch ts", "{\"id\":\"e\",\"type\":\"view\",\"ts\":-1,\"unionid\":\"u\"}", "ts");
	ev_bad(r, "an empty property name (found by fuzzing: SQLite read it as a JSON path)",
	       "{\"id\":\"e\",\"type\":\"profile\",\"ts\":5,\"unionid\":\"u\",\"\":\"x\"}", "property");
	ev_bad(r, "a property name starting with $",
	       "{\"id\":\"e\",\"type\":\"view\",\"ts\":5,\"unionid\":\"u\",\"props\":{\"$[\":1}}", "property");
	ev_bad(r, "an epoch ts past year 9999", "{\"id\":\"e\",\"type\":\"view\",\"ts\":253402300800,\"unionid\":\"u\"}", "ts");
	ev_bad(r, "an impossible date 2026-02-30", "{\"id\":\"e\",\"type\":\"view\",\"ts\":\"2026-02-30T10:00:00+08:00\",\"unionid\":\"u\"}", "impossible date");
	ev_bad(r, "ts in words", "{\"id\":\"e\",\"type\":\"view\",\"ts\":\"yesterday\",\"unionid\":\"u\"}", "ts");
	/* optional strings */
	ev_bad(r, "a numeric item", "{" BASE ",\"unionid\":\"u\",\"item\":5}", "item");
	ev_bad(r, "an object channel", "{" BASE ",\"unionid\":\"u\",\"channel\":{}}", "channel");
	ev_bad(r, "an array text", "{" BASE ",\"unionid\":\"u\",\"text\":[\"a\"]}", "text");
	ev_bad(r, "a boolean staff", "{" BASE ",\"unionid\":\"u\",\"staff\":true}", "staff");
	ev_bad(r, "a numeric group_id", "{" BASE ",\"unionid\":\"u\",\"group_id\":1}", "group_id");
	/* money */
	ev_bad(r, "amount 1.005", "{\"id\":\"o\",\"type\":\"order\",\"ts\":1,\"unionid\":\"u\",\"amount\":\"1.005\"}", "amount");
	ev_bad(r, "amount 1.005 as number", "{\"id\":\"o\",\"type\":\"order\",\"ts\":1,\"unionid\":\"u\",\"amount\":1.005}", "amount");
	ev_bad(r, "a negative amount string", "{\"id\":\"o\",\"type\":\"order\",\"ts\":1,\"unionid\":\"u\",\"amount\":\"-5\"}", "amount");
	ev_bad(r, "a negative amount number", "{\"id\":\"o\",\"type\":\"order\",\"ts\":1,\"unionid\":\"u\",\"amount\":-5}", "amount");
	ev_bad(r, "amount garbage", "{\"id\":\"o\",\"type\":\"order\",\"ts\":1,\"unionid\":\"u\",\"amount\":\"abc\"}", "amount");
	ev_bad(r, "amount with currency sign", "{\"id\":\"o\",\"type\":\"order\",\"ts\":1,\"unionid\":\"u\",\"amount\":\"¥199\"}", "amount");
	ev_bad(r, "a boolean amount", "{\"id\":\"o\",\"type\":\"order\",\"ts\":1,\"unionid\":\"u\",\"amount\":true}", "amount");
	ev_bad(r, "an array amount", "{\"id\":\"o\",\"type\":\"order\",\"ts\":1,\"unionid\":\"u\",\"amount\":[1]}", "amount");
	ev_bad(r, "bad money on a non-order", "{" BASE ",\"unionid\":\"u\",\"amount\":\"1.2.3\"}", "amount");
	/* expires */
	ev_bad(r, "an impossible expires", "{\"id\":\"c\",\"type\":\"coupon_claim\",\"ts\":1,\"unionid\":\"u\",\"expires\":\"2025-02-29\"}", "expires");
	ev_bad(r, "a boolean expires", "{\"id\":\"c\",\"type\":\"coupon_claim\",\"ts\":1,\"unionid\":\"u\",\"expires\":false}", "expires");
	/* checked types */
	ev_bad(r, "an order without amount", "{\"id\":\"o\",\"type\":\"order\",\"ts\":1,\"unionid\":\"u\"}", "amount");
	ev_bad(r, "an order with an empty amount", "{\"id\":\"o\",\"type\":\"order\",\"ts\":1,\"unionid\":\"u\",\"amount\":\"\"}", "amount");
	ev_bad(r, "an order with a null amount", "{\"id\":\"o\",\"type\":\"order\",\"ts\":1,\"unionid\":\"u\",\"amount\":null}", "amount");
	ev_bad(r, "a refund without amount", "{\"id\":\"o\",\"type\":\"refund\",\"ts\":1,\"unionid\":\"u\"}", "amount");
	ev_bad(r, "a message without text", "{\"id\":\"m\",\"type\":\"message\",\"ts\":1,\"unionid\":\"u\"}", "text");
	ev_bad(r, "a message with empty text", "{\"id\":\"m\",\"type\":\"message\",\"ts\":1,\"unionid\":\"u\",\"text\":\"\"}", "text");
	/* identifiers */
	ev_bad(r, "no identifier", "{" BASE "}", "identifier");
	ev_bad(r, "only empty identifiers", "{" BASE ",\"unionid\":\"\",\"phone\":null}", "identifier");
	ev_bad(r, "an unknown top-level kind is not an identifier", "{" BASE ",\"weibo_uid\":\"w1\"}", "identifier");
	ev_bad(r, "an object identifier", "{" BASE ",\"unionid\":{}}", "unionid");
	ev_bad(r, "a boolean identifier", "{" BASE ",\"openid\":true}", "openid");
	ev_bad(r, "a real-number identifier", "{" BASE ",\"member_id\":1.5}", "member_id");
	{
		char big[400], json[600];
		memset(big, 'u', 300);
		big[300] = '\0';
		snprintf(json, sizeof json, "{" BASE ",\"unionid\":\"%s\"}", big);
		ev_bad(r, "an identifier of 300 bytes", json, "unionid");
	}
	ev_bad(r, "a phone with letters", "{" BASE ",\"phone\":\"138abc\"}", "phone");
	ev_bad(r, "a phone too short", "{" BASE ",\"phone\":\"12\"}", "phone");
	ev_bad(r, "ts 0 (facts use 0 for no event)", "{\"id\":\"e\",\"type\":\"view\",\"ts\":0,\"unionid\":\"u\"}", "ts");
	ev_bad(r, "ts 1970-01-01T00:00:00Z", "{\"id\":\"e\",\"type\":\"view\",\"ts\":\"1970-01-01T00:00:00Z\",\"unionid\":\"u\"}", "ts");
	ev_good(r, "ts 1", "{\"id\":\"e\",\"type\":\"view\",\"ts\":1,\"unionid\":\"u\"}");
	{
		static const char *const same[] = {"8613800138000", "86 138 0013 8000", "+86 13800138000", "008613800138000",
		                                   "0086 138-0013-8000", "13800138000"};
		for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
			char out[40] = "", name[120];
			snprintf(name, sizeof name, "event_phone_normalise(\"%s\") = 13800138000", same[i]);
			int prc = event_phone_normalise(same[i], out, sizeof out);
			report(prc == 0 && strcmp(out, "13800138000") == 0, name, "rc %d, got \"%s\"", prc, out);
		}
		char out[40] = "";
		report(event_phone_normalise("861380013800", out, sizeof out) == 0 && strcmp(out, "861380013800") == 0,
		       "event_phone_normalise keeps 86 on a 12-digit number", "got \"%s\"", out);
	}
	ev_bad(r, "an unknown kind in ids", "{" BASE ",\"ids\":{\"weibo_uid\":\"w1\"}}", "weibo_uid");
	ev_bad(r, "an unknown kind in ids next to a good identifier", "{" BASE ",\"unionid\":\"u\",\"ids\":{\"weibo_uid\":\"w1\"}}", "weibo_uid");
	ev_bad(r, "ids as an array", "{" BASE ",\"unionid\":\"u\",\"ids\":[\"u\"]}", "ids");
	ev_bad(r, "ids as a string", "{" BASE ",\"unionid\":\"u\",\"ids\":\"u\"}", "ids");
	ev_bad(r, "a wrong-typed value in ids", "{" BASE ",\"ids\":{\"unionid\":[1]}}", "unionid");
	/* props */
	ev_bad(r, "props as an array", "{" BASE ",\"unionid\":\"u\",\"props\":[1]}", "props");
	ev_bad(r, "props as a string", "{" BASE ",\"unionid\":\"u\",\"props\":\"x\"}", "props");

	rules_free(r);
}

/* ------------------------------------------------ identity and ingest */

struct fx {
	sqlite3 *db;
	struct rules *r;
	struct ingest *in;
	struct ingest_stats st;
	char rules_path[64];
};

static int fx_open(struct fx *f, int batch, const char *rules_text)
{
	memset(f, 0, sizeof *f);
	if (rules_text) {
		snprintf(f->rules_path, sizeof f->rules_path, "/tmp/smr-unit-rules-XXXXXX");
		int fd = mkstemp(f->rules_path);
		if (fd < 0 || write(fd, rules_text, strlen(rules_text)) != (ssize_t)strlen(rules_text)) {
			report(0, "write a temporary rules file", "mkstemp/write failed");
			return -1;
		}
		close(fd);
		f->r = rules_load(f->rules_path, 1);
		unlink(f->rules_path);
		if (!f->r) {
			report(0, "rules_load of a temporary rules file", "returned NULL");
			return -1;
		}
	} else {
		f->r = default_rules();
		if (!f->r)
			return -1;
	}
	f->db = db_open(":memory:");
	f->in = ingest_open(f->db, f->r, 1800000000, batch);
	return 0;
}

static void fx_close(struct fx *f)
{
	if (f->in)
		ingest_close(f->in, &f->st);
	f->in = NULL;
}

static void fx_free(struct fx *f)
{
	fx_close(f);
	if (f->db)
		db_close(f->db);
	rules_free(f->r);
	memset(f, 0, sizeof *f);
}

/* Ingest one JSON record; returns ingest_event's result, or -1 if the record
 * itself is rejected (reported as a failure of the test setup). */
static int ing(struct fx *f, const char *json)
{
	struct event ev;
	json_t *obj;
	char err[256] = "";
	int rc = check_json(f->r, json, &ev, &obj, err, sizeof err);
	if (rc != 0) {
		report(0, "test record accepted", "%s: %s", err, json);
		json_decref(obj);
		return -1;
	}
	rc = ingest_event(f->in, &ev);
	event_clear(&ev);
	json_decref(obj);
	return rc;
}


static int64_t q(sqlite3 *db, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *sql = sqlite3_vmprintf(fmt, ap);
	va_end(ap);
	sqlite3_stmt *st = NULL;
	int64_t v = -999999;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		printf("FAIL - query prepares (%s: %s)\n", sqlite3_errmsg(db), sql);
		nfail++;
	} else if (sqlite3_step(st) == SQLITE_ROW) {
		v = sqlite3_column_type(st, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	sqlite3_free(sql);
	return v;
}

/* A text rendering of the whole resolved state, to compare runs. */
static char *state_text(sqlite3 *db)
{
	static const char *const sql =
		"SELECT group_concat(x, '\n') FROM ("
		" SELECT 'e ' || id || ' ' || pid AS x FROM (SELECT id, pid FROM event ORDER BY id)"
		" UNION ALL SELECT x FROM (SELECT 'i ' || kind || ' ' || value || ' ' || pid AS x FROM identity ORDER BY kind, value)"
		" UNION ALL SELECT x FROM (SELECT 'p ' || pid || ' ' || events || ' ' || orders || ' ' || spend || ' ' || refunds"
		"   || ' ' || refunded || ' ' || coalesce(first_order_at, '-') || ' ' || coalesce(last_order_at, '-')"
		"   || ' ' || coalesce(first_seen, '-') || ' ' || coalesce(last_seen, '-') AS x FROM person ORDER BY pid)"
		" UNION ALL SELECT x FROM (SELECT 't ' || pid || ' ' || type || ' ' || n || ' ' || first_ts || ' ' || last_ts AS x"
		"   FROM person_type ORDER BY pid, type))";
	sqlite3_stmt *st = NULL;
	char *out = NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
	    sqlite3_column_text(st, 0))
		out = xstrdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return out ? out : xstrdup("");
}

/* Facts, person_type, orphans and per-kind limits agree with the events. */
static void check_invariants(struct fx *f, const char *label)
{
	char name[200];
	sqlite3 *db = f->db;
	snprintf(name, sizeof name, "%s: person facts equal a recount of their events", label);
	expect_int(name, 0, q(db,
		"SELECT count(*) FROM person p WHERE "
		" events != (SELECT count(*) FROM event e WHERE e.pid = p.pid)"
		" OR orders != (SELECT count(*) FROM event e WHERE e.pid = p.pid AND type = 'order')"
		" OR spend != (SELECT coalesce(sum(amount), 0) FROM event e WHERE e.pid = p.pid AND type = 'order')"
		" OR refunds != (SELECT count(*) FROM event e WHERE e.pid = p.pid AND type = 'refund')"
		" OR refunded != (SELECT coalesce(sum(amount), 0) FROM event e WHERE e.pid = p.pid AND type = 'refund')"
		" OR first_order_at IS NOT (SELECT min(ts) FROM event e WHERE e.pid = p.pid AND type = 'order')"
		" OR last_order_at IS NOT (SELECT max(ts) FROM event e WHERE e.pid = p.pid AND type = 'order')"
		" OR first_seen IS NOT (SELECT min(ts) FROM event e WHERE e.pid = p.pid)"
		" OR last_seen IS NOT (SELECT max(ts) FROM event e WHERE e.pid = p.pid)"));
	snprintf(name, sizeof name, "%s: person_type equals a recount of events", label);
	expect_int(name, 0, q(db,
		"SELECT (SELECT count(*) FROM (SELECT pid, type, n, first_ts, last_ts FROM person_type EXCEPT"
		"  SELECT pid, type, count(*), min(ts), max(ts) FROM event GROUP BY pid, type))"
		" + (SELECT count(*) FROM (SELECT pid, type, count(*), min(ts), max(ts) FROM event GROUP BY pid, type EXCEPT"
		"  SELECT pid, type, n, first_ts, last_ts FROM person_type))"));
	snprintf(name, sizeof name, "%s: no event, identity or person_type of a missing person", label);
	expect_int(name, 0, q(db,
		"SELECT (SELECT count(*) FROM event WHERE pid NOT IN (SELECT pid FROM person))"
		" + (SELECT count(*) FROM identity WHERE pid NOT IN (SELECT pid FROM person))"
		" + (SELECT count(*) FROM person_type WHERE pid NOT IN (SELECT pid FROM person))"));
	snprintf(name, sizeof name, "%s: every person holds an identifier", label);
	expect_int(name, 0, q(db, "SELECT count(*) FROM person WHERE pid NOT IN (SELECT pid FROM identity)"));
	int over = 0;
	for (size_t k = 0; k < f->r->nkinds; k++)
		if (f->r->kinds[k].max > 0)
			over += (int)q(db, "SELECT count(*) FROM (SELECT pid FROM identity WHERE kind = %Q GROUP BY pid HAVING count(*) > %d)",
			               f->r->kinds[k].name, f->r->kinds[k].max);
	snprintf(name, sizeof name, "%s: no person holds more identifiers of a kind than its max", label);
	expect_int(name, 0, over);
	over = 0;
	for (size_t k = 0; k < f->r->nkinds; k++)
		over += (int)q(db, "SELECT count(*) FROM (SELECT 1 FROM identity WHERE kind = %Q GROUP BY value HAVING count(*) > %d)",
		               f->r->kinds[k].name, f->r->kinds[k].shared > 0 ? f->r->kinds[k].shared : 1);
	snprintf(name, sizeof name, "%s: no value links more persons than its kind's shared limit", label);
	expect_int(name, 0, over);
	snprintf(name, sizeof name, "%s: no placeholder value links anyone", label);
	expect_int(name, 0, q(db, "SELECT count(*) FROM identity WHERE lower(trim(value)) IN ('undefined', 'null', 'none', '0', '-1', '-', 'unknown', '')"
	                          " OR (kind = 'phone' AND value GLOB '0000*')"));
}

#define T0 1795176900 /* 2026-11-20T20:15:00+08:00 */

static void test_attach(void)
{
	struct fx f;
	if (fx_open(&f, 0, NULL))
		return;
	ing(&f, "{\"id\":\"a1\",\"type\":\"view\",\"ts\":1795176900,\"unionid\":\"u1\"}");
	ing(&f, "{\"id\":\"a2\",\"type\":\"view\",\"ts\":1795176901,\"unionid\":\"u1\",\"phone\":\"13800000001\",\"openid\":\"o1\"}");
	ing(&f, "{\"id\":\"a3\",\"type\":\"view\",\"ts\":1795176902,\"phone\":\"+86 138-0000-0001\"}");
	ing(&f, "{\"id\":\"a4\",\"type\":\"view\",\"ts\":1795176903,\"openid\":\"o2\",\"phone\":\"13800000001\"}");
	fx_close(&f);
	expect_int("attach: one person for one human", 1, q(f.db, "SELECT count(*) FROM person"));
	expect_int("attach: new identifiers attach to the person found", 4, q(f.db, "SELECT count(*) FROM identity WHERE pid = 1"));
	expect_int("attach: a normalised phone finds its person", 4, q(f.db, "SELECT count(*) FROM event WHERE pid = 1"));
	expect_int("attach: openid has no limit (two on one person)", 2, q(f.db, "SELECT count(*) FROM identity WHERE kind = 'openid' AND pid = 1"));
	expect_int("attach: identity.first_seen is the event time", 1795176901, q(f.db, "SELECT first_seen FROM identity WHERE kind = 'phone'"));
	expect_int("attach: stats new_persons", 1, f.st.new_persons);
	expect_int("attach: stats merges", 0, f.st.merges);
	expect_int("attach: stats conflicts", 0, f.st.conflicts);
	expect_int("attach: stats inserted", 4, f.st.inserted);
	check_invariants(&f, "attach");
	fx_free(&f);
}

static void test_dedup(void)
{
	struct fx f;
	if (fx_open(&f, 2, NULL))
		return;
	int a = ing(&f, "{\"id\":\"d1\",\"type\":\"order\",\"ts\":1795176900,\"unionid\":\"u1\",\"amount\":10}");
	int b = ing(&f, "{\"id\":\"d1\",\"type\":\"order\",\"ts\":1795176900,\"unionid\":\"u1\",\"amount\":10}");
	ing(&f, "{\"id\":\"d2\",\"type\":\"view\",\"ts\":1795176900,\"unionid\":\"u1\"}");
	ing(&f, "{\"id\":\"d3\",\"type\":\"view\",\"ts\":1795176900,\"unionid\":\"u1\"}");
	/* Same id in a later batch, with another identifier: still a duplicate,
	 * and the identifier must not attach. */
	int c = ing(&f, "{\"id\":\"d1\",\"type\":\"order\",\"ts\":1795176900,\"unionid\":\"u9\",\"amount\":10}");
	fx_close(&f);
	expect_int("dedup: first insert returns 1", 1, a);
	expect_int("dedup: same id in the same batch returns 0", 0, b);
	expect_int("dedup: same id in a later batch returns 0", 0, c);
	expect_int("dedup: stats duplicates", 2, f.st.duplicates);
	expect_int("dedup: stats inserted", 3, f.st.inserted);
	expect_int("dedup: one row per id", 3, q(f.db, "SELECT count(*) FROM event"));
	expect_int("dedup: a duplicate creates no person", 1, q(f.db, "SELECT count(*) FROM person"));
	expect_int("dedup: a duplicate attaches no identifier", 0, q(f.db, "SELECT count(*) FROM identity WHERE value = 'u9'"));
	expect_int("dedup: order counted once", 1, q(f.db, "SELECT orders FROM person"));
	check_invariants(&f, "dedup");
	fx_free(&f);
}

static void test_merge(void)
{
	struct fx f;
	if (fx_open(&f, 2, NULL))
		return;
	/* p1: unionid uA; p2: phone PB (with an order, a profile and a view);
	 * p3: member mC. Then one event names all three. */
	ing(&f, "{\"id\":\"m1\",\"type\":\"order\",\"ts\":1795176900,\"unionid\":\"uA\",\"amount\":\"100.00\"}");
	ing(&f, "{\"id\":\"m2\",\"type\":\"order\",\"ts\":1795176800,\"phone\":\"13900000002\",\"amount\":\"50.50\"}");
	ing(&f, "{\"id\":\"m3\",\"type\":\"profile\",\"ts\":1795176801,\"phone\":\"13900000002\",\"nickname\":\"小王\"}");
	ing(&f, "{\"id\":\"m4\",\"type\":\"view\",\"ts\":1795177000,\"member_id\":\"mC\"}");
	ing(&f, "{\"id\":\"m5\",\"type\":\"view\",\"ts\":1795176950,\"phone\":\"13900000002\"}");
	/* A tag and its log on person 2 (as smr-tag would write them). */
	ingest_commit(f.in);
	sqlite3_exec(f.db, "INSERT INTO tag(pid, tag, since, source) VALUES (2, 'vip', 100, 'manual'), (1, 'vip', 50, 'manual'),"
	                   " (2, 'cart_A', 200, 'rule');"
	                   "INSERT INTO tag_log(pid, tag, op, at, source) VALUES (2, 'cart_A', 'add', 200, 'rule')", NULL, NULL, NULL);
	int64_t before = q(f.db, "SELECT count(*) FROM person");
	/* The merging event names the highest pid first. */
	ing(&f, "{\"id\":\"m6\",\"type\":\"click\",\"ts\":1795177100,\"member_id\":\"mC\",\"phone\":\"13900000002\",\"unionid\":\"uA\"}");
	ing(&f, "{\"id\":\"m7\",\"type\":\"order\",\"ts\":1795170000,\"phone\":\"13900000002\",\"amount\":\"1.01\"}");
	fx_close(&f);
	expect_int("merge: three persons before the merging event", 3, before);
	expect_int("merge: one person after", 1, q(f.db, "SELECT count(*) FROM person"));
	expect_int("merge: the lowest pid survives", 1, q(f.db, "SELECT pid FROM person"));
	expect_int("merge: every event moved to the survivor", 7, q(f.db, "SELECT count(*) FROM event WHERE pid = 1"));
	expect_int("merge: every identity moved to the survivor", 3, q(f.db, "SELECT count(*) FROM identity WHERE pid = 1"));
	expect_int("merge: stats merges", 2, f.st.merges);
	expect_int("merge: stats new_persons", 3, f.st.new_persons);
	expect_int("merge: stats conflicts", 0, f.st.conflicts);
	expect_int("merge: two merge_log rows", 2, q(f.db, "SELECT count(*) FROM merge_log"));
	expect_int("merge: merge_log names survivor 1 and merged 2", 1,
	           q(f.db, "SELECT count(*) FROM merge_log WHERE survivor = 1 AND merged = 2 AND event_id = 'm6' AND at = 1800000000"));
	expect_int("merge: merge_log names survivor 1 and merged 3", 1,
	           q(f.db, "SELECT count(*) FROM merge_log WHERE survivor = 1 AND merged = 3 AND event_id = 'm6'"));
	expect_int("merge: merge_log records the joining identifier", 1,
	           q(f.db, "SELECT count(*) FROM merge_log WHERE merged = 2 AND kind = 'phone' AND value = '13900000002'"));
	expect_int("merge: facts orders", 3, q(f.db, "SELECT orders FROM person WHERE pid = 1"));
	expect_int("merge: facts spend in fen", 10000 + 5050 + 101, q(f.db, "SELECT spend FROM person WHERE pid = 1"));
	expect_int("merge: facts events", 7, q(f.db, "SELECT events FROM person WHERE pid = 1"));
	expect_int("merge: facts first_order_at", 1795170000, q(f.db, "SELECT first_order_at FROM person WHERE pid = 1"));
	expect_int("merge: facts last_order_at", 1795176900, q(f.db, "SELECT last_order_at FROM person WHERE pid = 1"));
	expect_int("merge: facts first_seen", 1795170000, q(f.db, "SELECT first_seen FROM person WHERE pid = 1"));
	expect_int("merge: facts last_seen", 1795177100, q(f.db, "SELECT last_seen FROM person WHERE pid = 1"));
	expect_int("merge: person_type order n", 3, q(f.db, "SELECT n FROM person_type WHERE pid = 1 AND type = 'order'"));
	expect_int("merge: person_type view n", 2, q(f.db, "SELECT n FROM person_type WHERE pid = 1 AND type = 'view'"));
	expect_int("merge: person_type of merged persons removed", 0, q(f.db, "SELECT count(*) FROM person_type WHERE pid != 1"));
	expect_int("merge: profile attributes move to the survivor", 1,
	           q(f.db, "SELECT json_extract(attrs, '$.nickname') = '小王' FROM person WHERE pid = 1"));
	expect_int("merge: tags move to the survivor", 2, q(f.db, "SELECT count(*) FROM tag WHERE pid = 1"));
	expect_int("merge: a tag both held keeps the earlier since", 50, q(f.db, "SELECT since FROM tag WHERE pid = 1 AND tag = 'vip'"));
	expect_int("merge: no tag left on a merged person", 0, q(f.db, "SELECT count(*) FROM tag WHERE pid != 1"));
	expect_int("merge: tag_log moves to the survivor", 1, q(f.db, "SELECT count(*) FROM tag_log WHERE pid = 1 AND tag = 'cart_A'"));
	check_invariants(&f, "merge");
	fx_free(&f);
}

static void test_recycled_phone(void)
{
	struct fx f;
	if (fx_open(&f, 0, NULL))
		return;
	ing(&f, "{\"id\":\"r1\",\"type\":\"order\",\"ts\":1795176900,\"unionid\":\"u1\",\"phone\":\"13700000000\",\"amount\":5}");
	ing(&f, "{\"id\":\"r2\",\"type\":\"order\",\"ts\":1795176999,\"unionid\":\"u2\",\"phone\":\"13700000000\",\"amount\":7}");
	fx_close(&f);
	int64_t p1 = q(f.db, "SELECT pid FROM identity WHERE kind = 'unionid' AND value = 'u1'");
	int64_t p2 = q(f.db, "SELECT pid FROM identity WHERE kind = 'unionid' AND value = 'u2'");
	expect_int("recycled phone: two persons, no merge", 2, q(f.db, "SELECT count(*) FROM person"));
	report(p1 > 0 && p2 > 0 && p1 != p2, "recycled phone: u1 and u2 on different persons", "u1 -> %" PRId64 ", u2 -> %" PRId64, p1, p2);
	expect_int("recycled phone: the event goes to u2's person", p2, q(f.db, "SELECT pid FROM event WHERE id = 'r2'"));
	expect_int("recycled phone: the phone stays with u1's person", p1, q(f.db, "SELECT pid FROM identity WHERE kind = 'phone'"));
	expect_int("recycled phone: stats merges", 0, f.st.merges);
	expect_int("recycled phone: stats conflicts", 1, f.st.conflicts);
	expect_int("recycled phone: no merge_log row", 0, q(f.db, "SELECT count(*) FROM merge_log"));
	expect_int("recycled phone: one conflict_log row", 1, q(f.db, "SELECT count(*) FROM conflict_log"));
	expect_int("recycled phone: conflict_log names event, person, phone and the other person", 1,
	           q(f.db, "SELECT count(*) FROM conflict_log WHERE event_id = 'r2' AND pid = %lld AND kind = 'phone'"
	                   " AND value = '13700000000' AND other_pid = %lld AND reason != ''", (long long)p2, (long long)p1));
	expect_int("recycled phone: u2's person has its own order facts", 700, q(f.db, "SELECT spend FROM person WHERE pid = %lld", (long long)p2));
	expect_int("recycled phone: u1's facts untouched", 500, q(f.db, "SELECT spend FROM person WHERE pid = %lld", (long long)p1));
	check_invariants(&f, "recycled phone");
	fx_free(&f);
}

static void test_shared_cookie(void)
{
	struct fx f;
	if (fx_open(&f, 7, NULL))
		return;
	char json[256];
	for (int i = 0; i < 50; i++) {
		snprintf(json, sizeof json, "{\"id\":\"c%d\",\"type\":\"view\",\"ts\":%d,\"unionid\":\"u%d\",\"cookie_id\":\"shared-device\"}",
		         i, T0 + i, i);
		ing(&f, json);
	}
	/* The same people seen again with the shared cookie and their phone. */
	for (int i = 0; i < 50; i++) {
		snprintf(json, sizeof json, "{\"id\":\"d%d\",\"type\":\"view\",\"ts\":%d,\"unionid\":\"u%d\",\"phone\":\"1390000%04d\",\"cookie_id\":\"shared-device\"}",
		         i, T0 + 100 + i, i, i);
		ing(&f, json);
	}
	fx_close(&f);
	expect_int("shared cookie: 50 unionids stay 50 persons", 50, q(f.db, "SELECT count(*) FROM person"));
	expect_int("shared cookie: each unionid on its own person", 50, q(f.db, "SELECT count(DISTINCT pid) FROM identity WHERE kind = 'unionid'"));
	expect_int("shared cookie: the cookie links at most 5 persons (default shared 5)", 5,
	           q(f.db, "SELECT count(*) FROM identity WHERE kind = 'cookie_id'"));
	expect_int("shared cookie: every person has exactly its 2 events", 50, q(f.db, "SELECT count(*) FROM person WHERE events = 2"));
	expect_int("shared cookie: phones attach to their own persons", 50,
	           q(f.db, "SELECT count(*) FROM identity p JOIN identity u ON p.pid = u.pid AND u.kind = 'unionid'"
	                   " WHERE p.kind = 'phone' AND substr(p.value, 8) + 0 = substr(u.value, 2) + 0"));
	expect_int("shared cookie: no merges", 0, f.st.merges);
	expect_int("shared cookie: each refusal past the 5th person logged", 90,
	           q(f.db, "SELECT count(*) FROM conflict_log WHERE kind = 'cookie_id' AND reason LIKE 'not linked%%'"));
	check_invariants(&f, "shared cookie");
	fx_free(&f);
}

static void test_cookie_limit(void)
{
	struct fx f;
	if (fx_open(&f, 0, NULL))
		return;
	char json[256];
	for (int i = 1; i <= 7; i++) {
		snprintf(json, sizeof json, "{\"id\":\"k%d\",\"type\":\"view\",\"ts\":%d,\"unionid\":\"u1\",\"cookie_id\":\"ck%d\"}", i, T0 + i, i);
		ing(&f, json);
	}
	fx_close(&f);
	expect_int("default cookie_id max 5: five cookies attach", 5, q(f.db, "SELECT count(*) FROM identity WHERE kind = 'cookie_id'"));
	expect_int("default cookie_id max 5: all events on the one person", 7, q(f.db, "SELECT count(*) FROM event WHERE pid = 1"));
	expect_int("default cookie_id max 5: two left out, logged", 2,
	           q(f.db, "SELECT count(*) FROM conflict_log WHERE kind = 'cookie_id' AND value IN ('ck6', 'ck7') AND pid = 1"));
	check_invariants(&f, "cookie limit");
	fx_free(&f);

	if (fx_open(&f, 0, "identity cookie_id max 2\nidentity weibo_uid priority 3 max 1\n"))
		return;
	for (int i = 1; i <= 3; i++) {
		snprintf(json, sizeof json, "{\"id\":\"k%d\",\"type\":\"view\",\"ts\":%d,\"unionid\":\"u1\",\"cookie_id\":\"ck%d\"}", i, T0 + i, i);
		ing(&f, json);
	}
	ing(&f, "{\"id\":\"w1\",\"type\":\"view\",\"ts\":1795176900,\"ids\":{\"weibo_uid\":\"wb1\"},\"phone\":\"13600000000\"}");
	ing(&f, "{\"id\":\"w2\",\"type\":\"view\",\"ts\":1795176901,\"ids\":{\"weibo_uid\":\"wb2\"},\"phone\":\"13600000000\"}");
	ing(&f, "{\"id\":\"w3\",\"type\":\"view\",\"ts\":1795176902,\"weibo_uid\":\"wb2\"}");
	fx_close(&f);
	expect_int("rules cookie_id max 2: two cookies attach", 2, q(f.db, "SELECT count(*) FROM identity WHERE kind = 'cookie_id'"));
	expect_int("rules cookie_id max 2: third cookie logged", 1, q(f.db, "SELECT count(*) FROM conflict_log WHERE value = 'ck3'"));
	int64_t pw1 = q(f.db, "SELECT pid FROM identity WHERE kind = 'weibo_uid' AND value = 'wb1'");
	int64_t pw2 = q(f.db, "SELECT pid FROM identity WHERE kind = 'weibo_uid' AND value = 'wb2'");
	report(pw1 > 0 && pw2 > 0 && pw1 != pw2, "rules weibo_uid max 1: two weibo_uids never share a person",
	       "wb1 -> %" PRId64 ", wb2 -> %" PRId64, pw1, pw2);
	expect_int("rules weibo_uid priority 3 beats phone: event goes to wb2's person", pw2, q(f.db, "SELECT pid FROM event WHERE id = 'w2'"));
	expect_int("declared kind usable as a top-level field", pw2, q(f.db, "SELECT pid FROM event WHERE id = 'w3'"));
	expect_int("rules: phone stays with wb1's person", pw1, q(f.db, "SELECT pid FROM identity WHERE kind = 'phone'"));
	check_invariants(&f, "rules limits");
	fx_free(&f);
}

/* Four family members on one tablet, known only by their OpenIDs (no
 * per-person limit): the tablet's cookie must not make them one person. */
static void test_family_tablet(void)
{
	struct fx f;
	if (fx_open(&f, 0, "identity cookie_id shared 3\n"))
		return;
	char json[256];
	ing(&f, "{\"id\":\"a0\",\"type\":\"view\",\"ts\":1795176800,\"cookie_id\":\"tablet\"}"); /* anonymous first */
	for (int i = 1; i <= 4; i++) {
		snprintf(json, sizeof json, "{\"id\":\"f%d\",\"type\":\"view\",\"ts\":%d,\"openid\":\"o%d\",\"cookie_id\":\"tablet\"}",
		         i, T0 + i, i);
		ing(&f, json);
	}
	ing(&f, "{\"id\":\"a1\",\"type\":\"view\",\"ts\":1795177000,\"cookie_id\":\"tablet\"}"); /* anonymous again */
	fx_close(&f);
	expect_int("family tablet: four openids stay four persons", 4, q(f.db, "SELECT count(DISTINCT pid) FROM identity WHERE kind = 'openid'"));
	expect_int("family tablet: the anonymous visit joins the first to log in", q(f.db, "SELECT pid FROM identity WHERE value = 'o1'"),
	           q(f.db, "SELECT pid FROM event WHERE id = 'a0'"));
	expect_int("family tablet: shared 3, the cookie links three persons", 3, q(f.db, "SELECT count(*) FROM identity WHERE value = 'tablet'"));
	expect_int("family tablet: the fourth is refused and logged", 1,
	           q(f.db, "SELECT count(*) FROM conflict_log WHERE value = 'tablet' AND reason LIKE 'not linked%%'"
	                   " AND pid = (SELECT pid FROM identity WHERE value = 'o4')"));
	expect_int("family tablet: a cookie-only visit goes to the person linked most recently",
	           q(f.db, "SELECT pid FROM identity WHERE value = 'o3'"), q(f.db, "SELECT pid FROM event WHERE id = 'a1'"));
	expect_int("family tablet: no merges", 0, f.st.merges);
	check_invariants(&f, "family tablet");
	fx_free(&f);

	/* A value that is not shareable still merges as before. */
	if (fx_open(&f, 0, NULL))
		return;
	ing(&f, "{\"id\":\"g1\",\"type\":\"view\",\"ts\":1795176901,\"openid\":\"o1\",\"unionid\":\"u1\"}");
	ing(&f, "{\"id\":\"g2\",\"type\":\"view\",\"ts\":1795176902,\"openid\":\"o2\",\"unionid\":\"u1\"}");
	fx_close(&f);
	expect_int("not shareable: a unionid links two openids", 1, q(f.db, "SELECT count(DISTINCT pid) FROM identity WHERE kind = 'openid'"));
	check_invariants(&f, "unionid links");
	fx_free(&f);
}

/* Profile attributes: per attribute, the latest profile event by ts wins,
 * through ingest order and through merges. */
static void test_attrs_newest(void)
{
	struct fx f;
	if (fx_open(&f, 0, NULL))
		return;
	/* p1 (survivor, lower pid): an old city and a new level; p2: a newer city */
	ing(&f, "{\"id\":\"n1\",\"type\":\"profile\",\"ts\":1000,\"unionid\":\"uA\",\"city\":\"上海\",\"level\":\"gold\"}");
	ing(&f, "{\"id\":\"n2\",\"type\":\"profile\",\"ts\":3000,\"unionid\":\"uA\",\"level\":\"diamond\"}");
	ing(&f, "{\"id\":\"n3\",\"type\":\"profile\",\"ts\":2000,\"phone\":\"13900000009\",\"city\":\"北京\",\"level\":\"silver\",\"vip\":true}");
	/* an older profile ingested later does not override */
	ing(&f, "{\"id\":\"n4\",\"type\":\"profile\",\"ts\":500,\"phone\":\"13900000009\",\"city\":\"广州\",\"nickname\":\"小李\"}");
	ing(&f, "{\"id\":\"n5\",\"type\":\"view\",\"ts\":4000,\"unionid\":\"uA\",\"phone\":\"13900000009\"}");
	fx_close(&f);
	expect_int("attrs: the merge happened", 1, f.st.merges);
	expect_int("attrs: the merged person's newer city wins over the survivor's older one", 1,
	           q(f.db, "SELECT json_extract(attrs, '$.city') = '北京' FROM person WHERE pid = 1"));
	expect_int("attrs: the survivor's newer level wins over the merged person's older one", 1,
	           q(f.db, "SELECT json_extract(attrs, '$.level') = 'diamond' FROM person WHERE pid = 1"));
	expect_int("attrs: an attribute only the merged person had is kept, with its JSON type", 1,
	           q(f.db, "SELECT json_type(attrs, '$.vip') = 'true' FROM person WHERE pid = 1"));
	expect_int("attrs: an older profile ingested later sets only what is missing", 1,
	           q(f.db, "SELECT json_extract(attrs, '$.nickname') = '小李' FROM person WHERE pid = 1"));
	check_invariants(&f, "attrs newest");
	fx_free(&f);
}

/* Placeholder values never link anyone. */
static void test_blocked(void)
{
	struct fx f;
	if (fx_open(&f, 0, "identity openid block \"oTEST000\" \"test user\"\nidentity phone block \"+86 138 0000 0000\"\n"))
		return;
	static const char *const placeholders[] = {
		"\"openid\":\"undefined\"", "\"openid\":\"NULL\"", "\"openid\":\"0\"", "\"openid\":0", "\"openid\":\"-\"",
		"\"openid\":\" none \"", "\"openid\":-1", "\"phone\":\"00000000000\"", "\"phone\":\"11111111111\"",
		"\"phone\":\"00000\"", "\"openid\":\"otest000\"", "\"openid\":\"Test User\"", "\"phone\":\"13800000000\"",
		"\"cookie_id\":\"unknown\"", "\"openid\":\"nan\"", "\"openid\":\"   \"",
	};
	char json[256];
	int n = (int)(sizeof placeholders / sizeof placeholders[0]);
	for (int i = 0; i < n; i++) {
		snprintf(json, sizeof json, "{\"id\":\"b%d\",\"type\":\"view\",\"ts\":%d,\"unionid\":\"u%d\",%s}", i, T0 + i, i,
		         placeholders[i]);
		ing(&f, json);
	}
	fx_close(&f);
	expect_int("blocked: each unionid stays its own person", n, q(f.db, "SELECT count(*) FROM person"));
	expect_int("blocked: no placeholder is stored", 0, q(f.db, "SELECT count(*) FROM identity WHERE kind != 'unionid'"));
	expect_int("blocked: each is logged with reason 'blocked value'", n,
	           q(f.db, "SELECT count(*) FROM conflict_log WHERE reason = 'blocked value' AND pid IS NOT NULL"));
	check_invariants(&f, "blocked");
	fx_free(&f);

	struct rules *r = default_rules();
	if (!r)
		return;
	ev_bad(r, "a record whose only identifier is a placeholder", "{" BASE ",\"openid\":\"undefined\"}", "blocked");
	ev_bad(r, "a record whose only identifier is a zero phone", "{" BASE ",\"phone\":\"000-0000-0000\"}", "blocked");
	ev_good(r, "a real value that contains a placeholder word", "{" BASE ",\"openid\":\"null-o1\"}");
	ev_good(r, "a value of zeros and other digits", "{" BASE ",\"member_id\":\"0001\"}");
	rules_free(r);
}

/* Facts stay right when merges happen across batch boundaries. */
static void test_facts_batches(void)
{
	static const char *const recs[] = {
		"{\"id\":\"f1\",\"type\":\"order\",\"ts\":1795000000,\"unionid\":\"u1\",\"amount\":\"100.00\"}",
		"{\"id\":\"f2\",\"type\":\"order\",\"ts\":1795100000,\"phone\":\"13500000000\",\"amount\":\"50.50\"}",
		"{\"id\":\"f3\",\"type\":\"order\",\"ts\":1795200000,\"phone\":\"13500000000\",\"amount\":1.01}",
		"{\"id\":\"f4\",\"type\":\"view\",\"ts\":1795300000,\"member_id\":\"m1\"}",
		"{\"id\":\"f5\",\"type\":\"add_cart\",\"ts\":1795300001,\"member_id\":\"m1\",\"item\":\"SKU-A\"}",
		"{\"id\":\"f6\",\"type\":\"view\",\"ts\":1795400000,\"unionid\":\"u1\",\"phone\":\"13500000000\"}",
		"{\"id\":\"f7\",\"type\":\"order\",\"ts\":1794000000,\"unionid\":\"u1\",\"amount\":9.99}",
		"{\"id\":\"f8\",\"type\":\"refund\",\"ts\":1795500000,\"unionid\":\"u1\",\"amount\":\"10\"}",
		"{\"id\":\"f9\",\"type\":\"order\",\"ts\":1795600000,\"member_id\":\"m1\",\"amount\":\"0.50\"}",
		"{\"id\":\"f10\",\"type\":\"view\",\"ts\":1795700000,\"member_id\":\"m1\",\"openid\":\"o1\",\"unionid\":\"u1\"}",
		"{\"id\":\"f11\",\"type\":\"order\",\"ts\":1795800000,\"openid\":\"o1\",\"amount\":\"2\"}",
	};
	static const int batches[] = {1, 2, 3, 4, 5000};
	char *first = NULL;
	for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
		struct fx f;
		char label[64], name[160];
		snprintf(label, sizeof label, "facts (batch %d)", batches[b]);
		if (fx_open(&f, batches[b], NULL))
			return;
		for (size_t i = 0; i < sizeof recs / sizeof recs[0]; i++)
			ing(&f, recs[i]);
		fx_close(&f);
		snprintf(name, sizeof name, "%s: one person", label);
		expect_int(name, 1, q(f.db, "SELECT count(*) FROM person"));
		snprintf(name, sizeof name, "%s: orders", label);
		expect_int(name, 6, q(f.db, "SELECT orders FROM person"));
		snprintf(name, sizeof name, "%s: spend in fen", label);
		expect_int(name, 10000 + 5050 + 101 + 999 + 50 + 200, q(f.db, "SELECT spend FROM person"));
		snprintf(name, sizeof name, "%s: refunds and refunded", label);
		expect_int(name, 1001000, q(f.db, "SELECT refunds * 1000000 + refunded FROM person"));
		snprintf(name, sizeof name, "%s: first order", label);
		expect_int(name, 1794000000, q(f.db, "SELECT first_order_at FROM person"));
		snprintf(name, sizeof name, "%s: last order", label);
		expect_int(name, 1795800000, q(f.db, "SELECT last_order_at FROM person"));
		snprintf(name, sizeof name, "%s: events", label);
		expect_int(name, 11, q(f.db, "SELECT events FROM person"));
		snprintf(name, sizeof name, "%s: first/last seen", label);
		expect_int(name, 1, q(f.db, "SELECT first_seen = 1794000000 AND last_seen = 1795800000 FROM person"));
		snprintf(name, sizeof name, "%s: per-type counts", label);
		expect_int(name, 1, q(f.db, "SELECT (SELECT n FROM person_type WHERE type = 'order') = 6 AND"
		                            " (SELECT n FROM person_type WHERE type = 'view') = 3 AND"
		                            " (SELECT n FROM person_type WHERE type = 'add_cart') = 1 AND"
		                            " (SELECT n FROM person_type WHERE type = 'refund') = 1"));
		check_invariants(&f, label);
		char *s = state_text(f.db);
		if (!first) {
			first = s;
		} else {
			snprintf(name, sizeof name, "%s: same end state as batch 1", label);
			report(strcmp(first, s) == 0, name, "state differs");
			free(s);
		}
		fx_free(&f);
	}
	free(first);
}

/* Many random events over small identifier pools, in different batch sizes:
 * the end state is the same, and the invariants hold. */
static uint64_t rng_state;
static unsigned rnd(unsigned n)
{
	rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (unsigned)((rng_state >> 33) % n);
}

static void test_random(void)
{
	static const int batches[] = {1, 7, 64, 5000};
	static const char *const types[] = {"view", "click", "order", "refund", "add_cart", "order"};
	char *first = NULL;
	for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
		struct fx f;
		char label[64], name[160], json[512];
		snprintf(label, sizeof label, "random (batch %d)", batches[b]);
		if (fx_open(&f, batches[b], NULL))
			return;
		rng_state = 42;
		for (int i = 0; i < 1500; i++) {
			int id = rnd(10) == 0 ? (int)rnd(i + 1) : i; /* some duplicates */
			const char *type = types[rnd(6)];
			int n = snprintf(json, sizeof json, "{\"id\":\"r%d\",\"type\":\"%s\",\"ts\":%u", id, type, 1790000000u + rnd(10000000));
			if (strcmp(type, "order") == 0 || strcmp(type, "refund") == 0)
				n += snprintf(json + n, sizeof json - (size_t)n, ",\"amount\":\"%u.%02u\"", rnd(500), rnd(100));
			int nid = 1 + (int)rnd(3);
			for (int k = 0; k < nid; k++) {
				switch (rnd(5)) {
				case 0: n += snprintf(json + n, sizeof json - (size_t)n, ",\"unionid\":\"u%u\"", rnd(150)); break;
				case 1: n += snprintf(json + n, sizeof json - (size_t)n, ",\"phone\":\"1380000%04u\"", rnd(120)); break;
				case 2: n += snprintf(json + n, sizeof json - (size_t)n, ",\"member_id\":\"m%u\"", rnd(80)); break;
				case 3: n += snprintf(json + n, sizeof json - (size_t)n, ",\"cookie_id\":\"c%u\"", rnd(12)); break;
				default: n += snprintf(json + n, sizeof json - (size_t)n, ",\"openid\":\"o%u\"", rnd(200)); break;
				}
			}
			/* placeholders next to real identifiers (a kind drawn twice
			 * repeats a key: json_loads keeps the last) */
			if (rnd(4) == 0)
				n += snprintf(json + n, sizeof json - (size_t)n, ",\"ids\":{\"anon_id\":\"null\",\"openid\":\"undefined\"}");
			snprintf(json + n, sizeof json - (size_t)n, "}");
			ing(&f, json);
		}
		fx_close(&f);
		snprintf(name, sizeof name, "%s: read = inserted + duplicates", label);
		expect_int(name, 1500, f.st.inserted + f.st.duplicates);
		snprintf(name, sizeof name, "%s: one row per distinct id", label);
		expect_int(name, f.st.inserted, q(f.db, "SELECT count(DISTINCT id) FROM event"));
		snprintf(name, sizeof name, "%s: person count = new persons - merges", label);
		expect_int(name, f.st.new_persons - f.st.merges, q(f.db, "SELECT count(*) FROM person"));
		snprintf(name, sizeof name, "%s: merge_log has a row per merge", label);
		expect_int(name, f.st.merges, q(f.db, "SELECT count(*) FROM merge_log"));
		snprintf(name, sizeof name, "%s: merges happened (the test exercises them)", label);
		report(f.st.merges > 10 && f.st.conflicts > 10, name, "merges %ld conflicts %ld", f.st.merges, f.st.conflicts);
		check_invariants(&f, label);
		char *s = state_text(f.db);
		if (!first) {
			first = s;
		} else {
			snprintf(name, sizeof name, "%s: same end state as batch 1", label);
			report(strcmp(first, s) == 0, name, "state differs");
			free(s);
		}
		fx_free(&f);
	}
	free(first);
}

static void test_schema(void)
{
	sqlite3 *db = db_open(":memory:");
	expect_int("db_open: user_version is the schema version", SMR_SCHEMA_VERSION, q(db, "PRAGMA user_version"));
	expect_int("db_open: identity(kind, value, pid) exists", 0, q(db, "SELECT count(*) FROM (SELECT kind, value, pid FROM identity)"));
	expect_int("db_open: event(pid, type, ts, item, amount, text, props) exists", 0,
	           q(db, "SELECT count(*) FROM (SELECT pid, type, ts, item, amount, text, props FROM event)"));
	db_meta_set(db, "watermark", 77);
	expect_int("db_meta_set then db_meta_get", 77, db_meta_get(db, "watermark", 5));
	expect_int("db_meta_get default", 5, db_meta_get(db, "absent", 5));
	db_close(db);

	/* A version-1 database with identities and attributes migrates to the
	 * current schema keeping them, and then takes a value shared by two. */
	char path[] = "/tmp/smr-unit-v1-XXXXXX";
	int fd = mkstemp(path);
	sqlite3 *raw = NULL;
	if (fd < 0 || sqlite3_open(path, &raw) != SQLITE_OK ||
	    sqlite3_exec(raw, smr_schema_v1, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(raw, "INSERT INTO person(pid, created_at, attrs) VALUES (1, 1, '{\"city\":\"SH\"}');"
	                      "INSERT INTO identity VALUES ('unionid', 'u1', 1, 10), ('cookie_id', 'c1', 1, 10);"
	                      "PRAGMA user_version = 1;", NULL, NULL, NULL) != SQLITE_OK) {
		report(0, "make a version-1 database", "%s", raw ? sqlite3_errmsg(raw) : "mkstemp");
	} else {
		sqlite3_close(raw);
		raw = NULL;
		db = db_open(path);
		expect_int("migration from version 1: identities kept", 2, q(db, "SELECT count(*) FROM identity WHERE pid = 1"));
		expect_int("migration from version 1: attributes kept", 1, q(db, "SELECT attrs ->> 'city' = 'SH' FROM person"));
		sqlite3_exec(db, "INSERT INTO identity VALUES ('cookie_id', 'c1', 2, 11)", NULL, NULL, NULL);
		expect_int("migration from version 1: a value may then link two persons", 2,
		           q(db, "SELECT count(*) FROM identity WHERE value = 'c1'"));
		expect_int("migration from version 1: still one row per (kind, value, pid)", SQLITE_CONSTRAINT,
		           sqlite3_exec(db, "INSERT INTO identity VALUES ('cookie_id', 'c1', 2, 12)", NULL, NULL, NULL) & 0xff);
		db_close(db);
	}
	sqlite3_close(raw);
	if (fd >= 0) {
		close(fd);
		unlink(path);
		char side[64];
		snprintf(side, sizeof side, "%s-wal", path);
		unlink(side);
		snprintf(side, sizeof side, "%s-shm", path);
		unlink(side);
	}
}

/* Templates: values, fallbacks for missing and empty values, numbers, and
 * a missing variable failing instead of leaking "{{nickname}}". */
static void test_render(void)
{
	json_t *vars = json_pack("{s:s, s:s, s:i}", "nickname", "小王", "city", "", "pid", 7);
	char err[128];
	char *out = render("{{nickname|亲}}，{{ city | 上海 }} #{{pid}}", vars, err, sizeof err);
	expect_str("render: value, fallback for an empty value, spaces, a number", "小王，上海 #7", out);
	free(out);
	out = render("{{staff|客服}}好", vars, err, sizeof err);
	expect_str("render: fallback for a missing variable", "客服好", out);
	free(out);
	out = render("你好 {{coupon_code}}", vars, err, sizeof err);
	report(out == NULL && strstr(err, "coupon_code") != NULL, "render: a missing variable with no fallback fails, naming it",
	       "got %s / %s", out ? out : "NULL", err);
	free(out);
	out = render("oops {{nickname", vars, err, sizeof err);
	report(out == NULL, "render: an unclosed {{ fails", "got %s", out ? out : "NULL");
	free(out);
	out = render("no placeholders", vars, err, sizeof err);
	expect_str("render: plain text", "no placeholders", out);
	free(out);
	json_decref(vars);
}

/* Quiet hours across midnight, in the configured zone. */
static void test_quiet(void)
{
	char err[128];
	tstamp_tz_set("Asia/Shanghai", err, sizeof err);
	struct policy p = {.has_quiet = 1, .quiet_start = 22 * 60, .quiet_end = 8 * 60};
	int64_t t, want;
	tstamp_parse("2026-11-20T23:00:00+08:00", &t, err, sizeof err);
	tstamp_parse("2026-11-21T08:00:00+08:00", &want, err, sizeof err);
	expect_int("quiet 22:00-08:00: 23:00 waits for 08:00 the next day", want, policy_quiet_end(&p, t));
	tstamp_parse("2026-11-21T00:30:00+08:00", &t, err, sizeof err);
	expect_int("quiet 22:00-08:00: 00:30 waits for 08:00 the same day", want, policy_quiet_end(&p, t));
	tstamp_parse("2026-11-21T08:00:00+08:00", &t, err, sizeof err);
	expect_int("quiet 22:00-08:00: 08:00 is not quiet", t, policy_quiet_end(&p, t));
	tstamp_parse("2026-11-21T21:59:59+08:00", &t, err, sizeof err);
	expect_int("quiet 22:00-08:00: 21:59:59 is not quiet", t, policy_quiet_end(&p, t));
	struct policy q = {.has_quiet = 1, .quiet_start = 12 * 60, .quiet_end = 14 * 60};
	tstamp_parse("2026-11-21T13:00:00+08:00", &t, err, sizeof err);
	tstamp_parse("2026-11-21T14:00:00+08:00", &want, err, sizeof err);
	expect_int("quiet 12:00-14:00: 13:00 waits for 14:00", want, policy_quiet_end(&q, t));
}

/* Step due times keep their local wall time across a DST change. */
static void test_step_due(void)
{
	char err[128];
	struct sop_step st = {.day = 2, .hour = 20, .minute = 0};
	int64_t day0, want;
	tstamp_tz_set("America/New_York", err, sizeof err);
	tstamp_parse("2026-10-31T10:00:00-04:00", &day0, err, sizeof err); /* EDT */
	tstamp_parse("2026-11-02T20:00:00-05:00", &want, err, sizeof err); /* EST */
	expect_int("sop step 2d 20:00 across the New York DST end keeps 20:00 local", want, sop_step_due(&st, day0));
	tstamp_tz_set("Asia/Shanghai", err, sizeof err);
	struct sop_step early = {.day = 0, .hour = 0, .minute = 30};
	tstamp_parse("2026-11-20T10:00:00+08:00", &day0, err, sizeof err);
	tstamp_parse("2026-11-19T16:30:00Z", &want, err, sizeof err);
	expect_int("sop step 0d 00:30 in Shanghai is 16:30 UTC the day before", want, sop_step_due(&early, day0));
	struct sop_step eom = {.day = 3, .hour = 9, .minute = 0};
	tstamp_parse("2026-01-30T10:00:00+08:00", &day0, err, sizeof err);
	tstamp_parse("2026-02-02T09:00:00+08:00", &want, err, sizeof err);
	expect_int("sop step 3d from Jan 30 lands on Feb 2", want, sop_step_due(&eom, day0));
}

/* One answer for a local time that happens twice or never, whatever was
 * converted before (mktime's choice depends on its earlier calls). */
static void test_dst_edges(void)
{
	char err[128];
	int64_t t, want_amb, want_gap;
	tstamp_tz_set("America/New_York", err, sizeof err);
	tstamp_parse("2026-11-01T05:30:00Z", &want_amb, err, sizeof err); /* 01:30 EDT, the earlier */
	tstamp_parse("2026-03-08T07:30:00Z", &want_gap, err, sizeof err); /* 03:30 EDT */
	const char *before[] = {"2026-07-01T12:00:00", "2026-12-01T12:00:00", "2026-11-01T01:10:00-05:00",
	                        "2026-11-01T01:10:00-04:00", "2026-11-01T03:00:00"};
	for (size_t i = 0; i < sizeof before / sizeof before[0]; i++) {
		char name[160];
		tstamp_parse(before[i], &t, err, sizeof err);
		tstamp_local_to_utc(2026, 11, 1, 1, 59, 0);
		snprintf(name, sizeof name, "ambiguous 2026-11-01 01:30 New York is 01:30 EDT (after %s)", before[i]);
		expect_int(name, want_amb, tstamp_local_to_utc(2026, 11, 1, 1, 30, 0));
		tstamp_parse("2026-11-01 01:30", &t, err, sizeof err);
		snprintf(name, sizeof name, "tstamp_parse of the ambiguous 01:30 agrees (after %s)", before[i]);
		expect_int(name, want_amb, t);
		snprintf(name, sizeof name, "non-existent 2026-03-08 02:30 New York moves forward to 03:30 EDT (after %s)",
		         before[i]);
		expect_int(name, want_gap, tstamp_local_to_utc(2026, 3, 8, 2, 30, 0));
	}
	tstamp_parse("2026-11-01T06:30:00Z", &t, err, sizeof err);
	expect_int("01:30 on the day after is plain EST", t + 86400, tstamp_local_to_utc(2026, 11, 2, 1, 30, 0));
	expect_int("day 32 of October is November 1st", want_amb, tstamp_local_to_utc(2026, 10, 32, 1, 30, 0));
	struct sop_step st = {.day = 1, .hour = 1, .minute = 30};
	tstamp_parse("2026-10-31T12:00:00-04:00", &t, err, sizeof err);
	expect_int("sop step 1d 01:30 into the fall-back night: the earlier instant", want_amb, sop_step_due(&st, t));
	struct policy q = {.has_quiet = 1, .quiet_start = 0, .quiet_end = 90};
	tstamp_parse("2026-11-01T04:10:00Z", &t, err, sizeof err); /* 00:10 EDT */
	expect_int("quiet 00:00-01:30 ends at the earlier 01:30 on the fall-back night", want_amb, policy_quiet_end(&q, t));
	tstamp_tz_set("Asia/Shanghai", err, sizeof err);
}

/* timezone: a real zone file, not a directory or another file. */
static void test_tz_names(void)
{
	char err[256];
	report(tstamp_tz_set("Asia", err, sizeof err) != 0, "timezone Asia (a directory) is refused", "accepted");
	report(strstr(err, "not a time zone file") != NULL, "... saying it is not a zone file", "%s", err);
	report(tstamp_tz_set("leapseconds", err, sizeof err) != 0, "timezone leapseconds (not TZif) is refused", "accepted");
	report(tstamp_tz_set("Nowhere/Atlantis", err, sizeof err) != 0, "an unknown zone is refused", "accepted");
	report(tstamp_tz_set("America/New_York", err, sizeof err) == 0, "America/New_York is a zone", "%s", err);
	report(strcmp(tstamp_tz_name(), "America/New_York") == 0, "a refused zone left the last good one", "%s", tstamp_tz_name());
	tstamp_tz_set("Asia/Shanghai", err, sizeof err);
}

/* More than 32 dnd tags all count; more than 32 caps is a rules error. */
static void test_policy_many(void)
{
	char text[8192], path[] = "/tmp/smr-unit-policy-XXXXXX";
	size_t n = (size_t)snprintf(text, sizeof text, "policy\n  dnd tag");
	for (int i = 0; i < 40; i++)
		n += (size_t)snprintf(text + n, sizeof text - n, " t%d", i);
	n += (size_t)snprintf(text + n, sizeof text - n, "\n  dnd tag u1 u2\n  cap any");
	for (int i = 0; i < 33; i++)
		n += (size_t)snprintf(text + n, sizeof text - n, " %d/%dh", i + 1, i + 1);
	snprintf(text + n, sizeof text - n, "\nend\n");
	int fd = mkstemp(path);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		report(0, "write a temporary rules file", "mkstemp/write failed");
		return;
	}
	close(fd);
	struct rules *r = rules_load(path, 1);
	unlink(path);
	if (!r) {
		report(0, "rules_load of the policy", "returned NULL");
		return;
	}
	struct policy *p = policy_parse(r);
	expect_int("42 dnd tags on two lines are all kept", 42, (int64_t)p->ndnd);
	report(p->ndnd == 42 && strcmp(p->dnd[39], "t39") == 0 && strcmp(p->dnd[41], "u2") == 0,
	       "the 40th dnd tag is t39, the last u2", "ndnd %zu", p->ndnd);
	expect_int("33 caps: one rules error (the 33rd)", 1, p->errors);
	policy_free(p);
	rules_free(r);
}

/* Per-person functions get the person passed in; SQLite's own count(*)
 * and count(x) are left alone; errors carry their offset. */
static void test_ruleexpr(void)
{
	struct ruleexpr re;
	char err[128];
	size_t off = 0;
	int rc = ruleexpr_rewrite("count('add_cart', '7d', 'SKU-A') > 0 and orders_since('add_cart') = 0", &re, err, sizeof err, &off);
	expect_str("ruleexpr: person functions get facts.pid",
	           "count(facts.pid, 'add_cart', '7d', 'SKU-A') > 0 and orders_since(facts.pid, 'add_cart') = 0",
	           rc == 0 ? re.sql : err);
	if (rc == 0) {
		size_t at = (size_t)(strstr(re.sql, "orders_since") - re.sql);
		expect_int("ruleexpr: offsets map back past insertions", 41, (int64_t)ruleexpr_origin(&re, at));
		ruleexpr_free(&re);
	}
	rc = ruleexpr_rewrite("(SELECT count(*) FROM event) > 1 and count(x) = 0", &re, err, sizeof err, &off);
	expect_str("ruleexpr: count(*) and count(x) stay SQLite's", "(SELECT count(*) FROM event) > 1 and count(x) = 0",
	           rc == 0 ? re.sql : err);
	if (rc == 0)
		ruleexpr_free(&re);
	rc = ruleexpr_rewrite("said('(unclosed', '7d')", &re, err, sizeof err, &off);
	report(rc != 0 && off == 5, "ruleexpr: a bad literal pattern is an error at its offset", "rc %d off %zu: %s", rc, off, err);
	rc = ruleexpr_rewrite("count('view', '7x') > 0", &re, err, sizeof err, &off);
	report(rc != 0 && off == 14, "ruleexpr: a bad literal window is an error at its offset", "rc %d off %zu: %s", rc, off, err);
	rc = ruleexpr_rewrite("orders > 0) OR (1", &re, err, sizeof err, &off);
	report(rc != 0 && off == 10, "ruleexpr: an unbalanced ) is an error at its offset", "rc %d off %zu: %s", rc, off, err);
}

static void test_csv_formula(void)
{
	static const char *const risky[] = {"=1+2", "=HYPERLINK(\"http://x\")", "+cmd|' /C calc'!A0", "-2+3",
	                                    "@SUM(A1)", "\tx", "\r=1", "-", "+", "-5x", "+86 138", "-.5"};
	static const char *const safe[] = {"-5", "+8613800138000", "12", "-0.25", "abc", "a=b", "", " =1",
	                                   "1-", "张三"};
	for (size_t i = 0; i < sizeof risky / sizeof risky[0]; i++)
		report(csv_formula_risk(risky[i]), "csv cell formula risk", "\"%s\" not flagged", risky[i]);
	for (size_t i = 0; i < sizeof safe / sizeof safe[0]; i++)
		report(!csv_formula_risk(safe[i]), "csv cell left as is", "\"%s\" flagged", safe[i]);
}

/* EXPLAIN QUERY PLAN of a statement as "detail;detail;...". */
static void plan_of(sqlite3 *db, const char *sql, char *buf, size_t len)
{
	char *eqp = xasprintf("EXPLAIN QUERY PLAN %s", sql);
	sqlite3_stmt *st = NULL;
	buf[0] = '\0';
	if (sqlite3_prepare_v2(db, eqp, -1, &st, NULL) != SQLITE_OK) {
		snprintf(buf, len, "prepare failed: %s", sqlite3_errmsg(db));
		free(eqp);
		return;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		size_t used = strlen(buf);
		snprintf(buf + used, len - used, "%s%s", used ? ";" : "", (const char *)sqlite3_column_text(st, 3));
	}
	sqlite3_finalize(st);
	free(eqp);
}

/* Whether the program of SQL opens an ephemeral table. */
static int opens_ephemeral(sqlite3 *db, const char *sql)
{
	char *ex = xasprintf("EXPLAIN %s", sql);
	sqlite3_stmt *st = NULL;
	int found = sqlite3_prepare_v2(db, ex, -1, &st, NULL) != SQLITE_OK;
	while (!found && sqlite3_step(st) == SQLITE_ROW)
		found = strcmp((const char *)sqlite3_column_text(st, 1), "OpenEphemeral") == 0;
	sqlite3_finalize(st);
	free(ex);
	return found;
}

/* Every statement smr-send runs per touch, on a fresh database without
 * ANALYZE statistics, uses the index it is meant to (issue 14: the dedup
 * look-up went through touch_state and scanned every sent touch), and
 * never scans a table or sorts the queue. */
static void test_send_plans(void)
{
	static const struct { const char *name, *want[2]; } plans[] = {
		{"claim", {"SEARCH touch USING INTEGER PRIMARY KEY (rowid=?)"}},
		{"record", {"SEARCH touch USING INTEGER PRIMARY KEY (rowid=?)"}},
		{"release", {"SEARCH touch USING INTEGER PRIMARY KEY (rowid=?)"}},
		{"enrollment", {"SEARCH enrollment USING INTEGER PRIMARY KEY (rowid=?)"}},
		{"entered", {"SEARCH tag USING PRIMARY KEY (pid=? AND tag=?)",
		             "SEARCH tag_log USING INDEX tag_log_pid (pid=? AND tag=?)"}},
		{"tag", {"SEARCH tag USING PRIMARY KEY (pid=? AND tag=?)"}},
		{"dedup", {"SEARCH touch USING INDEX touch_person (pid=?)"}},
		{"recent", {"SEARCH touch USING INDEX touch_person (pid=?)"}},
		{"unanswered", {"SEARCH touch USING INDEX touch_person (pid=?)"}},
		{"last_response", {"SEARCH event USING COVERING INDEX event_pid (pid=? AND type=? AND ts<?)"}},
		{"item", {"SEARCH event USING INDEX event_pid (pid=?)"}},
		{"attrs", {"SEARCH person USING INTEGER PRIMARY KEY (rowid=?)"}},
		{"queue_end", {"SEARCH touch USING INDEX touch_queue (pid>?)"}},
		{"queue_page", {"SEARCH t USING INDEX touch_queue (pid>? AND pid<?)"}},
		{"input_end", {"SEARCH temp.send_input USING COVERING INDEX send_input_pid (pid>?)"}},
		{"input_page", {"SEARCH i USING COVERING INDEX send_input_pid (pid>? AND pid<?)",
		                "SEARCH t USING INTEGER PRIMARY KEY (rowid=?)"}},
		/* WECOM: the sender's relationships and external_userid, the
		 * platform's per-customer limit, the attempt and its outcome */
		{"staff_pick", {"SEARCH a USING INDEX event_pid (pid=? AND type=? AND ts<?)",
		                "SEARCH d USING INDEX event_pid (pid=? AND type=? AND ts>?)"}},
		{"staff_extuid", {"SEARCH identity USING INDEX identity_pid (pid=?)"}},
		{"wecom_limit", {"SEARCH touch USING INDEX touch_person (pid=?)"}},
		{"wecom_link", {"SEARCH touch USING INTEGER PRIMARY KEY (rowid=?)"}},
		{"wecom_outcome", {"SEARCH touch USING INTEGER PRIMARY KEY (rowid=?)"}},
	};
	sqlite3 *db = db_open(":memory:");
	db_exec(db, sender_input_schema);
	size_t n = 0;
	for (const struct sender_sql *q = sender_hot_sql; q->name; q++, n++) {
		char plan[2048], name[128];
		plan_of(db, q->sql, plan, sizeof plan);
		size_t k = 0;
		while (k < sizeof plans / sizeof plans[0] && strcmp(plans[k].name, q->name) != 0)
			k++;
		snprintf(name, sizeof name, "smr-send plan without ANALYZE: %s has an expected plan", q->name);
		report(k < sizeof plans / sizeof plans[0], name, "add it to test_send_plans: %s", plan);
		if (k == sizeof plans / sizeof plans[0])
			continue;
		for (int w = 0; w < 2 && plans[k].want[w]; w++) {
			snprintf(name, sizeof name, "smr-send plan without ANALYZE: %s uses %s", q->name, plans[k].want[w]);
			report(strstr(plan, plans[k].want[w]) != NULL, name, "plan: %s", plan);
		}
		snprintf(name, sizeof name, "smr-send plan without ANALYZE: %s scans no table", q->name);
		const char *scan = strstr(plan, "SCAN ");
		while (scan && strncmp(scan, "SCAN CONSTANT ROW", 17) == 0)
			scan = strstr(scan + 17, "SCAN ");
		report(scan == NULL, name, "plan: %s", plan);
		/* an IN list of constants that drives an index (or has more than
		 * two values), or a sort, is an ephemeral table built at each
		 * execution (once per page is fine; WECOM's sorts are dwarfed by its calls) */
		if (strncmp(q->name, "queue", 5) != 0 && strncmp(q->name, "input", 5) != 0 &&
		    strncmp(q->name, "staff", 5) != 0) {
			snprintf(name, sizeof name, "smr-send per touch: %s opens no ephemeral table", q->name);
			report(!opens_ephemeral(db, q->sql), name, "EXPLAIN shows OpenEphemeral");
		}
		if (strncmp(q->name, "queue", 5) == 0) {
			snprintf(name, sizeof name, "smr-send plan without ANALYZE: %s needs no sort", q->name);
			report(strstr(plan, "TEMP B-TREE") == NULL, name, "plan: %s", plan);
		}
	}
	expect_int("smr-send plan without ANALYZE: every statement checked", (int64_t)(sizeof plans / sizeof plans[0]),
	           (int64_t)n);
	db_close(db);
}

/* ---- query plans ----------------------------------------------------------
 * Every hot statement of ingest, tag, segment, sop-due and report, as the
 * code prepares it, on a fresh database without ANALYZE statistics: its
 * plan reaches its rows through the index it is meant to use and scans no
 * table that grows with the data (a plan chosen from statistics could
 * change when they do). */

/* EXPLAIN QUERY PLAN of SQL: the detail lines joined by "; ". */
static void plan_detail(sqlite3 *db, const char *sql, char *out, size_t outlen)
{
	char *q = xasprintf("EXPLAIN QUERY PLAN %s", sql);
	sqlite3_stmt *st = NULL;
	out[0] = '\0';
	if (sqlite3_prepare_v2(db, q, -1, &st, NULL) != SQLITE_OK) {
		snprintf(out, outlen, "prepare failed: %s", sqlite3_errmsg(db));
		free(q);
		return;
	}
	size_t n = 0;
	while (sqlite3_step(st) == SQLITE_ROW && n + 1 < outlen) {
		/* schema names and covering or not do not matter here */
		char line[512];
		const char *d = (const char *)sqlite3_column_text(st, 3);
		size_t k = 0;
		while (*d && k + 1 < sizeof line) {
			if (strncmp(d, "main.", 5) == 0 || strncmp(d, "temp.", 5) == 0)
				d += 5;
			else if (strncmp(d, "COVERING ", 9) == 0)
				d += 9;
			else
				line[k++] = *d++;
		}
		line[k] = '\0';
		n += (size_t)snprintf(out + n, outlen - n, "%s%s", n ? "; " : "", line);
	}
	sqlite3_finalize(st);
	free(q);
}

/* The plan of SQL holds WANT (each "|"-separated part), and scans none of
 * the tables that grow with the data except those in ALLOW ("|"-separated
 * "SCAN x"). */
static int allowed(const char *allow, const char *scan)
{
	size_t len = strlen(scan);
	for (const char *a = strstr(allow, scan); a; a = strstr(a + 1, scan))
		if ((a == allow || a[-1] == '|') && (a[len] == '\0' || a[len] == '|'))
			return 1;
	return 0;
}

static void expect_plan(sqlite3 *db, const char *name, const char *sql, const char *want, const char *allow)
{
	static const char *const big[] = {"event", "person", "identity", "tag", "tag_log", "enrollment", "touch",
		"merge_log", "conflict_log", "c", "u", "t", "e", "o", "x", NULL};
	char plan[8192], part[256];
	plan_detail(db, sql, plan, sizeof plan);
	const char *bad = NULL;
	for (const char *w = want; *w && !bad;) {
		size_t len = strcspn(w, "|");
		snprintf(part, sizeof part, "%.*s", (int)len, w);
		if (!strstr(plan, part))
			bad = "misses the index it is meant to use";
		w += len + (w[len] == '|');
	}
	for (int i = 0; big[i] && !bad; i++) {
		char scan[64];
		snprintf(scan, sizeof scan, "SCAN %s", big[i]);
		for (const char *h = strstr(plan, scan); h && !bad; h = strstr(h + 1, scan)) {
			char end = h[strlen(scan)];
			if ((end == '\0' || end == ';' || end == ' ') && !(allow && allowed(allow, scan)))
				bad = "scans a table";
		}
	}
	report(!bad, name, "%s: %s", bad ? bad : "", plan);
}

static void test_plans(void)
{
	sqlite3 *db = db_open(":memory:");
	const char *pidx = "SEARCH person USING INTEGER PRIMARY KEY (rowid=?)";
	char name[96];

	expect_plan(db, "plan: ingest dedup by event id", ingest_seen_sql,
	            "SEARCH event USING INDEX sqlite_autoindex_event_1 (id=?)", NULL);
	expect_plan(db, "plan: ingest profile attributes", ingest_attrs_sql, pidx, NULL);
	expect_plan(db, "plan: ingest identity look-up", identity_lookup_sql,
	            "SEARCH identity USING INDEX sqlite_autoindex_identity_1 (kind=? AND value=?)", NULL);
	expect_plan(db, "plan: ingest kinds of a person", identity_kinds_of_sql,
	            "SEARCH identity USING INDEX identity_pid (pid=?)", NULL);
	expect_plan(db, "plan: ingest batch facts", delta_person_sql, pidx, NULL);
	static const char *const merge_want[] = {
		"SEARCH event USING INDEX event_pid (pid=?)",
		"SEARCH identity USING INDEX identity_pid (pid=?)",
		"SEARCH identity USING INDEX identity_pid (pid=?)",
		"SEARCH tag USING PRIMARY KEY (pid=?)",
		"SEARCH tag USING PRIMARY KEY (pid=?)",
		"SEARCH tag_log USING INDEX tag_log_pid (pid=?)",
		"SEARCH person USING INTEGER PRIMARY KEY (rowid=?)",
		"SEARCH p USING INTEGER PRIMARY KEY (rowid=?)|SEARCH m USING INTEGER PRIMARY KEY (rowid=?)",
		"SEARCH touch USING INDEX touch_pid (pid=?)",
		"SEARCH rfm USING INTEGER PRIMARY KEY (rowid=?)",
		"SEARCH person USING INTEGER PRIMARY KEY (rowid=?)",
	};
	for (int i = 0; identity_merge_sql[i]; i++) {
		snprintf(name, sizeof name, "plan: ingest merge step %d", i + 1);
		expect_plan(db, name, identity_merge_sql[i], i < (int)(sizeof merge_want / sizeof *merge_want) ? merge_want[i] : "?", NULL);
	}

	for (int i = 0; facts_lookup_sql[i]; i++) {
		snprintf(name, sizeof name, "plan: tag fact look-up %d", i + 1);
		const char *want = !facts_lookup_sql[i + 1] ? "SEARCH tag USING PRIMARY KEY (pid=? AND tag=?)"
		                 : !facts_lookup_sql[i + 2] ? pidx : "USING INDEX event_pid (pid=?";
		expect_plan(db, name, facts_lookup_sql[i], want, NULL);
	}
	db_exec(db, tagger_temp_sql);
	expect_plan(db, "plan: tag changed persons", tagger_changed_sql,
	            "SEARCH event USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)|"
	            "SEARCH merge_log USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)|"
	            "SEARCH person USING INDEX person_check (check_at<?)", NULL);
	static const char *const chunk_want[] = {
		"SEARCH tag_cand USING INTEGER PRIMARY KEY (rowid>?)",
		"SEARCH tag USING PRIMARY KEY (pid=?)",
		"SEARCH tag USING PRIMARY KEY (pid=? AND tag=?)",
		"SEARCH person USING INTEGER PRIMARY KEY (rowid=?)",
	};
	for (int i = 0; tagger_chunk_sql[i]; i++) {
		snprintf(name, sizeof name, "plan: tag chunk statement %d", i + 1);
		expect_plan(db, name, tagger_chunk_sql[i], chunk_want[i], NULL);
	}

	/* smr-person reads one person's merges and conflicts through their own
	 * indexes, however long the logs grow */
	expect_plan(db, "plan: person merges by survivor", lookup_section_sql[LOOKUP_MERGES],
	            "SEARCH merge_log USING INDEX merge_log_survivor (survivor=?)", NULL);
	expect_plan(db, "plan: person conflicts by pid or other_pid", lookup_section_sql[LOOKUP_CONFLICTS],
	            "SEARCH conflict_log USING INDEX conflict_log_pid (pid=?)|"
	            "SEARCH conflict_log USING INDEX conflict_log_other_pid (other_pid=?)", NULL);
	expect_plan(db, "plan: the survivor of a merged pid", "SELECT survivor FROM merge_log WHERE merged = ?1",
	            "SEARCH merge_log USING INDEX merge_log_merged (merged=?)", NULL);

	/* a report reads the touches once by design; what must not happen is
	 * a scan of the events per touch. (Its per-step counts still read the
	 * touches and enrollments once per SOP step: x and e.) */
	expect_plan(db, "plan: report sops reads orders by person", report_sql[REPORT_SOPS],
	            "SEARCH touch USING INDEX touch_state (state=?)|"
	            "SEARCH o USING INDEX event_pid (pid=? AND type=? AND ts>? AND ts<?)", "SCAN x|SCAN e|SCAN p");
	db_close(db);
}

/* ----------------------------------------------- segments (smr-segment) */

/* The counts of a layer as "name=N ..." (a fresh string). */
static char *counts_text(sqlite3 *db, enum segquery_layer l, const struct layers *ly, const char *base)
{
	const char **names;
	long *counts;
	size_t n = segquery_count(db, l, ly, base, &names, &counts);
	char *s = xstrdup("");
	for (size_t i = 0; i < n; i++) {
		char *t = xasprintf("%s%s%s=%ld", s, *s ? " " : "", names[i] ? names[i] : "all", counts[i]);
		free(s);
		s = t;
	}
	free(names);
	free(counts);
	return s;
}

/* The pids holding TAG as "1 2 ..." (a fresh string). */
static char *holders(sqlite3 *db, const char *tag)
{
	char *sql = sqlite3_mprintf("SELECT coalesce(group_concat(pid, ' '), '') FROM "
	                            "(SELECT pid FROM tag WHERE tag = %Q ORDER BY pid)", tag);
	sqlite3_stmt *st = db_prepare(db, sql);
	char *s = xstrdup(db_row(db, st) ? (const char *)sqlite3_column_text(st, 0) : "?");
	sqlite3_finalize(st);
	sqlite3_free(sql);
	return s;
}

/* Compile EXPR and make its members hold TAG; the change records written. */
static long sync_tag(sqlite3 *db, const struct rules *r, const struct tagrules *tr, const struct layers *ly,
                     const char *expr, const char *tag)
{
	struct segment_expr se = {0};
	char err[256] = "";
	int col = 0;
	if (segment_compile(expr, tr, ly, &se, err, sizeof err, &col) != 0) {
		report(0, "segment_compile of a test expression", "%s: %s", expr, err);
		return -1;
	}
	char *base = segquery_base(SEGQUERY_EXPR, ly, se.sql);
	FILE *out = tmpfile();
	struct person_lookup *pl = person_lookup_open(db, r);
	struct tag_batch *b = tag_batch_open(db, pl, "segment", 1800000000, out);
	tag_batch_sync(b, base, tag, expr);
	tag_batch_close(b);
	person_lookup_close(pl);
	long lines = 0;
	rewind(out);
	for (int c; (c = getc(out)) != EOF;)
		lines += c == '\n';
	fclose(out);
	free(base);
	segment_expr_free(&se);
	return lines;
}

static void test_segquery(void)
{
	struct fx f;
	char err[256] = "";
	if (fx_open(&f, 100, "tier silver 100\ntier gold 1000\ntag big when orders >= 2\n"))
		return;
	ing(&f, "{\"id\":\"s1\",\"type\":\"order\",\"ts\":1795000000,\"unionid\":\"a\",\"amount\":\"50\"}");
	ing(&f, "{\"id\":\"s2\",\"type\":\"order\",\"ts\":1795000000,\"unionid\":\"b\",\"amount\":\"200\"}");
	ing(&f, "{\"id\":\"s3\",\"type\":\"order\",\"ts\":1795000000,\"unionid\":\"c\",\"amount\":\"2000\"}");
	ing(&f, "{\"id\":\"s4\",\"type\":\"view\",\"ts\":1799000000,\"unionid\":\"d\"}");
	fx_close(&f);
	struct facts *fa = facts_open(f.db, 1800000000);
	struct layers *ly = layers_parse(f.r);
	struct tagrules *tr = tagrules_parse(f.r);
	expect_int("segquery: the test rules parse", 0, ly->errors + tr->errors);

	char *s = segquery_fields("pid,orders,attr.city,stage", SEGQUERY_STAGES, ly, err, sizeof err);
	expect_str("segquery_fields: facts and attr.KEY columns, pid and the layer's own left out",
	           ", f.orders AS orders, json_extract(f.attrs, '$.\"city\"') AS \"attr.city\"", s);
	free(s);
	s = segquery_fields(NULL, SEGQUERY_EXPR, ly, err, sizeof err);
	expect_str("segquery_fields: no --fields is no column", "", s);
	free(s);
	s = segquery_fields("r,rfm", SEGQUERY_EXPR, ly, err, sizeof err);
	expect_str("segquery_fields: RFM scores read the rfm table by pid",
	           ", (SELECT r FROM main.rfm WHERE rfm.pid = q.pid) AS r,"
	           " (SELECT segment FROM main.rfm WHERE rfm.pid = q.pid) AS rfm", s);
	free(s);
	s = segquery_fields("orders,bogus", SEGQUERY_EXPR, ly, err, sizeof err);
	report(!s && strstr(err, "no field \"bogus\""), "segquery_fields: an unknown name is refused, named",
	       "got %s, err \"%s\"", s ? s : "NULL", err);
	free(s);
	s = segquery_fields("attr.", SEGQUERY_EXPR, ly, err, sizeof err);
	report(!s, "segquery_fields: attr. without a key is refused", "got %s", s ? s : "NULL");
	free(s);
	s = segquery_base(SEGQUERY_RFM, ly, NULL);
	expect_str("segquery_base: the rfm layer", "SELECT pid, r, f, m, segment AS rfm FROM main.rfm", s);
	free(s);
	s = segquery_members("SELECT pid FROM facts", "");
	expect_str("segquery_members: no fields, no join", "SELECT q.* FROM (SELECT pid FROM facts) AS q ORDER BY q.pid", s);
	free(s);

	char *base = segquery_base(SEGQUERY_TIERS, ly, NULL);
	s = counts_text(f.db, SEGQUERY_TIERS, ly, base);
	expect_str("segquery_count: one person per tier, below the lowest left out", "silver=1 gold=1", s);
	free(s);
	free(base);
	base = segquery_base(SEGQUERY_STAGES, ly, NULL);
	s = counts_text(f.db, SEGQUERY_STAGES, ly, base);
	expect_str("segquery_count: every stage in order, zeros included",
	           "new=0 active=1 silent=3 churned=0 paying=0", s);
	free(s);
	free(base);

	expect_int("tag_batch_sync: the gold tier enters the tag (one record)", 1,
	           sync_tag(f.db, f.r, tr, ly, "tier:gold", "vip"));
	s = holders(f.db, "vip");
	expect_str("tag_batch_sync: only the gold member holds it", "3", s);
	free(s);
	expect_int("tag_batch_sync: silver enters, gold leaves (two records)", 2,
	           sync_tag(f.db, f.r, tr, ly, "tier:silver", "vip"));
	s = holders(f.db, "vip");
	expect_str("tag_batch_sync: the tag follows the segment", "2", s);
	free(s);
	expect_int("tag_batch_sync: the same segment again changes nothing", 0,
	           sync_tag(f.db, f.r, tr, ly, "tier:silver", "vip"));
	expect_int("tag_batch_sync: every change logged", 3, q(f.db, "SELECT count(*) FROM tag_log WHERE tag = 'vip'"));

	/* smr-tag --set records: a tag name and someone who exists */
	struct person_lookup *pl = person_lookup_open(f.db, f.r);
	FILE *out = tmpfile();
	struct tag_batch *b = tag_batch_open(f.db, pl, "manual", 1800000000, out);
	static const struct { const char *rec, *why; } recs[] = {
		{"{\"unionid\":\"a\",\"tag\":\"m1\"}", NULL},
		{"{\"pid\":4,\"tag\":\"m1\"}", NULL},
		{"{\"unionid\":\"a\",\"tag\":\"m-1\"}", "must be a tag name"},
		{"{\"unionid\":\"a\",\"tag\":7}", "must be a tag name"},
		{"{\"unionid\":\"nobody\",\"tag\":\"m1\"}", "no such person"},
		{"{\"tag\":\"m1\"}", ""},
	};
	for (size_t i = 0; i < sizeof recs / sizeof *recs; i++) {
		json_t *o = json_loads(recs[i].rec, 0, NULL);
		char name[160];
		err[0] = '\0';
		int rc = tag_batch_record(b, o, 1, "test", err, sizeof err);
		snprintf(name, sizeof name, "tag_batch_record %s: %s", recs[i].rec, recs[i].why ? "refused" : "applied");
		report(recs[i].why ? rc == -1 && *err && strstr(err, recs[i].why) : rc == 0, name, "rc %d, \"%s\"", rc, err);
		json_decref(o);
	}
	tag_batch_close(b);
	fclose(out);
	person_lookup_close(pl);
	s = holders(f.db, "m1");
	expect_str("tag_batch_record: the applied records hold the tag", "1 4", s);
	free(s);

	struct segment_expr se = {0};
	int col = 0;
	if (segment_compile("vip or big or nosuch", tr, ly, &se, err, sizeof err, &col) == 0) {
		const struct segment_ref *unknown[3];
		size_t n = segment_unknown_tags(f.db, tr, &se, unknown);
		report(n == 1 && strcmp(unknown[0]->name, "nosuch") == 0 && unknown[0]->col == 15,
		       "segment_unknown_tags: only a tag no rule gives and no one holds", "%zu: %s col %d", n,
		       n ? unknown[0]->name : "-", n ? unknown[0]->col : 0);
	} else {
		report(0, "segment_compile of a test expression", "%s", err);
	}
	segment_expr_free(&se);
	tagrules_free(tr);
	layers_free(ly);
	facts_close(fa);
	fx_free(&f);
}

/* A source mapping turns a row into checked events, or rejects it whole. */
static void test_mapping_events(void)
{
	struct fx f;
	char err[256] = "";
	int errors = 0;
	if (fx_open(&f, 100, "timezone Asia/Shanghai\nsource t\n  column \"when\" ts\n  column \"paid\" amount\n"
	                     "  column \"tel\" phone\n  set type order\n  id \"when\" \"paid\" \"tel\"\nend\n"))
		return;
	struct mapping *m = mapping_parse(f.r, "t", &errors);
	report(m && !errors, "mapping_events: the test source parses", "%d errors", errors);
	json_t *row = json_pack("{s:s, s:s, s:s}", "when", "2026-01-05 09:05", "paid", "¥1,299.50", "tel", "13800138101");
	struct mapping_events me;
	int rc = m ? mapping_events(m, row, f.r, &me, err, sizeof err) : -1;
	report(rc == 0 && me.n == 1 && strcmp(me.evs[0].type, "order") == 0 && me.evs[0].amount == 129950 &&
	       me.evs[0].ts == 1767575100 && me.evs[0].nids == 1,
	       "mapping_events: a row becomes one checked order", "rc %d: %s", rc, err);
	if (rc == 0)
		mapping_events_clear(&me);
	json_decref(row);
	row = json_pack("{s:s, s:s, s:s}", "when", "2026/13/05 09:05", "paid", "12", "tel", "13800138107");
	rc = m ? mapping_events(m, row, f.r, &me, err, sizeof err) : 0;
	report(rc == -1 && me.n == 0 && *err, "mapping_events: a bad time rejects the row, with a reason", "rc %d", rc);
	json_decref(row);
	mapping_free(m);
	fx_free(&f);
}

/* The contents of PATH (a fresh string, "" if unreadable). */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char buf[4096];
	size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
	buf[n] = '\0';
	if (f)
		fclose(f);
	return xstrdup(buf);
}

/* Rejects reach the file only when flushed (their batch committed). */
static void test_rejects(void)
{
	char path[] = "/tmp/smr-unit-rejects-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0) {
		report(0, "rejects: a temporary file", "mkstemp failed");
		return;
	}
	close(fd);
	unlink(path);
	struct rejects *rj = rejects_open(path);
	struct stat sb;
	report(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600, "rejects_open: the file is 0600", "mode %o",
	       (unsigned)(sb.st_mode & 0777));
	rejects_add(rj, "a,b", 3, "1,x", 3);
	rejects_add(rj, NULL, 0, "2,y", 3);
	expect_int("rejects_pending: two spooled", 2, rejects_pending(rj));
	char *s = slurp(path);
	expect_str("rejects: nothing written before the flush", "", s);
	free(s);
	rejects_flush(rj);
	expect_int("rejects_flush: nothing left pending", 0, rejects_pending(rj));
	rejects_add(rj, NULL, 0, "3,z", 3);
	expect_int("rejects_close: closed", 0, rejects_close(rj));
	s = slurp(path);
	expect_str("rejects: header, records, one a line, in order", "a,b\n1,x\n2,y\n3,z\n", s);
	free(s);
	unlink(path);
}

/* ingest_record: a record stored, or refused with its reason. */
static void test_ingest_record(void)
{
	char path[] = "/tmp/smr-unit-records-XXXXXX";
	int fd = mkstemp(path);
	static const char text[] = "{\"id\":\"r1\",\"type\":\"view\",\"ts\":1795000000,\"unionid\":\"a\"}\n"
	                           "{\"id\":\"r2\",\"type\":\"view\",\"ts\":1795000000}\n"
	                           "{\"id\":\"r3\",\n";
	if (fd < 0 || write(fd, text, sizeof text - 1) != (ssize_t)(sizeof text - 1)) {
		report(0, "ingest_record: a temporary input", "mkstemp/write failed");
		return;
	}
	close(fd);
	struct fx f;
	char err[256];
	if (fx_open(&f, 100, NULL))
		return;
	struct source *src = source_open(path, FORMAT_NDJSON, NULL, err, sizeof err);
	struct record rec;
	char got[512] = "";
	while (src && source_next(src, &rec) == 1) {
		char why[256];
		int rc = ingest_record(f.in, src, &rec, NULL, NULL, why, sizeof why);
		size_t n = strlen(got);
		snprintf(got + n, sizeof got - n, "%s%ld:%s", n ? ";" : "", rec.line, rc == 0 ? "ok" : strstr(why, "ident") ? "no id" : *why ? "bad" : "?");
		record_clear(&rec);
	}
	source_close(src);
	unlink(path);
	fx_close(&f);
	expect_str("ingest_record: stored, no identifier, malformed JSON (a reason each)", "1:ok;2:no id;3:bad", got);
	expect_int("ingest_record: the good record is stored", 1, q(f.db, "SELECT count(*) FROM event WHERE id = 'r1'"));
	fx_free(&f);
}

int main(void)
{
	smr_progname = "test-unit";
	test_time();
	test_time_format();
	test_duration();
	test_money();
	test_utf8();
	test_event();
	test_schema();
	test_attach();
	test_dedup();
	test_merge();
	test_recycled_phone();
	test_shared_cookie();
	test_cookie_limit();
	test_family_tablet();
	test_blocked();
	test_attrs_newest();
	test_facts_batches();
	test_random();
	test_render();
	test_quiet();
	test_step_due();
	test_ruleexpr();
	test_csv_formula();
	test_dst_edges();
	test_tz_names();
	test_policy_many();
	test_send_plans();
	test_plans();
	test_segquery();
	test_mapping_events();
	test_rejects();
	test_ingest_record();
	printf("%d passed, %d failed\n", npass, nfail);
	return nfail ? 1 : 0;
}
