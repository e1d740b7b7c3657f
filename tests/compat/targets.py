"""Start a ZooKeeper target (Apache ZooKeeper 3.8 or pyzk) on free loopback ports.

Rule 1: both kinds get the same zoo.cfg and myid, written here, and are started the way a
user starts them: Apache with ``java ... QuorumPeerMain zoo.cfg``, pyzk with
``bin/zkServer.py start-foreground zoo.cfg``.  ``-D`` system properties go to both verbatim.
Rule 2: every wait is bounded.  A server that exits or does not serve within
``start_timeout_s`` raises ``TargetStartError`` carrying the tail of its log.
Rule 3: processes are stopped by their own PID (SIGTERM, bounded wait, then SIGKILL).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

REPO_ROOT = Path(__file__).resolve().parents[2]
PYZK_SERVER_SCRIPT = REPO_ROOT / "bin" / "zkServer.py"
TARGET_KINDS = ("apache", "pyzk")
# Mixed targets: an ensemble of both kinds, named by which server ids run pyzk.  At size 3:
# "mixed" is p j j (server 1 pyzk, 2 and 3 Apache; the Java server 3 leads after a clean
# start, as the highest id), "mixed2" is j p p (server 3, pyzk, leads).  Sizes below 2 have
# no mix.
MIXED_TARGETS = ("mixed", "mixed2")
ENSEMBLE_TARGETS = TARGET_KINDS + MIXED_TARGETS
LOOPBACK = "127.0.0.1"

APACHE_MAIN_CLASS = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
APACHE_JAR = Path("/usr/share/java/zookeeper.jar")
# zookeeper.jar's manifest names most of its dependencies; these it does not, yet the Netty
# connection factory (used by kazoo's harness) and the log4j console logging need them.
APACHE_CLASSPATH_JARS = (
    "/etc/zookeeper/conf",
    str(APACHE_JAR),
    "/usr/share/java/slf4j-api.jar",
    "/usr/share/java/netty-codec.jar",
    "/usr/share/java/netty-resolver.jar",
    "/usr/share/java/netty-transport-native-unix-common.jar",
    "/usr/share/java/slf4j-log4j12.jar",
    "/usr/share/java/log4j-1.2.jar",
)
APACHE_CLASSPATH = os.pathsep.join(APACHE_CLASSPATH_JARS)

SERVING_MODES = ("standalone", "leader", "follower", "observer")
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
FOUR_LETTER_TIMEOUT_S = 2.0
POLL_INTERVAL_S = 0.2
LOG_TAIL_LINES = 40


class TargetStartError(RuntimeError):
    """A server exited or did not serve in time; the message holds its log tail."""


def sysprop_args(sysprops: dict[str, str] | None) -> list[str]:
    """Java system properties as ``-Dname=value`` arguments, in insertion order."""
    return [f"-D{name}={value}" for name, value in (sysprops or {}).items()]


def apache_command(
    config_path: Path, sysprop_flags: list[str], log_dir: Path
) -> list[str]:
    """The Debian Apache ZooKeeper 3.8 server command line, logging to stdout."""
    return [
        "java",
        "-cp",
        APACHE_CLASSPATH,
        "-Dzookeeper.root.logger=INFO,CONSOLE",
        f"-Dzookeeper.log.dir={log_dir}",
        *sysprop_flags,
        APACHE_MAIN_CLASS,
        str(config_path),
    ]


def pyzk_command(config_path: Path, sysprop_flags: list[str]) -> list[str]:
    """pyzk's server command line, exactly as a user runs it (with this interpreter)."""
    return [
        sys.executable,
        str(PYZK_SERVER_SCRIPT),
        "start-foreground",
        *sysprop_flags,
        str(config_path),
    ]


