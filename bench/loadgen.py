"""Load generator: one workload against one server, its connections spread over processes.

Rule: a run is bounded (warm-up + duration + a 10 s drain limit) and reports only what it
verified: ops/s over the measured window, p50/p99/p999 latency from the merged histogram of
every process, and the CPU the generator itself spent per op, so a reader can tell whether
the generator or the server was the bottleneck (this machine has 2 cores, shared by both).
With several hosts (an ensemble) the connections are spread round-robin over them, the
setup is done through the first and waited for on every other, and `member_pids` gives
each member's CPU per op.

    python -m bench.loadgen --hosts 127.0.0.1:2181 --workload get --connections 16 \
        --outstanding 32 --processes 1 --duration 10
"""

import argparse
import json
import multiprocessing
import multiprocessing.connection
import os
import secrets
import threading
import time
from dataclasses import asdict, dataclass

from bench import wire
from bench.engine import (
    BlockingSession,
    Engine,
    EngineResult,
    VerificationError,
    parse_host_list,
    parse_hosts,
)
from bench.histogram import LatencyHistogram
from bench.workloads import WORKLOADS, Request, setup_requests

_READY_TIMEOUT_S = 60.0
_START_MARGIN_S = 0.2
_VISIBLE_TIMEOUT_S = 10.0
_VISIBLE_POLL_S = 0.05


@dataclass(frozen=True)
class LoadSpec:
    hosts: str
    workload: str
    connections: int = 16
    outstanding: int = 32
    processes: int = 1
    duration_s: float = 10.0
    warmup_s: float = 1.0
    rate_ops_s: float | None = None  # None: closed loop, as fast as replies come back
    seed: int = 1
    server_pid: int | None = None  # if given, the server's CPU per op is reported
    member_pids: tuple[int, ...] = ()  # ensemble members: each one's CPU per op is reported


@dataclass(frozen=True)
class LoadResult:
    spec: LoadSpec
    ops: int
    ops_per_s: float
    p50_us: int
    p99_us: int
    p999_us: int
    mean_us: float
    replies_verified: int
    notifications: int
    sessions_opened: int
    generator_cpu_us_per_op: float
    server_cpu_us_per_op: float | None
    member_cpu_us_per_op: tuple[float | None, ...] = ()  # in member_pids' order

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    def summary(self) -> str:
        server = (
            f", server {self.server_cpu_us_per_op:.1f} us CPU/op"
            if self.server_cpu_us_per_op is not None
            else ""
        )
        if self.member_cpu_us_per_op:
            each = " + ".join("?" if v is None else f"{v:.1f}" for v in self.member_cpu_us_per_op)
            server += f", members {each} us CPU/op"
        return (
            f"{self.spec.workload}: {self.ops_per_s:,.0f} ops/s  p50 {self.p50_us} us  "
            f"p99 {self.p99_us} us  p999 {self.p999_us} us  "
            f"({self.replies_verified:,} replies verified; generator "
            f"{self.generator_cpu_us_per_op:.1f} us CPU/op{server})"
        )


def _process_cpu_s(pid: int) -> float:
    """utime + stime of a process, from /proc (Linux)."""
    with open(f"/proc/{pid}/stat") as stat_file:
        fields = stat_file.read().rpartition(")")[2].split()
    ticks_per_s = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks_per_s


