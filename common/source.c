#include "source.h"
#include "err.h"
#include "utf8.h"

#include <csv.h>
#include <errno.h>
#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct csv_row {
	char **fields;      /* NULL entries are empty fields */
	size_t n, cap;
};

struct source {
	char *name;
	FILE *f;
	enum source_format fmt;
	iconv_t cd;                 /* (iconv_t)-1 when input is UTF-8 */
	char *line;                 /* the raw line as read */
	size_t linecap;
	long lineno;
	char *conv;                 /* line converted to UTF-8 */
	size_t convcap;
	/* CSV */
	struct csv_parser csv;
	int csv_ok;
	char **header;
	size_t nheader;
	char *header_raw;
	size_t header_rawlen;
	struct csv_row row;         /* the row being parsed */
	int row_done;
	char *raw;                  /* raw bytes of the record being built */
	size_t rawlen, rawcap;
	long rec_line;
	int in_quotes;              /* the record's raw bytes end inside quotes */
	int oversize;               /* over the limit: skipping to its real end */
	char rec_err[256];          /* first problem seen in this record */
	char header_err[200];       /* a bad header rejects every row */
	int at_eof;
	const char *encoding;       /* what the input was read as */
};

enum source_format format_from_name(const char *path)
{
	const char *dot = strrchr(path, '.');
	if (dot && strcasecmp(dot, ".csv") == 0)
		return FORMAT_CSV;
	return FORMAT_NDJSON;
}

const char *source_name(const struct source *s) { return s->name; }
enum source_format source_format(const struct source *s) { return s->fmt; }
const char *source_encoding(const struct source *s) { return s->encoding; }

int source_has_column(const struct source *s, const char *name)
{
	if (s->fmt != FORMAT_CSV)
		return 1;
	for (size_t i = 0; i < s->nheader; i++)
		if (s->header[i] && strcmp(s->header[i], name) == 0)
			return 1;
	return 0;
}

/* --encoding auto: UTF-8 (with or without a BOM) when every line of F is
 * valid UTF-8, else GB18030 (which GBK exports are). Standard input is
 * first copied to an unlinked 0600 temporary file, so it can be read twice.
 * Returns F rewound (perhaps a new stream), or NULL. */
static FILE *guess_encoding(FILE *f, int *gbk)
{
	if (f == stdin) {
		FILE *tmp = tmpfile();
		char buf[65536];
		size_t n;
		if (!tmp)
			return NULL;
		while ((n = fread(buf, 1, sizeof buf, f)) > 0)
			if (fwrite(buf, 1, n, tmp) != n) {
				fclose(tmp);
				return NULL;
			}
		if (ferror(f) || fflush(tmp) != 0) {
			fclose(tmp);
			return NULL;
		}
		f = tmp;
	}
	rewind(f);
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	*gbk = 0;
	while (!*gbk && (len = getline(&line, &cap, f)) >= 0)
		*gbk = !utf8_valid(line, (size_t)len);
	free(line);
	if (ferror(f))
		return NULL;
	rewind(f);
	return f;
}

const char *source_header(const struct source *s, size_t *len)
{
	*len = s->header_rawlen;
	return s->header_raw;
}

static void row_reset(struct csv_row *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->fields[i]);
	r->n = 0;
}

static void on_field(void *field, size_t len, void *data)
{
	struct source *s = data;
	struct csv_row *r = &s->row;
	r->fields = xgrow(r->fields, &r->cap, r->n + 1, sizeof *r->fields);
	r->fields[r->n++] = field && len ? xstrndup(field, len) : NULL;
}

static void on_row(int c, void *data)
{
	(void)c;
	((struct source *)data)->row_done = 1;
}

