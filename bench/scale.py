"""Scale runs, Apache ZooKeeper next to pyzk: memory, restart, wide getChildren, snapshot tail.

    python -m bench.scale                                   # 1,000,000 znodes, 3 rounds
    python -m bench.scale --nodes 20000 --children 10000 --rounds 1 --duration 3

Rules:
- Same generator, same zoo.cfg as bench/run.py (servers.zoo_cfg_text), rounds alternating
  A B A B ...; a figure is the median over rounds, a ratio is pyzk / Apache of one run.
- One round of one target, on one fresh dataDir:
  1. start empty, read VmRSS; build the tree (scale_tree.TreeShape) with pipelined raw
     creates and forceSync=no (the build is setup, not a measurement); read VmRSS again:
     RSS per znode = (loaded - empty) / nodes. Stop the server by its PID.
  2. restart on that dataDir with forceSync=yes and a small snapCount; restart time is from
     process launch until a session is established (servers' readiness check). Wait until
     the start-up snapshot of the loaded tree is on disk (Apache writes it before serving,
     pyzk in the background for big trees), so it does not overlap what follows.
  3. getChildren of the wide parent, 1 connection x 1 and x 4 outstanding.
  4. setData at a fixed rate, first with no snapshot (the steady baseline), then while the
     server snapshots the big tree: snapCount is chosen (scale_tree.snap_count_for) so the
     first snapshot falls early in the second window and none in the first, and a watcher
     on dataDir/version-2 shows it (the log roll that starts it, the snapshot file
     complete); the report lists every snapshot it saw, relative to its window.
- Every reply is verified (bench/engine.py); every wait is bounded; every server is
  stopped by its PID.
"""

import argparse
import datetime
import itertools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path

from bench import scale_report, servers, wire
from bench.engine import (
    BlockingSession,
    Engine,
    EngineResult,
    VerificationError,
    parse_hosts,
)
from bench.loadgen import LoadSpec, prepare
from bench.scale_tree import (
    DATA_BYTES,
    OP_GET_CHILDREN,
    WIDE_PARENT,
    TreeShape,
    get_children_reply_length,
    get_children_request,
    parse_srvr,
    rss_per_znode_bytes,
    snap_count_for,
    snapshot_due_window_s,
    snapshots_seen,
)
from bench.workloads import WORKLOADS, Request, Workload, setup_requests

RESULTS_DIR = Path(__file__).resolve().parent / "results"
BUILD_BATCH = 1000  # creates pipelined per round trip while building the tree
BUILD_REPLY_TIMEOUT_S = 120.0  # a build batch may wait behind a snapshot of the tree
BUILD_TIMEOUT_S = 3600.0
START_TIMEOUT_S = 600.0
STARTUP_SNAPSHOT_TIMEOUT_S = 300.0
SNAPSHOT_QUIET_S = 1.0  # a snapshot file whose size has not changed for this long is complete
SNAPSHOT_TAIL_TIMEOUT_S = 300.0
WATCH_POLL_S = 0.01
START_MARGIN_S = 0.2
GET_CHILDREN_OUTSTANDING = (1, 4)
# Txns logged after the restart and before the snapshot window's warm-up: the set
# workload's parents and keys, plus a margin for the sessions opened on the way.
SETUP_TXNS = len(setup_requests(True)) + 20


class ScaleRunFailed(Exception):
    """A phase of a round could not be measured; the message says which and why."""


def scale_cfg_text(data_dir: Path, port: int, force_sync: bool, snap_count: int | None) -> str:
    """bench/run.py's zoo.cfg, with forceSync switched off for the build and a snapCount."""
    text = servers.zoo_cfg_text(data_dir, port)
    if "forceSync=yes" not in text:
        raise AssertionError("servers.zoo_cfg_text no longer sets forceSync=yes")
    if not force_sync:
        text = text.replace("forceSync=yes", "forceSync=no")
    if snap_count is not None:
        text += f"snapCount={snap_count}\n"  # both read it as zookeeper.snapCount
    return text


