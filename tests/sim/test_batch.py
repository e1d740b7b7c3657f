"""The seeded CI batch, the regression seeds, determinism, and probe coverage (STYLE.md D)."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from pyzk.sim.world import OBSERVER_SEEDS_FROM, RECONFIG_SEEDS_FROM, SimulationFailure, World

pytestmark = pytest.mark.sim

CI_SEEDS = range(int(os.environ.get("PYZK_SEED", "0")), int(os.environ.get("PYZK_SEED", "0")) + 50)
# Worlds with observers start at OBSERVER_SEEDS_FROM (one in three has one).
OBSERVER_CI_SEEDS = range(OBSERVER_SEEDS_FROM, OBSERVER_SEEDS_FROM + 24)
# Worlds that reconfigure the voting set start at RECONFIG_SEEDS_FROM (one in two).
RECONFIG_CI_SEEDS = range(RECONFIG_SEEDS_FROM, RECONFIG_SEEDS_FROM + 16)
REGRESSIONS = Path(__file__).with_name("regressions.txt")
PROBES_REQUIRED = (
    "leader sent SNAP",
    "leader sent TRUNC",
    "leader sent DIFF with proposals",
    "follower loaded a SNAP",
    "follower truncated its log",
    "follower timed out on a silent leader",
    "leader dropped a silent learner",
    "leader ignored an ACK for a committed or unknown zxid",
    "periodic snapshot",
    "snapshot serialized while txns were applied",
    "election applied logged txns to the tree it kept",
    "follower rebuilt its tree from its snapshot to truncate",
    "leader sent DIFF from its txn log",
    "leader read txns older than its database's log from disk",
    "leader synced a learner while a snapshot ran",
    "purge while a learner syncs",
    "autopurge removed files",
    "a crash came while a write was not yet fsynced",
    "restart cut a torn txn log tail",
    "restart passed over a damaged snapshot",
    "a write was slow",
    "observer got an INFORM",
    "reconfig committed with voting set change",
    "leader handed over to the designated leader",
    "learner changed role after a reconfig: OBSERVING",
    "election activated a newer config from a notification",
)


def regression_seeds() -> list[int]:
    lines = REGRESSIONS.read_text().splitlines()
    return [int(line.split("#")[0], 0) for line in lines if line.split("#")[0].strip()]


def test_ci_batch_and_probe_coverage() -> None:
    probes: Counter[str] = Counter()
    failures = []
    for seed in [*CI_SEEDS, *OBSERVER_CI_SEEDS, *RECONFIG_CI_SEEDS, *regression_seeds()]:
        world = World(seed)
        try:
            world.run()
        except SimulationFailure as exc:
            failures.append(str(exc))
        probes.update(world.probe.hits)
    assert not failures, "\n".join(failures)
    assert [site for site in PROBES_REQUIRED if not probes[site]] == []


@pytest.mark.parametrize("seed", [3, 0x5EED])
def test_same_seed_same_history(seed: int) -> None:
    digests = []
    for _ in range(2):
        world = World(seed)
        world.run()
        digests.append(world.trace_digest)
    assert digests[0] == digests[1]


def test_different_seeds_give_different_histories() -> None:
    first, second = World(1), World(2)
    first.run()
    second.run()
    assert first.trace_digest != second.trace_digest


def test_history_does_not_depend_on_the_hash_seed() -> None:
    """Iterating a set of str would make the trace depend on PYTHONHASHSEED; it must not."""
    import subprocess
    import sys

    outputs = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        run = subprocess.run([sys.executable, "-m", "pyzk.sim", "--seed", "5"], capture_output=True,
                             text=True, env=env, timeout=120, cwd=Path(__file__).parents[2], check=True)
        outputs.append(run.stdout.splitlines()[0])
    assert outputs[0] == outputs[1]
