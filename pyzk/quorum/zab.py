"""Zab roles (Q/Leader.java, Q/LearnerHandler.java, Q/Learner.java, Q/Follower.java) as pure
state machines over QuorumPacket.

Rule 1: each role has a phase (DISCOVERY, SYNCHRONIZATION, BROADCAST) and a whitelist of
packet types per phase; anything else is a PeerProtocolError (drop that link).
Rule 2: durability gates replies. A follower ACKs a proposal, and the leader counts its own
vote for one, only in the callback of the Persist that wrote it; LEADERINFO waits for the
acceptedEpoch write, ACK(NEWLEADER) for the currentEpoch write and the synced proposals.
Rule 3: commits go in zxid order; ACKs for committed, unknown or epoch-start zxids are ignored.
Rule 4: a role that can no longer make progress sets `failed` with the reason; the Peer
then goes back to LOOKING.
Rule 5 (reconfig): a committed reconfig txn activates the config its data holds (the leader
sends COMMITANDACTIVATE for it); with reconfigEnabled, an established config of version 0
takes the NEWLEADER zxid as its version (ZOOKEEPER-1783). Every establishment and activation
rewrites /zookeeper/config in the database (and, with reconfigEnabled, has the config files written).
"""

from __future__ import annotations

import enum
import logging
import random
import struct
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from jute.codes import OpCode, ServerState
from jute.codes import QuorumPacketType as P
from jute.quorum import LearnerInfo, QuorumPacket
from jute.txn import TxnHeader
from pyzk.metrics import ServerMetrics
from pyzk.quorum.database import ZabDatabase
from pyzk.quorum.effects import (
    Apply,
    Connect,
    Disconnect,
    Established,
    LeaderPinged,
    LearnerRequest,
    Outbox,
    SendPacket,
    SessionRevalidated,
    SessionsTouched,
    SyncReleased,
    WriteConfigFiles,
)
from pyzk.quorum.errors import InvariantViolation, PeerProtocolError
from pyzk.quorum.reconfig import parse_config_text, text_order_verifier, with_version
from pyzk.quorum.streams import decode_revalidate_reply
from pyzk.quorum.verifier import QuorumConfigs, QuorumMaj
from pyzk.quorum.zxid import (
    COUNTER_MAX,
    counter_of,
    epoch_of,
    follows,
    is_epoch_start,
    make_zxid,
)
from pyzk.storage.format import decode_txn_entry, encode_txn_entry
from pyzk.storage.policy import SNAP_SIZE_LIMIT_KB_DEFAULT, SnapshotScheduler
from pyzk.storage.snapshot_format import SnapshotFormatError, SnapshotSerializer, parse_snap_stream
from pyzk.tree.datatree import DataTree

logger = logging.getLogger(__name__)

PROTOCOL_VERSION = 0x10000
CONNECT_ATTEMPTS_MAX = 5  # Learner.connectToLeader: 5 tries
# zookeeper.leaderConnectDelayDuringRetryMs (default 100): a Java leader binds its quorum
# port only once it leads, so a learner that decided first is refused and retries soon.
CONNECT_RETRY_MS = 100
_INT = struct.Struct(">i")
_TOUCH = struct.Struct(">qi")
_LONG = struct.Struct(">q")
_PACKET_TYPES: dict[int, P] = {int(t): t for t in P}
_FOLLOWER_HANDLERS: dict[P, str] = {t: f"_on_{t.name.lower()}" for t in P}


class Phase(enum.Enum):
    DISCOVERY = "discovery"
    SYNCHRONIZATION = "synchronization"
    BROADCAST = "broadcast"


@dataclass(frozen=True)
class ZabConfig:
    tick_time_ms: int = 2000
    init_limit_ticks: int = 10
    sync_limit_ticks: int = 5
    commit_log_count: int = 500  # zookeeper.commitLogCount
    # zookeeper.snapshotSizeFactor: a learner behind the committed-log window gets a DIFF of
    # the logged txns when they are at most this fraction of the last snapshot's size (0: no
    # limit), else a SNAP; negative: always a SNAP.
    snapshot_size_factor: float = 0.33
    reconfig_enabled: bool = False
    snap_count: int = 100_000  # zookeeper.snapCount
    snap_size_limit_kb: int = SNAP_SIZE_LIMIT_KB_DEFAULT  # zookeeper.snapSizeLimitInKb
    # A periodic snapshot serializes this many nodes per step, a tick due 1 ms after each input
    # while it runs, so a big tree does not stall the server (about 3 ms per 1,000 nodes); it
    # is exact at its zxid (Peer.tick, DataTree.preimages).
    snapshot_nodes_per_step: int = 1000
    # The simulator's cross-check: a tree kept across an election equals one rebuilt from disk.
    verify_kept_tree: bool = False


class Probe:
    """CODE_PROBE: the core marks rare paths; the simulator counts them (no-op by default)."""

    def __call__(self, site: str) -> None:
        pass


def _no_snapshot(zxid: int) -> DataTree:
    raise InvariantViolation(f"no snapshot store: cannot load snapshot {zxid:#x}")


