"""A 3-server ensemble on each target: election, replicated writes, global sessions, failover.

Every test starts its own ensemble (they kill and restart servers). Clients are kazoo; a
follower's view is read after `sync`, as ZooKeeper only promises it then.
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from tests.compat.conftest import target_kinds_from_env
from tests.compat.rawclient import (
    RawClient,
    boolean,
    buffer,
    connect_request,
    create_request,
    int32,
    ustring,
)
from tests.compat.targets import (
    Ensemble,
    Server,
    four_letter_word,
    serving_mode,
    start_target,
)

SIZE = 3
CONNECT_TIMEOUT_S = 15.0
FAILOVER_TIMEOUT_S = 30.0
POLL_S = 0.2


@pytest.fixture(params=target_kinds_from_env())
def ensemble(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ensemble]:
    ens = start_target(request.param, SIZE, workdir=tmp_path, start_timeout_s=60)
    yield ens
    ens.stop()


def client(hosts: str) -> KazooClient:
    zk = KazooClient(hosts=hosts, timeout=10.0)
    zk.start(timeout=CONNECT_TIMEOUT_S)
    return zk


def srvr_field(server: Server, name: str) -> str:
    for line in four_letter_word(server.client_port, "srvr").splitlines():
        if line.startswith(f"{name}:"):
            return line.partition(":")[2].strip()
    return ""


def modes(servers: list[Server]) -> list[str | None]:
    return [serving_mode(s.client_port) for s in servers]


def wait_for(condition, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(POLL_S)


def leader_of(ens: Ensemble) -> Server:
    leaders = [s for s in ens.servers if s.running and serving_mode(s.client_port) == "leader"]
    assert len(leaders) == 1, modes(ens.servers)
    return leaders[0]


def test_one_leader_and_followers_with_one_zxid(ensemble: Ensemble) -> None:
    assert sorted(modes(ensemble.servers)) == ["follower", "follower", "leader"]
    zk = client(ensemble.hosts)
    try:
        zk.create("/e", b"1")
        zk.sync("/e")
    finally:
        zk.stop()
    wait_for(lambda: len({srvr_field(s, "Zxid") for s in ensemble.servers}) == 1, 10, "equal zxids")


def test_write_on_one_server_read_on_every_other(ensemble: Ensemble) -> None:
    clients = [client(s.address) for s in ensemble.servers]
    try:
        for i, zk in enumerate(clients):
            zk.create(f"/from{i}", b"v%d" % i)
        for zk in clients:
            zk.sync("/")
            assert sorted(c for c in zk.get_children("/") if c.startswith("from")) == ["from0", "from1", "from2"]
            assert zk.get("/from2")[0] == b"v2"
        stat = clients[0].set("/from1", b"new")
        clients[2].sync("/from1")
        data, stat2 = clients[2].get("/from1")
        assert data == b"new" and stat2.mzxid == stat.mzxid and stat2.version == 1
    finally:
        for zk in clients:
            zk.stop()


def test_ephemeral_of_a_closed_session_disappears_everywhere(ensemble: Ensemble) -> None:
    follower = next(s for s in ensemble.servers if serving_mode(s.client_port) == "follower")
    owner = client(follower.address)
    owner.create("/eph", b"", ephemeral=True)
    readers = [client(s.address) for s in ensemble.servers]
    try:
        for zk in readers:
            zk.sync("/eph")
            assert zk.exists("/eph") is not None
        owner.stop()
        owner.close()
        for zk in readers:
            zk.sync("/eph")
            assert zk.exists("/eph") is None
    finally:
        for zk in readers:
            zk.stop()


def test_watch_on_a_follower_fires_for_a_write_through_the_leader(ensemble: Ensemble) -> None:
    follower = next(s for s in ensemble.servers if serving_mode(s.client_port) == "follower")
    watcher = client(follower.address)
    writer = client(leader_of(ensemble).address)
    fired = threading.Event()
    events = []
    try:
        watcher.exists("/watched", watch=lambda e: (events.append(e), fired.set()))
        writer.create("/watched", b"x")
        assert fired.wait(10)
        assert events[0].type == "CREATED" and events[0].path == "/watched"
    finally:
        watcher.stop()
        writer.stop()


def test_session_created_on_one_server_resumes_on_another(ensemble: Ensemble) -> None:
    first, second = ensemble.servers[0], ensemble.servers[1]
    a = KazooClient(hosts=first.address, timeout=10.0)
    a.start(timeout=CONNECT_TIMEOUT_S)
    a.create("/keep", b"", ephemeral=True)
    session_id, password = a.client_id
    b = KazooClient(hosts=second.address, timeout=10.0, client_id=(session_id, password))
    try:
        b.start(timeout=CONNECT_TIMEOUT_S)
        assert b.client_id[0] == session_id
        b.sync("/keep")
        assert b.exists("/keep").ephemeralOwner == session_id
    finally:
        b.stop()
        a.stop()


def test_leader_killed_the_others_elect_and_acknowledged_writes_survive(ensemble: Ensemble) -> None:
    zk = client(ensemble.hosts)
    try:
        for i in range(20):
            zk.create(f"/before{i}", b"%d" % i)
        old_leader = leader_of(ensemble)
        old_leader.kill9()
        rest = [s for s in ensemble.servers if s is not old_leader]
        wait_for(lambda: sorted(m or "" for m in modes(rest)) == ["follower", "leader"],
                 FAILOVER_TIMEOUT_S, "a new leader among the other two")
        for i in range(20):
            zk.retry(zk.create, f"/after{i}", b"%d" % i)
        old_leader.start(timeout_s=FAILOVER_TIMEOUT_S)
        assert serving_mode(old_leader.client_port) == "follower"
        back = client(old_leader.address)
        try:
            back.sync("/")
            children = set(back.get_children("/"))
            assert {f"/before{i}"[1:] for i in range(20)} <= children
            assert {f"/after{i}"[1:] for i in range(20)} <= children
        finally:
            back.stop()
        wait_for(lambda: len({srvr_field(s, "Zxid") for s in ensemble.servers}) == 1, 10, "equal zxids")
    finally:
        zk.stop()


def test_whole_ensemble_restart_keeps_the_data(ensemble: Ensemble) -> None:
    zk = client(ensemble.hosts)
    try:
        zk.create("/durable", b"yes")
        zk.create("/seq-", b"", sequence=True)
    finally:
        zk.stop()
    ensemble.restart(timeout_s=60)
    zk = client(ensemble.hosts)
    try:
        assert zk.get("/durable")[0] == b"yes"
        assert len([c for c in zk.get_children("/") if c.startswith("seq-")]) == 1
    finally:
        zk.stop()


def test_every_member_serves_the_config_in_zookeeper_config(ensemble: Ensemble) -> None:
    """initConfigInZKDatabase: /zookeeper/config holds the membership and version, Stat
    version -1, on every member (a static config: version 0)."""
    expected = "".join(f"server.{s.server_id}=127.0.0.1:{s.quorum_port}:{s.election_port}:participant\n"
                       for s in ensemble.servers) + "version=0"
    for server in ensemble.servers:
        zk = client(server.address)
        try:
            data, stat = zk.get("/zookeeper/config")
            assert (data.decode(), stat.version, stat.mzxid) == (expected, -1, 0)
        finally:
            zk.stop()
            zk.close()


def test_admin_server_follows_the_role_in_an_ensemble(tmp_path: Path) -> None:
    """admin.enableServer in ensemble mode: every member serves its AdminServer, and its
    answers come from the role serving now. (pyzk only: Debian's Apache class path lacks
    the servlet API, so Apache 3.8 skips its AdminServer there.)"""
    import json
    import urllib.request

    ens = start_target("pyzk", SIZE, {"admin.enableServer": "true", "admin.serverAddress": "127.0.0.1"},
                       workdir=tmp_path, start_timeout_s=60)
    try:
        states = []
        for server in ens.servers:
            url = f"http://127.0.0.1:{server.admin_port}/commands/monitor"
            with urllib.request.urlopen(url, timeout=5) as reply:
                states.append(json.loads(reply.read())["server_state"])
        assert sorted(states) == ["follower", "follower", "leader"]
    finally:
        ens.stop()


@pytest.fixture(params=target_kinds_from_env())
def small_snap_count_ensemble(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ensemble]:
    ens = start_target(request.param, SIZE, {"snapCount": "100"}, workdir=tmp_path, start_timeout_s=60)
    yield ens
    ens.stop()


def test_every_role_snapshots_every_snap_count_txns_and_restarts_from_it(
        small_snap_count_ensemble: Ensemble) -> None:
    """snapCount in every role (SyncRequestProcessor): after 600 writes each member's dataDir
    holds several snapshots; a restarted follower comes back with the same data."""
    ens = small_snap_count_ensemble
    zk = client(ens.hosts)
    try:
        zk.ensure_path("/snaps")
        # In batches of 25: a snapshot is of the applied tree, due after 50-99 logged txns;
        # 600 creates pipelined at once are logged long before they are applied, so a loaded
        # follower could find its tree no further than at its last snapshot and skip several.
        for batch in range(0, 600, 25):
            for result in [zk.create_async(f"/snaps/n{n}", b"x" * 10) for n in range(batch, batch + 25)]:
                result.get(timeout=30)
        zk.sync("/snaps")
        assert len(zk.get_children("/snaps")) == 600
    finally:
        zk.stop()
        zk.close()
    for server in ens.servers:
        snapshots = sorted((server.data_dir / "version-2").glob("snapshot.*"))
        assert len(snapshots) >= 3, f"server {server.server_id}: {[p.name for p in snapshots]}"
    follower = next(s for s in ens.servers if srvr_field(s, "Mode") == "follower")
    follower.stop()
    snapshots_dir = follower.data_dir / "version-2"
    before = sorted(snapshots_dir.glob("snapshot.*"), key=lambda p: int(p.name.split(".")[1], 16))
    assert len(before) > 3
    # Restarted with autopurge on: the first purge runs at start-up (DatadirCleanupManager's
    # timer has delay 0), not purgeInterval hours later, and keeps snapRetainCount snapshots.
    with follower.config_path.open("a") as cfg:
        cfg.write("autopurge.snapRetainCount=3\nautopurge.purgeInterval=1\n")
    follower.start()
    zk = client(follower.address)
    try:
        zk.sync("/snaps")
        assert len(zk.get_children("/snaps")) == 600
    finally:
        zk.stop()
        zk.close()
    deadline = time.monotonic() + 20
    while before[0].exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    kept = {p.name for p in snapshots_dir.glob("snapshot.*")}
    assert not before[0].exists() and {p.name for p in before[-3:]} <= kept and len(kept) <= 4


def test_mntr_reports_the_quorum_on_every_member(ensemble: Ensemble) -> None:
    """The gauges the usual "followers in sync" alert reads: the leader's learners and synced
    followers, every member's peer state and quorum size."""
    for server in ensemble.servers:
        values = dict(line.split("\t", 1) for line in four_letter_word(server.client_port, "mntr").splitlines())
        assert values["zk_quorum_size"] == "3"
        if values["zk_server_state"] == "leader":
            assert values["zk_peer_state"] == "leading - broadcast"
            assert (values["zk_learners"], values["zk_synced_followers"], values["zk_pending_syncs"]) == ("2", "2", "0")
        else:
            assert values["zk_peer_state"] == "following - broadcast" and "zk_learners" not in values


