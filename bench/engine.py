"""One process's share of the load: many pipelined connections driven by one selectors loop.

Rules:
- Closed loop by default: each connection keeps `outstanding` requests in flight and issues
  the next unit as soon as replies free room. With a rate, units are issued on a fixed
  schedule and a unit sent late counts its latency from its scheduled time (no coordinated
  omission); `outstanding` still caps what is in flight.
- Every reply is verified against its request before it is counted: xid order, err code,
  exact frame length, multi result types, and the watch notification that must precede a
  watch-firing reply. Any mismatch aborts the run with a VerificationError.
- Only replies to requests issued inside the measured window count; issuing stops at the
  window's end and the in-flight requests are drained, so no unit is left half done.
- Time stamps are taken once per loop turn, not per reply: the generator must stay cheap.
- Given several server addresses (an ensemble), connection i talks to address i mod n for
  its whole life: connections are spread round-robin over the members.
"""

import collections
import selectors
import socket
import time
from dataclasses import dataclass, field

from bench import wire
from bench.histogram import LatencyHistogram
from bench.workloads import Request, UnitStream, Workload

_RECV_BYTES = 1 << 18
_CONNECT_TIMEOUT_S = 10.0
_DRAIN_TIMEOUT_S = 10.0
# epoll waits in whole milliseconds, so scheduled units are issued up to this early
# (latency then counts from the actual send) rather than late by the timer's rounding.
_ISSUE_AHEAD_NS = 1_000_000


class VerificationError(Exception):
    """A reply did not match its request: the server (or the generator) is wrong."""


@dataclass
class EngineResult:
    ops: int = 0
    replies_verified: int = 0
    notifications: int = 0
    sessions_opened: int = 0
    histogram: LatencyHistogram = field(default_factory=LatencyHistogram)
    window_s: float = 0.0
    generator_cpu_s: float = 0.0


def parse_hosts(hosts: str) -> tuple[str, int]:
    """The first host of a connect string "127.0.0.1:2181[,...]"."""
    return parse_host_list(hosts)[0]


def parse_host_list(hosts: str) -> list[tuple[str, int]]:
    """Every host of a connect string "127.0.0.1:2181,127.0.0.1:2182,...", in order."""
    addresses = []
    for entry in hosts.split(","):
        host, _, port = entry.strip().rpartition(":")
        addresses.append((host, int(port)))
    return addresses


def round_robin(addresses: list[tuple[str, int]], first_index: int, count: int) -> list[tuple[str, int]]:
    """The address of each of `count` connections whose global numbers start at first_index."""
    return [addresses[(first_index + i) % len(addresses)] for i in range(count)]


def _check_connect_response(frame: bytes) -> None:
    if len(frame) != wire.CONNECT_RESPONSE_SIZE:
        raise VerificationError(f"ConnectResponse of {len(frame)} bytes, expected 37")
    _version, timeout_ms, session_id, password_length, _pw, _ro = wire.CONNECT_RESPONSE.unpack(
        frame
    )
    if timeout_ms <= 0 or session_id == 0 or password_length != wire.PASSWORD_LENGTH:
        raise VerificationError(f"session refused: timeout={timeout_ms} id={session_id:#x}")


def recv_exactly(sock: socket.socket, count: int, deadline: float | None = None) -> bytes:
    """`count` bytes; with a time.monotonic() `deadline`, every recv is bounded by it."""
    chunks = []
    while count:
        if deadline is not None:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
        chunk = sock.recv(count)
        if not chunk:
            raise VerificationError("server closed the connection")
        chunks.append(chunk)
        count -= len(chunk)
    return b"".join(chunks)


