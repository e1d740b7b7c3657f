"""Length-prefixed frames: int length + body, in both directions of the client port.

Rule: a length < 0 or > frame_bytes_max (jute.maxbuffer, strict >) is rejected before any
byte of the body is buffered; the caller closes that connection only.
"""

from __future__ import annotations

import struct

from jute.codes import FRAME_BYTES_MAX_DEFAULT
from jute.primitives import JuteError

_LEN = struct.Struct(">i")


class FrameTooLarge(JuteError):
    pass


class FrameSplitter:
    """Accumulates received bytes and yields complete frame bodies (sans-I/O)."""

    __slots__ = ("_buf", "frame_bytes_max")

    def __init__(self, frame_bytes_max: int = FRAME_BYTES_MAX_DEFAULT) -> None:
        self._buf = bytearray()
        self.frame_bytes_max = frame_bytes_max

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the complete frame bodies now available, in order."""
        buf = self._buf
        buf += data
        frames: list[bytes] = []
        pos = 0
        end = len(buf)
        while end - pos >= 4:
            (n,) = _LEN.unpack_from(buf, pos)
            if n < 0 or n > self.frame_bytes_max:
                raise FrameTooLarge(f"frame length {n} outside 0..{self.frame_bytes_max}")
            if end - pos - 4 < n:
                break
            frames.append(bytes(buf[pos + 4 : pos + 4 + n]))
            pos += 4 + n
        if pos:
            del buf[:pos]
        return frames

    def peek_first_word(self) -> bytes | None:
        """The first 4 buffered bytes (for four-letter-word detection), if present."""
        return bytes(self._buf[:4]) if len(self._buf) >= 4 else None

    @property
    def buffered(self) -> int:
        return len(self._buf)


def frame(body: bytes) -> bytes:
    return _LEN.pack(len(body)) + body
