"""MemoryFileSystem: the simulator's byte-level disk, and the real storage code running on it."""

from __future__ import annotations

import random
from pathlib import PurePath

import pytest

from jute.codes import OpCode
from jute.data import OPEN_ACL_UNSAFE
from jute.txn import CreateTxn, TxnDigest, TxnHeader
from pyzk.storage.files import LocalDisk, TxnLogWriter, read_epoch, restore, write_epoch
from pyzk.storage.format import encode_txn_entry
from pyzk.storage.fs import MemoryFileSystem, PowerCut
from pyzk.tree.datatree import DataTree

ROOT = PurePath("/d")
LOG_DIR = ROOT / "version-2"


def write_file(fs: MemoryFileSystem, path: PurePath, data: bytes, *, sync: bool) -> int:
    handle = fs.open_new(path)
    fs.pwrite(handle, data, 0)
    if sync:
        fs.fdatasync(handle)
    return handle


def test_synced_data_and_names_survive_a_power_cut() -> None:
    fs = MemoryFileSystem()
    fs.make_dirs(ROOT)
    write_file(fs, ROOT / "a", b"hello", sync=True)
    fs.fsync_dir(ROOT)
    fs.power_cut(random.Random(1))
    assert fs.read(ROOT / "a") == b"hello"


@pytest.mark.parametrize("seed", range(20))
def test_unsynced_bytes_survive_only_as_a_prefix_over_the_old_content(seed: int) -> None:
    fs = MemoryFileSystem()
    fs.make_dirs(ROOT)
    handle = write_file(fs, ROOT / "log", b"H" + bytes(15), sync=True)  # preallocated zeros
    fs.fsync_dir(ROOT)
    fs.pwrite(handle, b"abcdefgh", 4)
    fs.pwrite(handle, b"XY", 20)  # past the end: extends the file
    fs.power_cut(random.Random(seed))
    after = fs.read(ROOT / "log")
    assert after[:4] == b"H\0\0\0"
    written = b"abcdefgh" + bytes(8) + b"XY"
    cut = next((i for i in range(len(written), -1, -1) if after[4:4 + i] == written[:i]), 0)
    # whatever survived of the write is a prefix; the rest is the durable content (zeros, or
    # nothing past the old end)
    assert after[4 + cut:] == bytes(max(0, 16 - 4 - cut))


def test_names_changed_after_the_last_folder_fsync_survive_as_a_prefix_in_order() -> None:
    outcomes = set()
    for seed in range(40):
        fs = MemoryFileSystem()
        fs.make_dirs(ROOT)
        fs.close(write_file(fs, ROOT / "a.tmp", b"1", sync=True))
        fs.replace(ROOT / "a.tmp", ROOT / "a")
        fs.close(write_file(fs, ROOT / "b", b"2", sync=True))
        fs.power_cut(random.Random(seed))
        outcomes.add(tuple(fs.listdir(ROOT)))
    # in order: "b" never without the rename before it
    assert outcomes == {(), ("a.tmp",), ("a",), ("a", "b")}


def test_power_cut_interrupts_a_write_between_two_calls() -> None:
    fs = MemoryFileSystem()
    fs.make_dirs(ROOT)
    fs.ops_left = 2
    handle = fs.open_new(ROOT / "x")
    fs.pwrite(handle, b"abc", 0)
    with pytest.raises(PowerCut):
        fs.fdatasync(handle)


def _logged_txns(count: int, fs: MemoryFileSystem) -> TxnLogWriter:
    log = TxnLogWriter(ROOT, pre_alloc_size_kb=1, force_sync=True, fs=fs)
    tree = DataTree()
    for zxid in range(1, count + 1):
        hdr = TxnHeader(0x55, zxid, zxid, 1000, OpCode.CREATE)
        txn = CreateTxn(f"/n{zxid}", b"data" * 10, list(OPEN_ACL_UNSAFE), False, -1)
        tree.apply(hdr, txn)
        log.append(encode_txn_entry(hdr, txn, TxnDigest(2, tree.digest)), zxid)
        if zxid % 5 == 0:
            log.commit()
    return log


@pytest.mark.parametrize("seed", range(30))
def test_recovery_on_the_simulated_disk_keeps_every_synced_txn_and_truncates_a_torn_tail(seed: int) -> None:
    """The real writer and recovery: a power cut in the middle of a commit loses at most the
    txns of that commit, and the torn record is cut off (Apache: 'Last transaction was partial')."""
    fs = MemoryFileSystem()
    restore(ROOT, fs=fs)  # snapshot.0
    log = _logged_txns(20, fs)  # four commits of five: 20 txns durable
    rng = random.Random(seed)
    for zxid in range(21, 26):
        hdr = TxnHeader(0x55, zxid, zxid, 1000, OpCode.CREATE)
        log.append(encode_txn_entry(hdr, CreateTxn(f"/n{zxid}", b"x" * 300, list(OPEN_ACL_UNSAFE), False, -1),
                                    None), zxid)
    fs.ops_left = rng.randint(0, 3)  # a commit makes 2 or 3 calls: some cuts come after it
    try:
        log.commit()
    except PowerCut:
        pass
    fs.power_cut(rng)
    restored = restore(ROOT, fs=fs)
    assert 20 <= restored.last_zxid <= 25
    assert all(f"/n{z}" in restored.tree.nodes for z in range(1, restored.last_zxid + 1))
    again = restore(ROOT, fs=fs)  # the truncation was written: the next start finds no torn tail
    assert again.last_zxid == restored.last_zxid and not again.truncated


def test_epoch_files_are_never_torn() -> None:
    """tmp + fsync + rename + folder fsync: after any cut the file is the old or the new epoch."""
    for seed in range(40):
        fs = MemoryFileSystem()
        write_epoch(ROOT, "acceptedEpoch", 7, fs)
        rng = random.Random(seed)
        fs.ops_left = rng.randint(0, 6)
        try:
            write_epoch(ROOT, "acceptedEpoch", 12345, fs)
        except PowerCut:
            pass
        fs.power_cut(rng)
        assert read_epoch(ROOT, "acceptedEpoch", fs) in (7, 12345)
        assert LocalDisk(ROOT, fs=fs).log_names() == []
