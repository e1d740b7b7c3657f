"""Recovery and the writers on a temporary data directory (files.restore over recovery.recover)."""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path, PurePath

import pytest

from jute.codes import OpCode
from jute.data import OPEN_ACL_UNSAFE
from jute.txn import CreateSessionTxn, CreateTxn, SetDataTxn, TxnDigest, TxnHeader
from pyzk.storage.errors import StorageError
from pyzk.storage.files import (
    LocalDisk,
    TxnLogWriter,
    purge,
    read_epoch,
    restore,
    take_snapshot,
    write_epoch,
)
from pyzk.storage.format import LogFileReader, encode_txn_entry
from pyzk.storage.fs import OsFileSystem
from pyzk.storage.policy import SnapshotScheduler

OPEN = list(OPEN_ACL_UNSAFE)
SESSION = 0x55


class Writer:
    """Applies txns to the restored tree and logs them, as the server's commit stage does."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.tree = restore(data_dir).tree
        self.zxid = self.tree.last_processed_zxid
        self.log = TxnLogWriter(data_dir, pre_alloc_size_kb=16, force_sync=False)

    def txn(self, op: int, txn: object, session: int = SESSION) -> None:
        self.zxid += 1
        hdr = TxnHeader(session, self.zxid, self.zxid, 1000 + self.zxid, op)
        self.tree.apply(hdr, txn)
        self.log.append(encode_txn_entry(hdr, txn, TxnDigest(2, self.tree.digest)), self.zxid)

    def creates(self, count: int, prefix: str = "/n") -> None:
        for i in range(count):
            self.txn(OpCode.CREATE, CreateTxn(f"{prefix}{self.zxid}_{i}", b"d", OPEN, False, -1))

    def snapshot(self) -> str:
        self.log.commit()
        self.log.roll()
        return take_snapshot(self.tree, LocalDisk(self.data_dir))


def view(tree) -> dict[str, tuple[object, ...]]:  # type: ignore[no-untyped-def]
    return {p: (n.data, n.czxid, n.mzxid, n.version, n.cversion, n.pzxid, n.ephemeral_owner) for p, n in tree.nodes.items()}


def v2(data_dir: Path) -> Path:
    return data_dir / "version-2"


def test_nothing_at_all_creates_snapshot_0(tmp_path: Path) -> None:
    restored = restore(tmp_path / "fresh")  # the folder and version-2 are created
    assert restored.last_zxid == 0 and restored.created_snapshot == "snapshot.0"
    assert os.listdir(v2(tmp_path / "fresh")) == ["snapshot.0"]


def test_no_autocreate_means_zxid_minus_one_unless_initialize(tmp_path: Path) -> None:
    assert restore(tmp_path, db_autocreate=False).last_zxid == -1
    (tmp_path / "initialize").write_text("")
    assert restore(tmp_path, db_autocreate=False).last_zxid == 0
    assert not (tmp_path / "initialize").exists()


def test_round_trip_with_rolls_snapshots_and_sessions(tmp_path: Path) -> None:
    w = Writer(tmp_path)
    w.txn(OpCode.CREATE_SESSION, CreateSessionTxn(30000))
    w.creates(5)
    w.txn(OpCode.CREATE, CreateTxn("/eph", b"", OPEN, True, -1))
    w.snapshot()
    w.creates(5)
    w.txn(OpCode.SET_DATA, SetDataTxn("/eph", b"changed", 1))
    w.log.close()
    restored = restore(tmp_path)
    assert restored.snapshot_name == "snapshot.7" and restored.last_zxid == w.zxid
    assert restored.txns_replayed == 6 and restored.digest_mismatches == 0
    assert view(restored.tree) == view(w.tree) and restored.tree.sessions == {SESSION: 30000}
    assert restored.tree.digest == w.tree.digest


def test_preallocation_and_one_file_per_start(tmp_path: Path) -> None:
    w = Writer(tmp_path)
    w.creates(3)
    w.log.close()
    assert os.path.getsize(v2(tmp_path) / "log.1") == 16 + 16 * 1024
    w2 = Writer(tmp_path)
    w2.creates(1)
    w2.log.close()
    assert sorted(n for n in os.listdir(v2(tmp_path)) if n.startswith("log")) == ["log.1", "log.4"]


def test_a_preallocated_log_is_read_up_to_its_zero_fill_only(tmp_path: Path) -> None:
    """Start-up read every 64 MB preallocated log whole (2.8 s for 11 logs of 65 txns); the
    sparse fill after the records is not read now, and the records are all there."""
    w = Writer(tmp_path)
    w.log.pre_alloc_bytes = 4 * 1024 * 1024
    w.creates(3)
    w.log.close()
    path = v2(tmp_path) / "log.1"
    assert os.path.getsize(path) > 4 * 1024 * 1024
    if os.stat(path).st_blocks * 512 >= os.path.getsize(path):
        pytest.skip("this filesystem does not keep the preallocation sparse")
    data = LocalDisk(tmp_path).read_log("log.1")
    assert len(data) < 64 * 1024 and data == path.read_bytes()[:len(data)]
    assert len(list(LogFileReader(data, "log.1"))) == 3
    assert restore(tmp_path).last_zxid == 3


def test_torn_tail_is_truncated_with_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    w = Writer(tmp_path)
    w.creates(4)
    w.log.close()
    log = v2(tmp_path) / "log.1"
    data = log.read_bytes().rstrip(b"\x00")
    log.write_bytes(data[:-20] + b"\x00" * 100)  # the last record torn mid-entry
    with caplog.at_level(logging.WARNING):
        restored = restore(tmp_path)
    assert restored.last_zxid == 3
    (name, offset), = restored.truncated
    assert name == "log.1" and os.path.getsize(log) == offset
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(log) in warnings[0] and str(offset) in warnings[0]
    assert restore(tmp_path).truncated == []  # nothing left to repair


def test_crc_mismatch_refuses_to_start(tmp_path: Path) -> None:
    w = Writer(tmp_path)
    w.creates(3)
    w.log.close()
    log = v2(tmp_path) / "log.1"
    data = bytearray(log.read_bytes())
    data[16 + 12 + 40] ^= 0xFF
    log.write_bytes(bytes(data))
    with pytest.raises(StorageError, match=r"log\.1: CRC check failed for the record at offset 16$"):
        restore(tmp_path)


def test_bad_newest_snapshot_falls_back_to_the_older_one(tmp_path: Path) -> None:
    w = Writer(tmp_path)
    w.creates(3)
    newest = w.snapshot()
    w.creates(2)
    w.log.close()
    snap = v2(tmp_path) / newest
    data = bytearray(snap.read_bytes())
    data[40] ^= 0x01
    snap.write_bytes(bytes(data))
    restored = restore(tmp_path)
    assert restored.snapshot_name == "snapshot.0" and restored.skipped_snapshots[0][0] == newest
    assert view(restored.tree) == view(w.tree)
    (v2(tmp_path) / "snapshot.0").write_bytes(bytes(data))
    with pytest.raises(StorageError, match="Not able to find valid snapshots"):
        restore(tmp_path)


def test_logs_without_snapshot_refuse_unless_trusted(tmp_path: Path) -> None:
    w = Writer(tmp_path)
    w.creates(3)
    w.log.close()
    (v2(tmp_path) / "snapshot.0").unlink()
    with pytest.raises(StorageError, match="No snapshot found, but there are log entries"):
        restore(tmp_path)
    assert view(restore(tmp_path, snapshot_trust_empty=True).tree) == view(w.tree)


def test_empty_newest_log_is_deleted(tmp_path: Path) -> None:
    w = Writer(tmp_path)
    w.creates(2)
    w.log.close()
    (v2(tmp_path) / "log.3").write_bytes(b"")
    restored = restore(tmp_path)
    assert restored.last_zxid == 2 and not (v2(tmp_path) / "log.3").exists()


def test_unusable_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(StorageError, match="cannot create"):
        restore(tmp_path / "file")


def test_orphan_ephemerals_are_killed(tmp_path: Path) -> None:
    w = Writer(tmp_path)
    w.txn(OpCode.CREATE, CreateTxn("/orphan", b"", OPEN, True, -1), session=0x99)
    w.log.close()
    restored = restore(tmp_path)
    assert restored.killed_sessions == [0x99] and "/orphan" not in restored.tree.nodes


def test_purge_keeps_retained_snapshots_and_their_logs(tmp_path: Path) -> None:
    w = Writer(tmp_path)
    for _ in range(5):
        w.creates(2)
        w.snapshot()
    w.creates(1)
    w.log.close()
    removed = sorted(p.name for p in purge(tmp_path, None, 3))
    assert removed == ["log.1", "log.3", "snapshot.0", "snapshot.2", "snapshot.4"]
    assert view(restore(tmp_path).tree) == view(w.tree)
    with pytest.raises(ValueError):
        purge(tmp_path, None, 2)


def test_epoch_files(tmp_path: Path) -> None:
    assert read_epoch(tmp_path, "currentEpoch") is None
    write_epoch(tmp_path, "currentEpoch", 1)
    assert (v2(tmp_path) / "currentEpoch").read_bytes() == b"1"
    assert read_epoch(tmp_path, "currentEpoch") == 1
    assert not list(v2(tmp_path).glob("*.tmp"))


def test_snapshot_scheduler_randomizes_in_the_upper_half() -> None:
    for seed in range(20):
        scheduler = SnapshotScheduler(100, 0, random.Random(seed).randrange)
        count = next(i for i in range(1, 1000) if scheduler.on_logged(10))
        assert 51 < count + 1 <= 101
        scheduler.snapshot_started()
        assert scheduler.txns_logged == 0


def test_own_snapshots_are_not_fsynced_but_received_ones_are(tmp_path: Path) -> None:
    # ZooKeeper's syncSnap: a server's own snapshot is written without fsync (an fsync of a big
    # snapshot stalls the txn log's fsync behind it); a snapshot a learner receives is synced.
    writer = Writer(tmp_path)
    writer.creates(3)
    writer.log.commit()
    synced: list[str] = []

    class RecordingFileSystem(OsFileSystem):
        def fdatasync(self, handle: int) -> None:
            synced.append("file")
            super().fdatasync(handle)

        def fsync_dir(self, folder: PurePath) -> None:
            synced.append("folder")
            super().fsync_dir(folder)

    disk = LocalDisk(tmp_path, fs=RecordingFileSystem())
    name = take_snapshot(writer.tree, disk)
    assert synced == []
    assert (tmp_path / "version-2" / name).exists()
    assert not any(p.name.endswith(".tmp") for p in (tmp_path / "version-2").iterdir())
    disk.write_snapshot(writer.zxid + 1, [b"received"], fsync=True)
    assert synced == ["file", "folder"]
