/* Diagnostics, exit statuses and checked allocation shared by every tool. */
#ifndef SMR_ERR_H
#define SMR_ERR_H

#include <stddef.h>
#include <stdio.h>

enum smr_exit {
	SMR_OK = 0,       /* all done */
	SMR_PARTIAL = 1,  /* done, some records rejected or deliveries failed */
	SMR_USAGE = 2,    /* usage or rules error, nothing done */
	SMR_FATAL = 3     /* database, I/O or environment failure */
};

extern const char *smr_progname;

/* "prog: file:line: reason" (line 0 omits it, file NULL omits both). */
void smr_warnx(const char *file, long line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Report and exit with status. */
_Noreturn void smr_die(int status, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The same, with ": strerror(errno)" appended, as err(3) and warn(3) do;
 * errno is read before anything else can change it. */
void smr_warn(const char *file, long line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
_Noreturn void smr_die_errno(int status, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Flush F (NAME in the message); a failure is fatal (exit 3). */
void flush_or_die(FILE *f, const char *name);

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Make room for NEED elements of SIZE bytes in the array P whose capacity
 * is *CAP (doubling, from 16): returns the array, perhaps moved. Overflow
 * of the size is fatal, as git's ALLOC_GROW and mandoc_reallocarray are. */
void *xgrow(void *p, size_t *cap, size_t need, size_t size);
/* printf into a fresh heap string. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
