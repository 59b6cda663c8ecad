#!/usr/bin/env bash
# smr-send end to end, on state built by smr-ingest -> smr-tag -> smr-sop-due
# driven by --now: caps across two SOPs on one person in one day (priority
# wins, deferral to when the oldest touch leaves the window, re-check on a
# --queued run), quiet hours across midnight, DND tags, the dedup window,
# fatigue back-off, template fallbacks and a missing variable, the exec:
# transport (exit 3, 75, 0; no shell), the webhook: transport against a
# local server (200, 429, 500, 400, a hang; Idempotency-Key, retry counts),
# kill -9 mid-send then a re-run (unknown, never resent, counted by caps;
# webhook re-queues), --limit, two senders at once, --dry-run, converted /
# out of window / SOP or content gone, usage errors and rejected input.
. "$(dirname "$0")/../lib.sh"
. "$FIXTURES/tag/helpers.sh"
. "$FIXTURES/sop/helpers.sh"
RECV="$FIXTURES/send/recv.py"
HOOK="$FIXTURES/send/hook.py"
export TZ=Asia/Shanghai

# sendin FILE ARGS...: smr-send with stdin from FILE, stdout in $T/xout,
# stderr in $T/xerr, status in XRC; a sanitizer report is a failure.
# res KEY...: the result records of the last smr-send run.
# st DB [WHERE]: touch rows as "who sop step state;..." by who, sop, step.
st() {
	sq "$1" "SELECT coalesce(group_concat(x, ';'), '') FROM (SELECT $WHO || ' ' || sop || ' ' || step || ' ' || state AS x
 FROM touch x WHERE ${2:-1} ORDER BY $WHO, sop, step)"
}

# === caps across two SOPs on one person in one day =============================
# Both SOPs start on the same tag. promo (priority 0) and order_care
# (priority 5) each have a private step at 12:00; order_care a moments step
# at 15:00, promo one at 18:00. Policy: any 2/day, private 1/day.
cat >cap.rules <<'EOF2'
timezone Asia/Shanghai
tag go when count('view', '30d') > 0
sop promo
  trigger go
  step 0d 12:00 private p_private
  step 0d 18:00 moments p_moments
end
sop order_care
  trigger go
  priority 5
  step 0d 12:00 private o_private
  step 0d 15:00 moments o_moments
end
content p_private private "promo {{nickname|亲}}"
content p_moments moments "promo moments"
content o_private private "care {{nickname|亲}}"
content o_moments moments "care moments"
policy
  cap any 2/day
  cap private 1/day
end
EOF2
{
	ev c1 view 2026-11-02T09:00:00+08:00 C1
	ev c2 profile 2026-11-02T09:00:00+08:00 C1 ',"props":{"nickname":"小王"}'
} >cap.ndjson
ingest "caps" cap.db cap.rules cap.ndjson
tag --db cap.db --rules cap.rules --now 2026-11-02T09:05:00+08:00
due --db cap.db --rules cap.rules --now 2026-11-02T12:00:00+08:00
eq "caps 12:00: smr-sop-due queues both private steps" "C1 0 11-02 12:00;C1 0 11-02 12:00" "$(printed)"
idp=$(sq cap.db "SELECT id FROM touch WHERE sop = 'promo' AND step = 0")
ido=$(sq cap.db "SELECT id FROM touch WHERE sop = 'order_care' AND step = 0")
check "caps: promo's touch has the lower id (so only priority can put order_care first)" test "$idp" -lt "$ido"
sendin "$T/sout" --db cap.db --rules cap.rules --now 2026-11-02T12:00:00+08:00 --transport file:cap.out
xstatus "caps 12:00: exit 0 (deferred is not a failure)" 0
eq "caps 12:00: order_care (priority 5) sent first; promo deferred by private 1/day to 12:00 tomorrow" \
	"order_care 0 sent - -;promo 0 deferred cap private 1/day 11-03 12:00" "$(res sop step result reason nb)"
eq "caps 12:00: one message delivered, the rendered care text" "$ido care 小王" "$(recs cap.out touch text)"
eq "caps 12:00: the deferred touch's not_before in the database" "$(ep 2026-11-03T12:00:00+08:00) deferred" \
	"$(sq cap.db "SELECT not_before || ' ' || state FROM touch WHERE id = $idp")"
due --db cap.db --rules cap.rules --now 2026-11-02T15:00:00+08:00
sendin "$T/sout" --db cap.db --rules cap.rules --now 2026-11-02T15:00:00+08:00 --transport file:cap.out
eq "caps 15:00: order_care moments sent (any: 1 of 2 used; private cap does not apply)" "order_care 1 sent" "$(res sop step result)"
due --db cap.db --rules cap.rules --now 2026-11-02T18:00:00+08:00
sendin "$T/sout" --db cap.db --rules cap.rules --now 2026-11-02T18:00:00+08:00 --transport file:cap.out
eq "caps 18:00: promo moments deferred by any 2/day to when the 12:00 touch leaves the window" \
	"promo 1 deferred cap any 2/day 11-03 12:00" "$(res sop step result reason nb)"
snd --db cap.db --rules cap.rules --now 2026-11-03T11:59:00+08:00 --queued --transport file:cap.out
eq "caps 11-03 11:59: --queued: nothing is due yet" "0|" "$XRC|$(cat "$T/xout")"
snd --db cap.db --rules cap.rules --now 2026-11-03T12:00:00+08:00 --queued --transport file:cap.out
eq "caps 11-03 12:00: promo private sent; promo moments deferred again (15:00 and 12:00 in the window)" \
	"promo 0 sent - -;promo 1 deferred cap any 2/day 11-03 15:00" "$(res sop step result reason nb)"
snd --db cap.db --rules cap.rules --now 2026-11-03T15:00:00+08:00 --queued --transport file:cap.out
eq "caps 11-03 15:00: promo moments sent" "promo 1 sent" "$(res sop step result)"
eq "caps: four messages in all, each once, in order" "o_private o_moments p_private p_moments" \
	"$(recs cap.out content | tr ';' ' ')"
eq "caps: all four sent" "C1 order_care 0 sent;C1 order_care 1 sent;C1 promo 0 sent;C1 promo 1 sent" "$(st cap.db)"
eq "caps: never more than 2 in any 24 h, nor 2 private" "0 0" "$(sq cap.db "SELECT
 (SELECT count(*) FROM touch a WHERE (SELECT count(*) FROM touch b WHERE b.pid = a.pid AND b.sent_at > a.sent_at - 86400 AND b.sent_at <= a.sent_at) > 2)
 || ' ' || (SELECT count(*) FROM touch a WHERE a.channel = 'private' AND (SELECT count(*) FROM touch b WHERE b.pid = a.pid AND b.channel = 'private' AND b.sent_at > a.sent_at - 86400 AND b.sent_at <= a.sent_at) > 1)")"

