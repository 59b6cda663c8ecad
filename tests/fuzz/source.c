/* Fuzz target: an input file (NDJSON, CSV in UTF-8 or CSV in GBK, chosen at
 * build time by FUZZ_FORMAT and FUZZ_ENCODING) through the record contract
 * and identity resolution into an in-memory database, as smr-ingest does.
 * Besides the sanitizers it asserts the ingest promise: every record read
 * is stored, a duplicate or rejected, and every stored event and identifier
 * is on a person. */
#include "fuzz.h"
#include "../../common/db.h"
#include "../../common/event.h"
#include "../../common/ingest.h"
#include "../../common/rules.h"
#include "../../common/source.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FUZZ_FORMAT
#define FUZZ_FORMAT FORMAT_NDJSON
#endif
#ifndef FUZZ_ENCODING
#define FUZZ_ENCODING NULL
#endif

static struct rules *rules;
static sqlite3 *db; /* one per process, emptied after each input: opening
                     * and creating the schema would cost more than the run */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_setup();
	/* Built-in identifier kinds plus a hashed and a custom one. */
	static const char text[] = "identity phone hash\nidentity shop_uid priority 3 max 2\n";
	rules = rules_load(fuzz_file((const uint8_t *)text, sizeof text - 1, ".rules"), 1);
	if (!rules)
		abort();
	db = db_open(":memory:");
	return 0;
}

static int64_t count(const char *sql)
{
	sqlite3_stmt *st = db_prepare(db, sql);
	int64_t n = db_row(db, st) ? sqlite3_column_int64(st, 0) : -1;
	sqlite3_finalize(st);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	const char *path = fuzz_file(data, size, FUZZ_FORMAT == FORMAT_CSV ? ".csv" : ".ndjson");
	struct source *src = source_open(path, FUZZ_FORMAT, FUZZ_ENCODING, err, sizeof err);
	if (!src)
		abort();
	struct ingest *in = ingest_open(db, rules, 1795000000, 7);
	struct ingest_stats st;
	long read = 0, rejected = 0;
	struct record rec;
	int rc;
	while ((rc = source_next(src, &rec)) == 1) {
		struct event ev;
		read++;
		if (rec.raw == NULL && rec.rawlen)
			abort();
		if (!rec.obj || event_from_json(rec.obj, rules, &ev, err, sizeof err) != 0) {
			rejected++;
		} else {
			ingest_event(in, &ev);
			event_clear(&ev);
		}
		record_clear(&rec);
	}
	source_close(src);
	ingest_close(in, &st);
	if (rc == 1 || st.inserted + st.duplicates + rejected != read)
		abort();
	if (count("SELECT count(*) FROM event") != st.inserted ||
	    count("SELECT count(*) FROM event WHERE pid NOT IN (SELECT pid FROM person)") != 0 ||
	    count("SELECT count(*) FROM identity WHERE pid NOT IN (SELECT pid FROM person)") != 0)
		abort();
	db_exec(db, "DELETE FROM event; DELETE FROM identity; DELETE FROM person; DELETE FROM merge_log;"
	            "DELETE FROM conflict_log; DELETE FROM meta; DELETE FROM sqlite_sequence");
	return 0;
}
