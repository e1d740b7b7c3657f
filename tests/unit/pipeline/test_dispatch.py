"""The dispatch and reply path of ZooKeeperServer, standalone, over a commit stage the test
releases by hand: per-session order, watch-before-reply, replies that belong to their
requests, and other sessions never waiting."""

from __future__ import annotations

from typing import Any

from jute.codes import EventType, OpCode, Xid
from jute.data import ACL, Id
from jute.proto import (
    CreateRequest,
    GetDataRequest,
    GetDataResponse,
    ReplyHeader,
    RequestHeader,
    SetDataRequest,
)
from pyzk.config import parse_config
from pyzk.pipeline.clientsession import ClientSession
from pyzk.pipeline.commit import Barrier
from pyzk.pipeline.zkserver import ZooKeeperServer
from pyzk.tree.datatree import DataTree

CONFIG = parse_config("tickTime=2000\ndataDir=/tmp/unused\nclientPort=2181\n")
OPEN = [ACL(31, Id("world", "anyone"))]


class HeldCommit:
    """A commit stage that makes txns durable only when the test says so."""

    def __init__(self, server: ZooKeeperServer) -> None:
        self.server = server
        self.queue: list[Any] = []

    def submit(self, item: Any) -> None:
        self.queue.append(item)

    def release(self, count: int | None = None) -> None:
        batch = self.queue[:count] if count is not None else list(self.queue)
        del self.queue[:len(batch)]
        for item in batch:
            if isinstance(item, Barrier):
                item.on_done()
            else:
                self.server.apply_committed(item)


def standalone() -> tuple[ZooKeeperServer, HeldCommit]:
    server = ZooKeeperServer(CONFIG, DataTree(), now_ms=lambda: 1000, wall_ms=lambda: 5)
    commit = HeldCommit(server)
    server.commit = commit
    return server, commit


def connect(server: ZooKeeperServer, commit: HeldCommit) -> tuple[ClientSession, list[bytes]]:
    frames: list[bytes] = []
    conn = ClientSession("127.0.0.1", 4000, frames.append, lambda: None)
    server.all_connections.add(conn)
    server.connect(conn, b"\x00" * 4 + b"\x00" * 8 + (30000).to_bytes(4, "big") + b"\x00" * 8
                   + (16).to_bytes(4, "big") + b"\x00" * 16 + b"\x00")
    commit.release()  # the createSession txn
    assert conn.established
    frames.clear()
    return conn, frames


def headers(frames: list[bytes]) -> list[tuple[int, int]]:
    return [(h.xid, h.err) for h in (ReplyHeader.decode_from(f, 0)[0] for f in frames)]


def send(server: ZooKeeperServer, conn: ClientSession, xid: int, op: int, record: Any) -> None:
    server.handle_packet(conn, RequestHeader(xid, op).encode() + record.encode())


def test_a_read_waits_behind_its_sessions_write_and_replies_keep_request_order() -> None:
    server, commit = standalone()
    conn, frames = connect(server, commit)
    send(server, conn, 1, OpCode.CREATE, CreateRequest("/a", b"1", OPEN, 0))
    send(server, conn, 2, OpCode.GET_DATA, GetDataRequest("/a", False))
    send(server, conn, 3, OpCode.SET_DATA, SetDataRequest("/a", b"2", 0))
    send(server, conn, 4, OpCode.GET_DATA, GetDataRequest("/a", False))
    assert frames == []  # the read may not overtake the create before it
    commit.release(1)
    assert headers(frames) == [(1, 0), (2, 0)]  # the read ran right after its write applied
    commit.release()
    assert headers(frames) == [(1, 0), (2, 0), (3, 0), (4, 0)]
    assert GetDataResponse.decode_from(frames[1], 16)[0].data == b"1"
    assert GetDataResponse.decode_from(frames[3], 16)[0].data == b"2"


def test_other_sessions_never_wait_for_a_sessions_writes() -> None:
    server, commit = standalone()
    writer, _ = connect(server, commit)
    reader, read_frames = connect(server, commit)
    send(server, writer, 1, OpCode.CREATE, CreateRequest("/b", b"", OPEN, 0))
    send(server, reader, 1, OpCode.GET_DATA, GetDataRequest("/", False))
    assert headers(read_frames) == [(1, 0)]  # answered while the other session's write is held


def test_the_watch_event_reaches_the_watcher_before_the_write_is_answered() -> None:
    server, commit = standalone()
    conn, frames = connect(server, commit)
    send(server, conn, 1, OpCode.CREATE, CreateRequest("/w", b"", OPEN, 0))
    commit.release()
    send(server, conn, 2, OpCode.GET_DATA, GetDataRequest("/w", True))
    send(server, conn, 3, OpCode.SET_DATA, SetDataRequest("/w", b"x", -1))
    commit.release()
    assert [x for x, _ in headers(frames)] == [1, 2, Xid.NOTIFICATION, 3]
    event = frames[2][16:]
    assert int.from_bytes(event[:4], "big", signed=True) == EventType.NODE_DATA_CHANGED


def test_each_write_is_answered_with_its_own_txn() -> None:
    """Two writes in flight on one connection: each reply carries the zxid of its own txn."""
    server, commit = standalone()
    conn, frames = connect(server, commit)
    send(server, conn, 7, OpCode.CREATE, CreateRequest("/x", b"", OPEN, 0))
    send(server, conn, 8, OpCode.CREATE, CreateRequest("/x", b"", OPEN, 0))  # NODEEXISTS
    zxids = [item.hdr.zxid for item in commit.queue]
    commit.release()
    replies = [ReplyHeader.decode_from(f, 0)[0] for f in frames]
    assert [(r.xid, r.zxid) for r in replies] == [(7, zxids[0]), (8, zxids[1])]
    assert replies[1].err == -110


def test_a_txn_recorded_for_a_request_that_is_not_due_closes_the_connection() -> None:
    server, commit = standalone()
    conn, frames = connect(server, commit)
    send(server, conn, 1, OpCode.CREATE, CreateRequest("/y", b"", OPEN, 0))
    send(server, conn, 2, OpCode.CREATE, CreateRequest("/z", b"", OPEN, 0))
    first, second = commit.queue
    commit.queue[:] = [second, first]  # a commit stage that broke zxid order
    commit.release(1)
    assert conn.closed and frames == []
