/* smr-ingest: store events from NDJSON or CSV into the database. */
#include "../common/db.h"
#include "../common/err.h"
#include "../common/ingest.h"
#include "../common/mapping.h"
#include "../common/ndjson.h"
#include "../common/opts.h"
#include "../common/progress.h"
#include "../common/rejects.h"
#include "../common/rules.h"
#include "../common/source.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct run {
	struct smr_opts o;
	enum source_format fmt;
	const char *encoding;
	const char *rejects_path;
	const char *source_name;    /* --source: a mapping from the rules */
	struct mapping *mapping;
	struct rejects *rejects;    /* NULL without --rejects */
	int batch;
	sqlite3 *db;
	struct rules *rules;
	struct ingest *in;
	struct ingest_stats st;
	int quiet;              /* no progress */
	struct progress *progress;
	int64_t bytes;          /* of the records read so far */
};

static void parse_args(struct run *r, int argc, char **argv, int *first)
{
	const char *fmt = NULL, *batch = NULL;
	const struct opt table[] = {
		OPT_STRING("format", "FMT", &fmt, "ndjson (default) or csv"),
		OPT_STRING("encoding", "ENC", &r->encoding, "utf-8 (default), gbk, or auto (decided per file)"),
		OPT_STRING("source", "NAME", &r->source_name, "read exports through the rules' source NAME"),
		OPT_STRING("rejects", "FILE", &r->rejects_path, "append rejected records here, verbatim"),
		OPT_STRING("batch", "N", &batch, "records per transaction (default 100000 for files, 5000 for streams)"),
		OPT_FLAG("quiet", &r->quiet, "no progress on standard error"),
		OPT_END,
	};
	*first = opts_parse(argc, argv, table, "[FILE ...]", &r->o);
	if (fmt && (strcmp(fmt, "ndjson") == 0 || strcmp(fmt, "jsonl") == 0))
		r->fmt = FORMAT_NDJSON;
	else if (fmt && strcmp(fmt, "csv") == 0)
		r->fmt = FORMAT_CSV;
	else if (fmt)
		opts_usage_error(opts_usage(), "--format must be ndjson or csv");
	const char *e = r->encoding;
	if (e && strcasecmp(e, "gbk") != 0 && strcasecmp(e, "utf-8") != 0 && strcasecmp(e, "utf8") != 0 &&
	    strcasecmp(e, "auto") != 0)
		opts_usage_error(opts_usage(), "--encoding must be utf-8, gbk or auto");
	long n = batch ? opts_int(batch) : 0;
	if (batch && (n < 1 || n > 1000000))
		opts_usage_error(opts_usage(), "--batch must be between 1 and 1000000");
	r->batch = (int)n;
}

/* A batch's worth of rejects: commit what came before them, write them. */
static void spool_reject(struct run *r, struct source *src, const struct record *rec, int *header_done)
{
	size_t hlen = 0;
	const char *h = NULL;
	if (source_format(src) == FORMAT_CSV && !*header_done) {
		h = source_header(src, &hlen);
		*header_done = 1;
	}
	rejects_add(r->rejects, h, hlen, rec->raw, rec->rawlen);
	if (rejects_pending(r->rejects) >= (r->batch ? r->batch : INGEST_BATCH)) {
		ingest_commit(r->in);
		rejects_flush(r->rejects);
	}
}

static void reject(struct run *r, struct source *src, const struct record *rec, const char *why, int *header_done)
{
	r->st.rejected++;
	smr_warnx(source_name(src), rec->line, "%s", why);
	if (r->rejects)
		spool_reject(r, src, rec, header_done);
}

/* Returns 0, or -1 on a read error (reported). */
static int ingest_source(struct run *r, struct source *src)
{
	struct record rec;
	char why[256];
	int header_done = 0, rc;
	while ((rc = source_next(src, &rec)) == 1) {
		r->st.read++;
		if (ingest_record(r->in, src, &rec, r->mapping, r->source_name, why, sizeof why) != 0)
			reject(r, src, &rec, why, &header_done);
		else if (r->rejects && rejects_pending(r->rejects) && sqlite3_get_autocommit(r->db))
			rejects_flush(r->rejects); /* the batch before them committed */
		r->bytes += (int64_t)rec.rawlen + 1;
		progress_update(r->progress, r->bytes, r->st.read);
		record_clear(&rec);
	}
	if (rc < 0) {
		smr_warnx(source_name(src), 0, "%s", rec.err);
		return -1;
	}
	return 0;
}

/* The bytes of the inputs that are regular files (0 if any is not). */
static int64_t input_size(char **files, int nfiles)
{
	int64_t total = 0;
	for (int i = 0; i < nfiles; i++) {
		struct stat sb;
		int rc = strcmp(files[i], "-") == 0 ? fstat(STDIN_FILENO, &sb) : stat(files[i], &sb);
		if (rc != 0 || !S_ISREG(sb.st_mode))
			return 0;
		total += sb.st_size;
	}
	return total;
}

