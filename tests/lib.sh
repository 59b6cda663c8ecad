# Helpers sourced by tests/e2e/*.sh (not a test itself).
#
# Each check prints "ok - name" or "FAIL - name (details)". A script runs in
# its own temporary directory ($T, removed on exit) with SMR_DB and
# SMR_RULES unset, so nothing leaks in from the caller's environment.
set -u
TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SMR_BIN=${SMR_BIN:-$TESTS_DIR/../bin}
SMR_BIN=$(cd "$SMR_BIN" && pwd) || exit 3
FIXTURES="$TESTS_DIR/fixtures"
ING="$SMR_BIN/smr-ingest"
T=$(mktemp -d "${TMPDIR:-/tmp}/smr-e2e.XXXXXX") || exit 3
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 3
unset SMR_DB SMR_RULES
export LC_ALL=C.UTF-8 2>/dev/null || export LC_ALL=C

NFAIL=0
ok() { printf 'ok - %s\n' "$1"; }
fail() {
	local d
	# one line, valid UTF-8 (invalid bytes dropped), not too long
	d=$(printf '%s' "$2" | tr '\n\r' '||' | iconv -f UTF-8 -t UTF-8 -c 2>/dev/null | cut -c1-400)
	printf 'FAIL - %s (%s)\n' "$1" "$d"
	NFAIL=$((NFAIL + 1))
}
# check NAME CONDITION... : ok if the command succeeds.
check() {
	local name=$1
	shift
	if "$@"; then ok "$name"; else fail "$name" "false: $*"; fi
}
# eq NAME EXPECTED ACTUAL
eq() {
	if [ "$2" = "$3" ]; then ok "$1"; else fail "$1" "expected '$2', got '$3'"; fi
}

# no_sanitizer NAME FILE...: an ASan, LSan or UBSan report in any FILE is a
# failure of its own (the tests also run against a sanitizer build).
no_sanitizer() {
	local name=$1
	shift
	if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$@"; then
		fail "no sanitizer report ($name)" "$(cat "$@" | grep -E 'AddressSanitizer|LeakSanitizer|runtime error:' | head -5)"
	fi
}

# invoke IN OUT ERR PROG ARGS...: run PROG with stdin from IN ("-": the
# caller's), stdout in OUT, stderr in ERR; the status in INVOKED. A
# sanitizer report is a failure of its own. Every tool's wrapper uses it.
INVOKES=0
invoke() {
	local in=$1 out=$2 err=$3
	shift 3
	if [ "$in" = - ]; then
		"$@" >"$out" 2>"$err"
	else
		"$@" <"$in" >"$out" 2>"$err"
	fi
	INVOKED=$?
	INVOKED_ERR=$err
	INVOKES=$((INVOKES + 1))
	no_sanitizer "run $INVOKES: $(basename "$1") ${*:2}" "$err"
	return 0
}
# status_is NAME GOT EXPECTED ERR: an exit status check naming ERR's start.
status_is() {
	if [ "$2" = "$3" ]; then ok "$1"; else fail "$1" "exit status $2, expected $3; stderr: $(head -3 "$4")"; fi
}
# ran NAME [STATUS]: the last invoke exited STATUS (default 0). A setup
# step is a check of its own: a broken one shows as FAIL, not as a later
# check failing for no visible reason.
ran() { status_is "$1" "$INVOKED" "${2:-0}" "$INVOKED_ERR"; }

