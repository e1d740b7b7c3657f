"""reconfig of the voting set, the same scenario on Apache ZooKeeper 3.8 and on pyzk.

3 servers with reconfigEnabled=true; a super-authenticated kazoo client runs, through one
member: a follower leaves; a stale fromConfig (BADVERSION); a config without a synced quorum
(NEWCONFIGNOQUORUM); one with too few voters (BADARGUMENTS); the follower joins back; the
other follower becomes an observer; clients write between the steps. A second scenario starts a fourth server outside the
ensemble's config (its own lists the ensemble and itself): it follows as a non-voting
participant, joins as a voter, and leaves again with a follower. What each step returns
(the new voters and observers, by role, or the error) and the members' modes are compared
between the kinds run in one case: all-Apache against all-pyzk (one comparison parameter), and
the mixed ensembles (a pyzk leader with Java followers and the reverse) against the same
expectations. Writes through every member must agree at the end, and no member may log a
protocol error.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import KazooException

from tests.compat.conftest import target_kinds_from_env
from tests.compat.targets import (
    Ensemble,
    Server,
    free_loopback_ports,
    plan_servers,
    serving_mode,
    start_mixed,
    sysprop_args,
    zoo_cfg_text,
)
from tests.compat.test_mixed import CFG, START_TIMEOUT_S, STEP_TIMEOUT_S, client, wait_for, walks_agree

J, P = "apache", "pyzk"
SUPER_DIGEST = "super:D/InIHSb7yEEbrWz8b9l71RjZJU="  # super:test
RECONFIG_CFG: dict[str, str | None] = {**CFG, "reconfigEnabled": "true"}
SYSPROPS = {"zookeeper.DigestAuthenticationProvider.superDigest": SUPER_DIGEST}
# Server 3 wins the first election (equal zxids: the highest id), so its kind leads.
MIXED = {"pyzk-leader+2apache": [J, J, P], "apache-leader+2pyzk": [P, P, J]}


def _selected_comparisons() -> list[tuple[str, str]]:
    kinds = set(target_kinds_from_env())
    return [(J, P)] if {J, P} <= kinds else []


def _selected_mixed() -> list[str]:
    kinds = set(target_kinds_from_env())
    return [name for name, case in MIXED.items() if set(case) <= kinds]


def _line(server: Server, role: str) -> str:
    return (f"server.{server.server_id}=127.0.0.1:{server.quorum_port}:{server.election_port}:{role}"
            f";127.0.0.1:{server.client_port}")


def _modes(ens: Ensemble) -> dict[int, str | None]:
    return {s.server_id: serving_mode(s.client_port) for s in ens.servers}


def _leader(ens: Ensemble) -> Server:
    found: list[Server] = []

    def one_leader() -> bool:
        found[:] = [s for s in ens.servers if serving_mode(s.client_port) == "leader"]
        return len(found) == 1

    wait_for(one_leader, STEP_TIMEOUT_S, "one leader")
    return found[0]


def _roles(text: bytes, names: dict[int, str]) -> str:
    """A config's members by the scenario's names (L, F1, F2), with their roles."""
    members = []
    for line in text.decode().splitlines():
        if line.startswith("server."):
            sid = int(line[len("server."):line.index("=")])
            role = line.split(";", 1)[0].rsplit(":", 1)[-1]
            members.append(f"{names.get(sid, sid)}:{role}")
    return ",".join(sorted(members))


def _attempt(zk: KazooClient, names: dict[int, str], **request: object) -> tuple[str, int]:
    """One reconfig: the new members by role, or the error's class; and the version now."""
    try:
        data, _stat = zk.reconfig(**request)  # type: ignore[arg-type]
    except KazooException as exc:
        outcome = type(exc).__name__
    else:
        outcome = _roles(data, names)
    return outcome, _version(zk)


def _version(zk: KazooClient) -> int:
    zk.sync("/zookeeper/config")
    text, _ = zk.get("/zookeeper/config")
    return int(text.decode().rsplit("version=", 1)[1], 16)


def _write(ens: Ensemble, step: str) -> None:
    """A write through every running member (with retries while roles settle)."""
    for server in ens.servers:
        def created(server: Server = server) -> bool:
            zk = client(server.address)
            try:
                zk.ensure_path("/rv")
                zk.create(f"/rv/{step}-{server.server_id}", step.encode())
                return True
            except KazooException:
                return False
            finally:
                zk.stop()
                zk.close()

        wait_for(created, STEP_TIMEOUT_S, f"a write through server {server.server_id} ({step})")


def _wait_modes(ens: Ensemble, names: dict[int, str], expected: dict[str, str]) -> dict[str, str | None]:
    by_name: dict[str, str | None] = {}

    def settled() -> bool:
        by_name.clear()
        by_name.update({names[sid]: mode for sid, mode in _modes(ens).items()})
        return by_name == expected

    try:
        wait_for(settled, STEP_TIMEOUT_S, f"modes {expected}")
    except AssertionError:
        pass  # reported as the difference below
    return dict(sorted(by_name.items()))


