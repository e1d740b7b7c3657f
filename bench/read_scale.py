"""Reads past one core: getData throughput of one pyzk process against two on this host.

    python -m bench.read_scale [--rounds 2] [--duration 8] [--connections 32] [--outstanding 32]

A Python process serves on one core (the GIL). pyzk scales reads the way ZooKeeper does:
more replicas. Here the second process is an observer of the first, on the same host, each a
full replica fed over the quorum protocol. Per round, one after the other (A B A B):

- 1 process: a one-member ensemble (standaloneEnabled=false, member 1 leads);
- 2 processes: the same member 1 plus member 2, an observer (`server.2=...:observer`).

The same generator (bench.loadgen, `get` of 100-byte nodes) spreads its connections
round-robin over the processes' client ports. Reported: ops/s, p50/p99, each process's CPU
µs per op, the generator's, the load average, and the ratio 2 / 1. Results go to
bench/results/<stamp>-read-scale.md and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from bench import servers
from bench.loadgen import LoadSpec, run_load

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SINGLE_PARTICIPANT = ("standaloneEnabled=false",)


def one_run(processes: int, args: argparse.Namespace) -> dict[str, object]:
    observers = frozenset({2}) if processes == 2 else frozenset()
    load_before = os.getloadavg()
    ensemble = servers.start_ensemble("pyzk", processes, extra_cfg=SINGLE_PARTICIPANT, observers=observers)
    try:
        modes = servers.ensemble_modes(ensemble)
        spec = LoadSpec(hosts=ensemble.hosts, workload="get", connections=args.connections,
                        outstanding=args.outstanding, processes=args.generator_processes,
                        duration_s=args.duration, warmup_s=args.warmup, member_pids=ensemble.pids)
        result = run_load(spec)
    finally:
        servers.stop_ensemble(ensemble)
    return {
        "processes": processes,
        "modes": modes,
        "ops_per_s": result.ops_per_s,
        "p50_us": result.p50_us,
        "p99_us": result.p99_us,
        "member_cpu_us_per_op": list(result.member_cpu_us_per_op),
        "generator_cpu_us_per_op": result.generator_cpu_us_per_op,
        "load_before": load_before,
        "load_after": os.getloadavg(),
    }


def report(runs: list[dict[str, object]], args: argparse.Namespace, stamp: str) -> str:
    by_n = {n: [r for r in runs if r["processes"] == n] for n in (1, 2)}
    median = {n: statistics.median(float(r["ops_per_s"]) for r in rs) for n, rs in by_n.items()}  # type: ignore[arg-type]
    lines = [
        f"# Reads on 1 vs 2 pyzk processes on one host — {stamp}",
        "",
        f"Machine: {os.cpu_count()} cores; workload get (100-byte nodes), {args.connections} connections x "
        f"{args.outstanding} in flight, {args.generator_processes} generator process(es), "
        f"{args.rounds} rounds (1 then 2 processes per round), {args.duration} s measured + {args.warmup} s warm-up.",
        "1 process: a one-member ensemble (standaloneEnabled=false). 2 processes: the same plus an",
        "observer of it on the same host; connections round-robin over both client ports.",
        "",
        "| round | processes | modes | ops/s | p50 / p99 µs | server CPU µs/op (each) | generator CPU µs/op | load avg before → after |",
        "|---:|---:|---|---:|---|---|---:|---|",
    ]
    for i, r in enumerate(runs):
        cpu = " / ".join(f"{c:.1f}" if c is not None else "?" for c in r["member_cpu_us_per_op"])  # type: ignore[union-attr]
        before = " ".join(f"{x:.2f}" for x in r["load_before"])  # type: ignore[union-attr]
        after = " ".join(f"{x:.2f}" for x in r["load_after"])  # type: ignore[union-attr]
        lines.append(f"| {i // 2} | {r['processes']} | {', '.join(map(str, r['modes']))} | {r['ops_per_s']:,.0f} | "  # type: ignore[arg-type]
                     f"{r['p50_us']:,.0f} / {r['p99_us']:,.0f} | {cpu} | {r['generator_cpu_us_per_op']:.1f} | "
                     f"{before} → {after} |")
    lines += ["", f"Median ops/s: 1 process {median[1]:,.0f}, 2 processes {median[2]:,.0f}; "
                  f"ratio 2 / 1 = **{median[2] / median[1]:.2f}**", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--outstanding", type=int, default=32)
    parser.add_argument("--generator-processes", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()
    runs = []
    for _round in range(args.rounds):
        for processes in (1, 2):
            runs.append(one_run(processes, args))
            print(json.dumps(runs[-1]), flush=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    text = report(runs, args, stamp)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stamp}-read-scale.md").write_text(text)
    (args.out / f"{stamp}-read-scale.json").write_text(json.dumps({"args": vars(args) | {"out": str(args.out)},
                                                                   "runs": runs}, indent=1))
    print(text)


if __name__ == "__main__":
    main()
