"""A long write soak on 3-server ensembles, Apache ZooKeeper and pyzk side by side (issue 10).

    python -m bench.soak                                  # 1,000,000 setData over 10,000 keys
    python -m bench.soak --writes 30000 --keys 1000 --snap-count 4000 --targets pyzk

One target, on a fresh ensemble (servers.start_ensemble, the zoo.cfg of bench.ensemble plus
autopurge.snapRetainCount=3, autopurge.purgeInterval=1 and snapCount=--snap-count, default
100000 = ZooKeeper's default, written out so the cfg says it):

1. create --keys znodes of 100 bytes under /bench-soak (pipelined, through member 1) and wait
   until the other members see the last one;
2. --writes setData of 100 bytes on random keys, in --checkpoints equal intervals (default 5:
   every 20 %). Each interval is a fresh run of the bench generator (bench/engine.py: pipelined
   connections spread round-robin over the members, every reply verified) that stops issuing
   once the interval's count has been sent, then drains;
3. at each checkpoint, with no load running: RSS of every member (servers.rss_kib), the count
   and bytes (apparent size, and blocks on disk: Apache preallocates its logs sparsely, 64 MB)
   of snapshot.* and log.* in each member's dataDir/version-2, the files gone since the last
   look (a purge), writes/s over the interval (and its p50/p99), then a failover + rejoin
   (bench/failover.kill_leader_and_recover: kill -9 the leader by PID, time the first write
   through a survivor, restart it on the same dataDir, time its rejoin at the leader's Zxid);
4. after the last checkpoint's rejoin, one more look at RSS and files.

autopurge.purgeInterval is in hours. Apache's DatadirCleanupManager runs its first purge when
the member starts (Timer delay 0) and then hourly, so within a run only a restarted member
purges; the report says whether any file was removed and where.
Results: bench/results/<stamp>-soak.md and .json (rewritten after each target), and
<stamp>-soak-rss.png (RSS per member vs writes) if matplotlib is importable (not a dependency).
"""

import argparse
import json
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from bench import failover, servers, wire
from bench.engine import BlockingSession, Engine
from bench.loadgen import wait_visible
from bench.workloads import DATA, Request, Workload

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SOAK_ROOT = "/bench-soak"
PROBE_PATH = f"{SOAK_ROOT}/probe"
SETUP_BATCH = 1000
load_average = failover.load_average


def key_path(index: int) -> str:
    return f"{SOAK_ROOT}/k{index:05d}"


def soak_workload(keys: int) -> Workload:
    """setData of 100 bytes on a uniformly random key of `keys` (requests encoded once)."""
    requests = [Request(wire.OP_SET_DATA, wire.set_data(key_path(i), DATA), wire.stat_reply_length()) for i in range(keys)]

    def units(tag: str, seed: int) -> Iterator[tuple[Request, ...]]:
        rng = random.Random(seed)
        while True:
            yield (requests[rng.randrange(keys)],)

    return Workload("soak_set", f"setData of {len(DATA)} bytes on a random key of {keys}", units)


