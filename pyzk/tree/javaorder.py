"""Java's hash-table iteration order, where ZooKeeper lets it reach the wire or the log.

Rule 1: when ZooKeeper iterates a java.util.HashSet<String> and the order becomes visible (a
        getChildren list, hence the order a snapshot holds children in; the ephemerals a
        closeSession txn deletes, hence the order of NodeDeleted events), pyzk computes it:
        buckets in index order, index = spread(String.hashCode) & (capacity - 1), and within
        a bucket insertion order (put appends to the bucket's list, remove unlinks, and
        HashMap.resize splits each list into a lo and a hi list keeping relative order).
Rule 2: the capacity is the table length the set has at that moment: it doubles when the
        size exceeds 0.75 * capacity and never shrinks (removals leave the table as it is).
Rule 3: not modelled, both only reachable when 9+ names share one bucket: the early resize
        HashMap.treeifyBin does instead of treeifying a table shorter than 64, and the order
        of a treeified bucket (a red-black tree, its root first) in a table of 64 or more.
        With spread String hashes that needs names built to collide (random names: about
        1e-6 for a set of 24 names in 32 buckets, 3e-6 for 48 in 64, at any one moment);
        pyzk then lists that bucket in insertion order and keeps the load-factor capacity.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from itertools import islice

_INT_MASK = 0xFFFFFFFF
HASH_SET_CAPACITY_DEFAULT = 16
CHILDREN_CAPACITY_INITIAL = 8  # DataNode.addChild: new HashSet<String>(8), table length 8
LOAD_FACTOR = 0.75

# String.hashCode of an ASCII name without a Python loop: each byte b is 31 * (b // 31) +
# b % 31, so the polynomial sum(b_i * 31^(n-1-i)) is int(lows, 31) + 31 * int(highs, 31)
# with the lows and highs written as base-31 digits (bytes.translate, then int() in C).
_DIGITS_31 = b"0123456789abcdefghijklmnopqrstu"
_LOW_DIGITS = bytes(_DIGITS_31[b % 31] for b in range(128)) + bytes(128)
_HIGH_DIGITS = bytes(_DIGITS_31[b // 31] for b in range(128)) + bytes(128)
# int() of a long digit string is quadratic (and 3.11 refuses more than 4300 digits).
FAST_HASH_CHARS_MAX = 1_000


def _string_hash_u32(text: str) -> int:
    """String.hashCode as an unsigned 32-bit int."""
    if text.isascii() and 0 < len(text) <= FAST_HASH_CHARS_MAX:
        raw = text.encode("ascii")
        return (int(raw.translate(_LOW_DIGITS), 31) + 31 * int(raw.translate(_HIGH_DIGITS), 31)) & _INT_MASK
    raw = text.encode("utf-16-be", "surrogatepass")
    h = 0
    for i in range(0, len(raw), 2):
        h = (31 * h + ((raw[i] << 8) | raw[i + 1])) & _INT_MASK
    return h


def java_string_hash(text: str) -> int:
    """String.hashCode: s[0]*31^(n-1) + ... over UTF-16 code units, as a signed 32-bit int."""
    h = _string_hash_u32(text)
    return h - (1 << 32) if h & 0x80000000 else h


def spread_hash(text: str) -> int:
    """HashMap.hash(key): hashCode ^ (hashCode >>> 16), unsigned; its low bits pick the bucket."""
    if text.isascii() and 0 < len(text) <= FAST_HASH_CHARS_MAX:  # _string_hash_u32, inlined
        raw = text.encode("ascii")
        h = (int(raw.translate(_LOW_DIGITS), 31) + 31 * int(raw.translate(_HIGH_DIGITS), 31)) & _INT_MASK
    else:
        h = _string_hash_u32(text)
    return h ^ (h >> 16)


def _grown(capacity: int, size: int) -> int:
    """HashMap resizes (doubles) once its size exceeds capacity * 0.75."""
    while size > capacity * LOAD_FACTOR:
        capacity *= 2
    return capacity


def children_capacity(size: int, capacity: int = CHILDREN_CAPACITY_INITIAL) -> int:
    """Table length of a DataNode's children set after adds bring it to `size` names."""
    return _grown(capacity, size)


def copy_capacity(size: int) -> int:
    """Capacity of `new HashSet<>(set)` / `set.clone()` holding size keys (putMapEntries)."""
    if size == 0:
        return HASH_SET_CAPACITY_DEFAULT
    wanted = int(size / LOAD_FACTOR + 1.0)
    capacity = 1
    while capacity < wanted:
        capacity *= 2
    return capacity


def long_hash(value: int) -> int:
    """HashMap.hash of a Long key: Long.hashCode (value ^ value >>> 32, as an int) spread."""
    unsigned = value & 0xFFFF_FFFF_FFFF_FFFF
    h = (unsigned ^ (unsigned >> 32)) & _INT_MASK
    return h ^ (h >> 16)


