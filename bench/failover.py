"""Leader failover on 3-server ensembles, Apache ZooKeeper and pyzk side by side (issue 10).

    python -m bench.failover                     # 50 kills per target
    python -m bench.failover --kills 3 --targets pyzk

One target: start a 3-server ensemble (servers.start_ensemble: the zoo.cfg of bench.ensemble),
connect a kazoo client (10 s session timeout) that stays connected across every kill, then
`--kills` times:

1. wait until srvr shows one leader and two followers (bounded), note the leader;
2. **kill -9 the leader by its PID** (servers.kill_member) and start the clock;
3. **failover** = kill -> the first successful write: a raw setData of 100 bytes (the bench's
   own encoder, bench/wire.py) on a fresh session through a surviving member, the two
   survivors tried in turn, `--try-timeout` s per try (connect + handshake + reply), retried
   until `--failover-timeout` s; the clock stops when the OK reply is read;
4. restart the killed member with the same zoo.cfg, myid and dataDir (servers.restart_member);
5. **rejoin** = restart -> the member answering srvr as follower (or leader) with the same
   Zxid as the leader's srvr at the same poll (polled every 0.05 s, `--rejoin-timeout` s).

A kill whose write or rejoin does not happen in time counts as failed to recover; if the
ensemble does not get back to a leader and two followers, the target's loop stops there.
The kazoo client's state changes are counted: LOST is a session expiry (kazoo then opens a new
session), SUSPENDED a lost connection it got back. Every loop is bounded in count and time;
every process this starts is stopped by its PID in a finally block.
Results: bench/results/<stamp>-failover.md and .json (rewritten after each target).
"""

import argparse
import collections
import dataclasses
import datetime
import json
import logging
import math
import os
import platform
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bench import servers, wire
from bench.engine import BlockingSession, VerificationError, recv_exactly
from bench.workloads import DATA, Request

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PROBE_PATH = "/bench-failover"
KAZOO_SESSION_TIMEOUT_S = 10.0
QUORUM_TIMEOUT_S = 60.0
REJOIN_POLL_S = 0.05
FAILOVER_RETRY_PAUSE_S = 0.02
PROBE_SESSION_TIMEOUT_MS = 4000  # the minimum at tickTime=2000: a try left half open expires soon


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> str:
    java = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30, check=False)
    java_version = (java.stderr.splitlines() or ["?"])[0]
    return f"{os.cpu_count()} cores, Python {platform.python_version()}, {java_version}"


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile (p99 of 50 values is the largest); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def summary(values: list[float]) -> dict[str, float | int | None]:
    return {
        "count": len(values),
        "p50_s": _round(percentile(values, 0.50)),
        "p99_s": _round(percentile(values, 0.99)),
        "max_s": _round(max(values) if values else None),
    }


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def cfg_limits(ensemble: servers.RunningEnsemble) -> dict[str, str]:
    """tickTime, initLimit, syncLimit (and snapCount/autopurge if set) of member 1's zoo.cfg."""
    cfg = servers.read_cfg(ensemble.members[0].workdir / "zoo.cfg")
    keys = ("tickTime", "initLimit", "syncLimit", "snapCount", "autopurge.snapRetainCount", "autopurge.purgeInterval")
    return {key: cfg[key] for key in keys if key in cfg}


# -- the raw write probe -----------------------------------------------------------------


def _recv_frame(sock: socket.socket, deadline: float) -> bytes:
    """One length-prefixed frame, every recv bounded by the try's deadline."""
    (length,) = wire.FRAME_LENGTH.unpack(recv_exactly(sock, 4, deadline))
    return recv_exactly(sock, length, deadline)


def write_once(port: int, path: str, timeout_s: float) -> float:
    """Open a session on 127.0.0.1:port, setData(path, 100 bytes), and close the session.
    Returns the time.monotonic() at which the setData's OK reply was read. Raises OSError
    or VerificationError (refused, closed, timed out, or an error reply)."""
    deadline = time.monotonic() + timeout_s
    with socket.create_connection((servers.LOOPBACK, port), timeout=timeout_s) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(wire.connect_request(PROBE_SESSION_TIMEOUT_MS))
        frame = _recv_frame(sock, deadline)
        if len(frame) != wire.CONNECT_RESPONSE_SIZE:
            raise VerificationError(f"ConnectResponse of {len(frame)} bytes")
        _version, timeout_ms, session_id, _pwlen, _pw, _ro = wire.CONNECT_RESPONSE.unpack(frame)
        if timeout_ms <= 0 or session_id == 0:
            raise VerificationError("session refused")
        sock.sendall(wire.request_frame(1, wire.OP_SET_DATA, wire.set_data(path, DATA)))
        reply = _recv_frame(sock, deadline)
        xid, _zxid, err = wire.REPLY_HEADER.unpack_from(reply)
        if xid != 1 or err != wire.ERR_OK or len(reply) != wire.stat_reply_length():
            raise VerificationError(f"setData reply xid {xid} err {err} length {len(reply)}")
        written_at = time.monotonic()
        try:  # close the session so no probe session expires later (a txn during a rejoin)
            sock.sendall(wire.request_frame(2, wire.OP_CLOSE_SESSION, b""))
            _recv_frame(sock, time.monotonic() + timeout_s)
        except (OSError, VerificationError):
            pass
    return written_at


