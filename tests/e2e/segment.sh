#!/usr/bin/env bash
# smr-segment end to end, every answer computed by hand: expression
# precedence and errors with their column, named segments from the rules,
# RFM quintiles with a tie across a boundary, lifecycle stages and value
# tiers exactly at their thresholds, NDJSON and CSV output (Chinese
# nicknames with commas and quotes, BOM), counts, --as-tag entering and
# leaving.
. "$(dirname "$0")/../lib.sh"
. "$FIXTURES/tag/helpers.sh"
. "$FIXTURES/segment/helpers.sh"
# members: the unionids of the records on $T/sout, space-separated.
members() { jq -r .unionid "$T/sout" | paste -sd' ' -; }
# schanges: the --as-tag records on $T/sout as "who tag op;..."
schanges() { cp "$T/sout" "$T/tout" && changes; }
# seg_is NAME FILE: the last output is exactly tests/fixtures/segment/FILE.
seg_is() { test_cmp "$1" "$FIXTURES/segment/$2" "$T/sout"; }
# crlf: $T/sout with CRLF line ends shown as |
crlf() { tr -d '\n' <"$T/sout" | tr '\r' '|'; }
NOW=2026-11-20T12:00:00+08:00
NOWS=$(ep $NOW)
# at SECONDS_BEFORE_NOW: an ISO time that long before --now.
at() { TZ=UTC date -d "@$((NOWS - $1))" +%Y-%m-%dT%H:%M:%SZ; }
D=86400

# === expressions =============================================================
printf '%s\n' "segment carted when count('add_cart', '30d') > 0" \
	"segment big when net_spend >= 100000" >x.rules
{
	ev x1-1 view "$(at $D)" x1
	ev x2-1 add_cart "$(at $D)" x2 ',"item":"SKU-A"'
	ev x3-1 view "$(at $D)" x3
	ev x4-1 order "$(at $D)" x4 ',"amount":"1000.00"'
	ev x5-1 view "$(at $D)" x5
	ev x6-1 view "$(at $D)" x6
} >x.ndjson
ingest "expressions" x.db x.rules x.ndjson
printf '%s\n' '{"unionid":"x1","tag":"a"}' '{"unionid":"x2","tag":"b"}' '{"unionid":"x3","tag":"b"}' \
	'{"unionid":"x3","tag":"c"}' '{"unionid":"x4","tag":"c"}' '{"unionid":"x5","tag":"a"}' \
	'{"unionid":"x5","tag":"c"}' '{"unionid":"x6","tag":"会员"}' >x-tags.ndjson
tagin x-tags.ndjson --db x.db --rules x.rules --now $NOW --set
tstatus "expressions: manual tags set" 0
X="--db x.db --rules x.rules --now $NOW"
seg $X 'a or b and not c'
sstatus "a or b and not c: exit 0" 0
eq "'and' binds tighter than 'or', 'not' tighter than 'and'" "x1 x2 x5" "$(members)"
eq "a good expression: nothing on stderr" "" "$(cat "$T/serr")"
seg $X '(a or b) and not c'
eq "parentheses: (a or b) and not c" "x1 x2" "$(members)"
seg $X 'a OR b AND NOT c'
eq "keywords in capitals" "x1 x2 x5" "$(members)"
seg $X not a and not b and not c
eq "EXPR as several arguments; not a and not b and not c" "x6" "$(members)"
seg $X 'not not a'
eq "not not a" "x1 x5" "$(members)"
seg $X '会员'
eq "a Chinese tag name" "x6" "$(members)"
seg $X 'carted or big'
eq "named segments from the rules (a per-person function, a fact)" "x2 x4" "$(members)"
seg $X 'big and c or carted and not b'
eq "segments and tags mixed: big and c or carted and not b" "x4" "$(members)"
seg $X 'a or b and not c' --count
eq "--count" '{"count":3}' "$(cat "$T/sout")"
seg $X --count --csv 'nobody_has_this'
eq "--count --csv of an empty layer" '"count"|"0"|' "$(crlf)"
check "a tag no one holds: a warning with its column" has_line "$T/serr" \
	'^smr-segment: <expr>:1:1: warning: no rule gives tag "nobody_has_this" and no one holds it$'
sstatus "a tag no one holds: exit 0" 0
seg $X 'a or b and not c'
expect "members are ordered by pid, each with pid and unionid only" "$T/sout" <<'EOF'
{"pid":1,"unionid":"x1"}
{"pid":2,"unionid":"x2"}
{"pid":5,"unionid":"x5"}
EOF

