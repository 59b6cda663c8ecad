/* Delivery transports for smr-send:
 *   file:PATH    append one NDJSON message per touch (created 0600); a
 *                write error (disk full) breaks the transport
 *   exec:CMD     run CMD (split on spaces, no shell) once per message, the
 *                message on its stdin, with secrets removed from its
 *                environment; exit 0 sent, 75 retry later, else failed
 *   webhook:URL  POST the message (libcurl) with an Idempotency-Key header;
 *                retries with exponential back-off and jitter on timeouts,
 *                429 and 5xx */
#ifndef SMR_TRANSPORT_H
#define SMR_TRANSPORT_H

#include <stddef.h>

/* TRANSPORT_BROKEN: nothing was delivered and the transport cannot go on
 * (a file: write error): the run stops and the touch is retried later. */
enum delivery { DELIVERED, RETRY_LATER, DELIVERY_FAILED, TRANSPORT_BROKEN };

struct transport;

struct transport *transport_open(const char *spec, char *err, size_t errlen);
void transport_close(struct transport *t);
/* Whether a resend is safe (the receiver dedups by idempotency key). */
int transport_idempotent(const struct transport *t);
/* Whether it delivers locally and at once (file:): touches may be
 * claimed several at a time. */
int transport_local(const struct transport *t);
/* Whether the environment variable NAME (as in "NAME=value") is a secret
 * kept from exec: commands: SMR_HASH_KEY, a name ending in _KEY, or one
 * holding SECRET, TOKEN, PASSWORD, PASSWD or CREDENTIAL (any case). */
int transport_secret_name(const char *name);
enum delivery transport_send(struct transport *t, const char *msg, const char *key, char *reason, size_t rlen);

#endif
