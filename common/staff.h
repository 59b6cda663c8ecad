/* Staff relationships: which staff members a customer is a WeCom friend
 * of (the staff_link view over friend_add / friend_delete events that
 * carry `staff`), and which one sends a private touch. */
#ifndef SMR_STAFF_H
#define SMR_STAFF_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

struct staff;

/* The per-touch statements, for the plan tests (sender_hot_sql). */
extern const char staff_pick_sql[], staff_extuid_sql[];

struct staff *staff_open(sqlite3 *db);
void staff_close(struct staff *s);

/* The sender of a private touch to PID at NOW: PREFER if that relationship
 * is active, else the most recent active relationship. Also the
 * person's external_userid (the most recently seen). Returns 1 with both
 * set, else 0 with REASON saying why the touch cannot go. */
int staff_pick(struct staff *s, int64_t pid, int64_t now, const char *prefer, char *staff, size_t slen,
               char *extuid, size_t elen, char *reason, size_t rlen);

#endif
