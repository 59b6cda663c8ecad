#include "staff.h"
#include "db.h"
#include "err.h"

#include <stdio.h>
#include <stdlib.h>

const char staff_pick_sql[] =
	"SELECT staff FROM staff_link WHERE pid = ?1 AND since <= ?2 "
	"AND (until IS NULL OR until > ?2) ORDER BY staff = ?3 DESC, since DESC, staff LIMIT 1";
/* identity_pid: the (kind, value, pid) key would walk every external_userid */
const char staff_extuid_sql[] =
	"SELECT value FROM identity INDEXED BY identity_pid WHERE pid = ?1 AND kind = 'external_userid' "
	"ORDER BY first_seen DESC, value LIMIT 1";

struct staff {
	sqlite3 *db;
	sqlite3_stmt *pick, *extuid;
};

struct staff *staff_open(sqlite3 *db)
{
	struct staff *s = xcalloc(1, sizeof *s);
	s->db = db;
	s->pick = db_prepare(db, staff_pick_sql);
	s->extuid = db_prepare(db, staff_extuid_sql);
	return s;
}

void staff_close(struct staff *s)
{
	if (!s)
		return;
	sqlite3_finalize(s->pick);
	sqlite3_finalize(s->extuid);
	free(s);
}

/* The first column of ST's first row into OUT; 0 when there is none. */
static int one_text(sqlite3 *db, sqlite3_stmt *st, char *out, size_t len)
{
	int found = db_row(db, st);
	if (found)
		snprintf(out, len, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_reset(st);
	return found;
}

int staff_pick(struct staff *s, int64_t pid, int64_t now, const char *prefer, char *staff, size_t slen,
               char *extuid, size_t elen, char *reason, size_t rlen)
{
	db_bind_int(s->db, s->extuid, 1, pid);
	if (!one_text(s->db, s->extuid, extuid, elen)) {
		snprintf(reason, rlen, "no external_userid: the person is not a WeCom contact");
		return 0;
	}
	db_bind_int(s->db, s->pick, 1, pid);
	db_bind_int(s->db, s->pick, 2, now);
	db_bind_text(s->db, s->pick, 3, prefer ? prefer : "");
	if (!one_text(s->db, s->pick, staff, slen)) {
		snprintf(reason, rlen, "no active staff relationship (friend_add with staff, not since deleted)");
		return 0;
	}
	return 1;
}
