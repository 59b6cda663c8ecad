#!/usr/bin/env bash
# smr-ingest's front door: --help, --version, usage errors (2), I/O and
# database failures (3, nothing written), the database file and schema.
. "$(dirname "$0")/../lib.sh"

echo '{"id":"e1","type":"view","ts":1,"unionid":"u1"}' >good.ndjson

run --help
status "--help: exit 0" 0
check "--help: usage on stdout" has_line "$T/out" 'usage: .*smr-ingest'
check "--help: mentions --rejects" has_line "$T/out" '--rejects'
check "--help: creates no database" test ! -e smr.db
run --version
status "--version: exit 0" 0
check "--version: 'smr-ingest VERSION' on stdout" has_line "$T/out" '^smr-ingest [0-9]+\.[0-9]+'

usage_error "unknown option --frobnicate" ingest --frobnicate good.ndjson
usage_error "--format xml" ingest --format xml good.ndjson
usage_error "--encoding latin1" ingest --encoding latin1 good.ndjson
usage_error "--batch 0" ingest --batch 0 good.ndjson
usage_error "--batch abc" ingest --batch abc good.ndjson
usage_error "--batch -5" ingest --batch -5 good.ndjson
usage_error "--batch 5x" ingest --batch 5x good.ndjson
usage_error "--now bogus" ingest --now bogus good.ndjson
usage_error "--now 2026-02-30" ingest --now 2026-02-30T00:00:00Z good.ndjson
run good.ndjson --db
status "--db without its argument: exit 2" 2
run --frobnicate
check "unknown option: usage on stderr" has_line "$T/err" 'usage:'
check "unknown option: named on stderr" has_line "$T/err" '^smr-ingest: .*--frobnicate'

# --- a missing input file: exit 3 and nothing written ----------------------------
run --db m.db --rejects m.rej good.ndjson missing.ndjson
status "missing input file: exit 3" 3
check "missing input file: 'smr-ingest: missing.ndjson: reason'" has_line "$T/err" '^smr-ingest: missing\.ndjson: .+'
check "missing input file: no database created (even for the good file before it)" test ! -e m.db
check "missing input file: no rejects file created" test ! -e m.rej
eq "missing input file: no summary on stdout" "" "$(cat "$T/out")"
run --db m.db good.ndjson
dump=$(sqlite3 m.db .dump | md5sum)
echo '{"id":"e2","type":"view","ts":1,"unionid":"u2"}' >more.ndjson
run --db m.db more.ndjson missing.ndjson
status "missing input file with an existing db: exit 3" 3
eq "missing input file with an existing db: db unchanged" "$dump" "$(sqlite3 m.db .dump | md5sum)"

# --- database failures: exit 3 ------------------------------------------------------
run --db no/such/dir/x.db good.ndjson
status "database in a missing directory: exit 3" 3
check "database in a missing directory: reported on stderr" has_line "$T/err" '^smr-ingest: .*no/such/dir/x\.db'
echo "this is not a database, just text that is long enough to fill a page header......" >notadb.db
run --db notadb.db good.ndjson
status "a file that is not a database: exit 3" 3
run --db m.db good.ndjson
status "setup: m.db from good.ndjson" 0
check "setup: m.db marked as from a newer smr" sqlite3 m.db 'PRAGMA user_version = 999'
run --db m.db more.ndjson
status "a database from a newer smr: exit 3" 3
check "a database from a newer smr: says so" has_line "$T/err" '^smr-ingest: .*(newer|version)'
eq "a database from a newer smr: left alone" "0 999" "$(sq m.db "SELECT count(*) FROM event WHERE id = 'e2'") $(sq m.db 'PRAGMA user_version')"
check "setup: newer.db created with a newer user_version" sqlite3 newer.db 'CREATE TABLE x(a); PRAGMA user_version = 999' >/dev/null
run --db newer.db more.ndjson
status "a newer database in rollback mode: exit 3" 3
eq "a newer database in rollback mode: not switched to WAL" delete "$(sq newer.db 'PRAGMA journal_mode')"
mkdir dir.ndjson
run --db d.db dir.ndjson
status "a directory as input: exit 3" 3
run --db r.db --rejects no/such/dir/rej good.ndjson
status "an unwritable --rejects path: exit 3" 3

# --- the database file -----------------------------------------------------------------
(umask 000 && "$ING" --db mode.db good.ndjson >/dev/null 2>&1)
eq "database created mode 0600 (even with umask 000)" 600 "$(stat -c %a mode.db)"
(umask 022 && "$ING" --db mode2.db good.ndjson >/dev/null 2>&1)
eq "database created mode 0600 (umask 022)" 600 "$(stat -c %a mode2.db)"
v=$(sq mode.db 'PRAGMA user_version')
check "schema user_version is set (got $v)" test "$v" -ge 1
eq "journal_mode is WAL" wal "$(sq mode.db 'PRAGMA journal_mode')"
eq "re-opening keeps user_version" "$v" "$(run --db mode.db </dev/null; sq mode.db 'PRAGMA user_version')"
# The SQL surface: these queries must prepare.
for q in "SELECT pid, created_at, first_seen, last_seen, events, orders, spend, first_order_at, last_order_at, attrs FROM person" \
	"SELECT kind, value, pid FROM identity" \
	"SELECT eid, id, pid, type, ts, item, amount, channel, text, expires, props FROM event" \
	"SELECT pid, type, n, first_ts, last_ts FROM person_type" \
	"SELECT survivor, merged, event_id FROM merge_log" \
	"SELECT event_id, pid, kind, value, other_pid, reason FROM conflict_log" \
	"SELECT pid, tag, since, source FROM tag" \
	"SELECT pid, tag, op, at, source FROM tag_log"; do
	if sqlite3 mode.db "$q LIMIT 1" >/dev/null 2>"$T/sqlerr"; then ok "SQL surface: $q"; else fail "SQL surface: $q" "$(cat "$T/sqlerr")"; fi
done
check "integrity_check ok" test "$(sq mode.db 'PRAGMA integrity_check')" = ok

# --- where the database is --------------------------------------------------------------
mkdir -p w && cp good.ndjson w/
(cd w && "$ING" good.ndjson >/dev/null 2>&1)
check "default database ./smr.db" test -s w/smr.db
SMR_DB=$T/env.db "$ING" good.ndjson >/dev/null 2>&1
eq "\$SMR_DB names the database" 1 "$(sq env.db 'SELECT count(*) FROM event')"
SMR_DB=$T/env2.db "$ING" --db "$T/flag.db" good.ndjson >/dev/null 2>&1
check "--db wins over \$SMR_DB" test -s flag.db -a ! -e env2.db

# --- the summary record ---------------------------------------------------------------------
run --db s.db good.ndjson
eq "summary: one JSON object with the seven counts" \
	'{"read":1,"inserted":1,"duplicates":0,"rejected":0,"new_persons":1,"merges":0,"conflicts":0}' \
	"$(tr -d ' ' <"$T/out")"
run --db s.db </dev/null
summary "empty input: zeros" "0 0 0 0 0 0 0"
status "empty input: exit 0" 0

finish
