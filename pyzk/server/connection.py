"""The client port: one asyncio.Protocol per TCP connection.

Rule 1: the first 4 bytes of a connection that has not sent its ConnectRequest are checked
        against the four-letter words before they are read as a frame length.
Rule 2: a frame outside 0..jute.maxbuffer, or bytes that are not a valid request header,
        close this connection only.
Rule 3: receive is paused during the handshake: frames that arrive after the ConnectRequest
        wait until the session is established (or refused).
Rule 4 (backpressure; memory stays bounded whatever a client sends):
        a) globalOutstandingLimit, as ZooKeeperServer.shouldThrottle: when more requests than
           the limit are in process on this server (received, reply not produced yet) and
           this connection has one of them, it stops reading (ServerCnxn.disableRecv) until
           a reply of its own brings the count back (enableRecv).
        b) an output high-water mark: a connection whose unsent replies (ours plus the
           transport's write buffer) exceed OUTPUT_HIGH_WATER_BYTES stops reading, and
           resumes once the transport drains below OUTPUT_LOW_WATER_BYTES, so a client that
           sends requests and never reads their replies cannot make the server buffer them
           without limit. Frames already received when reading stops wait in `backlog` and
           run, in order, when it resumes.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections import deque
from typing import TYPE_CHECKING, Any

from jute.framing import FrameSplitter, FrameTooLarge
from jute.primitives import JuteError
from pyzk.pipeline.clientsession import ClientSession
from pyzk.server.fourletter import FOUR_LETTER_WORDS, run_four_letter_word
from pyzk.server.tls import authenticate_tls_client

if TYPE_CHECKING:
    from pyzk.pipeline.zkserver import ZooKeeperServer

logger = logging.getLogger(__name__)

_LEN = struct.Struct(">i")
SESSIONLESS_TIMEOUT_MS_DEFAULT = 10000
# Unsent reply bytes of one connection above which it stops reading requests, and the
# transport buffer size below which it reads again. One reply may be up to jute.maxbuffer
# (1 MiB) on top of the mark, and the kernel's socket buffers hold a few MiB more.
OUTPUT_HIGH_WATER_BYTES = 1 << 20
OUTPUT_LOW_WATER_BYTES = 256 << 10
# Requests of one connection run per event-loop turn; the rest of a pipelined burst waits in
# the backlog for the next turn, so other connections are served in between.
FRAMES_PER_TURN = 64


class ClientConnection(asyncio.Protocol):
    def __init__(self, server: ZooKeeperServer, per_ip: dict[str, int]) -> None:
        self.server = server
        self.per_ip = per_ip
        self.transport: asyncio.Transport | None = None
        self.session: ClientSession | None = None
        self.splitter = FrameSplitter(server.config.jute_maxbuffer)
        self.connect_seen = False
        self.held: list[bytes] = []  # frames received before the session is established
        self.first_bytes = b""
        self.ip = ""
        self.out: list[bytes] = []
        self.sessionless_timer: asyncio.TimerHandle | None = None
        self.flush_scheduled = False
        self.out_bytes = 0  # bytes in self.out
        # Rule 4: frames received while reading is stopped; why it is stopped.
        self.backlog: deque[bytes] = deque()
        self.throttled = False  # globalOutstandingLimit (disableRecv(false))
        self.write_paused = False  # the transport's write buffer is above the high mark
        self.reading_paused = False  # transport.pause_reading() is in effect
        self.turn_scheduled = False  # a call_soon(_next_turn) is pending
        self.in_process = server.in_process
        self.counted = 0  # this connection's share of in_process.count
        self.outstanding_limit = server.config.global_outstanding_limit

    # ---- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        try:
            transport.set_write_buffer_limits(high=OUTPUT_HIGH_WATER_BYTES, low=OUTPUT_LOW_WATER_BYTES)
        except (AttributeError, NotImplementedError):
            pass
        peer = transport.get_extra_info("peername") or ("0.0.0.0", 0)
        self.ip, port = peer[0], peer[1]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        limit = self.server.config.max_client_cnxns
        count = self.per_ip.get(self.ip, 0)
        if limit and count >= limit:
            logger.warning("Too many connections from /%s - max is %d", self.ip, limit)
            transport.abort()
            return
        self.per_ip[self.ip] = count + 1
        self.session = ClientSession(self.ip, port, self._write_frame, self._close)
        loop = asyncio.get_running_loop()
        self.session.on_established = lambda: loop.call_soon(self.flush_held)
        # A connection that never sends its ConnectRequest is closed after
        # zookeeper.nio.sessionlessCnxnTimeout (NIOServerCnxnFactory).
        timeout_ms = int(self.server.config.system_properties.get(
            "zookeeper.nio.sessionlessCnxnTimeout", SESSIONLESS_TIMEOUT_MS_DEFAULT))
        self.sessionless_timer = loop.call_later(timeout_ms / 1000.0, self._sessionless_expired)
        self.server.all_connections.add(self.session)
        # The secure client port: the client certificate's ids, or close (server/tls.py).
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None and not authenticate_tls_client(self.server.registry, self.session, ssl_object):
            self.server.stats.auth_failed_count += 1
            self._close()

    def _sessionless_expired(self) -> None:
        if not self.connect_seen:
            self._close()

    def data_received(self, data: bytes) -> None:
        session = self.session
        if session is None or session.closed:
            return
        if not self.connect_seen and not self.first_bytes and self.splitter.buffered == 0:
            word = data[:4]
            if len(data) >= 4 and word in FOUR_LETTER_WORDS:
                self._four_letter_word(word, data[4:])
                return
        try:
            frames = self.splitter.feed(data)
        except FrameTooLarge as exc:
            logger.warning("Closing connection from /%s: %s", self.ip, exc)
            self._close()
            return
        if self.backlog or self.throttled or self.write_paused:
            self.backlog.extend(frames)
            self._update_reading()
            return
        for index, body in enumerate(frames):
            if session.closed:
                return
            if session.established and not self.held:
                self._handle(body)  # the common case, without _frame's hop (per request)
            else:
                self._frame(body)
            if self.throttled or self.write_paused or index + 1 == FRAMES_PER_TURN:
                # Rule 4: stop here; the rest runs when this connection may read again
                # (or, after FRAMES_PER_TURN frames, on the next loop turn).
                self.backlog.extend(frames[index + 1:])
                if self.backlog and not self.turn_scheduled and not (self.throttled or self.write_paused):
                    self.turn_scheduled = True
                    asyncio.get_running_loop().call_soon(self._next_turn)
                self._update_reading()
                return

    def _frame(self, body: bytes) -> None:
        session = self.session
        assert session is not None
        if not self.connect_seen:
            self.connect_seen = True
            try:
                self.server.connect(session, body)
            except JuteError as exc:
                logger.warning("Malformed ConnectRequest from /%s: %s", self.ip, exc)
                self._close()
            return
        if not session.established:
            self.held.append(body)
            return
        if self.held:
            held, self.held = self.held, []
            for frame in held:
                self._handle(frame)
        self._handle(body)

    def _handle(self, body: bytes) -> None:
        """One request to the server, then ZooKeeperServer.shouldThrottle for this connection."""
        session = self.session
        assert session is not None
        self.server.handle_packet(session, body)
        pending = len(session.pending)
        counted = self.counted
        if pending != counted and not session.closed:  # _count_in_process, inlined (per request)
            in_process = self.in_process
            in_process.count += pending - counted
            self.counted = pending
            if pending > counted and not self.throttled and in_process.count > self.outstanding_limit:
                self.throttled = True
                self._update_reading()
        elif session.closed and counted:
            self._count_in_process()

    def _count_in_process(self) -> None:
        """Bring this connection's share of the server's in-process count up to date."""
        session = self.session
        pending = len(session.pending) if session is not None and not session.closed else 0
        if pending != self.counted:
            self.in_process.count += pending - self.counted
            self.counted = pending

    def flush_held(self) -> None:
        """Run frames that arrived during the handshake, once the session is established."""
        session = self.session
        if session is None or not session.established:
            return
        held, self.held = self.held, []
        for frame in held:
            if session.closed:
                return
            self._handle(frame)
        self._update_reading()

    # ---- Rule 4: stop and resume reading -------------------------------------------------

    def pause_writing(self) -> None:
        self.write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._update_reading()

    def _next_turn(self) -> None:
        self.turn_scheduled = False
        self._update_reading()

    def _update_reading(self) -> None:
        """Pause or resume the transport's reading to match the flags; when allowed again,
        first run the frames that were received while it was stopped."""
        transport = self.transport
        session = self.session
        if transport is None or session is None or session.closed or transport.is_closing():
            return
        if not (self.throttled or self.write_paused) and not self.turn_scheduled:
            ran = 0
            while self.backlog and not (self.throttled or self.write_paused) and not session.closed:
                if ran == FRAMES_PER_TURN:
                    self.turn_scheduled = True
                    asyncio.get_running_loop().call_soon(self._next_turn)
                    break
                self._frame(self.backlog.popleft())
                ran += 1
            if session.closed:
                return
        stop = bool(self.throttled or self.write_paused or self.backlog)
        if stop and not self.reading_paused:
            self.reading_paused = True
            transport.pause_reading()
        elif not stop and self.reading_paused:
            self.reading_paused = False
            transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.sessionless_timer is not None:
            self.sessionless_timer.cancel()
        self.in_process.count -= self.counted
        self.counted = 0
        self.backlog.clear()
        if self.session is not None:
            self.session.closed = True
            self.server.connection_lost(self.session)
            count = self.per_ip.get(self.ip, 1) - 1
            if count <= 0:
                self.per_ip.pop(self.ip, None)
            else:
                self.per_ip[self.ip] = count

    # ---- output --------------------------------------------------------------------------

    def _write_frame(self, body: bytes) -> None:
        # Coalesce: frames produced in one loop iteration leave in one send (one syscall
        # for a whole pipelined burst instead of one per reply).
        self.out.append(_LEN.pack(len(body)))
        self.out.append(body)
        self.out_bytes += 4 + len(body)
        if self.out_bytes >= OUTPUT_HIGH_WATER_BYTES:
            # Rule 4b: hand big output to the transport now, so its pause_writing tells us.
            self.flush()
        elif not self.flush_scheduled:
            self.flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)
        counted = self.counted
        if counted:
            # A reply: ServerCnxn.decrOutstandingAndCheckThrottle (_count_in_process, inlined).
            session = self.session
            if session is not None and not session.closed:
                pending = len(session.pending)
                if pending != counted:
                    self.in_process.count += pending - counted
                    self.counted = pending
            else:
                self._count_in_process()
            if self.throttled:
                if not (self.in_process.count > self.outstanding_limit and session is not None
                        and session.pending):
                    self.throttled = False
                    asyncio.get_running_loop().call_soon(self._update_reading)

    def flush(self) -> None:
        self.flush_scheduled = False
        out = self.out
        if not out:
            return
        self.out = []
        self.out_bytes = 0
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(b"".join(out))

    def _close(self) -> None:
        if self.session is not None:
            self.session.closed = True
        self.flush()  # replies already produced (e.g. closeSession's) go out before the FIN
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def _four_letter_word(self, word: bytes, rest: bytes) -> None:
        assert self.transport is not None and self.session is not None
        text = run_four_letter_word(self.server, word.decode("ascii"), rest)
        self.transport.write(text.encode("utf-8"))
        self.session.closed = True
        self.transport.close()
