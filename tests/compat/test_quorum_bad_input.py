"""Bad input on the quorum port: a leader gets from a member what it does not understand.

A raw socket plays server 2 of a 3-server ensemble whose servers 1 and 3 run (3 leads: on
`mixed` a Java leader with a pyzk follower, on `mixed2` the reverse) and speaks Zab to the
leader as a learner would, with the same expectations for every target, so a pyzk leader is
held to what an Apache ZooKeeper 3.8 leader does (LearnerHandler.run):
- a newer protocol version in FOLLOWERINFO (and a longer LearnerInfo) is answered with 3.8's
  LEADERINFO (0x10000) and the learner syncs;
- a packet type it does not know in the handshake (first packet, instead of ACKEPOCH): the
  link is closed, and the ensemble goes on serving;
- the same from a synced learner: logged, the link kept (it still answers the learner's pings).
The follower's side (a leader sending what a follower does not know) is in
tests/unit/quorum/test_zab.py.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator

import pytest
from kazoo.client import KazooClient

from jute.codes import QuorumPacketType as P
from jute.quorum import LearnerInfo, QuorumPacket
from pyzk.quorum.streams import QuorumStreamSplitter
from tests.compat.conftest import target_kinds_from_env
from tests.compat.targets import LOOPBACK, Ensemble, Server, four_letter_word, serving_mode, start_target

UNKNOWN_TYPE = 99  # no QuorumPacket type of 3.8 (they end at 19)
NEWER_PROTOCOL = 0x20000
PROTOCOL_3_8 = 0x10000
RAW_SID = 2
READ_TIMEOUT_S = 10.0
CLOSE_WAIT_S = 15.0
KEPT_FOR_S = 6.0  # three ticks: pings go on, and a dropped link would show
CFG: dict[str, str | None] = {"tickTime": "2000", "initLimit": "10", "syncLimit": "5"}


class RawLearner:
    """A learner's end of a quorum-port connection: QuorumPackets as jute writes them."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((LOOPBACK, port), timeout=READ_TIMEOUT_S)
        self.splitter = QuorumStreamSplitter()
        self.received: list[QuorumPacket] = []

    def send(self, type_: int, zxid: int, data: bytes | None = None) -> None:
        self.sock.sendall(QuorumPacket(type_, zxid, data, None).encode())

    def recv(self, timeout_s: float = READ_TIMEOUT_S) -> QuorumPacket | None:
        """The next packet (a SNAP's stream is read with it); None at EOF."""
        deadline = time.monotonic() + timeout_s
        while not self.received:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return None
            if not chunk:
                return None
            self.received += [packet for packet, _snapshot in self.splitter.feed(chunk)]
        return self.received.pop(0)

    def wait_closed(self, timeout_s: float) -> bool:
        """True once the leader closed the link; packets meanwhile are dropped."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if self.recv(deadline - time.monotonic()) is None:
                    return True
            except TimeoutError:
                return False
        return False

    def close(self) -> None:
        self.sock.close()


def followerinfo(protocol: int, extra: bytes = b"") -> bytes:
    return LearnerInfo(RAW_SID, protocol, 0).encode() + extra


def leader_of(ensemble: Ensemble) -> Server:
    return next(s for s in ensemble.servers if serving_mode(s.client_port) == "leader")


def last_zxid(server: Server) -> int:
    reply = four_letter_word(server.client_port, "srvr")
    return int(next(line for line in reply.splitlines() if line.startswith("Zxid:")).split()[1], 16)


def synced_followers(server: Server) -> int:
    reply = four_letter_word(server.client_port, "mntr")
    values = dict(line.split("\t", 1) for line in reply.splitlines() if "\t" in line)
    return int(values["zk_synced_followers"])


def wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture(scope="module", params=target_kinds_from_env())
def ensemble(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ensemble]:
    """Servers 1 and 3 of three serving, 3 leading; server 2's place is the raw learner's."""
    ens = start_target(request.param, 3, CFG, workdir=tmp_path_factory.mktemp(f"quorum-bad-{request.param}"),
                       start_timeout_s=60)
    try:
        ens.servers[RAW_SID - 1].stop()
        wait_for(lambda: synced_followers(leader_of(ens)) == 1, 30, "the leader to keep one follower")
        yield ens
    finally:
        ens.stop()


def assert_serving(ens: Ensemble, path: str) -> None:
    """A write through server 1 and a read of it through the leader work."""
    follower = ens.servers[0]
    with_client = KazooClient(hosts=follower.address, timeout=10)
    with_client.start(timeout=15)
    try:
        with_client.create(path, b"x")
    finally:
        with_client.stop()
        with_client.close()
    reader = KazooClient(hosts=leader_of(ens).address, timeout=10)
    reader.start(timeout=15)
    try:
        reader.sync(path)
        assert reader.exists(path) is not None
    finally:
        reader.stop()
        reader.close()


def sync_as_learner(learner: RawLearner, leader: Server, info: bytes) -> int:
    """FOLLOWERINFO .. UPTODATE as Learner.registerWithLeader and syncWithLeader do; the
    LEADERINFO's protocol version is checked. Returns the new epoch."""
    learner.send(P.FOLLOWERINFO, 0, info)
    leaderinfo = learner.recv()
    assert leaderinfo is not None and leaderinfo.type == P.LEADERINFO, leaderinfo
    assert leaderinfo.data == struct.pack(">i", PROTOCOL_3_8)
    epoch = leaderinfo.zxid >> 32
    # Up to date with the leader: its sync is a DIFF of nothing.
    learner.send(P.ACKEPOCH, last_zxid(leader), struct.pack(">i", epoch))
    seen: list[int] = []
    while (packet := learner.recv()) is not None:
        seen.append(packet.type)
        if packet.type == P.NEWLEADER:
            learner.send(P.ACK, packet.zxid)
        elif packet.type == P.UPTODATE:
            learner.send(P.ACK, epoch << 32)
            return epoch
    raise AssertionError(f"the leader closed the link in the sync after {seen}")


