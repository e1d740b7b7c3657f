#!/usr/bin/env python3
"""zkCleanup.sh for pyzk: Apache ZooKeeper 3.8's PurgeTxnLog (pyzk/tools/cleanup.py).

    bin/zkCleanup.py dataLogDir [snapDir] -n count     (PurgeTxnLog's arguments)
    bin/zkCleanup.py -n count                          (zkCleanup.sh's: the folders of zoo.cfg)
"""

import sys
from pathlib import Path

# Run from a checkout without installing: the project root holds the pyzk and jute packages.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyzk.tools.cleanup import main

if __name__ == "__main__":
    sys.exit(main())