class ZabContext:
    """What both roles share with the Peer: identity, database, epochs, effects, callbacks."""

    def __init__(self, my_id: int, verifier: QuorumMaj, db: ZabDatabase, accepted_epoch: int,
                 current_epoch: int, config: ZabConfig, outbox: Outbox, probe: Probe,
                 load_tree: Callable[[int], DataTree] | None = None,
                 read_log: Callable[[int, int, int], list[tuple[int, bytes]] | None] | None = None,
                 load_logged: Callable[[], list[tuple[int, bytes]]] | None = None) -> None:
        self.my_id = my_id
        self.configs = QuorumConfigs(verifier, reconfig_enabled=config.reconfig_enabled)
        self.now_ms = 0  # wall-clock ms of the input being handled (Peer sets it)
        self.db = db
        self.accepted_epoch = accepted_epoch
        self.current_epoch = current_epoch
        self.config = config
        self.outbox = outbox
        self.probe = probe
        # A persisted snapshot's tree, by zxid (Peer.load_tree); a context without one has none.
        self.load_tree = load_tree or _no_snapshot
        # Logged txns older than the database's log, from the txn log files (Storage.read_committed).
        self.read_log = read_log or (lambda from_zxid, before_zxid, limit_bytes: None)
        # Every txn logged after the newest snapshot (Peer.logged_since_snapshot): a TRUNC
        # that must rebuild the tree replays them.
        self.load_logged = load_logged or (lambda: list(self.db.log))
        # OrderedDict: released oldest first, and a plain dict's iteration slows down as its
        # front is popped (deleted slots are skipped one by one).
        self.on_persisted: OrderedDict[int, Callable[[], None]] = OrderedDict()
        self.to_apply: deque[int] = deque()  # committed, not yet in the tree (apply_next)
        self.snapshot_due = False
        self.snapshot_running: SnapshotSerializer | None = None
        self.snapshot_bytes = 0  # the size of the last snapshot (for snapshotSizeFactor)
        # Apache's ServerMetrics for the Zab events (counted here, on the core's inputs; the
        # Peer gives the one that outlives its roles).
        self.metrics = ServerMetrics()
        # The rolls come from a stream seeded by this server (the core draws no randomness of
        # its own: same inputs, same outputs).
        self.snapshot_schedule = SnapshotScheduler(config.snap_count, config.snap_size_limit_kb,
                                                   random.Random(f"{my_id}-snapshots").randrange)

    def log(self, zxid: int, entry: bytes, decoded: tuple[TxnHeader, Any] | None = None) -> None:
        """Append a txn to the database's log (the caller persists it). SyncRequestProcessor's
        rule, in every role: once snapCount/2 + a roll txns, or snapSizeLimitInKb/2 + a roll
        bytes, were logged since the last snapshot started, a snapshot of the applied tree is
        due; it starts at the next input (`snapshot_if_due`), after the driver has executed
        this step's effects."""
        self.db.append(zxid, entry, decoded)
        if self.snapshot_schedule.on_logged(len(entry)):
            self.snapshot_due = True

    def snapshot_if_due(self) -> None:
        """Start a snapshot of the applied tree, exact at its zxid, serialized in steps while
        txns go on (`step_snapshot`). The count of logged txns restarts now; if a snapshot is
        still running, this one is skipped ("Too busy to snap, skipping")."""
        if not self.snapshot_due:
            return
        self.snapshot_due = False
        db = self.db
        zxid = db.last_processed_zxid
        self.snapshot_schedule.snapshot_started()  # FileTxnSnapLog.rollLog resets the counts
        if self.snapshot_running is not None:
            self.probe("snapshot skipped: the previous one is still running")
            return
        if zxid <= db.base_zxid:
            return
        self.probe("periodic snapshot")
        self.snapshot_running = SnapshotSerializer(db.tree, exact=True)
        self.step_snapshot()

    def step_snapshot(self) -> None:
        """Serialize the next nodes of the running snapshot. Once done, Persist(snapshot) writes
        it and starts a new log file; the database keeps only the committed-log window before
        it (DIFF to lagging learners)."""
        running = self.snapshot_running
        if running is None:
            return
        if not running.step(self.config.snapshot_nodes_per_step):
            self.probe("snapshot serialized while txns were applied")
            return
        self.snapshot_running = None
        self.db.rebase(running.zxid, keep=self.config.commit_log_count)
        self.persist(snapshot=(running.zxid, running))

    def abandon_snapshot(self) -> None:
        if self.snapshot_running is not None:
            self.snapshot_running.abandon()
            self.snapshot_running = None

    def persist(self, then: Callable[[], None] | None = None, **fields: object) -> int:
        persist_id = self.outbox.persist(**fields)
        if then is not None:
            self.on_persisted[persist_id] = then
        return persist_id

    def activate(self, verifier: QuorumMaj) -> None:
        """processReconfig: a newer config becomes the active one. Either way the database
        rewrites /zookeeper/config (initConfigInZKDatabase); if the config changed and
        reconfigEnabled, the host writes the config files too."""
        changed = self.configs.activate(verifier)
        active = self.configs.active
        self.db.write_config_node(active.config_text().encode(), active.version, self.now_ms)
        if changed and self.config.reconfig_enabled:
            self.outbox.add(WriteConfigFiles(active))

    def commit(self, zxid: int, *, leader: bool) -> bool:
        """Txn `zxid` is committed: a reconfig activates its config now (later quorums count
        with it); the tree applies it when the host has delivered every earlier commit
        (`apply_next`). True if it was a reconfig."""
        self.to_apply.append(zxid)
        hdr, txn = self.db.decoded(zxid)
        return self.activate_reconfig_txn(zxid, hdr.type, txn, leader=leader)

    def apply_next(self) -> None:
        """Apply the oldest committed txn to the tree and hand it to the host (Apply).

        One per Ready (Peer.ready): the server answers a txn's request, and then the reads
        queued behind it on that session, before the tree moves on to the next txn, so such a
        read sees exactly the state its session order promises (FinalRequestProcessor applies
        and answers one request at a time)."""
        zxid = self.to_apply.popleft()
        applied = self.db.apply_committed(zxid)
        self.outbox.add(Apply(zxid, applied.hdr, applied.txn, applied.result, self.db.tree.digest))

    def apply_all(self) -> None:
        """Before an input: every committed txn is in the tree (the driver normally applied
        them one Ready at a time; this only catches what a capped drain left behind)."""
        if self.to_apply:
            self.probe("applied committed txns ahead of their delivery")
            while self.to_apply:
                self.apply_next()

    def see_logged_reconfigs(self) -> None:
        """Start-up: a reconfig txn in the log is at least a proposed config (Apache keeps it
        in the `.dynamic.next` file): a leader must then get a quorum of it too."""
        if not self.config.reconfig_enabled:
            return
        for zxid, entry in self.db.log:
            if len(entry) >= 32 and _INT.unpack_from(entry, 28)[0] == OpCode.RECONFIG:
                txn = decode_txn_entry(entry)[1]
                self.configs.see(with_version(parse_config_text((txn.data or b"").decode()), zxid))

    def activate_reconfig_txn(self, zxid: int, txn_type: int, txn: Any, *, leader: bool) -> bool:
        """Committed txn `zxid`: if it is a reconfig, activate its config; True if so. A reconfig
        txn reaches the log only when prep accepted it (else it is an ErrorTxn)."""
        if txn_type != OpCode.RECONFIG:
            return False
        text = (txn.data or b"").decode()
        # The leader keeps the member order it built the config with; a learner parses afresh.
        verifier = text_order_verifier(text) if leader else parse_config_text(text)
        self.activate(with_version(verifier, zxid))
        return True

    def send(self, to: int, type_: P, zxid: int, data: bytes | None = None, snapshot: bytes = b"") -> None:
        self.outbox.add(SendPacket(to, QuorumPacket(int(type_), zxid, data, None), snapshot))

    def send_all(self, to: Iterable[int], type_: P, zxid: int, data: bytes | None = None) -> None:
        """One packet to several learners: the same QuorumPacket, so the driver encodes it once."""
        packet = QuorumPacket(int(type_), zxid, data, None)
        add = self.outbox.add
        for sid in to:
            add(SendPacket(sid, packet))


def packet(type_: P, zxid: int, data: bytes | None = None) -> QuorumPacket:
    return QuorumPacket(int(type_), zxid, data, None)


def _int_data(p: QuorumPacket) -> int:
    if p.data is None or len(p.data) < 4:
        raise PeerProtocolError(f"{P(p.type).name} without its int payload")
    return int(_INT.unpack_from(p.data, 0)[0])


# ---- leader ------------------------------------------------------------------------------


class LearnerStage(enum.Enum):
    """Where one learner is in LearnerHandler.run."""

    INFO = "awaiting FOLLOWERINFO or OBSERVERINFO"
    ACKEPOCH = "awaiting ACKEPOCH"
    NEWLEADER_ACK = "awaiting ACK of NEWLEADER"
    SYNCED = "acked NEWLEADER"


LEADER_ACCEPTS: dict[LearnerStage, frozenset[P]] = {
    LearnerStage.INFO: frozenset({P.FOLLOWERINFO, P.OBSERVERINFO}),
    LearnerStage.ACKEPOCH: frozenset({P.ACKEPOCH}),
    LearnerStage.NEWLEADER_ACK: frozenset({P.ACK}),
    LearnerStage.SYNCED: frozenset({P.ACK, P.PING, P.REQUEST, P.REVALIDATE}),
}


@dataclass
class LearnerLink:
    sid: int
    stage: LearnerStage
    accepted_epoch: int = -1
    current_epoch: int = -1  # as its ACKEPOCH said (-1: it had accepted this epoch already)
    last_heard_ms: int = 0
    observer: bool = False  # it sent OBSERVERINFO: it gets INFORM, not PROPOSAL and COMMIT


