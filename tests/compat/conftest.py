"""Fixtures for the compat suites: every test runs once per target kind.

Rule 1: a test asks for ``target`` (one ensemble per test module) or ``fresh_target`` (one per
test, for tests that stop, kill or restart servers) and connects to ``target.hosts``; it
never names a port.  ``target.kind`` ("apache", "pyzk", or a mixed ensemble "mixed",
"mixed2", whose ``target.kinds`` name each server's kind) is for messages only.
Rule 2: which kinds and which ensemble size run comes from the environment:
PYZK_TARGETS (default "apache,pyzk"; mixed targets need PYZK_TARGET_SIZE >= 2) and
PYZK_TARGET_SIZE (default 1).
Rule 3: every test collected under tests/compat carries the ``compat`` marker.
Rule 4: a module that starts its own targets for the kinds of PYZK_TARGETS (with settings of
its own) starts a mixed target at the ensemble size (``own_target_size``); a comparison test
that starts each server kind on its own takes ``server_kinds_from_env`` (mixed ones dropped).
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

from tests.compat.pytest_run import TARGET_PROPERTY  # noqa: E402 (after the sys.path fix)
from tests.compat.targets import (  # noqa: E402 (after the sys.path fix)
    ENSEMBLE_TARGETS,
    MIXED_TARGETS,
    TARGET_KINDS,
    Ensemble,
    start_target,
)

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


def server_kinds_from_env() -> list[str]:
    """The server kinds (apache, pyzk) of PYZK_TARGETS, for tests that start each on its own."""
    return [kind for kind in target_kinds_from_env() if kind in TARGET_KINDS]


def own_target_size(kind: str) -> int:
    """The size of a target a module starts with settings of its own: 1 (standalone) for a
    server kind, as the module was written; the ensemble size for a mixed target."""
    return target_size_from_env() if kind in MIXED_TARGETS else 1


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
        target = target_param(item)
        if target is not None:
            item.user_properties.append((TARGET_PROPERTY, target))


def target_param(item: pytest.Item) -> str | None:
    """The target a test runs on: its one parameter whose value is a target name (a fixture
    parametrized by PYZK_TARGETS, or a ``kind``); None for a comparison test.  Written into
    the junit xml (TARGET_PROPERTY), so the matrix need not guess it from the test's id,
    where "apache" may name a mix's leader.  Of several, a fixture's param beats an argument
    of the test's own ``parametrize`` (a bench workload called "mixed")."""
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return None
    named = {name: value for name, value in callspec.params.items()
             if isinstance(value, str) and value in ENSEMBLE_TARGETS}
    if len(named) > 1:
        direct = {name for mark in item.iter_markers("parametrize") for name in _argnames(mark)}
        named = {name: value for name, value in named.items() if name not in direct}
    return next(iter(named.values())) if len(named) == 1 else None


def _argnames(mark: pytest.Mark) -> list[str]:
    names = mark.args[0] if mark.args else mark.kwargs.get("argnames", "")
    return [name.strip() for name in names.split(",")] if isinstance(names, str) else list(names)
