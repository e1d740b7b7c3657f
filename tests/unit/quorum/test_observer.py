"""Observers (Q/Observer.java, the leader's INFORM path): they sync as learners do, vote for
nothing, and get each txn once committed."""

from __future__ import annotations

import pytest

from jute.codes import OpCode, ServerState
from jute.codes import QuorumPacketType as P
from jute.data import ACL, Id
from jute.quorum import LearnerInfo
from jute.txn import CreateTxn, TxnHeader
from pyzk.quorum.database import ZabDatabase
from pyzk.quorum.effects import Apply, Established, Outbox, Persist, SendPacket
from pyzk.quorum.election import FastLeaderElection
from pyzk.quorum.errors import PeerProtocolError
from pyzk.quorum.messages import Notification
from pyzk.quorum.verifier import QuorumConfigs, QuorumMaj
from pyzk.quorum.zab import OBSERVER_ACCEPTS, Leader, Observer, Phase, Probe, ZabConfig, ZabContext
from pyzk.quorum.zxid import make_zxid
from pyzk.storage.format import encode_txn_entry
from tests.unit.quorum.test_zab import persist_all, pkt, sent

OPEN_ACL = [ACL(31, Id("world", "anyone"))]
# Voters 1-3, observer 4.
CONFIG = QuorumMaj({sid: f"127.0.0.1:{2888 + sid}:{3888 + sid}:participant" for sid in (1, 2, 3)},
                   {4: "127.0.0.1:2892:3892:observer"})


def entry(zxid: int, path: str = "/o") -> bytes:
    return encode_txn_entry(TxnHeader(1, 0, zxid, 0, OpCode.CREATE), CreateTxn(path, b"", OPEN_ACL, False, 1), None)


def context(my_id: int) -> ZabContext:
    return ZabContext(my_id, CONFIG, ZabDatabase(), 0, 0, ZabConfig(), Outbox(), Probe())


def info(sid: int) -> bytes:
    return LearnerInfo(sid, 0x10000, 0).encode()


def leader_with_observer() -> tuple[Leader, ZabContext]:
    """Leader 1 of epoch 1 with followers 2, 3 and observer 4, all synced."""
    ctx = context(1)
    leader = Leader(ctx, 0)
    for sid in (2, 3):
        leader.step(sid, pkt(P.FOLLOWERINFO, 0, info(sid)), 0)
    leader.step(4, pkt(P.OBSERVERINFO, 0, info(4)), 0)
    persist_all(ctx)
    for sid in (2, 3, 4):
        leader.step(sid, pkt(P.ACKEPOCH, 0, b"\0\0\0\0"), 0)
    persist_all(ctx)
    for sid in (2, 3, 4):
        leader.step(sid, pkt(P.ACK, make_zxid(1, 0)), 0)
    assert leader.phase == Phase.BROADCAST
    return leader, ctx


def test_an_observer_syncs_gets_informs_and_its_acks_count_for_no_quorum() -> None:
    leader, ctx = leader_with_observer()
    to_4 = [(t, z) for to, t, z in sent(ctx) if to == 4]
    assert to_4 == [(P.LEADERINFO, make_zxid(1, 0)), (P.DIFF, 0), (P.NEWLEADER, make_zxid(1, 0)), (P.UPTODATE, -1)]
    assert leader.monitor_values()["synced_observers"] == 1
    assert leader.monitor_values()["synced_followers"] == 2
    ctx.outbox.effects.clear()

    zxid = leader.submit(5, 1, OpCode.CREATE, CreateTxn("/a", b"", OPEN_ACL, False, 1), 0)
    assert zxid is not None
    assert sorted((to, t) for to, t, _ in sent(ctx)) == [(2, P.PROPOSAL), (3, P.PROPOSAL)]
    persist_all(ctx)  # the leader's own vote
    leader.step(4, pkt(P.ACK, zxid), 0)  # an observer's ACK is no vote
    assert zxid in leader.outstanding
    leader.step(2, pkt(P.ACK, zxid), 0)
    assert zxid not in leader.outstanding
    commits = {(e.to, P(e.packet.type)): e.packet for e in ctx.outbox.effects
               if isinstance(e, SendPacket) and e.packet.zxid == zxid and e.packet.type != P.PROPOSAL}
    assert sorted(commits) == [(2, P.COMMIT), (3, P.COMMIT), (4, P.INFORM)]
    assert commits[(4, P.INFORM)].data == ctx.db.entry(zxid)


def test_a_new_observer_gets_no_outstanding_proposal_but_its_inform() -> None:
    leader, ctx = leader_with_observer()
    leader.step(4, pkt(P.PING, 0), 0)
    leader.disconnected(4)
    zxid = leader.submit(5, 1, OpCode.CREATE, CreateTxn("/a", b"", OPEN_ACL, False, 1), 0)
    ctx.outbox.effects.clear()
    leader.step(4, pkt(P.OBSERVERINFO, make_zxid(1, 0), info(4)), 0)
    leader.step(4, pkt(P.ACKEPOCH, 0, b"\xff\xff\xff\xff"), 0)
    assert [t for to, t, _ in sent(ctx) if to == 4] == [P.LEADERINFO, P.DIFF, P.NEWLEADER]
    leader.step(4, pkt(P.ACK, make_zxid(1, 0)), 0)
    persist_all(ctx)
    leader.step(3, pkt(P.ACK, zxid), 0)
    assert [(t, z) for to, t, z in sent(ctx) if to == 4][3:] == [(P.UPTODATE, -1), (P.INFORM, zxid)]


