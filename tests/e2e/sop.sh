#!/usr/bin/env bash
# smr-sop-due end to end, driven by --now through smr-ingest -> smr-tag ->
# smr-sop-due: the cart_A story (each person's own day 0, exit on an order,
# a later person's own sequence), exactly-once queuing and re-runs, re-entry,
# exit by trigger loss and on_leave stay, lateness (missed, --late), steps
# before enrolment (skipped), the golden window, time zones (00:30 local in
# Shanghai, a November DST change in New York), --simulate counts and caps
# with the database unchanged, holdout, piped use, two concurrent runs, and
# rule and usage errors.
. "$(dirname "$0")/../lib.sh"
. "$FIXTURES/tag/helpers.sh"
. "$FIXTURES/sop/helpers.sh"

# === the story: cart_A, day 0 20:00 private, day 1 12:00 moments, day 3 20:00 coupon
# The steps are listed out of order: a step's number is its place in due order.
cat >story.rules <<'EOF2'
timezone Asia/Shanghai
tag cart_A         when count('add_cart', '7d', 'SKU-A') > 0 and orders_since('add_cart') = 0
tag first_purchase when orders >= 1

sop cart_A_followup
  trigger cart_A
  exit first_purchase
  window 7d
  step 1d 12:00 moments reviews_A
  step 3d 20:00 private coupon_A
  step 0d 20:00 private cart_reminder_A
end
content cart_reminder_A private "{{nickname|亲}}，你购物车里的{{item}}还在等你"
content reviews_A moments "看看大家怎么说"
content coupon_A private "{{nickname|亲}}，送你一张券"
EOF2
S=story.rules
# day 0 is Monday 2026-11-02: U1 (owner zhang_san) and U2 add A to the cart.
{
	ev u1-0 friend_add 2026-11-01T09:00:00+08:00 U1 ',"staff":"zhang_san"'
	ev u1-1 add_cart 2026-11-02T10:00:00+08:00 U1 ',"item":"SKU-A"'
	ev u2-1 add_cart 2026-11-02T10:00:00+08:00 U2 ',"item":"SKU-A"'
	ev u9-1 add_cart 2026-11-02T10:00:00+08:00 U9 ',"item":"SKU-B"'
} >s1.ndjson
ingest "story day 0" st.db $S s1.ndjson
tag --db st.db --rules $S --now 2026-11-02T10:05:00+08:00
ran "story day 0: smr-tag"
eq "story: U1 and U2 enter cart_A at 10:05" "U1 cart_A add;U2 cart_A add" "$(changes)"
due --db st.db --rules $S --now 2026-11-02T10:05:00+08:00 --stats
dstatus "story 10:05: exit 0" 0
eq "story 10:05: nothing due yet, nothing printed" "" "$(cat "$T/sout")"
eq "story 10:05: U1 and U2 enrolled, day 0 = the tag's since (10:05)" \
	"U1 active - 11-02 10:05;U2 active - 11-02 10:05" "$(enrols st.db)"
eq "story 10:05: --stats: 2 enrolled, nothing queued" "2 0 0 0 0 0 0" "$(dstats)"
eq "story 10:05: no touch rows" 0 "$(nrows st.db touch)"
due --db st.db --rules $S --now 2026-11-02T19:59:59+08:00
eq "story 19:59:59: a second before day 0's 20:00 nothing is due" "" "$(cat "$T/sout")"
due --db st.db --rules $S --now 2026-11-02T20:00:00+08:00 --stats
eq "story day 0 20:00: both get step 0 at 20:00 local" "U1 0 11-02 20:00;U2 0 11-02 20:00" "$(printed)"
eq "story day 0 20:00: --stats: 2 queued" "0 0 0 2 0 0 0" "$(dstats)"
P1=$(pid_of st.db U1)
# day0 10:05, due 20:00 (Unix seconds); U1's staff is its owner from
# friend_add, U2 has no owner and no staff key.
test_cmp "story day 0 20:00: the touch records whole" "$FIXTURES/sop/story-day0.ndjson" "$T/sout"
eq "story: touch rows after day 0 (state queued, staff, created_at = --now)" \
	"U1|0|queued|zhang_san|$(ep 2026-11-02T20:00:00+08:00) U2|0|queued||$(ep 2026-11-02T20:00:00+08:00)" \
	"$(sq st.db "SELECT group_concat(u || '|' || step || '|' || state || '|' || coalesce(staff, '') || '|' || created_at, ' ') FROM (SELECT i.value AS u, t.* FROM touch t JOIN identity i ON i.pid = t.pid AND i.kind = 'unionid' ORDER BY u, step)")"

# Re-running at the same --now queues nothing and prints nothing.
before=$(sq st.db ".dump")
due --db st.db --rules $S --now 2026-11-02T20:00:00+08:00 --stats
dstatus "story re-run at 20:00: exit 0" 0
eq "story re-run at 20:00: prints nothing" "" "$(cat "$T/sout")"
eq "story re-run at 20:00: --stats all zero" "0 0 0 0 0 0 0" "$(dstats)"
check "story re-run at 20:00: the database is unchanged" test "$before" = "$(sq st.db ".dump")"
due --db st.db --rules $S --now 2026-11-02T23:00:00+08:00
eq "story 23:00: nothing new later the same evening" "" "$(cat "$T/sout")"

due --db st.db --rules $S --now 2026-11-03T12:00:00+08:00
eq "story day 1 12:00: the moments step for both" "U1 1 11-03 12:00;U2 1 11-03 12:00" "$(printed)"
test_cmp "story day 1: step 1 on channel moments, content reviews_A, whole" "$FIXTURES/sop/story-day1.ndjson" "$T/sout"

# Day 2: U1 orders; the order tags first_purchase (and ends cart_A).
ev u1-2 order 2026-11-04T09:00:00+08:00 U1 ',"item":"SKU-A","amount":"199.00"' >s2.ndjson
ingest "story day 2" st.db $S s2.ndjson
tag --db st.db --rules $S --now 2026-11-04T09:05:00+08:00
eq "story day 2: U1's order" "U1 cart_A remove;U1 first_purchase add" "$(changes)"
due --db st.db --rules $S --now 2026-11-04T09:05:00+08:00 --stats
eq "story day 2: nothing printed" "" "$(cat "$T/sout")"
eq "story day 2: --stats: 1 exited" "0 1 0 0 0 0 0" "$(dstats)"
eq "story day 2: U1 exited for first_purchase, U2 still active" \
	"U1 exited entered_first_purchase 11-02 10:05;U2 active - 11-02 10:05" "$(enrols st.db)"
eq "story day 2: U1's exit time is the --now of the run" "$(ep 2026-11-04T09:05:00+08:00)" \
	"$(sq st.db "SELECT ended_at FROM enrollment WHERE pid = $P1")"
