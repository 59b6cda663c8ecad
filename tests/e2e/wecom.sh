#!/usr/bin/env bash
# The wecom: transport of smr-send and smr-send --reconcile, against the
# local stand-in server (tests/fixtures/wecom/server.py, 127.0.0.1, an
# ephemeral port): staff relationships choose the sender; batching; the
# token cache (0600, shared, one refresh and one retry when the token dies
# mid-run); back-off on 45009 with bounded calls; partial fail_list and
# 41048; a lost answer (looked up, one task), also with kill -9 and a
# re-run; staff who never confirm (reminded, then unconfirmed); status 3
# (over_platform_limit, caps freed); a person who exits while the task is
# pending (cancelled); two senders and two reconcilers at once (no task
# twice); the secret never in the database, output or token file.
. "$(dirname "$0")/../lib.sh"
. "$FIXTURES/tag/helpers.sh"
. "$FIXTURES/sop/helpers.sh"
. "$FIXTURES/wecom/helpers.sh"

cat >w.rules <<'EOF2'
timezone Asia/Shanghai
tag go when count('view', '30d') > 0
tag bought when orders > 0
sop hello
  trigger go
  exit bought
  window 3d
  step 0d 12:00 private hi
  step 1d 12:00 private hi2
end
content hi private "新品到了，来看看"
content hi2 private "{{nickname|亲}}，今天有优惠"
EOF2

# === sender choice, batching, the token cache, the secret =====================
start_server
{
	people 4 s1 1
	people 1 s2 5
	ev v6 view 2026-11-02T09:00:00+08:00 C6 ',"external_userid":"wmC6"'      # a contact of nobody
	ev v7 view 2026-11-02T09:00:00+08:00 C7                                    # no external_userid
	ev a7 friend_add 2026-11-01T10:00:00+08:00 C7 ',"staff":"s1"'
	# C8: friend of s1 and s2; deleted s2 later: only that pair ends
	ev a8 friend_add 2026-11-01T10:00:00+08:00 C8 ',"external_userid":"wmC8","staff":"s1"'
	ev b8 friend_add 2026-11-01T11:00:00+08:00 C8 ',"external_userid":"wmC8","staff":"s2"'
	ev d8 friend_delete 2026-11-02T08:00:00+08:00 C8 ',"staff":"s2"'
	ev v8 view 2026-11-02T09:00:00+08:00 C8
	# C9: deleted their only contact
	ev a9 friend_add 2026-11-01T10:00:00+08:00 C9 ',"external_userid":"wmC9","staff":"s2"'
	ev d9 friend_delete 2026-11-02T08:00:00+08:00 C9 ',"external_userid":"wmC9","staff":"s2"'
	ev v9 view 2026-11-02T09:00:00+08:00 C9
} >basic.ndjson
setup b.db basic.ndjson
wsnd --db b.db --rules w.rules --now $D0 --queued --transport wecom: --stats
xstatus "basic: exit 0" 0
eq "basic: friends get task_created, no relationship or no external_userid suppressed" \
	"C1 task_created;C2 task_created;C3 task_created;C4 task_created;C5 task_created;C6 suppressed;C7 suppressed;C8 task_created" \
	"$(res unionid result)"
eq "basic: C9 deleted their only contact: the enrollment ended, no touch" "exited no staff contact left|0" \
	"$(sq b.db "SELECT state || ' ' || exit_reason FROM enrollment x WHERE $WHO = 'C9'")|$(sq b.db "SELECT count(*) FROM touch x WHERE $WHO = 'C9'")"
eq "basic: the reasons" "C6 no active staff relationship (friend_add with staff, not since deleted);C7 no external_userid: the person is not a WeCom contact" \
	"$(python3 -c "
import json
for l in open('$T/xout'):
    o = json.loads(l)
    if o['result'] == 'suppressed': print(o['unionid'], o['reason'])" | sort | paste -sd';')"
eq "basic: one task per sender and text: s1 (C1-C4, C8), s2 (C5)" "s1 wmC1,wmC2,wmC3,wmC4,wmC8;s2 wmC5" \
	"$(srv "';'.join(sorted(t['sender'] + ' ' + ','.join(sorted(t['customers'])) for t in S['tasks']))")"
