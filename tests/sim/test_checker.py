"""The checker must be able to fail: each rule, broken on purpose."""

from __future__ import annotations

import pytest

from pyzk.quorum.database import DiskImage
from pyzk.quorum.errors import InvariantViolation
from pyzk.quorum.peer import Peer
from pyzk.quorum.verifier import QuorumMaj
from pyzk.sim.checker import ZabChecker

pytestmark = pytest.mark.sim


def peer(sid: int) -> Peer:
    return Peer(sid, QuorumMaj.of_sids([1, 2, 3]), DiskImage(), 0)


def test_two_leaders_in_one_epoch() -> None:
    checker = ZabChecker()
    checker.on_leader_established(1, 1, peer(1))
    checker.on_leader_established(1, 1, peer(1))  # the same leader again is fine
    with pytest.raises(InvariantViolation, match="two leaders"):
        checker.on_leader_established(2, 1, peer(2))


def test_leader_missing_a_committed_txn() -> None:
    checker = ZabChecker()
    checker.committed[0x100000001] = b"txn"
    with pytest.raises(InvariantViolation, match="lost committed"):
        checker.on_leader_established(1, 2, peer(1))


def test_divergent_digest() -> None:
    checker = ZabChecker()
    checker.on_follower_established(1, peer(1))
    other = peer(2)
    other.db.tree.digest ^= 1
    with pytest.raises(InvariantViolation, match="diverged"):
        checker.on_follower_established(2, other)
