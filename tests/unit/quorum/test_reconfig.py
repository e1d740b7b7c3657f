"""reconfig: Apache's checks and their order, HashMap member order, versions, the config files.

Expected texts are Apache ZooKeeper 3.8.0's, captured from a 3-server ensemble
(reconfigEnabled=true) running the same request sequence.
"""

from __future__ import annotations

import pytest

from jute.codes import Err, OpCode, ServerState
from jute.codes import QuorumPacketType as P
from jute.data import Id
from jute.proto import ReconfigRequest
from jute.quorum import QuorumPacket
from jute.txn import ErrorTxn, SetDataTxn, TxnHeader
from pyzk.acl import AuthRegistry
from pyzk.pipeline.prep import Prep
from pyzk.quorum.database import ZabDatabase
from pyzk.quorum.effects import Outbox, SendPacket, WriteConfigFiles
from pyzk.quorum.reconfig import (
    JavaLongMap,
    ReconfigPlanner,
    ReconfigRefused,
    dynamic_file_text,
    parse_config_text,
    static_file_text,
    text_order_verifier,
)
from pyzk.quorum.verifier import QuorumConfigs, QuorumMaj
from pyzk.quorum.zab import Follower, Leader, Probe, ZabConfig, ZabContext
from pyzk.quorum.zxid import make_zxid
from pyzk.storage.format import encode_txn_entry
from pyzk.tree.datatree import CONFIG_NODE, DataTree

S1 = "server.1=127.0.0.1:46863:42799:participant"
S2 = "server.2=127.0.0.1:58409:50573:participant"
S3 = "server.3=127.0.0.1:56075:60665:participant"
S9 = "server.9=127.0.0.1:1234:1235:participant;0.0.0.0:1236"
S100 = "server.100=0.0.0.0:1234:2345:observer;0.0.0.0:3456"
BASE = parse_config_text(f"{S1}\n{S2}\n{S3}\nversion=100000000")
SUPER_DIGEST = "super:D/InIHSb7yEEbrWz8b9l71RjZJU="  # super:test, as kazoo's harness sets it


class Ensemble:
    """The leader's configs as the core keeps them: activate on commit, as Zab does."""

    def __init__(self, synced: tuple[int, ...] = (1, 2, 3), base: QuorumMaj = BASE) -> None:
        self.configs = QuorumConfigs(base, reconfig_enabled=True)
        self.synced = synced
        self.planner = ReconfigPlanner(self.configs, lambda: self.synced)

    def reconfig(self, zxid: int, joining: str | None = None, leaving: str | None = None,
                 members: str | None = None, version: int = -1) -> str:
        planned = self.planner.plan(ReconfigRequest(joining, leaving, members, version), zxid)
        self.configs.activate(planned)
        return planned.config_text()


def refusal(ens: Ensemble, **request: object) -> int:
    with pytest.raises(ReconfigRefused) as caught:
        ens.reconfig(0x100000009, **request)  # type: ignore[arg-type]
    return caught.value.err


def test_refusals_in_apaches_order() -> None:
    ens = Ensemble()
    assert refusal(ens, joining="some thing") == Err.BADARGUMENTS
    assert refusal(ens, leaving="2,3") == Err.BADARGUMENTS  # fewer than 2 voters left
    assert refusal(ens, leaving="x") == Err.MARSHALLINGERROR  # NumberFormatException
    assert refusal(ens, joining="server.9=127.0.0.1:1234:1235:observer") == Err.BADARGUMENTS
    # The version is checked before the (bad) server string.
    assert refusal(ens, joining="some thing", version=5) == Err.BADVERSION
    ens.configs.see(parse_config_text(f"{S1}\n{S2}\n{S3}\nversion=100000005"))
    assert refusal(ens, joining="some thing", version=5) == Err.RECONFIGINPROGRESS


def test_new_config_without_a_synced_quorum() -> None:
    ens = Ensemble(synced=(1,))
    assert refusal(ens, joining=S100) == Err.NEWCONFIGNOQUORUM


def test_address_clash_only_for_routable_addresses() -> None:
    clash = "server.7=10.0.0.1:1000:1001:observer;1002"
    ens = Ensemble(base=parse_config_text(f"{S1}\n{S2}\n{S3}\n{clash}\nversion=100000000"))
    assert refusal(ens, joining="server.8=10.0.0.1:1000:1003:observer;1004") == Err.BADARGUMENTS
    # Loopback and wildcard addresses never clash (excludedSpecialAddresses).
    assert ens.reconfig(0x10000000a, joining="server.8=127.0.0.1:58409:1235:observer;1236")


