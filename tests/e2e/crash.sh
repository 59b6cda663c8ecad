#!/usr/bin/env bash
# Crash safety (kill -9 mid-batch, then re-run) and two concurrent
# smr-ingest processes on one database.
. "$(dirname "$0")/../lib.sh"

GEN="$FIXTURES/gen-events.awk"
count() { sq "$1" 'SELECT count(*) FROM event' 2>/dev/null || echo 0; }

# wait_for DB PID MIN: until the database holds at least MIN events or the
# process ends (at most ~60 s). Returns 0 if the process is still running.
wait_for() {
	local i
	for ((i = 0; i < 1200; i++)); do
		kill -0 "$2" 2>/dev/null || return 1
		[ "$(count "$1")" -ge "$3" ] && { kill -0 "$2" 2>/dev/null; return; }
		sleep 0.05
	done
	kill -0 "$2" 2>/dev/null
}

# --- kill -9 mid-batch, twice, then a run to completion ---------------------------
N=60000 U=6000 B=500
awk -v N=$N -v U=$U -f "$GEN" >k.ndjson
sed 's/^{"id":"\([^"]*\)".*/\1/' k.ndjson | sort >ids.expected
run --db k.db </dev/null   # create the database first, so polling never creates it
status "setup: k.db created" 0

"$ING" --db k.db --batch $B k.ndjson >/dev/null 2>kill1.err &
pid=$!
if wait_for k.db $pid $((N / 3)); then
	modes=$(stat -c %a k.db k.db-wal k.db-shm 2>&1 | tr '\n' ' ')
	kill -9 $pid
	{ wait $pid; } 2>/dev/null
	rc=$?
	eq "kill -9 #1: the process died of SIGKILL mid-run" 137 "$rc"
else
	{ wait $pid; } 2>/dev/null
	fail "kill -9 #1: the process died of SIGKILL mid-run" "it ended (status $?) before it could be killed"
fi
n1=$(count k.db)
check "kill -9 #1: some but not all events committed ($n1 of $N)" test "$n1" -gt 0 -a "$n1" -lt $N
eq "kill -9 #1: only whole batches of $B committed ($n1 events)" 0 $((n1 % B))
eq "kill -9 #1: database integrity ok" ok "$(sq k.db 'PRAGMA integrity_check')"
facts_consistent "kill -9 #1" k.db
eq "while writing: k.db, k.db-wal and k.db-shm are mode 0600" "600 600 600 " "${modes:-not captured}"

"$ING" --db k.db --batch $B k.ndjson >kill2.out 2>kill2.err &
pid=$!
if wait_for k.db $pid $((n1 + N / 4)); then
	kill -9 $pid
	{ wait $pid; } 2>/dev/null
	eq "kill -9 #2 (during the re-run): SIGKILL" 137 "$?"
else
	{ wait $pid; } 2>/dev/null
	ok "kill -9 #2 (during the re-run): the run finished first (status $?)"
fi
n2=$(count k.db)
check "kill -9 #2: no events lost ($n2 >= $n1)" test "$n2" -ge "$n1"
eq "kill -9 #2: whole batches only" 0 $((n2 % B))

run --db k.db --batch $B k.ndjson
status "after kill -9: the re-run exits 0" 0
summary "after kill -9: the re-run inserts the rest, the committed ones are duplicates" "$N $((N - n2)) $n2 0 $(field new_persons) $(field merges) 0"
eq "after kill -9: $N events" $N "$(count k.db)"
sq k.db 'SELECT id FROM event ORDER BY id' | sort >ids.stored
if cmp -s ids.expected ids.stored; then
	ok "after kill -9: every event id present exactly once"
else
	fail "after kill -9: every event id present exactly once" \
		"missing $(comm -23 ids.expected ids.stored | wc -l), extra/duplicated $(sort ids.stored | uniq -d | wc -l)"
fi
eq "after kill -9: one person per human ($U)" $U "$(sq k.db 'SELECT count(*) FROM person')"
eq "after kill -9: identities (unionid and phone each)" $((2 * U)) "$(sq k.db 'SELECT count(*) FROM identity')"
eq "after kill -9: every person holds one unionid and one phone" $U \
	"$(sq k.db "SELECT count(*) FROM (SELECT pid FROM identity GROUP BY pid HAVING sum(kind = 'unionid') = 1 AND sum(kind = 'phone') = 1)")"
