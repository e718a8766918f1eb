#!/usr/bin/env python3
"""Whole-process figure for `trailwatch serve`: the corpus's get-records dump (gzip'd
CloudWatch Logs envelopes, base64) re-sent as Firehose HTTP requests of 500 records, gzip'd
like Firehose does, from 2 client threads; prints events per CPU-second of the server, requests
per second and the latency of a request (p50/p99).

    scripts/bench-serve.py CORPUS_DIR [TRAILWATCH_BINARY]
"""
import gzip, json, os, socket, subprocess, sys, tempfile, threading, time, urllib.request

corpus = sys.argv[1]
binary = sys.argv[2] if len(sys.argv) > 2 else "target/release/trailwatch"
records = json.load(open(os.path.join(corpus, "kinesis-records.json")))["Records"]
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
cfg = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
policy = open(os.path.join(corpus, "trailwatch.toml")).read()
cfg.write(policy + f'\n[source.firehose]\nlisten = "127.0.0.1:{port}"\naccess_keys_env = "BENCH_KEYS"\n')
cfg.close()
env = dict(os.environ, BENCH_KEYS="bench-key")
server = subprocess.Popen([binary, "serve", "--config", cfg.name], env=env, stdout=subprocess.DEVNULL)
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", port), 0.1).close(); break
    except OSError:
        time.sleep(0.05)
bodies = []
for i in range(0, len(records), 500):
    rid = f"bench-{i}"
    b = json.dumps({"requestId": rid, "timestamp": 0, "records": [{"data": r["Data"]} for r in records[i:i + 500]]})
    bodies.append((rid, gzip.compress(b.encode())))
lat = []
def send(chunk):
    for rid, body in chunk:
        req = urllib.request.Request(f"http://127.0.0.1:{port}/", data=body, method="POST", headers={
            "content-type": "application/json", "content-encoding": "gzip",
            "x-amz-firehose-request-id": rid, "x-amz-firehose-access-key": "bench-key"})
        t = time.time()
        with urllib.request.urlopen(req) as r:
            assert r.status == 200
        lat.append(time.time() - t)
def cpu():
    f = open(f"/proc/{server.pid}/stat").read().split(")")[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
c0, t0 = cpu(), time.time()
threads = [threading.Thread(target=send, args=(bodies[k::2],)) for k in range(2)]
[t.start() for t in threads]; [t.join() for t in threads]
wall, used = time.time() - t0, cpu() - c0
hwm = next((l.split()[1] for l in open(f"/proc/{server.pid}/status") if l.startswith("VmHWM")), "0")
server.terminate(); server.wait()
events = int(json.load(open(os.path.join(corpus, "manifest.json"))).get("events", 0)) if os.path.exists(os.path.join(corpus, "manifest.json")) else 0
lat.sort()
print(f"{len(bodies)} requests of 500 records in {wall:.2f} s ({len(bodies) / wall:.1f} requests/s); "
      f"server CPU {used:.2f} s" + (f" = {events / used:,.0f} events per CPU-second" if events and used else "") +
      f"; request latency p50 {lat[len(lat) // 2] * 1000:.0f} ms, p99 {lat[int(len(lat) * 0.99)] * 1000:.0f} ms"
      f"; peak RSS {int(hwm) / 1024:.0f} MiB")
