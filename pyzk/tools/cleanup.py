"""zkCleanup.sh for pyzk: Apache ZooKeeper 3.8's PurgeTxnLog, keep the newest -n snapshots.

    zkCleanup dataLogDir [snapDir] -n count      PurgeTxnLog's arguments, exactly
    zkCleanup -n count                           zkCleanup.sh's: the folders of zoo.cfg
                                                 ($ZOOCFGDIR/$ZOOCFG, as zkServer finds it)
    zkCleanup -n count dataLogDir [snapDir]      pyzk's older forms, still accepted
    zkCleanup -c zoo.cfg [-n count]
(`zkCleanup` is the console script of an installed wheel; bin/zkCleanup.py in a checkout.)

Rule 1: every form ends in PurgeTxnLog.main's: the same usage text (stdout), messages
        (stderr) and exit codes (1 for bad arguments, 0 otherwise), and one line per removed
        file, `Removing file: <modification time, DateFormat MEDIUM>\\t<path>`, logs before
        snapshots, each folder in directory order (File.listFiles, as os.listdir reads it).
Rule 2: the files removed are PurgeTxnLog's: snapshots older than the oldest of the newest
        `count` valid ones, and logs older than it except the last log that starts at or
        before it (FileTxnLog.getLogFiles), by name prefix as Apache filters them.
Rule 3: PurgeTxnLog's log lines (LOG.info) go to pyzk's logger at INFO, not stdout.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

from pyzk.storage.errors import StorageError
from pyzk.storage.files import LocalDisk
from pyzk.storage.layout import VERSION_DIR, logs_covering
from pyzk.tools.javatext import java_absolute_path, java_file_path, medium_datetime
from pyzk.tools.snapshot import zxid_from_name

logger = logging.getLogger("pyzk.tools.cleanup")

EXIT_OK = 0
EXIT_UNEXPECTED_ERROR = 1
COUNT_MIN = 3
COUNT_ERR_MSG = "count should be greater than or equal to 3"
USAGE = ("Usage:\n"
         "PurgeTxnLog dataLogDir [snapDir] -n count\n"
         "\tdataLogDir -- path to the txn log directory\n"
         "\tsnapDir -- path to the snapshot directory\n"
         "\tcount -- the number of old snaps/logs you want to keep, value should be greater than or equal to 3\n")
LOG_PREFIX = "log"
SNAPSHOT_PREFIX = "snapshot"
_INT_TEXT = re.compile(r"[+-]?[0-9]+")


class UsageExit(Exception):
    """printUsageThenExit: the usage on stdout, exit 1 (after an optional stderr line)."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or "")
        self.message = message


def doomed_files(log_listing: list[str], snap_listing: list[str], oldest_kept_snapshot: str) -> tuple[list[str], list[str]]:
    """PurgeTxnLog.purgeOlderSnapshots' choice (Rule 2): (logs, snapshots), in listing order."""
    least = zxid_from_name(oldest_kept_snapshot, SNAPSHOT_PREFIX)
    kept_logs = set(logs_covering(log_listing, least))  # FileTxnLog.getLogFiles

    def older(prefix: str, name: str) -> bool:
        return name.startswith(prefix + ".") and zxid_from_name(name, prefix) < least

    logs = [n for n in log_listing if older(LOG_PREFIX, n) and n not in kept_logs]
    snapshots = [n for n in snap_listing if older(SNAPSHOT_PREFIX, n)]
    return logs, snapshots


def newest_valid_snapshots(disk: LocalDisk, snap_listing: list[str], count: int) -> list[str]:
    """FileSnap.findNValidSnapshots: newest first, at most `count`."""
    newest_first = sorted(snap_listing, key=lambda n: zxid_from_name(n, SNAPSHOT_PREFIX), reverse=True)
    valid: list[str] = []
    for name in newest_first:
        if zxid_from_name(name, SNAPSHOT_PREFIX) >= 0 and disk.snapshot_looks_valid(name):
            valid.append(name)
            if len(valid) == count:
                break
    return valid


