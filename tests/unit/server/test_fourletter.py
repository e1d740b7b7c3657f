"""Four-letter words, AdminServer commands and Prometheus gauges on an in-memory server (no sockets)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from pyzk.config import parse_config
from pyzk.pipeline.clientsession import ClientSession
from pyzk.pipeline.zkserver import ZooKeeperServer
from pyzk.server import admin, fourletter
from pyzk.server.fourletter import (
    MNTR_KEY_ORDER,
    QUORUM_ONLY_KEYS,
    java_double,
    monitor_values,
    run_four_letter_word,
)
from pyzk.tree.datatree import DataTree

# Apache 3.8.0's mntr order (captured live) for the first 26 keys, gauges included.
APACHE_MNTR_HEAD = [
    "version", "server_state", "ephemerals_count", "num_alive_connections", "avg_latency",
    "outstanding_requests", "znode_count", "global_sessions", "non_mtls_remote_conn_count",
    "last_client_response_size", "packets_sent", "packets_received", "max_client_response_size",
    "connection_drop_probability", "watch_count", "auth_failed_count", "min_latency",
    "max_file_descriptor_count", "approximate_data_size", "open_file_descriptor_count",
    "local_sessions", "uptime", "max_latency", "outstanding_tls_handshake",
    "min_client_response_size", "non_mtls_local_conn_count",
]


def make_server(tmp_path: Path, extra: str = "4lw.commands.whitelist=*\n") -> ZooKeeperServer:
    text = f"tickTime=2000\ndataDir={tmp_path}\nclientPort=2181\n{extra}"
    config = parse_config(text, config_path=tmp_path / "zoo.cfg")
    clock = iter(range(1000, 10**9, 10))
    return ZooKeeperServer(config, DataTree(), now_ms=lambda: next(clock), wall_ms=lambda: 1_700_000_000_000)


def add_connection(server: ZooKeeperServer, port: int, session_id: int = 0) -> ClientSession:
    conn = ClientSession("127.0.0.1", port, lambda body: None, lambda: None)
    conn.session_id = session_id
    conn.established = session_id != 0
    conn.timeout_ms = 10000
    server.all_connections.add(conn)
    return conn


@pytest.fixture
def server(tmp_path: Path) -> ZooKeeperServer:
    return make_server(tmp_path)


def test_java_double_rounds_half_up_to_four_places() -> None:
    assert java_double(0) == "0.0"
    assert java_double(20.16666) == "20.1667"
    assert java_double(1.5) == "1.5"
    assert java_double(0.00005) == "0.0001"


def test_whitelist_refusal_text(tmp_path: Path) -> None:
    server = make_server(tmp_path, extra="4lw.commands.whitelist=ruok\n")
    assert run_four_letter_word(server, "stat", b"") == "stat is not executed because it is not in the whitelist.\n"
    assert run_four_letter_word(server, "ruok", b"") == "imok"
    assert run_four_letter_word(server, "srvr", b"").startswith("Zookeeper version: 3.8.0")


def test_telnet_close_answers_nothing(server: ZooKeeperServer) -> None:
    assert run_four_letter_word(server, "\xff\xf4\xff\xfd", b"") == ""


def test_srvr_lines(server: ZooKeeperServer) -> None:
    server.stats.record_latency(3)
    server.stats.record_latency(4)
    lines = run_four_letter_word(server, "srvr", b"").splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "Zookeeper version", "Latency min/avg/max", "Received", "Sent", "Connections",
        "Outstanding", "Zxid", "Mode", "Node count"]
    assert lines[1] == "Latency min/avg/max: 3/3.5/4"
    assert lines[6:] == ["Zxid: 0x0", "Mode: standalone", "Node count: 5"]


def test_stat_has_one_blank_line_after_the_client_list(server: ZooKeeperServer) -> None:
    add_connection(server, 40000, session_id=0x100)
    add_connection(server, 40001)
    text = run_four_letter_word(server, "stat", b"")
    head, _, tail = text.partition("\n\n")
    assert head.splitlines()[1] == "Clients:"
    assert sorted(head.splitlines()[2:]) == [" /127.0.0.1:40000[1](queued=0,recved=0,sent=0)",
                                             " /127.0.0.1:40001[0](queued=0,recved=0,sent=0)"]
    assert tail.startswith("Latency min/avg/max:")


def test_cons_full_line_for_a_session(server: ZooKeeperServer) -> None:
    conn = add_connection(server, 40000, session_id=0x1000014b90b0000)
    conn.record_latency(1)
    conn.record_latency(2)
    conn.last_op, conn.last_cxid, conn.last_zxid = "GETC", 5, 3
    line = run_four_letter_word(server, "cons", b"").splitlines()[0]
    assert line.startswith(" /127.0.0.1:40000[1](queued=0,recved=0,sent=0,sid=0x1000014b90b0000,lop=GETC,est=")
    assert ",to=10000,lcxid=0x5,lzxid=0x3,lresp=" in line
    assert line.endswith(",llat=2,minlat=1,avglat=1,maxlat=2)")  # avglat: long division


def test_conf_keys_in_order(server: ZooKeeperServer, tmp_path: Path) -> None:
    keys = [line.split("=")[0] for line in run_four_letter_word(server, "conf", b"").splitlines()]
    assert keys == ["clientPort", "secureClientPort", "dataDir", "dataDirSize", "dataLogDir", "dataLogSize",
                    "tickTime", "maxClientCnxns", "minSessionTimeout", "maxSessionTimeout",
                    "clientPortListenBacklog", "serverId"]
    assert f"dataDir={tmp_path}/version-2\n" in run_four_letter_word(server, "conf", b"")


def test_no_newline_words(server: ZooKeeperServer) -> None:
    assert run_four_letter_word(server, "ruok", b"") == "imok"
    assert run_four_letter_word(server, "isro", b"") == "rw"
    assert run_four_letter_word(server, "gtmk", b"") == "306"


def test_stmk_needs_its_eight_bytes(server: ZooKeeperServer) -> None:
    assert run_four_letter_word(server, "stmk", b"\x00\x01") == ""
    assert server.trace_mask == 306
    assert run_four_letter_word(server, "stmk", struct.pack(">q", 0x1FF)) == "511"
    assert run_four_letter_word(server, "gtmk", b"") == "511"


def test_watch_words(server: ZooKeeperServer) -> None:
    conn = add_connection(server, 40000, session_id=0x55)
    server.watches.add_data_watch("/a", conn)
    server.watches.add_data_watch("/b", conn)
    server.watches.add_child_watch("/", conn)  # child watches are not in wchs/wchc/wchp
    assert run_four_letter_word(server, "wchs", b"") == "1 connections watching 2 paths\nTotal watches:2\n"
    assert run_four_letter_word(server, "wchc", b"") == "0x55\n\t/a\n\t/b\n\n"
    assert run_four_letter_word(server, "wchp", b"") == "/a\n\t0x55\n/b\n\t0x55\n\n"


def test_dump_shows_wall_clock_deadlines(server: ZooKeeperServer) -> None:
    server.sessions.add_session(0x77, 10000, server.now_ms())
    text = run_four_letter_word(server, "dump", b"")
    lines = text.splitlines()
    assert lines[:2] == ["SessionTracker dump:", "Session Sets (1)/(1):"]
    assert lines[2].startswith("1 expire at ") and lines[2].endswith(" 2023:")  # wall clock, not monotonic
    assert lines[3:] == ["\t0x77", "ephemeral nodes dump:", "Sessions with Ephemerals (0):",
                         "Connections dump:"]


def test_srst_and_crst(server: ZooKeeperServer) -> None:
    conn = add_connection(server, 40000, session_id=1)
    conn.packets_received = 9
    server.stats.packets_received = 9
    assert run_four_letter_word(server, "srst", b"") == "Server stats reset.\n"
    assert server.stats.packets_received == 0 and conn.packets_received == 9
    assert run_four_letter_word(server, "crst", b"") == "Connection stats reset.\n"
    assert conn.packets_received == 0


def test_not_serving(server: ZooKeeperServer) -> None:
    server.serving = False
    assert run_four_letter_word(server, "srvr", b"") == fourletter.NOT_SERVING
    assert run_four_letter_word(server, "ruok", b"") == "imok"
    assert run_four_letter_word(server, "isro", b"") == "null"


def test_mntr_keys_follow_apache_order(server: ZooKeeperServer) -> None:
    lines = run_four_letter_word(server, "mntr", b"").splitlines()
    keys = [line.split("\t")[0] for line in lines]
    assert all(line.count("\t") == 1 for line in lines)
    assert keys[:2] == ["zk_version", "zk_server_state"]
    reported = [k[3:] for k in keys]
    assert reported == [k for k in MNTR_KEY_ORDER if k not in QUORUM_ONLY_KEYS]
    head = [k for k in reported if k in APACHE_MNTR_HEAD]
    assert head == [k for k in APACHE_MNTR_HEAD if k in reported]
    values = dict(line.split("\t") for line in lines)
    assert values["zk_znode_count"] == "5" and values["zk_avg_latency"] == "0.0"


def test_mntr_values_are_measured(server: ZooKeeperServer) -> None:
    conn = add_connection(server, 40000, session_id=0x9)
    server.watches.add_data_watch("/x", conn)
    server.stats.record_latency(7)
    values = dict(monitor_values(server))
    assert values["num_alive_connections"] == 1
    assert values["watch_count"] == 1
    assert values["max_latency"] == 7 and values["min_latency"] == 7 and values["avg_latency"] == 7.0


# ---- AdminServer ---------------------------------------------------------------------------


def test_jackson_pretty_printing() -> None:
    assert admin.jackson_json({"command": "ruok", "error": None}) == '{\n  "command" : "ruok",\n  "error" : null\n}'
    nested = {"connections": [{"a": 1}], "secure_connections": [], "m": {}, "p": ["/a", "/b"], "f": 0.0}
    assert admin.jackson_json(nested) == (
        '{\n  "connections" : [ {\n    "a" : 1\n  } ],\n  "secure_connections" : [ ],\n'
        '  "m" : { },\n  "p" : [ "/a", "/b" ],\n  "f" : 0.0\n}')


def test_unknown_command_error(server: ZooKeeperServer) -> None:
    out = admin.run_command(server, "nosuch", {}, admin.AdminContext())
    assert list(out.items()) == [("command", "nosuch"), ("error", "Unknown command: nosuch")]


def test_aliases_answer_with_the_primary_name(server: ZooKeeperServer) -> None:
    for alias, primary in [("conf", "configuration"), ("config", "configuration"), ("mntr", "monitor"),
                           ("wchs", "watch_summary"), ("srvr", "server_stats"), ("envi", "environment")]:
        assert admin.run_command(server, alias, {}, admin.AdminContext())["command"] == primary


def test_error_in_data_keeps_its_place(server: ZooKeeperServer) -> None:
    out = admin.run_command(server, "leader", {}, admin.AdminContext())
    assert list(out) == ["error", "command"] and out["error"] == "server is not initialized"
    out = admin.run_command(server, "stmk", {"traceMask": "x"}, admin.AdminContext())
    assert out["error"] == "setTraceMask requires long traceMask argument, got x"
    out = admin.run_command(server, "stmk", {"traceMask": "12"}, admin.AdminContext())
    assert out == {"tracemask": 12, "command": "set_trace_mask", "error": None} and server.trace_mask == 12


def test_configuration_fields(server: ZooKeeperServer) -> None:
    out = admin.run_command(server, "configuration", {}, admin.AdminContext())
    assert list(out) == ["client_port", "data_dir", "data_log_dir", "tick_time", "max_client_cnxns",
                         "min_session_timeout", "max_session_timeout", "server_id",
                         "client_port_listen_backlog", "command", "error"]


def test_handler_listing_and_404(server: ZooKeeperServer) -> None:
    handle = admin.admin_handler(server, admin.AdminContext("tickTime=2000\n"))
    listing = handle("/commands", {}).body.decode()
    assert listing.startswith('<a href="/commands/configuration">configuration</a>\n<br/>\n')
    assert handle("/other", {}).status == 404
    reply = handle("/commands/icfg", {})
    assert reply.headers["Content-Type"] == "application/json"
    assert json.loads(reply.body)["initial_configuration"] == "tickTime=2000\n"


# ---- Prometheus ----------------------------------------------------------------------------


def test_prometheus_gauges_parse(server: ZooKeeperServer) -> None:
    pytest.importorskip("prometheus_client")
    from prometheus_client.parser import text_string_to_metric_families

    from pyzk.server.metrics import scrape

    text = scrape(server, None).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in ("znode_count", "watch_count", "avg_latency", "packets_received", "num_alive_connections",
                 "outstanding_requests", "global_sessions", "ephemerals_count", "approximate_data_size"):
        assert families[name].type == "gauge"
    assert families["znode_count"].samples[0].value == 5.0
    for name in ("commit_count", "looking_count", "snap_count", "throttled_ops"):
        assert families[name].type == "counter"
    for name in ("fsynctime", "snapshottime", "election_time", "dbinittime", "follower_sync_time"):
        assert families[name].type == "summary"


def test_prometheus_text_is_simpleclient_0_9s(server: ZooKeeperServer) -> None:
    """Counters under their bare name (no _total), BASIC summaries with quantile 0.5 and Java
    doubles, as Apache's PrometheusMetricsProvider writes them."""
    from pyzk.server.metrics import exposition, java_double

    server.stats.metrics.fsynctime.add(3)
    server.stats.metrics.fsynctime.add(5)
    server.stats.metrics.fsynctime.add(4)
    server.stats.metrics.commit_count += 2
    text = exposition(server)
    assert "# HELP commit_count commit_count\n# TYPE commit_count counter\ncommit_count 2.0\n" in text
    assert "_total" not in text
    assert ("# TYPE fsynctime summary\nfsynctime{quantile=\"0.5\",} 4.0\nfsynctime_count 3.0\n"
            "fsynctime_sum 12.0\n") in text
    assert 'snapshottime{quantile="0.5",} NaN\n' in text
    assert "# TYPE znode_count gauge\nznode_count 5.0\n" in text
    assert [java_double(v) for v in (0.0, 1e7, 123456.5, 1.5e-4, -2e10, float("inf"))] == [
        "0.0", "1.0E7", "123456.5", "1.5E-4", "-2.0E10", "+Inf"]


