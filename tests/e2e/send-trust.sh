#!/usr/bin/env bash
# smr-send's restraint and safety (issue 10): a touch of an enrollment
# smr-sop-due already completed is suppressed once the person converts or
# leaves the trigger; every decision reads the database at the claim, so
# tags written while a slow transport works count for the next touch;
# without --now each claim reads the clock; a claim is tied to its run
# (pid reuse) and goes stale after an hour; exec: children get no secrets
# and a bounded time even to read the message; oversized variables fail
# the touch; file: output is 0600 and a write error (disk full) or a
# failing standard output exits 3 with nothing lost or left claimed.
. "$(dirname "$0")/../lib.sh"
. "$FIXTURES/tag/helpers.sh"
. "$FIXTURES/sop/helpers.sh"
RECV="$FIXTURES/send/recv.py"
export TZ=Asia/Shanghai
umask 022

# state DB WHO: the person's touch states "state;state" by id.
state() { sq "$1" "SELECT group_concat(state, ';') FROM (SELECT state FROM touch WHERE pid = $(pid_of "$1" "$2") ORDER BY id)"; }
recs_pids() { python3 -c 'import json, sys; print(len({json.loads(l)["pid"] for l in open(sys.argv[1])}))' "$1"; }

cat >r.rules <<'EOF2'
timezone Asia/Shanghai
tag carted when count('add_cart', '7d') > 0
tag buyer when orders >= 1
sop one
  trigger carted
  exit buyer vip
  step 0d 12:00 private hi
end
sop camp
  trigger campaign
  step 0d 12:00 private camp_hi
end
content hi private "hi {{nickname|亲}}"
content camp_hi private "camp"
policy
  quiet 22:00-08:00
  dnd tag unsubscribed
end
EOF2

# === converted after a last step was queued ====================================
# Each SOP has one step, so smr-sop-due completes the enrollment as it
# queues it. A1 orders before the send; A2's touch is deferred by quiet
# hours, then A2 orders; A3 enters the exit tag vip by hand and leaves it
# again; A4 leaves the trigger campaign (on_leave exit); A5 does nothing.
{
	for u in A1 A2 A3 A4 A5; do ev "c$u" add_cart 2026-11-02T09:00:00+08:00 "$u"; done
} >a.ndjson
ingest "converted" a.db r.rules a.ndjson
tag --db a.db --rules r.rules --now 2026-11-02T09:05:00+08:00
printf '{"unionid":"A4","tag":"campaign"}\n' >camp.set
tagin camp.set --db a.db --rules r.rules --now 2026-11-02T09:05:00+08:00 --set
due --db a.db --rules r.rules --now 2026-11-02T12:00:00+08:00
eq "converted: six touches queued, every enrollment completed by smr-sop-due" "6 6" \
	"$(nrows a.db touch "state = 'queued'") $(nrows a.db enrollment "state = 'completed'")"
cp "$T/sout" a.touches
grep '"unionid":"A2"' a.touches >a2.in
sendin a2.in --db a.db --rules r.rules --now 2026-11-02T22:30:00+08:00 --transport file:a.out
eq "converted: A2 deferred by quiet hours to 08:00" "A2 deferred" "$(res who result)"
ev oA1 order 2026-11-02T12:30:00+08:00 A1 ',"amount":"9.90"' >a2.ndjson
ev oA2 order 2026-11-02T23:00:00+08:00 A2 ',"amount":"9.90"' >>a2.ndjson
ingest "converted orders" a.db r.rules a2.ndjson
tag --db a.db --rules r.rules --now 2026-11-02T23:05:00+08:00
printf '{"unionid":"A3","tag":"vip"}\n' >vip.set
tagin vip.set --db a.db --rules r.rules --now 2026-11-02T23:06:00+08:00 --set
tagin vip.set --db a.db --rules r.rules --now 2026-11-02T23:07:00+08:00 --unset
tagin camp.set --db a.db --rules r.rules --now 2026-11-02T23:07:00+08:00 --unset
# no smr-sop-due run in between (it would end these enrollments itself,
# see sop-trust.sh): smr-send alone must see the exits
eq "converted: the enrollments are still completed" 6 "$(nrows a.db enrollment "state = 'completed'")"
snd --db a.db --rules r.rules --now 2026-11-03T08:05:00+08:00 --queued --transport file:a.out
xs="$(res who sop result reason | tr ';' '\n' | sort | paste -sd';')"
eq "converted: A1, A2 (bought), A3 (vip entered and left) suppressed, A4 left campaign; A5 sent" \
	"A1 one suppressed converted: entered buyer after day 0;A2 one suppressed converted: entered buyer after day 0;A3 one suppressed converted: entered vip after day 0;A4 camp suppressed left campaign;A4 one sent -;A5 one sent -" "$xs"
