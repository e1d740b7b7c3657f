#!/usr/bin/env python3
"""The official ZooKeeper image's docker-entrypoint.sh for pyzk (pyzk.envconfig): write zoo.cfg
and myid from ZOO_* variables where missing, then exec the command given, e.g.
`bin/docker-entrypoint.py bin/zkServer.py start-foreground`."""

import sys
from pathlib import Path

# Run from a checkout without installing: the project root holds the pyzk and jute packages.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyzk.envconfig import entrypoint

if __name__ == "__main__":
    sys.exit(entrypoint())