def long_hash_map_order(keys_in_insertion_order: Iterable[int]) -> list[int]:
    """A `new HashMap<Long, V>()` filled by put in this order: its iteration order (Rule 1)."""
    keys = list(dict.fromkeys(keys_in_insertion_order))
    mask = _grown(HASH_SET_CAPACITY_DEFAULT, len(keys)) - 1
    return sorted(keys, key=lambda key: long_hash(key) & mask)


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
        order = sorted(range(len(keys)), key=lambda i: (spread_hash(keys[i]) & mask, i))
        return (keys[i] for i in order)


def hash_set_order(names: Iterable[str], capacity: int) -> list[str]:
    """A HashSet<String>'s iteration order, the names given in insertion order (Rule 1).

    The reference for `ChildrenListing`, which gives the same list faster.
    """
    mask = capacity - 1
    return sorted(names, key=lambda name: spread_hash(name) & mask)


# Placing more than 1/8 of the names (plus one) one by one costs more than sorting them all.
_SORT_CHANGES_SHIFT = 3
# From this many names on, a new listing copies the names so that they lie in memory in
# listing order (`relocated`): encoding 100,000 names visited in hash order, scattered across
# the heap, took 28 ms where the same names in allocation order took 20 ms (10,000: 2.2 vs
# 1.7 ms); the copies cost about 0.7 us a name, once.
RELOCATED_NAMES_MIN = 8_192


class ChildrenListing:
    """A DataNode's children in HashSet order, kept from one listing to the next (Rule 1).

    The node's `children` dict holds the names in insertion order; its values cache each
    name's bucket index for the current capacity, None for a name not listed yet. Names
    added since the last listing are therefore the None suffix of the dict, and the node
    records here each listed name it removes, with its bucket (`removed`). `order` is the
    listing and `buckets` its bucket indexes (ascending), so listing again hashes only the
    added names and places only the changes: a bisect on `buckets`, then a C-level insert
    or delete in both lists; an added name goes after the last name of its bucket, being
    the newest. A new capacity changes every bucket: the node then drops its listing (and
    the buckets left in `children` are stale until the next listing recomputes them all).
    """

    __slots__ = ("buckets", "order", "removed")

    def __init__(self, children: dict[str, int | None], capacity: int) -> None:
        mask = capacity - 1
        for name in children:
            children[name] = spread_hash(name) & mask
        self.removed: dict[str, int] = {}
        self._sort(children)

    def _sort(self, children: dict[str, int | None]) -> None:
        """Every name has its bucket: sort them all (stable: insertion order in a bucket)."""
        bucket_of = children.__getitem__
        self.order = order = sorted(children, key=bucket_of)
        self.buckets: list[int] = list(map(bucket_of, order))  # type: ignore[arg-type]
        self.removed.clear()

    def copy(self) -> ChildrenListing:
        """The same listing for a copy of the same `children` dict."""
        twin = ChildrenListing.__new__(ChildrenListing)
        twin.order, twin.buckets, twin.removed = self.order[:], self.buckets[:], dict(self.removed)
        return twin

    def current(self, children: dict[str, int | None], capacity: int) -> list[str]:
        """The order now (the caller's own copy)."""
        order, buckets, removed = self.order, self.buckets, self.removed
        # The names with a bucket are the listed ones not removed since; the rest were added.
        added_count = len(children) - len(order) + len(removed)
        if not added_count and not removed:
            return order[:]
        mask = capacity - 1
        if added_count + len(removed) > (len(order) >> _SORT_CHANGES_SHIFT) + 1:
            for name in islice(reversed(children), added_count):
                children[name] = spread_hash(name) & mask
            self._sort(children)
            return self.order[:]
        if removed:
            for name, bucket in removed.items():
                at = bisect_left(buckets, bucket)
                while order[at] != name:  # the rest of its bucket
                    at += 1
                del order[at], buckets[at]
            removed.clear()
        if added_count == 1:
            added = [next(reversed(children))]
        else:
            added = list(islice(reversed(children), added_count))
            added.reverse()  # oldest first: each goes after the names of its bucket
        for name in added:
            bucket = children[name] = spread_hash(name) & mask
            at = bisect_right(buckets, bucket)
            order.insert(at, name)
            buckets.insert(at, bucket)
        return order[:]


def relocated(children: dict[str, int | None], order: list[str]) -> tuple[dict[str, int | None], list[str]]:
    """`children` and `order` with every name replaced by a copy made in `order`'s order.

    Same keys, values and dict order; the copies are allocated one after the other, so that
    walking `order` (encoding a getChildren reply) reads memory in sequence. The old name
    objects are freed when nothing else holds them.
    """
    fresh = {name: "".join((name, "")) for name in order}  # join of two parts makes a new str
    return {fresh[name]: bucket for name, bucket in children.items()}, list(fresh.values())
