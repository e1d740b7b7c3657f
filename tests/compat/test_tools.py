"""The operator tools against Apache's, run on the same files: output and exit codes.

Rule 1: one workload runs on Apache ZooKeeper 3.8 and on pyzk (every txn type a client can
        cause: createSession, create, create2, createContainer, createTtl, setData, setACL,
        delete, deleteContainer from the container reaper, multi with check and with a failed
        op, error, closeSession, ephemerals, digest ACLs, binary data). Each resulting
        dataDir is read by Apache's tool (TxnLogToolkit, SnapshotFormatter, PurgeTxnLog)
        and by pyzk's (bin/zkTxnLogToolkit.py, bin/zkSnapShotToolkit.py, bin/zkCleanup.py);
        stdout, stderr and the exit code must be equal, and files the tools write
        (-r's .fixed, -c's .chopped<zxid>) byte for byte.
Rule 2: normalized before comparing, and only this: the JVM's log4j warnings on stderr
        (Debian's log4j 1.2 finds no appender: the JVM's, not the tool's output), the
        program name in usage text (Java's class name vs the script's), -json's
        "timestamp" (the clock when the tool ran) and PurgeTxnLog's log lines (it reports
        through the logger, which the Debian jar has no appender for).
Rule 3: the tools run with TZ=UTC and LANG=C.UTF-8 on both sides (the date formats follow
        the default time zone and locale).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.security import make_digest_acl

from tests.compat.targets import APACHE_CLASSPATH, REPO_ROOT, start_target
from tests.compat.test_storage_crossread import raw_create

SYSPROPS = {
    "zookeeper.snapCount": "16",
    "zookeeper.extendedTypesEnabled": "true",
    "znode.container.checkIntervalMs": "200",
}
OP_CREATE_CONTAINER = 19
OP_CREATE_TTL = 21
CLIENT_TIMEOUT_S = 15.0
TOOL_TIMEOUT_S = 60.0
REAPER_WAIT_S = 10.0
REAPER_POLL_S = 0.2
TOOL_ENV = {"TZ": "UTC", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
TXNLOG_TOOLKIT = "org.apache.zookeeper.server.persistence.TxnLogToolkit"
SNAPSHOT_FORMATTER = "org.apache.zookeeper.server.SnapshotFormatter"
PURGE_TXN_LOG = "org.apache.zookeeper.server.PurgeTxnLog"
PYZK_BIN = REPO_ROOT / "bin"

pytestmark = pytest.mark.skipif(
    "apache" not in os.environ.get("PYZK_TARGETS", "apache,pyzk"),
    reason="needs the Apache ZooKeeper tools")


@dataclass(frozen=True)
class Run:
    rc: int
    out: bytes
    err: bytes


def _run(command: list[str], stdin: bytes = b"", cwd: Path | None = None) -> Run:
    env = {**os.environ, **TOOL_ENV}
    done = subprocess.run(command, input=stdin, capture_output=True, timeout=TOOL_TIMEOUT_S,
                          env=env, cwd=cwd, check=False)
    return Run(done.returncode, done.stdout, done.stderr)


def apache_tool(main_class: str, *args: str, stdin: bytes = b"", cwd: Path | None = None) -> Run:
    return _run(["java", "-cp", APACHE_CLASSPATH, main_class, *args], stdin, cwd)


def pyzk_tool(script: str, *args: str, stdin: bytes = b"", cwd: Path | None = None) -> Run:
    return _run([sys.executable, str(PYZK_BIN / script), *args], stdin, cwd)


LOG4J_LINE = re.compile(rb"^log4j:.*\n", re.MULTILINE)


def normalized(run: Run) -> Run:
    """Rule 2: the JVM's log4j set-up warnings are not the tool's output."""
    return Run(run.rc, run.out, LOG4J_LINE.sub(b"", run.err))


def write_workload(owner: KazooClient, hosts: str) -> None:
    """Rule 1's workload; the caller stops the server before the owner, so that the owner's
    session (and its ephemeral) stays open on disk."""
    if True:
        owner.add_auth("digest", "alice:secret")
        owner.ensure_path("/app/a/b")
        owner.create("/app/c2", b"with stat", include_data=True)  # create2
        for _ in range(3):
            owner.create("/app/seq-", b"s", sequence=True)
        owner.create("/app/eph", b"mine", ephemeral=True)
        owner.create("/app/secret", bytes(range(256)), acl=[make_digest_acl("alice", "secret", all=True)])
        owner.create("/app/text", "caf\u00e9, 100% {ok}\n\r\x00end".encode())
        owner.create("/app/null", None)
        owner.create("/app/doomed", b"d")
        raw_create(hosts, OP_CREATE_CONTAINER, "/app/box", b"c", 4)
        owner.create("/app/box/item", b"i")
        raw_create(hosts, OP_CREATE_TTL, "/app/ttl", b"t", 5, ttl_ms=3_600_000)
        for i in range(20):  # more than snapCount: several log files and snapshots
            owner.set("/app/a/b", f"v{i}".encode())
        ok = owner.transaction()
        ok.create("/app/multi", b"m")
        ok.set_data("/app/a", b"from multi")
        ok.check("/app/a/b", 20)
        ok.delete("/app/doomed")
        ok.commit()
        failed = owner.transaction()
        failed.create("/app/never", b"x")
        failed.delete("/app/does-not-exist")
        failed.commit()
        try:
            owner.create("/app/c2", b"exists already")  # an error txn
        except Exception as exc:  # kazoo's NodeExistsError
            assert type(exc).__name__ == "NodeExistsError", exc
        owner.set_acls("/app/null", [make_digest_acl("alice", "secret", read=True, admin=True)])
        owner.delete("/app/box/item")  # the reaper then deletes /app/box: deleteContainer
        other = KazooClient(hosts=hosts, timeout=CLIENT_TIMEOUT_S)
        other.start(timeout=CLIENT_TIMEOUT_S)
        other.create("/app/gone-with-session", b"", ephemeral=True)
        other.stop()  # closeSession
        other.close()
        waited = 0.0
        while owner.exists("/app/box") is not None and waited < REAPER_WAIT_S:
            owner.sync("/app")
            waited += REAPER_POLL_S
            time.sleep(REAPER_POLL_S)
        assert owner.exists("/app/box") is None, "the container reaper did not run"
        owner.set("/app/a", b"last")


def produce_data_dir(kind: str, workdir: Path) -> Path:
    """Run the workload on a fresh `kind` server; returns its dataDir, the server stopped."""
    ensemble = start_target(kind, sysprops=SYSPROPS, workdir=workdir)
    owner = KazooClient(hosts=ensemble.hosts, timeout=CLIENT_TIMEOUT_S)
    try:
        owner.start(timeout=CLIENT_TIMEOUT_S)
        write_workload(owner, ensemble.hosts)
    finally:
        ensemble.stop()
        owner.stop()
        owner.close()
    return ensemble.servers[0].data_dir


@pytest.fixture(scope="module")
def data_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One dataDir written by each kind of server (Rule 1's workload)."""
    return {kind: produce_data_dir(kind, tmp_path_factory.mktemp(kind)) for kind in ("apache", "pyzk")}


