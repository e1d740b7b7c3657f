"""The security differential's pure parts: the case matrix, request bytes, reply
normalization, and the comparator with its table of deliberate differences.

Rule 1: no sockets here (tests/compat/test_security_differential.py runs the cases); this
module is what tests/tools/test_security_comparator.py checks without a server.
Rule 2: like rawclient.py, it never imports pyzk: it is a second reading of the wire format.
Rule 3: a case's outcome is a plain value (tuples, lists, strings, ints) with every field that
may differ between two correct servers masked: zxids, times, session ids.  What is left
(error codes, paths, data, versions, ACLs, which watch events arrived) must be equal, unless
the case is in DELIBERATE_DIFFERENCES.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import struct
from dataclasses import dataclass
from typing import Any

from tests.compat.rawclient import (
    STAT,
    boolean,
    buffer,
    int32,
    int64,
    open_acl,
    read_ustring,
    string_vector,
    ustring,
)

# Identities: the password each digest login uses (None: anonymous).
ALICE = b"alice:alicepw"
MALLORY = b"alice:wrongpw"  # alice's name with a wrong password: another digest id
SUPER = b"super:superpw"


def digest_id(user_password: bytes) -> str:
    user = user_password.split(b":", 1)[0].decode()
    return f"{user}:{base64.b64encode(hashlib.sha1(user_password).digest()).decode()}"


SUPER_DIGEST = digest_id(SUPER)
SUPER_DIGEST_PROPERTY = "zookeeper.DigestAuthenticationProvider.superDigest"

IDENTITIES: dict[str, list[bytes]] = {
    "anon": [],
    "alice": [ALICE],
    "mallory": [MALLORY],
    "super": [SUPER],
}

# Schemes of the node's ACL: (scheme, id) as sent in the create request.
SCHEMES: dict[str, tuple[str, str]] = {
    "world": ("world", "anyone"),
    "auth": ("auth", ""),  # the creator's ids (the setup session: super and alice)
    "digest": ("digest", digest_id(ALICE)),
    "ip": ("ip", "127.0.0.1"),
    "ipcidr": ("ip", "127.0.0.0/8"),
    "ipother": ("ip", "10.0.0.0/8"),
    "ipotherhost": ("ip", "10.1.2.3"),
}
READ, WRITE, CREATE, DELETE, ADMIN, ALL = 1, 2, 4, 8, 16, 31
PERMS: dict[str, int] = {"r": READ, "w": WRITE, "c": CREATE, "d": DELETE, "a": ADMIN,
                         "all": ALL, "none": 0}

OP_CREATE, OP_DELETE, OP_EXISTS, OP_GET_DATA, OP_SET_DATA = 1, 2, 3, 4, 5
OP_GET_ACL, OP_SET_ACL, OP_GET_CHILDREN, OP_SYNC, OP_PING = 6, 7, 8, 9, 11
OP_GET_CHILDREN2, OP_CHECK, OP_MULTI, OP_CREATE2 = 12, 13, 14, 15
OP_CREATE_CONTAINER, OP_CREATE_TTL, OP_MULTI_READ = 19, 21, 22
OP_AUTH, OP_SET_WATCHES, OP_GET_EPHEMERALS, OP_GET_ALL_CHILDREN_NUMBER = 100, 101, 103, 104
OP_SET_WATCHES2, OP_ADD_WATCH, OP_WHO_AM_I = 105, 106, 107
XID_SET_WATCHES = -8
XID_PING = -2
XID_AUTH = -4
FLAG_CONTAINER, FLAG_TTL = 4, 5
TTL_MS = 3_600_000

# Reply body shapes, by op.
BODY = {
    OP_CREATE: "path", OP_CREATE2: "path_stat", OP_CREATE_CONTAINER: "path_stat",
    OP_CREATE_TTL: "path_stat", OP_DELETE: "empty", OP_EXISTS: "stat", OP_GET_DATA: "data_stat",
    OP_SET_DATA: "stat", OP_GET_ACL: "acl_stat", OP_SET_ACL: "stat", OP_GET_CHILDREN: "children",
    OP_GET_CHILDREN2: "children_stat", OP_SYNC: "path", OP_MULTI: "multi", OP_MULTI_READ: "multi",
    OP_GET_ALL_CHILDREN_NUMBER: "int", OP_GET_EPHEMERALS: "children", OP_ADD_WATCH: "int",
    OP_SET_WATCHES: "empty", OP_SET_WATCHES2: "empty", OP_PING: "empty", OP_AUTH: "empty",
    OP_WHO_AM_I: "client_info", OP_CHECK: "empty",
}


def acl_vector(entries: list[tuple[int, str, str]]) -> bytes:
    return int32(len(entries)) + b"".join(int32(p) + ustring(s) + ustring(i) for p, s, i in entries)


def create_record(path: str, acl: bytes | None = None, flags: int = 0, ttl: int | None = None,
                  data: bytes = b"d") -> bytes:
    record = ustring(path) + buffer(data) + (open_acl() if acl is None else acl) + int32(flags)
    return record + (int64(ttl) if ttl is not None else b"")


def path_watch(path: str, watch: bool = False) -> bytes:
    return ustring(path) + boolean(watch)


def multi(ops: list[tuple[int, bytes]]) -> bytes:
    body = b"".join(int32(op) + boolean(False) + int32(-1) + record for op, record in ops)
    return body + int32(-1) + boolean(True) + int32(-1)


@dataclass(frozen=True)
class Request:
    xid: int | None  # None: the runner numbers it
    op: int
    record: bytes


def child_ops(node: str) -> dict[str, list[tuple[int, bytes]]]:
    """The single sub-ops a case's write op or multi is made of, on the case's node."""
    kid = node + "/k"
    return {
        "create": [(OP_CREATE, create_record(node + "/new"))],
        "create2": [(OP_CREATE2, create_record(node + "/new"))],
        "createContainer": [(OP_CREATE_CONTAINER, create_record(node + "/new", flags=FLAG_CONTAINER))],
        "createTTL": [(OP_CREATE_TTL, create_record(node + "/new", flags=FLAG_TTL, ttl=TTL_MS))],
        "delete": [(OP_DELETE, ustring(kid) + int32(-1))],
        "setData": [(OP_SET_DATA, ustring(node) + buffer(b"v") + int32(-1))],
        "check": [(OP_CHECK, ustring(node) + int32(0))],
    }


def op_requests(op: str, node: str) -> list[Request]:
    """The request(s) one case sends, as the case's identity."""
    kid = node + "/k"
    singles = child_ops(node)
    if op in singles and op != "check":
        return [Request(None, code, record) for code, record in singles[op]]
    if op.startswith("multi_"):
        # An allowed create before and an allowed setData after the op under test: a
        # forbidden op fails the whole multi (and the others read RUNTIMEINCONSISTENCY).
        (sub,) = singles[op[len("multi_"):]]
        ops = [(OP_CREATE, create_record(node + "_m")), sub,
               (OP_SET_DATA, ustring(kid) + buffer(b"m") + int32(-1))]
        return [Request(None, OP_MULTI, multi(ops))]
    simple = {
        "exists": (OP_EXISTS, path_watch(node, True)),
        "getData": (OP_GET_DATA, path_watch(node, True)),
        "getChildren": (OP_GET_CHILDREN, path_watch(node, True)),
        "getChildren2": (OP_GET_CHILDREN2, path_watch(node, True)),
        "getACL": (OP_GET_ACL, ustring(node)),
        "setACL": (OP_SET_ACL, ustring(node) + open_acl() + int32(-1)),
        "sync": (OP_SYNC, ustring(node)),
        "getAllChildrenNumber": (OP_GET_ALL_CHILDREN_NUMBER, ustring(node)),
        "getEphemerals": (OP_GET_EPHEMERALS, ustring(node)),
        "addWatch": (OP_ADD_WATCH, ustring(node) + int32(0)),
        "addWatchRecursive": (OP_ADD_WATCH, ustring(node) + int32(1)),
        "multiRead_getData": (OP_MULTI_READ, multi([(OP_GET_DATA, path_watch(node))])),
        "multiRead_getChildren": (OP_MULTI_READ, multi([(OP_GET_CHILDREN, path_watch(node))])),
        "createAuthAcl": (OP_CREATE, create_record(node + "/a", acl_vector([(ALL, "auth", "")]))),
    }
    if op in simple:
        code, record = simple[op]
        return [Request(None, code, record)]
    if op == "setWatches":  # relative zxid 0: data/child watches fire at once if changed since
        record = int64(0) + string_vector([node]) + string_vector([node + "/nope"]) + string_vector([node])
        return [Request(XID_SET_WATCHES, OP_SET_WATCHES, record)]
    if op == "setWatches2":  # a far future relative zxid: nothing fires at once
        record = (int64(1 << 60) + string_vector([node]) + string_vector([node + "/nope"])
                  + string_vector([node]) + string_vector([node]) + string_vector([node]))
        return [Request(XID_SET_WATCHES, OP_SET_WATCHES2, record)]
    raise KeyError(op)