def test_mntr_reports_the_summaries_after_the_counters_in_apaches_order(server: ZooKeeperServer) -> None:
    server.stats.metrics.snapshottime.add(7)
    keys = [line.split("\t")[0] for line in run_four_letter_word(server, "mntr", b"").splitlines()]
    summaries = keys[keys.index("zk_tls_handshake_exceeded") + 1:]
    assert summaries[:5] == ["zk_avg_startup_txns_load_time", "zk_min_startup_txns_load_time",
                             "zk_max_startup_txns_load_time", "zk_cnt_startup_txns_load_time",
                             "zk_sum_startup_txns_load_time"]
    assert [k[7:] for k in summaries if k.startswith("zk_avg_")] == [
        "startup_txns_load_time", "follower_sync_time", "fsynctime", "snapshottime", "startup_txns_loaded",
        "dbinittime", "election_time", "observer_sync_time", "startup_snap_load_time"]
    assert "zk_cnt_snapshottime\t1" in run_four_letter_word(server, "mntr", b"")
    assert "zk_avg_snapshottime\t7.0" in run_four_letter_word(server, "mntr", b"")


# ---- an ensemble member's view: conf's membership block, AdminServer leader / voting_view --

def _as_member(server: ZooKeeperServer, my_id: int, leader_id: int) -> None:
    from pyzk.quorum.verifier import QuorumMaj

    active = QuorumMaj(
        {1: "127.0.0.1:2888:3888:participant;0.0.0.0:2181", 2: "[::1]:2889:3889:participant"},
        {3: "127.0.0.1:2890:3890:observer;127.0.0.1:2183"}, version=0x100000000)
    server.quorum_view = lambda: {"my_id": my_id, "leader_id": leader_id,
                                  "is_leader": my_id == leader_id, "active": active, "zabstate": "broadcast"}


