#!/usr/bin/env bash
# smr-tag end to end, driven by --now: the purchase ladder walked day by
# day, the output record, since, idempotence, a changed ladder; windows
# opening and closing as time passes without new events (cart_A, exact
# window edges, a backfill with later-dated events, Chinese keywords with
# said() and REGEXP, coupon expiry, refill cycle), each picked up by an
# incremental run that agrees with --full.
. "$(dirname "$0")/../lib.sh"
. "$FIXTURES/tag/helpers.sh"

# === the purchase ladder, day by day =========================================
# The conditions overlap (a buyer who clicked is engaged and first_purchase,
# a repeat buyer is also first_purchase): the ladder keeps the highest rung.
cat >ladder.rules <<'EOF'
timezone Asia/Shanghai
ladder purchase: never_bought engaged first_purchase repeat_buyer
tag never_bought   when orders = 0 and count('click', '30d') = 0
tag engaged        when count('click', '30d') > 0
tag first_purchase when orders >= 1
tag repeat_buyer   when orders >= 2
EOF
RUNGS="never_bought engaged first_purchase repeat_buyer"
{
	ev l1-1 view 2026-11-01T10:00:00+08:00 L1 ',"phone":"+86 139-0000-0001","openid":"oL1"'
	ev l2-1 view 2026-11-01T10:05:00+08:00 L2
	ev l3-1 click 2026-11-01T10:10:00+08:00 L3
} >d1.ndjson
{
	ev l1-2 click 2026-11-02T10:00:00+08:00 L1
	ev l2-2 order 2026-11-02T10:00:00+08:00 L2 ',"amount":"10.00"'
	ev l2-3 order 2026-11-02T11:00:00+08:00 L2 ',"amount":"20.00"'
} >d2.ndjson
{
	ev l1-3 order 2026-11-03T10:00:00+08:00 L1 ',"amount":"99.00","item":"SKU-A"'
	ev l4-1 order 2026-11-03T10:00:00+08:00 L4 ',"amount":"5.00"'
} >d3.ndjson
ev l1-4 order 2026-11-04T10:00:00+08:00 L1 ',"amount":"99.00"' >d4.ndjson

ingest "ladder day 1" lad.db ladder.rules d1.ndjson
tag --db lad.db --rules ladder.rules --now 2026-11-01T20:00:00+08:00 --stats
tstatus "ladder day 1: exit 0" 0
eq "ladder day 1: a viewer is never_bought, a clicker engaged" \
	"L1 never_bought add;L2 never_bought add;L3 engaged add" "$(changes)"
eq "first run ever is full (no rules hash yet): 3 evaluated, 3 added" "3 full 3 0" "$(tstats)"
one_rung "ladder day 1: one rung per person" lad.db $RUNGS

# The output record: pid, tag, op, at (= --now), source, rule (file:line),
# then identifiers limited to one per person (not openid), phone normalised.
P1=$(pid_of lad.db L1)
test_cmp "ladder day 1: the records whole (pid, tag, op, at, source, rule, main identifiers)" \
	"$FIXTURES/tag/ladder-day1.ndjson" "$T/tout"
eq "since of a rule tag is the --now of the entering run" "$(ep 2026-11-01T20:00:00+08:00)" \
	"$(sq lad.db "SELECT since FROM tag WHERE pid = $P1 AND tag = 'never_bought'")"

ingest "ladder day 2" lad.db ladder.rules d2.ndjson
tag --db lad.db --rules ladder.rules --now 2026-11-02T20:00:00+08:00 --stats
eq "ladder day 2: L1 clicks (never_bought -> engaged); L2 orders twice, skipping first_purchase" \
	"L1 never_bought remove;L1 engaged add;L2 never_bought remove;L2 repeat_buyer add" "$(changes)"
eq "ladder day 2: incremental, only the 2 changed persons evaluated" "2 incremental 2 2" "$(tstats)"
one_rung "ladder day 2: one rung per person" lad.db $RUNGS

