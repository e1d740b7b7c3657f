"""The security differential's comparator (tests/compat/security_diff.py) fails when it
should: a difference not in the table, and a table entry that no longer differs."""

from __future__ import annotations

import fnmatch

from tests.compat import security_diff as sd
from tests.compat.rawclient import STAT

NOAUTH = -102


def stat_bytes(version: int, czxid: int) -> bytes:
    return STAT.pack(czxid, czxid, 1_700_000_000_000 + czxid, 1_700_000_000_000, version, 0, 0, 0, 1, 0, czxid)


def test_equal_traces_with_different_zxids_have_no_problem() -> None:
    apache = {"world/r/anon/exists": sd.outcome(sd.OP_EXISTS, 0, stat_bytes(3, 0x10))}
    pyzk = {"world/r/anon/exists": sd.outcome(sd.OP_EXISTS, 0, stat_bytes(3, 0x99))}
    assert sd.compare(apache, pyzk, {}) == []


def test_a_difference_not_in_the_table_is_a_problem() -> None:
    apache = {"world/r/anon/getData": sd.outcome(sd.OP_GET_DATA, NOAUTH, b""),
              "world/r/anon/exists": sd.outcome(sd.OP_EXISTS, 0, stat_bytes(3, 1))}
    pyzk = {"world/r/anon/getData": sd.outcome(sd.OP_GET_DATA, 0, b"\x00\x00\x00\x01d" + stat_bytes(0, 1)),
            "world/r/anon/exists": sd.outcome(sd.OP_EXISTS, 0, stat_bytes(4, 1))}  # version differs
    problems = sd.compare(apache, pyzk, {})
    assert [(p.case, p.kind) for p in problems] == [("world/r/anon/getData", "differs"),
                                                     ("world/r/anon/exists", "differs")]
    assert "apache (-102, None) != pyzk" in str(problems[0])


def test_a_case_missing_on_one_side_is_a_problem() -> None:
    problems = sd.compare({"a": (0, None)}, {"a": (0, None), "b": (0, None)}, {})
    assert [(p.case, p.kind) for p in problems] == [("b", "differs")]


def test_a_listed_difference_passes_and_a_stale_entry_fails() -> None:
    table = {"pipelined/*-create": sd.Deliberate("old ACL", "new ACL"),
             "pipelined/*-setData": sd.Deliberate("old ACL", "new ACL")}
    apache = {"pipelined/x-create": [(0, "/n/x")], "pipelined/x-setData": [(NOAUTH, None)]}
    pyzk = {"pipelined/x-create": [(NOAUTH, None)], "pipelined/x-setData": [(NOAUTH, None)]}
    problems = sd.compare(apache, pyzk, table)
    assert [(p.case, p.kind) for p in problems] == [("pipelined/*-setData", "stale")]


def test_the_real_table_matches_only_its_own_cases() -> None:
    """No entry of the shipped table may excuse a matrix case."""
    ids = [case.id for case in sd.matrix()]
    assert len(ids) == len(set(ids)) >= 5000
    for pattern in sd.DELIBERATE_DIFFERENCES:
        assert not [case for case in ids if fnmatch.fnmatchcase(case, pattern)], pattern


def test_multi_results_are_normalized_per_op() -> None:
    body = (b"\xff\xff\xff\xff\x00\x00\x00\x00\x00" + b"\x00\x00\x00\x00"          # error, err 0
            + b"\xff\xff\xff\xff\x00\xff\xff\xff\x9a" + b"\xff\xff\xff\x9a"        # NOAUTH
            + b"\xff\xff\xff\xff\x00\xff\xff\xff\xfe" + b"\xff\xff\xff\xfe"        # RUNTIMEINCONSISTENCY
            + b"\xff\xff\xff\xff\x01\xff\xff\xff\xff")                             # done
    assert sd.outcome(sd.OP_MULTI, 0, body) == (0, [("error", 0, 0), ("error", -102, -102), ("error", -2, -2)])
