"""SIGKILL crash test: no acknowledged write is lost, no multi is half applied.

A pipelined writer creates nodes, sets data and runs 3-create multis as fast as it can while
the server is killed with SIGKILL at a random moment; sometimes the restarted server is killed
again during start-up (restore, the start-up snapshot). After each restart the ledger checks
every acknowledged write (see tests/chaos/ledger.py). snapCount is small so kills land during
snapshots and log rolls too.

PYZK_CRASH_KILLS (default 10) sets the number of kills, PYZK_CRASH_SEED the PRNG seed; the
seed is printed, and named in every failure.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from tests.chaos.ledger import Ledger, Observation, set_key_path
from tests.chaos.writer import PipelinedWriter
from tests.compat.targets import TARGET_KINDS, Ensemble, start_target

KILLS_DEFAULT = 10
SET_KEYS = 16
ROOT = "/crash"
WRITE_BEFORE_KILL_S = (0.05, 1.2)  # the writer runs this long (uniform) before the kill
KILL_DURING_START_SHARE = 0.15
KILL_DURING_START_S = (0.0, 1.5)
WRITER_JOIN_TIMEOUT_S = 15.0
PER_KILL_BUDGET_S = 40.0
SYSPROPS = {"zookeeper.snapCount": "50", "zookeeper.preAllocSize": "16"}


def _kinds() -> list[str]:
    kinds = [k.strip() for k in os.environ.get("PYZK_TARGETS", "apache,pyzk").split(",") if k.strip()]
    return [k for k in kinds if k in TARGET_KINDS]


def _observe(hosts: str) -> Observation:
    client = KazooClient(hosts=hosts, timeout=10.0)
    client.start(timeout=15.0)
    try:
        children = set(client.get_children(ROOT))
        values: dict[int, bytes | None] = {}
        for key in range(SET_KEYS):
            stat = client.exists(set_key_path(ROOT, key))
            values[key] = client.get(set_key_path(ROOT, key))[0] if stat else None
        return Observation(children, values)
    finally:
        client.stop()
        client.close()


def _prepare(hosts: str) -> None:
    client = KazooClient(hosts=hosts, timeout=10.0)
    client.start(timeout=15.0)
    try:
        client.create(ROOT)
        for key in range(SET_KEYS):
            client.create(set_key_path(ROOT, key), b"-1")
    finally:
        client.stop()
        client.close()


@pytest.mark.parametrize("kind", _kinds())
def test_sigkill_loses_no_acknowledged_write(kind: str, tmp_path: Path) -> None:
    kills = int(os.environ.get("PYZK_CRASH_KILLS", str(KILLS_DEFAULT)))
    seed = int(os.environ.get("PYZK_CRASH_SEED", str(random.SystemRandom().randrange(1 << 32))))
    print(f"crash test on {kind}: seed {seed}, {kills} kills")
    rng = random.Random(seed)
    ensemble: Ensemble = start_target(kind, workdir=tmp_path, sysprops=SYSPROPS)
    server = ensemble.servers[0]
    ledger = Ledger(ROOT, SET_KEYS)
    numbers = [0, 0, 0]
    deadline = time.monotonic() + PER_KILL_BUDGET_S * (kills + 1)
    kills_done = kills_mid_write = kills_during_start = 0
    error_replies: list[str] = []
    try:
        _prepare(ensemble.hosts)
        while kills_done < kills:
            assert time.monotonic() < deadline, f"seed {seed}: out of time after {kills_done} kills"
            writer = PipelinedWriter(ensemble.hosts, ledger, random.Random(rng.random()), numbers)
            writer.start()
            time.sleep(rng.uniform(*WRITE_BEFORE_KILL_S))
            server.kill9()
            kills_done += 1
            writer.join(WRITER_JOIN_TIMEOUT_S)
            kills_mid_write += writer.stats.in_flight_at_end > 0
            error_replies += writer.stats.error_replies
            if kills_done < kills and rng.random() < KILL_DURING_START_SHARE:
                server.launch()
                time.sleep(rng.uniform(*KILL_DURING_START_S))
                server.kill9()
                kills_done += 1
                kills_during_start += 1
            server.start()
            problems = ledger.check(_observe(ensemble.hosts))
            assert not problems, (
                f"seed {seed}, kill {kills_done} on {kind}: {problems[:20]}; log {server.log_path}")
        assert not error_replies, f"seed {seed}: error replies {error_replies[:10]}"
    finally:
        ensemble.stop()
    print(f"{kind}: {kills_done} kills ({kills_mid_write} with writes in flight, "
          f"{kills_during_start} during start-up), {ledger.acked_writes} acknowledged writes, "
          f"{len(ledger.creates_issued)} creates, {len(ledger.multis_issued)} multis issued")
    assert ledger.acked_writes > kills, f"seed {seed}: the writer hardly wrote ({ledger.acked_writes} acks)"
