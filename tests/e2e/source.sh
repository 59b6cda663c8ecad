#!/usr/bin/env bash
# smr-ingest --source: the example mappings of examples/shop.rules over the
# hand-made exports in examples/exports (a WeCom customer list in UTF-8 with
# a BOM, a Youzan order export in GBK, official-account followers with
# Excel serial times), compared whole with expected files; derived ids that
# make a re-ingest a duplicate; the refund a refunded order yields;
# --encoding auto on files and on standard input; an .xlsx export through
# xlsx2csv; rows rejected whole and verbatim; source blocks in --check.
. "$(dirname "$0")/../lib.sh"
EX="$TESTS_DIR/../examples"
FX="$FIXTURES/source"
R="$EX/shop.rules"
TAG="$SMR_BIN/smr-tag"

# events DB: every event, one line each, in id order (times in UTC)
events() {
	sq "$1" "SELECT id, type, datetime(ts, 'unixepoch'), coalesce(item, '-'), coalesce(amount, '-'),
	         coalesce(staff, '-'), coalesce(channel, '-'), coalesce(props, '-') FROM event ORDER BY id"
}

run --rules "$R" --db s.db --encoding auto --source wecom_customers --rejects rej.csv \
	"$EX/exports/wecom-customers.csv"
status "wecom customer list: one row rejected, exit 1" 1
summary "wecom customer list: 4 rows, 6 events (profile + friend_add), 1 rejected" "4 6 0 1 3 0 0"
check "wecom customer list: read as UTF-8 (BOM)" has_line "$T/err" 'wecom-customers.csv: read as UTF-8$'
check "wecom customer list: the row without a phone names its line and reason" \
	has_line "$T/err" 'wecom-customers.csv:5: no identifier'
run --rules "$R" --db s.db --encoding auto --source youzan_orders --rejects rej.csv \
	"$EX/exports/youzan-orders.csv"
status "youzan orders: one row rejected, exit 1" 1
summary "youzan orders: 4 rows, 3 orders + 1 refund, 1 rejected; 86… is the customer list's phone" "4 4 0 1 0 0 0"
check "youzan orders: read as GB18030" has_line "$T/err" 'youzan-orders.csv: read as GB18030$'
check "youzan orders: the unpaid row's amount is the reason" has_line "$T/err" 'youzan-orders.csv:5: bad money'
run --rules "$R" --db s.db --encoding auto --source oa_followers "$EX/exports/oa-followers.csv"
status "oa followers: exit 0" 0
summary "oa followers: 3 rows, 3 profiles + 3 follows" "3 6 0 0 3 0 0"
events s.db >actual
check "every event as expected (fields, times, amounts in fen, props)" diff -u "$FX/events.expect" actual
diff -u "$FX/events.expect" actual | head -20

# the rejects file: each file's header once, then its rows verbatim
check "rejects: verbatim rows under their own header" cmp -s rej.csv "$FX/rejects.expect"
check "rejects: created 0600" test "$(stat -c %a rej.csv)" = 600

# derived ids are stable: the same export again is all duplicates
run --rules "$R" --db s.db --source wecom_customers "$EX/exports/wecom-customers.csv"
summary "wecom customer list again: all duplicates" "4 0 6 1 0 0 0"
# standard input, GBK, --encoding auto
runin "$EX/exports/youzan-orders.csv" --rules "$R" --db in.db --format csv --encoding auto --source youzan_orders
summary "youzan orders on stdin with --encoding auto" "4 4 0 1 3 0 0"
check "stdin: read as GB18030" has_line "$T/err" '<stdin>: read as GB18030$'
eq "stdin: the same events as from the file" "$(events s.db | grep -E '^E2026')" "$(events in.db)"

# an .xlsx export through xlsx2csv (Debian's), as the man page shows
if command -v xlsx2csv >/dev/null; then
	iconv -f GB18030 -t UTF-8 "$EX/exports/youzan-orders.csv" >yz.csv
	python3 "$FX/mkxlsx.py" yz.csv yz.xlsx
	xlsx2csv yz.xlsx >yz-from-xlsx.csv
	runin yz-from-xlsx.csv --rules "$R" --db x.db --format csv --source youzan_orders
	summary "xlsx2csv export.xlsx | smr-ingest --source" "4 4 0 1 3 0 0"
	eq "xlsx: the same events as from the CSV export" "$(events in.db)" "$(events x.db)"
