"""zkSnapShotToolkit.sh for pyzk: Apache ZooKeeper 3.8's SnapshotFormatter, option for option.

    zkSnapShotToolkit [-d|-json] snapshot_file
      (no option) every znode's Stat and data length, the sessions, the last zxid;
      -d the data (base64) instead of the length; -json the tree in ncdu's JSON format.
(`zkSnapShotToolkit` is the console script of an installed wheel; bin/zkSnapShotToolkit.py in a checkout.)

Rule 1: stdout, stderr and the exit code are SnapshotFormatter's: the same lines for the
        same file (znodes depth first in Apache's child order, sessions in the iteration
        order of the HashMap<Long, Integer> SnapshotFormatter loads them into, dates as
        Date.toString prints them in the local time zone), exit 2 for a bad command line or
        a missing/unreadable file, 1 (with `Exception in thread "main" ...` and no stack
        trace) for a file that is not a snapshot.
Rule 2: -json's "timestamp" is the clock when the tool runs, as Apache's; the rest is
        deterministic ("ino" counts from 1001 in print order).
Rule 3: the loaded snapshot digest is not printed: SnapshotFormatter's FileSnap.deserialize
        never reads it, so its "Target zxid digest" line never appears.
"""

from __future__ import annotations

import base64
import gzip
import os
import re
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

from pyzk.storage.errors import SnapshotFormatError
from pyzk.storage.snapshot_format import LoadedSnapshot, parse_snapshot
from pyzk.tools.javatext import date_to_string, hex_016, java_absolute_path, json_quote
from pyzk.tree.datatree import DataTree
from pyzk.tree.javaorder import long_hash_map_order

EXIT_OK = 0
EXIT_UNEXPECTED_ERROR = 1
EXIT_INVALID_INVOCATION = 2
USAGE = ("USAGE: SnapshotFormatter [-d|-json] snapshot_file\n"
         "       -d dump the data for each znode\n"
         "       -json dump znode info in json format\n")
BOTH_MODES = "Cannot specify both data dump (-d) and json mode (-json) in same call\n"
SNAPSHOT_PREFIX = "snapshot"
INODE_FIRST = 1001  # SnapshotFormatter.INODE_IDX = 1000, incremented before each use
_HEX_LONG = re.compile(r"[+-]?[0-9a-fA-F]+")
_LONG_MAX = (1 << 63) - 1


def zxid_from_name(name: str, prefix: str = SNAPSHOT_PREFIX) -> int:
    """Util.getZxidFromName: the hex after `prefix.`, -1 when there is none."""
    parts = name.split(".")
    if len(parts) >= 2 and parts[0] == prefix and _HEX_LONG.fullmatch(parts[1]):
        value = int(parts[1], 16)
        if -_LONG_MAX - 1 <= value <= _LONG_MAX:
            return value
    return -1


def node_lines(tree: DataTree, dump_data: bool, local_time: Callable[[int], datetime]) -> Iterator[str]:
    """printZnode for every znode, depth first: the lines after "ZNode Details"."""
    for path, node in tree.walk():  # the StatPersisted fields as stored, not a client's Stat
        yield "----"
        yield path
        yield f"  cZxid = {hex_016(node.czxid)}"
        yield f"  ctime = {date_to_string(local_time(node.ctime))}"
        yield f"  mZxid = {hex_016(node.mzxid)}"
        yield f"  mtime = {date_to_string(local_time(node.mtime))}"
        yield f"  pZxid = {hex_016(node.pzxid)}"
        yield f"  cversion = {node.cversion}"
        yield f"  dataVersion = {node.version}"
        yield f"  aclVersion = {node.aversion}"
        yield f"  ephemeralOwner = {hex_016(node.ephemeral_owner)}"
        if dump_data:
            yield "  data = " + (base64.b64encode(node.data).decode("ascii") if node.data is not None else "")
        else:
            yield f"  dataLength = {len(node.data) if node.data is not None else 0}"


def details(loaded: LoadedSnapshot, file_name: str, dump_data: bool,
            local_time: Callable[[int], datetime]) -> str:
    """SnapshotFormatter.printDetails."""
    tree = loaded.tree
    # DataTree.deserialize keeps the root under "" and "/": getNodeCount counts it twice.
    lines = [f"ZNode Details (count={len(tree.nodes) + 1}):"]
    lines.extend(node_lines(tree, dump_data, local_time))
    lines.append("----")
    lines.append("Session Details (sid, timeout, ephemeralCount):")
    for session_id in long_hash_map_order(loaded.sessions):
        timeout_ms = loaded.sessions[session_id]
        lines.append(f"{hex_016(session_id)}, {timeout_ms}, {len(tree.ephemerals_of(session_id))}")
    tree_zxid = max((max(node.mzxid, node.pzxid) for _, node in tree.walk()), default=0)
    last_zxid = max(zxid_from_name(file_name), tree_zxid)
    lines.append("----")
    lines.append(f"Last zxid: 0x{last_zxid & 0xFFFF_FFFF_FFFF_FFFF:x}")
    return "\n".join(lines) + "\n"


