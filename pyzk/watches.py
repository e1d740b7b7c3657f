"""WatchManager: who is told about which change (ZooKeeper 3.8 WatchManager semantics).

Rule 1: two tables, data and child; each maps path -> {watcher: mode}. A later watch on the
        same (watcher, path, table) replaces the earlier mode, as 3.8's WatcherModeManager does.
Rule 2: STANDARD watches fire once and are removed; PERSISTENT ones stay. Both persistent modes
        are registered in both tables (3.8 DataTree.addWatch); PERSISTENT_RECURSIVE fires for
        the path and every descendant, and never for NodeChildrenChanged.
Rule 3: one trigger notifies each watcher at most once; NodeDeleted goes through the data
        table first and the child table then skips watchers already told (DataTree.deleteNode).
Rule 4: a watcher is any hashable object with `send_event(type, path)` — the client connection.
        Delivery happens synchronously inside trigger, so the notification is queued on the
        connection before the reply of the write that caused it.
Rule 5: a matched watcher is told only if `may_read(watcher, acl)` allows it, acl being the
        ACL of the node the event is about (ServerCnxn.process with the CVE-2024-23944 fix,
        which the 3.8 oracle carries). A filtered watcher still counts as told: a one-shot
        watch is consumed and NodeDeleted is not retried through the child table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from enum import IntEnum
from typing import Any, Protocol

from jute.codes import EventType
from jute.data import ACL

ReadCheck = Callable[[Any, Sequence[ACL]], bool]


class WatcherMode(IntEnum):
    STANDARD = 0
    PERSISTENT = 1
    PERSISTENT_RECURSIVE = 2


class Watcher(Protocol):
    def send_event(self, event_type: int, path: str) -> None: ...


class WatchTable:
    """One table (data or child): path -> {watcher: mode}, plus watcher -> {path}."""

    def __init__(self) -> None:
        self.by_path: dict[str, dict[Any, WatcherMode]] = {}
        self.by_watcher: dict[Any, dict[str, None]] = {}
        self.recursive_count = 0

    def add(self, path: str, watcher: Any, mode: WatcherMode) -> None:
        watchers = self.by_path.setdefault(path, {})
        old = watchers.get(watcher)
        if old is WatcherMode.PERSISTENT_RECURSIVE:
            self.recursive_count -= 1
        watchers[watcher] = mode
        if mode is WatcherMode.PERSISTENT_RECURSIVE:
            self.recursive_count += 1
        self.by_watcher.setdefault(watcher, {})[path] = None

    def is_watched(self, path: str) -> bool:
        """checkWatches' test (3.8 WatchManager.containsWatcher): does anyone watch path?

        ZooKeeper 3.8 answers for any connection's watch on the path, not only the asking
        one's (verified against 3.8.0); a recursive watch on an ancestor does not count.
        """
        return bool(self.by_path.get(path))

    def remove(self, path: str, watcher: Any) -> bool:
        paths = self.by_watcher.get(watcher)
        if paths is None or path not in paths:
            return False
        del paths[path]
        if not paths:
            del self.by_watcher[watcher]
        watchers = self.by_path.get(path)
        if watchers is None or watcher not in watchers:
            return False
        if watchers.pop(watcher) is WatcherMode.PERSISTENT_RECURSIVE:
            self.recursive_count -= 1
        if not watchers:
            del self.by_path[path]
        return True

    def remove_watcher(self, watcher: Any) -> None:
        for path in list(self.by_watcher.get(watcher, ())):
            self.remove(path, watcher)

    def trigger(self, path: str, event_type: int, acl: Sequence[ACL] = (), may_read: ReadCheck | None = None,
                suppress: Iterable[Any] | None = None) -> dict[Any, None]:
        """Fire event_type on path; returns the watchers that matched (notified or not)."""
        matched: dict[Any, None] = {}
        for local_path, at_parent in self._paths_for(path):
            watchers = self.by_path.get(local_path)
            if not watchers:
                continue
            for watcher, mode in list(watchers.items()):
                if mode is WatcherMode.PERSISTENT_RECURSIVE:
                    if event_type != EventType.NODE_CHILDREN_CHANGED:
                        matched[watcher] = None
                elif not at_parent:
                    matched[watcher] = None
                    if mode is WatcherMode.STANDARD:
                        del watchers[watcher]
                        paths = self.by_watcher.get(watcher)
                        if paths is not None:
                            paths.pop(local_path, None)
                            if not paths:
                                del self.by_watcher[watcher]
            if not watchers:
                del self.by_path[local_path]
        skip = suppress if suppress is not None else ()
        for watcher in matched:
            if watcher not in skip and (may_read is None or may_read(watcher, acl)):
                watcher.send_event(event_type, path)
        return matched

    def _paths_for(self, path: str) -> Iterable[tuple[str, bool]]:
        yield path, False
        if self.recursive_count <= 0:
            return
        p = path
        while p != "/":
            i = p.rfind("/")
            p = p[:i] if i > 0 else "/"
            yield p, True

    @property
    def watch_count(self) -> int:
        return sum(len(w) for w in self.by_path.values())


class WatchManager:
    def __init__(self, may_read: ReadCheck | None = None) -> None:
        self.data = WatchTable()
        self.child = WatchTable()
        self.may_read = may_read

    def add_data_watch(self, path: str, watcher: Any) -> None:
        self.data.add(path, watcher, WatcherMode.STANDARD)

    def add_child_watch(self, path: str, watcher: Any) -> None:
        self.child.add(path, watcher, WatcherMode.STANDARD)

    def add_persistent(self, path: str, watcher: Any, recursive: bool) -> None:
        mode = WatcherMode.PERSISTENT_RECURSIVE if recursive else WatcherMode.PERSISTENT
        self.data.add(path, watcher, mode)
        self.child.add(path, watcher, mode)

    def deliver(self, events: Iterable[tuple[EventType, str, Sequence[ACL]]]) -> None:
        """Deliver the watch events an applied txn produced, in order."""
        data_paths, child_paths = self.data.by_path, self.child.by_path
        if not data_paths and not child_paths:
            return  # nobody watches anything: the common case on a write-heavy server
        # Without recursive watches an event only concerns watchers of its own path.
        exact = self.data.recursive_count <= 0 and self.child.recursive_count <= 0
        may_read = self.may_read
        for event_type, path, acl in events:
            if exact and path not in data_paths and path not in child_paths:
                continue
            if event_type == EventType.NODE_DELETED:
                told = self.data.trigger(path, event_type, acl, may_read)
                self.child.trigger(path, event_type, acl, may_read, told)
            elif event_type == EventType.NODE_CHILDREN_CHANGED:
                self.child.trigger(path, event_type, acl, may_read)
            else:
                self.data.trigger(path, event_type, acl, may_read)

    def remove_watcher(self, watcher: Any) -> None:
        self.data.remove_watcher(watcher)
        self.child.remove_watcher(watcher)

    @property
    def watch_count(self) -> int:
        return self.data.watch_count + self.child.watch_count
