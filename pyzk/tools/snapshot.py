"""zkSnapShotToolkit.sh for pyzk: print a snapshot's nodes and sessions (SnapshotFormatter).

    zkSnapShotToolkit [-d] version-2/snapshot.100000000
Exit status 1 with a one-line message for an unreadable or corrupt file.
(`zkSnapShotToolkit` is the console script of an installed wheel; bin/zkSnapShotToolkit.py in a checkout.)
"""

from __future__ import annotations

import argparse
import base64
import gzip
import sys
from pathlib import Path

from pyzk.storage.errors import SnapshotFormatError
from pyzk.storage.layout import SNAPSHOT_PREFIX, zxid_from_name
from pyzk.storage.snapshot_format import parse_snapshot


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("snapshot", type=Path)
    parser.add_argument("-d", "--dump-data", action="store_true", help="print node data (base64)")
    args = parser.parse_args(argv)
    try:
        raw = args.snapshot.read_bytes()
        if args.snapshot.name.endswith(".gz"):
            raw = gzip.decompress(raw)
        loaded = parse_snapshot(raw, extended_types_enabled=True)
    except (OSError, EOFError, SnapshotFormatError) as exc:
        print(f"error: {args.snapshot}: {exc}", file=sys.stderr)
        return 1
    tree = loaded.tree
    print(f"ZNode Details (count={len(tree.nodes)}):")
    for path, node in tree.walk():
        stat = tree.stat_of(node)
        print("----")
        print(path)
        print(f"  cZxid = 0x{stat.czxid:x}")
        print(f"  ctime = {stat.ctime}")
        print(f"  mZxid = 0x{stat.mzxid:x}")
        print(f"  mtime = {stat.mtime}")
        print(f"  pZxid = 0x{stat.pzxid:x}")
        print(f"  cversion = {stat.cversion}")
        print(f"  dataVersion = {stat.version}")
        print(f"  aclVersion = {stat.aversion}")
        print(f"  ephemeralOwner = 0x{node.ephemeral_owner & (2**64 - 1):x}")
        print(f"  dataLength = {stat.dataLength}")
        print(f"  acl = {', '.join(f'{a.id.scheme}:{a.id.id}:{a.perms}' for a in node.acl)}")
        if args.dump_data and node.data is not None:
            print(f"  data = {base64.b64encode(node.data).decode('ascii')}")
    print("----")
    print("Session Details (sid, timeout, ephemeralCount):")
    for session_id, timeout_ms in loaded.sessions.items():
        print(f"0x{session_id & (2**64 - 1):x}, {timeout_ms}, {len(tree.ephemerals_of(session_id))}")
    print("----")
    print(f"Last zxid: 0x{max(zxid_from_name(args.snapshot.name, SNAPSHOT_PREFIX), 0):x}")
    if loaded.zxid_digest is not None:
        zd = loaded.zxid_digest
        print(f"Digest: zxid 0x{zd.zxid:x} version {zd.digest_version} digest {zd.digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
