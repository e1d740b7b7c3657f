"""Snapshot format (FileSnap, SerializeUtils, DataTree.serialize, SnapStream): pure bytes.

Layout (3.8, CHECKED stream): FileHeader{ZKSN, 2, -1}, sessions, ACL cache, nodes in
pre-order ending with the path "/", seal 1 (Adler32 of everything so far, then "/"), the
digest trailer {zxid, digestVersion, digest}, seal 2 (cumulative Adler32, then "/").

Rule 1: serialization is bounded: `SnapshotSerializer.step(nodes_max)` serializes at most that
        many nodes and may be interleaved with txns. By default it is fuzzy: it reads the live
        tree, nodes deleted in between are skipped, parents always precede children; replaying
        the log from the snapshot's zxid + 1 makes the result consistent, exactly as for
        ZooKeeper's snapshots. With exact=True the tree keeps the old state of every node a txn
        changes meanwhile (DataTree.preimages) and the snapshot is the tree at its zxid.
Rule 2: the ACL cache is built on write: each distinct ACL list gets the next index from 1;
        the built-in nodes with OPEN_ACL_UNSAFE are written with -1 and no entry. On read every
        index is resolved to an interned tuple.
Rule 3: children are written in sorted order where that is cheap, so equal trees give equal
        files (and a fresh tree gives Apache ZooKeeper's snapshot.0 byte for byte).
Rule 4: a reader accepts a missing digest trailer (older files) and ignores 3.9's
        lastProcessedZxid trailer; a bad seal or a truncated body is SnapshotFormatError.
"""

from __future__ import annotations

import gc
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from jute.data import ACL, OPEN_ACL_UNSAFE
from jute.persistence import FILE_FORMAT_VERSION, SNAP_MAGIC, FileHeader
from jute.primitives import JuteError
from pyzk.storage.errors import SnapshotFormatError
from pyzk.tree.datatree import (
    DIGEST_MASK64,
    DIGEST_STAT,
    DIGEST_VERSION,
    QUOTA_NODE,
    ZOOKEEPER_NODE,
    DataTree,
)
from pyzk.tree.node import DataNode

SNAP_FILE_HEADER = FileHeader(SNAP_MAGIC, FILE_FORMAT_VERSION, -1).encode()
PATH_END_MARKER = b"\x00\x00\x00\x01/"  # ustring "/": end of nodes, and the tail of each seal
SNAP_STREAM_END = b"\x00\x00\x00\x0aBenWasHere"  # after a Zab SNAP body (Learner.syncWithLeader)
SNAPSHOT_BYTES_MIN = 10  # SnapStream.isValidCheckedStream
OPEN_ACL_INDEX = -1  # ReferenceCountedACLCache.OPEN_UNSAFE_ACL_ID
BUILTIN_OPEN_PATHS = frozenset({"/", ZOOKEEPER_NODE, QUOTA_NODE})

_INT = struct.Struct(">i")
_LONG = struct.Struct(">q")
_SESSION = struct.Struct(">qi")
# DataNode record after its data: long aclIndex, then StatPersisted.
_NODE_TAIL = struct.Struct(">qqqqqiiiqq")
_ZXID_DIGEST = struct.Struct(">qiq")
# Start summing node digests elsewhere: (snapshot bytes, offset of the first node record) ->
# a function that waits for the sum (None when that failed: the caller sums it itself).
ParallelDigest = Callable[[bytes, int], Callable[[], "int | None"]]
PARALLEL_DIGEST_BYTES_MIN = 16 << 20  # below this the hand-off costs more than it saves
_NULL = b"\xff\xff\xff\xff"
_ROOT_PATH = _INT.pack(0)


@dataclass(frozen=True, slots=True)
class ZxidDigest:
    """DataTree.ZxidDigest: the tree digest after applying txn `zxid` (zeros = unknown)."""

    zxid: int
    digest_version: int
    digest: int


@dataclass(slots=True)
class LoadedSnapshot:
    tree: DataTree
    sessions: dict[int, int]
    zxid_digest: ZxidDigest | None


def looks_valid(data_tail: bytes, file_bytes: int) -> bool:
    """SnapStream.isValidCheckedStream: long enough, and ends with int 1 then "/"."""
    return file_bytes >= SNAPSHOT_BYTES_MIN and data_tail[-5:] == PATH_END_MARKER


