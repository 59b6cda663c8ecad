#include "rfm.h"
#include "db.h"
#include "err.h"

#include <ctype.h>
#include <string.h>

const char *const rfm_segment_names[RFM_NSEGMENTS + 1] = {
	"Champions", "Loyal", "Potential Loyalist", "New", "Promising", "Need Attention",
	"About to Sleep", "At Risk", "Cannot Lose", "Hibernating", "Lost", NULL,
};

/* The grid on R and FM = (F + M + 1) / 2 (the mean, halves rounded up),
 * first match wins; each of the 25 cells has exactly one name:
 *
 *          FM=1            2                  3                  4            5
 *   R=5    New             Potential Loyalist Potential Loyalist Champions    Champions
 *   R=4    Promising       Potential Loyalist Potential Loyalist Loyal        Champions
 *   R=3    About to Sleep  About to Sleep     Need Attention     Loyal        Loyal
 *   R=2    Hibernating     Hibernating        At Risk            At Risk      Cannot Lose
 *   R=1    Lost            Lost               At Risk            Cannot Lose  Cannot Lose
 */
#define RFM_CASE \
	"CASE WHEN r = 5 AND fm >= 4 OR r = 4 AND fm = 5 THEN 'Champions' " \
	"WHEN r >= 3 AND fm >= 4 THEN 'Loyal' " \
	"WHEN r >= 4 AND fm >= 2 THEN 'Potential Loyalist' " \
	"WHEN r = 5 THEN 'New' " \
	"WHEN r = 4 THEN 'Promising' " \
	"WHEN r = 3 AND fm = 3 THEN 'Need Attention' " \
	"WHEN r = 3 THEN 'About to Sleep' " \
	"WHEN fm = 5 OR r = 1 AND fm = 4 THEN 'Cannot Lose' " \
	"WHEN fm >= 3 THEN 'At Risk' " \
	"WHEN r = 2 THEN 'Hibernating' " \
	"ELSE 'Lost' END"

/* score = 1 + floor(5 * (rank - 1) / N): rank() gives tied values the
 * lowest rank of their group, so equal values always score alike and the
 * result depends on nothing but the values. */
static const char rfm_sql[] =
	"INSERT INTO rfm(pid, r, f, m, segment, computed_at) "
	"SELECT pid, r, f, m, " RFM_CASE ", ?1 FROM ("
	" SELECT pid, r, f, m, (f + m + 1) / 2 AS fm FROM ("
	"  SELECT pid,"
	"   1 + 5 * (rank() OVER (ORDER BY last_order_at) - 1) / n AS r,"
	"   1 + 5 * (rank() OVER (ORDER BY orders) - 1) / n AS f,"
	"   1 + 5 * (rank() OVER (ORDER BY spend - refunded) - 1) / n AS m"
	"  FROM main.person, (SELECT count(*) AS n FROM main.person WHERE orders > 0)"
	"  WHERE orders > 0)) ORDER BY pid";

long rfm_compute(sqlite3 *db, int64_t now)
{
	db_begin(db);
	db_exec(db, "DELETE FROM main.rfm");
	sqlite3_stmt *st = db_prepare(db, rfm_sql);
	db_bind_int(db, st, 1, now);
	db_run(db, st);
	sqlite3_finalize(st);
	long n = (long)sqlite3_changes(db);
	db_commit(db);
	return n;
}

const char *rfm_segment_lookup(const char *name)
{
	for (size_t i = 0; i < RFM_NSEGMENTS; i++) {
		const char *s = rfm_segment_names[i], *p = name;
		for (; *s && *p; s++, p++)
			if (tolower((unsigned char)*s) != tolower((unsigned char)(*p == '_' ? ' ' : *p)))
				break;
		if (!*s && !*p)
			return rfm_segment_names[i];
	}
	return NULL;
}
