#!/usr/bin/env bash
# Every bad-record class: verbatim in --rejects, "smr-ingest: FILE:LINE:
# reason" on stderr, the rest lands, exit 1.
. "$(dirname "$0")/../lib.sh"

B=bad.ndjson
{
	echo '{"id":"g1","type":"view","ts":1,"unionid":"uGood1"}'                                  # 1 good
	echo '{"id":"b2","type":"view","ts":1,"unionid":"uBad2"'                                    # 2 malformed JSON
	printf '{"id":"b3","type":"view","ts":1,"unionid":"uBad3\xff\xfe"}\n'                       # 3 invalid UTF-8
	echo '{"type":"view","ts":1,"unionid":"uBad4"}'                                             # 4 missing id
	echo '{"id":"b5","ts":1,"unionid":"uBad5"}'                                                 # 5 missing type
	echo '{"id":"b6","type":"view","unionid":"uBad6"}'                                          # 6 missing ts
	echo '{"id":"b7","type":"view","ts":1,"city":"上海"}'                                         # 7 no identifier
	echo '{"id":"b8","type":"view","ts":"2026-02-30T10:00:00+08:00","unionid":"uBad8"}'         # 8 impossible date
	echo '{"id":"b9","type":"order","ts":1,"unionid":"uBad9","amount":"1.005"}'                 # 9 bad money
	echo '{"id":"b10","type":"order","ts":1,"unionid":"uBad10"}'                                # 10 order without amount
	echo '{"id":"b11","type":"message","ts":1,"unionid":"uBad11"}'                              # 11 message without text
	echo '{"id":"b12","type":"view","ts":true,"unionid":"uBad12"}'                              # 12 wrong type (ts)
	echo '{"id":"b13","type":"view","ts":1,"ids":{"weibo_uid":"uBad13"}}'                       # 13 unknown identifier kind
	echo '{"id":"g14","type":"view","ts":1,"unionid":"uGood14"}'                                # 14 good
	printf '{"id":"b15","type":"view","ts":1,"unionid":"uBad15","pad":"%s"}\n' "$(head -c 1100000 /dev/zero | tr '\0' x)" # 15 > 1 MiB
	echo '[{"id":"b16","type":"view","ts":1,"unionid":"uBad16"}]'                               # 16 not an object
	echo '{"id":"b17","type":"view","ts":1,"phone":"call me"}'                                  # 17 bad phone
	echo '{"id":"b18","type":"view","ts":1,"unionid":"uBad18","item":42}'                       # 18 wrong type (item)
	echo '{"id":"b19","type":"view","ts":1,"unionid":{"v":"uBad19"}}'                           # 19 wrong type (identifier)
	echo '{"id":"b20","type":"order","ts":1,"unionid":"uBad20","amount":"-5.00"}'               # 20 negative money
	echo '{"id":"b21","type":"view","ts":1,"unionid":"uBad21","props":[1]}'                     # 21 props not an object
	echo ''                                                                                     # 22 blank: not a record
	echo '{"id":"b23","type":"view","ts":"2025-02-29","unionid":"uBad23"}'                      # 23 impossible date (no leap)
	echo '{"id":"b24","type":"view","ts":"2026-11-20T20:15:00+08:00 junk","unionid":"uBad24"}'  # 24 trailing junk
	echo '{"id":["b25"],"type":"view","ts":1,"unionid":"uBad25"}'                               # 25 wrong type (id)
	echo '{"id":"g26","type":"view","ts":"2024-02-29","unionid":"uGood26"}'                     # 26 good (leap day)
	printf '{"id":"b27","type":"view","ts":1,"unionid":"uBad27"}garbage\n'                      # 27 trailing garbage
	printf '{"id":"g28","type":"view","ts":1,"unionid":"uGood28"}'                              # 28 good, no final newline
} >"$B"
bad_lines="2 3 4 5 6 7 8 9 10 11 12 13 15 16 17 18 19 20 21 23 24 25 27"
nbad=$(echo $bad_lines | wc -w)

run --db t.db --rejects rej.ndjson "$B"
status "bad records: exit 1" 1
summary "bad records: 27 read, 4 inserted, $nbad rejected" "27 4 0 $nbad 4 0 0"
eq "good records landed, bad ones did not" "g1 g14 g26 g28" "$(sq t.db "SELECT id FROM event ORDER BY eid" | tr '\n' ' ' | sed 's/ $//')"
eq "rejected records create no identity or person" "4 4" "$(sq t.db "SELECT count(*) FROM identity WHERE value LIKE 'uGood%'") $(sq t.db "SELECT count(*) FROM person")"
eq "no identity from any rejected record" 0 "$(sq t.db "SELECT count(*) FROM identity WHERE value NOT LIKE 'uGood%'")"
eq "one stderr line per rejected record" "$nbad" "$(wc -l <"$T/err")"

# The reason for each class, on the right line.
reason() { # LINE ERE NAME
	if grep -qE "^smr-ingest: $B:$1: .*($2)" "$T/err"; then
		ok "stderr: $B:$1: $3"
	else
		fail "stderr: $B:$1: $3" "no line matching '$B:$1: .*($2)' in: $(grep -F "$B:$1:" "$T/err" | cut -c1-200)"
	fi
}
reason 2 'JSON' "malformed JSON"
reason 3 'UTF-8' "invalid UTF-8"
reason 4 '"?id"?' "missing id"
reason 5 '"?type"?' "missing type"
reason 6 '"?ts"?' "missing ts"
reason 7 'identifier' "missing identifier"
reason 8 'impossible date' "impossible date 2026-02-30"
reason 9 'money|amount' "bad money 1.005"
reason 10 'amount' "order without amount"
reason 11 'text' "message without text"
reason 12 '"?ts"?' "wrong field type (ts true)"
reason 13 'weibo_uid' "unknown identifier kind in ids"
reason 15 '1048576|longer|too long|MiB' "line over 1 MiB"
reason 16 'object' "a JSON array is not a record"
reason 17 'phone' "bad phone number"
reason 18 '"?item"?' "wrong field type (item 42)"
reason 19 'unionid' "wrong field type (identifier object)"
reason 20 'money|amount|negative' "negative money"
reason 21 'props' "props not an object"
reason 23 'impossible date' "impossible date 2025-02-29"
reason 24 'trailing|ISO|ts' "trailing junk after the time"
reason 25 '"?id"?' "wrong field type (id array)"
reason 27 'JSON' "trailing garbage after the object"
check "stderr names no good or blank line" bash -c "! grep -qE '^smr-ingest: $B:(1|14|22|26|28): ' '$T/err'"

