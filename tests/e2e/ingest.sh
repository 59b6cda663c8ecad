#!/usr/bin/env bash
# smr-ingest end to end: storing the input-record contract, the summary,
# identity resolution through the CLI, dedup on re-ingest, stdin, formats.
. "$(dirname "$0")/../lib.sh"

EV="$FIXTURES/events.ndjson"
DB=$T/a.db

# --- store the design's records ---------------------------------------
run --db "$DB" --now 2026-12-01T00:00:00Z "$EV"
status "events.ndjson: exit 0" 0
summary "events.ndjson: summary (9 read, blank line not a record, 3 persons, 2 merges)" "9 9 0 0 3 2 0"
eq "nothing on stderr for good input" "" "$(cat "$T/err")"
eq "event rows" 9 "$(sq "$DB" "SELECT count(*) FROM event")"
eq "one person after the merges" 1 "$(sq "$DB" "SELECT count(*) FROM person")"
eq "every event on the surviving pid 1" 9 "$(sq "$DB" "SELECT count(*) FROM event WHERE pid = 1")"
eq "identity rows (kind, value, pid)" "external_userid|wmA1|1 member_id|M100|1 openid|op1|1 phone|13800138000|1 unionid|oUn1|1" \
	"$(sq "$DB" "SELECT kind, value, pid FROM identity ORDER BY kind" | tr '\n' ' ' | sed 's/ $//')"
eq "merge_log rows" 2 "$(sq "$DB" "SELECT count(*) FROM merge_log WHERE survivor = 1 AND event_id = 'j-1'")"
eq "order row: type, ts, item, amount in fen, channel" "order|1795176900|SKU-A|19900|miniprogram" \
	"$(sq "$DB" "SELECT type, ts, item, amount, channel FROM event WHERE id = 'ord-9001'")"
eq "order props kept as JSON" 2 "$(sq "$DB" "SELECT json_extract(props, '\$.qty') FROM event WHERE id = 'ord-9001'")"
eq "amount 199.5 (JSON number) is 19950 fen" 19950 "$(sq "$DB" "SELECT amount FROM event WHERE id = 'o-2'")"
eq "amount 199 (JSON integer) is 19900 fen" 19900 "$(sq "$DB" "SELECT amount FROM event WHERE id = 'o-3'")"
eq "epoch ts stored as given" 1795176000 "$(sq "$DB" "SELECT ts FROM event WHERE id = 'v-1'")"
eq "naive ts read in Asia/Shanghai" 1795179600 "$(sq "$DB" "SELECT ts FROM event WHERE id = 'm-1'")"
eq "Z ts" 1795255200 "$(sq "$DB" "SELECT ts FROM event WHERE id = 'o-2'")"
eq "message text stored (UTF-8 Chinese)" "这个多少钱？" "$(sq "$DB" "SELECT text FROM event WHERE id = 'm-1'")"
eq "coupon expires in Unix seconds" 1795967999 "$(sq "$DB" "SELECT expires FROM event WHERE id = 'c-1'")"
eq "unknown type kept with its fields in props" "live_watch|12" \
	"$(sq "$DB" "SELECT type, json_extract(props, '\$.minutes') FROM event WHERE id = 'x-1'")"
eq "identifiers are not copied into props" "" "$(sq "$DB" "SELECT props FROM event WHERE id = 'j-1'")"
eq "ingested_at is --now on every event" "1796083200|1796083200" "$(sq "$DB" "SELECT min(ingested_at), max(ingested_at) FROM event")"
eq "phone normalised: +86 138 0013 8000 found the same person" 1 "$(sq "$DB" "SELECT pid FROM event WHERE id = 'v-1'")"
eq "profile attributes on the person" "小王|杭州|zhang" \
	"$(sq "$DB" "SELECT json_extract(attrs, '\$.nickname'), json_extract(attrs, '\$.city'), json_extract(attrs, '\$.staff') FROM person")"
eq "facts: orders and spend in fen" "3|59750" "$(sq "$DB" "SELECT orders, spend FROM person")"
eq "facts: first/last order" "1795176900|1795341600" "$(sq "$DB" "SELECT first_order_at, last_order_at FROM person")"
eq "facts: first/last seen and events" "1795176000|1795435200|9" "$(sq "$DB" "SELECT first_seen, last_seen, events FROM person")"
eq "facts: per-type counts" "coupon_claim:1 live_watch:1 message:1 order:3 profile:1 view:2" \
	"$(sq "$DB" "SELECT type || ':' || n FROM person_type WHERE pid = 1 ORDER BY type" | tr '\n' ' ' | sed 's/ $//')"

