#!/usr/bin/env python3
"""Medians over rounds of one bench suite: reads the summary.json of each report directory given
(the same suite run several times, e.g. `bench --suite read-back --out DIR-round-N`) and prints a
markdown table per run: every round's value and the median, per broker, and the ratios of the
medians against kafka. Short runs (a 2 GiB read-back takes 1-3 s) spread widely from round to
round on this machine; one round's ratio says little.

    scripts/bench-rounds.py results/X/read-back-suite results/X/read-back-suite-round-2 ... > rounds.md
    scripts/bench-rounds.py --metric "publish MiB/s" DIR...   # other metrics (repeatable)
"""
import argparse
import json
import statistics
import sys

DEFAULT_METRICS = ["read-back MiB/s (first record to last)", "publish MiB/s", "broker CPU seconds"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dirs", nargs="+", help="report directories holding summary.json, one per round")
    parser.add_argument("--metric", action="append", help="a metric of summary.json (default: read-back, publish, CPU)")
    args = parser.parse_args()
    metrics = args.metric or DEFAULT_METRICS
    rounds = []
    for directory in args.dirs:
        try:
            with open(f"{directory}/summary.json") as file:
                rounds.append(json.load(file))
        except (OSError, json.JSONDecodeError) as error:
            print(f"bench-rounds: {directory}: {error}", file=sys.stderr)
            return 2
    runs = [name for name in rounds[0] if isinstance(rounds[0][name], dict)]
    print(f"Rounds: {len(rounds)} ({', '.join(args.dirs)}). Each cell: every round's value; median in bold.")
    for run in runs:
        present = [r for r in rounds if run in r]
        brokers = sorted({broker for r in present for metric in metrics for broker in r[run].get(metric, {})})
        if not brokers:
            continue
        others = [broker for broker in brokers if broker != "kafka"]
        print(f"\n## {run} ({len(present)} rounds)\n")
        header = ["metric"] + brokers + ([f"{broker} / kafka (medians)" for broker in others] if "kafka" in brokers else [])
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for metric in metrics:
            medians = {}
            cells = []
            for broker in brokers:
                values = [r[run][metric][broker] for r in present if broker in r[run].get(metric, {})]
                if not values:
                    cells.append("–")
                    continue
                medians[broker] = statistics.median(values)
                cells.append(", ".join(f"{value:,.1f}" for value in values) + f"; **{medians[broker]:,.1f}**")
            ratios = []
            if "kafka" in brokers:
                for broker in others:
                    kafka = medians.get("kafka")
                    ratios.append(f"{medians[broker] / kafka:.2f}" if kafka and broker in medians else "–")
            print(f"| {metric} | " + " | ".join(cells + ratios) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
