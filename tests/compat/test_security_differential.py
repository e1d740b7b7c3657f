"""Security differential: the ACL matrix, watch delivery and auth edge cases run on Apache
ZooKeeper 3.8 and on pyzk, and the normalized replies must be equal.

Rule 1: one standalone server of each kind for the whole module (same zoo.cfg, same -D
properties: a superDigest, extendedTypesEnabled, no container sweeping); every case gets a
fresh node under /sec.  Both servers run the cases at the same time (one thread each).
Rule 2: the cases (tests/compat/security_diff.py) are generated: each node ACL scheme x
each permission set x each identity x each op that checks an ACL (and exists, sync,
getEphemerals, addWatch, setWatches, which check none).  A case's outcome is the setup's
replies, the op's reply, the watch events the identity then sees when the node changes, and
the node's state afterwards, with zxids, times and session ids masked.
Rule 3: a difference fails the test unless security_diff.DELIBERATE_DIFFERENCES lists it;
a listed difference that no longer differs fails it too.
Rule 4: it compares two kinds, so it runs only when PYZK_TARGETS names both (no parameter
of its tests is a bare target name, so the matrix counts them on pyzk's side).
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.compat import security_diff as sd
from tests.compat.conftest import server_kinds_from_env
from tests.compat.rawclient import RawClient, Reply, buffer, int32, parse_watcher_event, ustring
from tests.compat.targets import TARGET_KINDS, start_target

pytestmark = pytest.mark.compat

SYSPROPS = {
    sd.SUPER_DIGEST_PROPERTY: sd.SUPER_DIGEST,
    "zookeeper.extendedTypesEnabled": "true",
    "znode.container.checkIntervalMs": "86400000",
}
SESSION_TIMEOUT_MS = 40_000
REPLY_TIMEOUT_S = 30.0
CHUNK_CASES = 600
PIPELINE = 200  # requests sent before their replies are read
PIPELINE_REPEATS = 5
_NODE = re.compile(r"^/sec/n(\d+)(.*)$")


def auth(scheme: str | None, data: bytes | None, auth_type: int = 0) -> bytes:
    return int32(auth_type) + ustring(scheme) + buffer(data)


class Session:
    """A raw connection; requests are pipelined, replies matched by order, and watch events
    (xid -1) collected on the side."""

    def __init__(self, hosts: str, logins: list[bytes]) -> None:
        self.client = RawClient.to(hosts, REPLY_TIMEOUT_S)
        self.client.handshake(timeout_ms=SESSION_TIMEOUT_MS)
        self.events: list[tuple[int, int, str | None]] = []
        self.xid = 0
        for login in logins:
            assert self.exchange([sd.Request(sd.XID_AUTH, sd.OP_AUTH, auth("digest", login))])[0].err == 0

    def exchange(self, requests: list[sd.Request]) -> list[Reply]:
        replies: list[Reply] = []
        for start in range(0, len(requests), PIPELINE):
            batch = requests[start:start + PIPELINE]
            frames = []
            for request in batch:
                if request.xid is None:
                    self.xid += 1
                xid = self.xid if request.xid is None else request.xid
                body = int32(xid) + int32(request.op) + request.record
                frames.append(int32(len(body)) + body)
            self.client.send_raw(b"".join(frames))
            while len(replies) < start + len(batch):
                reply = self.client.recv_reply()
                if reply.xid == -1:
                    self.events.append(parse_watcher_event(reply.body))
                else:
                    replies.append(reply)
        return replies

    def flush_events(self) -> list[tuple[int, int, str | None]]:
        """Every event sent before a ping's reply."""
        (pong,) = self.exchange([sd.Request(sd.XID_PING, sd.OP_PING, b"")])
        assert pong.xid == sd.XID_PING
        events, self.events = self.events, []
        return events

    def close(self) -> None:
        self.client.close()


def outcomes(requests: list[sd.Request], replies: list[Reply]) -> list[tuple]:
    return [sd.outcome(request.op, reply.err, reply.body) for request, reply in zip(requests, replies, strict=True)]