eq "converted: only A4's and A5's messages delivered" "2" "$(lines a.out)"

# === decisions at the claim, not at the start of the run =======================
# B1..B4 each have a touch at 12:00. The exec: command, while it delivers
# B1's, marks B2 unsubscribed and gives B3 the exit tag buyer; B4 is
# untouched. B2 and B3 are claimed after that: both suppressed.
for u in B1 B2 B3 B4; do ev "c$u" add_cart 2026-11-02T09:00:00+08:00 "$u"; done >b.ndjson
ingest "claim-time" b.db r.rules b.ndjson
tag --db b.db --rules r.rules --now 2026-11-02T09:05:00+08:00
due --db b.db --rules r.rules --now 2026-11-02T12:00:00+08:00
N12=$(ep 2026-11-02T12:00:00+08:00)
cat >slow.sh <<EOF2
#!/bin/sh
cat >>"$T/slow.log"
echo >>"$T/slow.log"
if [ ! -e "$T/slow.done" ]; then
	: >"$T/slow.done"
	sqlite3 -cmd '.timeout 10000' "$T/b.db" "INSERT INTO tag(pid, tag, since, source) VALUES
	 ($(pid_of b.db B2), 'unsubscribed', $N12, 'manual'), ($(pid_of b.db B3), 'buyer', $N12, 'rule')" || exit 9
	sleep 1
fi
exit 0
EOF2
chmod +x slow.sh
snd --db b.db --rules r.rules --now 2026-11-02T12:00:00+08:00 --queued --transport "exec:$T/slow.sh"
xstatus "claim-time: exit 0" 0
eq "claim-time: B2 (unsubscribed meanwhile) and B3 (bought meanwhile) suppressed; B1 and B4 sent" \
	"B1 sent -;B2 suppressed do not disturb: tag unsubscribed;B3 suppressed converted: entered buyer after day 0;B4 sent -" \
	"$(res who result reason)"
eq "claim-time: the command ran for B1 and B4 only" 2 "$(grep -c '"touch"' slow.log)"

# === without --now, the clock per claim ============================================
# Times relative to the real clock, in UTC: C1's and C2's touches are due
# five minutes ago; the command takes 2 s each. C2's claim and sent_at
# come after C1's delivery, not at the run's start.
read -r T0 STEP DAY <<<"$(python3 -c '
import time
now = int(time.time()); t0 = now - 600; st = now - 300
d0 = time.gmtime(t0); ds = time.gmtime(st)
days = (time.mktime(ds[:3] + (0, 0, 0, 0, 0, 0)) - time.mktime(d0[:3] + (0, 0, 0, 0, 0, 0))) // 86400
print(t0, time.strftime("%H:%M", ds), int(days))')"
sed -e 's/^timezone .*/timezone UTC/' -e '/^  quiet /d' -e "s/step 0d 12:00 private hi/step ${DAY}d $STEP private hi/" r.rules >c.rules
for u in C1 C2; do ev "c$u" add_cart "@$((T0 - 60))" "$u"; done | sed 's/"ts":"@\([0-9]*\)"/"ts":\1/' >c.ndjson
ingest "clock" c.db c.rules c.ndjson
tag --db c.db --rules c.rules --now "$T0"
due --db c.db --rules c.rules --now "$((T0 + 360))"
eq "clock: two touches queued" 2 "$(nrows c.db touch "state = 'queued'")"
start=$(date +%s)
TZ=UTC snd --db c.db --rules c.rules --queued --transport "exec:python3 $RECV $T/c.log 0 2 $T/c.pid"
eq "clock: both sent" "C1 sent;C2 sent" "$(res who result)"
eq "clock: C2 claimed after C1's delivery (2 s), both sent_at after the run's start" "1 1 1" "$(sq c.db "SELECT
 (b.claimed_at >= a.sent_at) || ' ' || (b.sent_at - a.sent_at >= 2) || ' ' || (a.claimed_at >= $start)
 FROM touch a, touch b WHERE a.pid = $(pid_of c.db C1) AND b.pid = $(pid_of c.db C2)")"