def launch(target: str, workdir: Path, force_sync: bool, snap_count: int | None) -> servers.RunningServer:
    """Start `target` on workdir/data (which may hold a tree) and wait until it serves;
    startup_s is from process launch until a session is established."""
    port = servers.free_port()
    cfg_path = workdir / "zoo.cfg"
    cfg_path.write_text(scale_cfg_text(workdir / "data", port, force_sync, snap_count))
    began = time.monotonic()
    with open(workdir / "server.log", "ab") as log:  # the child keeps its own copy of the fd
        process = subprocess.Popen(
            servers.command_for(target, cfg_path), stdout=log, stderr=subprocess.STDOUT, cwd=workdir
        )
    server = servers.RunningServer(target, process, port, workdir, 0.0)
    try:
        # the runner's readiness rule, shared on purpose; a big tree may take minutes to load
        servers._wait_until_serving(server, START_TIMEOUT_S)
    except servers.ServerDidNotStart:
        servers.stop(server, keep_workdir=True)
        raise
    server.startup_s = time.monotonic() - began
    return server


def srvr(port: int) -> dict[str, int]:
    """Ask the `srvr` four-letter word for the zxid and node count."""
    with socket.create_connection(("127.0.0.1", port), timeout=30.0) as sock:
        sock.sendall(b"srvr")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return parse_srvr(b"".join(chunks).decode(errors="replace"))


def build_tree(hosts: str, shape: TreeShape) -> float:
    """Create every znode of the tree, BUILD_BATCH in flight; returns the seconds it took."""
    data = b"s" * DATA_BYTES
    session = BlockingSession(parse_hosts(hosts))
    session.sock.settimeout(BUILD_REPLY_TIMEOUT_S)
    began = time.monotonic()
    try:
        paths = shape.paths()
        while batch := list(itertools.islice(paths, BUILD_BATCH)):
            # a session's requests are applied in order, so a parent created earlier in the
            # same pipeline exists when its children's creates are prepared
            session.run([
                Request(wire.OP_CREATE, wire.create(path, data), wire.create_reply_length(path))
                for path in batch
            ])
            if time.monotonic() - began > BUILD_TIMEOUT_S:
                raise ScaleRunFailed(f"build not done after {BUILD_TIMEOUT_S:.0f} s")
    finally:
        session.close()
    return time.monotonic() - began


class VersionDirWatcher:
    """Notes, on a side thread, when new files appear in dataDir/version-2 and when their
    size last changed (perf_counter_ns), so a report can say when a snapshot was written."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.baseline = set(os.listdir(directory))
        self.first_seen_ns: dict[str, int] = {}
        self.last_change_ns: dict[str, int] = {}
        self.sizes: dict[str, int] = {}
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stopping.wait(WATCH_POLL_S):
            now_ns = time.perf_counter_ns()
            for entry in os.scandir(self.directory):
                if entry.name in self.baseline:
                    continue
                try:
                    size = entry.stat().st_size
                except FileNotFoundError:  # a .tmp renamed into place meanwhile
                    continue
                self.first_seen_ns.setdefault(entry.name, now_ns)
                if self.sizes.get(entry.name) != size:
                    self.sizes[entry.name] = size
                    self.last_change_ns[entry.name] = now_ns

    def wait_snapshots_complete(self) -> bool:
        """Until no snapshot is still being written (no .tmp left, no size change for
        SNAPSHOT_QUIET_S); False if that did not happen in SNAPSHOT_TAIL_TIMEOUT_S."""
        deadline = time.monotonic() + SNAPSHOT_TAIL_TIMEOUT_S
        while time.monotonic() < deadline:
            now_ns = time.perf_counter_ns()
            writing = [
                name for name, changed_ns in self.last_change_ns.items()
                if name.startswith("snapshot.") and (
                    (name.endswith(".tmp") and (self.directory / name).exists())
                    or now_ns - changed_ns < SNAPSHOT_QUIET_S * 1e9
                )
            ]
            if not writing:
                return True
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5.0)


def _snapshot_zxid(name: str) -> int | None:
    if not name.startswith("snapshot.") or name.endswith(".tmp"):
        return None
    try:
        return int(name.split(".")[1], 16)
    except (IndexError, ValueError):
        return None


def wait_startup_snapshot(version_dir: Path, zxid: int, launched_monotonic: float) -> float | None:
    """Seconds from launch until a complete snapshot at or past `zxid` is in version_dir."""
    deadline = time.monotonic() + STARTUP_SNAPSHOT_TIMEOUT_S
    while time.monotonic() < deadline:
        if any((z := _snapshot_zxid(n)) is not None and z >= zxid for n in os.listdir(version_dir)):
            return time.monotonic() - launched_monotonic
        time.sleep(0.05)
    return None


def run_engine(engine: Engine, warmup_s: float, duration_s: float) -> tuple[EngineResult, int]:
    """Connect, run one bounded load, close; returns the result and the window's start."""
    try:
        engine.connect_all()
        start_ns = time.perf_counter_ns() + int(START_MARGIN_S * 1e9)
        result = engine.run(start_ns, warmup_s, duration_s)
    finally:
        engine.close()
    return result, start_ns + int(warmup_s * 1e9)


