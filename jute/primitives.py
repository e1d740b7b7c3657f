"""Jute primitive field kinds (BinaryOutputArchive / BinaryInputArchive).

Rule 1: every kind knows two codecs: a construct object (the reference, slow, obviously right)
        and the pieces the fast codec generator needs (a struct format char for fixed-width
        kinds, or a variable-length decoder/encoder emitted as source).
Rule 2: null is not empty. A length or count of -1 is None; 0 is "" / b"" / [].
Rule 3: a length below -1, or one that runs past the bytes we have, is a JuteError: the
        caller turns it into "close this connection" (client) or "stop reading" (disk).
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import Any

import construct as cs


class JuteError(ValueError):
    """Bytes that are not a valid Jute encoding of the expected record."""


@dataclass(frozen=True, slots=True)
class Fixed:
    """A fixed-width kind: int, long, boolean, byte."""

    name: str
    fmt: str  # struct format character, big-endian
    reference: Any

    @property
    def size(self) -> int:
        return struct.calcsize(">" + self.fmt)


Int = Fixed("int", "i", cs.Int32sb)
Long = Fixed("long", "q", cs.Int64sb)
Bool = Fixed("boolean", "?", cs.Flag)
Byte = Fixed("byte", "b", cs.Int8sb)


@dataclass(frozen=True, slots=True)
class Variable:
    """A length-prefixed kind: ustring or buffer."""

    name: str
    is_text: bool


UString = Variable("ustring", True)
Buffer = Variable("buffer", False)


@dataclass(frozen=True, slots=True)
class Vector:
    """vector<T>: int count (-1 = null) then count elements of T (a kind or a record class)."""

    element: Any


@dataclass(frozen=True, slots=True)
class Trailing:
    """An optional field at the end of a record, present only if bytes remain.

    ZooKeeper extends records this way (ConnectRequest.readOnly): readers hit EOF for old
    peers. Decoded as None when absent; not written when None.
    """

    kind: Fixed


_LEN = struct.Struct(">i")


def encode_text(value: str) -> bytes:
    # surrogatepass keeps Java's CESU-8 surrogate halves round-tripping byte for byte.
    return value.encode("utf-8", "surrogatepass")


def decode_text(raw: bytes | bytearray | memoryview) -> str:
    # str(), not raw.decode(): memoryview slices (zero-copy callers) have no .decode
    return str(raw, "utf-8", "surrogatepass")


# ---- construct reference constructs -------------------------------------------------------


class _NullablePrefixed(cs.Construct):  # type: ignore[misc]
    """int length (-1 = null) + bytes; text decodes as UTF-8 (surrogatepass)."""

    def __init__(self, is_text: bool) -> None:
        super().__init__()
        self.is_text = is_text

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> Any:
        (n,) = _LEN.unpack(cs.stream_read(stream, 4, path))
        if n == -1:
            return None
        if n < -1:
            raise cs.ExplicitError(f"unreasonable length {n}", path=path)
        raw = cs.stream_read(stream, n, path)
        return decode_text(raw) if self.is_text else raw

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> Any:
        if obj is None:
            cs.stream_write(stream, _LEN.pack(-1), 4, path)
            return obj
        raw = encode_text(obj) if self.is_text else bytes(obj)
        cs.stream_write(stream, _LEN.pack(len(raw)), 4, path)
        cs.stream_write(stream, raw, len(raw), path)
        return obj


class _NullableVector(cs.Construct):  # type: ignore[misc]
    def __init__(self, subcon: Any) -> None:
        super().__init__()
        self.subcon = subcon

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> Any:
        (n,) = _LEN.unpack(cs.stream_read(stream, 4, path))
        if n == -1:
            return None
        if n < -1:
            raise cs.ExplicitError(f"negative vector count {n}", path=path)
        return [self.subcon._parsereport(stream, context, path) for _ in range(n)]

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> Any:
        if obj is None:
            cs.stream_write(stream, _LEN.pack(-1), 4, path)
            return obj
        cs.stream_write(stream, _LEN.pack(len(obj)), 4, path)
        for item in obj:
            self.subcon._build(item, stream, context, path)
        return obj


class _TrailingOptional(cs.Construct):  # type: ignore[misc]
    def __init__(self, subcon: Any) -> None:
        super().__init__()
        self.subcon = subcon

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> Any:
        here = stream.tell()
        if stream.read(1) == b"":
            return None
        stream.seek(here)
        return self.subcon._parsereport(stream, context, path)

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> Any:
        if obj is not None:
            self.subcon._build(obj, stream, context, path)
        return obj


class _RecordAdapter(cs.Adapter):  # type: ignore[misc]
    """construct Container <-> record instance, so both codecs speak the same objects."""

    def __init__(self, subcon: Any, record_cls: Any) -> None:
        super().__init__(subcon)
        self.record_cls = record_cls

    def _decode(self, obj: Any, context: Any, path: str) -> Any:
        return self.record_cls(*(obj[name] for name in self.record_cls._jute_names))

    def _encode(self, obj: Any, context: Any, path: str) -> Any:
        return {name: getattr(obj, name) for name in self.record_cls._jute_names}


def reference_construct(kind: Any) -> Any:
    """The construct object that is the reference codec for a field kind or record class."""
    if isinstance(kind, Fixed):
        return kind.reference
    if isinstance(kind, Variable):
        return _NullablePrefixed(kind.is_text)
    if isinstance(kind, Vector):
        return _NullableVector(reference_construct(kind.element))
    if isinstance(kind, Trailing):
        return _TrailingOptional(reference_construct(kind.kind))
    if hasattr(kind, "_jute_schema"):
        return kind._jute_schema
    raise TypeError(f"not a jute kind: {kind!r}")


def make_record_construct(record_cls: Any, fields: list[tuple[str, Any]]) -> Any:
    struct_ = cs.Struct(*(name / reference_construct(kind) for name, kind in fields))
    return _RecordAdapter(struct_, record_cls)
