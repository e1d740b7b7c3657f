#!/usr/bin/env python3
"""zkCleanup.sh for pyzk: keep the newest -n snapshots (at least 3) and the logs they need.

    bin/zkCleanup.py [-n count] [dataLogDir] [snapDir]     (PurgeTxnLog's arguments)
    bin/zkCleanup.py -n 3 -c conf/zoo.cfg                  (the folders from zoo.cfg)
"""

import sys
from pathlib import Path

# Run from a checkout without installing: the project root holds the pyzk and jute packages.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyzk.tools.cleanup import main

if __name__ == "__main__":
    sys.exit(main())
