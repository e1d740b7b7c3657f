"""The ensemble commit stages over a stand-in driver: zxids the leader preps equal the zxids
Zab assigns, learner REQUESTs are prepped like local ones, followers forward and reply on apply."""

from __future__ import annotations

from typing import Any

from jute.codes import Err, OpCode
from jute.codes import QuorumPacketType as P
from jute.data import ACL, Id
from jute.multi import encode_multi_request
from jute.proto import (
    ConnectRequest,
    ConnectResponse,
    CreateRequest,
    ReplyHeader,
    RequestHeader,
    SetDataRequest,
    SyncRequest,
)
from jute.quorum import QuorumPacket
from jute.txn import CreateSessionTxn, ErrorTxn, TxnHeader
from pyzk.config import parse_config
from pyzk.pipeline.clientsession import ClientSession
from pyzk.pipeline.commit.follower import FollowerCommit, LearnerSessionTracker
from pyzk.pipeline.commit.leader import LeaderCommit
from pyzk.pipeline.prep import Prep
from pyzk.pipeline.zkserver import ZooKeeperServer
from pyzk.quorum.database import ZabDatabase
from pyzk.quorum.effects import Apply
from pyzk.quorum.streams import (
    decode_request,
    decode_revalidate_reply,
    encode_request,
    encode_revalidate,
)
from pyzk.sessions import SessionTracker, generate_password
from pyzk.storage.format import decode_txn_entry, encode_txn_entry

CONFIG = parse_config("tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/tmp/unused\nclientPort=2181\n"
                      "server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\n"
                      "server.3=127.0.0.1:2890:3890\n", myid_text="2")


class StandInDriver:
    """What the commit stages use of QuorumDriver: a leader that logs and commits at once."""

    def __init__(self, epoch: int = 1) -> None:
        self.peer = self
        self.db = ZabDatabase()
        self.last_proposed = epoch << 32
        self.sent: list[tuple[int, QuorumPacket]] = []
        self.touched: list[tuple[int, int]] = []
        self.commit: Any = None

    def submit(self, session_id: int, cxid: int, txn_type: int, txn: object, zxid: int | None = None) -> int:
        self.last_proposed += 1
        assert zxid is None or zxid == self.last_proposed, "prep stamped another zxid than Zab's next"
        zxid = self.last_proposed
        self.db.append(zxid, encode_txn_entry(TxnHeader(session_id, cxid, zxid, 5, txn_type), txn, None))
        applied = self.db.apply_committed(zxid)
        self.commit.on_apply(Apply(zxid, applied.hdr, applied.txn, applied.result, 0))
        return zxid

    def send_packet(self, to: int, packet: QuorumPacket) -> bool:
        self.sent.append((to, packet))
        return self.link_up

    link_up = True

    def touch_session(self, session_id: int, timeout_ms: int) -> None:
        self.touched.append((session_id, timeout_ms))


def leader(driver: StandInDriver) -> ZooKeeperServer:
    server = ZooKeeperServer(CONFIG, driver.db.tree, now_ms=lambda: 1000, wall_ms=lambda: 5)
    server.mode = "leader"
    server.commit = driver.commit = LeaderCommit(server, driver, driver.last_proposed)
    return server


def session(server: ZooKeeperServer) -> tuple[ClientSession, list[bytes]]:
    frames: list[bytes] = []
    conn = ClientSession("127.0.0.1", 5000, frames.append, lambda: None)
    server.all_connections.add(conn)
    server.connect(conn, b"\x00" * 4 + b"\x00" * 8 + (30000).to_bytes(4, "big") + b"\x00" * 8
                   + (16).to_bytes(4, "big") + b"\x00" * 16 + b"\x00")
    return conn, frames


def _create(path: str) -> bytes:
    return CreateRequest(path, b"v", [ACL(31, Id("world", "anyone"))], 0).encode()


def test_leader_preps_the_zxids_zab_assigns_and_answers_on_apply() -> None:
    driver = StandInDriver()
    server = leader(driver)
    conn, frames = session(server)
    assert conn.established and server.tree.last_processed_zxid == 0x100000001
    server.handle_packet(conn, RequestHeader(1, OpCode.CREATE).encode() + _create("/a"))
    reply, _ = ReplyHeader.decode_from(frames[-1], 0)
    assert (reply.xid, reply.zxid, reply.err) == (1, 0x100000002, 0)
    assert server.next_zxid == 0x100000003
    assert server.tree.nodes["/a"].czxid == 0x100000002


