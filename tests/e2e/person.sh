#!/usr/bin/env bash
# smr-person end to end on a hand-made story (the cart_A SOP): look-up by
# kind:value, a bare value (a phone written another way, normalised; a
# hashed phone), pid:N; the record's sections; --explain with the value of
# each part; --why with each step's decision; --table; bad input.
. "$(dirname "$0")/../lib.sh"
. "$FIXTURES/tag/helpers.sh"
. "$FIXTURES/sop/helpers.sh"
PERSON="$SMR_BIN/smr-person"
wrap person personin "$PERSON" pout perr PRC
pstatus() { status_is "$1" "$PRC" "$2" "$T/perr"; }
# out_is NAME FILE: the last output is tests/fixtures/person/FILE; NDJSON
# (FILE *.json) is compared as jq prints it, a field a line.
out_is() {
	if [[ $2 == *.json ]]; then
		jq . "$T/pout" >"$T/pout.cmp" 2>&1
	else
		cp "$T/pout" "$T/pout.cmp"
	fi
	test_cmp "$1" "$FIXTURES/person/$2" "$T/pout.cmp"
}
# js FILTER: jq's FILTER over each record of $T/pout, the results joined by ;
js() { jq -r "$1" "$T/pout" | paste -sd';' -; }

cat >p.rules <<'EOF2'
timezone Asia/Shanghai
identity unionid priority 1 max 1
identity phone priority 2 max 1
tag cart_A         when count('add_cart', '7d', 'SKU-A') > 0 and orders_since('add_cart') = 0
tag first_purchase when orders >= 1
tag big            when spend > 10000 or (orders between 2 and 5 and not tagged('cart_A'))

sop cart_A_followup
  trigger cart_A
  exit first_purchase
  window 7d
  step 0d 20:00 private cart_reminder_A
  step 1d 12:00 moments reviews_A
  step 3d 20:00 private coupon_A
end
content cart_reminder_A private "{{nickname|亲}}，你购物车里的{{item}}还在等你"
content reviews_A moments "看看大家怎么说"
content coupon_A private "{{nickname|亲}}，送你一张券"
EOF2
R=p.rules
# U1 (phone +86 138-0013-8000) and U2 add A to the cart on Monday 11-02;
# U1 orders 99.00 on Tuesday 09:00; U3 never adds anything.
{
	ev u1-1 add_cart 2026-11-02T10:00:00+08:00 U1 ',"item":"SKU-A","phone":"+86 138-0013-8000"'
	ev u2-1 add_cart 2026-11-02T10:00:00+08:00 U2 ',"item":"SKU-A"'
	ev u3-1 view 2026-11-02T10:00:00+08:00 U3
	ev u5-1 view 2026-11-02T10:00:00+08:00 U5
	printf '%s\n' '{"id":"p6-1","type":"view","ts":"2026-11-02T10:00:00+08:00","phone":"13900000006"}'
	ev m-1 view 2026-11-02T11:00:00+08:00 U5 ',"phone":"13900000006"'
} >d1.ndjson
ingest "day 0" p.db $R d1.ndjson
tag --db p.db --rules $R --now 2026-11-02T10:05:00+08:00
ran "day 0 10:05: smr-tag"
due --db p.db --rules $R --now 2026-11-02T10:05:00+08:00
ran "day 0 10:05: smr-sop-due"
due --db p.db --rules $R --now 2026-11-02T20:00:00+08:00
ran "day 0 20:00: smr-sop-due"
snd --db p.db --rules $R --now 2026-11-02T20:00:00+08:00 --queued --transport file:sent.ndjson
ran "day 0 20:00: smr-send"
ev u1-2 order 2026-11-03T09:00:00+08:00 U1 ',"amount":"99.00","item":"SKU-A"' >d2.ndjson
ingest "day 1" p.db $R d2.ndjson
tag --db p.db --rules $R --now 2026-11-03T09:05:00+08:00
ran "day 1 09:05: smr-tag"
due --db p.db --rules $R --now 2026-11-03T09:05:00+08:00
ran "day 1 09:05: smr-sop-due"
P1=$(pid_of p.db U1)
P2=$(pid_of p.db U2)
NOW=2026-11-03T09:05:00+08:00

