"""The compatibility matrix: every suite, every target, every size, side by side.

    python -m tests.compat.matrix [--suites kazoo,compat] [--targets apache,pyzk,mixed]
                                  [--sizes 1,3] [--mixed-suites kazoo] [--budget-min 70]
                                  [--update-gaps]

Rule 1 (the report): tests/compat/report/matrix.md and matrix.json hold, per test, the outcome
on each target (one column each: apache, pyzk and the mixed ensembles ``mixed``, ``mixed2``
of tests/compat/targets.py); a summary line per suite/size/target; and the gaps, the tests
that pass on Apache ZooKeeper but not on a candidate (pyzk, or a mixed ensemble compared
with the all-Apache ensemble of the same size).
Rule 2 (the ratchet, only for candidates that ran beside Apache): the exit status is non-zero
when a gap is not listed in known_gaps.txt (a regression, or a new test a candidate fails)
and when a listed test now passes (the list must shrink).  pyzk's gaps are listed by test id,
a mixed target's as ``<target>:<test id>``.  ``--update-gaps`` rewrites the list for the
suites, sizes and candidates that ran, keeping the lines of the others.
Rule 5 (mixed targets): they run at sizes of 2 or more only, and only the suites of
``--mixed-suites`` (default kazoo).  In the compat run a mixed target gets the tests
parametrized by the target; the comparison tests (no target parameter: they compare
Apache with pyzk, each started on its own) count for pyzk only.  A test a mixed target did
not run (a comparison, or one parametrized by server kind) is not its gap, unless its run
was cut short.
Rule 3 (a target that does not start): the run records one failing pseudo-test
``<suite>[<size>]::target-starts``; its tests are "not-run" and are not gaps one by one.
Rule 4 (time): runs share ``--budget-min``; a run gets what is left, and a run with less
than a minute left is recorded as not started.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.compat.kazoo_suite import SUITE_TIMEOUT_S as KAZOO_SUITE_TIMEOUT_S
from tests.compat.kazoo_suite import run_kazoo_suite
from tests.compat.pytest_run import (
    OUTCOMES,
    CaseOutcome,
    SuiteRun,
    elapsed_since,
    read_junit_by_target,
    read_junit_file,
    run_pytest_bounded,
    suite_label,
    target_start_id,
)
from tests.compat.targets import (
    MIXED_TARGETS,
    REPO_ROOT,
    target_sizes,
    target_start_error,
)

COMPAT_DIR = Path(__file__).resolve().parent
REPORT_DIR = COMPAT_DIR / "report"
KNOWN_GAPS_PATH = COMPAT_DIR / "known_gaps.txt"
SUITES = ("kazoo", "compat")
COMPAT_TEST_TIMEOUT_S = 120
# compat[3] over apache, pyzk and mixed took 13 min on 2 CPUs (2026-12-07): room to spare.
COMPAT_SUITE_TIMEOUT_S = 25 * 60
BUDGET_MIN_DEFAULT = 70.0
RUN_SECONDS_MIN = 60.0
REFERENCE, CANDIDATE = "apache", "pyzk"
CANDIDATES = (CANDIDATE, *MIXED_TARGETS)
MIXED_SUITES_DEFAULT = ("kazoo",)

KNOWN_GAPS_HEADER = """\
# Tests that pass on Apache ZooKeeper 3.8 but not on pyzk: the ratchet of the compat matrix.
# One test id per line: <suite>[<size>]::<module>::<Class>::<test>, or
# <suite>[<size>]::target-starts when pyzk does not come up for that suite at all; a mixed
# ensemble's gaps (it fails what passes on Apache at the same size) carry its target name:
# mixed:<suite>[<size>]::...
# `python -m tests.compat.matrix` (tox -e matrix) fails when a test that passes on Apache
# fails on pyzk and is not listed here, and when a listed test passes on pyzk: the list only
# shrinks.  Regenerate it with `python -m tests.compat.matrix --update-gaps` (same suites and
# sizes as CI); lines of suites/sizes that were not run are kept.
"""


def compat_pytest_args(junit_path: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pytest",
        str(COMPAT_DIR),
        "-m",
        "compat",
        "-p",
        "no:cacheprovider",
        f"--junitxml={junit_path}",
        f"--timeout={COMPAT_TEST_TIMEOUT_S}",
        "-q",
        "-rfEs",
    ]


def run_compat_suites(
    kinds: list[str], size: int, workdir: Path, suite_timeout_s: float
) -> list[SuiteRun]:
    """The project's own tests/compat/test_*.py, in one pytest run over all ``kinds``.

    One run, because comparison tests (four-letter words, AdminServer, differential) need
    both targets at once; the junit report is split into one SuiteRun per kind.  A kind
    that does not start is left out of the run and gets only its failed target-starts.
    """
    started = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    runs = {kind: SuiteRun("compat", kind, size) for kind in kinds}
    for kind, run in runs.items():
        run.start_error = target_start_error(kind, size, workdir / f"preflight-{kind}")
        run.outcomes[target_start_id("compat", size)] = CaseOutcome(
            "failed" if run.start_error else "passed", (run.start_error or "")[:300]
        )
    started_kinds = tuple(kind for kind in kinds if runs[kind].start_error is None)
    if started_kinds:
        junit_path = workdir / "junit.xml"
        env = dict(
            os.environ,
            PYZK_TARGETS=",".join(started_kinds),
            PYZK_TARGET_SIZE=str(size),
            PYZK_DIFF_PAIR=differential_pair(started_kinds),
        )
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])
        )
        exit_code, timed_out = run_pytest_bounded(
            compat_pytest_args(junit_path),
            env,
            cwd=REPO_ROOT,
            log_path=workdir / "pytest.log",
            timeout_s=suite_timeout_s,
        )
        xml_text = read_junit_file(junit_path)
        columns = (
            read_junit_by_target(
                xml_text, suite_label("compat", size), started_kinds, REFERENCE,
                comparison_kinds(started_kinds),
            )
            if xml_text is not None
            else {}
        )
        for kind in started_kinds:
            runs[kind].exit_code, runs[kind].timed_out = exit_code, timed_out
            runs[kind].outcomes.update(columns.get(kind, {}))
            if xml_text is None:
                runs[kind].note = f"no readable junit xml at {junit_path}"
    for run in runs.values():
        run.duration_s = elapsed_since(started)
    return list(runs.values())


def comparison_kinds(kinds: tuple[str, ...]) -> tuple[str, ...] | None:
    """Whose column a comparison test counts in: not a mixed target's (None: the default,
    every kind but Apache, when no mixed target ran)."""
    if not set(kinds) & set(MIXED_TARGETS):
        return None
    return tuple(kind for kind in kinds if kind != REFERENCE and kind not in MIXED_TARGETS)


def differential_pair(kinds: tuple[str, ...]) -> str:
    """test_differential.py's PYZK_DIFF_PAIR: Apache against pyzk, or against itself."""
    return (
        f"{REFERENCE},{CANDIDATE}" if CANDIDATE in kinds else f"{REFERENCE},{REFERENCE}"
    )


