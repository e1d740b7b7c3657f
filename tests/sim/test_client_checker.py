"""The client checker must be able to fail: each rule, fed a bad observation on purpose."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from jute.codes import OpCode
from jute.data import ACL, Id
from jute.txn import CreateTxn, ErrorTxn, SetDataTxn, TxnHeader
from pyzk.sim.client_checker import ClientChecker, ClientOp, ClientViolation

pytestmark = pytest.mark.sim

S1, S2 = 0x100, 0x200
ACL_OPEN = [ACL(31, Id("world", "anyone"))]


def create(checker: ClientChecker, conn: int, xid: int, path: str, tag: bytes, session: int = S1) -> ClientOp:
    op = ClientOp(1, session, conn, xid, OpCode.CREATE, path, tag)
    checker.on_send(op)
    return op


def set_data(checker: ClientChecker, conn: int, xid: int, path: str, tag: bytes, version: int = -1,
             session: int = S1) -> ClientOp:
    op = ClientOp(1, session, conn, xid, OpCode.SET_DATA, path, tag, version)
    checker.on_send(op)
    return op


def commit_create(checker: ClientChecker, zxid: int, path: str, tag: bytes, cxid: int, session: int = S1) -> None:
    checker.on_commit(zxid, TxnHeader(session, cxid, zxid, 0, OpCode.CREATE), CreateTxn(path, tag, ACL_OPEN, False, 1))


def commit_set(checker: ClientChecker, zxid: int, path: str, tag: bytes, version: int, cxid: int,
               session: int = S1) -> None:
    checker.on_commit(zxid, TxnHeader(session, cxid, zxid, 0, OpCode.SET_DATA), SetDataTxn(path, tag, version))


def tree(last_zxid: int, nodes: dict[str, tuple[int, int, bytes]] | None = None) -> SimpleNamespace:
    """A final tree: path -> (czxid, mzxid, data)."""
    return SimpleNamespace(last_processed_zxid=last_zxid,
                           nodes={p: SimpleNamespace(czxid=c, mzxid=m, data=d) for p, (c, m, d) in (nodes or {}).items()})


def test_a_clean_history_passes() -> None:
    checker = ClientChecker()
    create(checker, 1, 1, "/s-", b"c1.1")
    set_data(checker, 1, 2, "/k", b"c1.2", 0)
    commit_create(checker, 0x101, "/s-0000000001", b"c1.1", 1)
    checker.on_reply(1, 1, 0x101, 0, path="/s-0000000001")
    commit_set(checker, 0x102, "/k", b"c1.2", 1, 2)
    checker.on_reply(1, 2, 0x102, 0, version=1)
    checker.check_final({1: tree(0x102, {"/s-0000000001": (0x101, 0x101, b"c1.1"), "/k": (0x50, 0x102, b"c1.2")})})
    assert (checker.ok, checker.errors, checker.indeterminate) == (2, 0, 0)


def test_a_reply_to_another_request_of_the_connection() -> None:
    """Out of order: xid 2 answered while xid 1 is the oldest outstanding request."""
    checker = ClientChecker()
    create(checker, 1, 1, "/a", b"c1.1")
    create(checker, 1, 2, "/b", b"c1.2")
    with pytest.raises(ClientViolation, match=r"\(a\) reply-belongs-to-request.*oldest outstanding"):
        checker.on_reply(1, 2, 0x102, 0, path="/b")


def test_a_reply_on_a_connection_with_nothing_outstanding() -> None:
    """The reply of a request sent on the session's previous connection, on the new one."""
    checker = ClientChecker()
    create(checker, 1, 1, "/a", b"c1.1")
    checker.on_conn_lost(1)
    with pytest.raises(ClientViolation, match=r"\(a\).*nothing outstanding"):
        checker.on_reply(2, 1, 0x102, 0, path="/a")


def test_a_create_answered_with_the_node_of_another_request() -> None:
    """Same xid on two connections of one session (xids restart): the new connection's create
    gets the old connection's txn as its reply."""
    checker = ClientChecker()
    create(checker, 1, 1, "/s-", b"c1.1")
    checker.on_conn_lost(1)
    create(checker, 2, 1, "/s-", b"c1.2")
    commit_create(checker, 0x101, "/s-0000000001", b"c1.1", 1)
    with pytest.raises(ClientViolation, match=r"\(a\).*answered with the txn 0x101 of .*c1.1"):
        checker.on_reply(2, 1, 0x101, 0, path="/s-0000000001")