ingest "ladder day 3" lad.db ladder.rules d3.ndjson
tag --db lad.db --rules ladder.rules --now 2026-11-03T20:00:00+08:00 --stats
eq "ladder day 3: L1 first order (engaged -> first_purchase); new buyer L4 enters first_purchase" \
	"L1 engaged remove;L1 first_purchase add;L4 first_purchase add" "$(changes)"
eq "ladder day 3: incremental, 2 evaluated" "2 incremental 2 1" "$(tstats)"
one_rung "ladder day 3: one rung per person" lad.db $RUNGS

ingest "ladder day 4" lad.db ladder.rules d4.ndjson
tag --db lad.db --rules ladder.rules --now 2026-11-04T20:00:00+08:00 --stats
eq "ladder day 4: L1 second order (first_purchase -> repeat_buyer)" \
	"L1 first_purchase remove;L1 repeat_buyer add" "$(changes)"
one_rung "ladder day 4: one rung per person" lad.db $RUNGS
eq "ladder: every person holds exactly one rung" "L1:repeat_buyer L2:repeat_buyer L3:engaged L4:first_purchase" \
	"$(sq lad.db "SELECT group_concat(v || ':' || tag, ' ') FROM (SELECT i.value AS v, t.tag FROM tag t JOIN identity i ON i.pid = t.pid AND i.kind = 'unionid' ORDER BY v)")"
eq "tag_log: L1's path, each rung left before the next is entered" \
	"never_bought add;never_bought remove;engaged add;engaged remove;first_purchase add;first_purchase remove;repeat_buyer add" \
	"$(sq lad.db "SELECT group_concat(tag || ' ' || op, ';') FROM (SELECT tag, op FROM tag_log WHERE pid = $P1 ORDER BY seq)")"
eq "tag_log: times and rules of L1's entries" \
	"$(ep 2026-11-01T20:00:00+08:00)|ladder.rules:3 $(ep 2026-11-02T20:00:00+08:00)|ladder.rules:4 $(ep 2026-11-03T20:00:00+08:00)|ladder.rules:5 $(ep 2026-11-04T20:00:00+08:00)|ladder.rules:6" \
	"$(sq lad.db "SELECT group_concat(at || '|' || detail, ' ') FROM (SELECT at, detail FROM tag_log WHERE pid = $P1 AND op = 'add' ORDER BY seq)")"
eq "tag_log: every change is source rule" 0 "$(sq lad.db "SELECT count(*) FROM tag_log WHERE source <> 'rule'")"
eq "since: L4's first_purchase keeps the --now of day 3 through later runs" "$(ep 2026-11-03T20:00:00+08:00)" \
	"$(sq lad.db "SELECT since FROM tag WHERE pid = $(pid_of lad.db L4) AND tag = 'first_purchase'")"
eq "since: L1's repeat_buyer is the --now of day 4" "$(ep 2026-11-04T20:00:00+08:00)" \
	"$(sq lad.db "SELECT since FROM tag WHERE pid = $P1 AND tag = 'repeat_buyer'")"

# Idempotence: same data, same --now.
logn=$(sq lad.db "SELECT count(*) || ':' || max(seq) FROM tag_log")
tagsum=$(sq lad.db "SELECT group_concat(pid || tag || since || source) FROM (SELECT * FROM tag ORDER BY pid, tag)")
tag --db lad.db --rules ladder.rules --now 2026-11-04T20:00:00+08:00
tstatus "idempotence: second run exits 0" 0
eq "idempotence: second run with the same --now prints nothing" "" "$(cat "$T/tout")"
eq "idempotence: tag_log unchanged" "$logn" "$(sq lad.db "SELECT count(*) || ':' || max(seq) FROM tag_log")"
tag --db lad.db --rules ladder.rules --now 2026-11-04T20:00:00+08:00 --full
eq "idempotence: a --full run with the same --now prints nothing either" "" "$(cat "$T/tout")"
eq "idempotence: tag table unchanged (pid, tag, since, source)" "$tagsum" \
	"$(sq lad.db "SELECT group_concat(pid || tag || since || source) FROM (SELECT * FROM tag ORDER BY pid, tag)")"

