"""Chaos suites: servers killed with SIGKILL at random moments; every test is marked `chaos`.

Rule: the targets come from PYZK_TARGETS (default "apache,pyzk"), as in tests/compat.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_REPO_ROOT = Path(__file__).resolve().parents[2]
if str(_REPO_ROOT) not in sys.path:
    # --import-mode=importlib does not put the rootdir on sys.path.
    sys.path.insert(0, str(_REPO_ROOT))

_CHAOS_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _CHAOS_DIR in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.chaos)