def test_member_order_follows_java_hashmap_through_a_sequence_of_reconfigs() -> None:
    ens = Ensemble()
    assert ens.reconfig(0x100000010, joining=S9) == f"{S1}\n{S9}\n{S2}\n{S3}\nversion=100000010"
    assert ens.reconfig(0x100000012, joining=S100) == f"{S1}\n{S9}\n{S2}\n{S3}\n{S100}\nversion=100000012"
    assert ens.reconfig(0x100000013, leaving="100") == f"{S1}\n{S9}\n{S2}\n{S3}\nversion=100000013"
    members = f"{S1},{S9},{S2},{S3}"
    assert ens.reconfig(0x100000014, members=members) == f"{S1}\n{S2}\n{S3}\n{S9}\nversion=100000014"


def test_java_long_map_resizes_and_keeps_bucket_order() -> None:
    table = JavaLongMap(8)
    for sid in (1, 2, 3, 9, 17, 4, 5):
        table.put(sid, "")
    assert table.capacity == 16 and table.order() == (1, 17, 2, 3, 4, 5, 9)


def test_a_voter_change_is_planned_with_its_checks() -> None:
    ens = Ensemble(synced=(1, 2, 3))
    assert sorted(ens.planner.plan(ReconfigRequest(S9, None, None, -1), 0x100000001).voters) == [1, 2, 3, 9]
    assert sorted(ens.planner.plan(ReconfigRequest(None, "3", None, -1), 0x100000001).voters) == [1, 2]
    with pytest.raises(ReconfigRefused) as caught:  # 1 of {1, 9}: no synced quorum
        ens.planner.plan(ReconfigRequest(S9, "2,3", None, -1), 0x100000001)
    assert caught.value.err == Err.NEWCONFIGNOQUORUM


def test_leader_keeps_text_order_and_a_learner_parses_afresh() -> None:
    text = f"{S1}\n{S9}\n{S2}\n{S3}\n{S100}\nversion=100000012"
    assert text_order_verifier(text).config_text() == text
    assert parse_config_text(text).config_text() == f"{S1}\n{S2}\n{S3}\n{S100}\n{S9}\nversion=100000012"
    assert dict(parse_config_text(text).observers) == {100: "0.0.0.0:1234:2345:observer;0.0.0.0:3456"}


def test_dynamic_file_is_sorted_lines_without_version() -> None:
    verifier = parse_config_text(f"{S1}\n{S2}\n{S3}\n{S100}\nversion=100000012")
    assert dynamic_file_text(verifier) == f"{S100}\n{S1}\n{S2}\n{S3}"


def test_static_file_loses_quorum_keys_and_points_at_the_dynamic_file() -> None:
    static = "tickTime=2000\nclientPort=2181\nserver.1=a:1:2\npeerType=participant\nreconfigEnabled=true\n"
    assert static_file_text(static, "/d/zoo.cfg.dynamic.1", erase_client_address=False) == (
        "tickTime=2000\nclientPort=2181\nreconfigEnabled=true\ndynamicConfigFile=/d/zoo.cfg.dynamic.1\n")
    assert "clientPort" not in static_file_text(static, "/d/x", erase_client_address=True)


# ---- prep's part: RECONFIGDISABLED, UNIMPLEMENTED, NOAUTH, the txn --------------------------


def prep(*, enabled: bool = True, planner: ReconfigPlanner | None = None) -> Prep:
    registry = AuthRegistry.from_properties(
        {"zookeeper.DigestAuthenticationProvider.superDigest": SUPER_DIGEST})
    p = Prep(DataTree(), registry, reconfig_enabled=enabled)
    p.reconfig = planner
    return p


def super_ids() -> list[Id]:
    registry = AuthRegistry.from_properties(
        {"zookeeper.DigestAuthenticationProvider.superDigest": SUPER_DIGEST})
    return [Id("ip", "127.0.0.1"), *registry.authenticate("digest", b"super:test", "127.0.0.1")]


def prepped_error(p: Prep, request: ReconfigRequest, ids: list[Id]) -> int:
    prepared = p.prep_write(OpCode.RECONFIG, request, 1, 1, ids, 0x100000001, 5)
    return prepared.txn.err if isinstance(prepared.txn, ErrorTxn) else 0