class SnapshotSerializer:
    """Serializes one DataTree snapshot in bounded steps (see the module rules)."""

    def __init__(self, tree: DataTree, *, exact: bool = False) -> None:
        self.tree = tree
        self.zxid = tree.last_processed_zxid  # names the file: the zxid when the snapshot started
        self.exact = exact
        self._preimages: dict[str, DataNode | None] | None = None
        self._digest_at_start = tree.digest
        if exact:
            if tree.preimages is not None:
                raise RuntimeError("an exact snapshot of this tree is already running")
            self._preimages = tree.preimages = {}
        sessions = bytearray(_INT.pack(len(tree.sessions)))
        for session_id, timeout_ms in tree.sessions.items():
            sessions += _SESSION.pack(session_id, timeout_ms)
        self._sessions = bytes(sessions)
        self._pending_paths = ["/"]
        # id(acl tuple) -> (index, tuple); the tuple is kept so its id stays unique.
        self._acl_indexes: dict[int, tuple[int, tuple[ACL, ...]]] = {}
        self._node_chunks: list[bytes] = []
        self.zxid_digest: ZxidDigest | None = None
        self.nodes_written = 0

    @property
    def done(self) -> bool:
        return not self._pending_paths

    def _new_acl_index(self, acl: tuple[ACL, ...]) -> int:
        index = len(self._acl_indexes) + 1
        self._acl_indexes[id(acl)] = (index, acl)
        return index

    def abandon(self) -> None:
        """Stop an exact snapshot before it is done: the tree stops keeping old node states."""
        self._release()
        self._pending_paths = []

    def _release(self) -> None:
        if self._preimages is not None and self.tree.preimages is self._preimages:
            self.tree.preimages = None
        self._preimages = None

    def step(self, nodes_max: int) -> bool:
        """Serialize up to `nodes_max` nodes; True once the whole tree has been written."""
        live = self.tree.nodes.get
        preimages = self._preimages
        if preimages:
            def find_node(path: str) -> DataNode | None:
                return preimages[path] if path in preimages else live(path)
        else:
            find_node = live
        pending = self._pending_paths
        pop = pending.pop
        known_acls = self._acl_indexes
        out = bytearray()
        pack_tail = _NODE_TAIL.pack
        pack_len = _INT.pack
        written = 0
        while pending and written < nodes_max:
            path = pop()
            node = find_node(path)
            if node is None:
                continue  # deleted since its parent was written: replay recreates nothing
            if path == "/":
                out += _ROOT_PATH  # the root is written as the empty path
            else:
                raw_path = path.encode("utf-8", "surrogatepass")
                out += pack_len(len(raw_path))
                out += raw_path
            data = node.data
            if data is None:
                out += _NULL
            else:
                out += pack_len(len(data))
                out += data
            acl = node.acl
            if path in BUILTIN_OPEN_PATHS and acl == OPEN_ACL_UNSAFE:
                acl_index = OPEN_ACL_INDEX
            else:
                known = known_acls.get(id(acl))
                acl_index = known[0] if known is not None else self._new_acl_index(acl)
            out += pack_tail(acl_index, node.czxid, node.mzxid, node.ctime, node.mtime,
                             node.version, node.cversion, node.aversion, node.ephemeral_owner,
                             node.pzxid)
            written += 1
            if node.children:
                names = node.list_children()  # Apache writes children in its HashSet order
                prefix = "/" if path == "/" else path + "/"
                pending.extend([prefix + name for name in reversed(names)])
        self._node_chunks.append(bytes(out))
        self.nodes_written += written
        if not pending and self.zxid_digest is None:
            tree = self.tree
            if self.exact:
                self._release()
                zxid, digest = self.zxid, self._digest_at_start
            else:
                zxid, digest = tree.last_processed_zxid, tree.digest
            if zxid > 0 and tree.digest_enabled:
                self.zxid_digest = ZxidDigest(zxid, DIGEST_VERSION, digest)
            else:
                self.zxid_digest = ZxidDigest(0, DIGEST_VERSION, 0)
        return not pending

    def _acl_cache(self) -> bytes:
        out = bytearray(_INT.pack(len(self._acl_indexes)))
        for index, acl in sorted(self._acl_indexes.values(), key=lambda item: item[0]):
            out += _LONG.pack(index)
            out += _INT.pack(len(acl))
            for entry in acl:
                entry.encode_into(out)
        return bytes(out)

    def body_chunks(self) -> list[bytes]:
        """Sessions, ACL cache, nodes and the "/" marker (SerializeUtils.serializeSnapshot)."""
        if not self.done:
            raise RuntimeError("snapshot serialization is not finished")
        return [self._sessions, self._acl_cache(), *self._node_chunks, PATH_END_MARKER]

    def snap_stream(self) -> bytes:
        """The Zab SNAP payload: the body, then "BenWasHere" (no header, seals or digest)."""
        return b"".join(self.body_chunks()) + SNAP_STREAM_END

    def file_chunks(self, *, digest_enabled: bool) -> list[bytes]:
        """The whole snapshot file, sealed. Pure but O(size): run it off the event loop."""
        chunks = [SNAP_FILE_HEADER, *self.body_chunks()]
        checksum = 1
        for chunk in chunks:
            checksum = zlib.adler32(chunk, checksum)
        seal = _LONG.pack(checksum) + PATH_END_MARKER
        chunks.append(seal)
        if digest_enabled:
            assert self.zxid_digest is not None
            zd = self.zxid_digest
            trailer = _ZXID_DIGEST.pack(zd.zxid, zd.digest_version, zd.digest)
            checksum = zlib.adler32(seal + trailer, checksum)
            chunks.append(trailer + _LONG.pack(checksum) + PATH_END_MARKER)
        return chunks


