"""zkTxnLogToolkit.sh for pyzk: print a txn log file, one line per txn (TxnLogToolkit.dump).

    zkTxnLogToolkit [--no-digest] version-2/log.100000001
Exit status 1 with a one-line message for an unreadable or corrupt file.
(`zkTxnLogToolkit` is the console script of an installed wheel; bin/zkTxnLogToolkit.py in a checkout.)
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from jute.codes import OpCode
from jute.primitives import JuteError
from pyzk.storage.errors import StorageError
from pyzk.storage.format import LogFileReader, decode_txn_entry


def op_name(txn_type: int) -> str:
    """Request.op2String spelling: CREATE_SESSION -> createSession."""
    try:
        words = OpCode(txn_type).name.lower().split("_")
    except ValueError:
        return f"unknown {txn_type}"
    return words[0] + "".join(w.capitalize() for w in words[1:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("txn_log", type=Path)
    parser.add_argument("--no-digest", action="store_true", help="do not print txn digests")
    args = parser.parse_args(argv)
    try:
        data = args.txn_log.read_bytes()
        reader = LogFileReader(data, str(args.txn_log))
        count = 0
        print("ZooKeeper Transactional Log File with dbid 0 txnlog format version 2")
        for offset, entry in reader:
            try:
                hdr, txn, digest = decode_txn_entry(entry)
            except JuteError as exc:
                raise StorageError(f"{args.txn_log}: unreadable txn at offset {offset}: {exc}") from None
            when = datetime.fromtimestamp(hdr.time / 1000).strftime("%m/%d/%y, %I:%M:%S %p")
            line = (f"{when} session 0x{hdr.clientId & (2**64 - 1):x} cxid 0x{hdr.cxid & (2**32 - 1):x} "
                    f"zxid 0x{hdr.zxid:x} {op_name(hdr.type)} {txn if txn is not None else ''}")
            if digest is not None and not args.no_digest:
                line += f" digest {digest.version}, {digest.treeDigest}"
            print(line.rstrip())
            count += 1
        tail = " (torn tail after the last record)" if reader.torn else ""
        print(f"EOF reached after {count} txns.{tail}")
    except (OSError, StorageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
