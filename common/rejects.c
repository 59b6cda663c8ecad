#include "rejects.h"
#include "err.h"

#include <assert.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct rejects {
	const char *path;
	FILE *out;
	FILE *spool;            /* this batch's rejects */
	long spooled;
};

struct rejects *rejects_open(const char *path)
{
	struct rejects *rj = xcalloc(1, sizeof *rj);
	rj->path = path;
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	rj->out = fd >= 0 ? fdopen(fd, "a") : NULL;
	if (!rj->out)
		smr_die_errno(SMR_FATAL, "%s", path);
	if (!(rj->spool = tmpfile()))
		smr_die_errno(SMR_FATAL, "temporary file");
	return rj;
}

static void put_line(FILE *f, const char *s, size_t len)
{
	if (fwrite(s, 1, len, f) != len || fputc('\n', f) == EOF)
		smr_die_errno(SMR_FATAL, "temporary file");
}

void rejects_add(struct rejects *rj, const char *header, size_t hlen, const char *rec, size_t len)
{
	if (header)
		put_line(rj->spool, header, hlen);
	put_line(rj->spool, rec, len);
	rj->spooled++;
}

long rejects_pending(const struct rejects *rj) { return rj->spooled; }

void rejects_flush(struct rejects *rj)
{
	char buf[65536];
	size_t n;
	if (!rj->spooled)
		return;
	if (fflush(rj->spool) != 0 || fseek(rj->spool, 0, SEEK_SET) != 0)
		smr_die_errno(SMR_FATAL, "temporary file");
	while ((n = fread(buf, 1, sizeof buf, rj->spool)) > 0)
		if (fwrite(buf, 1, n, rj->out) != n)
			smr_die_errno(SMR_FATAL, "%s", rj->path);
	if (ferror(rj->spool))
		smr_die_errno(SMR_FATAL, "temporary file");
	if (fflush(rj->out) != 0)
		smr_die_errno(SMR_FATAL, "%s", rj->path);
	if (fseek(rj->spool, 0, SEEK_SET) != 0 || ftruncate(fileno(rj->spool), 0) != 0)
		smr_die_errno(SMR_FATAL, "temporary file");
	rj->spooled = 0;
	assert(ftell(rj->spool) == 0);
}

int rejects_close(struct rejects *rj)
{
	if (!rj)
		return 0;
	rejects_flush(rj);
	fclose(rj->spool);
	int rc = fclose(rj->out);
	if (rc != 0)
		smr_warn(NULL, 0, "%s", rj->path);
	free(rj);
	return rc != 0 ? -1 : 0;
}
