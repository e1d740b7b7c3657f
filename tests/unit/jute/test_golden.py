"""Golden bytes: frames and files written by Apache ZooKeeper 3.8 and by kazoo's serializers.

The .bin files come from golden/capture.py (see its docstring). For each one, both codecs
(fast and construct reference) must read the expected field values, and the fast encoder must
give the same bytes back. Session ids, passwords and times change per capture and are only
checked for shape; xids, zxids, errors, paths, data and ACLs are fixed by the capture script.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest

from jute.codes import Err, EventType, KeeperState, OpCode, Xid
from jute.data import ACL, ClientInfo, Id, Stat, StatPersisted
from jute.framing import FrameSplitter, frame
from jute.multi import (
    decode_multi_request,
    decode_multi_response,
    encode_multi_request,
    encode_multi_response,
)
from jute.persistence import FILE_FORMAT_VERSION, SNAP_MAGIC, TXNLOG_MAGIC, FileHeader
from jute.proto import (
    AddWatchRequest,
    AuthPacket,
    CheckVersionRequest,
    ConnectRequest,
    ConnectResponse,
    Create2Response,
    CreateRequest,
    CreateResponse,
    DeleteRequest,
    ErrorResponse,
    ExistsRequest,
    ExistsResponse,
    GetACLRequest,
    GetACLResponse,
    GetChildren2Request,
    GetChildren2Response,
    GetChildrenRequest,
    GetChildrenResponse,
    GetDataRequest,
    GetDataResponse,
    GetSASLRequest,
    MultiHeader,
    ReconfigRequest,
    ReplyHeader,
    RequestHeader,
    SetACLRequest,
    SetDataRequest,
    SetDataResponse,
    SetWatches,
    SetWatches2,
    SyncRequest,
    WatcherEvent,
    WhoAmIResponse,
)
from jute.txn import CreateSessionTxn, TxnDigest, TxnHeader

GOLDEN_DIR = Path(__file__).parent / "golden"
PASSWORD_BYTES = 16
SESSION_TIMEOUT_MS = 30000  # what capture.py asks for
OPEN_ACL = [ACL(31, Id("world", "anyone"))]


def golden_body(name: str) -> bytes:
    """The one frame body in golden/<name>.bin, split by FrameSplitter."""
    splitter = FrameSplitter()
    (body,) = splitter.feed((GOLDEN_DIR / f"{name}.bin").read_bytes())
    assert splitter.buffered == 0
    return body


def read_both(cls: Any, buf: bytes, pos: int) -> tuple[Any, int]:
    """Decode with the fast codec and the reference; they must agree. Returns (record, end)."""
    record, end = cls.decode_from(buf, pos, len(buf))
    reference = cls._jute_schema.parse_stream(stream := io.BytesIO(buf[pos:]))
    assert reference == record
    assert stream.tell() == end - pos
    return record, end


def read_reply(name: str, body_cls: Any | None) -> tuple[ReplyHeader, Any]:
    """A server reply frame: ReplyHeader + optional record, re-encoded byte for byte."""
    body = golden_body(name)
    header, pos = read_both(ReplyHeader, body, 0)
    record = None
    if body_cls is not None:
        record, pos = read_both(body_cls, body, pos)
    assert pos == len(body)
    rebuilt = header.encode() + (b"" if record is None else record.encode())
    assert frame(rebuilt) == (GOLDEN_DIR / f"{name}.bin").read_bytes()
    return header, record


def read_request(name: str, body_cls: Any | None) -> tuple[RequestHeader, Any]:
    """A client request frame: RequestHeader + optional record, re-encoded byte for byte."""
    body = golden_body(name)
    header, pos = read_both(RequestHeader, body, 0)
    record = None
    if body_cls is not None:
        record, pos = read_both(body_cls, body, pos)
    assert pos == len(body)
    rebuilt = header.encode() + (b"" if record is None else record.encode())
    assert frame(rebuilt) == (GOLDEN_DIR / f"{name}.bin").read_bytes()
    return header, record


def stable(stat: Stat) -> tuple[int, ...]:
    """Stat without ctime/mtime (wall-clock times of the capture)."""
    return (
        stat.czxid, stat.mzxid, stat.version, stat.cversion, stat.aversion,
        stat.ephemeralOwner, stat.dataLength, stat.numChildren, stat.pzxid,
    )  # fmt: skip


# ---- PROTOCOL.md §2.15: verified byte examples -----------------------------------------------


def test_protocol_md_create_example() -> None:
    documented = bytes.fromhex(
        "00000036 00000003 00000001 00000002 2f61 00000005 68656c6c6f"
        "00000001 0000001f 00000005 776f726c64 00000006 616e796f6e65 00000000"
    )
    request = CreateRequest("/a", b"hello", OPEN_ACL, 0)
    assert frame(RequestHeader(3, OpCode.CREATE).encode() + request.encode()) == documented
    assert documented == (GOLDEN_DIR / "kazoo_create.bin").read_bytes()


def test_protocol_md_reply_examples() -> None:
    create_reply = bytes.fromhex("00000016 00000003 0000000000000002 00000000 00000002 2f61")
    assert frame(ReplyHeader(3, 2, Err.OK).encode() + CreateResponse("/a").encode()) == create_reply
    duplicate = bytes.fromhex("00000005 0000000000000004 ffffff92")
    assert ReplyHeader.from_bytes(duplicate) == ReplyHeader(5, 4, Err.NODEEXISTS)
    notification = bytes.fromhex("ffffffff ffffffffffffffff 00000000 00000004 00000003 00000001 2f")
    event = WatcherEvent(EventType.NODE_CHILDREN_CHANGED, KeeperState.SYNC_CONNECTED, "/")
    assert ReplyHeader(Xid.NOTIFICATION, -1, 0).encode() + event.encode() == notification


# ---- Apache ZooKeeper 3.8: the handshake -------------------------------------------------------


def test_connect_response_echoes_read_only_byte() -> None:
    body = golden_body("zk_connect_response")
    assert len(body) == 37
    response, end = read_both(ConnectResponse, body, 0)
    assert end == len(body)
    assert (response.protocolVersion, response.timeOut, response.readOnly) == (0, SESSION_TIMEOUT_MS, False)
    assert response.sessionId != 0 and len(response.passwd) == PASSWORD_BYTES
    assert response.encode() == body


def test_connect_response_to_old_client_has_no_read_only_byte() -> None:
    body = golden_body("zk_connect_response_old_client")
    assert len(body) == 36
    response, end = read_both(ConnectResponse, body, 0)
    assert end == len(body)
    assert (response.protocolVersion, response.timeOut, response.readOnly) == (0, SESSION_TIMEOUT_MS, None)
    assert len(response.passwd) == PASSWORD_BYTES
    assert response.encode() == body


# ---- Apache ZooKeeper 3.8: replies, in the order capture.py sent the requests ---------------


def test_error_replies_are_header_only() -> None:
    assert read_reply("zk_exists_nonode_reply", None)[0] == ReplyHeader(1, 2, Err.NONODE)
    assert read_reply("zk_create_nodeexists_reply", None)[0] == ReplyHeader(3, 4, Err.NODEEXISTS)


def test_notification_comes_as_watcher_event() -> None:
    header, event = read_reply("zk_notification_node_created", WatcherEvent)
    assert header == ReplyHeader(Xid.NOTIFICATION, -1, Err.OK)
    assert event == WatcherEvent(EventType.NODE_CREATED, KeeperState.SYNC_CONNECTED, "/a")
    header, event = read_reply("zk_notification_node_data_changed", WatcherEvent)
    assert header == ReplyHeader(Xid.NOTIFICATION, -1, Err.OK)
    assert event == WatcherEvent(EventType.NODE_DATA_CHANGED, KeeperState.SYNC_CONNECTED, "/a/b")


def test_create_and_create2_replies() -> None:
    assert read_reply("zk_create_reply", CreateResponse) == (ReplyHeader(2, 3, Err.OK), CreateResponse("/a"))
    header, response = read_reply("zk_create2_reply", Create2Response)
    assert header == ReplyHeader(4, 5, Err.OK)
    assert response.path == "/a/c"
    assert stable(response.stat) == (5, 5, 0, 0, 0, 0, 0, 0, 5)
    assert response.stat.ctime == response.stat.mtime > 0


def test_get_data_and_exists_replies() -> None:
    header, response = read_reply("zk_get_data_reply", GetDataResponse)
    assert header == ReplyHeader(5, 5, Err.OK)
    assert response.data == b"hello"
    assert stable(response.stat) == (3, 3, 0, 1, 0, 0, 5, 1, 5)
    header, exists = read_reply("zk_exists_reply", ExistsResponse)
    assert header == ReplyHeader(6, 5, Err.OK)
    assert exists.stat == response.stat


def test_get_children2_reply() -> None:
    header, response = read_reply("zk_get_children2_reply", GetChildren2Response)
    assert header == ReplyHeader(8, 6, Err.OK)
    assert response.children == ["b", "c"]  # created c, then b: Apache lists by hash bucket
    assert stable(response.stat) == (3, 3, 0, 2, 0, 0, 5, 2, 6)


def test_get_acl_reply() -> None:
    header, response = read_reply("zk_get_acl_reply", GetACLResponse)
    assert header == ReplyHeader(9, 6, Err.OK)
    assert response.acl == [ACL(1, Id("world", "anyone")), ACL(31, Id("ip", "127.0.0.1"))]
    assert stable(response.stat) == (5, 5, 0, 0, 0, 0, 0, 0, 5)


def multi_result_body(result_type: int, err: int) -> Any:
    """PROTOCOL.md §2.6: the body record of one multi result."""
    bodies = {
        OpCode.ERROR: ErrorResponse,
        OpCode.CREATE: CreateResponse,
        OpCode.CREATE2: Create2Response,
        OpCode.SET_DATA: SetDataResponse,
        OpCode.GET_DATA: GetDataResponse,
        OpCode.GET_CHILDREN: GetChildrenResponse,
    }
    return bodies.get(OpCode(result_type))


def read_multi_reply(name: str) -> tuple[ReplyHeader, list[tuple[int, int, Any]]]:
    body = golden_body(name)
    header, pos = read_both(ReplyHeader, body, 0)
    results = decode_multi_response(body, pos, len(body), multi_result_body)
    # the reference codec, result by result
    stream = io.BytesIO(body[pos:])
    reference = []
    while not (result_header := MultiHeader._jute_schema.parse_stream(stream)).done:
        body_cls = multi_result_body(result_header.type, result_header.err)
        record = None if body_cls is None else body_cls._jute_schema.parse_stream(stream)
        reference.append((result_header.type, result_header.err, record))
    assert result_header == MultiHeader(-1, True, -1)
    assert stream.tell() == len(body) - pos
    assert reference == results
    assert header.encode() + encode_multi_response(results) == body
    return header, results


def test_multi_reply() -> None:
    header, results = read_multi_reply("zk_multi_reply")
    assert header == ReplyHeader(10, 7, Err.OK)
    kinds = [(t, err, type(body).__name__) for t, err, body in results]
    # a create2 sub-op is answered as a plain create (type 1, no stat); createContainer as create2
    assert kinds == [
        (OpCode.CREATE, 0, "CreateResponse"),
        (OpCode.CREATE, 0, "CreateResponse"),
        (OpCode.CREATE2, 0, "Create2Response"),
        (OpCode.SET_DATA, 0, "SetDataResponse"),
        (OpCode.CHECK, 0, "NoneType"),
        (OpCode.DELETE, 0, "NoneType"),
    ]
    assert [results[0][2].path, results[1][2].path, results[2][2].path] == ["/m1", "/m2", "/m3"]
    assert stable(results[2][2].stat) == (7, 7, 0, 0, 0, 0, 1, 0, 7)
    assert stable(results[3][2].stat) == (3, 7, 1, 2, 0, 0, 5, 2, 6)


def test_failed_multi_reply_is_all_error_results() -> None:
    header, results = read_multi_reply("zk_multi_failed_reply")
    assert header == ReplyHeader(11, 8, Err.OK)
    assert results == [
        (OpCode.ERROR, Err.OK, ErrorResponse(Err.OK)),
        (OpCode.ERROR, Err.NONODE, ErrorResponse(Err.NONODE)),
        (OpCode.ERROR, Err.RUNTIMEINCONSISTENCY, ErrorResponse(Err.RUNTIMEINCONSISTENCY)),
    ]


def test_multi_read_reply_mixes_data_and_errors() -> None:
    header, results = read_multi_reply("zk_multi_read_reply")
    assert header == ReplyHeader(12, 8, Err.OK)
    (data_type, data_err, data), (children_type, _, children), error = results
    assert (data_type, data_err, data.data) == (OpCode.GET_DATA, 0, b"world")
    assert (children_type, children.children) == (OpCode.GET_CHILDREN, ["b", "c"])
    assert error == (OpCode.ERROR, Err.NONODE, ErrorResponse(Err.NONODE))


def test_who_am_i_and_add_watch_replies() -> None:
    header, response = read_reply("zk_who_am_i_reply", WhoAmIResponse)
    assert header == ReplyHeader(13, 8, Err.OK)
    assert response == WhoAmIResponse([ClientInfo("ip", "127.0.0.1")])
    # addWatch answers with an ErrorResponse(0) body, not a bare header
    assert read_reply("zk_add_watch_reply", ErrorResponse) == (ReplyHeader(14, 8, Err.OK), ErrorResponse(0))


def test_set_data_ping_set_watches_and_close_replies() -> None:
    header, response = read_reply("zk_set_data_reply", SetDataResponse)
    assert header == ReplyHeader(15, 9, Err.OK)
    assert stable(response.stat) == (6, 9, 1, 0, 0, 0, 2, 0, 6)
    assert read_reply("zk_ping_reply", None)[0] == ReplyHeader(Xid.PING, 9, Err.OK)
    # setWatches sent with an ordinary xid (as the Java client does) is answered with that xid
    assert read_reply("zk_set_watches_reply", None)[0] == ReplyHeader(16, 9, Err.OK)
    assert read_reply("zk_close_session_reply", None)[0] == ReplyHeader(17, 10, Err.OK)


# ---- Apache ZooKeeper 3.8: files in dataDir --------------------------------------------------


def test_txn_log_header_and_first_record() -> None:
    log = (GOLDEN_DIR / "zk_txnlog_first_record.bin").read_bytes()
    file_header, pos = read_both(FileHeader, log, 0)
    assert file_header == FileHeader(TXNLOG_MAGIC, FILE_FORMAT_VERSION, 0)
    checksum, entry_length = struct.unpack_from(">qi", log, pos)
    entry = log[pos + 12 : pos + 12 + entry_length]
    assert checksum == zlib.adler32(entry)
    assert log[pos + 12 + entry_length :] == b"B"

    txn_header, at = read_both(TxnHeader, entry, 0)
    assert (txn_header.cxid, txn_header.zxid, txn_header.type) == (0, 1, OpCode.CREATE_SESSION)
    assert txn_header.clientId != 0 and txn_header.time > 0
    txn, at = read_both(CreateSessionTxn, entry, at)
    assert txn == CreateSessionTxn(SESSION_TIMEOUT_MS)
    digest, at = read_both(TxnDigest, entry, at)
    assert digest.version == 2
    assert at == len(entry)
    assert txn_header.encode() + txn.encode() + digest.encode() == entry
    assert file_header.encode() == log[:16]


def _read_text(buf: bytes, pos: int) -> tuple[str, int]:
    (length,) = struct.unpack_from(">i", buf, pos)
    return buf[pos + 4 : pos + 4 + length].decode(), pos + 4 + length


def test_fresh_snapshot() -> None:
    snap = (GOLDEN_DIR / "zk_snapshot_0.bin").read_bytes()
    assert len(snap) == 457 and snap[-5:] == b"\x00\x00\x00\x01/"
    file_header, pos = read_both(FileHeader, snap, 0)
    assert file_header == FileHeader(SNAP_MAGIC, FILE_FORMAT_VERSION, -1)
    session_count, acl_cache_size, acl_index = struct.unpack_from(">iiq", snap, pos)
    assert (session_count, acl_cache_size, acl_index) == (0, 1, 1)
    (acl_count,) = struct.unpack_from(">i", snap, pos + 16)
    pos += 20
    acls = []
    for _ in range(acl_count):
        acl, pos = read_both(ACL, snap, pos)
        acls.append(acl)
    assert acls == [ACL(1, Id("world", "anyone"))]

    nodes = {}
    path, pos = _read_text(snap, pos)
    while path != "/":
        (data_length,) = struct.unpack_from(">i", snap, pos)
        (node_acl_index,) = struct.unpack_from(">q", snap, pos + 4 + data_length)
        stat, pos = read_both(StatPersisted, snap, pos + 12 + data_length)
        assert stat.encode() == snap[pos - 60 : pos]
        nodes[path] = (node_acl_index, stat)
        path, pos = _read_text(snap, pos)
    assert list(nodes) == ["", "/zookeeper", "/zookeeper/config", "/zookeeper/quota"]
    assert nodes["/zookeeper/config"] == (1, StatPersisted(0, 0, 0, 0, 0, 0, -1, 0, 0))
    assert nodes["/zookeeper/quota"] == (-1, StatPersisted(0, 0, 0, 0, 0, 0, 0, 0, 0))
    (seal,) = struct.unpack_from(">q", snap, pos)
    assert seal == zlib.adler32(snap[:pos])


# ---- kazoo 2.11 request frames (kazoo.protocol.serialization + ConnectionHandler._submit) ----


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("kazoo_connect", ConnectRequest(0, 0x1234, 10000, 0, bytes(16), False)),
        ("kazoo_connect_read_only", ConnectRequest(0, 0, 10000, 0x0100000000001234, bytes(range(16)), True)),
    ],
)
def test_kazoo_connect(name: str, expected: ConnectRequest) -> None:
    body = golden_body(name)
    assert len(body) == 45
    request, end = read_both(ConnectRequest, body, 0)
    assert end == len(body)
    assert request == expected
    assert request.encode() == body


KAZOO_REQUESTS: list[tuple[str, int, int, Any]] = [
    ("kazoo_create", 3, OpCode.CREATE, CreateRequest("/a", b"hello", OPEN_ACL, 0)),
    (
        "kazoo_create_ephemeral_sequential_null_data",
        4,
        OpCode.CREATE,
        CreateRequest("/a/s-", None, OPEN_ACL, 3),
    ),
    ("kazoo_create2", 5, OpCode.CREATE2, CreateRequest("/x", b"", [ACL(1, Id("digest", "u:h+v="))], 0)),
    ("kazoo_delete", 6, OpCode.DELETE, DeleteRequest("/a", -1)),
    ("kazoo_exists_watch", 7, OpCode.EXISTS, ExistsRequest("/a", True)),
    ("kazoo_get_data", 8, OpCode.GET_DATA, GetDataRequest("/a", False)),
    ("kazoo_set_data", 9, OpCode.SET_DATA, SetDataRequest("/a", b"\x00\x01", 4)),
    ("kazoo_get_acl", 10, OpCode.GET_ACL, GetACLRequest("/a")),
    ("kazoo_set_acl", 11, OpCode.SET_ACL, SetACLRequest("/a", OPEN_ACL, -1)),
    ("kazoo_get_children_watch", 12, OpCode.GET_CHILDREN, GetChildrenRequest("/", True)),
    ("kazoo_get_children2", 13, OpCode.GET_CHILDREN2, GetChildren2Request("/a", False)),
    ("kazoo_sync", 14, OpCode.SYNC, SyncRequest("/a")),
    ("kazoo_check_version", 15, OpCode.CHECK, CheckVersionRequest("/a", 2)),
    (
        "kazoo_reconfig_nulls",
        17,
        OpCode.RECONFIG,
        ReconfigRequest(None, None, "server.1=127.0.0.1:2888:3888;2181", -1),
    ),
    ("kazoo_auth", Xid.AUTH, OpCode.AUTH, AuthPacket(0, "digest", b"user:pw")),
    ("kazoo_sasl", 18, OpCode.SASL, GetSASLRequest(b"\x01\x02")),
    ("kazoo_ping", Xid.PING, OpCode.PING, None),
    ("kazoo_close", 19, OpCode.CLOSE_SESSION, None),
]


@pytest.mark.parametrize(
    ("name", "xid", "op", "expected"), KAZOO_REQUESTS, ids=[r[0] for r in KAZOO_REQUESTS]
)
def test_kazoo_request(name: str, xid: int, op: int, expected: Any) -> None:
    header, request = read_request(name, None if expected is None else type(expected))
    assert header == RequestHeader(xid, op)
    assert request == expected


def test_kazoo_transaction() -> None:
    body = golden_body("kazoo_transaction")
    header, pos = read_both(RequestHeader, body, 0)
    assert header == RequestHeader(16, OpCode.MULTI)
    ops = decode_multi_request(body, pos, len(body))
    assert ops == [
        (OpCode.CREATE, CreateRequest("/t", b"t", OPEN_ACL, 0)),
        (OpCode.SET_DATA, SetDataRequest("/t", b"u", -1)),
        (OpCode.CHECK, CheckVersionRequest("/t", 1)),
        (OpCode.DELETE, DeleteRequest("/t", -1)),
    ]
    assert header.encode() + encode_multi_request(ops) == body


def test_every_golden_file_is_checked() -> None:
    checked_elsewhere = {
        "zk_connect_response", "zk_connect_response_old_client", "zk_exists_nonode_reply",
        "zk_create_nodeexists_reply", "zk_notification_node_created",
        "zk_notification_node_data_changed", "zk_create_reply", "zk_create2_reply",
        "zk_get_data_reply", "zk_exists_reply", "zk_get_children2_reply", "zk_get_acl_reply",
        "zk_multi_reply", "zk_multi_failed_reply", "zk_multi_read_reply", "zk_who_am_i_reply",
        "zk_add_watch_reply", "zk_set_data_reply", "zk_ping_reply", "zk_set_watches_reply",
        "zk_close_session_reply",
        "zk_txnlog_first_record", "zk_snapshot_0", "kazoo_connect", "kazoo_connect_read_only",
        "kazoo_transaction", *(r[0] for r in KAZOO_REQUESTS), "java_connect_request",
        "java_connect_request_resume", "java_create_cesu8_acl_id", "java_set_watches",
        "java_set_watches2", "java_add_watch",
    }  # fmt: skip
    assert {path.stem for path in GOLDEN_DIR.glob("*.bin")} == checked_elsewhere


# ---- Apache ZooKeeper 3.8 Java client request frames (via a recording proxy) -----------------


def test_java_connect_requests() -> None:
    fresh, end = read_both(ConnectRequest, body := golden_body("java_connect_request"), 0)
    assert end == len(body) == 45
    assert fresh == ConnectRequest(0, 0, SESSION_TIMEOUT_MS, 0, bytes(PASSWORD_BYTES), False)
    resume, end = read_both(ConnectRequest, body := golden_body("java_connect_request_resume"), 0)
    assert end == len(body) == 45
    assert resume.sessionId != 0 and resume.lastZxidSeen > 0 and len(resume.passwd) == PASSWORD_BYTES
    assert resume.encode() == body


def test_java_writes_non_bmp_as_cesu8_and_we_round_trip_it() -> None:
    header, request = read_request("java_create_cesu8_acl_id", CreateRequest)
    assert header.type == OpCode.CREATE
    assert request == CreateRequest("/j/cesu", None, [ACL(31, Id("world", "\ud83d\ude00"))], 0)
    assert b"\xed\xa0\xbd\xed\xb8\x80" in golden_body("java_create_cesu8_acl_id")


def test_java_set_watches_and_set_watches2() -> None:
    # the 3.8.0 Java client sends these with an ordinary xid, not -8 (its NIO socket
    # overwrites the SET_WATCHES_XID header with the next xid)
    header, request = read_request("java_set_watches", SetWatches)
    assert header.type == OpCode.SET_WATCHES and header.xid > 0
    assert (request.dataWatches, request.existWatches, request.childWatches) == (["/j"], ["/j/nope"], ["/"])
    header, request2 = read_request("java_set_watches2", SetWatches2)
    assert header.type == OpCode.SET_WATCHES2 and header.xid > 0
    assert request2 == SetWatches2(request.relativeZxid, ["/j"], ["/j/nope"], ["/"], [], ["/j"])


def test_java_add_watch() -> None:
    header, request = read_request("java_add_watch", AddWatchRequest)
    assert header.type == OpCode.ADD_WATCH
    assert request == AddWatchRequest("/j", 1)  # AddWatchMode.PERSISTENT_RECURSIVE
