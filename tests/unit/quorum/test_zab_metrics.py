"""Zab's ServerMetrics: Apache's counters on the right events, sync and election times."""

from __future__ import annotations

from jute.codes import OpCode, ServerState
from jute.codes import QuorumPacketType as P
from jute.txn import CreateTxn
from pyzk.quorum.database import DiskImage, ZabDatabase
from pyzk.quorum.effects import Outbox, SendNotification
from pyzk.quorum.peer import Peer
from pyzk.quorum.verifier import QuorumMaj
from pyzk.quorum.zab import Follower, Leader, Observer, Phase, Probe, ZabConfig, ZabContext
from pyzk.quorum.zxid import make_zxid
from tests.unit.quorum.test_zab import OPEN_ACL, context, entry, established_leader, persist_all, pkt


def test_a_leader_counts_proposals_commits_and_diff_syncs() -> None:
    leader, ctx = established_leader([])
    metrics = ctx.metrics
    assert (metrics.diff_count, metrics.snap_count) == (2, 0)  # two learners synced by DIFF
    zxid = leader.submit(5, 1, OpCode.CREATE, CreateTxn("/a", b"", OPEN_ACL, False, 1), 0)
    assert metrics.proposal_count == 1 and metrics.commit_count == 0
    persist_all(ctx)
    leader.step(2, pkt(P.ACK, zxid), 0)
    assert metrics.commit_count == 1
    assert metrics.learner_commit_received_count == metrics.learner_proposal_received_count == 0


def test_a_learner_synced_by_snap_counts_a_snap_not_a_diff() -> None:
    db = ZabDatabase(0, None, [(make_zxid(1, n), entry(make_zxid(1, n))) for n in range(1, 4)])
    ctx = ZabContext(1, QuorumMaj.of_sids([1, 2, 3]), db, 1, 1, ZabConfig(snapshot_size_factor=-1.0),
                     Outbox(), Probe())  # txn-log sync off: a learner at 0x0 needs a SNAP
    leader = Leader(ctx, 0)
    for sid in (2, 3):
        leader.step(sid, pkt(P.FOLLOWERINFO, 0, b"\0" * 7 + bytes([sid]) + b"\0\1\0\0" + b"\0" * 8), 0)
    persist_all(ctx)
    leader.step(2, pkt(P.ACKEPOCH, 0, b"\0\0\0\1"), 0)
    leader.step(3, pkt(P.ACKEPOCH, make_zxid(1, 3), b"\0\0\0\1"), 0)
    assert (ctx.metrics.snap_count, ctx.metrics.diff_count) == (1, 1)


def follower_in_broadcast(kind: type[Follower], sync_ms: int) -> tuple[Follower, object]:
    ctx = context(2)
    learner = kind(ctx, 1, 0)
    learner.connected_to(1, 0)
    ctx.now_ms = 1000
    learner.step(1, pkt(P.LEADERINFO, make_zxid(1, 0), b"\0\1\0\0"), b"", 1000)
    persist_all(ctx)
    learner.step(1, pkt(P.DIFF, 0), b"", 1000)
    learner.step(1, pkt(P.PROPOSAL, make_zxid(0, 1), entry(make_zxid(0, 1))), b"", 1000)
    learner.step(1, pkt(P.COMMIT, make_zxid(0, 1)), b"", 1000)  # in sync: not counted
    learner.step(1, pkt(P.NEWLEADER, make_zxid(1, 0), b""), b"", 1000)
    persist_all(ctx)
    ctx.now_ms = 1000 + sync_ms
    learner.step(1, pkt(P.UPTODATE, -1), b"", 1000 + sync_ms)
    assert learner.phase == Phase.BROADCAST
    return learner, ctx


def test_a_follower_counts_broadcast_proposals_and_commits_and_its_sync_time() -> None:
    follower, ctx = follower_in_broadcast(Follower, 40)
    m = ctx.metrics  # type: ignore[attr-defined]
    assert (m.follower_sync_time.count, m.follower_sync_time.total, m.observer_sync_time.count) == (1, 40, 0)
    assert m.learner_proposal_received_count == m.learner_commit_received_count == 0
    zxid = make_zxid(1, 1)
    follower.step(1, pkt(P.PROPOSAL, zxid, entry(zxid)), b"", 2000)
    follower.step(1, pkt(P.COMMIT, zxid), b"", 2000)
    assert (m.learner_proposal_received_count, m.learner_commit_received_count) == (1, 1)
    assert m.proposal_count == m.commit_count == 0


def test_an_observer_counts_informs_as_commits_and_its_own_sync_time() -> None:
    observer, ctx = follower_in_broadcast(Observer, 25)
    m = ctx.metrics  # type: ignore[attr-defined]
    assert (m.observer_sync_time.total, m.follower_sync_time.count) == (25, 0)
    zxid = make_zxid(1, 1)
    observer.step(1, pkt(P.INFORM, zxid, entry(zxid)), b"", 2000)
    assert (m.learner_commit_received_count, m.learner_proposal_received_count) == (1, 0)


def test_a_peer_counts_looking_and_times_its_election() -> None:
    peers = {sid: Peer(sid, QuorumMaj.of_sids([1, 2, 3]), DiskImage(None, [], None, None), 5000)
             for sid in (1, 2)}
    assert all((p.metrics.looking_count, p.metrics.election_time.count) == (1, 0) for p in peers.values())
    now = 5000
    for _ in range(200):  # deliver notifications between 1 and 2 (3 is down), ticking the clock
        if all(p.state != ServerState.LOOKING for p in peers.values()):
            break
        now += 10
        for peer in peers.values():
            peer.tick(now)
        for peer in peers.values():
            ready = peer.ready()
            if ready is None:
                continue
            peer.advance(ready)
            for effect in ready.effects:
                if isinstance(effect, SendNotification) and effect.to in peers:
                    peers[effect.to].step_notification(effect.notification, now)
    assert {p.state for p in peers.values()} == {ServerState.LEADING, ServerState.FOLLOWING}
    for peer in peers.values():
        assert peer.ctx.metrics is peer.metrics
        assert peer.metrics.looking_count == 1
        assert peer.metrics.election_time.count == 1
        assert 0 <= peer.metrics.election_time.total <= now - 5000
