#include "tstamp.h"

#include <ctype.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char current_zone[128] = "UTC";

static int zone_name_ok(const char *zone)
{
	if (!*zone || zone[0] == '/' || strstr(zone, ".."))
		return 0;
	for (const char *p = zone; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("/_-+", *p))
			return 0;
	return 1;
}

/* The zone's file is a TZif file (not a directory such as "Asia", nor
 * anything else): otherwise the C library would silently use UTC. */
static int zone_file_ok(const char *zone, char *err, size_t errlen)
{
	const char *dir = getenv("TZDIR");
	char path[512], magic[4];
	snprintf(path, sizeof path, "%s/%s", dir ? dir : "/usr/share/zoneinfo", zone);
	int fd = open(path, O_RDONLY | O_NONBLOCK);
	if (fd < 0) {
		snprintf(err, errlen, "unknown time zone \"%s\" (no %s; is tzdata installed?)", zone, path);
		return -1;
	}
	struct stat sb;
	int ok = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && read(fd, magic, 4) == 4 &&
	         memcmp(magic, "TZif", 4) == 0;
	close(fd);
	if (!ok) {
		snprintf(err, errlen, "unknown time zone \"%s\" (%s is not a time zone file; e.g. Asia/Shanghai)",
		         zone, path);
		return -1;
	}
	return 0;
}

int tstamp_tz_set(const char *zone, char *err, size_t errlen)
{
	if (!zone_name_ok(zone) || strlen(zone) >= sizeof current_zone) {
		snprintf(err, errlen, "invalid time zone name \"%s\"", zone);
		return -1;
	}
	if (strcmp(zone, "UTC") != 0 && zone_file_ok(zone, err, errlen) != 0)
		return -1;
	char tzval[sizeof current_zone + 1];
	snprintf(tzval, sizeof tzval, "%s", zone);
	if (setenv("TZ", tzval, 1) != 0) {
		snprintf(err, errlen, "cannot set TZ");
		return -1;
	}
	tzset();
	snprintf(current_zone, sizeof current_zone, "%s", zone);
	return 0;
}

const char *tstamp_tz_name(void) { return current_zone; }

int64_t tstamp_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

int tstamp_days_in_month(int y, int m)
{
	static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return dm[m - 1];
}

static long gmtoff_at(int64_t t)
{
	struct tm tm;
	time_t tt = (time_t)t;
	return localtime_r(&tt, &tm) ? tm.tm_gmtoff : 0;
}

/* Without mktime, whose choice for an ambiguous time depends on earlier
 * calls: the offsets a day before and a day after (zones change at most
 * once in two days) give the candidates; a candidate is real when the
 * zone has that offset then. */
int64_t tstamp_local_to_utc(int y, int mon, int day, int h, int min, int s)
{
	int64_t wall = (tstamp_days_from_civil(y, (unsigned)mon, 1) + day - 1) * 86400 + (int64_t)h * 3600 +
	               (int64_t)min * 60 + s;
	long before = gmtoff_at(wall - 86400), after = gmtoff_at(wall + 86400);
	int64_t a = wall - before, b = wall - after;
	int a_real = gmtoff_at(a) == before, b_real = gmtoff_at(b) == after;
	if (a_real && b_real)
		return a < b ? a : b; /* ambiguous (clocks went back): the earlier */
	if (b_real)
		return b;
	return a; /* real, or in a gap (clocks went forward): read with the offset before, i.e. moved forward */
}

void tstamp_utc_to_local(int64_t t, struct tm *out)
{
	time_t tt = (time_t)t;
	if (!localtime_r(&tt, out))
		memset(out, 0, sizeof *out);
}

void tstamp_format(int64_t t, char *buf, size_t len)
{
	struct tm tm;
	tstamp_utc_to_local(t, &tm);
	if (tm.tm_year + 1900 < 1970 || tm.tm_year + 1900 > 9999) {
		/* local time past the four-digit years (the first or last hours
		 * of the range): in UTC, which tstamp_parse reads back */
		time_t tt = (time_t)t;
		if (!gmtime_r(&tt, &tm))
			memset(&tm, 0, sizeof tm);
	}
	long off = tm.tm_gmtoff;
	char sign = off < 0 ? '-' : '+';
	if (off < 0)
		off = -off;
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d%c%02ld:%02ld",
	         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	         tm.tm_min, tm.tm_sec, sign, off / 3600, (off % 3600) / 60);
}