# test_cmp NAME EXPECT ACTUAL: the two files are the same, as git's
# test_cmp. On a difference: FAIL with the start of `diff -u`, and the
# whole diff after it as "# " lines (TAP comments, shown when the script
# runs alone). SMR_BLESS=1 first copies ACTUAL over an EXPECT file under
# tests/fixtures (to write a new expectation: read the diff before
# committing it).
test_cmp() {
	local d
	if [ -n "${SMR_BLESS:-}" ] && [[ $2 == "$FIXTURES"/* ]]; then
		cp -- "$3" "$2"
	fi
	if d=$(diff -u -- "$2" "$3" 2>&1); then
		ok "$1"
	else
		fail "$1" "$(printf '%s\n' "$d" | sed -n '3,14p')"
		printf '%s\n' "$d" | sed 's/^/# /'
	fi
}
# expect NAME ACTUAL <<'EOF' ... EOF: ACTUAL is exactly the here-document.
expect() {
	cat >"$T/expect"
	test_cmp "$1" "$T/expect" "$2"
}

# recs FILE KEY...: the JSON records of FILE (one a line) as
# "v1 v2 ...;..." in file order. KEY who is the unionid (else p<pid>), nb
# is not_before as local MM-DD HH:MM; a missing key is -, a boolean
# true/false; a line that is not JSON is BAD:line.
recs() {
	python3 - "$@" <<'PY'
import json, sys, time
out = []
for line in open(sys.argv[1], encoding="utf-8"):
    try:
        o = json.loads(line)
    except Exception:
        out.append("BAD:" + line.strip())
        continue
    vals = []
    for k in sys.argv[2:]:
        if k == "nb":
            v = time.strftime("%m-%d %H:%M", time.localtime(o["not_before"])) if "not_before" in o else "-"
        elif k == "who":
            v = o.get("unionid") or "p%s" % o.get("pid")
        else:
            v = o.get(k, "-")
            if isinstance(v, bool):
                v = "true" if v else "false"
        vals.append(str(v))
    out.append(" ".join(vals))
print(";".join(out))
PY
}
# lines FILE: its number of lines, 0 if it does not exist.
lines() { if [ -e "$1" ]; then wc -l <"$1" | tr -d ' '; else echo 0; fi; }

# usage_error NAME TOOL ARGS...: smr-TOOL --db u.db ARGS is refused with
# exit 2 and a "smr-TOOL: " message, prints nothing and creates no database.
usage_error() {
	local name=$1 tool=smr-$2
	shift 2
	rm -f u.db
	invoke /dev/null "$T/uout" "$T/uerr" "$SMR_BIN/$tool" --db u.db "$@"
	if [ "$INVOKED" = 2 ] && [ ! -s "$T/uout" ] && grep -q "^$tool: " "$T/uerr" && [ ! -e u.db ]; then
		ok "usage error, exit 2, nothing printed or created: $name"
	else
		fail "usage error, exit 2, nothing printed or created: $name" "status $INVOKED, stdout '$(head -c 200 "$T/uout")', db: $([ -e u.db ] && echo created || echo none), stderr: $(cat "$T/uerr")"
	fi
}

# wrap NAME NAMEIN PROG OUT ERR VAR: define the wrappers of a tool, NAME
# ARGS... (stdin from /dev/null) and NAMEIN FILE ARGS... (stdin from
# FILE), which invoke PROG with stdout in $T/OUT, stderr in $T/ERR and the
# status in VAR. One definition serves every tool.
wrap() {
	eval "$2() { local f=\$1; shift; invoke \"\$f\" \"\$T/$4\" \"\$T/$5\" \"$3\" \"\$@\"; $6=\$INVOKED; }
$1() { $2 /dev/null \"\$@\"; }"
}

# smr-send: snd ARGS..., sendin FILE ARGS...; output in $T/xout, $T/xerr,
# status in XRC.
SEND="$SMR_BIN/smr-send"
wrap snd sendin "$SEND" xout xerr XRC
xstatus() { status_is "$1" "$XRC" "$2" "$T/xerr"; }
# res KEY...: recs of the last smr-send run's output.
res() { recs "$T/xout" "$@"; }

# run ARGS...: smr-ingest with stdout in $T/out, stderr in $T/err, status in RC.
run() {
	invoke - "$T/out" "$T/err" "$ING" "$@"
	RC=$INVOKED
}
# runin FILE ARGS...: like run, with stdin from FILE.
runin() {
	local f=$1
	shift
	run "$@" <"$f"
}

# A field of the summary record on stdout.
field() { sed -n "s/.*\"$1\":\([0-9][0-9]*\).*/\1/p" "$T/out"; }
# summary NAME "read inserted duplicates rejected new_persons merges conflicts"
summary() {
	local got nl
	got="$(field read) $(field inserted) $(field duplicates) $(field rejected) $(field new_persons) $(field merges) $(field conflicts)"
	nl=$(wc -l <"$T/out")
	if [ "$got" = "$2" ] && [ "$nl" -eq 1 ]; then
		ok "$1"
	else
		fail "$1" "expected summary '$2', got '$got' in $nl line(s): $(cat "$T/out")"
	fi
}
# status NAME EXPECTED
status() { status_is "$1" "$RC" "$2" "$T/err"; }
# sq DB SQL: one query through the sqlite3 CLI.
sq() { sqlite3 -batch -cmd '.timeout 10000' "$1" "$2"; }
# has_line FILE PATTERN (grep -E)
has_line() { grep -qE -- "$2" "$1"; }

finish() { [ "$NFAIL" -eq 0 ]; exit $?; }

# facts_consistent NAME DB: person facts, person_type and identities agree
# with the events (no orphans, every person holds an identifier).
facts_consistent() {
	local bad
	bad=$(sq "$2" "
SELECT (SELECT count(*) FROM person p WHERE
   events != (SELECT count(*) FROM event e WHERE e.pid = p.pid)
   OR orders != (SELECT count(*) FROM event e WHERE e.pid = p.pid AND type = 'order')
   OR spend != (SELECT coalesce(sum(amount), 0) FROM event e WHERE e.pid = p.pid AND type = 'order')
   OR first_order_at IS NOT (SELECT min(ts) FROM event e WHERE e.pid = p.pid AND type = 'order')
   OR last_order_at IS NOT (SELECT max(ts) FROM event e WHERE e.pid = p.pid AND type = 'order')
   OR first_seen IS NOT (SELECT min(ts) FROM event e WHERE e.pid = p.pid)
   OR last_seen IS NOT (SELECT max(ts) FROM event e WHERE e.pid = p.pid))
 || ' ' || (SELECT count(*) FROM (SELECT pid, type, n, first_ts, last_ts FROM person_type EXCEPT
     SELECT pid, type, count(*), min(ts), max(ts) FROM event GROUP BY pid, type))
 || ' ' || (SELECT count(*) FROM (SELECT pid, type, count(*), min(ts), max(ts) FROM event GROUP BY pid, type EXCEPT
     SELECT pid, type, n, first_ts, last_ts FROM person_type))
 || ' ' || (SELECT count(*) FROM event WHERE pid NOT IN (SELECT pid FROM person))
 || ' ' || (SELECT count(*) FROM identity WHERE pid NOT IN (SELECT pid FROM person))
 || ' ' || (SELECT count(*) FROM person WHERE pid NOT IN (SELECT pid FROM identity))")
	eq "$1: facts, person_type and identities agree with the events (mismatches: facts, type+, type-, orphan events, orphan ids, bare persons)" "0 0 0 0 0 0" "$bad"
}
