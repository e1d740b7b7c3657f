"""Simulated clients over simulated client connections, through the real request pipeline.

Rule 1 (links): a client connection is TCP-like: FIFO each way; a partition between a client
and a member holds the data until it heals; a reset (crash, client-link cut) loses what is in
flight. A server-side close is delivered after the data sent before it; a client's close
reaches the server after the data the client sent before it.
Rule 2 (server side): the first frame a member receives on a connection is its ConnectRequest;
it is then bound to the member's current ZooKeeperServer (none: closed at once, as an idle
member does), and every later frame goes to server.handle_packet.
Rule 3 (clients, like kazoo): one connection at a time; xids restart at 1 on every connection;
a request is sent only once the ConnectResponse arrived; a connection that stays silent past
the read timeout, or is closed, is given up and its outstanding requests are indeterminate;
the client then reconnects to a random member with its session (a session move) and its
highest zxid seen, or starts a new session once told the old one expired.
Rule 4: every write carries unique data (its tag), so the checker (client_checker.py) can
find its committed txn wherever it went.
"""

from __future__ import annotations

import random
from collections import deque
from typing import TYPE_CHECKING, Any

from jute.codes import CreateMode, OpCode, Xid
from jute.proto import (
    ConnectRequest,
    ConnectResponse,
    CreateRequest,
    CreateResponse,
    GetDataRequest,
    GetDataResponse,
    ReplyHeader,
    RequestHeader,
    SetDataRequest,
    SetDataResponse,
    SyncRequest,
)
from pyzk.pipeline.clientsession import ClientSession
from pyzk.pipeline.zkserver import ZooKeeperServer
from pyzk.sessions import generate_password
from pyzk.sim.client_checker import ClientOp

if TYPE_CHECKING:
    from pyzk.sim.host import WorldHost

PARTITION_RETRY_MS = 50
KEYS = ("/k0", "/k1", "/k2")
_CLOSE = None  # the end-of-stream marker in a direction's FIFO


def _sid_hex(session_id: int) -> str:
    return f"0x{session_id & (2**64 - 1):x}"


class ClientConn:
    """One client TCP connection to member `sid`."""

    __slots__ = (
        "accepted",
        "client",
        "client_open",
        "dead",
        "down",
        "last_down_ms",
        "last_up_ms",
        "serial",
        "server",
        "session",
        "sid",
        "up",
    )

    def __init__(self, serial: int, client: SimClient, sid: int) -> None:
        self.serial = serial
        self.client = client
        self.sid = sid
        self.server: ZooKeeperServer | None = None
        self.session: ClientSession | None = None
        self.client_open = True  # the client still reads this connection
        self.dead = False  # reset: nothing more is delivered either way
        self.accepted = False
        self.up: deque[bytes | None] = deque()  # client -> server
        self.down: deque[bytes | None] = deque()  # server -> client
        self.last_up_ms = 0
        self.last_down_ms = 0


