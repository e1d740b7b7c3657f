"""The follower's commit stage: forward to the leader, answer on the leader's COMMIT.

Rule 1: writes, closeSession, createSession and sync go to the leader as REQUEST packets (the
        raw request record and the connection's auth ids); nothing is committed locally.
Rule 2: a committed txn answers the oldest forwarded request when it has that request's
        (session, cxid) (pyzk/pipeline/origins.py), a sync when the leader's SYNC arrives (in
        FIFO order). The quorum core has already applied the txn to the tree the server reads;
        the server only delivers its watch events and replies (ZooKeeperServer.deliver_applied).
Rule 3: sessions are global and their owner is decided by the leader: a reconnect here waits
        for the leader's REVALIDATE answer, which makes this server the owner; a txn of the
        session logged before that answer never answers the new connection. Client activity
        is reported to the leader (LearnerSessionTracker), which alone expires sessions.
"""

from __future__ import annotations

import logging
import struct
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from jute.codes import OpCode
from jute.codes import QuorumPacketType as P
from jute.quorum import QuorumPacket
from pyzk.pipeline.origins import OriginsInForwardOrder
from pyzk.pipeline.prep import Prepared
from pyzk.quorum.effects import Apply
from pyzk.quorum.streams import encode_request, encode_revalidate
from pyzk.sessions import SessionTracker
from pyzk.tree.datatree import DataTree

if TYPE_CHECKING:
    from pyzk.pipeline.clientsession import ClientSession, PendingRequest
    from pyzk.pipeline.zkserver import ZooKeeperServer
    from pyzk.server.quorum_driver import QuorumDriver

logger = logging.getLogger(__name__)

_INT = struct.Struct(">i")
MOVED_IN_FLOORS_MAX = 4096  # past this, floors our log has passed are dropped