def test_a_wrong_reply_found_when_its_own_txn_commits_later() -> None:
    checker = ClientChecker()
    create(checker, 1, 1, "/s-", b"c1.1")
    checker.on_reply(1, 1, 0x101, 0, path="/s-0000000001")  # nothing committed yet
    with pytest.raises(ClientViolation, match=r"\(a\).*its own txn is 0x102"):
        commit_create(checker, 0x102, "/s-0000000002", b"c1.1", 1)


def test_a_set_data_answered_with_another_txns_version() -> None:
    checker = ClientChecker()
    set_data(checker, 1, 1, "/k", b"c1.1", 3)
    reply_first = checker.on_reply(1, 1, 0x105, 0, version=7)
    assert reply_first.status == "ok"
    with pytest.raises(ClientViolation, match=r"\(a\).*zxid|\(a\).*version 7"):
        commit_set(checker, 0x105, "/k", b"c1.1", 4, 1)


def test_a_error_reply_for_a_write_that_was_applied() -> None:
    checker = ClientChecker()
    set_data(checker, 1, 1, "/k", b"c1.1", 3)
    checker.on_reply(1, 1, 0x105, -103)
    with pytest.raises(ClientViolation, match=r"\(a\).*answered with error -103 but its txn"):
        commit_set(checker, 0x106, "/k", b"c1.1", 4, 1)


def test_b_acknowledged_write_never_committed() -> None:
    checker = ClientChecker()
    create(checker, 1, 1, "/a", b"c1.1")
    checker.on_reply(1, 1, 0x101, 0, path="/a")
    with pytest.raises(ClientViolation, match=r"\(b\) no-lost-ack.*never committed"):
        checker.check_final({1: tree(0x101)})


def test_b_acknowledged_write_missing_from_a_final_tree() -> None:
    checker = ClientChecker()
    create(checker, 1, 1, "/a", b"c1.1")
    commit_create(checker, 0x101, "/a", b"c1.1", 1)
    checker.on_reply(1, 1, 0x101, 0, path="/a")
    good = tree(0x101, {"/a": (0x101, 0x101, b"c1.1")})
    with pytest.raises(ClientViolation, match=r"\(b\).*server 2"):
        checker.check_final({1: good, 2: tree(0x101)})


def test_c_a_request_applied_twice() -> None:
    checker = ClientChecker()
    set_data(checker, 1, 1, "/k", b"c1.1")
    commit_set(checker, 0x101, "/k", b"c1.1", 1, 1)
    commit_set(checker, 0x101, "/k", b"c1.1", 1, 1)  # the same txn reported again is fine
    with pytest.raises(ClientViolation, match=r"\(c\) at-most-once"):
        commit_set(checker, 0x102, "/k", b"c1.1", 2, 1)


def test_d_a_txn_no_client_sent() -> None:
    checker = ClientChecker()
    with pytest.raises(ClientViolation, match=r"\(d\) no-phantom"):
        commit_create(checker, 0x101, "/a", b"c9.9", 1)


def test_d_a_txn_with_the_data_of_another_sessions_request() -> None:
    checker = ClientChecker()
    create(checker, 1, 1, "/a", b"c1.1", session=S1)
    with pytest.raises(ClientViolation, match=r"\(d\).*carries the data of"):
        commit_create(checker, 0x101, "/a", b"c1.1", 1, session=S2)


def test_e_a_later_request_of_the_session_applied_first() -> None:
    checker = ClientChecker()
    create(checker, 1, 1, "/a", b"c1.1")
    checker.on_conn_lost(1)
    create(checker, 2, 1, "/b", b"c1.2")
    commit_create(checker, 0x101, "/b", b"c1.2", 1)
    commit_create(checker, 0x102, "/a", b"c1.1", 1)
    with pytest.raises(ClientViolation, match=r"\(e\) session-order"):
        checker.check_final({1: tree(0x102)})