# === converted, out of the window, SOP or content gone =========================
# V1's touches are queued at 12:00 and sent the next morning: V1 ordered
# meanwhile (conv exits), win's 1-day window has ended, the SOP gone was
# removed from the rules: all suppressed, nothing delivered. V2's SOP
# renamed now uses other content, its old content removed: smr-send(1) says
# suppressed too.
cat >sup.rules <<'EOF2'
timezone Asia/Shanghai
tag go when count('view', '30d') > 0
tag buyer when orders >= 1
tag go2 when count('click', '30d') > 0
sop conv
  trigger go
  exit buyer
  step 0d 12:00 private s_hi
  step 2d 12:00 private s_hi
end
sop win
  trigger go
  window 1d
  step 0d 12:00 private s_hi
end
sop gone
  trigger go
  step 0d 12:00 private s_hi
end
sop renamed
  trigger go2
  step 0d 12:00 private old_c
end
sop fine
  trigger go
  step 0d 12:00 private s_hi
end
content s_hi private "hi"
content old_c private "old"
EOF2
python3 -c '
import sys
s = open(sys.argv[1]).read()
a = s.index("sop gone"); b = s.index("end\n", a) + 4
s = s[:a] + s[b:]
s = s.replace("private old_c", "private new_c").replace("content old_c private \"old\"", "content new_c private \"new\"")
open(sys.argv[2], "w").write(s)' sup.rules sup2.rules
{ ev vv view 2026-11-02T09:00:00+08:00 V1; ev vc click 2026-11-02T09:00:00+08:00 V2; } >sup.ndjson
ingest "suppress" sup.db sup.rules sup.ndjson
tag --db sup.db --rules sup.rules --now 2026-11-02T09:05:00+08:00
due --db sup.db --rules sup.rules --now 2026-11-02T12:00:00+08:00
eq "suppress: five touches queued" 5 "$(nrows sup.db touch "state = 'queued'")"
grep '"unionid":"V1"' "$T/sout" >sup-v1.in
grep '"unionid":"V2"' "$T/sout" >sup-v2.in
ev vo order 2026-11-02T12:30:00+08:00 V1 ',"amount":"9.90"' >sup2.ndjson
ingest "suppress order" sup.db sup.rules sup2.ndjson
tag --db sup.db --rules sup.rules --now 2026-11-02T12:35:00+08:00
due --db sup.db --rules sup.rules --now 2026-11-02T12:35:00+08:00
eq "suppress: V1 exited conv on the order" "exited entered buyer" "$(sq sup.db "SELECT state || ' ' || exit_reason FROM enrollment WHERE sop = 'conv'")"
sendin sup-v1.in --db sup.db --rules sup2.rules --now 2026-11-03T10:00:00+08:00 --transport file:sup.out
eq "suppress: exit 0; converted, out of the window, SOP gone suppressed; fine sent (smr-send does not judge lateness)" \
	"0|conv suppressed enrollment exited (entered buyer);fine sent -;gone suppressed sop gone is no longer in the rules;win suppressed outside the SOP window" \
	"$XRC|$(res sop result reason | tr ';' '\n' | sort | paste -sd';')"
eq "suppress: only fine's message delivered" "fine" "$(recs sup.out sop)"
sendin sup-v2.in --db sup.db --rules sup2.rules --now 2026-11-03T10:00:00+08:00 --transport file:sup.out
eq "suppress: content removed from the rules: suppressed as smr-send(1) documents, exit 0, nothing delivered" \
	"0|renamed suppressed content old_c is no longer in the rules|1" "$XRC|$(res sop result reason)|$(lines sup.out)"

# === quiet hours across midnight (22:00-08:00) ================================
# night: 21:30 (before quiet), 23:00 (deferred to 08:00 the next day), day 1
# 00:30 (deferred to 08:00 the same morning). short: a 14h window ending at
# 23:05: its 23:00 step would move past the window, so it is suppressed.
# capq: group 1/2h defers 21:00 to 22:30, inside quiet hours: to 08:00.
cat >quiet.rules <<'EOF2'
timezone Asia/Shanghai
tag go when count('view', '30d') > 0
sop night
  trigger go
  step 0d 21:30 private early
  step 0d 23:00 private late
  step 1d 00:30 moments small_hours
end
sop short
  trigger go
  window 14h
  step 0d 23:00 moments late_short
end
content early private "early"
content late private "late"
content small_hours moments "small hours"
content late_short moments "short"
sop capq
  trigger go
  step 0d 20:30 group g1
  step 0d 21:00 group g2
end
content g1 group "g1"
content g2 group "g2"
policy
  quiet 22:00-08:00
  cap group 1/2h
end
EOF2
ev q1 view 2026-11-02T09:00:00+08:00 Q1 >quiet.ndjson
ingest "quiet" q.db quiet.rules quiet.ndjson
tag --db q.db --rules quiet.rules --now 2026-11-02T09:05:00+08:00
for now in 2026-11-02T20:30:00+08:00 2026-11-02T21:00:00+08:00 2026-11-02T21:30:00+08:00 2026-11-02T23:00:00+08:00 2026-11-03T00:30:00+08:00; do
	due --db q.db --rules quiet.rules --now $now
	sendin "$T/sout" --db q.db --rules quiet.rules --now $now --transport file:q.out
	case $now in
	*T20:30*) want="capq 0 sent - -" ;;
	*T21:00*) want="capq 1 deferred cap group 1/2h 11-03 08:00" ;;
	*T21:30*) want="night 0 sent - -" ;;
	*T23:00*) want="night 1 deferred quiet hours 11-03 08:00;short 0 suppressed quiet hours; the next allowed time is outside the SOP window -" ;;
	*) want="night 2 deferred quiet hours 11-03 08:00" ;;
	esac
	eq "quiet $now: $want" "$want" "$(res sop step result reason nb)"
done
eq "quiet: 23:00 deferred to 08:00 the next day, in the database" "$(ep 2026-11-03T08:00:00+08:00)" \
	"$(sq q.db "SELECT not_before FROM touch WHERE sop = 'night' AND step = 1 AND state = 'deferred'")"
