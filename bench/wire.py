"""The bench's own client-protocol encoder: just the records the workloads send, in `struct`.

Rule: this module never imports pyzk or jute. The load generator must measure the server
with bytes built independently of the server's codec, so a codec bug on one side cannot
hide behind the same bug on the other. Numbers come from ZooDefs.java / KeeperException.java
(see ../shared/PROTOCOL.md sections 1, 2.2-2.6).
"""

import struct

# Opcodes used by the workloads (ZooDefs.OpCode).
OP_CREATE = 1
OP_DELETE = 2
OP_EXISTS = 3
OP_GET_DATA = 4
OP_SET_DATA = 5
OP_CHECK = 13
OP_MULTI = 14
OP_CLOSE_SESSION = -11

# Error codes the workloads expect or tolerate (KeeperException.Code).
ERR_OK = 0
ERR_NONODE = -101
ERR_NODEEXISTS = -110

XID_NOTIFICATION = -1
EVENT_NODE_DATA_CHANGED = 3

FLAGS_PERSISTENT = 0
FLAGS_EPHEMERAL = 1

PERMS_ALL = 31
SESSION_TIMEOUT_MS = 30000
PASSWORD_LENGTH = 16

# Sizes of fixed reply parts, in bytes.
REPLY_HEADER_SIZE = 16  # xid int, zxid long, err int
STAT_SIZE = 68
MULTI_HEADER_SIZE = 9  # type int, done bool, err int
CONNECT_RESPONSE_SIZE = 37  # with the readOnly byte, which we always send

FRAME_LENGTH = struct.Struct(">i")
REQUEST_PREFIX = struct.Struct(">iii")  # frame length, xid, type
REPLY_HEADER = struct.Struct(">iqi")
CONNECT_RESPONSE = struct.Struct(">iiqi16sB")
WATCHER_EVENT_PREFIX = struct.Struct(">ii")  # type, state (path follows)
MULTI_HEADER = struct.Struct(">i?i")
_INT = struct.Struct(">i")

# world:anyone with all permissions: vector of one ACL{perms, Id{scheme, id}}.
_OPEN_ACL_UNSAFE = (
    _INT.pack(1) + _INT.pack(PERMS_ALL) + _INT.pack(5) + b"world" + _INT.pack(6) + b"anyone"
)


def ustring(text: str) -> bytes:
    raw = text.encode()
    return _INT.pack(len(raw)) + raw


def buffer(data: bytes) -> bytes:
    return _INT.pack(len(data)) + data


def connect_request(session_timeout_ms: int = SESSION_TIMEOUT_MS) -> bytes:
    """A complete ConnectRequest frame for a new session, with the trailing readOnly=0."""
    body = struct.pack(">iqiqi", 0, 0, session_timeout_ms, 0, PASSWORD_LENGTH)
    body += bytes(PASSWORD_LENGTH) + b"\x00"
    return FRAME_LENGTH.pack(len(body)) + body


def get_data(path: str, watch: bool = False) -> bytes:
    return ustring(path) + (b"\x01" if watch else b"\x00")


def exists(path: str, watch: bool = False) -> bytes:
    return ustring(path) + (b"\x01" if watch else b"\x00")


def set_data(path: str, data: bytes, version: int = -1) -> bytes:
    return ustring(path) + buffer(data) + _INT.pack(version)


def create(path: str, data: bytes, flags: int = FLAGS_PERSISTENT) -> bytes:
    return ustring(path) + buffer(data) + _OPEN_ACL_UNSAFE + _INT.pack(flags)


def delete(path: str, version: int = -1) -> bytes:
    return ustring(path) + _INT.pack(version)


def check_version(path: str, version: int) -> bytes:
    return ustring(path) + _INT.pack(version)


def multi(ops: list[tuple[int, bytes]]) -> bytes:
    """MultiOperationRecord: a MultiHeader{type, done=false, err=-1} before each op record,
    then the terminator MultiHeader{-1, true, -1}."""
    parts = [MULTI_HEADER.pack(op_type, False, -1) + record for op_type, record in ops]
    parts.append(MULTI_HEADER.pack(-1, True, -1))
    return b"".join(parts)


def request_frame(xid: int, op_type: int, record: bytes) -> bytes:
    return REQUEST_PREFIX.pack(8 + len(record), xid, op_type) + record


# Lengths of successful reply bodies (frame length, without the 4-byte prefix).
def get_data_reply_length(data_length: int) -> int:
    return REPLY_HEADER_SIZE + 4 + data_length + STAT_SIZE


def stat_reply_length() -> int:
    """setData and exists both answer with a bare Stat."""
    return REPLY_HEADER_SIZE + STAT_SIZE


def create_reply_length(path: str) -> int:
    return REPLY_HEADER_SIZE + 4 + len(path.encode())


def header_only_reply_length() -> int:
    """delete, closeSession and every error reply carry the ReplyHeader alone."""
    return REPLY_HEADER_SIZE


def multi_results(frame: bytes | memoryview, body_lengths: list[int]) -> list[tuple[int, int]]:
    """The (type, err) of each result of a multi reply (frame without its length prefix).

    body_lengths gives the successful body size of each op's result, so the walk does not
    need to decode Stat or paths. A failed multi answers every op with type -1 and an
    ErrorResponse{err} body (4 bytes), err 0 for the ops before the failing one.
    """
    offset = REPLY_HEADER_SIZE
    results = []
    for body_length in body_lengths:
        op_type, done, err = MULTI_HEADER.unpack_from(frame, offset)
        if done:
            raise ValueError("multi reply ended early")
        offset += MULTI_HEADER_SIZE + (4 if op_type == -1 else body_length)
        results.append((op_type, err))
    _op_type, done, _err = MULTI_HEADER.unpack_from(frame, offset)
    if not done:
        raise ValueError("multi reply has more results than ops sent")
    return results
