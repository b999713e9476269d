#!/usr/bin/env python3
# scratch: every 100 ms, per-thread schedstat of loadgen/netd threads and ss -tmi of loopback sockets
import os, sys, time, subprocess
out = open(sys.argv[1], "w"); seconds = float(sys.argv[2])
end = time.time() + seconds
while time.time() < end:
    t = time.time()
    lines = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit(): continue
        try:
            comm = open(f"/proc/{pid}/comm").read().strip()
            if comm not in ("loadgen", "netd"): continue
            for tid in os.listdir(f"/proc/{pid}/task"):
                name = open(f"/proc/{pid}/task/{tid}/comm").read().strip()
                run, wait, slices = open(f"/proc/{pid}/task/{tid}/schedstat").read().split()
                lines.append(f"T {t:.3f} {comm} {tid} {name} {run} {wait} {slices}")
        except OSError:
            continue
    lines.append("C %.3f %s" % (t, open("/proc/stat").readline().strip()))
    for pid in os.listdir("/proc"):
        if not pid.isdigit(): continue
        try:
            st = open(f"/proc/{pid}/stat").read()
            f = st[st.rindex(")") + 2:].split()
            lines.append("P %.3f %s %s %d" % (t, pid, st[st.index("(")+1:st.rindex(")")].replace(" ", "_"), int(f[11]) + int(f[12])))
        except (OSError, ValueError):
            continue
    ss = subprocess.run(["ss", "-tmiHn", "state", "established"], capture_output=True, text=True).stdout
    out.write("\n".join(lines) + "\n")
    for line in ss.replace("\n\t", " ").splitlines():
        if "127.0.0.1" in line:
            out.write(f"S {t:.3f} {line.strip()}\n")
    out.flush()
    time.sleep(max(0, 0.1 - (time.time() - t)))
