"""The file-system calls storage makes, behind one small interface: the OS's, or a simulated one.

pyzk/storage/files.py does all of its I/O through a `FileSystem`, so the simulator runs the
real txn log writer, snapshot writer, epoch files, recovery and purge on `MemoryFileSystem`,
a byte-level disk that can lose power.

MemoryFileSystem's crash model (what `power_cut` leaves; POSIX promises no more):
Rule 1: file data survives as of the last fdatasync; the writes made after it reach the disk
        in order and the power cuts one of them at a random byte (a torn tail): the writes
        before it survive, the ones after do not. Per file, independently of every other file
        (no order between files). (Writes over bytes an earlier unsynced write changed are
        rare here: log records, padding and new files; their survivors show the later bytes.)
Rule 2: creating, renaming and deleting names are durable once the folder is fsynced; of the
        changes made since, a random prefix, in order, survives.
Rule 3: `ops_left` counts the mutating calls still allowed before the power goes: the call
        that finds it at 0 raises PowerCut, so a write is interrupted between any two calls.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Protocol


class FileSystem(Protocol):
    """Paths are absolute; a handle is what open_new returned (an OS file descriptor)."""

    def listdir(self, folder: PurePath) -> list[str]: ...
    def make_dirs(self, folder: PurePath) -> None: ...
    def is_writable_dir(self, folder: PurePath) -> bool: ...
    def size(self, path: PurePath) -> int: ...
    def read(self, path: PurePath, offset: int = 0, size: int = -1) -> bytes: ...
    def read_to_hole(self, path: PurePath) -> bytes: ...
    def open_new(self, path: PurePath) -> int: ...
    def pwrite(self, handle: int, data: bytes | memoryview, offset: int) -> int: ...
    def fdatasync(self, handle: int) -> None: ...
    def close(self, handle: int) -> None: ...
    def truncate(self, path: PurePath, size: int) -> None: ...
    def unlink(self, path: PurePath) -> None: ...
    def replace(self, source: PurePath, target: PurePath) -> None: ...
    def fsync_dir(self, folder: PurePath) -> None: ...


class OsFileSystem:
    """The real one."""

    def listdir(self, folder: PurePath) -> list[str]:
        return os.listdir(folder)

    def make_dirs(self, folder: PurePath) -> None:
        os.makedirs(folder, exist_ok=True)

    def is_writable_dir(self, folder: PurePath) -> bool:
        return os.access(folder, os.W_OK | os.X_OK)

    def size(self, path: PurePath) -> int:
        return os.stat(path).st_size

    def read(self, path: PurePath, offset: int = 0, size: int = -1) -> bytes:
        with open(path, "rb") as f:
            if offset:
                f.seek(offset)
            return f.read(size)

    def read_to_hole(self, path: PurePath) -> bytes:
        """The bytes up to the first hole (all of them where holes are not supported)."""
        with open(path, "rb") as f:
            try:
                end = os.lseek(f.fileno(), 0, os.SEEK_HOLE)  # moves the offset: back to 0
            except OSError:
                end = -1
            f.seek(0)
            return f.read(end)

    def open_new(self, path: PurePath) -> int:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)

    def pwrite(self, handle: int, data: bytes | memoryview, offset: int) -> int:
        return os.pwrite(handle, data, offset)

    def fdatasync(self, handle: int) -> None:
        os.fdatasync(handle)

    def close(self, handle: int) -> None:
        os.close(handle)

    def truncate(self, path: PurePath, size: int) -> None:
        with open(path, "r+b") as f:
            f.truncate(size)
            os.fsync(f.fileno())

    def unlink(self, path: PurePath) -> None:
        os.unlink(path)

    def replace(self, source: PurePath, target: PurePath) -> None:
        os.replace(source, target)

    def fsync_dir(self, folder: PurePath) -> None:
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


OS_FILE_SYSTEM = OsFileSystem()


class PowerCut(Exception):
    """The simulated power went while storage was writing (MemoryFileSystem Rule 3)."""


@dataclass(eq=False)
class _Inode:
    data: bytearray = field(default_factory=bytearray)
    durable_size: int = 0
    dirty_from: int | None = None  # lowest offset changed since the last fdatasync
    saved: bytes = b""  # the durable bytes from dirty_from to durable_size
    writes: list[tuple[int, int]] = field(default_factory=list)  # (offset, size) since then

    def write(self, data: bytes | memoryview, offset: int) -> None:
        # Invariant: dirty_from <= durable_size (only truncate shrinks a file, and it syncs);
        # a write past the end changes the file from its current end on.
        start = min(offset, len(self.data))
        if self.dirty_from is None:
            self.saved = bytes(self.data[start:self.durable_size])
            self.dirty_from = start
        elif start < self.dirty_from:
            self.saved = bytes(self.data[start:self.dirty_from]) + self.saved
            self.dirty_from = start
        end = offset + len(data)
        if end > len(self.data):
            self.data.extend(bytes(end - len(self.data)))
        self.data[offset:end] = data
        self.writes.append((offset, len(data)))

    def sync(self) -> None:
        self.durable_size = len(self.data)
        self.dirty_from = None
        self.saved = b""
        self.writes = []

    def tear(self, rng: random.Random) -> None:
        """Rule 1: the durable bytes, with the writes before the cut one and a prefix of it."""
        start = self.dirty_from
        if start is None:
            return
        after = bytearray(self.data[:start]) + self.saved
        cut_write = rng.randrange(len(self.writes)) if self.writes else 0
        for i, (offset, size) in enumerate(self.writes[:cut_write + 1]):
            if i == cut_write:
                size = rng.randint(0, size)
            end = offset + size
            if end > len(after):
                after.extend(bytes(end - len(after)))
            after[offset:end] = self.data[offset:end]
        self.data = after
        self.sync()


class MemoryFileSystem:
    """A simulated disk (see the module rules). Not thread-safe: the simulator is one thread."""

    def __init__(self) -> None:
        self.dirs: set[str] = {"/"}
        self.names: dict[str, _Inode] = {}  # path -> inode, as the running process sees them
        self.durable_names: dict[str, _Inode] = {}  # ... as they would be after a power cut
        self.pending: dict[str, list[tuple[str, str, _Inode | None]]] = {}  # folder -> name changes
        self.handles: dict[int, _Inode] = {}
        self._next_handle = 3
        self.ops_left: int | None = None  # Rule 3; None: no cut planned
        self.fsyncs = 0

    # ---- reads ---------------------------------------------------------------------------

    def _inode(self, path: PurePath) -> _Inode:
        inode = self.names.get(str(path))
        if inode is None:
            raise FileNotFoundError(2, "No such file or directory", str(path))
        return inode

    def listdir(self, folder: PurePath) -> list[str]:
        prefix = str(folder).rstrip("/") + "/"
        if str(folder) not in self.dirs:
            raise FileNotFoundError(2, "No such file or directory", str(folder))
        return sorted(p[len(prefix):] for p in self.names if p.startswith(prefix) and "/" not in p[len(prefix):])

    def is_writable_dir(self, folder: PurePath) -> bool:
        return str(folder) in self.dirs

    def size(self, path: PurePath) -> int:
        return len(self._inode(path).data)

    def read(self, path: PurePath, offset: int = 0, size: int = -1) -> bytes:
        data = self._inode(path).data
        return bytes(data[offset:] if size < 0 else data[offset:offset + size])

    def read_to_hole(self, path: PurePath) -> bytes:
        return self.read(path)

    # ---- writes --------------------------------------------------------------------------

    def _op(self) -> None:
        if self.ops_left is not None:
            if self.ops_left <= 0:
                raise PowerCut()
            self.ops_left -= 1

    def _change_name(self, path: str, inode: _Inode | None) -> None:
        folder, _, name = path.rpartition("/")
        if inode is None:
            self.names.pop(path, None)
        else:
            self.names[path] = inode
        self.pending.setdefault(folder or "/", []).append(("set", path, inode))

    def make_dirs(self, folder: PurePath) -> None:
        path = PurePath(folder)
        for p in [path, *path.parents]:
            self.dirs.add(str(p))  # folders themselves are durable at once: made at start-up only

    def open_new(self, path: PurePath) -> int:
        self._op()
        if str(path.parent) not in self.dirs:
            raise FileNotFoundError(2, "No such file or directory", str(path))
        inode = _Inode()
        self._change_name(str(path), inode)
        handle = self._next_handle
        self._next_handle += 1
        self.handles[handle] = inode
        return handle

    def pwrite(self, handle: int, data: bytes | memoryview, offset: int) -> int:
        self._op()
        self.handles[handle].write(data, offset)
        return len(data)

    def fdatasync(self, handle: int) -> None:
        self._op()
        self.handles[handle].sync()
        self.fsyncs += 1

    def close(self, handle: int) -> None:
        self.handles.pop(handle, None)

    def truncate(self, path: PurePath, size: int) -> None:
        self._op()
        inode = self._inode(path)
        if size < len(inode.data):
            del inode.data[size:]
        else:
            inode.data.extend(bytes(size - len(inode.data)))
        if inode.dirty_from is not None and inode.dirty_from > size:
            inode.dirty_from = None
        inode.sync()  # truncate then fsync, as OsFileSystem.truncate

    def unlink(self, path: PurePath) -> None:
        self._op()
        self._inode(path)
        self._change_name(str(path), None)

    def replace(self, source: PurePath, target: PurePath) -> None:
        self._op()
        inode = self._inode(source)
        self._change_name(str(source), None)
        self._change_name(str(target), inode)

    def fsync_dir(self, folder: PurePath) -> None:
        self._op()
        for _, path, inode in self.pending.pop(str(folder), []):
            _set(self.durable_names, path, inode)

    # ---- power ---------------------------------------------------------------------------

    def power_cut(self, rng: random.Random) -> None:
        """What the disk holds when the machine comes back (module rules 1 and 2)."""
        for folder in sorted(self.pending):
            changes = self.pending[folder]
            for _, path, inode in changes[:rng.randint(0, len(changes))]:
                _set(self.durable_names, path, inode)
        self.pending.clear()
        self.handles.clear()
        self.ops_left = None
        torn: set[int] = set()
        for path in sorted(self.durable_names):
            inode = self.durable_names[path]
            if id(inode) not in torn:
                torn.add(id(inode))
                inode.tear(rng)
        self.names = dict(self.durable_names)

    def torn_bytes(self) -> int:
        """Bytes written but not yet fsynced, over every file (a power cut may lose them)."""
        return sum(len(i.data) - i.dirty_from for i in set(self.names.values()) if i.dirty_from is not None)


def _set(names: dict[str, _Inode], path: str, inode: _Inode | None) -> None:
    if inode is None:
        names.pop(path, None)
    else:
        names[path] = inode
