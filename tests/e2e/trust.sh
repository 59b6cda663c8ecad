#!/usr/bin/env bash
# The property test of restraint and identity (tests/fixtures/property/
# trust.py): randomised sequences of ingests, merges, tag runs, SOP runs,
# sends, pipelines, rules edits and kill -9 of any of them, with every
# invariant checked after each operation. A fixed seed, then a random one,
# printed so that a failure can be replayed:
#   python3 tests/fixtures/property/trust.py bin /tmp/w SEED OPS
. "$(dirname "$0")/../lib.sh"
PROP="$FIXTURES/property/trust.py"
ops=${SMR_TRUST_OPS:-250}
seed=$(( $(od -An -N4 -tu4 /dev/urandom) % 1000000 ))
echo "# trust: random seed $seed"
for s in 7 "$seed"; do
	python3 "$PROP" "$SMR_BIN" "$T/w$s" "$s" "$ops" >"$T/out$s" 2>&1
	rc=$?
	grep -E '^(ok|FAIL) - |^# ' "$T/out$s"
	check "trust.py runs to its end (seed $s)" test "$rc" -eq 0
done
