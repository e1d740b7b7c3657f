"""reconfig: Apache's checks and their order, HashMap member order, versions, the config files.

Expected texts are Apache ZooKeeper 3.8.0's, captured from a 3-server ensemble
(reconfigEnabled=true) running the same request sequence.
"""

from __future__ import annotations

import pytest

from jute.codes import Err, OpCode
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


def test_observer_join_is_admitted_a_voter_change_is_not() -> None:
    ens = Ensemble()
    ens.planner.admit(ens.planner.plan(ReconfigRequest(S100, None, None, -1), 0x100000001))
    with pytest.raises(ReconfigRefused) as caught:
        ens.planner.admit(ens.planner.plan(ReconfigRequest(S9, None, None, -1), 0x100000001))
    assert caught.value.err == Err.UNIMPLEMENTED


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
    ctx = zab_context(2)
    follower = Follower(ctx, 1, 0)
    follower.connected_to(1, 0)
    follower.step(1, packet(P.LEADERINFO, make_zxid(1, 0), b"\0\1\0\0"), b"", 0)
    run_persists(ctx)
    follower.step(1, packet(P.DIFF, 0), b"", 0)
    follower.step(1, packet(P.NEWLEADER, make_zxid(1, 0), f"{S1}\n{S2}\n{S3}\nversion=100000000".encode()), b"", 0)
    run_persists(ctx)
    follower.step(1, packet(P.UPTODATE, -1), b"", 0)
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