due --db st.db --rules $S --now 2026-11-05T19:59:00+08:00
eq "story day 3 19:59: nothing yet" "" "$(cat "$T/sout")"
due --db st.db --rules $S --now 2026-11-05T20:00:00+08:00 --stats
eq "story day 3 20:00: only U2 gets the coupon; U1 ordered" "U2 2 11-05 20:00" "$(printed)"
check "story day 3: the coupon is coupon_A on private" grep -q '"channel":"private","content":"coupon_A"' "$T/sout"
eq "story day 3: --stats: 1 queued, U2 completed" "0 0 1 1 0 0 0" "$(dstats)"
eq "story day 3: U2 completed (all steps done)" \
	"U1 exited entered_first_purchase 11-02 10:05;U2 completed all_steps_done 11-02 10:05" "$(enrols st.db)"
# U2 stays in cart_A until its cart is 7 days old: never a second enrollment.
for now in 2026-11-06T20:00:00+08:00 2026-11-08T20:00:00+08:00; do
	tag --db st.db --rules $S --now $now
	due --db st.db --rules $S --now $now
	eq "story $now: U2 still holds cart_A, nothing restarts" "" "$(cat "$T/sout")"
done
eq "story: U2 still holds cart_A on day 6" "cart_A" "$(tagset st.db U2)"
eq "story: one enrollment each while staying in the tag" 2 "$(nrows st.db enrollment)"

# Ten days later U3 enters cart_A: their own day 0; U1 and U2 get nothing.
ev u3-1 add_cart 2026-11-12T11:00:00+08:00 U3 ',"item":"SKU-A"' >s3.ndjson
ingest "story day 10" st.db $S s3.ndjson
tag --db st.db --rules $S --now 2026-11-12T11:05:00+08:00
eq "story day 10: U3 enters (U2's cart is over 7 days old)" "U2 cart_A remove;U3 cart_A add" "$(changes)"
due --db st.db --rules $S --now 2026-11-12T11:05:00+08:00
eq "story day 10 11:05: nothing due" "" "$(cat "$T/sout")"
for now in 2026-11-12T20:00:00+08:00 2026-11-13T12:00:00+08:00 2026-11-15T20:00:00+08:00; do
	due --db st.db --rules $S --now $now
	case $now in
	2026-11-12*) want="U3 0 11-12 20:00" ;;
	2026-11-13*) want="U3 1 11-13 12:00" ;;
	*) want="U3 2 11-15 20:00" ;;
	esac
	eq "story $now: only U3, at their own day 0 + offset" "$want" "$(printed)"
done
eq "story: every touch ever queued, exactly" \
	"U1 0 queued 11-02 20:00;U1 1 queued 11-03 12:00;U2 0 queued 11-02 20:00;U2 1 queued 11-03 12:00;U2 2 queued 11-05 20:00;U3 0 queued 11-12 20:00;U3 1 queued 11-13 12:00;U3 2 queued 11-15 20:00" \
	"$(touches st.db)"
# U2 completed with its last step still queued (no smr-send runs here):
# leaving cart_A on day 10 exits it, so that smr-send suppresses that step.
eq "story: enrollments at the end" \
	"U1 exited entered_first_purchase 11-02 10:05;U2 exited left_cart_A 11-02 10:05;U3 completed all_steps_done 11-12 11:05" "$(enrols st.db)"
eq "story: U9 (SKU-B) never enrolled nor touched" 0 "$(sq st.db "SELECT count(*) FROM touch WHERE pid = $(pid_of st.db U9)")"
eq "story: touch is unique per (enrollment, step)" 0 "$(sq st.db "SELECT count(*) FROM (SELECT 1 FROM touch GROUP BY enrollment, step HAVING count(*) > 1)")"

# === exit tags: entered before day 0, or before smr-sop-due first looks =========
# cart_A here does not end with an order. V1 bought before carting: its
# first_purchase predates day 0 and does not exit it. X1 orders at 15:00,
# after its day 0 (10:05) and before the 20:00 step. Whether smr-sop-due
# ran at 10:05 (exran.db) or first runs at 20:00 (exlate.db: cron started
# later, or the sop was just added), X1 must get nothing: the database is
# the same, so the result must be too.
sed 's/ and orders_since(.add_cart.) = 0//' $S >ex.rules
{
	ev v1-0 order 2026-11-01T10:00:00+08:00 V1 ',"amount":"10.00"'
	ev v1-1 add_cart 2026-11-02T10:00:00+08:00 V1 ',"item":"SKU-A"'
	ev x1-1 add_cart 2026-11-02T10:00:00+08:00 X1 ',"item":"SKU-A"'
} >x1.ndjson
ev x1-2 order 2026-11-02T15:00:00+08:00 X1 ',"amount":"10.00"' >x2.ndjson
for db in exran.db exlate.db; do
	ingest "exit $db" $db ex.rules x1.ndjson
	tag --db $db --rules ex.rules --now 2026-11-01T10:05:00+08:00
	tag --db $db --rules ex.rules --now 2026-11-02T10:05:00+08:00
	[ $db = exran.db ] && due --db $db --rules ex.rules --now 2026-11-02T10:05:00+08:00
	ingest "exit $db order" $db ex.rules x2.ndjson
	tag --db $db --rules ex.rules --now 2026-11-02T15:05:00+08:00
	[ $db = exran.db ] && due --db $db --rules ex.rules --now 2026-11-02T15:05:00+08:00
	due --db $db --rules ex.rules --now 2026-11-02T20:00:00+08:00
	eq "exit ($db): at 20:00 only V1 (first_purchase since before day 0); X1 ordered at 15:00" "V1 0 11-02 20:00" "$(printed)"
	eq "exit ($db): X1 exited for first_purchase, V1 active" \
		"V1 active - 11-02 10:05;X1 exited entered_first_purchase 11-02 10:05" "$(enrols $db)"
done
eq "exit: V1 holds both tags" "cart_A first_purchase" "$(tagset exran.db V1)"

# === exit by trigger loss, on_leave stay, re-entry ===========================
# Two SOPs on cart_A with a 14-day window and a step on day 8, after the
# 7-day cart has left cart_A: leave_exit (the default) ends there,
# leave_stay keeps going. R2 adds to the cart again on day 3 and so stays
# in cart_A (same since) until day 10.
cat >leave.rules <<'EOF2'
timezone Asia/Shanghai
tag cart_A when count('add_cart', '7d', 'SKU-A') > 0 and orders_since('add_cart') = 0
sop leave_exit
  trigger cart_A
  window 14d
  step 0d 20:00 private m
  step 8d 20:00 private m8
