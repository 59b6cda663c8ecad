#!/usr/bin/env bash
# The rules file for smr-ingest: identity lines override the built-in
# limits and priorities, declare new kinds; timezone; errors exit 2 with
# file:line:col and do nothing.
. "$(dirname "$0")/../lib.sh"

# --- identity cookie_id max 2 -------------------------------------------------
for i in 1 2 3 4; do printf '{"id":"k%d","type":"view","ts":%d,"unionid":"u1","cookie_id":"ck%d"}\n' "$i" "$i" "$i"; done >cookies.ndjson
run --db default.db cookies.ndjson
summary "built-in cookie_id max 5: four cookies attach, no conflict" "4 4 0 0 1 0 0"
eq "built-in: u1 holds 4 cookies" 4 "$(sq default.db "SELECT count(*) FROM identity WHERE kind = 'cookie_id'")"

printf '# a comment\nidentity cookie_id max 2   # shared devices\n' >c2.rules
run --db c2.db --rules c2.rules cookies.ndjson
status "rules cookie_id max 2: exit 0" 0
summary "rules cookie_id max 2: two conflicts" "4 4 0 0 1 0 2"
eq "rules cookie_id max 2: u1 holds 2 cookies" "ck1 ck2" "$(sq c2.db "SELECT value FROM identity WHERE kind = 'cookie_id' ORDER BY value" | tr '\n' ' ' | sed 's/ $//')"
eq "rules cookie_id max 2: the others logged in conflict_log" "ck3 ck4" "$(sq c2.db "SELECT value FROM conflict_log ORDER BY value" | tr '\n' ' ' | sed 's/ $//')"
eq "rules cookie_id max 2: every event still on u1's person" 4 "$(sq c2.db "SELECT count(*) FROM event WHERE pid = (SELECT pid FROM identity WHERE value = 'u1')")"

# Two persons sharing a device: with max 2 a cookie held by a full person
# does not merge them.
printf '%s\n' '{"id":"a","type":"view","ts":1,"unionid":"ua","cookie_id":"x1"}' \
	'{"id":"b","type":"view","ts":1,"unionid":"ua","cookie_id":"x2"}' \
	'{"id":"c","type":"view","ts":1,"member_id":"mb","cookie_id":"x3"}' \
	'{"id":"d","type":"view","ts":1,"member_id":"mb","cookie_id":"x1"}' >share.ndjson
run --db share.db --rules c2.rules share.ndjson
summary "rules cookie_id max 2: a cookie seen with two persons links both, no merge" "4 4 0 0 2 0 0"
eq "rules cookie_id max 2: x1 links both persons" 2 "$(sq share.db "SELECT count(*) FROM identity WHERE value = 'x1'")"
run --db share5.db share.ndjson
summary "built-in cookie_id shared 5: a shareable cookie never merges" "4 4 0 0 2 0 0"

# --- a declared kind with priority and max ------------------------------------
printf '%s\n' '{"id":"w1","type":"view","ts":1,"ids":{"weibo_uid":"wb1"},"phone":"13600000000"}' \
	'{"id":"w2","type":"order","ts":2,"ids":{"weibo_uid":"wb2"},"phone":"13600000000","amount":"8.80"}' \
	'{"id":"w3","type":"view","ts":3,"weibo_uid":"wb2"}' >weibo.ndjson
run --db nw.db weibo.ndjson
status "undeclared kind in ids: exit 1" 1
check "undeclared kind in ids: reason names weibo_uid" has_line "$T/err" '^smr-ingest: weibo\.ndjson:1: .*weibo_uid'
eq "undeclared kind in ids: all 3 rejected (w3 then has no identifier)" 3 "$(field rejected)"

printf 'identity weibo_uid priority 3 max 1\n' >weibo.rules
run --db w.db --rules weibo.rules weibo.ndjson
status "declared weibo_uid: exit 0" 0
summary "declared weibo_uid: two persons, one conflict" "3 3 0 0 2 0 1"
eq "weibo_uid stored as an identity kind" 2 "$(sq w.db "SELECT count(*) FROM identity WHERE kind = 'weibo_uid'")"
eq "weibo_uid max 1: wb1 and wb2 on different persons" 2 "$(sq w.db "SELECT count(DISTINCT pid) FROM identity WHERE kind = 'weibo_uid'")"
eq "weibo_uid priority 3 beats phone (4): w2 goes to wb2's person" \
	"$(sq w.db "SELECT pid FROM identity WHERE value = 'wb2'")" "$(sq w.db "SELECT pid FROM event WHERE id = 'w2'")"
eq "the phone stays with wb1's person" "$(sq w.db "SELECT pid FROM identity WHERE value = 'wb1'")" \
	"$(sq w.db "SELECT pid FROM identity WHERE kind = 'phone'")"
eq "conflict_log: the phone held by wb1's person" "w2|phone|13600000000" "$(sq w.db "SELECT event_id, kind, value FROM conflict_log")"
eq "a declared kind works as a flat field: w3 on wb2's person" \
	"$(sq w.db "SELECT pid FROM identity WHERE value = 'wb2'")" "$(sq w.db "SELECT pid FROM event WHERE id = 'w3'")"