struct source *source_open(const char *path, enum source_format fmt, const char *encoding,
                           char *err, size_t errlen)
{
	struct source *s = xcalloc(1, sizeof *s);
	int is_stdin = strcmp(path, "-") == 0;
	s->name = xstrdup(is_stdin ? "<stdin>" : path);
	s->fmt = fmt != FORMAT_AUTO ? fmt : is_stdin ? FORMAT_NDJSON : format_from_name(path);
	s->cd = (iconv_t)-1;
	if (encoding && strcasecmp(encoding, "gbk") == 0) {
		s->cd = iconv_open("UTF-8", "GB18030");
		if (s->cd == (iconv_t)-1) {
			snprintf(err, errlen, "iconv cannot convert from GBK: %s", strerror(errno));
			free(s->name);
			free(s);
			return NULL;
		}
	}
	s->f = is_stdin ? stdin : fopen(path, "rb");
	if (!s->f) {
		snprintf(err, errlen, "%s", strerror(errno));
		source_close(s);
		return NULL;
	}
	s->encoding = s->cd == (iconv_t)-1 ? "UTF-8" : "GB18030";
	if (encoding && strcasecmp(encoding, "auto") == 0) {
		int gbk = 0;
		FILE *f = guess_encoding(s->f, &gbk);
		if (!f) {
			snprintf(err, errlen, "%s", strerror(errno));
			source_close(s);
			return NULL;
		}
		s->f = f;
		if (gbk && (s->cd = iconv_open("UTF-8", "GB18030")) == (iconv_t)-1) {
			snprintf(err, errlen, "iconv cannot convert from GB18030: %s", strerror(errno));
			source_close(s);
			return NULL;
		}
		s->encoding = gbk ? "GB18030" : "UTF-8";
	}
	if (s->fmt == FORMAT_CSV) {
		if (csv_init(&s->csv, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL | CSV_EMPTY_IS_NULL) != 0)
			smr_die(SMR_FATAL, "out of memory");
		s->csv_ok = 1;
	}
	return s;
}

void source_close(struct source *s)
{
	if (!s)
		return;
	if (s->f && s->f != stdin)
		fclose(s->f);
	if (s->cd != (iconv_t)-1)
		iconv_close(s->cd);
	if (s->csv_ok)
		csv_free(&s->csv);
	row_reset(&s->row);
	free(s->row.fields);
	for (size_t i = 0; i < s->nheader; i++)
		free(s->header[i]);
	free(s->header);
	free(s->header_raw);
	free(s->raw);
	free(s->conv);
	free(s->line);
	free(s->name);
	free(s);
}

void record_clear(struct record *rec)
{
	if (rec->obj)
		json_decref(rec->obj);
	rec->obj = NULL;
}

/* Read one line; strips the newline (and a CR before it). Returns its
 * length, or -1 at end of input or on a read error (s->f says which). */
static ssize_t read_line(struct source *s)
{
	ssize_t n = getline(&s->line, &s->linecap, s->f);
	if (n < 0)
		return -1;
	s->lineno++;
	if (n > 0 && s->line[n - 1] == '\n')
		s->line[--n] = '\0';
	if (n > 0 && s->line[n - 1] == '\r')
		s->line[--n] = '\0';
	if (s->lineno == 1 && n >= 3 && memcmp(s->line, "\xEF\xBB\xBF", 3) == 0) {
		memmove(s->line, s->line + 3, (size_t)n - 2); /* UTF-8 BOM */
		n -= 3;
	}
	return n;
}

/* The current line as UTF-8 text in *out. Returns 0, or -1 with a reason. */
static int line_to_utf8(struct source *s, size_t n, const char **out, size_t *outlen, char *err, size_t errlen)
{
	if (s->cd == (iconv_t)-1) {
		if (!utf8_valid(s->line, n)) {
			snprintf(err, errlen, "invalid UTF-8 (use --encoding gbk for GBK files)");
			return -1;
		}
		*out = s->line;
		*outlen = n;
		return 0;
	}
	if (s->convcap < n * 2 + 4) {
		s->convcap = n * 2 + 4;
		s->conv = xrealloc(s->conv, s->convcap);
	}
	char *in = s->line, *o = s->conv;
	size_t inleft = n, outleft = s->convcap - 1;
	iconv(s->cd, NULL, NULL, NULL, NULL);
	if (iconv(s->cd, &in, &inleft, &o, &outleft) == (size_t)-1) {
		snprintf(err, errlen, "invalid GBK text at byte %zu", (size_t)(in - s->line) + 1);
		return -1;
	}
	*o = '\0';
	*out = s->conv;
	*outlen = (size_t)(o - s->conv);
	return 0;
}

