"""A seeded fault schedule: kill -9 + restart, SIGSTOP/SIGCONT pauses, partitions, heal.

Rule 1: every choice comes from random.Random(seed): which fault, which member (the leader
        about half of the time, found with ``srvr``), how long it lasts, the gap before the next.
Rule 2: one fault at a time: apply, hold, undo, gap.  Holds and gaps wait on the stop event, and
        whatever was applied is undone before the thread ends (the runner then calls
        Cluster.heal_all as well, before its quiet period).
"""

from __future__ import annotations

import logging
import random
import threading
import time

from tests.jepsen.cluster import Cluster

log = logging.getLogger("jepsen.nemesis")

FAULTS = ("kill", "pause", "partition")
GAP_S = (1.5, 4.0)
KILL_DOWN_S = (0.5, 4.0)
PAUSE_S = (1.0, 5.0)
PARTITION_S = (2.0, 8.0)
LEADER_SHARE = 0.5


def parse_faults(spec: str) -> tuple[str, ...]:
    if spec in ("all", ""):
        return FAULTS
    if spec == "none":
        return ()
    faults = tuple(f.strip() for f in spec.split(",") if f.strip())
    unknown = sorted(set(faults) - set(FAULTS))
    if unknown:
        raise ValueError(f"unknown nemesis faults {unknown}; choose from {FAULTS}, all or none")
    return faults


class Nemesis(threading.Thread):
    def __init__(self, cluster: Cluster, seed: int, faults: tuple[str, ...],
                 stop: threading.Event) -> None:
        super().__init__(name="jepsen-nemesis", daemon=True)
        self.cluster = cluster
        self.rng = random.Random(seed)
        self.faults = faults
        self.stop_event = stop
        self.applied: list[str] = []
        self.error: str | None = None

    def _pick_member(self) -> int:
        if self.rng.random() < LEADER_SHARE:
            leader = self.cluster.leader()
            if leader is not None:
                return leader
        return self.rng.choice(self.cluster.ids)

    def _hold(self, bounds: tuple[float, float]) -> None:
        self.stop_event.wait(self.rng.uniform(*bounds))

    def run(self) -> None:
        if not self.faults:
            return
        try:
            while not self.stop_event.wait(self.rng.uniform(*GAP_S)):
                fault = self.rng.choice(self.faults)
                started = time.monotonic()
                if fault == "kill":
                    target = self._pick_member()
                    self.cluster.kill9(target)
                    self._hold(KILL_DOWN_S)
                    self.cluster.restart(target)
                    self.applied.append(f"kill {target}")
                elif fault == "pause":
                    target = self._pick_member()
                    self.cluster.pause(target)
                    try:
                        self._hold(PAUSE_S)
                    finally:
                        self.cluster.resume(target)
                    self.applied.append(f"pause {target}")
                else:
                    if self.rng.random() < 0.5:
                        target = self._pick_member()
                        self.cluster.isolate(target)
                        what = f"isolate {target}"
                    else:
                        a, b = self.rng.sample(self.cluster.ids, 2)
                        self.cluster.partition_pair(a, b)
                        what = f"partition {a}<->{b}"
                    try:
                        self._hold(PARTITION_S)
                    finally:
                        self.cluster.heal_partitions()
                    self.applied.append(what)
                log.info("nemesis: %s (%.1f s)", self.applied[-1], time.monotonic() - started)
        except Exception as exc:
            self.error = f"nemesis crashed: {exc!r}"
            log.exception("nemesis")
        finally:
            try:
                self.cluster.heal_partitions()
                for i in self.cluster.ids:
                    self.cluster.resume(i)
                    if not self.cluster.servers[i].running:
                        self.cluster.restart(i)
            except Exception:
                log.exception("nemesis clean-up")