def test_prep_refuses_when_disabled_then_in_standalone() -> None:
    join = ReconfigRequest(S100, None, None, -1)
    assert prepped_error(prep(enabled=False), join, super_ids()) == Err.RECONFIGDISABLED
    assert prepped_error(prep(), join, super_ids()) == Err.UNIMPLEMENTED
    assert prepped_error(prep(planner=Ensemble().planner), ReconfigRequest(None, "3", None, -1),
                         super_ids()) == 0


def test_prep_checks_acl_after_the_arguments() -> None:
    p = prep(planner=Ensemble().planner)
    anonymous = [Id("ip", "127.0.0.1")]
    assert prepped_error(p, ReconfigRequest("some thing", None, None, -1), anonymous) == Err.BADARGUMENTS
    assert prepped_error(p, ReconfigRequest(S100, None, None, -1), anonymous) == Err.NOAUTH


def test_prep_builds_a_set_data_txn_of_the_new_config_at_version_minus_one() -> None:
    p = prep(planner=Ensemble().planner)
    prepared = p.prep_write(OpCode.RECONFIG, ReconfigRequest(S100, None, None, -1), 1, 1, super_ids(),
                            0x100000001, 5)
    assert prepared.hdr.type == OpCode.RECONFIG
    assert prepared.txn == SetDataTxn(CONFIG_NODE, f"{S1}\n{S2}\n{S3}\n{S100}\nversion=100000001".encode(), -1)
    assert p.outstanding[CONFIG_NODE].version == -1



# ---- Zab: version at establishment, COMMITANDACTIVATE, activation on both sides -------------


def zab_context(my_id: int) -> ZabContext:
    verifier = parse_config_text(f"{S1}\n{S2}\n{S3}\nversion=0")
    return ZabContext(my_id, verifier, ZabDatabase(), 0, 0, ZabConfig(reconfig_enabled=True), Outbox(), Probe())


def run_persists(ctx: ZabContext) -> None:
    for pid in sorted(ctx.on_persisted):
        ctx.on_persisted.pop(pid)()


def packet(type_: P, zxid: int, data: bytes | None = None) -> QuorumPacket:
    return QuorumPacket(int(type_), zxid, data, None)


def test_leader_versions_the_config_at_newleader_and_activates_a_committed_reconfig() -> None:
    ctx, leader = established_leader()
    newleader = [e.packet for e in ctx.outbox.effects if isinstance(e, SendPacket) and e.packet.type == P.NEWLEADER]
    assert newleader[0].data == f"{S1}\n{S2}\n{S3}\nversion=100000000".encode()
    files = [e for e in ctx.outbox.effects if isinstance(e, WriteConfigFiles)]
    assert [e.verifier.version for e in files] == [0x100000000]
    # initConfigInZKDatabase: the core wrote the established config into the tree.
    node = ctx.db.tree.nodes[CONFIG_NODE]
    assert (node.data, node.version, node.mzxid) == (newleader[0].data, -1, 0x100000000)

    text = f"{S1}\n{S2}\n{S3}\n{S100}\nversion=100000001"
    zxid = leader.submit(5, 1, OpCode.RECONFIG, SetDataTxn(CONFIG_NODE, text.encode(), -1), 0)
    assert zxid == 0x100000001 and ctx.configs.last_seen.version == zxid != ctx.configs.active.version
    run_persists(ctx)
    leader.step(2, packet(P.ACK, zxid), 0)
    commits = [e for e in ctx.outbox.effects if isinstance(e, SendPacket) and e.packet.zxid == zxid
               and e.packet.type in (P.COMMIT, P.COMMITANDACTIVATE)]
    assert {(e.to, P(e.packet.type), e.packet.data) for e in commits} == {
        (2, P.COMMITANDACTIVATE, (1).to_bytes(8, "big")), (3, P.COMMITANDACTIVATE, (1).to_bytes(8, "big"))}
    assert ctx.configs.active.config_text() == text and 100 in ctx.configs.active.observers
    assert leader.synced_sids() == [1, 2, 3]


