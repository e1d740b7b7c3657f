"""The simulated world: N peers, their disks, TCP-like links, faults and a write workload.

Rule 1: one seed, one history. Every random draw comes from a named stream derived from the
seed (network, disk, faults, workload), events run in (time_ms, sequence) order, and nothing
iterates an unordered set, so the trace digest depends on the seed alone.
Rule 2: links behave like TCP: FIFO per connection; a reset loses in-flight data and tells
both ends; a partition holds quorum-port data until it heals (TCP retransmits) and drops
election frames (QuorumCnxManager's queues may drop them; FLE re-sends).
Rule 3: each member's dataDir is bytes on a simulated disk written by the real storage code
(disk.py): a crash loses every write not yet fsynced, may tear what was being written, and a
restart is the real start-up from what the disk holds.
Rule 4: the checker runs on every effect that can break an invariant.
Rule 5: each peer has its server layer (members.py: the ZooKeeperServer and commit stage of
its established role, as in production) and simulated clients (clients.py) talk to those
servers over client links; what they see is checked (client_checker.py) on every seed.
A drain never nests (as QuorumDriver's): effects produced while one runs wait for its loop.
Rule 6: seeds from RECONFIG_SEEDS_FROM draw, one in two, a reconfigEnabled world in which the
leader's planner (Apache's checks) changes the voting set while clients work (a voter leaves,
the leader too; a non-voter or spare joins; a voter becomes an observer; an observer leaves);
each member's config file (`config_files`) is rewritten on WriteConfigFiles and read at start.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import math
import random
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from jute.codes import Err, OpCode, ServerState
from jute.codes import QuorumPacketType as P
from jute.data import ACL, Id
from jute.proto import ReconfigRequest
from jute.txn import CreateTxn, SetDataTxn, TxnHeader
from pyzk.config import ServerConfig
from pyzk.pipeline.prep import Prepared
from pyzk.quorum.effects import (
    Apply,
    Connect,
    Disconnect,
    Established,
    LeaderPinged,
    LearnerRequest,
    Persist,
    Ready,
    RoleChanged,
    SendNotification,
    SendPacket,
    SessionRevalidated,
    SessionsTouched,
    SyncReleased,
    WriteConfigFiles,
)
from pyzk.quorum.errors import InvariantViolation
from pyzk.quorum.peer import Peer
from pyzk.quorum.reconfig import ReconfigPlanner, ReconfigRefused
from pyzk.quorum.verifier import QuorumMaj
from pyzk.quorum.zab import Leader, LearnerStage, Phase, Probe, ZabConfig
from pyzk.quorum.zxid import hex_zxid
from pyzk.sim.checker import ZabChecker
from pyzk.sim.client_checker import ClientChecker
from pyzk.sim.clients import ClientNet, SimClient
from pyzk.sim.disk import SimDisk
from pyzk.sim.members import SimMember, member_config
from pyzk.storage.format import decode_txn_entry
from pyzk.tree.datatree import CONFIG_NODE

OPEN_ACL = [ACL(31, Id("world", "anyone"))]
PARTITION_RETRY_MS = 50
EVENTS_MAX = 2_000_000
DRAIN_ROUNDS_MAX = 100_000  # one committed txn is applied per Ready: a big commit takes many rounds


@dataclass(frozen=True)
class SimOptions:
    peers: int = 3  # voters
    observers: int = 0  # members after the voters (drawn apart from the swarm: old seeds keep theirs)
    tick_time_ms: int = 200
    init_limit_ticks: int = 10
    sync_limit_ticks: int = 5
    commit_log_count: int = 500
    net_delay_ms: tuple[int, int] = (1, 15)
    disk_delay_ms: tuple[int, int] = (1, 8)
    write_interval_ms: int = 40
    fault_interval_ms: int = 700  # mean time between fault events; 0 = no random faults
    faults_ms: int = 15_000  # random faults stop here; then heal and check liveness
    liveness_ms: int = 40_000
    clients: int = 3  # simulated clients through the server layer; 0 = the leader-only workload
    client_timeout_ticks: tuple[int, ...] = (3, 4, 6, 10)  # session timeouts each client draws from
    snap_count: int = 100_000  # zookeeper.snapCount: small values snapshot every few txns
    snapshot_nodes_per_step: int = 1000  # small values make a snapshot span many inputs
    snapshot_size_factor: float = 0.33  # 0: DIFF from the whole in-memory log; -1: never
    pre_alloc_size_kb: int = 4  # txn log files grow in steps of this (zeros)
    snapshot_compression: str = ""  # "" or "gz"
    torn_writes: bool = True  # a crash may interrupt a write and tear what was not fsynced
    slow_disk: float = 0.0  # buggify: the chance that a write takes 20-50 times the disk delay
    clock_drift_ppm: int = 0  # buggify: each member's clock runs up to this much fast or slow
    purge_interval_ms: int = 2000  # autopurge (3 snapshots kept); 0: off
    # reconfigEnabled, reconfigs of the voting set while clients work, and `spares` members
    # that start outside the ensemble's config (each lists itself as an observer)
    reconfig: bool = False
    spares: int = 0
    reconfig_interval_ms: int = 1500

    @classmethod
    def swarm(cls, rng: random.Random) -> SimOptions:
        """vopr's options_swarm: each seed draws its own ensemble and fault mix."""
        return cls(
            peers=rng.choice((3, 3, 5)),
            tick_time_ms=rng.choice((100, 200)),
            init_limit_ticks=rng.choice((5, 10)),
            sync_limit_ticks=rng.choice((3, 5)),
            commit_log_count=rng.choice((500, 8, 3)),
            net_delay_ms=(1, rng.choice((5, 15, 60))),
            disk_delay_ms=(1, rng.choice((3, 10, 40))),
            write_interval_ms=rng.choice((20, 50)),
            fault_interval_ms=rng.choice((300, 700, 1500)),
            faults_ms=rng.choice((6000, 10_000)),
            clients=rng.choice((2, 3, 3, 4)),
            snap_count=rng.choice((100_000, 100_000, 40, 10)),
            snapshot_nodes_per_step=rng.choice((1000, 3, 1)),
            snapshot_size_factor=rng.choice((0.33, 0.0, -1.0)),
            pre_alloc_size_kb=rng.choice((1, 4, 64)),
            snapshot_compression=rng.choice(("", "", "gz")),
            torn_writes=rng.random() < 0.8,
            slow_disk=rng.choice((0.0, 0.0, 0.01, 0.05)),
            clock_drift_ppm=rng.choice((0, 100, 20_000)),
            purge_interval_ms=rng.choice((0, 500, 2000)),
        )


