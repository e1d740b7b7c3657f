"""Userspace TCP proxies for cutting links between ensemble members.

Rule 1: one asyncio loop on one daemon thread runs every proxy of a cluster; the public
        methods are thread-safe and bounded (each waits at most CALL_TIMEOUT_S).
Rule 2: a proxy forwards 127.0.0.1:listen_port -> 127.0.0.1:target_port.  Cutting it closes
        its live connections and closes every new one at once (the peer sees a refused link);
        healing lets new connections through again.
Rule 3: buffers are bounded: each direction reads at most READ_BYTES at a time and waits for
        the writer to drain (asyncio's flow control) before reading more.
Rule 4: an election-port proxy may rewrite the address inside the initial message
        (QuorumCnxManager's header: long protocol version, long sid, int length, "host:port").
        Apache 3.8 dials a lower sid back at the address that sid advertised, which is its real
        election address; the rewrite makes it dial back through the reverse proxy instead, so a
        cut really cuts the pair.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

LOOPBACK = "127.0.0.1"
READ_BYTES = 65536
CONNECT_TIMEOUT_S = 2.0
CALL_TIMEOUT_S = 10.0
HEADER_TIMEOUT_S = 5.0
ADDRESS_BYTES_MAX = 4096
PROTOCOL_VERSIONS = (-65536, -65535)


def rewrite_initial_message(head: bytes, new_address: str) -> bytes | None:
    """The header with its address replaced, or None if ``head`` is not a complete 3.5+ header.

    A 3.4 header (a non-negative sid alone) has no address and is returned unchanged.
    """
    if len(head) < 8:
        return None
    (first,) = struct.unpack_from(">q", head, 0)
    if first >= 0:
        return head
    if len(head) < 20:
        return None
    (length,) = struct.unpack_from(">i", head, 16)
    if len(head) < 20 + length:
        return None
    addr = new_address.encode()
    return head[:16] + struct.pack(">i", len(addr)) + addr + head[20 + length:]


def initial_message_length(head: bytes) -> int | None:
    """How many bytes the header at the start of ``head`` needs, None if not known yet."""
    if len(head) < 8:
        return None
    (first,) = struct.unpack_from(">q", head, 0)
    if first >= 0 or first not in PROTOCOL_VERSIONS:
        return 8
    if len(head) < 20:
        return None
    (length,) = struct.unpack_from(">i", head, 16)
    if length < 0 or length > ADDRESS_BYTES_MAX:
        return 20
    return 20 + length


@dataclass
class _Proxy:
    name: str
    listen_port: int
    target_port: int
    rewrite_address: str | None
    cut: bool = False
    server: asyncio.base_events.Server | None = None
    writers: set[asyncio.StreamWriter] = field(default_factory=set)
    connections: int = 0


class ProxyHub:
    """All proxies of one cluster (see the module rules)."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="jepsen-proxies", daemon=True)
        self._proxies: dict[str, _Proxy] = {}
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def _call(self, make_coro: Callable[[], object]) -> object:
        future = asyncio.run_coroutine_threadsafe(make_coro(), self._loop)  # type: ignore[arg-type]
        return future.result(CALL_TIMEOUT_S)

    # ---- public, thread-safe ---------------------------------------------------------------

    def add(self, name: str, listen_port: int, target_port: int,
            rewrite_address: str | None = None) -> None:
        proxy = _Proxy(name, listen_port, target_port, rewrite_address)
        self._call(lambda: self._start(proxy))
        self._proxies[name] = proxy

    def cut(self, names: list[str]) -> None:
        self._call(lambda: self._set_cut(names, True))

    def heal(self, names: list[str] | None = None) -> None:
        self._call(lambda: self._set_cut(list(self._proxies) if names is None else names, False))

    def is_cut(self, name: str) -> bool:
        return self._proxies[name].cut

    def names(self) -> list[str]:
        return list(self._proxies)

    def close(self) -> None:
        if not self._loop.is_running():
            return
        try:
            self._call(self._shutdown)
        except Exception:
            logging.getLogger("jepsen.proxy").debug("proxy shutdown", exc_info=True)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(CALL_TIMEOUT_S)
        if not self._thread.is_alive():
            self._loop.close()

    # ---- loop side -------------------------------------------------------------------------

    async def _start(self, proxy: _Proxy) -> None:
        proxy.server = await asyncio.start_server(
            lambda r, w: self._accept(proxy, r, w), LOOPBACK, proxy.listen_port, reuse_address=True)

    async def _set_cut(self, names: list[str], cut: bool) -> None:
        for name in names:
            proxy = self._proxies[name]
            proxy.cut = cut
            if cut:
                for writer in list(proxy.writers):
                    writer.close()
                proxy.writers.clear()

    async def _shutdown(self) -> None:
        for proxy in self._proxies.values():
            proxy.cut = True
            for writer in list(proxy.writers):
                writer.close()
            proxy.writers.clear()
            if proxy.server is not None:
                proxy.server.close()

    async def _accept(self, proxy: _Proxy, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        if proxy.cut:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(LOOPBACK, proxy.target_port), CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError):
            writer.close()
            return
        if proxy.cut:  # cut while we were connecting
            writer.close()
            up_writer.close()
            return
        proxy.connections += 1
        proxy.writers.update((writer, up_writer))
        try:
            if proxy.rewrite_address is not None and not await self._forward_header(
                    proxy, reader, up_writer):
                return
            await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                proxy.writers.discard(w)
                w.close()

    async def _forward_header(self, proxy: _Proxy, reader: asyncio.StreamReader,
                              up_writer: asyncio.StreamWriter) -> bool:
        head = b""
        try:
            while True:
                need = initial_message_length(head)
                if need is not None and len(head) >= need:
                    break
                chunk = await asyncio.wait_for(reader.read(READ_BYTES), HEADER_TIMEOUT_S)
                if not chunk:
                    return False
                head += chunk
        except (OSError, TimeoutError):
            return False
        need = initial_message_length(head)
        assert need is not None
        header, rest = head[:need], head[need:]
        rewritten = rewrite_initial_message(header, proxy.rewrite_address or "")
        try:
            up_writer.write((rewritten if rewritten is not None else header) + rest)
            await up_writer.drain()
        except OSError:
            return False
        return True

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(READ_BYTES):
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
