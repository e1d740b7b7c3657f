"""pyzk.cli (zkServer.py verbs that need no running server) and pyzk.logsetup's line layout."""

from __future__ import annotations

import logging
import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyzk import cli
from pyzk.logsetup import ZooKeeperFormatter, abbreviate_logger_name, parse_log4j_prop


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "zoo.cfg"
    path.write_text(f"tickTime=2000\ndataDir={tmp_path / 'data'}\nclientPort=21810\n")
    return path


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"ZOOCFGDIR": str(tmp_path / "confdir"), "ZOO_LOG_DIR": str(tmp_path / "logs"),
            "USER": "tester"}


@pytest.fixture
def restore_root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


# --- arguments and config lookup -------------------------------------------------------------


def test_parse_args() -> None:
    invocation = cli.parse_args(["--config", "/etc/zk", "start", "-Da.b=c", "-Dflag", "my.cfg"])
    assert invocation == cli.Invocation("start", "my.cfg", {"a.b": "c", "flag": ""}, "/etc/zk")
    assert cli.parse_args([]) is None


def test_find_config_like_zkserver_sh(tmp_path: Path, env: dict[str, str]) -> None:
    def found(*argv: str, **extra: str) -> Path:
        invocation = cli.parse_args(["status", *argv])
        assert invocation is not None
        return cli.find_config(invocation, {**env, **extra})

    confdir = Path(env["ZOOCFGDIR"])
    assert found() == confdir / "zoo.cfg"
    assert found(ZOOCFG="other.cfg") == confdir / "other.cfg"
    assert found("x.cfg") == confdir / "x.cfg"
    assert found("sub/x.cfg") == Path("sub/x.cfg")
    assert found(str(tmp_path / "abs.cfg")) == tmp_path / "abs.cfg"
    invocation = cli.parse_args(["status"])
    assert invocation is not None
    assert cli.find_config(invocation, {}) == cli.PROJECT_ROOT / "conf" / "zoo.cfg"


def test_usage_without_verb_or_with_unknown_verb(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([], {}) == 1
    assert cli.main(["frobnicate"], {}) == 1
    assert "Usage:" in capsys.readouterr().err


# --- verbs -----------------------------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["version"], {}) == 0
    out = capsys.readouterr().out
    assert re.fullmatch(r"pyzk, version \d+\.\d+\.\d+\S* \(Apache ZooKeeper 3\.8\.0 compatible\)\n",
                        out)


def test_print_cmd(cfg: Path, env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["print-cmd", "-Dzookeeper.snapCount=10", str(cfg)], env) == 0
    captured = capsys.readouterr()
    assert captured.err == f"Using config: {cfg}\n"
    host_out = cli.daemon_out_file(env)
    assert captured.out == (
        f"{sys.executable} -m pyzk.cli start-foreground -Dzookeeper.snapCount=10 {cfg}"
        f" > {host_out} 2>&1 < /dev/null\n")
    assert host_out.name.startswith("zookeeper-tester-server-") and host_out.suffix == ".out"


def test_status_when_nothing_runs(cfg: Path, env: dict[str, str],
                                  capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[str, int]] = []

    def no_answer(host: str, port: int, timeout_s: float = 0) -> None:
        asked.append((host, port))

    monkeypatch.setattr(cli, "ask_srvr", no_answer)
    assert cli.main(["status", str(cfg)], env) == 1
    assert asked == [("0.0.0.0", 21810)]
    assert capsys.readouterr().out == (
        "Client port found: 21810. Client address: localhost. Client SSL: false.\n"
        "Error contacting service. It is probably not running.\n")


def test_status_prints_the_mode_line(cfg: Path, env: dict[str, str],
                                     capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    reply = "Zookeeper version: 3.8.0\nZxid: 0x0\nMode: follower\nNode count: 5\n"
    monkeypatch.setattr(cli, "ask_srvr", lambda host, port, timeout_s=0: reply)
    assert cli.main(["status", str(cfg)], env) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "Mode: follower"


def test_start_with_bad_config_exits_2_with_the_line(
        tmp_path: Path, env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.cfg"
    bad.write_text(f"dataDir={tmp_path / 'data'}\ntickTime=abc\nclientPort=1\n")
    assert cli.main(["start", str(bad)], env) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2: tickTime: invalid integer 'abc'" in err
    assert not (tmp_path / "data").exists()  # nothing was spawned, no pid file written


def test_start_foreground_with_bad_config_exits_2(
        tmp_path: Path, env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.cfg"
    bad.write_text("clientPort=2181\n")
    assert cli.main(["start-foreground", str(bad)], env) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"Invalid config, exiting abnormally: {bad}: dataDir: dataDir is not set")


def test_start_foreground_runs_the_server_with_the_config(
        cfg: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
        restore_root_logging: None) -> None:
    seen = []
    fake = types.ModuleType("pyzk.server.main")
    fake.run = lambda config: seen.append(config) or 7  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pyzk.server.main", fake)
    assert cli.main(["start-foreground", "-Dzookeeper.snapCount=42", str(cfg)], env) == 7
    assert seen[0].snap_count == 42 and seen[0].client_port == 21810
    assert isinstance(logging.getLogger().handlers[0].formatter, ZooKeeperFormatter)


def test_stop_without_pid_file(cfg: Path, env: dict[str, str],
                               capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["stop", str(cfg)], env) == 0
    pid_path = cfg.parent / "data" / "zookeeper_server.pid"
    assert capsys.readouterr().out == (
        f"Stopping zookeeper ... no zookeeper to stop (could not find file {pid_path})\n")


def test_stop_with_stale_pid_file_removes_it(cfg: Path, env: dict[str, str],
                                             capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    pid_path = cfg.parent / "data" / "zookeeper_server.pid"
    pid_path.parent.mkdir()
    pid_path.write_text("123456")
    monkeypatch.setattr(cli, "process_alive", lambda pid: False)
    assert cli.main(["stop", str(cfg)], env) == 0
    assert capsys.readouterr().out == "Stopping zookeeper ... STOPPED\n"
    assert not pid_path.exists()


def test_pid_file_location(cfg: Path) -> None:
    from pyzk.config import load_config

    config = load_config(cfg)
    assert cli.pid_file(config, {}) == config.data_dir / "zookeeper_server.pid"
    assert cli.pid_file(config, {"ZOOPIDFILE": "/run/zk.pid"}) == Path("/run/zk.pid")


# --- logging layout --------------------------------------------------------------------------


def test_logger_name_abbreviated_like_logback() -> None:
    assert abbreviate_logger_name("pyzk.server.listener") == "p.s.listener"
    assert abbreviate_logger_name("main") == "main"


def test_log_line_layout() -> None:
    record = logging.LogRecord("pyzk.quorum.driver", logging.WARNING, "driver.py", 42,
                               "lost %s", ("leader",), None)
    record.threadName = "MainThread"
    line = ZooKeeperFormatter(my_id=3).format(record)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[myid:3\] - WARN  "
                        r"\[main:p\.q\.driver@42\] - lost leader", line)
    record.levelno, record.threadName = logging.INFO, "fsync"
    assert "[myid:] - INFO  [fsync:p.q.driver@42]" in ZooKeeperFormatter(my_id=None).format(record)


def test_zoo_log4j_prop() -> None:
    assert parse_log4j_prop(None) == (logging.INFO, "CONSOLE")
    assert parse_log4j_prop("DEBUG,ROLLINGFILE") == (logging.DEBUG, "ROLLINGFILE")
    assert parse_log4j_prop("WARN") == (logging.WARNING, "CONSOLE")
