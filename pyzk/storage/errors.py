"""StorageError: why pyzk refuses to start on (or stops writing to) a data directory.

Rule: the message is one line that names the file and, where it applies, the byte offset;
the server prints it and exits without a traceback, as ZooKeeper refuses a corrupt dataDir.
"""

from __future__ import annotations


class StorageError(Exception):
    """A data directory pyzk must not serve from, or a write it could not make durable."""


class DatadirError(StorageError):
    """FileTxnSnapLog.DatadirException: dataDir or dataLogDir cannot be created or written, is
    missing with zookeeper.datadir.autocreate=false, or holds the other's files. The server
    exits with ExitCode.UNABLE_TO_ACCESS_DATADIR (3), as ZooKeeperServerMain/QuorumPeerMain do."""


class SnapshotFormatError(ValueError):
    """One snapshot's bytes are not a valid snapshot; recovery falls back to an older one."""
