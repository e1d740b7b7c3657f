"""What the quorum core asks its driver to do, in execution order (etcd's Ready).

Rule 1: effects are executed in list order. Rule 2: a `Persist` is written in one go (truncate,
then snapshot, then log entries, then epoch files); once it is durable the driver calls
`Peer.persisted(persist_id)`, and whatever the core gated on it (a follower's ACK, the leader's
own vote for a proposal, LEADERINFO after acceptedEpoch) happens then. Persist ids grow by one
per Persist, and the driver reports them in order, so `persisted(n)` covers all ids <= n.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jute.codes import ServerState
from jute.quorum import QuorumPacket
from jute.txn import TxnHeader
from pyzk.quorum.messages import Notification
from pyzk.quorum.verifier import QuorumMaj
from pyzk.storage.snapshot_format import SnapshotSerializer
from pyzk.tree.datatree import ApplyResult


@dataclass(frozen=True, slots=True)
class SendNotification:
    """One election frame to `to` (the payload is `encode_notification(notification)`)."""

    to: int
    notification: Notification


@dataclass(frozen=True, slots=True)
class SendPacket:
    """One QuorumPacket to `to`; `snapshot` is the raw SNAP stream written right after it."""

    to: int
    packet: QuorumPacket
    snapshot: bytes = b""


@dataclass(frozen=True, slots=True)
class Connect:
    """Open a quorum-port connection to the leader `to`; answer with connected/disconnected."""

    to: int


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Close the quorum-port connection with `to` (in-flight data may be lost)."""

    to: int


@dataclass(frozen=True, slots=True)
class Persist:
    persist_id: int
    truncate_to_zxid: int | None = None
    # (zxid, the tree serialized at zxid): the driver seals and writes it; the core keeps the
    # serializer only until this Persist is durable (Peer.load_tree), never the bytes after.
    snapshot: tuple[int, SnapshotSerializer] | None = None
    entries: tuple[tuple[int, bytes], ...] = ()  # (zxid, marshalled txn entry)
    accepted_epoch: int | None = None
    current_epoch: int | None = None


@dataclass(frozen=True, slots=True)
class Apply:
    """A committed txn was applied to the core's DataTree; reply to clients, fire watches."""

    zxid: int
    txn_header: TxnHeader
    txn: Any  # the txn record, decoded once by the core
    result: ApplyResult
    tree_digest: int  # the DataTree digest right after this txn (for TxnDigest and checks)


@dataclass(frozen=True, slots=True)
class RoleChanged:
    state: ServerState
    leader: int
    epoch: int


@dataclass(frozen=True, slots=True)
class Established:
    """Zab broadcast phase reached: a leader with a NEWLEADER quorum, or a follower at UPTODATE."""

    state: ServerState
    epoch: int
    last_zxid: int


@dataclass(frozen=True, slots=True)
class LearnerRequest:
    """A REQUEST forwarded by learner `sid`, for the leader's prep stage."""

    sid: int
    packet: QuorumPacket


@dataclass(frozen=True, slots=True)
class SessionsTouched:
    """Session touches a learner reported in its PING reply: (session id, timeout ms)."""

    sid: int
    touches: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class SessionRevalidated:
    """The leader answered a follower's REVALIDATE: the reconnect of `session_id` may go on.
    `leader_zxid`: the leader's last proposal when it answered (a pyzk leader says it; a Java
    leader sends -1)."""

    session_id: int
    valid: bool
    leader_zxid: int = -1


@dataclass(frozen=True, slots=True)
class LeaderPinged:
    """An observer heard the leader's PING; `zxid` is the leader's last proposal when it sent
    it (LearnerHandler.ping), a floor for sessions that moved here (FollowerCommit)."""

    zxid: int


@dataclass(frozen=True, slots=True)
class SyncReleased:
    """A follower's oldest forwarded sync may now be answered (SYNC arrived from the leader)."""


@dataclass(frozen=True, slots=True)
class WriteConfigFiles:
    """A newer config `verifier` became active with reconfigEnabled: write the dynamic config
    file and zoo.cfg (QuorumPeer.processReconfig's writeToDisk; the core has already put it
    in /zookeeper/config)."""

    verifier: QuorumMaj


Effect = (SendNotification | SendPacket | Connect | Disconnect | Persist | Apply | RoleChanged
          | Established | LearnerRequest | SessionRevalidated | SessionsTouched | SyncReleased
          | WriteConfigFiles | LeaderPinged)


@dataclass(frozen=True, slots=True)
class Ready:
    effects: tuple[Effect, ...]
    timer_ms: int | None = None  # call tick(now_ms) at this time (absolute, driver's clock)


@dataclass(slots=True)
class Outbox:
    """Collects effects; persist ids come from here so they are unique and increasing."""

    effects: list[Effect] = field(default_factory=list)
    next_persist_id: int = 1
    mirror: Callable[[Persist], None] | None = None  # the core's own copy of its disk image

    def add(self, effect: Effect) -> None:
        self.effects.append(effect)

    def persist(self, **fields: object) -> int:
        persist_id = self.next_persist_id
        self.next_persist_id += 1
        persist = Persist(persist_id, **fields)  # type: ignore[arg-type]
        if self.mirror is not None:
            self.mirror(persist)
        self.effects.append(persist)
        return persist_id