def free_loopback_ports(count: int) -> list[int]:
    """Ports the kernel handed out just now; all sockets stay open until all are picked."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((LOOPBACK, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def four_letter_word(
    port: int, word: str, timeout_s: float = FOUR_LETTER_TIMEOUT_S
) -> str:
    """Send a four-letter word to 127.0.0.1:port and return the whole reply."""
    with socket.create_connection((LOOPBACK, port), timeout=timeout_s) as sock:
        sock.sendall(word.encode("ascii"))
        sock.shutdown(socket.SHUT_WR)
        chunks: list[bytes] = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def serving_mode(port: int) -> str | None:
    """The ``Mode:`` that ``srvr`` reports, or None while the server is not serving."""
    try:
        reply = four_letter_word(port, "srvr")
    except OSError:
        return None
    for line in reply.splitlines():
        if line.startswith("Mode:"):
            mode = line.partition(":")[2].strip()
            return mode if mode in SERVING_MODES else None
    return None


def log_tail(log_path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Server:
    """One server process of a target; its data dir survives stop() and start()."""

    kind: str
    server_id: int
    client_port: int
    quorum_port: int
    election_port: int
    admin_port: int
    server_dir: Path
    sysprop_flags: list[str]
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def data_dir(self) -> Path:
        return self.server_dir / "data"

    @property
    def config_path(self) -> Path:
        return self.server_dir / "zoo.cfg"

    @property
    def log_path(self) -> Path:
        return self.server_dir / "server.log"

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.client_port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def command(self) -> list[str]:
        if self.kind == "apache":
            return apache_command(self.config_path, self.sysprop_flags, self.server_dir)
        return pyzk_command(self.config_path, self.sysprop_flags)

    def launch(self) -> None:
        """Start the process without waiting for it to serve."""
        if self.running:
            return
        if self.kind == "apache" and not APACHE_JAR.exists():
            raise TargetStartError(
                f"{APACHE_JAR} is missing: run tests/compat/install_oracle.sh"
            )
        with self.log_path.open("ab") as log_file:
            log_file.write(f"--- starting: {' '.join(self.command())}\n".encode())
            log_file.flush()
            self.process = subprocess.Popen(
                self.command(),
                cwd=self.server_dir,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_serving(self, deadline: float) -> str:
        """Poll ``srvr`` until a serving mode shows; raise at once if the process exits."""
        while True:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise TargetStartError(
                    f"{self.kind} server {self.server_id} exited (code {code}) before "
                    f"serving on {self.address}; log {self.log_path}:\n"
                    f"{log_tail(self.log_path)}"
                )
            mode = serving_mode(self.client_port)
            if mode is not None:
                return mode
            if time.monotonic() >= deadline:
                raise TargetStartError(
                    f"{self.kind} server {self.server_id} did not serve on {self.address} "
                    f"in time; log {self.log_path}:\n{log_tail(self.log_path)}"
                )
            time.sleep(POLL_INTERVAL_S)

    def start(self, wait: bool = True, timeout_s: float = START_TIMEOUT_S) -> None:
        self.launch()
        if wait:
            self.wait_serving(time.monotonic() + timeout_s)

    def terminate(self) -> None:
        """Send SIGTERM without waiting."""
        if self.running:
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM, a bounded wait, then SIGKILL."""
        if self.process is None:
            return
        self.terminate()
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill9()

    def kill9(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=STOP_TIMEOUT_S)

    def replace(
        self, kind: str, wait: bool = True, timeout_s: float = START_TIMEOUT_S
    ) -> None:
        """Stop this server (SIGTERM by PID) and start the other ``kind`` in its place.

        The new process reads the same zoo.cfg, myid and dataDir (both kinds use Apache's
        on-disk format) and serves on the same ports, as an operator swapping one member
        of a live ensemble would do.
        """
        check_kind(kind)
        self.stop()
        self.kind = kind
        self.start(wait=wait, timeout_s=timeout_s)