def run_scenario(ens: Ensemble) -> list[str]:
    """The scenario; what every step gave, by role name (the leader's id differs by kind)."""
    leader = _leader(ens)
    f1, f2 = [s for s in ens.servers if s is not leader]
    names = {leader.server_id: "L", f1.server_id: "F1", f2.server_id: "F2"}
    zk = client(leader.address)
    zk.add_auth("digest", "super:test")
    results: list[str] = []
    try:
        _write(ens, "start")
        v0 = _version(zk)
        out, v1 = _attempt(zk, names, joining=None, leaving=str(f1.server_id), new_members=None)
        results.append(f"remove F1: {out}")
        results.append(f"version changed: {v1 != v0}")
        results.append("modes: " + repr(_wait_modes(ens, names, {"L": "leader", "F1": "follower", "F2": "follower"})))
        _write(ens, "removed")
        out, _ = _attempt(zk, names, joining=None, leaving=str(f2.server_id), new_members=None, from_config=v0)
        results.append(f"stale fromConfig: {out}")
        out, _ = _attempt(zk, names, joining=None, leaving=str(f2.server_id), new_members=None)
        results.append(f"remove F2 too (one voter left): {out}")
        ghost = "server.8=127.0.0.1:1:2:participant;127.0.0.1:3,server.9=127.0.0.1:4:5:participant;127.0.0.1:6"
        out, _ = _attempt(zk, names, joining=ghost, leaving=None, new_members=None)
        results.append(f"add two servers that do not run: {out}")
        out, _ = _attempt(zk, names, joining=_line(f1, "participant"), leaving=None, new_members=None)
        results.append(f"add F1 back: {out}")
        results.append("modes: " + repr(_wait_modes(ens, names, {"L": "leader", "F1": "follower", "F2": "follower"})))
        _write(ens, "back")
        out, _ = _attempt(zk, names, joining=_line(f2, "observer"), leaving=None, new_members=None)
        results.append(f"F2 to observer: {out}")
        results.append("modes: " + repr(_wait_modes(ens, names, {"L": "leader", "F1": "follower", "F2": "observer"})))
        _write(ens, "observer")
        out, _ = _attempt(zk, names, joining=_line(f2, "participant"), leaving=str(leader.server_id),
                          new_members=None)
        results.append(f"remove L while F2 becomes a participant: {out}")  # F2 is no synced follower
        out, _ = _attempt(zk, names, joining=_line(f2, "participant"), leaving=None, new_members=None)
        results.append(f"F2 back to participant: {out}")
        results.append("modes: " + repr(_wait_modes(ens, names, {"L": "leader", "F1": "follower", "F2": "follower"})))
        out, _ = _attempt(zk, names, joining=None, leaving=str(leader.server_id), new_members=None)
        results.append(f"remove L: {out}")
        results.append("modes: " + repr(_wait_modes(ens, names, {"L": "follower", "F1": "leader", "F2": "follower"})))
        _write(ens, "no-old-leader")
    finally:
        zk.stop()
        zk.close()
    tree = walks_agree(ens, "/rv")
    results.append(f"nodes written: {len(tree) - 1}")
    return results


EXPECTED = [
    "remove F1: L:participant,F2:participant",
    "version changed: True",
    "modes: {'F1': 'follower', 'F2': 'follower', 'L': 'leader'}",
    "stale fromConfig: BadVersionError",
    "remove F2 too (one voter left): BadArgumentsError",
    "add two servers that do not run: NewConfigNoQuorumError",
    "add F1 back: F1:participant,L:participant,F2:participant",
    "modes: {'F1': 'follower', 'F2': 'follower', 'L': 'leader'}",
    "F2 to observer: F1:participant,L:participant,F2:observer",
    "modes: {'F1': 'follower', 'F2': 'observer', 'L': 'leader'}",
    "remove L while F2 becomes a participant: NewConfigNoQuorumError",
    "F2 back to participant: F1:participant,F2:participant,L:participant",
    "modes: {'F1': 'follower', 'F2': 'follower', 'L': 'leader'}",
    "remove L: F1:participant,F2:participant",
    "modes: {'F1': 'leader', 'F2': 'follower', 'L': 'follower'}",
    "nodes written: 15",
]


def _run(kinds: list[str], workdir: Path) -> list[str]:
    ens = start_mixed(kinds, RECONFIG_CFG, SYSPROPS, workdir=workdir, start_timeout_s=START_TIMEOUT_S)
    try:
        return run_scenario(ens)
    finally:
        ens.stop()


def _sorted_members(results: list[str]) -> list[str]:
    """Member lists compared as sets (their order is the config's HashMap order)."""
    out = []
    for line in results:
        head, _, tail = line.partition(": ")
        if ":participant" in tail or ":observer" in tail:
            tail = ",".join(sorted(tail.split(",")))
        out.append(f"{head}: {tail}")
    return out


@pytest.mark.parametrize("kinds", _selected_comparisons(), ids="-vs-".join)
def test_voting_set_reconfig_like_apache(kinds: tuple[str, str], tmp_path: Path) -> None:
    outcomes = {kind: _sorted_members(_run([kind] * 3, tmp_path / kind)) for kind in kinds}
    assert outcomes[P] == outcomes[J]
    assert outcomes[J] == _sorted_members(EXPECTED)


