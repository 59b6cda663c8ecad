#!/usr/bin/env bash
# Identity that can be trusted: placeholder values never link anyone, a
# shared device links at most `shared N` persons, rules for both are checked.
. "$(dirname "$0")/../lib.sh"

# Placeholders: real exports are full of "undefined", 0 and 00000000000.
{
	echo '{"id":"p1","type":"view","ts":1,"openid":"undefined","unionid":"u1"}'
	echo '{"id":"p2","type":"view","ts":2,"openid":"undefined","unionid":"u2"}'
	echo '{"id":"p3","type":"view","ts":3,"openid":0,"phone":"00000000000","unionid":"u3"}'
	echo '{"id":"p4","type":"view","ts":4,"openid":"NULL","member_id":"-1","unionid":"u4"}'
	echo '{"id":"p5","type":"view","ts":5,"openid":"undefined"}'
	echo '{"id":"p6","type":"view","ts":6,"phone":"00000","cookie_id":" none "}'
	echo '{"id":"p7","type":"view","ts":7,"openid":"oTEST1","unionid":"u7"}'
	echo '{"id":"p8","type":"view","ts":8,"openid":"otest1","unionid":"u8"}'
} >ph.ndjson
printf 'identity openid block "oTEST1"\n' >ph.rules
run --db ph.db --rules ph.rules --rejects ph.rej ph.ndjson
status "placeholders: records with only placeholders are rejected (exit 1)" 1
summary "placeholders: six stored, two rejected, six persons" "8 6 0 2 6 0 0"
eq "placeholders: no placeholder is stored" "0" "$(sq ph.db "SELECT count(*) FROM identity WHERE kind != 'unionid'")"
eq "placeholders: strangers sharing one stay apart" "6" "$(sq ph.db "SELECT count(DISTINCT pid) FROM event")"
eq "placeholders: each logged as 'blocked value'" "8" "$(sq ph.db "SELECT count(*) FROM conflict_log WHERE reason = 'blocked value'")"
check "placeholders: the reject names the placeholder" has_line "$T/err" 'ph.ndjson:5: no usable identifier: openid "undefined" is a placeholder'
check "placeholders: an all-zero phone is not a phone" has_line "$T/err" 'ph.ndjson:6: no usable identifier: phone "00000"'
eq "placeholders: the rejects file holds the two records" "p5 p6" "$(sed 's/.*"id":"\([^"]*\)".*/\1/' ph.rej | tr '\n' ' ' | sed 's/ $//')"
facts_consistent "placeholders" ph.db

# A family of four on one tablet, known only by OpenIDs (no per-person limit).
{
	echo '{"id":"f0","type":"view","ts":100,"cookie_id":"tablet"}'
	for i in 1 2 3 4; do echo "{\"id\":\"f$i\",\"type\":\"view\",\"ts\":10$i,\"openid\":\"o$i\",\"cookie_id\":\"tablet\"}"; done
	echo '{"id":"f9","type":"view","ts":109,"cookie_id":"tablet"}'
} >fam.ndjson
printf 'identity cookie_id shared 2\n' >fam.rules
run --db fam.db --rules fam.rules fam.ndjson
status "tablet: exit 0" 0
eq "tablet: four OpenIDs are four persons" "4" "$(sq fam.db "SELECT count(DISTINCT pid) FROM identity WHERE kind = 'openid'")"
eq "tablet: shared 2 links the cookie to two persons" "2" "$(sq fam.db "SELECT count(*) FROM identity WHERE value = 'tablet'")"
eq "tablet: two refusals logged" "2" "$(sq fam.db "SELECT count(*) FROM conflict_log WHERE value = 'tablet' AND reason LIKE 'not linked%'")"
eq "tablet: the anonymous visit stays with the first to log in" \
	"$(sq fam.db "SELECT pid FROM identity WHERE value = 'o1'")" "$(sq fam.db "SELECT pid FROM event WHERE id = 'f0'")"
eq "tablet: a later cookie-only visit goes to the person linked last" \
	"$(sq fam.db "SELECT pid FROM identity WHERE value = 'o2'")" "$(sq fam.db "SELECT pid FROM event WHERE id = 'f9'")"
facts_consistent "tablet" fam.db

# A shared value stitches an anonymous visitor who logs in, but brings no
# identifier to someone already known by another kind: the second person
# on a known person's tablet is a newcomer, not them.
{
	echo '{"id":"k1","type":"view","ts":200,"phone":"13800138011","cookie_id":"pad"}'
	echo '{"id":"k2","type":"view","ts":201,"openid":"oK2","cookie_id":"pad"}'
	echo '{"id":"k3","type":"view","ts":202,"cookie_id":"anon"}'
	echo '{"id":"k4","type":"view","ts":203,"openid":"oK4","cookie_id":"anon"}'
} >pad.ndjson
printf 'identity cookie_id shared 3
' >pad.rules
run --db pad.db --rules pad.rules pad.ndjson
status "pad: exit 0" 0
check "pad: an openid seen on a known person's device is a new person" \
	test "$(sq pad.db "SELECT pid FROM identity WHERE value = 'oK2'")" != "$(sq pad.db "SELECT pid FROM identity WHERE value = '13800138011'")"
eq "pad: the device links both" "2" "$(sq pad.db "SELECT count(*) FROM identity WHERE value = 'pad'")"
eq "pad: an anonymous device's person takes the first login" \
	"$(sq pad.db "SELECT pid FROM event WHERE id = 'k3'")" "$(sq pad.db "SELECT pid FROM identity WHERE value = 'oK4'")"
facts_consistent "pad" pad.db

# A merge brings two persons' rungs of a ladder together: the higher one is
# kept (a ladder holds one rung), the lower logged as removed by the merge.
cat >lad.rules <<'R'
ladder purchase: never_bought engaged first_purchase repeat_buyer
tag never_bought   when orders = 0 and count('view', '30d') = 0
tag engaged        when orders = 0 and count('view', '30d') > 0
tag first_purchase when orders = 1
tag repeat_buyer   when orders >= 2
R
{
	echo '{"id":"l1","type":"order","ts":1795000000,"phone":"13800138021","amount":"9.90"}'
	echo '{"id":"l2","type":"view","ts":1795000000,"unionid":"uL2"}'
} >lad1.ndjson
echo '{"id":"l3","type":"view","ts":1795000100,"unionid":"uL2","phone":"13800138021"}' >lad2.ndjson
run --db lad.db --rules lad.rules lad1.ndjson
invoke /dev/null "$T/tout" "$T/terr" "$SMR_BIN/smr-tag" --db lad.db --rules lad.rules --now 1795000050
eq "ladder merge: before, one bought and one engaged" "engaged first_purchase" \
	"$(sq lad.db "SELECT group_concat(tag, ' ') FROM (SELECT tag FROM tag ORDER BY tag)")"
run --db lad.db --rules lad.rules --now 1795000200 lad2.ndjson
summary "ladder merge: the two are merged" "1 1 0 0 0 1 0"
eq "ladder merge: the merged person holds the higher rung only" "first_purchase" \
	"$(sq lad.db "SELECT group_concat(tag, ' ') FROM tag")"
eq "ladder merge: the lower rung's removal is logged" "engaged remove merge 1795000200" \
	"$(sq lad.db "SELECT tag || ' ' || op || ' ' || source || ' ' || at FROM tag_log WHERE source = 'merge'")"

# The rules: shared and block are checked by smr-tag --check.
printf 'identity cookie_id shared 3 max 5\nidentity openid block "a b" "c\\"d"\n' >ok.rules
invoke - "$T/out" "$T/err" "$SMR_BIN/smr-tag" --check --rules ok.rules
status_is "rules: shared and block values pass --check" "$INVOKED" 0 "$T/err"
printf 'identity phone block\nidentity cookie_id shared x\nidentity anon_id block oops\nidentity openid block "x" priority 2\n' >bad.rules
invoke - "$T/out" "$T/err" "$SMR_BIN/smr-tag" --check --rules bad.rules
status_is "rules: bad block and shared fail --check (exit 2)" "$INVOKED" 2 "$T/err"
check "rules: block without a value is named" has_line "$T/err" 'bad.rules:1:16: block needs at least one'
check "rules: shared needs a number" has_line "$T/err" 'bad.rules:2:[0-9]+: shared needs a non-negative integer'
check "rules: an unquoted block value is named" has_line "$T/err" 'bad.rules:3:24: block values are double-quoted'
check "rules: block must come last" has_line "$T/err" 'bad.rules:4:[0-9]+: block values are double-quoted'

finish
