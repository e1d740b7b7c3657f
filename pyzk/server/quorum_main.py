"""Run one ensemble member (QuorumPeerMain) until SIGTERM/SIGINT.

Rule 1: clients are served only while the Peer is established (a leader with its NEWLEADER
quorum, a follower after UPTODATE). Each establishment gets a fresh ZooKeeperServer over the
quorum core's tree with the role's commit stage; leaving the role closes every client
connection, as Java shuts its ZooKeeperServer down between roles.
Rule 2: only the leader expires sessions and sweeps containers.
Rule 3: the client port stays open throughout; while no role is established it answers
four-letter words with "not currently serving" and closes session requests.
Rule 4: with readonlymode.enabled, a peer still LOOKING after the grace period serves
read-only clients (pyzk/pipeline/readonly.py) until it leaves LOOKING.
Rule 5: the core writes a config it activates to /zookeeper/config (initConfigInZKDatabase);
with reconfigEnabled, this layer writes it to the config files (server/dynamic_config.py). An
established leader plans reconfigs (pyzk/quorum/reconfig.py) against the core's configs.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import time
from typing import Any

from jute.codes import ServerState
from pyzk.config import ConfigError, QuorumServer, ServerConfig, parse_server
from pyzk.pipeline.commit.follower import FollowerCommit
from pyzk.pipeline.commit.leader import LeaderCommit
from pyzk.pipeline.containers import container_candidates
from pyzk.pipeline.readonly import ReadOnlyZooKeeperServer, read_only_grace_ms
from pyzk.pipeline.roles import build_role
from pyzk.pipeline.zkserver import ZooKeeperServer
from pyzk.quorum.effects import (
    Apply,
    Effect,
    Established,
    LeaderPinged,
    LearnerRequest,
    RoleChanged,
    SessionRevalidated,
    SessionsTouched,
    SyncReleased,
    WriteConfigFiles,
)
from pyzk.quorum.peer import Peer
from pyzk.quorum.verifier import QuorumMaj
from pyzk.quorum.zab import ZabConfig
from pyzk.server.admin import start_admin_server
from pyzk.server.connection import ClientConnection
from pyzk.server.dynamic_config import backup_static_config, write_activated_config
from pyzk.server.metrics import start_metrics_server
from pyzk.server.quorum_disk import QuorumDisk
from pyzk.server.quorum_driver import QuorumDriver, wall_ms
from pyzk.server.quorum_sasl import QuorumAuthConfigError, QuorumSasl, quorum_sasl
from pyzk.server.quorum_tls import quorum_tls
from pyzk.server.sasl_config import sasl_mechanism_factory
from pyzk.server.startup import run_reporting_startup_errors
from pyzk.server.tls import server_ssl_context
from pyzk.storage.errors import StorageError
from pyzk.storage.files import purge
from pyzk.tree.datatree import DataTree

logger = logging.getLogger(__name__)


def _monotonic_ms() -> int:
    return int(time.monotonic() * 1000)


def run_ensemble(config: ServerConfig) -> int:
    try:
        sasl = quorum_sasl(config)  # reads the JAAS file: quorum SASL that cannot run stops start-up
    except QuorumAuthConfigError as exc:
        logger.error("Unable to start: %s", exc)
        return 1
    return run_reporting_startup_errors(_serve(config, sasl))



def servers_with(servers: dict[int, QuorumServer], verifier: QuorumMaj) -> dict[int, QuorumServer]:
    """The addresses the driver dials once `verifier` is active: its members' (a joiner's
    too); members it leaves out keep theirs (a removed member may still observe)."""
    updated = dict(servers)
    for sid, text in {**verifier.voters, **verifier.observers}.items():
        try:
            updated[sid] = parse_server(sid, text, True, "dynamic config", 0, f"server.{sid}")
        except ConfigError as exc:
            logger.error("Cannot use the address of server.%d from config %x: %s", sid, verifier.version, exc)
    return updated

class EnsembleMember:
    """The quorum driver plus the ZooKeeperServer of the role currently established."""

    def __init__(self, config: ServerConfig, stop: asyncio.Event, sasl: QuorumSasl | None = None) -> None:
        if config.my_id is None:
            raise StorageError("no myid file in dataDir: an ensemble member needs its id")
        self.config = config
        self.my_id = config.my_id
        self.stop = stop
        self.tls = quorum_tls(config.quorum_tls)  # a bad key or trust store stops start-up here
        self.disk = QuorumDisk(config)
        # As standalone does (pyzk/server/main.py): the loaded tree is frozen out of the cyclic
        # GC's reach, so full collections do not walk every node. The tree is kept across
        # elections; one a SNAP replaces holds no cycle and is freed by reference counting.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            image = self.disk.load_image()
            verifier = QuorumMaj.from_servers(config.servers, config.config_version)
            zab_config = ZabConfig(config.tick_time_ms, config.init_limit_ticks, config.sync_limit_ticks,
                                   reconfig_enabled=config.reconfig_enabled, snap_count=config.snap_count,
                                   snap_size_limit_kb=config.snap_size_limit_kb,
                                   commit_log_count=config.commit_log_count,
                                   snapshot_size_factor=config.snapshot_size_factor)
            backup_static_config(config)
            self.peer = Peer(self.my_id, verifier, image, wall_ms(), zab_config, store=self.disk,
                             replayed=self.disk.take_replayed_tree(), metrics=self.disk.metrics)
            gc.freeze()
        finally:
            if gc_was_enabled:
                gc.enable()
        self.driver = QuorumDriver(self.my_id, config.servers, self.peer, self.disk, self._on_effect,
                                   self._on_fatal, listen_on_all_ips=config.quorum_listen_on_all_ips,
                                   tls=self.tls, sasl=sasl)
        self.sasl_factory = sasl_mechanism_factory(config)
        self.server = self._idle_server()
        self.commit: LeaderCommit | FollowerCommit | None = None
        self.fatal: str | None = None
        self.read_only_timer: asyncio.TimerHandle | None = None

    def _idle_server(self) -> ZooKeeperServer:
        server = ZooKeeperServer(self.config, DataTree(), now_ms=_monotonic_ms, wall_ms=wall_ms)
        server.serving = False
        server.stats.metrics = self.peer.metrics  # a scrape while LOOKING still has them
        return server

    def _on_fatal(self, reason: str) -> None:
        self.fatal = reason
        self.stop.set()

    # ---- effects the server layer owns ---------------------------------------------------

    def _on_effect(self, effect: Effect) -> None:
        if isinstance(effect, Apply):
            if self.commit is not None:
                self.commit.on_apply(effect)
        elif isinstance(effect, RoleChanged):
            logger.info("Peer state changed: %s (leader %d, epoch %d)", effect.state.name, effect.leader, effect.epoch)
            self._retire()
            if effect.state == ServerState.LOOKING and self.config.readonly_mode_enabled:
                grace_s = read_only_grace_ms(self.config.tick_time_ms) / 1000.0
                self.read_only_timer = asyncio.get_running_loop().call_later(grace_s, self._serve_read_only)
        elif isinstance(effect, Established):
            self._establish(effect)
        elif isinstance(effect, LearnerRequest) and isinstance(self.commit, LeaderCommit):
            try:
                self.commit.on_learner_request(effect.sid, effect.packet)
            except Exception:
                logger.exception("bad request forwarded by %d", effect.sid)
        elif isinstance(effect, SessionsTouched) and isinstance(self.commit, LeaderCommit):
            self.commit.on_sessions_touched(effect.touches)
        elif isinstance(effect, SyncReleased) and isinstance(self.commit, FollowerCommit):
            self.commit.on_sync_released()
        elif isinstance(effect, LeaderPinged) and isinstance(self.commit, FollowerCommit):
            self.commit.on_leader_pinged(effect.zxid)
        elif isinstance(effect, SessionRevalidated) and isinstance(self.commit, FollowerCommit):
            self.commit.on_revalidated(effect.session_id, effect.valid, effect.leader_zxid)
        elif isinstance(effect, WriteConfigFiles):
            write_activated_config(self.config, effect.verifier)
            self.driver.servers = servers_with(self.driver.servers, effect.verifier)

    def _retire(self) -> None:
        if self.read_only_timer is not None:
            self.read_only_timer.cancel()
            self.read_only_timer = None
        if self.commit is None and not self.server.read_only:
            return
        old = self.server
        # A connection accepted just before this (bound to `old`, not yet in its
        # all_connections) must not be served by a retired role: `old` refuses handshakes.
        old.serving = False
        self.commit = None
        self.server = self._idle_server()
        for conn in list(old.all_connections):
            conn.close()

    def _establish(self, effect: Established) -> None:
        self._retire()
        server, self.commit = build_role(self.config, self.peer, self.driver, now_ms=_monotonic_ms, wall_ms=wall_ms,
                                         sasl_factory=self.sasl_factory)
        self.server = server
        logger.info("Serving as %s in epoch %d, last zxid 0x%x", server.mode, effect.epoch, effect.last_zxid)

    def _serve_read_only(self) -> None:
        """The grace period ended: if still LOOKING, serve read-only clients from the tree as it is."""
        self.read_only_timer = None
        if self.peer.state != ServerState.LOOKING or self.commit is not None:
            return
        server = ReadOnlyZooKeeperServer(self.config, self.peer.db.tree, now_ms=_monotonic_ms, wall_ms=wall_ms,
                                         sasl_factory=self.sasl_factory)
        server.stats.metrics = self.peer.metrics
        self.server = server
        logger.info("Read-only server started, last zxid 0x%x", server.tree.last_processed_zxid)

    def leader_server(self) -> ZooKeeperServer | None:
        return self.server if isinstance(self.commit, LeaderCommit) else None

    def expiring_server(self) -> ZooKeeperServer | None:
        """The server that expires its sessions: the leader (global ones) or a read-only server."""
        return self.server if self.server.read_only else self.leader_server()


async def _serve(config: ServerConfig, sasl: QuorumSasl | None = None) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    member = EnsembleMember(config, stop, sasl)
    await member.driver.start()
    per_ip: dict[str, int] = {}
    backlog = config.client_port_listen_backlog if config.client_port_listen_backlog > 0 else 100
    listeners = []
    if config.client_port:
        listeners.append(await loop.create_server(
            lambda: ClientConnection(member.server, per_ip),
            host=config.client_port_address or None, port=config.client_port,
            reuse_address=True, reuse_port=config.client_port_reuse_port or None, backlog=backlog,
        ))
        logger.info("binding to port %s:%s", config.client_port_address, config.client_port)
    if config.secure_client_port:
        listeners.append(await loop.create_server(
            lambda: ClientConnection(member.server, per_ip),
            host=config.secure_client_port_address or None, port=config.secure_client_port,
            reuse_address=True, backlog=backlog, ssl=server_ssl_context(config.ssl),
        ))
        logger.info("binding to secure port %s:%s", config.secure_client_port_address, config.secure_client_port)
    tasks = [loop.create_task(_expire_sessions(member, config.tick_time_ms / 1000.0)),
             loop.create_task(_sweep_containers(member, config))]
    if config.autopurge_purge_interval_hours > 0:
        tasks.append(loop.create_task(_autopurge(config)))
    # The ops surface follows whichever server serves now (QuorumPeer's AdminServer and
    # metrics outlive its roles); a port that cannot be bound stops start-up.
    current = CurrentServer(member)
    try:
        ops_listeners = [s for s in (await start_metrics_server(current), await start_admin_server(current)) if s]
    except OSError:
        for task in tasks:
            task.cancel()
        for listener in listeners:
            listener.close()
        await member.driver.close()
        member.disk.close()
        raise
    await stop.wait()
    logger.info("shutting down%s", f": {member.fatal}" if member.fatal else "")
    for task in tasks:
        task.cancel()
    if member.read_only_timer is not None:
        member.read_only_timer.cancel()
    for listener in [*listeners, *ops_listeners]:
        listener.close()
    for conn in list(member.server.all_connections):
        conn.close()
    await member.driver.close()
    member.disk.close()
    return 1 if member.fatal else 0


class CurrentServer:
    """The serving role's ZooKeeperServer as the AdminServer and metrics see it: every
    attribute is looked up on the member's server of the moment."""

    def __init__(self, member: EnsembleMember) -> None:
        object.__setattr__(self, "_member", member)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._member.server, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._member.server, name, value)


