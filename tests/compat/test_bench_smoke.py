"""Smoke run of the bench load generator against each target: a short bounded load whose
every reply is verified (xid order, err code, exact length, multi results, watch events)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.loadgen import LoadSpec, run_load
from bench.workloads import WORKLOADS
from tests.compat.targets import Ensemble


def test_get_load_is_verified_and_measured(target: Ensemble) -> None:
    result = run_load(
        LoadSpec(hosts=target.hosts, workload="get", connections=4, outstanding=8,
                 duration_s=2.0, warmup_s=0.2)
    )
    assert result.replies_verified >= result.ops > 0, target.kind
    assert result.ops_per_s > 0, target.kind
    assert 0 < result.p50_us <= result.p99_us <= result.p999_us, target.kind


# The ids carry "workload=": the matrix strips the target's id from a test id, and a bare
# "mixed" would go with the mixed target's.
@pytest.mark.parametrize("workload", sorted(set(WORKLOADS) - {"get"}), ids=lambda name: f"workload={name}")
def test_every_workload_runs_verified(target: Ensemble, workload: str) -> None:
    result = run_load(
        LoadSpec(hosts=target.hosts, workload=workload, connections=2, outstanding=4,
                 processes=2, duration_s=0.5, warmup_s=0.1)
    )
    assert result.ops > 0, (target.kind, workload)
    if workload == "exists_watch":
        assert result.notifications > 0, target.kind
    if workload == "ephemeral_session":
        assert result.sessions_opened >= result.ops, target.kind


def test_failover_and_soak_measure_a_leader_kill(target: Ensemble, tmp_path: Path) -> None:
    """bench.failover (1 leader kill) and bench.soak (a few hundred writes, 1 checkpoint) on
    their own 3-server ensemble of the target's kind: the write after the kill, the rejoin,
    the kazoo session across it, and the soak's files, RSS and report all come out."""
    from bench import failover, servers, soak
    from tests.compat.conftest import target_size_from_env

    if target.kind not in servers.TARGETS:
        pytest.skip(f"the bench runs apache and pyzk ensembles, not {target.kind}")
    if target_size_from_env() != 1:
        pytest.skip("the bench starts its own ensembles: run once, at PYZK_TARGET_SIZE=1")
    entry = failover.run_target(target.kind, failover.parse_args(["--kills", "1", "--pause", "0"]))
    assert entry.get("error") is None, entry.get("error")
    assert entry["failed_to_recover"] == 0, entry["kills"]
    assert entry["failover"]["count"] == entry["rejoin"]["count"] == 1, entry
    assert entry["session"]["expirations"] == 0 and entry["session"]["same_session"], entry["session"]
    assert entry["zoo_cfg"]["tickTime"] == "2000", entry["zoo_cfg"]

    args = soak.parse_args(["--writes", "400", "--keys", "20", "--checkpoints", "1", "--out", str(tmp_path)])
    soaked = soak.run_target(target.kind, args)
    assert soaked.get("error") is None and not soaked.get("stopped_early"), soaked
    (checkpoint,) = soaked["checkpoints"]
    assert checkpoint["writes_done"] == 400 and checkpoint["interval"]["complete"], checkpoint["interval"]
    assert checkpoint["failover"]["recovered"], checkpoint["failover"]
    assert all(m["rss_kib"] and m["log"]["count"] >= 1 for m in checkpoint["members"]), checkpoint["members"]
    result = {"stamp": "smoke", "machine": "-", "config": "-", "args": vars(args), "targets": [soaked]}
    assert "| 400 |" in soak.markdown(result)