# === stale claims: pid reuse and the age limit ====================================
# D1..D4's touches are set claimed on this host by this shell's pid
# (alive): D1 with another start time (the pid was reused), D2 with the
# right one a minute ago (at work), D3 with the right one two hours ago
# (stale), D4 in the old host:pid form a minute ago.
for u in D1 D2 D3 D4; do ev "c$u" add_cart 2026-11-02T09:00:00+08:00 "$u"; done >d.ndjson
ingest "stale" d.db r.rules d.ndjson
tag --db d.db --rules r.rules --now 2026-11-02T09:05:00+08:00
due --db d.db --rules r.rules --now 2026-11-02T12:00:00+08:00
HOST=$(hostname | cut -d: -f1)
ME=$(python3 -c '
import sys
f = open("/proc/%s/stat" % sys.argv[1]).read().rsplit(")", 1)[1].split()
boot = open("/proc/sys/kernel/random/boot_id").read().split("-")[0].strip()
print("%s-%s" % (f[19], boot))' $$)
check "setup: touches claimed by this host" sq d.db "UPDATE touch SET state = 'claimed', claimed_at = $((N12 - 60)), claimed_by = '$HOST:$$:1-feed' WHERE pid = $(pid_of d.db D1);
UPDATE touch SET state = 'claimed', claimed_at = $((N12 - 60)), claimed_by = '$HOST:$$:$ME' WHERE pid = $(pid_of d.db D2);
UPDATE touch SET state = 'claimed', claimed_at = $((N12 - 7200)), claimed_by = '$HOST:$$:$ME' WHERE pid = $(pid_of d.db D3);
UPDATE touch SET state = 'claimed', claimed_at = $((N12 - 60)), claimed_by = '$HOST:$$' WHERE pid = $(pid_of d.db D4)"
snd --db d.db --rules r.rules --now 2026-11-02T12:00:00+08:00 --queued --transport file:d.out
eq "stale: D1 (pid reused) and D3 (claimed two hours ago) unknown; D2 and D4 left to their live sender" \
	"1|D1 unknown;D3 unknown|D1 unknown;D2 claimed;D3 unknown;D4 claimed" \
	"$XRC|$(res who result)|$(for u in D1 D2 D3 D4; do printf '%s %s;' $u "$(state d.db $u)"; done | sed 's/;$//')"

# === exec: no secrets in the command's environment ==================================
for u in F1; do ev "c$u" add_cart 2026-11-02T09:00:00+08:00 "$u"; done >f.ndjson
ingest "env" f.db r.rules f.ndjson
tag --db f.db --rules r.rules --now 2026-11-02T09:05:00+08:00
due --db f.db --rules r.rules --now 2026-11-02T12:00:00+08:00
SMR_HASH_KEY=hk-secret-1 MY_API_KEY=ak-secret-2 GITHUB_TOKEN=gt-secret-3 SMR_WEBHOOK_SECRET=ws-secret-4 \
	DB_PASSWORD=pw-secret-5 aws_credential_file=cf-secret-6 SMR_PLAIN=plain-visible \
	snd --db f.db --rules r.rules --now 2026-11-02T12:00:00+08:00 --queued --transport exec:env
eq "env: the command ran and the touch was sent" "0 F1 sent" "$XRC $(res who result)"
check "env: the command saw the ordinary variables (SMR_PLAIN, PATH)" grep -q '^SMR_PLAIN=plain-visible$' "$T/xerr"
eq "env: none of the secrets reached it" "" "$(grep -o 'secret-[0-9]' "$T/xerr" | paste -sd' ')"

# === file: is private; a write error keeps the touch for later =======================
for u in G1 G2; do ev "c$u" add_cart 2026-11-02T09:00:00+08:00 "$u"; done >g.ndjson
ingest "file" g.db r.rules g.ndjson
tag --db g.db --rules r.rules --now 2026-11-02T09:05:00+08:00
due --db g.db --rules r.rules --now 2026-11-02T12:00:00+08:00
snd --db g.db --rules r.rules --now 2026-11-02T12:00:00+08:00 --queued --limit 1 --transport file:g.out
eq "file: created mode 0600 under umask 022" "0 600" "$XRC $(stat -c %a g.out)"
check "file: the claim names this run as host:pid:start ($(sq g.db "SELECT claimed_by FROM touch WHERE state = 'sent'"))" \
	test "$(sq g.db "SELECT count(*) FROM touch WHERE state = 'sent' AND claimed_by GLOB '$(hostname | cut -d: -f1):[0-9]*:[0-9]*-*'")" = 1
snd --db g.db --rules r.rules --now 2026-11-02T12:00:00+08:00 --queued --transport file:/dev/full
xstatus "file: disk full: exit 3" 3
check "file: disk full: named on stderr" grep -q 'No space left on device' "$T/xerr"
eq "file: disk full: G2's touch left queued with the reason, nothing printed" \
	"queued|/dev/full: No space left on device|" \
	"$(state g.db G2)|$(sq g.db "SELECT reason FROM touch WHERE pid = $(pid_of g.db G2)")|$(cat "$T/xout")"
snd --db g.db --rules r.rules --now 2026-11-02T12:01:00+08:00 --queued --transport file:g.out
eq "file: a later run sends it" "0 G2 sent 2" "$XRC $(res who result) $(lines g.out)"

# === standard output fails after a claim ============================================
# exec: claims one touch at a time: H1 is delivered, H2 claimed with H1's
# outcome, then printing H1's result fails. file: claims a batch: all of
# it is delivered and recorded before the results are printed.
for u in H1 H2 H3 H4; do ev "c$u" add_cart 2026-11-02T09:00:00+08:00 "$u"; done >h.ndjson
ingest "stdout" h.db r.rules h.ndjson
tag --db h.db --rules r.rules --now 2026-11-02T09:05:00+08:00
due --db h.db --rules r.rules --now 2026-11-02T12:00:00+08:00
grep -E '"unionid":"H[12]"' "$T/sout" >h12.in
grep -E '"unionid":"H[34]"' "$T/sout" >h34.in
"$SEND" --db h.db --rules r.rules --now 2026-11-02T12:00:00+08:00 --transport "exec:python3 $RECV $T/h.log 0" \
	<h12.in >/dev/full 2>h.err
rc=$?
no_sanitizer "stdout /dev/full" h.err
eq "stdout full: exit 3, named" "3 1" "$rc $(grep -c '^smr-send: stdout' h.err)"
eq "stdout full: H1 delivered and recorded sent; H2 queued again, not claimed" "sent queued 1" \
	"$(state h.db H1) $(state h.db H2) $(lines h.log)"
sendin h12.in --db h.db --rules r.rules --now 2026-11-02T12:01:00+08:00 --transport "exec:python3 $RECV $T/h.log 0"
eq "stdout full: the next run sends H2 (no unknown)" "0 H2 sent 2" "$XRC $(res who result) $(lines h.log)"
"$SEND" --db h.db --rules r.rules --now 2026-11-02T12:00:00+08:00 --transport file:h.out <h34.in >/dev/full 2>h.err
eq "stdout full, file: exit 3; H3 and H4 delivered once and recorded sent, nothing claimed" "3 sent sent 2" \
	"$? $(state h.db H3) $(state h.db H4) $(lines h.out)"

# === exec: the timeout covers writing the message; variables are capped =============
# J1's message is about 70 KB (70 x a 1000-byte nickname), more than a
# pipe holds, to a command that never reads it. J2's nickname is 1500
# bytes: over the 1024-byte limit.
cat >j.rules <<'EOF2'
timezone Asia/Shanghai
tag carted when count('add_cart', '7d') > 0
sop one
  trigger carted
  step 0d 12:00 private big
end
EOF2
printf 'content big private "%s"\n' "$(printf '{{nickname}}%.0s' $(seq 70))" >>j.rules
{
	ev pJ1 profile 2026-11-02T08:00:00+08:00 J1 ",\"props\":{\"nickname\":\"$(printf 'x%.0s' $(seq 1000))\"}"
	ev pJ2 profile 2026-11-02T08:00:00+08:00 J2 ",\"props\":{\"nickname\":\"$(printf 'y%.0s' $(seq 1500))\"}"
	for u in J1 J2; do ev "c$u" add_cart 2026-11-02T09:00:00+08:00 "$u"; done
} >j.ndjson
ingest "exec write" j.db j.rules j.ndjson
tag --db j.db --rules j.rules --now 2026-11-02T09:05:00+08:00
due --db j.db --rules j.rules --now 2026-11-02T12:00:00+08:00
grep '"unionid":"J1"' "$T/sout" >j1.in
grep '"unionid":"J2"' "$T/sout" >j2.in
t0=$(date +%s)
SMR_EXEC_TIMEOUT_MS=500 sendin j1.in --db j.db --rules j.rules --now 2026-11-02T12:00:00+08:00 --transport "exec:sleep 20"
took=$(($(date +%s) - t0))
check "exec write: a command that does not read a large message is killed on time (${took}s)" test "$took" -lt 10
eq "exec write: failed, timed out, exit 1" "1 failed 1" "$XRC $(res result) $(grep -c 'timed out' "$T/xout")"
sendin j2.in --db j.db --rules j.rules --now 2026-11-02T12:00:00+08:00 --transport "exec:cat"
eq "variable cap: a 1500-byte nickname fails the touch, naming it" \
	'1 failed variable "nickname" is 1500 bytes, over the limit of 1024' "$XRC $(res result reason)"

# === a queue longer than the window ===================================================
# 1100 persons with two touches each (2200, over four windows of 512):
# every touch is taken once, in order of person, the higher priority
# first (cap any 1/day: it is the one sent); from standard input and
# --queued alike, and --limit stops across a window boundary.
cat >w.rules <<'EOF2'
timezone Asia/Shanghai
tag carted when count('add_cart', '7d') > 0
sop low
  trigger carted
  step 0d 12:00 moments lo
end
sop high
  trigger carted
  priority 5
  step 0d 12:00 private hi
end
content lo moments "lo"
content hi private "hi"
policy
  cap any 1/day
end
EOF2
for i in $(seq 1001 2100); do ev "c$i" add_cart 2026-11-02T09:00:00+08:00 "W$i"; done >w.ndjson
ingest "window" w.db w.rules w.ndjson
tag --db w.db --rules w.rules --now 2026-11-02T09:05:00+08:00
due --db w.db --rules w.rules --now 2026-11-02T12:00:00+08:00
dbcopy w.db w2.db
dbcopy w.db w3.db
cp "$T/sout" w.in
# wcheck NAME FILE: results each touch once, persons in order, per person
# high sent then low deferred.
wcheck() {
	eq "$1" "ok" "$(python3 - "$2" <<'PY'
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1])]
ids = [r["touch"] for r in rs]
pids = [r["pid"] for r in rs]
bad = []
if len(ids) != len(set(ids)): bad.append("a touch twice")
if pids != sorted(pids): bad.append("persons out of order")
by = {}
for r in rs: by.setdefault(r["pid"], []).append(r["sop"] + ":" + r["result"])
wrong = [p for p, v in by.items() if v != ["high:sent", "low:deferred"]]
if wrong: bad.append("%d persons not high:sent, low:deferred, e.g. %s" % (len(wrong), by[wrong[0]]))
print("; ".join(bad) or ("ok" if len(rs) == 2200 else "%d results" % len(rs)))
PY
)"
}
snd --db w.db --rules w.rules --now 2026-11-02T12:00:00+08:00 --queued --transport file:w.out
cp "$T/xout" w.res
wcheck "window --queued: 2200 results, each touch once, by person, high priority first" w.res
eq "window --queued: 1100 messages, one per person" "1100 1100" "$(lines w.out) $(recs_pids w.out)"
sendin w.in --db w2.db --rules w.rules --now 2026-11-02T12:00:00+08:00 --transport file:w2.out
cp "$T/xout" w2.res
wcheck "window stdin: the same" w2.res
snd --db w3.db --rules w.rules --now 2026-11-02T12:00:00+08:00 --queued --limit 700 --transport file:w3.out
cp "$T/xout" w3a.res
snd --db w3.db --rules w.rules --now 2026-11-02T12:00:00+08:00 --queued --transport file:w3.out
cat w3a.res "$T/xout" >w3.res
eq "window --limit 700: 700 results, then the other 1500" "700 1500" "$(lines w3a.res) $(lines "$T/xout")"
wcheck "window --limit 700 then the rest: the same" w3.res

finish
