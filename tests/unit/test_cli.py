"""pyzk.cli (zkServer.py verbs that need no running server) and pyzk.logsetup's line layout."""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
import time
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


def test_log_line_time_follows_each_record_across_seconds() -> None:
    """The formatter reuses one second's text for a burst; a record of another second (or
    of an earlier one, from another thread) gets its own."""
    formatter = ZooKeeperFormatter(my_id=1)
    stamps = []
    for created in (1_700_000_000.25, 1_700_000_000.75, 1_700_000_001.5, 1_700_000_000.125):
        record = logging.LogRecord("pyzk.x", logging.INFO, "x.py", 1, "m", (), None)
        record.created, record.msecs = created, (created % 1) * 1000
        stamps.append(formatter.format(record).split(" [", 1)[0])
    expected = [time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(int(c))) for c in
                (1_700_000_000, 1_700_000_000, 1_700_000_001, 1_700_000_000)]
    assert stamps == [f"{e},{ms}" for e, ms in zip(expected, ("250", "750", "500", "125"), strict=True)]


def test_zoo_log4j_prop() -> None:
    assert parse_log4j_prop(None) == (logging.INFO, "CONSOLE")
    assert parse_log4j_prop("DEBUG,ROLLINGFILE") == (logging.DEBUG, "ROLLINGFILE")
    assert parse_log4j_prop("WARN") == (logging.WARNING, "CONSOLE")


def test_root_logger_property_and_docker_properties_choose_level_and_appender() -> None:
    from pyzk.logsetup import log_settings

    assert log_settings({}, None).log4j_prop == "INFO,CONSOLE"
    assert log_settings({}, "WARN,ROLLINGFILE").log4j_prop == "WARN,ROLLINGFILE"
    # -Dzookeeper.root.logger (log4j, zkServer.sh's way) wins over $ZOO_LOG4J_PROP.
    assert log_settings({"zookeeper.root.logger": "DEBUG,CONSOLE"}, "INFO,ROLLINGFILE").log4j_prop == (
        "DEBUG,CONSOLE")
    # The Docker image's logback properties; the missing half comes from $ZOO_LOG4J_PROP.
    assert log_settings({"zookeeper.log.level": "WARN"}, "INFO,ROLLINGFILE").log4j_prop == "WARN,ROLLINGFILE"
    assert log_settings({"zookeeper.log.appender": "ROLLINGFILE"}, None).log4j_prop == "INFO,ROLLINGFILE"
    assert log_settings({"zookeeper.root.logger": "ERROR,CONSOLE", "zookeeper.log.level": "DEBUG"},
                        None).log4j_prop == "ERROR,CONSOLE"
    assert log_settings({"zookeeper.root.logger": "LOUD,CONSOLE"}, None).problems


def test_per_module_levels() -> None:
    from pyzk.logsetup import log_settings

    settings = log_settings({"pyzk.log.level.pyzk.quorum": "DEBUG", "pyzk.log.level.pyzk.server.connection": "warn",
                             "pyzk.log.level.pyzk.sessions": "TRACE", "pyzk.log.level.pyzk.admin": "OFF",
                             "pyzk.log.level.pyzk.x": "LOUD", "pyzk.log.level.": "INFO",
                             "zookeeper.snapCount": "10"}, None)
    assert settings.module_levels == {"pyzk.quorum": logging.DEBUG, "pyzk.server.connection": logging.WARNING,
                                      "pyzk.sessions": logging.DEBUG, "pyzk.admin": logging.CRITICAL + 10}
    assert len(settings.problems) == 2 and "pyzk.log.level.pyzk.x=LOUD" in settings.problems[0]


