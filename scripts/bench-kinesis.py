#!/usr/bin/env python3
"""Latency and steady-state cost of `trailwatch run` against kinesalite.

Needs: kinesalite listening on 127.0.0.1:45671 (scripts/test installs it into .emu/:
`.emu/node_modules/.bin/kinesalite --port 45671 --createStreamMs 0 &`), boto3
(`pip install boto3`), and a release build (`cargo build --release`).

Prints PutRecord-to-alert latency (200 events, one every 50 ms, default 1 s poll interval)
and the worker's CPU and RSS at about 1,000 events/s for 20 s on a 4-shard stream.
"""
import boto3, gzip, json, time, subprocess, threading, os, uuid

EP='http://127.0.0.1:45671'
k = boto3.client('kinesis', endpoint_url=EP, region_name='us-east-1', aws_access_key_id='test', aws_secret_access_key='test')
name='lat-%d' % int(time.time())
k.create_stream(StreamName=name, ShardCount=4); time.sleep(0.5)
cfg='/tmp/lat.toml'
open(cfg,'w').write(f'''[policy]
approved_regions = ["us-east-1"]
[source.kinesis]
stream = "{name}"
start = "trim_horizon"
[checkpoint]
path = "/tmp/lat-{name}.json"
''')
env=dict(os.environ, AWS_ENDPOINT_URL_KINESIS=EP, AWS_ACCESS_KEY_ID='test', AWS_SECRET_ACCESS_KEY='test', AWS_REGION='us-east-1', TRAILWATCH_LOG='error')
p=subprocess.Popen(['./target/release/trailwatch','run','--config',cfg], stdout=subprocess.PIPE, env=env)
seen={}
def reader():
    for line in p.stdout:
        seen[json.loads(line)['event_id']]=time.time()
threading.Thread(target=reader, daemon=True).start()
base=json.loads(open('./tests/fixtures/stratus_sample.jsonl').readline())
def rec(eid):
    r=dict(base); r['eventID']=eid; r['awsRegion']='sa-east-1'; r['readOnly']=False; r.pop('errorCode',None); return r
# 1) latency: one event every 50 ms
sent={}
for i in range(200):
    eid=str(uuid.uuid4()); env_={"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s","subscriptionFilters":["f"],"logEvents":[{"id":"1","timestamp":1,"message":json.dumps(rec(eid))}]}
    k.put_record(StreamName=name, Data=gzip.compress(json.dumps(env_).encode()), PartitionKey=eid); sent[eid]=time.time(); time.sleep(0.05)
time.sleep(3)
lat=sorted((seen[e]-t)*1000 for e,t in sent.items() if e in seen)
print(f"latency put->alert: n={len(lat)}/{len(sent)} p50={lat[len(lat)//2]:.0f} ms p99={lat[int(len(lat)*0.99)-1]:.0f} ms max={lat[-1]:.0f} ms")
# 2) steady 1000 events/s for 20 s: 20 PutRecords/s of 50-event envelopes (mostly approved: 5% alert)
def cpu(pid):
    f=open(f'/proc/{pid}/stat').read().split(); return (int(f[13])+int(f[14]))/os.sysconf('SC_CLK_TCK')
c0=cpu(p.pid); t0=time.time(); n=0
while time.time()-t0<20:
    msgs=[]
    for j in range(50):
        r=rec(str(uuid.uuid4())); r['awsRegion']='us-east-1' if j%20 else 'sa-east-1'; msgs.append({"id":str(j),"timestamp":1,"message":json.dumps(r)})
    env_={"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s","subscriptionFilters":["f"],"logEvents":msgs}
    k.put_record(StreamName=name, Data=gzip.compress(json.dumps(env_).encode()), PartitionKey=str(n)); n+=50
    time.sleep(max(0, t0+n/1000-time.time()))
time.sleep(2)
c1=cpu(p.pid); el=time.time()-t0
rss=[l for l in open(f'/proc/{p.pid}/status') if l.startswith('VmRSS') or l.startswith('VmHWM')]
print(f"steady: {n} events in {el:.1f}s ({n/el:.0f}/s): worker CPU {c1-c0:.2f}s = {100*(c1-c0)/el:.1f}% of a core; {' '.join(x.strip() for x in rss)}")
p.terminate(); p.wait()
