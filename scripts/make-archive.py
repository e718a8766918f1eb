#!/usr/bin/env python3
"""Lays CloudTrail records (JSON lines, plain or gzip'd) out as an organization trail's S3
archive: AWSLogs/o-ORG/ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/ACCOUNT_CloudTrail_REGION_
YYYYMMDDTHHMMZ_NNNN.json.gz. Each account-region's events, in time order, are cut into
files of --per-file events (a busy account's 5-minute delivery; the corpus is sparser in time
than a real organization, so 5-minute windows would give files of two events), stamped 5
minutes after their last event. For `scripts/bench-backtest`.

    scripts/make-archive.py EVENTS.jsonl[.gz] OUT_DIR [--copies K] [--per-file N]

--copies K writes K copies of the corpus, each shifted by a week with its own eventIDs (to
reach a given archive size).
"""
import argparse, collections, datetime, gzip, json, os

p = argparse.ArgumentParser()
p.add_argument("events")
p.add_argument("out")
p.add_argument("--copies", type=int, default=1)
p.add_argument("--org", default="o-benchorg01")
p.add_argument("--per-file", type=int, default=500)
a = p.parse_args()

opener = gzip.open if a.events.endswith(".gz") else open
records = [json.loads(l) for l in opener(a.events, "rt") if l.strip()]
n = 0
total = 0
for copy in range(a.copies):
    files = collections.defaultdict(list)
    shift = datetime.timedelta(days=7 * copy)
    for r in records:
        if copy:
            r = dict(r)
            r["eventID"] = f"{r.get('eventID', '')}-c{copy}"
        try:
            t = datetime.datetime.strptime(r["eventTime"], "%Y-%m-%dT%H:%M:%SZ") + shift
        except (KeyError, ValueError, TypeError):
            continue
        if copy:
            r["eventTime"] = t.strftime("%Y-%m-%dT%H:%M:%SZ")
        acct = str(r.get("recipientAccountId") or "000000000000")
        region = str(r.get("awsRegion") or "us-east-1")
        files[(acct, region)].append((t, r))
    cut = []
    for (acct, region), evs in files.items():
        evs.sort(key=lambda x: x[0])
        for i in range(0, len(evs), a.per_file):
            part = evs[i:i + a.per_file]
            last = part[-1][0]
            end = last.replace(minute=last.minute - last.minute % 5, second=0) + datetime.timedelta(minutes=5)
            cut.append(((acct, region, end), [r for _, r in part]))
    for (acct, region, end), recs in sorted(cut, key=lambda x: x[0]):
        day = end.strftime("%Y/%m/%d")
        stamp = end.strftime("%Y%m%dT%H%MZ")
        d = os.path.join(a.out, "AWSLogs", a.org, acct, "CloudTrail", region, day)
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, f"{acct}_CloudTrail_{region}_{stamp}_{n:06d}.json.gz")
        with open(path, "wb") as f:
            f.write(gzip.compress(json.dumps({"Records": recs}).encode(), 6))
        total += os.path.getsize(path)
        n += 1
print(f"{n} files, {total} bytes")
