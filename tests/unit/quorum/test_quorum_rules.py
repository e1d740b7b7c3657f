"""Small quorum rules against brute force: zxid arithmetic, QuorumMaj, vote order and equality."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from jute.codes import ServerState
from pyzk.quorum.election import Vote, total_order_predicate, votes_equal
from pyzk.quorum.verifier import QuorumMaj
from pyzk.quorum.zxid import counter_of, epoch_of, is_epoch_start, make_zxid

epochs = st.integers(0, 0x7FFFFFFF)
counters = st.integers(0, 0xFFFFFFFF)


@given(epochs, counters)
def test_zxid_round_trip(epoch: int, counter: int) -> None:
    zxid = make_zxid(epoch, counter)
    assert (epoch_of(zxid), counter_of(zxid)) == (epoch, counter)
    assert is_epoch_start(zxid) == (counter == 0)
    assert zxid == epoch * 2**32 + counter


def test_make_zxid_keeps_only_32_counter_bits() -> None:
    assert make_zxid(1, 2**32 + 5) == make_zxid(1, 5)


@given(st.integers(1, 7), st.sets(st.integers(0, 9)))
def test_is_quorum_is_strict_majority_of_voters(size: int, sids: set[int]) -> None:
    verifier = QuorumMaj.of_sids(range(1, size + 1))
    members = sids & set(range(1, size + 1))
    assert verifier.is_quorum(sids) == (2 * len(members) > size)


def test_any_two_quorums_intersect() -> None:
    for size in range(1, 7):
        verifier = QuorumMaj.of_sids(range(1, size + 1))
        all_sids = range(1, size + 1)
        subsets = [set(c) for r in range(size + 1) for c in itertools.combinations(all_sids, r)]
        quorums = [s for s in subsets if verifier.is_quorum(s)]
        assert all(a & b for a in quorums for b in quorums)


@given(st.dictionaries(st.integers(1, 5), st.integers(0, 20)))
def test_committed_zxid_is_the_largest_zxid_a_quorum_acked(acked: dict[int, int]) -> None:
    verifier = QuorumMaj.of_sids(range(1, 6))
    candidates = [z for z in set(acked.values())
                  if verifier.is_quorum(sid for sid, a in acked.items() if a >= z)]
    assert verifier.committed_zxid(acked) == max(candidates, default=-1)


def test_observers_never_count() -> None:
    verifier = QuorumMaj({1: "a", 2: "b", 3: "c"}, {4: "d"})
    assert not verifier.is_quorum({1, 4})
    assert verifier.is_quorum({1, 2})


def test_config_text_is_quorummaj_tostring() -> None:
    verifier = QuorumMaj({2: "h:2:3:participant", 1: "h:1:2:participant"}, version=0x100000000)
    assert verifier.config_text() == ("server.1=h:1:2:participant\nserver.2=h:2:3:participant\n"
                                      "version=100000000")


votes = st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3))  # (sid, zxid, epoch)


@given(votes, votes)
def test_total_order_predicate_is_epoch_then_zxid_then_sid(new: tuple[int, int, int],
                                                           cur: tuple[int, int, int]) -> None:
    expected = (new[2] > cur[2] or (new[2] == cur[2] and new[1] > cur[1])
                or (new[2] == cur[2] and new[1] == cur[1] and new[0] > cur[0]))
    assert total_order_predicate(*new, *cur) == expected


@given(st.lists(votes, min_size=1, max_size=6))
def test_total_order_predicate_is_a_strict_total_order(vote_list: list[tuple[int, int, int]]) -> None:
    best = vote_list[0]
    for v in vote_list[1:]:
        if total_order_predicate(*v, *best):
            best = v
    for v in vote_list:
        assert not total_order_predicate(*v, *best)
        assert not (total_order_predicate(*v, *best) and total_order_predicate(*best, *v))


def test_vote_equality_per_state() -> None:
    looking = Vote(1, 5, 2, 1)
    assert votes_equal(looking, Vote(1, 5, 2, 1))
    assert not votes_equal(looking, Vote(1, 5, 3, 1))
    following = Vote(1, 5, 2, 1, ServerState.FOLLOWING)
    leading = Vote(1, 9, 7, 1, ServerState.LEADING)
    assert votes_equal(following, leading)  # settled votes: only leader and peerEpoch
    assert not votes_equal(following, Vote(1, 5, 2, 2, ServerState.LEADING))
    assert votes_equal(Vote(1, 5, 2, 1, ServerState.FOLLOWING, version=0),
                       Vote(1, 0, 0, 9, ServerState.LEADING))  # one version-0 side: leader only