OPS = ("create", "create2", "createContainer", "createTTL", "delete", "exists", "getData",
       "getChildren", "getChildren2", "setData", "getACL", "setACL", "sync",
       "getAllChildrenNumber", "getEphemerals", "addWatch", "addWatchRecursive", "setWatches",
       "setWatches2", "multi_create", "multi_create2", "multi_createContainer",
       "multi_createTTL", "multi_delete", "multi_setData", "multi_check",
       "multiRead_getData", "multiRead_getChildren", "createAuthAcl")


@dataclass(frozen=True)
class Case:
    index: int
    scheme: str
    perms: str
    identity: str
    op: str

    @property
    def id(self) -> str:
        return f"{self.scheme}/{self.perms}/{self.identity}/{self.op}"

    @property
    def node(self) -> str:
        return f"/sec/n{self.index}"


def matrix() -> list[Case]:
    cases = []
    for scheme in SCHEMES:
        for perms in PERMS:
            for identity in IDENTITIES:
                for op in OPS:
                    cases.append(Case(len(cases), scheme, perms, identity, op))
    return cases


def node_acl(case: Case) -> bytes:
    scheme, ident = SCHEMES[case.scheme]
    return acl_vector([(PERMS[case.perms], scheme, ident)])


def setup_requests(case: Case) -> list[Request]:
    """As the setup session (super and alice): the case's node with its ACL, and an open
    child k (super passes every check)."""
    return [Request(None, OP_CREATE, create_record(case.node, node_acl(case))),
            Request(None, OP_CREATE, create_record(case.node + "/k"))]


