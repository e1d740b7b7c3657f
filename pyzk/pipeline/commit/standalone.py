"""Standalone commit stage: group-commit prepped txns to the txn log, then apply in zxid order.

Rule 1: a txn is applied (and so answered) only after the fsync that covers it returned:
        no acknowledged write is ever lost. forceSync=no skips the fsync, as ZooKeeper does.
Rule 2: group commit. While a batch is written and fsynced on the log thread, newly prepped
        txns queue up and form the next batch (SyncRequestProcessor). The next batch goes to
        the log thread as soon as the previous one is durable, before that one is applied, so
        the fsync overlaps the apply and the replies (ZooKeeper's sync thread runs apart from
        its final processor the same way); batches are still applied strictly in order.
Rule 3: barriers (a standalone `sync`) ride in the same queue and complete in order, after
        every txn submitted before them is applied.
Rule 4: no I/O here. The shell (pyzk/server/commit.py) injects `spawn`, which runs the drain
        as a task on its event loop, and `sync`, which starts the log's write+fsync on the log
        thread and returns what to await.
The ensemble replaces this stage with Zab (leader: quorum of ACKs; follower: the leader's
COMMIT), and nothing else in the pipeline changes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from pyzk.pipeline.commit import Barrier
from pyzk.storage.errors import StorageError

logger = logging.getLogger(__name__)

# Bound on one batch, as SyncRequestProcessor flushes at least every 1000 txns.
BATCH_TXNS_MAX = 1000


class TxnLogSink(Protocol):
    def append(self, entry: bytes, zxid: int) -> None: ...
    def commit(self) -> None: ...


class GroupCommit:
    """The standalone stage's rules; a CommitStage once the shell gives it `spawn` and `sync`."""

    def __init__(
        self,
        log: TxnLogSink | None,
        encode_entry: Callable[[Any], bytes],
        apply: Callable[[Any], None],
        *,
        spawn: Callable[[Coroutine[Any, Any, None]], object],
        sync: Callable[[], Awaitable[Any]],
    ) -> None:
        self._log = log
        self._encode_entry = encode_entry
        self._apply = apply
        self._spawn = spawn
        self._sync = sync
        self._queue: list[Any] = []
        self._running = False
        self.on_batch_committed: Callable[[int], None] | None = None
        self.on_fatal: Callable[[], None] | None = None
        self.failed: str | None = None

    @property
    def queued(self) -> int:
        return len(self._queue)

    def submit(self, item: Any) -> None:
        if self.failed is not None:
            return  # stopping: nothing more is acknowledged
        self._queue.append(item)
        if not self._running:
            self._running = True
            self._spawn(self._drain())

    async def _drain(self) -> None:
        try:
            current = self._start_batch()
            while current is not None:
                batch, durable = current
                if durable is not None:
                    await durable
                following = self._start_batch()
                self._apply_batch(batch)
                # Applying can submit (rarely: a follow-up write of a reply handler).
                current = following if following is not None else self._start_batch()
        except StorageError as exc:
            # A log write that fails leaves us unable to promise durability: stop serving
            # rather than answer writes we did not persist (SyncRequestProcessor exits).
            logger.error("Severe unrecoverable error, exiting: %s", exc)
            self.failed = str(exc)
            if self.on_fatal is not None:
                self.on_fatal()
        finally:
            self._running = False

    def _start_batch(self) -> tuple[list[Any], Awaitable[Any] | None] | None:
        """Take the next batch off the queue and start making its txns durable (None: empty)."""
        if not self._queue:
            return None
        batch = self._queue[:BATCH_TXNS_MAX]
        del self._queue[:BATCH_TXNS_MAX]
        durable = None
        if self._log is not None:
            txns = [item for item in batch if not isinstance(item, Barrier)]
            for item in txns:
                self._log.append(self._encode_entry(item), item.hdr.zxid)
            if txns:
                durable = self._sync()
        return batch, durable

    def _apply_batch(self, batch: list[Any]) -> None:
        txn_count = 0
        for item in batch:
            if isinstance(item, Barrier):
                item.on_done()
            else:
                txn_count += 1
                self._apply(item)
        if txn_count and self.on_batch_committed is not None:
            self.on_batch_committed(txn_count)
