"""Runs a scenario against one server through kazoo and records everything it observes.

Rules:
1. Every step gets a record: its outcome (`("ok", value)` or `("error", exception class name)`)
   and the watch events each session received because of it.
2. Events are taken raw, in the connection's reader thread, before kazoo's own watcher
   bookkeeping can drop or merge any; after each step a `sync` round trip on every open session
   is the barrier: the server sends a notification before any later reply on that connection,
   so once the sync reply is read, every event caused by the step has been recorded.
3. Nothing is normalized here (raw session ids, zxids, times, absolute paths); normalize.py
   does that for the whole trace at once.
4. Every wait is bounded (`OP_TIMEOUT_S`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.serialization import Watch
from kazoo.security import (
    ACL,
    CREATOR_ALL_ACL,
    OPEN_ACL_UNSAFE,
    READ_ACL_UNSAFE,
    make_acl,
    make_digest_acl,
)

from tests.compat.differential import model, requests

OP_TIMEOUT_S = 10.0
SESSION_TIMEOUT_S = 10.0

RawEvent = tuple[int, int, str]  # (EventType, KeeperState, server path)
Outcome = tuple[str, Any]

ACLS: dict[str, list[ACL]] = {
    "open": list(OPEN_ACL_UNSAFE),
    "read_only": list(READ_ACL_UNSAFE),
    "creator_all": list(CREATOR_ALL_ACL),
    "alice_all": [make_digest_acl("alice", "pw", all=True)],
    "alice_all_world_read": [
        make_digest_acl("alice", "pw", all=True),
        make_acl("world", "anyone", read=True),
    ],
    "world_create_read": [make_acl("world", "anyone", create=True, read=True)],
    "ip_loopback": [make_acl("ip", "127.0.0.1", all=True)],
    "ip_elsewhere": [make_acl("ip", "10.0.0.0/8", all=True)],
    "world_bad_id": [make_acl("world", "bob", all=True)],
    "empty": [],
}
CREATE_FLAGS: dict[str, int] = {
    "persistent": 0,
    "ephemeral": 1,
    "persistent_sequential": 2,
    "ephemeral_sequential": 3,
    "container": 4,
    "ttl": 5,
    "persistent_sequential_ttl": 6,
}

quiet_kazoo_logger = logging.getLogger("pyzk.differential.kazoo")
quiet_kazoo_logger.setLevel(logging.ERROR)


@dataclass
class StepRecord:
    outcome: Outcome
    events: dict[int, list[RawEvent]]  # session ordinal -> events, in arrival order


@dataclass
class RawTrace:
    """What one server showed for one scenario, unnormalized."""

    sandbox: str  # the random top-level node every path of the run lies under
    session_ids: list[int] = field(default_factory=list)  # index = session ordinal
    setup: StepRecord | None = None
    records: list[StepRecord] = field(default_factory=list)
    teardown: StepRecord | None = None
    final_tree: list[Any] = field(default_factory=list)
    window_ms: tuple[int, int] = (0, 0)


def _wait(async_result: Any) -> Any:
    return async_result.get(timeout=OP_TIMEOUT_S)


class Session:
    """One kazoo session whose watch notifications are recorded as the server sent them."""

    def __init__(self, hosts: str, ordinal: int) -> None:
        self.ordinal = ordinal
        self.events: list[RawEvent] = []
        self.client = KazooClient(hosts=hosts, timeout=SESSION_TIMEOUT_S, logger=quiet_kazoo_logger)
        connection = self.client._connection
        deliver = connection._read_watch_event

        def record_then_deliver(buffer: bytes, offset: int) -> None:
            watch, _ = Watch.deserialize(buffer, offset)
            self.events.append((watch.type, watch.state, watch.path))
            deliver(buffer, offset)

        connection._read_watch_event = record_then_deliver
        self.client.start(timeout=OP_TIMEOUT_S)
        self.session_id = int(self.client.client_id[0])

    def call(self, request: Any) -> Any:
        async_result = self.client.handler.async_result()
        self.client._call(request, async_result)
        return _wait(async_result)

    def take_events(self) -> list[RawEvent]:
        taken = self.events[:]
        del self.events[: len(taken)]
        return taken

    def barrier(self) -> None:
        _wait(self.client.sync_async("/"))

    def close(self) -> None:
        self.client.stop()
        self.client.close()


def _no_watch(event: Any) -> None:
    """Placeholder watcher: kazoo needs a callable to send watch=true; events are taken raw."""


def _children(session: Session, path: str, watch: Any, with_stat: bool) -> Any:
    """getChildren(2) as listed: pyzk lists children in Apache's (hash-set) order."""
    result = _wait(session.client.get_children_async(path, watch, include_data=with_stat))
    if with_stat:
        children, stat = result
        return (list(children), stat)
    return list(result)