eq "basic: C8 deleted s2, so s1 sends; the touch names its sender and address" "s1 wmC8" \
	"$(sq b.db "SELECT staff || ' ' || wecom_to FROM touch x WHERE $WHO = 'C8'")"
eq "basic: two add_msg_template calls, one token" "2 1" "$(srv "calls('add_msg_template'), calls('gettoken')")" 
eq "basic: --stats counts API calls and tasks" "smr-send: wecom: 3 API calls, 1 tokens fetched, 2 tasks created" "$(grep wecom: "$T/xerr")"
eq "basic: the token cache is 0600" "600" "$(stat -c %a b.db.wecom-token)"
check "basic: the secret is in neither the database, the output nor the token cache" \
	test -z "$(grep -l test-secret b.db b.db-wal b.db.wecom-token "$T/xout" "$T/xerr" 2>/dev/null)"
eq "basic: the tasks recorded" "created s1;created s2" "$(sq b.db "SELECT group_concat(state || ' ' || staff, ';') FROM (SELECT * FROM wecom_task ORDER BY staff)")"
eq "basic: staff_link shows C8's two relationships, s2 ended" "s1 -;s2 $(ep 2026-11-02T08:00:00+08:00)" \
	"$(sq b.db "SELECT group_concat(staff || ' ' || coalesce(until, '-'), ';') FROM (SELECT * FROM staff_link WHERE pid = (SELECT pid FROM identity WHERE value = 'C8') ORDER BY staff)")"

# the token dies between runs: exactly one refresh and one retry
hook invalidate >/dev/null
due --db b.db --rules w.rules --now $D1
wsendin "$T/sout" --db b.db --rules w.rules --now $D1 --transport wecom:
xstatus "token: exit 0" 0
eq "token: day 1's personalised touches all created" "6" "$(res result | tr ';' '\n' | grep -c task_created)"
eq "token: one refresh (2 tokens in all), one retry (2 + 2 + 1 calls: the first call failed once)" "2 5" \
	"$(srv "S['tokens_issued'], calls('add_msg_template')")"
eq "token: texts rendered alike (every nickname defaults to 亲) share a task: one per sender" \
	"4" "$(srv "len(S['tasks'])")"

# a secret file; a wrong secret fails the run's touches, nothing is created
stop_server
start_server
setup f.db basic.ndjson
printf 'test-secret\n' >secret
SMR_WECOM_SECRET= SMR_WECOM_SECRET_FILE=$T/secret wsnd --db f.db --rules w.rules --now $D0 --queued --transport wecom:
eq "secret file: read from SMR_WECOM_SECRET_FILE" "6" "$(res result | tr ';' '\n' | grep -c task_created)"
setup g.db basic.ndjson
SMR_WECOM_SECRET=wrong wsnd --db g.db --rules w.rules --now $D0 --queued --transport wecom:
eq "wrong secret: deferred, no task (the 2 are f.db's), the secret not shown" "6 2 0" \
	"$(res result | tr ';' '\n' | grep -c deferred) $(srv "len(S['tasks'])") $(grep -c wrong "$T/xout" "$T/xerr" | awk -F: '{s+=$2} END {print s}')"
SMR_WECOM_CORPID= wsnd --db g.db --rules w.rules --now $D0 --queued --transport wecom:
xstatus "no corpid: usage error" 2

# === fail_list, 41048 ==========================================================
stop_server
start_server
people 3 s1 >fl.ndjson
setup fl.db fl.ndjson
hook fail '{"external_userid":["wmC2"]}' >/dev/null
wsnd --db fl.db --rules w.rules --now $D0 --queued --transport wecom:
xstatus "fail_list: exit 1 (a delivery failed)" 1
eq "fail_list: C2 failed, the rest task_created" "C1 task_created;C2 failed;C3 task_created" "$(res unionid result)"
check "fail_list: the reason says why" grep -q 'fail_list' "$T/xout"
hook fail '{"external_userid":["wmC1","wmC3"]}' >/dev/null
due --db fl.db --rules w.rules --now $D1
wsnd --db fl.db --rules w.rules --now $D1 --queued --transport wecom:
eq "41048: all failed" "C1 failed;C2 failed;C3 failed" "$(res unionid result)"
check "41048: named in the reason" grep -q 41048 "$T/xout"

