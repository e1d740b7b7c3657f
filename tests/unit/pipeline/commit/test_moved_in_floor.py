"""A session that moved to an observer: the leader's REVALIDATE answer says its last proposal,
and no txn at or below it answers the session's new requests (simulator seed 12105: an
observer logs only committed txns, so its own log was behind the old connection's create)."""

from __future__ import annotations

from jute.codes import OpCode
from jute.proto import RequestHeader
from tests.unit.pipeline.commit.test_leader_follower import (
    StandInDriver,
    _create,
    established_follower_session,
    leader_create,
    reconnect,
    replies,
)


def test_a_txn_proposed_before_the_move_does_not_answer_the_new_connection() -> None:
    driver = StandInDriver()
    server, commit, session_id = established_follower_session(driver)
    new, frames = reconnect(server, session_id)
    # The old connection's create (xid 1, through another server) was proposed at last + 1
    # before the move, but this observer has not logged it yet (it logs only commits).
    proposed_before_the_move = driver.last_proposed + 1
    commit.on_revalidated(session_id, True, proposed_before_the_move)
    assert new.established
    server.handle_packet(new, RequestHeader(1, OpCode.CREATE).encode() + _create("/new"))
    leader_create(driver, session_id, 1, "/old")  # commits now, zxid = proposed_before_the_move
    assert driver.last_proposed == proposed_before_the_move
    assert replies(frames) == []
    leader_create(driver, session_id, 1, "/new")
    assert replies(frames) == [(1, 0)]


def test_without_the_leaders_zxid_the_floor_is_our_log_as_before() -> None:
    """A Java leader answers REVALIDATE with zxid -1: the old txn would match (Apache's own
    observers match the same way); this pins that the -1 adds no floor."""
    driver = StandInDriver()
    server, commit, session_id = established_follower_session(driver)
    new, frames = reconnect(server, session_id)
    commit.on_revalidated(session_id, True, -1)
    server.handle_packet(new, RequestHeader(1, OpCode.CREATE).encode() + _create("/new"))
    leader_create(driver, session_id, 1, "/old")
    assert replies(frames) == [(1, 0)]
