"""Read-only mode (readonlymode.enabled=true) on a 3-server ensemble of each target.

Two servers stop; the third, after its grace period, serves read-only clients from its last
tree. Raw frames check the handshake and the error codes; then the quorum returns and the
read-only connections are closed. localSessionsEnabled=true, as kazoo's harness sets it:
without it Apache cannot create sessions in read-only mode.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from tests.compat import rawclient as raw
from tests.compat.conftest import target_kinds_from_env
from tests.compat.targets import Ensemble, four_letter_word, start_target

SIZE = 3
READ_ONLY_TIMEOUT_S = 30.0
POLL_S = 0.2
OP_SYNC = 9
OP_CHECK = 13
ERR_NONODE = -101
ERR_NOTREADONLY = -119


@pytest.fixture(params=target_kinds_from_env())
def ensemble(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ensemble]:
    ens = start_target(
        request.param, SIZE,
        {"localSessionsEnabled": "true", "localSessionsUpgradingEnabled": "true"},
        {"readonlymode.enabled": "true"},
        workdir=tmp_path, start_timeout_s=60,
    )
    yield ens
    ens.stop()


def wait_read_only(port: int) -> None:
    deadline = time.monotonic() + READ_ONLY_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if four_letter_word(port, "isro") == "ro":
                return
        except OSError:
            pass
        time.sleep(POLL_S)
    raise AssertionError(f"port {port} did not become read-only in {READ_ONLY_TIMEOUT_S}s")


def call(client: raw.RawClient, xid: int, op: int, record: bytes = b"") -> raw.Reply:
    client.send_request(xid, op, record)
    reply = client.recv_reply()
    assert reply.xid == xid
    return reply


def test_a_partitioned_server_serves_reads_and_refuses_writes(ensemble: Ensemble) -> None:
    survivor, *others = ensemble.servers
    zk = KazooClient(hosts=survivor.address, timeout=10.0)
    zk.start(timeout=15)
    zk.create("/ro", b"hello")
    zk.create("/eph", b"", ephemeral=True)  # makes the session global (local sessions are on)
    global_session_id, global_password = zk.client_id
    for server in others:
        server.terminate()
    for server in others:
        server.stop()
    zk.stop()
    zk.close()
    wait_read_only(survivor.client_port)
    port = survivor.client_port
    assert "Mode: read-only" in four_letter_word(port, "srvr")

    for read_only in (False, None):  # a client that does not accept read-only, an old client
        with raw.RawClient("127.0.0.1", port) as client:
            client.send_frame(raw.connect_request(read_only=read_only))
            assert client.wait_closed(5), f"readOnly={read_only} was not refused"
    with raw.RawClient("127.0.0.1", port) as client:
        client.send_frame(raw.connect_request(read_only=True, session_id=global_session_id,
                                              password=global_password))
        assert client.wait_closed(5), "a global session reconnected in read-only mode"

    with raw.RawClient("127.0.0.1", port) as client:
        connected = client.handshake(read_only=True, timeout_ms=10000)
        assert (connected.timeout_ms, connected.read_only, connected.body_length) == (10000, True, 37)
        data = call(client, 1, raw.OP_GET_DATA, raw.path_watch_request("/ro"))
        assert data.err == 0 and data.body.startswith(raw.buffer(b"hello"))
        last_zxid = data.zxid
        assert call(client, 2, raw.OP_EXISTS, raw.path_watch_request("/nope")).err == ERR_NONODE
        refused = [
            (raw.OP_CREATE, raw.create_request("/x")),
            (OP_SYNC, raw.ustring("/")),
            (raw.OP_SET_DATA, raw.ustring("/ro") + raw.buffer(b"v") + raw.int32(-1)),
            (raw.OP_DELETE, raw.ustring("/ro") + raw.int32(-1)),
            (raw.OP_MULTI, raw.multi_request([(raw.OP_CREATE, raw.create_request("/y"))])),
            (OP_CHECK, raw.ustring("/ro") + raw.int32(-1)),
        ]
        for xid, (op, record) in enumerate(refused, start=3):
            reply = call(client, xid, op, record)
            assert (reply.err, reply.zxid) == (ERR_NOTREADONLY, last_zxid), f"op {op}"
        assert call(client, raw.XID_PING, raw.OP_PING).err == 0
        assert call(client, 20, raw.OP_CLOSE_SESSION).err == 0
        assert client.wait_closed(5)
    with raw.RawClient("127.0.0.1", port) as client:
        resumed = client.handshake(read_only=True, session_id=connected.session_id,
                                   password=connected.password)
        assert (resumed.timeout_ms, resumed.session_id, resumed.read_only) == (0, 0, True)

    with raw.RawClient("127.0.0.1", port) as client:
        client.handshake(read_only=True, timeout_ms=30000)
        for server in others:
            server.start(wait=False)
        assert client.wait_closed(40), "the read-only connection outlived the partition"
    modes = ensemble.wait_serving(60)
    assert sorted(modes) == ["follower", "follower", "leader"]
