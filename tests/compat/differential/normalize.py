"""Turns a raw trace into values that must be equal between two correct servers.

Rule: mask only what naturally differs, and keep every relation that must not differ.
- zxids (czxid, mzxid, pzxid) become their rank among all zxids seen in the trace (`z1`, `z2`
  ...), so "created together", "modified later than", "pzxid moved" are still compared;
- ephemeralOwner becomes the owning session's ordinal (`session#1`), 0 stays 0;
- ctime/mtime become `in-window` when they lie inside the run's wall-clock window (a bogus
  time stays raw and so shows up as a difference);
- paths lose the example's random sandbox prefix (`~/n/a/b`);
- Stats and ACLs become dicts so that a difference names its field.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kazoo.protocol.states import ZnodeStat
from kazoo.security import ACL

from tests.compat.differential.executor import RawTrace, StepRecord

TIME_SLACK_MS = 5_000
ZXID_FIELDS = ("czxid", "mzxid", "pzxid")
TIME_FIELDS = ("ctime", "mtime")
EVENT_TYPE_NAMES = {
    -1: "None",
    1: "NodeCreated",
    2: "NodeDeleted",
    3: "NodeDataChanged",
    4: "NodeChildrenChanged",
}


def _stats_in(value: Any) -> Iterator[ZnodeStat]:
    if isinstance(value, ZnodeStat):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _stats_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _stats_in(item)


def session_label(ordinal: int) -> str:
    return f"session#{ordinal}"


class Normalizer:
    def __init__(self, trace: RawTrace) -> None:
        self.sandbox = trace.sandbox
        self.window_ms = trace.window_ms
        self.session_ordinals = {sid: index for index, sid in enumerate(trace.session_ids)}
        zxids = sorted(
            {getattr(stat, name) for stat in _stats_in(_outcomes_of(trace)) for name in ZXID_FIELDS}
            - {0}
        )
        self.zxid_ranks = {zxid: f"z{rank}" for rank, zxid in enumerate(zxids, start=1)}

    def path(self, text: str) -> str:
        # The sandbox name is random, so any string starting with it is one of its paths
        # (sequential siblings like `<sandbox>/n0000000001` included).
        if text.startswith(self.sandbox):
            return "~" + text[len(self.sandbox) :]
        return text

    def stat(self, stat: ZnodeStat) -> dict[str, Any]:
        shown: dict[str, Any] = {}
        for name, value in zip(ZnodeStat._fields, stat, strict=True):
            if name in ZXID_FIELDS:
                shown[name] = self.zxid_ranks.get(value, value)
            elif name in TIME_FIELDS:
                low, high = self.window_ms
                inside = low - TIME_SLACK_MS <= value <= high + TIME_SLACK_MS
                shown[name] = "in-window" if inside else value
            elif name == "ephemeralOwner":
                shown[name] = self.owner(value)
            else:
                shown[name] = value
        return shown

    def owner(self, session_id: int) -> Any:
        if session_id == 0:
            return 0
        if session_id in self.session_ordinals:
            return session_label(self.session_ordinals[session_id])
        return f"foreign:{session_id:#x}"

    def value(self, value: Any) -> Any:
        if isinstance(value, ZnodeStat):
            return self.stat(value)
        if isinstance(value, ACL):
            return {"perms": value.perms, "scheme": value.id.scheme, "id": value.id.id}
        if isinstance(value, (list, tuple)):
            return [self.value(item) for item in value]
        if isinstance(value, dict):
            return {key: self.value(item) for key, item in value.items()}
        if isinstance(value, str):
            return self.path(value)
        return value

    def record(self, record: StepRecord | None) -> Any:
        if record is None:
            return None
        return {
            "outcome": self.value(record.outcome),
            "events": {
                session_label(ordinal): [
                    {
                        "type": EVENT_TYPE_NAMES.get(event_type, event_type),
                        "state": state,
                        "path": self.path(path),
                    }
                    for event_type, state, path in events
                ]
                for ordinal, events in sorted(record.events.items())
            },
        }


def _outcomes_of(trace: RawTrace) -> list[Any]:
    records = [trace.setup, *trace.records, trace.teardown]
    return [record.outcome for record in records if record is not None] + [trace.final_tree]


def normalize(trace: RawTrace) -> dict[str, Any]:
    """The comparable form: {"setup", "steps" (one per scenario step), "teardown", "final_tree"}."""
    normalizer = Normalizer(trace)
    return {
        "setup": normalizer.record(trace.setup),
        "steps": [normalizer.record(record) for record in trace.records],
        "teardown": normalizer.record(trace.teardown),
        "final_tree": normalizer.value(trace.final_tree),
    }