eq "quiet: only the 20:30 and 21:30 messages went out before 08:00" "g1;early" "$(recs q.out content)"
snd --db q.db --rules quiet.rules --now 2026-11-03T07:59:00+08:00 --queued --transport file:q.out
eq "quiet 07:59: --queued sends nothing, prints nothing" "0|" "$XRC|$(cat "$T/xout")"
snd --db q.db --rules quiet.rules --now 2026-11-03T08:05:00+08:00 --queued --transport file:q.out
xstatus "quiet 08:05: --queued exits 0" 0
eq "quiet 08:05: the three deferred touches sent" "capq 1 sent;night 1 sent;night 2 sent" "$(res sop step result | tr ';' '\n' | sort | paste -sd';')"
eq "quiet: messages each once; the suppressed one never" "early g1 g2 late small_hours" "$(recs q.out content | tr ';' '\n' | sort | paste -sd' ')"
eq "quiet: sent_at is the 08:05 run; the suppressed touch stays suppressed" \
	"late $(ep 2026-11-03T08:05:00+08:00);late_short -;small_hours $(ep 2026-11-03T08:05:00+08:00)" \
	"$(sq q.db "SELECT group_concat(content || ' ' || coalesce(sent_at, '-'), ';') FROM (SELECT * FROM touch WHERE sop <> 'capq' AND content <> 'early' ORDER BY content)")"

# === do not disturb ==========================================================
# D1 is unsubscribed before the touch is queued, D2 complains after it is
# queued but before it is sent; D3 holds neither; D4 holds a tag not listed.
cat >dnd.rules <<'EOF2'
timezone Asia/Shanghai
tag go when count('view', '30d') > 0
sop hello
  trigger go
  step 0d 12:00 private hello
end
content hello private "hello"
policy
  dnd tag unsubscribed complained
end
EOF2
for u in D1 D2 D3 D4; do ev "$u" view 2026-11-02T09:00:00+08:00 "$u"; done >dnd.ndjson
ingest "dnd" dnd.db dnd.rules dnd.ndjson
tag --db dnd.db --rules dnd.rules --now 2026-11-02T09:05:00+08:00
printf '%s\n' '{"unionid":"D1","tag":"unsubscribed"}' '{"unionid":"D4","tag":"vip"}' >dnd1.set
tagin dnd1.set --db dnd.db --rules dnd.rules --now 2026-11-02T10:00:00+08:00 --set
due --db dnd.db --rules dnd.rules --now 2026-11-02T12:00:00+08:00
eq "dnd: all four queued (smr-sop-due does not apply the policy)" "D1 0 11-02 12:00;D2 0 11-02 12:00;D3 0 11-02 12:00;D4 0 11-02 12:00" "$(printed)"
echo '{"unionid":"D2","tag":"complained"}' >dnd2.set
tagin dnd2.set --db dnd.db --rules dnd.rules --now 2026-11-02T11:00:00+08:00 --set
sendin "$T/sout" --db dnd.db --rules dnd.rules --now 2026-11-02T12:00:00+08:00 --transport file:dnd.out
xstatus "dnd: exit 0" 0
eq "dnd: D1 and D2 suppressed naming the tag, D3 and D4 sent" \
	"D1 suppressed do not disturb: tag unsubscribed;D2 suppressed do not disturb: tag complained;D3 sent -;D4 sent -" \
	"$(res who result reason | tr ';' '\n' | sort | paste -sd';')"
eq "dnd: only D3 and D4 received a message" "D3;D4" "$(recs dnd.out unionid | tr ';' '\n' | sort | paste -sd';')"
eq "dnd: states recorded" "D1 hello 0 suppressed;D2 hello 0 suppressed;D3 hello 0 sent;D4 hello 0 sent" "$(st dnd.db)"
snd --db dnd.db --rules dnd.rules --now 2026-11-02T13:00:00+08:00 --queued --transport file:dnd.out
eq "dnd: a later --queued run does not revive suppressed touches" "0||2" "$XRC|$(cat "$T/xout")|$(lines dnd.out)"

# === dedup window ============================================================
# dedup 3d. E1 gets content "same" on day 0 from sop a; sop b's "same" on day
# 1 is suppressed, a's other content on day 1 is sent, b's "same" on day 4
# is past the window and sent. E2 enters on day 1: their "same" is sent.
cat >dedup.rules <<'EOF2'
timezone Asia/Shanghai
tag go when count('view', '30d') > 0
sop a
  trigger go
  step 0d 10:00 private same
  step 1d 10:00 private other
end
sop b
  trigger go
  step 1d 11:00 private same
  step 4d 10:00 private same
end
content same private "same text"
content other private "other text"
policy
  dedup 3d
end
EOF2
ev e1 view 2026-11-02T09:00:00+08:00 E1 >dedup1.ndjson
ev e2 view 2026-11-03T09:00:00+08:00 E2 >dedup2.ndjson
ingest "dedup" dd.db dedup.rules dedup1.ndjson
tag --db dd.db --rules dedup.rules --now 2026-11-02T09:05:00+08:00
ingest "dedup E2" dd.db dedup.rules dedup2.ndjson
tag --db dd.db --rules dedup.rules --now 2026-11-03T09:05:00+08:00
for now in 2026-11-02T10:00:00+08:00 2026-11-03T10:00:00+08:00 2026-11-03T11:00:00+08:00 2026-11-04T11:00:00+08:00 \
	2026-11-06T10:00:00+08:00 2026-11-07T10:00:00+08:00; do
	due --db dd.db --rules dedup.rules --now $now
	sendin "$T/sout" --db dd.db --rules dedup.rules --now $now --transport file:dd.out
	case $now in
	2026-11-02*) want="E1 a 0 sent -" ;;
	2026-11-03T10*) want="E1 a 1 sent -;E2 a 0 sent -" ;;
	2026-11-03T11*) want="E1 b 0 suppressed dedup: content same already sent within the dedup window" ;;
	2026-11-04*) want="E2 a 1 sent -;E2 b 0 suppressed dedup: content same already sent within the dedup window" ;;
	2026-11-06*) want="E1 b 1 sent -" ;;
	*) want="E2 b 1 sent -" ;;
	esac
	eq "dedup $now" "$want" "$(res who sop step result reason)"
done
eq "dedup: delivered (who content), each once" "E1 same;E1 other;E2 same;E2 other;E1 same;E2 same" "$(recs dd.out unionid content)"

# === fatigue back-off ========================================================
# fatigue 2 2d: after 2 sent touches with no response, one touch per 2 days.
# F1 never responds (a view is not a response) until a click on day 3; F2
# clicks on day 1.
cat >fat.rules <<'EOF2'
timezone Asia/Shanghai
tag go when count('view', '30d') > 0
sop f
  trigger go
  step 0d 10:00 private m0
  step 1d 10:00 private m1
  step 2d 10:00 private m2
  step 3d 10:00 private m3
  step 4d 10:00 private m4
end
content m0 private "m0"
content m1 private "m1"
content m2 private "m2"
content m3 private "m3"
content m4 private "m4"
policy
  fatigue 2 2d