@dataclass
class Ensemble:
    """The servers of one target; ``hosts`` is the client connect string.

    ``kind`` names the target; a mixed ensemble (``start_mixed``) has kind ``"mixed"`` and
    each of its servers carries its own ``Server.kind``.
    """

    kind: str
    servers: list[Server]
    workdir: Path

    @property
    def size(self) -> int:
        return len(self.servers)

    @property
    def kinds(self) -> list[str]:
        """The kind of each server, in server-id order (changes with ``Server.replace``)."""
        return [server.kind for server in self.servers]

    @property
    def hosts(self) -> str:
        return ",".join(server.address for server in self.servers)

    def wait_serving(self, timeout_s: float = START_TIMEOUT_S) -> list[str]:
        deadline = time.monotonic() + timeout_s
        return [server.wait_serving(deadline) for server in self.servers]

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        for server in self.servers:
            server.launch()
        self.wait_serving(timeout_s)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        # Signal every server first so that they shut down in parallel.
        for server in self.servers:
            server.terminate()
        for server in self.servers:
            server.stop(timeout_s)

    def restart(self, timeout_s: float = START_TIMEOUT_S) -> None:
        self.stop()
        self.start(timeout_s)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def zoo_cfg_text(
    server: Server, peers: list[Server], extra_cfg: dict[str, str | None],
    observers: frozenset[int] = frozenset(),
) -> str:
    """zoo.cfg for one server; ``extra_cfg`` overrides defaults, a None value removes a key.
    The server ids in ``observers`` are listed as ``:observer`` (and get peerType=observer)."""
    entries: dict[str, str | None] = {
        "tickTime": "2000",
        "initLimit": "10",
        "syncLimit": "5",
        "dataDir": str(server.data_dir),
        "clientPort": str(server.client_port),
        "clientPortAddress": LOOPBACK,
        "4lw.commands.whitelist": "*",
        "admin.enableServer": "false",
        "admin.serverPort": str(server.admin_port),
    }
    if len(peers) > 1:
        for peer in peers:
            entries[f"server.{peer.server_id}"] = (
                f"{LOOPBACK}:{peer.quorum_port}:{peer.election_port}"
                + (":observer" if peer.server_id in observers else "")
            )
        if server.server_id in observers:
            entries["peerType"] = "observer"
    entries.update(extra_cfg)
    return "".join(
        f"{key}={value}\n" for key, value in entries.items() if value is not None
    )


def mixed_server_kinds(target: str, size: int) -> list[str]:
    """The kind of each server id 1..size of the mixed ``target``."""
    if target not in MIXED_TARGETS:
        raise ValueError(f"unknown mixed target {target!r}; expected one of {MIXED_TARGETS}")
    if size < 2:
        raise ValueError(f"a mixed target needs at least 2 servers, got {size}")
    if target == "mixed":
        return ["pyzk"] + ["apache"] * (size - 1)
    return ["apache"] + ["pyzk"] * (size - 1)


def target_sizes(target: str, sizes: list[int]) -> list[int]:
    """The ``sizes`` a target can run at: a mixed target only at 2 servers or more."""
    return [size for size in sizes if target not in MIXED_TARGETS or size >= 2]


def check_target(target: str) -> None:
    if target not in ENSEMBLE_TARGETS:
        raise ValueError(
            f"unknown target {target!r}; expected one of {ENSEMBLE_TARGETS}"
        )


def check_kind(kind: str) -> None:
    if kind not in TARGET_KINDS:
        raise ValueError(
            f"unknown target kind {kind!r}; expected one of {TARGET_KINDS}"
        )


