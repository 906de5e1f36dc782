#!/usr/bin/env bash
# Issue 13 figures: the EC2 door beside the REST API in one run, on the simulated driver.
#   - DescribeInstances over N simulated instances (p50, p99 of R calls) vs GET /api/v1/instances (all pages);
#   - RunInstances MaxCount=100 until all are running vs POST /api/v1/instances count=100 until all are RUNNING.
# Clients: boto3 (Debian's python3-boto3) for EC2, python's urllib for REST. Goal: EC2 <= 1.2 x REST.
# The *_wire_* figures are the servers' part: the same DescribeInstances over a presigned URL and the same REST pages,
# each read but not parsed (botocore's pure-Python XML parsing dominates boto3's end-to-end time).
# Both doors are warmed up with one launch each before the RunInstances timing. run100_call_*_wire_s: the launch call's
# server part (presigned RunInstances and REST's POST, each read but not parsed); run100_call_botocore_parse_s: what
# botocore then spends parsing that one RunInstances answer (client side, pure Python).
# Usage: scripts/bench/ec2-vs-rest.sh [INSTANCES] [CALLS]   (default 1000 and 30)
source "$(dirname "$0")/lib.sh"
count=${1:-1000}
calls=${2:-30}
binary=$(bench_binary)
work=$(mktemp -d)
trap 'stop_server; rm -rf "$work"' EXIT
PORT=$(free_port)
# The default user-mode network is a /24 (240 leases); a wider one holds every simulated instance.
start_server "$binary" "$work/data" "$PORT" STRATUSLAB__Compute__Driver=simulated STRATUSLAB__Compute__SimulatedDelayMs=0 \
  STRATUSLAB__Networking__DefaultNetwork__Cidr=10.0.0.0/16
api POST /api/v1/hosts '{"name":"sim-bench","driver":"simulated","cpus":100000,"memoryMiB":100000000}' >/dev/null
api PUT /api/v1/quotas/admin '{"vms":100000,"cpus":100000,"memoryMiB":100000000}' >/dev/null
key=$(api POST /api/v1/users/admin/access-keys '{}')
export EC2_KEY=$(json 'j["accessKeyId"]' <<<"$key") EC2_SECRET=$(json 'j["secretAccessKey"]' <<<"$key") PORT TOKEN COUNT=$count CALLS=$calls
python3 - <<'PY'
import boto3, json, os, statistics, time, urllib.request
from botocore.config import Config
port, token, count, calls = os.environ['PORT'], os.environ['TOKEN'], int(os.environ['COUNT']), int(os.environ['CALLS'])
base = f'http://127.0.0.1:{port}'
ec2 = boto3.client('ec2', endpoint_url=base + '/ec2/', region_name='stratuslab-1', aws_access_key_id=os.environ['EC2_KEY'],
                   aws_secret_access_key=os.environ['EC2_SECRET'], config=Config(retries={'max_attempts': 1}))
def rest(method, path, body=None):
    req = urllib.request.Request(base + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={'Authorization': 'Bearer ' + token, 'Content-Type': 'application/json'})
    with urllib.request.urlopen(req, timeout=600) as r: return json.loads(r.read() or b'null')
def rest_all():
    out, off = [], 0
    while True:
        page = rest('GET', f'/api/v1/instances?limit=1000&offset={off}')
        out += page; off += 1000
        if len(page) < 1000: return out
def ec2_all():
    return [i for p in ec2.get_paginator('describe_instances').paginate() for r in p['Reservations'] for i in r['Instances']]
def wait(pred, what):
    t = time.time()
    while not pred():
        if time.time() - t > 600: raise SystemExit(what + ' did not finish in 600 s')
        time.sleep(0.2)
def pct(v, p): v = sorted(v); return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]
ami = ec2.describe_images()['Images'][0]['ImageId']

# Warm both paths up (JIT, caches) with one instance each, so neither door pays the first call alone.
warm = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, InstanceType='t1.tiny')['Instances'][0]['InstanceId']
rest('POST', '/api/v1/instances', {'instanceType': 't1.tiny', 'count': 1})
ec2.describe_instances(InstanceIds=[warm]); rest('GET', '/api/v1/instances?state=RUNNING&limit=1000')

# RunInstances MaxCount=100 vs REST count=100, each until all are running.
t = time.time(); r = ec2.run_instances(ImageId=ami, MinCount=100, MaxCount=100, InstanceType='t1.tiny')
ec2_call = time.time() - t
ids = [i['InstanceId'] for i in r['Instances']]
wait(lambda: sum(len(x['Instances']) for x in ec2.describe_instances(InstanceIds=ids, Filters=[{'Name': 'instance-state-name', 'Values': ['running']}])['Reservations']) == 100, 'EC2 launch')
ec2_run = time.time() - t
t = time.time(); made = rest('POST', '/api/v1/instances', {'instanceType': 't1.tiny', 'count': 100})
rest_call = time.time() - t
rest_ids = {m['id'] for m in made}
wait(lambda: sum(1 for i in rest('GET', '/api/v1/instances?state=RUNNING&limit=1000') if i['id'] in rest_ids) == 100, 'REST launch')
rest_run = time.time() - t

