"""Fixtures for the compat suites: every test runs once per target kind.

Rule 1: a test asks for ``target`` (one ensemble per test module) or ``fresh_target`` (one per
test, for tests that stop, kill or restart servers) and connects to ``target.hosts``; it
never names a port.  ``target.kind`` ("apache", "pyzk", or a mixed ensemble "mixed",
"mixed2", whose ``target.kinds`` name each server's kind) is for messages only.
Rule 2: which kinds and which ensemble size run comes from the environment:
PYZK_TARGETS (default "apache,pyzk"; mixed targets need PYZK_TARGET_SIZE >= 2) and
PYZK_TARGET_SIZE (default 1).
Rule 3: every test collected under tests/compat carries the ``compat`` marker.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_REPO_ROOT = Path(__file__).resolve().parents[2]
if str(_REPO_ROOT) not in sys.path:
    # --import-mode=importlib does not put the rootdir on sys.path; the suites import
    # tests.compat.* helpers by their full name.
    sys.path.insert(0, str(_REPO_ROOT))

from tests.compat.targets import ENSEMBLE_TARGETS, Ensemble, start_target  # noqa: E402 (after the sys.path fix)

_COMPAT_DIR = Path(__file__).resolve().parent


def target_kinds_from_env() -> list[str]:
    kinds = [
        kind.strip()
        for kind in os.environ.get("PYZK_TARGETS", "apache,pyzk").split(",")
    ]
    kinds = [kind for kind in kinds if kind]
    unknown = sorted(set(kinds) - set(ENSEMBLE_TARGETS))
    if unknown:
        raise pytest.UsageError(f"PYZK_TARGETS names unknown targets {unknown}")
    return kinds


def target_size_from_env() -> int:
    return int(os.environ.get("PYZK_TARGET_SIZE", "1"))


def _start(kind: str, tmp_path_factory: pytest.TempPathFactory) -> Ensemble:
    workdir = tmp_path_factory.mktemp(f"target-{kind}")
    return start_target(kind, target_size_from_env(), workdir=workdir)


@pytest.fixture(scope="module", params=target_kinds_from_env())
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Ensemble]:
    """One running target for the whole test module."""
    ensemble = _start(request.param, tmp_path_factory)
    yield ensemble
    ensemble.stop()


@pytest.fixture(params=target_kinds_from_env())
def fresh_target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Ensemble]:
    """A target started for this test alone."""
    ensemble = _start(request.param, tmp_path_factory)
    yield ensemble
    ensemble.stop()


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    for item in items:
        if _COMPAT_DIR in item.path.parents:
            item.add_marker(pytest.mark.compat)
