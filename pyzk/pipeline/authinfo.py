"""A connection's authenticated ids, in the order ZooKeeper 3.8 iterates them.

Rule: ServerCnxn keeps its ids in a ConcurrentHashMap key set, so whoAmI lists them, and
fixupACL expands an "auth" ACL into them, in hash-table order, not in the order they were
added (verified: after `addauth digest bob:pw` whoAmI lists digest before ip). This module
reproduces that order: Id.hashCode as jute generates it, ConcurrentHashMap's spread and bin
index, appends at a bin's tail, and the bin split of a resize. Treeified bins (8+ ids in one
bin of a 64+ table) are not modelled; no connection holds that many ids.
"""

from __future__ import annotations

from collections.abc import Iterator

from jute.data import Id
from pyzk.tree.javaorder import java_string_hash

_INT_MASK = 0xFFFFFFFF
_HASH_BITS = 0x7FFFFFFF
_TABLE_SIZE_INITIAL = 16


def _to_int32(value: int) -> int:
    value &= _INT_MASK
    return value - (1 << 32) if value & 0x80000000 else value


def id_hash(auth_id: Id) -> int:
    """Id.hashCode as jute generates it: 37*(37*17 + scheme.hashCode()) + id.hashCode()."""
    result = 37 * 17 + java_string_hash(auth_id.scheme)
    result = 37 * _to_int32(result) + java_string_hash(auth_id.id)
    return _to_int32(result)


def _spread(h: int) -> int:
    h &= _INT_MASK
    return (h ^ (h >> 16)) & _HASH_BITS


class AuthInfo:
    """The ids of one connection: a set, iterated in ConcurrentHashMap order.

    Adding is O(1) amortised (a set answers membership; the ordered tuple is rebuilt only
    when it is read after a change), so a connection sending thousands of addauths costs
    linear time, not a rescan and a rebuild of every id per add.
    """

    __slots__ = ("_bins", "_ids", "_members")

    def __init__(self, first: Id) -> None:
        self._bins: list[list[tuple[int, Id]]] = [[] for _ in range(_TABLE_SIZE_INITIAL)]
        self._members: set[Id] = set()
        self._ids: tuple[Id, ...] | None = ()
        self.add(first)

    @property
    def ids(self) -> tuple[Id, ...]:
        ids = self._ids
        if ids is None:
            ids = self._ids = tuple(entry for bin_ in self._bins for _, entry in bin_)
        return ids

    def __contains__(self, auth_id: object) -> bool:
        return auth_id in self._members

    def __iter__(self) -> Iterator[Id]:
        return iter(self.ids)

    def __len__(self) -> int:
        return len(self._members)

    def add(self, auth_id: Id) -> None:
        if auth_id in self._members:
            return
        self._members.add(auth_id)
        h = _spread(id_hash(auth_id))
        self._bins[h & (len(self._bins) - 1)].append((h, auth_id))
        # addCount resizes once the count reaches sizeCtl, three quarters of the table.
        if len(self._members) >= len(self._bins) - (len(self._bins) >> 2):
            self._resize()
        self._ids = None

    def _resize(self) -> None:
        """ConcurrentHashMap.transfer: each bin splits on one hash bit into bin i and i+n.

        The longest tail run that goes to one side keeps its order; the nodes before it
        are pushed in front of their side's list one by one, which reverses them.
        """
        n = len(self._bins)
        grown: list[list[tuple[int, Id]]] = [[] for _ in range(2 * n)]
        for i, bin_ in enumerate(self._bins):
            if not bin_:
                continue
            last_run = len(bin_) - 1
            while last_run > 0 and (bin_[last_run - 1][0] & n) == (bin_[-1][0] & n):
                last_run -= 1
            low: list[tuple[int, Id]] = []
            high: list[tuple[int, Id]] = []
            (high if bin_[-1][0] & n else low).extend(bin_[last_run:])
            for node in bin_[:last_run]:
                (high if node[0] & n else low).insert(0, node)
            grown[i] = low
            grown[i + n] = high
        self._bins = grown
