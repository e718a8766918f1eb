#!/usr/bin/env python3
"""Build examples/org-sample.jsonl.gz, the demo input for trailwatch.

The output is a gzip'd JSONL file: one compact CloudTrail record per line. It
holds every record of two permissively licensed public datasets, re-homed into
a small example AWS organization so that the bundled region policy gives a
meaningful demo:

    account        name           approved regions under the demo policy
    111122223333   payments-prod  EU set: eu-west-1, eu-central-1, plus eu-north-1
    444455556666   data-dev       org default: us-east-1, us-west-2
    777788889999   sandbox        org default plus ap-southeast-2
    123456789123   (OTRF)         org default: us-east-1, us-west-2

Inputs (read-only; see examples/SOURCES.md for provenance and licences):
    cloudtrail_otrf_ec2_proxy_s3_exfiltration.jsonl.gz   (MIT, OTRF)
    cloudtrail_stratus_red_team_detonations.jsonl.gz     (Apache-2.0, Stratus Red Team)

What the script does:
  1. OTRF records (103, account 123456789123, all us-east-1) are copied
     byte for byte.
  2. Stratus Red Team records (310) are anonymised upstream: 35 fake account
     ids and 34 fake region strings such as "apiso-northsouth-3r".
     a. Accounts: the 35 fake ids are sorted ascending and the i-th id is mapped
        to STRATUS_TARGETS[i % 3]. Every occurrence of a fake id in the record
        text is replaced: the 12-digit string, delimited by non-digits. This
        covers recipientAccountId, userIdentity.accountId, ARNs and messages.
        Other 12-digit ids in the records are not changed. These are the
        external "attacker" accounts used for sharing snapshots and AMIs.
     b. Regions: only the top-level "awsRegion" value is changed. The fake
        string is still present in other fields (ARNs, tlsDetails host
        header). Each fake region value is mapped to one real region, as
        follows. Each fake region gets a "home" account, the new account
        that most of its records map to. The fake regions are visited in
        the order of sha256(SALT + name). A region is made "unapproved" when
        its record count still fits in the budget of
        round(UNAPPROVED_SHARE * 310) records. Otherwise it is "approved".
        An unapproved region gets the next region of UNAPPROVED_POOL, in
        rotation. No account has any of those regions approved. An approved
        region gets the next region, in rotation, of those approved for
        every account its records map to. If no region is approved for all
        of them, it uses the home account's list.
     Nothing else in the records is changed: eventID, eventTime, names and
     identities stay the same, apart from the account id.
  3. All records are stable-sorted by eventTime (OTRF first, then Stratus, in
     their input order, for equal times). All eventTimes are
     YYYY-MM-DDTHH:MM:SSZ, so string order is time order.
  4. Duplicate deliveries: round(DUP_SHARE * N) records are chosen, namely the
     lowest sha256(SALT + "dup:" + eventID). Each is re-emitted byte-identical
     d lines after its original, with d = 1 + (hash % 20). If two duplicates
     claim the same slot, the later one moves down a line. The script asserts
     that every duplicate ends up 1..20 lines after its original.
  5. The script writes the gzip file with mtime=0 and no file name in the
     header, so the output bytes depend only on the inputs (and the zlib
     build). It then prints a summary: records, duplicates, and counts per
     account and per (account, region) marked approved/UNAPPROVED.

Usage (from the repository root):
    python3 scripts/make-sample.py [--data-dir DIR] [--out FILE] [--verbose]

--data-dir defaults to $TRAILWATCH_CORPUS_DIR if set, or else to ../shared/data
next to the repository. --verbose also prints the account and region maps.
Only the Python standard library is needed (python3 >= 3.8).
"""

import argparse
import collections
import gzip
import hashlib
import json
import os
import re
import sys

OTRF_FILE = "cloudtrail_otrf_ec2_proxy_s3_exfiltration.jsonl.gz"
STRATUS_FILE = "cloudtrail_stratus_red_team_detonations.jsonl.gz"

ACCOUNT_NAMES = {
    "111122223333": "payments-prod",
    "444455556666": "data-dev",
    "777788889999": "sandbox",
    "123456789123": "otrf (org default)",
}
ORG_DEFAULT = ("us-east-1", "us-west-2")
APPROVED = {
    "111122223333": ("eu-west-1", "eu-central-1", "eu-north-1"),
    "444455556666": ORG_DEFAULT,
    "777788889999": ORG_DEFAULT + ("ap-southeast-2",),
    "123456789123": ORG_DEFAULT,
}
STRATUS_TARGETS = ("111122223333", "444455556666", "777788889999")
OTRF_ACCOUNT = "123456789123"
# Real regions that no account of the demo policy approves.
UNAPPROVED_POOL = ("ap-east-1", "sa-east-1", "me-south-1", "eu-west-3", "ap-southeast-3")
UNAPPROVED_SHARE = 0.20
DUP_SHARE = 0.05
MAX_DUP_DISTANCE = 20
SALT = "trailwatch-org-sample-v1"

TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\Z")


def sha(text):
    return hashlib.sha256((SALT + text).encode("utf-8")).hexdigest()


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


def read_lines(path):
    with gzip.open(path, "rt", encoding="utf-8", newline="\n") as f:
        lines = [line.rstrip("\n") for line in f]
    lines = [line for line in lines if line]
    for line in lines:
        json.loads(line)  # fail early on a bad line
    return lines


def map_accounts(stratus):
    fake = sorted({json.loads(line)["recipientAccountId"] for line in stratus})
    for a in fake:
        if not re.fullmatch(r"\d{12}", a):
            sys.exit("unexpected Stratus account id %r" % a)
        if a in APPROVED:
            sys.exit("Stratus fake account %s collides with a demo account" % a)
    return {a: STRATUS_TARGETS[i % len(STRATUS_TARGETS)] for i, a in enumerate(fake)}


def map_regions(stratus, account_map):
    """Return {fake region: (real region, 'approved'|'unapproved')}."""
    per_region = collections.defaultdict(collections.Counter)  # fake -> Counter(new account)
    for line in stratus:
        r = json.loads(line)
        per_region[r["awsRegion"]][account_map[r["recipientAccountId"]]] += 1
    for fake in per_region:
        if fake in UNAPPROVED_POOL or any(fake in v for v in APPROVED.values()):
            sys.exit("Stratus region %r is already a real demo region" % fake)

    budget = round(UNAPPROVED_SHARE * len(stratus))
    order = sorted(per_region, key=lambda g: (sha("region:" + g), g))
    rotation = collections.Counter()  # key -> next index
    unapproved_seen = 0
    result = {}
    for fake in order:
        counts = per_region[fake]
        n = sum(counts.values())
        if n <= budget:
            budget -= n
            real = UNAPPROVED_POOL[unapproved_seen % len(UNAPPROVED_POOL)]
            unapproved_seen += 1
            result[fake] = (real, "unapproved")
            continue
        home = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        common = [g for g in APPROVED[home] if all(g in APPROVED[a] for a in counts)]
        choices = common or list(APPROVED[home])
        key = tuple(choices)
        real = choices[rotation[key] % len(choices)]
        rotation[key] += 1
        result[fake] = (real, "approved")
    return result


def rehome_stratus(line, id_re, account_map, region_map):
    out = id_re.sub(lambda m: account_map[m.group(0)], line)
    fake = json.loads(line)["awsRegion"]
    token = '"awsRegion":' + json.dumps(fake)
    if out.count(token) != 1:
        sys.exit("expected exactly one %s in a Stratus record" % token)
    out = out.replace(token, '"awsRegion":' + json.dumps(region_map[fake][0]))
    return out


def add_duplicates(lines):
    """lines: time-sorted unique records. Returns (output lines, distances)."""
    n_dup = round(DUP_SHARE * len(lines))
    ranked = sorted(range(len(lines)),
                    key=lambda i: (sha("dup:" + json.loads(lines[i])["eventID"]), i))
    chosen = {}
    for i in ranked[:n_dup]:
        h = sha("dup:" + json.loads(lines[i])["eventID"])
        chosen[i] = 1 + int(h[:8], 16) % MAX_DUP_DISTANCE

    out, pending, distances = [], [], []  # pending: [due output index, original index in out]

    def flush(force=False):
        pending.sort()
        while pending and (force or pending[0][0] <= len(out)):
            _, pos = pending.pop(0)
            distances.append(len(out) - pos)
            out.append(out[pos])

    for i, line in enumerate(lines):
        flush()
        out.append(line)
        if i in chosen:
            pending.append([len(out) - 1 + chosen[i], len(out) - 1])
    flush()
    flush(force=True)
    bad = [d for d in distances if not 1 <= d <= MAX_DUP_DISTANCE]
    if bad:
        sys.exit("duplicate distance out of range: %r" % bad)
    return out, distances