class Leader:
    role_state = ServerState.LEADING

    def __init__(self, ctx: ZabContext, now_ms: int) -> None:
        self.ctx = ctx
        self.phase = Phase.DISCOVERY
        self.failed: str | None = None
        self.epoch: int | None = None  # fixed once a quorum has connected
        self.epoch_durable = False
        self.learners: dict[int, LearnerLink] = {}
        self.connecting: dict[int, int] = {ctx.my_id: ctx.accepted_epoch}
        self.epoch_acks: dict[int, None] = {ctx.my_id: None}
        self.newleader_acks: dict[int, None] = {}
        self.forwarding: dict[int, None] = {}  # followers that get live proposals and commits
        self.observing: dict[int, None] = {}  # observers that get committed txns (INFORM)
        # zxid -> voters that acked it. An OrderedDict: the oldest is looked up on every ACK,
        # and a plain dict's first-key lookup slows down as committed heads are deleted.
        self.outstanding: OrderedDict[int, dict[int, None]] = OrderedDict()
        self.last_proposed = ctx.db.last_processed_zxid
        self.pending_syncs: list[tuple[int, int]] = []  # (learner sid, zxid to wait for)
        self.proposal_sizes: tuple[int, int, int] | None = None  # (last, min, max) bytes, for mntr
        self.peer_last_zxids: dict[int, int] = {}  # ACKEPOCH.zxid per learner
        # Proposals made while a reconfig was in progress: each needs a quorum of every
        # config listed (Proposal.qvAcksetPairs); others need one of the active config.
        self.quorums_of: dict[int, tuple[QuorumMaj, ...]] = {}
        # A committed reconfig named another leader (or left this one out): commit nothing
        # more (allowedToCommit) and hand over at `handover_at_ms` or when the learners leave.
        self.allowed_to_commit = True
        self.handover_at_ms: int | None = None
        # What the Peer becomes when this role ends, without an election (QuorumPeer's
        # reconfigFlag and updateServerState): (designated leader, state); None: LOOKING.
        self.next_vote: tuple[int, ServerState] | None = None
        self.deadline_ms = now_ms + ctx.config.init_limit_ticks * ctx.config.tick_time_ms
        self.next_ping_ms = now_ms + ctx.config.tick_time_ms // 2
        self._maybe_fix_epoch()

    # ---- inputs --------------------------------------------------------------------------

    def step(self, sid: int, p: QuorumPacket, now_ms: int) -> None:
        link = self.learners.get(sid)
        if link is None:
            link = self.learners[sid] = LearnerLink(sid, LearnerStage.INFO)
        link.last_heard_ms = now_ms
        type_ = _PACKET_TYPES.get(p.type)
        if type_ is None and link.stage == LearnerStage.SYNCED:
            # LearnerHandler logs a type it does not know from a synced learner and reads on
            # (a newer member's packet does not cost it the link); in the handshake it drops it.
            logger.warning("leader: unexpected quorum packet type %d from %d, ignored", p.type, sid)
            return
        if type_ is None or type_ not in LEADER_ACCEPTS[link.stage]:
            raise PeerProtocolError(f"leader: {p.type} from {sid} while {link.stage.value}")
        if type_ == P.FOLLOWERINFO or type_ == P.OBSERVERINFO:
            link.observer = type_ == P.OBSERVERINFO
            self._on_followerinfo(link, p)
        elif type_ == P.ACKEPOCH:
            self._on_ackepoch(link, p)
        elif type_ == P.ACK:
            self._on_ack(link, p.zxid)
        elif type_ == P.PING:
            self._on_ping_reply(link, p)
        elif type_ == P.REQUEST and self._is_sync_request(p):
            self._on_sync_request(sid)
        else:
            self.ctx.outbox.add(LearnerRequest(sid, p))

    def disconnected(self, sid: int) -> None:
        self._drop_learner(sid, notify=False)

    def tick(self, now_ms: int) -> None:
        cfg = self.ctx.config
        if self.phase != Phase.BROADCAST and now_ms >= self.deadline_ms:
            self.failed = "timeout while waiting for epoch or NEWLEADER quorum"
            return
        if self.handover_at_ms is not None and now_ms >= self.handover_at_ms:
            designated = self.next_vote[0] if self.next_vote is not None else None
            self.failed = f"reconfig: not the leader of the new config (designated leader {designated})"
            return
        if now_ms < self.next_ping_ms:
            return
        self.next_ping_ms = now_ms + cfg.tick_time_ms // 2
        sync_limit_ms = cfg.sync_limit_ticks * cfg.tick_time_ms
        limit_ms = sync_limit_ms if self.phase == Phase.BROADCAST else cfg.init_limit_ticks * cfg.tick_time_ms
        for link in list(self.learners.values()):
            if now_ms - link.last_heard_ms > limit_ms:
                self.ctx.probe("leader dropped a silent learner")
                self._drop_learner(link.sid, notify=True)
            elif link.stage in (LearnerStage.NEWLEADER_ACK, LearnerStage.SYNCED):
                self.ctx.send(link.sid, P.PING, self.last_proposed)
        if self.phase == Phase.BROADCAST:
            synced = [self.ctx.my_id] + [s for s, link in self.learners.items() if link.stage == LearnerStage.SYNCED]
            if not self.ctx.configs.has_all_quorums(synced):
                self.failed = "not sufficient followers synced"
            elif self._stalled():
                self.ctx.probe("leader stepped down: a proposal made during a reconfig lost a quorum")
                self.failed = "a proposal made while a reconfig was in progress can no longer get its quorums"

    def _stalled(self) -> bool:
        """The oldest outstanding proposal needs a quorum of a config whose voters are no
        longer synced followers here (one became an observer or left after the reconfig
        committed, its ACK lost): it would wait forever; a new leader's NEWLEADER commits it."""
        oldest = next(iter(self.outstanding), None)
        quorums = self.quorums_of.get(oldest) if oldest is not None else None
        if quorums is None:
            return False
        followers = [self.ctx.my_id, *self.outstanding[oldest]]
        followers += [sid for sid in self.forwarding
                      if sid in self.learners and self.learners[sid].stage == LearnerStage.SYNCED]
        return not all(verifier.is_quorum(followers) for verifier in quorums)

    def next_timer_ms(self) -> int:
        timer = self.next_ping_ms if self.phase == Phase.BROADCAST else min(self.deadline_ms, self.next_ping_ms)
        return timer if self.handover_at_ms is None else min(timer, self.handover_at_ms)

    def submit(self, session_id: int, cxid: int, txn_type: int, txn: object, time_ms: int,
               zxid: int | None = None) -> int | None:
        """Propose one txn; returns its zxid, or None when this leader cannot propose now.

        `zxid` is the one prep stamped on the txn, when the caller stamped one: the zxid has
        one owner, and a txn that is not the next one is our bug (UNMATCHED_TXN_COMMIT)."""
        if self.phase != Phase.BROADCAST or self.failed:
            return None
        if counter_of(self.last_proposed) >= COUNTER_MAX:
            self.failed = "zxid counter exhausted; forcing a new election"
            return None
        if zxid is not None and zxid != self.last_proposed + 1:
            raise InvariantViolation(f"txn stamped {zxid:#x} but the next zxid is {self.last_proposed + 1:#x}")
        zxid = self.last_proposed + 1
        self.last_proposed = zxid
        hdr = TxnHeader(session_id, cxid, zxid, time_ms, txn_type)
        entry = encode_txn_entry(hdr, txn, None)
        self.ctx.log(zxid, entry, (hdr, txn))
        sizes = self.proposal_sizes
        size = len(entry)
        self.proposal_sizes = (size, size, size) if sizes is None else (size, min(sizes[1], size), max(sizes[2], size))
        configs = self.ctx.configs
        if txn_type == OpCode.RECONFIG:
            configs.see(with_version(text_order_verifier(txn.data.decode()), zxid))  # type: ignore[attr-defined]
        self.outstanding[zxid] = {}
        if configs.pending is not None:
            self.quorums_of[zxid] = configs.quorums()
        self.ctx.persist(lambda: self._on_ack_from(self.ctx.my_id, zxid), entries=((zxid, entry),))
        self.ctx.send_all(self.forwarding, P.PROPOSAL, zxid, entry)
        self.ctx.metrics.proposal_count += 1  # Leader.propose's PROPOSAL_COUNT
        return zxid

    # ---- discovery -----------------------------------------------------------------------

    def _on_followerinfo(self, link: LearnerLink, p: QuorumPacket) -> None:
        """FOLLOWERINFO or OBSERVERINFO (the same LearnerInfo). An observer's accepted epoch
        counts for the new epoch (getEpochToPropose), its votes for no quorum (is_quorum)."""
        if p.data is None or len(p.data) < 12:
            raise PeerProtocolError("FOLLOWERINFO without LearnerInfo")
        info = LearnerInfo.from_bytes(p.data + b"\x00" * max(0, 20 - len(p.data)))
        if info.serverid != link.sid:
            raise PeerProtocolError(f"FOLLOWERINFO sid {info.serverid} on link of {link.sid}")
        if info.configVersion > self.ctx.configs.active.version:
            raise PeerProtocolError("follower is ahead of the leader (config version)")
        link.accepted_epoch = epoch_of(p.zxid)
        link.stage = LearnerStage.ACKEPOCH
        if self.epoch is None:
            self.connecting[link.sid] = link.accepted_epoch
            self._maybe_fix_epoch()
        elif link.accepted_epoch > self.epoch:
            # The learner accepted a later epoch (from a leader that did not get to establish
            # it): it refuses ours, and would come back after every election this leader wins.
            # Apache's leader keeps it out for as long as it leads; stepping down lets the next
            # election propose an epoch it can accept (epochs only grow: it converges).
            self.ctx.probe("leader stepped down for a learner that accepted a later epoch")
            self.failed = (f"learner {link.sid} accepted epoch {link.accepted_epoch}, later than "
                           f"this leader's {self.epoch}")
        elif self.epoch_durable:
            self._send_leaderinfo(link.sid)

    def _maybe_fix_epoch(self) -> None:
        if self.epoch is not None or not self.ctx.configs.active.is_quorum(self.connecting):
            return
        epoch = max(self.connecting.values()) + 1
        self.epoch = epoch
        self.ctx.accepted_epoch = epoch
        self.ctx.persist(self._on_epoch_durable, accepted_epoch=epoch)

    def _on_epoch_durable(self) -> None:
        self.epoch_durable = True
        for link in self.learners.values():
            if link.stage == LearnerStage.ACKEPOCH:
                self._send_leaderinfo(link.sid)
        self._maybe_epoch_quorum()

    def _send_leaderinfo(self, sid: int) -> None:
        assert self.epoch is not None
        self.ctx.send(sid, P.LEADERINFO, make_zxid(self.epoch, 0), _INT.pack(PROTOCOL_VERSION))

    def _on_ackepoch(self, link: LearnerLink, p: QuorumPacket) -> None:
        if self.epoch is None or not self.epoch_durable:
            raise PeerProtocolError("ACKEPOCH before LEADERINFO")
        learner_current_epoch = _int_data(p)
        peer_last_zxid = p.zxid
        mine = (self.ctx.current_epoch, self.ctx.db.last_logged_zxid)
        if self.phase == Phase.DISCOVERY and learner_current_epoch != -1 and \
                (learner_current_epoch, peer_last_zxid) > mine:
            self.ctx.probe("leader refused a learner ahead of it")
            raise PeerProtocolError(f"follower {link.sid} is ahead of the leader")
        link.stage = LearnerStage.NEWLEADER_ACK
        link.accepted_epoch = self.epoch
        link.current_epoch = learner_current_epoch
        self.peer_last_zxids[link.sid] = peer_last_zxid
        if learner_current_epoch != -1 and peer_last_zxid != -1:
            self.epoch_acks[link.sid] = None
        if self.phase == Phase.DISCOVERY:
            self._maybe_epoch_quorum()
        else:
            self._sync_learner(link.sid, peer_last_zxid)

    def _maybe_epoch_quorum(self) -> None:
        if self.phase != Phase.DISCOVERY or not self.epoch_durable:
            return
        # A quorum of the pending config too (Apache's waitForEpochAck counts the active one
        # only): a learner that got a txn committed under the new config alone is "ahead" of a
        # leader without it and is refused here, so no such leader gets past discovery and
        # then TRUNCs that txn away from the new config's members that join it in sync.
        if not self.ctx.configs.has_all_quorums(self.epoch_acks):
            return
        assert self.epoch is not None
        self.phase = Phase.SYNCHRONIZATION
        self.ctx.current_epoch = self.epoch
        self.last_proposed = make_zxid(self.epoch, 0)
        ctx = self.ctx
        if ctx.configs.active.version == 0 == ctx.configs.last_seen.version:
            ctx.configs.see(with_version(parse_config_text(ctx.configs.active.config_text()), self.last_proposed))
        self.ctx.persist(lambda: self._on_newleader_ack(self.ctx.my_id), current_epoch=self.epoch)
        for sid, link in self.learners.items():
            if link.stage == LearnerStage.NEWLEADER_ACK:
                self._sync_learner(sid, self.peer_last_zxids[sid])

    # ---- synchronization -----------------------------------------------------------------

    def _sync_learner(self, sid: int, peer_last_zxid: int) -> None:
        """LearnerHandler.syncFollower + startForwarding + NEWLEADER, queued in wire order."""
        assert self.epoch is not None
        db = self.ctx.db
        last_processed = db.last_processed_zxid
        window = db.committed_window(self.ctx.config.commit_log_count)
        min_committed, max_committed = (window[0][0], window[-1][0]) if window else (last_processed, last_processed)
        peer_new_epoch = is_epoch_start(peer_last_zxid)
        queued: list[tuple[int, bytes]] = []
        op: tuple[P, int] | None
        if self.ctx.snapshot_running is not None:
            self.ctx.probe("leader synced a learner while a snapshot ran")
        logger.info("Synchronizing with Learner sid: %d maxCommittedLog=0x%x minCommittedLog=0x%x "
                    "lastProcessedZxid=0x%x peerLastZxid=0x%x", sid, max_committed, min_committed,
                    last_processed, peer_last_zxid)
        if peer_last_zxid == last_processed:
            op = (P.DIFF, peer_last_zxid)
        elif peer_last_zxid > max_committed and not peer_new_epoch:
            op = (P.TRUNC, max_committed)
        elif min_committed <= peer_last_zxid <= max_committed:
            op, queued = _walk_committed_log(window, peer_last_zxid, max_committed)
        elif peer_last_zxid < min_committed and (history := self._txn_log_from(peer_last_zxid)):
            # LearnerHandler's "use txnlog and committedLog": the txns since the last snapshot
            # are in memory; older ones are read from the log files.
            self.ctx.probe("leader sent DIFF from its txn log")
            op, queued = _walk_committed_log(history, peer_last_zxid, max_committed)
        else:
            op = None
        if op is not None and op[0] == P.TRUNC:
            if self._learner_took_an_unestablished_snap(sid, peer_last_zxid):
                op = None
            else:
                self.ctx.probe("leader sent TRUNC")
        if op is None:
            logger.info("Sending snapshot last zxid of peer is 0x%x, zxid of leader is 0x%x, send zxid of db "
                        "as 0x%x to learner sid: %d", peer_last_zxid, max_committed, last_processed, sid)
            self.ctx.probe("leader sent SNAP")
            self.ctx.send(sid, P.SNAP, last_processed, snapshot=db.snap_stream())
            self.ctx.metrics.snap_count += 1
            queued_up_to = last_processed
        else:
            logger.info("Sending %s zxid=0x%x with %d proposals to learner sid: %d", op[0].name, op[1],
                        len(queued), sid)
            if op[0] == P.DIFF and queued:
                self.ctx.probe("leader sent DIFF with proposals")
            self.ctx.send(sid, op[0], op[1])
            self.ctx.metrics.diff_count += 1  # LearnerHandler counts every sync but a SNAP
            for zxid, entry in queued:
                self.ctx.send(sid, P.PROPOSAL, zxid, entry)
                self.ctx.send(sid, P.COMMIT, zxid)
            queued_up_to = queued[-1][0] if queued else (op[1] if op[0] == P.TRUNC else max(peer_last_zxid, max_committed))
        if self.learners[sid].observer:
            # startForwarding: an observer gets no outstanding proposals; each one reaches it
            # as an INFORM once committed.
            self.observing[sid] = None
        else:
            for zxid in self.outstanding:
                if zxid > queued_up_to:
                    self.ctx.send(sid, P.PROPOSAL, zxid, db.entry(zxid))
            self.forwarding[sid] = None
        # The config the learner activates at UPTODATE: the one this leader establishes (its
        # last seen); once established, its active one. (Apache's sends the last seen one
        # then too, so a learner that joins while a reconfig is in progress activates a config
        # nobody committed and may spread it by its notifications: pyzk does not.)
        configs = self.ctx.configs
        config = configs.active if self.phase == Phase.BROADCAST else configs.last_seen
        self.ctx.send(sid, P.NEWLEADER, make_zxid(self.epoch, 0), config.config_text().encode())

    def _learner_took_an_unestablished_snap(self, sid: int, peer_last_zxid: int) -> bool:
        """The learner's current epoch is later than its last txn's: it acknowledged the
        NEWLEADER of a leader that proposed nothing in that epoch, and that sync may have been
        a SNAP of the prospective leader's whole log, committed or not, written as its
        snapshot. Its log cannot be truncated below that snapshot (simulator seed 7683), so it
        gets a SNAP (Apache would send the TRUNC and its learner would reload the newer
        snapshot, keeping txns that were never committed)."""
        link = self.learners.get(sid)
        if link is None or link.current_epoch <= epoch_of(peer_last_zxid):
            return False
        self.ctx.probe("leader sent SNAP, not TRUNC, to a learner synced by an unestablished leader")
        return True

    def _txn_log_from(self, peer_last_zxid: int) -> list[tuple[int, bytes]] | None:
        """The committed txns from the learner's last one on, when the log holds that one and
        they are small enough against the last snapshot (calculateTxnLogSizeLimit)."""
        factor = self.ctx.config.snapshot_size_factor
        if factor < 0:
            return None
        db = self.ctx.db
        limit = int(self.ctx.snapshot_bytes * factor)
        history = db.committed_from(peer_last_zxid)
        if history is None and peer_last_zxid < (db.log[0][0] if db.log else db.base_zxid):
            history = self._txn_log_on_disk(peer_last_zxid, limit)
        if history is None or (limit > 0 and sum(len(entry) for _, entry in history) > limit):
            return None
        return history

    def _txn_log_on_disk(self, peer_last_zxid: int, limit: int) -> list[tuple[int, bytes]] | None:
        """The learner's last txn is older than the database's log: the older txns are read
        from the log files (getProposalsFromTxnLog), then joined to the database's log."""
        db = self.ctx.db
        if db.log:
            first_kept = db.log[0][0]
            older = self.ctx.read_log(peer_last_zxid, first_kept, limit)
            joined = bool(older) and follows(older[-1][0], first_kept)  # type: ignore[index]
            kept = db.committed_from(first_kept)
        else:  # nothing logged after the snapshot: the files must reach the snapshot's zxid
            older = self.ctx.read_log(peer_last_zxid, db.base_zxid + 1, limit)
            joined = bool(older) and older[-1][0] == db.base_zxid  # type: ignore[index]
            kept = []
        if not older or older[0][0] != peer_last_zxid or not joined or kept is None:
            return None
        self.ctx.probe("leader read txns older than its database's log from disk")
        return older + kept

    def _on_newleader_ack(self, sid: int) -> None:
        if self.failed:
            return
        self.newleader_acks[sid] = None
        if sid in self.learners:
            self.learners[sid].stage = LearnerStage.SYNCED
        if self.phase == Phase.BROADCAST:
            self.ctx.send(sid, P.UPTODATE, -1)
        elif self.ctx.configs.has_all_quorums(self.newleader_acks) and self.ctx.my_id in self.newleader_acks:
            self._establish()

    def _establish(self) -> None:
        assert self.epoch is not None
        self.phase = Phase.BROADCAST
        ctx = self.ctx
        before = ctx.configs.active
        ctx.activate(ctx.configs.last_seen)
        for sid, link in self.learners.items():
            if link.stage == LearnerStage.SYNCED:
                ctx.send(sid, P.UPTODATE, -1)
        ctx.outbox.add(Established(ServerState.LEADING, self.epoch, ctx.db.last_processed_zxid))
        active = ctx.configs.active
        if active is not before and dict(active.voters) != dict(before.voters):
            ctx.probe("leader established a config with another voting set")
        if not _remains_leader(ctx.my_id, before, active):
            # startZkServer's getDesignatedLeader: this leader is not in the config it just
            # established; its learners see that at UPTODATE and elect (Learner.syncWithLeader).
            ctx.probe("leader established a config that leaves it out")
            self._hand_over(None)

    # ---- broadcast -----------------------------------------------------------------------

    def _on_ack(self, link: LearnerLink, zxid: int) -> None:
        if link.stage == LearnerStage.NEWLEADER_ACK:
            assert self.epoch is not None
            if zxid == make_zxid(self.epoch, 0):
                self._on_newleader_ack(link.sid)
            elif is_epoch_start(zxid):
                raise PeerProtocolError(f"NEWLEADER ack with zxid {zxid:#x} from {link.sid}")
            else:
                # A 3.8.0 learner logs the proposals it got during sync when NEWLEADER comes,
                # and its SyncThread may ACK them before it ACKs NEWLEADER (ZOOKEEPER-4685).
                # The ACK is a durable proposal ACK; the NEWLEADER ACK still follows.
                self.ctx.probe("leader got a proposal ACK before the NEWLEADER ACK")
                self._on_ack_from(link.sid, zxid)
            return
        if is_epoch_start(zxid):
            return  # the ACK of UPTODATE
        self._on_ack_from(link.sid, zxid)

    def _on_ack_from(self, sid: int, zxid: int) -> None:
        acks = self.outstanding.get(zxid)
        if acks is None or self.failed or not self.allowed_to_commit:
            self.ctx.probe("leader ignored an ACK for a committed or unknown zxid")
            return
        acks[sid] = None
        self._try_to_commit()

    def _has_all_quorums(self, zxid: int, acks: dict[int, None]) -> bool:
        quorums = self.quorums_of.get(zxid)
        if quorums is None:
            return self.ctx.configs.active.is_quorum(acks)
        return all(verifier.is_quorum(acks) for verifier in quorums)

    def _try_to_commit(self) -> None:
        while self.outstanding and self.allowed_to_commit:
            zxid = next(iter(self.outstanding))
            acks = self.outstanding[zxid]
            if not self._has_all_quorums(zxid, acks):
                return
            del self.outstanding[zxid]
            self.quorums_of.pop(zxid, None)
            before = self.ctx.configs.active
            if self.ctx.commit(zxid, leader=True):
                active = self.ctx.configs.active
                designated = self._designated_leader(zxid, acks, before, active)
                if dict(active.voters) != dict(before.voters):
                    self.ctx.probe("reconfig committed with voting set change")
                data = _LONG.pack(designated)
                self.ctx.send_all(self.forwarding, P.COMMITANDACTIVATE, zxid, data)
                if self.observing:
                    self.ctx.send_all(self.observing, P.INFORMANDACTIVATE, zxid, data + self._entry(zxid))
                if designated != self.ctx.my_id:
                    self.ctx.probe("leader handed over to the designated leader")
                    self._hand_over(designated)
            else:
                self.ctx.send_all(self.forwarding, P.COMMIT, zxid)
                self.ctx.metrics.commit_count += 1  # Leader.commit's COMMIT_COUNT
                if self.observing:
                    self.ctx.send_all(self.observing, P.INFORM, zxid, self._entry(zxid))
            self._release_syncs(zxid)

    def _designated_leader(self, zxid: int, acks: dict[int, None], before: QuorumMaj,
                           active: QuorumMaj) -> int:
        """getDesignatedLeader: this leader, if it is a voter of the new config at the same
        quorum address; else the new config's voter that acked the reconfig and most of the
        proposals after it (ids in ascending order, as a small Java HashSet<Long> iterates)."""
        me = self.ctx.my_id
        if _remains_leader(me, before, active):
            return me
        candidates = sorted(sid for sid in acks if active.is_voter(sid) and sid != me)
        if not candidates:
            return me
        current = candidates[0]
        for later, later_acks in self.outstanding.items():
            if later <= zxid:
                continue
            for verifier in self.quorums_of.get(later, (active,)):
                candidates = [sid for sid in candidates if sid in later_acks and verifier.is_voter(sid)]
                if not candidates:
                    return current
                current = candidates[0]
                if len(candidates) == 1:
                    return current
        return current

    def _hand_over(self, designated: int | None) -> None:
        """Commit nothing more; end this role a tick from now (or sooner, when the learners
        leave for the designated leader), and become its learner (updateServerState)."""
        ctx = self.ctx
        self.allowed_to_commit = False
        self.handover_at_ms = ctx.now_ms + ctx.config.tick_time_ms
        if designated is not None:
            state = ServerState.OBSERVING if ctx.configs.active.is_observer(ctx.my_id) else ServerState.FOLLOWING
            self.next_vote = (designated, state)

    def _entry(self, zxid: int) -> bytes:
        """A committed txn's log entry (still in the database: it is not applied yet)."""
        entry = self.ctx.db.entry(zxid)
        if entry is None:
            raise InvariantViolation(f"committed txn {zxid:#x} is not in the database's log")
        return entry

    def monitor_values(self) -> dict[str, int]:
        """The leader's mntr gauges (LeaderZooKeeperServer.registerMetrics)."""
        verifier = self.ctx.configs.active
        synced = [sid for sid in (*self.forwarding, *self.observing)
                  if sid in self.learners and self.learners[sid].stage == LearnerStage.SYNCED]
        last, smallest, largest = self.proposal_sizes or (-1, -1, -1)
        return {
            "learners": len(self.learners),
            "synced_followers": sum(1 for sid in synced if sid in verifier.voters),
            # followers the config leaves out (a reconfig removed them, or they are to join)
            "synced_non_voting_followers": sum(1 for sid in synced if sid in self.forwarding
                                               and sid not in verifier.voters),
            "synced_observers": sum(1 for sid in synced if sid in verifier.observers),
            "pending_syncs": len(self.pending_syncs),
            "last_proposal_size": last,
            "min_proposal_size": smallest,
            "max_proposal_size": largest,
        }

    def synced_sids(self) -> list[int]:
        """isQuorumSynced's ids: this leader and the learners synced with it."""
        return [self.ctx.my_id] + [sid for sid in self.forwarding
                                   if sid in self.learners and self.learners[sid].stage == LearnerStage.SYNCED]

    def _is_sync_request(self, p: QuorumPacket) -> bool:
        return p.data is not None and len(p.data) >= 16 and \
            _INT.unpack_from(p.data, 12)[0] == OpCode.SYNC

    def _on_sync_request(self, sid: int) -> None:
        if not self.outstanding:
            self.ctx.send(sid, P.SYNC, 0)
        else:
            self.pending_syncs.append((sid, self.last_proposed))

    def _release_syncs(self, committed_zxid: int) -> None:
        while self.pending_syncs and self.pending_syncs[0][1] <= committed_zxid:
            sid, _ = self.pending_syncs.pop(0)
            if sid in self.forwarding or sid in self.observing:
                self.ctx.send(sid, P.SYNC, 0)

    def _on_ping_reply(self, link: LearnerLink, p: QuorumPacket) -> None:
        data = p.data or b""
        touches = tuple(_TOUCH.unpack_from(data, i) for i in range(0, len(data) - len(data) % 12, 12))
        if touches:
            self.ctx.outbox.add(SessionsTouched(link.sid, touches))

    def _drop_learner(self, sid: int, *, notify: bool) -> None:
        self.learners.pop(sid, None)
        self.forwarding.pop(sid, None)
        self.observing.pop(sid, None)
        if notify:
            self.ctx.outbox.add(Disconnect(sid))

    def drop_all(self) -> None:
        for sid in list(self.learners):
            self._drop_learner(sid, notify=True)


