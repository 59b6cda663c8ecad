#!/usr/bin/env bash
# CSV input: header, quoting (commas, quotes, newlines), BOM, empty = absent,
# CRLF, GBK via --encoding gbk, rejects with the header first.
. "$(dirname "$0")/../lib.sh"

# Lines: 1 header (with a UTF-8 BOM), 2 c1, 3-4 c2 (a quoted newline), 5 c3,
# 6 c4 (order, empty amount), 7 c5 (impossible date), 8 c6 (too few fields),
# 9 c7 (stray quote), 10 c8.
{
	printf '\xef\xbb\xbfid,type,ts,unionid,phone,item,amount,text,props\n'
	printf 'c1,order,2026-11-20 20:15,u1,,SKU-A,199.00,,"{""qty"":2}"\n'
	printf 'c2,message,2026-11-20T21:00:00+08:00,u1,,,,"Hi, ""boss"", 多少钱?\nsecond line",\n'
	printf 'c3,view,1795176900,,138 0013 8000,"SKU,B",,,\n'
	printf 'c4,order,2026-11-21T00:00:00Z,u2,,,,,\n'
	printf 'c5,view,2026-02-30T00:00:00Z,u3,,,,,\n'
	printf 'c6,view,2026-11-21T00:00:00Z,u4,,,\n'
	printf 'c7,view,2026-11-21T00:00:00Z,u5,,"bad"quote,,,\n'
	printf 'c8,view,2026-11-21T00:00:00Z,u6,,,,,\n'
} >orders.csv

run --db t.db --rejects rej.csv orders.csv
status "orders.csv: exit 1 (4 bad rows)" 1
summary "orders.csv: 8 records, 4 inserted, 4 rejected" "8 4 0 4 3 0 0"
eq "UTF-8 BOM: header's first column is id (all good rows landed)" "c1 c2 c3 c8" "$(sq t.db "SELECT id FROM event ORDER BY eid" | tr '\n' ' ' | sed 's/ $//')"
eq "quoted field with commas, doubled quotes and a newline" "$(printf 'Hi, "boss", 多少钱?\nsecond line')" \
	"$(sq t.db "SELECT text FROM event WHERE id = 'c2'")"
eq "quoted field with a comma" "SKU,B" "$(sq t.db "SELECT item FROM event WHERE id = 'c3'")"
eq "amount 199.00 from CSV in fen" 19900 "$(sq t.db "SELECT amount FROM event WHERE id = 'c1'")"
eq "naive CSV time in Asia/Shanghai" 1795176900 "$(sq t.db "SELECT ts FROM event WHERE id = 'c1'")"
eq "epoch CSV time" 1795176900 "$(sq t.db "SELECT ts FROM event WHERE id = 'c3'")"
eq "props column parsed as JSON" 2 "$(sq t.db "SELECT json_extract(props, '\$.qty') FROM event WHERE id = 'c1'")"
eq "empty field = absent (text, amount, item NULL)" "1|1|1" \
	"$(sq t.db "SELECT text IS NULL, amount IS NULL, item IS NULL FROM event WHERE id = 'c8'")"
eq "empty identifier = absent (c3 has only its phone)" "phone|13800138000" \
	"$(sq t.db "SELECT i.kind, i.value FROM identity i JOIN event e ON e.pid = i.pid WHERE e.id = 'c3'")"
eq "c1 and c2 share unionid u1: one person" 1 "$(sq t.db "SELECT count(DISTINCT pid) FROM event WHERE id IN ('c1', 'c2')")"
check "stderr: orders.csv:6: order without amount" has_line "$T/err" '^smr-ingest: orders\.csv:6: .*amount'
check "stderr: orders.csv:7: impossible date" has_line "$T/err" '^smr-ingest: orders\.csv:7: .*impossible date'
check "stderr: orders.csv:8: wrong field count" has_line "$T/err" '^smr-ingest: orders\.csv:8: .*field'
check "stderr: orders.csv:9: malformed CSV" has_line "$T/err" '^smr-ingest: orders\.csv:9: .*(CSV|quote)'
eq "stderr: one line per rejected row" 4 "$(wc -l <"$T/err")"
# Rejects: the header first, then the bad rows verbatim (a BOM on the
# header is tolerated, not required).
{ echo 'id,type,ts,unionid,phone,item,amount,text,props'; sed -n '6,9p' orders.csv; } >expected.csv
sed '1s/^\xef\xbb\xbf//' rej.csv >rej-nobom.csv
if cmp -s expected.csv rej-nobom.csv; then
	ok "CSV rejects: header line first, then the bad rows verbatim"