async def _autopurge(config: ServerConfig) -> None:
    """DatadirCleanupManager in every role: keep snapRetainCount snapshots and their logs."""
    loop = asyncio.get_running_loop()
    logger.info("autopurge.snapRetainCount set to %d, autopurge.purgeInterval set to %d",
                config.autopurge_snap_retain_count, config.autopurge_purge_interval_hours)
    while True:  # the first purge at start-up (DatadirCleanupManager: delay 0), then every interval
        try:
            await loop.run_in_executor(None, purge, config.data_dir, config.data_log_dir,
                                       config.autopurge_snap_retain_count)
        except Exception:
            logger.exception("autopurge failed")
        await asyncio.sleep(config.autopurge_purge_interval_hours * 3600)


async def _expire_sessions(member: EnsembleMember, tick_s: float) -> None:
    while True:
        await asyncio.sleep(tick_s / 2)
        try:
            member.server.expire_local_sessions()
            server = member.expiring_server()
            if server is not None:
                server.expire_sessions()
        except Exception:
            logger.exception("session expiry failed")


async def _sweep_containers(member: EnsembleMember, config: ServerConfig) -> None:
    """ContainerManager runs on the leader only (deleteContainer is an ordinary txn)."""
    interval_s = max(config.container_check_interval_ms, 1) / 1000.0
    gap_s = 60.0 / max(config.container_max_per_minute, 1)
    never_used_ms = int(config.system_properties.get("znode.container.maxNeverUsedIntervalMs", "0") or 0)
    while True:
        await asyncio.sleep(interval_s)
        server = member.leader_server()
        if server is None:
            continue
        try:
            for path in container_candidates(server.tree, wall_ms(), never_used_ms):
                if member.leader_server() is not server:
                    break
                server.submit_delete_container(path)
                await asyncio.sleep(gap_s)
        except Exception:
            logger.exception("container sweep failed")
