"""Packaging tests: a wheel built, installed into a fresh venv and run. CI runs them in the
py311 tox env (about 7 s; the build backend comes from the package index); by hand:
`python -m pytest tests/packaging`.
"""

from __future__ import annotations

import sys
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[2]
if str(_REPO_ROOT) not in sys.path:
    # --import-mode=importlib does not put the rootdir on sys.path.
    sys.path.insert(0, str(_REPO_ROOT))
