"""The core's database across elections and syncs: no snapshot bytes kept, the tree kept when it
is the disk image replayed, rebuilt through the Storage when it is not."""

from __future__ import annotations

from collections import Counter

from jute.codes import OpCode
from jute.codes import QuorumPacketType as P
from jute.data import ACL, Id
from jute.quorum import QuorumPacket
from jute.txn import CreateTxn, SetDataTxn, TxnHeader
from pyzk.quorum.database import DiskImage, ZabDatabase
from pyzk.quorum.effects import Persist
from pyzk.quorum.peer import Peer
from pyzk.quorum.verifier import QuorumMaj
from pyzk.quorum.zab import Follower, Phase, Probe, ZabConfig
from pyzk.quorum.zxid import make_zxid
from pyzk.storage.format import encode_txn_entry
from pyzk.storage.snapshot_format import parse_snap_stream
from pyzk.tree.datatree import DataTree

OPEN_ACL = [ACL(31, Id("world", "anyone"))]


def create(zxid: int, path: str | None = None) -> tuple[int, bytes]:
    return zxid, encode_txn_entry(TxnHeader(1, 0, zxid, 0, OpCode.CREATE),
                                  CreateTxn(path or f"/n{zxid:x}", b"", OPEN_ACL, False, 1), None)


def set_data(zxid: int, path: str, version: int) -> tuple[int, bytes]:
    return zxid, encode_txn_entry(TxnHeader(1, 0, zxid, 0, OpCode.SET_DATA),
                                  SetDataTxn(path, f"v{version}".encode(), version), None)


def pkt(type_: P, zxid: int, data: bytes | None = None) -> QuorumPacket:
    return QuorumPacket(int(type_), zxid, data, None)


class CountingProbe(Probe):
    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()

    def __call__(self, site: str) -> None:
        self.hits[site] += 1


class DictStore:
    """A Storage over SNAP streams, with no log files to read."""

    def __init__(self) -> None:
        self.streams: dict[int, bytes] = {}
        self.loads: list[int] = []
        self.image = DiskImage()  # what was written, txns included

    def load(self, zxid: int) -> DataTree:
        self.loads.append(zxid)
        return parse_snap_stream(self.streams[zxid], 0)[0].tree

    def snapshot_size(self, zxid: int) -> int:
        return len(self.streams.get(zxid, b""))

    def read_committed(self, from_zxid: int, before_zxid: int, limit_bytes: int) -> list[tuple[int, bytes]] | None:
        return None

    def logged_after(self, zxid: int, before_zxid: int | None = None) -> list[tuple[int, bytes]]:
        return [(z, e) for z, e in self.image.entries if z > zxid and (before_zxid is None or z < before_zxid)]


def durable(peer: Peer, store: DictStore) -> None:
    """The driver wrote every Persist so far: snapshots reach the store, then persisted()."""
    persists = [e for e in peer.outbox.effects if isinstance(e, Persist)]
    for persist in persists:
        if persist.snapshot is not None:
            store.streams[persist.snapshot[0]] = persist.snapshot[1].snap_stream()
        store.image.apply(persist)
    if persists:
        peer.persisted(persists[-1].persist_id, 0)


def follower_peer(image: DiskImage, store: DictStore, probe: Probe) -> tuple[Peer, Follower]:
    """Peer 2 following leader 1 in epoch 2, its LEADERINFO answered."""
    store.image = image.copy()  # what dataDir holds at start
    peer = Peer(2, QuorumMaj.of_sids([1, 2, 3]), image, 0, ZabConfig(), probe, store=store)
    follower = Follower(peer.ctx, 1, 0)
    peer.role = follower
    follower.connected_to(1, 0)
    peer.step_packet(1, pkt(P.LEADERINFO, make_zxid(2, 0), b"\0\1\0\0"), b"", 0)
    durable(peer, store)
    return peer, follower


def test_a_database_holds_no_snapshot_bytes_only_the_zxid_and_the_log_after_it() -> None:
    db = ZabDatabase(0, None, [create(z) for z in (1, 2, 3)])
    serializer = db.snapshot()
    db.rebase(3, keep=1)
    assert db.base_zxid == 3 and [z for z, _ in db.log] == [3]
    assert not any(isinstance(v, bytes) and len(v) > 100 for v in vars(db).values())
    assert serializer.zxid == 3  # the bytes travel in the Persist, not in the database


