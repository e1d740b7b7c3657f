"""The commit stage of an ensemble member: the only part of the pipeline that differs by role.

Rule 1 (leader): a prepped txn is proposed with the zxid prep stamped (the quorum core refuses
any other: the zxid has one owner) and answered on its Apply effect, once a quorum has logged
it. Requests of this server's own clients are found by zxid (ZooKeeperServer.origins).
Rule 2 (follower): writes, closeSession, createSession and sync go to the leader as REQUEST
packets (the raw request record and the connection's auth ids); a committed txn answers the
oldest forwarded request when it has that request's (session, cxid) (pyzk/pipeline/origins.py),
a sync when the leader's SYNC arrives (in FIFO order).
Rule 3 (both): the quorum core has already applied the txn to the tree the server reads;
the server only delivers its watch events and replies (ZooKeeperServer.deliver_applied).
Rule 4: sessions are global and have an owner, the server the client is connected to. The
leader alone expires sessions and decides owners: a reconnect to a follower waits for the
leader's REVALIDATE answer, which makes that follower the owner; a write that arrives through
any other server gets SESSIONMOVED (prep's checkSession). Followers report client activity in
their PING replies.
"""

from __future__ import annotations

import logging
import struct
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from jute.codes import Err, OpCode
from jute.codes import QuorumPacketType as P
from jute.primitives import JuteError
from jute.quorum import QuorumPacket
from pyzk.pipeline.origins import OriginsInForwardOrder
from pyzk.pipeline.prep import Prepared
from pyzk.pipeline.requests import WRITE_OPS, decode_record, prep_write_request
from pyzk.quorum.effects import Apply
from pyzk.quorum.errors import InvariantViolation
from pyzk.quorum.peer import Peer
from pyzk.quorum.reconfig import ReconfigPlanner
from pyzk.quorum.streams import (
    decode_request,
    decode_revalidate,
    encode_request,
    encode_revalidate,
    encode_revalidate_reply,
)
from pyzk.quorum.zab import Follower, Leader
from pyzk.quorum.zxid import is_epoch_start
from pyzk.server.commit import Barrier
from pyzk.server.zkserver import ClientSession, PendingRequest, ZooKeeperServer
from pyzk.sessions import SessionTracker
from pyzk.tree.datatree import DataTree

if TYPE_CHECKING:
    from pyzk.config import ServerConfig
    from pyzk.server.quorum_driver import QuorumDriver

logger = logging.getLogger(__name__)

_INT = struct.Struct(">i")


def build_role(config: ServerConfig, peer: Peer, driver: Any, *, now_ms: Callable[[], int],
               wall_ms: Callable[[], int]) -> tuple[ZooKeeperServer, LeaderCommit | FollowerCommit]:
    """The one place a role's server is assembled, once the Peer is established: a fresh
    ZooKeeperServer over the core's tree with the role's commit stage and session tracker.
    `driver` is what the stages talk to (QuorumDriver, or the simulator's stand-in)."""
    role = peer.role
    tree = peer.db.tree
    ctx = peer.ctx
    server = ZooKeeperServer(config, tree, now_ms=now_ms, wall_ms=wall_ms)
    server.quorum_config_text = lambda: ctx.verifier.config_text().encode()
    if config.local_sessions_enabled:
        server.local_sessions = SessionTracker(config.tick_time_ms, config.server_id, now_ms())
        server.upgrade_local_sessions = config.local_sessions_upgrading_enabled
    commit: LeaderCommit | FollowerCommit
    if isinstance(role, Leader):
        server.mode = "leader"
        commit = LeaderCommit(server, driver, role.last_proposed)
        server.prep.reconfig = ReconfigPlanner(lambda: ctx.verifier, lambda: ctx.last_seen_verifier,
                                               role.synced_sids, config.standalone_enabled)
    else:
        if not isinstance(role, Follower):
            raise InvariantViolation(f"no role to serve: {role!r}")
        server.mode = "follower"
        server.sessions = LearnerSessionTracker(config.tick_time_ms, config.server_id, now_ms(), tree,
                                                driver.touch_session)
        commit = FollowerCommit(server, driver, role.leader_sid)
    server.commit = commit
    started_ms = now_ms()
    peer_state = "leading - broadcast" if isinstance(role, Leader) else "following - broadcast"

    def quorum_monitor() -> dict[str, Any]:
        values: dict[str, Any] = {"peer_state": peer_state, "quorum_size": len(ctx.verifier.voters)}
        if isinstance(role, Leader):
            values.update(role.monitor_values())
            values["leader_uptime"] = now_ms() - started_ms
        return values

    server.quorum_monitor = quorum_monitor
    return server, commit


