"""Storage I/O: the txn log writer, snapshot files, epoch files, restore and purge on disk.

Rule 1: this is the only storage module that touches the file system, always through a
        `fs.FileSystem` (the OS's, or the simulator's byte-level disk); format,
        snapshot_format, recovery and layout stay pure and are driven from here.
Rule 2: TxnLogWriter.commit runs on ONE executor thread and never touches the DataTree; the
        event loop only appends entry bytes (under a lock) and reads what commit made durable.
Rule 3: a new log file per process start and per roll (ZooKeeper never appends to an
        existing file); files grow in preAllocSize steps of zeros (FilePadding); commit
        fsyncs (fdatasync, FileChannel.force(false)) unless forceSync=no, and warns when an
        fsync passes zookeeper.fsync.warningthresholdms.
Rule 4: snapshots and epoch files are written to "<name>.tmp"-style temporaries and renamed
        into place. Epoch files and a snapshot a learner receives are fsynced first; a
        snapshot the server takes of its own tree (start-up, every snapCount txns) is not,
        as ZooKeeper's syncSnap=false: fsyncing ~200 MB would stall the txn log's fsync
        behind it, and a snapshot lost to a crash is replaced by the older one plus the
        logs, which purge keeps (recovery checks each snapshot's seal).
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import os
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path

from pyzk.metrics import ServerMetrics
from pyzk.storage.errors import DatadirError, StorageError
from pyzk.storage.forked_digest import fork_digest_sum
from pyzk.storage.format import LOG_FILE_HEADER, encode_log_record
from pyzk.storage.fs import OS_FILE_SYSTEM, FileSystem
from pyzk.storage.layout import (
    INITIALIZE_MARKER,
    LOG_PREFIX,
    SNAPSHOT_PREFIX,
    VERSION_DIR,
    log_name,
    purge_candidates,
    snapshot_name,
    sorted_by_zxid,
    zxid_from_name,
)
from pyzk.storage.recovery import RestoredDatabase, recover
from pyzk.storage.snapshot_format import (
    SNAPSHOT_BYTES_MIN,
    SnapshotSerializer,
    looks_valid,
)
from pyzk.tree.datatree import DataTree

logger = logging.getLogger(__name__)

PRE_ALLOC_SIZE_KB_DEFAULT = 65536
FSYNC_WARNING_THRESHOLD_MS_DEFAULT = 1000
PAD_MARGIN_BYTES = 4096  # FilePadding: grow when the write position is this close to the end
SNAPSHOT_STEP_NODES = 1000  # nodes serialized per event-loop turn (~a few ms each step)
# The loop sleeps this long between steps: a zero sleep never really lets go of the GIL (the
# loop polls with a zero timeout), so the txn log thread could not finish a commit until the
# whole tree was serialized (~1 s of stalled writes with 1 M znodes). A short real sleep blocks
# in epoll, frees the GIL, and still serves requests as they arrive.
SNAPSHOT_STEP_PAUSE_S = 0.001
COMPRESSION_SUFFIXES = {"": "", "gz": ".gz"}


def padded_file_size(position: int, file_size: int, pre_alloc_bytes: int) -> int:
    """FilePadding.calculateFileSizeWithPadding."""
    if pre_alloc_bytes > 0 and position + PAD_MARGIN_BYTES >= file_size:
        if position > file_size:
            file_size = position + pre_alloc_bytes
            file_size -= file_size % pre_alloc_bytes
        else:
            file_size += pre_alloc_bytes
    return file_size


def _write_all(fs: FileSystem, handle: int, data: bytes | memoryview, offset: int) -> None:
    view = memoryview(data)
    written = 0
    while written < len(view):
        written += fs.pwrite(handle, view[written:], offset + written)


def write_file_atomically(path: Path, chunks: list[bytes], *, fsync: bool = True,
                          fs: FileSystem = OS_FILE_SYSTEM) -> None:
    """AtomicFileWritingIdiom: write <path>.tmp, fsync, rename over <path>, fsync the folder."""
    tmp = path.with_name(path.name + ".tmp")
    handle = fs.open_new(tmp)
    try:
        offset = 0
        for chunk in chunks:
            _write_all(fs, handle, chunk, offset)
            offset += len(chunk)
        if fsync:
            fs.fdatasync(handle)
    finally:
        fs.close(handle)
    fs.replace(tmp, path)
    if fsync:
        fs.fsync_dir(path.parent)


# ---- data directory ------------------------------------------------------------------------


def version_dir(base_dir: str | os.PathLike[str], fs: FileSystem = OS_FILE_SYSTEM) -> Path:
    """<base>/version-2, created if missing; StorageError when it cannot be created or written."""
    base = Path(base_dir)
    path = base / VERSION_DIR
    try:
        fs.make_dirs(path)
    except OSError as exc:
        raise DatadirError(f"cannot create {path}: {exc.strerror}") from None
    if not fs.is_writable_dir(path):
        raise DatadirError(f"{path} is not writable (check the owner and permissions of {base})")
    return path


def check_data_dirs(data_log_dir: str | os.PathLike[str], data_dir: str | os.PathLike[str], *,
                    autocreate: bool = True) -> None:
    """FileTxnSnapLog's constructor checks, in its order: each version-2 folder exists (or is
    created when zookeeper.datadir.autocreate allows) and is writable; with two folders, the
    log folder holds no snapshot and the snapshot folder no log (ZOOKEEPER-2967)."""
    log_dir, snap_dir = Path(data_log_dir) / VERSION_DIR, Path(data_dir) / VERSION_DIR
    for folder, what in ((log_dir, "data"), (snap_dir, "snap")):
        if not folder.exists():
            if not autocreate:
                raise DatadirError(
                    f"Missing {what} directory {folder}, automatic data directory creation is disabled "
                    "(zookeeper.datadir.autocreate is false). Please create this directory manually.")
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError:
                raise DatadirError(f"Unable to create {what} directory {folder}") from None
        if not os.access(folder, os.W_OK):
            raise DatadirError(f"Cannot write to {what} directory {folder}")
    if log_dir != snap_dir:
        if any(zxid_from_name(n, SNAPSHOT_PREFIX) >= 0 for n in os.listdir(log_dir)):
            raise DatadirError("Log directory has snapshot files. Check if dataLogDir and dataDir "
                               "configuration is correct.")
        if any(zxid_from_name(n, LOG_PREFIX) >= 0 for n in os.listdir(snap_dir)):
            raise DatadirError("Snapshot directory has log files. Check if dataLogDir and dataDir "
                               "configuration is correct.")


class LocalDisk:
    """recovery.RecoveryDisk over dataDir/version-2 (snapshots) and dataLogDir/version-2 (logs)."""

    def __init__(self, data_dir: str | os.PathLike[str], data_log_dir: str | os.PathLike[str] | None = None,
                 *, snapshot_compression: str = "", fs: FileSystem = OS_FILE_SYSTEM) -> None:
        self.fs = fs
        self.snap_dir = version_dir(data_dir, fs)
        self.log_dir = version_dir(data_log_dir if data_log_dir is not None else data_dir, fs)
        if snapshot_compression not in COMPRESSION_SUFFIXES:
            raise StorageError(f"unsupported zookeeper.snapshot.compression.method {snapshot_compression!r}")
        self.snapshot_suffix = COMPRESSION_SUFFIXES[snapshot_compression]

    def _path(self, name: str) -> Path:
        return (self.log_dir if name.startswith(LOG_PREFIX + ".") else self.snap_dir) / name

    def describe(self, name: str) -> str:
        return str(self._path(name))

    def snapshot_names(self) -> list[str]:
        return [n for n in self.fs.listdir(self.snap_dir) if not n.endswith(".tmp")
                and (n.count(".") == 1 or n.endswith(".gz")) and zxid_from_name(n, SNAPSHOT_PREFIX) >= 0]

    def log_names(self) -> list[str]:
        # By prefix too: with dataLogDir = dataDir, an "acceptedEpoch.tmp" left by a crash is
        # no log (it made a fresh dataDir refuse to start: "no snapshot but log entries").
        return [n for n in self.fs.listdir(self.log_dir) if n.count(".") == 1 and zxid_from_name(n, LOG_PREFIX) >= 0]

    def snapshot_looks_valid(self, name: str) -> bool:
        path = self._path(name)
        try:
            if name.endswith(".gz"):
                data = gzip.decompress(self.fs.read(path))
                return looks_valid(data[-5:], len(data))
            size = self.fs.size(path)
            if size < SNAPSHOT_BYTES_MIN:
                return False
            return looks_valid(self.fs.read(path, size - 5, 5), size)
        except (OSError, EOFError, gzip.BadGzipFile, zlib.error):
            return False

    def read_snapshot(self, name: str) -> bytes:
        data = self.fs.read(self._path(name))
        return gzip.decompress(data) if name.endswith(".gz") else data

    def read_log(self, name: str) -> bytes:
        """The file's bytes up to its first hole: a log is preallocated sparse (64 MB by
        default), so the zero fill after the records is not read (FileTxnIterator stops at
        the first empty record too). Without hole support the whole file is read."""
        return self.fs.read_to_hole(self._path(name))

    def truncate_log(self, name: str, size: int) -> None:
        self.fs.truncate(self._path(name), size)

    def delete_log(self, name: str) -> None:
        self.fs.unlink(self._path(name))
        self.fs.fsync_dir(self.log_dir)

    def take_initialize_marker(self) -> bool:
        marker = self.log_dir.parent / INITIALIZE_MARKER
        try:
            self.fs.unlink(marker)
        except FileNotFoundError:
            return False
        logger.info("Initialize file found, an empty database will not block voting participation")
        return True

    def parallel_digest(self, data: bytes, pos: int) -> Callable[[], int | None]:
        """Sum a big snapshot's digest on another core while it loads (forked_digest)."""
        return fork_digest_sum(data, pos)

    def write_snapshot(self, zxid: int, chunks: list[bytes], *, fsync: bool = True) -> str:
        name = snapshot_name(zxid, self.snapshot_suffix)
        if self.snapshot_suffix == ".gz":
            chunks = [gzip.compress(b"".join(chunks))]
        write_file_atomically(self.snap_dir / name, chunks, fsync=fsync, fs=self.fs)
        logger.info("Snapshot written: %s", self.snap_dir / name)
        return name