end
sop leave_stay
  trigger cart_A
  on_leave stay
  staff acct_9
  priority 5
  window 14d
  step 0d 20:00 private m
  step 8d 20:00 private m8
  step 12d 20:00 private m8
end
content m private "hi"
content m8 private "day 8"
EOF2
L=leave.rules
{
	ev r1-1 add_cart 2026-11-02T10:00:00+08:00 R1 ',"item":"SKU-A"'
	ev r2-1 add_cart 2026-11-02T10:00:00+08:00 R2 ',"item":"SKU-A"'
} >l1.ndjson
ingest "leave day 0" lv.db $L l1.ndjson
tag --db lv.db --rules $L --now 2026-11-02T10:05:00+08:00
ran "leave day 0: smr-tag"
due --db lv.db --rules $L --now 2026-11-02T20:00:00+08:00
eq "leave day 0: both SOPs enrol and queue step 0 for R1 and R2" \
	"R1 leave_exit 0 11-02 20:00;R1 leave_stay 0 11-02 20:00;R2 leave_exit 0 11-02 20:00;R2 leave_stay 0 11-02 20:00" "$(printed -s)"
test_cmp "leave day 0: leave_stay's touches carry staff acct_9 (as given) and priority 5; leave_exit's no staff, priority 0" \
	"$FIXTURES/sop/leave-day0.ndjson" "$T/sout"
ev r2-2 add_cart 2026-11-05T10:00:00+08:00 R2 ',"item":"SKU-A"' >l2.ndjson
ingest "leave day 3" lv.db $L l2.ndjson
tag --db lv.db --rules $L --now 2026-11-05T10:05:00+08:00
eq "leave day 3: R2's second cart changes no tag (stays in cart_A)" "" "$(changes)"
due --db lv.db --rules $L --now 2026-11-05T10:05:00+08:00 --stats
eq "leave day 3: staying in the tag: nothing enrolled, nothing exited" "0 0 0 0 0 0 0" "$(dstats)"
tag --db lv.db --rules $L --now 2026-11-09T10:05:00+08:00
eq "leave day 7: R1's cart is 7 days old: R1 leaves cart_A" "R1 cart_A remove" "$(changes)"
due --db lv.db --rules $L --now 2026-11-09T10:05:00+08:00 --stats
eq "leave day 7: --stats: 1 exited" "0 1 0 0 0 0 0" "$(dstats)"
eq "leave day 7: R1 leave_exit exited (left cart_A); leave_stay keeps R1; R2 untouched" \
	"R1 leave_exit exited left_cart_A 11-02 10:05;R1 leave_stay active - 11-02 10:05;R2 leave_exit active - 11-02 10:05;R2 leave_stay active - 11-02 10:05" \
	"$(enrols lv.db 1 -s)"
due --db lv.db --rules $L --now 2026-11-10T20:00:00+08:00
eq "leave day 8: R1 only through leave_stay; R2 (still in cart_A) through both" \
	"R1 leave_stay 1 11-10 20:00;R2 leave_exit 1 11-10 20:00;R2 leave_stay 1 11-10 20:00" "$(printed -s)"
eq "leave day 8: R2 had one enrollment per SOP all along" 2 "$(nrows lv.db enrollment "pid = $(pid_of lv.db R2)")"
# Re-entry: R1 adds to the cart again on day 10, inside leave_stay's window.
ev r1-2 add_cart 2026-11-12T10:00:00+08:00 R1 ',"item":"SKU-A"' >l3.ndjson
ingest "leave day 10" lv.db $L l3.ndjson
tag --db lv.db --rules $L --now 2026-11-12T10:05:00+08:00
eq "leave day 10: R1 re-enters cart_A, R2 leaves" "R1 cart_A add;R2 cart_A remove" "$(changes)"
due --db lv.db --rules $L --now 2026-11-12T10:05:00+08:00 --stats
eq "leave day 10: --stats: R1 enrolled twice (one per SOP); R1's old leave_stay ends (re-entered); R2's leave_exit exits" \
	"2 2 0 0 0 0 0" "$(dstats)"
# leave_exit had completed for R2 on day 8, its last step queued but never
# delivered (no smr-send here): leaving cart_A exits it all the same.
eq "leave day 10: R2 left cart_A: leave_stay keeps it; leave_exit, completed with a touch waiting, exits" \
	"R2 leave_exit exited left_cart_A 11-02 10:05;R2 leave_stay active - 11-02 10:05" \
	"$(enrols lv.db "pid = $(pid_of lv.db R2)" -s)"
eq "leave day 10: R1's enrollments: the old ones ended, new ones from the new day 0" \
	"R1 leave_exit exited left_cart_A 11-02 10:05;R1 leave_exit active - 11-12 10:05;R1 leave_stay exited re-entered_cart_A 11-02 10:05;R1 leave_stay active - 11-12 10:05" \
	"$(enrols lv.db "pid = $(pid_of lv.db R1)" -s)"
due --db lv.db --rules $L --now 2026-11-12T20:00:00+08:00
eq "leave day 10 20:00: R1's new sequence starts again at step 0" \
	"R1 leave_exit 0 11-12 20:00;R1 leave_stay 0 11-12 20:00" "$(printed -s)"
due --db lv.db --rules $L --now 2026-11-14T20:00:00+08:00
eq "leave day 12: the last step only for R2 (left cart_A, on_leave stay); R1's old enrollment ended" \
	"R2 leave_stay 2 11-14 20:00" "$(printed -s)"
eq "leave: R1's touches over both enrollments" \
	"R1 leave_exit 0 queued 11-02 20:00;R1 leave_exit 0 queued 11-12 20:00;R1 leave_stay 0 queued 11-02 20:00;R1 leave_stay 1 queued 11-10 20:00;R1 leave_stay 0 queued 11-12 20:00" \
	"$(touches lv.db "pid = $(pid_of lv.db R1)" -s)"

