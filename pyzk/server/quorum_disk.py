"""A quorum member's dataDir: the core's DiskImage loaded at start, Persist effects written back.

Rule 1: the image is the newest valid snapshot plus every logged txn after it, so the core can
truncate (TRUNC) down to that snapshot; restore() runs first and repairs torn log tails.
Rule 2: `write` mirrors DiskImage.apply on the real files, in its order: truncate, snapshot,
log entries, epoch files. It is called on the storage thread only, and returns after
everything it wrote is fsynced (forceSync=no skips the log fsync, as ZooKeeper does).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pyzk.config import ServerConfig
from pyzk.quorum.database import DiskImage
from pyzk.quorum.effects import Persist
from pyzk.storage.files import LocalDisk, TxnLogWriter, read_epoch, restore, write_epoch
from pyzk.storage.format import LogFileReader, entry_zxid
from pyzk.storage.layout import (
    ACCEPTED_EPOCH_FILE,
    CURRENT_EPOCH_FILE,
    LOG_PREFIX,
    SNAPSHOT_PREFIX,
    sorted_by_zxid,
    zxid_from_name,
)
from pyzk.storage.snapshot_format import (
    SnapshotSerializer,
    parse_snap_stream,
    parse_snapshot,
)
from pyzk.tree.datatree import DataTree

logger = logging.getLogger(__name__)


class QuorumDisk:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.disk = LocalDisk(config.data_dir, config.data_log_dir,
                              snapshot_compression=config.snapshot_compression_method)
        self.log = self._new_log()

    def _new_log(self) -> TxnLogWriter:
        return TxnLogWriter(self.config.data_log_dir, self.config.pre_alloc_size_kb, self.config.force_sync)

    # ---- start-up ------------------------------------------------------------------------

    def load_image(self) -> DiskImage:
        config = self.config
        restored = restore(config.data_dir, config.data_log_dir, digest_enabled=config.digest_enabled,
                           extended_types_enabled=config.extended_types_enabled,
                           snapshot_trust_empty=config.snapshot_trust_empty, db_autocreate=True)
        name = restored.snapshot_name or restored.created_snapshot
        snapshot = None
        snapshot_zxid = 0
        if name is not None:
            snapshot_zxid = zxid_from_name(name, SNAPSHOT_PREFIX)
            tree = parse_snapshot(self.disk.read_snapshot(name), digest_enabled=config.digest_enabled,
                                  extended_types_enabled=config.extended_types_enabled).tree
            tree.last_processed_zxid = snapshot_zxid
            snapshot = (snapshot_zxid, _snap_stream(tree))
        entries = [(zxid, entry) for zxid, entry, _, _ in self._logged() if zxid > snapshot_zxid]
        accepted = read_epoch(config.data_dir, ACCEPTED_EPOCH_FILE)
        current = read_epoch(config.data_dir, CURRENT_EPOCH_FILE)
        logger.info("Quorum database: snapshot 0x%x, %d logged txns after it, acceptedEpoch %s, "
                    "currentEpoch %s", snapshot_zxid, len(entries), accepted, current)
        return DiskImage(snapshot, entries, accepted, current)

    def _logged(self) -> list[tuple[int, bytes, str, int]]:
        """Every good log record: (zxid, entry, file name, record offset), in log order."""
        found = []
        for name in sorted_by_zxid(self.disk.log_names(), LOG_PREFIX):
            reader = LogFileReader(self.disk.read_log(name), self.disk.describe(name))
            for offset, entry in reader:
                found.append((entry_zxid(entry), entry, name, offset))
        return found

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
                    write_epoch(self.config.data_dir, ACCEPTED_EPOCH_FILE, persist.accepted_epoch)
                if persist.current_epoch is not None:
                    write_epoch(self.config.data_dir, CURRENT_EPOCH_FILE, persist.current_epoch)
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

    def _write_snapshot(self, zxid: int, stream: bytes) -> None:
        tree = parse_snap_stream(stream, 0, digest_enabled=self.config.digest_enabled,
                                 extended_types_enabled=self.config.extended_types_enabled)[0].tree
        tree.last_processed_zxid = zxid
        serializer = SnapshotSerializer(tree)
        serializer.step(1 << 62)
        self.log.roll()  # txns after the snapshot start a new log file, as after any snapshot
        self.disk.write_snapshot(zxid, serializer.file_chunks(digest_enabled=self.config.digest_enabled))

    def close(self) -> None:
        self.log.close()


def _snap_stream(tree: DataTree) -> bytes:
    serializer = SnapshotSerializer(tree)
    serializer.step(1 << 62)
    return serializer.snap_stream()
