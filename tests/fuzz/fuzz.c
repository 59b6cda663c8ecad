#include "fuzz.h"
#include "../../common/err.h"
#include "../../common/tstamp.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *fuzz_cstr(const uint8_t *data, size_t size)
{
	if (memchr(data, '\0', size))
		return NULL;
	char *s = xmalloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

const char *fuzz_file(const uint8_t *data, size_t size, const char *suffix)
{
	static char path[256];
	const char *dir = getenv("TMPDIR");
	snprintf(path, sizeof path, "%s/smr-fuzz-%ld%s", dir ? dir : "/tmp", (long)getpid(), suffix);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size) || close(fd) != 0) {
		perror(path);
		abort();
	}
	return path;
}

static void remove_scratch(void)
{
	const char *dir = getenv("TMPDIR");
	const char *sfx[] = {"", ".rules", ".csv", ".ndjson"};
	for (size_t i = 0; i < sizeof sfx / sizeof *sfx; i++) {
		char path[256];
		snprintf(path, sizeof path, "%s/smr-fuzz-%ld%s", dir ? dir : "/tmp", (long)getpid(), sfx[i]);
		unlink(path);
	}
}

void fuzz_setup(void)
{
	char err[256];
	setenv("SMR_HASH_KEY", "fuzz-key-0123456789abcdef0123456789", 1);
	if (tstamp_tz_set("Asia/Shanghai", err, sizeof err) != 0) {
		fprintf(stderr, "fuzz: %s\n", err);
		abort();
	}
	atexit(remove_scratch);
	/* smr's messages go to the stderr stream; libFuzzer kept its own copy of
	 * that stream at start-up and the sanitizers write to fd 2, so pointing
	 * the stream elsewhere hides only smr's messages. */
	if (!getenv("SMR_FUZZ_VERBOSE")) {
		FILE *null = fopen("/dev/null", "w");
		if (!null)
			abort();
		stderr = null;
	}
}
