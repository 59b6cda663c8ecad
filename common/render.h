/* Content templates: {{variable}} and {{variable|fallback}}. */
#ifndef SMR_RENDER_H
#define SMR_RENDER_H

#include <jansson.h>
#include <stddef.h>

/* The longest value a variable may have, in bytes: a longer one (an
 * attribute ingested from a hostile or broken source) fails the touch. */
#define RENDER_VAR_MAX 1024

/* Render TMPL with VARS (strings and numbers; an empty string counts as
 * missing). Returns the text (free it), or NULL with the reason in err
 * when a variable has neither a value nor a fallback, is longer than
 * RENDER_VAR_MAX, or a {{ is not closed: never a literal {{nickname}}. */
char *render(const char *tmpl, json_t *vars, char *err, size_t errlen);

#endif
