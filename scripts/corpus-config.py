#!/usr/bin/env python3
"""Turn the policy.json written by make-org-corpus.py into a trailwatch config (TOML).

Usage: scripts/corpus-config.py CORPUS_DIR/policy.json > corpus.toml
policy.json is {"default": [regions], "accounts": {account_id: [regions]}}.
The corpus's gzip'd JSON lines inflate to more than decode.max_decompressed_bytes (128 MiB,
which caps whole gzip'd input files too), so the config raises it to 4 GiB.
"""
import json
import sys

policy = json.load(open(sys.argv[1]))
q = lambda xs: "[" + ", ".join(json.dumps(x) for x in xs) + "]"
print("[decode]")
print("max_decompressed_bytes = 4294967296")
print()
print("[policy]")
print(f"approved_regions = {q(policy['default'])}")
for acct, regions in sorted(policy.get("accounts", {}).items()):
    print(f'\n[policy.accounts."{acct}"]')
    print(f"approved_regions = {q(regions)}")
