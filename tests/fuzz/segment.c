/* Fuzz target: a segment expression (smr-segment EXPR) compiled against the
 * tags, segments and layers of examples/shop.rules, then prepared as SQL
 * over the facts view (the translation must always be valid SQL). */
#include "fuzz.h"
#include "../../common/db.h"
#include "../../common/facts.h"
#include "../../common/layers.h"
#include "../../common/rulebudget.h"
#include "../../common/rules.h"
#include "../../common/segment.h"
#include "../../common/tagrules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct rules *r;
static struct tagrules *tr;
static struct layers *ly;
static sqlite3 *db;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_setup();
	const char *path = getenv("SMR_FUZZ_RULES");
	r = rules_load(path ? path : "examples/shop.rules", 1);
	if (!r) {
		fprintf(stdout, "fuzz-segment: cannot load the rules (set SMR_FUZZ_RULES or run from the repository)\n");
		abort();
	}
	tr = tagrules_parse(r);
	ly = layers_parse(r);
	db = db_open(":memory:");
	facts_open(db, 1795000000);
	if (tagrules_compile(tr, db) || tr->errors || ly->errors)
		abort();
	rule_budget_open(db, tr, 1000000); /* the functions segment SQL calls */
	return 0; /* r, tr, ly and db live as long as the process */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *expr = fuzz_cstr(data, size);
	if (!expr)
		return 0;
	struct segment_expr se = {0};
	char err[256];
	int col = 0;
	if (segment_compile(expr, tr, ly, &se, err, sizeof err, &col) == 0) {
		char *stage = layers_stage_sql(ly), *tier = layers_tier_sql(ly);
		char *sql = sqlite3_mprintf("SELECT facts.pid, %s, %s FROM facts WHERE %s", stage, tier, se.sql);
		sqlite3_stmt *st = NULL;
		if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
			fprintf(stdout, "fuzz-segment: \"%s\" gave SQL that does not prepare: %s\n%s\n", expr,
			        sqlite3_errmsg(db), sql);
			fflush(stdout);
			abort();
		}
		sqlite3_finalize(st);
		sqlite3_free(sql);
		free(stage);
		free(tier);
	} else if (col < 0) {
		abort();
	}
	segment_expr_free(&se);
	free(expr);
	return 0;
}