def load_figures(result: EngineResult, duration_s: float) -> dict[str, float]:
    histogram = result.histogram
    return {
        "ops_per_s": round(result.ops / duration_s, 1),
        "p50_us": histogram.percentile_us(0.50),
        "p99_us": histogram.percentile_us(0.99),
        "p999_us": histogram.percentile_us(0.999),
    }


def measure_get_children(server: servers.RunningServer, shape: TreeShape, outstanding: int,
                         args: argparse.Namespace) -> dict[str, float]:
    names = shape.wide_child_names()
    request = Request(OP_GET_CHILDREN, get_children_request(WIDE_PARENT),
                      get_children_reply_length(names))
    workload = Workload(
        "get_children", f"getChildren of {WIDE_PARENT} ({len(names):,} children)",
        lambda tag, seed: itertools.repeat((request,)),
    )
    engine = Engine(parse_hosts(server.hosts), workload, ["wide"], seed=1, outstanding=outstanding)
    result, _window_start_ns = run_engine(engine, args.warmup, args.duration)
    return load_figures(result, args.duration)


def measure_set_at_rate(
    server: servers.RunningServer, args: argparse.Namespace, tag: str, seed: int, duration_s: float
) -> tuple[dict[str, float], list[dict[str, object]]]:
    """setData at --snapshot-rate for duration_s, watching dataDir/version-2 meanwhile:
    the load figures, the number of snapshots written in the window and the first one's
    write time, and every snapshot seen."""
    engine = Engine(
        parse_hosts(server.hosts), WORKLOADS["set"],
        [f"{tag}-{i}" for i in range(args.snapshot_connections)],
        seed=seed, outstanding=args.snapshot_outstanding, rate_ops_s=args.snapshot_rate,
    )
    watcher = VersionDirWatcher(server.workdir / "data" / "version-2")
    try:
        result, window_start_ns = run_engine(engine, args.warmup, duration_s)
        complete = watcher.wait_snapshots_complete()
    finally:
        watcher.stop()
    seen = snapshots_seen(watcher.first_seen_ns, watcher.last_change_ns, watcher.sizes, window_start_ns)
    in_window = [s for s in seen if s.started_s <= duration_s and (s.done_s is None or s.done_s >= 0)]
    figures = load_figures(result, duration_s)
    figures["snapshots_in_window"] = len(in_window)
    if in_window and in_window[0].done_s is not None and complete:
        figures["snapshot_write_s"] = round(in_window[0].done_s - in_window[0].started_s, 2)
    return figures, [asdict(s) for s in seen]