PIPELINED_ROUNDS = 200
_SET_DATA, _GET_DATA = 5, 4


def _pipelined_round(raw: RawClient, xid: int, path: str, value: int) -> bytes:
    """setData(value), getData, setData(value + 1) in one send; the getData's data."""
    requests = [
        (_SET_DATA, ustring(path) + buffer(str(value).encode()) + int32(-1)),
        (_GET_DATA, ustring(path) + boolean(False)),
        (_SET_DATA, ustring(path) + buffer(str(value + 1).encode()) + int32(-1)),
    ]
    frames = b""
    for offset, (op, record) in enumerate(requests):
        body = int32(xid + offset) + int32(op) + record
        frames += int32(len(body)) + body
    raw.send_raw(frames)
    replies = [raw.recv_reply(30.0) for _ in requests]  # Apache once took > 10 s at size 3 (CI)
    assert [(r.xid, r.err) for r in replies] == [(xid, 0), (xid + 1, 0), (xid + 2, 0)]
    (length,) = struct.unpack_from(">i", replies[1].body, 0)
    return replies[1].body[4 : 4 + length]


def test_a_read_pipelined_between_two_writes_sees_the_first_write_on_every_member(
    ensemble: Ensemble,
) -> None:
    """Per-session FIFO: setData(v), getData, setData(v+1) sent together must read v, on the
    leader as on a follower. (A pyzk leader whose fsync covered both writes applied both
    before answering, and the read saw v+1 in ~10 % of rounds.)"""
    for index, server in enumerate(ensemble.servers):
        path = f"/fifo{index}"
        raw = RawClient("127.0.0.1", server.client_port)
        try:
            raw.send_frame(connect_request())
            assert raw.recv_frame(10.0) is not None
            raw.send_request(1, 1, create_request(path, b"0"))
            assert raw.recv_reply(10.0).err == 0
            stale = []
            xid = 2
            for round_index in range(PIPELINED_ROUNDS):
                value = 2 * round_index + 1
                seen = _pipelined_round(raw, xid, path, value)
                xid += 3
                if seen != str(value).encode():
                    stale.append((value, seen))
            mode = serving_mode(server.client_port)
            assert not stale, f"{mode}: a read saw its session's later write: {stale[:5]} of {len(stale)}"
        finally:
            raw.sock.close()