def test_going_back_to_election_keeps_the_tree_and_applies_the_logged_proposals() -> None:
    probe = CountingProbe()
    store = DictStore()
    image = DiskImage(None, [create(make_zxid(1, n)) for n in (1, 2)], 1, 1)
    peer, follower = follower_peer(image, store, probe)
    tree = peer.db.tree
    follower.step(1, pkt(P.DIFF, make_zxid(1, 2)), b"", 0)
    follower.step(1, pkt(P.NEWLEADER, make_zxid(2, 0)), b"", 0)
    durable(peer, store)
    follower.step(1, pkt(P.UPTODATE, -1), b"", 0)
    assert follower.phase == Phase.BROADCAST
    zxid, entry = create(make_zxid(2, 1))
    peer.step_packet(1, pkt(P.PROPOSAL, zxid, entry), b"", 0)  # logged, never committed
    durable(peer, store)
    follower.failed = "leader gone"
    peer.tick(0)
    assert peer.role is None and peer.db.tree is tree  # kept, not rebuilt
    assert peer.db.last_processed_zxid == zxid and tree.get(f"/n{zxid:x}") is not None
    assert probe.hits["election applied logged txns to the tree it kept"] == 1
    assert probe.hits["election rebuilt the database from its disk image"] == 0
    assert store.loads == []


def test_a_snap_abandoned_before_newleader_leaves_the_tree_of_the_disk_image() -> None:
    probe = CountingProbe()
    store = DictStore()
    image = DiskImage(None, [create(make_zxid(1, n)) for n in (1, 2)], 1, 1)
    peer, follower = follower_peer(image, store, probe)
    leader_db = ZabDatabase(0, None, [create(make_zxid(1, 1), "/from-leader")])
    follower.step(1, pkt(P.SNAP, make_zxid(1, 1)), leader_db.snap_stream(), 0)
    assert peer.db.tree.get("/from-leader") is not None
    follower.failed = "leader gone before NEWLEADER"
    peer.tick(0)
    assert probe.hits["election rebuilt the database from its disk image"] == 1
    assert peer.db.tree.get("/from-leader") is None
    assert peer.db.tree.get(f"/n{make_zxid(1, 2):x}") is not None
    assert peer.db.last_processed_zxid == make_zxid(1, 2)


def test_trunc_below_the_tree_reloads_the_snapshot_from_the_store() -> None:
    """The snapshot at 0x100000002 is durable (in the store); the log after it is truncated."""
    probe = CountingProbe()
    store = DictStore()
    base = ZabDatabase(0, None, [create(make_zxid(1, n)) for n in (1, 2)])
    store.streams[make_zxid(1, 2)] = base.snap_stream()
    tail = [create(make_zxid(1, 3)), set_data(make_zxid(1, 4), "/n100000001", 1)]
    peer, follower = follower_peer(DiskImage(make_zxid(1, 2), tail, 1, 1), store, probe)
    assert store.loads == [make_zxid(1, 2)]  # start-up: snapshot, then the log replayed
    assert peer.db.tree.get("/n100000001").data == b"v1"
    follower.step(1, pkt(P.TRUNC, make_zxid(1, 3)), b"", 0)
    assert store.loads == [make_zxid(1, 2)] * 2
    assert probe.hits["follower rebuilt its tree from its snapshot to truncate"] == 1
    assert peer.db.last_processed_zxid == make_zxid(1, 3)
    assert peer.db.tree.get("/n100000001").data == b""  # the setData above the TRUNC is gone
    assert peer.db.tree.get(f"/n{make_zxid(1, 3):x}") is not None