static int io_error(struct source *s, struct record *rec)
{
	if (ferror(s->f)) {
		snprintf(rec->err, sizeof rec->err, "read error: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int next_ndjson(struct source *s, struct record *rec)
{
	for (;;) {
		ssize_t n = read_line(s);
		if (n < 0)
			return io_error(s, rec);
		if (n == 0)
			continue; /* blank lines are not records */
		rec->raw = s->line;
		rec->rawlen = (size_t)n;
		rec->line = s->lineno;
		if ((size_t)n > SOURCE_LINE_MAX) {
			snprintf(rec->err, sizeof rec->err, "line longer than %d bytes", SOURCE_LINE_MAX);
			return 1;
		}
		const char *text;
		size_t len;
		if (line_to_utf8(s, (size_t)n, &text, &len, rec->err, sizeof rec->err) != 0)
			return 1;
		json_error_t je;
		rec->obj = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
		if (!rec->obj)
			snprintf(rec->err, sizeof rec->err, "malformed JSON at column %d: %s", je.column, je.text);
		else if (!json_is_object(rec->obj)) {
			snprintf(rec->err, sizeof rec->err, "record is not a JSON object");
			record_clear(rec);
		}
		return 1;
	}
}

/* Appends a line to the record's raw bytes, keeping track of whether they
 * end inside a quoted field: a record ends only at a newline outside
 * quotes (each '"' opens or closes a quote; a doubled one does both). */
static void raw_append(struct source *s, const char *p, size_t n)
{
	for (const char *q = memchr(p, '"', n); q; q = memchr(q + 1, '"', n - (size_t)(q + 1 - p)))
		s->in_quotes = !s->in_quotes;
	if (s->rawlen + n + 2 > s->rawcap) {
		s->rawcap = (s->rawlen + n + 2) * 2;
		s->raw = xrealloc(s->raw, s->rawcap);
	}
	if (s->rawlen)
		s->raw[s->rawlen++] = '\n';
	memcpy(s->raw + s->rawlen, p, n);
	s->rawlen += n;
	s->raw[s->rawlen] = '\0';
}

static void set_rec_err(struct source *s, const char *msg)
{
	if (!s->rec_err[0])
		snprintf(s->rec_err, sizeof s->rec_err, "%s", msg);
}

/* A broken record: start the parser afresh at the next line. */
static void csv_restart(struct source *s)
{
	csv_free(&s->csv);
	if (csv_init(&s->csv, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL | CSV_EMPTY_IS_NULL) != 0)
		smr_die(SMR_FATAL, "out of memory");
	row_reset(&s->row);
	s->row_done = 1;
}

/* Feed lines until a row is complete. Returns 1 with a row (or an error
 * in rec_err), 0 at end of input, -1 on a read error. */
static int csv_next_row(struct source *s, struct record *rec)
{
	s->rawlen = 0;
	s->rec_err[0] = '\0';
	s->row_done = 0;
	row_reset(&s->row);
	s->rec_line = 0;
	s->in_quotes = 0;
	s->oversize = 0;
	while (!s->row_done) {
		if (s->at_eof)
			return 0;
		ssize_t n = read_line(s);
		if (n < 0) {
			if (io_error(s, rec))
				return -1;
			s->at_eof = 1;
			if (s->rawlen == 0)
				return 0;
			if (csv_fini(&s->csv, on_field, on_row, s) != 0) {
				set_rec_err(s, "unterminated quoted field at end of file");
				csv_restart(s);
			}
			s->row_done = 1;
			break;
		}
		if (n == 0 && s->rawlen == 0)
			continue; /* blank line between records */
		if (!s->rec_line)
			s->rec_line = s->lineno;
		raw_append(s, s->line, (size_t)n);
		if (s->rawlen > SOURCE_LINE_MAX && !s->oversize) {
			/* stop parsing, but read on to the record's real end */
			set_rec_err(s, "record longer than 1048576 bytes");
			csv_restart(s);
			s->oversize = 1;
		}
		if (s->oversize) {
			s->row_done = !s->in_quotes;
			continue;
		}
		const char *text;
		size_t len;
		char why[128];
		if (line_to_utf8(s, (size_t)n, &text, &len, why, sizeof why) != 0) {
			/* parse the line's structure anyway (quotes and commas are
			 * ASCII), so that the record ends where it should */
			set_rec_err(s, why);
			for (char *c = s->line; c < s->line + n; c++)
				if ((unsigned char)*c >= 0x80)
					*c = '?';
			text = s->line;
			len = (size_t)n;
		}
		if (csv_parse(&s->csv, text, len, on_field, on_row, s) != len ||
		    csv_parse(&s->csv, "\n", 1, on_field, on_row, s) != 1) {
			set_rec_err(s, "malformed CSV (a stray or unbalanced quote)");
			csv_restart(s);
		}
	}
	rec->raw = s->raw;
	rec->rawlen = s->rawlen;
	rec->line = s->rec_line;
	return 1;
}

static int read_header(struct source *s, struct record *rec)
{
	int rc = csv_next_row(s, rec);
	if (rc <= 0)
		return rc;
	if (s->rec_err[0] || s->row.n == 0) {
		snprintf(rec->err, sizeof rec->err, "bad CSV header: %.200s", s->rec_err[0] ? s->rec_err : "empty");
		return -1;
	}
	s->nheader = s->row.n;
	s->header = xcalloc(s->nheader, sizeof *s->header);
	for (size_t i = 0; i < s->nheader; i++) {
		if (!s->row.fields[i]) {
			snprintf(rec->err, sizeof rec->err, "bad CSV header: column %zu has no name", i + 1);
			return -1;
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(s->header[j], s->row.fields[i]) == 0) {
				snprintf(rec->err, sizeof rec->err, "bad CSV header: column \"%s\" twice", s->header[j]);
				return -1;
			}
		s->header[i] = s->row.fields[i];
		s->row.fields[i] = NULL;
	}
	s->header_raw = xstrndup(s->raw, s->rawlen);
	s->header_rawlen = s->rawlen;
	return 1;
}

static json_t *row_to_json(struct source *s, char *err, size_t errlen)
{
	if (s->row.n != s->nheader) {
		snprintf(err, errlen, "row has %zu fields, the header has %zu", s->row.n, s->nheader);
		return NULL;
	}
	json_t *obj = json_object();
	for (size_t i = 0; i < s->nheader; i++) {
		const char *v = s->row.fields[i];
		if (!v || !*v)
			continue; /* empty field = absent */
		json_t *jv;
		if (strcmp(s->header[i], "props") == 0 || strcmp(s->header[i], "ids") == 0) {
			json_error_t je;
			jv = json_loads(v, JSON_REJECT_DUPLICATES, &je);
			if (!jv || !json_is_object(jv)) {
				snprintf(err, errlen, "field \"%s\" is not a JSON object", s->header[i]);
				json_decref(jv);
				json_decref(obj);
				return NULL;
			}
		} else {
			jv = json_string(v);
			if (!jv) {
				snprintf(err, errlen, "field \"%s\" is not valid UTF-8", s->header[i]);
				json_decref(obj);
				return NULL;
			}
		}
		json_object_set_new(obj, s->header[i], jv);
	}
	return obj;
}

/* A header that cannot name the fields is itself rejected, and so is every
 * row after it, verbatim, so that nothing is lost. */
static int next_csv(struct source *s, struct record *rec)
{
	if (!s->header && !s->header_err[0]) {
		int rc = read_header(s, rec);
		if (rc == 0 || (rc < 0 && !s->rawlen))
			return rc;
		if (rc < 0) {
			snprintf(s->header_err, sizeof s->header_err, "%.190s", rec->err);
			rec->raw = s->raw;
			rec->rawlen = s->rawlen;
			rec->line = s->rec_line;
			return 1;
		}
	}
	int rc = csv_next_row(s, rec);
	if (rc <= 0)
		return rc;
	if (s->header_err[0])
		snprintf(rec->err, sizeof rec->err, "%s (line 1)", s->header_err);
	else if (s->rec_err[0])
		snprintf(rec->err, sizeof rec->err, "%s", s->rec_err);
	else
		rec->obj = row_to_json(s, rec->err, sizeof rec->err);
	return 1;
}

int source_next(struct source *s, struct record *rec)
{
	memset(rec, 0, sizeof *rec);
	return s->fmt == FORMAT_CSV ? next_csv(s, rec) : next_ndjson(s, rec);
}
