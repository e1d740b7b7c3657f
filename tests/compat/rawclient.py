"""A tiny raw ZooKeeper client for protocol edge cases, built on `struct` alone.

Rule: this module never imports pyzk or jute. It is an independent second reading of the
wire format (PROTOCOL.md §1-§2), so that a mistake shared by pyzk's codec and its tests
cannot hide itself. It builds exactly the bytes a test asks for, including wrong ones.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass

PASSWORD_BYTES = 16
REPLY_HEADER = struct.Struct(">iqi")
WATCHER_EVENT_HEAD = struct.Struct(">ii")
STAT = struct.Struct(">qqqqiiiqiiq")

XID_NOTIFICATION = -1
XID_PING = -2
XID_AUTH = -4
XID_SET_WATCHES = -8

OP_CREATE = 1
OP_DELETE = 2
OP_EXISTS = 3
OP_GET_DATA = 4
OP_SET_DATA = 5
OP_GET_CHILDREN = 8
OP_PING = 11
OP_MULTI = 14
OP_CLOSE_SESSION = -11
OP_SET_WATCHES = 101
OP_AUTH = 100
OP_WHO_AM_I = 107

PERMS_ALL = 31


def int32(value: int) -> bytes:
    return struct.pack(">i", value)


def int64(value: int) -> bytes:
    return struct.pack(">q", value)


def boolean(value: bool) -> bytes:
    return b"\x01" if value else b"\x00"


def buffer(value: bytes | None) -> bytes:
    if value is None:
        return int32(-1)
    return int32(len(value)) + value


def ustring(value: str | None) -> bytes:
    return buffer(None if value is None else value.encode())


def string_vector(values: list[str]) -> bytes:
    return int32(len(values)) + b"".join(ustring(v) for v in values)


def open_acl() -> bytes:
    """vector<ACL> holding world:anyone with all permissions."""
    return int32(1) + int32(PERMS_ALL) + ustring("world") + ustring("anyone")


def connect_request(
    *,
    last_zxid_seen: int = 0,
    timeout_ms: int = 30000,
    session_id: int = 0,
    password: bytes = bytes(PASSWORD_BYTES),
    read_only: bool | None = False,
) -> bytes:
    """ConnectRequest body; read_only=None omits the trailing byte (a <=3.3 client)."""
    body = int32(0) + int64(last_zxid_seen) + int32(timeout_ms) + int64(session_id)
    body += buffer(password)
    if read_only is not None:
        body += boolean(read_only)
    return body


def create_request(path: str, data: bytes | None = b"", flags: int = 0) -> bytes:
    return ustring(path) + buffer(data) + open_acl() + int32(flags)


def auth_packet(scheme: str, auth: bytes) -> bytes:
    return int32(0) + ustring(scheme) + buffer(auth)


def path_watch_request(path: str, watch: bool = False) -> bytes:
    """The shape shared by exists, getData and getChildren requests."""
    return ustring(path) + boolean(watch)


def set_watches_request(
    relative_zxid: int, data: list[str], exist: list[str], child: list[str]
) -> bytes:
    return int64(relative_zxid) + string_vector(data) + string_vector(exist) + string_vector(child)


def multi_request(ops: list[tuple[int, bytes]]) -> bytes:
    """MultiOperationRecord: (MultiHeader + record) per op, then the done terminator."""
    body = b"".join(int32(op) + boolean(False) + int32(-1) + record for op, record in ops)
    return body + int32(-1) + boolean(True) + int32(-1)


@dataclass(frozen=True)
class ConnectResponse:
    protocol_version: int
    timeout_ms: int
    session_id: int
    password: bytes
    read_only: bool | None  # None when the server sent no trailing byte
    body_length: int


def parse_connect_response(body: bytes) -> ConnectResponse:
    protocol_version, timeout_ms, session_id, password_length = struct.unpack_from(">iiqi", body)
    password = body[20 : 20 + password_length]
    tail = body[20 + password_length :]
    read_only = bool(tail[0]) if tail else None
    return ConnectResponse(protocol_version, timeout_ms, session_id, password, read_only, len(body))


@dataclass(frozen=True)
class Reply:
    xid: int
    zxid: int
    err: int
    body: bytes


def parse_reply(frame: bytes) -> Reply:
    xid, zxid, err = REPLY_HEADER.unpack_from(frame)
    return Reply(xid, zxid, err, frame[REPLY_HEADER.size :])


def read_ustring(body: bytes, offset: int) -> tuple[str | None, int]:
    (length,) = struct.unpack_from(">i", body, offset)
    offset += 4
    if length < 0:
        return None, offset
    return body[offset : offset + length].decode(), offset + length


def parse_watcher_event(body: bytes) -> tuple[int, int, str | None]:
    """WatcherEvent -> (type, state, path)."""
    event_type, state = WATCHER_EVENT_HEAD.unpack_from(body)
    path, _ = read_ustring(body, WATCHER_EVENT_HEAD.size)
    return event_type, state, path


def parse_multi_results(body: bytes) -> list[tuple[int, bool, int, bytes]]:
    """Multi response -> [(type, done, err, rest)] for error-only results.

    Only ErrorResponse bodies (type -1) are split off; any other result stops the walk,
    since the caller then needs op-specific parsing.
    """
    results = []
    offset = 0
    while True:
        op_type, done, err = struct.unpack_from(">i?i", body, offset)
        offset += 9
        if done:
            return results
        if op_type != -1:
            results.append((op_type, done, err, body[offset:]))
            return results
        (body_err,) = struct.unpack_from(">i", body, offset)
        offset += 4
        results.append((op_type, done, err, int32(body_err)))


class RawClient:
    """One TCP connection speaking length-prefixed frames, with bounded waits."""

    def __init__(self, host: str, port: int, timeout_s: float = 5.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout_s = timeout_s
        self._pending = b""

    @classmethod
    def to(cls, hosts: str, timeout_s: float = 5.0) -> RawClient:
        host, _, port = hosts.split(",")[0].rpartition(":")
        return cls(host, int(port), timeout_s)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_frame(self, body: bytes) -> None:
        self.send_raw(int32(len(body)) + body)

    def send_request(self, xid: int, op: int, record: bytes = b"") -> None:
        self.send_frame(int32(xid) + int32(op) + record)

    def _read_exactly(self, count: int, deadline: float) -> bytes | None:
        """None on EOF/reset; raises TimeoutError when the deadline passes."""
        while len(self._pending) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"waited for {count} bytes, have {len(self._pending)}")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError as exc:
                raise TimeoutError("no data before the deadline") from exc
            except ConnectionResetError:
                return None
            if not chunk:
                return None
            self._pending += chunk
        data, self._pending = self._pending[:count], self._pending[count:]
        return data

    def recv_frame(self, timeout_s: float | None = None) -> bytes | None:
        """The next frame body, or None if the server closed the connection."""
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        head = self._read_exactly(4, deadline)
        if head is None:
            return None
        (length,) = struct.unpack(">i", head)
        return self._read_exactly(length, deadline)

    def recv_reply(self, timeout_s: float | None = None) -> Reply:
        frame = self.recv_frame(timeout_s)
        if frame is None:
            raise ConnectionError("server closed the connection instead of replying")
        return parse_reply(frame)

    def recv_raw(self, timeout_s: float | None = None) -> bytes:
        """Everything the server sends until it closes the connection."""
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        data = self._pending
        self._pending = b""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("server did not close the connection")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return data
            if not chunk:
                return data
            data += chunk

    def wait_closed(self, timeout_s: float | None = None) -> bool:
        """True if the server closes the connection (sending nothing more) before the timeout."""
        try:
            return self.recv_raw(timeout_s) == b""
        except TimeoutError:
            return False

    def handshake(self, **connect_fields: object) -> ConnectResponse:
        self.send_frame(connect_request(**connect_fields))  # type: ignore[arg-type]
        frame = self.recv_frame()
        if frame is None:
            raise ConnectionError("server closed the connection during the handshake")
        return parse_connect_response(frame)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
