"""Roles: the one place an ensemble member's ZooKeeperServer is assembled for its role.

Rule: once the Peer is established, build_role makes a fresh ZooKeeperServer over the quorum
core's tree with the role's commit stage (pyzk/pipeline/commit/leader.py or follower.py) and
session tracker. The shell (pyzk/server/quorum_main.py) and the simulator
(pyzk/sim/members.py) both build roles here.
A read-only server (pyzk/pipeline/readonly.py) is built by its own constructor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from jute.codes import ServerState
from pyzk.pipeline.commit.follower import FollowerCommit, LearnerSessionTracker
from pyzk.pipeline.commit.leader import LeaderCommit
from pyzk.pipeline.zkserver import ZooKeeperServer
from pyzk.quorum.errors import InvariantViolation
from pyzk.quorum.peer import Peer
from pyzk.quorum.reconfig import ReconfigPlanner
from pyzk.quorum.zab import Follower, Leader, Observer
from pyzk.sessions import SessionTracker

if TYPE_CHECKING:
    from pyzk.config import ServerConfig

# QuorumPeer.getDetailedPeerState's first word, per role (mntr's zk_peer_state).
_PEER_STATES = {ServerState.LEADING: "leading", ServerState.FOLLOWING: "following", ServerState.OBSERVING: "observing"}


def build_role(config: ServerConfig, peer: Peer, driver: Any, *, now_ms: Callable[[], int],
               wall_ms: Callable[[], int], sasl_factory: Callable[[], Any] | None = None,
               ) -> tuple[ZooKeeperServer, LeaderCommit | FollowerCommit]:
    """The one place a role's server is assembled, once the Peer is established: a fresh
    ZooKeeperServer over the core's tree with the role's commit stage and session tracker.
    `driver` is what the stages talk to (QuorumDriver, or the simulator's stand-in);
    `sasl_factory` makes each connection's SASL server (None: SASL is not configured)."""
    role = peer.role
    tree = peer.db.tree
    ctx = peer.ctx
    server = ZooKeeperServer(config, tree, now_ms=now_ms, wall_ms=wall_ms, sasl_factory=sasl_factory)
    server.stats.metrics = peer.metrics  # the peer's: it outlives the role
    server.quorum_config_text = lambda: ctx.configs.active.config_text().encode()
    if config.local_sessions_enabled:
        server.local_sessions = SessionTracker(config.tick_time_ms, config.server_id, now_ms())
        server.upgrade_local_sessions = config.local_sessions_upgrading_enabled
    commit: LeaderCommit | FollowerCommit
    if isinstance(role, Leader):
        server.mode = "leader"
        commit = LeaderCommit(server, driver, role.last_proposed)
        server.prep.reconfig = ReconfigPlanner(ctx.configs,
                                               role.synced_sids, config.standalone_enabled)
    else:
        if not isinstance(role, Follower):
            raise InvariantViolation(f"no role to serve: {role!r}")
        server.mode = "observer" if isinstance(role, Observer) else "follower"
        server.sessions = LearnerSessionTracker(config.tick_time_ms, config.server_id, now_ms(), tree,
                                                driver.touch_session)
        commit = FollowerCommit(server, driver, role.leader_sid, observer=isinstance(role, Observer))
    server.commit = commit
    started_ms = now_ms()
    peer_state = f"{_PEER_STATES[role.role_state]} - broadcast"

    def quorum_monitor() -> dict[str, Any]:
        values: dict[str, Any] = {"peer_state": peer_state, "quorum_size": len(ctx.configs.active.voters)}
        if isinstance(role, Leader):
            values.update(role.monitor_values())
            values["leader_uptime"] = now_ms() - started_ms
        return values

    server.quorum_monitor = quorum_monitor
    is_leader = isinstance(role, Leader)
    leader_id = ctx.my_id if is_leader else role.leader_sid
    server.quorum_view = lambda: {"my_id": ctx.my_id, "leader_id": leader_id, "is_leader": is_leader,
                                  "active": ctx.configs.active, "zabstate": role.phase.value}
    return server, commit
