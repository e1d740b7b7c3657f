"""getChildren lists children in Apache ZooKeeper's order, byte for byte.

Apache keeps a znode's children in a java.util.HashSet<String> (DataNode: new HashSet<>(8) at
the first child) and getChildren copies its iteration order: by bucket, where the bucket comes
from String.hashCode and the table length (grown at 3/4 full, never shrunk), and within a
bucket in insertion order. A restart rebuilds each set by re-adding the names in the order the
snapshot holds them, which is the order the set had when the snapshot was written (or replays
the txn log, which repeats the history). The histories below collide in buckets ("Aa", "BB",
"C#" share one hashCode, so do "AaAa", "AaBB", "BBAa", "BBBB"), grow through three resizes,
delete and re-create names, and use non-ASCII names (hashed over UTF-16 code units).

Rule 1: expected lists were observed on Apache ZooKeeper 3.8.0; each reply body is compared
        with the bytes of that list, so the wire order is checked, not a client's view of it.
Rule 2: the server's order is what the C client's `ls` prints and what Java's
        ZKUtil.listSubTreeBFS walks (hence the order zkCli's `deleteall` deletes in); zkCli's
        `ls` and `ls -R` sort what they print.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from pyzk.storage.files import restore
from tests.compat.rawclient import (
    OP_CREATE,
    OP_DELETE,
    OP_GET_CHILDREN,
    RawClient,
    create_request,
    int32,
    path_watch_request,
    string_vector,
    ustring,
)
from tests.compat.targets import Ensemble, start_target

pytestmark = pytest.mark.compat

ERR_OK = 0
OP_GET_CHILDREN2 = 12
FLAG_SEQUENTIAL = 2

# Names in the order they are created; "q-" is created sequential (q-00000000NN).
FIRST_NAMES = [
    "member-7", "Aa", "zeta", "q-", "BB", "AaAa", "lock-0000000001", "ключ", "C#", "BBBB",
    "q-", "alpha", "AaBB", "日本語", "BBAa", "b", "q-", "node10", "node2", "Bb",
]
DELETED = ["Aa", "AaBB", "zeta", "b", "q-0000000003", "ключ"]
THEN_CREATED = ["Aa", "ключ", "extra-1", "zeta", "AaBB", "extra-2", "q-", "extra-3", "extra-4",
                "extra-5", "extra-6", "q-", "extra-7"]

# What Apache ZooKeeper 3.8.0 lists after each phase of `_history` (20, 14 and 27 names: the
# table grew 8 -> 16 -> 32, then 64).
EXPECTED_FIRST = [
    "Aa", "zeta", "BB", "C#", "Bb", "q-0000000003", "node10", "b", "q-0000000010", "ключ",
    "member-7", "node2", "alpha", "lock-0000000001", "日本語", "AaAa", "BBBB", "AaBB", "BBAa",
    "q-0000000016",
]
EXPECTED_AFTER_DELETES = [
    "BB", "C#", "Bb", "node10", "q-0000000010", "member-7", "node2", "alpha", "lock-0000000001",
    "日本語", "AaAa", "BBBB", "BBAa", "q-0000000016",
]
EXPECTED_AFTER_CREATES = [
    "BB", "C#", "Aa", "extra-3", "q-0000000031", "q-0000000010", "extra-4", "ключ", "extra-1",
    "extra-2", "extra-7", "extra-5", "extra-6", "member-7", "alpha", "lock-0000000001", "日本語",
    "q-0000000026", "AaAa", "BBBB", "BBAa", "AaBB", "Bb", "zeta", "node10", "node2",
    "q-0000000016",
]
# After `_history` and `_grow_and_shrink` (the table grew to 256): as listed live and after a
# restart that replays the log; and after a restart that loads a snapshot holding them in
# that order (a table of 64 again: the names of buckets i and i + 64k meet, in that order).
EXPECTED_GROWN = [
    "q-0000000031", "日本語", "q-0000000026", "node2", "q-0000000016", "BB", "C#", "Aa", "ключ",
    "Bb", "extra-3", "extra-4", "extra-1", "extra-2", "extra-7", "extra-5", "extra-6",
    "member-7", "lock-0000000001", "AaAa", "BBBB", "BBAa", "AaBB", "node10", "q-0000000010",
    "alpha", "zeta",
]
EXPECTED_RELOADED = [
    "BB", "C#", "Aa", "q-0000000031", "extra-3", "extra-4", "q-0000000010", "ключ", "extra-1",
    "extra-2", "extra-7", "extra-5", "extra-6", "member-7", "alpha", "lock-0000000001", "日本語",
    "q-0000000026", "AaAa", "BBBB", "BBAa", "AaBB", "Bb", "zeta", "node10", "node2",
    "q-0000000016",
]


def _connect(hosts: str) -> RawClient:
    client = RawClient.to(hosts)
    client.handshake()
    return client


class Session:
    """One raw session issuing requests one at a time."""

    def __init__(self, hosts: str) -> None:
        self.client = _connect(hosts)
        self.xid = 0

    def call(self, op: int, record: bytes) -> tuple[int, bytes]:
        self.xid += 1
        self.client.send_request(self.xid, op, record)
        reply = self.client.recv_reply()
        assert reply.xid == self.xid
        return reply.err, reply.body

    def create(self, path: str, flags: int = 0) -> None:
        err, _ = self.call(OP_CREATE, create_request(path, b"", flags))
        assert err == ERR_OK, (path, err)

    def delete(self, path: str) -> None:
        err, _ = self.call(OP_DELETE, ustring(path) + int32(-1))
        assert err == ERR_OK, (path, err)

    def children_body(self, path: str) -> bytes:
        err, body = self.call(OP_GET_CHILDREN, path_watch_request(path))
        assert err == ERR_OK, (path, err)
        return body

    def close(self) -> None:
        self.client.close()


def _create_all(session: Session, base: str, names: list[str]) -> None:
    for name in names:
        session.create(f"{base}/{name}", FLAG_SEQUENTIAL if name == "q-" else 0)


def _decoded(body: bytes) -> list[str]:
    (count,) = struct.unpack_from(">i", body)
    names, offset = [], 4
    for _ in range(count):
        (length,) = struct.unpack_from(">i", body, offset)
        names.append(body[offset + 4 : offset + 4 + length].decode())
        offset += 4 + length
    return names


def assert_listed(body: bytes, expected: list[str]) -> None:
    assert _decoded(body) == expected  # the readable diff first
    assert body == string_vector(expected)


def _history(session: Session, base: str) -> list[bytes]:
    """Run the whole history under `base`; the getChildren bodies after each phase."""
    session.create(base)
    bodies = []
    _create_all(session, base, FIRST_NAMES)
    bodies.append(session.children_body(base))
    for name in DELETED:
        session.delete(f"{base}/{name}")
    bodies.append(session.children_body(base))
    _create_all(session, base, THEN_CREATED)
    bodies.append(session.children_body(base))
    return bodies


def _grow_and_shrink(session: Session, base: str) -> None:
    """100 more names, then deleted: the set keeps the table it grew to (256)."""
    for i in range(100):
        session.create(f"{base}/tmp-{i}")
    for i in range(100):
        session.delete(f"{base}/tmp-{i}")


def _listed_after_restart(ensemble: Ensemble, base: str) -> bytes:
    ensemble.restart()
    session = Session(ensemble.hosts)
    try:
        return session.children_body(base)
    finally:
        session.close()


def test_get_children_lists_children_in_apaches_order(target: Ensemble) -> None:
    session = Session(target.hosts)
    try:
        first, after_deletes, after_creates = _history(session, "/child_order")
        assert_listed(first, EXPECTED_FIRST)
        assert_listed(after_deletes, EXPECTED_AFTER_DELETES)
        assert_listed(after_creates, EXPECTED_AFTER_CREATES)
        err, body = session.call(OP_GET_CHILDREN2, path_watch_request("/child_order"))
        assert err == ERR_OK
        assert body.startswith(string_vector(EXPECTED_AFTER_CREATES))  # then the Stat
    finally:
        session.close()


def test_a_replayed_log_repeats_the_order(fresh_target: Ensemble) -> None:
    """A restart without a newer snapshot replays the txn log: the same history, the same
    sets, tables that grew and were never shrunk included."""
    base = "/child_order_replay"
    session = Session(fresh_target.hosts)
    try:
        _history(session, base)
        _grow_and_shrink(session, base)
        listed = session.children_body(base)
    finally:
        session.close()
    assert_listed(listed, EXPECTED_GROWN)
    assert_listed(_listed_after_restart(fresh_target, base), EXPECTED_GROWN)


def test_a_reloaded_snapshot_lists_in_apaches_order(fresh_target: Ensemble) -> None:
    """The first restart replays the log and snapshots the tree it loaded (loadData); the
    second loads that snapshot: each set is rebuilt from the snapshot's order."""
    if fresh_target.size > 1:
        pytest.skip("in an ensemble, whether a member snapshots what it loaded at start-up "
                    "depends on its role and sync (an Apache follower synced by DIFF does not)")
    base = "/child_order_reload"
    session = Session(fresh_target.hosts)
    try:
        _history(session, base)
        _grow_and_shrink(session, base)
    finally:
        session.close()
    assert_listed(_listed_after_restart(fresh_target, base), EXPECTED_GROWN)
    assert_listed(_listed_after_restart(fresh_target, base), EXPECTED_RELOADED)


@pytest.mark.skipif("apache" not in os.environ.get("PYZK_TARGETS", "apache,pyzk"),
                    reason="needs the Apache ZooKeeper target")
def test_pyzk_lists_an_apache_snapshot_in_apaches_order(tmp_path: Path) -> None:
    """pyzk restores a dataDir whose snapshot Apache wrote: the same order Apache lists."""
    ensemble = start_target("apache", workdir=tmp_path)
    try:
        session = Session(ensemble.hosts)
        try:
            _history(session, "/child_order_cross")
            _grow_and_shrink(session, "/child_order_cross")
        finally:
            session.close()
        ensemble.restart()  # replays the log, then writes the snapshot pyzk reads
    finally:
        ensemble.stop()
    restored = restore(ensemble.servers[0].data_dir)
    assert restored.tree.nodes["/child_order_cross"].list_children() == EXPECTED_RELOADED
