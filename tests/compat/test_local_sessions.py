"""Local sessions (localSessionsEnabled) on a 3-server ensemble of each target.

A new session lives on the server it connected to: no createSession txn (the leader does not
count it), it cannot move to another server (the leader answers its REVALIDATE with "gone"),
and its first ephemeral create upgrades it to a global session
(localSessionsUpgradingEnabled) or is refused with EPHEMERALONLOCALSESSION.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import EphemeralOnLocalSessionError

from tests.compat import rawclient as raw
from tests.compat.conftest import target_kinds_from_env
from tests.compat.targets import (
    Ensemble,
    Server,
    four_letter_word,
    serving_mode,
    start_target,
)

SIZE = 3
POLL_S = 0.1
WAIT_S = 10.0


def _ensemble(kind: str, tmp_path: Path, upgrading: bool) -> Ensemble:
    return start_target(kind, SIZE, {"localSessionsEnabled": "true",
                                     "localSessionsUpgradingEnabled": "true" if upgrading else "false"},
                        workdir=tmp_path, start_timeout_s=60)


@pytest.fixture(params=target_kinds_from_env())
def ensemble(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ensemble]:
    ens = _ensemble(request.param, tmp_path, upgrading=True)
    yield ens
    ens.stop()


@pytest.fixture(params=target_kinds_from_env())
def no_upgrade_ensemble(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ensemble]:
    ens = _ensemble(request.param, tmp_path, upgrading=False)
    yield ens
    ens.stop()


def mntr(server: Server) -> dict[str, str]:
    text = four_letter_word(server.client_port, "mntr")
    return dict(line.split("\t", 1) for line in text.splitlines() if "\t" in line)


def by_mode(ens: Ensemble) -> tuple[Server, list[Server]]:
    modes = {s.server_id: serving_mode(s.client_port) for s in ens.servers}
    leader = next(s for s in ens.servers if modes[s.server_id] == "leader")
    return leader, [s for s in ens.servers if s is not leader]


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(POLL_S)
    raise AssertionError(f"timed out waiting for {what}")


def client_on(server: Server) -> KazooClient:
    client = KazooClient(hosts=server.address, timeout=10)
    client.start(timeout=15)
    return client


def test_local_session_lives_on_its_server_and_upgrades_on_ephemeral_create(ensemble: Ensemble) -> None:
    leader, (follower, _other) = by_mode(ensemble)
    client = client_on(follower)
    try:
        session_id = client.client_id[0]
        assert mntr(follower)["zk_local_sessions"] == "1"
        assert mntr(leader)["zk_global_sessions"] == "0"  # no createSession txn
        client.create("/local-persistent", b"p")
        assert client.exists("/local-persistent") is not None
        client.create("/local-ephemeral", b"e", ephemeral=True)  # upgrades the session
        _, stat = client.get("/local-ephemeral")
        assert stat.ephemeralOwner == session_id
        wait_for(lambda: mntr(leader)["zk_global_sessions"] == "1", "the leader to track the upgraded session")
        assert mntr(follower)["zk_local_sessions"] == "0"
    finally:
        client.stop()
        client.close()
    watcher = client_on(leader)
    try:
        wait_for(lambda: watcher.exists("/local-ephemeral") is None, "the ephemeral to go with its session")
        assert watcher.exists("/local-persistent") is not None
    finally:
        watcher.stop()
        watcher.close()


def test_local_session_cannot_move_to_another_server(ensemble: Ensemble) -> None:
    _leader, (first, second) = by_mode(ensemble)
    with raw.RawClient("127.0.0.1", first.client_port) as on_first:
        established = on_first.handshake()
        assert established.timeout_ms > 0
        with raw.RawClient("127.0.0.1", second.client_port) as on_second:
            moved = on_second.handshake(session_id=established.session_id, password=established.password)
            assert (moved.timeout_ms, moved.session_id) == (0, 0)  # expired, as far as others know
            assert on_second.wait_closed()


def test_ephemeral_create_without_upgrading_is_refused(no_upgrade_ensemble: Ensemble) -> None:
    _leader, (follower, _other) = by_mode(no_upgrade_ensemble)
    client = client_on(follower)
    try:
        with pytest.raises(EphemeralOnLocalSessionError):
            client.create("/no-upgrade", b"e", ephemeral=True)
        assert client.exists("/no-upgrade") is None
        client.create("/no-upgrade-persistent", b"p")
        assert mntr(follower)["zk_local_sessions"] == "1"
    finally:
        client.stop()
        client.close()
