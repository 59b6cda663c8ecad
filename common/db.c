#include "db.h"
#include "err.h"

#include <errno.h>
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BUSY_TIMEOUT_MS 60000
#define CACHE_MB_DEFAULT 256
#define CACHE_MB_MAX 65536

static const char *opened_path = "smr.db";

void (*db_fail_hook)(sqlite3 *db);

void db_fail(sqlite3 *db, const char *what)
{
	if (db && db_fail_hook)
		db_fail_hook(db);
	smr_die(SMR_FATAL, "%s: %s: %s", opened_path, what,
	        db ? sqlite3_errmsg(db) : "cannot open");
}

void db_exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		if (db_fail_hook)
			db_fail_hook(db);
		smr_die(SMR_FATAL, "%s: %s", opened_path, msg ? msg : sqlite3_errmsg(db));
	}
}

sqlite3_stmt *db_prepare(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
		db_fail(db, "prepare");
	return st;
}

void db_run(sqlite3 *db, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		db_fail(db, "write");
	sqlite3_reset(st);
}

int db_row(sqlite3 *db, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc != SQLITE_DONE)
		db_fail(db, "read");
	return 0;
}

/* Savepoints db_begin opened inside a transaction, not yet released. */
static int nested;

void db_begin(sqlite3 *db)
{
	if (sqlite3_get_autocommit(db)) {
		db_exec(db, "BEGIN IMMEDIATE");
		return;
	}
	db_exec(db, "SAVEPOINT db_begin");
	nested++;
}

void db_commit(sqlite3 *db)
{
	if (nested > 0) {
		nested--;
		db_exec(db, "RELEASE db_begin");
		return;
	}
	db_exec(db, "COMMIT");
}

void db_rollback(sqlite3 *db)
{
	if (nested > 0) {
		nested--;
		sqlite3_exec(db, "ROLLBACK TO db_begin; RELEASE db_begin", NULL, NULL, NULL);
		return;
	}
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

void db_bind_text(sqlite3 *db, sqlite3_stmt *st, int i, const char *s)
{
	int rc = s ? sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, i);
	if (rc != SQLITE_OK)
		db_fail(db, "bind");
}

void db_bind_static(sqlite3 *db, sqlite3_stmt *st, int i, const char *s)
{
	int rc = s ? sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
	if (rc != SQLITE_OK)
		db_fail(db, "bind");
}

void db_bind_int(sqlite3 *db, sqlite3_stmt *st, int i, int64_t v)
{
	if (sqlite3_bind_int64(st, i, v) != SQLITE_OK)
		db_fail(db, "bind");
}

void db_bind_opt_int(sqlite3 *db, sqlite3_stmt *st, int i, int has, int64_t v)
{
	int rc = has ? sqlite3_bind_int64(st, i, v) : sqlite3_bind_null(st, i);
	if (rc != SQLITE_OK)
		db_fail(db, "bind");
}

int64_t db_meta_get(sqlite3 *db, const char *key, int64_t dflt)
{
	sqlite3_stmt *st = db_prepare(db, "SELECT value FROM meta WHERE key = ?1");
	db_bind_text(db, st, 1, key);
	int64_t v = db_row(db, st) ? sqlite3_column_int64(st, 0) : dflt;
	sqlite3_finalize(st);
	return v;
}

void db_meta_set(sqlite3 *db, const char *key, int64_t v)
{
	sqlite3_stmt *st = db_prepare(db,
		"INSERT INTO meta(key, value) VALUES (?1, ?2) "
		"ON CONFLICT(key) DO UPDATE SET value = excluded.value");
	db_bind_text(db, st, 1, key);
	db_bind_int(db, st, 2, v);
	db_run(db, st);
	sqlite3_finalize(st);
}

static int user_version(sqlite3 *db)
{
	sqlite3_stmt *st = db_prepare(db, "PRAGMA user_version");
	int v = db_row(db, st) ? sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	return v;
}

int db_schema_version(void)
{
	int n = 0;
	while (smr_migrations[n])
		n++;
	return 1 + n;
}

static _Noreturn void newer_schema(sqlite3 *db, int v)
{
	db_rollback(db);
	smr_die(SMR_FATAL, "%s: schema version %d is newer than this smr (%d)",
	        opened_path, v, SMR_SCHEMA_VERSION);
}

