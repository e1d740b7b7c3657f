#!/usr/bin/env python3
"""zkSnapShotToolkit.sh for pyzk: print a snapshot's nodes and sessions (SnapshotFormatter).

    bin/zkSnapShotToolkit.py [-d] version-2/snapshot.100000000
Exit status 1 with a one-line message for an unreadable or corrupt file.
"""

import sys
from pathlib import Path

# Run from a checkout without installing: the project root holds the pyzk and jute packages.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyzk.tools.snapshot import main

if __name__ == "__main__":
    sys.exit(main())
