#!/usr/bin/env bash
# smr-report end to end, on databases created by smr-ingest with events
# ingested and enrollment/touch rows written directly, so every answer is
# known by hand: sops (touched against holdout, the conversion window and
# its edges, touches whose window has not ended, revenue per person in
# yuan, uplift and its 95% interval, enrolled and exited_converted, sent
# and not_sent, another SOP and step with no holdout, --window), fatigue
# (a known distribution per week, week edges, states that are not sends,
# --weeks), groups (members after joins, leaves and re-joins, joins and
# leaves this week, leaves within 24 h of a push to the group and not 25 h
# after nor in another group, the message trend and both flags with their
# edges, events after --now), a real pipeline through smr-tag, smr-sop-due
# with a holdout and smr-send, --table, section selection, the database
# left unchanged, and usage errors.
. "$(dirname "$0")/../lib.sh"
. "$FIXTURES/tag/helpers.sh"
. "$FIXTURES/report/helpers.sh"

D=86400
N=$(ep 2026-11-20T00:00:00+08:00)
NOW=2026-11-20T00:00:00+08:00
cat >r.rules <<'EOF2'
timezone Asia/Shanghai
EOF2
R=r.rules
seq3() { seq -f "$1%03g" "$2" "$3"; }
seq2() { seq -f "$1%02g" "$2" "$3"; }

# === sops =====================================================================
# winback step 0: 100 touched persons T001..T100 sent at S = N - 10d (T100 at
# N - 7d: its window ends exactly at --now and counts); 30 order within 7
# days: T001..T010 199.00 one second after the touch (T001 also 10.00 two
# days after), T011..T030 59.90 exactly 7 days after. Not conversions:
# T031..T035 order a second after the window, T036..T040 at the very second
# of the touch, T041 before it, T050 only adds to the cart, T060 refunds.
# Holdout H01..H50, due at N - 9d: H01..H10 order 88.00 two days after due,
# H11..H15 a second before due, H16 a second after the window.
# Not matured with 7d: L01..L20 sent N - 6d (each orders 25.00 a day after),
# K1..K5 held out due N - 2d (each orders an hour after).
# Not sends: Q01..Q10 suppressed x3, missed x2, skipped x1, queued x4 (all order).
# winback step 1: T091..T095 sent N - 9d, no orders, no holdout.
# cart step 0: C1..C4 sent N - 8d, C1 orders 46.00 at N - 7d; C5 enrolled only.
S=$((N - 10 * D))
HD=$((N - 9 * D))
{
	for u in $(seq3 T 1 100) $(seq2 H 1 50) $(seq2 L 1 20) K1 K2 K3 K4 K5 $(seq2 Q 1 10) C1 C2 C3 C4 C5; do
		evs "v-$u" view $((N - 30 * D)) "$u"
	done
	for u in $(seq3 T 1 10); do evs "o-$u" order $((S + 1)) "$u" ',"amount":"199.00"'; done
	evs o2-T001 order $((S + 2 * D)) T001 ',"amount":"10.00"'
	for u in $(seq3 T 11 30); do evs "o-$u" order $((S + 7 * D)) "$u" ',"amount":"59.90"'; done
	for u in $(seq3 T 31 35); do evs "o-$u" order $((S + 7 * D + 1)) "$u" ',"amount":"500.00"'; done
	for u in $(seq3 T 36 40); do evs "o-$u" order "$S" "$u" ',"amount":"500.00"'; done
	evs o-T041 order $((S - 3600)) T041 ',"amount":"500.00"'
	evs c-T050 add_cart $((S + 3600)) T050 ',"item":"SKU-A"'
	evs r-T060 refund $((S + 3600)) T060 ',"amount":"100.00"'
	for u in $(seq2 H 1 10); do evs "o-$u" order $((HD + 2 * D)) "$u" ',"amount":"88.00"'; done
	for u in $(seq2 H 11 15); do evs "o-$u" order $((HD - 1)) "$u" ',"amount":"300.00"'; done
	evs o-H16 order $((HD + 7 * D + 1)) H16 ',"amount":"300.00"'
	for u in $(seq2 L 1 20); do evs "o-$u" order $((N - 5 * D)) "$u" ',"amount":"25.00"'; done
	for u in K1 K2 K3 K4 K5; do evs "o-$u" order $((N - 2 * D + 3600)) "$u" ',"amount":"70.00"'; done
	for u in $(seq2 Q 1 10); do evs "o-$u" order $((N - 9 * D)) "$u" ',"amount":"40.00"'; done
	evs o-C1 order $((N - 7 * D)) C1 ',"amount":"46.00"'
} >s.ndjson
ingest "sops fixture" s.db $R s.ndjson
{
	echo "BEGIN;"
	i=0
	for u in $(seq3 T 1 100) $(seq2 H 1 50) $(seq2 L 1 20) K1 K2 K3 K4 K5 $(seq2 Q 1 10); do
		i=$((i + 1))
		case $u in
		T00[1-9] | T01[0-2] | H0[1-3]) enr $i "$u" winback exited "entered first_purchase" ;;
		T013) enr $i "$u" winback exited "re-entered lapsed" ;;
		T014 | T015) enr $i "$u" winback exited "left lapsed" ;;
		T016) enr $i "$u" winback completed "all steps done" ;;
		*) enr $i "$u" winback active ;;
		esac
		case $u in
		T100) tch $i $i "$u" winback 0 sent $((N - 7 * D - 60)) $((N - 7 * D)) ;;
		T*) tch $i $i "$u" winback 0 sent $((S - 60)) "$S" ;;
		H*) tch $i $i "$u" winback 0 holdout "$HD" NULL ;;
		L*) tch $i $i "$u" winback 0 sent $((N - 6 * D)) $((N - 6 * D)) ;;
		K*) tch $i $i "$u" winback 0 holdout $((N - 2 * D)) NULL ;;
		Q0[1-3]) tch $i $i "$u" winback 0 suppressed $((N - 10 * D)) NULL ;;
		Q0[4-5]) tch $i $i "$u" winback 0 missed $((N - 10 * D)) NULL ;;
		Q06) tch $i $i "$u" winback 0 skipped $((N - 10 * D)) NULL ;;
		Q*) tch $i $i "$u" winback 0 queued $((N - 10 * D)) NULL ;;
		esac
		case $u in
		T09[1-5]) tch $((1000 + i)) $i "$u" winback 1 sent $((N - 9 * D)) $((N - 9 * D)) ;;
		esac
	done
	for u in C1 C2 C3 C4 C5; do
		i=$((i + 1))
		if [ $u = C1 ]; then enr $i $u cart exited "entered first_purchase"; else enr $i $u cart active; fi
		[ $u = C5 ] || tch $i $i $u cart 0 sent $((N - 8 * D)) $((N - 8 * D))
	done
	echo "COMMIT;"
} >s.sql
check "sops fixture: rows written" sq s.db ".read s.sql"
eq "sops fixture: rows written (enrollments, touches)" "190 194" "$(sq s.db "SELECT (SELECT count(*) FROM enrollment) || ' ' || (SELECT count(*) FROM touch)")"
before=$(sq s.db .dump | md5sum)

