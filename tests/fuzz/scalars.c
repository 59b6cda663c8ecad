/* Fuzz target: the scalar parsers of outside text: times, durations,
 * money in yuan, phone numbers, UTF-8 validation. Parsed values are
 * formatted back and must parse to the same value. */
#include "fuzz.h"
#include "../../common/event.h"
#include "../../common/money.h"
#include "../../common/tstamp.h"
#include "../../common/utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_setup();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	utf8_valid((const char *)data, size);
	char *s = fuzz_cstr(data, size);
	if (!s)
		return 0;
	char err[256], buf[64];
	int64_t t, t2, secs, fen, fen2;
	if (tstamp_parse(s, &t, err, sizeof err) == 0) {
		tstamp_format(t, buf, sizeof buf);
		if (tstamp_parse(buf, &t2, err, sizeof err) != 0 || t2 != t) {
			printf("fuzz-scalars: time \"%s\" formats as \"%s\", which does not parse back\n", s, buf);
			abort();
		}
	}
	if (tstamp_duration(s, &secs) == 0 && secs < 0)
		abort();
	if (money_parse(s, &fen) == 0) {
		snprintf(buf, sizeof buf, "%s%lld.%02lld", fen < 0 ? "-" : "", llabs((long long)fen) / 100,
		         llabs((long long)fen) % 100);
		if (money_parse(buf, &fen2) != 0 || fen2 != fen) {
			printf("fuzz-scalars: money \"%s\" is %lld fen, but \"%s\" does not parse back\n", s, (long long)fen, buf);
			abort();
		}
	}
	char phone[72];
	event_phone_normalise(s, phone, sizeof phone);
	free(s);
	return 0;
}
