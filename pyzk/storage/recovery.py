"""Recovery (FileTxnSnapLog.restore): newest valid snapshot, then the txn log replayed on it.

Pure over a `RecoveryDisk` (files.LocalDisk on a real data directory, or a simulated disk).

Rule 1: snapshots are tried newest first (up to 100 that pass the quick check); a bad seal or
        body falls back to the next older one. Snapshots exist but none is valid: refuse.
Rule 2: replay starts at the snapshot's zxid + 1 and applies every later txn; NONODE and
        NODEEXISTS are expected (the snapshot is fuzzy) and ignored, as DataTree.apply does.
Rule 3: a torn tail (EOF inside a record, missing 'B') ends that file: it is truncated at the
        last good record with one warning naming file and offset. A CRC mismatch or an
        unreasonable length inside a record refuses to start (StorageError, file and offset),
        as Apache ZooKeeper 3.8 does.
Rule 4: no snapshot but txn logs: refuse unless snapshot_trust_empty. Nothing at all: with
        db_autocreate (or the `initialize` marker) an empty tree is written as snapshot.0 and
        the zxid is 0; otherwise the zxid is -1 (wait for a leader).
Rule 5: sessions that own ephemerals but are not in the session table are killed, as
        ZooKeeperServer.loadData does; the caller then takes a snapshot of the loaded state.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from jute.primitives import JuteError
from pyzk.storage.errors import SnapshotFormatError, StorageError
from pyzk.storage.format import (
    LOG_FILE_HEADER,
    LOG_FILE_HEADER_BYTES,
    LogFileReader,
    decode_txn_entry,
    entry_zxid,
)
from pyzk.storage.layout import (
    LOG_PREFIX,
    SNAPSHOT_PREFIX,
    logs_covering,
    sorted_by_zxid,
    zxid_from_name,
)
from pyzk.storage.snapshot_format import SnapshotSerializer, ZxidDigest, parse_snapshot
from pyzk.tree.datatree import DIGEST_VERSION, DataTree

logger = logging.getLogger(__name__)

SNAPSHOTS_TRIED_MAX = 100  # FileSnap.deserialize: findNValidSnapshots(100)
EMPTY_SNAPSHOT_WARNING = "No snapshot found, but there are log entries. "


class RecoveryDisk(Protocol):
    """What recovery needs from a data directory (names are file names, no folders)."""

    def describe(self, name: str) -> str: ...
    def snapshot_names(self) -> list[str]: ...
    def log_names(self) -> list[str]: ...
    def snapshot_looks_valid(self, name: str) -> bool: ...
    def read_snapshot(self, name: str) -> bytes: ...
    def read_log(self, name: str) -> bytes: ...
    def truncate_log(self, name: str, size: int) -> None: ...
    def delete_log(self, name: str) -> None: ...
    def take_initialize_marker(self) -> bool: ...
    def write_snapshot(self, zxid: int, chunks: list[bytes]) -> str: ...
    def parallel_digest(self, data: bytes, pos: int) -> Callable[[], int | None]: ...


@dataclass
class RestoredDatabase:
    """What restore found and did; `tree` holds the nodes and the session table."""

    tree: DataTree
    last_zxid: int  # -1: empty and not trusted, wait to be synced by a leader
    snapshot_name: str | None = None
    skipped_snapshots: list[tuple[str, str]] = field(default_factory=list)  # (name, why)
    logs_read: list[str] = field(default_factory=list)
    txns_replayed: int = 0
    truncated: list[tuple[str, int]] = field(default_factory=list)  # (log name, new size)
    digest_mismatches: int = 0
    killed_sessions: list[int] = field(default_factory=list)
    created_snapshot: str | None = None
    # Start-up metrics (FileTxnSnapLog.restore's): ms reading the snapshot, ms replaying the
    # log (None when no txn followed the snapshot: Apache records nothing then).
    snapshot_load_ms: float = 0.0
    txns_load_ms: float | None = None


class _DigestCheck:
    """DataTree.compareSnapshotDigests / compareDigest during replay: mismatches only count."""

    def __init__(self, tree: DataTree, from_snapshot: ZxidDigest | None, snapshot_zxid: int) -> None:
        self.tree = tree
        self.mismatches = 0
        # A digest recorded before the snapshot started (or none: zxid 0) is not comparable.
        self.pending = from_snapshot if from_snapshot and from_snapshot.zxid >= max(snapshot_zxid, 1) else None
        if self.pending is not None and self.pending.zxid == snapshot_zxid:
            self.after_txn(snapshot_zxid, None)

    def _mismatch(self, zxid: int, expected: int) -> None:
        self.mismatches += 1
        if self.mismatches == 1:
            logger.warning("Digests are not matching at zxid 0x%x: expected %d, tree has %d",
                           zxid, expected, self.tree.digest)

    def after_txn(self, zxid: int, txn_digest: tuple[int, int] | None) -> None:
        if not self.tree.digest_enabled:
            return
        pending = self.pending
        if pending is not None:
            if zxid == pending.zxid:
                if pending.digest_version == DIGEST_VERSION and self.tree.digest != pending.digest:
                    self._mismatch(zxid, pending.digest)
                self.pending = None
            return  # still fuzzy: txn digests are not comparable yet
        if txn_digest is not None and txn_digest[0] == DIGEST_VERSION and txn_digest[1] != self.tree.digest:
            self._mismatch(zxid, txn_digest[1])


def _load_newest_snapshot(disk: RecoveryDisk, result: RestoredDatabase, *, digest_enabled: bool,
                          extended_types_enabled: bool) -> ZxidDigest | None:
    names = sorted_by_zxid(disk.snapshot_names(), SNAPSHOT_PREFIX, newest_first=True)
    candidates = [n for n in names if disk.snapshot_looks_valid(n)][:SNAPSHOTS_TRIED_MAX]
    for name in names:
        if name not in candidates:
            result.skipped_snapshots.append((name, "fails the quick validity check"))
    for name in candidates:
        try:
            loaded = parse_snapshot(disk.read_snapshot(name), digest_enabled=digest_enabled,
                                    parallel_digest=disk.parallel_digest,
                                    extended_types_enabled=extended_types_enabled)
        except (SnapshotFormatError, OSError, EOFError) as exc:
            logger.warning("problem reading snapshot %s: %s; trying an older one", disk.describe(name), exc)
            result.skipped_snapshots.append((name, str(exc)))
            continue
        logger.info("Read snapshot %s", disk.describe(name))
        result.snapshot_name = name
        result.tree = loaded.tree
        result.last_zxid = zxid_from_name(name, SNAPSHOT_PREFIX)
        loaded.tree.last_processed_zxid = result.last_zxid
        return loaded.zxid_digest
    if candidates:
        reasons = "; ".join(f"{n}: {why}" for n, why in result.skipped_snapshots)
        raise StorageError(f"Not able to find valid snapshots ({reasons})")
    return None


def _replay_logs(disk: RecoveryDisk, result: RestoredDatabase, digests: _DigestCheck) -> None:
    """FileTxnSnapLog.fastForwardFromEdits from result.last_zxid + 1."""
    tree = result.tree
    start_zxid = result.last_zxid + 1
    all_logs = sorted_by_zxid(disk.log_names(), LOG_PREFIX)
    for name in logs_covering(all_logs, start_zxid):
        data = disk.read_log(name)
        result.logs_read.append(name)
        if len(data) < LOG_FILE_HEADER_BYTES and LOG_FILE_HEADER.startswith(data) and name == all_logs[-1]:
            # Created but never written (a crash right after opening it): 3.9 deletes it too.
            logger.warning("txn log %s holds %d bytes, less than its header; deleting it",
                           disk.describe(name), len(data))
            disk.delete_log(name)
            result.truncated.append((name, 0))
            continue
        reader = LogFileReader(data, disk.describe(name))
        for offset, entry in reader:
            if 0 <= entry_zxid(entry) < start_zxid:
                continue  # already in the snapshot: no need to decode it
            try:
                hdr, txn, digest = decode_txn_entry(entry)
            except JuteError as exc:
                raise StorageError(f"txn log {disk.describe(name)}: unreadable txn in the record at "
                                   f"offset {offset}: {exc}") from None
            if hdr.zxid < start_zxid:
                continue
            if hdr.zxid < result.last_zxid:
                logger.error("0x%x(highestZxid) > 0x%x(next log) for type %d",
                             result.last_zxid, hdr.zxid, hdr.type)
            else:
                result.last_zxid = hdr.zxid
            tree.apply(hdr, txn)
            result.txns_replayed += 1
            digests.after_txn(hdr.zxid, (digest.version, digest.treeDigest) if digest else None)
        if reader.torn:
            logger.warning("txn log %s: torn tail after the last good record; truncated the file "
                           "at offset %d (was %d bytes)", disk.describe(name), reader.end_offset, len(data))
            disk.truncate_log(name, reader.end_offset)
            result.truncated.append((name, reader.end_offset))
    if digests.pending is not None:
        logger.warning("Highest txn zxid 0x%x is not covering the snapshot digest zxid 0x%x, "
                       "which might lead to inconsistent state", result.last_zxid, digests.pending.zxid)


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Restore only allocates: a full collection over a million new nodes would find nothing."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _monotonic_ms() -> float:
    return time.monotonic() * 1000


def recover(disk: RecoveryDisk, *, digest_enabled: bool = True, extended_types_enabled: bool = False,
            snapshot_trust_empty: bool = False, db_autocreate: bool = True,
            clock_ms: Callable[[], float] = _monotonic_ms) -> RestoredDatabase:
    """Rebuild the database from a data directory (see the module rules)."""
    with _cyclic_gc_paused():
        return _recover(disk, digest_enabled=digest_enabled, extended_types_enabled=extended_types_enabled,
                        snapshot_trust_empty=snapshot_trust_empty, db_autocreate=db_autocreate,
                        clock_ms=clock_ms)


def _recover(disk: RecoveryDisk, *, digest_enabled: bool, extended_types_enabled: bool,
             snapshot_trust_empty: bool, db_autocreate: bool, clock_ms: Callable[[], float]) -> RestoredDatabase:
    empty = DataTree(digest_enabled=digest_enabled, extended_types_enabled=extended_types_enabled)
    result = RestoredDatabase(tree=empty, last_zxid=0)
    started_ms = clock_ms()
    snapshot_digest = _load_newest_snapshot(disk, result, digest_enabled=digest_enabled,
                                            extended_types_enabled=extended_types_enabled)
    result.snapshot_load_ms = clock_ms() - started_ms
    trust_empty_db = disk.take_initialize_marker() or db_autocreate
    if result.snapshot_name is None:
        if disk.log_names():
            if not snapshot_trust_empty:
                raise StorageError(EMPTY_SNAPSHOT_WARNING + "Something is broken! (set "
                                   "zookeeper.snapshot.trust.empty=true only when upgrading)")
            logger.warning("%sThis should only be allowed during upgrading.", EMPTY_SNAPSHOT_WARNING)
        elif trust_empty_db:
            serializer = SnapshotSerializer(result.tree)
            serializer.step(1 << 30)
            result.created_snapshot = disk.write_snapshot(0, serializer.file_chunks(digest_enabled=digest_enabled))
            return result
        else:
            logger.warning("Unexpected empty data tree, setting zxid to -1")
            result.tree.last_processed_zxid = -1
            result.last_zxid = -1
            return result
    digests = _DigestCheck(result.tree, snapshot_digest, result.last_zxid)
    started_ms = clock_ms()
    _replay_logs(disk, result, digests)
    if result.txns_replayed:
        result.txns_load_ms = clock_ms() - started_ms
    result.digest_mismatches = digests.mismatches
    tree = result.tree
    tree.last_processed_zxid = result.last_zxid
    for session_id in [s for s in tree.ephemerals if s not in tree.sessions]:
        tree.kill_session(session_id, result.last_zxid, None, [])
        result.killed_sessions.append(session_id)
    if result.killed_sessions:
        logger.info("Killed %d sessions that own ephemerals but have no session entry",
                    len(result.killed_sessions))
    return result
