"""Quorum byte streams: election frames and back-to-back QuorumPackets (with SNAP) split at any
byte boundary; REQUEST / REVALIDATE payloads."""

from __future__ import annotations

import pytest

from jute.codes import OpCode
from jute.codes import QuorumPacketType as P
from jute.data import ACL, Id
from jute.quorum import LearnerInfo, QuorumPacket
from jute.txn import CreateTxn, TxnHeader
from pyzk.quorum.errors import PeerProtocolError
from pyzk.quorum.streams import (
    ElectionFrameSplitter,
    QuorumStreamSplitter,
    decode_request,
    decode_revalidate_reply,
    election_frame,
    encode_request,
    encode_revalidate_reply,
    learner_sid,
    quorum_packet_size,
)
from pyzk.storage.errors import SnapshotFormatError
from pyzk.storage.format import encode_txn_entry
from pyzk.storage.snapshot_format import SnapshotSerializer, parse_snap_stream, snap_stream_end
from pyzk.tree.datatree import DataTree

OPEN_ACL = [ACL(31, Id("world", "anyone"))]


def snap_stream(nodes: dict[str, bytes]) -> bytes:
    tree = DataTree()
    for zxid, (path, data) in enumerate(nodes.items(), start=1):
        tree.apply(TxnHeader(1, 0, zxid, 0, OpCode.CREATE), CreateTxn(path, data, OPEN_ACL, False, zxid))
    serializer = SnapshotSerializer(tree)
    serializer.step(1 << 30)
    return serializer.snap_stream()


def feed_in_pieces(splitter: QuorumStreamSplitter, data: bytes, piece: int) -> list[tuple[QuorumPacket, bytes]]:
    out = []
    for i in range(0, len(data), piece):
        out += splitter.feed(data[i:i + piece])
    return out


def test_election_frames_split_at_every_boundary() -> None:
    payloads = [b"a" * 44, b"b" * 139, b"c"]
    data = b"".join(election_frame(p) for p in payloads)
    for piece in (1, 3, 7, len(data)):
        splitter = ElectionFrameSplitter()
        got = []
        for i in range(0, len(data), piece):
            got += splitter.feed(data[i:i + piece])
        assert got == payloads


@pytest.mark.parametrize("length", [0, -5, 512 * 1024 + 1])
def test_election_frame_length_out_of_range_is_the_peers_fault(length: int) -> None:
    with pytest.raises(PeerProtocolError):
        ElectionFrameSplitter().feed(length.to_bytes(4, "big", signed=True) + b"xxxx")


def test_packet_size_counts_null_and_present_fields() -> None:
    for packet in (QuorumPacket(P.PING, 5, None, None),
                   QuorumPacket(P.REQUEST, -1, b"12345", [Id("ip", "127.0.0.1"), Id("digest", "a:b")])):
        raw = packet.encode()
        assert quorum_packet_size(raw, 0) == len(raw)
        assert quorum_packet_size(raw[:-1], 0) is None


def test_packets_and_a_snap_stream_split_at_every_boundary() -> None:
    stream = snap_stream({"/a": b"x" * 300, "/b": b"BenWasHere", "/c": b""})
    proposal = encode_txn_entry(TxnHeader(1, 2, 0x100000001, 0, OpCode.CREATE),
                                CreateTxn("/d", b"", OPEN_ACL, False, 1), None)
    packets = [QuorumPacket(P.LEADERINFO, 0x100000000, b"\x00\x01\x00\x00", None),
               QuorumPacket(P.SNAP, 7, None, None),
               QuorumPacket(P.PROPOSAL, 0x100000001, proposal, None),
               QuorumPacket(P.NEWLEADER, 0x100000000, b"cfg", None)]
    data = packets[0].encode() + packets[1].encode() + stream + packets[2].encode() + packets[3].encode()
    for piece in (1, 5, 64, len(data)):
        got = feed_in_pieces(QuorumStreamSplitter(), data, piece)
        assert [p for p, _ in got] == packets
        assert [s for _, s in got] == [b"", stream, b"", b""]
    loaded, end = parse_snap_stream(got[1][1], 0)
    assert end == len(stream) and loaded.tree.nodes["/a"].data == b"x" * 300


def test_learner_sid_comes_from_followerinfo_only() -> None:
    info = LearnerInfo(3, 0x10000, 0).encode()
    assert learner_sid(QuorumPacket(P.FOLLOWERINFO, 0, info, None)) == 3
    assert learner_sid(QuorumPacket(P.ACK, 0, info, None)) is None
    assert learner_sid(QuorumPacket(P.FOLLOWERINFO, 0, None, None)) is None


def test_request_payload_round_trip_matches_the_verified_capture() -> None:
    data = encode_request(0x01000017CD220000, 0, OpCode.CREATE_SESSION, (30000).to_bytes(4, "big"))
    assert data.hex() == "01000017cd220000" "00000000" "fffffff6" "00007530"
    assert decode_request(data) == (0x01000017CD220000, 0, -10, (30000).to_bytes(4, "big"))
    with pytest.raises(PeerProtocolError):
        decode_request(b"short")


def test_revalidate_reply_round_trip() -> None:
    assert decode_revalidate_reply(encode_revalidate_reply(0x0100000000001234, True)) == (0x0100000000001234, True)
    assert encode_revalidate_reply(5, False)[-1:] == b"\x00"


def test_the_end_of_a_snap_stream_is_found_without_parsing_it_and_only_when_whole() -> None:
    tree = DataTree()
    tree.sessions = {0x11: 30000, 0x22: 4000}
    txns = [("/a", b"BenWasHere", OPEN_ACL), ("/a/b", None, [ACL(1, Id("digest", "u:h"))]),
            ("/c", b"\x00" * 40, [ACL(1, Id("ip", "10.0.0.1")), ACL(31, Id("world", "anyone"))])]
    for zxid, (path, data, acl) in enumerate(txns, start=1):
        tree.apply(TxnHeader(1, 0, zxid, 0, OpCode.CREATE), CreateTxn(path, data, acl, False, zxid))
    serializer = SnapshotSerializer(tree)
    serializer.step(1 << 30)
    stream = serializer.snap_stream()
    assert snap_stream_end(stream + b"next packet", 0) == len(stream) == parse_snap_stream(stream, 0)[1]
    assert snap_stream_end(bytearray(b"xx" + stream), 2) == len(stream) + 2
    for cut in range(len(stream)):
        with pytest.raises(SnapshotFormatError):
            snap_stream_end(stream[:cut], 0)