def test_f_a_read_older_than_the_sessions_own_write() -> None:
    checker = ClientChecker()
    set_data(checker, 1, 1, "/k", b"c1.1")
    commit_set(checker, 0x101, "/k", b"c1.1", 5, 1)
    checker.on_reply(1, 1, 0x101, 0, version=5)
    checker.on_send(ClientOp(1, S1, 1, 2, OpCode.GET_DATA, "/k"))
    with pytest.raises(ClientViolation, match=r"\(f\) no-stale-read.*already seen version 5"):
        checker.on_reply(1, 2, 0x101, 0, version=4, data=b"c1.0")


def test_f_a_read_of_data_no_committed_txn_wrote() -> None:
    checker = ClientChecker()
    set_data(checker, 1, 1, "/k", b"c1.1")
    commit_set(checker, 0x101, "/k", b"c1.1", 5, 1)
    checker.on_send(ClientOp(2, S2, 2, 1, OpCode.GET_DATA, "/k"))
    with pytest.raises(ClientViolation, match=r"\(f\).*wrote b'c1.1'"):
        checker.on_reply(2, 1, 0x101, 0, version=5, data=b"c2.7")


def test_g_a_read_of_the_data_of_a_later_write_of_its_session() -> None:
    """setData(v1), getData, setData(v2) pipelined: the read returning v2 broke session order
    (a pyzk leader applied both writes before answering the first)."""
    checker = ClientChecker()
    set_data(checker, 1, 1, "/k", b"c1.1")
    checker.on_send(ClientOp(1, S1, 1, 2, OpCode.GET_DATA, "/k"))
    set_data(checker, 1, 3, "/k", b"c1.3")
    commit_set(checker, 0x101, "/k", b"c1.1", 1, 1)
    commit_set(checker, 0x102, "/k", b"c1.3", 2, 3)
    checker.on_reply(1, 1, 0x101, 0, version=1)
    with pytest.raises(ClientViolation, match=r"\(g\) no-read-from-the-future.*xid 3"):
        checker.on_reply(1, 2, 0x102, 0, version=2, data=b"c1.3")


def test_g_a_read_resolved_at_the_end_is_checked_too() -> None:
    checker = ClientChecker()
    set_data(checker, 1, 1, "/k", b"c1.1")
    checker.on_send(ClientOp(1, S1, 1, 2, OpCode.GET_DATA, "/k"))
    set_data(checker, 1, 3, "/k", b"c1.3")
    checker.on_reply(1, 1, 0x101, 0, version=1)
    checker.on_reply(1, 2, 0x102, 0, version=2, data=b"c1.3")  # its txn not reported yet
    commit_set(checker, 0x101, "/k", b"c1.1", 1, 1)
    commit_set(checker, 0x102, "/k", b"c1.3", 2, 3)
    with pytest.raises(ClientViolation, match=r"\(g\) no-read-from-the-future"):
        checker.check_final({1: tree(0x102)})


def test_g_another_sessions_later_write_may_be_read() -> None:
    checker = ClientChecker()
    checker.on_send(ClientOp(1, S1, 1, 1, OpCode.GET_DATA, "/k"))
    set_data(checker, 2, 1, "/k", b"c2.1", session=S2)
    commit_set(checker, 0x101, "/k", b"c2.1", 1, 1, session=S2)
    checker.on_reply(1, 1, 0x101, 0, version=1, data=b"c2.1")


def test_error_txns_and_indeterminate_requests_are_not_violations() -> None:
    checker = ClientChecker()
    create(checker, 1, 1, "/a", b"c1.1")
    create(checker, 1, 2, "/a", b"c1.2")
    commit_create(checker, 0x101, "/a", b"c1.1", 1)
    checker.on_reply(1, 1, 0x101, 0, path="/a")
    checker.on_commit(0x102, TxnHeader(S1, 2, 0x102, 0, OpCode.ERROR), ErrorTxn(-110))
    checker.on_reply(1, 2, 0x102, -110)
    create(checker, 1, 3, "/c", b"c1.3")
    assert checker.on_conn_lost(1) == 1
    checker.check_final({1: tree(0x102, {"/a": (0x101, 0x101, b"c1.1")})})
    assert (checker.ok, checker.errors, checker.indeterminate) == (1, 1, 1)
