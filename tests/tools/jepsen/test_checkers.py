"""The Jepsen checkers on hand-made histories: bad ones must be caught, good ones accepted."""

from __future__ import annotations

import random

from tests.jepsen.checkers import (
    check_ephemerals,
    check_registers,
    check_sequential_creates,
    check_session_order,
    check_trees_identical,
    check_unique_creates,
    linearizable,
    register_ops,
    register_symmetry,
    unread_values,
)
from tests.jepsen.history import FAIL, INFO, OK, History, op, ops_from_json

K = "/jepsen/reg/k0"
INIT = "init"


def kinds(anomalies: list[str]) -> set[str]:
    return {a.split(":", 1)[0] for a in anomalies}


# ---- registers -----------------------------------------------------------------------------------


def test_sequential_good_register_history_passes() -> None:
    ops = [
        op(0, "write", K, "a", 0, 1, OK, 1),
        op(1, "read", K, None, 2, 3, OK, ["a", 1]),
        op(2, "cas", K, [1, "b"], 4, 5, OK, 2),
        op(3, "cas", K, [1, "c"], 6, 7, FAIL, error="BadVersionError"),
        op(4, "read", K, None, 8, 9, OK, ["b", 2]),
    ]
    assert check_registers(ops, INIT) == []


def test_concurrent_ops_may_linearize_in_either_order() -> None:
    # The read overlaps the write: it may see the old or the new value.
    for seen in (["init", 0], ["a", 1]):
        ops = [op(0, "write", K, "a", 0, 10, OK, 1), op(1, "read", K, None, 1, 2, OK, seen)]
        assert check_registers(ops, INIT) == [], seen


def test_info_write_may_happen_later_or_never() -> None:
    base = [
        op(0, "write", K, "a", 0, 1, INFO, error="ConnectionLoss"),
        op(1, "read", K, None, 2, 3, OK, ["init", 0]),
    ]
    assert check_registers(base, INIT) == []  # not yet (or never)
    later = base + [op(2, "read", K, None, 10, 11, OK, ["a", 1])]
    assert check_registers(later, INIT) == []  # took effect between the reads
    never = base + [op(2, "write", K, "b", 10, 11, OK, 1)]
    assert check_registers(never, INIT) == []  # never happened: b got version 1


def test_info_cas_only_applies_on_its_version() -> None:
    ops = [
        op(0, "cas", K, [0, "a"], 0, 1, INFO, error="OperationTimeout"),
        op(1, "read", K, None, 2, 3, OK, ["a", 1]),
    ]
    assert check_registers(ops, INIT) == []
    wrong = [
        op(0, "write", K, "x", 0, 1, OK, 1),
        op(1, "cas", K, [0, "a"], 2, 3, INFO, error="OperationTimeout"),
        op(2, "read", K, None, 4, 5, OK, ["a", 2]),
    ]
    assert "nonlinearizable" in kinds(check_registers(wrong, INIT))


def test_lost_write_is_caught() -> None:
    ops = [
        op(0, "write", K, "a", 0, 1, OK, 1),
        op(1, "read", K, None, 2, 3, OK, ["init", 0]),
    ]
    assert kinds(check_registers(ops, INIT)) == {"nonlinearizable"}


def test_stale_read_after_completed_write_is_caught() -> None:
    ops = [
        op(0, "write", K, "a", 0, 1, OK, 1),
        op(1, "write", K, "b", 2, 3, OK, 2),
        op(2, "read", K, None, 4, 5, OK, ["a", 1]),
    ]
    anomalies = check_registers(ops, INIT)
    assert kinds(anomalies) == {"nonlinearizable"}
    assert "op#2" in anomalies[0] and "['a', 1]" in anomalies[0]


def test_two_cas_succeeding_on_one_version_is_caught() -> None:
    ops = [
        op(0, "cas", K, [0, "a"], 0, 5, OK, 1),
        op(1, "cas", K, [0, "b"], 1, 6, OK, 1),
    ]
    assert {"nonlinearizable", "duplicate-version"} <= kinds(check_registers(ops, INIT))