def plan_servers(
    kinds: list[str],
    ports: list[int],
    flags: list[str],
    workdir: Path,
    dir_names: list[str],
) -> list[Server]:
    """One Server per kind, ids 1..n, four consecutive ``ports`` each (client, quorum,
    election, admin), in ``workdir / dir_names[i]``. Pure: nothing is written or started."""
    for kind in kinds:
        check_kind(kind)
    if not kinds:
        raise ValueError("an ensemble needs at least one server")
    if len(ports) != 4 * len(kinds) or len(dir_names) != len(kinds):
        raise ValueError("need four ports and one directory name per server")
    return [
        Server(
            kind=kind,
            server_id=index + 1,
            client_port=ports[4 * index],
            quorum_port=ports[4 * index + 1],
            election_port=ports[4 * index + 2],
            admin_port=ports[4 * index + 3],
            server_dir=workdir / dir_names[index],
            sysprop_flags=flags,
        )
        for index, kind in enumerate(kinds)
    ]


def _write_and_start(
    ensemble: Ensemble, extra_cfg: dict[str, str | None], start_timeout_s: float,
    observers: frozenset[int] = frozenset(),
) -> Ensemble:
    servers = ensemble.servers
    for server in servers:
        server.data_dir.mkdir(parents=True, exist_ok=True)
        (server.data_dir / "myid").write_text(f"{server.server_id}\n")
        server.config_path.write_text(zoo_cfg_text(server, servers, extra_cfg, observers))
    try:
        ensemble.start(start_timeout_s)
    except BaseException:
        ensemble.stop()
        raise
    return ensemble


def start_mixed(
    kinds: list[str],
    extra_cfg: dict[str, str | None] | None = None,
    sysprops: dict[str, str] | None = None,
    *,
    workdir: Path,
    start_timeout_s: float = START_TIMEOUT_S,
    target: str = "mixed",
    observers: frozenset[int] = frozenset(),
) -> Ensemble:
    """Like ``start_target``, with one kind per server: ``kinds[i]`` runs server id i+1;
    the ids in ``observers`` are observers.

    Server directories are ``workdir/server<id>`` whatever the kind, so that
    ``Server.replace`` can later run the other kind on the same dataDir and ports.
    ``target`` becomes ``Ensemble.kind``.
    """
    ports = free_loopback_ports(4 * len(kinds))
    servers = plan_servers(
        list(kinds), ports, sysprop_args(sysprops), workdir,
        [f"server{index + 1}" for index in range(len(kinds))],
    )
    ensemble = Ensemble(kind=target, servers=servers, workdir=workdir)
    return _write_and_start(ensemble, extra_cfg or {}, start_timeout_s, observers)


def start_target(
    kind: str,
    size: int = 1,
    extra_cfg: dict[str, str | None] | None = None,
    sysprops: dict[str, str] | None = None,
    *,
    workdir: Path,
    start_timeout_s: float = START_TIMEOUT_S,
) -> Ensemble:
    """Write configs, start ``size`` servers of ``kind`` and wait until all serve.

    ``kind`` is a server kind or a mixed target (``MIXED_TARGETS``, started by
    ``start_mixed``).  On failure every started process is stopped before
    ``TargetStartError`` propagates.
    """
    check_target(kind)
    if kind in MIXED_TARGETS:
        return start_mixed(
            mixed_server_kinds(kind, size), extra_cfg, sysprops, workdir=workdir,
            start_timeout_s=start_timeout_s, target=kind,
        )
    if size < 1:
        raise ValueError(f"size must be at least 1, got {size}")
    servers = plan_servers(
        [kind] * size, free_loopback_ports(4 * size), sysprop_args(sysprops), workdir,
        [f"{kind}-server{index + 1}" for index in range(size)],
    )
    ensemble = Ensemble(kind=kind, servers=servers, workdir=workdir)
    return _write_and_start(ensemble, extra_cfg or {}, start_timeout_s)


def target_start_error(kind: str, size: int, workdir: Path) -> str | None:
    """Start and stop a target once; None if it served, else why it did not.

    Suites call this first so that a target that cannot start fails in seconds, instead of
    every test waiting out its own connection timeouts.
    """
    try:
        start_target(kind, size, workdir=workdir).stop()
    except TargetStartError as error:
        return str(error)
    return None
