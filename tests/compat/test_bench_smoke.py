"""Smoke run of the bench load generator against each target: a short bounded load whose
every reply is verified (xid order, err code, exact length, multi results, watch events)."""

from __future__ import annotations

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


@pytest.mark.parametrize("workload", sorted(set(WORKLOADS) - {"get"}))
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
