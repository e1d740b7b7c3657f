"""Start and stop the servers under test: Apache ZooKeeper (Debian jars) and pyzk.

Rules: both read the same zoo.cfg (forceSync=yes, dataDir on local disk in a fresh temp
dir, 127.0.0.1, a free port); a server is "up" only once a real session handshake
succeeds; every wait is bounded; every process is stopped by its own PID.
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

