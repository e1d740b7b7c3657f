"""DataTree.apply: Stat semantics, replay tolerance, multi atomicity, digest (PROTOCOL.md 2.10, 4.8, 4.9)."""

from __future__ import annotations

from jute.codes import Err, EventType, OpCode
from jute.data import OPEN_ACL_UNSAFE
from jute.txn import (
    CloseSessionTxn,
    CreateContainerTxn,
    CreateSessionTxn,
    CreateTTLTxn,
    CreateTxn,
    DeleteTxn,
    ErrorTxn,
    MultiTxn,
    SetDataTxn,
    Txn,
    TxnHeader,
)
from pyzk.tree.datatree import DataTree

SID = 0x0100000B68870000
ACL = list(OPEN_ACL_UNSAFE)


def hdr(zxid: int, op: int, sid: int = SID, time: int = 1000) -> TxnHeader:
    return TxnHeader(sid, 1, zxid, time, op)


def create(tree: DataTree, zxid: int, path: str, data: bytes = b"", ephemeral: bool = False) -> None:
    parent = path.rsplit("/", 1)[0] or "/"
    cv = tree.nodes[parent].cversion + 1
    rc = tree.apply(hdr(zxid, OpCode.CREATE), CreateTxn(path, data, ACL, ephemeral, cv))
    assert rc.err == 0, rc


def test_empty_tree_digest_is_apaches() -> None:
    assert DataTree().digest == 0x51C6D660


def test_fresh_root_shows_cversion_minus_one_and_zookeeper_minus_two() -> None:
    tree = DataTree()
    assert tree.stat_of(tree.nodes["/"]).cversion == -1
    assert tree.stat_of(tree.nodes["/zookeeper"]).cversion == -2
    assert tree.nodes["/zookeeper/config"].aversion == -1


def test_create_updates_parent_and_reports_events() -> None:
    tree = DataTree()
    rc = tree.apply(hdr(2, OpCode.CREATE), CreateTxn("/a", b"hello", ACL, False, 1))
    assert [event[:2] for event in rc.events] == [(EventType.NODE_CREATED, "/a"), (EventType.NODE_CHILDREN_CHANGED, "/")]
    root = tree.nodes["/"]
    assert (root.cversion, root.pzxid) == (1, 2)
    st = tree.stat_of(tree.nodes["/a"])
    assert (st.czxid, st.mzxid, st.pzxid, st.version, st.dataLength) == (2, 2, 2, 0, 5)


def test_delete_keeps_stored_cversion_and_client_cversion_counts_deletes() -> None:
    tree = DataTree()
    create(tree, 2, "/p")
    create(tree, 3, "/p/c")
    assert tree.stat_of(tree.nodes["/p"]).cversion == 1
    rc = tree.apply(hdr(4, OpCode.DELETE), DeleteTxn("/p/c"))
    assert rc.err == 0
    p = tree.nodes["/p"]
    assert p.cversion == 1 and p.pzxid == 4
    assert tree.stat_of(p).cversion == 2  # one create + one delete
    assert (EventType.NODE_DELETED, "/p/c") in [event[:2] for event in rc.events]


def test_replayed_create_that_exists_still_moves_parent_cversion() -> None:
    tree = DataTree()
    create(tree, 2, "/a")
    rc = tree.apply(hdr(5, OpCode.CREATE), CreateTxn("/a", b"", ACL, False, 7))
    assert rc.err == Err.NODEEXISTS
    assert tree.nodes["/"].cversion == 7 and tree.nodes["/"].pzxid == 5


def test_replayed_delete_of_a_missing_child_still_moves_parent_pzxid() -> None:
    # A fuzzy snapshot can already lack the child (DataTree.deleteNode updates the parent
    # before it looks the child up); Apache's digests after such a replay depend on it.
    tree = DataTree()
    create(tree, 2, "/p")
    digest_before = tree.digest
    rc = tree.apply(hdr(6, OpCode.DELETE), DeleteTxn("/p/gone"))
    assert rc.err == Err.NONODE
    assert tree.nodes["/p"].pzxid == 6
    assert tree.digest != digest_before
    rc = tree.apply(hdr(7, OpCode.CLOSE_SESSION), CloseSessionTxn(["/p/gone-too"]))
    assert rc.err == 0
    assert tree.nodes["/p"].pzxid == 7
    tree.apply(hdr(8, OpCode.DELETE), DeleteTxn("/p/older"))
    rc = tree.apply(hdr(5, OpCode.DELETE), DeleteTxn("/p/older"))
    assert tree.nodes["/p"].pzxid == 8  # only moves up
    assert tree.apply(hdr(9, OpCode.DELETE), DeleteTxn("/nope/x")).err == Err.NONODE


