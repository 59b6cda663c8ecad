#!/usr/bin/env bash
# Restraint across merges, rules edits and exits (smr-sop-due(1), smr(7)):
# two enrolled persons merged get each later step once; a step inserted in
# front of steps already sent re-sends nothing, a named step keeps its
# identity when its time or content changes; a merge keeps each enrollment's
# holdout membership; an exit tag entered after the last step was queued
# (or deferred) but before delivery suppresses it; at most one active
# enrollment per person and SOP, also in a database from before; a closed
# stdout loses no touch for smr-send --queued; merges racing two
# smr-sop-due runs still give each person each step once.
. "$(dirname "$0")/../lib.sh"
. "$FIXTURES/tag/helpers.sh"
. "$FIXTURES/sop/helpers.sh"
export TZ=Asia/Shanghai

# send ARGS...: smr-send --queued, results in $T/xout, status in XRC.
send() { snd --queued "$@"; }
# sent FILE: the contents delivered to FILE, "who content;..." in order.
sent() { recs "$1" who content; }
# step DB PID-WHERE: "(state, step_key) ..." of touches, for diagnostics.
keys() { sq "$1" "SELECT coalesce(group_concat(state || ':' || step_key, ', '), '') FROM (SELECT * FROM touch WHERE ${2:-1} ORDER BY due_at, id)"; }
# pipeline DB RULES NOW OUT: smr-tag and smr-sop-due at NOW, then smr-send
# --queued at NOW into file:OUT.
pipeline() {
	tag --db "$1" --rules "$2" --now "$3"
	due --db "$1" --rules "$2" --now "$3"
	send --db "$1" --rules "$2" --now "$3" --transport "file:$4"
}

# === merge: two enrolled persons become one ====================================
# A (unionid) and B (openid only) each add to the cart on day 0, enter it in
# the same smr-tag run (one day 0) and each get step 0. On day 1 at 09:00 one event names both: B merges into A. The
# rest of the sequence must come once, not once per former person.
cat >m.rules <<'EOF2'
timezone Asia/Shanghai
tag cart when count('add_cart', '7d') > 0
sop s
  trigger cart
  step 0d 20:00 private c0
  step 1d 12:00 private c1
  step 2d 12:00 private c2
end
content c0 private "zero"
content c1 private "one"
content c2 private "two"
EOF2
{
	ev a1 add_cart 2026-11-02T10:00:00+08:00 A
	echo '{"id":"b1","type":"add_cart","ts":"2026-11-02T10:00:00+08:00","openid":"OB"}'
} >m1.ndjson
ingest "merge day 0" m.db m.rules m1.ndjson
pipeline m.db m.rules 2026-11-02T10:05:00+08:00 m.out
pipeline m.db m.rules 2026-11-02T20:00:00+08:00 m.out
eq "merge: step 0 delivered to A and to B (two persons then)" "A c0;p2 c0" "$(sent m.out)"
echo '{"id":"ab","type":"view","ts":"2026-11-03T09:00:00+08:00","unionid":"A","openid":"OB"}' >m2.ndjson
ingest "merge event" m.db m.rules m2.ndjson
eq "merge: B merged into A" "1|2" "$(sq m.db "SELECT survivor || '|' || merged FROM merge_log")"
eq "merge: one enrollment active (the same day 0: the first enrolled, A's), the other exited 'merged'" \
	"A active - 11-02 10:05;A exited merged 11-02 10:05" "$(enrols m.db)"
for now in 2026-11-03T12:00:00+08:00 2026-11-04T12:00:00+08:00 2026-11-05T12:00:00+08:00; do
	pipeline m.db m.rules $now m.out
done
eq "merge: steps 1 and 2 delivered once each after the merge (were twice)" "A c0;p2 c0;A c1;A c2" "$(sent m.out)"
eq "merge: every step_key sent at most once per enrollment, each key once since the merge" \
	"0d 20:00 private c0|2;1d 12:00 private c1|1;2d 12:00 private c2|1" \
	"$(sq m.db "SELECT group_concat(k || '|' || n, ';') FROM (SELECT step_key AS k, count(*) AS n FROM touch WHERE state = 'sent' GROUP BY 1 ORDER BY 1)")"
