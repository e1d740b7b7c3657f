"""Zab roles: the (phase, packet type) whitelist, sync-method choice, tolerated duplicates."""

from __future__ import annotations

import pytest

from jute.codes import OpCode
from jute.codes import QuorumPacketType as P
from jute.data import ACL, Id
from jute.quorum import LearnerInfo, QuorumPacket
from jute.txn import CreateTxn, TxnHeader
from pyzk.quorum.database import DiskImage, ZabDatabase
from pyzk.quorum.effects import Apply, Outbox, Persist, SendPacket, SessionsTouched
from pyzk.quorum.errors import PeerProtocolError
from pyzk.quorum.peer import Peer
from pyzk.quorum.verifier import QuorumMaj
from pyzk.quorum.zab import (
    FOLLOWER_ACCEPTS,
    LEADER_ACCEPTS,
    Follower,
    Leader,
    LearnerLink,
    LearnerStage,
    Phase,
    Probe,
    ZabConfig,
    ZabContext,
    _walk_committed_log,
)
from pyzk.quorum.zxid import make_zxid
from pyzk.storage.format import encode_txn_entry
from pyzk.storage.snapshot_format import parse_snap_stream

OPEN_ACL = [ACL(31, Id("world", "anyone"))]


def entry(zxid: int) -> bytes:
    return encode_txn_entry(TxnHeader(1, 0, zxid, 0, OpCode.CREATE),
                            CreateTxn(f"/n{zxid:x}", b"", OPEN_ACL, False, 1), None)


def context(my_id: int = 1, log: list[int] | None = None, epoch: int = 0) -> ZabContext:
    db = ZabDatabase(0, None, [(z, entry(z)) for z in (log or [])])
    return ZabContext(my_id, QuorumMaj.of_sids([1, 2, 3]), db, epoch, epoch, ZabConfig(), Outbox(), Probe())


def sent(ctx: ZabContext) -> list[tuple[int, P, int]]:
    return [(e.to, P(e.packet.type), e.packet.zxid) for e in ctx.outbox.effects if isinstance(e, SendPacket)]


def persist_all(ctx: ZabContext) -> None:
    for pid in sorted(ctx.on_persisted):
        ctx.on_persisted.pop(pid)()


def apply_committed(ctx: ZabContext) -> None:
    """What the host's Ready loop does: the committed txns enter the tree, one Apply each."""
    while ctx.to_apply:
        ctx.apply_next()


def logged_after_base(db: ZabDatabase) -> int:
    """Txns in the database's log after its snapshot (the window kept before it not counted)."""
    return sum(1 for zxid, _ in db.log if zxid > db.base_zxid)


def pkt(type_: P, zxid: int, data: bytes | None = None) -> QuorumPacket:
    return QuorumPacket(int(type_), zxid, data, None)


@pytest.mark.parametrize(("stage", "type_"), [
    (stage, type_) for stage in LearnerStage for type_ in P if type_ not in LEADER_ACCEPTS[stage]])
def test_leader_rejects_every_packet_outside_the_stage_whitelist(stage: LearnerStage, type_: P) -> None:
    leader = Leader(context(), 0)
    leader.learners[2] = LearnerLink(2, stage)
    with pytest.raises(PeerProtocolError):
        leader.step(2, pkt(type_, 0), 0)


@pytest.mark.parametrize(("phase_and_mode", "type_"), [
    (key, type_) for key in sorted(FOLLOWER_ACCEPTS, key=str) for type_ in P
    if type_ not in FOLLOWER_ACCEPTS[key]])
def test_follower_rejects_every_packet_outside_the_phase_whitelist(
        phase_and_mode: tuple[Phase, bool], type_: P) -> None:
    phase, has_mode = phase_and_mode
    follower = Follower(context(), 2, 0)
    follower.phase = phase
    follower.sync_mode = P.DIFF if has_mode else None
    with pytest.raises(PeerProtocolError):
        follower.step(2, pkt(type_, 0), b"", 0)


def test_unknown_packet_type_is_a_protocol_error() -> None:
    with pytest.raises(PeerProtocolError):
        Follower(context(), 2, 0).step(2, QuorumPacket(99, 0, None, None), b"", 0)


