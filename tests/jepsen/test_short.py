"""A short seeded Jepsen-shaped run per target (PYZK_TARGETS, default "apache,pyzk").

PYZK_JEPSEN_SEED (default 1) and PYZK_JEPSEN_DURATION (default 30 s) choose the run; a failure
names the anomalies and where the member logs were kept (tests/jepsen/report/).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest

from tests.compat.targets import APACHE_JAR, TARGET_KINDS
from tests.jepsen.nemesis import FAULTS
from tests.jepsen.run import REPORT_DIR, run_seed
from tests.jepsen.workloads import WorkloadConfig, quiet_kazoo


def _kinds() -> list[str]:
    kinds = [k.strip() for k in os.environ.get("PYZK_TARGETS", "apache,pyzk").split(",") if k.strip()]
    return [k for k in kinds if k in TARGET_KINDS]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("kind", _kinds())
def test_short_jepsen_run_finds_no_anomaly(kind: str) -> None:
    if kind == "apache" and not APACHE_JAR.exists():
        pytest.skip(f"{APACHE_JAR} is missing: run tests/compat/install_oracle.sh")
    quiet_kazoo()
    seed = int(os.environ.get("PYZK_JEPSEN_SEED", "1"))
    duration = float(os.environ.get("PYZK_JEPSEN_DURATION", "30"))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    result = run_seed(kind, seed, duration, WorkloadConfig(), FAULTS, 8.0,
                      REPORT_DIR / f"{kind}-pytest-{stamp}")
    print(result.line())
    assert result.error is None, result.error
    assert result.counts.get("ok", 0) > 100, f"the workload hardly ran: {result.counts}"
    assert not result.anomalies, "\n".join(result.anomalies[:20] + [f"logs: {result.logs}"])
