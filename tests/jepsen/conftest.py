"""The Jepsen-shaped suite's pytest entry: every test here is marked ``jepsen`` (and ``slow``).

Rule: tests/jepsen is outside tests/unit and pyproject's testpaths, so neither `pytest` nor
`pytest tests/unit` collects it; run it with `python -m pytest tests/jepsen -m jepsen`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_REPO_ROOT = Path(__file__).resolve().parents[2]
if str(_REPO_ROOT) not in sys.path:
    # --import-mode=importlib does not put the rootdir on sys.path.
    sys.path.insert(0, str(_REPO_ROOT))

_JEPSEN_DIR = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "jepsen: Jepsen-shaped safety runs on 3-server ensembles (slow)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _JEPSEN_DIR in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.jepsen)
            item.add_marker(pytest.mark.slow)