def suite_timeout_s(suite: str) -> float:
    return KAZOO_SUITE_TIMEOUT_S if suite == "kazoo" else COMPAT_SUITE_TIMEOUT_S


# --- the pure part: table, gaps, ratchet -------------------------------------------------


@dataclass(frozen=True)
class Ratchet:
    gaps: list[str]
    new_gaps: list[str]
    fixed_gaps: list[str]

    @property
    def failed(self) -> bool:
        return bool(self.new_gaps or self.fixed_gaps)


def outcome_table(runs: list[SuiteRun]) -> dict[str, dict[str, CaseOutcome]]:
    """test id -> kind -> outcome; a test some kind ran and another did not is "not-run"."""
    kinds = sorted({run.kind for run in runs})
    table: dict[str, dict[str, CaseOutcome]] = {}
    labels_by_kind = {
        kind: {run.label for run in runs if run.kind == kind} for kind in kinds
    }
    for run in runs:
        for key, result in run.outcomes.items():
            table.setdefault(key, {})[run.kind] = result
    for key, row in table.items():
        label = key.split("::", 1)[0]
        for kind in kinds:
            if kind not in row and label in labels_by_kind[kind]:
                row[kind] = CaseOutcome("not-run")
    return dict(sorted(table.items()))


def gap_key(kind: str, key: str) -> str:
    """A candidate's test id as known_gaps.txt lists it: pyzk's bare, others prefixed."""
    return key if kind == CANDIDATE else f"{kind}:{key}"


def split_gap_key(gap: str) -> tuple[str, str]:
    """``mixed:kazoo[3]::a`` -> ("mixed", "kazoo[3]::a"); a bare id is pyzk's."""
    label = gap.split("::", 1)[0]
    kind, sep, _ = label.partition(":")
    return (kind, gap[len(kind) + 1 :]) if sep else (CANDIDATE, gap)


