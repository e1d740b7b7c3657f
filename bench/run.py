"""Side-by-side runner: Apache ZooKeeper and pyzk, same zoo.cfg, same generator, same run.

Rules:
- Rounds alternate targets (A B A B ...), each round on a freshly started server with a
  fresh dataDir, so machine drift and disk state hit both sides alike.
- A target that does not start is reported as such (with its log tail) and the other
  target's column is still produced; a case whose replies fail verification is recorded
  as failed, never as a number.
- Every server is stopped by its PID before the next one starts.

    python -m bench.run                 # 3 rounds, 10 s per case
    python -m bench.run --duration 3 --rounds 1 --targets apache
"""

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench import report, servers
from bench.engine import VerificationError
from bench.loadgen import LoadSpec, run_load
from bench.report import Case

RESULTS_DIR = Path(__file__).resolve().parent / "results"

# The table's cases, then the sweep points that only feed the throughput-vs-latency plot.
CASES = [
    Case("get", "get", 16, 16),
    Case("set", "set", 16, 16),
    Case("create_delete", "create_delete", 16, 16),
    Case("mixed", "mixed", 16, 16),
    Case("exists_watch", "exists_watch", 16, 16),
    Case("ephemeral_session", "ephemeral_session", 4, 1),
    Case("multi5", "multi5", 16, 4),
    Case("get_1x1", "get", 1, 1),
    Case("set_1x1", "set", 1, 1),
    Case("get_at_rate", "get", 16, 16, rate_ops_s=20000),
    Case("set_at_rate", "set", 16, 16, rate_ops_s=10000),
    Case("get_4x4", "get", 4, 4, in_table=False),
    Case("get_32x32", "get", 32, 32, in_table=False),
    Case("set_4x4", "set", 4, 4, in_table=False),
    Case("set_32x32", "set", 32, 32, in_table=False),
]


@dataclass
class TargetStatus:
    startup_s: list[float] = field(default_factory=list)
    rss_kib_after_round: list[int | None] = field(default_factory=list)
    start_errors: list[str] = field(default_factory=list)

    def summary(self, rounds: int) -> str:
        if not self.startup_s:
            lines = (self.start_errors or ["not run"])[0].strip().splitlines()
            return f"did not start ({lines[0]} ... {lines[-1]}); no numbers"
        return (
            f"started {len(self.startup_s)}/{rounds} rounds; start-up s {self.startup_s}; "
            f"RSS KiB after each round {self.rss_kib_after_round}"
        )


def _machine() -> str:
    java = subprocess.run(
        ["java", "-version"], capture_output=True, text=True, timeout=30, check=False
    )
    java_version = (java.stderr.splitlines() or ["?"])[0]
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores, Python {platform.python_version()}, {java_version}, "
        f"load average at start {load}"
    )


def _run_round(
    target: str, round_index: int, cases: list[Case], args: argparse.Namespace,
    status: TargetStatus, runs: list[dict[str, object]],
) -> None:
    try:
        server = servers.start(target)
    except servers.ServerDidNotStart as error:
        print(f"[{target}] round {round_index}: did not start: {error}", file=sys.stderr)
        status.start_errors.append(str(error))
        return
    status.startup_s.append(round(server.startup_s, 2))
    try:
        for case in cases:
            record: dict[str, object] = {"target": target, "round": round_index, "case": case.name}
            spec = LoadSpec(
                hosts=server.hosts,
                workload=case.workload,
                connections=case.connections,
                outstanding=case.outstanding,
                processes=case.processes,
                duration_s=args.duration,
                warmup_s=args.warmup,
                rate_ops_s=case.rate_ops_s,
                seed=round_index + 1,
                server_pid=server.pid,
            )
            try:
                result = run_load(spec)
                record.update(result.to_json())
                record["error"] = None
                print(f"[{target}] round {round_index} {case.name:18s} {result.summary()}", flush=True)
            except (VerificationError, OSError) as error:
                message = f"{type(error).__name__}: {error}"
                if server.process.poll() is not None:
                    message += f" (server exited: {server.log_tail(10)})"
                record["error"] = message
                print(f"[{target}] round {round_index} {case.name}: FAILED {message}", flush=True)
            runs.append(record)
        status.rss_kib_after_round.append(
            servers.rss_kib(server.pid) if server.process.poll() is None else None
        )
    finally:
        servers.stop(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="rounds per target (>= 3 for the table)")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per case")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds per case")
    parser.add_argument("--targets", default="apache,pyzk", help="comma list of apache,pyzk")
    parser.add_argument("--cases", default="", help="comma list of case names (default all)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()

    targets = [t for t in args.targets.split(",") if t]
    for target in targets:
        if target not in servers.TARGETS:
            parser.error(f"unknown target {target!r}")
    wanted = set(filter(None, args.cases.split(",")))
    cases = [c for c in CASES if not wanted or c.name in wanted]
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    status = {t: TargetStatus() for t in targets}
    runs: list[dict[str, object]] = []
    machine = _machine()
    began = time.monotonic()
    for round_index in range(args.rounds):
        for target in targets:  # A B A B ...
            _run_round(target, round_index, cases, args, status[target], runs)
    load_end = " ".join(f"{x:.2f}" for x in os.getloadavg())
    table = report.medians(runs)
    result: dict[str, object] = {
        "stamp": stamp,
        "machine": f"{machine}; at end {load_end}",
        "config": (
            f"{args.rounds} rounds x {len(cases)} cases, {args.duration:g} s measured + "
            f"{args.warmup:g} s warm-up each, zoo.cfg forceSync=yes, dataDir on local disk; "
            f"total {time.monotonic() - began:.0f} s"
        ),
        "targets": {
            t: {**asdict(info), "summary": info.summary(args.rounds)} for t, info in status.items()
        },
        "cases": [c.__dict__ for c in cases],
        "runs": runs,
        "medians": table,
        "ratios": report.ratios(table),
    }
    for path in report.write(result, cases, args.out):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