def last_snapshot(data_dir: str | os.PathLike[str]) -> tuple[int, int] | None:
    """FileSnap.getLastSnapshotInfo as the AdminServer reports it: the newest snapshot that
    passes the quick validity check (the one a restart would load, or the one just written),
    as (zxid, the file's mtime in whole seconds); None when there is none."""
    disk = LocalDisk(data_dir)
    for name in sorted_by_zxid(disk.snapshot_names(), SNAPSHOT_PREFIX, newest_first=True):
        if disk.snapshot_looks_valid(name):
            try:
                return zxid_from_name(name, SNAPSHOT_PREFIX), int(os.stat(disk.snap_dir / name).st_mtime)
            except OSError:
                continue  # purged meanwhile
    return None


def restore(data_dir: str | os.PathLike[str], data_log_dir: str | os.PathLike[str] | None = None, *,
            digest_enabled: bool = True, extended_types_enabled: bool = False,
            snapshot_trust_empty: bool = False, db_autocreate: bool = True,
            fs: FileSystem = OS_FILE_SYSTEM, metrics: ServerMetrics | None = None) -> RestoredDatabase:
    """FileTxnSnapLog.restore on a data directory; StorageError (one line) on refusal.
    `metrics` gets loadDataBase's measurements (dbinittime, startup_*)."""
    disk = LocalDisk(data_dir, data_log_dir, fs=fs)
    started_ms = time.monotonic() * 1000
    try:
        restored = recover(disk, digest_enabled=digest_enabled, extended_types_enabled=extended_types_enabled,
                           snapshot_trust_empty=snapshot_trust_empty, db_autocreate=db_autocreate)
    except OSError as exc:
        raise StorageError(f"cannot read the data directory: {exc.filename or ''}: {exc.strerror}") from None
    if metrics is not None:
        metrics.record_restore(restored.snapshot_load_ms, restored.txns_replayed, restored.txns_load_ms,
                               time.monotonic() * 1000 - started_ms)
    return restored


