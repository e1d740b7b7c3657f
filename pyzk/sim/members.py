"""The server layer of each simulated peer: what EnsembleMember (pyzk/server/quorum_main.py)
does around a Peer, driven by the world instead of asyncio.

Rule 1: one role, one server. Established -> build_role (the same assembly as production);
RoleChanged or a crash -> retire: the old server stops serving and every client connection
it had is closed (reset, on a crash).
Rule 2: the Peer's server-layer effects go where EnsembleMember sends them, in effect order:
Apply -> commit.on_apply, LearnerRequest -> LeaderCommit.on_learner_request, SessionsTouched,
SyncReleased, SessionRevalidated.
Rule 3: the commit stages talk to a SimDriver, the stand-in for QuorumDriver: submit proposes
on the Peer and drains (the world's drain never nests, as QuorumDriver's), send_packet writes
on the quorum link like a SendPacket effect, touch_session goes to the Peer.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from jute.quorum import QuorumPacket
from pyzk.config import ServerConfig, parse_config
from pyzk.pipeline.commit.follower import FollowerCommit
from pyzk.pipeline.commit.leader import LeaderCommit
from pyzk.pipeline.roles import build_role
from pyzk.pipeline.zkserver import ZooKeeperServer
from pyzk.quorum.effects import (
    Apply,
    Established,
    LeaderPinged,
    LearnerRequest,
    RoleChanged,
    SessionRevalidated,
    SessionsTouched,
    SyncReleased,
)

if TYPE_CHECKING:
    from pyzk.sim.host import WorldHost


@lru_cache(maxsize=64)
def member_config(sid: int, peers: int, tick_time_ms: int, init_limit: int, sync_limit: int,
                  observers: int = 0) -> ServerConfig:
    """Voters 1..peers, then `observers` observers."""
    servers = "".join(f"server.{s}=127.0.0.1:{2887 + s}:{3887 + s}{':observer' if s > peers else ''}\n"
                      for s in range(1, peers + observers + 1))
    text = (f"tickTime={tick_time_ms}\ninitLimit={init_limit}\nsyncLimit={sync_limit}\n"
            f"dataDir=/tmp/pyzk-sim-unused\nclientPort=2181\n{servers}")
    return parse_config(text, myid_text=str(sid))


class SimDriver:
    """What the commit stages use of QuorumDriver, bound to one incarnation of one peer."""

    def __init__(self, world: WorldHost, sid: int, incarnation: int) -> None:
        self.world = world
        self.sid = sid
        self.incarnation = incarnation

    @property
    def peer(self) -> Any:
        return self.world.peers.get(self.sid)

    def _peer(self) -> Any:
        world = self.world
        if world.incarnation[self.sid] != self.incarnation:
            return None
        return world.peers.get(self.sid)

    def submit(self, session_id: int, cxid: int, txn_type: int, txn: object, zxid: int) -> int | None:
        peer = self._peer()
        if peer is None:
            return None
        proposed = peer.submit(session_id, cxid, txn_type, txn, self.world.peer_now(self.sid), zxid)
        self.world._drain(self.sid)
        return proposed

    def send_packet(self, to: int, packet: QuorumPacket) -> bool:
        if self._peer() is None:
            return False
        return self.world.send_server_packet(self.sid, to, packet)

    def touch_session(self, session_id: int, timeout_ms: int) -> None:
        peer = self._peer()
        if peer is not None:
            peer.touch_session(session_id, timeout_ms)


class SimMember:
    """EnsembleMember's effect routing for peer `sid`: the server of the established role."""

    def __init__(self, world: WorldHost, sid: int) -> None:
        self.world = world
        self.sid = sid
        self.config = world.members_config(sid)
        self.server: ZooKeeperServer | None = None
        self.commit: LeaderCommit | FollowerCommit | None = None
        self.roles_built = 0

    @property
    def leader_server(self) -> ZooKeeperServer | None:
        return self.server if isinstance(self.commit, LeaderCommit) else None

    def on_effect(self, peer: Any, effect: object) -> None:
        commit = self.commit
        if isinstance(effect, Apply):
            if commit is not None:
                commit.on_apply(effect)
        elif isinstance(effect, RoleChanged):
            self.retire()
        elif isinstance(effect, Established):
            self.establish(peer)
        elif isinstance(effect, LearnerRequest) and isinstance(commit, LeaderCommit):
            commit.on_learner_request(effect.sid, effect.packet)
        elif isinstance(effect, SessionsTouched) and isinstance(commit, LeaderCommit):
            commit.on_sessions_touched(effect.touches)
        elif isinstance(effect, SyncReleased) and isinstance(commit, FollowerCommit):
            commit.on_sync_released()
        elif isinstance(effect, LeaderPinged) and isinstance(commit, FollowerCommit):
            commit.on_leader_pinged(effect.zxid)
        elif isinstance(effect, SessionRevalidated) and isinstance(commit, FollowerCommit):
            commit.on_revalidated(effect.session_id, effect.valid, effect.leader_zxid)

    def establish(self, peer: Any) -> None:
        self.retire()
        world = self.world
        driver = SimDriver(world, self.sid, world.incarnation[self.sid])
        sid = self.sid
        self.server, self.commit = build_role(self.config, peer, driver, now_ms=lambda: world.peer_now(sid),
                                              wall_ms=lambda: world.peer_now(sid))
        self.roles_built += 1
        world.trace(f"{self.sid} serves clients as {self.server.mode}")

    def retire(self, *, reset: bool = False) -> None:
        """Leave the role: the old server stops serving and closes every client connection
        (a crash resets them instead: data in flight is lost)."""
        old = self.server
        if old is None:
            return
        old.serving = False
        self.server = None
        self.commit = None
        self.world.clients_net.server_retired(self.sid, old, reset=reset)
