#!/usr/bin/env python3
"""Per-thread CPU of running processes, sampled: which thread limits a benchmark (the client's or
the broker's). Every interval, prints the threads of processes whose name (/proc/PID/comm) is one
of NAMES that used more than --min-percent of a core, as process/thread:percent.

    scripts/thread-cpu.py --seconds 300 loadgen netd java > thread-cpu.log &
    target/release/bench --suite read-back --only read-back-hot-1 ...

Bounded: stops after --seconds (default 600).
"""
import argparse
import os
import sys
import time


def sample(names):
    ticks = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm") as file:
                comm = file.read().strip()
            if comm not in names:
                continue
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/stat") as file:
                    stat = file.read()
            except OSError:
                continue
            thread = stat[stat.index("(") + 1 : stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2 :].split()
            ticks[(comm, tid, thread)] = int(fields[11]) + int(fields[12])  # utime + stime
    return ticks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="+", help="process names (comm) to watch")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between samples (default 0.5)")
    parser.add_argument("--seconds", type=float, default=600, help="stop after this long (default 600)")
    parser.add_argument("--min-percent", type=float, default=20, help="print threads above this (default 20)")
    args = parser.parse_args()
    hertz = os.sysconf("SC_CLK_TCK")
    names = set(args.names)
    deadline = time.time() + args.seconds
    previous, previous_at = sample(names), time.time()
    while time.time() < deadline:
        time.sleep(args.interval)
        now, now_at = sample(names), time.time()
        elapsed = now_at - previous_at
        busy = []
        for key, value in now.items():
            if key in previous:
                percent = (value - previous[key]) / hertz / elapsed * 100
                if percent > args.min_percent:
                    busy.append(f"{key[0]}/{key[2]}:{percent:.0f}%")
        if busy:
            print(f"{time.strftime('%H:%M:%S')} " + " ".join(sorted(busy)), flush=True)
        previous, previous_at = now, now_at
    return 0


if __name__ == "__main__":
    sys.exit(main())