def trigger_requests(case: Case) -> list[Request]:
    """As the setup session, after the case's op: changes that fire the node's watches."""
    return [Request(None, OP_SET_DATA, ustring(case.node) + buffer(b"t") + int32(-1)),
            Request(None, OP_CREATE, create_record(case.node + "/t"))]


def readout_requests(case: Case) -> list[Request]:
    """As the setup session, last: what the case's op left behind."""
    return [Request(None, OP_EXISTS, path_watch(case.node)),
            Request(None, OP_GET_CHILDREN, path_watch(case.node)),
            Request(None, OP_EXISTS, path_watch(case.node + "_m")),
            Request(None, OP_GET_DATA, path_watch(case.node + "/k")),
            Request(None, OP_GET_ACL, ustring(case.node))]


# ---- normalization -------------------------------------------------------------------------

def norm_stat(body: bytes, offset: int = 0) -> tuple[tuple, int]:
    (_czxid, _mzxid, _ctime, _mtime, version, cversion, aversion, owner, data_length,
     num_children, _pzxid) = STAT.unpack_from(body, offset)
    return (("v", version, cversion, aversion), ("eph", owner != 0), ("len", data_length),
            ("kids", num_children)), offset + STAT.size


def _string(body: bytes, offset: int) -> tuple[str | None, int]:
    return read_ustring(body, offset)