# Time alone moves L3 down the ladder when its click leaves the 30-day window.
tag --db lad.db --rules ladder.rules --now 2026-11-20T20:00:00+08:00 --stats
eq "ladder: nothing changes while L3's click is inside 30d" "" "$(cat "$T/tout")"
eq "ladder: and nobody is due for evaluation" "0 incremental 0 0" "$(tstats)"
tag --db lad.db --rules ladder.rules --now 2026-12-01T11:00:00+08:00 --stats
eq "ladder: 30 days after the click, L3 goes engaged -> never_bought without new events" \
	"L3 engaged remove;L3 never_bought add" "$(changes)"
eq "ladder: incremental, only L3 evaluated" "1 incremental 1 1" "$(tstats)"
one_rung "ladder: one rung per person after the window closed" lad.db $RUNGS
full_agrees "ladder: --full on a copy at the same --now agrees" lad.db ladder.rules 2026-12-01T11:00:00+08:00

# === cart_A: a 7-day window with 'no order since' ============================
cat >cart.rules <<'EOF'
tag cart_A when count('add_cart', '7d', 'SKU-A') > 0 and orders_since('add_cart') = 0
tag buyer  when orders > 0
EOF
{
	ev w1-1 add_cart 2026-11-01T10:00:00+08:00 W1 ',"item":"SKU-A"'
	ev w2-1 add_cart 2026-11-01T10:00:00+08:00 W2 ',"item":"SKU-A"'
	ev w3-1 add_cart 2026-11-01T10:00:00+08:00 W3 ',"item":"SKU-B"'
	ev b1-1 view 2026-11-01T10:00:00+08:00 B1
	ev b2-1 view 2026-11-01T10:00:00+08:00 B2 ',"item":"SKU-A"'
} >c1.ndjson
{
	ev w2-2 order 2026-11-03T13:00:00+08:00 W2 ',"item":"SKU-A","amount":"199.00"'
	ev w4-1 add_cart 2026-11-03T13:30:00+08:00 W4 ',"item":"SKU-A"'
} >c2.ndjson
ingest "cart day 1" cart.db cart.rules c1.ndjson
tag --db cart.db --rules cart.rules --now 2026-11-01T12:00:00+08:00 --stats
eq "cart_A enters for SKU-A carts, not SKU-B or viewers" "W1 cart_A add;W2 cart_A add" "$(changes)"
tag --db cart.db --rules cart.rules --now 2026-11-03T12:00:00+08:00 --stats
eq "cart_A: two days on, no events: no change" "" "$(cat "$T/tout")"
eq "cart_A: two days on, incremental, nobody evaluated" "0 incremental 0 0" "$(tstats)"
ingest "cart day 3" cart.db cart.rules c2.ndjson
tag --db cart.db --rules cart.rules --now 2026-11-03T14:00:00+08:00 --stats
eq "cart_A: W2's order makes it leave at once; W4 enters" "W2 cart_A remove;W2 buyer add;W4 cart_A add" "$(changes)"
eq "cart_A: only the 2 persons with new events evaluated" "2 incremental 2 1" "$(tstats)"
tag --db cart.db --rules cart.rules --now 2026-11-08T09:00:00+08:00 --stats
eq "cart_A: an hour before W1's 7 days are up, no change" "" "$(cat "$T/tout")"
eq "cart_A: nobody due an hour early" "0 incremental 0 0" "$(tstats)"
tag --db cart.db --rules cart.rules --now 2026-11-08T11:00:00+08:00 --stats
eq "cart_A: 7 days after W1's add_cart it leaves, without new events" "W1 cart_A remove" "$(changes)"
read -r n mode added removed <<<"$(tstats)"
check "cart_A: --stats incremental, 1 removed, only W1 (and W2, whose cart window also closed) evaluated (got '$n $mode $added $removed')" \
	test "$mode" = incremental -a "${n:-0}" -ge 1 -a "${n:-0}" -le 2 -a "$added" = 0 -a "$removed" = 1
