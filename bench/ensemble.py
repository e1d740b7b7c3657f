"""3-server ensembles side by side: Apache ZooKeeper and pyzk, same zoo.cfg, same generator.

    python -m bench.ensemble                        # 2 rounds each, 10 s per case (~8 min)
    python -m bench.ensemble --quick                # 1 round, 3 s per case (~2 min)
    python -m bench.ensemble --rounds 1 --duration 5 --targets pyzk

Rules:
- One round of one target: start a fresh 3-member ensemble (servers.start_ensemble: one
  zoo.cfg per member, forceSync=yes, dataDir on disk under /var/tmp, 127.0.0.1 only; up =
  every member accepts a session and srvr shows one leader and two followers), warm it up
  with the same unmeasured load for both targets (--round-warmup s spread over get, set,
  create_delete, mixed: the JVM's JIT gets the same chance every round), run every case,
  stop every member by its PID (SIGTERM, SIGKILL after 10 s).
- Rounds alternate targets, A B A B ...; a table figure is the median over rounds and a
  ratio is pyzk / Apache of this invocation.
- The generator's connections are spread round-robin over the members (connection i on
  member i mod 3). Reads are served by the member a connection talks to; writes go through
  the leader. Every reply is verified (bench/engine.py); a case that fails verification is
  listed as failed, never as a number.
- Server CPU per op is read from /proc/<pid>/stat of every member at the measured window's
  edges: summed over the members, and the leader's alone (the leader is the member srvr
  called leader when the ensemble came up; a case during which it changed is noted).
"""

import argparse
import dataclasses
import datetime
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from bench import ensemble_report, servers
from bench.engine import VerificationError
from bench.loadgen import LoadSpec, run_load
from bench.report import Case

RESULTS_DIR = Path(__file__).resolve().parent / "results"
CLOSED_LOOP_WORKLOADS = ("get", "set", "create_delete", "mixed")
WARMUP_WORKLOADS = ("get", "set", "create_delete", "mixed")
DEFAULT_RATES = (1000.0, 5000.0, 10000.0)

# (default, --quick) for the options --quick shortens; an option given explicitly wins.
PROFILES: dict[str, tuple[float, float]] = {
    "rounds": (2, 1),
    "duration": (10.0, 3.0),
    "warmup": (2.0, 1.0),
    "round_warmup": (20.0, 8.0),
}


def build_cases(
    connections: int, outstanding: int, rates: list[float], processes: int = 1, wanted: set[str] | None = None
) -> list[Case]:
    """The closed-loop cases, then set at each fixed offered rate; all on the same shape."""
    cases = [Case(w, w, connections, outstanding, processes) for w in CLOSED_LOOP_WORKLOADS]
    cases += [
        Case(f"set_at_rate_{rate:g}", "set", connections, outstanding, processes, rate_ops_s=rate) for rate in rates
    ]
    return [c for c in cases if not wanted or c.name in wanted]


def resolve_profile(args: argparse.Namespace) -> None:
    """Fill the options left unset from the default or the --quick profile."""
    for name, (default, quick) in PROFILES.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else default)
    args.rounds = int(args.rounds)


def parse_rates(text: str) -> list[float]:
    rates = [float(part) for part in text.split(",") if part.strip()]
    if any(rate <= 0 for rate in rates):
        raise ValueError(f"rates must be positive: {text!r}")
    return rates


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


@dataclasses.dataclass
class TargetStatus:
    startup_s: list[float] = dataclasses.field(default_factory=list)
    start_errors: list[str] = dataclasses.field(default_factory=list)

    def summary(self, rounds: int) -> str:
        if not self.startup_s:
            lines = (self.start_errors or ["not run"])[0].strip().splitlines()
            return f"did not start ({lines[0]} ... {lines[-1]}); no numbers"
        failed = f"; {len(self.start_errors)} failed to start" if self.start_errors else ""
        return f"ensemble up in {len(self.startup_s)}/{rounds} rounds; start-up s {self.startup_s}{failed}"


def _machine() -> str:
    java = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30, check=False)
    java_version = (java.stderr.splitlines() or ["?"])[0]
    return f"{os.cpu_count()} cores, Python {platform.python_version()}, {java_version}"