rep --db s.db --rules $R --now $NOW sops
rstatus "sops: exit 0" 0
test_cmp "sops: the records whole (every documented key, in order)" "$FIXTURES/report/sops.ndjson" "$T/rout"
eq "sops: one record per SOP and step, ordered by sop then step" "cart 0;winback 0;winback 1" "$(keys sops sop step)"
eq "sops: nothing but sops records when only sops is asked for" "3 3" "$(nrec) $(nrec sops)"
eq "sops winback 0: enrolled 185, exited_converted 15 (entered ...; not re-entered, left or all steps done)" \
	"185 15" "$(get sops sop=winback step=0 -- enrolled exited_converted)"
eq "sops winback 0: sent 120 (every sent touch), not_sent 6 (suppressed, missed, skipped; not queued)" \
	"120 6" "$(get sops sop=winback step=0 -- sent not_sent)"
eq "sops winback 0: touched 100 (window ended by --now, the edge included), 30 ordered within 7 days: rate 0.3" \
	"100 30 0.3" "$(get sops sop=winback step=0 -- touched touched_orders touched_rate)"
eq "sops winback 0: touched revenue per person (1990 + 10 + 1198) / 100 = 31.98 yuan" \
	"31.98" "$(get sops sop=winback step=0 -- touched_revenue_per_person)"
eq "sops winback 0: holdout 50 measured from due_at, 10 ordered: rate 0.2, 880 / 50 = 17.6 yuan" \
	"50 10 0.2 17.6" "$(get sops sop=winback step=0 -- holdout holdout_orders holdout_rate holdout_revenue_per_person)"
eq "sops winback 0: uplift 0.1 with the 95% normal interval" \
	"0.1 $(ci 0.3 100 0.2 50)" "$(get sops sop=winback step=0 -- uplift uplift_ci_low uplift_ci_high)"
eq "sops winback 1: 5 touched, none ordered, no holdout: rates 0 and null, uplift and interval null" \
	"5 5 0 0.0 0.0 0 0 null null null null null" \
	"$(get sops sop=winback step=1 -- sent touched touched_orders touched_rate touched_revenue_per_person holdout holdout_orders holdout_rate holdout_revenue_per_person uplift uplift_ci_low uplift_ci_high)"
eq "sops winback 1: enrolled and exited_converted are per SOP (same as step 0)" "185 15" "$(get sops sop=winback step=1 -- enrolled exited_converted)"
eq "sops cart 0: enrolled 5 (one never touched), 1 converted exit, 4 touched, 1 ordered: 0.25, 46 / 4 = 11.5 yuan" \
	"5 1 4 4 1 0.25 11.5 0 null" \
	"$(get sops sop=cart step=0 -- enrolled exited_converted sent touched touched_orders touched_rate touched_revenue_per_person holdout uplift)"