/* Before anything writes (switching to WAL rewrites the header): a file
 * from a newer smr is left exactly as it is. */
static void refuse_newer(sqlite3 *db)
{
	int v = user_version(db);
	if (v > SMR_SCHEMA_VERSION)
		newer_schema(db, v);
}

static void migrate(sqlite3 *db)
{
	if (user_version(db) == SMR_SCHEMA_VERSION)
		return;
	db_begin(db); /* re-read under the write lock: another run may have migrated */
	int v = user_version(db);
	if (v > SMR_SCHEMA_VERSION)
		newer_schema(db, v);
	if (v == 0) {
		db_exec(db, smr_schema_v1);
		v = 1;
	}
	for (; v < SMR_SCHEMA_VERSION; v++)
		db_exec(db, smr_migrations[v - 1]);
	char sql[64];
	snprintf(sql, sizeof sql, "PRAGMA user_version = %d", SMR_SCHEMA_VERSION);
	db_exec(db, sql);
	db_commit(db);
}

/* Create the file ourselves so it is 0600 from its first byte; SQLite gives
 * its -wal and -shm files the same mode. */
static void create_private(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		smr_die_errno(SMR_FATAL, "%s", path);
	close(fd);
}

/* Switching to WAL needs an exclusive lock. SQLite does not wait in its
 * busy handler here when another connection holds a write lock (waiting
 * could deadlock), so wait ourselves, up to the busy timeout. */
static void set_wal(sqlite3 *db)
{
	for (int waited = 0;; waited += 20) {
		int rc = sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL);
		if (rc == SQLITE_OK)
			return;
		if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED)
			db_fail(db, "journal_mode");
		if (waited >= BUSY_TIMEOUT_MS)
			db_fail(db, "journal_mode");
		sqlite3_sleep(20);
	}
}

static int cache_mb_default = CACHE_MB_DEFAULT;

void db_cache_default(int mb) { cache_mb_default = mb; }

int db_cache_affordable(int mb)
{
	long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
	if (pages <= 0 || size <= 0)
		return mb;
	int64_t eighth = (int64_t)pages * size / 8 / (1024 * 1024);
	if (eighth < 64)
		eighth = 64;
	return eighth < mb ? (int)eighth : mb;
}

int db_cache_mb(void)
{
	const char *s = getenv("SMR_CACHE_MB");
	if (!s || !*s)
		return cache_mb_default;
	char *end;
	errno = 0;
	long mb = strtol(s, &end, 10);
	if (errno || *end || mb < 1 || mb > CACHE_MB_MAX)
		smr_die(SMR_FATAL, "SMR_CACHE_MB: \"%s\" is not a whole number of megabytes from 1 to %d", s, CACHE_MB_MAX);
	return (int)mb;
}

/* The page cache: a bound on memory, and what keeps the hot parts of the
 * indexes (identity, event_pid) off the disk as the database grows. */
static void set_cache(sqlite3 *db)
{
	char sql[64];
	snprintf(sql, sizeof sql, "PRAGMA cache_size = -%d", db_cache_mb() * 1024);
	db_exec(db, sql);
}

sqlite3 *db_open(const char *path)
{
#ifdef __GLIBC__
	/* SQLite opens and frees an ephemeral table's page cache (about 90 KB)
	 * for each run of a statement with an IN list: at glibc's default trim
	 * threshold every free gave the memory back to the kernel and the next
	 * run asked for it again, three brk calls a touch in smr-send. Keep
	 * up to 16 MB of freed memory instead. */
	mallopt(M_TRIM_THRESHOLD, 16 << 20);
#endif
	opened_path = path;
	if (strcmp(path, ":memory:") != 0)
		create_private(path);
	sqlite3 *db = NULL;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
		db_fail(db, "open");
	sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
	sqlite3_extended_result_codes(db, 1);
	refuse_newer(db);
	set_wal(db);
	db_exec(db, "PRAGMA synchronous = NORMAL");
	db_exec(db, "PRAGMA foreign_keys = OFF");
	set_cache(db);
	migrate(db);
	return db;
}

void db_close(sqlite3 *db)
{
	if (sqlite3_close(db) != SQLITE_OK)
		db_fail(db, "close");
}
