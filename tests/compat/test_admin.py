"""AdminServer: pyzk's JSON commands against Apache ZooKeeper 3.8's, and Prometheus metrics.

Rule 1: both targets run the four-letter-word scenario with the AdminServer enabled; every
        command (and alias) is fetched over HTTP and the replies' key paths are compared, in
        order. Keys pyzk does not measure are listed in PYZK_UNMEASURED and must be the only
        difference.
Rule 2: Debian's zookeeper.jar manifest lacks the servlet API jar the AdminServer needs; it
        is added to Apache's class path for this module only.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.compat import targets
from tests.compat.conftest import server_kinds_from_env, target_kinds_from_env
from tests.compat.targets import (
    LOOPBACK,
    TARGET_KINDS,
    free_loopback_ports,
    start_target,
)
from tests.compat.test_fourletter import scenario

SERVLET_API_JAR = "/usr/share/java/servlet-api.jar"
COMMANDS = (
    "connection_stat_reset", "configuration", "connections", "dirs", "dump", "environment",
    "hash", "get_trace_mask", "initial_configuration", "is_read_only", "last_snapshot", "leader", "monitor",
    "observer_connection_stat_reset", "ruok", "set_trace_mask", "server_stats", "stats",
    "stat_reset", "observers", "system_properties", "voting_view", "watches",
    "watches_by_path", "watch_summary", "zabstate", "nosuch", "conf", "mntr", "wchs",
)
# Key paths Apache reports and pyzk does not measure (yet); see the fourletter/admin docs.
PYZK_UNMEASURED = {
    "server_stats": {"server_stats.client_response_stats",
                     "server_stats.client_response_stats.last_buffer_size",
                     "server_stats.client_response_stats.min_buffer_size",
                     "server_stats.client_response_stats.max_buffer_size",
                     "client_response",
                     "client_response.last_buffer_size", "client_response.min_buffer_size",
                     "client_response.max_buffer_size"},
}
PYZK_UNMEASURED["stats"] = PYZK_UNMEASURED["server_stats"]
# monitor: the mntr keys pyzk measures; system_properties: no JVM, so no JVM-only properties.
SUBSET_COMMANDS = {"monitor", "mntr", "system_properties"}
BEAN_COMMANDS = {"server_stats", "stats"}
# -D flags targets.py gives the Apache JVM for its logging.
APACHE_LAUNCH_PROPERTIES = ("zookeeper.log.dir", "zookeeper.root.logger")
PYZK_MISSING_COMMANDS: set[str] = set()  # every Apache 3.8 command is offered


def http_get(port: int, path: str) -> tuple[int, dict[str, str], str]:
    try:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}{path}", timeout=10) as reply:
            return reply.status, dict(reply.headers), reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def key_paths(value: Any, prefix: str = "") -> list[str]:
    """Key paths in order; maps keyed by ids, paths or times count as one `*` key."""
    out: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            name = "*" if re.fullmatch(r"\d+|/.*", key) else key
            path = prefix + name
            if path not in out:
                out.append(path)
            out += [p for p in key_paths(item, path + ".") if p not in out]
    elif isinstance(value, list) and value and isinstance(value[0], dict):
        out += key_paths(value[0], prefix + "[].")
    return out


def collect(kind: str, workdir: Path) -> dict[str, Any]:
    admin_port, metrics_port = free_loopback_ports(2)
    extra: dict[str, str | None] = {"admin.enableServer": "true", "admin.serverAddress": LOOPBACK,
                                    "admin.serverPort": str(admin_port)}
    if kind == "pyzk":
        extra |= {"metricsProvider.className":
                  "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider",
                  "metricsProvider.httpHost": LOOPBACK, "metricsProvider.httpPort": str(metrics_port)}
    ensemble = start_target(kind, extra_cfg=extra, workdir=workdir)
    try:
        client = scenario(ensemble)
        try:
            out: dict[str, Any] = {"listing": http_get(admin_port, "/commands")}
            for name in COMMANDS:
                out[name] = http_get(admin_port, f"/commands/{name}")
            out["set_trace_mask?traceMask=511"] = http_get(admin_port, "/commands/stmk?traceMask=511")
            out["not-a-command-url"] = http_get(admin_port, "/elsewhere")
            if kind == "pyzk":
                out["metrics"] = http_get(metrics_port, "/metrics")
            return out
        finally:
            client.stop()
            client.close()
    finally:
        ensemble.stop()


@pytest.fixture(scope="module")
def replies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    if not set(TARGET_KINDS) <= set(target_kinds_from_env()):
        pytest.skip("the AdminServer comparison needs both targets")
    yield collect_with_admin_server(collect, tmp_path_factory, "admin")


def collect_with_admin_server(collect: Callable[[str, Path], Any], tmp_path_factory: pytest.TempPathFactory,
                              prefix: str) -> dict[str, Any]:
    """`collect(kind, workdir)` for each kind, with Apache's AdminServer able to start (Debian
    ships the servlet API apart from ZooKeeper's jars)."""
    saved = targets.APACHE_CLASSPATH
    targets.APACHE_CLASSPATH = saved + ":" + SERVLET_API_JAR
    try:
        return {kind: collect(kind, tmp_path_factory.mktemp(f"{prefix}-{kind}")) for kind in TARGET_KINDS}
    finally:
        targets.APACHE_CLASSPATH = saved