# --window 3d: T001..T100 and now L01..L20 have matured (120); within 3 days
# T001..T010 and L01..L20 ordered (30 -> 0.25), T011..T030 (7 days after) no
# longer count; holdout: H01..H50 matured (K still not), H01..H10 ordered.
rep --db s.db --rules $R --now $NOW --window 3d sops
rstatus "sops --window 3d: exit 0" 0
eq "sops --window 3d: touched 120, 30 ordered, 0.25, (1990 + 10 + 500) / 120 = 20.83 yuan" \
	"120 30 0.25 20.83" "$(get sops sop=winback step=0 -- touched touched_orders touched_rate touched_revenue_per_person)"
eq "sops --window 3d: holdout 50, 10 ordered, 0.2, 17.6 yuan" \
	"50 10 0.2 17.6" "$(get sops sop=winback step=0 -- holdout holdout_orders holdout_rate holdout_revenue_per_person)"
eq "sops --window 3d: uplift 0.05 with its interval" \
	"0.05 $(ci 0.25 120 0.2 50)" "$(get sops sop=winback step=0 -- uplift uplift_ci_low uplift_ci_high)"
rep --db s.db --rules $R --now $NOW --window 72h sops
eq "sops --window 72h is the same as 3d" "120 30 0.05" "$(get sops sop=winback step=0 -- touched touched_orders uplift)"

# --now 12 days earlier: no touch recorded yet; no record.
rep --db s.db --rules $R --now 2026-11-08T00:00:00+08:00 sops
rstatus "sops --now before any window ended: exit 0" 0
eq "sops --now before any touch: no records" 0 "$(nrec)"
# --now 2026-11-12: the first touches of winback 0 and 1 and cart 0 are
# recorded (a day before due), no conversion window has ended: a record per
# step from its first touch on, the fields that need an ended window null.
rep --db s.db --rules $R --now 2026-11-12T00:00:00+08:00 sops
eq "sops from the first touch on: one record per step touched so far" 3 "$(nrec)"
eq "sops from the first touch on: touched, rates and uplift null until a window ends" \
	"null null null null null" "$(get sops sop=winback step=0 -- touched touched_rate holdout uplift uplift_ci_low)"
eq "sops from the first touch on: enrolled is counted already" 185 "$(get sops sop=winback step=0 -- enrolled)"
# --now without an offset is local time in the rules' time zone (Shanghai):
# 23:59:59 there is a second before T100's window ends (in UTC it would be
# eight hours after).
rep --db s.db --rules $R --now 2026-11-19T23:59:59 sops
eq "sops --now in the rules' time zone (a second before T100's window ends: 99)" 99 "$(get sops sop=winback step=0 -- touched)"
eq "sops: smr-report leaves the database unchanged" "$before" "$(sq s.db .dump | md5sum)"

# Revenue per person is exact to the fen however large: V1 and V2 each
# order 12345.67 yuan after a touch, V3 orders 1234567.89 after another.
{
	for u in V1 V2; do evs "o-$u" order $((N - 5 * D)) "$u" ',"amount":"12345.67"'; done
	evs o-V3 order $((N - 5 * D)) V3 ',"amount":"1234567.89"'
} >v.ndjson
ingest "large revenue" v.db $R v.ndjson
{
	tch 1 1 V1 vip 0 sent $((N - 8 * D)) $((N - 8 * D))
	tch 2 2 V2 vip 0 sent $((N - 8 * D)) $((N - 8 * D))
	tch 3 3 V3 vip 1 sent $((N - 8 * D)) $((N - 8 * D))
} >v.sql
check "vip fixture: rows written" sq v.db ".read v.sql"
rep --db v.db --rules $R --now $NOW sops
eq "sops: revenue per person of 12345.67 and 1234567.89 yuan is exact in the NDJSON (to the fen)" \
	"12345.67;1234567.89" "$(get sops sop=vip -- touched_revenue_per_person)"
rep --db v.db --rules $R --now $NOW --table sops
check "sops --table: the same revenue, exact" has_line "$T/rout" '^vip +0 .* 12345\.67 '

# An SOP edited between enrollments: step 1 was a coupon at 1d 10:00 for
# E1..E4 and is a survey at 1d 12:00 for E5..E8 (step 0 unchanged). Both
# are touch.step 1; the report tells them apart by touch.step_key. E1 and
# E2 order a day after the coupon; nobody orders after the survey.
{
	for u in E1 E2 E3 E4 E5 E6 E7 E8; do evs "v-$u" view $((N - 30 * D)) "$u"; done
	for u in E1 E2; do evs "o-$u" order $((N - 9 * D)) "$u" ',"amount":"30.00"'; done
} >e.ndjson
ingest "edited SOP" edit.db $R e.ndjson
{
	echo "BEGIN;"
	i=0
	for u in E1 E2 E3 E4 E5 E6 E7 E8; do
		i=$((i + 1))
		enr $i "$u" edited active
		tch $((10 + i)) $i "$u" edited 0 sent $((N - 11 * D)) $((N - 11 * D))
		tch $((20 + i)) $i "$u" edited 1 sent $((N - 10 * D)) $((N - 10 * D))
		echo "UPDATE touch SET step_key = '0d 10:00 private welcome' WHERE id = $((10 + i));"
		case $u in
		E[1-4]) echo "UPDATE touch SET step_key = '1d 10:00 private coupon' WHERE id = $((20 + i));" ;;
		*) echo "UPDATE touch SET step_key = '1d 12:00 private survey' WHERE id = $((20 + i));" ;;
		esac
	done
	echo "COMMIT;"
} >e.sql
check "edited SOP fixture: rows written" sq edit.db ".read e.sql"
rep --db edit.db --rules $R --now $NOW sops
rstatus "sops after an SOP edit: exit 0" 0
eq "sops after an SOP edit: one record per step_key, ordered by step then step_key" \
	"0 0d 10:00 private welcome;1 1d 10:00 private coupon;1 1d 12:00 private survey" "$(keys sops step step_key)"