@dataclasses.dataclass
class WriteOutcome:
    seconds: float | None  # from the kill to the OK reply; None: no write within the bound
    tries: int
    member: int | None  # server id that took the write
    errors: dict[str, int]


def first_write(
    ensemble: servers.RunningEnsemble,
    survivors: list[int],
    since: float,
    path: str,
    try_timeout_s: float,
    bound_s: float,
) -> WriteOutcome:
    """Retry write_once through the survivors in turn until one succeeds (bounded by bound_s
    from `since` and by a try count); seconds are measured from `since`."""
    errors: collections.Counter[str] = collections.Counter()
    deadline = since + bound_s
    max_tries = int(bound_s / FAILOVER_RETRY_PAUSE_S) + 1
    for attempt in range(max_tries):
        index = survivors[attempt % len(survivors)]
        try:
            written_at = write_once(ensemble.members[index].port, path, try_timeout_s)
            return WriteOutcome(written_at - since, attempt + 1, ensemble.peers[index].server_id, dict(errors))
        except (OSError, VerificationError, struct.error) as error:
            errors[type(error).__name__ if isinstance(error, OSError) else str(error)] += 1
        if time.monotonic() > deadline:
            return WriteOutcome(None, attempt + 1, None, dict(errors))
        time.sleep(FAILOVER_RETRY_PAUSE_S)
    return WriteOutcome(None, max_tries, None, dict(errors))


def wait_rejoined(
    ensemble: servers.RunningEnsemble, index: int, since: float, bound_s: float
) -> tuple[float | None, str]:
    """Poll srvr on member `index` and the others until it is follower/leader with the
    leader's Zxid. Returns (seconds from `since`, or None if not in time; what was last seen)."""
    member = ensemble.members[index]
    others = [i for i in range(len(ensemble.members)) if i != index]
    last = "no poll"
    for _attempt in range(int(bound_s / REJOIN_POLL_S) + 1):
        if member.process.poll() is not None:
            return None, f"exited with {member.process.returncode}: {member.log_tail(5)}"
        mode, zxid = servers.member_status(member.port, timeout_s=1.0)
        if mode in ("follower", "leader") and zxid is not None:
            leader_zxid = zxid if mode == "leader" else None
            for other in others:
                other_mode, other_zxid = servers.member_status(ensemble.members[other].port, timeout_s=1.0)
                if other_mode == "leader":
                    leader_zxid = other_zxid
            if zxid == leader_zxid:
                return time.monotonic() - since, f"{mode} at zxid {zxid:#x}"
            last = f"{mode} at {zxid:#x}, leader at {leader_zxid:#x}" if leader_zxid else f"{mode}, no leader"
        else:
            last = f"mode {mode}"
        if time.monotonic() - since > bound_s:
            break
        time.sleep(REJOIN_POLL_S)
    return None, last


def wait_for_quorum(ensemble: servers.RunningEnsemble, bound_s: float = QUORUM_TIMEOUT_S) -> list[str | None]:
    """srvr modes of every member once they show one leader and the rest followers; raises
    TimeoutError with the last modes seen otherwise."""
    deadline = time.monotonic() + bound_s
    modes: list[str | None] = []
    for _attempt in range(int(bound_s / 0.1) + 1):
        modes = servers.ensemble_modes(ensemble)
        if servers.quorum_formed(modes):
            return modes
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    raise TimeoutError(f"no leader and {len(modes) - 1} followers after {bound_s:.0f} s: modes {modes}")