def serialize_snapshot(tree: DataTree, *, digest_enabled: bool) -> bytes:
    """The whole snapshot in one call (start-up, tools, tests)."""
    serializer = SnapshotSerializer(tree)
    while not serializer.step(1 << 30):
        pass
    return b"".join(serializer.file_chunks(digest_enabled=digest_enabled))


# ---- reading -------------------------------------------------------------------------------


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.pos = pos

    def need(self, count: int) -> None:
        if self.pos + count > len(self.data):
            raise SnapshotFormatError(f"snapshot ends at offset {len(self.data)} inside a record at {self.pos}")

    def int(self) -> int:
        self.need(4)
        (value,) = _INT.unpack_from(self.data, self.pos)
        self.pos += 4
        return value

    def long(self) -> int:
        self.need(8)
        (value,) = _LONG.unpack_from(self.data, self.pos)
        self.pos += 8
        return value

    def raw(self) -> bytes | None:
        length = self.int()
        if length == -1:
            return None
        if length < -1:
            raise SnapshotFormatError(f"negative length {length} at offset {self.pos - 4}")
        self.need(length)
        value = self.data[self.pos:self.pos + length]
        self.pos += length
        return value


def _read_acl_cache(reader: _Reader, tree: DataTree) -> dict[int, tuple[ACL, ...]]:
    acl_by_index: dict[int, tuple[ACL, ...]] = {OPEN_ACL_INDEX: tree.intern_acl(OPEN_ACL_UNSAFE)}
    for _ in range(reader.int()):
        index = reader.long()
        count = reader.int()
        acl: list[ACL] = []
        for _ in range(max(count, 0)):
            try:
                entry, reader.pos = ACL.decode_from(reader.data, reader.pos, len(reader.data))
            except JuteError as exc:
                raise SnapshotFormatError(f"bad ACL cache entry at offset {reader.pos}: {exc}") from None
            acl.append(entry)
        acl_by_index[index] = tree.intern_acl(acl)
    return acl_by_index