def version_files(data_dir: Path, prefix: str) -> list[Path]:
    return sorted(p for p in (data_dir / "version-2").iterdir() if p.name.startswith(prefix + "."))


def assert_same_run(apache: Run, pyzk: Run, what: str) -> None:
    apache = normalized(apache)
    assert pyzk.out == apache.out, what
    assert pyzk.err == apache.err, what
    assert pyzk.rc == apache.rc, what


TXN_TYPES_LOGGED = {"createSession", "create", "create2", "createContainer", "createTtl", "setData", "setACL",
                    "delete", "deleteContainer", "multi", "error", "closeSession"}


@pytest.mark.parametrize("kind", ["apache", "pyzk"])
def test_txnlog_dump_matches_apache(data_dirs: dict[str, Path], kind: str) -> None:
    seen: set[str] = set()
    logs = version_files(data_dirs[kind], "log")
    assert len(logs) > 1
    for log in logs:
        apache = apache_tool(TXNLOG_TOOLKIT, str(log))
        assert apache.rc == 0, apache.err
        assert_same_run(apache, pyzk_tool("zkTxnLogToolkit.py", "-d", str(log)), str(log))
        for line in apache.out.decode("utf-8", "replace").splitlines():
            words = line.split(" ")
            if len(words) > 10 and words[4] == "session":
                seen.add(words[10])
    assert TXN_TYPES_LOGGED <= seen, TXN_TYPES_LOGGED - seen