def ensure_probe(ensemble: servers.RunningEnsemble, path: str) -> None:
    """Create the probe znode (100 bytes) through member 1, tolerating NODEEXISTS."""
    session = BlockingSession((servers.LOOPBACK, ensemble.members[0].port))
    try:
        create = Request(wire.OP_CREATE, wire.create(path, DATA), wire.create_reply_length(path))
        session.run([create], frozenset({wire.ERR_NODEEXISTS}))
    finally:
        session.close()


def kill_leader_and_recover(
    ensemble: servers.RunningEnsemble,
    path: str,
    try_timeout_s: float = 2.0,
    failover_timeout_s: float = 60.0,
    rejoin_timeout_s: float = 120.0,
) -> dict[str, object]:
    """One failover + rejoin measurement: find the leader (srvr), kill -9 it by PID, time the
    first write through a survivor, restart it on the same dataDir, time its rejoin.
    Raises TimeoutError if there is no leader and full set of followers to begin with."""
    modes = wait_for_quorum(ensemble)
    leader = servers.leader_index(modes)
    assert leader is not None
    _mode, zxid_before = servers.member_status(ensemble.members[leader].port)
    record: dict[str, object] = {
        "leader_killed": ensemble.peers[leader].server_id,
        "leader_pid": ensemble.members[leader].pid,
        "zxid_before": f"{zxid_before:#x}" if zxid_before is not None else None,
    }
    killed_at = servers.kill_member(ensemble, leader)
    survivors = [i for i in range(len(ensemble.members)) if i != leader]
    outcome = first_write(ensemble, survivors, killed_at, path, try_timeout_s, failover_timeout_s)
    record.update(
        {
            "failover_s": _round(outcome.seconds),
            "write_tries": outcome.tries,
            "write_through": outcome.member,
            "write_errors": outcome.errors,
        }
    )
    restarted_at = time.monotonic()
    servers.restart_member(ensemble, leader)
    rejoin_s, seen = wait_rejoined(ensemble, leader, restarted_at, rejoin_timeout_s)
    modes_after = servers.ensemble_modes(ensemble)
    new_leader = servers.leader_index(modes_after)
    record.update(
        {
            "rejoin_s": _round(rejoin_s),
            "rejoin_seen": seen,
            "new_pid": ensemble.members[leader].pid,
            "new_leader": ensemble.peers[new_leader].server_id if new_leader is not None else None,
            "modes_after": modes_after,
            "recovered": outcome.seconds is not None and rejoin_s is not None,
        }
    )
    return record


# -- the kazoo session watcher -----------------------------------------------------------


class SessionWatch:
    """A kazoo client kept connected across the kills; counts its state changes.
    Its connection retry is capped at 1 s between passes over the hosts, so a reconnect is
    never held back by kazoo's own back-off past the session timeout."""

    def __init__(self, hosts: str, timeout_s: float = KAZOO_SESSION_TIMEOUT_S) -> None:
        from kazoo.client import KazooClient
        from kazoo.retry import KazooRetry

        logging.getLogger("kazoo").setLevel(logging.ERROR)  # a dropped connection is expected here
        self.states: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()
        self.client = KazooClient(
            hosts=hosts,
            timeout=timeout_s,
            connection_retry=KazooRetry(max_tries=-1, delay=0.1, backoff=2, max_delay=1.0),
        )
        self.client.add_listener(self._listen)
        self.client.start(timeout=30)
        self.session_id_start: int = self.client.client_id[0]

    def _listen(self, state: str) -> None:
        with self.lock:
            self.states[str(state)] += 1

    def report(self) -> dict[str, object]:
        with self.lock:
            states = dict(self.states)
        alive = False
        session_id_end = None
        try:
            self.client.exists_async("/").get(timeout=2 * KAZOO_SESSION_TIMEOUT_S)
            alive = True
            session_id_end = self.client.client_id[0]
        except Exception as error:  # noqa: BLE001 -- reported, the run goes on
            states["final_check_error"] = f"{type(error).__name__}: {error}"  # type: ignore[assignment]
        return {
            "session_timeout_s": KAZOO_SESSION_TIMEOUT_S,
            "state_changes": states,
            "expirations": states.get("LOST", 0),
            "suspensions": states.get("SUSPENDED", 0),
            "session_id_start": f"{self.session_id_start:#x}",
            "session_id_end": f"{session_id_end:#x}" if session_id_end is not None else None,
            "same_session": session_id_end == self.session_id_start,
            "connected_at_end": alive,
        }

    def close(self) -> None:
        try:
            self.client.stop()
        finally:
            self.client.close()


# -- one target --------------------------------------------------------------------------