full_agrees "cart_A: --full on a copy agrees after W1's window closed" cart.db cart.rules 2026-11-08T11:00:00+08:00
tag --db cart.db --rules cart.rules --now 2026-11-10T14:00:00+08:00 --stats
eq "cart_A: W4 leaves 7 days after its own add_cart" "W4 cart_A remove" "$(changes)"
eq "cart_A: only W4 evaluated" "1 incremental 0 1" "$(tstats)"
full_agrees "cart_A: --full on a copy agrees after W4's window closed" cart.db cart.rules 2026-11-10T14:00:00+08:00
eq "cart_A: tags left" "buyer" "$(sq cart.db "SELECT group_concat(tag) FROM tag")"
# A new cart after the order: orders_since('add_cart') is 0 again.
ev w2-3 add_cart 2026-11-11T09:00:00+08:00 W2 ',"item":"SKU-A"' >c3.ndjson
ingest "cart day 11" cart.db cart.rules c3.ndjson
tag --db cart.db --rules cart.rules --now 2026-11-11T10:00:00+08:00
eq "cart_A: W2 adds A to the cart again after ordering and re-enters" "W2 cart_A add" "$(changes)"

# === a changed ladder is a changed rules file ==================================
# Two ladders merged into one: the tags and conditions are the same, but a
# person may now hold only one of them.
printf '%s\n' 'tag a when orders >= 0' 'tag b when orders >= 0' 'tag c when orders >= 0' 'tag d when orders >= 0' \
	'ladder x: a b' 'ladder y: c d' >lad2.rules
printf '%s\n' 'tag a when orders >= 0' 'tag b when orders >= 0' 'tag c when orders >= 0' 'tag d when orders >= 0' \
	'ladder x: a b c d' >lad1.rules
ev z1 view 2026-11-01T10:00:00+08:00 Z >z.ndjson
ingest "ladder change" lz.db lad2.rules z.ndjson
tag --db lz.db --rules lad2.rules --now 2026-11-01T12:00:00+08:00
eq "two ladders: the top rung of each" "Z b add;Z d add" "$(changes)"
tag --db lz.db --rules lad1.rules --now 2026-11-01T12:00:00+08:00 --stats
eq "ladders merged into one: the changed rules make the run full" "full" "$(tstats | cut -d' ' -f2)"
eq "ladders merged into one: b is left, only the top rung d is kept" "Z b remove" "$(changes)"
one_rung "ladders merged into one: one rung of the new ladder" lz.db a b c d

# === windows close exactly at ts + window ======================================
# A window "covers the events whose time is after now minus the window and
# not after now" (smr-rules(5)): at ts + 1d the message has left '1d'.
cat >edge.rules <<'EOF'
tag cart_A      when count('add_cart', '7d', 'SKU-A') > 0
tag asked_today when said('多少钱', '1d')
EOF
{
	ev x-1 add_cart 2026-11-01T10:00:00+08:00 X ',"item":"SKU-A"'
	ev y-1 message 2026-11-01T10:00:00+08:00 Y ',"text":"这个多少钱"'
} >e1.ndjson
for w in said count; do
	ingest "edge $w" "edge-$w.db" edge.rules e1.ndjson
	tag --db "edge-$w.db" --rules edge.rules --now 2026-11-01T10:30:00+08:00
	eq "edge $w: both enter" "X cart_A add;Y asked_today add" "$(changes)"
done
rm -f full.db
check "setup: a copy of edge-said.db" sq edge-said.db "VACUUM INTO 'full.db'"
tag --db full.db --rules edge.rules --now 2026-11-02T10:00:00+08:00 --full
eq "said '1d' at exactly message + 1d: --full removes" "Y asked_today remove" "$(changes)"
tag --db edge-said.db --rules edge.rules --now 2026-11-02T10:00:00+08:00
eq "said '1d' at exactly message + 1d: an incremental run removes too (same as --full)" "Y asked_today remove" "$(changes)"
rm -f full.db
check "setup: a copy of edge-count.db" sq edge-count.db "VACUUM INTO 'full.db'"
tag --db full.db --rules edge.rules --now 2026-11-08T10:00:00+08:00 --full
eq "count '7d' at exactly add_cart + 7d: --full removes" "X cart_A remove;Y asked_today remove" "$(changes)"
tag --db edge-count.db --rules edge.rules --now 2026-11-08T10:00:00+08:00
eq "count '7d' at exactly add_cart + 7d: an incremental run removes too (same as --full)" \
	"X cart_A remove;Y asked_today remove" "$(changes)"

