"""Quota bookkeeping (DataTree's pTrie + updateQuotaStat, StatsTrack text).

Rule: quota limits are ordinary znodes `/zookeeper/quota<path>/zookeeper_limits` written by
clients; the `zookeeper_stats` sibling is maintained here, locally, on every change under a
quota root (as ZooKeeper 3.8 does: not through txns, and outside the digest).
"""

from __future__ import annotations

import weakref
from typing import Protocol

from pyzk.tree.node import DataNode


class NodeTable(Protocol):
    """What quota bookkeeping reads of the tree (a DataTree): its path -> node table, which a
    snapshot load replaces, so the tracker keeps the tree, not the dict."""

    nodes: dict[str, DataNode]

    def keep_preimage(self, path: str, node: DataNode | None) -> None:
        """Before a node changes in place (a running exact snapshot keeps its old state)."""
        ...

QUOTA_ROOT = "/zookeeper/quota"
LIMIT_NODE = "zookeeper_limits"
STAT_NODE = "zookeeper_stats"


def parse_stats(text: str) -> dict[str, int]:
    """StatsTrack(String): "count=N,bytes=M" plus optional "=;key=value" hard-limit pairs."""
    values: dict[str, int] = {}
    for part in text.replace(";", ",").split(","):
        if "=" not in part:
            continue
        key, _, value = part.partition("=")
        key = key.strip()
        value = value.strip().rstrip("=")
        if not key:
            continue
        try:
            values[key] = int(value)
        except ValueError:
            continue
    return values


def format_stats(values: dict[str, int]) -> str:
    """StatsTrack.toString: count and bytes first; any other keys as "=;k=v" sorted."""
    count = values.get("count", -1)
    nbytes = values.get("bytes", -1)
    text = f"count={count},bytes={nbytes}"
    extra = sorted(k for k in values if k not in ("count", "bytes"))
    if extra:
        text += "=" + "".join(f";{k}={values[k]}" for k in extra)
    return text


class QuotaTracker:
    def __init__(self, tree: NodeTable) -> None:
        # A weak reference: the tree owns its tracker, and with no cycle a tree the server
        # drops (a learner's SNAP) is freed by reference counting even when gc.freeze() put
        # it out of the cyclic collector's reach.
        self.tree = weakref.proxy(tree)
        self.roots: set[str] = set()  # paths with a zookeeper_limits node

    def max_prefix_with_quota(self, path: str) -> str | None:
        if not self.roots:
            return None
        best = None
        if path in self.roots:
            return path if path != "/" else None
        p = path
        while True:
            i = p.rfind("/")
            if i <= 0:
                break
            p = p[:i]
            if p in self.roots:
                best = p
                break
        return best

    def _update_stat(self, prefix: str, bytes_diff: int, count_diff: int) -> None:
        stat_path = f"{QUOTA_ROOT}{prefix}/{STAT_NODE}"
        node = self.tree.nodes.get(stat_path)
        if node is None:
            return
        values = parse_stats((node.data or b"").decode("utf-8", "replace"))
        values["count"] = values.get("count", 0) + count_diff
        values["bytes"] = values.get("bytes", 0) + bytes_diff
        self.tree.keep_preimage(stat_path, node)
        node.data = format_stats(values).encode()

    def _recount(self, prefix: str) -> None:
        """updateQuotaForPath: set the stats node from a full count of the subtree."""
        node = self.tree.nodes.get(prefix)
        stat_path = f"{QUOTA_ROOT}{prefix}/{STAT_NODE}"
        stat_node = self.tree.nodes.get(stat_path)
        if stat_node is None:
            return
        count = 0
        nbytes = 0
        if node is not None:
            stack = [prefix]
            while stack:
                p = stack.pop()
                n = self.tree.nodes.get(p)
                if n is None:
                    continue
                count += 1
                nbytes += len(n.data) if n.data else 0
                for name in n.children:
                    stack.append("/" + name if p == "/" else p + "/" + name)
        values = parse_stats((stat_node.data or b"").decode("utf-8", "replace"))
        values["count"] = count
        values["bytes"] = nbytes
        self.tree.keep_preimage(stat_path, stat_node)
        stat_node.data = format_stats(values).encode()

    def on_create(self, path: str, data: bytes | None) -> None:
        if path.startswith(QUOTA_ROOT + "/"):
            parent, _, name = path.rpartition("/")
            target = parent[len(QUOTA_ROOT):]
            if name == LIMIT_NODE:
                self.roots.add(target)
            elif name == STAT_NODE:
                self._recount(target)
        prefix = self.max_prefix_with_quota(path)
        if prefix is not None:
            self._update_stat(prefix, len(data) if data else 0, 1)

    def on_delete(self, path: str, data: bytes | None) -> None:
        if path.startswith(QUOTA_ROOT + "/"):
            parent, _, name = path.rpartition("/")
            if name == LIMIT_NODE:
                self.roots.discard(parent[len(QUOTA_ROOT):])
        prefix = self.max_prefix_with_quota(path)
        if prefix is not None:
            self._update_stat(prefix, -(len(data) if data else 0), -1)

    def on_set_data(self, path: str, old: bytes | None, new: bytes | None) -> None:
        prefix = self.max_prefix_with_quota(path)
        if prefix is not None:
            self._update_stat(prefix, (len(new) if new else 0) - (len(old) if old else 0), 0)

    def rebuild(self) -> None:
        """After loading a snapshot: find every limits node and recount (DataTree.setupQuota)."""
        self.roots.clear()
        for path in list(self.tree.nodes):
            if path.startswith(QUOTA_ROOT + "/") and path.endswith("/" + LIMIT_NODE):
                self.roots.add(path[len(QUOTA_ROOT): -len(LIMIT_NODE) - 1])
        for root in self.roots:
            self._recount(root)