def run_round(target: str, round_index: int, shape: TreeShape, snap_count: int,
              args: argparse.Namespace) -> dict[str, object]:
    """One target's round: build, restart, getChildren, set during a snapshot. A phase that
    fails ends the round with its error; what was measured before it is kept."""
    workdir = Path(tempfile.mkdtemp(prefix=f"pyzk-scale-{target}-", dir=servers._data_root()))
    (workdir / "data").mkdir()
    metrics: dict[str, float] = {}
    details: dict[str, object] = {"snap_count": snap_count}
    record: dict[str, object] = {"target": target, "round": round_index, "metrics": metrics,
                                 "details": details, "error": None}
    server: servers.RunningServer | None = None
    phase = "start empty"

    def note(text: str) -> None:
        print(f"[{target}] round {round_index} {text}", flush=True)

    try:
        server = launch(target, workdir, force_sync=False, snap_count=None)
        time.sleep(args.settle)
        rss_empty_kib = servers.rss_kib(server.pid)
        phase = "build"
        metrics["build_s"] = round(build_tree(server.hosts, shape), 2)
        time.sleep(args.settle)
        rss_loaded_kib = servers.rss_kib(server.pid)
        after_build = srvr(server.port)
        details["srvr_after_build"] = after_build
        if after_build.get("node_count", 0) < shape.nodes:
            raise ScaleRunFailed(f"srvr counts {after_build.get('node_count')} znodes after the build")
        metrics["rss_empty_mib"] = round(rss_empty_kib / 1024, 1)
        metrics["rss_loaded_mib"] = round(rss_loaded_kib / 1024, 1)
        metrics["rss_per_znode_bytes"] = round(rss_per_znode_bytes(rss_empty_kib, rss_loaded_kib, shape.nodes), 1)
        note(f"built {shape.nodes:,} znodes in {metrics['build_s']} s; RSS {metrics['rss_empty_mib']} -> "
             f"{metrics['rss_loaded_mib']} MiB, {metrics['rss_per_znode_bytes']} B/znode; srvr {after_build}")
        servers.stop(server, keep_workdir=True)
        server = None

        phase = "restart"
        launched = time.monotonic()
        server = launch(target, workdir, force_sync=True, snap_count=snap_count)
        metrics["restart_s"] = round(server.startup_s, 2)
        rss_restarted_kib = servers.rss_kib(server.pid)
        after_restart = srvr(server.port)
        if after_restart.get("node_count") != after_build.get("node_count"):
            raise ScaleRunFailed(f"srvr counts {after_restart.get('node_count')} znodes after the "
                                 f"restart, {after_build.get('node_count')} before it")
        metrics["rss_after_restart_mib"] = round(rss_restarted_kib / 1024, 1)
        metrics["rss_per_znode_after_restart_bytes"] = round(
            rss_per_znode_bytes(rss_empty_kib, rss_restarted_kib, shape.nodes), 1)
        startup_snapshot_s = wait_startup_snapshot(
            workdir / "data" / "version-2", after_build.get("zxid", 0), launched)
        if startup_snapshot_s is not None:
            metrics["startup_snapshot_s"] = round(startup_snapshot_s, 2)
        note(f"restart: serving after {metrics['restart_s']} s, start-up snapshot on disk after "
             f"{metrics.get('startup_snapshot_s', 'never')} s, RSS {metrics['rss_after_restart_mib']} MiB")

        for outstanding in GET_CHILDREN_OUTSTANDING:
            phase = f"getChildren 1x{outstanding}"
            for name, value in measure_get_children(server, shape, outstanding, args).items():
                metrics[f"get_children_1x{outstanding}.{name}"] = value
            note(f"{phase}: {metrics[f'get_children_1x{outstanding}.ops_per_s']} ops/s, "
                 f"p99 {metrics[f'get_children_1x{outstanding}.p99_us']} us")

        prepare(LoadSpec(hosts=server.hosts, workload="set"))  # the keys, once: see SETUP_TXNS
        for case, duration_s in (("set_steady", args.steady_duration),
                                 ("set_during_snapshot", args.snapshot_duration)):
            phase = case
            figures, seen = measure_set_at_rate(server, args, f"{case}-{round_index}", round_index + 1, duration_s)
            details[f"{case}.snapshots_seen"] = seen
            for name, value in figures.items():
                metrics[f"{case}.{name}"] = value
            note(f"{case}: {figures}; snapshots seen {seen}")
    except (ScaleRunFailed, servers.ServerDidNotStart, VerificationError, OSError) as error:
        message = f"{phase}: {type(error).__name__}: {error}"
        if server is not None and server.process.poll() is not None:
            message += f" (server exited: {server.log_tail(10)})"
        record["error"] = message
        note(f"FAILED {message}")
    finally:
        if server is not None:
            servers.stop(server, keep_workdir=True)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return record