static void print_summary(const struct ingest_stats *st)
{
	ndjson_put(stdout, json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "read", (json_int_t)st->read,
	                             "inserted", (json_int_t)st->inserted, "duplicates", (json_int_t)st->duplicates,
	                             "rejected", (json_int_t)st->rejected, "new_persons", (json_int_t)st->new_persons,
	                             "merges", (json_int_t)st->merges, "conflicts", (json_int_t)st->conflicts),
	           JSON_PRESERVE_ORDER);
	flush_or_die(stdout, "stdout");
}

/* The default batch: larger when every input is a regular file (nothing
 * waits on each record, and fewer commits write each index page fewer
 * times), the streaming size when any input is a pipe or standard input. */
static int default_batch(char **files, int nfiles)
{
	for (int i = 0; i < nfiles; i++) {
		struct stat sb;
		if (strcmp(files[i], "-") == 0 || stat(files[i], &sb) != 0 || !S_ISREG(sb.st_mode))
			return INGEST_BATCH;
	}
	return INGEST_FILE_BATCH;
}

/* Open every input first: a missing file stops the run before it starts.
 * Returns the sources, or NULL (reported). */
static struct source **open_sources(const struct run *r, char **files, int nfiles)
{
	struct source **srcs = xcalloc((size_t)nfiles, sizeof *srcs);
	for (int i = 0; i < nfiles; i++) {
		char err[256];
		srcs[i] = source_open(files[i], r->fmt, r->encoding, err, sizeof err);
		if (!srcs[i]) {
			smr_warnx(NULL, 0, "%s: %s", files[i], err);
			while (i-- > 0)
				source_close(srcs[i]);
			free(srcs);
			return NULL;
		}
		if (r->encoding && strcasecmp(r->encoding, "auto") == 0)
			smr_warnx(source_name(srcs[i]), 0, "read as %s", source_encoding(srcs[i]));
	}
	return srcs;
}

/* Ingest every source in order, each closed once read; stop at a read
 * error. Returns 0, or -1 on a read error (reported). */
static int ingest_all(struct run *r, char **files, struct source **srcs, int nfiles)
{
	/* batches dirty pages all over the event and identity indexes: a
	 * cache that holds them keeps the rate flat as the database grows */
	db_cache_default(db_cache_affordable(1024));
	r->db = db_open(r->o.db);
	if (!r->batch)
		r->batch = default_batch(files, nfiles);
	r->progress = progress_start("ingest", PROGRESS_BYTES, input_size(files, nfiles), "events", r->quiet);
	r->in = ingest_open(r->db, r->rules, r->o.now, r->batch);
	int io_failed = 0;
	for (int i = 0; i < nfiles && !io_failed; i++) {
		io_failed = ingest_source(r, srcs[i]) != 0;
		source_close(srcs[i]);
		srcs[i] = NULL;
	}
	progress_end(r->progress);
	ingest_close(r->in, &r->st);
	db_close(r->db);
	r->db = NULL;
	return io_failed ? -1 : 0;
}

int main(int argc, char **argv)
{
	struct run r = {0};
	struct source **srcs = NULL;
	char *stdin_only[] = {"-"};
	int first, nfiles = 0, rc = SMR_USAGE;
	smr_progname = "smr-ingest";
	parse_args(&r, argc, argv, &first);
	r.rules = rules_load(r.o.rules, r.o.rules_required);
	if (!r.rules)
		goto out;
	if (r.source_name) {
		int errors = 0;
		r.mapping = mapping_parse(r.rules, r.source_name, &errors);
		if (errors)
			goto out;
		if (!r.mapping) {
			smr_warnx(NULL, 0, "--source: no source \"%s\" in %s", r.source_name, r.rules->file);
			goto out;
		}
	}
	opts_resolve_now(&r.o);
	char **files = first < argc ? argv + first : stdin_only;
	nfiles = first < argc ? argc - first : 1;
	rc = SMR_FATAL;
	if (!(srcs = open_sources(&r, files, nfiles)))
		goto out;
	if (r.rejects_path)
		r.rejects = rejects_open(r.rejects_path);
	int io_failed = ingest_all(&r, files, srcs, nfiles) != 0;
	int failed = rejects_close(r.rejects) != 0;
	r.rejects = NULL;
	if (failed)
		goto out;
	print_summary(&r.st);
	rc = io_failed ? SMR_FATAL : r.st.rejected ? SMR_PARTIAL : SMR_OK;
out:
	for (int i = 0; srcs && i < nfiles; i++)
		source_close(srcs[i]);
	free(srcs);
	mapping_free(r.mapping);
	rules_free(r.rules);
	return rc;
}
