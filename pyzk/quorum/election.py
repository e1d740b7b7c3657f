"""Fast Leader Election (Q/FastLeaderElection.java) as a pure state machine.

Inputs: `start(now_ms, last_logged_zxid, current_epoch)` (lookForLeader), `step(n, now_ms)`
(a notification arrived), `tick(now_ms)` (a timer fired). Outputs: `take_sends()` (who gets
which notification; to myself included, as Java's loopback queue), `decided` (the end vote),
`next_timer_ms()`.

Rule 1: votes are ordered by (peerEpoch, zxid, sid) and nothing else (`total_order_predicate`).
Rule 2: a LOOKING server decides only when a quorum of its recvset equals its proposal and no
better vote arrives within finalize_wait_ms; or when a quorum of FOLLOWING/LEADING replies
agrees on a leader that itself says LEADING (`check_leader`), the way a restarted server joins.
Rule 3: whatever my state, a LOOKING voter that is behind, or any non-voter, gets an answer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from jute.codes import ServerState
from pyzk.quorum.messages import Notification
from pyzk.quorum.verifier import QuorumConfigs

FINALIZE_WAIT_MS = 200
NOTIFICATION_TIMEOUT_MS_MIN = 200
NOTIFICATION_TIMEOUT_MS_MAX = 60_000


@dataclass(frozen=True, slots=True)
class Vote:
    leader: int
    zxid: int
    election_epoch: int
    peer_epoch: int
    state: ServerState = ServerState.LOOKING
    version: int = 2


def votes_equal(a: Vote, b: Vote) -> bool:
    """Vote.equals: LOOKING votes compare fully; settled votes only by leader and peerEpoch."""
    if a.state == ServerState.LOOKING or b.state == ServerState.LOOKING:
        return (a.leader, a.zxid, a.election_epoch, a.peer_epoch) == (
            b.leader, b.zxid, b.election_epoch, b.peer_epoch)
    if (a.version == 0) != (b.version == 0):
        return a.leader == b.leader
    return a.leader == b.leader and a.peer_epoch == b.peer_epoch


def total_order_predicate(new_id: int, new_zxid: int, new_epoch: int,
                          cur_id: int, cur_zxid: int, cur_epoch: int) -> bool:
    """True when the new vote (leader, zxid, peerEpoch) beats the current one."""
    return (new_epoch, new_zxid, new_id) > (cur_epoch, cur_zxid, cur_id)


class FastLeaderElection:
    """One server's election instance; it lives on after the decision to answer LOOKING peers."""

    def __init__(self, my_id: int, configs: QuorumConfigs) -> None:
        self.my_id = my_id
        self.configs = configs  # shared with Zab: a reconfig it activates counts here too
        self.state = ServerState.LOOKING
        self.logicalclock = 0
        self.vote = Vote(my_id, 0, 0, 0)  # my proposal while LOOKING; my current vote after
        self.decided: Vote | None = None
        self._init_zxid = 0
        self._init_epoch = 0
        self._recvset: dict[int, Vote] = {}
        self._outofelection: dict[int, Vote] = {}
        self._timeout_ms = NOTIFICATION_TIMEOUT_MS_MIN
        self._timeout_at_ms: int | None = None
        self._finalize_at_ms: int | None = None
        self._sends: list[tuple[int, Notification]] = []

    # ---- inputs --------------------------------------------------------------------------

    def start(self, now_ms: int, last_logged_zxid: int, current_epoch: int) -> None:
        """lookForLeader: a new round with my own initial vote, sent to every voter."""
        self.state = ServerState.LOOKING
        self.decided = None
        self.logicalclock += 1
        self._recvset.clear()
        self._outofelection.clear()
        self._finalize_at_ms = None
        self._timeout_ms = NOTIFICATION_TIMEOUT_MS_MIN
        if self.configs.active.is_voter(self.my_id):
            self._init_zxid, self._init_epoch = last_logged_zxid, current_epoch
            self._propose(self.my_id, last_logged_zxid, current_epoch)
        else:
            self._init_zxid = self._init_epoch = -(1 << 63)
            self._propose(-(1 << 63), self._init_zxid, self._init_epoch)
        self._timeout_at_ms = now_ms + self._timeout_ms
        self._send_notifications()

    def step(self, n: Notification, now_ms: int) -> None:
        """A notification from n.sid (possibly myself) arrived."""
        if not self.configs.active.is_voter(n.sid):
            self._reply(n.sid, self.vote, self.state, self.logicalclock)
            return
        if self.state != ServerState.LOOKING:
            if n.state == ServerState.LOOKING and n.sid != self.my_id:
                self._reply(n.sid, self.vote, self.state, self.vote.election_epoch)
            return
        if n.state == ServerState.LOOKING and n.election_epoch < self.logicalclock and n.sid != self.my_id:
            self._reply(n.sid, self.vote, ServerState.LOOKING, self.logicalclock)
        if not self.configs.active.is_voter(n.leader):
            return
        self._timeout_at_ms = now_ms + self._timeout_ms
        if self._finalize_at_ms is not None:
            if not self._beats_proposal(n):
                # Java drains and drops these while waiting; each one restarts the wait.
                self._finalize_at_ms = now_ms + FINALIZE_WAIT_MS
                return
            self._finalize_at_ms = None
        if n.state == ServerState.LOOKING:
            self._on_looking(n, now_ms)
        elif n.state in (ServerState.FOLLOWING, ServerState.LEADING):
            self._on_settled(n)

    def tick(self, now_ms: int) -> None:
        if self.state != ServerState.LOOKING:
            return
        if self._finalize_at_ms is not None and now_ms >= self._finalize_at_ms:
            self._finalize_at_ms = None
            self._decide(replace(self.vote, election_epoch=self.logicalclock))
            return
        if self._timeout_at_ms is not None and now_ms >= self._timeout_at_ms:
            self._send_notifications()
            self._timeout_ms = min(self._timeout_ms * 2, NOTIFICATION_TIMEOUT_MS_MAX)
            self._timeout_at_ms = now_ms + self._timeout_ms

    def adopt(self, leader: int, state: ServerState, zxid: int, peer_epoch: int) -> None:
        """updateVote + updateServerState: a committed reconfig named `leader`; this server
        takes its next role without an election."""
        self.state = state
        self.vote = Vote(leader, zxid, self.logicalclock, peer_epoch, state)
        self.decided = self.vote
        self._recvset.clear()
        self._outofelection.clear()
        self._finalize_at_ms = None
        self._timeout_at_ms = None

    def settle_epoch(self, peer_epoch: int) -> None:
        """updateElectionVote: after sync every member reports the new epoch in its vote."""
        self.vote = replace(self.vote, peer_epoch=peer_epoch)

    # ---- outputs -------------------------------------------------------------------------

    def take_sends(self) -> list[tuple[int, Notification]]:
        sends, self._sends = self._sends, []
        return sends

    def next_timer_ms(self) -> int | None:
        if self.state != ServerState.LOOKING:
            return None
        return self._finalize_at_ms if self._finalize_at_ms is not None else self._timeout_at_ms

    # ---- the receive loop ----------------------------------------------------------------

    def _on_looking(self, n: Notification, now_ms: int) -> None:
        if n.election_epoch > self.logicalclock:
            self.logicalclock = n.election_epoch
            self._recvset.clear()
            if total_order_predicate(n.leader, n.zxid, n.peer_epoch,
                                     self.my_id, self._init_zxid, self._init_epoch):
                self._propose(n.leader, n.zxid, n.peer_epoch)
            else:
                self._propose(self.my_id, self._init_zxid, self._init_epoch)
            self._send_notifications()
        elif n.election_epoch < self.logicalclock:
            return
        elif self._beats_proposal(n):
            self._propose(n.leader, n.zxid, n.peer_epoch)
            self._send_notifications()
        elif n.sid != self.my_id and (n.leader, n.zxid, n.peer_epoch) != (
                self.vote.leader, self.vote.zxid, self.vote.peer_epoch):
            # A peer behind my vote in this round may have missed it (it reached the peer while
            # the peer was still FOLLOWING its dead leader): tell it now, not at my next
            # notification timeout (200 ms, then 400...). Java waits for the timeout; the
            # extra notification is an ordinary one to any peer, and votes only improve.
            self._reply(n.sid, self.vote, ServerState.LOOKING, self.logicalclock)
        self._recvset[n.sid] = Vote(n.leader, n.zxid, n.election_epoch, n.peer_epoch)
        proposal = Vote(self.vote.leader, self.vote.zxid, self.logicalclock, self.vote.peer_epoch)
        if self._agreeing_is_quorum(self._recvset, proposal):
            self._finalize_at_ms = now_ms + FINALIZE_WAIT_MS

    def _on_settled(self, n: Notification) -> None:
        vote = Vote(n.leader, n.zxid, n.election_epoch, n.peer_epoch, n.state, n.version)
        if n.election_epoch == self.logicalclock:
            self._recvset[n.sid] = vote
            if self._agreeing_is_quorum(self._recvset, vote) and self._check_leader(
                    self._recvset, n.leader, n.election_epoch):
                self._decide(vote)
                return
        self._outofelection[n.sid] = vote
        if self._agreeing_is_quorum(self._outofelection, vote) and self._check_leader(
                self._outofelection, n.leader, n.election_epoch):
            self.logicalclock = n.election_epoch
            self._decide(vote)

    def _check_leader(self, votes: dict[int, Vote], leader: int, election_epoch: int) -> bool:
        if leader != self.my_id:
            leader_vote = votes.get(leader)
            return leader_vote is not None and leader_vote.state == ServerState.LEADING
        return self.logicalclock == election_epoch

    def _agreeing_is_quorum(self, votes: dict[int, Vote], vote: Vote) -> bool:
        return self.configs.active.is_quorum(sid for sid, v in votes.items() if votes_equal(v, vote))

    def _beats_proposal(self, n: Notification) -> bool:
        return total_order_predicate(n.leader, n.zxid, n.peer_epoch,
                                     self.vote.leader, self.vote.zxid, self.vote.peer_epoch)

    def _decide(self, vote: Vote) -> None:
        if vote.leader == self.my_id:
            self.state = ServerState.LEADING
        elif self.configs.active.is_observer(self.my_id):
            self.state = ServerState.OBSERVING
        else:
            # learningState: a voter, or a member the config leaves out (a non-voting
            # participant, QuorumPeer.updateLearnerType), follows.
            self.state = ServerState.FOLLOWING
        self.vote = Vote(vote.leader, vote.zxid, vote.election_epoch, vote.peer_epoch, self.state)
        self.decided = self.vote
        self._recvset.clear()
        self._outofelection.clear()
        self._timeout_at_ms = None

    def _propose(self, leader: int, zxid: int, peer_epoch: int) -> None:
        self.vote = Vote(leader, zxid, self.logicalclock, peer_epoch)

    def _send_notifications(self) -> None:
        notification = self._notification(self.vote, ServerState.LOOKING, self.logicalclock)
        for sid in self.configs.active.voters:
            self._sends.append((sid, notification))

    def _reply(self, to: int, vote: Vote, state: ServerState, election_epoch: int) -> None:
        self._sends.append((to, self._notification(vote, state, election_epoch)))

    def _notification(self, vote: Vote, state: ServerState, election_epoch: int) -> Notification:
        return Notification(self.my_id, state, vote.leader, vote.zxid, election_epoch,
                            vote.peer_epoch, config=self.configs.active.config_text())
