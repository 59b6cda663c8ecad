/* ingest-floor: the SQLite floor for scripts/bench.
 *
 * The least work that stores the rows smr-ingest stores: it reads the same
 * NDJSON with jansson and inserts event rows, one person row per event whose
 * identifiers are all new, and identity rows (INSERT OR IGNORE), into the
 * same schema with the same indexes and pragmas (db_open from common/), in
 * transactions of 5000 events with a 16 MB page cache: smr-ingest's settings
 * when this floor was set, pinned here so that the reference does not move
 * when smr's defaults do (--batch and SMR_CACHE_MB still apply). Nothing else: no validation beyond
 * what the values need, no dedup lookup, no identity lookups or merges, no
 * per-person facts, no profile attributes.
 *
 * The values are the ones smr-ingest would store (ts and expires in Unix
 * seconds, amounts in fen, props as compact JSON, phones normalised), except
 * pid: an event whose identifiers are not all new gets a stand-in pid (a
 * hash of its first identifier over the persons created so far), which
 * spreads its event_pid index entry over the persons as a real pid would,
 * without paying for the lookup that finds the real one; its new
 * identifiers, if any, are pointed at that stand-in too (see store()).
 *
 *     ingest-floor --db PATH [--batch N] [FILE]    (stdin when no FILE or "-")
 *
 * Prints {"read":N,"inserted":N,"skipped":N,"persons":N} on stdout. */
#include "../common/db.h"
#include "../common/err.h"
#include "../common/ingest.h"
#include "../common/money.h"
#include "../common/tstamp.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FLOOR_BATCH 5000
#define FLOOR_CACHE_MB "16"

static const char *const kinds[] = {
	"unionid", "member_id", "external_userid", "phone", "openid", "cookie_id", "anon_id",
};
#define NKINDS (sizeof kinds / sizeof kinds[0])

struct floor {
	sqlite3 *db;
	sqlite3_stmt *event, *person, *identity, *repoint;
	int64_t now, persons;
	long read, inserted, skipped;
	int in_batch, batch;
};

static const char *str_of(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));
	return s && *s ? s : NULL;
}

static int time_of(json_t *v, int64_t *out)
{
	char why[128];
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return 0;
	}
	return json_is_string(v) ? tstamp_parse(json_string_value(v), out, why, sizeof why) : -1;
}

static int money_of(json_t *v, int64_t *fen)
{
	if (json_is_string(v))
		return money_parse(json_string_value(v), fen);
	if (json_is_number(v))
		return money_from_double(json_number_value(v), fen);
	return -1;
}

/* Digits only, a +86 or 0086 prefix dropped. */
static void phone_digits(const char *in, char *out, size_t outlen)
{
	size_t n = 0;
	if (strncmp(in, "+86", 3) == 0)
		in += 3;
	else if (strncmp(in, "0086", 4) == 0)
		in += 4;
	for (; *in && n + 1 < outlen; in++)
		if (*in >= '0' && *in <= '9')
			out[n++] = *in;
	out[n] = '\0';
}

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static void store(struct floor *f, json_t *obj)
{
	sqlite3 *db = f->db;
	const char *id = str_of(obj, "id"), *type = str_of(obj, "type");
	int64_t ts, amount = 0, expires = 0;
	json_t *v;
	if (!id || !type || time_of(json_object_get(obj, "ts"), &ts) != 0) {
		f->skipped++;
		return;
	}
	int has_amount = (v = json_object_get(obj, "amount")) && money_of(v, &amount) == 0;
	int has_expires = (v = json_object_get(obj, "expires")) && time_of(v, &expires) == 0;

	const char *idv[NKINDS];
	char phone[40];
	int nids = 0, first = -1;
	for (size_t k = 0; k < NKINDS; k++) {
		idv[k] = str_of(obj, kinds[k]);
		if (idv[k] && k == 3) {
			phone_digits(idv[k], phone, sizeof phone);
			idv[k] = phone;
		}
		if (idv[k]) {
			nids++;
			if (first < 0)
				first = (int)k;
		}
	}
	if (!nids) {
		f->skipped++;
		return;
	}

	/* Identities go in with the pid a new person would get; when some of
	 * the event's identifiers were known, the new ones joined a known
	 * person: re-point them at the stand-in pid, so their identity_pid
	 * entries land where a real attach puts them, not at the end. */
	int64_t pid = f->persons + 1;
	int added = 0, isnew[NKINDS] = {0};
	for (size_t k = 0; k < NKINDS; k++) {
		if (!idv[k])
			continue;
		db_bind_text(db, f->identity, 1, kinds[k]);
		db_bind_text(db, f->identity, 2, idv[k]);
		db_bind_int(db, f->identity, 3, pid);
		db_bind_int(db, f->identity, 4, ts);
		db_run(db, f->identity);
		isnew[k] = sqlite3_changes(db) > 0;
		added += isnew[k];
	}
	if (added == nids) {
		db_bind_int(db, f->person, 1, f->now);
		db_run(db, f->person);
		pid = sqlite3_last_insert_rowid(db);
		f->persons = pid;
	} else {
		int64_t known = f->persons ? (int64_t)(fnv1a(idv[first]) % (uint64_t)f->persons) + 1 : 1;
		for (size_t k = 0; k < NKINDS && added; k++) {
			if (!isnew[k])
				continue;
			db_bind_text(db, f->repoint, 1, kinds[k]);
			db_bind_text(db, f->repoint, 2, idv[k]);
			db_bind_int(db, f->repoint, 3, known);
			db_run(db, f->repoint);
		}
		pid = known;
	}

	json_t *p = json_object_get(obj, "props");
	char *props = json_is_object(p) && json_object_size(p) ? json_dumps(p, JSON_COMPACT) : NULL;
	sqlite3_stmt *st = f->event;
	db_bind_text(db, st, 1, id);
	db_bind_int(db, st, 2, pid);
	db_bind_text(db, st, 3, type);
	db_bind_int(db, st, 4, ts);
	db_bind_text(db, st, 5, str_of(obj, "item"));
	db_bind_opt_int(db, st, 6, has_amount, amount);
	db_bind_text(db, st, 7, str_of(obj, "channel"));
	db_bind_text(db, st, 8, str_of(obj, "text"));
	db_bind_opt_int(db, st, 9, has_expires, expires);
	db_bind_text(db, st, 10, str_of(obj, "group_id"));
	db_bind_text(db, st, 11, str_of(obj, "staff"));
	db_bind_text(db, st, 12, props);
	db_bind_int(db, st, 13, f->now);
	db_run(db, st);
	f->inserted += sqlite3_changes(db);
	free(props);
}