def test_member_parses_the_active_configs_server_lines(server: ZooKeeperServer) -> None:
    _as_member(server, 1, 2)
    active = server.quorum_view()["active"]
    two, three = fourletter.member(active, 2), fourletter.member(active, 3)
    assert (two.host, two.quorum_port, two.election_port, two.role, two.client_port) == (
        "::1", 2889, 3889, "participant", None)
    assert (three.role, three.client_host, three.client_port) == ("observer", "127.0.0.1", 2183)
    assert fourletter.member(active, 9) is None


def test_conf_of_a_member_ends_with_the_membership_block(server: ZooKeeperServer) -> None:
    _as_member(server, 3, 1)
    lines = run_four_letter_word(server, "conf", b"").splitlines()
    at = lines.index("membership: ")
    assert lines[at - 3:at] == ["electionPort=3890", "quorumPort=2890", "peerType=1"]
    assert lines[at + 1:] == ["server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181",
                              "server.2=[::1]:2889:3889:participant",
                              "server.3=127.0.0.1:2890:3890:observer;127.0.0.1:2183", "version=100000000"]


def test_admin_leader_and_voting_view_of_a_member(server: ZooKeeperServer) -> None:
    def run(name: str) -> dict:
        out = admin.run_command(server, name, {}, admin.AdminContext())
        return {k: v for k, v in out.items() if k not in ("command", "error")} | (
            {"error": out["error"]} if out.get("error") else {})

    assert run("leader")["error"] == "server is not initialized"
    _as_member(server, 2, 1)
    assert run("leader") == {"is_leader": False, "leader_id": 1, "leader_ip": "127.0.0.1"}
    view = run("voting_view")["current_config"]
    assert sorted(view) == ["1", "2"]  # voters only
    assert view["1"] == {"server_addresses": ["127.0.0.1:2888"], "election_addresses": ["127.0.0.1:3888"],
                         "client_address": "0.0.0.0:2181", "learner_type": "participant"}
    assert view["2"]["client_address"] == "0.0.0.0:2181"  # my own: the port I listen on


