"""The commit-stage interface: every role's stage is a CommitStage, and the standalone stage's
rules hold without an event loop or a thread (the shell only injects `spawn` and `sync`)."""

from __future__ import annotations

from collections.abc import Coroutine, Generator
from types import SimpleNamespace
from typing import Any

from pyzk.config import parse_config
from pyzk.pipeline.commit import Barrier, CommitStage, ForwardingStage
from pyzk.pipeline.commit.follower import FollowerCommit
from pyzk.pipeline.commit.leader import LeaderCommit
from pyzk.pipeline.commit.readonly import ReadOnlyCommit
from pyzk.pipeline.commit.standalone import GroupCommit
from pyzk.pipeline.readonly import ReadOnlyZooKeeperServer
from pyzk.pipeline.zkserver import ZooKeeperServer
from pyzk.storage.errors import StorageError
from pyzk.tree.datatree import DataTree

CONFIG = parse_config("tickTime=2000\ndataDir=/tmp/unused\nclientPort=2181\n")


def txn(zxid: int) -> SimpleNamespace:
    """What the stage reads of a Prepared: its header's zxid."""
    return SimpleNamespace(hdr=SimpleNamespace(zxid=zxid))


class Fsync:
    """What `sync` returns: awaitable, done when the test says so (or failed)."""

    def __init__(self) -> None:
        self.done = False
        self.error: Exception | None = None

    def __await__(self) -> Generator[Fsync, None, None]:
        while not self.done:
            yield self
        if self.error is not None:
            raise self.error


class ManualLoop:
    """Runs the drain coroutine by hand: spawn() keeps it, step() resumes it once."""

    def __init__(self) -> None:
        self.tasks: list[Coroutine[Any, Any, None]] = []

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        self.tasks.append(coro)

    def step(self) -> None:
        for coro in list(self.tasks):
            try:
                coro.send(None)
            except StopIteration:
                self.tasks.remove(coro)


class Log:
    def __init__(self, events: list[str]) -> None:
        self.events = events
        self.fsyncs: list[Fsync] = []

    def append(self, entry: bytes, zxid: int) -> None:
        self.events.append(f"append {zxid}")

    def commit(self) -> None:  # the shell runs it on its log thread; never called here
        raise AssertionError("GroupCommit must not call the log's commit itself")

    def sync(self) -> Fsync:
        self.events.append(f"fsync {len(self.fsyncs) + 1}")
        self.fsyncs.append(Fsync())
        return self.fsyncs[-1]


def group_commit() -> tuple[list[str], Log, ManualLoop, GroupCommit]:
    events: list[str] = []
    log = Log(events)
    loop = ManualLoop()
    commit = GroupCommit(log, lambda item: b"entry", lambda item: events.append(f"apply {item.hdr.zxid}"),
                         spawn=loop.spawn, sync=log.sync)
    return events, log, loop, commit


class StandInDriver:
    def __init__(self) -> None:
        self.peer = self


def test_every_roles_stage_is_a_commit_stage() -> None:
    _events, _log, _loop, standalone = group_commit()
    server = ZooKeeperServer(CONFIG, DataTree(), now_ms=lambda: 1000, wall_ms=lambda: 5)
    leader = LeaderCommit(server, StandInDriver(), 1 << 32)  # type: ignore[arg-type]
    follower = FollowerCommit(server, StandInDriver(), 1)  # type: ignore[arg-type]
    read_only = ReadOnlyZooKeeperServer(CONFIG, DataTree(), now_ms=lambda: 1000, wall_ms=lambda: 5).commit
    assert isinstance(read_only, ReadOnlyCommit)
    for stage in (standalone, leader, follower, read_only):
        assert isinstance(stage, CommitStage)
        assert stage.queued == 0
    assert isinstance(follower, ForwardingStage)
    assert not any(isinstance(stage, ForwardingStage) for stage in (standalone, leader, read_only))


def test_group_commit_applies_after_the_fsync_and_overlaps_the_next_one() -> None:
    events, log, loop, commit = group_commit()
    commit.submit(txn(1))
    commit.submit(Barrier(lambda: events.append("barrier")))
    assert events == [] and commit.queued == 2  # nothing happens until the drain runs
    loop.step()
    assert events == ["append 1", "fsync 1"]
    commit.submit(txn(2))
    commit.submit(txn(3))
    loop.step()
    assert events == ["append 1", "fsync 1"]  # still waiting for its fsync
    log.fsyncs[0].done = True
    loop.step()
    # Batch 2 went to the log before batch 1 was applied; the barrier completes after txn 1.
    assert events == ["append 1", "fsync 1", "append 2", "append 3", "fsync 2", "apply 1", "barrier"]
    log.fsyncs[1].done = True
    loop.step()
    assert events[-2:] == ["apply 2", "apply 3"] and loop.tasks == [] and commit.queued == 0


def test_group_commit_stops_on_a_failed_fsync_and_applies_nothing_of_that_batch() -> None:
    events, log, loop, commit = group_commit()
    fatal: list[bool] = []
    commit.on_fatal = lambda: fatal.append(True)
    commit.submit(txn(1))
    loop.step()
    log.fsyncs[0].done = True
    log.fsyncs[0].error = StorageError("disk on fire")
    loop.step()
    assert fatal == [True] and commit.failed == "disk on fire" and "apply 1" not in events
    commit.submit(txn(2))  # refused once failed
    assert commit.queued == 0 and loop.tasks == []


def test_the_read_only_stage_applies_nothing() -> None:
    applied: list[Any] = []
    stage = ReadOnlyCommit()
    stage.submit(Barrier(lambda: applied.append(True)))
    assert applied == [] and stage.queued == 0