def _remains_leader(me: int, before: QuorumMaj, after: QuorumMaj) -> bool:
    """A leader stays leader of a new config only as its voter at the same quorum address."""
    return after.is_voter(me) and after.quorum_address(me) == before.quorum_address(me)


def _walk_committed_log(window: list[tuple[int, bytes]], peer_last_zxid: int,
                        max_committed: int) -> tuple[tuple[P, int] | None, list[tuple[int, bytes]]]:
    """queueCommittedProposals: the op packet and the proposals to send, or (None, []) = SNAP."""
    peer_new_epoch = is_epoch_start(peer_last_zxid)
    op: tuple[P, int] | None = None
    previous = None
    queued: list[tuple[int, bytes]] = []
    for zxid, entry in window:
        if zxid < peer_last_zxid:
            previous = zxid
            continue
        if op is None:
            if zxid == peer_last_zxid:
                op = (P.DIFF, max_committed)
                previous = zxid
                continue
            if peer_new_epoch:
                op = (P.DIFF, max_committed)
            elif epoch_of(zxid) != epoch_of(peer_last_zxid) or previous is None:
                return None, []
            else:
                op = (P.TRUNC, previous)
        queued.append((zxid, entry))
    if op is None:
        op = (P.DIFF, max_committed)
    return op, queued


