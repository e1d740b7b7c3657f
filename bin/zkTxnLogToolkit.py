#!/usr/bin/env python3
"""zkTxnLogToolkit.sh for pyzk: print a txn log file, one line per txn (TxnLogToolkit.dump).

    bin/zkTxnLogToolkit.py [--no-digest] version-2/log.100000001
Exit status 1 with a one-line message for an unreadable or corrupt file.
"""

import sys
from pathlib import Path

# Run from a checkout without installing: the project root holds the pyzk and jute packages.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyzk.tools.txnlog import main

if __name__ == "__main__":
    sys.exit(main())
