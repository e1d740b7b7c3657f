"""JavaHashSet: HashSet<String> iteration order, as ZooKeeper's closeSession lists ephemerals.

Expected orders were printed by Java 17 (HashSet filled in the same order, cloned, edited).
"""

from __future__ import annotations

from jute.codes import OpCode
from jute.data import OPEN_ACL_UNSAFE
from jute.txn import CreateTxn, TxnHeader
from pyzk.acl import AuthRegistry
from pyzk.pipeline.prep import Prep
from pyzk.tree.datatree import DataTree
from pyzk.tree.javaorder import JavaHashSet, copy_capacity


def test_order_is_by_bucket_not_by_insertion() -> None:
    # Seen in the differential test: the oracle deletes /n/a0000000002 first.
    paths = ["/n/a/a/a0000000000", "/n/a0000000002"]
    assert list(JavaHashSet.copy_of(JavaHashSet(paths))) == ["/n/a0000000002", "/n/a/a/a0000000000"]


def test_clone_then_edits_matches_java_across_a_resize() -> None:
    source = JavaHashSet([f"/e{i}" for i in range(1, 15)])
    assert source.capacity == 32
    clone = JavaHashSet.copy_of(source)
    clone.add("/x")
    clone.discard("/e3")
    clone.add("/e3")  # re-added: now last in its bucket
    java = "/e6 /e11 /e7 /e12 /e8 /e9 /e10 /x /e13 /e14 /e1 /e2 /e3 /e4 /e5"
    assert " ".join(clone) == java


def test_copy_capacity_is_putmapentries_presize() -> None:
    assert [copy_capacity(n) for n in (0, 1, 2, 3, 6, 12, 13)] == [16, 2, 4, 8, 16, 32, 32]


def test_close_session_txn_lists_ephemerals_in_java_order() -> None:
    tree = DataTree()
    session_id = 0x100
    for zxid, path in enumerate(["/n", "/n/a", "/n/a/a", "/n/a/a/a0000000000", "/n/a0000000002"], start=1):
        ephemeral = path in ("/n/a/a/a0000000000", "/n/a0000000002")
        tree.apply(TxnHeader(session_id, zxid, zxid, 0, OpCode.CREATE),
                   CreateTxn(path, b"", list(OPEN_ACL_UNSAFE), ephemeral, -1))
    prep = Prep(tree, AuthRegistry.from_properties({}))
    prepared = prep.prep_close_session(session_id, 9, 10, 0)
    assert prepared.txn.paths2Delete == ["/n/a0000000002", "/n/a/a/a0000000000"]
