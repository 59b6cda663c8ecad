/* Fuzz target: a whole rules file through every parser that reads it and
 * the checks of `smr-tag --check` (identity, timezone, tag, ladder, segment
 * with each condition compiled against the facts view, stage, tier, sop,
 * content with its template rendered, policy). The custom mutator works on
 * lines as well as bytes: it deletes, duplicates, swaps and splices whole
 * statements, and puts dictionary keywords at the start of a line. */
#include "fuzz.h"
#include "../../common/db.h"
#include "../../common/facts.h"
#include "../../common/layers.h"
#include "../../common/policy.h"
#include "../../common/regex.h"
#include "../../common/render.h"
#include "../../common/rules.h"
#include "../../common/sop.h"
#include "../../common/tagrules.h"
#include "../../common/tstamp.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);
size_t LLVMFuzzerCustomCrossOver(const uint8_t *d1, size_t s1, const uint8_t *d2, size_t s2, uint8_t *out,
                                 size_t max_out, unsigned int seed);

static json_t *vars;
static sqlite3 *db; /* with the facts view, for every input */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_setup();
	db = db_open(":memory:");
	facts_open(db, 1795000000);
	vars = json_pack("{s:s, s:s, s:i, s:s}", "nickname", "小王", "item", "SKU-A", "amount", 199, "empty", "");
	return 0;
}

static void render_contents(const struct sops *s)
{
	char err[256];
	for (size_t i = 0; i < s->ncontents; i++)
		free(render(s->contents[i].text, vars, err, sizeof err));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int load_errors;
	struct rules *r = rules_load_all(fuzz_file(data, size, ".rules"), 1, &load_errors);
	if (!r)
		abort();
	struct tagrules *tr = tagrules_parse(r);
	tagrules_compile(tr, db);
	struct sops *s = sops_parse(r);
	render_contents(s);
	struct policy *pol = policy_parse(r);
	policy_quiet_end(pol, 1795000000);
	struct layers *ly = layers_parse(r);
	free(layers_stage_sql(ly));
	free(layers_tier_sql(ly));
	layers_free(ly);
	policy_free(pol);
	sops_free(s);
	tagrules_free(tr);
	rules_free(r);
	regex_cache_free();
	char err[256];
	if (tstamp_tz_set("Asia/Shanghai", err, sizeof err) != 0) /* a timezone line changed it */
		abort();
	return 0;
}

/* Line-level mutation. */

static uint32_t next_rand(uint32_t *state)
{
	*state = *state * 1103515245u + 12345u;
	return *state >> 8;
}

struct lines {
	const uint8_t *p[512];
	size_t n[512];
	size_t count;
};

/* Split into lines, each keeping its newline. */
static void split_lines(const uint8_t *d, size_t size, struct lines *l)
{
	l->count = 0;
	size_t start = 0;
	for (size_t i = 0; i < size && l->count < 512; i++) {
		if (d[i] == '\n' || i + 1 == size) {
			l->p[l->count] = d + start;
			l->n[l->count++] = i + 1 - start;
			start = i + 1;
		}
	}
}

static const char *const keywords[] = {
	"tag ", "ladder ", "segment ", "content ", "tier ", "stage ", "rfm ", "sop ", "policy\n", "end\n",
	"identity ", "timezone ", "trigger ", "exit ", "on_leave ", "window ", "staff ", "priority ",
	"step ", "quiet ", "cap ", "dedup ", "dnd tag ", "fatigue ", " when ", " and ", " or ", "not ",
	"count('order','7d')", "amount('order','30d')", "days_since('order')", "tagged('vip')",
	"said('.*')", "attr('city')", "{{nickname|亲}}", "{{item}}", "\"", "#", "max ", "hash",
};

static size_t join(struct lines *l, const size_t *order, size_t n, uint8_t *out, size_t max)
{
	size_t len = 0;
	for (size_t i = 0; i < n; i++) {
		size_t k = order[i];
		if (len + l->n[k] > max)
			break;
		memcpy(out + len, l->p[k], l->n[k]);
		len += l->n[k];
	}
	return len;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
	uint32_t rs = seed;
	if (size == 0 || next_rand(&rs) % 3 == 0)
		return LLVMFuzzerMutate(data, size, max_size);
	static uint8_t copy[1 << 16];
	if (size > sizeof copy)
		return LLVMFuzzerMutate(data, size, max_size);
	memcpy(copy, data, size);
	struct lines l;
	split_lines(copy, size, &l);
	size_t order[513], n = l.count;
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	size_t a = next_rand(&rs) % n, b = next_rand(&rs) % n;
	switch (next_rand(&rs) % 4) {
	case 0: /* delete a line */
		memmove(order + a, order + a + 1, (n - a - 1) * sizeof *order);
		n--;
		break;
	case 1: /* duplicate a line after another */
		memmove(order + b + 1, order + b, (n - b) * sizeof *order);
		order[b] = a;
		n++;
		break;
	case 2: { /* swap two lines */
		size_t t = order[a];
		order[a] = order[b];
		order[b] = t;
		break;
	}
	default: { /* a keyword at the start of a line */
		const char *kw = keywords[next_rand(&rs) % (sizeof keywords / sizeof *keywords)];
		size_t kn = strlen(kw), len = join(&l, order, a, data, max_size);
		if (len + kn > max_size)
			return len;
		memcpy(data + len, kw, kn);
		len += kn;
		return len + join(&l, order + a, n - a, data + len, max_size - len);
	}
	}
	return join(&l, order, n, data, max_size);
}

/* Splice: the first lines of one input, then the last lines of the other,
 * so statements move between files whole. */
size_t LLVMFuzzerCustomCrossOver(const uint8_t *d1, size_t s1, const uint8_t *d2, size_t s2, uint8_t *out,
                                 size_t max_out, unsigned int seed)
{
	uint32_t rs = seed;
	static struct lines l1, l2;
	split_lines(d1, s1, &l1);
	split_lines(d2, s2, &l2);
	size_t len = 0;
	size_t cut1 = l1.count ? next_rand(&rs) % (l1.count + 1) : 0;
	size_t cut2 = l2.count ? next_rand(&rs) % (l2.count + 1) : 0;
	for (size_t i = 0; i < cut1 && len + l1.n[i] <= max_out; i++) {
		memcpy(out + len, l1.p[i], l1.n[i]);
		len += l1.n[i];
	}
	for (size_t i = cut2; i < l2.count && len + l2.n[i] <= max_out; i++) {
		memcpy(out + len, l2.p[i], l2.n[i]);
		len += l2.n[i];
	}
	return len;
}
