#!/usr/bin/env bash
# smr-tag on a generated shop (scripts/gen-events, examples/shop.rules):
# day-by-day incremental runs agree with --full at every step and with a
# fresh database tagged once; idempotence; a changed rules file triggers a
# full run and a deleted rule's tags are removed; concurrent runs make each
# change once.
. "$(dirname "$0")/../lib.sh"
. "$FIXTURES/tag/helpers.sh"
REPO=$(cd "$TESTS_DIR/.." && pwd)
GEN="$REPO/scripts/gen-events"
SHOP="$REPO/examples/shop.rules"
cp "$SHOP" shop.rules

python3 "$GEN" --persons 300 --events 4000 --days 20 --end 2026-11-20 -o gen.ndjson || fail "gen-events runs" "status $?"
# Split by local (+08:00) date, keeping the file order within each day.
python3 - gen.ndjson <<'EOF' >days.txt
import datetime, json, sys
tz = datetime.timezone(datetime.timedelta(hours=8))
out = {}
for line in open(sys.argv[1], encoding="utf-8"):
    ts = json.loads(line)["ts"]
    if isinstance(ts, str) and not ts.isdigit():
        t = datetime.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    else:
        t = datetime.datetime.fromtimestamp(int(ts), datetime.timezone.utc)
    day = t.astimezone(tz).date().isoformat()
    out.setdefault(day, []).append(line)
for day in sorted(out):
    with open("day-%s.ndjson" % day, "w", encoding="utf-8") as f:
        f.writelines(out[day])
    print(day)
EOF
eq "the generated events span 20 local days" 20 "$(wc -l <days.txt)"

PURCHASE="never_bought engaged first_purchase repeat_buyer"
TIER="tier_basic tier_silver tier_gold tier_black tier_diamond"
ladder_bad() { # DB: persons holding two rungs of a ladder
	sq "$1" "SELECT count(*) FROM (SELECT pid FROM tag WHERE tag IN ('never_bought','engaged','first_purchase','repeat_buyer') GROUP BY pid HAVING count(*) > 1
	  UNION ALL SELECT pid FROM tag WHERE tag IN ('tier_basic','tier_silver','tier_gold','tier_black','tier_diamond') GROUP BY pid HAVING count(*) > 1)"
}
# agree DB NOW: "" if a --full run on a copy at NOW changes nothing
agree() {
	rm -f full.db
	sq "$1" "VACUUM INTO 'full.db'"
	"$TAG" --db full.db --rules shop.rules --now "$2" --full >full.out 2>full.err || echo "status $? $(head -c 200 full.err)"
	no_sanitizer "--full copy at $2" full.err
	[ -s full.out ] && echo "$2: $(head -c 300 full.out)"
	return 0
}

# --- day by day ---------------------------------------------------------------
disagree="" modes="" twice=0 rungs=0 ingfail=0 tagfail=0 changes_total=0
n=0
while read -r day; do
	n=$((n + 1))
	run --db inc.db --rules shop.rules "day-$day.ndjson"
	[ "$RC" = 0 ] || ingfail=$((ingfail + 1))
	tag --db inc.db --rules shop.rules --now "${day}T23:59:59+08:00" --stats
	[ "$TRC" = 0 ] || tagfail=$((tagfail + 1))
	changes_total=$((changes_total + $(wc -l <"$T/tout")))
	read -r _ mode _ _ <<<"$(tstats)"
	modes="$modes $mode"
	rungs=$((rungs + $(ladder_bad inc.db)))
	disagree="$disagree$(agree inc.db "${day}T23:59:59+08:00")"
done <days.txt
eq "day by day: every smr-ingest and smr-tag run exits 0" "0 0" "$ingfail $tagfail"
eq "day by day: the first run is full (no rules hash yet), the other 19 incremental" \
	" full$(printf ' incremental%.0s' $(seq 19))" "$modes"
check "day by day: the runs made changes ($changes_total)" test "$changes_total" -gt 300
eq "day by day: --full on a copy after each day's incremental run changes nothing" "" "$disagree"
eq "day by day: no person ever holds two rungs of the purchase or tier ladder" 0 "$rungs"
eq "day by day: every person holds exactly one purchase rung" 0 \
	"$(sq inc.db "SELECT count(*) FROM person WHERE (SELECT count(*) FROM tag t WHERE t.pid = person.pid AND tag IN ('never_bought','engaged','first_purchase','repeat_buyer')) <> 1")"
