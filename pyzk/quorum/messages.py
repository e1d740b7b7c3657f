"""Election-port messages: the FLE notification (§3.2) and the QuorumCnxManager header (§3.1).

Rule 1: decode accepts every form a 3.8 server accepts (28, 40 and 44+N bytes) and returns
None exactly where 3.8 drops a message; encode always writes the current (version 2) form.
Rule 2: the sender's sid is not in the payload; the link it came on supplies it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from jute.codes import ServerState
from pyzk.quorum.errors import PeerProtocolError

NOTIFICATION_VERSION = 2
PROTOCOL_VERSION_V1 = -65536
PROTOCOL_VERSION_V2 = -65535
ADDRESS_BYTES_MAX = 2048
ELECTION_FRAME_BYTES_MAX = 512 * 1024

_PRE_34 = struct.Struct(">iqqq")  # 28 bytes: state, leader, zxid, electionEpoch
_V1 = struct.Struct(">iqqqqi")  # 40 bytes: ... peerEpoch, version
_V2_HEAD = struct.Struct(">iqqqqii")  # 44 bytes, then configLength bytes of config text
_LONG = struct.Struct(">q")
_INT = struct.Struct(">i")


@dataclass(frozen=True, slots=True)
class Notification:
    """One FLE notification as received from `sid` (or to be sent, with sid = my id)."""

    sid: int
    state: ServerState
    leader: int
    zxid: int
    election_epoch: int
    peer_epoch: int
    version: int = NOTIFICATION_VERSION
    config: str = ""


def encode_notification(n: Notification) -> bytes:
    """FastLeaderElection.buildMsg (the frame payload, without the int length prefix)."""
    config = n.config.encode()
    head = _V2_HEAD.pack(int(n.state), n.leader, n.zxid, n.election_epoch, n.peer_epoch,
                         NOTIFICATION_VERSION, len(config))
    return head + config


def decode_notification(sid: int, payload: bytes) -> Notification | None:
    """FastLeaderElection.Messenger.WorkerReceiver: None where 3.8 skips the message."""
    size = len(payload)
    if size < _PRE_34.size:
        return None
    state_value, leader, zxid, election_epoch = _PRE_34.unpack_from(payload, 0)
    if state_value not in tuple(ServerState):
        return None
    state = ServerState(state_value)
    if size == _PRE_34.size:
        return Notification(sid, state, leader, zxid, election_epoch, zxid >> 32, version=0)
    if size < _V1.size:
        return None
    peer_epoch, version = struct.unpack_from(">qi", payload, _PRE_34.size)
    if size == _V1.size:
        return Notification(sid, state, leader, zxid, election_epoch, peer_epoch, version=1)
    config = ""
    if version > 1:
        if size < _V2_HEAD.size:
            return None
        (config_length,) = _INT.unpack_from(payload, _V1.size)
        if config_length < 0 or config_length > size - _V2_HEAD.size:
            return None
        try:
            config = payload[_V2_HEAD.size:_V2_HEAD.size + config_length].decode()
        except UnicodeDecodeError:
            return None
    return Notification(sid, state, leader, zxid, election_epoch, peer_epoch, version, config)


@dataclass(frozen=True, slots=True)
class InitialMessage:
    """The header a connecting server writes first. protocol_version None = 3.4 form (sid only)."""

    sid: int
    addresses: tuple[str, ...]
    protocol_version: int | None = PROTOCOL_VERSION_V1


def encode_initial_message(sid: int, address: str) -> bytes:
    """V1 header: long version, long sid, int addrLen, addr bytes (`host:port`)."""
    addr = address.encode()
    return _LONG.pack(PROTOCOL_VERSION_V1) + _LONG.pack(sid) + _INT.pack(len(addr)) + addr


def decode_initial_message(buf: bytes) -> tuple[InitialMessage, int] | None:
    """Parse a header at the start of `buf`: (message, bytes used), or None if incomplete.

    Raises PeerProtocolError for what 3.8 rejects (unknown version, bad address length).
    """
    if len(buf) < 8:
        return None
    (first,) = _LONG.unpack_from(buf, 0)
    if first >= 0:
        return InitialMessage(first, (), None), 8
    if first not in (PROTOCOL_VERSION_V1, PROTOCOL_VERSION_V2):
        raise PeerProtocolError(f"unknown election protocol version {first}")
    if len(buf) < 20:
        return None
    (sid,) = _LONG.unpack_from(buf, 8)
    (addr_bytes,) = _INT.unpack_from(buf, 16)
    if addr_bytes <= 0 or addr_bytes > ADDRESS_BYTES_MAX:
        raise PeerProtocolError(f"election header address length {addr_bytes} out of range")
    if len(buf) < 20 + addr_bytes:
        return None
    text = buf[20:20 + addr_bytes].decode(errors="replace")
    return InitialMessage(sid, tuple(text.split("|")), first), 20 + addr_bytes


def connection_kept_by_initiator(my_sid: int, remote_sid: int) -> bool:
    """QuorumCnxManager: the connection initiated by the larger sid is the one that stays."""
    return my_sid > remote_sid