# --- dedup: the same file again changes nothing --------------------------
before=$(sqlite3 "$DB" .dump | md5sum)
run --db "$DB" --now 2026-12-02T00:00:00Z "$EV"
status "re-ingest: exit 0" 0
summary "re-ingest: 0 inserted, 9 duplicates, no persons" "9 0 9 0 0 0 0"
eq "re-ingest: database unchanged" "$before" "$(sqlite3 "$DB" .dump | md5sum)"

# Duplicates inside one file, and across files in one run.
printf '%s\n' '{"id":"d1","type":"view","ts":1,"unionid":"ud"}' '{"id":"d1","type":"view","ts":1,"unionid":"ud"}' \
	'{"id":"d2","type":"view","ts":1,"unionid":"ud"}' >"$T/d.ndjson"
run --db "$T/d.db" "$T/d.ndjson" "$T/d.ndjson"
status "duplicate ids in one run: exit 0" 0
summary "duplicate ids in one file and across two files" "6 2 4 0 1 0 0"
eq "duplicate ids: one row per id" "d1 d2" "$(sq "$T/d.db" "SELECT id FROM event ORDER BY id" | tr '\n' ' ' | sed 's/ $//')"
# A duplicate with other identifiers must not attach them.
printf '%s\n' '{"id":"d1","type":"view","ts":1,"unionid":"OTHER","phone":"13000000000"}' >"$T/d2.ndjson"
run --db "$T/d.db" "$T/d2.ndjson"
summary "duplicate with new identifiers: counted as duplicate" "1 0 1 0 0 0 0"
eq "duplicate with new identifiers: none attached" 0 "$(sq "$T/d.db" "SELECT count(*) FROM identity WHERE value IN ('OTHER', '13000000000')")"

# --- stdin -----------------------------------------------------------------
runin "$EV" --db "$T/s.db"
status "stdin (no file): exit 0" 0
summary "stdin (no file): summary" "9 9 0 0 3 2 0"
runin "$EV" --db "$T/s2.db" -
summary "stdin as -: summary" "9 9 0 0 3 2 0"
printf '%s\n' '{"id":"s1","type":"view","ts":1,"unionid":"u"}' 'not json' | "$ING" --db "$T/s3.db" >"$T/out" 2>"$T/err"
RC=$?
status "stdin with a bad line: exit 1" 1
check "stdin: stderr names <stdin>:2" has_line "$T/err" '^smr-ingest: <stdin>:2: '

# --- formats -----------------------------------------------------------------
cp "$EV" "$T/ev.jsonl"
run --db "$T/f1.db" "$T/ev.jsonl"
summary ".jsonl read as NDJSON" "9 9 0 0 3 2 0"
cp "$EV" "$T/ev.txt"
run --db "$T/f2.db" --format ndjson "$T/ev.txt"
summary "--format ndjson on a .txt file" "9 9 0 0 3 2 0"
printf 'id,type,ts,unionid\nc1,view,1,u1\n' >"$T/c.txt"
run --db "$T/f3.db" --format csv "$T/c.txt"
status "--format csv on a .txt file: exit 0" 0
summary "--format csv on a .txt file" "1 1 0 0 1 0 0"
printf 'id,type,ts,unionid\nc1,view,1,u1\n' >"$T/c.csv"
run --db "$T/f4.db" "$T/c.csv"
summary ".csv extension read as CSV" "1 1 0 0 1 0 0"
run --db "$T/f5.db" "$EV" "$T/c.csv"
summary "NDJSON and CSV files in one run" "10 10 0 0 4 2 0"

# --- rejected records create nothing --------------------------------------
printf '%s\n' '{"id":"r1","type":"view","ts":"2026-02-30T00:00:00Z","unionid":"uRejected","phone":"13111111111"}' \
	'{"id":"r2","type":"order","ts":1,"unionid":"uRejected2"}' '{"id":"r3","type":"view","ts":1,"unionid":"uKept"}' >"$T/r.ndjson"
run --db "$T/r.db" "$T/r.ndjson"
status "rejected records: exit 1" 1
summary "rejected records: summary" "3 1 0 2 1 0 0"
eq "rejected records create no identity" "uKept" "$(sq "$T/r.db" "SELECT group_concat(value) FROM identity")"
eq "rejected records create no person" 1 "$(sq "$T/r.db" "SELECT count(*) FROM person")"
eq "rejected records store no event" "r3" "$(sq "$T/r.db" "SELECT group_concat(id) FROM event")"