# === 45009: back-off, bounded calls ===========================================
stop_server
start_server
people 2 s1 >rl.ndjson
setup rl.db rl.ndjson
hook inject '{"api":"add_msg_template","errcode":45009,"times":2}' >/dev/null
s0=$(date +%s%N)
wsnd --db rl.db --rules w.rules --now $D0 --queued --transport wecom:
ms=$((($(date +%s%N) - s0) / 1000000))
eq "45009 twice: created on the third call" "C1 task_created;C2 task_created|3" "$(res unionid result)|$(srv "calls('add_msg_template')")"
check "45009: waited for the minute block (scaled: 2 x 60 s x 0.01 x >= 0.75), ${ms} ms" test "$ms" -ge 900
hook inject '{"api":"add_msg_template","errcode":45009,"times":100}' >/dev/null
due --db rl.db --rules w.rules --now $D1
SMR_WECOM_TRIES=3 wsnd --db rl.db --rules w.rules --now $D1 --queued --transport wecom:
eq "45009 always: 3 calls (SMR_WECOM_TRIES), then deferred ten minutes" "C1 deferred $(($(ep $D1) + 600));C2 deferred $(($(ep $D1) + 600))|6" \
	"$(res unionid result not_before)|$(srv "calls('add_msg_template')")"
eq "45009 always: nothing created" "1" "$(srv "len(S['tasks'])")"

# === a lost answer: looked up, never created twice ==============================
stop_server
start_server
people 2 s1 >lost.ndjson
setup lost.db lost.ndjson
hook lose '{"api":"add_msg_template","hang":3}' >/dev/null
SMR_WECOM_TIMEOUT_MS=800 wsnd --db lost.db --rules w.rules --now $D0 --queued --transport wecom:
eq "lost answer: found by looking it up, task_created" "C1 task_created;C2 task_created" "$(res unionid result)"
eq "lost answer: one task; the lookup listed company tasks, checked the sender and a customer" "1 1 1 1" \
	"$(srv "len(S['tasks']), calls('get_groupmsg_list_v2'), calls('get_groupmsg_task'), calls('get_groupmsg_send_result')")"
eq "lost answer: the msgid recorded" "msg000001" "$(sq lost.db "SELECT msgid FROM wecom_task")"

# kill -9 while the answer is outstanding, then a re-run
stop_server
start_server
setup k.db lost.ndjson
hook lose '{"api":"add_msg_template","hang":30}' >/dev/null
"$SEND" --db k.db --rules w.rules --now $D0 --queued --transport wecom: >k.out 2>k.err &
kp=$!
for _ in $(seq 100); do
	[ "$(srv "len(S['tasks'])")" = 1 ] && break
	sleep 0.1
done
kill -9 $kp
wait $kp 2>/dev/null
eq "kill -9: the attempt was recorded before the call" "attempting 2" \
	"$(sq k.db "SELECT state || ' ' || (SELECT count(*) FROM touch WHERE wecom_task = k.id AND state = 'claimed') FROM wecom_task k")"
wsnd --db k.db --rules w.rules --now $D0 --queued --transport wecom:
xstatus "kill -9, re-run: exit 0" 0
eq "kill -9, re-run: the task was looked up, not created again" "1 1" "$(srv "len(S['tasks']), calls('add_msg_template')")"
eq "kill -9, re-run: both touches task_created with the task's msgid" "C1 0 task_created;C2 0 task_created|msg000001" \
	"$(states k.db)|$(sq k.db "SELECT msgid FROM wecom_task WHERE state = 'created'")"
wsnd --db k.db --rules w.rules --now $D0 --queued --transport wecom:
eq "kill -9, a third run: nothing more" "1" "$(srv "calls('add_msg_template')")"

# killed before any call: queued again and sent once
stop_server
start_server
setup k2.db lost.ndjson
sq k2.db "UPDATE touch SET state = 'claimed', claimed_by = 'localhost:999999999', claimed_at = 0" >/dev/null
wsnd --db k2.db --rules w.rules --now $D0 --queued --transport wecom:
eq "claimed by a dead sender, no attempt: sent once" "C1 0 task_created;C2 0 task_created|1" "$(states k2.db)|$(srv "len(S['tasks'])")"