def _node_records(reader: _Reader, acl_by_index: dict[int, tuple[ACL, ...]]) -> Iterator[tuple[str, DataNode]]:
    """DataTree.deserialize's records: (path, node) until the "/" marker; "" is the root.

    Equal zxids and times share one int object (about 90 bytes less per node).
    """
    data = reader.data
    size = len(data)
    pos = reader.pos
    unpack_len = _INT.unpack_from
    unpack_tail = _NODE_TAIL.unpack_from
    tail_bytes = _NODE_TAIL.size
    try:
        while True:
            (length,) = unpack_len(data, pos)
            pos += 4
            if length < 0 or pos + length > size:
                raise SnapshotFormatError(f"bad path length {length} at offset {pos - 4}")
            path = data[pos:pos + length].decode("utf-8", "surrogatepass")
            pos += length
            if path == "/":
                break
            (length,) = unpack_len(data, pos)
            pos += 4
            if length == -1:
                value = None
            elif length < 0 or pos + length > size:
                raise SnapshotFormatError(f"bad data length {length} at offset {pos - 4}")
            else:
                value = data[pos:pos + length]
                pos += length
            (acl_index, czxid, mzxid, ctime, mtime, version, cversion, aversion, owner,
             pzxid) = unpack_tail(data, pos)
            pos += tail_bytes
            acl = acl_by_index.get(acl_index)
            if acl is None:
                raise SnapshotFormatError(f"node {path!r} uses ACL index {acl_index}, not in the ACL cache")
            if mzxid == czxid:
                mzxid = czxid
            if pzxid == czxid:
                pzxid = czxid
            if mtime == ctime:
                mtime = ctime
            reader.pos = pos
            yield (path or "/"), DataNode(value, acl, czxid, mzxid, ctime, mtime, version, cversion,
                                          aversion, owner, pzxid)
    except struct.error:
        raise SnapshotFormatError(f"snapshot ends inside a node record near offset {pos}") from None
    except UnicodeDecodeError:
        raise SnapshotFormatError(f"invalid UTF-8 path near offset {pos}") from None
    reader.pos = pos


def node_digest_sum(data: bytes, pos: int) -> int:
    """The tree digest of the node records at data[pos:] (DataTree.node_digest, summed).

    Reads the same records as _node_records without building nodes, so it can run apart from
    the loader (parallel_digest); its result equals the digest bulk_load would compute.
    """
    size = len(data)
    unpack_len = _INT.unpack_from
    unpack_tail = _NODE_TAIL.unpack_from
    tail_bytes = _NODE_TAIL.size
    pack_stat = DIGEST_STAT.pack
    crc32 = zlib.crc32
    total = 0
    while pos + 4 <= size:
        (length,) = unpack_len(data, pos)
        pos += 4
        if length < 0:
            raise SnapshotFormatError(f"bad path length {length} at offset {pos - 4}")
        raw_path = data[pos:pos + length]
        pos += length
        if raw_path == b"/":
            break
        (length,) = unpack_len(data, pos)
        pos += 4
        value = None if length == -1 else data[pos:pos + length]
        pos += max(length, 0)
        (_acl, czxid, mzxid, ctime, mtime, version, cversion, aversion, owner,
         pzxid) = unpack_tail(data, pos)
        pos += tail_bytes
        if raw_path.startswith(b"/zookeeper/"):
            continue
        crc = crc32(raw_path)
        if value is not None:
            crc = crc32(value, crc)
        total += crc32(pack_stat(czxid, mzxid, pzxid, ctime, mtime, version, cversion, aversion, owner), crc)
    return total & DIGEST_MASK64


def _read_nodes(reader: _Reader, tree: DataTree, acl_by_index: dict[int, tuple[ACL, ...]],
                parallel_digest: ParallelDigest | None = None) -> None:
    """Load the nodes into the tree; the cyclic GC is paused meanwhile (nothing to collect).

    With `parallel_digest` and a big enough snapshot, the tree digest (about a third of the
    load time) is summed elsewhere while this thread builds the nodes.
    """
    gc_was_enabled = gc.isenabled()
    gc.disable()
    start = reader.pos
    wait_for_digest = None
    if (parallel_digest is not None and tree.digest_enabled
            and len(reader.data) - start >= PARALLEL_DIGEST_BYTES_MIN):
        wait_for_digest = parallel_digest(reader.data, start)
    digest: int | None = None
    try:
        try:
            tree.bulk_load(_node_records(reader, acl_by_index), with_digest=wait_for_digest is None)
        finally:
            if wait_for_digest is not None:  # always reap the helper, also after an error
                digest = wait_for_digest()
        if wait_for_digest is not None:
            tree.digest = digest if digest is not None else node_digest_sum(reader.data, start)
    except ValueError as exc:
        if isinstance(exc, SnapshotFormatError):
            raise
        raise SnapshotFormatError(f"{exc} (near offset {reader.pos})") from None
    finally:
        if gc_was_enabled:
            gc.enable()


def _read_body(reader: _Reader, tree: DataTree, parallel_digest: ParallelDigest | None = None) -> dict[int, int]:
    sessions: dict[int, int] = {}
    count = reader.int()
    for _ in range(count):
        session_id = reader.long()
        sessions[session_id] = reader.int()
    acl_by_index = _read_acl_cache(reader, tree)
    _read_nodes(reader, tree, acl_by_index, parallel_digest)
    tree.sessions = sessions
    return sessions