def _strings(body: bytes, offset: int) -> tuple[list, int]:
    (count,) = struct.unpack_from(">i", body, offset)
    offset += 4
    out = []
    for _ in range(max(count, 0)):
        value, offset = _string(body, offset)
        out.append(value)
    return out, offset


def _data(body: bytes, offset: int) -> tuple[bytes | None, int]:
    (length,) = struct.unpack_from(">i", body, offset)
    offset += 4
    if length < 0:
        return None, offset
    return body[offset:offset + length], offset + length


def _acls(body: bytes, offset: int) -> tuple[list, int]:
    (count,) = struct.unpack_from(">i", body, offset)
    offset += 4
    out = []
    for _ in range(max(count, 0)):
        (perms,) = struct.unpack_from(">i", body, offset)
        scheme, offset = _string(body, offset + 4)
        ident, offset = _string(body, offset)
        out.append((perms, scheme, ident))
    return out, offset


def _multi(body: bytes) -> list:
    results, offset = [], 0
    for _ in range(10_000):
        op, done, err = struct.unpack_from(">i?i", body, offset)
        offset += 9
        if done:
            return results
        if op == -1:
            (code,) = struct.unpack_from(">i", body, offset)
            offset += 4
            results.append(("error", err, code))
        elif op == OP_CREATE:
            path, offset = _string(body, offset)
            results.append(("create", err, path))
        elif op in (OP_CREATE2, OP_CREATE_CONTAINER, OP_CREATE_TTL):
            path, offset = _string(body, offset)
            stat, offset = norm_stat(body, offset)
            results.append((op, err, path, stat))
        elif op == OP_SET_DATA:
            stat, offset = norm_stat(body, offset)
            results.append(("setData", err, stat))
        elif op in (OP_DELETE, OP_CHECK):
            results.append((op, err))
        elif op == OP_GET_DATA:
            data, offset = _data(body, offset)
            stat, offset = norm_stat(body, offset)
            results.append(("getData", err, data, stat))
        elif op == OP_GET_CHILDREN:
            kids, offset = _strings(body, offset)
            results.append(("getChildren", err, sorted(kids)))
        else:
            results.append(("op?", op, err, body[offset:].hex()))
            return results
    raise ValueError("multi response without its done header")


def normalize_body(op: int, body: bytes) -> Any:
    """The reply body of a successful op, with zxids, times and session ids masked."""
    shape = BODY.get(op, "raw")
    if not body and shape != "empty":
        return ("no body",)
    try:
        if shape == "empty":
            return ("empty",) if not body else ("unexpected", body.hex())
        if shape == "path":
            return _string(body, 0)[0]
        if shape == "path_stat":
            path, offset = _string(body, 0)
            return path, norm_stat(body, offset)[0]
        if shape == "stat":
            return norm_stat(body)[0]
        if shape == "data_stat":
            data, offset = _data(body, 0)
            return data, norm_stat(body, offset)[0]
        if shape == "acl_stat":
            acls, offset = _acls(body, 0)
            return acls, norm_stat(body, offset)[0]
        if shape == "children":
            return sorted(_strings(body, 0)[0])
        if shape == "children_stat":
            kids, offset = _strings(body, 0)
            return sorted(kids), norm_stat(body, offset)[0]
        if shape == "int":
            return struct.unpack_from(">i", body)[0]
        if shape == "multi":
            return _multi(body)
        if shape == "client_info":
            (count,) = struct.unpack_from(">i", body)
            offset, infos = 4, []
            for _ in range(count):
                scheme, offset = _string(body, offset)
                ident, offset = _string(body, offset)
                infos.append((scheme, ident))
            return infos
    except struct.error:
        return ("malformed", body.hex())
    return ("raw", body.hex())


