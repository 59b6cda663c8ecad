#include "idhash.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *idhash_key(void)
{
	const char *k = getenv("SMR_HASH_KEY");
	return k && strlen(k) >= IDHASH_KEY_MIN ? k : NULL;
}

int idhash(const char *key, const char *value, char *out, size_t outlen)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (outlen < IDHASH_LEN + 1 ||
	    !HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)value, strlen(value), md, &mdlen) ||
	    mdlen != 32)
		return -1;
	memcpy(out, "h:", 2);
	for (unsigned int i = 0; i < mdlen; i++)
		snprintf(out + 2 + 2 * i, 3, "%02x", md[i]);
	return 0;
}
