/* The wecom: transport: WeCom's server API (a token cache shared by every
 * run, back-off on rate limits), private touches batched into
 * add_msg_template tasks, each attempt recorded before the call and looked
 * up when its answer is lost, so that no task is ever created twice.
 *
 * Configuration, from the environment (the secret is never stored,
 * printed or passed on):
 *   SMR_WECOM_CORPID, SMR_WECOM_SECRET or SMR_WECOM_SECRET_FILE
 *   SMR_WECOM_API          base URL (default https://qyapi.weixin.qq.com)
 *   SMR_WECOM_TOKEN_FILE   token cache (default DB.wecom-token), mode 0600
 *   SMR_WECOM_LIMIT        month (default), 7/week or 1/day
 *   SMR_WECOM_CONFIRM      seconds staff have to send a task (86400)
 *   SMR_WECOM_TIMEOUT_MS, SMR_WECOM_TRIES, SMR_WECOM_BACKOFF_SCALE,
 *   SMR_WECOM_CALLS_PER_MIN, SMR_WECOM_BATCH (customers per task, 10000)
 *   SMR_WECOM_AGENTID      the app that reminds staff (channel staff)
 *
 * Channels: private (add_msg_template tasks), moments (one
 * add_moment_task job per sender and text, posted to that staff member's
 * customers) and staff (one message/send digest per staff member, listing
 * the tasks they send by hand). */
#ifndef SMR_WECOM_H
#define SMR_WECOM_H

#include <jansson.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

/* wecom_call's answers besides WeCom's errcode. */
#define WECOM_LOST (-100000)   /* sent, no answer: it may have been done */
#define WECOM_DOWN (-100001)   /* not sent: nothing was done */

struct wecom;

/* SPEC is what follows "wecom:" (empty, or reserved). DBPATH names the
 * default token cache. NOW is the run's --now, for the touch states. */
struct wecom *wecom_open(const char *spec, sqlite3 *db, const char *dbpath, int64_t now, char *err, size_t errlen);
void wecom_close(struct wecom *w);

/* POST BODY to cgi-bin/externalcontact/API with a valid token: refreshes
 * the token once on 40001/40014/42001, backs off on 45009/45033/-1.
 * Returns 0 with *ANSWER set (release it), WeCom's errcode (REASON says),
 * WECOM_LOST or WECOM_DOWN. */
long wecom_call(struct wecom *w, const char *api, json_t *body, json_t **answer, char *reason, size_t rlen);

/* GET cgi-bin/externalcontact/API?KEY=VALUE, otherwise as wecom_call. */
long wecom_get(struct wecom *w, const char *api, const char *key, const char *value, json_t **answer, char *reason,
               size_t rlen);

/* Whether the JSON array LIST holds the string S. */
int wecom_in_list(json_t *list, const char *s);

/* The channel of touches staff send by hand, reminded through message/send. */
#define WECOM_STAFF_CHANNEL "staff"
/* WeCom's limit on one app text message, in bytes; and the messages a
 * staff member receives in a minute (beyond it WeCom drops them). */
#define WECOM_DIGEST_BYTES 2048
#define WECOM_DIGEST_PER_MIN 30

/* Page through API's array LIST (cursor / next_cursor), calling ROW for
 * each element until it returns nonzero. BODY is consumed. 0 or the
 * error of the call that failed. */
typedef int wecom_row_fn(json_t *row, void *arg);
long wecom_pages(struct wecom *w, const char *api, json_t *body, const char *list, wecom_row_fn *row, void *arg);

/* Run-wide bookkeeping: API calls made, tokens fetched. */
struct wecom_stats { long calls, tokens, tasks; };
const struct wecom_stats *wecom_stats(const struct wecom *w);

/* How many claimed touches are held before their tasks are created, and
 * for how long at most (seconds), well inside the sender's stale-claim
 * limit (SENDER_CLAIM_STALE). */
#define WECOM_HELD_MAX 10000
#define WECOM_HOLD 300

/* The per-touch statements, for the plan tests (sender_hot_sql). */
extern const char wecom_limit_sql[], wecom_link_sql[], wecom_outcome_sql[];

/* The run that claims the touches (wecom_task.claimed_by; a touch is
 * linked to an attempt only while this run still holds its claim). */
void wecom_claimer(struct wecom *w, const char *me);

/* Inside the claim transaction of touch ID at NOW: choose its sender
 * (STAFF if active, else the most recent active relationship; written back
 * to STAFF) and its external_userid (TO), and check the platform's
 * per-customer limit. NULL: it may go; else the result to record
 * ("suppressed", "deferred" to *NOT_BEFORE, the next period, or "failed")
 * with REASON. */
const char *wecom_check(struct wecom *w, int64_t now, int64_t id, int64_t pid, const char *channel, char *staff,
                        size_t slen, char *to, size_t tolen, char *reason, size_t rlen, int64_t *not_before);

/* Hold the claimed touch ID on CHANNEL (just checked: STAFF, TO) with its
 * rendered TEXT until wecom_flush; TAG comes back in the report.
 * WINDOW_END bounds how long staff may take; NAME (the customer's
 * nickname, or "") labels the touch in a staff digest. */
void wecom_queue(struct wecom *w, int64_t id, const char *channel, const char *staff, const char *to,
                 const char *name, const char *text, int64_t window_end, void *tag);

/* Whether the held touches should be flushed now (WECOM_HELD_MAX held, or
 * the oldest held WECOM_HOLD seconds). */
int wecom_due(const struct wecom *w);

/* Create the held touches' tasks (one per sender and text, at most
 * SMR_WECOM_BATCH customers each), each attempt committed before its
 * call and its outcomes after it, then report every touch's outcome
 * (RESULT NULL: its claim was taken over by another run, nothing done). */
typedef void wecom_report_fn(void *ctx, void *tag, const char *result, const char *reason, int64_t not_before);
void wecom_flush(struct wecom *w, int64_t now, wecom_report_fn *report, void *ctx);

/* Inside a transaction: RELEASE each held touch not yet attempted (the
 * run is ending early). */
void wecom_release(struct wecom *w, void (*release)(void *ctx, int64_t id), void *ctx);

/* Inside a transaction: touch ID was claimed by a sender that died. If
 * its attempt may have created a task, look the task up; otherwise queue
 * it again. */
void wecom_recover_touch(struct wecom *w, int64_t now, int64_t id);

#endif