else
	fail "CSV rejects: header line first, then the bad rows verbatim" "$(diff expected.csv rej-nobom.csv | head -5)"
fi
run --db t.db rej.csv
summary "CSV rejects file re-ingests as CSV (same 4 rejected)" "4 0 0 4 0 0 0"

# Re-ingest: all duplicates, the database unchanged.
before=$(sqlite3 t.db .dump | md5sum)
run --db t.db orders.csv
summary "CSV re-ingest: duplicates, nothing inserted" "8 0 4 4 0 0 0"
eq "CSV re-ingest: database unchanged" "$before" "$(sqlite3 t.db .dump | md5sum)"

# CRLF line endings (Excel), with a quoted CRLF-free multi-line field.
printf 'id,type,ts,unionid,text\r\nw1,message,1,uw,"line one\r\nline two"\r\nw2,view,1,uw,\r\n' >crlf.csv
run --db crlf.db crlf.csv
status "CRLF CSV: exit 0" 0
summary "CRLF CSV: both rows" "2 2 0 0 1 0 0"
eq "CRLF CSV: last column has no stray CR" "uw" "$(sq crlf.db "SELECT value FROM identity")"

# A row with invalid UTF-8 is rejected alone: the next row still lands.
printf 'id,type,ts,unionid\nv1,view,1,u1\nv2,view,1,\xff\xfe\nv3,view,1,u3\nv4,view,1,u4\n' >badutf.csv
run --db badutf.db --rejects badutf.rej badutf.csv
status "CSV invalid UTF-8 row: exit 1" 1
summary "CSV invalid UTF-8 row: only that row rejected" "4 3 0 1 3 0 0"
check "CSV invalid UTF-8 row: stderr badutf.csv:3: UTF-8" has_line "$T/err" '^smr-ingest: badutf\.csv:3: .*UTF-8'
eq "CSV invalid UTF-8 row: the following row v3 landed" "v1 v3 v4" "$(sq badutf.db "SELECT id FROM event ORDER BY id" | tr '\n' ' ' | sed 's/ $//')"
eq "CSV invalid UTF-8 row: rejects holds header + that row only" "$(printf 'id,type,ts,unionid\nv2,view,1,\xff\xfe')" "$(cat badutf.rej)"

# Unterminated quote at the end of the file.
printf 'id,type,ts,unionid,text\nq1,view,1,uq,ok\nq2,message,1,uq,"never closed\n' >unterm.csv
run --db unterm.db unterm.csv
status "CSV unterminated quote: exit 1" 1
summary "CSV unterminated quote: first row kept, the open one rejected" "2 1 0 1 1 0 0"
check "CSV unterminated quote: reported at its line 3" has_line "$T/err" '^smr-ingest: unterm\.csv:3: '

# An ids column (JSON object) and an unknown kind inside it.
printf 'id,type,ts,ids\nk1,view,1,"{""cookie_id"":""ck1"",""openid"":""o1""}"\nk2,view,1,"{""weibo_uid"":""w""}"\nk3,view,1,not-json\n' >ids.csv
run --db ids.db ids.csv
status "CSV ids column: exit 1" 1
summary "CSV ids column: one good, unknown kind and bad JSON rejected" "3 1 0 2 1 0 0"
eq "CSV ids column: identifiers stored" "cookie_id:ck1 openid:o1" "$(sq ids.db "SELECT kind || ':' || value FROM identity ORDER BY kind" | tr '\n' ' ' | sed 's/ $//')"
check "CSV ids column: unknown kind named on stderr" has_line "$T/err" '^smr-ingest: ids\.csv:3: .*weibo_uid'

