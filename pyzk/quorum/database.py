"""The replica's state as the core sees it: the newest snapshot's zxid, the recent txn log, the tree.

Rule 1: the tree holds every logged txn up to `tree.last_processed_zxid`; the log may run
ahead of it (proposals not yet committed). In memory the log keeps every txn not yet applied
and the last `keep` applied ones (the committed-log window, commitLogCount); older txns are
in the log files only. Rule 2: the core keeps no snapshot bytes: a tree that must be rebuilt
below the tree's zxid (a TRUNC, an aborted SNAP sync) is loaded from the snapshot and the txns
logged after it through the Peer (`Storage`, as etcd raft's), then replayed.
Rule 3: going back to election keeps the tree and applies every logged txn after it
(`fast_forward`, ZKDatabase.fastForwardDataBase), so afterwards every logged txn counts as
processed. Rule 4: this module does no I/O; the driver mirrors every change through `Persist`
effects.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from jute.txn import TxnHeader
from pyzk.quorum.effects import Persist
from pyzk.quorum.errors import InvariantViolation
from pyzk.storage.format import decode_txn_entry
from pyzk.storage.snapshot_format import SnapshotSerializer
from pyzk.tree.datatree import CONFIG_NODE, ApplyResult, DataTree

SNAPSHOT_NODES_PER_STEP = 1 << 30
TRIM_SLACK = 64  # applied txns beyond twice the window before the log is trimmed


class Storage(Protocol):
    """What the core wrote through Persist effects and was reported durable, read back (etcd
    raft's Storage): the driver reads dataDir, the simulator its disk. The core asks only for
    durable things (Peer.load_tree keeps a snapshot itself until it is)."""

    def load(self, zxid: int) -> DataTree:
        """The tree of the snapshot taken at `zxid`; an error if there is none."""
        ...

    def snapshot_size(self, zxid: int) -> int:
        """The size in bytes of the snapshot taken at `zxid` (0 when there is none)."""
        ...

    def logged_after(self, zxid: int, before_zxid: int | None = None) -> list[tuple[int, bytes]]:
        """Every logged txn after `zxid` (the newest durable snapshot's), in log order, up to
        `before_zxid` (the first still being written: not read while it is)."""
        ...

    def read_committed(self, from_zxid: int, before_zxid: int, limit_bytes: int) -> list[tuple[int, bytes]] | None:
        """The logged txns from `from_zxid` (itself logged) up to `before_zxid`, one history
        without a gap; None when they are not all there, or add up to more than
        `limit_bytes` (0: no limit), or cross a snapshot this server did not build from its
        own log (after a SNAP, the log before it may hold txns never committed)."""
        ...


@dataclass(frozen=True, slots=True)
class AppliedTxn:
    """A committed txn as decoded once for the tree, and what applying it did."""

    hdr: TxnHeader
    txn: Any
    result: ApplyResult


@dataclass
class DiskImage:
    """What a server's dataDir holds, as Persist effects leave it (the core keeps one too):
    the newest snapshot's zxid (its tree is in Storage), the log after it, epochs."""

    snapshot: int | None = None
    entries: list[tuple[int, bytes]] = field(default_factory=list)
    accepted_epoch: int | None = None
    current_epoch: int | None = None

    def apply(self, persist: Persist) -> None:
        if persist.truncate_to_zxid is not None:
            self.entries = [(z, e) for z, e in self.entries if z <= persist.truncate_to_zxid]
        if persist.snapshot is not None:
            self.snapshot = persist.snapshot[0]
            self.entries = [(z, e) for z, e in self.entries if z > persist.snapshot[0]]
        self.entries.extend(persist.entries)
        if persist.accepted_epoch is not None:
            self.accepted_epoch = persist.accepted_epoch
        if persist.current_epoch is not None:
            self.current_epoch = persist.current_epoch

    def copy(self) -> DiskImage:
        return DiskImage(self.snapshot, list(self.entries), self.accepted_epoch, self.current_epoch)

    @property
    def last_logged_zxid(self) -> int:
        return self.entries[-1][0] if self.entries else self.snapshot or 0


@dataclass
class DiskSummary:
    """A DiskImage without its txns: what the Peer keeps of its dataDir (the txns are read
    back from Storage when the database must be rebuilt)."""

    snapshot: int | None = None
    last_logged_zxid: int = 0
    accepted_epoch: int | None = None
    current_epoch: int | None = None

    @classmethod
    def of(cls, image: DiskImage) -> DiskSummary:
        return cls(image.snapshot, image.last_logged_zxid, image.accepted_epoch, image.current_epoch)

    def apply(self, persist: Persist) -> None:
        if persist.truncate_to_zxid is not None:
            self.last_logged_zxid = min(self.last_logged_zxid, persist.truncate_to_zxid)
        if persist.snapshot is not None:
            self.snapshot = persist.snapshot[0]
            self.last_logged_zxid = max(self.last_logged_zxid, self.snapshot)
        if persist.entries:
            self.last_logged_zxid = persist.entries[-1][0]
        if persist.accepted_epoch is not None:
            self.accepted_epoch = persist.accepted_epoch
        if persist.current_epoch is not None:
            self.current_epoch = persist.current_epoch


class ZabDatabase:
    def __init__(self, base_zxid: int = 0, base_tree: DataTree | None = None,
                 entries: list[tuple[int, bytes]] | None = None, keep: int | None = None) -> None:
        """The database of snapshot `base_tree` taken at `base_zxid` (None: the empty tree)
        and the logged txns after it, all applied (Rule 3). `base_tree` may have applied some
        of them already (its last_processed_zxid): the rest are applied. `keep`: how many
        applied txns the log keeps in memory (Rule 1); None: all."""
        self.base_zxid = base_zxid
        self.keep = keep
        self.log: list[tuple[int, bytes]] = list(entries or [])
        # A SNAP replaced the tree and it is not persisted yet (until NEWLEADER): the database
        # is not its disk image replayed.
        self.unpersisted_snapshot = False
        self.tree = base_tree if base_tree is not None else DataTree()
        if self.tree.last_processed_zxid < base_zxid:
            self.tree.last_processed_zxid = base_zxid
        # Txns decoded when they were logged (a proposal made here or received), kept until
        # applied so a commit does not decode them again; dropped when the log is rewritten.
        self._decoded: dict[int, tuple[TxnHeader, Any]] = {}
        self._next_apply = 0  # a hint: index in `log` of the next txn to apply
        self.fast_forward()

    @property
    def last_logged_zxid(self) -> int:
        return self.log[-1][0] if self.log else self.base_zxid

    @property
    def last_processed_zxid(self) -> int:
        return self.tree.last_processed_zxid

    def fast_forward(self) -> int:
        """Apply every logged txn after the tree's zxid (ZKDatabase.fastForwardDataBase);
        returns how many."""
        start = bisect_right(self.log, self.tree.last_processed_zxid, key=_zxid_of)
        for _zxid, entry in self.log[start:]:
            self._apply_entry(entry)
        self._decoded.clear()
        self._next_apply = len(self.log)
        self._trim()
        return len(self.log) - start

    def matches(self, disk: DiskSummary) -> bool:
        """The database is its disk image replayed: the same snapshot and last logged txn, and
        no SNAP waiting to be persisted (every other change of the log is persisted as it is
        made). Then going back to election may keep the tree (Rule 3); otherwise it must be
        rebuilt from the disk."""
        return (not self.unpersisted_snapshot and self.base_zxid == (disk.snapshot or 0)
                and max(self.last_logged_zxid, self.base_zxid) == disk.last_logged_zxid)

    def append(self, zxid: int, entry: bytes, decoded: tuple[TxnHeader, Any] | None = None) -> None:
        """Log `entry`; `decoded` is its (header, txn) when the caller has them already."""
        if zxid <= self.last_logged_zxid:
            raise InvariantViolation(f"log append {zxid:#x} after {self.last_logged_zxid:#x}")
        self.log.append((zxid, entry))
        if decoded is not None:
            self._decoded[zxid] = decoded

    def entry(self, zxid: int) -> bytes | None:
        i = bisect_right(self.log, zxid, key=_zxid_of) - 1
        return self.log[i][1] if i >= 0 and self.log[i][0] == zxid else None

    def decoded(self, zxid: int) -> tuple[TxnHeader, Any]:
        """Logged txn `zxid` as (header, txn), decoded once and kept until it is applied."""
        decoded = self._decoded.get(zxid)
        if decoded is None:
            entry = self.entry(zxid)
            if entry is None:
                raise InvariantViolation(f"txn {zxid:#x} is not in the log")
            hdr, txn, _digest = decode_txn_entry(entry)
            decoded = self._decoded[zxid] = (hdr, txn)
        return decoded

    def apply_committed(self, zxid: int) -> AppliedTxn:
        """Apply logged txn `zxid`; it must be the next logged txn after the tree's zxid."""
        log = self.log
        processed = self.last_processed_zxid
        i = self._next_apply
        # O(1) when the hint holds (log[i] is zxid and log[i-1] is processed), else search.
        if not (i < len(log) and log[i][0] == zxid and (i == 0 or log[i - 1][0] <= processed)):
            i = bisect_right(log, processed, key=_zxid_of)
            if i >= len(log) or log[i][0] != zxid:
                nxt = log[i][0] if i < len(log) else None
                raise InvariantViolation(f"commit of {zxid:#x} is not the next logged txn {nxt!r} "
                                         f"(tree at {processed:#x})")
        if zxid <= processed:
            raise InvariantViolation(f"commit of {zxid:#x} not after the tree's {processed:#x}")
        self._next_apply = i + 1
        decoded = self._decoded.pop(zxid, None)
        if decoded is None:
            hdr, txn, _digest = decode_txn_entry(log[i][1])
        else:
            hdr, txn = decoded
        applied = AppliedTxn(hdr, txn, self.tree.apply(hdr, txn))
        if self.keep is not None and self._next_apply > 2 * self.keep + TRIM_SLACK:
            self._trim()
        return applied

    def _trim(self) -> None:
        """Rule 1: forget applied txns older than the last `keep` (they are in the log files).
        Amortized: called when the applied part is twice the window."""
        if self.keep is None:
            return
        applied = bisect_right(self.log, self.last_processed_zxid, key=_zxid_of)
        drop = applied - self.keep
        if drop > 0:
            del self.log[:drop]
            self._next_apply = max(0, self._next_apply - drop)

    def next_logged_after(self, zxid: int) -> int | None:
        i = bisect_right(self.log, zxid, key=_zxid_of)
        return self.log[i][0] if i < len(self.log) else None

    def truncate(self, zxid: int, load_base: Callable[[int], DataTree],
                 load_logged: Callable[[], list[tuple[int, bytes]]]) -> None:
        """Drop logged txns above `zxid` (Learner TRUNC). A tree that processed any of them is
        rebuilt: `load_base(base_zxid)` gives the snapshot's tree, `load_logged()` every txn
        logged after it, and those up to `zxid` are replayed (ZKDatabase.truncateLog reloads
        from disk)."""
        if zxid < self.base_zxid:
            raise InvariantViolation(f"truncate to {zxid:#x} below snapshot {self.base_zxid:#x}")
        if self.tree.last_processed_zxid > zxid:
            self.log = [(z, e) for z, e in load_logged() if self.base_zxid < z <= zxid]
            self.tree = load_base(self.base_zxid)
            self.tree.last_processed_zxid = self.base_zxid
        else:
            self.log = [(z, e) for z, e in self.log if z <= zxid]
        self._decoded.clear()
        self.fast_forward()

    def committed_from(self, zxid: int) -> list[tuple[int, bytes]] | None:
        """The logged txns from `zxid` up to the tree's zxid, oldest first (a DIFF from the txn
        log); None when `zxid` is not one of them (getProposalsFromTxnLog: "strictly the
        starting txn")."""
        start = bisect_left(self.log, zxid, key=_zxid_of)
        if start >= len(self.log) or self.log[start][0] != zxid:
            return None
        return self.log[start:bisect_right(self.log, self.last_processed_zxid, key=_zxid_of)]

    def committed_window(self, count: int) -> list[tuple[int, bytes]]:
        """The last `count` logged txns that the tree has processed (Leader's committedLog)."""
        end = bisect_right(self.log, self.last_processed_zxid, key=_zxid_of)
        return self.log[max(0, end - count):end]

    def snapshot(self) -> SnapshotSerializer:
        """The tree serialized as it is now (the body of a snapshot file or a SNAP)."""
        serializer = SnapshotSerializer(self.tree)
        while not serializer.step(SNAPSHOT_NODES_PER_STEP):
            pass
        return serializer

    def snap_stream(self) -> bytes:
        return self.snapshot().snap_stream()

    def load_snapshot(self, zxid: int, tree: DataTree) -> None:
        """SNAP from the leader: the tree is replaced; the log restarts after `zxid`."""
        self.base_zxid = zxid
        self.log = []
        self.tree = tree
        self.tree.last_processed_zxid = zxid
        self._decoded.clear()
        self._next_apply = 0
        self.unpersisted_snapshot = True

    def rebase(self, zxid: int, keep: int = 0) -> None:
        """A snapshot of the current tree was taken at `zxid`: the log keeps what follows it,
        and the last `keep` txns up to it (the committed-log window that DIFF sync reads)."""
        self.base_zxid = zxid
        end = bisect_right(self.log, zxid, key=_zxid_of)
        self.log = self.log[max(0, end - keep):]
        self._next_apply = max(0, self._next_apply - max(0, end - keep))
        self.unpersisted_snapshot = False

    def write_config_node(self, config_text: bytes, version: int, now_ms: int) -> None:
        """ZKDatabase.initConfigInZKDatabase: /zookeeper/config holds the active config's text,
        Stat version -1, mzxid = the config's version, outside any txn (every member does it
        when it establishes or activates a config). A config made by a reconfig txn was just
        written by that txn (mzxid = its zxid = the version): Java initialises before applying
        the txn, so the txn's data and stat are what stay. A static config has version 0, as
        has the tree's empty node, hence the data check."""
        node = self.tree.nodes.get(CONFIG_NODE)
        if node is not None and node.mzxid == version and node.data:
            return
        if node is None:  # a snapshot of a server before 3.5 (Java: "should only happen during upgrade")
            self.tree.add_config_node()
        self.tree.set_data(CONFIG_NODE, config_text, -1, version, now_ms, [])

    def _apply_entry(self, entry: bytes) -> ApplyResult:
        hdr, txn, _digest = decode_txn_entry(entry)
        return self.tree.apply(hdr, txn)


def _zxid_of(logged: tuple[int, bytes]) -> int:
    return logged[0]