def test_cas_failing_badversion_on_matching_version_is_caught() -> None:
    ops = [
        op(0, "write", K, "a", 0, 1, OK, 1),
        op(1, "cas", K, [1, "b"], 2, 3, FAIL, error="BadVersionError"),
        op(2, "read", K, None, 4, 5, OK, ["a", 1]),
    ]
    assert kinds(check_registers(ops, INIT)) == {"nonlinearizable"}


def test_reply_of_another_request_on_cas_is_caught() -> None:
    # The pyzk bug: setData expecting version 95 answered "ok, version 143".
    ops = [op(0, "cas", K, [95, "z"], 0, 1, OK, 143)]
    anomalies = check_registers(ops, ("v95"))
    assert "reply-mismatch" in kinds(anomalies)
    assert "expected version 95 replied ok, version 143" in anomalies[0]


def test_write_returning_a_wrong_version_is_caught() -> None:
    ops = [op(0, "write", K, "a", 0, 1, OK, 7)]
    assert kinds(check_registers(ops, INIT)) == {"nonlinearizable"}


def test_keys_are_checked_independently() -> None:
    ops = [
        op(0, "write", "/k1", "a", 0, 1, OK, 1),
        op(1, "write", "/k2", "b", 0, 1, OK, 1),
        op(2, "read", "/k1", None, 2, 3, OK, ["a", 1]),
        op(3, "read", "/k2", None, 2, 3, OK, ["b", 1]),
    ]
    assert check_registers(ops, INIT) == []


def test_budget_exhaustion_reports_unknown_not_pass() -> None:
    ops = [op(i, "write", K, f"v{i}", 0, 100, OK, i + 1) for i in range(12)]
    anomalies = check_registers(ops, INIT, budget=5)
    assert kinds(anomalies) == {"unknown"}


def test_many_info_ops_stay_tractable() -> None:
    rng = random.Random(7)
    ops, t, version, value = [], 0.0, 0, INIT
    for i in range(400):
        t += 1
        if rng.random() < 0.1:
            ops.append(op(i, "write", K, f"lost{i}", t, t + 0.5, INFO, error="ConnectionLoss"))
        elif rng.random() < 0.5:
            version += 1
            value = f"v{i}"
            ops.append(op(i, "write", K, value, t, t + 0.5, OK, version))
        else:
            ops.append(op(i, "read", K, None, t, t + 0.5, OK, [value, version]))
    result = linearizable(unread_values(register_ops(ops)), (INIT, 0),
                          symmetry=register_symmetry)
    assert result.valid is True, result.detail


# ---- creates -------------------------------------------------------------------------------------

U = "/jepsen/uniq"
S = "/jepsen/seq"


def test_unique_creates_good_history_passes() -> None:
    ops = [
        op(0, "create", f"{U}/w0-0", "w0-0", 0, 1, OK, f"{U}/w0-0"),
        op(1, "create", f"{U}/w0-1", "w0-1", 2, 3, INFO, error="ConnectionLoss"),
        op(2, "create", f"{U}/w1-0", "w1-0", 2, 3, INFO, error="ConnectionLoss"),
    ]
    tree = {f"{U}/w0-0": ["w0-0", 0, 0], f"{U}/w0-1": ["w0-1", 0, 0]}
    assert check_unique_creates(ops, tree, U) == []


def test_lost_create_and_phantom_are_caught() -> None:
    ops = [
        op(0, "create", f"{U}/w0-0", "w0-0", 0, 1, OK, f"{U}/w0-0"),
        op(1, "create", f"{U}/w0-1", "w0-1", 0, 1, FAIL, error="NoNodeError"),
    ]
    tree = {f"{U}/w0-1": ["w0-1", 0, 0], f"{U}/ghost": ["ghost", 0, 0]}
    anomalies = check_unique_creates(ops, tree, U)
    assert kinds(anomalies) == {"lost", "phantom"}
    assert len(anomalies) == 3