def test_follower_activates_on_commitandactivate() -> None:
    ctx, follower = synced_follower(2)
    assert ctx.configs.active.version == 0x100000000
    text = f"{S1}\n{S2}\n{S3}\n{S100}\nversion=100000001"
    txn_entry = encode_txn_entry(TxnHeader(5, 1, 0x100000001, 0, OpCode.RECONFIG),
                                 SetDataTxn(CONFIG_NODE, text.encode(), -1), None)
    follower.step(1, packet(P.PROPOSAL, 0x100000001, txn_entry), b"", 0)
    run_persists(ctx)
    follower.step(1, packet(P.COMMITANDACTIVATE, 0x100000001, (1).to_bytes(8, "big")), b"", 0)
    assert ctx.configs.active.version == 0x100000001 and 100 in ctx.configs.active.observers
    ctx.apply_next()
    assert ctx.db.tree.nodes[CONFIG_NODE].data == text.encode()


# ---- the voting set changes: both quorums, the designated leader, learners' next role -------

S4 = "server.4=127.0.0.1:1244:1245:participant;127.0.0.1:1246"
S5 = "server.5=127.0.0.1:1254:1255:participant;127.0.0.1:1256"


def established_leader() -> tuple[ZabContext, Leader]:
    ctx = zab_context(1)
    leader = Leader(ctx, 0)
    for sid in (2, 3):
        leader.step(sid, packet(P.FOLLOWERINFO, 0, b"\0" * 7 + bytes([sid]) + b"\0\1\0\0" + b"\0" * 8), 0)
    run_persists(ctx)
    for sid in (2, 3):
        leader.step(sid, packet(P.ACKEPOCH, 0, b"\0\0\0\0"), 0)
    run_persists(ctx)
    for sid in (2, 3):
        leader.step(sid, packet(P.ACK, make_zxid(1, 0)), 0)
    assert ctx.configs.active.version == 0x100000000
    return ctx, leader


def propose_reconfig(ctx: ZabContext, leader: Leader, text: str) -> int:
    zxid = leader.submit(5, 1, OpCode.RECONFIG, SetDataTxn(CONFIG_NODE, text.encode(), -1), 0)
    assert zxid is not None
    run_persists(ctx)  # the leader's own ACK
    return zxid


def sent(ctx: ZabContext, zxid: int) -> set[tuple[int, P, bytes | None]]:
    return {(e.to, P(e.packet.type), e.packet.data) for e in ctx.outbox.effects
            if isinstance(e, SendPacket) and e.packet.zxid == zxid and e.packet.type != P.PROPOSAL}


def test_a_reconfig_and_the_txns_after_it_commit_with_a_quorum_of_both_configs() -> None:
    ctx, leader = established_leader()
    zxid = propose_reconfig(ctx, leader, f"{S1}\n{S4}\n{S5}\nversion={0x100000001:x}")
    after = leader.submit(5, 2, OpCode.SET_DATA, SetDataTxn("/a", b"x", 0), 0)
    assert after is not None
    run_persists(ctx)
    leader.step(2, packet(P.ACK, zxid), 0)
    leader.step(2, packet(P.ACK, after), 0)
    assert not sent(ctx, zxid) and ctx.configs.active.version == 0x100000000  # {1, 2}: old only
    leader._on_ack_from(4, zxid)  # noqa: SLF001 - a learner of the new config (no link needed here)
    # {1, 2} of the old config and {1, 4} of the new one: committed.
    assert ctx.configs.active.version == zxid and sorted(ctx.configs.active.voters) == [1, 4, 5]
    designated = (1).to_bytes(8, "big")
    assert sent(ctx, zxid) == {(2, P.COMMITANDACTIVATE, designated), (3, P.COMMITANDACTIVATE, designated)}
    assert not sent(ctx, after)  # proposed while the reconfig was pending: {1, 2} is no new quorum
    leader._on_ack_from(4, after)  # noqa: SLF001
    assert (2, P.COMMIT, None) in sent(ctx, after)


def test_a_leader_the_new_config_leaves_out_designates_an_acker_and_hands_over() -> None:
    ctx, leader = established_leader()
    zxid = propose_reconfig(ctx, leader, f"{S2}\n{S3}\nversion={0x100000001:x}")
    later = leader.submit(5, 2, OpCode.SET_DATA, SetDataTxn("/a", b"x", 0), 0)
    assert later is not None
    run_persists(ctx)
    leader.step(3, packet(P.ACK, later), 0)  # 3 acked more than 2 did: it is the designated leader
    leader.step(2, packet(P.ACK, zxid), 0)
    assert not sent(ctx, zxid)  # {2} is no quorum of {2, 3}
    leader.step(3, packet(P.ACK, zxid), 0)
    designated = (3).to_bytes(8, "big")
    assert sent(ctx, zxid) == {(2, P.COMMITANDACTIVATE, designated), (3, P.COMMITANDACTIVATE, designated)}
    assert not leader.allowed_to_commit and leader.next_vote == (3, ServerState.FOLLOWING)
    leader.step(2, packet(P.ACK, later), 0)
    assert not sent(ctx, later)  # allowedToCommit=false: the new leader commits it
    leader.tick(ctx.config.tick_time_ms)
    assert leader.failed and "designated leader 3" in leader.failed


