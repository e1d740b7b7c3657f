"""The ensemble commit stages over a stand-in driver: zxids the leader preps equal the zxids
Zab assigns, learner REQUESTs are prepped like local ones, followers forward and reply on apply."""

from __future__ import annotations

from typing import Any

from jute.codes import OpCode
from jute.codes import QuorumPacketType as P
from jute.data import ACL, Id
from jute.proto import CreateRequest, ReplyHeader, RequestHeader, SyncRequest
from jute.quorum import QuorumPacket
from jute.txn import CreateSessionTxn, TxnHeader
from pyzk.config import parse_config
from pyzk.pipeline.prep import Prep
from pyzk.quorum.database import ZabDatabase
from pyzk.quorum.streams import (
    decode_request,
    decode_revalidate_reply,
    encode_request,
    encode_revalidate,
)
from pyzk.server.ensemble_commit import (
    FollowerCommit,
    LeaderCommit,
    LearnerSessionTracker,
)
from pyzk.server.zkserver import ClientSession, ZooKeeperServer
from pyzk.storage.format import encode_txn_entry

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

    def submit(self, session_id: int, cxid: int, txn_type: int, txn: object) -> int:
        self.last_proposed += 1
        zxid = self.last_proposed
        self.db.append(zxid, encode_txn_entry(TxnHeader(session_id, cxid, zxid, 5, txn_type), txn, None))
        self.commit.on_apply(zxid, self.db.apply_committed(zxid))
        return zxid

    def send_packet(self, to: int, packet: QuorumPacket) -> None:
        self.sent.append((to, packet))

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
