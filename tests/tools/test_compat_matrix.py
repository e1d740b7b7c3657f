"""The matrix's pure parts: junit reading, test ids, the gap list and its ratchet."""

from __future__ import annotations

from pathlib import Path

from tests.compat.matrix import (
    KNOWN_GAPS_HEADER,
    comparison_kinds,
    find_gaps,
    markdown_report,
    outcome_table,
    parse_args,
    parse_known_gaps,
    ratchet,
    split_gap_key,
    targets_for,
    updated_known_gaps,
)
from tests.compat.pytest_run import (
    REFERENCE_SIDE,
    CaseOutcome,
    SuiteRun,
    read_junit,
    read_junit_by_target,
    split_classname,
    strip_target_param,
    target_start_id,
)
from tests.compat.shim_args import config_data_dir, shim_server_kind
from tests.compat.targets import mixed_server_kinds

JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<testcase classname="kazoo.tests.test_client.TestClient" name="test_create" time="0.1"/>
<testcase classname="kazoo.tests.test_client.TestClient" name="test_fail" time="0.1">
  <failure message="assert 1 == 2">trace</failure></testcase>
<testcase classname="kazoo.tests.test_sasl.TestSASLGSSAPIAuthentication" name="test_gss">
  <skipped type="pytest.skip" message="Kerberos support not available.">x</skipped></testcase>
<testcase classname="tests.compat.test_zkcli" name="test_ls[pyzk-R]" time="0.1"/>
<testcase classname="tests.compat.test_zkcli" name="test_ls[pyzk-R]" time="0.1">
  <error message="failed on teardown">boom</error></testcase>
</testsuite></testsuites>"""


def _run(
    kind: str, outcomes: dict[str, str], label: str = "kazoo[1]", started: bool = True
) -> SuiteRun:
    suite, size = label[:-1].split("[")
    run = SuiteRun(suite, kind, int(size), start_error=None if started else "exited")
    run.outcomes[target_start_id(suite, int(size))] = CaseOutcome(
        "passed" if started else "failed"
    )
    run.outcomes.update(
        {f"{label}::{key}": CaseOutcome(value) for key, value in outcomes.items()}
    )
    return run


def test_read_junit_maps_outcomes_and_keeps_the_worse_of_two_reports() -> None:
    outcomes = read_junit(JUNIT, "kazoo[3]", "pyzk")
    assert {key: result.outcome for key, result in outcomes.items()} == {
        "kazoo[3]::kazoo.tests.test_client::TestClient::test_create": "passed",
        "kazoo[3]::kazoo.tests.test_client::TestClient::test_fail": "failed",
        "kazoo[3]::kazoo.tests.test_sasl::TestSASLGSSAPIAuthentication::test_gss": "skipped",
        "kazoo[3]::tests.compat.test_zkcli::test_ls[R]": "error",
    }
    assert (
        outcomes["kazoo[3]::kazoo.tests.test_client::TestClient::test_fail"].message
        == "assert 1 == 2"
    )


def test_strip_target_param_removes_only_the_target_id() -> None:
    assert strip_target_param("test_x[apache]", "apache") == "test_x"
    assert strip_target_param("test_x[apache-3]", "apache") == "test_x[3]"
    assert strip_target_param("test_x[pyzk-a-b]", "apache") == "test_x[pyzk-a-b]"
    assert strip_target_param("test_x", "pyzk") == "test_x"


def test_split_classname_separates_module_from_classes() -> None:
    assert split_classname("kazoo.tests.test_lock.TestSemaphore") == (
        "kazoo.tests.test_lock",
        ["TestSemaphore"],
    )
    assert split_classname("tests.compat.test_raw") == ("tests.compat.test_raw", [])


def test_a_test_missing_on_one_target_is_not_run_there() -> None:
    table = outcome_table([_run("apache", {"a": "passed"}), _run("pyzk", {})])
    assert table["kazoo[1]::a"]["pyzk"].outcome == "not-run"


def test_gaps_are_passes_on_apache_that_do_not_pass_on_pyzk() -> None:
    runs = [
        _run(
            "apache",
            {"a": "passed", "b": "passed", "c": "failed", "d": "passed", "e": "passed"},
        ),
        _run("pyzk", {"a": "passed", "b": "failed", "c": "failed", "d": "skipped"}),
    ]
    assert find_gaps(runs) == ["kazoo[1]::b", "kazoo[1]::d", "kazoo[1]::e"]


def test_a_target_that_does_not_start_is_one_gap_not_one_per_test() -> None:
    runs = [
        _run("apache", {"a": "passed", "b": "passed"}),
        _run("pyzk", {}, started=False),
    ]
    assert find_gaps(runs) == ["kazoo[1]::target-starts"]


def test_ratchet_fails_on_unlisted_gaps_and_on_listed_tests_that_pass() -> None:
    runs = [
        _run("apache", {"a": "passed", "b": "passed", "c": "passed"}),
        _run("pyzk", {"a": "failed", "b": "passed", "c": "failed"}),
    ]
    result = ratchet(runs, ["kazoo[1]::a", "kazoo[1]::b"])
    assert result.new_gaps == ["kazoo[1]::c"]
    assert result.fixed_gaps == ["kazoo[1]::b"]
    assert result.failed
    assert not ratchet(runs, ["kazoo[1]::a", "kazoo[1]::c"]).failed


def test_ratchet_ignores_listed_tests_of_suites_that_did_not_run() -> None:
    runs = [_run("apache", {"a": "passed"}), _run("pyzk", {"a": "passed"})]
    assert not ratchet(runs, ["kazoo[3]::a", "compat[1]::x"]).failed


def test_update_keeps_lines_of_other_suites_and_round_trips() -> None:
    runs = [
        _run("apache", {"a": "passed", "b": "passed"}),
        _run("pyzk", {"a": "failed", "b": "passed"}),
    ]
    text = updated_known_gaps(runs, ["kazoo[1]::b", "kazoo[3]::z"])
    assert text.startswith(KNOWN_GAPS_HEADER)
    assert parse_known_gaps(text) == ["kazoo[1]::a", "kazoo[3]::z"]
    assert not ratchet(runs, parse_known_gaps(text)).failed


SPLIT_JUNIT = """<testsuites><testsuite name="pytest">
<testcase classname="tests.compat.test_zkcli" name="test_ls[apache]"/>
<testcase classname="tests.compat.test_zkcli" name="test_ls[pyzk]"><failure message="differs"/></testcase>
<testcase classname="tests.compat.test_fourletter" name="test_srvr_matches[conf]">
  <failure message="pyzk differs"/></testcase>