end
EOF2
for u in F1 F2; do ev "$u" view 2026-11-02T09:00:00+08:00 "$u"; done >fat.ndjson
ingest "fatigue" fat.db fat.rules fat.ndjson
tag --db fat.db --rules fat.rules --now 2026-11-02T09:05:00+08:00
FR="cap any 1/fatigue (fatigue: no response to recent touches)"
for now in 2026-11-02T10:00:00+08:00 2026-11-03T10:00:00+08:00 2026-11-04T10:00:00+08:00 2026-11-05T10:00:00+08:00 \
	2026-11-06T10:00:00+08:00 2026-11-07T10:00:00+08:00; do
	case $now in
	2026-11-04*) # F2 clicks (a response); F1 only views (not one)
		{ ev f2c click 2026-11-03T12:00:00+08:00 F2; ev f1v view 2026-11-03T12:00:00+08:00 F1; } >fc.ndjson
		ingest "fatigue click F2, view F1" fat.db fat.rules fc.ndjson ;;
	2026-11-06*) ev f1c click 2026-11-05T12:00:00+08:00 F1 >fc.ndjson; ingest "fatigue click F1" fat.db fat.rules fc.ndjson ;;
	esac
	due --db fat.db --rules fat.rules --now $now
	snd --db fat.db --rules fat.rules --now $now --queued --transport file:fat.out
	case $now in
	2026-11-02*) want="F1 0 sent - -;F2 0 sent - -" ;;
	2026-11-03*) want="F1 1 sent - -;F2 1 sent - -" ;;
	2026-11-04*) want="F1 2 deferred $FR 11-05 10:00;F2 2 sent - -" ;;
	2026-11-05*) want="F1 2 sent - -;F1 3 deferred $FR 11-07 10:00;F2 3 sent - -" ;;
	2026-11-06*) want="F1 4 sent - -;F2 4 deferred $FR 11-07 10:00" ;;
	*) want="F1 3 sent - -;F2 4 sent - -" ;;
	esac
	eq "fatigue $now" "$want" "$(res who step result reason nb)"
done
eq "fatigue: every step delivered once in the end" "F1 m0;F1 m1;F1 m2;F1 m3;F1 m4;F2 m0;F2 m1;F2 m2;F2 m3;F2 m4" \
	"$(recs fat.out unionid content | tr ';' '\n' | sort | paste -sd';')"

# === templates: fallbacks and a missing variable =============================
cat >tmpl.rules <<'EOF2'
timezone Asia/Shanghai
tag go when count('view', '30d') > 0
sop hi
  trigger go
  step 0d 12:00 private hi
end
sop code
  trigger go
  step 0d 13:00 private code
end
content hi private "{{nickname|亲}}，你看的{{ item }}还在等你 —— {{staff|客服}}"
content code private "{{nickname|亲}} 的券码 {{coupon_code}}"
EOF2
{
	ev r1a friend_add 2026-11-02T08:00:00+08:00 R1 ',"staff":"zhang_san"'
	ev r1b profile 2026-11-02T08:00:00+08:00 R1 ',"props":{"nickname":"小王"}'
	ev r2b profile 2026-11-02T08:00:00+08:00 R2 ',"props":{"city":"杭州"}'
	ev r3b profile 2026-11-02T08:00:00+08:00 R3 ',"props":{"nickname":""}'
	ev r4b profile 2026-11-02T08:00:00+08:00 R4 ',"props":{"nickname":"{{coupon_code}}","coupon_code":"C-42"}'
	for u in R1 R2 R3 R4; do ev "v$u" view 2026-11-02T09:00:00+08:00 "$u" ',"item":"SKU-A"'; done
} >tmpl.ndjson
ingest "templates" tm.db tmpl.rules tmpl.ndjson
tag --db tm.db --rules tmpl.rules --now 2026-11-02T09:05:00+08:00
due --db tm.db --rules tmpl.rules --now 2026-11-02T12:00:00+08:00
sendin "$T/sout" --db tm.db --rules tmpl.rules --now 2026-11-02T12:00:00+08:00 --transport file:tm.out
xstatus "templates 12:00: all rendered, exit 0" 0
eq "templates: nickname, fallbacks for a missing and an empty nickname, item, staff; data is not re-expanded" \
	"R1 小王，你看的SKU-A还在等你 —— zhang_san;R2 亲，你看的SKU-A还在等你 —— 客服;R3 亲，你看的SKU-A还在等你 —— 客服;R4 {{coupon_code}}，你看的SKU-A还在等你 —— 客服" \
	"$(recs tm.out unionid text | tr ';' '\n' | sort | paste -sd';')"
eq "templates: the result records carry the same text" "$(recs tm.out touch text)" "$(res touch text)"
eq "templates: the rendered text is recorded" "小王，你看的SKU-A还在等你 —— zhang_san" \
	"$(sq tm.db "SELECT rendered FROM touch WHERE pid = $(pid_of tm.db R1) AND sop = 'hi'")"
due --db tm.db --rules tmpl.rules --now 2026-11-02T13:00:00+08:00
sendin "$T/sout" --db tm.db --rules tmpl.rules --now 2026-11-02T13:00:00+08:00 --transport file:tm.out
xstatus "templates 13:00: a missing variable fails the touch: exit 1" 1
eq "templates 13:00: R1-R3 failed naming coupon_code; R4 (who has one) sent" \
	'R1 failed missing variable "coupon_code" (no value, no fallback) -;R2 failed missing variable "coupon_code" (no value, no fallback) -;R3 failed missing variable "coupon_code" (no value, no fallback) -;R4 sent - {{coupon_code}} 的券码 C-42' \
	"$(res who result reason text | tr ';' '\n' | sort | paste -sd';')"
grep -F '"content":"code"' tm.out >tm-code.out
eq "templates 13:00: only R4's code message was delivered" "R4" "$(recs tm-code.out unionid)"
check "templates: no delivered message holds a literal {{coupon_code}} placeholder but R4's own data" \
	test "$(grep -c '{{' tm.out)" = 2
eq "templates: failed touches recorded with the reason and no rendered text" \
	'3 failed missing variable "coupon_code" (no value, no fallback) -' \
	"$(sq tm.db "SELECT count(*) || ' ' || state || ' ' || reason || ' ' || coalesce(max(rendered), '-') FROM touch WHERE sop = 'code' AND state = 'failed'")"

# === exec: transport ===========================================================
# One touch each: X1's command exits 3, X2's exits 75 then 0, X3's exits 0,
# X4's command does not exist. X5's nickname is shell syntax, delivered
# through tee (no shell anywhere): it arrives verbatim and runs nothing.
cat >exec.rules <<'EOF2'
timezone Asia/Shanghai
tag go when count('view', '30d') > 0
sop x
  trigger go
  step 0d 12:00 private x_hi