# === look-up
person --db p.db --rules $R --now $NOW unionid:U1
pstatus "unionid:U1: exit 0" 0
eq "unionid:U1: one record, U1's pid" "$P1" "$(js .pid)"
person --db p.db --rules $R --now $NOW phone:13800138000
eq "phone:13800138000 finds U1" "$P1" "$(js .pid)"
person --db p.db --rules $R --now $NOW "0086 138 0013 8000"
eq "a bare phone written another way is normalised and finds U1" "$P1" "$(js .pid)"
person --db p.db --rules $R --now $NOW U2
eq "a bare unionid finds U2" "$P2" "$(js .pid)"
person --db p.db --rules $R --now $NOW pid:$P2
eq "pid:N finds that person" "$P2" "$(js .pid)"
person --db p.db --rules $R --now $NOW nobody
pstatus "an unknown identifier: exit 1" 1
check "an unknown identifier: named on stderr" grep -q 'nobody: no such person' "$T/perr"
eq "an unknown identifier: nothing on stdout" "" "$(cat "$T/pout")"
person --db p.db --rules $R --now $NOW pid:x
pstatus "pid:x: exit 2" 2
person --db p.db --rules $R --now $NOW phone:abc
pstatus "phone:abc (not a phone number): exit 2" 2
person --db p.db --rules $R --now $NOW
pstatus "no ID: usage, exit 2" 2

# === the record of U1, every section (hand-computed): identities with the
# phone normalised; facts (1 order, spend and net_spend 9900 fen); the tag
# first_purchase since day 1 09:05 by rule; the tag history (cart_A added,
# removed, first_purchase added); the enrollment exited on the order; the
# touch sent, with no reason; the events oldest first; no merges or
# conflicts.
person --db p.db --rules $R --now $NOW unionid:U1
pstatus "record of U1: exit 0" 0
out_is "record of U1: every section, every value" u1.json
person --db p.db --rules $R --now $NOW U5
eq "record: the merge that joined U5 and the phone-only person, with the identifier (merged at ingest time)" \
	"m-1 phone 13900000006" "$(js '[.merges[] | "\(.event_id) \(.kind) \(.value)"] | join(";")')"
person --db p.db --rules $R --now $NOW 13900000006
eq "the merged person's phone finds the survivor" "$(pid_of p.db U5)" "$(js .pid)"
person --db p.db --rules $R --now $NOW --events 1 unionid:U1
eq "--events 1: the latest event only" "order" "$(js '[.events[].type] | join(",")')"

# === --explain: each part's value, hand-computed. U1 ordered: cart_A
# (count(...) > 0 = 1 and orders_since(...) = 0 = 0) is 0, not held; U2 is
# 1, held since day 0 10:05 by rule; big for U1: OR and NOT split,
# BETWEEN ... AND kept whole; U2 nine days on: the window passed (count
# 0), the tag still held as smr-tag has not run, and a note saying so.
person --db p.db --rules $R --now $NOW --explain cart_A unionid:U1
pstatus "--explain cart_A U1: exit 0" 0
out_is "--explain cart_A U1: false, not held, every comparison and call with its value" explain-u1.json
person --db p.db --rules $R --now $NOW --explain cart_A unionid:U2
out_is "--explain cart_A U2: true and held since 10:05 by rule" explain-u2.json
person --db p.db --rules $R --now $NOW --explain big unionid:U1
out_is "--explain big U1: OR, BETWEEN ... AND kept whole, NOT and a call" explain-big-u1.json
person --db p.db --rules $R --now 2026-11-11T09:05:00+08:00 --explain cart_A unionid:U2
out_is "--explain U2 nine days on: the window passed, count is 0, the tag still held (smr-tag not run)" \
	explain-u2-later.json
