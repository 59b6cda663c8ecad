/* The shared SQLite database: open, create or migrate, and checked helpers.
 * A database failure is fatal (exit 3): the open transaction rolls back, so
 * nothing is half-done, and a re-run completes the work. */
#ifndef SMR_DB_H
#define SMR_DB_H

#include <sqlite3.h>
#include <stdint.h>

/* The schema: version 1 is created whole; each later version is one
 * migration step, run in order inside the migrating transaction. */
extern const char *const smr_schema_v1;
extern const char *const smr_migrations[];
/* 1 + the number of migrations: the version this build creates. */
int db_schema_version(void);
#define SMR_SCHEMA_VERSION db_schema_version()

/* Open PATH (created mode 0600), WAL, busy timeout, schema created or
 * migrated. Exits 3 on failure. */
sqlite3 *db_open(const char *path);
void db_close(sqlite3 *db);
/* The page cache in megabytes: SMR_CACHE_MB, or the tool's default (256
 * unless db_cache_default changed it); exits 3 on a bad value. */
int db_cache_mb(void);
/* A tool whose reads are scattered look-ups (smr-send) sets a smaller
 * default before db_open, so its memory does not follow the database. */
void db_cache_default(int mb);
/* MB, or an eighth of the machine's memory if that is less (at least
 * 64): a large default that a small machine can still afford. */
int db_cache_affordable(int mb);

_Noreturn void db_fail(sqlite3 *db, const char *what);
/* Called first by db_fail when set: may report the failure its own way and
 * exit (rules over their budget, see rulebudget.h). */
extern void (*db_fail_hook)(sqlite3 *db);

void db_exec(sqlite3 *db, const char *sql);
sqlite3_stmt *db_prepare(sqlite3 *db, const char *sql);
/* Step a statement that returns no row, then reset it. */
void db_run(sqlite3 *db, sqlite3_stmt *st);
/* Step once: 1 for a row, 0 for done. */
int db_row(sqlite3 *db, sqlite3_stmt *st);

/* BEGIN IMMEDIATE (waits on the busy timeout), COMMIT, ROLLBACK. Inside
 * a transaction, db_begin opens a savepoint and db_commit releases it, so
 * code that commits as it goes (smr-tag's chunks) also runs inside
 * another's transaction (smr-sop-due --simulate, rolled back whole). */
void db_begin(sqlite3 *db);
void db_commit(sqlite3 *db);
void db_rollback(sqlite3 *db);

/* Bind helpers: NULL text binds SQL NULL; has==0 binds NULL. */
void db_bind_text(sqlite3 *db, sqlite3_stmt *st, int i, const char *s);
/* As db_bind_text without a copy: S must stay valid until the statement
 * is next reset, and the caller binds it again before every step. */
void db_bind_static(sqlite3 *db, sqlite3_stmt *st, int i, const char *s);
void db_bind_int(sqlite3 *db, sqlite3_stmt *st, int i, int64_t v);
void db_bind_opt_int(sqlite3 *db, sqlite3_stmt *st, int i, int has, int64_t v);

/* meta table: small named values (watermarks). */
int64_t db_meta_get(sqlite3 *db, const char *key, int64_t dflt);
void db_meta_set(sqlite3 *db, const char *key, int64_t v);

#endif