def _spec(ensemble: servers.RunningEnsemble, case: Case, args: argparse.Namespace, seed: int) -> LoadSpec:
    return LoadSpec(
        hosts=ensemble.hosts,
        workload=case.workload,
        connections=case.connections,
        outstanding=case.outstanding,
        processes=case.processes,
        duration_s=args.duration,
        warmup_s=args.warmup,
        rate_ops_s=case.rate_ops_s,
        seed=seed,
        member_pids=ensemble.pids,
    )


def _dead_members(ensemble: servers.RunningEnsemble) -> str:
    dead = [
        f"member {peer.server_id} exited with {member.process.returncode}"
        for peer, member in zip(ensemble.peers, ensemble.members, strict=True)
        if member.process.poll() is not None
    ]
    return "; ".join(dead)


def warm_up(ensemble: servers.RunningEnsemble, args: argparse.Namespace, round_index: int) -> list[dict[str, object]]:
    """The same unmeasured load for both targets before the cases (JIT, caches, sessions)."""
    if args.round_warmup <= 0:
        return []
    each_s = args.round_warmup / len(WARMUP_WORKLOADS)
    done: list[dict[str, object]] = []
    for workload in WARMUP_WORKLOADS:
        case = Case(f"warmup_{workload}", workload, args.connections, args.outstanding, args.processes)
        spec = _spec(ensemble, case, args, seed=1000 + round_index)
        spec = dataclasses.replace(spec, duration_s=each_s, warmup_s=0.0)
        entry: dict[str, object] = {"workload": workload, "seconds": each_s}
        try:
            entry["ops_per_s"] = round(run_load(spec).ops_per_s)
        except (VerificationError, OSError) as error:
            entry["error"] = f"{type(error).__name__}: {error}"
        done.append(entry)
    print(
        f"[{ensemble.target}] round {round_index} warm-up {args.round_warmup:g} s: "
        + ", ".join(f"{e['workload']} {e.get('ops_per_s', 'FAILED')}" for e in done),
        flush=True,
    )
    return done


def run_case(
    ensemble: servers.RunningEnsemble, case: Case, args: argparse.Namespace, round_index: int
) -> dict[str, object]:
    leader = ensemble.leader_index
    record: dict[str, object] = {
        "target": ensemble.target,
        "round": round_index,
        "case": case.name,
        "leader_member": ensemble.peers[leader].server_id if leader is not None else None,
        "load_start": load_average(),
    }
    try:
        result = run_load(_spec(ensemble, case, args, seed=round_index + 1))
        record.update(result.to_json())
        total, leader_cpu = ensemble_report.member_cpu_figures(result.member_cpu_us_per_op, leader)
        record["server_cpu_us_per_op"] = total
        record["leader_cpu_us_per_op"] = leader_cpu
        record["error"] = None
        print(f"[{ensemble.target}] round {round_index} {case.name:18s} {result.summary()}", flush=True)
    except (VerificationError, OSError) as error:
        message = f"{type(error).__name__}: {error}"
        dead = _dead_members(ensemble)
        if dead:
            message += f" ({dead})"
        record["error"] = message
        print(f"[{ensemble.target}] round {round_index} {case.name}: FAILED {message}", flush=True)
    record["load_end"] = load_average()
    modes = servers.ensemble_modes(ensemble)
    record["modes_after"] = modes
    if modes != ensemble.modes:
        record["note"] = f"member modes changed during the case: {ensemble.modes} -> {modes}"
        if servers.quorum_formed(modes):
            ensemble.modes = modes  # later cases attribute the leader's CPU to the new leader
    return record


def run_round(
    target: str,
    round_index: int,
    cases: list[Case],
    args: argparse.Namespace,
    status: TargetStatus,
    runs: list[dict[str, object]],
) -> dict[str, object]:
    entry: dict[str, object] = {"target": target, "round": round_index, "load_start": load_average()}
    try:
        ensemble = servers.start_ensemble(target, size=args.members)
    except servers.ServerDidNotStart as error:
        print(f"[{target}] round {round_index}: ensemble did not start: {error}", file=sys.stderr)
        status.start_errors.append(str(error))
        entry.update({"error": str(error), "load_end": load_average()})
        return entry
    status.startup_s.append(round(ensemble.startup_s, 2))
    leader = ensemble.leader_index
    entry.update(
        {
            "startup_s": round(ensemble.startup_s, 2),
            "modes": ensemble.modes,
            "leader": f"member {ensemble.peers[leader].server_id}" if leader is not None else None,
            "pids": list(ensemble.pids),
        }
    )
    print(f"[{target}] round {round_index}: ensemble up in {ensemble.startup_s:.2f} s, modes {ensemble.modes}")
    try:
        entry["warmup"] = warm_up(ensemble, args, round_index)
        for case in cases:
            runs.append(run_case(ensemble, case, args, round_index))
        entry["rss_kib_after_round"] = [
            servers.rss_kib(member.pid) if member.process.poll() is None else None for member in ensemble.members
        ]
    finally:
        servers.stop_ensemble(ensemble)
    entry["load_end"] = load_average()
    return entry


