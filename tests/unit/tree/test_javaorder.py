"""HashSet<String> iteration order: the ephemerals closeSession lists, the children getChildren lists.

Expected orders and hash codes were printed by Java 17: a HashSet filled in the same order,
cloned and edited; for children, DataNode's set (new HashSet<String>(8) at the first child)
with the same adds and removes, and "reload" re-adding its names in iteration order to a new
set, as DataTree.deserialize does with a snapshot's nodes.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jute.codes import OpCode
from jute.data import OPEN_ACL_UNSAFE
from jute.txn import CreateTxn, DeleteTxn, TxnHeader
from pyzk.acl import AuthRegistry
from pyzk.pipeline.prep import Prep
from pyzk.tree import node as node_module
from pyzk.tree.datatree import DataTree
from pyzk.tree.javaorder import (
    FAST_HASH_CHARS_MAX,
    JavaHashSet,
    children_capacity,
    copy_capacity,
    hash_set_order,
    java_string_hash,
    spread_hash,
)
from pyzk.tree.node import DataNode


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


# ---- String.hashCode -----------------------------------------------------------------------

def _hash_by_code_units(text: str) -> int:
    """String.hashCode written out, the reference for the translate-based fast path."""
    raw = text.encode("utf-16-be", "surrogatepass")
    h = 0
    for i in range(0, len(raw), 2):
        h = (31 * h + int.from_bytes(raw[i:i + 2], "big")) % (1 << 32)
    return h - (1 << 32) if h >= 1 << 31 else h


def test_java_string_hash_known_values() -> None:
    java = {
        "zookeeper": 1600681804, "quota": 107953784, "config": -1354792126,
        "lock-0000000001": -864326685, "member_0000000042": 746595651,
        "Aa": 2112, "BB": 2112,  # the textbook collision
        "é\U0001D11E": 1996307,  # not ASCII: UTF-16 code units, a surrogate pair counts twice
        "x" * (FAST_HASH_CHARS_MAX + 1): -1638353800,  # past the fast path's length
        "ab" * 600: -910843816,
        "": 0,
    }
    assert {text: java_string_hash(text) for text in java} == java


@given(st.text(st.characters(max_codepoint=0x7F), max_size=40) | st.text(max_size=12))
def test_fast_hash_is_the_code_unit_polynomial(text: str) -> None:
    assert java_string_hash(text) == _hash_by_code_units(text)


def test_spread_hash_folds_the_high_half_into_the_low_bits() -> None:
    h = 1600681804  # "zookeeper"
    assert spread_hash("zookeeper") == h ^ (h >> 16)
    assert spread_hash("config") == (-1354792126 % (1 << 32)) ^ ((-1354792126 % (1 << 32)) >> 16)


# ---- DataNode children order ---------------------------------------------------------------

def _node_after(history: list[str]) -> DataNode:
    """A DataNode after "+name" (add), "-name" (remove) and "reload" steps."""
    node = DataNode(b"", OPEN_ACL_UNSAFE)
    for step in history:
        if step == "reload":
            order = node.list_children()
            node = DataNode(b"", OPEN_ACL_UNSAFE)
            for name in order:
                _add(node, name)
        elif step[0] == "+":
            _add(node, step[1:])
        else:
            node.remove_child(step[1:])
    return node


def _add(node: DataNode, name: str) -> None:
    if name not in node.children:
        node.add_child(name)


def test_children_capacity_starts_at_8_and_doubles_past_three_quarters() -> None:
    assert [children_capacity(n) for n in (0, 1, 6, 7, 12, 13, 24, 25, 96, 97, 98_304, 98_305)] == [
        8, 8, 8, 16, 16, 32, 32, 64, 128, 256, 131_072, 262_144]
    assert children_capacity(3, 256) == 256  # a set never shrinks


def test_children_listed_by_bucket_across_two_resizes() -> None:
    node = _node_after([f"+c{i}" for i in range(1, 21)])
    assert node.children_capacity == 32
    java = "c20 c11 c10 c13 c12 c15 c14 c17 c16 c19 c18 c1 c2 c3 c4 c5 c6 c7 c8 c9"
    assert " ".join(node.list_children()) == java


def test_colliding_names_keep_insertion_order_and_a_recreated_name_goes_last_in_its_bucket() -> None:
    names = ["Aa", "BB", "AaAa", "BBBB", "AaBB", "BBAa", "C#", "Bb", "b", "c", "d", "e", "f", "g"]
    history = [f"+{name}" for name in names]
    node = _node_after(history)
    assert node.children_capacity == 32
    assert " ".join(node.list_children()) == "Aa BB C# Bb b c d e f g AaAa BBBB AaBB BBAa"
    history += ["-Aa", "-AaBB", "-c"]
    assert " ".join(_node_after(history).list_children()) == "BB C# Bb b d e f g AaAa BBBB BBAa"
    history += ["+Aa", "+c", "+h"]
    node = _node_after(history)
    assert node.children_capacity == 32
    assert " ".join(node.list_children()) == "BB C# Bb Aa b c d e f g h AaAa BBBB BBAa"


def test_a_reloaded_set_is_sized_for_its_count_and_ordered_by_the_snapshot() -> None:
    history = [f"+node{i}" for i in range(100)] + [f"-node{i}" for i in range(100) if i % 10]
    node = _node_after(history)
    assert node.children_capacity == 256  # removals leave the table as it grew
    assert " ".join(node.list_children()) == "node50 node0 node60 node70 node80 node90 node10 node20 node30 node40"
    node = _node_after([*history, "reload"])
    assert node.children_capacity == 16
    assert " ".join(node.list_children()) == "node20 node10 node90 node80 node70 node0 node60 node50 node40 node30"


_NAMES = st.sampled_from(["Aa", "BB", "AaAa", "BBBB", "C#", *(f"n{i}" for i in range(40))])


@settings(max_examples=200)
@given(st.lists(st.tuples(st.sampled_from("+++-l"), _NAMES), max_size=150))
def test_listing_in_steps_equals_sorting_from_scratch(steps: list[tuple[str, str]]) -> None:
    """list_children reuses its last listing (placing new names, dropping removed ones); the
    result is the same as sorting the whole set by (bucket, insertion order)."""
    node = DataNode(b"", OPEN_ACL_UNSAFE)
    for op, name in steps:
        if op == "+":
            _add(node, name)
        elif op == "-":
            node.remove_child(name)
        else:
            listed = node.list_children()
            assert listed == hash_set_order(node.children, node.children_capacity)
    assert node.list_children() == hash_set_order(node.children, node.children_capacity)


def test_a_large_listing_copies_its_names_into_listing_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(node_module, "RELOCATED_NAMES_MIN", 4)
    rng = random.Random(7)
    node = _node_after([f"+c{i}" for i in range(1, 30)] + ["-c3", "-c17"])
    keys = list(node.children)
    listed = node.list_children()
    assert list(node.children) == keys  # the same names in the same (insertion) order
    assert listed == hash_set_order(keys, node.children_capacity)
    assert {id(name) for name in listed} == {id(name) for name in node.children}  # one copy each
    for _ in range(300):  # later edits, resizes (which list afresh) included
        name = f"c{rng.randrange(60)}"
        if rng.random() < 0.6:
            _add(node, name)
        else:
            node.remove_child(name)
        if rng.random() < 0.3:
            assert node.list_children() == hash_set_order(node.children, node.children_capacity)
    assert node.list_children() == hash_set_order(node.children, node.children_capacity)


def test_a_copy_lists_as_the_node_did_and_then_on_its_own() -> None:
    node = _node_after([f"+c{i}" for i in range(1, 12)])
    node.list_children()
    node.remove_child("c4")
    twin = node.copy()  # a snapshot's preimage: the node as it was
    _add(node, "c4")
    node.remove_child("c7")
    assert twin.list_children() == hash_set_order(twin.children, twin.children_capacity)
    assert "c4" not in twin.list_children() and "c7" in twin.list_children()
    assert node.list_children() == hash_set_order(node.children, node.children_capacity)
    _add(twin, "c99")
    assert twin.list_children() == hash_set_order(twin.children, twin.children_capacity)
    assert "c99" not in node.list_children()


def test_a_listed_order_is_not_changed_by_later_edits() -> None:
    node = _node_after([f"+c{i}" for i in range(1, 6)])
    first = node.list_children()
    kept = list(first)
    _add(node, "c9")
    node.remove_child("c1")
    assert node.list_children() != kept
    assert first == kept


# ---- DataTree ------------------------------------------------------------------------------

def _create(tree: DataTree, zxid: int, path: str) -> None:
    result = tree.apply(TxnHeader(1, zxid, zxid, 0, OpCode.CREATE), CreateTxn(path, b"", list(OPEN_ACL_UNSAFE), False, -1))
    assert result.err == 0


def _delete(tree: DataTree, zxid: int, path: str) -> None:
    assert tree.apply(TxnHeader(1, zxid, zxid, 0, OpCode.DELETE), DeleteTxn(path)).err == 0


def test_tree_lists_children_in_apaches_order_and_a_snapshot_reload_reorders_them() -> None:
    tree = DataTree()
    _create(tree, 1, "/p")
    for i in range(100):
        _create(tree, 2 + i, f"/p/node{i}")
    for i in range(100):
        if i % 10:
            _delete(tree, 200 + i, f"/p/node{i}")
    listed = "node50 node0 node60 node70 node80 node90 node10 node20 node30 node40"
    assert " ".join(tree.nodes["/p"].list_children()) == listed
    walked = [path for path, _ in tree.walk() if path.startswith("/p/")]
    assert " ".join(path[3:] for path in walked) == listed
    reloaded = DataTree()
    reloaded.bulk_load([(path, DataNode(node.data, node.acl)) for path, node in tree.walk()])
    assert reloaded.nodes["/p"].children_capacity == 16
    assert " ".join(reloaded.nodes["/p"].list_children()) == "node20 node10 node90 node80 node70 node0 node60 node50 node40 node30"


def test_fresh_tree_lists_zookeepers_children_as_apache() -> None:
    tree = DataTree()
    assert tree.nodes["/zookeeper"].list_children() == ["config", "quota"]  # added quota, then config
    _create(tree, 1, "/a")
    _create(tree, 2, "/b")
    assert tree.nodes["/"].list_children() == ["a", "b", "zookeeper"]