end
content x_hi private "hi {{nickname}}"
EOF2
EVIL='$(touch pwned1); rm -f victim; `touch pwned2` | touch pwned3 && echo "pwned" > pwned4 '"'"'$HOME'"'"' \\ \n'
{
	for u in X1 X2 X3 X4; do ev "p$u" profile 2026-11-02T08:00:00+08:00 "$u" ",\"props\":{\"nickname\":\"小$u\"}"; done
	printf '{"id":"pX5","type":"profile","ts":"2026-11-02T08:00:00+08:00","unionid":"X5","props":{"nickname":%s}}\n' \
		"$(python3 -c 'import json, sys; print(json.dumps(sys.argv[1]))' "$EVIL")"
	for u in X1 X2 X3 X4 X5; do ev "v$u" view 2026-11-02T09:00:00+08:00 "$u"; done
} >exec.ndjson
ingest "exec" ex.db exec.rules exec.ndjson
tag --db ex.db --rules exec.rules --now 2026-11-02T09:05:00+08:00
due --db ex.db --rules exec.rules --now 2026-11-02T12:00:00+08:00
for u in X1 X2 X3 X4 X5; do grep "\"unionid\":\"$u\"" "$T/sout" >"ex-$u.in"; done
tid() { sq "$1" "SELECT id FROM touch WHERE pid = $(pid_of "$1" "$2") ${3:+AND sop = '$3'}"; }
NOW=2026-11-02T12:00:00+08:00
sendin ex-X1.in --db ex.db --rules exec.rules --now $NOW --transport "exec:python3 $RECV $T/x1.log 3"
xstatus "exec exit 3: smr-send exits 1" 1
eq "exec exit 3: failed, the reason names the status" "failed python3 exited 3" "$(res result reason)"
eq "exec exit 3: the command ran once; state failed" "1 failed" "$(lines x1.log) $(sq ex.db "SELECT state FROM touch WHERE id = $(tid ex.db X1)")"
sendin ex-X2.in --db ex.db --rules exec.rules --now $NOW --transport "exec:python3 $RECV $T/x2.log 75"
xstatus "exec exit 75: exit 0 (deferred)" 0
eq "exec exit 75: deferred by ten minutes" "deferred python3 exited 75 (try again later) 11-02 12:10" "$(res result reason nb)"
sendin ex-X3.in --db ex.db --rules exec.rules --now $NOW --transport "exec:python3 $RECV $T/x3.log 0"
xstatus "exec exit 0: exit 0" 0
eq "exec exit 0: sent" "sent hi 小X3" "$(res result text)"
check "exec exit 0: the command's arguments are only its own; stdin is the message JSON (one line)" python3 -c '
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert len(recs) == 1, recs
r = recs[0]
assert r["argv"] == [sys.argv[2], "0"], r["argv"]
assert r["stdin"].endswith("\n") and r["stdin"].count("\n") == 1, r["stdin"]
m = json.loads(r["stdin"])
want = {"touch": int(sys.argv[3]), "idempotency_key": "smr-touch-" + sys.argv[3], "pid": int(sys.argv[4]), "unionid": "X3",
        "channel": "private", "sop": "x", "step": 0, "content": "x_hi", "text": "hi 小X3"}
assert m == want, (m, want)' x3.log "$T/x3.log" "$(tid ex.db X3)" "$(pid_of ex.db X3)"
sendin ex-X4.in --db ex.db --rules exec.rules --now $NOW --transport "exec:$T/no-such-command"
eq "exec: a command that does not exist: failed (127), exit 1" "1 failed" "$XRC $(res result)"
: >victim
sendin ex-X5.in --db ex.db --rules exec.rules --now $NOW --transport "exec:tee -a $T/x5.log"
xstatus "exec no shell: exit 0" 0
eq "exec no shell: the shell syntax is sent verbatim" "hi $EVIL" "$(recs x5.log text)"
grep '"result":' "$T/xout" >x5.res
eq "exec no shell: the result text is verbatim too" "hi $EVIL" "$(recs x5.res text)"
# tee copies the message to its standard output too: that must not land
# among smr-send's result records (one record per touch on stdout).
eq "exec: the command's standard output does not mix into the result records (lines without a result)" 0 \
	"$(grep -vc '"result":' "$T/xout")"
check "exec no shell: nothing ran (no pwned files, victim kept)" test ! -e pwned1 -a ! -e pwned2 -a ! -e pwned3 -a ! -e pwned4 -a -e victim
snd --db ex.db --rules exec.rules --now 2026-11-02T12:09:59+08:00 --queued --transport "exec:python3 $RECV $T/x2.log 0"
eq "exec exit 75: not retried before 12:10" "0||1" "$XRC|$(cat "$T/xout")|$(lines x2.log)"
snd --db ex.db --rules exec.rules --now 2026-11-02T12:10:00+08:00 --queued --transport "exec:python3 $RECV $T/x2.log 0"
eq "exec exit 75: the --queued run at 12:10 sends it (and not the failed ones)" "0|X2 sent hi 小X2" "$XRC|$(res who result text)"
eq "exec exit 75: two attempts in all" 2 "$(lines x2.log)"
eq "exec: final states" "X1 x 0 failed;X2 x 0 sent;X3 x 0 sent;X4 x 0 failed;X5 x 0 sent" "$(st ex.db)"

# === webhook: transport against a local server ===================================
cat >hook.rules <<'EOF2'
timezone Asia/Shanghai
tag go when count('view', '30d') > 0
sop w
  trigger go
  step 0d 12:00 private w_hi
