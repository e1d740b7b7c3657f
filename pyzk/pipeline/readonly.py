"""Read-only mode: the ZooKeeperServer a partitioned ensemble member runs while it looks for a
quorum (ReadOnlyZooKeeperServer + ReadOnlyRequestProcessor, system property
readonlymode.enabled=true).

Rule 1: only clients that set readOnly in their ConnectRequest are served; the others are
        closed (ZooKeeperServer.connect checks `read_only`). Every ConnectResponse carries
        readOnly=true.
Rule 2: reads are answered from the tree the member had when it started looking; every write,
        sync and check is answered with NOTREADONLY and never reaches prep.
Rule 3: sessions are local: created, touched, expired and closed here, never as txns. A global
        session (one the replicated tree holds) may not reconnect here. Apache makes a session
        local only with localSessionsEnabled=true and otherwise answers the ConnectRequest with
        a bare NOTREADONLY reply header, which no client can parse; pyzk always makes it local.
Rule 4: the server lives for one LOOKING period: it starts after a grace period of
        max(2000 ms, tickTime) (`read_only_grace_ms`) and the ensemble member closes all its
        connections as soon as the peer leaves LOOKING (pyzk/server/quorum_main.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from jute.codes import Err, OpCode
from pyzk.pipeline.clientsession import ClientSession
from pyzk.pipeline.commit.readonly import ReadOnlyCommit
from pyzk.pipeline.zkserver import REQUEST_HEADER, ZooKeeperServer
from pyzk.sessions import SessionTracker
from pyzk.tree.datatree import DataTree

if TYPE_CHECKING:
    from pyzk.config import ServerConfig

logger = logging.getLogger(__name__)

READ_ONLY_GRACE_MS_MIN = 2000

# ReadOnlyRequestProcessor's filter: answered with NOTREADONLY before prep.
READ_ONLY_REFUSED_OPS = frozenset({
    OpCode.SYNC, OpCode.CREATE, OpCode.CREATE2, OpCode.CREATE_TTL, OpCode.CREATE_CONTAINER,
    OpCode.DELETE, OpCode.DELETE_CONTAINER, OpCode.SET_DATA, OpCode.RECONFIG, OpCode.SET_ACL,
    OpCode.MULTI, OpCode.CHECK,
})



def read_only_grace_ms(tick_time_ms: int) -> int:
    """How long a LOOKING peer waits before it serves read-only (QuorumPeer.run)."""
    return max(READ_ONLY_GRACE_MS_MIN, tick_time_ms)


class ReadOnlyZooKeeperServer(ZooKeeperServer):
    read_only = True

    def __init__(self, config: ServerConfig, tree: DataTree, *, now_ms: Callable[[], int],
                 wall_ms: Callable[[], int], sasl_factory: Callable[[], Any] | None = None) -> None:
        super().__init__(config, tree, now_ms=now_ms, wall_ms=wall_ms, sasl_factory=sasl_factory)
        self.mode = "read-only"
        # Only local sessions live here; the tree's global sessions belong to the quorum.
        self.sessions = SessionTracker(config.tick_time_ms, config.server_id, now_ms())
        self.commit = ReadOnlyCommit()  # nothing reaches it: Rules 2 and 3

    # ---- sessions ------------------------------------------------------------------------

    def _create_session(self, conn: ClientSession, timeout_ms: int) -> None:
        session_id = self.sessions.next_session_id()
        conn.session_id = session_id
        self.sessions.add_session(session_id, timeout_ms, self.now_ms())
        self.connections[session_id] = conn
        self._finish_session_init(conn, True)

    def _may_resume_session(self, conn: ClientSession, session_id: int) -> bool:
        if session_id in self.tree.sessions:
            logger.info("Refusing global session reconnection in RO mode /%s:%d", conn.remote_ip, conn.remote_port)
            return False
        return True

    def expire_sessions(self) -> None:
        for session_id in self.sessions.expired(self.now_ms()):
            logger.info("Expiring session 0x%x, timeout of %dms exceeded", session_id,
                        self.sessions.timeout_of(session_id) or 0)
            self._close_local_session(session_id)

    def _close_local_session(self, session_id: int) -> None:
        self.sessions.remove_session(session_id)  # every session here is local
        self.close_connection_of(session_id)

    # ---- requests ------------------------------------------------------------------------

    def handle_packet(self, conn: ClientSession, body: bytes) -> None:
        if len(body) >= REQUEST_HEADER.size:
            xid, op = REQUEST_HEADER.unpack_from(body, 0)
            if op in READ_ONLY_REFUSED_OPS or op == OpCode.CLOSE_SESSION:
                conn.packets_received += 1
                self.stats.packets_received += 1
                if op == OpCode.CLOSE_SESSION:
                    self._send_reply(conn, xid, 0, None)
                    self._close_local_session(conn.session_id)
                else:
                    self.sessions.touch(conn.session_id, self.now_ms())
                    self._send_reply(conn, xid, Err.NOTREADONLY, None)
                return
        super().handle_packet(conn, body)
