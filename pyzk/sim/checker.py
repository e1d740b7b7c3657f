"""Zab safety invariants, checked as the simulation runs (zookeeper-specifications doc.md).

Rule 1: at most one established leader per epoch.
Rule 2: a committed txn is never lost or changed: every leader, when it becomes established,
holds every txn committed so far, byte for byte; a txn committed late by an old leader must
be in the history of every leader established since.
Rule 3: agreement: every server that applies zxid z has the same tree digest after it.
A violation raises InvariantViolation with the rule that broke.
"""

from __future__ import annotations

from pyzk.quorum.errors import InvariantViolation
from pyzk.quorum.peer import Peer
from pyzk.quorum.zxid import epoch_of, hex_zxid


class ZabChecker:
    def __init__(self) -> None:
        self.leader_by_epoch: dict[int, int] = {}
        self.committed: dict[int, bytes] = {}
        self.digest_at: dict[int, int] = {}
        self.history_by_epoch: dict[int, frozenset[int]] = {}  # established leader's zxids
        # The highest snapshot an established leader started from: txns up to it are in its
        # history but not in its log, so their bytes are unknown here (their digests are not).
        self.in_leader_snapshot = 0
        self.commits_checked = 0

    @property
    def last_committed_zxid(self) -> int:
        return max(self.committed, default=0)

    def on_leader_established(self, sid: int, epoch: int, peer: Peer) -> None:
        holder = self.leader_by_epoch.setdefault(epoch, sid)
        if holder != sid:
            raise InvariantViolation(f"two leaders established in epoch {epoch}: {holder} and {sid}")
        db = peer.db
        logged = dict(peer.logged_since_snapshot())  # the log in memory is only its tail
        for zxid, entry in self.committed.items():
            if zxid > db.base_zxid and logged.get(zxid) != entry:
                raise InvariantViolation(f"leader {sid} of epoch {epoch} lost committed "
                                         f"txn {hex_zxid(zxid)}")
        if db.last_logged_zxid < self.last_committed_zxid:
            raise InvariantViolation(f"leader {sid} of epoch {epoch} ends at "
                                     f"{hex_zxid(db.last_logged_zxid)} before committed "
                                     f"{hex_zxid(self.last_committed_zxid)}")
        for zxid, entry in logged.items():
            self._commit(zxid, entry)
        self.history_by_epoch[epoch] = frozenset(logged)
        self.in_leader_snapshot = max(self.in_leader_snapshot, db.base_zxid)
        self._check_digest(sid, db.last_processed_zxid, db.tree.digest)

    def on_follower_established(self, sid: int, peer: Peer) -> None:
        self._check_digest(sid, peer.db.last_processed_zxid, peer.db.tree.digest)

    def on_apply(self, sid: int, zxid: int, tree_digest: int, peer: Peer, is_leader: bool) -> None:
        entry = peer.db.entry(zxid)
        if entry is None:
            raise InvariantViolation(f"server {sid} applied {hex_zxid(zxid)} that it never logged")
        if is_leader:
            if zxid < self.last_committed_zxid and zxid not in self.committed:
                for epoch, history in self.history_by_epoch.items():
                    if epoch > epoch_of(zxid) and zxid not in history:
                        raise InvariantViolation(f"old leader {sid} committed {hex_zxid(zxid)} "
                                                 f"missing from the leader of epoch {epoch}")
            self._commit(zxid, entry)
        elif zxid in self.committed or zxid > self.in_leader_snapshot:
            if self.committed.get(zxid) != entry:
                raise InvariantViolation(f"server {sid} applied {hex_zxid(zxid)}, "
                                         "which no leader committed with these bytes")
        self.commits_checked += 1
        self._check_digest(sid, zxid, tree_digest)

    def _commit(self, zxid: int, entry: bytes) -> None:
        known = self.committed.setdefault(zxid, entry)
        if known != entry:
            raise InvariantViolation(f"zxid {hex_zxid(zxid)} committed with two different txns")

    def _check_digest(self, sid: int, zxid: int, digest: int) -> None:
        known = self.digest_at.setdefault(zxid, digest)
        if known != digest:
            raise InvariantViolation(f"server {sid} diverged: digest {digest:#x} at "
                                     f"{hex_zxid(zxid)}, others had {known:#x}")