# ---- txn log -------------------------------------------------------------------------------


class _Roll:
    """Marks, in the pending queue, where the next record must start a new file."""


_ROLL = _Roll()


class TxnLogWriter:
    """FileTxnLog's writing half, group-committed (see the module rules)."""

    def __init__(self, log_dir: str | os.PathLike[str], pre_alloc_size_kb: int = PRE_ALLOC_SIZE_KB_DEFAULT,
                 force_sync: bool = True, *,
                 fsync_warning_threshold_ms: int = FSYNC_WARNING_THRESHOLD_MS_DEFAULT,
                 clock_ms: Callable[[], float] = lambda: time.monotonic() * 1000,
                 fs: FileSystem = OS_FILE_SYSTEM, metrics: ServerMetrics | None = None) -> None:
        """`log_dir` is dataLogDir (its version-2 folder is used, and created if missing);
        `metrics.fsynctime` gets each fsync's ms (from this writer's one thread)."""
        self.fs = fs
        self._fsync_time = metrics.fsynctime if metrics is not None else None
        self._metrics = metrics
        self.log_dir = version_dir(log_dir, fs)
        self.pre_alloc_bytes = pre_alloc_size_kb * 1024
        self.force_sync = force_sync
        self.fsync_warning_threshold_ms = fsync_warning_threshold_ms
        self.fsync_threshold_exceeded = 0
        self.last_fsync_ms = 0.0
        self._clock_ms = clock_ms
        self._lock = threading.Lock()
        self._pending: list[tuple[bytes, int] | _Roll] = []
        self._file: int | None = None  # an OS file descriptor
        self._file_path: Path | None = None
        self._position = 0
        self._file_size = 0
        self._last_zxid_seen = -1
        self._failed: str | None = None
        self.last_committed_zxid = -1

    @property
    def current_file(self) -> Path | None:
        return self._file_path

    def append(self, entry: bytes, zxid: int) -> None:
        """Queue one txn entry (format.encode_txn_entry); it is durable after the next commit."""
        with self._lock:
            self._pending.append((entry, zxid))

    def roll(self) -> None:
        """The next appended txn starts a new log file (called when a snapshot starts)."""
        with self._lock:
            self._pending.append(_ROLL)

    def _open(self, zxid: int) -> None:
        path = self.log_dir / log_name(zxid)
        logger.info("Creating new log file: %s", path.name)
        self._file_path = path  # set first: a failure to create or fill it names this file
        self._position = self._file_size = 0
        self._file = self.fs.open_new(path)
        _write_all(self.fs, self._file, LOG_FILE_HEADER, 0)
        self.fs.fsync_dir(self.log_dir)
        self._position = self._file_size = len(LOG_FILE_HEADER)

    def _close_file(self) -> None:
        if self._file is not None:
            self._sync()
            self.fs.close(self._file)
            self._file = None
            self._file_path = None

    def _sync(self) -> None:
        if self._file is None or not self.force_sync:
            return
        start_ms = self._clock_ms()
        self.fs.fdatasync(self._file)
        self.last_fsync_ms = elapsed_ms = self._clock_ms() - start_ms
        if self._fsync_time is not None:
            self._fsync_time.add(elapsed_ms)  # once per fsync, FileTxnLog.commit's FSYNC_TIME
        if elapsed_ms > self.fsync_warning_threshold_ms:
            self.fsync_threshold_exceeded += 1
            if self._metrics is not None:  # ServerStats.incrementFsyncThresholdExceedCount
                self._metrics.fsync_threshold_exceed_count += 1
            logger.warning(
                "fsync-ing the write ahead log in %s took %dms which will adversely effect operation "
                "latency.File size is %d bytes. See the ZooKeeper troubleshooting guide",
                threading.current_thread().name, elapsed_ms, self._file_size)

    def _write_batch(self, records: list[bytes]) -> None:
        assert self._file is not None
        size = self._file_size
        position = self._position
        for record in records:
            size = padded_file_size(position, size, self.pre_alloc_bytes)
            position += len(record)
        if size != self._file_size:
            self.fs.pwrite(self._file, b"\x00", size - 1)
            self._file_size = size
        _write_all(self.fs, self._file, b"".join(records), self._position)
        self._position = position

    def commit(self) -> int | None:
        """Write and fsync everything appended so far; returns the last zxid now durable.

        Runs on the single storage thread. Any OSError (disk full, I/O error) is a StorageError
        and the writer refuses further commits: the server must stop, as ZooKeeper exits.
        """
        if self._failed is not None:
            raise StorageError(self._failed)
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return None
        try:
            records: list[bytes] = []
            last_zxid = None
            for item in batch:
                if isinstance(item, _Roll):
                    if records:
                        self._write_batch(records)
                        records = []
                    self._close_file()
                    continue
                entry, zxid = item
                if self._file is None:
                    self._open(zxid)
                if zxid <= self._last_zxid_seen:
                    logger.warning("Current zxid 0x%x is <= 0x%x", zxid, self._last_zxid_seen)
                else:
                    self._last_zxid_seen = zxid
                records.append(encode_log_record(entry))
                last_zxid = zxid
            if records:
                self._write_batch(records)
            self._sync()
        except OSError as exc:
            where = f"{self._file_path} at offset {self._position}" if self._file_path else self.log_dir
            self._failed = f"txn log write to {where} failed: {exc.strerror}"
            raise StorageError(self._failed) from None
        if last_zxid is not None:
            self.last_committed_zxid = last_zxid
        return last_zxid

    def close(self) -> None:
        """Commit what is pending, then close the current file."""
        try:
            if self._failed is None:
                self.commit()
        finally:
            if self._file is not None:
                self.fs.close(self._file)
                self._file = None
                self._file_path = None