end
content w_hi private "hi {{nickname|亲}}"
EOF2
for u in W1 W2 W3 W4 W5 W6 W7; do ev "v$u" view 2026-11-02T09:00:00+08:00 "$u"; done >hook.ndjson
ingest "webhook" wh.db hook.rules hook.ndjson
tag --db wh.db --rules hook.rules --now 2026-11-02T09:05:00+08:00
due --db wh.db --rules hook.rules --now 2026-11-02T12:00:00+08:00
for u in W1 W2 W3 W4 W5 W6 W7; do grep "\"unionid\":\"$u\"" "$T/sout" >"wh-$u.in"; done
python3 "$HOOK" "$T/hook.port" "$T/hook.log" 120 </dev/null >/dev/null 2>"$T/hook.err" &
HOOK_PID=$!
trap 'kill "$HOOK_PID" 2>/dev/null; rm -rf "$T"' EXIT
for ((i = 0; i < 200; i++)); do [ -s "$T/hook.port" ] && break; sleep 0.05; done
PORT=$(cat "$T/hook.port" 2>/dev/null)
check "webhook: the test server listens on 127.0.0.1 (port ${PORT:-none})" test -n "$PORT"
URL="http://127.0.0.1:$PORT"
export SMR_WEBHOOK_BACKOFF_SCALE=0.02 SMR_WEBHOOK_TIMEOUT_MS=400 SMR_WEBHOOK_CONNECT_MS=400
# hits U: the requests for U's touch as "path key;..." in order
hits() { local id; id=$(tid wh.db "$1"); grep -F "\"key\": \"smr-touch-$id\"" hook.log >"hits.$1" 2>/dev/null; recs "hits.$1" path key; }
whk() { local id; id=$(tid wh.db "$1"); printf "smr-touch-%s" "$id"; }
sendin wh-W1.in --db wh.db --rules hook.rules --now $NOW --transport "webhook:$URL/ok"
eq "webhook 200: sent, exit 0" "0 sent" "$XRC $(res result)"
eq "webhook 200: one request with Idempotency-Key smr-touch-<id>" "/ok $(whk W1)" "$(hits W1)"
check "webhook 200: the body is the message JSON, sent as application/json" python3 -c '
import json, sys
r = [json.loads(l) for l in open(sys.argv[1])][0]
m = json.loads(r["body"])
assert r["ctype"] == "application/json", r
assert m["touch"] == int(sys.argv[2]) and m["idempotency_key"] == r["key"] and m["text"] == "hi 亲" and m["unionid"] == "W1", m' hits.W1 "$(tid wh.db W1)"
sendin wh-W2.in --db wh.db --rules hook.rules --now $NOW --transport "webhook:$URL/flaky"
eq "webhook 429 then 200: sent, exit 0" "0 sent" "$XRC $(res result)"
eq "webhook 429 then 200: two requests, the same key" "/flaky $(whk W2);/flaky $(whk W2)" "$(hits W2)"
sendin wh-W3.in --db wh.db --rules hook.rules --now $NOW --transport "webhook:$URL/down"
eq "webhook 500 always: deferred ten minutes, exit 0" "0 deferred webhook: HTTP 500 11-02 12:10" "$XRC $(res result reason nb)"
eq "webhook 500 always: four tries, the same key" "/down $(whk W3) x4" "$(hits W3 | tr ';' '\n' | sort | uniq -c | awk '{print $2, $3, "x" $1}')"
sendin wh-W4.in --db wh.db --rules hook.rules --now $NOW --transport "webhook:$URL/bad"
eq "webhook 400: failed at once, exit 1" "1 failed webhook: HTTP 400" "$XRC $(res result reason)"
eq "webhook 400: one request only" "/bad $(whk W4)" "$(hits W4)"
t0=$(date +%s%N)
sendin wh-W5.in --db wh.db --rules hook.rules --now $NOW --transport "webhook:$URL/hang"
el=$((($(date +%s%N) - t0) / 1000000))
eq "webhook hang: deferred after timeouts, exit 0" "0 deferred 11-02 12:10" "$XRC $(res result nb)"
check "webhook hang: the reason is a timeout ($(res reason))" has_line "$T/xout" '"reason":"webhook: [^"]*[Tt]ime'
eq "webhook hang: four tries" 4 "$(hits W5 | tr ';' '\n' | grep -c /hang)"
check "webhook hang: the timeouts bound the run (${el} ms for 4 x 400 ms)" test "$el" -lt 8000
eq "webhook: states" "W1 w 0 sent;W2 w 0 sent;W3 w 0 deferred;W4 w 0 failed;W5 w 0 deferred" "$(st wh.db "sop = 'w' AND pid IN ($(pid_of wh.db W1), $(pid_of wh.db W2), $(pid_of wh.db W3), $(pid_of wh.db W4), $(pid_of wh.db W5))")"
# kill -9 while the webhook request is in flight: the next run finds the
# claimed touch and, the receiver deduplicating by key, sends it again with
# the same Idempotency-Key (no unknown reported).
SMR_WEBHOOK_TIMEOUT_MS=20000 "$SEND" --db wh.db --rules hook.rules --now $NOW --transport "webhook:$URL/hang-once" \
	<wh-W6.in >w6.out 2>w6.err &
kpid=$!
for ((i = 0; i < 200; i++)); do grep -qF "\"key\": \"$(whk W6)\"" hook.log 2>/dev/null && break; sleep 0.05; done
kill -9 $kpid 2>/dev/null
{ wait $kpid; } 2>/dev/null
eq "webhook kill -9: smr-send died of SIGKILL while the request hung" 137 "$?"
eq "webhook kill -9: the touch is left claimed, nothing printed" "claimed|" "$(sq wh.db "SELECT state FROM touch WHERE id = $(tid wh.db W6)")|$(cat w6.out)"
sendin wh-W6.in --db wh.db --rules hook.rules --now $NOW --transport "webhook:$URL/hang-once"
eq "webhook kill -9: the re-run re-queues and sends it: exit 0, no unknown" "0 W6 sent" "$XRC $(res who result)"
eq "webhook kill -9: two requests in all, both with the touch's key" "/hang-once $(whk W6);/hang-once $(whk W6)" "$(hits W6)"
# The deferred touches go out on a later --queued run with the same key.
snd --db wh.db --rules hook.rules --now 2026-11-02T12:10:00+08:00 --queued --transport "webhook:$URL/ok"
eq "webhook: the 12:10 --queued run sends the deferred W3 and W5 (and W7, still queued)" "W3 sent;W5 sent;W7 sent" \
	"$(res who result | tr ';' '\n' | sort | paste -sd';')"
eq "webhook: W3's retry carries the same Idempotency-Key" "/ok $(whk W3)" "$(hits W3 | tr ';' '\n' | tail -1)"

eq "webhook: every touch sent once in the end but W4 (refused)" "W1 w 0 sent;W2 w 0 sent;W3 w 0 sent;W4 w 0 failed;W5 w 0 sent;W6 w 0 sent;W7 w 0 sent" "$(st wh.db)"
kill "$HOOK_PID" 2>/dev/null
wait "$HOOK_PID" 2>/dev/null
unset SMR_WEBHOOK_BACKOFF_SCALE SMR_WEBHOOK_TIMEOUT_MS SMR_WEBHOOK_CONNECT_MS

# === kill -9 mid-send, then a re-run ==========================================
# K1..K5 two touches each at 12:00 (k, priority 1, then k2), cap any 1/day.
# The first run's command sleeps: smr-send is killed while it waits on K1's
# k. Then K4's k is set claimed by another host 30 minutes ago (still at
# work there), K5's two hours ago (given up). Unknown and claimed touches
# count against the cap: the message may have gone out.
cat >kill.rules <<'EOF2'
timezone Asia/Shanghai
tag go when count('view', '30d') > 0
sop k
  trigger go
  priority 1
  step 0d 12:00 private k_hi