@pytest.mark.parametrize("case", _selected_mixed())
def test_voting_set_reconfig_in_a_mixed_ensemble(case: str, tmp_path: Path) -> None:
    assert _sorted_members(_run(MIXED[case], tmp_path)) == _sorted_members(EXPECTED)


# ---- a server outside the ensemble's config joins, then leaves --------------------------------


def _start_with_a_newcomer(kinds: list[str], workdir: Path) -> Ensemble:
    """Servers 1..n-1 list only themselves; server n lists them and itself (Apache's way to
    bring a new server in: it starts as a non-voting participant of the running ensemble)."""
    servers = plan_servers(kinds, free_loopback_ports(4 * len(kinds)), sysprop_args(SYSPROPS), workdir,
                           [f"server{index + 1}" for index in range(len(kinds))])
    for server in servers:
        server.data_dir.mkdir(parents=True, exist_ok=True)
        (server.data_dir / "myid").write_text(f"{server.server_id}\n")
        listed = servers if server is servers[-1] else servers[:-1]
        server.config_path.write_text(zoo_cfg_text(server, listed, RECONFIG_CFG))
    ens = Ensemble(kind="+".join(kinds), servers=servers, workdir=workdir)
    try:
        ens.servers = servers[:-1]
        ens.start(START_TIMEOUT_S)
        _leader(ens)
        ens.servers = servers
        servers[-1].start(timeout_s=START_TIMEOUT_S)
    except BaseException:
        ens.servers = servers
        ens.stop()
        raise
    return ens


def run_newcomer_scenario(ens: Ensemble) -> list[str]:
    newcomer = ens.servers[-1]
    members = ens.servers[:-1]
    member_ens = Ensemble(kind=ens.kind, servers=members, workdir=ens.workdir)
    leader = _leader(member_ens)
    followers = [s for s in members if s is not leader]
    names = {followers[0].server_id: "F1", followers[1].server_id: "F2", leader.server_id: "L",
             newcomer.server_id: "N"}
    zk = client(leader.address)
    zk.add_auth("digest", "super:test")
    results: list[str] = []
    try:
        results.append("before: " + repr(_wait_modes(ens, names, {"L": "leader", "F1": "follower", "F2": "follower",
                                                                  "N": "follower"})))
        out, _ = _attempt(zk, names, joining=_line(newcomer, "participant"), leaving=None, new_members=None)
        results.append(f"add N: {out}")
        results.append("modes: " + repr(_wait_modes(ens, names, {"L": "leader", "F1": "follower", "F2": "follower",
                                                                 "N": "follower"})))
        _write(ens, "joined")
        out, _ = _attempt(zk, names, joining=None, leaving=f"{newcomer.server_id},{followers[0].server_id}",
                          new_members=None)
        results.append(f"remove N and F1: {out}")
        results.append("modes: " + repr(_wait_modes(ens, names, {"L": "leader", "F1": "follower", "F2": "follower",
                                                                 "N": "follower"})))
        _write(ens, "left")
    finally:
        zk.stop()
        zk.close()
    results.append(f"nodes written: {len(walks_agree(ens, '/rv')) - 1}")
    return results


NEWCOMER_EXPECTED = [
    "before: {'F1': 'follower', 'F2': 'follower', 'L': 'leader', 'N': 'follower'}",
    "add N: F1:participant,F2:participant,L:participant,N:participant",
    "modes: {'F1': 'follower', 'F2': 'follower', 'L': 'leader', 'N': 'follower'}",
    "remove N and F1: F2:participant,L:participant",
    "modes: {'F1': 'follower', 'F2': 'follower', 'L': 'leader', 'N': 'follower'}",
    "nodes written: 8",
]


def _run_newcomer(kinds: list[str], workdir: Path) -> list[str]:
    ens = _start_with_a_newcomer(kinds, workdir)
    try:
        return run_newcomer_scenario(ens)
    finally:
        ens.stop()


@pytest.mark.parametrize("kinds", _selected_comparisons(), ids="-vs-".join)
def test_a_server_outside_the_config_joins_and_leaves_like_apache(kinds: tuple[str, str], tmp_path: Path) -> None:
    outcomes = {kind: _sorted_members(_run_newcomer([kind] * 4, tmp_path / kind)) for kind in kinds}
    assert outcomes[P] == outcomes[J]
    assert outcomes[J] == _sorted_members(NEWCOMER_EXPECTED)


NEWCOMER_MIXED = {"pyzk-ensemble+apache-newcomer": [P, P, P, J], "apache-ensemble+pyzk-newcomer": [J, J, J, P]}


@pytest.mark.parametrize("case", [name for name, case in NEWCOMER_MIXED.items()
                                  if set(case) <= set(target_kinds_from_env())])
def test_a_server_outside_the_config_joins_a_mixed_ensemble(case: str, tmp_path: Path) -> None:
    assert _sorted_members(_run_newcomer(NEWCOMER_MIXED[case], tmp_path)) == _sorted_members(NEWCOMER_EXPECTED)
