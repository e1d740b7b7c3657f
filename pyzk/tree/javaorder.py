"""Java's hash-table iteration order, where ZooKeeper lets it reach the wire or the log.

Rule: when ZooKeeper iterates a java.util.HashSet<String> and the order becomes visible (the
ephemerals a closeSession txn deletes, hence the order of NodeDeleted events), pyzk computes
the same order: String.hashCode, HashMap's spread and bucket index, insertion order within a
bucket (a HashMap resize keeps it), and the table capacity the set has at that moment.
Treeified buckets (8+ keys in one bucket of a 64+ table) are not modelled.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

_INT_MASK = 0xFFFFFFFF
HASH_SET_CAPACITY_DEFAULT = 16
LOAD_FACTOR = 0.75


def java_string_hash(text: str) -> int:
    """String.hashCode: s[0]*31^(n-1) + ... over UTF-16 code units, as a signed 32-bit int."""
    raw = text.encode("utf-16-be", "surrogatepass")
    h = 0
    for i in range(0, len(raw), 2):
        h = (31 * h + ((raw[i] << 8) | raw[i + 1])) & _INT_MASK
    return h - (1 << 32) if h & 0x80000000 else h


def _bucket_hash(text: str) -> int:
    h = java_string_hash(text) & _INT_MASK
    return h ^ (h >> 16)


def _grown(capacity: int, size: int) -> int:
    """HashMap resizes (doubles) once its size exceeds capacity * 0.75."""
    while size > capacity * LOAD_FACTOR:
        capacity *= 2
    return capacity


def copy_capacity(size: int) -> int:
    """Capacity of `new HashSet<>(set)` / `set.clone()` holding size keys (putMapEntries)."""
    if size == 0:
        return HASH_SET_CAPACITY_DEFAULT
    wanted = int(size / LOAD_FACTOR + 1.0)
    capacity = 1
    while capacity < wanted:
        capacity *= 2
    return capacity


class JavaHashSet:
    """A HashSet<String>'s keys and capacity; iterating it gives Java's order."""

    __slots__ = ("_keys", "capacity")

    def __init__(self, keys: Iterable[str] = (), capacity: int = HASH_SET_CAPACITY_DEFAULT) -> None:
        self.capacity = capacity
        self._keys: dict[str, None] = {}
        for key in keys:
            self.add(key)

    @classmethod
    def copy_of(cls, source: JavaHashSet) -> JavaHashSet:
        """HashSet.clone(): a table sized for the source's size, filled in its order."""
        return cls(source, copy_capacity(len(source)))

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def add(self, key: str) -> None:
        if key not in self._keys:
            self._keys[key] = None
            self.capacity = _grown(self.capacity, len(self._keys))

    def discard(self, key: str) -> None:
        self._keys.pop(key, None)

    def __iter__(self) -> Iterator[str]:
        keys = list(self._keys)
        mask = self.capacity - 1
        order = sorted(range(len(keys)), key=lambda i: (_bucket_hash(keys[i]) & mask, i))
        return (keys[i] for i in order)
