"""Summarises a stall-sampler log over the read phase (at least two consumer threads busy):
mean run and runqueue-wait share of the consumer threads and the shards, the machine's idle
share (when /proc/stat was sampled), and the CPU of netd against loadgen."""
import sys, collections
def summary(path):
    cpu = {}; threads = collections.defaultdict(dict)
    for line in open(path):
        p = line.split()
        if not p: continue
        if p[0] == "C": cpu[float(p[1])] = [int(x) for x in p[3:]]
        elif p[0] == "T": threads[float(p[1])][p[3]] = (p[2], " ".join(p[4:-3]), int(p[-3]), int(p[-2]))
    times = sorted(threads)
    acc = collections.defaultdict(list)
    for a, b in zip(times, times[1:]):
        dt = (b - a) * 1e9
        rows = [(c, n, (r - threads[a][t][2]) / dt * 100, (w - threads[a][t][3]) / dt * 100)
                for t, (c, n, r, w) in threads[b].items() if t in threads[a]]
        cons = [r for r in rows if r[0] == "loadgen" and r[1] == "loadgen" and r[2] > 5]
        if len(cons) < 4: continue
        shards = [r for r in rows if r[1].startswith("shard")]
        acc["consumer run"].append(sum(r[2] for r in cons) / len(cons))
        acc["consumer wait"].append(sum(r[3] for r in cons) / len(cons))
        acc["shard run"].append(sum(r[2] for r in shards) / len(shards))
        acc["shard wait"].append(sum(r[3] for r in shards) / len(shards))
        acc["netd cpu"].append(sum(r[2] for r in rows if r[0] == "netd"))
        acc["loadgen cpu"].append(sum(r[2] for r in rows if r[0] == "loadgen"))
        near = [t for t in cpu if a - 0.01 <= t <= b + 0.01]
        if len(near) == 2:
            d = [y - x for x, y in zip(cpu[min(near)], cpu[max(near)])]
            acc["idle"].append(100 * d[3] / (sum(d) or 1))
    return {k: sum(v) / len(v) for k, v in acc.items()}, len(acc["shard run"])
for path, label in zip(sys.argv[1::2], sys.argv[2::2]):
    s, n = summary(path)
    print(f"| {label} | {n} | " + " | ".join(f"{s.get(k, float('nan')):.0f}" for k in
          ["consumer run", "consumer wait", "shard run", "shard wait", "netd cpu", "loadgen cpu", "idle"]) + " |")