JSON_TIMESTAMP = re.compile(rb'"timestamp":[0-9]+')


def without_timestamp(run: Run) -> Run:
    """Rule 2: -json's timestamp is the clock at the run."""
    return Run(run.rc, JSON_TIMESTAMP.sub(b'"timestamp":0', run.out), run.err)


@pytest.mark.parametrize("kind", ["apache", "pyzk"])
def test_snapshot_formatter_matches_apache(data_dirs: dict[str, Path], kind: str) -> None:
    snapshots = version_files(data_dirs[kind], "snapshot")
    assert len(snapshots) > 1
    saw_ephemeral = False
    for snapshot in snapshots:
        for mode in ([], ["-d"], ["-json"]):
            apache = apache_tool(SNAPSHOT_FORMATTER, *mode, str(snapshot))
            assert apache.rc == 0, apache.err
            pyzk = pyzk_tool("zkSnapShotToolkit.py", *mode, str(snapshot))
            if mode == ["-json"]:
                assert JSON_TIMESTAMP.search(pyzk.out)
            assert_same_run(without_timestamp(apache), without_timestamp(pyzk), f"{mode} {snapshot}")
            saw_ephemeral |= b"/app/eph\n" in apache.out and re.search(rb"0x[0-9a-f]+, \d+, 1\n", apache.out) is not None
    assert saw_ephemeral, "no snapshot holds a session with its ephemeral"


def record_offsets(data: bytes) -> list[int]:
    """Where each record of a log file starts (its crc)."""
    from pyzk.tools.txnlog import LogBytes

    return [record.end - len(record.entry) - 12 for record in LogBytes(data).records()]


def corrupted_log(data_dir: Path, broken: int) -> tuple[bytes, list[int]]:
    """The log with the most records, its first `broken` odd-numbered records' CRCs changed."""
    log = max(version_files(data_dir, "log"), key=lambda p: len(record_offsets(p.read_bytes())))
    data = bytearray(log.read_bytes())
    offsets = record_offsets(bytes(data))
    assert len(offsets) >= 2 * broken + 1
    for at in offsets[1:2 * broken + 1:2]:
        data[at + 7] ^= 0x5A
    return bytes(data), offsets


def both_tools(tmp_path: Path, files: dict[str, bytes], apache_cmd: tuple[str, ...], pyzk_cmd: tuple[str, ...],
               stdin: bytes = b"") -> tuple[Run, Run, dict[str, bytes], dict[str, bytes]]:
    """Run each tool in a fresh copy of `files` at the same path; what it printed and left."""
    results = []
    for side, command in (("apache", apache_cmd), ("pyzk", pyzk_cmd)):
        work = tmp_path / "work"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        for name, data in files.items():
            (work / name).write_bytes(data)
        if side == "apache":
            run = apache_tool(command[0], *command[1:], stdin=stdin, cwd=work)
        else:
            run = pyzk_tool(command[0], *command[1:], stdin=stdin, cwd=work)
        left = {p.name: p.read_bytes() for p in sorted(work.iterdir())}
        results.append((run, left))
    (apache, apache_files), (pyzk, pyzk_files) = results
    return apache, pyzk, apache_files, pyzk_files


RECOVERY_CASES = [
    (("-r", "-y"), b""),
    (("-r", "--yes", "-v"), b""),
    (("-rv",), b"y\nn\n"),
    (("--recover",), b"maybe\nYes\nno\n"),
    (("-r",), b"y\nabort\n"),  # "Recovery aborted.": exit 0, a partial .fixed
    (("-r",), b"y\n"),  # stdin ends before the second question
    (("-d",), b""),  # a dump reports each broken CRC and carries on
]


