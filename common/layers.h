/* Lifecycle stages and value tiers (smr-segment --stages, --tiers): the
 * `stage` and `tier` statements of the rules file, each layer turned into
 * one SQL CASE expression over the facts view. */
#ifndef SMR_LAYERS_H
#define SMR_LAYERS_H

#include <stdint.h>
#include <stddef.h>

#include "rules.h"

#define LAYER_NAME_MAX 64

enum { STAGE_NEW, STAGE_ACTIVE, STAGE_SILENT, STAGE_CHURNED, STAGE_PAYING, NSTAGES };

/* In display order: new, active, silent, churned, paying. */
extern const char *const stage_names[NSTAGES + 1];

struct tier {
	char name[LAYER_NAME_MAX];
	int64_t min_fen;        /* net spend at least this */
	int line;
};

struct layers {
	int stage_days[NSTAGES];  /* thresholds in days; churned unused */
	int stage_line[NSTAGES];  /* where each was set, 0 for the default */
	struct tier *tiers;       /* by threshold, lowest first */
	size_t ntiers;
	int errors;               /* reported while parsing */
};

/* Parse the stage and tier statements of R, reporting errors at
 * file:line:col and counting them in ->errors. */
struct layers *layers_parse(const struct rules *r);
void layers_free(struct layers *ly);

/* CASE expressions over the facts view (fresh strings): the stage name of
 * every person; the tier name, NULL below the lowest tier. */
char *layers_stage_sql(const struct layers *ly);
char *layers_tier_sql(const struct layers *ly);

int layers_stage_index(const char *name);
const struct tier *layers_tier_find(const struct layers *ly, const char *name);

#endif
