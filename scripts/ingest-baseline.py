#!/usr/bin/env python3
"""ingest-baseline.py: smr-ingest's work in plain Python, for scripts/bench.

What a competent Python developer would write with the standard json and
sqlite3 modules to do what smr-ingest does, into the same database:

  - NDJSON in (files or stdin), each record checked like smr-ingest checks it
    (id, type, ts, identifiers, money, times; rejects reported on stderr);
  - dedup by source id;
  - identity resolution with smr's default limits and priorities: look up
    every identifier, attach new ones, merge persons into the lowest pid
    unless a per-kind limit would break, else keep the event with the person
    of the highest-priority identifier and log the conflict;
  - profile attributes merged into person.attrs;
  - per-person facts (person; person_type is a view) brought up to date at each
    commit, batches of 5000 events in one transaction each.

The schema is smr's own: create the database first with
`bin/smr-ingest --db PATH < /dev/null`. Prints the same summary record.

    ingest-baseline.py --db PATH [--batch N] [FILE ...]
"""

import argparse
import datetime
import json
import re
import sqlite3
import sys
import time
from zoneinfo import ZoneInfo

BATCH = 5000
LINE_MAX = 1024 * 1024
LOCAL = ZoneInfo("Asia/Shanghai")

# kind, priority (lower wins a conflict), most values per person (0 = any)
KINDS = [("unionid", 1, 1), ("member_id", 2, 1), ("external_userid", 3, 1), ("phone", 4, 1),
         ("openid", 5, 0), ("cookie_id", 6, 5), ("anon_id", 7, 5)]
PRIORITY = {k: p for k, p, _ in KINDS}
LIMIT = {k: m for k, _, m in KINDS}
CORE = {"id", "type", "ts", "item", "amount", "channel", "text", "expires", "group_id", "staff", "props", "ids"}
TYPE_RE = re.compile(r"[a-z][a-z0-9_]{0,31}\Z")
MONEY_RE = re.compile(r"([+-]?)(\d+)(?:\.(\d+))?\Z")


class Reject(Exception):
    pass


def parse_time(v, field):
    if isinstance(v, bool):
        raise Reject('field "%s" must be an ISO 8601 string or epoch seconds' % field)
    if isinstance(v, int):
        if not 0 <= v <= 253402300799:
            raise Reject('field "%s": epoch seconds out of range' % field)
        return v
    if not isinstance(v, str):
        raise Reject('field "%s" must be an ISO 8601 string or epoch seconds' % field)
    if v.isdigit():
        return int(v)
    try:
        dt = datetime.datetime.fromisoformat(v)
    except ValueError:
        raise Reject('field "%s": not an ISO 8601 time: "%.40s"' % (field, v)) from None
    if dt.year < 1970:
        raise Reject('field "%s": impossible date: "%.40s"' % (field, v))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=LOCAL)
    return int(dt.timestamp())


def parse_money(v):
    """Yuan (a decimal string or a JSON number, at most two decimals) to fen."""
    fen = None
    if isinstance(v, bool):
        pass
    elif isinstance(v, int):
        fen = v * 100
    elif isinstance(v, float):
        f = v * 100
        if abs(f - round(f)) <= 1e-6 * max(1.0, abs(f)):
            fen = int(round(f))
    elif isinstance(v, str):
        m = MONEY_RE.match(v)
        if m and (m.group(3) is None or (m.group(3) != "" and m.group(3)[2:].strip("0") == "")):
            cents = (m.group(3) or "00")[:2].ljust(2, "0")
            fen = int(m.group(2)) * 100 + int(cents)
            if m.group(1) == "-":
                fen = -fen
    else:
        raise Reject('field "amount" must be a number or a decimal string')
    if fen is None or fen < 0:
        raise Reject('bad money in "amount" (yuan, at most two decimals, not negative)')
    return fen


def normalise_phone(v):
    if v.startswith("+86"):
        v = v[3:]
    elif v.startswith("0086"):
        v = v[4:]
    digits = v.replace(" ", "").replace("-", "")
    if not digits.isdigit() or not digits.isascii() or len(digits) < 5 or len(digits) > 39:
        raise Reject('bad phone number "%.40s"' % v)
    return digits


def opt_string(obj, key):
    v = obj.get(key)
    if v is None:
        return None
    if not isinstance(v, str):
        raise Reject('field "%s" must be a string' % key)
    if len(v) > 65536:
        raise Reject('field "%s" is too long' % key)
    return v or None