def outcome(op: int, err: int, body: bytes) -> tuple:
    """One reply: (error code, normalized body); an error reply's body is kept raw."""
    if err != 0 and op not in (OP_MULTI, OP_MULTI_READ):
        return (err, body.hex() if body else None)
    return (err, normalize_body(op, body))


# ---- comparison ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Deliberate:
    apache: str  # what Apache 3.8 does
    why: str  # why pyzk's behaviour is the better one


# Case id pattern (fnmatch) -> the known difference.  A pattern that matches no differing case
# is stale and fails the test, as does a difference no pattern matches.
DELIBERATE_DIFFERENCES: dict[str, Deliberate] = {
    # Each pipelined case: alice sends [512 KiB setData elsewhere, setACL revoking one of her
    # permissions on a node, a request needing it] in one send, five times; the outcome is the
    # set of distinct (replies, children afterwards).
    "pipelined/setACL-revoke-then-create": Deliberate(
        "setACL's prep adds a change record that still carries the old ACL (it updates only "
        "the aversion: PrepRequestProcessor.pRequest2Txn, case setACL), so until the setACL is "
        "applied a create pipelined behind it is checked against the old ACL and succeeds; "
        "once applied, the same create is refused: the outcome depends on commit timing",
        "pyzk's outstanding change record carries the new ACL, so the create is always refused "
        "(NOAUTH): the ACL a client just set guards its next request, whatever the timing"),
    "pipelined/setACL-revoke-then-setData": Deliberate(
        "as above: a setData pipelined behind a setACL that revokes WRITE succeeds or not, "
        "depending on whether the setACL was applied when the setData was prepped",
        "pyzk always refuses it (NOAUTH)"),
    "pipelined/setACL-revoke-then-delete": Deliberate(
        "as above: a delete of a child pipelined behind a setACL that revokes DELETE succeeds "
        "or not, depending on commit timing",
        "pyzk always refuses it (NOAUTH)"),
}


@dataclass(frozen=True)
class Problem:
    case: str
    kind: str  # "differs" (not in the table) or "stale" (in the table, no longer differs)
    apache: Any
    pyzk: Any

    def __str__(self) -> str:
        if self.kind == "stale":
            return f"{self.case}: listed as a deliberate difference but no case differs"
        return f"{self.case}: apache {self.apache!r} != pyzk {self.pyzk!r}"


def compare(apache: dict[str, Any], pyzk: dict[str, Any],
            deliberate: dict[str, Deliberate] | None = None) -> list[Problem]:
    """Problems between two traces (case id -> normalized outcome)."""
    table = DELIBERATE_DIFFERENCES if deliberate is None else deliberate
    problems, explained = [], set()
    for case in list(apache) + [case for case in pyzk if case not in apache]:
        left, right = apache.get(case, "<missing>"), pyzk.get(case, "<missing>")
        if left == right:
            continue
        patterns = [pattern for pattern in table if fnmatch.fnmatchcase(case, pattern)]
        if patterns:
            explained.update(patterns)
        else:
            problems.append(Problem(case, "differs", left, right))
    problems += [Problem(pattern, "stale", None, None) for pattern in table if pattern not in explained]
    return problems


def deliberate_table_markdown(table: dict[str, Deliberate] | None = None) -> str:
    rows = ["| case | Apache 3.8 | why pyzk's is better |", "|---|---|---|"]
    for case, entry in (DELIBERATE_DIFFERENCES if table is None else table).items():
        rows.append(f"| {case} | {entry.apache} | {entry.why} |")
    return "\n".join(rows)