# ---- snapshots -----------------------------------------------------------------------------


def take_snapshot(tree: DataTree, disk: LocalDisk, *, digest_enabled: bool = True,
                  metrics: ServerMetrics | None = None) -> str:
    """Serialize and write a snapshot in one blocking call (start-up: loadData's takeSnapshot);
    `metrics.snapshottime` gets its ms (ZooKeeperServer.takeSnapshot's SNAPSHOT_TIME)."""
    started_ms = time.monotonic() * 1000
    serializer = SnapshotSerializer(tree)
    serializer.step(1 << 62)
    try:
        name = disk.write_snapshot(serializer.zxid, serializer.file_chunks(digest_enabled=digest_enabled),
                                   fsync=False)
    except OSError as exc:
        raise StorageError(f"cannot write a snapshot in {disk.snap_dir}: {exc.strerror}") from None
    if metrics is not None:
        metrics.snapshottime.add(time.monotonic() * 1000 - started_ms)
    return name


async def take_snapshot_async(tree: DataTree, disk: LocalDisk, executor: Executor, *,
                              digest_enabled: bool = True, txn_log: TxnLogWriter | None = None,
                              step_nodes: int = SNAPSHOT_STEP_NODES, metrics: ServerMetrics | None = None) -> str:
    """A snapshot while the server runs: serialize in steps on the loop, write in a thread. It
    is exact at its zxid (the tree keeps the old state of what txns change meanwhile), where
    ZooKeeper's are fuzzy; either kind is read the same way.

    Rolls `txn_log` first (SyncRequestProcessor rolls the log when it starts a snapshot).
    `metrics.snapshottime` gets the ms from the first step to the file written (recorded on
    the loop).
    """
    started_ms = time.monotonic() * 1000
    if txn_log is not None:
        txn_log.roll()
    serializer = SnapshotSerializer(tree, exact=True)
    try:
        while not serializer.step(step_nodes):
            await asyncio.sleep(SNAPSHOT_STEP_PAUSE_S)
    finally:
        serializer.abandon()  # cancelled (shutdown): the tree stops keeping old node states
    loop = asyncio.get_running_loop()

    def seal_and_write() -> str:
        return disk.write_snapshot(serializer.zxid, serializer.file_chunks(digest_enabled=digest_enabled),
                                   fsync=False)

    try:
        name = await loop.run_in_executor(executor, seal_and_write)
    except OSError as exc:
        raise StorageError(f"cannot write a snapshot in {disk.snap_dir}: {exc.strerror}") from None
    if metrics is not None:
        metrics.snapshottime.add(time.monotonic() * 1000 - started_ms)
    return name