# bad expressions: exit 2, the column of the problem, nothing created
experr() {
	rm -f none.db
	seg --db none.db --rules x.rules "$2"
	if [ "$SRC" = 2 ] && has_line "$T/serr" "^smr-segment: <expr>:1:$3: " && [ ! -e none.db ]; then
		ok "bad expression, $1: exit 2 at column $3"
	else
		fail "bad expression, $1: exit 2 at column $3" "status $SRC; $(cat "$T/serr")"
	fi
}
experr "dangling and" 'a and' 6
experr "unclosed parenthesis" 'a or (b' 8
experr "two names" 'a b' 3
experr "column in characters after Chinese" '会员 and )' 8
experr "stray character" 'a & b' 3
experr "unknown layer" 'a or foo:bar' 6
experr "unknown stage" 'stage:old' 7
experr "unknown RFM segment" 'rfm:best' 5
experr "empty" '' 1
experr "keyword as a name" 'and' 1
deep=$(printf '(%.0s' $(seq 100000))
experr "100000 nested parentheses (was a stack overflow)" "${deep}a" 17
experr "17 nested parentheses: one too many" "$(printf '(%.0s' $(seq 17))a$(printf ')%.0s' $(seq 17))" 17
experr "20000 nested not" "$(printf 'not %.0s' $(seq 20000))a" 65
experr "60 nested not (SQL too deep for SQLite's parser: was exit 3)" "$(printf 'not %.0s' $(seq 60))a" 65
seg --db x.db --rules x.rules --count "$(printf 'not (%.0s' $(seq 8))a$(printf ')%.0s' $(seq 8))"
sstatus "8 nested 'not (' (16 levels) are fine" 0
seg --db x.db --rules x.rules --count "$(printf '(%.0s' $(seq 16))a$(printf ')%.0s' $(seq 16))"
sstatus "16 nested parentheses are fine" 0
seg --db x.db --rules x.rules --count "$(printf '(a and %.0s' $(seq 15))(a)$(printf ')%.0s' $(seq 15))"
sstatus "16 nested '(a and' are fine (SQL nests once per level)" 0
experr "257 operands" "a$(printf ' or a%.0s' $(seq 300))" 1281
seg --db x.db --rules x.rules --count "a$(printf ' or a%.0s' $(seq 255))"
sstatus "256 operands are fine" 0
seg --db x.db 'a' --fields nosuch
sstatus "--fields with an unknown fact: exit 2" 2
seg --db x.db
sstatus "no EXPR and no layer: exit 2" 2
seg --db x.db --rfm a
sstatus "EXPR and --rfm together: exit 2" 2
seg --db x.db --bom a
sstatus "--bom without --csv: exit 2" 2

printf '%s\n' 'segment broken when nosuch > 1' >broken.rules
rm -f none.db
seg --db none.db --rules broken.rules a
sstatus "a bad segment condition in the rules: exit 2" 2
check "a bad segment condition: file:line:col on stderr" has_line "$T/serr" '^smr-segment: broken.rules:1:21: .*nosuch'
check "a bad segment condition: the database is not created" test ! -e none.db

# === --as-tag ================================================================
logn=$(sq x.db "SELECT count(*) FROM tag_log")
seg $X --as-tag grp 'a or b and not c'
sstatus "--as-tag: exit 0" 0
seg_is "--as-tag: members enter the tag; source segment, rule is the expression, at = --now" as-tag.ndjson
eq "--as-tag: tag table and tag_log" "3 3" \
	"$(sq x.db "SELECT (SELECT count(*) FROM tag WHERE tag = 'grp' AND source = 'segment' AND since = $NOWS) || ' ' || (SELECT count(*) FROM tag_log WHERE tag = 'grp' AND op = 'add' AND source = 'segment')")"
