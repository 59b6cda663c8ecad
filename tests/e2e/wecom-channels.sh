#!/usr/bin/env bash
# WeCom beyond private messages, against the local stand-in server
# (tests/fixtures/wecom/server.py): an enrollment ends when its person has
# no staff contact left (one deletion ends only that pair); moments posts
# (add_moment_task: one job per sender and text, joined by later and
# concurrent touches while it is open, the job result and the publish
# status reconciled, a lost answer never creates a second job);
# staff reminders (message/send: one digest per staff member, split at
# 2,048 bytes on a character boundary, invaliduser failing only that
# staff member's touches, at most 30 messages a minute per member, a lost
# answer never sent twice); 45033 backs off, bounded.
. "$(dirname "$0")/../lib.sh"
. "$FIXTURES/tag/helpers.sh"
. "$FIXTURES/sop/helpers.sh"
. "$FIXTURES/wecom/helpers.sh"
D2=2026-11-04T12:00:00+08:00

# === no staff contact left: the enrollment ends ================================
cat >ns.rules <<'EOF2'
timezone Asia/Shanghai
tag go when count('view', '30d') > 0
sop hello
  trigger go
  window 5d
  step 0d 12:00 private hi
  step 1d 12:00 private hi
  step 2d 12:00 private hi
  step 3d 12:00 private hi
end
content hi private "{{sop}} {{staff}}"
EOF2
start_server
{
	ev a1 friend_add 2026-11-01T10:00:00+08:00 C1 ',"external_userid":"wmC1","staff":"s1"'
	ev b1 friend_add 2026-11-01T11:00:00+08:00 C1 ',"external_userid":"wmC1","staff":"s2"'
	ev v1 view 2026-11-02T09:00:00+08:00 C1
	ev v3 view 2026-11-02T09:00:00+08:00 C3                      # outside WeCom: never a staff contact
} >ns.ndjson
setup ns.db ns.ndjson ns.rules
wsnd --db ns.db --rules ns.rules --now $D0 --queued --transport wecom:
eq "no staff: day 0 goes from the most recent contact, s2" "s2" "$(sq ns.db "SELECT staff FROM touch x WHERE $WHO = 'C1' AND step = 0")"
ev d1 friend_delete 2026-11-02T15:00:00+08:00 C1 ',"staff":"s2"' >del1.ndjson
ingest "no staff: delete s2" ns.db ns.rules del1.ndjson
due --db ns.db --rules ns.rules --now $D1
eq "no staff: one of two contacts deleted: the enrollment continues, day 1 queued" "C1 active -;C3 active -" \
	"$(enrols ns.db | sed 's/ [0-9-]* [0-9:]*;/;/; s/ [0-9-]* [0-9:]*$//')"
wsnd --db ns.db --rules ns.rules --now $D1 --queued --transport wecom:
eq "no staff: day 1 goes from the contact left, s1" "C1 task_created s1" \
	"$(sq ns.db "SELECT $WHO || ' ' || state || ' ' || staff FROM touch x WHERE $WHO = 'C1' AND step = 1")"
due --db ns.db --rules ns.rules --now $D2
ev d2 friend_delete 2026-11-04T12:30:00+08:00 C1 ',"staff":"s1"' >del2.ndjson
ingest "no staff: delete s1" ns.db ns.rules del2.ndjson
due --db ns.db --rules ns.rules --now 2026-11-04T12:40:00+08:00 --stats
eq "no staff: the last contact deleted: exited, no staff contact left; C3 (never a WeCom contact) unaffected" \
	"C1 exited no_staff_contact_left;C3 active -" \
	"$(enrols ns.db | sed 's/ [0-9-]* [0-9:]*;/;/; s/ [0-9-]* [0-9:]*$//')"
eq "no staff: counted as an exit" "1" "$(dstats | cut -d' ' -f2)"
wsnd --db ns.db --rules ns.rules --now 2026-11-04T12:45:00+08:00 --queued --transport wecom:
eq "no staff: the step queued before the deletion is suppressed, not sent" "C1 2 suppressed" \
	"$(sq ns.db "SELECT $WHO || ' ' || step || ' ' || state FROM touch x WHERE $WHO = 'C1' AND step = 2")"