int main(int argc, char **argv)
{
	smr_progname = "ingest-floor";
	const char *dbpath = "smr.db", *path = "-";
	int batch = FLOOR_BATCH;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--db") == 0 && i + 1 < argc) {
			dbpath = argv[++i];
		} else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc && atoi(argv[i + 1]) > 0) {
			batch = atoi(argv[++i]);
		} else if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "usage: ingest-floor --db PATH [--batch N] [FILE]\n");
			return SMR_USAGE;
		} else {
			path = argv[i];
		}
	}
	char err[256];
	if (tstamp_tz_set("Asia/Shanghai", err, sizeof err) != 0)
		smr_die(SMR_FATAL, "%s", err);
	FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (!in)
		smr_die(SMR_FATAL, "%s: cannot open", path);

	struct floor f = {0};
	f.batch = batch;
	if (!getenv("SMR_CACHE_MB"))
		setenv("SMR_CACHE_MB", FLOOR_CACHE_MB, 1);
	f.db = db_open(dbpath);
	f.now = (int64_t)time(NULL);
	f.event = db_prepare(f.db,
		"INSERT OR IGNORE INTO event(id, pid, type, ts, item, amount, channel, text, expires, group_id, staff, props, ingested_at) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)");
	f.person = db_prepare(f.db, "INSERT INTO person(created_at) VALUES (?1)");
	f.identity = db_prepare(f.db,
		"INSERT OR IGNORE INTO identity(kind, value, pid, first_seen) VALUES (?1, ?2, ?3, ?4)");
	f.repoint = db_prepare(f.db, "UPDATE identity SET pid = ?3 WHERE kind = ?1 AND value = ?2");
	sqlite3_stmt *maxpid = db_prepare(f.db, "SELECT coalesce(max(pid), 0) FROM person");
	f.persons = db_row(f.db, maxpid) ? sqlite3_column_int64(maxpid, 0) : 0;
	sqlite3_finalize(maxpid);

	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, in)) >= 0) {
		if (n > 0 && line[n - 1] == '\n')
			n--;
		if (n == 0)
			continue;
		f.read++;
		json_t *obj = json_loadb(line, (size_t)n, 0, NULL);
		if (!json_is_object(obj)) {
			f.skipped++;
			json_decref(obj);
			continue;
		}
		if (f.in_batch == 0)
			db_begin(f.db);
		store(&f, obj);
		json_decref(obj);
		if (++f.in_batch >= f.batch) {
			db_commit(f.db);
			f.in_batch = 0;
		}
	}
	if (f.in_batch)
		db_commit(f.db);
	free(line);
	if (in != stdin)
		fclose(in);
	sqlite3_finalize(f.event);
	sqlite3_finalize(f.person);
	sqlite3_finalize(f.identity);
	sqlite3_finalize(f.repoint);
	db_close(f.db);
	printf("{\"read\":%ld,\"inserted\":%ld,\"skipped\":%ld,\"persons\":%lld}\n",
	       f.read, f.inserted, f.skipped, (long long)f.persons);
	return 0;
}