seg $X --as-tag grp 'a or b and not c'
eq "--as-tag again: nothing changes" "" "$(cat "$T/sout")"
eq "--as-tag again: tag_log unchanged" $((logn + 3)) "$(sq x.db "SELECT count(*) FROM tag_log")"
echo '{"unionid":"x2","tag":"b"}' >unset.ndjson
tagin unset.ndjson --db x.db --rules x.rules --now $NOW --unset
seg $X --as-tag grp 'a or b and not c'
eq "--as-tag after x2 lost tag b: x2 leaves" "x2 grp remove" "$(schanges)"
eq "--as-tag: members now" "x1 x5" "$(sq x.db "SELECT group_concat(value, ' ') FROM (SELECT value FROM tag JOIN identity USING (pid) WHERE tag = 'grp' AND kind = 'unionid' ORDER BY value)")"
seg $X --as-tag grp 'b'
eq "--as-tag with another expression: x3 enters, x1 and x5 leave" "x3 grp add;x1 grp remove;x5 grp remove" "$(schanges)"
tag --db x.db --rules x.rules --now $NOW --full
eq "smr-tag --full leaves segment tags alone" "x3" "$(sq x.db "SELECT group_concat(value, ' ') FROM tag JOIN identity USING (pid) WHERE tag = 'grp' AND kind = 'unionid'")"
seg $X --as-tag grp --count 'a'
sstatus "--as-tag with --count: exit 2" 2
printf 'tag a when orders > 0\n' >r.rules
seg --db x.db --rules r.rules --as-tag a 'b'
sstatus "--as-tag naming a rule's tag: exit 2" 2

# === CSV =====================================================================
{
	ev n1-1 profile "$(at $D)" n1 ',"nickname":"小明,大哥","city":"上海"'
	ev n2-1 profile "$(at $D)" n2 ',"nickname":"say \"hi\"","city":"北京"'
	ev n3-1 profile "$(at $D)" n3 ',"nickname":"王五"'
} >n.ndjson
ingest "csv" n.db x.rules n.ndjson
printf '%s\n' '{"unionid":"n1","tag":"vip"}' '{"unionid":"n2","tag":"vip"}' >n-tags.ndjson
tagin n-tags.ndjson --db n.db --rules x.rules --now $NOW --set
seg --db n.db --rules x.rules --now $NOW --csv --fields nickname,city vip
sstatus "--csv: exit 0" 0
eq "--csv: header then one line per member, every field quoted, CRLF" \
	'"pid","unionid","member_id","external_userid","phone","nickname","city"|"1","n1",,,,"小明,大哥","上海"|"2","n2",,,,"say ""hi""","北京"|' \
	"$(crlf)"
check "--csv parses back (python csv): the nickname with a comma is one field" python3 -c '
import csv, sys
rows = list(csv.reader(open(sys.argv[1], encoding="utf-8", newline="")))
assert rows[1][5] == "小明,大哥" and rows[2][5] == "say \"hi\"" and len(rows) == 3, rows' "$T/sout"
eq "--csv without --bom: no byte order mark" 227069 "$(head -c 3 "$T/sout" | od -An -tx1 | tr -d ' ')"
seg --db n.db --rules x.rules --now $NOW --csv --bom --fields nickname vip
eq "--csv --bom: starts with EF BB BF" "efbbbf" "$(head -c 3 "$T/sout" | od -An -tx1 | tr -d ' ')"
seg --db n.db --rules x.rules --now $NOW --csv --fields attr.city,attr.nosuch vip
eq "--fields attr.KEY: an attribute by name, absent ones empty" \
	'"pid","unionid","member_id","external_userid","phone","attr.city","attr.nosuch"|"1","n1",,,,"上海",|"2","n2",,,,"北京",|' "$(crlf)"
# formula injection: text cells a spreadsheet would run get a leading '
{
	ev f1-1 profile "$(at $D)" f1 ',"nickname":"=HYPERLINK(\"http://evil\",\"x\")","city":"@SUM(A1)"'
	ev f2-1 profile "$(at $D)" f2 ',"nickname":"+cmd|calc!A0","city":"-2+3"'
	ev f3-1 profile "$(at $D)" f3 ',"nickname":"\tx","city":"-5"'
	ev f4-1 profile "$(at $D)" f4 ',"nickname":"+8613800138000","city":"a=b"'
} >f.ndjson
ingest "csv formulas" f.db x.rules f.ndjson
printf '%s\n' '{"unionid":"f1","tag":"fx"}' '{"unionid":"f2","tag":"fx"}' '{"unionid":"f3","tag":"fx"}' \
	'{"unionid":"f4","tag":"fx"}' >f-tags.ndjson
tagin f-tags.ndjson --db f.db --rules x.rules --now $NOW --set
seg --db f.db --rules x.rules --now $NOW --csv --fields nickname,city,net_spend fx
seg_is "--csv: cells starting with = + - @ tab get a leading apostrophe; plain numbers do not" formulas.csv
seg --db f.db --rules x.rules --now $NOW --fields nickname fx
check "NDJSON is not altered" grep -q '"nickname": *"=HYPERLINK' "$T/sout"