due --db ns.db --rules ns.rules --now 2026-11-05T12:00:00+08:00
eq "no staff: nothing more is queued for C1" "0" "$(sq ns.db "SELECT count(*) FROM touch x WHERE $WHO = 'C1' AND step = 3")"
eq "no staff: two tasks in all (day 0 by s2, day 1 by s1)" "s2 s1" "$(srv "' '.join(t['sender'] for t in S['tasks'])")"

# === moments: one job per sender and text ======================================
cat >m.rules <<'EOF2'
timezone Asia/Shanghai
tag go when count('view', '30d') > 0
tag bought when orders > 0
sop m
  trigger go
  exit bought
  window 3d
  step 0d 12:00 moments post
end
content post moments "新品上市，朋友圈见"
EOF2
stop_server
start_server
{ people 3 s1 1; people 1 s2 4; } >m.ndjson
setup m.db m.ndjson m.rules
hook job '{"status":1}' >/dev/null
wsnd --db m.db --rules m.rules --now $D0 --queued --transport wecom: --stats
xstatus "moments: exit 0" 0
eq "moments: every touch task_created" "C1 task_created;C2 task_created;C3 task_created;C4 task_created" "$(res unionid result)"
eq "moments: one job per sender, posted to that staff member's customers (no tag)" "s1 [] 新品上市，朋友圈见;s2 [] 新品上市，朋友圈见" \
	"$(srv "';'.join(sorted(','.join(j['senders']) + ' ' + json.dumps(j['tags']) + ' ' + j['text'] for j in S['jobs']))")"
eq "moments: the jobs recorded with their jobid" "moment created job000001 s1;moment created job000002 s2" \
	"$(sq m.db "SELECT group_concat(kind || ' ' || state || ' ' || jobid || ' ' || staff, ';') FROM (SELECT * FROM wecom_task ORDER BY id)")"
wsnd --db m.db --rules m.rules --now 2026-11-02T12:30:00+08:00 --reconcile --transport wecom:
eq "moments: job still running (status 1): nothing settled, the result asked" "|2" "$(cat "$T/xout")|$(srv "calls('get_moment_task_result')")"
# C5, a friend of s1 who enters later, joins s1's open job: one post, not two
{ people 1 s1 5; } | sed 's/2026-11-02T09:00:00/2026-11-02T11:00:00/' >m5.ndjson
ingest "moments join" m.db m.rules m5.ndjson
tag --db m.db --rules m.rules --now 2026-11-02T11:55:00+08:00
due --db m.db --rules m.rules --now 2026-11-02T12:15:00+08:00
wsnd --db m.db --rules m.rules --now 2026-11-02T12:20:00+08:00 --queued --transport wecom:
eq "moments: a later touch of s1 with the same text joins s1's open job, no new job" "C5 task_created|2|1" \
	"$(res unionid result)|$(srv "len(S['jobs'])")|$(sq m.db "SELECT wecom_task FROM touch x WHERE $WHO = 'C5'")"
hook job '{"status":3}' >/dev/null
wsnd --db m.db --rules m.rules --now 2026-11-02T13:00:00+08:00 --reconcile --transport wecom:
eq "moments: job done, not yet published: the moment_id kept, still task_created" "|mom000001 mom000002|5" \
	"$(cat "$T/xout")|$(sq m.db "SELECT group_concat(moment_id, ' ') FROM wecom_task")|$(states m.db | grep -o task_created | wc -l)"
hook publish '{"userid":"s1"}' >/dev/null
wsnd --db m.db --rules m.rules --now 2026-11-02T14:00:00+08:00 --reconcile --transport wecom: --stats
eq "moments: s1 published: its customers' touches published; s2's pending" "C1 0 published;C2 0 published;C3 0 published;C4 0 task_created;C5 0 published" "$(states m.db)"
check "moments: --stats counts published" grep -q 'published 4' "$T/xerr"
wsnd --db m.db --rules m.rules --now 2026-11-03T12:30:00+08:00 --reconcile --transport wecom:
eq "moments: s2 never published: unconfirmed after the deadline, the moment stopped" "C4 0 unconfirmed|False True" \
	"$(states m.db "step = 0 AND pid = (SELECT pid FROM identity WHERE value = 'C4')")|$(srv "S['moments'][0]['cancelled'], S['moments'][1]['cancelled']")"
