"""A pipelined raw-protocol writer for the crash test, recording acks in a Ledger.

Rule 1: one TCP connection, one thread, up to `window` requests in flight; a request is
        entered in the ledger as issued before its bytes are sent, and as acknowledged only
        when its successful reply is read.
Rule 2: the first connection error ends the writer: everything still in flight stays
        unacknowledged. Nothing is ever resent (so no write can land after the check).
Rule 3: any error reply is recorded; unique paths and unconditional setData cannot fail on a
        healthy server, so the test treats one as a bug.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import dataclass, field

from tests.chaos.ledger import Ledger, create_path, multi_paths, set_key_path
from tests.compat.rawclient import (
    OP_CREATE,
    OP_MULTI,
    OP_SET_DATA,
    RawClient,
    buffer,
    create_request,
    int32,
    multi_request,
    ustring,
)

SESSION_TIMEOUT_MS = 4000
REPLY_TIMEOUT_S = 10.0
# Share of each operation in the mix: create, setData, multi (the rest).
CREATE_SHARE = 0.4
SET_DATA_SHARE = 0.4


def set_data_request(path: str, data: bytes, version: int = -1) -> bytes:
    return ustring(path) + buffer(data) + int32(version)


@dataclass
class WriterStats:
    sent: int = 0
    acked: int = 0
    in_flight_at_end: int = 0
    error_replies: list[str] = field(default_factory=list)
    ended_by: str = ""


class PipelinedWriter:
    """Writes until the connection breaks or `stop` is set (see the module rules)."""

    def __init__(self, hosts: str, ledger: Ledger, rng: random.Random, next_numbers: list[int],
                 window: int = 32) -> None:
        self.hosts = hosts
        self.ledger = ledger
        self.rng = rng
        self.window = window
        self.stop = threading.Event()
        self.stats = WriterStats()
        # [next create number, next multi number, next setData seq]; shared across epochs.
        self._numbers = next_numbers
        self._thread = threading.Thread(target=self._run, name="crash-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise TimeoutError("crash writer did not stop")

    def _next_request(self) -> tuple[int, bytes, tuple[str, int, int]]:
        """(op, record, what to mark acked) for one random write, entered as issued."""
        ledger = self.ledger
        roll = self.rng.random()
        if roll < CREATE_SHARE:
            number = self._numbers[0]
            self._numbers[0] += 1
            ledger.creates_issued.add(number)
            path = create_path(ledger.root, number)
            return OP_CREATE, create_request(path, str(number).encode()), ("create", number, 0)
        if roll < CREATE_SHARE + SET_DATA_SHARE:
            key = self.rng.randrange(ledger.set_keys)
            seq = self._numbers[2]
            self._numbers[2] += 1
            ledger.sets_issued.setdefault(key, []).append(seq)
            record = set_data_request(set_key_path(ledger.root, key), str(seq).encode())
            return OP_SET_DATA, record, ("set", key, seq)
        number = self._numbers[1]
        self._numbers[1] += 1
        ledger.multis_issued.add(number)
        ops = [(OP_CREATE, create_request(p, b"m")) for p in multi_paths(ledger.root, number)]
        return OP_MULTI, multi_request(ops), ("multi", number, 0)

    def _acknowledge(self, what: tuple[str, int, int]) -> None:
        kind, number, seq = what
        if kind == "create":
            self.ledger.ack_create(number)
        elif kind == "set":
            self.ledger.ack_set(number, seq)
        else:
            self.ledger.ack_multi(number)
        self.stats.acked += 1

    def _run(self) -> None:
        in_flight: deque[tuple[int, tuple[str, int, int]]] = deque()
        xid = 1
        try:
            client = RawClient.to(self.hosts, timeout_s=REPLY_TIMEOUT_S)
        except OSError as exc:
            self.stats.ended_by = f"connect: {exc}"
            return
        try:
            client.handshake(timeout_ms=SESSION_TIMEOUT_MS)
            while True:
                while len(in_flight) < self.window and not self.stop.is_set():
                    op, record, what = self._next_request()
                    in_flight.append((xid, what))
                    client.send_request(xid, op, record)
                    self.stats.sent += 1
                    xid += 1
                if not in_flight:
                    self.stats.ended_by = "stopped"
                    return
                reply = client.recv_reply()
                expected_xid, what = in_flight.popleft()
                if reply.xid != expected_xid:
                    self.stats.error_replies.append(f"reply xid {reply.xid}, expected {expected_xid}")
                    self.stats.ended_by = "protocol error"
                    return
                if reply.err != 0 or (what[0] == "multi" and reply.body[:4] == b"\xff\xff\xff\xff"):
                    self.stats.error_replies.append(f"{what} failed: err {reply.err} body {reply.body[:16]!r}")
                    continue
                self._acknowledge(what)
        except (OSError, ConnectionError, TimeoutError) as exc:
            self.stats.ended_by = type(exc).__name__
        finally:
            self.stats.in_flight_at_end = len(in_flight)
            client.close()