def _split(count: int, parts: int) -> list[int]:
    return [count // parts + (1 if i < count % parts else 0) for i in range(parts)]


def _make_engine(
    spec: LoadSpec, run_tag: str, process_index: int, connection_count: int, first_index: int = 0
) -> Engine:
    """first_index: the run-wide number of this engine's first connection (round-robin)."""
    tags = [f"{run_tag}-{process_index}-{i}" for i in range(connection_count)]
    rate = spec.rate_ops_s * connection_count / spec.connections if spec.rate_ops_s else None
    return Engine(
        parse_hosts(spec.hosts),
        WORKLOADS[spec.workload],
        tags,
        seed=spec.seed * 1000 + process_index,
        outstanding=spec.outstanding,
        rate_ops_s=rate,
        addresses=parse_host_list(spec.hosts),
        first_index=first_index,
    )


def _worker(
    spec: LoadSpec, run_tag: str, process_index: int, connection_count: int,
    pipe: multiprocessing.connection.Connection, first_index: int = 0,
) -> None:
    """Child process: connect, report ready, wait for the shared start instant, run, report."""
    try:
        engine = _make_engine(spec, run_tag, process_index, connection_count, first_index)
        try:
            engine.connect_all()
            pipe.send(("ready", None))
            start_ns = pipe.recv()
            result = engine.run(start_ns, spec.warmup_s, spec.duration_s)
        finally:
            engine.close()
        pipe.send(("done", _result_to_wire(result)))
    except Exception as error:  # noqa: BLE001 -- reported to the parent; a child must not die silently
        pipe.send(("error", f"{type(error).__name__}: {error}"))
    finally:
        pipe.close()


def _result_to_wire(result: EngineResult) -> dict[str, object]:
    return {
        "ops": result.ops,
        "replies_verified": result.replies_verified,
        "notifications": result.notifications,
        "sessions_opened": result.sessions_opened,
        "histogram": result.histogram.to_sparse(),
        "generator_cpu_s": result.generator_cpu_s,
    }


def _result_from_wire(data: dict[str, object]) -> EngineResult:
    histogram = LatencyHistogram.from_sparse(data["histogram"])  # type: ignore[arg-type]
    return EngineResult(
        ops=int(data["ops"]),  # type: ignore[call-overload]
        replies_verified=int(data["replies_verified"]),  # type: ignore[call-overload]
        notifications=int(data["notifications"]),  # type: ignore[call-overload]
        sessions_opened=int(data["sessions_opened"]),  # type: ignore[call-overload]
        histogram=histogram,
        generator_cpu_s=float(data["generator_cpu_s"]),  # type: ignore[arg-type]
    )


class _ServerCpuSampler:
    """Samples the servers' CPU time at the measured window's two edges, on a side thread."""

    def __init__(self, pids: list[int], window_start_ns: int, window_end_ns: int) -> None:
        self.pids = pids
        self.samples: dict[int, list[float]] = {pid: [] for pid in pids}
        self.thread = threading.Thread(
            target=self._sample, args=(window_start_ns, window_end_ns), daemon=True
        )
        if pids:
            self.thread.start()

    def _sample(self, *edges_ns: int) -> None:
        for edge_ns in edges_ns:
            time.sleep(max(0.0, (edge_ns - time.perf_counter_ns()) / 1e9))
            for pid in self.pids:
                try:
                    self.samples[pid].append(_process_cpu_s(pid))
                except OSError:
                    continue  # that process is gone: its figure stays None

    def cpu_s(self, pid: int | None) -> float | None:
        if pid is None or pid not in self.samples:
            return None
        self.thread.join(timeout=1.0)
        samples = self.samples[pid]
        return samples[1] - samples[0] if len(samples) == 2 else None


def prepare(spec: LoadSpec) -> None:
    """Create the workload's parents and keys (idempotent: NODEEXISTS is fine), through the
    first host; with several hosts, wait until every other one sees the last of them (a
    member may apply a committed txn a little after the one that answered)."""
    requests = setup_requests(WORKLOADS[spec.workload].needs_keys)
    session = BlockingSession(parse_hosts(spec.hosts))
    try:
        session.run(requests, frozenset({wire.ERR_NODEEXISTS}))
    finally:
        session.close()
    for address in parse_host_list(spec.hosts)[1:]:
        wait_visible(address, created_path(requests[-1]))


def created_path(request: Request) -> str:
    """The path of a create request's record (a ustring first: 4-byte length, then bytes)."""
    (length,) = wire.FRAME_LENGTH.unpack_from(request.record)
    return request.record[4 : 4 + length].decode()


def wait_visible(address: tuple[str, int], path: str, timeout_s: float = _VISIBLE_TIMEOUT_S) -> None:
    """Poll exists(path) on one server until it answers OK; bounded in time."""
    exists = Request(wire.OP_EXISTS, wire.exists(path), wire.stat_reply_length())
    deadline = time.monotonic() + timeout_s
    session = BlockingSession(address)
    try:
        for _attempt in range(int(timeout_s / _VISIBLE_POLL_S) + 1):
            try:
                session.run([exists])
                return
            except VerificationError:
                if time.monotonic() > deadline:
                    break
                time.sleep(_VISIBLE_POLL_S)
    finally:
        session.close()
    raise VerificationError(f"{path} not visible on {address[0]}:{address[1]} after {timeout_s:.0f} s")


def run_load(spec: LoadSpec) -> LoadResult:
    """Run one bounded load and return its verified results. Raises VerificationError if
    any reply was wrong, a connection was lost, or a process failed."""
    if spec.workload not in WORKLOADS:
        raise ValueError(f"unknown workload {spec.workload!r}; known: {sorted(WORKLOADS)}")
    processes = max(1, min(spec.processes, spec.connections))
    prepare(spec)
    run_tag = secrets.token_hex(4)
    if processes == 1:
        engine = _make_engine(spec, run_tag, 0, spec.connections)
        try:
            engine.connect_all()
            start_ns = time.perf_counter_ns() + int(_START_MARGIN_S * 1e9)
            sampler = _window_sampler(spec, start_ns)
            merged = engine.run(start_ns, spec.warmup_s, spec.duration_s)
        finally:
            engine.close()
    else:
        merged, sampler = _run_processes(spec, run_tag, processes)
    return _summarise(
        spec,
        merged,
        sampler.cpu_s(spec.server_pid),
        tuple(sampler.cpu_s(pid) for pid in spec.member_pids),
    )


def _window_sampler(spec: LoadSpec, start_ns: int) -> _ServerCpuSampler:
    window_start_ns = start_ns + int(spec.warmup_s * 1e9)
    pids = list(dict.fromkeys(([spec.server_pid] if spec.server_pid is not None else []) + list(spec.member_pids)))
    return _ServerCpuSampler(pids, window_start_ns, window_start_ns + int(spec.duration_s * 1e9))


def _run_processes(spec: LoadSpec, run_tag: str, processes: int) -> tuple[EngineResult, _ServerCpuSampler]:
    context = multiprocessing.get_context("fork")
    children = []
    try:
        first_index = 0
        for index, count in enumerate(_split(spec.connections, processes)):
            parent_end, child_end = context.Pipe()
            child = context.Process(
                target=_worker, args=(spec, run_tag, index, count, child_end, first_index), daemon=True
            )
            first_index += count
            child.start()
            child_end.close()
            children.append((child, parent_end))
        for _child, pipe in children:
            _expect(pipe, "ready", _READY_TIMEOUT_S)
        start_ns = time.perf_counter_ns() + int(_START_MARGIN_S * 1e9)
        sampler = _window_sampler(spec, start_ns)
        for _child, pipe in children:
            pipe.send(start_ns)
        bound_s = _START_MARGIN_S + spec.warmup_s + spec.duration_s + 15.0
        merged = EngineResult()
        for _child, pipe in children:
            part = _result_from_wire(_expect(pipe, "done", bound_s))  # type: ignore[arg-type]
            merged.ops += part.ops
            merged.replies_verified += part.replies_verified
            merged.notifications += part.notifications
            merged.sessions_opened += part.sessions_opened
            merged.generator_cpu_s += part.generator_cpu_s
            merged.histogram.merge(part.histogram)
        return merged, sampler
    finally:
        for child, _pipe in children:
            child.join(timeout=5.0)
            if child.is_alive():
                child.kill()  # our own child, by its PID
                child.join(timeout=5.0)


def _expect(pipe: multiprocessing.connection.Connection, kind: str, timeout_s: float) -> object:
    if not pipe.poll(timeout_s):
        raise VerificationError(f"a generator process sent no {kind!r} within {timeout_s:.0f} s")
    got_kind, payload = pipe.recv()
    if got_kind == "error":
        raise VerificationError(f"generator process failed: {payload}")
    if got_kind != kind:
        raise VerificationError(f"generator process sent {got_kind!r}, expected {kind!r}")
    return payload


def _summarise(
    spec: LoadSpec,
    result: EngineResult,
    server_cpu_s: float | None,
    member_cpu_s: tuple[float | None, ...] = (),
) -> LoadResult:
    ops = result.ops
    histogram = result.histogram
    return LoadResult(
        spec=spec,
        ops=ops,
        ops_per_s=ops / spec.duration_s,
        p50_us=histogram.percentile_us(0.50),
        p99_us=histogram.percentile_us(0.99),
        p999_us=histogram.percentile_us(0.999),
        mean_us=round(histogram.mean_us(), 1),
        replies_verified=result.replies_verified,
        notifications=result.notifications,
        sessions_opened=result.sessions_opened,
        generator_cpu_us_per_op=round(result.generator_cpu_s * 1e6 / ops, 2) if ops else 0.0,
        server_cpu_us_per_op=(
            round(server_cpu_s * 1e6 / ops, 2) if server_cpu_s is not None and ops else None
        ),
        member_cpu_us_per_op=tuple(
            round(cpu_s * 1e6 / ops, 2) if cpu_s is not None and ops else None for cpu_s in member_cpu_s
        ),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--hosts", required=True, help="127.0.0.1:PORT[,127.0.0.1:PORT2,...] (connections round-robin)"
    )
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="get")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--outstanding", type=int, default=32, help="requests in flight per connection")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    parser.add_argument("--rate", type=float, default=None, help="offered ops/s (open loop)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--server-pid", type=int, default=None, help="report the server's CPU/op")
    parser.add_argument(
        "--member-pids", default="", help="comma list of PIDs (ensemble members): each one's CPU/op"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    result = run_load(
        LoadSpec(
            hosts=args.hosts,
            workload=args.workload,
            connections=args.connections,
            outstanding=args.outstanding,
            processes=args.processes,
            duration_s=args.duration,
            warmup_s=args.warmup,
            rate_ops_s=args.rate,
            seed=args.seed,
            server_pid=args.server_pid,
            member_pids=tuple(int(pid) for pid in args.member_pids.split(",") if pid),
        )
    )
    print(json.dumps(result.to_json(), indent=2) if args.json else result.summary())


if __name__ == "__main__":
    main()
