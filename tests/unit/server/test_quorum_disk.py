"""QuorumDisk.read_committed: the txn log read back for a DIFF to a learner behind the core's
log (getProposalsFromTxnLog), on the simulated disk; and the guard against history that a
SNAP left behind."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from jute.codes import OpCode
from jute.data import OPEN_ACL_UNSAFE
from jute.txn import CreateTxn, TxnHeader
from pyzk.config import parse_config
from pyzk.quorum.effects import Persist
from pyzk.quorum.zxid import make_zxid
from pyzk.server.quorum_disk import QuorumDisk
from pyzk.storage.format import encode_txn_entry
from pyzk.storage.fs import MemoryFileSystem


def quorum_disk() -> QuorumDisk:
    config = parse_config("tickTime=200\ninitLimit=5\nsyncLimit=2\ndataDir=/d\nclientPort=2181\n"
                          "server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\n"
                          "server.3=127.0.0.1:2890:3890\n", myid_text="1")
    config = dataclasses.replace(config, data_dir=Path("/d"), data_log_dir=Path("/d"), pre_alloc_size_kb=1)
    disk = QuorumDisk(config, MemoryFileSystem())
    disk.load_image()  # snapshot.0
    return disk


def entry(zxid: int) -> tuple[int, bytes]:
    hdr = TxnHeader(0x55, 1, zxid, 1000, OpCode.CREATE)
    return zxid, encode_txn_entry(hdr, CreateTxn(f"/n{zxid:x}", b"d", list(OPEN_ACL_UNSAFE), False, -1), None)


def log(disk: QuorumDisk, *zxids: int) -> None:
    disk.write([Persist(1, entries=tuple(entry(z) for z in zxids))])


def snapshot_file(disk: QuorumDisk, zxid: int) -> None:
    """A snapshot at `zxid` (its content does not matter here), then a new log file, as
    QuorumDisk._write_snapshot does."""
    disk.log.roll()
    disk.disk.write_snapshot(zxid, [b"snapshot body"])


def z(epoch: int, counter: int) -> int:
    return make_zxid(epoch, counter)


def test_reads_across_files_and_own_snapshots_up_to_the_bound() -> None:
    disk = quorum_disk()
    log(disk, z(1, 1), z(1, 2), z(1, 3), z(1, 4))
    snapshot_file(disk, z(1, 4))  # a periodic snapshot: its txn is in the log
    log(disk, z(1, 5), z(2, 1), z(2, 2))
    got = disk.read_committed(z(1, 2), z(2, 2), 0)
    assert got is not None and [zxid for zxid, _ in got] == [z(1, 2), z(1, 3), z(1, 4), z(1, 5), z(2, 1)]
    assert got[0] == entry(z(1, 2))


def test_the_first_txn_must_be_the_learners_last() -> None:
    disk = quorum_disk()
    log(disk, z(1, 3), z(1, 4))
    assert disk.read_committed(z(1, 2), z(1, 5), 0) is None


def test_a_size_limit_means_none_rather_than_part() -> None:
    disk = quorum_disk()
    log(disk, *(z(1, c) for c in range(1, 11)))
    size = len(entry(z(1, 1))[1])
    assert disk.read_committed(z(1, 1), z(1, 11), 10 * size) is not None
    assert disk.read_committed(z(1, 1), z(1, 11), 10 * size - 1) is None


def test_a_gap_in_the_log_is_not_history() -> None:
    disk = quorum_disk()
    log(disk, z(1, 1), z(1, 2))
    snapshot_file(disk, z(2, 3))  # a SNAP at 2:3: the member never logged 2:1..2:3
    log(disk, z(2, 4), z(2, 5))
    assert disk.read_committed(z(1, 1), z(2, 5), 0) is None


def test_a_snapshot_from_a_snap_hides_history_even_where_the_log_looks_continuous() -> None:
    """The member logged 1:1..1:3 and was synced by a SNAP at 1:5 (it never had 1:4, 1:5);
    its next txn is 2:1, which could follow 1:3. Only the snapshot without its txn tells."""
    disk = quorum_disk()
    log(disk, z(1, 1), z(1, 2), z(1, 3))
    snapshot_file(disk, z(1, 5))
    log(disk, z(2, 1), z(2, 2))
    assert disk.read_committed(z(1, 1), z(2, 2), 0) is None
    assert disk.read_committed(z(2, 1), z(2, 2), 0) == [entry(z(2, 1))]  # after it: fine


def test_a_purged_log_means_none() -> None:
    disk = quorum_disk()
    log(disk, z(1, 1), z(1, 2))
    for name in disk.disk.log_names():
        disk.fs.unlink(disk.disk.log_dir / name)
    assert disk.read_committed(z(1, 1), z(1, 3), 0) is None
