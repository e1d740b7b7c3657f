"""DataTree: the replicated state. It changes only by applying txns (DataTree.processTxn).

Rule 1: `apply(header, txn)` is the only mutator used by the server, recovery and sync alike;
        it never sees a client request and never checks ACLs (prep did that).
Rule 2: apply is total: errors a txn meets (NONODE/NODEEXISTS during replay of a fuzzy
        snapshot) become the result's err, never exceptions, exactly as processTxn does.
Rule 3: each change reports the watch events it fires, in order, as (EventType, path, acl);
        acl is the ACL of the node the event is about (the parent's for NodeChildrenChanged),
        taken at the change, since a watcher only hears of nodes it may read (CVE-2024-23944,
        in the 3.8 oracle). The caller (the watch manager) delivers them in the same step.
Rule 4: the tree digest (DigestCalculator, AdHash sum of CRC32 per node) is kept incrementally:
        subtract a node's digest before changing it, add it back after.
Rule 5: while an exact snapshot is being serialized in steps (SnapshotSerializer exact=True),
        `preimages` holds each node's state as it was when the snapshot started, taken at its
        first change (None: the node did not exist then), so the snapshot is the tree at one zxid.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from jute.codes import EPHEMERAL_OWNER_CONTAINER, Err, EventType, OpCode
from jute.data import ACL, OPEN_ACL_UNSAFE, READ_ACL_UNSAFE, Stat
from jute.txn import (
    CheckVersionTxn,
    CloseSessionTxn,
    CreateContainerTxn,
    CreateSessionTxn,
    CreateTTLTxn,
    CreateTxn,
    CreateTxnV0,
    DeleteTxn,
    ErrorTxn,
    MultiTxn,
    SetACLTxn,
    SetDataTxn,
    TxnHeader,
)
from pyzk.errors import KeeperError
from pyzk.tree.node import DataNode, is_container_owner, is_ttl_owner, ttl_owner
from pyzk.tree.quota import QuotaTracker

ZOOKEEPER_NODE = "/zookeeper"
QUOTA_NODE = "/zookeeper/quota"
CONFIG_NODE = "/zookeeper/config"
SPECIAL_PATHS = frozenset({"/", ZOOKEEPER_NODE, QUOTA_NODE, CONFIG_NODE})
DIGEST_VERSION = 2

# DigestCalculator's Stat block and the 64-bit wrap of the digest sum (also used by
# storage.snapshot_format.node_digest_sum).
DIGEST_STAT = struct.Struct(">qqqqqiiiq")
DIGEST_MASK64 = (1 << 64) - 1

WatchEvent = tuple[EventType, str, tuple[ACL, ...]]
# Module-level aliases for the per-write path: `EventType.X` is a metaclass lookup on 3.11.
_NODE_CREATED, _NODE_DELETED = EventType.NODE_CREATED, EventType.NODE_DELETED
_NODE_DATA_CHANGED, _NODE_CHILDREN_CHANGED = EventType.NODE_DATA_CHANGED, EventType.NODE_CHILDREN_CHANGED

# Sub-txn record classes of a multi, by sub-txn type (DataTree.processTxn, case multi).
TXN_RECORDS: dict[int, Any] = {
    OpCode.CREATE: CreateTxn,
    OpCode.CREATE2: CreateTxn,
    OpCode.CREATE_TTL: CreateTTLTxn,
    OpCode.CREATE_CONTAINER: CreateContainerTxn,
    OpCode.DELETE: DeleteTxn,
    OpCode.DELETE_CONTAINER: DeleteTxn,
    OpCode.SET_DATA: SetDataTxn,
    OpCode.RECONFIG: SetDataTxn,
    OpCode.SET_ACL: SetACLTxn,
    OpCode.CHECK: CheckVersionTxn,
    OpCode.ERROR: ErrorTxn,
    OpCode.CREATE_SESSION: CreateSessionTxn,
    OpCode.CLOSE_SESSION: CloseSessionTxn,
    OpCode.MULTI: MultiTxn,
}


def parent_of(path: str) -> str:
    i = path.rfind("/")
    return path[:i] if i > 0 else "/"


@dataclass(slots=True)
class ApplyResult:
    """ProcessTxnResult: what applying one txn did."""

    type: int
    zxid: int
    err: int = 0
    path: str | None = None
    stat: Stat | None = None
    multi: list[ApplyResult] | None = None
    events: list[WatchEvent] = field(default_factory=list)
    created_session: tuple[int, int] | None = None  # (session id, timeout ms)
    closed_session: int | None = None


class DataTree:
    def __init__(self, *, digest_enabled: bool = True, extended_types_enabled: bool = False) -> None:
        self.digest_enabled = digest_enabled
        self.extended_types_enabled = extended_types_enabled
        self.nodes: dict[str, DataNode] = {}
        self.ephemerals: dict[int, dict[str, None]] = {}
        self.containers: dict[str, None] = {}
        self.ttls: dict[str, None] = {}
        # The replicated session table (ZKDatabase.sessionsWithTimeouts): id -> timeout ms.
        self.sessions: dict[int, int] = {}
        self.last_processed_zxid = 0
        self.digest = 0
        self._acl_intern: dict[tuple[ACL, ...], tuple[ACL, ...]] = {}
        self.quotas = QuotaTracker(self)
        self.preimages: dict[str, DataNode | None] | None = None  # Rule 5

        root = DataNode(b"", OPEN_ACL_UNSAFE)
        self._put("/", root)
        zk = DataNode(b"", OPEN_ACL_UNSAFE)
        self._put(ZOOKEEPER_NODE, zk)
        root.children["zookeeper"] = None
        quota = DataNode(b"", OPEN_ACL_UNSAFE)
        self._put(QUOTA_NODE, quota)
        zk.children["quota"] = None
        self.add_config_node()

    def add_config_node(self) -> None:
        """DataTree.addConfigNode: the empty, world-readable /zookeeper/config."""
        zk = self.nodes[ZOOKEEPER_NODE]
        if self.preimages is not None:
            self.keep_preimage(ZOOKEEPER_NODE, zk)
        self._put(CONFIG_NODE, DataNode(b"", READ_ACL_UNSAFE, aversion=-1))
        zk.children["config"] = None

    # ---- digest --------------------------------------------------------------------------

    def node_digest(self, path: str, node: DataNode) -> int:
        """DigestCalculator.calculateDigest; stores the result in node.digest_cache."""
        if not self.digest_enabled or path.startswith("/zookeeper/"):
            return 0
        crc = zlib.crc32(b"" if path == "/" else path.encode("utf-8", "surrogatepass"))
        if node.data is not None:
            crc = zlib.crc32(node.data, crc)
        block = DIGEST_STAT.pack(
            node.czxid, node.mzxid, node.pzxid, node.ctime, node.mtime,
            node.version, node.cversion, node.aversion, node.ephemeral_owner,
        )
        node.digest_cache = digest = zlib.crc32(block, crc)
        return digest

    def _cached_digest(self, path: str, node: DataNode) -> int:
        cached = node.digest_cache
        return cached if cached >= 0 else self.node_digest(path, node)

    def _put(self, path: str, node: DataNode) -> None:
        if self.preimages is not None:
            self.keep_preimage(path, None)
        self.nodes[path] = node
        self.digest = (self.digest + self.node_digest(path, node)) & DIGEST_MASK64

    def _pre_change(self, path: str, node: DataNode) -> None:
        if self.preimages is not None:
            self.keep_preimage(path, node)
        self.digest = (self.digest - self._cached_digest(path, node)) & DIGEST_MASK64

    def keep_preimage(self, path: str, node: DataNode | None) -> None:
        """Call before `path` changes in place (or is created: node None) while an exact
        snapshot runs; only the first change since the snapshot started is kept (Rule 5)."""
        preimages = self.preimages
        if preimages is not None and path not in preimages:
            preimages[path] = None if node is None else node.copy()

    def _post_change(self, path: str, node: DataNode) -> None:
        self.digest = (self.digest + self.node_digest(path, node)) & DIGEST_MASK64

    # ---- reads ---------------------------------------------------------------------------

    def get(self, path: str) -> DataNode | None:
        return self.nodes.get(path)

    def stat_of(self, node: DataNode) -> Stat:
        return node.stat(self.extended_types_enabled)

    def intern_acl(self, acl: list[ACL] | tuple[ACL, ...] | None) -> tuple[ACL, ...]:
        key = tuple(acl) if acl else ()
        return self._acl_intern.setdefault(key, key)

    @property
    def node_count(self) -> int:
        """As ZooKeeper counts it (srvr "Node count", mntr znode_count): both root aliases."""
        return len(self.nodes) + 1

    def approximate_data_size(self) -> int:
        return sum(len(p) + (len(n.data) if n.data else 0) for p, n in self.nodes.items())

    def count_descendants(self, path: str) -> int:
        node = self.nodes.get(path)
        if node is None:
            return 0
        total = 0
        stack = [(path, node)]
        while stack:
            p, n = stack.pop()
            for name in n.children:
                cp = "/" + name if p == "/" else p + "/" + name
                child = self.nodes.get(cp)
                if child is not None:
                    total += 1
                    stack.append((cp, child))
        return total

    def walk(self) -> Iterator[tuple[str, DataNode]]:
        """Depth-first pre-order, parents before children, siblings as getChildren lists
        them: the order Apache's SnapshotFormatter prints a tree in."""
        stack = ["/"]
        while stack:
            p = stack.pop()
            node = self.nodes.get(p)
            if node is None:
                continue
            yield p, node
            names = node.list_children()
            for name in reversed(names):
                stack.append("/" + name if p == "/" else p + "/" + name)

    def ephemerals_of(self, session_id: int) -> list[str]:
        return list(self.ephemerals.get(session_id, ()))

    # ---- bulk load (snapshot restore) ----------------------------------------------------

    def bulk_load(self, nodes: Iterable[tuple[str, DataNode]], *, with_digest: bool = True) -> None:
        """Replace every node with `nodes`, each parent before its children (DataTree.deserialize).

        Links each node into its parent's children in the order given (addChild in
        DataTree.deserialize: each set's table is sized for its count, and the order it lists
        follows the snapshot's), indexes ephemerals, containers and TTL nodes, recomputes the
        digest (node_digest, inlined: this runs once per node of a snapshot; with_digest=False
        leaves it to the caller, who sets `digest`) and the quota stats. The nodes' `children`
        must be empty.
        Raises ValueError naming the first path whose parent was not loaded before it.
        """
        loaded: dict[str, DataNode] = {}
        ephemerals: dict[int, dict[str, None]] = {}
        containers: dict[str, None] = {}
        ttls: dict[str, None] = {}
        self.nodes, self.ephemerals, self.containers, self.ttls = loaded, ephemerals, containers, ttls
        find_parent = loaded.get
        extended = self.extended_types_enabled
        digest_enabled = self.digest_enabled and with_digest  # else the caller sets .digest
        crc32 = zlib.crc32
        pack_stat = DIGEST_STAT.pack
        digest = 0
        parent_path = parent = None  # siblings come in runs: skip the lookup for the next one
        for path, node in nodes:
            if path != "/":
                slash = path.rfind("/")
                if slash < 0:
                    raise ValueError(f"node {path!r} is not an absolute path")
                if path[:slash] != parent_path:
                    parent_path = path[:slash]
                    parent = find_parent(parent_path or "/")
                if parent is None:
                    raise ValueError(f"node {path!r} comes before its parent")
                parent.children[path[slash + 1:]] = None
                owner = node.ephemeral_owner
                if owner:
                    if is_container_owner(owner):
                        containers[path] = None
                    elif is_ttl_owner(owner, extended):
                        ttls[path] = None
                    else:
                        ephemerals.setdefault(owner, {})[path] = None
            loaded[path] = node
            if digest_enabled and not path.startswith("/zookeeper/"):
                crc = crc32(b"" if path == "/" else path.encode("utf-8", "surrogatepass"))
                if node.data is not None:
                    crc = crc32(node.data, crc)
                digest += crc32(pack_stat(node.czxid, node.mzxid, node.pzxid, node.ctime, node.mtime,
                                          node.version, node.cversion, node.aversion,
                                          node.ephemeral_owner), crc)
        if "/" not in loaded:
            raise ValueError("no root node")
        for node in loaded.values():
            if len(node.children) * 4 > node.children_capacity * 3:  # the set grew while loading
                node.child_added()
        self.digest = digest & DIGEST_MASK64
        self.quotas.rebuild()

    # ---- mutations (txn appliers) --------------------------------------------------------

    def create_node(
        self, path: str, data: bytes | None, acl: Any, owner: int, parent_cversion: int,
        zxid: int, time: int, events: list[WatchEvent],
    ) -> DataNode:
        i = path.rfind("/")
        parent_path = path[:i] if i > 0 else "/"
        child_name = path[i + 1 :]
        parent = self.nodes.get(parent_path)
        if parent is None:
            raise KeeperError(Err.NONODE)
        if child_name in parent.children:
            raise KeeperError(Err.NODEEXISTS)
        self._pre_change(parent_path, parent)
        if parent_cversion == -1:
            parent_cversion = parent.cversion + 1
        # Replay of a fuzzy snapshot may meet a create that is already reflected: only move up.
        if parent_cversion > parent.cversion:
            parent.cversion = parent_cversion
            parent.pzxid = zxid
        children = parent.children  # parent.add_child(child_name), inlined: once per create
        children[child_name] = None
        if len(children) * 4 > parent.children_capacity * 3:
            parent.child_added()
        self._post_change(parent_path, parent)
        node = DataNode(data, self.intern_acl(acl), zxid, zxid, time, time, 0, 0, 0, owner, zxid)
        self._put(path, node)
        if owner:
            if is_container_owner(owner):
                self.containers[path] = None
            elif is_ttl_owner(owner, self.extended_types_enabled):
                self.ttls[path] = None
            else:
                self.ephemerals.setdefault(owner, {})[path] = None
        self.quotas.on_create(path, data)
        events.append((_NODE_CREATED, path, node.acl))
        events.append((_NODE_CHILDREN_CHANGED, parent_path, parent.acl))
        return node

    def delete_node(self, path: str, zxid: int, events: list[WatchEvent]) -> None:
        i = path.rfind("/")
        parent_path = path[:i] if i > 0 else "/"
        parent = self.nodes.get(parent_path)
        if parent is None:
            raise KeeperError(Err.NONODE)
        # The parent moves first, even when the child is gone: replaying a fuzzy snapshot
        # may meet a delete whose child the snapshot already lacks, and the parent's pzxid
        # must still advance (DataTree.deleteNode does the same; digests depend on it).
        self._pre_change(parent_path, parent)
        child_name = path[i + 1 :]  # parent.remove_child(child_name), inlined: once per delete
        bucket = parent.children.pop(child_name, None)
        if bucket is not None and parent.children_listing is not None:
            parent.children_listing.removed[child_name] = bucket
        parent.pzxid = max(parent.pzxid, zxid)
        self._post_change(parent_path, parent)
        node = self.nodes.get(path)
        if node is None:
            raise KeeperError(Err.NONODE)
        if self.preimages is not None:
            self.keep_preimage(path, node)
        self.digest = (self.digest - self._cached_digest(path, node)) & DIGEST_MASK64
        del self.nodes[path]
        owner = node.ephemeral_owner
        if owner:
            if is_container_owner(owner):
                self.containers.pop(path, None)
            elif is_ttl_owner(owner, self.extended_types_enabled):
                self.ttls.pop(path, None)
            else:
                paths = self.ephemerals.get(owner)
                if paths is not None:
                    paths.pop(path, None)
                    if not paths:
                        del self.ephemerals[owner]
        self.quotas.on_delete(path, node.data)
        events.append((_NODE_DELETED, path, node.acl))
        events.append((_NODE_CHILDREN_CHANGED, parent_path, parent.acl))

    def set_data(self, path: str, data: bytes | None, version: int, zxid: int, time: int,
                 events: list[WatchEvent]) -> Stat:
        node = self.nodes.get(path)
        if node is None:
            raise KeeperError(Err.NONODE)
        self._pre_change(path, node)
        old = node.data
        node.data = data
        node.mtime = time
        node.mzxid = zxid
        node.version = version
        self._post_change(path, node)
        self.quotas.on_set_data(path, old, data)
        events.append((_NODE_DATA_CHANGED, path, node.acl))
        return self.stat_of(node)

    def set_acl(self, path: str, acl: Any, version: int) -> Stat:
        node = self.nodes.get(path)
        if node is None:
            raise KeeperError(Err.NONODE)
        self._pre_change(path, node)
        node.aversion = version
        node.acl = self.intern_acl(acl)
        self._post_change(path, node)
        return self.stat_of(node)

    def set_cversion_pzxid(self, path: str, new_cversion: int, zxid: int) -> None:
        node = self.nodes.get(path)
        if node is None:
            raise KeeperError(Err.NONODE)
        if new_cversion == -1:
            new_cversion = node.cversion + 1
        if new_cversion > node.cversion:
            self._pre_change(path, node)
            node.cversion = new_cversion
            node.pzxid = zxid
            self._post_change(path, node)

    def kill_session(self, session_id: int, zxid: int, paths: list[str] | None,
                     events: list[WatchEvent]) -> None:
        local = self.ephemerals.pop(session_id, None)
        listed = set(paths) if paths is not None else set()
        if paths is not None:
            for p in paths:
                try:
                    self.delete_node(p, zxid, events)
                except KeeperError:
                    pass
        if local:
            for p in local:
                if p in listed:
                    continue
                try:
                    self.delete_node(p, zxid, events)
                except KeeperError:
                    pass

    # ---- processTxn ----------------------------------------------------------------------

    def apply(self, hdr: TxnHeader, txn: Any, *, is_sub_txn: bool = False,
              sub_records: list[Any] | None = None) -> ApplyResult:
        """Apply one txn (DataTree.processTxn); returns its result and the watch events.

        sub_records: a multi's sub-txn records already decoded (the ones its bytes encode).
        """
        t = hdr.type
        rc = ApplyResult(t, hdr.zxid)
        applier = _APPLIERS.get(t)
        if applier is None:
            raise ValueError(f"unknown txn type {t}")
        try:
            if sub_records is not None and t == _MULTI:
                self._apply_multi(hdr, txn, rc, sub_records)
            else:
                applier(self, hdr, txn, rc)
        except KeeperError as exc:
            rc.err = exc.err
            # Replay of a create already in a fuzzy snapshot still moves the parent's cversion.
            if t == _CREATE and exc.err == Err.NODEEXISTS and not isinstance(txn, CreateTxnV0):
                try:
                    self.set_cversion_pzxid(parent_of(txn.path), txn.parentCVersion, hdr.zxid)
                except KeeperError:
                    pass
        if not is_sub_txn and hdr.zxid > self.last_processed_zxid:
            self.last_processed_zxid = hdr.zxid
        return rc

    # One applier per txn type, found by a dict lookup (an if-chain of IntEnum compares
    # costs ~0.1 us per compare on Python 3.11, and this runs once per write).

    def _apply_create(self, hdr: TxnHeader, txn: Any, rc: ApplyResult) -> None:
        rc.path = txn.path
        cv = -1 if isinstance(txn, CreateTxnV0) else txn.parentCVersion
        owner = hdr.clientId if txn.ephemeral else 0
        node = self.create_node(txn.path, txn.data, txn.acl, owner, cv, hdr.zxid, hdr.time, rc.events)
        if hdr.type == _CREATE2:
            rc.stat = self.stat_of(node)

    def _apply_create_ttl(self, hdr: TxnHeader, txn: Any, rc: ApplyResult) -> None:
        rc.path = txn.path
        node = self.create_node(txn.path, txn.data, txn.acl, ttl_owner(txn.ttl),
                                txn.parentCVersion, hdr.zxid, hdr.time, rc.events)
        rc.stat = self.stat_of(node)

    def _apply_create_container(self, hdr: TxnHeader, txn: Any, rc: ApplyResult) -> None:
        rc.path = txn.path
        node = self.create_node(txn.path, txn.data, txn.acl, EPHEMERAL_OWNER_CONTAINER,
                                txn.parentCVersion, hdr.zxid, hdr.time, rc.events)
        rc.stat = self.stat_of(node)

    def _apply_delete(self, hdr: TxnHeader, txn: Any, rc: ApplyResult) -> None:
        rc.path = txn.path
        self.delete_node(txn.path, hdr.zxid, rc.events)

    def _apply_set_data(self, hdr: TxnHeader, txn: Any, rc: ApplyResult) -> None:
        rc.path = txn.path
        rc.stat = self.set_data(txn.path, txn.data, txn.version, hdr.zxid, hdr.time, rc.events)

    def _apply_set_acl(self, hdr: TxnHeader, txn: Any, rc: ApplyResult) -> None:
        rc.path = txn.path
        rc.stat = self.set_acl(txn.path, txn.acl, txn.version)

    def _apply_create_session(self, hdr: TxnHeader, txn: Any, rc: ApplyResult) -> None:
        self.sessions[hdr.clientId] = txn.timeOut
        rc.created_session = (hdr.clientId, txn.timeOut)

    def _apply_close_session(self, hdr: TxnHeader, txn: Any, rc: ApplyResult) -> None:
        self.sessions.pop(hdr.clientId, None)
        paths = txn.paths2Delete if txn is not None else None
        self.kill_session(hdr.clientId, hdr.zxid, paths, rc.events)
        rc.closed_session = hdr.clientId

    def _apply_error(self, hdr: TxnHeader, txn: Any, rc: ApplyResult) -> None:
        rc.err = txn.err

    def _apply_check(self, hdr: TxnHeader, txn: Any, rc: ApplyResult) -> None:
        rc.path = txn.path

    def _apply_multi(self, hdr: TxnHeader, txn: MultiTxn, rc: ApplyResult,
                     sub_records: list[Any] | None = None) -> None:
        subs = txn.txns or []
        failed = any(s.type == _ERROR for s in subs)
        post_failed = False
        rc.multi = []
        for index, sub in enumerate(subs):
            if sub_records is not None:
                record = sub_records[index]
            else:
                rec_cls = TXN_RECORDS.get(sub.type)
                if rec_cls is None:
                    raise ValueError(f"invalid multi sub-txn type {sub.type}")
                record = rec_cls.from_bytes(sub.data or b"")
            sub_type = sub.type
            if sub_type == _ERROR:
                post_failed = True
            elif failed:
                record = ErrorTxn(Err.RUNTIMEINCONSISTENCY if post_failed else Err.OK)
                sub_type = _ERROR
            sub_hdr = TxnHeader(hdr.clientId, hdr.cxid, hdr.zxid, hdr.time, sub_type)
            sub_rc = self.apply(sub_hdr, record, is_sub_txn=True)
            rc.multi.append(sub_rc)
            rc.events.extend(sub_rc.events)
            if sub_rc.err != 0 and rc.err == 0:
                rc.err = sub_rc.err


_CREATE, _CREATE2, _MULTI, _ERROR = OpCode.CREATE, OpCode.CREATE2, OpCode.MULTI, OpCode.ERROR
_APPLIERS: dict[int, Any] = {
    OpCode.CREATE: DataTree._apply_create,
    OpCode.CREATE2: DataTree._apply_create,
    OpCode.CREATE_TTL: DataTree._apply_create_ttl,
    OpCode.CREATE_CONTAINER: DataTree._apply_create_container,
    OpCode.DELETE: DataTree._apply_delete,
    OpCode.DELETE_CONTAINER: DataTree._apply_delete,
    OpCode.SET_DATA: DataTree._apply_set_data,
    OpCode.RECONFIG: DataTree._apply_set_data,
    OpCode.SET_ACL: DataTree._apply_set_acl,
    OpCode.CREATE_SESSION: DataTree._apply_create_session,
    OpCode.CLOSE_SESSION: DataTree._apply_close_session,
    OpCode.ERROR: DataTree._apply_error,
    OpCode.CHECK: DataTree._apply_check,
    OpCode.MULTI: DataTree._apply_multi,
}
