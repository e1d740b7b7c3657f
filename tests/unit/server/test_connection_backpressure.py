"""ClientConnection backpressure (pyzk/server/connection.py Rule 4), with a fake transport
and a fake server: globalOutstandingLimit (ZooKeeperServer.shouldThrottle) and the output
high-water mark stop reading a connection, and frames already received wait in order."""

from __future__ import annotations

import asyncio
import struct
from collections import deque
from types import SimpleNamespace
from typing import Any

from pyzk.pipeline.clientsession import InProcess
from pyzk.server.connection import OUTPUT_HIGH_WATER_BYTES, ClientConnection


class FakeTransport:
    def __init__(self, protocol: ClientConnection, high: int | None = None) -> None:
        self.protocol = protocol
        self.events: list[str] = []
        self.buffered = 0
        self.high = high
        self.closing = False

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else None

    def set_write_buffer_limits(self, high: int, low: int) -> None:
        self.high = high if self.high is None else self.high

    def write(self, data: bytes) -> None:
        self.buffered += len(data)
        if self.high is not None and self.buffered > self.high:
            self.protocol.pause_writing()

    def drain(self) -> None:
        self.buffered = 0
        self.protocol.resume_writing()

    def pause_reading(self) -> None:
        self.events.append("pause")

    def resume_reading(self) -> None:
        self.events.append("resume")

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True


class FakeServer:
    """Each request stays pending (a write in flight) unless `reply_bytes` answers it at once."""

    def __init__(self, limit: int, reply_bytes: int = 0) -> None:
        self.config = SimpleNamespace(global_outstanding_limit=limit, jute_maxbuffer=0xFFFFF,
                                      max_client_cnxns=0, system_properties={})
        self.all_connections: set[Any] = set()
        self.in_process = InProcess()
        self.handled: list[int] = []
        self.reply_bytes = reply_bytes

    def connect(self, session: Any, body: bytes) -> None:
        session.send(b"\x00" * 36)  # the ConnectResponse
        session.established = True

    def handle_packet(self, session: Any, body: bytes) -> None:
        xid = struct.unpack_from(">i", body)[0]
        self.handled.append(xid)
        if self.reply_bytes:
            session.send(struct.pack(">iqi", xid, 0, 0) + b"d" * self.reply_bytes)
        else:
            session.pending.append(xid)

    def answer_one(self, session: Any) -> None:
        xid = session.pending.popleft()
        session.send(struct.pack(">iqi", xid, 0, 0))

    def connection_lost(self, session: Any) -> None:
        pass


def frame(body: bytes) -> bytes:
    return struct.pack(">i", len(body)) + body


def request(xid: int) -> bytes:
    return frame(struct.pack(">ii", xid, 4) + b"\x00\x00\x00\x01/\x00")


def connected(server: FakeServer, high: int | None = None) -> tuple[ClientConnection, FakeTransport]:
    conn = ClientConnection(server, {})  # type: ignore[arg-type]
    transport = FakeTransport(conn, high)
    conn.connection_made(transport)
    assert conn.session is not None
    conn.session.pending = deque()
    conn.data_received(frame(b"\x00" * 45))  # a ConnectRequest
    return conn, transport


def test_global_outstanding_limit_stops_and_resumes_reading() -> None:
    async def scenario() -> None:
        server = FakeServer(limit=2)
        conn, transport = connected(server)
        conn.data_received(b"".join(request(x) for x in range(1, 6)))
        # In process 3 > 2 after the third request: reading stops, two frames wait.
        assert server.handled == [1, 2, 3]
        assert transport.events == ["pause"] and len(conn.backlog) == 2
        assert conn.in_process.count == 3
        for _ in range(10):  # bounded: answer whatever is pending, let the loop resume us
            if conn.session.pending:
                server.answer_one(conn.session)
            await asyncio.sleep(0)
        assert server.handled == [1, 2, 3, 4, 5]  # in order, none lost
        assert not conn.backlog and not conn.throttled
        assert transport.events[-1] == "resume"
        assert conn.in_process.count == 0
        conn.connection_lost(None)
        assert conn.in_process.count == 0

    asyncio.run(scenario())


def test_connection_lost_returns_its_share_of_the_in_process_count() -> None:
    async def scenario() -> None:
        server = FakeServer(limit=1000)
        conn, _ = connected(server)
        conn.data_received(b"".join(request(x) for x in range(1, 4)))
        assert conn.in_process.count == 3
        conn.connection_lost(None)
        assert conn.in_process.count == 0

    asyncio.run(scenario())


def test_output_high_water_mark_stops_reading_until_the_transport_drains() -> None:
    async def scenario() -> None:
        reply = 600 * 1024
        server = FakeServer(limit=1000, reply_bytes=reply)
        conn, transport = connected(server, high=OUTPUT_HIGH_WATER_BYTES)
        conn.data_received(b"".join(request(x) for x in range(1, 11)))
        # Two replies pass the 1 MiB mark: they go to the transport at once, it pauses
        # writing, and the other eight requests wait unread.
        assert server.handled == [1, 2]
        assert transport.events == ["pause"] and len(conn.backlog) == 8
        for _ in range(20):  # bounded
            if not conn.write_paused and not conn.backlog:
                break
            transport.drain()
            await asyncio.sleep(0)
        assert server.handled == list(range(1, 11))
        assert transport.events[-1] == "resume"
        assert transport.buffered + conn.out_bytes <= 2 * reply + 100

    asyncio.run(scenario())