def run_target(target: str, args: argparse.Namespace) -> dict[str, object]:
    entry: dict[str, object] = {"target": target, "load_start": load_average(), "kills": []}
    began = time.monotonic()
    try:
        ensemble = servers.start_ensemble(target)
    except servers.ServerDidNotStart as error:
        print(f"[{target}] ensemble did not start: {error}", file=sys.stderr)
        entry.update({"error": f"did not start: {error}", "load_end": load_average()})
        return entry
    watch: SessionWatch | None = None
    kills: list[dict[str, object]] = entry["kills"]  # type: ignore[assignment]
    try:
        entry["startup_s"] = round(ensemble.startup_s, 2)
        entry["zoo_cfg"] = cfg_limits(ensemble)
        ensure_probe(ensemble, PROBE_PATH)
        watch = SessionWatch(ensemble.hosts)
        print(f"[{target}] ensemble up in {ensemble.startup_s:.2f} s, modes {ensemble.modes}, cfg {entry['zoo_cfg']}")
        for kill in range(args.kills):
            if time.monotonic() - began > args.max_minutes * 60:
                entry["stopped_early"] = f"--max-minutes {args.max_minutes:g} reached after {kill} kills"
                break
            load = load_average()
            try:
                record = kill_leader_and_recover(
                    ensemble, PROBE_PATH, args.try_timeout, args.failover_timeout, args.rejoin_timeout
                )
            except TimeoutError as error:
                entry["stopped_early"] = f"kill {kill}: {error}"
                print(f"[{target}] kill {kill}: {error}; stopping this target", flush=True)
                break
            record.update({"kill": kill, "load": load})
            kills.append(record)
            print(
                f"[{target}] kill {kill + 1}/{args.kills}: leader {record['leader_killed']} -> "
                f"{record['new_leader']}, failover {record['failover_s']} s ({record['write_tries']} tries), "
                f"rejoin {record['rejoin_s']} s ({record['rejoin_seen']})",
                flush=True,
            )
            time.sleep(args.pause)
        entry["session"] = watch.report()
    except Exception as error:  # noqa: BLE001 -- recorded; the other target still runs
        entry["error"] = f"{type(error).__name__}: {error}"
        print(f"[{target}] FAILED: {entry['error']}", file=sys.stderr)
    finally:
        if watch is not None:
            watch.close()
        servers.stop_ensemble(ensemble)
    failover = [float(k["failover_s"]) for k in kills if k["failover_s"] is not None]  # type: ignore[arg-type]
    rejoin = [float(k["rejoin_s"]) for k in kills if k["rejoin_s"] is not None]  # type: ignore[arg-type]
    entry.update(
        {
            "failover": summary(failover),
            "rejoin": summary(rejoin),
            "failed_to_recover": sum(1 for k in kills if not k["recovered"]),
            "seconds": round(time.monotonic() - began, 1),
            "load_end": load_average(),
        }
    )
    return entry


# -- report ------------------------------------------------------------------------------


def _fmt(value: object, fmt: str = ".2f") -> str:
    return "—" if value is None else format(value, fmt)


def _three(stats: dict[str, object] | None) -> str:
    if not stats or not stats.get("count"):
        return "—"
    return " / ".join(_fmt(stats[k]) for k in ("p50_s", "p99_s", "max_s"))


def _yes_no(value: object) -> str:
    return "—" if value is None else ("yes" if value else "no")


def _load(values: object) -> str:
    return " ".join(f"{v:.2f}" for v in values) if isinstance(values, list) else "?"


def report_head(title: str, result: dict[str, object]) -> list[str]:
    """The lines every bench report of this module and bench.soak starts with."""
    return [f"# {title} — {result['stamp']}", "", f"Machine: {result['machine']}",
            f"Config: {result['config']}", ""]


