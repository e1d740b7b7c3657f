"""The commit stage: the one stage of the request pipeline that differs by role.

A stage decides when a prepped txn may be applied: standalone after the fsync that covers it
(standalone.py, run on the event loop by pyzk/server/commit.py), leader after a quorum's ACKs
(leader.py), follower on the leader's COMMIT (follower.py); a read-only server commits nothing
(readonly.py). Every stage is a CommitStage; ZooKeeperServer (pyzk/pipeline/zkserver.py) talks
to its stage through it and nothing else, except that a stage with `forward` (a follower, a
ForwardingStage) receives the writes instead of prep.

Rule 1: a stage takes the items ZooKeeperServer submits, in submit order: a Prepared (a txn
        with the zxid prep stamped) or a Barrier (a sync: done once every txn submitted before
        it is applied).
Rule 2: applied txns go back to the server in zxid order (ZooKeeperServer.apply_committed, or
        deliver_applied once the quorum core applied them); the server delivers the watch
        events and the reply.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from pyzk.pipeline.clientsession import ClientSession, PendingRequest
    from pyzk.pipeline.prep import Prepared


class Barrier:
    """A queue entry with no txn: completes when everything before it is applied."""

    __slots__ = ("on_done",)

    def __init__(self, on_done: Callable[[], None]) -> None:
        self.on_done = on_done


@runtime_checkable
class CommitStage(Protocol):
    """What ZooKeeperServer needs of its commit stage (ZooKeeperServer.commit)."""

    @property
    def queued(self) -> int:
        """Items submitted and not done yet (txns or barriers), for shutdown and monitoring."""
        ...

    def submit(self, item: Prepared | Barrier) -> None:
        """Take a prepped txn or a barrier; it is applied (or done) later, in submit order."""
        ...


@runtime_checkable
class ForwardingStage(CommitStage, Protocol):
    """A stage that sends writes to another server instead of committing them (a follower):
    ZooKeeperServer hands it the raw request and waits for the txn to come back applied."""

    def forward(self, conn: ClientSession, req: PendingRequest, body: bytes) -> None: ...

    def forward_upgrade(self, session_id: int, timeout_ms: int) -> None: ...

    def revalidate(self, conn: ClientSession, session_id: int, timeout_ms: int) -> None: ...
