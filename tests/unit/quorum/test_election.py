"""FastLeaderElection as a state machine: decisions, finalize wait, timeouts, replies (§3.3, §3.4)."""

from __future__ import annotations

from collections import deque

from jute.codes import ServerState
from pyzk.quorum.election import (
    FINALIZE_WAIT_MS,
    NOTIFICATION_TIMEOUT_MS_MAX,
    NOTIFICATION_TIMEOUT_MS_MIN,
    FastLeaderElection,
)
from pyzk.quorum.messages import Notification
from pyzk.quorum.verifier import QuorumConfigs, QuorumMaj


def deliver_all(elections: dict[int, FastLeaderElection], now_ms: int, down: set[int] = frozenset()) -> None:
    queue: deque[tuple[int, Notification]] = deque()
    for fle in elections.values():
        queue.extend(fle.take_sends())
    for _ in range(10_000):
        if not queue:
            return
        to, n = queue.popleft()
        if to in elections and to not in down:
            elections[to].step(n, now_ms)
            queue.extend(elections[to].take_sends())
    raise AssertionError("election messages never quiesced")


def run_election(zxids: dict[int, int], epochs: dict[int, int] | None = None) -> dict[int, FastLeaderElection]:
    verifier = QuorumMaj.of_sids(zxids)
    elections = {sid: FastLeaderElection(sid, QuorumConfigs(verifier)) for sid in zxids}
    for sid, fle in elections.items():
        fle.start(0, zxids[sid], (epochs or {}).get(sid, 0))
    deliver_all(elections, 0)
    for fle in elections.values():
        fle.tick(FINALIZE_WAIT_MS)
    return elections


def test_highest_zxid_wins_then_highest_sid() -> None:
    elections = run_election({1: 5, 2: 9, 3: 7})
    assert [f.state for f in elections.values()] == [ServerState.FOLLOWING, ServerState.LEADING,
                                                     ServerState.FOLLOWING]
    assert {f.decided.leader for f in elections.values() if f.decided} == {2}
    elections = run_election({1: 0, 2: 0, 3: 0})
    assert elections[3].state == ServerState.LEADING


def test_epoch_beats_zxid() -> None:
    elections = run_election({1: 0x100000009, 2: 0x200000001, 3: 0x100000003},
                             {1: 1, 2: 2, 3: 1})
    assert elections[2].state == ServerState.LEADING


def test_no_decision_before_finalize_wait() -> None:
    verifier = QuorumMaj.of_sids([1, 2, 3])
    elections = {sid: FastLeaderElection(sid, QuorumConfigs(verifier)) for sid in (1, 2, 3)}
    for fle in elections.values():
        fle.start(0, 0, 0)
    deliver_all(elections, 0)
    for fle in elections.values():
        assert fle.next_timer_ms() == FINALIZE_WAIT_MS
        fle.tick(FINALIZE_WAIT_MS - 1)
        assert fle.state == ServerState.LOOKING


def test_no_quorum_means_no_decision_and_doubling_timeouts() -> None:
    verifier = QuorumMaj.of_sids([1, 2, 3])
    fle = FastLeaderElection(1, QuorumConfigs(verifier))
    fle.start(0, 0, 0)
    for fle_send in fle.take_sends():
        if fle_send[0] == 1:
            fle.step(fle_send[1], 0)
    now, timeout = 0, NOTIFICATION_TIMEOUT_MS_MIN
    for _ in range(12):
        now += timeout
        assert fle.next_timer_ms() == now
        fle.tick(now)
        assert sorted(to for to, _ in fle.take_sends()) == [1, 2, 3]  # re-broadcast
        timeout = min(timeout * 2, NOTIFICATION_TIMEOUT_MS_MAX)
    assert timeout == NOTIFICATION_TIMEOUT_MS_MAX
    assert fle.state == ServerState.LOOKING


def test_settled_servers_answer_a_looking_server_which_then_follows() -> None:
    elections = run_election({1: 5, 2: 9, 3: 7})
    for fle in elections.values():
        fle.settle_epoch(1)
    late = elections[1]
    late.start(1000, 5, 0)  # restarted: a new round with a higher logical clock
    deliver_all(elections, 1000)
    assert late.state == ServerState.FOLLOWING
    assert late.decided is not None and late.decided.leader == 2
    assert late.logicalclock == elections[2].vote.election_epoch


def test_a_lone_settled_reply_without_the_leader_is_not_enough() -> None:
    elections = run_election({1: 5, 2: 9, 3: 7})
    late = elections[1]
    late.start(1000, 5, 0)
    deliver_all(elections, 1000, down={2})  # the leader does not answer
    assert late.state == ServerState.LOOKING


def test_looking_server_answers_a_behind_looking_server() -> None:
    verifier = QuorumMaj.of_sids([1, 2, 3])
    fle = FastLeaderElection(1, QuorumConfigs(verifier))
    fle.start(0, 0, 0)
    fle.start(10, 0, 0)  # logicalclock 2
    fle.take_sends()
    fle.step(Notification(2, ServerState.LOOKING, 2, 0, 1, 0), 10)
    (to, reply), = fle.take_sends()
    assert (to, reply.state, reply.election_epoch) == (2, ServerState.LOOKING, 2)


def test_non_voter_gets_an_answer_and_is_not_counted() -> None:
    verifier = QuorumMaj.of_sids([1, 2, 3])
    fle = FastLeaderElection(1, QuorumConfigs(verifier))
    fle.start(0, 0, 0)
    fle.take_sends()
    fle.step(Notification(9, ServerState.LOOKING, 9, 99, 5, 5), 0)
    (to, reply), = fle.take_sends()
    assert to == 9 and reply.leader == 1
    assert fle.vote.leader == 1


def test_a_peer_that_missed_my_better_vote_hears_it_at_once_not_at_my_timeout() -> None:
    """Survivors 1 and 3 of a dead leader 2: 3 went LOOKING first and its vote reached 1 while 1
    was still FOLLOWING (1 answers as a follower and keeps nothing). When 1 then sends its
    own vote, 3 answers with its better vote at once, so both agree within one finalize wait
    (before: 1 learned 3's vote only at 3's 200 ms notification timeout, 0.6 s failovers)."""
    verifier = QuorumMaj.of_sids([1, 2, 3])
    one, three = FastLeaderElection(1, QuorumConfigs(verifier)), FastLeaderElection(3, QuorumConfigs(verifier))
    three.start(0, 7, 1)
    for to, n in three.take_sends():  # the one to 1 is lost: 1 is not LOOKING yet
        if to == 3:
            three.step(n, 0)
    one.start(1, 7, 1)
    peers = {1: one, 3: three}
    for to, n in one.take_sends():
        if to in peers:
            peers[to].step(n, 1)
    replies = [n for to, n in three.take_sends() if to == 1]
    assert [(n.leader, n.state) for n in replies] == [(3, ServerState.LOOKING)]
    one.step(replies[0], 2)
    for to, n in one.take_sends():
        if to in peers:
            peers[to].step(n, 2)
    for fle in (one, three):
        fle.tick(2 + FINALIZE_WAIT_MS)
    assert (one.state, three.state) == (ServerState.FOLLOWING, ServerState.LEADING)
