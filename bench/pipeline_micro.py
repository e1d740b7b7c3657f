"""Per-request CPU of the standalone pipeline, in-process, without sockets or disk.

    python -m bench.pipeline_micro [--requests 50000] [--repeat 5]

One connection's frames go through `ZooKeeperServer.handle_packet` (decode, dispatch, prep),
the commit stage's log encoding (`encode_txn_entry`), `apply_committed` (tree, watches,
reply encoding) and the connection's frame sink. Printed: the best of `--repeat` runs, in µs
of process CPU per request, for getData, setData, create+delete, exists-with-watch + the setData that fires it, and a
multi of 5. This is a
tool for finding regressions of the per-request path between two commits (run it on both);
the side-by-side numbers against Apache come from `bench.run`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from jute.codes import OpCode
from jute.data import ACL, Id
from jute.proto import (
    CheckVersionRequest,
    CreateRequest,
    DeleteRequest,
    ExistsRequest,
    GetDataRequest,
    MultiHeader,
    RequestHeader,
    SetDataRequest,
)
from pyzk.config import parse_config
from pyzk.pipeline.clientsession import ClientSession
from pyzk.pipeline.commit import Barrier
from pyzk.pipeline.zkserver import ZooKeeperServer
from pyzk.storage.format import encode_txn_entry
from pyzk.tree.datatree import DataTree

CONFIG = parse_config("tickTime=2000\ndataDir=/tmp/unused\nclientPort=2181\n")
OPEN = [ACL(31, Id("world", "anyone"))]
KEYS = 1000
PAYLOAD = b"x" * 100


class InlineCommit:
    """Applies each txn at once, after encoding its log entry as the real stage does."""

    def __init__(self, server: ZooKeeperServer) -> None:
        self.server = server

    def submit(self, item: Any) -> None:
        if isinstance(item, Barrier):
            item.on_done()
            return
        encode_txn_entry(item.hdr, item.txn, None)
        self.server.apply_committed(item)


def _server() -> tuple[ZooKeeperServer, ClientSession, list[bytes]]:
    server = ZooKeeperServer(CONFIG, DataTree(), now_ms=lambda: 1000, wall_ms=lambda: 5)
    server.commit = InlineCommit(server)
    frames: list[bytes] = []
    conn = ClientSession("127.0.0.1", 4000, frames.append, lambda: None)
    server.all_connections.add(conn)
    server.connect(conn, b"\x00" * 4 + b"\x00" * 8 + (30000).to_bytes(4, "big") + b"\x00" * 8
                   + (16).to_bytes(4, "big") + b"\x00" * 16 + b"\x00")
    assert conn.established
    return server, conn, frames


def _frame(xid: int, op: int, record: Any) -> bytes:
    return RequestHeader(xid, op).encode() + record.encode()


def _multi5(path: str) -> bytes:
    ops = [
        (OpCode.CREATE, CreateRequest(path, PAYLOAD, OPEN, 0)),
        (OpCode.SET_DATA, SetDataRequest(path, PAYLOAD, -1)),
        (OpCode.CHECK, CheckVersionRequest(path, 1)),
        (OpCode.SET_DATA, SetDataRequest(path, PAYLOAD, -1)),
        (OpCode.DELETE, DeleteRequest(path, -1)),
    ]
    body = b"".join(MultiHeader(op, False, -1).encode() + record.encode() for op, record in ops)
    return body + MultiHeader(-1, True, -1).encode()


def _workloads(requests: int) -> dict[str, tuple[int, Callable[[int], list[bytes]]]]:
    """name -> (requests per unit, unit builder given a unit index)."""
    def get(i: int) -> list[bytes]:
        return [_frame(i, OpCode.GET_DATA, GetDataRequest(f"/k{i % KEYS}", False))]

    def set_(i: int) -> list[bytes]:
        return [_frame(i, OpCode.SET_DATA, SetDataRequest(f"/k{i % KEYS}", PAYLOAD, -1))]

    def create_delete(i: int) -> list[bytes]:
        return [_frame(2 * i, OpCode.CREATE, CreateRequest(f"/c{i}", PAYLOAD, OPEN, 0)),
                _frame(2 * i + 1, OpCode.DELETE, DeleteRequest(f"/c{i}", -1))]

    def exists_watch(i: int) -> list[bytes]:
        path = f"/k{i % KEYS}"
        return [_frame(2 * i, OpCode.EXISTS, ExistsRequest(path, True)),
                _frame(2 * i + 1, OpCode.SET_DATA, SetDataRequest(path, PAYLOAD, -1))]

    def multi5(i: int) -> list[bytes]:
        return [RequestHeader(i, OpCode.MULTI).encode() + _multi5(f"/m{i}")]

    return {"get": (1, get), "set": (1, set_), "create_delete": (2, create_delete),
            "exists_watch": (2, exists_watch), "multi5": (1, multi5)}


def run_once(name: str, requests: int) -> float:
    per_unit, build = _workloads(requests)[name]
    server, conn, frames = _server()
    for key in range(KEYS):
        server.handle_packet(conn, _frame(key, OpCode.CREATE, CreateRequest(f"/k{key}", PAYLOAD, OPEN, 0)))
    units = max(1, requests // per_unit)
    encoded = [frame for i in range(units) for frame in build(KEYS + i)]
    frames.clear()
    handle = server.handle_packet
    start = time.process_time()
    for index, frame in enumerate(encoded):
        handle(conn, frame)
        if index % 1024 == 1023:
            frames.clear()
    elapsed = time.process_time() - start
    return elapsed * 1e6 / len(encoded)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cases", default="get,set,create_delete,exists_watch,multi5")
    args = parser.parse_args()
    for name in args.cases.split(","):
        best = min(run_once(name, args.requests) for _ in range(args.repeat))
        print(f"{name:14s} {best:7.2f} µs/request")


if __name__ == "__main__":
    main()