# ---- follower ----------------------------------------------------------------------------

FOLLOWER_ACCEPTS: dict[tuple[Phase, bool], frozenset[P]] = {
    (Phase.DISCOVERY, False): frozenset({P.LEADERINFO}),
    (Phase.SYNCHRONIZATION, False): frozenset({P.DIFF, P.TRUNC, P.SNAP}),
    (Phase.SYNCHRONIZATION, True): frozenset({P.PROPOSAL, P.COMMIT, P.COMMITANDACTIVATE, P.NEWLEADER,
                                              P.UPTODATE, P.PING}),
    (Phase.BROADCAST, True): frozenset({P.PROPOSAL, P.COMMIT, P.COMMITANDACTIVATE, P.PING, P.SYNC,
                                        P.REVALIDATE}),
}


class Follower:
    role_state = ServerState.FOLLOWING
    info_type = P.FOLLOWERINFO
    accepts = FOLLOWER_ACCEPTS
    acks_proposals = True

    def __init__(self, ctx: ZabContext, leader_sid: int, now_ms: int) -> None:
        self.ctx = ctx
        self.leader_sid = leader_sid
        self.phase = Phase.DISCOVERY
        self.failed: str | None = None
        self.epoch: int | None = None
        self.connected = False
        self.connect_attempts = 1
        self.retry_at_ms: int | None = None
        self.sync_mode: P | None = None
        self.snapshot_needed = False
        self.newleader_seen = False
        self.not_committed: list[tuple[int, bytes]] = []  # received in sync, not yet logged
        self.committed_in_sync: list[int] = []
        self.logged_in_sync: list[int] = []
        self.session_touches: dict[int, int] = {}
        self.last_heard_ms = now_ms
        self.sync_started_ms = now_ms  # LEADERINFO's arrival: syncWithLeader's start
        self.newleader_config: QuorumMaj | None = None  # the config NEWLEADER carried
        self.next_vote: tuple[int, ServerState] | None = None  # as Leader.next_vote
        ctx.outbox.add(Connect(leader_sid))

    # ---- inputs --------------------------------------------------------------------------

    def connected_to(self, sid: int, now_ms: int) -> None:
        if sid != self.leader_sid:
            return
        self.connected = True
        self.last_heard_ms = now_ms
        info = LearnerInfo(self.ctx.my_id, PROTOCOL_VERSION, self.ctx.configs.active.version)
        self.ctx.send(sid, self.info_type, make_zxid(self.ctx.accepted_epoch, 0), info.encode())

    def disconnected(self, sid: int, now_ms: int) -> None:
        if sid != self.leader_sid:
            return
        if not self.connected and self.connect_attempts < CONNECT_ATTEMPTS_MAX:
            self.retry_at_ms = now_ms + CONNECT_RETRY_MS
            return
        self.failed = "connection to the leader lost"

    def tick(self, now_ms: int) -> None:
        cfg = self.ctx.config
        if self.retry_at_ms is not None:
            if now_ms >= self.retry_at_ms:
                self.retry_at_ms = None
                self.connect_attempts += 1
                self.last_heard_ms = now_ms
                self.ctx.outbox.add(Connect(self.leader_sid))
            return
        limit_ticks = cfg.sync_limit_ticks if self.phase == Phase.BROADCAST else cfg.init_limit_ticks
        if now_ms - self.last_heard_ms > limit_ticks * cfg.tick_time_ms:
            self.ctx.probe("follower timed out on a silent leader")
            self.failed = "leader silent for too long"

    def next_timer_ms(self) -> int:
        if self.retry_at_ms is not None:
            return self.retry_at_ms
        cfg = self.ctx.config
        limit_ticks = cfg.sync_limit_ticks if self.phase == Phase.BROADCAST else cfg.init_limit_ticks
        return self.last_heard_ms + limit_ticks * cfg.tick_time_ms + 1

    def touch_session(self, session_id: int, timeout_ms: int) -> None:
        self.session_touches[session_id] = timeout_ms

    def step(self, sid: int, p: QuorumPacket, snapshot: bytes, now_ms: int) -> None:
        if sid != self.leader_sid:
            raise PeerProtocolError(f"follower: packet from {sid}, not from leader {self.leader_sid}")
        self.last_heard_ms = now_ms
        type_ = _PACKET_TYPES.get(p.type)
        if type_ is None and (self.sync_mode is not None or self.phase == Phase.BROADCAST):
            # Learner.syncWithLeader skips a type it does not know, Follower.processPacket logs
            # it and reads on; only the handshake before the first sync packet fails on it.
            logger.warning("%s: unknown quorum packet type %d from the leader, ignored",
                           self.role_state.name.lower(), p.type)
            return
        allowed = self.accepts.get((self.phase, self.sync_mode is not None or self.phase == Phase.BROADCAST))
        if type_ is None or allowed is None or type_ not in allowed:
            raise PeerProtocolError(f"{self.role_state.name.lower()}: {p.type} while {self.phase.value}")
        handler = getattr(self, _FOLLOWER_HANDLERS[type_])
        if type_ == P.SNAP:
            handler(p, snapshot)
        else:
            handler(p)

    # ---- discovery -----------------------------------------------------------------------

    def _on_leaderinfo(self, p: QuorumPacket) -> None:
        self.sync_started_ms = self.ctx.now_ms
        new_epoch = epoch_of(p.zxid)
        last_logged = self.ctx.db.last_logged_zxid
        self.epoch = new_epoch
        self.phase = Phase.SYNCHRONIZATION
        if new_epoch > self.ctx.accepted_epoch:
            self.ctx.accepted_epoch = new_epoch
            current = self.ctx.current_epoch
            self.ctx.persist(lambda: self.ctx.send(self.leader_sid, P.ACKEPOCH, last_logged, _INT.pack(current)),
                             accepted_epoch=new_epoch)
        elif new_epoch == self.ctx.accepted_epoch:
            self.ctx.send(self.leader_sid, P.ACKEPOCH, last_logged, _INT.pack(-1))
        else:
            self.failed = f"leader epoch {new_epoch} is below my accepted epoch {self.ctx.accepted_epoch}"

    # ---- synchronization -----------------------------------------------------------------

    def _on_diff(self, p: QuorumPacket) -> None:
        self.sync_mode = P.DIFF

    def _on_trunc(self, p: QuorumPacket) -> None:
        self.sync_mode = P.TRUNC
        self.snapshot_needed = True
        self.ctx.probe("follower truncated its log")
        if self.ctx.db.last_processed_zxid > p.zxid:
            self.ctx.probe("follower rebuilt its tree from its snapshot to truncate")
        self.ctx.db.truncate(p.zxid, self.ctx.load_tree, self.ctx.load_logged)
        self.ctx.configs.forget_after(p.zxid)
        self.ctx.persist(truncate_to_zxid=p.zxid)

    def _on_snap(self, p: QuorumPacket, snapshot: bytes) -> None:
        self.sync_mode = P.SNAP
        self.snapshot_needed = True
        self.ctx.probe("follower loaded a SNAP")
        try:
            tree = parse_snap_stream(snapshot, 0)[0].tree
        except SnapshotFormatError as exc:
            raise PeerProtocolError(f"bad SNAP from {self.leader_sid}: {exc}") from None
        self.ctx.db.load_snapshot(p.zxid, tree)

    def _on_proposal(self, p: QuorumPacket) -> None:
        if self.phase == Phase.BROADCAST:  # Follower.processPacket's, not syncWithLeader's
            self.ctx.metrics.learner_proposal_received_count += 1
        self._receive_proposal(p.zxid, p.data or b"")

    def _on_commit(self, p: QuorumPacket) -> None:
        if self.phase == Phase.BROADCAST:
            self.ctx.metrics.learner_commit_received_count += 1
        self._receive_commit(p.zxid)

    def _receive_proposal(self, zxid: int, entry: bytes) -> None:
        hdr, txn, _digest = decode_txn_entry(entry)
        if hdr.zxid != zxid:
            raise PeerProtocolError(f"PROPOSAL {zxid:#x} carries txn {hdr.zxid:#x}")
        last = self.not_committed[-1][0] if self.not_committed else self.ctx.db.last_logged_zxid
        if zxid <= last:
            raise PeerProtocolError(f"PROPOSAL {zxid:#x} not after {last:#x}")
        if hdr.type == OpCode.RECONFIG and self.ctx.config.reconfig_enabled:
            # Follower.processPacket / syncWithLeader: a proposed config is the last seen one.
            self.ctx.configs.see(with_version(parse_config_text((txn.data or b"").decode()), zxid))
        if self.phase == Phase.BROADCAST:
            self.ctx.log(zxid, entry, (hdr, txn))
            self._ack_when_logged(((zxid, entry),))
        else:
            self.not_committed.append((zxid, entry))

    def _receive_commit(self, zxid: int) -> None:
        if self.phase == Phase.BROADCAST:
            self._apply(zxid)
        elif self.snapshot_needed and not self.newleader_seen:
            # SNAP/TRUNC: commits before NEWLEADER go straight into the tree (and its snapshot).
            if not self.not_committed or self.not_committed[0][0] != zxid:
                raise PeerProtocolError(f"COMMIT {zxid:#x} does not match the first pending proposal")
            zxid, entry = self.not_committed.pop(0)
            self.ctx.log(zxid, entry)
            self._apply(zxid)
        else:
            self.committed_in_sync.append(zxid)

    def _on_newleader(self, p: QuorumPacket) -> None:
        if self.newleader_seen or self.epoch is None or p.zxid != make_zxid(self.epoch, 0):
            raise PeerProtocolError(f"unexpected NEWLEADER {p.zxid:#x}")
        self.newleader_seen = True
        if self.ctx.config.reconfig_enabled and p.data:
            # setLastSeenQuorumVerifier(newLeaderQV): the leader's, even where this learner's
            # own log had seen a later proposal (one the leader's history does not keep).
            self.newleader_config = parse_config_text(p.data.decode())
            self.ctx.configs.adopt_last_seen(self.newleader_config)
        db = self.ctx.db
        snapshot = None
        if self.snapshot_needed:
            snapshot = (db.last_processed_zxid, db.snapshot())
            db.rebase(db.last_processed_zxid)
        entries = tuple(self.not_committed)
        for zxid, entry in entries:
            self.ctx.log(zxid, entry)
        self.logged_in_sync = [z for z, _ in entries]
        self.not_committed = []
        self.ctx.current_epoch = self.epoch
        newleader_zxid = p.zxid
        self.ctx.persist(lambda: self.ctx.send(self.leader_sid, P.ACK, newleader_zxid),
                         snapshot=snapshot, entries=entries, current_epoch=self.epoch)

    def _on_uptodate(self, p: QuorumPacket) -> None:
        if not self.newleader_seen or self.epoch is None:
            raise PeerProtocolError("UPTODATE before NEWLEADER")
        self.phase = Phase.BROADCAST
        metrics = self.ctx.metrics
        sync_time = metrics.observer_sync_time if isinstance(self, Observer) else metrics.follower_sync_time
        sync_time.add(max(0, self.ctx.now_ms - self.sync_started_ms))
        before = self.ctx.configs.active
        self.ctx.activate(self.newleader_config or self.ctx.configs.last_seen)
        if self._reconfigured(before, None):
            # processReconfig(newLeaderQV, null, ...): a new role or a leader out of the
            # config: elect (Learner.syncWithLeader's "changes proposed in reconfig").
            self.ctx.probe("learner elects again: the config established at UPTODATE changes its role or leader")
            return
        self.ctx.send(self.leader_sid, P.ACK, make_zxid(self.epoch, 0))
        self.ctx.outbox.add(Established(self.role_state, self.epoch, self.ctx.db.last_processed_zxid))
        committed = set(self.committed_in_sync)
        for zxid in self.logged_in_sync if self.acks_proposals else ():
            if zxid not in committed:
                self.ctx.send(self.leader_sid, P.ACK, zxid)
        late = tuple(self.not_committed)
        self.not_committed = []
        if late:
            self._log_and_ack(late)
        for zxid in self.committed_in_sync:
            if zxid > self.ctx.db.last_processed_zxid:
                self._apply(zxid)
        self.committed_in_sync = []

    # ---- broadcast -----------------------------------------------------------------------

    def _log_and_ack(self, entries: tuple[tuple[int, bytes], ...]) -> None:
        for zxid, entry in entries:
            self.ctx.log(zxid, entry)
        self._ack_when_logged(entries)

    def _ack_when_logged(self, entries: tuple[tuple[int, bytes], ...]) -> None:
        """Persist entries the database has appended; ACK each once it is on disk (an
        observer ACKs none: it votes for nothing)."""
        if not self.acks_proposals:
            self.ctx.persist(entries=entries)
            return

        def ack() -> None:
            for zxid, _ in entries:
                self.ctx.send(self.leader_sid, P.ACK, zxid)

        self.ctx.persist(ack, entries=entries)

    def _apply(self, zxid: int) -> None:
        self.ctx.commit(zxid, leader=False)

    def _on_commitandactivate(self, p: QuorumPacket) -> None:
        """A reconfig's commit, with the designated leader; its config is activated as the txn
        commits (`_apply`). Not a learner_commit_received_count, as Apache's."""
        self._activate_committed(p.zxid, p.data or b"")

    def _activate_committed(self, zxid: int, data: bytes) -> None:
        if len(data) < 8:
            raise PeerProtocolError("COMMITANDACTIVATE without the designated leader")
        designated = int(_LONG.unpack_from(data, 0)[0])
        before = self.ctx.configs.active
        self._receive_commit(zxid)
        if self.phase != Phase.BROADCAST:
            # In sync the commit waits for UPTODATE; whatever it changes, elect again.
            self.ctx.probe("learner elects again after a reconfig committed during its sync")
            self.failed = "reconfig committed while syncing"
            return
        self._reconfigured(before, designated)

    def _reconfigured(self, before: QuorumMaj, designated: int | None) -> bool:
        """processReconfig on a learner: a new learner type, or another leader, ends this
        role (True). With a designated leader the Peer goes straight to its next role
        (updateServerState); without one (UPTODATE) it elects."""
        active = self.ctx.configs.active
        if active is before:
            return False
        me = self.ctx.my_id
        observer = isinstance(self, Observer)
        # updateLearnerType: an observer of the config observes; a voter, or a member the
        # config leaves out (a non-voting participant), follows.
        role_change = active.is_observer(me) != observer
        if designated is None:
            leader_change = active.quorum_address(self.leader_sid) != before.quorum_address(self.leader_sid) \
                or not active.is_voter(self.leader_sid)
        else:
            leader_change = designated != self.leader_sid
        if not role_change and not leader_change:
            return False
        if designated is not None:
            if designated == me:
                state = ServerState.LEADING
            elif active.is_observer(me):
                state = ServerState.OBSERVING
            else:
                state = ServerState.FOLLOWING
            self.next_vote = (designated, state)
            self.ctx.probe(f"learner changed role after a reconfig: {state.name}")
        self.failed = (f"reconfig: {'new role' if role_change else 'new leader'}"
                       f" (designated leader {designated})")
        return True

    def _on_ping(self, p: QuorumPacket) -> None:
        if self.phase != Phase.BROADCAST:
            return  # a learner in sync ignores PINGs
        data = b"".join(_TOUCH.pack(s, t) for s, t in self.session_touches.items())
        self.session_touches.clear()
        self.ctx.send(self.leader_sid, P.PING, p.zxid, data)

    def _on_sync(self, p: QuorumPacket) -> None:
        self.ctx.outbox.add(SyncReleased())

    def _on_revalidate(self, p: QuorumPacket) -> None:
        """The leader's answer to our REVALIDATE (Learner.revalidate)."""
        session_id, valid = decode_revalidate_reply(p.data)
        self.ctx.outbox.add(SessionRevalidated(session_id, valid, p.zxid))


