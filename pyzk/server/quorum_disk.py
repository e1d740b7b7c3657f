"""A quorum member's dataDir: the core's DiskImage loaded at start, Persist effects written back.

Rule 1: the image is the newest valid snapshot's zxid plus every logged txn after it, so the
core can truncate (TRUNC) down to that snapshot; restore() runs first and repairs torn log
tails and replays the newest snapshot and the log, and the core starts from that tree; a
snapshot is read back from its file (`load`, the core's Storage) only when the core must
rebuild its database.
Rule 2: `write` mirrors DiskImage.apply on the real files, in its order: truncate, snapshot,
log entries, epoch files. It is called on the storage thread only, and returns after
everything it wrote is fsynced (forceSync=no skips the log fsync, as ZooKeeper does).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterator, Sequence

from pyzk.config import ServerConfig
from pyzk.metrics import ServerMetrics
from pyzk.quorum.database import DiskImage
from pyzk.quorum.effects import Persist
from pyzk.quorum.zxid import follows
from pyzk.storage.errors import StorageError
from pyzk.storage.files import LocalDisk, TxnLogWriter, read_epoch, restore, write_epoch
from pyzk.storage.format import LogFileReader, entry_zxid
from pyzk.storage.fs import OS_FILE_SYSTEM, FileSystem
from pyzk.storage.layout import (
    ACCEPTED_EPOCH_FILE,
    CURRENT_EPOCH_FILE,
    LOG_PREFIX,
    SNAPSHOT_PREFIX,
    logs_covering,
    sorted_by_zxid,
    zxid_from_name,
)
from pyzk.storage.snapshot_format import SnapshotSerializer, parse_snapshot
from pyzk.tree.datatree import DataTree

logger = logging.getLogger(__name__)


class QuorumDisk:
    def __init__(self, config: ServerConfig, fs: FileSystem = OS_FILE_SYSTEM,
                 metrics: ServerMetrics | None = None) -> None:
        """`fs`: the OS's file system, or the simulator's disk (pyzk/sim/world.py); `metrics`:
        the server's ServerMetrics (start-up restore, fsyncs and snapshots written here)."""
        self.config = config
        self.fs = fs
        self.metrics = metrics if metrics is not None else ServerMetrics()
        self.disk = LocalDisk(config.data_dir, config.data_log_dir,
                              snapshot_compression=config.snapshot_compression_method, fs=fs)
        self.log = self._new_log()
        self._replayed: DataTree | None = None  # start-up's recovered tree, until the core takes it
        # What start-up's recovery repaired: torn log tails cut off, snapshots passed over.
        self.truncated_at_start: list[tuple[str, int]] = []
        self.snapshots_skipped_at_start: list[tuple[str, str]] = []

    def _new_log(self) -> TxnLogWriter:
        return TxnLogWriter(self.config.data_log_dir, self.config.pre_alloc_size_kb, self.config.force_sync,
                            fs=self.fs, metrics=self.metrics)

    # ---- start-up ------------------------------------------------------------------------

    def load_image(self) -> DiskImage:
        config = self.config
        restored = restore(config.data_dir, config.data_log_dir, digest_enabled=config.digest_enabled,
                           extended_types_enabled=config.extended_types_enabled,
                           snapshot_trust_empty=config.snapshot_trust_empty, db_autocreate=True, fs=self.fs,
                           metrics=self.metrics)
        self.truncated_at_start = restored.truncated
        self.snapshots_skipped_at_start = restored.skipped_snapshots
        name = restored.snapshot_name or restored.created_snapshot
        snapshot = None
        snapshot_zxid = 0
        if name is not None:
            snapshot = snapshot_zxid = zxid_from_name(name, SNAPSHOT_PREFIX)
        # Recovery replayed the same snapshot and log: the core starts from that tree rather than
        # parsing and replaying again (the core keeps digests: only when recovery did too), and
        # then needs only the committed-log window of the log: up to snapCount txns read into
        # memory at once would stay in the process's heap (~20 MB per 100,000 setData).
        reuse = config.digest_enabled
        entries, count = self._logged_tail(snapshot_zxid, config.commit_log_count if reuse else None)
        last_zxid = entries[-1][0] if entries else snapshot_zxid
        if reuse and restored.tree.last_processed_zxid == last_zxid:
            self._replayed = restored.tree
        elif reuse:  # not the tree recovery built (it cannot be, but then: the whole log)
            entries, count = self._logged_tail(snapshot_zxid, None)
        accepted = read_epoch(config.data_dir, ACCEPTED_EPOCH_FILE, self.fs)
        current = read_epoch(config.data_dir, CURRENT_EPOCH_FILE, self.fs)
        logger.info("Quorum database: snapshot 0x%x, %d logged txns after it, acceptedEpoch %s, "
                    "currentEpoch %s", snapshot_zxid, count, accepted, current)
        return DiskImage(snapshot, entries, accepted, current)

    def _logged_tail(self, zxid: int, keep: int | None) -> tuple[list[tuple[int, bytes]], int]:
        """The last `keep` (None: all) txns logged after `zxid`, and how many there are."""
        if keep is None:
            found = self.logged_after(zxid)
            return found, len(found)
        tail: deque[tuple[int, bytes]] = deque(maxlen=keep)
        count = 0
        for record in self._records_from(zxid + 1):
            tail.append(record)
            count += 1
        return list(tail), count

    def take_replayed_tree(self) -> DataTree | None:
        """The tree start-up recovery built from the image load_image returned, once."""
        tree, self._replayed = self._replayed, None
        return tree

    # ---- Storage (on the event loop; the core asks only for what is durable) -------------

    def load(self, zxid: int) -> DataTree:
        name = self._snapshot_named(zxid)
        logger.info("Reading snapshot %s to rebuild the database", name)
        return self._parse(name)

    def snapshot_size(self, zxid: int) -> int:
        try:
            return self.fs.size(self.disk.snap_dir / self._snapshot_named(zxid))
        except (StorageError, OSError):
            return 0

    def read_committed(self, from_zxid: int, before_zxid: int, limit_bytes: int) -> list[tuple[int, bytes]] | None:
        """Storage.read_committed: FileTxnLog.read from `from_zxid`, for a DIFF to a learner
        behind the core's log. A concurrent purge or an unreadable file only means None (the
        leader sends a SNAP)."""
        try:
            found = self._read_history(from_zxid, before_zxid, limit_bytes)
            if found is None:
                return None
            logged = {zxid for zxid, _ in found}
            for name in self.disk.snapshot_names():
                at = zxid_from_name(name, SNAPSHOT_PREFIX)
                if from_zxid < at < before_zxid and at not in logged:
                    return None  # a snapshot from a leader's SNAP: the log before it is not history
            return found
        except (StorageError, OSError) as exc:
            logger.info("Txn log from 0x%x not readable for a DIFF (%s); a SNAP is sent instead", from_zxid, exc)
            return None

    def _read_history(self, from_zxid: int, before_zxid: int, limit_bytes: int) -> list[tuple[int, bytes]] | None:
        found: list[tuple[int, bytes]] = []
        size = 0
        for zxid, entry in self._records_from(from_zxid):
            if zxid >= before_zxid:
                break
            if not follows(found[-1][0], zxid) if found else zxid != from_zxid:
                return None  # a gap: the log does not hold one history from from_zxid on
            size += len(entry)
            if limit_bytes > 0 and size > limit_bytes:
                return None
            found.append((zxid, entry))
        # All there: the last one read is the one right before before_zxid.
        return found if found and follows(found[-1][0], before_zxid) else None

    def _snapshot_named(self, zxid: int) -> str:
        for name in self.disk.snapshot_names():
            if zxid_from_name(name, SNAPSHOT_PREFIX) == zxid:
                return name
        raise StorageError(f"snapshot 0x{zxid:x} is not in {self.disk.snap_dir}")

    def _parse(self, name: str) -> DataTree:
        # The core's tree keeps digests whatever digest.enabled says: the core compares them.
        return parse_snapshot(self.disk.read_snapshot(name), digest_enabled=True,
                              extended_types_enabled=self.config.extended_types_enabled).tree

    def logged_after(self, zxid: int, before_zxid: int | None = None) -> list[tuple[int, bytes]]:
        """Every good log record after `zxid`, in log order. Reading stops at `before_zxid`:
        the storage thread may be writing that record and the ones after it."""
        found = []
        for record in self._records_from(zxid + 1):
            if before_zxid is not None and record[0] >= before_zxid:
                break
            found.append(record)
        return found

    def _records_from(self, zxid: int) -> Iterator[tuple[int, bytes]]:
        """(zxid, entry) of every good log record from `zxid` on, in log order, read from the
        files that can hold one (FileTxnLog.getLogFiles: older files are not opened)."""
        for name in logs_covering(self.disk.log_names(), zxid):
            for _offset, entry in LogFileReader(self.disk.read_log(name), self.disk.describe(name)):
                at = entry_zxid(entry)
                if at >= zxid:
                    yield at, entry

    # ---- Persist effects (storage thread) ------------------------------------------------

    def write(self, persists: Sequence[Persist]) -> None:
        for persist in persists:
            if persist.truncate_to_zxid is not None:
                self._truncate(persist.truncate_to_zxid)
            if persist.snapshot is not None:
                self._write_snapshot(*persist.snapshot)
            for zxid, entry in persist.entries:
                self.log.append(entry, zxid)
            if persist.accepted_epoch is not None or persist.current_epoch is not None:
                self.log.commit()  # the epoch follows the txns it was persisted with
                if persist.accepted_epoch is not None:
                    write_epoch(self.config.data_dir, ACCEPTED_EPOCH_FILE, persist.accepted_epoch, self.fs)
                if persist.current_epoch is not None:
                    write_epoch(self.config.data_dir, CURRENT_EPOCH_FILE, persist.current_epoch, self.fs)
        self.log.commit()

    def _truncate(self, zxid: int) -> None:
        """Learner TRUNC: drop every logged txn above zxid (FileTxnLog.truncate)."""
        self.log.close()
        for name in sorted_by_zxid(self.disk.log_names(), LOG_PREFIX):
            if zxid_from_name(name, LOG_PREFIX) > zxid:
                logger.info("TRUNC to 0x%x: deleting %s", zxid, name)
                self.disk.delete_log(name)
                continue
            reader = LogFileReader(self.disk.read_log(name), self.disk.describe(name))
            for offset, entry in reader:
                if entry_zxid(entry) > zxid:
                    logger.info("TRUNC to 0x%x: cutting %s at offset %d", zxid, name, offset)
                    self.disk.truncate_log(name, offset)
                    break
        self.log = self._new_log()

    def _write_snapshot(self, zxid: int, serializer: SnapshotSerializer) -> None:
        """snapshottime: sealing and writing the file (the storage thread records it); the
        core's serialization steps before it are spread over loop turns and not counted."""
        started_ms = time.monotonic() * 1000
        self.log.roll()  # txns after the snapshot start a new log file, as after any snapshot
        self.disk.write_snapshot(zxid, serializer.file_chunks(digest_enabled=self.config.digest_enabled))
        self.metrics.snapshottime.add(time.monotonic() * 1000 - started_ms)

    def close(self) -> None:
        self.log.close()