class FollowerCommit:
    def __init__(self, server: ZooKeeperServer, driver: QuorumDriver, leader_sid: int, *,
                 observer: bool = False) -> None:
        self.server = server
        self.driver = driver
        self.leader_sid = leader_sid
        self.observer = observer
        self.origins = OriginsInForwardOrder()
        self._syncs: deque[tuple[ClientSession, PendingRequest]] = deque()
        # Reconnects waiting for the leader's REVALIDATE answer (Learner.pendingRevalidations).
        self._revalidating: dict[int, ClientSession] = {}
        # Sessions that moved here: the leader's last proposal when it answered (on_revalidated).
        self._moved_in_floor: dict[int, int] = {}
        # An observer under a leader that does not say its last proposal: moved sessions wait
        # for the next PING, which does (on_leader_pinged).
        self._awaiting_ping: dict[int, ClientSession] = {}

    @property
    def queued(self) -> int:
        return len(self._syncs) + len(self.origins)

    def submit(self, item: Any) -> None:
        """Nothing is committed locally on a follower: every txn comes from the leader."""
        logger.error("a follower cannot commit %r locally; dropped", item)

    def forward(self, conn: ClientSession, req: PendingRequest, body: bytes) -> None:
        """Send a request to the leader (Learner.request); its answer waits for its txn."""
        if req.op == OpCode.SYNC:
            self._syncs.append((conn, req))
        else:
            # Rule 4 of origins.py: only a txn the leader proposed after this request was
            # forwarded can answer it (a moved session's requests are all forwarded after the
            # leader answered its REVALIDATE: a follower's log is past that answer; an
            # observer, which gets no proposals, keeps the answer's zxid as the floor).
            floor = self.driver.peer.db.last_logged_zxid
            moved_in = self._moved_in_floor.get(conn.session_id)
            if moved_in is not None:
                if moved_in > floor:
                    floor = moved_in
                else:
                    del self._moved_in_floor[conn.session_id]  # our log has passed it
            self.origins.add(conn.session_id, req.xid, conn, req, floor)
        data = encode_request(conn.session_id, req.xid, req.op, body)
        self.driver.send_packet(self.leader_sid, QuorumPacket(int(P.REQUEST), -1, data, list(conn.auth_ids)))

    def forward_upgrade(self, session_id: int, timeout_ms: int) -> None:
        """A local session becomes global: its createSession goes to the leader ahead of the
        request that needs it; no client waits for this txn's reply."""
        data = encode_request(session_id, 0, OpCode.CREATE_SESSION, _INT.pack(timeout_ms))
        self.driver.send_packet(self.leader_sid, QuorumPacket(int(P.REQUEST), -1, data, None))

    def revalidate(self, conn: ClientSession, session_id: int, timeout_ms: int) -> None:
        """Learner.validateSession: only the leader can say whether the session lives on."""
        earlier = self._revalidating.get(session_id)
        if earlier is not None and earlier is not conn:
            earlier.close()
        self._revalidating[session_id] = conn
        packet = QuorumPacket(int(P.REVALIDATE), -1, encode_revalidate(session_id, timeout_ms), None)
        if not self.driver.send_packet(self.leader_sid, packet):
            # No link to the leader: refuse rather than guess.
            del self._revalidating[session_id]
            conn.close()

    def on_revalidated(self, session_id: int, valid: bool, leader_zxid: int = -1) -> None:
        """The leader's REVALIDATE answer. `leader_zxid`, its last proposal then, is the moved
        session's floor (origins.py Rule 4) until our log passes it: an observer logs only
        committed txns (INFORM), so its own log may be behind proposals made for the session's
        earlier connections. A Java leader sends -1: a follower needs no more (it has logged
        every proposal sent before the answer), an observer waits for the leader's next PING."""
        conn = self._revalidating.pop(session_id, None)
        if conn is None:
            logger.warning("Missing session 0x%x for validation", session_id)
            return
        if valid and leader_zxid < 0 and self.observer:
            earlier = self._awaiting_ping.get(session_id)
            if earlier is not None and earlier is not conn:
                earlier.close()
            self._awaiting_ping[session_id] = conn
            return
        if valid:
            self._set_moved_in_floor(session_id, leader_zxid)
        self.server.session_revalidated(conn, valid)

    def on_leader_pinged(self, leader_zxid: int) -> None:
        """The leader's PING (an observer's): its zxid is the leader's last proposal, after
        every one made before it answered the REVALIDATEs still waiting here."""
        waiting, self._awaiting_ping = self._awaiting_ping, {}
        for session_id, conn in waiting.items():
            self._set_moved_in_floor(session_id, leader_zxid)
            self.server.session_revalidated(conn, True)

    def _set_moved_in_floor(self, session_id: int, leader_zxid: int) -> None:
        logged = self.driver.peer.db.last_logged_zxid
        if leader_zxid <= logged:
            return
        if len(self._moved_in_floor) >= MOVED_IN_FLOORS_MAX:
            self._moved_in_floor = {s: z for s, z in self._moved_in_floor.items() if z > logged}
        self._moved_in_floor[session_id] = leader_zxid

    def on_apply(self, effect: Apply) -> None:
        hdr = effect.txn_header
        self.server.deliver_applied(Prepared(hdr, effect.txn), effect.result,
                                    self.origins.take(hdr.clientId, hdr.cxid, hdr.zxid, hdr.type))

    def on_sync_released(self) -> None:
        if self._syncs:
            conn, req = self._syncs.popleft()
            self.server.answer_sync(conn, req)


class LearnerSessionTracker(SessionTracker):
    """A follower's sessions: valid while the replicated tree holds them; touches are reported
    to the leader (in PING replies), which alone expires sessions."""

    def __init__(self, tick_time_ms: int, server_id: int, now_ms: int, tree: DataTree,
                 report_touch: Callable[[int, int], None]) -> None:
        super().__init__(tick_time_ms, server_id, now_ms)
        self.tree = tree
        self.report_touch = report_touch

    def touch(self, session_id: int, now_ms: int) -> bool:
        timeout_ms = self.tree.sessions.get(session_id)
        if timeout_ms is None:
            timeout_ms = self.timeout_of(session_id)  # created here, its txn not applied yet
            if timeout_ms is None:
                return False
        if self.is_closing(session_id):
            return False
        if session_id not in self:
            self.add_session(session_id, timeout_ms, now_ms)
        super().touch(session_id, now_ms)
        self.report_touch(session_id, timeout_ms)
        return True