def _target_list(text: str) -> list[str]:
    targets = [t for t in text.split(",") if t]
    unknown = set(targets) - set(servers.TARGETS)
    if unknown or not targets:
        raise argparse.ArgumentTypeError(f"targets are among {servers.TARGETS}, not {text!r}")
    return targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=1_000_000, help="znodes in the tree (100 bytes each)")
    parser.add_argument("--children", type=int, default=100_000, help="children of the wide parent")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per target")
    parser.add_argument("--targets", type=_target_list, default="apache,pyzk", help="comma list of apache,pyzk")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per getChildren run")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each run")
    parser.add_argument("--snapshot-rate", type=float, default=2000.0, help="setData/s during the snapshot")
    parser.add_argument("--steady-duration", type=float, default=10.0,
                        help="measured seconds of the same setData load before, with no snapshot")
    parser.add_argument("--snapshot-duration", type=float, default=30.0, help="measured seconds of the run with one")
    parser.add_argument("--snapshot-connections", type=int, default=4)
    parser.add_argument("--snapshot-outstanding", type=int, default=16)
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before reading VmRSS")
    parser.add_argument("--keep", action="store_true", help="keep each round's dataDir and log")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()
    targets: list[str] = args.targets
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    try:
        shape = TreeShape(args.nodes, args.children)
    except ValueError as error:
        parser.error(str(error))
    load_s_before_window = 2 * args.warmup + args.steady_duration  # the steady run, both warm-ups
    snap_count = snap_count_for(args.snapshot_rate, load_s_before_window, args.snapshot_duration, SETUP_TXNS)
    due_s = snapshot_due_window_s(snap_count, args.snapshot_rate, load_s_before_window, SETUP_TXNS)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    load_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    began = time.monotonic()
    rounds: list[dict[str, object]] = []
    result: dict[str, object] = {"stamp": stamp, "args": {k: str(v) for k, v in vars(args).items()},
                                 "rounds": rounds}
    for round_index in range(args.rounds):
        for target in targets:  # A B A B ...
            rounds.append(run_round(target, round_index, shape, snap_count, args))
            # rewritten after every round, so a run cut short still leaves its figures
            load_now = " ".join(f"{x:.2f}" for x in os.getloadavg())
            result["machine"] = (f"{os.cpu_count()} cores, Python {sys.version.split()[0]}; load average "
                                 f"at start {load_start}, at the last round's end {load_now}")
            result["config"] = (
                f"{shape.nodes:,} znodes of {DATA_BYTES} bytes ({shape.children:,} under {WIDE_PARENT}, "
                f"the rest 1,000 per parent), {len(rounds)} of {args.rounds * len(targets)} rounds done, "
                f"A B A B; build with forceSync=no, measurements with bench/run.py's zoo.cfg "
                f"(forceSync=yes) + snapCount={snap_count} (snapshot due {due_s[0]:.1f}-{due_s[1]:.1f} s "
                f"into its setData window); getChildren {args.duration:g} s, setData "
                f"{args.snapshot_rate:,.0f}/s on {args.snapshot_connections}x{args.snapshot_outstanding} for "
                f"{args.steady_duration:g} s (steady) then {args.snapshot_duration:g} s (with the snapshot), "
                f"{args.warmup:g} s warm-up each; {time.monotonic() - began:.0f} s so far"
            )
            paths = scale_report.write(result, args.out)
    for path in paths:
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