class CountedEngine(Engine):
    """The bench engine, issuing `budget` units in all (then draining) instead of running
    until a window ends; the window (duration) is only the time bound."""

    def __init__(self, *args: object, budget: int, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.remaining = budget

    def _issue(self, conn, now_ns: int) -> None:  # type: ignore[no-untyped-def]
        if self.remaining <= 0:
            self.issuing = False
            return
        room = self.outstanding_max
        before = len(conn.outstanding)
        self.outstanding_max = min(room, before + self.remaining)
        try:
            super()._issue(conn, now_ns)
        finally:
            self.outstanding_max = room
        self.remaining -= len(conn.outstanding) - before


def create_keys(ensemble: servers.RunningEnsemble, keys: int) -> float:
    """The soak's znodes, pipelined in batches through member 1; waits until the other
    members see the last one. Returns the seconds it took."""
    began = time.monotonic()
    session = BlockingSession((servers.LOOPBACK, ensemble.members[0].port))
    try:
        paths = [SOAK_ROOT, PROBE_PATH] + [key_path(i) for i in range(keys)]
        for start in range(0, len(paths), SETUP_BATCH):
            batch = [
                Request(wire.OP_CREATE, wire.create(path, DATA), wire.create_reply_length(path))
                for path in paths[start : start + SETUP_BATCH]
            ]
            session.run(batch, frozenset({wire.ERR_NODEEXISTS}))
    finally:
        session.close()
    for member in ensemble.members[1:]:
        wait_visible((servers.LOOPBACK, member.port), paths[-1])
    return time.monotonic() - began


def run_writes(
    ensemble: servers.RunningEnsemble, workload: Workload, count: int, args: argparse.Namespace, seed: int
) -> dict[str, object]:
    """`count` verified setData through a fresh generator (connections round-robin over the
    members), bounded by --interval-timeout. Returns writes, seconds, writes/s, p50/p99."""
    addresses = [(servers.LOOPBACK, member.port) for member in ensemble.members]
    tags = [f"soak-{seed}-{i}" for i in range(args.connections)]
    engine = CountedEngine(
        addresses[0], workload, tags, seed=seed, outstanding=args.outstanding, addresses=addresses, budget=count
    )
    try:
        engine.connect_all()
        cpu_began = time.process_time()
        start_ns = time.perf_counter_ns()
        result = engine.run(start_ns, 0.0, args.interval_timeout)
        seconds = (time.perf_counter_ns() - start_ns) / 1e9
        cpu_s = time.process_time() - cpu_began
    finally:
        engine.close()
    return {
        "writes": result.ops,
        "seconds": round(seconds, 2),
        "writes_per_s": round(result.ops / seconds) if seconds > 0 else None,
        "p50_us": result.histogram.percentile_us(0.50),
        "p99_us": result.histogram.percentile_us(0.99),
        "generator_cpu_us_per_op": round(cpu_s * 1e6 / result.ops, 2) if result.ops else None,
        "complete": result.ops == count,
    }


def data_files(ensemble: servers.RunningEnsemble, index: int) -> dict[str, object]:
    """snapshot.* and log.* in a member's dataDir/version-2: count, bytes, blocks on disk, names.
    A *.tmp file (a snapshot being written, renamed when complete) is counted apart, as
    "in_progress", so its rename does not look like a purge."""
    member = ensemble.members[index]
    version_dir = Path(servers.read_cfg(member.workdir / "zoo.cfg")["dataDir"]) / "version-2"
    found: dict[str, object] = {"in_progress": sorted(p.name for p in version_dir.glob("*.tmp"))}
    for prefix in ("snapshot", "log"):
        count = size = disk = 0
        names = []
        for path in sorted(version_dir.glob(f"{prefix}.*")):
            if path.name.endswith(".tmp"):
                continue
            try:
                stat = path.stat()
            except OSError:  # removed while we looked (a purge or a .tmp rename)
                continue
            count += 1
            size += stat.st_size
            disk += stat.st_blocks * 512
            names.append(path.name)
        found[prefix] = {"count": count, "bytes": size, "disk_bytes": disk, "names": names}
    return found


def look(ensemble: servers.RunningEnsemble) -> list[dict[str, object]]:
    """RSS and data files of every member, now."""
    state = []
    for index, (peer, member) in enumerate(zip(ensemble.peers, ensemble.members, strict=True)):
        alive = member.process.poll() is None
        state.append(
            {
                "member": peer.server_id,
                "pid": member.pid,
                "rss_kib": servers.rss_kib(member.pid) if alive else None,
                **data_files(ensemble, index),
            }
        )
    return state


def purged_since(before: list[dict[str, object]], after: list[dict[str, object]]) -> dict[str, list[str]]:
    """Per member ("m1", ...): the snapshot/log files present before and gone now."""
    gone: dict[str, list[str]] = {}
    for old, new in zip(before, after, strict=True):
        names_before = set(old["snapshot"]["names"]) | set(old["log"]["names"])  # type: ignore[index]
        names_now = set(new["snapshot"]["names"]) | set(new["log"]["names"])  # type: ignore[index]
        removed = sorted(names_before - names_now)
        if removed:
            gone[f"m{old['member']}"] = removed
    return gone


def run_target(target: str, args: argparse.Namespace) -> dict[str, object]:
    entry: dict[str, object] = {"target": target, "load_start": load_average(), "checkpoints": []}
    began = time.monotonic()
    extra = (
        "autopurge.snapRetainCount=3",
        f"autopurge.purgeInterval={args.purge_interval}",
        f"snapCount={args.snap_count}",
    )
    try:
        ensemble = servers.start_ensemble(target, extra_cfg=extra)
    except servers.ServerDidNotStart as error:
        print(f"[{target}] ensemble did not start: {error}", file=sys.stderr)
        entry.update({"error": f"did not start: {error}", "load_end": load_average()})
        return entry
    checkpoints: list[dict[str, object]] = entry["checkpoints"]  # type: ignore[assignment]
    try:
        entry["startup_s"] = round(ensemble.startup_s, 2)
        entry["zoo_cfg"] = failover.cfg_limits(ensemble)
        entry["setup_s"] = round(create_keys(ensemble, args.keys), 2)
        previous = look(ensemble)
        entry["baseline"] = previous
        print(
            f"[{target}] ensemble up in {ensemble.startup_s:.2f} s, {args.keys} keys in {entry['setup_s']} s, "
            f"RSS {_rss_line(previous)}",
            flush=True,
        )
        workload = soak_workload(args.keys)
        done = 0
        for checkpoint in range(args.checkpoints):
            if time.monotonic() - began > args.max_minutes * 60:
                entry["stopped_early"] = f"--max-minutes {args.max_minutes:g} reached at {done} writes"
                break
            count = args.writes * (checkpoint + 1) // args.checkpoints - done
            record: dict[str, object] = {"checkpoint": checkpoint + 1, "load_start": load_average()}
            interval = run_writes(ensemble, workload, count, args, seed=checkpoint + 1)
            done += int(interval["writes"])  # type: ignore[call-overload]
            state = look(ensemble)
            record.update(
                {
                    "writes_done": done,
                    "interval": interval,
                    "members": state,
                    "purged_since_last": purged_since(previous, state),
                }
            )
            previous = state
            checkpoints.append(record)
            try:
                record["failover"] = failover.kill_leader_and_recover(
                    ensemble, PROBE_PATH, args.try_timeout, args.failover_timeout, args.rejoin_timeout
                )
            except TimeoutError as error:
                record["failover"] = {"error": str(error), "recovered": False}
            record["load_end"] = load_average()
            fo = record["failover"]
            print(
                f"[{target}] {done:,} writes: {interval['writes_per_s']} writes/s over the interval "
                f"(p99 {interval['p99_us']} us), RSS {_rss_line(state)}, files {_files_line(state)}, "
                f"purged {sum(len(v) for v in record['purged_since_last'].values())}; failover "  # type: ignore[attr-defined]
                f"{fo.get('failover_s')} s, rejoin {fo.get('rejoin_s')} s",  # type: ignore[attr-defined]
                flush=True,
            )
            if not interval["complete"] or not fo.get("recovered"):  # type: ignore[attr-defined]
                entry["stopped_early"] = f"checkpoint {checkpoint + 1}: interval {interval}, failover {fo}"
                break
        final = look(ensemble)
        entry["final"] = {"members": final, "purged_since_last": purged_since(previous, final)}
    except Exception as error:  # noqa: BLE001 -- recorded with the logs; the other target still runs
        entry["error"] = f"{type(error).__name__}: {error}"
        print(f"[{target}] FAILED: {entry['error']}\n{ensemble.log_tails(5)}", file=sys.stderr)
    finally:
        servers.stop_ensemble(ensemble)
    purges = [c["purged_since_last"] for c in checkpoints] + [entry.get("final", {}).get("purged_since_last", {})]  # type: ignore[attr-defined]
    entry.update(
        {
            "files_purged": sum(len(names) for p in purges for names in p.values()),  # type: ignore[attr-defined]
            "seconds": round(time.monotonic() - began, 1),
            "load_end": load_average(),
        }
    )
    return entry



def _rss_line(state: list[dict[str, object]]) -> str:
    return " / ".join("—" if m["rss_kib"] is None else f"{m['rss_kib'] / 1024:.0f}" for m in state) + " MiB"


def _files_line(state: list[dict[str, object]]) -> str:
    return " / ".join(f"{m['snapshot']['count']}s+{m['log']['count']}l" for m in state)  # type: ignore[index]


# -- report ------------------------------------------------------------------------------


def _mb(value: int) -> str:
    return f"{value / 1e6:.1f}"


def _members(state: list[dict[str, object]], cell) -> str:  # type: ignore[no-untyped-def]
    return " / ".join(cell(m) for m in state)


def _state_cells(state: list[dict[str, object]]) -> list[str]:
    return [
        _members(state, lambda m: "—" if m["rss_kib"] is None else f"{m['rss_kib'] / 1024:.0f}"),
        _members(state, lambda m: f"{m['snapshot']['count']} ({_mb(m['snapshot']['bytes'])})"),
        _members(state, lambda m: f"{m['log']['count']} ({_mb(m['log']['bytes'])}; {_mb(m['log']['disk_bytes'])})"),
    ]


def markdown(result: dict[str, object]) -> str:
    lines = [
        *failover.report_head("Write soak, 3-server ensembles", result),
        "Per checkpoint (no load running): RSS per member in MiB (m1 / m2 / m3); snapshot.* count "
        "(MB); log.* count (MB apparent size; MB on disk: Apache preallocates logs sparsely); files "
        "gone since the last look (purged); then the leader is killed: failover = kill -> first "
        "write through a survivor, rejoin = restart -> follower at the leader's Zxid (s). The row "
        "'after' is the look after the last rejoin.",
        "",
    ]
    for entry in result["targets"]:  # type: ignore[attr-defined]
        target = entry["target"]
        lines += [f"## {target}", ""]
        if entry.get("error") and not entry.get("checkpoints"):
            lines += [f"Failed: {entry['error'].splitlines()[0]}", ""]
            continue
        cfg = entry.get("zoo_cfg", {})
        lines += [
            f"zoo.cfg: {', '.join(f'{k}={v}' for k, v in cfg.items())}; ensemble up in {entry.get('startup_s')} s; "
            f"{result['args']['keys']} keys created in {entry.get('setup_s')} s; {entry.get('seconds')} s in all; "
            f"load average {_load(entry['load_start'])} -> {_load(entry['load_end'])}.",
            "",
            "| writes | writes/s (interval) | p50 / p99 ms | RSS MiB | snapshots n (MB) | logs n (MB; on disk) "
            "| purged | leader killed | failover s | rejoin s |",
            "|---:|---:|---|---|---|---|---:|---|---:|---:|",
        ]
        baseline = entry.get("baseline")
        if baseline:
            lines.append(f"| 0 | — | — | {' | '.join(_state_cells(baseline))} | — | — | — | — |")
        for record in entry["checkpoints"]:
            interval = record["interval"]
            fo = record.get("failover", {})
            purged = sum(len(v) for v in record["purged_since_last"].values())
            lines.append(
                f"| {record['writes_done']:,} | {_fmt(interval['writes_per_s'], ',')} "
                f"| {interval['p50_us'] / 1000:.1f} / {interval['p99_us'] / 1000:.1f} "
                f"| {' | '.join(_state_cells(record['members']))} | {purged} "
                f"| m{fo.get('leader_killed', '?')} -> m{fo.get('new_leader', '?')} "
                f"| {_fmt(fo.get('failover_s'), '.2f')} | {_fmt(fo.get('rejoin_s'), '.2f')} |"
            )
        final = entry.get("final")
        if final:
            purged = sum(len(v) for v in final["purged_since_last"].values())
            lines.append(f"| after | — | — | {' | '.join(_state_cells(final['members']))} | {purged} | — | — | — |")
        where = [
            f"by checkpoint {record['checkpoint']}: {_purge_counts(record['purged_since_last'])}"
            for record in entry["checkpoints"]
            if record["purged_since_last"]
        ]
        if final and final["purged_since_last"]:
            where.append(f"after the last rejoin: {_purge_counts(final['purged_since_last'])}")
        lines += [
            "",
            f"Files purged: {'yes' if entry.get('files_purged') else 'no'} ({entry.get('files_purged', 0)} files)"
            + (": " + "; ".join(where) if where else "."),
        ]
        for key in ("stopped_early", "error"):
            if entry.get(key):
                lines.append(f"{key.replace('_', ' ').capitalize()}: {entry[key]}")
        lines.append("")
    if result.get("plot"):
        lines += [f"RSS plot: {result['plot']}", ""]
    return "\n".join(lines)


def _purge_counts(gone: dict[str, list[str]]) -> str:
    """'m2 3 snapshots + 2 logs, ...' (the names are in the JSON)."""
    return ", ".join(
        f"{member} {sum(n.startswith('snapshot.') for n in names)} snapshots + "
        f"{sum(n.startswith('log.') for n in names)} logs"
        for member, names in gone.items()
    )


def _fmt(value: object, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def _load(values: object) -> str:
    return " ".join(f"{v:.2f}" for v in values) if isinstance(values, list) else "?"


def plot(result: dict[str, object], path: Path) -> bool:
    """RSS per member vs writes, one panel per target; False (nothing written) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    entries = [e for e in result["targets"] if e.get("checkpoints")]  # type: ignore[attr-defined]
    if not entries:
        return False
    figure, axes = plt.subplots(1, len(entries), figsize=(6 * len(entries), 4.5), squeeze=False)
    for axis, entry in zip(axes[0], entries, strict=True):
        points = [(0, entry["baseline"])] + [(c["writes_done"], c["members"]) for c in entry["checkpoints"]]
        for index in range(len(points[0][1])):
            xs = [w for w, state in points if state[index]["rss_kib"] is not None]
            ys = [state[index]["rss_kib"] / 1024 for _w, state in points if state[index]["rss_kib"] is not None]
            axis.plot(xs, ys, "o-", label=f"member {points[0][1][index]['member']}")
        axis.set_title(f"{entry['target']} (the leader is restarted after each point)")
        axis.set_xlabel("setData done")
        axis.set_ylabel("RSS, MiB")
        axis.set_ylim(bottom=0)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True


def write(result: dict[str, object], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    base = out_dir / f"{result['stamp']}-soak"
    png_path = out_dir / f"{result['stamp']}-soak-rss.png"
    written = []
    if plot(result, png_path):
        result["plot"] = png_path.name
        written.append(png_path)
    json_path = base.with_suffix(".json")
    md_path = base.with_suffix(".md")
    json_path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    md_path.write_text(markdown(result))
    return [md_path, json_path, *written]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writes", type=int, default=1_000_000, help="setData per target (default 1,000,000)")
    parser.add_argument("--keys", type=int, default=10_000, help="znodes written to (default 10,000)")
    parser.add_argument("--checkpoints", type=int, default=5, help="equal intervals (default 5: every 20 %%)")
    parser.add_argument("--connections", type=int, default=24, help="connections, round-robin over the members")
    parser.add_argument("--outstanding", type=int, default=32, help="requests in flight per connection")
    parser.add_argument("--snap-count", type=int, default=100_000, help="zoo.cfg snapCount (default 100000)")
    parser.add_argument("--purge-interval", type=int, default=1, help="autopurge.purgeInterval, hours (default 1)")
    parser.add_argument("--interval-timeout", type=float, default=1800.0, help="s bound of one interval's writes")
    parser.add_argument("--try-timeout", type=float, default=2.0, help="failover: s per write try")
    parser.add_argument("--failover-timeout", type=float, default=60.0, help="failover: s bound of the first write")
    parser.add_argument("--rejoin-timeout", type=float, default=120.0, help="failover: s bound of the rejoin")
    parser.add_argument("--max-minutes", type=float, default=120.0, help="bound per target, checked per interval")
    parser.add_argument("--targets", default="apache,pyzk", help="comma list of apache,pyzk")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    args.target_list = [t for t in args.targets.split(",") if t]
    for target in args.target_list:
        if target not in servers.TARGETS:
            parser.error(f"unknown target {target!r}")
    if args.keys < 1 or args.checkpoints < 1 or args.writes < args.checkpoints:
        parser.error("need --keys >= 1, --checkpoints >= 1 and --writes >= --checkpoints")
    return args


def main() -> None:
    args = parse_args()
    config = (
        f"{args.writes:,} setData of {len(DATA)} bytes over {args.keys:,} keys per target, "
        f"{args.checkpoints} checkpoints, generator {args.connections}x{args.outstanding} pipelined "
        "(round-robin over the members, every reply verified), 3-server ensembles "
        "(servers.start_ensemble: forceSync=yes, dataDir on local disk, 127.0.0.1) with "
        f"autopurge.snapRetainCount=3 autopurge.purgeInterval={args.purge_interval} snapCount={args.snap_count}"
    )
    failover.run_all(args.target_list, config, args, run_target, write)


if __name__ == "__main__":
    main()
