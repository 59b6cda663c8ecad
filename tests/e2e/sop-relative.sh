#!/usr/bin/env bash
# Steps relative to the moment of entry (step +30m, +2h) beside calendar
# steps (1d 12:00): due times from each person's own day 0, exactly once,
# lateness, quiet hours in smr-send, a stable identity (+30m and +1800s are
# one step), the due order depending on day 0, and bad offsets as rules
# errors.
. "$(dirname "$0")/../lib.sh"
. "$FIXTURES/tag/helpers.sh"
. "$FIXTURES/sop/helpers.sh"

cat >rel.rules <<'R'
timezone Asia/Shanghai
tag cart_A         when count('add_cart', '7d', 'SKU-A') > 0 and orders_since('add_cart') = 0
tag first_purchase when orders >= 1
sop cart_A_quick
  trigger cart_A
  exit first_purchase
  window 3d
  step 1d 12:00 private next_day
  step +2h private two_hours
  step +30m private half_hour
end
content half_hour private "30 分钟"
content two_hours private "2 小时"
content next_day private "第二天"
policy
  quiet 22:00-08:00
end
R
{
	ev a1 add_cart 2026-11-02T19:30:00+08:00 A ',"item":"SKU-A"'
	ev b1 add_cart 2026-11-02T21:10:00+08:00 B ',"item":"SKU-A"'
} >e.ndjson
ingest "relative: events" r.db rel.rules e.ndjson
tag --db r.db --rules rel.rules --now 2026-11-02T19:35:00+08:00
tstatus "relative: A enters cart_A at 19:35" 0
due --db r.db --rules rel.rules --now 2026-11-02T20:04:59+08:00
eq "relative 20:04:59: +30m not due a second early" "" "$(cat "$T/sout")"
due --db r.db --rules rel.rules --now 2026-11-02T20:05:00+08:00
eq "relative 20:05: +30m due at 19:35 + 30m (A's first touch)" "A 0 11-02 20:05" "$(printed)"
due --db r.db --rules rel.rules --now 2026-11-02T20:30:00+08:00
eq "relative 20:30: nothing new (exactly once)" "" "$(cat "$T/sout")"
tag --db r.db --rules rel.rules --now 2026-11-02T21:15:00+08:00
due --db r.db --rules rel.rules --now 2026-11-02T21:35:00+08:00
eq "relative 21:35: A's +2h; B entered at 21:15, nothing yet" "A 1 11-02 21:35" "$(printed)"
snd --db r.db --rules rel.rules --now 2026-11-02T21:40:00+08:00 --queued --transport file:out.ndjson
eq "smr-send 21:40: A's +30m and +2h sent" "sent;sent" "$(res result)"
due --db r.db --rules rel.rules --now 2026-11-02T21:50:00+08:00
eq "relative 21:50: B's +30m at 21:45" "B 0 11-02 21:45" "$(printed)"
# smr-send: B's +30m waits for the end of quiet hours
snd --db r.db --rules rel.rules --now 2026-11-02T22:05:00+08:00 --queued --transport file:out.ndjson
eq "smr-send 22:05: B's +30m deferred by quiet hours to 08:00" "deferred $(ep 2026-11-03T08:00:00+08:00)" "$(res result not_before)"
# B's +2h due 23:15, first seen at 01:30 (2h15m late): missed
due --db r.db --rules rel.rules --now 2026-11-03T01:30:00+08:00
eq "relative 01:30: B's +2h more than --late past due: missed" "B 1 missed 11-02 23:15" \
	"$(touches r.db "x.pid = $(pid_of r.db B) AND x.content = 'two_hours'")"
# day 1 12:00 for both: the calendar step after the relative ones
due --db r.db --rules rel.rules --now 2026-11-03T12:00:00+08:00
eq "relative day 1 12:00: the calendar step for both" "A 2 11-03 12:00;B 2 11-03 12:00" "$(printed)"
eq "relative: every step once per person" \
	"A half_hour sent;A next_day queued;A two_hours sent;B half_hour deferred;B next_day queued;B two_hours missed" \
	"$(sq r.db "SELECT group_concat(x, ';') FROM (SELECT (SELECT value FROM identity i WHERE i.pid = t.pid)
	   || ' ' || content || ' ' || state AS x FROM touch t ORDER BY 1)")"
eq "relative: the step key is offset in seconds, channel, content" "+1800s private half_hour;+7200s private two_hours" \
	"$(sq r.db "SELECT group_concat(k, ';') FROM (SELECT DISTINCT step_key AS k FROM touch WHERE step_key LIKE '+%' ORDER BY 1)")"

# the same step written +1800s: the same identity, nothing sent again
sed 's/step +30m private half_hour/step +1800s private half_hour/' rel.rules >rel2.rules
n0=$(nrows r.db touch)
due --db r.db --rules rel2.rules --now 2026-11-03T12:30:00+08:00
dstatus "+1800s for +30m: exit 0" 0
eq "+1800s for +30m: no touch added" "$n0" "$(nrows r.db touch)"

# --check: bad relative offsets, a relative step with a time, twins
for bad in "step +0m private half_hour" "step +abc private half_hour" "step +30 private half_hour" \
	"step +3651d private half_hour"; do
	sed "s/  step +30m private half_hour/  $bad/" rel.rules >bad.rules
	invoke /dev/null "$T/cout" "$T/cerr" "$SMR_BIN/smr-tag" --check --rules bad.rules
	status_is "--check: \"$bad\" is a rules error" "$INVOKED" 2 "$T/cerr"
	check "--check: \"$bad\" names line 10, column 8" has_line "$T/cerr" 'bad.rules:10:8: bad step offset'
done
sed 's/  step +30m private half_hour/  step +2h private half_hour/' rel.rules >twin.rules
invoke /dev/null "$T/cout" "$T/cerr" "$SMR_BIN/smr-tag" --check --rules twin.rules
status_is "--check: two relative steps at one offset on one channel" "$INVOKED" 2 "$T/cerr"
finish
