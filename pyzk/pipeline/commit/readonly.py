"""The read-only server's commit stage: it commits nothing.

Rule: a read-only server (pyzk/pipeline/readonly.py) answers every write, sync, check and
closeSession before prep, and its sessions are local (no createSession or closeSession txn),
so no item should reach this stage; one that does is logged and dropped, never applied.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)


class ReadOnlyCommit:
    @property
    def queued(self) -> int:
        return 0

    def submit(self, item: Any) -> None:
        logger.error("a read-only server cannot commit %r; dropped", item)