rm -f none.db
seg --db none.db --rules x.rules --fields 'attr.a b' vip
sstatus "--fields attr.KEY with a bad key: exit 2" 2
check "--fields with a bad name: the database is not created" test ! -e none.db
seg --db n.db --rules x.rules --now $NOW --fields nickname,city,attrs vip
seg_is "NDJSON --fields: facts by name, attrs as an object" fields-attrs.ndjson

# === RFM =====================================================================
# Ten buyers and one browser. score = 1 + floor(5 * (rank - 1) / 10), rank
# ascending with ties sharing the lowest rank (SQL rank()).
#        last order  orders  net spend        R  F  M  FM  segment
#   r01  100 d ago   5       500              1  5  5  5   Cannot Lose
#   r02   90 d ago   4       400              1  5  5  5   Cannot Lose
#   r03   90 d ago   1        50              1  1  2  2   Lost   (r02, r03 tie at ranks 2-3: both R=1)
#   r04   80 d ago   3       300              2  4  4  4   At Risk
#   r05   60 d ago   1        30              3  1  2  2   About to Sleep
#   r06   50 d ago   2       200              3  3  4  4   Loyal
#   r07   40 d ago   1       900-800 = 100    4  1  3  2   Potential Loyalist
#   r08   30 d ago   2       100              4  3  3  3   Potential Loyalist
#   r09   20 d ago   1        20              5  1  1  1   New
#   r10   10 d ago   1        20              5  1  1  1   New
# F: the five with 1 order share rank 1 (F=1), 2 orders rank 6 (F=3), ...
# M: 20, 20 rank 1; 30 rank 3; 50 rank 4; 100, 100 rank 5; 200 rank 7; ...
order_run() { # WHO DAYS_AGO N AMOUNT: N orders, the last DAYS_AGO days ago
	local i
	for i in $(seq 1 "$3"); do
		ev "$1-o$i" order "$(at $((($2 + ($3 - i) * 5) * D)))" "$1" ",\"amount\":\"$4\""
	done
}
{
	order_run r01 100 5 100
	order_run r02 90 4 100
	order_run r03 90 1 50
	order_run r04 80 3 100
	order_run r05 60 1 30
	order_run r06 50 2 100
	order_run r07 40 1 900
	ev r07-refund refund "$(at $((39 * D)))" r07 ',"amount":"800"'
	order_run r08 30 2 50
	order_run r09 20 1 20
	order_run r10 10 1 20
	ev r11-v view "$(at $D)" r11
} >rfm.ndjson
ingest "rfm" rfm.db x.rules rfm.ndjson
seg --db rfm.db --rules x.rules --now $NOW --rfm
sstatus "--rfm: exit 0" 0
seg_is "--rfm: scores R, F, M and the named segment per buyer (the browser has none)" rfm.ndjson
eq "--rfm: stored in the rfm table with the computation time" "10 $NOWS $NOWS" \
	"$(sq rfm.db "SELECT count(*) || ' ' || min(computed_at) || ' ' || max(computed_at) FROM rfm")"
seg --db rfm.db --rules x.rules --now $NOW --rfm --count
seg_is "--rfm --count: every segment in order, zeros included" rfm-count.ndjson
seg --db rfm.db --rules x.rules --now $NOW --rfm --csv --fields orders,net_spend
eq "--rfm --csv --fields: the layer's columns, then the facts" \
	'"pid","unionid","member_id","external_userid","phone","r","f","m","rfm","orders","net_spend"|"1","r01",,,,"1","5","5","Cannot Lose","5","50000"|' \
	"$(crlf | cut -d'|' -f1-2)|"
seg --db rfm.db --rules x.rules --now $NOW --fields rfm,r,stage,orders 'rfm:cannot_lose or rfm:lost'
seg_is "--fields with stored scores and the stage, for an expression" rfm-fields.ndjson
seg --db rfm.db --rules x.rules --now $NOW 'rfm:cannot_lose or rfm:lost'
eq "rfm:NAME in an expression reads the stored segments" "r01 r02 r03" "$(members)"
seg --db rfm.db --rules x.rules --now 2026-11-21T12:00:00+08:00 --as-tag winback 'rfm:at_risk'
eq "--as-tag from an RFM segment (At Risk -> win-back)" "r04 winback add" "$(schanges)"

