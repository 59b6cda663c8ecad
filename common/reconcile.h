/* smr-send --reconcile: learn what became of the WeCom tasks smr created.
 * For each open task: get_groupmsg_task (did the staff member send it?),
 * then get_groupmsg_send_result (did each customer get it?), both paged.
 * A touch becomes delivered, not_friend or over_platform_limit; a task
 * still unsent is cancelled when every person it was for has exited
 * (cancelled) or its deadline has passed (unconfirmed), and is otherwise
 * reminded, at most once per SMR_WECOM_REMIND_EVERY (8 h; WeCom allows
 * three a day). A moments job (add_moment_task) is asked for its result
 * (get_moment_task_result), then for the staff member's publish status
 * (get_moment_task): published, failed, or stopped (cancel_moment_task)
 * as cancelled or unconfirmed. Each task is settled in its own write transaction, so
 * reconcilers and senders running at once never act on a task twice; its
 * records go to OUT only once that transaction has committed. */
#ifndef SMR_RECONCILE_H
#define SMR_RECONCILE_H

#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>

#include "wecom.h"

struct reconcile_stats {
	long tasks, delivered, not_friend, over_limit, unconfirmed, cancelled, reminded, errors, published, failed;
};

void reconcile_run(struct wecom *w, sqlite3 *db, int64_t now, FILE *out, struct reconcile_stats *st);

#endif
