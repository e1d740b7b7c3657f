"""zkCleanup.sh for pyzk: keep the newest -n snapshots (at least 3) and the logs they need.

    zkCleanup [-n count] [dataLogDir] [snapDir]     (PurgeTxnLog's arguments)
    zkCleanup -n 3 -c conf/zoo.cfg                  (the folders from zoo.cfg)

(`zkCleanup` is the console script of an installed wheel; bin/zkCleanup.py in a checkout.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pyzk.storage.errors import StorageError
from pyzk.storage.files import purge
from pyzk.storage.layout import SNAP_RETAIN_COUNT_MIN


def dirs_from_cfg(cfg: Path) -> tuple[str, str]:
    values: dict[str, str] = {}
    for line in cfg.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.strip().startswith("#"):
            values[key.strip()] = value.strip()
    data_dir = values["dataDir"]
    return values.get("dataLogDir", data_dir), data_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--count", type=int, default=SNAP_RETAIN_COUNT_MIN)
    parser.add_argument("-c", "--config", type=Path, help="zoo.cfg holding dataDir/dataLogDir")
    parser.add_argument("data_log_dir", nargs="?")
    parser.add_argument("snap_dir", nargs="?")
    args = parser.parse_args(argv)
    if args.config is not None:
        log_dir, snap_dir = dirs_from_cfg(args.config)
    elif args.data_log_dir:
        log_dir, snap_dir = args.data_log_dir, args.snap_dir or args.data_log_dir
    else:
        parser.error("give dataLogDir [snapDir] or -c zoo.cfg")
    if args.count < SNAP_RETAIN_COUNT_MIN:
        print(f"error: -n must be at least {SNAP_RETAIN_COUNT_MIN}", file=sys.stderr)
        return 1
    try:
        for path in purge(snap_dir, log_dir, args.count):
            print(f"Removing file: {path}")
    except (OSError, KeyError, StorageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