eq "merge: B's step-0 touch stays with its exited enrollment (A's has the step already)" \
	"1" "$(sq m.db "SELECT count(*) FROM touch t JOIN enrollment e ON e.id = t.enrollment WHERE e.state != 'exited' AND t.step_key = '0d 20:00 private c0'")"
check "merge: the schema refuses a second active enrollment per person and SOP" \
	sh -c '! sqlite3 m.db "INSERT INTO enrollment(pid, sop, trigger_tag, day0, started_at, state) VALUES (1, '"'s'"', '"'cart'"', 1, 1, '"'active'"'); INSERT INTO enrollment(pid, sop, trigger_tag, day0, started_at, state) VALUES (1, '"'s'"', '"'cart'"', 2, 2, '"'active'"')" 2>/dev/null'

# A step B had queued but not yet delivered when merged, which A has not
# reached: it moves to A's enrollment and goes once.
cat >m3.rules <<'EOF2'
timezone Asia/Shanghai
tag cart when count('add_cart', '7d') > 0
sop s
  trigger cart
  step 0d 20:00 private c0
  step 1d 12:00 private c1
end
content c0 private "zero"
content c1 private "one"
EOF2
{
	ev a0 view 2026-11-02T09:00:00+08:00 A
	echo '{"id":"b1","type":"add_cart","ts":"2026-11-02T10:00:00+08:00","openid":"OB"}'
} >m3.ndjson
ingest "merge pending" m3.db m3.rules m3.ndjson
tag --db m3.db --rules m3.rules --now 2026-11-02T10:05:00+08:00
due --db m3.db --rules m3.rules --now 2026-11-02T10:05:00+08:00
ev a1 add_cart 2026-11-02T19:00:00+08:00 A >m3a.ndjson
ingest "merge pending A" m3.db m3.rules m3a.ndjson
tag --db m3.db --rules m3.rules --now 2026-11-02T19:05:00+08:00
due --db m3.db --rules m3.rules --now 2026-11-02T20:00:00+08:00
eq "merge pending: step 0 queued for both, nothing sent yet" 2 "$(nrows m3.db touch "state = 'queued'")"
echo '{"id":"ab","type":"view","ts":"2026-11-02T20:10:00+08:00","unionid":"A","openid":"OB"}' >m4.ndjson
ingest "merge pending event" m3.db m3.rules m4.ndjson
eq "merge pending: B's enrollment (day 0 10:05) survives on A's pid; A's exits merged" \
	"A active - 11-02 10:05;A exited merged 11-02 19:05" "$(enrols m3.db)"
for now in 2026-11-02T20:15:00+08:00 2026-11-03T12:00:00+08:00; do
	pipeline m3.db m3.rules $now m3.out
done
eq "merge pending: step 0 once, step 1 once" "A c0;A c1" "$(sent m3.out)"

# === merges racing smr-sop-due: whatever the order, each step goes once ========
# 150 pairs (A_i by unionid, B_i by openid) enter the cart in one run and get
# step 0. On day 1 a file merging every pair is ingested while two
# smr-sop-due runs queue step 1; then smr-send. Each person gets step 1 once.
{
	for i in $(seq 1 150); do ev "ra$i" add_cart 2026-11-02T10:00:00+08:00 "RA$i"; done
	for i in $(seq 1 150); do
		printf '{"id":"rb%s","type":"add_cart","ts":"2026-11-02T10:00:00+08:00","openid":"RB%s"}\n' "$i" "$i"
	done
} >r1.ndjson
for i in $(seq 1 150); do
	printf '{"id":"rab%s","type":"view","ts":"2026-11-03T11:00:00+08:00","unionid":"RA%s","openid":"RB%s"}\n' "$i" "$i" "$i"
