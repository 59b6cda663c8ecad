/* Writing NDJSON records: one compact object per line. */
#ifndef SMR_NDJSON_H
#define SMR_NDJSON_H

#include <jansson.h>
#include <stdio.h>

/* Write O and a newline to OUT (JSON_COMPACT | FLAGS) and release O. A
 * write error is fatal (exit 3): a record stream must not lose lines. */
void ndjson_put(FILE *out, json_t *o, size_t flags);

#endif
