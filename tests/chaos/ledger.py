"""The crash test's ledger: what a writer issued and what the server acknowledged.

Rule 1: an acknowledged write must survive every later crash. A write whose ack did not
        arrive may or may not be applied (the server can apply and persist it, then die
        before the reply leaves), but if it is applied it is applied whole.
Rule 2: for a setData key, the value read after a restart must be one this writer issued for
        that key, no older than the newest acknowledged or previously observed one.
Rule 3: what a restarted server showed is the new floor: it came from disk, so a later crash
        may not take it away either.
Pure: no client, no server; `check` returns human-readable violations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MULTI_PARTS = 3
INITIAL_SEQ = -1  # the set keys are created holding b"-1"


def _seq_of(data: bytes) -> int | None:
    try:
        return int(data)
    except ValueError:
        return None


def create_path(root: str, number: int) -> str:
    return f"{root}/c{number}"


def multi_paths(root: str, number: int) -> list[str]:
    return [f"{root}/m{number}-{part}" for part in range(MULTI_PARTS)]


def set_key_path(root: str, key: int) -> str:
    return f"{root}/s{key}"


@dataclass
class Observation:
    """What a restarted server shows under the root: child names and the set keys' data."""

    children: set[str]
    set_values: dict[int, bytes | None]  # key -> data, None when the node is missing


@dataclass
class Ledger:
    root: str
    set_keys: int
    creates_issued: set[int] = field(default_factory=set)
    creates_acked: set[int] = field(default_factory=set)
    creates_seen: set[int] = field(default_factory=set)
    multis_issued: set[int] = field(default_factory=set)
    multis_acked: set[int] = field(default_factory=set)
    multis_seen: set[int] = field(default_factory=set)
    # key -> every sequence number issued for it, in issue order (they only grow)
    sets_issued: dict[int, list[int]] = field(default_factory=dict)
    set_floor: dict[int, int] = field(default_factory=dict)  # key -> newest acked/observed seq
    acked_writes: int = 0

    def ack_create(self, number: int) -> None:
        self.creates_acked.add(number)
        self.acked_writes += 1

    def ack_multi(self, number: int) -> None:
        self.multis_acked.add(number)
        self.acked_writes += 1

    def ack_set(self, key: int, seq: int) -> None:
        self.set_floor[key] = max(self.set_floor.get(key, -1), seq)
        self.acked_writes += 1

    def _name(self, path: str) -> str:
        return path[len(self.root) + 1:]

    def check(self, seen: Observation) -> list[str]:
        """Violations of the rules in `seen`; on success `seen` becomes the new floor."""
        problems: list[str] = []
        names = seen.children
        expected_names = {self._name(set_key_path(self.root, k)) for k in range(self.set_keys)}
        for number in self.creates_issued:
            name = self._name(create_path(self.root, number))
            expected_names.add(name)
            if name not in names and (number in self.creates_acked or number in self.creates_seen):
                kind = "acknowledged" if number in self.creates_acked else "previously recovered"
                problems.append(f"{kind} create {name} is missing")
        for number in self.multis_issued:
            parts = [self._name(p) for p in multi_paths(self.root, number)]
            expected_names.update(parts)
            present = [p for p in parts if p in names]
            if present and len(present) != len(parts):
                problems.append(f"multi {number} is half applied: only {present} exist")
            if not present and (number in self.multis_acked or number in self.multis_seen):
                kind = "acknowledged" if number in self.multis_acked else "previously recovered"
                problems.append(f"{kind} multi {number} is missing")
        strangers = sorted(names - expected_names)
        if strangers:
            problems.append(f"nodes nobody created: {strangers[:10]}")
        for key in range(self.set_keys):
            data = seen.set_values.get(key)
            floor = self.set_floor.get(key, -1)
            if data is None:
                problems.append(f"set key s{key} is missing")
                continue
            seq = _seq_of(data)
            if seq is None or (seq != INITIAL_SEQ and seq not in self.sets_issued.get(key, ())):
                problems.append(f"set key s{key} holds {data!r}, never written")
            elif seq < floor:
                problems.append(f"set key s{key} went back to seq {seq}; acknowledged {floor}")
        if not problems:
            self._observe(seen)
        return problems

    def _observe(self, seen: Observation) -> None:
        for number in self.creates_issued:
            if self._name(create_path(self.root, number)) in seen.children:
                self.creates_seen.add(number)
        for number in self.multis_issued:
            if self._name(multi_paths(self.root, number)[0]) in seen.children:
                self.multis_seen.add(number)
        for key, data in seen.set_values.items():
            if data is not None:
                self.set_floor[key] = max(self.set_floor.get(key, -1), int(data))