# === staff never confirms: reminded, then unconfirmed =========================
stop_server
start_server
people 2 s1 >nc.ndjson
setup nc.db nc.ndjson
wsnd --db nc.db --rules w.rules --now $D0 --queued --transport wecom:
wsnd --db nc.db --rules w.rules --now 2026-11-02T13:00:00+08:00 --reconcile --transport wecom:
xstatus "never confirms, 1 h later: reconcile exit 0" 0
eq "never confirms, 1 h later: nothing settled, too early to remind" "|0" "$(cat "$T/xout")|$(srv "S['tasks'][0]['reminded']")"
wsnd --db nc.db --rules w.rules --now 2026-11-02T21:00:00+08:00 --reconcile --transport wecom:
eq "never confirms, 9 h later: reminded once" "|1" "$(cat "$T/xout")|$(srv "S['tasks'][0]['reminded']")"
wsnd --db nc.db --rules w.rules --now 2026-11-02T22:00:00+08:00 --reconcile --transport wecom:
eq "never confirms, an hour after the reminder: not reminded again" "1" "$(srv "S['tasks'][0]['reminded']")"
wsnd --db nc.db --rules w.rules --now 2026-11-03T12:00:00+08:00 --reconcile --transport wecom:
eq "never confirms, past the deadline: unconfirmed, the task cancelled" "C1 0 unconfirmed;C2 0 unconfirmed|True" \
	"$(states nc.db "step = 0")|$(srv "S['tasks'][0]['cancelled']")"
eq "never confirms: never counted as delivered" "0" "$(sq nc.db "SELECT count(*) FROM touch WHERE state IN ('delivered', 'sent')")"
eq "never confirms: the task is done" "done" "$(sq nc.db "SELECT state FROM wecom_task")"
"$SMR_BIN/smr-report" --db nc.db --rules w.rules --now 2026-11-20T00:00:00+08:00 sops >rep.out 2>rep.err
eq "never confirms: smr-report counts nothing sent" "0" \
	"$(python3 -c "import json; print(sum(json.loads(l).get('sent', 0) for l in open('rep.out')))")"

# === confirmed: delivered; status 3 over the limit, caps freed ===================
stop_server
start_server
cat >cap.rules <<'EOF2'
timezone Asia/Shanghai
tag go when count('view', '30d') > 0
sop a
  trigger go
  step 0d 12:00 private a1
end
sop b
  trigger go
  step 0d 13:00 private b1
end
content a1 private "A"
content b1 private "B"
policy
  cap private 1/day
end
EOF2
people 2 s1 >cap.ndjson
rm -f cap.db*
ingest "caps" cap.db cap.rules cap.ndjson
tag --db cap.db --rules cap.rules --now 2026-11-02T09:05:00+08:00
due --db cap.db --rules cap.rules --now $D0
hook limit '{"n":0}' >/dev/null
wsnd --db cap.db --rules cap.rules --now $D0 --queued --transport wecom:
eq "status 3: created (WeCom does not refuse at creation)" "C1 task_created;C2 task_created" "$(res unionid result)"
hook unfriend '{"userid":"s1","external_userid":"wmC2"}' >/dev/null
hook confirm '{"userid":"s1"}' >/dev/null
dbcopy cap.db capcopy.db
wsnd --db cap.db --rules cap.rules --now 2026-11-02T12:30:00+08:00 --reconcile --transport wecom:
eq "status 3: C1 over_platform_limit; C2 unfriended in between: not_friend" "C1 0 over_platform_limit;C2 0 not_friend" \
	"$(states cap.db)"
