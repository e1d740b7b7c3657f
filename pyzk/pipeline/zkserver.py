"""ZooKeeperServer: sessions, the request pipeline and replies (ZooKeeperServer + FinalRequestProcessor).

Rule 1 (per-session order): a connection answers in request order. A write is prepped at once
        and its reply is produced when its txn is applied; a read that arrives while the same
        connection still has writes in flight waits behind them, and runs right after the
        write before it is applied, in the same synchronous step. Other sessions never wait.
Rule 2 (watch order): watch events are delivered synchronously while a txn is applied, so
        they reach every connection before the reply of the write that caused them.
Rule 3: only the commit stage (`commit`, a CommitStage of pyzk/pipeline/commit/) differs
        between standalone, leader, follower and read-only; prep, apply and replies are shared.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from jute.codes import (
    AddWatchMode,
    CreateMode,
    Err,
    EventType,
    OpCode,
    Perms,
    WatcherType,
    Xid,
)
from jute.data import ClientInfo
from jute.multi import (
    MULTI_READ_OP_RECORDS,
    encode_multi_response,
)
from jute.primitives import JuteError
from jute.proto import (
    AuthPacket,
    ConnectRequest,
    ConnectResponse,
    Create2Response,
    CreateResponse,
    ErrorResponse,
    ExistsResponse,
    GetACLResponse,
    GetAllChildrenNumberResponse,
    GetChildren2Response,
    GetChildrenResponse,
    GetDataResponse,
    GetEphemeralsResponse,
    GetSASLRequest,
    ReplyHeader,
    SetDataResponse,
    SetSASLResponse,
    SetWatches2,
    SyncRequest,
    SyncResponse,
    WhoAmIResponse,
)
from pyzk.acl import AuthRegistry, check_acl, mask_digest_acl
from pyzk.config.keys import METRICS_PROVIDER_PROMETHEUS
from pyzk.errors import KeeperError
from pyzk.pipeline.clientsession import ClientSession, InProcess, PendingRequest
from pyzk.pipeline.commit import Barrier, CommitStage
from pyzk.pipeline.origins import Origin, OriginsByZxid
from pyzk.pipeline.prep import Prep, Prepared
from pyzk.pipeline.requests import (
    ANSWERING_TXN_TYPES_OR_ERROR,
    FORWARDED_OPS,
    KNOWN_OPS,
    WRITE_OPS,
    decode_record,
    prep_write_request,
)
from pyzk.pipeline.stats import ServerStats
from pyzk.sessions import SESSION_EXPIRED, SESSION_OK, SessionTracker, generate_password
from pyzk.tree.datatree import ApplyResult, DataTree
from pyzk.watches import WatchManager

if TYPE_CHECKING:
    from pyzk.config import ServerConfig

logger = logging.getLogger(__name__)

# ServerCnxn short names of the last op (cons "lop=").
OP_SHORT_NAMES: dict[int, str] = {
    OpCode.PING: "PING", OpCode.CREATE_SESSION: "SESS", OpCode.MULTI: "MULT", OpCode.MULTI_READ: "MLTR",
    OpCode.CREATE: "CREA", OpCode.CREATE2: "CREA", OpCode.CREATE_TTL: "CREA", OpCode.CREATE_CONTAINER: "CREA",
    OpCode.DELETE: "DELE", OpCode.SET_DATA: "SETD", OpCode.RECONFIG: "RECO", OpCode.SET_ACL: "SETA",
    OpCode.CLOSE_SESSION: "CLOS", OpCode.SYNC: "SYNC", OpCode.EXISTS: "EXIS", OpCode.GET_DATA: "GETD",
    OpCode.SET_WATCHES: "SETW", OpCode.SET_WATCHES2: "STW2", OpCode.ADD_WATCH: "ADDW", OpCode.GET_ACL: "GETA",
    OpCode.GET_CHILDREN: "GETC", OpCode.GET_CHILDREN2: "GETC", OpCode.GET_ALL_CHILDREN_NUMBER: "GETACN",
    OpCode.CHECK_WATCHES: "CHKW", OpCode.REMOVE_WATCHES: "REMW", OpCode.WHO_AM_I: "HOMI",
    OpCode.GET_EPHEMERALS: "GETE",
}

# Aliases for the per-request path: on Python 3.11 each `OpCode.X` is a metaclass attribute
# lookup (~50 ns), and a request used to pay for a few dozen of them.
_AUTH, _SASL, _SYNC, _PING = OpCode.AUTH, OpCode.SASL, OpCode.SYNC, OpCode.PING
_MULTI, _MULTI_READ, _CREATE, _RECONFIG = OpCode.MULTI, OpCode.MULTI_READ, OpCode.CREATE, OpCode.RECONFIG
_CREATE_SESSION, _CLOSE_SESSION = OpCode.CREATE_SESSION, OpCode.CLOSE_SESSION
_CREATES_WITH_STAT = frozenset({OpCode.CREATE2, OpCode.CREATE_TTL, OpCode.CREATE_CONTAINER})
_STAT_REPLIES = frozenset({OpCode.SET_DATA, OpCode.SET_ACL})
REQUEST_HEADER = struct.Struct(">ii")  # RequestHeader: xid, type

_ZERO_PASSWD = bytes(16)
_ERROR, _SESSION_MOVED = OpCode.ERROR, Err.SESSIONMOVED
_FAILED = -9999  # a pending "request" that is an error reply decided before prep
# Requests that may create an ephemeral node, so a local session must first become global
# (QuorumZooKeeperServer.checkUpgradeSession).
_UPGRADE_OPS = frozenset({OpCode.CREATE, OpCode.CREATE2, OpCode.MULTI})
_PLAIN_CREATES = frozenset({OpCode.CREATE, OpCode.CREATE2})
_EPHEMERAL_FLAGS = frozenset(m.value for m in CreateMode if m.is_ephemeral)



_REPLY_HEADER = struct.Struct(">iqi")  # ReplyHeader: xid, zxid, err
_INT = struct.Struct(">i")


class ZooKeeperServer:
    read_only = False  # ReadOnlyZooKeeperServer (pyzk/pipeline/readonly.py) sets it

    def __init__(self, config: ServerConfig, tree: DataTree, *, now_ms: Callable[[], int],
                 wall_ms: Callable[[], int], sasl_factory: Callable[[], Any] | None = None) -> None:
        self.config = config
        self.tree = tree
        self.now_ms = now_ms
        self.wall_ms = wall_ms
        self.watches = WatchManager(may_read=self._may_read)
        self.registry = AuthRegistry.from_properties(config.system_properties)
        self.sessions = SessionTracker(config.tick_time_ms, config.server_id, now_ms())
        for sid, timeout in tree.sessions.items():
            self.sessions.add_session(sid, timeout, now_ms())
        # The session owner this server's own connections stand for (ServerCnxn.me); a
        # leader's learners own the sessions they revalidated, under their server ids.
        self.owner_id = config.server_id
        self.prep = Prep(
            tree,
            self.registry,
            skip_acl=config.skip_acl,
            extended_types_enabled=config.extended_types_enabled,
            close_session_txn_enabled=config.close_session_txn_enabled,
            # _check_session reads self.sessions per call: a role may install its own tracker.
            check_session=self._check_session,
            check_global_session=self._check_global_session,
            reconfig_enabled=config.reconfig_enabled,
        )
        # Requests prepped here whose txns are not applied yet (standalone, leader).
        self.origins = OriginsByZxid()
        self._enforced_schemes = config.enforce_auth_schemes  # read per packet
        self.in_process = InProcess()
        # Sessions that live on this server alone (localSessionsEnabled, set by an ensemble
        # role): created and closed without a txn, expired here, and made global by their
        # first ephemeral create when `upgrade_local_sessions`.
        self.local_sessions: SessionTracker | None = None
        self.upgrade_local_sessions = False
        # An ensemble role's own mntr values (peer state, quorum size, the leader's gauges).
        self.quorum_monitor: Callable[[], dict[str, Any]] | None = None
        # An ensemble member's active config text (the reconfig reply); None in standalone.
        self.quorum_config_text: Callable[[], bytes] | None = None
        # An ensemble role's view for the ops surface (fourletter conf, AdminServer leader,
        # voting_view): my_id, leader_id, is_leader, the active QuorumMaj; None in standalone.
        self.quorum_view: Callable[[], dict[str, Any]] | None = None
        self.next_zxid = tree.last_processed_zxid + 1
        self.connections: dict[int, ClientSession] = {}  # session id -> current connection
        self.all_connections: set[ClientSession] = set()
        self._commit: CommitStage | None = None
        self._forward_hook: Callable[..., None] | None = None
        self._revalidate_hook: Callable[[ClientSession, int, int], None] = self._revalidate_locally
        self.stats = ServerStats(resets_metrics=config.metrics_provider_class != METRICS_PROVIDER_PROMETHEUS)
        self.sasl_factory = sasl_factory  # makes each connection's SASL server; None: no SASL
        self.serving = True
        self.mode = "standalone"
        self.trace_mask = 306

    @property
    def commit(self) -> Any:
        """The role's commit stage (pyzk/pipeline/commit/), set by whoever builds the role."""
        return self._commit

    @commit.setter
    def commit(self, stage: CommitStage) -> None:
        self._commit = stage
        # A follower's stage (a ForwardingStage) forwards writes to the leader and asks it to revalidate
        # reconnecting sessions; looked up once, not per packet.
        self._forward_hook = getattr(stage, "forward", None)
        self._revalidate_hook = getattr(stage, "revalidate", self._revalidate_locally)

    def _may_read(self, conn: ClientSession, acl: Any) -> bool:
        """Whether a watch event on a node with this ACL may reach conn (READ permission)."""
        return check_acl(acl, Perms.READ, conn.auth_ids, self.registry, self.config.skip_acl)

    # ---- sessions ------------------------------------------------------------------------

    def _check_session(self, session_id: int, owner: int) -> int:
        """Prep's checkSession (LeaderSessionTracker.checkSession with local sessions)."""
        local = self.local_sessions
        if local is None:
            return self.sessions.check_session(session_id, owner)
        if session_id in local:
            return local.check_session(session_id, owner)
        err = self.sessions.check_session(session_id, owner)
        if err == SESSION_EXPIRED and session_id not in self.sessions and session_id >> 56 != self.config.server_id:
            return SESSION_OK  # a local session of another server: the leader does not track it
        return err

    def _check_global_session(self, session_id: int, owner: int) -> int:
        """Prep's checkGlobalSession (ephemeral creates): the global tracker alone, so an
        unknown session, another server's local one included, is SESSIONEXPIRED."""
        return self.sessions.check_session(session_id, owner)

    def _take_zxid(self) -> int:
        zxid = self.next_zxid
        self.next_zxid += 1
        return zxid

    def connect(self, conn: ClientSession, body: bytes) -> None:
        """A ConnectRequest arrived (ZooKeeperServer.processConnectRequest)."""
        if not self.serving:
            # ZooKeeperServer not running (an ensemble member between roles): close, as Java does.
            conn.close()
            return
        req = ConnectRequest.from_bytes(body)
        conn.old_client = req.readOnly is None
        if self.read_only and not req.readOnly:
            logger.info("Refusing session request for not-read-only client /%s:%d", conn.remote_ip, conn.remote_port)
            conn.close()
            return
        if req.lastZxidSeen > self.tree.last_processed_zxid:
            logger.info(
                "Refusing session request for client /%s:%d as it has seen zxid 0x%x our last zxid is 0x%x",
                conn.remote_ip, conn.remote_port, req.lastZxidSeen, self.tree.last_processed_zxid,
            )
            conn.close()
            return
        timeout = min(max(req.timeOut, self.config.session_timeout_ms_min), self.config.session_timeout_ms_max)
        conn.timeout_ms = timeout
        if req.sessionId == 0:
            self._create_session(conn, timeout)
            return
        session_id = req.sessionId
        if not self._may_resume_session(conn, session_id):
            conn.close()
            return
        self.close_connection_of(session_id, keep=conn)  # any other connection of the session
        conn.session_id = session_id
        if (req.passwd or b"") != generate_password(session_id):
            logger.warning("Incorrect password from /%s:%d for session 0x%x", conn.remote_ip, conn.remote_port, session_id)
            self._finish_session_init(conn, False)
            return
        local = self.local_sessions
        if local is not None and session_id in local:
            self.session_revalidated(conn, local.touch(session_id, self.now_ms()))
            return
        self._revalidate_hook(conn, session_id, timeout)

    def _revalidate_locally(self, conn: ClientSession, session_id: int, timeout_ms: int) -> None:
        """ZooKeeperServer.revalidateSession (+ LeaderZooKeeperServer's setOwner): the session
        is alive here, and from now on it lives on this server."""
        valid = self.sessions.touch(session_id, self.now_ms())
        if valid:
            self.sessions.set_owner(session_id, self.owner_id)
        self.session_revalidated(conn, valid)

    def session_revalidated(self, conn: ClientSession, valid: bool) -> None:
        """The answer to a reconnect (here, or the leader's REVALIDATE reply on a follower)."""
        if conn.closed:
            return
        if valid:
            self.close_connection_of(conn.session_id, keep=conn)  # one that came in meanwhile
            self.connections[conn.session_id] = conn
        self._finish_session_init(conn, valid)

    def _create_session(self, conn: ClientSession, timeout_ms: int) -> None:
        """A new session: a createSession txn; the ConnectResponse waits for it to be applied."""
        session_id = self.sessions.next_session_id()
        conn.session_id = session_id
        local = self.local_sessions
        if local is not None:
            # A local session: no createSession txn, established at once.
            local.add_session(session_id, timeout_ms, self.now_ms())
            local.set_owner(session_id, self.owner_id)
            self.connections[session_id] = conn
            self._finish_session_init(conn, True)
            return
        self.sessions.add_session(session_id, timeout_ms, self.now_ms())
        self.sessions.set_owner(session_id, self.owner_id)
        self.connections[session_id] = conn
        req = PendingRequest(0, _CREATE_SESSION, None, True, time.monotonic())
        conn.pending.append(req)
        forward = self._forward_hook
        if forward is not None:
            forward(conn, req, _INT.pack(timeout_ms))
            return
        self._submit_txn(conn, req, self.prep.prep_create_session(session_id, timeout_ms, self._take_zxid(),
                                                                  self.wall_ms()))

    def _submit_txn(self, conn: ClientSession, req: PendingRequest, prepared: Prepared) -> None:
        """Hand a prepped request's txn to the commit stage; its reply waits for the apply."""
        self.origins.add(prepared.hdr.zxid, conn, req)
        self.commit.submit(prepared)

    def _may_resume_session(self, conn: ClientSession, session_id: int) -> bool:
        """ZooKeeperServer.validateSession: False closes the connection without a response."""
        return True

    def _finish_session_init(self, conn: ClientSession, valid: bool) -> None:
        read_only = None if conn.old_client else self.read_only
        if valid:
            rsp = ConnectResponse(0, conn.timeout_ms, conn.session_id, generate_password(conn.session_id), read_only)
        else:
            rsp = ConnectResponse(0, 0, 0, _ZERO_PASSWD, read_only)
        conn.send(rsp.encode())
        if valid:
            conn.established = True
            if conn.on_established is not None:
                conn.on_established()
            logger.info("Established session 0x%x with negotiated timeout %d for client /%s:%d",
                        conn.session_id, conn.timeout_ms, conn.remote_ip, conn.remote_port)
        else:
            logger.info("Invalid session 0x%x for client /%s:%d, probably expired",
                        conn.session_id, conn.remote_ip, conn.remote_port)
            conn.close()

    def connection_lost(self, conn: ClientSession) -> None:
        self._detach(conn)
        self.all_connections.discard(conn)

    def _detach(self, conn: ClientSession) -> None:
        self.watches.remove_watcher(conn)
        if conn.session_id and self.connections.get(conn.session_id) is conn:
            del self.connections[conn.session_id]

    def expire_sessions(self) -> None:
        """Called every tick: submit closeSession for sessions whose deadline passed."""
        for session_id in self.sessions.expired(self.now_ms()):
            logger.info("Expiring session 0x%x, timeout of %dms exceeded", session_id,
                        self.sessions.timeout_of(session_id) or 0)
            self.commit.submit(self.prep.prep_close_session(session_id, 0, self._take_zxid(), self.wall_ms()))

    def expire_local_sessions(self) -> None:
        """Called every tick on every role: local sessions expire on their own server."""
        local = self.local_sessions
        if local is None:
            return
        for session_id in local.expired(self.now_ms()):
            logger.info("Expiring local session 0x%x, timeout of %dms exceeded", session_id,
                        local.timeout_of(session_id) or 0)
            self._close_local_session(session_id)

    def _close_local_session(self, session_id: int) -> None:
        if self.local_sessions is not None:
            self.local_sessions.remove_session(session_id)
        self.close_connection_of(session_id)

    def close_connection_of(self, session_id: int, keep: ClientSession | None = None) -> None:
        """Close this server's current connection of a session (unless it is `keep`)."""
        conn = self.connections.get(session_id)
        if conn is not None and conn is not keep:
            self._detach(conn)
            conn.close()

    def _upgrade_if_ephemeral(self, conn: ClientSession, xid: int, op: int, body: bytes, pos: int) -> bool:
        """A local session's create/create2/multi: if it creates an ephemeral node, make the
        session global first (its createSession txn goes ahead of the request); without
        localSessionsUpgradingEnabled answer EPHEMERALONLOCALSESSION. False when answered."""
        try:
            record = decode_record(op, body, pos)
        except JuteError:
            return True  # the request's own path answers MARSHALLINGERROR
        if op == _MULTI:
            ephemeral = any(t in _PLAIN_CREATES and getattr(r, "flags", None) in _EPHEMERAL_FLAGS for t, r in record)
        else:
            ephemeral = record.flags in _EPHEMERAL_FLAGS
        if not ephemeral:
            return True
        if not self.upgrade_local_sessions:
            self._enqueue_read(conn, PendingRequest(xid, _FAILED, Err.EPHEMERALONLOCALSESSION, False, time.monotonic()))
            return False
        local = self.local_sessions
        assert local is not None
        session_id = conn.session_id
        timeout_ms = local.timeout_of(session_id) or conn.timeout_ms
        local.remove_session(session_id)
        logger.info("Upgrading session 0x%x", session_id)
        now = self.now_ms()
        self.sessions.add_session(session_id, timeout_ms, now)
        self.sessions.set_owner(session_id, self.owner_id)
        upgrade = getattr(self.commit, "forward_upgrade", None)
        if upgrade is not None:
            upgrade(session_id, timeout_ms)
        else:
            self.commit.submit(self.prep.prep_create_session(session_id, timeout_ms, self._take_zxid(), self.wall_ms()))
        return True

    def submit_delete_container(self, path: str) -> None:
        """The container sweeper's deleteContainer: an ordinary txn with session 0."""
        self.commit.submit(self.prep.prep_delete_container(path, self._take_zxid(), self.wall_ms()))

    # ---- requests ------------------------------------------------------------------------

    def handle_packet(self, conn: ClientSession, body: bytes) -> None:
        """One frame from an established session (ZooKeeperServer.processPacket)."""
        conn.packets_received += 1
        self.stats.packets_received += 1
        try:
            xid, op = REQUEST_HEADER.unpack_from(body, 0)
        except struct.error:
            logger.warning("Malformed request header from /%s:%d; closing", conn.remote_ip, conn.remote_port)
            conn.close()
            return
        pos = 8
        if op == _AUTH:
            self._auth(conn, xid, body, pos)
            return
        if op == _SASL:
            self._sasl(conn, xid, body, pos)
            return
        enforced = self._enforced_schemes
        if enforced and not self._authenticated_for(conn, xid, enforced):
            return
        local = self.local_sessions
        if local is not None and conn.session_id in local:
            local.touch(conn.session_id, self.now_ms())
            if op == _CLOSE_SESSION:
                self._enqueue_read(conn, PendingRequest(xid, _CLOSE_SESSION, None, False, time.monotonic()))
                return
            if op in _UPGRADE_OPS and not self._upgrade_if_ephemeral(conn, xid, op, body, pos):
                return
        else:
            self.sessions.touch(conn.session_id, self.now_ms())
        if op not in KNOWN_OPS:
            # Unknown opcode (also top-level check, ZOOKEEPER-2623): UNIMPLEMENTED, then close.
            self._send_reply(conn, xid, Err.UNIMPLEMENTED, None, zxid=-1)
            conn.close()
            return
        forward = self._forward_hook
        if forward is not None and (op in WRITE_OPS or op in FORWARDED_OPS):
            self._forward(conn, xid, op, body[pos:], forward)
            return
        try:
            record = decode_record(op, body, pos)
        except JuteError as exc:
            logger.warning("Failed to deserialize op %d from 0x%x: %s", op, conn.session_id, exc)
            if op in WRITE_OPS:
                # A write that cannot be read still consumes a zxid: an ErrorTxn(MARSHALLINGERROR).
                req = PendingRequest(xid, op, None, True, time.monotonic())
                conn.pending.append(req)
                self.stats.outstanding += 1
                self._submit_txn(conn, req, self.prep.prep_error(conn.session_id, xid, Err.MARSHALLINGERROR,
                                                                 self._take_zxid(), self.wall_ms()))
            else:
                self._enqueue_read(conn, PendingRequest(xid, _FAILED, Err.MARSHALLINGERROR, False, time.monotonic()))
            return
        req = PendingRequest(xid, op, record, False, time.monotonic())
        if op in WRITE_OPS or op == _CLOSE_SESSION:
            self._submit_write(conn, req)
        elif op == _SYNC:
            req.in_flight = True
            conn.pending.append(req)
            self.commit.submit(Barrier(lambda: self.answer_sync(conn, req)))
        elif conn.pending:  # _enqueue_read, inlined (the common read)
            conn.pending.append(req)
        else:
            self._run_read(conn, req)

    def _forward(self, conn: ClientSession, xid: int, op: int, body: bytes, forward: Callable[..., None]) -> None:
        """A follower's write, closeSession or sync: the leader preps it (from the raw bytes);
        the reply waits for its txn to be applied here (sync: for the leader's SYNC)."""
        record: Any = None
        if op == _SYNC:
            try:
                record, _ = SyncRequest.decode_from(body, 0, len(body))
            except JuteError:
                self._enqueue_read(conn, PendingRequest(xid, _FAILED, Err.MARSHALLINGERROR, False, time.monotonic()))
                return
        else:
            self.stats.outstanding += 1
            if op == _CLOSE_SESSION:
                self.sessions.set_closing(conn.session_id)
        req = PendingRequest(xid, op, record, True, time.monotonic())
        conn.pending.append(req)
        forward(conn, req, body)

    def _enqueue_read(self, conn: ClientSession, req: PendingRequest) -> None:
        if conn.pending:
            conn.pending.append(req)
        else:
            self._run_read(conn, req)

    def _submit_write(self, conn: ClientSession, req: PendingRequest) -> None:
        now = self.wall_ms()
        if req.op == _CLOSE_SESSION:
            prepared = self.prep.prep_close_session(conn.session_id, req.xid, self._take_zxid(), now)
            self.sessions.set_closing(conn.session_id)
        else:
            prepared = prep_write_request(self.prep, req.op, req.record, conn.session_id, req.xid, conn.auth_info.ids,
                                          self._take_zxid(), now, self.owner_id)
        req.in_flight = True
        conn.pending.append(req)
        self.stats.outstanding += 1
        self.origins.add(prepared.hdr.zxid, conn, req)  # _submit_txn, inlined (per write)
        self._commit.submit(prepared)  # type: ignore[union-attr]

    # ---- apply (called by the commit stage, in zxid order) ------------------------------

    def apply_committed(self, prepared: Prepared) -> None:
        """Standalone: apply a durable txn to the tree, then deliver it."""
        hdr = prepared.hdr
        rc = self.tree.apply(hdr, prepared.txn, sub_records=prepared.sub_records)
        self.deliver_applied(prepared, rc, self.origins.take(hdr.clientId, hdr.cxid, hdr.zxid, hdr.type))

    def deliver_applied(self, prepared: Prepared, rc: ApplyResult, origin: Origin | None) -> None:
        """After the tree applied a txn (here, or in the quorum core): watches, then the reply
        to `origin`, the request the txn answers (pyzk/pipeline/origins.py), if any."""
        hdr = prepared.hdr
        self.prep.applied(hdr.zxid)
        if rc.events:
            self.watches.deliver(rc.events)
        if rc.closed_session is not None:
            self.sessions.remove_session(hdr.clientId)
            if origin is None:
                # Expired, or closed through another server: this server's connection of the
                # session (if any) is over; its client learns on reconnect.
                self.close_connection_of(hdr.clientId)
                return
        if origin is None:
            return
        conn, req = origin
        if req.op != _CREATE_SESSION:
            self.stats.outstanding -= 1
        if conn.closed:
            return
        if not self._answers(conn, req, hdr):
            return
        conn.pending.popleft()
        if rc.created_session is not None:
            self._finish_session_init(conn, True)
        elif hdr.type == _ERROR and rc.err == _SESSION_MOVED:
            # A connection-level error (FinalRequestProcessor): close it, no reply.
            logger.info("Session 0x%x moved to another server; closing its connection from /%s:%d",
                        conn.session_id, conn.remote_ip, conn.remote_port)
            self._detach(conn)
            conn.close()
            return
        else:
            self._reply_write(conn, req, prepared, rc)
            if req.op == _CLOSE_SESSION:
                self._detach(conn)
                conn.close()
                return
        self._drain_reads(conn)

    def _answers(self, conn: ClientSession, req: PendingRequest, hdr: Any) -> bool:
        """Whether the txn `hdr` may answer `req` now: it is the request conn must answer next,
        with the txn's session and cxid and a txn type its op can produce. Anything else is an
        invariant violation: logged, and that connection is closed rather than answered."""
        allowed = ANSWERING_TXN_TYPES_OR_ERROR.get(req.op)  # may_answer, inlined (per write)
        if (conn.pending and conn.pending[0] is req and hdr.clientId == conn.session_id
                and hdr.cxid == req.xid and (allowed is None or hdr.type in allowed)):
            return True
        head = conn.pending[0] if conn.pending else None
        logger.error(
            "Invariant violated: txn 0x%x (session 0x%x, cxid %d, type %d) would answer request xid %d op %d "
            "of session 0x%x, whose next reply is due to %s; closing the connection from /%s:%d",
            hdr.zxid, hdr.clientId, hdr.cxid, hdr.type, req.xid, req.op, conn.session_id,
            "nothing" if head is None else f"xid {head.xid} op {head.op}", conn.remote_ip, conn.remote_port)
        self._detach(conn)
        conn.close()
        return False

    def answer_sync(self, conn: ClientSession, req: PendingRequest) -> None:
        """A sync's barrier passed (standalone, leader) or the leader's SYNC arrived (follower)."""
        if conn.closed:
            return
        if not conn.pending or conn.pending[0] is not req:
            logger.error("Invariant violated: sync xid %d of session 0x%x is not the next reply due; "
                         "closing the connection from /%s:%d", req.xid, conn.session_id,
                         conn.remote_ip, conn.remote_port)
            self._detach(conn)
            conn.close()
            return
        conn.pending.popleft()
        self._send_reply(conn, req.xid, 0, SyncResponse(req.record.path), req=req)
        self._drain_reads(conn)

    def _drain_reads(self, conn: ClientSession) -> None:
        while conn.pending and not conn.pending[0].in_flight and not conn.closed:
            self._run_read(conn, conn.pending.popleft())

    # ---- replies -------------------------------------------------------------------------

    def _send_reply(self, conn: ClientSession, xid: int, err: int, body: Any, *, zxid: int | None = None,
                    req: PendingRequest | None = None) -> None:
        if zxid is None:
            zxid = self.tree.last_processed_zxid
        out = _REPLY_HEADER.pack(xid, zxid, err)
        if err == 0 and body is not None:
            out += body if isinstance(body, (bytes, bytearray)) else body.encode()
        conn.send(out)
        self.stats.packets_sent += 1
        if req is not None:
            now_s = time.monotonic()
            latency = int((now_s - req.received_s) * 1000)
            self.stats.record_latency(latency)
            conn.record_latency(latency)
            conn.last_op = OP_SHORT_NAMES.get(req.op, "NA")
            conn.last_cxid = xid
            conn.last_zxid = zxid
            conn.last_response_s = now_s  # monotonic: the wall time is derived when shown

    def _reply_write(self, conn: ClientSession, req: PendingRequest, prepared: Prepared, rc: ApplyResult) -> None:
        op = req.op
        zxid = prepared.hdr.zxid
        if prepared.hdr.type == _ERROR:
            # An ErrorTxn answers any op, a multi too, with its error and no body.
            self._send_reply(conn, req.xid, rc.err, None, zxid=zxid, req=req)
            return
        if op == _MULTI:
            results = []
            for sub in rc.multi or []:
                results.append(_multi_result(sub))
            self._send_reply(conn, req.xid, 0, encode_multi_response(results), zxid=zxid, req=req)
            return
        err = rc.err
        body: Any = None
        if err == 0:
            if op == _CREATE:
                body = CreateResponse(rc.path)
            elif op in _CREATES_WITH_STAT:
                body = Create2Response(rc.path, rc.stat)
            elif op in _STAT_REPLIES:
                body = rc.stat  # SetDataResponse and SetACLResponse are a bare Stat
            elif op == _RECONFIG and self.quorum_config_text is not None:
                body = GetDataResponse(self.quorum_config_text(), rc.stat)
        self._send_reply(conn, req.xid, err, body, zxid=zxid, req=req)

    def _run_read(self, conn: ClientSession, req: PendingRequest) -> None:
        op = req.op
        if op == _FAILED:  # answered with an error before reaching prep (the code is the record)
            self._send_reply(conn, req.xid, req.record, None, req=req)
            return
        if op == _CLOSE_SESSION:  # a local session's close: no txn, answered in order
            self._send_reply(conn, req.xid, 0, None, req=req)
            self._close_local_session(conn.session_id)
            return
        if op == OpCode.PING:
            self._send_reply(conn, Xid.PING, 0, None)
            conn.last_op = "PING"
            return
        try:
            body = self._read(conn, op, req.record)
            err = 0
        except KeeperError as exc:
            body, err = None, exc.err
        if op in (OpCode.SET_WATCHES, OpCode.SET_WATCHES2):
            self._send_reply(conn, req.xid, err, None, req=req)
            return
        self._send_reply(conn, req.xid, err, body, req=req)

    def _node_for_read(self, conn: ClientSession, path: str, perm: int) -> Any:
        node = self.tree.nodes.get(path)
        if node is None:
            raise KeeperError(Err.NONODE)
        if not check_acl(node.acl, perm, conn.auth_ids, self.registry, self.config.skip_acl):
            raise KeeperError(Err.NOAUTH)
        return node

    def _read(self, conn: ClientSession, op: int, r: Any) -> Any:
        tree = self.tree
        if op == OpCode.GET_DATA:
            return self._get_data(conn, r.path, r.watch)
        if op == OpCode.EXISTS:
            if "\0" in r.path:
                raise KeeperError(Err.BADARGUMENTS)
            # 3.8 checks no ACL on exists (the READ check came with 3.9); verified on the oracle.
            node = tree.nodes.get(r.path)
            if r.watch:
                self.watches.add_data_watch(r.path, conn)
            if node is None:
                raise KeeperError(Err.NONODE)
            return ExistsResponse(tree.stat_of(node))
        if op in (OpCode.GET_CHILDREN, OpCode.GET_CHILDREN2):
            children, stat = self._get_children(conn, r.path, r.watch)
            if op == OpCode.GET_CHILDREN:
                return GetChildrenResponse(children)
            return GetChildren2Response(children, stat)
        if op == OpCode.GET_ACL:
            node = self._node_for_read(conn, r.path, Perms.READ | Perms.ADMIN)
            acl = list(node.acl)
            if not check_acl(node.acl, Perms.ADMIN, conn.auth_ids, self.registry, self.config.skip_acl):
                acl = mask_digest_acl(acl)
            return GetACLResponse(acl, tree.stat_of(node))
        if op == OpCode.GET_ALL_CHILDREN_NUMBER:
            self._node_for_read(conn, r.path, Perms.READ)
            total = len(tree.nodes) - 1 if r.path == "/" else tree.count_descendants(r.path)
            return GetAllChildrenNumberResponse(total)
        if op == OpCode.GET_EPHEMERALS:
            prefix = r.prefixPath
            mine = tree.ephemerals_of(conn.session_id)
            if prefix is None or prefix.strip() == "" or prefix.strip() == "/":
                return GetEphemeralsResponse(mine)
            return GetEphemeralsResponse([p for p in mine if p.startswith(prefix)])
        if op == OpCode.WHO_AM_I:
            return WhoAmIResponse([ClientInfo(i.scheme, self.registry.user_name(i)) for i in conn.auth_ids])
        if op == OpCode.ADD_WATCH:
            if r.mode not in (AddWatchMode.PERSISTENT, AddWatchMode.PERSISTENT_RECURSIVE):
                raise KeeperError(Err.MARSHALLINGERROR)
            self.watches.add_persistent(r.path, conn, r.mode == AddWatchMode.PERSISTENT_RECURSIVE)
            return ErrorResponse(0)
        if op in (OpCode.SET_WATCHES, OpCode.SET_WATCHES2):
            self._set_watches(conn, r)
            return None
        if op in (OpCode.CHECK_WATCHES, OpCode.REMOVE_WATCHES):
            self._check_or_remove_watches(conn, r, remove=op == OpCode.REMOVE_WATCHES)
            return None
        if op == OpCode.MULTI_READ:
            return self._multi_read(conn, r)
        raise KeeperError(Err.UNIMPLEMENTED)

    def _get_data(self, conn: ClientSession, path: str, watch: bool) -> GetDataResponse:
        node = self._node_for_read(conn, path, Perms.READ)
        if watch:
            self.watches.add_data_watch(path, conn)
        return GetDataResponse(node.data, self.tree.stat_of(node))

    def _get_children(self, conn: ClientSession, path: str, watch: bool) -> tuple[list[str], Any]:
        node = self._node_for_read(conn, path, Perms.READ)
        if watch:
            self.watches.add_child_watch(path, conn)
        return node.list_children(), self.tree.stat_of(node)

    def _multi_read(self, conn: ClientSession, ops: list[tuple[int, Any]]) -> bytes:
        results: list[tuple[int, int, Any]] = []
        for op_type, r in ops:
            if op_type not in MULTI_READ_OP_RECORDS:
                raise KeeperError(Err.MARSHALLINGERROR)
            try:
                if op_type == OpCode.GET_DATA:
                    results.append((OpCode.GET_DATA, 0, self._get_data(conn, r.path, False)))
                else:
                    children, _ = self._get_children(conn, r.path, False)
                    results.append((OpCode.GET_CHILDREN, 0, GetChildrenResponse(children)))
            except KeeperError as exc:
                results.append((OpCode.ERROR, exc.err, ErrorResponse(exc.err)))
        return encode_multi_response(results)

    def _set_watches(self, conn: ClientSession, r: Any) -> None:
        """DataTree.setWatches: catch-up events fire now, the rest are registered."""
        rel = r.relativeZxid
        tree = self.tree
        for path in r.dataWatches or ():
            node = tree.nodes.get(path)
            if node is None:
                conn.send_event(EventType.NODE_DELETED, path)
            elif node.mzxid > rel:
                conn.send_event(EventType.NODE_DATA_CHANGED, path)
            else:
                self.watches.add_data_watch(path, conn)
        for path in r.existWatches or ():
            if path in tree.nodes:
                conn.send_event(EventType.NODE_CREATED, path)
            else:
                self.watches.add_data_watch(path, conn)
        for path in r.childWatches or ():
            node = tree.nodes.get(path)
            if node is None:
                conn.send_event(EventType.NODE_DELETED, path)
            elif node.pzxid > rel:
                conn.send_event(EventType.NODE_CHILDREN_CHANGED, path)
            else:
                self.watches.add_child_watch(path, conn)
        if isinstance(r, SetWatches2):
            for path in r.persistentWatches or ():
                self.watches.add_persistent(path, conn, False)
            for path in r.persistentRecursiveWatches or ():
                self.watches.add_persistent(path, conn, True)

    def _check_or_remove_watches(self, conn: ClientSession, r: Any, *, remove: bool) -> None:
        try:
            wtype = WatcherType(r.type)
        except ValueError:
            raise KeeperError(Err.MARSHALLINGERROR) from None
        if wtype not in (WatcherType.CHILDREN, WatcherType.DATA, WatcherType.ANY):
            raise KeeperError(Err.MARSHALLINGERROR)
        tables = []
        if wtype in (WatcherType.CHILDREN, WatcherType.ANY):
            tables.append(self.watches.child)
        if wtype in (WatcherType.DATA, WatcherType.ANY):
            tables.append(self.watches.data)
        found = False
        for table in tables:
            if remove:
                found = table.remove(r.path, conn) or found
            else:
                found = table.is_watched(r.path) or found
        if not found:
            raise KeeperError(Err.NOWATCHER)

    # ---- auth ----------------------------------------------------------------------------

    def _auth(self, conn: ClientSession, xid: int, body: bytes, pos: int) -> None:
        try:
            packet, _ = AuthPacket.decode_from(body, pos, len(body))
        except JuteError:
            conn.close()
            return
        # A null auth buffer reaches the provider as None (digest fails on it, ip ignores it).
        ids = self.registry.authenticate(packet.scheme, packet.auth, conn.remote_ip, conn.client_certificate)
        if ids:
            logger.info("Session 0x%x: auth success for scheme %s and address /%s:%d",
                        conn.session_id, packet.scheme, conn.remote_ip, conn.remote_port)
            for i in ids:
                conn.auth_info.add(i)
            self._send_reply(conn, xid, 0, None, zxid=0)
        else:
            logger.warning("Authentication failed for scheme: %s", packet.scheme)
            self._send_reply(conn, xid, Err.AUTHFAILED, None, zxid=0)
            conn.close()

    def _sasl(self, conn: ClientSession, xid: int, body: bytes, pos: int) -> None:
        from pyzk.sasl import SaslError

        try:
            req, _ = GetSASLRequest.decode_from(body, pos, len(body))
        except JuteError:
            conn.close()
            return
        if self.sasl_factory is None:
            # No JAAS Server section: ZooKeeper has no SASL server for the connection and
            # answers with an empty token.
            self._send_reply(conn, xid, 0, SetSASLResponse(None), zxid=0)
            return
        try:
            if conn.sasl is None:
                conn.sasl = self.sasl_factory()
            token = conn.sasl.evaluate(req.token or b"")
        except SaslError as exc:
            logger.warning("Client /%s:%d failed to SASL authenticate: %s", conn.remote_ip, conn.remote_port, exc)
            if self.config.allow_sasl_failed_clients and not self.config.sasl_auth_required:
                logger.warning("Maintaining client connection despite SASL authentication failure.")
                self._send_reply(conn, xid, 0, SetSASLResponse(None), zxid=0)
                return
            # processSasl: SESSIONCLOSEDREQUIRESASLAUTH when SASL is required, else AUTHFAILED.
            err = Err.SESSIONCLOSEDREQUIRESASLAUTH if self.config.sasl_auth_required else Err.AUTHFAILED
            out = ReplyHeader(xid, 0, err).encode() + SetSASLResponse(None).encode()
            conn.send(out)
            conn.close()
            return
        if conn.sasl.complete and conn.sasl.authorized_id is not None:
            for i in self.registry.sasl_ids(conn.sasl.authorized_id):
                conn.auth_info.add(i)
        self._send_reply(conn, xid, 0, SetSASLResponse(token), zxid=0)

    def _authenticated_for(self, conn: ClientSession, xid: int, schemes: tuple[str, ...]) -> bool:
        """AuthenticationHelper.enforceAuthentication: a connection holding no id of an
        enforced scheme gets SESSIONCLOSEDREQUIRESASLAUTH for its request (zxid 0, no body)
        and is closed; its session is not closed (it expires unless the client returns)."""
        for auth_id in conn.auth_ids:
            if auth_id.scheme in schemes:
                return True
        logger.error("Client authentication scheme(s) %s does not match with any of the expected "
                     "authentication scheme %s, closing session.",
                     [i.scheme for i in conn.auth_ids], list(schemes))
        self._send_reply(conn, xid, Err.SESSIONCLOSEDREQUIRESASLAUTH, None, zxid=0)
        conn.close()
        return False


def _multi_result(sub: ApplyResult) -> tuple[int, int, Any]:
    t = sub.type
    if t == OpCode.ERROR:
        return (OpCode.ERROR, sub.err, ErrorResponse(sub.err))
    if t == OpCode.CREATE:
        return (OpCode.CREATE, 0, CreateResponse(sub.path))
    if t in (OpCode.CREATE2, OpCode.CREATE_TTL, OpCode.CREATE_CONTAINER):
        return (OpCode.CREATE2, 0, Create2Response(sub.path, sub.stat))
    if t in (OpCode.DELETE, OpCode.DELETE_CONTAINER):
        return (OpCode.DELETE, 0, None)
    if t == OpCode.SET_DATA:
        return (OpCode.SET_DATA, 0, SetDataResponse(sub.stat))
    if t == OpCode.CHECK:
        return (OpCode.CHECK, 0, None)
    return (OpCode.ERROR, Err.RUNTIMEINCONSISTENCY, ErrorResponse(Err.RUNTIMEINCONSISTENCY))