</testsuite></testsuites>"""


def test_one_run_over_both_targets_splits_into_columns() -> None:
    columns = read_junit_by_target(
        SPLIT_JUNIT, "compat[1]", ("apache", "pyzk"), "apache"
    )
    ls_id = "compat[1]::tests.compat.test_zkcli::test_ls"
    srvr_id = "compat[1]::tests.compat.test_fourletter::test_srvr_matches[conf]"
    assert columns["apache"][ls_id].outcome == "passed"
    assert columns["pyzk"][ls_id].outcome == "failed"
    # A comparison test fails on pyzk's side only; Apache is what it compares against.
    assert columns["apache"][srvr_id] == REFERENCE_SIDE
    assert columns["pyzk"][srvr_id].outcome == "failed"


def test_with_one_target_a_comparison_test_belongs_to_it() -> None:
    columns = read_junit_by_target(SPLIT_JUNIT, "compat[1]", ("apache",), "apache")
    srvr_id = "compat[1]::tests.compat.test_fourletter::test_srvr_matches[conf]"
    assert columns["apache"][srvr_id].outcome == "failed"


# SPLIT_JUNIT's run with the mixed target in it too.
MIXED_JUNIT = SPLIT_JUNIT.replace(
    '<testcase classname="tests.compat.test_fourletter"',
    '<testcase classname="tests.compat.test_zkcli" name="test_ls[mixed]"><failure message="differs"/></testcase>\n'
    '<testcase classname="tests.compat.test_fourletter"',
)


def _runs_of(columns: dict[str, dict[str, CaseOutcome]], label: str = "compat[3]") -> list[SuiteRun]:
    """One run per column, as run_compat_suites splits a pytest run."""
    suite, size = label[:-1].split("[")
    runs = []
    for kind, outcomes in columns.items():
        run = SuiteRun(suite, kind, int(size))
        run.outcomes.update(outcomes)
        runs.append(run)
    return runs


def test_a_comparison_test_counts_for_pyzk_and_is_never_a_mixed_gap() -> None:
    """A comparison test (no target parameter) compares Apache with pyzk, each started on its
    own; the mixed ensemble's column gets only the tests that ran on it."""
    kinds = ("apache", "pyzk", "mixed")
    columns = read_junit_by_target(MIXED_JUNIT, "compat[3]", kinds, "apache", comparison_kinds(kinds))
    ls_id = "compat[3]::tests.compat.test_zkcli::test_ls"
    srvr_id = "compat[3]::tests.compat.test_fourletter::test_srvr_matches[conf]"
    assert columns["mixed"] == {ls_id: CaseOutcome("failed", "differs")}
    assert columns["pyzk"][srvr_id].outcome == "failed"
    runs = _runs_of(columns)
    assert outcome_table(runs)[srvr_id]["mixed"].outcome == "not-run"
    assert find_gaps(runs) == [srvr_id, ls_id, f"mixed:{ls_id}"]
    # Without pyzk in the run the comparison test counts nowhere but on Apache's side.
    alone = read_junit_by_target(MIXED_JUNIT, "compat[3]", ("apache", "mixed"), "apache",
                                 comparison_kinds(("apache", "mixed")))
    assert srvr_id not in alone["mixed"] and alone["apache"][srvr_id] == REFERENCE_SIDE
    assert comparison_kinds(("apache", "pyzk")) is None


