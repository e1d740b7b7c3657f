"""multi (14) and multiRead (22) bodies: runs of MultiHeader + sub-record, ended by a done header.

ZooKeeper hand-serializes these (MultiOperationRecord, MultiResponse); the layout is in
PROTOCOL.md section 2.6. Sub-records are ordinary jute records, chosen by the header's type.
"""

from __future__ import annotations

import struct
from typing import Any

from jute.codes import OpCode
from jute.primitives import JuteError
from jute.proto import (
    CheckVersionRequest,
    CreateRequest,
    CreateTTLRequest,
    DeleteRequest,
    GetChildrenRequest,
    GetDataRequest,
    MultiHeader,
    SetDataRequest,
)

MULTI_OP_RECORDS: dict[int, Any] = {
    OpCode.CREATE: CreateRequest,
    OpCode.CREATE2: CreateRequest,
    OpCode.CREATE_CONTAINER: CreateRequest,
    OpCode.CREATE_TTL: CreateTTLRequest,
    OpCode.DELETE: DeleteRequest,
    OpCode.SET_DATA: SetDataRequest,
    OpCode.CHECK: CheckVersionRequest,
}

MULTI_READ_OP_RECORDS: dict[int, Any] = {
    OpCode.GET_CHILDREN: GetChildrenRequest,
    OpCode.GET_DATA: GetDataRequest,
}

# MultiHeader by struct: type, done, err. A multi carries one per op, so this is hot.
_HEADER = struct.Struct(">i?i")
_DONE_BYTES = _HEADER.pack(-1, True, -1)

# A sane bound on ops per multi; a frame is <= jute.maxbuffer anyway, this just bounds the loop.
MULTI_OPS_MAX = 1 << 20


def decode_multi_request(buf: bytes, pos: int, end: int) -> list[tuple[int, Any]]:
    """Decode a multi/multiRead body into [(op type, request record)].

    Any op type is decoded if we know its record (both tables); which types are allowed in
    which kind of multi is the pipeline's rule, not the codec's. An unknown sub-op type is a
    JuteError (ZooKeeper fails to deserialize such a request: MARSHALLINGERROR).
    """
    ops: list[tuple[int, Any]] = []
    try:
        for _ in range(MULTI_OPS_MAX):
            if pos + _HEADER.size > end:
                raise JuteError("multi: MultiHeader runs past the record")
            op_type, done, _err = _HEADER.unpack_from(buf, pos)
            pos += _HEADER.size
            if done:
                return ops
            rec_cls = MULTI_OP_RECORDS.get(op_type) or MULTI_READ_OP_RECORDS.get(op_type)
            if rec_cls is None:
                raise JuteError(f"multi: invalid sub-op type {op_type}")
            op, pos = rec_cls._jute_decode(buf, pos, end)
            ops.append((op_type, op))
    except struct.error as exc:
        raise JuteError(f"multi: truncated ({exc})") from None
    except UnicodeDecodeError as exc:
        raise JuteError(f"multi: invalid UTF-8 ({exc.reason})") from None
    raise JuteError("multi: too many ops")


def encode_multi_request(ops: list[tuple[int, Any]]) -> bytes:
    out = bytearray()
    for op_type, op in ops:
        out += _HEADER.pack(op_type, False, -1)
        op.encode_into(out)
    out += _DONE_BYTES
    return bytes(out)


def encode_multi_response(results: list[tuple[int, int, Any]]) -> bytes:
    """results: [(result type, err, body record or None)]; error results carry ErrorResponse."""
    out = bytearray()
    for op_type, err, body in results:
        out += _HEADER.pack(op_type, False, err)
        if body is not None:
            body.encode_into(out)
    out += _DONE_BYTES
    return bytes(out)


def decode_multi_response(buf: bytes, pos: int, end: int, body_for: Any) -> list[tuple[int, int, Any]]:
    """Decode a multi response; body_for(type, err) names the record class or None (tests, bench)."""
    results: list[tuple[int, int, Any]] = []
    for _ in range(MULTI_OPS_MAX):
        header, pos = MultiHeader.decode_from(buf, pos, end)
        if header.done:
            return results
        rec_cls = body_for(header.type, header.err)
        body = None
        if rec_cls is not None:
            body, pos = rec_cls.decode_from(buf, pos, end)
        results.append((header.type, header.err, body))
    raise JuteError("multi response: too many results")
