#!/usr/bin/env python3
"""PutRecord to alert delivered, p50 and p99: polling at 1 s, polling at 200 ms, and enhanced
fan-out, in one run, against the same local Kinesis (ministack: it serves GetRecords and
SubscribeToShard) and the same webhook receiver.

Run with the Python of moto's virtualenv (it has boto3) after `scripts/test` installed the
emulators: `.emu/venv/bin/python scripts/bench-latency.py [--bin target/release/trailwatch]
[--events 200]`. Each mode gets its own 4-shard stream; one CloudTrail event (an alert) is put
every 50 ms; its latency is the time from PutRecord returning to the webhook receiving the
alert (the webhook sink, batches of 100, sent as soon as queued).
"""
import argparse, gzip, json, os, socket, subprocess, sys, tempfile, threading, time, uuid
from http.server import BaseHTTPRequestHandler, HTTPServer

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ap = argparse.ArgumentParser()
ap.add_argument("--bin", default=os.path.join(ROOT, "target/debug/trailwatch"))
ap.add_argument("--events", type=int, default=200)
args = ap.parse_args()


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


# The local Kinesis.
kport = free_port()
ministack = subprocess.Popen(
    [os.path.join(ROOT, ".emu/ministack/bin/python"), "-m", "ministack"],
    env=dict(os.environ, GATEWAY_PORT=str(kport), BIND_HOST="127.0.0.1", LOG_LEVEL="WARNING"),
    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
for _ in range(300):
    try:
        socket.create_connection(("127.0.0.1", kport), timeout=0.2).close(); break
    except OSError:
        time.sleep(0.1)
EP = f"http://127.0.0.1:{kport}"
k = boto3.client("kinesis", endpoint_url=EP, region_name="us-east-1",
                 aws_access_key_id="test", aws_secret_access_key="test")

# The webhook receiver: when each alert (by event id) arrived.
seen = {}


class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        now = time.time()
        for item in json.loads(body):
            seen.setdefault(item.get("event_id"), now)
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")

    def log_message(self, *a):
        pass


hport = free_port()
threading.Thread(target=HTTPServer(("127.0.0.1", hport), Hook).serve_forever, daemon=True).start()

base = json.loads(open(os.path.join(ROOT, "tests/fixtures/stratus_sample.jsonl")).readline())


def record(eid):
    r = dict(base); r["eventID"] = eid; r["awsRegion"] = "sa-east-1"; r["readOnly"] = False
    r.pop("errorCode", None)
    env = {"messageType": "DATA_MESSAGE", "owner": "1", "logGroup": "g", "logStream": "s",
           "subscriptionFilters": ["f"], "logEvents": [{"id": "1", "timestamp": 1, "message": json.dumps(r)}]}
    return gzip.compress(json.dumps(env).encode())


def run(mode, source):
    name = f"lat-{mode}-{int(time.time())}"
    k.create_stream(StreamName=name, ShardCount=4)
    while k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
        time.sleep(0.1)
    d = tempfile.mkdtemp()
    cfg = os.path.join(d, "t.toml")
    open(cfg, "w").write(f"""[policy]
approved_regions = ["us-east-1"]
[source.kinesis]
stream = "{name}"
start = "trim_horizon"
{source}
[checkpoint]
path = "{d}/state.json"
[delivery]
state_dir = "{d}/delivery"
[[sinks]]
name = "hook"
type = "webhook"
url = "http://127.0.0.1:{hport}/"
[[routes]]
stream = "siem"
sinks = ["hook"]
""")
    env = dict(os.environ, AWS_ENDPOINT_URL=EP, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
               AWS_REGION="us-east-1", TRAILWATCH_LOG="error")
    p = subprocess.Popen([args.bin, "run", "--config", cfg], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    # Warm up: wait until a first alert is delivered.
    warm = str(uuid.uuid4())
    k.put_record(StreamName=name, Data=record(warm), PartitionKey=warm)
    t0 = time.time()
    while warm not in seen and time.time() - t0 < 30:
        time.sleep(0.05)
    sent = {}
    for _ in range(args.events):
        eid = str(uuid.uuid4())
        k.put_record(StreamName=name, Data=record(eid), PartitionKey=eid)
        sent[eid] = time.time()
        time.sleep(0.05)
    time.sleep(3)
    p.terminate(); p.wait()
    lat = sorted((seen[e] - t) * 1000 for e, t in sent.items() if e in seen)
    if not lat:
        return f"{mode:<16} nothing delivered"
    q = lambda f: lat[min(len(lat) - 1, int(len(lat) * f))]
    return f"{mode:<16} n={len(lat)}/{len(sent)}  p50={q(0.5):.0f} ms  p99={q(0.99):.0f} ms  max={lat[-1]:.0f} ms"


try:
    print(f"PutRecord -> alert delivered to a webhook ({args.events} events, one every 50 ms; {args.bin}; ministack)")
    for mode, source in [("polling 1s", 'poll_interval = "1s"'),
                         ("polling 200ms", 'poll_interval = "200ms"'),
                         ("efo", 'consumer = "efo"\nconsumer_name = "trailwatch"')]:
        print(run(mode, source), flush=True)
finally:
    ministack.terminate(); ministack.wait()