def test_leader_preps_a_learner_request_with_its_auth_ids() -> None:
    driver = StandInDriver()
    server = leader(driver)
    commit = server.commit
    sid = 0x0300000000000001
    commit.on_learner_request(3, QuorumPacket(P.REQUEST, -1, encode_request(sid, 0, OpCode.CREATE_SESSION,
                                                                            (4000).to_bytes(4, "big")), None))
    assert server.tree.sessions[sid] == 4000 and sid in server.sessions
    commit.on_learner_request(3, QuorumPacket(P.REQUEST, -1, encode_request(sid, 7, OpCode.CREATE, _create("/f")),
                                              [Id("ip", "10.0.0.1")]))
    assert server.tree.nodes["/f"].czxid == 0x100000002
    commit.on_learner_request(3, QuorumPacket(P.REQUEST, -1, encode_request(sid, 8, OpCode.CREATE, b"\x00"), None))
    assert driver.db.tree.last_processed_zxid == 0x100000003  # an ErrorTxn still takes a zxid
    commit.on_learner_request(3, QuorumPacket(P.REVALIDATE, -1, encode_revalidate(sid, 4000), None))
    to, answer = driver.sent[-1]
    assert to == 3 and decode_revalidate_reply(answer.data) == (sid, True)


def test_follower_forwards_writes_and_syncs_and_replies_when_they_apply() -> None:
    driver = StandInDriver()
    server = ZooKeeperServer(CONFIG, driver.db.tree, now_ms=lambda: 1000, wall_ms=lambda: 5)
    server.mode = "follower"
    server.sessions = LearnerSessionTracker(2000, 2, 1000, driver.db.tree, driver.touch_session)
    follower = FollowerCommit(server, driver, leader_sid=1)
    server.commit = follower
    driver.commit = follower
    conn, frames = session(server)
    _, request = driver.sent[-1]
    session_id, _, op, body = decode_request(request.data)
    assert (op, body, conn.established) == (OpCode.CREATE_SESSION, (30000).to_bytes(4, "big"), False)
    driver.submit(session_id, 0, OpCode.CREATE_SESSION, CreateSessionTxn(30000))  # the leader commits it
    assert conn.established
    server.handle_packet(conn, RequestHeader(4, OpCode.CREATE).encode() + _create("/w"))
    server.handle_packet(conn, RequestHeader(5, OpCode.SYNC).encode() + SyncRequest("/w").encode())
    forwarded = [decode_request(p.data) for _, p in driver.sent[1:]]
    assert [(c, o) for _, c, o, _ in forwarded] == [(4, OpCode.CREATE), (5, OpCode.SYNC)]
    assert driver.sent[1][1].authinfo == [Id("ip", "127.0.0.1")]
    frames_before = len(frames)
    leader_txn = Prep(driver.db.tree, server.registry).prep_write(
        OpCode.CREATE, CreateRequest.from_bytes(forwarded[0][3]), session_id, 4, (), 0x100000002, 5)
    driver.submit(session_id, 4, leader_txn.hdr.type, leader_txn.txn)
    assert ReplyHeader.decode_from(frames[-1], 0)[0].xid == 4 and len(frames) == frames_before + 1
    follower.on_sync_released()
    assert ReplyHeader.decode_from(frames[-1], 0)[0].xid == 5
    server.handle_packet(conn, RequestHeader(6, OpCode.PING).encode())
    assert driver.touched[-1] == (session_id, 30000)


def test_learner_sessions_are_valid_while_the_replicated_tree_holds_them() -> None:
    db = ZabDatabase()
    touched: list[tuple[int, int]] = []
    tracker = LearnerSessionTracker(2000, 2, 0, db.tree, lambda s, t: touched.append((s, t)))
    assert not tracker.touch(42, 10)
    db.tree.sessions[42] = 6000
    assert tracker.touch(42, 10) and touched == [(42, 6000)]
    tracker.set_closing(42)
    assert not tracker.touch(42, 20)


