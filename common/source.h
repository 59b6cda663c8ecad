/* Input records from NDJSON or CSV files (UTF-8, or GBK converted by iconv),
 * each with its verbatim bytes and line number, for rejects that can be
 * fixed and re-ingested. */
#ifndef SMR_SOURCE_H
#define SMR_SOURCE_H

#include <jansson.h>
#include <stddef.h>

#define SOURCE_LINE_MAX (1024 * 1024)

enum source_format { FORMAT_AUTO, FORMAT_NDJSON, FORMAT_CSV };

struct record {
	json_t *obj;            /* the record; NULL when malformed (see err) */
	char err[256];
	const char *raw;        /* verbatim input bytes, no final newline */
	size_t rawlen;
	long line;              /* first line of the record */
};

struct source;

/* PATH "-" is standard input. ENCODING is NULL/"utf-8", "gbk" or "auto".
 * Returns NULL with a reason in err. */
struct source *source_open(const char *path, enum source_format fmt,
                           const char *encoding, char *err, size_t errlen);
/* 1: a record (call record_clear after), 0: end of input, -1: read error
 * (reason in rec->err). */
int source_next(struct source *s, struct record *rec);
void record_clear(struct record *rec);
/* The display name ("-" shows as "<stdin>"). */
const char *source_name(const struct source *s);
enum source_format source_format(const struct source *s);
/* "UTF-8" or "GB18030": what the input is read as (--encoding auto
 * decides per file, from its whole content). */
const char *source_encoding(const struct source *s);
/* Whether the CSV header names column NAME (always 1 for NDJSON, whose
 * records name their own fields). */
int source_has_column(const struct source *s, const char *name);
/* For CSV: the header line, verbatim, to head a rejects file. */
const char *source_header(const struct source *s, size_t *len);
void source_close(struct source *s);

enum source_format format_from_name(const char *path);

#endif
