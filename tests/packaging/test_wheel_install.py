"""An installed wheel works as an operator runs it (no checkout anywhere near it).

Rule 1: the wheel is built from a copy of the sources (`pip wheel --no-deps`, the project's
        build backend), installed with `--no-deps --no-index` into a fresh venv without the
        system site-packages (where an editable install of this checkout lives); the venv sees
        the already-installed runtime dependencies (construct, sortedcontainers) through a
        .pth naming only their folders, so nothing is downloaded besides the build backend.
Rule 2: the installed `zkServer start`, run in a temp working directory with no argument and
        no ZOOCFGDIR/ZOO_LOG_DIR, finds ./conf/zoo.cfg and writes its logs under ./logs;
        nothing is written into site-packages; `ruok`/`srvr` answer on a free loopback port.
Rule 3: the bin/ tools are console scripts of the wheel; the server is stopped through its
        pid (and killed by that pid if the test fails half-way); every wait is bounded.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.compat.targets import LOOPBACK, REPO_ROOT, free_loopback_ports

pytestmark = pytest.mark.slow

BUILD_TIMEOUT_S = 300.0
CLI_TIMEOUT_S = 120.0
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "pyzk", "jute")
CONSOLE_SCRIPTS = ("zkServer", "zkCleanup", "zkTxnLogToolkit", "zkSnapShotToolkit", "pyzk-docker-entrypoint")


def four_letter(port: int, word: bytes) -> str:
    with socket.create_connection((LOOPBACK, port), timeout=5.0) as sock:
        sock.sendall(word)
        chunks = []
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            chunk = sock.recv(4096)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks).decode()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def build_wheel(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, src / name)
    dist = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(src), "-w", str(dist)],
                           capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False)
    if built.returncode != 0:
        output = built.stdout + built.stderr
        if "No matching distribution" in output or "Could not find a version" in output:
            pytest.skip(f"the build backend (setuptools>=68, wheel) cannot be installed here: {output[-500:]}")
        pytest.fail(f"pip wheel failed:\n{output}")
    wheels = list(dist.glob("pyzk_server-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def make_venv(tmp_path: Path, wheel: Path) -> Path:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=CLI_TIMEOUT_S)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--no-index", str(wheel)], check=True, timeout=CLI_TIMEOUT_S, capture_output=True)
    import construct
    import sortedcontainers

    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               check=True, capture_output=True, text=True, timeout=CLI_TIMEOUT_S).stdout.strip())
    dep_dirs = {str(Path(module.__file__).resolve().parent.parent) for module in (construct, sortedcontainers)}
    (site / "_pyzk_test_deps.pth").write_text("".join(f"{path}\n" for path in sorted(dep_dirs)))
    return venv


@pytest.fixture
def started_pids() -> Iterator[list[int]]:
    pids: list[int] = []
    yield pids
    for pid in pids:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_installed_wheel_runs_from_the_working_directory(tmp_path: Path, started_pids: list[int]) -> None:
    venv = make_venv(tmp_path, build_wheel(tmp_path))
    python = venv / "bin" / "python"
    for script in CONSOLE_SCRIPTS:
        assert (venv / "bin" / script).is_file(), script
    work = tmp_path / "work"
    (work / "conf").mkdir(parents=True)
    (port,) = free_loopback_ports(1)
    (work / "conf" / "zoo.cfg").write_text(
        f"tickTime=2000\ndataDir={work / 'data'}\nclientPort={port}\nclientPortAddress={LOOPBACK}\n"
        "4lw.commands.whitelist=srvr,ruok\nadmin.enableServer=false\n")
    env = {key: value for key, value in os.environ.items()
           if key not in ("ZOOCFGDIR", "ZOOCFG", "ZOO_LOG_DIR", "ZOOPIDFILE", "PYTHONPATH", "SERVER_JVMFLAGS",
                          "JVMFLAGS", "ZOO_LOG4J_PROP", "ZOO_START_TIMEOUT")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    site = Path(subprocess.run([str(python), "-c", "import pyzk, pathlib; print(pathlib.Path(pyzk.__file__).parent.parent)"],
                               cwd=work, env=env, check=True, capture_output=True, text=True,
                               timeout=CLI_TIMEOUT_S).stdout.strip())
    assert site.is_relative_to(venv), f"pyzk imported from {site}, not from the venv"

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(venv / "bin" / argv[0]), *argv[1:]], cwd=work, env=env, capture_output=True,
                              text=True, timeout=CLI_TIMEOUT_S, check=False)

    started = run("zkServer", "start")
    pid_file = work / "data" / "zookeeper_server.pid"
    if pid_file.exists():
        started_pids.append(int(pid_file.read_text()))
    assert started.returncode == 0, started.stdout + started.stderr
    assert started.stdout.endswith("STARTED\n")
    assert f"Using config: {work / 'conf' / 'zoo.cfg'}" in started.stderr
    pid = started_pids[0]
    assert str(venv) in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")

    assert four_letter(port, b"ruok") == "imok"
    assert "Mode: standalone" in four_letter(port, b"srvr")
    status = run("zkServer", "status")
    assert status.returncode == 0 and "Mode: standalone" in status.stdout

    logs = work / "logs"
    assert "Reading configuration from" in (logs / "zookeeper.log").read_text()
    assert list(logs.glob("zookeeper-*-server-*.out"))
    assert not (site / "logs").exists() and not (site / "conf").exists()

    # The tools, installed as console scripts.
    assert run("zkCleanup", "-n", "3", str(work / "data")).returncode == 0
    helped = run("zkTxnLogToolkit", "--help")  # TxnLogToolkit's help: stdout, exit 0
    assert helped.returncode == 0 and "usage: TxnLogToolkit" in helped.stdout, helped.stderr
    helped = run("zkSnapShotToolkit")  # SnapshotFormatter has no help option: usage on stderr, exit 2
    assert helped.returncode == 2 and "USAGE: SnapshotFormatter" in helped.stderr, helped.stdout
    txn_logs = sorted((work / "data" / "version-2").glob("log.*"))
    if txn_logs:
        dumped = run("zkTxnLogToolkit", str(txn_logs[-1]))
        assert dumped.returncode == 0 and "ZooKeeper Transactional Log File" in dumped.stdout, dumped.stderr
    init = subprocess.run([str(venv / "bin" / "pyzk-docker-entrypoint")], cwd=work, capture_output=True, text=True,
                          env={**env, "ZOO_CONF_DIR": str(tmp_path / "gen" / "conf"),
                               "ZOO_DATA_DIR": str(tmp_path / "gen" / "data")},
                          timeout=CLI_TIMEOUT_S, check=False)
    assert init.returncode == 0, init.stderr
    assert (tmp_path / "gen" / "conf" / "zoo.cfg").is_file() and (tmp_path / "gen" / "data" / "myid").is_file()

    stopped = run("zkServer", "stop")
    assert stopped.returncode == 0 and stopped.stdout.endswith("STOPPED\n")
    deadline = time.monotonic() + 10.0
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pid_alive(pid)
    assert not pid_file.exists()
