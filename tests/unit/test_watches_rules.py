"""WatchManager: one-shot, persistent, recursive and delete-suppression rules (3.8 semantics)."""

from __future__ import annotations

from jute.codes import EventType
from pyzk.watches import WatchManager


class Conn:
    def __init__(self) -> None:
        self.events: list[tuple[int, str]] = []

    def send_event(self, event_type: int, path: str) -> None:
        self.events.append((event_type, path))


def test_standard_watch_fires_once() -> None:
    wm, c = WatchManager(), Conn()
    wm.add_data_watch("/a", c)
    wm.deliver([(EventType.NODE_DATA_CHANGED, "/a", ())])
    wm.deliver([(EventType.NODE_DATA_CHANGED, "/a", ())])
    assert c.events == [(EventType.NODE_DATA_CHANGED, "/a")]
    assert wm.watch_count == 0


def test_delete_tells_a_watcher_once_through_data_then_child_table() -> None:
    wm, c = WatchManager(), Conn()
    wm.add_data_watch("/a", c)
    wm.add_child_watch("/a", c)
    wm.deliver([(EventType.NODE_DELETED, "/a", ())])
    assert c.events == [(EventType.NODE_DELETED, "/a")]
    assert wm.watch_count == 0  # both one-shot entries are consumed


def test_persistent_watch_stays_and_sees_children_changes() -> None:
    wm, c = WatchManager(), Conn()
    wm.add_persistent("/a", c, recursive=False)
    wm.deliver([(EventType.NODE_DATA_CHANGED, "/a", ()), (EventType.NODE_CHILDREN_CHANGED, "/a", ()),
                (EventType.NODE_DATA_CHANGED, "/a", ())])
    assert len(c.events) == 3


def test_recursive_watch_covers_descendants_but_not_child_events() -> None:
    wm, c = WatchManager(), Conn()
    wm.add_persistent("/a", c, recursive=True)
    wm.deliver([(EventType.NODE_CREATED, "/a/b/c", ()), (EventType.NODE_CHILDREN_CHANGED, "/a/b", ()),
                (EventType.NODE_DATA_CHANGED, "/other", ())])
    assert c.events == [(EventType.NODE_CREATED, "/a/b/c")]


def test_standard_watch_on_parent_is_not_fired_by_child_paths() -> None:
    wm, c, r = WatchManager(), Conn(), Conn()
    wm.add_data_watch("/a", c)
    wm.add_persistent("/", r, recursive=True)  # makes the parent walk happen
    wm.deliver([(EventType.NODE_DATA_CHANGED, "/a/b", ())])
    assert c.events == [] and r.events == [(EventType.NODE_DATA_CHANGED, "/a/b")]


def test_removing_a_connection_drops_its_watches() -> None:
    wm, c = WatchManager(), Conn()
    wm.add_data_watch("/a", c)
    wm.add_persistent("/b", c, recursive=True)
    wm.remove_watcher(c)
    wm.deliver([(EventType.NODE_DATA_CHANGED, "/a", ()), (EventType.NODE_CREATED, "/b/x", ())])
    assert c.events == [] and wm.watch_count == 0