# --- identity through the CLI: recycled phone, shared device -----------------
printf '%s\n' '{"id":"i1","type":"view","ts":1,"unionid":"u1","phone":"13700000000"}' \
	'{"id":"i2","type":"order","ts":2,"unionid":"u2","phone":"13700000000","amount":"9.90"}' >"$T/i.ndjson"
for i in $(seq 1 30); do printf '{"id":"k%d","type":"view","ts":%d,"unionid":"ku%d","cookie_id":"kiosk"}\n' "$i" "$i" "$i"; done >>"$T/i.ndjson"
run --db "$T/i.db" "$T/i.ndjson"
status "identity: exit 0" 0
summary "identity: recycled phone and a shared cookie never merge" "32 32 0 0 32 0 26"
eq "recycled phone: order on u2's person, not u1's" "$(sq "$T/i.db" "SELECT pid FROM identity WHERE value = 'u2'")" \
	"$(sq "$T/i.db" "SELECT pid FROM event WHERE id = 'i2'")"
eq "recycled phone: conflict_log row" 1 "$(sq "$T/i.db" "SELECT count(*) FROM conflict_log WHERE event_id = 'i2' AND kind = 'phone'")"
eq "shared cookie: 30 unionids, 30 persons" 30 "$(sq "$T/i.db" "SELECT count(DISTINCT pid) FROM identity WHERE value LIKE 'ku%'")"

# --- batch facts: summed in memory, merges included --------------------------
# A generated shop with merges inside batches, stored in one batch, in small
# batches and from stdin (5000): every person's facts equal a recomputation
# from its events.
python3 "$TESTS_DIR/../scripts/gen-events" --persons 3000 --events 20000 --days 20 --end 2026-11-20 \
	-o "$T/g.ndjson" || fail "gen-events runs" "status $?"
FACTS="SELECT p.pid, p.events, p.orders, p.spend, p.refunds, p.refunded, p.first_order_at, p.last_order_at,
  p.first_seen, p.last_seen, p.rev FROM person p ORDER BY p.pid"
TRUTH="SELECT p.pid, count(e.eid), coalesce(sum(e.type = 'order'), 0),
  coalesce(sum(CASE WHEN e.type = 'order' THEN e.amount END), 0), coalesce(sum(e.type = 'refund'), 0),
  coalesce(sum(CASE WHEN e.type = 'refund' THEN e.amount END), 0), min(CASE WHEN e.type = 'order' THEN e.ts END),
  max(CASE WHEN e.type = 'order' THEN e.ts END), min(e.ts), max(e.ts), max(e.eid)
  FROM person p JOIN event e ON e.pid = p.pid GROUP BY p.pid ORDER BY p.pid"
for b in default 7 stdin; do
	case $b in
	default) run --db "$T/g-$b.db" "$T/g.ndjson" ;;
	stdin) run --db "$T/g-$b.db" <"$T/g.ndjson" ;;
	*) run --db "$T/g-$b.db" --batch "$b" "$T/g.ndjson" ;;
	esac
	eq "batch facts ($b): merges happened" 1 "$(sq "$T/g-$b.db" "SELECT count(*) > 10 FROM merge_log")"
	eq "batch facts ($b): every person's facts equal its events'" "$(sq "$T/g-$b.db" "$TRUTH" | cksum)" \
		"$(sq "$T/g-$b.db" "$FACTS" | cksum)"
	eq "batch facts ($b): event.max_ts" "$(sq "$T/g-$b.db" "SELECT max(ts) FROM event")" \
		"$(sq "$T/g-$b.db" "SELECT value FROM meta WHERE key = 'event.max_ts'")"
done

# --- the page cache: SMR_CACHE_MB --------------------------------------------
SMR_CACHE_MB=8 run --db "$T/c.db" "$EV"
status "SMR_CACHE_MB=8: exit 0" 0
for bad in 0 -5 abc 12x 70000; do
	SMR_CACHE_MB=$bad run --db "$T/c.db" "$EV"
	status "SMR_CACHE_MB=$bad: exit 3" 3
	check "SMR_CACHE_MB=$bad: says why" grep -q "SMR_CACHE_MB" "$T/err"
done

finish