def _check_seal(reader: _Reader, what: str) -> None:
    expected = zlib.adler32(memoryview(reader.data)[:reader.pos])
    stored = reader.long()
    reader.raw()  # the "/" after each seal; its value is not checked (SnapStream)
    if stored != expected:
        raise SnapshotFormatError(f"{what}: CRC corruption (stored {stored}, computed {expected})")


def parse_snapshot(data: bytes, *, digest_enabled: bool = True, extended_types_enabled: bool = False,
                   parallel_digest: ParallelDigest | None = None) -> LoadedSnapshot:
    """FileSnap.deserialize for one file's (uncompressed) bytes."""
    reader = _Reader(data, 0)
    reader.need(len(SNAP_FILE_HEADER))
    (magic,) = _INT.unpack_from(data, 0)  # FileSnap checks only the magic
    if magic != SNAP_MAGIC:
        raise SnapshotFormatError(f"mismatching magic header {magic:#x} != {SNAP_MAGIC:#x}")
    reader.pos = len(SNAP_FILE_HEADER)
    tree = DataTree(digest_enabled=digest_enabled, extended_types_enabled=extended_types_enabled)
    sessions = _read_body(reader, tree, parallel_digest)
    _check_seal(reader, "seal after the tree")
    zxid_digest = None
    if digest_enabled and len(data) - reader.pos >= _ZXID_DIGEST.size:
        zxid, digest_version = struct.unpack_from(">qi", data, reader.pos)
        reader.pos += 12
        if digest_version < 2:
            text = reader.raw()
            digest = int(text, 16) if text else 0
        else:
            digest = reader.long()
        zxid_digest = ZxidDigest(zxid, digest_version, digest)
        _check_seal(reader, "seal after the digest")
    return LoadedSnapshot(tree, sessions, zxid_digest)


def snap_stream_end(data: bytes | bytearray, pos: int) -> int:
    """Where the Zab SNAP payload at data[pos:] ends (after "BenWasHere"), found by walking its
    length-prefixed records without building a tree (a learner needs the end before it can
    parse; parsing twice doubled the cost of a big SNAP). SnapshotFormatError when the bytes
    are not a whole payload."""
    size = len(data)
    unpack_int = _INT.unpack_from
    tail = _NODE_TAIL.size
    try:
        (count,) = unpack_int(data, pos)
        if count < 0:
            raise SnapshotFormatError(f"negative session count at offset {pos}")
        pos += 4 + 12 * count
        (acls,) = unpack_int(data, pos)
        pos += 4
        for _ in range(max(acls, 0)):
            (entries,) = unpack_int(data, pos + 8)
            pos += 12
            for _ in range(max(entries, 0)):
                pos += 4  # perms
                for _field in range(2):  # scheme, id
                    (length,) = unpack_int(data, pos)
                    pos += 4 + max(length, 0)
            if pos > size:
                raise SnapshotFormatError("ACL cache runs past the end")
        while True:
            (length,) = unpack_int(data, pos)
            pos += 4
            if length == 1 and data[pos:pos + 1] == b"/":
                pos += 1
                break
            pos += max(length, 0)
            (length,) = unpack_int(data, pos)
            pos += 4 + max(length, 0) + tail
            if pos > size:
                raise SnapshotFormatError("node records run past the end")
    except struct.error:
        raise SnapshotFormatError("SNAP stream ends inside a record") from None
    end = pos + len(SNAP_STREAM_END)
    if bytes(data[pos:end]) != SNAP_STREAM_END:
        raise SnapshotFormatError(f"missing BenWasHere signature at offset {pos}")
    return end


def parse_snap_stream(data: bytes, pos: int, *, digest_enabled: bool = True,
                      extended_types_enabled: bool = False) -> tuple[LoadedSnapshot, int]:
    """A Zab SNAP payload at data[pos:]: the body then "BenWasHere"; returns it and its end."""
    reader = _Reader(data, pos)
    tree = DataTree(digest_enabled=digest_enabled, extended_types_enabled=extended_types_enabled)
    sessions = _read_body(reader, tree)
    if reader.raw() != b"BenWasHere":
        raise SnapshotFormatError(f"missing BenWasHere signature at offset {reader.pos}")
    return LoadedSnapshot(tree, sessions, None), reader.pos