eq "after kill -9: each merge logged once ($U)" $U "$(sq k.db 'SELECT count(*) FROM merge_log')"
eq "after kill -9: spend equals the sum of order amounts" "$(sq k.db "SELECT sum(amount) FROM event WHERE type = 'order'")" \
	"$(sq k.db 'SELECT sum(spend) FROM person')"
facts_consistent "after kill -9" k.db
eq "after kill -9: integrity ok" ok "$(sq k.db 'PRAGMA integrity_check')"
run --db k.db k.ndjson
summary "after kill -9: a further run is all duplicates" "$N 0 $N 0 0 0 0"

# --- two concurrent processes on one database, overlapping files -------------------
N=48000 U=4000
awk -v N=$N -v U=$U -f "$GEN" >all.ndjson
head -n 30000 all.ndjson >c1.ndjson
tail -n +18001 all.ndjson >c2.ndjson                     # lines 18001..48000: 12000 overlap
echo '{"id":"bad","type":"order","ts":1,"unionid":"u1"}' >>c2.ndjson   # one reject: exit 1
run --db cc.db </dev/null
status "setup: cc.db created" 0
"$ING" --db cc.db --batch 500 c1.ndjson >c1.out 2>c1.err &
p1=$!
"$ING" --db cc.db --batch 500 c2.ndjson >c2.out 2>c2.err &
p2=$!
wait $p1
r1=$?
wait $p2
r2=$?
eq "concurrent: process 1 exits 0" 0 "$r1"
eq "concurrent: process 2 exits 1 (its one bad record)" 1 "$r2"
f() { sed -n "s/.*\"$2\":\([0-9][0-9]*\).*/\1/p" "$1"; }
eq "concurrent: inserted counts add up to $N" $N $(($(f c1.out inserted) + $(f c2.out inserted)))
eq "concurrent: duplicates add up to the 12000 overlap" 12000 $(($(f c1.out duplicates) + $(f c2.out duplicates)))
eq "concurrent: each event stored once" "$N $N" "$(sq cc.db 'SELECT count(*), count(DISTINCT id) FROM event' | tr '|' ' ')"
eq "concurrent: persons not duplicated ($U, one per unionid)" "$U $U" \
	"$(sq cc.db "SELECT (SELECT count(*) FROM person), (SELECT count(DISTINCT pid) FROM identity WHERE kind = 'unionid')" | tr '|' ' ')"
eq "concurrent: every person holds one unionid and one phone" $U \
	"$(sq cc.db "SELECT count(*) FROM (SELECT pid FROM identity GROUP BY pid HAVING sum(kind = 'unionid') = 1 AND sum(kind = 'phone') = 1)")"
facts_consistent "concurrent" cc.db
check "concurrent: no database errors on stderr" bash -c "! grep -qiE 'locked|busy|database' c1.err c2.err"

# A new database still in rollback-journal mode whose write lock is held
# (what a second smr-ingest meets while the first creates the database):
# smr-ingest must wait on the busy timeout, not fail.
echo '{"id":"l1","type":"view","ts":1,"unionid":"ul"}' >l.ndjson
(echo "BEGIN IMMEDIATE;"; echo "CREATE TABLE holder(a);"; sleep 2; echo "COMMIT;") | sqlite3 locked.db &
hp=$!
sleep 0.5
run --db locked.db l.ndjson
wait $hp
eq "a database write-locked during creation: smr-ingest waits, then exits 0" "0 1" "$RC $(sq locked.db 'SELECT count(*) FROM event' 2>/dev/null)"

# On a database that does not exist yet (two cron jobs on a fresh install).
# The race is at creation, so many short rounds; stop at the first failure.
awk -v N=300 -v U=30 -f "$GEN" >small.ndjson
head -n 200 small.ndjson >s1.ndjson
tail -n +101 small.ndjson >s2.ndjson
why="" rounds=30
for ((round = 1; round <= rounds; round++)); do
	rm -f fresh.db fresh.db-wal fresh.db-shm
	"$ING" --db fresh.db s1.ndjson >/dev/null 2>s1.err &
	p1=$!
	"$ING" --db fresh.db s2.ndjson >/dev/null 2>s2.err &
	p2=$!
	wait $p1
	r1=$?
	wait $p2
	r2=$?
	n=$(count fresh.db)
	if [ "$r1$r2" != 00 ] || [ "$n" != 300 ]; then
		why="round $round: exit $r1 and $r2, $n of 300 events; $(cat s1.err s2.err | head -2)"
		break
	fi
done
eq "concurrent on a fresh database: both succeed and store every event, $rounds rounds" "" "$why"

finish
