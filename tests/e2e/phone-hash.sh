#!/usr/bin/env bash
# identity phone hash: phones stored as keyed hashes, never in clear; the
# same phone in any format is one person; lookups by phone (--set) hash
# too; a missing or short key is a rules error; another key, another hash.
. "$(dirname "$0")/../lib.sh"
printf 'identity phone priority 4 max 1 hash\n' >h.rules
cat >ev.ndjson <<'E'
{"id":"e1","type":"view","ts":"2026-11-20T10:00:00+08:00","phone":"+86 138-0013-8000"}
{"id":"e2","type":"order","ts":"2026-11-20T11:00:00+08:00","phone":"13800138000","unionid":"U1","amount":"99"}
{"id":"e3","type":"view","ts":"2026-11-20T12:00:00+08:00","phone":"13900139000"}
E
export SMR_HASH_KEY=0123456789abcdef-test-key
run --db h.db --rules h.rules ev.ndjson
eq "ingest with hashed phones: exit 0" "0" "$RC"
eq "two persons: the same phone in two formats is one" "2" "$(sqlite3 h.db 'SELECT count(*) FROM person')"
eq "phones stored as h: and 64 hex digits" "2 2" \
	"$(sqlite3 h.db "SELECT count(*) || ' ' || sum(value GLOB 'h:' || replace(hex(zeroblob(32)), '00', '[0-9a-f][0-9a-f]')) FROM identity WHERE kind = 'phone'")"
sqlite3 h.db .dump >dump.sql
check "the clear phone number appears nowhere in the database" test "$(grep -c -e 13800138000 -e 13900139000 dump.sql)" = 0
h1=$(sqlite3 h.db "SELECT value FROM identity WHERE kind = 'phone' AND pid = (SELECT pid FROM identity WHERE value = 'U1')")
want=$(python3 -c 'import hmac, hashlib, sys; print("h:" + hmac.new(sys.argv[1].encode(), b"13800138000", hashlib.sha256).hexdigest())' "$SMR_HASH_KEY")
eq "the stored value is HMAC-SHA256(key, normalised phone)" "$want" "$h1"
echo '{"phone":"138 0013 8000","tag":"vip"}' | "$SMR_BIN/smr-tag" --db h.db --rules h.rules --set >set.out 2>set.err
no_sanitizer "smr-tag --set by hashed phone" set.err
eq "--set by phone finds the person through the hash" "U1 vip" \
	"$(python3 -c 'import json,sys; r=json.loads(open(sys.argv[1]).read()); print(r["unionid"], r["tag"])' set.out)"
SMR_HASH_KEY=short run --db h2.db --rules h.rules ev.ndjson
eq "a key under 16 bytes: exit 2" "2" "$RC"
check "the error names the line and the variable" grep -q 'h.rules:1:.*SMR_HASH_KEY' "$T/err"
check "and no database is written" test ! -s h2.db
SMR_HASH_KEY=another-key-0123456789 run --db h3.db --rules h.rules ev.ndjson
check "another key gives another hash" test "$(sqlite3 h3.db "SELECT value FROM identity WHERE kind = 'phone' ORDER BY value LIMIT 1")" != "$h1"
finish