def _case(name: str, target: str | None, failed: bool = False) -> str:
    props = f'<properties><property name="pyzk_target" value="{target}"/></properties>' if target else ""
    failure = '<failure message="no"/>' if failed else ""
    return f'<testcase classname="tests.compat.test_x" name="{name}">{props}{failure}</testcase>'


def test_the_target_property_decides_the_column_and_a_mixed_test_not_run_is_no_gap() -> None:
    """With the conftest's property, "apache" in an id may name a mix's leader (a comparison
    test keeps its whole id); a per-kind test has no mixed variant, so not running it on the
    mixed target is no gap, unless the mixed run was cut short."""
    xml = "<testsuites><testsuite>" + "".join([
        _case("test_mix[2apache+1pyzk-apache-leads]", None, failed=True),
        _case("test_mix[2apache+1pyzk-pyzk-leads]", None),
        _case("test_tool[apache]", "apache"), _case("test_tool[pyzk]", "pyzk"),
        _case("test_load[apache-workload=mixed]", "apache"), _case("test_load[pyzk-workload=mixed]", "pyzk"),
        _case("test_load[mixed-workload=mixed]", "mixed", failed=True),
    ]) + "</testsuite></testsuites>"
    kinds = ("apache", "pyzk", "mixed")
    columns = read_junit_by_target(xml, "compat[3]", kinds, "apache", comparison_kinds(kinds))
    mix = "compat[3]::tests.compat.test_x::test_mix"
    assert columns["pyzk"][f"{mix}[2apache+1pyzk-apache-leads]"].outcome == "failed"
    assert columns["apache"][f"{mix}[2apache+1pyzk-apache-leads]"] == REFERENCE_SIDE
    assert columns["mixed"] == {"compat[3]::tests.compat.test_x::test_load[workload=mixed]": CaseOutcome("failed", "no")}
    runs = _runs_of(columns)
    assert find_gaps(runs) == [f"{mix}[2apache+1pyzk-apache-leads]",
                               "mixed:compat[3]::tests.compat.test_x::test_load[workload=mixed]"]
    runs[2].timed_out = True
    assert "mixed:compat[3]::tests.compat.test_x::test_tool" in find_gaps(runs)