WINDOW = [(z, b"") for z in (make_zxid(1, 1), make_zxid(1, 2), make_zxid(1, 3), make_zxid(2, 1), make_zxid(2, 2))]


@pytest.mark.parametrize(("peer_last", "op", "queued"), [
    (make_zxid(1, 2), (P.DIFF, make_zxid(2, 2)), [make_zxid(1, 3), make_zxid(2, 1), make_zxid(2, 2)]),
    (make_zxid(2, 0), (P.DIFF, make_zxid(2, 2)), [make_zxid(2, 1), make_zxid(2, 2)]),
    (make_zxid(1, 4), None, []),  # uncommitted tail of an older epoch inside the window: SNAP
])
def test_queue_committed_proposals(peer_last: int, op: tuple[P, int] | None, queued: list[int]) -> None:
    got_op, got_queued = _walk_committed_log(WINDOW, peer_last, make_zxid(2, 2))
    assert got_op == op
    assert [z for z, _ in got_queued] == queued


def test_walk_truncates_to_the_previous_proposal_within_an_epoch() -> None:
    window = [(make_zxid(1, 1), b""), (make_zxid(1, 3), b"")]
    assert _walk_committed_log(window, make_zxid(1, 2), make_zxid(1, 3)) == (
        (P.TRUNC, make_zxid(1, 1)), [(make_zxid(1, 3), b"")])


def established_leader(log: list[int]) -> tuple[Leader, ZabContext]:
    """A leader of epoch 1 (from epoch 0) with followers 2 and 3 connected and synced."""
    ctx = context(1, log)
    leader = Leader(ctx, 0)
    for sid in (2, 3):
        leader.step(sid, pkt(P.FOLLOWERINFO, 0, b"\0" * 7 + bytes([sid]) + b"\0\1\0\0" + b"\0" * 8), 0)
    persist_all(ctx)  # acceptedEpoch durable -> LEADERINFO
    for sid in (2, 3):
        leader.step(sid, pkt(P.ACKEPOCH, log[-1] if log else 0, b"\0\0\0\0"), 0)
    persist_all(ctx)  # currentEpoch durable -> the leader's own NEWLEADER ack
    for sid in (2, 3):
        leader.step(sid, pkt(P.ACK, make_zxid(1, 0)), 0)
    assert leader.phase == Phase.BROADCAST
    return leader, ctx


def test_leader_discovery_and_sync_send_packets_in_wire_order() -> None:
    _, ctx = established_leader([])
    to_2 = [(t, z) for to, t, z in sent(ctx) if to == 2]
    assert to_2 == [(P.LEADERINFO, make_zxid(1, 0)), (P.DIFF, 0), (P.NEWLEADER, make_zxid(1, 0)),
                    (P.UPTODATE, -1)]
    persists = [e for e in ctx.outbox.effects if isinstance(e, Persist)]
    assert [(p.accepted_epoch, p.current_epoch) for p in persists] == [(1, None), (None, 1)]


def test_leader_waits_for_its_own_durable_write_and_tolerates_duplicate_acks() -> None:
    leader, ctx = established_leader([])
    zxid = leader.submit(5, 1, OpCode.CREATE, CreateTxn("/a", b"", OPEN_ACL, False, 1), 0)
    assert zxid == make_zxid(1, 1)
    leader.step(2, pkt(P.ACK, zxid), 0)
    assert not [e for e in ctx.outbox.effects if isinstance(e, Apply)]  # own write not durable
    persist_all(ctx)
    apply_committed(ctx)
    assert [e.zxid for e in ctx.outbox.effects if isinstance(e, Apply)] == [zxid]
    for duplicate in (zxid, zxid, make_zxid(1, 0), make_zxid(1, 77)):
        leader.step(3, pkt(P.ACK, duplicate), 0)  # committed, UPTODATE's ack, unknown: ignored
    assert [z for to, t, z in sent(ctx) if t == P.COMMIT] == [zxid, zxid]


