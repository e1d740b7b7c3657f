"""Snapshots on bytes: Apache's snapshot.0 byte for byte, round trips, seals, fuzzy steps."""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path

import pytest

from jute.codes import OpCode
from jute.data import ACL, OPEN_ACL_UNSAFE, Id
from jute.txn import CloseSessionTxn, CreateSessionTxn, CreateTxn, DeleteTxn, SetACLTxn, SetDataTxn, TxnHeader
from pyzk.storage.errors import SnapshotFormatError
from pyzk.storage.snapshot_format import (
    SnapshotSerializer,
    looks_valid,
    parse_snap_stream,
    parse_snapshot,
    serialize_snapshot,
)
from pyzk.tree.datatree import DataTree

GOLDEN = Path(__file__).parent / "golden"
OPEN = list(OPEN_ACL_UNSAFE)


def view(tree: DataTree) -> dict[str, tuple[object, ...]]:
    return {p: (n.data, dataclasses.astuple(n.stat_persisted()), n.acl, tuple(sorted(n.children)))
            for p, n in tree.nodes.items()}


def sample_tree() -> DataTree:
    tree = DataTree()
    zxid = 0

    def apply(session: int, op: int, txn: object) -> None:
        nonlocal zxid
        zxid += 1
        tree.apply(TxnHeader(session, zxid, zxid, 1000 + zxid, op), txn)

    apply(7, OpCode.CREATE_SESSION, CreateSessionTxn(30000))
    apply(7, OpCode.CREATE, CreateTxn("/a", b"\x00\xff", OPEN, False, 1))
    apply(7, OpCode.CREATE, CreateTxn("/a/n", None, [ACL(1, Id("digest", "u:h"))], False, 1))
    apply(7, OpCode.CREATE, CreateTxn("/a/e", b"", OPEN, True, 2))
    apply(7, OpCode.CREATE, CreateTxn("/b", "ü".encode(), [ACL(1, Id("digest", "u:h"))], False, 2))
    return tree


def test_fresh_tree_is_apaches_snapshot_0_byte_for_byte() -> None:
    data = serialize_snapshot(DataTree(), digest_enabled=True)
    assert data == (GOLDEN / "apache_snapshot.0").read_bytes()
    seal1, seal2 = struct.unpack_from(">q", data, len(data) - 46)[0], struct.unpack_from(">q", data, len(data) - 13)[0]
    assert (seal1, seal2) == (3097639753, 2511945049)


def test_round_trip_keeps_nodes_sessions_acls_and_digest() -> None:
    tree = sample_tree()
    loaded = parse_snapshot(serialize_snapshot(tree, digest_enabled=True))
    assert view(loaded.tree) == view(tree)
    assert loaded.sessions == {7: 30000}
    assert loaded.tree.digest == tree.digest
    assert loaded.tree.ephemerals == {7: {"/a/e": None}}
    assert loaded.zxid_digest is not None and loaded.zxid_digest.zxid == 5
    assert loaded.zxid_digest.digest == tree.digest


def test_apache_snapshot_parses_and_reserializes_to_the_same_tree() -> None:
    first = parse_snapshot((GOLDEN / "apache_snapshot.13").read_bytes(), extended_types_enabled=True)
    assert first.sessions and first.zxid_digest is not None
    assert first.tree.digest == first.zxid_digest.digest  # 0x13 was not fuzzy: nothing ran meanwhile
    again = parse_snapshot(serialize_snapshot(first.tree, digest_enabled=True), extended_types_enabled=True)
    assert view(again.tree) == view(first.tree) and again.sessions == first.sessions


def test_without_digest_trailer() -> None:
    data = serialize_snapshot(sample_tree(), digest_enabled=False)
    assert parse_snapshot(data).zxid_digest is None
    assert looks_valid(data[-5:], len(data))


def test_every_flipped_byte_is_caught_by_a_seal_or_the_parser() -> None:
    data = serialize_snapshot(sample_tree(), digest_enabled=True)
    for offset in range(len(data) - 5):  # the final "/" is not covered by any seal
        damaged = bytearray(data)
        damaged[offset] ^= 0x01
        with pytest.raises(SnapshotFormatError):
            parse_snapshot(bytes(damaged))