def test_start_foreground_honours_root_logger_and_module_levels(
        cfg: Path, env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        restore_root_logging: None) -> None:
    fake = types.ModuleType("pyzk.server.main")

    def run(config: object) -> int:
        logging.getLogger("pyzk.quorum.peer").debug("quorum detail")
        logging.getLogger("pyzk.server.connection").debug("connection detail")
        logging.getLogger("pyzk.server.connection").warning("connection warning")
        return 0

    fake.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pyzk.server.main", fake)
    quorum_logger = logging.getLogger("pyzk.quorum")
    monkeypatch.setattr(quorum_logger, "level", quorum_logger.level)
    # -D on the command line, and one in $SERVER_JVMFLAGS as zkServer.sh would pass it.
    env = {**env, "ZOO_LOG4J_PROP": "WARN,CONSOLE", "SERVER_JVMFLAGS": "-Xmx1g -Dpyzk.log.level.pyzk.quorum=DEBUG"}
    argv = ["start-foreground", "-Dzookeeper.root.logger=INFO,ROLLINGFILE",
            f"-Dzookeeper.log.dir={tmp_path / 'elsewhere'}", str(cfg)]
    assert cli.main(argv, env) == 0
    logging.getLogger().handlers[0].flush()
    text = (tmp_path / "elsewhere" / "zookeeper.log").read_text()
    assert "quorum detail" in text and "connection warning" in text
    assert "connection detail" not in text  # root level INFO
    assert not (tmp_path / "logs").exists()  # -Dzookeeper.log.dir wins over $ZOO_LOG_DIR


def test_jvmflags_properties() -> None:
    env = {"SERVER_JVMFLAGS": "-Xmx2g -Da=1 '-Db=x y'", "JVMFLAGS": "-Da=2 -D"}
    assert cli.jvmflags_properties(env) == {"a": "2", "b": "x y"}


# --- an installed wheel: no checkout around pyzk ------------------------------------------------


def test_outside_a_checkout_config_and_logs_are_found_from_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "checkout_root", lambda: None)
    monkeypatch.chdir(tmp_path)
    invocation = cli.parse_args(["status"])
    assert invocation is not None
    assert cli.find_config(invocation, {}) == tmp_path / "conf" / "zoo.cfg"
    assert cli.find_config(invocation, {"ZOOCFGDIR": "/etc/zk"}) == Path("/etc/zk/zoo.cfg")
    assert cli.find_config(invocation, {"ZOOCFG": "/etc/zk/other.cfg"}) == Path("/etc/zk/other.cfg")
    assert cli.log_dir({}) == tmp_path / "logs"
    assert cli.log_dir({"ZOO_LOG_DIR": "/var/log/zk"}) == Path("/var/log/zk")
    assert cli.daemon_out_file({"USER": "u"}).parent == tmp_path / "logs"


def test_in_this_checkout_the_checkout_is_home() -> None:
    assert cli.checkout_root() == cli.PROJECT_ROOT
    assert cli.log_dir({}) == cli.PROJECT_ROOT / "logs"


