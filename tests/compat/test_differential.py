"""Differential test: the same random operation sequences against two servers, compared.

Rule: hypothesis generates scenarios (tests/compat/differential/strategies.py); each runs on
both servers at once in a fresh random sandbox node, with its own sessions, and the normalized
traces (replies, error classes, every Stat field, every watch event per session) must be
equal. A difference fails with the shortest scenario hypothesis can shrink it to.

Environment:
- PYZK_DIFF_PAIR      the two target kinds, default "apache,pyzk" ("apache,apache" proves the
                      comparator raises no false alarms);
- PYZK_DIFF_EXAMPLES  scenarios to run, default 60;
- PYZK_DIFF_STEPS     mean steps per scenario, default 30.
By hand, >= 10,000 operations:
  PYZK_DIFF_EXAMPLES=400 PYZK_DIFF_STEPS=30 python -m pytest tests/compat/test_differential.py
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings

from tests.compat.differential.compare import first_difference, report
from tests.compat.differential.executor import Execution
from tests.compat.differential.model import Scenario
from tests.compat.differential.normalize import normalize
from tests.compat.differential.strategies import scenarios
from tests.compat.targets import Ensemble, start_target

pytestmark = pytest.mark.compat

TARGET_PAIR = tuple(
    kind.strip() for kind in os.environ.get("PYZK_DIFF_PAIR", "apache,pyzk").split(",")
)
EXAMPLES = int(os.environ.get("PYZK_DIFF_EXAMPLES", "60"))
STEPS_MEAN = int(os.environ.get("PYZK_DIFF_STEPS", "30"))
# A container emptied during an example must not be reaped by one server's timer only.
SYSPROPS = {"znode.container.checkIntervalMs": "86400000"}


@dataclass
class ServerPair:
    names: tuple[str, str]
    servers: tuple[Ensemble, Ensemble]
    pool: ThreadPoolExecutor
    examples: int = 0
    steps: int = 0
    elapsed_s: float = 0.0

    def __repr__(self) -> str:  # hypothesis prints the fixture in every falsifying example
        return f"ServerPair({self.names[0]} vs {self.names[1]})"

    def run(self, scenario: Scenario) -> str | None:
        """Run on both servers at once; the failure report, or None if the traces agree."""
        sandbox = f"/t{uuid.uuid4().hex[:12]}"
        started = time.monotonic()
        futures = [
            self.pool.submit(Execution(server.hosts, sandbox).run, scenario)
            for server in self.servers
        ]
        left, right = (normalize(future.result()) for future in futures)
        self.elapsed_s += time.monotonic() - started
        self.examples += 1
        self.steps += len(scenario.steps)
        difference = first_difference(left, right)
        return None if difference is None else report(scenario, self.names, difference)


def report_summary(config: pytest.Config, pair: ServerPair) -> None:
    """One line on the terminal (past output capture): scenarios, steps and steps per second."""
    rate = pair.steps / pair.elapsed_s if pair.elapsed_s else 0.0
    summary = (
        f"differential {pair.names[0]} vs {pair.names[1]}: {pair.examples} scenarios, "
        f"{pair.steps} steps on each server in {pair.elapsed_s:.1f} s ({rate:.0f} steps/s)"
    )
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(summary)


@pytest.fixture(scope="module")
def server_pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerPair]:
    if len(TARGET_PAIR) != 2:
        raise pytest.UsageError(f"PYZK_DIFF_PAIR must name two targets, got {TARGET_PAIR}")
    names = (f"{TARGET_PAIR[0]}#1", f"{TARGET_PAIR[1]}#2")
    started: list[Ensemble] = []
    try:
        for kind in TARGET_PAIR:
            workdir = tmp_path_factory.mktemp(f"diff-{kind}")
            started.append(start_target(kind, 1, sysprops=SYSPROPS, workdir=workdir))
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="diff") as pool:
            pair = ServerPair(names, (started[0], started[1]), pool)
            yield pair
        report_summary(request.config, pair)
    finally:
        for ensemble in started:
            ensemble.stop()


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenario=scenarios(STEPS_MEAN))
def test_servers_agree(server_pair: ServerPair, scenario: Scenario) -> None:
    failure = server_pair.run(scenario)
    if failure is not None:
        raise AssertionError(failure)