"$SMR_BIN/smr-report" --db m.db --rules m.rules --now 2026-11-20T00:00:00+08:00 sops >rep.out 2>rep.err
eq "moments: smr-report counts no moments post as delivered to a customer" "m 0" \
	"$(python3 -c "
import json
for l in open('rep.out'):
    o = json.loads(l); print(o['sop'], o['sent'])")"

# a job that fails, a staff member WeCom cannot post for
stop_server
start_server
setup mf.db m.ndjson m.rules
hook job '{"status":3,"invalid":["s2"]}' >/dev/null
wsnd --db mf.db --rules m.rules --now $D0 --queued --transport wecom:
wsnd --db mf.db --rules m.rules --now 2026-11-02T12:30:00+08:00 --reconcile --transport wecom:
eq "moments: s2 in invalid_sender_list: failed with the reason; s1's job created" "C1 0 task_created;C2 0 task_created;C3 0 task_created;C4 0 failed" "$(states mf.db)"
check "moments: the reason names invalid_sender_list" grep -q "invalid_sender_list" "$T/xout"
hook job '{"status":3,"errcode":40058}' >/dev/null
sq mf.db "UPDATE touch SET state = 'queued', wecom_task = NULL WHERE state = 'failed'" >/dev/null
wsnd --db mf.db --rules m.rules --now 2026-11-02T12:40:00+08:00 --queued --transport wecom:
wsnd --db mf.db --rules m.rules --now 2026-11-02T12:50:00+08:00 --reconcile --transport wecom:
eq "moments: a job that ends with an errcode fails its touches" "C4 0 failed" "$(states mf.db "pid = (SELECT pid FROM identity WHERE value = 'C4')")"
check "moments: the reason says the job failed" grep -q "the moments job failed: errcode 40058" "$T/xout"

# the person exits while the moment is pending: stopped, cancelled
stop_server
start_server
people 1 s1 >mx.ndjson
sed 's/^end$/  step 2d 12:00 moments post\nend/' m.rules >m2.rules   # still active after day 0
setup mx.db mx.ndjson m2.rules
wsnd --db mx.db --rules m2.rules --now $D0 --queued --transport wecom:
ev o1 order 2026-11-02T14:00:00+08:00 C1 ',"amount":"9.90"' >ord.ndjson
ingest "moments exit" mx.db m2.rules ord.ndjson
tag --db mx.db --rules m2.rules --now 2026-11-02T14:05:00+08:00
due --db mx.db --rules m2.rules --now 2026-11-02T14:05:00+08:00
wsnd --db mx.db --rules m2.rules --now 2026-11-02T14:10:00+08:00 --reconcile --transport wecom:
eq "moments: the person exited before it was published: cancelled, the moment stopped" "C1 0 cancelled|True|cancelled" \
	"$(states mx.db)|$(srv "S['moments'][0]['cancelled']")|$(sq mx.db "SELECT state FROM wecom_task")"

# two senders at once: one job for a staff member and text, the later
# touches wait for it and then join it
stop_server
start_server
people 200 s1 >mc.ndjson
setup mc.db mc.ndjson m.rules
hook inject '{"api":"add_moment_task","errcode":45033,"times":1}' >/dev/null  # the first call backs off
SMR_WECOM_BACKOFF_SCALE=3 "$SEND" --db mc.db --rules m.rules --now $D0 --queued --limit 100 --transport wecom: >mc1.out 2>mc1.err &
p1=$!
for _ in $(seq 100); do
	[ "$(srv "calls('add_moment_task')")" = 1 ] && break
	sleep 0.05
done
"$SEND" --db mc.db --rules m.rules --now $D0 --queued --transport wecom: >mc2.out 2>mc2.err
wait "$p1"
no_sanitizer "moments concurrent" mc1.err mc2.err
eq "moments concurrent: one job for s1" "1" "$(srv "len(S['jobs'])")"
eq "moments concurrent: the first run's touches in it, the second's wait a minute for it; none claimed" "100 100 0" \
	"$(sq mc.db "SELECT sum(state = 'task_created' AND wecom_task = 1) || ' ' || sum(state = 'deferred' AND not_before = $(($(ep $D0) + 60))) || ' ' || sum(state = 'claimed') FROM touch")"
