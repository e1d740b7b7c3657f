"""A simulated member's dataDir: the real QuorumDisk on a byte-level MemoryFileSystem.

Rule 1: a Persist waits for its fsync time (the disk delay; buggify: now and then a slow
        disk), then QuorumDisk.write writes it, grouped with every other write due by then:
        the code the storage thread runs, on bytes (pyzk/storage/fs.py).
Rule 2: a crash cuts the power. Writes still waiting are lost; with torn writes on, a random
        prefix of them is written first and interrupted between two file-system calls, and
        the bytes not fsynced are torn. A restart is the real start-up: recovery (a torn tail
        is truncated), load_image, the replayed tree.
Rule 3: autopurge as in production: at start-up and then every purge interval, keeping 3
        snapshots (snapRetainCount's minimum) and the logs they need.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

from pyzk.config import ServerConfig
from pyzk.quorum.database import DiskImage
from pyzk.quorum.effects import Persist
from pyzk.quorum.zxid import follows
from pyzk.server.quorum_disk import QuorumDisk
from pyzk.storage.errors import StorageError
from pyzk.storage.files import LocalDisk, purge
from pyzk.storage.format import LogFileReader, entry_zxid
from pyzk.storage.fs import MemoryFileSystem, PowerCut
from pyzk.storage.layout import LOG_PREFIX, SNAPSHOT_PREFIX, sorted_by_zxid, zxid_from_name
from pyzk.tree.datatree import DataTree

SNAP_RETAIN_COUNT = 3


class SimDisk:
    def __init__(self, config: ServerConfig, sid: int, *, pre_alloc_size_kb: int, compression: str) -> None:
        folder = Path(f"/sim/{sid}")
        self.config = dataclasses.replace(config, data_dir=folder, data_log_dir=folder,
                                          pre_alloc_size_kb=pre_alloc_size_kb,
                                          snapshot_compression_method=compression, force_sync=True)
        self.fs = MemoryFileSystem()
        self.store: QuorumDisk | None = None
        self.pending: list[tuple[int, Persist]] = []  # (durable at ms, write), in order
        self.last_fsync_ms = 0
        self.power_cuts = 0
        self.torn_restarts = 0

    # ---- start-up (Rule 2) ---------------------------------------------------------------

    def start(self) -> tuple[DiskImage, DataTree | None]:
        """What QuorumPeerMain does with dataDir before the Peer exists."""
        self.store = QuorumDisk(self.config, self.fs)
        image = self.store.load_image()
        return image, self.store.take_replayed_tree()

    # ---- writes (Rule 1) -----------------------------------------------------------------

    def write_due(self, now_ms: int) -> int | None:
        """Write every Persist due by `now_ms` in one group commit; the last one's id."""
        batch: list[Persist] = []
        while self.pending and self.pending[0][0] <= now_ms:
            batch.append(self.pending.pop(0)[1])
        if not batch:
            return None
        assert self.store is not None
        self.store.write(batch)
        return batch[-1].persist_id

    def power_cut(self, rng: random.Random, *, torn_writes: bool) -> bool:
        """Rule 2; True if bytes written and not yet fsynced were at stake."""
        waiting = [persist for _, persist in self.pending]
        self.pending.clear()
        if torn_writes and waiting and self.store is not None:
            written = waiting[:rng.randint(1, len(waiting))]
            self.fs.ops_left = rng.randint(1, 2 * len(written))  # a write makes 2-3 calls: mostly cut inside
            try:
                self.store.write(written)
            except PowerCut:
                pass
        at_stake = self.fs.torn_bytes() > 0
        self.fs.power_cut(rng)
        self.store = None
        self.power_cuts += 1
        return at_stake

    def damage_newest_snapshot(self, rng: random.Random) -> bool:
        """Buggify (the member is down): cut the newest snapshot short, as a snapshot written
        without fsync and torn, or damaged on disk. Only where falling back to the snapshot
        before it loses nothing: its log runs without a gap from there to the newest one (a
        snapshot from a leader's SNAP has no such log, and a real member would lose data)."""
        disk = LocalDisk(self.config.data_dir, fs=self.fs)
        names = [n for n in sorted_by_zxid(disk.snapshot_names(), SNAPSHOT_PREFIX) if disk.snapshot_looks_valid(n)]
        if len(names) < 2:
            return False
        previous, newest = (zxid_from_name(n, SNAPSHOT_PREFIX) for n in names[-2:])
        try:
            logged = self.logged_zxids()
        except StorageError:
            return False  # a log file torn at its header: recovery repairs it at the restart
        chain = [previous, *(z for z in logged if previous < z <= newest)]
        if chain[-1] != newest or not all(follows(a, b) for a, b in zip(chain, chain[1:], strict=False)):
            return False
        path = disk.snap_dir / names[-1]
        self.fs.truncate(path, rng.randrange(self.fs.size(path)))
        return True

    # ---- autopurge (Rule 3) --------------------------------------------------------------

    def purge(self) -> int:
        return len(purge(self.config.data_dir, None, SNAP_RETAIN_COUNT, self.fs))

    # ---- observation ---------------------------------------------------------------------

    def logged_zxids(self) -> list[int]:
        """Every txn zxid in the log files, oldest file first (tests look for a txn here)."""
        disk = LocalDisk(self.config.data_dir, fs=self.fs)
        found = []
        for name in sorted_by_zxid(disk.log_names(), LOG_PREFIX):
            found.extend(entry_zxid(e) for _, e in LogFileReader(disk.read_log(name), name))
        return found

    def file_names(self) -> tuple[list[str], list[str]]:
        disk = LocalDisk(self.config.data_dir, fs=self.fs)
        return (sorted_by_zxid(disk.snapshot_names(), SNAPSHOT_PREFIX),
                sorted_by_zxid(disk.log_names(), LOG_PREFIX))
