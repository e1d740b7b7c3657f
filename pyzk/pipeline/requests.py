"""Client requests as the pipeline reads them: which ops exist, one decoder for their records,
and one prep entry for writes, the same for a local request and one a follower forwarded.

Rule 1: a request is decoded once, by `decode_record`, wherever it arrived; a record that
        does not deserialize raises JuteError.
Rule 2: every write that reaches `prep_write_request` consumes a zxid, as in
        PrepRequestProcessor: a multi that mixes reads and writes cannot be deserialized
        (MultiOperationRecord), and becomes an ErrorTxn(MARSHALLINGERROR).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jute.codes import Err, OpCode
from jute.data import Id
from jute.multi import MULTI_READ_OP_RECORDS, decode_multi_request
from jute.primitives import JuteError
from jute.proto import (
    AddWatchRequest,
    CheckWatchesRequest,
    CreateRequest,
    CreateTTLRequest,
    DeleteRequest,
    ExistsRequest,
    GetACLRequest,
    GetAllChildrenNumberRequest,
    GetChildren2Request,
    GetChildrenRequest,
    GetDataRequest,
    GetEphemeralsRequest,
    ReconfigRequest,
    RemoveWatchesRequest,
    SetACLRequest,
    SetDataRequest,
    SetWatches,
    SetWatches2,
    SyncRequest,
)
from pyzk.pipeline.prep import Prep, Prepared

# Request record per opcode (ops handled before the pipeline are absent: auth, sasl, ping).
REQUEST_RECORDS: dict[int, Any] = {
    OpCode.CREATE: CreateRequest,
    OpCode.CREATE2: CreateRequest,
    OpCode.CREATE_CONTAINER: CreateRequest,
    OpCode.CREATE_TTL: CreateTTLRequest,
    OpCode.DELETE: DeleteRequest,
    OpCode.EXISTS: ExistsRequest,
    OpCode.GET_DATA: GetDataRequest,
    OpCode.SET_DATA: SetDataRequest,
    OpCode.GET_ACL: GetACLRequest,
    OpCode.SET_ACL: SetACLRequest,
    OpCode.GET_CHILDREN: GetChildrenRequest,
    OpCode.GET_CHILDREN2: GetChildren2Request,
    OpCode.SYNC: SyncRequest,
    OpCode.RECONFIG: ReconfigRequest,
    OpCode.CHECK_WATCHES: CheckWatchesRequest,
    OpCode.REMOVE_WATCHES: RemoveWatchesRequest,
    OpCode.SET_WATCHES: SetWatches,
    OpCode.SET_WATCHES2: SetWatches2,
    OpCode.GET_EPHEMERALS: GetEphemeralsRequest,
    OpCode.GET_ALL_CHILDREN_NUMBER: GetAllChildrenNumberRequest,
    OpCode.ADD_WATCH: AddWatchRequest,
}

WRITE_OPS = frozenset({
    OpCode.CREATE, OpCode.CREATE2, OpCode.CREATE_CONTAINER, OpCode.CREATE_TTL,
    OpCode.DELETE, OpCode.SET_DATA, OpCode.SET_ACL, OpCode.MULTI, OpCode.RECONFIG,
})
# Forwarded to the leader by a follower besides the writes (FollowerRequestProcessor).
FORWARDED_OPS = frozenset({OpCode.CLOSE_SESSION, OpCode.SYNC})
NO_RECORD_OPS = frozenset({OpCode.PING, OpCode.CLOSE_SESSION, OpCode.WHO_AM_I})
KNOWN_OPS = frozenset(REQUEST_RECORDS) | NO_RECORD_OPS | {OpCode.MULTI, OpCode.MULTI_READ}

_MULTI, _MULTI_READ = OpCode.MULTI, OpCode.MULTI_READ
_ERROR = OpCode.ERROR

# The txn types that may answer a request of each op (besides an ErrorTxn): a committed txn
# of another type is never a reply to it, whatever its cxid says.
ANSWERING_TXN_TYPES: dict[int, frozenset[int]] = {
    OpCode.CREATE: frozenset({OpCode.CREATE, OpCode.CREATE_CONTAINER, OpCode.CREATE_TTL}),
    OpCode.CREATE2: frozenset({OpCode.CREATE, OpCode.CREATE2, OpCode.CREATE_CONTAINER, OpCode.CREATE_TTL}),
    OpCode.CREATE_CONTAINER: frozenset({OpCode.CREATE_CONTAINER}),
    OpCode.CREATE_TTL: frozenset({OpCode.CREATE_TTL}),
    OpCode.DELETE: frozenset({OpCode.DELETE}),
    OpCode.SET_DATA: frozenset({OpCode.SET_DATA}),
    OpCode.SET_ACL: frozenset({OpCode.SET_ACL}),
    OpCode.MULTI: frozenset({OpCode.MULTI}),
    OpCode.RECONFIG: frozenset({OpCode.RECONFIG}),
    OpCode.CLOSE_SESSION: frozenset({OpCode.CLOSE_SESSION}),
    OpCode.CREATE_SESSION: frozenset({OpCode.CREATE_SESSION}),
}


# The same, with the ErrorTxn that may answer any of them: one lookup on the reply path.
ANSWERING_TXN_TYPES_OR_ERROR: dict[int, frozenset[int]] = {
    op: types | {_ERROR} for op, types in ANSWERING_TXN_TYPES.items()
}


def may_answer(op: int, txn_type: int) -> bool:
    """Whether a committed txn of `txn_type` can be the result of a request of `op`."""
    allowed = ANSWERING_TXN_TYPES_OR_ERROR.get(op)
    return allowed is None or txn_type in allowed


# Ops whose null path ZooKeeper 3.8 answers with MARSHALLINGERROR: the path is dereferenced
# (a NullPointerException) before any check that has its own error code, and the processor's
# catch-all answers MARSHALLINGERROR (a write's still consumes its zxid as an ErrorTxn).
# setData and setACL validate the path first (BADARGUMENTS); sync, addWatch and removeWatches
# accept a null path. In a multi or multiRead any sub-op with a null path does it.
_NULL_PATH_IS_MARSHALLING_ERROR = frozenset({
    OpCode.GET_DATA, OpCode.EXISTS, OpCode.GET_CHILDREN, OpCode.GET_CHILDREN2, OpCode.GET_ACL,
    OpCode.GET_ALL_CHILDREN_NUMBER, OpCode.CHECK_WATCHES, OpCode.CREATE, OpCode.CREATE2,
    OpCode.CREATE_CONTAINER, OpCode.CREATE_TTL, OpCode.DELETE,
})


def decode_record(op: int, body: bytes, pos: int) -> Any:
    """The record after the request header (None for ops without one); JuteError if bad."""
    if op == _MULTI or op == _MULTI_READ:
        ops = decode_multi_request(body, pos, len(body))
        for _, sub in ops:
            if getattr(sub, "path", "") is None:
                raise JuteError("null path in a multi sub-op")
        return ops
    record_type = REQUEST_RECORDS.get(op)
    if record_type is None:
        return None
    record = record_type.decode_from(body, pos, len(body))[0]
    if op in _NULL_PATH_IS_MARSHALLING_ERROR and record.path is None:
        raise JuteError("null path")
    return record


def prep_write_request(prep: Prep, op: int, record: Any, session_id: int, cxid: int, auth_ids: Sequence[Id],
                       zxid: int, time_ms: int, owner: int) -> Prepared:
    """A decoded write (a WRITE_OPS op) -> its txn; `owner` is the server it came through."""
    if op == _MULTI:
        if any(t in MULTI_READ_OP_RECORDS for t, _ in record):
            return prep.prep_error(session_id, cxid, Err.MARSHALLINGERROR, zxid, time_ms)
        return prep.prep_multi(record, session_id, cxid, auth_ids, zxid, time_ms, owner)
    return prep.prep_write(op, record, session_id, cxid, auth_ids, zxid, time_ms, owner)