# === lifecycle stages at their thresholds ====================================
printf '%s\n' 'stage new 3' 'stage active 10' 'stage silent 20' 'stage paying 5' >st.rules
{
	ev s1-v view "$(at $((2 * D)))" s1                        # first seen 2 d ago: new
	ev s2-v view "$(at $((3 * D)))" s2                        # 3 d: not new (< 3); active
	ev s3-a view "$(at $((30 * D)))" s3
	ev s3-b view "$(at $((10 * D)))" s3                       # last seen 10 d: silent
	ev s4-v view "$(at $((19 * D)))" s4                       # 19 d: silent
	ev s5-v view "$(at $((20 * D)))" s5                       # 20 d: churned
	ev s6-o order "$(at $((5 * D)))" s6 ',"amount":"1"'       # order 5 d: not paying; active
	ev s7-v view "$(at $((40 * D)))" s7
	ev s7-o order "$(at $((5 * D - 1)))" s7 ',"amount":"1"'   # 4 d 23:59:59: paying
	ev s8-v view "$(at $((3 * D - 1)))" s8                    # 2 d 23:59:59: new
} >st.ndjson
ingest "stages" st.db st.rules st.ndjson
seg --db st.db --rules st.rules --now $NOW --stages
sstatus "--stages: exit 0" 0
seg_is "--stages: each person at the boundaries" stages.ndjson
seg --db st.db --rules st.rules --now $NOW --stages --count
seg_is "--stages --count: every stage in order" stages-count.ndjson
seg --db st.db --rules x.rules --now $NOW --stages
seg_is "--stages with the default thresholds (new 7, active 30, silent 90, paying 30)" stages-default.ndjson
seg --db st.db --rules st.rules --now $NOW 'stage:silent or stage:churned'
eq "stage:NAME in an expression" "s3 s4 s5" "$(members)"
printf 'stage churned 5\n' >bad.rules
seg --db st.db --rules bad.rules --stages
sstatus "stage churned N: exit 2" 2
check "stage churned N: file:line:col" has_line "$T/serr" '^smr-segment: bad.rules:1:7: '
printf 'stage silent 20\nstage active 20\n' >bad.rules
seg --db st.db --rules bad.rules --stages
check "stage silent not above stage active: exit 2 naming the later line" has_line "$T/serr" '^smr-segment: bad.rules:2:1: stage silent'

# === value tiers at their thresholds =========================================
printf '%s\n' 'tier 钻石 50000' 'tier 初级 0' 'tier 银卡 1000' 'tier 金卡 5000' 'tier 黑金 20000' >t.rules
{
	ev t1-o order "$(at $D)" t1 ',"amount":"999.99"'
	ev t2-o order "$(at $D)" t2 ',"amount":"1000.00"'
	ev t3-o order "$(at $D)" t3 ',"amount":"4999.99"'
	ev t4-o order "$(at $D)" t4 ',"amount":"5000"'
	ev t5-o order "$(at $D)" t5 ',"amount":"20000"'
	ev t5-r refund "$(at $D)" t5 ',"amount":"0.01"'
	ev t6-o order "$(at $D)" t6 ',"amount":"50000"'
	ev t7-v view "$(at $D)" t7
} >t.ndjson
ingest "tiers" t.db t.rules t.ndjson
seg --db t.db --rules t.rules --now $NOW --tiers --fields net_spend
sstatus "--tiers: exit 0" 0
seg_is "--tiers --fields net_spend: net spend (fen) against the thresholds (refunds count)" tiers.ndjson
seg --db t.db --rules t.rules --now $NOW --tiers --count --csv
eq "--tiers --count --csv: lowest tier first" \
	'"tier","count"|"初级","2"|"银卡","2"|"金卡","2"|"黑金","0"|"钻石","1"|' "$(crlf)"
printf 'tier 银卡 1000\n' >t1.rules
seg --db t.db --rules t1.rules --now $NOW --tiers
seg_is "--tiers: below the lowest tier is in no tier" tiers-one.ndjson
seg --db t.db --rules t.rules --now $NOW 'tier:金卡 or tier:钻石'
eq "tier:NAME in an expression" "t4 t5 t6" "$(members)"
seg --db t.db --rules t.rules --now $NOW --fields tier,stage 'tier:黑金 or tier:钻石'
seg_is "--fields tier,stage for an expression" tiers-fields.ndjson
rm -f none.db
seg --db none.db --rules x.rules --now $NOW --tiers
sstatus "--tiers with no tier statements: exit 2" 2
check "--tiers with no tier statements: the database is not created" test ! -e none.db
printf 'tier 银卡 10.001\ntier 金卡 1000\n' >bad.rules
seg --db t.db --rules bad.rules --tiers
check "a bad tier amount: exit 2 at file:line:col" has_line "$T/serr" '^smr-segment: bad.rules:1:9: '
sstatus "a bad tier amount: exit 2" 2

finish
