"""The scale runs' tree and the pure arithmetic around it (no sockets, no clock).

Rule: one tree serves every scale run: `nodes` znodes of 100 bytes in total, of which
`children` sit under one wide parent (the getChildren run) and the rest under parents of
1,000 children each. The wide parent's child names are short enough ("c00000") that a
getChildren reply of 100,000 names stays under jute.maxbuffer (1,048,575 bytes), so a
stock Java client could read it too.
"""

from collections.abc import Iterator
from dataclasses import dataclass

from bench import wire

ROOT = "/scale"
WIDE_PARENT = f"{ROOT}/wide"
CHILDREN_PER_PARENT = 1000
DATA_BYTES = 100
OP_GET_CHILDREN = 8  # ZooDefs.OpCode.getChildren


@dataclass(frozen=True)
class TreeShape:
    nodes: int  # every znode the build creates, parents included
    children: int  # of those, the wide parent's children

    def __post_init__(self) -> None:
        if self.children < 1 or self.nodes < self.children + 2:
            raise ValueError(f"{self.nodes} znodes cannot hold /scale, /scale/wide and "
                             f"{self.children} children")

    def wide_child_names(self) -> list[str]:
        width = len(str(self.children - 1))
        return [f"c{i:0{width}d}" for i in range(self.children)]

    def paths(self) -> Iterator[str]:
        """Every path to create, each parent before its children."""
        yield ROOT
        yield WIDE_PARENT
        for name in self.wide_child_names():
            yield f"{WIDE_PARENT}/{name}"
        remaining = self.nodes - self.children - 2
        parent = ""
        for index in range(remaining):
            if index % (CHILDREN_PER_PARENT + 1) == 0:  # a parent, then up to 1,000 children
                parent = f"{ROOT}/p{index // (CHILDREN_PER_PARENT + 1):04d}"
                yield parent
            else:
                yield f"{parent}/n{index:07d}"


def get_children_request(path: str) -> bytes:
    """GetChildrenRequest{path, watch=false}."""
    return wire.ustring(path) + b"\x00"


def get_children_reply_length(child_names: list[str]) -> int:
    """Frame length of a GetChildrenResponse: ReplyHeader, then a vector of ustrings."""
    return wire.REPLY_HEADER_SIZE + 4 + sum(4 + len(name.encode()) for name in child_names)


def rss_per_znode_bytes(rss_empty_kib: int, rss_loaded_kib: int, nodes: int) -> float:
    """What the tree added to the server's resident memory, per znode."""
    return (rss_loaded_kib - rss_empty_kib) * 1024 / nodes


def parse_srvr(text: str) -> dict[str, int]:
    """The `Zxid` and `Node count` lines of a `srvr` answer."""
    values = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key == "Zxid":
            values["zxid"] = int(value.strip(), 16)
        elif key == "Node count":
            values["node_count"] = int(value.strip())
    return values


def snap_count_for(rate_ops_s: float, load_s_before_window: float, window_s: float,
                   setup_txns: int) -> int:
    """A snapCount whose first snapshot falls early in the measured window, and none before.

    Both servers snapshot once more than snapCount/2 + roll txns were logged since start,
    roll drawn from [0, snapCount/2): the snapshot starts somewhere between snapCount/2 and
    snapCount txns. Put snapCount/2 a little past the window's start (the setup txns plus
    every txn of the loads before the window, plus 5 % of the window), so no snapshot comes
    earlier and even the latest roll lands in the window's first half when the window is
    long enough (see snapshot_due_window_s).
    """
    txns_at_window_start = setup_txns + rate_ops_s * load_s_before_window
    return int(2 * (txns_at_window_start + 0.05 * rate_ops_s * window_s))


def snapshot_due_window_s(
    snap_count: int, rate_ops_s: float, load_s_before_window: float, setup_txns: int
) -> tuple[float, float]:
    """Seconds after the window's start between which the snapshot must start."""
    def at(txns: float) -> float:
        return (txns - setup_txns) / rate_ops_s - load_s_before_window

    return at(snap_count / 2), at(snap_count)


@dataclass(frozen=True)
class SnapshotSeen:
    name: str  # snapshot.<hex zxid>
    started_s: float  # the log roll that began it (or the file's first sight), from window start
    done_s: float | None  # when the file was complete (last size change, or its rename)
    size_bytes: int


def snapshots_seen(
    first_seen_ns: dict[str, int], last_change_ns: dict[str, int], sizes: dict[str, int],
    window_start_ns: int,
) -> list[SnapshotSeen]:
    """Snapshot files that appeared in dataDir/version-2 while watched, from the watcher's
    notes (new file names only). A "<name>.tmp" (written, then renamed into place) is the
    same snapshot as <name>; a new log file is the log roll that starts a snapshot."""
    def rel(ns: int) -> float:
        return round((ns - window_start_ns) / 1e9, 3)

    log_rolls_ns = sorted(t for name, t in first_seen_ns.items() if name.startswith("log."))
    never = 1 << 62

    def first_sight_ns(name: str) -> int:
        return min(first_seen_ns.get(name, never), first_seen_ns.get(name + ".tmp", never))

    seen = []
    previous_ns = -1
    names = {n.removesuffix(".tmp") for n in first_seen_ns if n.startswith("snapshot.")}
    for name in sorted(names, key=first_sight_ns):
        first_ns = first_sight_ns(name)
        # the roll that began this snapshot: the last one since the previous snapshot
        rolls = [t for t in log_rolls_ns if previous_ns < t <= first_ns]
        started_ns = rolls[-1] if rolls else first_ns
        previous_ns = first_ns
        done_ns = last_change_ns.get(name)
        seen.append(SnapshotSeen(
            name, rel(started_ns), rel(done_ns) if done_ns is not None else None,
            sizes.get(name, 0),
        ))
    return seen
