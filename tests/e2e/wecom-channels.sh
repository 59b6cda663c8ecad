#!/usr/bin/env bash
# WeCom beyond private messages, against the local stand-in server
# (tests/fixtures/wecom/server.py): an enrollment ends when its person has
# no staff contact left (one deletion ends only that pair); moments posts
# (add_moment_task: one job per sender and text, the job result and the
# publish status reconciled, a lost answer never creates a second job);
# staff reminders (message/send: one digest per staff member, split at
# 2,048 bytes on a character boundary, invaliduser failing only that
# staff member's touches, at most 30 messages a minute per member).
. "$(dirname "$0")/../lib.sh"
. "$FIXTURES/tag/helpers.sh"
. "$FIXTURES/sop/helpers.sh"
. "$FIXTURES/wecom/helpers.sh"
D2=2026-11-04T12:00:00+08:00

# === no staff contact left: the enrollment ends ================================
cat >ns.rules <<'EOF2'
timezone Asia/Shanghai
tag go when count('view', '30d') > 0
sop hello
  trigger go
  window 5d
  step 0d 12:00 private hi
  step 1d 12:00 private hi
  step 2d 12:00 private hi
  step 3d 12:00 private hi
end
content hi private "{{sop}} {{staff}}"
EOF2
start_server
{
	ev a1 friend_add 2026-11-01T10:00:00+08:00 C1 ',"external_userid":"wmC1","staff":"s1"'
	ev b1 friend_add 2026-11-01T11:00:00+08:00 C1 ',"external_userid":"wmC1","staff":"s2"'
	ev v1 view 2026-11-02T09:00:00+08:00 C1
	ev v3 view 2026-11-02T09:00:00+08:00 C3                      # outside WeCom: never a staff contact
} >ns.ndjson
setup ns.db ns.ndjson ns.rules
wsnd --db ns.db --rules ns.rules --now $D0 --queued --transport wecom:
eq "no staff: day 0 goes from the most recent contact, s2" "s2" "$(sq ns.db "SELECT staff FROM touch x WHERE $WHO = 'C1' AND step = 0")"
ev d1 friend_delete 2026-11-02T15:00:00+08:00 C1 ',"staff":"s2"' >del1.ndjson
ingest "no staff: delete s2" ns.db ns.rules del1.ndjson
due --db ns.db --rules ns.rules --now $D1
eq "no staff: one of two contacts deleted: the enrollment continues, day 1 queued" "C1 active -;C3 active -" \
	"$(enrols ns.db | sed 's/ [0-9-]* [0-9:]*;/;/; s/ [0-9-]* [0-9:]*$//')"
wsnd --db ns.db --rules ns.rules --now $D1 --queued --transport wecom:
eq "no staff: day 1 goes from the contact left, s1" "C1 task_created s1" \
	"$(sq ns.db "SELECT $WHO || ' ' || state || ' ' || staff FROM touch x WHERE $WHO = 'C1' AND step = 1")"
due --db ns.db --rules ns.rules --now $D2
ev d2 friend_delete 2026-11-04T12:30:00+08:00 C1 ',"staff":"s1"' >del2.ndjson
ingest "no staff: delete s1" ns.db ns.rules del2.ndjson
due --db ns.db --rules ns.rules --now 2026-11-04T12:40:00+08:00 --stats
eq "no staff: the last contact deleted: exited, no staff contact left; C3 (never a WeCom contact) unaffected" \
	"C1 exited no_staff_contact_left;C3 active -" \
	"$(enrols ns.db | sed 's/ [0-9-]* [0-9:]*;/;/; s/ [0-9-]* [0-9:]*$//')"
eq "no staff: counted as an exit" "1" "$(dstats | cut -d' ' -f2)"
wsnd --db ns.db --rules ns.rules --now 2026-11-04T12:45:00+08:00 --queued --transport wecom:
eq "no staff: the step queued before the deletion is suppressed, not sent" "C1 2 suppressed" \
	"$(sq ns.db "SELECT $WHO || ' ' || step || ' ' || state FROM touch x WHERE $WHO = 'C1' AND step = 2")"
due --db ns.db --rules ns.rules --now 2026-11-05T12:00:00+08:00
eq "no staff: nothing more is queued for C1" "0" "$(sq ns.db "SELECT count(*) FROM touch x WHERE $WHO = 'C1' AND step = 3")"
eq "no staff: two tasks in all (day 0 by s2, day 1 by s1)" "s2 s1" "$(srv "' '.join(t['sender'] for t in S['tasks'])")"
finish
