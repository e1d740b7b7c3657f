"""The read-only server over a tree a read-write server wrote: who may connect, what it
answers, and how its local sessions end (values checked against Apache ZooKeeper 3.8)."""

from __future__ import annotations

from typing import Any

from jute.codes import Err, OpCode
from jute.data import ACL, Id
from jute.proto import (
    ConnectRequest,
    ConnectResponse,
    CreateRequest,
    GetDataRequest,
    GetDataResponse,
    ReplyHeader,
    RequestHeader,
    SetDataRequest,
    SyncRequest,
)
from pyzk.config import parse_config
from pyzk.pipeline.clientsession import ClientSession
from pyzk.pipeline.prep import Prepared
from pyzk.pipeline.readonly import ReadOnlyZooKeeperServer, read_only_grace_ms
from pyzk.pipeline.zkserver import ZooKeeperServer
from pyzk.sessions import generate_password
from pyzk.tree.datatree import DataTree

CONFIG = parse_config("tickTime=2000\ndataDir=/tmp/unused\nclientPort=2181\n")
OPEN_ACL = [ACL(31, Id("world", "anyone"))]


class Clock:
    def __init__(self, now_ms: int = 1000) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


class ApplyAtOnce:
    """A commit stage that applies every txn as soon as it is submitted."""

    def __init__(self, server: ZooKeeperServer) -> None:
        self.server = server

    def submit(self, item: Any) -> None:
        assert isinstance(item, Prepared)
        self.server.apply_committed(item)


class Client:
    def __init__(self, server: ZooKeeperServer) -> None:
        self.frames: list[bytes] = []
        self.closed = False
        self.conn = ClientSession("127.0.0.1", 5000, self.frames.append, self._close)
        server.all_connections.add(self.conn)
        self.server = server

    def _close(self) -> None:
        self.closed = True

    def connect(self, *, read_only: bool | None, session_id: int = 0, timeout_ms: int = 10000) -> None:
        passwd = generate_password(session_id) if session_id else bytes(16)
        self.server.connect(self.conn, ConnectRequest(0, 0, timeout_ms, session_id, passwd, read_only).encode())

    def request(self, xid: int, op: int, record: Any = None) -> ReplyHeader:
        body = RequestHeader(xid, op).encode() + (record.encode() if record is not None else b"")
        self.server.handle_packet(self.conn, body)
        reply, _ = ReplyHeader.decode_from(self.frames[-1], 0)
        return reply


def written_tree() -> DataTree:
    """A tree with /ro = b"hello" and one global session, written by a read-write server."""
    tree = DataTree()
    server = ZooKeeperServer(CONFIG, tree, now_ms=Clock(), wall_ms=lambda: 5)
    server.commit = ApplyAtOnce(server)
    writer = Client(server)
    writer.connect(read_only=False)
    assert writer.conn.established
    assert writer.request(1, OpCode.CREATE, CreateRequest("/ro", b"hello", OPEN_ACL, 0)).err == 0
    return tree


def read_only_server(tree: DataTree, clock: Clock | None = None) -> ReadOnlyZooKeeperServer:
    # Started later than the writer: its session ids (clock-seeded) differ from the global one.
    return ReadOnlyZooKeeperServer(CONFIG, tree, now_ms=clock or Clock(60_000), wall_ms=lambda: 5)


def test_grace_period_is_at_least_two_seconds() -> None:
    assert read_only_grace_ms(500) == 2000
    assert read_only_grace_ms(2000) == 2000
    assert read_only_grace_ms(3000) == 3000


def test_clients_that_did_not_set_read_only_are_closed_without_a_response() -> None:
    server = read_only_server(written_tree())
    for flag in (False, None):  # a modern client without the flag, an old (<= 3.3) client
        client = Client(server)
        client.connect(read_only=flag)
        assert client.closed and client.frames == []


