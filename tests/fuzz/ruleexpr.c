/* Fuzz target: the rule-expression rewriter (a tag or segment condition),
 * then SQLite's own parse of the rewritten text against the facts view,
 * as `smr-tag --check` does; every inserted offset must map back inside
 * the original expression. */
#include "fuzz.h"
#include "../../common/db.h"
#include "../../common/facts.h"
#include "../../common/regex.h"
#include "../../common/ruleexpr.h"
#include "../../common/tagrules.h"
#include "../../common/utf8.h"

#include <stdlib.h>
#include <string.h>

static sqlite3 *db;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_setup();
	db = db_open(":memory:");
	facts_open(db, 1795000000); /* lives as long as the process */
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *expr = fuzz_cstr(data, size);
	if (!expr)
		return 0;
	struct ruleexpr re;
	char err[256];
	size_t off = 0;
	if (ruleexpr_rewrite(expr, &re, err, sizeof err, &off) == 0) {
		size_t n = strlen(re.sql);
		for (size_t i = 0; i <= n; i++)
			if (ruleexpr_origin(&re, i) > size)
				abort();
		utf8_column(expr, size);
		char *sql = sqlite3_mprintf("SELECT facts.pid FROM facts WHERE %s", re.sql);
		sqlite3_stmt *st = NULL;
		tagrules_sandbox(db, 1);
		sqlite3_prepare_v2(db, sql, -1, &st, NULL);
		tagrules_sandbox(db, 0);
		sqlite3_finalize(st);
		sqlite3_free(sql);
		ruleexpr_free(&re);
	} else if (off > size) {
		abort();
	} else {
		utf8_column(expr, off);
	}
	free(expr);
	regex_cache_free();
	return 0;
}
