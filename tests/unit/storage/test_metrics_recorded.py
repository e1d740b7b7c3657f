"""Storage records Apache's fsynctime, snapshottime, dbinittime and startup_* (ServerMetrics)."""

from __future__ import annotations

from pathlib import Path

from jute.codes import OpCode
from jute.data import ACL, Id
from jute.txn import CreateTxn, TxnHeader
from pyzk.metrics import ServerMetrics
from pyzk.storage.files import LocalDisk, TxnLogWriter, restore, take_snapshot
from pyzk.storage.format import encode_txn_entry

OPEN_ACL = [ACL(31, Id("world", "anyone"))]


def entry(zxid: int) -> bytes:
    return encode_txn_entry(TxnHeader(1, 0, zxid, 0, OpCode.CREATE),
                            CreateTxn(f"/n{zxid}", b"", OPEN_ACL, False, 1), None)


def test_one_fsynctime_sample_per_fsync_not_per_txn(tmp_path: Path) -> None:
    metrics = ServerMetrics()
    clock = iter(range(0, 1000, 3))  # every fsync takes 3 ms on this clock
    log = TxnLogWriter(tmp_path, 64, metrics=metrics, clock_ms=lambda: float(next(clock)))
    for zxid in (1, 2, 3):
        log.append(entry(zxid), zxid)
    log.commit()  # one batch, one fsync
    log.append(entry(4), 4)
    log.commit()
    log.close()
    assert (metrics.fsynctime.count, metrics.fsynctime.total) == (2, 6)


def test_force_sync_off_records_no_fsync(tmp_path: Path) -> None:
    metrics = ServerMetrics()
    log = TxnLogWriter(tmp_path, 64, force_sync=False, metrics=metrics)
    log.append(entry(1), 1)
    log.commit()
    log.close()
    assert metrics.fsynctime.count == 0


def test_restore_and_snapshot_record_their_times(tmp_path: Path) -> None:
    metrics = ServerMetrics()
    restored = restore(tmp_path, metrics=metrics)  # empty: the initial snapshot, no txns
    assert (metrics.dbinittime.count, metrics.startup_snap_load_time.count) == (1, 1)
    assert metrics.startup_txns_loaded.count == 0
    log = TxnLogWriter(tmp_path)
    for zxid in (1, 2, 3):
        log.append(entry(zxid), zxid)
    log.close()
    again = ServerMetrics()
    restored = restore(tmp_path, metrics=again)
    assert restored.txns_replayed == 3
    assert (again.startup_txns_loaded.count, again.startup_txns_loaded.total) == (1, 3)
    assert again.startup_txns_load_time.count == again.dbinittime.count == 1
    take_snapshot(restored.tree, LocalDisk(tmp_path), metrics=again)
    assert again.snapshottime.count == 1