class BlockingSession:
    """A plain session for setup work: pipelines a batch of requests, checks every reply."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=_CONNECT_TIMEOUT_S)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(wire.connect_request())
        (length,) = wire.FRAME_LENGTH.unpack(recv_exactly(self.sock, 4))
        _check_connect_response(recv_exactly(self.sock, length))
        self.next_xid = 1

    def run(self, requests: list[Request], tolerated_errs: frozenset[int] = frozenset()) -> None:
        xids = []
        frames = []
        for request in requests:
            xids.append(self.next_xid)
            frames.append(wire.request_frame(self.next_xid, request.op_type, request.record))
            self.next_xid += 1
        self.sock.sendall(b"".join(frames))
        for xid, request in zip(xids, requests):
            (length,) = wire.FRAME_LENGTH.unpack(recv_exactly(self.sock, 4))
            frame = recv_exactly(self.sock, length)
            reply_xid, _zxid, err = wire.REPLY_HEADER.unpack_from(frame)
            if reply_xid != xid:
                raise VerificationError(f"setup reply xid {reply_xid}, expected {xid}")
            if err != request.reply_err and err not in tolerated_errs:
                raise VerificationError(f"setup request type {request.op_type} got err {err}")

    def close(self) -> None:
        self.sock.close()


class _Connection:
    __slots__ = (
        "address",
        "events",
        "next_due_ns",
        "next_xid",
        "open",
        "outstanding",
        "pending",
        "sock",
        "tag",
        "units",
        "unsent",
        "wants_write",
    )

    def __init__(self, tag: str, units: UnitStream, address: tuple[str, int]) -> None:
        self.tag = tag
        self.address = address
        self.units = units
        self.outstanding: collections.deque[tuple[int | None, Request | None, int]] = (
            collections.deque()
        )
        self.next_xid = 1
        self.pending = b""  # received bytes of an incomplete frame
        self.unsent = bytearray()
        self.events = 0  # notifications received and not yet claimed by a reply
        self.next_due_ns = 0
        self.sock: socket.socket | None = None
        self.open = False
        self.wants_write = False


class Engine:
    """Drives `connections` connections of one workload until the window ends, then drains."""

    def __init__(
        self,
        address: tuple[str, int],
        workload: Workload,
        connection_tags: list[str],
        seed: int,
        outstanding: int,
        rate_ops_s: float | None = None,
        addresses: list[tuple[str, int]] | None = None,
        first_index: int = 0,
    ) -> None:
        """`addresses` (default: [address]) are spread round-robin over the connections,
        counting from `first_index` (this engine's first connection's number in the run)."""
        self.address = address
        self.workload = workload
        self.outstanding_max = outstanding
        self.interval_ns = (
            int(len(connection_tags) * 1e9 / rate_ops_s) if rate_ops_s else 0
        )
        self.selector = selectors.DefaultSelector()
        self.result = EngineResult()
        targets = round_robin(addresses or [address], first_index, len(connection_tags))
        self.connections = [
            _Connection(tag, workload.units(tag, seed * 1_000_003 + i), targets[i])
            for i, tag in enumerate(connection_tags)
        ]
        self.issuing = True
        self.window_start_ns = 0
        self.window_end_ns = 0

    # -- connection life -------------------------------------------------------------------

    def connect_all(self) -> None:
        """Open the long-lived sessions (not for session-per-unit workloads) and run their setup."""
        if self.workload.session_per_unit:
            return
        for conn in self.connections:
            session = BlockingSession(conn.address)
            session.run(self.workload.connection_setup(conn.tag), frozenset({wire.ERR_NODEEXISTS}))
            conn.next_xid = session.next_xid
            self._adopt(conn, session.sock)

    def _adopt(self, conn: _Connection, sock: socket.socket) -> None:
        sock.setblocking(False)
        conn.sock = sock
        conn.open = True
        conn.wants_write = False
        self.selector.register(sock, selectors.EVENT_READ, conn)

    def _open_session(self, conn: _Connection, now_ns: int) -> None:
        sock = socket.create_connection(conn.address, timeout=_CONNECT_TIMEOUT_S)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._adopt(conn, sock)
        conn.next_xid = 1
        conn.pending = b""
        conn.unsent += wire.connect_request()
        conn.outstanding.append((None, None, now_ns))
        self.result.sessions_opened += 1

    def _close_session(self, conn: _Connection) -> None:
        assert conn.sock is not None
        self.selector.unregister(conn.sock)
        conn.sock.close()
        conn.sock = None
        conn.open = False
        conn.unsent.clear()

    def close(self) -> None:
        for conn in self.connections:
            if conn.open:
                self._close_session(conn)
        self.selector.close()

    # -- issuing ---------------------------------------------------------------------------

    def _issue(self, conn: _Connection, now_ns: int) -> None:
        """Fill the connection's pipeline (or follow its schedule) with whole units."""
        if self.workload.session_per_unit and conn.outstanding:
            return  # one session at a time per connection slot
        while self.issuing and len(conn.outstanding) < self.outstanding_max:
            if self.interval_ns:
                if conn.next_due_ns > now_ns + _ISSUE_AHEAD_NS:
                    break
                start_ns = min(conn.next_due_ns, now_ns)
                conn.next_due_ns += self.interval_ns
            else:
                start_ns = now_ns
            if self.workload.session_per_unit:
                self._open_session(conn, start_ns)
            unit = next(conn.units)
            for request in unit:
                xid = conn.next_xid
                conn.next_xid = xid + 1
                conn.unsent += wire.REQUEST_PREFIX.pack(8 + len(request.record), xid, request.op_type)
                conn.unsent += request.record
                conn.outstanding.append((xid, request, start_ns))
            if self.workload.session_per_unit:
                break

    def _flush(self, conn: _Connection) -> None:
        if not conn.unsent or conn.sock is None:
            return
        try:
            sent = conn.sock.send(conn.unsent)
        except BlockingIOError:
            sent = 0
        del conn.unsent[:sent]
        wants_write = bool(conn.unsent)
        if wants_write != conn.wants_write:  # epoll_ctl only when the interest changes
            conn.wants_write = wants_write
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if wants_write else 0)
            self.selector.modify(conn.sock, events, conn)

    # -- replies ---------------------------------------------------------------------------

    def _receive(self, conn: _Connection, now_ns: int) -> None:
        assert conn.sock is not None
        try:
            data = conn.sock.recv(_RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except ConnectionError as error:
            raise VerificationError(f"connection {conn.tag} failed: {error}") from error
        if not data:
            raise VerificationError(
                f"server closed connection {conn.tag} with {len(conn.outstanding)} requests in flight"
            )
        buf = conn.pending + data if conn.pending else data
        end = len(buf)
        offset = 0
        result = self.result
        histogram_counts = result.histogram.counts
        window_start_ns = self.window_start_ns
        in_window = now_ns <= self.window_end_ns
        unpack_length = wire.FRAME_LENGTH.unpack_from
        unpack_header = wire.REPLY_HEADER.unpack_from
        while end - offset >= 4:
            (length,) = unpack_length(buf, offset)
            if end - offset - 4 < length:
                break
            frame_start = offset + 4
            offset = frame_start + length
            expected_xid, request, start_ns = conn.outstanding[0] if conn.outstanding else (0, None, 0)
            if request is None and expected_xid is None:
                conn.outstanding.popleft()
                _check_connect_response(bytes(buf[frame_start:offset]))
                continue
            xid, _zxid, err = unpack_header(buf, frame_start)
            if xid == wire.XID_NOTIFICATION:
                event_type, _state = wire.WATCHER_EVENT_PREFIX.unpack_from(buf, frame_start + 16)
                if event_type != wire.EVENT_NODE_DATA_CHANGED:
                    raise VerificationError(f"unexpected watch event type {event_type}")
                conn.events += 1
                result.notifications += 1
                continue
            if request is None:
                raise VerificationError(f"reply xid {xid} with nothing in flight on {conn.tag}")
            conn.outstanding.popleft()
            if xid != expected_xid:
                raise VerificationError(f"xid out of order on {conn.tag}: {xid} != {expected_xid}")
            if err != request.reply_err:
                raise VerificationError(
                    f"op type {request.op_type} xid {xid} on {conn.tag}: err {err}, "
                    f"expected {request.reply_err}"
                )
            if length != request.reply_length:
                raise VerificationError(
                    f"op type {request.op_type} reply of {length} bytes, expected {request.reply_length}"
                )
            if request.fires_watch:
                if not conn.events:
                    raise VerificationError(f"reply xid {xid} arrived before its watch notification")
                conn.events -= 1
            if request.multi_result_types:
                self._check_multi(buf[frame_start:offset], request)
            result.replies_verified += 1
            if request.counts_as_op and in_window and start_ns >= window_start_ns:
                result.ops += 1
                latency_us = (now_ns - start_ns) // 1000
                if latency_us < 1024:
                    histogram_counts[latency_us] += 1
                else:
                    result.histogram.record(latency_us)
            if request.op_type == wire.OP_CLOSE_SESSION:
                self._close_session(conn)
                break
        conn.pending = buf[offset:] if offset < end else b""

    @staticmethod
    def _check_multi(frame: bytes, request: Request) -> None:
        results = wire.multi_results(frame, list(request.multi_body_lengths))
        types = tuple(op_type for op_type, _err in results)
        if types != request.multi_result_types or any(err for _t, err in results):
            raise VerificationError(f"multi failed: results {results}")

    # -- the loop --------------------------------------------------------------------------

    def run(self, start_ns: int, warmup_s: float, duration_s: float) -> EngineResult:
        """Run from start_ns (a perf_counter_ns instant shared by all processes) for
        warmup + duration, then drain. Returns the counts of the measured window only."""
        self.window_start_ns = start_ns + int(warmup_s * 1e9)
        self.window_end_ns = self.window_start_ns + int(duration_s * 1e9)
        drain_deadline_ns = self.window_end_ns + int(_DRAIN_TIMEOUT_S * 1e9)
        while time.perf_counter_ns() < start_ns:
            time.sleep(min(0.01, max(0.0, (start_ns - time.perf_counter_ns()) / 1e9)))
        now_ns = time.perf_counter_ns()
        for conn in self.connections:
            conn.next_due_ns = now_ns
            self._issue(conn, now_ns)
            self._flush(conn)
        cpu_at_window_start: float | None = None
        select = self.selector.select
        while True:
            timeout = self._select_timeout_s(now_ns)
            ready = select(timeout)
            now_ns = time.perf_counter_ns()
            if cpu_at_window_start is None and now_ns >= self.window_start_ns:
                cpu_at_window_start = time.process_time()
            if self.issuing and now_ns >= self.window_end_ns:
                self.issuing = False
                self.result.generator_cpu_s = time.process_time() - (cpu_at_window_start or 0.0)
            for key, mask in ready:
                conn = key.data
                if mask & selectors.EVENT_READ and conn.open:
                    self._receive(conn, now_ns)
                if not self.interval_ns:
                    self._issue(conn, now_ns)
                self._flush(conn)
            if self.interval_ns:  # scheduled issuing may be due on any connection
                for conn in self.connections:
                    self._issue(conn, now_ns)
                    self._flush(conn)
            if not self.issuing:
                if not any(conn.outstanding for conn in self.connections):
                    break
                if now_ns > drain_deadline_ns:
                    raise VerificationError("replies still missing 10 s after the run ended")
        self.result.window_s = duration_s
        return self.result

    def _select_timeout_s(self, now_ns: int) -> float:
        if not self.issuing:
            return 0.1
        wake_ns = self.window_end_ns
        if self.interval_ns:
            # a full pipeline wakes on its replies; waking for it early would only spin
            for conn in self.connections:
                if len(conn.outstanding) < self.outstanding_max:
                    wake_ns = min(wake_ns, conn.next_due_ns - _ISSUE_AHEAD_NS)
        return max(0.0, min(0.1, (wake_ns - now_ns) / 1e9))