end
sop k2
  trigger go
  step 0d 12:00 moments k_look
end
content k_hi private "hi"
content k_look moments "look"
policy
  cap any 1/day
end
EOF2
for u in K1 K2 K3 K4 K5; do ev "v$u" view 2026-11-02T09:00:00+08:00 "$u"; done >kill.ndjson
ingest "kill" k.db kill.rules kill.ndjson
tag --db k.db --rules kill.rules --now 2026-11-02T09:05:00+08:00
due --db k.db --rules kill.rules --now 2026-11-02T12:00:00+08:00
"$SEND" --db k.db --rules kill.rules --now $NOW --queued --transport "exec:python3 $RECV $T/k1.log 0 30 $T/k1.pid" </dev/null >k1.out 2>k1.err &
kpid=$!
for ((i = 0; i < 200; i++)); do [ -s k1.pid ] && break; sleep 0.05; done
kill -9 $kpid 2>/dev/null
{ wait $kpid; } 2>/dev/null
eq "kill -9: smr-send died of SIGKILL while its command ran" 137 "$?"
[ -s k1.pid ] && kill "$(cat k1.pid)" 2>/dev/null
eq "kill -9: K1's k message reached the command; it is claimed, the rest queued; nothing printed" \
	"1 $(tid k.db K1 k)|K1 k 0 claimed;K1 k2 0 queued;K2 k 0 queued;K2 k2 0 queued;K3 k 0 queued;K3 k2 0 queued;K4 k 0 queued;K4 k2 0 queued;K5 k 0 queued;K5 k2 0 queued|" \
	"$(lines k1.log) $(recs k1.log stdin | python3 -c 'import json, sys; print(json.loads(sys.stdin.read())["touch"])' 2>&1)|$(st k.db)|$(cat k1.out)"
N12=$(ep $NOW)
check "setup: touches claimed by another host" sq k.db "UPDATE touch SET state = 'claimed', claimed_by = 'other-host.example:4242', claimed_at = $((N12 - 1800)) WHERE id = $(tid k.db K4 k);
UPDATE touch SET state = 'claimed', claimed_by = 'other-host.example:4242', claimed_at = $((N12 - 7200)) WHERE id = $(tid k.db K5 k)"
snd --db k.db --rules kill.rules --now $NOW --queued --transport "exec:python3 $RECV $T/k2.log 0"
xstatus "kill -9 re-run: exit 1 (unknown touches)" 1
eq "kill -9 re-run: K1 and K5 unknown, K2 and K3 sent, K4's left to its host; every k2 deferred by the cap counting them" \
	"K1 k unknown -;K1 k2 deferred 11-03 12:00;K2 k sent -;K2 k2 deferred 11-03 12:00;K3 k sent -;K3 k2 deferred 11-03 12:00;K4 k2 deferred 11-03 11:30;K5 k unknown -;K5 k2 deferred 11-03 10:00" \
	"$(res who sop result nb | tr ';' '\n' | sort | paste -sd';')"
