#!/usr/bin/env bash
# What a rules file can make smr spend: recursive WITH refused at --check,
# constant blow-ups refused at --check, a condition over its step budget or
# the length cap stops the run with exit 2 naming the rule and the person,
# commits nothing of its batch and releases the write lock at once.
. "$(dirname "$0")/../lib.sh"
. "$FIXTURES/tag/helpers.sh"
SEG="$SMR_BIN/smr-segment"

for i in 1 2 3 4; do
	ev "e$i" view 2026-11-20T10:00:00Z "u$i"
	ev "o$i" order 2026-11-20T11:00:00Z "u$i" ',"amount":"10"'
done >ev.ndjson
ingest "setup" db.db /dev/null ev.ndjson
NOW=--now=2026-11-21T00:00:00Z

# bad_check NAME RULES LINE[:COL] REASON-ERE: --check refuses with exit 2
bad_check() {
	printf 'timezone UTC\ntag fine when events > 0\n%s\n' "$2" >b.rules
	tag --check --rules b.rules --db never.db
	if [ "$TRC" = 2 ] && grep -qE -- "^smr-tag: b\.rules:$3: $4" "$T/terr" && [ ! -e never.db ]; then
		ok "--check: $1"
	else
		fail "--check: $1" "status $TRC, stderr: $(cat "$T/terr")"
	fi
}
bad_check "WITH RECURSIVE refused" "tag loop when (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c) > 0" 3:15 'not allowed: a recursive WITH'
bad_check "a recursive WITH without the keyword refused" "tag loop when (WITH c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT max(x) FROM c) > 0" 3:15 'not allowed: a recursive WITH'
bad_check "a recursive WITH in a segment refused" "segment loop when pid IN (WITH c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT x FROM c)" 3:19 'not allowed: a recursive WITH'
bad_check "zeroblob(1e9) refused" "tag big when length(zeroblob(1000000000)) > 0" 3:14 'a string or blob over the length limit'
bad_check "replace() blow-up on constants refused" "tag big when length(replace(hex(zeroblob(3000000)), '0', 'xxxxxxxxxx')) > 0" 3:14 'a string or blob over the length limit'
bad_check "printf() refused" "tag big when length(printf('%.*c', 200000000 + pid, 'x')) > 0" 3:21 'not allowed: printf\(\) is not for rules'
bad_check "format() refused" "tag big when length(FORMAT('%d', pid)) > 0" 3:21 'not allowed: format\(\) is not for rules'
bad_check "the budget markers are not for rules" "tag sneaky when smr_rule_enter(0, pid) and events > 0" 3:[0-9]+ '(not allowed|no such function)'
long=$(head -c 1048600 /dev/zero | tr '\0' x)
bad_check "a line over 1 MiB refused, naming it" "tag long when events > 0 -- $long" 3:1 'line is longer than 1048576 bytes'
{ printf 'timezone UTC\n'; for i in $(seq 17); do printf '# %s\n' "${long:0:1048000}"; done; printf 'tag fine when events > 0\n'; } >big.rules
tag --check --rules big.rules
if [ "$TRC" = 2 ] && grep -qE '^smr-tag: big\.rules:[0-9]+:1: the rules file is larger than 16777216 bytes' "$T/terr"; then
	ok "--check: a rules file over 16 MiB refused"
else
	fail "--check: a rules file over 16 MiB refused" "status $TRC, stderr: $(head -c 300 "$T/terr")"
fi
{ printf 'timezone UTC\n# %s\n' "${long:0:1048000}"; printf 'tag fine when events > 0\n'; } >ok.rules
tag --check --rules ok.rules
tstatus "--check: a comment line just under 1 MiB is read" 0
tag --check --rules b.rules --rule-steps 0
tstatus "--rule-steps 0 is a usage error" 2
tag --check --rules b.rules --rule-steps 12x
tstatus "--rule-steps 12x is a usage error" 2

# A non-recursive cross join that takes forever, per person.
SLOW="(SELECT count(*) FROM event a, event b, event c, event d, event e, event f, event g, event h, event i, event j, event k, event l, event m, event n, event o, event p, event q, event r, event s, event t WHERE a.pid = facts.pid) > 0"
printf 'timezone UTC\ntag fine when events > 0\n\ntag slow when %s\n' "$SLOW" >slow.rules
cp db.db before.db
start=$(date +%s)
tag --db db.db --rules slow.rules "$NOW" --rule-steps 200000
tstatus "over the step budget: exit 2" 2
check "over the step budget: names the tag, file:line and the person" \
	grep -qE '^smr-tag: slow\.rules:4: tag slow: over the step budget \(200000 steps for one person\) for person [0-9]+' "$T/terr"
eq "over the step budget: nothing written" "0 0" "$(sq db.db "SELECT (SELECT count(*) FROM tag) || ' ' || (SELECT count(*) FROM tag_log)")"
check "over the step budget: no record printed" test ! -s "$T/tout"

