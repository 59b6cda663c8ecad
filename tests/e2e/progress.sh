#!/usr/bin/env bash
# Progress on standard error for long work, on a terminal only: script(1)
# gives the tool a terminal; a writer holding the database lock for 1.5 s
# makes the run long without making the test slow. Nothing with --quiet,
# nothing when stderr is not a terminal, nothing for a short run, and the
# line is erased before the tool's own output.
. "$(dirname "$0")/../lib.sh"
. "$FIXTURES/tag/helpers.sh"
command -v script >/dev/null || { ok "script(1) missing: skipped"; finish; }
cat >g.rules <<'EOF2'
timezone Asia/Shanghai
tag seen when events > 0
EOF2
gen() { # FROM TO: view events of U<n % 500>
	awk -v a="$1" -v b="$2" 'BEGIN { for (i = a; i < b; i++)
		printf "{\"id\":\"e%d\",\"type\":\"view\",\"ts\":%d,\"unionid\":\"U%d\"}\n", i, 1790000000 + i, i % 500 }'
}
gen 0 2000 >a.ndjson
gen 2000 5000 >b.ndjson
ingest "first batch" p.db g.rules a.ndjson
# hold the write lock for 1.5 s, then run CMD on a terminal; its terminal
# output (stdout and stderr) in $T/tty
locked_tty() {
	{ echo "BEGIN IMMEDIATE;"; sleep 1.5; echo "COMMIT;"; } | sqlite3 p.db &
	local holder=$!
	sleep 0.3
	script -qec "$1" /dev/null >"$T/tty" 2>&1
	wait "$holder"
}
locked_tty "$SMR_BIN/smr-ingest --db p.db --rules g.rules --batch 100 b.ndjson"
check "ingest on a terminal: progress with bytes of the total, events/s and ETA" \
	grep -qaE 'smr-ingest: ingest: [0-9.]+ MB of [0-9.]+ MB \([0-9]+%\), [0-9]+ events/s, ETA [0-9]+:[0-9]{2}:[0-9]{2}' "$T/tty"
check "ingest on a terminal: the line is erased before the summary" \
	grep -qa $'\r\033\\[K{"read":3000' "$T/tty"
eq "ingest on a terminal: every event stored" 5000 "$(sq p.db 'SELECT count(*) FROM event')"

gen 5000 8000 >c.ndjson
locked_tty "$SMR_BIN/smr-ingest --db p.db --rules g.rules --batch 100 --quiet c.ndjson"
check "ingest --quiet on a terminal: no progress" sh -c "! grep -qa 'ingest: ' '$T/tty'"
gen 8000 11000 >d.ndjson
{ echo "BEGIN IMMEDIATE;"; sleep 1.5; echo "COMMIT;"; } | sqlite3 p.db &
sleep 0.3
run --db p.db --rules g.rules --batch 100 d.ndjson
wait
eq "ingest with stderr not a terminal: stderr empty" "" "$(cat "$T/err")"

locked_tty "$SMR_BIN/smr-tag --db p.db --rules g.rules --full >tag.out"
check "smr-tag --full on a terminal: persons of the total, persons/s" \
	grep -qaE 'smr-tag: full evaluation: [0-9]+ of 500 \([0-9]+%\), [0-9]+ persons/s' "$T/tty"
eq "smr-tag --full: the changes still on stdout" 500 "$(wc -l <tag.out | tr -d ' ')"
locked_tty "$SMR_BIN/smr-tag --db p.db --rules g.rules --full"
check "smr-tag --full with the records on the terminal: no progress line among them" \
	sh -c "! grep -qa 'full evaluation' '$T/tty'"

# short runs on a terminal print nothing extra
script -qec "$SMR_BIN/smr-segment --db p.db --rules g.rules --rfm --count >rfm.out" /dev/null >"$T/tty" 2>&1
eq "smr-segment --rfm, short, on a terminal: nothing on the terminal" "" "$(tr -d '\r' <"$T/tty")"
script -qec "$SMR_BIN/smr-sop-due --db p.db --rules g.rules --simulate 3d >sim.out" /dev/null >"$T/tty" 2>&1
eq "smr-sop-due --simulate, short, on a terminal: nothing on the terminal" "" "$(tr -d '\r' <"$T/tty")"
for t in smr-ingest smr-tag smr-segment smr-sop-due; do
	invoke /dev/null "$T/o" "$T/e" "$SMR_BIN/$t" --help
	check "$t --help names --quiet" grep -q -- '--quiet' "$T/o"
done
finish