# === backfill: history ingested first, --now stepped through it ================
# smr-tag(1): "for a backfill, step --now through the history"; the functions
# see only events up to --now and note "a later-dated event entering" a window.
# Each incremental step must give what --full gives.
cat >bf.rules <<'EOF'
tag asked  when said('多少钱', '30d')
tag coupon when coupon_expiring('3d') > 0
tag refill when days_since_item('order', 'SKU-B') between 1 and 90
tag cart_A when count('add_cart', '7d', 'SKU-A') > 0 and orders_since('add_cart') = 0
EOF
{
	ev a1 view 2026-11-01T10:00:00+08:00 A
	ev a2 message 2026-11-05T10:00:00+08:00 A ',"text":"多少钱"'
	ev b1 view 2026-11-01T10:00:00+08:00 B
	ev b2 coupon_claim 2026-11-05T10:00:00+08:00 B ',"item":"CP","expires":"2026-11-07T00:00:00+08:00"'
	ev c1 view 2026-11-01T10:00:00+08:00 C
	ev c2 order 2026-11-05T10:00:00+08:00 C ',"item":"SKU-B","amount":"89.00"'
	ev d1 add_cart 2026-11-01T10:00:00+08:00 D ',"item":"SKU-A"'
	ev d2 order 2026-11-05T10:00:00+08:00 D ',"item":"SKU-A","amount":"199.00"'
	ev f1 view 2026-11-01T10:00:00+08:00 F
	ev f2 add_cart 2026-11-05T10:00:00+08:00 F ',"item":"SKU-A"'
} >bf.ndjson
ingest "backfill" bf.db bf.rules bf.ndjson
tag --db bf.db --rules bf.rules --now 2026-11-01T12:00:00+08:00
eq "backfill 11-01: only D's cart is in the past" "D cart_A add" "$(changes)"
tag --db bf.db --rules bf.rules --now 2026-11-05T12:00:00+08:00
has_change "backfill 11-05: a later-dated add_cart enters count('add_cart', '7d', 'SKU-A') (F enters cart_A)" "F cart_A add"
has_change "backfill 11-05: a later-dated message enters said('多少钱', '30d') (A enters asked)" "A asked add"
has_change "backfill 11-05: a later-dated coupon_claim expiring in 2 days enters coupon_expiring('3d') (B enters coupon)" "B coupon add"
has_change "backfill 11-05: a later-dated order makes orders_since('add_cart') 1 (D leaves cart_A)" "D cart_A remove"
full_agrees "backfill 11-05: --full on a copy agrees" bf.db bf.rules 2026-11-05T12:00:00+08:00
tag --db bf.db --rules bf.rules --now 2026-11-06T12:00:00+08:00
has_change "backfill 11-06: a day after a later-dated SKU-B order, days_since_item is 1 (C enters refill)" "C refill add"
full_agrees "backfill 11-06: --full on a copy agrees" bf.db bf.rules 2026-11-06T12:00:00+08:00

