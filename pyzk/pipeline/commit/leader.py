"""The leader's commit stage: propose, and answer once a quorum has logged the txn.

Rule 1: a prepped txn is proposed with the zxid prep stamped (the quorum core refuses any
        other: the zxid has one owner) and answered on its Apply effect, once a quorum has
        logged it. Requests of this server's own clients are found by zxid
        (ZooKeeperServer.origins).
Rule 2: the quorum core has already applied the txn to the tree the server reads; the server
        only delivers its watch events and replies (ZooKeeperServer.deliver_applied).
Rule 3: a follower's REQUEST is prepped here like a local request and proposed; every one gets
        a txn (an ErrorTxn when it cannot be prepped), or that follower would wait forever.
Rule 4: sessions are global and have an owner, the server the client is connected to. The
        leader alone expires sessions and decides owners: a follower's REVALIDATE makes it the
        owner of a live session; a write that arrives through any other server gets
        SESSIONMOVED (prep's checkSession). Followers report client activity in their PING
        replies (SessionsTouched).
A sync (a Barrier) completes once every txn proposed before it is applied (Leader.processSync).
"""

from __future__ import annotations

import logging
import struct
from collections import deque
from typing import TYPE_CHECKING, Any

from jute.codes import Err, OpCode
from jute.codes import QuorumPacketType as P
from jute.primitives import JuteError
from jute.quorum import QuorumPacket
from pyzk.pipeline.commit import Barrier
from pyzk.pipeline.prep import Prepared
from pyzk.pipeline.requests import WRITE_OPS, decode_record, prep_write_request
from pyzk.quorum.effects import Apply
from pyzk.quorum.streams import decode_request, decode_revalidate, encode_revalidate_reply
from pyzk.quorum.zxid import is_epoch_start

if TYPE_CHECKING:
    from pyzk.pipeline.zkserver import ZooKeeperServer
    from pyzk.server.quorum_driver import QuorumDriver

logger = logging.getLogger(__name__)

_INT = struct.Struct(">i")


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
            # The zxid field (Java's leader sends -1; Java's learner reads only the data) says
            # the last proposal so far: every txn an earlier connection of the session made
            # through its old server is at or below it (origins.py Rule 4).
            self.driver.send_packet(sid, QuorumPacket(int(P.REVALIDATE), server.next_zxid - 1,
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
