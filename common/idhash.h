/* Keyed hashes of identifier values (identity KIND hash in the rules):
 * "h:" and the hex HMAC-SHA256 of the normalised value under the key in
 * $SMR_HASH_KEY, so that phone numbers need not be stored in clear. */
#ifndef SMR_IDHASH_H
#define SMR_IDHASH_H

#include <stddef.h>

#define IDHASH_LEN (2 + 64)    /* "h:" + 64 hex digits */
#define IDHASH_KEY_MIN 16

/* The key from the environment, or NULL when unset or shorter than
 * IDHASH_KEY_MIN bytes. */
const char *idhash_key(void);
/* OUT (at least IDHASH_LEN + 1 bytes) = "h:" + hex HMAC-SHA256(key, value). */
int idhash(const char *key, const char *value, char *out, size_t outlen);

#endif