class LeaderCommit:
    def __init__(self, server: ZooKeeperServer, driver: QuorumDriver, last_proposed_zxid: int) -> None:
        self.server = server
        self.driver = driver
        self.last_proposed_zxid = last_proposed_zxid
        server.next_zxid = last_proposed_zxid + 1
        self._barriers: deque[tuple[int, Barrier]] = deque()  # (zxid to wait for, barrier)

    @property
    def queued(self) -> int:
        return len(self._barriers)

    def submit(self, item: Any) -> None:
        if isinstance(item, Barrier):
            # Leader.processSync: at once when nothing is outstanding, else after lastProposed.
            # Right after establishment lastProposed is the epoch's base zxid (counter 0), which
            # no txn has: nothing is outstanding then (waiting for it would let the next write's
            # reply overtake the sync's).
            last = self.last_proposed_zxid
            if last <= self.server.tree.last_processed_zxid or is_epoch_start(last):
                item.on_done()
            else:
                self._barriers.append((self.last_proposed_zxid, item))
            return
        self._propose(item)

    def _propose(self, prepared: Prepared) -> None:
        hdr = prepared.hdr
        zxid = self.driver.submit(hdr.clientId, hdr.cxid, hdr.type, prepared.txn, hdr.zxid)
        if zxid is None:
            logger.warning("Not leading any more: dropping txn 0x%x of session 0x%x", hdr.zxid, hdr.clientId)
            return
        self.last_proposed_zxid = zxid
        self.server.next_zxid = zxid + 1

    def on_apply(self, effect: Apply) -> None:
        hdr = effect.txn_header
        server = self.server
        server.deliver_applied(Prepared(hdr, effect.txn), effect.result,
                               server.origins.take(hdr.clientId, hdr.cxid, hdr.zxid, hdr.type))
        while self._barriers and self._barriers[0][0] <= effect.zxid:
            self._barriers.popleft()[1].on_done()

    def on_sessions_touched(self, touches: tuple[tuple[int, int], ...]) -> None:
        now = self.server.now_ms()
        for session_id, _timeout_ms in touches:
            self.server.sessions.touch(session_id, now)

    def on_learner_request(self, sid: int, packet: QuorumPacket) -> None:
        """A REQUEST or REVALIDATE that follower `sid` sent."""
        server = self.server
        now = server.now_ms()
        if packet.type == P.REVALIDATE:
            # Leader.revalidateSession: a live session now lives on that follower.
            session_id, _timeout_ms = decode_revalidate(packet.data)
            valid = server.sessions.touch(session_id, now)
            if valid:
                server.sessions.set_owner(session_id, sid)
            self.driver.send_packet(sid, QuorumPacket(int(P.REVALIDATE), packet.zxid,
                                                      encode_revalidate_reply(session_id, valid), None))
            return
        session_id, cxid, op, body = decode_request(packet.data)
        server.sessions.touch(session_id, now)
        zxid, time_ms = server.next_zxid, server.wall_ms()
        try:
            prepared = self._prep(sid, session_id, cxid, op, body, tuple(packet.authinfo or ()), zxid, time_ms)
        except Exception:
            # Every forwarded request gets a txn, or that follower would wait for it forever
            # (PrepRequestProcessor answers an unexpected failure with MARSHALLINGERROR).
            logger.exception("Failed to process request 0x%x:%d (op %d) from server %d", session_id, cxid, op, sid)
            prepared = server.prep.prep_error(session_id, cxid, Err.MARSHALLINGERROR, zxid, time_ms)
        self._propose(prepared)

    def _prep(self, sid: int, session_id: int, cxid: int, op: int, body: bytes, auth_ids: tuple[Any, ...],
              zxid: int, time_ms: int) -> Prepared:
        server = self.server
        prep = server.prep
        if op == OpCode.CREATE_SESSION and len(body) >= 4:
            (timeout_ms,) = _INT.unpack_from(body, 0)
            server.sessions.add_session(session_id, timeout_ms, server.now_ms())
            server.sessions.set_owner(session_id, sid)
            return prep.prep_create_session(session_id, timeout_ms, zxid, time_ms)
        if op == OpCode.CLOSE_SESSION:
            # No owner check: the last request of a session (PrepRequestProcessor).
            server.sessions.set_closing(session_id)
            return prep.prep_close_session(session_id, cxid, zxid, time_ms)
        if op not in WRITE_OPS:
            return prep.prep_error(session_id, cxid, Err.UNIMPLEMENTED, zxid, time_ms)
        try:
            record = decode_record(op, body, 0)
        except JuteError:
            return prep.prep_error(session_id, cxid, Err.MARSHALLINGERROR, zxid, time_ms)
        return prep_write_request(prep, op, record, session_id, cxid, auth_ids, zxid, time_ms, sid)


class FollowerCommit:
    def __init__(self, server: ZooKeeperServer, driver: QuorumDriver, leader_sid: int) -> None:
        self.server = server
        self.driver = driver
        self.leader_sid = leader_sid
        self.origins = OriginsInForwardOrder()
        self._syncs: deque[tuple[ClientSession, PendingRequest]] = deque()
        # Reconnects waiting for the leader's REVALIDATE answer (Learner.pendingRevalidations).
        self._revalidating: dict[int, ClientSession] = {}
        # Session -> (the connection it moved here on, the last zxid received from the leader
        # when the move was confirmed): older txns of the session answer nothing on it.
        self._moved_in: dict[int, tuple[ClientSession, int]] = {}

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
            moved = self._moved_in.get(conn.session_id)
            floor_zxid = moved[1] if moved is not None and moved[0] is conn else 0
            self.origins.add(conn.session_id, req.xid, conn, req, floor_zxid)
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

    def on_revalidated(self, session_id: int, valid: bool) -> None:
        conn = self._revalidating.pop(session_id, None)
        if conn is None:
            logger.warning("Missing session 0x%x for validation", session_id)
            return
        if valid:
            # Every proposal the leader made before answering is already in our log.
            self._moved_in[session_id] = (conn, self.driver.peer.db.last_logged_zxid)
        self.server.session_revalidated(conn, valid)

    def on_apply(self, effect: Apply) -> None:
        hdr = effect.txn_header
        self.server.deliver_applied(Prepared(hdr, effect.txn), effect.result,
                                    self.origins.take(hdr.clientId, hdr.cxid, hdr.zxid, hdr.type))
        if effect.result.closed_session is not None:
            self._moved_in.pop(hdr.clientId, None)  # bounded by the live sessions

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