def test_sequential_creates_good_history_passes() -> None:
    ops = [
        op(0, "seq-create", f"{S}/s-", "w0-0", 0, 1, OK, f"{S}/s-0000000000"),
        op(1, "seq-create", f"{S}/s-", "w1-0", 0, 2, INFO, error="ConnectionLoss"),
        op(2, "seq-create", f"{S}/s-", "w1-1", 3, 4, OK, f"{S}/s-0000000002"),
        op(3, "seq-create", f"{S}/s-", "w2-0", 3, 4, INFO, error="ConnectionLoss"),
    ]
    tree = {f"{S}/s-0000000000": ["w0-0", 0, 0], f"{S}/s-0000000001": ["w1-0", 0, 0],
            f"{S}/s-0000000002": ["w1-1", 0, 0]}
    assert check_sequential_creates(ops, tree, S) == []


def test_duplicate_sequence_name_is_caught() -> None:
    ops = [
        op(0, "seq-create", f"{S}/s-", "w0-0", 0, 1, OK, f"{S}/s-0000000000"),
        op(1, "seq-create", f"{S}/s-", "w1-0", 0, 1, OK, f"{S}/s-0000000000"),
    ]
    tree = {f"{S}/s-0000000000": ["w0-0", 0, 0], f"{S}/s-0000000001": ["w1-0", 0, 0]}
    assert "duplicate-name" in kinds(check_sequential_creates(ops, tree, S))


def test_reply_of_another_request_is_caught() -> None:
    # Two creates acknowledged with each other's names.
    ops = [
        op(0, "seq-create", f"{S}/s-", "w0-0", 0, 1, OK, f"{S}/s-0000000001"),
        op(1, "seq-create", f"{S}/s-", "w1-0", 0, 1, OK, f"{S}/s-0000000000"),
    ]
    tree = {f"{S}/s-0000000000": ["w0-0", 0, 0], f"{S}/s-0000000001": ["w1-0", 0, 0]}
    anomalies = check_sequential_creates(ops, tree, S)
    assert kinds(anomalies) == {"reply-of-another-request"}
    assert len(anomalies) == 2
    assert "op#1" in anomalies[0]


def test_create_acknowledged_with_an_earlier_write_path_is_caught() -> None:
    ops = [
        op(0, "seq-create", f"{S}/s-", "w0-0", 0, 1, OK, f"{S}/s-0000000000"),
        op(1, "seq-create", f"{S}/s-", "w0-1", 2, 3, OK, f"{S}/s-0000000000"),
    ]
    tree = {f"{S}/s-0000000000": ["w0-0", 0, 0], f"{S}/s-0000000001": ["w0-1", 0, 0]}
    assert {"reply-of-another-request", "duplicate-name"} <= kinds(
        check_sequential_creates(ops, tree, S))


def test_sequential_create_applied_twice_and_lost_and_phantom() -> None:
    ops = [
        op(0, "seq-create", f"{S}/s-", "w0-0", 0, 1, OK, f"{S}/s-0000000000"),
        op(1, "seq-create", f"{S}/s-", "w0-1", 2, 3, OK, f"{S}/s-0000000002"),
        op(2, "seq-create", f"{S}/s-", "w0-2", 4, 5, FAIL, error="NoNodeError"),
    ]
    tree = {f"{S}/s-0000000000": ["w0-0", 0, 0], f"{S}/s-0000000001": ["w0-0", 0, 0],
            f"{S}/s-0000000003": ["w0-2", 0, 0], f"{S}/s-0000000004": ["zz", 0, 0]}
    assert kinds(check_sequential_creates(ops, tree, S)) == {"duplicate", "lost", "phantom"}