check "moments concurrent: the reason says so" grep -q "another run is creating" mc2.out
wsnd --db mc.db --rules m.rules --now 2026-11-02T12:02:00+08:00 --queued --transport wecom:
eq "moments concurrent: a later run joins the waiting touches to the job" "200 1" \
	"$(sq mc.db "SELECT count(*) FROM touch WHERE state = 'task_created' AND wecom_task = 1") $(srv "len(S['jobs'])")"

# a lost answer: unknown, never a second job; also across kill -9 and a re-run
stop_server
start_server
setup ml.db m.ndjson m.rules
hook lose '{"api":"add_moment_task","hang":3}' >/dev/null
SMR_WECOM_TIMEOUT_MS=800 wsnd --db ml.db --rules m.rules --now $D0 --queued --transport wecom:
xstatus "moments lost: exit 1 (unknown outcomes)" 1
eq "moments lost: s1's touches unknown (the job cannot be looked up); s2's created" "C1 0 unknown;C2 0 unknown;C3 0 unknown;C4 0 task_created" "$(states ml.db)"
check "moments lost: the reason says so" grep -q "cannot be looked up" "$T/xout"
wsnd --db ml.db --rules m.rules --now 2026-11-02T12:10:00+08:00 --queued --transport wecom:
eq "moments lost, re-run: no second job" "2|" "$(srv "len(S['jobs'])")|$(cat "$T/xout")"
setup mk.db m.ndjson m.rules
hook lose '{"api":"add_moment_task","hang":30}' >/dev/null
"$SEND" --db mk.db --rules m.rules --now $D0 --queued --transport wecom: >mk.out 2>mk.err &
kp=$!
for _ in $(seq 100); do
	[ "$(srv "len(S['jobs'])")" = 3 ] && break
	sleep 0.1
done
kill -9 $kp
wait $kp 2>/dev/null
eq "moments kill -9: the attempt recorded before the call" "moment attempting" "$(sq mk.db "SELECT kind || ' ' || state FROM wecom_task ORDER BY id LIMIT 1")"
wsnd --db mk.db --rules m.rules --now $D0 --queued --transport wecom:
eq "moments kill -9, re-run: the attempt's touches unknown, one job for s1 in all" "C1 0 unknown;C2 0 unknown;C3 0 unknown;C4 0 task_created|4 1" \
	"$(states mk.db)|$(srv "len(S['jobs']), sum(1 for j in S['jobs'] if j['senders'] == ['s1'] and j['jobid'] > 'job000002')")"
wsnd --db mk.db --rules m.rules --now $D0 --queued --transport wecom:
eq "moments kill -9, a third run: nothing more" "4" "$(srv "len(S['jobs'])")"

# === staff reminders: one digest per staff member ==============================
cat >st.rules <<'EOF2'
timezone Asia/Shanghai
tag go when count('view', '30d') > 0
sop call
  trigger go
  window 3d
  step 0d 12:00 staff ring
