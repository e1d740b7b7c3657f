"""zkServer.py lifecycle (issue 5 acceptance) and the start-up bad-input cases.

Rule 1: the server is started as an operator starts it: `bin/zkServer.py start <zoo.cfg>` on
        the sample zoo.cfg the Debian zookeeper package ships, with only ports and dataDir
        changed; `status` reports standalone, `stop` stops it, and its pid is gone afterwards.
Rule 2: every process a test starts is found through its pid file and, should the test fail
        half-way, killed by that pid; every wait is bounded.
(The whitelist refusal is in test_fourletter.py, the unknown admin command in test_admin.py.)
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.compat.targets import LOOPBACK, PYZK_SERVER_SCRIPT, free_loopback_ports

DEBIAN_SAMPLE_CFG = Path("/etc/zookeeper/conf/zoo.cfg")
CLI_TIMEOUT_S = 60.0
EXIT_WAIT_S = 10.0


def run_cli(verb: str, cfg: Path, log_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ZOO_LOG_DIR": str(log_dir)}
    return subprocess.run([sys.executable, str(PYZK_SERVER_SCRIPT), verb, str(cfg)], check=False, env=env,
                          capture_output=True, text=True, timeout=CLI_TIMEOUT_S)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def sample_config(tmp_path: Path, **overrides: str) -> Path:
    """Debian's zoo.cfg with clientPort and dataDir replaced and the AdminServer port added.

    The listen addresses are pinned to loopback too: tests never listen beyond 127.0.0.1."""
    if not DEBIAN_SAMPLE_CFG.exists():
        pytest.skip(f"{DEBIAN_SAMPLE_CFG} is missing: run tests/compat/install_oracle.sh")
    client_port, admin_port = free_loopback_ports(2)
    values = {"clientPort": str(client_port), "dataDir": str(tmp_path / "data"),
              "admin.serverPort": str(admin_port), "clientPortAddress": LOOPBACK,
              "admin.serverAddress": LOOPBACK, **overrides}
    lines = []
    for line in DEBIAN_SAMPLE_CFG.read_text().splitlines():
        key = line.split("=", 1)[0].strip()
        lines.append(f"{key}={values.pop(key)}" if key in values and not line.startswith("#") else line)
    lines += [f"{key}={value}" for key, value in values.items()]
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text("\n".join(lines) + "\n")
    return cfg


@pytest.fixture
def started_pids(tmp_path: Path) -> Iterator[list[int]]:
    """Pids a test saw started; any still alive at the end are killed by pid."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_start_status_stop_on_the_debian_sample_config(tmp_path: Path, started_pids: list[int]) -> None:
    cfg = sample_config(tmp_path)
    logs = tmp_path / "logs"
    started = run_cli("start", cfg, logs)
    pid_file = tmp_path / "data" / "zookeeper_server.pid"
    if pid_file.exists():
        started_pids.append(int(pid_file.read_text()))
    assert started.returncode == 0, started.stdout + started.stderr
    assert "STARTED" in started.stdout
    pid = started_pids[0]
    assert pid_alive(pid)

    status = run_cli("status", cfg, logs)
    assert status.returncode == 0, status.stdout + status.stderr
    assert "Mode: standalone" in status.stdout.splitlines()

    stopped = run_cli("stop", cfg, logs)
    assert stopped.returncode == 0 and "STOPPED" in stopped.stdout
    deadline = time.monotonic() + EXIT_WAIT_S
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pid_alive(pid)
    assert not pid_file.exists()

    after = run_cli("status", cfg, logs)
    assert after.returncode == 1 and "It is probably not running" in after.stdout
    assert (logs / "zookeeper.log").exists()


def test_typo_key_is_reported_by_name_and_the_server_still_starts(tmp_path: Path, started_pids: list[int]) -> None:
    # ZooKeeper turns an unknown key into a zookeeper.<key> system property and runs on;
    # pyzk does too, and names the key at start-up.
    cfg = sample_config(tmp_path, tickTme="2000")
    logs = tmp_path / "logs"
    started = run_cli("start", cfg, logs)
    pid_file = tmp_path / "data" / "zookeeper_server.pid"
    if pid_file.exists():
        started_pids.append(int(pid_file.read_text()))
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        log_text = (logs / "zookeeper.log").read_text()
        assert re.search(r"WARN .*tickTme: unknown key, did you mean tickTime\?", log_text), log_text[-2000:]
    finally:
        run_cli("stop", cfg, logs)


def test_non_numeric_tick_time_stops_start_up_with_file_and_line(tmp_path: Path) -> None:
    cfg = sample_config(tmp_path, tickTime="2s")
    result = run_cli("start", cfg, tmp_path / "logs")
    assert result.returncode == 2
    line_number = cfg.read_text().splitlines().index("tickTime=2s") + 1
    assert f"{cfg}:{line_number}: tickTime:" in result.stderr
    assert not (tmp_path / "data" / "zookeeper_server.pid").exists()


def test_client_port_in_use_fails_to_start(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind((LOOPBACK, 0))
        busy.listen(1)
        cfg = sample_config(tmp_path, clientPort=str(busy.getsockname()[1]))
        result = run_cli("start", cfg, tmp_path / "logs")
    assert result.returncode == 1
    assert "FAILED TO START" in result.stdout
    assert "address already in use" in result.stderr.lower()
    assert not (tmp_path / "data" / "zookeeper_server.pid").exists()


def test_data_dir_that_cannot_be_created_fails_to_start(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    cfg = sample_config(tmp_path, dataDir=str(blocker / "data"))
    result = run_cli("start", cfg, tmp_path / "logs")
    assert result.returncode != 0
    assert "FAILED TO START" in result.stdout or str(blocker) in result.stderr
    assert not blocker.is_dir()