def gap_label(gap: str) -> str:
    """The suite label of a gap line, with its candidate prefix: ``mixed:kazoo[3]``."""
    return gap.split("::", 1)[0]


def judged_labels(runs: list[SuiteRun]) -> set[str]:
    """The gap labels of candidate runs that have an Apache run of the same suite/size."""
    reference_labels = {run.label for run in runs if run.kind == REFERENCE}
    return {
        gap_key(run.kind, run.label)
        for run in runs
        if run.kind in CANDIDATES and run.label in reference_labels
    }


def find_gaps(runs: list[SuiteRun]) -> list[str]:
    """Tests that passed on the reference and not on a candidate, as gap keys.

    A candidate run whose target did not start contributes only its target-starts test.
    """
    unstarted = {
        (run.kind, run.label) for run in runs if run.kind in CANDIDATES and run.start_error
    }
    cut_short = {(run.kind, run.label) for run in runs if run.timed_out or run.note}
    kinds = [kind for kind in CANDIDATES if any(run.kind == kind for run in runs)]
    gaps = []
    for kind in kinds:
        for key, row in outcome_table(runs).items():
            reference, candidate = row.get(REFERENCE), row.get(kind)
            if reference is None or candidate is None or reference.outcome != "passed":
                continue
            if kind in MIXED_TARGETS and candidate.outcome == "not-run" and (
                (kind, key.split("::", 1)[0]) not in cut_short
            ):
                continue  # no variant for a mixed ensemble: a comparison or per-kind test
            if candidate.outcome == "passed":
                continue
            if (kind, key.split("::", 1)[0]) in unstarted and not key.endswith(
                "::target-starts"
            ):
                continue
            gaps.append(gap_key(kind, key))
    return sorted(gaps)