def test_truncated_snapshot_fails_or_is_the_whole_tree_without_its_digest() -> None:
    tree = sample_tree()
    data = serialize_snapshot(tree, digest_enabled=True)
    for cut in range(len(data)):
        part = data[:cut]
        if not looks_valid(part[-5:], len(part)):
            continue
        try:
            loaded = parse_snapshot(part)
        except SnapshotFormatError:
            continue
        # Only a cut just after seal 1 parses: an older-format file (FileSnap reads EOF there).
        assert cut == len(data) - 33 and loaded.zxid_digest is None
        assert view(loaded.tree) == view(tree)


def test_fuzzy_steps_skip_deleted_nodes_and_keep_parents_first() -> None:
    tree = sample_tree()
    serializer = SnapshotSerializer(tree)
    assert serializer.zxid == 5
    assert not serializer.step(2)  # "/" and "/a" are written
    tree.apply(TxnHeader(7, 6, 6, 2000, OpCode.DELETE), DeleteTxn("/a/n"))
    tree.apply(TxnHeader(7, 7, 7, 2001, OpCode.CREATE), CreateTxn("/c", b"new", OPEN, False, 3))
    while not serializer.step(1):
        pass
    loaded = parse_snapshot(b"".join(serializer.file_chunks(digest_enabled=True)))
    # /a/n was deleted before its turn; /c was created under an already written parent: replay adds it.
    assert "/a/n" not in loaded.tree.nodes and "/c" not in loaded.tree.nodes and "/a/e" in loaded.tree.nodes
    assert loaded.zxid_digest is not None and loaded.zxid_digest.zxid == 7


def interleaved_txns(tree: DataTree, serializer: SnapshotSerializer) -> None:
    """Step one node at a time; between steps, txns of every kind: deletes of written and
    unwritten nodes, creates under both, setData, setACL, a delete then create of one path,
    a closeSession removing an ephemeral."""
    txns = [
        (OpCode.DELETE, DeleteTxn("/a/n")),
        (OpCode.CREATE, CreateTxn("/c", b"new", OPEN, False, 3)),
        (OpCode.SET_DATA, SetDataTxn("/b", b"changed", 1)),
        (OpCode.CREATE, CreateTxn("/a/m", b"", OPEN, False, 3)),
        (OpCode.SET_ACL, SetACLTxn("/a", OPEN, 1)),
        (OpCode.DELETE, DeleteTxn("/c")),
        (OpCode.CREATE, CreateTxn("/c", b"again", OPEN, False, 5)),
        (OpCode.CLOSE_SESSION, CloseSessionTxn(["/a/e"])),
    ]
    zxid = tree.last_processed_zxid
    done = serializer.step(1)
    for op, txn in txns:
        zxid += 1
        result = tree.apply(TxnHeader(7, zxid, zxid, 2000 + zxid, op), txn)
        assert result.err == 0, (op, result)
        done = serializer.step(1)
    while not done:
        done = serializer.step(1)


def test_an_exact_snapshot_in_steps_is_the_tree_at_its_zxid_whatever_txns_come_between() -> None:
    expected = serialize_snapshot(sample_tree(), digest_enabled=True)
    tree = sample_tree()
    serializer = SnapshotSerializer(tree, exact=True)
    interleaved_txns(tree, serializer)
    assert b"".join(serializer.file_chunks(digest_enabled=True)) == expected
    assert tree.preimages is None and tree.last_processed_zxid == 13
    # The same interleaving without exact=True is a fuzzy snapshot: not the tree at zxid 5.
    tree = sample_tree()
    fuzzy = SnapshotSerializer(tree)
    interleaved_txns(tree, fuzzy)
    assert b"".join(fuzzy.file_chunks(digest_enabled=True)) != expected


def quota_tree() -> DataTree:
    """/q under a count quota: its zookeeper_stats node is rewritten in place on each create."""
    tree = DataTree()
    paths = ["/q", "/zookeeper/quota/q", "/zookeeper/quota/q/zookeeper_limits",
             "/zookeeper/quota/q/zookeeper_stats", "/q/one"]
    for zxid, path in enumerate(paths, start=1):
        data = b"count=10,bytes=-1" if path.endswith("limits") else b"count=0,bytes=0" if path.endswith("stats") else b"x"
        tree.apply(TxnHeader(7, zxid, zxid, 1000, OpCode.CREATE), CreateTxn(path, data, OPEN, False, zxid))
    return tree