def synced_follower(my_id: int) -> tuple[ZabContext, Follower]:
    ctx = zab_context(my_id)
    follower = Follower(ctx, 1, 0)
    follower.connected_to(1, 0)
    follower.step(1, packet(P.LEADERINFO, make_zxid(1, 0), b"\0\1\0\0"), b"", 0)
    run_persists(ctx)
    follower.step(1, packet(P.DIFF, 0), b"", 0)
    follower.step(1, packet(P.NEWLEADER, make_zxid(1, 0), f"{S1}\n{S2}\n{S3}\nversion=100000000".encode()), b"", 0)
    run_persists(ctx)
    follower.step(1, packet(P.UPTODATE, -1), b"", 0)
    return ctx, follower


def commit_reconfig(ctx: ZabContext, follower: Follower, text: str, designated: int) -> None:
    entry = encode_txn_entry(TxnHeader(5, 1, 0x100000001, 0, OpCode.RECONFIG),
                             SetDataTxn(CONFIG_NODE, text.encode(), -1), None)
    follower.step(1, packet(P.PROPOSAL, 0x100000001, entry), b"", 0)
    assert ctx.configs.last_seen.version == 0x100000001 != ctx.configs.active.version
    run_persists(ctx)
    follower.step(1, packet(P.COMMITANDACTIVATE, 0x100000001, designated.to_bytes(8, "big")), b"", 0)
    assert ctx.configs.active.version == 0x100000001


@pytest.mark.parametrize(("my_id", "designated", "next_vote"), [
    (2, 2, (2, ServerState.LEADING)),  # the designated leader leads at once
    (3, 2, (2, ServerState.FOLLOWING)),  # the others follow it without an election
])
def test_learners_take_the_designated_leader(my_id: int, designated: int,
                                             next_vote: tuple[int, ServerState]) -> None:
    ctx, follower = synced_follower(my_id)
    commit_reconfig(ctx, follower, f"{S2}\n{S3}\nversion=100000001", designated)
    assert follower.failed and follower.next_vote == next_vote


def test_a_follower_made_observer_observes_and_a_removed_one_follows_on() -> None:
    ctx, follower = synced_follower(3)
    commit_reconfig(ctx, follower, f"{S1}\n{S2}\n{S3.replace('participant', 'observer')}\nversion=100000001", 1)
    assert follower.failed and follower.next_vote == (1, ServerState.OBSERVING)
    ctx, follower = synced_follower(3)
    commit_reconfig(ctx, follower, f"{S1}\n{S2}\nversion=100000001", 1)
    assert not follower.failed  # a non-voting participant: its ACKs count for nothing


def test_a_truncated_reconfig_is_no_longer_the_last_seen_config() -> None:
    configs = QuorumConfigs(BASE, reconfig_enabled=True)
    configs.see(parse_config_text(f"{S1}\n{S2}\nversion=100000005"))
    assert configs.pending is not None and len(configs.quorums()) == 2
    assert not configs.has_all_quorums([1, 3]) and configs.has_all_quorums([1, 2])
    configs.forget_after(0x100000004)
    assert configs.pending is None and configs.quorums() == (BASE,)


def test_with_a_pending_config_discovery_needs_epoch_acks_of_both_configs() -> None:
    ctx = zab_context(1)
    ctx.configs.see(parse_config_text(f"{S1}\n{S4}\n{S5}\nversion=100000005"))
    leader = Leader(ctx, 0)

    def join(sid: int) -> None:
        leader.step(sid, packet(P.FOLLOWERINFO, 0, b"\0" * 7 + bytes([sid]) + b"\0\1\0\0" + b"\0" * 8), 0)
        run_persists(ctx)
        leader.step(sid, packet(P.ACKEPOCH, 0, b"\0\0\0\0"), 0)
        run_persists(ctx)

    join(2)
    assert leader.phase.value == "discovery"  # {1, 2}: a quorum of the active config only
    join(4)
    assert leader.phase.value == "synchronization"