done >r2.ndjson
ingest "race day 0" r.db m.rules r1.ndjson
pipeline r.db m.rules 2026-11-02T10:05:00+08:00 r.out
pipeline r.db m.rules 2026-11-02T20:00:00+08:00 r.out
eq "race: step 0 sent to all 300 persons" 300 "$(lines r.out)"
"$SMR_BIN/smr-ingest" --db r.db --rules m.rules r2.ndjson >ri.out 2>ri.err &
j0=$!
"$DUE" --db r.db --rules m.rules --now 2026-11-03T12:00:00+08:00 </dev/null >rd1.out 2>rd1.err &
j1=$!
"$DUE" --db r.db --rules m.rules --now 2026-11-03T12:00:00+08:00 </dev/null >rd2.out 2>rd2.err &
j2=$!
wait $j0; r0=$?
wait $j1; r1=$?
wait $j2; r2=$?
no_sanitizer "race" ri.err rd1.err rd2.err
eq "race: smr-ingest and both smr-sop-due runs exit 0" "0 0 0" "$r0 $r1 $r2"
eq "race: 150 merges" 150 "$(nrows r.db merge_log)"
pipeline r.db m.rules 2026-11-03T12:05:00+08:00 r.out
eq "race: at most one active enrollment per person and SOP" 0 \
	"$(sq r.db "SELECT count(*) FROM (SELECT 1 FROM enrollment WHERE state = 'active' GROUP BY pid, sop HAVING count(*) > 1)")"
eq "race: step 1 sent once to each of the 150 persons left" "150 150 1" \
	"$(sq r.db "SELECT count(*) || ' ' || count(DISTINCT pid) || ' ' || coalesce(max(n), 0) FROM (SELECT pid, count(*) AS n FROM touch WHERE state = 'sent' AND step_key = '1d 12:00 private c1' GROUP BY pid)")"

# === SOP edit: steps inserted in front of a step already sent =================
# c0 at 20:00 is sent; at 20:15 the SOP gains a step at day 0 12:00 (long
# past: missed) and one at 20:10 (within --late: queued). By position, the
# 20:30 run would take c0 for step 1 and send it again.
cat >e1.rules <<'EOF2'
timezone Asia/Shanghai
tag cart when count('add_cart', '7d') > 0
sop s
  trigger cart
  step 0d 20:00 private c0
  step 0d 20:30 private c1
  step 1d 12:00 private c2
end
content c0 private "zero"
content c1 private "one"
content cf private "front"
content c2 private "two"
EOF2
ev e1 add_cart 2026-11-02T10:00:00+08:00 E >e1.ndjson
ingest "edit" e.db e1.rules e1.ndjson
pipeline e.db e1.rules 2026-11-02T10:05:00+08:00 e.out
pipeline e.db e1.rules 2026-11-02T20:00:00+08:00 e.out
eq "edit: step 0 sent" "E c0" "$(sent e.out)"
awk '/step 0d 20:00/ { print "  step 0d 12:00 private cf"; print "  step 0d 20:10 private cf" } { print }' e1.rules >e2.rules
pipeline e.db e2.rules 2026-11-02T20:30:00+08:00 e.out
eq "edit: steps inserted in front: c0 not re-sent; the new 20:10 step and c1 go" \
	"E c0;E cf;E c1" "$(sent e.out)"
eq "edit: the new step at day 0 12:00 recorded missed" "missed" \
	"$(sq e.db "SELECT state FROM touch WHERE step_key = '0d 12:00 private cf'")"
pipeline e.db e2.rules 2026-11-03T12:00:00+08:00 e.out
eq "edit: the last step goes once; nothing else again" "E c0;E cf;E c1;E c2" "$(sent e.out)"
eq "edit: step numbers count the enrollment's touches in the order recorded" \
	"0:0d 20:00 private c0 1:0d 12:00 private cf 2:0d 20:10 private cf 3:0d 20:30 private c1 4:1d 12:00 private c2" \
	"$(sq e.db "SELECT group_concat(step || ':' || step_key, ' ') FROM (SELECT * FROM touch ORDER BY step)")"

# === a named step keeps its identity when its time or content changes =========
cat >n1.rules <<'EOF2'
timezone Asia/Shanghai
tag cart when count('add_cart', '7d') > 0
sop s
  trigger cart
  step 0d 20:00 private c0 as hello
  step 2d 12:00 private c2