# === lateness: cron down, --late ==============================================
# K1 enrols at 10:05 on day 0; then the clock jumps. The default --late is
# 2h: a step exactly 2h late is still queued, a second more is missed.
ev k1-1 add_cart 2026-11-02T10:00:00+08:00 K1 ',"item":"SKU-A"' >k1.ndjson
ingest "late" late.db $S k1.ndjson
tag --db late.db --rules $S --now 2026-11-02T10:05:00+08:00
due --db late.db --rules $S --now 2026-11-02T10:05:00+08:00
for x in a b c d; do dbcopy late.db late-$x.db; done
due --db late-a.db --rules $S --now 2026-11-02T22:00:00+08:00
eq "late: step 0 exactly 2h late is queued" "K1 0 11-02 20:00" "$(printed)"
due --db late-b.db --rules $S --now 2026-11-02T22:00:01+08:00 --stats
eq "late: 2h and 1s late: nothing printed" "" "$(cat "$T/sout")"
eq "late: 2h and 1s late: recorded as missed" "K1 0 missed 11-02 20:00" "$(touches late-b.db)"
eq "late: --stats counts 1 missed" "0 0 0 0 1 0 0" "$(dstats)"
# cron down for a day: the next run is at 12:30 on day 1
due --db late-c.db --rules $S --now 2026-11-03T12:30:00+08:00
eq "late: cron down a day: only day 1's 12:00 step (30 min late) is printed" "K1 1 11-03 12:00" "$(printed)"
eq "late: cron down a day: day 0's step missed, not queued at 12:30" "K1 0 missed 11-02 20:00;K1 1 queued 11-03 12:00" "$(touches late-c.db)"
due --db late-c.db --rules $S --now 2026-11-03T12:30:00+08:00 --late 48h
eq "late: a missed step stays missed: a re-run with --late 48h queues nothing" "" "$(cat "$T/sout")"
eq "late: touches unchanged after the re-run" "K1 0 missed 11-02 20:00;K1 1 queued 11-03 12:00" "$(touches late-c.db)"
due --db late-d.db --rules $S --now 2026-11-03T12:30:00+08:00 --late 48h
eq "late: --late 48h: both steps queued after a day down" "K1 0 11-02 20:00;K1 1 11-03 12:00" "$(printed)"
eq "late: --late 48h: both rows queued" "K1 0 queued 11-02 20:00;K1 1 queued 11-03 12:00" "$(touches late-d.db)"
due --db late-d.db --rules $S --now 2026-11-05T20:30:00+08:00 --late 30m
eq "late: --late 30m: the coupon 30 min late is queued" "K1 2 11-05 20:00" "$(printed)"
dbcopy late.db late-e.db
due --db late-e.db --rules $S --now 2026-11-02T20:31:00+08:00 --late 30m
eq "late: --late 30m: 31 min late is missed" "K1 0 missed 11-02 20:00" "$(touches late-e.db)"

# === a step due before enrolment: skipped, not moved =========================
# K3 enters cart_A at exactly 20:00 (day 0 = the step's time: queued); K2
# at 21:00, after day 0's 20:00 step: skipped (smr-sop-due(1)), and not
# moved to the next evening.
ev k3-1 add_cart 2026-11-02T19:55:00+08:00 K3 ',"item":"SKU-A"' >k3.ndjson
ev k2-1 add_cart 2026-11-02T20:50:00+08:00 K2 ',"item":"SKU-A"' >k2.ndjson
ingest "skip K3" skip.db $S k3.ndjson
tag --db skip.db --rules $S --now 2026-11-02T20:00:00+08:00
due --db skip.db --rules $S --now 2026-11-02T20:00:00+08:00
eq "skip: entered at exactly 20:00: step 0 (20:00) is queued" "K3 0 11-02 20:00" "$(printed)"
ingest "skip K2" skip.db $S k2.ndjson
tag --db skip.db --rules $S --now 2026-11-02T21:00:00+08:00
due --db skip.db --rules $S --now 2026-11-02T21:00:00+08:00 --stats
eq "skip: entered at 21:00: nothing printed" "" "$(cat "$T/sout")"
eq "skip: --stats: 1 enrolled, 1 skipped" "1 0 0 0 0 1 0" "$(dstats)"
eq "skip: step 0 recorded as skipped at its own due time" "K2 0 skipped 11-02 20:00" "$(touches skip.db "state <> 'queued'")"
due --db skip.db --rules $S --now 2026-11-03T12:00:00+08:00
eq "skip: day 1 12:00 for both" "K2 1 11-03 12:00;K3 1 11-03 12:00" "$(printed)"
due --db skip.db --rules $S --now 2026-11-03T20:00:00+08:00
eq "skip: not moved: nothing at 20:00 the next day" "" "$(cat "$T/sout")"
eq "skip: K2's touches" "K2 0 skipped 11-02 20:00;K2 1 queued 11-03 12:00" "$(touches skip.db "pid = $(pid_of skip.db K2)")"

# === the golden window ========================================================
# window 2d from day 0 (10:05 on 11-02): the step at 2d 09:00 is inside,
# 2d 11:00 and 5d are after it and never queued. W2 entered 4 days before
# the first run: longer ago than the window, never enrolled.
cat >win.rules <<'EOF2'
timezone Asia/Shanghai
tag cart_A when count('add_cart', '7d', 'SKU-A') > 0
sop short
  trigger cart_A
  window 2d
  step 0d 20:00 private m
  step 1d 20:00 private m
  step 2d 09:00 private m
  step 2d 11:00 private m
  step 5d 20:00 private m
end
content m private "hi"
EOF2
ev w2-1 add_cart 2026-10-29T10:00:00+08:00 W2 ',"item":"SKU-A"' >w1.ndjson
ev w1-1 add_cart 2026-11-02T10:00:00+08:00 W1 ',"item":"SKU-A"' >w2.ndjson
ingest "window W2" win.db win.rules w1.ndjson
tag --db win.db --rules win.rules --now 2026-10-29T10:05:00+08:00
ingest "window W1" win.db win.rules w2.ndjson
tag --db win.db --rules win.rules --now 2026-11-02T10:05:00+08:00
due --db win.db --rules win.rules --now 2026-11-02T10:05:00+08:00 --stats
eq "window: only W1 enrolled; W2's entry is older than the window" "W1 active - 11-02 10:05" "$(enrols win.db)"
eq "window: W2 still holds cart_A" "cart_A" "$(tagset win.db W2)"
due --db win.db --rules win.rules --now 2026-11-04T09:30:00+08:00 --late 48h
eq "window: the steps inside the window" "W1 0 11-02 20:00;W1 1 11-03 20:00;W1 2 11-04 09:00" "$(printed)"
for now in 2026-11-04T11:00:00+08:00 2026-11-07T20:00:00+08:00; do
	due --db win.db --rules win.rules --now $now --late 10d
	eq "window: nothing after the window ($now)" "" "$(cat "$T/sout")"
done
eq "window: exactly the 3 steps inside it, ever" "W1 0 queued 11-02 20:00;W1 1 queued 11-03 20:00;W1 2 queued 11-04 09:00" "$(touches win.db)"
eq "window: W1's enrollment completed" "W1 completed all_steps_done 11-02 10:05" "$(enrols win.db)"

# === time zones ================================================================
# Asia/Shanghai (UTC+8): a step at 00:30 local on day 1 is 16:30 UTC on day
# 0. Z2 enters at 01:00 local on 11-03, still 11-02 in UTC: its day 0 is the
# local date, 11-03.
cat >tz.rules <<'EOF2'
timezone Asia/Shanghai
tag night when count('add_cart', '7d', 'SKU-N') > 0
sop night
  trigger night
  step 0d 20:00 private m
  step 1d 00:30 private m
