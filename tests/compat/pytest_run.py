"""Run one pytest suite in a subprocess, bounded in time, and read its per-test outcomes.

Rule 1: a run never outlives ``timeout_s``: at the deadline pytest gets SIGINT (so it still
writes its junit xml for the tests it finished), then SIGKILL for its whole process group
(which holds the servers it started) after a grace period.
Rule 2: test ids are ``<suite>[<size>]::<module>::<Class>::<name>``, the same for every target:
the target's own parameter id (``[apache]``/``[pyzk]``) is removed from the name (the compat
conftest names it in each test's junit properties, TARGET_PROPERTY).
Rule 3: outcomes are one of OUTCOMES; a test missing from a target's run is "not-run".
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

OUTCOMES = ("passed", "failed", "error", "skipped", "not-run")
INTERRUPT_GRACE_S = 60.0
KILL_WAIT_S = 10.0
MESSAGE_CHARS_MAX = 300
DETAIL_CHARS_MAX = 2500


@dataclass(frozen=True)
class CaseOutcome:
    outcome: str
    message: str = ""
    detail: str = ""  # the end of the failure's traceback, printed when it is a new gap


@dataclass
class SuiteRun:
    """One suite run against one target kind at one ensemble size."""

    suite: str
    kind: str
    size: int
    outcomes: dict[str, CaseOutcome] = field(default_factory=dict)
    start_error: str | None = None
    exit_code: int | None = None
    timed_out: bool = False
    duration_s: float = 0.0
    note: str = ""

    @property
    def label(self) -> str:
        return suite_label(self.suite, self.size)

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(OUTCOMES, 0)
        for result in self.outcomes.values():
            counts[result.outcome] += 1
        return counts


def suite_label(suite: str, size: int) -> str:
    return f"{suite}[{size}]"


def target_start_id(suite: str, size: int) -> str:
    """The pseudo-test that records whether the target came up for a suite run."""
    return f"{suite_label(suite, size)}::target-starts"


def _target_params(name: str) -> tuple[str, list[str]] | None:
    base, bracket, params = name.partition("[")
    if not bracket or not params.endswith("]"):
        return None
    return base, params[:-1].split("-")


def strip_target_param(name: str, kind: str) -> str:
    """``test_x[apache-3]`` -> ``test_x[3]``; ``test_x[pyzk]`` -> ``test_x``."""
    parsed = _target_params(name)
    if parsed is None:
        return name
    base, params = parsed
    kept = [part for part in params if part != kind]
    return f"{base}[{'-'.join(kept)}]" if kept else base


def target_of(name: str, kinds: tuple[str, ...]) -> str | None:
    """The one target kind named in a test's parameter id, or None (a comparison test)."""
    parsed = _target_params(name)
    named = [part for part in parsed[1] if part in kinds] if parsed else []
    return named[0] if len(named) == 1 else None


def split_classname(classname: str) -> tuple[str, list[str]]:
    """Junit's dotted classname -> (module, classes); classes are the CapWords parts."""
    parts = classname.split(".")
    first_class = next(
        (i for i, part in enumerate(parts) if part[:1].isupper()), len(parts)
    )
    return ".".join(parts[:first_class]), parts[first_class:]


def case_id(label: str, classname: str, name: str, kind: str | None) -> str:
    """The test's id without its target parameter (``kind``; None: it has none)."""
    module, classes = split_classname(classname)
    bare = name if kind is None else strip_target_param(name, kind)
    return "::".join([label, module, *classes, bare])


def _outcome_of(testcase: ElementTree.Element) -> CaseOutcome:
    for tag in ("failure", "error", "skipped"):
        element = testcase.find(tag)
        if element is not None:
            outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
            message = (element.get("message") or element.text or "").strip()
            detail = (element.text or "").strip()[-DETAIL_CHARS_MAX:]
            return CaseOutcome(
                outcome, " ".join(message.split())[:MESSAGE_CHARS_MAX], detail
            )
    return CaseOutcome("passed")


_SEVERITY = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}
REFERENCE_SIDE = CaseOutcome("passed", "comparison test: this target is the reference")
# The junit property the compat conftest writes for a test that runs on one target.
TARGET_PROPERTY = "pyzk_target"