end
content c0 private "zero"
content c0b private "zero, reworded"
content c2 private "two"
EOF2
sed 's/step 0d 20:00 private c0 as hello/step 0d 20:20 private c0b as hello/' n1.rules >n2.rules
ev n1 add_cart 2026-11-02T10:00:00+08:00 N >n1.ndjson
ingest "named" n.db n1.rules n1.ndjson
pipeline n.db n1.rules 2026-11-02T10:05:00+08:00 n.out
pipeline n.db n1.rules 2026-11-02T20:00:00+08:00 n.out
pipeline n.db n2.rules 2026-11-02T20:20:00+08:00 n.out
pipeline n.db n2.rules 2026-11-04T12:00:00+08:00 n.out
eq "named: the step named hello goes once though its time and content changed" "N c0;N c2" "$(sent n.out)"
eq "named: step_key is the name, else the derived key" "hello|2d 12:00 private c2" \
	"$(sq n.db "SELECT group_concat(step_key, '|') FROM (SELECT step_key FROM touch ORDER BY id)")"
# --check: two steps of one SOP with the same name
sed 's/private c2$/private c2 as hello/' n1.rules >dup.rules
tag --check --rules dup.rules
tstatus "edit --check: a step name used twice in one sop is a rules error" 2
check "edit --check: the error names the line and the name" grep -q 'dup.rules:6:.*two steps named "hello"' "$T/terr"
sed 's/private c2$/private c2 as bad name/' n1.rules >bad.rules
tag --check --rules bad.rules
tstatus "edit --check: 'as' takes one name" 2
sed 's/private c2$/private c2 named x/' n1.rules >bad2.rules
tag --check --rules bad2.rules
tstatus "edit --check: anything else after the content is an error" 2
due --db n.db --rules dup.rules --now 2026-11-04T12:00:00+08:00
dstatus "edit: smr-sop-due refuses the duplicate name too, exit 2" 2

# === holdout: recorded on the enrollment, kept through a merge =================
# sop h1 with holdout 50% holds out pid 2 and treats pid 1 (a hash of the
# sop and pid). B (pid 2) enrols, held out; A (pid 1) never enrols. After B
# merges into A, B's enrollment (now pid 1) stays held out.
cat >h.rules <<'EOF2'
timezone Asia/Shanghai
tag cart when count('add_cart', '7d') > 0
sop h1
  trigger cart
  holdout 50%
  step 0d 20:00 private c0
  step 1d 12:00 private c1
end
content c0 private "zero"
content c1 private "one"
EOF2
{
	ev a0 view 2026-11-02T09:00:00+08:00 A
	echo '{"id":"b1","type":"add_cart","ts":"2026-11-02T10:00:00+08:00","openid":"OB"}'
} >h1.ndjson
ingest "holdout" h.db h.rules h1.ndjson
pipeline h.db h.rules 2026-11-02T10:05:00+08:00 h.out
pipeline h.db h.rules 2026-11-02T20:00:00+08:00 h.out
eq "holdout: B (pid 2) is held out, recorded on its enrollment" "2|1|holdout" \
	"$(sq h.db "SELECT e.pid || '|' || e.holdout || '|' || t.state FROM enrollment e JOIN touch t ON t.enrollment = e.id")"
echo '{"id":"ab","type":"view","ts":"2026-11-03T09:00:00+08:00","unionid":"A","openid":"OB"}' >h2.ndjson
ingest "holdout merge" h.db h.rules h2.ndjson
pipeline h.db h.rules 2026-11-03T12:00:00+08:00 h.out
eq "holdout: after the merge into pid 1 (treated by hash) step 1 is still held out, nothing sent" \
	"1|1|holdout holdout|0" \
	"$(sq h.db "SELECT e.pid || '|' || e.holdout || '|' || group_concat(t.state, ' ') FROM enrollment e JOIN touch t ON t.enrollment = e.id")|$(lines h.out)"