# A header that cannot name the fields: it and every row are rejected
# verbatim (nothing lost), exit 1.
printf 'id,type,ts,id\nh1,view,1,u1\nh2,view,1,u2\n' >dupcol.csv
run --db hdr.db --rejects hdr.rej dupcol.csv
status "CSV header naming a column twice: exit 1" 1
eq "CSV header naming a column twice: nothing stored" 0 "$(sq hdr.db 'SELECT count(*) FROM event')"
check "CSV header naming a column twice: reported at line 1" has_line "$T/err" '^smr-ingest: dupcol\.csv:1: .*header'
eq "CSV header naming a column twice: header and rows in the rejects" "$(cat dupcol.csv)" "$(cat hdr.rej)"
printf 'id,,ts\nh1,view,0\n' >nocol.csv
run --db hdr2.db nocol.csv
status "CSV header with an unnamed column: exit 1" 1

# GBK (what Excel exports in China), including a quoted multi-line field.
printf 'id,type,ts,unionid,item,text\ng1,message,2026-11-20 20:15,u1,连衣裙,"价格多少？\n有优惠吗"\ng2,view,1,u2,"裙子,红色",\n' >gbk-utf8.csv
iconv -f UTF-8 -t GBK gbk-utf8.csv >gbk.csv
check "fixture: the GBK file differs from its UTF-8 source" bash -c "! cmp -s gbk.csv gbk-utf8.csv"
run --db gbk.db --encoding gbk gbk.csv
status "GBK CSV with --encoding gbk: exit 0" 0
summary "GBK CSV with --encoding gbk: both rows" "2 2 0 0 2 0 0"
eq "GBK text converted to UTF-8" "$(printf '价格多少？\n有优惠吗')" "$(sq gbk.db "SELECT text FROM event WHERE id = 'g1'")"
eq "GBK item with a comma" "裙子,红色" "$(sq gbk.db "SELECT item FROM event WHERE id = 'g2'")"
eq "GBK item" "连衣裙" "$(sq gbk.db "SELECT item FROM event WHERE id = 'g1'")"
run --db gbk2.db gbk.csv
status "GBK CSV without --encoding: exit 1" 1
check "GBK CSV without --encoding: rejected as invalid UTF-8" has_line "$T/err" '^smr-ingest: gbk\.csv:2: .*UTF-8'
run --db gbk3.db --encoding GBK --rejects gbk.rej gbk.csv
summary "--encoding GBK (upper case) accepted" "2 2 0 0 2 0 0"
# A record over 1 MiB whose quoted text holds lines that look like records:
# reading resumes after the record's real end, not inside its quotes.
{
	printf 'id,type,ts,unionid,text\n'
	printf 'big1,message,1,ub,"%s\n' "$(head -c 1100000 /dev/zero | tr '\0' x)"
	printf 'fake1,view,1,uFake\n'
	printf 'fake2,view,1,uFake2,"""quoted"""\n'
	printf 'end of text"\n'
	printf 'after1,view,2,uAfter,\n'
} >big.csv
run --db big.db --rejects big.rej big.csv
status "CSV record over 1 MiB: exit 1" 1
summary "CSV record over 1 MiB: one reject, the next real record stored" "2 1 0 1 1 0 0"
eq "CSV record over 1 MiB: no line inside its quotes is stored" "after1" "$(sq big.db 'SELECT group_concat(id) FROM event')"
check "CSV record over 1 MiB: reported at its first line" has_line "$T/err" '^smr-ingest: big\.csv:2: record longer than'
eq "CSV record over 1 MiB: the whole record in the rejects" "$(sed -n '1,5p' big.csv | md5sum)" "$(md5sum <big.rej)"

# Blank lines between records do not shift the line a reject names.
printf 'id,type,ts,unionid\n\n\nl1,view,1,u1\n\n\nl2,view,bad,u2\n\nl3,view,1,u3,extra\n' >blank.csv
run --db blank.db blank.csv
check "CSV after blank lines: a bad ts names its own line" has_line "$T/err" '^smr-ingest: blank\.csv:7: .*ts'
check "CSV after blank lines: a row with too many fields names its own line" has_line "$T/err" '^smr-ingest: blank\.csv:9: .*fields'

# GBK NDJSON too.
printf '{"id":"n1","type":"message","ts":1,"unionid":"un","text":"你好"}\n' | iconv -f UTF-8 -t GBK >gbk.ndjson
run --db gbk4.db --encoding gbk gbk.ndjson
eq "GBK NDJSON with --encoding gbk" "0 你好" "$RC $(sq gbk4.db "SELECT text FROM event")"

finish
