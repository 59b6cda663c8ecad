#!/usr/bin/env bash
# smr-send's exec: transport gives a command SMR_EXEC_TIMEOUT_MS to finish;
# one that hangs is killed and its touch failed, not retried (it may have
# delivered), and the run goes on to the next touch.
. "$(dirname "$0")/../lib.sh"
export TZ=Asia/Shanghai
cat >r.rules <<'R'
timezone Asia/Shanghai
tag carted when count('add_cart', '7d') > 0
sop s
  trigger carted
  step 0d 12:00 private m
end
content m private "hi"
R
printf '{"id":"a%d","type":"add_cart","ts":"2026-11-02T09:00:00+08:00","unionid":"U%d"}\n' 1 1 2 2 >ev.ndjson
run --db t.db --rules r.rules --now 2026-11-02T09:05:00+08:00 ev.ndjson
"$SMR_BIN/smr-tag" --db t.db --rules r.rules --now 2026-11-02T09:05:00+08:00 >/dev/null 2>tag.err
"$SMR_BIN/smr-sop-due" --db t.db --rules r.rules --now 2026-11-02T12:05:00+08:00 >due.out 2>due.err
eq "two touches queued" "2" "$(wc -l <due.out | tr -d ' ')"

# The first call hangs, the second returns at once.
cat >cmd.sh <<'C'
#!/bin/sh
n=$(cat count 2>/dev/null || echo 0); echo $((n + 1)) >count
cat >/dev/null
[ "$n" = 0 ] && exec sleep 30
exit 0
C
chmod +x cmd.sh
start=$(date +%s)
SMR_EXEC_TIMEOUT_MS=400 "$SMR_BIN/smr-send" --db t.db --rules r.rules --now 2026-11-02T12:06:00+08:00 \
	--queued --transport "exec:$T/cmd.sh" >send.out 2>send.err
rc=$?
took=$(($(date +%s) - start))
no_sanitizer "smr-send with a hanging command" send.err
eq "exit 1: one touch failed" "1" "$rc"
check "the run did not wait for the hanging command (${took}s)" test "$took" -lt 10
eq "results: the hung one failed with the reason, the next sent" \
	"failed timed out;sent -" \
	"$(python3 -c '
import json, sys
out = []
for l in open(sys.argv[1]):
    r = json.loads(l)
    out.append(r["result"] + " " + ("timed out" if "timed out" in r.get("reason", "") else "-"))
print(";".join(out))' send.out)"
eq "states: failed, sent; the failed one is not retried" "failed sent" \
	"$(sqlite3 t.db "SELECT group_concat(state, ' ') FROM (SELECT state FROM touch ORDER BY id)")"
SMR_EXEC_TIMEOUT_MS=400 "$SMR_BIN/smr-send" --db t.db --rules r.rules --now 2026-11-02T13:00:00+08:00 \
	--queued --transport "exec:$T/cmd.sh" >again.out 2>&1
eq "a later run sends nothing again (command called twice in all)" "0 2" "$(wc -l <again.out | tr -d ' ') $(cat count)"
finish