def test_follower_acks_only_after_its_write_is_durable_and_ignores_pings_in_sync() -> None:
    ctx = context(2)
    follower = Follower(ctx, 1, 0)
    follower.connected_to(1, 0)
    follower.step(1, pkt(P.LEADERINFO, make_zxid(1, 0), b"\0\1\0\0"), b"", 0)
    assert (1, P.ACKEPOCH, 0) not in sent(ctx)  # acceptedEpoch not durable yet
    persist_all(ctx)
    assert (1, P.ACKEPOCH, 0) in sent(ctx)
    follower.step(1, pkt(P.DIFF, 0), b"", 0)
    follower.step(1, pkt(P.PROPOSAL, make_zxid(0, 1), entry(make_zxid(0, 1))), b"", 0)
    follower.step(1, pkt(P.COMMIT, make_zxid(0, 1)), b"", 0)
    follower.step(1, pkt(P.NEWLEADER, make_zxid(1, 0), b"cfg"), b"", 0)
    follower.step(1, pkt(P.PING, make_zxid(1, 0)), b"", 0)
    assert [t for _, t, _ in sent(ctx)] == [P.FOLLOWERINFO, P.ACKEPOCH]
    persist_all(ctx)
    follower.step(1, pkt(P.UPTODATE, -1), b"", 0)
    assert follower.phase == Phase.BROADCAST
    apply_committed(ctx)
    assert ctx.db.last_processed_zxid == make_zxid(0, 1)
    follower.step(1, pkt(P.PROPOSAL, make_zxid(1, 1), entry(make_zxid(1, 1))), b"", 0)
    assert (1, P.ACK, make_zxid(1, 1)) not in sent(ctx)
    persist_all(ctx)
    assert (1, P.ACK, make_zxid(1, 1)) in sent(ctx)


def test_follower_refuses_an_older_leader_epoch() -> None:
    ctx = context(2, epoch=3)
    follower = Follower(ctx, 1, 0)
    follower.step(1, pkt(P.LEADERINFO, make_zxid(2, 0), b"\0\1\0\0"), b"", 0)
    assert follower.failed


def test_ping_reply_carries_session_touches_to_the_leader() -> None:
    ctx = context(2)
    follower = Follower(ctx, 1, 0)
    follower.phase = Phase.BROADCAST
    follower.touch_session(0x1234, 30000)
    follower.step(1, pkt(P.PING, make_zxid(1, 7)), b"", 0)
    (reply,) = [e.packet for e in ctx.outbox.effects if isinstance(e, SendPacket)]
    assert (reply.type, reply.zxid, reply.data) == (P.PING, make_zxid(1, 7),
                                                    bytes.fromhex("0000000000001234 00007530"))
    leader, lctx = established_leader([])
    leader.step(2, reply, 0)
    assert [e for e in lctx.outbox.effects if isinstance(e, SessionsTouched)] == [
        SessionsTouched(2, ((0x1234, 30000),))]


def test_sync_waits_for_outstanding_proposals() -> None:
    leader, ctx = established_leader([])
    sync_request = bytes(8) + bytes(4) + OpCode.SYNC.to_bytes(4, "big") + b"\0\0\0\1/"
    leader.step(2, pkt(P.REQUEST, -1, sync_request), 0)
    assert sent(ctx)[-1] == (2, P.SYNC, 0)  # nothing outstanding: at once
    zxid = leader.submit(5, 1, OpCode.CREATE, CreateTxn("/a", b"", OPEN_ACL, False, 1), 0)
    leader.step(2, pkt(P.REQUEST, -1, sync_request), 0)
    assert sent(ctx)[-1] == (3, P.PROPOSAL, zxid)
    persist_all(ctx)
    leader.step(3, pkt(P.ACK, zxid), 0)
    assert sent(ctx)[-3:] == [(2, P.COMMIT, zxid), (3, P.COMMIT, zxid), (2, P.SYNC, 0)]


