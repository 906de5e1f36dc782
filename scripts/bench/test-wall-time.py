#!/usr/bin/env python3
"""Where the test suite's wall time goes, from a TRX file (dotnet test --logger "trx;LogFileName=x.trx").

Prints: the run's wall time; per fixture its span (first test start to last test end), the summed test durations, and the
idle time just before its first test (nothing running: its OneTimeSetUp, or the previous fixture's teardown); the time
during which exactly one test ran (and which fixtures those were); and the time during which no test ran at all.
Usage: scripts/bench/test-wall-time.py x.trx [top-N]
"""
import sys, xml.etree.ElementTree as ET
from datetime import datetime
from collections import defaultdict

def ts(s):
    # 2026-11-29T10:15:20.1234567+00:00 -> datetime (trim 7-digit fractions)
    if '.' in s:
        head, rest = s.split('.', 1)
        frac = ''.join(c for c in rest[:7] if c.isdigit())
        tz = rest[len(frac):] if rest[len(frac):] else '+00:00'
        s = f"{head}.{frac[:6]}{tz}"
    return datetime.fromisoformat(s).timestamp()

path = sys.argv[1]; top = int(sys.argv[2]) if len(sys.argv) > 2 else 25
ns = {'t': 'http://microsoft.com/schemas/VisualStudio/TeamTest/2010'}
root = ET.parse(path).getroot()
cls = {}
for ut in root.iterfind('.//t:UnitTest', ns):
    tm = ut.find('t:TestMethod', ns)
    cls[ut.get('id')] = tm.get('className').split('.')[-1]
runs = []
for r in root.iterfind('.//t:UnitTestResult', ns):
    if r.get('startTime') is None: continue
    s, e = ts(r.get('startTime')), ts(r.get('endTime'))
    runs.append((s, e, cls.get(r.get('testId'), '?'), r.get('testName'), r.get('outcome')))
runs.sort()
t0 = min(r[0] for r in runs); t1 = max(r[1] for r in runs)
times = root.find('t:Times', ns)
print(f"tests: {len(runs)}  first start -> last end: {(t1-t0)/60:.1f} min", end='')
if times is not None and times.get('start') and times.get('finish'):
    print(f"  (run: {(ts(times.get('finish'))-ts(times.get('start')))/60:.1f} min)")
else: print()
print(f"summed test durations: {sum(e-s for s,e,*_ in runs)/60:.1f} min")
failed = [r for r in runs if r[4] not in ('Passed', 'NotExecuted')]
if failed: print("not passed:", *[f"{r[2]}.{r[3]} {r[4]}" for r in failed], sep='\n  ')

# Sweep: concurrency over time.
events = sorted([(s, 1, i) for i, (s, *_ ) in enumerate(runs)] + [(e, -1, i) for i, (s, e, *_) in enumerate(runs)])
active = set(); last = t0; alone = defaultdict(float); idle = 0.0; idle_before = defaultdict(float); conc = defaultdict(float)
pending_idle = 0.0
for t, kind, i in events:
    dt = t - last
    if dt > 0:
        conc[len(active)] += dt
        if len(active) == 1: alone[runs[next(iter(active))][2]] += dt
        if len(active) == 0: idle += dt; pending_idle += dt
    last = t
    if kind == 1:
        if pending_idle > 0: idle_before[runs[i][2]] += pending_idle; pending_idle = 0.0
        active.add(i)
    else: active.discard(i)
wall = t1 - t0
print(f"time with 0 tests running: {idle/60:.1f} min; exactly 1: {conc[1]/60:.1f} min; 2: {conc[2]/60:.1f}; 3: {conc[3]/60:.1f}; 4+: {sum(v for k,v in conc.items() if k>=4)/60:.1f}")
print(f"ratios: 0 tests running {idle/wall:.0%} of the wall time, exactly 1 {conc[1]/wall:.0%}, 2 or more {sum(v for k,v in conc.items() if k>=2)/wall:.0%}; "
      f"parallel efficiency (summed test time / wall time) {sum(e-s for s,e,*_ in runs)/wall:.2f}")

by = defaultdict(lambda: [1e18, 0, 0.0, 0])
for s, e, c, n, o in runs:
    b = by[c]; b[0] = min(b[0], s); b[1] = max(b[1], e); b[2] += e - s; b[3] += 1
rows = sorted(by.items(), key=lambda kv: -(kv[1][1] - kv[1][0] + idle_before[kv[0]]))
print(f"\n{'fixture':42} {'tests':>5} {'span s':>8} {'idle before s':>13} {'alone s':>8} {'sum s':>8}  start")
for c, (s, e, d, n) in rows[:top]:
    print(f"{c[:42]:42} {n:5} {e-s:8.1f} {idle_before[c]:13.1f} {alone[c]:8.1f} {d:8.1f}  +{(s-t0)/60:5.1f} min")
print("\nslowest tests:")
for s, e, c, n, o in sorted(runs, key=lambda r: r[0]-r[1])[:12]:
    print(f"  {e-s:7.1f} s  {c}.{n[:90]}")
