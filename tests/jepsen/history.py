"""Operation histories, Jepsen-shaped: every op is an invoke event and a completion event.

Rule 1: completion types are "ok" (happened, with the returned values), "fail" (definitely
        did not happen: BadVersion, NodeExists, NoNode...) and "info" (indeterminate:
        ConnectionLoss, OperationTimeout, SessionExpired...: it may have happened, at any time
        after its invoke, or never).  An op never completed is treated as info.
Rule 2: times are time.monotonic() seconds; the history is thread-safe (one lock).
Rule 3: values are JSON-friendly (str, int, lists), so a history round-trips through JSON.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

OK, FAIL, INFO, PENDING = "ok", "fail", "info", "pending"


@dataclass
class Op:
    """One operation: its invoke and (once known) its completion."""

    index: int
    process: int
    f: str                      # write | cas | read | create | seq-create | eph-create | eph-end
    key: str | None             # register key, or the node path for create
    value: Any                  # request: write value, [expected, value] for cas, data for creates
    invoke_t: float
    status: str = PENDING
    complete_t: float | None = None
    result: Any = None          # ok: returned values ([value, version], version, path...)
    error: str | None = None    # fail / info: the error's name

    @property
    def definite(self) -> bool:
        return self.status in (OK, FAIL)

    def describe(self) -> str:
        end = f"{self.complete_t:.3f}" if self.complete_t is not None else "-"
        res = self.result if self.status == OK else self.error
        return (f"op#{self.index} p{self.process} {self.f} {self.key or ''} {self.value!r} "
                f"[{self.invoke_t:.3f}..{end}] -> {self.status} {res!r}")


@dataclass
class History:
    ops: list[Op] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def invoke(self, process: int, f: str, key: str | None, value: Any,
               t: float | None = None) -> Op:
        with self.lock:
            op = Op(len(self.ops), process, f, key, value,
                    time.monotonic() if t is None else t)
            self.ops.append(op)
            self.events.append({"type": "invoke", "index": op.index, "process": process, "f": f,
                                "key": key, "value": value, "time": op.invoke_t})
            return op

    def complete(self, op: Op, status: str, result: Any = None, error: str | None = None,
                 t: float | None = None) -> Op:
        assert status in (OK, FAIL, INFO), status
        with self.lock:
            op.status, op.result, op.error = status, result, error
            op.complete_t = time.monotonic() if t is None else t
            self.events.append({"type": status, "index": op.index, "process": op.process,
                                "f": op.f, "key": op.key, "value": op.value, "result": result,
                                "error": error, "time": op.complete_t})
            return op

    def finalize(self) -> None:
        """Ops still pending at the end are indeterminate."""
        for op in self.ops:
            if op.status == PENDING:
                self.complete(op, INFO, error="never completed")

    def counts(self, f_prefix: str | None = None) -> dict[str, int]:
        counts = {OK: 0, FAIL: 0, INFO: 0}
        for op in self.ops:
            if f_prefix is None or op.f.startswith(f_prefix):
                counts[op.status] = counts.get(op.status, 0) + 1
        return counts

    def to_json(self) -> list[dict[str, Any]]:
        return [asdict(op) for op in self.ops]


def op(index: int, f: str, key: str | None, value: Any, invoke_t: float,
       complete_t: float | None, status: str, result: Any = None, error: str | None = None,
       process: int = 0) -> Op:
    """A hand-made completed op (unit tests, replay from JSON)."""
    return Op(index, process, f, key, value, invoke_t, status, complete_t, result, error)


def ops_from_json(rows: list[dict[str, Any]]) -> list[Op]:
    return [Op(**row) for row in rows]
