"""Storage faults: pyzk meets a damaged data directory the way Apache ZooKeeper 3.8 does.

Each case writes a data directory (pyzk, small snapCount so there are several snapshots and
log files), damages one copy per server kind, starts pyzk and Apache ZooKeeper on their copy
and compares the outcome class: "recovered" (serves; then the same znodes must be there: the
longest valid prefix) or "refused" (exits or never serves). pyzk's log must never hold a
Python traceback, and a refusal must name the file (and the offset, for damaged files).
The full disk case runs each server on a 2 MB tmpfs and checks that writes stop being
acknowledged, that no acknowledged write is lost, and that pyzk says why in one line.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.handlers.threading import KazooTimeoutError

from tests.compat.targets import (
    Server,
    TargetStartError,
    free_loopback_ports,
    log_tail,
    start_target,
    sysprop_args,
    zoo_cfg_text,
)

ROOT = "/faults"
NODES = 120
SYSPROPS = {"zookeeper.snapCount": "40", "zookeeper.preAllocSize": "16"}
REFUSAL_WAIT_S = 20.0
LOG_FILE_HEADER_BYTES = 16
RECORD_PREFIX = struct.Struct(">qi")  # adler32 as a long, entry length
TMPFS_SIZE = "2m"
FULL_DISK_NODE_BYTES = 40_000
FULL_DISK_WRITES_MAX = 200  # 8 MB of data: far past the 2 MB file system
FULL_DISK_WAIT_S = 20.0

pytestmark = pytest.mark.skipif(not shutil.which("java"), reason="needs Apache ZooKeeper (java)")


@dataclass
class Outcome:
    kind: str  # "recovered" or "refused"
    nodes: dict[str, bytes]  # what a recovered server holds under ROOT
    log: str


def _server(kind: str, server_dir: Path) -> Server:
    client, quorum, election, admin = free_loopback_ports(4)
    server = Server(kind, 1, client, quorum, election, admin, server_dir=server_dir,
                    sysprop_flags=sysprop_args(SYSPROPS))
    server_dir.mkdir(parents=True, exist_ok=True)
    server.config_path.write_text(zoo_cfg_text(server, [server], {}))
    return server


def _read_tree(hosts: str) -> dict[str, bytes]:
    client = KazooClient(hosts=hosts, timeout=10.0)
    client.start(timeout=15.0)
    try:
        if not client.exists(ROOT):
            return {}
        return {name: client.get(f"{ROOT}/{name}")[0] for name in client.get_children(ROOT)}
    finally:
        client.stop()
        client.close()


@pytest.fixture(scope="module")
def written_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pyzk data directory with NODES znodes, several snapshots and log files.

    The server is killed before the client closes its session, so the newest txn in the log
    is the last create (as a crash leaves it: preallocated log, no shutdown).
    """
    workdir = tmp_path_factory.mktemp("written")
    ensemble = start_target("pyzk", workdir=workdir, sysprops=SYSPROPS)
    client = KazooClient(hosts=ensemble.hosts, timeout=10.0)
    try:
        client.start(timeout=15.0)
        client.ensure_path(ROOT)
        for number in range(NODES):
            client.create(f"{ROOT}/n{number:04d}", f"value {number}".encode())
    finally:
        ensemble.servers[0].kill9()
        client.stop()
        client.close()
    return ensemble.servers[0].data_dir


def _run(kind: str, server_dir: Path) -> Outcome:
    """Start `kind` on server_dir/data as it is; classify what happens."""
    server = _server(kind, server_dir)
    try:
        server.start(timeout_s=REFUSAL_WAIT_S)
    except TargetStartError:
        server.kill9()
        return Outcome("refused", {}, server.log_path.read_text(errors="replace"))
    try:
        nodes = _read_tree(server.address)
    finally:
        server.stop()
    return Outcome("recovered", nodes, server.log_path.read_text(errors="replace"))


def _copy(source: Path, server_dir: Path) -> Path:
    shutil.copytree(source, server_dir / "data")
    return server_dir / "data"


def _records(log: Path) -> list[tuple[int, int]]:
    """(offset, entry length) of each record of a txn log (ZKLG header, {crc, len, entry, 'B'}*)."""
    data = log.read_bytes()
    records = []
    pos = LOG_FILE_HEADER_BYTES
    while pos + RECORD_PREFIX.size <= len(data):
        _, length = RECORD_PREFIX.unpack_from(data, pos)
        end = pos + RECORD_PREFIX.size + length
        if length <= 0 or end >= len(data) or data[end] != 0x42:
            break
        records.append((pos, length))
        pos = end + 1
    return records


def _by_zxid(folder: Path, prefix: str) -> list[Path]:
    files = [p for p in folder.iterdir() if p.name.startswith(prefix + ".") and p.name.count(".") == 1]
    return sorted(files, key=lambda p: int(p.name.split(".")[1], 16))