def ncdu_json(tree: DataTree, timestamp_ms: int) -> str:
    """SnapshotFormatter.printSnapshotJson: ncdu's export format, no newline at the end."""
    out = [f'[1,0,{{"progname":"SnapshotFormatter.java","progver":"0.01","timestamp":{timestamp_ms}}}']
    inode = INODE_FIRST

    def visit(path: str) -> None:
        nonlocal inode
        node = tree.nodes[path]
        name = path if path == "/" else path[path.rfind("/") + 1:]
        size = len(node.data) if node.data is not None else 0
        entry = (f'{{"name":"{json_quote(name)}","asize":{size},"dsize":{size},"dev":0,'
                 f'"ino":{inode}}}')
        inode += 1
        out.append(",")
        children = node.list_children()
        if children:
            out.append("[" + entry)
            for child in children:
                visit(("" if path == "/" else path) + "/" + child)
            out.append("]")
        else:
            out.append(entry)

    visit("/")
    out.append("]")
    return "".join(out)


def parse_args(argv: list[str]) -> tuple[str | None, bool, bool, bool]:
    """SnapshotFormatter.main's loop: (file, dump data, json, the arguments are valid)."""
    dump_data = dump_json = False
    snapshot_file = None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "-d":
            dump_data = True
        elif arg == "-json":
            dump_json = True
        else:
            snapshot_file = arg
            i += 1
            break
        i += 1
    return snapshot_file, dump_data, dump_json, i == len(argv) and snapshot_file is not None


def validate_file_input(file_path: str) -> str | None:
    """ZKUtil.validateFileInput."""
    path = Path(file_path)
    absolute = java_absolute_path(file_path, os.getcwd())
    if not path.exists():
        return f"File '{absolute}' does not exist."
    if not os.access(path, os.R_OK):
        return f"Read permission is denied on the file '{absolute}'"
    if path.is_dir():
        return f"'{absolute}' is a directory. it must be a file."
    return None


def read_snapshot(path: Path) -> LoadedSnapshot:
    """SnapStream.getInputStream (by the name's extension), then FileSnap.deserialize."""
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        raw = gzip.decompress(raw)
    elif path.name.endswith(".snappy"):
        raise OSError("snappy-compressed snapshots are not supported by pyzk")
    return parse_snapshot(raw, extended_types_enabled=True)


def local_time(ms: int) -> datetime:
    return datetime.fromtimestamp(ms // 1000).astimezone()


def run(argv: list[str], out: Callable[[str], None], err: Callable[[str], None],
        now_ms: Callable[[], int]) -> int:
    """SnapshotFormatter.main; returns the exit code."""
    snapshot_file, dump_data, dump_json, valid = parse_args(argv)
    if not valid or snapshot_file is None:
        err(USAGE)
        return EXIT_INVALID_INVOCATION
    error = validate_file_input(snapshot_file)
    if error is not None:
        err(error + "\n")
        return EXIT_INVALID_INVOCATION
    if dump_data and dump_json:
        err(BOTH_MODES)
        return EXIT_INVALID_INVOCATION
    path = Path(snapshot_file)
    try:
        loaded = read_snapshot(path)
    except (OSError, EOFError, SnapshotFormatError, zlib.error) as exc:
        err(f'Exception in thread "main" java.io.IOException: {exc}\n')
        return EXIT_UNEXPECTED_ERROR
    if dump_json:
        out(ncdu_json(loaded.tree, now_ms()))
    else:
        out(details(loaded, path.name, dump_data, local_time))
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    stdout = sys.stdout.buffer
    stderr = sys.stderr.buffer

    def out(text: str) -> None:
        stdout.write(text.encode("utf-8", "replace"))

    def err(text: str) -> None:
        stderr.write(text.encode("utf-8", "replace"))

    try:
        return run(sys.argv[1:] if argv is None else argv, out, err, lambda: time.time_ns() // 1_000_000)
    finally:
        stdout.flush()
        stderr.flush()


if __name__ == "__main__":
    sys.exit(main())
