"""The standalone commit stage on the event loop: GroupCommit (pyzk/pipeline/commit/standalone.py,
where its rules are) with its drain run as an asyncio task and each batch's write+fsync on a
dedicated log thread (SyncRequestProcessor's thread), so the loop never blocks on the disk.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pyzk.pipeline.commit.standalone import GroupCommit, TxnLogSink


class StandaloneCommit(GroupCommit):
    def __init__(
        self,
        log: TxnLogSink | None,
        encode_entry: Callable[[Any], bytes],
        apply: Callable[[Any], None],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        super().__init__(log, encode_entry, apply, spawn=loop.create_task, sync=self._fsync)
        self._loop = loop
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="SyncThread")

    def _fsync(self) -> asyncio.Future[Any]:
        """Start writing and fsyncing what the log holds, on the log thread."""
        return self._loop.run_in_executor(self._executor, self._log.commit)  # type: ignore[union-attr]

    def close(self) -> None:
        self._executor.shutdown(wait=True)