eq "kill -9 re-run: the unknown records say why and that they were not resent" \
	"claimed by a sender that died before recording the outcome; not resent" "$(grep '"result":"unknown"' "$T/xout" | sed 's/.*"reason":"\([^"]*\)".*/\1/' | sort -u)"
eq "kill -9 re-run: states" "K1 k 0 unknown;K1 k2 0 deferred;K2 k 0 sent;K2 k2 0 deferred;K3 k 0 sent;K3 k2 0 deferred;K4 k 0 claimed;K4 k2 0 deferred;K5 k 0 unknown;K5 k2 0 deferred" "$(st k.db)"
cat k1.log k2.log >k-all.log
eq "kill -9: the command got K1's, K2's and K3's k once each, nothing else" \
	"$(tid k.db K1 k) 1;$(tid k.db K2 k) 1;$(tid k.db K3 k) 1" \
	"$(python3 -c '
import json, sys
from collections import Counter
c = Counter(json.loads(json.loads(l)["stdin"])["touch"] for l in open(sys.argv[1]))
print(";".join("%d %d" % (k, c[k]) for k in sorted(c)))' k-all.log)"
snd --db k.db --rules kill.rules --now 2026-11-02T12:20:00+08:00 --queued --transport "exec:python3 $RECV $T/k2.log 0"
eq "kill -9: a third run sends and reports nothing (unknown is final; K4's claim within the hour)" "0||2" "$XRC|$(cat "$T/xout")|$(lines k2.log)"
snd --db k.db --rules kill.rules --now 2026-11-02T13:31:00+08:00 --queued --transport "exec:python3 $RECV $T/k2.log 0"
eq "kill -9: over an hour after another host's claim: K4's reported unknown, not resent" "1|K4 k unknown|2" "$XRC|$(res who sop result)|$(lines k2.log)"
snd --db k.db --rules kill.rules --now 2026-11-03T13:00:00+08:00 --queued --limit 2 --transport "exec:python3 $RECV $T/k2.log 0"
eq "--limit 2: the first two deferred touches (by person) sent, no more" "0|K1 k2 sent;K2 k2 sent|4" "$XRC|$(res who sop result)|$(lines k2.log)"
snd --db k.db --rules kill.rules --now 2026-11-03T13:00:00+08:00 --queued --transport "exec:python3 $RECV $T/k2.log 0"
eq "after --limit: the rest (the unknown and the other host's claims have left the day window)" "0|K3 k2 sent;K4 k2 sent;K5 k2 sent|7" "$XRC|$(res who sop result)|$(lines k2.log)"

# === two senders at once on the same queue =====================================
# 150 persons, two SOPs with a step at 20:00 each, cap any 1/day: two
# smr-send --queued runs together must deliver each touch at most once and
# one per person.
cat >conc.rules <<'EOF2'
timezone Asia/Shanghai
tag go when count('view', '30d') > 0
sop c1
  trigger go
  step 0d 20:00 private c_private
end
sop c2
  trigger go
  step 0d 20:00 moments c_moments
end
content c_private private "hi {{nickname|亲}}"
content c_moments moments "look"
policy
  cap any 1/day
end
EOF2
for i in $(seq 100 249); do ev "v$i" view 2026-11-02T09:00:00+08:00 "P$i"; done >conc.ndjson
ingest "concurrent" cc.db conc.rules conc.ndjson
tag --db cc.db --rules conc.rules --now 2026-11-02T09:05:00+08:00
due --db cc.db --rules conc.rules --now 2026-11-02T20:00:00+08:00
eq "concurrent: 300 touches queued" 300 "$(nrows cc.db touch "state = 'queued'")"
dbcopy cc.db dry.db
NOW=2026-11-02T20:00:00+08:00
"$SEND" --db cc.db --rules conc.rules --now $NOW --queued --stats --transport file:cc.out </dev/null >cc1.out 2>cc1.err &
j1=$!
"$SEND" --db cc.db --rules conc.rules --now $NOW --queued --stats --transport file:cc.out </dev/null >cc2.out 2>cc2.err &
j2=$!
wait $j1
r1=$?
wait $j2
r2=$?
no_sanitizer "concurrent smr-send" cc1.err cc2.err
eq "concurrent: both exit 0" "0 0" "$r1 $r2"
eq "concurrent: 150 messages delivered, 150 distinct touches, 150 distinct persons" "150 150 150" \
	"$(lines cc.out) $(recs cc.out touch | tr ';' '\n' | sort -u | wc -l | tr -d ' ') $(recs cc.out pid | tr ';' '\n' | sort -u | wc -l | tr -d ' ')"
cat cc1.out cc2.out >cc-both.out
eq "concurrent: 300 results printed in all, each touch once" "300 300" \
	"$(lines cc-both.out) $(recs cc-both.out touch | tr ';' '\n' | sort -u | wc -l | tr -d ' ')"
eq "concurrent: 150 sent and 150 deferred by the cap, as recorded and as printed" "deferred 150;sent 150|deferred 150;sent 150" \
	"$(sq cc.db "SELECT group_concat(x, ';') FROM (SELECT state || ' ' || count(*) AS x FROM touch GROUP BY state ORDER BY state)")|$(recs cc-both.out result | tr ';' '\n' | sort | uniq -c | awk '{print $2, $1}' | paste -sd';')"
check "concurrent: each delivered touch is the one recorded as sent" test \
	"$(recs cc.out touch | tr ';' '\n' | sort -n | paste -sd' ')" = "$(sq cc.db "SELECT group_concat(id, ' ') FROM (SELECT id FROM touch WHERE state = 'sent' ORDER BY id)")"
# How the two overlapped depends on timing; say so, without judging.
echo "# concurrent: $(sed -n 's/^smr-send: //p' cc1.err) / $(sed -n 's/^smr-send: //p' cc2.err)"

# === --dry-run ===================================================================
# On the copy taken before the concurrent run (300 queued touches, 2 per
# person, cap any 1/day): results printed, nothing changed or delivered.
dump0=$(sq dry.db .dump)
snd --db dry.db --rules conc.rules --now $NOW --queued --dry-run --transport file:dry.out
xstatus "dry-run: exit 0" 0
check "dry-run: the database is unchanged (.dump before and after)" test "$dump0" = "$(sq dry.db .dump)"
eq "dry-run: nothing delivered" 0 "$(lines dry.out)"
check "dry-run: the file: transport's file is not even created" test ! -e dry.out
eq "dry-run: 300 results, each marked dry_run" "300 true" "$(lines "$T/xout") $(res dry_run | tr ';' '\n' | sort -u | paste -sd' ')"
check "dry-run: sent results carry the text that would be sent" has_line "$T/xout" '"result":"sent".*"text":"hi 亲"'
cp "$T/xout" dry-results.out
snd --db dry.db --rules conc.rules --now $NOW --queued --dry-run
eq "dry-run: --transport is not needed; the same results again" "0 same" "$XRC $(cmp -s dry-results.out "$T/xout" && echo same || echo differ)"
snd --db dry.db --rules conc.rules --now $NOW --queued --dry-run --transport "exec:python3 $RECV $T/dry-exec.log 0"
eq "dry-run: an exec: command never runs" 0 "$(lines dry-exec.log)"
check "dry-run: the database is still unchanged" test "$dump0" = "$(sq dry.db .dump)"
# A dry run predicts the real run: the same result for every touch.
snd --db dry.db --rules conc.rules --now $NOW --queued --transport file:dry-real.out
counts() { tr ';' '\n' | sort | uniq -c | awk '{print $2, $1}' | paste -sd' '; }
eq "dry-run: predicts the real run: result counts (cap any 1/day binds within the batch)" \
	"$(res result | counts)" "$(recs dry-results.out result | counts)"
res touch result | tr ';' '\n' >real.tr
recs dry-results.out touch result | tr ';' '\n' >dry.tr
eq "dry-run: predicts the real run touch by touch (touches whose result differs)" 0 "$(diff real.tr dry.tr | grep -c '^<')"

# === usage errors and rejected input ===========================================
dump0=$(sq k.db .dump)
for a in "" "--transport bogus:x" "--transport exec:" "--transport webhook:ftp://127.0.0.1/" "--transport file:" "--limit 0" "--frob" "extra"; do
	# shellcheck disable=SC2086
	snd --db k.db --rules kill.rules --now 2026-11-02T20:00:00+08:00 --queued $a
	if [ "$XRC" = 2 ] && [ ! -s "$T/xout" ] && grep -qE '^(usage: smr-send|smr-send: )' "$T/xerr"; then
		ok "usage: '${a:-no --transport}' exits 2 with a message, prints nothing"
	else
		fail "usage: '${a:-no --transport}' exits 2 with a message, prints nothing" "status $XRC, stdout '$(head -c 100 "$T/xout")', stderr: $(head -2 "$T/xerr")"
	fi
done
check "usage: errors leave the database unchanged" test "$dump0" = "$(sq k.db .dump)"
check "usage: --transport without a transport names it" grep -q -- '--transport' "$T/xerr"
# SMR_TRANSPORT stands in for --transport; a bad line is rejected, the rest sent.
ev ka view 2026-11-02T19:00:00+08:00 K6 >k6.ndjson
ingest "usage K6" k.db kill.rules k6.ndjson
tag --db k.db --rules kill.rules --now 2026-11-02T19:05:00+08:00
cat >k6.rules <<'EOF2'
timezone Asia/Shanghai
tag go when count('view', '30d') > 0
sop k
  trigger go
  step 0d 20:00 private k_hi
end
content k_hi private "hi"
EOF2
due --db k.db --rules k6.rules --now 2026-11-02T20:00:00+08:00
{ echo 'not json'; echo '{"pid":1}'; cat "$T/sout"; } >k6.in
SMR_TRANSPORT="file:$T/k6.out" sendin k6.in --db k.db --rules k6.rules --now 2026-11-02T20:00:00+08:00
eq "input: two bad lines rejected (exit 1), named on stderr by line; the touch sent through \$SMR_TRANSPORT" "1|1 2|K6 sent|1" \
	"$XRC|$(sed -n 's/^smr-send: <stdin>:\([0-9]*\): .*/\1/p' "$T/xerr" | paste -sd' ')|$(res who result)|$(lines k6.out)"

finish