person --db p.db --rules $R --now $NOW --explain nosuch unionid:U1
pstatus "--explain of an unknown tag: exit 2" 2

# === --why: enrolment, exit, each step's decision. U1 exited on the order:
# step 0 sent, steps 1 and 2 never recorded (step 2 due day 0 + 3d 20:00);
# U2 active, step 1 not yet due; U3 not enrolled, and why.
person --db p.db --rules $R --now $NOW --why cart_A_followup unionid:U1
pstatus "--why U1: exit 0" 0
out_is "--why U1: exited on the order; step 0 sent, steps 1 and 2 never recorded" why-u1.json
person --db p.db --rules $R --now $NOW --why cart_A_followup unionid:U2
out_is "--why U2: active; step 1 not yet due" why-u2.json
person --db p.db --rules $R --now $NOW --why cart_A_followup unionid:U3
out_is "--why U3: not enrolled, and why" why-u3.json
person --db p.db --rules $R --now $NOW --why nosuch unionid:U1
pstatus "--why of an unknown SOP: exit 2" 2

# relative steps (step +30m) are shown as written
cat >rel.rules <<'EOF2'
timezone Asia/Shanghai
tag cart_A when count('add_cart', '7d', 'SKU-A') > 0
sop s
  trigger cart_A
  step +30m private a
  step 1d 12:00 private b
end
content a private "x"
content b private "y"
EOF2
ingest "relative fixture" rel.db rel.rules d1.ndjson
tag --db rel.db --rules rel.rules --now 2026-11-02T10:05:00+08:00
ran "relative fixture: smr-tag"
due --db rel.db --rules rel.rules --now 2026-11-02T10:40:00+08:00
ran "relative fixture: smr-sop-due"
person --db rel.db --rules rel.rules --now 2026-11-02T10:40:00+08:00 --why s U1
out_is "--why with a relative step: +30m queued at day 0 + 30 min, 1d 12:00 not yet due" why-relative.json

# === --table: sections headed, times in local ISO 8601, NULL as -
person --db p.db --rules $R --now $NOW --table unionid:U1
out_is "--table: every section of U1" table-u1.txt
person --db p.db --rules $R --now $NOW --table --explain cart_A unionid:U1
out_is "--table --explain: each part indented by depth with its value" table-explain-u1.txt
person --db p.db --rules $R --now $NOW --table --why cart_A_followup unionid:U1
out_is "--table --why: the exit and each step" table-why-u1.txt

# === a writer holding the lock does not stop a look-up (WAL readers)
{ echo "BEGIN IMMEDIATE;"; echo "DELETE FROM tag;"; sleep 2; echo "ROLLBACK;"; } | sqlite3 p.db &
holder=$!
sleep 0.3
start=$(date +%s)
person --db p.db --rules $R --now $NOW unionid:U1
pstatus "a look-up while another run holds the write lock: exit 0" 0
eq "a look-up while another run holds the write lock: answered at once, from committed data" "1 first_purchase" \
	"$(( $(date +%s) - start < 2 )) $(js '[.tags[].tag] | join(",")')"
wait "$holder"

# === hashed phones: the bare number is normalised, then hashed
sed 's/^identity phone priority 2 max 1$/identity phone priority 2 max 1 hash/' p.rules >h.rules
export SMR_HASH_KEY=0123456789abcdef0123
ingest "hashed" h.db h.rules d1.ndjson
person --db h.db --rules h.rules --now $NOW "+86 13800138000"
eq "hashed phone: a bare number finds U1" "U1" "$(js '.identities[] | select(.kind == "unionid") | .value')"
eq "hashed phone: shown as stored (hashed)" "h:" "$(js '.identities[] | select(.kind == "phone") | .value[:2]')"
unset SMR_HASH_KEY
person --db h.db --rules h.rules --now $NOW phone:13800138000
pstatus "hashed phone without the key: exit 2" 2
check "hashed phone without the key: says so" grep -q 'SMR_HASH_KEY' "$T/perr"
exit $((NFAIL > 0))
