"""Jepsen-shaped safety runs on 3-member ensembles: workload + nemesis, heal, quiet, check.

    python -m tests.jepsen.run --target pyzk --seeds 1-20 --duration 120 \\
        [--workers 5] [--nemesis all|kill,pause,partition|none] [--quiet 10]

Per seed: a fresh ensemble (dataDirs under a temp dir), the workers and the nemesis for
--duration seconds, then workers stop, every fault is undone (heal, SIGCONT, restart), a quiet
period, final reads from every member, and the checkers (tests/jepsen/checkers.py).  One line
per seed; tests/jepsen/report/<target>-<stamp>.md and .json; member logs of failed seeds in
tests/jepsen/report/<target>-<stamp>-seed<N>/.  Exit code 1 on any anomaly or run error.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.jepsen.checkers import (
    check_ephemerals,
    check_registers,
    check_sequential_creates,
    check_session_order,
    check_trees_identical,
    check_unique_creates,
)
from tests.jepsen.cluster import Cluster
from tests.jepsen.history import History
from tests.jepsen.nemesis import Nemesis, parse_faults
from tests.jepsen.workloads import (
    EPH,
    INIT_VALUE,
    SEQ,
    UNIQ,
    EphemeralWorker,
    Worker,
    WorkloadConfig,
    quiet_kazoo,
    read_tree,
    setup,
)

log = logging.getLogger("jepsen.run")
REPORT_DIR = Path(__file__).resolve().parent / "report"
JOIN_S = 20.0
TREE_TRIES = 6
TREE_RETRY_S = 3.0
EPHEMERAL_DEADLINE_S = 25.0   # after the quiet period, for the last abandoned sessions to expire
EPHEMERAL_RECHECK_S = 4.0


@dataclass
class SeedResult:
    seed: int
    target: str
    counts: dict[str, int] = field(default_factory=dict)
    by_f: dict[str, dict[str, int]] = field(default_factory=dict)
    anomalies: list[str] = field(default_factory=list)
    error: str | None = None
    known_bugs: list[str] = field(default_factory=list)
    nemesis: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    seconds: float = 0.0
    sessions: int = 0
    tree_nodes: int = 0

    @property
    def failed(self) -> bool:
        return bool(self.anomalies) or self.error is not None

    def line(self) -> str:
        c = self.counts
        parts = [(f"seed {self.seed:>3} {self.target}: ops ok {c.get('ok', 0)} "
                  f"fail {c.get('fail', 0)} info {c.get('info', 0)}"),
                 f"nemesis {len(self.nemesis)}", f"{len(self.anomalies)} anomalies"]
        if self.error:
            parts.append(f"RUN ERROR: {self.error}")
        if self.known_bugs:
            parts.append(f"known Apache bugs: {len(self.known_bugs)}")
        line = ", ".join(parts) + f" ({self.seconds:.0f} s)"
        for anomaly in self.anomalies[:3]:
            line += f"\n      {anomaly[:400]}"
        if len(self.anomalies) > 3:
            line += f"\n      ... {len(self.anomalies) - 3} more"
        return line


def parse_seeds(spec: str) -> list[int]:
    seeds: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            seeds.extend(range(int(lo), int(hi) + 1))
        else:
            seeds.append(int(part))
    if not seeds:
        raise ValueError(f"no seeds in {spec!r}")
    return seeds


def read_trees(cluster: Cluster) -> dict[int, dict[str, list[Any]] | None]:
    return {i: read_tree(cluster.address(i)) for i in cluster.ids}


def settled_trees(cluster: Cluster) -> dict[int, dict[str, list[Any]] | None]:
    """Member trees, re-read (bounded) until they agree: a follower may still be applying."""
    trees = read_trees(cluster)
    for _ in range(TREE_TRIES - 1):
        if not check_trees_identical(trees):
            break
        time.sleep(TREE_RETRY_S)
        trees = read_trees(cluster)
    return trees


def ephemeral_children(cluster: Cluster) -> dict[int, dict[str, list[Any]] | None]:
    return {i: read_tree(cluster.address(i), EPH) for i in cluster.ids}


def run_seed(target: str, seed: int, duration_s: float, cfg: WorkloadConfig, faults: tuple[str, ...],
             quiet_s: float, report_stem: Path | None, keep_dir: Path | None = None,
             pyzk_root: Path | None = None) -> SeedResult:
    result = SeedResult(seed, target)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix=f"jepsen-{target}-s{seed}-"))
    cluster = Cluster(target, workdir, pyzk_root=pyzk_root)
    history = History()
    stop = threading.Event()
    threads: list[threading.Thread] = []
    try:
        cluster.start()
        setup(cluster.hosts, cfg)
        rng = random.Random(seed)
        workers = [Worker(w, cluster.hosts, history, random.Random(rng.random()), stop, cfg)
                   for w in range(cfg.workers)]
        eph = EphemeralWorker([cluster.address(i) for i in cluster.ids], history,
                              random.Random(rng.random()), stop, cfg)
        nemesis = Nemesis(cluster, seed, faults, stop)
        threads = [*workers, eph, nemesis]
        for thread in threads:
            thread.start()
        stop.wait(duration_s)
        stop.set()
        join_deadline = time.monotonic() + JOIN_S + cfg.op_timeout_s * 2
        for thread in threads:
            thread.join(max(0.1, join_deadline - time.monotonic()))
        stuck = [t.name for t in threads if t.is_alive()]
        errors = [t.error for t in (*workers, eph, nemesis) if t.error]  # type: ignore[attr-defined]
        if stuck:
            errors.append(f"threads did not stop: {stuck}")
        history.finalize()
        result.nemesis = list(nemesis.applied)
        result.sessions = eph.sessions
        cluster.heal_all()
        time.sleep(quiet_s)
        trees = settled_trees(cluster)
        anomalies: list[str] = []
        ops = list(history.ops)
        anomalies += check_registers(ops, INIT_VALUE)
        anomalies += check_session_order(ops)
        base = next((t for t in trees.values() if t is not None), None)
        if base is None:
            errors.append("no member's final tree could be read")
        else:
            result.tree_nodes = len(base)
            anomalies += check_unique_creates(ops, base, UNIQ)
            anomalies += check_sequential_creates(ops, base, SEQ)
        anomalies += check_trees_identical(trees)
        # Ephemerals: all sessions ended; give the abandoned ones time to expire, then recheck.
        deadline = time.monotonic() + EPHEMERAL_DEADLINE_S
        eph_trees = ephemeral_children(cluster)
        while check_ephemerals(ops, eph_trees, EPH) and time.monotonic() < deadline:
            time.sleep(1.0)
            eph_trees = ephemeral_children(cluster)
        anomalies += check_ephemerals(ops, eph_trees, EPH)
        time.sleep(EPHEMERAL_RECHECK_S)
        anomalies += check_ephemerals(ops, ephemeral_children(cluster), EPH, " (recheck)")
        result.anomalies = anomalies
        if errors:
            result.error = "; ".join(errors)
    except KeyboardInterrupt:
        stop.set()
        result.error = "interrupted"
        raise
    except Exception as exc:
        stop.set()
        log.exception("seed %d", seed)
        result.error = f"{type(exc).__name__}: {str(exc)[:2000]}"
    finally:
        stop.set()
        cluster.stop()
        result.counts = history.counts()
        for op in history.ops:
            counts = result.by_f.setdefault(op.f, {"ok": 0, "fail": 0, "info": 0})
            counts[op.status] = counts.get(op.status, 0) + 1
        if target == "apache":
            result.known_bugs = cluster.known_apache_bugs()
        if (result.failed or result.known_bugs) and report_stem is not None:
            dest = report_stem.parent / f"{report_stem.name}-seed{seed}"
            result.logs = [str(p) for p in cluster.copy_logs(dest)]
            (dest / "history.json").write_text(json.dumps(history.to_json()))
        if keep_dir is not None:
            shutil.copytree(workdir, keep_dir / f"seed{seed}", dirs_exist_ok=True)
        shutil.rmtree(workdir, ignore_errors=True)
        result.seconds = time.monotonic() - started
    return result


def write_report(stem: Path, args: argparse.Namespace, results: list[SeedResult]) -> None:
    stem.parent.mkdir(parents=True, exist_ok=True)
    payload = {"target": args.target, "seeds": [r.seed for r in results],
               "duration_s": args.duration, "workers": args.workers, "nemesis": args.nemesis,
               "results": [r.__dict__ for r in results]}
    stem.with_suffix(".json").write_text(json.dumps(payload, indent=1, default=str))
    lines = [f"# Jepsen-shaped run: {args.target}", "",
             (f"{len(results)} seeds, {args.duration} s each, {args.workers} workers, "
              f"nemesis {args.nemesis}, quiet {args.quiet} s."), "",
             "| seed | ok | fail | info | nemesis faults | anomalies | run error | known Apache bugs |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.seed} | {r.counts.get('ok', 0)} | {r.counts.get('fail', 0)} | "
                     f"{r.counts.get('info', 0)} | {len(r.nemesis)} | {len(r.anomalies)} | "
                     f"{(r.error or '')[:120]} | {len(r.known_bugs)} |")
    for r in results:
        if not (r.anomalies or r.error or r.known_bugs):
            continue
        lines += ["", f"## seed {r.seed}", ""]
        if r.error:
            lines += [f"Run error: `{r.error[:2000]}`", ""]
        for bug in r.known_bugs:
            lines.append(f"- known Apache bug (not counted as a pyzk-style anomaly): {bug}")
        kinds: dict[str, int] = {}
        for a in r.anomalies:
            kinds[a.split(":", 1)[0]] = kinds.get(a.split(":", 1)[0], 0) + 1
        if kinds:
            lines.append("Anomaly kinds: " + ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items())))
            lines.append("")
        for a in r.anomalies[:40]:
            lines.append(f"- {a[:1500]}")
        if r.nemesis:
            lines += ["", "Faults: " + ", ".join(r.nemesis)]
        if r.logs:
            lines += ["", "Member logs: " + ", ".join(r.logs)]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=("pyzk", "apache"), required=True)
    parser.add_argument("--seeds", default="1")
    parser.add_argument("--duration", type=float, default=120.0)
    parser.add_argument("--workers", type=int, default=5)
    parser.add_argument("--nemesis", default="all")
    parser.add_argument("--quiet", type=float, default=10.0)
    parser.add_argument("--report-dir", type=Path, default=REPORT_DIR)
    parser.add_argument("--keep-data", type=Path, default=None,
                        help="copy every seed's member dirs (data, logs, zoo.cfg) here")
    parser.add_argument("--pyzk-root", type=Path, default=None,
                        help="run pyzk from this checkout (its bin/zkServer.py) instead of this one")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(message)s")
    quiet_kazoo()
    seeds = parse_seeds(args.seeds)
    faults = parse_faults(args.nemesis)
    cfg = WorkloadConfig(workers=args.workers)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    stem = args.report_dir / f"{args.target}-{stamp}"
    results: list[SeedResult] = []
    try:
        for seed in seeds:
            result = run_seed(args.target, seed, args.duration, cfg, faults, args.quiet, stem,
                              args.keep_data, args.pyzk_root)
            results.append(result)
            print(result.line(), flush=True)
            write_report(stem, args, results)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        write_report(stem, args, results)
        return 130
    bad = [r.seed for r in results if r.failed]
    print(f"report: {stem.with_suffix('.md')}")
    print(f"{args.target}: {len(results)} seeds, {len(bad)} with anomalies or errors"
          + (f": {bad}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