end
content m private "hi"
EOF2
utc() { sq "$1" "SELECT coalesce(group_concat(x, ';'), '') FROM (SELECT i.value || ' ' || t.step || ' ' || datetime(t.due_at, 'unixepoch') AS x FROM touch t JOIN identity i ON i.pid = t.pid AND i.kind = 'unionid' WHERE ${2:-1} ORDER BY i.value, t.step)"; }
ev z1-1 add_cart 2026-11-02T10:00:00+08:00 Z1 ',"item":"SKU-N"' >z1.ndjson
ev z2-1 add_cart 2026-11-03T00:50:00+08:00 Z2 ',"item":"SKU-N"' >z2.ndjson
ingest "tz Z1" tz.db tz.rules z1.ndjson
tag --db tz.db --rules tz.rules --now 2026-11-02T10:05:00+08:00
due --db tz.db --rules tz.rules --now 2026-11-02T12:00:00Z
eq "tz Shanghai: 20:00 local is 12:00 UTC" "Z1 0 11-02 20:00" "$(printed)"
due --db tz.db --rules tz.rules --now 2026-11-02T16:29:59Z
eq "tz Shanghai: nothing at 16:29:59 UTC" "" "$(cat "$T/sout")"
due --db tz.db --rules tz.rules --now 2026-11-02T16:30:00Z
eq "tz Shanghai: day 1 00:30 local is queued at 16:30 UTC the day before" "Z1 1 11-03 00:30" "$(printed)"
eq "tz Shanghai: its due_at is 16:30 UTC on 11-02" "$(ep 2026-11-02T16:30:00Z)" "$(sed -n 's/.*"due_at":\([0-9]*\).*/\1/p' "$T/sout")"
ingest "tz Z2" tz.db tz.rules z2.ndjson
tag --db tz.db --rules tz.rules --now 2026-11-02T17:00:00Z
due --db tz.db --rules tz.rules --now 2026-11-02T17:00:00Z --stats
eq "tz Shanghai: Z2 enrolled at 01:00 local, nothing due or skipped" "1 0 0 0 0 0 0" "$(dstats)"
due --db tz.db --rules tz.rules --now 2026-11-03T12:00:00Z
eq "tz Shanghai: Z2's day 0 is its local date (11-03): 20:00 local" "Z2 0 11-03 20:00" "$(printed)"
due --db tz.db --rules tz.rules --now 2026-11-03T16:30:00Z
eq "tz Shanghai: Z2's 00:30 step the next local night" "Z2 1 11-04 00:30" "$(printed)"
eq "tz Shanghai: due_at in UTC" \
	"Z1 0 2026-11-02 12:00:00;Z1 1 2026-11-02 16:30:00;Z2 0 2026-11-03 12:00:00;Z2 1 2026-11-03 16:30:00" "$(utc tz.db)"
eq "tz Shanghai: all queued" 0 "$(nrows tz.db touch "state <> 'queued'")"

# America/New_York: summer time ends at 02:00 on Sunday 11-01 (EDT, UTC-4,
# becomes EST, UTC-5). N1's day 0 is Friday 10-30; steps on Saturday (EDT),
# Sunday (the 25-hour day) and Monday (EST) keep their wall times.
cat >ny.rules <<'EOF2'
timezone America/New_York
tag cart_A when count('add_cart', '7d', 'SKU-A') > 0
sop ny
  trigger cart_A
  step 0d 20:00 private m
  step 1d 12:00 private m
  step 2d 12:00 private m
  step 3d 09:00 private m
end
content m private "hi"
EOF2
ev n1-1 add_cart 2026-10-30T10:00:00-04:00 N1 ',"item":"SKU-A"' >n1.ndjson
ingest "tz NY" ny.db ny.rules n1.ndjson
tag --db ny.db --rules ny.rules --now 2026-10-30T10:05:00-04:00
TZN=America/New_York
for step in "2026-10-30T20:00:00-04:00|N1 0 10-30 20:00" "2026-10-31T12:00:00-04:00|N1 1 10-31 12:00" \
	"2026-11-01T11:59:59-05:00|" "2026-11-01T12:00:00-05:00|N1 2 11-01 12:00" \
	"2026-11-02T08:59:59|" "2026-11-02T09:00:00|N1 3 11-02 09:00"; do
	now=${step%%|*}
	due --db ny.db --rules ny.rules --now "$now"
	eq "tz New York at $now (local wall time across the DST change; a --now without offset is local)" "${step#*|}" "$(printed)"
done
TZN=Asia/Shanghai
eq "tz New York: due_at in UTC (EDT +4h before 11-01 02:00, EST +5h after)" \
	"N1 0 2026-10-31 00:00:00;N1 1 2026-10-31 16:00:00;N1 2 2026-11-01 17:00:00;N1 3 2026-11-02 14:00:00" "$(utc ny.db)"
# --simulate across the change: a step at 23:30 each night from day 1 (10-30)
# to day 4 (11-02); the 11-01 day has 25 hours. Each local day gets its one
# touch, under its own date.
cat >nysim.rules <<'EOF2'
timezone America/New_York
tag cart_A when count('add_cart', '7d', 'SKU-A') > 0
sop ny
  trigger cart_A
  window 10d
  step 1d 23:30 private m
  step 2d 23:30 private m
  step 3d 23:30 private m
  step 4d 23:30 private m
end
content m private "hi"
EOF2
ev n2-1 add_cart 2026-10-29T10:00:00-04:00 N2 ',"item":"SKU-A"' >n2.ndjson
ingest "tz NY sim" nysim.db nysim.rules n2.ndjson
tag --db nysim.db --rules nysim.rules --now 2026-10-29T10:05:00-04:00
due --db nysim.db --rules nysim.rules --now 2026-10-29T10:05:00-04:00
due --db nysim.db --rules nysim.rules --now 2026-10-30T00:00:00-04:00 --simulate 5d
eq "tz New York --simulate: one touch on each local day 10-30 .. 11-02, none on 11-03" \
	"2026-10-30:1 2026-10-31:1 2026-11-01:1 2026-11-02:1 2026-11-03:0" \
	"$(sed -n 's/^{"day":"\([0-9-]*\)","touches":\([0-9]*\),.*/\1:\2/p' "$T/sout" | tr '\n' ' ' | sed 's/ $//')"
eq "tz New York: day 0 is 10:05 EDT" "$(ep 2026-10-30T14:05:00Z)" "$(sq ny.db "SELECT day0 FROM enrollment")"