@pytest.mark.parametrize(("options", "answers"), RECOVERY_CASES)
def test_txnlog_crc_repair_matches_apache(data_dirs: dict[str, Path], tmp_path: Path,
                                          options: tuple[str, ...], answers: bytes) -> None:
    data, _ = corrupted_log(data_dirs["apache"], broken=2)
    apache, pyzk, apache_files, pyzk_files = both_tools(
        tmp_path, {"log.1": data}, (TXNLOG_TOOLKIT, *options, "log.1"),
        ("zkTxnLogToolkit.py", *options, "log.1"), stdin=answers)
    if answers == b"y\n":  # NoSuchElementException: the JVM's stack trace differs from pyzk's line
        assert apache.rc == pyzk.rc == 1
        assert pyzk.out == apache.out
        assert b"java.util.NoSuchElementException" in apache.err and b"java.util.NoSuchElementException" in pyzk.err
    else:
        assert_same_run(apache, pyzk, str(options))
    assert sorted(pyzk_files) == sorted(apache_files)
    for name in apache_files:
        assert pyzk_files[name] == apache_files[name], name
    if "-y" in options:
        assert apache.out.count(b"CRC FIXED - ") == 2
        assert b"with 2 fixed CRC error(s)" in apache.out


def test_txnlog_recovery_refuses_an_existing_fixed_file(data_dirs: dict[str, Path], tmp_path: Path) -> None:
    data, _ = corrupted_log(data_dirs["pyzk"], broken=1)
    apache, pyzk, apache_files, pyzk_files = both_tools(
        tmp_path, {"log.1": data, "log.1.fixed": b"old"}, (TXNLOG_TOOLKIT, "-r", "-y", "log.1"),
        ("zkTxnLogToolkit.py", "-r", "-y", "log.1"))
    assert apache.rc == 1
    assert_same_run(apache, pyzk, "existing .fixed")
    assert pyzk_files == apache_files


def zxids_of(data: bytes) -> list[int]:
    from pyzk.tools.txnlog import LogBytes, decode_entry

    return [decode_entry(record.entry)[0].zxid for record in LogBytes(data).records()]


