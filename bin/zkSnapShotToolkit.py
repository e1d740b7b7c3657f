#!/usr/bin/env python3
"""zkSnapShotToolkit.sh for pyzk: Apache ZooKeeper 3.8's SnapshotFormatter (pyzk/tools/snapshot.py).

    bin/zkSnapShotToolkit.py [-d|-json] snapshot_file
SnapshotFormatter's output and exit codes.
"""

import sys
from pathlib import Path

# Run from a checkout without installing: the project root holds the pyzk and jute packages.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyzk.tools.snapshot import main

if __name__ == "__main__":
    sys.exit(main())