def test_leader_counts_a_proposal_ack_that_a_joining_learner_sends_before_its_newleader_ack() -> None:
    """A 3.8.0 learner logs the sync's proposals on NEWLEADER and its SyncThread may ACK one
    before the main thread ACKs NEWLEADER (ZOOKEEPER-4685); the Java leader tolerates that,
    and so must we (the learner used to be dropped and never got in under load)."""
    leader, ctx = established_leader([])
    leader.disconnected(3)
    zxid = leader.submit(5, 1, OpCode.CREATE, CreateTxn("/a", b"", OPEN_ACL, False, 1), 0)
    persist_all(ctx)  # the leader's own ACK; follower 2 is slow: the proposal is outstanding
    leader.step(3, pkt(P.FOLLOWERINFO, 0, b"\0" * 7 + b"\3" + b"\0\1\0\0" + b"\0" * 8), 0)
    leader.step(3, pkt(P.ACKEPOCH, make_zxid(1, 0), b"\0\0\0\1"), 0)
    to_3 = [(t, z) for to, t, z in sent(ctx) if to == 3]
    assert to_3[-2:] == [(P.PROPOSAL, zxid), (P.NEWLEADER, make_zxid(1, 0))]
    leader.step(3, pkt(P.ACK, zxid), 0)  # before the NEWLEADER ack: counted, not fatal
    apply_committed(ctx)
    assert [e.zxid for e in ctx.outbox.effects if isinstance(e, Apply)] == [zxid]
    assert (3, P.COMMIT, zxid) in sent(ctx)
    leader.step(3, pkt(P.ACK, make_zxid(1, 0)), 0)
    assert sent(ctx)[-1] == (3, P.UPTODATE, -1)
    with pytest.raises(PeerProtocolError):
        leader.disconnected(2)
        leader.step(2, pkt(P.FOLLOWERINFO, 0, b"\0" * 7 + b"\2" + b"\0\1\0\0" + b"\0" * 8), 0)
        leader.step(2, pkt(P.ACKEPOCH, make_zxid(1, 1), b"\0\0\0\1"), 0)
        leader.step(2, pkt(P.ACK, make_zxid(0, 0)), 0)  # an epoch start that is not NEWLEADER's


def test_a_leader_steps_down_for_a_learner_that_accepted_a_later_epoch() -> None:
    """The learner accepted epoch 2 from a leader that never established it: it refuses epoch
    1's LEADERINFO and would come back after every election this leader wins (simulator seed
    5732: two of five members locked out for good). The leader goes back to election."""
    leader, ctx = established_leader([])
    leader.disconnected(3)
    assert not leader.failed
    leader.step(3, pkt(P.FOLLOWERINFO, make_zxid(2, 0), b"\0" * 7 + b"\3" + b"\0\1\0\0" + b"\0" * 8), 0)
    assert leader.failed and "accepted epoch 2" in leader.failed
    assert (3, P.LEADERINFO, make_zxid(1, 0)) not in sent(ctx)[-1:]


# ---- periodic snapshots (snapCount) in every role --------------------------------------------


def test_a_snapshot_keeps_the_committed_log_window_and_replays_only_what_follows() -> None:
    zxids = [make_zxid(1, n) for n in range(1, 11)]
    db = ZabDatabase(0, None, [(z, entry(z)) for z in zxids[:6]])  # all six applied
    base = zxids[5]
    stream = db.snap_stream()
    db.rebase(base, keep=3)
    for z in zxids[6:]:
        db.append(z, entry(z))  # logged, not applied yet
    assert [z for z, _ in db.log] == zxids[3:]  # 3 before the snapshot, then all after it
    assert logged_after_base(db) == 4 and db.committed_window(10)[0][0] == zxids[3]
    # Rebuilt from the snapshot and the log: the window is not applied again, what follows is.
    rebuilt = ZabDatabase(base, parse_snap_stream(stream, 0)[0].tree, db.log)
    # /, /zookeeper, /zookeeper/quota, /zookeeper/config and the ten nodes, each once
    assert rebuilt.last_processed_zxid == zxids[-1] and len(rebuilt.tree.nodes) == 4 + 10
    for z in zxids[6:]:
        db.apply_committed(z)
    assert db.last_processed_zxid == zxids[-1] and len(db.tree.nodes) == 4 + 10


def test_after_snap_count_logged_txns_the_next_input_takes_a_snapshot() -> None:
    zxids = [make_zxid(1, n) for n in range(1, 30)]
    ctx = ZabContext(1, QuorumMaj.of_sids([1, 2, 3]), ZabDatabase(), 1, 1,
                     ZabConfig(snap_count=10, commit_log_count=2), Outbox(), Probe())
    for z in zxids:
        ctx.log(z, entry(z))
        ctx.db.apply_committed(z)
        if ctx.snapshot_due:
            break
    applied = ctx.db.last_processed_zxid
    assert ctx.snapshot_due and 5 < logged_after_base(ctx.db) <= 10  # snapCount/2 + a roll
    ctx.snapshot_if_due()
    persists = [e for e in ctx.outbox.effects if isinstance(e, Persist)]
    assert [p.snapshot[0] for p in persists if p.snapshot] == [applied]
    assert ctx.db.base_zxid == applied and logged_after_base(ctx.db) == 0 and len(ctx.db.log) == 2
    assert not ctx.snapshot_due