def parse_known_gaps(text: str) -> list[str]:
    return [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def ratchet(runs: list[SuiteRun], known_gaps: list[str]) -> Ratchet:
    """Compare this run's gaps with the list; only suites/sizes that a candidate ran beside
    Apache count, each candidate for its own lines."""
    table = outcome_table(runs)
    gaps = find_gaps(runs)
    judged = judged_labels(runs)
    listed = {key for key in known_gaps if gap_label(key) in judged}
    new_gaps = [key for key in gaps if key not in listed]
    fixed_gaps = sorted(
        gap for gap in listed if candidate_outcome(table, gap).outcome == "passed"
    )
    return Ratchet(gaps=gaps, new_gaps=new_gaps, fixed_gaps=fixed_gaps)


def candidate_outcome(
    table: dict[str, dict[str, CaseOutcome]], gap: str
) -> CaseOutcome:
    """The outcome a gap key names: its candidate's column of its test."""
    kind, key = split_gap_key(gap)
    return table.get(key, {}).get(kind, CaseOutcome("not-run"))


def updated_known_gaps(runs: list[SuiteRun], known_gaps: list[str]) -> str:
    """The gaps file: this run's gaps plus the listed lines of suites/sizes (per candidate)
    not judged now."""
    ran = judged_labels(runs)
    kept = [key for key in known_gaps if gap_label(key) not in ran]
    lines = sorted(set(kept) | set(find_gaps(runs)))
    return KNOWN_GAPS_HEADER + "".join(f"{line}\n" for line in lines)


def summary_rows(runs: list[SuiteRun]) -> list[dict[str, object]]:
    rows = []
    for run in runs:
        note = "target did not start" if run.start_error else run.note
        if run.timed_out:
            note = "suite timed out"
        rows.append(
            {
                "suite": run.suite,
                "size": run.size,
                "target": run.kind,
                **run.counts(),
                "duration_s": run.duration_s,
                "exit_code": run.exit_code,
                "note": note,
                "start_error": run.start_error,
            }
        )
    return rows


def _cell(result: CaseOutcome | None) -> str:
    return "" if result is None else result.outcome


def column_order(kinds: set[str]) -> list[str]:
    """Apache first, then pyzk, then the mixed ensembles, then anything else."""
    known = [REFERENCE, *CANDIDATES]
    return [kind for kind in known if kind in kinds] + sorted(kinds - set(known))


def markdown_report(
    runs: list[SuiteRun], result: Ratchet | None, header: dict[str, str]
) -> str:
    kinds = column_order({run.kind for run in runs})
    lines = ["# pyzk compatibility matrix", ""]
    lines += [f"- {name}: {value}" for name, value in header.items()]
    lines += ["", "## Summary", ""]
    lines.append(
        "| suite | size | target | " + " | ".join(OUTCOMES) + " | duration s | note |"
    )
    lines.append("|---" * (len(OUTCOMES) + 5) + "|")
    for row in summary_rows(runs):
        counts = " | ".join(str(row[outcome]) for outcome in OUTCOMES)
        lines.append(
            f"| {row['suite']} | {row['size']} | {row['target']} | {counts} "
            f"| {row['duration_s']} | {row['note']} |"
        )
    for run in runs:
        if run.start_error:
            lines += ["", f"`{run.label}` on {run.kind} did not start:", "", "```"]
            lines += run.start_error.splitlines()[-15:]
            lines.append("```")
    table = outcome_table(runs)
    if result is not None:
        lines += [
            "",
            "## Pass on Apache ZooKeeper, not on pyzk or a mixed ensemble "
            f"({len(result.gaps)})",
            "",
        ]
        lines += [
            f"- `{key}`: {candidate_outcome(table, key).outcome} "
            f"{candidate_outcome(table, key).message[:160]}"
            for key in result.gaps
        ]
        lines += ["", "## Ratchet against known_gaps.txt", ""]
        lines.append(
            f"- not listed (regressions or new failures): {len(result.new_gaps)}"
        )
        lines += [f"  - `{key}`" for key in result.new_gaps]
        lines.append(
            f"- listed but passing now (remove them): {len(result.fixed_gaps)}"
        )
        lines += [f"  - `{key}`" for key in result.fixed_gaps]
    lines += ["", "## Per test", ""]
    lines.append("| test | " + " | ".join(kinds) + " |")
    lines.append("|---" * (len(kinds) + 1) + "|")
    for key, row in table.items():
        lines.append(
            f"| `{key}` | " + " | ".join(_cell(row.get(kind)) for kind in kinds) + " |"
        )
    return "\n".join(lines) + "\n"


def json_report(
    runs: list[SuiteRun], result: Ratchet | None, header: dict[str, str]
) -> str:
    table = outcome_table(runs)
    document = {
        **header,
        "runs": summary_rows(runs),
        "tests": {
            key: {
                kind: {"outcome": res.outcome, "message": res.message}
                for kind, res in row.items()
            }
            for key, row in table.items()
        },
        "gaps": result.gaps if result else None,
        "new_gaps": result.new_gaps if result else None,
        "fixed_gaps": result.fixed_gaps if result else None,
    }
    return json.dumps(document, indent=1, sort_keys=False) + "\n"


# --- the command ----------------------------------------------------------------------


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.compat.matrix")
    parser.add_argument("--suites", type=_csv, default=list(SUITES))
    parser.add_argument("--targets", type=_csv, default=[REFERENCE, CANDIDATE])
    parser.add_argument(
        "--sizes", type=lambda text: [int(s) for s in _csv(text)], default=[1]
    )
    parser.add_argument(
        "--mixed-suites", type=_csv, default=list(MIXED_SUITES_DEFAULT),
        help="the suites mixed targets run (default kazoo)",
    )
    parser.add_argument("--budget-min", type=float, default=BUDGET_MIN_DEFAULT)
    parser.add_argument("--update-gaps", action="store_true")
    parser.add_argument("--gaps-file", type=Path, default=KNOWN_GAPS_PATH)
    parser.add_argument("--report-dir", type=Path, default=REPORT_DIR)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    for suite in args.suites:
        if suite not in SUITES:
            parser.error(f"unknown suite {suite!r}; expected some of {SUITES}")
    for kind in args.targets:
        if kind not in (REFERENCE, *CANDIDATES):
            parser.error(f"unknown target {kind!r}; expected some of {(REFERENCE, *CANDIDATES)}")
    return args


def budget_spent_run(suite: str, kind: str, size: int) -> SuiteRun:
    run = SuiteRun(suite, kind, size, start_error="not run: time budget spent")
    run.outcomes[target_start_id(suite, size)] = CaseOutcome(
        "not-run", run.start_error or ""
    )
    return run


def targets_for(args: argparse.Namespace, suite: str, size: int) -> list[str]:
    """The targets that run ``suite`` at ``size``: mixed ones only at 2 servers or more and
    only for ``--mixed-suites``."""
    return [
        kind
        for kind in args.targets
        if size in target_sizes(kind, [size])
        and (kind not in MIXED_TARGETS or suite in args.mixed_suites)
    ]


def run_all(args: argparse.Namespace, workdir: Path) -> list[SuiteRun]:
    """Every suite at every size: kazoo once per kind (its harness starts one kind at a
    time), compat once for all kinds."""
    deadline = time.monotonic() + args.budget_min * 60
    runs: list[SuiteRun] = []
    for size in args.sizes:
        for suite in args.suites:
            targets = targets_for(args, suite, size)
            groups = (
                [[kind] for kind in targets]
                if suite == "kazoo"
                else [targets] if targets else []
            )
            for kinds in groups:
                label = suite_label(suite, size)
                print(f"[matrix] {label} on {','.join(kinds)} ...", flush=True)
                left_s = min(suite_timeout_s(suite), deadline - time.monotonic())
                if left_s < RUN_SECONDS_MIN:
                    new_runs = [budget_spent_run(suite, kind, size) for kind in kinds]
                elif suite == "kazoo":
                    new_runs = [
                        run_kazoo_suite(
                            kinds[0], size, workdir / f"{label}-{kinds[0]}", left_s
                        )
                    ]
                else:
                    new_runs = run_compat_suites(kinds, size, workdir / label, left_s)
                for run in new_runs:
                    counts = {name: n for name, n in run.counts().items() if n}
                    print(
                        f"[matrix]   {run.kind}: {counts} in {run.duration_s}s"
                        f"{' TIMED OUT' if run.timed_out else ''}"
                        f"{' (target did not start)' if run.start_error else ''}",
                        flush=True,
                    )
                runs.extend(new_runs)
    return runs


def print_gap_details(runs: list[SuiteRun], keys: list[str]) -> None:
    """The candidate's failure text for each new gap: CI keeps only what was printed."""
    table = outcome_table(runs)
    for key in keys:
        kind, _ = split_gap_key(key)
        outcome = candidate_outcome(table, key)
        if outcome.detail or outcome.message:
            print(f"[matrix] --- {key} on {kind}:")
            print(outcome.detail or outcome.message)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="pyzk-matrix-"))
    started = time.monotonic()
    runs = run_all(args, workdir)
    header = {
        "generated": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "kazoo": importlib.metadata.version("kazoo"),
        "suites": ",".join(args.suites),
        "targets": ",".join(args.targets),
        "sizes": ",".join(map(str, args.sizes)),
        "mixed_suites": ",".join(args.mixed_suites),
        "duration_s": str(elapsed_since(started)),
        "workdir": str(workdir),
    }
    both_targets = REFERENCE in args.targets and bool(set(CANDIDATES) & set(args.targets))
    known_gaps = (
        parse_known_gaps(args.gaps_file.read_text()) if args.gaps_file.exists() else []
    )
    result = ratchet(runs, known_gaps) if both_targets else None
    args.report_dir.mkdir(parents=True, exist_ok=True)
    (args.report_dir / "matrix.md").write_text(markdown_report(runs, result, header))
    (args.report_dir / "matrix.json").write_text(json_report(runs, result, header))
    print(f"[matrix] report: {args.report_dir / 'matrix.md'}")
    for row in summary_rows(runs):
        counts = ", ".join(f"{row[name]} {name}" for name in OUTCOMES if row[name])
        print(
            f"[matrix] {row['suite']}[{row['size']}] {row['target']}: {counts} {row['note']}"
        )
    reference_unstarted = [
        run.label for run in runs if run.kind == REFERENCE and run.start_error
    ]
    if reference_unstarted:
        print(f"[matrix] FAIL: Apache ZooKeeper did not run for {reference_unstarted}")
    if result is None:
        print(
            "[matrix] ratchet skipped: it needs apache and a candidate (--targets apache,pyzk)"
        )
        return 1 if reference_unstarted else 0
    print(
        f"[matrix] {len(result.gaps)} tests pass on Apache but not on pyzk or a mixed ensemble"
    )
    if args.update_gaps:
        args.gaps_file.write_text(updated_known_gaps(runs, known_gaps))
        print(f"[matrix] rewrote {args.gaps_file}")
        return 1 if reference_unstarted else 0
    if result.new_gaps:
        print(
            f"[matrix] FAIL: {len(result.new_gaps)} pass on Apache, fail on a candidate, not in "
            f"{args.gaps_file.name}:"
        )
        print("".join(f"  {key}\n" for key in result.new_gaps), end="")
        print_gap_details(runs, result.new_gaps)
    if result.fixed_gaps:
        print(
            f"[matrix] FAIL: {len(result.fixed_gaps)} listed in {args.gaps_file.name} now pass; "
            "remove them (--update-gaps):"
        )
        print("".join(f"  {key}\n" for key in result.fixed_gaps), end="")
    return 1 if result.failed or reference_unstarted else 0


if __name__ == "__main__":
    sys.exit(main())