# === keyword tags in Chinese: said() and REGEXP ================================
cat >kw.rules <<'EOF'
tag asked_price   when said('多少钱|价格|优惠', '30d')
tag 问过价        when said('多少钱|价格|优惠')   # any time
tag han_nick      when nickname REGEXP '^\p{Han}{2,4}$'
tag shanghai      when city REGEXP '^上海'
tag price_en      when said('(?i)\bprice\b', '7d')
EOF
{
	ev k1-1 message 2026-11-01T10:00:00+08:00 K1 ',"text":"这个多少钱？"'
	ev k2-1 message 2026-11-01T10:00:00+08:00 K2 ',"text":"你好，在吗"'
	ev k3-1 message 2026-09-01T10:00:00+08:00 K3 ',"text":"有优惠吗"'
	ev k4-1 profile 2026-11-01T10:00:00+08:00 K4 ',"nickname":"张小花","city":"上海市"'
	ev k5-1 profile 2026-11-01T10:00:00+08:00 K5 ',"nickname":"Zhang San","city":"北京"'
	ev k6-1 message 2026-11-01T10:00:00+08:00 K6 ',"text":"What is the PRICE?"'
	ev k7-1 message 2026-11-01T10:00:00+08:00 K7 ',"text":"价 格 价位"'
} >k1.ndjson
ingest "keywords" kw.db kw.rules k1.ndjson
tag --db kw.db --rules kw.rules --now 2026-11-01T20:00:00+08:00
tstatus "keywords: exit 0" 0
eq "keywords: K1 said 多少钱 in 30d" "asked_price 问过价" "$(tagset kw.db K1)"
eq "keywords: K2 said nothing matching" "" "$(tagset kw.db K2)"
eq "keywords: K3 asked about 优惠 two months ago: all-time tag only" "问过价" "$(tagset kw.db K3)"
eq "keywords: K4 nickname of Han characters, city REGEXP ^上海" "han_nick shanghai" "$(tagset kw.db K4)"
eq "keywords: K5 latin nickname, 北京" "" "$(tagset kw.db K5)"
eq "keywords: K6 (?i)\\bprice\\b" "price_en" "$(tagset kw.db K6)"
eq "keywords: K7 '价 格' does not match 价格" "" "$(tagset kw.db K7)"
check "keywords: a Chinese tag name is output as UTF-8" grep -q '"tag":"问过价"' "$T/tout"
tag --db kw.db --rules kw.rules --now 2026-12-01T11:00:00+08:00 --stats
eq "keywords: 30 days on, K1 leaves asked_price, K6 left price_en, all-time tags stay" \
	"K1 asked_price remove;K6 price_en remove" "$(changes)"
eq "keywords: incremental, only K1 and K6 evaluated" "2 incremental 0 2" "$(tstats)"
ev k2-2 message 2026-12-02T09:00:00+08:00 K2 ',"text":"双十二有什么优惠活动"' >k2.ndjson
ingest "keywords 2" kw.db kw.rules k2.ndjson
tag --db kw.db --rules kw.rules --now 2026-12-02T20:00:00+08:00
eq "keywords: K2 asks about 优惠 and enters both" "K2 asked_price add;K2 问过价 add" "$(changes)"
full_agrees "keywords: --full on a copy agrees" kw.db kw.rules 2026-12-02T20:00:00+08:00

# === coupon_expiring('3d') =====================================================
echo "tag coupon_expiring when coupon_expiring('3d') > 0" >coupon.rules
X=',"expires":"2026-11-10T00:00:00+08:00"'
{
	ev c1-1 coupon_claim 2026-11-01T10:00:00+08:00 C1 ",\"item\":\"CP-1\"$X"
	ev c2-1 coupon_claim 2026-11-01T10:00:00+08:00 C2 ",\"item\":\"CP-2\"$X"
	ev c3-1 coupon_claim 2026-11-01T10:00:00+08:00 C3 ",\"item\":\"CP-3\"$X"
	ev c4-0 coupon_use 2026-11-01T09:00:00+08:00 C4 ',"item":"CP-4"'
	ev c4-1 coupon_claim 2026-11-01T10:00:00+08:00 C4 ",\"item\":\"CP-4\"$X"
	ev c5-1 coupon_claim 2026-11-01T10:00:00+08:00 C5 ',"item":"CP-5"'
	ev c6-1 coupon_claim 2026-11-01T10:00:00+08:00 C6 ',"item":"CP-6","expires":"2026-12-31T00:00:00+08:00"'
} >cp1.ndjson
{
	ev c2-2 coupon_use 2026-11-08T12:00:00+08:00 C2 ',"item":"CP-2"'
	ev c3-2 coupon_use 2026-11-08T12:00:00+08:00 C3 ',"item":"CP-9"'
} >cp2.ndjson
ingest "coupon" cp.db coupon.rules cp1.ndjson
tag --db cp.db --rules coupon.rules --now 2026-11-01T12:00:00+08:00
eq "coupon: claims expiring in 9 days are not yet tagged" "" "$(cat "$T/tout")"
tag --db cp.db --rules coupon.rules --now 2026-11-06T23:59:59+08:00 --stats
eq "coupon: one second before expiry - 3d: nothing" "" "$(cat "$T/tout")"
eq "coupon: nobody due yet" "0 incremental 0 0" "$(tstats)"
tag --db cp.db --rules coupon.rules --now 2026-11-07T00:00:00+08:00 --stats
eq "coupon: at expiry - 3d exactly, the unused coupons enter (a use before the claim does not count)" \
	"C1 coupon_expiring add;C2 coupon_expiring add;C3 coupon_expiring add;C4 coupon_expiring add" "$(changes)"