def test_admin_last_snapshot_is_the_newest_valid_one(server: ZooKeeperServer, tmp_path: Path) -> None:
    def run() -> dict:
        out = admin.run_command(server, "last_snapshot", {}, admin.AdminContext())
        return {"zxid": out["zxid"], "timestamp": out["timestamp"]}

    assert run() == {"zxid": "ffffffffffffffff", "timestamp": -1}  # none yet, as Apache's null info
    from pyzk.storage.files import LocalDisk
    from pyzk.storage.snapshot_format import serialize_snapshot

    disk = LocalDisk(tmp_path)
    disk.write_snapshot(0x100000005, [serialize_snapshot(server.tree, digest_enabled=True)])
    (disk.snap_dir / "snapshot.200000001").write_bytes(b"torn")  # newer, fails the check
    out = run()
    assert out["zxid"] == "100000005"
    assert abs(out["timestamp"] - int((disk.snap_dir / "snapshot.100000005").stat().st_mtime)) <= 1


def test_admin_zabstate_of_standalone_and_members(server: ZooKeeperServer) -> None:
    def run() -> dict:
        out = admin.run_command(server, "zabstate", {}, admin.AdminContext())
        return {k: v for k, v in out.items() if k not in ("command", "error")}

    assert run() == {"voting": False, "zabstate": ""}
    server.tree.last_processed_zxid = 0x300000007
    _as_member(server, 3, 1)  # an observer
    out = run()
    assert (out["myid"], out["is_leader"], out["voting"], out["zabstate"]) == (3, False, False, "broadcast")
    assert (out["last_zxid"], out["zab_epoch"], out["zab_counter"]) == ("0x300000007", 3, 7)
    assert out["quorum_address"]["all_addresses"] == ["127.0.0.1:2890"]
    assert out["election_address"]["wildcard_addresses"] == ["0.0.0.0:3890"]
    _as_member(server, 2, 2)  # the leader, on an IPv6 literal
    out = run()
    assert (out["is_leader"], out["voting"], out["quorum_address"]["one"]) == (True, True, "[0:0:0:0:0:0:0:1]:2889")
