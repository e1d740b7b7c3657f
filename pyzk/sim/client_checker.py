"""What simulated clients see, checked against what the ensemble committed.

Every client write carries unique data (its tag), so the committed txn of a request is found
by its tag, whatever server, connection or session move it went through. The rules:

(a) reply-belongs-to-request: a reply's xid is the oldest outstanding xid of its connection
    (FIFO), and its content is that request's: an ok create names the node its own committed
    txn created, an ok setData's version is the one its own txn produced, the reply zxid is
    that txn's; an error reply means its request changed nothing.
(b) no-lost-ack: every acknowledged write is in the committed history and in the final tree
    of every member.
(c) at-most-once: each tag is in at most one committed txn.
(d) no-phantom: every committed txn carrying a client tag belongs to a request a client sent,
    with that request's session and cxid.
(e) session-order: the committed txns of one session's requests are in the order it sent them
    (across its connections: a moved session's late request must not overtake).
(f) no-stale-read: a session never reads a key older than what it has seen (read your writes,
    monotonic reads), and a read returns data some committed txn wrote for that version.
(g) no-read-from-the-future: a read never returns data that its own session's write sent
    after it wrote (per-session FIFO: the read is processed before that write).

Pure: observations in, ClientViolation out. The world feeds it (pyzk/sim/clients.py).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from jute.codes import OpCode
from pyzk.quorum.errors import InvariantViolation
from pyzk.quorum.zxid import hex_zxid

TAG_PREFIX = b"c"


class ClientViolation(InvariantViolation):
    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"client rule {rule}: {message}")
        self.rule = rule


@dataclass(slots=True)
class ClientOp:
    """One request a client sent, and what became of it."""

    client: int
    session_id: int
    conn: int  # the client connection's serial
    xid: int
    op: int  # OpCode
    path: str
    tag: bytes | None = None  # the unique data of a write
    version: int = -1  # setData's expected version
    sent_ms: int = 0
    seq: int = 0  # send order over every client (rule g)
    status: str = "pending"  # pending | ok | error | indeterminate
    err: int = 0
    reply_zxid: int = 0
    result_path: str | None = None  # create
    result_version: int | None = None  # setData, getData
    result_data: bytes | None = None  # getData

    @property
    def is_write(self) -> bool:
        return self.tag is not None

    def describe(self) -> str:
        what = {OpCode.CREATE: "create", OpCode.SET_DATA: "setData", OpCode.GET_DATA: "getData",
                OpCode.SYNC: "sync"}.get(self.op, f"op{self.op}")
        tag = f" {self.tag.decode()}" if self.tag else ""
        ver = f" v{self.version}" if self.op == OpCode.SET_DATA else ""
        return (f"client {self.client} session 0x{self.session_id & (2**64 - 1):x} conn {self.conn} "
                f"xid {self.xid} {what} {self.path}{ver}{tag}")


@dataclass(slots=True)
class CommittedTxn:
    zxid: int
    session_id: int
    cxid: int
    type: int
    path: str
    version: int  # the version the txn gives the node (create: 0)


@dataclass
class ClientChecker:
    sent: dict[bytes, ClientOp] = field(default_factory=dict)  # tag -> write
    outstanding: dict[int, deque[ClientOp]] = field(default_factory=dict)  # conn -> FIFO
    by_session: dict[int, list[ClientOp]] = field(default_factory=dict)  # writes in send order
    committed: dict[bytes, CommittedTxn] = field(default_factory=dict)  # tag -> txn
    seen_zxids: set[int] = field(default_factory=set)
    tag_at: dict[int, bytes] = field(default_factory=dict)  # zxid -> tag of a client's committed txn
    data_at: dict[tuple[str, int], bytes] = field(default_factory=dict)  # (path, version) -> data
    session_view: dict[tuple[int, str], int] = field(default_factory=dict)  # (session, path) -> version
    ops: list[ClientOp] = field(default_factory=list)
    unresolved_reads: list[ClientOp] = field(default_factory=list)
    ok = 0
    errors = 0
    indeterminate = 0

    # ---- observations --------------------------------------------------------------------

    def on_send(self, op: ClientOp) -> None:
        op.seq = len(self.ops)
        self.ops.append(op)
        self.outstanding.setdefault(op.conn, deque()).append(op)
        if op.tag is not None:
            if op.tag in self.sent:
                raise ClientViolation("(d) no-phantom", f"tag {op.tag!r} sent twice (simulator bug)")
            self.sent[op.tag] = op
            self.by_session.setdefault(op.session_id, []).append(op)

    def on_reply(self, conn: int, xid: int, zxid: int, err: int, *, path: str | None = None,
                 version: int | None = None, data: bytes | None = None) -> ClientOp:
        """A reply frame arrived on `conn`; returns the request it answers."""
        queue = self.outstanding.get(conn)
        if not queue:
            raise ClientViolation("(a) reply-belongs-to-request",
                                  f"conn {conn} got a reply xid {xid} zxid {hex_zxid(zxid)} with nothing outstanding")
        op = queue[0]
        if op.xid != xid:
            raise ClientViolation("(a) reply-belongs-to-request",
                                  f"conn {conn} got a reply xid {xid} zxid {hex_zxid(zxid)} err {err} while the "
                                  f"oldest outstanding request is {op.describe()}")
        queue.popleft()
        op.status = "ok" if err == 0 else "error"
        op.err, op.reply_zxid = err, zxid
        op.result_path, op.result_version, op.result_data = path, version, data
        if err == 0:
            self.ok += 1
        else:
            self.errors += 1
        if op.is_write:
            txn = self.committed.get(op.tag)  # type: ignore[arg-type]
            if txn is not None:
                self._check_reply(op, txn)
            elif err == 0 and zxid in self.tag_at:
                other = self.sent[self.tag_at[zxid]]
                raise ClientViolation("(a) reply-belongs-to-request",
                                      f"{op.describe()} was answered with the txn {hex_zxid(zxid)} of {other.describe()}")
        elif op.op == OpCode.GET_DATA and err == 0:
            self._check_read(op)
        if err == 0 and op.result_version is not None:
            key = (op.session_id, op.path if op.result_path is None else op.result_path)
            if self.session_view.get(key, -1) < op.result_version:
                self.session_view[key] = op.result_version
        elif err == 0 and op.op == OpCode.CREATE and op.result_path is not None:
            self.session_view.setdefault((op.session_id, op.result_path), 0)
        return op

    def on_conn_lost(self, conn: int) -> int:
        """The client gave up on `conn`: its outstanding requests are indeterminate."""
        queue = self.outstanding.pop(conn, None)
        if not queue:
            return 0
        for op in queue:
            op.status = "indeterminate"
        self.indeterminate += len(queue)
        return len(queue)

    def on_commit(self, zxid: int, hdr: Any, txn: Any) -> None:
        """A committed txn (every Apply reports it; the first report counts)."""
        if zxid in self.seen_zxids:
            return
        self.seen_zxids.add(zxid)
        t = hdr.type
        if t == OpCode.CREATE or t == OpCode.CREATE2:
            version = 0
        elif t == OpCode.SET_DATA:
            version = txn.version
        else:
            return
        tag = txn.data
        if tag is not None:
            self.data_at[(txn.path, version)] = tag
        if not tag or not tag.startswith(TAG_PREFIX):
            return
        op = self.sent.get(tag)
        if op is None:
            raise ClientViolation("(d) no-phantom", f"txn {hex_zxid(zxid)} carries tag {tag!r} that no client sent")
        if (hdr.clientId, hdr.cxid) != (op.session_id, op.xid):
            raise ClientViolation("(d) no-phantom",
                                  f"txn {hex_zxid(zxid)} (session 0x{hdr.clientId & (2**64 - 1):x} cxid {hdr.cxid}) "
                                  f"carries the data of {op.describe()}")
        earlier = self.committed.get(tag)
        if earlier is not None:
            raise ClientViolation("(c) at-most-once", f"{op.describe()} applied twice: "
                                  f"{hex_zxid(earlier.zxid)} and {hex_zxid(zxid)}")
        committed = CommittedTxn(zxid, hdr.clientId, hdr.cxid, t, txn.path, version)
        self.committed[tag] = committed
        self.tag_at[zxid] = tag
        if op.status in ("ok", "error"):
            self._check_reply(op, committed)

    # ---- rules ---------------------------------------------------------------------------

    def _check_reply(self, op: ClientOp, txn: CommittedTxn) -> None:
        rule = "(a) reply-belongs-to-request"
        if op.status == "error":
            raise ClientViolation(rule, f"{op.describe()} was answered with error {op.err} "
                                  f"but its txn {hex_zxid(txn.zxid)} was applied")
        if op.reply_zxid != txn.zxid:
            raise ClientViolation(rule, f"{op.describe()} was answered with zxid {hex_zxid(op.reply_zxid)}, "
                                  f"its own txn is {hex_zxid(txn.zxid)}")
        if op.op == OpCode.CREATE and op.result_path != txn.path:
            raise ClientViolation(rule, f"{op.describe()} was answered with path {op.result_path}, "
                                  f"its own txn {hex_zxid(txn.zxid)} created {txn.path}")
        if op.op == OpCode.SET_DATA and op.result_version != txn.version:
            raise ClientViolation(rule, f"{op.describe()} was answered with version {op.result_version}, "
                                  f"its own txn {hex_zxid(txn.zxid)} made version {txn.version}")

    def _check_read(self, op: ClientOp) -> None:
        rule = "(f) no-stale-read"
        seen = self.session_view.get((op.session_id, op.path), -1)
        assert op.result_version is not None
        if op.result_version < seen:
            raise ClientViolation(rule, f"{op.describe()} read version {op.result_version}, "
                                  f"the session had already seen version {seen}")
        key = (op.path, op.result_version)
        if key not in self.data_at:
            self.unresolved_reads.append(op)  # committed, but not reported yet
            return
        written = self.data_at[key]
        if written != op.result_data:
            raise ClientViolation(rule, f"{op.describe()} read {op.result_data!r} at version "
                                  f"{op.result_version}; the committed txn of that version wrote {written!r}")
        self._check_not_from_the_future(op, written)

    def _check_not_from_the_future(self, op: ClientOp, written: bytes) -> None:
        writer = self.sent.get(written)
        if writer is not None and writer.session_id == op.session_id and writer.seq > op.seq:
            raise ClientViolation("(g) no-read-from-the-future",
                                  f"{op.describe()} read the data of {writer.describe()}, which its "
                                  f"session sent after it")

    def check_final(self, trees: dict[int, Any]) -> None:
        """At the end of a run, with every member in sync: rules (a), (b), (e), (f), (g) in full."""
        for op in self.unresolved_reads:
            written = self.data_at.get((op.path, op.result_version))  # type: ignore[arg-type]
            if written != op.result_data:
                raise ClientViolation("(f) no-stale-read", f"{op.describe()} read {op.result_data!r} at version "
                                      f"{op.result_version}, which no committed txn wrote ({written!r})")
            assert written is not None
            self._check_not_from_the_future(op, written)
        for op in self.sent.values():
            txn = self.committed.get(op.tag)  # type: ignore[arg-type]
            if op.status == "ok":
                if txn is None:
                    raise ClientViolation("(b) no-lost-ack", f"{op.describe()} was acknowledged "
                                          f"(zxid {hex_zxid(op.reply_zxid)}) but never committed")
                self._check_reply(op, txn)
                for sid, tree in sorted(trees.items()):
                    self._check_in_tree(op, txn, sid, tree)
            elif op.status == "error" and txn is not None:
                self._check_reply(op, txn)
        for writes in self.by_session.values():
            last: ClientOp | None = None
            for op in writes:
                txn = self.committed.get(op.tag)  # type: ignore[arg-type]
                if txn is None:
                    continue
                if last is not None:
                    before = self.committed[last.tag]  # type: ignore[index]
                    if before.zxid > txn.zxid:
                        raise ClientViolation("(e) session-order",
                                              f"{op.describe()} was applied at {hex_zxid(txn.zxid)}, before "
                                              f"the earlier {last.describe()} at {hex_zxid(before.zxid)}")
                last = op

    def _check_in_tree(self, op: ClientOp, txn: CommittedTxn, sid: int, tree: Any) -> None:
        node = tree.nodes.get(txn.path)
        if tree.last_processed_zxid < txn.zxid or node is None:
            raise ClientViolation("(b) no-lost-ack", f"{op.describe()} (txn {hex_zxid(txn.zxid)}) is missing "
                                  f"from the final tree of server {sid}")
        if op.op == OpCode.CREATE:
            lost = node.czxid != txn.zxid or (node.mzxid == txn.zxid and node.data != op.tag)
        else:
            lost = node.mzxid < txn.zxid or (node.mzxid == txn.zxid and node.data != op.tag)
        if lost:
            raise ClientViolation("(b) no-lost-ack", f"{op.describe()} (txn {hex_zxid(txn.zxid)}) is not in "
                                  f"the final tree of server {sid}")
