"""A session that moved to an observer: the leader's REVALIDATE answer says its last proposal,
and no txn at or below it answers the session's new requests (simulator seed 12105: an
observer logs only committed txns, so its own log was behind the old connection's create)."""

from __future__ import annotations

from jute.codes import OpCode
from jute.proto import RequestHeader
from pyzk.pipeline.commit.follower import FollowerCommit
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


def test_without_the_leaders_zxid_a_followers_floor_is_its_log_as_before() -> None:
    """A Java leader answers REVALIDATE with zxid -1. A follower has logged every proposal
    the leader sent before its answer, so its log is the floor; here (nothing logged) the
    old txn matches, which shows that the -1 adds no floor and what the floor prevents."""
    driver = StandInDriver()
    server, commit, session_id = established_follower_session(driver)
    new, frames = reconnect(server, session_id)
    commit.on_revalidated(session_id, True, -1)
    server.handle_packet(new, RequestHeader(1, OpCode.CREATE).encode() + _create("/new"))
    leader_create(driver, session_id, 1, "/old")
    assert replies(frames) == [(1, 0)]


def test_under_a_java_leader_an_observer_takes_the_next_ping_as_the_floor() -> None:
    """A Java leader answers REVALIDATE with zxid -1; its PINGs carry its last proposal
    (LearnerHandler.ping). An observer finishes the move at the next PING, with that floor."""
    driver = StandInDriver()
    server, _commit, session_id = established_follower_session(driver)
    commit = FollowerCommit(server, driver, 1, observer=True)
    server.commit = driver.commit = commit
    new, frames = reconnect(server, session_id)
    commit.on_revalidated(session_id, True, -1)
    assert not new.established  # waits for the PING
    proposed_before_the_move = driver.last_proposed + 1
    commit.on_leader_pinged(proposed_before_the_move)
    assert new.established
    server.handle_packet(new, RequestHeader(1, OpCode.CREATE).encode() + _create("/new"))
    leader_create(driver, session_id, 1, "/old")
    assert replies(frames) == []
    leader_create(driver, session_id, 1, "/new")
    assert replies(frames) == [(1, 0)]
