"""Start and stop the servers under test: Apache ZooKeeper (Debian jars) and pyzk.

Rules: both read the same zoo.cfg (forceSync=yes, dataDir on local disk in a fresh temp
dir, 127.0.0.1, a free port); a server is "up" only once a real session handshake
succeeds; every wait is bounded; every process is stopped by its own PID.

Ensembles (bench/ensemble.py): `start_ensemble` starts 3 (or `size`) members of one target,
each with its own zoo.cfg (the same lines, plus initLimit/syncLimit and the server.N list),
myid and dataDir, on free loopback ports; the ensemble is up once every member accepts a
session and `srvr` shows exactly one leader and the rest followers. `stop_ensemble` sends
SIGTERM to each member's PID, then SIGKILLs any still alive 10 s later.

Failover runs (bench/failover.py, bench/soak.py): `kill_member` SIGKILLs one member by its
PID and reaps it; `restart_member` launches it again with the same zoo.cfg, myid and dataDir
(its server.log is appended to), as an operator restarting a crashed server would.
`member_status` reads a member's srvr Mode and Zxid.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.engine import BlockingSession, VerificationError

REPO = Path(__file__).resolve().parent.parent
_APACHE_JARS = (
    "/etc/zookeeper/conf",
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/slf4j-api.jar",
    "/usr/share/java/netty-codec.jar",
    "/usr/share/java/netty-resolver.jar",
    "/usr/share/java/netty-transport-native-unix-common.jar",
    # logging as deployed (log4j at INFO to the console, i.e. server.log), not silenced
    "/usr/share/java/slf4j-log4j12.jar",
    "/usr/share/java/log4j-1.2.jar",
)
APACHE_CLASSPATH = os.pathsep.join(_APACHE_JARS)
APACHE_MAIN = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
PYZK_SERVER = REPO / "bin" / "zkServer.py"
TARGETS = ("apache", "pyzk")

_READY_TIMEOUT_S = 60.0
_ENSEMBLE_READY_TIMEOUT_S = 120.0
_ENSEMBLE_POLL_S = 0.25
_FOUR_LETTER_TIMEOUT_S = 2.0
LOOPBACK = "127.0.0.1"
_STOP_TIMEOUT_S = 10.0
# A tmpfs would turn forceSync into a no-op; keep data under the repo's disk-backed temp.
_DATA_ROOT_CANDIDATES = ("/var/tmp", tempfile.gettempdir())


class ServerDidNotStart(Exception):
    """The server exited or never accepted a session; the message carries its log tail."""


@dataclass
class RunningServer:
    target: str
    process: subprocess.Popen[bytes]
    port: int
    workdir: Path
    startup_s: float

    @property
    def hosts(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, line_count: int = 30) -> str:
        return _tail(self.workdir / "server.log", line_count)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def zoo_cfg_text(data_dir: Path, port: int) -> str:
    return "\n".join(
        [
            "tickTime=2000",
            f"dataDir={data_dir}",
            f"clientPort={port}",
            "clientPortAddress=127.0.0.1",
            "forceSync=yes",
            "maxClientCnxns=0",
            "admin.enableServer=false",
            "4lw.commands.whitelist=srvr,mntr,ruok",
            "",
        ]
    )


def _data_root() -> str:
    for candidate in _DATA_ROOT_CANDIDATES:
        if os.path.isdir(candidate) and os.access(candidate, os.W_OK):
            return candidate
    return tempfile.gettempdir()


def command_for(target: str, cfg_path: Path) -> list[str]:
    if target == "apache":
        return [
            "java",
            f"-Dzookeeper.log.dir={cfg_path.parent}",
            "-Dzookeeper.root.logger=INFO,CONSOLE",
            "-cp",
            APACHE_CLASSPATH,
            APACHE_MAIN,
            str(cfg_path),
        ]
    if target == "pyzk":
        return [sys.executable, str(PYZK_SERVER), "start-foreground", str(cfg_path)]
    raise ValueError(f"unknown target {target!r}")


def start(target: str) -> RunningServer:
    """Start a fresh server of `target` on a free port; raise ServerDidNotStart if it fails."""
    workdir = Path(tempfile.mkdtemp(prefix=f"pyzk-bench-{target}-", dir=_data_root()))
    data_dir = workdir / "data"
    data_dir.mkdir()
    port = free_port()
    cfg_path = workdir / "zoo.cfg"
    cfg_path.write_text(zoo_cfg_text(data_dir, port))
    if target == "pyzk" and not PYZK_SERVER.exists():
        raise ServerDidNotStart(f"{PYZK_SERVER} does not exist")
    began = time.monotonic()
    with open(workdir / "server.log", "wb") as log:  # the child keeps its own copy of the fd
        process = subprocess.Popen(
            command_for(target, cfg_path), stdout=log, stderr=subprocess.STDOUT, cwd=workdir
        )
    server = RunningServer(target, process, port, workdir, 0.0)
    try:
        _wait_until_serving(server)
    except ServerDidNotStart:
        stop(server)
        raise
    server.startup_s = time.monotonic() - began
    return server


def _wait_until_serving(server: RunningServer, timeout_s: float = _READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    last_error = "no attempt"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerDidNotStart(
                f"{server.target} exited with {server.process.returncode}:\n{server.log_tail()}"
            )
        try:
            BlockingSession(("127.0.0.1", server.port)).close()
            return
        except (OSError, VerificationError) as error:
            last_error = str(error)
            time.sleep(0.2)
    raise ServerDidNotStart(
        f"{server.target} not serving after {timeout_s:.0f} s ({last_error}):\n"
        f"{server.log_tail()}"
    )


def stop(server: RunningServer, keep_workdir: bool = False) -> None:
    """SIGTERM the server's PID, then SIGKILL it if it has not exited in time; then remove
    its temp dir (config, data, log) unless asked to keep it."""
    process = server.process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=_STOP_TIMEOUT_S)
    if not keep_workdir:
        shutil.rmtree(server.workdir, ignore_errors=True)


# -- ensembles ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Peer:
    server_id: int
    client_port: int
    quorum_port: int
    election_port: int


@dataclass
class RunningEnsemble:
    target: str
    workdir: Path
    peers: list[Peer]
    members: list[RunningServer]  # in peers' order
    startup_s: float = 0.0
    modes: list[str | None] | None = None  # srvr's Mode of each member when it came up

    @property
    def hosts(self) -> str:
        return ",".join(member.hosts for member in self.members)

    @property
    def pids(self) -> tuple[int, ...]:
        return tuple(member.pid for member in self.members)

    @property
    def leader_index(self) -> int | None:
        return leader_index(self.modes or [])

    def log_tails(self, line_count: int = 15) -> str:
        return "\n".join(
            f"--- member {peer.server_id} (pid {member.pid}, exit {member.process.poll()}):\n"
            f"{member.log_tail(line_count)}"
            for peer, member in zip(self.peers, self.members, strict=False)  # fewer while starting
        )


def free_ports(count: int) -> list[int]:
    """`count` distinct ports the kernel handed out just now (all held open until all are picked)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            probe = socket.socket()
            sockets.append(probe)
            probe.bind((LOOPBACK, 0))
        return [int(probe.getsockname()[1]) for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


def plan_peers(size: int, ports: list[int] | None = None) -> list[Peer]:
    """Members 1..size, each with a client, a quorum and an election port."""
    ports = ports if ports is not None else free_ports(3 * size)
    if len(ports) < 3 * size or len(set(ports)) != len(ports):
        raise ValueError(f"need {3 * size} distinct ports, got {ports}")
    return [Peer(i + 1, ports[3 * i], ports[3 * i + 1], ports[3 * i + 2]) for i in range(size)]


def ensemble_cfg_text(data_dir: Path, me: Peer, peers: list[Peer], extra: tuple[str, ...] = (),
                      observers: frozenset[int] = frozenset()) -> str:
    """One member's zoo.cfg: the standalone lines (forceSync=yes, 127.0.0.1, ...) plus
    initLimit, syncLimit, `extra` lines (e.g. autopurge.*) and one
    server.N=127.0.0.1:quorum:election line per member (`:observer` for `observers`)."""
    lines = ["initLimit=10", "syncLimit=5", *extra] + [
        f"server.{peer.server_id}={LOOPBACK}:{peer.quorum_port}:{peer.election_port}"
        + (":observer" if peer.server_id in observers else "") for peer in peers
    ] + (["peerType=observer"] if me.server_id in observers else [])
    return zoo_cfg_text(data_dir, me.client_port) + "\n".join(lines) + "\n"


def read_cfg(cfg_path: Path) -> dict[str, str]:
    """The key=value lines of a zoo.cfg (comments and blank lines skipped)."""
    values: dict[str, str] = {}
    for line in cfg_path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def four_letter_word(port: int, word: str, timeout_s: float = _FOUR_LETTER_TIMEOUT_S) -> str:
    """Send a four-letter word to 127.0.0.1:port and return the whole reply (bounded)."""
    with socket.create_connection((LOOPBACK, port), timeout=timeout_s) as sock:
        sock.sendall(word.encode("ascii"))
        sock.shutdown(socket.SHUT_WR)
        chunks: list[bytes] = []
        for _ in range(1024):  # a srvr/mntr reply is a few KB
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def parse_mode(srvr_reply: str) -> str | None:
    """The `Mode:` line of a srvr reply (leader, follower, standalone, ...), or None."""
    for line in srvr_reply.splitlines():
        if line.startswith("Mode:"):
            return line.partition(":")[2].strip() or None
    return None


def parse_zxid(srvr_reply: str) -> int | None:
    """The `Zxid:` line of a srvr reply (0x...), or None."""
    for line in srvr_reply.splitlines():
        if line.startswith("Zxid:"):
            try:
                return int(line.partition(":")[2].strip(), 16)
            except ValueError:
                return None
    return None


def member_mode(port: int) -> str | None:
    try:
        return parse_mode(four_letter_word(port, "srvr"))
    except OSError:
        return None


def member_status(port: int, timeout_s: float = _FOUR_LETTER_TIMEOUT_S) -> tuple[str | None, int | None]:
    """(Mode, Zxid) of srvr on 127.0.0.1:port; (None, None) if it does not answer or serve."""
    try:
        reply = four_letter_word(port, "srvr", timeout_s)
    except OSError:
        return None, None
    return parse_mode(reply), parse_zxid(reply)


def leader_index(modes: list[str | None]) -> int | None:
    """The index of the one leader, or None unless there is exactly one."""
    leaders = [i for i, mode in enumerate(modes) if mode == "leader"]
    return leaders[0] if len(leaders) == 1 else None


def quorum_formed(modes: list[str | None]) -> bool:
    """Exactly one leader and every other member a follower or an observer."""
    return leader_index(modes) is not None and \
        modes.count("follower") + modes.count("observer") == len(modes) - 1


def start_ensemble(
    target: str, size: int = 3, timeout_s: float = _ENSEMBLE_READY_TIMEOUT_S, extra_cfg: tuple[str, ...] = (),
    observers: frozenset[int] = frozenset(),
) -> RunningEnsemble:
    """Start `size` members of `target` on free loopback ports and wait until the ensemble
    is up; raise ServerDidNotStart (every member stopped) if it does not come up in time.
    `extra_cfg` lines go into every member's zoo.cfg (ensemble_cfg_text); the member ids in
    `observers` are observers."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}")
    if target == "pyzk" and not PYZK_SERVER.exists():
        raise ServerDidNotStart(f"{PYZK_SERVER} does not exist")
    workdir = Path(tempfile.mkdtemp(prefix=f"pyzk-bench-ensemble-{target}-", dir=_data_root()))
    ensemble = RunningEnsemble(target, workdir, plan_peers(size), [])
    began = time.monotonic()
    try:
        for peer in ensemble.peers:
            member_dir = workdir / f"member{peer.server_id}"
            data_dir = member_dir / "data"
            data_dir.mkdir(parents=True)
            (data_dir / "myid").write_text(f"{peer.server_id}\n")
            cfg_path = member_dir / "zoo.cfg"
            cfg_path.write_text(ensemble_cfg_text(data_dir, peer, ensemble.peers, extra_cfg, observers))
            with open(member_dir / "server.log", "wb") as log:  # the child keeps its own fd
                process = subprocess.Popen(
                    command_for(target, cfg_path), stdout=log, stderr=subprocess.STDOUT, cwd=member_dir
                )
            ensemble.members.append(RunningServer(target, process, peer.client_port, member_dir, 0.0))
        _wait_until_ensemble_serving(ensemble, timeout_s)
    except BaseException:  # a failed or interrupted start leaves no member running
        stop_ensemble(ensemble)
        raise
    ensemble.startup_s = time.monotonic() - began
    for member in ensemble.members:
        member.startup_s = ensemble.startup_s
    return ensemble


def _wait_until_ensemble_serving(ensemble: RunningEnsemble, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    last = "no attempt"
    for _attempt in range(int(timeout_s / _ENSEMBLE_POLL_S) + 1):
        for peer, member in zip(ensemble.peers, ensemble.members, strict=True):
            if member.process.poll() is not None:
                raise ServerDidNotStart(
                    f"{ensemble.target} member {peer.server_id} exited with {member.process.returncode}:\n"
                    f"{ensemble.log_tails()}"
                )
        modes = [member_mode(member.port) for member in ensemble.members]
        if quorum_formed(modes):
            try:
                for member in ensemble.members:
                    BlockingSession((LOOPBACK, member.port)).close()
                ensemble.modes = modes
                return
            except (OSError, VerificationError) as error:
                last = f"modes {modes}, session refused: {error}"
        else:
            last = f"modes {modes}"
        if time.monotonic() > deadline:
            break
        time.sleep(_ENSEMBLE_POLL_S)
    raise ServerDidNotStart(
        f"{ensemble.target} ensemble not up after {timeout_s:.0f} s ({last}):\n{ensemble.log_tails()}"
    )


def ensemble_modes(ensemble: RunningEnsemble) -> list[str | None]:
    """srvr's Mode of each member now (None for one that does not answer or not serve)."""
    return [member_mode(member.port) for member in ensemble.members]


def kill_member(ensemble: RunningEnsemble, index: int) -> float:
    """SIGKILL member `index` by its PID (kill -9, no shutdown of any kind) and reap it.
    Returns the time.monotonic() at which the signal was sent."""
    member = ensemble.members[index]
    if member.process.poll() is not None:
        raise ValueError(f"member {ensemble.peers[index].server_id} (pid {member.pid}) is not running")
    killed_at = time.monotonic()
    os.kill(member.pid, signal.SIGKILL)
    member.process.wait(timeout=_STOP_TIMEOUT_S)
    return killed_at


def restart_member(ensemble: RunningEnsemble, index: int) -> RunningServer:
    """Launch member `index` again exactly as start_ensemble did: the same command, zoo.cfg,
    myid and dataDir (its server.log is appended to). The old process must have exited.
    Does not wait for it to serve; replaces ensemble.members[index] and returns it."""
    old = ensemble.members[index]
    if old.process.poll() is None:
        raise ValueError(f"member {ensemble.peers[index].server_id} (pid {old.pid}) is still running")
    cfg_path = old.workdir / "zoo.cfg"
    with open(old.workdir / "server.log", "ab") as log:  # the child keeps its own fd
        log.write(f"\n--- bench: restarted at {time.strftime('%H:%M:%S')} ---\n".encode())
        log.flush()
        process = subprocess.Popen(
            command_for(ensemble.target, cfg_path), stdout=log, stderr=subprocess.STDOUT, cwd=old.workdir
        )
    member = RunningServer(ensemble.target, process, old.port, old.workdir, 0.0)
    ensemble.members[index] = member
    return member


def stop_ensemble(ensemble: RunningEnsemble, keep_workdir: bool = False) -> None:
    """SIGTERM every member by its PID, wait up to 10 s, SIGKILL (by PID) any still alive;
    then remove the ensemble's temp dir unless asked to keep it."""
    for member in ensemble.members:
        if member.process.poll() is None:
            member.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + _STOP_TIMEOUT_S
    for member in ensemble.members:
        try:
            member.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            member.process.kill()
            member.process.wait(timeout=_STOP_TIMEOUT_S)
    if not keep_workdir:
        shutil.rmtree(ensemble.workdir, ignore_errors=True)


def rss_kib(pid: int) -> int:
    """Resident set size of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _tail(path: Path, line_count: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-line_count:])
    except OSError:
        return "(no log)"

