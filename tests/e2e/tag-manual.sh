#!/usr/bin/env bash
# smr-tag --set / --unset: manual tags by unionid, phone (any format) and
# pid; rejected records; rules never remove manual tags; an unset rule tag
# comes back while its condition holds.
. "$(dirname "$0")/../lib.sh"
. "$FIXTURES/tag/helpers.sh"

cat >m.rules <<'EOF'
ladder purchase: never_bought first_purchase
tag never_bought   when orders = 0
tag first_purchase when orders >= 1
tag cart_A         when count('add_cart', '7d', 'SKU-A') > 0
EOF
{
	ev m1-1 view 2026-11-01T10:00:00+08:00 uM1 ',"phone":"13800138000"'
	ev m2-1 order 2026-11-01T10:00:00+08:00 uM2 ',"member_id":"M2","amount":"9.90"'
	ev m3-1 add_cart 2026-11-01T10:00:00+08:00 uM3 ',"item":"SKU-A"'
} >m1.ndjson
ingest "manual" m.db m.rules m1.ndjson
tag --db m.db --rules m.rules --now 2026-11-01T12:00:00+08:00
eq "rules run: initial tags" "uM1 never_bought add;uM2 first_purchase add;uM3 never_bought add;uM3 cart_A add" "$(changes)"
P1=$(pid_of m.db uM1)
P2=$(pid_of m.db uM2)
P3=$(pid_of m.db uM3)
NOW=2026-11-01T13:00:00+08:00
NOWS=$(ep $NOW)

# --- --set ------------------------------------------------------------------
{
	echo '{"unionid":"uM1","tag":"vip"}'
	echo '{"phone":"+86 138-0013-8000","tag":"vip_phone"}'
	echo "{\"pid\":$P2,\"tag\":\"vip\"}"
	echo '{"unionid":"nobody","tag":"vip"}'
	echo 'this is not json'
	echo "{\"pid\":$P3,\"tag\":\"cart_A\"}"
	echo '{"unionid":"uM1","tag":"cart_A"}'
	echo '{"member_id":"M2","tag":"bad tag"}'
	echo '{"tag":"vip"}'
	echo '{"pid":999999,"tag":"vip"}'
	echo '{"member_id":"M2","tag":"会员"}'
} >set1.ndjson
logn=$(sq m.db "SELECT count(*) FROM tag_log")
tagin set1.ndjson --db m.db --rules m.rules --now $NOW --set
tstatus "--set with rejected records: exit 1" 1
eq "--set: records for the accepted lines (unionid, phone in another format, pid, member_id)" \
	"uM1 vip add;uM1 vip_phone add;uM2 vip add;uM1 cart_A add;uM2 会员 add" "$(changes)"
eq "--set: rejected lines named on stderr as smr-tag: <stdin>:LINE:" "4 5 8 9 10" \
	"$(sed -n 's/^smr-tag: <stdin>:\([0-9]*\): .*/\1/p' "$T/terr" | tr '\n' ' ' | sed 's/ $//')"
check "--set: unknown unionid: 'smr-tag: <stdin>:4: no such person'" has_line "$T/terr" '^smr-tag: <stdin>:4: no such person$'
check "--set: malformed line: 'smr-tag: <stdin>:5: malformed JSON ...'" has_line "$T/terr" '^smr-tag: <stdin>:5: .*(JSON|json)'
check "--set: unknown pid: 'smr-tag: <stdin>:10: no such person'" has_line "$T/terr" '^smr-tag: <stdin>:10: no such person$'
eq "--set: nothing but the rejects on stderr" 5 "$(wc -l <"$T/terr")"
# source manual, rule <stdin>:LINE, at = --now, the person's main identifiers
test_cmp "--set records whole" "$FIXTURES/tag/manual-set.ndjson" "$T/tout"
eq "--set: the tag table holds the manual tags with since = --now" \
	"$P1 cart_A manual $NOWS|$P1 vip manual $NOWS|$P1 vip_phone manual $NOWS|$P2 vip manual $NOWS|$P2 会员 manual $NOWS" \
	"$(sq m.db "SELECT group_concat(pid || ' ' || tag || ' ' || source || ' ' || since, '|') FROM (SELECT * FROM tag WHERE source = 'manual' AND NOT (pid = $P3 AND tag = 'cart_A') ORDER BY pid, tag)")"
eq "--set on a tag a rule gave makes it manual, keeping since" "manual $(ep 2026-11-01T12:00:00+08:00)" \
	"$(sq m.db "SELECT source || ' ' || since FROM tag WHERE pid = $P3 AND tag = 'cart_A'")"
eq "--set: tag_log has the 5 manual adds" "5 manual" \
	"$(sq m.db "SELECT count(*) || ' ' || group_concat(DISTINCT source) FROM tag_log WHERE seq > (SELECT max(seq) - 5 FROM tag_log)")"
eq "--set: tag_log grew by exactly 5" $((logn + 5)) "$(sq m.db "SELECT count(*) FROM tag_log")"