# The rejects file: exactly the bad lines, verbatim, in order.
sed -n "$(for n in $bad_lines; do printf '%sp;' "$n"; done)" "$B" >expected.ndjson
if cmp -s expected.ndjson rej.ndjson; then
	ok "--rejects holds the bad lines verbatim (invalid UTF-8 and the 1 MiB line included)"
else
	fail "--rejects holds the bad lines verbatim (invalid UTF-8 and the 1 MiB line included)" \
		"$(cmp expected.ndjson rej.ndjson 2>&1 | head -1); lines $(wc -l <rej.ndjson) vs $(wc -l <expected.ndjson)"
fi
eq "--rejects has one line per reject" "$nbad" "$(wc -l <rej.ndjson)"

# The rejects file can be fixed and re-ingested: as is, it is all rejected again.
run --db t.db rej.ndjson
status "re-ingesting the rejects unchanged: exit 1" 1
summary "re-ingesting the rejects unchanged: all rejected again" "$nbad 0 0 $nbad 0 0 0"
# Fixed: line 10 given an amount, line 11 a text.
grep -F '"id":"b10"' rej.ndjson | sed 's/}$/,"amount":"10.00"}/' >fixed.ndjson
grep -F '"id":"b11"' rej.ndjson | sed 's/}$/,"text":"你好"}/' >>fixed.ndjson
run --db t.db fixed.ndjson
status "fixed rejects: exit 0" 0
summary "fixed rejects land" "2 2 0 0 2 0 0"
eq "fixed order stored in fen" 1000 "$(sq t.db "SELECT amount FROM event WHERE id = 'b10'")"

# Without --rejects the run is the same, minus the file.
run --db t2.db "$B"
status "without --rejects: exit 1" 1
summary "without --rejects: same counts" "27 4 0 $nbad 4 0 0"

# Only bad records: exit 1, nothing stored.
printf '%s\n' '{"id":"x"}' '{' >allbad.ndjson
run --db t3.db allbad.ndjson
status "only bad records: exit 1" 1
summary "only bad records: summary" "2 0 0 2 0 0 0"

# A line of exactly 1 MiB of JSON is still a record.
pre='{"id":"big","type":"view","ts":1,"unionid":"uBig","pad":"'
printf '%s%s"}\n' "$pre" "$(head -c $((1048576 - ${#pre} - 2)) /dev/zero | tr '\0' y)" >edge.ndjson
run --db t4.db edge.ndjson
eq "a line of exactly 1 MiB is accepted ($(($(wc -c <edge.ndjson) - 1)) bytes)" "0 1" "$RC $(field inserted)"

# Rejects hold raw personal data: created 0600 whatever the umask.
rm -f mode.rej
(umask 022 && "$ING" --db mode.db --rejects mode.rej "$B" >/dev/null 2>&1)
eq "rejects file created 0600 under umask 022" "600" "$(stat -c %a mode.rej)"

# Rejects are written after their batch commits: a run that fails with
# exit 3 before committing wrote none of that batch's rejects, so running
# it again writes each exactly once.
printf '%s\n' '{"id":"x1","type":"view","ts":1}' '{"id":"x2","type":"view","ts":1,"unionid":"ux2"}' \
	'{"id":"x3","type":"order","ts":1,"unionid":"ux3"}' '{"id":"x4","type":"view","ts":1,"unionid":"ux4"}' >x.ndjson
run --db x.db </dev/null
status "setup: an empty x.db" 0
check "setup: a trigger that fails mid-batch" sq x.db "CREATE TRIGGER boom BEFORE INSERT ON event WHEN NEW.id = 'x4' BEGIN SELECT RAISE(ABORT, 'disk on fire'); END;"
run --db x.db --rejects x.rej x.ndjson
status "database failure mid-batch: exit 3" 3
eq "database failure mid-batch: no rejects written for the rolled-back batch" "0" "$(wc -l <x.rej)"
check "setup: the failing trigger dropped" sq x.db "DROP TRIGGER boom"
run --db x.db --rejects x.rej x.ndjson
status "re-run after exit 3: exit 1" 1
eq "re-run after exit 3: each reject exactly once" "x1 x3" "$(sed 's/.*"id":"\([^"]*\)".*/\1/' x.rej | tr '\n' ' ' | sed 's/ $//')"
# With small batches each batch's rejects follow its commit, in input order.
run --db y.db --batch 1 --rejects y.rej x.ndjson
eq "--batch 1: rejects in input order" "x1 x3" "$(sed 's/.*"id":"\([^"]*\)".*/\1/' y.rej | tr '\n' ' ' | sed 's/ $//')"
# Only rejects, no event: still written (in bounded spools).
printf '{"id":"r%d","type":"view","ts":1}\n' $(seq 1 25) >onlybad.ndjson
run --db z.db --batch 10 --rejects z.rej onlybad.ndjson
eq "only rejects: all 25 written" "25" "$(wc -l <z.rej)"

finish