def answer_pings_for(learner: RawLearner, seconds: float) -> list[int]:
    """Reply to the leader's PINGs for `seconds`; the types received (the link must stay)."""
    types: list[int] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            packet = learner.recv(deadline - time.monotonic())
        except TimeoutError:
            break
        assert packet is not None, f"the leader closed the link after {types}"
        types.append(packet.type)
        if packet.type == P.PING:
            learner.send(P.PING, packet.zxid, b"")
    return types


def test_a_newer_protocol_version_is_answered_in_3_8s_and_the_learner_syncs(ensemble: Ensemble) -> None:
    leader = leader_of(ensemble)
    learner = RawLearner(leader.quorum_port)
    try:
        sync_as_learner(learner, leader, followerinfo(NEWER_PROTOCOL, extra=b"\x00" * 8))
        wait_for(lambda: synced_followers(leader) == 2, 10, "the raw learner to count as synced")
        assert P.PING in answer_pings_for(learner, KEPT_FOR_S)
    finally:
        learner.close()
    wait_for(lambda: synced_followers(leader) == 1, 30, "the leader to let the raw learner go")


@pytest.mark.parametrize("where", ["first-packet", "instead-of-ackepoch"])
def test_an_unknown_packet_type_in_the_handshake_closes_the_link(ensemble: Ensemble, where: str) -> None:
    leader = leader_of(ensemble)
    learner = RawLearner(leader.quorum_port)
    try:
        if where == "instead-of-ackepoch":
            learner.send(P.FOLLOWERINFO, 0, followerinfo(PROTOCOL_3_8))
            leaderinfo = learner.recv()
            assert leaderinfo is not None and leaderinfo.type == P.LEADERINFO
        learner.send(UNKNOWN_TYPE, 0, b"future")
        assert learner.wait_closed(CLOSE_WAIT_S), "the leader kept a link whose handshake it cannot read"
    finally:
        learner.close()
    assert serving_mode(leader.client_port) == "leader"
    assert_serving(ensemble, f"/bad_handshake_{where.replace('-', '_')}")


def test_an_unknown_packet_type_from_a_synced_learner_is_ignored(ensemble: Ensemble) -> None:
    leader = leader_of(ensemble)
    learner = RawLearner(leader.quorum_port)
    try:
        sync_as_learner(learner, leader, followerinfo(PROTOCOL_3_8))
        wait_for(lambda: synced_followers(leader) == 2, 10, "the raw learner to count as synced")
        learner.send(UNKNOWN_TYPE, 0, b"future")
        assert P.PING in answer_pings_for(learner, KEPT_FOR_S)
        assert synced_followers(leader) == 2
    finally:
        learner.close()
    assert_serving(ensemble, "/bad_synced")


def test_the_raw_learner_speaks_as_a_real_one() -> None:
    """The wire helpers against pyzk's own decoder: what RawLearner sends is what a Java
    learner sends (the byte layout of QuorumPacket and LearnerInfo)."""
    info = followerinfo(NEWER_PROTOCOL)
    assert info == struct.pack(">qiq", RAW_SID, NEWER_PROTOCOL, 0)
    packet = QuorumPacket(P.FOLLOWERINFO, 5, info, None).encode()
    assert packet == struct.pack(">iqi", P.FOLLOWERINFO, 5, len(info)) + info + struct.pack(">i", -1)