# === --simulate ==================================================================
# 101 persons enter cart_A at 10:05 on 11-02 and 4 more at 21:00 (their
# step 0 is skipped); S001 and S002 click once (clicker: two more steps on
# day 1), S000 twice (clicker and vip: three more). A real run at 21:00
# queues day 0. Then 4 days are simulated from midnight 11-03 with
# "cap any 1/day":
#   11-03: 105 moments steps + 2x2 clicker + 2 clicker + 1 vip = 112 touches
#          over 105 persons, max 4 (S000), p99 3 (the 104th of 105), mean
#          1.07, over the cap: S000, S001, S002
#   11-04: none; 11-05: the coupon, 1 each; 11-06: none
cat >sim.rules <<'EOF2'
timezone Asia/Shanghai
tag cart_A         when count('add_cart', '7d', 'SKU-A') > 0 and orders_since('add_cart') = 0
tag first_purchase when orders >= 1
tag clicker        when count('click', '30d') > 0
tag vip            when count('click', '30d') >= 2
sop cart_A_followup
  trigger cart_A
  exit first_purchase
  step 0d 20:00 private m
  step 1d 12:00 moments r
  step 3d 20:00 private m
end
sop clicked
  trigger clicker
  step 1d 10:00 private m
  step 1d 11:00 moments r
end
sop vip_care
  trigger vip
  step 1d 15:00 private m
end
content m private "hi"
content r moments "look"
policy
  cap any 1/day
end
EOF2
sed '/^policy/,/^end/d' sim.rules >nocap.rules
{
	for i in $(seq 0 100); do ev "s$i" add_cart 2026-11-02T10:00:00+08:00 "$(printf S%03d "$i")" ',"item":"SKU-A"'; done
	ev c0a click 2026-11-02T09:00:00+08:00 S000
	ev c0b click 2026-11-02T09:30:00+08:00 S000
	ev c1 click 2026-11-02T09:00:00+08:00 S001
	ev c2 click 2026-11-02T09:00:00+08:00 S002
} >sim1.ndjson
for i in 101 102 103 104; do ev "s$i" add_cart 2026-11-02T20:30:00+08:00 "S$i" ',"item":"SKU-A"'; done >sim2.ndjson
ingest "sim 10:00" sim.db sim.rules sim1.ndjson
tag --db sim.db --rules sim.rules --now 2026-11-02T10:05:00+08:00
ingest "sim 20:30" sim.db sim.rules sim2.ndjson
tag --db sim.db --rules sim.rules --now 2026-11-02T21:00:00+08:00
due --db sim.db --rules sim.rules --now 2026-11-02T21:00:00+08:00 --stats
eq "sim: the real run at 21:00: 109 enrolled (105 + 3 + 1), 101 queued, 4 skipped" "109 0 0 101 0 4 0" "$(dstats)"
dump0=$(sq sim.db .dump)
due --db sim.db --rules sim.rules --now 2026-11-03T00:00:00+08:00 --simulate 4d
dstatus "sim: --simulate 4d exits 0" 0
# per day: touches, persons, max, p99, mean, cap, over_cap
test_cmp "sim: the forecast records whole" "$FIXTURES/sop/simulate-4d.ndjson" "$T/sout"
check "sim: the database is unchanged (.dump before and after)" test "$dump0" = "$(sq sim.db .dump)"
cp "$T/sout" sim-first.out
due --db sim.db --rules sim.rules --now 2026-11-03T00:00:00+08:00 --simulate 4d
check "sim: a second simulation prints the same" cmp -s sim-first.out "$T/sout"
due --db sim.db --rules nocap.rules --now 2026-11-03T00:00:00+08:00 --simulate 1d
expect "sim: no policy: cap 0, nobody over it; 1d is one day" "$T/sout" <<'EOF'
{"day":"2026-11-03","touches":112,"persons":105,"max":4,"p99":3,"mean":1.07,"cap":0,"over_cap":0,"new_tags":{}}
EOF
# S001 orders before the forecast: first_purchase exits cart_A_followup.
ev o1 order 2026-11-02T22:00:00+08:00 S001 ',"amount":"9.90"' >sim3.ndjson
ingest "sim order" sim.db sim.rules sim3.ndjson
tag --db sim.db --rules sim.rules --now 2026-11-02T22:05:00+08:00
ran "sim order: smr-tag"
due --db sim.db --rules sim.rules --now 2026-11-02T22:05:00+08:00
ran "sim order: smr-sop-due"
dump0=$(sq sim.db .dump)
due --db sim.db --rules sim.rules --now 2026-11-03T00:00:00+08:00 --simulate 3d
expect "sim: after S001's order: one touch fewer on 11-03 (S001 still gets 2) and 11-05" "$T/sout" <<'EOF'
{"day":"2026-11-03","touches":111,"persons":105,"max":4,"p99":3,"mean":1.06,"cap":1,"over_cap":3,"new_tags":{}}
{"day":"2026-11-04","touches":0,"persons":0,"max":0,"p99":0,"mean":0.0,"cap":1,"over_cap":0,"new_tags":{}}
{"day":"2026-11-05","touches":104,"persons":104,"max":1,"p99":1,"mean":1.0,"cap":1,"over_cap":0,"new_tags":{}}
EOF
check "sim: the database is unchanged again" test "$dump0" = "$(sq sim.db .dump)"
due --db sim.db --rules sim.rules --now 2026-11-03T12:00:00+08:00 --stats
eq "sim: a real run at 12:00 still queues day 1 (104 + 3 + 3; the simulation consumed nothing)" "0 0 3 110 0 0 0" "$(dstats)"

# === holdout ===================================================================
# 40 persons enter h; 'half' holds out 50%, 'all_out' 100%. A held-out
# person's touches are recorded as holdout and never printed; the same
# persons are held out on every step, on a copy of the database, and again
# after they leave h and re-enter it.
cat >hold.rules <<'EOF2'
timezone Asia/Shanghai
tag h when count('click', '2d') > 0
sop half
  trigger h
  holdout 50%
  step 0d 20:00 private m
  step 1d 12:00 private m
end
sop all_out
  trigger h
  holdout 100%
  step 0d 20:00 private m
