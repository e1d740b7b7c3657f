"""StorageError: why pyzk refuses to start on (or stops writing to) a data directory.

Rule: the message is one line that names the file and, where it applies, the byte offset;
the server prints it and exits without a traceback, as ZooKeeper refuses a corrupt dataDir.
"""

from __future__ import annotations


class StorageError(Exception):
    """A data directory pyzk must not serve from, or a write it could not make durable."""


class SnapshotFormatError(ValueError):
    """One snapshot's bytes are not a valid snapshot; recovery falls back to an older one."""
