"""The commit stage of an ensemble member: the only part of the pipeline that differs by role.

Rule 1 (leader): a prepped txn is proposed with Peer.submit and answered on its Apply effect,
once a quorum has logged it. Prep must stamp the zxid Zab assigns: ZooKeeperServer.next_zxid
is kept at the leader's last proposed zxid + 1, and every prep is followed by its submit.
Rule 2 (follower): writes, closeSession and sync go to the leader as REQUEST packets (the raw
request record and the connection's auth ids); the reply is produced when the txn with the
same (session, cxid) is applied here, a sync when the leader's SYNC arrives (in FIFO order).
Rule 3 (both): the quorum core has already applied the txn to the tree the server reads;
the server only delivers its watch events and replies (ZooKeeperServer.deliver_applied).
Rule 4: sessions are global. The leader alone expires them; followers report client activity
in their PING replies; a session is valid on a follower while the replicated tree holds it.
"""

from __future__ import annotations

import logging
import struct
from collections import deque
from collections.abc import Callable
from typing import Any

from jute.codes import Err, OpCode
from jute.codes import QuorumPacketType as P
from jute.multi import MULTI_READ_OP_RECORDS, decode_multi_request
from jute.primitives import JuteError
from jute.quorum import QuorumPacket
from pyzk.pipeline.prep import Prepared
from pyzk.quorum.driver import QuorumDriver
from pyzk.quorum.streams import (
    decode_request,
    decode_revalidate,
    encode_request,
    encode_revalidate_reply,
)
from pyzk.server.commit import Barrier
from pyzk.server.zkserver import (
    REQUEST_RECORDS,
    WRITE_OPS,
    ClientSession,
    ZooKeeperServer,
)
from pyzk.sessions import SessionTracker
from pyzk.storage.format import decode_txn_entry
from pyzk.tree.datatree import ApplyResult, DataTree

logger = logging.getLogger(__name__)

_INT = struct.Struct(">i")


def _deliver(server: ZooKeeperServer, driver: QuorumDriver, zxid: int, rc: ApplyResult) -> None:
    entry = driver.peer.db.entry(zxid)
    if entry is None:
        logger.error("applied txn 0x%x is not in the log; no reply for it", zxid)
        return
    hdr, txn, _ = decode_txn_entry(entry)
    server.deliver_applied(Prepared(hdr, txn), rc)


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
            if self.last_proposed_zxid <= self.server.tree.last_processed_zxid:
                item.on_done()
            else:
                self._barriers.append((self.last_proposed_zxid, item))
            return
        self._propose(item)

    def _propose(self, prepared: Prepared) -> None:
        hdr = prepared.hdr
        zxid = self.driver.submit(hdr.clientId, hdr.cxid, hdr.type, prepared.txn)
        if zxid is None:
            logger.warning("Not leading any more: dropping txn 0x%x of session 0x%x", hdr.zxid, hdr.clientId)
            return
        if zxid != hdr.zxid:
            logger.error("prep stamped zxid 0x%x but Zab proposed 0x%x", hdr.zxid, zxid)
        self.last_proposed_zxid = zxid
        self.server.next_zxid = zxid + 1

    def on_apply(self, zxid: int, rc: ApplyResult) -> None:
        _deliver(self.server, self.driver, zxid, rc)
        while self._barriers and self._barriers[0][0] <= zxid:
            self._barriers.popleft()[1].on_done()

    def on_sessions_touched(self, touches: tuple[tuple[int, int], ...]) -> None:
        now = self.server.now_ms()
        for session_id, _timeout_ms in touches:
            self.server.sessions.touch(session_id, now)

    def on_learner_request(self, sid: int, packet: QuorumPacket) -> None:
        """A REQUEST (or REVALIDATE) a follower forwarded: prep it like a local request."""
        server = self.server
        now = server.now_ms()
        if packet.type == P.REVALIDATE:
            session_id, _timeout_ms = decode_revalidate(packet.data)
            valid = server.sessions.touch(session_id, now)
            self.driver.send_packet(sid, QuorumPacket(int(P.REVALIDATE), packet.zxid,
                                                      encode_revalidate_reply(session_id, valid), None))
            return
        session_id, cxid, op, body = decode_request(packet.data)
        server.sessions.touch(session_id, now)
        self._propose(self._prep(session_id, cxid, op, body, tuple(packet.authinfo or ())))

    def _prep(self, session_id: int, cxid: int, op: int, body: bytes, auth_ids: tuple[Any, ...]) -> Prepared:
        server = self.server
        prep = server.prep
        zxid = server.next_zxid
        time_ms = server.wall_ms()
        if op == OpCode.CREATE_SESSION and len(body) >= 4:
            (timeout_ms,) = _INT.unpack_from(body, 0)
            server.sessions.add_session(session_id, timeout_ms, server.now_ms())
            return prep.prep_create_session(session_id, timeout_ms, zxid, time_ms)
        if op == OpCode.CLOSE_SESSION:
            server.sessions.set_closing(session_id)
            return prep.prep_close_session(session_id, cxid, zxid, time_ms)
        if op not in WRITE_OPS:
            return prep.prep_error(session_id, cxid, Err.UNIMPLEMENTED, zxid, time_ms)
        try:
            if op == OpCode.MULTI:
                ops = decode_multi_request(body, 0, len(body))
                if any(t in MULTI_READ_OP_RECORDS for t, _ in ops):
                    return prep.prep_error(session_id, cxid, Err.MARSHALLINGERROR, zxid, time_ms)
                return prep.prep_multi(ops, session_id, cxid, auth_ids, zxid, time_ms)
            record, _ = REQUEST_RECORDS[op].decode_from(body, 0, len(body))
        except JuteError:
            return prep.prep_error(session_id, cxid, Err.MARSHALLINGERROR, zxid, time_ms)
        return prep.prep_write(op, record, session_id, cxid, auth_ids, zxid, time_ms)


class FollowerCommit:
    def __init__(self, server: ZooKeeperServer, driver: QuorumDriver, leader_sid: int) -> None:
        self.server = server
        self.driver = driver
        self.leader_sid = leader_sid
        self._syncs: deque[Callable[[], None]] = deque()

    @property
    def queued(self) -> int:
        return len(self._syncs)

    def submit(self, item: Any) -> None:
        """Only createSession reaches here (ZooKeeperServer.connect); it goes to the leader."""
        if isinstance(item, Prepared) and item.hdr.type == OpCode.CREATE_SESSION:
            body = _INT.pack(item.txn.timeOut)
            self._send(encode_request(item.hdr.clientId, 0, OpCode.CREATE_SESSION, body), None)
            return
        logger.error("a follower cannot commit %r locally; dropped", item)

    def forward(self, conn: ClientSession, xid: int, op: int, body: bytes, on_synced: Callable[[], None]) -> None:
        if op == OpCode.SYNC:
            self._syncs.append(on_synced)
        self._send(encode_request(conn.session_id, xid, op, body), list(conn.auth_ids))

    def _send(self, data: bytes, auth_ids: list[Any] | None) -> None:
        self.driver.send_packet(self.leader_sid, QuorumPacket(int(P.REQUEST), -1, data, auth_ids))

    def on_apply(self, zxid: int, rc: ApplyResult) -> None:
        _deliver(self.server, self.driver, zxid, rc)

    def on_sync_released(self) -> None:
        if self._syncs:
            self._syncs.popleft()()


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
