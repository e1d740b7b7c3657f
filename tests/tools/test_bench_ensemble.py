"""The ensemble bench's pure parts: member configs and ports, srvr modes, round-robin
connection placement, CPU per op over the members, cases, medians, ratios and the report."""

import argparse
from pathlib import Path

import pytest

from bench import ensemble, ensemble_report, servers
from bench.engine import parse_host_list, parse_hosts, round_robin
from bench.loadgen import created_path
from bench.workloads import setup_requests


def test_plan_peers_gives_each_member_three_distinct_ports() -> None:
    peers = servers.plan_peers(3, list(range(5000, 5009)))
    assert [p.server_id for p in peers] == [1, 2, 3]
    assert peers[1] == servers.Peer(2, 5003, 5004, 5005)
    with pytest.raises(ValueError):
        servers.plan_peers(3, [5000] * 9)
    with pytest.raises(ValueError):
        servers.plan_peers(3, list(range(5000, 5008)))


def test_free_ports_are_distinct() -> None:
    ports = servers.free_ports(9)
    assert len(set(ports)) == 9


def test_member_cfg_has_the_standalone_lines_and_the_quorum_lines() -> None:
    peers = servers.plan_peers(3, list(range(5000, 5009)))
    text = servers.ensemble_cfg_text(Path("/var/tmp/x/member2/data"), peers[1], peers)
    entries = dict(line.split("=", 1) for line in text.splitlines())
    assert entries["tickTime"] == "2000"
    assert entries["initLimit"] == "10"
    assert entries["syncLimit"] == "5"
    assert entries["forceSync"] == "yes"
    assert entries["dataDir"] == "/var/tmp/x/member2/data"
    assert entries["clientPort"] == "5003"
    assert entries["clientPortAddress"] == "127.0.0.1"
    assert entries["maxClientCnxns"] == "0"
    assert entries["admin.enableServer"] == "false"
    assert "srvr" in entries["4lw.commands.whitelist"]
    assert entries["server.1"] == "127.0.0.1:5001:5002"
    assert entries["server.2"] == "127.0.0.1:5004:5005"
    assert entries["server.3"] == "127.0.0.1:5007:5008"
    assert text.endswith("\n")


def test_srvr_mode_parsing_and_quorum_shape() -> None:
    assert servers.parse_mode("Zookeeper version: 3.8.0\nZxid: 0x1\nMode: follower\nNode count: 5\n") == "follower"
    assert servers.parse_mode("This ZooKeeper instance is not currently serving requests\n") is None
    assert servers.quorum_formed(["follower", "leader", "follower"])
    assert servers.leader_index(["follower", "leader", "follower"]) == 1
    assert not servers.quorum_formed(["follower", None, "leader"])
    assert not servers.quorum_formed(["leader", "leader", "follower"])
    assert servers.leader_index(["leader", "leader", "follower"]) is None
    assert not servers.quorum_formed(["standalone"] * 3)


def test_connections_are_spread_round_robin_across_processes() -> None:
    hosts = parse_host_list("127.0.0.1:1,127.0.0.1:2, 127.0.0.1:3")
    assert hosts == [("127.0.0.1", 1), ("127.0.0.1", 2), ("127.0.0.1", 3)]
    assert parse_hosts("127.0.0.1:1,127.0.0.1:2") == ("127.0.0.1", 1)
    # 8 connections in two processes of 5 and 3: the global numbering continues
    placed = round_robin(hosts, 0, 5) + round_robin(hosts, 5, 3)
    assert [port for _h, port in placed] == [1, 2, 3, 1, 2, 3, 1, 2]
    assert round_robin([("h", 9)], 3, 2) == [("h", 9), ("h", 9)]


def test_created_path_reads_the_create_record() -> None:
    requests = setup_requests(True)
    assert created_path(requests[0]) == "/bench"
    assert created_path(requests[-1]) == "/bench/keys/k0999"


def test_member_cpu_figures() -> None:
    assert ensemble_report.member_cpu_figures((3.0, 4.5, 10.0), 2) == (17.5, 10.0)
    assert ensemble_report.member_cpu_figures((3.0, None, 10.0), 0) == (None, 3.0)
    assert ensemble_report.member_cpu_figures((3.0, 4.0, 5.0), None) == (12.0, None)
    assert ensemble_report.member_cpu_figures((), None) == (None, None)


