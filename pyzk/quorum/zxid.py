"""Zxid arithmetic (ZooKeeper's ZxidUtils): a zxid is `epoch << 32 | counter`.

Rule: every split or join of a zxid goes through this module.
"""

from __future__ import annotations

from typing import NewType

Zxid = NewType("Zxid", int)
Epoch = NewType("Epoch", int)
ServerId = NewType("ServerId", int)

COUNTER_MAX = 0xFFFFFFFF


def make_zxid(epoch: int, counter: int) -> Zxid:
    """ZxidUtils.makeZxid: the counter keeps only its low 32 bits."""
    return Zxid((epoch << 32) | (counter & COUNTER_MAX))


def epoch_of(zxid: int) -> Epoch:
    return Epoch(zxid >> 32)


def counter_of(zxid: int) -> int:
    return zxid & COUNTER_MAX


def is_epoch_start(zxid: int) -> bool:
    """True for makeZxid(e, 0): the zxid a new leader starts its epoch from."""
    return counter_of(zxid) == 0


def follows(previous: int, zxid: int) -> bool:
    """`zxid` can come right after `previous` in one history: the next counter of the same
    epoch, or the first txn of a later epoch (a leader numbers its txns 1, 2, ...)."""
    if epoch_of(zxid) == epoch_of(previous):
        return zxid == previous + 1
    return epoch_of(zxid) > epoch_of(previous) and counter_of(zxid) == 1


def hex_zxid(zxid: int) -> str:
    return f"{zxid:#x}" if zxid >= 0 else str(zxid)
