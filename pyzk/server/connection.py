"""The client port: one asyncio.Protocol per TCP connection.

Rule 1: the first 4 bytes of a connection that has not sent its ConnectRequest are checked
        against the four-letter words before they are read as a frame length.
Rule 2: a frame outside 0..jute.maxbuffer, or bytes that are not a valid request header,
        close this connection only.
Rule 3: receive is paused during the handshake: frames that arrive after the ConnectRequest
        wait until the session is established (or refused).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from typing import TYPE_CHECKING, Any

from jute.framing import FrameSplitter, FrameTooLarge
from jute.primitives import JuteError
from pyzk.server.fourletter import FOUR_LETTER_WORDS, run_four_letter_word
from pyzk.server.zkserver import ClientSession

if TYPE_CHECKING:
    from pyzk.server.zkserver import ZooKeeperServer

logger = logging.getLogger(__name__)

_LEN = struct.Struct(">i")
SESSIONLESS_TIMEOUT_MS_DEFAULT = 10000


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

    # ---- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
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
        for body in frames:
            if session.closed:
                return
            self._frame(body)

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
                self.server.handle_packet(session, frame)
        self.server.handle_packet(session, body)

    def flush_held(self) -> None:
        """Run frames that arrived during the handshake, once the session is established."""
        session = self.session
        if session is None or not session.established:
            return
        held, self.held = self.held, []
        for frame in held:
            if session.closed:
                return
            self.server.handle_packet(session, frame)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.sessionless_timer is not None:
            self.sessionless_timer.cancel()
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
        if not self.flush_scheduled:
            self.flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self.flush_scheduled = False
        out = self.out
        if not out:
            return
        self.out = []
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