def check(obj):
    """The record as a dict of columns plus its identifiers, or Reject."""
    if not isinstance(obj, dict):
        raise Reject("record is not a JSON object")
    eid = obj.get("id")
    if eid is None or eid == "":
        raise Reject('missing field "id"')
    if isinstance(eid, int) and not isinstance(eid, bool):
        eid = str(eid)
    elif not isinstance(eid, str):
        raise Reject('field "id" must be a string')
    elif len(eid) > 256:
        raise Reject('field "id" is too long')
    etype = obj.get("type")
    if etype is None or etype == "":
        raise Reject('missing field "type"')
    if not isinstance(etype, str) or not TYPE_RE.match(etype):
        raise Reject('field "type" must be a lower-case name like add_cart')
    ts = obj.get("ts")
    if ts is None or ts == "":
        raise Reject('missing field "ts"')
    ev = {"id": eid, "type": etype, "ts": parse_time(ts, "ts")}
    for key in ("item", "channel", "text", "group_id", "staff"):
        ev[key] = opt_string(obj, key)
    amount = obj.get("amount")
    ev["amount"] = parse_money(amount) if amount is not None and amount != "" else None
    expires = obj.get("expires")
    ev["expires"] = parse_time(expires, "expires") if expires is not None and expires != "" else None
    if etype in ("order", "refund") and ev["amount"] is None:
        raise Reject('%s needs "amount"' % etype)
    if etype == "message" and ev["text"] is None:
        raise Reject('message needs "text"')

    ids = []
    pairs = [(k, obj.get(k)) for k, _, _ in KINDS]
    extra = obj.get("ids")
    if extra is not None:
        if not isinstance(extra, dict):
            raise Reject('field "ids" must be an object of kind: value')
        for k, v in extra.items():
            if k not in PRIORITY:
                raise Reject('unknown identifier kind "%s"' % k)
            pairs.append((k, v))
    for kind, v in pairs:
        if v is None or v == "":
            continue
        if isinstance(v, int) and not isinstance(v, bool):
            v = str(v)
        elif not isinstance(v, str):
            raise Reject('identifier "%s" must be a string' % kind)
        elif len(v) > 256:
            raise Reject('identifier "%s" is too long' % kind)
        if kind == "phone":
            v = normalise_phone(v)
        if (kind, v) not in ids:
            ids.append((kind, v))
    if not ids:
        raise Reject("no identifier")
    if len(ids) > 16:
        raise Reject("too many identifiers")

    props = obj.get("props")
    if props is not None and not isinstance(props, dict):
        raise Reject('field "props" must be an object')
    rest = {k: v for k, v in obj.items() if k not in CORE and k not in PRIORITY and v is not None}
    if rest:
        props = dict(props or {})
        props.update(rest)
    ev["props"] = props or None
    return ev, ids