def test_a_mixed_ensemble_is_compared_with_apache_and_its_gaps_carry_its_name() -> None:
    runs = [
        _run("apache", {"a": "passed", "b": "passed", "c": "failed"}, "kazoo[3]"),
        _run("pyzk", {"a": "passed", "b": "passed", "c": "failed"}, "kazoo[3]"),
        _run("mixed", {"a": "failed", "b": "passed", "c": "failed"}, "kazoo[3]"),
    ]
    assert find_gaps(runs) == ["mixed:kazoo[3]::a"]
    assert split_gap_key("mixed:kazoo[3]::a") == ("mixed", "kazoo[3]::a")
    assert split_gap_key("kazoo[3]::a") == ("pyzk", "kazoo[3]::a")
    result = ratchet(runs, [])
    assert result.new_gaps == ["mixed:kazoo[3]::a"]
    assert not ratchet(runs, ["mixed:kazoo[3]::a"]).failed
    # A listed mixed line that passes now must go; pyzk's line of the same test is not it.
    fixed = ratchet(runs, ["mixed:kazoo[3]::a", "mixed:kazoo[3]::b"])
    assert fixed.fixed_gaps == ["mixed:kazoo[3]::b"]
    assert ratchet(runs, ["mixed:kazoo[3]::a", "kazoo[3]::a"]).fixed_gaps == ["kazoo[3]::a"]


def test_mixed_lines_are_kept_and_not_judged_when_no_mixed_target_ran() -> None:
    runs = [
        _run("apache", {"a": "passed"}, "kazoo[3]"),
        _run("pyzk", {"a": "passed"}, "kazoo[3]"),
    ]
    assert not ratchet(runs, ["mixed:kazoo[3]::a"]).failed
    text = updated_known_gaps(runs, ["mixed:kazoo[3]::a"])
    assert parse_known_gaps(text) == ["mixed:kazoo[3]::a"]


def test_a_mixed_target_that_does_not_start_is_one_gap() -> None:
    runs = [
        _run("apache", {"a": "passed"}, "kazoo[3]"),
        _run("mixed", {}, "kazoo[3]", started=False),
    ]
    assert find_gaps(runs) == ["mixed:kazoo[3]::target-starts"]


def test_mixed_targets_run_at_two_servers_or_more_and_only_their_suites() -> None:
    args = parse_args(["--targets", "apache,pyzk,mixed,mixed2", "--sizes", "1,3"])
    assert targets_for(args, "kazoo", 1) == ["apache", "pyzk"]
    assert targets_for(args, "kazoo", 3) == ["apache", "pyzk", "mixed", "mixed2"]
    assert targets_for(args, "compat", 3) == ["apache", "pyzk"]
    args = parse_args(["--targets", "apache,mixed", "--mixed-suites", "kazoo,compat"])
    assert targets_for(args, "compat", 3) == ["apache", "mixed"]


def test_mixed_report_has_a_column_per_target_apache_first() -> None:
    runs = [
        _run("mixed", {"a": "failed"}, "kazoo[3]"),
        _run("pyzk", {"a": "passed"}, "kazoo[3]"),
        _run("apache", {"a": "passed"}, "kazoo[3]"),
    ]
    text = markdown_report(runs, ratchet(runs, []), {})
    assert "| test | apache | pyzk | mixed |" in text
    assert "| `kazoo[3]::a` | passed | passed | failed |" in text
    assert "- `mixed:kazoo[3]::a`: failed" in text


def test_the_shim_picks_each_servers_kind_of_a_mixed_target_by_its_myid() -> None:
    cfg = "dataDir=/d\nserver.1=localhost:1:2:participant\nserver.2=l:3:4\nserver.3=l:5:6\n"
    kinds = {
        target: [shim_server_kind(target, cfg, f"{i}\n") for i in (1, 2, 3)]
        for target in ("mixed", "mixed2", "pyzk", "apache")
    }
    assert kinds == {
        "mixed": ["pyzk", "apache", "apache"],
        "mixed2": ["apache", "pyzk", "pyzk"],
        "pyzk": ["pyzk"] * 3,
        "apache": ["apache"] * 3,
    }
    assert config_data_dir("dataDir=/a\ndataDir = /b\n") == Path("/b")
    assert mixed_server_kinds("mixed", 5) == ["pyzk"] + ["apache"] * 4