# ---- sessions that move, and replies that belong to their requests (issue 9) ---------------


def follower(driver: StandInDriver) -> tuple[ZooKeeperServer, FollowerCommit]:
    server = ZooKeeperServer(CONFIG, driver.db.tree, now_ms=lambda: 1000, wall_ms=lambda: 5)
    server.mode = "follower"
    server.sessions = LearnerSessionTracker(2000, 2, 1000, driver.db.tree, driver.touch_session)
    commit = FollowerCommit(server, driver, leader_sid=1)
    server.commit = driver.commit = commit
    return server, commit


def reconnect(server: ZooKeeperServer, session_id: int, passwd: bytes | None = None
              ) -> tuple[ClientSession, list[bytes]]:
    frames: list[bytes] = []
    conn = ClientSession("127.0.0.1", 5001, frames.append, lambda: None)
    server.all_connections.add(conn)
    body = ConnectRequest(0, 0, 30000, session_id,
                          generate_password(session_id) if passwd is None else passwd, False).encode()
    server.connect(conn, body)
    return conn, frames


def replies(frames: list[bytes]) -> list[tuple[int, int]]:
    """(xid, err) of every reply frame (not the ConnectResponse, not notifications)."""
    out = []
    for frame in frames:
        if len(frame) >= 16 and len(frame) != 37:  # a ConnectResponse is 37 bytes here
            header, _ = ReplyHeader.decode_from(frame, 0)
            out.append((header.xid, header.err))
    return out


def established_follower_session(driver: StandInDriver) -> tuple[ZooKeeperServer, FollowerCommit, int]:
    server, commit = follower(driver)
    conn, _ = session(server)
    session_id = conn.session_id
    driver.submit(session_id, 0, OpCode.CREATE_SESSION, CreateSessionTxn(30000))
    assert conn.established
    return server, commit, session_id


def leader_create(driver: StandInDriver, session_id: int, cxid: int, path: str) -> None:
    """The leader commits a create of `session_id`/`cxid` that some server forwarded."""
    txn = Prep(driver.db.tree, _registry()).prep_write(
        OpCode.CREATE, CreateRequest.from_bytes(_create(path)), session_id, cxid, (), driver.last_proposed + 1, 5)
    driver.submit(session_id, cxid, txn.hdr.type, txn.txn)


def _registry() -> Any:
    from pyzk.acl import AuthRegistry

    return AuthRegistry.from_properties({})


def test_follower_answers_only_the_request_a_txn_belongs_to() -> None:
    """The txn of another server's request with the same session (other cxid) answers nobody
    here; our own request is answered when its own txn arrives."""
    driver = StandInDriver()
    server, _commit, session_id = established_follower_session(driver)
    conn = server.connections[session_id]
    frames: list[bytes] = []
    conn._send_frame = frames.append
    server.handle_packet(conn, RequestHeader(7, OpCode.CREATE).encode() + _create("/mine"))
    leader_create(driver, session_id, 3, "/theirs")  # e.g. from the session's previous server
    assert replies(frames) == [] and not conn.closed
    leader_create(driver, session_id, 7, "/mine")
    assert replies(frames) == [(7, 0)]


def test_a_reconnected_client_never_gets_the_reply_of_its_old_connection() -> None:
    """kazoo starts xids from 1 on every connection: the old connection's in-flight xid 1 and
    the new connection's xid 1 are different requests, and each reply goes to its own."""
    driver = StandInDriver()
    server, commit, session_id = established_follower_session(driver)
    old = server.connections[session_id]
    server.handle_packet(old, RequestHeader(1, OpCode.CREATE).encode() + _create("/old"))
    new, frames = reconnect(server, session_id)
    assert old.closed and not new.established  # waiting for the leader's REVALIDATE answer
    _, packet = driver.sent[-1]
    assert packet.type == P.REVALIDATE and decode_revalidate_reply(packet.data + b"\x00")[0] == session_id
    commit.on_revalidated(session_id, True)
    assert new.established
    server.handle_packet(new, RequestHeader(1, OpCode.CREATE).encode() + _create("/new"))
    leader_create(driver, session_id, 1, "/old")  # the old connection's create commits first
    assert replies(frames) == []
    leader_create(driver, session_id, 1, "/new")
    assert replies(frames) == [(1, 0)]
    assert ReplyHeader.decode_from(frames[-1], 0)[0].zxid == driver.last_proposed