def test_failed_multi_changes_nothing_and_reports_per_op_errors() -> None:
    tree = DataTree()
    create(tree, 2, "/a")
    before = tree.digest
    txn = MultiTxn([
        Txn(OpCode.CREATE, CreateTxn("/b", b"", ACL, False, 2).encode()),
        Txn(OpCode.ERROR, ErrorTxn(Err.NONODE).encode()),
        Txn(OpCode.ERROR, ErrorTxn(Err.RUNTIMEINCONSISTENCY).encode()),
    ])
    rc = tree.apply(hdr(3, OpCode.MULTI), txn)
    assert [(r.type, r.err) for r in rc.multi or []] == [
        (OpCode.ERROR, 0), (OpCode.ERROR, Err.NONODE), (OpCode.ERROR, Err.RUNTIMEINCONSISTENCY)]
    assert "/b" not in tree.nodes and tree.digest == before
    assert tree.last_processed_zxid == 3


def test_successful_multi_applies_in_order() -> None:
    tree = DataTree()
    txn = MultiTxn([
        Txn(OpCode.CREATE, CreateTxn("/m", b"1", ACL, False, 1).encode()),
        Txn(OpCode.SET_DATA, SetDataTxn("/m", b"2", 1).encode()),
    ])
    rc = tree.apply(hdr(2, OpCode.MULTI), txn)
    assert rc.err == 0 and tree.nodes["/m"].data == b"2" and tree.nodes["/m"].version == 1


def test_close_session_deletes_its_ephemerals() -> None:
    tree = DataTree()
    tree.apply(hdr(1, OpCode.CREATE_SESSION), CreateSessionTxn(30000))
    assert tree.sessions == {SID: 30000}
    create(tree, 2, "/e", ephemeral=True)
    assert tree.ephemerals == {SID: {"/e": None}}
    rc = tree.apply(hdr(3, OpCode.CLOSE_SESSION), CloseSessionTxn(["/e"]))
    assert "/e" not in tree.nodes and tree.ephemerals == {} and tree.sessions == {}
    assert rc.closed_session == SID


def test_container_and_ttl_owners_are_hidden_from_clients() -> None:
    tree = DataTree(extended_types_enabled=True)
    tree.apply(hdr(2, OpCode.CREATE_CONTAINER), CreateContainerTxn("/c", b"", ACL, 1))
    tree.apply(hdr(3, OpCode.CREATE_TTL), CreateTTLTxn("/t", b"", ACL, 2, 5000))
    assert "/c" in tree.containers and "/t" in tree.ttls
    assert tree.stat_of(tree.nodes["/c"]).ephemeralOwner == 0
    assert tree.stat_of(tree.nodes["/t"]).ephemeralOwner == 0
    assert tree.nodes["/c"].ephemeral_owner == -0x8000000000000000


def test_digest_is_incremental_and_order_independent() -> None:
    a, b = DataTree(), DataTree()
    create(a, 2, "/x", b"1")
    create(a, 3, "/y", b"2")
    create(b, 2, "/x", b"1")
    create(b, 3, "/y", b"2")
    assert a.digest == b.digest
    a.apply(hdr(4, OpCode.DELETE), DeleteTxn("/y"))
    c = DataTree()
    create(c, 2, "/x", b"1")
    c.nodes["/"].cversion = 2
    c.nodes["/"].pzxid = 4
    c.digest = 0
    for path, node in c.nodes.items():
        c.digest = (c.digest + c.node_digest(path, node)) & ((1 << 64) - 1)
    assert a.digest == c.digest


def test_a_tree_holds_no_reference_cycle_so_a_dropped_frozen_tree_is_freed() -> None:
    """Ensemble members gc.freeze() the loaded tree; one a SNAP replaces must still be freed,
    which with the cyclic GC out of reach only reference counting can do."""
    import gc
    import weakref

    tree = DataTree()
    create(tree, 1, "/a", b"x")
    create(tree, 2, "/zookeeper/quota/a")
    create(tree, 3, "/zookeeper/quota/a/zookeeper_limits", b"count=10,bytes=-1")
    create(tree, 4, "/zookeeper/quota/a/zookeeper_stats", b"count=0,bytes=0")
    create(tree, 5, "/a/b", b"y")
    gone = weakref.ref(tree)
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        del tree
        assert gone() is None
    finally:
        if was_enabled:
            gc.enable()