# ---- epoch files ---------------------------------------------------------------------------


def read_epoch(data_dir: str | os.PathLike[str], name: str, fs: FileSystem = OS_FILE_SYSTEM) -> int | None:
    """acceptedEpoch / currentEpoch in dataDir/version-2: ASCII decimal; None when missing."""
    path = Path(data_dir) / VERSION_DIR / name
    try:
        text = fs.read(path).decode("ascii").splitlines()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise StorageError(f"cannot read {path}: {exc}") from None
    try:
        return int(text[0]) if text else int("")
    except ValueError:
        raise StorageError(f"{path} does not hold an epoch number") from None


def write_epoch(data_dir: str | os.PathLike[str], name: str, epoch: int, fs: FileSystem = OS_FILE_SYSTEM) -> None:
    """Write an epoch file as QuorumPeer.writeLongToFile: no newline, tmp + fsync + rename."""
    path = version_dir(data_dir, fs) / name
    try:
        write_file_atomically(path, [str(epoch).encode("ascii")], fs=fs)
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror}") from None


# ---- purge ---------------------------------------------------------------------------------


def purge(data_dir: str | os.PathLike[str], data_log_dir: str | os.PathLike[str] | None,
          snap_retain_count: int, fs: FileSystem = OS_FILE_SYSTEM) -> list[Path]:
    """PurgeTxnLog.purge: keep the newest snap_retain_count snapshots and the logs they need."""
    disk = LocalDisk(data_dir, data_log_dir, fs=fs)
    snapshots = disk.snapshot_names()
    newest_first = sorted_by_zxid(snapshots, SNAPSHOT_PREFIX, newest_first=True)
    valid: list[str] = []
    for name in newest_first:  # FileTxnSnapLog.findNValidSnapshots
        if len(valid) == snap_retain_count:
            break
        if disk.snapshot_looks_valid(name):
            valid.append(name)
    removed: list[Path] = []
    for name in purge_candidates(valid, disk.log_names(), snapshots, snap_retain_count):
        path = Path(disk.describe(name))
        logger.info("Removing file: %s", path)
        try:
            fs.unlink(path)
        except OSError as exc:
            logger.warning("Failed to remove %s: %s", path, exc.strerror)
            continue
        removed.append(path)
    return removed
