/* Delivery transports for smr-send:
 *   file:PATH    append one NDJSON message per touch
 *   exec:CMD     run CMD (split on spaces, no shell) once per message, the
 *                message on its stdin; exit 0 sent, 75 retry later, else failed
 *   webhook:URL  POST the message (libcurl) with an Idempotency-Key header;
 *                retries with exponential back-off and jitter on timeouts,
 *                429 and 5xx */
#ifndef SMR_TRANSPORT_H
#define SMR_TRANSPORT_H

#include <stddef.h>

enum delivery { DELIVERED, RETRY_LATER, DELIVERY_FAILED };

struct transport;

struct transport *transport_open(const char *spec, char *err, size_t errlen);
void transport_close(struct transport *t);
/* Whether a resend is safe (the receiver dedups by idempotency key). */
int transport_idempotent(const struct transport *t);
enum delivery transport_send(struct transport *t, const char *msg, const char *key, char *reason, size_t rlen);

#endif