# === exit after the last step was queued, before delivery ======================
# One step at 20:00. X's is queued at 20:00 (the enrollment completes) and
# not sent; X orders at 20:30. Y's is deferred by quiet hours (21:00-22:00
# for sop late); Y orders at 21:30. Both exits come before delivery.
cat >x.rules <<'EOF2'
timezone Asia/Shanghai
tag cart when count('add_cart', '7d') > 0
tag buyer when orders >= 1
sop early
  trigger cart
  exit buyer
  step 0d 20:00 private c0
end
sop late
  trigger cart
  exit buyer
  step 0d 21:00 private c1
end
content c0 private "zero"
content c1 private "one"
policy
  quiet 21:00-22:00
end
EOF2
{
	ev x1 add_cart 2026-11-02T10:00:00+08:00 X
	ev y1 add_cart 2026-11-02T10:00:00+08:00 Y
} >x1.ndjson
ingest "exit" x.db x.rules x1.ndjson
tag --db x.db --rules x.rules --now 2026-11-02T10:05:00+08:00
due --db x.db --rules x.rules --now 2026-11-02T20:00:00+08:00
eq "exit: early's only step queued, enrollments completed" "completed completed" \
	"$(sq x.db "SELECT group_concat(state, ' ') FROM enrollment WHERE sop = 'early'")"
ev x2 order 2026-11-02T20:30:00+08:00 X ',"amount":"9.90"' >x2.ndjson
ingest "exit order X" x.db x.rules x2.ndjson
tag --db x.db --rules x.rules --now 2026-11-02T20:35:00+08:00
due --db x.db --rules x.rules --now 2026-11-02T20:35:00+08:00
eq "exit: X's completed enrollment with its step still queued exits; Y's stays completed" \
	"X exited entered_buyer 11-02 10:05;Y completed all_steps_done 11-02 10:05" "$(enrols x.db "sop = 'early'")"
send --db x.db --rules x.rules --now 2026-11-02T20:40:00+08:00 --transport file:x.out
eq "exit: smr-send suppresses X's step, sends Y's" "Y c0" "$(sent x.out)"
eq "exit: X's touch suppressed: enrollment exited" "suppressed|enrollment exited (entered buyer)" \
	"$(sq x.db "SELECT t.state || '|' || t.reason FROM touch t JOIN identity i ON i.pid = t.pid AND i.value = 'X' WHERE t.sop = 'early'")"
due --db x.db --rules x.rules --now 2026-11-02T21:00:00+08:00
send --db x.db --rules x.rules --now 2026-11-02T21:00:00+08:00 --transport file:x.out
eq "exit: late's step for Y deferred by quiet hours (X had exited before it was due)" \
	"X exited entered_buyer -;Y completed all_steps_done deferred" \
	"$(sq x.db "SELECT group_concat(x, ';') FROM (SELECT i.value || ' ' || e.state || ' ' || replace(e.exit_reason, ' ', '_') || ' ' || coalesce((SELECT group_concat(state) FROM touch t WHERE t.enrollment = e.id), '-') AS x FROM enrollment e JOIN identity i ON i.pid = e.pid WHERE e.sop = 'late' ORDER BY 1)")"
ev y2 order 2026-11-02T21:30:00+08:00 Y ',"amount":"9.90"' >y2.ndjson
ingest "exit order Y" x.db x.rules y2.ndjson
tag --db x.db --rules x.rules --now 2026-11-02T21:35:00+08:00
due --db x.db --rules x.rules --now 2026-11-02T21:35:00+08:00
send --db x.db --rules x.rules --now 2026-11-02T22:00:00+08:00 --transport file:x.out
eq "exit: Y's deferred step is not delivered after Y bought" "Y c0" "$(sent x.out)"
eq "exit: Y's late enrollment, completed with its step deferred, exited; the touch suppressed" \
	"exited|suppressed|enrollment exited (entered buyer)" \
	"$(sq x.db "SELECT e.state || '|' || t.state || '|' || t.reason FROM enrollment e JOIN touch t ON t.enrollment = e.id JOIN identity i ON i.pid = e.pid AND i.value = 'Y' WHERE e.sop = 'late'")"