def markdown(result: dict[str, object]) -> str:
    lines = [
        *report_head("Leader failover, 3-server ensembles", result),
        "failover = kill -9 of the leader -> first successful setData through a survivor; "
        "rejoin = restart of the killed member -> it answers srvr as follower with the leader's Zxid. "
        "Seconds, nearest-rank percentiles over the kills that recovered.",
        "",
        "| target | kills | failover p50 / p99 / max s | rejoin p50 / p99 / max s | failed to recover "
        "| kazoo session expirations (LOST) / suspensions | same session at end "
        "| tickTime / initLimit / syncLimit | load avg start -> end |",
        "|---|---:|---|---|---:|---|---|---|---|",
    ]
    notes = []
    for entry in result["targets"]:  # type: ignore[attr-defined]
        target = entry["target"]
        if entry.get("error") and not entry.get("kills"):
            lines.append(f"| {target} | — | — | — | — | — | — | — | {_load(entry['load_start'])} -> "
                         f"{_load(entry['load_end'])} |")
            notes.append(f"- {target}: {entry['error'].splitlines()[0]}")
            continue
        session = entry.get("session") or {}
        cfg = entry.get("zoo_cfg", {})
        lines.append(
            f"| {target} | {len(entry['kills'])} | {_three(entry.get('failover'))} | {_three(entry.get('rejoin'))} "
            f"| {entry.get('failed_to_recover', '—')} "
            f"| {session.get('expirations', '—')} / {session.get('suspensions', '—')} "
            f"| {_yes_no(session.get('same_session'))} "
            f"| {cfg.get('tickTime', '?')} / {cfg.get('initLimit', '?')} / {cfg.get('syncLimit', '?')} "
            f"| {_load(entry['load_start'])} -> {_load(entry['load_end'])} |"
        )
        if entry.get("stopped_early"):
            notes.append(f"- {target}: stopped early: {entry['stopped_early']}")
        if entry.get("error"):
            notes.append(f"- {target}: FAILED after {len(entry['kills'])} kills: {entry['error'].splitlines()[0]}")
        for kill in entry["kills"]:
            if not kill["recovered"]:
                notes.append(
                    f"- {target} kill {kill['kill']}: failover {kill['failover_s']} s, rejoin {kill['rejoin_s']} s "
                    f"({kill['rejoin_seen']}); write errors {kill['write_errors']}"
                )
        notes.append(
            f"- {target}: ensemble up in {entry.get('startup_s')} s; {entry.get('seconds')} s in all; "
            f"kazoo state changes {session.get('state_changes')}"
        )
    return "\n".join(lines + ["", "Notes:", *notes, ""])


def write(result: dict[str, object], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    base = out_dir / f"{result['stamp']}-failover"
    json_path = base.with_suffix(".json")
    md_path = base.with_suffix(".md")
    json_path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    md_path.write_text(markdown(result))
    return [md_path, json_path]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=50, help="leader kills per target (default 50)")
    parser.add_argument("--targets", default="apache,pyzk", help="comma list of apache,pyzk")
    parser.add_argument("--try-timeout", type=float, default=2.0, help="s per write try (connect+handshake+reply)")
    parser.add_argument("--failover-timeout", type=float, default=60.0, help="s from the kill to give up on a write")
    parser.add_argument("--rejoin-timeout", type=float, default=120.0, help="s from the restart to give up")
    parser.add_argument("--pause", type=float, default=1.0, help="s between a rejoin and the next kill")
    parser.add_argument("--max-minutes", type=float, default=60.0, help="bound per target; stops the kills after it")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    args.target_list = [t for t in args.targets.split(",") if t]
    for target in args.target_list:
        if target not in servers.TARGETS:
            parser.error(f"unknown target {target!r}")
    if args.kills < 1:
        parser.error("--kills must be at least 1")
    return args


def run_all(targets: list[str], config: str, args: argparse.Namespace,
            run_target: Callable[[str, argparse.Namespace], dict[str, object]],
            write: Callable[[dict[str, object], Path], list[Path]]) -> None:
    """Run each target in turn, rewriting the report after each (a long run that is stopped
    keeps what it measured); shared by bench.failover and bench.soak."""
    result: dict[str, object] = {
        "stamp": datetime.datetime.now().strftime("%Y%m%d-%H%M%S"),
        "machine": machine(),
        "config": config,
        "args": {k: str(v) for k, v in vars(args).items()},
        "load_start": load_average(),
        "targets": [],
    }
    written: list[Path] = []
    for target in targets:
        result["targets"].append(run_target(target, args))  # type: ignore[attr-defined]
        result["load_end"] = load_average()
        written = write(result, args.out)
    for path in written:
        print(f"wrote {path}")


def main() -> None:
    args = parse_args()
    config = (
        f"{args.kills} leader kills per target, 3-server ensembles (servers.start_ensemble: forceSync=yes, "
        f"dataDir on local disk, 127.0.0.1), write try timeout {args.try_timeout:g} s, failover bound "
        f"{args.failover_timeout:g} s, rejoin bound {args.rejoin_timeout:g} s, {args.pause:g} s pause "
        f"between kills, kazoo session timeout {KAZOO_SESSION_TIMEOUT_S:g} s"
    )
    run_all(args.target_list, config, args, run_target, write)


if __name__ == "__main__":
    main()
