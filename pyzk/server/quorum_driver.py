"""The asyncio shell around one Peer: election port, quorum port, timers and the storage thread.

Rule 1: every input to the Peer is followed by `drain()`, which executes the Ready effects in
list order. Effects the server layer owns (Apply, RoleChanged, Established, LearnerRequest,
SessionsTouched, SyncReleased) go to `on_effect` in that same order. A drain never nests:
effects produced while one runs (a submit from `on_effect`) are executed after its batch.
Rule 2: election connections follow QuorumCnxManager (§3.1): the connection initiated by the
larger sid is kept; messages for a sid wait in a short queue while it (re)connects, and the
last message is re-sent on a new connection. With quorum TLS (server/quorum_tls.py) both
ports are dialed and accepted as QuorumCnxManager/Learner/Leader do it; the handlers below see
streams only after the handshake and the peer name check. With quorum SASL
(server/quorum_sasl.py) a dialing member authenticates right after connecting (election: after
its initial message), and the accepting member reads the exchange first.
Rule 3: Persist effects run in order on one storage thread; `persisted(id)` reaches the Peer
only after the write and its fsync returned. A storage failure is fatal (`on_fatal`).
Rule 4: the Peer's clock is wall-clock ms, because it stamps proposals with it (TxnHeader.time).
Rule 5: quorum packets are queued per connection and written once per loop turn (as Apache's
LearnerHandler flushes its queue when it runs dry): one send per link per turn, not one per
packet. Bytes queued for a connection go to that connection only, and are written before it
is closed on purpose.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from jute.primitives import JuteError
from jute.quorum import QuorumPacket
from pyzk.config import QuorumServer
from pyzk.quorum.effects import (
    Connect,
    Disconnect,
    Effect,
    Persist,
    SendNotification,
    SendPacket,
)
from pyzk.quorum.errors import PeerProtocolError
from pyzk.quorum.messages import (
    InitialMessage,
    decode_initial_message,
    decode_notification,
    encode_initial_message,
    encode_notification,
)
from pyzk.quorum.peer import Peer
from pyzk.quorum.streams import (
    ElectionFrameSplitter,
    QuorumStreamSplitter,
    election_frame,
    learner_sid,
)
from pyzk.quorum.zab import Leader
from pyzk.server.quorum_disk import QuorumDisk
from pyzk.server.quorum_sasl import QuorumAuthFailed, QuorumSasl, authenticate_learner, authenticate_server
from pyzk.server.quorum_tls import QuorumListener, QuorumTls, open_quorum_connection

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0  # zookeeper.cnxTimeout
HANDSHAKE_TIMEOUT_S = 5.0
ELECTION_QUEUE_MAX = 16  # QuorumCnxManager keeps a small per-sid queue and drops the oldest
READ_BYTES = 1 << 16
DRAIN_ROUNDS_MAX = 10_000
LEARNER_WAIT_POLL_S = 0.02


def wall_ms() -> int:
    return int(time.time() * 1000)


# Servers outside the config whose election addresses are remembered (joiners by reconfig;
# a bound against a stream of made-up sids: the oldest is forgotten first).
OUTSIDERS_MAX = 64


class QuorumDriver:
    def __init__(self, my_id: int, servers: dict[int, QuorumServer], peer: Peer, disk: QuorumDisk,
                 on_effect: Callable[[Effect], None], on_fatal: Callable[[str], None], *,
                 listen_on_all_ips: bool = False, tls: QuorumTls | None = None,
                 sasl: QuorumSasl | None = None) -> None:
        self.my_id = my_id
        self.servers = servers
        self.peer = peer
        self.disk = disk
        self.on_effect = on_effect
        self.on_fatal = on_fatal
        self.listen_on_all_ips = listen_on_all_ips
        self.tls = tls
        self.sasl = sasl
        self._listeners: list[asyncio.base_events.Server] = []
        self._tls_listeners: list[QuorumListener] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._election_links: dict[int, asyncio.StreamWriter] = {}
        self._election_queues: dict[int, deque[bytes]] = {}
        self._election_last: dict[int, bytes] = {}
        self._election_dialing: set[int] = set()
        # Election addresses of servers outside the config, from their initial messages.
        self._election_addresses: dict[int, tuple[str, int]] = {}
        self._quorum_links: dict[int, asyncio.StreamWriter] = {}
        self._quorum_dials: dict[int, int] = {}  # sid -> generation of the newest Connect
        self._quorum_out: dict[asyncio.StreamWriter, list[bytes]] = {}  # Rule 5
        self._flush_scheduled = False
        self._encoded_packet: QuorumPacket | None = None  # the last SendPacket's packet ...
        self._encoded_bytes = b""  # ... and its encoding
        self._persist_queue: list[Persist] = []
        self._persisting = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="QuorumSyncThread")
        self._draining = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at_ms: int | None = None
        self._closed = False

    # ---- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        me = self.servers[self.my_id]
        host = "0.0.0.0" if self.listen_on_all_ips else me.host
        if self.tls is None:
            self._listeners.append(await asyncio.start_server(
                self._on_election_accept, host, me.election_port, reuse_address=True))
        else:
            self._listen_tls(self._accept_election, host, me.election_port)
        logger.info("%d is accepting connections now, my election bind port: %s:%d",
                    self.my_id, host, me.election_port)
        if self.tls is None:
            self._listeners.append(await asyncio.start_server(
                self._on_quorum_accept, host, me.quorum_port, reuse_address=True))
        else:
            self._listen_tls(self._accept_quorum, host, me.quorum_port)
        self.drain()

    def _listen_tls(self, handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any],
                    host: str, port: int) -> None:
        assert self.tls is not None
        listener = QuorumListener(self.tls, handler, self._spawn, HANDSHAKE_TIMEOUT_S)
        listener.bind(host, port)
        self._tls_listeners.append(listener)
        self._spawn(listener.serve())

    # Connection handlers run as our own tasks, so that close() can cancel them cleanly.
    def _on_election_accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._spawn(self._accept_election(reader, writer))

    def _on_quorum_accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._spawn(self._accept_quorum(reader, writer))

    async def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        for listener in self._listeners:
            listener.close()
        for tls_listener in self._tls_listeners:
            tls_listener.close()
        for writer in [*self._election_links.values(), *self._quorum_links.values()]:
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        for _ in range(100):  # bounded: let a running storage batch reach disk
            if not self._persisting:
                break
            await asyncio.sleep(0.01)
        self._executor.shutdown(wait=True)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- inputs from the server layer ----------------------------------------------------

    def submit(self, session_id: int, cxid: int, txn_type: int, txn: object, zxid: int) -> int | None:
        """Propose the txn prep stamped with `zxid` (leader); None when it cannot be proposed."""
        try:
            proposed = self.peer.submit(session_id, cxid, txn_type, txn, wall_ms(), zxid)
        except AssertionError as exc:  # InvariantViolation: stop rather than diverge
            logger.exception("quorum core invariant violated")
            self.on_fatal(f"quorum core invariant violated: {exc}")
            return None
        self.drain()
        return proposed

    def touch_session(self, session_id: int, timeout_ms: int) -> None:
        self.peer.touch_session(session_id, timeout_ms)

    def send_packet(self, to: int, packet: QuorumPacket) -> bool:
        """A packet the server layer sends itself (REQUEST, REVALIDATE) on the quorum link;
        False when there is no open link to `to`."""
        writer = self._quorum_links.get(to)
        if writer is None or writer.is_closing():
            return False
        self._queue_quorum(writer, packet.encode())
        return True

    def _queue_quorum(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        queued = self._quorum_out.get(writer)
        if queued is not None:
            queued.append(data)
            return
        self._quorum_out[writer] = [data]
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_quorum)

    def _flush_quorum(self) -> None:
        self._flush_scheduled = False
        queued, self._quorum_out = self._quorum_out, {}
        for writer, parts in queued.items():
            if not writer.is_closing():
                writer.write(parts[0] if len(parts) == 1 else b"".join(parts))

    def _close_quorum_link(self, writer: asyncio.StreamWriter) -> None:
        """Close a link we drop on purpose, after what was queued for it."""
        parts = self._quorum_out.pop(writer, None)
        if parts and not writer.is_closing():
            writer.write(b"".join(parts))
        writer.close()

    # ---- the Ready loop ------------------------------------------------------------------

    def drain(self) -> None:
        if self._draining or self._closed:
            return
        self._draining = True
        try:
            for _ in range(DRAIN_ROUNDS_MAX):
                ready = self.peer.ready()
                if ready is None:
                    break
                self.peer.advance(ready)
                for effect in ready.effects:
                    self._execute(effect)
            else:
                # A big commit (one Ready per applied txn) outlasted this turn: go on in the
                # next one, before any new input has to apply the rest at once (apply_all).
                asyncio.get_running_loop().call_soon(self.drain)
        finally:
            self._draining = False
        self._arm_timer(self.peer.next_timer_ms())

    def _execute(self, effect: Effect) -> None:
        if isinstance(effect, SendNotification):
            self._send_notification(effect.to, encode_notification(effect.notification))
        elif isinstance(effect, SendPacket):
            writer = self._quorum_links.get(effect.to)
            if writer is not None and not writer.is_closing():
                if effect.snapshot:  # a SNAP's image: written as is, not copied into a join
                    queued = self._quorum_out.pop(writer, [])
                    writer.write(b"".join([*queued, effect.packet.encode()]))
                    writer.write(effect.snapshot)
                else:
                    if effect.packet is not self._encoded_packet:  # send_all: one packet, many links
                        self._encoded_packet = effect.packet
                        self._encoded_bytes = effect.packet.encode()
                    self._queue_quorum(writer, self._encoded_bytes)
        elif isinstance(effect, Persist):
            self._persist(effect)
        elif isinstance(effect, Connect):
            self._connect_quorum(effect.to)
        elif isinstance(effect, Disconnect):
            self._quorum_dials[effect.to] = self._quorum_dials.get(effect.to, 0) + 1
            writer = self._quorum_links.pop(effect.to, None)
            if writer is not None:
                self._close_quorum_link(writer)
        else:
            self.on_effect(effect)

    def _step(self, action: Callable[[int], None]) -> None:
        """Run one Peer input (given the clock) and drain; our own invariant failures are fatal."""
        if self._closed:
            return
        try:
            action(wall_ms())
        except AssertionError as exc:  # InvariantViolation: never serve data we cannot trust
            logger.exception("quorum core invariant violated")
            self.on_fatal(f"quorum core invariant violated: {exc}")
            return
        self.drain()

    def _arm_timer(self, at_ms: int | None) -> None:
        if self._timer is not None and at_ms is not None and self._timer_at_ms is not None \
                and self._timer_at_ms <= at_ms:
            # The armed timer fires first; every tick is guarded by the clock, so an early one
            # does nothing and re-arms. A follower's deadline moves with every packet it hears:
            # re-arming each time cost a timer handle per packet.
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at_ms = at_ms
        if at_ms is None or self._closed:
            return
        # +1 ms: fire after the due time, never a hair before it (wall and loop clocks differ).
        delay_s = max(0, at_ms - wall_ms() + 1) / 1000.0
        self._timer = asyncio.get_running_loop().call_later(delay_s, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at_ms = None
        self._step(self.peer.tick)

    # ---- storage -------------------------------------------------------------------------

    def _persist(self, persist: Persist) -> None:
        self._persist_queue.append(persist)
        if not self._persisting:
            self._persisting = True
            self._spawn(self._write_persists())

    async def _write_persists(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._persist_queue and not self._closed:
                batch, self._persist_queue = self._persist_queue, []
                await loop.run_in_executor(self._executor, self.disk.write, batch)
                last_id = batch[-1].persist_id
                self._step(lambda now, last=last_id: self.peer.persisted(last, now))
        except Exception as exc:
            logger.exception("Severe unrecoverable error while writing to the data directory")
            self.on_fatal(f"storage failure: {exc}")
        finally:
            self._persisting = False

    # ---- election port -------------------------------------------------------------------

    def _send_notification(self, to: int, payload: bytes) -> None:
        frame = election_frame(payload)
        self._election_last[to] = frame
        writer = self._election_links.get(to)
        if writer is not None and not writer.is_closing():
            writer.write(frame)
            return
        self._election_queues.setdefault(to, deque(maxlen=ELECTION_QUEUE_MAX)).append(frame)
        self._dial_election(to)

    def _election_target(self, sid: int) -> tuple[str, int] | None:
        server = self.servers.get(sid)
        if server is not None:
            return server.host, server.election_port
        return self._election_addresses.get(sid)

    def _dial_election(self, sid: int) -> None:
        if sid in self._election_dialing or self._election_target(sid) is None or self._closed:
            return
        self._election_dialing.add(sid)
        self._spawn(self._dial_election_task(sid))

    async def _dial_election_task(self, sid: int) -> None:
        target = self._election_target(sid)
        me = self.servers[self.my_id]
        if target is None:
            self._election_dialing.discard(sid)
            return
        host, port = target
        try:
            reader, writer = await open_quorum_connection(host, port, self.tls, CONNECT_TIMEOUT_S)
        except (TimeoutError, OSError) as exc:
            logger.debug("Cannot open channel to %d at election address %s:%d: %s", sid, host, port, exc)
            return
        finally:
            self._election_dialing.discard(sid)
        writer.write(encode_initial_message(self.my_id, f"{me.host}:{me.election_port}"))
        if self.sasl is not None:
            self._election_dialing.add(sid)  # no second dial while this one authenticates
            try:
                await authenticate_learner(reader, writer, self.sasl, f"{host}:{port}", host)
            except QuorumAuthFailed as exc:
                logger.warning("Cannot open channel to %d: %s", sid, exc)
                await _close_quietly(writer)
                return
            finally:
                self._election_dialing.discard(sid)
        if sid > self.my_id:
            # The larger sid keeps the connection it initiates: it will dial back.
            logger.info("Have smaller server identifier, so dropping the connection: (myId:%d --> sid:%d)",
                        self.my_id, sid)
            await _close_quietly(writer)
            return
        self._adopt_election(sid, reader, writer)

    async def _accept_election(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            initial = await asyncio.wait_for(_read_initial_message(reader), HANDSHAKE_TIMEOUT_S)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, PeerProtocolError) as exc:
            logger.warning("Bad election connection header: %s", exc)
            await _close_quietly(writer)
            return
        sid = initial.sid
        prefix = b""
        if self.sasl is not None:
            try:
                prefix = await authenticate_server(reader, writer, self.sasl, f"sid {sid}")
            except QuorumAuthFailed as exc:
                logger.warning("Closing the election connection of sid %d: %s", sid, exc)
                await _close_quietly(writer)
                return
        if sid not in self.servers and sid != self.my_id:
            # QuorumCnxManager.handleConnection: a server outside the config (one that is to
            # join by reconfig) is heard too; a smaller id is dialed back at the election
            # address its header gives.
            address = _election_address(initial.addresses)
            if address is not None:
                if sid not in self._election_addresses and len(self._election_addresses) >= OUTSIDERS_MAX:
                    self._election_addresses.pop(next(iter(self._election_addresses)))  # bounded
                self._election_addresses[sid] = address
            elif sid < self.my_id:
                sid = self.my_id  # nowhere to dial back: ignored below
        if sid == self.my_id:
            logger.warning("Ignoring an election connection from sid %d", initial.sid)
            await _close_quietly(writer)
            return
        if sid < self.my_id:
            # Their connection loses: close it and dial them ourselves.
            await _close_quietly(writer)
            self._dial_election(sid)
            return
        self._adopt_election(sid, reader, writer, prefix)

    def _adopt_election(self, sid: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        prefix: bytes = b"") -> None:
        old = self._election_links.get(sid)
        if old is not None and old is not writer:
            old.close()
        self._election_links[sid] = writer
        queue = self._election_queues.pop(sid, None)
        if queue:
            for frame in queue:
                writer.write(frame)
        elif sid in self._election_last:
            writer.write(self._election_last[sid])  # SendWorker re-sends the last message
        self._spawn(self._read_election(sid, reader, writer, prefix))

    async def _read_election(self, sid: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                             prefix: bytes = b"") -> None:
        splitter = ElectionFrameSplitter()
        try:
            while data := prefix or await reader.read(READ_BYTES):
                prefix = b""
                for payload in splitter.feed(data):
                    notification = decode_notification(sid, payload)
                    if notification is not None:
                        self._step(lambda now, n=notification: self.peer.step_notification(n, now))
        except (OSError, PeerProtocolError) as exc:
            logger.info("Election connection with %d dropped: %s", sid, exc)
        finally:
            if self._election_links.get(sid) is writer:
                del self._election_links[sid]
            writer.close()

    # ---- quorum port ---------------------------------------------------------------------

    def _connect_quorum(self, to: int) -> None:
        generation = self._quorum_dials.get(to, 0) + 1
        self._quorum_dials[to] = generation
        old = self._quorum_links.pop(to, None)
        if old is not None:
            self._close_quorum_link(old)
        self._spawn(self._dial_quorum(to, generation))

    async def _dial_quorum(self, to: int, generation: int) -> None:
        server = self.servers.get(to)
        try:
            if server is None:
                raise OSError(f"no server.{to} in the configuration")
            reader, writer = await open_quorum_connection(
                server.host, server.quorum_port, self.tls, CONNECT_TIMEOUT_S)
        except (TimeoutError, OSError) as exc:
            if self._quorum_dials.get(to) == generation:
                logger.warning("Unexpected exception trying to connect to leader %d: %s", to, exc)
                self._step(lambda now: self.peer.disconnected(to, now))
            return
        if self.sasl is not None and self._quorum_dials.get(to) == generation:
            try:
                await authenticate_learner(reader, writer, self.sasl, f"{server.host}:{server.quorum_port}",
                                           server.host)
            except QuorumAuthFailed as exc:
                logger.warning("Unexpected exception trying to connect to leader %d: %s", to, exc)
                await _close_quietly(writer)
                if self._quorum_dials.get(to) == generation:
                    self._step(lambda now: self.peer.disconnected(to, now))
                return
        if self._quorum_dials.get(to) != generation:
            await _close_quietly(writer)
            return
        self._quorum_links[to] = writer
        self._step(lambda now: self.peer.connected(to, now))
        await self._read_quorum(to, reader, writer, QuorumStreamSplitter())

    async def _accept_quorum(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """A learner connects: its first packet (FOLLOWERINFO) names its sid."""
        splitter = QuorumStreamSplitter()
        try:
            prefix = b""
            if self.sasl is not None:
                prefix = await authenticate_server(reader, writer, self.sasl, _peer_of(writer))
            while data := prefix or await reader.read(READ_BYTES):
                prefix = b""
                packets = splitter.feed(data)
                if not packets:
                    continue
                sid = learner_sid(packets[0][0])
                if sid is None:
                    raise PeerProtocolError(f"first quorum packet has type {packets[0][0].type}")
                if not await self._leading_within(self._learner_wait_s()):
                    # A Java server binds its quorum port only once it leads, so a learner
                    # that comes early is refused and retries; this one waited and we do not lead.
                    logger.info("Closing the quorum connection of %d: not leading", sid)
                    break
                old = self._quorum_links.get(sid)
                self._quorum_links[sid] = writer
                if old is not None:
                    self._close_quorum_link(old)
                    self._step(lambda now, replaced=sid: self.peer.disconnected(replaced, now))
                for packet, snapshot in packets:
                    self._deliver(sid, writer, packet, snapshot)
                await self._read_quorum(sid, reader, writer, splitter)
                return
        except (OSError, PeerProtocolError, JuteError, QuorumAuthFailed) as exc:
            logger.warning("Dropping a learner connection: %s", exc)
        await _close_quietly(writer)

    def _learner_wait_s(self) -> float:
        config = self.peer.ctx.config
        return config.init_limit_ticks * config.tick_time_ms / 1000.0

    async def _leading_within(self, timeout_s: float) -> bool:
        """Whether this peer leads now or starts leading within `timeout_s` (bounded polling):
        a learner may decide the election before we do and send FOLLOWERINFO while we look."""
        deadline = time.monotonic() + timeout_s
        while not self._closed:
            if isinstance(self.peer.role, Leader):
                return True
            if self.peer.role is not None or time.monotonic() >= deadline:
                return False
            await asyncio.sleep(LEARNER_WAIT_POLL_S)
        return False

    async def _read_quorum(self, sid: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                           splitter: QuorumStreamSplitter) -> None:
        try:
            while data := await reader.read(READ_BYTES):
                for packet, snapshot in splitter.feed(data):
                    if self._quorum_links.get(sid) is not writer:
                        return
                    self._deliver(sid, writer, packet, snapshot)
        except (OSError, PeerProtocolError, JuteError) as exc:
            logger.warning("Quorum connection with %d dropped: %s", sid, exc)
        finally:
            self._quorum_out.pop(writer, None)
            writer.close()
            if self._quorum_links.get(sid) is writer:
                del self._quorum_links[sid]
                self._step(lambda now: self.peer.disconnected(sid, now))

    def _deliver(self, sid: int, writer: asyncio.StreamWriter, packet: QuorumPacket, snapshot: bytes) -> None:
        if self._quorum_links.get(sid) is writer:
            self._step(lambda now: self.peer.step_packet(sid, packet, snapshot, now))


def _election_address(addresses: tuple[str, ...]) -> tuple[str, int] | None:
    """The first `host:port` of an initial message's election addresses, if it parses."""
    for address in addresses:
        host, _, port = address.rpartition(":")
        if host and port.isdigit():
            return host.strip("[]"), int(port)
    return None


async def _read_initial_message(reader: asyncio.StreamReader) -> InitialMessage:
    """QuorumCnxManager's initial message: the sender's sid (both the 3.4 and the 3.5+ form)
    and, in the 3.5+ form, its election address(es)."""
    buf = await reader.readexactly(8)
    for _ in range(3):
        decoded = decode_initial_message(buf)
        if decoded is not None:
            return decoded[0]
        need = 20 if len(buf) < 20 else 20 + int.from_bytes(buf[16:20], "big", signed=True)
        buf += await reader.readexactly(need - len(buf))
    raise PeerProtocolError("election header did not complete")


def _peer_of(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if peer else "?"


async def _close_quietly(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
