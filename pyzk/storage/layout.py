"""Data directory layout: version-2 folders, file names, and which files a purge removes.

Rule 1: a file's zxid is the lowercase hex after "<prefix>." (Util.getZxidFromName); a name
        that does not parse is not a ZooKeeper file and is never touched.
Rule 2: files are ordered by that zxid, never lexically.
Rule 3: purge keeps the newest snapRetainCount valid snapshots, every log file from the one
        that covers the oldest kept snapshot onwards, and removes only older files
        (PurgeTxnLog.purgeOlderSnapshots).
"""

from __future__ import annotations

VERSION_DIR = "version-2"
LOG_PREFIX = "log"
SNAPSHOT_PREFIX = "snapshot"
ACCEPTED_EPOCH_FILE = "acceptedEpoch"
CURRENT_EPOCH_FILE = "currentEpoch"
INITIALIZE_MARKER = "initialize"
SNAP_RETAIN_COUNT_MIN = 3  # PurgeTxnLog refuses fewer


def log_name(zxid: int) -> str:
    return f"{LOG_PREFIX}.{zxid:x}"


def snapshot_name(zxid: int, compression_suffix: str = "") -> str:
    return f"{SNAPSHOT_PREFIX}.{zxid:x}{compression_suffix}"


def zxid_from_name(name: str, prefix: str) -> int:
    """The zxid in a file name, or -1 if the name is not "<prefix>.<hex>[.<suffix>]"."""
    parts = name.split(".")
    if len(parts) < 2 or parts[0] != prefix:
        return -1
    try:
        return int(parts[1], 16)
    except ValueError:
        return -1


def sorted_by_zxid(names: list[str], prefix: str, *, newest_first: bool = False) -> list[str]:
    """The names of `prefix` files, ordered by the zxid in their names."""
    ours = [n for n in names if zxid_from_name(n, prefix) >= 0]
    return sorted(ours, key=lambda n: zxid_from_name(n, prefix), reverse=newest_first)


def logs_covering(log_names: list[str], zxid: int) -> list[str]:
    """The log files needed to replay from `zxid` on (FileTxnLog.getLogFiles), oldest first."""
    ordered = sorted_by_zxid(log_names, LOG_PREFIX)
    start = 0
    for name in ordered:
        file_zxid = zxid_from_name(name, LOG_PREFIX)
        if file_zxid > zxid:
            break
        start = max(start, file_zxid)
    return [n for n in ordered if zxid_from_name(n, LOG_PREFIX) >= start]


def purge_candidates(valid_snapshots_newest_first: list[str], log_names: list[str],
                     snapshot_names: list[str], snap_retain_count: int) -> list[str]:
    """Files PurgeTxnLog.purge deletes: older than the oldest retained snapshot, bar its logs."""
    if snap_retain_count < SNAP_RETAIN_COUNT_MIN:
        raise ValueError(f"snapRetainCount must be at least {SNAP_RETAIN_COUNT_MIN}")
    kept = valid_snapshots_newest_first[:snap_retain_count]
    if not kept:
        return []
    least_zxid = zxid_from_name(kept[-1], SNAPSHOT_PREFIX)
    retained_logs = set(logs_covering(log_names, least_zxid))
    doomed = [n for n in sorted_by_zxid(log_names, LOG_PREFIX)
              if n not in retained_logs and zxid_from_name(n, LOG_PREFIX) < least_zxid]
    doomed += [n for n in sorted_by_zxid(snapshot_names, SNAPSHOT_PREFIX)
               if zxid_from_name(n, SNAPSHOT_PREFIX) < least_zxid]
    return doomed