def _result(
    stamp: str,
    machine: str,
    args: argparse.Namespace,
    cases: list[Case],
    status: dict[str, TargetStatus],
    rounds: list[dict[str, object]],
    runs: list[dict[str, object]],
    began: float,
    load_start: list[float],
) -> dict[str, object]:
    table = ensemble_report.medians(runs)
    return {
        "stamp": stamp,
        "machine": (
            f"{machine}; load average at start {' '.join(map(str, load_start))}, "
            f"at end {' '.join(map(str, load_average()))}"
        ),
        "config": (
            f"{args.rounds} round(s) per target (A B A B), {args.members}-server ensembles, "
            f"{len(cases)} cases x {args.duration:g} s measured + {args.warmup:g} s warm-up each, "
            f"{args.round_warmup:g} s of warm-up load per round before the cases, connections "
            f"round-robin over the members, zoo.cfg tickTime=2000 initLimit=10 syncLimit=5 "
            f"forceSync=yes, dataDir on local disk; total {time.monotonic() - began:.0f} s"
        ),
        "args": {k: str(v) for k, v in vars(args).items()},
        "targets": {t: {**info.__dict__, "summary": info.summary(args.rounds)} for t, info in status.items()},
        "cases": [c.__dict__ for c in cases],
        "rounds": rounds,
        "runs": runs,
        "medians": table,
        "ratios": ensemble_report.ratios(table),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round, 3 s per case (~2 min)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per target (default 2)")
    parser.add_argument("--duration", type=float, default=None, help="measured seconds per case (default 10)")
    parser.add_argument("--warmup", type=float, default=None, help="unmeasured seconds per case (default 2)")
    parser.add_argument(
        "--round-warmup",
        type=float,
        default=None,
        help="unmeasured seconds of load per round before the cases, same for both targets (default 20)",
    )
    parser.add_argument("--connections", type=int, default=24, help="connections, round-robin over the members")
    parser.add_argument("--outstanding", type=int, default=32, help="requests in flight per connection")
    parser.add_argument("--processes", type=int, default=1, help="generator processes")
    parser.add_argument("--rates", default="1000,5000,10000", help="offered setData/s of the set_at_rate cases")
    parser.add_argument("--members", type=int, default=3, help="ensemble size")
    parser.add_argument("--targets", default="apache,pyzk", help="comma list of apache,pyzk")
    parser.add_argument("--cases", default="", help="comma list of case names (default all)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()
    resolve_profile(args)

    targets = [t for t in args.targets.split(",") if t]
    for target in targets:
        if target not in servers.TARGETS:
            parser.error(f"unknown target {target!r}")
    if args.members < 3 or args.members % 2 == 0:
        parser.error("--members must be odd and at least 3")
    try:
        rates = parse_rates(args.rates)
    except ValueError as error:
        parser.error(str(error))
    cases = build_cases(
        args.connections, args.outstanding, rates, args.processes, set(filter(None, args.cases.split(",")))
    )
    if not cases:
        parser.error("no case selected")
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    status = {t: TargetStatus() for t in targets}
    rounds: list[dict[str, object]] = []
    runs: list[dict[str, object]] = []
    machine = _machine()
    load_start = load_average()
    began = time.monotonic()
    written: list[Path] = []
    for round_index in range(args.rounds):
        for target in targets:  # A B A B ...
            rounds.append(run_round(target, round_index, cases, args, status[target], runs))
            # rewritten after every round, so a run cut short keeps what it measured
            result = _result(stamp, machine, args, cases, status, rounds, runs, began, load_start)
            written = ensemble_report.write(result, cases, args.out)
    for path in written:
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