def _run_part(record: dict[int, dict[str, Any]], session: Session, part: str,
              make: Callable[[sd.Case], list[sd.Request]], group: list[sd.Case]) -> None:
    """Each case's requests of one part, pipelined on one session; outcomes into record."""
    plan = [(case, make(case)) for case in group]
    replies = iter(session.exchange([req for _, reqs in plan for req in reqs]))
    for case, reqs in plan:
        record[case.index][part] = outcomes(reqs, [next(replies) for _ in reqs])


def run_matrix(hosts: str, cases: list[sd.Case]) -> dict[str, Any]:
    setup = Session(hosts, [sd.SUPER, sd.ALICE])
    who = {name: Session(hosts, logins) for name, logins in sd.IDENTITIES.items()}
    try:
        assert setup.exchange([sd.Request(None, sd.OP_CREATE, sd.create_record("/sec"))])[0].err == 0
        result: dict[str, Any] = {}
        for start in range(0, len(cases), CHUNK_CASES):
            chunk = cases[start:start + CHUNK_CASES]
            record: dict[int, dict[str, Any]] = {case.index: {} for case in chunk}

            run = functools.partial(_run_part, record)

            run(setup, "setup", sd.setup_requests, chunk)
            for name, session in who.items():
                run(session, "op", lambda case: sd.op_requests(case.op, case.node),
                    [case for case in chunk if case.identity == name])
            before = {name: session.flush_events() for name, session in who.items()}
            run(setup, "trigger", sd.trigger_requests, chunk)
            after = {name: session.flush_events() for name, session in who.items()}
            for name in who:
                for phase, events in (("events_at_op", before[name]), ("events_on_change", after[name])):
                    for event_type, _state, path in events:
                        match = _NODE.match(path or "")
                        assert match, f"event for an unexpected path {path!r}"
                        record[int(match.group(1))].setdefault(phase, []).append((event_type, match.group(2)))
            run(setup, "after", sd.readout_requests, chunk)
            for case in chunk:
                entry = record[case.index]
                for phase in ("events_at_op", "events_on_change"):
                    entry[phase] = sorted(entry.get(phase, []))
                result[case.id] = entry
        return result
    finally:
        setup.close()
        for session in who.values():
            session.close()


def _open(hosts: str) -> RawClient:
    client = RawClient.to(hosts, REPLY_TIMEOUT_S)
    client.handshake(timeout_ms=SESSION_TIMEOUT_MS)
    return client


def raw_sequence(hosts: str, frames: list[tuple[int, int, bytes]]) -> dict[str, Any]:
    """Pipeline (xid, op, record) frames and a ping on a fresh connection; every reply until
    the ping's, or until the server closes the connection."""
    client = _open(hosts)
    try:
        client.send_raw(b"".join(
            int32(8 + len(record)) + int32(xid) + int32(op) + record
            for xid, op, record in [*frames, (sd.XID_PING, sd.OP_PING, b"")]))
        replies: list[tuple] = []
        closed = False
        ops = {xid: op for xid, op, _ in frames}
        for _ in range(len(frames) + 1):
            try:
                reply = client.recv_reply()
            except ConnectionError:
                closed = True
                break
            if reply.xid == sd.XID_PING:
                break
            replies.append((reply.xid, *sd.outcome(ops.get(reply.xid, -999), reply.err, reply.body)))
        return {"replies": replies, "closed": closed}
    finally:
        client.close()


def whoami_frame(xid: int) -> tuple[int, int, bytes]:
    return (xid, sd.OP_WHO_AM_I, b"")


def auth_frame(scheme: str | None, data: bytes | None, auth_type: int = 0,
               xid: int = sd.XID_AUTH) -> tuple[int, int, bytes]:
    return (xid, sd.OP_AUTH, auth(scheme, data, auth_type))


def get_data_frame(xid: int, path: str) -> tuple[int, int, bytes]:
    return (xid, sd.OP_GET_DATA, sd.path_watch(path))


EDGE_NODE = "/sec_edge"