due --db cap.db --rules cap.rules --now 2026-11-02T13:00:00+08:00
cp "$T/sout" b.touches
wsendin b.touches --db cap.db --rules cap.rules --now 2026-11-02T13:00:00+08:00 --transport wecom:
eq "status 3: the cap places are freed: b goes (C2 is in fail_list now)" "C1 task_created;C2 failed" "$(res unionid result)"
due --db capcopy.db --rules cap.rules --now 2026-11-02T13:00:00+08:00
wsendin "$T/sout" --db capcopy.db --rules cap.rules --now 2026-11-02T13:00:00+08:00 --transport wecom:
eq "status 3: without the reconcile, the task_created touches hold their places" "C1 deferred;C2 deferred" "$(res unionid result)"
hook limit '{"n":null}' >/dev/null
hook confirm '{"userid":"s1"}' >/dev/null
wsnd --db cap.db --rules cap.rules --now 2026-11-02T13:30:00+08:00 --reconcile --transport wecom:
eq "confirmed: delivered" "delivered" "$(res result)"
"$SMR_BIN/smr-report" --db cap.db --rules cap.rules --now 2026-11-20T00:00:00+08:00 sops >rep.out 2>rep.err
eq "confirmed: smr-report counts the delivered touch only (a: none sent, both not reached; b: 1, C2's failed)" "a 0 2;b 1 0" \
	"$(python3 -c "
import json
for l in open('rep.out'):
    o = json.loads(l); print(o['sop'], o['sent'], o['not_sent'])" | paste -sd';')"
eq "confirmed: every task settled" "done done" "$(sq cap.db "SELECT group_concat(state, ' ') FROM wecom_task")"

# === the platform's monthly limit as a default policy ============================
stop_server
start_server
setup ml.db nc.ndjson
SMR_WECOM_LIMIT=1/day wsnd --db ml.db --rules w.rules --now $D0 --queued --transport wecom:
sq ml.db "UPDATE touch SET state = 'queued', due_at = due_at - 60, sent_at = NULL WHERE step = 0 AND pid = (SELECT pid FROM identity WHERE value = 'C2')" >/dev/null
sq ml.db "INSERT INTO touch(enrollment, pid, sop, step, due_at, channel, content, state, created_at) SELECT enrollment, pid, sop, 7, due_at, channel, content, 'queued', created_at FROM touch WHERE pid = (SELECT pid FROM identity WHERE value = 'C1') AND step = 0" >/dev/null
SMR_WECOM_LIMIT=1/day wsnd --db ml.db --rules w.rules --now 2026-11-02T12:10:00+08:00 --queued --transport wecom:
eq "limit 1/day: a second mass message to C1 waits for tomorrow" "C1 deferred $(ep 2026-11-03T00:00:00+08:00);C2 task_created -" \
	"$(res unionid result not_before)"
SMR_WECOM_LIMIT=2/fortnight wsnd --db ml.db --rules w.rules --now $D0 --queued --transport wecom:
xstatus "limit: a bad SMR_WECOM_LIMIT is a usage error" 2

# === a person exits while the task is pending: cancelled =========================
stop_server
start_server
{ people 1 s1 1; people 1 s2 2; } >ex.ndjson
setup ex.db ex.ndjson
wsnd --db ex.db --rules w.rules --now $D0 --queued --transport wecom:
ev o1 order 2026-11-02T14:00:00+08:00 C1 ',"amount":"9.90"' >ord.ndjson
ingest "exit" ex.db w.rules ord.ndjson
tag --db ex.db --rules w.rules --now 2026-11-02T14:05:00+08:00
due --db ex.db --rules w.rules --now 2026-11-02T14:05:00+08:00
wsnd --db ex.db --rules w.rules --now 2026-11-02T14:10:00+08:00 --reconcile --transport wecom:
eq "exit: C1's task cancelled at WeCom and the touch cancelled; C2's pending" "C1 0 cancelled;C2 0 task_created" "$(states ex.db)"
eq "exit: cancel_groupmsg_send once, on C1's task" "1 True False" \
	"$(srv "calls('cancel_groupmsg_send'), S['tasks'][0]['cancelled'], S['tasks'][1]['cancelled']")"

# === two senders and two reconcilers at once: no task twice ======================
stop_server
start_server
{ people 30 s1 1; people 30 s2 31; } >cc.ndjson
setup cc.db cc.ndjson
hook staff '{"userid":"s1","mode":"auto"}' >/dev/null
hook page '{"max":7}' >/dev/null
pids=
for i in 1 2; do
	"$SEND" --db cc.db --rules w.rules --now $D0 --queued --transport wecom: >cc$i.out 2>cc$i.err &
	pids="$pids $!"
	"$SEND" --db cc.db --rules w.rules --now 2026-11-02T12:30:00+08:00 --reconcile --transport wecom: >cr$i.out 2>cr$i.err &
	pids="$pids $!"