end
content ring staff "请电话回访，送优惠券"
EOF2
# digest MSGS-EXPR: the staff messages the server took, a Python expression over M
digest() { srv "[m for m in S['messages']]" >/dev/null; hook state | python3 -c "
import json, sys
M = json.load(sys.stdin)['messages']
print($1)"; }
stop_server
start_server
{
	people 2 s1 1
	people 1 s2 3
	people 1 s3 4
	ev n1 profile 2026-11-02T09:00:00+08:00 C1 ',"props":{"nickname":"小王"}'
} >st.ndjson
setup st.db st.ndjson st.rules
wsnd --db st.db --rules st.rules --now $D0 --queued --transport wecom:
xstatus "staff: without SMR_WECOM_AGENTID: exit 1" 1
eq "staff: without SMR_WECOM_AGENTID the touches fail, saying so" "C1 failed;C2 failed;C3 failed;C4 failed|0" \
	"$(res unionid result)|$(srv "calls('message/send')")"
check "staff: the reason names SMR_WECOM_AGENTID" grep -q SMR_WECOM_AGENTID "$T/xout"
setup st.db st.ndjson st.rules
hook invalid '{"userid":["s3"],"partial":true}' >/dev/null
SMR_WECOM_AGENTID=1000002 wsnd --db st.db --rules st.rules --now $D0 --queued --transport wecom: --stats
xstatus "staff: a staff member in invaliduser: exit 1" 1
eq "staff: s1 and s2 reminded (staff_notified); s3 unreachable: failed, the others not" \
	"C1 staff_notified;C2 staff_notified;C3 staff_notified;C4 failed" "$(res unionid result)"
check "staff: the reason names invaliduser" grep -q "s3 is in invaliduser" "$T/xout"
eq "staff: one message per staff member, listing that member's customers by name and external_userid" \
	"s1|smr: 2 SOP tasks to send by hand/1. 小王 (wmC1): 请电话回访，送优惠券/2. wmC2: 请电话回访，送优惠券/;s2|smr: 1 SOP task to send by hand/1. wmC3: 请电话回访，送优惠券/" \
	"$(digest "';'.join(m['touser'] + '|' + m['content'].replace(chr(10), '/') for m in M)")"
eq "staff: three message/send calls, one per staff member" "3" "$(srv "calls('message/send')")"
eq "staff: the attempts recorded as digests" "digest done s1;digest done s2;digest failed s3" \
	"$(sq st.db "SELECT group_concat(kind || ' ' || state || ' ' || staff, ';') FROM (SELECT * FROM wecom_task ORDER BY staff)")"
# another run takes C2's claim over between the claim and the digest: the
# digest leaves C2 to that run (a line for it here would have s1 call twice)
stop_server
start_server
setup sto.db st.ndjson st.rules
sq sto.db "CREATE TRIGGER steal AFTER INSERT ON wecom_task BEGIN
  UPDATE touch SET claimed_by = 'otherhost:1:1' WHERE state = 'claimed' AND pid = (SELECT pid FROM identity WHERE value = 'C2');
END" >/dev/null
SMR_WECOM_AGENTID=1000002 wsnd --db sto.db --rules st.rules --now $D0 --queued --transport wecom:
eq "staff, taken over: s1's digest lists only the touch this run holds" \
	"s1|smr: 1 SOP task to send by hand/1. 小王 (wmC1): 请电话回访，送优惠券/" \
	"$(digest "';'.join(m['touser'] + '|' + m['content'].replace(chr(10), '/') for m in M if m['touser'] == 's1')")"
eq "staff, taken over: C2 not reported, still the other run's; the attempt's text is its message" \
	"C1 staff_notified;C3 staff_notified;C4 staff_notified|C2 claimed otherhost:1:1|smr: 1 SOP task to send by hand/1. 小王 (wmC1): 请电话回访，送优惠券/" \
	"$(res unionid result)|$(sq sto.db "SELECT $WHO || ' ' || state || ' ' || claimed_by FROM touch x WHERE state = 'claimed'")|$(sq sto.db "SELECT replace(text, char(10), '/') FROM wecom_task WHERE staff = 's1'")"
"$SMR_BIN/smr-report" --db st.db --rules st.rules --now 2026-11-20T00:00:00+08:00 sops >rep.out 2>rep.err
eq "staff: smr-report counts no staff reminder as delivered to a customer" "call 0" \
	"$(python3 -c "
import json
for l in open('rep.out'):
    o = json.loads(l); print(o['sop'], o['sent'])")"

# a digest over 2,048 bytes: split on line ends, a line longer than a
# message on a character boundary; at most 30 messages a minute
cat >long.rules <<'EOF2'
timezone Asia/Shanghai
tag go when count('view', '30d') > 0
sop call
  trigger go
  window 3d
  step 0d 12:00 staff ring
end
EOF2
python3 -c "print('content ring staff \"' + '回访' * 200 + '{{long|}}\"')" >>long.rules   # 1,200 bytes
stop_server
start_server
{
	people 12 s1 1
	ev n1 profile 2026-11-02T09:00:00+08:00 C1 ",\"props\":{\"long\":\"$(python3 -c "print('长' * 300 + 'é' * 7)")\"}"
} >long.ndjson
setup lg.db long.ndjson long.rules
SMR_WECOM_AGENTID=1000002 wsnd --db lg.db --rules long.rules --now $D0 --queued --transport wecom:
xstatus "long digest: exit 0" 0
eq "long digest: every touch staff_notified" "12" "$(res result | tr ';' '\n' | grep -c staff_notified)"
eq "long digest: several messages, each at most 2,048 bytes, valid UTF-8" "True True" \
	"$(digest "len(M) > 3, all(len(m['content'].encode()) <= 2048 for m in M)")"
eq "long digest: the messages joined are the whole digest, no byte lost or cut" "True" \
	"$(digest "''.join(m['content'] for m in M) == 'smr: 12 SOP tasks to send by hand\n' + ''.join('%d. wmC%d: %s\n' % (i, i, '回访' * 200 + ('长' * 300 + 'é' * 7 if i == 1 else '')) for i in range(1, 13))")"
eq "long digest: every message but the one cutting C1's long line ends at a line end" "1" \
	"$(digest "sum(1 for m in M if not m['content'].endswith(chr(10)))")"
eq "long digest: one attempt per message" "$(digest "len(M)")" "$(sq lg.db "SELECT count(*) FROM wecom_task WHERE kind = 'digest'")"

stop_server
start_server
people 70 s1 >many.ndjson
setup mn.db many.ndjson long.rules
SMR_WECOM_AGENTID=1000002 wsnd --db mn.db --rules long.rules --now $D0 --queued --transport wecom:
eq "30 a minute: 30 messages to s1, none dropped by WeCom" "30 0" "$(digest "len(M), sum(m['dropped'] for m in M)")"
eq "30 a minute: the tasks that did not fit wait a minute; none left claimed" "30 40 $(($(ep $D0) + 60))|0" \
	"$(sq mn.db "SELECT sum(state = 'staff_notified') || ' ' || sum(state = 'deferred') || ' ' || max(not_before) FROM touch")|$(sq mn.db "SELECT count(*) FROM touch WHERE state = 'claimed'")"
SMR_WECOM_AGENTID=1000002 wsnd --db mn.db --rules long.rules --now 2026-11-02T12:01:00+08:00 --queued --transport wecom:
eq "30 a minute: a run within the same minute sends nothing more" "30|40 deferred" \
	"$(digest "len(M)")|$(res result | tr ';' '\n' | sort | uniq -c | awk '{print $1, $2}')"

# a lost answer: unknown, never sent twice
stop_server
start_server
setup sl.db st.ndjson st.rules
hook lose '{"api":"message/send","hang":3}' >/dev/null
SMR_WECOM_AGENTID=1000002 SMR_WECOM_TIMEOUT_MS=800 wsnd --db sl.db --rules st.rules --now $D0 --queued --transport wecom:
eq "staff lost: the first digest's touches unknown, the others notified" "C1 unknown;C2 unknown;C3 staff_notified;C4 staff_notified" "$(res unionid result)"
SMR_WECOM_AGENTID=1000002 wsnd --db sl.db --rules st.rules --now 2026-11-02T12:10:00+08:00 --queued --transport wecom:
eq "staff lost, re-run: nothing sent again" "3|" "$(digest "len(M)")|$(cat "$T/xout")"

# === 45033 (concurrency): back-off 1, 2, 4 s, bounded ==========================
stop_server
start_server
setup cy.db m.ndjson m.rules
hook inject '{"api":"add_moment_task","errcode":45033,"times":2}' >/dev/null
wsnd --db cy.db --rules m.rules --now $D0 --queued --transport wecom:
eq "45033 twice: the first job made on the third call" "C1 task_created;C2 task_created;C3 task_created;C4 task_created|4" \
	"$(res unionid result)|$(srv "calls('add_moment_task')")"
hook inject '{"api":"add_moment_task","errcode":45033,"times":100}' >/dev/null
setup cy2.db m.ndjson m.rules
SMR_WECOM_TRIES=2 wsnd --db cy2.db --rules m.rules --now $D0 --queued --transport wecom:
eq "45033 always: 2 calls a job (SMR_WECOM_TRIES), then deferred ten minutes, no job" "C1 deferred;C2 deferred;C3 deferred;C4 deferred|8|2" \
	"$(res unionid result)|$(srv "calls('add_moment_task')")|$(srv "len(S['jobs'])")"
finish
