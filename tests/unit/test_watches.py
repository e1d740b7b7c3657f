"""WatchManager: the 3.8 WatchManager rules that decide who is told and what checkWatches says."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jute.codes import EventType, Perms
from jute.data import ACL, OPEN_ACL_UNSAFE, Id
from pyzk.watches import WatchManager

OPEN = tuple(OPEN_ACL_UNSAFE)
ALICE_ONLY = (ACL(Perms.ALL, Id("digest", "alice:hash")),)


class Recorder:
    def __init__(self, name: str) -> None:
        self.name = name
        self.events: list[tuple[int, str]] = []

    def send_event(self, event_type: int, path: str) -> None:
        self.events.append((event_type, path))


def test_recursive_watch_is_registered_in_both_tables() -> None:
    watches = WatchManager()
    a = Recorder("a")
    watches.add_persistent("/q", a, recursive=True)
    assert watches.data.is_watched("/q")
    assert watches.child.is_watched("/q")
    assert watches.child.remove("/q", a)
    assert watches.data.remove("/q", a)


def test_standard_data_watch_replaces_recursive_mode_in_data_table_only() -> None:
    # getData -w after addWatch PERSISTENT_RECURSIVE: removing the data watch leaves the
    # child-table copy, so removeWatches(ANY) still finds one (verified against 3.8.0).
    watches = WatchManager()
    a = Recorder("a")
    watches.add_persistent("/q", a, recursive=True)
    watches.add_data_watch("/q", a)
    assert watches.data.remove("/q", a)
    assert not watches.data.remove("/q", a)
    assert watches.child.remove("/q", a)


def test_child_table_recursive_copy_reports_descendant_delete() -> None:
    watches = WatchManager()
    a = Recorder("a")
    watches.add_persistent("/q", a, recursive=True)
    watches.add_data_watch("/q", a)  # the data table no longer holds the recursive mode
    watches.deliver([(EventType.NODE_DELETED, "/q/d", OPEN), (EventType.NODE_CHILDREN_CHANGED, "/q", OPEN)])
    assert a.events == [(EventType.NODE_DELETED, "/q/d")]


def test_delete_tells_a_watcher_once() -> None:
    watches = WatchManager()
    a = Recorder("a")
    watches.add_persistent("/q", a, recursive=True)
    watches.deliver([(EventType.NODE_DELETED, "/q/d", OPEN)])
    assert a.events == [(EventType.NODE_DELETED, "/q/d")]


def test_is_watched_answers_for_any_connection() -> None:
    watches = WatchManager()
    a = Recorder("a")
    watches.add_data_watch("/x", a)
    assert watches.data.is_watched("/x")
    assert not watches.child.is_watched("/x")
    assert not watches.data.is_watched("/x/y")


def test_standard_watch_fires_once_and_is_forgotten() -> None:
    watches = WatchManager()
    a = Recorder("a")
    watches.add_data_watch("/x", a)
    watches.deliver([(EventType.NODE_DATA_CHANGED, "/x", OPEN)])
    watches.deliver([(EventType.NODE_DATA_CHANGED, "/x", OPEN)])
    assert a.events == [(EventType.NODE_DATA_CHANGED, "/x")]
    assert not watches.data.is_watched("/x")
    assert watches.watch_count == 0


def _readers(*names: str) -> Any:
    """A may_read that lets the named watchers read ALICE_ONLY nodes and anyone read OPEN ones."""

    def may_read(watcher: Recorder, acl: Sequence[ACL]) -> bool:
        return tuple(acl) != ALICE_ONLY or watcher.name in names

    return may_read


def test_event_on_unreadable_node_is_not_delivered() -> None:
    # CVE-2024-23944: a recursive watch on /b must not reveal /b/secret (verified on the oracle).
    watches = WatchManager(may_read=_readers("alice"))
    a, alice = Recorder("a"), Recorder("alice")
    watches.add_persistent("/b", a, recursive=True)
    watches.add_persistent("/b", alice, recursive=True)
    watches.deliver([(EventType.NODE_CREATED, "/b/secret", ALICE_ONLY), (EventType.NODE_CREATED, "/b/open", OPEN)])
    assert a.events == [(EventType.NODE_CREATED, "/b/open")]
    assert alice.events == [(EventType.NODE_CREATED, "/b/secret"), (EventType.NODE_CREATED, "/b/open")]


def test_filtered_one_shot_watch_is_consumed_and_not_retried_as_child_watch() -> None:
    watches = WatchManager(may_read=_readers())
    a = Recorder("a")
    watches.add_data_watch("/s", a)
    watches.add_child_watch("/s", a)
    watches.deliver([(EventType.NODE_DELETED, "/s", ALICE_ONLY)])
    assert a.events == []
    assert watches.watch_count == 0