else
	fail "xlsx2csv is installed (scripts/install-deps)" "not found"
fi

# a column the export lacks: every row rejected, naming the column
printf '订单号,下单时间,买家手机号\nE1,2026-11-20 10:00:00,13800138009\n' >short.csv
run --rules "$R" --db m.db --source youzan_orders --rejects mrej.csv short.csv
status "a column missing from the export: exit 1" 1
check "a column missing from the export: named" has_line "$T/err" 'short.csv:2: no column "实付金额" in the header \(source youzan_orders\)'
eq "a column missing from the export: the row kept verbatim" "E1,2026-11-20 10:00:00,13800138009" "$(tail -n 1 mrej.csv)"
run --rules "$R" --db m.db --source no_such short.csv
status "--source naming no source block: exit 2" 2
check "--source naming no source block: said" has_line "$T/err" 'no source "no_such"'
check "--source naming no source block: no database made" test ! -e m.db-wal -o -e m.db

# the time and money forms exports use, one row each; a bad one rejected
cat >t.rules <<'R'
timezone Asia/Shanghai
source t
  column "when" ts
  column "paid" amount
  column "tel" phone
  set type order
  id "when" "paid" "tel"
end
R
cat >t.csv <<'C'
when,paid,tel
2026/1/5 9:05,"1,299.5",13800138101
2026-01-05 09:05:07,¥ 12 元,13800138102
2026-01-05,RMB 3.00,13800138103
2026-01-05T09:05:00+08:00,0,13800138104
46027.378472222,12,13800138105
1767575100,12,13800138106
2026/13/05 09:05,12,13800138107
yesterday,12,13800138108
2026/1/5 9:05,12.345,13800138109
C
run --rules t.rules --db t.db --source t t.csv
summary "time and money forms: 9 rows, 3 rejected" "9 6 0 3 6 0 0"
eq "time and money forms: local times and fen" \
"13800138101 2026-01-05 01:05:00 129950;13800138102 2026-01-05 01:05:07 1200;13800138103 2026-01-04 16:00:00 300;13800138104 2026-01-05 01:05:00 0;13800138105 2026-01-05 01:05:00 1200;13800138106 2026-01-05 01:05:00 1200" \
	"$(sq t.db "SELECT group_concat(v, ';') FROM (SELECT i.value || ' ' || datetime(e.ts, 'unixepoch') || ' ' || e.amount AS v
	   FROM event e JOIN identity i ON i.pid = e.pid ORDER BY i.value)")"
check "an impossible date is rejected" has_line "$T/err" 't.csv:8: ts: .*impossible date'
check "a time in no known form is rejected" has_line "$T/err" 't.csv:9: ts: '
check "money with three decimals is rejected" has_line "$T/err" 't.csv:10: bad money'

# --check: source blocks are checked like every other statement
cat >bad.rules <<'R'
timezone Asia/Shanghai
source a
  column "订单号" idd
  colum "x" id
  column "open
  also refund when "状态" ~ "(退款"
  id
end
source a
  set type order
end
R
invoke /dev/null "$T/cout" "$T/cerr" "$TAG" --check --rules bad.rules
status_is "--check: bad source blocks: exit 2" "$INVOKED" 2 "$T/cerr"
check "--check: an unknown field, at its column" has_line "$T/cerr" 'bad.rules:3:16: "idd" is not an event field'
check "--check: an unknown statement" has_line "$T/cerr" 'bad.rules:4:3: unknown source statement "colum"'
check "--check: an unclosed quote" has_line "$T/cerr" 'bad.rules:5:10: a quoted name has no closing quote'
check "--check: a bad regular expression" has_line "$T/cerr" 'bad.rules:6:.*missing closing parenthesis'
check "--check: id without columns" has_line "$T/cerr" 'bad.rules:7:3: id needs the columns'
check "--check: a source defined twice" has_line "$T/cerr" 'bad.rules:9:1: source "a" is defined twice'
invoke /dev/null "$T/cout" "$T/cerr" "$TAG" --check --rules "$R"
status_is "--check: the example mappings are valid" "$INVOKED" 0 "$T/cerr"
finish