def purge(data_log_dir: str, snap_dir: str, count: int, out: Callable[[str], None],
          err: Callable[[str], None]) -> None:
    """PurgeTxnLog.purge over the two folders (FileTxnSnapLog creates version-2 if missing)."""
    disk = LocalDisk(snap_dir, data_log_dir)
    log_dir, snap_version_dir = java_file_path(data_log_dir) + "/" + VERSION_DIR, java_file_path(snap_dir) + "/" + VERSION_DIR
    log_listing, snap_listing = os.listdir(log_dir), os.listdir(snap_version_dir)
    kept = newest_valid_snapshots(disk, snap_listing, count)
    if not kept:
        return
    logs, snapshots = doomed_files(log_listing, snap_listing, kept[-1])
    for folder, name in [(log_dir, n) for n in logs] + [(snap_version_dir, n) for n in snapshots]:
        path = f"{folder}/{name}"
        mtime = datetime.fromtimestamp(os.stat(path).st_mtime).astimezone()
        message = f"Removing file: {medium_datetime(mtime)}\t{path}"
        logger.info(message)
        out(message + "\n")
        try:
            os.unlink(path)
        except OSError:
            err(f"Failed to remove {path}\n")


def _existing(path: str) -> str:
    """validateAndGetFile; the message names File.getAbsolutePath (no .. resolved)."""
    if not Path(path).exists():
        raise UsageExit(f"Path '{java_absolute_path(path, os.getcwd())}' does not exist. ")
    return path


def _count(text: str) -> int:
    """validateAndGetCount: Integer.parseInt, then at least 3."""
    if not _INT_TEXT.fullmatch(text) or not -(1 << 31) <= int(text) < (1 << 31):
        raise UsageExit(f"'{text}' can not be parsed to integer.")
    value = int(text)
    if value < COUNT_MIN:
        raise UsageExit(COUNT_ERR_MSG)
    return value


def purge_txn_log(args: list[str], out: Callable[[str], None], err: Callable[[str], None]) -> int:
    """PurgeTxnLog.main; returns the exit code."""
    try:
        if not 3 <= len(args) <= 4:
            raise UsageExit()
        data_dir = _existing(args[0])
        snap_dir = data_dir
        if len(args) == 3:
            option, count = args[1], _count(args[2])
        else:
            snap_dir = _existing(args[1])
            option, count = args[2], _count(args[3])
        if option != "-n":
            raise UsageExit()
    except UsageExit as exc:
        if exc.message:
            err(exc.message + "\n")
        out(USAGE)
        return EXIT_UNEXPECTED_ERROR
    try:
        purge(data_dir, snap_dir, count, out, err)
    except (OSError, StorageError) as exc:
        err(f'Exception in thread "main" java.io.IOException: {exc}\n')
        return EXIT_UNEXPECTED_ERROR
    return EXIT_OK


def dirs_from_cfg(cfg: Path) -> tuple[str, str]:
    """zkCleanup.sh's grep of zoo.cfg: (dataLogDir or dataDir, dataDir)."""
    values: dict[str, str] = {}
    for line in cfg.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.strip().startswith("#"):
            values[key.strip()] = value.strip()
    data_dir = values["dataDir"]
    return values.get("dataLogDir", data_dir), data_dir


def purge_arguments(argv: list[str], environ: Mapping[str, str]) -> list[str]:
    """Every accepted form (module docstring) as PurgeTxnLog's arguments."""
    args = list(argv)
    config: Path | None = None
    if len(args) >= 2 and args[0] in ("-c", "--config"):
        config, args = Path(args[1]), args[2:]
        if not args:
            args = ["-n", str(COUNT_MIN)]
    if not args or args[0] != "-n":
        return args  # PurgeTxnLog's own form (or nonsense it reports)
    count_args, dirs = args[:2], args[2:]
    if not dirs:
        if config is None:
            from pyzk.cli import Invocation, find_config

            config = find_config(Invocation("cleanup", None, {}, None), environ)
        log_dir, data_dir = dirs_from_cfg(config)
        dirs = [data_dir] if log_dir == data_dir else [log_dir, data_dir]
    return dirs + count_args


def main(argv: list[str] | None = None) -> int:
    stdout = sys.stdout.buffer
    stderr = sys.stderr.buffer

    def out(text: str) -> None:
        stdout.write(text.encode("utf-8", "replace"))

    def err(text: str) -> None:
        stdout.flush()
        stderr.write(text.encode("utf-8", "replace"))
        stderr.flush()

    try:
        try:
            args = purge_arguments(sys.argv[1:] if argv is None else argv, os.environ)
        except (OSError, KeyError) as exc:
            err(f"zkCleanup: cannot read the dataDir of zoo.cfg: {exc}\n")
            return EXIT_UNEXPECTED_ERROR
        return purge_txn_log(args, out, err)
    finally:
        stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
