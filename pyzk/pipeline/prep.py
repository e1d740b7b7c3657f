"""prep: turn a client write request into a txn (PrepRequestProcessor).

Rule 1: prep never changes the tree. It validates against the tree *plus* the outstanding
        changes of txns prepped but not yet applied (ZooKeeper's outstandingChanges), so many
        writes can be in flight (group commit) and still see each other.
Rule 2: every write that reaches prep consumes a zxid: a failure becomes an ErrorTxn (type -1),
        or, inside a multi, an error sub-txn with the rest marked RUNTIMEINCONSISTENCY.
Rule 3: the order of checks is PrepRequestProcessor's, because it decides which error a
        client sees (e.g. NONODE before NOAUTH before NODEEXISTS).
Rule 4: pure: time and the next zxid are passed in; session validity is a callback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from jute.codes import (
    EPHEMERAL_OWNER_CONTAINER,
    TTL_MAX_MS,
    CreateMode,
    Err,
    OpCode,
    Perms,
)
from jute.data import ACL, Id
from jute.proto import CreateTTLRequest
from jute.txn import (
    CheckVersionTxn,
    CloseSessionTxn,
    CreateContainerTxn,
    CreateSessionTxn,
    CreateTTLTxn,
    CreateTxn,
    DeleteTxn,
    ErrorTxn,
    MultiTxn,
    SetACLTxn,
    SetDataTxn,
    Txn,
    TxnHeader,
)
from pyzk.acl import AuthRegistry, InvalidACL, check_acl, fixup_acl
from pyzk.errors import KeeperError
from pyzk.paths import BadPath, validate_path
from pyzk.quorum.reconfig import ReconfigPlanner, ReconfigRefused
from pyzk.tree.datatree import CONFIG_NODE, SPECIAL_PATHS, DataTree
from pyzk.tree.javaorder import JavaHashSet
from pyzk.tree.node import is_container_owner, is_ttl_owner, ttl_owner

# CreateMode flag -> (ephemeral, sequential, TTL), computed once instead of per create.
_CREATE_FLAGS: dict[int, tuple[bool, bool, bool]] = {
    m.value: (m.is_ephemeral, m.is_sequential, m.is_ttl) for m in CreateMode
}


@dataclass(slots=True)
class ChangeRecord:
    """What a path will look like once the outstanding txns are applied (None stat = deleted)."""

    zxid: int
    path: str
    exists: bool
    version: int = 0
    cversion: int = 0
    aversion: int = 0
    ephemeral_owner: int = 0
    child_count: int = 0
    acl: tuple[ACL, ...] = ()

    def duplicate(self, zxid: int) -> ChangeRecord:
        return ChangeRecord(zxid, self.path, self.exists, self.version, self.cversion,
                            self.aversion, self.ephemeral_owner, self.child_count, self.acl)


@dataclass(slots=True)
class Prepared:
    """A txn ready for commit: header + record (record None for closeSession w/o paths)."""

    hdr: TxnHeader
    txn: Any
    error: int = 0  # the KeeperException prep met (also set for a failed multi)
    # A multi's sub-txn records as prep built them, so applying it here need not decode the
    # bytes it just encoded for the log (None: decode them, e.g. a txn from a leader).
    sub_records: list[Any] | None = None


# Aliases for the per-write path: on Python 3.11 each `OpCode.X` / `Perms.X` is a metaclass
# attribute lookup (~50 ns).
_CREATE_OPS = frozenset({OpCode.CREATE, OpCode.CREATE2, OpCode.CREATE_CONTAINER, OpCode.CREATE_TTL})
_DELETE_OPS = frozenset({OpCode.DELETE, OpCode.DELETE_CONTAINER})
_SET_DATA, _SET_ACL, _CHECK, _ERROR = OpCode.SET_DATA, OpCode.SET_ACL, OpCode.CHECK, OpCode.ERROR
_CREATE_CONTAINER, _CREATE_TTL, _RECONFIG = OpCode.CREATE_CONTAINER, OpCode.CREATE_TTL, OpCode.RECONFIG
_PERM_CREATE, _PERM_DELETE, _PERM_WRITE = Perms.CREATE, Perms.DELETE, Perms.WRITE


def multi_op_type(header_op: int, req: Any) -> int:
    """The op a multi sub-request really is (MultiOperationRecord.deserialize -> Op.create).

    ZooKeeper rebuilds every create-family sub-op from its flags: create2 becomes create,
    flags 4 a createContainer, TTL flags a createTTL, and an unknown flag a plain create.
    """
    if header_op not in _CREATE_OPS:
        return header_op
    try:
        mode = CreateMode(req.flags)
    except ValueError:
        mode = CreateMode.PERSISTENT
        req.flags = CreateMode.PERSISTENT
    if mode.is_ttl:
        return OpCode.CREATE_TTL
    if mode == CreateMode.CONTAINER:
        return OpCode.CREATE_CONTAINER
    return OpCode.CREATE


class Prep:
    def __init__(
        self,
        tree: DataTree,
        registry: AuthRegistry,
        *,
        skip_acl: bool = False,
        extended_types_enabled: bool = False,
        close_session_txn_enabled: bool = True,
        check_session: Callable[[int, int], int] = lambda session_id, owner: 0,
        check_global_session: Callable[[int, int], int] | None = None,
        reconfig_enabled: bool = False,
    ) -> None:
        self.tree = tree
        self.registry = registry
        self.skip_acl = skip_acl
        self.extended_types_enabled = extended_types_enabled
        self.close_session_txn_enabled = close_session_txn_enabled
        # SessionTracker.check_session of the server's tracker: 0, SESSIONEXPIRED or SESSIONMOVED.
        self.check_session = check_session
        # checkGlobalSession, for ephemeral creates: only a global session may own an
        # ephemeral node (another server's local session is SESSIONEXPIRED, not exempt).
        self.check_global_session = check_global_session or check_session
        self.reconfig_enabled = reconfig_enabled
        # Set on an established leader only; None answers UNIMPLEMENTED (standalone).
        self.reconfig: ReconfigPlanner | None = None
        self.outstanding: dict[str, ChangeRecord] = {}
        self._outstanding_order: list[ChangeRecord] = []

    # ---- outstanding changes -------------------------------------------------------------

    def record_for(self, path: str) -> ChangeRecord:
        rec = self.outstanding.get(path)
        if rec is not None:
            if not rec.exists:
                raise KeeperError(Err.NONODE, path)
            return rec
        node = self.tree.nodes.get(path)
        if node is None:
            raise KeeperError(Err.NONODE, path)
        return ChangeRecord(-1, path, True, node.version, node.cversion, node.aversion,
                            node.ephemeral_owner, len(node.children), node.acl)

    def _exists(self, path: str) -> bool:
        """Whether path exists once the outstanding txns are applied (no exception dance)."""
        rec = self.outstanding.get(path)
        if rec is not None:
            return rec.exists
        return path in self.tree.nodes

    def _add(self, rec: ChangeRecord) -> None:
        self.outstanding[rec.path] = rec
        self._outstanding_order.append(rec)

    def applied(self, zxid: int) -> None:
        """Forget change records of txns up to zxid: the tree shows them now."""
        order = self._outstanding_order
        i = 0
        while i < len(order) and order[i].zxid <= zxid:
            rec = order[i]
            if self.outstanding.get(rec.path) is rec:
                del self.outstanding[rec.path]
            i += 1
        if i:
            del order[:i]

    def _snapshot_pending(self, paths: Iterable[str]) -> dict[str, ChangeRecord | None]:
        return {p: self.outstanding.get(p) for p in paths}

    def _rollback(self, zxid: int, saved: dict[str, ChangeRecord | None]) -> None:
        """Undo the change records a failed multi added (rollbackPendingChanges)."""
        order = self._outstanding_order
        while order and order[-1].zxid == zxid:
            rec = order.pop()
            if self.outstanding.get(rec.path) is rec:
                del self.outstanding[rec.path]
        for path, rec in saved.items():
            if rec is not None and rec.zxid < zxid:
                self.outstanding[path] = rec

    # ---- helpers -------------------------------------------------------------------------

    def _check_session(self, session_id: int, owner: int) -> None:
        err = self.check_session(session_id, owner)
        if err:
            raise KeeperError(err)

    def _check_acl(self, acl: tuple[ACL, ...], perm: int, auth_ids: Sequence[Id], path: str) -> None:
        if not check_acl(acl, perm, auth_ids, self.registry, self.skip_acl):
            raise KeeperError(Err.NOAUTH, path)

    def _fixup(self, acl: Any, auth_ids: Sequence[Id], path: str) -> tuple[ACL, ...]:
        try:
            return tuple(fixup_acl(acl, auth_ids, self.registry))
        except InvalidACL:
            raise KeeperError(Err.INVALIDACL, path) from None

    @staticmethod
    def _validate(path: str) -> None:
        try:
            validate_path(path)
        except BadPath:
            raise KeeperError(Err.BADARGUMENTS, path) from None

    @staticmethod
    def _check_and_inc_version(current: int, expected: int, path: str) -> int:
        if expected != -1 and expected != current:
            raise KeeperError(Err.BADVERSION, path)
        return current + 1

    @staticmethod
    def _parent(path: str) -> str:
        i = path.rfind("/")
        if i == -1 or "\0" in path:
            raise KeeperError(Err.BADARGUMENTS, path)
        return path[:i] if i > 0 else "/"

    # ---- per-op txn builders (pRequest2Txn) ----------------------------------------------

    def _create(self, op: int, req: Any, session_id: int, owner: int, auth_ids: Sequence[Id], zxid: int,
                time: int) -> tuple[int, Any]:
        ttl = req.ttl if isinstance(req, CreateTTLRequest) else -1
        flags = _CREATE_FLAGS.get(req.flags)
        if flags is None:
            raise KeeperError(Err.BADARGUMENTS, req.path)
        is_ephemeral, is_sequential, is_ttl = flags
        path = req.path
        # validateCreateRequest
        if is_ttl and not self.extended_types_enabled:
            raise KeeperError(Err.UNIMPLEMENTED, path)
        if is_ttl:
            if ttl <= 0 or ttl > TTL_MAX_MS:
                raise KeeperError(Err.BADARGUMENTS, path)
        elif ttl >= 0:
            raise KeeperError(Err.BADARGUMENTS, path)
        err = (self.check_global_session if is_ephemeral else self.check_session)(session_id, owner)
        if err:
            raise KeeperError(err)
        if path is None:
            raise KeeperError(Err.BADARGUMENTS, path)
        parent_path = self._parent(path)
        acl = self._fixup(req.acl, auth_ids, path)
        parent = self.record_for(parent_path)
        self._check_acl(parent.acl, _PERM_CREATE, auth_ids, path)
        if is_sequential:
            path = f"{path}{parent.cversion:010d}" if parent.cversion >= 0 else f"{path}-{-parent.cversion:09d}"
        self._validate(path)
        if self._exists(path):
            raise KeeperError(Err.NODEEXISTS, path)
        parent_owner = parent.ephemeral_owner
        if parent_owner and not is_container_owner(parent_owner) and \
                not is_ttl_owner(parent_owner, self.extended_types_enabled):
            raise KeeperError(Err.NOCHILDRENFOREPHEMERALS, path)
        new_cversion = parent.cversion + 1
        if op == _CREATE_CONTAINER:
            txn: Any = CreateContainerTxn(path, req.data, list(acl), new_cversion)
            node_owner = EPHEMERAL_OWNER_CONTAINER
        elif op == _CREATE_TTL:
            txn = CreateTTLTxn(path, req.data, list(acl), new_cversion, ttl)
            node_owner = ttl_owner(ttl)
        else:
            txn = CreateTxn(path, req.data, list(acl), is_ephemeral, new_cversion)
            node_owner = session_id if is_ephemeral else 0
        parent = parent.duplicate(zxid)
        parent.child_count += 1
        parent.cversion = new_cversion
        self._add(parent)
        self._add(ChangeRecord(zxid, path, True, 0, 0, 0, node_owner, 0, acl))
        return op, txn

    def _delete(self, op: int, req: Any, session_id: int, owner: int, auth_ids: Sequence[Id],
                zxid: int) -> tuple[int, Any]:
        self._check_session(session_id, owner)
        path = req.path
        if path is None:
            raise KeeperError(Err.BADARGUMENTS, path)
        parent_path = self._parent(path)
        if path in SPECIAL_PATHS:
            raise KeeperError(Err.BADARGUMENTS, path)
        parent = self.record_for(parent_path)
        self._check_acl(parent.acl, _PERM_DELETE, auth_ids, path)
        node = self.record_for(path)
        self._check_and_inc_version(node.version, req.version, path)
        if node.child_count > 0:
            raise KeeperError(Err.NOTEMPTY, path)
        parent = parent.duplicate(zxid)
        parent.child_count -= 1
        self._add(parent)
        self._add(ChangeRecord(zxid, path, False))
        return op, DeleteTxn(path)

    def _set_data(self, req: Any, session_id: int, owner: int, auth_ids: Sequence[Id], zxid: int) -> tuple[int, Any]:
        self._check_session(session_id, owner)
        path = req.path
        self._validate(path)
        node = self.record_for(path)
        self._check_acl(node.acl, _PERM_WRITE, auth_ids, path)
        version = self._check_and_inc_version(node.version, req.version, path)
        node = node.duplicate(zxid)
        node.version = version
        self._add(node)
        return OpCode.SET_DATA, SetDataTxn(path, req.data, version)

    def _set_acl(self, req: Any, session_id: int, owner: int, auth_ids: Sequence[Id], zxid: int) -> tuple[int, Any]:
        self._check_session(session_id, owner)
        path = req.path
        self._validate(path)
        acl = self._fixup(req.acl, auth_ids, path)
        node = self.record_for(path)
        self._check_acl(node.acl, Perms.ADMIN, auth_ids, path)
        version = self._check_and_inc_version(node.aversion, req.version, path)
        node = node.duplicate(zxid)
        node.aversion = version
        node.acl = acl
        self._add(node)
        return OpCode.SET_ACL, SetACLTxn(path, list(acl), version)

    def _check(self, req: Any, session_id: int, owner: int, auth_ids: Sequence[Id]) -> tuple[int, Any]:
        self._check_session(session_id, owner)
        path = req.path
        self._validate(path)
        node = self.record_for(path)
        self._check_acl(node.acl, Perms.READ, auth_ids, path)
        version = self._check_and_inc_version(node.version, req.version, path)
        return OpCode.CHECK, CheckVersionTxn(path, version)

    def _reconfig(self, req: Any, session_id: int, owner: int, auth_ids: Sequence[Id], zxid: int) -> tuple[int, Any]:
        if not self.reconfig_enabled:
            raise KeeperError(Err.RECONFIGDISABLED)
        self._check_session(session_id, owner)
        if self.reconfig is None:
            raise KeeperError(Err.UNIMPLEMENTED)
        try:
            planned = self.reconfig.plan(req, zxid)
            node = self.record_for(CONFIG_NODE)
            self._check_acl(node.acl, _PERM_WRITE, auth_ids, CONFIG_NODE)
        except ReconfigRefused as exc:
            raise KeeperError(exc.err, CONFIG_NODE) from None
        node = node.duplicate(zxid)
        node.version = -1
        self._add(node)
        return _RECONFIG, SetDataTxn(CONFIG_NODE, planned.config_text().encode(), -1)

    def _one(self, op: int, req: Any, session_id: int, owner: int, auth_ids: Sequence[Id], zxid: int,
             time: int) -> tuple[int, Any]:
        if op in _CREATE_OPS:
            return self._create(op, req, session_id, owner, auth_ids, zxid, time)
        if op in _DELETE_OPS:
            return self._delete(op, req, session_id, owner, auth_ids, zxid)
        if op == _SET_DATA:
            return self._set_data(req, session_id, owner, auth_ids, zxid)
        if op == _SET_ACL:
            return self._set_acl(req, session_id, owner, auth_ids, zxid)
        if op == _CHECK:
            return self._check(req, session_id, owner, auth_ids)
        if op == _RECONFIG:
            return self._reconfig(req, session_id, owner, auth_ids, zxid)
        raise KeeperError(Err.UNIMPLEMENTED)

    # ---- entry points --------------------------------------------------------------------

    def prep_write(self, op: int, req: Any, session_id: int, cxid: int, auth_ids: Sequence[Id],
                   zxid: int, time: int, owner: int = 0) -> Prepared:
        """A client write (create*, delete, setData, setACL) -> a txn or an ErrorTxn.

        `owner` is the server the request came through (checkSession: SESSIONMOVED when the
        session lives on another one)."""
        try:
            txn_type, txn = self._one(op, req, session_id, owner, auth_ids, zxid, time)
            return Prepared(TxnHeader(session_id, cxid, zxid, time, txn_type), txn)
        except KeeperError as exc:
            return Prepared(TxnHeader(session_id, cxid, zxid, time, OpCode.ERROR), ErrorTxn(exc.err), exc.err)

    def prep_multi(self, ops: list[tuple[int, Any]], session_id: int, cxid: int,
                   auth_ids: Sequence[Id], zxid: int, time: int, owner: int = 0) -> Prepared:
        saved = self._snapshot_pending({getattr(r, "path", None) or "" for _, r in ops}
                                       | {self._safe_parent(getattr(r, "path", None)) for _, r in ops})
        txns: list[Txn] = []
        records: list[Any] = []
        failed: int = 0
        for header_op, req in ops:
            op = multi_op_type(header_op, req)
            if failed:
                txn_type, txn = _ERROR, ErrorTxn(Err.RUNTIMEINCONSISTENCY)
            else:
                try:
                    txn_type, txn = self._one(op, req, session_id, owner, auth_ids, zxid, time)
                except KeeperError as exc:
                    failed = exc.err
                    txn_type, txn = _ERROR, ErrorTxn(exc.err)
                    self._rollback(zxid, saved)
            txns.append(Txn(txn_type, txn.encode()))
            records.append(txn)
        return Prepared(TxnHeader(session_id, cxid, zxid, time, OpCode.MULTI), MultiTxn(txns), failed, records)

    @staticmethod
    def _safe_parent(path: str | None) -> str:
        if not path or "/" not in path:
            return ""
        i = path.rfind("/")
        return path[:i] if i > 0 else "/"

    def prep_error(self, session_id: int, cxid: int, err: int, zxid: int, time: int) -> Prepared:
        """A write that failed before prep could read it (e.g. MARSHALLINGERROR)."""
        return Prepared(TxnHeader(session_id, cxid, zxid, time, OpCode.ERROR), ErrorTxn(err), err)

    def prep_delete_container(self, path: str, zxid: int, time: int) -> Prepared:
        """deleteContainer (opcode 20), issued by the container sweeper with session 0."""
        hdr = TxnHeader(0, 0, zxid, time, OpCode.DELETE_CONTAINER)
        try:
            parent_path = self._parent(path)
            if path in SPECIAL_PATHS:
                raise KeeperError(Err.BADARGUMENTS, path)
            node = self.record_for(path)
            if node.child_count > 0:
                raise KeeperError(Err.NOTEMPTY, path)
            owner = node.ephemeral_owner
            if owner and not is_container_owner(owner) and not is_ttl_owner(owner, self.extended_types_enabled):
                raise KeeperError(Err.BADVERSION, path)
            parent = self.record_for(parent_path).duplicate(zxid)
            parent.child_count -= 1
            self._add(parent)
            self._add(ChangeRecord(zxid, path, False))
            return Prepared(hdr, DeleteTxn(path))
        except KeeperError as exc:
            return Prepared(TxnHeader(0, 0, zxid, time, OpCode.ERROR), ErrorTxn(exc.err), exc.err)

    def prep_create_session(self, session_id: int, timeout_ms: int, zxid: int, time: int) -> Prepared:
        return Prepared(TxnHeader(session_id, 0, zxid, time, OpCode.CREATE_SESSION), CreateSessionTxn(timeout_ms))

    def prep_close_session(self, session_id: int, cxid: int, zxid: int, time: int) -> Prepared:
        """closeSession: the txn lists the session's ephemerals, outstanding ones included.

        The list is in the order ZooKeeper iterates its copy of the session's ephemerals
        (a HashSet), which is the order their NodeDeleted events go out.
        """
        paths = JavaHashSet.copy_of(JavaHashSet(self.tree.ephemerals.get(session_id, ())))
        for rec in self._outstanding_order:
            if not rec.exists:
                paths.discard(rec.path)
            elif rec.ephemeral_owner == session_id:
                paths.add(rec.path)
        ordered = list(paths)
        for p in ordered:
            self._add(ChangeRecord(zxid, p, False))
        txn = CloseSessionTxn(ordered) if self.close_session_txn_enabled else None
        return Prepared(TxnHeader(session_id, cxid, zxid, time, OpCode.CLOSE_SESSION), txn)