def test_snap_size_limit_makes_a_snapshot_due_by_logged_bytes_in_every_role() -> None:
    """snapSizeLimitInKb: with 1 KiB, a snapshot is due once 512 + a roll (< 512) bytes of txns
    were logged, long before snapCount."""
    ctx = ZabContext(1, QuorumMaj.of_sids([1, 2, 3]), ZabDatabase(), 1, 1,
                     ZabConfig(snap_count=100_000, snap_size_limit_kb=1), Outbox(), Probe())
    logged = 0
    for n in range(1, 200):
        z = make_zxid(1, n)
        ctx.log(z, entry(z))
        logged += len(entry(z))
        if ctx.snapshot_due:
            break
    assert ctx.snapshot_due and 512 < logged <= 1024 + len(entry(make_zxid(1, 1)))


def test_a_log_far_ahead_of_the_tree_does_not_snapshot_at_every_commit() -> None:
    """A follower logs many proposals before their commits arrive: snapshots come every
    snapCount/2 + roll txns logged since the last one started, as SyncRequestProcessor counts,
    not at each commit while the log is ahead of the tree by more than that."""
    zxids = [make_zxid(1, n) for n in range(1, 61)]
    ctx = ZabContext(1, QuorumMaj.of_sids([1, 2, 3]), ZabDatabase(), 1, 1,
                     ZabConfig(snap_count=10, commit_log_count=0), Outbox(), Probe())
    snapshots = []
    for i, z in enumerate(zxids):
        ctx.log(z, entry(z))
        if i >= 30:  # the tree follows 30 txns behind the log
            applied = zxids[i - 30]
            ctx.snapshot_if_due()
            ctx.db.apply_committed(applied)
    persists = [e for e in ctx.outbox.effects if isinstance(e, Persist) and e.snapshot]
    snapshots = [p.snapshot[0] for p in persists]
    assert 3 <= len(snapshots) <= 60 // 5, [hex(z) for z in snapshots]


def test_txns_committed_by_one_input_enter_the_tree_one_ready_at_a_time() -> None:
    """The leader's own durable write commits two txns at once: the host gets one Apply per
    Ready, and while it delivers Apply(z) the tree holds exactly z, so a read queued on a
    session behind its write z1 cannot see the session's next write z2 (per-session FIFO)."""
    leader, ctx = established_leader([])
    peer = Peer(1, QuorumMaj.of_sids([1, 2, 3]), DiskImage(), 0)
    peer.ctx, peer.outbox, peer.role = ctx, ctx.outbox, leader
    z1 = leader.submit(5, 1, OpCode.CREATE, CreateTxn("/a", b"", OPEN_ACL, False, 1), 0)
    z2 = leader.submit(5, 2, OpCode.CREATE, CreateTxn("/b", b"", OPEN_ACL, False, 2), 0)
    leader.step(2, pkt(P.ACK, z1), 0)
    leader.step(2, pkt(P.ACK, z2), 0)
    persist_all(ctx)  # the leader's own ACK of both: both commit in this one input
    assert list(ctx.to_apply) == [z1, z2] and ctx.db.last_processed_zxid < z1
    delivered = []
    for _ in range(100):
        ready = peer.ready()
        if ready is None:
            break
        peer.advance(ready)
        applies = [e.zxid for e in ready.effects if isinstance(e, Apply)]
        assert len(applies) <= 1
        for zxid in applies:
            assert ctx.db.last_processed_zxid == zxid
            delivered.append(zxid)
    assert delivered == [z1, z2]


# ---- DIFF from the txn log (learners behind the committed-log window) -----------------------


