"""Hand-written incidents over the simulator, each named after what it pins (STYLE.md D)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from jute.codes import ServerState
from pyzk.server.quorum_disk import QuorumDisk
from pyzk.sim.client_checker import ClientOp
from pyzk.sim.clients import SimClient
from pyzk.sim.world import SimOptions, SimulationFailure, World, member_text

pytestmark = pytest.mark.sim


def quiet_world(peers: int = 3, **options: int) -> World:
    world = World(7, SimOptions(peers=peers, fault_interval_ms=0, **options), random_faults=False)
    world.run_until_stable()
    world.run_for(500)
    world.workload_enabled = False
    world.run_until_stable()
    return world


def everyone_has(world: World, path: str) -> bool:
    return all(world.peer(sid).db.tree.get(path) is not None for sid in world.sids)


def test_a_proposal_logged_by_a_quorum_survives_the_leader_crashing_before_commit() -> None:
    world = quiet_world()
    old_leader = world.leader()
    zxid = world.submit_to_leader("/survivor")
    followers = [sid for sid in world.sids if sid != old_leader]
    assert world.run_until(world.now_ms + 1000, lambda: all(
        zxid in world.disks[sid].logged_zxids() for sid in followers))
    world.crash(old_leader)
    world.run_for(3000)
    world.restart(old_leader)
    world.run_until_stable()
    assert world.leader() != old_leader
    assert everyone_has(world, "/survivor")
    world.check_agreement()


def test_old_leader_with_an_uncommitted_tail_is_truncated_when_it_rejoins() -> None:
    world = quiet_world()
    old_leader = world.leader()
    world.isolate(old_leader)
    world.submit_to_leader("/lost")
    world.run_for(20)  # the leader's own write becomes durable; nobody else has it
    world.crash(old_leader)
    world.heal()
    world.run_for(3000)
    world.restart(old_leader)
    world.run_until_stable()
    assert world.probe.hits["follower truncated its log"] >= 1
    assert not any(world.peer(sid).db.tree.get("/lost") for sid in world.sids)
    world.check_agreement()


def test_partitioned_follower_rejoins_by_diff() -> None:
    world = quiet_world()
    follower = next(sid for sid in world.sids if sid != world.leader())
    world.isolate(follower)
    world.workload_enabled = True
    world.run_for(4000)
    world.workload_enabled = False
    world.heal()
    world.run_until_stable()
    assert world.probe.hits["leader sent DIFF with proposals"] >= 1
    assert world.probe.hits["leader sent SNAP"] == 0
    world.check_agreement()


def rejoin_after_missing_a_second_of_writes(**options: Any) -> World:
    world = quiet_world(**options)
    follower = next(sid for sid in world.sids if sid != world.leader())
    world.crash(follower)
    world.workload_enabled = True
    world.run_for(1000)
    world.workload_enabled = False
    world.restart(follower)
    world.run_until_stable()
    world.check_agreement()
    return world


def test_follower_behind_the_committed_log_window_gets_a_diff_of_the_txn_log() -> None:
    """snapshotSizeFactor 0: no size limit (with 0.33, the ~100-byte snapshot.0 that start-up
    writes would allow 33 bytes of txns and the leader would send a SNAP, as Apache's does)."""
    world = rejoin_after_missing_a_second_of_writes(commit_log_count=5, snapshot_size_factor=0)
    assert world.probe.hits["leader sent DIFF from its txn log"] >= 1
    assert world.probe.hits["leader sent SNAP"] == 0


def test_follower_behind_the_committed_log_window_gets_a_snap_with_txn_log_sync_off() -> None:
    world = rejoin_after_missing_a_second_of_writes(commit_log_count=5, snapshot_size_factor=-1)
    assert world.probe.hits["leader sent SNAP"] >= 1
    assert world.probe.hits["follower loaded a SNAP"] >= 1


def test_five_servers_survive_losing_two() -> None:
    world = quiet_world(peers=5)
    leader = world.leader()
    others = [sid for sid in world.sids if sid != leader]
    world.crash(leader)
    world.crash(others[0])
    world.workload_enabled = True
    assert world.run_until(world.now_ms + 10_000, lambda: len(world.established_leaders()) == 1)
    world.run_for(1000)
    world.workload_enabled = False
    world.restart(leader)
    world.restart(others[0])
    world.run_until_stable()
    world.check_agreement()


# ---- clients through the server layer: whose reply is it? -----------------------------------


def client_world(**options: int) -> tuple[World, SimClient]:
    """One scripted client (no random requests), a quiet ensemble whose followers wait long
    for a silent leader (so a short stall does not end its epoch)."""
    settings: dict[str, Any] = {"peers": 3, "fault_interval_ms": 0, "clients": 1, "client_timeout_ticks": (6,),
                                "sync_limit_ticks": 10, **options}
    world = World(7, SimOptions(**settings), random_faults=False)
    client = world.clients[0]
    client.enabled = False
    world.run_until_stable()
    return world, client


def connect_to(world: World, client: SimClient, sid: int) -> None:
    """A fresh connection of the client's session to `sid` (xids start at 1 again)."""
    client.only_members = [sid]
    client.give_up("scenario: reconnect")
    assert world.run_until(world.now_ms + 5000, lambda: client.connected and client.conn is not None
                           and client.conn.sid == sid)


def replied(world: World, *ops: ClientOp, within_ms: int = 5000) -> bool:
    return world.run_until(world.now_ms + within_ms, lambda: all(op.status != "pending" for op in ops))


def at_server(client: SimClient, count: int = 1) -> Callable[[], bool]:
    """The client's last `count` requests reached its server (prepped or forwarded there)."""
    return lambda: (client.conn is not None and client.conn.session is not None
                    and len(client.conn.session.pending) >= count)


def own_txn(world: World, op: ClientOp) -> Any:
    assert op.tag is not None
    return world.client_checker.committed.get(op.tag)


def finish(world: World) -> None:
    world.heal()
    world.run_until_stable()
    world.check_agreement()
    world.check_clients()


def test_write_during_a_paused_leader_then_the_session_moves() -> None:
    """A write (xid 2) is in flight at the leader when the leader stalls (cut from servers and
    clients). The client times out and moves its session to a follower, where its next request
    is a sequential create with xid 1. The stalled write commits once the stall ends, possibly
    after the create was forwarded: it must be applied before the create, never answered on the
    new connection, and the create must get its own node."""
    world, client = client_world(disk_delay_ms=(30, 40), net_delay_ms=(1, 4))
    leader = world.leader()
    followers = [sid for sid in world.sids if sid != leader]
    connect_to(world, client, leader)
    session_id = client.session_id
    warmup = client.request("create", "/warmup")
    assert replied(world, warmup) and warmup.status == "ok"
    paused = client.request("create", "/paused")
    assert world.run_until(world.now_ms + 1000, at_server(client))
    world.isolate(leader, clients=True)
    client.only_members = followers[:1]
    assert world.run_until(world.now_ms + 5000, lambda: client.conn is not None and client.conn.sid != leader)
    world.run_for(50)  # the stall ends before the followers give up on their leader or the session expires
    world.heal()
    assert world.run_until(world.now_ms + 5000, lambda: client.connected)
    assert client.session_id == session_id and world.leader() == leader  # moved, same epoch
    later = client.request("create_seq", "/s-")
    assert later.xid == 1
    assert replied(world, later)
    assert later.status == "ok"
    assert later.result_path == own_txn(world, later).path
    assert paused.status == "indeterminate"
    assert own_txn(world, paused) is not None, "the stalled write was expected to commit"
    assert own_txn(world, paused).zxid < own_txn(world, later).zxid
    finish(world)


def test_cas_replies_belong_to_their_key_and_version() -> None:
    """Conditional setData on three keys (xids 2..4), pipelined from one session to the leader,
    which stalls with them in flight. The session moves to a follower and sends a sync (xid 1,
    which a follower does not keep with its forwarded writes) and the same CAS requests with
    xids 2..4 on keys rotated by one. The stalled ones commit after the new ones were forwarded.
    Every ok reply's version is the one its own txn produced; BADVERSION means it changed nothing."""
    world, client = client_world(disk_delay_ms=(30, 40), net_delay_ms=(1, 4))
    leader = world.leader()
    followers = [sid for sid in world.sids if sid != leader]
    keys = ["/k0", "/k1", "/k2"]
    connect_to(world, client, leader)
    session_id = client.session_id
    creates = [client.request("create", key) for key in keys]
    assert replied(world, *creates) and all(op.status == "ok" for op in creates)
    connect_to(world, client, leader)
    warmup = client.request("sync", "/")
    assert replied(world, warmup) and warmup.status == "ok"
    old = [client.request("set", (key, 0)) for key in keys]
    assert [op.xid for op in old] == [2, 3, 4]
    assert world.run_until(world.now_ms + 1000, at_server(client, 3))
    world.isolate(leader, clients=True)
    client.only_members = followers[:1]
    assert world.run_until(world.now_ms + 5000, lambda: client.conn is not None and client.conn.sid != leader)
    world.run_for(50)
    world.heal()
    assert world.run_until(world.now_ms + 5000, lambda: client.connected)
    assert client.session_id == session_id and world.leader() == leader
    again = client.request("sync", "/")
    rotated = keys[1:] + keys[:1]
    new = [client.request("set", (key, 0 if i % 2 else 1)) for i, key in enumerate(rotated)]
    assert [op.xid for op in new] == [2, 3, 4]
    assert replied(world, again, *new)
    assert all(op.status == "indeterminate" for op in old)
    assert all(own_txn(world, op) is not None for op in old), "the stalled CAS writes were expected to commit"
    for op in new:
        txn = own_txn(world, op)
        if op.status == "ok":
            assert txn is not None and op.result_version == txn.version == op.version + 1
            assert own_txn(world, old[0]).zxid < txn.zxid
        else:
            assert txn is None and op.err == -103  # BADVERSION
    assert any(op.status == "ok" for op in new)
    finish(world)


def test_partition_isolating_the_leader_with_two_creates_in_flight() -> None:
    """Two creates (xids 2 and 3) from one session are on their way to the leader when a
    partition cuts it from the other servers and from the client. The session moves to a
    follower once the servers' side heals; then the client's side heals too, and the two old
    creates reach the leader after the move: SESSIONMOVED txns of this session, committed
    while the new connection's creates (xids 1..3) wait at the follower. Each acknowledged
    create's reply names its own node; the old creates answer nothing there."""
    world, client = client_world(disk_delay_ms=(30, 40), net_delay_ms=(1, 4))
    leader = world.leader()
    followers = [sid for sid in world.sids if sid != leader]
    connect_to(world, client, leader)
    session_id = client.session_id
    warmup = client.request("create", "/warmup")
    assert replied(world, warmup) and warmup.status == "ok"
    in_flight = [client.request("create", "/in-flight-a"), client.request("create_seq", "/s-")]
    world.isolate(leader, clients=True)
    client.only_members = followers[1:]
    assert world.run_until(world.now_ms + 5000, lambda: client.conn is not None and client.conn.sid != leader)
    world.run_for(50)
    world.heal_servers()
    assert world.run_until(world.now_ms + 5000, lambda: client.connected)
    assert client.session_id == session_id
    world.heal()
    assert world.run_until(world.now_ms + 1000, lambda: len(session_errors(world, session_id)) == 2)
    assert sorted(session_errors(world, session_id)) == [2, 3]  # the old xids, refused: SESSIONMOVED
    after = [client.request("create", "/after-a"), client.request("create_seq", "/s-"),
             client.request("create", "/after-b")]
    assert [op.xid for op in after] == [1, 2, 3]
    assert replied(world, *after)
    assert all(op.status == "indeterminate" and own_txn(world, op) is None for op in in_flight)
    assert all(op.status == "ok" for op in after)
    for op in after:
        assert op.result_path == own_txn(world, op).path
    finish(world)


def session_errors(world: World, session_id: int) -> list[int]:
    """The cxids of the error txns of `session_id` the leader has logged."""
    from pyzk.storage.format import decode_txn_entry

    cxids = []
    for _, entry in world.peer(world.leader()).db.log:
        hdr, _, _ = decode_txn_entry(entry)
        if hdr.clientId == session_id and hdr.type == -1:
            cxids.append(hdr.cxid)
    return cxids


def test_a_read_between_two_writes_of_its_session_sees_only_the_first() -> None:
    """setData, getData, setData of one key, pipelined from one session to the leader, many
    times over, with fsyncs slow enough that the leader's own write often covers both sets:
    both commit in one input, and the read must still see the first set's data, never the
    second's (rule (g); the leader used to apply both before answering the first)."""
    world, client = client_world(disk_delay_ms=(5, 30), net_delay_ms=(1, 2))
    connect_to(world, client, world.leader())
    created = client.request("create", "/k0")
    assert replied(world, created) and created.status == "ok"
    for _ in range(40):
        burst = [client.request("set", ("/k0", -1)), client.request("get", "/k0"),
                 client.request("set", ("/k0", -1))]
        assert replied(world, *burst) and all(op.status == "ok" for op in burst)
    finish(world)


def a_leader_whose_log_has_a_hole_from_a_snap(world: World) -> tuple[int, int]:
    """Member 4 (L) logs a few txns and crashes; the others go on; L comes back and is synced
    by a SNAP (its log files still hold its old txns, and then nothing up to the snapshot);
    the leader dies before anything else is written, and L leads the next epoch. Member 1
    (A) crashed earlier, its last txn inside L's old log. Returns (A, L)."""
    a, lead = 1, 4
    assert world.leader() == 5  # equal zxids: the highest sid leads
    world.submit_to_leader("/before-a")
    world.run_for(300)
    world.crash(a)
    world.submit_to_leader("/before-l")
    world.run_for(300)
    world.crash(lead)
    for i in range(5):
        world.submit_to_leader(f"/while-l-is-down-{i}")
        world.run_for(100)
    old = world.peer(5)
    old.ctx.config = dataclasses.replace(old.ctx.config, snapshot_size_factor=-1)  # SNAP only
    snaps = world.probe.hits["follower loaded a SNAP"]
    world.restart(lead)
    assert world.run_until(world.now_ms + 5000, lambda: world.peer(lead).established)
    assert world.probe.hits["follower loaded a SNAP"] == snaps + 1
    world.run_for(500)  # its snapshot is written
    world.crash(5)
    assert world.run_until(world.now_ms + 10_000, lambda: world.established_leaders() == [lead])
    for i in range(5):
        world.submit_to_leader(f"/epoch-2-{i}")
        world.run_for(100)
    return a, lead


def test_a_diff_from_the_log_files_never_crosses_a_snapshot_from_a_snap() -> None:
    """A's last txn is in L's log files, and the next one L has there is the first of the new
    epoch, so the files look like one history; but the txns L got by the SNAP are in no file.
    L must send A a SNAP (a DIFF would skip them: the digests would differ)."""
    world = quiet_world(peers=5, clients=0, commit_log_count=3, snapshot_size_factor=0, purge_interval_ms=0)
    a, _ = a_leader_whose_log_has_a_hole_from_a_snap(world)
    snaps = world.probe.hits["leader sent SNAP"]
    world.restart(a)
    world.restart(5)
    world.run_until_stable()
    world.check_agreement()
    assert world.probe.hits["leader sent SNAP"] >= snaps + 1


def test_without_the_snapshot_guard_that_diff_makes_members_diverge(monkeypatch: pytest.MonkeyPatch) -> None:
    """The scenario above fails when the guard is taken out: it does test the guard."""
    monkeypatch.setattr(QuorumDisk, "read_committed", lambda self, f, b, limit: self._read_history(f, b, limit))
    world = quiet_world(peers=5, clients=0, commit_log_count=3, snapshot_size_factor=0, purge_interval_ms=0)
    a, _ = a_leader_whose_log_has_a_hole_from_a_snap(world)
    world.restart(a)
    with pytest.raises(SimulationFailure, match="diverged"):
        world.run_until_stable()


def test_a_learner_synced_by_an_unestablished_leaders_snap_gets_a_snap_not_a_trunc() -> None:
    """Seed 7683: leader 3 of epoch 2 proposed 0x200000029 (never acknowledged by a quorum),
    applied its whole log going back to election, and as prospective leader of epoch 3 sent
    member 4 a SNAP at 0x200000029, which 4 wrote at NEWLEADER. Epoch 3 never established;
    the leader of epoch 4 (last zxid 0x200000028) must not TRUNC 4 to 0x200000028, below its
    snapshot (pyzk's member stopped there; Apache's would reload the newer snapshot and keep
    the uncommitted txn): 4 reports current epoch 3 with a last txn of epoch 2, so it gets a SNAP."""
    world = World(7683)
    world.run()
    assert world.probe.hits["leader sent SNAP, not TRUNC, to a learner synced by an unestablished leader"] >= 1


def test_the_voting_set_changes_while_clients_work() -> None:
    """The leader leaves (it hands over to the designated leader), a spare that ran outside
    the config joins as a participant, a follower becomes an observer and leaves, with the
    clients' checks on throughout."""
    options = SimOptions(peers=3, spares=1, reconfig=True, fault_interval_ms=0, reconfig_interval_ms=10**9)
    world = World(11, options, random_faults=False)
    world.run_until_stable()
    old = world.leader()
    assert world.reconfig(leaving=str(old)) == "proposed"
    world.run_for(1000)
    world.run_until_stable()
    new = world.leader()
    assert new != old and sorted(world.peer(new).ctx.configs.active.voters) == sorted(set(range(1, 4)) - {old})
    assert world.probe.hits["leader handed over to the designated leader"] == 1
    assert world.peer(old).state == ServerState.FOLLOWING  # a non-voting participant
    assert world.reconfig(joining=f"server.4={member_text(4, 'participant')}") == "proposed"
    world.run_for(1000)
    world.run_until_stable()
    assert world.peer(4).state == ServerState.FOLLOWING and 4 in world.peer(new).ctx.configs.active.voters
    follower = next(sid for sid in world.peer(new).ctx.configs.active.voters if sid not in (new, 4))
    assert world.reconfig(joining=f"server.{follower}={member_text(follower, 'observer')}") == "proposed"
    world.run_for(1000)
    world.run_until_stable()
    assert world.peer(follower).state == ServerState.OBSERVING
    assert world.reconfig(leaving=str(follower), version=0) == "BADVERSION"
    assert world.reconfig(leaving=f"{new},4") == "BADARGUMENTS"  # one voter would be left
    world.run_for(1000)
    world.workload_enabled = False
    world.run_until_stable()
    assert world.probe.hits["reconfig committed with voting set change"] == 3
    world.check_agreement()
    world.check_clients()
    for sid in world.sids:  # every member's config file holds the last config
        assert world.config_files[sid].version == world.peer(new).ctx.configs.active.version