done
for p in $pids; do wait "$p"; done
no_sanitizer "concurrent runs" cc1.err cc2.err cr1.err cr2.err
eq "concurrent: every customer in exactly one task" "60 60" \
	"$(srv "sum(len(t['customers']) for t in S['tasks']), len(set(c for t in S['tasks'] for c in t['customers']))")"
eq "concurrent: every touch reported once across the senders" "60" "$(cat cc1.out cc2.out | grep -c task_created)"
wsnd --db cc.db --rules w.rules --now 2026-11-02T12:40:00+08:00 --reconcile --transport wecom:
eq "concurrent: then a reconcile (send results paged 7 at a time): s1's delivered, s2's pending; no task reminded twice" "30 30 0" \
	"$(sq cc.db "SELECT sum(state = 'delivered') || ' ' || sum(state = 'task_created') || ' ' || (SELECT count(*) FROM wecom_task WHERE reminded > 1) FROM touch")"
# 41063 (asked too early): nothing settled, no error
due --db cc.db --rules w.rules --now $D1
wsendin "$T/sout" --db cc.db --rules w.rules --now $D1 --transport wecom:
hook inject '{"api":"get_groupmsg_task","errcode":41063,"times":100}' >/dev/null
wsnd --db cc.db --rules w.rules --now 2026-11-03T12:10:00+08:00 --reconcile --transport wecom: --stats
xstatus "41063: reconcile exit 0" 0
eq "41063: nothing settled yet" "|30" "$(cat "$T/xout")|$(sq cc.db "SELECT count(*) FROM touch WHERE step = 1 AND state = 'task_created' AND staff = 's1'")"
hook inject '{"api":"get_groupmsg_task","errcode":0,"times":0}' >/dev/null
wsnd --db cc.db --rules w.rules --now 2026-11-03T12:20:00+08:00 --reconcile --transport wecom:
eq "41063 gone: settled" "30" "$(sq cc.db "SELECT count(*) FROM touch WHERE step = 1 AND state = 'delivered'")"

# === a reconcile whose commit fails prints nothing for that task ===============
# Two tasks (s1: C1 C2, s2: C3 C4), both sent by their staff at once. The
# reconcile settles s1's task and commits; while it waits on s2's send
# results, its file size limit is set to the WAL's size (SIGXFSZ ignored),
# so the commit of s2's task fails (disk full): exit 3, s1's records
# printed, s2's neither printed nor recorded; a re-run settles them.
start_server
{ people 2 s1 1; people 2 s2 3; } >cf.ndjson
setup cf.db cf.ndjson
hook staff '{"userid":"s1","mode":"auto"}' >/dev/null
hook staff '{"userid":"s2","mode":"auto"}' >/dev/null
wsnd --db cf.db --rules w.rules --now $D0 --queued --transport wecom:
eq "failed commit: setup, two tasks created" "2 4" "$(srv "len(S['tasks'])") $(sq cf.db "SELECT count(*) FROM touch WHERE state = 'task_created'")"
hook delay '{"api":"get_groupmsg_send_result","skip":1,"seconds":2}' >/dev/null
(trap '' XFSZ && exec "$SEND" --db cf.db --rules w.rules --now 2026-11-02T12:30:00+08:00 --reconcile --transport wecom: >cf.out 2>cf.err) &
cp=$!
for _ in $(seq 100); do
	[ "$(srv "calls('get_groupmsg_send_result')")" = 2 ] && break
	sleep 0.05
done
prlimit --pid "$cp" --fsize="$(stat -c %s cf.db-wal)"
wait "$cp"
cfrc=$?
no_sanitizer "failed commit" cf.err
status_is "failed commit: exit 3" "$cfrc" 3 cf.err
check "failed commit: the failure named on stderr" grep -q '^smr-send: ' cf.err
eq "failed commit: only the committed task's records printed" "wmC1 delivered;wmC2 delivered" \
	"$(python3 -c "
import json
for l in open('cf.out'):
    o = json.loads(l)
    print(o['touch'], o['result'])" | while read -r t r; do echo "$(sq cf.db "SELECT wecom_to FROM touch WHERE id = $t") $r"; done | sort | paste -sd';')"
