"""What getChildren's order costs: create/delete and getChildren on a node with N children.

    python -m bench.child_order [--sizes 10,1000,100000] [--repeat 5]

In process, without sockets or disk (as bench.pipeline_micro). Printed per size, the best of
`--repeat` runs in µs of process CPU:

- `tree create+delete`: DataTree.apply of a CreateTxn and then a DeleteTxn of one more child
  (the datatree part of a write), per pair;
- `request create+delete`: the same as two client requests through handle_packet (decode,
  prep, log encoding, apply, reply), per pair;
- `getChildren unchanged`: a getChildren request on the node when nothing changed since the
  last one;
- `getChildren after change`: a getChildren request right after a child was created or
  deleted (the create/delete itself is not timed), as a child watcher reads after its event.

Run it on two commits to compare them; it uses only the server's request interface.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from bench.pipeline_micro import OPEN, _frame
from bench.pipeline_micro import _server as pipeline_server
from jute.codes import OpCode
from jute.proto import CreateRequest, DeleteRequest, GetChildrenRequest
from jute.txn import CreateTxn, DeleteTxn, TxnHeader
from pyzk.pipeline.clientsession import ClientSession
from pyzk.pipeline.zkserver import ZooKeeperServer
from pyzk.tree.datatree import DataTree

PARENT = "/p"
PAYLOAD = b"x" * 16
OPS_PER_SIZE = 20_000  # operations per timed run, fewer for big nodes (see _ops)


def _child(i: int) -> str:
    return f"{PARENT}/member-{i:010d}"


def _server(size: int) -> tuple[ZooKeeperServer, ClientSession, list[bytes]]:
    server, conn, frames = pipeline_server()  # one session, txns applied inline
    server.handle_packet(conn, _frame(1, OpCode.CREATE, CreateRequest(PARENT, b"", OPEN, 0)))
    for i in range(size):
        server.handle_packet(conn, _frame(i + 2, OpCode.CREATE, CreateRequest(_child(i), PAYLOAD, OPEN, 0)))
    frames.clear()
    return server, conn, frames


def _ops(size: int) -> int:
    return max(20, min(OPS_PER_SIZE, 2_000_000 // max(size, 1)))


def _tree(size: int) -> DataTree:
    tree = DataTree()
    zxid = 1
    tree.apply(TxnHeader(1, 1, zxid, 0, OpCode.CREATE), CreateTxn(PARENT, b"", OPEN, False, -1))
    for i in range(size):
        zxid += 1
        tree.apply(TxnHeader(1, zxid, zxid, 0, OpCode.CREATE), CreateTxn(_child(i), PAYLOAD, OPEN, False, -1))
    return tree


def tree_create_delete(size: int) -> float:
    tree = _tree(size)
    ops = OPS_PER_SIZE
    headers = [(TxnHeader(1, 0, 10**7 + 2 * i, 0, OpCode.CREATE), TxnHeader(1, 0, 10**7 + 2 * i + 1, 0, OpCode.DELETE))
               for i in range(ops)]
    txns = [(CreateTxn(_child(size + i), PAYLOAD, OPEN, False, -1), DeleteTxn(_child(size + i))) for i in range(ops)]
    apply = tree.apply
    start = time.process_time()
    for (create_hdr, delete_hdr), (create, delete) in zip(headers, txns, strict=True):
        apply(create_hdr, create)
        apply(delete_hdr, delete)
    return (time.process_time() - start) * 1e6 / ops


def request_create_delete(size: int) -> float:
    server, conn, frames = _server(size)
    ops = OPS_PER_SIZE
    encoded = [(_frame(10**6 + 2 * i, OpCode.CREATE, CreateRequest(_child(size + i), PAYLOAD, OPEN, 0)),
                _frame(10**6 + 2 * i + 1, OpCode.DELETE, DeleteRequest(_child(size + i), -1)))
               for i in range(ops)]
    handle = server.handle_packet
    start = time.process_time()
    for index, (create, delete) in enumerate(encoded):
        handle(conn, create)
        handle(conn, delete)
        if index % 512 == 511:
            frames.clear()
    return (time.process_time() - start) * 1e6 / ops


def get_children(size: int, *, after_change: bool) -> float:
    server, conn, frames = _server(size)
    ops = _ops(size)
    read = _frame(7, OpCode.GET_CHILDREN, GetChildrenRequest(PARENT, False))
    changes = [_frame(10**6 + i, OpCode.DELETE if i % 2 else OpCode.CREATE,
                      DeleteRequest(_child(size + i // 2), -1) if i % 2
                      else CreateRequest(_child(size + i // 2), PAYLOAD, OPEN, 0))
               for i in range(ops)]
    handle = server.handle_packet
    handle(conn, read)
    elapsed = 0.0
    clock = time.process_time
    for change in changes:
        if after_change:
            handle(conn, change)
        start = clock()
        handle(conn, read)
        elapsed += clock() - start
        frames.clear()
    return elapsed * 1e6 / ops


CASES: dict[str, Callable[[int], float]] = {
    "tree create+delete": tree_create_delete,
    "request create+delete": request_create_delete,
    "getChildren unchanged": lambda size: get_children(size, after_change=False),
    "getChildren after change": lambda size: get_children(size, after_change=True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,1000,100000")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{'case (µs, best of ' + str(args.repeat) + ')':32s}" + "".join(f"{size:>12,d}" for size in sizes))
    for name in args.cases.split(","):
        row = [min(CASES[name](size) for _ in range(args.repeat)) for size in sizes]
        print(f"{name:32s}" + "".join(f"{value:12.2f}" for value in row), flush=True)


if __name__ == "__main__":
    main()