def test_a_snapshot_not_yet_durable_is_read_from_the_core_not_the_store() -> None:
    """A periodic snapshot is persisted but not written when a TRUNC needs it as the base."""
    probe = CountingProbe()
    store = DictStore()
    config = ZabConfig(snap_count=2, commit_log_count=0)
    peer = Peer(2, QuorumMaj.of_sids([1, 2, 3]), DiskImage(None, [], 1, 1), 0, config, probe, store=store)
    db = peer.db
    for zxid, entry in [create(make_zxid(1, n)) for n in (1, 2, 3)]:
        db.append(zxid, entry)
        db.apply_committed(zxid)
    peer.ctx.snapshot_due = True
    peer.ctx.snapshot_if_due()  # the tree is small: one step, then Persist(snapshot)
    assert db.base_zxid == make_zxid(1, 3) and peer.disk.snapshot == make_zxid(1, 3)
    zxid, entry = create(make_zxid(1, 4))
    db.append(zxid, entry)
    db.apply_committed(zxid)
    db.truncate(make_zxid(1, 3), peer.ctx.load_tree, peer.ctx.load_logged)
    assert store.loads == []
    assert db.last_processed_zxid == make_zxid(1, 3) and db.tree.get(f"/n{zxid:x}") is None
    durable(peer, store)  # now it is written: the next load reads the store
    assert peer.load_tree(make_zxid(1, 3)).get(f"/n{make_zxid(1, 3):x}") is not None
    assert store.loads == [make_zxid(1, 3)]


def test_a_periodic_snapshot_spans_inputs_and_is_the_tree_at_its_zxid() -> None:
    probe = CountingProbe()
    store = DictStore()
    config = ZabConfig(snap_count=2, commit_log_count=0, snapshot_nodes_per_step=2)
    peer = Peer(2, QuorumMaj.of_sids([1, 2, 3]), DiskImage(None, [], 1, 1), 0, config, probe, store=store)
    db = peer.db
    for zxid, entry in [create(make_zxid(1, n)) for n in range(1, 9)]:
        db.append(zxid, entry)
        db.apply_committed(zxid)
    at_start = db.snap_stream()
    peer.ctx.snapshot_due = True
    peer.ctx.snapshot_if_due()
    assert peer.ctx.snapshot_running is not None and peer.next_timer_ms() == 1  # a tick soon
    steps = 0
    n = 9
    while peer.ctx.snapshot_running is not None and steps < 100:
        for zxid, entry in (create(make_zxid(1, n)), set_data(make_zxid(1, n + 1), "/n100000001", n)):
            db.append(zxid, entry)
            db.apply_committed(zxid)
        n += 2
        peer.ctx.step_snapshot()
        steps += 1
    assert 2 < steps < 100 and probe.hits["snapshot serialized while txns were applied"] == steps
    (persist,) = [e for e in peer.outbox.effects if isinstance(e, Persist) and e.snapshot]
    zxid, serializer = persist.snapshot
    assert zxid == make_zxid(1, 8) and serializer.snap_stream() == at_start
    assert db.tree.preimages is None  # the tree stopped keeping old states


def test_the_log_in_memory_keeps_the_window_and_what_is_not_applied() -> None:
    """Rule 1: applied txns older than the last `keep` leave memory (they are on disk), so a
    member holds about commitLogCount txns however many were logged since its snapshot."""
    keep = 50
    db = ZabDatabase(0, None, [], keep=keep)
    zxids = [make_zxid(1, n) for n in range(1, 2001)]
    for zxid in zxids[:1990]:
        db.append(*create(zxid))
        db.apply_committed(zxid)
    for zxid in zxids[1990:]:
        db.append(*create(zxid))  # logged, not committed: always kept
    assert len(db.log) <= 2 * keep + 64 + 10
    assert db.committed_window(keep) == [create(z) for z in zxids[1990 - keep:1990]]
    assert [z for z, _ in db.log[-10:]] == zxids[1990:]
    assert len(db.tree.nodes) == 1990 + len(DataTree().nodes)  # every applied txn is in the tree


def test_a_trunc_that_must_rebuild_replays_the_txns_read_back_not_the_trimmed_log() -> None:
    """The tree applied txns the leader does not have; the database is rebuilt from the
    snapshot and every txn logged after it, read back (the log in memory lost the old ones)."""
    logged = [create(make_zxid(1, n)) for n in range(1, 301)]
    db = ZabDatabase(0, None, logged, keep=10)
    assert len(db.log) <= 10 + 64
    db.truncate(make_zxid(1, 200), lambda zxid: DataTree(), lambda: list(logged))
    assert db.last_processed_zxid == make_zxid(1, 200)
    assert db.tree.get(f"/n{make_zxid(1, 200):x}") is not None
    assert db.tree.get(f"/n{make_zxid(1, 201):x}") is None
    assert db.tree.get(f"/n{make_zxid(1, 1):x}") is not None
