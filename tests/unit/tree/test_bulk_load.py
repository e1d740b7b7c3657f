"""DataTree.bulk_load (the snapshot loader's fast path) builds the tree the txn appliers build."""

from __future__ import annotations

import random

import pytest

from jute.codes import EPHEMERAL_OWNER_CONTAINER
from jute.data import OPEN_ACL_UNSAFE
from pyzk.tree.datatree import DataTree
from pyzk.tree.node import DataNode, ttl_owner


def _built_tree(seed: int) -> DataTree:
    """A tree grown by create_node/set_data, with every kind of owner and null data."""
    rng = random.Random(seed)
    tree = DataTree(extended_types_enabled=True)
    paths = ["/"]
    owners = [0, 0, 0, 0x1234, 0x5678, EPHEMERAL_OWNER_CONTAINER, ttl_owner(5000)]
    for zxid in range(1, 300):
        parent = rng.choice([p for p in paths if not tree.nodes[p].ephemeral_owner or p == "/"])
        path = ("" if parent == "/" else parent) + f"/n{zxid}"
        owner = rng.choice(owners)
        data = None if rng.random() < 0.1 else rng.randbytes(rng.randrange(0, 40))
        tree.create_node(path, data, OPEN_ACL_UNSAFE, owner, -1, zxid, 1000 + zxid, [])
        if owner == 0 or owner == EPHEMERAL_OWNER_CONTAINER:
            paths.append(path)
        if rng.random() < 0.2:
            tree.set_data(path, b"changed", 1, zxid, 2000 + zxid, [])
    return tree


def _copies(tree: DataTree) -> list[tuple[str, DataNode]]:
    copies = []
    for path, node in tree.walk():
        copy = DataNode(node.data, node.acl, node.czxid, node.mzxid, node.ctime, node.mtime,
                        node.version, node.cversion, node.aversion, node.ephemeral_owner, node.pzxid)
        copies.append((path, copy))
    return copies


@pytest.mark.parametrize("seed", range(5))
def test_bulk_load_rebuilds_links_indexes_and_digest(seed: int) -> None:
    built = _built_tree(seed)
    loaded = DataTree(extended_types_enabled=True)
    loaded.bulk_load(_copies(built))
    assert loaded.digest == built.digest
    assert loaded.digest == sum(loaded.node_digest(p, n) for p, n in loaded.nodes.items()) % (1 << 64)
    assert set(loaded.nodes) == set(built.nodes)
    for path, node in built.nodes.items():
        assert set(loaded.nodes[path].children) == set(node.children), path
    assert loaded.ephemerals == built.ephemerals
    assert set(loaded.containers) == set(built.containers)
    assert set(loaded.ttls) == set(built.ttls)


def test_bulk_load_without_digest_leaves_it_zero() -> None:
    built = _built_tree(7)
    loaded = DataTree(digest_enabled=False, extended_types_enabled=True)
    loaded.bulk_load(_copies(built))
    assert loaded.digest == 0
    assert set(loaded.nodes) == set(built.nodes)


@pytest.mark.parametrize("order", [["/", "/a/b", "/a"], ["/", "relative"], ["/a"]])
def test_bulk_load_refuses_a_node_before_its_parent(order: list[str]) -> None:
    tree = DataTree()
    with pytest.raises(ValueError):
        tree.bulk_load([(path, DataNode(b"", OPEN_ACL_UNSAFE)) for path in order])