/* Read exactly n digits. */
static int digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

static int fail(char *err, size_t errlen, const char *why, const char *s)
{
	snprintf(err, errlen, "%s: \"%.40s\"", why, s);
	return -1;
}

static int parse_epoch(const char *s, int64_t *out)
{
	int64_t v = 0;
	for (const char *p = s; *p; p++) {
		if (v > (INT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (*p - '0');
	}
	*out = v;
	return 0;
}

/* The instants smr stores: Unix seconds 0 to 253402300799 (the last
 * second of 9999 in UTC), whatever offset or zone wrote them. */
static int in_range(const char *s, int64_t t, char *err, size_t errlen)
{
	if (t < 0 || t > TIME_MAX)
		return fail(err, errlen, "time out of range (1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z)", s);
	return 0;
}

int tstamp_parse(const char *s, int64_t *out, char *err, size_t errlen)
{
	size_t n = strlen(s);
	if (n > 0 && strspn(s, "0123456789") == n) {
		if (n > 12 || parse_epoch(s, out) != 0 || *out > TIME_MAX)
			return fail(err, errlen, "epoch seconds out of range", s);
		return 0;
	}
	const char *p = s;
	int y, mo, d, h = 0, mi = 0, sec = 0;
	if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' || digits(&p, 2, &d))
		return fail(err, errlen, "not an ISO 8601 time", s);
	int has_time = 0;
	if (*p == 'T' || *p == ' ') {
		p++;
		has_time = 1;
		if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi))
			return fail(err, errlen, "not an ISO 8601 time", s);
		if (*p == ':') {
			p++;
			if (digits(&p, 2, &sec))
				return fail(err, errlen, "not an ISO 8601 time", s);
			if (*p == '.' || *p == ',') { /* fractional seconds: truncated */
				p++;
				if (!isdigit((unsigned char)*p))
					return fail(err, errlen, "not an ISO 8601 time", s);
				while (isdigit((unsigned char)*p))
					p++;
			}
		}
	}
	if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > tstamp_days_in_month(y, mo) ||
	    h > 23 || mi > 59 || sec > 60)
		return fail(err, errlen, "impossible date", s);
	if (sec == 60)
		sec = 59; /* leap second: the last representable second */
	if (*p == '\0') {
		*out = tstamp_local_to_utc(y, mo, d, h, mi, sec);
		return in_range(s, *out, err, errlen);
	}
	if (!has_time)
		return fail(err, errlen, "not an ISO 8601 time", s);
	int64_t off = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
		if (digits(&p, 2, &oh))
			return fail(err, errlen, "bad UTC offset", s);
		int colon = *p == ':';
		if (colon)
			p++;
		if ((*p || colon) && digits(&p, 2, &om))
			return fail(err, errlen, "bad UTC offset", s);
		if (oh > 18 || om > 59)
			return fail(err, errlen, "bad UTC offset", s);
		off = sign * (oh * 3600 + om * 60);
	} else {
		return fail(err, errlen, "not an ISO 8601 time", s);
	}
	if (*p)
		return fail(err, errlen, "trailing characters after time", s);
	*out = tstamp_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec - off;
	return in_range(s, *out, err, errlen);
}

int tstamp_duration(const char *s, int64_t *secs)
{
	int64_t total = 0;
	const char *p = s;
	if (!*p)
		return -1;
	while (*p) {
		if (!isdigit((unsigned char)*p))
			return -1;
		int64_t v = 0;
		while (isdigit((unsigned char)*p)) {
			v = v * 10 + (*p++ - '0');
			if (v > 100000000)
				return -1;
		}
		int64_t unit;
		if (!*p)
			return -1;
		switch (*p++) {
		case 's': unit = 1; break;
		case 'm': unit = 60; break;
		case 'h': unit = 3600; break;
		case 'd': unit = 86400; break;
		case 'w': unit = 7 * 86400; break;
		default: return -1;
		}
		total += v * unit; /* each part <= 1e8 weeks: no overflow */
		if (total > DURATION_MAX)
			return -1;
	}
	*secs = total;
	return 0;
}