# The server's part of the launch call alone: RunInstances MaxCount=100 over a presigned URL, the XML read but not parsed
# (botocore's pure-Python parsing of 100 instances is most of boto3's call time), beside REST's call read but not parsed.
url = ec2.generate_presigned_url('run_instances', Params={'ImageId': ami, 'MinCount': 100, 'MaxCount': 100, 'InstanceType': 't1.tiny'}, ExpiresIn=300)
t = time.time(); raw = urllib.request.urlopen(urllib.request.Request(url, data=b'', method='POST'), timeout=600).read(); ec2_call_wire = time.time() - t
from botocore import parsers
t = time.time(); parsers.EC2QueryParser().parse({'body': raw, 'headers': {}, 'status_code': 200}, ec2.meta.service_model.operation_model('RunInstances').output_shape)
ec2_call_parse = time.time() - t
req = urllib.request.Request(base + '/api/v1/instances', method='POST', data=json.dumps({'instanceType': 't1.tiny', 'count': 100}).encode(),
                             headers={'Authorization': 'Bearer ' + token, 'Content-Type': 'application/json'})
t = time.time(); urllib.request.urlopen(req, timeout=600).read(); rest_call_wire = time.time() - t

# Fill up to COUNT instances, then time the listings.
left = count - 402
while left > 0:
    n = min(left, 1000); rest('POST', '/api/v1/instances', {'instanceType': 't1.tiny', 'count': n}); left -= n
wait(lambda: len([i for i in rest_all() if i['state'] == 'RUNNING']) >= count, 'fill')
def rest_wire():
    off = 0
    while True:
        req = urllib.request.Request(base + f'/api/v1/instances?limit=1000&offset={off}', headers={'Authorization': 'Bearer ' + token})
        body = urllib.request.urlopen(req, timeout=600).read(); off += 1000
        if body.count(b'"id":') < 1000: return
ec2_times, rest_times, wire_times, rest_wire_times = [], [], [], []
for _ in range(calls):
    t = time.time(); n1 = len(ec2_all()); ec2_times.append(time.time() - t)
    t = time.time(); n2 = len(rest_all()); rest_times.append(time.time() - t)
    # The server's part alone: the same DescribeInstances over a presigned URL, the XML read but not parsed by botocore.
    url = ec2.generate_presigned_url('describe_instances', Params={}, ExpiresIn=300)
    t = time.time(); urllib.request.urlopen(urllib.request.Request(url, data=b'', method='POST'), timeout=600).read(); wire_times.append(time.time() - t)
    # ... beside REST's pages read but not parsed either.
    t = time.time(); rest_wire(); rest_wire_times.append(time.time() - t)
print(json.dumps({'instances': n1, 'rest_instances': n2, 'calls': calls,
    'describe_ec2_p50_s': round(statistics.median(ec2_times), 3), 'describe_ec2_p99_s': round(pct(ec2_times, 99), 3),
    'describe_rest_p50_s': round(statistics.median(rest_times), 3), 'describe_rest_p99_s': round(pct(rest_times, 99), 3),
    'describe_ratio_p50': round(statistics.median(ec2_times) / statistics.median(rest_times), 2),
    'describe_ec2_wire_p50_s': round(statistics.median(wire_times), 3), 'describe_ec2_wire_p99_s': round(pct(wire_times, 99), 3),
    'describe_rest_wire_p50_s': round(statistics.median(rest_wire_times), 3), 'describe_rest_wire_p99_s': round(pct(rest_wire_times, 99), 3),
    'describe_wire_ratio_p50': round(statistics.median(wire_times) / statistics.median(rest_wire_times), 2),
    'describe_wire_ratio_p99': round(pct(wire_times, 99) / pct(rest_wire_times, 99), 2),
    'run100_ec2_s': round(ec2_run, 2), 'run100_rest_s': round(rest_run, 2), 'run100_ratio': round(ec2_run / rest_run, 2),
    'run100_call_ec2_s': round(ec2_call, 3), 'run100_call_rest_s': round(rest_call, 3), 'run100_call_ratio': round(ec2_call / rest_call, 2),
    'run100_call_ec2_wire_s': round(ec2_call_wire, 3), 'run100_call_rest_wire_s': round(rest_call_wire, 3),
    'run100_call_wire_ratio': round(ec2_call_wire / rest_call_wire, 2), 'run100_call_botocore_parse_s': round(ec2_call_parse, 3)}, indent=1))
PY