# The default budget: stops on its own in bounded time while a second
# writer waits for the lock and then writes.
"$TAG" --db db.db --rules slow.rules "$NOW" >bg.out 2>bg.err &
tagpid=$!
sleep 0.3
ev late view 2026-11-20T12:00:00Z u9 >late.ndjson
timeout 60 "$ING" --db db.db --rules /dev/null late.ndjson >ing.out 2>ing.err
irc=$?
wait $tagpid
TRC=$?
end=$(date +%s)
eq "default budget: smr-tag exits 2" 2 "$TRC"
check "default budget: names the rule" grep -q 'slow.rules:4: tag slow: over the step budget (50000000 steps' bg.err
no_sanitizer "background smr-tag" bg.err
eq "a writer waiting on the lock gets it after the stop" 0 "$irc"
check "default budget: the whole test ran in bounded time (< 60 s)" test $((end - start)) -lt 60
eq "the waiting writer's event is stored" 1 "$(sq db.db "SELECT count(*) FROM event WHERE id = 'late'")"

# Unbounded allocation, different per person (not a constant).
printf 'timezone UTC\ntag fine when events > 0\ntag big when length(randomblob(1000000000 + pid)) > 0\n' >big.rules
tag --db db.db --rules big.rules "$NOW"
tstatus "randomblob(1e9): exit 2" 2
check "randomblob(1e9): names the tag and the person" \
	grep -qE '^smr-tag: big\.rules:3: tag big: a string or blob over the length limit \([0-9]+ bytes\) for person [0-9]+' "$T/terr"
eq "nothing written after the stops" 0 "$(sq db.db "SELECT count(*) FROM tag")"
tag --db db.db --rules /dev/null "$NOW" --full
tstatus "a run after the stops works" 0
eq "... and removes the rule tags of rules no longer in the file" 0 "$(sq db.db "SELECT count(*) FROM tag")"

# smr-segment: a named segment over the budget, read-only and --as-tag.
printf 'timezone UTC\nsegment slow when %s\n' "$SLOW" >seg.rules
invoke /dev/null "$T/sout" "$T/serr" "$SEG" --db db.db --rules seg.rules "$NOW" --rule-steps 200000 slow
status_is "smr-segment: a segment over the budget exits 2" "$INVOKED" 2 "$T/serr"
check "smr-segment: names the segment, file:line and the person" \
	grep -qE '^smr-segment: seg\.rules:2: segment slow: over the step budget .* for person [0-9]+' "$T/serr"
invoke /dev/null "$T/sout" "$T/serr" "$SEG" --db db.db --rules seg.rules "$NOW" --rule-steps 200000 --as-tag s slow
status_is "smr-segment --as-tag: over the budget exits 2" "$INVOKED" 2 "$T/serr"
eq "smr-segment --as-tag: no tag written" 0 "$(sq db.db "SELECT count(*) FROM tag WHERE tag = 's'")"
invoke /dev/null "$T/sout" "$T/serr" "$SEG" --db db.db --rules seg.rules "$NOW" --count 'not fine'
status_is "smr-segment: an expression not naming the segment runs" "$INVOKED" 0 "$T/serr"

# timezone: a directory or a non-zone file is a rules error, not UTC
tz_err() {
	printf '# rules\ntimezone %s\ntag fine when events > 0\n' "$2" >tz.rules
	tag --check --rules tz.rules
	if [ "$TRC" = 2 ] && grep -qE "^smr-tag: tz\.rules:2:10: $3" "$T/terr"; then
		ok "timezone $2: $1"
	else
		fail "timezone $2: $1" "status $TRC, stderr: $(cat "$T/terr")"
	fi
}
tz_err "a directory is refused at 2:10" Asia 'unknown time zone "Asia" \(.* is not a time zone file'
tz_err "a file that is not TZif is refused" leapseconds 'unknown time zone "leapseconds" \(.* is not a time zone file'
tz_err "a missing zone is refused" Asia/Atlantis 'unknown time zone "Asia/Atlantis"'
printf 'timezone America/New_York\ntag fine when events > 0\n' >tz.rules
tag --check --rules tz.rules
tstatus "timezone America/New_York passes" 0

# durations: too large is a rules error, a long run of parts no overflow
printf 'timezone UTC\ntag w when count(%s, %s) > 0\n' "'view'" "'36601d'" >dur.rules
tag --check --rules dur.rules
tstatus "a window over 36600d is refused" 2
long=$(printf '99999999w%.0s' $(seq 12000))
printf 'timezone UTC\ntag w when count(%s, %s) > 0\n' "'view'" "'$long'" >dur.rules
tag --check --rules dur.rules
tstatus "a window of 12000 x 99999999w is refused (no signed overflow)" 2
printf 'timezone UTC\npolicy\n  dedup %s\nend\n' "$long" >dur.rules
tag --check --rules dur.rules
tstatus "a policy duration of 12000 x 99999999w is refused" 2

# policy: 40 dnd tags all hold; a 33rd cap is an error
{
	printf 'timezone UTC\npolicy\n  dnd tag'
	for i in $(seq 40); do printf ' d%s' "$i"; done
	printf '\n  cap any'
	for i in $(seq 33); do printf ' %s/%sh' "$i" "$i"; done
	printf '\nend\n'
} >pol.rules
tag --check --rules pol.rules
tstatus "33 caps: exit 2" 2
check "33 caps: the 33rd is named" grep -qE '^smr-tag: pol\.rules:4:[0-9]+: too many caps: at most 32' "$T/terr"

finish
