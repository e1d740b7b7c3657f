"""The fast codec and the construct reference agree on every record and on multi bodies.

For every @record in the jute package (discovered, not listed): fast encode == reference
build, fast decode == reference parse == the original object, and decoding honours pos/end.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jute.codes import OpCode
from jute.multi import (
    MULTI_OP_RECORDS,
    MULTI_READ_OP_RECORDS,
    decode_multi_request,
    decode_multi_response,
    encode_multi_request,
    encode_multi_response,
)
from jute.primitives import Trailing
from jute.proto import (
    ConnectRequest,
    Create2Response,
    CreateResponse,
    ErrorResponse,
    GetChildrenResponse,
    GetDataResponse,
    MultiHeader,
    SetDataResponse,
)
from jute.schema import reference_build, reference_parse
from tests.unit.jute.strategies import all_record_classes, record_strategy

RECORD_CLASSES = all_record_classes()
JUNK = b"\x00\xff\x7f\x80junk"

# Result body per result type when err == 0 (PROTOCOL.md §2.6); type -1 carries ErrorResponse.
MULTI_RESULT_BODIES: dict[int, Any] = {
    OpCode.CREATE: CreateResponse,
    OpCode.CREATE2: Create2Response,
    OpCode.DELETE: None,
    OpCode.CHECK: None,
    OpCode.SET_DATA: SetDataResponse,
    OpCode.GET_CHILDREN: GetChildrenResponse,
    OpCode.GET_DATA: GetDataResponse,
}


def multi_result_body(result_type: int, err: int) -> Any:
    return ErrorResponse if result_type == OpCode.ERROR else MULTI_RESULT_BODIES[result_type]


# zookeeper.jute's catalog (PROTOCOL.md §1.2) without the unused legacy maxChildren
# requests (GetMaxChildrenRequest/Response, SetMaxChildrenRequest).
ZOOKEEPER_JUTE_RECORDS = {
    "ACL", "AddWatchRequest", "AuthPacket", "CheckVersionRequest", "CheckVersionTxn",
    "CheckWatchesRequest", "ClientInfo", "CloseSessionTxn", "ConnectRequest", "ConnectResponse",
    "Create2Response", "CreateContainerTxn", "CreateRequest", "CreateResponse",
    "CreateSessionTxn", "CreateTTLRequest", "CreateTTLTxn", "CreateTxn", "CreateTxnV0",
    "DeleteRequest", "DeleteTxn", "ErrorResponse", "ErrorTxn", "ExistsRequest",
    "ExistsResponse", "FileHeader", "GetACLRequest", "GetACLResponse",
    "GetAllChildrenNumberRequest", "GetAllChildrenNumberResponse", "GetChildren2Request",
    "GetChildren2Response", "GetChildrenRequest", "GetChildrenResponse", "GetDataRequest",
    "GetDataResponse", "GetEphemeralsRequest", "GetEphemeralsResponse", "GetSASLRequest", "Id",
    "LearnerInfo", "MultiHeader", "MultiTxn", "QuorumAuthPacket", "QuorumPacket",
    "ReconfigRequest", "RemoveWatchesRequest", "ReplyHeader", "RequestHeader", "SetACLRequest",
    "SetACLResponse", "SetACLTxn", "SetDataRequest", "SetDataResponse", "SetDataTxn",
    "SetMaxChildrenTxn", "SetSASLRequest", "SetSASLResponse", "SetWatches", "SetWatches2",
    "Stat", "StatPersisted", "SyncRequest", "SyncResponse", "Txn", "TxnDigest", "TxnHeader",
    "WatcherEvent", "WhoAmIResponse",
}  # fmt: skip


def test_discovery_covers_the_zookeeper_jute_catalog() -> None:
    discovered = {cls.__name__ for cls in RECORD_CLASSES}
    assert ZOOKEEPER_JUTE_RECORDS - discovered == set()


@pytest.mark.parametrize("cls", RECORD_CLASSES, ids=lambda cls: cls.__name__)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_fast_codec_matches_reference(cls: Any, data: st.DataObject) -> None:
    obj = data.draw(record_strategy(cls))
    encoded = obj.encode()
    assert encoded == reference_build(obj)
    assert cls.decode_from(encoded) == (obj, len(encoded))
    assert cls.from_bytes(encoded) == obj
    assert reference_parse(cls, encoded) == obj

    # pos/end are honoured: a record inside a larger buffer, junk after its end
    prefix = data.draw(st.binary(max_size=8))
    framed = prefix + encoded + JUNK
    assert cls.decode_from(framed, len(prefix), len(prefix) + len(encoded)) == (
        obj,
        len(prefix) + len(encoded),
    )
    assert cls.decode_from(bytearray(framed), len(prefix), len(prefix) + len(encoded))[0] == obj
    assert cls.decode_from(memoryview(framed), len(prefix), len(prefix) + len(encoded))[0] == obj

    out = bytearray(prefix)
    obj.encode_into(out)
    assert bytes(out) == prefix + encoded


@pytest.mark.parametrize("cls", RECORD_CLASSES, ids=lambda cls: cls.__name__)
def test_record_shape(cls: Any) -> None:
    """Only the last field may be Trailing; names and fields line up."""
    kinds = [kind for _, kind in cls._jute_fields]
    assert not any(isinstance(kind, Trailing) for kind in kinds[:-1])
    assert cls._jute_names == tuple(name for name, _ in cls._jute_fields)


@settings(max_examples=200, deadline=None)
@given(read_only=st.one_of(st.none(), st.booleans()))
def test_trailing_read_only_is_absent_or_one_byte(read_only: bool | None) -> None:
    request = ConnectRequest(0, 0, 30000, 0, bytes(16), read_only)
    encoded = request.encode()
    assert len(encoded) == (44 if read_only is None else 45)
    assert ConnectRequest.from_bytes(encoded).readOnly is read_only


def test_null_and_empty_are_different_bytes() -> None:
    assert GetDataResponse(None, _zero_stat()).encode()[:4] == b"\xff\xff\xff\xff"
    assert GetDataResponse(b"", _zero_stat()).encode()[:4] == b"\x00\x00\x00\x00"
    assert GetChildrenResponse(None).encode() == b"\xff\xff\xff\xff"
    assert GetChildrenResponse([]).encode() == b"\x00\x00\x00\x00"
    assert CreateResponse(None).encode() == b"\xff\xff\xff\xff"
    assert CreateResponse("").encode() == b"\x00\x00\x00\x00"


def test_java_cesu8_surrogate_pair_round_trips_byte_for_byte() -> None:
    # Java 3.8 writes U+1F600 as two 3-byte surrogate sequences (PROTOCOL.md §1.1)
    java_bytes = b"\x00\x00\x00\x06\xed\xa0\xbd\xed\xb8\x80"
    decoded = CreateResponse.from_bytes(java_bytes)
    assert decoded.path == "\ud83d\ude00"
    assert decoded.encode() == java_bytes
    assert reference_parse(CreateResponse, java_bytes) == decoded
    # a real non-BMP character is written as 4-byte UTF-8 (what a Java reader also accepts)
    assert CreateResponse("\U0001f600").encode() == b"\x00\x00\x00\x04\xf0\x9f\x98\x80"


def _zero_stat() -> Any:
    from jute.data import Stat

    return Stat(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)


# ---- multi bodies ---------------------------------------------------------------------------

_multi_request_op = st.sampled_from(sorted({**MULTI_OP_RECORDS, **MULTI_READ_OP_RECORDS}.items())).flatmap(
    lambda item: st.tuples(st.just(int(item[0])), record_strategy(item[1]))
)


def _multi_result(result_type: int) -> st.SearchStrategy[tuple[int, int, Any]]:
    if result_type == OpCode.ERROR:
        return st.integers(-(2**31), 2**31 - 1).map(lambda err: (result_type, err, ErrorResponse(err)))
    body_cls = MULTI_RESULT_BODIES[result_type]
    body = st.none() if body_cls is None else record_strategy(body_cls)
    return body.map(lambda b: (result_type, 0, b))


_multi_result_any = st.sampled_from([int(OpCode.ERROR), *map(int, MULTI_RESULT_BODIES)]).flatmap(
    _multi_result
)


def _reference_multi_request(ops: list[tuple[int, Any]]) -> bytes:
    parts = [reference_build(MultiHeader(op_type, False, -1)) + reference_build(op) for op_type, op in ops]
    return b"".join(parts) + reference_build(MultiHeader(-1, True, -1))


def _reference_parse_multi_request(body: bytes) -> list[tuple[int, Any]]:
    stream = io.BytesIO(body)
    table = {**MULTI_OP_RECORDS, **MULTI_READ_OP_RECORDS}
    ops = []
    while not (header := MultiHeader._jute_schema.parse_stream(stream)).done:
        ops.append((header.type, table[header.type]._jute_schema.parse_stream(stream)))
    return ops


@settings(max_examples=300, deadline=None)
@given(ops=st.lists(_multi_request_op, max_size=5), prefix=st.binary(max_size=8))
def test_multi_request_round_trip(ops: list[tuple[int, Any]], prefix: bytes) -> None:
    body = encode_multi_request(ops)
    assert body == _reference_multi_request(ops)
    assert _reference_parse_multi_request(body) == ops
    framed = prefix + body + JUNK
    assert decode_multi_request(framed, len(prefix), len(prefix) + len(body)) == ops


@settings(max_examples=300, deadline=None)
@given(results=st.lists(_multi_result_any, max_size=5))
def test_multi_response_round_trip(results: list[tuple[int, int, Any]]) -> None:
    body = encode_multi_response(results)
    reference = b"".join(
        reference_build(MultiHeader(t, False, err)) + (b"" if rec is None else reference_build(rec))
        for t, err, rec in results
    ) + reference_build(MultiHeader(-1, True, -1))
    assert body == reference
    assert decode_multi_response(body, 0, len(body), multi_result_body) == results
