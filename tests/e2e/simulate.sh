#!/usr/bin/env bash
# smr-sop-due --simulate sees time coming: tags driven by time alone (a
# refill falling due, a coupon entering its expiry window) are entered as
# the simulated clock walks, and their SOPs' touches are forecast. The
# forecast equals, day by day, what hourly runs of smr-tag and smr-sop-due
# then queue over the same days with no new events; new_tags names the SOPs
# whose touches come from tags entered during the simulation.
. "$(dirname "$0")/../lib.sh"
. "$FIXTURES/tag/helpers.sh"
. "$FIXTURES/sop/helpers.sh"

cat >sim.rules <<'R'
timezone Asia/Shanghai
tag refill_due  when days_since_item('order', 'SKU-B') between 2 and 5
tag coupon_soon when coupon_expiring('1d') > 0
sop refill
  trigger refill_due
  window 7d
  step 0d 20:00 private r0
  step 1d 12:00 private r1
end
sop coupon
  trigger coupon_soon
  window 2d
  step +1h private c0
end
content r0 private "r0"
content r1 private "r1"
content c0 private "c0"
R
T0=2026-11-10T09:00:00+08:00
{
	ev o1 order 2026-11-08T10:00:00+08:00 P1 ',"item":"SKU-B","amount":"59"'
	ev o2 order 2026-11-09T15:30:00+08:00 P2 ',"item":"SKU-B","amount":"59"'
	ev o3 order 2026-11-07T23:10:00+08:00 P3 ',"item":"SKU-B","amount":"59"'
	ev o4 order 2026-11-10T08:00:00+08:00 P4 ',"item":"SKU-B","amount":"59"'
	ev o5 order 2026-11-01T08:00:00+08:00 P5 ',"item":"SKU-B","amount":"59"'
	ev c1 coupon_claim 2026-11-09T10:00:00+08:00 C1 ',"item":"CP-1","expires":"2026-11-11T12:00:00+08:00"'
	ev c2 coupon_claim 2026-11-09T10:00:00+08:00 C2 ',"item":"CP-1","expires":"2026-11-12T21:30:00+08:00"'
	ev c3 coupon_claim 2026-11-09T10:00:00+08:00 C3 ',"item":"CP-1","expires":"2026-11-10T18:00:00+08:00"'
} >e.ndjson
ingest "simulate: events" r.db sim.rules e.ndjson
tag --db r.db --rules sim.rules --now $T0
tstatus "simulate: smr-tag at the start" 0
due --db r.db --rules sim.rules --now $T0
dstatus "simulate: smr-sop-due at the start" 0
eq "simulate: at the start only P3 and C3 hold a trigger" "C3 coupon_soon;P3 refill_due" \
	"$(sq r.db "SELECT group_concat(x, ';') FROM (SELECT (SELECT value FROM identity i WHERE i.pid = t.pid) || ' ' || tag AS x FROM tag t ORDER BY 1)")"
before=$(sqlite3 r.db .dump | md5sum)

due --db r.db --rules sim.rules --now $T0 --simulate 4d
dstatus "--simulate 4d: exit 0" 0
cp "$T/sout" sim.out
eq "--simulate: the database is unchanged" "$before" "$(sqlite3 r.db .dump | md5sum)"

# the same days for real: smr-tag and smr-sop-due every hour, no new events
t0=$(ep $T0)
for h in $(seq 1 96); do
	now=$((t0 + h * 3600))
	"$SMR_BIN/smr-tag" --db r.db --rules sim.rules --now $now >/dev/null 2>>hourly.err || echo "tag $now: $?" >>hourly.err
	"$SMR_BIN/smr-sop-due" --db r.db --rules sim.rules --now $now >/dev/null 2>>hourly.err || echo "due $now: $?" >>hourly.err
done
eq "hourly runs: no error" "" "$(cat hourly.err)"
real=$(for k in 1 2 3 4; do
	from=$((t0 + (k - 1) * 86400)) to=$((t0 + k * 86400))
	sq r.db "SELECT count(*) || ' ' || count(DISTINCT pid) FROM touch WHERE created_at > $from AND created_at <= $to
	         AND state = 'queued'"
done | paste -sd';')
forecast=$(python3 -c 'import json,sys; print(";".join("%d %d" % (o["touches"], o["persons"]) for o in map(json.loads, open(sys.argv[1]))))' sim.out)
eq "--simulate: per day touches and persons equal the hourly runs'" "$real" "$forecast"
check "--simulate: the forecast is not empty" test "$(sq r.db "SELECT count(*) FROM touch")" -gt 4
newtags=$(python3 -c 'import json,sys
tot = {}
for o in map(json.loads, open(sys.argv[1])):
    for k, v in o["new_tags"].items():
        tot[k] = tot.get(k, 0) + v
print(";".join("%s %d" % kv for kv in sorted(tot.items())))' sim.out)
realnew=$(sq r.db "SELECT group_concat(x, ';') FROM (SELECT e.sop || ' ' || count(*) AS x FROM touch t JOIN enrollment e
	ON e.id = t.enrollment WHERE e.started_at > $t0 AND t.state = 'queued' AND t.created_at <= $((t0 + 4 * 86400))
	GROUP BY e.sop ORDER BY e.sop)")
eq "--simulate: new_tags counts the touches of SOPs entered during the simulation" "$realnew" "$newtags"
check "--simulate: both time-driven SOPs start during the simulation" test "$(printf '%s' "$newtags" | grep -c 'coupon [0-9]*;refill [0-9]*')" -eq 1
finish