# ---- observer ----------------------------------------------------------------------------

OBSERVER_ACCEPTS: dict[tuple[Phase, bool], frozenset[P]] = {
    (Phase.DISCOVERY, False): frozenset({P.LEADERINFO}),
    (Phase.SYNCHRONIZATION, False): frozenset({P.DIFF, P.TRUNC, P.SNAP}),
    (Phase.SYNCHRONIZATION, True): frozenset({P.PROPOSAL, P.COMMIT, P.INFORM, P.INFORMANDACTIVATE, P.NEWLEADER,
                                              P.UPTODATE, P.PING}),
    (Phase.BROADCAST, True): frozenset({P.INFORM, P.INFORMANDACTIVATE, P.PROPOSAL, P.COMMIT, P.PING, P.SYNC,
                                        P.REVALIDATE}),
}


class Observer(Follower):
    """Q/Observer.java: a learner that votes for nothing. It registers with OBSERVERINFO and
    syncs as a follower does (ACKing only NEWLEADER and UPTODATE); then the leader sends it each
    txn once committed (INFORM; INFORMANDACTIVATE for a reconfig, after the designated
    leader's id), which it logs and applies. PROPOSAL and COMMIT in broadcast are ignored, as
    Java's observer does."""

    role_state = ServerState.OBSERVING
    info_type = P.OBSERVERINFO
    accepts = OBSERVER_ACCEPTS
    acks_proposals = False

    def _on_proposal(self, p: QuorumPacket) -> None:
        if self.phase == Phase.BROADCAST:
            logger.warning("observer: ignoring PROPOSAL 0x%x", p.zxid)
            return
        super()._on_proposal(p)

    def _on_commit(self, p: QuorumPacket) -> None:
        if self.phase == Phase.BROADCAST:
            logger.warning("observer: ignoring COMMIT 0x%x", p.zxid)
            return
        super()._on_commit(p)

    def _on_ping(self, p: QuorumPacket) -> None:
        super()._on_ping(p)
        if self.phase == Phase.BROADCAST:
            self.ctx.outbox.add(LeaderPinged(p.zxid))

    def _on_inform(self, p: QuorumPacket) -> None:
        self.ctx.probe("observer got an INFORM")
        if self.phase == Phase.BROADCAST:  # Observer.processPacket's INFORM
            self.ctx.metrics.learner_commit_received_count += 1
        self._receive_proposal(p.zxid, p.data or b"")
        self._receive_commit(p.zxid)

    def _on_informandactivate(self, p: QuorumPacket) -> None:
        data = p.data or b""
        if len(data) < 8:
            raise PeerProtocolError("INFORMANDACTIVATE without the designated leader")
        # The config activates as the txn commits (ZabContext.commit), as for COMMITANDACTIVATE.
        self._receive_proposal(p.zxid, data[8:])
        self._activate_committed(p.zxid, data)