def test_cases_and_quick_profile() -> None:
    cases = ensemble.build_cases(24, 32, [1000, 5000, 10000])
    assert [c.name for c in cases] == [
        "get",
        "set",
        "create_delete",
        "mixed",
        "set_at_rate_1000",
        "set_at_rate_5000",
        "set_at_rate_10000",
    ]
    assert cases[-1].rate_ops_s == 10000 and cases[-1].workload == "set" and cases[-1].shape == "24x32 @10,000/s"
    assert [c.name for c in ensemble.build_cases(4, 4, [1000], wanted={"get", "set_at_rate_1000"})] == [
        "get",
        "set_at_rate_1000",
    ]
    quick = argparse.Namespace(quick=True, rounds=None, duration=5.0, warmup=None, round_warmup=None)
    ensemble.resolve_profile(quick)
    assert (quick.rounds, quick.duration, quick.warmup, quick.round_warmup) == (1, 5.0, 1.0, 8.0)
    full = argparse.Namespace(quick=False, rounds=None, duration=None, warmup=None, round_warmup=None)
    ensemble.resolve_profile(full)
    assert (full.rounds, full.duration, full.warmup, full.round_warmup) == (2, 10.0, 2.0, 20.0)
    assert ensemble.parse_rates("1000, 5000") == [1000.0, 5000.0]
    with pytest.raises(ValueError):
        ensemble.parse_rates("0")


def _run(target: str, round_index: int, ops: float, p99: int, cpu: float | None, error: str | None = None) -> dict:
    return {
        "target": target,
        "round": round_index,
        "case": "get",
        "ops_per_s": ops,
        "p50_us": p99 // 2,
        "p99_us": p99,
        "p999_us": p99 * 2,
        "server_cpu_us_per_op": cpu,
        "leader_cpu_us_per_op": None if cpu is None else cpu / 3,
        "error": error,
    }


def test_medians_ratios_and_markdown() -> None:
    runs = [
        _run("apache", 0, 100.0, 1000, 30.0),
        _run("pyzk", 0, 150.0, 500, None),
        _run("apache", 1, 120.0, 2000, 36.0),
        _run("pyzk", 1, 170.0, 700, 12.0),
        _run("pyzk", 2, 1.0, 1, 1.0, error="VerificationError: boom"),
    ]
    table = ensemble_report.medians(runs)
    assert table["get"]["apache"]["ops_per_s"] == 110.0
    assert table["get"]["pyzk"]["ops_per_s"] == 160.0
    assert table["get"]["pyzk"]["server_cpu_us_per_op"] == 12.0  # the None is left out
    assert table["get"]["pyzk"]["rounds"] == 2  # the failed run is not a number
    ratio = ensemble_report.ratios(table)
    assert ratio["get"]["ops_per_s"] == round(160 / 110, 3)
    assert ratio["get"]["server_cpu_us_per_op"] == round(12 / 33, 3)
    cases = ensemble.build_cases(24, 32, [], wanted={"get"})
    result = {
        "stamp": "s",
        "machine": "m",
        "config": "c",
        "targets": {"apache": {"summary": "up"}, "pyzk": {"summary": "up"}},
        "rounds": [
            {
                "target": "apache",
                "round": 0,
                "startup_s": 1.5,
                "leader": "member 2",
                "load_start": [0.5, 0.4, 0.3],
                "load_end": [1.0, 0.5, 0.3],
                "rss_kib_after_round": [1024, 2048, None],
            }
        ],
        "runs": runs,
        "medians": table,
        "ratios": ratio,
    }
    text = ensemble_report.markdown(result, cases)
    assert "| get | 24x32 | 110 | 750 / 1,500 | 33.0 / 11.0 | 160 |" in text
    assert "| 0.40 | 0.36 |" in text  # p99 ratio, CPU/op ratio
    assert "| apache | 0 | 1.5 | member 2 | 0.50 0.40 0.30 | 1.00 0.50 0.30 | 1 / 2 / ? |" in text
    assert "pyzk round 2 get: VerificationError: boom" in text