def leader_syncing_peer_2(factor: float, snapshot_bytes: int, peer_last: int) -> list[tuple[P, int]]:
    """A leader of epoch 2 with txns 1..10 of epoch 1 logged and a committed-log window of 2:
    what it sends learner 2, whose last zxid is `peer_last`."""
    zxids = [make_zxid(1, n) for n in range(1, 11)]
    db = ZabDatabase(0, None, [(z, entry(z)) for z in zxids])
    ctx = ZabContext(1, QuorumMaj.of_sids([1, 2, 3]), db, 1, 1,
                     ZabConfig(commit_log_count=2, snapshot_size_factor=factor), Outbox(), Probe())
    ctx.snapshot_bytes = snapshot_bytes
    leader = Leader(ctx, 0)
    leader.step(2, pkt(P.FOLLOWERINFO, 0, b"\0" * 7 + b"\2" + b"\0\1\0\0" + b"\0" * 8), 0)
    leader.step(3, pkt(P.FOLLOWERINFO, 0, b"\0" * 7 + b"\3" + b"\0\1\0\0" + b"\0" * 8), 0)
    persist_all(ctx)
    leader.step(2, pkt(P.ACKEPOCH, peer_last, b"\0\0\0\1"), 0)
    return [(t, z) for to, t, z in sent(ctx) if to == 2 and t not in (P.LEADERINFO, P.NEWLEADER)]


def test_a_learner_behind_the_window_gets_a_diff_of_the_logged_txns_within_the_size_factor() -> None:
    peer_last = make_zxid(1, 3)
    packets = leader_syncing_peer_2(0.33, 10_000, peer_last)
    assert packets[0] == (P.DIFF, make_zxid(1, 10))
    assert [z for t, z in packets if t == P.PROPOSAL] == [make_zxid(1, n) for n in range(4, 11)]
    assert [z for t, z in packets if t == P.COMMIT] == [make_zxid(1, n) for n in range(4, 11)]


@pytest.mark.parametrize(("factor", "snapshot_bytes", "peer_last"), [
    (-1.0, 10_000, make_zxid(1, 3)),  # snapshotSizeFactor < 0: txn log sync off
    (0.33, 300, make_zxid(1, 3)),  # the txns weigh more than a third of the snapshot
    (0.33, 10_000, make_zxid(0, 7)),  # not a logged zxid: no strictly-next txn to start from
])
def test_otherwise_the_learner_gets_a_snap(factor: float, snapshot_bytes: int, peer_last: int) -> None:
    assert leader_syncing_peer_2(factor, snapshot_bytes, peer_last)[0] == (P.SNAP, make_zxid(1, 10))


def test_with_no_snapshot_size_the_whole_log_is_used() -> None:
    """calculateTxnLogSizeLimit is 0 without a snapshot file: getProposalsFromTxnLog's 0 = no limit."""
    assert leader_syncing_peer_2(0.33, 0, make_zxid(1, 1))[0] == (P.DIFF, make_zxid(1, 10))


# ---- what a member does not understand: as a Java 3.8 member -----------------------------
# Apache 3.8 (LearnerHandler.run, Learner.registerWithLeader/syncWithLeader,
# Follower.processPacket): a leader drops a learner whose handshake packet is not the one due
# (FOLLOWERINFO, ACKEPOCH, the ACK of NEWLEADER); once the learner is synced its loop logs a
# type it does not handle and reads on. A follower fails (LOOKING, a new election) when the
# leader's first packet is not LEADERINFO; inside the sync (after DIFF/TRUNC/SNAP) it skips a
# type it does not know, in broadcast it logs it and reads on. The protocol version of
# FOLLOWERINFO and LEADERINFO is read, never refused, and a longer LearnerInfo is read up to
# its 20 bytes. (Java exits the process when the first sync packet is none of DIFF, TRUNC,
# SNAP; pyzk drops the link and elects: never a crash.) compat/test_quorum_bad_input.py holds
# a raw learner against both kinds of leader.

UNKNOWN_TYPE = 99  # no QuorumPacket type of 3.8 (they end at 19, INFORMANDACTIVATE)
NEWER_PROTOCOL = 0x20000
PROTOCOL_3_8 = b"\x00\x01\x00\x00"


def followerinfo(sid: int, protocol: int = 0x10000, extra: bytes = b"") -> QuorumPacket:
    return pkt(P.FOLLOWERINFO, 0, LearnerInfo(sid, protocol, 0).encode() + extra)


