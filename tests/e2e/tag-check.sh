#!/usr/bin/env bash
# smr-tag --check: every class of rule error reported as file:line:col with
# exit 2; read-only rules (writes, pragmas, load_extension refused); --check
# never creates or touches the database; a bad file makes a run do nothing.
. "$(dirname "$0")/../lib.sh"
. "$FIXTURES/tag/helpers.sh"

# rule_err NAME RULES-TEXT LINE:COL REASON-ERE
rule_err() {
	printf '%s' "$2" >bad.rules
	rm -f never.db
	tag --check --rules bad.rules --db never.db
	if [ "$TRC" = 2 ] && grep -qE -- "^smr-tag: bad\.rules:$3: $4" "$T/terr" && [ ! -s "$T/tout" ] && [ ! -e never.db ]; then
		ok "--check: $1"
	else
		fail "--check: $1" "status $TRC (want 2), want 'bad.rules:$3: $4', stdout '$(head -c 100 "$T/tout")', db created: $([ -e never.db ] && echo yes || echo no), stderr: $(cat "$T/terr")"
	fi
}
C=$'# shop rules\ntimezone Asia/Shanghai\n\n'   # the rule under test is on line 4

rule_err "syntax error at 4:21" "${C}tag a when orders = = 1"$'\n' 4:21 'near "=": syntax error'
rule_err "unknown column at 4:27" "${C}tag a when orders > 0 and orderz > 1"$'\n' 4:27 'no such column: orderz'
rule_err "unknown function at 4:27" "${C}tag a when orders > 0 and frob(orders) > 1"$'\n' 4:27 'no such function: frob'
rule_err "wrong argument count: count() with 4 at 4:27" "${C}tag a when orders > 0 and count('click', '7d', 'SKU-A', 'x') > 0"$'\n' 4:27 'count\(\) takes 2 to 3 arguments, not 4'
rule_err "wrong argument count: days_since_item() with 1" "${C}tag a when days_since_item('order') > 60"$'\n' 4:12 'days_since_item\(\) takes 2 arguments, not 1'
rule_err "wrong argument count: coupon_expiring() with 0" "${C}tag a when coupon_expiring() > 0"$'\n' 4:12 'coupon_expiring\(\) takes 1 argument, not 0'
rule_err "invalid regex in said() at the pattern, 4:17" "${C}tag a when said('(多少钱', '30d')"$'\n' 4:17 'invalid regular expression.*(parenthesis|\))'
rule_err "invalid regex after REGEXP, columns in characters after Chinese, 4:44" "${C}tag b when city = '上海' and nickname REGEXP '[a-'"$'\n' 4:44 'invalid regular expression'
rule_err "bad window at 4:27" "${C}tag a when count('click', '7x') > 0"$'\n' 4:27 "bad window '7x'"
rule_err "bad window after Chinese text, column in characters (4:51)" "${C}tag 首购 when said('多少钱', '30d') and count('click', '1y') > 0"$'\n' 4:51 "bad window '1y'"
rule_err "bad window in said() after Chinese, 4:23" "${C}tag a when said('价格', 'soon')"$'\n' 4:23 "bad window 'soon'"
rule_err "ladder naming an undefined tag" "${C}tag a when orders > 0"$'\nladder l: a b\n' 5:1 'ladder l: no tag rule defines "b"'
rule_err "tag in two ladders" "${C}tag a when orders > 0"$'\ntag b when orders > 1\ntag c when orders > 2\nladder l: a b\nladder m: b c\n' 8:1 'tag "b" is in two ladders \(l and m\)'
rule_err "duplicate tag" "${C}tag a when orders > 0"$'\ntag a when orders > 1\n' 5:1 'tag "a" is defined twice \(first on line 4\)'
rule_err "unknown keyword" "${C}  frobnicate x"$'\n' 4:3 'unknown keyword "frobnicate"'
rule_err "aggregate at top level: count(*) > 0" "${C}tag a when count(*) > 0"$'\n' 4:12 'misuse of aggregate function count\(\)'
rule_err "aggregate at top level after other terms, 4:28" "${C}tag a when  orders > 0 and count(*) > 0"$'\n' 4:28 'misuse of aggregate'
rule_err "two statements: '...); DELETE FROM tag WHERE (1' at the ')' (4:22)" "${C}tag a when orders > 0); DELETE FROM tag WHERE (1"$'\n' 4:22 '(unbalanced|a condition must be a single expression)'
rule_err "two statements: '...; DELETE FROM tag' at the ';' (4:22)" "${C}tag a when orders > 0; DELETE FROM tag"$'\n' 4:22 '(a condition must be a single expression|near ";": syntax error)'
rule_err "reading a pragma is not allowed" "${C}tag a when (SELECT user_version FROM pragma_user_version) = 0"$'\n' 4:12 'not allowed: rules are read-only'
rule_err "writing a pragma is not allowed" "${C}tag a when (SELECT 1 FROM pragma_user_version(7)) = 1"$'\n' 4:12 'not allowed: rules are read-only'
rule_err "pragma table functions are not allowed" "${C}tag a when orders > 0 and (SELECT count(*) FROM pragma_table_info('event')) > 0"$'\n' 4:12 'not allowed: rules are read-only'
rule_err "load_extension is not authorized, at its column" "${C}tag a when orders >= 0 and load_extension('/tmp/x.so') IS NULL"$'\n' 4:28 'not (authorized|allowed).*load_extension'
rule_err "writefile() does not exist" "${C}tag a when orders > 0 and writefile('x', 'y')"$'\n' 4:27 'no such function: writefile'

