"""python -m pyzk.sim --seed N [--trace] | --seeds K [--first N]: run simulated ensembles."""

from __future__ import annotations

import argparse
import sys
import time

from pyzk.sim.world import SimulationFailure, World


def run_seed(seed: int, *, trace: bool) -> World:
    world = World(seed, trace=trace)
    try:
        world.run()
    finally:
        if trace:
            print("\n".join(world.trace_lines))
    return world


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pyzk.sim")
    parser.add_argument("--seed", type=lambda s: int(s, 0))
    parser.add_argument("--seeds", type=int, default=0, help="run this many seeds")
    parser.add_argument("--first", type=lambda s: int(s, 0), default=0)
    parser.add_argument("--trace", action="store_true")
    args = parser.parse_args(argv)
    seeds = [args.seed] if args.seed is not None else list(range(args.first, args.first + (args.seeds or 1)))
    failures = 0
    probes: dict[str, int] = {}
    started = time.monotonic()
    for seed in seeds:
        try:
            world = run_seed(seed, trace=args.trace)
        except SimulationFailure as exc:
            failures += 1
            print(f"FAIL {exc}", flush=True)
            continue
        for site, hits in world.probe.hits.items():
            probes[site] = probes.get(site, 0) + hits
        print(f"ok seed={seed} peers={world.options.peers} commits={world.writes_committed} "
              f"epochs={len(world.checker.leader_by_epoch)} t={world.now_ms}ms "
              f"trace={world.trace_digest[:16]}", flush=True)
    print(f"{len(seeds) - failures}/{len(seeds)} seeds ok in {time.monotonic() - started:.1f}s")
    for site, hits in sorted(probes.items()):
        print(f"  probe {hits:>6}  {site}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
