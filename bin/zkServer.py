#!/usr/bin/env python3
"""zkServer.sh for pyzk: start|start-foreground|stop|restart|status|version|print-cmd."""

import sys
from pathlib import Path

# Run from a checkout without installing: the project root holds the pyzk and jute packages.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyzk.cli import main

if __name__ == "__main__":
    sys.exit(main())
