#!/usr/bin/env bash
# smr-segment --xlsx, read back from the file's XML (not by eye): an
# 11-digit phone and an 18-digit member id as text cells with every digit,
# a nickname "=1+1" as text (no formula), money as numbers in yuan with a
# two-decimal format, times as dates in the rules' time zone, the header
# row frozen; the file 0600 and written whole; bad uses.
. "$(dirname "$0")/../lib.sh"
. "$FIXTURES/tag/helpers.sh"
. "$FIXTURES/segment/helpers.sh"
# cells FILE ROW: "ref:type:value:format" for each cell of ROW of the first
# sheet, resolving inline and shared strings and each cell's number format.
cells() {
	python3 - "$1" "$2" <<'PY'
import re, sys, zipfile, xml.etree.ElementTree as ET
N = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
z = zipfile.ZipFile(sys.argv[1])
shared = []
if "xl/sharedStrings.xml" in z.namelist():
    shared = ["".join(t.text or "" for t in si.iter(N + "t")) for si in ET.fromstring(z.read("xl/sharedStrings.xml")).iter(N + "si")]
st = ET.fromstring(z.read("xl/styles.xml"))
codes = {int(f.get("numFmtId")): f.get("formatCode") for f in st.iter(N + "numFmt")}
xfs = [int(x.get("numFmtId", 0)) for x in st.find(N + "cellXfs")]
sheet = ET.fromstring(z.read("xl/worksheets/sheet1.xml"))
out = []
for row in sheet.iter(N + "row"):
    if row.get("r") != sys.argv[2]:
        continue
    for c in row:
        t = c.get("t", "n")
        if c.find(N + "f") is not None:
            t = "formula"
        if t == "inlineStr":
            v = "".join(x.text or "" for x in c.iter(N + "t"))
        elif t == "s":
            v = shared[int(c.find(N + "v").text)]
        else:
            v = c.find(N + "v").text if c.find(N + "v") is not None else ""
            if t == "n" and v:
                v = repr(round(float(v), 9))
        fmt = codes.get(xfs[int(c.get("s", 0))], "")
        out.append("%s:%s:%s:%s" % (re.sub(r"\d", "", c.get("r")), "str" if t in ("inlineStr", "s", "str") else t, v, fmt))
print(" ".join(out))
PY
}
cat >x.rules <<'EOF2'
timezone Asia/Shanghai
identity unionid   priority 1 max 1
identity phone     priority 2 max 1
identity member_id priority 3 max 1
segment everyone when events >= 0
segment buyers when orders > 0
EOF2
{
	printf '%s\n' '{"id":"p1","type":"profile","ts":"2026-11-01T00:00:00Z","unionid":"U1","phone":"13800138000","member_id":"123456789012345678","props":{"nickname":"=1+1"}}'
	printf '%s\n' '{"id":"o1","type":"order","ts":"2026-11-20T12:15:00Z","unionid":"U1","amount":"199.00"}'
	printf '%s\n' '{"id":"o2","type":"order","ts":"2026-11-21T12:15:00Z","unionid":"U1","amount":"0.10"}'
	printf '%s\n' '{"id":"v2","type":"view","ts":"2026-11-21T12:15:00Z","unionid":"U2"}'
} >x.ndjson
ingest "xlsx fixture" x.db x.rules x.ndjson
seg --db x.db --rules x.rules --now 2026-11-25T00:00:00+08:00 --xlsx out.xlsx --fields spend,first_order_at,nickname,orders,aov everyone
sstatus "--xlsx: exit 0" 0
eq "--xlsx: nothing on stdout" "" "$(cat "$T/sout")"
eq "--xlsx: the file is 0600, no temporary left" "600 0" "$(stat -c %a out.xlsx) $(ls | grep -c 'out.xlsx.tmp')"
eq "--xlsx: the header row (pid, the single-valued kinds in the rules' order, then the fields)" \
	"A:str:pid: B:str:unionid: C:str:member_id: D:str:external_userid: E:str:phone: F:str:spend: G:str:first_order_at: H:str:nickname: I:str:orders: J:str:aov:" \
	"$(cells out.xlsx 1)"
# 2026-11-20T12:15:00Z is 20:15 in Shanghai: serial (2026-11-20 - 1899-12-30) + 20.25/24
serial=$(python3 -c 'import datetime as d; x = d.datetime(2026, 11, 20, 20, 15) - d.datetime(1899, 12, 30); print(repr(round(x.days + x.seconds / 86400, 9)))')
eq "--xlsx: U1's row: ids and text as text cells with every digit, =1+1 not a formula, 199.10 yuan and 99.55 as numbers with two decimals, the first order as a local date, orders a number" \
	"A:str:1: B:str:U1: C:str:123456789012345678: E:str:13800138000: F:n:199.1:0.00 G:n:$serial:yyyy-mm-dd hh:mm:ss H:str:=1+1: I:n:2.0: J:n:99.55:0.00" \
	"$(cells out.xlsx 2)"
eq "--xlsx: U2's row: NULLs are blank cells, zero spend is 0" \
	"A:str:2: B:str:U2: F:n:0.0:0.00 I:n:0.0:" "$(cells out.xlsx 3)"
check "--xlsx: the header row is frozen" python3 -c '
import sys, zipfile
x = zipfile.ZipFile("out.xlsx").read("xl/worksheets/sheet1.xml").decode()
sys.exit(0 if "ySplit=\"1\"" in x and "state=\"frozen\"" in x else 1)'
# the rules' time zone decides the date: in New York 12:15Z is 07:15
sed 's/^timezone Asia\/Shanghai$/timezone America\/New_York/' x.rules >ny.rules
seg --db x.db --rules ny.rules --now 2026-11-25T00:00:00Z --xlsx ny.xlsx --fields first_order_at buyers
serial=$(python3 -c 'import datetime as d; x = d.datetime(2026, 11, 20, 7, 15) - d.datetime(1899, 12, 30); print(repr(round(x.days + x.seconds / 86400, 9)))')
eq "--xlsx: times in the rules' time zone (New York)" "A:str:1: B:str:U1: C:str:123456789012345678: E:str:13800138000: F:n:$serial:yyyy-mm-dd hh:mm:ss" "$(cells ny.xlsx 2)"
# a layer: --rfm members with their scores
seg --db x.db --rules x.rules --now 2026-11-25T00:00:00+08:00 --rfm --xlsx rfm.xlsx
sstatus "--rfm --xlsx: exit 0" 0
eq "--rfm --xlsx: one member row under the header" "2" "$(python3 -c '
import zipfile; x = zipfile.ZipFile("rfm.xlsx").read("xl/worksheets/sheet1.xml").decode(); print(x.count("<row "))')"
# bad uses
seg --db x.db --rules x.rules --xlsx a.xlsx --csv buyers
sstatus "--xlsx with --csv: usage error, exit 2" 2
seg --db x.db --rules x.rules --xlsx a.xlsx --count buyers
sstatus "--xlsx with --count: usage error, exit 2" 2
seg --db x.db --rules x.rules --xlsx /nonexistent/dir/a.xlsx buyers
sstatus "--xlsx into a missing directory: exit 3" 3
check "--xlsx into a missing directory: the reason names the file" grep -q 'a.xlsx.tmp' "$T/serr"
cp out.xlsx keep.xlsx
seg --db x.db --rules x.rules --xlsx out.xlsx 'buyers and'
sstatus "--xlsx with a bad expression: exit 2" 2
check "--xlsx with a bad expression: the previous file is untouched" cmp -s out.xlsx keep.xlsx
finish