eq "failed commit: the database agrees (s2's touches still task_created)" "C1 0 delivered;C2 0 delivered;C3 0 task_created;C4 0 task_created" "$(states cf.db)"
wsnd --db cf.db --rules w.rules --now 2026-11-02T12:40:00+08:00 --reconcile --transport wecom:
xstatus "failed commit, re-run: exit 0" 0
eq "failed commit, re-run: s2's touches settled and printed now" "delivered;delivered" "$(res result)"
eq "failed commit, re-run: every touch delivered" "C1 0 delivered;C2 0 delivered;C3 0 delivered;C4 0 delivered" "$(states cf.db)"

# === held claims: taken over, a live run's, standard output =====================
stop_server
start_server
people 3 s1 >h.ndjson
setup h.db h.ndjson
# another run takes C2's claim over between the claim and the attempt
sq h.db "CREATE TRIGGER steal AFTER INSERT ON wecom_task BEGIN
  UPDATE touch SET claimed_by = 'otherhost:1:1' WHERE state = 'claimed' AND pid = (SELECT pid FROM identity WHERE value = 'C2');
END" >/dev/null
wsnd --db h.db --rules w.rules --now $D0 --queued --transport wecom: --stats
eq "taken over: the task leaves out the touch this run no longer holds" "wmC1,wmC3" \
	"$(srv "','.join(sorted(S['tasks'][0]['customers']))")"
eq "taken over: C2 not reported here, still the other run's" "C1 task_created;C3 task_created|C2 claimed otherhost:1:1" \
	"$(res unionid result)|$(sq h.db "SELECT $WHO || ' ' || state || ' ' || claimed_by FROM touch x WHERE state = 'claimed'")"
check "taken over: counted as skipped" grep -q 'skipped 1' "$T/xerr"

# a claim an hour old of a run still alive on this host is never taken over
stop_server
start_server
setup lv.db h.ndjson
sleep 60 &
live=$!
me="$(hostname | cut -d: -f1):$live:$(awk '{print $22}' /proc/$live/stat)-$(cut -d- -f1 /proc/sys/kernel/random/boot_id)"
sq lv.db "UPDATE touch SET state = 'claimed', claimed_by = '$me', claimed_at = 0 WHERE pid = (SELECT pid FROM identity WHERE value = 'C1')" >/dev/null
wsnd --db lv.db --rules w.rules --now $D0 --queued --transport wecom:
eq "live claim: left alone however old, the others sent" "C1 0 claimed;C2 0 task_created;C3 0 task_created|wmC2,wmC3" \
	"$(states lv.db)|$(srv "','.join(sorted(S['tasks'][0]['customers']))")"
kill "$live"
wait "$live" 2>/dev/null
wsnd --db lv.db --rules w.rules --now $D0 --queued --transport wecom:
eq "live claim: once its run is gone, queued again and sent once" "C1 0 task_created;C2 0 task_created;C3 0 task_created|2 wmC1" \
	"$(states lv.db)|$(srv "len(S['tasks']), ','.join(S['tasks'][1]['customers'])")"

# standard output fails before the tasks are created: nothing created, nothing left claimed
stop_server
start_server
{ cat h.ndjson; ev v9 view 2026-11-02T09:00:00+08:00 C9 ',"external_userid":"wmC9"'; } >so.ndjson
setup so.db so.ndjson
"$SEND" --db so.db --rules w.rules --now $D0 --queued --transport wecom: >/dev/full 2>so.err
status_is "stdout fails: exit 3" "$?" 3 so.err
eq "stdout fails: the held touches queued again, none claimed, no task" "C1 0 queued;C2 0 queued;C3 0 queued;C9 0 suppressed|0" \
	"$(states so.db)|$(srv "len(S['tasks'])")"
wsnd --db so.db --rules w.rules --now $D0 --queued --transport wecom:
eq "stdout fails, re-run: one task for the three" "C1 0 task_created;C2 0 task_created;C3 0 task_created;C9 0 suppressed|1" \
	"$(states so.db)|$(srv "len(S['tasks'])")"

# === usage ======================================================================
wsnd --db cc.db --rules w.rules --reconcile --transport file:x
xstatus "usage: --reconcile with another transport" 2
wsnd --db cc.db --rules w.rules --queued --transport wecom:extra
xstatus "usage: wecom: takes no argument" 2
finish