def test_follower_reconnect_waits_for_the_leader_and_refuses_without_it() -> None:
    driver = StandInDriver()
    server, commit, session_id = established_follower_session(driver)
    conn, frames = reconnect(server, session_id)
    assert frames == [] and not conn.established
    commit.on_revalidated(session_id, False)  # the leader says the session is gone
    assert conn.closed and ConnectResponse.from_bytes(frames[0]).timeOut == 0
    driver.link_up = False
    conn, frames = reconnect(server, session_id)
    assert conn.closed and frames == []  # no leader to ask: refuse rather than guess
    conn, frames = reconnect(server, session_id, passwd=b"x" * 16)
    assert conn.closed and ConnectResponse.from_bytes(frames[0]).sessionId == 0


def test_leader_moves_the_owner_on_revalidate_and_answers_sessionmoved_to_the_old_one() -> None:
    driver = StandInDriver()
    server = leader(driver)
    conn, frames = session(server)
    session_id = conn.session_id
    server.commit.on_learner_request(3, QuorumPacket(P.REVALIDATE, -1, encode_revalidate(session_id, 30000), None))
    assert decode_revalidate_reply(driver.sent[-1][1].data) == (session_id, True)
    assert server.sessions.owner_of(session_id) == 3
    before = len(frames)
    server.handle_packet(conn, RequestHeader(9, OpCode.CREATE).encode() + _create("/late"))
    assert "/late" not in server.tree.nodes and conn.closed and len(frames) == before  # closed, no reply
    # Through follower 3 (the owner) the session writes; through follower 2 it may not.
    server.commit.on_learner_request(3, QuorumPacket(P.REQUEST, -1, encode_request(session_id, 1, OpCode.CREATE,
                                                                                   _create("/via3")), None))
    server.commit.on_learner_request(2, QuorumPacket(P.REQUEST, -1, encode_request(session_id, 2, OpCode.CREATE,
                                                                                   _create("/via2")), None))
    assert "/via3" in server.tree.nodes and "/via2" not in server.tree.nodes


def test_follower_closes_the_connection_on_sessionmoved() -> None:
    driver = StandInDriver()
    server, _commit, session_id = established_follower_session(driver)
    conn = server.connections[session_id]
    frames: list[bytes] = []
    conn._send_frame = frames.append
    server.handle_packet(conn, RequestHeader(4, OpCode.SET_DATA).encode() + b"\x00" * 12)
    moved = Prep(driver.db.tree, _registry()).prep_error(session_id, 4, Err.SESSIONMOVED, driver.last_proposed + 1, 5)
    driver.submit(session_id, 4, moved.hdr.type, moved.txn)
    assert conn.closed and replies(frames) == []


def test_a_txn_that_does_not_match_the_next_due_request_closes_the_connection() -> None:
    """An invariant violation is never a silent mismatch: logged, connection closed."""
    driver = StandInDriver()
    server = leader(driver)
    conn, frames = session(server)
    server.handle_packet(conn, RequestHeader(1, OpCode.CREATE).encode() + _create("/x"))
    assert replies(frames) == [(1, 0)]
    # A request whose txn was recorded for this connection but is not what it must answer next.
    from pyzk.pipeline.clientsession import PendingRequest

    stray = PendingRequest(2, OpCode.CREATE, None, True, 0.0)
    conn.pending.append(PendingRequest(3, OpCode.CREATE, None, True, 0.0))
    conn.pending.append(stray)
    server.origins.add(driver.last_proposed + 1, conn, stray)
    leader_create(driver, conn.session_id, 2, "/y")
    assert conn.closed and replies(frames) == [(1, 0)]


