"""ServerMetrics: the measurements behind Apache ZooKeeper 3.8's ServerMetrics that pyzk takes.

Rule 1: names and kinds are Apache's (ServerMetrics.java): a Summary is an AvgMinMaxCounter
        (mntr: avg_/min_/max_/cnt_/sum_<name>; Prometheus: a BASIC summary, quantile 0.5),
        a counter a monotonic count. Times are whole milliseconds, as Apache's
        Time.currentElapsedTime differences. Only what pyzk really measures is listed here
        (fourletter Rule 3); which role records what is said at each name.
Rule 2: one ServerMetrics per server process (per simulated peer), kept across role changes,
        as Apache's ServerMetrics lives as long as its JVM.
Rule 3: a Summary has ONE writer thread (the txn log thread for fsynctime, the event loop
        for the others) and is recorded once per event, never per request: `add` replaces an
        immutable aggregate tuple and appends to a bounded deque, each one atomic under the
        GIL, so readers on the event loop never see a half-updated aggregate and need no lock
        (this module is pure: no threading import, see the import contracts).
Rule 5: `reset` (srst / stat_reset with the default metrics provider, as
        ServerStats.reset calls ServerMetrics.resetAll; the Prometheus provider ignores it) runs
        on the event loop while the log thread may be adding an fsync time: an `add` that
        raced a reset is dropped rather than undoing it (the reset bumps an epoch first).
Rule 4: the Prometheus median is over the samples of the last QUANTILE_WINDOW_S seconds, at
        most QUANTILE_SAMPLES_MAX of them (Apache's CKMS quantile has a 10-minute window and a
        5% error); NaN when there is none, as simpleclient writes it.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal

QUANTILE_WINDOW_S = 600.0
QUANTILE_SAMPLES_MAX = 1024

# Apache 3.8.0's mntr order of these summaries (its summary map's hash order, captured).
SUMMARY_NAMES = (
    "startup_txns_load_time",  # start-up: replaying the txn log after the snapshot (every role)
    "follower_sync_time",  # follower: LEADERINFO to UPTODATE
    "fsynctime",  # every role: one txn log fdatasync (log thread)
    "snapshottime",  # every role: one snapshot taken, from its start to its file written
    "startup_txns_loaded",  # start-up: txns replayed from the log
    "dbinittime",  # start-up: the whole restore of the data dir
    "election_time",  # leader, follower: LOOKING to LEADING/FOLLOWING (not observers, as Apache)
    "observer_sync_time",  # observer: LEADERINFO to UPTODATE
    "startup_snap_load_time",  # start-up: reading the newest valid snapshot
)

# Zab counters, in Apache 3.8.0's mntr order.
COUNTER_NAMES = (
    "proposal_count",  # leader: txns proposed
    "looking_count",  # every ensemble role: times the peer went LOOKING
    "learner_proposal_received_count",  # follower: PROPOSALs received in broadcast
    "learner_commit_received_count",  # follower: COMMITs, observer: INFORMs, in broadcast
    "diff_count",  # leader: learner syncs without a snapshot (DIFF or TRUNC)
    "snap_count",  # leader: learner syncs by SNAP
    "commit_count",  # leader: COMMITs sent (not COMMITANDACTIVATE, as Apache)
)


def _java_avg(total: int, count: int) -> float:
    """AvgMinMaxCounter.getAvg: the mean rounded HALF_UP to 4 places (0.0 with no sample)."""
    if not count:
        return 0.0
    return float(Decimal(repr(total / count)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


class Summary:
    """One AvgMinMaxCounter (Rule 3: one writer thread)."""

    __slots__ = ("name", "_aggregate", "_recent", "_clock", "_epoch")

    def __init__(self, name: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self._aggregate: tuple[int, int, int, int] = (0, 0, 0, 0)  # count, sum, min, max
        self._recent: deque[tuple[float, int]] = deque(maxlen=QUANTILE_SAMPLES_MAX)
        self._clock = clock
        self._epoch = 0  # bumped by reset (Rule 5)

    def add(self, value: int | float) -> None:
        v = int(value)
        epoch = self._epoch
        count, total, lo, hi = self._aggregate
        aggregate = (count + 1, total + v, min(lo, v), max(hi, v)) if count else (1, v, v, v)
        if epoch == self._epoch:
            self._aggregate = aggregate
            self._recent.append((self._clock(), v))

    def reset(self) -> None:
        self._epoch += 1
        self._aggregate = (0, 0, 0, 0)
        self._recent.clear()

    @property
    def count(self) -> int:
        return self._aggregate[0]

    @property
    def total(self) -> int:
        return self._aggregate[1]

    def monitor_values(self) -> list[tuple[str, int | float]]:
        """mntr's five keys (AvgMinMaxCounter.values): 0 for min and max with no sample."""
        count, total, lo, hi = self._aggregate
        n = self.name
        return [(f"avg_{n}", _java_avg(total, count)), (f"min_{n}", lo), (f"max_{n}", hi),
                (f"cnt_{n}", count), (f"sum_{n}", total)]

    def median(self) -> float:
        """The 0.5 quantile of the recent samples (Rule 4)."""
        since = self._clock() - QUANTILE_WINDOW_S
        values = sorted(v for at, v in list(self._recent) if at >= since)
        if not values:
            return math.nan
        return float(values[(len(values) - 1) // 2])


class ServerMetrics:
    """The summaries and Zab counters of one server (Rule 2)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.summaries = {name: Summary(name, clock) for name in SUMMARY_NAMES}
        s = self.summaries
        self.fsynctime = s["fsynctime"]
        self.snapshottime = s["snapshottime"]
        self.dbinittime = s["dbinittime"]
        self.election_time = s["election_time"]
        self.follower_sync_time = s["follower_sync_time"]
        self.observer_sync_time = s["observer_sync_time"]
        self.startup_txns_loaded = s["startup_txns_loaded"]
        self.startup_txns_load_time = s["startup_txns_load_time"]
        self.startup_snap_load_time = s["startup_snap_load_time"]
        self.proposal_count = 0
        self.looking_count = 0
        self.learner_proposal_received_count = 0
        self.learner_commit_received_count = 0
        self.diff_count = 0
        self.snap_count = 0
        self.commit_count = 0
        # fsyncs over fsync.warningthresholdms (Apache keeps it in ServerStats, for the
        # AdminServer's server_stats; no mntr key): the log thread's alone, never reset.
        self.fsync_threshold_exceed_count = 0

    def reset(self) -> None:
        """ServerMetrics.resetAll with the default provider (Rule 5): counters and summaries."""
        for name in COUNTER_NAMES:
            setattr(self, name, 0)
        for summary in self.summaries.values():
            summary.reset()

    def counter_values(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNTER_NAMES}

    def summary_values(self) -> list[tuple[str, int | float]]:
        """Every summary's mntr keys, in Apache's order."""
        return [kv for name in SUMMARY_NAMES for kv in self.summaries[name].monitor_values()]

    def record_restore(self, snap_load_ms: float, txns_loaded: int, txns_load_ms: float | None,
                       total_ms: float) -> None:
        """FileTxnSnapLog.restore + ZKDatabase.loadDataBase's measurements at start-up; the
        txn ones only when a txn followed the snapshot (`txns_load_ms` None: Apache returns
        before recording them)."""
        self.startup_snap_load_time.add(snap_load_ms)
        if txns_load_ms is not None:
            self.startup_txns_loaded.add(txns_loaded)
            self.startup_txns_load_time.add(txns_load_ms)
        self.dbinittime.add(total_ms)