def test_an_exact_snapshot_keeps_quota_stats_as_they_were_at_its_zxid() -> None:
    expected = serialize_snapshot(quota_tree(), digest_enabled=True)
    tree = quota_tree()
    stats = tree.nodes["/zookeeper/quota/q/zookeeper_stats"].data
    serializer = SnapshotSerializer(tree, exact=True)
    serializer.step(1)
    tree.apply(TxnHeader(7, 6, 6, 2000, OpCode.CREATE), CreateTxn("/q/two", b"yy", OPEN, False, 6))
    assert tree.nodes["/zookeeper/quota/q/zookeeper_stats"].data != stats  # changed in place
    while not serializer.step(1):
        pass
    assert b"".join(serializer.file_chunks(digest_enabled=True)) == expected


def test_an_abandoned_exact_snapshot_stops_keeping_old_node_states() -> None:
    tree = sample_tree()
    serializer = SnapshotSerializer(tree, exact=True)
    serializer.step(1)
    tree.apply(TxnHeader(7, 6, 6, 2000, OpCode.SET_DATA), SetDataTxn("/b", b"x", 1))
    assert tree.preimages is not None and "/b" in tree.preimages
    serializer.abandon()
    assert tree.preimages is None
    SnapshotSerializer(tree, exact=True).abandon()  # a new one may start
    with pytest.raises(RuntimeError):
        SnapshotSerializer(tree, exact=True)
        SnapshotSerializer(tree, exact=True)


def test_snap_stream_round_trip() -> None:
    tree = sample_tree()
    serializer = SnapshotSerializer(tree)
    serializer.step(1000)
    payload = b"xx" + serializer.snap_stream()
    loaded, end = parse_snap_stream(payload, 2)
    assert end == len(payload) and view(loaded.tree) == view(tree)
    with pytest.raises(SnapshotFormatError, match="BenWasHere"):
        parse_snap_stream(payload[:-1] + b"!", 2)


def _quota_tree() -> DataTree:
    tree = sample_tree()
    zxid = tree.last_processed_zxid
    for path in ("/zookeeper/quota/a", "/zookeeper/quota/a/zookeeper_limits"):  # not in the digest
        zxid += 1
        tree.apply(TxnHeader(7, zxid, zxid, 5000, OpCode.CREATE), CreateTxn(path, b"count=5", OPEN, False, -1))
    return tree


@pytest.mark.parametrize("helper_result", ["sum", "failed"])
def test_a_digest_summed_elsewhere_equals_the_loaders_own(monkeypatch: pytest.MonkeyPatch, helper_result: str) -> None:
    from pyzk.storage import snapshot_format

    tree = _quota_tree()
    data = serialize_snapshot(tree, digest_enabled=True)
    monkeypatch.setattr(snapshot_format, "PARALLEL_DIGEST_BYTES_MIN", 0)
    started: list[int] = []

    def parallel(buf: bytes, pos: int):  # type: ignore[no-untyped-def]
        started.append(pos)
        total = snapshot_format.node_digest_sum(buf, pos)
        return lambda: total if helper_result == "sum" else None

    loaded = parse_snapshot(data, parallel_digest=parallel)
    assert started, "the helper was not used"
    assert loaded.tree.digest == tree.digest == parse_snapshot(data).tree.digest
    assert view(loaded.tree) == view(tree)


def test_forked_digest_sum_matches_and_a_bad_snapshot_still_fails_cleanly(monkeypatch: pytest.MonkeyPatch) -> None:
    from pyzk.storage import snapshot_format
    from pyzk.storage.forked_digest import fork_digest_sum

    tree = _quota_tree()
    data = serialize_snapshot(tree, digest_enabled=True)
    monkeypatch.setattr(snapshot_format, "PARALLEL_DIGEST_BYTES_MIN", 0)
    assert parse_snapshot(data, parallel_digest=fork_digest_sum).tree.digest == tree.digest
    cut = data[: len(data) // 2]  # the child fails on it too, and is reaped
    with pytest.raises(SnapshotFormatError):
        parse_snapshot(cut, parallel_digest=fork_digest_sum)