eq "day by day: every tag belongs to an existing person" 0 "$(sq inc.db "SELECT count(*) FROM tag WHERE pid NOT IN (SELECT pid FROM person)")"

# --- time passes without events -------------------------------------------------
disagree="" modes="" moved=0
for now in 2026-11-20T12:00:00+08:00 2026-11-22T23:59:59+08:00 2026-11-27T00:00:00+08:00 \
	2026-12-01T00:00:00+08:00 2026-12-20T23:59:59+08:00 2027-02-20T00:00:00+08:00; do
	tag --db inc.db --rules shop.rules --now "$now" --stats
	read -r _ mode _ _ <<<"$(tstats)"
	modes="$modes $mode"
	moved=$((moved + $(wc -l <"$T/tout")))
	rungs=$((rungs + $(ladder_bad inc.db)))
	disagree="$disagree$(agree inc.db "$now")"
done
FINAL=2027-02-20T00:00:00+08:00
eq "time passing: every run is incremental" " incremental incremental incremental incremental incremental incremental" "$modes"
check "time passing: windows closed and tags moved without events ($moved changes)" test "$moved" -gt 50
eq "time passing: --full on a copy after each incremental run changes nothing" "" "$disagree"
eq "time passing: no person holds two rungs of a ladder" 0 "$rungs"

# --- a fresh database tagged once agrees --------------------------------------------
run --db all.db --rules shop.rules $(sed 's/.*/day-&.ndjson/' days.txt)
status "setup: every day ingested into a fresh database" 0
tag --db all.db --rules shop.rules --now "$FINAL" --full
tstatus "fresh database: --full run exits 0" 0
key="(SELECT min(kind || '=' || value) FROM identity i WHERE i.pid = t.pid)"
q="SELECT $key || ' ' || tag || ' ' || source FROM tag t ORDER BY 1"
sq inc.db "$q" >inc.tags
sq all.db "$q" >all.tags
check "fresh database: a non-trivial tag table ($(wc -l <all.tags) tags)" test "$(wc -l <all.tags)" -gt 300
eq "fresh database: incremental history and one --full give the same tags (by identity)" "" "$(diff inc.tags all.tags | head -5)"
eq "fresh database: the same (pid, tag) rows too" "" \
	"$(diff <(sq inc.db "SELECT pid, tag FROM tag ORDER BY 1, 2") <(sq all.db "SELECT pid, tag FROM tag ORDER BY 1, 2") | head -5)"

# --- idempotence --------------------------------------------------------------------
logn=$(sq inc.db "SELECT count(*) || ':' || max(seq) FROM tag_log")
tag --db inc.db --rules shop.rules --now "$FINAL"
eq "idempotence: same data, same --now: nothing printed" "" "$(cat "$T/tout")"
eq "idempotence: tag_log unchanged" "$logn" "$(sq inc.db "SELECT count(*) || ':' || max(seq) FROM tag_log")"

# --- the rules file changes ------------------------------------------------------------
NP=$(sq inc.db "SELECT count(*) FROM person")
echo "tag big_spender when spend >= 100000" >>shop.rules
tag --db inc.db --rules shop.rules --now "$FINAL" --stats
read -r n mode added removed <<<"$(tstats)"
eq "new rule: the changed file makes the run full, over all $NP persons" "$NP full" "$n $mode"
want=$(sq inc.db "SELECT count(*) FROM person WHERE spend >= 100000")
check "new rule: some persons qualify ($want)" test "$want" -gt 0
eq "new rule: exactly those persons enter big_spender, nothing else changes" "$want $want 0 big_spender add" \
	"$(wc -l <"$T/tout") $added $removed $(changes | tr ';' '\n' | cut -d' ' -f2,3 | sort -u | tr '\n' ' ' | sed 's/ $//')"
eq "new rule: the holders are the persons with spend >= 100000" "" \
	"$(sq inc.db "SELECT pid FROM tag WHERE tag = 'big_spender' EXCEPT SELECT pid FROM person WHERE spend >= 100000")"
tag --db inc.db --rules shop.rules --now "$FINAL" --stats
eq "new rule: the next run is incremental again" "incremental" "$(tstats | cut -d' ' -f2)"

sed -i 's/^tag big_spender when spend >= 100000$/tag big_spender when spend >= 50000/' shop.rules
tag --db inc.db --rules shop.rules --now "$FINAL" --stats
want2=$(sq inc.db "SELECT count(*) FROM person WHERE spend >= 50000 AND spend < 100000")
eq "changed condition, same name: full run, the persons from 50000 to 100000 fen enter" "$NP full $want2 0" "$(tstats)"
check "changed condition: someone new qualifies ($want2)" test "$want2" -gt 0

