#!/usr/bin/env python3
"""The oracle for tests/sigma_oracle.rs: pySigma's SQLite backend.

    sigma_oracle.py RECORDS.jsonl RULE.yml...
    sigma_oracle.py --windows RECORDS.jsonl RULE.yml...


Each record is flattened into columns by dotted path (objects and arrays also stored as their
compact JSON text, keys sorted, as trailwatch matches them); each rule is converted to SQL and
run over the table. Prints one JSON object: file -> list of per-rule results, each the sorted
eventIDs it matched, or {"error": why} where the backend refuses the rule.

With --windows the rules are correlation rules, converted with `eventTime` as the timestamp
and `eventID` as the event id: each result is the list of windows the backend found, as
[group keys (a JSON object, sorted), window end in seconds, [event ids]].
"""
import json, re, sqlite3, sys, time

from sigma.backends.sqlite import sqliteBackend
from sigma.collection import SigmaCollection


def flat(v, path, out):
    if isinstance(v, dict):
        if path:
            out[path] = json.dumps(v, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
        for k, x in v.items():
            flat(x, f"{path}.{k}" if path else k, out)
    elif isinstance(v, list):
        out[path] = json.dumps(v, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    else:
        out[path] = v


windows = sys.argv[1] == "--windows"
args = sys.argv[2:] if windows else sys.argv[1:]
records = [json.loads(l) for l in open(args[0]) if l.strip()]
rows = []
for r in records:
    row = {}
    flat(r, "", row)
    rows.append(row)
cols = sorted({c for row in rows for c in row})
db = sqlite3.connect(":memory:")
db.create_function("REGEXP", 2, lambda p, v: v is not None and re.search(p, str(v)) is not None)
q = lambda c: '"' + c.replace('"', '""') + '"'
db.execute(f"CREATE TABLE logs ({', '.join(q(c) for c in cols)})")
for row in rows:
    db.execute(
        f"INSERT INTO logs ({', '.join(q(c) for c in row)}) VALUES ({', '.join('?' for _ in row)})",
        list(row.values()),
    )
if windows:
    backend = sqliteBackend(timestamp_field="eventTime", event_id_field="eventID")
else:
    backend = sqliteBackend()
out = {}
for path in args[1:]:
    started = time.monotonic()
    results = []
    try:
        queries = backend.convert(SigmaCollection.from_yaml(open(path).read()))
    except Exception as e:  # the backend refuses the whole file
        out[path] = [{"error": f"{type(e).__name__}: {e}"}]
        continue
    for sql in queries:
        while True:
            try:
                if windows:
                    cur = db.execute(sql)
                    names = [c[0] for c in cur.description]
                    rows = [dict(zip(names, r)) for r in cur]
                    results.append(sorted(
                        [
                            json.dumps(json.loads(r["group_keys"]), sort_keys=True),
                            r["occurrence_time"],
                            sorted(i.split(":", 1)[1] for i in json.loads(r["event_ids"])),
                        ]
                        for r in rows
                    ))
                else:
                    ids = sorted(r[0] for r in db.execute(sql.replace("SELECT *", 'SELECT "eventID"', 1)))
                    results.append(ids)
                break
            except sqlite3.OperationalError as e:
                m = re.match(r"no such column: (.+)", str(e))
                if not m:
                    results.append({"error": str(e)})
                    break
                # A field no record has: a column of NULLs.
                db.execute(f"ALTER TABLE logs ADD COLUMN {q(m.group(1).strip('`'))}")
    out[path] = results
    print(f"{path}: {time.monotonic() - started:.1f}s", file=sys.stderr)
print(json.dumps(out))