def write_gzip(path, lines):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    data = ("\n".join(lines) + "\n").encode("utf-8")
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
            gz.write(data)


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    default_data = os.environ.get("TRAILWATCH_CORPUS_DIR") or os.path.join(repo, os.pardir, "shared", "data")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=default_data, help="directory holding the source .jsonl.gz files")
    ap.add_argument("--out", default=os.path.join(repo, "examples", "org-sample.jsonl.gz"))
    ap.add_argument("--verbose", action="store_true", help="also print the account and region maps")
    args = ap.parse_args()

    paths = {name: os.path.join(args.data_dir, name) for name in (OTRF_FILE, STRATUS_FILE)}
    for p in paths.values():
        if not os.path.isfile(p):
            sys.exit("missing input %s (use --data-dir or TRAILWATCH_CORPUS_DIR)" % p)
    otrf = read_lines(paths[OTRF_FILE])
    stratus = read_lines(paths[STRATUS_FILE])

    for line in otrf:
        r = json.loads(line)
        if r.get("recipientAccountId") != OTRF_ACCOUNT:
            sys.exit("unexpected OTRF account %r" % r.get("recipientAccountId"))

    account_map = map_accounts(stratus)
    region_map = map_regions(stratus, account_map)
    id_re = re.compile(r"(?<!\d)(%s)(?!\d)" % "|".join(sorted(account_map)))
    rehomed = [rehome_stratus(line, id_re, account_map, region_map) for line in stratus]

    records = otrf + rehomed
    for line in records:
        t = json.loads(line)["eventTime"]
        if not TIME_RE.match(t):
            sys.exit("unexpected eventTime format %r" % t)
    ids = [json.loads(line)["eventID"] for line in records]
    if len(set(ids)) != len(ids):
        sys.exit("eventIDs are not unique across the inputs")
    records.sort(key=lambda line: json.loads(line)["eventTime"])  # stable

    out, distances = add_duplicates(records)
    write_gzip(args.out, out)

    # ---- summary -------------------------------------------------------
    def approved(acct, region):
        return region in APPROVED.get(acct, ())

    per_acct = collections.Counter()
    per_pair = collections.Counter()
    writes_unapproved = collections.Counter()
    for line in records:
        r = json.loads(line)
        a, g = r["recipientAccountId"], r["awsRegion"]
        per_acct[a] += 1
        per_pair[(a, g)] += 1
        if not approved(a, g) and r.get("readOnly") is False and "errorCode" not in r:
            writes_unapproved[(a, g)] += 1
    n_unapproved = sum(n for (a, g), n in per_pair.items() if not approved(a, g))
    n_stratus_unapproved = sum(n for (a, g), n in per_pair.items()
                               if a != OTRF_ACCOUNT and not approved(a, g))

    print("inputs:")
    for name, p in paths.items():
        print("  %s  sha256=%s" % (name, file_sha256(p)))
    print("wrote %s  sha256=%s" % (os.path.relpath(args.out, repo), file_sha256(args.out)))
    print("lines: %d = %d records (%d OTRF + %d Stratus) + %d duplicate deliveries"
          % (len(out), len(records), len(otrf), len(rehomed), len(out) - len(records)))
    print("duplicate distance (lines after original): min %d, max %d"
          % (min(distances), max(distances)) if distances else "no duplicates")
    print("Stratus records in an approved region: %d/%d (%.1f%%); unapproved: %d"
          % (len(rehomed) - n_stratus_unapproved, len(rehomed),
             100.0 * (len(rehomed) - n_stratus_unapproved) / len(rehomed), n_stratus_unapproved))
    print("all records in an unapproved region: %d/%d" % (n_unapproved, len(records)))
    print("per account (unique records):")
    for a in sorted(per_acct):
        print("  %s %-20s %4d  approved: %s" % (a, ACCOUNT_NAMES.get(a, "?"), per_acct[a],
                                                ", ".join(APPROVED.get(a, ()))))
    print("per (account, region) (unique records; W = readOnly:false without errorCode):")
    for (a, g) in sorted(per_pair):
        flag = "approved" if approved(a, g) else "UNAPPROVED"
        w = writes_unapproved.get((a, g), 0)
        print("  %s %-15s %4d  %-10s%s" % (a, g, per_pair[(a, g)], flag,
                                          "  W=%d" % w if w else ""))
    if args.verbose:
        print("account map (fake -> demo):")
        for k in sorted(account_map):
            print("  %s -> %s" % (k, account_map[k]))
        print("region map (fake -> real):")
        for k in sorted(region_map):
            print("  %-24s -> %-15s %s" % (k, region_map[k][0], region_map[k][1]))


if __name__ == "__main__":
    main()