def test_console_scripts_point_at_callables() -> None:
    import importlib
    import tomllib

    scripts = tomllib.loads((cli.PROJECT_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert {"zkServer", "zkCleanup", "zkTxnLogToolkit", "zkSnapShotToolkit", "pyzk-docker-entrypoint"} <= set(scripts)
    for target in scripts.values():
        module, _, attr = target.partition(":")
        assert callable(getattr(importlib.import_module(module), attr))


def test_init_config_verb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = {"ZOO_CONF_DIR": str(tmp_path / "conf"), "ZOO_DATA_DIR": str(tmp_path / "data"), "ZOO_MY_ID": "3"}
    assert cli.main(["init-config"], env) == 0
    assert (tmp_path / "data" / "myid").read_text() == "3\n"
    assert capsys.readouterr().out == f"Wrote {tmp_path / 'conf' / 'zoo.cfg'}\nWrote {tmp_path / 'data' / 'myid'}\n"
    assert cli.main(["init-config"], env) == 0
    assert capsys.readouterr().out.startswith("Kept existing")


# --- start: wait while the server makes progress, never signal a slow one ---------------------

_FAKE_SERVERS = {
    # Writes a progress line every 0.1 s for 1.5 s (little CPU: progress is the growing .out
    # file), then marks itself ready and idles.
    "slow_loader": ("import pathlib, sys, time\n"
                    "for i in range(15):\n"
                    "    print('loading snapshot', i, flush=True); time.sleep(0.1)\n"
                    "pathlib.Path(sys.argv[1]).write_text('ready')\n"
                    "time.sleep(60)\n"),
    "silent": "import time\ntime.sleep(60)\n",
    "busy": ("import time\nend = time.monotonic() + 20\n"
             "while time.monotonic() < end:\n    sum(range(10000))\n"),
    "crash": "import sys\nprint('boom', flush=True)\nsys.exit(3)\n",
}


@pytest.fixture
def fake_server(cfg: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, object]]:
    """cmd_start runs a fake server script; srvr 'answers' once the script wrote its ready file."""
    ready = tmp_path / "ready"
    state: dict[str, object] = {"kind": "silent", "ready": ready}

    def command(invocation: cli.Invocation, config_path: Path) -> list[str]:
        return [sys.executable, "-c", _FAKE_SERVERS[str(state["kind"])], str(ready), "start-foreground"]

    monkeypatch.setattr(cli, "foreground_command", command)
    monkeypatch.setattr(cli, "ask_srvr", lambda host, port, timeout_s=0: "Mode: standalone\n" if ready.exists()
                        else None)
    monkeypatch.setattr(cli, "start_stall_s", 0.6)
    monkeypatch.setattr(cli, "poll_interval_s", 0.05)
    yield state
    pid = cli.read_pid(cfg.parent / "data" / "zookeeper_server.pid")
    for candidate in filter(None, [pid, state.get("pid")]):
        try:
            os.kill(int(candidate), signal.SIGKILL)  # type: ignore[call-overload]
        except ProcessLookupError:
            pass


def _start(cfg: Path, env: dict[str, str], state: dict[str, object], kind: str) -> tuple[int, float, int | None]:
    state["kind"] = kind
    began = time.monotonic()
    code = cli.main(["start", str(cfg)], env)
    pid = cli.read_pid(cfg.parent / "data" / "zookeeper_server.pid")
    state["pid"] = pid
    return code, time.monotonic() - began, pid


def test_start_waits_for_a_slow_server_that_makes_progress(
        cfg: Path, env: dict[str, str], fake_server: dict[str, object],
        capsys: pytest.CaptureFixture[str]) -> None:
    code, waited, pid = _start(cfg, env, fake_server, "slow_loader")
    assert code == 0 and capsys.readouterr().out.endswith("STARTED\n")
    assert waited >= 1.2  # longer than the 0.6 s stall window: the growing log kept it waiting
    assert pid is not None and cli.process_alive(pid)


def test_start_gives_up_on_a_silent_server_but_leaves_it_running(
        cfg: Path, env: dict[str, str], fake_server: dict[str, object],
        capsys: pytest.CaptureFixture[str]) -> None:
    code, waited, pid = _start(cfg, env, fake_server, "silent")
    out = capsys.readouterr().out
    assert code == 1 and "NOT SERVING YET" in out and "made no progress" in out and "left running" in out
    assert waited < 10
    assert pid is not None and cli.process_alive(pid) and not cli._is_zombie(pid)  # never signalled


def test_start_timeout_from_the_environment(
        cfg: Path, env: dict[str, str], fake_server: dict[str, object],
        capsys: pytest.CaptureFixture[str]) -> None:
    code, waited, pid = _start(cfg, {**env, "ZOO_START_TIMEOUT": "1.5"}, fake_server, "busy")
    out = capsys.readouterr().out
    assert code == 1 and "ZOO_START_TIMEOUT=1.5 s passed" in out
    assert 1.5 <= waited < 10  # a busy server is progress: only the timeout ended the wait
    assert pid is not None and cli.process_alive(pid)


def test_start_reports_a_server_that_exits(
        cfg: Path, env: dict[str, str], fake_server: dict[str, object],
        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, pid = _start(cfg, env, fake_server, "crash")
    captured = capsys.readouterr()
    assert code == 1 and "FAILED TO START (the server exited with code 3)" in captured.out
    assert "boom" in captured.err  # the tail of the .out file
    assert pid is None


def test_start_timeout_values() -> None:
    assert cli.start_timeout_s({}) is None
    assert cli.start_timeout_s({"ZOO_START_TIMEOUT": "0"}) is None
    assert cli.start_timeout_s({"ZOO_START_TIMEOUT": " 90 "}) == 90.0
    with pytest.raises(ValueError):
        cli.start_timeout_s({"ZOO_START_TIMEOUT": "-1"})