# Every error of a file is reported, each at its own line.
printf '%s\n' 'tag ok when orders > 0' 'tag a when orderz > 0' 'tag b when count(*) > 0' "tag c when said('(')" 'ladder l: ok zz' >multi.rules
tag --check --rules multi.rules --db never.db
tstatus "--check: a file with 4 errors exits 2" 2
eq "--check: all 4 errors reported" "2:12 3:12 4:17 5:1" \
	"$(sed -n 's/^smr-tag: multi\.rules:\([0-9]*:[0-9]*\): .*/\1/p' "$T/terr" | sort -t: -k1,1n | tr '\n' ' ' | sed 's/ $//')"

# Good files.
tag --check --rules "$TESTS_DIR/../examples/shop.rules" --db never.db
tstatus "--check: examples/shop.rules is good: exit 0" 0
eq "--check: a good file prints nothing" "" "$(cat "$T/tout" "$T/terr")"
check "--check: never creates the --db file" test ! -e never.db
printf '%s\n' 'tag a when orders > 0 and pid IN (SELECT pid FROM event WHERE type = '"'"'order'"'"' AND item = '"'"'SKU-A'"'"')' \
	"tag 首购 when orders = 1 -- a comment" "tag b when coalesce(json_extract(attrs, '\$.level'), 0) >= 3 and not tagged('vip')" \
	"tag c when count('view', '1d12h', 'SKU-D') >= 2 and amount('order', 'all') > 0 and days_since('click') < 3" >good.rules
tag --check --rules good.rules
tstatus "--check: subqueries over event, comments, json_extract, tagged(), compound windows are fine" 0

# An indented statement is still a statement (as for identity lines).
printf '%s\n' '  tag a when orders > 1' '	ladder l: a b' '  tag b when orders > 2' >indent.rules
tag --check --rules indent.rules
tstatus "--check: indented tag and ladder lines are read like any other" 0

# A condition that breaks out of its parentheses must not pass --check and
# then fail the real run.
printf '%s\n' 'tag a when orders > 0) ORDER BY (1' >escape.rules
tag --check --rules escape.rules
tstatus "--check: 'orders > 0) ORDER BY (1' is an error" 2

# --check on an existing database: not a byte changed, not even opened for writing.
{
	ev a1 order 2026-11-01T10:00:00+08:00 A ',"amount":"5.00"'
	ev a2 view 2026-11-01T10:00:00+08:00 B
} >ev.ndjson
ingest "check" real.db good.rules ev.ndjson
tag --db real.db --rules good.rules --now 2026-11-01T12:00:00+08:00
before=$(cksum <real.db; ls real.db* | tr '\n' ' '; stat -c %Y real.db)
sleep 1
tag --check --rules good.rules --db real.db
tstatus "--check with an existing --db: exit 0" 0
cp multi.rules bad.rules
tag --check --rules bad.rules --db real.db
tstatus "--check of a bad file with an existing --db: exit 2" 2
eq "--check: the existing database is untouched (bytes, files, mtime)" "$before" "$(cksum <real.db; ls real.db* | tr '\n' ' '; stat -c %Y real.db)"

# A real run with a bad rules file: exit 2, nothing done.
logs=$(sq real.db "SELECT count(*) FROM tag_log") tags=$(sq real.db "SELECT group_concat(pid || tag) FROM tag") meta=$(sq real.db "SELECT group_concat(key || value) FROM meta")
tag --db real.db --rules bad.rules --now 2026-12-01T12:00:00+08:00 --full
tstatus "run with a bad rules file: exit 2" 2
eq "run with a bad rules file: nothing printed" "" "$(cat "$T/tout")"
eq "run with a bad rules file: tag, tag_log and meta unchanged" "$logs|$tags|$meta" \
	"$(sq real.db "SELECT count(*) FROM tag_log")|$(sq real.db "SELECT group_concat(pid || tag) FROM tag")|$(sq real.db "SELECT group_concat(key || value) FROM meta")"
printf 'tag a when orderz > 0\n' >col.rules
rm -f fresh.db
tag --db fresh.db --rules col.rules --now 2026-12-01T12:00:00+08:00
tstatus "run with an unknown column: exit 2" 2
check "run with a rule error does not create the database" test ! -e fresh.db
tag --db real.db --rules missing.rules
tstatus "run with a missing rules file: exit 2" 2

# An unknown keyword does not hide the errors of the tag rules after it.
printf 'frobnicate 1\ntag a when nosuch > 1\ntag b when orders > 0\n' >mixed.rules
tag --check --rules mixed.rules
tstatus "--check with an unknown keyword and a bad tag: exit 2" 2
eq "--check reports both, each at its line and column" "mixed.rules:1:1|mixed.rules:2:12" \
	"$(sed -n 's/^smr-tag: \(mixed.rules:[0-9]*:[0-9]*\): .*/\1/p' "$T/terr" | paste -sd'|')"

finish
