#!/usr/bin/env bash
# Every tool's options come from one table: --help lists each with a line of
# help, the man page's SYNOPSIS and OPTIONS name the same options, and an
# abbreviated long option is refused (a cron line must not depend on a
# prefix that the next option added could make ambiguous).
. "$(dirname "$0")/../lib.sh"
MAN="$TESTS_DIR/../man"
for bin in "$SMR_BIN"/smr-*; do
	tool=$(basename "$bin")
	[ -f "$MAN/$tool.1" ] || { fail "$tool: has a man page" "no $MAN/$tool.1"; continue; }
	invoke /dev/null "$T/out" "$T/err" "$bin" --help
	status_is "$tool --help: exit 0" "$INVOKED" 0 "$T/err"
	help=$(grep -oE '^  --[a-z][a-z-]*' "$T/out" | sed 's/^ *--//' | sort -u)
	check "$tool --help: lists options" test -n "$help"
	bare=$(grep -E '^  --[a-z][a-z-]*( [A-Z]+)? *$' "$T/out")
	eq "$tool --help: every option has a line of help" "" "$bare"
	synopsis=$(sed -n '/^\.Sh SYNOPSIS/,/^\.Sh /p' "$MAN/$tool.1" |
		grep -oE '(Fl |\| )-[a-z][a-z-]*' | sed 's/.* -//' | grep -vxE 'help|version' | sort -u)
	eq "$tool: man SYNOPSIS and --help name the same options" \
		"$(printf '%s\n' "$help" | grep -vxE 'help|version')" "$synopsis"
	documented=$(sed -n '/^\.Sh OPTIONS/,/^\.Sh /p;/^\.Sh DESCRIPTION/,/^\.Sh /p' "$MAN/$tool.1" |
		grep -E '^\.It Fl' | grep -oE 'Fl -[a-z][a-z-]*' | sed 's/Fl -//' | sort -u)
	missing=$(comm -23 <(printf '%s\n' "$help") <(printf '%s\n' "$documented") | tr '\n' ' ')
	eq "$tool: every option has an entry in the man page" "" "$missing"
	for o in $help; do
		[ ${#o} -ge 4 ] || continue
		invoke /dev/null "$T/out" "$T/err" "$bin" "--${o%?}" x
		if [ "$INVOKED" -ne 2 ] || ! grep -q "abbreviated\|unknown option\|needs an argument" "$T/err"; then
			fail "$tool: --${o%?} (abbreviated) is refused" "status $INVOKED: $(head -c 200 "$T/err")"
		else
			ok "$tool: --${o%?} (abbreviated) is refused"
		fi
	done
done
invoke /dev/null "$T/out" "$T/err" "$SMR_BIN/smr-send" --lim 3 --transport file:x
status_is "an abbreviated option: exit 2" "$INVOKED" 2 "$T/err"
check "an abbreviated option: names the whole one" grep -q -- 'write --limit' "$T/err"
check "an abbreviated option: nothing was opened" test ! -e smr.db
