"""python -m pyzk.sim --seed N [--trace] | --seeds K [--first N] | --seeds A-B: run simulated ensembles."""

from __future__ import annotations

import argparse
import sys
import time
import traceback

from pyzk.sim.world import SimulationFailure, World


def run_seed(seed: int, *, trace: bool) -> World:
    world = World(seed, trace=trace)
    try:
        world.run()
    finally:
        if trace:
            print("\n".join(world.trace_lines))
    return world


def _seed_range(text: str, first: int) -> list[int]:
    """`K` (K seeds from --first) or `A-B` (seeds A to B inclusive)."""
    if "-" in text:
        lo, hi = text.split("-", 1)
        return list(range(int(lo, 0), int(hi, 0) + 1))
    return list(range(first, first + int(text, 0)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pyzk.sim")
    parser.add_argument("--seed", type=lambda s: int(s, 0))
    parser.add_argument("--seeds", default="", help="K (this many seeds from --first) or A-B (inclusive)")
    parser.add_argument("--first", type=lambda s: int(s, 0), default=0)
    parser.add_argument("--trace", action="store_true")
    args = parser.parse_args(argv)
    seeds = [args.seed] if args.seed is not None else _seed_range(args.seeds or "1", args.first)
    failures: list[str] = []
    probes: dict[str, int] = {}
    ops = {"ok": 0, "error": 0, "indeterminate": 0, "moves": 0, "sessions": 0}
    started = time.monotonic()
    for seed in seeds:
        try:
            world = run_seed(seed, trace=args.trace)
        except SimulationFailure as exc:
            failures.append(str(exc))
            print(f"FAIL {exc}", flush=True)
            continue
        except Exception as exc:  # a crash is a failed seed too; the batch goes on
            failures.append(f"seed {seed}: crashed: {type(exc).__name__}: {exc}")
            print(f"FAIL {failures[-1]}", flush=True)
            traceback.print_exc()
            continue
        for site, hits in world.probe.hits.items():
            probes[site] = probes.get(site, 0) + hits
        checker = world.client_checker
        ops["ok"] += checker.ok
        ops["error"] += checker.errors
        ops["indeterminate"] += checker.indeterminate
        ops["moves"] += sum(c.moves for c in world.clients)
        ops["sessions"] += sum(c.sessions for c in world.clients)
        print(f"ok seed={seed} peers={world.options.peers}"
              f"{f'+{world.options.observers}obs' if world.options.observers else ''}"
              f"{f'+{world.options.spares}spare' if world.options.spares else ''}"
              f"{' reconfig' if world.options.reconfig else ''} commits={world.writes_committed} "
              f"epochs={len(world.checker.leader_by_epoch)} clients={len(world.clients)} "
              f"replies={checker.ok}+{checker.errors}err indeterminate={checker.indeterminate} "
              f"t={world.now_ms}ms trace={world.trace_digest[:16]}", flush=True)
    print(f"{len(seeds) - len(failures)}/{len(seeds)} seeds ok in {time.monotonic() - started:.1f}s; "
          f"failures {len(failures)}; client ops ok {ops['ok']}, error replies {ops['error']}, "
          f"indeterminate {ops['indeterminate']}; session moves {ops['moves']}, sessions {ops['sessions']}")
    for site, hits in sorted(probes.items()):
        print(f"  probe {hits:>6}  {site}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
