"""One client connection as the pipeline sees it (ServerCnxn), and its in-order reply queue.

Transport-agnostic: the I/O layer (pyzk/server/connection.py, or the simulator) gives a
ClientSession the functions that send a frame and close the connection. The commit stages and
ZooKeeperServer share these types, which is why they live apart from both.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jute.codes import Xid
from jute.data import Id
from jute.proto import ReplyHeader
from pyzk.pipeline.authinfo import AuthInfo

_NOTIFICATION_PREFIX = ReplyHeader(Xid.NOTIFICATION, -1, 0).encode()


def _event_body(event_type: int, path: str) -> bytes:
    raw = path.encode("utf-8", "surrogatepass")
    return (event_type.to_bytes(4, "big", signed=True) + (3).to_bytes(4, "big")
            + len(raw).to_bytes(4, "big") + raw)


class InProcess:
    """Requests in process on one server (ZooKeeperServer.requestsInProcess): the sum over
    its connections of requests received whose reply is not produced yet. The connections
    keep it (server/connection.py) for globalOutstandingLimit."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


@dataclass(slots=True)
class PendingRequest:
    """One entry of a connection's in-order reply queue."""

    xid: int
    op: int
    record: Any = None
    in_flight: bool = False  # a write or barrier waiting for its txn to be applied
    received_s: float = 0.0


class ClientSession:
    """The server-side view of one client connection (ServerCnxn), transport-agnostic.

    `send_frame(bytes)` and `close()` are provided by the I/O layer (server/connection.py).
    """

    def __init__(self, remote_ip: str, remote_port: int, send_frame: Callable[[bytes], None],
                 close: Callable[[], None]) -> None:
        self.remote_ip = remote_ip
        self.remote_port = remote_port
        self._send_frame = send_frame
        self._close = close
        self.session_id = 0
        self.timeout_ms = 0
        self.old_client = False
        self.auth_info = AuthInfo(Id("ip", remote_ip))
        self.client_certificate: bytes | None = None  # a TLS client's verified certificate (DER)
        self.pending: deque[PendingRequest] = deque()
        self.closed = False
        self.established = False
        self.sasl: Any = None
        self.on_established: Callable[[], None] | None = None
        # Stats for stat/cons (ServerCnxn).
        self.packets_received = 0
        self.packets_sent = 0
        self.established_ms = int(time.time() * 1000)
        self.last_op = "NA"
        self.last_cxid = -1
        self.last_zxid = -1
        self.last_response_s = 0.0  # time.monotonic() of the last reply; 0.0: none yet
        self.last_latency_ms = 0
        self.latency_min_ms: int | None = None
        self.latency_max_ms = 0
        self.latency_total_ms = 0
        self.latency_count = 0

    @property
    def auth_ids(self) -> tuple[Id, ...]:
        """The ids as ZooKeeper iterates them; an immutable snapshot, safe to hand to prep."""
        return self.auth_info.ids

    # Watcher protocol (pyzk.watches): notification frame (xid -1, zxid -1, state SyncConnected).
    def send_event(self, event_type: int, path: str) -> None:
        if self.closed:
            return
        self.send(_NOTIFICATION_PREFIX + _event_body(event_type, path))

    def send(self, body: bytes) -> None:
        if not self.closed:
            self.packets_sent += 1
            self._send_frame(body)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._close()

    @property
    def last_response_ms(self) -> int:
        """Wall-clock ms of the last reply (cons' lresp), 0 before the first."""
        if not self.last_response_s:
            return 0
        return int((time.time() - (time.monotonic() - self.last_response_s)) * 1000)

    def record_latency(self, latency_ms: int) -> None:
        self.last_latency_ms = latency_ms
        self.latency_total_ms += latency_ms
        self.latency_count += 1
        if latency_ms > self.latency_max_ms:
            self.latency_max_ms = latency_ms
        minimum = self.latency_min_ms
        if minimum is None or latency_ms < minimum:
            self.latency_min_ms = latency_ms

    def reset_stats(self) -> None:
        self.packets_received = 0
        self.packets_sent = 0
        self.last_op = "NA"
        self.last_cxid = -1
        self.last_zxid = -1
        self.last_response_s = 0.0  # time.monotonic() of the last reply; 0.0: none yet
        self.last_latency_ms = 0
        self.latency_min_ms = None
        self.latency_max_ms = 0
        self.latency_total_ms = 0
        self.latency_count = 0

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other