eq "sops after an SOP edit: the coupon step alone, 4 sent, 2 ordered (0.5)" \
	"4 4 2 0.5" "$(get sops 'step_key=1d 10:00 private coupon' -- sent touched touched_orders touched_rate)"
eq "sops after an SOP edit: the survey step alone, 4 sent, none ordered" \
	"4 4 0 0.0" "$(get sops 'step_key=1d 12:00 private survey' -- sent touched touched_orders touched_rate)"
eq "sops after an SOP edit: step 0 unchanged, all 8 (2 ordered within its window)" \
	"8 8 2" "$(get sops step=0 -- sent touched touched_orders)"
eq "sops: touches without a step_key yet (before the upgrade) group by step, step_key null" \
	"null;null;null" "$(rep --db s.db --rules $R --now $NOW sops; get sops -- step_key)"
rep --db edit.db --rules $R --now $NOW --table sops
check "sops --table after an SOP edit: a line per step_key" has_line "$T/rout" '^edited +1 +1d 12:00 private survey '

# === fatigue ==================================================================
# Sent touches per person per week back from N (week 0 = (N - 7d, N]):
#   week 0: A 1 (at N exactly), B 2, C 3, D 4, E 5 (one due in week 2 but sent
#           in week 0), F 7 -> 6 persons, 22 touches, mean 3.67, max 7
#   week 1: A 2 (one at N - 7d exactly), G 1 -> 2 persons, 3 touches, mean 1.5
#   week 2: none
#   week 3: H 6 -> 1 person, 6 touches
#   week 4: H 1 at N - 28d exactly (only with --weeks 5)
# Not counted: F at N + 1 (after --now), B held out, C suppressed, D queued.
{
	for u in A B C D E F G H; do evs "v-$u" view $((N - 40 * D)) "$u"; done
} >f.ndjson
ingest "fatigue fixture" f.db $R f.ndjson
{
	echo "BEGIN;"
	i=0
	t() { # WHO SENT [STATE [DUE]]
		i=$((i + 1))
		tch $i $i "$1" f 0 "${3:-sent}" "${4:-$2}" "$2"
	}
	t A "$N"
	for k in 1 2; do t B $((N - k * 3600)); done
	for k in 1 2 3; do t C $((N - k * D)); done
	for k in 1 2 3 4; do t D $((N - k * D + 5)); done
	for k in 1 2 3 4; do t E $((N - k * 3600 - 7)); done
	t E $((N - 6 * D)) sent $((N - 13 * D - 3600))
	for k in 0 1 2 3 4 5 6; do t F $((N - 7 * D + 1 + k * 3600)); done
	t F $((N + 1))
	t B $((N - 3600)) holdout
	t C $((N - 3600)) suppressed
	t D $((N - 3600)) queued
	t A $((N - 7 * D))
	t A $((N - 13 * D))
	t G $((N - 10 * D))
	for k in 1 2 3 4 5 6; do t H $((N - 21 * D - k * 3600)); done
	t H $((N - 28 * D))
	echo "COMMIT;"
} >f.sql
check "fatigue fixture: rows written" sq f.db ".read f.sql"
FCOLS="weeks_ago persons touches mean max one two three four five_plus"
rep --db f.db --rules $R --now $NOW fatigue
rstatus "fatigue: exit 0" 0
test_cmp "fatigue: the records whole (weeks 0, 1 and 3 in order; none for week 2, without touches)" "$FIXTURES/report/fatigue.ndjson" "$T/rout"
eq "fatigue week 0: 6 persons, 22 touches, mean 3.67, max 7, histogram 1 1 1 1 2" \
	"0 6 22 3.67 7 1 1 1 1 2" "$(get fatigue weeks_ago=0 -- $FCOLS)"
eq "fatigue week 1: 2 persons, 3 touches, mean 1.5, max 2 (the touch at exactly N - 7d is week 1)" \
	"1 2 3 1.5 2 1 1 0 0 0" "$(get fatigue weeks_ago=1 -- $FCOLS)"