def run_edge_cases(hosts: str) -> dict[str, Any]:
    """Auth edge cases (each on a fresh connection) and pipelined setACL revocations."""
    setup = Session(hosts, [sd.SUPER])
    try:
        acl = sd.acl_vector([(sd.READ, "digest", sd.digest_id(sd.ALICE))])
        assert setup.exchange([sd.Request(None, sd.OP_CREATE, sd.create_record(EDGE_NODE, acl))])[0].err == 0
    finally:
        setup.close()
    alice = (sd.XID_AUTH, sd.OP_AUTH, auth("digest", sd.ALICE))
    sequences = {
        "edge-auth/unknown-scheme": [auth_frame("foo", b"x"), whoami_frame(1)],
        "edge-auth/empty-scheme": [auth_frame("", b"x"), whoami_frame(1)],
        "edge-auth/null-scheme": [auth_frame(None, b"x"), whoami_frame(1)],
        "edge-auth/digest-empty": [auth_frame("digest", b""), whoami_frame(1)],
        "edge-auth/digest-null-buffer": [auth_frame("digest", None), whoami_frame(1)],
        "edge-auth/digest-no-colon": [auth_frame("digest", b"alice"), whoami_frame(1), get_data_frame(2, EDGE_NODE)],
        "edge-auth/digest-two-colons": [auth_frame("digest", b"alice:alicepw:x"), whoami_frame(1)],
        "edge-auth/digest-wrong-password": [auth_frame("digest", sd.MALLORY), get_data_frame(1, EDGE_NODE)],
        "edge-auth/after-a-failed-one": [auth_frame("foo", b"x"), alice, whoami_frame(1)],
        "edge-auth/multiple-digest-ids": [auth_frame("digest", sd.MALLORY), alice, auth_frame("digest", b"bob:pw"),
                                     alice, whoami_frame(1), get_data_frame(2, EDGE_NODE)],
        "edge-auth/super": [auth_frame("digest", sd.SUPER), whoami_frame(1), get_data_frame(2, EDGE_NODE)],
        "edge-auth/super-wrong-password": [auth_frame("digest", b"super:nope"), get_data_frame(1, EDGE_NODE)],
        "edge-auth/ip-scheme": [auth_frame("ip", b"10.0.0.1"), whoami_frame(1)],
        "edge-auth/super-scheme": [auth_frame("super", b""), whoami_frame(1)],
        "edge-auth/world-scheme": [auth_frame("world", b"anyone"), whoami_frame(1)],
        "edge-auth/sasl-scheme": [auth_frame("sasl", b"x"), whoami_frame(1)],
        "edge-auth/x509-scheme": [auth_frame("x509", b"x"), whoami_frame(1)],
        "edge-auth/type-1": [auth_frame("digest", sd.ALICE, auth_type=1), whoami_frame(1)],
        "edge-auth/ordinary-xid": [auth_frame("digest", sd.ALICE, xid=7), whoami_frame(8)],
        "edge-auth/anonymous-whoami": [whoami_frame(1), get_data_frame(2, EDGE_NODE)],
    }
    result = {case: raw_sequence(hosts, frames) for case, frames in sequences.items()}

    # Pipelined: alice revokes her own permission and, in the same send, uses it.  Apache's
    # outcome races its commit of the setACL, so each case runs REPEATS times (behind a
    # 512 KiB write, which widens the window) and its outcome is the set of distinct results.
    open_all = sd.acl_vector([(sd.ALL, "digest", sd.digest_id(sd.ALICE))])
    revokes = {"create": sd.ALL & ~sd.CREATE, "setData": sd.ALL & ~sd.WRITE, "delete": sd.ALL & ~sd.DELETE}
    setup = Session(hosts, [sd.SUPER])
    session = Session(hosts, [sd.ALICE])
    try:
        assert setup.exchange([sd.Request(None, sd.OP_CREATE, sd.create_record("/sec_pipe_big"))])[0].err == 0
        for name, perms in revokes.items():
            seen = set()
            for rep in range(PIPELINE_REPEATS):
                node = f"/sec_pipe_{name}_{rep}"
                assert [r.err for r in setup.exchange([
                    sd.Request(None, sd.OP_CREATE, sd.create_record(node, open_all)),
                    sd.Request(None, sd.OP_CREATE, sd.create_record(node + "/k"))])] == [0, 0]
                widen = sd.Request(None, sd.OP_SET_DATA, ustring("/sec_pipe_big") + buffer(b"b" * 512 * 1024) + int32(-1))
                revoke = sd.Request(None, sd.OP_SET_ACL, ustring(node) + sd.acl_vector(
                    [(perms, "digest", sd.digest_id(sd.ALICE))]) + int32(-1))
                use = {
                    "create": sd.Request(None, sd.OP_CREATE, sd.create_record(node + "/x")),
                    "setData": sd.Request(None, sd.OP_SET_DATA, ustring(node) + buffer(b"x") + int32(-1)),
                    "delete": sd.Request(None, sd.OP_DELETE, ustring(node + "/k") + int32(-1)),
                }[name]
                replies = session.exchange([widen, revoke, use])
                children = setup.exchange([sd.Request(None, sd.OP_GET_CHILDREN, sd.path_watch(node))])
                seen.add(repr((outcomes([revoke, use], replies[1:]),
                               outcomes([sd.Request(None, sd.OP_GET_CHILDREN, b"")], children)))
                         .replace(node, "/sec_pipe_" + name))
            result[f"pipelined/setACL-revoke-then-{name}"] = sorted(seen)
    finally:
        setup.close()
        session.close()
    return result