# === one active enrollment: a database from before the migration ==============
# Rebuild the version-1 schema, plant two active enrollments of one person in
# one SOP (as a merge left them), and open it with this smr.
python3 - "$FIXTURES/../../common/schema.c" v1.sql <<'PY'
import re, sys
src = open(sys.argv[1]).read()
body = src[src.index("smr_schema_v1 ="):]
body = body[:body.index('";\n') + 2]
sql = "".join(bytes(m, "utf-8").decode("unicode_escape") for m in re.findall(r'"((?:[^"\\]|\\.)*)"', body))
open(sys.argv[2], "w").write(sql)
PY
rm -f old.db
check "setup: a version 1 database" sq old.db "$(cat v1.sql)
PRAGMA user_version = 1;
INSERT INTO person(pid, created_at) VALUES (1, 0);
INSERT INTO identity VALUES ('unionid', 'A', 1, 0);
INSERT INTO tag VALUES (1, 'cart', $(ep 2026-11-02T10:05:00+08:00), 'rule');
INSERT INTO enrollment(id, pid, sop, trigger_tag, day0, started_at, state, next_step, next_due) VALUES
  (1, 1, 's', 'cart', $(ep 2026-11-02T10:05:00+08:00), 0, 'active', 1, $(ep 2026-11-03T12:00:00+08:00)),
  (2, 1, 's', 'cart', $(ep 2026-11-02T11:05:00+08:00), 0, 'active', 1, $(ep 2026-11-03T12:00:00+08:00));
INSERT INTO touch(enrollment, pid, sop, step, due_at, channel, content, state, created_at, sent_at) VALUES
  (1, 1, 's', 0, $(ep 2026-11-02T20:00:00+08:00), 'private', 'c0', 'sent', 0, 0),
  (2, 1, 's', 0, $(ep 2026-11-02T20:00:00+08:00), 'private', 'c0', 'sent', 0, 0);" >/dev/null
due --db old.db --rules m.rules --now 2026-11-03T12:00:00+08:00
dstatus "old database: migrated, exit 0" 0
eq "old database: the later duplicate exited 'merged'" "A active - 11-02 10:05;A exited merged 11-02 11:05" "$(enrols old.db)"
eq "old database: older touches keyed from their local due time, channel and content" \
	"0d 20:00 private c0|0d 20:00 private c0" "$(sq old.db "SELECT group_concat(step_key, '|') FROM (SELECT step_key FROM touch WHERE step = 0 ORDER BY id)")"
eq "old database: step 1 queued once, step 0 not again" "A 1 11-03 12:00" "$(printed)"
eq "old database: holdout known from the touches sent (treated)" "0|0" \
	"$(sq old.db "SELECT group_concat(coalesce(holdout, ''), '|') FROM (SELECT holdout FROM enrollment ORDER BY id)")"

# === a closed standard output: the touches stay queued for smr-send --queued =====
ev c1 add_cart 2026-11-02T10:00:00+08:00 C >c1.ndjson
ingest "closed pipe" c.db m.rules c1.ndjson
tag --db c.db --rules m.rules --now 2026-11-02T10:05:00+08:00
rc=$(python3 - "$DUE" "$T/cerr" <<'PY'
import os, subprocess, sys
r, w = os.pipe()
os.close(r)
p = subprocess.run([sys.argv[1], "--db", "c.db", "--rules", "m.rules", "--now", "2026-11-02T20:00:00+08:00"],
                   stdin=subprocess.DEVNULL, stdout=w, stderr=open(sys.argv[2], "w"))
print(p.returncode)
PY
)
eq "closed pipe: smr-sop-due exits 3 (not killed by SIGPIPE)" 3 "$rc"
check "closed pipe: names the failed output" grep -q '^smr-sop-due: .*stdout' "$T/cerr"
eq "closed pipe: the touch is committed, queued" "queued" "$(sq c.db "SELECT group_concat(state) FROM touch")"
send --db c.db --rules m.rules --now 2026-11-02T20:05:00+08:00 --transport file:c.out
eq "closed pipe: smr-send --queued delivers it" "C c0" "$(sent c.out)"

finish