class ClientNet:
    """The client-side network of a world: connections, delays, partitions, resets."""

    def __init__(self, world: WorldHost) -> None:
        self.world = world
        self.rng = random.Random(f"{world.seed}-clientnet")
        self.serial = 0
        self.by_member: dict[int, dict[int, ClientConn]] = {sid: {} for sid in world.sids}
        self.cuts: set[tuple[int, int]] = set()  # (client, member) pairs that cannot talk
        self.isolated: set[int] = set()  # members no client can reach

    def blocked(self, client: int, sid: int) -> bool:
        return sid in self.isolated or (client, sid) in self.cuts

    def _delay(self) -> int:
        lo, hi = self.world.options.net_delay_ms
        return self.rng.randint(lo, hi)

    # ---- the client's end ----------------------------------------------------------------

    def open(self, client: SimClient, sid: int, connect_frame: bytes) -> ClientConn:
        self.serial += 1
        conn = ClientConn(self.serial, client, sid)
        self.send(conn, connect_frame)
        return conn

    def send(self, conn: ClientConn, frame: bytes | None) -> None:
        conn.up.append(frame)
        at_ms = max(conn.last_up_ms, self.world.now_ms + self._delay())
        conn.last_up_ms = at_ms
        self.world.call_at(at_ms, self._deliver_up, conn)

    def client_close(self, conn: ClientConn) -> None:
        if conn.client_open:
            conn.client_open = False
            if not conn.dead:
                self.send(conn, _CLOSE)

    def _deliver_up(self, conn: ClientConn) -> None:
        if conn.dead or not conn.up:
            return
        world = self.world
        if self.blocked(conn.client.cid, conn.sid):
            world.call_at(world.now_ms + PARTITION_RETRY_MS, self._deliver_up, conn)
            return
        frame = conn.up.popleft()
        if not conn.accepted:
            self._accept(conn, frame)
            return
        session, server = conn.session, conn.server
        assert session is not None
        if frame is _CLOSE:
            conn.dead = True
            if not session.closed:
                session.closed = True
                self._forget(conn)
                if server is not None:
                    server.connection_lost(session)
            return
        if session.closed or server is None:
            return
        server.handle_packet(session, frame)

    def _accept(self, conn: ClientConn, frame: bytes | None) -> None:
        world = self.world
        if frame is _CLOSE:
            conn.dead = True
            return
        if world.peers.get(conn.sid) is None:
            world.trace(f"c{conn.client.cid} connection {conn.serial} to {conn.sid} refused")
            self.reset(conn)
            return
        conn.accepted = True
        server = world.members[conn.sid].server
        conn.server = server
        session = ClientSession(f"10.0.1.{conn.client.cid}", conn.serial,
                                lambda body: self._to_client(conn, body), lambda: self._server_closed(conn))
        conn.session = session
        if server is None:
            session.close()  # no role: an idle member closes session requests
            return
        server.all_connections.add(session)
        self.by_member[conn.sid][conn.serial] = conn
        server.connect(session, frame)  # type: ignore[arg-type]

    # ---- the server's end ----------------------------------------------------------------

    def _to_client(self, conn: ClientConn, body: bytes | None) -> None:
        if conn.dead:
            return
        conn.down.append(body)
        at_ms = max(conn.last_down_ms, self.world.now_ms + self._delay())
        conn.last_down_ms = at_ms
        self.world.call_at(at_ms, self._deliver_down, conn)

    def _server_closed(self, conn: ClientConn) -> None:
        """ClientSession.close() on the server side: the FIN follows the data sent before it."""
        self._forget(conn)
        self._to_client(conn, _CLOSE)
        server, session = conn.server, conn.session
        if server is not None and session is not None:
            # The I/O layer's connection_lost comes after the transport closed.
            self.world.call_at(self.world.now_ms, server.connection_lost, session)

    def _forget(self, conn: ClientConn) -> None:
        self.by_member[conn.sid].pop(conn.serial, None)

    def _deliver_down(self, conn: ClientConn) -> None:
        if conn.dead or not conn.down:
            return
        world = self.world
        if self.blocked(conn.client.cid, conn.sid):
            world.call_at(world.now_ms + PARTITION_RETRY_MS, self._deliver_down, conn)
            return
        item = conn.down.popleft()
        if not conn.client_open:
            return  # the client closed its end: nobody reads this
        if item is _CLOSE:
            conn.dead = True
            conn.client.on_closed(conn, "closed by the server")
        else:
            conn.client.on_frame(conn, item)

    def reset(self, conn: ClientConn) -> None:
        """The connection breaks (a crash, a cut): in-flight data is lost; the client learns
        of it after a network delay, unless a partition keeps it from learning at all."""
        if conn.dead:
            return
        conn.dead = True
        conn.up.clear()
        conn.down.clear()
        self._forget(conn)
        session, server = conn.session, conn.server
        if session is not None and not session.closed:
            session.closed = True
            if server is not None:
                server.connection_lost(session)
        if conn.client_open and not self.blocked(conn.client.cid, conn.sid):
            self.world.call_at(self.world.now_ms + self._delay(), conn.client.on_closed, conn, "reset")

    def server_retired(self, sid: int, server: ZooKeeperServer, *, reset: bool) -> None:
        """A member left its role (closes its connections) or crashed (resets them)."""
        for conn in list(self.by_member[sid].values()):
            if conn.server is not server:
                continue
            if reset:
                self.reset(conn)
            elif conn.session is not None:
                conn.session.close()

    def cut(self, client: int, sid: int) -> None:
        self.cuts.add((client, sid))


