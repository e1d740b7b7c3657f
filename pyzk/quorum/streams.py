"""The two quorum byte streams, split incrementally and decoded (no I/O).

Rule 1: the election port carries int-length frames (0 < length <= 512 KiB) after the initial
message; a frame outside that range is the peer's fault (PeerProtocolError).
Rule 2: the quorum port carries back-to-back QuorumPackets with no frame length (§4.1). A SNAP
packet is followed by the raw database stream, which ends with the ustring "BenWasHere"; it is
returned together with its packet.
Rule 3: incomplete input is kept for the next feed and is never an error.
"""

from __future__ import annotations

import struct

from jute.codes import QuorumPacketType as P
from jute.quorum import QuorumPacket
from pyzk.quorum.errors import PeerProtocolError
from pyzk.quorum.messages import ELECTION_FRAME_BYTES_MAX
from pyzk.storage.snapshot_format import SnapshotFormatError, snap_stream_end

QUORUM_PACKET_DATA_BYTES_MAX = 256 * 1024 * 1024  # a sanity bound: Java reads up to jute.maxbuffer
SNAP_SIGNATURE = struct.pack(">i", 10) + b"BenWasHere"
_INT = struct.Struct(">i")
_LONG = struct.Struct(">q")
_REQUEST_HEAD = struct.Struct(">qii")
_REVALIDATE = struct.Struct(">qi")
_REVALIDATE_REPLY = struct.Struct(">q?")


class ElectionFrameSplitter:
    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        frames: list[bytes] = []
        pos = 0
        while len(self._buf) - pos >= 4:
            (length,) = _INT.unpack_from(self._buf, pos)
            if length <= 0 or length > ELECTION_FRAME_BYTES_MAX:
                raise PeerProtocolError(f"election frame length {length} out of range")
            if len(self._buf) - pos - 4 < length:
                break
            frames.append(bytes(self._buf[pos + 4:pos + 4 + length]))
            pos += 4 + length
        del self._buf[:pos]
        return frames


def election_frame(payload: bytes) -> bytes:
    return _INT.pack(len(payload)) + payload


def quorum_packet_size(buf: bytes | bytearray, pos: int) -> int | None:
    """Bytes of the QuorumPacket at buf[pos:], or None when it is not all there yet."""
    end = len(buf)
    at = pos + 12  # int type, long zxid
    if at + 4 > end:
        return None
    (data_len,) = _INT.unpack_from(buf, at)
    if data_len < -1 or data_len > QUORUM_PACKET_DATA_BYTES_MAX:
        raise PeerProtocolError(f"QuorumPacket data length {data_len}")
    at += 4 + max(data_len, 0)
    if at + 4 > end:
        return None
    (ids,) = _INT.unpack_from(buf, at)
    if ids < -1:
        raise PeerProtocolError(f"QuorumPacket authinfo count {ids}")
    at += 4
    for _ in range(max(ids, 0) * 2):  # each Id is two ustrings
        if at + 4 > end:
            return None
        (text_len,) = _INT.unpack_from(buf, at)
        if text_len < -1:
            raise PeerProtocolError(f"QuorumPacket authinfo string length {text_len}")
        at += 4 + max(text_len, 0)
    return at - pos if at <= end else None


class QuorumStreamSplitter:
    """Feed bytes from one quorum-port connection; get (packet, snapshot stream) pairs."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._snap_packet: QuorumPacket | None = None  # a SNAP whose stream is still arriving
        self._snap_from = 0
        self._signature_scan_from = 0

    def feed(self, data: bytes) -> list[tuple[QuorumPacket, bytes]]:
        self._buf += data
        out: list[tuple[QuorumPacket, bytes]] = []
        pos = 0
        while True:
            if self._snap_packet is not None:
                end = self._snap_end()
                if end is None:
                    break
                out.append((self._snap_packet, bytes(self._buf[self._snap_from:end])))
                self._snap_packet = None
                pos = end
                continue
            size = quorum_packet_size(self._buf, pos)
            if size is None:
                break
            packet, _ = QuorumPacket.decode_from(bytes(self._buf[pos:pos + size]), 0)
            pos += size
            if packet.type == P.SNAP:
                self._snap_packet = packet
                self._snap_from = self._signature_scan_from = pos
                continue
            out.append((packet, b""))
        if self._snap_packet is not None:
            self._snap_from -= pos
            self._signature_scan_from -= pos
        del self._buf[:pos]
        return out

    def _snap_end(self) -> int | None:
        """Where the SNAP stream ends, once its signature has arrived and the stream parses."""
        while True:
            found = self._buf.find(SNAP_SIGNATURE, self._signature_scan_from)
            if found < 0:
                self._signature_scan_from = max(self._snap_from, len(self._buf) - len(SNAP_SIGNATURE) + 1)
                return None
            self._signature_scan_from = found + 1
            if found + len(SNAP_SIGNATURE) > len(self._buf):
                return None
            try:
                return snap_stream_end(self._buf, self._snap_from)
            except SnapshotFormatError:
                continue  # the signature bytes occurred inside node data; keep scanning


def learner_sid(packet: QuorumPacket) -> int | None:
    """The server id a learner announces in its first packet (FOLLOWERINFO/OBSERVERINFO)."""
    if packet.type not in (P.FOLLOWERINFO, P.OBSERVERINFO) or packet.data is None or len(packet.data) < 8:
        return None
    return int(_LONG.unpack_from(packet.data, 0)[0])


def encode_request(session_id: int, cxid: int, op: int, body: bytes) -> bytes:
    """REQUEST data: sessionId, cxid, type, then the request record without its header."""
    return _REQUEST_HEAD.pack(session_id, cxid, op) + body


def decode_request(data: bytes | None) -> tuple[int, int, int, bytes]:
    if data is None or len(data) < _REQUEST_HEAD.size:
        raise PeerProtocolError("REQUEST shorter than its header")
    session_id, cxid, op = _REQUEST_HEAD.unpack_from(data, 0)
    return session_id, cxid, op, bytes(data[_REQUEST_HEAD.size:])


def encode_revalidate(session_id: int, timeout_ms: int) -> bytes:
    return _REVALIDATE.pack(session_id, timeout_ms)


def decode_revalidate(data: bytes | None) -> tuple[int, int]:
    if data is None or len(data) < _REVALIDATE.size:
        raise PeerProtocolError("REVALIDATE shorter than sessionId + timeout")
    session_id, timeout_ms = _REVALIDATE.unpack_from(data, 0)
    return session_id, timeout_ms


def encode_revalidate_reply(session_id: int, valid: bool) -> bytes:
    return _REVALIDATE_REPLY.pack(session_id, valid)


def decode_revalidate_reply(data: bytes | None) -> tuple[int, bool]:
    if data is None or len(data) < _REVALIDATE_REPLY.size:
        raise PeerProtocolError("REVALIDATE reply shorter than sessionId + valid")
    session_id, valid = _REVALIDATE_REPLY.unpack_from(data, 0)
    return session_id, bool(valid)
