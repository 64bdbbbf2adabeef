#!/usr/bin/python3
"""CPU and voluntary context switches of a JVM's threads over a window, grouped by thread name (digits dropped).

    bench/threadcpu.py PID SECONDS

Polls /proc/PID/task/*/stat and status every 50 ms, so threads that start and end inside the window (a bench run's
buses) are counted with their last values; threads alive at the start count from their values then. Prints user and
system milliseconds and voluntary switches (mostly parks and waits) per group, most CPU first. Used for the
6-partition row in bench/profile-notes.md (stop 51): run it beside `ProfileMain inbound-cpu` with -Dbench.setups=1
and =6 and compare.
"""
import collections
import os
import re
import sys
import time

pid, secs = sys.argv[1], float(sys.argv[2])
tick_ms = 1000 // os.sysconf("SC_CLK_TCK")
first, last = {}, {}


def poll(started):
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            s = open(f"/proc/{pid}/task/{t}/stat").read()
            name = s[s.index("(") + 1:s.rindex(")")]
            f = s[s.rindex(")") + 2:].split()
            vcsw = 0
            for line in open(f"/proc/{pid}/task/{t}/status"):
                if line.startswith("voluntary_ctxt_switches"):
                    vcsw = int(line.split()[1])
            rec = (name, int(f[11]), int(f[12]), vcsw)  # utime, stime: fields 14 and 15 of stat
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue  # ended between listing and reading
        if t not in first:
            first[t] = (name, 0, 0, 0) if started else rec
        last[t] = rec


poll(False)
end = time.time() + secs
while time.time() < end:
    time.sleep(0.05)
    poll(True)
groups = collections.defaultdict(lambda: [0, 0, 0, 0])
for t, (name, u, s, v) in last.items():
    _, u0, s0, v0 = first[t]
    g = groups[re.sub(r"[-#]?\d+$", "", name)]
    g[0] += u - u0
    g[1] += s - s0
    g[2] += 1
    g[3] += v - v0
total = [0, 0]
for name, (u, s, n, v) in sorted(groups.items(), key=lambda x: -(x[1][0] + x[1][1])):
    if u + s == 0 and v == 0:
        continue
    print(f"{name:35} threads {n:4}  user {u * tick_ms:6} ms  sys {s * tick_ms:6} ms  vcsw {v}")
    total[0] += u
    total[1] += s
print("total user", total[0] * tick_ms, "ms, sys", total[1] * tick_ms, "ms")