def test_read_only_client_gets_a_local_session_and_the_read_only_flag() -> None:
    tree = written_tree()
    zxid_before, sessions_before = tree.last_processed_zxid, dict(tree.sessions)
    server = read_only_server(tree)
    client = Client(server)
    client.connect(read_only=True)
    rsp = ConnectResponse.from_bytes(client.frames[0])
    assert client.conn.established and rsp.readOnly is True and rsp.timeOut == 10000
    assert rsp.sessionId in server.sessions and rsp.sessionId not in tree.sessions
    assert (tree.last_processed_zxid, tree.sessions) == (zxid_before, sessions_before)


def test_reads_are_served_and_writes_syncs_and_checks_get_notreadonly() -> None:
    tree = written_tree()
    server = read_only_server(tree)
    client = Client(server)
    client.connect(read_only=True)
    reply = client.request(1, OpCode.GET_DATA, GetDataRequest("/ro", False))
    assert reply.err == 0
    assert GetDataResponse.decode_from(client.frames[-1], 16)[0].data == b"hello"
    refused = [
        (OpCode.CREATE, CreateRequest("/x", b"", OPEN_ACL, 0)),
        (OpCode.SET_DATA, SetDataRequest("/ro", b"v", -1)),
        (OpCode.SYNC, SyncRequest("/")),
        (OpCode.CHECK, None),
        (OpCode.MULTI, None),
    ]
    for xid, (op, record) in enumerate(refused, start=2):
        reply = client.request(xid, op, record)
        assert (reply.xid, reply.zxid, reply.err) == (xid, tree.last_processed_zxid, Err.NOTREADONLY)
    assert "/x" not in tree.nodes and tree.nodes["/ro"].data == b"hello"
    assert not client.closed


def test_a_global_session_may_not_reconnect_in_read_only_mode() -> None:
    tree = written_tree()
    (global_session_id,) = tree.sessions
    client = Client(read_only_server(tree))
    client.connect(read_only=True, session_id=global_session_id)
    assert client.closed and client.frames == []


def test_close_session_ends_the_local_session_and_a_resume_is_told_it_expired() -> None:
    server = read_only_server(written_tree())
    client = Client(server)
    client.connect(read_only=True)
    session_id = client.conn.session_id
    reply = client.request(7, OpCode.CLOSE_SESSION)
    assert (reply.xid, reply.err) == (7, 0) and client.closed and session_id not in server.sessions
    again = Client(server)
    again.connect(read_only=True, session_id=session_id)
    rsp = ConnectResponse.from_bytes(again.frames[0])
    assert (rsp.timeOut, rsp.sessionId, rsp.readOnly) == (0, 0, True) and again.closed


def test_a_live_local_session_resumes_on_a_new_connection() -> None:
    server = read_only_server(written_tree())
    first = Client(server)
    first.connect(read_only=True)
    second = Client(server)
    second.connect(read_only=True, session_id=first.conn.session_id)
    rsp = ConnectResponse.from_bytes(second.frames[0])
    assert rsp.sessionId == first.conn.session_id and rsp.readOnly is True
    assert first.closed and second.conn.established


def test_idle_local_sessions_expire_and_their_connections_close() -> None:
    clock = Clock(60_000)
    server = read_only_server(written_tree(), clock)
    client = Client(server)
    client.connect(read_only=True, timeout_ms=4000)
    clock.now_ms += 3000
    client.request(-2, OpCode.PING)  # traffic pushes the deadline out
    clock.now_ms += 3000
    server.expire_sessions()
    assert not client.closed
    clock.now_ms += 4000
    server.expire_sessions()
    assert client.closed and client.conn.session_id not in server.sessions


def test_a_read_write_server_answers_read_only_false() -> None:
    server = ZooKeeperServer(CONFIG, DataTree(), now_ms=Clock(), wall_ms=lambda: 5)
    server.commit = ApplyAtOnce(server)
    client = Client(server)
    client.connect(read_only=True)
    assert ConnectResponse.from_bytes(client.frames[0]).readOnly is False
