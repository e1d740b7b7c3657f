"""StandaloneCommit: group commit, apply only after the covering fsync, overlap, failure."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

from pyzk.pipeline.commit import Barrier
from pyzk.server.commit import StandaloneCommit
from pyzk.storage.errors import StorageError


@dataclass
class Hdr:
    zxid: int


@dataclass
class Item:
    hdr: Hdr


class RecordingLog:
    """A TxnLogSink whose commit() blocks until the test releases it; records every step."""

    def __init__(self, events: list[str], fail_on_commit: int | None = None) -> None:
        self.events = events
        self.appended: list[int] = []
        self.durable: set[int] = set()
        self.commits = 0
        self.fail_on_commit = fail_on_commit
        self.release = threading.Semaphore(0)

    def append(self, entry: bytes, zxid: int) -> None:
        self.appended.append(zxid)
        self.events.append(f"append {zxid}")

    def commit(self) -> None:
        self.commits += 1
        number = self.commits
        self.events.append(f"fsync-start {number}")
        assert self.release.acquire(timeout=5)
        if number == self.fail_on_commit:
            raise StorageError("disk on fire")
        self.durable.update(self.appended)
        self.events.append(f"fsync-done {number}")


async def _wait_for(predicate, timeout_s: float = 5.0) -> None:
    for _ in range(int(timeout_s / 0.005)):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached")


def make_commit(fail_on_commit: int | None = None) -> tuple[list[str], list[int], RecordingLog, StandaloneCommit]:
    """(events, applied zxids, log, commit stage); apply refuses a txn its fsync did not cover."""
    events: list[str] = []
    applied: list[int] = []
    log = RecordingLog(events, fail_on_commit)

    def apply(item: Item) -> None:
        assert item.hdr.zxid in log.durable, "applied before its fsync returned"
        applied.append(item.hdr.zxid)
        events.append(f"apply {item.hdr.zxid}")

    return events, applied, log, StandaloneCommit(log, lambda item: b"entry", apply, asyncio.get_running_loop())


def test_next_batch_is_fsynced_while_the_previous_one_is_applied() -> None:
    async def scenario() -> None:
        events, applied, log, commit = make_commit()
        commit.submit(Item(Hdr(1)))
        await _wait_for(lambda: "fsync-start 1" in events)
        commit.submit(Item(Hdr(2)))  # queues behind the first fsync
        commit.submit(Item(Hdr(3)))
        log.release.release()
        await _wait_for(lambda: "fsync-start 2" in events)
        await _wait_for(lambda: applied == [1])
        # Batch 2 went to the log thread before batch 1 was applied (the fsync overlaps it).
        assert events.index("append 3") < events.index("apply 1")
        assert "apply 2" not in events
        log.release.release()
        await _wait_for(lambda: applied == [1, 2, 3])
        assert log.commits == 2  # txns 2 and 3 went out as one group
        commit.close()

    asyncio.run(scenario())


def test_barriers_complete_in_order_after_earlier_txns() -> None:
    async def scenario() -> None:
        events, _applied, log, commit = make_commit()
        commit.submit(Item(Hdr(1)))
        commit.submit(Barrier(lambda: events.append("barrier")))
        await _wait_for(lambda: "fsync-start 1" in events)
        commit.submit(Barrier(lambda: events.append("barrier-2")))
        log.release.release()
        await _wait_for(lambda: "barrier-2" in events)
        assert events.index("apply 1") < events.index("barrier") < events.index("barrier-2")
        assert log.commits == 1  # a batch of barriers only needs no fsync
        commit.close()

    asyncio.run(scenario())


def test_a_submit_made_while_applying_is_not_stranded() -> None:
    async def scenario() -> None:
        events: list[str] = []
        applied: list[int] = []
        log = RecordingLog(events)
        commit: StandaloneCommit

        def apply(item: Item) -> None:
            applied.append(item.hdr.zxid)
            if item.hdr.zxid == 1:
                commit.submit(Item(Hdr(2)))

        commit = StandaloneCommit(log, lambda item: b"entry", apply, asyncio.get_running_loop())
        commit.submit(Item(Hdr(1)))
        log.release.release()
        log.release.release()
        await _wait_for(lambda: applied == [1, 2])
        commit.close()

    asyncio.run(scenario())


def test_a_failed_fsync_applies_nothing_of_its_batch_and_stops() -> None:
    async def scenario() -> None:
        events, applied, log, commit = make_commit(fail_on_commit=2)
        fatal: list[bool] = []
        commit.on_fatal = lambda: fatal.append(True)
        commit.submit(Item(Hdr(1)))
        await _wait_for(lambda: "fsync-start 1" in events)
        commit.submit(Item(Hdr(2)))
        log.release.release()
        log.release.release()
        await _wait_for(lambda: fatal == [True])
        assert applied == [1]
        assert commit.failed == "disk on fire"
        commit.submit(Item(Hdr(3)))  # refused once failed
        await asyncio.sleep(0.05)
        assert applied == [1]
        commit.close()

    asyncio.run(scenario())
