"""Packaging tests: a wheel built, installed into a fresh venv and run. Run by hand with
`python -m pytest tests/packaging` (needs the package index for the build backend); not in CI
yet: it passed alone in CI's environment but failed once inside the full compat run (the
installed venv lacked its console scripts), which is still being looked into.
"""

from __future__ import annotations

import sys
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[2]
if str(_REPO_ROOT) not in sys.path:
    # --import-mode=importlib does not put the rootdir on sys.path.
    sys.path.insert(0, str(_REPO_ROOT))