end
content m private "hi"
EOF2
for i in $(seq 10 49); do ev "h$i" click 2026-11-02T10:00:00+08:00 "H$i"; done >h1.ndjson
for i in $(seq 10 49); do ev "h2-$i" click 2026-11-05T10:00:00+08:00 "H$i"; done >h2.ndjson
ingest "holdout" hold.db hold.rules h1.ndjson
tag --db hold.db --rules hold.rules --now 2026-11-02T10:05:00+08:00
dbcopy hold.db hold2.db
due --db hold.db --rules hold.rules --now 2026-11-02T20:00:00+08:00 --stats
read -r _ _ _ nq _ _ nh <<<"$(dstats)"
hq=$(sq hold.db "SELECT count(*) FROM touch WHERE sop = 'half' AND state = 'queued'")
hh=$(sq hold.db "SELECT count(*) FROM touch WHERE sop = 'half' AND state = 'holdout'")
check "holdout 50%: both groups non-empty, 40 in all (queued $hq, held out $hh)" test "$hq" -ge 8 -a "$hh" -ge 8 -a $((hq + hh)) -eq 40
eq "holdout 100%: all 40 held out" "40 holdout" "$(sq hold.db "SELECT count(*) || ' ' || group_concat(DISTINCT state) FROM touch WHERE sop = 'all_out'")"
eq "holdout: --stats: queued and held out" "$hq $((hh + 40))" "$nq $nh"
pids_printed() { python3 -c 'import json, sys; print(" ".join(str(p) for p in sorted(json.loads(l)["pid"] for l in open(sys.argv[1]))))' "$T/sout"; }
pids_state() { sq "$1" "SELECT coalesce(group_concat(pid, ' '), '') FROM (SELECT pid FROM touch WHERE sop = 'half' AND step = $2 AND state = '$3' ORDER BY pid)"; }
QSET=$(pids_state hold.db 0 queued)
HSET=$(pids_state hold.db 0 holdout)
eq "holdout: exactly the queued persons are printed (none held out, nothing from all_out)" "$QSET" "$(pids_printed)"
due --db hold2.db --rules hold.rules --now 2026-11-02T20:00:00+08:00
eq "holdout: deterministic: a run on a copy holds out the same persons" "$HSET" "$(pids_state hold2.db 0 holdout)"
due --db hold.db --rules hold.rules --now 2026-11-03T12:00:00+08:00
eq "holdout: step 1 printed for the same persons" "$QSET" "$(pids_printed)"
eq "holdout: step 1 held out for the same persons" "$HSET" "$(pids_state hold.db 1 holdout)"
tag --db hold.db --rules hold.rules --now 2026-11-04T10:05:00+08:00
eq "holdout: all 40 leave h after 2 days" 40 "$(grep -c '"op":"remove"' "$T/tout")"
ingest "holdout again" hold.db hold.rules h2.ndjson
tag --db hold.db --rules hold.rules --now 2026-11-05T10:05:00+08:00
due --db hold.db --rules hold.rules --now 2026-11-05T20:00:00+08:00
eq "holdout: re-entered: 80 enrollments per SOP in all" "40 80 80" \
	"$(sq hold.db "SELECT count(DISTINCT pid) || ' ' || sum(sop = 'half') || ' ' || sum(sop = 'all_out') FROM enrollment")"
eq "holdout: the new enrollments print the same persons" "$QSET" "$(pids_printed)"
eq "holdout: and hold out the same persons" "$HSET" \
	"$(sq hold.db "SELECT group_concat(pid, ' ') FROM (SELECT t.pid FROM touch t JOIN enrollment e ON e.id = t.enrollment WHERE t.sop = 'half' AND t.state = 'holdout' AND e.day0 = $(ep 2026-11-05T10:05:00+08:00) ORDER BY t.pid)")"

# === piped: smr-tag | smr-sop-due gives what separate runs give ================
# 300 persons add A to the cart at 19:00; smr-tag at 20:00 enters them and
# smr-sop-due at the same --now must see the tags (step 0 is due at once):
# the piped smr-sop-due decides only after smr-tag has finished.
for i in $(seq 1 300); do ev "p$i" add_cart 2026-11-02T19:00:00+08:00 "P$i" ',"item":"SKU-A"'; done >p1.ndjson
for i in $(seq 1 300 | awk 'NR % 3 == 0'); do ev "po$i" order 2026-11-04T09:00:00+08:00 "P$i" ',"amount":"5.00"'; done >p2.ndjson
ingest "pipe" sep.db $S p1.ndjson
ingest "pipe" pipe.db $S p1.ndjson
for now in 2026-11-02T20:00:00+08:00 2026-11-03T12:00:00+08:00 2026-11-04T09:05:00+08:00 2026-11-05T20:00:00+08:00; do
	if [ "$now" = 2026-11-04T09:05:00+08:00 ]; then
		ingest "pipe orders" sep.db $S p2.ndjson
		ingest "pipe orders" pipe.db $S p2.ndjson
	fi
	tag --db sep.db --rules $S --now $now
	due --db sep.db --rules $S --now $now
	cp "$T/sout" sep.out
	"$TAG" --db pipe.db --rules $S --now $now 2>pipe-tag.err </dev/null | "$DUE" --db pipe.db --rules $S --now $now >pipe.out 2>pipe-due.err
	st="${PIPESTATUS[*]}"
	no_sanitizer "pipe at $now" pipe-tag.err pipe-due.err
	eq "pipe $now: both ends exit 0" "0 0" "$st"
	case $now in
	2026-11-02*) n=300 ;; 2026-11-03*) n=300 ;; 2026-11-04*) n=0 ;; *) n=200 ;;
	esac
	eq "pipe $now: separate runs queue $n" "$n" "$(wc -l <sep.out | tr -d ' ')"
	check "pipe $now: the piped run prints the same touches" cmp -s sep.out pipe.out
done
tabs() { sq "$1" "SELECT * FROM enrollment ORDER BY id; SELECT * FROM touch ORDER BY id"; }
check "pipe: enrollment and touch tables identical" test "$(tabs sep.db)" = "$(tabs pipe.db)"
eq "pipe: 100 exited for first_purchase, 200 completed" "completed 200;exited 100" \
	"$(sq pipe.db "SELECT group_concat(x, ';') FROM (SELECT state || ' ' || count(*) AS x FROM enrollment GROUP BY state ORDER BY state)")"

# === two smr-sop-due at once ======================================================
# Same 300 persons; at each time two runs start together. Every touch is
# queued and printed once, every person enrolled once.
ingest "concurrent" conc.db $S p1.ndjson
tag --db conc.db --rules $S --now 2026-11-02T20:00:00+08:00
round=0
for now in 2026-11-02T20:00:00+08:00 2026-11-03T12:00:00+08:00 2026-11-05T20:00:00+08:00; do
	round=$((round + 1))
	"$DUE" --db conc.db --rules $S --now $now </dev/null >c1.out 2>c1.err &
	j1=$!
	"$DUE" --db conc.db --rules $S --now $now </dev/null >c2.out 2>c2.err &
	j2=$!
	wait $j1
	r1=$?
	wait $j2
	r2=$?
	no_sanitizer "concurrent round $round" c1.err c2.err
	eq "concurrent round $round ($now): both exit 0" "0 0" "$r1 $r2"
	eq "concurrent round $round: 300 touches printed in all, each once" "300 300" \
		"$(cat c1.out c2.out | wc -l | tr -d ' ') $(cat c1.out c2.out | sed -n 's/^{"touch":\([0-9]*\),.*/\1/p' | sort -u | wc -l | tr -d ' ')"
	eq "concurrent round $round: $((round * 300)) touch rows, one per (enrollment, step)" "$((round * 300)) $((round * 300))" \
		"$(sq conc.db "SELECT count(*) || ' ' || (SELECT count(*) FROM (SELECT DISTINCT enrollment, step FROM touch)) FROM touch")"