eq "fatigue week 3: 1 person, 6 touches (five or more)" "3 1 6 6.0 6 0 0 0 0 1" "$(get fatigue weeks_ago=3 -- $FCOLS)"
eq "fatigue: --weeks 4 stops before N - 28d" none "$(get fatigue weeks_ago=4 -- persons)"
rep --db f.db --rules $R --now $NOW --weeks 5 fatigue
eq "fatigue --weeks 5: week 4 holds the touch at exactly N - 28d" "1 1" "$(get fatigue weeks_ago=4 -- persons touches)"
rep --db f.db --rules $R --now $NOW --weeks 1 fatigue
eq "fatigue --weeks 1: only week 0" "0" "$(keys fatigue weeks_ago)"
# One second later both edges move: F's touch at N + 1 enters week 0 and its
# touch at N - 7d + 1 leaves it for week 1.
rep --db f.db --rules $R --now 2026-11-20T00:00:01+08:00 --weeks 2 fatigue
eq "fatigue one second later: week 0 6 persons, 22 touches, max 7; week 1 3 persons, 4 touches" \
	"0 6 22 7;1 3 4 2" "$(get fatigue -- weeks_ago persons touches max)"

# === groups ===================================================================
# Messages per group, the week before (N - 14d, N - 7d] and the last week (N - 7d, N]:
#   grp-collapse 10 -> 3 (flagged; one at N - 7d exactly is the week before,
#                one at N - 14d exactly is neither, one after --now ignored)
#   grp-half     10 -> 5 (flagged: exactly half)
#   grp-steady   10 -> 6 (not flagged)
#   grp-few     4 -> 0 (not flagged: fewer than 5 before)
# grp-push: M01..M08 joined N - 20d, M09 joins N - 2d; a push (sent touch on
#   channel group:grp-push) at P = N - 3d; M01 leaves at P, M02 at P + 1h,
#   M03 at P + 24h - 1s (3 after the push: flagged), M04 at P + 25h and M05
#   a second before P (not after the push): members 4, joins_7d 1, leaves_7d 5.
# grp-steady: M10..M15 joined N - 20d; M10 leaves N - 10d (2 days after a
#   push to grp-steady at N - 12d: not within 24 h); M11 leaves N - 10d and
#   re-joins N - 5d; M12 leaves at P + 1h (after grp-push's push, and a
#   suppressed touch on group:grp-steady at P): members 4, joins_7d 1,
#   leaves_7d 1, leaves_after_push 0.
# grp-push2: M20..M23 joined N - 20d; pushes at Q2 = N - 5d and Q2 + 2h;
#   M20 leaves at Q2 + 3h (after both: counted once), M21 at Q2 + 23h,
#   M22 at Q2 + 2h + 25h; a push at N - 1h and M23 leaving at N + 1h (after
#   --now): leaves_after_push 2 (not flagged), members 1.
# 上海VIP群: two messages last week (a non-ASCII group id).
P=$((N - 3 * D))
Q2=$((N - 5 * D))
{
	for u in $(seq2 M 1 30); do evs "v-$u" view $((N - 40 * D)) "$u"; done
	msgs() { # GROUP COUNT FROM STEP (seconds back from FROM)
		local k
		for k in $(seq 0 $(($2 - 1))); do
			evs "m-$1-$3-$k" message $(($3 - k * $4)) M2$((k % 10)) ",\"text\":\"hi $k\",\"group_id\":\"$1\""
		done
	}
	msgs grp-collapse 10 $((N - 7 * D)) 3600
	msgs grp-collapse 3 "$N" 3600
	msgs grp-collapse 1 $((N - 14 * D)) 1
	msgs grp-collapse 1 $((N + 60)) 1
	msgs grp-half 10 $((N - 8 * D)) 3600
	msgs grp-half 5 $((N - D)) 3600
	msgs grp-steady 10 $((N - 8 * D)) 3600
	msgs grp-steady 6 $((N - D)) 3600
	msgs grp-few 4 $((N - 8 * D)) 3600
	msgs 上海VIP群 2 $((N - D)) 3600
	evs m-nogroup message $((N - D)) M01 ',"text":"no group"'
	gj() { evs "g-$1-$2-$3" "$1" "$3" "$2" ",\"group_id\":\"$4\""; } # TYPE WHO TS GROUP
	for u in $(seq2 M 1 8); do gj group_join "$u" $((N - 20 * D)) grp-push; done
	gj group_join M09 $((N - 2 * D)) grp-push
	gj group_leave M01 "$P" grp-push
	gj group_leave M02 $((P + 3600)) grp-push
	gj group_leave M03 $((P + D - 1)) grp-push
	gj group_leave M04 $((P + 25 * 3600)) grp-push
	gj group_leave M05 $((P - 1)) grp-push
	for u in $(seq2 M 10 15); do gj group_join "$u" $((N - 20 * D)) grp-steady; done
	gj group_leave M10 $((N - 10 * D)) grp-steady
	gj group_leave M11 $((N - 10 * D)) grp-steady
	gj group_join M11 $((N - 5 * D)) grp-steady
	gj group_leave M12 $((P + 3600)) grp-steady
	for u in $(seq2 M 20 23); do gj group_join "$u" $((N - 20 * D)) grp-push2; done
	gj group_leave M20 $((Q2 + 3 * 3600)) grp-push2
	gj group_leave M21 $((Q2 + 23 * 3600)) grp-push2
	gj group_leave M22 $((Q2 + 27 * 3600)) grp-push2
	gj group_leave M23 $((N + 3600)) grp-push2
} >g.ndjson
ingest "groups fixture" g.db $R g.ndjson
{
	echo "BEGIN;"
	tch 1 1 M30 g 0 sent "$P" "$P" group:grp-push
	tch 2 2 M30 g 1 sent $((N - 12 * D)) $((N - 12 * D)) group:grp-steady
	tch 3 3 M30 g 2 suppressed "$P" NULL group:grp-steady
	tch 4 4 M30 g 3 sent "$Q2" "$Q2" group:grp-push2
	tch 5 5 M30 g 4 sent $((Q2 + 7200)) $((Q2 + 7200)) group:grp-push2
	tch 6 6 M30 g 5 sent $((N - 3600)) $((N - 3600)) group:grp-push2
	echo "COMMIT;"
} >g.sql
check "groups fixture: rows written" sq g.db ".read g.sql"
GCOLS="members joins_7d leaves_7d leaves_after_push messages_prev_7d messages_7d flag"
COLLAPSED='"engagement collapsed: likely muted or folded"'
PUSHED='"members leave after pushes"'
rep --db g.db --rules $R --now $NOW groups
rstatus "groups: exit 0" 0
eq "groups: one record per group id, flagged first, then by group id" \
	"grp-collapse;grp-half;grp-push;grp-few;grp-push2;grp-steady;上海VIP群" "$(keys groups group_id)"