def test_a_local_session_upgrades_before_its_first_ephemeral_create() -> None:
    """localSessionsEnabled: no createSession txn for a new session; an ephemeral create sends
    the session's createSession to the leader first, and the create is answered on apply."""
    driver = StandInDriver()
    server, _commit = follower(driver)
    server.local_sessions = SessionTracker(2000, 2, 1000)
    server.upgrade_local_sessions = True
    conn, frames = session(server)
    session_id = conn.session_id
    assert conn.established and driver.sent == [] and session_id in server.local_sessions
    server.handle_packet(conn, RequestHeader(1, OpCode.CREATE).encode()
                         + CreateRequest("/e", b"", [ACL(31, Id("world", "anyone"))], 1).encode())
    sent = [decode_request(p.data)[:3] for _, p in driver.sent]
    assert sent == [(session_id, 0, OpCode.CREATE_SESSION), (session_id, 1, OpCode.CREATE)]
    assert session_id not in server.local_sessions and session_id in server.sessions
    driver.submit(session_id, 0, OpCode.CREATE_SESSION, CreateSessionTxn(30000))
    assert replies(frames) == []  # the upgrade's txn answers nobody
    leader_create(driver, session_id, 1, "/e")
    assert replies(frames) == [(1, 0)]


def test_an_ephemeral_on_a_local_session_without_upgrading_is_refused_in_order() -> None:
    driver = StandInDriver()
    server, _commit = follower(driver)
    server.local_sessions = SessionTracker(2000, 2, 1000)
    conn, frames = session(server)
    server.handle_packet(conn, RequestHeader(1, OpCode.CREATE).encode() + _create("/p"))
    server.handle_packet(conn, RequestHeader(2, OpCode.CREATE).encode()
                         + CreateRequest("/e", b"", [ACL(31, Id("world", "anyone"))], 1).encode())
    assert replies(frames) == []  # the refusal waits behind the create in flight
    leader_create(driver, conn.session_id, 1, "/p")
    assert replies(frames) == [(1, 0), (2, Err.EPHEMERALONLOCALSESSION)]
    server.handle_packet(conn, RequestHeader(3, OpCode.CLOSE_SESSION).encode())
    assert replies(frames)[-1] == (3, 0) and conn.closed and conn.session_id not in server.local_sessions


def test_a_new_leaders_sync_with_nothing_outstanding_is_answered_at_once() -> None:
    """Right after establishment lastProposed is the epoch's base zxid (counter 0), which no txn
    has: a sync then must not wait for it (else the next write's reply overtakes the sync's)."""
    from pyzk.pipeline.commit import Barrier

    driver = StandInDriver(epoch=2)
    server = leader(driver)
    assert server.commit.last_proposed_zxid == 0x200000000 > server.tree.last_processed_zxid
    done: list[bool] = []
    server.commit.submit(Barrier(lambda: done.append(True)))
    assert done == [True]


def test_a_txn_proposed_before_the_session_moved_here_never_answers_the_new_connection() -> None:
    """The session's old connection was on another server, with create xid 1 in flight; the
    leader proposed it before it answered our REVALIDATE, and commits it after the new
    connection's own xid 1 was forwarded. Same (session, cxid), but not this connection's."""
    from jute.txn import CreateTxn, TxnHeader

    driver = StandInDriver()
    server, commit, session_id = established_follower_session(driver)
    driver.last_proposed += 1
    old_zxid = driver.last_proposed
    driver.db.append(old_zxid, encode_txn_entry(TxnHeader(session_id, 1, old_zxid, 5, OpCode.CREATE),
                                                CreateTxn("/old", b"v", [ACL(31, Id("world", "anyone"))], False, 1),
                                                None))
    new, frames = reconnect(server, session_id)
    commit.on_revalidated(session_id, True)
    server.handle_packet(new, RequestHeader(1, OpCode.CREATE).encode() + _create("/new"))
    applied = driver.db.apply_committed(old_zxid)
    commit.on_apply(Apply(old_zxid, applied.hdr, applied.txn, applied.result, 0))
    assert replies(frames) == [] and not new.closed
    leader_create(driver, session_id, 1, "/new")
    assert replies(frames) == [(1, 0)]
    assert ReplyHeader.decode_from(frames[-1], 0)[0].zxid == driver.last_proposed


