"""QuorumDisk: Persist effects written to a real dataDir load back as the same DiskImage."""

from __future__ import annotations

from pathlib import Path

from jute.codes import OpCode
from jute.data import ACL, Id
from jute.txn import CreateTxn, TxnHeader
from pyzk.config import parse_config
from pyzk.quorum.database import DiskImage, ZabDatabase
from pyzk.quorum.effects import Persist
from pyzk.server.quorum_disk import QuorumDisk
from pyzk.storage.format import encode_txn_entry

OPEN_ACL = [ACL(31, Id("world", "anyone"))]


def entry(zxid: int) -> tuple[int, bytes]:
    return zxid, encode_txn_entry(TxnHeader(1, 0, zxid, 1000, OpCode.CREATE),
                                  CreateTxn(f"/n{zxid:x}", b"d", OPEN_ACL, False, zxid & 0xffff), None)


def quorum_disk(tmp_path: Path) -> QuorumDisk:
    cfg = (f"tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={tmp_path}\nclientPort=2181\n"
           "server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\nserver.3=127.0.0.1:2890:3890\n")
    return QuorumDisk(parse_config(cfg, myid_text="1"))


def reload(tmp_path: Path, disk: QuorumDisk) -> tuple[QuorumDisk, DiskImage]:
    disk.close()
    disk = quorum_disk(tmp_path)
    return disk, disk.load_image()


def test_entries_and_epochs_survive_a_restart(tmp_path: Path) -> None:
    disk = quorum_disk(tmp_path)
    assert disk.load_image().entries == []
    entries = tuple(entry(0x100000000 + i) for i in range(1, 4))
    disk.write([Persist(1, accepted_epoch=1), Persist(2, current_epoch=1), Persist(3, entries=entries)])
    disk, image = reload(tmp_path, disk)
    assert image.entries == list(entries)
    assert (image.accepted_epoch, image.current_epoch) == (1, 1)
    assert image.snapshot == 0  # the empty snapshot start-up made
    assert ZabDatabase(0, disk.load(0), image.entries).last_processed_zxid == 0x100000003


def test_trunc_drops_the_logged_txns_above_the_zxid(tmp_path: Path) -> None:
    disk = quorum_disk(tmp_path)
    disk.load_image()
    disk.write([Persist(1, entries=tuple(entry(0x100000000 + i) for i in range(1, 6)))])
    disk.write([Persist(2, truncate_to_zxid=0x100000002), Persist(3, entries=(entry(0x200000001),))])
    _, image = reload(tmp_path, disk)
    assert [z for z, _ in image.entries] == [0x100000001, 0x100000002, 0x200000001]


def test_a_snap_from_the_leader_becomes_the_base_snapshot(tmp_path: Path) -> None:
    leader = ZabDatabase(0, None, [entry(0x100000000 + i) for i in range(1, 4)])
    disk = quorum_disk(tmp_path)
    disk.load_image()
    disk.write([Persist(1, snapshot=(0x100000003, leader.snapshot()), entries=(entry(0x100000004),),
                        current_epoch=1)])
    disk, image = reload(tmp_path, disk)
    assert image.snapshot == 0x100000003
    assert [z for z, _ in image.entries] == [0x100000004]
    db = ZabDatabase(image.snapshot, disk.load(image.snapshot), image.entries)
    assert sorted(db.tree.nodes) == sorted([*leader.tree.nodes, "/n100000004"])
    # Read back from the file (start-up's parsed tree was handed over above).
    assert sorted(disk.load(0x100000003).nodes) == sorted(leader.tree.nodes)


def test_start_up_reads_only_the_window_of_a_long_log_when_recovery_built_the_tree(tmp_path: Path) -> None:
    """The core starts from the tree recovery replayed, so the image carries only the last
    commitLogCount txns (500): not snapCount txns held in memory at once."""
    disk = quorum_disk(tmp_path)
    disk.load_image()
    disk.write([Persist(1, entries=tuple(entry(0x100000000 + i) for i in range(1, 701)))])
    disk, image = reload(tmp_path, disk)
    assert [z for z, _ in image.entries] == [0x100000000 + i for i in range(201, 701)]
    tree = disk.take_replayed_tree()
    assert tree is not None and tree.last_processed_zxid == 0x1000002BC
    assert tree.get(f"/n{0x100000001:x}") is not None


def test_without_digests_start_up_reads_the_whole_log_to_replay_it(tmp_path: Path) -> None:
    cfg = (f"tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={tmp_path}\nclientPort=2181\n"
           "digest.enabled=false\n"
           "server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\nserver.3=127.0.0.1:2890:3890\n")
    disk = QuorumDisk(parse_config(cfg, myid_text="1"))
    disk.load_image()
    disk.write([Persist(1, entries=tuple(entry(0x100000000 + i) for i in range(1, 701)))])
    disk.close()
    disk = QuorumDisk(parse_config(cfg, myid_text="1"))
    assert len(disk.load_image().entries) == 700 and disk.take_replayed_tree() is None
