"""QuorumMaj (Q/flexible/QuorumMaj.java): a quorum is a strict majority of the voters.

Rule: observers never count; ids outside the config never count. The config text is exactly
`QuorumMaj.toString`: one `server.N=...` line per member in `member_order` (Java's HashMap
order, pyzk/quorum/reconfig.py; sid order when empty), then `version=<hex>`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pyzk.config import QuorumServer


@dataclass(frozen=True)
class QuorumMaj:
    """Voters and observers by sid, each with its `QuorumServer.toString` text."""

    voters: Mapping[int, str]
    observers: Mapping[int, str] = field(default_factory=dict)
    version: int = 0
    member_order: tuple[int, ...] = ()  # every member's sid, in toString order; () = by sid

    @classmethod
    def from_servers(cls, servers: Mapping[int, QuorumServer], version: int = 0) -> QuorumMaj:
        voters = {sid: s.config_text() for sid, s in sorted(servers.items()) if s.role == "participant"}
        observers = {sid: s.config_text() for sid, s in sorted(servers.items()) if s.role != "participant"}
        return cls(voters, observers, version)

    @classmethod
    def of_sids(cls, sids: Iterable[int]) -> QuorumMaj:
        """A test/simulator config: loopback placeholders, one participant per sid."""
        return cls({sid: f"127.0.0.1:{2888 + sid}:{3888 + sid}:participant" for sid in sorted(sids)})

    @property
    def half(self) -> int:
        return len(self.voters) // 2

    def is_voter(self, sid: int) -> bool:
        return sid in self.voters

    def is_observer(self, sid: int) -> bool:
        """LearnerType.OBSERVER; a voter, or a server not in the config, is a participant
        (QuorumPeer.updateLearnerType: "a non-voting participant")."""
        return sid in self.observers

    def quorum_address(self, sid: int) -> str | None:
        """A voter's quorum address(es) (`QuorumServer.addr`), as its text has them."""
        text = self.voters.get(sid)
        if text is None:
            return None
        addrs = text.split(";", 1)[0]
        if addrs.endswith((":participant", ":observer")):
            addrs = addrs.rsplit(":", 1)[0]
        return "|".join(a.rsplit(":", 1)[0] for a in addrs.split("|"))

    def is_quorum(self, sids: Iterable[int]) -> bool:
        """containsQuorum: more than half of the voters are in `sids` (duplicates ignored)."""
        return len({sid for sid in sids if sid in self.voters}) > self.half

    def committed_zxid(self, acked_zxid_by_sid: Mapping[int, int]) -> int:
        """The highest zxid acked by a quorum of voters (-1 when no quorum has acked anything)."""
        acked = sorted((z for sid, z in acked_zxid_by_sid.items() if sid in self.voters), reverse=True)
        quorum_size = self.half + 1
        return acked[quorum_size - 1] if len(acked) >= quorum_size else -1

    def config_text(self) -> str:
        members = {**self.voters, **self.observers}
        order = self.member_order or sorted(members)
        lines = "".join(f"server.{sid}={members[sid]}\n" for sid in order)
        return f"{lines}version={self.version:x}"


class QuorumConfigs:
    """A member's quorum configs, one object that election, Zab and the server layer share
    (QuorumPeer's quorumVerifier and lastSeenQuorumVerifier): `active` counts quorums and
    votes; `last_seen` is the newest config proposed or heard of, activated at the next
    establishment. Only `see` and `activate` change them."""

    def __init__(self, active: QuorumMaj, *, reconfig_enabled: bool = False) -> None:
        self.active = active
        self.last_seen = active
        self.reconfig_enabled = reconfig_enabled

    def see(self, verifier: QuorumMaj) -> None:
        """setLastSeenQuorumVerifier: remember a newer proposed config (reconfigEnabled only)."""
        if self.reconfig_enabled and verifier.version > self.last_seen.version:
            self.last_seen = verifier

    @property
    def pending(self) -> QuorumMaj | None:
        """The proposed config not active yet (a reconfig in progress), if any."""
        return self.last_seen if self.last_seen.version > self.active.version else None

    def quorums(self) -> tuple[QuorumMaj, ...]:
        """Every config a quorum must come from (Proposal.addQuorumVerifier): the active one,
        and the proposed one while a reconfig is in progress."""
        pending = self.pending
        return (self.active,) if pending is None else (self.active, pending)

    def has_all_quorums(self, sids: Iterable[int]) -> bool:
        """hasAllQuorums: `sids` hold a quorum of the active config and of the pending one."""
        ids = set(sids)
        return all(verifier.is_quorum(ids) for verifier in self.quorums())

    def adopt_last_seen(self, verifier: QuorumMaj) -> None:
        """setLastSeenQuorumVerifier(newLeaderQV): the leader's config is the last seen one,
        even an older one (reconfigEnabled only)."""
        if self.reconfig_enabled and verifier.version != self.last_seen.version \
                and verifier.version >= self.active.version:
            self.last_seen = verifier

    def forget_after(self, zxid: int) -> None:
        """A TRUNC to `zxid` removed the reconfig txn that proposed a newer config: forget it."""
        if self.last_seen.version > zxid and self.last_seen.version > self.active.version:
            self.last_seen = self.active

    def activate(self, verifier: QuorumMaj) -> bool:
        """processReconfig: `verifier` becomes the active config if it is newer; True if so."""
        if verifier.version <= self.active.version:
            return False
        self.active = verifier
        if verifier.version > self.last_seen.version:
            self.last_seen = verifier
        return True