def test_replies_that_belong_to_other_request_types_are_caught() -> None:
    ops = [
        op(0, "create", f"{U}/w0-1", "w0-1", 0, 1, FAIL, error="BadVersionError"),
        op(1, "create", f"{U}/w0-2", "w0-2", 0, 1, OK, f"{S}/s-0000000007"),
    ]
    tree = {f"{U}/w0-1": ["w0-1", 0, 0], f"{U}/w0-2": ["w0-2", 0, 0]}
    assert "reply-of-another-request" in kinds(check_unique_creates(ops, tree, U))
    seq = [op(0, "seq-create", f"{S}/s-", "w0-0", 0, 1, OK, f"{U}/w1-3")]
    assert "reply-of-another-request" in kinds(check_sequential_creates(seq, {}, S))
    regs = [op(0, "write", K, "a", 0, 1, FAIL, error="BadVersionError"),
            op(1, "cas", K, [0, "b"], 0, 1, FAIL, error="NodeExistsError")]
    anomalies = check_registers(regs, INIT)
    assert [a.split(":", 1)[0] for a in anomalies] == ["reply-of-another-request"] * 2


# ---- ephemerals and trees -------------------------------------------------------------------------

E = "/jepsen/eph"


def test_ephemeral_that_survived_its_session_is_caught() -> None:
    ops = [
        op(0, "eph-create", f"{E}/e-0", "e-0", 0, 1, OK, [f"{E}/e-0", 0x1234]),
        op(1, "eph-end", "0x1234", "abandon", 1, 2, OK),
    ]
    assert check_ephemerals(ops, {1: {}, 2: {}, 3: {}}, E) == []
    anomalies = check_ephemerals(ops, {1: {}, 2: {f"{E}/e-0": ["e-0", 0, 0x1234]}, 3: None}, E)
    assert kinds(anomalies) == {"ephemeral-survived"}
    assert "member 2" in anomalies[0] and "0x1234" in anomalies[0]


def test_identical_trees_pass_and_diverging_trees_are_caught() -> None:
    tree = {"/jepsen/a": ["x", 1, 0], "/jepsen/b": ["y", 0, 0]}
    assert check_trees_identical({1: tree, 2: dict(tree), 3: dict(tree)}) == []
    # Same paths and data but another version, a missing node, an unreadable member.
    bad_version = {"/jepsen/a": ["x", 2, 0], "/jepsen/b": ["y", 0, 0]}
    missing = {"/jepsen/a": ["x", 1, 0]}
    anomalies = check_trees_identical({1: tree, 2: bad_version, 3: missing})
    assert kinds(anomalies) == {"trees-differ"}
    assert len(anomalies) == 2
    assert kinds(check_trees_identical({1: tree, 2: tree, 3: None})) == {"trees-differ"}


# ---- history -----------------------------------------------------------------------------------------


def test_history_round_trips_and_counts() -> None:
    h = History()
    a = h.invoke(0, "write", K, "a", t=0.0)
    h.complete(a, OK, 1, t=1.0)
    b = h.invoke(1, "read", K, None, t=0.5)
    h.finalize()
    assert b.status == INFO
    assert h.counts() == {OK: 1, FAIL: 0, INFO: 1}
    assert [e["type"] for e in h.events] == ["invoke", "ok", "invoke", "info"]
    again = ops_from_json(h.to_json())
    assert check_registers(again, INIT) == []


# ---- session order ---------------------------------------------------------------------------------


def test_a_read_returning_a_later_write_of_its_own_client_is_caught() -> None:
    """write a, read, write b sent together by one client: the read saw b (a pyzk leader did
    this when one fsync covered both writes). Linearizable as concurrent ops, not FIFO."""
    ops = [
        op(0, "write", K, "w1-1", 0, 3, OK, 1, process=1000),
        op(1, "read", K, None, 0, 3, OK, ["w1-2", 2], process=1000),
        op(2, "write", K, "w1-2", 0, 3, OK, 2, process=1000),
    ]
    assert check_registers(ops, INIT) == []
    assert kinds(check_session_order(ops)) == {"read-from-the-future"}


def test_a_later_write_of_another_client_or_an_earlier_own_write_may_be_read() -> None:
    ops = [
        op(0, "write", K, "w1-1", 0, 3, OK, 1, process=1000),
        op(1, "read", K, None, 0, 3, OK, ["w1-1", 1], process=1001),  # same worker, after an info
        op(2, "read", K, None, 0, 3, OK, ["w2-1", 2], process=1001),
        op(3, "write", K, "w2-1", 0, 3, OK, 2, process=2000),
    ]
    assert check_session_order(ops) == []