def collect(kind: str, workdir: Path, cases: list[sd.Case]) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    with start_target(kind, 1, {"maxClientCnxns": "0"}, SYSPROPS, workdir=workdir) as ensemble:
        traces = run_matrix(ensemble.hosts, cases)
        traces.update(run_edge_cases(ensemble.hosts))
    return traces, time.monotonic() - started


@pytest.fixture(scope="module")
def traces(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    if not set(TARGET_KINDS) <= set(server_kinds_from_env()):
        pytest.skip("the security comparison needs both server kinds in PYZK_TARGETS")
    cases = sd.matrix()
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="secdiff") as pool:
        futures = {kind: pool.submit(collect, kind, tmp_path_factory.mktemp(f"secdiff-{kind}"), cases)
                   for kind in TARGET_KINDS}
        results = {kind: future.result() for kind, future in futures.items()}
    line = (f"security differential: {len(cases)} matrix cases + "
            f"{len(results['pyzk'][0]) - len(cases)} edge cases on each server; "
            + ", ".join(f"{kind} {elapsed:.1f} s" for kind, (_, elapsed) in results.items()))
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(line)
    print(line)
    yield {kind: traces for kind, (traces, _) in results.items()}


def _group(traces: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {case: outcome for case, outcome in traces.items() if case.startswith(prefix)}


@pytest.mark.parametrize("group", ["matrix", "edge-auth/", "pipelined/"])
def test_security_matches_apache(traces: dict[str, dict[str, Any]], group: str) -> None:
    def select(trace: dict[str, Any]) -> dict[str, Any]:
        if group == "matrix":
            return {case: value for case, value in trace.items() if not case.startswith(("edge-auth/", "pipelined/"))}
        return _group(trace, group)

    table = {pattern: entry for pattern, entry in sd.DELIBERATE_DIFFERENCES.items()
             if (group == "matrix") == (not pattern.startswith(("edge-auth/", "pipelined/")))
             and (group == "matrix" or pattern.startswith(group))}
    apache, pyzk = select(traces["apache"]), select(traces["pyzk"])
    assert apache and set(apache) == set(pyzk)
    problems = sd.compare(apache, pyzk, table)
    shown = "\n".join(str(problem) for problem in problems[:25])
    assert not problems, f"{len(problems)} problems in {len(apache)} cases:\n{shown}"


def test_the_matrix_is_not_vacuous(traces: dict[str, dict[str, Any]]) -> None:
    """A few facts both servers must show, so equal traces are not equally broken."""
    for kind, trace in traces.items():
        assert trace["world/none/anon/getData"]["op"] == [(-102, None)], kind  # NOAUTH
        assert trace["world/none/super/getData"]["op"][0][0] == 0, kind
        assert trace["world/none/anon/exists"]["op"][0][0] == 0, kind  # exists checks no ACL
        assert trace["digest/r/alice/getData"]["op"][0][0] == 0, kind
        assert trace["digest/r/mallory/getData"]["op"] == [(-102, None)], kind
        assert trace["ipcidr/r/anon/getData"]["op"][0][0] == 0, kind
        assert trace["ipother/r/anon/getData"]["op"] == [(-102, None)], kind
        multi = trace["world/r/anon/multi_create"]["op"][0][1]
        assert [entry[2] for entry in multi] == [0, -102, -2], kind  # ok (rolled back), NOAUTH, RUNTIMEINCONSISTENCY