def observer_in_broadcast() -> tuple[Observer, ZabContext]:
    ctx = context(4)
    observer = Observer(ctx, 1, 0)
    observer.connected_to(1, 0)
    assert sent(ctx)[-1] == (1, P.OBSERVERINFO, 0)
    observer.step(1, pkt(P.LEADERINFO, make_zxid(1, 0), b"\0\1\0\0"), b"", 0)
    persist_all(ctx)
    observer.step(1, pkt(P.DIFF, 0), b"", 0)
    observer.step(1, pkt(P.NEWLEADER, make_zxid(1, 0)), b"", 0)
    persist_all(ctx)
    observer.step(1, pkt(P.UPTODATE, -1), b"", 0)
    assert observer.phase == Phase.BROADCAST
    established = [e for e in ctx.outbox.effects if isinstance(e, Established)]
    assert [e.state for e in established] == [ServerState.OBSERVING]
    return observer, ctx


def test_an_observer_acks_only_newleader_and_uptodate_and_applies_informs() -> None:
    observer, ctx = observer_in_broadcast()
    assert [(t, z) for _, t, z in sent(ctx)] == [
        (P.OBSERVERINFO, 0), (P.ACKEPOCH, 0), (P.ACK, make_zxid(1, 0)), (P.ACK, make_zxid(1, 0))]
    ctx.outbox.effects.clear()
    first, second = make_zxid(1, 1), make_zxid(1, 2)
    observer.step(1, pkt(P.INFORM, first, entry(first, "/a")), b"", 0)
    observer.step(1, pkt(P.INFORM, second, entry(second, "/b")), b"", 0)
    persist_all(ctx)
    while ctx.to_apply:
        ctx.apply_next()
    assert not sent(ctx)  # no ACK of an INFORM
    assert [e.zxid for e in ctx.outbox.effects if isinstance(e, Apply)] == [first, second]
    logged = [z for e in ctx.outbox.effects if isinstance(e, Persist) for z, _ in e.entries]
    assert logged == [first, second]
    assert "/b" in ctx.db.tree.nodes


def test_an_observer_ignores_proposal_and_commit_in_broadcast() -> None:
    observer, ctx = observer_in_broadcast()
    zxid = make_zxid(1, 1)
    observer.step(1, pkt(P.PROPOSAL, zxid, entry(zxid)), b"", 0)
    observer.step(1, pkt(P.COMMIT, zxid), b"", 0)
    assert ctx.db.last_logged_zxid == 0 and not ctx.to_apply


def test_informs_between_newleader_and_uptodate_are_logged_and_applied_at_uptodate() -> None:
    ctx = context(4)
    observer = Observer(ctx, 1, 0)
    observer.connected_to(1, 0)
    observer.step(1, pkt(P.LEADERINFO, make_zxid(1, 0), b"\0\1\0\0"), b"", 0)
    persist_all(ctx)
    observer.step(1, pkt(P.DIFF, 0), b"", 0)
    observer.step(1, pkt(P.NEWLEADER, make_zxid(1, 0)), b"", 0)
    zxid = make_zxid(1, 1)
    observer.step(1, pkt(P.INFORM, zxid, entry(zxid)), b"", 0)
    assert ctx.db.last_logged_zxid == 0
    persist_all(ctx)
    observer.step(1, pkt(P.UPTODATE, -1), b"", 0)
    while ctx.to_apply:
        ctx.apply_next()
    assert ctx.db.last_processed_zxid == zxid
    assert [(t, z) for _, t, z in sent(ctx)][-1] == (P.ACK, make_zxid(1, 0))


@pytest.mark.parametrize(("phase_and_mode", "type_"), [
    (key, type_) for key in sorted(OBSERVER_ACCEPTS, key=str) for type_ in P
    if type_ not in OBSERVER_ACCEPTS[key]])
def test_an_observer_rejects_every_packet_outside_the_phase_whitelist(
        phase_and_mode: tuple[Phase, bool], type_: P) -> None:
    phase, has_mode = phase_and_mode
    observer = Observer(context(4), 1, 0)
    observer.phase = phase
    observer.sync_mode = P.DIFF if has_mode else None
    with pytest.raises(PeerProtocolError):
        observer.step(1, pkt(type_, 0), b"", 0)


def test_a_non_voter_follows_the_voters_leader_as_an_observer() -> None:
    fle = FastLeaderElection(4, QuorumConfigs(CONFIG))
    fle.start(0, 0, 0)
    assert sorted(to for to, _ in fle.take_sends()) == [1, 2, 3]  # to the voters only
    for sid in (1, 2):
        state = ServerState.LEADING if sid == 2 else ServerState.FOLLOWING
        fle.step(Notification(sid, state, 2, 5, 1, 1), 0)
    assert fle.state == ServerState.OBSERVING and fle.decided is not None and fle.decided.leader == 2
