"""Hand-written incidents over the simulator, each named after what it pins (STYLE.md D)."""

from __future__ import annotations

import pytest

from pyzk.sim.world import SimOptions, World

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
        any(z == zxid for z, _ in world.disks[sid].durable.entries) for sid in followers))
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


def test_follower_behind_the_committed_log_window_gets_a_snap() -> None:
    world = quiet_world(commit_log_count=5)
    follower = next(sid for sid in world.sids if sid != world.leader())
    world.crash(follower)
    world.workload_enabled = True
    world.run_for(1000)
    world.workload_enabled = False
    world.restart(follower)
    world.run_until_stable()
    assert world.probe.hits["leader sent SNAP"] >= 1
    assert world.probe.hits["follower loaded a SNAP"] >= 1
    world.check_agreement()


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
