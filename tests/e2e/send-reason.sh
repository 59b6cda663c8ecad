#!/usr/bin/env bash
# A touch deferred and then sent keeps why it was deferred (smr(7): an
# empty reason means sent as planned); a touch sent as planned has none.
. "$(dirname "$0")/../lib.sh"
. "$FIXTURES/tag/helpers.sh"
. "$FIXTURES/sop/helpers.sh"
cat >q.rules <<'EOF2'
timezone Asia/Shanghai
tag go when count('view', '30d') > 0
sop s
  trigger go
  step 0d 23:00 private late_hello
  step 1d 12:00 private noon_hello
end
content late_hello private "晚上好"
content noon_hello private "中午好"
policy
  quiet 22:00-08:00
end
EOF2
ev v1 view 2026-11-02T10:00:00+08:00 U1 >q.ndjson
ingest "fixture" q.db q.rules q.ndjson
tag --db q.db --rules q.rules --now 2026-11-02T10:05:00+08:00
due --db q.db --rules q.rules --now 2026-11-02T23:00:00+08:00
snd --db q.db --rules q.rules --now 2026-11-02T23:00:00+08:00 --queued --transport file:out.ndjson
eq "23:00: deferred by quiet hours" "deferred quiet hours" "$(sq q.db "SELECT state || ' ' || reason FROM touch WHERE step = 0")"
snd --db q.db --rules q.rules --now 2026-11-03T08:00:00+08:00 --queued --transport file:out.ndjson
status_is "08:00: exit 0" "$XRC" 0 "$T/xerr"
eq "08:00: sent, and still says why it was deferred" "sent quiet hours" \
	"$(sq q.db "SELECT state || ' ' || coalesce(reason, 'NULL') FROM touch WHERE step = 0")"
due --db q.db --rules q.rules --now 2026-11-03T12:00:00+08:00
snd --db q.db --rules q.rules --now 2026-11-03T12:00:00+08:00 --queued --transport file:out.ndjson
eq "12:00: sent as planned, no reason" "sent NULL" \
	"$(sq q.db "SELECT state || ' ' || coalesce(reason, 'NULL') FROM touch WHERE step = 1")"
finish
