"""pyzk.envconfig: zoo.cfg and myid from ZOO_* variables, as the official image's
docker-entrypoint.sh writes them (only where missing), and the entrypoint's exec."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pyzk import envconfig
from pyzk.config import load_config


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"ZOO_CONF_DIR": str(tmp_path / "conf"), "ZOO_DATA_DIR": str(tmp_path / "data"),
            "ZOO_DATA_LOG_DIR": str(tmp_path / "datalog")}


def test_defaults_are_the_images(env: dict[str, str], tmp_path: Path) -> None:
    assert envconfig.render_zoo_cfg(env) == (
        f"dataDir={tmp_path / 'data'}\n"
        f"dataLogDir={tmp_path / 'datalog'}\n"
        "tickTime=2000\n"
        "initLimit=5\n"
        "syncLimit=2\n"
        "autopurge.snapRetainCount=3\n"
        "autopurge.purgeInterval=0\n"
        "maxClientCnxns=60\n"
        "standaloneEnabled=true\n"
        "admin.enableServer=true\n"
        "server.1=localhost:2888:3888;2181\n")
    assert envconfig.render_zoo_cfg({}).startswith("dataDir=/data\ndataLogDir=/datalog\n")


def test_every_variable(env: dict[str, str], tmp_path: Path) -> None:
    env.update({
        "ZOO_MY_ID": "2", "ZOO_TICK_TIME": "500", "ZOO_INIT_LIMIT": "10", "ZOO_SYNC_LIMIT": "5",
        "ZOO_MAX_CLIENT_CNXNS": "0", "ZOO_STANDALONE_ENABLED": "false", "ZOO_ADMINSERVER_ENABLED": "false",
        "ZOO_AUTOPURGE_PURGEINTERVAL": "1", "ZOO_AUTOPURGE_SNAPRETAINCOUNT": "5",
        "ZOO_4LW_COMMANDS_WHITELIST": "srvr,ruok,mntr",
        "ZOO_SERVERS": "server.1=zoo1:2888:3888;2181 server.2=0.0.0.0:2888:3888;2181\n\tserver.3=zoo3:2888:3888;2181",
        "ZOO_CFG_EXTRA": "metricsProvider.httpPort=7000  snapCount=1000",
    })
    assert envconfig.render_zoo_cfg(env).splitlines()[2:] == [
        "tickTime=500", "initLimit=10", "syncLimit=5", "autopurge.snapRetainCount=5",
        "autopurge.purgeInterval=1", "maxClientCnxns=0", "standaloneEnabled=false",
        "admin.enableServer=false",
        "server.1=zoo1:2888:3888;2181", "server.2=0.0.0.0:2888:3888;2181", "server.3=zoo3:2888:3888;2181",
        "4lw.commands.whitelist=srvr,ruok,mntr",
        "metricsProvider.httpPort=7000", "snapCount=1000",
    ]
    written = envconfig.write_config(env)
    assert written.zoo_cfg_written and written.myid_written
    assert (tmp_path / "data" / "myid").read_text() == "2\n"


def test_empty_values_stay_empty_like_the_shell_and_empty_servers_take_the_default() -> None:
    text = envconfig.render_zoo_cfg({"ZOO_TICK_TIME": "", "ZOO_SERVERS": "", "ZOO_4LW_COMMANDS_WHITELIST": ""})
    assert "tickTime=\n" in text and text.endswith("server.1=localhost:2888:3888;2181\n")
    assert "4lw" not in text


def test_existing_files_are_never_touched(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "zoo.cfg").write_text("mine\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "myid").write_text("7")
    written = envconfig.write_config({**env, "ZOO_MY_ID": "1", "ZOO_TICK_TIME": "1"})
    assert not written.zoo_cfg_written and not written.myid_written
    assert (tmp_path / "conf" / "zoo.cfg").read_text() == "mine\n"
    assert (tmp_path / "data" / "myid").read_text() == "7"
    assert envconfig.describe(written) == [f"Kept existing {tmp_path / 'conf' / 'zoo.cfg'}",
                                           f"Kept existing {tmp_path / 'data' / 'myid'}"]


def test_myid_written_even_when_the_config_exists(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "zoo.cfg").write_text("mine\n")
    written = envconfig.write_config({**env, "ZOO_MY_ID": "4"})
    assert not written.zoo_cfg_written and written.myid_written
    assert (tmp_path / "data" / "myid").read_text() == "4\n"


def test_conf_dir_lookup() -> None:
    assert envconfig.conf_dir({}) == Path("/conf")
    assert envconfig.conf_dir({"ZOOCFGDIR": "/etc/zk"}) == Path("/etc/zk")
    assert envconfig.conf_dir({"ZOOCFGDIR": "/etc/zk", "ZOO_CONF_DIR": "/c"}) == Path("/c")


def test_written_configs_load(env: dict[str, str], tmp_path: Path) -> None:
    envconfig.write_config(env)
    standalone = load_config(tmp_path / "conf" / "zoo.cfg")
    assert standalone.client_port == 2181 and standalone.my_id == 1
    other = tmp_path / "ensemble"
    ensemble_env = {"ZOO_CONF_DIR": str(other / "conf"), "ZOO_DATA_DIR": str(other / "data"),
                    "ZOO_DATA_LOG_DIR": str(other / "datalog"), "ZOO_MY_ID": "2",
                    "ZOO_SERVERS": "server.1=zoo1:2888:3888;2181 server.2=0.0.0.0:2888:3888;2181 "
                                   "server.3=zoo3:2888:3888;2181"}
    envconfig.write_config(ensemble_env)
    ensemble = load_config(other / "conf" / "zoo.cfg")
    assert ensemble.my_id == 2 and ensemble.client_port == 2181


def test_server_jvmflags_carry_the_images_log_settings() -> None:
    assert envconfig.server_jvmflags({}).split() == ["-Dzookeeper.log.appender=CONSOLE",
                                                     "-Dzookeeper.log.level=INFO"]
    assert envconfig.server_jvmflags({"SERVER_JVMFLAGS": "-Da=b", "ZOO_LOG_LEVEL": "DEBUG"}).split() == [
        "-Da=b", "-Dzookeeper.log.appender=CONSOLE", "-Dzookeeper.log.level=DEBUG"]


def test_entrypoint_writes_then_execs(env: dict[str, str], tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, list[str], dict[str, str]]] = []
    monkeypatch.setattr(envconfig.os, "execvpe", lambda file, args, environ: calls.append((file, args, environ)))
    assert envconfig.entrypoint(["zkServer", "start-foreground"], env) == 0
    assert (tmp_path / "conf" / "zoo.cfg").is_file()
    file, args, child_env = calls[0]
    assert (file, args) == ("zkServer", ["zkServer", "start-foreground"])
    assert child_env["ZOOCFGDIR"] == str(tmp_path / "conf")
    assert "-Dzookeeper.log.level=INFO" in child_env["SERVER_JVMFLAGS"]
    assert child_env["ZOO_LOG_DIR"] == "/logs"


def test_entrypoint_reports_a_missing_command(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert envconfig.entrypoint([sys.executable + "-does-not-exist"], env) == 127
    assert "cannot run" in capsys.readouterr().err


def test_entrypoint_help(env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert envconfig.entrypoint(["--help"], env) == 0
    assert capsys.readouterr().out.startswith("usage: pyzk-docker-entrypoint")
    assert not (tmp_path / "conf").exists()
