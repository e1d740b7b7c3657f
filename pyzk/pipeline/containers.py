"""Which containers and TTL nodes are due for deletion (ContainerManager.getCandidates).

Rule: a container qualifies when it has no children and its stored cversion > 0 (it once had
a child), or, if znode.container.maxNeverUsedIntervalMs > 0, when it never had one and is
older than that; a TTL node qualifies when it has no children and now - mtime > ttl. The
deletion itself is an ordinary deleteContainer txn that prep checks again.
"""

from __future__ import annotations

from pyzk.tree.datatree import DataTree
from pyzk.tree.node import is_ttl_owner, ttl_of_owner


def container_candidates(tree: DataTree, now_wall_ms: int, max_never_used_ms: int = 0) -> list[str]:
    out: list[str] = []
    for path in list(tree.containers):
        node = tree.nodes.get(path)
        if node is None or node.children:
            continue
        if node.cversion > 0 or (max_never_used_ms and now_wall_ms - node.mtime > max_never_used_ms):
            out.append(path)
    for path in list(tree.ttls):
        node = tree.nodes.get(path)
        if node is None or node.children or not is_ttl_owner(node.ephemeral_owner, tree.extended_types_enabled):
            continue
        ttl = ttl_of_owner(node.ephemeral_owner)
        if ttl and now_wall_ms - node.mtime > ttl:
            out.append(path)
    return out
