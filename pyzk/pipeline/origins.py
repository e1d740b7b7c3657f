"""Which client request a committed txn answers (FinalRequestProcessor's `request.cnxn`).

Rule 1: a txn is answered only on the connection its request came in on, and only if that
        request is still the one that connection must answer next; the server checks the
        second part (ZooKeeperServer.deliver_applied), this module finds the request.
Rule 2 (standalone, leader): prep stamps the zxid before the txn is committed, so a request
        that was prepped here is found by its zxid: exact, whatever the cxids are (kazoo
        starts its xids from 1 again on every connection, so two connections of one session
        can have the same cxid in flight).
Rule 3 (follower): the leader gets this server's forwarded requests over one link, preps
        them in that order and commits them in zxid order, so a committed txn answers a
        request of ours exactly when its (session, cxid) equals the oldest forwarded request
        still waiting (CommitProcessor's queuedWriteRequests head). Any other txn came
        through another server and answers nobody here.
Rule 4 (follower): a forwarded request is answered only by a txn above its floor, the last
        proposal this server had received when it forwarded the request: the leader's link is
        FIFO both ways, so it preps our request after it sent that proposal. A txn at or below
        the floor came from an earlier connection of the session (through us before a move,
        or through another server, e.g. the SESSIONMOVED ErrorTxn of a request that server
        forwarded late), whose (session, cxid) can equal a new request's: xids restart on
        every connection. The floor of a session that moved here is at least the last
        proposal received when the leader answered its REVALIDATE, and at least the
        leader's last proposal then, when the answer says it (a pyzk leader does): an
        observer receives no proposals, only committed txns.
Rule 5 (follower): a txn whose type the head request's op cannot produce is not its answer
        either (an earlier connection of the session sent another op with the same cxid).
Pure: connections and requests are opaque values; nothing here sends or closes.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from pyzk.pipeline.requests import may_answer

Origin = tuple[Any, Any]  # (connection, pending request)


class OriginsByZxid:
    """Requests prepped here, keyed by the zxid prep stamped on their txn."""

    __slots__ = ("_by_zxid",)

    def __init__(self) -> None:
        self._by_zxid: dict[int, Origin] = {}

    def add(self, zxid: int, conn: Any, req: Any) -> None:
        self._by_zxid[zxid] = (conn, req)

    def take(self, session_id: int, cxid: int, zxid: int, txn_type: int) -> Origin | None:
        return self._by_zxid.pop(zxid, None)

    def __len__(self) -> int:
        return len(self._by_zxid)


class OriginsInForwardOrder:
    """Requests forwarded to the leader, oldest first."""

    __slots__ = ("_queue",)

    def __init__(self) -> None:
        self._queue: deque[tuple[int, int, Any, Any, int]] = deque()

    def add(self, session_id: int, cxid: int, conn: Any, req: Any, floor_zxid: int = 0) -> None:
        self._queue.append((session_id, cxid, conn, req, floor_zxid))

    def take(self, session_id: int, cxid: int, zxid: int, txn_type: int) -> Origin | None:
        queue = self._queue
        if queue:
            head_session, head_cxid, conn, req, floor_zxid = queue[0]
            if (head_session == session_id and head_cxid == cxid and zxid > floor_zxid
                    and may_answer(req.op, txn_type)):
                queue.popleft()
                return conn, req
        return None

    def __len__(self) -> int:
        return len(self._queue)
