"""The server's view of storage: restore at start-up, the txn log sink, snapshots, purge.

This adapter is the only place the server touches pyzk.storage (ZooKeeperServer.loadData,
SyncRequestProcessor's snapshot trigger, DatadirCleanupManager).

Rule 1: start-up restores the newest valid snapshot plus the log, then snapshots what it
        loaded when that differs from the newest snapshot (as loadData does): before serving
        for a small tree, in the background for a large one.
Rule 2: the txn log is written and fsynced only on the commit thread; a snapshot is
        serialized in bounded steps on the loop (fuzzy, made consistent by replay) and
        written on its own thread, so it never holds up a commit.
"""

from __future__ import annotations

import asyncio
import logging
import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pyzk.config import ServerConfig
from pyzk.metrics import ServerMetrics
from pyzk.storage.errors import StorageError
from pyzk.storage.files import (
    LocalDisk,
    TxnLogWriter,
    purge,
    restore,
    take_snapshot,
    take_snapshot_async,
)
from pyzk.storage.format import encode_txn_entry
from pyzk.storage.policy import SnapshotScheduler
from pyzk.tree.datatree import DataTree

logger = logging.getLogger(__name__)

# Up to this many znodes the start-up snapshot is written before serving, as loadData does.
STARTUP_SNAPSHOT_SYNC_NODES_MAX = 100_000

__all__ = ["Database", "StorageError", "open_database"]


class Database:
    def __init__(self, config: ServerConfig, tree: DataTree, disk: LocalDisk, log: TxnLogWriter,
                 metrics: ServerMetrics | None = None) -> None:
        self.config = config
        self.metrics = metrics if metrics is not None else ServerMetrics()
        self.tree = tree
        self.disk = disk
        self.log = log
        self.scheduler = SnapshotScheduler(config.snap_count, config.snap_size_limit_kb, random.Random().randrange)
        self._snapshot_due = False
        self._snapshot_task: asyncio.Task[Any] | None = None
        self._snapshot_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="Snapshot Thread")
        self.last_snapshot_zxid = tree.last_processed_zxid
        self.deferred_snapshot = False

    # ---- the commit stage's TxnLogSink ---------------------------------------------------

    def encode_entry(self, prepared: Any) -> bytes:
        # The per-txn TxnDigest trailer needs the tree digest *after* this txn, which prep
        # does not compute; readers treat the trailer as optional (Apache included).
        return encode_txn_entry(prepared.hdr, prepared.txn, None)

    def append(self, entry: bytes, zxid: int) -> None:
        self.log.append(entry, zxid)
        if self.scheduler.on_logged(len(entry)):
            self._snapshot_due = True

    def commit(self) -> None:
        self.log.commit()

    def after_commit(self, count: int, tree: DataTree) -> None:
        """After a batch is durable and applied: start a snapshot if one is due."""
        if not self._snapshot_due or (self._snapshot_task is not None and not self._snapshot_task.done()):
            return
        self._snapshot_due = False
        self.scheduler.snapshot_started()
        self._snapshot_task = asyncio.get_running_loop().create_task(self._snapshot())

    async def _snapshot(self) -> None:
        try:
            name = await take_snapshot_async(
                self.tree, self.disk, self._snapshot_executor,
                digest_enabled=self.config.digest_enabled, txn_log=self.log, metrics=self.metrics,
            )
            logger.info("Snapshot taken: %s", name)
        except StorageError as exc:
            logger.error("Snapshot failed: %s", exc)

    def start_deferred_snapshot(self) -> None:
        """loadData's start-up snapshot, taken in the background for a large tree."""
        if self.deferred_snapshot:
            self.deferred_snapshot = False
            self._snapshot_task = asyncio.get_running_loop().create_task(self._snapshot())

    def purge(self) -> None:
        """autopurge: keep snapRetainCount snapshots and the logs they need."""
        purge(self.config.data_dir, self.config.data_log_dir, self.config.autopurge_snap_retain_count)

    def close(self) -> None:
        self.log.close()
        self._snapshot_executor.shutdown(wait=True)


def open_database(config: ServerConfig) -> Database:
    metrics = ServerMetrics()
    restored = restore(
        config.data_dir,
        config.data_log_dir,
        digest_enabled=config.digest_enabled,
        extended_types_enabled=config.extended_types_enabled,
        snapshot_trust_empty=config.snapshot_trust_empty,
        db_autocreate=config.db_autocreate,
        metrics=metrics,
    )
    if restored.last_zxid < 0:
        raise StorageError(
            f"no database in {config.data_dir} and zookeeper.db.autocreate=false: "
            "a standalone server has no leader to sync from"
        )
    tree = restored.tree
    logger.info(
        "Restored database: snapshot %s, %d txns replayed from %d log files, last zxid 0x%x%s",
        restored.snapshot_name, restored.txns_replayed, len(restored.logs_read), restored.last_zxid,
        f", truncated {restored.truncated}" if restored.truncated else "",
    )
    disk = LocalDisk(config.data_dir, config.data_log_dir, snapshot_compression=config.snapshot_compression_method)
    log = TxnLogWriter(config.data_log_dir, config.pre_alloc_size_kb, config.force_sync, metrics=metrics)
    db = Database(config, tree, disk, log, metrics)
    if restored.created_snapshot or (
        restored.txns_replayed == 0 and not restored.truncated and not restored.killed_sessions
    ):
        return db  # the newest snapshot already is the loaded state
    if tree.node_count <= STARTUP_SNAPSHOT_SYNC_NODES_MAX:
        take_snapshot(tree, disk, digest_enabled=config.digest_enabled, metrics=metrics)
    else:
        # A large tree is snapshotted in the background once serving: crash-safe, since any
        # truncation is already on disk and the old snapshot + logs stay until the next one.
        db.deferred_snapshot = True
    return db