def _newest_log_with_records(data_dir: Path) -> tuple[Path, list[tuple[int, int]]]:
    for log in reversed(_by_zxid(data_dir / "version-2", "log")):
        records = _records(log)
        if records:
            return log, records
    raise AssertionError(f"no txn log with records in {data_dir}")


def _flip(path: Path, offset: int) -> None:
    with open(path, "r+b") as damaged:
        damaged.seek(offset)
        byte = damaged.read(1)
        damaged.seek(offset)
        damaged.write(bytes([byte[0] ^ 0xFF]))


# ---- the damage of each case; each returns what pyzk's refusal must name --------------------


def truncate_log_tail(data_dir: Path) -> str:
    log, records = _newest_log_with_records(data_dir)
    offset, length = records[-1]
    with open(log, "r+b") as damaged:
        damaged.truncate(offset + RECORD_PREFIX.size + length // 2)
    return log.name


def flip_byte_in_last_record(data_dir: Path) -> str:
    log, records = _newest_log_with_records(data_dir)
    offset, length = records[-1]
    _flip(log, offset + RECORD_PREFIX.size + length // 2)
    return log.name


def flip_byte_in_newest_snapshot(data_dir: Path) -> str:
    snapshots = _by_zxid(data_dir / "version-2", "snapshot")
    assert len(snapshots) >= 2, "the case needs an older snapshot to fall back to"
    newest = snapshots[-1]
    _flip(newest, newest.stat().st_size // 2)
    return newest.name


def remove_version_2(data_dir: Path) -> str:
    shutil.rmtree(data_dir / "version-2")
    return "version-2"


def data_dir_is_a_file(data_dir: Path) -> str:
    shutil.rmtree(data_dir)
    data_dir.write_bytes(b"not a directory\n")
    return str(data_dir)


FAULTS: dict[str, tuple[Callable[[Path], str], str]] = {
    # case: (damage, the outcome class Apache ZooKeeper 3.8 shows, checked below too)
    "truncated_log_tail": (truncate_log_tail, "recovered"),
    "flipped_byte_last_record": (flip_byte_in_last_record, "refused"),
    "flipped_byte_newest_snapshot": (flip_byte_in_newest_snapshot, "recovered"),
    "missing_version_2": (remove_version_2, "recovered"),
    "data_dir_is_a_file": (data_dir_is_a_file, "refused"),
}


def _assert_pyzk_log_is_clean(outcome: Outcome) -> None:
    assert "Traceback" not in outcome.log, outcome.log[-3000:]


@pytest.mark.parametrize("case", sorted(FAULTS))
def test_fault_outcome_matches_apache(case: str, written_data_dir: Path, tmp_path: Path) -> None:
    damage, expected = FAULTS[case]
    outcomes: dict[str, Outcome] = {}
    named = ""
    for kind in ("apache", "pyzk"):
        data_dir = _copy(written_data_dir, tmp_path / kind)
        named = damage(data_dir)
        outcomes[kind] = _run(kind, tmp_path / kind)
    apache, pyzk = outcomes["apache"], outcomes["pyzk"]
    _assert_pyzk_log_is_clean(pyzk)
    assert apache.kind == expected, f"Apache ZooKeeper {apache.kind}: {apache.log[-3000:]}"
    assert pyzk.kind == apache.kind, f"pyzk {pyzk.kind}, Apache {apache.kind}: {pyzk.log[-3000:]}"
    if pyzk.kind == "recovered" and case == "flipped_byte_newest_snapshot":
        # Falling back to the older snapshot and replaying the log must lose no acknowledged
        # write. Apache 3.8.0 was seen to lose one node here, depending on where the flip
        # lands (the snapshot points are randomized per run); pyzk must keep all of them, and
        # must hold everything Apache recovered.
        assert pyzk.nodes == {f"n{i:04d}": f"value {i}".encode() for i in range(NODES)}
        assert apache.nodes.items() <= pyzk.nodes.items()
    elif pyzk.kind == "recovered":
        assert pyzk.nodes == apache.nodes
    else:
        refusal = [line for line in pyzk.log.splitlines() if named in line and "ERROR" in line]
        assert refusal, f"pyzk's refusal does not name {named}: {pyzk.log[-3000:]}"
        if case.startswith(("flipped", "truncated")):
            assert any("offset" in line for line in refusal), refusal


def test_truncated_tail_recovers_all_but_the_torn_txn(written_data_dir: Path, tmp_path: Path) -> None:
    data_dir = _copy(written_data_dir, tmp_path / "pyzk")
    truncate_log_tail(data_dir)
    outcome = _run("pyzk", tmp_path / "pyzk")
    assert outcome.kind == "recovered"
    assert len(outcome.nodes) == NODES - 1
    assert f"n{NODES - 1:04d}" not in outcome.nodes
    assert any("torn tail" in line for line in outcome.log.splitlines())


def test_corrupt_newest_snapshot_falls_back_to_the_older_one(written_data_dir: Path, tmp_path: Path) -> None:
    data_dir = _copy(written_data_dir, tmp_path / "pyzk")
    named = flip_byte_in_newest_snapshot(data_dir)
    outcome = _run("pyzk", tmp_path / "pyzk")
    assert outcome.kind == "recovered"
    assert len(outcome.nodes) == NODES
    assert any(named in line and "older" in line for line in outcome.log.splitlines())


# ---- read-only data directory ---------------------------------------------------------------


@contextmanager
def _mounted(args: list[str], target: Path) -> Iterator[bool]:
    """Mount (root only); yields False when mounting is not possible here."""
    target.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["mount", *args, str(target)], capture_output=True, check=False).returncode != 0:
        yield False
        return
    try:
        yield True
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True, check=False)


def _read_only_bind(source: Path, target: Path) -> AbstractContextManager[bool]:
    return _mounted(["--bind", "-o", "ro", str(source)], target)


def test_read_only_data_dir_is_refused_like_apache(written_data_dir: Path, tmp_path: Path) -> None:
    outcomes: dict[str, Outcome] = {}
    for kind in ("apache", "pyzk"):
        source = _copy(written_data_dir, tmp_path / f"{kind}-source")
        with _read_only_bind(source, tmp_path / kind / "data") as mounted:
            if not mounted:
                pytest.skip("cannot bind-mount read-only here (needs root)")
            outcomes[kind] = _run(kind, tmp_path / kind)
    _assert_pyzk_log_is_clean(outcomes["pyzk"])
    assert outcomes["apache"].kind == "refused", outcomes["apache"].log[-3000:]
    assert outcomes["pyzk"].kind == "refused", outcomes["pyzk"].log[-3000:]
    assert any("ERROR" in line and "version-2" in line for line in outcomes["pyzk"].log.splitlines())


# ---- full disk ------------------------------------------------------------------------------


@dataclass
class FullDiskRun:
    acked: list[str]
    stopped_writes: bool
    log: str
    exited: bool


def _fill_disk(kind: str, server_dir: Path) -> FullDiskRun:
    server = _server(kind, server_dir)
    server.start()
    acked: list[str] = []
    stopped = False
    client = KazooClient(hosts=server.address, timeout=10.0)
    client.start(timeout=15.0)
    try:
        client.ensure_path(ROOT)
        payload = b"x" * FULL_DISK_NODE_BYTES
        for number in range(FULL_DISK_WRITES_MAX):
            path = f"{ROOT}/big{number:04d}"
            try:
                client.create(path, payload)
            except (KazooException, KazooTimeoutError):
                stopped = True
                break
            acked.append(path)
    finally:
        client.stop()
        client.close()
    deadline = time.monotonic() + FULL_DISK_WAIT_S
    while server.running and time.monotonic() < deadline:
        time.sleep(0.2)
    exited = not server.running
    server.kill9()
    return FullDiskRun(acked, stopped, server.log_path.read_text(errors="replace"), exited)


def test_full_disk_stops_writes_and_loses_no_acknowledged_one(tmp_path: Path) -> None:
    """Both stop writing and exit; pyzk also restarts (on a roomy copy) with every acked write.

    Apache ZooKeeper 3.8 does not: it leaves a torn snapshot and an empty log file behind and
    refuses to start on that directory until an operator removes them.
    """
    runs: dict[str, FullDiskRun] = {}
    for kind in ("apache", "pyzk"):
        with _mounted(["-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs"], tmp_path / kind / "data") as mounted:
            if not mounted:
                pytest.skip("cannot mount a small tmpfs here (needs root)")
            runs[kind] = _fill_disk(kind, tmp_path / kind)
            shutil.copytree(tmp_path / kind / "data", tmp_path / f"{kind}-after" / "data")
    apache, pyzk = runs["apache"], runs["pyzk"]
    assert apache.stopped_writes and apache.exited, apache.log[-3000:]
    assert pyzk.stopped_writes, "pyzk kept acknowledging writes on a full disk"
    assert pyzk.exited, "pyzk should exit, as ZooKeeper does, once its txn log cannot be written"
    after = _run("pyzk", tmp_path / "pyzk-after")
    assert after.kind == "recovered", f"pyzk does not restart after a full disk: {after.log[-3000:]}"
    lost = [p for p in pyzk.acked if p.rpartition("/")[2] not in after.nodes]
    assert not lost, f"pyzk lost acknowledged creates {lost}"
    assert any("ERROR" in line and "No space left on device" in line and "/version-2/log." in line
               for line in pyzk.log.splitlines()), \
        log_tail(tmp_path / "pyzk" / "server.log")
    assert "Traceback" not in pyzk.log, pyzk.log[-3000:]
