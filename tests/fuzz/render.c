/* Fuzz target: a content template rendered with variables. The input is
 * the template, then optionally a NUL byte and a JSON object of variables;
 * without one, a fixed set (nickname, item, amount, an empty value). */
#include "fuzz.h"
#include "../../common/render.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static json_t *fixed;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_setup();
	fixed = json_pack("{s:s, s:s, s:i, s:f, s:s, s:n}", "nickname", "小王", "item", "SKU-A", "amount", 199,
	                  "ratio", 0.5, "empty", "", "nothing");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	size_t tlen = nul ? (size_t)(nul - data) : size;
	char *tmpl = fuzz_cstr(data, tlen);
	json_t *vars = fixed;
	if (nul) {
		vars = json_loadb((const char *)nul + 1, size - tlen - 1, 0, NULL);
		if (!vars)
			vars = json_incref(fixed);
	}
	char err[256];
	char *out = render(tmpl, vars, err, sizeof err);
	free(out);
	free(tmpl);
	if (vars != fixed)
		json_decref(vars);
	return 0;
}
