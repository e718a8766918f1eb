#!/usr/bin/env python3
"""The oracle for tests/sigma_oracle.rs: pySigma's SQLite backend.

    sigma_oracle.py RECORDS.jsonl RULE.yml...
    sigma_oracle.py --windows RECORDS.jsonl RULE.yml...


Each record is flattened into rows of columns by dotted path, one row per choice of an element
in each array a path crosses (objects and arrays also stored as their compact JSON text, keys
sorted, as trailwatch matches them at a path's end; empty ones as NULL); each rule is converted
to SQL and run over the table, and a record matches when any of its rows does. Prints one JSON object: file -> list of per-rule results, each the sorted
eventIDs it matched, or {"error": why} where the backend refuses the rule.

With --windows the rules are correlation rules, converted with `eventTime` as the timestamp
and `eventID` as the event id: each result is the list of windows the backend found, as
[group keys (a JSON object, sorted), window end in seconds, [event ids]].
"""
import json, re, sqlite3, sys, time

from sigma.backends.sqlite import sqliteBackend
from sigma.collection import SigmaCollection


def text(v):
    return json.dumps(v, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


LIMIT = 4096


def flats(v, path):
    """Every flattening of `v` at `path`, as trailwatch reads fields: one row per choice of
    an element in each array on the way down (a path crosses arrays, and a field test holds
    when it holds for any element reached), with objects and arrays also stored as their
    compact JSON text at their own path. An empty object or array is NULL there: it has no
    element for a text test to match."""
    if isinstance(v, dict):
        rows = [{path: text(v) if v else None}] if path else [{}]
        for k, x in v.items():
            sub = flats(x, f"{path}.{k}" if path else k)
            rows = [dict(r, **s) for r in rows for s in sub]
            if len(rows) > LIMIT:
                raise SystemExit(f"more than {LIMIT} flattenings at {path}")
        return rows
    if isinstance(v, list):
        whole = text(v) if v else None
        rows = []
        for x in v:
            if isinstance(x, (dict, list)):
                for s in flats(x, path):
                    s[path] = whole
                    rows.append(s)
        return rows or [{path: whole}]
    return [{path: v}]


windows = sys.argv[1] == "--windows"
args = sys.argv[2:] if windows else sys.argv[1:]
records = [json.loads(l) for l in open(args[0]) if l.strip()]
rows = []
for r in records:
    # Correlations count records: one row each (its first flattening).
    rows.extend(flats(r, "")[:1] if windows else flats(r, ""))
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
                    # A record matches when any of its rows (flattenings) does.
                    ids = sorted({r[0] for r in db.execute(sql.replace("SELECT *", 'SELECT "eventID"', 1))})
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