class Execution:
    """The scenario's sessions on one server, inside one fresh sandbox node.

    The scenario's relative paths live under `<sandbox>/n` (the relative path "" is that node
    itself), so that even a sequential create of "" stays inside the sandbox.
    """

    def __init__(self, hosts: str, sandbox: str) -> None:
        self.hosts = hosts
        self.sandbox = sandbox
        self.base = sandbox + "/n"
        self.trace = RawTrace(sandbox=sandbox)
        self.sessions: list[Session] = []
        self.last_created = self.base + "/a"
        self.handlers: dict[type, Callable[[Any, Session], Any]] = {
            model.Create: self._create,
            model.Delete: lambda s, c: _wait(c.client.delete_async(self.path(s.path), s.version)),
            model.SetData: lambda s, c: _wait(
                c.client.set_async(self.path(s.path), s.data, s.version)
            ),
            model.GetData: lambda s, c: _wait(
                c.client.get_async(self.path(s.path), _no_watch if s.watch else None)
            ),
            model.Exists: lambda s, c: _wait(
                c.client.exists_async(self.path(s.path), _no_watch if s.watch else None)
            ),
            model.GetChildren: self._get_children,
            model.GetAcl: lambda s, c: _wait(c.client.get_acls_async(self.path(s.path))),
            model.SetAcl: lambda s, c: _wait(
                c.client.set_acls_async(self.path(s.path), ACLS[s.acl], s.version)
            ),
            model.AddAuth: lambda s, c: _wait(c.client.add_auth_async("digest", s.credential)),
            model.Sync: lambda s, c: _wait(c.client.sync_async(self.path(s.path))),
            model.AddWatch: lambda s, c: c.call(
                requests.AddWatch(self.path(s.path), 1 if s.recursive else 0)
            ),
            model.CheckWatches: lambda s, c: c.call(
                requests.CheckWatches(self.path(s.path), model.WATCHER_TYPES[s.watcher_type])
            ),
            model.RemoveWatches: lambda s, c: c.call(
                requests.RemoveWatches(self.path(s.path), model.WATCHER_TYPES[s.watcher_type])
            ),
            model.GetAllChildrenNumber: lambda s, c: c.call(
                requests.GetAllChildrenNumber(self.path(s.path))
            ),
            # getEphemerals lists a clone of the session's HashSet: hash order, not modelled.
            model.GetEphemerals: lambda s, c: sorted(
                c.call(requests.GetEphemerals(self.path(s.path)))
            ),
            model.WhoAmI: lambda s, c: c.call(requests.WhoAmI()),
            model.Multi: self._multi,
        }

    # -- paths and sessions -------------------------------------------------------------------

    def path(self, relative: str) -> str:
        if relative == model.LAST_CREATED:
            return self.last_created
        return self.base + ("/" + relative if relative else "")

    def _open_session(self) -> Session:
        session = Session(self.hosts, ordinal=len(self.trace.session_ids))
        self.trace.session_ids.append(session.session_id)
        return session

    def _barrier_and_collect(self, extra: dict[int, list[RawEvent]]) -> dict[int, list[RawEvent]]:
        events = dict(extra)
        for session in self.sessions:
            session.barrier()
        for session in self.sessions:
            taken = session.take_events()
            if taken:
                events.setdefault(session.ordinal, []).extend(taken)
        return events

    # -- the run --------------------------------------------------------------------------------

    def run(self, scenario: model.Scenario) -> RawTrace:
        start_ms = int(time.time() * 1000)
        try:
            self.sessions = [self._open_session() for _ in range(scenario.session_count)]
            creator = self.sessions[0].client
            initial_paths = [self.sandbox, self.base, *map(self.path, model.INITIAL_NODES)]
            setup = self._outcome(
                lambda: [_wait(creator.create_async(path, b"")) for path in initial_paths]
            )
            self.trace.setup = StepRecord(setup, self._barrier_and_collect({}))
            for step in scenario.steps:
                self.trace.records.append(self._run_step(step))
            self.trace.teardown = self._close_all()
            self.trace.final_tree = self._final_tree()
        except KazooTimeoutError:
            # A server that stops answering ends the run here; the comparator shows where.
            self.trace.records.append(StepRecord(("timeout", OP_TIMEOUT_S), {}))
        finally:
            for session in self.sessions:
                session.close()
            self.sessions = []
        self.trace.window_ms = (start_ms, int(time.time() * 1000))
        return self.trace

    def _run_step(self, step: model.Step) -> StepRecord:
        if isinstance(step, model.RestartSession):
            old = self.sessions[step.session]
            old.close()
            closed_events = {old.ordinal: old.take_events()} if old.events else {}
            self.sessions[step.session] = self._open_session()
            return StepRecord(("ok", True), self._barrier_and_collect(closed_events))
        session = self.sessions[step.session]
        handler = self.handlers[type(step)]
        outcome = self._outcome(lambda: handler(step, session))
        return StepRecord(outcome, self._barrier_and_collect({}))

    def _close_all(self) -> StepRecord:
        """Close the sessions one by one so the others see the ephemerals vanish."""
        events: dict[int, list[RawEvent]] = {}
        while self.sessions:
            closing = self.sessions.pop(0)
            closing.close()
            if closing.events:
                events.setdefault(closing.ordinal, []).extend(closing.take_events())
            events = self._barrier_and_collect(events)
        return StepRecord(("ok", True), events)

    def _final_tree(self) -> list[Any]:
        """Every node in the sandbox as (path, getData, getACL, getChildren2 outcomes), sorted."""
        observer = Session(self.hosts, ordinal=-1)
        try:
            nodes: list[Any] = []
            pending = [self.sandbox]
            while pending:
                path = pending.pop()
                node = self._describe_node(observer, path)
                nodes.append(node)
                children = node[3]
                if children[0] == "ok":
                    pending.extend(f"{path}/{child}" for child in children[1][0])
            return sorted(nodes, key=lambda node: node[0])
        finally:
            observer.close()

    def _describe_node(self, observer: Session, path: str) -> tuple[str, Outcome, Outcome, Outcome]:
        client = observer.client
        return (
            path,
            self._outcome(lambda: _wait(client.get_async(path))),
            self._outcome(lambda: _wait(client.get_acls_async(path))),
            self._outcome(lambda: _children(observer, path, None, True)),
        )

    @staticmethod
    def _outcome(action: Callable[[], Any]) -> Outcome:
        try:
            return ("ok", action())
        except (KazooException, TypeError, ValueError) as error:
            return ("error", type(error).__name__)

    # -- individual operations ------------------------------------------------------------------

    def _create(self, step: model.Create, session: Session) -> Any:
        path = self.path(step.path)
        acl = ACLS[step.acl]
        flags = CREATE_FLAGS[step.mode]
        if step.mode == "container":
            result = session.call(requests.CreateContainer(path, step.data, acl, flags))
        elif step.mode in model.TTL_MODES:
            result = session.call(requests.create_ttl(path, step.data, acl, flags, step.ttl_ms))
        else:
            result = _wait(
                session.client.create_async(
                    path,
                    step.data,
                    acl,
                    ephemeral=bool(flags & 1),
                    sequence=bool(flags & 2),
                    include_data=step.with_stat,
                )
            )
        self.last_created = result[0] if isinstance(result, tuple) else result
        return result

    def _get_children(self, step: model.GetChildren, session: Session) -> Any:
        watch = _no_watch if step.watch else None
        return _children(session, self.path(step.path), watch, step.with_stat)

    def _multi(self, step: model.Multi, session: Session) -> Any:
        transaction = session.client.transaction()
        for op in step.ops:
            path = self.path(op.path)
            if isinstance(op, model.MultiCreate):
                flags = CREATE_FLAGS[op.mode]
                transaction.create(
                    path, op.data, ACLS[op.acl], ephemeral=bool(flags & 1), sequence=bool(flags & 2)
                )
            elif isinstance(op, model.MultiDelete):
                transaction.delete(path, op.version)
            elif isinstance(op, model.MultiSetData):
                transaction.set_data(path, op.data, op.version)
            else:
                transaction.check(path, op.version)
        results = _wait(transaction.commit_async())
        shown = []
        for op, result in zip(step.ops, results, strict=False):
            if isinstance(result, Exception):
                shown.append(("error", type(result).__name__))
                continue
            if isinstance(op, model.MultiCreate):
                self.last_created = result
            shown.append(("ok", result))
        return shown