@pytest.mark.parametrize("kind", ["apache", "pyzk"])
def test_txnlog_chop_matches_apache(data_dirs: dict[str, Path], tmp_path: Path, kind: str) -> None:
    log = max(version_files(data_dirs[kind], "log"), key=lambda p: len(record_offsets(p.read_bytes())))
    data = log.read_bytes()
    zxids = zxids_of(data)
    corrupted, _ = corrupted_log(data_dirs[kind], broken=1)
    cases = [
        (data, ("-c", "-z", hex(zxids[len(zxids) // 2]))),  # chopped in the middle
        (data, ("--chop", f"--zxid={zxids[1]}")),  # decimal
        (data, ("-c", f"-z{zxids[-1]:#x}")),  # the last zxid: nothing to chop, "Failed to chop"
        (data, ("-c", "-z", str(zxids[-1] + 100))),  # not in this log
        (data, ("-c", "-z", str(zxids[0] - 1))),  # before this log
        (corrupted, ("-c", "-z", hex(zxids[-2]))),  # "CRC doesn't match"
        (data, ("-z", hex(zxids[1]))),  # without -c: a dump
        (data, ("-c",)),  # without -z: a dump
    ]
    chopped = set()
    for content, options in cases:
        apache, pyzk, apache_files, pyzk_files = both_tools(
            tmp_path, {"log.5": content}, (TXNLOG_TOOLKIT, *options, "log.5"),
            ("zkTxnLogToolkit.py", *options, "log.5"))
        assert_same_run(apache, pyzk, str(options))
        assert sorted(pyzk_files) == sorted(apache_files), options
        for name in apache_files:
            assert pyzk_files[name] == apache_files[name], (options, name)
        chopped |= {name for name in apache_files if name.startswith("log.5.chopped")}
    assert f"log.5.chopped{zxids[len(zxids) // 2]}" in chopped


def test_txnlog_command_line_matches_apache(data_dirs: dict[str, Path], tmp_path: Path) -> None:
    log = version_files(data_dirs["apache"], "log")[0].read_bytes()
    snapshot = version_files(data_dirs["apache"], "snapshot")[-1].read_bytes()
    files = {"log.1": log, "snapshot.1": snapshot}
    for options in ([], ["-h"], ["--help", "log.1"], ["-q", "log.1"], ["--bogus"], ["nothere"],
                    ["-c", "-z"], ["-dv", "log.1"], ["--verb", "-d", "log.1"], ["snapshot.1"],
                    ["-r", "-y", "snapshot.1"], ["log.1", "extra"]):
        apache, pyzk, apache_files, pyzk_files = both_tools(
            tmp_path, files, (TXNLOG_TOOLKIT, *options), ("zkTxnLogToolkit.py", *options))
        assert_same_run(apache, pyzk, str(options))
        assert pyzk_files == apache_files, options


def test_snapshot_formatter_command_line_matches_apache(data_dirs: dict[str, Path], tmp_path: Path) -> None:
    snapshot = version_files(data_dirs["pyzk"], "snapshot")[-1].read_bytes()
    files = {"snapshot.7": snapshot, "log.1": version_files(data_dirs["pyzk"], "log")[0].read_bytes()}
    for options in ([], ["-d"], ["-d", "-json", "snapshot.7"], ["snapshot.7", "-d"], ["nothere"], ["."],
                    ["-json", "-json", "snapshot.7"]):
        apache, pyzk, _, _ = both_tools(
            tmp_path, files, (SNAPSHOT_FORMATTER, *options), ("zkSnapShotToolkit.py", *options))
        assert_same_run(without_timestamp(apache), without_timestamp(pyzk), str(options))
    # Not a snapshot: both die of an IOException (Apache with its stack trace).
    apache, pyzk, _, _ = both_tools(tmp_path, files, (SNAPSHOT_FORMATTER, "log.1"), ("zkSnapShotToolkit.py", "log.1"))
    assert apache.rc == pyzk.rc == 1 and apache.out == pyzk.out == b""
    assert pyzk.err.startswith(b'Exception in thread "main" java.io.IOException')


def tree_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("kind", ["apache", "pyzk"])
def test_purge_matches_apache(data_dirs: dict[str, Path], tmp_path: Path, kind: str) -> None:
    source = data_dirs[kind]
    removed = 0
    for args in (["data", "-n", "3"], ["data", "data", "-n", "3"], ["data", "-n", "2"], ["data", "-n", "x"],
                 ["data", "-x", "3"], ["missing", "-n", "3"], ["data"]):
        runs = []
        for side in ("apache", "pyzk"):
            work = tmp_path / "work"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir()
            shutil.copytree(source, work / "data")  # copy2: the modification times too
            if side == "apache":
                run = apache_tool(PURGE_TXN_LOG, *args, cwd=work)
            else:
                run = pyzk_tool("zkCleanup.py", *args, cwd=work)
            runs.append((run, tree_files(work)))
        (apache, apache_left), (pyzk, pyzk_left) = runs
        assert_same_run(apache, pyzk, str(args))
        assert sorted(pyzk_left) == sorted(apache_left), args
        removed += apache.out.count(b"Removing file: ")
    assert removed > 0


def server_exit(kind: str, tmp_path: Path, data_dir: Path, sysprops: dict[str, str]) -> tuple[int, str]:
    """Start one server of `kind` on `data_dir`; it must exit by itself: (code, stderr)."""
    from tests.compat.targets import apache_command, free_loopback_ports, pyzk_command, sysprop_args

    (client_port,) = free_loopback_ports(1)
    cfg = tmp_path / f"{kind}.cfg"
    cfg.write_text(f"tickTime=2000\ndataDir={data_dir}\nclientPort={client_port}\nadmin.enableServer=false\n")
    flags = sysprop_args(sysprops)
    command = apache_command(cfg, flags, tmp_path) if kind == "apache" else pyzk_command(cfg, flags)
    done = subprocess.run(command, capture_output=True, timeout=TOOL_TIMEOUT_S, check=False,
                          env={**os.environ, "ZOO_LOG_DIR": str(tmp_path)})
    return done.returncode, done.stderr.decode("utf-8", "replace")


@pytest.mark.parametrize("kind", ["apache", "pyzk"])
def test_unusable_data_dir_exits_3(tmp_path: Path, kind: str) -> None:
    """ExitCode.UNABLE_TO_ACCESS_DATADIR, on both targets (Apache's code, checked here too)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    cases = [
        (blocker / "data", {}),  # cannot be created
        (tmp_path / "absent", {"zookeeper.datadir.autocreate": "false"}),
    ]
    for data_dir, sysprops in cases:
        code, stderr = server_exit(kind, tmp_path, data_dir, sysprops)
        assert code == 3, (data_dir, stderr[-2000:])
        assert "Unable to access datadir, exiting abnormally" in stderr
    assert not (tmp_path / "absent").exists()