eq "groups grp-collapse: messages 10 -> 3 (edges: N - 7d is the week before, N - 14d and after --now are out): collapsed" \
	"0 0 0 0 10 3 $COLLAPSED" "$(get groups group_id=grp-collapse -- $GCOLS)"
eq "groups grp-half: messages 10 -> 5 (exactly half): collapsed" \
	"10 5 $COLLAPSED" "$(get groups group_id=grp-half -- messages_prev_7d messages_7d flag)"
eq "groups grp-steady: messages 10 -> 6: not flagged" "10 6 null" "$(get groups group_id=grp-steady -- messages_prev_7d messages_7d flag)"
eq "groups grp-few: messages 4 -> 0: not flagged (fewer than 5)" "4 0 null" "$(get groups group_id=grp-few -- messages_prev_7d messages_7d flag)"
eq "groups grp-push: members 4, joins_7d 1, leaves_7d 5, 3 left within 24 h of the push: flagged" \
	"4 1 5 3 0 0 $PUSHED" "$(get groups group_id=grp-push -- $GCOLS)"
eq "groups grp-steady: members 4 (a leave, a leave and re-join, a leave), joins_7d 1, leaves_7d 1, no leave after its own push" \
	"4 1 1 0" "$(get groups group_id=grp-steady -- members joins_7d leaves_7d leaves_after_push)"
eq "groups grp-push2: 2 leaves after pushes (one after two pushes counted once; 25 h after and after --now not): not flagged; members 1" \
	"1 2 null" "$(get groups group_id=grp-push2 -- members leaves_after_push flag)"
eq "groups 上海VIP群: 2 messages last week" "0 2 null" "$(get groups group_id=上海VIP群 -- messages_prev_7d messages_7d flag)"
rep --db g.db --rules $R --now 2026-11-19T23:59:59+08:00 groups
eq "groups a second before N: the message at N is out, N - 7d moves into the last week, N - 14d into the week before (10 -> 3)" \
	"10 3" "$(get groups group_id=grp-collapse -- messages_prev_7d messages_7d)"
rep --db g.db --rules $R --now 2026-11-20T00:01:00+08:00 groups
eq "groups at N + 60: the message at N + 60 counts" "4" "$(get groups group_id=grp-collapse -- messages_7d)"
rep --db g.db --rules $R --now 2026-11-20T01:00:00+08:00 groups
eq "groups at N + 1h: M23's leave counts, after the push at N - 1h (3 leaves: flagged), members 0" \
	"0 3 $PUSHED" "$(get groups group_id=grp-push2 -- members leaves_after_push flag)"

# === a real pipeline: smr-tag -> smr-sop-due (holdout 50%) -> smr-send ======
# 40 persons add to the cart; the SOP holds half out; the rest are sent at
# 20:00. Persons X10..X29 order the next day. Eight days later the report's
# numbers are the touch table's, with the order set known.
cat >pipe.rules <<'EOF2'
timezone Asia/Shanghai
tag cart when count('add_cart', '7d') > 0
tag buyer when orders >= 1
sop cartsop
  trigger cart
  exit buyer
  holdout 50%
  window 7d
  step 0d 20:00 private m
  step 3d 20:00 private m