def dumps(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


FLUSH_PERSONS = """
UPDATE person SET events = events + a.d_n, orders = orders + a.d_orders, spend = spend + a.d_spend,
  refunds = refunds + a.d_refunds, refunded = refunded + a.d_refunded,
  first_order_at = coalesce(min(first_order_at, a.d_fo), first_order_at, a.d_fo),
  last_order_at = coalesce(max(last_order_at, a.d_lo), last_order_at, a.d_lo),
  first_seen = coalesce(min(first_seen, a.d_fs), a.d_fs), last_seen = coalesce(max(last_seen, a.d_ls), a.d_ls),
  rev = a.d_rev
FROM (SELECT pid AS d_pid, count(*) AS d_n, coalesce(sum(type = 'order'), 0) AS d_orders,
        coalesce(sum(CASE WHEN type = 'order' THEN amount END), 0) AS d_spend,
        coalesce(sum(type = 'refund'), 0) AS d_refunds,
        coalesce(sum(CASE WHEN type = 'refund' THEN amount END), 0) AS d_refunded,
        min(CASE WHEN type = 'order' THEN ts END) AS d_fo, max(CASE WHEN type = 'order' THEN ts END) AS d_lo,
        min(ts) AS d_fs, max(ts) AS d_ls, max(eid) AS d_rev
      FROM event NOT INDEXED WHERE eid > ? GROUP BY pid) AS a
WHERE person.pid = a.d_pid"""

MERGE = [
    "UPDATE event SET pid = :to WHERE pid = :from",
    "UPDATE identity SET pid = :to WHERE pid = :from",
    "INSERT INTO tag(pid, tag, since, source) SELECT :to, tag, since, source FROM tag WHERE pid = :from "
    "ON CONFLICT(pid, tag) DO UPDATE SET since = min(since, excluded.since)",
    "DELETE FROM tag WHERE pid = :from",
    "UPDATE tag_log SET pid = :to WHERE pid = :from",
    "UPDATE person SET attrs = json_patch((SELECT attrs FROM person WHERE pid = :from), attrs), "
    "created_at = min(created_at, (SELECT created_at FROM person WHERE pid = :from)) WHERE pid = :to",
    "UPDATE person SET (events, orders, spend, refunds, refunded, first_order_at, last_order_at, first_seen, last_seen) = "
    "(SELECT count(*), coalesce(sum(type = 'order'), 0), coalesce(sum(CASE WHEN type = 'order' THEN amount END), 0), "
    "coalesce(sum(type = 'refund'), 0), coalesce(sum(CASE WHEN type = 'refund' THEN amount END), 0), "
    "min(CASE WHEN type = 'order' THEN ts END), max(CASE WHEN type = 'order' THEN ts END), min(ts), max(ts) "
    "FROM event WHERE pid = :to AND eid <= :upto) WHERE pid = :to",
    "DELETE FROM person WHERE pid = :from",
]


class Ingest:
    def __init__(self, db, batch, now):
        self.db = db
        self.batch = batch
        self.now = now
        self.in_batch = 0
        self.batch_start = 0
        self.stats = dict(read=0, inserted=0, duplicates=0, rejected=0, new_persons=0, merges=0, conflicts=0)

    # -- transactions ---------------------------------------------------
    def begin(self):
        self.db.execute("BEGIN IMMEDIATE")
        self.batch_start = self.db.execute("SELECT coalesce(max(eid), 0) FROM event").fetchone()[0]
        self.in_batch = 0

    def commit(self):
        if not self.db.in_transaction:
            return
        self.db.execute(FLUSH_PERSONS, (self.batch_start,))
        self.db.execute("COMMIT")
        self.in_batch = 0

    # -- identity -------------------------------------------------------
    def lookup(self, kind, value):
        row = self.db.execute("SELECT pid FROM identity WHERE kind = ? AND value = ?", (kind, value)).fetchone()
        return row[0] if row else 0

    def attach(self, kind, value, pid, ts):
        self.db.execute("INSERT OR IGNORE INTO identity(kind, value, pid, first_seen) VALUES (?, ?, ?, ?)",
                        (kind, value, pid, ts))

    def new_person(self):
        self.stats["new_persons"] += 1
        return self.db.execute("INSERT INTO person(created_at) VALUES (?)", (self.now,)).lastrowid

    def kind_counts(self, pid, counts):
        for kind, n in self.db.execute("SELECT kind, count(*) FROM identity WHERE pid = ? GROUP BY kind", (pid,)):
            if kind in LIMIT:
                counts[kind] = counts.get(kind, 0) + n

    def log_conflict(self, ev, pid, kind, value, other, reason):
        self.db.execute("INSERT INTO conflict_log(at, event_id, pid, kind, value, other_pid, reason) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)", (self.now, ev["id"], pid, kind, value, other or None, reason))

    def merge(self, ev, ids, to, other):
        via = next(((k, v) for k, v in ids if self.lookup(k, v) == other), (None, None))
        self.db.execute("INSERT INTO merge_log(at, survivor, merged, event_id, kind, value) VALUES (?, ?, ?, ?, ?, ?)",
                        (self.now, to, other, ev["id"], via[0], via[1]))
        args = {"to": to, "from": other, "upto": self.batch_start}
        for sql in MERGE:
            self.db.execute(sql, {k: args[k] for k in ("to", "from", "upto") if ":" + k in sql})
        self.stats["merges"] += 1

    def resolve(self, ev, ids):
        pids = [self.lookup(k, v) for k, v in ids]
        found = sorted(set(p for p in pids if p))
        if len(found) == 1 and all(pids):
            return found[0]
        counts = {}
        for p in found:
            self.kind_counts(p, counts)
        for (kind, _), p in zip(ids, pids):
            if not p:
                counts[kind] = counts.get(kind, 0) + 1
        ok = all(LIMIT[k] == 0 or n <= LIMIT[k] for k, n in counts.items())
        if ok and not found:
            pid = self.new_person()
            for kind, value in ids:
                self.attach(kind, value, pid, ev["ts"])
            return pid
        if ok:
            pid = found[0]
            for other in found[1:]:
                self.merge(ev, ids, pid, other)
            for (kind, value), p in zip(ids, pids):
                if not p:
                    self.attach(kind, value, pid, ev["ts"])
            return pid
        return self.conflict(ev, ids, pids)

    def conflict(self, ev, ids, pids):
        d = 0
        for i in range(1, len(ids)):
            pb, pi = PRIORITY[ids[d][0]], PRIORITY[ids[i][0]]
            if pi < pb or (pi == pb and pids[i] and not pids[d]):
                d = i
        pid = pids[d]
        if not pid:
            pid = self.new_person()
            self.attach(ids[d][0], ids[d][1], pid, ev["ts"])
        counts = {}
        self.kind_counts(pid, counts)
        for i, (kind, value) in enumerate(ids):
            if i == d or pids[i] == pid:
                continue
            if pids[i]:
                self.log_conflict(ev, pid, kind, value, pids[i], "held by another person; merge would exceed a limit")
            elif LIMIT[kind] and counts.get(kind, 0) >= LIMIT[kind]:
                self.log_conflict(ev, pid, kind, value, None, "not attached: person already has the most of this kind")
            else:
                self.attach(kind, value, pid, ev["ts"])
                counts[kind] = counts.get(kind, 0) + 1
        self.stats["conflicts"] += 1
        return pid

    # -- events ---------------------------------------------------------
    def event(self, ev, ids):
        if not self.db.in_transaction:
            self.begin()
        if self.db.execute("SELECT 1 FROM event WHERE id = ?", (ev["id"],)).fetchone():
            self.stats["duplicates"] += 1
        else:
            pid = self.resolve(ev, ids)
            props = ev["props"]
            self.db.execute(
                "INSERT INTO event(id, pid, type, ts, item, amount, channel, text, expires, group_id, staff, props, "
                "ingested_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (ev["id"], pid, ev["type"], ev["ts"], ev["item"], ev["amount"], ev["channel"], ev["text"],
                 ev["expires"], ev["group_id"], ev["staff"], dumps(props) if props else None, self.now))
            self.update_attrs(ev, pid)
            self.stats["inserted"] += 1
        self.in_batch += 1
        if self.in_batch >= self.batch:
            self.commit()

    def update_attrs(self, ev, pid):
        profile = ev["type"] == "profile"
        owner = ev["staff"] and (profile or ev["type"] == "friend_add")
        if not (profile and ev["props"]) and not owner:
            return
        patch = dict(ev["props"]) if profile and ev["props"] else {}
        if owner:
            patch["staff"] = ev["staff"]
        self.db.execute("UPDATE person SET attrs = json_patch(attrs, ?) WHERE pid = ?", (dumps(patch), pid))

    def file(self, name, f):
        for lineno, raw in enumerate(f, 1):
            raw = raw.rstrip(b"\n").rstrip(b"\r")
            if not raw:
                continue
            self.stats["read"] += 1
            try:
                if len(raw) > LINE_MAX:
                    raise Reject("line longer than %d bytes" % LINE_MAX)
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise Reject("invalid UTF-8") from None
                try:
                    obj = json.loads(text)
                except ValueError as e:
                    raise Reject("malformed JSON: %s" % e) from None
                ev, ids = check(obj)
            except Reject as e:
                self.stats["rejected"] += 1
                print("ingest-baseline: %s:%d: %s" % (name, lineno, e), file=sys.stderr)
                continue
            self.event(ev, ids)


def main():
    ap = argparse.ArgumentParser(description="smr-ingest's work in plain Python (json + sqlite3)")
    ap.add_argument("--db", required=True, help="database created by smr-ingest")
    ap.add_argument("--batch", type=int, default=BATCH, help="events per transaction (default 5000)")
    ap.add_argument("files", nargs="*", default=["-"])
    a = ap.parse_args()
    db = sqlite3.connect(a.db, isolation_level=None, timeout=60)
    if db.execute("PRAGMA user_version").fetchone()[0] < 1:
        sys.exit("ingest-baseline: %s: no smr schema; create it with smr-ingest --db %s < /dev/null" % (a.db, a.db))
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("PRAGMA cache_size = -65536")
    ing = Ingest(db, a.batch, int(time.time()))
    for name in a.files:
        if name == "-":
            ing.file("<stdin>", sys.stdin.buffer)
        else:
            with open(name, "rb") as f:
                ing.file(name, f)
    ing.commit()
    db.close()
    print(json.dumps(ing.stats, separators=(",", ":")))
    return 1 if ing.stats["rejected"] else 0


if __name__ == "__main__":
    sys.exit(main())
