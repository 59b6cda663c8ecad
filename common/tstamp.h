/* Time: ISO 8601 and epoch parsing, durations, the configured local zone.
 * All stored times are integer Unix seconds, UTC. */
#ifndef SMR_TSTAMP_H
#define SMR_TSTAMP_H

#include <stdint.h>
#include <stddef.h>
#include <time.h>

/* Make ZONE (an IANA name such as "Asia/Shanghai", or "UTC") the local zone
 * for every conversion below. Returns 0, or -1 with a reason in err. */
int tstamp_tz_set(const char *zone, char *err, size_t errlen);
const char *tstamp_tz_name(void);

/* Parse "2026-11-20T20:15:00+08:00", "...Z", "2026-11-20 20:15", "2026-11-20"
 * (times without an offset are local), or epoch seconds "1763640900".
 * Returns 0, or -1 with a reason in err. */
int tstamp_parse(const char *s, int64_t *out, char *err, size_t errlen);
/* The last second tstamp_parse accepts: 9999-12-31T23:59:59Z (the first is 0). */
#define TIME_MAX 253402300799LL

/* Parse a duration: a positive integer followed by s, m, h, d or w
 * ("30m", "7d"); several may follow each other ("1d12h"). At most
 * DURATION_MAX seconds (36600d, about 100 years) in all. */
#define DURATION_MAX (36600LL * 86400)
int tstamp_duration(const char *s, int64_t *secs);

/* Days since 1970-01-01 of a proleptic Gregorian civil date. */
int64_t tstamp_days_from_civil(int64_t y, unsigned m, unsigned d);
int tstamp_days_in_month(int y, int m);

/* Local wall time (in the configured zone) to UTC seconds; DAY (and H, MIN,
 * S) may run past the month's end (day 32 is the next month's 1st). A time
 * in a DST gap moves forward by the gap (02:30 on a spring-forward night
 * in New York is 03:30 EDT); an ambiguous time (clocks went back) is its
 * earlier occurrence (01:30 EDT, not 01:30 EST). Every path uses this. */
int64_t tstamp_local_to_utc(int y, int mon, int day, int h, int min, int s);
/* UTC seconds to local broken-down time. */
void tstamp_utc_to_local(int64_t t, struct tm *out);

/* Format as local ISO 8601 with offset, "2026-11-20T20:15:00+08:00". */
void tstamp_format(int64_t t, char *buf, size_t len);

#endif