# Seeds from here on draw an observer for one world in three; older seeds keep the worlds
# they had (the regression seeds replay exactly the history that once failed).
OBSERVER_SEEDS_FROM = 12_000


def observers_of(seed: int) -> int:
    return random.Random(f"{seed}-observers").choice((0, 0, 1)) if seed >= OBSERVER_SEEDS_FROM else 0


# Seeds from here on draw a reconfig world (the voting set changes while clients work) one
# time in two; older seeds keep their worlds.
RECONFIG_SEEDS_FROM = 13_000


def reconfig_options(seed: int, options: SimOptions) -> SimOptions:
    if seed < RECONFIG_SEEDS_FROM:
        return options
    rng = random.Random(f"{seed}-reconfig")
    if rng.random() < 0.5:
        return options
    return replace(options, reconfig=True, spares=rng.choice((0, 1, 1)),
                   reconfig_interval_ms=rng.choice((400, 1000, 2000)))


def member_text(sid: int, role: str) -> str:
    """A simulated member's server line value, with its client port (what reconfig wants)."""
    return f"127.0.0.1:{2887 + sid}:{3887 + sid}:{role};127.0.0.1:{2180 + sid}"


class CountingProbe(Probe):
    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()

    def __call__(self, site: str) -> None:
        self.hits[site] += 1


@dataclass
class QuorumLink:
    """One quorum-port TCP connection between `a` (initiator) and `b`."""

    serial: int
    a: int
    b: int
    open: bool = False
    alive: bool = True
    last_delivery_ms: dict[int, int] = field(default_factory=dict)  # per sending side
    in_flight: dict[int, deque[SendPacket]] = field(default_factory=dict)  # per sending side, FIFO


