/* Fuzz target: the policy block alone (the input is its body, between
 * "policy" and "end"), and the quiet-hours arithmetic on what parsed. */
#include "fuzz.h"
#include "../../common/policy.h"
#include "../../common/rules.h"

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
	char *body = fuzz_cstr(data, size);
	if (!body)
		return 0;
	char *text = malloc(size + 16);
	if (!text)
		abort();
	memcpy(text, "policy\n", 7);
	memcpy(text + 7, body, size);
	memcpy(text + 7 + size, "\nend\n", 6);
	struct rule_stmt st = {"policy", text, 1};
	struct rules r = {.file = "<fuzz>", .timezone = "Asia/Shanghai", .stmts = &st, .nstmts = 1};
	struct policy *p = policy_parse(&r);
	/* a policy with errors is never used (the tools exit 2) */
	for (int64_t t = 1795000000; !p->errors && t < 1795000000 + 86400; t += 3600) {
		int64_t end = policy_quiet_end(p, t);
		if (end < t || end > t + 86400)
			abort();
	}
	policy_free(p);
	free(body);
	free(text);
	return 0;
}
