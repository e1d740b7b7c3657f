"""Fuzz the decoders in h11's spirit: any bytes give a record or a JuteError, nothing else.

Inputs are random bytes and mutations of the golden frames (captured from Apache ZooKeeper
and kazoo), fed to every record's decode_from, to decode_multi_request and to FrameSplitter.
Where the fast decoder accepts bytes, the construct reference must read the same record.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jute.framing import FrameSplitter, FrameTooLarge, frame
from jute.multi import decode_multi_request
from jute.primitives import JuteError
from jute.schema import reference_parse
from tests.unit.jute.strategies import all_record_classes

RECORD_CLASSES = all_record_classes()
GOLDEN_DIR = Path(__file__).parent / "golden"
GOLDEN_FRAMES = [path.read_bytes() for path in sorted(GOLDEN_DIR.glob("*.bin"))]
FUZZ = settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# each example decodes every record class at five offsets, so fewer examples cover as much
FUZZ_ALL_RECORDS = settings(FUZZ, max_examples=1000)

# 4-byte values that sit on the edges of length and count checks
EDGE_WORDS = [struct.pack(">i", v) for v in (-2, -1, 0, 1, 0x7FFFFFFF, -(2**31), 0xFFFFF, 0x100000)]


@st.composite
def mutated_golden(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(GOLDEN_FRAMES)))
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["flip", "edge_word", "insert", "delete", "truncate"]))
        if action == "flip" and where < len(data):
            data[where] ^= 1 << draw(st.integers(0, 7))
        elif action == "edge_word":
            data[where : where + 4] = draw(st.sampled_from(EDGE_WORDS))
        elif action == "insert":
            data[where:where] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete":
            del data[where : where + draw(st.integers(1, 8))]
        else:
            del data[where:]
    return bytes(data)


fuzz_bytes = st.one_of(st.binary(max_size=96), mutated_golden())


def _decode_everything(buf: bytes, pos: int, end: int) -> None:
    for cls in RECORD_CLASSES:
        try:
            record, after = cls.decode_from(buf, pos, end)
        except JuteError:
            continue
        assert pos <= after <= end
        # the re-encoded record decodes to itself (a non-canonical bool is the only lossy byte)
        assert cls.from_bytes(record.encode()) == record
        assert reference_parse(cls, buf[pos:after]) == record


@FUZZ_ALL_RECORDS
@given(buf=fuzz_bytes, data=st.data())
def test_every_record_decoder_gives_a_record_or_jute_error(buf: bytes, data: st.DataObject) -> None:
    # at 0, and at the body offsets after a frame length, a RequestHeader and a ReplyHeader
    for pos in (0, 4, 12, 20):
        if pos <= len(buf):
            _decode_everything(buf, pos, len(buf))
    # anywhere, with an end before the buffer's (the caller's frame or entry boundary)
    pos = data.draw(st.integers(0, len(buf)))
    _decode_everything(buf, pos, data.draw(st.integers(pos, len(buf))))


@FUZZ
@given(buf=fuzz_bytes)
def test_decode_multi_request_gives_ops_or_jute_error(buf: bytes) -> None:
    for pos in (0, 4, 12):
        if pos > len(buf):
            continue
        try:
            ops = decode_multi_request(buf, pos, len(buf))
        except JuteError:
            continue
        assert all(isinstance(op_type, int) and hasattr(op, "_jute_fields") for op_type, op in ops)


@FUZZ
@given(
    buf=fuzz_bytes,
    cuts=st.lists(st.integers(0, 200), max_size=6),
    frame_bytes_max=st.sampled_from([0, 16, 0xFFFFF]),
)
def test_frame_splitter_gives_frames_or_jute_error(buf: bytes, cuts: list[int], frame_bytes_max: int) -> None:
    splitter = FrameSplitter(frame_bytes_max)
    bounds = sorted({0, len(buf), *(c for c in cuts if c < len(buf))})
    frames: list[bytes] = []
    try:
        for start, stop in zip(bounds, bounds[1:], strict=False):
            frames += splitter.feed(buf[start:stop])
    except FrameTooLarge:
        return
    # what came out, re-framed, plus what is still buffered, is exactly what went in
    assert b"".join(frame(f) for f in frames) == buf[: len(buf) - splitter.buffered]
    assert all(len(f) <= frame_bytes_max for f in frames)


@settings(max_examples=300, deadline=None)
@given(bodies=st.lists(st.binary(max_size=40), max_size=6), cuts=st.lists(st.integers(0, 300), max_size=8))
def test_frame_splitter_is_independent_of_how_bytes_arrive(bodies: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(frame(body) for body in bodies)
    splitter = FrameSplitter()
    bounds = sorted({0, len(stream), *(c for c in cuts if c < len(stream))})
    frames: list[bytes] = []
    for start, stop in zip(bounds, bounds[1:], strict=False):
        frames += splitter.feed(stream[start:stop])
    assert frames == bodies
    assert splitter.buffered == 0


@pytest.mark.parametrize("length", [-1, -(2**31), 0x100000])
def test_frame_splitter_rejects_a_bad_length_before_the_body(length: int) -> None:
    with pytest.raises(FrameTooLarge):
        FrameSplitter().feed(struct.pack(">i", length))


def test_frame_splitter_accepts_exactly_frame_bytes_max() -> None:
    # jute.maxbuffer is checked with a strict > (PROTOCOL.md §2.1)
    splitter = FrameSplitter(frame_bytes_max=8)
    assert splitter.feed(frame(b"12345678")) == [b"12345678"]
    with pytest.raises(FrameTooLarge):
        splitter.feed(frame(b"123456789"))


def test_golden_frames_are_present() -> None:
    assert len(GOLDEN_FRAMES) >= 40
