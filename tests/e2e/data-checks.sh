#!/usr/bin/env bash
# examples/data-checks on a database the pipeline built (all hold), then
# with one violation of each invariant planted (each named, exit 1), and
# on a database it cannot read (exit 3).
. "$(dirname "$0")/../lib.sh"
CHECKS="$TESTS_DIR/../examples/data-checks"
RULES="$TESTS_DIR/../examples/shop.rules"
python3 "$TESTS_DIR/../scripts/gen-events" --persons 200 --events 2500 --days 10 --end 2026-11-20 -o ev.ndjson
run --db d.db --rules "$RULES" --now 2026-11-20T12:00:00 ev.ndjson
"$SMR_BIN/smr-tag" --db d.db --rules "$RULES" --now 2026-11-20T12:00:00 2>tag.err |
	"$SMR_BIN/smr-sop-due" --db d.db --rules "$RULES" --now 2026-11-20T20:30:00 >touches.out 2>due.err
no_sanitizer "smr-tag | smr-sop-due" tag.err due.err
check "the pipeline queued touches to check" test -s touches.out
sh "$CHECKS" d.db >ok.out 2>ok.err
eq "a database the pipeline built: exit 0, nothing printed" "0||" "$?|$(cat ok.out)|$(cat ok.err)"

cp d.db bad.db
pid=$(sqlite3 bad.db "SELECT pid FROM tag WHERE tag = 'never_bought' LIMIT 1")
check "setup: bad.db broken three ways" sqlite3 bad.db "INSERT INTO tag(pid, tag, since, source) VALUES ($pid, 'repeat_buyer', 0, 'rule');
	UPDATE touch SET enrollment = 999999 WHERE id = (SELECT min(id) FROM touch);
	INSERT INTO identity(kind, value, pid, first_seen) VALUES ('unionid', 'ghost', 999999, 0);"
sh "$CHECKS" bad.db >bad.out 2>bad.err
eq "three planted violations: exit 1" "1" "$?"
eq "each named on stderr" "3" "$(grep -c '^data check failed' bad.err)"
check "the ladder violation names the person" grep -q "purchase|$pid|" bad.err
sh "$CHECKS" missing.db >/dev/null 2>&1
eq "a missing database: exit 3" "3" "$?"
finish