def test_a_synced_learners_unknown_packet_type_is_logged_and_the_link_kept() -> None:
    leader, _ = established_leader([])
    leader.step(2, QuorumPacket(UNKNOWN_TYPE, 0, b"future", None), 0)
    assert leader.learners[2].stage == LearnerStage.SYNCED and not leader.failed
    leader.step(2, pkt(P.PING, 0, b""), 0)  # the link goes on as before


@pytest.mark.parametrize("stage", [LearnerStage.INFO, LearnerStage.ACKEPOCH, LearnerStage.NEWLEADER_ACK])
def test_an_unknown_packet_type_in_the_handshake_drops_the_learner(stage: LearnerStage) -> None:
    ctx = context()
    leader = Leader(ctx, 0)
    if stage != LearnerStage.INFO:
        leader.step(2, followerinfo(2), 0)
        persist_all(ctx)
    if stage == LearnerStage.NEWLEADER_ACK:
        leader.step(2, pkt(P.ACKEPOCH, 0, b"\x00\x00\x00\x00"), 0)
    assert leader.learners[2].stage == stage if stage != LearnerStage.INFO else 2 not in leader.learners
    with pytest.raises(PeerProtocolError):
        leader.step(2, QuorumPacket(UNKNOWN_TYPE, 0, None, None), 0)


def test_a_newer_protocol_version_in_followerinfo_is_answered_with_3_8s() -> None:
    ctx = context()
    leader = Leader(ctx, 0)
    leader.step(2, followerinfo(2, NEWER_PROTOCOL, extra=b"\x00" * 8), 0)
    persist_all(ctx)
    (leaderinfo,) = [e.packet for e in ctx.outbox.effects if isinstance(e, SendPacket)]
    assert (leaderinfo.type, leaderinfo.zxid, leaderinfo.data) == (P.LEADERINFO, make_zxid(1, 0), PROTOCOL_3_8)
    assert leader.learners[2].stage == LearnerStage.ACKEPOCH


def following() -> tuple[Follower, ZabContext]:
    ctx = context(2)
    follower = Follower(ctx, 1, 0)
    follower.connected_to(1, 0)
    return follower, ctx


def test_a_newer_protocol_version_in_leaderinfo_is_acked() -> None:
    follower, ctx = following()
    follower.step(1, pkt(P.LEADERINFO, make_zxid(1, 0), NEWER_PROTOCOL.to_bytes(4, "big")), b"", 0)
    persist_all(ctx)
    assert [t for _, t, _ in sent(ctx)] == [P.FOLLOWERINFO, P.ACKEPOCH] and not follower.failed


def test_a_follower_skips_unknown_packet_types_in_sync_and_in_broadcast() -> None:
    follower, ctx = following()
    follower.step(1, pkt(P.LEADERINFO, make_zxid(1, 0), PROTOCOL_3_8), b"", 0)
    persist_all(ctx)
    follower.step(1, pkt(P.DIFF, 0), b"", 0)
    follower.step(1, QuorumPacket(UNKNOWN_TYPE, 0, None, None), b"", 0)  # inside the sync
    follower.step(1, pkt(P.NEWLEADER, make_zxid(1, 0), b""), b"", 0)
    persist_all(ctx)
    follower.step(1, pkt(P.UPTODATE, -1), b"", 0)
    assert follower.phase == Phase.BROADCAST
    follower.step(1, QuorumPacket(UNKNOWN_TYPE, make_zxid(1, 0), b"future", None), b"", 0)
    assert not follower.failed
    follower.step(1, pkt(P.PING, make_zxid(1, 0)), b"", 0)
    assert sent(ctx)[-1][1] == P.PING  # still answering the leader


def test_a_follower_fails_on_an_unknown_packet_before_its_sync_starts() -> None:
    follower, ctx = following()
    with pytest.raises(PeerProtocolError):
        follower.step(1, QuorumPacket(UNKNOWN_TYPE, 0, None, None), b"", 0)  # instead of LEADERINFO
    follower.step(1, pkt(P.LEADERINFO, make_zxid(1, 0), PROTOCOL_3_8), b"", 0)
    persist_all(ctx)
    with pytest.raises(PeerProtocolError):
        follower.step(1, QuorumPacket(UNKNOWN_TYPE, 0, None, None), b"", 0)  # instead of DIFF/TRUNC/SNAP