class _ServerLog(logging.Handler):
    """Collects what the server layer logs at WARNING and above while a world runs: an
    "Invariant violated" (or any ERROR) there is a failed seed, the rest goes to the trace."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


SERVER_LOGGERS = ("pyzk.server", "pyzk.pipeline", "pyzk.sessions", "pyzk.storage")


class SimulationFailure(Exception):
    def __init__(self, seed: int, reason: str) -> None:
        super().__init__(f"seed {seed}: {reason}")
        self.seed = seed
        self.reason = reason


class World:
    def __init__(self, seed: int, options: SimOptions | None = None, *, trace: bool = False,
                 random_faults: bool = True) -> None:
        self.seed = seed
        self.options = options or reconfig_options(seed, replace(
            SimOptions.swarm(random.Random(f"{seed}-swarm")), observers=observers_of(seed)))
        self.rng_reconfig = random.Random(f"{seed}-reconfigs")
        self.rng_network = random.Random(f"{seed}-network")
        self.rng_disk = random.Random(f"{seed}-disk")
        self.rng_faults = random.Random(f"{seed}-faults")
        self.rng_workload = random.Random(f"{seed}-workload")
        self.trace_enabled = trace
        self.trace_lines: list[str] = []
        self._trace_hash = hashlib.sha256()
        self.now_ms = 0
        self._events: list[tuple[int, int, str, tuple[Any, ...]]] = []
        self._sequence = 0
        self.voters = list(range(1, self.options.peers + 1))
        members = self.options.peers + self.options.observers
        self.sids = list(range(1, members + self.options.spares + 1))
        voters = QuorumMaj.of_sids(self.voters)
        self.verifier = QuorumMaj(voters.voters, {sid: f"127.0.0.1:{2887 + sid}:{3887 + sid}:observer"
                                                  for sid in self.sids if sid not in voters.voters and sid <= members})
        # The config each member's files hold (the dynamic config file): rewritten whenever a
        # newer config becomes active (WriteConfigFiles), read at every start.
        self.config_files: dict[int, QuorumMaj] = {
            sid: self.verifier if sid <= members else
            replace(self.verifier, observers={**self.verifier.observers, sid: member_text(sid, "observer")})
            for sid in self.sids}
        self.reconfigs_committed = 0
        o = self.options
        self.zab_config = ZabConfig(o.tick_time_ms, o.init_limit_ticks, o.sync_limit_ticks, o.commit_log_count,
                                    snap_count=o.snap_count, snapshot_nodes_per_step=o.snapshot_nodes_per_step,
                                    snapshot_size_factor=o.snapshot_size_factor,
                                    reconfig_enabled=o.reconfig, verify_kept_tree=True)
        self.probe = CountingProbe()
        self.checker = ZabChecker()
        self.disks = {sid: SimDisk(self.members_config(sid), sid, pre_alloc_size_kb=o.pre_alloc_size_kb,
                                   compression=o.snapshot_compression) for sid in self.sids}
        # Buggify: every member's clock has its own offset and rate (none when drift is 0).
        rng_clock = random.Random(f"{seed}-clock")
        drift = o.clock_drift_ppm
        self.clock_offset = {sid: rng_clock.randrange(10_000) if drift else 0 for sid in self.sids}
        self.clock_rate = {sid: 1 + rng_clock.uniform(-drift, drift) / 1e6 for sid in self.sids}
        self.incarnation = {sid: 0 for sid in self.sids}
        self.peers: dict[int, Peer | None] = {}
        self.links: dict[tuple[int, int], QuorumLink] = {}
        self._link_serial = 0
        self.blocked: set[tuple[int, int]] = set()  # (from, to) pairs that cannot talk
        self._timer_at: dict[int, int | None] = {}
        self.writes_submitted = 0
        self.writes_committed = 0
        self.random_faults = random_faults
        self.crash_while_writing: set[int] = set()  # members to crash in their next write
        self.workload_enabled = True
        self._draining: set[int] = set()
        self.open_acl = OPEN_ACL
        self.members = {sid: SimMember(self, sid) for sid in self.sids}
        self.clients_net = ClientNet(self)
        self.client_checker = ClientChecker()
        # Txns a member has in its tree only through a SNAP (in no log of its own): reported
        # with its log when it becomes leader. SNAP in flight -> its txns; member -> its txns.
        self._snap_txns: dict[int, dict[int, bytes]] = {}
        self._inherited: dict[int, dict[int, bytes]] = {}
        self.clients = [SimClient(self, cid) for cid in range(1, o.clients + 1)]
        self._server_log = _ServerLog()
        for sid in self.sids:
            self._start_peer(sid)
        if o.clients:
            for client in self.clients:
                client.start()
        else:
            self._schedule(o.write_interval_ms, "write", ())
        self._schedule(o.tick_time_ms // 2, "expire", ())
        if random_faults and o.fault_interval_ms:
            self._schedule(self.rng_faults.randint(1, 2 * o.fault_interval_ms), "fault", ())
        if o.reconfig:
            self._schedule(self.rng_reconfig.randint(1, 2 * o.reconfig_interval_ms), "reconfig", ())

    # ---- the event loop ------------------------------------------------------------------

    def _schedule(self, at_ms: int, kind: str, args: tuple[Any, ...]) -> None:
        self._sequence += 1
        heapq.heappush(self._events, (at_ms, self._sequence, kind, args))

    def trace(self, line: str) -> None:
        text = f"{self.now_ms:>7} {line}"
        self._trace_hash.update(text.encode() + b"\n")
        if self.trace_enabled:
            self.trace_lines.append(text)

    @property
    def trace_digest(self) -> str:
        return self._trace_hash.hexdigest()

    def clock_ms(self) -> int:
        return self.now_ms

    def peer_now(self, sid: int) -> int:
        """Member `sid`'s clock (buggify: offset and drift), in ms."""
        return self.clock_offset[sid] + int(self.now_ms * self.clock_rate[sid])

    def _world_ms(self, sid: int, peer_ms: int) -> int:
        """The earliest world time at which member `sid`'s clock reads `peer_ms` (not before now)."""
        at = max(self.now_ms, math.ceil((peer_ms - self.clock_offset[sid]) / self.clock_rate[sid]))
        for _ in range(4):  # float rounding: at most a step or two
            if self.clock_offset[sid] + int(at * self.clock_rate[sid]) >= peer_ms:
                break
            at += 1
        return at

    def members_config(self, sid: int) -> ServerConfig:
        o = self.options
        return member_config(sid, o.peers, o.tick_time_ms, o.init_limit_ticks, o.sync_limit_ticks,
                             o.observers + o.spares)

    def call_at(self, at_ms: int, fn: Callable[..., Any], *args: Any) -> None:
        self._schedule(at_ms, "call", (fn, args))

    def _on_call(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        fn(*args)

    def run_until(self, stop_ms: int, condition: Callable[[], bool] | None = None) -> bool:
        """Run events up to `stop_ms` or until `condition()` holds; True if it held."""
        with self._server_logs():
            return self._run_until(stop_ms, condition)

    @contextmanager
    def _server_logs(self) -> Iterator[None]:
        loggers = [logging.getLogger(name) for name in SERVER_LOGGERS]
        for lg in loggers:
            lg.addHandler(self._server_log)
        try:
            yield
        finally:
            for lg in loggers:
                lg.removeHandler(self._server_log)

    def _run_until(self, stop_ms: int, condition: Callable[[], bool] | None) -> bool:
        log = self._server_log.records
        for _ in range(EVENTS_MAX):
            if condition is not None and condition():
                return True
            if not self._events or self._events[0][0] > stop_ms:
                self.now_ms = max(self.now_ms, stop_ms)
                return condition is not None and condition()
            at_ms, _, kind, args = heapq.heappop(self._events)
            self.now_ms = at_ms
            try:
                getattr(self, f"_on_{kind}")(*args)
            except InvariantViolation as exc:
                raise SimulationFailure(self.seed, f"t={self.now_ms} {exc}") from exc
            if log:
                self._check_server_log()
        raise SimulationFailure(self.seed, "event budget exhausted")

    def _check_server_log(self) -> None:
        records, self._server_log.records = self._server_log.records, []
        for record in records:
            text = record.getMessage()
            self.trace(f"server log {record.levelname}: {text}")
            if record.levelno >= logging.ERROR:
                raise SimulationFailure(self.seed, f"t={self.now_ms} server invariant: {record.name}: {text}")

    # ---- peers ---------------------------------------------------------------------------

    def _start_peer(self, sid: int) -> None:
        self.incarnation[sid] += 1
        disk = self.disks[sid]
        image, replayed = disk.start()
        snapshots, logs = disk.file_names()
        self.trace(f"{sid} starts (incarnation {self.incarnation[sid]}, snapshot "
                   f"{hex_zxid(image.snapshot or 0)}, log to "
                   f"{hex_zxid(image.entries[-1][0] if image.entries else image.snapshot or 0)}, "
                   f"{len(snapshots)} snapshots, {len(logs)} logs)")
        assert disk.store is not None
        if disk.store.truncated_at_start:
            self.probe("restart cut a torn txn log tail")
        if disk.store.snapshots_skipped_at_start:
            self.probe("restart passed over a damaged snapshot")
        self.peers[sid] = Peer(sid, self.config_files[sid], image, self.peer_now(sid), self.zab_config, self.probe,
                               store=disk.store, replayed=replayed, metrics=disk.store.metrics)
        self._timer_at[sid] = None
        if self.options.purge_interval_ms:
            self._purge(sid)  # autopurge's first run is at start-up
            self._schedule(self.now_ms + self.options.purge_interval_ms, "purge", (sid, self.incarnation[sid]))
        self._drain(sid)

    def crash(self, sid: int, *, mid_write: bool = False) -> None:
        """Kill `sid` and cut its disk's power; `mid_write`: while it writes (disk.py Rule 2)."""
        if self.peers.get(sid) is None:
            return
        disk = self.disks[sid]
        torn = mid_write and self.options.torn_writes
        self.trace(f"{sid} CRASH ({len(disk.pending)} writes not fsynced{', torn' if torn else ''})")
        self.peers[sid] = None
        if disk.power_cut(self.rng_disk, torn_writes=torn):
            self.probe("a crash came while a write was not yet fsynced")
        self.incarnation[sid] += 1
        self.members[sid].retire(reset=True)
        for key, link in sorted(self.links.items()):
            if sid in key:
                self._reset_link(link, notify_both=True)

    def restart(self, sid: int) -> None:
        if self.peers.get(sid) is None:
            self._start_peer(sid)

    def _drain(self, sid: int) -> None:
        """Execute a peer's Ready effects in order (the driver's job). Never nested: effects
        produced while a batch executes (a submit from the server layer) run after it."""
        if sid in self._draining:
            return
        self._draining.add(sid)
        try:
            for _ in range(DRAIN_ROUNDS_MAX):
                peer = self.peers.get(sid)
                if peer is None:
                    return
                ready = peer.ready()
                if ready is None:
                    return
                peer.advance(ready)
                for effect in ready.effects:
                    self._execute(sid, peer, effect)
                self._arm_timer(sid, ready)
        finally:
            self._draining.discard(sid)
        raise SimulationFailure(self.seed, f"peer {sid} never became quiet")

    def _arm_timer(self, sid: int, ready: Ready) -> None:
        if ready.timer_ms is not None and ready.timer_ms != self._timer_at.get(sid):
            self._timer_at[sid] = ready.timer_ms
            self._schedule(self._world_ms(sid, ready.timer_ms), "timer", (sid, self.incarnation[sid]))

    def _execute(self, sid: int, peer: Peer, effect: object) -> None:
        if isinstance(effect, SendNotification):
            self._send_notification(sid, effect)
        elif isinstance(effect, SendPacket):
            self._send_packet(sid, effect)
        elif isinstance(effect, Persist):
            disk = self.disks[sid]
            lo, hi = self.options.disk_delay_ms
            delay = self.rng_disk.randint(lo, hi)
            if self.options.slow_disk and self.rng_disk.random() < self.options.slow_disk:
                delay *= self.rng_disk.randint(20, 50)  # buggify: a slow disk
                self.probe("a write was slow")
            disk.last_fsync_ms = max(disk.last_fsync_ms, self.now_ms + delay)
            disk.pending.append((disk.last_fsync_ms, effect))
            self._schedule(disk.last_fsync_ms, "fsync", (sid, self.incarnation[sid]))
        elif isinstance(effect, Connect):
            self._connect(sid, effect.to)
        elif isinstance(effect, Disconnect):
            link = self.links.get(_pair(sid, effect.to))
            if link is not None:
                self._reset_link(link, notify_both=False, notify=effect.to)
        elif isinstance(effect, Apply):
            self.checker.on_apply(sid, effect.zxid, effect.tree_digest, peer, isinstance(peer.role, Leader))
            if isinstance(peer.role, Leader):
                self.writes_committed += 1
            self.trace(f"{sid} apply {hex_zxid(effect.zxid)} digest={effect.tree_digest:#x}")
            self.client_checker.on_commit(effect.zxid, effect.txn_header, effect.txn)
            self.members[sid].on_effect(peer, effect)
        elif isinstance(effect, Established):
            self.trace(f"{sid} ESTABLISHED {effect.state.name} epoch={effect.epoch} "
                       f"zxid={hex_zxid(effect.last_zxid)}")
            if effect.state == ServerState.LEADING:
                self.checker.on_leader_established(sid, effect.epoch, peer)
                self._report_log_committed(peer)
            else:
                self.checker.on_follower_established(sid, peer)
            self.members[sid].on_effect(peer, effect)
        elif isinstance(effect, RoleChanged):
            self.trace(f"{sid} -> {effect.state.name}" + (f" (leader {effect.leader})" if effect.leader >= 0 else ""))
            self.members[sid].on_effect(peer, effect)
        elif isinstance(effect, WriteConfigFiles):
            self.config_files[sid] = effect.verifier
            self.trace(f"{sid} activates config {effect.verifier.version:#x}: voters "
                       f"{sorted(effect.verifier.voters)} observers {sorted(effect.verifier.observers)}")
        elif isinstance(effect, (LearnerRequest, SessionsTouched, SyncReleased, SessionRevalidated, LeaderPinged)):
            self.members[sid].on_effect(peer, effect)

    def _report_log_committed(self, peer: Peer) -> None:
        """An established leader's whole log is committed, including txns it applied when it
        reloaded its log (no Apply effect for those): the client checker must know them."""
        seen = self.client_checker.seen_zxids
        inherited = self._inherited.get(peer.my_id, {})
        for zxid, entry in [*sorted(inherited.items()), *peer.logged_since_snapshot()]:
            if zxid not in seen:
                hdr, txn, _ = decode_txn_entry(entry)
                self.client_checker.on_commit(zxid, hdr, txn)

    # ---- election links ------------------------------------------------------------------

    def _send_notification(self, sid: int, effect: SendNotification) -> None:
        to = effect.to
        if (sid, to) in self.blocked or self.peers.get(to) is None:
            return
        lo, hi = self.options.net_delay_ms
        self._schedule(self.now_ms + self.rng_network.randint(lo, hi), "notification",
                       (sid, to, self.incarnation[sid], self.incarnation[to], effect.notification))

    def _on_notification(self, sid: int, to: int, from_inc: int, to_inc: int, n: Any) -> None:
        peer = self.peers.get(to)
        if peer is None or self.incarnation[to] != to_inc or self.incarnation[sid] != from_inc:
            return
        if (sid, to) in self.blocked:
            return
        if self.trace_enabled:
            self.trace(f"{sid}->{to} {n.state.name} leader={n.leader} zxid={hex_zxid(n.zxid)} "
                       f"ee={n.election_epoch} pe={n.peer_epoch}")
        peer.step_notification(n, self.peer_now(to))
        self._drain(to)

    # ---- quorum links --------------------------------------------------------------------

    def _connect(self, sid: int, to: int) -> None:
        old = self.links.get(_pair(sid, to))
        if old is not None:
            self._reset_link(old, notify_both=False, notify=to)
        self._link_serial += 1
        link = QuorumLink(self._link_serial, sid, to)
        self.links[_pair(sid, to)] = link
        lo, hi = self.options.net_delay_ms
        self._schedule(self.now_ms + self.rng_network.randint(lo, hi), "link_open", (link,))

    def _on_link_open(self, link: QuorumLink) -> None:
        if not link.alive:
            return
        if (link.a, link.b) in self.blocked or (link.b, link.a) in self.blocked or self.peers.get(link.b) is None:
            self.trace(f"{link.a} connect to {link.b} failed")
            self._reset_link(link, notify_both=False, notify=link.a)
            return
        link.open = True
        self.trace(f"{link.a} connected to {link.b} (link {link.serial})")
        peer = self.peers.get(link.a)
        if peer is not None:
            peer.connected(link.b, self.peer_now(link.a))
            self._drain(link.a)

    def _reset_link(self, link: QuorumLink, *, notify_both: bool, notify: int | None = None) -> None:
        if not link.alive:
            return
        link.alive = False
        if self.links.get(_pair(link.a, link.b)) is link:
            del self.links[_pair(link.a, link.b)]
        targets = [link.a, link.b] if notify_both else ([notify] if notify is not None else [])
        lo, hi = self.options.net_delay_ms
        for sid in targets:
            other = link.b if sid == link.a else link.a
            self._schedule(self.now_ms + self.rng_network.randint(lo, hi), "link_closed",
                           (sid, other, self.incarnation[sid]))

    def _on_link_closed(self, sid: int, other: int, inc: int) -> None:
        peer = self.peers.get(sid)
        if peer is None or self.incarnation[sid] != inc:
            return
        current = self.links.get(_pair(sid, other))
        if current is not None and current.alive:
            return  # a newer connection replaced it; the old one's close is old news
        self.trace(f"{sid} link to {other} closed")
        peer.disconnected(other, self.peer_now(sid))
        self._drain(sid)

    def send_server_packet(self, sid: int, to: int, packet: Any) -> bool:
        """A packet the server layer writes on the quorum link itself (REQUEST, REVALIDATE)."""
        link = self.links.get(_pair(sid, to))
        if link is None or not link.alive or not link.open:
            return False
        self._send_packet(sid, SendPacket(to, packet))
        return True

    def _send_packet(self, sid: int, effect: SendPacket) -> None:
        link = self.links.get(_pair(sid, effect.to))
        if link is None or not link.alive or not link.open:
            return
        lo, hi = self.options.net_delay_ms
        at_ms = max(link.last_delivery_ms.get(sid, 0), self.now_ms + self.rng_network.randint(lo, hi))
        link.last_delivery_ms[sid] = at_ms
        link.in_flight.setdefault(sid, deque()).append(effect)
        if effect.packet.type == P.SNAP:
            sender = self.peers[sid]
            assert sender is not None
            snap_zxid = effect.packet.zxid
            txns = {z: e for z, e in self._inherited.get(sid, {}).items() if z <= snap_zxid}
            txns.update((z, e) for z, e in sender.db.log if z <= snap_zxid)
            self._snap_txns[id(effect)] = txns
        self._schedule(at_ms, "packet", (link, sid, effect.to))

    def _on_packet(self, link: QuorumLink, sid: int, to: int) -> None:
        """Deliver the oldest in-flight packet from `sid` on this link (events are tokens)."""
        if not link.alive:
            return
        if (sid, to) in self.blocked:
            # TCP keeps retransmitting: the data waits for the partition to heal.
            self._schedule(self.now_ms + PARTITION_RETRY_MS, "packet", (link, sid, to))
            return
        effect = link.in_flight[sid].popleft()
        snap_txns = self._snap_txns.pop(id(effect), None)
        peer = self.peers.get(to)
        if peer is None:
            return
        if snap_txns is not None:
            self._inherited[to] = snap_txns
        p = effect.packet
        self.trace(f"{sid}->{to} {P(p.type).name} zxid={hex_zxid(p.zxid)}")
        peer.step_packet(sid, p, effect.snapshot, self.peer_now(to))
        self._drain(to)

    # ---- disk, timers --------------------------------------------------------------------

    def _on_fsync(self, sid: int, inc: int) -> None:
        peer = self.peers.get(sid)
        disk = self.disks[sid]
        if peer is None or self.incarnation[sid] != inc or not disk.pending:
            return
        # Group commit, as the driver's storage thread: every write due by now becomes durable
        # in one batch, and the peer hears of it once.
        if sid in self.crash_while_writing:
            self.crash_while_writing.discard(sid)
            down = sum(1 for s in self.sids if self.peers.get(s) is None)
            if self.now_ms < self.options.faults_ms and down < self._crash_budget():
                self.crash(sid, mid_write=True)
                return
        last_id = disk.write_due(self.now_ms)
        if last_id is None:
            return
        peer.persisted(last_id, self.peer_now(sid))
        self._drain(sid)

    def _purge(self, sid: int) -> None:
        peer = self.peers.get(sid)
        if peer is None:
            return
        if _syncing(peer):
            self.probe("purge while a learner syncs")
        removed = self.disks[sid].purge()
        if removed:
            self.probe("autopurge removed files")
            self.trace(f"{sid} purged {removed} files")

    def _on_purge(self, sid: int, inc: int) -> None:
        if self.peers.get(sid) is None or self.incarnation[sid] != inc:
            return
        self._purge(sid)
        self._schedule(self.now_ms + self.options.purge_interval_ms, "purge", (sid, inc))

    def _on_timer(self, sid: int, inc: int) -> None:
        peer = self.peers.get(sid)
        if peer is None or self.incarnation[sid] != inc:
            return
        self._timer_at[sid] = None
        peer.tick(self.peer_now(sid))
        self._drain(sid)

    # ---- workload and faults -------------------------------------------------------------

    def established_leaders(self) -> list[int]:
        return [sid for sid in self.sids
                if (p := self.peers.get(sid)) is not None and isinstance(p.role, Leader) and p.established]

    def _on_expire(self) -> None:
        """The leader's session expiry loop (quorum_main._expire_sessions): every tick / 2."""
        for sid in self.sids:
            server = self.members[sid].leader_server
            if server is not None and self.peers.get(sid) is not None:
                server.expire_sessions()
        self._schedule(self.now_ms + self.options.tick_time_ms // 2, "expire", ())

    def _submit_internal(self, sid: int, session_id: int, cxid: int, txn_type: int, txn: Any) -> int | None:
        """A txn made without a client (the leader-only workload, scenarios): proposed through
        the leader's commit stage, which owns the zxids (like the container sweeper's)."""
        member = self.members[sid]
        server = member.leader_server
        if server is None:
            return None
        zxid = server.next_zxid
        before = member.commit.last_proposed_zxid  # type: ignore[union-attr]
        server.commit.submit(Prepared(TxnHeader(session_id, cxid, zxid, self.now_ms, txn_type), txn))
        return zxid if member.commit is not None and member.commit.last_proposed_zxid != before else None

    def _on_write(self) -> None:
        if self.workload_enabled:
            for sid in self.established_leaders():
                n = self.writes_submitted
                if n > 0 and self.rng_workload.random() < 0.4:
                    txn: Any = SetDataTxn(f"/w{self.rng_workload.randrange(n)}", b"v%d" % n, n)
                    txn_type = OpCode.SET_DATA
                else:
                    txn = CreateTxn(f"/w{n}", b"d%d" % n, OPEN_ACL, False, n + 1)
                    txn_type = OpCode.CREATE
                if self._submit_internal(sid, 0x100 + sid, n, txn_type, txn) is not None:
                    self.writes_submitted += 1
            self._schedule(self.now_ms + self.options.write_interval_ms, "write", ())

    def _on_fault(self) -> None:
        o = self.options
        if self.now_ms >= o.faults_ms or not self.random_faults:
            return
        rng = self.rng_faults
        kind = rng.choice(("crash", "crash_unsynced", "restart", "restart", "reset", "partition",
                           "heal", "isolate", "isolate_leader", "cut_client", "damage_snapshot"))
        sid = rng.choice(self.sids)
        down = [s for s in self.sids if self.peers.get(s) is None]
        unsynced = [s for s in self.sids if self.disks[s].pending and self.peers.get(s) is not None]
        may_crash = len(down) < self._crash_budget()
        if kind == "crash" and may_crash and o.torn_writes and rng.random() < 0.7:
            self.crash_while_writing.add(sid)  # at its next write (buggify)
        elif kind == "crash" and may_crash:
            self.crash(sid)
        elif kind == "crash_unsynced" and may_crash and unsynced:
            # buggify: the crash point between a write and its fsync
            self.crash(rng.choice(unsynced), mid_write=True)
        elif kind == "isolate_leader" and self.established_leaders():
            self.isolate(rng.choice(self.established_leaders()), clients=rng.random() < 0.5)
        elif kind == "damage_snapshot" and down:
            victim = rng.choice(down)
            if self.disks[victim].damage_newest_snapshot(self.rng_disk):
                self.trace(f"{victim} newest snapshot damaged")
        elif kind == "restart" and down:
            self.restart(rng.choice(down))
        elif kind == "reset" and self.links:
            keys = sorted(self.links)
            link = self.links[keys[rng.randrange(len(keys))]]
            self.trace(f"reset link {link.a}-{link.b}")
            self._reset_link(link, notify_both=True)
        elif kind == "partition":
            other = rng.choice([s for s in self.sids if s != sid])
            self.partition_pairs([(sid, other)], symmetric=rng.random() < 0.7)
        elif kind == "isolate":
            self.isolate(sid, clients=rng.random() < 0.3)
        elif kind == "cut_client" and self.clients:
            client = rng.choice(self.clients)
            if client.conn is not None:
                self.cut_client(client.cid, client.conn.sid)
        elif kind == "heal":
            self.heal()
        self._schedule(self.now_ms + rng.randint(1, 2 * o.fault_interval_ms), "fault", ())

    def _on_reconfig(self) -> None:
        """A reconfig through the leader's planner (Apache's checks), while clients work: a
        voter leaves (a follower or the leader), a non-voter joins as a participant, a role
        changes, an observer leaves."""
        o = self.options
        if self.now_ms >= o.faults_ms + o.liveness_ms // 4:
            return
        self._schedule(self.now_ms + self.rng_reconfig.randint(1, 2 * o.reconfig_interval_ms), "reconfig", ())
        leaders = self.established_leaders()
        if not leaders:
            return
        sid = leaders[0]
        peer = self.peer(sid)
        rng = self.rng_reconfig
        current = peer.ctx.configs.last_seen
        voters = sorted(current.voters)
        others = [s for s in self.sids if s not in current.voters]
        kind = rng.choice(("remove_follower", "remove_leader", "add", "add", "to_observer", "remove_observer"))
        joining = leaving = None
        if kind == "remove_follower" and len(voters) > 1:
            leaving = str(rng.choice([s for s in voters if s != sid]))
        elif kind == "remove_leader":
            leaving = str(sid)
        elif kind == "add" and others:
            new = rng.choice(others)
            joining = f"server.{new}={member_text(new, 'participant')}"
        elif kind == "to_observer":
            new = rng.choice(voters)
            joining = f"server.{new}={member_text(new, 'observer')}"
        elif kind == "remove_observer" and current.observers:
            leaving = str(rng.choice(sorted(current.observers)))
        else:
            return
        version = rng.choice((-1, -1, current.version, current.version - 1))
        outcome = self.reconfig(joining, leaving, version, kind)
        self.probe(f"reconfig {outcome}: {kind}" if outcome == "proposed" else f"reconfig refused: {outcome}")

    def reconfig(self, joining: str | None = None, leaving: str | None = None, version: int = -1,
                 kind: str = "reconfig") -> str:
        """A reconfig request to the established leader, planned with its configs (Apache's
        checks) and proposed: "proposed", "no leader", or the refusal's error name."""
        leaders = self.established_leaders()
        if not leaders:
            return "no leader"
        sid = leaders[0]
        peer = self.peer(sid)
        server = self.members[sid].leader_server
        if server is None or not isinstance(peer.role, Leader):
            return "no leader"
        zxid = server.next_zxid
        planner = ReconfigPlanner(peer.ctx.configs, peer.role.synced_sids)
        try:
            planned = planner.plan(ReconfigRequest(joining, leaving, None, version), zxid)
        except ReconfigRefused as exc:
            self.trace(f"{sid} {kind} refused: {Err(exc.err).name} ({exc.reason})")
            return Err(exc.err).name
        self.trace(f"{sid} {kind} at {hex_zxid(zxid)}: voters {sorted(planned.voters)} "
                   f"observers {sorted(planned.observers)}")
        txn = SetDataTxn(CONFIG_NODE, planned.config_text().encode(), -1)
        if self._submit_internal(sid, 0x77, zxid & 0xFFFF, OpCode.RECONFIG, txn) is None:
            return "no leader"
        return "proposed"

    def _crash_budget(self) -> int:
        """How many members may be down at once: a minority of the voters (an observer down
        counts too, which only makes the budget stricter)."""
        return (len(self.voters) - 1) // 2 + 1

    def partition_pairs(self, pairs: list[tuple[int, int]], *, symmetric: bool = True) -> None:
        for a, b in pairs:
            self.blocked.add((a, b))
            if symmetric:
                self.blocked.add((b, a))
        self.trace(f"partition {sorted(self.blocked)}")

    def isolate(self, sid: int, *, clients: bool = False) -> None:
        """Cut `sid` off from the other servers (and from every client, with `clients`)."""
        if clients:
            self.clients_net.isolated.add(sid)
            self.trace(f"clients cannot reach {sid}")
        self.partition_pairs([(sid, s) for s in self.sids if s != sid])

    def cut_client(self, cid: int, sid: int) -> None:
        """Client `cid` and server `sid` cannot talk until the next heal."""
        self.clients_net.cut(cid, sid)
        self.trace(f"client {cid} cut from {sid}")

    def partition(self, *groups: set[int]) -> None:
        """Only servers in the same group can talk."""
        group_of = {sid: i for i, g in enumerate(groups) for sid in g}
        pairs = [(a, b) for a in self.sids for b in self.sids
                 if a != b and group_of.get(a, -1 - a) != group_of.get(b, -1 - b)]
        self.partition_pairs(pairs)

    def heal_servers(self) -> None:
        """Servers can talk again; clients cut from servers stay cut."""
        if self.blocked:
            self.blocked.clear()
            self.trace("heal servers")

    def heal(self) -> None:
        net = self.clients_net
        if self.blocked or net.cuts or net.isolated:
            self.blocked.clear()
            net.cuts.clear()
            net.isolated.clear()
            self.trace("heal")

    # ---- the scenario DSL ----------------------------------------------------------------

    def peer(self, sid: int) -> Peer:
        peer = self.peers.get(sid)
        if peer is None:
            raise SimulationFailure(self.seed, f"peer {sid} is down")
        return peer

    def leader(self) -> int:
        leaders = self.established_leaders()
        if len(leaders) != 1:
            raise SimulationFailure(self.seed, f"expected one leader, have {leaders}: {self.describe()}")
        return leaders[0]

    def run_for(self, duration_ms: int) -> None:
        self.run_until(self.now_ms + duration_ms)

    def run_until_stable(self, within_ms: int = 20_000) -> None:
        if not self.run_until(self.now_ms + within_ms, self.stable):
            raise SimulationFailure(self.seed, "not stable: " + self.describe())

    def submit_to_leader(self, path: str, data: bytes = b"") -> int:
        sid = self.leader()
        zxid = self._submit_internal(sid, 0x99, 0, OpCode.CREATE, CreateTxn(path, data, OPEN_ACL, False, 1))
        if zxid is None:
            raise SimulationFailure(self.seed, f"leader {sid} refused a write")
        return zxid

    # ---- liveness and agreement at the end -----------------------------------------------

    def stable(self) -> bool:
        """One established leader, everyone else following it in broadcast, all in sync."""
        peers = [self.peers.get(sid) for sid in self.sids]
        if any(p is None or not p.established for p in peers):
            return False
        leaders = self.established_leaders()
        if len(leaders) != 1:
            return False
        zxids = {p.db.last_processed_zxid for p in peers if p is not None}
        return len(zxids) == 1

    def run(self) -> None:
        """The whole VOPR run: faults, then heal + restart everyone, then require stability."""
        o = self.options
        self.run_until(o.faults_ms)
        self.heal()
        with self._server_logs():
            for sid in self.sids:
                self.restart(sid)
        self._check_server_log()
        self.trace("faults off; liveness phase")
        self.run_until(o.faults_ms + o.liveness_ms // 2)
        self.workload_enabled = False
        if not self.run_until(o.faults_ms + o.liveness_ms, self.stable):
            raise SimulationFailure(self.seed, "liveness: no stable ensemble after healing "
                                    + self.describe())
        self.check_agreement()
        self.check_clients()

    def check_clients(self) -> None:
        """The client-visible rules that need the end of the history (client_checker.py)."""
        trees = {sid: self.peer(sid).db.tree for sid in self.sids}
        try:
            self.client_checker.check_final(trees)
        except InvariantViolation as exc:
            raise SimulationFailure(self.seed, f"end: {exc}") from exc

    def check_agreement(self) -> None:
        digests = {}
        for sid in self.sids:
            peer = self.peers[sid]
            assert peer is not None
            digests[sid] = (peer.db.last_processed_zxid, peer.db.tree.digest)
        if len(set(digests.values())) != 1:
            raise SimulationFailure(self.seed, f"agreement: final trees differ {digests}")

    def describe(self) -> str:
        parts = []
        for sid in self.sids:
            p = self.peers.get(sid)
            if p is None:
                parts.append(f"{sid}:down")
            else:
                phase = p.role.phase.value if p.role is not None else "-"
                parts.append(f"{sid}:{p.state.name}/{phase}@{hex_zxid(p.db.last_processed_zxid)}")
        return " ".join(parts)


def _syncing(peer: Peer) -> bool:
    """A learner of this leader, or this follower, is between discovery and UPTODATE."""
    role = peer.role
    if isinstance(role, Leader):
        return any(link.stage != LearnerStage.SYNCED for link in role.learners.values())
    return role is not None and role.phase != Phase.BROADCAST


def _pair(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a < b else (b, a)