def _target_property(testcase: ElementTree.Element) -> str | None:
    for prop in testcase.iter("property"):
        if prop.get("name") == TARGET_PROPERTY:
            return prop.get("value")
    return None


def _keep_worse(
    outcomes: dict[str, CaseOutcome], key: str, result: CaseOutcome
) -> None:
    # A test reported twice (a pass, then a teardown error) keeps the worse outcome.
    previous = outcomes.get(key)
    if previous is None or _SEVERITY[result.outcome] > _SEVERITY[previous.outcome]:
        outcomes[key] = result


def read_junit_by_target(
    xml_text: str,
    label: str,
    kinds: tuple[str, ...],
    reference: str,
    comparison_kinds: tuple[str, ...] | None = None,
) -> dict[str, dict[str, CaseOutcome]]:
    """Per-target, per-test outcomes of one pytest run over ``kinds``.

    A test parametrized by a target (its TARGET_PROPERTY, else its parameter id) goes to
    that target's column.  A test without one compares the targets with each other: with
    one kind it belongs to that kind; with several, its outcome goes to ``comparison_kinds``
    (default: every kind but ``reference``), and the reference's side is REFERENCE_SIDE (the
    reference agrees with itself; test_differential's apache,apache run proves it).
    """
    compared = (
        tuple(kind for kind in kinds if kind != reference)
        if comparison_kinds is None
        else comparison_kinds
    )
    columns: dict[str, dict[str, CaseOutcome]] = {kind: {} for kind in kinds}
    root = ElementTree.fromstring(xml_text)
    # A run of the compat conftest names each test's target (TARGET_PROPERTY); without it
    # the target is the target name among the test's parameter ids.
    has_properties = any(_target_property(testcase) for testcase in root.iter("testcase"))
    for testcase in root.iter("testcase"):
        classname, name = testcase.get("classname", ""), testcase.get("name", "")
        result = _outcome_of(testcase)
        if len(kinds) == 1:
            kind: str | None = kinds[0]
        elif has_properties:
            kind = _target_property(testcase)  # None: a comparison test
            kind = kind if kind in kinds else None
        else:
            kind = target_of(name, kinds)
        if kind is not None:
            _keep_worse(columns[kind], case_id(label, classname, name, kind), result)
            continue
        # A comparison test keeps its whole id ("apache" in it may name a mix's leader), but
        # for runs without the property, whose ids were always stripped of the reference.
        key = case_id(label, classname, name, None if has_properties else reference)
        for other in kinds:
            if other == reference:
                _keep_worse(columns[other], key, REFERENCE_SIDE)
            elif other in compared:
                _keep_worse(columns[other], key, result)
    return columns


def read_junit(xml_text: str, label: str, kind: str) -> dict[str, CaseOutcome]:
    """Per-test outcomes of a pytest run against one target kind."""
    return read_junit_by_target(xml_text, label, (kind,), kind)[kind]


def run_pytest_bounded(
    args: list[str], env: dict[str, str], cwd: Path, log_path: Path, timeout_s: float
) -> tuple[int, bool]:
    """Run ``args`` (a pytest command) with output to ``log_path``; return (exit code, timed out)."""
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            args,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            return process.wait(timeout=timeout_s), False
        except subprocess.TimeoutExpired:
            pass
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=INTERRUPT_GRACE_S)
        except subprocess.TimeoutExpired:
            pass
        # The group also holds servers that a hung harness never stopped.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=KILL_WAIT_S)
        return process.returncode, True


def read_junit_file(path: Path) -> str | None:
    """The junit xml text if pytest got to write a readable one, else None."""
    try:
        text = path.read_text()
        ElementTree.fromstring(text)
    except (OSError, ElementTree.ParseError):
        return None
    return text


def collect_outcomes(run: SuiteRun, junit_path: Path) -> None:
    """Fill ``run.outcomes`` from the junit xml; without one, its tests stay not-run."""
    xml_text = read_junit_file(junit_path)
    if xml_text is None:
        run.note = f"no readable junit xml at {junit_path}"
        return
    run.outcomes.update(read_junit(xml_text, run.label, run.kind))


def elapsed_since(started: float) -> float:
    return round(time.monotonic() - started, 1)
