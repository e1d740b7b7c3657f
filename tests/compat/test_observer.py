"""Observers: a fourth server that votes for nothing, serves clients and follows every commit.

Each case runs 3 voters and an observer (server 4, ``:observer`` in every zoo.cfg and
peerType=observer in its own) of the kinds its id names: all Apache (the reference), all
pyzk, Java voters with a pyzk observer, pyzk voters with a Java observer. Kinds that
PYZK_TARGETS does not name are skipped. Every case checks the same things: the observer
reports Mode: observer; the leader counts it in zk_synced_observers; a write through the
observer commits and every member serves the same tree; a session moves to the observer and
back (its old connection's write then closes it); the observer keeps serving after the
leader is killed, and catches up after its own restart; no member logs a protocol error.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from tests.compat.conftest import target_kinds_from_env
from tests.compat.targets import (
    Ensemble,
    Server,
    four_letter_word,
    free_loopback_ports,
    serving_mode,
    start_mixed,
    zoo_cfg_text,
)
from tests.compat.test_mixed import (
    CFG,
    START_TIMEOUT_S,
    STEP_TIMEOUT_S,
    check_logs,
    check_session_moves,
    client,
    wait_for,
    walks_agree,
)

J, P = "apache", "pyzk"
OBSERVER_ID = 4
# The matrix puts a case whose parameter is a target name ("apache", "pyzk") in that
# target's column; the mixed cases' parameters are not, so they count as comparisons.
CASES = {
    "apache": [J, J, J, J],
    "pyzk": [P, P, P, P],
    "3apache+pyzk-observer": [J, J, J, P],
    "3pyzk+apache-observer": [P, P, P, J],
}


def _selected() -> list[str]:
    kinds = set(target_kinds_from_env())
    return [name for name, case in CASES.items() if set(case) <= kinds]


@pytest.fixture(params=_selected())
def ensemble(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ensemble]:
    ens = start_mixed(CASES[request.param], CFG, workdir=tmp_path, start_timeout_s=START_TIMEOUT_S,
                      target=request.param, observers=frozenset({OBSERVER_ID}))
    try:
        yield ens
    finally:
        ens.stop()


def modes(ens: Ensemble) -> dict[int, str | None]:
    return {s.server_id: serving_mode(s.client_port) if s.running else "down" for s in ens.servers}


def voters_with_a_leader(ens: Ensemble) -> Server | None:
    voters = [s for s in ens.servers if s.server_id != OBSERVER_ID and s.running]
    found = [serving_mode(s.client_port) for s in voters]
    if None in found or found.count("leader") != 1:
        return None
    return voters[found.index("leader")]


def mntr(server: Server) -> dict[str, str]:
    pairs = (line.split("\t", 1) for line in four_letter_word(server.client_port, "mntr").splitlines())
    return {pair[0]: pair[1] for pair in pairs if len(pair) == 2}


def assert_same_tree(ens: Ensemble, path: str, expected_children: int) -> None:
    """Every member (all running) serves the same tree under `path`, after sync."""
    tree = walks_agree(ens, path)
    assert len(tree) == expected_children + 1, sorted(tree)


def write_through(server: Server, path: str, count: int) -> None:
    zk: KazooClient = client(server.address)
    try:
        zk.ensure_path(path)
        for i in range(count):
            zk.create(f"{path}/n{i:03d}", f"v{i}".encode())
    finally:
        zk.stop()
        zk.close()


def test_an_observer_serves_forwards_and_survives_a_leader_kill(ensemble: Ensemble) -> None:
    observer = ensemble.servers[OBSERVER_ID - 1]
    wait_for(lambda: voters_with_a_leader(ensemble) is not None and serving_mode(observer.client_port) == "observer",
             STEP_TIMEOUT_S, "a leader among the voters and a serving observer")
    leader = voters_with_a_leader(ensemble)
    assert leader is not None
    wait_for(lambda: mntr(leader).get("zk_synced_observers") == "1", STEP_TIMEOUT_S,
             "the leader's zk_synced_observers = 1")
    assert mntr(leader).get("zk_synced_followers") == "2"
    assert mntr(observer).get("zk_server_state") == "observer"

    write_through(observer, "/obs", 20)  # every write forwarded by the observer
    # Sessions move to the observer and away from it (REVALIDATE, owners, SESSIONMOVED).
    write_through(leader, "/mixed/moves", 0)
    follower = next(s for s in ensemble.servers if s is not leader and s is not observer)
    check_session_moves(follower, observer, "to-observer")
    check_session_moves(observer, follower, "from-observer")
    write_through(leader, "/obs2", 5)
    assert_same_tree(ensemble, "/obs", 20)
    assert_same_tree(ensemble, "/obs2", 5)

    # The leader dies: the voters elect another, the observer follows it and serves on.
    leader.kill9()
    wait_for(lambda: voters_with_a_leader(ensemble) is not None and serving_mode(observer.client_port) == "observer",
             STEP_TIMEOUT_S, f"a new leader and the observer serving again, have {modes(ensemble)}")
    write_through(observer, "/after-kill", 10)
    leader.start(timeout_s=START_TIMEOUT_S)
    wait_for(lambda: all(m is not None for m in modes(ensemble).values()), STEP_TIMEOUT_S,
             f"every member serving, have {modes(ensemble)}")
    assert_same_tree(ensemble, "/after-kill", 10)

    # The observer restarts behind: it syncs (DIFF) and serves the writes it missed.
    observer.stop()
    write_through(voters_with_a_leader(ensemble) or ensemble.servers[0], "/while-down", 10)
    observer.start(timeout_s=START_TIMEOUT_S)
    assert serving_mode(observer.client_port) == "observer"
    assert_same_tree(ensemble, "/while-down", 10)
    assert_same_tree(ensemble, "/obs", 20)
    check_logs(ensemble, f"observer case {ensemble.kind}")


def test_a_member_and_its_observer_share_one_client_port(tmp_path: Path) -> None:
    """pyzk's -Dpyzk.clientPort.reusePort=true (SO_REUSEPORT): a one-member ensemble and its
    observer on one host listen on the same client port; the kernel spreads the connections
    over both processes, each serving them from its own replica (reads past one core).
    pyzk only: Apache has no such setting."""
    if "pyzk" not in target_kinds_from_env():
        pytest.skip("pyzk's own setting")
    ports = free_loopback_ports(7)
    shared_client_port, admin_ports = ports[0], ports[5:7]
    flags = ["-Dpyzk.clientPort.reusePort=true"]
    servers = [Server(P, sid, shared_client_port, ports[2 * sid - 1], ports[2 * sid], admin_ports[sid - 1],
                      tmp_path / f"server{sid}", flags) for sid in (1, 2)]
    ens = Ensemble(kind=P, servers=servers, workdir=tmp_path)
    try:
        for server in servers:
            server.data_dir.mkdir(parents=True)
            (server.data_dir / "myid").write_text(f"{server.server_id}\n")
            server.config_path.write_text(zoo_cfg_text(server, servers, {**CFG, "standaloneEnabled": "false"},
                                                       observers=frozenset({2})))
        ens.start(START_TIMEOUT_S)
        write_through(servers[0], "/shared", 5)
        clients = [client(servers[0].address) for _ in range(24)]
        try:
            sessions_by_server: dict[int, int] = {}
            for zk in clients:
                zk.sync("/shared")
                assert len(zk.get_children("/shared")) == 5
                # A session id's top byte is the id of the server that created it.
                created_by = zk.client_id[0] >> 56
                sessions_by_server[created_by] = sessions_by_server.get(created_by, 0) + 1
        finally:
            for zk in clients:
                zk.stop()
                zk.close()
        # 24 connections hashed over 2 listeners: both get some (all on one: 2 * 0.5**24).
        assert set(sessions_by_server) == {1, 2}, sessions_by_server
    finally:
        ens.stop()
