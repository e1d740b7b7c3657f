"""One ensemble member: Fast Leader Election and the Zab roles behind one Step/Ready surface.

Inputs: tick(now_ms), step_notification(n), step_packet(sid, packet, snapshot), connected(sid),
disconnected(sid), persisted(persist_id), submit(...) on the leader. Output: ready() -> Ready.

Rule 1: LOOKING keeps the tree when the database is the disk image the core itself has written
through Persist effects, and applies every logged txn (ZooKeeper fast-forwards its database
before an election); otherwise (an aborted SNAP or TRUNC sync) it rebuilds the database from
that image, so an aborted sync leaves nothing behind. The core keeps a snapshot's serializer
only until its Persist is durable; older snapshots are read back through the Storage.
Rule 2: a role that fails sends the server back to LOOKING and forgets every callback gated on
its unfinished writes. Rule 3: no clock, socket or randomness. Rule 4: a periodic snapshot is
serialized in steps, one per tick, with a tick due 1 ms after each input while it runs.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from jute.codes import ServerState
from jute.quorum import QuorumPacket
from pyzk.config import ConfigError
from pyzk.metrics import ServerMetrics
from pyzk.quorum.database import DiskImage, DiskSummary, Storage, ZabDatabase
from pyzk.quorum.effects import (
    Disconnect,
    Outbox,
    Persist,
    Ready,
    RoleChanged,
    SendNotification,
)
from pyzk.quorum.election import FastLeaderElection
from pyzk.quorum.errors import InvariantViolation, PeerProtocolError
from pyzk.quorum.messages import Notification
from pyzk.quorum.reconfig import ReconfigRefused, parse_config_text
from pyzk.quorum.verifier import QuorumMaj
from pyzk.quorum.zab import Follower, Leader, Observer, Phase, Probe, ZabConfig, ZabContext
from pyzk.quorum.zxid import epoch_of
from pyzk.storage.snapshot_format import SnapshotSerializer, parse_snap_stream
from pyzk.tree.datatree import DataTree

logger = logging.getLogger(__name__)

LOOPBACK_NOTIFICATIONS_MAX = 64


class Peer:
    def __init__(self, my_id: int, verifier: QuorumMaj, disk: DiskImage, now_ms: int,
                 config: ZabConfig | None = None, probe: Probe | None = None,
                 store: Storage | None = None, replayed: DataTree | None = None,
                 metrics: ServerMetrics | None = None) -> None:
        """`disk` is what dataDir holds; `replayed`, when given, is its tree already rebuilt
        (start-up recovery did it), else the snapshot is read through `store`. Without a
        `store` the Peer keeps a whole DiskImage of what it persisted (tests). `metrics` is
        the server's ServerMetrics (looking_count, election_time here; the roles' Zab counters)."""
        self.my_id = my_id
        self.metrics = metrics if metrics is not None else ServerMetrics()
        self._looking_since_ms = now_ms
        self.disk = DiskSummary.of(disk)
        self.store = store
        self._image = disk.copy() if store is None else None
        # Snapshots persisted but not reported durable yet: zxid -> (persist id, serializer).
        self._unwritten: dict[int, tuple[int, SnapshotSerializer]] = {}
        # Persists that change the log, not reported durable yet (the store does not have
        # them): read back on top of what the store has (`logged_since_snapshot`).
        self._in_flight: OrderedDict[int, Persist] = OrderedDict()
        self._durable_snapshot = disk.snapshot
        self.config = config or ZabConfig()
        self.outbox = Outbox(mirror=self._mirror)
        db = self._load_database(replayed, list(disk.entries))
        # QuorumPeer.loadDataBase: a missing epoch file is taken from the last zxid's epoch.
        last_epoch = epoch_of(db.last_processed_zxid)
        current = self.disk.current_epoch if self.disk.current_epoch is not None else last_epoch
        accepted = self.disk.accepted_epoch if self.disk.accepted_epoch is not None else current
        self.ctx = ZabContext(my_id, verifier, db, accepted, current, self.config,
                              self.outbox, probe or Probe(), self.load_tree, self.read_logged,
                              self.logged_since_snapshot)
        self.ctx.now_ms = now_ms
        self.ctx.metrics = self.metrics
        if store is not None and self.disk.snapshot is not None:
            self.ctx.snapshot_bytes = store.snapshot_size(self.disk.snapshot)
        self.fle = FastLeaderElection(my_id, self.ctx.configs)
        self.role: Leader | Follower | None = None
        self._settled = False
        self._timer_reported: int | None = None
        self._look(now_ms)

    # ---- observation ---------------------------------------------------------------------

    @property
    def state(self) -> ServerState:
        return self.fle.state

    @property
    def db(self) -> ZabDatabase:
        return self.ctx.db

    @property
    def established(self) -> bool:
        return self.role is not None and self.role.phase == Phase.BROADCAST and not self.role.failed

    # ---- inputs --------------------------------------------------------------------------

    def tick(self, now_ms: int) -> None:
        self._before(now_ms)
        if self._broadcasting():
            self.ctx.step_snapshot()
        if self.role is None:
            self.fle.tick(now_ms)
            self._pump_election(now_ms)
        else:
            self.role.tick(now_ms)
        self._after(now_ms)

    def step_notification(self, n: Notification, now_ms: int) -> None:
        self._before(now_ms)
        if self.role is None and n.config and self.ctx.config.reconfig_enabled:
            self._newer_config(n.config, now_ms)
        self.fle.step(n, now_ms)
        self._pump_election(now_ms)
        self._after(now_ms)

    def step_packet(self, sid: int, packet: QuorumPacket, snapshot: bytes, now_ms: int) -> None:
        self._before(now_ms)
        try:
            if isinstance(self.role, Leader):
                self.role.step(sid, packet, now_ms)
            elif isinstance(self.role, Follower):
                self.role.step(sid, packet, snapshot, now_ms)
            else:
                raise PeerProtocolError(f"quorum packet {packet.type} from {sid} while LOOKING")
        except PeerProtocolError as exc:
            logger.info("peer %d: dropping link to %d: %s", self.my_id, sid, exc)
            if isinstance(self.role, Leader):
                self.role.disconnected(sid)
                self.outbox.add(Disconnect(sid))
            elif isinstance(self.role, Follower):
                self.role.failed = str(exc)
            else:
                self.outbox.add(Disconnect(sid))
        self._after(now_ms)

    def connected(self, sid: int, now_ms: int) -> None:
        self.ctx.now_ms = now_ms
        self.ctx.apply_all()
        if isinstance(self.role, Follower):
            self.role.connected_to(sid, now_ms)
        self._after(now_ms)

    def disconnected(self, sid: int, now_ms: int) -> None:
        self.ctx.now_ms = now_ms
        self.ctx.apply_all()
        if isinstance(self.role, Leader):
            self.role.disconnected(sid)
        elif isinstance(self.role, Follower):
            self.role.disconnected(sid, now_ms)
        self._after(now_ms)

    def persisted(self, persist_id: int, now_ms: int) -> None:
        """Every Persist with id <= persist_id is durable: release what waited for it."""
        self._before(now_ms)
        for zxid, (pid, _) in list(self._unwritten.items()):
            if pid <= persist_id:
                del self._unwritten[zxid]  # the store has it now
        in_flight = self._in_flight
        while in_flight and next(iter(in_flight)) <= persist_id:
            done = in_flight.popitem(last=False)[1]
            if done.snapshot is not None:
                self._durable_snapshot = done.snapshot[0]
        waiting = self.ctx.on_persisted
        while waiting:  # ids are increasing, kept in insertion order: oldest first
            pid = next(iter(waiting))
            if pid > persist_id:
                break
            waiting.popitem(last=False)[1]()
        self._after(now_ms)

    def submit(self, session_id: int, cxid: int, txn_type: int, txn: object, now_ms: int,
               zxid: int | None = None) -> int | None:
        """Leader only: propose a txn (stamped `zxid`, if given); its zxid, or None when not an
        established leader."""
        if not isinstance(self.role, Leader):
            return None
        self._before(now_ms)
        zxid = self.role.submit(session_id, cxid, txn_type, txn, now_ms, zxid)
        self._after(now_ms)
        return zxid

    def touch_session(self, session_id: int, timeout_ms: int) -> None:
        if isinstance(self.role, Follower):
            self.role.touch_session(session_id, timeout_ms)

    # ---- outputs -------------------------------------------------------------------------

    def next_timer_ms(self) -> int | None:
        timer = self.fle.next_timer_ms() if self.role is None else self.role.next_timer_ms()
        if self.ctx.snapshot_running is not None:
            # A snapshot in steps: the next step is a tick 1 ms after the last input.
            soon = self.ctx.now_ms + 1
            return soon if timer is None else min(timer, soon)
        return timer

    def ready(self) -> Ready | None:
        if not self.outbox.effects and self.ctx.to_apply:
            # The host executed every earlier effect: the next committed txn may enter the tree.
            self.ctx.apply_next()
        timer = self.next_timer_ms()
        if not self.outbox.effects and timer == self._timer_reported:
            return None
        return Ready(tuple(self.outbox.effects), timer)

    def advance(self, ready: Ready) -> None:
        del self.outbox.effects[:len(ready.effects)]
        self._timer_reported = ready.timer_ms

    # ---- the database and its disk image ------------------------------------------------

    def _mirror(self, persist: Persist) -> None:
        self.disk.apply(persist)
        if self._image is not None:
            self._image.apply(persist)
        elif persist.entries or persist.truncate_to_zxid is not None or persist.snapshot is not None:
            self._in_flight[persist.persist_id] = persist
        if persist.snapshot is not None:
            zxid, serializer = persist.snapshot
            self._unwritten[zxid] = (persist.persist_id, serializer)
            self.ctx.snapshot_bytes = sum(len(chunk) for chunk in serializer.body_chunks())

    def read_logged(self, from_zxid: int, before_zxid: int, limit_bytes: int) -> list[tuple[int, bytes]] | None:
        """Durable logged txns older than the database's log (Storage.read_committed)."""
        if self.store is None:
            return None
        return self.store.read_committed(from_zxid, before_zxid, limit_bytes)

    def load_tree(self, zxid: int) -> DataTree:
        """The tree of the snapshot the core persisted at `zxid` (Rule 1)."""
        unwritten = self._unwritten.get(zxid)
        if zxid == 0:
            tree = DataTree()  # no txn applied yet: the initial tree, with or without a file
        elif unwritten is not None:
            tree = parse_snap_stream(unwritten[1].snap_stream(), 0)[0].tree
        elif self.store is None:
            raise InvariantViolation(f"no snapshot store to load snapshot {zxid:#x} from")
        else:
            tree = self.store.load(zxid)
        tree.last_processed_zxid = zxid
        return tree

    def logged_since_snapshot(self) -> list[tuple[int, bytes]]:
        """Every txn logged after the newest snapshot persisted: what the store has, with the
        persists still in flight on top (they will be on disk in this order)."""
        if self._image is not None:
            return list(self._image.entries)
        assert self.store is not None
        being_written = next((p.entries[0][0] for p in self._in_flight.values() if p.entries), None)
        image = DiskImage(self._durable_snapshot,
                          self.store.logged_after(self._durable_snapshot or 0, being_written))
        for persist in self._in_flight.values():
            if persist.entries:  # written already, perhaps, but not reported durable: once only
                first = persist.entries[0][0]
                image.entries = [(z, e) for z, e in image.entries if z < first]
            image.apply(persist)
        return image.entries

    def _load_database(self, replayed: DataTree | None = None,
                       entries: list[tuple[int, bytes]] | None = None) -> ZabDatabase:
        zxid = self.disk.snapshot or 0
        if entries is None:
            entries = self.logged_since_snapshot()
        return ZabDatabase(zxid, replayed or self.load_tree(zxid), entries, keep=self.config.commit_log_count)

    def _verify_kept_tree(self) -> None:
        kept, rebuilt = self.ctx.db.tree, self._load_database().tree
        if (kept.last_processed_zxid, kept.digest, len(kept.nodes), kept.sessions) != \
                (rebuilt.last_processed_zxid, rebuilt.digest, len(rebuilt.nodes), rebuilt.sessions):
            raise InvariantViolation(f"peer {self.my_id}: the tree kept across an election differs "
                                     f"from its disk image at {kept.last_processed_zxid:#x}")

    # ---- transitions ---------------------------------------------------------------------

    def _look(self, now_ms: int, next_vote: tuple[int, ServerState] | None = None) -> None:
        """Back to LOOKING: elect; or, with `next_vote` (a committed reconfig named the
        leader), take that role at once (QuorumPeer.updateServerState)."""
        self.role = None
        self._settled = False
        self.ctx.on_persisted.clear()
        self.ctx.to_apply.clear()  # every logged txn is applied below
        self.ctx.snapshot_due = False
        self.ctx.abandon_snapshot()
        if self.ctx.db.matches(self.disk):
            if self.ctx.db.fast_forward():
                self.ctx.probe("election applied logged txns to the tree it kept")
            if self.ctx.config.verify_kept_tree:
                self._verify_kept_tree()
        else:
            self.ctx.probe("election rebuilt the database from its disk image")
            self.ctx.db = self._load_database()
        self.outbox.add(RoleChanged(ServerState.LOOKING, -1, self.ctx.current_epoch))
        self.metrics.looking_count += 1  # QuorumPeer.run's LOOKING_COUNT
        self._looking_since_ms = now_ms
        # A reconfig txn in the log stays a pending config (NEWLEADER may have set another).
        self.ctx.see_logged_reconfigs()
        self.fle.start(now_ms, self.ctx.db.last_logged_zxid, self.ctx.current_epoch)
        if next_vote is not None:
            self.fle.take_sends()  # the role is known: no election round goes out
            leader, state = next_vote
            self.fle.adopt(leader, state, self.ctx.db.last_logged_zxid, self.ctx.current_epoch)
        self._pump_election(now_ms)

    def _pump_election(self, now_ms: int) -> None:
        for _ in range(LOOPBACK_NOTIFICATIONS_MAX):
            sends = self.fle.take_sends()
            if not sends:
                break
            for to, n in sends:
                if to == self.my_id:
                    self.fle.step(n, now_ms)  # Java's loopback queue
                else:
                    self.outbox.add(SendNotification(to, n))
        vote = self.fle.decided
        if vote is None or self.role is not None:
            return
        self.fle.decided = None
        epoch = self.ctx.current_epoch
        if self.fle.state in (ServerState.LEADING, ServerState.FOLLOWING):
            # Leader.lead / Follower.followLeader's ELECTION_TIME (an observer records none).
            self.metrics.election_time.add(max(0, now_ms - self._looking_since_ms))
        if self.fle.state == ServerState.LEADING:
            self.outbox.add(RoleChanged(ServerState.LEADING, self.my_id, epoch))
            self.role = Leader(self.ctx, now_ms)
        elif self.fle.state == ServerState.FOLLOWING:
            self.outbox.add(RoleChanged(ServerState.FOLLOWING, vote.leader, epoch))
            self.role = Follower(self.ctx, vote.leader, now_ms)
        elif self.fle.state == ServerState.OBSERVING:
            self.outbox.add(RoleChanged(ServerState.OBSERVING, vote.leader, epoch))
            self.role = Observer(self.ctx, vote.leader, now_ms)

    def _newer_config(self, text: str, now_ms: int) -> None:
        """FastLeaderElection: a LOOKING server that hears of a newer config activates it and
        restarts its election with the new voters (processReconfig, shuttingDownLE)."""
        tail = text.rsplit("\n", 1)[-1]
        if not tail.startswith("version="):
            return
        try:
            version = int(tail[len("version="):], 16)
        except ValueError:
            return
        if version <= self.ctx.configs.active.version:
            return
        try:
            verifier = parse_config_text(text)
        except (ConfigError, ValueError, ReconfigRefused):
            logger.error("peer %d: bad config in a notification (version %x)", self.my_id, version)
            return
        self.ctx.probe("election activated a newer config from a notification")
        self.ctx.activate(verifier)
        self.fle.start(now_ms, self.ctx.db.last_logged_zxid, self.ctx.current_epoch)

    def _broadcasting(self) -> bool:
        return self.role is not None and self.role.phase == Phase.BROADCAST and not self.role.failed

    def _before(self, now_ms: int) -> None:
        """Work the previous input left due, once its effects were executed (a snapshot)."""
        self.ctx.now_ms = now_ms
        self.ctx.apply_all()
        if self._broadcasting():
            self.ctx.snapshot_if_due()

    def _after(self, now_ms: int) -> None:
        role = self.role
        if role is None:
            return
        if role.phase == Phase.BROADCAST and not self._settled and not role.failed:
            self._settled = True
            self.fle.settle_epoch(role.epoch if role.epoch is not None else self.ctx.current_epoch)
        if role.failed:
            logger.info("peer %d: %s -> LOOKING: %s", self.my_id, role.role_state.name, role.failed)
            if isinstance(role, Leader):
                role.drop_all()
            else:
                self.outbox.add(Disconnect(role.leader_sid))
            self._look(now_ms, role.next_vote)
            self._after(now_ms)
