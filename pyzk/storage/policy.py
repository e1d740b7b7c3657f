"""When to snapshot (SyncRequestProcessor.shouldSnapshot): pure, randomness passed in.

Rule: a snapshot is due once more than snapCount/2 + roll txns were logged since the last one
(or the logged bytes pass snapSizeLimitInKb/2 + its roll), where each roll is drawn anew in
[0, snapCount/2) after every snapshot, so the servers of an ensemble do not snapshot in
lockstep.
"""

from __future__ import annotations

from collections.abc import Callable

SNAP_COUNT_DEFAULT = 100_000
SNAP_SIZE_LIMIT_KB_DEFAULT = 4_194_304


class SnapshotScheduler:
    def __init__(self, snap_count: int, snap_size_limit_kb: int, rand_below: Callable[[int], int]) -> None:
        """`rand_below(n)` returns a random int in [0, n) (e.g. random.Random().randrange)."""
        self.snap_count = max(snap_count, 2)
        self.snap_size_limit_bytes = snap_size_limit_kb * 1024
        self._rand_below = rand_below
        self.txns_logged = 0
        self.bytes_logged = 0
        self._reset_rolls()

    def _reset_rolls(self) -> None:
        self._count_roll = self._rand_below(self.snap_count // 2)
        half_size = self.snap_size_limit_bytes // 2
        self._size_roll = self._rand_below(half_size) if half_size > 0 else 0

    def on_logged(self, entry_bytes: int) -> bool:
        """Count one logged txn; True when a snapshot should start now."""
        self.txns_logged += 1
        self.bytes_logged += entry_bytes
        over_count = self.txns_logged > self.snap_count // 2 + self._count_roll
        over_size = (self.snap_size_limit_bytes > 0
                     and self.bytes_logged > self.snap_size_limit_bytes // 2 + self._size_roll)
        return over_count or over_size

    def snapshot_started(self) -> None:
        self.txns_logged = 0
        self.bytes_logged = 0
        self._reset_rolls()