eq "coupon: incremental, only the 4 claimers whose coupons reached the window" "4 incremental 4 0" "$(tstats)"
ingest "coupon use" cp.db coupon.rules cp2.ndjson
tag --db cp.db --rules coupon.rules --now 2026-11-08T12:30:00+08:00
eq "coupon: C2 uses its coupon and leaves; a use of another item keeps C3" "C2 coupon_expiring remove" "$(changes)"
tag --db cp.db --rules coupon.rules --now 2026-11-09T23:59:59+08:00
eq "coupon: one second before expiry: still tagged" "" "$(cat "$T/tout")"
tag --db cp.db --rules coupon.rules --now 2026-11-10T00:00:00+08:00 --stats
eq "coupon: at expiry the others leave" \
	"C1 coupon_expiring remove;C3 coupon_expiring remove;C4 coupon_expiring remove" "$(changes)"
eq "coupon: only those 3 evaluated" "3 incremental 0 3" "$(tstats)"
full_agrees "coupon: --full on a copy agrees" cp.db coupon.rules 2026-11-10T00:00:00+08:00
tag --db cp.db --rules coupon.rules --now 2026-12-28T00:00:00+08:00
eq "coupon: C6 (expires 12-31) enters 3 days before" "C6 coupon_expiring add" "$(changes)"

# === refill cycle: days_since_item('order', 'SKU-B') between 60 and 90 ========
echo "tag refill_due when days_since_item('order', 'SKU-B') between 60 and 90" >refill.rules
{
	ev r1-1 order 2026-09-01T10:00:00+08:00 R1 ',"item":"SKU-B","amount":"89.00"'
	ev r2-1 order 2026-09-01T10:00:00+08:00 R2 ',"item":"SKU-B","amount":"89.00"'
	ev r3-1 order 2026-09-01T10:00:00+08:00 R3 ',"item":"SKU-A","amount":"199.00"'
	ev r3-2 order 2026-09-02T10:00:00+08:00 R3 ',"item":"SKU-A","amount":"199.00"'
} >rf1.ndjson
ev r2-2 order 2026-11-05T10:00:00+08:00 R2 ',"item":"SKU-B","amount":"89.00"' >rf2.ndjson
ingest "refill" rf.db refill.rules rf1.ndjson
tag --db rf.db --rules refill.rules --now 2026-10-31T09:59:59+08:00
eq "refill: day 59: nothing" "" "$(cat "$T/tout")"
tag --db rf.db --rules refill.rules --now 2026-10-31T10:00:00+08:00 --stats
eq "refill: day 60 exactly: SKU-B buyers enter, not the SKU-A buyer" "R1 refill_due add;R2 refill_due add" "$(changes)"
eq "refill: incremental, the 2 SKU-B buyers evaluated" "2 incremental 2 0" "$(tstats)"
ingest "refill reorder" rf.db refill.rules rf2.ndjson
tag --db rf.db --rules refill.rules --now 2026-11-05T11:00:00+08:00
eq "refill: R2 reorders SKU-B and leaves" "R2 refill_due remove" "$(changes)"
tag --db rf.db --rules refill.rules --now 2026-12-01T09:59:59+08:00
eq "refill: day 90: still due" "" "$(cat "$T/tout")"
tag --db rf.db --rules refill.rules --now 2026-12-01T10:00:00+08:00
eq "refill: day 91: R1 leaves" "R1 refill_due remove" "$(changes)"
tag --db rf.db --rules refill.rules --now 2027-01-04T10:00:00+08:00
eq "refill: 60 days after the reorder R2 is due again" "R2 refill_due add" "$(changes)"
full_agrees "refill: --full on a copy agrees" rf.db refill.rules 2027-01-04T10:00:00+08:00

finish
