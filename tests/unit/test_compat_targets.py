"""The pure parts of the target layer: zoo.cfg text, command lines, the java shim's parsing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.compat.shim_args import ServerLaunch, parse_java_args, real_java
from tests.compat.targets import (
    APACHE_MAIN_CLASS,
    Server,
    plan_servers,
    pyzk_command,
    sysprop_args,
    zoo_cfg_text,
)


def _server(server_id: int, base_port: int) -> Server:
    return Server(
        kind="pyzk",
        server_id=server_id,
        client_port=base_port,
        quorum_port=base_port + 1,
        election_port=base_port + 2,
        admin_port=base_port + 3,
        server_dir=Path(f"/w/s{server_id}"),
        sysprop_flags=[],
    )


def _cfg(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


def test_standalone_cfg_has_the_defaults_and_no_server_lines() -> None:
    server = _server(1, 4000)
    cfg = _cfg(zoo_cfg_text(server, [server], {}))
    assert cfg["clientPort"] == "4000" and cfg["clientPortAddress"] == "127.0.0.1"
    assert cfg["dataDir"] == "/w/s1/data" and cfg["4lw.commands.whitelist"] == "*"
    assert cfg["admin.enableServer"] == "false" and cfg["tickTime"] == "2000"
    assert not any(key.startswith("server.") for key in cfg)


def test_ensemble_cfg_lists_every_server_and_extra_cfg_overrides_or_removes() -> None:
    servers = [_server(1, 4000), _server(2, 5000), _server(3, 6000)]
    text = zoo_cfg_text(
        servers[1], servers, {"admin.enableServer": "true", "syncLimit": None}
    )
    cfg = _cfg(text)
    assert cfg["server.3"] == "127.0.0.1:6001:6002"
    assert cfg["clientPort"] == "5000" and cfg["admin.enableServer"] == "true"
    assert "syncLimit" not in cfg


def test_plan_servers_gives_each_server_its_kind_ports_and_directory() -> None:
    servers = plan_servers(
        ["apache", "pyzk", "apache"], list(range(7000, 7012)), ["-Da=b"], Path("/w"),
        ["server1", "server2", "server3"],
    )
    assert [s.kind for s in servers] == ["apache", "pyzk", "apache"]
    assert [s.server_id for s in servers] == [1, 2, 3]
    second = servers[1]
    assert (second.client_port, second.quorum_port, second.election_port, second.admin_port) == (
        7004, 7005, 7006, 7007)
    assert second.data_dir == Path("/w/server2/data") and second.sysprop_flags == ["-Da=b"]
    assert second.command()[1].endswith("bin/zkServer.py")
    assert servers[0].command()[-1] == "/w/server1/zoo.cfg"
    assert APACHE_MAIN_CLASS in servers[0].command()


def test_plan_servers_rejects_unknown_kinds_and_short_port_lists() -> None:
    with pytest.raises(ValueError, match="unknown target kind"):
        plan_servers(["apache", "zk"], list(range(8)), [], Path("/w"), ["a", "b"])
    with pytest.raises(ValueError, match="four ports"):
        plan_servers(["apache", "pyzk"], list(range(7)), [], Path("/w"), ["a", "b"])


def test_pyzk_command_is_start_foreground_with_sysprops_before_the_config() -> None:
    flags = sysprop_args(
        {"readonlymode.enabled": "true", "zookeeper.extendedTypesEnabled": "true"}
    )
    command = pyzk_command(Path("/w/zoo.cfg"), flags)
    assert command[1].endswith("bin/zkServer.py")
    assert command[2:] == [
        "start-foreground",
        "-Dreadonlymode.enabled=true",
        "-Dzookeeper.extendedTypesEnabled=true",
        "/w/zoo.cfg",
    ]


def test_shim_reads_kazoo_harness_command_line() -> None:
    argv = [
        "-cp",
        "/a.jar:/b.jar",
        "-Dfile.encoding=UTF-8",
        "-Dreadonlymode.enabled=true",
        "-Xmx1g",
        "-Dzookeeper.DigestAuthenticationProvider.superDigest=super:x=",
        APACHE_MAIN_CLASS,
        "/tmp/w/zoo.cfg",
    ]
    assert parse_java_args(argv) == ServerLaunch(
        Path("/tmp/w/zoo.cfg"),
        [
            "-Dfile.encoding=UTF-8",
            "-Dreadonlymode.enabled=true",
            "-Dzookeeper.DigestAuthenticationProvider.superDigest=super:x=",
        ],
    )


def test_shim_passes_other_java_calls_through() -> None:
    assert parse_java_args(["-version"]) is None
    assert (
        parse_java_args(
            ["-cp", "x", "org.apache.zookeeper.ZooKeeperMain", "-server", "h"]
        )
        is None
    )
    assert parse_java_args(["-cp", "x", APACHE_MAIN_CLASS]) is None


def test_real_java_skips_the_shim_directory(tmp_path: Path) -> None:
    shim_dir, real_dir = tmp_path / "shim", tmp_path / "jdk"
    for directory in (shim_dir, real_dir):
        directory.mkdir()
        (directory / "java").write_text("#!/bin/sh\n")
        (directory / "java").chmod(0o755)
    path_env = os.pathsep.join(
        [str(shim_dir), str(tmp_path / "missing"), str(real_dir)]
    )
    assert real_java(path_env, shim_dir) == str(real_dir / "java")