# With a low priority the phone wins instead.
printf 'identity weibo_uid priority 9 max 1\n' >weibo9.rules
run --db w9.db --rules weibo9.rules weibo.ndjson
eq "weibo_uid priority 9 loses to phone (4): w2 goes to wb1's person" \
	"$(sq w9.db "SELECT pid FROM identity WHERE value = 'wb1'")" "$(sq w9.db "SELECT pid FROM event WHERE id = 'w2'")"

# --- where the rules come from --------------------------------------------------
SMR_RULES=$T/c2.rules "$ING" --db env.db cookies.ndjson >"$T/out" 2>"$T/err"
summary "\$SMR_RULES is read" "4 4 0 0 1 0 2"
mkdir -p cwd && cp c2.rules cwd/smr.rules && cp cookies.ndjson cwd/
(cd cwd && "$ING" --db cwd.db cookies.ndjson >"$T/out" 2>"$T/err")
summary "./smr.rules is read by default" "4 4 0 0 1 0 2"

# --- timezone -----------------------------------------------------------------------
echo '{"id":"t1","type":"view","ts":"2026-11-20 12:15","unionid":"ut"}' >naive.ndjson
run --db tz1.db naive.ndjson
eq "naive time in the default zone Asia/Shanghai" 1795148100 "$(sq tz1.db "SELECT ts FROM event")"
echo 'timezone UTC' >utc.rules
run --db tz2.db --rules utc.rules naive.ndjson
eq "naive time with 'timezone UTC'" 1795176900 "$(sq tz2.db "SELECT ts FROM event")"
echo 'timezone America/New_York' >ny.rules
run --db tz3.db --rules ny.rules naive.ndjson
eq "naive time with 'timezone America/New_York' (EST, -05:00)" 1795194900 "$(sq tz3.db "SELECT ts FROM event")"

# --- errors: exit 2, file:line:col, nothing done ------------------------------------
rules_error() { # NAME RULES-TEXT EXPECTED-PREFIX-ERE
	printf '%s' "$2" >bad.rules
	rm -f bad.db
	run --db bad.db --rules bad.rules cookies.ndjson
	if [ "$RC" = 2 ] && grep -qE "^smr-ingest: bad\.rules:$3" "$T/err" && [ ! -s "$T/out" ] && [ ! -e bad.db ]; then
		ok "bad rules: $1"
	else
		fail "bad rules: $1" "status $RC, stdout '$(cat "$T/out")', db exists: $([ -e bad.db ] && echo yes || echo no), stderr: $(cat "$T/err")"
	fi
}
rules_error "unknown keyword at 2:3 exits 2, no db" $'identity phone max 1\n  frobnicate x\n' '2:3: '
rules_error "misspelt option at 1:16" $'identity phone maxx 3\n' '1:16: '
rules_error "negative max at 3:24" $'# c\n\nidentity cookie_id max -1\n' '3:24: '
rules_error "max without a number" $'identity phone max\n' '1:[0-9]+: '
rules_error "identity without a kind" $'identity\n' '1:1: '
rules_error "invalid kind name at 1:10" $'identity Bad-Kind\n' '1:10: '
rules_error "unknown time zone at 1:10" $'timezone Mars/Olympus_Mons\n' '1:10: '
rules_error "identity named after a core field (amount)" $'identity amount max 1\n' '1:10: '
rules_error "identity named pid" $'identity pid\n' '1:10: '
rules_error "sop block without end at its first line" $'identity phone max 1\nsop s1\n  trigger x\n' '2:1: '

# A line has no word limit: every word counts, however many come before it.
many=$(for i in $(seq 40); do printf ' priority 3'; done)
rules_error "a misspelt option after the 64th word is still an error" "identity phone$many maxx 3"$'\n' '1:[0-9]+: expected'
printf 'identity weibo_uid%s max 1\n' "$many" >longline.rules
run --db long.db --rules longline.rules weibo.ndjson
status "an identity line of 84 words: exit 0" 0
summary "an identity line of 84 words: its last word, max 1, applies" "3 3 0 0 2 0 1"
{ printf 'identity member_id block'; for i in $(seq 200); do printf ' "ph%d"' "$i"; done; echo; } >longblock.rules
printf '%s\n' '{"id":"b1","type":"view","ts":1,"unionid":"ub1","member_id":"ph200"}' \
	'{"id":"b2","type":"view","ts":1,"unionid":"ub2","member_id":"ph200"}' >ph.ndjson
run --db lb.db --rules longblock.rules ph.ndjson
summary "a block list of 200 values: the 200th is a placeholder too (no merge)" "2 2 0 0 2 0 0"

rm -f none.db
run --db none.db --rules does-not-exist.rules cookies.ndjson
status "--rules with a missing file: exit 2" 2
check "--rules with a missing file: named on stderr" has_line "$T/err" '^smr-ingest: does-not-exist\.rules'
check "--rules with a missing file: no database created" test ! -e none.db
SMR_RULES=$T/does-not-exist.rules "$ING" --db none.db cookies.ndjson >"$T/out" 2>"$T/err"
RC=$?
status "\$SMR_RULES naming a missing file: exit 2" 2

finish
