"""FLE notifications and the QuorumCnxManager header, byte for byte (PROTOCOL.md §3.1, §3.2)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jute.codes import ServerState
from pyzk.quorum.errors import PeerProtocolError
from pyzk.quorum.messages import (
    InitialMessage,
    Notification,
    connection_kept_by_initiator,
    decode_initial_message,
    decode_notification,
    encode_initial_message,
    encode_notification,
)

longs = st.integers(-(2**63), 2**63 - 1)
notifications = st.builds(Notification, st.integers(0, 255), st.sampled_from(list(ServerState)),
                          longs, longs, longs, longs, st.just(2), st.text(max_size=200))


@given(notifications)
def test_notification_round_trip(n: Notification) -> None:
    data = encode_notification(n)
    assert len(data) == 44 + len(n.config.encode())
    assert decode_notification(n.sid, data) == n


def test_notification_layout() -> None:
    n = Notification(9, ServerState.LOOKING, 2, 0, 1, 0, config="version=0")
    assert encode_notification(n) == struct.pack(">iqqqqii", 0, 2, 0, 1, 0, 2, 9) + b"version=0"


def test_old_28_byte_form_takes_peer_epoch_from_zxid() -> None:
    data = struct.pack(">iqqq", 1, 3, 0x500000007, 4)
    assert decode_notification(3, data) == Notification(3, ServerState.FOLLOWING, 3, 0x500000007, 4, 5, 0)


def test_40_byte_form_ignores_trailing_version() -> None:
    data = struct.pack(">iqqqqi", 2, 3, 7, 4, 6, 1)
    assert decode_notification(3, data) == Notification(3, ServerState.LEADING, 3, 7, 4, 6, 1)


@pytest.mark.parametrize("data", [
    b"\x00" * 27,  # shorter than 28 bytes
    struct.pack(">iqqq", 4, 1, 1, 1),  # state outside 0..3
    struct.pack(">iqqqqii", 0, 1, 1, 1, 1, 2, -1),  # negative config length
    struct.pack(">iqqqqii", 0, 1, 1, 1, 1, 2, 10) + b"short",  # config longer than the message
])
def test_messages_3_8_drops(data: bytes) -> None:
    assert decode_notification(1, data) is None


def test_initial_message_matches_a_3_8_capture() -> None:
    data = encode_initial_message(2, "127.0.0.1:35892")
    assert data == struct.pack(">qqi", -65536, 2, 15) + b"127.0.0.1:35892"
    assert decode_initial_message(data + b"rest") == (InitialMessage(2, ("127.0.0.1:35892",)), len(data))


def test_initial_message_incomplete_and_old_forms() -> None:
    data = encode_initial_message(7, "h:1")
    assert all(decode_initial_message(data[:i]) is None for i in range(len(data)))
    assert decode_initial_message(struct.pack(">q", 5)) == (InitialMessage(5, (), None), 8)
    v2 = struct.pack(">qqi", -65535, 3, 7) + b"a:1|b:2"
    assert decode_initial_message(v2) == (InitialMessage(3, ("a:1", "b:2"), -65535), len(v2))


@pytest.mark.parametrize("data", [
    struct.pack(">qqi", -65537, 1, 3) + b"a:1",
    struct.pack(">qqi", -65536, 1, 0),
    struct.pack(">qqi", -65536, 1, 2049),
])
def test_initial_message_rejects(data: bytes) -> None:
    with pytest.raises(PeerProtocolError):
        decode_initial_message(data)


def test_larger_sid_keeps_the_connection() -> None:
    assert connection_kept_by_initiator(3, 1)
    assert not connection_kept_by_initiator(1, 3)
