#!/usr/bin/env python3
"""zkTxnLogToolkit.sh for pyzk: Apache ZooKeeper 3.8's TxnLogToolkit (pyzk/tools/txnlog.py).

    bin/zkTxnLogToolkit.py [-dhrvc] <txn_log_file_name> (-z <zxid>)
Dump (-d), CRC repair (-r, -y, -v), chop (-c -z); TxnLogToolkit's output and exit codes.
"""

import sys
from pathlib import Path

# Run from a checkout without installing: the project root holds the pyzk and jute packages.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyzk.tools.txnlog import main

if __name__ == "__main__":
    sys.exit(main())