end
content m private "hi"
EOF2
for i in $(seq 10 49); do ev "x$i" add_cart 2026-11-02T10:00:00+08:00 "X$i" ',"item":"SKU-A"'; done >p1.ndjson
for i in $(seq 10 29); do ev "xo$i" order 2026-11-03T10:00:00+08:00 "X$i" ',"item":"SKU-A","amount":"100.00"'; done >p2.ndjson
ingest "pipeline" p.db pipe.rules p1.ndjson
tag --db p.db --rules pipe.rules --now 2026-11-02T10:05:00+08:00
ran "pipeline: smr-tag"
"$SMR_BIN/smr-sop-due" --db p.db --rules pipe.rules --now 2026-11-02T20:00:00+08:00 </dev/null |
	"$SMR_BIN/smr-send" --db p.db --rules pipe.rules --now 2026-11-02T20:00:00+08:00 --transport file:p.out >/dev/null 2>p.err
eq "pipeline: smr-sop-due | smr-send: both exit 0" "0 0" "${PIPESTATUS[*]}"
ingest "pipeline orders" p.db pipe.rules p2.ndjson
tag --db p.db --rules pipe.rules --now 2026-11-03T10:05:00+08:00
ran "pipeline orders: smr-tag"
"$SMR_BIN/smr-sop-due" --db p.db --rules pipe.rules --now 2026-11-03T10:05:00+08:00 </dev/null >/dev/null 2>>p.err
eq "pipeline orders: smr-sop-due exits 0" 0 "$?"
eq "pipeline: every queued touch delivered" "$(sq p.db "SELECT count(*) FROM touch WHERE state = 'sent'")" "$(wc -l <p.out | tr -d ' ')"
# yuan C N: 100.00 yuan x C / N, rounded half away from zero to 2 places
yuan() { python3 -c 'import decimal, sys; print(float((decimal.Decimal(100 * int(sys.argv[1])) / int(sys.argv[2])).quantize(decimal.Decimal("0.01"), decimal.ROUND_HALF_UP)))' "$1" "$2"; }
ps=$(sq p.db "SELECT sum(state = 'sent') || ' ' || sum(state = 'sent' AND i.value < 'X30') || ' ' || sum(state = 'holdout') || ' ' || sum(state = 'holdout' AND i.value < 'X30')
 FROM touch t JOIN identity i ON i.pid = t.pid AND i.kind = 'unionid'")
read -r n1 c1 n2 c2 <<<"$ps"
check "pipeline: both groups non-empty ($ps)" test "${n1:-0}" -ge 5 -a "${n2:-0}" -ge 5 -a $((n1 + n2)) -eq 40
rep --db p.db --rules pipe.rules --now 2026-11-10T12:00:00+08:00
rstatus "pipeline: exit 0" 0
eq "pipeline: sops matches the touch table (enrolled, converted exits, touched, holdout and their orders, revenue)" \
	"40 20 $n1 $c1 $n2 $c2 $(yuan $c1 $n1) $(yuan $c2 $n2)" \
	"$(get sops sop=cartsop step=0 -- enrolled exited_converted touched touched_orders holdout holdout_orders touched_revenue_per_person holdout_revenue_per_person)"
eq "pipeline: fatigue 8 days later: the sends are in week 1" "1 $n1 $n1" "$(get fatigue -- weeks_ago persons touches)"
eq "pipeline: groups: none" none "$(get groups -- group_id)"

# === output forms =============================================================
rep --db s.db --rules $R --now $NOW
rstatus "all sections: exit 0" 0
test_cmp "all sections: sops, fatigue and groups records, sections in that order" "$FIXTURES/report/all.ndjson" "$T/rout"
eq "all sections on the sops fixture: 3 sops, 2 fatigue weeks (sends at N - 10d... N - 6d), no groups" "3 2 0" "$(nrec sops) $(nrec fatigue) $(nrec groups)"
rep --db g.db --rules $R --now $NOW groups fatigue
eq "two sections named: groups and fatigue records only (the pushes are sends: 2 weeks)" "7 2 0" "$(nrec groups) $(nrec fatigue) $(nrec sops)"

rep --db s.db --rules $R --now $NOW --table
rstatus "--table: exit 0" 0
eq "--table: a '== name' line per section, in order" "== sops;== fatigue;== groups" "$(grep '^== ' "$T/rout" | paste -sd';')"
eq "--table: each section's header line follows its title" \
	"sop step step_key enrolled exited_converted sent not_sent touched touched_orders touched_rate touched_revenue_per_person holdout holdout_orders holdout_rate holdout_revenue_per_person uplift uplift_ci_low uplift_ci_high;weeks_ago persons touches mean max one two three four five_plus;group_id members joins_7d leaves_7d leaves_after_push messages_prev_7d messages_7d flag" \
	"$(grep -A1 '^== ' "$T/rout" | grep -v '^==\|^--' | tr -s ' ' | sed 's/ $//' | paste -sd';')"
test_cmp "--table: every section whole (the winback rows with their numbers, a NULL as -)" "$FIXTURES/report/table.txt" "$T/rout"
rep --db g.db --rules $R --now $NOW --table groups
test_cmp "--table groups: whole, columns lined up in characters (Chinese flags)" "$FIXTURES/report/table-groups.txt" "$T/rout"
check "--table groups: the flags in full" test "$(grep -c 'engagement collapsed: likely muted or folded' "$T/rout") $(grep -c 'members leave after pushes' "$T/rout")" = "2 1"
rm -f e.db
ingest "empty" e.db $R /dev/null
rep --db e.db --rules $R --now $NOW --table
test_cmp "--table on an empty database: titles and headers only" "$FIXTURES/report/table-empty.txt" "$T/rout"
rep --db e.db --rules $R --now $NOW
eq "NDJSON on an empty database: nothing" "0 0" "$PRC $(nrec)"

# === usage errors =============================================================
usage_error "unknown report 'sop'" report --rules $R sop
usage_error "unknown report after a good one" report --rules $R sops bogus
usage_error "--window abc" report --rules $R --window abc
usage_error "--window 0" report --rules $R --window 0
usage_error "--window 7x" report --rules $R --window 7x
usage_error "--window -1d" report --rules $R --window -1d
usage_error "--window 7 (no unit)" report --rules $R --window 7
usage_error "--window empty" report --rules $R --window ''
usage_error "--weeks 0" report --rules $R --weeks 0
usage_error "--weeks abc" report --rules $R --weeks abc
usage_error "--weeks 521" report --rules $R --weeks 521
usage_error "--now bogus" report --rules $R --now bogus
usage_error "unknown option --frobnicate" report --rules $R --frobnicate
rep --db u.db --rules $R sops bogus
check "unknown report: named on stderr" has_line "$T/rerr" 'bogus'
rep --help
rstatus "--help: exit 0" 0
check "--help: usage on stdout" has_line "$T/rout" '^usage: smr-report '
check "--help: the usage names the sections" has_line "$T/rout" '^ +.*\[sops\|fatigue\|groups \.\.\.\]$'
rep --db s.db --rules no-such.rules --now $NOW
rstatus "a missing --rules file: exit 2" 2

# === --html: one well-formed self-contained page whose tables hold the
# NDJSON report's numbers, on the sops, fatigue and groups fixtures.
html_agrees() { # NAME DB NOW
	rep --db "$2" --rules $R --now "$3"
	cp "$T/rout" "$T/ndjson"
	rep --db "$2" --rules $R --now "$3" --html "$T/r.html"
	rstatus "$1: --html exits 0" 0
	eq "$1: --html prints nothing" "" "$(cat "$T/rout")"
	eq "$1: --html page mode 0600, no temporary left" "600 0" "$(stat -c %a "$T/r.html") $(ls "$T" | grep -c 'r.html.tmp')"
	python3 - "$T/r.html" "$T/ndjson" >"$T/hcheck" 2>&1 <<'PY'
import json, sys, xml.etree.ElementTree as ET
H = "{http://www.w3.org/1999/xhtml}"
root = ET.parse(sys.argv[1]).getroot()          # well-formed XML or it raises
text = open(sys.argv[1], encoding="utf-8").read()
assert root.find(".//" + H + "script") is None, "a script"
assert "src=" not in text and "href=" not in text and "@import" not in text and "url(" not in text, "something fetched"
assert root.find(".//{http://www.w3.org/2000/svg}svg") is not None, "no inline svg"
recs = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8")]
for sec in ("sops", "fatigue", "groups"):
    want = [r for r in recs if r["report"] == sec]
    tab = [t for t in root.iter(H + "table") if t.get("id") == sec]
    assert len(tab) == 1, sec + ": no table"
    rows = [[c.text or "" for c in tr] for tr in tab[0].iter(H + "tr")]
    head, body = rows[0], rows[1:]
    assert len(body) == len(want), "%s: %d rows, %d records" % (sec, len(body), len(want))
    for cells, r in zip(body, want):
        assert set(head) == set(r) - {"report"}, (sec, head)
        for k, v in zip(head, cells):
            w = r[k]
            if w is None:
                assert v == "-", (sec, k, v)
            elif isinstance(w, (int, float)):
                assert float(v) == float(w), (sec, k, v, w)
            else:
                assert v == w, (sec, k, v, w)
print("ok", sum(1 for r in recs))
PY
	check "$1: the page is well-formed XHTML, no script or fetch, its tables equal the NDJSON" grep -q '^ok [0-9]' "$T/hcheck"
	[ -s "$T/hcheck" ] && ! grep -q '^ok' "$T/hcheck" && head -c 600 "$T/hcheck"
}
html_agrees "html sops" s.db $NOW
html_agrees "html sops after an SOP edit" edit.db $NOW
check "html sops after an SOP edit: the chart names each step by its key" \
	grep -q "edited step 1 (1d 12:00 private survey)" "$T/r.html"
html_agrees "html fatigue" f.db 2026-11-20T00:00:01+08:00
html_agrees "html groups" g.db $NOW
html_agrees "html of an empty database" empty.db $NOW
rep --db s.db --rules $R --now $NOW --html "$T/r.html" --table
rstatus "--html with --table: usage error, exit 2" 2
rep --db s.db --rules $R --now $NOW --html /nonexistent/dir/r.html
rstatus "--html to a directory that does not exist: exit 3" 3

finish
