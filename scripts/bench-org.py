#!/usr/bin/env python3
"""What one read of the organization costs: API calls and wall time of `trailwatch org`
against moto's Organizations holding ACCOUNTS accounts in OUS OUs (two levels) with SCPS
region-deny SCPs attached across root, OUs and some accounts.

Needs: moto (scripts/test installs it into .emu/venv) and a release build
(`cargo build --release`). Usage: scripts/bench-org.py [ACCOUNTS] [OUS] [SCPS]
(default 5000 100 12); TRAILWATCH_BIN=A,B times other binaries (A/B), RUNS=N runs each (default 3). Starts moto on a free port itself; building the organization in moto
takes a while (a few minutes for 5,000 accounts).
"""
import json, os, socket, subprocess, sys, tempfile, time

import boto3

accounts, ous, scps = (int(a) for a in (sys.argv[1:] + ['5000', '100', '12'][len(sys.argv) - 1:])[:3])
root_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
moto_bin = os.environ.get('TRAILWATCH_MOTO', os.path.join(root_dir, '.emu/venv/bin/moto_server'))
s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()
moto = subprocess.Popen([moto_bin, '-p', str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
ep = f'http://127.0.0.1:{port}'
try:
    for _ in range(100):
        try:
            socket.create_connection(('127.0.0.1', port), 0.2).close(); break
        except OSError:
            time.sleep(0.1)
    o = boto3.client('organizations', endpoint_url=ep, region_name='us-east-1',
                     aws_access_key_id='test', aws_secret_access_key='test')
    o.create_organization(FeatureSet='ALL')
    root = o.list_roots()['Roots'][0]['Id']
    t0 = time.time()
    top = [o.create_organizational_unit(ParentId=root, Name=f'top{i}')['OrganizationalUnit']['Id']
           for i in range(max(1, ous // 10))]
    leaf = [o.create_organizational_unit(ParentId=top[i % len(top)], Name=f'ou{i}')['OrganizationalUnit']['Id']
            for i in range(ous - len(top))] or top
    ids = []
    for i in range(accounts):
        r = o.create_account(Email=f'a{i}@example.com', AccountName=f'acct{i}')
        ids.append(r['CreateAccountStatus']['AccountId'])
    for i, a in enumerate(ids):
        o.move_account(AccountId=a, SourceParentId=root, DestinationParentId=leaf[i % len(leaf)])
    targets = [root] + top + leaf[:3] + ids[:5]
    for i in range(scps):
        doc = {"Version": "2012-10-17", "Statement": [{"Sid": f"R{i}", "Effect": "Deny", "NotAction": ["iam:*"],
               "Resource": "*", "Condition": {"StringNotEquals": {"aws:RequestedRegion": ["us-east-1", "eu-west-1"]}}}]}
        p = o.create_policy(Name=f'regions{i}', Description='', Type='SERVICE_CONTROL_POLICY',
                            Content=json.dumps(doc))['Policy']['PolicySummary']['Id']
        o.attach_policy(PolicyId=p, TargetId=targets[i % len(targets)])
    print(f'built in moto: {accounts} accounts, {ous} OUs, {scps} SCPs in {time.time() - t0:.0f} s', flush=True)
    cfg = tempfile.NamedTemporaryFile('w', suffix='.toml', delete=False)
    cfg.write('[policy]\napproved_regions = ["us-east-1"]\n[organization]\nsource = "aws"\n'); cfg.close()
    env = dict(os.environ, AWS_ENDPOINT_URL=ep, AWS_ACCESS_KEY_ID='test', AWS_SECRET_ACCESS_KEY='test',
               AWS_REGION='us-east-1', TRAILWATCH_LOG='error')
    bins = os.environ.get('TRAILWATCH_BIN', os.path.join(root_dir, 'target/release/trailwatch')).split(',')
    for run, binary in [(r, b) for b in bins for r in range(int(os.environ.get('RUNS', '3')))]:
        t = time.time()
        out = subprocess.run(['/usr/bin/time', '-f', '%U %S %M', binary,
                              'org', '--config', cfg.name], env=env, capture_output=True, text=True)
        wall = time.time() - t
        summary = [l for l in out.stderr.splitlines() if l.startswith('trailwatch org:')]
        user, sys_, rss = out.stderr.strip().splitlines()[-1].split()
        print(f'{binary} run {run + 1}: {summary[0] if summary else out.stderr[-500:]}; wall {wall:.2f} s, '
              f'CPU {float(user) + float(sys_):.2f} s, peak {int(rss) // 1024} MiB', flush=True)
finally:
    moto.terminate()