done
check "touch: a second row for the same (enrollment, step) is refused by the schema" \
	test "$(sq conc.db "INSERT INTO touch(enrollment, pid, sop, step, due_at, channel, content, state, created_at) SELECT enrollment, pid, sop, step, due_at, channel, content, 'queued', created_at FROM touch LIMIT 1" 2>&1 | grep -c UNIQUE)" = 1
eq "concurrent: one enrollment per person" "300 300" "$(sq conc.db "SELECT count(*) || ' ' || count(DISTINCT pid) FROM enrollment")"

# === rule and usage errors: exit 2, nothing done ====================================
# sop_err NAME SOP-BODY LINE:COL REASON-ERE: both smr-tag --check and
# smr-sop-due report it at file:line:col, exit 2, and never create the db.
SH=$'timezone Asia/Shanghai\ntag cart_A when orders = 0\n'   # the sop block starts on line 3
sop_err() {
	printf '%s%s\ncontent m private "hi"\n' "$SH" "$2" >bad.rules
	rm -f never.db
	tag --check --rules bad.rules --db never.db
	if [ "$TRC" = 2 ] && grep -qE -- "^smr-tag: bad\.rules:$3: $4" "$T/terr" && [ ! -s "$T/tout" ] && [ ! -e never.db ]; then
		ok "smr-tag --check: $1"
	else
		fail "smr-tag --check: $1" "status $TRC (want 2), want 'bad.rules:$3: $4'; stderr: $(cat "$T/terr")"
	fi
	due --rules bad.rules --db never.db --now 2026-11-02T20:00:00+08:00
	if [ "$DRC" = 2 ] && grep -qE -- "^smr-sop-due: bad\.rules:$3: $4" "$T/serr" && [ ! -s "$T/sout" ] && [ ! -e never.db ]; then
		ok "smr-sop-due: $1"
	else
		fail "smr-sop-due: $1" "status $DRC (want 2), want 'bad.rules:$3: $4', db created: $([ -e never.db ] && echo yes || echo no); stderr: $(cat "$T/serr")"
	fi
}
sop_err "a step naming unknown content" $'sop s\n  trigger cart_A\n  step 0d 20:00 private nosuch\nend' '5:[0-9]+' 'step names unknown content "nosuch"'
sop_err "content for another channel" $'sop s\n  trigger cart_A\n  step 0d 20:00 moments m\nend' '5:[0-9]+' 'content "m" is for another channel'
sop_err "unknown sop statement at its column" $'sop s\n  trigger cart_A\n  frob 1\n  step 0d 20:00 private m\nend' '5:3' 'unknown sop statement "frob"'
sop_err "bad step offset at its column" $'sop s\n  trigger cart_A\n  step 1x 20:00 private m\nend' '5:8' 'bad step offset "1x"'
sop_err "negative step offset" $'sop s\n  trigger cart_A\n  step -1d 20:00 private m\nend' '5:8' 'bad step offset "-1d"'
sop_err "step time 24:00" $'sop s\n  trigger cart_A\n  step 1d 24:00 private m\nend' '5:11' 'bad step time "24:00"'
sop_err "step time 20:60" $'sop s\n  trigger cart_A\n  step 1d 20:60 private m\nend' '5:11' 'bad step time "20:60"'
sop_err "step time 8:00 (not HH:MM)" $'sop s\n  trigger cart_A\n  step 1d 8:00 private m\nend' '5:11' 'bad step time "8:00"'
sop_err "step without content" $'sop s\n  trigger cart_A\n  step 1d 20:00 private\nend' '5:[0-9]+' 'step needs a content id'
sop_err "sop without trigger" $'sop s\n  step 1d 20:00 private m\nend' '3:1' 'sop s has no trigger'
sop_err "holdout over 100%" $'sop s\n  trigger cart_A\n  holdout 150%\n  step 1d 20:00 private m\nend' '5:11' 'holdout is a percentage'
sop_err "on_leave neither exit nor stay" $'sop s\n  trigger cart_A\n  on_leave maybe\n  step 1d 20:00 private m\nend' '5:12' 'on_leave is exit or stay'
sop_err "bad window" $'sop s\n  trigger cart_A\n  window 7x\n  step 1d 20:00 private m\nend' '5:10' 'bad window "7x"'
# On a database with a step due: a bad rules file queues nothing.
dbcopy late.db bad.db
printf '%s%s\n' "$(cat $S)" $'\nsop s2\n  trigger cart_A\n  step 0d 20:00 private nosuch\nend' >bad.rules
due --db bad.db --rules bad.rules --now 2026-11-02T20:00:00+08:00
dstatus "unknown content: exit 2 on a real database" 2
eq "unknown content: nothing printed, no touch, no enrollment" "|0|1" "$(cat "$T/sout")|$(nrows bad.db touch)|$(nrows bad.db enrollment)"
due --db bad.db --rules $S --now 2026-11-02T20:00:00+08:00
eq "the good rules queue it (the step was due)" "K1 0 11-02 20:00" "$(printed)"
dbcopy late.db bad.db
dump0=$(sq bad.db .dump)
for a in "--late soon" "--late -1h" "--late=" "--simulate 12h" "--simulate 0d" "--simulate 367d" "--simulate x" "--simulate=" "--frob" "extra"; do
	# shellcheck disable=SC2086
	due --db bad.db --rules $S --now 2026-11-02T20:00:00+08:00 $a
	if [ "$DRC" = 2 ] && [ ! -s "$T/sout" ] && grep -q '^usage: smr-sop-due' "$T/serr"; then
		ok "usage: $a exits 2 with the usage line, prints nothing"
	else
		fail "usage: $a exits 2 with the usage line, prints nothing" "status $DRC, stdout '$(head -c 100 "$T/sout")', stderr: $(head -2 "$T/serr")"
	fi
done
check "usage errors changed nothing in the database" test "$dump0" = "$(sq bad.db .dump)"
due --db bad.db --rules $S --now 2026-11-02T20:00:00+08:00 --simulate 366d
eq "usage: --simulate 366d is the longest: 366 days printed" "0 366" "$DRC $(wc -l <"$T/sout" | tr -d ' ')"

finish