echo "# a comment changes no rule" >>shop.rules
tag --db inc.db --rules shop.rules --now "$FINAL" --stats
eq "comment-only change: still incremental, nothing printed" "incremental|" "$(tstats | cut -d' ' -f2)|$(cat "$T/tout")"

# delete the churned rule; one person also holds churned by hand
held=$(sq inc.db "SELECT count(*) FROM tag WHERE tag = 'churned'")
check "delete rule: churned has holders at $FINAL ($held)" test "$held" -gt 1
mp=$(sq inc.db "SELECT min(pid) FROM tag WHERE tag = 'churned'")
echo "{\"pid\":$mp,\"tag\":\"churned\"}" >set.ndjson
tagin set.ndjson --db inc.db --rules shop.rules --now "$FINAL" --set
grep -v '^tag churned ' shop.rules >shop.tmp && mv shop.tmp shop.rules
tag --db inc.db --rules shop.rules --now "$FINAL" --stats
read -r n mode added removed <<<"$(tstats)"
eq "delete rule: full run, only removals" "$NP full 0 $((held - 1))" "$n $mode $added $removed"
eq "delete rule: every record is 'churned remove' with rule 'removed from rules'" "churned remove removed from rules" \
	"$(python3 -c 'import json,sys; print("|".join(sorted({"%s %s %s" % (o["tag"], o["op"], o["rule"]) for o in map(json.loads, open(sys.argv[1]))})))' "$T/tout")"
eq "delete rule: tag_log detail 'removed from rules' for each" "$((held - 1))" \
	"$(sq inc.db "SELECT count(*) FROM tag_log WHERE tag = 'churned' AND op = 'remove' AND source = 'rule' AND detail = 'removed from rules'")"
eq "delete rule: only the manual churned tag is left" "$mp manual" "$(sq inc.db "SELECT group_concat(pid || ' ' || source) FROM tag WHERE tag = 'churned'")"
tag --db inc.db --rules shop.rules --now "$FINAL"
eq "delete rule: the next run changes nothing" "" "$(cat "$T/tout")"

# --- two runs at once ------------------------------------------------------------------
cp "$SHOP" shop.rules
check "setup: gen-events makes 10000 events" python3 "$GEN" --persons 5000 --events 10000 --days 20 --end 2026-11-20 --seed 7 -o big.ndjson
run --db conc.db --rules shop.rules big.ndjson
status "setup: smr-ingest of the 10000 events" 0
check "setup: a copy for the single run" sq conc.db "VACUUM INTO 'single.db'"
NOW=2026-11-19T23:59:59+08:00
tag --db single.db --rules shop.rules --now $NOW
sort "$T/tout" >single.out
NB=$(sq single.db "SELECT count(*) FROM person")
check "concurrency: more persons ($NB) than one chunk of 2000" test "$NB" -gt 4000
"$TAG" --db conc.db --rules shop.rules --now $NOW >c1.out 2>c1.err &
p1=$!
"$TAG" --db conc.db --rules shop.rules --now $NOW >c2.out 2>c2.err &
p2=$!
"$TAG" --db conc.db --rules shop.rules --now $NOW >c3.out 2>c3.err &
p3=$!
wait $p1; r1=$?
wait $p2; r2=$?
wait $p3; r3=$?
eq "concurrency: three runs at once all exit 0" "0 0 0" "$r1 $r2 $r3"
no_sanitizer "concurrent runs" c1.err c2.err c3.err
eq "concurrency: the runs' outputs together are exactly the changes of one run" \
	"$(wc -l <single.out) $(md5sum <single.out)" "$(cat c1.out c2.out c3.out | sort | wc -l) $(cat c1.out c2.out c3.out | sort | md5sum)"
eq "concurrency: tag_log has no duplicate adds" "" \
	"$(sq conc.db "SELECT pid, tag FROM tag_log WHERE op = 'add' GROUP BY pid, tag HAVING count(*) > 1 LIMIT 3")"
eq "concurrency: tag_log has one row per change" "$(wc -l <single.out)" "$(sq conc.db "SELECT count(*) FROM tag_log")"
eq "concurrency: the tag table is the one a single run gives" "" \
	"$(diff <(sq conc.db "SELECT pid, tag, since, source FROM tag ORDER BY 1, 2") <(sq single.db "SELECT pid, tag, since, source FROM tag ORDER BY 1, 2") | head -3)"

finish
