"""Containers and TTL nodes are swept by the server (ContainerManager), on both targets.

The sweep interval is the unprefixed system property znode.container.checkIntervalMs, so the
targets start with it set low; TTL nodes need zookeeper.extendedTypesEnabled=true.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.compat import rawclient as rc
from tests.compat.conftest import own_target_size, target_kinds_from_env
from tests.compat.targets import Ensemble, start_target

OP_CREATE, OP_DELETE, OP_EXISTS, OP_CREATE_CONTAINER, OP_CREATE_TTL = 1, 2, 3, 19, 21
SWEEP_WAIT_S = 15.0


@pytest.fixture(scope="module", params=target_kinds_from_env())
def sweeping_target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ensemble]:
    ens = start_target(
        request.param,
        own_target_size(request.param),
        workdir=tmp_path_factory.mktemp(f"containers-{request.param}"),
        sysprops={"znode.container.checkIntervalMs": "300", "zookeeper.extendedTypesEnabled": "true"},
    )
    yield ens
    ens.stop()


class Session:
    def __init__(self, hosts: str) -> None:
        self.client = rc.RawClient.to(hosts)
        self.client.handshake()
        self.xid = 0

    def call(self, op: int, record: bytes) -> rc.Reply:
        self.xid += 1
        self.client.send_request(self.xid, op, record)
        for _ in range(100):
            reply = self.client.recv_reply(5.0)
            if reply.xid == self.xid:
                return reply
        raise AssertionError("no reply")

    def exists(self, path: str) -> bool:
        return self.call(OP_EXISTS, rc.path_watch_request(path)).err == 0


def _ttl_request(path: str, ttl_ms: int) -> bytes:
    return rc.ustring(path) + rc.buffer(b"") + rc.open_acl() + rc.int32(5) + rc.int64(ttl_ms)


def _wait_gone(s: Session, path: str) -> bool:
    deadline = time.monotonic() + SWEEP_WAIT_S
    while time.monotonic() < deadline:
        if not s.exists(path):
            return True
        time.sleep(0.2)
    return False


def test_used_container_is_swept_unused_one_kept(sweeping_target: Ensemble) -> None:
    s = Session(sweeping_target.hosts)
    assert s.call(OP_CREATE_CONTAINER, rc.create_request("/used", b"", 4)).err == 0
    assert s.call(OP_CREATE_CONTAINER, rc.create_request("/unused", b"", 4)).err == 0
    assert s.call(OP_CREATE, rc.create_request("/used/child")).err == 0
    assert s.call(OP_DELETE, rc.ustring("/used/child") + rc.int32(-1)).err == 0
    assert _wait_gone(s, "/used")
    assert s.exists("/unused")


def test_container_with_child_is_kept(sweeping_target: Ensemble) -> None:
    s = Session(sweeping_target.hosts)
    assert s.call(OP_CREATE_CONTAINER, rc.create_request("/busy", b"", 4)).err == 0
    assert s.call(OP_CREATE, rc.create_request("/busy/child")).err == 0
    time.sleep(1.5)
    assert s.exists("/busy")


def test_ttl_node_expires(sweeping_target: Ensemble) -> None:
    s = Session(sweeping_target.hosts)
    assert s.call(OP_CREATE_TTL, _ttl_request("/ttl", 500)).err == 0
    assert s.exists("/ttl")
    assert _wait_gone(s, "/ttl")


def test_create_container_opcode_decides_not_flags(sweeping_target: Ensemble) -> None:
    """Opcode 19 with flags 0 still makes a container (pRequest2TxnCreate keys on the opcode)."""
    s = Session(sweeping_target.hosts)
    assert s.call(OP_CREATE_CONTAINER, rc.create_request("/flags0", b"", 0)).err == 0
    assert s.call(OP_CREATE, rc.create_request("/flags0/child")).err == 0
    assert s.call(OP_DELETE, rc.ustring("/flags0/child") + rc.int32(-1)).err == 0
    assert _wait_gone(s, "/flags0")
