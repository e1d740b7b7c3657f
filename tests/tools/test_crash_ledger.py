"""The crash test's ledger (tests/chaos/ledger.py) flags every kind of lost or torn write."""

from __future__ import annotations

from tests.chaos.ledger import Ledger, Observation


def _ledger() -> Ledger:
    ledger = Ledger("/crash", set_keys=2)
    ledger.creates_issued.update({0, 1})
    ledger.ack_create(0)
    ledger.multis_issued.update({0, 1})
    ledger.ack_multi(0)
    ledger.sets_issued[0] = [0, 2]
    ledger.sets_issued[1] = [1]
    ledger.ack_set(0, 0)
    return ledger


def _seen(children: set[str], s0: bytes | None = b"0", s1: bytes | None = b"-1") -> Observation:
    return Observation(children | {"s0", "s1"}, {0: s0, 1: s1})


ACKED = {"c0", "m0-0", "m0-1", "m0-2"}


def test_acknowledged_writes_present_pass() -> None:
    assert _ledger().check(_seen(ACKED)) == []


def test_unacknowledged_writes_may_be_applied_whole() -> None:
    seen = _seen(ACKED | {"c1", "m1-0", "m1-1", "m1-2"}, s0=b"2", s1=b"1")
    assert _ledger().check(seen) == []


def test_lost_create_multi_and_set_are_flagged() -> None:
    problems = _ledger().check(_seen(set(), s0=b"-1"))
    assert any("create c0 is missing" in p for p in problems)
    assert any("multi 0 is missing" in p for p in problems)
    assert any("went back" in p for p in problems)


def test_half_multi_and_strangers_are_flagged() -> None:
    problems = _ledger().check(_seen(ACKED | {"m1-0", "zz"}, s1=b"7"))
    assert any("half applied" in p for p in problems)
    assert any("nobody created" in p for p in problems)
    assert any("never written" in p for p in problems)


def test_what_a_restart_showed_becomes_the_floor() -> None:
    ledger = _ledger()
    assert ledger.check(_seen(ACKED | {"c1"}, s0=b"2")) == []
    problems = ledger.check(_seen(ACKED, s0=b"0"))
    assert any("previously recovered create c1" in p for p in problems)
    assert any("went back to seq 0" in p for p in problems)
