#!/usr/bin/env python3
"""benches/rcu_waits.py PERF_DATA WINDOWS CLOCKS OUTDIR

How long each timed operation of a benchmark slept in the kernel's rcu_barrier(). Used by
benches/lib.sh (rcu_trace_start / rcu_trace_stop / rcu_waits), not run on its own.

Every move of a link to another network namespace (`__dev_change_net_namespace`) calls
rcu_barrier() while it holds the rtnl lock: it sleeps until every RCU callback queued on every CPU
has run, at least one normal (not expedited) grace period. On this machine kind (HZ=250, lazy RCU)
that sleep is 13 to 40 ms and makes up almost all of a move; its length depends on the grace
period in progress, not on the process that moves the link. Subtracting it from each timed
operation leaves what the operation itself costs, with far less noise.

PERF_DATA  what rcu_trace_start records over the timed loop, system-wide, on the monotonic clock:
           the switches of tasks going to sleep uninterruptibly (prev_state D), with their
           kernel call chains, and every wake-up (which ends a sleep)
WINDOWS    one line per timed operation: "LABEL START END" ($EPOCHREALTIME, seconds)
CLOCKS     two lines "REALTIME MONOTONIC", taken before and after the recording (realtime
           is mapped to perf's monotonic clock by the line through them)
OUTDIR     gets, per LABEL, `net-LABEL` (the operation's time minus its rcu_barrier() sleep, in
           microseconds, one line per operation, in order) and `rcu-LABEL` ("SLEEP_US COUNT":
           the sleep and the number of separate sleeps)
"""
import os
import re
import subprocess
import sys

HEADER = re.compile(r"^\s*(\d+)\s+([0-9]+\.[0-9]+):\s+sched:(sched_switch|sched_wakeup):\s+(.*)$")
FIELDS = re.compile(r"(\w+)=(\S+)")


def sleeps(perf_data):
    """(start, end) of every sleep whose kernel call chain holds rcu_barrier, monotonic seconds."""
    out = subprocess.run(
        ["perf", "script", "-i", perf_data, "-F", "tid,time,event,trace,ip,sym"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    pending = {}  # pid -> time it went to sleep inside rcu_barrier
    found = []
    switch = None  # (time, pid) of the switch whose call chain is being read
    barrier = False
    for line in out.splitlines():
        m = HEADER.match(line)
        if m:
            if switch and barrier:
                pending[switch[1]] = switch[0]
            switch, barrier = None, False
            t, kind, f = float(m.group(2)), m.group(3), dict(FIELDS.findall(m.group(4)))
            if kind == "sched_switch":
                switch = (t, f.get("prev_pid"))
            elif f.get("pid") in pending:
                found.append((pending.pop(f["pid"]), t))
        elif switch and line.strip().endswith(" rcu_barrier"):
            barrier = True
    if switch and barrier:
        pending[switch[1]] = switch[0]
    return found


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    perf_data, windows, clocks, outdir = sys.argv[1:]
    with open(clocks) as f:
        (r0, m0), (r1, m1) = [tuple(float(x) for x in ln.split()) for ln in f if ln.strip()]
    scale = (m1 - m0) / (r1 - r0) if r1 > r0 else 1.0

    def mono(real):
        return m0 + (real - r0) * scale

    found = sleeps(perf_data)
    per_label = {}
    with open(windows) as f:
        for ln in f:
            parts = ln.split()
            if len(parts) != 3:
                continue
            label, s, e = parts[0], mono(float(parts[1])), mono(float(parts[2]))
            slept, count = 0.0, 0
            for a, b in found:
                o = min(b, e) - max(a, s)
                if o > 0:
                    slept += o
                    count += 1
            wall_us = round((e - s) * 1e6)
            per_label.setdefault(label, []).append((wall_us - round(slept * 1e6), round(slept * 1e6), count))
    os.makedirs(outdir, exist_ok=True)
    for label, rows in per_label.items():
        with open(os.path.join(outdir, "net-" + label), "w") as f:
            f.writelines("%d\n" % net for net, _, _ in rows)
        with open(os.path.join(outdir, "rcu-" + label), "w") as f:
            f.writelines("%d %d\n" % (us, n) for _, us, n in rows)


if __name__ == "__main__":
    main()
