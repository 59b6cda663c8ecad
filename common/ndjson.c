#include "ndjson.h"
#include "err.h"

#include <errno.h>
#include <string.h>

void ndjson_put(FILE *out, json_t *o, size_t flags)
{
	if (!o)
		smr_die(SMR_FATAL, "out of memory");
	errno = 0;
	if (json_dumpf(o, out, JSON_COMPACT | flags) != 0 || fputc('\n', out) == EOF)
		smr_die(SMR_FATAL, "stdout: %s", strerror(errno ? errno : EIO));
	json_decref(o);
}