@pytest.mark.parametrize("name", COMMANDS + ("set_trace_mask?traceMask=511",))
def test_command_keys_match_apache(replies: dict[str, dict[str, Any]], name: str) -> None:
    apache_status, apache_headers, apache_body = replies["apache"][name]
    status, headers, body = replies["pyzk"][name]
    assert (status, headers.get("Content-Type")) == (apache_status, apache_headers.get("Content-Type"))
    apache_keys = key_paths(json.loads(apache_body))
    pyzk_keys = key_paths(json.loads(body))
    if name in SUBSET_COMMANDS:
        # pyzk reports a subset (what it measures; no JVM properties) in Apache's order.
        assert pyzk_keys == [k for k in apache_keys if k in set(pyzk_keys)]
        assert {"command", "error"} < set(pyzk_keys)
        if name == "system_properties":
            launch_flags = set(APACHE_LAUNCH_PROPERTIES)
            assert ({k for k in pyzk_keys if k.startswith("zookeeper.")}
                    == {k for k in apache_keys if k.startswith("zookeeper.")} - launch_flags)
        return
    unmeasured = PYZK_UNMEASURED.get(name, set())
    expected = [k for k in apache_keys if k not in unmeasured]
    if name in BEAN_COMMANDS:
        # Jackson orders a bean's properties by reflection, which varies between JVM runs.
        assert sorted(pyzk_keys) == sorted(expected)
    else:
        assert pyzk_keys == expected
    if name in ("nosuch", "leader", "ruok", "watch_summary", "configuration"):
        apache_json, pyzk_json = json.loads(apache_body), json.loads(body)
        for volatile in ("client_port", "data_dir", "data_log_dir"):
            apache_json.pop(volatile, None)
            pyzk_json.pop(volatile, None)
        assert pyzk_json == apache_json


def test_unknown_command_error_is_apaches(replies: dict[str, dict[str, Any]]) -> None:
    assert replies["pyzk"]["nosuch"][2] == replies["apache"]["nosuch"][2] == (
        '{\n  "command" : "nosuch",\n  "error" : "Unknown command: nosuch"\n}')


def test_command_listing_matches_apache(replies: dict[str, dict[str, Any]]) -> None:
    apache_lines = replies["apache"]["listing"][2].splitlines()
    missing = {f'<a href="/commands/{name}">{name}</a>' for name in PYZK_MISSING_COMMANDS}
    expected = [line for i, line in enumerate(apache_lines)
                if line not in missing and not (i > 0 and apache_lines[i - 1] in missing)]
    assert replies["pyzk"]["listing"][2].splitlines() == expected


def test_other_paths_are_not_found(replies: dict[str, dict[str, Any]]) -> None:
    assert replies["pyzk"]["not-a-command-url"][0] == replies["apache"]["not-a-command-url"][0] == 404


def test_prometheus_scrape_parses_with_expected_names(replies: dict[str, dict[str, Any]]) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    status, headers, body = replies["pyzk"]["metrics"]
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    families = {family.name: family for family in text_string_to_metric_families(body)}
    for name in ("znode_count", "watch_count", "ephemerals_count", "approximate_data_size",
                 "avg_latency", "min_latency", "max_latency", "packets_received", "packets_sent",
                 "num_alive_connections", "outstanding_requests", "global_sessions", "uptime",
                 "open_file_descriptor_count", "process_cpu_seconds"):
        assert name in families, name
    assert families["znode_count"].samples[0].value == 7.0  # the scenario's two nodes
    assert families["ephemerals_count"].samples[0].value == 1.0


def test_admin_port_in_use_stops_start_up(tmp_path: Path) -> None:
    # ZooKeeperServerMain exits when the AdminServer cannot start; pyzk too.
    import socket

    with socket.socket() as busy:
        busy.bind((LOOPBACK, 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        for kind in server_kinds_from_env():
            if kind == "apache":
                continue  # Debian's class path lacks servlet-api: Apache skips its AdminServer
            with pytest.raises(targets.TargetStartError, match="AdminServer"):
                start_target(kind, extra_cfg={"admin.enableServer": "true", "admin.serverAddress": LOOPBACK,
                                              "admin.serverPort": str(port)},
                             workdir=tmp_path / kind, start_timeout_s=15)
