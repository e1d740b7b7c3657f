"""prep: txns from requests, check order, sequential names, outstanding changes, multi rollback."""

from __future__ import annotations

from jute.codes import Err, OpCode
from jute.data import ACL, OPEN_ACL_UNSAFE, Id
from jute.proto import CreateRequest, DeleteRequest, SetDataRequest
from jute.txn import CreateTxn, ErrorTxn, MultiTxn, SetDataTxn
from pyzk.acl import AuthRegistry
from pyzk.pipeline.prep import Prep
from pyzk.tree.datatree import DataTree

SID = 0x0100000000000001
IDS = [Id("ip", "127.0.0.1")]
OPEN = list(OPEN_ACL_UNSAFE)


def make() -> tuple[DataTree, Prep]:
    tree = DataTree()
    return tree, Prep(tree, AuthRegistry.from_properties({}))


def test_create_txn_carries_parent_cversion_plus_one() -> None:
    _, prep = make()
    p = prep.prep_write(OpCode.CREATE, CreateRequest("/a", b"x", OPEN, 0), SID, 1, IDS, 2, 100)
    assert p.hdr.type == OpCode.CREATE and p.txn == CreateTxn("/a", b"x", OPEN, False, 1)


def test_outstanding_changes_are_visible_before_apply() -> None:
    _, prep = make()
    prep.prep_write(OpCode.CREATE, CreateRequest("/a", b"", OPEN, 0), SID, 1, IDS, 2, 100)
    child = prep.prep_write(OpCode.CREATE, CreateRequest("/a/b", b"", OPEN, 0), SID, 2, IDS, 3, 100)
    assert child.error == 0
    dup = prep.prep_write(OpCode.CREATE, CreateRequest("/a", b"", OPEN, 0), SID, 3, IDS, 4, 100)
    assert dup.hdr.type == OpCode.ERROR and dup.txn == ErrorTxn(Err.NODEEXISTS)
    notempty = prep.prep_write(OpCode.DELETE, DeleteRequest("/a", -1), SID, 4, IDS, 5, 100)
    assert notempty.error == Err.NOTEMPTY


def test_sequential_suffix_uses_stored_cversion() -> None:
    tree, prep = make()
    first = prep.prep_write(OpCode.CREATE, CreateRequest("/s-", b"", OPEN, 2), SID, 1, IDS, 2, 100)
    second = prep.prep_write(OpCode.CREATE, CreateRequest("/s-", b"", OPEN, 2), SID, 2, IDS, 3, 100)
    assert first.txn.path == "/s-0000000000" and second.txn.path == "/s-0000000001"


def test_missing_parent_is_nonode_before_noauth() -> None:
    _, prep = make()
    p = prep.prep_write(OpCode.CREATE, CreateRequest("/x/y", b"", OPEN, 0), SID, 1, IDS, 2, 100)
    assert p.error == Err.NONODE


def test_noauth_for_create_under_read_only_parent() -> None:
    tree, prep = make()
    ro = [ACL(1, Id("world", "anyone"))]
    prep.prep_write(OpCode.CREATE, CreateRequest("/ro", b"", ro, 0), SID, 1, IDS, 2, 100)
    p = prep.prep_write(OpCode.CREATE, CreateRequest("/ro/c", b"", OPEN, 0), SID, 2, IDS, 3, 100)
    assert p.error == Err.NOAUTH


def test_special_paths_cannot_be_deleted_and_config_cannot_be_written() -> None:
    _, prep = make()
    assert prep.prep_write(OpCode.DELETE, DeleteRequest("/zookeeper", -1), SID, 1, IDS, 2, 1).error == Err.BADARGUMENTS
    assert prep.prep_write(OpCode.SET_DATA, SetDataRequest("/zookeeper/config", b"x", -1), SID, 1, IDS, 3, 1).error == Err.NOAUTH


def test_failed_multi_marks_later_ops_and_rolls_back_its_changes() -> None:
    _, prep = make()
    ops = [(OpCode.CREATE, CreateRequest("/m", b"", OPEN, 0)),
           (OpCode.SET_DATA, SetDataRequest("/nope", b"", -1)),
           (OpCode.DELETE, DeleteRequest("/m", -1))]
    p = prep.prep_multi(ops, SID, 1, IDS, 2, 100)
    assert isinstance(p.txn, MultiTxn) and p.error == Err.NONODE
    assert [t.type for t in p.txn.txns] == [OpCode.CREATE, OpCode.ERROR, OpCode.ERROR]
    assert ErrorTxn.from_bytes(p.txn.txns[2].data) == ErrorTxn(Err.RUNTIMEINCONSISTENCY)
    # The rolled-back create of /m must not be visible to the next request.
    again = prep.prep_write(OpCode.CREATE, CreateRequest("/m", b"", OPEN, 0), SID, 2, IDS, 3, 100)
    assert again.error == 0


def test_bad_version_on_set_data() -> None:
    _, prep = make()
    prep.prep_write(OpCode.CREATE, CreateRequest("/v", b"", OPEN, 0), SID, 1, IDS, 2, 100)
    assert prep.prep_write(OpCode.SET_DATA, SetDataRequest("/v", b"", 3), SID, 2, IDS, 3, 1).error == Err.BADVERSION
    ok = prep.prep_write(OpCode.SET_DATA, SetDataRequest("/v", b"1", 0), SID, 3, IDS, 4, 1)
    assert ok.txn == SetDataTxn("/v", b"1", 1)


def test_applied_forgets_change_records() -> None:
    tree, prep = make()
    p = prep.prep_write(OpCode.CREATE, CreateRequest("/a", b"", OPEN, 0), SID, 1, IDS, 2, 100)
    assert "/a" in prep.outstanding
    tree.apply(p.hdr, p.txn)
    prep.applied(2)
    assert prep.outstanding == {}