class SimClient:
    """One client process (kazoo-like) with at most one session at a time."""

    def __init__(self, world: WorldHost, cid: int) -> None:
        self.world = world
        self.cid = cid
        self.rng = random.Random(f"{world.seed}-client-{cid}")
        o = world.options
        self.timeout_ms = self.rng.choice(o.client_timeout_ticks) * o.tick_time_ms
        self.max_in_flight = self.rng.choice((1, 2, 3))
        self.think_ms = self.rng.choice((25, 50, 100))
        self.session_id = 0
        self.negotiated_ms = 0
        self.conn: ClientConn | None = None
        self.connected = False
        self.xid = 0
        self.last_zxid = 0
        self.outstanding: deque[ClientOp] = deque()
        self.versions: dict[str, int] = {}  # key -> last version this client saw
        self.n = 0
        self.started_ms = 0
        self.last_heard_ms = 0
        self.last_sent_ms = 0
        self.enabled = True  # issues requests (pings go on regardless)
        self.script: deque[tuple[str, Any]] = deque()  # scenario requests, sent before random ones
        self.sessions = 0
        self.moves = 0
        self.only_members: list[int] | None = None  # scenarios: where it may (re)connect

    def start(self) -> None:
        self.world.call_at(self.world.now_ms + self.rng.randint(1, self.think_ms), self.tick)

    # ---- the client's loop ---------------------------------------------------------------

    @property
    def read_timeout_ms(self) -> int:
        return (self.negotiated_ms or self.timeout_ms) * 2 // 3

    def tick(self) -> None:
        world = self.world
        now = world.now_ms
        if self.conn is None:
            self.connect()
        elif not self.connected:
            if now - self.started_ms > max(self.timeout_ms // len(world.sids), 50):
                self.give_up("connect timeout")
        elif now - self.last_heard_ms > self.read_timeout_ms:
            self.give_up("read timeout")
        else:
            if self.script and len(self.outstanding) < 8:
                self.request(*self.script.popleft())
            elif (self.enabled and world.workload_enabled and len(self.outstanding) < self.max_in_flight
                  and self.rng.random() < 0.6):
                self.random_request()
            if now - self.last_sent_ms >= self.read_timeout_ms // 2:
                self._send(RequestHeader(Xid.PING, OpCode.PING).encode())
        world.call_at(now + self.think_ms, self.tick)

    def connect(self, sid: int | None = None) -> None:
        world = self.world
        if sid is None:
            sid = self.rng.choice(self.only_members or world.sids)
        passwd = generate_password(self.session_id) if self.session_id else bytes(16)
        frame = ConnectRequest(0, self.last_zxid, self.timeout_ms, self.session_id, passwd, False).encode()
        self.conn = world.clients_net.open(self, sid, frame)
        self.connected = False
        self.xid = 0
        self.started_ms = self.last_sent_ms = world.now_ms
        if self.session_id:
            self.moves += 1
        world.trace(f"c{self.cid} connect {self.conn.serial} -> {sid} session={_sid_hex(self.session_id)} "
                    f"last_zxid={self.last_zxid:#x}")

    def give_up(self, reason: str) -> None:
        conn = self.conn
        if conn is None:
            return
        self.world.clients_net.client_close(conn)
        self._lost(conn, reason)

    def _lost(self, conn: ClientConn, reason: str) -> None:
        lost = self.world.client_checker.on_conn_lost(conn.serial)
        self.outstanding.clear()
        self.conn = None
        self.connected = False
        self.world.trace(f"c{self.cid} gives up connection {conn.serial} to {conn.sid} ({reason}); "
                         f"{lost} indeterminate")

    # ---- frames from the server ----------------------------------------------------------

    def on_closed(self, conn: ClientConn, reason: str) -> None:
        if conn is self.conn:
            conn.client_open = False
            self._lost(conn, reason)

    def on_frame(self, conn: ClientConn, frame: bytes) -> None:
        if conn is not self.conn:
            return
        world = self.world
        self.last_heard_ms = world.now_ms
        if not self.connected:
            rsp = ConnectResponse.from_bytes(frame)
            if rsp.timeOut <= 0:
                world.trace(f"c{self.cid} session {_sid_hex(self.session_id)} expired")
                self.session_id = 0
                self.world.clients_net.client_close(conn)
                self._lost(conn, "session expired")
                return
            if rsp.sessionId != self.session_id:
                self.sessions += 1
            self.session_id = rsp.sessionId
            self.negotiated_ms = rsp.timeOut
            self.connected = True
            world.trace(f"c{self.cid} connected {conn.serial} to {conn.sid} session={_sid_hex(self.session_id)} "
                        f"timeout={rsp.timeOut}")
            return
        hdr, pos = ReplyHeader.decode_from(frame, 0)
        if hdr.xid == Xid.PING or hdr.xid == Xid.NOTIFICATION:
            return
        self.last_zxid = max(self.last_zxid, hdr.zxid)
        head = self.outstanding[0] if self.outstanding else None
        path = version = data = None
        if hdr.err == 0 and head is not None and head.xid == hdr.xid:
            if head.op == OpCode.CREATE:
                path = CreateResponse.decode_from(frame, pos)[0].path
            elif head.op == OpCode.SET_DATA:
                version = SetDataResponse.decode_from(frame, pos)[0].stat.version
            elif head.op == OpCode.GET_DATA:
                rsp, _ = GetDataResponse.decode_from(frame, pos)
                version, data = rsp.stat.version, rsp.data
        op = world.client_checker.on_reply(conn.serial, hdr.xid, hdr.zxid, hdr.err, path=path,
                                           version=version, data=data)
        self.outstanding.popleft()
        result = path if path is not None else (f"v{version}" if version is not None else "")
        world.trace(f"c{self.cid} <- xid={hdr.xid} zxid={hdr.zxid:#x} err={hdr.err} {result}")
        if op.op == OpCode.CREATE and op.path in KEYS and hdr.err in (0, -110):
            self.versions.setdefault(op.path, 0)
        elif version is not None and op.path in KEYS:
            self.versions[op.path] = max(self.versions.get(op.path, -1), version)

    # ---- requests ------------------------------------------------------------------------

    def _send(self, frame: bytes) -> None:
        assert self.conn is not None
        self.last_sent_ms = self.world.now_ms
        self.world.clients_net.send(self.conn, frame)

    def random_request(self) -> None:
        rng = self.rng
        key = rng.choice(KEYS)
        roll = rng.random()
        if key not in self.versions and roll < 0.5:
            self.request("create", key)
        elif roll < 0.25:
            self.request("create_seq", "/s-")
        elif roll < 0.45:
            self.request("create", f"/u{self.cid}-{self.n}")
        elif roll < 0.80:
            version = self.versions.get(key, -1) if rng.random() < 0.6 else -1
            self.request("set", (key, version))
        elif roll < 0.85:
            # Pipelined: the read must see the first set, never the second (rule (g)).
            self.request("set", (key, -1))
            self.request("get", key)
            self.request("set", (key, -1))
        elif roll < 0.93:
            self.request("sync", key)
            self.request("get", key)
        else:
            self.request("get", key)

    def request(self, kind: str, arg: Any) -> ClientOp:
        """Send one request on the current connection (the caller checked it is connected)."""
        assert self.conn is not None and self.connected
        self.n += 1
        self.xid += 1
        tag = b"c%d.%d" % (self.cid, self.n)
        world = self.world
        version = -1
        if kind == "create_seq" or kind == "create":
            path = arg
            flags = CreateMode.PERSISTENT_SEQUENTIAL if kind == "create_seq" else CreateMode.PERSISTENT
            op, body = OpCode.CREATE, CreateRequest(path, tag, world.open_acl, int(flags)).encode()
        elif kind == "set":
            path, version = arg
            op, body = OpCode.SET_DATA, SetDataRequest(path, tag, version).encode()
        elif kind == "get":
            path, tag = arg, None
            op, body = OpCode.GET_DATA, GetDataRequest(path, False).encode()
        elif kind == "sync":
            path, tag = arg, None
            op, body = OpCode.SYNC, SyncRequest(path).encode()
        else:
            raise ValueError(kind)
        req = ClientOp(self.cid, self.session_id, self.conn.serial, self.xid, op, path, tag, version, world.now_ms)
        world.client_checker.on_send(req)
        self.outstanding.append(req)
        world.trace(f"c{self.cid} -> {self.conn.sid} xid={self.xid} {kind} {path}"
                    + (f" v{version}" if kind == "set" else "") + (f" {tag.decode()}" if tag else ""))
        self._send(RequestHeader(self.xid, op).encode() + body)
        return req