# setting again changes nothing
tagin set1.ndjson --db m.db --rules m.rules --now 2026-11-01T13:30:00+08:00 --set
eq "--set again: nothing printed" "" "$(cat "$T/tout")"
eq "--set again: tag_log unchanged" $((logn + 5)) "$(sq m.db "SELECT count(*) FROM tag_log")"
tagin /dev/null --db m.db --rules m.rules --now $NOW --set
tstatus "--set with empty input: exit 0" 0

# --- rules never remove manual tags -------------------------------------------
tag --db m.db --rules m.rules --now 2026-11-20T12:00:00+08:00 --full
eq "rules run 19 days later: the manual cart_A tags (windows closed) are not removed" "" "$(cat "$T/tout")"
eq "manual cart_A kept on uM1 (rule never true) and uM3 (rule no longer true)" "$P1 $P3" \
	"$(sq m.db "SELECT group_concat(pid, ' ') FROM (SELECT pid FROM tag WHERE tag = 'cart_A' AND source = 'manual' ORDER BY pid)")"
eq "no rule ever logged removing a manual tag" 0 \
	"$(sq m.db "SELECT count(*) FROM tag_log l WHERE op = 'remove' AND source = 'rule' AND tag IN ('vip', 'vip_phone', 'cart_A', '会员')")"
# The rule becomes true for a manually tagged person: no second add, still manual.
ev m1-2 add_cart 2026-11-20T13:00:00+08:00 uM1 ',"item":"SKU-A"' >m2.ndjson
ingest "manual 2" m.db m.rules m2.ndjson
tag --db m.db --rules m.rules --now 2026-11-20T14:00:00+08:00
eq "rule true for a manual tag: nothing printed" "" "$(cat "$T/tout")"
eq "rule true for a manual tag: still one row, still manual" "1 manual" \
	"$(sq m.db "SELECT count(*) || ' ' || group_concat(source) FROM tag WHERE pid = $P1 AND tag = 'cart_A'")"
tag --db m.db --rules m.rules --now 2026-11-28T14:00:00+08:00 --full
eq "and when the window closes again it stays" "1 manual" \
	"$(sq m.db "SELECT count(*) || ' ' || group_concat(source) FROM tag WHERE pid = $P1 AND tag = 'cart_A'")"

# --- --unset --------------------------------------------------------------------
{
	echo '{"unionid":"uM1","tag":"vip"}'
	echo '{"phone":"138 0013 8000","tag":"vip"}'
	echo "{\"pid\":$P3,\"tag\":\"cart_A\"}"
} >unset1.ndjson
tagin unset1.ndjson --db m.db --rules m.rules --now 2026-11-28T15:00:00+08:00 --unset
tstatus "--unset: exit 0" 0
eq "--unset: one remove per tag actually held (the second line finds it gone)" "uM1 vip remove;uM3 cart_A remove" "$(changes)"
test_cmp "--unset records whole: source manual, at = --now, rule <stdin>:LINE" "$FIXTURES/tag/manual-unset.ndjson" "$T/tout"
eq "--unset: gone from the tag table" "" "$(sq m.db "SELECT tag FROM tag WHERE (pid = $P1 AND tag = 'vip') OR (pid = $P3 AND tag = 'cart_A')")"
eq "--unset: logged as manual removes" "2" \
	"$(sq m.db "SELECT count(*) FROM tag_log WHERE op = 'remove' AND source = 'manual' AND at = $(ep 2026-11-28T15:00:00+08:00)")"
printf '%s\n' '{"unionid":"ghost","tag":"vip"}' '{"unionid":"uM2","tag":"vip"}' >unset2.ndjson
tagin unset2.ndjson --db m.db --rules m.rules --now 2026-11-28T15:00:00+08:00 --unset
tstatus "--unset with an unknown person: exit 1" 1
check "--unset: 'smr-tag: <stdin>:1: no such person'" has_line "$T/terr" '^smr-tag: <stdin>:1: no such person$'
eq "--unset: the good line is still applied" "uM2 vip remove" "$(changes)"

# Unsetting a rule tag whose condition holds: it comes back on the next run.
echo "{\"pid\":$P2,\"tag\":\"first_purchase\"}" >unset3.ndjson
tagin unset3.ndjson --db m.db --rules m.rules --now 2026-11-28T16:00:00+08:00 --unset
eq "--unset of a rule tag: removed" "uM2 first_purchase remove" "$(changes)"
tag --db m.db --rules m.rules --now 2026-11-28T17:00:00+08:00
eq "--unset of a rule tag: the next run gives it back while the condition holds (smr-tag(1))" \
	"uM2 first_purchase add" "$(changes)"
tag --db m.db --rules m.rules --now 2026-11-28T18:00:00+08:00 --full
eq "--unset of a rule tag: by the next --full run at the latest it is back" "first_purchase 会员" "$(tagset m.db uM2)"
eq "and it is a rule tag again" "rule" "$(sq m.db "SELECT source FROM tag WHERE pid = $P2 AND tag = 'first_purchase'")"

# --- option errors ------------------------------------------------------------------
tag --db m.db --rules m.rules --set --unset
tstatus "--set with --unset: usage error, exit 2" 2
tag --db m.db --rules m.rules --set --check
tstatus "--set with --check: usage error, exit 2" 2

finish