def test_a_txn_of_another_op_with_the_head_requests_cxid_is_not_its_answer() -> None:
    """Simulator seed 905: the session moved away from this follower while its old connection
    still waited for a setData (xid 15); the new connection's create with xid 15 (xids
    restart) committed first. It answers nobody here; the setData's own SESSIONMOVED does."""
    driver = StandInDriver()
    server, _commit, session_id = established_follower_session(driver)
    old = server.connections[session_id]
    frames: list[bytes] = []
    old._send_frame = frames.append
    server.handle_packet(old, RequestHeader(15, OpCode.SET_DATA).encode() + SetDataRequest("/k", b"v", -1).encode())
    leader_create(driver, session_id, 15, "/made-elsewhere")
    assert not old.closed and replies(frames) == []
    moved = Prep(driver.db.tree, _registry()).prep_error(session_id, 15, Err.SESSIONMOVED, driver.last_proposed + 1, 5)
    driver.submit(session_id, 15, moved.hdr.type, moved.txn)
    assert old.closed and replies(frames) == []


def test_a_txn_proposed_before_a_request_was_forwarded_never_answers_it() -> None:
    """Simulator seed 159: the session's old connection was on a partitioned server, whose
    setData xid 46 reached the leader after the session had moved here and became a
    SESSIONMOVED ErrorTxn (any op accepts an ErrorTxn). It was proposed before this
    connection forwarded its own xid 46 and committed after: not this request's answer."""
    from jute.txn import ErrorTxn, TxnHeader

    driver = StandInDriver()
    server, commit, session_id = established_follower_session(driver)
    new, frames = reconnect(server, session_id)
    commit.on_revalidated(session_id, True)
    driver.last_proposed += 1
    late_zxid = driver.last_proposed
    driver.db.append(late_zxid, encode_txn_entry(TxnHeader(session_id, 46, late_zxid, 5, OpCode.ERROR),
                                                 ErrorTxn(Err.SESSIONMOVED), None))
    server.handle_packet(new, RequestHeader(46, OpCode.SET_DATA).encode() + SetDataRequest("/k", b"v", -1).encode())
    applied = driver.db.apply_committed(late_zxid)
    commit.on_apply(Apply(late_zxid, applied.hdr, applied.txn, applied.result, 0))
    assert replies(frames) == [] and not new.closed


def test_leader_refuses_an_ephemeral_of_another_servers_local_session() -> None:
    """A Java follower forwards a local session's ephemeral create when upgrading is off (it
    answers its client EPHEMERALONLOCALSESSION itself). Apache's leader checks an ephemeral
    create with checkGlobalSession: a session it does not track is SESSIONEXPIRED, so no node
    is left behind that no closeSession would ever delete. Other writes of that session pass
    (checkSession exempts another server's local sessions)."""
    driver = StandInDriver()
    server = leader(driver)
    server.local_sessions = SessionTracker(2000, 2, 1000)
    commit = server.commit
    local_of_server_3 = 0x0300000000000007
    ephemeral = CreateRequest("/e", b"", [ACL(31, Id("world", "anyone"))], 1).encode()
    multi = encode_multi_request([(OpCode.CREATE, CreateRequest.from_bytes(ephemeral))])
    commit.on_learner_request(3, QuorumPacket(P.REQUEST, -1, encode_request(local_of_server_3, 1, OpCode.CREATE,
                                                                            ephemeral), None))
    commit.on_learner_request(3, QuorumPacket(P.REQUEST, -1, encode_request(local_of_server_3, 2, OpCode.MULTI,
                                                                            multi), None))
    commit.on_learner_request(3, QuorumPacket(P.REQUEST, -1, encode_request(local_of_server_3, 3, OpCode.CREATE,
                                                                            _create("/p")), None))
    assert "/e" not in server.tree.nodes and "/p" in server.tree.nodes
    (create_hdr, create_txn, _), (multi_hdr, multi_txn, _) = (
        decode_txn_entry(driver.db.entry(0x100000000 + n) or b"") for n in (1, 2))
    assert (create_hdr.type, create_txn.err) == (OpCode.ERROR, Err.SESSIONEXPIRED)
    assert multi_hdr.type == OpCode.MULTI
    assert [(sub.type, ErrorTxn.from_bytes(sub.data).err) for sub in multi_txn.txns] == [
        (OpCode.ERROR, Err.SESSIONEXPIRED)]
