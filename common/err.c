#include "err.h"

/* The asserts state invariants whose breach would corrupt data silently
 * (SQLite's style); they stay in every build. */
#ifdef NDEBUG
#error "smr keeps its asserts: build without -DNDEBUG"
#endif

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *smr_progname = "smr";

static void vreport_errno(const char *file, long line, int err, const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: ", smr_progname);
	if (file && line > 0)
		fprintf(stderr, "%s:%ld: ", file, line);
	else if (file)
		fprintf(stderr, "%s: ", file);
	vfprintf(stderr, fmt, ap);
	if (err)
		fprintf(stderr, ": %s", strerror(err));
	fputc('\n', stderr);
}

static void vreport(const char *file, long line, const char *fmt, va_list ap)
{
	vreport_errno(file, line, 0, fmt, ap);
}

void smr_warn(const char *file, long line, const char *fmt, ...)
{
	int err = errno;
	va_list ap;
	va_start(ap, fmt);
	vreport_errno(file, line, err, fmt, ap);
	va_end(ap);
}

void smr_die_errno(int status, const char *fmt, ...)
{
	int err = errno;
	va_list ap;
	va_start(ap, fmt);
	vreport_errno(NULL, 0, err, fmt, ap);
	va_end(ap);
	exit(status);
}

void flush_or_die(FILE *f, const char *name)
{
	if (fflush(f) != 0 || ferror(f))
		smr_die_errno(SMR_FATAL, "%s", name);
}

void smr_warnx(const char *file, long line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport(file, line, fmt, ap);
	va_end(ap);
}

void smr_die(int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport(NULL, 0, fmt, ap);
	va_end(ap);
	exit(status);
}

static void *checked(void *p)
{
	if (!p)
		smr_die(SMR_FATAL, "out of memory");
	return p;
}

void *xmalloc(size_t n) { return checked(malloc(n ? n : 1)); }
void *xcalloc(size_t n, size_t size) { return checked(calloc(n ? n : 1, size ? size : 1)); }
void *xrealloc(void *p, size_t n) { return checked(realloc(p, n ? n : 1)); }
char *xstrdup(const char *s) { return checked(strdup(s)); }
char *xstrndup(const char *s, size_t n) { return checked(strndup(s, n)); }

void *xgrow(void *p, size_t *cap, size_t need, size_t size)
{
	assert(size > 0 && (p != NULL || *cap == 0)); /* a capacity without an array is a stale one */
	if (need <= *cap)
		return p;
	size_t n = *cap ? *cap : 16;
	while (n < need) {
		if (n > SIZE_MAX / 2)
			smr_die(SMR_FATAL, "out of memory");
		n *= 2;
	}
	if (size && n > SIZE_MAX / size)
		smr_die(SMR_FATAL, "out of memory");
	p = xrealloc(p, n * size);
	*cap = n;
	assert(*cap >= need); /* callers write element need - 1 next */
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap, ap2;
	va_start(ap, fmt);
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		smr_die(SMR_FATAL, "formatting failed");
	char *s = xmalloc((size_t)n + 1);
	vsnprintf(s, (size_t)n + 1, fmt, ap2);
	va_end(ap2);
	return s;
}
